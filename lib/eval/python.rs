//! Python value semantics that official evaluation scripts rely on, reproduced exactly so that a
//! Rust scorer gives the same strings as the script: `float(x)` (whitespace, underscores and Unicode
//! digits included), `int(x)`, `round(x, n)` (round-half-even on the exact binary value, then back to
//! the nearest double), `str(x)` / `repr(x)` for JSON values, and `format(x, ".Nf")`.
//!
//! Reference: CPython 3.11 (`Objects/floatobject.c`, `Python/pystrtod.c`, `Python/dtoa.c`), Unicode
//! 14.0 for `str.isspace` and the decimal digits `float` accepts.
use serde_json::Value;

/// Python's `str.isspace` for one character: Unicode White_Space plus the four ASCII separators
/// U+001C..U+001F (bidi class B/S), which Rust's `char::is_whitespace` leaves out.
pub fn is_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// Python's `s.strip()` with no argument.
pub fn strip(s: &str) -> &str {
    s.trim_matches(is_space)
}

/// The code points of the digit zero of every Unicode 14.0 decimal-digit run (category Nd); each
/// run holds the ten digits 0..9 consecutively. `float()` and `int()` accept any of them.
const DECIMAL_ZEROS: [u32; 66] = [
    0x30, 0x660, 0x6F0, 0x7C0, 0x966, 0x9E6, 0xA66, 0xAE6, 0xB66, 0xBE6, 0xC66, 0xCE6, 0xD66, 0xDE6, 0xE50, 0xED0,
    0xF20, 0x1040, 0x1090, 0x17E0, 0x1810, 0x1946, 0x19D0, 0x1A80, 0x1A90, 0x1B50, 0x1BB0, 0x1C40, 0x1C50, 0xA620,
    0xA8D0, 0xA900, 0xA9D0, 0xA9F0, 0xAA50, 0xABF0, 0xFF10, 0x104A0, 0x10D30, 0x11066, 0x110F0, 0x11136, 0x111D0,
    0x112F0, 0x11450, 0x114D0, 0x11650, 0x116C0, 0x11730, 0x118E0, 0x11950, 0x11C50, 0x11D50, 0x11DA0, 0x16A60,
    0x16AC0, 0x16B50, 0x1D7CE, 0x1D7D8, 0x1D7E2, 0x1D7EC, 0x1D7F6, 0x1E140, 0x1E2F0, 0x1E950, 0x1FBF0,
];

fn decimal_value(c: char) -> Option<u32> {
    let c = c as u32;
    DECIMAL_ZEROS.iter().find(|&&z| (z..z + 10).contains(&c)).map(|z| c - z)
}

/// C's `isspace` in the C locale, which CPython strips around numbers (Rust's
/// `is_ascii_whitespace` leaves out the vertical tab).
fn is_c_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\x0b' | '\x0c' | '\r')
}

/// The ASCII text CPython parses a number from: non-ASCII spaces become ' ', non-ASCII decimal
/// digits become ASCII digits (ASCII is kept as it is, so U+001C..U+001F stay and fail), underscores
/// are dropped where PEP 515 allows them (between two digits), and the result is stripped of C
/// spaces. `None` where CPython rejects the text before parsing.
fn number_text(s: &str) -> Option<String> {
    let mut ascii = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            _ if c.is_ascii() => ascii.push(c),
            _ if is_space(c) => ascii.push(' '),
            _ => ascii.push(char::from_digit(decimal_value(c)?, 10)?),
        }
    }
    if !ascii.contains('_') {
        return Some(ascii.trim_matches(is_c_space).to_string());
    }
    let bytes = ascii.as_bytes();
    let mut out = String::with_capacity(ascii.len());
    for (i, &b) in bytes.iter().enumerate() {
        if b == b'_' {
            let before = i > 0 && bytes[i - 1].is_ascii_digit();
            let after = bytes.get(i + 1).is_some_and(u8::is_ascii_digit);
            if !(before && after) {
                return None;
            }
        } else {
            out.push(b as char);
        }
    }
    Some(out.trim_matches(is_c_space).to_string())
}

