//! Op dispatch: registry lookup, the control ops, pipelines, and containment of op failures
//! (layout.md §7, §9.1).
#![forbid(unsafe_code)]

use std::ops::Range;
use std::panic::{catch_unwind, AssertUnwindSafe};

use serde::Deserialize;

use crate::error::{ErrorCode, OpError};
use crate::layout::{LAYOUT_VERSION, OP_INFO, OP_PIPELINE, OP_SHUTDOWN};
use crate::ops::{OpEntry, Registry, Request, State};

/// Most stages one pipeline may chain.
pub const MAX_PIPELINE_STAGES: usize = 64;

/// What the worker does after answering.
#[derive(Debug, PartialEq, Eq)]
pub enum Reply {
    /// Send this payload and keep serving.
    Data(Vec<u8>),
    /// Send this payload, then stop.
    Shutdown(Vec<u8>),
    /// Send `payload[range]` of the request payload given to `dispatch` (an op that answers
    /// its body unchanged, `OpEntry::answers_body`), from wherever the caller holds it.
    Body(Range<usize>),
}

/// The op registry plus the state ops keep between requests.
#[derive(Debug)]
pub struct Dispatcher {
    registry: Registry,
    state: State,
    /// Facts `OP_INFO` reports besides the op list.
    pub chunk_bytes: u32,
    /// Largest request the worker accepts.
    pub max_message_bytes: u64,
}

