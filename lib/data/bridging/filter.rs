//! The filter of Vision-R1's modality bridging (papers_spec §1.2 steps 4–5; paper v4 §3.3.1): which
//! reasoner outputs become cold-start samples, and how their text is made to fit the image.
//!
//! In order (the paper's exact rules were not released; these are this crate's):
//! 1. **Wrong answer**: the reasoner's final answer must grade equal to the ground truth
//!    (`rl::grader::grade_answer`); an empty answer (it gave up) is wrong.
//! 2. **Empty**: the reasoning must have at least [`MIN_REASONING_WORDS`] words.
//! 3. **Inconsistent**: the reasoning's last sentence must state the answer ("... the final answer
//!    is X.") and X must grade equal to the final answer.
//! 4. **Word replacement** "for semantic coherence": the reasoner talked about a description the
//!    student never sees; "the description" becomes "the image" (multimodal) or "the problem" (text
//!    twin), "described" becomes "shown" / "given", longest phrases first; the count is kept.
//! 5. The CoT is formatted as `<think> {reasoning} </think><answer> Final Answer:{ans} </answer>` and
//!    must score 1 under `vision_r1_hard` against the ground truth (**reward check**; a sample that
//!    passed 1–3 always does, the check guards the format).
use std::sync::LazyLock;

use regex::Regex;
use serde::{Deserialize, Serialize};

use super::reasoner::RawOutput;
use crate::rl::grader::grade_answer;
use crate::rl::reward::vision_r1_hard;

/// Shortest reasoning kept, in whitespace-separated words.
pub const MIN_REASONING_WORDS: usize = 12;

/// What the kept sample is paired with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Target {
    /// The original image (Vision-R1-cold).
    Image,
    /// The problem's text twin, no image (ReVisual-R1's text cold start).
    Text,
}

/// Why a sample was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DropReason {
    WrongAnswer,
    Empty,
    Inconsistent,
    RewardCheck,
}

/// A kept sample.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Kept {
    /// The reasoning after word replacement.
    pub reasoning: String,
    /// The assistant turn in the target format.
    pub response: String,
    /// Words replaced.
    pub replacements: usize,
}

/// Runs the filter (see the module header) on one reasoner output.
pub fn filter(raw: &RawOutput, ground_truth: &str, target: Target) -> Result<Kept, DropReason> {
    if raw.answer.trim().is_empty() || !grade_answer(&raw.answer, ground_truth) {
        return Err(DropReason::WrongAnswer);
    }
    if raw.reasoning.split_whitespace().count() < MIN_REASONING_WORDS {
        return Err(DropReason::Empty);
    }
    match stated_answer(&raw.reasoning) {
        Some(s) if grade_answer(s, &raw.answer) => {}
        _ => return Err(DropReason::Inconsistent),
    }
    let (reasoning, replacements) = replace_words(&raw.reasoning, target);
    let response = format_response(&reasoning, &raw.answer);
    if vision_r1_hard(&response, ground_truth).overall != 1.0 {
        return Err(DropReason::RewardCheck);
    }
    Ok(Kept { reasoning, response, replacements })
}

static STATED: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)(?:final answer|the answer) is \(?([A-Za-z0-9-]+)\)?\.?\s*$").expect("valid regex")
});

/// The answer the reasoning's last sentence states, if it states one.
pub fn stated_answer(reasoning: &str) -> Option<&str> {
    STATED.captures(reasoning.trim()).and_then(|c| c.get(1)).map(|m| m.as_str())
}

const TO_IMAGE: [(&str, &str); 10] = [
    ("the description doesn't give", "the image doesn't show"),
    ("The description gives", "The image shows"),
    ("the description gives", "the image shows"),
    ("The description says", "The image shows"),
    ("the description says", "the image shows"),
    ("From the description", "From the image"),
    ("in the description", "in the image"),
    ("The description", "The image"),
    ("the description", "the image"),
    ("described", "shown"),
];
const TO_TEXT: [(&str, &str); 3] =
    [("The description", "The problem"), ("the description", "the problem"), ("described", "given")];

/// Rewrites the reasoner's words about the description (see the module header); returns the text
/// and the number of replacements.
pub fn replace_words(text: &str, target: Target) -> (String, usize) {
    let table: &[(&str, &str)] = match target {
        Target::Image => &TO_IMAGE,
        Target::Text => &TO_TEXT,
    };
    let mut out = text.to_string();
    let mut n = 0;
    for (from, to) in table {
        let k = out.matches(from).count();
        if k > 0 {
            n += k;
            out = out.replace(from, to);
        }
    }
    (out, n)
}

/// Vision-R1's cold-start target format.
pub fn format_response(reasoning: &str, answer: &str) -> String {
    format!("<think> {reasoning} </think><answer> Final Answer:{answer} </answer>")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(reasoning: &str, answer: &str) -> RawOutput {
        RawOutput { reasoning: reasoning.into(), answer: answer.into(), slipped: false, caught: false, guessed: false }
    }

    const GOOD: &str = "Okay, let's see. From the description, bar A is 7 and bar B is 5, as described. \
                        First, 7 + 5 = 12. So the final answer is 12.";

    #[test]
    fn keeps_and_rewrites_a_good_sample() {
        let k = filter(&raw(GOOD, "12"), "12", Target::Image).unwrap();
        assert_eq!(k.replacements, 2);
        assert!(k.reasoning.contains("From the image") && k.reasoning.contains("as shown"));
        assert!(!k.reasoning.contains("description"));
        assert!(k.response.starts_with("<think> Okay") && k.response.ends_with("<answer> Final Answer:12 </answer>"));
        assert_eq!(vision_r1_hard(&k.response, "12").overall, 1.0);
        let t = filter(&raw(GOOD, "12"), "12", Target::Text).unwrap();
        assert!(t.reasoning.contains("From the problem") && t.reasoning.contains("as given"));
    }

    #[test]
    fn drops_by_reason() {
        assert_eq!(filter(&raw(GOOD, "13"), "12", Target::Image), Err(DropReason::WrongAnswer));
        assert_eq!(filter(&raw("", ""), "12", Target::Image), Err(DropReason::WrongAnswer));
        assert_eq!(filter(&raw("The final answer is 12.", "12"), "12", Target::Image), Err(DropReason::Empty));
        let unfaithful = GOOD.replace("answer is 12", "answer is 11");
        assert_eq!(filter(&raw(&unfaithful, "12"), "12", Target::Image), Err(DropReason::Inconsistent));
        let no_conclusion = GOOD.replace(" So the final answer is 12.", " That settles it for now.");
        assert_eq!(filter(&raw(&no_conclusion, "12"), "12", Target::Image), Err(DropReason::Inconsistent));
        assert_eq!(stated_answer("... So the final answer is (B)."), Some("B"));
        assert_eq!(stated_answer("So the final answer is -3."), Some("-3"));
    }
}
