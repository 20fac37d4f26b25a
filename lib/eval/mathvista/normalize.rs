//! From an extracted answer to a prediction, and the correctness test: the official scorer's
//! `normalize_extracted_answer`, `get_most_similar` and `safe_equal`
//! (lupantech/MathVista `evaluation/calculate_score.py` at 53d5258).
//!
//! - multi_choice: the extraction as text (stripped when it is a string; Python's `str()`
//!   otherwise), `(x)` anywhere in it taken as the letter X, a letter A, B, ... picks that choice,
//!   anything else picks the choice with the smallest Levenshtein distance (the first on ties).
//! - integer: `str(int(float(e)))`; float: `str(round(float(e), int(precision)))`;
//!   list: `str(e)`. A conversion that raises in Python gives no prediction (`None`).
use anyhow::{Result, bail};
use serde_json::Value;

use super::Problem;
use crate::eval::python;

/// Options of the official scorer that change normalization.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NormalizeOptions {
    /// `--ignore_empty_extractions`: an empty multi-choice extraction gives no prediction instead
    /// of the nearest choice. Off by default, as in the official script.
    pub ignore_empty_extractions: bool,
}

/// The first `(x)` with an ASCII letter x, as `re.findall(r'\(([a-zA-Z])\)', text)[0]`.
fn parenthesized_letter(text: &str) -> Option<char> {
    let chars: Vec<char> = text.chars().collect();
    chars.windows(3).find(|w| w[0] == '(' && w[1].is_ascii_alphabetic() && w[2] == ')').map(|w| w[1])
}

/// The choice nearest to `text` by Levenshtein distance over Unicode code points (what
/// python-Levenshtein's `distance` computes); the first one on ties. `choices` must not be empty.
pub fn most_similar<'a>(text: &str, choices: &'a [String]) -> &'a str {
    let mut best = (usize::MAX, choices[0].as_str());
    for choice in choices {
        let d = strsim::levenshtein(text, choice);
        if d < best.0 {
            best = (d, choice);
        }
    }
    best.1
}

fn normalize_multi_choice(extraction: &Value, choices: &[String], opts: NormalizeOptions) -> Option<String> {
    let mut text = match extraction {
        Value::String(s) => python::strip(s).to_string(),
        other => python::str_of(other),
    };
    if opts.ignore_empty_extractions && text.is_empty() {
        return None;
    }
    if let Some(letter) = parenthesized_letter(&text) {
        text = letter.to_ascii_uppercase().to_string();
    }
    // The letters are chr(ord('A') + i) for each choice, so a single character is enough.
    let mut chars = text.chars();
    if let (Some(c), None) = (chars.next(), chars.next()) {
        let index = (c as u32).wrapping_sub('A' as u32) as usize;
        if index < choices.len() {
            return Some(choices[index].clone());
        }
    }
    Some(most_similar(&text, choices).to_string())
}

/// The prediction the official scorer derives from `extraction` (JSON null where the output has
/// none). Errors where the official script stops with an exception instead of scoring: a
/// multi-choice problem without choices, or an answer type it has no rule for.
pub fn normalize_extracted_answer(
    extraction: &Value,
    problem: &Problem,
    opts: NormalizeOptions,
) -> Result<Option<String>> {
    if problem.question_type == "multi_choice" {
        return match problem.choices.as_deref() {
            Some(choices) if !choices.is_empty() => Ok(normalize_multi_choice(extraction, choices, opts)),
            _ => bail!("a multi_choice problem needs a non-empty `choices` list (the official scorer fails on it)"),
        };
    }
    Ok(match problem.answer_type.as_str() {
        "integer" => python::float_of(extraction).and_then(python::int_string),
        "float" => {
            let x = python::float_of(extraction);
            let ndigits = python::int_of(&problem.precision);
            x.zip(ndigits).and_then(|(x, n)| python::round(x, n)).map(python::float_repr)
        }
        "list" => Some(python::str_of(extraction)),
        other => bail!(
            "answer_type {other:?} of a {:?} question has no rule in the official scorer (integer, float, list, \
             or question_type multi_choice)",
            problem.question_type
        ),
    })
}

