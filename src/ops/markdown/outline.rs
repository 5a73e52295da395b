//! `OP_MD_OUTLINE`: the structure of markdown documents as JSON (layout.md §9.2 "outline").
//!
//! One pass over pulldown-cmark's offset iterator per document collects headings (with a
//! GitHub-style slug), code blocks, links and images, and a word count. Line numbers come from
//! a table of line starts built once per document and searched by bisection.
#![forbid(unsafe_code)]

use std::collections::HashMap;
use std::ops::Range;

use pulldown_cmark::{CodeBlockKind, Event, Options, Parser, Tag, TagEnd};
use serde::Serialize;

use super::options::{document_str, ParseOptions};
use crate::error::OpError;
use crate::ops::op::State;
use crate::ops::request::{decode_list, Request};

/// The outline of one document, serialized as one JSON object (layout.md §9.2).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Outline {
    /// Headings in document order.
    pub headings: Vec<Heading>,
    /// Fenced and indented code blocks in document order.
    pub code_blocks: Vec<CodeBlock>,
    /// Links and images in document order (of their start).
    pub links: Vec<Link>,
    /// Maximal runs of non-whitespace characters in the text content.
    pub words: u64,
}

/// One heading.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Heading {
    /// 1 to 6.
    pub level: u8,
    /// Text content, breaks as single spaces.
    pub text: String,
    /// The explicit `{#id}` when present, else the GitHub-style slug of `text`, deduplicated.
    pub slug: String,
    /// 1-based line of the heading's first byte.
    pub line: usize,
}

/// One code block.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CodeBlock {
    /// The info string up to its first space; `None` when empty or indented.
    pub lang: Option<String>,
    /// Fenced (true) or indented (false).
    pub fenced: bool,
    /// 1-based line of the block's first byte (the opening fence when fenced).
    pub start_line: usize,
    /// 1-based line of the block's last byte (the closing fence when there is one).
    pub end_line: usize,
}

/// One link or image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Link {
    /// `"link"` or `"image"`.
    pub kind: &'static str,
    /// Destination URL as parsed (reference links resolved).
    pub dest: String,
    /// Title, empty when none.
    pub title: String,
    /// Text content (for an image: its alt text).
    pub text: String,
    /// 1-based line of the link's first byte.
    pub line: usize,
}

/// Outlines every document of the body; the response is one JSON array of objects.
///
/// # Errors
/// `BAD_PARAMS`, `BAD_PAYLOAD`, or `INVALID_UTF8` naming the document and byte offset.
pub fn outline(_: &mut State, req: &Request<'_>) -> Result<Vec<u8>, OpError> {
    let options = req.params::<ParseOptions>()?.to_options();
    let docs = decode_list(req.body)?;
    let mut outlines = Vec::with_capacity(docs.len());
    for (i, doc) in docs.iter().enumerate() {
        outlines.push(outline_document(document_str(i, doc)?, options));
    }
    serde_json::to_vec(&outlines)
        .map_err(|e| OpError::new(crate::error::ErrorCode::Internal, format!("json: {e}")))
}

/// Line starts of a text, for offset → 1-based line number by bisection.
///
/// A line ends at `\n`, at `\r\n`, or at a `\r` not followed by `\n` (as in CommonMark).
#[derive(Debug, Clone)]
pub struct LineIndex {
    starts: Vec<usize>,
}

impl LineIndex {
    /// Scans `text` once.
    pub fn new(text: &str) -> LineIndex {
        let bytes = text.as_bytes();
        let mut starts = vec![0];
        for (i, &b) in bytes.iter().enumerate() {
            if b == b'\n' || (b == b'\r' && bytes.get(i + 1) != Some(&b'\n')) {
                starts.push(i + 1);
            }
        }
        LineIndex { starts }
    }

    /// The 1-based line holding byte `offset`.
    pub fn line(&self, offset: usize) -> usize {
        self.starts.partition_point(|&s| s <= offset)
    }
}

/// GitHub-style heading slugs, deduplicated with `-1`, `-2`, ... (github-slugger's rule).
#[derive(Debug, Default)]
pub struct Slugger {
    seen: HashMap<String, u32>,
}

