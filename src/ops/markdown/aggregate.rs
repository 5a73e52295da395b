//! `OP_MD_AGGREGATE`: many files → one context document (layout.md §9.2 "aggregate").
//!
//! Per file a `### \`path\`` heading, then either the content in a fenced code block whose
//! fence is longer than any backtick run in the content (full mode) or, for markdown files, the
//! file's headings as a nested list (outline mode); sections are joined by `\n\n---\n\n`, with
//! an optional table of contents first. Files come inline in the body or are read by the worker
//! under a root the client names (`super::files`), and the response is a list of one document,
//! so a pipeline can feed it to `render` or `outline`.
#![forbid(unsafe_code)]

use std::borrow::Cow;

use serde::Deserialize;

use super::files::{guess_language, is_markdown, Root, AGGREGATE_MAX_ANSWER_BYTES};
use super::options::ParseOptions;
use super::outline::{outline_document, Slugger};
use crate::error::{ErrorCode, OpError};
use crate::ops::op::State;
use crate::ops::request::{decode_list, encode_list, Request};

/// The separator between sections.
pub const SECTION_SEPARATOR: &str = "\n\n---\n\n";

/// How one file is shown.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// The whole content, fenced.
    #[default]
    Full,
    /// For markdown files, the nested list of headings; other files are shown in full.
    Outline,
}

/// One entry of `params.files`.
#[derive(Debug, Clone, Deserialize)]
pub struct FileSpec {
    /// Shown in the heading; with `read`, resolved under `root`.
    pub path: String,
    /// Overrides the request's `mode` for this file.
    #[serde(default)]
    pub mode: Option<Mode>,
    /// The worker reads the file under `root` instead of taking the next body item.
    #[serde(default)]
    pub read: bool,
}

/// The params of `aggregate`.
#[derive(Debug, Clone, Deserialize)]
pub struct AggregateParams {
    /// The files, in output order.
    pub files: Vec<FileSpec>,
    /// Default mode of every file.
    #[serde(default)]
    pub mode: Mode,
    /// Put a table of contents first.
    #[serde(default)]
    pub toc: bool,
    /// Directory that `read` paths are resolved under; required when any file has `read`.
    #[serde(default)]
    pub root: Option<String>,
}

/// Builds the context document; the response is a list of one document.
///
/// # Errors
/// `BAD_PARAMS` (missing `files`, an empty path or one with a control character, `read`
/// without `root`),
/// `BAD_PAYLOAD` (body items ≠ inline files), `PATH_REFUSED` (a path escaping the root),
/// `IO` (root or file unreadable), `INVALID_UTF8` (a file that is not UTF-8, with its index,
/// path and byte offset), `OUT_OF_RANGE` (a document over `AGGREGATE_MAX_ANSWER_BYTES`).
pub fn aggregate(_: &mut State, req: &Request<'_>) -> Result<Vec<u8>, OpError> {
    let params: AggregateParams = req.params()?;
    let inline = if req.body.is_empty() {
        Vec::new()
    } else {
        decode_list(req.body)?
    };
    let expected = params.files.iter().filter(|f| !f.read).count();
    if inline.len() != expected {
        return Err(OpError::bad_payload(format!(
            "body holds {} documents but params name {expected} inline files",
            inline.len()
        )));
    }
    let contents = gather(&params, &inline)?;
    let texts = contents
        .iter()
        .enumerate()
        .map(|(i, c)| file_str(i, &params.files[i].path, c))
        .collect::<Result<Vec<&str>, OpError>>()?;
    let doc = build_document(&params, &texts);
    if doc.len() as u64 > AGGREGATE_MAX_ANSWER_BYTES {
        return Err(OpError::new(
            ErrorCode::OutOfRange,
            format!(
                "aggregate document of {} bytes exceeds the answer limit of {AGGREGATE_MAX_ANSWER_BYTES} bytes",
                doc.len()
            ),
        ));
    }
    Ok(encode_list(&[doc.as_bytes()]))
}

/// Each file's bytes: the next inline body item, or the file read under the root.
fn gather<'a>(
    params: &AggregateParams,
    inline: &[&'a [u8]],
) -> Result<Vec<Cow<'a, [u8]>>, OpError> {
    let root = match (&params.root, params.files.iter().any(|f| f.read)) {
        (Some(r), true) => Some(Root::open(r)?),
        (None, true) => return Err(OpError::bad_params("files with \"read\" need a \"root\"")),
        (_, false) => None,
    };
    let mut next_inline = inline.iter();
    let mut out = Vec::with_capacity(params.files.len());
    for (i, f) in params.files.iter().enumerate() {
        if f.path.is_empty() {
            return Err(OpError::bad_params(format!("file {i}: empty path")));
        }
        if f.path.chars().any(char::is_control) {
            return Err(OpError::bad_params(format!(
                "file {i}: path {:?} holds a control character",
                f.path
            )));
        }
        match (&root, f.read) {
            (Some(root), true) => out.push(Cow::Owned(root.read(&f.path)?)),
            _ => out.push(Cow::Borrowed(next_inline.next().copied().unwrap_or(b""))),
        }
    }
    Ok(out)
}

/// Checks that file `index` is UTF-8.
fn file_str<'a>(index: usize, path: &str, bytes: &'a [u8]) -> Result<&'a str, OpError> {
    std::str::from_utf8(bytes)
        .map_err(|e| OpError::invalid_utf8(&format!("file {index} ({path:?})"), e))
}

