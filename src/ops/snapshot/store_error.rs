//! The op boundary of the store: every [`StoreError`] becomes the [`OpError`] its error frame
//! carries (layout.md §8 "Error codes"). This is the only place that pairs store failures
//! with wire codes; the message is the store error's `Display`.
#![forbid(unsafe_code)]

use crate::error::{ErrorCode, OpError};
use crate::store::StoreError;

/// The wire code of a store failure.
fn code(e: &StoreError) -> ErrorCode {
    match e {
        StoreError::Malformed(_) | StoreError::Unencodable(_) | StoreError::RecordTooLarge => {
            ErrorCode::BadPayload
        }
        StoreError::NotUtf8 { .. } => ErrorCode::InvalidUtf8,
        StoreError::OpaqueAsStructured(_)
        | StoreError::StructuredAsBytes
        | StoreError::OpaqueInDiff(_)
        | StoreError::CapacityOutOfRange { .. }
        | StoreError::NoFileName(_) => ErrorCode::BadParams,
        StoreError::UnknownHistory(_) | StoreError::UnknownLog(_) => ErrorCode::NotFound,
        StoreError::IndexOutOfRange { .. } => ErrorCode::OutOfRange,
        StoreError::InSnapshot { error, .. } => code(error),
        StoreError::NotARegularFile(_) | StoreError::FileTooLarge { .. } => ErrorCode::PathRefused,
        StoreError::Io { .. } => ErrorCode::Io,
        StoreError::Corrupt(_) => ErrorCode::CorruptData,
        StoreError::Broken(_) => ErrorCode::Internal,
    }
}

impl From<StoreError> for OpError {
    fn from(e: StoreError) -> OpError {
        OpError::new(code(&e), e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    /// Every variant: its wire code and its message, as the error frame carries them.
    #[test]
    fn every_store_error_keeps_its_wire_code_and_message() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "gone");
        let cases: Vec<(StoreError, ErrorCode, &str)> = vec![
            (StoreError::malformed("invalid json at byte 1: x"), ErrorCode::BadPayload, "invalid json at byte 1: x"),
            (
                StoreError::NotUtf8 { what: "json snapshot", valid_up_to: 3 },
                ErrorCode::InvalidUtf8,
                "json snapshot is not valid UTF-8 at byte offset 3",
            ),
            (StoreError::Unencodable("integer too large for marshal".into()), ErrorCode::BadPayload, "integer too large for marshal"),
            (
                StoreError::OpaqueAsStructured("json"),
                ErrorCode::BadParams,
                "the snapshot was pushed as opaque bytes and can only be returned as bytes, not json",
            ),
            (
                StoreError::StructuredAsBytes,
                ErrorCode::BadParams,
                "a json or marshal snapshot can be returned as json or marshal, not bytes",
            ),
            (
                StoreError::OpaqueInDiff(2),
                ErrorCode::BadParams,
                "snapshot 2 was pushed as opaque bytes; diff needs json or marshal snapshots",
            ),
            (
                StoreError::CapacityOutOfRange { capacity: 0, max: 1 << 20 },
                ErrorCode::BadParams,
                "capacity 0 is outside 1..=1048576",
            ),
            (StoreError::UnknownHistory("ui".into()), ErrorCode::NotFound, "unknown history \"ui\""),
            (StoreError::UnknownLog("comms".into()), ErrorCode::NotFound, "unknown log \"comms\""),
            (
                StoreError::IndexOutOfRange { index: 7, len: 3 },
                ErrorCode::OutOfRange,
                "index 7 is out of range: the history holds 3 snapshots, 0 to 2",
            ),
            (
                StoreError::IndexOutOfRange { index: 0, len: 0 },
                ErrorCode::OutOfRange,
                "index 0 is out of range: the history is empty",
            ),
            (StoreError::RecordTooLarge, ErrorCode::BadPayload, "a log record must be shorter than 4 GiB"),
            (
                StoreError::InSnapshot { index: 4, error: Box::new(StoreError::NotUtf8 { what: "marshal str", valid_up_to: 0 }) },
                ErrorCode::InvalidUtf8,
                "snapshot 4: marshal str is not valid UTF-8 at byte offset 0",
            ),
            (StoreError::NoFileName(PathBuf::from("/a/..")), ErrorCode::BadParams, "path \"/a/..\" names no file"),
            (StoreError::NotARegularFile(PathBuf::from("/tmp")), ErrorCode::PathRefused, "/tmp is not a regular file"),
            (
                StoreError::FileTooLarge { path: PathBuf::from("/f"), limit: 1 << 32 },
                ErrorCode::PathRefused,
                "/f is larger than 4294967296 bytes",
            ),
            (StoreError::io("cannot open", "/f", io), ErrorCode::Io, "cannot open /f: gone"),
            (StoreError::corrupt("checksum mismatch: the file is corrupted"), ErrorCode::CorruptData, "checksum mismatch: the file is corrupted"),
            (StoreError::Broken("log page missing"), ErrorCode::Internal, "log page missing"),
        ];
        for (e, want_code, want_message) in cases {
            let op = OpError::from(e);
            assert_eq!(op, OpError::new(want_code, want_message));
        }
    }
}
