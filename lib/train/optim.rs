//! AdamW over a `VarStore` with explicit settings, frozen parameters, and global grad-norm clipping that
//! reports the norm and skips the update when it is not finite (papers_spec §0.2 item 7, §1.3, §2.3).
//!
//! Implements, per trainable parameter `p` with gradient `g` at optimizer step `t` (1-based), exactly the
//! operation sequence of PyTorch 2.11 `torch.optim.AdamW` (`_single_tensor_adam`, `decoupled_weight_decay`):
//! ```text
//! p  ← p·(1 − lr·wd)                       (only when wd ≠ 0 and p is in the decay group)
//! m  ← lerp(m, g, 1 − β1)
//! v  ← v·β2 + (1 − β2)·g·g
//! p  ← p − (lr / (1 − β1^t)) · m / (sqrt(v) / sqrt(1 − β2^t) + ε)
//! ```
//! (Loshchilov & Hutter 2019, arXiv 1711.05101, Algorithm 2, as PyTorch writes it). Scalars are computed in
//! f64 as Python does; `addcmul`/`addcdiv` with a value are written as `addcmul(g, g·c)` / `addcdiv(m·c, d)`,
//! which evaluates the same float expression as ATen's CPU kernel (`self + c·t1·t2`), so f32 results are
//! bit-identical to `torch.optim.AdamW(foreach=False)` (tests/optim_parity.rs).
//!
//! [`clip_grad_norm`](AdamW::clip_grad_norm) is `torch.nn.utils.clip_grad_norm_` (L2): per-gradient norms,
//! the norm of their stack, `coef = min(max_norm / (total + 1e-6), 1)`, every gradient multiplied by `coef`.
//!
//! Settings of the papers' frameworks (all explicit in [`AdamWConfig`], no hidden defaults):
//! - EasyR1 605e106 (RL, both papers): `torch.optim.AdamW(filter(requires_grad, params), lr, betas=(0.9,
//!   0.999), weight_decay=1e-2)`, one group, *every* parameter decayed ([`DecayFilter::All`]); grad clip
//!   1.0; when the norm is not finite it prints "Gradient norm is not finite. Skip update." and skips
//!   `optimizer.step()`, then `zero_grad()` ([`AdamW::clip_and_step`]).
//! - LLaMA-Factory SFT (HF `Trainer.create_optimizer`): two groups, no decay for names matching
//!   `bias|layernorm|rmsnorm|(^|.)norm($|.)|_norm($|.)` (lower-cased; transformers 5.17
//!   `get_decay_parameter_names`) or inside `nn.LayerNorm` ([`DecayFilter::HfTrainer`]); betas 0.9/0.999,
//!   eps 1e-8, `max_grad_norm` 1.0. Both SFT configs leave `weight_decay` at HF's default 0.0, so the
//!   grouping changes nothing for them. Qwen2.5-VL has no `nn.LayerNorm` (its norms are RMSNorm), so the
//!   name patterns are the whole rule; note that the vision blocks' `norm1`/`norm2` and the merger's `ln_q`
//!   match none of them and *are* decayed by HF.
//! - Frozen parameters (LLaMA-Factory `freeze_vision_tower` / `freeze_multi_modal_projector`, the text-RL
//!   stage) are selected by key prefix ([`Frozen`]); they get `requires_grad_(false)` (no gradient is
//!   computed or stored) and no optimizer state.
//!
//! Low-precision parameters: [`StatePrecision`] names where the moments and the update live for a bf16 parameter
//! (manifest key `optimizer.states`): f32 moments with the update rounded back every step (the default; PyTorch
//! keeps the moments in the parameter dtype, which is [`StatePrecision::ParamDtype`]), or an f32 master copy. For
//! f32 parameters (the embedded default) all three compute the same. Under `ParamDtype` the `addcmul` operand
//! `g·(1 − β2)` is rounded to bf16 before the multiply-add (PyTorch applies `value` inside the kernel).
//!
//! Deviations: the grad norm is accumulated in f32 whatever the gradient dtype (PyTorch uses the gradient dtype). A skipped step does not advance the step count `t`
//! (as in EasyR1, where `optimizer.step()` is not called).
use anyhow::{Context, Result, ensure};
use regex::Regex;
use tch::{Kind, Tensor, nn};

