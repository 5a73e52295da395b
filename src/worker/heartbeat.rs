//! The heartbeat: a small thread that stores `WORKER_HEARTBEAT_NS` every
//! [`HEARTBEAT_INTERVAL`] for as long as the worker serves, also while the serve loop is busy
//! with one long op (a 50 MB render), so that a client can tell a frozen or dead worker (a
//! stale heartbeat) from a busy one (layout.md §12 "Heartbeat").
//!
//! The thread stops when the [`Heartbeat`] is dropped (its channel closes) and is joined then.

use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use crate::liveness;
use crate::region::Region;

/// How often the heartbeat is stored. The client calls a worker dead when the heartbeat is
/// older than its `HEARTBEAT_STALE_S` (3 s, layout.md §12): thirty intervals.
pub const HEARTBEAT_INTERVAL: Duration = Duration::from_millis(100);

/// The running heartbeat thread; dropping it stops and joins the thread.
#[derive(Debug)]
pub struct Heartbeat {
    stop: Option<Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Heartbeat {
    /// Stores a first heartbeat now and starts the thread that keeps storing it.
    ///
    /// # Errors
    /// The OS error when no thread can be started.
    pub fn start(region: Region) -> std::io::Result<Heartbeat> {
        beat(&region);
        let (stop, stopped) = mpsc::channel::<()>();
        let thread = thread::Builder::new()
            .name("chunkring-heartbeat".into())
            .spawn(move || {
                while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(HEARTBEAT_INTERVAL)
                {
                    beat(&region);
                }
            })?;
        Ok(Heartbeat {
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

/// One heartbeat store. ORDERING: Relaxed (through `Header`): the heartbeat publishes
/// nothing else, and the client reads it alone, as an age (one aligned 8-byte store is atomic,
/// layout.md §10). The serve loop stores it too (idle, liveness check); whichever store is
/// last, the value is a recent CLOCK_MONOTONIC time.
fn beat(region: &Region) {
    region.header().set_heartbeat_ns(liveness::monotonic_ns());
}

impl Drop for Heartbeat {
    fn drop(&mut self) {
        drop(self.stop.take()); // the channel closes: the thread's wait ends at once
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
