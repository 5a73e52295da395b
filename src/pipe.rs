//! Pipe mode (layout.md §17): one request → one answer, with no region and no ring.
//!
//! `chunkring call OP [--params JSON] [FILE…]` builds the same request payload a client puts
//! into the request ring (`params_len | params | body`, layout.md §9.1) and hands it to the
//! same [`Dispatcher`] the worker uses, so every op, pipeline and control op answers exactly
//! what it answers over shared memory. Only the transport differs: the answer goes to stdout,
//! an error to stderr with its wire code as the exit status ([`exit_status`]).
#![forbid(unsafe_code)]

use crate::error::{ErrorCode, OpError};
use crate::layout::DEFAULT_MAX_MESSAGE_BYTES;
use crate::ops::{encode_request, Registry};
use crate::worker::dispatch::{Dispatcher, Reply};

/// Every op a pipe-mode call can name: `(name, code)`, by code — the ops the worker's
/// dispatcher answers, as its `info` lists them.
pub use crate::worker::dispatch::op_names;

/// Highest exit status that carries a wire error code unchanged; a larger code exits with
/// this value (126 and up mean "cannot execute", "not found" and signals to shells).
pub const MAX_CODE_EXIT_STATUS: u8 = 124;

/// Resolves an op given as a registry name (`md.render`), a control op name (`pipeline`),
/// or a number (`0x0101`, `257`). A number is taken as is, known or not: the dispatcher
/// answers an unknown one with `UNKNOWN_OP`, as the worker does.
///
/// # Errors
/// `UnknownOp` for a name nobody registered, listing the names that exist.
pub fn resolve_op(registry: &Registry, op: &str) -> Result<u16, OpError> {
    let number = match op.strip_prefix("0x").or_else(|| op.strip_prefix("0X")) {
        Some(hex) => u16::from_str_radix(hex, 16).ok(),
        None => op.parse::<u16>().ok(),
    };
    if let Some(code) = number {
        return Ok(code);
    }
    let names = op_names(registry);
    names
        .iter()
        .find(|(name, _)| *name == op)
        .map(|&(_, code)| code)
        .ok_or_else(|| {
            let known: Vec<&str> = names.iter().map(|(name, _)| *name).collect();
            OpError::new(
                ErrorCode::UnknownOp,
                format!("unknown op {op:?}; known ops: {}", known.join(", ")),
            )
        })
}

/// Runs one request through a fresh dispatcher over `registry`: what a worker answers to a
/// request with this op, params and body. State (histories, logs) lives for this one call.
///
/// # Errors
/// The op's [`OpError`]; `MessageTooLarge` when the payload exceeds the worker's default
/// `MAX_MESSAGE_BYTES`, as a worker would refuse it.
pub fn call(registry: Registry, op: u16, params: &[u8], body: &[u8]) -> Result<Vec<u8>, OpError> {
    let payload = encode_request(params, body);
    if payload.len() as u64 > DEFAULT_MAX_MESSAGE_BYTES {
        return Err(OpError::new(
            ErrorCode::MessageTooLarge,
            format!(
                "request of {} bytes exceeds the {DEFAULT_MAX_MESSAGE_BYTES}-byte message limit",
                payload.len()
            ),
        ));
    }
    // No ring, so no chunk size: `info` reports chunk_bytes 0 in pipe mode.
    let mut dispatcher = Dispatcher::new(registry, 0, DEFAULT_MAX_MESSAGE_BYTES);
    match dispatcher.dispatch(op, &payload)? {
        Reply::Data(answer) | Reply::Shutdown(answer) => Ok(answer),
        Reply::Body(part) => Ok(payload[part].to_vec()),
    }
}

