//! Waiting without burning a core: spin, then back off, then park on the side's futex word
//! with a bounded timeout (layout.md §11, steps [W1]–[W6] of §10).

use std::time::{Duration, Instant};

use crate::barrier::{barrier_memory_at, Step};
use crate::layout::{AWAKE, PARKED, PARKED_FOR_ROOM};
use crate::ring::memory::{Park, RingMemory};
use crate::sync::{spin_hint, yield_now, Backoff, Ordering};

pub mod futex;
pub mod liveness;

pub use futex::WaitOutcome;

/// How long to spin before backing off, and how long one park may last.
#[derive(Debug, Clone, Copy)]
pub struct WaitPolicy {
    /// Busy-poll window before backing off.
    pub spin: Duration,
    /// Futex timeout: the liveness backstop.
    pub park_timeout: Duration,
}

impl Default for WaitPolicy {
    fn default() -> Self {
        WaitPolicy {
            spin: Duration::from_micros(50),
            park_timeout: Duration::from_millis(50),
        }
    }
}

/// How a wait ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Waited {
    /// `ready()` became true while spinning or backing off.
    Spun,
    /// `ready()` was true at the re-check after announcing the park ([W3]).
    Rechecked,
    /// Parked and woken (or the word changed) — a peer's [W6] reached us.
    Woken,
    /// Parked until the timeout; `ready` tells whether work had arrived unannounced
    /// (a backstop hit, counted in `STAT_TIMEOUT_WAKEUPS`).
    TimedOut {
        /// `ready()` after the timeout.
        ready: bool,
    },
}

impl WaitPolicy {
    /// Waits until `ready()` is true or one park times out. `word` is the park word this
    /// side sleeps on, reached through `mem` (the request ring's `Park::Consumer` for the
    /// worker). Returns after at most about `spin + park_timeout`.
    pub fn wait<M: RingMemory>(
        &self,
        mem: &M,
        word: Park,
        mut ready: impl FnMut() -> bool,
    ) -> Waited {
        // Busy-poll for a few µs (a request usually answers faster than a context switch),
        // then keep polling but yield the core between polls until the spin window ends: on a
        // machine where the peer shares our core, a pure spin would keep it from running at
        // all (measured: 64 B echo p50 68 µs with a 50 µs pure spin on one core, 16 µs with
        // none; see the closing note of the Python client).
        let start = Instant::now();
        let pure = self.spin.min(Duration::from_micros(4));
        let mut i = 0u32;
        while i & 31 != 0 || start.elapsed() < self.spin {
            if ready() {
                return Waited::Spun;
            }
            if i & 31 == 31 && start.elapsed() >= pure {
                yield_now();
            } else {
                spin_hint();
            }
            i = i.wrapping_add(1);
        }
        let backoff = Backoff::new();
        while !backoff.is_completed() {
            if ready() {
                return Waited::Spun;
            }
            backoff.snooze();
        }
        self.park(mem, word, ready)
    }

    /// Steps [W1]–[W4]: announce, fence, re-check, sleep. On `word` = `Park::Consumer` we
    /// wait for frames (`PARKED`); on `Park::Producer`, for room (`PARKED_FOR_ROOM`): the
    /// peer wakes us only for what we announced (layout.md §11).
    pub fn park<M: RingMemory>(&self, mem: &M, word: Park, ready: impl FnMut() -> bool) -> Waited {
        self.park_for(mem, word, parked_bit(word), ready)
    }

    /// [`park`](Self::park) announcing `bits` (`PARKED`, `PARKED_FOR_ROOM`, or both): for a
    /// side that waits for either event on one word, as a client blocked on request-ring room
    /// does while it must also drain answers.
    pub fn park_for<M: RingMemory>(
        &self,
        mem: &M,
        word: Park,
        bits: u32,
        mut ready: impl FnMut() -> bool,
    ) -> Waited {
        let parked = bits;
        // ORDERING [W1]: Relaxed store; ordered before the re-check by the fence below.
        mem.store_park(word, parked, Ordering::Relaxed);
        // [W2] StoreLoad: the park bit must be visible before we re-load the peer's index, or
        // the peer's [W5]/[W6] may read AWAKE while we read its old index: a lost wake-up.
        // Pairs with barrier_memory() in `notify` (Rust) and in `client.py` (Python).
        barrier_memory_at(Step::W2);
        if ready() {
            // [W3] work arrived between the last poll and the announcement.
            mem.store_park(word, AWAKE, Ordering::Relaxed);
            return Waited::Rechecked;
        }
        // [W4] sleeps only while the word still holds our bit; a waker stores AWAKE first.
        let outcome = mem.park_wait(word, parked, self.park_timeout);
        mem.store_park(word, AWAKE, Ordering::Relaxed);
        match outcome {
            WaitOutcome::TimedOut => Waited::TimedOut { ready: ready() },
            WaitOutcome::Woken | WaitOutcome::Changed => Waited::Woken,
        }
    }
}

/// The bit a waiter on `word` announces: frames for a consumer, room for a producer.
pub fn parked_bit(word: Park) -> u32 {
    match word {
        Park::Consumer => PARKED,
        Park::Producer => PARKED_FOR_ROOM,
    }
}

/// Steps [W5]–[W6]: after publishing (tail store, `peer` = `Park::Consumer`) or releasing
/// (head store, `peer` = `Park::Producer`), wake the peer if it parked waiting for that.
/// Returns true when a futex wake was issued.
pub fn notify<M: RingMemory>(mem: &M, peer: Park) -> bool {
    // [W5] StoreLoad: our index store must be visible before we read the peer's word.
    // Pairs with barrier_memory() at [W2] in `WaitPolicy::park` and in `client.py`.
    barrier_memory_at(Step::W5);
    // ORDERING [W6]: Relaxed load; the fence above orders it after our index store.
    if mem.load_park(peer, Ordering::Relaxed) & parked_bit(peer) != 0 {
        // Storing AWAKE first makes a wait that has not started yet return at once.
        mem.store_park(peer, AWAKE, Ordering::Relaxed);
        mem.park_wake(peer);
        return true;
    }
    false
}
