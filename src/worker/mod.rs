//! The worker: poll the request ring, dispatch, answer on the response ring; park when idle;
//! stop on a signal, on `OP_SHUTDOWN`, or when its owner process dies (layout.md §11, §12).
//!
//! Every request id is answered exactly once, in order: with the op's output, or with an
//! error frame. Malformed frames are answered and skipped (layout.md §6.5); nothing a client
//! writes can make the worker panic, hang or read outside the rings.
#![forbid(unsafe_code)]

use std::collections::VecDeque;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::error::ErrorCode;
use crate::layout::*;
use crate::liveness;
use crate::ops::Registry;
use crate::region::{file, shm, sigbus, Region, RegionConfig, RegionError};
use crate::ring::fragment::FragmentError;
use crate::ring::{
    Consumer, MappedMemory, MessageWriter, PollError, Producer, Reassembled, Reassembler,
};
use crate::wait::{self, Pacer, WaitPolicy, Waited};

mod counters;
pub mod dispatch;
mod heartbeat;

use counters::Counters;
use dispatch::{Dispatcher, Reply};

/// While polling for requests the worker yields its core every this many polls (about a
/// microsecond): a client the scheduler put on the same CPU gets to run at once, and on a
/// core of its own the yield returns at once.
const YIELD_EVERY: u32 = 32;
/// Ops a client sends without waiting for the answer (a GUI's snapshot pushes, layout.md §9.3):
/// a batch of only these trains no cadence and opens no hot window (layout.md §11 "Worker" 7,
/// [`Pacer::on_unawaited`]).
const UNAWAITED_OPS: [u16; 2] = [OP_SNAP_PUSH, OP_SNAP_PUSH_FIELDS];
/// The spin before parking while the response ring is full (the client frees room when it
/// reads, which may take a while).
const ROOM_SPIN: Duration = Duration::from_micros(50);

/// Where the region lives.
#[derive(Debug, Clone)]
pub enum Place {
    /// POSIX shm `chunkring-<name>`.
    Shm(String),
    /// A file mapped with memmap2.
    File(PathBuf),
}

/// When an idle spell ended with requests to read, and whether a client's wake ended it.
#[derive(Debug, Clone, Copy)]
struct Arrival {
    at: Instant,
    woken: bool,
}

/// Everything `chunkring serve` takes.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// Where to create the region.
    pub place: Place,
    /// Ring and chunk sizes, limits, park timeout.
    pub config: RegionConfig,
    /// Stop when this process is gone (set by `Client.spawn`).
    pub owner_pid: Option<u32>,
    /// The hot window: how long to keep polling after the last request before parking
    /// (layout.md §11 "Worker"); zero parks at once.
    pub spin: Duration,
}

/// Why `serve` returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// SIGINT or SIGTERM.
    Signal,
    /// An `OP_SHUTDOWN` request.
    Shutdown,
    /// The `--owner-pid` process is gone.
    OwnerGone,
    /// A header field that never changes after start no longer reads as it was written (a
    /// scribbled header, layout.md §12 "Header check"); the worker marks itself
    /// `WORKER_FAILED` and stops instead of serving rings it can no longer trust.
    HeaderChanged,
    /// Another process truncated the region's file under the worker (layout.md §12
    /// "Truncated region"): noticed by the SIGBUS handler of `region::sigbus`, which replaced
    /// the mapping with zero pages, or by a liveness check's size check. Nothing in it can be
    /// served any more.
    RegionLost,
}

