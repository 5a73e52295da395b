//! Snapshot and log ops at the op level (layout.md §9.3, §9.4): requests go through the op
//! registry exactly as the worker dispatches them, without a ring.

use chunkring::error::{ErrorCode, OpError};
use chunkring::layout::*;
use chunkring::ops::{decode_list, encode_list, Registry, Request, State};
use proptest::prelude::*;
use serde_json::{json, Value};

struct Sut {
    reg: Registry,
    state: State,
}

impl Sut {
    fn new() -> Sut {
        Sut {
            reg: Registry::with_all_ops(),
            state: State::default(),
        }
    }

    fn call(&mut self, op: u16, params: Value, body: &[u8]) -> Result<Vec<u8>, OpError> {
        let params = serde_json::to_vec(&params).unwrap();
        let entry = self.reg.get(op).expect("op registered");
        (entry.handler)(
            &mut self.state,
            &Request {
                params: &params,
                body,
            },
        )
    }

    fn json(&mut self, op: u16, params: Value, body: &[u8]) -> Value {
        serde_json::from_slice(&self.call(op, params, body).unwrap()).unwrap()
    }

    /// A cursor op: (moved, cursor, len, snapshot as JSON text).
    fn cursor(&mut self, op: u16, params: Value) -> (bool, Option<u32>, u32, String) {
        let r = self.call(op, params, b"").unwrap();
        let cursor = u32::from_le_bytes(r[4..8].try_into().unwrap());
        let len = u32::from_le_bytes(r[8..12].try_into().unwrap());
        (
            r[0] == 1,
            (cursor != u32::MAX).then_some(cursor),
            len,
            String::from_utf8(r[12..].to_vec()).unwrap(),
        )
    }

    fn stats(&mut self, name: &str) -> Value {
        self.json(OP_SNAP_STATS, json!({"name": name}), b"")
    }
}

#[derive(Debug, Clone)]
enum Step {
    Push(u16),
    Undo,
    Redo,
    Jump(u8),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        3 => any::<u16>().prop_map(Step::Push),
        3 => Just(Step::Undo),
        2 => Just(Step::Redo),
        1 => any::<u8>().prop_map(Step::Jump),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    /// Undo/redo/jump/push agree with a plain reference history at every step.
    #[test]
    fn history_matches_a_reference_model(steps in prop::collection::vec(step(), 1..200), cap in 1usize..12) {
        let mut sut = Sut::new();
        sut.call(OP_SNAP_PUSH_MANY, json!({"name": "h", "capacity": cap}), &encode_list::<&[u8]>(&[])).unwrap();
        let mut model: Vec<String> = Vec::new();
        let mut cur: usize = 0;
        for s in steps {
            match s {
                Step::Push(v) => {
                    let doc = format!("{{\"v\":{v},\"same\":[1,2,3]}}");
                    sut.call(OP_SNAP_PUSH, json!({"name": "h"}), doc.as_bytes()).unwrap();
                    if !model.is_empty() { model.truncate(cur + 1); }
                    model.push(doc);
                    if model.len() > cap { model.remove(0); }
                    cur = model.len() - 1;
                }
                Step::Undo => {
                    let (moved, _, _, snap) = sut.cursor(OP_SNAP_UNDO, json!({"name": "h"}));
                    let want = !model.is_empty() && cur > 0;
                    prop_assert_eq!(moved, want);
                    if want { cur -= 1; prop_assert_eq!(&snap, &model[cur]); }
                }
                Step::Redo => {
                    let (moved, _, _, snap) = sut.cursor(OP_SNAP_REDO, json!({"name": "h"}));
                    let want = cur + 1 < model.len();
                    prop_assert_eq!(moved, want);
                    if want { cur += 1; prop_assert_eq!(&snap, &model[cur]); }
                }
                Step::Jump(i) => {
                    let r = sut.call(OP_SNAP_JUMP, json!({"name": "h", "index": i}), b"");
                    if usize::from(i) < model.len() {
                        prop_assert!(r.is_ok());
                        cur = usize::from(i);
                    } else {
                        prop_assert_eq!(r.unwrap_err().code, ErrorCode::OutOfRange);
                    }
                }
            }
            let (_, cursor, len, snap) = sut.cursor(OP_SNAP_CURRENT, json!({"name": "h"}));
            prop_assert_eq!(len as usize, model.len());
            if model.is_empty() {
                prop_assert_eq!(cursor, None);
            } else {
                prop_assert_eq!(cursor, Some(cur as u32));
                prop_assert_eq!(&snap, &model[cur]);
            }
        }
    }
}

/// A UI-snapshot-like document of about 50 KB; `variant` changes one discussion entry.
fn ui_doc(variant: usize) -> Value {
    let entries: Vec<Value> = (0..200)
        .map(|i| {
            json!({
                "role": if i % 2 == 0 { "user" } else { "assistant" },
                "content": format!("message {i} {}", "lorem ipsum dolor sit amet ".repeat(7)),
                "ts": 1_700_000_000 + i,
                "collapsed": false,
                "v": if i == variant % 200 { variant } else { 0 },
            })
        })
        .collect();
    json!({
        "discussion": entries,
        "files": (0..40).map(|i| json!({"path": format!("src/file_{i}.rs"), "open": i % 3 == 0})).collect::<Vec<_>>(),
        "context_files": ["README.md", "layout.md"],
        "screenshots": [],
        "title": "session", "model": "m", "temperature": 0.7, "top_p": 1.0,
        "max_tokens": 4096, "system": "be brief", "cursor": 12, "scroll": 0.5, "dirty": true,
    })
}

