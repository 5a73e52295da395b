//! Shared pieces of the loom models of the chunkring protocol (layout.md §10, §11, §16).
//! Built only with `--cfg chunkring_loom` (see `ci/loom.sh`); every model drives the crate's
//! real `Producer`, `Consumer`, `MessageWriter`, `Reassembler` and `WaitPolicy` over
//! `ModelMemory` (loom atomics for the index and park words, loom cells for the chunks).
//!
//! [`check`] runs one model and prints its wall time, its iteration count (executions loom
//! explored) and how many distinct observations the consumer made across them — a model
//! whose consumer always sees the same thing is probably serialised and proves little, so
//! the models assert that count. [`check_fails`] runs a model with one tagged barrier
//! removed (`chunkring::barrier::weaken`) and asserts that loom reports a failure: the
//! suite's teeth.
#![cfg(chunkring_loom)]

use std::collections::BTreeSet;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chunkring::barrier::{weaken, Step};
use chunkring::frame::FrameHeader;
use chunkring::layout::{PARKED, PARKED_FOR_ROOM};
use chunkring::ring::model::ModelMemory;
use chunkring::ring::{Consumer, Producer, PushError};
use chunkring::wait::{notify, WaitPolicy};

/// Preemption bound used when `LOOM_MAX_PREEMPTIONS` is not set (tokio and crossbeam use 2;
/// 3 costs several times more).
pub const DEFAULT_PREEMPTIONS: usize = 2;

/// What [`check`] measured.
#[derive(Debug)]
pub struct Report {
    /// Executions loom explored.
    pub iterations: u64,
    /// Distinct observations the model returned across executions.
    pub observations: BTreeSet<String>,
    /// Wall time of the whole exploration.
    pub wall: Duration,
}

fn builder() -> loom::model::Builder {
    let mut b = loom::model::Builder::new();
    if b.preemption_bound.is_none() {
        b.preemption_bound = Some(DEFAULT_PREEMPTIONS);
    }
    b
}

/// Runs `model` under loom; each execution returns an observation (e.g. the sequence of
/// poll results the consumer saw). Prints `loom model NAME: N iterations, K distinct
/// observations, T s`.
pub fn check<F>(name: &str, model: F) -> Report
where
    F: Fn() -> String + Sync + Send + 'static,
{
    let iterations = Arc::new(Mutex::new(0u64));
    let observations = Arc::new(Mutex::new(BTreeSet::new()));
    let (it, obs) = (Arc::clone(&iterations), Arc::clone(&observations));
    let b = builder();
    let start = Instant::now();
    b.check(move || {
        *it.lock().unwrap() += 1;
        let o = model();
        obs.lock().unwrap().insert(o);
    });
    let wall = start.elapsed();
    let report = Report {
        iterations: *iterations.lock().unwrap(),
        observations: std::mem::take(&mut *observations.lock().unwrap()),
        wall,
    };
    println!(
        "loom model {name}: {} iterations, {} distinct observations, {:.2} s (preemption bound {})",
        report.iterations,
        report.observations.len(),
        wall.as_secs_f64(),
        b.preemption_bound.unwrap_or(0),
    );
    report
}

/// Runs `model` with the barrier of `step` removed and returns loom's failure message;
/// panics if loom explored every execution without finding a failure.
pub fn check_fails<F>(name: &str, step: Step, model: F) -> String
where
    F: Fn() -> String + Sync + Send + 'static,
{
    let _weak = weaken::disable(step);
    expect_failure(&format!("{name} without {step:?}"), model)
}

/// Runs `model` and returns loom's failure message (a data race, a deadlock, a failed
/// assertion); panics if loom explored every execution without finding one.
pub fn expect_failure<F>(name: &str, model: F) -> String
where
    F: Fn() -> String + Sync + Send + 'static,
{
    let iterations = Arc::new(Mutex::new(0u64));
    let it = Arc::clone(&iterations);
    let b = builder();
    let start = Instant::now();
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        b.check(move || {
            *it.lock().unwrap() += 1;
            let _ = model();
        })
    }));
    let wall = start.elapsed();
    let n = *iterations.lock().unwrap();
    let message = match outcome {
        Ok(()) => panic!(
            "loom model {name}: explored {n} executions and found no failure; the protocol \
             does not rely on what was removed, or the model cannot see it"
        ),
        Err(payload) => payload
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_owned()))
            .unwrap_or_else(|| "non-string panic".to_owned()),
    };
    println!(
        "loom model {name}: failure found at execution {n}, {:.2} s: {}",
        wall.as_secs_f64(),
        message.lines().next().unwrap_or("")
    );
    message
}

