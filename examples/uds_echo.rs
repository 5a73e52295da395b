//! A Unix-socket echo server in Rust: the "Unix socket to a native helper" peer of the Python
//! benches (`benches/python/think_time.py`, one-core comparison). Listens on the path given as
//! the first argument, serves one connection of length-prefixed frames (`u32` little-endian
//! length, then the bytes) by sending each back, and exits when the peer closes or sends the
//! length `u32::MAX`. Not part of the library.

use std::io::{Read, Write};
use std::os::unix::net::UnixListener;

fn main() -> std::io::Result<()> {
    let path = std::env::args()
        .nth(1)
        .expect("usage: uds_echo SOCKET_PATH");
    let _ = std::fs::remove_file(&path);
    let listener = UnixListener::bind(&path)?;
    let (mut conn, _) = listener.accept()?;
    let mut buf = Vec::new();
    loop {
        let mut len = [0u8; 4];
        if conn.read_exact(&mut len).is_err() {
            break;
        }
        let n = u32::from_le_bytes(len);
        if n == u32::MAX {
            break;
        }
        buf.resize(n as usize + 4, 0);
        buf[..4].copy_from_slice(&len);
        conn.read_exact(&mut buf[4..])?;
        conn.write_all(&buf)?;
    }
    let _ = std::fs::remove_file(&path);
    Ok(())
}