#[test]
fn sharing_is_real_and_eviction_returns_memory() {
    let mut sut = Sut::new();
    let one = serde_json::to_vec(&ui_doc(0)).unwrap();
    assert!(one.len() > 45_000 && one.len() < 60_000, "{}", one.len());
    sut.call(OP_SNAP_PUSH, json!({"name": "one"}), &one)
        .unwrap();
    let single = sut.stats("one")["stored_bytes"].as_u64().unwrap();
    for v in 0..100 {
        let doc = serde_json::to_vec(&ui_doc(v)).unwrap();
        sut.call(OP_SNAP_PUSH, json!({"name": "ui"}), &doc).unwrap();
    }
    let s = sut.stats("ui");
    let stored = s["stored_bytes"].as_u64().unwrap();
    let logical = s["logical_bytes"].as_u64().unwrap();
    println!(
        "one snapshot stores {single} B; 100 snapshots store {stored} B ({logical} B logical)"
    );
    assert_eq!(s["snapshots"], json!(100));
    assert!(logical > 90 * one.len() as u64);
    assert!(
        stored < 3 * single,
        "100 snapshots store {stored} bytes, one stores {single}"
    );
    assert!(s["sharing_ratio"].as_f64().unwrap() > 10.0, "{s}");

    // Eviction: capacity 5 with completely different documents keeps memory bounded.
    let distinct = |i: usize| {
        let mut d = ui_doc(0);
        d["title"] = json!(format!("{i:04}"));
        for e in d["discussion"].as_array_mut().unwrap() {
            e["ts"] = json!(i);
        }
        serde_json::to_vec(&d).unwrap()
    };
    sut.call(
        OP_SNAP_PUSH_MANY,
        json!({"name": "ev", "capacity": 5}),
        &encode_list::<&[u8]>(&[]),
    )
    .unwrap();
    for i in 0..10 {
        sut.call(OP_SNAP_PUSH, json!({"name": "ev"}), &distinct(i))
            .unwrap();
    }
    let after10 = sut.stats("ev");
    for i in 10..60 {
        sut.call(OP_SNAP_PUSH, json!({"name": "ev"}), &distinct(i))
            .unwrap();
    }
    let after60 = sut.stats("ev");
    assert_eq!(after60["snapshots"], json!(5));
    assert_eq!(
        after60["heap_bytes"], after10["heap_bytes"],
        "evicted payloads were freed"
    );
    assert_eq!(
        after60["arena_bytes"], after10["arena_bytes"],
        "freed slots are reused"
    );
    // The hash index may grow once (tombstones from removals), never with the pushes.
    let (s10, s60) = (
        after10["stored_bytes"].as_u64().unwrap(),
        after60["stored_bytes"].as_u64().unwrap(),
    );
    assert!(s60 < s10 * 3 / 2, "{after10} {after60}");
    assert!(after60["free_slots"].as_u64().unwrap() > 0);

    let total = |sut: &mut Sut| {
        sut.json(OP_SNAP_STATS, json!({}), b"")["stored_bytes"]
            .as_u64()
            .unwrap()
    };
    let before_drop = total(&mut sut);
    sut.call(OP_SNAP_DROP, json!({"name": "ui"}), b"").unwrap();
    assert_eq!(
        total(&mut sut),
        before_drop - stored,
        "drop returns everything the history held"
    );
}

