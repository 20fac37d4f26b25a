//! Replay L0, the data order (style_anchors B11 "the realized data order regenerates from the seed"): the batches
//! of the run's first K steps are drawn again from `seeds.base` with [`epoch_order`], the way the trainers draw
//! them, and compared with what the record holds; the first differing step is named.
//!
//! - SFT ([`crate::sft::trainer`]): step `s` (1-based) of a run over `N` examples (`metrics.parquet` step-0 row
//!   `examples`) takes positions `((s-1) mod S)·G .. +G` of `epoch_order(base, (s-1) div S, N)`, with `G =
//!   train.global_batch` and `S = floor(N / G)`. The record holds the sha256 of each step's example indices in the
//!   `examples` field of `fingerprints.jsonl` (written by `pipeline::sft` since this check exists; a record without
//!   it is reported as not checked).
//! - GRPO ([`crate::rl::run`]): step `s` takes batch `(s-1) mod B` of `epoch_order(base, (s-1) div B, P)` with `P`
//!   prompts, `R = train.rollout_batch_prompts` and `B = floor(P / R)`; a prompt's uid is its row in the data
//!   file. The record holds every response's `prompt_uid` per step in `samples/*.parquet`; the step's prompt order
//!   is the order of first appearance.
//!
//! Not checked (reported so): GRPO stages with a mixed data source or DAPO dynamic sampling.
//!
//! Deviation: when prompts were dropped for length (`prompts_dropped_for_length > 0`) the map from batch position
//! to row (uid) needs the tokenised prompts, so the GRPO order is reported as not checked instead of re-tokenising
//! the data at L0.
use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result};
use polars::prelude::{ParquetReader, SerReader};
use serde::Serialize;

use crate::pipeline::FINGERPRINTS_FILE;
use crate::repro::fingerprint::{Fingerprints, digest_i64};
use crate::repro::manifest::{Manifest, Source, TrainSettings};
use crate::repro::record::Metrics;
use crate::repro::seed::epoch_order;

/// The data-order part of L0.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DataOrderReport {
    /// False when the record holds no data order to compare (see `note`).
    pub checked: bool,
    pub steps_compared: u64,
    pub first_difference: Option<OrderDiff>,
    pub note: String,
}

/// The first step whose recorded batch differs from the regenerated one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OrderDiff {
    pub step: u64,
    /// What is compared: `examples digest` (SFT) or `prompt uids` (GRPO).
    pub what: String,
    pub recorded: Option<String>,
    pub regenerated: String,
}

impl DataOrderReport {
    fn unchecked(note: impl Into<String>) -> Self {
        Self { checked: false, steps_compared: 0, first_difference: None, note: note.into() }
    }
}

/// The example indices of SFT step `step` (1-based) over `n` examples in batches of `global_batch`.
pub fn sft_step_examples(base: u64, n: usize, global_batch: usize, step: u64) -> Option<Vec<usize>> {
    let per_epoch = (n / global_batch.max(1)) as u64;
    if per_epoch == 0 || step == 0 {
        return None;
    }
    let (epoch, k) = ((step - 1) / per_epoch, ((step - 1) % per_epoch) as usize);
    Some(epoch_order(base, epoch, n)[k * global_batch..(k + 1) * global_batch].to_vec())
}

/// The prompt positions of GRPO step `step` (1-based) over `n` prompts in batches of `rollout_prompts`.
pub fn grpo_step_prompts(base: u64, n: usize, rollout_prompts: usize, step: u64) -> Option<Vec<usize>> {
    // The same cut as SFT's: whole batches of one epoch's permutation, the remainder dropped.
    sft_step_examples(base, n, rollout_prompts, step)
}

