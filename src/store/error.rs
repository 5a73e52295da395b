//! [`StoreError`]: everything the store can refuse, named by what went wrong.
//!
//! The store knows no wire: the op layer maps each variant to its error-frame code (layout.md
//! §8 "Error codes") in one place. `Display` is the message that error frame
//! carries, so these strings are part of the contract the tests pin.

use std::fmt;
use std::path::PathBuf;

/// Why a store call failed.
#[derive(Debug)]
pub enum StoreError {
    /// Snapshot bytes do not follow their encoding: a syntax error, a non-string or duplicate
    /// key, nesting too deep, or a structured snapshot that is not an object.
    Malformed(String),
    /// Text that must be UTF-8 is not; `valid_up_to` is the offset of the first bad byte.
    NotUtf8 {
        /// What held the text, e.g. "json snapshot".
        what: &'static str,
        /// Bytes of valid UTF-8 before the first bad byte.
        valid_up_to: usize,
    },
    /// A stored value that the encoding asked for cannot express (bytes as JSON, a length or
    /// an integer beyond marshal's range), or a store inconsistency met while encoding.
    Unencodable(String),
    /// A snapshot pushed as opaque bytes was asked for in this structured encoding.
    OpaqueAsStructured(&'static str),
    /// A json or marshal snapshot was asked for as opaque bytes.
    StructuredAsBytes,
    /// A diff named this entry, which was pushed as opaque bytes.
    OpaqueInDiff(u64),
    /// A history capacity outside `1..=max`.
    CapacityOutOfRange {
        /// The capacity asked for.
        capacity: u64,
        /// The largest capacity allowed.
        max: usize,
    },
    /// No history has this name.
    UnknownHistory(String),
    /// No log has this name.
    UnknownLog(String),
    /// An entry index past the end of a history.
    IndexOutOfRange {
        /// The index asked for.
        index: u64,
        /// Entries the history holds.
        len: usize,
    },
    /// A log record of 4 GiB or more.
    RecordTooLarge,
    /// Snapshot `index` of a batch failed; the inner error says why.
    InSnapshot {
        /// Position of the snapshot in its batch.
        index: usize,
        /// What went wrong with it.
        error: Box<StoreError>,
    },
    /// A path that names no file (it ends in `..` or is a root).
    NoFileName(PathBuf),
    /// A path to load that is not a regular file.
    NotARegularFile(PathBuf),
    /// A file to load larger than `limit` bytes.
    FileTooLarge {
        /// The file.
        path: PathBuf,
        /// The largest file load reads.
        limit: u64,
    },
    /// An I/O step on a file failed.
    Io {
        /// The step, e.g. "cannot rename onto".
        step: &'static str,
        /// The file it acted on.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// A saved file failed its integrity checks or decodes to something no store holds.
    Corrupt(String),
    /// A store invariant broke (a bug in the store, never the caller's input).
    Broken(&'static str),
}

impl StoreError {
    /// [`StoreError::NotUtf8`] from the decoder's error.
    pub fn not_utf8(what: &'static str, err: std::str::Utf8Error) -> StoreError {
        StoreError::NotUtf8 {
            what,
            valid_up_to: err.valid_up_to(),
        }
    }

    /// [`StoreError::Malformed`] with this message.
    pub fn malformed(message: impl Into<String>) -> StoreError {
        StoreError::Malformed(message.into())
    }

    /// [`StoreError::Corrupt`] with this message.
    pub fn corrupt(message: impl Into<String>) -> StoreError {
        StoreError::Corrupt(message.into())
    }

    /// [`StoreError::Io`] for `step` on `path`.
    pub fn io(step: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> StoreError {
        StoreError::Io {
            step,
            path: path.into(),
            source,
        }
    }
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::Malformed(m) | StoreError::Unencodable(m) | StoreError::Corrupt(m) => {
                f.write_str(m)
            }
            StoreError::NotUtf8 { what, valid_up_to } => {
                write!(f, "{what} is not valid UTF-8 at byte offset {valid_up_to}")
            }
            StoreError::OpaqueAsStructured(want) => write!(
                f,
                "the snapshot was pushed as opaque bytes and can only be returned as bytes, \
                 not {want}"
            ),
            StoreError::StructuredAsBytes => f.write_str(
                "a json or marshal snapshot can be returned as json or marshal, not bytes",
            ),
            StoreError::OpaqueInDiff(i) => write!(
                f,
                "snapshot {i} was pushed as opaque bytes; diff needs json or marshal snapshots"
            ),
            StoreError::CapacityOutOfRange { capacity, max } => {
                write!(f, "capacity {capacity} is outside 1..={max}")
            }
            StoreError::UnknownHistory(name) => write!(f, "unknown history {name:?}"),
            StoreError::UnknownLog(name) => write!(f, "unknown log {name:?}"),
            StoreError::IndexOutOfRange { index, len: 0 } => {
                write!(f, "index {index} is out of range: the history is empty")
            }
            StoreError::IndexOutOfRange { index, len } => write!(
                f,
                "index {index} is out of range: the history holds {len} snapshots, 0 to {}",
                len - 1
            ),
            StoreError::RecordTooLarge => f.write_str("a log record must be shorter than 4 GiB"),
            StoreError::InSnapshot { index, error } => write!(f, "snapshot {index}: {error}"),
            StoreError::NoFileName(path) => write!(f, "path {:?} names no file", path.display()),
            StoreError::NotARegularFile(path) => {
                write!(f, "{} is not a regular file", path.display())
            }
            StoreError::FileTooLarge { path, limit } => {
                write!(f, "{} is larger than {limit} bytes", path.display())
            }
            StoreError::Io { step, path, source } => {
                write!(f, "{step} {}: {source}", path.display())
            }
            StoreError::Broken(what) => f.write_str(what),
        }
    }
}

impl std::error::Error for StoreError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            StoreError::Io { source, .. } => Some(source),
            StoreError::InSnapshot { error, .. } => Some(error),
            _ => None,
        }
    }
}
