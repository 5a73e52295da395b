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
    /// Holds the message at `payload[start..end]`.
    payload: Vec<u8>,
    start: usize,
    end: usize,
    /// Bytes of the message written so far.
    sent: usize,
    started: bool,
}

impl MessageWriter {
    /// A normal message (request or successful response).
    pub fn new(op: u16, request_id: u64, payload: Vec<u8>) -> MessageWriter {
        let end = payload.len();
        MessageWriter::part_of(op, request_id, payload, 0..end)
    }

    /// A normal message that is `buf[part]`: an answer that is part of a buffer the caller
    /// already holds (echo answers with its request's body, in the buffer the request was
    /// copied out into) is written from there, without a copy of its own.
    /// [`into_buffer`](Self::into_buffer) hands `buf` back for reuse.
    ///
    /// # Panics
    /// If `part` is not within `buf`.
    pub fn part_of(
        op: u16,
        request_id: u64,
        buf: Vec<u8>,
        part: std::ops::Range<usize>,
    ) -> MessageWriter {
        assert!(
            part.start <= part.end && part.end <= buf.len(),
            "part within the buffer"
        );
        let header = FrameHeader::message(op, request_id, 0, part.len() as u64);
        MessageWriter {
            header,
            payload: buf,
            start: part.start,
            end: part.end,
            sent: 0,
            started: false,
        }
    }

    /// The buffer the message was written from, for the caller to reuse.
    pub fn into_buffer(self) -> Vec<u8> {
        self.payload
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
        self.end - self.start
    }

