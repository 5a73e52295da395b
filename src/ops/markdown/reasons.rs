//! Why `aggregate` could not include a file: the exact `reason` strings of layout.md §9.2
//! "Per-file errors".
//!
//! `files::Root::read` decides (and stays the only judge of what may be read); this file only
//! names the outcome for the report and the note. It runs on the failure path alone, after the
//! read was refused, and looks at the path the way a person would: component by component from
//! the canonical root, with `symlink_metadata` (never following a link, never stepping above
//! the root), so a symlink is "a symlink" rather than "escapes the root", and classifying a
//! refusal reveals nothing about what lies outside the root.
#![forbid(unsafe_code)]

use std::fs;
use std::io::ErrorKind;
use std::path::{Component, Path};

use crate::error::OpError;

/// The path climbs out of the root, or is absolute and not under it.
pub const ESCAPES_THE_ROOT: &str = "escapes the root";
/// A component of the path (or the path itself) is a symbolic link the read did not follow.
pub const A_SYMLINK: &str = "a symlink";
/// Nothing exists at the path (or a component before the last is not a directory).
pub const NOT_FOUND: &str = "not found";
/// The path names a directory.
pub const A_DIRECTORY: &str = "a directory";
/// The path names a FIFO, socket or device.
pub const NOT_A_REGULAR_FILE: &str = "not a regular file";
/// The worker may not read the path.
pub const PERMISSION_DENIED: &str = "permission denied";

/// The reason for a file whose bytes are not UTF-8; `offset` is the first invalid byte.
pub fn not_utf8(offset: usize) -> String {
    format!("not UTF-8 (invalid byte at offset {offset})")
}

/// Names why `Root::read(path)` under the canonical `root` failed with `err`. Falls back to
/// `err`'s own message when the path looks readable now (a size limit, a read error, or a
/// file that changed in between).
pub fn read_failure(root: Option<&Path>, path: &str, err: &OpError) -> String {
    let Some(root) = root else {
        return err.message.clone();
    };
    walk(root, path).unwrap_or_else(|| err.message.clone())
}

/// The first problem met walking `path` from `root` without following links, if any.
fn walk(root: &Path, path: &str) -> Option<String> {
    let rel = Path::new(path);
    let rel = if rel.is_absolute() {
        match rel.strip_prefix(root) {
            Ok(r) => r,
            Err(_) => return Some(ESCAPES_THE_ROOT.into()),
        }
    } else {
        rel
    };
    let mut cur = root.to_path_buf();
    let mut depth = 0usize;
    for c in rel.components() {
        match c {
            Component::Normal(name) => {
                if depth > 0 && !fs::symlink_metadata(&cur).is_ok_and(|m| m.is_dir()) {
                    return Some(NOT_FOUND.into());
                }
                cur.push(name);
                depth += 1;
                match fs::symlink_metadata(&cur) {
                    Ok(m) if m.file_type().is_symlink() => return Some(A_SYMLINK.into()),
                    Ok(_) => {}
                    Err(e) => return Some(io_reason(&e)),
                }
            }
            Component::ParentDir if depth == 0 => return Some(ESCAPES_THE_ROOT.into()),
            Component::ParentDir => {
                cur.pop();
                depth -= 1;
            }
            Component::CurDir | Component::RootDir | Component::Prefix(_) => {}
        }
    }
    match fs::symlink_metadata(&cur) {
        Ok(m) if m.is_dir() => Some(A_DIRECTORY.into()),
        Ok(m) if !m.is_file() => Some(NOT_A_REGULAR_FILE.into()),
        Ok(_) => None,
        Err(e) => Some(io_reason(&e)),
    }
}

/// A lower-case reason for an I/O error met while walking.
fn io_reason(e: &std::io::Error) -> String {
    match e.kind() {
        ErrorKind::NotFound | ErrorKind::NotADirectory => NOT_FOUND.into(),
        ErrorKind::PermissionDenied => PERMISSION_DENIED.into(),
        _ => e.to_string().to_lowercase(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;

    #[test]
    fn each_failure_gets_its_own_reason() {
        let dir = std::env::temp_dir().join(format!("chunkring-reasons-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let root = dir.join("root");
        fs::create_dir_all(root.join("sub")).unwrap();
        fs::write(root.join("f.txt"), b"x").unwrap();
        fs::write(dir.join("secret"), b"no").unwrap();
        std::os::unix::fs::symlink(dir.join("secret"), root.join("link")).unwrap();
        std::os::unix::fs::symlink(&dir, root.join("sub/up")).unwrap();
        let root = fs::canonicalize(root).unwrap();
        let err = OpError::new(ErrorCode::Io, "the read's own message");
        let reason = |p: &str| read_failure(Some(&root), p, &err);
        assert_eq!(reason("link"), A_SYMLINK);
        assert_eq!(reason("sub/up/secret"), A_SYMLINK);
        assert_eq!(reason("../secret"), ESCAPES_THE_ROOT);
        assert_eq!(reason("sub/../../secret"), ESCAPES_THE_ROOT);
        assert_eq!(reason("/etc/hostname"), ESCAPES_THE_ROOT);
        assert_eq!(reason("missing"), NOT_FOUND);
        assert_eq!(reason("f.txt/inner"), NOT_FOUND);
        assert_eq!(reason("sub"), A_DIRECTORY);
        assert_eq!(reason("./sub/."), A_DIRECTORY);
        assert_eq!(reason("f.txt"), "the read's own message");
        assert_eq!(read_failure(None, "f.txt", &err), "the read's own message");
        assert_eq!(not_utf8(3), "not UTF-8 (invalid byte at offset 3)");
        fs::remove_dir_all(&dir).unwrap();
    }
}
