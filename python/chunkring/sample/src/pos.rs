/// Chunks from `pos` to the end of a ring of `chunks` chunks.
pub fn to_end(pos: u64, chunks: u64) -> u64 {
    chunks - (pos & (chunks - 1))
}

#[test]
fn wraps() {
    assert_eq!(to_end(9, 8), 7);
}
