//! Each paper's evaluation protocol as a named preset: system prompt, where the answer-format instruction
//! goes, sampling (temperature, top-p, top-k, new-token cap), image pixel bounds, the re-query rule and the
//! samples per item (average@k). Every value cites its papers_spec line; the unit tests check them.
//!
//! - [`Preset::VisionR1`] (papers_spec §1.7, `[repo VR1:evaluation/README.md, run_all.py, api/gpt.py]`):
//!   no system prompt (so the chat template's default one), T = 0.6, top_p = 0.95, max_tokens 16000,
//!   full-resolution images (VLMEvalKit `img_size=-1`), and re-query with the same parameters while the
//!   response lacks `</answer>`, at most 4 extra tries, keeping the last (pitfall 3).
//! - [`Preset::ReVisualR1`] (§2.4, §2.10 "README inference"): the eval/inference system prompt (no "step by
//!   step"), `\boxed{}` answers, T = 1.0, top_p 0.95, top_k 50, 16,384 new tokens, min_pixels 256·28·28,
//!   max_pixels 1280·28·28; AIME24/25 as average@32 (v2: "average@32"; the Table-2 caption says eight runs,
//!   v1 "pass@32": internally inconsistent, §2.10; 32 is the later text).
//! - [`Preset::ReVisualR1Repo`] (§2.10 "Repo eval", `eval/src/main.py`): the same system prompt, T = 0.3,
//!   top_p 0.95, max_tokens 8192, images resized into [262144, 1048576] pixels, text before the image,
//!   and the repo's MathVision prompt (`Please first conduct reasoning, ...`, with a `Choices:` block even for
//!   free-form items). Its scoring rules (anagram equality, letters-only fallback) are bugs the spec warns
//!   about and are not reproduced: [`super::score`] scores every preset the same way.
//!
//! [`Preset::query`] runs the re-query rule around any generator; [`Preset::sampling_params`] gives the
//! preset's sampling as [`crate::model::sampling::SamplingParams`] for r1lab's own generator.
//!
//! Deviation, documented rather than guessed: the papers give no top-k for Vision-R1 or the repo eval
//! (`None` = disabled, the vLLM / OpenAI default), and the image order of Vision-R1's VLMEvalKit requests is
//! UNVERIFIED (image first here, as in VLMEvalKit's message lists).
use super::{BenchItem, Benchmark, letter};
use crate::model::sampling::SamplingParams;

/// ReVisual-R1's eval / inference system prompt (papers_spec §2.4, `[repo Revisual:eval/src/main.py]`).
pub const REVISUAL_SYSTEM_PROMPT: &str = "You FIRST think about the reasoning process as an internal monologue and then provide the final answer. The reasoning process MUST BE enclosed within <think> </think> tags. The final answer MUST BE put in \\boxed{}.";

/// The instruction line of ReVisual-R1's repo MathVision prompt (papers_spec §2.10).
pub const REVISUAL_REPO_MATHVISION_INSTRUCTION: &str = "Please first conduct reasoning, and then answer the question and provide the correct option letter, e.g., A, B, C, D, at the end.";

/// A named evaluation protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Preset {
    VisionR1,
    ReVisualR1,
    ReVisualR1Repo,
}

/// Where the answer-format instruction goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FormatPlacement {
    /// No instruction: the model answers in the format it was trained on (Vision-R1's
    /// `<think>...</think><answer> Final Answer: X </answer>`).
    None,
    /// In the system prompt ([`Preset::system_prompt`]).
    System,
}

/// Sampling parameters of one request.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sampling {
    pub temperature: f64,
    pub top_p: f64,
    /// `None`: top-k disabled.
    pub top_k: Option<u32>,
    pub max_new_tokens: usize,
}

/// When to ask again for the same item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Requery {
    Never,
    /// Re-query with the same parameters while the response lacks `marker`, at most `max_extra` more
    /// times; the last response is kept.
    WhileMissing {
        marker: &'static str,
        max_extra: u32,
    },
}

