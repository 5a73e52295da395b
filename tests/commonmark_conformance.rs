//! CommonMark conformance through the `render` op (layout.md §9.2 "render").
//!
//! Every example pulldown-cmark's own suite runs (gathered from the crate source by
//! `scripts/commonmark_examples.py`; run here if its output is missing) is rendered twice: by
//! pulldown-cmark in-process, with the option set its `tests/lib.rs` builds, and through the
//! op handler with the params the script derived. The two must be equal byte for byte, and
//! the in-process HTML must match the suite's expected HTML under the suite's own
//! normalization (which proves the examples were extracted intact). The in-process renders are
//! written to `target/commonmark/inprocess.json` for the Python end-to-end comparison.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;

use chunkring::layout::OP_MD_RENDER;
use chunkring::ops::{decode_list, encode_list, Registry, Request, State};
use pulldown_cmark::{html, Options, Parser};
use serde_json::Value;

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/commonmark")
}

fn examples() -> Vec<Value> {
    let path = dir().join("examples.json");
    if !path.exists() {
        let status = Command::new("python3")
            .arg(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scripts/commonmark_examples.py"))
            .status()
            .expect("python3 runs scripts/commonmark_examples.py");
        assert!(status.success(), "scripts/commonmark_examples.py failed");
    }
    let doc: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    doc["examples"].as_array().unwrap().clone()
}

/// The options `tests/lib.rs::test_markdown_html` builds, written out independently of
/// `ParseOptions` so a wrong params mapping shows up as a mismatch.
fn suite_options(p: &Value) -> Options {
    let on = |k: &str| p[k].as_bool().unwrap();
    let mut o = Options::ENABLE_MATH
        | Options::ENABLE_TABLES
        | Options::ENABLE_STRIKETHROUGH
        | Options::ENABLE_SUPERSCRIPT
        | Options::ENABLE_TASKLISTS
        | Options::ENABLE_GFM
        | Options::ENABLE_HEADING_ATTRIBUTES;
    o |= if on("old_footnotes") {
        Options::ENABLE_OLD_FOOTNOTES
    } else {
        Options::ENABLE_FOOTNOTES
    };
    for (k, f) in [
        ("wikilinks", Options::ENABLE_WIKILINKS),
        ("subscript", Options::ENABLE_SUBSCRIPT),
        ("smart_punctuation", Options::ENABLE_SMART_PUNCTUATION),
        ("definition_list", Options::ENABLE_DEFINITION_LIST),
        (
            "metadata_blocks",
            Options::ENABLE_YAML_STYLE_METADATA_BLOCKS
                | Options::ENABLE_PLUSES_DELIMITED_METADATA_BLOCKS,
        ),
    ] {
        if on(k) {
            o |= f;
        }
    }
    o
}

/// tests/lib.rs's `html_standardize`.
fn standardize(s: &str) -> String {
    s.replace("<br>", "<br />")
        .replace("<br/>", "<br />")
        .replace("<hr>", "<hr />")
        .replace("<hr/>", "<hr />")
        .replace(">\n<", "><")
}

fn render_op(params: &Value, docs: &[&str]) -> Vec<Vec<u8>> {
    let reg = Registry::with_all_ops();
    let handler = reg.get(OP_MD_RENDER).unwrap().handler;
    let params = serde_json::to_vec(params).unwrap();
    let body = encode_list(docs);
    let req = Request {
        params: &params,
        body: &body,
    };
    let out = handler(&mut State::default(), &req).unwrap();
    decode_list(&out)
        .unwrap()
        .into_iter()
        .map(<[u8]>::to_vec)
        .collect()
}

#[test]
fn every_suite_example_renders_through_the_op_as_in_process() {
    let examples = examples();
    assert!(examples.len() > 1000, "only {} examples", examples.len());
    let mut inprocess = Vec::with_capacity(examples.len());
    let mut groups: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (i, ex) in examples.iter().enumerate() {
        let md = ex["markdown"].as_str().unwrap();
        let mut want = String::new();
        html::push_html(&mut want, Parser::new_ext(md, suite_options(&ex["params"])));
        let expected = ex["expected"].as_str().unwrap();
        assert_eq!(standardize(&want), standardize(expected), "{}", ex["name"]);
        let got = render_op(&ex["params"], &[md]);
        assert_eq!(got, vec![want.as_bytes().to_vec()], "{}", ex["name"]);
        groups.entry(ex["params"].to_string()).or_default().push(i);
        inprocess.push(want);
    }
    // The same examples again, one batch per option set.
    for idx in groups.values() {
        let docs: Vec<&str> = idx
            .iter()
            .map(|&i| examples[i]["markdown"].as_str().unwrap())
            .collect();
        let got = render_op(&examples[idx[0]]["params"], &docs);
        for (k, &i) in idx.iter().enumerate() {
            assert_eq!(
                got[k],
                inprocess[i].as_bytes(),
                "{} in a batch",
                examples[i]["name"]
            );
        }
    }
    let out = serde_json::to_vec(&inprocess).unwrap();
    std::fs::write(dir().join("inprocess.json"), out).unwrap();
    println!(
        "{} examples conform ({} option sets)",
        examples.len(),
        groups.len()
    );
}
