//! `OP_MD_AGGREGATE`: many files → one context document (layout.md §9.2 "aggregate").
//!
//! Per file a `### \`path\`` heading, then either the content in a fenced code block whose
//! fence is longer than any backtick run in the content (full mode) or, for markdown files, the
//! file's headings as a nested list (outline mode); sections are joined by `\n\n---\n\n`, with
//! an optional table of contents first. Files come inline in the body or are read by the worker
//! under a root the client names (`super::files`), and the response is a list of one document,
//! so a pipeline can feed it to `render` or `outline`. A file that cannot be read or is not
//! UTF-8 fails the request (`on_error: "raise"`, the default), is left out (`"skip"`) or is
//! replaced by a visible note (`"note"`); `report` appends a JSON item listing those files with
//! the reasons `super::reasons` names.
#![forbid(unsafe_code)]

use std::borrow::Cow;

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::files::{guess_language, is_markdown, Root, AGGREGATE_MAX_ANSWER_BYTES};
use super::options::ParseOptions;
use super::outline::{outline_document, Slugger};
use super::reasons;
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

/// What happens to a file that cannot be read or is not UTF-8 (layout.md §9.2 "Per-file errors").
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnError {
    /// The request fails with the file's error (the answer of layout v1 before `on_error`).
    #[default]
    Raise,
    /// The file's section is left out of the document (and out of the table of contents).
    Skip,
    /// The file keeps its heading; a note with the reason stands in place of its content.
    Note,
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
    /// What a failing file does to the request.
    #[serde(default)]
    pub on_error: OnError,
    /// Append a second answer item: the JSON report of the files not included.
    #[serde(default)]
    pub report: bool,
}

/// What the document shows for one file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section<'a> {
    /// The file's (UTF-8) text, in the file's mode.
    Text(&'a str),
    /// `*(not included: <reason>)*` under the file's heading (`on_error: "note"`).
    Note(&'a str),
    /// Nothing: no heading, no table-of-contents entry (`on_error: "skip"`).
    Skipped,
}

/// One file that was not included, as the report item lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FileFailure {
    /// Index into `params.files`.
    pub index: usize,
    /// The path as the client gave it.
    pub path: String,
    /// The wire error code `on_error: "raise"` would have answered with.
    pub code: u16,
    /// One of layout.md §9.2's reasons ("a symlink", "not found", …).
    pub reason: String,
}

/// One file's bytes, or the error reading it.
type Content<'a> = Result<Cow<'a, [u8]>, OpError>;

/// The report item: `{"errors": [...]}`.
#[derive(Debug, Serialize)]
struct Report<'a> {
    errors: Vec<&'a FileFailure>,
}

/// Builds the context document; the response is a list of one document, then the report
/// when `params.report` asks for it.
///
/// # Errors
/// `BAD_PARAMS` (missing `files`, an empty path or one with a control character, `read`
/// without `root`),
/// `BAD_PAYLOAD` (body items ≠ inline files), `IO` (root unusable), `OUT_OF_RANGE` (a
/// document over `AGGREGATE_MAX_ANSWER_BYTES`); with `on_error: "raise"` also a file's own error:
/// `PATH_REFUSED` (a path escaping the root), `IO` (file unreadable), `INVALID_UTF8` (a file
/// that is not UTF-8, with its index, path and byte offset).
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
    let outcomes = classify(&params, &contents)?;
    let sections: Vec<Section<'_>> = outcomes
        .iter()
        .map(|o| match o {
            Ok(text) => Section::Text(text),
            Err(f) if params.on_error == OnError::Note => Section::Note(&f.reason),
            Err(_) => Section::Skipped,
        })
        .collect();
    let doc = build_document(&params, &sections);
    if doc.len() as u64 > AGGREGATE_MAX_ANSWER_BYTES {
        return Err(OpError::new(
            ErrorCode::OutOfRange,
            format!(
                "aggregate document of {} bytes exceeds the answer limit of {AGGREGATE_MAX_ANSWER_BYTES} bytes",
                doc.len()
            ),
        ));
    }
    if !params.report {
        return Ok(encode_list(&[doc.as_bytes()]));
    }
    let errors: Vec<&FileFailure> = outcomes.iter().filter_map(|o| o.as_ref().err()).collect();
    let report = serde_json::to_vec(&Report { errors })
        .map_err(|e| OpError::new(ErrorCode::Internal, format!("report: {e}")))?;
    Ok(encode_list(&[doc.as_bytes(), &report]))
}

