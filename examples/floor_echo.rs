//! The bare floor's responder in Rust: the "Python mmap ↔ Rust spin" floor that issue 10's goals
//! are measured against (`benches/python/echo_peers.py`, row `0-floor-rust-spin`). It maps the
//! file the Python side created and spins on one sequence word, exactly as that bench's Python
//! responders (`_floor_child`, `_floor_pipe_child`) do: no framing, no waiting, no liveness.
//! Not part of the library.
//!
//! ```text
//! floor_echo roundtrip PATH SECONDS      one request at a time (layout below)
//! floor_echo pipe PATH WINDOW SECONDS    a ring of WINDOW 64-byte slots each way
//! ```
//!
//! Words of the first page (little-endian `u64`, index × 8 = byte offset):
//!
//! * round trip: `[0]` request sequence (Python stores it after the bytes and the length),
//!   `[8]` response sequence (we store it after the answer), `[9]` request length; request
//!   bytes at 4096, response bytes at 4096 + 64 KiB;
//! * pipe: `[0]` messages published (Python's tail), `[8]` messages answered (ours); request
//!   slot `i` at 4096 + 64·i, response slot `i` at 4096 + 64·WINDOW + 64·i;
//! * both: `[16]` is set to 1 once we are mapped and spinning (the Python side waits for it
//!   before it starts timing); the all-ones word in `[0]` tells us to exit.
//!
//! We also exit when SECONDS have passed, so a bench that dies never leaves us spinning.
//!
//! Shared memory rules hold even here: no Rust reference (`&`, `&mut`, slice) is ever formed
//! into the mapping. Words are read and written through `AtomicU64::from_ptr` (a reference to an
//! atomic, the sanctioned way to share a word, living for one expression), bytes are copied with
//! `ptr::copy_nonoverlapping` between the raw mapping pointer and a local buffer.
//!
//! Orderings: Python's stores and loads of the words are plain `memoryview` accesses; they are
//! ordered only because x86-64 is TSO (stores become visible in program order, loads are not
//! reordered with other loads). On our side `Acquire`/`Release` keep the compiler and the CPU
//! from moving our byte copies across the word accesses; on x86-64 both compile to plain moves.

// Atomics live in `src/sync.rs` for the library (clippy.toml); the library's `mapped` helpers are
// crate-private, so this stand-alone example forms its own, the same way.
#![allow(clippy::disallowed_types)]

use std::fs::OpenOptions;
use std::hint::spin_loop;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use memmap2::{MmapOptions, MmapRaw};

/// The all-ones request word: exit.
const STOP: u64 = u64::MAX;
/// Largest round-trip request (`MAXB` in echo_peers.py).
const MAXB: usize = 64 * 1024;
/// First byte after the page of words.
const DATA: usize = 4096;
/// Pipe slot size.
const SLOT: usize = 64;
/// Word indexes (× 8 = byte offset).
const REQ_SEQ: usize = 0;
const RESP_SEQ: usize = 8;
const REQ_LEN: usize = 9;
const READY: usize = 16;
/// Spins between two looks at the clock (the deadline is a backstop, not a timer).
const SPINS_PER_CLOCK_READ: u32 = 1 << 12;

/// The mapped file as a raw pointer and a length; every access goes through its methods.
struct Shared {
    map: MmapRaw,
}

impl Shared {
    fn open(path: &str, len: usize) -> Result<Self, String> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .map_err(|e| format!("open {path}: {e}"))?;
        let have = file.metadata().map_err(|e| e.to_string())?.len();
        if have < len as u64 {
            return Err(format!("{path} is {have} bytes, need {len}"));
        }
        let map = MmapOptions::new()
            .len(len)
            .map_raw(&file)
            .map_err(|e| format!("mmap {path}: {e}"))?;
        Ok(Self { map })
    }

    fn word(&self, i: usize) -> *mut u64 {
        assert!((i + 1) * 8 <= DATA);
        // The mapping is page-aligned, so word `i` is 8-byte aligned; in bounds by the assert.
        self.map.as_mut_ptr().wrapping_add(i * 8).cast::<u64>()
    }

    fn load(&self, i: usize, o: Ordering) -> u64 {
        // SAFETY: `word` is aligned and inside the mapping, which lives as long as `self`; the
        // other process only ever accesses these words with whole aligned 8-byte loads/stores.
        unsafe { AtomicU64::from_ptr(self.word(i)) }.load(o)
    }

    fn store(&self, i: usize, v: u64, o: Ordering) {
        // SAFETY: as in `load`; the mapping is writable (opened read-write, shared).
        unsafe { AtomicU64::from_ptr(self.word(i)) }.store(v, o)
    }

    /// Copies `buf.len()` bytes at byte offset `at` of the mapping into `buf`.
    fn copy_out(&self, at: usize, buf: &mut [u8]) {
        assert!(at + buf.len() <= self.map.len());
        // SAFETY: the source range is inside the mapping (assert) and `buf` is local memory, so
        // they do not overlap. The peer does not write the range while we copy (it waits for
        // our sequence word); a peer that did would only give us wrong bytes in a local buffer,
        // since no reference into the mapping is formed.
        unsafe {
            std::ptr::copy_nonoverlapping(self.map.as_ptr().add(at), buf.as_mut_ptr(), buf.len())
        }
    }

    /// Copies `buf` to byte offset `at` of the mapping.
    fn copy_in(&self, at: usize, buf: &[u8]) {
        assert!(at + buf.len() <= self.map.len());
        // SAFETY: the destination range is inside the writable mapping (assert), `buf` is local
        // memory (no overlap); the peer does not read the range until our sequence word says so.
        unsafe {
            std::ptr::copy_nonoverlapping(buf.as_ptr(), self.map.as_mut_ptr().add(at), buf.len())
        }
    }
}

