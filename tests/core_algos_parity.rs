//! Parity of lib/rl/{advantage,loss,kl,entropy}.rs with verl 0.9.1 `verl.trainer.ppo.core_algos` on the
//! fixtures written by tests/fixtures/core_algos.py (float32 inputs and verl's float32 outputs; no Python
//! runs here), and of the ReVisual fork's policy loss with a transcription of its formula (revisual_fork.json).
//! Tolerance: 1e-6 absolute, in float32 (observed: bit-equal except ≤ 1.4e-17 from float64 metric sums).
//! `R1LAB_PARITY_VERBOSE=1 cargo test --test core_algos_parity -- --nocapture` prints every difference.
use std::path::PathBuf;

use r1lab::rl::advantage::{self, AdvantageConfig, Estimator};
use r1lab::rl::entropy::{EntropyEstimator, token_entropy};
use r1lab::rl::kl::KlEstimator;
use r1lab::rl::loss::{Aggregation, LogRatioClamp, MiniBatchScale, PolicyInputs, PolicyLoss, Surrogate, masked_mean};
use serde_json::Value;
use tch::Tensor;

const TOL: f64 = 1e-6;

fn fixture(name: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/core_algos").join(format!("{name}.json"));
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}; regenerate with tests/fixtures/core_algos.py", path.display()));
    serde_json::from_str(&text).unwrap()
}

fn floats(v: &Value) -> Vec<f32> {
    v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap() as f32).collect()
}

fn shape(v: &Value) -> Vec<i64> {
    v["shape"].as_array().unwrap().iter().map(|x| x.as_i64().unwrap()).collect()
}

fn tensor(v: &Value, key: &str, shape: &[i64]) -> Tensor {
    Tensor::from_slice(&floats(&v[key])).view(shape)
}

fn flat(t: &Tensor) -> Vec<f32> {
    Vec::<f32>::try_from(&t.reshape([-1])).unwrap()
}

fn report(what: &str, diff: f64) {
    if std::env::var_os("R1LAB_PARITY_VERBOSE").is_some() {
        eprintln!("{what}: |diff| {diff:e}");
    }
}

fn assert_close(what: &str, got: &[f32], want: &[f32]) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    let worst = got.iter().zip(want).map(|(a, b)| (*a as f64 - *b as f64).abs()).fold(0.0, f64::max);
    report(what, worst);
    assert!(worst <= TOL, "{what}: max |diff| {worst:e} > {TOL:e}\n got  {got:?}\n want {want:?}");
}

fn assert_scalar(what: &str, got: f64, want: f64) {
    report(what, (got - want).abs());
    assert!((got - want).abs() <= TOL, "{what}: got {got}, verl {want}, diff {:e}", (got - want).abs());
}

#[test]
fn grpo_and_dr_grpo_advantages_match_verl() {
    let f = fixture("advantages");
    let s = shape(&f);
    let (rewards, mask) = (tensor(&f, "token_rewards", &s), tensor(&f, "mask", &s));
    let ids: Vec<usize> = f["group_ids"].as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as usize).collect();
    let grpo = AdvantageConfig::default();
    let (adv, stats) = advantage::token_advantages(&grpo, &rewards, &mask, &ids).unwrap();
    assert_close("grpo", &flat(&adv), &floats(&f["grpo"]));
    // Six groups: one size-1; the 0.3 × 7 and 1.0 × 4 groups have zero variance.
    assert_eq!((stats.groups, stats.singleton_groups, stats.zero_variance_groups), (6, 1, 2));
    assert!((stats.zero_variance_fraction() - 0.4).abs() < 1e-12);
    let dr = AdvantageConfig { estimator: Estimator::DrGrpo, ..grpo };
    let (adv, _) = advantage::token_advantages(&dr, &rewards, &mask, &ids).unwrap();
    assert_close("drgrpo", &flat(&adv), &floats(&f["drgrpo"]));
}

