//! `train.dynamic_sampling` (GRPO stages): DAPO's dynamic sampling (arXiv 2503.14476 §3.2; verl
//! `algorithm.filter_groups`), implemented by [`crate::rl::dynamic`]. Left out (the default): every drawn group is
//! trained on, and the manifest hash is that of a manifest without the key, so existing manifests and their run
//! ids are unchanged.
//!
//! `dynamic_sampling = { kind = "dapo", max_gen_batches = 4, metric = "accuracy" }`: `max_gen_batches` (verl
//! `max_num_gen_batches`) must be >= 1 (verl's 0 = "unlimited" is refused: an unbounded step cannot be budgeted or
//! replayed in bounded time); `metric` (verl `metric`) is `accuracy` (DAPO's `acc`, the default) or `reward`.
//!
//! Refused with PAD (a decision): both choose the sequences a step trains on — PAD from the advantages of one
//! batch, DAPO by drawing extra batches — and Tab.4 compares them as alternatives (papers_spec §2.8), so combining
//! them has no published meaning. Also refused: `metric = "accuracy"` with a reward that reports no accuracy
//! (the efficient-length reward alone).
use anyhow::{Result, ensure};
use serde::{Deserialize, Serialize};

use crate::rl::dynamic::{DynamicSampling, FilterMetric};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum DynamicSamplingSpec {
    Dapo {
        max_gen_batches: u32,
        #[serde(default = "default_metric")]
        metric: FilterMetricSpec,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FilterMetricSpec {
    Accuracy,
    Reward,
}

fn default_metric() -> FilterMetricSpec {
    FilterMetricSpec::Accuracy
}

impl From<DynamicSamplingSpec> for DynamicSampling {
    fn from(d: DynamicSamplingSpec) -> Self {
        match d {
            DynamicSamplingSpec::Dapo { max_gen_batches, metric } => DynamicSampling {
                max_gen_batches: max_gen_batches as usize,
                metric: match metric {
                    FilterMetricSpec::Accuracy => FilterMetric::Accuracy,
                    FilterMetricSpec::Reward => FilterMetric::Reward,
                },
            },
        }
    }
}

/// Load-time checks of `train.dynamic_sampling` against the rest of `[train]`.
pub fn validate(spec: &DynamicSamplingSpec, has_pad: bool, reward_has_accuracy: bool) -> Result<()> {
    let DynamicSamplingSpec::Dapo { max_gen_batches, metric } = *spec;
    ensure!(
        max_gen_batches >= 1,
        "train.dynamic_sampling.max_gen_batches = 0 would never train; give >= 1 (verl's 0 = unlimited is not \
         supported)"
    );
    ensure!(
        !has_pad,
        "train.dynamic_sampling and train.pad both choose the sequences a step trains on (Tab.4 compares them as \
         alternatives); remove one of them"
    );
    ensure!(
        metric != FilterMetricSpec::Accuracy || reward_has_accuracy,
        "train.dynamic_sampling.metric = \"accuracy\" but train.reward reports no accuracy; use metric = \"reward\""
    );
    Ok(())
}
