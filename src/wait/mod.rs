//! Waiting without burning a core: spin, then back off, then park on the side's futex word
//! with a bounded timeout (layout.md §11, steps [W1]–[W6] of §10).
//!
//! This layer sits below the ring: it knows park words only through [`ParkWord`], which the
//! ring memories implement (`ring::memory::MappedMemory` over the region's futex words, the
//! loom `ModelMemory` over loom atomics and a modelled futex). It decides nothing about *when*
//! to wake: the worker calls [`notify`] after it publishes or releases.

use std::time::{Duration, Instant};

use crate::barrier::{barrier_memory_at, Step};
use crate::layout::AWAKE;
use crate::sync::{spin_hint, yield_now, Backoff, Ordering};

pub mod futex;
pub mod pacer;

pub use futex::WaitOutcome;
pub use pacer::{Pacer, Plan};

/// A 32-bit park (futex) word shared with the peer (layout.md §4, §11): what [`WaitPolicy`]
/// and [`notify`] need from it. Its value is `AWAKE` or a set of `PARKED`/`PARKED_FOR_ROOM`
/// bits announced by the side that sleeps on it.
pub trait ParkWord {
    /// Loads the word.
    fn load(&self, o: Ordering) -> u32;
    /// Stores the word.
    fn store(&self, v: u32, o: Ordering);
    /// Blocks while the word equals `expected`, at most `timeout` ([W4]); the check and the
    /// sleep are one atomic step, as `FUTEX_WAIT` makes them.
    fn wait(&self, expected: u32, timeout: Duration) -> WaitOutcome;
    /// Wakes one waiter blocked on the word ([W6]).
    fn wake(&self);
}

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
    /// side sleeps on (the worker's `WORKER_FUTEX`), `bits` what it announces there when it
    /// parks (see [`park`](Self::park)). Returns after at most about `spin + park_timeout`.
    pub fn wait(&self, word: impl ParkWord, bits: u32, mut ready: impl FnMut() -> bool) -> Waited {
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
        self.park(word, bits, ready)
    }

    /// Waits the way `plan` says (the worker's idle spell, layout.md §11 "Worker"): first a
    /// doze (a park whose timeout ends at `plan.doze_until`), then polls until
    /// `plan.spin_until`, yielding the core every `yield_every` polls, then parks with the
    /// park timeout. The doze and the park are the same [W1]–[W4] steps as
    /// [`park`](Self::park); only their timeouts differ. A doze longer than the park timeout
    /// (a cadence slower than it) parks one park timeout and returns
    /// `Waited::TimedOut { ready: false }`, as a park does: the caller runs its liveness
    /// checks and plans again, dozing on, instead of polling through the rest of the doze.
    /// Returns how the wait ended and, when the doze ran out at `doze_until` with nothing to
    /// do, the instant it did (the timer's lateness is `that - doze_until`); also when a wake
    /// ended the doze after `doze_until` (the timer was at least that late).
    pub fn wait_planned<W: ParkWord>(
        &self,
        word: impl Fn() -> W,
        bits: u32,
        mut ready: impl FnMut() -> bool,
        plan: Plan,
        yield_every: u32,
    ) -> (Waited, Option<Instant>) {
        let mut doze_end = None;
        if let Some(until) = plan.doze_until {
            let now = Instant::now();
            if until > now {
                let capped = until - now > self.park_timeout;
                let nap = WaitPolicy {
                    spin: Duration::ZERO,
                    park_timeout: (until - now).min(self.park_timeout),
                };
                match nap.park(word(), bits, &mut ready) {
                    // Cut short by the park timeout, not at the plan's end: doze on after the
                    // caller's checks (measured before: a 200 ms cadence spun 150 ms of every
                    // period, 45% of a core).
                    w @ Waited::TimedOut { ready: false } if capped => return (w, None),
                    Waited::TimedOut { ready: false } => doze_end = Some(Instant::now()),
                    Waited::TimedOut { ready: true } => return (Waited::Spun, None),
                    // Woken after the doze's end: its timer had not fired by then, so it was
                    // at least that late. Left out, the late timers a client's wake beats
                    // would never count, and the lateness estimate would stay low exactly
                    // when it should grow (measured: 25 µs while doze ends came 100 µs late).
                    Waited::Woken if !capped => {
                        let now = Instant::now();
                        return (Waited::Woken, (now > until).then_some(now));
                    }
                    w => return (w, None),
                }
            }
        }
        let every = yield_every.max(1);
        let mut i = 0u32;
        while Instant::now() < plan.spin_until {
            for _ in 0..8 {
                if ready() {
                    return (Waited::Spun, doze_end);
                }
                i = i.wrapping_add(1);
                if i.is_multiple_of(every) {
                    yield_now();
                } else {
                    spin_hint();
                }
            }
        }
        (self.park(word(), bits, ready), doze_end)
    }

    /// Steps [W1]–[W4]: announce, fence, re-check, sleep. `bits` says what we wait for:
    /// frames (`PARKED`, a ring's consumer), room (`PARKED_FOR_ROOM`, a ring's producer), or
    /// both (a client blocked on request-ring room that must also drain answers). The peer
    /// wakes us only for what we announced (layout.md §11).
    pub fn park(&self, word: impl ParkWord, bits: u32, mut ready: impl FnMut() -> bool) -> Waited {
        let parked = bits;
        // ORDERING [W1]: Relaxed store; ordered before the re-check by the fence below.
        word.store(parked, Ordering::Relaxed);
        // [W2] StoreLoad: the park bit must be visible before we re-load the peer's index, or
        // the peer's [W5]/[W6] may read AWAKE while we read its old index: a lost wake-up.
        // Pairs with barrier_memory() at [W5] in `notify` (Rust) and in
        // `python/chunkring/_ring.py` (Python).
        barrier_memory_at(Step::W2);
        if ready() {
            // [W3] work arrived between the last poll and the announcement.
            word.store(AWAKE, Ordering::Relaxed);
            return Waited::Rechecked;
        }
        // [W4] sleeps only while the word still holds our bit; a waker stores AWAKE first.
        let outcome = word.wait(parked, self.park_timeout);
        word.store(AWAKE, Ordering::Relaxed);
        match outcome {
            WaitOutcome::TimedOut => Waited::TimedOut { ready: ready() },
            WaitOutcome::Woken | WaitOutcome::Changed => Waited::Woken,
        }
    }
}

