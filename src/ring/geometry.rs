//! A ring's chunk geometry and its position math: `idx = pos & mask`, offsets, room to the
//! ring's end, the largest frame payload (layout.md §5, §6.4).

/// Chunk geometry shared by both ends of a ring.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Geometry {
    /// Chunks in the ring (power of two).
    pub chunks: u64,
    /// Bytes per chunk (power of two).
    pub chunk_bytes: usize,
}

impl Geometry {
    /// The slot of a position.
    #[inline]
    pub fn idx(&self, pos: u64) -> u64 {
        pos & (self.chunks - 1)
    }

    /// Byte offset of a position's chunk within the ring's data.
    #[inline]
    pub fn offset(&self, pos: u64) -> usize {
        self.idx(pos) as usize * self.chunk_bytes
    }

    /// Chunks from a position's slot to the end of the ring.
    #[inline]
    pub fn to_end(&self, pos: u64) -> u64 {
        self.chunks - self.idx(pos)
    }

    /// Bytes of ring data.
    pub fn ring_bytes(&self) -> usize {
        self.chunks as usize * self.chunk_bytes
    }

    /// Largest payload a producer puts in one frame: a quarter of the ring (at least two
    /// chunks), minus the header (layout.md §6.4).
    pub fn max_frame_payload(&self) -> usize {
        let chunks = (self.chunks / 4).max(2).min(self.chunks) as usize;
        (chunks * self.chunk_bytes - crate::layout::FRAME_HEADER_BYTES).min(u32::MAX as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_map_to_slots_and_offsets() {
        let g = Geometry {
            chunks: 8,
            chunk_bytes: 64,
        };
        assert_eq!(g.idx(0), 0);
        assert_eq!(g.idx(9), 1);
        assert_eq!(g.offset(9), 64);
        assert_eq!(g.to_end(6), 2);
        assert_eq!(g.to_end(8), 8);
        assert_eq!(g.idx(u64::MAX), 7);
        assert_eq!(g.ring_bytes(), 512);
    }

    #[test]
    fn max_frame_payload_is_a_quarter_ring() {
        assert_eq!(
            Geometry {
                chunks: 1024,
                chunk_bytes: 64
            }
            .max_frame_payload(),
            256 * 64 - 32
        );
        assert_eq!(
            Geometry {
                chunks: 4,
                chunk_bytes: 32
            }
            .max_frame_payload(),
            32
        );
        assert_eq!(
            Geometry {
                chunks: 2,
                chunk_bytes: 32
            }
            .max_frame_payload(),
            32
        );
    }
}
