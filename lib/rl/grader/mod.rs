//! The answer grader every accuracy reward uses: MathRuler's `grade_answer(given, ground_truth)`
//! (PyPI `mathruler` 0.1.0, `mathruler/grader.py`, itself OpenAI prm800k's `grading/grader.py`),
//! which EasyR1 and both papers' RL code call; plus the answer extraction the rewards need.
//!
//! The algorithm, step for step as in mathruler:
//! 1. Hendrycks MATH normalization ([`mathd::normalize_answer`]) of both strings; equal → correct.
//! 2. prm800k normalization ([`normalize::normalize`]: `\text{}`, `$`, `%`, units, `^\circ`,
//!    LaTeX to text through pylatexenc, mixed numbers, case); equal → correct; empty prediction → wrong.
//! 3. Both split as tuples/intervals ([`normalize::split_tuple`]); the brackets of a multi-element
//!    answer must match, the element counts must match, and each element pair must agree: two
//!    fractions `a/b` only as equal strings, an integer only with an integer, anything else by
//!    sympy: `simplify((gt) - (given)) == 0` ([`symbolic::are_equal_under_sympy`]).
//!
//! Deliberate deviations (each keeps the verdict bounded; `tests/grader_parity.rs` lists the
//! known differences, with mathruler's verdicts, in `OUTSIDE_THE_CORPUS`):
//! - sympy is replaced by an exact evaluator ([`symbolic`]) over rational functions with ℚ
//!   coefficients (sympy's 53-bit Floats once a decimal literal takes part) in symbols, π, I and
//!   square roots of primes. Constructs outside it (functions other than `sqrt`, roots of
//!   symbols, non-integer powers, `x!`, ...) count as "not equal", as a sympy exception does in
//!   mathruler; sympy would sometimes prove them equal (`\sqrt{x}\sqrt{x}` = `x`).
//! - pylatexenc's `latex_to_text` is replaced by [`latex::latex_to_text`], which knows the macros
//!   that occur in answers; an unknown macro renders as nothing, as in pylatexenc. Accents stay
//!   decomposed where pylatexenc composes them (NFC).
//! - Work is bounded by counters, never by wall time: each string is at most [`MAX_ANSWER_CHARS`]
//!   characters (longer pairs are correct only when equal after `strip()`), and every pass over
//!   text or expression terms spends from a [`Budget`] of [`DEFAULT_STEP_BUDGET`] steps; an
//!   exhausted budget makes the verdict "wrong". Expressions are capped in length, nesting,
//!   terms, degree and exponent ([`symbolic`], `algebra`). mathruler has no bound: sympy can take
//!   seconds or hang.
use crate::eval::python;

mod algebra;
pub mod latex;
pub mod mathd;
pub mod normalize;
pub mod pairs;
pub mod symbolic;

/// Longest prediction or ground truth graded in full (characters).
pub const MAX_ANSWER_CHARS: usize = 2048;
/// Steps one [`grade_answer`] call may spend. A step is one character scanned by a pass over a
/// string, or one term operation of the symbolic evaluator.
pub const DEFAULT_STEP_BUDGET: u64 = 2_000_000;

/// The step budget was spent before the grader reached a verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exhausted;

/// A counter of the work the grader may still do.
#[derive(Debug, Clone)]
pub struct Budget {
    limit: u64,
    spent: u64,
}

impl Budget {
    pub fn new(limit: u64) -> Self {
        Budget { limit, spent: 0 }
    }

    /// Takes `n` steps, or fails (taking none) when fewer than `n` remain.
    pub fn spend(&mut self, n: u64) -> Result<(), Exhausted> {
        match self.spent.checked_add(n) {
            Some(total) if total <= self.limit => {
                self.spent = total;
                Ok(())
            }
            _ => Err(Exhausted),
        }
    }

    /// Takes one step per character of `s` (a linear pass over it).
    pub fn scan(&mut self, s: &str) -> Result<(), Exhausted> {
        self.spend(s.len() as u64 + 1)
    }

    pub fn spent(&self) -> u64 {
        self.spent
    }

    pub fn limit(&self) -> u64 {
        self.limit
    }
}

/// A verdict with the work it took.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Grade {
    pub correct: bool,
    /// Steps spent (never more than the budget's limit).
    pub steps: u64,
    /// The budget ran out (the verdict is then `false`).
    pub exhausted: bool,
}

