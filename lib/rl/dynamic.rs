//! DAPO dynamic sampling (Yu et al., arXiv 2503.14476 §3.2, Eq. 11's constraint `0 < |{o_i correct}| < G`; verl's
//! `algorithm.filter_groups` with `metric` and `max_num_gen_batches`, recipe/dapo): after the rollouts of a
//! batch, prompt groups whose metric values are all equal (no signal: every GRPO advantage is zero) are dropped,
//! and further rollout batches (the next batches of the data cursor) are drawn until the step holds
//! `rollout_batch_prompts` groups with signal; the first that many, in draw order, are trained on and the rest of
//! the last batch is discarded (verl `batch[:traj_bsz]`).
//!
//! - **Stopping rule** ([`next`]): after draw `d` (1-based) with `k` kept groups: train when `k ≥ target`; draw
//!   again when `d < max_gen_batches`; otherwise the step fails with an error saying what to change — verl's
//!   behaviour (it raises once `num_gen_batches ≥ max_num_gen_batches`), not "train on what there is".
//! - **Metric** ([`FilterMetric`]): `accuracy` (DAPO's recipe, verl `metric=acc`) or the overall `reward`
//!   (verl `score`). A group of one sequence is kept, as verl does.
//! - **Equality**: a group has signal when its values are not all equal (exact comparison). verl tests
//!   `np.std(values) > 0`, which differs only when floating-point rounding makes the std of equal values non-zero.
//! - **Seeds and data cursor** (`rl::run`): draw `d` of a step uses the data cursor's next batch; its rollout seeds
//!   are `seed::derive(base, Rollout, c, uid, j)` with `c` the cursor's batch index, so they stay stateless per
//!   (batch, prompt, sample); without dynamic sampling `c` is the RL step, as before.
use anyhow::{Result, bail, ensure};

use super::reward::RewardScore;

/// Which per-sequence value must vary within a group for it to be kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FilterMetric {
    /// The reward's accuracy part (verl `acc`); a reward without one is refused.
    Accuracy,
    /// The overall reward (verl `score`).
    Reward,
}

/// DAPO's dynamic sampling settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DynamicSampling {
    /// Rollout batches a step may draw before it fails (verl `max_num_gen_batches`, here >= 1).
    pub max_gen_batches: usize,
    pub metric: FilterMetric,
}

impl DynamicSampling {
    pub fn validate(&self) -> Result<()> {
        ensure!(
            self.max_gen_batches >= 1,
            "dynamic sampling max_gen_batches = 0 would never train; give >= 1 (verl's 0 = unlimited is not supported)"
        );
        Ok(())
    }

    /// The value of each sequence the filter compares.
    pub fn values(&self, scores: &[RewardScore]) -> Result<Vec<f64>> {
        scores
            .iter()
            .map(|s| match self.metric {
                FilterMetric::Reward => Ok(s.overall),
                FilterMetric::Accuracy => s.accuracy.ok_or_else(|| {
                    anyhow::anyhow!(
                        "dynamic sampling filters on accuracy, but the reward reports none; use metric = \"reward\""
                    )
                }),
            })
            .collect()
    }
}

/// What a step does after a draw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    Train,
    Draw,
    Exhausted,
}

/// The stopping rule: `kept` groups with signal after `drawn` batches, `target` wanted, at most `max` batches.
pub fn next(kept: usize, target: usize, drawn: usize, max: usize) -> Next {
    if kept >= target {
        Next::Train
    } else if drawn < max {
        Next::Draw
    } else {
        Next::Exhausted
    }
}

/// Per prompt `0..n_prompts`: whether its group (the sequences `i` with `prompt_of[i] == p`) has signal.
pub fn groups_with_signal(values: &[f64], prompt_of: &[usize], n_prompts: usize) -> Result<Vec<bool>> {
    ensure!(values.len() == prompt_of.len(), "{} values for {} sequences", values.len(), prompt_of.len());
    let mut first: Vec<Option<f64>> = vec![None; n_prompts];
    let mut signal = vec![false; n_prompts];
    let mut count = vec![0usize; n_prompts];
    for (&v, &p) in values.iter().zip(prompt_of) {
        ensure!(p < n_prompts, "sequence of prompt {p} but only {n_prompts} prompts");
        count[p] += 1;
        match first[p] {
            None => first[p] = Some(v),
            Some(f) => signal[p] |= f != v,
        }
    }
    for p in 0..n_prompts {
        if count[p] == 0 {
            bail!("prompt {p} has no sequence");
        }
        signal[p] |= count[p] == 1;
    }
    Ok(signal)
}

