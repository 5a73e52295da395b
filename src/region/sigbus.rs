//! Surviving a region truncated by another process (layout.md §12 "Truncated region").
//!
//! Any process that may write the region's file (the same user) can `truncate` it while it is
//! mapped; the next load or store on a page past the new end of file raises `SIGBUS`, whose
//! default action kills the worker. Every shm or file mapping a [`Region`](super::Region) is
//! built on is registered here ([`Registration`], held by the backing and dropped before the
//! mapping is unmapped). The `SIGBUS` handler, installed on the first registration, checks
//! that the fault's `si_addr` lies in a registered mapping; if so it replaces that whole
//! mapping in place with anonymous zero pages (`mmap` with `MAP_FIXED | MAP_PRIVATE |
//! MAP_ANONYMOUS`), sets a flag and returns: the interrupted access runs again on the zero
//! pages, and the serve loop, which checks [`region_lost`] where it checks its other stop
//! conditions, stops with a clear message and a nonzero exit status. A fault anywhere else
//! restores the action installed before ours (std's stack-overflow handler, or the default)
//! and returns, so the fault repeats and ends the process as it would have without us; a
//! `SIGBUS` sent by a process (`kill`) goes to that action too.
//!
//! The handler does only async-signal-safe work: atomic loads and one store, `mmap(2)`,
//! `sigaction(2)` and `raise(3)` (POSIX lists `sigaction` and `raise` as async-signal-safe, and
//! `mmap` is a plain system call that takes no user-space lock); no allocation, no lock, no
//! formatting. The table is a fixed array of atomics written only under `TABLE_LOCK`, outside
//! the handler.
//!
//! The truncation is also noticed without a fault: [`Region::truncated`](super::Region)
//! compares the file's size (`fstat`) with the mapping at each liveness check, so an idle
//! worker stops as well, within one park timeout.
#![allow(clippy::disallowed_types)] // signal-handler state, not ring protocol: std atomics, as liveness.rs

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Mutex, Once, OnceLock};

/// Most mappings protected at once (a worker has one; tests and `inspect` a few).
const SLOTS: usize = 16;

/// One registered mapping: `start` 0 means a free slot.
struct Slot {
    start: AtomicUsize,
    len: AtomicUsize,
}

#[allow(clippy::declare_interior_mutable_const)] // only used to initialise the array below
const FREE: Slot = Slot {
    start: AtomicUsize::new(0),
    len: AtomicUsize::new(0),
};

static TABLE: [Slot; SLOTS] = [FREE; SLOTS];
/// Serialises registration (never taken in the handler).
static TABLE_LOCK: Mutex<()> = Mutex::new(());
/// Set by the handler when it replaced a mapping.
static LOST: AtomicBool = AtomicBool::new(false);
static INSTALL: Once = Once::new();
/// The `SIGBUS` action before ours, written once before ours is installed.
static PREVIOUS: OnceLock<libc::sigaction> = OnceLock::new();

/// True once the handler replaced a region's mapping with zero pages: a region of this
/// process was truncated under it and can no longer be served.
pub fn region_lost() -> bool {
    // ORDERING: Relaxed; pairs with nothing: the flag carries no data, and the serve loop
    // polls it once per turn.
    LOST.load(Ordering::Relaxed)
}

/// A registered mapping; unregistered on drop (drop it before unmapping).
#[derive(Debug)]
pub struct Registration {
    slot: Option<usize>,
}

/// Protects the mapping `[start, start + len)` (installs the handler on first use). When the
/// table is full the mapping is left unprotected (a truncation then kills the process, as
/// it did before): [`Registration`] still drops cleanly.
pub fn register(start: *mut u8, len: usize) -> Registration {
    INSTALL.call_once(install);
    let _table = TABLE_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    // ORDERING: Relaxed; only registration (serialised by TABLE_LOCK) writes `start`.
    let slot = TABLE
        .iter()
        .position(|s| s.start.load(Ordering::Relaxed) == 0);
    if let Some(i) = slot {
        // ORDERING: `len` first, then `start` with Release; pairs with the handler's Acquire
        // load of `start`: a handler that sees the start sees its length.
        TABLE[i].len.store(len, Ordering::Relaxed);
        TABLE[i].start.store(start as usize, Ordering::Release);
    }
    Registration { slot }
}