/// Creates the region, serves until told to stop, marks it stopped and (for shm) unlinks it.
///
/// # Errors
/// A [`RegionError`] when the region cannot be created.
pub fn serve(opts: &ServeOptions) -> Result<StopReason, RegionError> {
    liveness::install_stop_handlers();
    let (region, _shm) = match &opts.place {
        Place::Shm(name) => {
            let (region, backing) = shm::create(name, &opts.config)?;
            (region, Some(backing))
        }
        Place::File(path) => (file::create(path, &opts.config)?, None),
    };
    wait::futex::tighten_timer_slack();
    liveness::keep_large_buffers_in_heap();
    let mut worker = Worker::new(region.clone(), Registry::with_all_ops(), opts)?;
    // Heartbeats from before READY until the state is final, also during long ops (§12);
    // dropped (stopped, joined) before `_shm` unlinks the object.
    let heartbeat = heartbeat::Heartbeat::start(region.clone())
        .map_err(|e| RegionError::Os(format!("cannot start the heartbeat thread: {e}")))?;
    region.header().set_ready();
    let reason = worker.run();
    if reason != StopReason::HeaderChanged {
        region.header().set_worker_state(WORKER_STOPPED);
    }
    drop(heartbeat);
    Ok(reason) // dropping `_shm` (the owner) unlinks the object
}

/// The serve loop's state.
#[derive(Debug)]
pub struct Worker {
    region: Region,
    requests: Consumer<MappedMemory>,
    responses: Producer<MappedMemory>,
    reassembler: Reassembler,
    dispatcher: Dispatcher,
    /// Responses the response ring had no room for yet, oldest first. One frame can produce
    /// two (an abandoned fragmented message's error, then its own answer), so this is a queue.
    pending: VecDeque<MessageWriter>,
    buf: Vec<u8>,
    policy: WaitPolicy,
    /// When to spin, doze and park while idle, learned from the gaps between requests.
    pacer: Pacer,
    /// Yield the core every this many polls: 1 when the client can only run on our one CPU.
    yield_every: u32,
    /// Work found by the last idle spell, told to the pacer once its first awaited request
    /// is read (or, at the next idle spell, as a batch nobody waits for).
    arrival: Option<Arrival>,
    owner_pid: Option<u32>,
    stop: Option<StopReason>,
    last_check: Instant,
    /// The request-ring head the client was last told about ([W5]–[W6] for room).
    announced_req_head: u64,
    /// Stats counted since the last flush.
    counters: Counters,
    /// The header's sizes as validated at start, re-checked at every liveness check.
    config: RegionConfig,
    /// Every frame in both rings must carry a CRC-32 trailer (`FRAME_CRC_REQUIRED`, §6.6).
    crc_required: bool,
    /// Whether the frames we write carry `FLAG_CRC`: always when required, else as the
    /// last request frame read did (its answer follows it, §6.6).
    crc_out: bool,
    /// Requests answered `SHUTTING_DOWN` since the stop (bounded by
    /// [`MAX_REFUSED_AFTER_STOP`], so a client that keeps publishing cannot keep us alive).
    refused_after_stop: u32,
}

/// The largest request buffer the worker keeps between messages (at least one ring's worth,
/// what a frame needs anyway): a message up to this size is copied out of the ring into a
/// buffer that is already there (no allocation, no page faults); a larger one's buffer is
/// freed once it is answered.
const KEPT_BUFFER_BYTES: usize = 8 << 20;

/// Most requests a stopping worker answers with `SHUTTING_DOWN` before it stops reading.
const MAX_REFUSED_AFTER_STOP: u32 = 4096;

impl Worker {
    /// A worker over an initialised region.
    ///
    /// # Errors
    /// [`RegionError::BadHeader`] when the rings do not fit the mapping.
    pub fn new(
        region: Region,
        registry: Registry,
        opts: &ServeOptions,
    ) -> Result<Worker, RegionError> {
        let config = region.validate()?;
        let crc_required = config.frame_crc == FRAME_CRC_REQUIRED;
        let mut requests = Consumer::new(region.request_ring()?);
        requests.require_crc(crc_required);
        let announced_req_head = requests.head();
        let responses = Producer::new(region.response_ring()?);
        Ok(Worker {
            reassembler: Reassembler::new(config.max_message_bytes),
            dispatcher: Dispatcher::new(registry, config.chunk_bytes, config.max_message_bytes),
            region,
            requests,
            responses,
            pending: VecDeque::new(),
            buf: Vec::new(),
            // The spin before parking for response-ring room; waiting for requests follows
            // the pacer's plan.
            policy: WaitPolicy {
                spin: opts.spin.min(ROOM_SPIN),
                park_timeout: Duration::from_micros(config.park_timeout_us),
            },
            pacer: Pacer::new(opts.spin),
            yield_every: YIELD_EVERY,
            arrival: None,
            owner_pid: opts.owner_pid,
            stop: None,
            last_check: Instant::now(),
            announced_req_head,
            counters: Counters::default(),
            refused_after_stop: 0,
            crc_required,
            crc_out: crc_required,
            config,
        })
    }

