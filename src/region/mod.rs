//! The region: a header page and two rings in one mapping (layout.md §1, §3, §4, §12).
//!
//! A [`Region`] owns its mapping (POSIX shm, a file, or an aligned heap buffer for tests and
//! Miri) and hands out [`MappedMemory`] views of its rings. Header fields are read and written
//! only with single aligned atomic accesses, through the typed accessors of `header.rs`;
//! nothing here forms a reference to shared bytes.

use std::fmt;
use std::ptr::NonNull;
use std::sync::Arc;

use crate::barrier::barrier_read;
use crate::layout::*;
use crate::ring::{MappedMemory, RingPlace};

pub mod file;
pub mod guard;
mod header;
pub mod heap;
pub mod shm;
pub mod sigbus;

pub use header::{Header, RingPositions};

/// Sizes chosen when a region is created.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RegionConfig {
    /// Bytes of each ring (power of two, `MIN_RING_BYTES..=MAX_RING_BYTES`).
    pub ring_bytes: u64,
    /// Bytes per chunk (power of two, `MIN_CHUNK_BYTES..=MAX_CHUNK_BYTES`).
    pub chunk_bytes: u32,
    /// Largest reassembled request the worker accepts.
    pub max_message_bytes: u64,
    /// The worker's park timeout in microseconds.
    pub park_timeout_us: u64,
    /// Frame checksum mode: `FRAME_CRC_OPTIONAL` or `FRAME_CRC_REQUIRED` (layout.md §6.6).
    pub frame_crc: u32,
}

impl Default for RegionConfig {
    fn default() -> Self {
        RegionConfig {
            ring_bytes: DEFAULT_RING_BYTES,
            chunk_bytes: DEFAULT_CHUNK_BYTES,
            max_message_bytes: DEFAULT_MAX_MESSAGE_BYTES,
            park_timeout_us: 50_000,
            frame_crc: FRAME_CRC_OPTIONAL,
        }
    }
}

impl RegionConfig {
    /// Total bytes of a region with this configuration.
    pub fn region_bytes(&self) -> u64 {
        HEADER_BYTES + 2 * self.ring_bytes
    }

    /// Checks the sizes against layout.md §3.
    ///
    /// # Errors
    /// A [`RegionError::Config`] naming the bad value.
    pub fn validate(&self) -> Result<(), RegionError> {
        let c = self.chunk_bytes;
        if !c.is_power_of_two() || !(MIN_CHUNK_BYTES..=MAX_CHUNK_BYTES).contains(&c) {
            return Err(RegionError::Config(format!(
                "chunk size {c} must be a power of two between {MIN_CHUNK_BYTES} and {MAX_CHUNK_BYTES}"
            )));
        }
        let r = self.ring_bytes;
        if !r.is_power_of_two() || !(MIN_RING_BYTES..=MAX_RING_BYTES).contains(&r) {
            return Err(RegionError::Config(format!(
                "ring size {r} must be a power of two between {MIN_RING_BYTES} and {MAX_RING_BYTES} bytes"
            )));
        }
        if r < u64::from(c) * 2 {
            return Err(RegionError::Config(format!(
                "ring size {r} holds {} chunk(s) of {c} bytes; a ring needs at least 2 chunks",
                r / u64::from(c)
            )));
        }
        if self.park_timeout_us == 0 {
            return Err(RegionError::Config(
                "park timeout must be at least 1 µs".to_owned(),
            ));
        }
        if self.frame_crc > FRAME_CRC_REQUIRED {
            return Err(RegionError::Config(format!(
                "frame checksum mode {} is neither {FRAME_CRC_OPTIONAL} (optional) nor {FRAME_CRC_REQUIRED} (required)",
                self.frame_crc
            )));
        }
        Ok(())
    }
}

/// Why a region could not be created or attached.
#[derive(Debug)]
pub enum RegionError {
    /// A region name outside `[A-Za-z0-9_-]{1,64}`.
    BadName(String),
    /// A size or option outside layout.md's ranges.
    Config(String),
    /// A region of that name already exists and its worker is alive.
    Exists(String),
    /// No region of that name (or file) exists.
    NotFound(String),
    /// The header does not describe a region this build can use.
    BadHeader(String),
    /// The operating system refused.
    Os(String),
    /// The region's file may not be used: not a regular file owned by this user with mode
    /// 0600, or (for `--file`) an existing file that is not a chunkring region.
    Refused(String),
}

