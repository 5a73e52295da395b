//! What the fuzz targets share: how a batch of marshal items is read from one fuzz input, and
//! how a saved-file loader is driven (history and log files).

use chunkring::store::error::StoreError;
use chunkring::store::file::envelope::unframe;

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

/// Drives a file loader with `data` as a whole file (envelope `magic`, then `decode` on the
/// payload: most inputs fail the CRC) and as a payload (so the fuzzer reaches `decode`):
/// anything must be refused cleanly, or load into a value that `encode`s and loads again to
/// one `same` as it, under the same name.
pub fn loads_back<T>(
    data: &[u8],
    magic: [u8; 8],
    decode: impl Fn(&[u8]) -> Result<(String, T), StoreError>,
    encode: impl Fn(&str, &T) -> Vec<u8>,
    same: impl Fn(&T, &T) -> bool,
) {
    let _ = unframe(magic, data).map(&decode);
    if let Ok((name, value)) = decode(data) {
        let (name2, value2) = decode(&encode(&name, &value)).expect("what saves loads");
        assert_eq!(name2, name);
        assert!(same(&value2, &value), "saved and loaded again, it differs");
    }
}