/// Key prefixes of Qwen2.5-VL's vision tower without the merger (LLaMA-Factory `freeze_vision_tower`).
pub const VISION_TOWER_PREFIXES: [&str; 2] = ["visual.patch_embed.", "visual.blocks."];
/// The key of the step count in [`AdamW::state_tensors`].
pub const STEP_KEY: &str = "adamw.step";
/// Key prefix of Qwen2.5-VL's patch merger (LLaMA-Factory `freeze_multi_modal_projector`).
pub const MERGER_PREFIX: &str = "visual.merger.";

/// Which parameters get weight decay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecayFilter {
    /// Every trainable parameter (EasyR1, plain `torch.optim.AdamW(params)`).
    All,
    /// HF Trainer: no decay for biases and norm weights (by name, see the module doc).
    HfTrainer,
}

impl DecayFilter {
    /// Whether the parameter named `name` is decayed.
    pub fn decays(&self, name: &str) -> bool {
        match self {
            DecayFilter::All => true,
            DecayFilter::HfTrainer => !hf_no_decay(name),
        }
    }
}

fn hf_no_decay(name: &str) -> bool {
    thread_local! {
        static PATTERNS: Vec<Regex> = [r"bias", r"layernorm", r"rmsnorm", r"(?:^|\.)norm(?:$|\.)", r"_norm(?:$|\.)"]
            .iter()
            .map(|p| Regex::new(p).expect("static regex"))
            .collect();
    }
    let lower = name.to_lowercase();
    PATTERNS.with(|ps| ps.iter().any(|p| p.is_match(&lower)))
}

/// Where AdamW keeps its numbers for a parameter stored in a low-precision dtype (bf16); for an f32 parameter the
/// three are the same computation. Bytes of optimizer state per bf16 parameter in brackets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StatePrecision {
    /// f32 moments; the update is computed on an f32 copy of the parameter and rounded back to its dtype every
    /// step, so updates smaller than the dtype's resolution are lost (8 B).
    #[default]
    F32Moments,
    /// f32 moments and an f32 master copy of the parameter that the updates accumulate in; the parameter is the
    /// master rounded to its dtype (mixed precision as Megatron-LM and FSDP `MixedPrecision` do it) (12 B).
    F32Master,
    /// Moments in the parameter's dtype and the arithmetic too: plain `torch.optim.AdamW` on bf16 parameters, the
    /// memory-lean choice (4 B).
    ParamDtype,
}

impl StatePrecision {
    /// The dtype of the moments for a parameter of `kind`.
    fn moment_kind(self, kind: Kind) -> Kind {
        match self {
            Self::ParamDtype => kind,
            Self::F32Moments | Self::F32Master => Kind::Float,
        }
    }

    /// Whether a parameter of `kind` gets an f32 master copy.
    fn has_master(self, kind: Kind) -> bool {
        self == Self::F32Master && kind != Kind::Float
    }
}

/// AdamW hyper-parameters, all explicit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdamWConfig {
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub weight_decay: f64,
    pub decay: DecayFilter,
    pub states: StatePrecision,
}

impl AdamWConfig {
    /// EasyR1 605e106 `optim` defaults used by both papers' RL: betas (0.9, 0.999), eps 1e-8 (torch), wd 1e-2.
    pub const EASYR1: Self = Self {
        beta1: 0.9,
        beta2: 0.999,
        eps: 1e-8,
        weight_decay: 1e-2,
        decay: DecayFilter::All,
        states: StatePrecision::F32Moments,
    };
    /// LLaMA-Factory / HF Trainer as the SFT configs of both papers leave it: betas (0.9, 0.999), eps 1e-8,
    /// weight decay 0.0, bias/norm exclusion.
    pub const LLAMA_FACTORY_SFT: Self = Self {
        beta1: 0.9,
        beta2: 0.999,
        eps: 1e-8,
        weight_decay: 0.0,
        decay: DecayFilter::HfTrainer,
        states: StatePrecision::F32Moments,
    };

