//! When to spin, when to doze, when to park: the worker's idle plan, learned from the gaps
//! between the client's requests (layout.md §11 "Worker").
//!
//! Pure bookkeeping over instants the caller passes in: no clock, no syscall, no shared
//! memory, so every rule below has a unit test at the bottom of this file.
//!
//! * **Hot window.** After a request the worker keeps polling for `hot` (default 2 ms,
//!   `--spin-us`): a client that calls again within a millisecond finds it awake and pays no
//!   wake-up. The window runs from the last request, not from the start of the idle spell,
//!   so a park that times out with nothing to do parks again at once (an idle worker wakes
//!   only for its liveness checks).
//! * **Cadence.** When the last two gaps between requests are each longer than the hot
//!   window (which could not have caught them) and the middle two of the last [`GAPS`] agree
//!   (a GUI calling every 16 ms, or every 5 ms with one late call and its catch-up, or a
//!   short gap at the start of a burst: a call and the prefetch it sends next), the next
//!   request is predicted at `last + their mean`. One short gap thus costs two hot windows,
//!   not four (at 60 Hz each is a 2 ms spin); a client calling twice per frame has a short
//!   gap among every two and keeps the hot window. The worker then dozes (a timed park) until shortly
//!   before it and polls from there: it is awake when the request lands without spinning
//!   through the gap. How early it wakes (`lead`) covers the timer's measured lateness and
//!   the gaps' jitter.
//! * **Long irregular gaps.** When the last two gaps are long and the last four do not agree, a hot window
//!   after each request would be spent for nothing: the worker parks after a short spin,
//!   and the next request costs the operating system's wake-up.
//! * **Early wake.** A client may wake a parked worker before it encodes a request
//!   ([W7]: a wake with no frame behind it yet); such a wake opens a hot window, so the
//!   worker polls for the request instead of parking again. The cadence is kept: the
//!   request counts from the wake, one `lateness` earlier, where the client's call began
//!   (see [`Pacer::on_request`]).
//! * **Requests nobody waits for.** A batch of requests the client sends without waiting
//!   for their answers (a GUI's snapshot pushes) is not a request for any rule above: the
//!   plan stays as it was, so pushes at a GUI's cadence are read at the park timeout, in one
//!   batch, instead of the worker polling before each one. Only a client that wakes the
//!   worker for them (it waits on them after all: a push at its limit, a flush) opens a
//!   stream window: the worker polls for a hot window from that wake, and each such batch
//!   found within it extends it, so pushes back to back are read as they come (see
//!   [`Pacer::on_unawaited`]).

use std::time::{Duration, Instant};

/// How many gaps between requests the cadence is learned from.
pub const GAPS: usize = 4;
/// The spin after a request when recent gaps are all long and irregular.
const SHORT_SPIN: Duration = Duration::from_micros(50);
/// Margin added to the lead on top of lateness and jitter. The worker polls about
/// `spread + LEAD_MARGIN` per period before an on-time request: 150 µs was 3% of a core at a
/// 5 ms cadence on its own (issue 10's budget for the whole phase); the spread term already
/// covers the gaps' measured jitter. 20 µs (and a window closing `spread + LEAD_MARGIN`
/// after `due`) saved little worker CPU at 60 Hz and let most calls of a 16 ms cadence find
/// the worker parked (p50 186 µs against 70–110), on this 2-vCPU VM under load.
const LEAD_MARGIN: Duration = Duration::from_micros(50);
/// The margin is at least the period divided by this (1%): a 16 ms cadence polls 160 µs
/// before its request, 1% of a core. Measured on 2026-12-01 with 50 µs at every period: a
/// 16 ms cadence found the worker parked at 72-83 of 130 calls (p50 208-282 µs); with 1%,
/// at none (p50 100-132 µs), the worker at 0.5-1.2% of a core.
const MARGIN_PER_PERIOD: u32 = 100;
/// A doze's lateness counts at most this many times the current estimate (plus
/// [`LATE_FLOOR`]): one scheduling hiccup of a millisecond would otherwise widen the window
/// of the next several periods by hundreds of µs of polling, while a timer that is late
/// for good still raises the estimate by a quarter per period.
const LATE_CLAMP: u32 = 2;
/// See [`LATE_CLAMP`].
const LATE_FLOOR: Duration = Duration::from_micros(10);
/// Largest lead: beyond it the cadence is too irregular to doze through.
const MAX_LEAD: Duration = Duration::from_millis(2);

