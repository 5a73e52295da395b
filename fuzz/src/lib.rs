//! What the fuzz targets share: how a batch of marshal items is read from one fuzz input.

/// The items of a batch read leniently from `data`, so that a mutation inside one item keeps
/// the others: one byte `k` (the number of items, `k % 9`), `k` little-endian `u32` lengths,
/// then the items one after the other, each cut at its length or at the end of the input.
/// `None` when the input is too short for its lengths.
pub fn batch_items(data: &[u8]) -> Option<Vec<&[u8]>> {
    let (&k, rest) = data.split_first()?;
    let k = usize::from(k % 9);
    if rest.len() < 4 * k {
        return None;
    }
    let (lens, mut body) = rest.split_at(4 * k);
    let mut items = Vec::with_capacity(k);
    for len in lens.chunks_exact(4) {
        let n = u32::from_le_bytes([len[0], len[1], len[2], len[3]]) as usize;
        let (item, tail) = body.split_at(n.min(body.len()));
        items.push(item);
        body = tail;
    }
    Some(items)
}