impl Slugger {
    /// The slug for `text`: lower case; letters, digits, `-` and `_` kept; whitespace to `-`;
    /// everything else dropped; `-N` appended when the slug was already handed out.
    pub fn slug(&mut self, text: &str) -> String {
        let mut base = String::with_capacity(text.len());
        for c in text.chars() {
            if c.is_alphanumeric() || c == '-' || c == '_' {
                base.extend(c.to_lowercase());
            } else if c.is_whitespace() {
                base.push('-');
            }
        }
        let mut slug = base.clone();
        while self.seen.contains_key(&slug) {
            let n = self.seen.entry(base.clone()).or_insert(0);
            *n += 1;
            slug = format!("{base}-{n}");
        }
        self.seen.insert(slug.clone(), 0);
        slug
    }
}

/// Outlines one document.
pub fn outline_document(text: &str, options: Options) -> Outline {
    let mut w = Walker {
        lines: LineIndex::new(text),
        out: Outline::default(),
        slugger: Slugger::default(),
        heading: None,
        open_links: Vec::new(),
        in_word: false,
    };
    for (event, range) in Parser::new_ext(text, options).into_offset_iter() {
        w.event(event, range);
    }
    w.out
}

/// The state of one outline pass.
struct Walker {
    /// Line starts of the document; searched only for events that report a line.
    lines: LineIndex,
    out: Outline,
    slugger: Slugger,
    /// The heading being collected: level, line, explicit id, text so far.
    heading: Option<(u8, usize, Option<String>, String)>,
    /// Indices into `out.links` of the links and images still open.
    open_links: Vec<usize>,
    /// Whether the last character counted was part of a word.
    in_word: bool,
}

impl Walker {
    fn event(&mut self, event: Event<'_>, range: Range<usize>) {
        match event {
            Event::Start(tag) => self.start(tag, range),
            Event::End(tag) => self.end(tag),
            Event::Text(t) | Event::Code(t) | Event::InlineMath(t) | Event::DisplayMath(t) => {
                self.text(&t)
            }
            Event::SoftBreak | Event::HardBreak => {
                self.in_word = false;
                self.text(" ");
            }
            _ => self.in_word = false,
        }
    }

    fn start(&mut self, tag: Tag<'_>, range: Range<usize>) {
        let line = || self.lines.line(range.start);
        match tag {
            Tag::Heading { level, id, .. } => {
                self.in_word = false;
                let id = id.map(|i| i.into_string());
                self.heading = Some((level as u8, line(), id, String::new()));
            }
            Tag::CodeBlock(kind) => {
                self.in_word = false;
                let (lang, fenced) = match kind {
                    CodeBlockKind::Fenced(info) => {
                        let lang = info.split(' ').next().unwrap_or("");
                        ((!lang.is_empty()).then(|| lang.to_string()), true)
                    }
                    CodeBlockKind::Indented => (None, false),
                };
                let last = range.end.saturating_sub(1).max(range.start);
                let (start_line, end_line) = (line(), self.lines.line(last));
                self.out.code_blocks.push(CodeBlock {
                    lang,
                    fenced,
                    start_line,
                    end_line,
                });
            }
            Tag::Link {
                dest_url, title, ..
            } => {
                let line = line();
                self.open_link("link", dest_url.into_string(), title.into_string(), line)
            }
            Tag::Image {
                dest_url, title, ..
            } => {
                let line = line();
                self.open_link("image", dest_url.into_string(), title.into_string(), line)
            }
            Tag::Emphasis
            | Tag::Strong
            | Tag::Strikethrough
            | Tag::Superscript
            | Tag::Subscript => {}
            _ => self.in_word = false,
        }
    }

    fn end(&mut self, tag: TagEnd) {
        match tag {
            TagEnd::Heading(_) => {
                self.in_word = false;
                if let Some((level, line, id, text)) = self.heading.take() {
                    let slug = id.unwrap_or_else(|| self.slugger.slug(&text));
                    self.out.headings.push(Heading {
                        level,
                        text,
                        slug,
                        line,
                    });
                }
            }
            TagEnd::Link | TagEnd::Image => {
                self.open_links.pop();
            }
            TagEnd::Emphasis
            | TagEnd::Strong
            | TagEnd::Strikethrough
            | TagEnd::Superscript
            | TagEnd::Subscript => {}
            _ => self.in_word = false,
        }
    }

