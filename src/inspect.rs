//! `chunkring inspect`: the header, both rings and the stats counters of a live region, as a
//! table or as JSON (layout.md §3, §4).
#![forbid(unsafe_code)]

use serde_json::{json, Value};

use crate::layout::*;
use crate::region::Region;

const STAT_NAMES: [&str; 14] = [
    "requests",
    "responses",
    "error_frames",
    "req_bytes",
    "resp_bytes",
    "worker_parks",
    "timeout_wakeups",
    "client_wakes",
    "req_padding",
    "resp_padding",
    "req_fragments",
    "resp_fragments",
    "resp_batches",
    "malformed",
];

fn state_name(state: u32, names: &[&'static str]) -> String {
    names
        .get(state as usize)
        .map_or_else(|| format!("unknown({state})"), |s| (*s).to_owned())
}

/// Everything `inspect` shows, as JSON.
pub fn snapshot(region: &Region) -> Value {
    let chunk = u64::from(region.u32(CHUNK_BYTES_OFFSET));
    let ring = |head_off: usize, tail_off: usize, chunks_off: usize| {
        let head = region.u64(head_off);
        let tail = region.u64(tail_off);
        let chunks = region.u64(chunks_off);
        let used = tail.saturating_sub(head);
        json!({
            "head": head, "tail": tail, "chunks": chunks, "bytes": chunks * chunk,
            "used_chunks": used,
            "occupancy": if chunks > 0 { used as f64 / chunks as f64 } else { 0.0 },
        })
    };
    let now = crate::liveness::monotonic_ns();
    let beat = region.u64(WORKER_HEARTBEAT_NS_OFFSET);
    let stats: serde_json::Map<String, Value> = STAT_NAMES
        .iter()
        .enumerate()
        .map(|(i, n)| ((*n).to_owned(), json!(region.stat(i))))
        .collect();
    json!({
        "layout_version": region.u32(VERSION_OFFSET),
        "region_bytes": region.u64(REGION_BYTES_OFFSET),
        "chunk_bytes": chunk,
        "max_message_bytes": region.u64(MAX_MESSAGE_BYTES_OFFSET),
        "park_timeout_us": region.u64(PARK_TIMEOUT_US_OFFSET),
        "worker": {
            "pid": region.u32(WORKER_PID_OFFSET),
            "state": state_name(region.u32(WORKER_STATE_OFFSET), &["starting", "ready", "stopping", "stopped", "failed"]),
            "alive": crate::liveness::pid_alive(region.u32(WORKER_PID_OFFSET)),
            "heartbeat_age_ms": if beat == 0 { Value::Null } else { json!(now.saturating_sub(beat) as f64 / 1e6) },
            "futex": region.u32(WORKER_FUTEX_OFFSET),
        },
        "client": {
            "pid": region.u32(CLIENT_PID_OFFSET),
            "state": state_name(region.u32(CLIENT_STATE_OFFSET), &["none", "attached", "detached"]),
            "futex": region.u32(CLIENT_FUTEX_OFFSET),
        },
        "request_ring": ring(REQ_HEAD_OFFSET, REQ_TAIL_OFFSET, REQ_RING_CHUNKS_OFFSET),
        "response_ring": ring(RESP_HEAD_OFFSET, RESP_TAIL_OFFSET, RESP_RING_CHUNKS_OFFSET),
        "stats": stats,
    })
}

/// The same facts as a readable table.
pub fn table(v: &Value) -> String {
    let mut out = String::new();
    let mut row = |k: &str, val: String| out.push_str(&format!("  {k:<22} {val}\n"));
    row("layout version", v["layout_version"].to_string());
    row("region bytes", v["region_bytes"].to_string());
    row("chunk bytes", v["chunk_bytes"].to_string());
    row("max message bytes", v["max_message_bytes"].to_string());
    row("park timeout (µs)", v["park_timeout_us"].to_string());
    let w = &v["worker"];
    row(
        "worker",
        format!(
            "pid {} {} ({}), heartbeat {} ms ago",
            w["pid"],
            w["state"].as_str().unwrap_or("?"),
            if w["alive"].as_bool() == Some(true) {
                "alive"
            } else {
                "gone"
            },
            w["heartbeat_age_ms"]
                .as_f64()
                .map_or("never".to_owned(), |a| format!("{a:.1}"))
        ),
    );
    let c = &v["client"];
    row(
        "client",
        format!("pid {} {}", c["pid"], c["state"].as_str().unwrap_or("?")),
    );
    for (name, key) in [
        ("request ring", "request_ring"),
        ("response ring", "response_ring"),
    ] {
        let r = &v[key];
        row(
            name,
            format!(
                "head {} tail {} used {}/{} chunks ({:.1}%)",
                r["head"],
                r["tail"],
                r["used_chunks"],
                r["chunks"],
                r["occupancy"].as_f64().unwrap_or(0.0) * 100.0
            ),
        );
    }
    out.push_str("  stats\n");
    if let Some(stats) = v["stats"].as_object() {
        for name in STAT_NAMES {
            out.push_str(&format!(
                "    {name:<20} {}\n",
                stats.get(name).cloned().unwrap_or(Value::Null)
            ));
        }
    }
    out
}
