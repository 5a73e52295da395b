//! The loom shim: the only file (with `barrier.rs`) that names std or loom atomics.
//!
//! Normal builds re-export `core::sync::atomic` and crossbeam-utils' `Backoff`; builds with
//! `--cfg chunkring_loom` re-export loom's, so the same ring code runs under the model checker
//! (STYLE.md §4). `clippy.toml` forbids atomics and fences everywhere else.
#![allow(clippy::disallowed_types, clippy::disallowed_methods)]

#[cfg(not(chunkring_loom))]
mod imp {
    pub(crate) use core::sync::atomic::{compiler_fence, fence, Ordering};
    pub(crate) use crossbeam_utils::Backoff;

    /// Tells the CPU we are spinning (`pause` on x86-64, `isb`/`yield` on aarch64).
    #[inline]
    pub(crate) fn spin_hint() {
        core::hint::spin_loop()
    }

    /// Gives the core to another runnable thread or process (`sched_yield`).
    #[inline]
    pub(crate) fn yield_now() {
        std::thread::yield_now()
    }
}

#[cfg(chunkring_loom)]
mod imp {
    pub(crate) use loom::sync::atomic::{fence, AtomicU32, AtomicU64, Ordering};
    // loom has no compiler_fence (loom#117). As crossbeam does, stand in `fence`: it is
    // stronger, so it may hide a missing compiler barrier. Each use says so.
    pub(crate) use loom::sync::atomic::fence as compiler_fence;

    /// loom needs a yield where real code spins, or the model never makes progress.
    pub(crate) fn spin_hint() {
        loom::thread::yield_now()
    }

    /// A yield under loom.
    pub(crate) fn yield_now() {
        loom::thread::yield_now()
    }

    /// Backoff under loom: every snooze is a yield; "completed" after a few steps so the
    /// park path is explored.
    #[derive(Debug, Default)]
    pub(crate) struct Backoff {
        step: core::cell::Cell<u32>,
    }

    impl Backoff {
        pub(crate) fn new() -> Backoff {
            Backoff::default()
        }
        pub(crate) fn snooze(&self) {
            self.step.set(self.step.get() + 1);
            loom::thread::yield_now();
        }
        pub(crate) fn is_completed(&self) -> bool {
            self.step.get() >= 1
        }
    }
}

pub(crate) use imp::*;

/// Atomic access to words of a mapping another process shares (`AtomicU64::from_ptr`).
///
/// These are always the real atomics: loom atomics can only be built with `new()` and cannot
/// overlay mmap'd bytes, so code over a mapping is not modelled; loom checks the same
/// algorithm over `ring::model` instead. The `&Atomic*` each function forms lives for one
/// expression and is the only kind of reference ever formed into shared memory.
pub(crate) mod mapped {
    #![allow(clippy::disallowed_types)]
    use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};

    /// Loads a `u64` word.
    ///
    /// # Safety
    /// * `p` is 8-byte aligned and valid for reads for the duration of the call;
    /// * every concurrent access to `*p` (in any process) is an atomic-width access.
    #[inline(always)]
    pub(crate) unsafe fn load_u64(p: *mut u64, o: Ordering) -> u64 {
        // SAFETY: delegated to the caller.
        unsafe { AtomicU64::from_ptr(p) }.load(o)
    }

    /// Stores a `u64` word.
    ///
    /// # Safety
    /// As for [`load_u64`], and valid for writes.
    #[inline(always)]
    pub(crate) unsafe fn store_u64(p: *mut u64, v: u64, o: Ordering) {
        // SAFETY: delegated to the caller.
        unsafe { AtomicU64::from_ptr(p) }.store(v, o)
    }

    /// Loads a `u32` word.
    ///
    /// # Safety
    /// As for [`load_u64`], with 4-byte alignment.
    #[inline(always)]
    pub(crate) unsafe fn load_u32(p: *mut u32, o: Ordering) -> u32 {
        // SAFETY: delegated to the caller.
        unsafe { AtomicU32::from_ptr(p) }.load(o)
    }

    /// Stores a `u32` word.
    ///
    /// # Safety
    /// As for [`store_u64`], with 4-byte alignment.
    #[inline(always)]
    pub(crate) unsafe fn store_u32(p: *mut u32, v: u32, o: Ordering) {
        // SAFETY: delegated to the caller.
        unsafe { AtomicU32::from_ptr(p) }.store(v, o)
    }

    /// Compare-and-swap of a `u64` word (SeqCst); `Ok(previous)` when it was `current`.
    ///
    /// # Safety
    /// As for [`store_u64`].
    #[inline(always)]
    pub(crate) unsafe fn compare_exchange_u64(
        p: *mut u64,
        current: u64,
        new: u64,
    ) -> Result<u64, u64> {
        // SAFETY: delegated to the caller.
        unsafe { AtomicU64::from_ptr(p) }.compare_exchange(
            current,
            new,
            Ordering::SeqCst,
            Ordering::SeqCst,
        )
    }
}