    /// Serves until a stop reason arises.
    pub fn run(&mut self) -> StopReason {
        loop {
            let progressed = self.drain();
            self.flush();
            if liveness::stop_requested() && self.stop.is_none() {
                self.stop = Some(StopReason::Signal);
            }
            if sigbus::region_lost() {
                self.stop = Some(StopReason::RegionLost);
            }
            if let Some(reason) = self.stop {
                if self.pending.is_empty() || reason != StopReason::Shutdown {
                    return reason;
                }
            }
            if self.last_check.elapsed() >= self.policy.park_timeout {
                self.check_liveness();
            }
            if !progressed {
                self.idle();
            }
        }
    }

    /// Reads and answers requests until none is published or the response ring is full.
    /// Returns whether anything happened.
    fn drain(&mut self) -> bool {
        let mut progressed = false;
        let mut since_publish = 0u32;
        loop {
            if !self.write_pending() {
                return progressed;
            }
            // After a stop, requests already published are still read, and answered
            // SHUTTING_DOWN (`on_frame`), so none is left unanswered (layout.md §12 "Stop").
            if self.stop.is_some() && self.refused_after_stop >= MAX_REFUSED_AFTER_STOP {
                return progressed;
            }
            // A fragment lands after the bytes already reassembled: one copy out per message.
            match self
                .requests
                .poll_at(&mut self.buf, self.reassembler.landing())
            {
                Ok(None) => return progressed,
                Ok(Some(header)) => self.on_frame(header),
                Err(e) => self.on_malformed(e),
            }
            progressed = true;
            since_publish += 1;
            // Publish in batches, but not so rarely that a pipelining client idles.
            if since_publish >= 64 {
                self.flush();
                since_publish = 0;
            }
        }
    }

    fn on_frame(&mut self, header: crate::frame::FrameHeader) {
        if !UNAWAITED_OPS.contains(&header.op) {
            self.awaited_arrival();
        }
        // A request with a checksum passed it (`Consumer::poll`); answer in kind (§6.6).
        self.crc_out = self.crc_required || header.has_crc();
        let payload_len = header.payload_len as usize;
        self.counters.add(STAT_REQ_BYTES, payload_len as u64);
        if header.fragment_index > 0 || header.has_more() {
            self.counters.bump(STAT_REQ_FRAGMENTS);
        }
        if let Err(e) = header.check_request() {
            return self.answer_malformed(header.op, header.request_id, e.code(), &e.to_string());
        }
        if self.stop.is_some() {
            // One answer per message: its first frame; later fragments are skipped.
            if header.fragment_index == 0 {
                self.refused_after_stop += 1;
                self.answer_error(
                    header.op,
                    header.request_id,
                    ErrorCode::ShuttingDown,
                    "the worker is stopping and takes no new requests",
                );
            }
            return;
        }
        let result = self.reassembler.accept(&header, &mut self.buf);
        if let Some(abandoned) = self.reassembler.take_abandoned() {
            self.answer_fragment_error(abandoned);
        }
        match result {
            Ok(Reassembled::Single(h)) => self.answer(h.op, h.request_id, payload_len),
            Ok(Reassembled::Whole(h)) => {
                self.answer(h.op, h.request_id, h.message_len as usize);
            }
            Ok(Reassembled::Partial | Reassembled::Dropped) => {}
            Err(e) => self.answer_fragment_error(e),
        }
    }

