//! Opening files the client names without being tricked (layout.md §9.2 "Reading under the
//! root", §9.3 "History files"): resolution beneath a directory that a concurrent rename or
//! symlink swap cannot escape, regular files only, never blocking on a FIFO, and the size
//! checked on the open file before a byte is read.
//!
//! **Race-free resolution without `unsafe`.** `openat(2)` needs a raw syscall, and this crate
//! keeps `unsafe` out of everything but the ring, region and futex code. Linux's
//! `/proc/self/fd/<fd>/<name>` gives the same guarantee: the kernel resolves the
//! `/proc/self/fd/<fd>` magic link to the very directory the descriptor holds (not by its
//! name, so renaming or replacing that directory's path changes nothing), then looks `name` up
//! in it. Walking one component at a time, each opened with `O_NOFOLLOW` (directories with
//! `O_DIRECTORY` too), is `openat(dirfd, name, O_NOFOLLOW)` step by step: a symbolic link
//! anywhere below the root is refused, whatever happens to the tree meanwhile, and `..` never
//! reaches the kernel (it is resolved lexically first and may not climb above the root). Where
//! `/proc` is not mounted, reads under a root fail with an I/O error; they never fall back to
//! path-based resolution.
#![forbid(unsafe_code)]

use std::fs::{File, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::io::AsRawFd;
use std::path::{Component, Path, PathBuf};

/// Why [`Dir::open_file`] or [`open_regular`] refused a path. Each reason has its own
/// message, so a client can tell an escape from a symlink from a FIFO from a big file.
#[derive(Debug)]
pub enum OpenError {
    /// The path leads out of the directory (`..` above it, or an absolute path elsewhere).
    Escapes,
    /// A component of the path (named here) is a symbolic link; none is followed.
    Symlink(PathBuf),
    /// The path names something other than a regular file (a directory, FIFO, device, socket).
    NotRegular,
    /// The file holds `size` bytes, more than the `limit` the caller allowed.
    TooLarge {
        /// The file's size when opened.
        size: u64,
        /// The most bytes the caller would read.
        limit: u64,
    },
    /// The OS refused a step (missing file, permissions, no `/proc`, a read error).
    Io(io::Error),
}

impl std::fmt::Display for OpenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OpenError::Escapes => f.write_str("escapes the root"),
            OpenError::Symlink(at) => write!(
                f,
                "leads through the symbolic link {:?}, which is not followed",
                at.display()
            ),
            OpenError::NotRegular => f.write_str("is not a regular file"),
            OpenError::TooLarge { size, limit } => {
                write!(f, "holds {size} bytes, more than the limit of {limit}")
            }
            OpenError::Io(e) => write!(f, "{e}"),
        }
    }
}

/// Flags of every open here: close-on-exec (std adds it), no controlling terminal.
const BASE_FLAGS: i32 = libc::O_NOFOLLOW | libc::O_NOCTTY;

/// A directory held open, that paths are resolved beneath.
#[derive(Debug)]
pub struct Dir {
    fd: File,
    canonical: PathBuf,
}

impl Dir {
    /// Opens `root` (following symbolic links: the root is the caller's choice).
    ///
    /// # Errors
    /// The OS error when `root` is missing or not a directory.
    pub fn open(root: &Path) -> io::Result<Dir> {
        let canonical = std::fs::canonicalize(root)?;
        let fd = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_DIRECTORY | BASE_FLAGS)
            .open(&canonical)?;
        Ok(Dir { fd, canonical })
    }

    /// The root's canonical path.
    pub fn path(&self) -> &Path {
        &self.canonical
    }

    /// `path` (relative to the root, or absolute inside it) as components below the root,
    /// `.` dropped and `..` applied lexically, or [`OpenError::Escapes`].
    pub fn relative(&self, path: &Path) -> Result<Vec<PathBuf>, OpenError> {
        let joined = self.canonical.join(path);
        let mut parts = Vec::new();
        for c in joined.components() {
            match c {
                Component::CurDir => {}
                Component::ParentDir => {
                    parts.pop();
                }
                other => parts.push(other),
            }
        }
        let root: Vec<Component<'_>> = self.canonical.components().collect();
        if !parts.starts_with(&root) {
            return Err(OpenError::Escapes);
        }
        parts[root.len()..]
            .iter()
            .map(|c| match c {
                Component::Normal(n) => Ok(PathBuf::from(n)),
                _ => Err(OpenError::Escapes),
            })
            .collect()
    }

    /// Opens the regular file `path` beneath the root without following any symbolic link
    /// below the root and without blocking on a FIFO; returns it with its size, which is at
    /// most `limit` (checked on the open file, before any read).
    ///
    /// # Errors
    /// [`OpenError`]: which check refused the path.
    pub fn open_file(&self, path: &Path, limit: u64) -> Result<(File, u64), OpenError> {
        let parts = self.relative(path)?;
        let Some((last, dirs)) = parts.split_last() else {
            return Err(OpenError::NotRegular); // the root itself
        };
        let mut walked = PathBuf::new();
        let mut owned: Option<File> = None;
        for d in dirs {
            walked.push(d);
            let at = owned.as_ref().unwrap_or(&self.fd);
            let next =
                open_at(at, d, libc::O_DIRECTORY).map_err(|e| classify(e, at, d, &walked))?;
            owned = Some(next);
        }
        walked.push(last);
        let at = owned.as_ref().unwrap_or(&self.fd);
        let f = open_at(at, last, libc::O_NONBLOCK).map_err(|e| classify(e, at, last, &walked))?;
        checked(f, limit)
    }
}

