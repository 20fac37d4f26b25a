//! Parity of lib/train/{optim,schedule}.rs and lib/sft/loss.rs with PyTorch 2.11 / transformers 5.17 on the
//! fixtures written by tests/fixtures/optim.py (no Python runs here).
//!
//! Asserted (f32, CPU):
//! - `AdamW::clip_and_step` = `clip_grad_norm_(max_norm=1)` + `torch.optim.AdamW(foreach=False)` with a
//!   no-decay group, 5 steps (3 of them clipping), two weight decays: parameters after every step and the
//!   returned norms within 1e-6 (measured: printed with `R1LAB_PARITY_VERBOSE=1 ... -- --nocapture`);
//! - `LrSchedule` = transformers' constant/cosine/cosine-with-min-lr warmup schedules at every step, relative
//!   1e-12, and the warmup lengths (HF ceil, EasyR1 floor) exactly;
//! - `token_ce_sum` / `sft_loss` = `ForCausalLMLoss` (sum with `num_items_in_batch`, and mean), and the
//!   gradient w.r.t. the logits, within 1e-6.
use std::collections::BTreeMap;
use std::path::PathBuf;

use r1lab::sft::loss::{Normalization, count_targets, sft_loss, token_ce_sum};
use r1lab::tch::{Device, Kind, Tensor, nn};
use r1lab::train::optim::{AdamW, AdamWConfig, DecayFilter, Frozen, StatePrecision};
use r1lab::train::schedule::{LrSchedule, warmup_steps_easyr1, warmup_steps_hf};
use serde_json::Value;

const TOL: f64 = 1e-6;

fn fixture(name: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/optim").join(format!("{name}.json"));
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}; regenerate with tests/fixtures/optim.py", path.display()));
    serde_json::from_str(&text).unwrap()
}

fn floats(v: &Value) -> Vec<f32> {
    v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap() as f32).collect()
}

fn ints(v: &Value) -> Vec<i64> {
    v.as_array().unwrap().iter().map(|x| x.as_i64().unwrap()).collect()
}

fn flat(t: &Tensor) -> Vec<f32> {
    Vec::<f32>::try_from(&t.to_kind(Kind::Float).reshape([-1])).unwrap()
}

fn max_diff(got: &[f32], want: &[f32]) -> f64 {
    assert_eq!(got.len(), want.len());
    got.iter().zip(want).map(|(a, b)| (*a as f64 - *b as f64).abs()).fold(0.0, f64::max)
}

fn report(what: &str, diff: f64) {
    if std::env::var_os("R1LAB_PARITY_VERBOSE").is_some() {
        eprintln!("{what}: max |diff| {diff:e}");
    }
}

#[test]
fn adamw_with_clipping_matches_torch() {
    let f = fixture("adamw");
    let shapes: BTreeMap<String, Vec<i64>> =
        f["shapes"].as_object().unwrap().iter().map(|(k, v)| (k.clone(), ints(v))).collect();
    let no_decay: Vec<String> = f["no_decay"].as_array().unwrap().iter().map(|s| s.as_str().unwrap().into()).collect();
    let lrs: Vec<f64> = f["lrs"].as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect();
    let max_norm = f["max_norm"].as_f64().unwrap();
    let mut worst: f64 = 0.0;
    for case in f["cases"].as_array().unwrap() {
        let wd = case["weight_decay"].as_f64().unwrap();
        let vs = nn::VarStore::new(Device::Cpu);
        let mut vars = BTreeMap::new();
        for (name, shape) in &shapes {
            let t = Tensor::from_slice(&floats(&f["init"][name])).view(shape.as_slice());
            let (group, leaf) = name.split_once('.').unwrap();
            vars.insert(name.clone(), (vs.root() / group).var_copy(leaf, &t));
        }
        // "b.bias" is in torch's no-decay group; HF's name rule puts it there too.
        let cfg = AdamWConfig {
            beta1: f["betas"][0].as_f64().unwrap(),
            beta2: f["betas"][1].as_f64().unwrap(),
            eps: f["eps"].as_f64().unwrap(),
            weight_decay: wd,
            decay: DecayFilter::HfTrainer,
            states: StatePrecision::F32Moments,
        };
        let mut opt = AdamW::new(&vs, cfg, &Frozen::none()).unwrap();
        let decayed: Vec<&str> = opt.decayed_names();
        assert!(no_decay.iter().all(|n| !decayed.contains(&n.as_str())), "{decayed:?}");
        for (step, lr) in lrs.iter().enumerate() {
            for (name, var) in &vars {
                let g = Tensor::from_slice(&floats(&f["grads"][step][name])).view(shapes[name].as_slice());
                // Put the fixture gradient in place: d/dw sum(w * g) = g.
                (var * &g).sum(Kind::Float).backward();
            }
            let r = opt.clip_and_step(*lr, Some(max_norm)).unwrap();
            assert!(!r.skipped);
            let want_norm = case["norms"][step].as_f64().unwrap();
            let d = (r.grad_norm - want_norm).abs();
            report(&format!("wd {wd} step {step} grad norm"), d);
            assert!(d <= TOL * want_norm.max(1.0), "step {step}: norm {} vs torch {want_norm}", r.grad_norm);
            for (name, var) in &vars {
                let d = max_diff(&flat(var), &floats(&case["after"][step][name]));
                report(&format!("wd {wd} step {step} {name}"), d);
                worst = worst.max(d);
                assert!(d <= TOL, "wd {wd} step {step} {name}: max |diff| {d:e}");
            }
        }
        assert_eq!(opt.steps_done(), lrs.len() as u64);
    }
    eprintln!("AdamW + clip_grad_norm_ vs torch: worst parameter |diff| {worst:e}");
}

