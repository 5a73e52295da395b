//! What the snapshot benches share: running one op through the registry, and the marshal
//! bytes of a document from the worker's own encoder.
use chunkring::layout::{OP_SNAP_CURRENT, OP_SNAP_DROP, OP_SNAP_PUSH};
use chunkring::ops::{Registry, Request, State};

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
