//! Wire error codes (layout.md §8 "Error codes") and the error type every op returns.
//!
//! An error frame carries one [`ErrorCode`] in its `status` field and a UTF-8 message as its
//! payload. The numeric values are the contract: they are listed in layout.md, in
//! `python/chunkring/_layout.py`, and checked against both by `tests/layout_md.rs`.

use std::fmt;

use crate::layout;

/// The `status` of an error frame. `0` ([`ErrorCode::Ok`]) is never sent with `FLAG_ERROR`.
/// Each value is its `ERR_*` constant in layout.rs, so the two cannot drift apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u16)]
pub enum ErrorCode {
    /// Success (status of every good response).
    Ok = layout::ERR_OK,
    /// The frame header is not a frame header: bad magic, reserved flag bits, request status ≠ 0.
    MalformedHeader = layout::ERR_MALFORMED_HEADER,
    /// `payload_len` runs past the published chunks or the end of the ring.
    FrameLength = layout::ERR_FRAME_LENGTH,
    /// Fragments arrived out of sequence (index gap, id/op change, overrun of `message_len`).
    FragmentSequence = layout::ERR_FRAGMENT_SEQUENCE,
    /// `message_len` exceeds the worker's `MAX_MESSAGE_BYTES`.
    MessageTooLarge = layout::ERR_MESSAGE_TOO_LARGE,
    /// No op is registered under the frame's op code.
    UnknownOp = layout::ERR_UNKNOWN_OP,
    /// The params section is not a valid JSON object or misses a required field.
    BadParams = layout::ERR_BAD_PARAMS,
    /// The body does not follow the op's encoding (layout.md §9).
    BadPayload = layout::ERR_BAD_PAYLOAD,
    /// Text that must be UTF-8 is not; the message names the byte offset.
    InvalidUtf8 = layout::ERR_INVALID_UTF8,
    /// A named thing (history, log, snapshot) does not exist.
    NotFound = layout::ERR_NOT_FOUND,
    /// An index or range is outside what exists.
    OutOfRange = layout::ERR_OUT_OF_RANGE,
    /// A path escapes the root the client named, or is otherwise refused.
    PathRefused = layout::ERR_PATH_REFUSED,
    /// An I/O error on a file the worker reads or writes for an op.
    Io = layout::ERR_IO,
    /// The op failed unexpectedly (a bug in the worker); the worker keeps serving.
    Internal = layout::ERR_INTERNAL,
    /// The worker is shutting down and no longer accepts requests.
    ShuttingDown = layout::ERR_SHUTTING_DOWN,
    /// Persisted data failed its integrity check (torn or corrupted file).
    CorruptData = layout::ERR_CORRUPT_DATA,
    /// A frame failed its CRC-32 check, or lacked one where the region requires it
    /// (layout.md §6.6); the ring was resynchronised.
    Checksum = layout::ERR_CHECKSUM,
}

impl ErrorCode {
    /// Every code, in wire order (used by tests and `inspect`).
    pub const ALL: [ErrorCode; 17] = [
        ErrorCode::Ok,
        ErrorCode::MalformedHeader,
        ErrorCode::FrameLength,
        ErrorCode::FragmentSequence,
        ErrorCode::MessageTooLarge,
        ErrorCode::UnknownOp,
        ErrorCode::BadParams,
        ErrorCode::BadPayload,
        ErrorCode::InvalidUtf8,
        ErrorCode::NotFound,
        ErrorCode::OutOfRange,
        ErrorCode::PathRefused,
        ErrorCode::Io,
        ErrorCode::Internal,
        ErrorCode::ShuttingDown,
        ErrorCode::CorruptData,
        ErrorCode::Checksum,
    ];

    /// The code's wire value.
    pub fn to_u16(self) -> u16 {
        self as u16
    }

    /// Decodes a wire value; `None` for a value layout.md does not define.
    pub fn from_u16(v: u16) -> Option<ErrorCode> {
        Self::ALL.get(usize::from(v)).copied()
    }

    /// The SCREAMING_SNAKE name used in layout.md and `_layout.py` (`ERR_` prefix omitted).
    pub fn name(self) -> &'static str {
        match self {
            ErrorCode::Ok => "OK",
            ErrorCode::MalformedHeader => "MALFORMED_HEADER",
            ErrorCode::FrameLength => "FRAME_LENGTH",
            ErrorCode::FragmentSequence => "FRAGMENT_SEQUENCE",
            ErrorCode::MessageTooLarge => "MESSAGE_TOO_LARGE",
            ErrorCode::UnknownOp => "UNKNOWN_OP",
            ErrorCode::BadParams => "BAD_PARAMS",
            ErrorCode::BadPayload => "BAD_PAYLOAD",
            ErrorCode::InvalidUtf8 => "INVALID_UTF8",
            ErrorCode::NotFound => "NOT_FOUND",
            ErrorCode::OutOfRange => "OUT_OF_RANGE",
            ErrorCode::PathRefused => "PATH_REFUSED",
            ErrorCode::Io => "IO",
            ErrorCode::Internal => "INTERNAL",
            ErrorCode::ShuttingDown => "SHUTTING_DOWN",
            ErrorCode::CorruptData => "CORRUPT_DATA",
            ErrorCode::Checksum => "CHECKSUM",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} ({})",
            self.name().to_ascii_lowercase().replace('_', " "),
            *self as u16
        )
    }
}

/// An op's failure: the wire code plus a human message that goes into the error frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpError {
    /// Wire code sent as the error frame's status.
    pub code: ErrorCode,
    /// Lower-case message without trailing period, e.g. "unknown history \"ui\"".
    pub message: String,
}

impl OpError {
    /// Builds an error from a code and anything printable.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> OpError {
        OpError {
            code,
            message: message.into(),
        }
    }

    /// `BadParams` with the given message.
    pub fn bad_params(message: impl Into<String>) -> OpError {
        OpError::new(ErrorCode::BadParams, message)
    }

    /// `BadPayload` with the given message.
    pub fn bad_payload(message: impl Into<String>) -> OpError {
        OpError::new(ErrorCode::BadPayload, message)
    }

    /// `InvalidUtf8` naming the byte offset of the first bad byte, as layout.md requires.
    pub fn invalid_utf8(what: &str, err: std::str::Utf8Error) -> OpError {
        OpError::new(
            ErrorCode::InvalidUtf8,
            format!(
                "{what} is not valid UTF-8 at byte offset {}",
                err.valid_up_to()
            ),
        )
    }
}

impl fmt::Display for OpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {}",
            self.code.name().to_ascii_lowercase(),
            self.message
        )
    }
}

impl std::error::Error for OpError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_round_trips_through_its_wire_value() {
        for (i, code) in ErrorCode::ALL.iter().enumerate() {
            assert_eq!(code.to_u16() as usize, i);
            assert_eq!(ErrorCode::from_u16(code.to_u16()), Some(*code));
        }
        assert_eq!(ErrorCode::from_u16(17), None);
    }

    #[test]
    fn display_strings_are_lower_case_without_period() {
        assert_eq!(ErrorCode::UnknownOp.to_string(), "unknown op (5)");
        let e = OpError::new(ErrorCode::NotFound, "unknown history \"ui\"");
        assert_eq!(e.to_string(), "not_found: unknown history \"ui\"");
    }
}
