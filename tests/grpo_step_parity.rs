//! Gradient check (issue 4): one GRPO update of the tiny Qwen2.5-VL through `rl::update` (two PPO epochs, one
//! mini-batch of 4 sequences in two micro-batches, ReVisual's dual-clip loss with pre-clip, k3 KL, entropy from
//! logits, grad clipping, AdamW) gives the same parameters as the plain-PyTorch computation of
//! `tests/fixtures/grpo_step.py` on transformers' model, from the same inputs. Also checks the recomputed old
//! log-probs and the per-step gradient norms.
use std::collections::HashMap;
use std::path::{Path, PathBuf};

use r1lab::model::qwen2_5_vl::Qwen2_5_VL;
use r1lab::model::qwen2_5_vl::weights::published_key;
use r1lab::rl::entropy::{EntropyEstimator, EntropySchedule};
use r1lab::rl::experience::{Experience, log_probs_no_grad};
use r1lab::rl::kl::KlEstimator;
use r1lab::rl::loss::{ActorLoss, Aggregation, EntropyTerm, KlTerm, LogRatioClamp, PolicyLoss, Surrogate};
use r1lab::rl::rollout::RlPrompt;
use r1lab::rl::update::{UpdateConfig, update};
use r1lab::tch::{Device, Kind, Tensor};
use r1lab::train::optim::{AdamW, AdamWConfig, Frozen};
use serde_json::Value;

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn ids(t: &Tensor) -> Vec<i64> {
    Vec::<i64>::try_from(t).unwrap()
}