#[derive(Deserialize)]
struct Stage {
    op: u16,
    #[serde(default)]
    params: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct PipelineParams {
    stages: Vec<Stage>,
}

/// The control ops' names, which the dispatcher handles itself (layout.md §7).
const CONTROL_OPS: [(&str, u16); 3] = [
    ("pipeline", OP_PIPELINE),
    ("shutdown", OP_SHUTDOWN),
    ("info", OP_INFO),
];

/// Every op a dispatcher over `registry` answers, control ops included: `(name, code)`, by
/// code (what `info` lists and pipe mode resolves names against).
pub fn op_names(registry: &Registry) -> Vec<(&'static str, u16)> {
    let mut ops: Vec<(&'static str, u16)> = CONTROL_OPS.to_vec();
    ops.extend(registry.entries().map(|e| (e.name, e.code)));
    ops.sort_by_key(|&(_, code)| code);
    ops
}

impl Dispatcher {
    /// A dispatcher over `registry` with fresh state.
    pub fn new(registry: Registry, chunk_bytes: u32, max_message_bytes: u64) -> Dispatcher {
        Dispatcher {
            registry,
            state: State::default(),
            chunk_bytes,
            max_message_bytes,
        }
    }

    /// Runs one request message.
    ///
    /// # Errors
    /// The op's [`OpError`], `UNKNOWN_OP`, or `INTERNAL` if the op panicked.
    pub fn dispatch(&mut self, op: u16, payload: &[u8]) -> Result<Reply, OpError> {
        match op {
            // Control ops take a request payload like every op (layout.md §9.1), with no
            // params: a malformed one is refused rather than silently accepted.
            OP_SHUTDOWN => {
                Request::parse(payload)?.check_params()?;
                Ok(Reply::Shutdown(Vec::new()))
            }
            OP_INFO => {
                Request::parse(payload)?.check_params()?;
                Ok(Reply::Data(self.info()))
            }
            OP_PIPELINE => self.pipeline(&Request::parse(payload)?).map(Reply::Data),
            _ => {
                let req = Request::parse(payload)?;
                let entry = self.entry(op)?;
                match entry.answers_body {
                    // The answer is the body: where it is, not a copy of it.
                    Some(check) => contained(entry.name, || check(&req))
                        .map(|()| Reply::Body(payload.len() - req.body.len()..payload.len())),
                    None => self.run(op, &req).map(Reply::Data),
                }
            }
        }
    }

    fn entry(&self, op: u16) -> Result<OpEntry, OpError> {
        self.registry
            .get(op)
            .copied()
            .ok_or_else(|| OpError::new(ErrorCode::UnknownOp, format!("unknown op {op:#06x}")))
    }

    fn run(&mut self, op: u16, req: &Request<'_>) -> Result<Vec<u8>, OpError> {
        let entry = self.entry(op)?;
        let state = &mut self.state;
        contained(entry.name, || (entry.handler)(state, req))
    }

    fn pipeline(&mut self, req: &Request<'_>) -> Result<Vec<u8>, OpError> {
        let params: PipelineParams = req.params()?;
        if params.stages.is_empty() || params.stages.len() > MAX_PIPELINE_STAGES {
            return Err(OpError::bad_params(format!(
                "a pipeline needs 1 to {MAX_PIPELINE_STAGES} stages, got {}",
                params.stages.len()
            )));
        }
        let mut body = req.body.to_vec();
        for (i, stage) in params.stages.iter().enumerate() {
            if matches!(stage.op, OP_PIPELINE | OP_SHUTDOWN | OP_INFO) {
                return Err(OpError::bad_params(format!(
                    "stage {i}: op {:#06x} cannot be a pipeline stage",
                    stage.op
                )));
            }
            let stage_params = match &stage.params {
                None | Some(serde_json::Value::Null) => Vec::new(),
                Some(v) => serde_json::to_vec(v)
                    .map_err(|e| OpError::bad_params(format!("stage {i}: {e}")))?,
            };
            let name = self.registry.get(stage.op).map_or("unknown", |e| e.name);
            body = self
                .run(
                    stage.op,
                    &Request {
                        params: &stage_params,
                        body: &body,
                    },
                )
                .map_err(|e| OpError::new(e.code, format!("stage {i} ({name}): {}", e.message)))?;
        }
        Ok(body)
    }

    fn info(&self) -> Vec<u8> {
        let ops: Vec<serde_json::Value> = op_names(&self.registry)
            .into_iter()
            .map(|(name, code)| serde_json::json!({"code": code, "name": name}))
            .collect();
        serde_json::to_vec(&serde_json::json!({
            "layout_version": LAYOUT_VERSION,
            "worker_version": env!("CARGO_PKG_VERSION"),
            "pid": std::process::id(),
            "chunk_bytes": self.chunk_bytes,
            "max_message_bytes": self.max_message_bytes,
            "ops": ops,
        }))
        .unwrap_or_default()
    }
}

/// Runs `f`, turning a panic into an `INTERNAL` error naming op `name`.
fn contained<T>(name: &str, f: impl FnOnce() -> Result<T, OpError>) -> Result<T, OpError> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(result) => result,
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".to_owned());
            Err(OpError::new(
                ErrorCode::Internal,
                format!("op {name} failed unexpectedly: {what}"),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::OP_ECHO;
    use crate::ops::encode_request;

    fn dispatcher() -> Dispatcher {
        let mut r = Registry::with_all_ops();
        r.add(0x7F01, "test.upper", |_, req| {
            Ok(req.body.to_ascii_uppercase())
        });
        r.add(0x7F02, "test.panic", |_, _| panic!("boom"));
        Dispatcher::new(r, 64, 1 << 20)
    }

    #[test]
    fn echo_and_unknown_ops() {
        let mut d = dispatcher();
        // Echo answers where its body is in the request, not with a copy of it.
        let req = encode_request(b"{\"x\":1}", b"hi");
        assert_eq!(d.dispatch(OP_ECHO, &req), Ok(Reply::Body(11..13)));
        assert_eq!(&req[11..13], b"hi");
        assert_eq!(
            d.dispatch(OP_ECHO, &encode_request(b"", b"")),
            Ok(Reply::Body(4..4))
        );
        let e = d.dispatch(0x7777, &encode_request(b"", b"")).unwrap_err();
        assert_eq!(
            (e.code, e.message.as_str()),
            (ErrorCode::UnknownOp, "unknown op 0x7777")
        );
    }

    #[test]
    fn an_op_registered_over_echo_answers_with_its_own_output() {
        let mut r = Registry::with_all_ops();
        r.add(OP_ECHO, "test.echo-twice", |_, req| Ok(req.body.repeat(2)));
        let mut d = Dispatcher::new(r, 64, 1 << 20);
        assert_eq!(
            d.dispatch(OP_ECHO, &encode_request(b"", b"ab")),
            Ok(Reply::Data(b"abab".to_vec()))
        );
    }

    #[test]
    fn pipelines_feed_each_output_to_the_next_stage() {
        let mut d = dispatcher();
        let p = br#"{"stages":[{"op":1},{"op":32513}]}"#;
        assert_eq!(
            d.dispatch(OP_PIPELINE, &encode_request(p, b"abc")),
            Ok(Reply::Data(b"ABC".to_vec()))
        );
        let bad = br#"{"stages":[{"op":1},{"op":30583}]}"#;
        let e = d
            .dispatch(OP_PIPELINE, &encode_request(bad, b"abc"))
            .unwrap_err();
        assert_eq!(e.code, ErrorCode::UnknownOp);
        assert!(
            e.message.starts_with("stage 1 (unknown): "),
            "{}",
            e.message
        );
        let e = d
            .dispatch(OP_PIPELINE, &encode_request(br#"{"stages":[]}"#, b""))
            .unwrap_err();
        assert_eq!(e.code, ErrorCode::BadParams);
        let e = d
            .dispatch(
                OP_PIPELINE,
                &encode_request(br#"{"stages":[{"op":3}]}"#, b""),
            )
            .unwrap_err();
        assert_eq!(e.code, ErrorCode::BadParams);
    }

    #[test]
    fn a_panicking_op_is_an_internal_error_and_the_dispatcher_goes_on() {
        let mut d = dispatcher();
        let prev = std::panic::take_hook();
        std::panic::set_hook(Box::new(|_| {}));
        let e = d.dispatch(0x7F02, &encode_request(b"", b"")).unwrap_err();
        std::panic::set_hook(prev);
        assert_eq!(e.code, ErrorCode::Internal);
        assert!(
            e.message.contains("test.panic") && e.message.contains("boom"),
            "{}",
            e.message
        );
        assert!(d.dispatch(OP_ECHO, &encode_request(b"", b"x")).is_ok());
    }

    #[test]
    fn info_lists_the_ops() {
        let mut d = dispatcher();
        let Reply::Data(json) = d.dispatch(OP_INFO, &encode_request(b"", b"")).unwrap() else {
            panic!()
        };
        let v: serde_json::Value = serde_json::from_slice(&json).unwrap();
        assert_eq!(v["layout_version"], 1);
        assert!(v["ops"]
            .as_array()
            .unwrap()
            .iter()
            .any(|o| o["name"] == "echo"));
        assert_eq!(
            d.dispatch(OP_SHUTDOWN, &encode_request(b"", b"")),
            Ok(Reply::Shutdown(vec![]))
        );
        // Control ops and echo take no params, but refuse what §9.1 does not allow.
        for op in [OP_INFO, OP_SHUTDOWN, OP_ECHO] {
            for bad in [&b"[1]"[..], b"\"x\"", b"{", b"7"] {
                let e = d.dispatch(op, &encode_request(bad, b"")).unwrap_err();
                assert_eq!(e.code, ErrorCode::BadParams, "{op:#x} {bad:?}");
            }
            assert!(d
                .dispatch(op, &encode_request(b"{\"any\": 1}", b""))
                .is_ok());
            assert!(
                d.dispatch(op, b"").is_err(),
                "a payload shorter than params_len"
            );
        }
    }
}