#[test]
fn bad_input_is_a_clear_error_and_nothing_stored_is_lost() {
    let mut sut = Sut::new();
    sut.call(
        OP_SNAP_PUSH,
        json!({"name": "h", "label": "first"}),
        br#"{"a":1}"#,
    )
    .unwrap();
    let cases: Vec<(u16, Value, &[u8], ErrorCode, &str)> = vec![
        (
            OP_SNAP_PUSH,
            json!({"name": "h"}),
            b"{\"a\":",
            ErrorCode::BadPayload,
            "invalid json",
        ),
        (
            OP_SNAP_PUSH,
            json!({"name": "h"}),
            b"[1,2]",
            ErrorCode::BadPayload,
            "must be an object",
        ),
        (
            OP_SNAP_PUSH,
            json!({"name": "h", "encoding": "marshal"}),
            b"i\x01\x00\x00\x00",
            ErrorCode::BadPayload,
            "must be an object",
        ),
        (
            OP_SNAP_PUSH,
            json!({"name": "h", "encoding": "yaml"}),
            b"{}",
            ErrorCode::BadParams,
            "unknown variant",
        ),
        (
            OP_SNAP_PUSH,
            json!({"name": "h"}),
            b"{\"\xff\":1}",
            ErrorCode::InvalidUtf8,
            "byte offset",
        ),
        (
            OP_SNAP_UNDO,
            json!({"name": "nope"}),
            b"",
            ErrorCode::NotFound,
            "unknown history \"nope\"",
        ),
        (
            OP_SNAP_JUMP,
            json!({"name": "h", "index": 1}),
            b"",
            ErrorCode::OutOfRange,
            "index 1 is out of range",
        ),
        (
            OP_SNAP_JUMP,
            json!({"name": "h"}),
            b"",
            ErrorCode::BadParams,
            "index",
        ),
        (
            OP_SNAP_DIFF,
            json!({"name": "h", "a": 0, "b": 7}),
            b"",
            ErrorCode::OutOfRange,
            "index 7",
        ),
        (
            OP_SNAP_PUSH_MANY,
            json!({"name": "h"}),
            &[1, 0, 0],
            ErrorCode::BadPayload,
            "list",
        ),
        (
            OP_SNAP_PUSH,
            json!({"name": ""}),
            b"{}",
            ErrorCode::BadParams,
            "name",
        ),
        (
            OP_SNAP_PUSH,
            json!({"name": "h", "capacity": 0}),
            b"{}",
            ErrorCode::BadParams,
            "capacity",
        ),
        (
            OP_LOG_READ,
            json!({"name": "nolog", "count": 1}),
            b"",
            ErrorCode::NotFound,
            "unknown log",
        ),
    ];
    for (op, params, body, code, text) in cases {
        let e = sut.call(op, params.clone(), body).unwrap_err();
        assert_eq!(e.code, code, "{params}: {e}");
        assert!(e.message.contains(text), "{params}: {e}");
        let (_, cursor, len, snap) = sut.cursor(OP_SNAP_CURRENT, json!({"name": "h"}));
        assert_eq!((cursor, len, snap.as_str()), (Some(0), 1, r#"{"a":1}"#));
    }
    // push_many is all or nothing.
    let bad = encode_list(&[&b"{\"b\":2}"[..], b"{\"c\""]);
    let e = sut
        .call(OP_SNAP_PUSH_MANY, json!({"name": "h"}), &bad)
        .unwrap_err();
    assert!(e.message.starts_with("snapshot 1:"), "{e}");
    assert_eq!(sut.stats("h")["snapshots"], json!(1));
    assert_eq!(sut.stats("h")["nodes"], json!(3));
    // An opaque snapshot cannot be diffed or returned as json.
    sut.call(
        OP_SNAP_PUSH,
        json!({"name": "h", "encoding": "bytes"}),
        b"\x00\x01",
    )
    .unwrap();
    let e = sut
        .call(OP_SNAP_DIFF, json!({"name": "h", "a": 0, "b": 1}), b"")
        .unwrap_err();
    assert!(e.message.contains("opaque"), "{e}");
    let e = sut
        .call(
            OP_SNAP_CURRENT,
            json!({"name": "h", "encoding": "json"}),
            b"",
        )
        .unwrap_err();
    assert_eq!(e.code, ErrorCode::BadParams);
}

#[test]
fn list_get_and_encodings_round_trip() {
    let mut sut = Sut::new();
    let labels = json!(["a", null]);
    let body = encode_list(&[&br#"{"x":1}"#[..], br#"{"x":[1.5,"y"]}"#]);
    sut.call(
        OP_SNAP_PUSH_MANY,
        json!({"name": "h", "labels": labels}),
        &body,
    )
    .unwrap();
    let l = sut.json(OP_SNAP_LIST, json!({"name": "h"}), b"");
    assert_eq!(l["cursor"], json!(1));
    assert_eq!(l["entries"][0]["label"], json!("a"));
    assert_eq!(l["entries"][1]["label"], Value::Null);
    assert_eq!(l["entries"][0]["size"], json!(7));
    assert_eq!(l["entries"][0]["digest"].as_str().unwrap().len(), 16);
    // Marshal out of a JSON-pushed snapshot: {"x": [1.5, "y"]}.
    let r = sut
        .call(
            OP_SNAP_GET,
            json!({"name": "h", "index": 1, "encoding": "marshal"}),
            b"",
        )
        .unwrap();
    assert_eq!(r[1], 2, "encoding byte says marshal");
    // "x" is shared with entry 0, so it carries FLAG_REF (0x80 | b'z').
    let mut want = b"{\xfa\x01x[\x02\x00\x00\x00g".to_vec();
    want.extend_from_slice(&1.5f64.to_le_bytes());
    want.extend_from_slice(b"z\x01y0");
    assert_eq!(&r[12..], &want[..]);
    // Same content pushed as marshal shares the root (same digest).
    sut.call(
        OP_SNAP_PUSH,
        json!({"name": "h", "encoding": "marshal", "time": 123.5}),
        &want,
    )
    .unwrap();
    let l = sut.json(OP_SNAP_LIST, json!({"name": "h"}), b"");
    assert_eq!(l["entries"][2]["digest"], l["entries"][1]["digest"]);
    assert_eq!(l["entries"][2]["encoding"], json!("marshal"));
    assert_eq!(
        l["entries"][2]["time"],
        json!(123.5),
        "the client's push time is kept"
    );
    let now = l["entries"][0]["time"].as_f64().unwrap();
    assert!(now > 1.7e9, "default time is the worker clock: {now}");
}

/// Applies an RFC 6902 patch (add/remove/replace, as our diff emits) to a document.
fn apply(doc: &mut Value, patch: &Value) {
    for op in patch.as_array().unwrap() {
        let path = op["path"].as_str().unwrap();
        let mut parts: Vec<String> = path
            .split('/')
            .skip(1)
            .map(|p| p.replace("~1", "/").replace("~0", "~"))
            .collect();
        if parts.is_empty() {
            *doc = op["value"].clone();
            continue;
        }
        let last = parts.pop().unwrap();
        let mut target = &mut *doc;
        for p in &parts {
            target = match target {
                Value::Array(a) => &mut a[p.parse::<usize>().unwrap()],
                Value::Object(o) => o.get_mut(p).unwrap(),
                _ => panic!("bad path {path}"),
            };
        }
        match (op["op"].as_str().unwrap(), target) {
            ("add", Value::Array(a)) => a.insert(last.parse().unwrap(), op["value"].clone()),
            ("remove", Value::Array(a)) => {
                a.remove(last.parse().unwrap());
            }
            ("replace", Value::Array(a)) => a[last.parse::<usize>().unwrap()] = op["value"].clone(),
            ("add" | "replace", Value::Object(o)) => {
                o.insert(last, op["value"].clone());
            }
            ("remove", Value::Object(o)) => {
                o.remove(&last).unwrap();
            }
            (o, t) => panic!("cannot {o} at {path} in {t}"),
        }
    }
}

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        (-5i64..5).prop_map(Value::from),
        "[a-c/~]{0,3}".prop_map(Value::from),
    ]
}

fn doc() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(4, 40, 5, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::from),
            prop::collection::btree_map("[a-c/~]{1,2}", inner, 0..5)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]
    /// diff(a, b) applied to a gives b, for random nested documents.
    #[test]
    fn diff_applied_to_a_gives_b(a in doc(), b in doc()) {
        let mut sut = Sut::new();
        let wrap = |v: &Value| serde_json::to_vec(&json!({"root": v})).unwrap();
        sut.call(OP_SNAP_PUSH, json!({"name": "d"}), &wrap(&a)).unwrap();
        sut.call(OP_SNAP_PUSH, json!({"name": "d"}), &wrap(&b)).unwrap();
        let patch = sut.json(OP_SNAP_DIFF, json!({"name": "d", "a": 0, "b": 1}), b"");
        let mut got = json!({"root": a});
        apply(&mut got, &patch);
        prop_assert_eq!(got, json!({"root": b}));
        let none = sut.json(OP_SNAP_DIFF, json!({"name": "d", "a": 1, "b": 1}), b"");
        prop_assert_eq!(none, json!([]));
    }
}