/// Regenerates and compares the order of the first `k` recorded steps of the run in `run_dir`; `data_file` is the
/// run's resolved data file (GRPO needs its row count).
pub fn check(manifest: &Manifest, run_dir: &Path, data_file: &Path, k: u64) -> Result<DataOrderReport> {
    let metrics_file = run_dir.join("metrics.parquet");
    if !metrics_file.is_file() {
        return Ok(DataOrderReport::unchecked(format!("not checked: {} has no metrics.parquet", run_dir.display())));
    }
    let step0 = Metrics::read_parquet(&metrics_file, 1)?;
    let first = |name: &str| step0.series(name).first().map(|(_, v)| *v);
    let base = manifest.seeds.base;
    match &manifest.train {
        TrainSettings::Sft(s) => {
            let Some(n) = first("examples") else {
                return Ok(DataOrderReport::unchecked("not checked: metrics.parquet has no step-0 `examples` count"));
            };
            let fp = run_dir.join(FINGERPRINTS_FILE);
            if !fp.is_file() {
                return Ok(DataOrderReport::unchecked(format!("not checked: the record has no {FINGERPRINTS_FILE}")));
            }
            let recorded = Fingerprints::read(&fp, k.saturating_add(1))?;
            if recorded.steps.iter().any(|f| !f.fields.contains_key("examples")) {
                return Ok(DataOrderReport::unchecked(
                    "not checked: the fingerprints have no `examples` field (recorded before SFT runs recorded their \
                     data order)",
                ));
            }
            let mut report =
                DataOrderReport { checked: true, steps_compared: 0, first_difference: None, note: "".into() };
            for f in &recorded.steps {
                let idx = sft_step_examples(base, n as usize, s.global_batch as usize, f.step).unwrap_or_default();
                let regenerated = digest_i64(idx.iter().map(|&i| i as i64));
                report.steps_compared += 1;
                if f.fields.get("examples") != Some(&regenerated) {
                    report.first_difference = Some(OrderDiff {
                        step: f.step,
                        what: "examples digest".into(),
                        recorded: f.fields.get("examples").cloned(),
                        regenerated: format!("{regenerated} (examples {idx:?})"),
                    });
                    break;
                }
            }
            report.note =
                format!("SFT example indices of steps 1..={} regenerated from seed {base}", report.steps_compared);
            Ok(report)
        }
        TrainSettings::Grpo(g) => {
            if matches!(manifest.data.source, Source::Mixed { .. }) || g.dynamic_sampling.is_some() {
                return Ok(DataOrderReport::unchecked(
                    "not checked: a mixed data source or dynamic sampling changes the map from step to data rows; \
                     L0 regenerates only the plain GRPO order",
                ));
            }
            let dropped = first("prompts_dropped_for_length").unwrap_or(0.0);
            if dropped > 0.0 {
                return Ok(DataOrderReport::unchecked(format!(
                    "not checked: {dropped} prompts were dropped for length, so batch positions map to data rows \
                     only through the tokenised prompts"
                )));
            }
            let file = std::fs::File::open(data_file).with_context(|| format!("opening {}", data_file.display()))?;
            let rows = ParquetReader::new(file)
                .num_rows()
                .with_context(|| format!("reading the row count of {}", data_file.display()))?;
            let n = manifest.data.filters.max_examples.map_or(rows, |m| (m as usize).min(rows));
            let recorded = recorded_prompt_uids(run_dir)?;
            if recorded.is_empty() {
                return Ok(DataOrderReport::unchecked("not checked: the record has no samples/*.parquet"));
            }
            let last = recorded.keys().next_back().copied().unwrap_or(0);
            let mut report =
                DataOrderReport { checked: true, steps_compared: 0, first_difference: None, note: "".into() };
            for step in 1..=k.min(last) {
                let regenerated: Vec<u64> = grpo_step_prompts(base, n, g.rollout_batch_prompts as usize, step)
                    .unwrap_or_default()
                    .into_iter()
                    .map(|i| i as u64)
                    .collect();
                report.steps_compared += 1;
                let rec = recorded.get(&step);
                if rec != Some(&regenerated) {
                    report.first_difference = Some(OrderDiff {
                        step,
                        what: "prompt uids".into(),
                        recorded: rec.map(|r| format!("{r:?}")),
                        regenerated: format!("{regenerated:?}"),
                    });
                    break;
                }
            }
            report.note =
                format!("GRPO prompt uids of steps 1..={} regenerated from seed {base}", report.steps_compared);
            Ok(report)
        }
        TrainSettings::EvalOnly(_) => {
            Ok(DataOrderReport::unchecked("not checked: an evaluation-only stage reads no training data"))
        }
    }
}

/// Step (1-based) → the prompt uids of its responses in order of first appearance, from `samples/*.parquet`.
pub fn recorded_prompt_uids(run_dir: &Path) -> Result<BTreeMap<u64, Vec<u64>>> {
    let dir = run_dir.join("samples");
    let mut out: BTreeMap<u64, Vec<u64>> = BTreeMap::new();
    if !dir.is_dir() {
        return Ok(out);
    }
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .with_context(|| format!("listing {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "parquet"))
        .collect();
    files.sort();
    for path in files {
        let file = std::fs::File::open(&path).with_context(|| format!("opening {}", path.display()))?;
        let df = ParquetReader::new(file).finish().with_context(|| format!("reading {}", path.display()))?;
        let steps = df.column("step")?.u64().with_context(|| format!("{}: `step` is not u64", path.display()))?;
        let uids =
            df.column("prompt_uid")?.u64().with_context(|| format!("{}: `prompt_uid` is not u64", path.display()))?;
        for (s, u) in steps.iter().zip(uids.iter()) {
            let (Some(s), Some(u)) = (s, u) else { continue };
            let list = out.entry(s + 1).or_default();
            if !list.contains(&u) {
                list.push(u);
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_cut_whole_epochs_and_cover_each_epoch_once() {
        // 10 examples in batches of 3: 3 steps per epoch (one example unused), epoch 1 starts at step 4.
        let b: Vec<Vec<usize>> = (1..=6).map(|s| sft_step_examples(7, 10, 3, s).unwrap()).collect();
        let mut epoch0: Vec<usize> = b[..3].concat();
        assert_eq!(epoch0, epoch_order(7, 0, 10)[..9].to_vec());
        epoch0.sort();
        epoch0.dedup();
        assert_eq!(epoch0.len(), 9, "no example twice within an epoch");
        assert_eq!(b[3..].concat(), epoch_order(7, 1, 10)[..9].to_vec());
        assert_ne!(sft_step_examples(8, 10, 3, 1), sft_step_examples(7, 10, 3, 1), "the seed matters");
        assert_eq!(sft_step_examples(7, 2, 3, 1), None, "fewer examples than a batch");
        assert_eq!(grpo_step_prompts(7, 10, 3, 5), sft_step_examples(7, 10, 3, 5));
    }
}
