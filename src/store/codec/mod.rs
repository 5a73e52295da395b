//! The snapshot encodings a client names in params: `json`, `marshal`, `bytes` (layout.md §9.3
//! "Encodings"), and the dispatch from an encoding to its decoder and encoder.
#![forbid(unsafe_code)]

use serde::{Deserialize, Serialize};

use crate::store::error::StoreError;
use crate::store::node::{Node, NodeId};
use crate::store::node_store::NodeStore;

pub mod json;
pub mod marshal;
#[cfg(test)]
pub mod random_snapshots;
pub mod recall;
pub mod sink;

/// How a snapshot travels on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Encoding {
    /// UTF-8 JSON (RFC 8259 plus `NaN`/`Infinity`); must be an object for histories.
    #[default]
    Json,
    /// CPython `marshal` format 4 (`marshal.dumps(obj, 4)`); must be a dict for histories.
    Marshal,
    /// Opaque bytes: stored as one blob (still content-addressed), no diff.
    Bytes,
}

impl Encoding {
    /// The wire byte of the cursor-response header (layout.md §9.3).
    pub fn code(self) -> u8 {
        match self {
            Encoding::Json => 1,
            Encoding::Marshal => 2,
            Encoding::Bytes => 3,
        }
    }

    /// Decodes a wire byte written by [`Encoding::code`].
    pub fn from_code(c: u8) -> Option<Encoding> {
        match c {
            1 => Some(Encoding::Json),
            2 => Some(Encoding::Marshal),
            3 => Some(Encoding::Bytes),
            _ => None,
        }
    }

    /// The params spelling.
    pub fn name(self) -> &'static str {
        match self {
            Encoding::Json => "json",
            Encoding::Marshal => "marshal",
            Encoding::Bytes => "bytes",
        }
    }
}

/// Decodes `bytes` in `enc` into `store`; structured encodings must hold an object at the top
/// when `want_object` is set. Returns the root holding one count.
///
/// # Errors
/// The decoder's error, or [`StoreError::Malformed`] "snapshot must be an object, not …".
pub fn decode(
    store: &mut NodeStore,
    enc: Encoding,
    bytes: &[u8],
    want_object: bool,
) -> Result<NodeId, StoreError> {
    let id = match enc {
        Encoding::Json => json::decode(store, bytes)?,
        Encoding::Marshal => marshal::decode(store, bytes)?,
        Encoding::Bytes => return Ok(store.intern(Node::Bytes(bytes.into()))),
    };
    if want_object {
        return object_only(store, id);
    }
    Ok(id)
}

/// `id` (whose count the caller hands over) when it is an object; else it is released.
///
/// # Errors
/// [`StoreError::Malformed`] "snapshot must be an object (a dict), not …".
pub fn object_only(store: &mut NodeStore, id: NodeId) -> Result<NodeId, StoreError> {
    if matches!(store.node(id), Node::Object(_)) {
        return Ok(id);
    }
    let kind = store.node(id).type_name();
    store.decref(id);
    Err(StoreError::malformed(format!(
        "snapshot must be an object (a dict), not {kind}"
    )))
}

/// Encodes the value `id`, pushed as `pushed`, in `want`.
///
/// # Errors
/// [`StoreError::OpaqueAsStructured`] when an opaque snapshot is asked for as json/marshal,
/// [`StoreError::StructuredAsBytes`] when a structured one is asked for as bytes; the encoder's error otherwise.
pub fn encode(
    store: &NodeStore,
    id: NodeId,
    pushed: Encoding,
    want: Encoding,
) -> Result<Vec<u8>, StoreError> {
    let mut out = Vec::new();
    encode_into(store, id, pushed, want, &mut out)?;
    Ok(out)
}

/// Most bytes [`encode_into`] reserves up front; a larger value grows the buffer as it goes.
const MAX_RESERVE: u64 = 16 << 20;

/// [`encode`], appended to `out` (e.g. after a response header, so the snapshot is written
/// where it is sent from, not copied there). Reserves the value's expanded size first (an
/// upper bound of its marshal size, about its JSON size), so a snapshot is written without
/// the buffer growing and copying itself along the way.
///
/// # Errors
/// As [`encode`]; `out` may then hold part of the value.
pub fn encode_into(
    store: &NodeStore,
    id: NodeId,
    pushed: Encoding,
    want: Encoding,
    out: &mut Vec<u8>,
) -> Result<(), StoreError> {
    let reserve = store.shape(id).expanded_bytes.min(MAX_RESERVE);
    out.reserve(usize::try_from(reserve).unwrap_or(0));
    match (pushed, want) {
        (Encoding::Bytes, Encoding::Bytes) => match store.node(id) {
            Node::Bytes(b) => {
                out.extend_from_slice(b);
                Ok(())
            }
            _ => Err(StoreError::Unencodable(
                "internal: opaque snapshot is not a blob".into(),
            )),
        },
        (Encoding::Bytes, _) => Err(StoreError::OpaqueAsStructured(want.name())),
        (_, Encoding::Bytes) => Err(StoreError::StructuredAsBytes),
        (_, Encoding::Json) => json::encode_into(store, id, out),
        (_, Encoding::Marshal) => marshal::encode_into(store, id, out),
    }
}