/// Python's `float(s)` for a string; `None` where Python raises `ValueError`. Overflow gives
/// infinity, as in Python.
pub fn parse_float(s: &str) -> Option<f64> {
    let t = number_text(s)?;
    // Rust's grammar equals Python's on ASCII once whitespace and underscores are gone: an optional
    // sign, then digits with an optional point and exponent, or inf / infinity / nan in any case.
    t.parse::<f64>().ok()
}

/// Python's `float(v)` for a JSON value (`str`, `int`, `float`, `bool`); `None` for null, lists
/// and objects (Python raises `TypeError`).
pub fn float_of(v: &Value) -> Option<f64> {
    match v {
        Value::String(s) => parse_float(s),
        Value::Number(n) => n.as_f64(),
        Value::Bool(b) => Some(f64::from(u8::from(*b))),
        _ => None,
    }
}

/// Python's `int(v)` for a JSON value: integers as they are, floats truncated toward zero, strings
/// of (Unicode) digits with an optional sign; saturates at the `i64` range, which is what CPython's
/// `round` does with an out-of-range `ndigits`. `None` where Python raises.
pub fn int_of(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => Some(i),
            (None, Some(_), _) => Some(i64::MAX),
            (None, None, Some(f)) if f.is_finite() => Some(f.trunc() as i64),
            _ => None,
        },
        Value::Bool(b) => Some(i64::from(*b)),
        Value::String(s) => {
            let t = number_text(s)?;
            let (negative, digits) = match t.as_bytes().first() {
                Some(b'-') => (true, &t[1..]),
                Some(b'+') => (false, &t[1..]),
                _ => (false, t.as_str()),
            };
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            let magnitude = digits.parse::<i64>().unwrap_or(i64::MAX);
            Some(if negative { -magnitude } else { magnitude })
        }
        _ => None,
    }
}

/// Python's `str(int(x))` for a float: the exact integer part in decimal; `None` for infinities
/// (`OverflowError`) and NaN (`ValueError`).
pub fn int_string(x: f64) -> Option<String> {
    if !x.is_finite() {
        return None;
    }
    let t = x.trunc();
    // An integral double prints exactly with no decimals; -0.0 becomes the integer 0.
    Some(if t == 0.0 { "0".to_string() } else { format!("{t:.0}") })
}

/// Rounds `|x|` (finite) to `ndigits` decimals, half to even on the exact binary value, as
/// CPython's `_Py_dg_dtoa` mode 3 does. Returns the kept digits `d` with the value `d * 10^-ndigits`.
fn round_digits(abs: f64, ndigits: i64) -> String {
    // 1074 decimals print every double exactly (the smallest subnormal is 2^-1074).
    let exact = format!("{abs:.1074}");
    let (int_part, frac_part) = exact.split_once('.').expect("fixed-point format has a point");
    let digits: Vec<u8> = int_part.bytes().chain(frac_part.bytes()).collect();
    let keep = int_part.len() as i64 + ndigits;
    if keep < 0 {
        return "0".to_string();
    }
    let keep = keep as usize;
    let (kept, rest) = digits.split_at(keep.min(digits.len()));
    let mut kept = kept.to_vec();
    let round_up = match rest.first() {
        Some(b'6'..=b'9') => true,
        Some(b'5') => rest[1..].iter().any(|&d| d != b'0') || kept.last().is_some_and(|d| (d - b'0') % 2 == 1),
        _ => false,
    };
    if round_up {
        let mut i = kept.len();
        loop {
            if i == 0 {
                kept.insert(0, b'1');
                break;
            }
            i -= 1;
            if kept[i] == b'9' {
                kept[i] = b'0';
            } else {
                kept[i] += 1;
                break;
            }
        }
    }
    if kept.is_empty() {
        kept.push(b'0');
    }
    String::from_utf8(kept).expect("ASCII digits")
}

