//! The log ops (layout.md §9.4): `OP_LOG_APPEND`, `OP_LOG_READ`, `OP_LOG_TAIL`, `OP_LOG_LEN`.
//! Saving and loading a log is in [`super::file_ops`].
#![forbid(unsafe_code)]

use serde::Deserialize;
use serde_json::json;

use super::params::check_name;
use crate::error::{ErrorCode, OpError};
use crate::ops::op::State;
use crate::ops::request::{decode_list, encode_list, Request};
use crate::store::log::Log;

#[derive(Deserialize)]
struct LogParams {
    name: String,
    #[serde(default)]
    start: u64,
    #[serde(default)]
    count: Option<u64>,
    #[serde(default)]
    n: Option<u64>,
}

fn len_json(l: &Log) -> Result<Vec<u8>, OpError> {
    Ok(json!({"len": l.len(), "bytes": l.record_bytes()})
        .to_string()
        .into_bytes())
}

/// `OP_LOG_APPEND`: appends every record of a list body (creating the log); all or nothing.
pub fn op_log_append(state: &mut State, req: &Request<'_>) -> Result<Vec<u8>, OpError> {
    let p: LogParams = req.params()?;
    check_name(&p.name)?;
    let records = decode_list(req.body)?;
    let log = state.snapshots.logs.entry(p.name).or_default();
    for r in &records {
        log.append(r)?;
    }
    len_json(log)
}

/// `OP_LOG_READ`: `count` records from `start`, clipped at the end.
pub fn op_log_read(state: &mut State, req: &Request<'_>) -> Result<Vec<u8>, OpError> {
    let p: LogParams = req.params()?;
    let log = state.snapshots.log(&p.name)?;
    let start = usize::try_from(p.start)
        .ok()
        .filter(|&s| s <= log.len())
        .ok_or_else(|| {
            OpError::new(
                ErrorCode::OutOfRange,
                format!(
                    "start {} is past the end of a log of {} records",
                    p.start,
                    log.len()
                ),
            )
        })?;
    let count = p
        .count
        .ok_or_else(|| OpError::bad_params("params: missing field `count`"))?;
    let count = usize::try_from(count).unwrap_or(usize::MAX);
    Ok(encode_list(&log.range(start, count)))
}

/// `OP_LOG_TAIL`: the last `n` records.
pub fn op_log_tail(state: &mut State, req: &Request<'_>) -> Result<Vec<u8>, OpError> {
    let p: LogParams = req.params()?;
    let log = state.snapshots.log(&p.name)?;
    let n =
        p.n.ok_or_else(|| OpError::bad_params("params: missing field `n`"))?;
    let n = usize::try_from(n).unwrap_or(usize::MAX).min(log.len());
    Ok(encode_list(&log.range(log.len() - n, n)))
}

/// `OP_LOG_LEN`: records and record bytes.
pub fn op_log_len(state: &mut State, req: &Request<'_>) -> Result<Vec<u8>, OpError> {
    let p: LogParams = req.params()?;
    len_json(state.snapshots.log(&p.name)?)
}
