//! Shared by the GRPO integration tests: the tiny random-init Qwen2.5-VL fixture and a small verifiable task.
//!
//! The task: the prompt `[3, 100 + d, 4]` asks for the digit `d` (0–7, drawn from the seed); a response's text
//! is its first token id mod 10 (so a random policy is right ~1 time in 10), graded by the answer grader.
#![allow(dead_code)]
use std::path::{Path, PathBuf};

use r1lab::hub::HubOptions;
use r1lab::pipeline::RunOptions;
use r1lab::repro::manifest::TrainSettings;
use r1lab::repro::seed::{self, SeedDomain};
use r1lab::rl::reward::{RewardFn, RewardScore};
use r1lab::rl::rollout::RlPrompt;
use r1lab::rl::run::GrpoRunConfig;
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

/// A two-stage PTST `[train]` table on the digit task.
pub const TRAIN: &str = r#"
algo = "grpo"
schedule = [
  { max_new_tokens = 2, group_size = 4, steps = 3 },
  { max_new_tokens = 3, group_size = 2, steps = 3 },
]
carry_over = { optimizer = "reset", reference = "stage_init" }
rollout_batch_prompts = 4
update_batch_prompts = 2
micro_batch = 4
ppo_epochs = 1
freeze_vision = true
sampling = { temperature = 1.0, top_p = 1.0, max_prompt_tokens = 16 }
reward = { kind = "vision_r1_hard" }
advantage = { estimator = { kind = "grpo", eps = 1e-6 }, singleton = "zero_mean_unit_std", zero_variance = "torch_numerics" }
surrogate = { kind = "ppo_clip", eps_low = 0.2, eps_high = 0.28 }
log_ratio_clamp = { kind = "none" }
aggregation = { kind = "micro_batch_token_mean" }
kl = { estimator = "k3", coef = 1e-2 }
entropy = { estimator = "from_logits", schedule = { kind = "constant", coef = 1e-3 } }

[optimizer]
lr = 3e-3
betas = [0.9, 0.999]
eps = 1e-8
weight_decay = 1e-2
grad_clip = 1.0
schedule = "constant"
warmup_ratio = 0.0
"#;

/// The two-stage PTST run of the GRPO runner tests (`[train]` of a manifest).
pub fn ptst_config() -> GrpoRunConfig {
    let TrainSettings::Grpo(s) = toml::from_str::<TrainSettings>(TRAIN).unwrap() else { panic!("not GRPO") };
    GrpoRunConfig::from_settings(&s, 99, vec![2], vec![500, 501], 16).unwrap()
}

/// Modality-bridged cold-start CoT (`r1lab data bridge`) of `n` level-1 problems per family, 112-px images, into `out`.
pub fn bridged_data(out: &Path, n: usize) {
    let args = r1lab::data::bridging::cli::BridgeArgs {
        synth: r1lab::data::cli::SynthArgs {
            family: "all".into(),
            n,
            split: r1lab::data::synthetic::Split::Train,
            out: out.to_path_buf(),
            seed: 0,
            level: 1,
            size: 112,
        },
        bridge_seed: 0,
        p_slip: 0.3,
        p_catch: 0.6,
        p_positions: 1.0,
        caption_ablation: false,
        text: false,
    };
    r1lab::data::bridging::cli::run(&args).unwrap();
}

/// `r1lab run`'s options for a test: a fresh run (no resume) on the default device, no progress bars.
pub fn test_run_options(repo_root: &Path, runs_root: &Path, hub: &HubOptions) -> RunOptions {
    RunOptions {
        repo_root: repo_root.to_path_buf(),
        runs_root: runs_root.to_path_buf(),
        device: Default::default(),
        resume: false,
        progress: false,
        hub: hub.clone(),
    }
}

/// A temp folder with the tiny model in an offline Hub cache (`refs/main` → `revision`); runs go to `<root>/runs`.
/// The lock, replay and grid tests add their data under `<root>/data`.
pub struct Workspace {
    pub root: tempfile::TempDir,
    pub hub: HubOptions,
    pub revision: String,
}

impl Workspace {
    pub fn new() -> Self {
        let root = tempfile::tempdir().unwrap();
        let hub = HubOptions { offline: true, ..HubOptions::new(root.path().join("hub")) };
        let repo = r1lab::model::tiny::install(&r1lab::model::tiny::TinySpec::small(), &hub.cache_dir).unwrap();
        Workspace { root, hub, revision: repo.revision }
    }

    pub fn roots(&self) -> r1lab::pipeline::resolve::Roots {
        r1lab::pipeline::resolve::Roots { repo: self.root.path().to_path_buf(), runs: self.root.path().join("runs") }
    }

    pub fn run_options(&self) -> RunOptions {
        test_run_options(self.root.path(), &self.root.path().join("runs"), &self.hub)
    }

    /// Locks the manifest at `path` (its inputs resolved in this workspace); returns the locked copy.
    pub fn lock(&self, path: &Path) -> PathBuf {
        let hub = r1lab::hub::Hub::new(self.hub.clone());
        let (locked, report) = r1lab::repro::lock::lock_file(path, &self.roots(), &hub).unwrap();
        assert!(report.is_locked(), "{:?}", report.unresolved);
        locked
    }
}