#[test]
fn schedules_match_transformers() {
    let f = fixture("schedule");
    for case in f["cases"].as_array().unwrap() {
        let total = case["total"].as_u64().unwrap() as usize;
        let ratio = case["ratio"].as_f64().unwrap();
        let base = case["base_lr"].as_f64().unwrap();
        assert_eq!(warmup_steps_hf(total, ratio) as u64, case["hf_warmup"].as_u64().unwrap(), "HF warmup {case}");
        assert_eq!(warmup_steps_easyr1(total, ratio) as u64, case["easyr1_warmup"].as_u64().unwrap());
        let schedules = [
            ("constant", LrSchedule::easyr1_constant(base, ratio, total)),
            ("cosine", LrSchedule::hf_cosine(base, ratio, total, 0.0)),
            ("cosine_min_lr", LrSchedule::hf_cosine(base, ratio, total, base / 10.0)),
        ];
        for (key, s) in schedules {
            s.validate().unwrap();
            let mut worst: f64 = 0.0;
            for (step, want) in case[key].as_array().unwrap().iter().enumerate() {
                let want = want.as_f64().unwrap();
                let got = s.lr(step);
                let rel = (got - want).abs() / base;
                worst = worst.max(rel);
                assert!(rel <= 1e-12, "{key} total {total} step {step}: {got} vs transformers {want}");
            }
            report(&format!("{key} total {total} (relative to base lr)"), worst);
        }
    }
}

#[test]
fn sft_cross_entropy_matches_for_causal_lm_loss() {
    let f = fixture("sft_ce");
    let shape = ints(&f["shape"]);
    let logits = Tensor::from_slice(&floats(&f["logits"])).view(shape.as_slice()).set_requires_grad(true);
    let labels = Tensor::from_slice(&ints(&f["labels"])).view([shape[0], shape[1]]);
    let n = f["targets"].as_i64().unwrap();
    assert_eq!(count_targets(&labels), n);
    let (sum, count) = token_ce_sum(&logits, &labels).unwrap();
    assert_eq!(count, n);
    let d = (sum.double_value(&[]) - f["sum"].as_f64().unwrap()).abs();
    report("CE sum", d);
    assert!(d <= TOL * f["sum"].as_f64().unwrap().abs().max(1.0), "CE sum diff {d:e}");
    sum.backward();
    let d = max_diff(&flat(&logits.grad()), &floats(&f["grad_sum"]));
    report("dCE/dlogits", d);
    assert!(d <= TOL, "grad diff {d:e}");
    let mean = sft_loss(&logits, &labels, Normalization::MicroBatchTokenMean { micro_batches: 1 }).unwrap();
    let global = sft_loss(&logits, &labels, Normalization::GlobalTokenMean { step_targets: n }).unwrap();
    let want = f["mean"].as_f64().unwrap();
    for (what, got) in [("mean", mean), ("sum / num_items_in_batch", global)] {
        let d = (got.double_value(&[]) - want).abs();
        report(what, d);
        assert!(d <= TOL, "{what}: {} vs ForCausalLMLoss {want}", got.double_value(&[]));
    }
}
