//! `OP_MD_RENDER`: markdown documents → HTML documents (layout.md §9.2 "render").
//!
//! The body is a batch of documents in the list encoding; the response is the same number of
//! HTML documents in the list encoding, rendered with pulldown-cmark's `push_html` writer
//! straight into the response buffer (the length table is patched in at the end).
#![forbid(unsafe_code)]

use pulldown_cmark::{html, Options, Parser};

use super::options::{document_str, ParseOptions};
use crate::error::{ErrorCode, OpError};
use crate::ops::op::State;
use crate::ops::request::{decode_list, Request};

/// Renders every document of the body with the options in params.
///
/// # Errors
/// `BAD_PARAMS` for params that are not the options object, `BAD_PAYLOAD` for a body that is
/// not a list, `INVALID_UTF8` naming the first document that is not UTF-8 and its byte offset.
pub fn render(_: &mut State, req: &Request<'_>) -> Result<Vec<u8>, OpError> {
    let opts: ParseOptions = req.params()?;
    let docs = decode_list(req.body)?;
    let texts = docs
        .iter()
        .enumerate()
        .map(|(i, d)| document_str(i, d))
        .collect::<Result<Vec<&str>, OpError>>()?;
    render_list(&texts, opts.to_options())
}

/// Renders `texts` into one list-encoded response: the HTML of each in order.
///
/// The HTML is written straight into the response buffer, after a length table reserved as
/// NUL characters (valid UTF-8, so the buffer can be a `String` for `push_html`) and patched
/// once every length is known: one allocation, no copy.
///
/// # Errors
/// `INTERNAL` when a document's HTML exceeds the u32 length the list encoding allows.
pub fn render_list(texts: &[&str], options: Options) -> Result<Vec<u8>, OpError> {
    let table = 4 + 4 * texts.len();
    // HTML is usually a little longer than its markdown; 3/2 avoids most regrowth.
    let guess: usize = texts.iter().map(|t| t.len() + t.len() / 2).sum();
    let mut out = String::with_capacity(table + guess);
    out.push_str(&"\0".repeat(table));
    let mut ends = Vec::with_capacity(texts.len());
    for text in texts {
        html::push_html(&mut out, Parser::new_ext(text, options));
        ends.push(out.len());
    }
    let mut out = out.into_bytes();
    let mut write = |at: usize, v: usize, i: usize| -> Result<(), OpError> {
        let v = u32::try_from(v).map_err(|_| {
            OpError::new(
                ErrorCode::Internal,
                format!("html of document {i} exceeds 4 GiB"),
            )
        })?;
        if let Some(slot) = out.get_mut(at..at + 4) {
            slot.copy_from_slice(&v.to_le_bytes());
        }
        Ok(())
    };
    write(0, texts.len(), 0)?;
    let mut start = table;
    for (i, &end) in ends.iter().enumerate() {
        write(4 + 4 * i, end - start, i)?;
        start = end;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::request::encode_list;

    fn run(params: &[u8], docs: &[&[u8]]) -> Result<Vec<Vec<u8>>, OpError> {
        let body = encode_list(docs);
        let out = render(
            &mut State::default(),
            &Request {
                params,
                body: &body,
            },
        )?;
        Ok(decode_list(&out)?.into_iter().map(<[u8]>::to_vec).collect())
    }

    #[test]
    fn batch_renders_each_document_in_order() {
        let out = run(b"", &[b"# a", b"", b"*b*"]).unwrap();
        assert_eq!(out[0], b"<h1>a</h1>\n");
        assert_eq!(out[1], b"");
        assert_eq!(out[2], b"<p><em>b</em></p>\n");
    }

    #[test]
    fn options_switch_extensions() {
        let table = b"|a|\n|-|\n|b|\n";
        assert!(run(b"", &[table]).unwrap()[0].starts_with(b"<table>"));
        assert!(run(br#"{"tables":false}"#, &[table]).unwrap()[0].starts_with(b"<p>"));
        let quote: &[u8] = b"\"hi\"";
        assert_eq!(run(b"", &[quote]).unwrap()[0], b"<p>\"hi\"</p>\n");
        assert_eq!(
            run(br#"{"smart_punctuation":true}"#, &[quote]).unwrap()[0],
            "<p>\u{201c}hi\u{201d}</p>\n".as_bytes()
        );
    }

    #[test]
    fn bad_input_is_answered_with_the_right_code() {
        let e = run(b"", &[b"ok", b"x\xc3"]).unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidUtf8);
        assert!(e.message.contains("document 1") && e.message.contains("offset 1"));
        let e = render(
            &mut State::default(),
            &Request {
                params: b"",
                body: b"\x02\0\0\0",
            },
        )
        .unwrap_err();
        assert_eq!(e.code, ErrorCode::BadPayload);
        assert_eq!(run(b"[1]", &[]).unwrap_err().code, ErrorCode::BadParams);
    }
}
