//! What the snapshot benches share: running one op through the registry, the marshal bytes
//! of a document from the worker's own encoder, and the documents of `snapshot_peers.py`.
use chunkring::layout::{OP_SNAP_CURRENT, OP_SNAP_DROP, OP_SNAP_PUSH};
use chunkring::ops::{Registry, Request, State};
use serde_json::{json, Value};

/// Runs `op` with `params` and `body`; panics on an op error (a bench's inputs are valid).
pub fn call(reg: &Registry, st: &mut State, op: u16, params: &[u8], body: &[u8]) -> Vec<u8> {
    let e = reg.get(op).expect("registered");
    (e.handler)(st, &Request { params, body }).expect("op ok")
}

/// `json` (an object) as marshal bytes, written by the worker's encoder through a scratch
/// history that is dropped again.
pub fn as_marshal(reg: &Registry, st: &mut State, json: &[u8]) -> Vec<u8> {
    let name = br#"{"name":"bench-scratch"}"#;
    call(reg, st, OP_SNAP_PUSH, name, json);
    let r = call(
        reg,
        st,
        OP_SNAP_CURRENT,
        br#"{"name":"bench-scratch","encoding":"marshal"}"#,
        b"",
    );
    call(reg, st, OP_SNAP_DROP, name, b"");
    r[12..].to_vec()
}

/// `make_doc` of snapshot_peers.py: `n` discussion entries, entry `variant % n` edited.
pub fn peer_doc(n: usize, variant: usize) -> Value {
    let disc: Vec<Value> = (0..n)
        .map(|i| {
            let mut content = format!(
                "entry {i}: {}",
                "some discussion text that a user typed ".repeat(4)
            );
            if i == variant % n {
                content += &format!(" (edit {variant})");
            }
            json!({
                "role": if i % 2 == 0 { "user" } else { "assistant" },
                "content": content,
                "ts": 1_700_000_000 + i,
                "collapsed": i % 5 == 0,
                "model": if i % 2 == 0 { Value::Null } else { json!("m-1") },
            })
        })
        .collect();
    json!({
        "discussion": disc,
        "files": (0..30).map(|i| json!({"path": format!("src/pkg/module_{i}.py"), "open": i % 3 == 0, "lines": 100 + i})).collect::<Vec<_>>(),
        "context_files": (0..10).map(|i| json!({"path": format!("docs/ctx_{i}.md"), "open": false, "lines": 40})).collect::<Vec<_>>(),
        "screenshots": (0..3).map(|i| json!({"path": format!("shots/{i}.png"), "w": 1920, "h": 1080})).collect::<Vec<_>>(),
        "title": "refactor session", "model": "m-1", "temperature": 0.7, "top_p": 0.95,
        "max_tokens": 4096, "system_prompt": "You are a careful assistant. ".repeat(5),
        "cursor": 17, "scroll": 0.25, "dirty": true,
    })
}