/// Counts spins and says when the deadline has passed, reading the clock only now and then.
struct Deadline {
    at: Instant,
    spins: u32,
}

impl Deadline {
    fn passed(&mut self) -> bool {
        self.spins = self.spins.wrapping_add(1);
        self.spins.is_multiple_of(SPINS_PER_CLOCK_READ) && Instant::now() >= self.at
    }
}

/// One request at a time: copy the request out, copy it into the response area, store the
/// response sequence (`_floor_child`).
fn roundtrip(mem: &Shared, deadline: &mut Deadline) -> Result<(), String> {
    let mut buf = vec![0u8; MAXB];
    let mut seen = 0u64;
    loop {
        // ORDERING: Acquire pairs with Python's plain store of [0], which TSO keeps after its
        // stores of the request bytes and of [9]: those reads below see them.
        let s = mem.load(REQ_SEQ, Ordering::Acquire);
        if s == seen {
            if deadline.passed() {
                return Ok(());
            }
            spin_loop();
            continue;
        }
        if s == STOP {
            return Ok(());
        }
        // ORDERING: Relaxed, ordered after the Acquire load of [0] above.
        let n = mem.load(REQ_LEN, Ordering::Relaxed);
        let n = usize::try_from(n)
            .ok()
            .filter(|&n| n <= MAXB)
            .ok_or(format!("request length {n} > {MAXB}"))?;
        mem.copy_out(DATA, &mut buf[..n]); // copy out, as a real consumer must
        mem.copy_in(DATA + MAXB, &buf[..n]);
        seen = s;
        // ORDERING: Release pairs with Python's plain load of [8] in its spin, after which it
        // reads the response bytes (TSO: loads are not reordered with loads): it sees our copy.
        mem.store(RESP_SEQ, s, Ordering::Release);
    }
}

/// A ring of `window` slots each way: answer every message published up to Python's tail, then
/// store how many are answered (`_floor_pipe_child`).
fn pipe(mem: &Shared, window: usize, deadline: &mut Deadline) -> Result<(), String> {
    let (req, resp) = (DATA, DATA + window * SLOT);
    let mut slot = [0u8; SLOT];
    let mut seen = 0u64;
    loop {
        // ORDERING: Acquire pairs with Python's plain store of its tail [0], which TSO keeps
        // after its store of the slot's bytes: the slot reads below see them.
        let t = mem.load(REQ_SEQ, Ordering::Acquire);
        if t == STOP {
            return Ok(());
        }
        if t == seen {
            if deadline.passed() {
                return Ok(());
            }
            spin_loop();
            continue;
        }
        if t < seen || t - seen > window as u64 {
            return Err(format!("tail {t} outside [{seen}, {seen} + {window}]"));
        }
        while seen < t {
            let i = (seen % window as u64) as usize * SLOT;
            mem.copy_out(req + i, &mut slot);
            mem.copy_in(resp + i, &slot);
            seen += 1;
        }
        // ORDERING: Release pairs with Python's plain load of [8], after which it reads the
        // answered slots (TSO: loads are not reordered with loads); the same release tells it
        // that the request slots up to `seen` may be reused.
        mem.store(RESP_SEQ, seen, Ordering::Release);
    }
}

fn run(args: &[String]) -> Result<(), String> {
    let usage = "usage: floor_echo roundtrip PATH SECONDS | floor_echo pipe PATH WINDOW SECONDS";
    let num = |s: &String| s.parse::<u64>().map_err(|e| format!("{s}: {e}; {usage}"));
    let (mem, window, seconds) = match args {
        [mode, path, seconds] if mode == "roundtrip" => {
            let seconds = num(seconds)?;
            (Shared::open(path, DATA + 2 * MAXB)?, None, seconds)
        }
        [mode, path, window, seconds] if mode == "pipe" => {
            let seconds = num(seconds)?;
            let w = usize::try_from(num(window)?).map_err(|e| e.to_string())?;
            if w == 0 || w > MAXB {
                return Err(format!("window {w} not in 1..={MAXB}"));
            }
            (Shared::open(path, DATA + 2 * w * SLOT)?, Some(w), seconds)
        }
        _ => return Err(usage.to_string()),
    };
    let mut deadline = Deadline {
        at: Instant::now() + Duration::from_secs(seconds),
        spins: 0,
    };
    // ORDERING: Relaxed: the Python side only waits for the word to change; nothing it reads
    // afterwards was written by us.
    mem.store(READY, 1, Ordering::Relaxed);
    match window {
        None => roundtrip(&mem, &mut deadline),
        Some(w) => pipe(&mem, w, &mut deadline),
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("floor_echo: {e}");
            ExitCode::FAILURE
        }
    }
}
