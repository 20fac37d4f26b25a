//! MM-Math, following the official scorer (GitHub kge-sun/MM-Math, commit 8da3643a, `eval.py`,
//! `AutoScoringJudge` with the command-line default `--precision 1e-2`), read and re-derived.
//!
//! An item counts only when both the reference solution and the response contain `\boxed{`; then
//! `judge(reference, response)`:
//! 1. `preprocess`: every `\boxed{...}` (nested ones too) joined as `a,b,` (mismatched braces: wrong),
//!    then `sepcial_symbol_replace`: units (`cm`, `\text{cm}^2`, `厘米`, `\text{米}`, a final `m`), the
//!    part after `\in `, `\left`/`\right`, `$`, full-width punctuation, `\infty` → `oo`, `^\circ`, `\,`,
//!    `\sin30` → `\sin((30/180)\pi)`, surrounding punctuation, `\mathrm{x}`/`\mathbf{x}` → `x`;
//! 2. equal strings are right; otherwise Chinese characters are removed (unless that is all there is),
//!    `a<x<b` becomes `(a, b)`, both sides are split at top-level commas, `\pm` doubles an element, and
//!    every reference element must pair off with a distinct response element ([`is_equal`]): equal text,
//!    intervals element by element, numbers within 0.0101 (also the reference ×100 or /100: percentages),
//!    expressions (`expression_equal`: after an `=`, constant values within 0.0101, otherwise
//!    `simplify(a - b)` ≈ 0 when both have symbols), or equations equal up to a non-zero integer factor.
//!
//! Deviations: the script's own lookup of the two solution fields is broken as published (`--ground_soluation`
//! is declared, `args.ground_solution` read, so every item scores wrong); the intended reading is
//! followed. The reference holds every `\boxed{}` of the published solution, as the script joins them (the
//! loader's encoding, [`crate::eval::bench::mmmath`]). Vision-R1's
//! `<answer> Final Answer: X </answer>` counts as `\boxed{X}` in a response without a box
//! ([`super::as_boxed`]). sympy's `parse_latex` is replaced by [`super::parse`] and [`super::arith`];
//! constant expressions are compared numerically as in the script, expressions with symbols by r1lab's exact
//! sympy replacement ([`crate::rl::grader::symbolic::are_equal_under_sympy`]; π taken as a symbol, symbols
//! renamed so that mathruler's two-letter guard does not apply; functions, `\log` and non-integer powers of
//! symbols unsupported: "not equal") where the script accepts a simplified difference below 1e-3 (exact zero
//! here), and the integer factor of two equations is found numerically and then checked exactly (a decimal
//! in either equation makes the factor a sympy Float, never an Integer: not equal).
//!
//! Checked once against the official code (outside the repository): `AutoScoringJudge.judge` with sympy 1.14
//! on 456 answer/response pairs agrees with this port except for `\sqrt{x}` against `x^{0.5}` (a
//! non-integer power of a symbol).
use std::sync::LazyLock;

use regex::Regex;

use super::arith::{Expr, Op};
use super::parse::parse;
use crate::eval::bench::BenchItem;
use crate::eval::bench::score::ItemScore;
use crate::eval::python;
use crate::rl::grader::symbolic::are_equal_under_sympy;
use crate::rl::grader::{Budget, DEFAULT_STEP_BUDGET};

/// `--precision` default of `eval.py`'s command line; compared as `precision * 1.01`.
const PRECISION: f64 = 1e-2;

static TRAILING_M: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"(.+)m$").expect("valid regex"));
static TRIG_DEGREES: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"(\\sin|\\cos|\\tan)(\d+)").expect("valid regex"));
static MATHRM: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\\(?:mathrm|mathbf)\{~?([^}]*)\}").expect("valid regex"));
static CJK: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"[\x{4e00}-\x{9fff}]+").expect("valid regex"));

/// Scores `response` against the item's reference (every item has a rule).
pub fn score(item: &BenchItem, sample: usize, response: &str) -> Option<ItemScore> {
    let response_text = super::as_boxed(response, "\\boxed{");
    let boxed = response_text.contains("\\boxed{").then(|| boxed_content(&response_text)).flatten();
    let prediction = boxed.as_deref().map(special_symbol_replace);
    let correct = boxed.is_some() && judge(&format!("\\boxed{{{}}}", item.answer), &response_text);
    Some(ItemScore::new(item, sample, response, boxed, prediction, correct))
}