/// Python's `round(x, ndigits)` for a float. `None` where Python raises `OverflowError` (the
/// rounded value does not fit a double).
pub fn round(x: f64, ndigits: i64) -> Option<f64> {
    // CPython: nan and inf round to themselves; ndigits beyond what a double can hold are
    // shortcuts (NDIGITS_MAX = 323, NDIGITS_MIN = -308).
    if !x.is_finite() || ndigits > 323 {
        return Some(x);
    }
    if ndigits < -308 {
        return Some(0.0 * x);
    }
    let digits = round_digits(x.abs(), ndigits);
    let magnitude: f64 = format!("{digits}e{}", -ndigits).parse().ok()?;
    if magnitude.is_infinite() {
        return None;
    }
    Some(if x.is_sign_negative() { -magnitude } else { magnitude })
}

/// Python's `repr(x)` (= `str(x)`) for a float: the shortest digits that round-trip, in fixed
/// notation with at least one decimal when the decimal exponent is in [-4, 16), else `1.5e-05`.
pub fn float_repr(x: f64) -> String {
    if x.is_nan() {
        return "nan".to_string();
    }
    let sign = if x.is_sign_negative() { "-" } else { "" };
    if x.is_infinite() {
        return format!("{sign}inf");
    }
    // Rust's `{:e}` gives the same shortest round-trip digits as CPython's repr.
    let sci = format!("{:e}", x.abs());
    let (mantissa, exp) = sci.split_once('e').expect("exponent format has an e");
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let exp: i64 = exp.parse().expect("integer exponent");
    let decpt = exp + 1; // value = 0.DIGITS * 10^decpt
    let n = digits.len() as i64;
    let body = if decpt <= -4 || decpt > 16 {
        let (first, rest) = digits.split_at(1);
        let frac = if rest.is_empty() { String::new() } else { format!(".{rest}") };
        let esign = if exp < 0 { '-' } else { '+' };
        format!("{first}{frac}e{esign}{:02}", exp.abs())
    } else if decpt <= 0 {
        format!("0.{}{digits}", "0".repeat((-decpt) as usize))
    } else if decpt >= n {
        format!("{digits}{}.0", "0".repeat((decpt - n) as usize))
    } else {
        let (int_part, frac) = digits.split_at(decpt as usize);
        format!("{int_part}.{frac}")
    };
    format!("{sign}{body}")
}

/// Python's `format(x, f".{decimals}f")`: round-half-even on the exact binary value.
pub fn format_fixed(x: f64, decimals: usize) -> String {
    if x.is_nan() {
        return "nan".to_string();
    }
    let sign = if x.is_sign_negative() { "-" } else { "" };
    if x.is_infinite() {
        return format!("{sign}inf");
    }
    let digits = round_digits(x.abs(), decimals as i64);
    let padded = format!("{digits:0>width$}", width = decimals + 1);
    let (int_part, frac) = padded.split_at(padded.len() - decimals);
    if decimals == 0 { format!("{sign}{int_part}") } else { format!("{sign}{int_part}.{frac}") }
}

/// Python's `str(v)` for a value `json.load` produced: strings as they are, everything else as
/// [`repr_of`].
pub fn str_of(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        _ => repr_of(v),
    }
}

/// Python's `repr(v)` for a value `json.load` produced (`None`, `True`, `3`, `3.0`, `'a'`,
/// `[1, 'a']`, `{'k': 1}`). Objects list their keys in serde_json's order (sorted), not the
/// file's; non-printable characters inside strings are escaped for the common Unicode classes
/// (controls, separators, format characters, private use), not for unassigned code points.
pub fn repr_of(v: &Value) -> String {
    match v {
        Value::Null => "None".to_string(),
        Value::Bool(true) => "True".to_string(),
        Value::Bool(false) => "False".to_string(),
        Value::Number(n) if n.is_f64() => float_repr(n.as_f64().unwrap_or(f64::NAN)),
        Value::Number(n) => n.to_string(),
        Value::String(s) => repr_str(s),
        Value::Array(items) => format!("[{}]", items.iter().map(repr_of).collect::<Vec<_>>().join(", ")),
        Value::Object(map) => {
            let entries: Vec<String> = map.iter().map(|(k, v)| format!("{}: {}", repr_str(k), repr_of(v))).collect();
            format!("{{{}}}", entries.join(", "))
        }
    }
}

