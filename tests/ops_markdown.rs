//! The markdown ops through the op registry (layout.md §9.2): batches, a 50 MB document,
//! aggregate's edge cases against real files, the aggregate → render/outline chain, and a
//! property test that `outline` agrees with a slow reference walk over pulldown-cmark events.

use std::fs;
use std::path::{Path, PathBuf};

use chunkring::error::{ErrorCode, OpError};
use chunkring::layout::{OP_MD_AGGREGATE, OP_MD_OUTLINE, OP_MD_RENDER};
use chunkring::ops::markdown::options::ParseOptions;
use chunkring::ops::markdown::outline::{outline_document, CodeBlock, Heading, Link, Outline};
use chunkring::ops::{decode_list, encode_list, Registry, Request, State};
use proptest::prelude::*;
use pulldown_cmark::{html, CodeBlockKind, Event, Options, Parser, Tag, TagEnd};
use serde_json::{json, Value};

fn call(op: u16, params: Value, body: &[u8]) -> Result<Vec<u8>, OpError> {
    let reg = Registry::with_all_ops();
    let params = serde_json::to_vec(&params).unwrap();
    let req = Request {
        params: &params,
        body,
    };
    (reg.get(op).unwrap().handler)(&mut State::default(), &req)
}

fn items(out: &[u8]) -> Vec<String> {
    decode_list(out)
        .unwrap()
        .into_iter()
        .map(|b| String::from_utf8(b.to_vec()).unwrap())
        .collect()
}

fn in_process(md: &str) -> String {
    let mut s = String::new();
    html::push_html(
        &mut s,
        Parser::new_ext(md, ParseOptions::default().to_options()),
    );
    s
}

/// Documents that differ from each other (so a reordering would show).
fn docs(n: usize) -> Vec<String> {
    (0..n)
        .map(|i| {
            format!(
                "# Doc {i}\n\nSome *text* {i} with [a link](http://x/{i}).\n\n```rust\nlet x = {i};\n```\n\n| a | b |\n|---|---|\n| {i} | ~~s~~ |\n"
            )
        })
        .collect()
}

#[test]
fn render_batches_of_1_100_and_10000_match_in_process() {
    for n in [1, 100, 10_000] {
        let docs = docs(n);
        let out = call(OP_MD_RENDER, json!({}), &encode_list(&docs)).unwrap();
        let html = items(&out);
        assert_eq!(html.len(), n);
        for (d, h) in docs.iter().zip(&html) {
            assert_eq!(*h, in_process(d));
        }
    }
}

#[test]
fn outline_batches_of_1_100_and_10000_are_one_json_array() {
    for n in [1, 100, 10_000] {
        let docs = docs(n);
        let out = call(OP_MD_OUTLINE, json!({}), &encode_list(&docs)).unwrap();
        let v: Value = serde_json::from_slice(&out).unwrap();
        let arr = v.as_array().unwrap();
        assert_eq!(arr.len(), n);
        for (i, o) in arr.iter().enumerate() {
            assert_eq!(o["headings"][0]["text"], format!("Doc {i}"));
            assert_eq!(o["headings"][0]["slug"], format!("doc-{i}"));
            assert_eq!(
                o["code_blocks"][0],
                json!({"lang": "rust", "fenced": true, "start_line": 5, "end_line": 7})
            );
            assert_eq!(o["links"][0]["dest"], format!("http://x/{i}"));
            assert_eq!(o["links"][0]["line"], 3);
        }
    }
}