/// `extract_boxed_content` for a text holding `\boxed{`: each box's content followed by `,`; `None` for
/// mismatched braces (the script raises).
fn boxed_content(s: &str) -> Option<String> {
    let mut out = String::new();
    for (start, _) in s.match_indices("\\boxed{") {
        let body = &s[start + "\\boxed{".len()..];
        let mut depth = 1;
        let end = body.char_indices().find_map(|(i, c)| {
            depth += i32::from(c == '{') - i32::from(c == '}');
            (depth == 0).then_some(i)
        })?;
        out.push_str(&body[..end]);
        out.push(',');
    }
    Some(out)
}

/// `sepcial_symbol_replace`.
fn special_symbol_replace(e: &str) -> String {
    let mut e = e.to_string();
    for unit in ["\\text{cm}^2", "\\text{cm}", "\\,cm", "\\text{ cm}", "cm", "\\text{分米}^2", "cm^{2}"] {
        e = e.replace(unit, "");
    }
    for unit in ["60 \\text{ cm}^2", "\\ \\text{m}", "\\text{米}"] {
        e = e.replace(unit, "");
    }
    let mut e = TRAILING_M.replace(python::strip(&e), "${1}").into_owned();
    if let Some(after) = e.split("\\in ").nth(1) {
        e = after.to_string();
    }
    let signals = [
        ("\\left", ""),
        ("\\right", ""),
        ("厘米", ""),
        ("，", ","),
        ("$", ""),
        ("（", "("),
        ("）", ")"),
        ("\\infty", "oo"),
        ("\\colon ", ":"),
        ("＋", "+"),
        ("\\, ", ""),
        ("\\,", ""),
        ("^\\circ", ""),
        ("^{\\circ}", ""),
    ];
    for (from, to) in signals {
        e = e.replace(from, to);
    }
    let e = TRIG_DEGREES.replace_all(&e, "${1}((${2}/180)\\pi)");
    let e = e.trim_matches(|c| "\n,.:;^_=+`!@#%^&*~，。".contains(c));
    MATHRM.replace_all(e, "${1}").into_owned()
}

/// `AutoScoringJudge.judge(reference, response)` with both texts holding `\boxed{`.
pub fn judge(reference: &str, response: &str) -> bool {
    let (Some(a), Some(b)) = (boxed_content(reference), boxed_content(response)) else { return false };
    let (a, b) = (special_symbol_replace(&a), special_symbol_replace(&b));
    if a == b {
        return true;
    }
    let elements = |e: &str| {
        let all_cjk = !e.is_empty() && CJK.find(e).is_some_and(|m| m.as_str().len() == e.len());
        let mut e = if all_cjk { e.to_string() } else { CJK.replace_all(e, "").into_owned() };
        if e.matches('<').count() == 2 {
            let parts: Vec<&str> = e.split('<').collect();
            e = format!("({}, {})", parts[0], parts[2]);
        }
        let mut out = vec![];
        for x in split_by_comma(&e) {
            if x.contains("\\pm") {
                out.extend([x.replace("\\pm", "+"), x.replace("\\pm", "-")]);
            } else {
                out.push(x);
            }
        }
        out
    };
    let (mut left, mut right) = (elements(&a), elements(&b));
    if left.len() != right.len() {
        return false;
    }
    let mut idx = usize::MAX;
    while !left.is_empty() {
        idx = idx.wrapping_add(1) % left.len();
        let item = left[idx].clone();
        let Some(j) = right.iter().position(|r| is_equal(&item, r)) else { return false };
        left.remove(left.iter().position(|l| *l == item).unwrap_or(idx));
        right.remove(j);
    }
    true
}

/// `split_by_comma`: commas outside `()`/`[]`, pieces stripped, no empty last piece.
fn split_by_comma(e: &str) -> Vec<String> {
    let (mut out, mut depth, mut start) = (vec![], 0i32, 0);
    for (i, c) in e.char_indices() {
        match c {
            '(' | '[' => depth += 1,
            ')' | ']' => depth -= 1,
            ',' if depth == 0 => {
                out.push(python::strip(&e[start..i]).to_string());
                start = i + 1;
            }
            _ => {}
        }
    }
    if start < e.len() {
        out.push(python::strip(&e[start..]).to_string());
    }
    out
}

