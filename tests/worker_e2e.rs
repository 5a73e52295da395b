//! The real worker process over real shared memory, driven by a Rust client built from the
//! crate's own producer/consumer: echo of every interesting size, pipelining, fragments,
//! control ops, shutdown.
mod common;

use std::time::Duration;

use chunkring::layout::*;
use chunkring::ops::encode_request;
use common::{Answer, Worker};

#[test]
fn echo_of_every_interesting_size_round_trips() {
    let w = Worker::start("echo", &["--size", "65536", "--chunk-size", "64"]);
    let mut c = w.client();
    let ring = 65536usize;
    for (i, size) in [0, 1, 27, 28, 29, 63, 64, 65, 4096, ring - 1, ring, 4 * ring]
        .into_iter()
        .enumerate()
    {
        let body: Vec<u8> = (0..size).map(|b| (b * 31 + i) as u8).collect();
        let a = c.call(OP_ECHO, 100 + i as u64, b"", &body);
        assert!(
            !a.error,
            "size {size}: {:?}",
            String::from_utf8_lossy(&a.payload)
        );
        assert_eq!(a.payload.len(), size);
        assert!(a.payload == body, "size {size}: echo differs");
    }
}

#[test]
fn many_requests_in_flight_are_each_answered_once_in_order() {
    let w = Worker::start("flight", &["--size", "16384"]);
    let mut c = w.client();
    let mut got: Vec<Answer> = Vec::new();
    let n = 3000u64;
    let body = |id: u64| -> Vec<u8> {
        (0..(id * 37 % 700) as usize)
            .map(|i| (i as u64 ^ id) as u8)
            .collect()
    };
    for id in 1..=n {
        c.send(OP_ECHO, id, encode_request(b"", &body(id)), &mut got);
    }
    while (got.len() as u64) < n {
        got.push(c.recv(Duration::from_secs(30)));
    }
    for (i, a) in got.iter().enumerate() {
        assert_eq!(a.id, i as u64 + 1);
        assert!(a.payload == body(a.id), "id {}", a.id);
    }
    assert_eq!(w.region.header().stat(STAT_REQUESTS), n);
}

#[test]
fn unknown_ops_get_an_error_frame_and_service_continues() {
    let w = Worker::start("unknown", &[]);
    let mut c = w.client();
    let a = c.call(0x7777, 5, b"", b"x");
    assert!(a.error);
    assert_eq!(a.status, 5); // UNKNOWN_OP
    assert_eq!(String::from_utf8_lossy(&a.payload), "unknown op 0x7777");
    assert_eq!(c.call(OP_ECHO, 6, b"", b"ok").payload, b"ok");
}

#[test]
fn info_pipeline_and_shutdown() {
    let mut w = Worker::start("control", &[]);
    let mut c = w.client();
    let info: serde_json::Value =
        serde_json::from_slice(&c.call(OP_INFO, 1, b"", b"").payload).unwrap();
    assert_eq!(info["layout_version"], 1);
    assert_eq!(info["pid"], w.child.id());
    let a = c.call(
        OP_PIPELINE,
        2,
        br#"{"stages":[{"op":1},{"op":1}]}"#,
        b"twice",
    );
    assert_eq!((a.error, a.payload.as_slice()), (false, &b"twice"[..]));
    let a = c.call(OP_SHUTDOWN, 3, b"", b"");
    assert!(!a.error);
    let status = w.child.wait().unwrap();
    assert!(status.success(), "{status:?}");
    assert_eq!(w.region.header().worker_state(), WORKER_STOPPED);
    assert!(
        !chunkring::region::shm::dev_shm_path(&w.name).exists(),
        "the worker unlinks its region"
    );
}

#[test]
fn the_worker_stops_when_its_owner_dies() {
    // Owner: a short-lived `sleep` process instead of this test process.
    let mut owner = std::process::Command::new("sleep")
        .arg("0.3")
        .spawn()
        .unwrap();
    let name = common::unique_name("owner");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_chunkring"))
        .args([
            "serve",
            "--name",
            &name,
            "--owner-pid",
            &owner.id().to_string(),
            "--park-timeout-ms",
            "20",
        ])
        .spawn()
        .unwrap();
    owner.wait().unwrap();
    let t0 = std::time::Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success());
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "worker outlived its owner"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(!chunkring::region::shm::dev_shm_path(&name).exists());
}

#[test]
fn sigterm_stops_the_worker_cleanly() {
    let mut w = Worker::start("sigterm", &[]);
    // SAFETY-free: send SIGTERM through the `kill` command.
    std::process::Command::new("kill")
        .args(["-TERM", &w.child.id().to_string()])
        .status()
        .unwrap();
    let status = w.child.wait().unwrap();
    assert!(status.success(), "{status:?}");
    assert!(!chunkring::region::shm::dev_shm_path(&w.name).exists());
}

#[test]
fn a_region_name_served_by_a_live_worker_is_refused() {
    let w = Worker::start("dup", &[]);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_chunkring"))
        .args(["serve", "--name", &w.name])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("served by a live worker"), "{err}");
}

#[test]
fn inspect_prints_the_header_and_counters() {
    let w = Worker::start("inspect", &[]);
    let mut c = w.client();
    c.call(OP_ECHO, 1, b"", b"x");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_chunkring"))
        .args(["inspect", &w.name, "--json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["worker"]["state"], "ready");
    assert_eq!(v["stats"]["requests"], 1);
    assert_eq!(v["request_ring"]["head"], v["request_ring"]["tail"]);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_chunkring"))
        .args(["inspect", &w.name])
        .output()
        .unwrap();
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        table.contains("request ring") && table.contains("requests"),
        "{table}"
    );
}
