//! The frame header (layout.md §6.1): decode and encode on *copied* bytes, and the rules a
//! header must satisfy before any of its fields is trusted.
//!
//! Nothing here touches shared memory: the consumer copies the 32 header bytes out first,
//! then calls [`FrameHeader::decode`], then [`FrameHeader::check`] against what it knows.

use std::fmt;

use bytemuck::{Pod, Zeroable};

use crate::error::ErrorCode;
use crate::layout::{
    FLAGS_KNOWN, FLAG_CRC, FLAG_ERROR, FLAG_MORE, FLAG_PADDING, FRAME_CRC_BYTES,
    FRAME_HEADER_BYTES, FRAME_MAGIC,
};

/// A decoded frame header; field meanings are those of layout.md §6.1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Pod, Zeroable)]
#[repr(C)]
pub struct FrameHeader {
    /// `FRAME_MAGIC` in a valid frame.
    pub magic: u16,
    /// `FLAG_*` bits.
    pub flags: u16,
    /// Op code (layout.md §7); 0 in padding frames.
    pub op: u16,
    /// 0, or an error code with `FLAG_ERROR`.
    pub status: u16,
    /// Pairs a response with its request; never 0 in a request.
    pub request_id: u64,
    /// Payload bytes in this frame.
    pub payload_len: u32,
    /// Index of this frame within its message.
    pub fragment_index: u32,
    /// Payload bytes of the whole message.
    pub message_len: u64,
}

const _: () = assert!(std::mem::size_of::<FrameHeader>() == FRAME_HEADER_BYTES);

/// Why a header was rejected; each variant names the layout.md rule it breaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameError {
    /// §6.1 `magic`: the first two bytes are not `FRAME_MAGIC`.
    BadMagic {
        /// What was there instead.
        found: u16,
    },
    /// §6.2: a flag bit outside `FLAGS_KNOWN`.
    UnknownFlags {
        /// The whole flags field.
        flags: u16,
    },
    /// §6.1 `status`: a request frame with a non-zero status.
    RequestStatus {
        /// The status found.
        status: u16,
    },
    /// §6.1 `payload_len`: the frame runs past the chunks the producer published.
    PastPublished {
        /// Chunks the frame needs.
        needed: u64,
        /// Chunks published from this frame's start.
        published: u64,
    },
    /// §6.3: the frame runs past the end of the ring, or a padding frame does not end there.
    PastRingEnd {
        /// Chunks the frame needs.
        needed: u64,
        /// Chunks from the frame's start to the ring's end.
        to_end: u64,
    },
    /// §6.4: a single-frame message whose `message_len` differs from its `payload_len`, or
    /// a first fragment whose `message_len` is smaller than its `payload_len`.
    MessageLen {
        /// The header's `message_len`.
        message_len: u64,
        /// The header's `payload_len`.
        payload_len: u32,
    },
    /// §6.1 `request_id`: a request with id 0, which is reserved for error frames.
    ZeroRequestId,
    /// §6.6: the CRC-32 trailer does not match the header and payload as read.
    Checksum {
        /// The trailer's value.
        trailer: u32,
        /// The CRC-32 of the bytes read.
        computed: u32,
    },
    /// §6.6: a frame without `FLAG_CRC` in a region whose frames must all carry it.
    ChecksumMissing,
}

impl FrameError {
    /// The wire code the worker answers with (layout.md §8).
    pub fn code(self) -> ErrorCode {
        match self {
            FrameError::BadMagic { .. }
            | FrameError::UnknownFlags { .. }
            | FrameError::RequestStatus { .. }
            | FrameError::ZeroRequestId => ErrorCode::MalformedHeader,
            FrameError::PastPublished { .. } | FrameError::PastRingEnd { .. } => {
                ErrorCode::FrameLength
            }
            FrameError::MessageLen { .. } => ErrorCode::FragmentSequence,
            FrameError::Checksum { .. } | FrameError::ChecksumMissing => ErrorCode::Checksum,
        }
    }

