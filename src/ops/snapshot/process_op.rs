//! `OP_SNAP_PROCESS`: digest, size and changes of many snapshots in one request, stored
//! nowhere (layout.md §9.3); the work is [`crate::store::batch::describe`]'s.
#![forbid(unsafe_code)]

use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::answer::digest_hex;
use super::process_marshal::Records;
use crate::error::OpError;
use crate::ops::op::State;
use crate::ops::request::{decode_list, Request};
use crate::store::batch::{self, Change, Description};
use crate::store::codec::Encoding;
use crate::store::StoreError;

/// The largest `base`: indices stay exact integers in any JSON reader (2^53).
const MAX_BASE: u64 = 1 << 53;

#[derive(Deserialize)]
struct ProcessParams {
    #[serde(default)]
    encoding: Encoding,
    #[serde(default)]
    answer: Answer,
    /// The index of the first record (of item 1 with `carry`).
    #[serde(default)]
    base: u64,
    /// Item 0 is the previous request's last snapshot: compared against, not reported.
    #[serde(default)]
    carry: bool,
}

/// How the records are written.
#[derive(Deserialize, Default, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum Answer {
    #[default]
    Json,
    Marshal,
}

/// Describes every snapshot of a list body; see layout.md §9.3 for the result shape.
pub fn op_snap_process(_: &mut State, req: &Request<'_>) -> Result<Vec<u8>, OpError> {
    let p: ProcessParams = req.params()?;
    let items = decode_list(req.body)?;
    let skip = usize::from(p.carry);
    if p.base > MAX_BASE || (p.carry && (p.base == 0 || items.is_empty())) {
        return Err(OpError::bad_params(
            "base must be at most 2^53, and at least 1 with carry (which needs an item 0)",
        ));
    }
    // Snapshot `i` of the body is snapshot `base + i - skip` of the client's batch.
    let descriptions = batch::describe(p.encoding, &items).map_err(|e| match e {
        StoreError::InSnapshot { index, error } => StoreError::InSnapshot {
            index: (p.base + index as u64 - skip as u64) as usize,
            error,
        },
        e => e,
    })?;
    let records = descriptions.iter().skip(skip);
    if p.answer == Answer::Marshal {
        return Ok(Records::encode(p.base, records)?);
    }
    let out: Vec<Value> = (p.base..)
        .zip(records)
        .map(|(i, d)| description_json(i, d))
        .collect();
    serde_json::to_vec(&out).map_err(|e| OpError::bad_payload(e.to_string()))
}

/// One record of the answer: `index`, `digest`, `size`, `changed` and, for structured
/// snapshots, `entries` (changed list entries by key).
fn description_json(index: u64, d: &Description) -> Value {
    let mut rec = Map::new();
    rec.insert("index".into(), json!(index));
    rec.insert("digest".into(), json!(digest_hex(d.digest)));
    rec.insert("size".into(), json!(d.size));
    match &d.change {
        Change::Blob(changed) => {
            rec.insert("changed".into(), json!(changed));
        }
        Change::Fields { changed, lists } => {
            rec.insert("changed".into(), json!(changed));
            let entries: Map<String, Value> = lists
                .iter()
                .map(|(key, l)| {
                    let v =
                        json!({"changed": l.changed, "old_len": l.old_len, "new_len": l.new_len});
                    (key.clone(), v)
                })
                .collect();
            rec.insert("entries".into(), Value::Object(entries));
        }
    }
    Value::Object(rec)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::request::encode_list;

    /// Three JSON snapshots: a field and a list entry change, an entry is added, a key goes.
    const THREE_DOCS: [&[u8]; 3] = [
        br#"{"a":1,"rows":[{"x":1},{"x":2}],"z":0}"#,
        br#"{"a":1,"rows":[{"x":1},{"x":3},{"x":4}],"z":0}"#,
        br#"{"a":2,"rows":[{"x":1},{"x":3},{"x":4}]}"#,
    ];

    #[test]
    fn reports_changed_fields_and_list_entries() {
        let docs = THREE_DOCS;
        let out = run("", &docs).unwrap();
        let v: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v[0]["changed"], json!(["a", "rows", "z"]));
        assert_eq!(v[1]["changed"], json!(["rows"]));
        assert_eq!(
            v[1]["entries"]["rows"],
            json!({"changed": [1, 2], "old_len": 2, "new_len": 3})
        );
        assert_eq!(v[2]["changed"], json!(["a", "z"]));
        assert_eq!(v[1]["size"], json!(docs[1].len()));
        assert_ne!(v[0]["digest"], v[1]["digest"]);
    }

    fn run(params: &str, docs: &[&[u8]]) -> Result<Vec<u8>, OpError> {
        let body = encode_list(docs);
        let req = Request {
            params: params.as_bytes(),
            body: &body,
        };
        op_snap_process(&mut State::default(), &req)
    }

    #[test]
    fn a_carried_request_answers_as_its_part_of_the_whole_batch() {
        let docs: [&[u8]; 4] = [
            br#"{"a":1,"rows":[1]}"#,
            br#"{"a":2,"rows":[1]}"#,
            br#"{"a":2,"rows":[1,2]}"#,
            br#"{"a":2,"rows":[3,2]}"#,
        ];
        let whole: Value = serde_json::from_slice(&run("", &docs).unwrap()).unwrap();
        let part = run(r#"{"base":2,"carry":true}"#, &docs[1..]).unwrap();
        let part: Value = serde_json::from_slice(&part).unwrap();
        assert_eq!(part.as_array().unwrap(), &whole.as_array().unwrap()[2..]);
        // An error names the snapshot by its index in the whole batch.
        let bad: [&[u8]; 3] = [docs[1], docs[2], b"[1]"];
        let err = run(r#"{"base":2,"carry":true}"#, &bad).unwrap_err();
        assert!(err.message.starts_with("snapshot 3: "), "{}", err.message);
        for params in [
            r#"{"carry":true}"#,
            r#"{"base":9007199254740993}"#,
            r#"{"answer":"xml"}"#,
        ] {
            let err = run(params, &docs).unwrap_err();
            assert_eq!(err.code, crate::error::ErrorCode::BadParams, "{params}");
        }
        let err = run(r#"{"base":1,"carry":true}"#, &[]).unwrap_err();
        assert_eq!(err.code, crate::error::ErrorCode::BadParams);
    }

    #[test]
    fn the_marshal_answer_holds_the_json_records() {
        let docs = THREE_DOCS;
        let m = run(r#"{"answer":"marshal","base":7}"#, &docs).unwrap();
        // Read back through the worker's own marshal reader into a node store, as JSON.
        let mut store = crate::store::node_store::NodeStore::new();
        let root = crate::store::codec::marshal::decode(&mut store, &m).unwrap();
        let back: Value =
            serde_json::from_slice(&crate::store::codec::json::encode(&store, root).unwrap())
                .unwrap();
        let json: Value = serde_json::from_slice(&run(r#"{"base":7}"#, &docs).unwrap()).unwrap();
        assert_eq!(back, json);
        assert_eq!(back[0]["index"], json!(7));
    }
}
