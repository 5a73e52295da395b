//! Shared (cross-process) futex wait and wake on a word in the region (layout.md §11).
//!
//! No `FUTEX_PRIVATE_FLAG`: the waiter and the waker are different processes mapping the same
//! shm object, so the kernel must key the futex on the physical page. Where the futex call is
//! unavailable (ENOSYS, or a platform without futexes), waiting falls back to a short sleep,
//! which keeps the same bounded-latency guarantee.

use std::time::Duration;

/// How a wait ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitOutcome {
    /// Woken by `wake`, by a signal, or spuriously.
    Woken,
    /// The word no longer held the expected value when the kernel checked it.
    Changed,
    /// The timeout expired.
    TimedOut,
}

/// Blocks while `*word == expected`, at most `timeout`.
///
/// `word` must point to a live, 4-byte aligned `u32` in memory shared with the waker; an
/// invalid pointer makes the kernel answer EFAULT, which is reported as `Woken` (the caller
/// re-checks its condition anyway).
#[cfg(target_os = "linux")]
#[allow(clippy::not_unsafe_ptr_arg_deref)] // the kernel, not we, reads `word`, and validates it
pub fn wait(word: *const u32, expected: u32, timeout: Duration) -> WaitOutcome {
    let ts = libc::timespec {
        tv_sec: timeout.as_secs().min(i64::MAX as u64) as libc::time_t,
        tv_nsec: libc::c_long::from(timeout.subsec_nanos() as i32),
    };
    // SAFETY: FUTEX_WAIT only reads `*word` (atomically, in the kernel) and `ts`; both are
    // valid for the call. The kernel validates the address and returns EFAULT if it is not.
    let r = unsafe {
        libc::syscall(
            libc::SYS_futex,
            word,
            libc::FUTEX_WAIT,
            expected,
            &ts as *const libc::timespec,
            std::ptr::null::<u32>(),
            0u32,
        )
    };
    if r == 0 {
        return WaitOutcome::Woken;
    }
    match std::io::Error::last_os_error().raw_os_error() {
        Some(libc::ETIMEDOUT) => WaitOutcome::TimedOut,
        Some(libc::EAGAIN) => WaitOutcome::Changed,
        Some(libc::ENOSYS) => {
            std::thread::sleep(timeout.min(Duration::from_millis(1)));
            WaitOutcome::TimedOut
        }
        _ => WaitOutcome::Woken, // EINTR, EFAULT: the caller re-checks
    }
}

/// Wakes at most one waiter blocked on `word`; returns how many were woken.
#[cfg(target_os = "linux")]
#[allow(clippy::not_unsafe_ptr_arg_deref)] // the kernel, not we, looks `word` up, and validates it
pub fn wake(word: *const u32) -> usize {
    // SAFETY: FUTEX_WAKE does not dereference `word` in user space; the kernel looks the
    // address up and returns EFAULT for an invalid one.
    let r = unsafe {
        libc::syscall(
            libc::SYS_futex,
            word,
            libc::FUTEX_WAKE,
            1i32,
            0usize,
            0usize,
            0u32,
        )
    };
    r.max(0) as usize
}

/// Asks the kernel to fire this thread's timers (the futex timeouts of a doze) within 1 µs
/// of their deadline instead of the default 50 µs slack (`PR_SET_TIMERSLACK`): a worker that
/// dozes until just before a request is due wakes when it planned to (layout.md §11).
/// Best effort; returns whether the kernel accepted it.
#[cfg(target_os = "linux")]
pub fn tighten_timer_slack() -> bool {
    // SAFETY: PR_SET_TIMERSLACK takes one integer argument and touches no user memory.
    unsafe { libc::prctl(libc::PR_SET_TIMERSLACK, 1 as libc::c_ulong, 0, 0, 0) == 0 }
}

/// Elsewhere there is no per-thread timer slack to set.
#[cfg(not(target_os = "linux"))]
pub fn tighten_timer_slack() -> bool {
    false
}

/// Fallback where futexes do not exist: a short sleep bounds the wait.
#[cfg(not(target_os = "linux"))]
pub fn wait(_word: *const u32, _expected: u32, timeout: Duration) -> WaitOutcome {
    std::thread::sleep(timeout.min(Duration::from_millis(1)));
    WaitOutcome::TimedOut
}

/// Fallback where futexes do not exist: waiters poll, so there is no one to wake.
#[cfg(not(target_os = "linux"))]
pub fn wake(_word: *const u32) -> usize {
    0
}

#[cfg(test)]
mod tests {
    #![allow(clippy::disallowed_types)] // a plain atomic stands in for the shared word
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::Arc;

    #[test]
    fn wait_returns_at_once_when_the_word_differs() {
        let w = AtomicU32::new(0);
        assert_eq!(
            wait(w.as_ptr(), 1, Duration::from_secs(5)),
            WaitOutcome::Changed
        );
    }

    #[test]
    fn wait_times_out() {
        let w = AtomicU32::new(1);
        assert_eq!(
            wait(w.as_ptr(), 1, Duration::from_millis(5)),
            WaitOutcome::TimedOut
        );
    }

    #[test]
    #[cfg_attr(miri, ignore)] // thread timing under Miri is too slow to be meaningful
    fn wake_releases_a_waiter() {
        let w = Arc::new(AtomicU32::new(1));
        let w2 = Arc::clone(&w);
        let t = std::thread::spawn(move || loop {
            if wait(w2.as_ptr(), 1, Duration::from_secs(10)) != WaitOutcome::TimedOut
                && w2.load(Ordering::SeqCst) == 0
            {
                return;
            }
        });
        std::thread::sleep(Duration::from_millis(20));
        w.store(0, Ordering::SeqCst);
        wake(w.as_ptr());
        t.join().unwrap();
    }
}