/// mathruler's `grade_answer(given_answer, ground_truth)`: is `pred` a correct answer for `gold`?
pub fn grade_answer(pred: &str, gold: &str) -> bool {
    grade_answer_with(pred, gold, &mut Budget::new(DEFAULT_STEP_BUDGET)).correct
}

/// [`grade_answer`] spending from `budget`.
pub fn grade_answer_with(pred: &str, gold: &str, budget: &mut Budget) -> Grade {
    let start = budget.spent();
    let (correct, exhausted) = match grade(pred, gold, budget) {
        Ok(c) => (c, false),
        Err(Exhausted) => (false, true),
    };
    Grade { correct, steps: budget.spent() - start, exhausted }
}

fn grade(given: &str, truth: &str, b: &mut Budget) -> Result<bool, Exhausted> {
    let too_long = |s: &str| s.len() > 4 * MAX_ANSWER_CHARS || s.chars().count() > MAX_ANSWER_CHARS;
    if too_long(given) || too_long(truth) {
        b.spend(MAX_ANSWER_CHARS as u64)?;
        return Ok(python::strip(given) == python::strip(truth));
    }
    if mathd::normalize_answer(truth, b)? == mathd::normalize_answer(given, b)? {
        return Ok(true);
    }
    let truth_n = normalize::normalize(truth, b)?;
    let given_n = normalize::normalize(given, b)?;
    if truth_n == given_n {
        return Ok(true);
    }
    if given_n.is_empty() {
        return Ok(false);
    }
    let truth_elems = normalize::split_tuple(&truth_n, b)?;
    let given_elems = normalize::split_tuple(&given_n, b)?;
    if truth_elems.len() > 1
        && (truth_n.chars().next() != given_n.chars().next() || truth_n.chars().last() != given_n.chars().last())
    {
        return Ok(false);
    }
    if truth_elems.len() != given_elems.len() {
        return Ok(false);
    }
    for (t, g) in truth_elems.iter().zip(&given_elems) {
        let ok = if normalize::is_frac(t) && normalize::is_frac(g) {
            // Unreduced fractions must not pass through simplification.
            t == g
        } else if normalize::str_is_int(t, b)? != normalize::str_is_int(g, b)? {
            // An integer answer needs an exact match.
            false
        } else {
            symbolic::are_equal_under_sympy(t, g, b)?
        };
        if !ok {
            return Ok(false);
        }
    }
    Ok(true)
}

/// The content of the last `\boxed{...}` whose braces balance, stripped; `None` when there is none
/// (mathruler's `extract_boxed_content` returns the string "None" then: see
/// [`extract_boxed_content`]).
pub fn last_boxed(text: &str) -> Option<&str> {
    const OPEN: &str = "\\boxed{";
    let start = text.rfind(OPEN)? + OPEN.len();
    let content = &text[start..];
    let mut depth = 0i64;
    for (i, c) in content.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            _ => {}
        }
        if depth == -1 {
            return Some(python::strip(&content[..i]));
        }
    }
    None
}

/// mathruler's `extract_boxed_content`: [`last_boxed`], or the literal string `"None"` when there
/// is no balanced `\boxed{}` (so a ground truth "None" matches a response without a box, as in
/// the released reward code).
pub fn extract_boxed_content(text: &str) -> String {
    last_boxed(text).unwrap_or("None").to_string()
}

/// The text inside the first `<answer>...</answer>` (Python `re.search(r"<answer>(.*?)</answer>",
/// s, re.DOTALL).group(1).strip()`), or `None`.
pub fn answer_tag(text: &str) -> Option<&str> {
    let start = text.find("<answer>")? + "<answer>".len();
    let end = text[start..].find("</answer>")?;
    Some(python::strip(&text[start..start + end]))
}

/// Vision-R1's answers read `<answer> Final Answer: X </answer>` (papers_spec §3 pitfall 6): drops
/// a leading `Final Answer:` (ASCII case-insensitive) and the whitespace around it.
pub fn strip_final_answer(answer: &str) -> &str {
    const PREFIX: &str = "final answer:";
    let a = python::strip(answer);
    match a.get(..PREFIX.len()) {
        Some(head) if head.eq_ignore_ascii_case(PREFIX) => python::strip(&a[PREFIX.len()..]),
        _ => a,
    }
}

#[cfg(test)]
mod tests;
