//! A region truncated under its worker by another process (layout.md §12 "Truncated
//! region"): the worker exits with a clear message and status 1, never of SIGBUS, and leaves
//! no shm object behind; and in-process, a truncated registered mapping reads zero instead of
//! faulting.
mod common;

use std::io::Read;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use chunkring::layout::*;
use chunkring::region::{file, shm, sigbus, Region};

const RING: u64 = 65536;

fn spawn(place: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_chunkring"))
        .arg("serve")
        .args(place)
        .args([
            "--size",
            &RING.to_string(),
            "--owner-pid",
            &std::process::id().to_string(),
        ])
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn worker")
}

/// Waits (generously) until `attach` finds the region ready.
fn ready(child: &mut Child, attach: impl Fn() -> Option<Region>) -> Region {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(r) = attach() {
            if r.header().worker_state() == WORKER_READY {
                return r;
            }
        }
        assert!(Instant::now() < deadline, "worker never became ready");
        assert!(child.try_wait().unwrap().is_none(), "worker exited early");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Truncates `path` to `len` from this process, then waits (generously) for the worker to
/// exit and checks how it did.
fn truncate_and_expect_clean_exit(mut child: Child, path: &Path, len: u64) {
    std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .unwrap()
        .set_len(len)
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the worker did not exit after its region was truncated to {len}");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert_eq!(status.signal(), None, "killed by a signal; stderr: {err}");
    assert_eq!(status.code(), Some(1), "stderr: {err}");
    assert!(
        err.contains("region truncated by another process"),
        "stderr: {err}"
    );
}

#[test]
fn an_idle_shm_worker_survives_truncation_to_zero_and_to_half() {
    let half = (HEADER_BYTES + 2 * RING) / 2;
    for len in [0, half] {
        let name = common::unique_name("trunc");
        let mut child = spawn(&["--name", &name]);
        let region = ready(&mut child, || shm::attach(&name).ok());
        drop(region);
        let path = shm::dev_shm_path(&name);
        truncate_and_expect_clean_exit(child, &path, len);
        assert!(!path.exists(), "{} left behind", path.display());
    }
}

#[test]
fn an_idle_file_worker_survives_truncation_to_zero_and_to_half() {
    let half = (HEADER_BYTES + 2 * RING) / 2;
    for len in [0, half] {
        let path =
            std::env::temp_dir().join(format!("{}.region", common::unique_name("trunc-file")));
        let mut child = spawn(&["--file", path.to_str().unwrap()]);
        let region = ready(&mut child, || file::attach(&path).ok());
        drop(region);
        truncate_and_expect_clean_exit(child, &path, len);
        std::fs::remove_file(&path).unwrap();
    }
}

/// The handler itself, in this process: a registered file mapping whose file is truncated
/// reads zero instead of killing the test, and the flag is set. (Its own test binary would
/// be cleaner for the process-wide flag; no other test here reads it.)
#[test]
#[cfg_attr(miri, ignore)] // mmap, ftruncate and signals are foreign to Miri
fn a_truncated_registered_mapping_reads_zero_instead_of_faulting() {
    let (f, path, p) = mapped_file("sigbus", 8192);
    let reg = sigbus::register(p.cast(), 8192);
    // SAFETY: inside the mapping, while the file still covers it.
    unsafe { std::ptr::write_volatile(p.cast::<u8>().add(4100), 7) };
    // SAFETY: as above.
    assert_eq!(
        unsafe { std::ptr::read_volatile(p.cast::<u8>().add(4100)) },
        7
    );
    assert!(!sigbus::region_lost());
    f.set_len(0).unwrap();
    // SAFETY: inside the mapping; past the end of the file now, so this faults and the
    // handler replaces the mapping with zero pages.
    let after = unsafe { std::ptr::read_volatile(p.cast::<u8>().add(4100)) };
    assert_eq!(after, 0);
    assert!(sigbus::region_lost());
    drop(reg);
    // SAFETY: unmapping the mapping made above (anonymous pages now), once.
    unsafe { libc::munmap(p, 8192) };
    std::fs::remove_file(&path).unwrap();
}

/// Maps `len` bytes of a fresh file under the temp dir, shared; returns the file (to truncate)
/// and the mapping's address.
fn mapped_file(tag: &str, len: usize) -> (std::fs::File, PathBuf, *mut libc::c_void) {
    use std::os::unix::io::AsRawFd;
    let path = std::env::temp_dir().join(format!("{}.map", common::unique_name(tag)));
    let f = std::fs::File::options()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(&path)
        .unwrap();
    f.set_len(len as u64).unwrap();
    // SAFETY: a fresh shared mapping of the whole file; the caller unmaps it or exits.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED,
            f.as_raw_fd(),
            0,
        )
    };
    assert_ne!(p, libc::MAP_FAILED);
    (f, path, p)
}

/// A SIGBUS on a mapping nobody registered still ends the process as before (the handler
/// restores the previous action and the fault repeats): run in a child copy of this test
/// binary, which must die of SIGBUS.
#[test]
#[cfg_attr(miri, ignore)] // processes, mmap and signals are foreign to Miri
fn a_sigbus_elsewhere_still_kills_the_process() {
    if std::env::var_os("CHUNKRING_SIGBUS_CHILD").is_some() {
        let (_a, path_a, a) = mapped_file("ours", 4096);
        let _reg = sigbus::register(a.cast(), 4096); // installs the handler
        let (b, path_b, p) = mapped_file("not-ours", 8192);
        b.set_len(0).unwrap();
        let _ = std::fs::remove_file(path_a);
        let _ = std::fs::remove_file(path_b);
        // SAFETY: inside the mapping, past the end of its file: faults, deliberately.
        let v = unsafe { std::ptr::read_volatile(p.cast::<u8>().add(4100)) };
        println!("survived a fault that was not ours: {v}");
        std::process::exit(0);
    }
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "a_sigbus_elsewhere_still_kills_the_process",
            "--nocapture",
        ])
        .env("CHUNKRING_SIGBUS_CHILD", "1")
        .output()
        .unwrap();
    assert_eq!(
        out.status.signal(),
        Some(libc::SIGBUS),
        "{:?}; stdout: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout)
    );
}