    /// True for an empty payload.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Does this message take more than one frame on a ring of `geo`?
    pub fn is_fragmented(&self) -> bool {
        self.header.fragment_index > 1 || (self.started && self.sent < self.len())
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
        let message = &self.payload[self.start..self.end];
        while !self.started || self.sent < message.len() {
            let len = (message.len() - self.sent).min(max);
            let mut h = self.header;
            if self.sent + len < message.len() {
                h.flags |= FLAG_MORE;
            }
            match p.try_push(&h, &message[self.sent..self.sent + len]) {
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

/// What one frame contributed. The bytes stay in the caller's buffer (the one it copied the
/// frame's payload into, at [`Reassembler::landing`]).
#[derive(Debug, PartialEq, Eq)]
pub enum Reassembled {
    /// A single-frame message: its payload is `buf[..payload_len]`.
    Single(FrameHeader),
    /// The last fragment arrived: the whole message is `buf[..message_len]`.
    Whole(FrameHeader),
    /// A fragment was stored; more follow.
    Partial,
    /// A fragment of a message already answered with an error; dropped.
    Dropped,
}

#[derive(Debug)]
struct Open {
    header: FrameHeader,
    next_index: u32,
    /// Bytes of the message in the caller's buffer so far, at `buf[..received]`.
    received: usize,
}

/// Reassembles fragmented messages in the caller's buffer, where each frame's payload is
/// copied out of the ring straight after the bytes already received (`Consumer::poll_at` at
/// [`landing`](Self::landing)): a message is copied once, whatever its fragments. Enforces
/// `MAX_MESSAGE_BYTES` and the sequence rules; a frame is checked after its copy-out (as
/// every frame is: the copy is what is trusted, §6.5), so a rejected fragment only ever
/// wrote into bytes past the message, at most one ring's worth.
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

    /// Where the next frame's payload goes in the caller's buffer: right after the open
    /// message's bytes, else at 0. At most the open message's `message_len`, so at most
    /// `max_message`.
    pub fn landing(&self) -> usize {
        self.open.as_ref().map_or(0, |o| o.received)
    }

    /// Feeds one validated frame whose payload the caller copied to
    /// `buf[landing..landing + payload_len]` (`landing` as [`landing`](Self::landing) said
    /// before this call). A new message's first frame that landed after an open message is
    /// moved to the front (the open one is abandoned: a rare, broken client). A fragmented
    /// message's first frame reserves room for all of it (`message_len`, at most
    /// `max_message`), so the fragments that follow land without a reallocation.
    ///
    /// # Errors
    /// A [`FragmentError`] to answer; the partial message (if any) is dropped.
    pub fn accept(
        &mut self,
        h: &FrameHeader,
        buf: &mut Vec<u8>,
    ) -> Result<Reassembled, FragmentError> {
        debug_assert_eq!(h.magic, FRAME_MAGIC);
        let at = self.landing();
        let len = h.payload_len as usize;
        if buf.len() < at + len {
            // Not where `landing` said: the caller's bug, refused rather than read past `buf`.
            self.open = None;
            return Err(seq_error(
                h,
                "fragment payload not where the reassembler expects it",
            ));
        }
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
                let limit = format!("exceeds the worker's limit of {} bytes", self.max_message);
                return Err(too_large(h, &limit));
            }
            if at > 0 {
                buf.copy_within(at..at + len, 0);
            }
            if !h.has_more() {
                return Ok(Reassembled::Single(*h));
            }
            // `message_len` ≤ `max_message` (checked above), the bound on what we hold. The
            // limit comes from the region's header: when the allocator cannot give that
            // much (or it is past `isize::MAX`), the message is refused, the worker does not
            // abort.
            let want = usize::try_from(h.message_len).unwrap_or(usize::MAX);
            if buf
                .try_reserve_exact(want.saturating_sub(buf.len()))
                .is_err()
            {
                self.dropping = Some(h.request_id);
                return Err(too_large(h, "is more than the worker could reserve"));
            }
            self.open = Some(Open {
                header: *h,
                next_index: 1,
                received: len,
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
        } else if open.received as u64 + len as u64 > first.message_len {
            Some(format!(
                "fragments exceed message_len {}",
                first.message_len
            ))
        } else if !h.has_more() && open.received + len != first.message_len as usize {
            Some(format!(
                "last fragment leaves the message short: {} of {} bytes",
                open.received + len,
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
        open.received += len;
        open.next_index += 1;
        if h.has_more() {
            return Ok(Reassembled::Partial);
        }
        self.open = None;
        Ok(Reassembled::Whole(first))
    }
}

/// `MESSAGE_TOO_LARGE` for the message `h` opens: "message of N bytes {why}".
fn too_large(h: &FrameHeader, why: &str) -> FragmentError {
    FragmentError {
        request_id: h.request_id,
        op: h.op,
        code: ErrorCode::MessageTooLarge,
        message: format!("message of {} bytes {why}", h.message_len),
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

    /// What `Consumer::poll_at` does: the payload copied in at `landing`, then accepted.
    fn feed(
        r: &mut Reassembler,
        buf: &mut Vec<u8>,
        h: FrameHeader,
        payload: &[u8],
    ) -> Result<Reassembled, FragmentError> {
        let at = r.landing();
        if buf.len() < at + payload.len() {
            buf.resize(at + payload.len(), 0);
        }
        buf[at..at + payload.len()].copy_from_slice(payload);
        r.accept(&h, buf)
    }

    #[test]
    fn fragments_reassemble_in_order() {
        let (mut r, mut buf) = (Reassembler::new(100), Vec::new());
        assert_eq!(
            feed(&mut r, &mut buf, frag(1, 0, true, 2, 5), b"ab"),
            Ok(Reassembled::Partial)
        );
        assert_eq!(r.landing(), 2);
        assert!(buf.capacity() >= 5, "room reserved for the whole message");
        assert_eq!(
            feed(&mut r, &mut buf, frag(1, 1, true, 2, 5), b"cd"),
            Ok(Reassembled::Partial)
        );
        match feed(&mut r, &mut buf, frag(1, 2, false, 1, 5), b"e").unwrap() {
            Reassembled::Whole(h) => {
                assert_eq!(h.request_id, 1);
                assert_eq!(&buf[..h.message_len as usize], b"abcde");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(r.landing(), 0, "the next message starts at the front");
    }

    #[test]
    fn every_fragment_size_reassembles_byte_for_byte() {
        let msg: Vec<u8> = (0..97u32).map(|i| (i * 31 + 7) as u8).collect();
        let mut buf = vec![0xEE; 3]; // a reused buffer, longer or shorter than the message
        for size in 1..=msg.len() + 1 {
            let mut r = Reassembler::new(1 << 10);
            let pieces: Vec<&[u8]> = msg.chunks(size).collect();
            for (i, piece) in pieces.iter().enumerate() {
                let more = i + 1 < pieces.len();
                let h = frag(7, i as u32, more, piece.len() as u32, msg.len() as u64);
                let got = feed(&mut r, &mut buf, h, piece).unwrap();
                match got {
                    Reassembled::Partial if more => {}
                    Reassembled::Single(h) if pieces.len() == 1 => {
                        assert_eq!(&buf[..h.payload_len as usize], &msg[..], "size {size}");
                    }
                    Reassembled::Whole(h) if !more => {
                        assert_eq!(&buf[..h.message_len as usize], &msg[..], "size {size}");
                    }
                    other => panic!("size {size}, fragment {i}: {other:?}"),
                }
            }
        }
    }

    #[test]
    fn a_gap_is_a_sequence_error_and_the_rest_is_dropped() {
        let (mut r, mut buf) = (Reassembler::new(100), Vec::new());
        feed(&mut r, &mut buf, frag(1, 0, true, 2, 6), b"ab").unwrap();
        let e = feed(&mut r, &mut buf, frag(1, 2, true, 2, 6), b"ef").unwrap_err();
        assert_eq!(e.code, ErrorCode::FragmentSequence);
        assert!(
            e.message
                .contains("fragment 2 arrived where 1 was expected"),
            "{}",
            e.message
        );
        assert_eq!(
            feed(&mut r, &mut buf, frag(1, 3, false, 0, 6), b""),
            Ok(Reassembled::Dropped)
        );
        assert_eq!(
            feed(&mut r, &mut buf, frag(2, 0, false, 1, 1), b"x"),
            Ok(Reassembled::Single(frag(2, 0, false, 1, 1)))
        );
        assert_eq!(&buf[..1], b"x");
    }

    #[test]
    fn fragments_out_of_order_or_of_another_message_are_refused() {
        let (mut r, mut buf) = (Reassembler::new(100), Vec::new());
        feed(&mut r, &mut buf, frag(1, 0, true, 2, 6), b"ab").unwrap();
        let e = feed(&mut r, &mut buf, frag(1, 1, true, 2, 7), b"cd").unwrap_err();
        assert!(e.message.contains("another message"), "{}", e.message);
        feed(&mut r, &mut buf, frag(3, 0, true, 2, 6), b"ab").unwrap();
        let e = feed(&mut r, &mut buf, frag(4, 1, true, 2, 6), b"cd").unwrap_err();
        assert!(e.message.contains("another message"), "{}", e.message);
        feed(&mut r, &mut buf, frag(5, 0, true, 2, 6), b"ab").unwrap();
        feed(&mut r, &mut buf, frag(5, 1, true, 2, 6), b"cd").unwrap();
        let e = feed(&mut r, &mut buf, frag(5, 1, false, 2, 6), b"ef").unwrap_err();
        assert!(e.message.contains("where 2 was expected"), "{}", e.message);
    }

    #[test]
    fn oversized_messages_are_refused_and_drained() {
        let (mut r, mut buf) = (Reassembler::new(4), Vec::new());
        let e = feed(&mut r, &mut buf, frag(9, 0, true, 2, 10), b"ab").unwrap_err();
        assert_eq!(e.code, ErrorCode::MessageTooLarge);
        assert_eq!(r.landing(), 0);
        assert_eq!(
            feed(&mut r, &mut buf, frag(9, 1, false, 8, 10), &[0; 8]),
            Ok(Reassembled::Dropped)
        );
    }

    #[test]
    fn a_length_no_allocation_can_hold_is_refused_not_a_panic() {
        // A region whose header allows any size: a first fragment claiming 2^63 bytes.
        let (mut r, mut buf) = (Reassembler::new(u64::MAX), Vec::new());
        let e = feed(&mut r, &mut buf, frag(9, 0, true, 2, 1 << 63), b"ab").unwrap_err();
        assert_eq!(e.code, ErrorCode::MessageTooLarge);
        assert_eq!(r.landing(), 0);
        assert_eq!(
            feed(&mut r, &mut buf, frag(9, 1, false, 2, 1 << 63), b"cd"),
            Ok(Reassembled::Dropped)
        );
    }

    #[test]
    fn a_new_message_abandons_the_open_one_and_starts_at_the_front() {
        let (mut r, mut buf) = (Reassembler::new(100), Vec::new());
        feed(&mut r, &mut buf, frag(1, 0, true, 2, 6), b"ab").unwrap();
        assert!(matches!(
            feed(&mut r, &mut buf, frag(2, 0, false, 1, 1), b"x"),
            Ok(Reassembled::Single(_))
        ));
        assert_eq!(&buf[..1], b"x", "landed at 2, moved to the front");
        assert_eq!(r.take_abandoned().unwrap().request_id, 1);
        // A fragmented one too: its first fragment landed after the open message's bytes.
        feed(&mut r, &mut buf, frag(3, 0, true, 3, 9), b"abc").unwrap();
        feed(&mut r, &mut buf, frag(4, 0, true, 2, 4), b"wx").unwrap();
        assert_eq!(r.take_abandoned().unwrap().request_id, 3);
        match feed(&mut r, &mut buf, frag(4, 1, false, 2, 4), b"yz").unwrap() {
            Reassembled::Whole(h) => assert_eq!(&buf[..h.message_len as usize], b"wxyz"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn overrun_and_short_endings_are_caught() {
        let (mut r, mut buf) = (Reassembler::new(100), Vec::new());
        feed(&mut r, &mut buf, frag(1, 0, true, 4, 5), b"abcd").unwrap();
        assert!(feed(&mut r, &mut buf, frag(1, 1, false, 2, 5), b"ef").is_err());
        feed(&mut r, &mut buf, frag(3, 0, true, 1, 5), b"a").unwrap();
        let e = feed(&mut r, &mut buf, frag(3, 1, false, 1, 5), b"b").unwrap_err();
        assert!(e.message.contains("short"), "{}", e.message);
        assert!(feed(&mut r, &mut buf, frag(4, 1, false, 1, 5), b"b")
            .unwrap_err()
            .message
            .contains("no open message"));
    }

    #[test]
    fn a_payload_not_at_the_landing_is_refused_not_read_past() {
        let mut r = Reassembler::new(100);
        let mut buf = vec![0u8; 3];
        feed(&mut r, &mut buf, frag(1, 0, true, 3, 8), b"abc").unwrap();
        // The caller skipped poll_at: `buf` ends before landing + payload_len.
        let e = r.accept(&frag(1, 1, false, 5, 8), &mut buf).unwrap_err();
        assert_eq!(e.code, ErrorCode::FragmentSequence);
        assert_eq!(r.landing(), 0, "the open message is dropped");
    }
}
