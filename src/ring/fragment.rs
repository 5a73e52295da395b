//! Messages larger than one frame: split on the producer side, reassembled on the consumer
//! side (layout.md §6.4). Neither side ever needs a frame larger than a quarter of the ring,
//! so no message size can deadlock the rings.

use super::memory::RingMemory;
use super::producer::{Producer, PushError};
use crate::error::ErrorCode;
use crate::frame::{trailer_len, FrameHeader};
use crate::layout::{FLAG_CRC, FLAG_ERROR, FLAG_MORE, FRAME_MAGIC};

/// A message being written as one or more frames; resumable when the ring is full.
#[derive(Debug)]
pub struct MessageWriter {
    header: FrameHeader,
    payload: Vec<u8>,
    sent: usize,
    started: bool,
}

impl MessageWriter {
    /// A normal message (request or successful response).
    pub fn new(op: u16, request_id: u64, payload: Vec<u8>) -> MessageWriter {
        let header = FrameHeader::message(op, request_id, 0, payload.len() as u64);
        MessageWriter {
            header,
            payload,
            sent: 0,
            started: false,
        }
    }

    /// An error response: `FLAG_ERROR`, `status` = `code`, payload = `message`.
    pub fn error(op: u16, request_id: u64, code: ErrorCode, message: &str) -> MessageWriter {
        let mut w = MessageWriter::new(op, request_id, message.as_bytes().to_vec());
        w.header.flags = FLAG_ERROR;
        w.header.status = code.to_u16();
        w
    }

    /// Every frame of this message carries a CRC-32 trailer when `on` (layout.md §6.6).
    #[must_use]
    pub fn with_crc(mut self, on: bool) -> MessageWriter {
        if on {
            self.header.flags |= FLAG_CRC;
        } else {
            self.header.flags &= !FLAG_CRC;
        }
        self
    }

    /// The request id this message answers.
    pub fn request_id(&self) -> u64 {
        self.header.request_id
    }

    /// Payload bytes of the whole message.
    pub fn len(&self) -> usize {
        self.payload.len()
    }

    /// True for an empty payload.
    pub fn is_empty(&self) -> bool {
        self.payload.is_empty()
    }

    /// Does this message take more than one frame on a ring of `geo`?
    pub fn is_fragmented(&self) -> bool {
        self.header.fragment_index > 1 || (self.started && self.sent < self.payload.len())
    }

    /// Is this an error response?
    pub fn is_error(&self) -> bool {
        self.header.is_error()
    }

    /// Writes as many frames as fit. `Ok(true)` once the last frame is written (not yet
    /// published), `Ok(false)` when the ring filled up first; call again after it drains.
    /// Returns the number of frames written through `frames`.
    ///
    /// # Errors
    /// [`PushError::TooLarge`] only if the ring is smaller than two chunks.
    pub fn write<M: RingMemory>(
        &mut self,
        p: &mut Producer<M>,
        frames: &mut u64,
    ) -> Result<bool, PushError> {
        let max = p.geometry().max_frame_payload() - trailer_len(self.header.flags);
        while !self.started || self.sent < self.payload.len() {
            let len = (self.payload.len() - self.sent).min(max);
            let mut h = self.header;
            if self.sent + len < self.payload.len() {
                h.flags |= FLAG_MORE;
            }
            match p.try_push(&h, &self.payload[self.sent..self.sent + len]) {
                Ok(()) => {}
                Err(PushError::Full) => return Ok(false),
                Err(e) => return Err(e),
            }
            *frames += 1;
            self.started = true;
            self.sent += len;
            self.header.fragment_index += 1;
        }
        Ok(true)
    }
}

/// A request the consumer must answer with an error because its fragments broke §6.4.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FragmentError {
    /// The request it concerns.
    pub request_id: u64,
    /// Its op.
    pub op: u16,
    /// `FRAGMENT_SEQUENCE` or `MESSAGE_TOO_LARGE`.
    pub code: ErrorCode,
    /// What went wrong, lower-case.
    pub message: String,
}