/// What the worker does while it has nothing to do, in this order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Plan {
    /// Park (with a timeout ending then) until this instant first; a wake ends it early.
    pub doze_until: Option<Instant>,
    /// Then poll until this instant (no poll at all when it is already past).
    pub spin_until: Instant,
}

/// The cadence learner. See the module docs for the rules.
#[derive(Debug, Clone)]
pub struct Pacer {
    hot: Duration,
    /// When the last request arrived: gaps are measured between requests.
    last_request: Option<Instant>,
    /// When the hot window starts: the last request, or a later early wake.
    hot_from: Option<Instant>,
    /// The last gaps between arrivals, newest at `next - 1` (a ring of `GAPS`).
    gaps: [Duration; GAPS],
    filled: usize,
    next: usize,
    /// How late a doze's timer fired, smoothed (an EMA, 1/4 weight for each new sample).
    lateness: Duration,
    /// When the stream window opened or was last extended ([`Pacer::on_unawaited`]).
    stream_from: Option<Instant>,
}

impl Pacer {
    /// A pacer whose hot window is `hot`.
    pub fn new(hot: Duration) -> Pacer {
        Pacer {
            hot,
            last_request: None,
            hot_from: None,
            gaps: [Duration::ZERO; GAPS],
            filled: 0,
            next: 0,
            lateness: Duration::from_micros(60),
            stream_from: None,
        }
    }

    /// A request was found at `now` after the worker had gone idle (the first of a burst).
    ///
    /// After an early wake the request counts from the wake, one `lateness` earlier, as
    /// [`Pacer::on_woken_request`] counts one: the client's call began before its wake, and
    /// its request follows the wake by the client's own steps, which on a VM include the
    /// wake itself (tens of µs in the caller). Counted from the request, a call that found
    /// the worker dozing would place the next doze's end that much later, past the next
    /// call, and so on at every period (measured: 84 of 130 calls of a 5 ms cadence and 123
    /// of 130 of a 16 ms one found the worker parked).
    pub fn on_request(&mut self, now: Instant) {
        // An early wake since the last request is the one hot window that starts later than
        // that request (`on_early_wake`).
        let now = match self.hot_from {
            Some(woke) if self.last_request.is_none_or(|last| woke > last) && woke <= now => {
                woke.checked_sub(self.lateness).unwrap_or(woke)
            }
            _ => now,
        };
        if let Some(last) = self.last_request {
            self.gaps[self.next] = now.saturating_duration_since(last);
            self.next = (self.next + 1) % GAPS;
            self.filled = (self.filled + 1).min(GAPS);
        }
        self.last_request = Some(now);
        self.hot_from = Some(now);
    }

    /// A request was found at `now` right after a park ended by the client's wake: it landed
    /// one wake-up earlier. The timer's measured lateness stands in for that wake-up, so a
    /// request that came during a doze does not shift the predicted cadence late (which would
    /// make the next doze end after the next request, and so on, every other period).
    pub fn on_woken_request(&mut self, now: Instant) {
        self.on_request(now.checked_sub(self.lateness).unwrap_or(now));
    }

    /// The worker was woken at `now` with nothing to read: a client announced a request
    /// (early wake). Poll through a hot window from here; the request that follows counts
    /// from this wake ([`Pacer::on_request`]).
    pub fn on_early_wake(&mut self, now: Instant) {
        self.hot_from = Some(now);
    }

    /// A batch of requests nobody waits for (and nothing else) was found at `now`: after a
    /// client's wake (`woken`), or by polling or a park timeout. It trains nothing and opens
    /// no hot window: a GUI pushing at its cadence is served at the park timeout, with no
    /// polling before its pushes. A client that woke the worker for such a batch waits on it
    /// (a push at its limit of unanswered pushes, a flush): that opens a stream window, the
    /// worker polling for one hot window from `now`; a batch found while it is open extends
    /// it, so pushes back to back are read as they come. One found in a window that only
    /// awaited requests opened (the hot window, a cadence's poll) extends nothing.
    pub fn on_unawaited(&mut self, now: Instant, woken: bool) {
        if woken || self.stream_from.is_some_and(|s| now <= s + self.hot) {
            self.stream_from = Some(now);
        }
    }

