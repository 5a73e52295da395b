//! The snapshot store: a library of named histories and logs that knows no request, registry
//! or ring (layout.md §9.3 "Storage", §9.4). The snapshot and log op handlers parse params,
//! call it and encode its answers; it reports failures as [`StoreError`], which the op layer
//! maps to wire error codes in one place.
//!
//! Module map, from the bottom up (each file imports only files above it):
//!
//! | module | what |
//! |---|---|
//! | [`error`] | [`StoreError`], named by what went wrong |
//! | [`xar`] | the Xar chunked arena: power-of-two chunks that never move |
//! | [`hash`] | the structural hash and a pass-through `Hasher` |
//! | [`bigint`] | integers beyond `i64` as base-2^15 digits (marshal's `TYPE_LONG`) |
//! | [`node`] | [`node::Node`], one JSON-like value whose children are node ids |
//! | [`node_store`] | the content-addressed, refcounted node store on the arena |
//! | [`builder`] | the value stack decoders build nodes on, bottom-up |
//! | [`codec`] | the encodings (`json`, `marshal`, opaque `bytes`) and their dispatch |
//! | [`edit`] | a value with values set or removed at paths, the rest shared |
//! | [`diff`] | RFC 6902 JSON Patch between two stored values |
//! | [`patch`] | a diff in the form a client applies to its live state |
//! | [`push_memory`] | what a history remembers of its last push, to read only what changed |
//! | [`history`] | a bounded undo/redo history of snapshots over one node store |
//! | [`batch`] | digest, size and changes of a batch of snapshots stored nowhere |
//! | [`log`] | an append-only log of byte records |
//! | [`file`](mod@file) | the crash-safe file format: envelope + CRC, history and log payloads |
//!
//! [`Store`] (this file) holds the named histories and logs a worker keeps.
#![forbid(unsafe_code)]

use std::collections::HashMap;

pub mod batch;
pub mod bigint;
pub mod builder;
pub mod codec;
pub mod diff;
pub mod edit;
pub mod error;
pub mod file;
pub mod hash;
pub mod history;
pub mod log;
pub mod node;
pub mod node_store;
pub mod patch;
pub mod push_memory;
pub mod summary;
pub mod xar;

pub use error::StoreError;
use history::History;
use log::Log;

/// All named histories and logs a worker keeps.
#[derive(Debug, Default)]
pub struct Store {
    /// Histories by name.
    pub histories: HashMap<String, History>,
    /// Logs by name.
    pub logs: HashMap<String, Log>,
}

impl Store {
    /// The history called `name`.
    ///
    /// # Errors
    /// [`StoreError::UnknownHistory`] naming it.
    pub fn history(&mut self, name: &str) -> Result<&mut History, StoreError> {
        self.histories
            .get_mut(name)
            .ok_or_else(|| StoreError::UnknownHistory(name.to_string()))
    }

    /// The history called `name`, created empty with `capacity` (default
    /// [`history::DEFAULT_CAPACITY`]) when there is none; an existing history takes `capacity`
    /// when one is given.
    pub fn history_or_new(&mut self, name: &str, capacity: Option<usize>) -> &mut History {
        let h = self
            .histories
            .entry(name.to_string())
            .or_insert_with(|| History::new(capacity.unwrap_or(history::DEFAULT_CAPACITY)));
        if let Some(c) = capacity {
            h.set_capacity(c);
        }
        h
    }

    /// Removes the history called `name` and returns it.
    ///
    /// # Errors
    /// [`StoreError::UnknownHistory`] naming it.
    pub fn remove_history(&mut self, name: &str) -> Result<History, StoreError> {
        self.histories
            .remove(name)
            .ok_or_else(|| StoreError::UnknownHistory(name.to_string()))
    }

    /// The log called `name`.
    ///
    /// # Errors
    /// [`StoreError::UnknownLog`] naming it.
    pub fn log(&mut self, name: &str) -> Result<&mut Log, StoreError> {
        self.logs
            .get_mut(name)
            .ok_or_else(|| StoreError::UnknownLog(name.to_string()))
    }
}