impl fmt::Display for RegionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RegionError::BadName(m) => write!(f, "bad region name: {m}"),
            RegionError::Config(m) => write!(f, "bad region configuration: {m}"),
            RegionError::Exists(m) => write!(f, "region exists: {m}"),
            RegionError::NotFound(m) => write!(f, "region not found: {m}"),
            RegionError::BadHeader(m) => write!(f, "bad region header: {m}"),
            RegionError::Os(m) => write!(f, "operating system error: {m}"),
            RegionError::Refused(m) => write!(f, "region refused: {m}"),
        }
    }
}

impl std::error::Error for RegionError {}

/// Checks a region name: `[A-Za-z0-9_-]{1,64}` (layout.md §12).
///
/// # Errors
/// [`RegionError::BadName`] saying what is wrong.
pub fn validate_name(name: &str) -> Result<(), RegionError> {
    if name.is_empty() || name.len() > 64 {
        return Err(RegionError::BadName(format!(
            "{name:?} must be 1 to 64 characters"
        )));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '_' || *c == '-'))
    {
        return Err(RegionError::BadName(format!(
            "{name:?} contains {c:?}; use letters, digits, '_' and '-'"
        )));
    }
    Ok(())
}

/// The memory behind a region.
pub trait Backing: Send + Sync + fmt::Debug {
    /// Start of the mapping (8-byte aligned; page aligned for shm and files).
    fn base(&self) -> NonNull<u8>;
    /// Bytes mapped.
    fn len(&self) -> usize;
    /// True for an empty mapping (never, for a valid region).
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// The size of the file behind the mapping now (`fstat`), for a backing that keeps the
    /// file open (the worker's); `None` otherwise.
    fn file_len(&self) -> Option<u64> {
        None
    }
}

/// A mapped region.
#[derive(Debug)]
pub struct Region {
    backing: Arc<dyn Backing>,
    base: NonNull<u8>,
    len: usize,
    header: Header,
}

impl Clone for Region {
    /// Another handle on the same mapping.
    fn clone(&self) -> Region {
        Region::wrap(Arc::clone(&self.backing))
    }
}

// SAFETY: Region only reads and writes the mapping with atomics and copies (see module docs);
// the backing is Send + Sync and kept alive by the Arc.
unsafe impl Send for Region {}
// SAFETY: as for Send: no method hands out references into the mapping.
unsafe impl Sync for Region {}

impl Region {
    /// Wraps a fresh, zero-filled backing and writes a header for `config` into it, with
    /// `WORKER_STATE` = `WORKER_STARTING`.
    ///
    /// # Errors
    /// [`RegionError::Config`] when the backing is smaller than the configuration needs.
    pub fn init(backing: Arc<dyn Backing>, config: &RegionConfig) -> Result<Region, RegionError> {
        config.validate()?;
        let region = Region::wrap(backing);
        if (region.len as u64) < config.region_bytes() {
            return Err(RegionError::Config(format!(
                "mapping of {} bytes is smaller than {}",
                region.len,
                config.region_bytes()
            )));
        }
        let chunks = config.ring_bytes / u64::from(config.chunk_bytes);
        // SAFETY: the magic's 8 bytes lie inside the mapping (checked above); no one else
        // reads the header until WORKER_READY is stored below.
        unsafe { std::ptr::copy_nonoverlapping(REGION_MAGIC.as_ptr(), region.base.as_ptr(), 8) };
        let h = &region.header;
        h.set_u32(VERSION_OFFSET, LAYOUT_VERSION);
        h.set_u32(ENDIAN_OFFSET, ENDIAN_MARK);
        h.set_u32(HEADER_BYTES_OFFSET, HEADER_BYTES as u32);
        h.set_u32(CHUNK_BYTES_OFFSET, config.chunk_bytes);
        h.set_u64(REQ_RING_OFFSET_OFFSET, HEADER_BYTES);
        h.set_u64(REQ_RING_CHUNKS_OFFSET, chunks);
        h.set_u64(RESP_RING_OFFSET_OFFSET, HEADER_BYTES + config.ring_bytes);
        h.set_u64(RESP_RING_CHUNKS_OFFSET, chunks);
        h.set_u64(REGION_BYTES_OFFSET, config.region_bytes());
        h.set_u32(WORKER_PID_OFFSET, std::process::id());
        h.set_u32(WORKER_STATE_OFFSET, WORKER_STARTING);
        h.set_u64(MAX_MESSAGE_BYTES_OFFSET, config.max_message_bytes);
        h.set_u64(PARK_TIMEOUT_US_OFFSET, config.park_timeout_us);
        h.set_u32(FRAME_CRC_OFFSET, config.frame_crc);
        Ok(region)
    }

