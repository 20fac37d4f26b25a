//! PTST through `rl::run::GrpoRunner` (issue 4 item 6, issue 5 "exact resume"): a two-stage schedule read from a
//! manifest `[train]` table runs each stage with its own group size and token cap, applies the carry-over rules
//! at the boundary (fresh AdamW, reference = the stage's initial policy), and a run resumed mid-stage from an
//! in-memory snapshot (weights, AdamW state, reference, counters) reproduces the uninterrupted run bit for bit.
//! Also PAD inside the step: both variants select from the step's advantages and report their counts, and an
//! empty selection (paper variant) skips the update.
mod common;

use std::collections::HashMap;

use common::{Exact, decode, digit_prompts, model_dir, ptst_config};
use r1lab::model::qwen2_5_vl::Qwen2_5_VL;
use r1lab::rl::pad::{Pad, TauSchedule};
use r1lab::rl::rollout::RlPrompt;
use r1lab::rl::run::GrpoRunner;
use r1lab::rl::trainer::SampleRow;
use r1lab::tch::{Device, Kind, Tensor};

fn policy() -> Qwen2_5_VL {
    Qwen2_5_VL::from_dir(&model_dir(), Device::Cpu, Kind::Float).unwrap()
}

fn weights(m: &Qwen2_5_VL) -> HashMap<String, Tensor> {
    m.var_store().unwrap().variables().into_iter().map(|(k, t)| (k, t.detach().copy())).collect()
}

fn max_diff(a: &HashMap<String, Tensor>, b: &HashMap<String, Tensor>) -> f64 {
    a.iter().map(|(k, t)| (t - &b[k]).abs().max().double_value(&[])).fold(0.0, f64::max)
}

fn data() -> Vec<RlPrompt> {
    digit_prompts(5, 0, 12, 0)
}

type Log = Vec<(usize, Vec<SampleRow>)>;

fn run_steps(runner: &mut GrpoRunner, data: &[RlPrompt], n: u64, log: &mut Log) {
    for _ in 0..n {
        let (pos, m, samples) = runner.step(data, &Exact, 0, decode).unwrap();
        assert_eq!(samples.len(), 4 * pos.spec.group_size, "step {}", m.step);
        assert!(samples.iter().all(|s| s.response_len <= pos.spec.max_new_tokens));
        assert_eq!(m.update.optimizer_steps, 2, "4 prompts / 2 per update");
        log.push((pos.stage, samples));
    }
}

#[test]
fn two_stage_schedule_with_carry_over_and_exact_resume() {
    let data = data();
    // Uninterrupted run, checking the boundary rules on the way.
    let mut model = policy();
    let mut straight: Log = vec![];
    let final_straight = {
        let mut r = GrpoRunner::new(ptst_config(), &mut model).unwrap();
        run_steps(&mut r, &data, 3, &mut straight);
        assert_eq!(r.optimizer.steps_done(), 6);
        let at_boundary = weights(r.policy);
        let reference_before = weights(r.reference.as_ref().unwrap());
        assert!(max_diff(&at_boundary, &reference_before) > 0.0, "stage 1 trained the policy");
        run_steps(&mut r, &data, 1, &mut straight);
        assert_eq!(r.optimizer.steps_done(), 2, "optimizer = reset: fresh AdamW at stage 2");
        assert_eq!(max_diff(&at_boundary, &weights(r.reference.as_ref().unwrap())), 0.0, "reference = stage init");
        run_steps(&mut r, &data, 2, &mut straight);
        assert!(r.is_done());
        // freeze_vision: the vision tower never moves.
        let init = weights(&policy());
        let end = weights(r.policy);
        assert!(end.iter().filter(|(k, _)| k.starts_with("visual.")).all(|(k, t)| t.equal(&init[k])));
        end
    };
    assert_eq!(straight.iter().map(|(s, _)| *s).collect::<Vec<_>>(), vec![0, 0, 0, 1, 1, 1]);

    // Interrupted after 4 steps (mid stage 2), resumed into fresh objects.
    let mut model = policy();
    let mut first: Log = vec![];
    let snapshot = {
        let mut r = GrpoRunner::new(ptst_config(), &mut model).unwrap();
        run_steps(&mut r, &data, 4, &mut first);
        (weights(r.policy), r.optimizer.state_tensors(), weights(r.reference.as_ref().unwrap()), r.updates)
    };
    let (policy_w, adam, reference_w, updates) = snapshot;
    let mut model = policy();
    let mut resumed: Log = vec![];
    let mut r = GrpoRunner::new(ptst_config(), &mut model).unwrap();
    tch::no_grad(|| {
        for (k, mut t) in r.policy.var_store().unwrap().variables() {
            t.copy_(&policy_w[&k]);
        }
        for (k, mut t) in r.reference.as_ref().unwrap().var_store().unwrap().variables() {
            t.copy_(&reference_w[&k]);
        }
    });
    r.optimizer.load_state_tensors(adam).unwrap();
    (r.next_step, r.updates) = (4, updates);
    run_steps(&mut r, &data, 2, &mut resumed);
    assert_eq!(first[..], straight[..4]);
    assert_eq!(resumed[..], straight[4..], "the resumed steps sampled differently");
    assert_eq!(max_diff(&final_straight, &weights(r.policy)), 0.0, "resumed weights differ");
}

#[test]
fn pad_selects_the_training_batch_and_reports_its_counts() {
    let data = data();
    let variants = [
        (Pad::released_code(), "released"),
        (Pad::Paper { t_low: 0.05, t_high: 10.0, rho: 0.5, tau: TauSchedule::paper(10) }, "paper"),
        (Pad::Paper { t_low: 50.0, t_high: 60.0, rho: 0.5, tau: TauSchedule::paper(10) }, "empty"),
    ];
    for (pad, name) in variants {
        let mut model = policy();
        let before = weights(&model);
        let mut cfg = ptst_config();
        cfg.pad = Some((pad, true));
        let mut r = GrpoRunner::new(cfg, &mut model).unwrap();
        let mut trained = false;
        for _ in 0..3 {
            let (_, m, samples) = r.step(&data, &Exact, 0, decode).unwrap();
            let (effective, selected) = (m.pad_effective.unwrap(), m.pad_selected.unwrap());
            assert_eq!(samples.iter().map(|s| s.selected).sum::<usize>(), selected, "{name}");
            let nonzero = samples.iter().filter(|s| s.advantage.abs() > 0.05 && s.advantage.abs() < 0.97).count();
            match name {
                "released" => {
                    // Strict thresholds 0.03 < |A| < 0.97, 1.5·N draws with replacement, or the full batch.
                    assert!(effective <= samples.len());
                    assert_eq!(selected, if effective == 0 { samples.len() } else { samples.len() * 3 / 2 });
                    assert!(effective >= nonzero, "{name}: {effective} < {nonzero}");
                }
                "paper" => {
                    assert!(selected <= effective && selected <= samples.len().div_ceil(2), "{name}: {m:?}");
                    assert!(samples.iter().all(|s| s.selected <= 1), "the paper variant draws without replacement");
                }
                _ => assert_eq!((effective, selected, m.update_skipped), (0, 0, true), "{name}"),
            }
            trained |= !m.update_skipped;
        }
        let moved = max_diff(&before, &weights(r.policy)) > 0.0;
        assert_eq!(moved, trained, "{name}: weights moved = {moved}, updates ran = {trained}");
    }
}