/// Per file, its text or why it was not included. With `on_error: "raise"` the first file
/// that is not UTF-8 fails the request instead.
fn classify<'a>(
    params: &AggregateParams,
    contents: &'a [Content<'_>],
) -> Result<Vec<Result<&'a str, FileFailure>>, OpError> {
    let root = failure_root(params, contents);
    let mut out = Vec::with_capacity(contents.len());
    for (index, content) in contents.iter().enumerate() {
        let path = &params.files[index].path;
        let (error, reason) = match content {
            Ok(bytes) => match std::str::from_utf8(bytes) {
                Ok(text) => {
                    out.push(Ok(text));
                    continue;
                }
                Err(e) => (
                    OpError::invalid_utf8(&format!("file {index} ({path:?})"), e),
                    reasons::not_utf8(e.valid_up_to()),
                ),
            },
            Err(e) => (e.clone(), reasons::read_failure(root.as_deref(), path, e)),
        };
        if params.on_error == OnError::Raise {
            return Err(error);
        }
        out.push(Err(FileFailure {
            index,
            path: path.clone(),
            code: error.code.to_u16(),
            reason,
        }));
    }
    Ok(out)
}

/// A read error as `on_error: "raise"` answers it: the same code, and the message
/// `file <index> ("<path>"): <reason>` (layout.md §9.2).
fn explained(params: &AggregateParams, index: usize, path: &str, e: &OpError) -> OpError {
    let reason = reasons::read_failure(canonical_root(params).as_deref(), path, e);
    OpError::new(e.code, format!("file {index} ({path:?}): {reason}"))
}

/// The canonical root when some read failed: needed only to name why.
fn failure_root(params: &AggregateParams, contents: &[Content<'_>]) -> Option<PathBuf> {
    if contents.iter().all(Result::is_ok) {
        return None;
    }
    canonical_root(params)
}

/// `params.root` canonicalized (as `Root::open` did), or None.
fn canonical_root(params: &AggregateParams) -> Option<PathBuf> {
    std::fs::canonicalize(params.root.as_deref()?).ok()
}

/// Each file's bytes (the next inline body item, or the file read under the root), or the
/// error reading it; an invalid path or root fails the whole request, and so does a read
/// error with `on_error: "raise"` (the first, in file order, before any encoding check, the
/// order layout v1 gave before `on_error` existed).
fn gather<'a>(params: &AggregateParams, inline: &[&'a [u8]]) -> Result<Vec<Content<'a>>, OpError> {
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
            (Some(root), true) => match root.read(&f.path) {
                Err(e) if params.on_error == OnError::Raise => {
                    return Err(explained(params, i, &f.path, &e))
                }
                read => out.push(read.map(Cow::Owned)),
            },
            _ => out.push(Ok(Cow::Borrowed(
                next_inline.next().copied().unwrap_or(b""),
            ))),
        }
    }
    Ok(out)
}