    pub fn validate(&self) -> Result<()> {
        for (name, b) in [("beta1", self.beta1), ("beta2", self.beta2)] {
            ensure!((0.0..1.0).contains(&b), "AdamW {name} must be in [0, 1), got {b}");
        }
        ensure!(self.eps.is_finite() && self.eps >= 0.0, "AdamW eps must be finite and >= 0, got {}", self.eps);
        ensure!(
            self.weight_decay.is_finite() && self.weight_decay >= 0.0,
            "AdamW weight_decay must be finite and >= 0, got {}",
            self.weight_decay
        );
        Ok(())
    }
}

/// Parameters excluded from training, by key prefix (e.g. [`VISION_TOWER_PREFIXES`], [`MERGER_PREFIX`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Frozen {
    pub prefixes: Vec<String>,
}

impl Frozen {
    pub fn none() -> Self {
        Self::default()
    }

    pub fn prefixes<S: AsRef<str>>(prefixes: &[S]) -> Self {
        Self { prefixes: prefixes.iter().map(|s| s.as_ref().to_string()).collect() }
    }

    /// The vision tower, and the merger too when `merger` is true.
    pub fn vision(merger: bool) -> Self {
        let mut f = Self::prefixes(&VISION_TOWER_PREFIXES);
        if merger {
            f.prefixes.push(MERGER_PREFIX.to_string());
        }
        f
    }

    pub fn contains(&self, name: &str) -> bool {
        self.prefixes.iter().any(|p| name.starts_with(p.as_str()))
    }
}

/// One trainable parameter and its AdamW state.
#[derive(Debug)]
struct Param {
    name: String,
    tensor: Tensor,
    exp_avg: Tensor,
    exp_avg_sq: Tensor,
    /// The f32 master copy ([`StatePrecision::F32Master`] on a non-f32 parameter).
    master: Option<Tensor>,
    decay: bool,
}

/// What one optimizer step did.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepReport {
    /// Global L2 norm of the gradients before clipping (f32 accumulation).
    pub grad_norm: f64,
    /// The learning rate passed to the step.
    pub lr: f64,
    /// True when the norm was not finite: no parameter changed, gradients were zeroed.
    pub skipped: bool,
}

/// AdamW over the trainable variables of a `VarStore` (see the module doc).
#[derive(Debug)]
pub struct AdamW {
    cfg: AdamWConfig,
    params: Vec<Param>,
    /// Optimizer steps applied (PyTorch's per-parameter `step`, equal for all parameters here).
    step: u64,
}

impl AdamW {
    /// Collects the store's trainable variables (sorted by name), freezing those under `frozen`. Freezing is
    /// `requires_grad_(false)` on the store's variables, so it persists for every later optimizer and forward;
    /// variables already not requiring grad are skipped. Every frozen prefix must match some variable.
    pub fn new(vs: &nn::VarStore, cfg: AdamWConfig, frozen: &Frozen) -> Result<Self> {
        cfg.validate()?;
        let mut vars: Vec<(String, Tensor)> = vs.variables().into_iter().collect();
        vars.sort_by(|a, b| a.0.cmp(&b.0));
        for p in &frozen.prefixes {
            ensure!(
                vars.iter().any(|(n, _)| n.starts_with(p.as_str())),
                "frozen prefix {p:?} matches no variable of the VarStore; check the key names (e.g. 'visual.blocks.')"
            );
        }
        let mut params = Vec::new();
        for (name, mut tensor) in vars {
            if frozen.contains(&name) {
                let _ = tensor.requires_grad_(false);
                continue;
            }
            if !tensor.requires_grad() {
                continue;
            }
            ensure!(
                tensor.is_floating_point(),
                "trainable variable {name} has non-float kind {:?}; freeze it or mark it non-trainable",
                tensor.kind()
            );
            let zeros = || Tensor::zeros(tensor.size(), (cfg.states.moment_kind(tensor.kind()), tensor.device()));
            let (exp_avg, exp_avg_sq) = (zeros(), zeros());
            let decay = cfg.decay.decays(&name);
            let master = cfg.states.has_master(tensor.kind()).then(|| tensor.detach().to_kind(Kind::Float));
            params.push(Param { name, tensor, exp_avg, exp_avg_sq, master, decay });
        }
        ensure!(!params.is_empty(), "no trainable variables left to optimize (all frozen or requires_grad false)");
        Ok(Self { cfg, params, step: 0 })
    }