    /// Runs the request message `buf[..len]`. An answer that is part of it (echo's body) is
    /// written from `buf` itself, lent to its writer until it is written (`write_front`).
    fn answer(&mut self, op: u16, request_id: u64, len: usize) {
        self.counters.bump(STAT_REQUESTS);
        let buf = std::mem::take(&mut self.buf);
        let out = match self.dispatcher.dispatch(op, &buf[..len]) {
            Ok(Reply::Body(part)) => {
                return self.respond(MessageWriter::part_of(op, request_id, buf, part));
            }
            Ok(Reply::Data(out)) => out,
            Ok(Reply::Shutdown(out)) => {
                self.region.header().set_worker_state(WORKER_STOPPING);
                self.stop = Some(StopReason::Shutdown);
                out
            }
            Err(e) => {
                self.reuse(buf);
                return self.answer_error(op, request_id, e.code, &e.message);
            }
        };
        self.reuse(buf);
        self.respond(MessageWriter::new(op, request_id, out));
    }

    /// Takes the request buffer back (from `answer`, or from an echo's writer once written)
    /// as the buffer requests are copied into, unless it is larger than
    /// [`KEPT_BUFFER_BYTES`] (or one ring): an outlier's memory is freed.
    ///
    /// Only while `self.buf` has no allocation, i.e. while the request buffer is out on loan:
    /// otherwise `self.buf` may hold a message being reassembled, or one accepted and not yet
    /// answered (an abandoned message's error is answered in between), and replacing it would
    /// answer that message from another message's bytes. Any other writer's buffer (an
    /// error's text, an op's output) is dropped, not swapped in.
    fn reuse(&mut self, buf: Vec<u8>) {
        let keep = KEPT_BUFFER_BYTES.max(self.requests.geometry().ring_bytes());
        if self.buf.capacity() == 0 && buf.capacity() <= keep {
            self.buf = buf;
        }
    }

    fn answer_fragment_error(&mut self, e: FragmentError) {
        self.answer_malformed(e.op, e.request_id, e.code, &e.message);
    }

    /// Answers a frame that broke a rule of layout.md §6 (counted in `STAT_MALFORMED`).
    fn answer_malformed(&mut self, op: u16, request_id: u64, code: ErrorCode, message: &str) {
        self.counters.bump(STAT_MALFORMED);
        self.answer_error(op, request_id, code, message);
    }

    fn answer_error(&mut self, op: u16, request_id: u64, code: ErrorCode, message: &str) {
        self.counters.bump(STAT_ERROR_FRAMES);
        self.respond(MessageWriter::error(op, request_id, code, message));
    }

    /// Answers a frame the consumer refused. When the consumer had to resynchronise (the
    /// frame's extent could not be trusted, so every frame published up to the observed tail
    /// was discarded), the error frame carries request id 0 and op 0, whatever the bad
    /// header said: it tells the client that *every* request in flight is lost, not only
    /// the one named in a header we could not trust (layout.md §6.5).
    fn on_malformed(&mut self, e: PollError) {
        let (op, id) = match e {
            PollError::Malformed {
                header,
                resynced: false,
                ..
            } => (header.op, header.request_id),
            _ => (0, 0),
        };
        let code = match e {
            PollError::Malformed { error, .. } => error.code(),
            PollError::TailOutOfRange { .. } => ErrorCode::FrameLength,
        };
        self.answer_malformed(op, id, code, &e.to_string());
    }

    /// Queues a response; it is written now if the ring has room, else by `write_pending`.
    fn respond(&mut self, writer: MessageWriter) {
        let writer = writer.with_crc(self.crc_out);
        self.counters.bump(STAT_RESPONSES);
        self.counters.add(STAT_RESP_BYTES, writer.len() as u64);
        self.pending.push_back(writer);
        self.write_pending();
    }

    /// Writes queued responses, in order, as far as the ring has room; true when none is left.
    fn write_pending(&mut self) -> bool {
        while !self.pending.is_empty() {
            if !self.write_front() {
                return false;
            }
        }
        true
    }