    fn open_link(&mut self, kind: &'static str, dest: String, title: String, line: usize) {
        self.open_links.push(self.out.links.len());
        self.out.links.push(Link {
            kind,
            dest,
            title,
            text: String::new(),
            line,
        });
    }

    fn text(&mut self, t: &str) {
        if t.is_ascii() {
            // ASCII's White_Space characters are exactly tab, LF, VT, FF, CR and space.
            for &b in t.as_bytes() {
                let space = matches!(b, b'\t'..=b'\r' | b' ');
                self.out.words += u64::from(!space && !self.in_word);
                self.in_word = !space;
            }
        } else {
            for c in t.chars() {
                let space = c.is_whitespace();
                self.out.words += u64::from(!space && !self.in_word);
                self.in_word = !space;
            }
        }
        if let Some((_, _, _, heading)) = &mut self.heading {
            heading.push_str(t);
        }
        for &i in &self.open_links {
            if let Some(link) = self.out.links.get_mut(i) {
                link.text.push_str(t);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outline_of(text: &str) -> Outline {
        outline_document(text, super::ParseOptions::default().to_options())
    }

    #[test]
    fn line_index_counts_every_line_ending() {
        let idx = LineIndex::new("a\nb\r\nc\rd");
        let lines: Vec<usize> = (0..8).map(|o| idx.line(o)).collect();
        assert_eq!(lines, [1, 1, 2, 2, 2, 3, 3, 4]);
    }

    #[test]
    fn slugs_follow_github_and_deduplicate() {
        let mut s = Slugger::default();
        assert_eq!(s.slug("Hello, World!"), "hello-world");
        assert_eq!(s.slug("Hello World"), "hello-world-1");
        assert_eq!(s.slug("hello-world-1"), "hello-world-1-1");
        assert_eq!(s.slug("Ünïcode_ok"), "ünïcode_ok");
        // github-slugger counts per base: the third "a" skips "a-1", taken by a heading.
        let mut s = Slugger::default();
        let got: Vec<String> = ["a", "a-1", "a", "a"].iter().map(|t| s.slug(t)).collect();
        assert_eq!(got, ["a", "a-1", "a-2", "a-3"]);
    }

    #[test]
    fn headings_code_links_and_words() {
        let doc = "# Title *here*\n\ntext [a `b`](http://x \"t\") ![alt](i.png)\n\n```rust x\nfn\n```\n\n    ind\n\nSet\n===\n";
        let o = outline_of(doc);
        assert_eq!(o.headings.len(), 2);
        assert_eq!((o.headings[0].level, o.headings[0].line), (1, 1));
        assert_eq!(o.headings[0].text, "Title here");
        assert_eq!(o.headings[0].slug, "title-here");
        assert_eq!(
            (o.headings[1].text.as_str(), o.headings[1].line),
            ("Set", 11)
        );
        assert_eq!(o.code_blocks.len(), 2);
        assert_eq!(o.code_blocks[0].lang.as_deref(), Some("rust"));
        assert_eq!(
            (o.code_blocks[0].start_line, o.code_blocks[0].end_line),
            (5, 7)
        );
        assert_eq!(
            (o.code_blocks[1].fenced, o.code_blocks[1].start_line),
            (false, 9)
        );
        assert_eq!(o.links[0].kind, "link");
        assert_eq!(
            (o.links[0].dest.as_str(), o.links[0].title.as_str()),
            ("http://x", "t")
        );
        assert_eq!(o.links[0].text, "a b");
        assert_eq!(
            (o.links[1].kind, o.links[1].text.as_str()),
            ("image", "alt")
        );
        // Title here | text a b alt | fn | ind | Set
        assert_eq!(o.words, 9);
    }

    #[test]
    fn words_continue_across_inline_tags_only() {
        assert_eq!(outline_of("foo*bar* baz").words, 2);
        assert_eq!(outline_of("AT&amp;T").words, 1);
        assert_eq!(outline_of("a\nb").words, 2);
        assert_eq!(outline_of("- a\n- b").words, 2);
    }

    #[test]
    fn explicit_heading_ids_are_the_slug() {
        let o = outline_document("# A {#custom}\n", Options::ENABLE_HEADING_ATTRIBUTES);
        assert_eq!(
            (o.headings[0].text.as_str(), o.headings[0].slug.as_str()),
            ("A", "custom")
        );
    }
}