    pub fn config(&self) -> &AdamWConfig {
        &self.cfg
    }

    /// Optimizer steps applied so far (skipped steps not counted).
    pub fn steps_done(&self) -> u64 {
        self.step
    }

    /// Names of the optimized parameters, sorted.
    pub fn param_names(&self) -> Vec<&str> {
        self.params.iter().map(|p| p.name.as_str()).collect()
    }

    /// Names of the parameters with weight decay, sorted.
    pub fn decayed_names(&self) -> Vec<&str> {
        self.params.iter().filter(|p| p.decay).map(|p| p.name.as_str()).collect()
    }

    /// Sets every gradient to zero (PyTorch `zero_grad(set_to_none=False)`).
    pub fn zero_grad(&mut self) {
        for p in &mut self.params {
            p.tensor.zero_grad();
        }
    }

    /// Global L2 norm of the gradients (f32), and clips them in place to `max_norm` as
    /// `torch.nn.utils.clip_grad_norm_` does. Parameters without a gradient are ignored; with no gradient at
    /// all the norm is 0. Returns the norm before clipping (NaN/inf when a gradient is not finite; the
    /// gradients are then left as they are).
    pub fn clip_grad_norm(&mut self, max_norm: f64) -> Result<f64> {
        ensure!(max_norm > 0.0, "max_norm must be > 0 (got {max_norm}); use grad_norm() to only measure");
        let _guard = tch::no_grad_guard();
        let Some(total) = self.total_norm() else { return Ok(0.0) };
        let norm = total.double_value(&[]);
        if !norm.is_finite() {
            return Ok(norm);
        }
        // Python: max_norm / (total + 1e-6) is `reciprocal(total + 1e-6) * max_norm`, then clamp(max=1).
        let coef = ((&total + 1e-6).reciprocal() * max_norm).clamp_max(1.0);
        for p in &self.params {
            let mut g = p.tensor.grad();
            if g.defined() {
                let _ = g.g_mul_(&coef.to_kind(g.kind()));
            }
        }
        Ok(norm)
    }

    /// Global L2 norm of the gradients (f32), without clipping.
    pub fn grad_norm(&self) -> f64 {
        let _guard = tch::no_grad_guard();
        self.total_norm().map_or(0.0, |t| t.double_value(&[]))
    }

    fn total_norm(&self) -> Option<Tensor> {
        let norms: Vec<Tensor> = self
            .params
            .iter()
            .map(|p| p.tensor.grad())
            .filter(Tensor::defined)
            .map(|g| g.to_kind(Kind::Float).norm())
            .collect();
        if norms.is_empty() {
            return None;
        }
        let device = norms[0].device();
        let norms: Vec<Tensor> = norms.into_iter().map(|n| n.to_device(device)).collect();
        Some(Tensor::stack(&norms, 0).norm())
    }