    /// True when the header's extent cannot be trusted, so the consumer must resynchronise
    /// by discarding everything published (layout.md §6.5).
    pub fn needs_resync(self) -> bool {
        matches!(
            self,
            FrameError::BadMagic { .. }
                | FrameError::PastPublished { .. }
                | FrameError::PastRingEnd { .. }
                | FrameError::Checksum { .. }
                | FrameError::ChecksumMissing
        )
    }
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            FrameError::BadMagic { found } => {
                write!(f, "bad frame magic {found:#06x} (expected {FRAME_MAGIC:#06x}): not a frame header")
            }
            FrameError::UnknownFlags { flags } => {
                write!(f, "unknown flag bits {:#06x} in flags {flags:#06x}", flags & !FLAGS_KNOWN)
            }
            FrameError::RequestStatus { status } => write!(f, "request frame with non-zero status {status}"),
            FrameError::PastPublished { needed, published } => write!(
                f,
                "frame length runs past the published data: needs {needed} chunks, {published} published"
            ),
            FrameError::PastRingEnd { needed, to_end } => {
                write!(f, "frame length runs past the ring's end: needs {needed} chunks, {to_end} before the end")
            }
            FrameError::MessageLen { message_len, payload_len } => {
                write!(f, "message_len {message_len} does not fit payload_len {payload_len}")
            }
            FrameError::ZeroRequestId => {
                f.write_str("request_id 0 is reserved for error frames; the request is not run")
            }
            FrameError::Checksum { trailer, computed } => write!(
                f,
                "frame checksum mismatch (trailer {trailer:#010x}, computed {computed:#010x}): a torn or overwritten frame"
            ),
            FrameError::ChecksumMissing => f.write_str(
                "frame without a checksum (FLAG_CRC) in a region that requires one",
            ),
        }
    }
}

impl std::error::Error for FrameError {}

impl FrameHeader {
    /// A header for one frame of a message (request or response).
    pub fn message(op: u16, request_id: u64, payload_len: u32, message_len: u64) -> FrameHeader {
        FrameHeader {
            magic: FRAME_MAGIC,
            flags: 0,
            op,
            status: 0,
            request_id,
            payload_len,
            fragment_index: 0,
            message_len,
        }
    }

    /// The padding frame that fills `chunks_to_end` chunks of `chunk_bytes` (layout.md §6.3),
    /// leaving room for a CRC trailer when `crc` (§6.6) — unless the padding is too small to
    /// hold one (a single 32-byte chunk), which then goes without.
    pub fn padding(chunks_to_end: u64, chunk_bytes: usize, crc: bool) -> FrameHeader {
        let bytes = chunks_to_end as usize * chunk_bytes;
        let crc = crc && bytes >= FRAME_HEADER_BYTES + FRAME_CRC_BYTES;
        let flags = FLAG_PADDING | if crc { FLAG_CRC } else { 0 };
        let payload_len = (bytes - FRAME_HEADER_BYTES - trailer_len(flags)) as u32;
        FrameHeader {
            magic: FRAME_MAGIC,
            flags,
            payload_len,
            ..FrameHeader::default()
        }
    }

    /// Decodes 32 copied bytes (little-endian fields). Never fails: validation is [`check`](Self::check).
    pub fn decode(bytes: &[u8; FRAME_HEADER_BYTES]) -> FrameHeader {
        let raw: FrameHeader = bytemuck::pod_read_unaligned(bytes);
        FrameHeader {
            magic: u16::from_le(raw.magic),
            flags: u16::from_le(raw.flags),
            op: u16::from_le(raw.op),
            status: u16::from_le(raw.status),
            request_id: u64::from_le(raw.request_id),
            payload_len: u32::from_le(raw.payload_len),
            fragment_index: u32::from_le(raw.fragment_index),
            message_len: u64::from_le(raw.message_len),
        }
    }

    /// Encodes to 32 little-endian bytes.
    pub fn encode(&self) -> [u8; FRAME_HEADER_BYTES] {
        let le = FrameHeader {
            magic: self.magic.to_le(),
            flags: self.flags.to_le(),
            op: self.op.to_le(),
            status: self.status.to_le(),
            request_id: self.request_id.to_le(),
            payload_len: self.payload_len.to_le(),
            fragment_index: self.fragment_index.to_le(),
            message_len: self.message_len.to_le(),
        };
        let mut out = [0u8; FRAME_HEADER_BYTES];
        out.copy_from_slice(bytemuck::bytes_of(&le));
        out
    }

    /// Chunks this frame occupies with chunks of `chunk_bytes` (layout.md §5), its CRC
    /// trailer included (§6.6).
    pub fn chunks(&self, chunk_bytes: usize) -> u64 {
        frame_chunks(
            self.payload_len as usize + trailer_len(self.flags),
            chunk_bytes,
        )
    }

    /// Does a CRC-32 trailer follow the payload (§6.6)?
    pub fn has_crc(&self) -> bool {
        self.flags & FLAG_CRC != 0
    }

    /// A padding frame too small for a CRC trailer: one chunk of 32 bytes (`MIN_CHUNK_BYTES`).
    /// No checksummed frame fits there, so none can be mistaken for it (§6.6).
    pub fn is_padding_without_room_for_crc(&self, chunk_bytes: usize) -> bool {
        self.is_padding()
            && !self.has_crc()
            && self.chunks(chunk_bytes) as usize * chunk_bytes
                < FRAME_HEADER_BYTES + FRAME_CRC_BYTES
    }

