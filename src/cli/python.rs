//! `chunkring demo` and `chunkring bench`: written in Python, so this binary hands them to
//! `python -m chunkring` (python/chunkring/__main__.py), which runs them itself and never
//! calls back here for them.
//!
//! Which Python: the one next to this binary (a venv's `bin/` holds both the `chunkring`
//! script pip installed and `python`), else `python3` on PATH. The child gets
//! `CHUNKRING_WORKER` = this binary (unless already set), so the demo uses the worker it was
//! launched from; from a source checkout (`<repo>/target/<profile>/chunkring`) it also gets
//! `<repo>/python` on `PYTHONPATH`, so no install is needed there.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::Failure;

pub fn run(command: &str, args: &[String]) -> Result<(), Failure> {
    let exe = std::env::current_exe().ok();
    let python = exe
        .as_deref()
        .and_then(python_beside)
        .unwrap_or_else(|| PathBuf::from("python3"));
    let mut child = Command::new(&python);
    child.args(["-m", "chunkring", command]).args(args);
    if let Some(exe) = &exe {
        if std::env::var_os("CHUNKRING_WORKER").is_none() {
            child.env("CHUNKRING_WORKER", exe);
        }
        if let Some(source) = checkout_python_dir(exe) {
            child.env(
                "PYTHONPATH",
                prepend_path(&source, std::env::var_os("PYTHONPATH")),
            );
        }
    }
    Err(Failure::failed(format!(
        "{command} runs in Python and {} could not be started: {} \
         (install the chunkring package: pip install chunkring)",
        python.display(),
        exec(&mut child)
    )))
}

/// Replaces this process with `child` (signals and the exit status are the child's); only
/// returns on failure to start it.
#[cfg(unix)]
fn exec(child: &mut Command) -> std::io::Error {
    use std::os::unix::process::CommandExt;
    child.exec()
}

#[cfg(not(unix))]
fn exec(child: &mut Command) -> std::io::Error {
    match child.status() {
        Ok(status) => std::process::exit(status.code().unwrap_or(1)),
        Err(e) => e,
    }
}

/// `python3` or `python` in the same folder as `exe`.
fn python_beside(exe: &Path) -> Option<PathBuf> {
    let dir = exe.parent()?;
    ["python3", "python"]
        .iter()
        .map(|name| dir.join(name))
        .find(|p| p.is_file())
}

/// `<repo>/python` when `exe` is `<repo>/target/<profile>/chunkring` of a checkout that holds
/// the Python package.
fn checkout_python_dir(exe: &Path) -> Option<PathBuf> {
    let target = exe.parent()?.parent()?;
    if target.file_name()? != "target" {
        return None;
    }
    let source = target.parent()?.join("python");
    source
        .join("chunkring")
        .join("__init__.py")
        .is_file()
        .then_some(source)
}

fn prepend_path(dir: &Path, old: Option<OsString>) -> OsString {
    let mut paths = vec![dir.to_path_buf()];
    paths.extend(old.iter().flat_map(std::env::split_paths));
    std::env::join_paths(paths).unwrap_or_else(|_| dir.as_os_str().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_checkout_build_puts_its_python_folder_first() {
        let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
        let exe = repo.join("target").join("release").join("chunkring");
        assert_eq!(checkout_python_dir(&exe), Some(repo.join("python")));
        assert_eq!(checkout_python_dir(Path::new("/usr/bin/chunkring")), None);
        let joined = prepend_path(Path::new("/a"), Some(OsString::from("/b:/c")));
        assert_eq!(joined, OsString::from("/a:/b:/c"));
        assert_eq!(prepend_path(Path::new("/a"), None), OsString::from("/a"));
    }

    #[test]
    fn python_is_looked_for_beside_the_binary_only() {
        assert_eq!(python_beside(Path::new("/nonexistent/bin/chunkring")), None);
    }
}