impl Preset {
    pub const ALL: [Preset; 3] = [Preset::VisionR1, Preset::ReVisualR1, Preset::ReVisualR1Repo];

    /// Stable name (`--preset`).
    pub const fn name(self) -> &'static str {
        match self {
            Preset::VisionR1 => "vision_r1",
            Preset::ReVisualR1 => "revisual_r1",
            Preset::ReVisualR1Repo => "revisual_r1_repo",
        }
    }

    /// The system message; `None` leaves the chat template's default (`You are a helpful assistant.`).
    pub const fn system_prompt(self) -> Option<&'static str> {
        match self {
            Preset::VisionR1 => None,
            Preset::ReVisualR1 | Preset::ReVisualR1Repo => Some(REVISUAL_SYSTEM_PROMPT),
        }
    }

    pub const fn format_placement(self) -> FormatPlacement {
        match self {
            Preset::VisionR1 => FormatPlacement::None,
            Preset::ReVisualR1 | Preset::ReVisualR1Repo => FormatPlacement::System,
        }
    }

    pub const fn sampling(self) -> Sampling {
        match self {
            Preset::VisionR1 => Sampling { temperature: 0.6, top_p: 0.95, top_k: None, max_new_tokens: 16_000 },
            Preset::ReVisualR1 => Sampling { temperature: 1.0, top_p: 0.95, top_k: Some(50), max_new_tokens: 16_384 },
            Preset::ReVisualR1Repo => Sampling { temperature: 0.3, top_p: 0.95, top_k: None, max_new_tokens: 8_192 },
        }
    }

    /// The preset's sampling as r1lab's generator takes it (top-k `None` -> 0 = disabled), stopping at
    /// `eos_token_ids`.
    pub fn sampling_params(self, eos_token_ids: Vec<i64>) -> SamplingParams {
        let s = self.sampling();
        SamplingParams {
            temperature: s.temperature,
            top_p: s.top_p,
            top_k: s.top_k.map_or(0, i64::from),
            max_new_tokens: s.max_new_tokens,
            eos_token_ids,
            ..SamplingParams::default()
        }
    }

    /// Lower bound on an image's pixel count before patching (`None`: the processor's default).
    pub const fn min_pixels(self) -> Option<u64> {
        match self {
            Preset::VisionR1 => None,
            Preset::ReVisualR1 => Some(256 * 28 * 28),
            Preset::ReVisualR1Repo => Some(262_144),
        }
    }

    /// Upper bound on an image's pixel count (`None`: full resolution).
    pub const fn max_pixels(self) -> Option<u64> {
        match self {
            Preset::VisionR1 => None,
            Preset::ReVisualR1 => Some(1280 * 28 * 28),
            Preset::ReVisualR1Repo => Some(1_048_576),
        }
    }

    pub const fn requery(self) -> Requery {
        match self {
            Preset::VisionR1 => Requery::WhileMissing { marker: "</answer>", max_extra: 4 },
            Preset::ReVisualR1 | Preset::ReVisualR1Repo => Requery::Never,
        }
    }

    /// Whether a response, after `extra_so_far` re-queries, should be asked again.
    pub fn wants_requery(self, response: &str, extra_so_far: u32) -> bool {
        match self.requery() {
            Requery::Never => false,
            Requery::WhileMissing { marker, max_extra } => extra_so_far < max_extra && !response.contains(marker),
        }
    }

    /// Runs `generate` once, then again while [`Preset::wants_requery`] says so; returns the kept (last)
    /// response and the number of extra queries made.
    pub fn query<E>(self, mut generate: impl FnMut() -> Result<String, E>) -> Result<(String, u32), E> {
        let mut response = generate()?;
        let mut extra = 0;
        while self.wants_requery(&response, extra) {
            response = generate()?;
            extra += 1;
        }
        Ok((response, extra))
    }

    /// Independent samples per item (k of average@k; 1 = one sample, pass@1).
    pub const fn samples_per_item(self, benchmark: Benchmark) -> usize {
        match (self, benchmark) {
            (Preset::ReVisualR1, Benchmark::Aime24 | Benchmark::Aime25) => 32,
            _ => 1,
        }
    }

    /// The user turn's text comes before its images.
    pub const fn text_before_image(self) -> bool {
        matches!(self, Preset::ReVisualR1Repo)
    }

    /// The user turn's text for `item`.
    pub fn user_text(self, item: &BenchItem) -> String {
        match (self, item.benchmark) {
            (Preset::ReVisualR1Repo, Benchmark::MathVision) => {
                let raw = super::mathvision::raw_question(item);
                let mut s = format!("{REVISUAL_REPO_MATHVISION_INSTRUCTION}\nQuestion: {raw}\nChoices:\n");
                let lines: Vec<String> = item
                    .choices
                    .iter()
                    .enumerate()
                    .map(|(i, c)| format!("{}: {c}", letter(i).map(String::from).unwrap_or_default()))
                    .collect();
                s.push_str(&lines.join("\n"));
                s
            }
            _ => item.question.clone(),
        }
    }
}

