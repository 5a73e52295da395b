//! The request payload every op receives (layout.md §9): `params_len: u32 LE | params | body`,
//! and the list encoding of §9.1 that batch ops use for their bodies and answers.
#![forbid(unsafe_code)]

use crate::error::OpError;

/// What an op receives: its params and body, both borrowed from the reassembled message.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// The params section: a UTF-8 JSON object, or empty when the client sent none.
    pub params: &'a [u8],
    /// The body section: op-specific bytes (layout.md §9).
    pub body: &'a [u8],
}

impl<'a> Request<'a> {
    /// Splits a request payload into params and body.
    ///
    /// # Errors
    /// `BadPayload` when the payload is shorter than its `params_len` prefix says.
    pub fn parse(payload: &'a [u8]) -> Result<Request<'a>, OpError> {
        let Some((len, rest)) = payload.split_first_chunk::<4>() else {
            return Err(OpError::bad_payload(format!(
                "request payload of {} bytes is shorter than its 4-byte params_len prefix",
                payload.len()
            )));
        };
        let len = u32::from_le_bytes(*len) as usize;
        if len > rest.len() {
            return Err(OpError::bad_payload(format!(
                "params_len {len} exceeds the {} bytes that follow it",
                rest.len()
            )));
        }
        let (params, body) = rest.split_at(len);
        Ok(Request { params, body })
    }

    /// Decodes the params as `T`; empty params decode as `{}`.
    ///
    /// Params must be a JSON object (layout.md §9.1): serde would otherwise read a JSON array
    /// as a struct's fields in order, so anything else is refused before serde sees it.
    ///
    /// # Errors
    /// `BadParams` naming what serde rejected, or "params must be a JSON object".
    pub fn params<T: serde::de::DeserializeOwned>(&self) -> Result<T, OpError> {
        let text: &[u8] = if self.params.is_empty() {
            b"{}"
        } else {
            self.params
        };
        let first = text
            .iter()
            .find(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r'));
        if first != Some(&b'{') {
            return Err(OpError::bad_params("params must be a JSON object"));
        }
        serde_json::from_slice(text).map_err(|e| OpError::bad_params(format!("params: {e}")))
    }

    /// Checks the params of an op that takes none: empty, or a JSON object (whose fields
    /// are ignored, as §9.1 says of unknown fields). Costs nothing when they are empty.
    ///
    /// # Errors
    /// `BadParams` as for [`Request::params`].
    pub fn check_params(&self) -> Result<(), OpError> {
        if self.params.is_empty() {
            return Ok(());
        }
        self.params::<serde::de::IgnoredAny>().map(|_| ())
    }
}

/// Encodes a request payload (`params_len | params | body`); the inverse of [`Request::parse`].
pub fn encode_request(params: &[u8], body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 + params.len() + body.len());
    out.extend_from_slice(&(params.len() as u32).to_le_bytes());
    out.extend_from_slice(params);
    out.extend_from_slice(body);
    out
}

/// Decodes the list encoding of layout.md §9.1: `count: u32 | count × len: u32 | items`.
///
/// # Errors
/// `BadPayload` when the counts or lengths run past the end of `body`, or bytes are left over.
pub fn decode_list(body: &[u8]) -> Result<Vec<&[u8]>, OpError> {
    let word = |at: usize| -> Option<usize> {
        let b = body.get(at..at + 4)?;
        Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
    };
    let count = word(0).ok_or_else(|| OpError::bad_payload("list body shorter than its count"))?;
    let lens_end = count
        .checked_mul(4)
        .and_then(|n| n.checked_add(4))
        .filter(|&end| end <= body.len())
        .ok_or_else(|| {
            OpError::bad_payload(format!("list of {count} items: lengths run past the body"))
        })?;
    let mut items = Vec::with_capacity(count);
    let mut at = lens_end;
    for i in 0..count {
        let len = word(4 + 4 * i).unwrap_or(usize::MAX);
        let item = at
            .checked_add(len)
            .and_then(|end| body.get(at..end))
            .ok_or_else(|| {
                OpError::bad_payload(format!("list item {i} of {len} bytes runs past the body"))
            })?;
        items.push(item);
        at += len;
    }
    if at != body.len() {
        return Err(OpError::bad_payload(format!(
            "{} bytes left over after a list of {count} items",
            body.len() - at
        )));
    }
    Ok(items)
}

/// Encodes items in the list encoding of layout.md §9.1; the inverse of [`decode_list`].
pub fn encode_list<T: AsRef<[u8]>>(items: &[T]) -> Vec<u8> {
    let total: usize = items.iter().map(|i| i.as_ref().len()).sum();
    let mut out = Vec::with_capacity(4 + 4 * items.len() + total);
    out.extend_from_slice(&(items.len() as u32).to_le_bytes());
    for item in items {
        out.extend_from_slice(&(item.as_ref().len() as u32).to_le_bytes());
    }
    for item in items {
        out.extend_from_slice(item.as_ref());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;

    #[test]
    fn request_round_trips_params_and_body() {
        let payload = encode_request(br#"{"a":1}"#, b"body");
        let req = Request::parse(&payload).unwrap();
        assert_eq!(req.params, br#"{"a":1}"#);
        assert_eq!(req.body, b"body");
    }

    #[test]
    fn short_payloads_are_bad_payload_errors() {
        assert_eq!(
            Request::parse(b"\x01").unwrap_err().code,
            ErrorCode::BadPayload
        );
        let e = Request::parse(b"\x09\x00\x00\x00abc").unwrap_err();
        assert_eq!(e.code, ErrorCode::BadPayload);
        assert!(e.message.contains("params_len 9"), "{}", e.message);
    }

    #[test]
    fn lists_round_trip_and_reject_overruns() {
        let items: [&[u8]; 3] = [b"a", b"", b"xyz"];
        let enc = encode_list(&items);
        assert_eq!(decode_list(&enc).unwrap(), items.to_vec());
        assert_eq!(decode_list(&encode_list::<&[u8]>(&[])).unwrap().len(), 0);
        for cut in 0..enc.len() {
            assert_eq!(
                decode_list(&enc[..cut]).unwrap_err().code,
                ErrorCode::BadPayload
            );
        }
        let mut long = enc.clone();
        long.push(0);
        assert!(decode_list(&long)
            .unwrap_err()
            .message
            .contains("left over"));
        assert!(decode_list(b"\xff\xff\xff\xff").is_err());
    }

    #[test]
    fn empty_params_decode_as_empty_object() {
        #[derive(Debug, serde::Deserialize)]
        struct P {
            #[serde(default)]
            x: u32,
        }
        let req = Request {
            params: b"",
            body: b"",
        };
        assert_eq!(req.params::<P>().unwrap().x, 0);
        let bad = Request {
            params: b"{",
            body: b"",
        };
        assert_eq!(bad.params::<P>().unwrap_err().code, ErrorCode::BadParams);
    }
}