/// What one frame contributed.
#[derive(Debug, PartialEq, Eq)]
pub enum Reassembled {
    /// A single-frame message: its payload is the frame's payload (still in the caller's buffer).
    Single(FrameHeader),
    /// The last fragment arrived: the whole message.
    Whole(FrameHeader, Vec<u8>),
    /// A fragment was stored; more follow.
    Partial,
    /// A fragment of a message already answered with an error; dropped.
    Dropped,
}

#[derive(Debug)]
struct Open {
    header: FrameHeader,
    next_index: u32,
    buf: Vec<u8>,
}

/// Reassembles fragmented messages; enforces `MAX_MESSAGE_BYTES` and the sequence rules.
#[derive(Debug)]
pub struct Reassembler {
    max_message: u64,
    open: Option<Open>,
    /// Request id of a message whose remaining fragments are dropped.
    dropping: Option<u64>,
    abandoned: Option<FragmentError>,
}

impl Reassembler {
    /// A reassembler that refuses messages over `max_message` bytes.
    pub fn new(max_message: u64) -> Reassembler {
        Reassembler {
            max_message,
            open: None,
            dropping: None,
            abandoned: None,
        }
    }

    /// A message left incomplete by a new first fragment: answer it with this error.
    pub fn take_abandoned(&mut self) -> Option<FragmentError> {
        self.abandoned.take()
    }

    /// Feeds one validated frame; `payload` is its payload.
    ///
    /// # Errors
    /// A [`FragmentError`] to answer; the partial message (if any) is dropped.
    pub fn accept(
        &mut self,
        h: &FrameHeader,
        payload: &[u8],
    ) -> Result<Reassembled, FragmentError> {
        debug_assert_eq!(h.magic, FRAME_MAGIC);
        if h.fragment_index == 0 {
            self.dropping = None;
            if let Some(open) = self.open.take() {
                self.abandoned = Some(seq_error(
                    &open.header,
                    "abandoned by a new message before its last fragment",
                ));
            }
            if h.message_len > self.max_message {
                if h.has_more() {
                    self.dropping = Some(h.request_id);
                }
                return Err(FragmentError {
                    request_id: h.request_id,
                    op: h.op,
                    code: ErrorCode::MessageTooLarge,
                    message: format!(
                        "message of {} bytes exceeds the worker's limit of {} bytes",
                        h.message_len, self.max_message
                    ),
                });
            }
            if !h.has_more() {
                return Ok(Reassembled::Single(*h));
            }
            let mut buf = Vec::with_capacity(h.message_len as usize);
            buf.extend_from_slice(payload);
            self.open = Some(Open {
                header: *h,
                next_index: 1,
                buf,
            });
            return Ok(Reassembled::Partial);
        }
        if self.dropping == Some(h.request_id) {
            if !h.has_more() {
                self.dropping = None;
            }
            return Ok(Reassembled::Dropped);
        }
        let Some(open) = self.open.as_mut() else {
            return Err(seq_error(
                h,
                &format!("fragment {} with no open message", h.fragment_index),
            ));
        };
        let first = open.header;
        let problem = if h.request_id != first.request_id
            || h.op != first.op
            || h.message_len != first.message_len
        {
            Some(format!(
                "fragment {} belongs to another message (request id {}, op {:#06x})",
                h.fragment_index, h.request_id, h.op
            ))
        } else if h.fragment_index != open.next_index {
            Some(format!(
                "fragment {} arrived where {} was expected",
                h.fragment_index, open.next_index
            ))
        } else if open.buf.len() as u64 + payload.len() as u64 > first.message_len {
            Some(format!(
                "fragments exceed message_len {}",
                first.message_len
            ))
        } else if !h.has_more() && open.buf.len() + payload.len() != first.message_len as usize {
            Some(format!(
                "last fragment leaves the message short: {} of {} bytes",
                open.buf.len() + payload.len(),
                first.message_len
            ))
        } else {
            None
        };
        if let Some(problem) = problem {
            self.open = None;
            if h.has_more() && h.request_id == first.request_id {
                self.dropping = Some(h.request_id);
            }
            return Err(seq_error(&first, &problem));
        }
        open.buf.extend_from_slice(payload);
        open.next_index += 1;
        if h.has_more() {
            return Ok(Reassembled::Partial);
        }
        Ok(match self.open.take() {
            Some(open) => Reassembled::Whole(open.header, open.buf),
            None => Reassembled::Partial, // unreachable: `open` was Some above
        })
    }
}