    /// Payload bytes the CRC covers after the header: none for a padding frame (its payload
    /// is unspecified), else the payload (§6.6).
    pub fn crc_covered_len(&self) -> usize {
        if self.is_padding() {
            0
        } else {
            self.payload_len as usize
        }
    }

    /// Is this a padding frame?
    pub fn is_padding(&self) -> bool {
        self.flags & FLAG_PADDING != 0
    }

    /// Do more fragments of this message follow?
    pub fn has_more(&self) -> bool {
        self.flags & FLAG_MORE != 0
    }

    /// Is this an error response?
    pub fn is_error(&self) -> bool {
        self.flags & FLAG_ERROR != 0
    }

    /// Checks the header against the ring: magic, flags, and that the frame lies within the
    /// `published` chunks and the `to_end` chunks before the ring's end (padding must end
    /// exactly there). Request-specific rules are in [`check_request`](Self::check_request).
    ///
    /// # Errors
    /// The first rule of layout.md §6 the header breaks.
    pub fn check(&self, chunk_bytes: usize, published: u64, to_end: u64) -> Result<(), FrameError> {
        if self.magic != FRAME_MAGIC {
            return Err(FrameError::BadMagic { found: self.magic });
        }
        let needed = self.chunks(chunk_bytes);
        if needed > to_end || (self.is_padding() && needed != to_end) {
            return Err(FrameError::PastRingEnd { needed, to_end });
        }
        if needed > published {
            return Err(FrameError::PastPublished { needed, published });
        }
        if self.flags & !FLAGS_KNOWN != 0 {
            return Err(FrameError::UnknownFlags { flags: self.flags });
        }
        Ok(())
    }

    /// Rules only requests obey: a non-zero `request_id`, status 0 and a consistent
    /// `message_len`.
    ///
    /// # Errors
    /// [`FrameError::ZeroRequestId`], [`FrameError::RequestStatus`] or [`FrameError::MessageLen`].
    pub fn check_request(&self) -> Result<(), FrameError> {
        if self.request_id == 0 {
            return Err(FrameError::ZeroRequestId);
        }
        if self.status != 0 {
            return Err(FrameError::RequestStatus {
                status: self.status,
            });
        }
        let single = self.fragment_index == 0 && !self.has_more();
        let len = u64::from(self.payload_len);
        if (single && self.message_len != len)
            || (self.fragment_index == 0 && self.message_len < len)
        {
            return Err(FrameError::MessageLen {
                message_len: self.message_len,
                payload_len: self.payload_len,
            });
        }
        Ok(())
    }
}

/// Chunks a frame with `payload_len` payload bytes occupies (layout.md §5); pass the payload
/// plus [`trailer_len`] for a frame with `FLAG_CRC`.
#[inline]
pub fn frame_chunks(payload_len: usize, chunk_bytes: usize) -> u64 {
    (FRAME_HEADER_BYTES + payload_len).div_ceil(chunk_bytes) as u64
}

/// Bytes after the payload of a frame with these flags: `FRAME_CRC_BYTES` with `FLAG_CRC`.
#[inline]
pub fn trailer_len(flags: u16) -> usize {
    if flags & FLAG_CRC != 0 {
        FRAME_CRC_BYTES
    } else {
        0
    }
}

