//! The marshal batch path (summaries, with dicts recalled from the previous snapshot) against
//! the node-store path over the same bytes, on seeded random batches whose snapshots are
//! edits of each other and whose back-references change meaning from one to the next.

use serde_json::json;

use super::*;
use crate::store::codec::random_snapshots::{edit, entry, inner_names_ref_1, marshal, word, Rng};

fn assert_paths_agree(items: &[Vec<u8>]) {
    let items: Vec<&[u8]> = items.iter().map(|i| i.as_slice()).collect();
    let fast = describe(Encoding::Marshal, &items).map_err(|e| e.to_string());
    let slow = describe_interned(Encoding::Marshal, &items).map_err(|e| e.to_string());
    assert_eq!(fast, slow);
}

#[test]
fn random_batches_of_edits_describe_alike_on_both_paths() {
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    for _ in 0..1000 {
        let mut doc = json!({
            "discussion": (0..rng.below(12)).map(|_| entry(&mut rng)).collect::<Vec<_>>(),
            "files": (0..rng.below(6)).map(|_| entry(&mut rng)).collect::<Vec<_>>(),
            "title": word(&mut rng),
        });
        let mut items = Vec::new();
        for _ in 0..8 {
            items.push(marshal(&doc, &mut rng));
            // Now and then the same document twice (everything recalled), else an edit.
            if !rng.one_in(4) {
                edit(&mut doc, &mut rng);
            }
        }
        assert_paths_agree(&items);
        // A snapshot with a few bytes changed, after ones that read well: the same error,
        // or the same descriptions.
        for _ in 0..10 {
            let mut bad = items.clone();
            let last = bad.last_mut().unwrap();
            for _ in 0..1 + rng.below(2) {
                let at = rng.below(last.len());
                last[at] = rng.next_u64() as u8;
            }
            assert_paths_agree(&bad);
        }
    }
}

#[test]
fn a_dict_with_the_same_bytes_is_not_recalled_when_its_references_changed() {
    let one = inner_names_ref_1(b"x");
    let two = inner_names_ref_1(b"y");
    assert_paths_agree(&[one.clone(), two.clone(), two.clone(), one.clone()]);
    let got = describe(Encoding::Marshal, &[&one, &two]).unwrap();
    let Change::Fields { changed, lists } = &got[1].change else {
        panic!("{:?}", got[1]);
    };
    assert_eq!(changed, &["k", "l"]);
    assert_eq!(lists[0].1.changed, [0]);
}

#[test]
fn a_dict_with_the_same_bytes_deeper_down_meets_the_depth_limit() {
    // `{"l": [[…{"a": [[…None…]]}…]]}`: the inner dict (300 levels deep itself) is the same
    // bytes at depth `outer + 1`; 200 outer levels fit in 512, 300 do not.
    let nested = |outer: usize| {
        let mut b = b"{z\x01l".to_vec();
        b.extend(b"[\x01\x00\x00\x00".repeat(outer));
        b.extend_from_slice(b"{z\x01a");
        b.extend(b"[\x01\x00\x00\x00".repeat(300));
        b.extend_from_slice(b"N00");
        b
    };
    let (shallow, deep) = (nested(200), nested(300));
    // 512 levels of an unoptimized reader take more than a test thread's stack.
    let run = move || {
        assert_paths_agree(&[shallow.clone(), shallow.clone(), deep.clone()]);
        let items: [&[u8]; 2] = [&shallow, &deep];
        let e = describe(Encoding::Marshal, &items).unwrap_err().to_string();
        assert!(e.contains("nesting deeper than 512"), "{e}");
    };
    let big = std::thread::Builder::new().stack_size(256 << 20);
    big.spawn(run).unwrap().join().unwrap();
}