fn seq_error(h: &FrameHeader, what: &str) -> FragmentError {
    FragmentError {
        request_id: h.request_id,
        op: h.op,
        code: ErrorCode::FragmentSequence,
        message: what.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frag(id: u64, index: u32, more: bool, len: u32, total: u64) -> FrameHeader {
        let mut h = FrameHeader::message(1, id, len, total);
        h.fragment_index = index;
        if more {
            h.flags |= FLAG_MORE;
        }
        h
    }

    #[test]
    fn fragments_reassemble_in_order() {
        let mut r = Reassembler::new(100);
        assert_eq!(
            r.accept(&frag(1, 0, true, 2, 5), b"ab"),
            Ok(Reassembled::Partial)
        );
        assert_eq!(
            r.accept(&frag(1, 1, true, 2, 5), b"cd"),
            Ok(Reassembled::Partial)
        );
        match r.accept(&frag(1, 2, false, 1, 5), b"e").unwrap() {
            Reassembled::Whole(h, buf) => {
                assert_eq!(h.request_id, 1);
                assert_eq!(buf, b"abcde");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_gap_is_a_sequence_error_and_the_rest_is_dropped() {
        let mut r = Reassembler::new(100);
        r.accept(&frag(1, 0, true, 2, 6), b"ab").unwrap();
        let e = r.accept(&frag(1, 2, true, 2, 6), b"ef").unwrap_err();
        assert_eq!(e.code, ErrorCode::FragmentSequence);
        assert!(
            e.message
                .contains("fragment 2 arrived where 1 was expected"),
            "{}",
            e.message
        );
        assert_eq!(
            r.accept(&frag(1, 3, false, 0, 6), b""),
            Ok(Reassembled::Dropped)
        );
        assert_eq!(
            r.accept(&frag(2, 0, false, 1, 1), b"x"),
            Ok(Reassembled::Single(frag(2, 0, false, 1, 1)))
        );
    }

    #[test]
    fn oversized_messages_are_refused_and_drained() {
        let mut r = Reassembler::new(4);
        let e = r.accept(&frag(9, 0, true, 2, 10), b"ab").unwrap_err();
        assert_eq!(e.code, ErrorCode::MessageTooLarge);
        assert_eq!(
            r.accept(&frag(9, 1, false, 8, 10), &[0; 8]),
            Ok(Reassembled::Dropped)
        );
    }

    #[test]
    fn a_new_message_abandons_the_open_one() {
        let mut r = Reassembler::new(100);
        r.accept(&frag(1, 0, true, 2, 6), b"ab").unwrap();
        assert!(matches!(
            r.accept(&frag(2, 0, false, 1, 1), b"x"),
            Ok(Reassembled::Single(_))
        ));
        assert_eq!(r.take_abandoned().unwrap().request_id, 1);
    }

    #[test]
    fn overrun_and_short_endings_are_caught() {
        let mut r = Reassembler::new(100);
        r.accept(&frag(1, 0, true, 4, 5), b"abcd").unwrap();
        assert!(r.accept(&frag(1, 1, false, 2, 5), b"ef").is_err());
        r.accept(&frag(3, 0, true, 1, 5), b"a").unwrap();
        let e = r.accept(&frag(3, 1, false, 1, 5), b"b").unwrap_err();
        assert!(e.message.contains("short"), "{}", e.message);
        assert!(r
            .accept(&frag(4, 1, false, 1, 5), b"b")
            .unwrap_err()
            .message
            .contains("no open message"));
    }
}