/// The official `safe_equal`: Python `==` between the prediction (a string or `None`) and the
/// answer as `json.load` read it, so a string matches only a string and `None` only null.
pub fn safe_equal(prediction: Option<&str>, answer: &Value) -> bool {
    match (prediction, answer) {
        (Some(p), Value::String(a)) => p == a,
        (None, Value::Null) => true,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn problem(question_type: &str, answer_type: &str, choices: Option<&[&str]>, precision: Value) -> Problem {
        Problem {
            question_type: question_type.into(),
            answer_type: answer_type.into(),
            choices: choices.map(|c| c.iter().map(|s| s.to_string()).collect()),
            precision,
            answer: json!("x"),
            metadata: Default::default(),
        }
    }

    fn norm(extraction: Value, p: &Problem) -> Option<String> {
        normalize_extracted_answer(&extraction, p, NormalizeOptions::default()).unwrap()
    }

    #[test]
    fn multi_choice_by_letter_and_by_text() {
        let p = problem("multi_choice", "text", Some(&["3", "4.5", "yes", "no"]), Value::Null);
        assert_eq!(norm(json!("B"), &p), Some("4.5".into()));
        assert_eq!(norm(json!(" D\n"), &p), Some("no".into()));
        assert_eq!(norm(json!("The answer is (c) yes"), &p), Some("yes".into()));
        assert_eq!(norm(json!("(b)(a)"), &p), Some("4.5".into())); // the first (x) wins
        // A bare lower-case letter is no letter choice: the nearest text, "3" at distance 1.
        assert_eq!(norm(json!("b"), &p), Some("3".into()));
        assert_eq!(norm(json!("E"), &p), Some("3".into())); // past the last letter: nearest text
        assert_eq!(norm(json!("yes."), &p), Some("yes".into()));
        assert_eq!(norm(json!("4.50"), &p), Some("4.5".into()));
        assert_eq!(norm(json!(4.5), &p), Some("4.5".into())); // str(4.5) = "4.5"
        assert_eq!(norm(json!(null), &p), Some("no".into())); // str(None) = "None"
        assert_eq!(norm(json!(""), &p), Some("3".into())); // shortest choice, first of ties
        let ignore = NormalizeOptions { ignore_empty_extractions: true };
        assert_eq!(normalize_extracted_answer(&json!("  "), &p, ignore).unwrap(), None);
    }

    #[test]
    fn most_similar_counts_code_points_and_keeps_the_first_minimum() {
        let choices: Vec<String> = ["ab", "ba", "北京", "abc"].iter().map(|s| s.to_string()).collect();
        assert_eq!(most_similar("aa", &choices), "ab"); // distance 1 to "ab" and "ba": the first
        assert_eq!(most_similar("北", &choices), "北京"); // one edit, not two: code points, not bytes
        assert_eq!(most_similar("北京市", &choices), "北京");
        assert_eq!(most_similar("abcd", &choices), "abc");
    }

    #[test]
    fn integers_truncate_through_float() {
        let p = problem("free_form", "integer", None, Value::Null);
        assert_eq!(norm(json!("12"), &p), Some("12".into()));
        assert_eq!(norm(json!("12.9"), &p), Some("12".into()));
        assert_eq!(norm(json!("-0.5"), &p), Some("0".into()));
        assert_eq!(norm(json!(" 1e3 "), &p), Some("1000".into()));
        assert_eq!(norm(json!("1_000"), &p), Some("1000".into()));
        assert_eq!(norm(json!(7), &p), Some("7".into()));
        for bad in [json!("12 apples"), json!("inf"), json!("nan"), json!(null), json!(""), json!([1])] {
            assert_eq!(norm(bad.clone(), &p), None, "{bad}");
        }
    }

    #[test]
    fn floats_round_to_the_precision() {
        let p1 = problem("free_form", "float", None, json!(1));
        let p2 = problem("free_form", "float", None, json!(2.0));
        assert_eq!(norm(json!("1.25"), &p1), Some("1.2".into())); // 1.25 is exact: half to even
        assert_eq!(norm(json!("1.35"), &p1), Some("1.4".into())); // 1.35 is 1.3500000000000000888
        assert_eq!(norm(json!("3"), &p1), Some("3.0".into()));
        assert_eq!(norm(json!("2.675"), &p2), Some("2.67".into()));
        assert_eq!(norm(json!("0.1"), &p2), Some("0.1".into()));
        assert_eq!(norm(json!("1e20"), &p2), Some("1e+20".into()));
        assert_eq!(norm(json!("inf"), &p2), Some("inf".into())); // round(inf) is inf in Python
        assert_eq!(norm(json!("1.5 m"), &p1), None);
        let no_precision = problem("free_form", "float", None, Value::Null);
        assert_eq!(norm(json!("1.5"), &no_precision), None); // int(None) raises
        let text_precision = problem("free_form", "float", None, json!("1"));
        assert_eq!(norm(json!("1.55"), &text_precision), Some("1.6".into()));
    }

    #[test]
    fn lists_are_python_str() {
        let p = problem("free_form", "list", None, Value::Null);
        assert_eq!(norm(json!("[1, 2]"), &p), Some("[1, 2]".into()));
        assert_eq!(norm(json!(" [1,2] "), &p), Some(" [1,2] ".into())); // not stripped
        assert_eq!(norm(json!([2014, 2016]), &p), Some("[2014, 2016]".into()));
        assert_eq!(norm(json!(null), &p), Some("None".into()));
    }

    #[test]
    fn unscorable_problems_are_errors_not_panics() {
        let p = problem("multi_choice", "text", Some(&[]), Value::Null);
        assert!(normalize_extracted_answer(&json!("A"), &p, NormalizeOptions::default()).is_err());
        let p = problem("multi_choice", "text", None, Value::Null);
        assert!(normalize_extracted_answer(&json!("A"), &p, NormalizeOptions::default()).is_err());
        let p = problem("free_form", "text", None, Value::Null);
        let err = normalize_extracted_answer(&json!("A"), &p, NormalizeOptions::default()).unwrap_err();
        assert!(err.to_string().contains("\"text\""), "{err}");
    }

    #[test]
    fn equality_is_python_equality() {
        assert!(safe_equal(Some("1.2"), &json!("1.2")));
        assert!(!safe_equal(Some("1.2"), &json!(1.2)));
        assert!(!safe_equal(Some("1.20"), &json!("1.2")));
        assert!(!safe_equal(None, &json!("1.2")));
        assert!(safe_equal(None, &json!(null)));
    }
}
