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

/// The protocol steps of layout.md §10 whose barrier the ring relies on. Each call site of
/// such a barrier names its step (`barrier_write_at(Step::R3)`), so a loom test can remove
/// exactly that barrier through [`weaken`] and check that the model checker then finds a
/// failure: a suite that cannot fail proves nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Producer: `barrier_read()` after loading `head`.
    R1,
    /// Producer: `barrier_write()` before storing `tail`.
    R3,
    /// Consumer: `barrier_read()` after loading `tail`.
    R5,
    /// Consumer: `barrier_write()` before storing `head`.
    R6,
    /// Waiter: `barrier_memory()` between storing `PARKED` and the re-check.
    W2,
    /// Waker: `barrier_memory()` between its index store and loading the peer's park word.
    W5,
}

/// `barrier_read()` at a tagged step. In normal builds exactly `barrier_read()`.
#[inline(always)]
pub fn barrier_read_at(step: Step) {
    if !weakened(step) {
        barrier_read();
    }
}

/// `barrier_write()` at a tagged step. In normal builds exactly `barrier_write()`.
#[inline(always)]
pub fn barrier_write_at(step: Step) {
    if !weakened(step) {
        barrier_write();
    }
}

/// `barrier_memory()` at a tagged step. In normal builds exactly `barrier_memory()`.
#[inline(always)]
pub fn barrier_memory_at(step: Step) {
    if !weakened(step) {
        barrier_memory();
    }
}

/// Normal builds: a constant `false`, so the tagged barriers compile to the plain ones.
#[cfg(not(chunkring_loom))]
#[inline(always)]
fn weakened(_step: Step) -> bool {
    false
}

#[cfg(chunkring_loom)]
fn weakened(step: Step) -> bool {
    weaken::is_disabled(step)
}

/// Test-only switch (built only with `--cfg chunkring_loom`): removes a tagged barrier so a
/// loom model can show that the protocol breaks without it.
///
/// The flags are thread-local to the OS thread that calls `loom::model`: loom runs every
/// modelled thread of one model on that OS thread, while the test harness runs other tests
/// (which must see the full protocol) on other OS threads.
#[cfg(chunkring_loom)]
pub mod weaken {
    use super::Step;
    use std::cell::Cell;

    std::thread_local! {
        static DISABLED: Cell<u8> = const { Cell::new(0) };
    }

    fn bit(step: Step) -> u8 {
        1 << step as u8
    }

    /// Removes the barrier of `step` until the returned guard is dropped.
    #[must_use = "the barrier is restored when the guard is dropped"]
    pub fn disable(step: Step) -> Disabled {
        DISABLED.with(|d| d.set(d.get() | bit(step)));
        Disabled { step }
    }

    /// Is the barrier of `step` removed on this thread?
    pub fn is_disabled(step: Step) -> bool {
        DISABLED.with(|d| d.get() & bit(step) != 0)
    }

    /// Restores a removed barrier when dropped.
    #[derive(Debug)]
    pub struct Disabled {
        step: Step,
    }

    impl Drop for Disabled {
        fn drop(&mut self) {
            DISABLED.with(|d| d.set(d.get() & !bit(self.step)));
        }
    }
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
