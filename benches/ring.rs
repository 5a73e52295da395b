//! Rust↔Rust ring throughput (filled in with the ring core).
fn main() {}
