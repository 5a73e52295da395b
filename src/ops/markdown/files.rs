//! Files for `aggregate` (layout.md §9.2 "aggregate"): reading paths under the root the client
//! names, refusing any that escape it, and guessing a fence language from a file name.
#![forbid(unsafe_code)]

use std::fs;
use std::path::{Component, Path, PathBuf};

use crate::error::{ErrorCode, OpError};

/// A directory, canonicalized once, that `read` paths must stay inside.
#[derive(Debug, Clone)]
pub struct Root {
    canonical: PathBuf,
}

impl Root {
    /// Canonicalizes `root`.
    ///
    /// # Errors
    /// `IO` when `root` does not exist or is not a directory.
    pub fn open(root: &str) -> Result<Root, OpError> {
        let canonical = fs::canonicalize(root)
            .map_err(|e| OpError::new(ErrorCode::Io, format!("root {root:?}: {e}")))?;
        if !canonical.is_dir() {
            return Err(OpError::new(
                ErrorCode::Io,
                format!("root {root:?} is not a directory"),
            ));
        }
        Ok(Root { canonical })
    }

    /// Reads `path` (relative to the root, or absolute inside it).
    ///
    /// The path is checked twice: lexically (`..` may not climb out, an absolute path must lie
    /// under the canonical root) before the file system is touched, so a refused path reveals
    /// nothing about what exists outside; then after canonicalization, so a symbolic link that
    /// leads out is refused too.
    ///
    /// # Errors
    /// `PATH_REFUSED` for a path that leaves the root; `IO` for a missing or unreadable file,
    /// one that is not a regular file, or one larger than 4 GiB.
    pub fn read(&self, path: &str) -> Result<Vec<u8>, OpError> {
        let refused = || {
            OpError::new(
                ErrorCode::PathRefused,
                format!("path {path:?} escapes the root"),
            )
        };
        let joined = self.canonical.join(path);
        if !lexically_normal(&joined).starts_with(&self.canonical) {
            return Err(refused());
        }
        let io = |e: std::io::Error| OpError::new(ErrorCode::Io, format!("{path:?}: {e}"));
        let real = fs::canonicalize(&joined).map_err(io)?;
        if !real.starts_with(&self.canonical) {
            return Err(refused());
        }
        let meta = fs::metadata(&real).map_err(io)?;
        if !meta.is_file() {
            return Err(OpError::new(
                ErrorCode::Io,
                format!("{path:?} is not a regular file"),
            ));
        }
        if meta.len() > u64::from(u32::MAX) {
            return Err(OpError::new(
                ErrorCode::Io,
                format!(
                    "{path:?} holds {} bytes, more than a list item's 4 GiB",
                    meta.len()
                ),
            ));
        }
        fs::read(&real).map_err(io)
    }
}

/// `path` with `.` dropped and each `..` removing the component before it (never above `/`).
fn lexically_normal(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
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
    fn lexical_normalization_cannot_climb_above_root() {
        assert_eq!(
            lexically_normal(Path::new("/a/./b/../c")),
            Path::new("/a/c")
        );
        assert_eq!(lexically_normal(Path::new("/../../x")), Path::new("/x"));
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
        assert_eq!(root.read("missing").unwrap_err().code, ErrorCode::Io);
        assert_eq!(root.read("sub").unwrap_err().code, ErrorCode::Io);
        fs::remove_dir_all(&dir).unwrap();
    }
}
