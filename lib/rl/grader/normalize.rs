//! prm800k answer normalization as mathruler ships it (`mathruler/grader.py`: `_normalize`,
//! `_strip_properly_formatted_commas`, `split_tuple`, `_is_frac`, `_str_is_int`,
//! `_str_to_int`, `_inject_implicit_mixed_number`): the second equality test of `grade_answer`
//! and the element split before the symbolic test.
//!
//! Python semantics kept: `float()` / `round()` / `str(int())` through [`crate::eval::python`],
//! `re`'s `$` (end, or before a final newline), `\d` as any Unicode decimal digit, `str.lower()`.
use std::sync::LazyLock;

use regex::Regex;

use super::mathd::TEXT_WRAPPED;
use super::{Budget, Exhausted, latex};
use crate::eval::python;

/// The units `_normalize` deletes, in its order (each with `(es)?(s)? *(\^[0-9]+)?`).
const UNITS: [&str; 16] = [
    "degree",
    "cm",
    "centimeter",
    "meter",
    "mile",
    "second",
    "minute",
    "hour",
    "day",
    "week",
    "month",
    "year",
    "foot",
    "feet",
    "inch",
    "yard",
];

static UNIT_RES: LazyLock<Vec<Regex>> = LazyLock::new(|| {
    UNITS.iter().map(|u| Regex::new(&format!(r"{u}(es)?(s)? *(\^[0-9]+)?")).expect("valid regex")).collect()
});
static CIRC: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"\^ *\\circ").expect("valid regex"));
static THIN_SPACE_COMMA: LazyLock<Regex> = LazyLock::new(|| Regex::new(r",\\! *").expect("valid regex"));
static MINUS_SPACES: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"- *").expect("valid regex"));
static MIXED_NUMBER: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"([0-9]) +([0-9])").expect("valid regex"));
static THOUSANDS_COMMA: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"(\d)(,)(\d\d\d)(\z|\D)").expect("valid regex"));
static FRACTION: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^-?[0-9]+.?/0*[1-9][0-9]*.?\n?\z").expect("valid regex"));

/// `_normalize(expr)` for a string.
pub fn normalize(expr: &str, b: &mut Budget) -> Result<String, Exhausted> {
    // About 40 linear passes (replacements and regexes) before the LaTeX conversion.
    b.spend(40 * (expr.len() as u64 + 1))?;
    let mut e = match TEXT_WRAPPED.captures(expr) {
        Some(c) => c.name("text").map_or("", |m| m.as_str()).to_string(),
        None => expr.to_string(),
    };
    e = e
        .replace("\\%", "%")
        .replace("\\$", "$")
        .replace(['$', '%'], "")
        .replace(" or ", " , ")
        .replace(" and ", " , ")
        .replace("million", "*10^6")
        .replace("billion", "*10^9")
        .replace("trillion", "*10^12");
    for re in UNIT_RES.iter() {
        e = re.replace_all(&e, "").into_owned();
    }
    e = CIRC.replace_all(&e, "").into_owned();
    if e.len() >= 2 && e.starts_with('{') && e.ends_with('}') {
        e = e[1..e.len() - 1].to_string();
    }
    e = THIN_SPACE_COMMA.replace_all(&e, "").into_owned();
    if let Some(i) = python::parse_float(&e).and_then(float_as_int) {
        e = i;
    }
    if e.contains('\\') {
        b.scan(&e)?;
        if let Some(text) = latex::parse_latex(&e, b)? {
            e = text;
        }
    }
    b.spend(8 * (e.len() as u64 + 1))?;
    e = MINUS_SPACES.replace_all(&e, "-").into_owned();
    e = MIXED_NUMBER.replace_all(&e, "${1}+${2}").into_owned();
    e = e.replace(' ', "").replace(['{', '}'], "").to_lowercase();
    if str_is_int(&e, b)? {
        // `_str_to_int`: float() of the text without commas, truncated.
        if let Some(i) = python::parse_float(&e.replace(',', "")).and_then(python::int_string) {
            e = i;
        }
    }
    Ok(e)
}

/// `str(int(round(x)))` when `_is_int(x)`: within 1e-7 of an integer (`round` raises on inf/nan).
fn float_as_int(x: f64) -> Option<String> {
    if !x.is_finite() {
        return None;
    }
    let r = x.round_ties_even();
    ((x - r).abs() <= 1e-7).then(|| python::int_string(r)).flatten()
}

