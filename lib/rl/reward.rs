//! Rule rewards: each a pure function of (response text, ground truth, response length in
//! tokens), placed by the trainer at the last response token (papers_spec §0.2 step 4). Answers
//! are graded by [`grade_answer`] (mathruler's, what EasyR1 calls).
//!
//! - [`Reward::VisionR1Hard`]: Vision-R1's hard formatting result reward (HFRRF, paper v1 §3.4):
//!   1 iff the response fully matches `<think>.*?</think>\s*<answer>.*?</answer>` (DOTALL) and
//!   the first `<answer>` content, stripped and without a leading `Final Answer:`, grades correct
//!   against the stripped ground truth. The code was never released; this is papers_spec §1.5's
//!   reconstruction (the `Final Answer:` strip is pitfall 6 of §3).
//! - [`Reward::R1vFormatAccuracy`]: EasyR1 `examples/reward_function/r1v.py`: `(1−w)·acc + w·format`
//!   with w = 0.5, the same format regex, and accuracy on the first single-line `<answer>` (the
//!   search has no DOTALL) or else the whole stripped response.
//! - [`Reward::BoxedAccuracy`]: accuracy of the last balanced `\boxed{}` (EasyR1 `math.py`'s
//!   accuracy term). Deviation: no box scores 0, where mathruler's `"None"` sentinel would match a
//!   ground truth "None".
//! - [`Reward::EfficientLength`]: ReVisual-R1's efficient-length reward (paper v1 §2.1, §4.1.2)
//!   `R_len = clip(α(L_budget − L) + δ, 0, 1)`, α = 0.005, δ = 0.5; how the paper combines it with
//!   accuracy is not stated, so it stands alone here.
//! - [`Reward::RevisualCode`]: ReVisual-R1's released `examples/reward_function/math.py`
//!   (`compute_score` at e0b7db1, papers_spec §2.7): spaces around `<`, `>`, `/` removed, then
//!   `0.8·acc + 0.05·(self-critique + image-revisit + repetition)` [`+ 0.05·R_len` with the
//!   efficient reward on]; accuracy keeps mathruler's `"None"` sentinel, the format score is only
//!   reported. The three heuristics are ported regex for regex (Python `re`, IGNORECASE). The
//!   three patterns with a back-reference run on a small backtracking matcher that follows
//!   Python's search order under a step budget ([`HEURISTIC_STEPS`] per pattern); past it the
//!   matches found so far count (Python has no bound).
use std::sync::LazyLock;

use regex::Regex;

use crate::eval::python;
use crate::rl::grader::{answer_tag, extract_boxed_content, grade_answer, last_boxed, strip_final_answer};

mod heuristics;

pub use heuristics::{image_revisit, repetition, self_critic};

/// Steps one back-reference pattern of the released heuristics may take on one response.
pub const HEURISTIC_STEPS: u64 = 2_000_000;

/// ReVisual-R1's efficient-length reward `clip(α(L_budget − L) + δ, 0, 1)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EfficientLength {
    /// L_budget in tokens (the released config uses `target_max_length` = 8192).
    pub budget: usize,
    pub alpha: f64,
    pub delta: f64,
}

impl EfficientLength {
    /// Paper values with the released budget.
    pub const PAPER: EfficientLength = EfficientLength { budget: 8192, alpha: 0.005, delta: 0.5 };

    pub fn score(&self, len: usize) -> f64 {
        (self.alpha * (self.budget as f64 - len as f64) + self.delta).clamp(0.0, 1.0)
    }
}

/// One rule reward.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Reward {
    VisionR1Hard,
    R1vFormatAccuracy { format_weight: f64 },
    BoxedAccuracy,
    EfficientLength(EfficientLength),
    RevisualCode { efficient_length: Option<EfficientLength> },
}

/// A reward with the parts the trainer logs (`None` where the reward has no such part).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct RewardScore {
    pub overall: f64,
    pub accuracy: Option<f64>,
    pub format: Option<f64>,
}

/// A rule reward: a pure function of (response text, ground truth, response length in tokens). The trainer
/// takes any implementation; [`Reward`] is the papers' set.
pub trait RewardFn {
    fn score(&self, response: &str, ground_truth: &str, response_len: usize) -> RewardScore;
}

impl RewardFn for Reward {
    fn score(&self, response: &str, ground_truth: &str, response_len: usize) -> RewardScore {
        Reward::score(self, response, ground_truth, response_len)
    }
}

impl Reward {
    /// R1-V's equal weighting.
    pub const R1V: Reward = Reward::R1vFormatAccuracy { format_weight: 0.5 };

    pub fn score(&self, response: &str, ground_truth: &str, response_len: usize) -> RewardScore {
        match *self {
            Reward::VisionR1Hard => vision_r1_hard(response, ground_truth),
            Reward::R1vFormatAccuracy { format_weight } => r1v(response, ground_truth, format_weight),
            Reward::BoxedAccuracy => boxed_accuracy(response, ground_truth),
            Reward::EfficientLength(e) => RewardScore { overall: e.score(response_len), ..Default::default() },
            Reward::RevisualCode { efficient_length } => {
                revisual_code(response, ground_truth, response_len, efficient_length)
            }
        }
    }
}

