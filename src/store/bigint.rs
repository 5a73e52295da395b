//! Integers beyond `i64`: conversions between CPython marshal's base-2^15 digits, `i64` and
//! decimal text (layout.md §9.3 "Value model").
#![forbid(unsafe_code)]

/// Bits per marshal `TYPE_LONG` digit.
pub const DIGIT_BITS: u32 = 15;
const DIGIT_MASK: u32 = (1 << DIGIT_BITS) - 1;

/// The value of `digits` (magnitude, least significant first) with a sign, when it fits `i64`.
pub fn to_i64(neg: bool, digits: &[u16]) -> Option<i64> {
    let mut mag: u128 = 0;
    for (i, &d) in digits.iter().enumerate() {
        if i >= 5 {
            // 5 digits = 75 bits, already beyond i64; more digits only matter if non-zero.
            if d != 0 {
                return None;
            }
            continue;
        }
        mag |= u128::from(d) << (DIGIT_BITS as usize * i);
    }
    if neg {
        let v = -(i128::try_from(mag).ok()?);
        i64::try_from(v).ok()
    } else {
        i64::try_from(mag).ok()
    }
}

/// The magnitude digits of `v` (empty for zero) and its sign.
pub fn from_i64(v: i64) -> (bool, Vec<u16>) {
    let mut mag = v.unsigned_abs();
    let mut digits = Vec::new();
    while mag != 0 {
        digits.push((mag & u64::from(DIGIT_MASK)) as u16);
        mag >>= DIGIT_BITS;
    }
    (v < 0, digits)
}

/// Parses ASCII decimal digits (no sign) into base-2^15 digits, least significant first.
/// Returns `None` when `text` holds a non-digit.
pub fn from_decimal(text: &[u8]) -> Option<Vec<u16>> {
    let mut digits: Vec<u16> = Vec::new();
    for &c in text {
        if !c.is_ascii_digit() {
            return None;
        }
        let mut carry = u32::from(c - b'0');
        for d in digits.iter_mut() {
            let v = u32::from(*d) * 10 + carry;
            *d = (v & DIGIT_MASK) as u16;
            carry = v >> DIGIT_BITS;
        }
        while carry != 0 {
            digits.push((carry & DIGIT_MASK) as u16);
            carry >>= DIGIT_BITS;
        }
    }
    trim(&mut digits);
    Some(digits)
}

/// Decimal text of a magnitude given in base-2^15 digits (least significant first).
pub fn to_decimal(digits: &[u16]) -> String {
    let mut mag: Vec<u16> = digits.to_vec();
    trim(&mut mag);
    if mag.is_empty() {
        return "0".to_string();
    }
    // Repeated division by 10^4; each remainder gives four decimal digits.
    let mut groups: Vec<u32> = Vec::new();
    while !mag.is_empty() {
        let mut rem: u32 = 0;
        for d in mag.iter_mut().rev() {
            let cur = (rem << DIGIT_BITS) | u32::from(*d);
            *d = (cur / 10_000) as u16;
            rem = cur % 10_000;
        }
        groups.push(rem);
        trim(&mut mag);
    }
    let mut out = String::with_capacity(groups.len() * 4);
    if let Some(first) = groups.pop() {
        out.push_str(&first.to_string());
    }
    while let Some(g) = groups.pop() {
        out.push_str(&format!("{g:04}"));
    }
    out
}

/// Drops most-significant zero digits.
pub fn trim(digits: &mut Vec<u16>) {
    while digits.last() == Some(&0) {
        digits.pop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_round_trips() {
        for text in [
            "0",
            "1",
            "32767",
            "32768",
            "9223372036854775807",
            "9223372036854775808",
            "123456789012345678901234567890123456789",
        ] {
            let d = from_decimal(text.as_bytes()).unwrap();
            assert_eq!(to_decimal(&d), text);
        }
        assert!(from_decimal(b"12a").is_none());
    }

    #[test]
    fn i64_bounds_convert_both_ways() {
        for v in [0, 1, -1, 32767, 32768, i64::MAX, i64::MIN, -(1 << 40)] {
            let (neg, d) = from_i64(v);
            assert_eq!(to_i64(neg, &d), Some(v), "{v}");
        }
        let big = from_decimal(b"9223372036854775808").unwrap();
        assert_eq!(to_i64(false, &big), None);
        assert_eq!(to_i64(true, &big), Some(i64::MIN));
    }
}