#[test]
fn one_50_mb_document_renders_and_outlines() {
    // Mostly prose, as real documents are: ~2 KB per section.
    let prose =
        "Lorem ipsum *dolor* sit amet, `consectetur` adipiscing elit, sed do eiusmod tempor.\n"
            .repeat(24);
    let unit = format!("## Section\n\n{prose}\n[a link](http://example.com)\n\n```\ncode\n```\n\n");
    let count = 50_000_000 / unit.len() + 1;
    let doc = unit.repeat(count);
    assert!(doc.len() >= 50_000_000);
    let body = encode_list(&[&doc]);
    let out = call(OP_MD_RENDER, json!({}), &body).unwrap();
    assert_eq!(items(&out)[0], in_process(&doc));
    let out = call(OP_MD_OUTLINE, json!({}), &body).unwrap();
    let v: Value = serde_json::from_slice(&out).unwrap();
    let headings = v[0]["headings"].as_array().unwrap();
    assert_eq!(headings.len(), count);
    let lines_per_unit = unit.matches('\n').count();
    assert_eq!(
        headings[count - 1]["line"],
        (count - 1) * lines_per_unit + 1
    );
    assert_eq!(
        headings[count - 1]["slug"],
        format!("section-{}", count - 1)
    );
    assert_eq!(v[0]["links"].as_array().unwrap().len(), count);
    // 24 lines of 12 words, 2 link words, 1 heading word, 1 code word per section.
    assert_eq!(v[0]["words"], count * (24 * 12 + 2 + 1 + 1));
}

#[test]
fn invalid_utf8_names_the_document_and_offset() {
    let body = encode_list::<&[u8]>(&[b"fine", b"fine", b"caf\xc3("]);
    for op in [OP_MD_RENDER, OP_MD_OUTLINE] {
        let e = call(op, json!({}), &body).unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidUtf8);
        assert_eq!(e.message, "document 2 is not valid UTF-8 at byte offset 3");
    }
}

// ---- aggregate ---------------------------------------------------------------------------

fn aggregate(params: Value, inline: &[&[u8]]) -> Result<String, OpError> {
    let body = if inline.is_empty() {
        Vec::new()
    } else {
        encode_list(inline)
    };
    let out = call(OP_MD_AGGREGATE, params, &body)?;
    let docs = items(&out);
    assert_eq!(docs.len(), 1, "aggregate answers a list of one document");
    Ok(docs.into_iter().next().unwrap())
}

/// The text of every code block of `doc`, in order.
fn code_block_texts(doc: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur: Option<String> = None;
    for ev in Parser::new(doc) {
        match ev {
            Event::Start(Tag::CodeBlock(_)) => cur = Some(String::new()),
            Event::Text(t) if cur.is_some() => cur.as_mut().unwrap().push_str(&t),
            Event::End(TagEnd::CodeBlock) => out.extend(cur.take()),
            _ => {}
        }
    }
    out
}

const TRICKY: [(&str, &str); 6] = [
    ("a.md", "# Title\n\n```rust\nfn x() {}\n```\n"),
    ("b.md", "````\n```\nnested\n```\n````\n"),
    ("empty.txt", ""),
    ("no_newline.py", "x = 1"),
    ("ticks`in`name.rs", "let s = \"``````\";\n"),
    ("tilde.sh", "~~~\necho hi\n~~~\n"),
];

#[test]
fn aggregate_keeps_every_file_intact_inside_its_fence() {
    let files: Vec<Value> = TRICKY.iter().map(|(p, _)| json!({"path": p})).collect();
    let inline: Vec<&[u8]> = TRICKY.iter().map(|(_, c)| c.as_bytes()).collect();
    let doc = aggregate(json!({"files": files}), &inline).unwrap();
    let blocks = code_block_texts(&doc);
    assert_eq!(blocks.len(), TRICKY.len(), "{doc}");
    for ((_, content), block) in TRICKY.iter().zip(&blocks) {
        let want = if content.is_empty() || content.ends_with('\n') {
            content.to_string()
        } else {
            format!("{content}\n")
        };
        assert_eq!(*block, want);
    }
    assert_eq!(doc.matches("\n\n---\n\n").count(), TRICKY.len() - 1);
    assert!(doc.contains("### `a.md`\n\n````markdown\n# Title"));
    assert!(doc.contains("\n`````markdown\n````\n"));
    assert!(doc.contains("### ``ticks`in`name.rs``\n\n```````rust\n"));
    assert!(doc.ends_with("~~~\n```\n"));
}