impl std::fmt::Display for Preset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Preset {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> anyhow::Result<Self> {
        Preset::ALL
            .into_iter()
            .find(|p| p.name() == s)
            .ok_or_else(|| anyhow::anyhow!("unknown preset `{s}`: expected vision_r1, revisual_r1 or revisual_r1_repo"))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::eval::bench::AnswerType;

    /// papers_spec §1.7: "no system prompt (→ template default), temperature 0.6, top_p 0.95, max_tokens
    /// 16000"; "re-query ... until one contains `</answer>`, max 4 extra tries (keeps the last)".
    #[test]
    fn vision_r1_matches_spec_1_7() {
        let p = Preset::VisionR1;
        assert_eq!(p.system_prompt(), None);
        assert_eq!(p.format_placement(), FormatPlacement::None);
        assert_eq!(p.sampling(), Sampling { temperature: 0.6, top_p: 0.95, top_k: None, max_new_tokens: 16000 });
        assert_eq!((p.min_pixels(), p.max_pixels()), (None, None));
        assert_eq!(p.requery(), Requery::WhileMissing { marker: "</answer>", max_extra: 4 });
        assert!(p.wants_requery("<think>x</think>", 0));
        assert!(p.wants_requery("<think>x</think>", 3));
        assert!(!p.wants_requery("<think>x</think>", 4), "at most 4 extra tries");
        assert!(!p.wants_requery("<answer> Final Answer: 3 </answer>", 0));
        for b in Benchmark::ALL {
            assert_eq!(p.samples_per_item(b), 1);
        }
    }

    /// papers_spec §2.4 (eval/inference system prompt) and §2.10 ("README inference: T = 1.0, top_p 0.95,
    /// top_k 50, max 16384 new tokens, `min_pixels 256·28·28`, `max_pixels 1280·28·28`"; AIME average@32).
    #[test]
    fn revisual_r1_matches_spec_2_4_and_2_10() {
        let p = Preset::ReVisualR1;
        assert_eq!(
            p.system_prompt(),
            Some(
                "You FIRST think about the reasoning process as an internal monologue and then provide the final \
                 answer. The reasoning process MUST BE enclosed within <think> </think> tags. The final answer \
                 MUST BE put in \\boxed{}."
            )
        );
        assert_eq!(p.format_placement(), FormatPlacement::System);
        assert_eq!(p.sampling(), Sampling { temperature: 1.0, top_p: 0.95, top_k: Some(50), max_new_tokens: 16384 });
        assert_eq!((p.min_pixels(), p.max_pixels()), (Some(200_704), Some(1_003_520)));
        assert_eq!(p.requery(), Requery::Never);
        assert!(!p.wants_requery("no tags at all", 0));
        assert_eq!(p.samples_per_item(Benchmark::Aime24), 32);
        assert_eq!(p.samples_per_item(Benchmark::Aime25), 32);
        assert_eq!(p.samples_per_item(Benchmark::Math500), 1);
        assert_eq!(p.samples_per_item(Benchmark::MathVerseVisionOnly), 1);
        assert!(!p.text_before_image());
    }