/// `AutoScoringJudge.is_equal(reference, response)`.
pub fn is_equal(a: &str, b: &str) -> bool {
    if a == b && !a.is_empty() {
        return true;
    }
    let interval = |e: &str| e.starts_with(['(', '[']) && e.ends_with([')', ']']);
    if interval(a) && interval(b) {
        match interval_equal(a, b) {
            Some(true) => return true,
            None => return false,
            Some(false) => {}
        }
    }
    if let (Some(r), Some(p)) = (python::parse_float(a), python::parse_float(b))
        && [r / 100.0, r, r * 100.0].iter().any(|x| (x - p).abs() <= PRECISION * 1.01)
    {
        return true;
    }
    if expression_equal(a, b) == Some(true) && !(a.contains('=') && b.contains('=')) {
        return true;
    }
    equation_equal(a, b) == Some(true)
}

/// `interval_equal`; `None` where the script raises.
fn interval_equal(a: &str, b: &str) -> Option<bool> {
    if a == b {
        return Some(true);
    }
    let (xs, ys): (Vec<&str>, Vec<&str>) = (a.split("\\cup").collect(), b.split("\\cup").collect());
    if xs.len() != ys.len() {
        return Some(false);
    }
    for (x, y) in xs.iter().zip(&ys) {
        if x.chars().next()? != y.chars().next()? || x.chars().last()? != y.chars().last()? {
            return Some(false);
        }
        let strip = |s: &'static str| move |c: char| s.contains(c);
        let (x, y) = (x.trim_matches(strip("[]()")), y.trim_matches(strip("[]()")));
        for (p, q) in x.split(',').zip(y.split(',')) {
            if !expression_equal(p, q)? {
                return Some(false);
            }
        }
    }
    Some(true)
}

/// `expression_equal`; `None` where the script raises (a parse failure).
fn expression_equal(a: &str, b: &str) -> Option<bool> {
    let rhs = |e: &str| python::strip(e.split('=').nth(1).unwrap_or(e)).to_string();
    let (x, y) = (parse(&rhs(a))?, parse(&rhs(b))?);
    if x == y {
        return Some(true);
    }
    Some(match (x.has_symbols(), y.has_symbols()) {
        (false, false) => {
            let none = |_: &str| None;
            // `can_compute_power`: a power with an exponent above 1000 is not evaluated.
            let huge = |e: &Expr| match e {
                Expr::Bin(Op::Pow, _, p) => p.eval_f64(&none).is_some_and(|p| p.abs() > 1000.0),
                _ => false,
            };
            let close = match (x.eval_f64(&none), y.eval_f64(&none)) {
                (Some(u), Some(v)) => (u - v).abs() <= PRECISION * 1.01,
                _ => false,
            };
            !huge(&x) && !huge(&y) && close
        }
        (true, true) => same(&x, &y, 1),
        _ => false,
    })
}

/// `x - k*y` is exactly zero, by [`are_equal_under_sympy`] (symbols renamed consistently).
fn same(x: &Expr, y: &Expr, k: i128) -> bool {
    let mut names = vec![];
    let (Some(tx), Some(ty)) = (x.to_sympy(&mut names), y.to_sympy(&mut names)) else { return false };
    are_equal_under_sympy(&tx, &format!("{k}*{ty}"), &mut Budget::new(DEFAULT_STEP_BUDGET)).unwrap_or(false)
}

