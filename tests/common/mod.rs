//! Test-side helpers: start the real worker binary and talk to it over real shared memory
//! with the crate's own `Producer`/`Consumer` (a Rust client following layout.md).
#![allow(dead_code)]

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use chunkring::frame::FrameHeader;
use chunkring::layout::*;
use chunkring::ops::encode_request;
use chunkring::region::{shm, Region};
use chunkring::ring::{Consumer, MappedMemory, MessageWriter, Producer, Reassembled, Reassembler};
use chunkring::wait::{self, WaitPolicy};

/// A unique region name per test: pid and a per-process counter.
pub fn unique_name(tag: &str) -> String {
    #[allow(clippy::disallowed_types)] // a test-local counter, not part of the ring protocol
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("t-{tag}-{}-{n}", std::process::id())
}

/// A running worker process and the region it serves.
pub struct Worker {
    pub child: Child,
    pub region: Region,
    pub name: String,
}

impl Worker {
    /// Starts `chunkring serve --name NAME` with extra args and waits for WORKER_READY.
    #[allow(clippy::zombie_processes)] // `Worker::drop` kills and reaps the child
    pub fn start(tag: &str, extra: &[&str]) -> Worker {
        let name = unique_name(tag);
        let mut child = Command::new(env!("CARGO_BIN_EXE_chunkring"))
            .args([
                "serve",
                "--name",
                &name,
                "--owner-pid",
                &std::process::id().to_string(),
            ])
            .args(extra)
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn worker");
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(region) = shm::attach(&name) {
                if region.header().worker_state() == WORKER_READY {
                    return Worker {
                        child,
                        region,
                        name,
                    };
                }
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("worker {name} did not become ready");
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// A client over this worker's rings.
    pub fn client(&self) -> TestClient {
        TestClient::new(&self.region)
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(shm::dev_shm_path(&self.name));
    }
}

/// One answer: id, status (0 = ok), payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub id: u64,
    pub op: u16,
    pub status: u16,
    pub error: bool,
    /// The answer's frames carried a CRC-32 trailer (layout.md §6.6), checked on receipt.
    pub crc: bool,
    pub payload: Vec<u8>,
}

/// The client half: produce requests, consume responses.
pub struct TestClient {
    pub requests: Producer<MappedMemory>,
    pub responses: Consumer<MappedMemory>,
    reassembler: Reassembler,
    buf: Vec<u8>,
    /// Send every request with a CRC-32 trailer (layout.md §6.6).
    pub crc: bool,
}

impl TestClient {
    pub fn new(region: &Region) -> TestClient {
        TestClient {
            requests: Producer::new(region.request_ring().unwrap()),
            responses: Consumer::new(region.response_ring().unwrap()),
            reassembler: Reassembler::new(u64::MAX),
            buf: Vec::new(),
            crc: false,
        }
    }

    /// Sends a whole request (fragmenting as needed), draining answers into `got` while full.
    pub fn send(&mut self, op: u16, id: u64, payload: Vec<u8>, got: &mut Vec<Answer>) {
        let mut w = MessageWriter::new(op, id, payload).with_crc(self.crc);
        let mut frames = 0;
        while !w.write(&mut self.requests, &mut frames).unwrap() {
            self.flush();
            if let Some(a) = self.try_recv() {
                got.push(a);
            } else {
                std::thread::yield_now();
            }
        }
        self.flush();
    }

    /// Publishes `header` + `payload` verbatim as a frame of `chunks` chunks (for
    /// malformed-input tests: the header may lie about anything).
    pub fn send_raw(&mut self, header: FrameHeader, payload: &[u8], chunks: u64) {
        let mut bytes = header.encode().to_vec();
        bytes.extend_from_slice(payload);
        self.requests.push_raw(&bytes, chunks).unwrap();
        self.flush();
    }

    /// Publishes what was written and wakes the worker if it parked for requests.
    pub fn flush(&mut self) {
        self.requests.publish();
        self.wake_worker();
    }

    /// [W5]–[W6] after a tail store: wakes the worker if it parked waiting for requests.
    pub fn wake_worker(&self) -> bool {
        wait::notify(self.requests.consumer_park_word(), PARKED)
    }

    /// One complete answer if available.
    pub fn try_recv(&mut self) -> Option<Answer> {
        loop {
            let at = self.reassembler.landing();
            let h = match self.responses.poll_at(&mut self.buf, at) {
                Ok(Some(h)) => h,
                Ok(None) => return None,
                Err(e) => panic!("worker wrote a malformed response: {e}"),
            };
            // Response chunks released: wake a worker waiting for room ([W5]–[W6]).
            wait::notify(self.responses.producer_park_word(), PARKED_FOR_ROOM);
            let len = h.payload_len as usize;
            match self
                .reassembler
                .accept(&h, &mut self.buf)
                .expect("response fragments in sequence")
            {
                Reassembled::Single(h) => return Some(answer(&h, self.buf[..len].to_vec())),
                Reassembled::Whole(h) => {
                    let whole = self.buf[..h.message_len as usize].to_vec();
                    return Some(answer(&h, whole));
                }
                Reassembled::Partial | Reassembled::Dropped => {}
            }
        }
    }

    /// Waits (spin, then park on CLIENT_FUTEX) for the next answer, at most `timeout`.
    pub fn recv(&mut self, timeout: Duration) -> Answer {
        let deadline = Instant::now() + timeout;
        let policy = WaitPolicy {
            spin: Duration::from_micros(20),
            park_timeout: Duration::from_millis(10),
        };
        loop {
            if let Some(a) = self.try_recv() {
                return a;
            }
            assert!(Instant::now() < deadline, "no answer within {timeout:?}");
            let responses = &self.responses;
            policy.wait(responses.park_word(), PARKED, || responses.peek_ready());
        }
    }

    /// Request → answer, one round trip.
    pub fn call(&mut self, op: u16, id: u64, params: &[u8], body: &[u8]) -> Answer {
        let mut early = Vec::new();
        self.send(op, id, encode_request(params, body), &mut early);
        let a = early
            .pop()
            .unwrap_or_else(|| self.recv(Duration::from_secs(30)));
        assert_eq!(a.id, id, "answer for another request");
        a
    }
}

fn answer(h: &FrameHeader, payload: Vec<u8>) -> Answer {
    Answer {
        id: h.request_id,
        op: h.op,
        status: h.status,
        error: h.is_error(),
        crc: h.has_crc(),
        payload,
    }
}
