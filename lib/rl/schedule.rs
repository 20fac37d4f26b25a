//! PTST, Progressive Thinking Suppression Training (Vision-R1 v4 §3.4, Fig. 3; papers_spec §1.5): RL in stages
//! `s = 1..S`, stage `s` sampling `G_s` responses per prompt capped at `L_s` new tokens for `steps_s` RL steps,
//! each stage continuing from the previous stage's weights. The published schedule is 4K × 16 for 100 steps, then
//! 8K × 8 for 100 steps (constant `G_s · L_s` = 64K tokens per prompt). A single-stage schedule is plain GRPO
//! (ReVisual-R1's stages, Vision-R1-Zero).
//!
//! The paper leaves two things open (UNVERIFIED in papers_spec §1.5), so they are explicit settings here:
//! - [`OptimizerCarry`]: whether AdamW's moments carry into the next stage or start fresh (a separate EasyR1
//!   launch per stage, which is what the released scripts imply, resets them);
//! - [`ReferencePolicy`]: whether `π_ref` stays the weights the run started from or becomes each stage's
//!   initial weights (EasyR1 sets the reference to the checkpoint it is launched from).
//!
//! Steps are counted globally across stages (step `k` of stage 2 is global step `steps_1 + k`), so rollout and
//! PAD seeds, metrics and checkpoints have one step axis.
use anyhow::{Result, ensure};

/// One stage: `max_new_tokens` (L_s), `group_size` (G_s), RL steps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LengthStage {
    pub max_new_tokens: usize,
    pub group_size: usize,
    pub steps: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OptimizerCarry {
    /// Fresh AdamW moments at every stage start.
    Reset,
    /// The moments (and the update counter) continue.
    Carry,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReferencePolicy {
    /// `π_ref` = the weights the run started from, for every stage.
    ManifestInit,
    /// `π_ref` = the policy's weights at the start of each stage.
    StageInit,
}

/// Where a global step falls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StagePosition {
    /// 0-based stage index.
    pub stage: usize,
    /// Step within the stage, 0-based.
    pub step_in_stage: u64,
    pub spec: LengthStage,
}

impl StagePosition {
    /// The first step of a stage after the first: the carry-over rules apply here.
    pub fn is_stage_boundary(&self) -> bool {
        self.stage > 0 && self.step_in_stage == 0
    }
}

/// A PTST schedule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ptst {
    pub stages: Vec<LengthStage>,
    pub optimizer: OptimizerCarry,
    pub reference: ReferencePolicy,
}

impl Ptst {
    /// The published Vision-R1 schedule (4K × 16, 8K × 8, 100 steps each) with the given carry-over rules.
    pub fn vision_r1(optimizer: OptimizerCarry, reference: ReferencePolicy) -> Self {
        let stages = vec![
            LengthStage { max_new_tokens: 4096, group_size: 16, steps: 100 },
            LengthStage { max_new_tokens: 8192, group_size: 8, steps: 100 },
        ];
        Self { stages, optimizer, reference }
    }

    pub fn validate(&self) -> Result<()> {
        ensure!(!self.stages.is_empty(), "a PTST schedule needs at least one stage");
        for (i, s) in self.stages.iter().enumerate() {
            ensure!(
                s.max_new_tokens > 0 && s.group_size > 0 && s.steps > 0,
                "PTST stage {} must have max_new_tokens, group_size and steps >= 1, got {s:?}",
                i + 1
            );
        }
        Ok(())
    }

    pub fn total_steps(&self) -> u64 {
        self.stages.iter().map(|s| s.steps).sum()
    }

    /// The stage of global step `step`, or `None` past the end.
    pub fn locate(&self, step: u64) -> Option<StagePosition> {
        let mut start = 0;
        for (stage, spec) in self.stages.iter().enumerate() {
            if step < start + spec.steps {
                return Some(StagePosition { stage, step_in_stage: step - start, spec: *spec });
            }
            start += spec.steps;
        }
        None
    }

    /// Sampled tokens per prompt at most, per stage (`G_s · L_s`; constant in the paper's schedule).
    pub fn token_budgets(&self) -> Vec<usize> {
        self.stages.iter().map(|s| s.group_size * s.max_new_tokens).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locates_steps_and_boundaries() {
        let p = Ptst::vision_r1(OptimizerCarry::Reset, ReferencePolicy::StageInit);
        p.validate().unwrap();
        assert_eq!(p.total_steps(), 200);
        assert_eq!(p.token_budgets(), vec![65536, 65536]);
        let at = |s| p.locate(s).unwrap();
        assert_eq!((at(0).stage, at(0).step_in_stage, at(0).spec.group_size), (0, 0, 16));
        assert_eq!((at(99).stage, at(99).step_in_stage), (0, 99));
        assert_eq!((at(100).stage, at(100).step_in_stage, at(100).spec.max_new_tokens), (1, 0, 8192));
        assert!(!at(0).is_stage_boundary() && at(100).is_stage_boundary() && !at(101).is_stage_boundary());
        assert_eq!(p.locate(200), None);
        let bad = Ptst { stages: vec![LengthStage { max_new_tokens: 0, group_size: 2, steps: 1 }], ..p.clone() };
        assert!(bad.validate().unwrap_err().to_string().contains("stage 1"));
        assert!(Ptst { stages: vec![], ..p }.validate().is_err());
    }
}
