//! `chunkring` command line (filled in with the worker).
fn main() {}
