//! The two papers' answer formats and ReVisual-R1's format prompt (papers_spec §1.2, §2.4).
//!
//! - Vision-R1: no instruction in the user turn (the format is learned from the cold-start targets), responses
//!   `<think> R </think><answer> Final Answer:X </answer>`, scored by the hard formatting result reward.
//! - ReVisual-R1: the training code appends [`REVISUAL_FORMAT_PROMPT`] to the user text
//!   (`examples/format_prompt/math_format.jinja`: `{{ content | trim }} <prompt>`), responses `<think> R </think>` then
//!   the answer in `\boxed{}`, scored on the last `\boxed{}` (the released `math.py`).
//!
//! Deliberate deviation: the released model closes with a `<summary> ... Answer: \boxed{E} </summary>` block; the
//! embedded twin's targets end with `The final answer is \boxed{X}.` after `</think>`, which the same reward scores.
use serde::{Deserialize, Serialize};

/// ReVisual-R1's training-time format prompt (appended to the user text).
pub const REVISUAL_FORMAT_PROMPT: &str = "You FIRST think about the reasoning process step by step as an internal \
monologue and then provide the final answer. The reasoning process MUST BE enclosed within <think> </think> tags. The \
final answer MUST BE put in \\boxed{}.";

/// How a response states its reasoning and answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AnswerFormat {
    /// `<think> R </think><answer> Final Answer:X </answer>`.
    VisionR1,
    /// `<think> R </think> The final answer is \boxed{X}.`
    Boxed,
}

impl AnswerFormat {
    pub fn render(self, reasoning: &str, answer: &str) -> String {
        match self {
            AnswerFormat::VisionR1 => format!("<think> {reasoning} </think><answer> Final Answer:{answer} </answer>"),
            AnswerFormat::Boxed => format!("<think> {reasoning} </think> The final answer is \\boxed{{{answer}}}."),
        }
    }

    /// Rewrites a Vision-R1-format response into this format (`None` if it is not in Vision-R1's format).
    pub fn convert(self, vision_r1: &str) -> Option<String> {
        let rest = vision_r1.strip_prefix("<think> ")?;
        let (reasoning, tail) = rest.split_once(" </think><answer> Final Answer:")?;
        let answer = tail.strip_suffix(" </answer>")?;
        Some(self.render(reasoning, answer))
    }
}

/// The user text with the format prompt appended, as EasyR1's format-prompt template does.
pub fn with_format_prompt(question: &str, format_prompt: Option<&str>) -> String {
    match format_prompt {
        Some(p) => format!("{} {p}", question.trim()),
        None => question.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rl::reward::Reward;

    #[test]
    fn formats_convert_and_score() {
        let v = AnswerFormat::VisionR1.render("2 + 3 = 5.", "5");
        assert_eq!(v, "<think> 2 + 3 = 5. </think><answer> Final Answer:5 </answer>");
        assert_eq!(Reward::VisionR1Hard.score(&v, "5", 10).overall, 1.0);
        let b = AnswerFormat::Boxed.convert(&v).unwrap();
        assert_eq!(b, "<think> 2 + 3 = 5. </think> The final answer is \\boxed{5}.");
        assert_eq!(Reward::BoxedAccuracy.score(&b, "5", 10).overall, 1.0);
        assert!(Reward::RevisualCode { efficient_length: None }.score(&b, "5", 10).overall >= 0.8);
        assert_eq!(AnswerFormat::Boxed.convert("no tags"), None);
        assert_eq!(with_format_prompt(" What is 2+3? ", Some("Box it.")), "What is 2+3? Box it.");
        assert_eq!(with_format_prompt(" q ", None), " q ");
    }
}
