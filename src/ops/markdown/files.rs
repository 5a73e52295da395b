//! Files for `aggregate` (layout.md §9.2 "aggregate"): reading paths under the root the client
//! names, refusing any that escape it, and guessing a fence language from a file name.
#![forbid(unsafe_code)]

use std::cell::Cell;
use std::path::Path;

use crate::error::{ErrorCode, OpError};
use crate::store::file::beneath::{read_all, Dir, OpenError};

/// Most files one `aggregate` request reads under its root (layout.md §9.2 "Limits").
pub const AGGREGATE_MAX_READ_FILES: u32 = 10_000;
/// Most bytes one `aggregate` request reads from files, all files together (256 MiB).
pub const AGGREGATE_MAX_READ_BYTES: u64 = 256 << 20;
/// Largest document one `aggregate` request answers (512 MiB).
pub const AGGREGATE_MAX_ANSWER_BYTES: u64 = 512 << 20;

/// A directory held open that `read` paths are resolved beneath, with what is left of the
/// request's read limits.
#[derive(Debug)]
pub struct Root {
    dir: Dir,
    files_left: Cell<u32>,
    bytes_left: Cell<u64>,
}

impl Root {
    /// Opens `root` (the client's directory; a symbolic link naming it is followed).
    ///
    /// # Errors
    /// `IO` when `root` does not exist or is not a directory.
    pub fn open(root: &str) -> Result<Root, OpError> {
        let dir = Dir::open(Path::new(root)).map_err(|e| {
            let e = if e.raw_os_error() == Some(libc::ENOTDIR) {
                "not a directory".to_string()
            } else {
                e.to_string()
            };
            OpError::new(ErrorCode::Io, format!("root {root:?}: {e}"))
        })?;
        Ok(Root {
            dir,
            files_left: Cell::new(AGGREGATE_MAX_READ_FILES),
            bytes_left: Cell::new(AGGREGATE_MAX_READ_BYTES),
        })
    }

    /// Reads `path` (relative to the root, or absolute inside it), counting it against the
    /// request's limits.
    ///
    /// The path is normalized lexically (`..` may not climb out, an absolute path must lie
    /// under the canonical root) before the file system is touched, so a refused path reveals
    /// nothing about what exists outside; then it is opened one component at a time from
    /// the root's descriptor, never following a symbolic link, so swapping a directory for a
    /// link meanwhile cannot lead out ([`Dir::open_file`]). The size is checked on the open
    /// file against what is left of the request's read limit before a byte is read, and a
    /// FIFO is refused without blocking.
    ///
    /// # Errors
    /// `PATH_REFUSED` for a path that leaves the root or leads through a symbolic link;
    /// `IO` for a missing or unreadable file, one that is not a regular file, one larger than
    /// what is left of [`AGGREGATE_MAX_READ_BYTES`], or a request reading more than
    /// [`AGGREGATE_MAX_READ_FILES`] files. Each reason has its own message.
    pub fn read(&self, path: &str) -> Result<Vec<u8>, OpError> {
        let files_left = self.files_left.get();
        if files_left == 0 {
            return Err(OpError::new(
                ErrorCode::Io,
                format!("{path:?}: one request reads at most {AGGREGATE_MAX_READ_FILES} files"),
            ));
        }
        self.files_left.set(files_left - 1);
        let left = self.bytes_left.get();
        let (f, size) = self
            .dir
            .open_file(Path::new(path), left)
            .map_err(|e| refusal(path, e, left))?;
        self.bytes_left.set(left - size);
        read_all(f, size).map_err(|e| OpError::new(ErrorCode::Io, format!("{path:?}: {e}")))
    }
}

/// The error frame for a path [`Dir::open_file`] refused.
fn refusal(path: &str, e: OpenError, left: u64) -> OpError {
    match e {
        OpenError::Escapes => OpError::new(
            ErrorCode::PathRefused,
            format!("path {path:?} escapes the root"),
        ),
        OpenError::Symlink(at) => OpError::new(
            ErrorCode::PathRefused,
            format!(
                "path {path:?} leads through the symbolic link {:?}, which is not followed",
                at.display()
            ),
        ),
        OpenError::NotRegular => {
            OpError::new(ErrorCode::Io, format!("{path:?} is not a regular file"))
        }
        OpenError::TooLarge { size, .. } => OpError::new(
            ErrorCode::Io,
            format!(
                "{path:?} holds {size} bytes, more than the {left} bytes left of this request's read limit ({AGGREGATE_MAX_READ_BYTES})"
            ),
        ),
        OpenError::Io(e) => OpError::new(ErrorCode::Io, format!("{path:?}: {e}")),
    }
}