    /// Writes as much of the oldest queued response as fits; true when it is fully written.
    fn write_front(&mut self) -> bool {
        let Some(writer) = self.pending.front_mut() else {
            return true;
        };
        let mut frames = 0;
        let done = match writer.write(&mut self.responses, &mut frames) {
            Ok(done) => done,
            Err(e) => {
                // Only a ring smaller than two chunks can refuse a frame; validation forbids it.
                eprintln!("chunkring worker: dropping a response: {e}");
                true
            }
        };
        if writer.is_fragmented() {
            self.counters.add(STAT_RESP_FRAGMENTS, frames);
        }
        if done {
            if let Some(written) = self.pending.pop_front() {
                self.reuse(written.into_buffer());
            }
        } else {
            // The client may be waiting for these frames before it drains: publish them.
            self.flush();
        }
        done
    }

    /// Publishes written responses with one tail store and wakes the client if it parked
    /// ([R3]–[R4], [W5]–[W6]); also covers request chunks released since the last call. The
    /// ring ends only publish and release; deciding whom to wake is the worker's.
    fn flush(&mut self) {
        // Stats first: a client that gets its answer (after the tail store below) and then
        // reads the counters finds that answer counted.
        self.counters.take_padding(
            self.requests.padding_frames(),
            self.responses.padding_frames(),
        );
        self.counters.write_to(self.region.header());
        // The client parks for answers (PARKED), for request-ring room (PARKED_FOR_ROOM), or
        // both; wake it only for what happened (layout.md §11).
        if self.responses.publish() {
            self.counters.bump(STAT_RESP_BATCHES);
            if wait::notify(self.responses.consumer_park_word(), PARKED) {
                self.counters.bump(STAT_CLIENT_WAKES);
            }
        }
        let head = self.requests.head();
        if head != self.announced_req_head {
            self.announced_req_head = head;
            if wait::notify(self.requests.producer_park_word(), PARKED_FOR_ROOM) {
                self.counters.bump(STAT_CLIENT_WAKES);
            }
        }
        // Then the batch and its wakes, so nothing stays uncounted while the worker parks.
        self.counters.write_to(self.region.header());
    }

    /// Nothing to do: wait for requests (or for response room). The heartbeat is the
    /// heartbeat thread's alone (`heartbeat.rs`), so idling costs no clock read or store.
    fn idle(&mut self) {
        self.settle_unawaited();
        let requests = &self.requests;
        let responses = &self.responses;
        // Blocked on a full response ring we wait for room (the client's release wakes us);
        // otherwise for requests (the client's publish wakes us), as the pacer plans it
        // (layout.md §11 "Worker"). Same futex word, other bit.
        let waited = if !self.pending.is_empty() {
            self.policy
                .wait(responses.park_word(), PARKED_FOR_ROOM, || {
                    responses.peek_room()
                })
        } else {
            let plan = self.pacer.plan(Instant::now());
            let (waited, doze_end) = self.policy.wait_planned(
                || requests.park_word(),
                PARKED,
                || requests.peek_ready(),
                plan,
                self.yield_every,
            );
            if let (Some(deadline), Some(end)) = (plan.doze_until, doze_end) {
                self.pacer.on_doze_timeout(deadline, end);
            }
            let now = Instant::now();
            // A request is told to the pacer when the first awaited one is read
            // (`awaited_arrival`); pushes alone are told as such (above).
            match waited {
                Waited::Woken if !requests.peek_ready() => self.pacer.on_early_wake(now),
                Waited::TimedOut { ready: false } => {}
                _ => {
                    self.arrival = Some(Arrival {
                        at: now,
                        woken: waited == Waited::Woken,
                    });
                }
            }
            waited
        };
        // Counted now, written by the next flush (the next loop turn, before any new park).
        match waited {
            Waited::TimedOut { ready } => {
                self.counters.bump(STAT_WORKER_PARKS);
                if ready {
                    self.counters.bump(STAT_TIMEOUT_WAKEUPS);
                }
                self.check_liveness();
            }
            Waited::Woken => self.counters.bump(STAT_WORKER_PARKS),
            Waited::Spun | Waited::Rechecked => {}
        }
    }