/// The exit status of a failed call: the wire error code itself (layout.md §8) up to
/// [`MAX_CODE_EXIT_STATUS`], which also stands for any larger code.
pub fn exit_status(code: ErrorCode) -> u8 {
    u8::try_from(code.to_u16())
        .unwrap_or(MAX_CODE_EXIT_STATUS)
        .min(MAX_CODE_EXIT_STATUS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::{OP_ECHO, OP_INFO, OP_MD_RENDER, OP_PIPELINE, OP_SHUTDOWN, OP_SNAP_PUSH};
    use crate::ops::encode_list;

    #[test]
    fn ops_resolve_by_name_hex_and_decimal() {
        let r = Registry::with_all_ops();
        assert_eq!(resolve_op(&r, "md.render"), Ok(OP_MD_RENDER));
        assert_eq!(resolve_op(&r, "0x0101"), Ok(OP_MD_RENDER));
        assert_eq!(resolve_op(&r, "0X101"), Ok(OP_MD_RENDER));
        assert_eq!(resolve_op(&r, "257"), Ok(OP_MD_RENDER));
        assert_eq!(resolve_op(&r, "echo"), Ok(OP_ECHO));
        assert_eq!(resolve_op(&r, "snap.push"), Ok(OP_SNAP_PUSH));
        assert_eq!(resolve_op(&r, "pipeline"), Ok(OP_PIPELINE));
        // A number nobody registered still resolves: the dispatcher answers UNKNOWN_OP.
        assert_eq!(resolve_op(&r, "0x7777"), Ok(0x7777));
    }

    #[test]
    fn an_unknown_name_is_unknown_op_and_lists_the_names() {
        let e = resolve_op(&Registry::with_all_ops(), "md.rendr").unwrap_err();
        assert_eq!(e.code, ErrorCode::UnknownOp);
        assert!(e.message.contains("\"md.rendr\""), "{}", e.message);
        assert!(
            e.message.contains("md.render") && e.message.contains("pipeline"),
            "{}",
            e.message
        );
        assert!(resolve_op(&Registry::with_all_ops(), "0x1_0000").is_err());
    }

    #[test]
    fn every_registered_op_and_control_op_has_a_name() {
        let names = op_names(&Registry::with_all_ops());
        for (name, code) in &names {
            assert_eq!(resolve_op(&Registry::with_all_ops(), name), Ok(*code));
        }
        assert!(names.windows(2).all(|w| w[0].1 < w[1].1), "{names:?}");
    }

    #[test]
    fn a_call_answers_what_the_dispatcher_answers() {
        let r = Registry::with_all_ops;
        assert_eq!(call(r(), OP_ECHO, b"", b"hi"), Ok(b"hi".to_vec()));
        let html = call(r(), OP_MD_RENDER, b"", &encode_list(&[b"# T"])).unwrap();
        assert_eq!(html, encode_list(&[b"<h1>T</h1>\n"]));
        let e = call(r(), 0x7777, b"", b"").unwrap_err();
        assert_eq!(e.code, ErrorCode::UnknownOp);
        let e = call(r(), OP_MD_RENDER, b"{", b"").unwrap_err();
        assert_eq!(e.code, ErrorCode::BadParams);
        assert_eq!(call(r(), OP_SHUTDOWN, b"", b""), Ok(Vec::new()));
        let info: serde_json::Value =
            serde_json::from_slice(&call(r(), OP_INFO, b"", b"").unwrap()).unwrap();
        assert_eq!(info["chunk_bytes"], 0);
    }

    #[test]
    fn a_pipeline_keeps_state_between_its_stages() {
        let params = format!(
            r#"{{"stages":[{{"op":{OP_SNAP_PUSH},"params":{{"name":"h"}}}},{{"op":{},"params":{{"name":"h"}}}}]}}"#,
            crate::layout::OP_SNAP_CURRENT
        );
        let out = call(
            Registry::with_all_ops(),
            OP_PIPELINE,
            params.as_bytes(),
            br#"{"a":1}"#,
        )
        .unwrap();
        // A cursor response (layout.md §9.3): a fixed header, then the snapshot as pushed.
        assert!(out.ends_with(br#"{"a":1}"#), "{out:?}");
    }

    #[test]
    fn exit_statuses_are_the_wire_codes_up_to_124() {
        assert_eq!(exit_status(ErrorCode::UnknownOp), 5);
        assert_eq!(exit_status(ErrorCode::BadParams), 6);
        assert_eq!(exit_status(ErrorCode::CorruptData), 15);
        for code in ErrorCode::ALL {
            assert_eq!(u16::from(exit_status(code)), code.to_u16());
        }
    }
}