/// True for the extensions layout.md §9.2 counts as markdown (outline mode applies).
pub fn is_markdown(path: &str) -> bool {
    matches!(
        extension(path).as_str(),
        "md" | "markdown" | "mdown" | "mkd" | "mdx"
    )
}

/// Lower-case extension of the last path component, `""` when none.
fn extension(path: &str) -> String {
    let name = path.rsplit(['/', '\\']).next().unwrap_or(path);
    match name.rsplit_once('.') {
        Some((stem, ext)) if !stem.is_empty() => ext.to_ascii_lowercase(),
        _ => String::new(),
    }
}

/// The fence info string for a file (layout.md §9.2 lists the table); `""` when unknown.
pub fn guess_language(path: &str) -> &'static str {
    let name = path.rsplit(['/', '\\']).next().unwrap_or(path);
    match name {
        "Makefile" | "makefile" | "GNUmakefile" => return "makefile",
        "Dockerfile" => return "dockerfile",
        "CMakeLists.txt" => return "cmake",
        _ => {}
    }
    match extension(path).as_str() {
        "rs" => "rust",
        "py" | "pyi" => "python",
        "md" | "markdown" | "mdown" | "mkd" | "mdx" => "markdown",
        "js" | "mjs" | "cjs" => "javascript",
        "jsx" => "jsx",
        "ts" | "mts" | "cts" => "typescript",
        "tsx" => "tsx",
        "json" => "json",
        "toml" => "toml",
        "yaml" | "yml" => "yaml",
        "sh" | "bash" => "bash",
        "zsh" => "zsh",
        "c" | "h" => "c",
        "cc" | "cpp" | "cxx" | "hpp" | "hh" | "hxx" => "cpp",
        "go" => "go",
        "java" => "java",
        "kt" | "kts" => "kotlin",
        "rb" => "ruby",
        "php" => "php",
        "cs" => "csharp",
        "swift" => "swift",
        "html" | "htm" => "html",
        "css" => "css",
        "scss" => "scss",
        "xml" => "xml",
        "sql" => "sql",
        "lua" => "lua",
        "ini" | "cfg" => "ini",
        "txt" => "text",
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    #[test]
    fn languages_come_from_extension_or_name() {
        assert_eq!(guess_language("src/main.rs"), "rust");
        assert_eq!(guess_language("a/B.PY"), "python");
        assert_eq!(guess_language("Makefile"), "makefile");
        assert_eq!(guess_language(".bashrc"), "");
        assert_eq!(guess_language("noext"), "");
        assert!(is_markdown("README.md") && !is_markdown("md"));
    }

    #[test]
    fn paths_outside_root_are_refused_and_inside_are_read() {
        let dir = std::env::temp_dir().join(format!("chunkring-md-files-{}", std::process::id()));
        let inner = dir.join("root");
        fs::create_dir_all(inner.join("sub")).unwrap();
        fs::write(inner.join("sub/f.txt"), b"hi").unwrap();
        fs::write(dir.join("secret"), b"no").unwrap();
        let root = Root::open(inner.to_str().unwrap()).unwrap();
        assert_eq!(root.read("sub/f.txt").unwrap(), b"hi");
        assert_eq!(root.read("sub/../sub/./f.txt").unwrap(), b"hi");
        for bad in [
            "../secret",
            "sub/../../secret",
            "/etc/passwd",
            "../nonexistent",
        ] {
            assert_eq!(
                root.read(bad).unwrap_err().code,
                ErrorCode::PathRefused,
                "{bad}"
            );
        }
        std::os::unix::fs::symlink(dir.join("secret"), inner.join("link")).unwrap();
        assert_eq!(root.read("link").unwrap_err().code, ErrorCode::PathRefused);
        assert!(root
            .read("link")
            .unwrap_err()
            .message
            .contains("symbolic link"));
        assert!(root
            .read("../secret")
            .unwrap_err()
            .message
            .contains("escapes"));
        assert!(root
            .read("sub")
            .unwrap_err()
            .message
            .contains("not a regular file"));
        assert_eq!(root.read("missing").unwrap_err().code, ErrorCode::Io);
        assert_eq!(root.read("sub").unwrap_err().code, ErrorCode::Io);
        fs::remove_dir_all(&dir).unwrap();
    }
}