/// The CRC-32 trailer of a frame (layout.md §6.6): `zlib.crc32` of the 32 encoded header
/// bytes followed by `covered` (the payload; nothing for a padding frame).
pub fn frame_crc(header: &[u8; FRAME_HEADER_BYTES], covered: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(header);
    h.update(covered);
    h.finalize()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worked_example_encodes_as_layout_md_shows() {
        let h = FrameHeader::message(1, 1, 6, 6);
        let bytes = h.encode();
        assert_eq!(&bytes[..8], &[0x63, 0x72, 0, 0, 1, 0, 0, 0]);
        assert_eq!(bytes[8], 1);
        assert_eq!(bytes[16], 6);
        assert_eq!(bytes[24], 6);
        assert_eq!(FrameHeader::decode(&bytes), h);
    }

    #[test]
    fn chunk_count_rounds_up_to_whole_chunks() {
        assert_eq!(frame_chunks(0, 64), 1);
        assert_eq!(frame_chunks(32, 64), 1);
        assert_eq!(frame_chunks(33, 64), 2);
        assert_eq!(frame_chunks(0, 32), 1);
        assert_eq!(frame_chunks(1, 32), 2);
    }

    #[test]
    fn padding_fills_exactly_to_the_end() {
        let p = FrameHeader::padding(3, 64, false);
        assert_eq!(p.chunks(64), 3);
        assert!(p.check(64, 3, 3).is_ok());
        assert_eq!(
            p.check(64, 5, 4),
            Err(FrameError::PastRingEnd {
                needed: 3,
                to_end: 4
            })
        );
    }

    #[test]
    fn check_reports_each_rule() {
        let mut h = FrameHeader::message(1, 7, 96, 96);
        assert_eq!(h.check(64, 2, 8), Ok(()));
        assert_eq!(
            h.check(64, 1, 8),
            Err(FrameError::PastPublished {
                needed: 2,
                published: 1
            })
        );
        assert_eq!(
            h.check(64, 8, 1),
            Err(FrameError::PastRingEnd {
                needed: 2,
                to_end: 1
            })
        );
        h.flags = 0x8000;
        assert_eq!(
            h.check(64, 2, 8),
            Err(FrameError::UnknownFlags { flags: 0x8000 })
        );
        h.magic = 0;
        assert!(h.check(64, 2, 8).unwrap_err().needs_resync());
    }

    #[test]
    fn request_rules() {
        let mut h = FrameHeader::message(1, 7, 10, 10);
        assert_eq!(h.check_request(), Ok(()));
        h.message_len = 11;
        assert_eq!(
            h.check_request().unwrap_err().code(),
            ErrorCode::FragmentSequence
        );
        h.flags = FLAG_MORE;
        assert_eq!(h.check_request(), Ok(()));
        h.message_len = 9;
        assert!(h.check_request().is_err());
        h = FrameHeader::message(1, 7, 10, 10);
        h.status = 3;
        assert_eq!(
            h.check_request(),
            Err(FrameError::RequestStatus { status: 3 })
        );
    }

    #[test]
    fn every_error_has_a_lower_case_message_and_a_code() {
        let all = [
            FrameError::BadMagic { found: 1 },
            FrameError::UnknownFlags { flags: 0x10 },
            FrameError::RequestStatus { status: 1 },
            FrameError::PastPublished {
                needed: 2,
                published: 1,
            },
            FrameError::PastRingEnd {
                needed: 2,
                to_end: 1,
            },
            FrameError::MessageLen {
                message_len: 1,
                payload_len: 2,
            },
            FrameError::Checksum {
                trailer: 1,
                computed: 2,
            },
            FrameError::ChecksumMissing,
        ];
        for e in all {
            let s = e.to_string();
            assert!(
                s.chars().next().unwrap().is_lowercase() && !s.ends_with('.'),
                "{s}"
            );
            assert_ne!(e.code(), ErrorCode::Ok);
        }
    }

    #[test]
    fn frame_crc_is_zlib_crc32_of_header_then_payload() {
        // zlib.crc32(b"123456789") == 0xCBF43926, the CRC-32 check value; split anywhere.
        let mut header = [0u8; FRAME_HEADER_BYTES];
        header[..9].copy_from_slice(b"123456789");
        let whole = frame_crc(&header, b"");
        assert_eq!(whole, crc32fast::hash(&header));
        assert_eq!(crc32fast::hash(b"123456789"), 0xCBF4_3926);
        assert_ne!(frame_crc(&header, b"x"), whole);
    }

    #[test]
    fn the_trailer_counts_in_the_chunks_and_padding_leaves_room_for_it() {
        let mut h = FrameHeader::message(1, 7, 28, 28);
        assert_eq!(h.chunks(64), 1);
        h.flags = FLAG_CRC;
        assert_eq!(h.chunks(64), 1, "32 + 28 + 4 = 64 bytes: one chunk");
        h.payload_len = 29;
        assert_eq!(h.chunks(64), 2);
        let one = FrameHeader::padding(1, 32, true);
        assert_eq!(
            (one.flags, one.payload_len),
            (FLAG_PADDING, 0),
            "no room for a trailer"
        );
        assert!(one.is_padding_without_room_for_crc(32));
        assert!(!FrameHeader::padding(1, 64, false).is_padding_without_room_for_crc(64));
        let p = FrameHeader::padding(3, 64, true);
        assert_eq!((p.chunks(64), p.payload_len), (3, 3 * 64 - 36));
        assert!(p.check(64, 3, 3).is_ok());
        assert!(FrameError::Checksum {
            trailer: 0,
            computed: 1
        }
        .needs_resync());
        assert_eq!(FrameError::ChecksumMissing.code(), ErrorCode::Checksum);
    }
}