/// Steps [W5]–[W6]: after publishing (a tail store; `peer` is the consumer's word, `bit` is
/// `PARKED`) or releasing (a head store; the producer's word, `PARKED_FOR_ROOM`), wake the
/// peer if it parked waiting for that. The worker decides when to call this, once per batch.
/// Returns true when a futex wake was issued.
pub fn notify(peer: impl ParkWord, bit: u32) -> bool {
    // [W5] StoreLoad: our index store must be visible before we read the peer's word.
    // Pairs with barrier_memory() at [W2] in `WaitPolicy::park` and in
    // `python/chunkring/_ring.py`.
    barrier_memory_at(Step::W5);
    // ORDERING [W6]: Relaxed load; the fence above orders it after our index store.
    if peer.load(Ordering::Relaxed) & bit != 0 {
        // Storing AWAKE first makes a wait that has not started yet return at once.
        peer.store(AWAKE, Ordering::Relaxed);
        peer.wake();
        return true;
    }
    false
}

#[cfg(all(test, not(chunkring_loom)))]
mod tests {
    use super::*;
    use std::cell::Cell;

    /// A park word whose wait plays a script: it sleeps `past` beyond the timeout (`None`:
    /// not at all), then ends as `outcome`.
    struct Scripted {
        word: Cell<u32>,
        past: Option<Duration>,
        outcome: WaitOutcome,
    }

    impl Scripted {
        /// No one wakes it: the wait sleeps through the timeout.
        fn sleepy() -> Scripted {
            Scripted::new(Some(Duration::ZERO), WaitOutcome::TimedOut)
        }

