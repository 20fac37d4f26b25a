//! DynaMath, following the official rule-based scorer (GitHub DynaMath/DynaMath, commit 65a346ac,
//! `evaluation/opensource_json_eval.py`, the loop after generation, and its `preprocess` / `transfer`;
//! the GPT-4o/Gemini/Claude scripts beside it compare the same way), read and re-derived.
//!
//! The prompt asks for a JSON object with keys `solution` and `short answer`. Parsing ([`short_answer`]):
//! the response is cut to the span from its first `{` to its last `}` (kept whole when there is none),
//! every backslash is removed, and the span is read as JSON with control characters allowed inside strings
//! (`json.loads(..., strict=False)`); the short answer is `str(obj.get("short answer"))` (`None` when the
//! key is missing). Comparison by the item's answer type:
//! - `float`: unless the short answer is all digits, its first space-separated word is read, `2π` as
//!   2·π; correct when |value − float(ground truth)| ≤ 0.001. Anything unreadable is wrong.
//! - `multiple choice`: a one-character answer must equal the ground-truth letter; a longer one is
//!   correct when the letter occurs in its first three characters (`(B) 5`, `B. 5`).
//! - anything else: correct when the ground truth occurs in the short answer as a substring (so `12` is
//!   accepted for `2`, as in the script).
//!
//! Deviations: when the JSON parse fails the script takes the response's last line without its last
//! character as the short answer; r1lab's presets do not ask for JSON, so the short answer is then r1lab's
//! extraction instead ([`crate::eval::bench::score::answer_span`], else
//! [`crate::eval::extract::extract_by_rules`]; empty when neither finds one). VLMEvalKit's DynaMath (the
//! harness Vision-R1 evaluates with) uses the same comparisons with a GPT fallback parse; that fallback is
//! [`crate::eval::bench::judged`]'s business. JSON is read by serde_json: Python's `NaN`/`Infinity`
//! literals are a parse failure here.
//!
//! Checked once against the official code (outside the repository): the script's parsing and comparison
//! statements on 275 responses agree with this port except where the JSON parse fails (the fallback above).
use std::f64::consts::PI;

use serde_json::Value;

use crate::eval::bench::score::{ItemScore, answer_span};
use crate::eval::bench::{AnswerType, BenchItem};
use crate::eval::extract::extract_by_rules;
use crate::eval::python;

/// Scores `response` as the official loop does (every item has a rule).
pub fn score(item: &BenchItem, sample: usize, response: &str) -> Option<ItemScore> {
    let (answer, from_json) = match short_answer(response) {
        Some(a) => (a, true),
        None => {
            (answer_span(response).or_else(|| extract_by_rules(response, &item.choices)).unwrap_or_default(), false)
        }
    };
    let (prediction, correct) = compare(item, &answer);
    let extraction = (from_json || !answer.is_empty()).then_some(answer);
    Some(ItemScore::new(item, sample, response, extraction, prediction, correct))
}

/// `preprocess`: the span from the first `{` to the last `}`, without backslashes; `None` where the
/// script keeps the response as it is (no such span), which `json.loads` cannot read as an object.
fn preprocess(s: &str) -> Option<String> {
    match (s.find('{'), s.rfind('}')) {
        (Some(a), Some(b)) if b > a => Some(s[a..=b].replace('\\', "")),
        _ => None,
    }
}

/// The short answer of a JSON response; `None` when the preprocessed text is not a JSON object.
pub fn short_answer(response: &str) -> Option<String> {
    let text = preprocess(response)?;
    // `strict=False`: raw control characters inside strings are allowed. No backslash is left, so every
    // `"` opens or closes a string.
    let mut json = String::with_capacity(text.len());
    let mut in_string = false;
    for c in text.chars() {
        match c {
            '"' => {
                in_string = !in_string;
                json.push(c);
            }
            c if in_string && (c as u32) < 0x20 => json.push_str(&format!("\\u{:04x}", c as u32)),
            c => json.push(c),
        }
    }
    match serde_json::from_str::<Value>(&json).ok()? {
        Value::Object(map) => Some(map.get("short answer").map_or_else(|| "None".to_string(), python::str_of)),
        _ => None,
    }
}