/// Counts of one step under dynamic sampling, logged to `metrics.parquet`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DynamicStats {
    /// Prompt groups trained on (= `rollout_batch_prompts`).
    pub kept: usize,
    /// Prompt groups generated over all draws of the step.
    pub generated: usize,
    /// Groups with signal found (>= kept; the surplus of the last draw is discarded).
    pub with_signal: usize,
    /// Rollout batches drawn.
    pub gen_batches: usize,
}

/// The error of a step that drew `max` batches without enough signal (verl raises the same).
pub fn exhausted(step: u64, found: usize, target: usize, max: usize) -> anyhow::Error {
    anyhow::anyhow!(
        "dynamic sampling at step {step}: {max} rollout batch(es) gave only {found} prompt groups with varying \
         rewards, fewer than the {target} a step trains on; the data may be too hard or too easy for the policy — \
         raise train.dynamic_sampling.max_gen_batches, or remove dynamic sampling"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn score(overall: f64, accuracy: Option<f64>) -> RewardScore {
        RewardScore { overall, accuracy, format: None }
    }

    #[test]
    fn groups_with_equal_values_are_dropped_and_singletons_kept() {
        // Prompt 0: 1,1,1 (no signal); 1: 0,1,0 (signal); 2: 0,0,0 (none); 3: one sequence (kept, as verl).
        let values = [1.0, 1.0, 1.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.5];
        let prompt_of = [0, 0, 0, 1, 1, 1, 2, 2, 2, 3];
        assert_eq!(groups_with_signal(&values, &prompt_of, 4).unwrap(), vec![false, true, false, true]);
        // Interleaved order gives the same answer.
        assert_eq!(groups_with_signal(&[0.0, 1.0, 0.0, 1.0], &[0, 1, 0, 1], 2).unwrap(), vec![false, false]);
        assert!(groups_with_signal(&[0.0], &[0], 2).unwrap_err().to_string().contains("prompt 1"));
    }

    #[test]
    fn metric_picks_accuracy_or_reward() {
        let scores = [score(1.0, Some(1.0)), score(0.5, Some(1.0))];
        let acc = DynamicSampling { max_gen_batches: 2, metric: FilterMetric::Accuracy };
        assert_eq!(acc.values(&scores).unwrap(), vec![1.0, 1.0]);
        let rew = DynamicSampling { metric: FilterMetric::Reward, ..acc };
        assert_eq!(rew.values(&scores).unwrap(), vec![1.0, 0.5]);
        let e = acc.values(&[score(1.0, None)]).unwrap_err().to_string();
        assert!(e.contains("metric = \"reward\""), "{e}");
        assert!(DynamicSampling { max_gen_batches: 0, ..acc }.validate().is_err());
    }

    /// A fake reward stream: draw `d` yields these per-prompt signal flags; the step collects until `target`.
    fn simulate(stream: &[Vec<bool>], target: usize, max: usize) -> (Next, usize, usize) {
        let (mut kept, mut drawn) = (0, 0);
        for batch in stream {
            drawn += 1;
            kept += batch.iter().filter(|&&s| s).count();
            match next(kept, target, drawn, max) {
                Next::Draw => continue,
                n => return (n, kept.min(target), drawn),
            }
        }
        panic!("stream ran out")
    }

    #[test]
    fn stopping_rule_on_a_fake_reward_stream() {
        let b = |f: &[u8]| f.iter().map(|&x| x == 1).collect::<Vec<_>>();
        // Enough signal in the first batch: no extra draw.
        assert_eq!(simulate(&[b(&[1, 1, 1, 1])], 4, 3), (Next::Train, 4, 1));
        // Two of four per batch: a second draw completes the step; the surplus is not counted as kept.
        assert_eq!(simulate(&[b(&[1, 0, 1, 0]), b(&[1, 1, 1, 0])], 4, 3), (Next::Train, 4, 2));
        // Never enough within the cap: exhausted after exactly `max` draws.
        assert_eq!(simulate(&[b(&[0, 0, 0, 0]), b(&[1, 0, 0, 0]), b(&[0, 0, 0, 1])], 4, 3), (Next::Exhausted, 2, 3));
        // max = 1 is plain filtering with a hard floor.
        assert_eq!(simulate(&[b(&[1, 1, 1, 0])], 4, 1), (Next::Exhausted, 3, 1));
        assert!(exhausted(5, 3, 4, 1).to_string().contains("max_gen_batches"));
    }
}