    /// A doze meant to end at `deadline` ended by its timer at `now`.
    pub fn on_doze_timeout(&mut self, deadline: Instant, now: Instant) {
        let late = now
            .saturating_duration_since(deadline)
            .min(self.lateness * LATE_CLAMP + LATE_FLOOR)
            .min(MAX_LEAD);
        self.lateness = (self.lateness * 3 + late) / 4;
    }

    /// The plan for an idle spell starting at `now`: the awaited requests' plan, or while a
    /// stream window is open, polling to its end (and on through the awaited plan's own
    /// polling when that starts at once; a cadence's doze gives way to the window, after
    /// which the worker parks).
    pub fn plan(&self, now: Instant) -> Plan {
        let plan = self.awaited_plan(now);
        match self.stream_from.map(|s| s + self.hot) {
            Some(end) if end > now => Plan {
                doze_until: None,
                spin_until: if plan.doze_until.is_some() {
                    end
                } else {
                    plan.spin_until.max(end)
                },
            },
            _ => plan,
        }
    }

    /// The plan the awaited requests' arrivals make (the hot window, the cadence).
    fn awaited_plan(&self, now: Instant) -> Plan {
        let (Some(last), Some(hot_from)) = (self.last_request, self.hot_from) else {
            return Plan {
                doze_until: None,
                spin_until: now,
            };
        };
        let hot_end = hot_from + self.hot;
        if self.filled < GAPS || self.hot.is_zero() || hot_from > last {
            return Plan {
                doze_until: None,
                spin_until: hot_end,
            };
        }
        if self.newest_gap(0).min(self.newest_gap(1)) <= self.hot {
            // One of the last two calls came within the hot window of the one before: keep
            // it (a client calling twice per frame keeps finding the worker awake).
            return Plan {
                doze_until: None,
                spin_until: hot_end,
            };
        }
        let (spread, mean) = self.gap_stats();
        let lead = self.lateness + spread + LEAD_MARGIN.max(mean / MARGIN_PER_PERIOD);
        if lead > MAX_LEAD.min(mean / 4) {
            // Long and irregular: parking at once is all the worker can do.
            return Plan {
                doze_until: None,
                spin_until: last + SHORT_SPIN,
            };
        }
        let due = last + mean;
        let doze_until = due.checked_sub(lead).filter(|&t| t > now);
        Plan {
            doze_until,
            spin_until: due + lead,
        }
    }

    /// The spread of the middle two gaps (one outlier, a hiccup of the client or the
    /// machine, or the short gap at the start of a burst, neither stretches the lead nor
    /// breaks the cadence) and the period: their mean.
    fn gap_stats(&self) -> (Duration, Duration) {
        let mut g = self.gaps;
        g.sort_unstable();
        (g[2] - g[1], (g[1] + g[2]) / 2)
    }