    /// One AdamW update with learning rate `lr` from the current gradients (no clipping, no zeroing).
    pub fn step(&mut self, lr: f64) -> Result<()> {
        ensure!(lr.is_finite() && lr >= 0.0, "learning rate must be finite and >= 0, got {lr}");
        let _guard = tch::no_grad_guard();
        self.step += 1;
        let c = self.cfg;
        let t = self.step as f64;
        let bias_correction1 = 1.0 - c.beta1.powf(t);
        let bias_correction2 = 1.0 - c.beta2.powf(t);
        let step_size = lr / bias_correction1;
        let bias_correction2_sqrt = bias_correction2.powf(0.5);
        for p in &mut self.params {
            let grad = p.tensor.grad();
            if !grad.defined() {
                continue;
            }
            // The tensor the update is applied to, in the moments' dtype: the parameter itself when the kinds
            // agree, the master copy, or a temporary f32 copy rounded back below.
            let g = grad.to_kind(p.exp_avg.kind());
            let in_place = p.tensor.kind() == p.exp_avg.kind();
            let mut work = match &p.master {
                Some(m) => m.shallow_clone(),
                None if in_place => p.tensor.shallow_clone(),
                None => p.tensor.to_kind(Kind::Float),
            };
            if c.weight_decay != 0.0 && p.decay {
                let _ = work.g_mul_scalar_(1.0 - lr * c.weight_decay);
            }
            let _ = p.exp_avg.lerp_(&g, 1.0 - c.beta1);
            let _ = p.exp_avg_sq.g_mul_scalar_(c.beta2);
            let _ = p.exp_avg_sq.addcmul_(&g, &(&g * (1.0 - c.beta2)));
            let denom = (p.exp_avg_sq.sqrt() / bias_correction2_sqrt) + c.eps;
            let _ = work.addcdiv_(&(&p.exp_avg * (-step_size)), &denom);
            if !in_place || p.master.is_some() {
                p.tensor.copy_(&work);
            }
        }
        Ok(())
    }

    /// The optimizer state for a checkpoint: `{name}.exp_avg`, `{name}.exp_avg_sq` (f32, on the CPU) for every
    /// optimized parameter and [`STEP_KEY`] (a 1-element int64 tensor); write it with
    /// `Tensor::write_safetensors`.
    pub fn state_tensors(&self) -> Vec<(String, Tensor)> {
        let mut out = vec![(STEP_KEY.to_string(), Tensor::from_slice(&[self.step as i64]))];
        for p in &self.params {
            out.push((format!("{}.exp_avg", p.name), p.exp_avg.to_device(tch::Device::Cpu)));
            out.push((format!("{}.exp_avg_sq", p.name), p.exp_avg_sq.to_device(tch::Device::Cpu)));
            if let Some(m) = &p.master {
                out.push((format!("{}.master", p.name), m.to_device(tch::Device::Cpu)));
            }
        }
        out
    }

    /// Restores [`Self::state_tensors`] output into an optimizer built over the same parameters and settings.
    pub fn load_state_tensors(&mut self, named: Vec<(String, Tensor)>) -> Result<()> {
        let mut map: std::collections::HashMap<String, Tensor> = named.into_iter().collect();
        let step = map.remove(STEP_KEY).with_context(|| format!("optimizer state has no {STEP_KEY:?} entry"))?;
        for p in &mut self.params {
            let mut slots = vec![("exp_avg", &mut p.exp_avg), ("exp_avg_sq", &mut p.exp_avg_sq)];
            if let Some(m) = p.master.as_mut() {
                slots.push(("master", m));
            }
            for (suffix, slot) in slots {
                let key = format!("{}.{suffix}", p.name);
                let t = map.remove(&key).with_context(|| {
                    format!("optimizer state has no {key:?}: was it saved with the same frozen prefixes?")
                })?;
                ensure!(
                    t.size() == slot.size(),
                    "optimizer state {key:?} has shape {:?}, parameter wants {:?}",
                    t.size(),
                    slot.size()
                );
                *slot = t.to_kind(slot.kind()).to_device(slot.device());
            }
        }
        ensure!(
            map.is_empty(),
            "optimizer state has entries for parameters not optimized here: {:?}",
            map.keys().collect::<Vec<_>>()
        );
        self.step = u64::try_from(step.int64_value(&[0])).context("negative optimizer step in the state")?;
        Ok(())
    }