fn surrogate(case: &Value) -> Surrogate {
    let (eps_low, eps_high) = (case["eps_low"].as_f64().unwrap(), case["eps_high"].as_f64().unwrap());
    match case["surrogate"].as_str().unwrap() {
        // verl's vanilla loss with clip_ratio_c = 1e10: the dual clip never binds.
        "ppo_clip" | "clip_higher" => Surrogate::PpoClip { eps_low, eps_high },
        "dual_clip" | "dual_clip_higher" => {
            Surrogate::DualClip { eps_low, eps_high, c: case["dual_c"].as_f64().unwrap() }
        }
        other => panic!("unknown surrogate {other}"),
    }
}

/// Our aggregation and mini-batch totals for verl's `loss_agg_mode` + `global_batch_info` of one case.
fn aggregation(name: &str, mask: &Tensor, global: &Value) -> (Aggregation, MiniBatchScale) {
    let local = MiniBatchScale::single(mask).unwrap();
    let g = |k: &str| global[k].as_f64().unwrap();
    let with_seqs = MiniBatchScale { sequences: g("global_batch_size"), ..local };
    let len = g("loss_scale_factor") as usize;
    match name {
        "micro_token_mean" => (Aggregation::MicroBatchTokenMean, local),
        "global_token_mean" => {
            (Aggregation::GlobalTokenMean, MiniBatchScale { tokens: g("batch_num_tokens"), ..local })
        }
        "seq_mean_token_mean" => (Aggregation::SeqMeanTokenMean, local),
        "seq_mean_token_mean_global" => (Aggregation::SeqMeanTokenMean, with_seqs),
        "constant_length" => (Aggregation::ConstantLength { len }, local),
        "constant_length_global" => (Aggregation::ConstantLength { len }, with_seqs),
        other => panic!("unknown aggregation {other}"),
    }
}

