//! MATH-Vision, following the official rule-based scorer (GitHub mathllm/MATH-V, commit 1d361180,
//! `evaluation/evaluate.py` `evaluate` and `evaluation/utils.py` `find_math_answer`, `_strip_string`,
//! `_fix_sqrt`, `_fix_fracs`, `_fix_a_slash_b`, `is_equal`, `eval_tuple`), read and re-derived:
//!
//! 1. Extraction ([`model_answer`]), on the stripped response: a response ending ` B.` / ` (B).` or
//!    starting `B\n` / `(B)\n` / `(B) B\n` becomes the letter; a number after the last `is ` (trailing
//!    periods dropped) becomes that number; without `oxed{`, the text after the last "the final answer
//!    is", "the answer is", "the correct answer is", "the answer should be" (each also capitalised),
//!    cut at its first line and first `. `; with several boxes, from the last `oxed{` on.
//! 2. [`find_math_answer`]: lower case, the greedy `oxed{(.*)}` span (cut at a `}` that closes nothing),
//!    the value after the last `=` / `\approx`, LaTeX and unit clean-up (`\text`, `\left`, `^\circ`,
//!    `m^3`, `units`, `km`, spaces), then `_strip_string` (`\frac` variants, `\%`, `\$`, leading `.`,
//!    `\sqrt3` → `\sqrt{3}`, `0.5` → `\frac{1}{2}`, `a/b` → `\frac{a}{b}`; `_fix_fracs` only runs when
//!    `sqrt` occurs, as in the script); then `(a)`/`{a}` → `a` for a..e and trailing `.`/leading `:` go.
//! 3. [`is_equal`] against the answer and, for multiple choice, against the answer's option text:
//!    lower-case string equality, then tuples/lists element-wise evaluated and rounded to 2 decimals,
//!    then `round(value, 2)` equality of the two LaTeX values ([`super::arith`], latex2sympy's reading).
//!
//! Deviations: a response with no `oxed{` that carries Vision-R1's `<answer> Final Answer: X </answer>`
//! is scored as `\boxed{X}` (the official script would scan the whole text; see [`super::as_boxed`]);
//! latex2sympy is replaced by [`super::arith`] (its fragment; outside it the comparison is "not equal",
//! as the script's `except` makes any error).
//!
//! Checked once against the official code (outside the repository): `evaluate.py` with latex2sympy2 1.9.1
//! on 573 answer/response pairs (hand-written edge cases and random LaTeX arithmetic) gives the same
//! `model_answer` and verdict as this port on every pair.
use super::arith::Py;
use super::parse::parse;
use crate::eval::bench::score::ItemScore;
use crate::eval::bench::{AnswerType, BenchItem};
use crate::eval::python;

const FLAGS: [&str; 4] = ["the final answer is", "the answer is", "the correct answer is", "the answer should be"];

/// Scores `response` as `evaluate.py` does; `None` for a multiple-choice item whose answer letter names
/// no option (the script would raise).
pub fn score(item: &BenchItem, sample: usize, response: &str) -> Option<ItemScore> {
    let value = match item.answer_type {
        AnswerType::MultipleChoice if !item.choices.is_empty() => {
            let i = item.answer.chars().next().map(|c| (c as u32).wrapping_sub('A' as u32) as usize)?;
            item.choices.get(i)?.clone()
        }
        _ => String::new(),
    };
    let answer = model_answer(&super::as_boxed(response, "oxed{"));
    let correct = is_equal(&item.answer, &answer) || is_equal(&value, &answer);
    let found = (!answer.is_empty()).then(|| answer.clone());
    Some(ItemScore::new(item, sample, response, found.clone(), found, correct))
}

/// `s.split(sep)[-1]`.
fn after_last<'a>(s: &'a str, sep: &str) -> &'a str {
    s.rfind(sep).map_or(s, |i| &s[i + sep.len()..])
}

/// `s.split('\n')[0].split('. ')[0]`.
fn first_sentence(s: &str) -> &str {
    let line = s.split('\n').next().unwrap_or(s);
    line.split(". ").next().unwrap_or(line)
}

