//! Parser options shared by the markdown ops, and the UTF-8 check of their input documents
//! (layout.md §9.2 "Parser options").
//!
//! Every field maps to one pulldown-cmark [`Options`] flag. The defaults are those of
//! layout.md §9.2: tables, footnotes, strikethrough and task lists on; everything else off.
#![forbid(unsafe_code)]

use pulldown_cmark::Options;
use serde::Deserialize;

use crate::error::OpError;

/// The parser flags a request may set; unknown fields are ignored (layout.md §9.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct ParseOptions {
    /// `ENABLE_TABLES` (default on).
    pub tables: bool,
    /// `ENABLE_FOOTNOTES` (default on).
    pub footnotes: bool,
    /// `ENABLE_STRIKETHROUGH` (default on).
    pub strikethrough: bool,
    /// `ENABLE_TASKLISTS` (default on).
    pub tasklists: bool,
    /// `ENABLE_SMART_PUNCTUATION` (default off).
    pub smart_punctuation: bool,
    /// `ENABLE_HEADING_ATTRIBUTES` (default off).
    pub heading_attributes: bool,
    /// `ENABLE_MATH` (default off).
    pub math: bool,
    /// `ENABLE_DEFINITION_LIST` (default off).
    pub definition_list: bool,
    /// `ENABLE_GFM`: GitHub blockquote alerts (default off).
    pub gfm: bool,
    /// `ENABLE_SUPERSCRIPT` (default off).
    pub superscript: bool,
    /// `ENABLE_SUBSCRIPT` (default off).
    pub subscript: bool,
    /// `ENABLE_WIKILINKS` (default off).
    pub wikilinks: bool,
    /// `ENABLE_OLD_FOOTNOTES`, which implies footnotes (default off).
    pub old_footnotes: bool,
    /// `ENABLE_YAML_STYLE_METADATA_BLOCKS` and `ENABLE_PLUSES_DELIMITED_METADATA_BLOCKS`
    /// (default off).
    pub metadata_blocks: bool,
}

impl Default for ParseOptions {
    fn default() -> ParseOptions {
        ParseOptions {
            tables: true,
            footnotes: true,
            strikethrough: true,
            tasklists: true,
            smart_punctuation: false,
            heading_attributes: false,
            math: false,
            definition_list: false,
            gfm: false,
            superscript: false,
            subscript: false,
            wikilinks: false,
            old_footnotes: false,
            metadata_blocks: false,
        }
    }
}

impl ParseOptions {
    /// The pulldown-cmark flag set these options stand for.
    pub fn to_options(self) -> Options {
        let flags = [
            (self.tables, Options::ENABLE_TABLES),
            (self.footnotes, Options::ENABLE_FOOTNOTES),
            (self.strikethrough, Options::ENABLE_STRIKETHROUGH),
            (self.tasklists, Options::ENABLE_TASKLISTS),
            (self.smart_punctuation, Options::ENABLE_SMART_PUNCTUATION),
            (self.heading_attributes, Options::ENABLE_HEADING_ATTRIBUTES),
            (self.math, Options::ENABLE_MATH),
            (self.definition_list, Options::ENABLE_DEFINITION_LIST),
            (self.gfm, Options::ENABLE_GFM),
            (self.superscript, Options::ENABLE_SUPERSCRIPT),
            (self.subscript, Options::ENABLE_SUBSCRIPT),
            (self.wikilinks, Options::ENABLE_WIKILINKS),
            (self.old_footnotes, Options::ENABLE_OLD_FOOTNOTES),
            (
                self.metadata_blocks,
                Options::ENABLE_YAML_STYLE_METADATA_BLOCKS
                    | Options::ENABLE_PLUSES_DELIMITED_METADATA_BLOCKS,
            ),
        ];
        flags
            .into_iter()
            .filter(|(on, _)| *on)
            .fold(Options::empty(), |acc, (_, flag)| acc | flag)
    }
}

/// Checks that document `index` of a batch is UTF-8.
///
/// # Errors
/// `INVALID_UTF8` naming the document index and the byte offset of the first bad byte.
pub fn document_str(index: usize, bytes: &[u8]) -> Result<&str, OpError> {
    std::str::from_utf8(bytes).map_err(|e| OpError::invalid_utf8(&format!("document {index}"), e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;

    #[test]
    fn defaults_are_the_four_gfm_extensions() {
        let o = ParseOptions::default().to_options();
        assert_eq!(
            o,
            Options::ENABLE_TABLES
                | Options::ENABLE_FOOTNOTES
                | Options::ENABLE_STRIKETHROUGH
                | Options::ENABLE_TASKLISTS
        );
    }

    #[test]
    fn json_fields_override_defaults_and_unknown_fields_are_ignored() {
        let o: ParseOptions =
            serde_json::from_str(r#"{"tables":false,"math":true,"nope":1}"#).unwrap();
        assert!(!o.tables && o.math && o.footnotes);
        let all: ParseOptions = serde_json::from_str(
            r#"{"smart_punctuation":true,"heading_attributes":true,"definition_list":true,
                "gfm":true,"superscript":true,"subscript":true,"wikilinks":true,
                "old_footnotes":true,"metadata_blocks":true,"math":true}"#,
        )
        .unwrap();
        assert_eq!(all.to_options().bits().count_ones(), 15);
    }

    #[test]
    fn invalid_utf8_names_document_and_offset() {
        let e = document_str(7, b"ab\xffc").unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidUtf8);
        assert_eq!(e.message, "document 7 is not valid UTF-8 at byte offset 2");
    }
}
