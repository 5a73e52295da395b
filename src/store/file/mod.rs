//! The crash-safe file format of saved histories and logs (layout.md §9.3 "History files",
//! §9.4 "Log files"): one [`envelope`] (header, CRC-32, atomic write) around a payload built
//! with [`payload`]'s reader and writers; [`history`] and [`log`] are the two payloads.
#![forbid(unsafe_code)]

pub mod beneath;
pub mod envelope;
pub mod history;
pub mod log;
pub mod payload;