#[test]
fn one_grpo_update_matches_the_pytorch_reference() {
    let case: HashMap<String, Tensor> =
        Tensor::read_safetensors(dir().join("grpo_step/case.safetensors")).unwrap().into_iter().collect();
    let meta: Value =
        serde_json::from_str(&std::fs::read_to_string(dir().join("grpo_step/case.json")).unwrap()).unwrap();
    let f = |k: &str| meta[k].as_f64().unwrap();
    let grid = ids(&case["image_grid_thw"].view(-1));
    let prompts = vec![
        RlPrompt {
            uid: 0,
            input_ids: ids(&case["prompt.a"]),
            pixel_values: Some(case["pixel_values"].shallow_clone()),
            grids: vec![[grid[0], grid[1], grid[2]]],
            ground_truth: String::new(),
        },
        RlPrompt::from_ids(1, ids(&case["prompt.b"]), ""),
    ];
    let mut policy = Qwen2_5_VL::from_dir(&dir().join("qwen2_5_vl_model/model"), Device::Cpu, Kind::Float).unwrap();
    policy.var_store_mut().unwrap().unfreeze();
    let temperature = f("temperature");

    // Old log-probs recomputed by the trainer, one sequence at a time as the script does.
    let responses: Vec<Vec<i64>> = (0..4).map(|i| ids(&case[&format!("response.{i}")])).collect();
    let rows: Vec<(usize, &[i64])> = responses.iter().enumerate().map(|(i, r)| (i % 2, r.as_slice())).collect();
    let old = log_probs_no_grad(&policy, &prompts, &rows, temperature, 1, 0).unwrap();
    for (i, o) in old.iter().enumerate() {
        let want = Vec::<f32>::try_from(&case[&format!("old.{i}")]).unwrap();
        let d = o.iter().zip(&want).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
        assert!(d < 2e-5, "old log-probs of sequence {i} differ by {d}");
    }
    // Batched (mixed padding) log-probs agree with the one-by-one ones.
    let batched = log_probs_no_grad(&policy, &prompts, &rows, temperature, 4, 0).unwrap();
    for (a, b) in old.iter().zip(&batched) {
        assert!(a.iter().zip(b).all(|(x, y)| (x - y).abs() < 2e-5), "{a:?} vs {b:?}");
    }

    let advantages: Vec<f64> = meta["advantages"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
    let experience: Vec<Experience> = (0..4)
        .map(|i| Experience {
            prompt: i % 2,
            response: responses[i].clone(),
            advantage: advantages[i] as f32,
            old_log_probs: Vec::<f32>::try_from(&case[&format!("old.{i}")]).unwrap(),
            ref_log_probs: Some(Vec::<f32>::try_from(&case[&format!("ref.{i}")]).unwrap()),
        })
        .collect();
    let loss = ActorLoss {
        policy: PolicyLoss {
            surrogate: Surrogate::DualClip { eps_low: f("eps_low"), eps_high: f("eps_high"), c: f("dual_clip") },
            log_ratio_clamp: LogRatioClamp::revisual(),
            aggregation: Aggregation::MicroBatchTokenMean,
        },
        kl: Some(KlTerm { estimator: KlEstimator::K3, coef: f("kl_coef") }),
        entropy: Some(EntropyTerm {
            estimator: EntropyEstimator::FromLogits,
            schedule: EntropySchedule::Constant { coef: f("entropy_coef") },
        }),
    };
    let cfg = UpdateConfig {
        loss,
        ppo_epochs: meta["ppo_epochs"].as_u64().unwrap() as usize,
        mini_batch: meta["mini_batch"].as_u64().unwrap() as usize,
        micro_batch: meta["micro_batch"].as_u64().unwrap() as usize,
        temperature,
        grad_clip: Some(f("grad_clip")),
        recompute: false,
    };
    drop(policy);
    // The same update with activation recomputation must land on the same parameters.
    for recompute in [false, true] {
        println!("activation recomputation: {recompute}");
        one_update(&case, &meta, &prompts, &experience, &UpdateConfig { recompute, ..cfg });
    }
}

fn one_update(
    case: &HashMap<String, Tensor>,
    meta: &Value,
    prompts: &[RlPrompt],
    experience: &[Experience],
    cfg: &UpdateConfig,
) {
    let f = |k: &str| meta[k].as_f64().unwrap();
    let mut policy = Qwen2_5_VL::from_dir(&dir().join("qwen2_5_vl_model/model"), Device::Cpu, Kind::Float).unwrap();
    policy.var_store_mut().unwrap().unfreeze();
    let initial: HashMap<String, Tensor> =
        policy.var_store().unwrap().variables().into_iter().map(|(k, t)| (k, t.detach().copy())).collect();
    let adam = AdamWConfig { weight_decay: f("weight_decay"), ..AdamWConfig::EASYR1 };
    let mut optimizer = AdamW::new(policy.var_store().unwrap(), adam, &Frozen::none()).unwrap();
    let batch: Vec<&Experience> = experience.iter().collect();
    let lr = f("lr");
    let (m, u) = update(&policy, &mut optimizer, prompts, &batch, cfg, 0, 0, |_| lr).unwrap();
    assert_eq!((m.optimizer_steps, m.skipped_steps, u), (2, 0, 2));
    let norms: Vec<f64> = meta["grad_norms"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
    let want_norm = norms.iter().sum::<f64>() / norms.len() as f64;
    assert!((m.grad_norm - want_norm).abs() < 1e-4 * want_norm, "mean grad norm {} vs {want_norm}", m.grad_norm);

    // transformers 5 names them `model.language_model.*` / `model.visual.*`; compare under the published names.
    let reference: HashMap<String, &Tensor> =
        case.iter().filter_map(|(k, t)| k.strip_prefix("param.").map(|k| (published_key(k), t))).collect();
    let mut worst = (0f64, String::new());
    let mut largest_move = 0f64;
    let mut compared = 0;
    for (name, t) in policy.var_store().unwrap().variables() {
        let key = published_key(&name);
        let want = reference.get(&key).unwrap_or_else(|| panic!("no reference for {key}"));
        let d = (t.to_kind(Kind::Float) - *want).abs().max().double_value(&[]);
        assert!(d.is_finite(), "{key}: non-finite difference");
        let moved = (t.to_kind(Kind::Float) - &initial[&name]).abs().max().double_value(&[]);
        largest_move = largest_move.max(moved);
        if d > worst.0 {
            worst = (d, key);
        }
        compared += 1;
    }
    println!(
        "compared {compared} tensors; largest parameter change {largest_move:.3e}, largest difference to PyTorch \
         {:.3e} {}",
        worst.0, worst.1
    );
    assert!(largest_move > 1e-3, "the update did not move the parameters");
    assert!(worst.0 < 2e-5, "parameters differ from the PyTorch reference by {:.3e} in {}", worst.0, worst.1);
}