fn is_printable(c: char) -> bool {
    let u = c as u32;
    !(u < 0x20
        || (0x7f..=0xa0).contains(&u)
        || u == 0xad
        || (0x600..=0x605).contains(&u)
        || matches!(u, 0x61c | 0x6dd | 0x70f | 0x890 | 0x891 | 0x8e2 | 0x1680 | 0x180e | 0x202f | 0x205f | 0x3000)
        || (0x2000..=0x200f).contains(&u)
        || (0x2028..=0x202e).contains(&u)
        || (0x2060..=0x206f).contains(&u)
        || u == 0xfeff
        || (0xfff9..=0xfffb).contains(&u)
        || (0xe000..=0xf8ff).contains(&u)
        || u >= 0xf0000
        || (0xe0000..=0xe007f).contains(&u))
}

/// Python's `repr()` of a `str`: quote choice, escapes, and `\\x`/`\\u`/`\\U` for non-printable characters.
pub fn repr_str(s: &str) -> String {
    let quote = if s.contains('\'') && !s.contains('"') { '"' } else { '\'' };
    let mut out = String::with_capacity(s.len() + 2);
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            _ if c == quote => {
                out.push('\\');
                out.push(c);
            }
            _ if is_printable(c) => out.push(c),
            _ if (c as u32) < 0x100 => out.push_str(&format!("\\x{:02x}", c as u32)),
            _ if (c as u32) < 0x10000 => out.push_str(&format!("\\u{:04x}", c as u32)),
            _ => out.push_str(&format!("\\U{:08x}", c as u32)),
        }
    }
    out.push(quote);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn float_parsing_follows_python() {
        assert_eq!(parse_float(" 3.5\n"), Some(3.5));
        assert_eq!(parse_float("1_000.5"), Some(1000.5));
        assert_eq!(parse_float("1__0"), None);
        assert_eq!(parse_float("_1"), None);
        assert_eq!(parse_float("1_"), None);
        assert_eq!(parse_float("1.e5"), Some(1e5));
        assert_eq!(parse_float(".5"), Some(0.5));
        assert_eq!(parse_float("+1E-2"), Some(0.01));
        assert_eq!(parse_float("١٢"), Some(12.0)); // Arabic-Indic digits
        assert_eq!(parse_float("１２.５"), Some(12.5)); // fullwidth digits
        assert_eq!(parse_float("\u{3000}7\u{85}\x0b"), Some(7.0));
        assert_eq!(parse_float("7\u{1c}"), None); // str.isspace, but not stripped by float()
        assert_eq!(parse_float("-Infinity"), Some(f64::NEG_INFINITY));
        assert!(parse_float("nan").unwrap().is_nan());
        assert_eq!(parse_float("1e999"), Some(f64::INFINITY));
        for bad in ["", " ", ".", "e5", "1e", "1 000", "0x10", "12%", "$5", "1,000", "½", "3.5 cm", "None"] {
            assert_eq!(parse_float(bad), None, "{bad:?}");
        }
        assert_eq!(float_of(&json!(true)), Some(1.0));
        assert_eq!(float_of(&json!(7)), Some(7.0));
        assert_eq!(float_of(&json!(null)), None);
        assert_eq!(float_of(&json!([1])), None);
    }

    #[test]
    fn int_conversion_follows_python() {
        assert_eq!(int_string(2.9), Some("2".into()));
        assert_eq!(int_string(-2.9), Some("-2".into()));
        assert_eq!(int_string(-0.5), Some("0".into()));
        assert_eq!(int_string(1e23), Some("99999999999999991611392".into()));
        assert_eq!(int_string(f64::INFINITY), None);
        assert_eq!(int_string(f64::NAN), None);
        assert_eq!(int_of(&json!(2)), Some(2));
        assert_eq!(int_of(&json!(2.7)), Some(2));
        assert_eq!(int_of(&json!(" -3 ")), Some(-3));
        assert_eq!(int_of(&json!("1.0")), None);
        assert_eq!(int_of(&json!(null)), None);
    }

    #[test]
    fn round_is_half_even_on_the_exact_binary_value() {
        assert_eq!(round(2.675, 2), Some(2.67)); // 2.675 is 2.67499999... in binary
        assert_eq!(round(0.125, 2), Some(0.12)); // an exact tie goes to even
        assert_eq!(round(0.375, 2), Some(0.38));
        assert_eq!(round(2.5, 0), Some(2.0));
        assert_eq!(round(3.5, 0), Some(4.0));
        assert_eq!(round(1234.5678, -2), Some(1200.0));
        assert_eq!(round(250.0, -2), Some(200.0));
        assert_eq!(round(9.995, 2), Some(9.99));
        assert_eq!(round(9.9951, 2), Some(10.0));
        assert_eq!(round(0.0004, 3), Some(0.0));
        assert!(round(-0.001, 2).unwrap().is_sign_negative());
        assert_eq!(round(1e300, 2), Some(1e300));
        assert_eq!(round(1.7976931348623157e308, -308), None); // OverflowError in Python
        assert_eq!(round(f64::INFINITY, 1), Some(f64::INFINITY));
    }

    #[test]
    fn float_repr_matches_python() {
        let cases = [
            (1.2, "1.2"),
            (5.0, "5.0"),
            (-0.0, "-0.0"),
            (0.1 + 0.2, "0.30000000000000004"),
            (1e16, "1e+16"),
            (1234567890123456.0, "1234567890123456.0"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (1.5e-7, "1.5e-07"),
            (123.456, "123.456"),
            (1e100, "1e+100"),
            (f64::NEG_INFINITY, "-inf"),
            (f64::NAN, "nan"),
        ];
        for (x, want) in cases {
            assert_eq!(float_repr(x), want, "{x:e}");
        }
    }

    #[test]
    fn fixed_format_matches_python() {
        assert_eq!(format_fixed(48.7037037037037, 2), "48.70");
        assert_eq!(format_fixed(0.0, 2), "0.00");
        assert_eq!(format_fixed(100.0, 2), "100.00");
        assert_eq!(format_fixed(0.125, 2), "0.12");
        assert_eq!(format_fixed(2.675, 2), "2.67");
        assert_eq!(format_fixed(99.999, 2), "100.00");
        assert_eq!(format_fixed(-0.001, 2), "-0.00");
        assert_eq!(format_fixed(2.5, 0), "2");
    }

    #[test]
    fn str_and_repr_of_json_values_match_python() {
        assert_eq!(str_of(&json!("  (A) 5 ")), "  (A) 5 ");
        assert_eq!(str_of(&json!(null)), "None");
        assert_eq!(str_of(&json!(3)), "3");
        assert_eq!(str_of(&json!(3.0)), "3.0");
        assert_eq!(str_of(&json!(false)), "False");
        assert_eq!(str_of(&json!([0, 2.5, "a", "it's", null])), r#"[0, 2.5, 'a', "it's", None]"#);
        assert_eq!(str_of(&json!({"k": [1]})), "{'k': [1]}");
        assert_eq!(repr_of(&json!("a\nb\\'\"\u{7}é")), r#"'a\nb\\\'"\x07é'"#);
        assert!(is_space('\u{1f}') && is_space('\u{a0}') && !is_space('\u{200b}'));
        assert_eq!(strip("\u{3000} B \t"), "B");
    }
}