fn indicator(b: bool) -> f64 {
    if b { 1.0 } else { 0.0 }
}

static THINK_ANSWER: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?s)\A<think>.*?</think>\s*<answer>.*?</answer>\z").expect("valid regex"));
static ANSWER_ONE_LINE: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"<answer>(.*?)</answer>").expect("valid regex"));

/// Vision-R1 HFRRF: format and correctness, or nothing.
pub fn vision_r1_hard(response: &str, ground_truth: &str) -> RewardScore {
    let format = THINK_ANSWER.is_match(response);
    let correct =
        answer_tag(response).is_some_and(|a| grade_answer(strip_final_answer(a), python::strip(ground_truth)));
    RewardScore {
        overall: indicator(format && correct),
        accuracy: Some(indicator(correct)),
        format: Some(indicator(format)),
    }
}

/// EasyR1 `r1v.py` `compute_score`.
pub fn r1v(response: &str, ground_truth: &str, format_weight: f64) -> RewardScore {
    let format = indicator(THINK_ANSWER.is_match(response));
    let given = match ANSWER_ONE_LINE.captures(response).and_then(|c| c.get(1)) {
        Some(m) => python::strip(m.as_str()),
        None => python::strip(response),
    };
    let accuracy = indicator(grade_answer(given, python::strip(ground_truth)));
    RewardScore {
        overall: (1.0 - format_weight) * accuracy + format_weight * format,
        accuracy: Some(accuracy),
        format: Some(format),
    }
}

/// Accuracy of the last balanced `\boxed{}`.
pub fn boxed_accuracy(response: &str, ground_truth: &str) -> RewardScore {
    let accuracy = indicator(last_boxed(response).is_some_and(|a| grade_answer(a, ground_truth)));
    RewardScore { overall: accuracy, accuracy: Some(accuracy), format: None }
}

static TAG_SPACES: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"\s*(<|>|/)\s*").expect("valid regex"));
static REVISUAL_FORMATS: LazyLock<Vec<Regex>> = LazyLock::new(|| {
    [
        r"<think>.*</think>.*\\boxed\{.*\}.*",
        r"<think>.*</think>\s*<answer>.*</answer>",
        r"<think>.*</think>\s*(?:answer|solution)\s*[:=]\s*.*",
        r"<think>.*</think>.*(?:Therefore|Thus|So|Hence),?\s+.*=.*",
    ]
    .iter()
    .map(|p| Regex::new(&format!(r"(?s)\A(?:{p})\z")).expect("valid regex"))
    .collect()
});

/// ReVisual-R1's released `compute_score` for one response.
pub fn revisual_code(
    response: &str,
    ground_truth: &str,
    response_len: usize,
    efficient_length: Option<EfficientLength>,
) -> RewardScore {
    const W: f64 = 0.05;
    let predict = TAG_SPACES.replace_all(response, "$1");
    let format = indicator(REVISUAL_FORMATS.iter().any(|re| re.is_match(&predict)));
    let accuracy = indicator(grade_answer(&extract_boxed_content(&predict), ground_truth));
    let heuristics = self_critic(&predict) + image_revisit(&predict) + repetition(&predict);
    let mut overall = (1.0 - 4.0 * W) * accuracy + W * heuristics;
    if let Some(e) = efficient_length {
        overall += W * e.score(response_len);
    }
    RewardScore { overall, accuracy: Some(accuracy), format: Some(format) }
}

#[cfg(test)]
mod tests {
    use super::*;

    const REFLECTIVE: &str = "<think>The image shows a triangle. Wait, the figure is a square. Actually, I see that it \
        has four sides. Let me check the diagram again. That is wrong. The correct answer is 4. But the image shows \
        more. But the image shows a square.</think> The answer is \\boxed{4}";
    const CIRCULAR: &str = "<think>I think x = 2. But wait, maybe x = 3. So maybe x = 2. But wait, x = 2. Hmm, I'm \
        not sure. Wait, but it is. Wait, but why.</think>\\boxed{2}";

    #[test]
    fn vision_r1_hard_needs_format_and_answer() {
        let ok = "<think>2+3</think>\n<answer> Final Answer: 5 </answer>";
        assert_eq!(Reward::VisionR1Hard.score(ok, " 5 ", 10).overall, 1.0);
        let wrong = "<think>2+3</think><answer>6</answer>";
        assert_eq!(Reward::VisionR1Hard.score(wrong, "5", 10).overall, 0.0);
        let unformatted = "<answer>5</answer>";
        let s = Reward::VisionR1Hard.score(unformatted, "5", 10);
        assert_eq!((s.overall, s.accuracy, s.format), (0.0, Some(1.0), Some(0.0)));
        let truncated = "<think>2+3</think><answer>5";
        assert_eq!(Reward::VisionR1Hard.score(truncated, "5", 10).overall, 0.0);
        let trailing = "<think>a</think><answer>5</answer> extra";
        assert_eq!(Reward::VisionR1Hard.score(trailing, "5", 10).overall, 0.0);
    }

