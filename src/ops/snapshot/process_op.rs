//! `OP_SNAP_PROCESS`: digest, size and changes of many snapshots in one request, stored
//! nowhere (layout.md §9.3); the work is [`crate::store::batch::describe`]'s.
#![forbid(unsafe_code)]

use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::answer::digest_hex;
use crate::error::OpError;
use crate::ops::op::State;
use crate::ops::request::{decode_list, Request};
use crate::store::batch::{self, Change, Description};
use crate::store::codec::Encoding;

#[derive(Deserialize)]
struct ProcessParams {
    #[serde(default)]
    encoding: Encoding,
}

/// Describes every snapshot of a list body; see layout.md §9.3 for the result shape.
pub fn op_snap_process(_: &mut State, req: &Request<'_>) -> Result<Vec<u8>, OpError> {
    let p: ProcessParams = req.params()?;
    let items = decode_list(req.body)?;
    let out: Vec<Value> = batch::describe(p.encoding, &items)?
        .into_iter()
        .enumerate()
        .map(|(i, d)| description_json(i, d))
        .collect();
    serde_json::to_vec(&out).map_err(|e| OpError::bad_payload(e.to_string()))
}

/// One record of the answer: `index`, `digest`, `size`, `changed` and, for structured
/// snapshots, `entries` (changed list entries by key).
fn description_json(index: usize, d: Description) -> Value {
    let mut rec = Map::new();
    rec.insert("index".into(), json!(index));
    rec.insert("digest".into(), json!(digest_hex(d.digest)));
    rec.insert("size".into(), json!(d.size));
    match d.change {
        Change::Blob(changed) => {
            rec.insert("changed".into(), json!(changed));
        }
        Change::Fields { changed, lists } => {
            rec.insert("changed".into(), json!(changed));
            let entries: Map<String, Value> = lists
                .into_iter()
                .map(|(key, l)| {
                    let v =
                        json!({"changed": l.changed, "old_len": l.old_len, "new_len": l.new_len});
                    (key, v)
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

    #[test]
    fn reports_changed_fields_and_list_entries() {
        let docs: [&[u8]; 3] = [
            br#"{"a":1,"rows":[{"x":1},{"x":2}],"z":0}"#,
            br#"{"a":1,"rows":[{"x":1},{"x":3},{"x":4}],"z":0}"#,
            br#"{"a":2,"rows":[{"x":1},{"x":3},{"x":4}]}"#,
        ];
        let body = encode_list(&docs);
        let req = Request {
            params: b"",
            body: &body,
        };
        let out = op_snap_process(&mut State::default(), &req).unwrap();
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
}