#[test]
fn every_surrogate_and_aggregation_matches_verl_policy_loss() {
    let f = fixture("policy_loss");
    let s = shape(&f);
    let (mask, old, adv) = (tensor(&f, "mask", &s), tensor(&f, "old_log_probs", &s), tensor(&f, "advantages", &s));
    let cases = f["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 24);
    for case in cases {
        let label = format!("{} / {}", case["surrogate"], case["aggregation"]);
        let (aggregation, scale) = aggregation(case["aggregation"].as_str().unwrap(), &mask, &f["global"]);
        let loss = PolicyLoss { surrogate: surrogate(case), log_ratio_clamp: LogRatioClamp::VERL, aggregation };
        let logp = tensor(&f, "log_probs", &s).set_requires_grad(true);
        let x = PolicyInputs { log_probs: &logp, old_log_probs: &old, advantages: &adv, response_mask: &mask };
        let (value, m) = loss.compute(&x, &scale).unwrap();
        assert_scalar(&format!("{label} loss"), value.double_value(&[]), case["loss"].as_f64().unwrap());
        assert_scalar(&format!("{label} clip_frac"), m.clip_frac, case["clip_frac"].as_f64().unwrap());
        assert_scalar(
            &format!("{label} clip_frac_lower"),
            m.clip_frac_lower,
            case["clip_frac_lower"].as_f64().unwrap(),
        );
        assert_scalar(&format!("{label} ppo_kl"), m.ppo_kl, case["ppo_kl"].as_f64().unwrap());
        if !case["grad"].is_null() {
            value.backward();
            assert_close(&format!("{label} d loss / d log_probs"), &flat(&logp.grad()), &floats(&case["grad"]));
        }
    }
}

#[test]
fn aggregation_alone_matches_verl_agg_loss() {
    let f = fixture("policy_loss");
    let s = shape(&f);
    let (mask, loss_mat) = (tensor(&f, "mask", &s), tensor(&f, "loss_mat", &s));
    for (name, want) in f["agg"].as_object().unwrap() {
        let (aggregation, scale) = aggregation(name, &mask, &f["global"]);
        let got = aggregation.aggregate(&loss_mat, &mask, &scale).unwrap().double_value(&[]);
        assert_scalar(&format!("agg_loss {name}"), got, want.as_f64().unwrap());
    }
}

#[test]
fn kl_estimators_match_verl_kl_penalty() {
    let f = fixture("kl");
    let s = shape(&f);
    let (mask, reference) = (tensor(&f, "mask", &s), tensor(&f, "ref_log_probs", &s));
    for (name, estimator) in [("k1", KlEstimator::K1), ("k2", KlEstimator::K2), ("k3", KlEstimator::K3)] {
        let logp = tensor(&f, "log_probs", &s).set_requires_grad(true);
        let per_token = estimator.per_token(&logp, &reference).unwrap();
        assert_close(name, &flat(&per_token), &floats(&f[name]));
        let scale = MiniBatchScale::single(&mask).unwrap();
        let mean = Aggregation::MicroBatchTokenMean.aggregate(&per_token, &mask, &scale).unwrap();
        assert_scalar(
            &format!("{name} token-mean"),
            mean.double_value(&[]),
            f[format!("{name}_token_mean")].as_f64().unwrap(),
        );
        mean.backward();
        assert_close(&format!("{name} grad"), &flat(&logp.grad()), &floats(&f[format!("{name}_grad")]));
    }
}

#[test]
fn entropy_from_logits_matches_verl() {
    let f = fixture("entropy");
    let s = shape(&f);
    let mask = tensor(&f, "mask", &s[..2]);
    let logits = tensor(&f, "logits", &s).set_requires_grad(true);
    assert_close("token entropy", &flat(&token_entropy(&logits)), &floats(&f["token_entropy"]));
    let logp = Tensor::zeros(&s[..2], tch::kind::FLOAT_CPU);
    let per_token = EntropyEstimator::FromLogits.per_token(Some(&logits), &logp).unwrap();
    let scale = MiniBatchScale::single(&mask).unwrap();
    let token_mean = Aggregation::MicroBatchTokenMean.aggregate(&per_token, &mask, &scale).unwrap();
    assert_scalar("entropy token-mean", token_mean.double_value(&[]), f["token_mean"].as_f64().unwrap());
    let seq = Aggregation::SeqMeanTokenMean.aggregate(&per_token, &mask, &scale).unwrap();
    assert_scalar("entropy seq-mean-token-mean", seq.double_value(&[]), f["seq_mean_token_mean"].as_f64().unwrap());
    assert_scalar("masked_mean", masked_mean(&per_token, &mask).double_value(&[]), f["token_mean"].as_f64().unwrap());
    token_mean.backward();
    assert_close("entropy grad", &flat(&logits.grad()), &floats(&f["token_mean_grad"]));
}

/// The ReVisual fork's loss (pre-clip [1e-3, 1e3], ε 0.2/0.25, dual clip 3) has no verl function; the fixture
/// holds a transcription of the fork's formula. Our clipped ratio is `clamp(r)`, the fork's `exp(clamp(log r))`
/// (a documented deviation), so this also bounds that difference.
#[test]
fn revisual_fork_loss_matches_its_formula() {
    let inputs = fixture("policy_loss");
    let want = fixture("revisual_fork");
    let s = shape(&inputs);
    let (mask, old, adv) =
        (tensor(&inputs, "mask", &s), tensor(&inputs, "old_log_probs", &s), tensor(&inputs, "advantages", &s));
    let logp = tensor(&inputs, "log_probs", &s).set_requires_grad(true);
    let x = PolicyInputs { log_probs: &logp, old_log_probs: &old, advantages: &adv, response_mask: &mask };
    let (value, m) = PolicyLoss::revisual().compute(&x, &MiniBatchScale::single(&mask).unwrap()).unwrap();
    assert_scalar("revisual loss", value.double_value(&[]), want["loss"].as_f64().unwrap());
    assert_scalar("revisual clip_frac", m.clip_frac, want["clip_frac"].as_f64().unwrap());
    assert_scalar("revisual clip_frac_lower", m.clip_frac_lower, want["clip_frac_lower"].as_f64().unwrap());
    assert_scalar("revisual ppo_kl", m.ppo_kl, want["ppo_kl"].as_f64().unwrap());
    value.backward();
    assert_close("revisual grad", &flat(&logp.grad()), &floats(&want["grad"]));
}