/// `evaluate.py`'s `model_answer` for a response.
pub fn model_answer(response: &str) -> String {
    let mut a = python::strip(response).to_string();
    for c in ['A', 'B', 'C', 'D', 'E'] {
        let ends = a.ends_with(&format!(" {c}.")) || a.ends_with(&format!(" ({c})."));
        let starts = [format!("{c}\n"), format!("({c})\n"), format!("({c}) {c}\n")].iter().any(|p| a.starts_with(p));
        if ends || starts {
            a = c.to_string();
        }
    }
    let tail = after_last(&a, "is ").trim_end_matches('.');
    if python::parse_float(tail).is_some() {
        a = tail.to_string();
    }
    if !a.contains("oxed{") {
        for flag in FLAGS {
            for f in [flag.to_string(), flag.replace("the", "The")] {
                let had = a.contains(&f);
                a = python::strip(after_last(&a, &f)).to_string();
                if had {
                    a = first_sentence(&a).to_string();
                }
            }
        }
    } else if a.matches("oxed{").count() > 1 {
        a = format!("\\boxed{{{}", after_last(&a, "oxed{"));
    }
    let mut m = find_math_answer(&a);
    for c in ["a", "b", "c", "d", "e"] {
        m = m.replace(&format!("({c})"), c);
    }
    for c in ["a", "b", "c", "d", "e"] {
        m = m.replace(&format!("{{{c}}}"), c);
    }
    python::strip(m.trim_end_matches('.').trim_start_matches(':')).to_string()
}

/// `utils.py`'s `find_math_answer`.
pub fn find_math_answer(s: &str) -> String {
    let s = s.to_lowercase().replace("{}", "");
    let mut ans = match (s.find("oxed{"), s.rfind('}')) {
        (Some(i), Some(j)) if j >= i + 5 => &s[i + 5..j],
        _ => s.as_str(),
    };
    if let Some(close) = ans.find('}')
        && ans.find('{').is_none_or(|open| close < open)
    {
        ans = &ans[..close];
    }
    let ans = after_last(after_last(ans, "="), "\\approx");
    let mut ans = ans.replace(' ', "").replace("\\,", "").replace('∞', "\\infty");
    let steps: [(&str, &str); 16] = [
        ("+\\infty", "\\infty"),
        ("\\\\", "\\"),
        ("\n", ""),
        ("\\text", ""),
        ("\\mbox", ""),
        ("bmatrix", "pmatrix"),
        ("\\left", ""),
        ("\\right", ""),
        ("^{\\circ}", ""),
        ("^\\circ", ""),
        ("{m}^3", ""),
        ("m^3", ""),
        ("{units}", ""),
        ("units", ""),
        ("{km}", ""),
        ("km", ""),
    ];
    for (from, to) in steps {
        ans = ans.replace(from, to);
    }
    strip_string(&ans)
}

/// `utils.py`'s `_strip_string`.
pub fn strip_string(s: &str) -> String {
    let mut s = s.replace('\n', "").replace("\\!", "").replace("\\\\", "\\");
    s = s.replace("tfrac", "frac").replace("dfrac", "frac").replace("\\left", "").replace("\\right", "");
    s = s.replace("^{\\circ}", "").replace("^\\circ", "").replace("\\$", "").replace('$', "");
    // `_remove_right_units`: everything before the first `\text{ `.
    s = s.split("\\text{ ").next().unwrap_or("").to_string();
    s = s.replace("\\%", "").replace(" .", " 0.").replace("{.", "{0.");
    if s.is_empty() {
        return s;
    }
    if s.starts_with('.') {
        s.insert(0, '0');
    }
    if s.matches('=').count() == 1 {
        s = after_last(&s, "=").to_string();
    }
    if s.matches("\\approx").count() == 1 {
        s = after_last(&s, "\\approx").to_string();
    }
    if s.contains("sqrt") {
        s = fix_braces(&s, "\\sqrt", 1).unwrap_or(s);
    }
    s = s.replace(' ', "");
    if s.contains("sqrt") {
        s = fix_braces(&s, "\\frac", 2).unwrap_or(s);
    }
    if s == "0.5" {
        s = "\\frac{1}{2}".to_string();
    }
    fix_a_slash_b(&s).unwrap_or(s)
}