/// `equation_equal`: both `lhs = rhs` (exactly one `=`) and `lhs1 - rhs1 = k (lhs2 - rhs2)` or the
/// reverse for an integer `k != 0`; `None` where the script raises.
fn equation_equal(a: &str, b: &str) -> Option<bool> {
    let side = |e: &str| -> Option<Expr> {
        let (l, r) = e.split_once('=')?;
        if r.contains('=') {
            return None;
        }
        Some(Expr::Bin(Op::Sub, Box::new(parse(l)?), Box::new(parse(r)?)))
    };
    let (x, y) = (side(a)?, side(b)?);
    // A decimal literal is a sympy Float, and a Float ratio is never `is_Integer`.
    if x.has_float() || y.has_float() {
        return Some(false);
    }
    let mut names = vec![];
    x.to_sympy(&mut names)?;
    y.to_sympy(&mut names)?;
    // Symbols at fixed, algebraically unrelated points: the ratio there is the candidate factor.
    let env = |s: &str| names.iter().position(|n| n == s).map(|k| 1.0 + (k as f64 + 2.0).sqrt() / 7.0);
    let (u, v) = (x.eval_f64(&env)?, y.eval_f64(&env)?);
    let factor = |r: f64| Some(r.round()).filter(|k| *k != 0.0 && (r - k).abs() < 1e-6 * k.abs().max(1.0));
    Some(
        (v != 0.0 && factor(u / v).is_some_and(|k| same(&x, &y, k as i128)))
            || (u != 0.0 && factor(v / u).is_some_and(|k| same(&y, &x, k as i128))),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::bench::Benchmark;

    fn ok(answer: &str, response: &str) -> bool {
        let item = BenchItem::fixture(Benchmark::MmMath, "", &[], answer);
        score(&item, 0, response).unwrap().correct
    }

    #[test]
    fn preprocessing() {
        // Every box joined; nested boxes count again; units and degrees go; trig degrees become radians.
        assert_eq!(boxed_content("\\boxed{1} and \\boxed{\\frac{1}{2}}").as_deref(), Some("1,\\frac{1}{2},"));
        assert_eq!(boxed_content("\\boxed{1"), None);
        assert_eq!(special_symbol_replace("5\\text{cm}^2,"), "5");
        assert_eq!(special_symbol_replace("60^{\\circ},"), "60");
        assert_eq!(special_symbol_replace("\\sin30,"), "\\sin((30/180)\\pi)");
        assert_eq!(special_symbol_replace("x\\in [1,2],"), "[1,2]");
        // The trailing comma keeps `(.+)m$` from firing on box contents: `5m` stays.
        assert_eq!(special_symbol_replace("5m,"), "5m");
    }

    #[test]
    fn comparisons() {
        // Numbers within 0.0101, and the reference x100 or /100 (percentages).
        assert!(ok("\\frac{1}{3}", "so \\boxed{0.33}"));
        assert!(!ok("\\frac{1}{3}", "so \\boxed{0.35}"));
        assert!(ok("50", "\\boxed{0.5}"));
        assert!(ok("0.25", "\\boxed{25}"));
        // Units are stripped first.
        assert!(ok("5", "\\boxed{5 cm}"));
        // A constant expression is compared by value; one side with a symbol is never equal to a number.
        assert!(ok("2\\sqrt{3}", "\\boxed{\\sqrt{12}}"));
        assert!(ok("\\frac{\\pi}{2}", "\\boxed{1.57}"));
        assert!(!ok("2", "\\boxed{2x}"));
        // Expressions with symbols: equal after simplification; the value after `=` counts.
        assert!(ok("2x+1", "\\boxed{y = 1 + 2x}"));
        assert!(ok("(x+1)^{2}", "\\boxed{x^2+2x+1}"));
        assert!(!ok("x+1", "\\boxed{x+2}"));
        // Equations equal up to an integer factor.
        assert!(ok("y=2x+1", "\\boxed{2y-4x-2=0}"));
        assert!(!ok("y=2x+1", "\\boxed{y=2x}"));
        // Several answers pair off in any order; counts must match; `\pm` gives two.
        assert!(ok("3, 4", "\\boxed{4} and \\boxed{3}"));
        assert!(!ok("3, 4", "\\boxed{3}"));
        assert!(ok("\\pm 2", "\\boxed{2}, \\boxed{-2}"));
        // Intervals: same brackets, elements equal; `a<x<b` is `(a, b)`.
        assert!(ok("(1, \\frac{1}{2})", "\\boxed{(1, 0.5)}"));
        assert!(!ok("(1, 2)", "\\boxed{[1, 2]}"));
        assert!(ok("1<x<3", "\\boxed{(1,3)}"));
        // No box in the response: wrong, as in the script; Vision-R1's tag counts as a box (deviation).
        assert!(!ok("5", "The answer is 5."));
        assert!(ok("5", "<answer> Final Answer: 5 </answer>"));
    }
}