/// The value compared and the verdict for one short answer.
fn compare(item: &BenchItem, answer: &str) -> (Option<String>, bool) {
    let truth = item.answer.as_str();
    match item.answer_type {
        AnswerType::Float => {
            // The script reads an all-digit answer with `float` directly; such a text has no space and no π,
            // so reading its first word through `transfer` is the same.
            let value = transfer(answer.split(' ').next().unwrap_or(""));
            match (value, python::parse_float(truth)) {
                (Some(v), Some(t)) => (Some(python::float_repr(v)), (v - t).abs() <= 0.001),
                (v, _) => (v.map(python::float_repr), false),
            }
        }
        AnswerType::MultipleChoice => {
            if answer.chars().count() == 1 {
                (Some(answer.to_string()), answer == truth)
            } else {
                let head: String = answer.chars().take(3).collect();
                let ok = head.contains(truth);
                (Some(head), ok)
            }
        }
        _ => (Some(answer.to_string()), answer.contains(truth)),
    }
}

/// `transfer`: `float(s)`, or `float(text before the first π) * π` when `s` holds a π.
fn transfer(s: &str) -> Option<f64> {
    match s.split_once('π') {
        Some((k, _)) => python::parse_float(k).map(|k| k * PI),
        None => python::parse_float(s),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::bench::Benchmark;

    fn item(answer: &str, t: AnswerType) -> BenchItem {
        let base = BenchItem::fixture(Benchmark::DynaMath, "", &[], answer);
        BenchItem { id: "1/v1".into(), answer_type: t, group: Some("1".into()), ..base }
    }

    fn ok(answer: &str, t: AnswerType, response: &str) -> bool {
        score(&item(answer, t), 0, response).unwrap().correct
    }

    #[test]
    fn json_short_answer() {
        // Text around the object and LaTeX backslashes are dropped; a raw newline inside a string is allowed.
        let r = "Sure!\n{\n \"solution\": \"slope \\frac{1}{2}\nso\",\n \"short answer\": \"0.5\"\n}\nDone.";
        assert_eq!(short_answer(r).as_deref(), Some("0.5"));
        // A number is read as Python's str() of it; a missing key is "None".
        assert_eq!(short_answer("{\"short answer\": 3.0}").as_deref(), Some("3.0"));
        assert_eq!(short_answer("{\"solution\": \"x\"}").as_deref(), Some("None"));
        // Not JSON: no short answer (the caller then uses r1lab's extraction).
        assert_eq!(short_answer("so \\boxed{3}"), None);
    }

    #[test]
    fn float_tolerance_and_pi() {
        // |diff| <= 0.001.
        assert!(ok("1.5", AnswerType::Float, "{\"short answer\": \"1.5009\"}"));
        assert!(!ok("1.5", AnswerType::Float, "{\"short answer\": \"1.502\"}"));
        // Only the first word is read: units after a space are fine, glued units are not.
        assert!(ok("3.0", AnswerType::Float, "{\"short answer\": \"3.000 cm\"}"));
        assert!(!ok("3.0", AnswerType::Float, "{\"short answer\": \"3cm\"}"));
        // `2π` is 2·π.
        assert!(ok("6.283", AnswerType::Float, "{\"short answer\": \"2π\"}"));
        // A percent sign makes the number unreadable.
        assert!(!ok("50.0", AnswerType::Float, "{\"short answer\": \"50%\"}"));
        // Without JSON, r1lab's extraction stands in for the script's last-line fallback.
        assert!(ok("2.5", AnswerType::Float, "<answer> Final Answer: 2.5 </answer>"));
        assert!(ok("2.5", AnswerType::Float, "The slope is \\boxed{2.500}."));
    }

    #[test]
    fn multiple_choice_and_free_form() {
        assert!(ok("B", AnswerType::MultipleChoice, "{\"short answer\": \"B\"}"));
        // Lower case is a different letter.
        assert!(!ok("B", AnswerType::MultipleChoice, "{\"short answer\": \"b\"}"));
        // Longer answers: the letter within the first three characters.
        assert!(ok("B", AnswerType::MultipleChoice, "{\"short answer\": \"(B) 5\"}"));
        assert!(!ok("B", AnswerType::MultipleChoice, "{\"short answer\": \"The answer is B\"}"));
        // Free form: substring containment, so "12" contains "2".
        assert!(ok("2", AnswerType::FreeForm, "{\"short answer\": \"12\"}"));
        assert!(ok("Yes", AnswerType::FreeForm, "{\"short answer\": \"Yes, it is.\"}"));
        assert!(!ok("Yes", AnswerType::FreeForm, "{\"short answer\": \"yes\"}"));
        let s = score(&item("B", AnswerType::MultipleChoice), 0, "so \\boxed{(B) green}").unwrap();
        assert_eq!(
            (s.extraction.as_deref(), s.prediction.as_deref(), s.correct),
            (Some("(B) green"), Some("(B)"), true)
        );
    }
}