/// Assembles the document from one section per `params.files` entry.
pub fn build_document(params: &AggregateParams, sections: &[Section<'_>]) -> String {
    let total: usize = sections.iter().map(|s| section_len(s) + 64).sum();
    let mut doc = String::with_capacity(total + 64 * usize::from(params.toc) * sections.len());
    if params.toc {
        push_toc(&mut doc, params, sections);
    }
    let shown = params
        .files
        .iter()
        .zip(sections)
        .filter(|(_, s)| **s != Section::Skipped);
    for (i, (f, section)) in shown.enumerate() {
        if i > 0 || params.toc {
            doc.push_str(SECTION_SEPARATOR);
        }
        doc.push_str("### ");
        push_code_span(&mut doc, &f.path);
        doc.push_str("\n\n");
        match (section, f.mode.unwrap_or(params.mode)) {
            (Section::Note(reason), _) => push_note(&mut doc, reason),
            (Section::Text(text), Mode::Outline) if is_markdown(&f.path) => {
                push_heading_list(&mut doc, text)
            }
            (Section::Text(text), _) => push_fenced(&mut doc, &f.path, text),
            (Section::Skipped, _) => {}
        }
    }
    if !doc.is_empty() {
        doc.push('\n');
    }
    doc
}

fn section_len(s: &Section<'_>) -> usize {
    match s {
        Section::Text(t) | Section::Note(t) => t.len(),
        Section::Skipped => 0,
    }
}

/// `*(not included: <reason>)*`, the reason escaped as heading text is.
fn push_note(doc: &mut String, reason: &str) {
    doc.push_str("*(not included: ");
    push_escaped(doc, reason);
    doc.push_str(")*");
}

/// `## Contents` and one link per file to the slug its heading will get.
fn push_toc(doc: &mut String, params: &AggregateParams, sections: &[Section<'_>]) {
    let mut slugger = Slugger::default();
    doc.push_str("## Contents\n");
    let _ = slugger.slug("Contents");
    let shown = params.files.iter().zip(sections);
    for (f, _) in shown.filter(|(_, s)| **s != Section::Skipped) {
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
        push_escaped(doc, &h.text);
        open.push(h.level);
    }
}

/// `text` on one line (line breaks as spaces) with ASCII punctuation backslash-escaped.
fn push_escaped(doc: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '\n' | '\r' => doc.push(' '),
            c if c.is_ascii_punctuation() => {
                doc.push('\\');
                doc.push(c);
            }
            c => doc.push(c),
        }
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
            on_error: OnError::Raise,
            report: false,
        }
    }

    fn texts<'a>(t: &[&'a str]) -> Vec<Section<'a>> {
        t.iter().map(|t| Section::Text(t)).collect()
    }

    #[test]
    fn notes_stand_in_for_files_and_skipped_files_leave_no_trace() {
        let p = params(
            &[("a", Mode::Full), ("b*", Mode::Full), ("c", Mode::Full)],
            true,
        );
        let sections = [
            Section::Skipped,
            Section::Note("not UTF-8 (invalid byte at offset 3)"),
            Section::Text("x"),
        ];
        assert_eq!(
            build_document(&p, &sections),
            "## Contents\n\n- [`b*`](#b)\n- [`c`](#c)\n\n---\n\n### `b*`\n\n\
             *(not included: not UTF\\-8 \\(invalid byte at offset 3\\))*\n\n---\n\n\
             ### `c`\n\n```\nx\n```\n"
        );
    }

    #[test]
    fn full_mode_fences_with_a_guessed_language() {
        let p = params(&[("a.rs", Mode::Full), ("b", Mode::Full)], false);
        let doc = build_document(&p, &texts(&["fn x() {}\n", "plain"]));
        assert_eq!(
            doc,
            "### `a.rs`\n\n```rust\nfn x() {}\n```\n\n---\n\n### `b`\n\n```\nplain\n```\n"
        );
    }

    #[test]
    fn fences_outgrow_backtick_runs_inside() {
        let p = params(&[("x.md", Mode::Full)], false);
        let doc = build_document(&p, &texts(&["````\n```\n````"]));
        assert!(doc.starts_with("### `x.md`\n\n`````markdown\n"), "{doc}");
        assert!(doc.ends_with("\n`````\n"), "{doc}");
    }

    #[test]
    fn outline_mode_nests_headings_and_escapes_them() {
        let p = params(&[("r.md", Mode::Outline), ("s.py", Mode::Outline)], false);
        let doc = build_document(&p, &texts(&["# A\n### B*\n## C\n# D\n", "x = 1\n"]));
        assert!(
            doc.starts_with("### `r.md`\n\n- A\n  - B\\*\n  - C\n- D\n\n---\n\n"),
            "{doc}"
        );
        assert!(doc.ends_with("```python\nx = 1\n```\n"));
    }

    #[test]
    fn toc_links_match_heading_slugs() {
        let p = params(&[("Contents", Mode::Full), ("a`b", Mode::Full)], true);
        let doc = build_document(&p, &texts(&["", ""]));
        assert!(doc.starts_with(
            "## Contents\n\n- [`Contents`](#contents-1)\n- [``a`b``](#ab)\n\n---\n\n### `Contents`\n\n```\n```"
        ), "{doc}");
    }
}
