//! LogicVista, following the official scorer's rules around its LLM extraction (GitHub
//! Yijia-Xiao/LogicVista, commit 0b8cca25, `eval/extract_accuracy_new.py`; `eval/extract_accuracy.py` is the
//! same loop), read and re-derived.
//!
//! The official extraction is an LLM judge with no rule-based path: every non-empty response goes to GPT-4
//! (temperature 0.2, through langchain's `PydanticOutputParser` with an output-fixing retry), which returns
//! the list of chosen letters, or `ZZZZZ` when none is chosen. Only these rules surround it, and are
//! ported:
//! - the response is the text after `ASSISTANT:` when it holds one (`split("ASSISTANT:")[1]`: up to a
//!   second `ASSISTANT:`), stripped;
//! - a one-character response that is a letter other than a-e (any case), or neither a letter nor a digit,
//!   is `ZZZZZ` without a request; an empty response is the list `[""]`;
//! - comparison: the ground truth split at `", "`, both lists lower-cased and sorted, then list equality
//!   (so a response naming one letter of a two-letter answer is wrong).
//!
//! Deviations: in place of GPT-4, r1lab's rules find the answer (the answer span of
//! [`crate::eval::bench::score::answer_span`], else [`crate::eval::extract::extract_by_rules`], else a
//! response that is nothing but letters) and [`crate::eval::bench::score::choice_prediction`] reads its
//! letters as a set (`A, C`, `AC`, `(B)`, `B: text`; one letter in either case, or one digit); none found
//! stands for GPT's `ZZZZZ`; with `--judge-url`, [`crate::eval::bench::judged`] asks a judge instead, as the
//! official pipeline does. The loader keeps a reference of letters as its sorted letters without separators
//! ([`crate::eval::bench::logicvista::letter_set`]), so such a truth list is one letter per element (a
//! published `A,C`, which the official split leaves whole and no GPT list can equal, is scored as its
//! letters here); any other reference is split at `", "` as in the script (the published `dataset.json`
//! has `3` for v1_20 and an empty answer for v1_382, the only two of its 448 answers that are not option
//! letters; the loader keeps both as published, [`crate::eval::bench::logicvista`]).
use crate::eval::bench::BenchItem;
use crate::eval::bench::logicvista::letter_set;
use crate::eval::bench::score::{ItemScore, answer_span, choice_prediction};
use crate::eval::extract::extract_by_rules;
use crate::eval::python;

/// Scores `response` (every item has a rule).
pub fn score(item: &BenchItem, sample: usize, response: &str) -> Option<ItemScore> {
    let entry = match response.split("ASSISTANT:").nth(1) {
        Some(after) => after,
        None => response,
    };
    let entry = python::strip(entry);
    let (extraction, mut answers): (Option<String>, Vec<String>) = if entry.is_empty() {
        (None, vec![String::new()])
    } else if rejected_at_once(entry) {
        (Some(entry.to_string()), vec!["zzzzz".into()])
    } else {
        let e = answer_span(entry).or_else(|| extract_by_rules(entry, &item.choices)).or_else(|| {
            // A response that is nothing but letters (`D`, `A, C`).
            (entry.chars().count() == 1 || letter_set(entry).is_some()).then(|| entry.to_string())
        });
        let letters = e.as_deref().and_then(|e| match python::strip(e) {
            // One letter (either case) or digit: the official comparison lower-cases both sides.
            t if t.len() == 1 && t.as_bytes()[0].is_ascii_alphanumeric() => Some(t.to_ascii_uppercase()),
            t => choice_prediction(t, &item.choices),
        });
        let list = match letters {
            Some(l) => l.chars().map(|c| c.to_lowercase().to_string()).collect(),
            None => vec!["zzzzz".into()],
        };
        (e, list)
    };
    // The loader's `AC` is one letter per element; any other reference is split as the script does.
    let mut truth: Vec<String> = if !item.answer.is_empty() && item.answer.bytes().all(|b| b.is_ascii_uppercase()) {
        item.answer.chars().map(|c| c.to_ascii_lowercase().to_string()).collect()
    } else {
        item.answer.split(", ").map(str::to_lowercase).collect()
    };
    answers.sort();
    truth.sort();
    let correct = answers == truth;
    Some(ItemScore::new(item, sample, response, extraction, Some(answers.join(", ")), correct))
}

/// The official short cut to `ZZZZZ`: one character that is a letter outside a-e, or neither a letter nor
/// a number (Python's `isalpha` / `isnumeric`).
fn rejected_at_once(entry: &str) -> bool {
    let mut chars = entry.chars();
    match (chars.next(), chars.next()) {
        (Some(c), None) if c.is_alphabetic() => !c.to_lowercase().all(|l| "abcde".contains(l)),
        (Some(c), None) => !c.is_numeric(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::bench::{AnswerType, Benchmark};

    fn item(answer: &str) -> BenchItem {
        let question = "Which?\nA. x\nB. y\nC. z\nD. w";
        BenchItem {
            answer_type: AnswerType::MultipleChoice,
            ..BenchItem::fixture(Benchmark::LogicVista, question, &[], answer)
        }
    }

    fn ok(answer: &str, response: &str) -> bool {
        score(&item(answer), 0, response).unwrap().correct
    }

    #[test]
    fn letter_lists_compare_sorted_and_whole() {
        assert!(ok("C", "\\boxed{C}"));
        // Order does not matter, every letter does.
        assert!(ok("AC", "<answer> Final Answer: C, A </answer>"));
        assert!(!ok("AC", "The answer is A."));
        assert!(!ok("C", "\\boxed{A, C}"));
        // Case does not matter (both sides are lower-cased).
        assert!(ok("B", "\\boxed{b}"));
        let s = score(&item("AC"), 0, "\\boxed{C, A}").unwrap();
        assert_eq!(s.prediction.as_deref(), Some("a, c"));
    }

    #[test]
    fn official_short_cuts() {
        // One letter outside a-e, or one symbol: ZZZZZ, wrong without extraction.
        let s = score(&item("F"), 0, "F").unwrap();
        assert_eq!((s.prediction.as_deref(), s.correct), (Some("zzzzz"), false));
        assert!(!ok("A", "?"));
        // One letter in a-e goes on to the extraction.
        assert!(ok("D", "D"));
        // The text after `ASSISTANT:` is the response.
        assert!(ok("B", "USER: which? ASSISTANT: B"));
        // Empty: the list [""], never equal to a truth.
        assert_eq!(score(&item("A"), 0, "  ").unwrap().prediction.as_deref(), Some(""));
        // No letter found stands for GPT's ZZZZZ.
        assert!(!ok("A", "I am not sure."));
        // A numeric reference (published dataset.json v1_20: "3") is one element; an empty one (v1_382)
        // matches only an empty response, as in the script.
        assert!(ok("3", "\\boxed{3}"));
        assert!(ok("", ""));
        assert!(!ok("", "\\boxed{A}"));
    }
}
