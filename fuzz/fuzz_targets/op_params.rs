//! Every op's params and body as the registry dispatches them (layout.md §9), driven by one
//! op-code byte and a request payload, over a state that persists across inputs (so pushes,
//! undos and diffs meet earlier histories). Ops that touch the file system (save/load) are
//! left out: a fuzzer must not write files at paths it invents.
#![no_main]

use std::sync::Mutex;

use chunkring::layout::*;
use chunkring::{Registry, Request, State};
use libfuzzer_sys::fuzz_target;

/// The registry, the ops it may run (by code, file-system ops left out) and the state.
type Harness = (Registry, Vec<u16>, State);

static STATE: Mutex<Option<Harness>> = Mutex::new(None);

/// Ops that read or write files at paths from their params.
const FILE_OPS: &[u16] = &[OP_SNAP_SAVE, OP_SNAP_LOAD, OP_LOG_SAVE, OP_LOG_LOAD];

fn harness() -> Harness {
    let reg = Registry::with_all_ops();
    let mut ops: Vec<u16> = reg
        .entries()
        .map(|e| e.code)
        .filter(|c| !FILE_OPS.contains(c))
        .collect();
    ops.sort_unstable();
    (reg, ops, State::default())
}

fuzz_target!(|data: &[u8]| {
    let Some((&pick, payload)) = data.split_first() else {
        return;
    };
    let Ok(req) = Request::parse(payload) else {
        return;
    };
    let mut guard = STATE.lock().unwrap_or_else(|e| e.into_inner());
    let (reg, ops, state) = guard.get_or_insert_with(harness);
    let op = ops[usize::from(pick) % ops.len()];
    // aggregate with a root reads files: keep the fuzzer off the file system.
    if op == OP_MD_AGGREGATE && req.params.windows(6).any(|w| w == b"\"root\"") {
        return;
    }
    if let Some(entry) = reg.get(op) {
        let _ = (entry.handler)(state, &req);
    }
});