    #[test]
    fn r1v_weights_format_and_accuracy_equally() {
        assert_eq!(Reward::R1V.score("<think>a</think> <answer>1/2</answer>", "0.5", 1).overall, 1.0);
        assert_eq!(Reward::R1V.score("<think>a</think><answer>3</answer>", "0.5", 1).overall, 0.5);
        // No <answer>: the whole response is graded.
        assert_eq!(Reward::R1V.score(" 0.5 ", "0.5", 1).overall, 0.5);
        // A multi-line answer is not found by the search (no DOTALL): the whole response is graded.
        assert_eq!(Reward::R1V.score("<think>a</think><answer>\n5</answer>", "5", 1).overall, 0.5);
    }

    #[test]
    fn boxed_accuracy_uses_the_last_balanced_box() {
        assert_eq!(Reward::BoxedAccuracy.score("\\boxed{1} so \\boxed{\\frac{1}{2}}", "0.5", 1).overall, 1.0);
        assert_eq!(Reward::BoxedAccuracy.score("no box", "None", 1).overall, 0.0);
    }

    #[test]
    fn efficient_length_matches_the_spec_vectors() {
        let r = Reward::EfficientLength(EfficientLength::PAPER);
        for (len, want) in [(8092, 1.0), (8192, 0.5), (8292, 0.0), (0, 1.0), (100_000, 0.0), (8142, 0.75)] {
            assert!((r.score("", "", len).overall - want).abs() < 1e-12, "{len}");
        }
    }

    /// Expected values from the released `examples/reward_function/math.py` (Revisual-R1 802f5c2).
    #[test]
    fn revisual_heuristics_match_the_released_code() {
        let cases: [(&str, [f64; 3]); 7] = [
            (REFLECTIVE, [0.82, 1.0, 0.9]),
            (CIRCULAR, [0.465, 0.0, 0.75]),
            ("short", [0.0, 0.0, 1.0]),
            (
                "maybe it is five. But wait, the value is large so maybe it is five. The same sentence. The same \
                 sentence. The same sentence.",
                [0.145, 0.0, 0.5],
            ),
            ("x is one But wait it is x is one. a b c d e a b c d e a b c d e", [0.1, 0.0, 0.6]),
            (
                "I made an error in step 2. Upon checking, I see the result. The error was that I forgot the sign. \
                 This contradicts the claim. Let me reconsider. The correct value is 7. Hold on, is that right? \
                 Maybe. Perhaps. However, the answer is 7. Double-check: verify 7. Alternatively 7.",
                [1.0, 0.0, 1.0],
            ),
            (
                "Looking at the image again. Now I can see that the angle is 30. In the image there are two lines. \
                 From the image it is clear.\n\nThe diagram! No, the figure shows 3? It is displayed.",
                [0.0, 1.0, 1.0],
            ),
        ];
        for (text, [sc, iv, rep]) in cases {
            let got = [self_critic(text), image_revisit(text), repetition(text)];
            for (g, w) in got.iter().zip([sc, iv, rep]) {
                assert!((g - w).abs() < 1e-9, "{text:?}: got {got:?}, want {:?}", [sc, iv, rep]);
            }
        }
    }

    #[test]
    fn revisual_code_reward_combines_as_released() {
        let on = Reward::RevisualCode { efficient_length: Some(EfficientLength::PAPER) };
        let off = Reward::RevisualCode { efficient_length: None };
        assert!((on.score(REFLECTIVE, "4", 100).overall - 0.986).abs() < 1e-9);
        assert!((on.score(CIRCULAR, "3", 8250).overall - 0.07125).abs() < 1e-9);
        let s = off.score(REFLECTIVE, "4", 100);
        assert!((s.overall - 0.936).abs() < 1e-9);
        assert_eq!((s.accuracy, s.format), (Some(1.0), Some(1.0)));
    }

    #[test]
    fn rewards_are_bounded_on_random_text() {
        use rand::{Rng, SeedableRng};
        const PIECES: [&str; 16] = [
            "<think>",
            "</think>",
            "<answer>",
            "</answer>",
            "\\boxed{",
            "}",
            "Final Answer:",
            " But wait, ",
            "maybe ",
            "the image shows ",
            ". ",
            "\n",
            "5",
            "1/2",
            "So maybe ",
            "x",
        ];
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        let rewards = [
            Reward::VisionR1Hard,
            Reward::R1V,
            Reward::BoxedAccuracy,
            Reward::EfficientLength(EfficientLength::PAPER),
            Reward::RevisualCode { efficient_length: Some(EfficientLength::PAPER) },
        ];
        for _ in 0..300 {
            let n = rng.random_range(0..40);
            let text: String = (0..n).map(|_| PIECES[rng.random_range(0..PIECES.len())]).collect();
            let len = rng.random_range(0..10_000);
            for r in rewards {
                let s = r.score(&text, "5", len);
                assert!((0.0..=1.0).contains(&s.overall), "{r:?} on {text:?}: {s:?}");
            }
        }
    }
}