/// `_fix_sqrt` (`args` 1) and `_fix_fracs` (`args` 2): after each `cmd` not followed by `{`, brace the
/// next one (sqrt) or two (frac) characters; for `\frac` with a braced second character only the first.
/// `None` where `_fix_fracs` gives up (fewer than two characters after a `\frac`) and keeps the input.
fn fix_braces(s: &str, cmd: &str, args: usize) -> Option<String> {
    let mut parts = s.split(cmd);
    let mut out = parts.next().unwrap_or("").to_string();
    for part in parts {
        out.push_str(cmd);
        let c: Vec<char> = part.chars().collect();
        if c.first() == Some(&'{') || (args == 1 && c.is_empty()) {
            out.push_str(part);
        } else if args == 1 {
            out.push_str(&format!("{{{}}}{}", c[0], c[1..].iter().collect::<String>()));
        } else if c.len() < 2 {
            return None;
        } else if c[1] == '{' {
            out.push_str(&format!("{{{}}}{}", c[0], c[1..].iter().collect::<String>()));
        } else {
            out.push_str(&format!("{{{}}}{{{}}}{}", c[0], c[1], c[2..].iter().collect::<String>()));
        }
    }
    Some(out)
}

/// `_fix_a_slash_b`: `a/b` of two integers written canonically (`str(int(a)) == a`) → `\frac{a}{b}`.
fn fix_a_slash_b(s: &str) -> Option<String> {
    let (a, b) = s.split_once('/')?;
    let canonical = |t: &str| {
        let d = t.strip_prefix('-').unwrap_or(t);
        t != "-0" && !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()) && (d == "0" || !d.starts_with('0'))
    };
    (!b.contains('/') && canonical(a) && canonical(b)).then(|| format!("\\frac{{{a}}}{{{b}}}"))
}

/// `round(eval(str(latex2sympy(s))), 2)`; `None` where the script's `try` fails.
fn rounded(s: &str) -> Option<Py> {
    match parse(s)?.eval_py()? {
        Py::Int(i) => Some(Py::Int(i)),
        Py::Float(x) => python::round(x, 2).map(Py::Float),
    }
}

/// `eval_tuple`: a `(...)`/`[...]` of several comma-separated elements, each evaluated and rounded to 2
/// decimals (kept as written when it holds `infty` or is `a`/`-a`); the input when any element fails.
fn eval_tuple(s: &str) -> String {
    let c: Vec<char> = s.chars().collect();
    let (Some(&first), Some(&last)) = (c.first(), c.last()) else { return s.to_string() };
    let inner: String = c.get(1..c.len().saturating_sub(1)).map(|i| i.iter().collect()).unwrap_or_default();
    let elements: Vec<&str> = inner.split(',').collect();
    if elements.len() < 2 || !matches!((first, last), ('(', ')') | ('[', ']')) {
        return s.to_string();
    }
    let mut out = vec![];
    for e in elements {
        if e.contains("infty") || e == "a" || e == "-a" {
            out.push(e.to_string());
            continue;
        }
        match rounded(e) {
            Some(Py::Int(i)) => out.push(i.to_string()),
            Some(Py::Float(x)) => out.push(python::float_repr(x)),
            None => return s.to_string(),
        }
    }
    format!("{first}{}{last}", out.join(","))
}

