//! Is a process alive, has a stop signal arrived, what time is it (layout.md §12): the facts
//! the worker's liveness checks and `inspect` need. Nothing here waits; see `wait/` for that.
//!
//! The stop flag is a plain std atomic, not the `sync` shim's: it is set from a signal handler
//! and is not part of the ring protocol loom checks.
#![allow(clippy::disallowed_types)]

use std::sync::atomic::{AtomicBool, Ordering};

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_stop_signal(_: libc::c_int) {
    // Async-signal-safe: one atomic store. ORDERING: Relaxed; the serve loop polls it.
    STOP.store(true, Ordering::Relaxed);
}

/// Installs SIGINT and SIGTERM handlers that ask the serve loop to stop. A blocked futex
/// wait returns EINTR, so the loop notices at once.
pub fn install_stop_handlers() {
    let handler = on_stop_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
    for sig in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: `sigaction` with a zeroed struct and a handler that only stores an atomic;
        // no SA_RESTART, so blocking calls return EINTR.
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = handler;
            libc::sigemptyset(&mut sa.sa_mask);
            libc::sigaction(sig, &sa, std::ptr::null_mut());
        }
    }
}

/// Has SIGINT or SIGTERM arrived?
pub fn stop_requested() -> bool {
    STOP.load(Ordering::Relaxed)
}

/// Is process `pid` alive? (`kill(pid, 0)`: ESRCH means gone; EPERM means alive but not ours.)
pub fn pid_alive(pid: u32) -> bool {
    if pid == 0 || pid > i32::MAX as u32 {
        return false;
    }
    // SAFETY: signal 0 performs only the existence and permission check.
    let r = unsafe { libc::kill(pid as libc::pid_t, 0) };
    r == 0 || std::io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
}

/// CLOCK_MONOTONIC in nanoseconds (the heartbeat's clock; shared by all processes).
pub fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid out-pointer; CLOCK_MONOTONIC always exists on Linux.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    (ts.tv_sec as u64)
        .saturating_mul(1_000_000_000)
        .saturating_add(ts.tv_nsec as u64)
}

/// Process setup for a worker that handles large messages: serve allocations below 64 MiB
/// from the heap and keep up to 128 MiB of freed heap, instead of glibc's default of a fresh
/// `mmap` for anything over 128 KiB (the threshold adapts only after frees). A fresh mapping
/// costs a page fault per 4 KiB on first touch and a `munmap` (a TLB shootdown) on free:
/// measured here, a 1 MiB echo spent 3.5 ms in the worker that way and 0.3 ms with the heap
/// reused (`MALLOC_MMAP_THRESHOLD_` set by hand). Best effort; a no-op off glibc.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub fn keep_large_buffers_in_heap() {
    // SAFETY: mallopt only adjusts glibc's allocator parameters; called before any thread
    // of ours allocates concurrently (the start of `serve`).
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 64 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 128 << 20);
    }
}

/// Elsewhere the allocator is left as it is.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn keep_large_buffers_in_heap() {}

/// Can this process and `pid` only ever run on the same one CPU (both pinned to it, e.g.
/// `taskset -c 0`, or a 1-CPU machine)? Then spinning while waiting for `pid` only keeps it
/// from running (layout.md §11 "One core"). False when either affinity cannot be read.
pub fn shares_one_cpu(pid: u32) -> bool {
    if pid == 0 || pid > i32::MAX as u32 {
        return false;
    }
    // Ours first: on more than one CPU (the usual case) the peer's set is never read, so the
    // worker's liveness check costs one sched_getaffinity, not two.
    let Some(mine) = affinity(0) else {
        return false;
    };
    // SAFETY: CPU_COUNT only reads the initialised set.
    if unsafe { libc::CPU_COUNT(&mine) } != 1 {
        return false;
    }
    let Some(theirs) = affinity(pid as libc::pid_t) else {
        return false;
    };
    // SAFETY: CPU_EQUAL only reads the two initialised sets.
    unsafe { libc::CPU_EQUAL(&mine, &theirs) }
}

fn affinity(pid: libc::pid_t) -> Option<libc::cpu_set_t> {
    // SAFETY: a zeroed cpu_set_t is a valid empty set; sched_getaffinity writes at most
    // `size_of::<cpu_set_t>()` bytes into it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        let r = libc::sched_getaffinity(pid, std::mem::size_of::<libc::cpu_set_t>(), &mut set);
        (r == 0).then_some(set)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg_attr(miri, ignore)] // kill(2) is a foreign call Miri cannot run
    fn our_own_pid_is_alive_and_pid_zero_is_not() {
        assert!(pid_alive(std::process::id()));
        assert!(!pid_alive(0));
        assert!(!pid_alive(u32::MAX));
    }

    #[test]
    fn the_monotonic_clock_moves_forward() {
        let a = monotonic_ns();
        let b = monotonic_ns();
        assert!(a > 0 && b >= a);
    }
}