#[test]
fn marshal_round_trips_against_cpython() {
    let script = r#"
import marshal, json, random, sys
random.seed(7)
def val(d):
    r = random.random()
    if d > 3 or r < 0.4:
        return random.choice([None, True, False, random.randint(-2**70, 2**70), random.randint(-9, 9),
                              random.random() * 1e6, "é" * random.randint(0, 3), "k" * random.randint(0, 300)])
    if r < 0.7:
        return [val(d + 1) for _ in range(random.randint(0, 5))]
    return {random.choice("abcdef") + str(i): val(d + 1) for i in range(random.randint(0, 5))}
out = []
for _ in range(50):
    doc = {"root": val(0), "same": "shared-key", "t": (1, "shared-key")}
    out.append([marshal.dumps(doc, 4).hex(), json.dumps(doc, separators=(",", ":"), ensure_ascii=False)])
sys.stdout.write(json.dumps(out))
"#;
    let Ok(out) = std::process::Command::new("python3")
        .args(["-c", script])
        .output()
    else {
        println!("NOT RUN: python3 not found");
        return;
    };
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let cases: Vec<(String, String)> = serde_json::from_slice(&out.stdout).unwrap();
    let mut sut = Sut::new();
    let mut ours = Vec::new();
    for (hex, text) in &cases {
        let bytes: Vec<u8> = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
            .collect();
        sut.call(
            OP_SNAP_PUSH,
            json!({"name": "m", "encoding": "marshal"}),
            &bytes,
        )
        .unwrap();
        let (_, _, _, back) = sut.cursor(OP_SNAP_CURRENT, json!({"name": "m", "encoding": "json"}));
        let a: Value = serde_json::from_str(&back).unwrap();
        let b: Value = serde_json::from_str(text).unwrap();
        assert_eq!(a, b);
        let r = sut
            .call(OP_SNAP_CURRENT, json!({"name": "m"}), b"")
            .unwrap();
        ours.push(r[12..].to_vec());
    }
    // CPython reads our marshal back to the same JSON.
    let check = r#"
import marshal, json, sys
data = sys.stdin.buffer.read()
n = int.from_bytes(data[:4], "little"); lens = [int.from_bytes(data[4+4*i:8+4*i], "little") for i in range(n)]
at = 4 + 4 * n; out = []
for l in lens:
    out.append(json.dumps(marshal.loads(data[at:at+l]), separators=(",", ":"), ensure_ascii=False)); at += l
sys.stdout.write(json.dumps(out))
"#;
    let mut child = std::process::Command::new("python3")
        .args(["-c", check])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(&encode_list(&ours))
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let texts: Vec<String> = serde_json::from_slice(&out.stdout).unwrap();
    for ((_, want), got) in cases.iter().zip(texts) {
        assert_eq!(got, *want);
    }
}

#[test]
fn logs_append_in_batches_and_read_back_exactly() {
    let mut sut = Sut::new();
    let mut n = 0u32;
    for _ in 0..20 {
        let recs: Vec<Vec<u8>> = (0..5000)
            .map(|_| {
                n += 1;
                format!("rec{n}").into_bytes()
            })
            .collect();
        let r = sut.json(OP_LOG_APPEND, json!({"name": "c"}), &encode_list(&recs));
        assert_eq!(r["len"], json!(n));
    }
    let got = sut
        .call(
            OP_LOG_READ,
            json!({"name": "c", "start": 99_990, "count": 50}),
            b"",
        )
        .unwrap();
    let items = decode_list(&got).unwrap();
    assert_eq!(items.len(), 10);
    assert_eq!(items[9], b"rec100000");
    let tail = sut
        .call(OP_LOG_TAIL, json!({"name": "c", "n": 3}), b"")
        .unwrap();
    assert_eq!(
        decode_list(&tail).unwrap(),
        vec![&b"rec99998"[..], b"rec99999", b"rec100000"]
    );
    let e = sut
        .call(
            OP_LOG_READ,
            json!({"name": "c", "start": 100_001, "count": 1}),
            b"",
        )
        .unwrap_err();
    assert_eq!(e.code, ErrorCode::OutOfRange);
    assert_eq!(
        sut.json(OP_LOG_LEN, json!({"name": "c"}), b"")["len"],
        json!(100_000)
    );
}