    /// papers_spec §2.10 repo eval: "temperature 0.3, top_p 0.95, max_tokens 8192, image resized into
    /// [262144, 1048576] pixels, text before image in the user turn", and its MathVision prompt.
    #[test]
    fn revisual_r1_repo_matches_spec_2_10() {
        let p = Preset::ReVisualR1Repo;
        assert_eq!(p.system_prompt(), Some(REVISUAL_SYSTEM_PROMPT));
        assert_eq!(p.sampling(), Sampling { temperature: 0.3, top_p: 0.95, top_k: None, max_new_tokens: 8192 });
        assert_eq!((p.min_pixels(), p.max_pixels()), (Some(262_144), Some(1_048_576)));
        assert!(p.text_before_image());
        assert_eq!(p.samples_per_item(Benchmark::Aime24), 1);
        let item = BenchItem {
            benchmark: Benchmark::MathVision,
            id: "1".into(),
            question: "Which?\nChoices:\n(A) 1\n(B) 2".into(),
            images: vec![],
            choices: vec!["1".into(), "2".into()],
            answer: "B".into(),
            answer_type: AnswerType::MultipleChoice,
            categories: BTreeMap::new(),
            group: None,
            precision: None,
        };
        assert_eq!(
            p.user_text(&item),
            "Please first conduct reasoning, and then answer the question and provide the correct option letter, \
             e.g., A, B, C, D, at the end.\nQuestion: Which?\nChoices:\nA: 1\nB: 2"
        );
        let free = BenchItem { question: "How many?".into(), choices: vec![], ..item.clone() };
        assert!(p.user_text(&free).ends_with("Question: How many?\nChoices:\n"), "a Choices block even when free-form");
        assert_eq!(Preset::ReVisualR1.user_text(&item), item.question);
    }

    #[test]
    fn requery_keeps_the_last_response() {
        let answers = ["a", "b", "<answer> Final Answer: 1 </answer>", "never reached"];
        let mut calls = 0;
        let got = Preset::VisionR1.query(|| -> Result<String, ()> {
            calls += 1;
            Ok(answers[calls - 1].to_string())
        });
        assert_eq!(got, Ok((answers[2].to_string(), 2)));
        // Never closing: 1 + 4 queries, the fifth response kept.
        let mut n = 0;
        let got = Preset::VisionR1.query(|| -> Result<String, ()> {
            n += 1;
            Ok(format!("try {n}"))
        });
        assert_eq!(got, Ok(("try 5".to_string(), 4)));
        let mut n = 0;
        let got = Preset::ReVisualR1.query(|| -> Result<String, ()> {
            n += 1;
            Ok("no tags".to_string())
        });
        assert_eq!((got, n), (Ok(("no tags".to_string(), 0)), 1));
    }

    #[test]
    fn generator_parameters() {
        let p = Preset::VisionR1.sampling_params(vec![7]);
        assert_eq!((p.temperature, p.top_p, p.top_k, p.max_new_tokens), (0.6, 0.95, 0, 16000));
        assert_eq!((p.eos_token_ids.as_slice(), p.greedy), (&[7i64][..], false));
        assert_eq!(Preset::ReVisualR1.sampling_params(vec![]).top_k, 50);
    }

    #[test]
    fn names_round_trip() {
        for p in Preset::ALL {
            assert_eq!(p.name().parse::<Preset>().unwrap(), p);
        }
        assert!("r1".parse::<Preset>().is_err());
    }
}