    /// EasyR1's `_optimizer_step`: clip to `max_norm` (none when `None`, the norm is still measured), skip the
    /// update when the norm is not finite, otherwise step with `lr`; then zero the gradients either way.
    pub fn clip_and_step(&mut self, lr: f64, max_norm: Option<f64>) -> Result<StepReport> {
        let grad_norm = match max_norm {
            Some(m) => self.clip_grad_norm(m)?,
            None => self.grad_norm(),
        };
        let skipped = !grad_norm.is_finite();
        if !skipped {
            self.step(lr)?;
        }
        self.zero_grad();
        Ok(StepReport { grad_norm, lr, skipped })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Device;

    /// Adds a variable under a dotted key (tch paths cannot take dots in a leaf name).
    fn put(vs: &nn::VarStore, name: &str, t: &Tensor) -> Tensor {
        let mut parts: Vec<&str> = name.split('.').collect();
        let leaf = parts.pop().unwrap();
        parts.iter().fold(vs.root(), |p, s| p / *s).var_copy(leaf, t)
    }

    fn store() -> nn::VarStore {
        let vs = nn::VarStore::new(Device::Cpu);
        let _ = put(&vs, "model.layers.0.mlp.weight", &Tensor::from_slice(&[1.0f32, -2.0, 3.0]));
        let _ = put(&vs, "model.layers.0.input_layernorm.weight", &Tensor::from_slice(&[1.0f32, 1.0]));
        let _ = put(&vs, "model.norm.weight", &Tensor::from_slice(&[0.5f32]));
        let _ = put(&vs, "visual.blocks.0.norm1.weight", &Tensor::from_slice(&[2.0f32]));
        let _ = put(&vs, "visual.merger.mlp.0.bias", &Tensor::from_slice(&[0.1f32]));
        let _ = put(&vs, "visual.patch_embed.proj.weight", &Tensor::from_slice(&[0.0f32]));
        vs
    }

    fn loss(vs: &nn::VarStore) -> Tensor {
        let vars = vs.variables();
        vars.values().map(|t| t.square().sum(Kind::Float)).fold(Tensor::from(0.0f32), |a, b| a + b)
    }

    #[test]
    fn hf_decay_patterns_follow_transformers() {
        let f = DecayFilter::HfTrainer;
        for name in [
            "model.layers.0.self_attn.q_proj.bias",
            "model.layers.0.input_layernorm.weight",
            "model.layers.3.post_attention_layernorm.weight",
            "model.norm.weight",
            "x.q_norm.weight",
            "x.RMSNorm.weight",
        ] {
            assert!(!f.decays(name), "{name} must not be decayed");
        }
        for name in
            ["model.embed_tokens.weight", "visual.blocks.0.norm1.weight", "visual.merger.ln_q.weight", "lm_head.weight"]
        {
            assert!(f.decays(name), "{name} must be decayed (HF's patterns do not match it)");
        }
        assert!(DecayFilter::All.decays("model.norm.weight"));
    }

    #[test]
    fn frozen_prefixes_are_skipped_and_get_no_grad() {
        let vs = store();
        let mut opt = AdamW::new(&vs, AdamWConfig::EASYR1, &Frozen::vision(true)).unwrap();
        assert_eq!(
            opt.param_names(),
            ["model.layers.0.input_layernorm.weight", "model.layers.0.mlp.weight", "model.norm.weight"]
        );
        let vars = vs.variables();
        assert!(!vars["visual.blocks.0.norm1.weight"].requires_grad());
        let before = vars["visual.merger.mlp.0.bias"].copy();
        loss(&vs).backward();
        assert!(!vars["visual.merger.mlp.0.bias"].grad().defined());
        let r = opt.clip_and_step(0.1, Some(1.0)).unwrap();
        assert!(!r.skipped && r.grad_norm > 1.0);
        assert_eq!(opt.steps_done(), 1);
        assert!(vars["visual.merger.mlp.0.bias"].equal(&before));
        let err = AdamW::new(&vs, AdamWConfig::EASYR1, &Frozen::prefixes(&["vision."])).unwrap_err();
        assert!(err.to_string().contains("matches no variable"), "{err}");
    }

    #[test]
    fn decay_groups_follow_the_filter() {
        let vs = store();
        let opt = AdamW::new(&vs, AdamWConfig::LLAMA_FACTORY_SFT, &Frozen::none()).unwrap();
        assert_eq!(
            opt.decayed_names(),
            ["model.layers.0.mlp.weight", "visual.blocks.0.norm1.weight", "visual.patch_embed.proj.weight"]
        );
    }

    #[test]
    fn non_finite_norm_skips_the_step_and_zeroes_grads() {
        let vs = store();
        let mut opt = AdamW::new(&vs, AdamWConfig::EASYR1, &Frozen::none()).unwrap();
        let before: Vec<Tensor> = opt.params.iter().map(|p| p.tensor.copy()).collect();
        (loss(&vs) * f64::NAN).backward();
        let r = opt.clip_and_step(0.1, Some(1.0)).unwrap();
        assert!(r.skipped && r.grad_norm.is_nan());
        assert_eq!(opt.steps_done(), 0);
        for (p, b) in opt.params.iter().zip(&before) {
            assert!(p.tensor.equal(b), "{} changed on a skipped step", p.name);
            assert_eq!(p.tensor.grad().abs().sum(Kind::Float).double_value(&[]), 0.0);
        }
    }

    #[test]
    fn clipping_scales_to_max_norm_and_reports_the_raw_norm() {
        let vs = store();
        let mut opt = AdamW::new(&vs, AdamWConfig::EASYR1, &Frozen::none()).unwrap();
        loss(&vs).backward();
        // grads are 2·w: norm = 2·sqrt(1+4+9+1+1+0.25+4+0.01)
        let want = 2.0 * (20.26f64).sqrt();
        let norm = opt.clip_grad_norm(1.0).unwrap();
        assert!((norm - want).abs() < 1e-5, "{norm} vs {want}");
        assert!((opt.grad_norm() - 1.0).abs() < 1e-5);
        assert!(opt.clip_grad_norm(0.0).is_err());
    }

    #[test]
    fn bf16_parameters_update_through_f32() {
        let mut vs = nn::VarStore::new(Device::Cpu);
        vs.set_kind(Kind::BFloat16);
        let w = vs.root().var_copy("w", &Tensor::from_slice(&[1.0f32, -1.0]));
        let mut opt = AdamW::new(&vs, AdamWConfig::EASYR1, &Frozen::none()).unwrap();
        w.to_kind(Kind::Float).sum(Kind::Float).backward();
        opt.clip_and_step(0.25, Some(1.0)).unwrap();
        assert_eq!(w.kind(), Kind::BFloat16);
        // first Adam step moves each weight by -lr·sign(g) (after decay 1 - 0.25·0.01).
        let got = Vec::<f32>::try_from(&w.to_kind(Kind::Float)).unwrap();
        assert!((got[0] - 0.7475).abs() < 4e-3 && (got[1] + 1.2475).abs() < 8e-3, "{got:?}");
    }

    #[test]
    fn state_round_trip_resumes_identically() {
        let run = |resume: bool| {
            let vs = store();
            let mut opt = AdamW::new(&vs, AdamWConfig::EASYR1, &Frozen::none()).unwrap();
            for k in 0..4 {
                if k == 2 && resume {
                    let dir = tempfile::tempdir().unwrap();
                    let path = dir.path().join("optim.safetensors");
                    Tensor::write_safetensors(&opt.state_tensors(), &path).unwrap();
                    opt = AdamW::new(&vs, AdamWConfig::EASYR1, &Frozen::none()).unwrap();
                    opt.load_state_tensors(Tensor::read_safetensors(&path).unwrap()).unwrap();
                    assert_eq!(opt.steps_done(), 2);
                }
                (loss(&vs) * (k + 1) as f64).backward();
                opt.clip_and_step(0.05, Some(1.0)).unwrap();
            }
            opt.params.iter().map(|p| p.tensor.copy()).collect::<Vec<_>>()
        };
        for (a, b) in run(false).iter().zip(&run(true)) {
            assert!(a.equal(b));
        }
        let vs = store();
        // Build the unfrozen one first: freezing sets requires_grad false on the store's variables.
        let full = AdamW::new(&vs, AdamWConfig::EASYR1, &Frozen::none()).unwrap().state_tensors();
        let mut opt = AdamW::new(&vs, AdamWConfig::EASYR1, &Frozen::vision(false)).unwrap();
        let err = opt.load_state_tensors(full).unwrap_err();
        assert!(err.to_string().contains("not optimized here"), "{err}");
    }

    /// Steps `w` (one variable, gradient 1 everywhere) `n` times with lr 1e-4 under `states`; returns the optimizer.
    fn run_states(kind: Kind, states: StatePrecision, n: usize) -> (nn::VarStore, AdamW) {
        let mut vs = nn::VarStore::new(Device::Cpu);
        vs.set_kind(kind);
        let w = vs.root().var_copy("w", &Tensor::ones([4], (Kind::Float, Device::Cpu)));
        let cfg = AdamWConfig { weight_decay: 0.0, states, ..AdamWConfig::EASYR1 };
        let mut opt = AdamW::new(&vs, cfg, &Frozen::none()).unwrap();
        for _ in 0..n {
            w.to_kind(Kind::Float).sum(Kind::Float).backward();
            opt.step(1e-4).unwrap();
            opt.zero_grad();
        }
        (vs, opt)
    }

    #[test]
    fn a_master_copy_keeps_the_updates_bf16_rounds_away() {
        let value = |vs: &nn::VarStore| vs.variables()["w"].to_kind(Kind::Float).double_value(&[0]);
        // Adam moves w by about lr per step; bf16 cannot represent 1 - 1e-4, so without a master nothing moves.
        for states in [StatePrecision::F32Moments, StatePrecision::ParamDtype] {
            let (vs, opt) = run_states(Kind::BFloat16, states, 100);
            assert_eq!(vs.variables()["w"].kind(), Kind::BFloat16);
            assert_eq!(value(&vs), 1.0, "{states:?}");
            let kind = opt.state_tensors()[1].1.kind();
            assert_eq!(kind, if states == StatePrecision::ParamDtype { Kind::BFloat16 } else { Kind::Float });
        }
        let (vs, opt) = run_states(Kind::BFloat16, StatePrecision::F32Master, 100);
        assert!((value(&vs) - 0.99).abs() < 4e-3, "the bf16 weight follows the f32 master: {}", value(&vs));
        let state = opt.state_tensors();
        let master = state.iter().find(|(k, _)| k == "w.master").expect("the master is checkpointed");
        assert!((master.1.double_value(&[0]) - 0.99).abs() < 1e-4);
        // A resumed optimizer gets the master back.
        let (vs2, mut fresh) = run_states(Kind::BFloat16, StatePrecision::F32Master, 0);
        fresh.load_state_tensors(state.iter().map(|(k, t)| (k.clone(), t.shallow_clone())).collect()).unwrap();
        assert_eq!(fresh.state_tensors().iter().find(|(k, _)| k == "w.master").unwrap().1, master.1);
        drop(vs2);
        // For f32 parameters the three are the same computation, with no master.
        let f32_of = |s| run_states(Kind::Float, s, 5);
        let (a, oa) = f32_of(StatePrecision::F32Moments);
        for s in [StatePrecision::F32Master, StatePrecision::ParamDtype] {
            let (b, ob) = f32_of(s);
            assert_eq!(a.variables()["w"], b.variables()["w"], "{s:?}");
            assert_eq!(oa.state_tensors().len(), ob.state_tensors().len());
        }
    }
}