    /// The gap before the last request (`0`), or before the one before it (`1`).
    fn newest_gap(&self, back: usize) -> Duration {
        self.gaps[(self.next + GAPS - 1 - back) % GAPS]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOT: Duration = Duration::from_millis(2);

    fn us(n: u64) -> Duration {
        Duration::from_micros(n)
    }

    fn fed(gaps: &[u64]) -> (Pacer, Instant) {
        let mut p = Pacer::new(HOT);
        let mut t = Instant::now();
        p.on_request(t);
        for &g in gaps {
            t += us(g);
            p.on_request(t);
        }
        (p, t)
    }

    #[test]
    fn a_fresh_pacer_parks_at_once() {
        let p = Pacer::new(HOT);
        let now = Instant::now();
        assert_eq!(p.plan(now).spin_until, now);
        assert_eq!(p.plan(now).doze_until, None);
    }

    #[test]
    fn the_hot_window_runs_from_the_last_request() {
        let (p, t) = fed(&[100, 300]);
        let plan = p.plan(t + us(10));
        assert_eq!(
            plan,
            Plan {
                doze_until: None,
                spin_until: t + HOT
            }
        );
        // A park that timed out long after finds the window spent: no spin.
        assert!(p.plan(t + us(50_000)).spin_until < t + us(50_000));
    }

    #[test]
    fn short_gaps_among_long_ones_keep_the_hot_window() {
        let (p, t) = fed(&[16_000, 16_000, 500, 16_000]);
        assert_eq!(p.plan(t).spin_until, t + HOT);
    }

    #[test]
    fn one_short_gap_keeps_the_hot_window_for_two_requests_only() {
        // A call and the prefetch it sends 50 µs later, then a 60 Hz cadence.
        let (p, t) = fed(&[16_000, 16_000, 16_000, 50]);
        assert_eq!(p.plan(t).doze_until, None);
        let (p, t) = fed(&[16_000, 16_000, 50, 16_000]);
        assert_eq!(
            p.plan(t).doze_until,
            None,
            "the short gap is one of the last two"
        );
        let (p, t) = fed(&[16_000, 50, 16_000, 16_000]);
        let plan = p.plan(t + us(20));
        let doze = plan
            .doze_until
            .expect("dozes: the short gap is an outlier of the four");
        assert!(doze > t + us(15_000) && plan.spin_until < t + us(16_400));
        // Two calls per frame: a short gap among every two keeps the hot window.
        let (p, t) = fed(&[500, 16_000, 500, 16_000]);
        assert_eq!(p.plan(t).spin_until, t + HOT);
    }

    #[test]
    fn a_steady_cadence_dozes_until_just_before_the_next_request() {
        let (p, t) = fed(&[16_000, 16_020, 15_990, 16_000]);
        let plan = p.plan(t + us(20));
        let due = t + us(16_000); // mean of the middle two gaps
        let doze = plan.doze_until.expect("dozes");
        assert!(doze < due && due - doze < us(300), "{:?}", due - doze);
        assert!(plan.spin_until > due && plan.spin_until - due < us(300));
    }

    #[test]
    fn a_long_period_keeps_a_margin_of_one_percent_of_it() {
        // Gaps that agree to the µs and a lateness of 60 µs: the lead is 60 + 0 + 160.
        let (p, t) = fed(&[16_000, 16_000, 16_000, 16_000]);
        let due = t + us(16_000);
        assert_eq!(due - p.plan(t).doze_until.unwrap(), us(60 + 160));
        // At 5 ms the 50 µs floor holds (1% would be 50 µs as well).
        let (p, t) = fed(&[5_000, 5_000, 5_000, 5_000]);
        assert_eq!(t + us(5_000) - p.plan(t).doze_until.unwrap(), us(60 + 50));
    }

    #[test]
    fn a_cadence_just_over_two_hot_windows_dozes_despite_a_catch_up_gap() {
        // 5 ms calls, one of them late and the next early (a 3 ms gap): no gap short enough
        // for the hot window to catch, so the worker dozes instead of polling 2 ms per call.
        let (p, t) = fed(&[5_000, 5_020, 4_990, 3_000]);
        let plan = p.plan(t + us(20));
        let doze = plan.doze_until.expect("dozes");
        assert!(
            plan.spin_until - doze < us(400),
            "{:?}",
            plan.spin_until - doze
        );
    }

    #[test]
    fn irregular_long_gaps_spin_only_briefly() {
        let (p, t) = fed(&[5_000, 48_000, 12_000, 30_000]);
        assert_eq!(
            p.plan(t),
            Plan {
                doze_until: None,
                spin_until: t + SHORT_SPIN
            }
        );
        let (p, t) = fed(&[16_000, 9_000, 16_000, 16_050]);
        assert!(
            p.plan(t).doze_until.is_some(),
            "one outlier keeps the cadence"
        );
        let (p, t) = fed(&[16_000, 9_000, 12_000, 16_050]);
        assert_eq!(
            p.plan(t),
            Plan {
                doze_until: None,
                spin_until: t + SHORT_SPIN
            }
        );
    }

    #[test]
    fn an_early_wake_opens_a_hot_window_and_keeps_the_cadence() {
        let (mut p, t) = fed(&[16_000, 16_000, 16_000, 16_000]);
        let woke = t + us(15_900);
        p.on_early_wake(woke);
        assert_eq!(
            p.plan(woke),
            Plan {
                doze_until: None,
                spin_until: woke + HOT
            }
        );
        p.on_request(t + us(16_000));
        assert!(p.plan(t + us(16_010)).doze_until.is_some());
    }

    #[test]
    fn a_late_timer_makes_the_doze_end_earlier() {
        let (mut p, t) = fed(&[16_000, 16_000, 16_000, 16_000]);
        let before = p.plan(t).doze_until.unwrap();
        for _ in 0..8 {
            p.on_doze_timeout(t, t + us(400));
        }
        let after = p.plan(t).doze_until.unwrap();
        assert!(after + us(200) < before);
    }

    #[test]
    fn one_scheduling_hiccup_barely_moves_the_window() {
        let (mut p, t) = fed(&[16_000, 16_000, 16_000, 16_000]);
        let before = p.plan(t);
        p.on_doze_timeout(t, t + us(1_500));
        let after = p.plan(t);
        let widened = before.doze_until.unwrap() - after.doze_until.unwrap();
        // At most a quarter of (2 × 60 + 10 − 60) µs, not a quarter of 1.5 ms.
        assert!(widened <= us(18), "{widened:?}");
    }

    #[test]
    fn a_woken_request_counts_from_one_wake_up_earlier() {
        let (mut p, t) = fed(&[16_000, 16_000, 16_000]);
        p.on_woken_request(t + us(16_000) + p.lateness);
        assert_eq!(p.gaps[(p.next + GAPS - 1) % GAPS], us(16_000));
    }

    #[test]
    fn a_request_after_an_early_wake_counts_from_the_wake() {
        let (mut p, t) = fed(&[16_000, 16_000, 16_000]);
        // The client's wake lands on time; its request follows 150 µs later (its own steps,
        // the wake syscall among them).
        let woke = t + us(16_000) + p.lateness;
        p.on_early_wake(woke);
        p.on_request(woke + us(150));
        assert_eq!(p.gaps[(p.next + GAPS - 1) % GAPS], us(16_000));
        // So the next doze ends before the next call, not 150 µs later each period.
        let now = woke + us(150);
        let doze = p.plan(now).doze_until.unwrap();
        assert!(doze < woke + us(16_000), "{:?}", doze - woke);
        // The wake is used once: a later request without one counts from itself.
        p.on_request(now + us(16_000));
        assert_eq!(p.gaps[(p.next + GAPS - 1) % GAPS], us(16_150) + p.lateness);
    }

    #[test]
    fn pushes_at_a_cadence_leave_the_plan_as_it_was() {
        // A 60 Hz cadence of awaited calls, then pushes found by the park timeout or by
        // polling in the cadence's window: the plan is the cadence's, from its last call.
        let (mut p, t) = fed(&[16_000, 16_000, 16_000, 16_000]);
        let before = p.plan(t + us(20));
        for i in 1..=6 {
            p.on_unawaited(t + us(16_000 * i + 100), false);
        }
        assert_eq!(p.plan(t + us(20)), before);
        // Nothing awaited since: no spin at all once the cadence's window has passed.
        let late = t + us(100_000);
        assert!(p.plan(late).spin_until <= late && p.plan(late).doze_until.is_none());
        // From a fresh pacer (pushes only): park at once.
        let mut p = Pacer::new(HOT);
        p.on_unawaited(t, false);
        assert_eq!(p.plan(t).spin_until, t);
    }

    #[test]
    fn a_wake_for_pushes_opens_a_stream_window_that_pushes_extend() {
        let mut p = Pacer::new(HOT);
        let t = Instant::now();
        p.on_unawaited(t, true);
        assert_eq!(
            p.plan(t + us(10)),
            Plan {
                doze_until: None,
                spin_until: t + HOT
            }
        );
        // Found by polling within the window: extended from there.
        p.on_unawaited(t + us(1_500), false);
        assert_eq!(p.plan(t + us(1_600)).spin_until, t + us(1_500) + HOT);
        // Past the window, a batch the timeout found opens nothing.
        let later = t + us(60_000);
        p.on_unawaited(later, false);
        assert_eq!(p.plan(later).spin_until, later);
        // A stream window overrides a cadence's doze, and ends with no doze after it.
        let (mut p, t) = fed(&[16_000, 16_000, 16_000, 16_000]);
        p.on_unawaited(t + us(100), true);
        let plan = p.plan(t + us(200));
        assert_eq!(plan.doze_until, None);
        assert_eq!(plan.spin_until, t + us(100) + HOT);
    }

    #[test]
    fn a_zero_hot_window_never_spins_after_a_request() {
        let mut p = Pacer::new(Duration::ZERO);
        let t = Instant::now();
        p.on_request(t);
        assert_eq!(p.plan(t).spin_until, t);
    }
}
