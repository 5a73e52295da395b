//! Named memory barriers, after the C reference the protocol is written in (layout.md §10).
//!
//! Each maps to one Rust fence. What each compiles to was read off the generated code, not
//! recalled (rustc 1.95, `-O`):
//!
//! * x86-64: `cargo test --release --lib barrier`, then
//!   `objdump -d target/release/deps/chunkring-* | grep -A2 chunkring_asm_barrier_` (the
//!   out-of-line copies in this file's tests);
//! * aarch64: the same four fences in a `no_std` file compiled with
//!   `rustc --crate-type=lib -O --target aarch64-unknown-linux-gnu --emit asm`.
//!
//! Note that LLVM lowers `fence(SeqCst)` on x86-64 to `lock or $0, -0x40(%rsp)` (a locked
//! no-op on a stack line), not `mfence`: both are full barriers; the locked op is cheaper.
//!
//! Under `--cfg chunkring_loom` the fences are loom's, so the model checker sees exactly the
//! ordering the real code relies on.

#![allow(clippy::disallowed_methods)] // the one place fences are named, with sync.rs

use crate::sync::{compiler_fence, fence, Ordering};

/// Stops the *compiler* from moving memory accesses across this point; emits no instruction.
///
/// x86-64: nothing. aarch64: nothing (LLVM prints a `//MEMBARRIER` marker comment only). Under loom: a SeqCst fence (stronger; loom has no
/// compiler fence), which may hide a missing compiler barrier.
#[inline(always)]
pub fn barrier_compiler() {
    compiler_fence(Ordering::SeqCst);
}

/// Full barrier: every access before it is ordered before every access after it, including
/// an earlier store before a later load (StoreLoad). `fence(SeqCst)`.
///
/// x86-64: `lock orl $0x0,-0x40(%rsp)` (a locked read-modify-write: a full barrier, cheaper
/// than `mfence`). aarch64: `dmb ish`. Used for the Dekker step of park/wake ([W2], [W5]).
#[inline(always)]
pub fn barrier_memory() {
    fence(Ordering::SeqCst);
}

/// Acquire barrier: loads before it are ordered before loads and stores after it.
/// `fence(Acquire)`.
///
/// x86-64: nothing (TSO already orders load→load and load→store). aarch64: `dmb ishld`.
/// Used after loading the peer's index ([R1], [R5]).
#[inline(always)]
pub fn barrier_read() {
    fence(Ordering::Acquire);
}

/// Release barrier: loads and stores before it are ordered before stores after it.
/// `fence(Release)`.
///
/// x86-64: nothing (TSO already orders store→store and load→store). aarch64: `dmb ish`.
/// Used before storing our own index ([R3], [R6]).
#[inline(always)]
pub fn barrier_write() {
    fence(Ordering::Release);
}

#[cfg(all(test, not(chunkring_loom)))]
mod tests {
    use super::*;

    // Out-of-line copies so `objdump -d` shows what each barrier compiles to.
    #[inline(never)]
    #[no_mangle]
    extern "C" fn chunkring_asm_barrier_memory() {
        barrier_memory()
    }
    #[inline(never)]
    #[no_mangle]
    extern "C" fn chunkring_asm_barrier_read() {
        barrier_read()
    }
    #[inline(never)]
    #[no_mangle]
    extern "C" fn chunkring_asm_barrier_write() {
        barrier_write()
    }
    #[inline(never)]
    #[no_mangle]
    extern "C" fn chunkring_asm_barrier_compiler() {
        barrier_compiler()
    }

    #[test]
    fn barriers_are_callable() {
        chunkring_asm_barrier_memory();
        chunkring_asm_barrier_read();
        chunkring_asm_barrier_write();
        chunkring_asm_barrier_compiler();
    }
}