/// Assembles the document from validated texts (one per `params.files` entry).
pub fn build_document(params: &AggregateParams, texts: &[&str]) -> String {
    let total: usize = texts.iter().map(|t| t.len() + 64).sum();
    let mut doc = String::with_capacity(total + 64 * usize::from(params.toc) * texts.len());
    if params.toc {
        push_toc(&mut doc, params);
    }
    for (i, (f, text)) in params.files.iter().zip(texts).enumerate() {
        if i > 0 || params.toc {
            doc.push_str(SECTION_SEPARATOR);
        }
        doc.push_str("### ");
        push_code_span(&mut doc, &f.path);
        doc.push_str("\n\n");
        match f.mode.unwrap_or(params.mode) {
            Mode::Outline if is_markdown(&f.path) => push_heading_list(&mut doc, text),
            _ => push_fenced(&mut doc, &f.path, text),
        }
    }
    if !doc.is_empty() {
        doc.push('\n');
    }
    doc
}

/// `## Contents` and one link per file to the slug its heading will get.
fn push_toc(doc: &mut String, params: &AggregateParams) {
    let mut slugger = Slugger::default();
    doc.push_str("## Contents\n");
    let _ = slugger.slug("Contents");
    for f in &params.files {
        doc.push_str("\n- [");
        push_code_span(doc, &f.path);
        doc.push_str("](#");
        doc.push_str(&slugger.slug(&f.path));
        doc.push(')');
    }
}

/// Longest run of `ch` in `text`.
fn longest_run(text: &str, ch: u8) -> usize {
    let (mut best, mut run) = (0, 0);
    for &b in text.as_bytes() {
        run = if b == ch { run + 1 } else { 0 };
        best = best.max(run);
    }
    best
}

/// A code span that shows `text` verbatim: a backtick string longer than any inside it, padded
/// with one space on each side where CommonMark would otherwise eat or merge characters.
fn push_code_span(doc: &mut String, text: &str) {
    let ticks = "`".repeat(longest_run(text, b'`') + 1);
    let pad = text.starts_with('`')
        || text.ends_with('`')
        || (text.starts_with(' ') && text.ends_with(' ') && !text.trim().is_empty());
    doc.push_str(&ticks);
    if pad {
        doc.push(' ');
    }
    doc.push_str(text);
    if pad {
        doc.push(' ');
    }
    doc.push_str(&ticks);
}

/// The content in a fence of `max(3, longest backtick run + 1)` backticks; a missing final
/// newline is supplied so the closing fence starts a line.
fn push_fenced(doc: &mut String, path: &str, text: &str) {
    let fence = "`".repeat(3.max(longest_run(text, b'`') + 1));
    doc.push_str(&fence);
    doc.push_str(guess_language(path));
    doc.push('\n');
    doc.push_str(text);
    if !text.is_empty() && !text.ends_with('\n') {
        doc.push('\n');
    }
    doc.push_str(&fence);
}

/// The headings of a markdown text as a nested list: each heading one level deeper than the
/// nearest earlier heading of a lower level; text with ASCII punctuation backslash-escaped.
fn push_heading_list(doc: &mut String, text: &str) {
    let outline = outline_document(text, ParseOptions::default().to_options());
    if outline.headings.is_empty() {
        doc.push_str("*(no headings)*");
        return;
    }
    let mut open: Vec<u8> = Vec::new();
    for (i, h) in outline.headings.iter().enumerate() {
        while open.last().is_some_and(|&l| l >= h.level) {
            open.pop();
        }
        if i > 0 {
            doc.push('\n');
        }
        for _ in 0..open.len() {
            doc.push_str("  ");
        }
        doc.push_str("- ");
        for c in h.text.chars() {
            match c {
                '\n' | '\r' => doc.push(' '),
                c if c.is_ascii_punctuation() => {
                    doc.push('\\');
                    doc.push(c);
                }
                c => doc.push(c),
            }
        }
        open.push(h.level);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(files: &[(&str, Mode)], toc: bool) -> AggregateParams {
        AggregateParams {
            files: files
                .iter()
                .map(|&(p, m)| FileSpec {
                    path: p.into(),
                    mode: Some(m),
                    read: false,
                })
                .collect(),
            mode: Mode::Full,
            toc,
            root: None,
        }
    }

    #[test]
    fn full_mode_fences_with_a_guessed_language() {
        let p = params(&[("a.rs", Mode::Full), ("b", Mode::Full)], false);
        let doc = build_document(&p, &["fn x() {}\n", "plain"]);
        assert_eq!(
            doc,
            "### `a.rs`\n\n```rust\nfn x() {}\n```\n\n---\n\n### `b`\n\n```\nplain\n```\n"
        );
    }

    #[test]
    fn fences_outgrow_backtick_runs_inside() {
        let p = params(&[("x.md", Mode::Full)], false);
        let doc = build_document(&p, &["````\n```\n````"]);
        assert!(doc.starts_with("### `x.md`\n\n`````markdown\n"), "{doc}");
        assert!(doc.ends_with("\n`````\n"), "{doc}");
    }

    #[test]
    fn outline_mode_nests_headings_and_escapes_them() {
        let p = params(&[("r.md", Mode::Outline), ("s.py", Mode::Outline)], false);
        let doc = build_document(&p, &["# A\n### B*\n## C\n# D\n", "x = 1\n"]);
        assert!(
            doc.starts_with("### `r.md`\n\n- A\n  - B\\*\n  - C\n- D\n\n---\n\n"),
            "{doc}"
        );
        assert!(doc.ends_with("```python\nx = 1\n```\n"));
    }

    #[test]
    fn toc_links_match_heading_slugs() {
        let p = params(&[("Contents", Mode::Full), ("a`b", Mode::Full)], true);
        let doc = build_document(&p, &["", ""]);
        assert!(doc.starts_with(
            "## Contents\n\n- [`Contents`](#contents-1)\n- [``a`b``](#ab)\n\n---\n\n### `Contents`\n\n```\n```"
        ), "{doc}");
    }
}
