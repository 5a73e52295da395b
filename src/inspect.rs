//! `chunkring inspect`: the header, both rings and the stats counters of a live region, as a
//! table or as JSON (layout.md §3, §4).
#![forbid(unsafe_code)]

use serde_json::{json, Value};

use crate::layout::STAT_NAMES;
use crate::liveness;
use crate::region::{Region, RingPositions};

fn state_name(state: u32, names: &[&'static str]) -> String {
    names
        .get(state as usize)
        .map_or_else(|| format!("unknown({state})"), |s| (*s).to_owned())
}

/// Everything `inspect` shows, as JSON: the header, both rings and the stats counters.
pub fn report(region: &Region) -> Value {
    let h = region.header();
    let chunk = u64::from(h.chunk_bytes());
    let ring = |r: RingPositions| {
        let used = r.tail.saturating_sub(r.head);
        json!({
            "head": r.head, "tail": r.tail, "chunks": r.chunks, "bytes": r.chunks * chunk,
            "used_chunks": used,
            "occupancy": if r.chunks > 0 { used as f64 / r.chunks as f64 } else { 0.0 },
        })
    };
    let now = liveness::monotonic_ns();
    let beat = h.heartbeat_ns();
    let counts = h.stats();
    let stats: serde_json::Map<String, Value> = STAT_NAMES
        .iter()
        .zip(counts)
        .map(|(n, count)| ((*n).to_owned(), json!(count)))
        .collect();
    json!({
        "layout_version": h.layout_version(),
        "region_bytes": h.region_bytes(),
        "chunk_bytes": chunk,
        "max_message_bytes": h.max_message_bytes(),
        "park_timeout_us": h.park_timeout_us(),
        "frame_crc": state_name(h.frame_crc(), &["optional", "required"]),
        "worker": {
            "pid": h.worker_pid(),
            "state": state_name(h.worker_state(), &["starting", "ready", "stopping", "stopped", "failed"]),
            "alive": liveness::pid_alive(h.worker_pid()),
            "heartbeat_age_ms": if beat == 0 { Value::Null } else { json!(now.saturating_sub(beat) as f64 / 1e6) },
            "futex": h.worker_futex(),
        },
        "client": {
            "pid": h.client_pid(),
            "state": state_name(h.client_state(), &["none", "attached", "detached"]),
            "futex": h.client_futex(),
        },
        "request_ring": ring(h.request_positions()),
        "response_ring": ring(h.response_positions()),
        "stats": stats,
    })
}

/// The same facts as a readable table, from [`report`]'s JSON.
pub fn table(v: &Value) -> String {
    let mut out = String::new();
    let mut row = |k: &str, val: String| out.push_str(&format!("  {k:<22} {val}\n"));
    row("layout version", v["layout_version"].to_string());
    row("region bytes", v["region_bytes"].to_string());
    row("chunk bytes", v["chunk_bytes"].to_string());
    row("max message bytes", v["max_message_bytes"].to_string());
    row("park timeout (µs)", v["park_timeout_us"].to_string());
    row("frame checksums", v["frame_crc"].to_string());
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