#[test]
fn outline_of_the_aggregate_lists_every_file_heading_and_the_toc_resolves() {
    let files: Vec<Value> = TRICKY.iter().map(|(p, _)| json!({"path": p})).collect();
    let inline: Vec<&[u8]> = TRICKY.iter().map(|(_, c)| c.as_bytes()).collect();
    let doc = aggregate(json!({"files": files, "toc": true}), &inline).unwrap();
    let out = call(OP_MD_OUTLINE, json!({}), &encode_list(&[&doc])).unwrap();
    let v: Value = serde_json::from_slice(&out).unwrap();
    let headings = v[0]["headings"].as_array().unwrap();
    let level3: Vec<&Value> = headings.iter().filter(|h| h["level"] == 3).collect();
    let paths: Vec<&str> = level3.iter().map(|h| h["text"].as_str().unwrap()).collect();
    let want: Vec<&str> = TRICKY.iter().map(|(p, _)| *p).collect();
    assert_eq!(paths, want);
    let toc: Vec<String> = v[0]["links"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["dest"].as_str().unwrap().to_string())
        .collect();
    let slugs: Vec<String> = level3
        .iter()
        .map(|h| format!("#{}", h["slug"].as_str().unwrap()))
        .collect();
    assert_eq!(toc, slugs);
}

#[test]
fn aggregate_pipes_into_render() {
    let doc = aggregate(json!({"files": [{"path": "a.rs"}]}), &[b"fn main() {}\n"]).unwrap();
    let aggregate_out = encode_list(&[&doc]);
    let html = items(&call(OP_MD_RENDER, json!({}), &aggregate_out).unwrap());
    assert_eq!(
        html[0],
        "<h3><code>a.rs</code></h3>\n<pre><code class=\"language-rust\">fn main() {}\n</code></pre>\n"
    );
}