/// A tiny ring: few chunks keep loom's state space small (tokio uses 4-slot queues).
pub fn tiny_ring(chunks: u64, chunk_bytes: usize) -> ModelMemory {
    ModelMemory::new(chunks, chunk_bytes)
}

/// A frame's payload: `len` bytes derived from `id`, different for every frame and position,
/// so an overwritten or stale chunk cannot pass the byte comparison.
pub fn payload(id: u64, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (id as u8).wrapping_mul(31) ^ i as u8)
        .collect()
}

/// The header of a single-frame message.
pub fn header(id: u64, len: usize) -> FrameHeader {
    FrameHeader::message(1, id, len as u32, len as u64)
}

/// Pushes one frame, publishing and yielding while the ring is full.
pub fn push_blocking(p: &mut Producer<ModelMemory>, id: u64, payload: &[u8]) {
    let h = header(id, payload.len());
    loop {
        match p.try_push(&h, payload) {
            Ok(()) => return,
            Err(PushError::Full) => {
                p.publish();
                loom::thread::yield_now();
            }
            Err(e) => panic!("{e}"),
        }
    }
}

/// A producer thread that pushes `frames` in order, publishing each ([R4]) and, with
/// `notify`, waking a parked consumer ([W5]–[W6]); it returns the padding frames it wrote.
pub fn spawn_producer(
    mem: ModelMemory,
    frames: Vec<(u64, Vec<u8>)>,
    notify: bool,
) -> loom::thread::JoinHandle<u64> {
    loom::thread::spawn(move || {
        let mut p = Producer::new(mem);
        for (id, payload) in &frames {
            push_blocking(&mut p, *id, payload);
            p.publish();
            if notify {
                notify_consumer(&p);
            }
        }
        p.padding_frames()
    })
}

/// [W5]–[W6] after a publish, as the worker's flush does: wakes the ring's consumer if it
/// parked waiting for frames. The ring ends never wake anyone themselves; the side that
/// drives them (the worker, the client, here the model) decides.
pub fn notify_consumer(p: &Producer<ModelMemory>) -> bool {
    notify(p.consumer_park_word(), PARKED)
}

/// [W5]–[W6] after a release: wakes the ring's producer if it parked waiting for room.
pub fn notify_producer(c: &Consumer<ModelMemory>) -> bool {
    notify(c.producer_park_word(), PARKED_FOR_ROOM)
}

/// Polls until `n` frames arrived; returns (request id, payload) pairs and the observation
/// string: `.` for a poll that found nothing (runs collapsed), then each frame's id.
pub fn consume(c: &mut Consumer<ModelMemory>, n: usize) -> (Vec<(u64, Vec<u8>)>, String) {
    let mut seen = Vec::new();
    let mut obs = String::new();
    let mut buf = Vec::new();
    while seen.len() < n {
        match c.poll(&mut buf) {
            Ok(Some(h)) => {
                obs.push_str(&h.request_id.to_string());
                seen.push((h.request_id, buf[..h.payload_len as usize].to_vec()));
            }
            Ok(None) => {
                if !obs.ends_with('.') {
                    obs.push('.');
                }
                loom::thread::yield_now()
            }
            Err(e) => panic!("consumer saw a malformed frame: {e}"),
        }
    }
    (seen, obs)
}

/// The consumer's policy in the park/wake models: no spin, so an empty ring parks at once
/// (the timeout is never reached: the modelled futex has none).
pub fn park_at_once() -> WaitPolicy {
    WaitPolicy {
        spin: Duration::ZERO,
        park_timeout: Duration::from_millis(50),
    }
}

/// Polls until `n` frames arrived, calling `wait` each time the ring is empty; returns
/// (request id, payload) pairs and the observation string: the letter `wait` returned for
/// each wait, in order.
pub fn consume_waiting<F>(
    c: &mut Consumer<ModelMemory>,
    n: usize,
    mut wait: F,
) -> (Vec<(u64, Vec<u8>)>, String)
where
    F: FnMut(&Consumer<ModelMemory>) -> char,
{
    let mut seen = Vec::new();
    let mut buf = Vec::new();
    let mut obs = String::new();
    while seen.len() < n {
        match c.poll(&mut buf) {
            Ok(Some(h)) => seen.push((h.request_id, buf[..h.payload_len as usize].to_vec())),
            Ok(None) => obs.push(wait(c)),
            Err(e) => panic!("{e}"),
        }
    }
    (seen, obs)
}

/// `(id, payload)` pairs for frames of the given payload lengths, ids from 1.
pub fn frames(lens: &[usize]) -> Vec<(u64, Vec<u8>)> {
    lens.iter()
        .enumerate()
        .map(|(i, &len)| (i as u64 + 1, payload(i as u64 + 1, len)))
        .collect()
}
