//! Shared by the GRPO integration tests: the tiny random-init Qwen2.5-VL fixture and a small verifiable task.
//!
//! The task: the prompt `[3, 100 + d, 4]` asks for the digit `d` (0–7, drawn from the seed); a response's text
//! is its first token id mod 10 (so a random policy is right ~1 time in 10), graded by the answer grader.
#![allow(dead_code)]
use std::path::{Path, PathBuf};

use r1lab::repro::seed::{self, SeedDomain};
use r1lab::rl::reward::{RewardFn, RewardScore};
use r1lab::rl::rollout::RlPrompt;
use rand::Rng;

/// `tests/fixtures/qwen2_5_vl_model/model` (vocab 512; 500/501 are the image/video placeholders).
pub fn model_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/qwen2_5_vl_model/model")
}

/// 1 when the response grades equal to the ground truth.
pub struct Exact;

impl RewardFn for Exact {
    fn score(&self, response: &str, ground_truth: &str, _len: usize) -> RewardScore {
        let ok = f64::from(u8::from(r1lab::rl::grader::grade_answer(response, ground_truth)));
        RewardScore { overall: ok, accuracy: Some(ok), format: None }
    }
}

/// The digit task's "tokenizer": the first token id mod 10.
pub fn decode(ids: &[i64]) -> anyhow::Result<String> {
    Ok(ids.first().map(|t| (t % 10).to_string()).unwrap_or_default())
}

/// `n` digit prompts drawn from `(seed, step)`, uids `first_uid..`.
pub fn digit_prompts(base_seed: u64, step: u64, n: usize, first_uid: u64) -> Vec<RlPrompt> {
    let mut rng = seed::rng(base_seed, SeedDomain::DataOrder, step, 0, 0);
    (0..n)
        .map(|i| {
            let d: i64 = rng.random_range(0..8);
            RlPrompt::from_ids(first_uid + i as u64, vec![3, 100 + d, 4], &d.to_string())
        })
        .collect()
}