    /// The work the last idle spell found holds an awaited request: the pacer counts it as
    /// found then (from one wake-up earlier after a client's wake).
    fn awaited_arrival(&mut self) {
        if let Some(a) = self.arrival.take() {
            if a.woken {
                self.pacer.on_woken_request(a.at);
            } else {
                self.pacer.on_request(a.at);
            }
        }
    }

    /// The last idle spell's work held no awaited request (only pushes): the pacer hears of
    /// it as a batch nobody waits for.
    fn settle_unawaited(&mut self) {
        if let Some(a) = self.arrival.take() {
            self.pacer.on_unawaited(a.at, a.woken);
        }
    }

    /// Re-validates the header (magic, version, endianness, sizes and offsets) against what
    /// it was at start. A scribbled header would otherwise leave the region stuck while the
    /// worker looks alive; instead the worker reports it on stderr, marks itself
    /// `WORKER_FAILED` (so the client raises `WorkerDied`, and `inspect` names the bad field)
    /// and stops.
    fn check_header(&mut self) {
        let why = match self.region.validate() {
            Ok(now) if now == self.config => return,
            Ok(now) => format!("sizes changed from {:?} to {now:?}", self.config),
            Err(e) => e.to_string(),
        };
        eprintln!("chunkring: the region header changed under the worker ({why}); stopping");
        self.region.header().set_worker_state(WORKER_FAILED);
        self.stop = Some(StopReason::HeaderChanged);
    }