/// Opens `path` (an absolute path the client chose; symbolic links are followed) as a
/// regular file without blocking on a FIFO, and checks its size against `limit` before any
/// read.
///
/// # Errors
/// [`OpenError::NotRegular`], [`OpenError::TooLarge`], [`OpenError::Io`].
pub fn open_regular(path: &Path, limit: u64) -> Result<(File, u64), OpenError> {
    let f = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .map_err(OpenError::Io)?;
    checked(f, limit)
}

/// Reads all of `f`, which [`Dir::open_file`] or [`open_regular`] found to hold `size`
/// bytes; never more than `size` (a file that grew meanwhile is read up to `size`).
///
/// # Errors
/// The OS error of a failed read.
pub fn read_all(f: File, size: u64) -> io::Result<Vec<u8>> {
    let mut out = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
    f.take(size).read_to_end(&mut out)?;
    Ok(out)
}

/// `openat(dir, name, O_RDONLY | O_NOFOLLOW | O_NOCTTY | extra)` through `/proc/self/fd`.
fn open_at(dir: &File, name: &Path, extra: i32) -> io::Result<File> {
    let via = Path::new("/proc/self/fd")
        .join(dir.as_raw_fd().to_string())
        .join(name);
    OpenOptions::new()
        .read(true)
        .custom_flags(BASE_FLAGS | extra)
        .open(via)
}

/// Names a failed step: `ELOOP` under `O_NOFOLLOW` (or `ENOTDIR` on what is a link) is a
/// symbolic link; anything else is the OS error.
fn classify(e: io::Error, dir: &File, name: &Path, walked: &Path) -> OpenError {
    let is_link = || {
        let via = Path::new("/proc/self/fd")
            .join(dir.as_raw_fd().to_string())
            .join(name);
        std::fs::symlink_metadata(via).is_ok_and(|m| m.file_type().is_symlink())
    };
    match e.raw_os_error() {
        Some(libc::ELOOP) => OpenError::Symlink(walked.to_path_buf()),
        Some(libc::ENOTDIR) if is_link() => OpenError::Symlink(walked.to_path_buf()),
        Some(libc::ENOTDIR) => OpenError::Io(e),
        _ => OpenError::Io(e),
    }
}

fn checked(f: File, limit: u64) -> Result<(File, u64), OpenError> {
    let meta = f.metadata().map_err(OpenError::Io)?;
    if !meta.is_file() {
        return Err(OpenError::NotRegular);
    }
    if meta.len() > limit {
        return Err(OpenError::TooLarge {
            size: meta.len(),
            limit,
        });
    }
    Ok((f, meta.len()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn tree(tag: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("chunkring-beneath-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(dir.join("root/sub")).unwrap();
        fs::write(dir.join("root/sub/f.txt"), b"hi").unwrap();
        fs::write(dir.join("secret"), b"no").unwrap();
        dir
    }

    #[test]
    fn files_beneath_open_and_everything_else_is_named() {
        let dir = tree("kinds");
        let root = Dir::open(&dir.join("root")).unwrap();
        let read = |p: &str| {
            root.open_file(Path::new(p), 100)
                .and_then(|(f, n)| read_all(f, n).map_err(OpenError::Io))
        };
        assert_eq!(read("sub/f.txt").unwrap(), b"hi");
        assert_eq!(read("sub/../sub/./f.txt").unwrap(), b"hi");
        let abs = dir.join("root/sub/f.txt");
        assert_eq!(read(abs.to_str().unwrap()).unwrap(), b"hi");
        for bad in ["../secret", "sub/../../secret", "/etc/passwd"] {
            assert!(matches!(read(bad), Err(OpenError::Escapes)), "{bad}");
        }
        std::os::unix::fs::symlink(dir.join("secret"), dir.join("root/link")).unwrap();
        std::os::unix::fs::symlink(dir.join("root/sub"), dir.join("root/dlink")).unwrap();
        assert!(matches!(read("link"), Err(OpenError::Symlink(_))));
        assert!(matches!(read("dlink/f.txt"), Err(OpenError::Symlink(_))));
        assert!(matches!(read("sub"), Err(OpenError::NotRegular)));
        assert!(matches!(read("."), Err(OpenError::NotRegular)));
        assert!(matches!(read("missing"), Err(OpenError::Io(_))));
        fs::write(dir.join("root/big"), vec![b'x'; 101]).unwrap();
        assert!(matches!(
            read("big"),
            Err(OpenError::TooLarge {
                size: 101,
                limit: 100
            })
        ));
        let fifo = dir.join("root/fifo");
        let status = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(status.success());
        assert!(matches!(read("fifo"), Err(OpenError::NotRegular)));
        assert!(matches!(
            open_regular(&fifo, 100),
            Err(OpenError::NotRegular)
        ));
        fs::remove_dir_all(&dir).unwrap();
    }
}