impl Drop for Registration {
    fn drop(&mut self) {
        if let Some(i) = self.slot {
            let _table = TABLE_LOCK.lock().unwrap_or_else(|e| e.into_inner());
            // ORDERING: Release, as in `register`; a handler reading this slot concurrently
            // is one faulting on another mapping (a thread faulting on this one holds the
            // backing alive), so either value it reads leads to no match.
            TABLE[i].start.store(0, Ordering::Release);
            // ORDERING: Relaxed; after `start` is 0 no handler uses this length.
            TABLE[i].len.store(0, Ordering::Relaxed);
        }
    }
}

fn install() {
    // SAFETY: a zeroed `sigaction` is a valid "no handler" value for the kernel to fill in;
    // sigaction(2) with a null new action only reads the current one into `previous`.
    let previous = unsafe {
        let mut previous: libc::sigaction = std::mem::zeroed();
        libc::sigaction(libc::SIGBUS, std::ptr::null(), &mut previous);
        previous
    };
    // Written before our handler exists, so the handler always finds it.
    let _ = PREVIOUS.set(previous);
    let handler = on_sigbus as extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void);
    // SAFETY: a zeroed struct with our handler, an empty mask and SA_SIGINFO (the handler
    // takes three arguments) | SA_ONSTACK (std gives its threads an alternate signal stack;
    // we use it when there is one). The handler is async-signal-safe (module doc).
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = handler as libc::sighandler_t;
        sa.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
        libc::sigemptyset(&mut sa.sa_mask);
        libc::sigaction(libc::SIGBUS, &sa, std::ptr::null_mut());
    }
}

/// The handler (module doc): async-signal-safe only.
extern "C" fn on_sigbus(_sig: libc::c_int, info: *mut libc::siginfo_t, _ctx: *mut libc::c_void) {
    // SAFETY: with SA_SIGINFO the kernel passes a valid siginfo_t.
    let code = unsafe { (*info).si_code };
    if code <= 0 {
        // Sent by a process (kill, raise: SI_USER, SI_TKILL…), not a fault: no address to
        // look at. Give it to the previous action: restore it and send the signal again,
        // which stays blocked until this handler returns.
        restore_previous();
        // SAFETY: raise(3) is async-signal-safe.
        unsafe { libc::raise(libc::SIGBUS) };
        return;
    }
    // SAFETY: as above; for a SIGBUS the kernel raised, `si_addr` is the faulting address.
    let addr = unsafe { (*info).si_addr() } as usize;
    for slot in &TABLE {
        // ORDERING: Acquire; pairs with the Release store in `register` (see there).
        let start = slot.start.load(Ordering::Acquire);
        // ORDERING: Relaxed; ordered after the Acquire load above (see there).
        let len = slot.len.load(Ordering::Relaxed);
        if start == 0 || addr < start || addr - start >= len {
            continue;
        }
        // SAFETY: `[start, start + len)` is a live mapping of ours (registered, and the
        // faulting thread holds its backing); MAP_FIXED replaces it in place with private
        // zero pages of the same size, so every pointer into it stays valid. mmap(2) is a
        // system call, safe in a signal handler.
        let p = unsafe {
            libc::mmap(
                start as *mut libc::c_void,
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_FIXED | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if p != libc::MAP_FAILED {
            // ORDERING: Relaxed; see `region_lost`.
            LOST.store(true, Ordering::Relaxed);
            return;
        }
        break; // cannot remap: let the fault take its previous course
    }
    // Not ours: put the previous action back; returning re-runs the faulting access, which
    // then meets that action (std's handler, or the default: the process dies of SIGBUS).
    restore_previous();
}

/// Puts back the `SIGBUS` action found at installation (async-signal-safe).
fn restore_previous() {
    if let Some(previous) = PREVIOUS.get() {
        // SAFETY: `previous` is the action sigaction(2) reported before ours; sigaction is
        // async-signal-safe.
        unsafe { libc::sigaction(libc::SIGBUS, previous, std::ptr::null_mut()) };
    } else {
        // SAFETY: restoring the default action; sigaction is async-signal-safe.
        unsafe { libc::signal(libc::SIGBUS, libc::SIG_DFL) };
    }
}