#[test]
fn pipelines_chain_aggregate_into_render_and_outline_in_the_dispatcher() {
    use chunkring::layout::OP_PIPELINE;
    use chunkring::ops::encode_request;
    use chunkring::worker::dispatch::{Dispatcher, Reply};
    let mut d = Dispatcher::new(Registry::with_all_ops(), 64, 1 << 30);
    let agg =
        json!({"op": OP_MD_AGGREGATE, "params": {"files": [{"path": "a.md"}, {"path": "b.rs"}]}});
    let body = encode_list::<&[u8]>(&[b"# A\n", b"fn b() {}\n"]);
    let run = |d: &mut Dispatcher, last: Value| {
        let params = serde_json::to_vec(&json!({"stages": [agg, last]})).unwrap();
        match d
            .dispatch(OP_PIPELINE, &encode_request(&params, &body))
            .unwrap()
        {
            Reply::Data(out) => out,
            other => panic!("{other:?}"),
        }
    };
    let html = items(&run(&mut d, json!({"op": OP_MD_RENDER})));
    assert_eq!(
        html,
        ["<h3><code>a.md</code></h3>\n<pre><code class=\"language-markdown\"># A\n</code></pre>\n<hr />\n<h3><code>b.rs</code></h3>\n<pre><code class=\"language-rust\">fn b() {}\n</code></pre>\n"]
    );
    let outline: Value =
        serde_json::from_slice(&run(&mut d, json!({"op": OP_MD_OUTLINE}))).unwrap();
    let texts: Vec<&str> = outline[0]["headings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["text"].as_str().unwrap())
        .collect();
    assert_eq!(texts, ["a.md", "b.rs"]);
}

#[test]
fn outline_mode_lists_markdown_headings_and_shows_other_files_in_full() {
    let doc = aggregate(
        json!({"mode": "outline", "files": [
            {"path": "guide.md"}, {"path": "x.py"}, {"path": "plain.md"},
            {"path": "full.md", "mode": "full"}]}),
        &[
            b"# Guide\n## Install `it`\n### Linux\n## Use\n",
            b"x = 1\n",
            b"no headings\n",
            b"# F\n",
        ],
    )
    .unwrap();
    assert!(
        doc.contains("### `guide.md`\n\n- Guide\n  - Install it\n    - Linux\n  - Use\n\n---\n\n")
    );
    assert!(doc.contains("### `x.py`\n\n```python\nx = 1\n```"));
    assert!(doc.contains("### `plain.md`\n\n*(no headings)*"));
    assert!(doc.contains("### `full.md`\n\n```markdown\n# F\n```\n"));
}

#[test]
fn aggregate_rejects_non_utf8_and_miscounted_bodies() {
    let e = aggregate(
        json!({"files": [{"path": "ok.txt"}, {"path": "bin.dat"}]}),
        &[b"ok", b"\x89PNG\r\n\x1a\n\xff"],
    )
    .unwrap_err();
    assert_eq!(e.code, ErrorCode::InvalidUtf8);
    assert_eq!(
        e.message,
        "file 1 (\"bin.dat\") is not valid UTF-8 at byte offset 0"
    );
    let e = aggregate(json!({"files": [{"path": "a"}]}), &[]).unwrap_err();
    assert_eq!(e.code, ErrorCode::BadPayload);
    let e = aggregate(json!({"files": [{"path": "a\nb"}]}), &[b""]).unwrap_err();
    assert_eq!(e.code, ErrorCode::BadParams);
    let e = aggregate(json!({"files": [{"path": ""}]}), &[b""]).unwrap_err();
    assert_eq!(
        (e.code, e.message.as_str()),
        (ErrorCode::BadParams, "file 0: empty path")
    );
    let e = aggregate(json!({"files": [{"path": "a", "read": true}]}), &[]).unwrap_err();
    assert_eq!(e.code, ErrorCode::BadParams);
    assert_eq!(aggregate(json!({"files": []}), &[]).unwrap(), "");
}

/// A temporary directory: `root/` with files, and a `secret` file beside it.
struct Tree(PathBuf);

impl Tree {
    fn new(tag: &str) -> Tree {
        let dir = std::env::temp_dir().join(format!("chunkring-md-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(dir.join("root/src")).unwrap();
        fs::write(dir.join("root/src/lib.rs"), "pub fn f() {}\n").unwrap();
        fs::write(dir.join("root/README.md"), "# Read me\n\n## Part\n").unwrap();
        fs::write(dir.join("root/latin1.txt"), b"caf\xe9\n").unwrap();
        fs::write(dir.join("secret"), "no\n").unwrap();
        std::os::unix::fs::symlink(dir.join("secret"), dir.join("root/escape")).unwrap();
        Tree(dir)
    }

    fn root(&self) -> String {
        self.0.join("root").to_str().unwrap().to_string()
    }
}

impl Drop for Tree {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

#[test]
fn aggregate_reads_files_under_the_root_mixed_with_inline_ones() {
    let t = Tree::new("read");
    let doc = aggregate(
        json!({"root": t.root(), "files": [
            {"path": "src/lib.rs", "read": true},
            {"path": "inline.txt"},
            {"path": "README.md", "read": true, "mode": "outline"}]}),
        &[b"inline body"],
    )
    .unwrap();
    assert_eq!(
        doc,
        "### `src/lib.rs`\n\n```rust\npub fn f() {}\n```\n\n---\n\n### `inline.txt`\n\n```text\ninline body\n```\n\n---\n\n### `README.md`\n\n- Read me\n  - Part\n"
    );
    let abs = Path::new(&t.root()).join("src/lib.rs");
    let canon = fs::canonicalize(abs).unwrap();
    let doc = aggregate(
        json!({"root": t.root(), "files": [{"path": canon.to_str().unwrap(), "read": true}]}),
        &[],
    )
    .unwrap();
    assert!(doc.contains("pub fn f() {}"));
}

#[test]
fn aggregate_refuses_paths_outside_the_root() {
    let t = Tree::new("refuse");
    let secret = t.0.join("secret");
    for path in [
        "../secret",
        "src/../../secret",
        "escape",
        secret.to_str().unwrap(),
        "/etc/hostname",
        "../does-not-exist",
    ] {
        let e = aggregate(
            json!({"root": t.root(), "files": [{"path": path, "read": true}]}),
            &[],
        )
        .unwrap_err();
        assert_eq!(e.code, ErrorCode::PathRefused, "{path}: {}", e.message);
    }
    let e = aggregate(
        json!({"root": t.root(), "files": [{"path": "missing.rs", "read": true}]}),
        &[],
    )
    .unwrap_err();
    assert_eq!(e.code, ErrorCode::Io);
    assert!(e.message.contains("missing.rs"), "{}", e.message);
    let e = aggregate(
        json!({"root": t.root(), "files": [{"path": "latin1.txt", "read": true}]}),
        &[],
    )
    .unwrap_err();
    assert_eq!(e.code, ErrorCode::InvalidUtf8);
    assert!(e.message.ends_with("byte offset 3"), "{}", e.message);
    let e = aggregate(
        json!({"root": "/nonexistent/root", "files": [{"path": "a", "read": true}]}),
        &[],
    )
    .unwrap_err();
    assert_eq!(e.code, ErrorCode::Io);
}

#[test]
fn aggregate_skips_or_notes_failing_files_and_reports_each_with_its_reason() {
    let t = Tree::new("on-error");
    fs::create_dir_all(t.0.join("root/dir")).unwrap();
    let files = json!([
        {"path": "src/lib.rs", "read": true},
        {"path": "escape", "read": true},
        {"path": "latin1.txt", "read": true},
        {"path": "missing.rs", "read": true},
        {"path": "dir", "read": true},
        {"path": "../secret", "read": true},
        {"path": "inline.bin"}]);
    let report = json!({"errors": [
        {"index": 1, "path": "escape", "code": 11, "reason": "a symlink"},
        {"index": 2, "path": "latin1.txt", "code": 8, "reason": "not UTF-8 (invalid byte at offset 3)"},
        {"index": 3, "path": "missing.rs", "code": 12, "reason": "not found"},
        {"index": 4, "path": "dir", "code": 12, "reason": "a directory"},
        {"index": 5, "path": "../secret", "code": 11, "reason": "escapes the root"},
        {"index": 6, "path": "inline.bin", "code": 8, "reason": "not UTF-8 (invalid byte at offset 0)"}]});
    let inline: &[&[u8]] = &[b"\xff"];
    let answer = |on_error: &str| {
        let params =
            json!({"root": t.root(), "files": files, "on_error": on_error, "report": true});
        let out = call(OP_MD_AGGREGATE, params, &encode_list(inline)).unwrap();
        let items = decode_list(&out).unwrap();
        assert_eq!(items.len(), 2, "the document, then the report");
        let report: Value = serde_json::from_slice(items[1]).unwrap();
        (String::from_utf8(items[0].to_vec()).unwrap(), report)
    };
    let (doc, got) = answer("skip");
    assert_eq!(got, report);
    assert_eq!(doc, "### `src/lib.rs`\n\n```rust\npub fn f() {}\n```\n");
    let (doc, got) = answer("note");
    assert_eq!(got, report);
    assert!(doc.starts_with("### `src/lib.rs`\n\n```rust\npub fn f() {}\n```\n\n---\n\n### `escape`\n\n*(not included: a symlink)*\n\n---\n\n### `latin1.txt`\n\n*(not included: not UTF\\-8 \\(invalid byte at offset 3\\))*\n\n---\n\n"), "{doc}");
    assert!(
        doc.ends_with(
            "### `inline.bin`\n\n*(not included: not UTF\\-8 \\(invalid byte at offset 0\\))*\n"
        ),
        "{doc}"
    );
    // Without "report", the answer is one document, ready for render in a pipeline.
    let params = json!({"root": t.root(), "files": files, "on_error": "note"});
    let out = call(OP_MD_AGGREGATE, params, &encode_list(inline)).unwrap();
    assert_eq!(items(&out), vec![doc]);
}

#[test]
fn aggregate_raise_is_the_default_and_fails_with_the_first_files_reason() {
    let t = Tree::new("raise");
    let files = json!([{"path": "escape", "read": true}, {"path": "x"}]);
    for params in [
        json!({"root": t.root(), "files": files}),
        json!({"root": t.root(), "files": files, "on_error": "raise", "report": true}),
    ] {
        let e = call(OP_MD_AGGREGATE, params, &encode_list::<&[u8]>(&[b"\xff"])).unwrap_err();
        assert_eq!(e.code, ErrorCode::PathRefused);
        assert_eq!(e.message, "file 0 (\"escape\"): a symlink");
    }
    let params = json!({"files": [{"path": "a"}], "report": true});
    let out = call(OP_MD_AGGREGATE, params, &encode_list::<&[u8]>(&[b"x"])).unwrap();
    assert_eq!(
        items(&out),
        ["### `a`\n\n```\nx\n```\n", r#"{"errors":[]}"#]
    );
    let e = aggregate(
        json!({"files": [{"path": "a"}], "on_error": "ignore"}),
        &[b""],
    );
    assert_eq!(e.unwrap_err().code, ErrorCode::BadParams);
}

// ---- outline against a slow reference walk ------------------------------------------------

/// 1-based line of `offset`, by counting line endings before it.
fn slow_line(text: &str, offset: usize) -> usize {
    let before = &text.as_bytes()[..offset];
    let lf = before.iter().filter(|&&b| b == b'\n').count();
    let lone_cr = before
        .iter()
        .enumerate()
        .filter(|&(i, &b)| b == b'\r' && text.as_bytes().get(i + 1) != Some(&b'\n'))
        .count();
    1 + lf + lone_cr
}

fn is_inline_tag_start(e: &Event<'_>) -> bool {
    matches!(
        e,
        Event::Start(
            Tag::Emphasis
                | Tag::Strong
                | Tag::Strikethrough
                | Tag::Superscript
                | Tag::Subscript
                | Tag::Link { .. }
                | Tag::Image { .. }
        )
    )
}

fn is_inline_tag_end(e: &Event<'_>) -> bool {
    matches!(
        e,
        Event::End(
            TagEnd::Emphasis
                | TagEnd::Strong
                | TagEnd::Strikethrough
                | TagEnd::Superscript
                | TagEnd::Subscript
                | TagEnd::Link
                | TagEnd::Image
        )
    )
}

/// Text content of `events`, breaks as spaces.
fn text_of(events: &[(Event<'_>, std::ops::Range<usize>)]) -> String {
    let mut s = String::new();
    for (e, _) in events {
        match e {
            Event::Text(t) | Event::Code(t) | Event::InlineMath(t) | Event::DisplayMath(t) => {
                s.push_str(t)
            }
            Event::SoftBreak | Event::HardBreak => s.push(' '),
            _ => {}
        }
    }
    s
}

fn reference_slug(
    text: &str,
    handed_out: &mut Vec<String>,
    counts: &mut Vec<(String, u32)>,
) -> String {
    let base: String = text
        .chars()
        .filter_map(|c| {
            if c.is_whitespace() {
                Some("-".to_string())
            } else if c.is_alphanumeric() || c == '-' || c == '_' {
                Some(c.to_lowercase().collect())
            } else {
                None
            }
        })
        .collect();
    let mut slug = base.clone();
    while handed_out.contains(&slug) {
        let n = match counts.iter_mut().find(|(b, _)| *b == base) {
            Some((_, n)) => n,
            None => {
                counts.push((base.clone(), 0));
                &mut counts.last_mut().unwrap().1
            }
        };
        *n += 1;
        slug = format!("{base}-{n}");
    }
    handed_out.push(slug.clone());
    slug
}

/// The outline layout.md §9.2 defines, computed by scanning a vector of all events with
/// index arithmetic (no streaming state machine).
fn reference_outline(text: &str, options: Options) -> Outline {
    let events: Vec<_> = Parser::new_ext(text, options).into_offset_iter().collect();
    let mut out = Outline::default();
    let (mut handed_out, mut counts) = (Vec::new(), Vec::new());
    for (i, (e, range)) in events.iter().enumerate() {
        match e {
            Event::Start(Tag::Heading { level, id, .. }) => {
                let end = i + events[i..]
                    .iter()
                    .position(|(e, _)| matches!(e, Event::End(TagEnd::Heading(_))))
                    .unwrap();
                let text_content = text_of(&events[i + 1..end]);
                let slug = match id {
                    Some(id) => id.to_string(),
                    None => reference_slug(&text_content, &mut handed_out, &mut counts),
                };
                out.headings.push(Heading {
                    level: *level as u8,
                    text: text_content,
                    slug,
                    line: slow_line(text, range.start),
                });
            }
            Event::Start(Tag::CodeBlock(kind)) => {
                let (lang, fenced) = match kind {
                    CodeBlockKind::Fenced(info) => {
                        let word: String = info.chars().take_while(|&c| c != ' ').collect();
                        (if word.is_empty() { None } else { Some(word) }, true)
                    }
                    CodeBlockKind::Indented => (None, false),
                };
                let last = if range.end > range.start {
                    range.end - 1
                } else {
                    range.start
                };
                out.code_blocks.push(CodeBlock {
                    lang,
                    fenced,
                    start_line: slow_line(text, range.start),
                    end_line: slow_line(text, last),
                });
            }
            Event::Start(
                Tag::Link {
                    dest_url, title, ..
                }
                | Tag::Image {
                    dest_url, title, ..
                },
            ) => {
                let mut depth = 0;
                let mut end = i;
                for (j, (e, _)) in events.iter().enumerate().skip(i) {
                    match e {
                        Event::Start(Tag::Link { .. } | Tag::Image { .. }) => depth += 1,
                        Event::End(TagEnd::Link | TagEnd::Image) => depth -= 1,
                        _ => {}
                    }
                    if depth == 0 {
                        end = j;
                        break;
                    }
                }
                let kind = if matches!(e, Event::Start(Tag::Image { .. })) {
                    "image"
                } else {
                    "link"
                };
                out.links.push(Link {
                    kind,
                    dest: dest_url.to_string(),
                    title: title.to_string(),
                    text: text_of(&events[i + 1..end]),
                    line: slow_line(text, range.start),
                });
            }
            _ => {}
        }
    }
    let mut flat = String::new();
    for (e, _) in &events {
        match e {
            Event::Text(t) | Event::Code(t) | Event::InlineMath(t) | Event::DisplayMath(t) => {
                flat.push_str(t)
            }
            e if is_inline_tag_start(e) || is_inline_tag_end(e) => {}
            _ => flat.push(' '),
        }
    }
    out.words = flat.split_whitespace().count() as u64;
    out
}

const FRAGMENTS: &[&str] = &[
    "# ",
    "## ",
    "###### ",
    "\n",
    "\n\n",
    "\r\n",
    "\r",
    "word ",
    "two words",
    "é ü",
    "\u{3000}",
    "\t",
    "\u{b}",
    "\u{c}",
    "\u{85}",
    "\u{a0}",
    "*",
    "**",
    "_",
    "~~",
    "`",
    "``",
    "```",
    "```rust x\n",
    "~~~\n",
    "    ",
    "> ",
    "- ",
    "1. ",
    "[a](http://x \"t\")",
    "![alt *b*](i.png)",
    "[![i](j)](k)",
    "<http://auto>",
    "<a@b.c>",
    "[ref]",
    "\n[ref]: /u 'T'\n",
    "===",
    "---",
    "|a|b|\n|-|-|\n",
    "[^n]",
    "\n[^n]: note\n",
    "$x$",
    "$$y$$",
    "{#id}",
    "<b>",
    "&amp;",
    "\\*",
    "- [ ] ",
    "^sup^",
    "~sub~",
    "[[wiki]]",
    "Hello, World!",
    "hello-world",
];

fn markdownish() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(FRAGMENTS), 0..40).prop_map(|v| v.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn outline_agrees_with_a_slow_reference_walk(text in markdownish(), bits in 0u32..(1 << 16)) {
        let options = Options::from_bits_truncate(bits);
        prop_assert_eq!(outline_document(&text, options), reference_outline(&text, options));
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Hostile bodies and params get an answer (Ok or OpError), never a panic.
    #[test]
    fn arbitrary_bytes_never_panic_the_markdown_ops(
        raw in prop::collection::vec(any::<u8>(), 0..200),
        docs in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..60), 0..5),
        params in prop::sample::select(vec![
            "", "{}", "[]", "{\"tables\":1}", "{\"files\":[{\"path\":\"a\"}]}",
            "{\"files\":[{\"path\":\"a\",\"read\":true}],\"root\":\"/nonexistent\"}",
            "{\"files\":[],\"toc\":true}", "{\"files\":[{\"path\":\"x.md\"}],\"mode\":\"outline\"}",
        ]),
    ) {
        let listed = encode_list(&docs);
        for op in [OP_MD_RENDER, OP_MD_OUTLINE, OP_MD_AGGREGATE] {
            for body in [&raw[..], &listed[..]] {
                let reg = Registry::with_all_ops();
                let req = Request { params: params.as_bytes(), body };
                let _ = (reg.get(op).unwrap().handler)(&mut State::default(), &req);
            }
        }
    }
}
