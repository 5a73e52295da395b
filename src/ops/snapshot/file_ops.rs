//! Save and load of histories and logs (layout.md §9.3 "History files", §9.4 "Log files"):
//! `OP_SNAP_SAVE`, `OP_SNAP_LOAD`, `OP_LOG_SAVE`, `OP_LOG_LOAD`. The file format and its
//! crash safety are [`crate::store::file`]'s; these handlers check the path and the name.
#![forbid(unsafe_code)]

use std::path::Path;

use serde::Deserialize;
use serde_json::json;

use super::params::check_name;
use crate::error::{ErrorCode, OpError};
use crate::ops::op::State;
use crate::ops::request::Request;
use crate::store::file;

#[derive(Deserialize)]
struct SaveParams {
    name: String,
    path: String,
}

#[derive(Deserialize)]
struct LoadParams {
    path: String,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    replace: bool,
}

fn check_path(path: &str) -> Result<&Path, OpError> {
    let p = Path::new(path);
    if path.contains('\0') || !p.is_absolute() {
        return Err(OpError::new(
            ErrorCode::PathRefused,
            format!("path {path:?} must be absolute and contain no NUL byte"),
        ));
    }
    Ok(p)
}

/// The name a load stores under: `name` from the params, else the saved one; refused when
/// `taken` and the params do not say `replace`.
fn name_to_load(
    p: LoadParams,
    saved: String,
    kind: &str,
    taken: impl FnOnce(&str) -> bool,
) -> Result<String, OpError> {
    let name = p.name.unwrap_or(saved);
    check_name(&name)?;
    if !p.replace && taken(&name) {
        return Err(OpError::bad_params(format!(
            "{kind} {name:?} already exists (pass replace: true to overwrite it)"
        )));
    }
    Ok(name)
}

/// `OP_SNAP_SAVE`.
pub fn op_snap_save(state: &mut State, req: &Request<'_>) -> Result<Vec<u8>, OpError> {
    let p: SaveParams = req.params()?;
    let path = check_path(&p.path)?;
    let h = state.snapshots.history(&p.name)?;
    let bytes = file::history::save(path, &p.name, h)?;
    Ok(
        json!({"path": p.path, "bytes": bytes, "snapshots": h.len()})
            .to_string()
            .into_bytes(),
    )
}

/// `OP_SNAP_LOAD`.
pub fn op_snap_load(state: &mut State, req: &Request<'_>) -> Result<Vec<u8>, OpError> {
    let p: LoadParams = req.params()?;
    let path = check_path(&p.path)?;
    let (saved, h) = file::history::load(path)?;
    let histories = &mut state.snapshots.histories;
    let name = name_to_load(p, saved, "history", |n| histories.contains_key(n))?;
    let pos = h.position();
    let out = json!({"name": name, "capacity": h.capacity(), "len": pos.len, "cursor": pos.cursor});
    histories.insert(name, h);
    Ok(out.to_string().into_bytes())
}

/// `OP_LOG_SAVE`.
pub fn op_log_save(state: &mut State, req: &Request<'_>) -> Result<Vec<u8>, OpError> {
    let p: SaveParams = req.params()?;
    let path = check_path(&p.path)?;
    let log = state.snapshots.log(&p.name)?;
    let bytes = file::log::save(path, &p.name, log)?;
    Ok(json!({"path": p.path, "bytes": bytes, "len": log.len()})
        .to_string()
        .into_bytes())
}

/// `OP_LOG_LOAD`.
pub fn op_log_load(state: &mut State, req: &Request<'_>) -> Result<Vec<u8>, OpError> {
    let p: LoadParams = req.params()?;
    let path = check_path(&p.path)?;
    let (saved, log) = file::log::load(path)?;
    let logs = &mut state.snapshots.logs;
    let name = name_to_load(p, saved, "log", |n| logs.contains_key(n))?;
    let out = json!({"name": name, "len": log.len()});
    logs.insert(name, log);
    Ok(out.to_string().into_bytes())
}