    /// Owner, header and client checks, at most once per park timeout.
    fn check_liveness(&mut self) {
        self.last_check = Instant::now();
        if self.region.truncated() {
            self.stop = Some(StopReason::RegionLost);
            return; // the header and rings may be past the end of the file now
        }
        if let Some(pid) = self.owner_pid {
            if !liveness::pid_alive(pid) {
                self.stop = Some(StopReason::OwnerGone);
            }
        }
        self.check_header();
        let client = self.region.header().client_pid();
        if self.region.header().client_state() == CLIENT_ATTACHED && !liveness::pid_alive(client) {
            // Clears CLIENT_PID too (a dead client's pid could be reused by a stranger).
            self.region.header().release_dead_client(client);
        }
        // A client pinned to our one CPU needs it to run: hand it over at every poll.
        self.yield_every = if liveness::shares_one_cpu(client) {
            1
        } else {
            YIELD_EVERY
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::FrameHeader;
    use crate::layout::{ERR_FRAGMENT_SEQUENCE, FLAG_MORE, OP_ECHO};
    use crate::ops::encode_request;
    use crate::region::heap::HeapBacking;
    use crate::ring::{Consumer, Producer};
    use crate::wait::Plan;

    #[test]
    fn one_frame_that_yields_two_answers_into_a_full_ring_loses_neither() {
        let config = RegionConfig {
            ring_bytes: 4096,
            chunk_bytes: 64,
            ..RegionConfig::default()
        };
        let region = HeapBacking::region(&config).unwrap();
        // Fill the response ring completely, as a client that stopped reading would leave it.
        let mut filler = Producer::new(region.response_ring().unwrap());
        let mut filled = 0u64;
        while filler
            .try_push(&FrameHeader::message(OP_ECHO, 1_000 + filled, 0, 0), b"")
            .is_ok()
        {
            filled += 1;
        }
        filler.publish();
        let opts = ServeOptions {
            place: Place::Shm("unused".into()),
            config,
            owner_pid: None,
            spin: Duration::ZERO,
        };
        let mut worker = Worker::new(region.clone(), Registry::with_all_ops(), &opts).unwrap();
        // A fragmented message left open (id 100), then a new message (id 101) abandons it:
        // one frame, two answers (the abandoned message's error and the echo).
        let mut client = Producer::new(region.request_ring().unwrap());
        let mut first = FrameHeader::message(OP_ECHO, 100, 4, 8);
        first.flags = FLAG_MORE;
        client.try_push(&first, &[0, 0, 0, 0]).unwrap();
        let echo = encode_request(b"", b"hi");
        client
            .try_push(&FrameHeader::message(OP_ECHO, 101, 6, 6), &echo)
            .unwrap();
        client.publish();
        worker.drain();
        assert_eq!(worker.pending.len(), 2, "both answers wait for room");
        // The client reads everything: first the filler, then both answers, in order.
        let mut reader = Consumer::new(region.response_ring().unwrap());
        let mut buf = Vec::new();
        let mut seen = Vec::new();
        for _ in 0..1000 {
            worker.write_pending();
            worker.flush();
            while let Some(h) = reader.poll(&mut buf).unwrap() {
                seen.push((
                    h.request_id,
                    h.status,
                    buf[..h.payload_len as usize].to_vec(),
                ));
            }
            if worker.pending.is_empty() && seen.len() as u64 == filled + 2 {
                break;
            }
        }
        assert_eq!(seen.len() as u64, filled + 2);
        let (id, status, _) = &seen[filled as usize];
        assert_eq!((*id, *status), (100, ERR_FRAGMENT_SEQUENCE));
        assert_eq!(seen[filled as usize + 1], (101, 0, b"hi".to_vec()));
    }

    #[test]
    fn pushes_alone_train_no_cadence_and_open_no_hot_window() {
        let config = RegionConfig {
            ring_bytes: 4096,
            chunk_bytes: 64,
            ..RegionConfig::default()
        };
        let region = HeapBacking::region(&config).unwrap();
        let hot = Duration::from_millis(2);
        let opts = ServeOptions {
            place: Place::Shm("unused".into()),
            config,
            owner_pid: None,
            spin: hot,
        };
        let mut worker = Worker::new(region.clone(), Registry::with_all_ops(), &opts).unwrap();
        let mut client = Producer::new(region.request_ring().unwrap());
        let mut reader = Consumer::new(region.response_ring().unwrap());
        let mut id = 0;
        let mut send = |worker: &mut Worker, op: u16, at: Instant, woken: bool| {
            id += 1;
            let body = encode_request(b"", b"{}");
            let len = body.len() as u32;
            client
                .try_push(&FrameHeader::message(op, id, len, len.into()), &body)
                .unwrap();
            client.publish();
            worker.arrival = Some(Arrival { at, woken });
            worker.drain();
            worker.flush();
            let mut buf = Vec::new();
            assert_eq!(reader.poll(&mut buf).unwrap().unwrap().request_id, id);
        };
        let t = Instant::now();
        let us = Duration::from_micros;
        // A push found by a park timeout: kept until the next idle spell, then it opens
        // nothing (a fresh pacer parks at once).
        send(&mut worker, OP_SNAP_PUSH, t, false);
        assert!(
            worker.arrival.is_some(),
            "a push alone is not an awaited arrival"
        );
        worker.settle_unawaited();
        assert_eq!(worker.pacer.plan(t).spin_until, t);
        // A push the client woke us for opens a stream window; pushes found in it extend it.
        send(&mut worker, OP_SNAP_PUSH_FIELDS, t + us(100), true);
        worker.settle_unawaited();
        send(&mut worker, OP_SNAP_PUSH, t + us(1_000), false);
        worker.settle_unawaited();
        assert_eq!(
            worker.pacer.plan(t + us(1_100)),
            Plan {
                doze_until: None,
                spin_until: t + us(1_000) + hot
            }
        );
        // An awaited request is told to the pacer as it is read: its own hot window.
        let later = t + us(100_000);
        send(&mut worker, OP_ECHO, later, false);
        assert!(worker.arrival.is_none());
        assert_eq!(worker.pacer.plan(later).spin_until, later + hot);
    }
}