    /// Wraps a backing that already holds a region; call [`validate`](Self::validate) next.
    pub fn wrap(backing: Arc<dyn Backing>) -> Region {
        let base = backing.base();
        let len = backing.len();
        // SAFETY: `base` is the backing's 8-byte (or page) aligned mapping, which `backing`
        // keeps alive as long as this Region, and so as long as its `header`; peers follow
        // layout.md §10's access rules.
        let header = unsafe { Header::new(base) };
        Region {
            backing,
            base,
            len,
            header,
        }
    }

    /// The header page: typed access to its fields (states, pids, heartbeat, stats).
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// Validates the header against layout.md §3 (magic, version, endianness, sizes).
    ///
    /// # Errors
    /// [`RegionError::BadHeader`] naming the first field that is wrong.
    pub fn validate(&self) -> Result<RegionConfig, RegionError> {
        let bad = |m: String| Err(RegionError::BadHeader(m));
        if self.len < HEADER_BYTES as usize {
            return bad(format!(
                "mapping of {} bytes is smaller than the {HEADER_BYTES}-byte header",
                self.len
            ));
        }
        let mut magic = [0u8; 8];
        // SAFETY: 8 bytes at the start of a mapping of at least HEADER_BYTES; copied out.
        unsafe { std::ptr::copy_nonoverlapping(self.base.as_ptr(), magic.as_mut_ptr(), 8) };
        if magic != REGION_MAGIC {
            return bad(format!("magic {magic:02x?} is not {REGION_MAGIC:?}: not a chunkring region (or not initialised yet)"));
        }
        barrier_read();
        let version = self.header.u32(VERSION_OFFSET);
        if version != LAYOUT_VERSION {
            return bad(format!(
                "layout version {version}, this build reads version {LAYOUT_VERSION}"
            ));
        }
        let endian = self.header.u32(ENDIAN_OFFSET);
        if endian != ENDIAN_MARK {
            return bad(format!("endianness mark {endian:#010x}: the region was written by a peer of another byte order"));
        }
        let header = self.header.u32(HEADER_BYTES_OFFSET);
        if u64::from(header) != HEADER_BYTES {
            return bad(format!("header of {header} bytes, expected {HEADER_BYTES}"));
        }
        let chunk_bytes = self.header.u32(CHUNK_BYTES_OFFSET);
        let req_chunks = self.header.u64(REQ_RING_CHUNKS_OFFSET);
        let resp_chunks = self.header.u64(RESP_RING_CHUNKS_OFFSET);
        if req_chunks != resp_chunks {
            return bad(format!(
                "rings of {req_chunks} and {resp_chunks} chunks: this build needs equal rings"
            ));
        }
        let ring_bytes = req_chunks.saturating_mul(u64::from(chunk_bytes));
        let config = RegionConfig {
            ring_bytes,
            chunk_bytes,
            max_message_bytes: self.header.u64(MAX_MESSAGE_BYTES_OFFSET),
            park_timeout_us: self.header.u64(PARK_TIMEOUT_US_OFFSET),
            frame_crc: self.header.u32(FRAME_CRC_OFFSET),
        };
        config
            .validate()
            .map_err(|e| RegionError::BadHeader(e.to_string()))?;
        if self.header.u64(REQ_RING_OFFSET_OFFSET) != HEADER_BYTES
            || self.header.u64(RESP_RING_OFFSET_OFFSET) != HEADER_BYTES + ring_bytes
            || self.header.u64(REGION_BYTES_OFFSET) != config.region_bytes()
        {
            return bad("ring offsets or region size do not match the ring sizes".to_owned());
        }
        if config.region_bytes() > self.len as u64 {
            return bad(format!(
                "header says {} bytes, the mapping has {}",
                config.region_bytes(),
                self.len
            ));
        }
        Ok(config)
    }

    fn ring(
        &self,
        data_offset_field: usize,
        consumer_park: usize,
        producer_park: usize,
        head: usize,
        tail: usize,
    ) -> Result<MappedMemory, RegionError> {
        let place = RingPlace {
            data_offset: self.header.u64(data_offset_field) as usize,
            chunk_count: self.header.u64(REQ_RING_CHUNKS_OFFSET),
            chunk_bytes: self.header.u32(CHUNK_BYTES_OFFSET) as usize,
            head_offset: head,
            tail_offset: tail,
            consumer_park_offset: consumer_park,
            producer_park_offset: producer_park,
        };
        let keep: Arc<dyn crate::ring::memory::KeepAlive> = Arc::new(Arc::clone(&self.backing));
        // SAFETY: `base`/`len` describe the backing's live mapping, which `keep` keeps alive;
        // the base is page- or 8-byte aligned; peers follow layout.md §10's access rules.
        // `new` checks that the ring and its words fit the mapping.
        unsafe { MappedMemory::new(self.base, self.len, place, keep) }
            .map_err(RegionError::BadHeader)
    }

