//! Named memory barriers, after the C reference the protocol is written in (layout.md §10).
//!
//! Each maps to one Rust fence. The instruction columns were read off `objdump -d` of this
//! crate's x86-64 build (`cargo test --release --lib barrier`, then the `barrier_*` symbols
//! in the test binary); the aarch64 column is LLVM's documented lowering of the same fences
//! (the aarch64 standard library is not installable on this machine, so it is not re-checked
//! here; layout.md says so too).
//!
//! Under `--cfg chunkring_loom` the fences are loom's, so the model checker sees exactly the
//! ordering the real code relies on.

#![allow(clippy::disallowed_methods)] // the one place fences are named, with sync.rs

use crate::sync::{compiler_fence, fence, Ordering};

/// Stops the *compiler* from moving memory accesses across this point; emits no instruction.
///
/// x86-64: nothing. aarch64: nothing. Under loom: a SeqCst fence (stronger; loom has no
/// compiler fence), which may hide a missing compiler barrier.
#[inline(always)]
pub fn barrier_compiler() {
    compiler_fence(Ordering::SeqCst);
}

/// Full barrier: every access before it is ordered before every access after it, including
/// an earlier store before a later load (StoreLoad). `fence(SeqCst)`.
///
/// x86-64: `mfence`. aarch64: `dmb ish`. Used for the Dekker step of park/wake ([W2], [W5]).
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
