//! Hendrycks MATH answer normalization as mathruler ships it (`mathruler/math_normalize.py`,
//! `normalize_answer` and `_strip_string`, from prm800k `grading/math_normalize.py`): the first,
//! string-only equality test of `grade_answer`.
//!
//! Python's exceptions are reproduced: where `_strip_string` raises (two `\text{ ` unit markers,
//! a `\sqrt` or `\frac` at the very end), `normalize_answer` returns the answer with only its
//! enclosing `\text{}` removed.
use std::sync::LazyLock;

use regex::Regex;

use super::{Budget, Exhausted};
use crate::eval::python;

/// `^\\text\{(?P<text>.+?)\}$`, with Python's `$` (end, or before a final newline).
pub(super) static TEXT_WRAPPED: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^\\text\{(?P<text>.+?)\}\n?\z").expect("valid regex"));

/// `normalize_answer(answer)` for a string answer.
pub fn normalize_answer(answer: &str, b: &mut Budget) -> Result<String, Exhausted> {
    b.scan(answer)?;
    let mut answer = python::strip(answer);
    if let Some(c) = TEXT_WRAPPED.captures(answer) {
        answer = python::strip(c.name("text").map_or("", |m| m.as_str()));
    }
    // Each pass of `_strip_string` is linear; a dozen of them.
    b.spend(16 * (answer.len() as u64 + 1))?;
    Ok(strip_string(answer).unwrap_or_else(|| answer.to_string()))
}

/// `_strip_string`; `None` where Python raises.
fn strip_string(s: &str) -> Option<String> {
    let mut s = s
        .replace('\n', "")
        .replace("\\!", "")
        .replace("\\\\", "\\")
        .replace("tfrac", "frac")
        .replace("dfrac", "frac")
        .replace("\\left", "")
        .replace("\\right", "")
        .replace("^{\\circ}", "")
        .replace("^\\circ", "")
        .replace("\\$", "");
    s = remove_right_units(&s)?;
    s = s.replace("\\%", "").replace('%', "").replace(" .", " 0.").replace("{.", "{0.");
    if s.is_empty() {
        return Some(s);
    }
    if s.starts_with('.') {
        s.insert(0, '0');
    }
    let parts: Vec<&str> = s.split('=').collect();
    if parts.len() == 2 && parts[0].chars().count() <= 2 {
        s = parts[1].to_string();
    }
    s = fix_sqrt(&s)?;
    s = s.replace(' ', "");
    s = fix_fracs(&s)?;
    if s == "0.5" {
        s = "\\frac{1}{2}".to_string();
    }
    Some(fix_a_slash_b(s))
}

/// `_remove_right_units`: the text before a `\text{ ` unit; Python's assert fails on two of them.
fn remove_right_units(s: &str) -> Option<String> {
    if !s.contains("\\text{ ") {
        return Some(s.to_string());
    }
    let splits: Vec<&str> = s.split("\\text{ ").collect();
    (splits.len() == 2).then(|| splits[0].to_string())
}

/// `_fix_sqrt`: `\sqrt3` → `\sqrt{3}`. A `\sqrt` at the end raises `IndexError` in Python.
fn fix_sqrt(s: &str) -> Option<String> {
    if !s.contains("\\sqrt") {
        return Some(s.to_string());
    }
    let mut parts = s.split("\\sqrt");
    let mut out = parts.next().unwrap_or_default().to_string();
    for part in parts {
        let first = part.chars().next()?;
        if first == '{' {
            out.push_str("\\sqrt");
            out.push_str(part);
        } else {
            out.push_str("\\sqrt{");
            out.push(first);
            out.push('}');
            out.push_str(&part[first.len_utf8()..]);
        }
    }
    Some(out)
}

/// `_fix_fracs`: `\frac12` → `\frac{1}{2}`, `\frac1{72}` → `\frac{1}{72}`. An empty piece after
/// `\frac` raises (`None`); a one-character piece returns the input unchanged.
fn fix_fracs(s: &str) -> Option<String> {
    let mut parts = s.split("\\frac");
    let mut out = parts.next().unwrap_or_default().to_string();
    for part in parts {
        out.push_str("\\frac");
        let mut chars = part.chars();
        let a = chars.next()?;
        if a == '{' {
            out.push_str(part);
            continue;
        }
        let Some(bc) = chars.next() else {
            return Some(s.to_string());
        };
        let rest = chars.as_str();
        if bc != '{' {
            out.push_str(&format!("{{{a}}}{{{bc}}}{rest}"));
        } else {
            out.push_str(&format!("{{{a}}}{bc}{rest}"));
        }
    }
    Some(out)
}

/// Is `s` exactly `str(int(s))` in Python: an optional `-`, then ASCII digits without a leading
/// zero, and not `-0`?
fn is_canonical_int(s: &str) -> bool {
    let digits = s.strip_prefix('-').unwrap_or(s);
    let canonical =
        !digits.is_empty() && digits.bytes().all(|c| c.is_ascii_digit()) && (digits == "0" || !digits.starts_with('0'));
    canonical && s != "-0"
}

/// `_fix_a_slash_b`: `3/4` → `\frac{3}{4}` when both sides are integers written as Python prints them.
fn fix_a_slash_b(s: String) -> String {
    let parts: Vec<&str> = s.split('/').collect();
    if parts.len() == 2 && is_canonical_int(parts[0]) && is_canonical_int(parts[1]) {
        return format!("\\frac{{{}}}{{{}}}", parts[0], parts[1]);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(s: &str) -> String {
        normalize_answer(s, &mut Budget::new(1_000_000)).unwrap()
    }

    #[test]
    fn hendrycks_normalization_matches_the_python() {
        assert_eq!(norm(" \\text{ 5 } "), "5");
        assert_eq!(norm("\\dfrac{1}{2}"), "\\frac{1}{2}");
        assert_eq!(norm("\\frac12"), "\\frac{1}{2}");
        assert_eq!(norm("\\frac1{72}"), "\\frac{1}{72}");
        assert_eq!(norm("3/4"), "\\frac{3}{4}");
        assert_eq!(norm("03/4"), "03/4");
        assert_eq!(norm("-0/4"), "-0/4");
        assert_eq!(norm("0.5"), "\\frac{1}{2}");
        assert_eq!(norm(".5"), "\\frac{1}{2}");
        assert_eq!(norm("x = 5"), "5");
        assert_eq!(norm("abc = 5"), "abc=5");
        assert_eq!(norm("\\sqrt3"), "\\sqrt{3}");
        assert_eq!(norm("45^\\circ"), "45");
        assert_eq!(norm("5\\%"), "5");
        assert_eq!(norm("\\left( 1, 2 \\right)"), "(1,2)");
        assert_eq!(norm("5 \\text{ cm}"), "5");
        // Python raises inside _strip_string: the answer comes back as it was (stripped).
        assert_eq!(norm("1\\text{ cm}\\text{ cm}"), "1\\text{ cm}\\text{ cm}");
        assert_eq!(norm("2\\sqrt"), "2\\sqrt");
        assert_eq!(norm("\\frac"), "\\frac");
        assert_eq!(norm("\\frac1"), "\\frac1");
        assert_eq!(norm(""), "");
    }
}