#[test]
fn saved_histories_load_back_and_corrupt_files_change_nothing() {
    let dir = std::env::temp_dir().join(format!("chunkring-snap-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("ui.snap");
    let p = path.to_str().unwrap();
    let mut sut = Sut::new();
    for v in 0..5 {
        let doc = serde_json::to_vec(&ui_doc(v)).unwrap();
        sut.call(
            OP_SNAP_PUSH,
            json!({"name": "ui", "label": format!("v{v}")}),
            &doc,
        )
        .unwrap();
    }
    sut.cursor(OP_SNAP_UNDO, json!({"name": "ui"}));
    let saved = sut.json(OP_SNAP_SAVE, json!({"name": "ui", "path": p}), b"");
    assert!(
        saved["bytes"].as_u64().unwrap() < 2 * 55_000,
        "{saved}: shared nodes saved once"
    );
    let e = sut.call(OP_SNAP_LOAD, json!({"path": p}), b"").unwrap_err();
    assert!(e.message.contains("already exists"), "{e}");
    let r = sut.json(OP_SNAP_LOAD, json!({"path": p, "name": "copy"}), b"");
    assert_eq!(
        r,
        json!({"name": "copy", "capacity": 100, "len": 5, "cursor": 3})
    );
    let a = sut.json(OP_SNAP_LIST, json!({"name": "ui"}), b"");
    let mut b = sut.json(OP_SNAP_LIST, json!({"name": "copy"}), b"");
    assert_eq!(a, b.take());
    let (_, _, _, x) = sut.cursor(OP_SNAP_CURRENT, json!({"name": "ui"}));
    let (_, _, _, y) = sut.cursor(OP_SNAP_CURRENT, json!({"name": "copy"}));
    assert_eq!(x, y);

    let mut bytes = std::fs::read(&path).unwrap();
    let torn = dir.join("torn.snap");
    std::fs::write(&torn, &bytes[..bytes.len() - 100]).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    let flipped = dir.join("flipped.snap");
    std::fs::write(&flipped, &bytes).unwrap();
    for f in [&torn, &flipped] {
        let e = sut
            .call(
                OP_SNAP_LOAD,
                json!({"path": f.to_str().unwrap(), "name": "copy", "replace": true}),
                b"",
            )
            .unwrap_err();
        assert_eq!(e.code, ErrorCode::CorruptData, "{e}");
    }
    let e = sut
        .call(
            OP_SNAP_LOAD,
            json!({"path": dir.join("missing").to_str().unwrap()}),
            b"",
        )
        .unwrap_err();
    assert_eq!(e.code, ErrorCode::Io);
    for (path, text) in [("/dev/zero", "regular file"), ("relative.snap", "absolute")] {
        let e = sut
            .call(OP_SNAP_LOAD, json!({"path": path}), b"")
            .unwrap_err();
        assert_eq!(e.code, ErrorCode::PathRefused, "{e}");
        assert!(e.message.contains(text), "{e}");
    }
    assert_eq!(
        sut.stats("copy")["snapshots"],
        json!(5),
        "failed loads replaced nothing"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

fn nodes(sut: &mut Sut, name: &str) -> Value {
    sut.stats(name)["nodes"].clone()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]
    /// Hostile bodies never panic; a refused one leaves the store exactly as it was.
    #[test]
    fn random_and_mutated_bodies_never_panic_or_leak(
        junk in prop::collection::vec(any::<u8>(), 0..256),
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
    ) {
        let mut sut = Sut::new();
        let base = br#"{"a":[1,2,{"b":"c"}],"d":"e","f":1.5,"g":123456789012345678901234}"#;
        sut.call(OP_SNAP_PUSH, json!({"name": "h"}), base).unwrap();
        let marshal = sut.call(OP_SNAP_CURRENT, json!({"name": "h", "encoding": "marshal"}), b"").unwrap()[12..].to_vec();
        let before = nodes(&mut sut, "h");
        for enc in ["json", "marshal"] {
            let mut bodies = vec![junk.clone()];
            for src in [&base[..], &marshal[..]] {
                let mut m = src.to_vec();
                for (at, v) in &flips {
                    let i = at.index(m.len());
                    m[i] = *v;
                }
                bodies.push(m);
            }
            for body in bodies {
                let r = sut.call(OP_SNAP_PUSH, json!({"name": "h", "encoding": enc}), &body);
                if r.is_err() {
                    prop_assert_eq!(nodes(&mut sut, "h"), before.clone());
                } else {
                    // Accepted: undo it away by pushing the base again on a fresh history.
                    sut.call(OP_SNAP_DROP, json!({"name": "h"}), b"").unwrap();
                    sut.call(OP_SNAP_PUSH, json!({"name": "h"}), base).unwrap();
                }
            }
        }
        // Persisted payloads with a valid checksum but mutated contents are refused or loaded,
        // never a panic.
        let h = sut.state.snapshots.histories.get("h").unwrap();
        let mut payload = chunkring::store::file::history::encode("h", h);
        for (at, v) in &flips {
            let i = at.index(payload.len());
            payload[i] = *v;
        }
        let _ = chunkring::store::file::history::decode(&payload);
        let _ = chunkring::store::file::history::decode(&junk);
    }
}

#[test]
fn get_by_offset_and_undo_without_snapshot_support_prefetching_clients() {
    let mut sut = Sut::new();
    for x in 0..3 {
        sut.call(
            OP_SNAP_PUSH,
            json!({"name": "p"}),
            format!("{{\"x\":{x}}}").as_bytes(),
        )
        .unwrap();
    }
    // The entry an undo would return, without moving the cursor.
    let (ok, cursor, len, snap) = sut.cursor(OP_SNAP_GET, json!({"name": "p", "offset": -1}));
    assert_eq!(
        (ok, cursor, len, snap.as_str()),
        (true, Some(2), 3, r#"{"x":1}"#)
    );
    // An undo that answers only the header moves the cursor all the same.
    let (moved, cursor, _, snap) =
        sut.cursor(OP_SNAP_UNDO, json!({"name": "p", "snapshot": false}));
    assert_eq!((moved, cursor, snap.as_str()), (true, Some(1), ""));
    let (_, _, _, snap) = sut.cursor(OP_SNAP_CURRENT, json!({"name": "p"}));
    assert_eq!(snap, r#"{"x":1}"#);
    // Out of range offsets are a status-0 answer, not an error (speculative prefetch).
    assert!(
        !sut.cursor(OP_SNAP_GET, json!({"name": "p", "offset": -2}))
            .0
    );
    assert!(!sut.cursor(OP_SNAP_GET, json!({"name": "p", "offset": 5})).0);
    assert!(sut.cursor(OP_SNAP_GET, json!({"name": "p", "offset": 1})).0);
    // `index` still wins over `offset`, and is still checked.
    assert_eq!(
        sut.cursor(OP_SNAP_GET, json!({"name": "p", "index": 0, "offset": 1}))
            .3,
        r#"{"x":0}"#
    );
    let e = sut
        .call(OP_SNAP_GET, json!({"name": "p", "index": 9}), b"")
        .unwrap_err();
    assert_eq!(e.code, ErrorCode::OutOfRange);
    // At the oldest entry an undo without snapshot does not move.
    sut.call(OP_SNAP_JUMP, json!({"name": "p", "index": 0}), b"")
        .unwrap();
    assert!(
        !sut.cursor(OP_SNAP_UNDO, json!({"name": "p", "snapshot": false}))
            .0
    );
}

#[test]
fn next_moves_and_answers_what_the_following_move_would() {
    let mut sut = Sut::new();
    for x in 0..3 {
        let body = format!("{{\"x\":{x}}}");
        sut.call(OP_SNAP_PUSH, json!({"name": "n"}), body.as_bytes())
            .unwrap();
    }
    // An undo with `next` moves and answers the entry the next undo returns.
    let (ok, cursor, _, snap) = sut.cursor(OP_SNAP_UNDO, json!({"name": "n", "next": true}));
    assert_eq!((ok, cursor, snap.as_str()), (true, Some(1), r#"{"x":0}"#));
    let (ok, cursor, _, snap) = sut.cursor(OP_SNAP_UNDO, json!({"name": "n", "next": true}));
    assert_eq!(
        (ok, cursor, snap.as_str()),
        (false, Some(0), ""),
        "nothing older"
    );
    let (ok, cursor, _, snap) = sut.cursor(OP_SNAP_REDO, json!({"name": "n", "next": true}));
    assert_eq!((ok, cursor, snap.as_str()), (true, Some(1), r#"{"x":2}"#));
    // A move with `next` answers the patch of the following move (compact: one marshal list),
    // or nothing after the header when that one would not move.
    let mut step = |to: &str| {
        sut.call(
            OP_SNAP_MOVE,
            json!({"name": "n", "to": to, "next": true, "compact": true}),
            b"",
        )
        .unwrap()
    };
    let out = step("redo");
    assert_eq!(
        (out[0], out[1], out.len()),
        (1, 0, 12),
        "moved to 2; no redo after it"
    );
    let out = step("undo");
    assert_eq!(
        (out[0], out[1]),
        (1, 2),
        "moved to 1; the patch of the undo to 0 follows"
    );
    assert_eq!(
        &out[12..],
        b"[\x01\x00\x00\x00[\x04\x00\x00\x00z\x07replacez\x02/x[\x01\x00\x00\x00z\x01xi\x00\x00\x00\x00"
    );
    assert_eq!(sut.stats("n")["cursor"], json!(1));
    for bad in [
        json!({"name": "n", "to": 0, "next": true}),
        json!({"name": "n", "to": "undo", "next": true, "peek": true}),
    ] {
        let e = sut.call(OP_SNAP_MOVE, bad, b"").unwrap_err();
        assert_eq!(e.code, ErrorCode::BadParams);
    }
}

#[test]
fn ahead_moves_by_steps_then_answers_the_next_steps_patches_as_peeks_would() {
    let mut sut = Sut::new();
    for x in 0..5 {
        let body = format!("{{\"x\":{x},\"k\":\"same\"}}");
        sut.call(OP_SNAP_PUSH, json!({"name": "a"}), body.as_bytes())
            .unwrap();
    }
    let peek = |sut: &mut Sut, to: &str| {
        sut.call(
            OP_SNAP_MOVE,
            json!({"name": "a", "to": to, "peek": true, "compact": true}),
            b"",
        )
        .unwrap()[12..]
            .to_vec()
    };
    // Two undos told at once, then the patches of the next three undos: at cursor 2 only two
    // remain (to 1, to 0). The first is byte for byte the peek's; each is one list of ops.
    let first = {
        sut.call(OP_SNAP_JUMP, json!({"name": "a", "index": 2}), b"")
            .unwrap();
        let p = peek(&mut sut, "undo");
        sut.call(OP_SNAP_JUMP, json!({"name": "a", "index": 4}), b"")
            .unwrap();
        p
    };
    let out = sut
        .call(
            OP_SNAP_AHEAD,
            json!({"name": "a", "by": -2, "to": "undo", "count": 3}),
            b"",
        )
        .unwrap();
    assert_eq!((out[0], out[1]), (1, 2), "patches follow, as marshal");
    assert_eq!(
        u32::from_le_bytes(out[4..8].try_into().unwrap()),
        2,
        "cursor"
    );
    assert_eq!(
        &out[12..17],
        b"[\x02\x00\x00\x00",
        "two patches: history ends"
    );
    assert_eq!(&out[17..17 + first.len()], first.as_slice());
    assert_eq!(sut.stats("a")["cursor"], json!(2));
    // `skip` 1: the same patches but the first (these hold no shared string, so their bytes
    // do not depend on what the encoder wrote before them).
    let tail = sut
        .call(
            OP_SNAP_AHEAD,
            json!({"name": "a", "to": "undo", "count": 3, "skip": 1}),
            b"",
        )
        .unwrap();
    assert_eq!(
        &tail[12..17],
        b"[\x01\x00\x00\x00",
        "one patch after the first"
    );
    assert_eq!(
        &tail[17..],
        &out[17 + first.len()..],
        "the second of the two"
    );
    // Redos the same way; a count of 0 only moves (the header alone, status 0).
    let out = sut
        .call(
            OP_SNAP_AHEAD,
            json!({"name": "a", "by": 1, "to": "redo", "count": 64}),
            b"",
        )
        .unwrap();
    assert_eq!(&out[12..17], b"[\x01\x00\x00\x00", "one redo left from 3");
    let out = sut
        .call(OP_SNAP_AHEAD, json!({"name": "a", "by": 1}), b"")
        .unwrap();
    assert_eq!((out[0], out[1], out.len()), (0, 0, 12));
    assert_eq!(sut.stats("a")["cursor"], json!(4));
    let out = sut
        .call(
            OP_SNAP_AHEAD,
            json!({"name": "a", "to": "redo", "count": 4}),
            b"",
        )
        .unwrap();
    assert_eq!((out[0], out.len()), (0, 12), "nothing to redo: no patch");
    // A move past either end moves nothing and says where it would have gone.
    for by in [-5, 1, i64::MIN, i64::MAX] {
        let e = sut
            .call(OP_SNAP_AHEAD, json!({"name": "a", "by": by}), b"")
            .unwrap_err();
        assert_eq!(e.code, ErrorCode::OutOfRange, "{by}");
    }
    assert_eq!(sut.stats("a")["cursor"], json!(4));
    for bad in [
        json!({"name": "a", "count": 1}),
        json!({"name": "a", "to": "up", "count": 1}),
        json!({"name": "a", "to": 3, "count": 1}),
        json!({"name": "a", "to": "undo", "count": 65}),
        json!({"name": "a", "to": "undo", "count": -1}),
        json!({"name": "a", "by": 0.5}),
    ] {
        let e = sut.call(OP_SNAP_AHEAD, bad.clone(), b"").unwrap_err();
        assert_eq!(e.code, ErrorCode::BadParams, "{bad}");
    }
    assert_eq!(sut.stats("a")["cursor"], json!(4));
    // An opaque snapshot on the way ends the patches before it.
    sut.call(
        OP_SNAP_PUSH,
        json!({"name": "a", "encoding": "bytes"}),
        b"\x00opaque",
    )
    .unwrap();
    sut.call(OP_SNAP_PUSH, json!({"name": "a"}), br#"{"x":9}"#)
        .unwrap();
    let out = sut
        .call(
            OP_SNAP_AHEAD,
            json!({"name": "a", "to": "undo", "count": 8}),
            b"",
        )
        .unwrap();
    assert_eq!((out[0], out.len()), (0, 12), "the step into the opaque one");
    let e = sut
        .call(OP_SNAP_AHEAD, json!({"name": "nope", "by": 0}), b"")
        .unwrap_err();
    assert_eq!(e.code, ErrorCode::NotFound);
}

#[test]
fn ahead_with_snapshots_answers_what_each_step_makes_current() {
    let mut sut = Sut::new();
    for x in 0..4 {
        let body = format!("{{\"x\":{x}}}");
        sut.call(OP_SNAP_PUSH, json!({"name": "s"}), body.as_bytes())
            .unwrap();
    }
    let out = sut
        .call(
            OP_SNAP_AHEAD,
            json!({"name": "s", "by": -1, "to": "undo", "count": 8, "snapshots": true}),
            b"",
        )
        .unwrap();
    assert_eq!(
        (out[0], out[1]),
        (1, 0),
        "items follow, each with its encoding"
    );
    assert_eq!(
        u32::from_le_bytes(out[4..8].try_into().unwrap()),
        2,
        "cursor"
    );
    let items = decode_list(&out[12..]).unwrap();
    assert_eq!(items.len(), 2, "two undos left from 2");
    for (item, want) in items.iter().zip([1u32, 0]) {
        let get = sut
            .call(OP_SNAP_GET, json!({"name": "s", "index": want}), b"")
            .unwrap();
        assert_eq!(&item[..4], &get[..4], "status and encoding as a get's");
        assert_eq!(u32::from_le_bytes(item[4..8].try_into().unwrap()), want);
        assert_eq!(&item[12..], &get[12..], "the snapshot as a get answers it");
    }
    assert_eq!(sut.stats("s")["cursor"], json!(2), "only `by` moved it");
    // `skip`: the items of the steps after the first `skip` (a client holds those already).
    let out = sut
        .call(
            OP_SNAP_AHEAD,
            json!({"name": "s", "to": "undo", "count": 8, "snapshots": true, "skip": 1}),
            b"",
        )
        .unwrap();
    let items = decode_list(&out[12..]).unwrap();
    assert_eq!(items.len(), 1, "one undo left after the first");
    assert_eq!(u32::from_le_bytes(items[0][4..8].try_into().unwrap()), 0);
    for skip in [2, 3, u64::MAX] {
        let out = sut
            .call(
                OP_SNAP_AHEAD,
                json!({"name": "s", "to": "undo", "count": 8, "snapshots": true, "skip": skip}),
                b"",
            )
            .unwrap();
        assert_eq!(
            (out[0], out.len()),
            (0, 12),
            "nothing past the end ({skip})"
        );
    }
    let out = sut
        .call(
            OP_SNAP_AHEAD,
            json!({"name": "s", "to": "redo", "count": 1, "snapshots": true}),
            b"",
        )
        .unwrap();
    let items = decode_list(&out[12..]).unwrap();
    assert_eq!(items.len(), 1, "as many as asked for");
    assert_eq!(&items[0][12..], br#"{"x":3}"#);
}

#[test]
fn ahead_with_snapshots_stops_where_the_next_would_pass_the_byte_bound() {
    // Each item is a 12-byte cursor header and the JSON `{"s":"…"}` (8 bytes and the text),
    // and the bound counts a 4-byte length word per item: `text` bytes of text make each
    // item cost exactly a quarter of AHEAD_MAX_BYTES, so 4 fit and a fifth does not.
    let text = AHEAD_MAX_BYTES / 4 - 4 - 12 - 8;
    for (extra, want) in [(0, 4), (1, 3), (AHEAD_MAX_BYTES, 1)] {
        let mut sut = Sut::new();
        let body = format!("{{\"s\":\"{}\"}}", "x".repeat(text + extra));
        for _ in 0..6 {
            sut.call(OP_SNAP_PUSH, json!({"name": "s"}), body.as_bytes())
                .unwrap();
        }
        let out = sut
            .call(
                OP_SNAP_AHEAD,
                json!({"name": "s", "to": "undo", "count": 5, "snapshots": true}),
                b"",
            )
            .unwrap();
        let items = decode_list(&out[12..]).unwrap();
        assert_eq!(items.len(), want, "{extra} more bytes each");
        for (item, index) in items.iter().zip((0..5u32).rev()) {
            assert_eq!(u32::from_le_bytes(item[4..8].try_into().unwrap()), index);
            assert_eq!(&item[12..], body.as_bytes());
        }
    }
}

#[test]
fn a_push_with_peek_answers_the_patch_of_the_undo_after_it() {
    let mut sut = Sut::new();
    let peek_undo = json!({"name": "p", "to": "undo", "peek": true, "compact": true});
    // The first push: nothing to undo to, so the header alone (status 0).
    let first = sut
        .call(
            OP_SNAP_PUSH,
            json!({"name": "p", "peek": true}),
            br#"{"x":0,"d":[1]}"#,
        )
        .unwrap();
    assert_eq!((first[0], first[1], first.len()), (0, 0, 12));
    // Each push (plain, fields, many) answers exactly what a peek sent right after it does.
    let pushes: [(u16, Value, Vec<u8>); 3] = [
        (
            OP_SNAP_PUSH,
            json!({"name": "p", "peek": true}),
            br#"{"x":1,"d":[1,2]}"#.to_vec(),
        ),
        (
            OP_SNAP_PUSH_FIELDS,
            json!({"name": "p", "peek": true, "paths": [["x"]]}),
            b"[2]".to_vec(),
        ),
        (
            OP_SNAP_PUSH_MANY,
            json!({"name": "p", "peek": true}),
            encode_list(&[&br#"{"x":3}"#[..], &br#"{"x":4,"d":[]}"#[..]]),
        ),
    ];
    for (op, params, body) in pushes {
        let answer = sut.call(op, params, &body).unwrap();
        assert_eq!(
            (answer[0], answer[1]),
            (1, 2),
            "op {op:#06x}: a patch follows"
        );
        assert_eq!(
            answer,
            sut.call(OP_SNAP_MOVE, peek_undo.clone(), b"").unwrap()
        );
    }
    assert_eq!(sut.stats("p")["cursor"], json!(4), "a peek moves nothing");
    // Without `peek` (or with false) the position, as before; an opaque snapshot on either
    // side answers the position too: the push happened, it is the patch that cannot be made.
    let pos = sut.json(
        OP_SNAP_PUSH,
        json!({"name": "p", "peek": false}),
        br#"{"x":5}"#,
    );
    assert_eq!(pos, json!({"index": 5, "len": 6}));
    let pos = sut.json(
        OP_SNAP_PUSH,
        json!({"name": "p", "peek": true, "encoding": "bytes"}),
        b"opaque",
    );
    assert_eq!(pos, json!({"index": 6, "len": 7}));
    // So does a patch back larger than PUSH_PEEK_MAX_BYTES (most of a big snapshot replaced).
    let big = |c: char| json!({"text": c.to_string().repeat(20 * 1024)}).to_string();
    sut.call(OP_SNAP_PUSH, json!({"name": "big"}), big('a').as_bytes())
        .unwrap();
    let pos = sut.json(
        OP_SNAP_PUSH,
        json!({"name": "big", "peek": true}),
        big('b').as_bytes(),
    );
    assert_eq!(pos, json!({"index": 1, "len": 2}));
}

#[test]
fn move_answers_the_patch_and_push_fields_builds_on_the_current_snapshot() {
    let mut sut = Sut::new();
    sut.call(
        OP_SNAP_PUSH,
        json!({"name": "m"}),
        br#"{"d":[1,2],"t":"a","x":0}"#,
    )
    .unwrap();
    let pos = sut.json(
        OP_SNAP_PUSH_FIELDS,
        json!({"name": "m", "paths": [["d", 2], ["n"]], "remove": [["x"]]}),
        br#"[3,true]"#,
    );
    assert_eq!(pos, json!({"index": 1, "len": 2}));
    let (_, _, _, snap) = sut.cursor(OP_SNAP_CURRENT, json!({"name": "m"}));
    assert_eq!(snap, r#"{"d":[1,2,3],"t":"a","n":true}"#);
    let out = sut
        .call(OP_SNAP_MOVE, json!({"name": "m", "to": "undo"}), b"")
        .unwrap();
    assert_eq!(&out[..2], &[1, 2], "moved; values are marshal");
    let items = decode_list(&out[12..]).unwrap();
    assert_eq!(
        items[0],
        br#"[["remove","/n",["n"]],["remove","/d/2",["d",2]],["add","/x",["x"]]]"#
    );
    assert_eq!(items[1..], [b"i\x00\x00\x00\x00"]);
    // A peek answers the patch the move would, and moves nothing; `patch: false` moves and
    // answers the header alone.
    let peek = sut
        .call(
            OP_SNAP_MOVE,
            json!({"name": "m", "to": "redo", "peek": true}),
            b"",
        )
        .unwrap();
    assert_eq!((peek[0], sut.stats("m")["cursor"].clone()), (1, json!(0)));
    let moved = sut
        .call(
            OP_SNAP_MOVE,
            json!({"name": "m", "to": "redo", "patch": false}),
            b"",
        )
        .unwrap();
    assert_eq!((moved[0], moved[1], moved.len()), (1, 0, 12));
    assert_eq!(sut.stats("m")["cursor"], json!(1));
    let back = sut
        .call(OP_SNAP_MOVE, json!({"name": "m", "to": 0}), b"")
        .unwrap();
    assert_eq!(decode_list(&back[12..]).unwrap()[0], items[0]);
    // Not moving is status 0 with nothing after the header; a bad `to` is refused.
    let out = sut
        .call(OP_SNAP_MOVE, json!({"name": "m", "to": "undo"}), b"")
        .unwrap();
    assert_eq!((out[0], out.len()), (0, 12));
    for to in [json!("sideways"), json!(-1), json!(1.5)] {
        let e = sut
            .call(OP_SNAP_MOVE, json!({"name": "m", "to": to}), b"")
            .unwrap_err();
        assert_eq!(e.code, ErrorCode::BadParams);
    }
    let e = sut
        .call(OP_SNAP_MOVE, json!({"name": "m", "to": 7}), b"")
        .unwrap_err();
    assert_eq!(e.code, ErrorCode::OutOfRange);
    assert_eq!(sut.stats("m")["cursor"], json!(0));
    for (params, body) in [
        (json!({"name": "m", "paths": [["d"]]}), &b"{}"[..]),
        (json!({"name": "m", "paths": [["d", 9]]}), b"[1]"),
        (json!({"name": "m", "paths": [[]]}), b"[1]"),
    ] {
        let e = sut.call(OP_SNAP_PUSH_FIELDS, params, body).unwrap_err();
        assert_eq!(e.code, ErrorCode::BadPayload);
    }
    let e = sut
        .call(
            OP_SNAP_PUSH_FIELDS,
            json!({"name": "m", "paths": [[1.5]]}),
            b"[1]",
        )
        .unwrap_err();
    assert_eq!(e.code, ErrorCode::BadParams);
}