/// `utils.py`'s `is_equal(asw, gt_asw)`.
pub fn is_equal(asw: &str, gt: &str) -> bool {
    let (asw, gt) = (asw.to_lowercase(), gt.to_lowercase());
    if asw.replace(' ', "").is_empty() || gt.replace(' ', "").is_empty() {
        return false;
    }
    if python::strip(&gt) == python::strip(&asw) {
        return true;
    }
    let (asw, gt) = (eval_tuple(&asw), eval_tuple(&gt));
    if asw == gt {
        return true;
    }
    match (rounded(&gt), rounded(&asw)) {
        (Some(Py::Int(a)), Some(Py::Int(b))) => a == b,
        (Some(a), Some(b)) => a.f() == b.f(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::bench::Benchmark;

    fn item(answer: &str, choices: &[&str]) -> BenchItem {
        BenchItem::fixture(Benchmark::MathVision, "", choices, answer)
    }

    fn ok(answer: &str, choices: &[&str], response: &str) -> bool {
        score(&item(answer, choices), 0, response).unwrap().correct
    }

    #[test]
    fn extraction_follows_evaluate_py() {
        // A trailing " C." is the letter; "(B)\n" at the start too.
        assert_eq!(model_answer("So it must be C."), "c");
        assert_eq!(model_answer("(B)\nbecause ..."), "b");
        // A number after the last "is " with its trailing period.
        assert_eq!(model_answer("The area is 12."), "12");
        // "the answer is" phrase, cut at the first ". " of its line.
        assert_eq!(model_answer("Thus the answer is 7 cm. Done\nmore"), "7cm");
        // Several boxes: the last one; the greedy span is cut at a `}` that closes nothing.
        assert_eq!(model_answer("\\boxed{1} then \\boxed{2} end}"), "2");
        assert_eq!(model_answer("\\boxed{\\dfrac{3}{4}}"), "\\frac{3}{4}");
        // Units and degrees go; `\text{...}` leaves its braces.
        assert_eq!(model_answer("\\boxed{30^\\circ}"), "30");
        assert_eq!(model_answer("\\boxed{5 \\text{cm}}"), "5{cm}");
        assert_eq!(model_answer("\\boxed{5 \\text{km}}"), "5");
        // `(b)` -> `b`; `0.5` -> `\frac{1}{2}`; `3/4` -> `\frac{3}{4}`; `\sqrt3` -> `\sqrt{3}`.
        assert_eq!(model_answer("\\boxed{(B)}"), "b");
        assert_eq!(model_answer("\\boxed{.5}"), "\\frac{1}{2}");
        assert_eq!(model_answer("\\boxed{x = 3/4}"), "\\frac{3}{4}");
        assert_eq!(model_answer("\\boxed{2\\sqrt3}"), "2\\sqrt{3}");
        // A percent sign written `\%` goes, a bare `%` stays.
        assert_eq!(model_answer("\\boxed{50\\%}"), "50");
        assert_eq!(model_answer("\\boxed{50%}"), "50%");
    }

    #[test]
    fn comparison_follows_is_equal() {
        // Letters compare lower-cased; the option text counts too.
        assert!(ok("B", &["3", "5"], "The correct answer is B."));
        assert!(ok("B", &["3", "5"], "\\boxed{5}"));
        assert!(!ok("B", &["3", "5"], "\\boxed{A}"));
        // Values rounded to 2 decimals: 1/3 and 0.33 agree, 0.34 does not.
        assert!(ok("\\frac{1}{3}", &[], "\\boxed{0.33}"));
        assert!(!ok("\\frac{1}{3}", &[], "\\boxed{0.34}"));
        assert!(ok("2\\sqrt{3}", &[], "\\boxed{3.464}"));
        assert!(ok("50", &[], "\\boxed{50\\%}"));
        // Tuples: elements evaluated and rounded, spaces in the answer do not matter.
        assert!(!ok("(1, 2)", &[], "\\boxed{(1,\\frac{4}{2})}")); // "(1,2.0)" != "(1,2)" as strings
        assert!(ok("(1, 0.5)", &[], "\\boxed{(1,\\frac{1}{2})}"));
        // Symbols are a NameError in the script: only equal strings match.
        assert!(ok("x+1", &[], "\\boxed{x+1}"));
        assert!(!ok("x+1", &[], "\\boxed{1+x}"));
        // No box, no phrase: the whole (cleaned) response is compared.
        assert!(!ok("6", &[], "I count the dots and get six of them"));
        assert!(ok("6", &[], "The count is 6."));
        // Vision-R1's answer tag is read as a box (deviation).
        assert!(ok("6", &[], "<think>count</think><answer> Final Answer: 6 </answer>"));
    }
}
