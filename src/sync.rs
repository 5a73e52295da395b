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

/// Atomics laid over mapped memory (`AtomicU64::from_ptr`). These are always the real ones:
/// loom atomics can only be built with `new()` and cannot overlay mmap'd bytes, so code over
/// a mapping is not modelled; loom checks the same algorithm over `ring::model` instead.
pub(crate) mod mapped {
    #![allow(clippy::disallowed_types)]
    pub(crate) use core::sync::atomic::{AtomicU32, AtomicU64};
}
