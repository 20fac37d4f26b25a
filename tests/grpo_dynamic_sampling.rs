//! DAPO dynamic sampling through `rl::run::GrpoRunner` on the tiny Qwen2.5-VL and the digit task (issue 5, Tab.4
//! "DAPO"): every trained group has varying rewards, a step draws further batches from the data cursor until it has
//! `rollout_batch_prompts` such groups, the kept / generated counts are reported, and a runner resumed from the
//! cursor (`next_step`, `gen_batches`) draws exactly the rollouts of the uninterrupted run.
mod common;

use std::collections::BTreeMap;

use common::{Exact, decode, digit_prompts, model_dir, ptst_config};
use r1lab::model::qwen2_5_vl::Qwen2_5_VL;
use r1lab::rl::dynamic::{DynamicSampling, FilterMetric};
use r1lab::rl::run::{GrpoRunConfig, GrpoRunner};
use r1lab::rl::trainer::{SampleRow, StepMetrics};
use r1lab::tch::{Device, Kind};

fn policy() -> Qwen2_5_VL {
    Qwen2_5_VL::from_dir(&model_dir(), Device::Cpu, Kind::Float).unwrap()
}

fn config(max_gen_batches: usize) -> GrpoRunConfig {
    let mut cfg = ptst_config();
    cfg.dynamic = Some(DynamicSampling { max_gen_batches, metric: FilterMetric::Accuracy });
    cfg
}

fn step(r: &mut GrpoRunner, data: &[r1lab::rl::rollout::RlPrompt]) -> (StepMetrics, Vec<SampleRow>) {
    let (_, m, rows) = r.step(data, &Exact, 0, decode).unwrap();
    (m, rows)
}

#[test]
fn dynamic_sampling_trains_on_groups_with_signal_and_resumes_from_the_cursor() {
    let data = digit_prompts(5, 0, 40, 0);
    let mut model = policy();
    let mut r = GrpoRunner::new(config(12), &mut model).unwrap();
    let (m1, rows1) = step(&mut r, &data);
    let cursor_after_1 = r.gen_batches;
    let (m2, rows2) = step(&mut r, &data);
    for (m, rows) in [(&m1, &rows1), (&m2, &rows2)] {
        let d = m.dynamic.expect("dynamic stats");
        assert_eq!(d.kept, 4, "rollout_batch_prompts groups trained on");
        assert_eq!(d.generated, 4 * d.gen_batches, "4 prompts per draw");
        assert!(d.with_signal >= d.kept && d.with_signal <= d.generated, "{d:?}");
        assert_eq!(m.prompts, 4);
        assert_eq!(rows.len(), 4 * 4, "4 groups of 4");
        assert_eq!(m.update.optimizer_steps, 2, "the update sees a full batch");
        let mut by_prompt: BTreeMap<u64, Vec<f64>> = BTreeMap::new();
        for s in rows.iter() {
            by_prompt.entry(s.prompt_uid).or_default().push(s.reward.overall);
        }
        assert_eq!(by_prompt.len(), 4);
        for (uid, rewards) in &by_prompt {
            assert!(rewards.iter().any(|&x| x != rewards[0]), "prompt {uid} kept without signal: {rewards:?}");
        }
        assert!(m.zero_variance_frac == 0.0, "no zero-variance group is trained on");
    }
    // At chance 0.1 per answer, a group of 4 has signal about a third of the time: this seed needs extra draws.
    let d1 = m1.dynamic.unwrap();
    assert!(d1.gen_batches > 1, "{d1:?}");
    assert_eq!(cursor_after_1, d1.gen_batches as u64);
    assert_eq!(r.gen_batches, (d1.gen_batches + m2.dynamic.unwrap().gen_batches) as u64);

    // Resume: the weights after step 1 (a straight run to step 1) with the cursor restored draw step 2's rollouts.
    let mut again = policy();
    let mut a = GrpoRunner::new(config(12), &mut again).unwrap();
    let (_, rows1b) = step(&mut a, &data);
    assert_eq!(rows1b, rows1, "step 1 replays");
    let updates = a.updates;
    drop(a);
    let mut resumed = GrpoRunner::new(config(12), &mut again).unwrap();
    (resumed.next_step, resumed.updates, resumed.gen_batches) = (1, updates, cursor_after_1);
    let (_, rows2b) = step(&mut resumed, &data);
    let key =
        |rows: &[SampleRow]| rows.iter().map(|s| (s.prompt_uid, s.sample, s.response.clone())).collect::<Vec<_>>();
    assert_eq!(key(&rows2b), key(&rows2), "the resumed step draws what the uninterrupted one drew");
    // Without the cursor (gen_batches = next_step, as a plain run would resume) the draws differ.
    let mut third = policy();
    let mut b = GrpoRunner::new(config(12), &mut third).unwrap();
    step(&mut b, &data);
    b.gen_batches = 1;
    let (_, rows2c) = step(&mut b, &data);
    assert_ne!(key(&rows2c), key(&rows2));
}

#[test]
fn a_step_without_enough_signal_within_the_cap_fails_naming_the_setting() {
    let data = digit_prompts(5, 0, 40, 0);
    let mut model = policy();
    let mut r = GrpoRunner::new(config(1), &mut model).unwrap();
    let e = format!("{:#}", r.step(&data, &Exact, 0, decode).unwrap_err());
    assert!(e.contains("max_gen_batches") && e.contains("step 0"), "{e}");
    // Dynamic sampling with PAD is refused by the run config too.
    let mut cfg = config(2);
    cfg.pad = Some((r1lab::rl::pad::Pad::released_code(), true));
    assert!(format!("{:#}", cfg.validate(data.len()).unwrap_err()).contains("PAD"));
}