    /// The request ring (client → worker): consumer parks on `WORKER_FUTEX`.
    ///
    /// # Errors
    /// [`RegionError::BadHeader`] when the header's ring does not fit the mapping.
    pub fn request_ring(&self) -> Result<MappedMemory, RegionError> {
        self.ring(
            REQ_RING_OFFSET_OFFSET,
            WORKER_FUTEX_OFFSET,
            CLIENT_FUTEX_OFFSET,
            REQ_HEAD_OFFSET,
            REQ_TAIL_OFFSET,
        )
    }

    /// The response ring (worker → client): consumer parks on `CLIENT_FUTEX`.
    ///
    /// # Errors
    /// [`RegionError::BadHeader`] when the header's ring does not fit the mapping.
    pub fn response_ring(&self) -> Result<MappedMemory, RegionError> {
        self.ring(
            RESP_RING_OFFSET_OFFSET,
            CLIENT_FUTEX_OFFSET,
            WORKER_FUTEX_OFFSET,
            RESP_HEAD_OFFSET,
            RESP_TAIL_OFFSET,
        )
    }

    /// True when the region's file is now shorter than the mapping: another process
    /// truncated it (layout.md §12 "Truncated region"). One `fstat`; false for a backing that
    /// does not keep its file open.
    pub fn truncated(&self) -> bool {
        self.backing.file_len().is_some_and(|n| n < self.len as u64)
    }

    /// Bytes mapped.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Always false: a region has at least its header page.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_validated() {
        assert!(validate_name("ui-1_a").is_ok());
        for bad in ["", "a/b", "../x", "a b", &"x".repeat(65), "é"] {
            assert!(
                matches!(validate_name(bad), Err(RegionError::BadName(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn configs_outside_layout_ranges_are_refused() {
        let ok = RegionConfig {
            ring_bytes: 4096,
            chunk_bytes: 32,
            ..RegionConfig::default()
        };
        assert!(ok.validate().is_ok());
        for bad in [
            RegionConfig {
                chunk_bytes: 48,
                ..ok
            },
            RegionConfig {
                chunk_bytes: 16,
                ..ok
            },
            RegionConfig {
                ring_bytes: 3000,
                ..ok
            },
            RegionConfig {
                ring_bytes: 2048,
                ..ok
            },
            RegionConfig {
                park_timeout_us: 0,
                ..ok
            },
        ] {
            assert!(bad.validate().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_fresh_header_validates_and_a_damaged_one_does_not() {
        let cfg = RegionConfig {
            ring_bytes: 4096,
            chunk_bytes: 64,
            ..RegionConfig::default()
        };
        let region = heap::HeapBacking::region(&cfg).unwrap();
        assert_eq!(region.validate().unwrap(), cfg);
        assert_eq!(region.header().worker_state(), WORKER_STARTING);
        region.header().set_ready();
        assert_eq!(region.header().worker_state(), WORKER_READY);
        region.header.set_u32(VERSION_OFFSET, 2);
        let e = region.validate().unwrap_err().to_string();
        assert!(
            e.contains("layout version 2, this build reads version 1"),
            "{e}"
        );
        region.header.set_u32(VERSION_OFFSET, 1);
        region
            .header
            .set_u32(ENDIAN_OFFSET, ENDIAN_MARK.swap_bytes());
        assert!(region
            .validate()
            .unwrap_err()
            .to_string()
            .contains("byte order"));
        region.header.set_u32(ENDIAN_OFFSET, ENDIAN_MARK);
        region.header.set_u32(CHUNK_BYTES_OFFSET, 100);
        assert!(region.validate().is_err());
        region.header.set_u32(CHUNK_BYTES_OFFSET, 64);
        region.header.set_u64(REGION_BYTES_OFFSET, 1 << 40);
        assert!(region.validate().is_err());
    }

    #[test]
    fn stats_accumulate() {
        let region = heap::HeapBacking::region(&RegionConfig {
            ring_bytes: 4096,
            ..RegionConfig::default()
        })
        .unwrap();
        region.header().stat_add(STAT_REQUESTS, 2);
        region.header().stat_add(STAT_REQUESTS, 3);
        assert_eq!(region.header().stat(STAT_REQUESTS), 5);
        region.header().stat_add(99, 1);
        assert_eq!(region.header().stat(99), 0);
        let mut counts = [0; STATS_COUNT];
        counts[STAT_REQUESTS] = 1;
        counts[STAT_MALFORMED] = 4;
        region.header().add_stats(&counts);
        let stats = region.header().stats();
        assert_eq!((stats[STAT_REQUESTS], stats[STAT_MALFORMED]), (6, 4));
        assert_eq!(stats.iter().sum::<u64>(), 10);
    }
}
