//! Runs the modality-bridging pipeline over synthetic problems (papers_spec §1.2): describe
//! (`describer.rs`) → reason on text only (`reasoner.rs`) → filter and rewrite (`filter.rs`) → pair
//! the kept CoT with the original image as an `SftRecord` whose user turn is `<image>` + question
//! (+ choices) with no instruction about think tags. [`bridge_text`] is the text-only variant for
//! ReVisual-R1's text cold start: the reasoner reads the problem's text twin and the kept CoT is
//! paired with the twin, no image.
//!
//! **Random streams.** `repro::seed` has no tag for data synthesis and this module may not add one,
//! so every draw comes from `seed::rng(seed, SeedDomain::Augment, BRIDGE_STEP + stage, uid, 0)`
//! with `stage` 1 = describer, 2 = reasoner on a description, 3 = reasoner on a text twin, and
//! `uid` the first 8 bytes (little-endian) of SHA-256(problem id). `BRIDGE_STEP` = 2^41 is far above
//! any augmentation step. The Caption ablation uses the same streams as the conditioned run, so the
//! two differ only in what the description says.
use anyhow::{Context, Result};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::describer::{DescribeMode, describe};
use super::filter::{DropReason, Kept, Target, filter};
use super::reasoner::{Knobs, RawOutput, ReasonerInput, reason};
use super::stats::BridgeStats;
use crate::data::sharegpt::SftRecord;
use crate::data::synthetic::{Family, Problem};
use crate::repro::seed::{self, SeedDomain};

/// Step offset of the bridging streams inside `SeedDomain::Augment` (see the module header).
pub const BRIDGE_STEP: u64 = 1 << 41;

/// Which stage a random stream is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    Describe,
    Reason,
    ReasonText,
}

impl Stage {
    const fn offset(self) -> u64 {
        match self {
            Stage::Describe => 1,
            Stage::Reason => 2,
            Stage::ReasonText => 3,
        }
    }
}

/// The stream of `stage` for problem `p` (see the module header).
pub fn stream(seed: u64, stage: Stage, p: &Problem) -> ChaCha8Rng {
    let d = Sha256::digest(p.id.as_bytes());
    let uid = u64::from_le_bytes(d[..8].try_into().expect("8 bytes"));
    seed::rng(seed, SeedDomain::Augment, BRIDGE_STEP + stage.offset(), uid, 0)
}

/// Settings of a run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct BridgeConfig {
    pub seed: u64,
    pub knobs: Knobs,
}

/// One problem through the pipeline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sample {
    pub id: String,
    pub family: Family,
    /// What the reasoner read instead of the image.
    pub description: String,
    pub raw: RawOutput,
    pub kept: Option<Kept>,
    pub dropped: Option<DropReason>,
}

/// What a run produced.
#[derive(Debug, Clone)]
pub struct BridgeRun {
    pub samples: Vec<Sample>,
    /// The kept samples as SFT records, in problem order.
    pub records: Vec<SftRecord>,
    /// Indices (into the input problems) of the kept samples.
    pub kept: Vec<usize>,
    pub stats: BridgeStats,
}

impl BridgeRun {
    /// The kept problems (for their images).
    pub fn kept_problems(&self, problems: &[Problem]) -> Vec<Problem> {
        self.kept.iter().map(|&i| problems[i].clone()).collect()
    }
}

/// What the reasoner is given for `p` with `description`: the question and the choices, nothing of
/// the answer or the trace.
pub fn reasoner_input<'a>(p: &'a Problem, description: &'a str) -> ReasonerInput<'a> {
    ReasonerInput { question: &p.question, description, choices: &p.choices }
}

/// The text twin's statement of the facts (its first line: the scene and every fact).
pub fn twin_facts(p: &Problem) -> String {
    let twin = p.text_twin();
    twin.split_once('\n').map_or(twin.clone(), |(facts, _)| facts.to_string())
}

/// The multimodal pipeline with descriptions of `mode`.
pub fn bridge(problems: &[Problem], mode: DescribeMode, cfg: &BridgeConfig) -> Result<BridgeRun> {
    run(problems, cfg, mode.name(), Target::Image, |p| describe(p, mode, &mut stream(cfg.seed, Stage::Describe, p)))
}

/// The text-only variant: the reasoner reads the text twin, the CoT is paired with the twin.
pub fn bridge_text(problems: &[Problem], cfg: &BridgeConfig) -> Result<BridgeRun> {
    run(problems, cfg, "text_twin", Target::Text, twin_facts)
}

fn run(
    problems: &[Problem],
    cfg: &BridgeConfig,
    name: &str,
    target: Target,
    describe: impl Fn(&Problem) -> String,
) -> Result<BridgeRun> {
    let stage = match target {
        Target::Image => Stage::Reason,
        Target::Text => Stage::ReasonText,
    };
    let mut out = BridgeRun { samples: vec![], records: vec![], kept: vec![], stats: BridgeStats::new(name, target) };
    for (i, p) in problems.iter().enumerate() {
        let description = describe(p);
        let raw = reason(&reasoner_input(p, &description), &cfg.knobs, &mut stream(cfg.seed, stage, p))
            .with_context(|| format!("bridging problem {}", p.id))?;
        let outcome = filter(&raw, &p.answer, target);
        out.stats.add(p.family, &raw, &outcome);
        if let Ok(k) = &outcome {
            out.records.push(match target {
                Target::Image => SftRecord::from_problem(p, k.response.clone()),
                Target::Text => SftRecord::text_twin(p, k.response.clone()),
            });
            out.kept.push(i);
        }
        let (kept, dropped) = match outcome {
            Ok(k) => (Some(k), None),
            Err(d) => (None, Some(d)),
        };
        out.samples.push(Sample { id: p.id.clone(), family: p.family, description, raw, kept, dropped });
    }
    Ok(out)
}