/// `_strip_properly_formatted_commas`: drops thousands separators (`1,000,000`), keeping tuple commas.
pub fn strip_thousands_commas(expr: &str, b: &mut Budget) -> Result<String, Exhausted> {
    let mut e = expr.to_string();
    loop {
        b.scan(&e)?;
        let next = THOUSANDS_COMMA.replace_all(&e, "${1}${3}${4}").into_owned();
        if next == e {
            return Ok(next);
        }
        e = next;
    }
}

/// `_str_is_int`: after dropping thousands separators, a number within 1e-7 of an integer.
pub fn str_is_int(x: &str, b: &mut Budget) -> Result<bool, Exhausted> {
    let x = strip_thousands_commas(x, b)?;
    Ok(python::parse_float(&x).is_some_and(|f| f.is_finite() && (f - f.round_ties_even()).abs() <= 1e-7))
}

/// `_is_frac`: `^-?[0-9]+.?/0*[1-9][0-9]*.?$`.
pub fn is_frac(expr: &str) -> bool {
    FRACTION.is_match(expr)
}

/// `split_tuple`: the stripped elements of `(a,b)`, `[a,b)`, ... (no bracket inside), else the
/// whole expression; thousands separators are dropped first.
pub fn split_tuple(expr: &str, b: &mut Budget) -> Result<Vec<String>, Exhausted> {
    let e = strip_thousands_commas(expr, b)?;
    const BRACKETS: [char; 4] = ['(', ')', '[', ']'];
    let chars: Vec<char> = e.chars().collect();
    if chars.is_empty() {
        return Ok(Vec::new());
    }
    let n = chars.len();
    if n > 2 && BRACKETS.contains(&chars[0]) && BRACKETS.contains(&chars[n - 1]) {
        let inner: String = chars[1..n - 1].iter().collect();
        if !inner.contains(BRACKETS) {
            return Ok(inner.split(',').map(|s| python::strip(s).to_string()).collect());
        }
    }
    Ok(vec![e])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(s: &str) -> String {
        normalize(s, &mut Budget::new(1_000_000)).unwrap()
    }

    #[test]
    fn prm800k_normalization_matches_the_python() {
        assert_eq!(norm("\\text{Yes}"), "yes");
        assert_eq!(norm("5 cm"), "5");
        assert_eq!(norm("12 centimeters"), "12");
        assert_eq!(norm("\\$1,000"), "1000");
        assert_eq!(norm("50\\%"), "50");
        assert_eq!(norm("3.0"), "3");
        assert_eq!(norm("1e3"), "1000");
        assert_eq!(norm("2.99999999"), "3");
        assert_eq!(norm("{5}"), "5");
        assert_eq!(norm("2 million"), "2*10^6");
        assert_eq!(norm("1 or 2"), "1,2");
        assert_eq!(norm("- 5"), "-5");
        assert_eq!(norm("7 3/4"), "7+3/4");
        assert_eq!(norm("7\\frac{3}{4}"), "7+3/4");
        assert_eq!(norm("\\frac{\\sqrt{2}}{2}"), "sqrt(2)/2");
        assert_eq!(norm("\\left(1, 2\\right)"), "(1,2)");
        assert_eq!(norm("45^\\circ"), "45");
        assert_eq!(norm("daydream"), "dream");
    }

    #[test]
    fn tuples_fractions_and_integers() {
        let b = &mut Budget::new(1_000_000);
        assert_eq!(split_tuple("(1,2)", b).unwrap(), vec!["1", "2"]);
        assert_eq!(split_tuple("[1, 2)", b).unwrap(), vec!["1", "2"]);
        assert_eq!(split_tuple("(1,(2))", b).unwrap(), vec!["(1,(2))"]);
        assert_eq!(split_tuple("1,000,000", b).unwrap(), vec!["1000000"]);
        assert_eq!(split_tuple("()", b).unwrap(), vec!["()"]);
        assert!(split_tuple("", b).unwrap().is_empty());
        assert!(is_frac("3/4") && is_frac("-12/05") && is_frac("1./2."));
        assert!(!is_frac("3/0") && !is_frac("x/4") && !is_frac("3/4/5"));
        assert!(str_is_int("1,000", b).unwrap() && str_is_int("2.00000001", b).unwrap());
        assert!(!str_is_int("1,00", b).unwrap() && !str_is_int("inf", b).unwrap() && !str_is_int("2.5", b).unwrap());
    }
}