        fn new(past: Option<Duration>, outcome: WaitOutcome) -> Scripted {
            Scripted {
                word: Cell::new(AWAKE),
                past,
                outcome,
            }
        }
    }

    impl ParkWord for &Scripted {
        fn load(&self, _: Ordering) -> u32 {
            self.word.get()
        }
        fn store(&self, v: u32, _: Ordering) {
            self.word.set(v);
        }
        fn wait(&self, _: u32, timeout: Duration) -> WaitOutcome {
            if let Some(past) = self.past {
                std::thread::sleep(timeout + past);
            }
            self.outcome
        }
        fn wake(&self) {}
    }

    #[test]
    #[cfg_attr(miri, ignore)] // sleeps
    fn a_doze_longer_than_the_park_timeout_returns_after_one_park_timeout() {
        let word = Scripted::sleepy();
        let policy = WaitPolicy {
            spin: Duration::ZERO,
            park_timeout: Duration::from_millis(1),
        };
        let start = Instant::now();
        // A cadence of ten seconds: the doze is cut at the park timeout, and the rest of it
        // is not polled through (the caller plans again).
        let plan = Plan {
            doze_until: Some(start + Duration::from_secs(10)),
            spin_until: start + Duration::from_secs(11),
        };
        let (waited, doze_end) = policy.wait_planned(|| &word, 1, || false, plan, 32);
        assert_eq!(waited, Waited::TimedOut { ready: false });
        assert_eq!(
            doze_end, None,
            "no lateness measured: the doze did not reach its end"
        );
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "it polled through the doze"
        );
        assert_eq!(word.word.get(), AWAKE);
        // A doze within the park timeout ends at its end, then polls and parks.
        let policy = WaitPolicy {
            spin: Duration::ZERO,
            park_timeout: Duration::from_secs(1),
        };
        let start = Instant::now();
        let plan = Plan {
            doze_until: Some(start + Duration::from_millis(2)),
            spin_until: start + Duration::from_millis(3),
        };
        let ends = Cell::new(0);
        let (waited, doze_end) = policy.wait_planned(
            || &word,
            1,
            || {
                ends.set(ends.get() + 1);
                Instant::now() >= start + Duration::from_millis(2) && ends.get() > 3
            },
            plan,
            32,
        );
        assert_eq!(
            waited,
            Waited::Spun,
            "found work while polling after the doze"
        );
        assert!(doze_end.is_some_and(|e| e >= start + Duration::from_millis(2)));
    }

    #[test]
    #[cfg_attr(miri, ignore)] // sleeps
    fn a_wake_after_the_doze_should_have_ended_counts_as_the_timer_late() {
        // Woken 2 ms after the doze's timeout should have fired: a timer the host ran late,
        // beaten by a peer's wake.
        let word = Scripted::new(Some(Duration::from_millis(2)), WaitOutcome::Woken);
        let policy = WaitPolicy {
            spin: Duration::ZERO,
            park_timeout: Duration::from_secs(1),
        };
        let start = Instant::now();
        let until = start + Duration::from_millis(1);
        let plan = Plan {
            doze_until: Some(until),
            spin_until: until,
        };
        let (waited, doze_end) = policy.wait_planned(|| &word, 1, || false, plan, 32);
        assert_eq!(waited, Waited::Woken);
        assert!(
            doze_end.is_some_and(|e| e >= until + Duration::from_millis(2)),
            "the lateness sample: {:?}",
            doze_end.map(|e| e - until)
        );
        // Woken before the doze's end: no sample (the timer was not due yet).
        let early = Plan {
            doze_until: Some(Instant::now() + Duration::from_secs(10)),
            spin_until: Instant::now() + Duration::from_secs(10),
        };
        let policy = WaitPolicy {
            spin: Duration::ZERO,
            park_timeout: Duration::from_secs(20),
        };
        let word = Scripted::new(None, WaitOutcome::Woken);
        let (waited, doze_end) = policy.wait_planned(|| &word, 1, || false, early, 32);
        assert_eq!((waited, doze_end), (Waited::Woken, None));
    }
}
