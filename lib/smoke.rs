//! `r1lab smoke`: the smallest end-to-end path through the stack, a device check in seconds: a small MLP trained
//! with AdamW on the chosen device through libtorch, per-step metrics written with polars to parquet, a loss curve
//! drawn with plotters, and a summary with the environment, all written atomically under one output folder. (The
//! embedded default's real pipeline is [`crate::demo`].)
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Result, bail};
use polars::prelude::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use tch::nn::{self, Module, OptimizerConfig};
use tch::{Device, Kind, Tensor};

use crate::backend::{DeviceSpec, EnvInfo};
use crate::io::{write_atomic, write_atomic_with};
use crate::plot::{LineChart, Series};

#[derive(Debug, Clone)]
pub struct SmokeConfig {
    pub steps: usize,
    pub seed: u64,
    pub lr: f64,
    pub hidden: i64,
    pub out: PathBuf,
}

impl Default for SmokeConfig {
    fn default() -> Self {
        Self { steps: 300, seed: 0, lr: 3e-2, hidden: 64, out: PathBuf::from("artifacts/runs/smoke") }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct SmokeReport {
    pub steps: usize,
    pub seed: u64,
    pub first_loss: f64,
    pub final_loss: f64,
    /// Mean squared error on a held-out grid, after training.
    pub eval_mse: f64,
    pub wall_seconds: f64,
    pub env: EnvInfo,
    pub files: Vec<String>,
}

/// Fits `y = sin(3x)` (plus noise) on [-1, 1] and writes `metrics.parquet`, `loss.png` and
/// `summary.json` into `cfg.out`.
pub fn run(cfg: &SmokeConfig, spec: DeviceSpec, device: Device) -> Result<SmokeReport> {
    if cfg.steps == 0 {
        bail!("--steps must be at least 1");
    }
    let start = Instant::now();
    // All randomness comes from one named stream, not libtorch's global generator, so the run
    // is reproducible even when other code draws random numbers concurrently.
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
    let x = Tensor::linspace(-1.0, 1.0, 256, (Kind::Float, device)).unsqueeze(1);
    let noise = Tensor::from_slice(&uniform(&mut rng, 256, 0.05)).to(device).unsqueeze(1);
    let y = (&x * 3.0).sin() + noise;
    let vs = nn::VarStore::new(device);
    let fc1 = linear(&(vs.root() / "fc1"), 1, cfg.hidden, &mut rng);
    let fc2 = linear(&(vs.root() / "fc2"), cfg.hidden, 1, &mut rng);
    let model = nn::seq().add(fc1).add_fn(|t| t.tanh()).add(fc2);
    let mut opt = nn::AdamW::default().wd(0.0).build(&vs, cfg.lr)?;

    let (mut steps, mut losses, mut lrs) = (Vec::new(), Vec::new(), Vec::new());
    for step in 0..cfg.steps {
        let lr = cosine_lr(cfg.lr, step, cfg.steps);
        opt.set_lr(lr);
        let loss = model.forward(&x).mse_loss(&y, tch::Reduction::Mean);
        opt.backward_step(&loss);
        let value = loss.double_value(&[]);
        if !value.is_finite() {
            bail!("loss became {value} at step {step}; lower --lr (now {})", cfg.lr);
        }
        steps.push(step as i64);
        losses.push(value);
        lrs.push(lr);
    }
    let grid = Tensor::linspace(-1.0, 1.0, 97, (Kind::Float, device)).unsqueeze(1);
    let eval_mse =
        tch::no_grad(|| model.forward(&grid).mse_loss(&(&grid * 3.0).sin(), tch::Reduction::Mean)).double_value(&[]);

    let out = &cfg.out;
    let mut metrics = df!("step" => &steps, "loss" => &losses, "lr" => &lrs)?;
    write_atomic_with(&out.join("metrics.parquet"), |w| {
        ParquetWriter::new(w).finish(&mut metrics)?;
        Ok(())
    })?;
    LineChart::new("demo: training loss", "step", "MSE")
        .series(Series::from_values("train loss", losses.iter().copied()))
        .save_png(&out.join("loss.png"))?;
    let files = ["metrics.parquet", "loss.png", "summary.json"].map(|f| display(&out.join(f))).to_vec();
    let report = SmokeReport {
        steps: cfg.steps,
        seed: cfg.seed,
        first_loss: losses[0],
        final_loss: *losses.last().unwrap(),
        eval_mse,
        wall_seconds: start.elapsed().as_secs_f64(),
        env: EnvInfo::collect(spec, device),
        files,
    };
    write_atomic(&out.join("summary.json"), &serde_json::to_vec_pretty(&report)?)?;
    Ok(report)
}

/// A linear layer initialised like PyTorch's default (uniform in ±1/sqrt(fan_in)) from `rng`.
fn linear(path: &nn::Path, fan_in: i64, fan_out: i64, rng: &mut ChaCha8Rng) -> nn::Linear {
    let zero = nn::LinearConfig { ws_init: nn::Init::Const(0.0), bs_init: Some(nn::Init::Const(0.0)), bias: true };
    let mut layer = nn::linear(path, fan_in, fan_out, zero);
    let bound = 1.0 / (fan_in as f32).sqrt();
    let w = Tensor::from_slice(&uniform(rng, (fan_in * fan_out) as usize, bound)).view([fan_out, fan_in]);
    let b = Tensor::from_slice(&uniform(rng, fan_out as usize, bound));
    tch::no_grad(|| {
        layer.ws.copy_(&w);
        layer.bs.as_mut().expect("bias requested").copy_(&b);
    });
    layer
}

fn uniform(rng: &mut ChaCha8Rng, n: usize, bound: f32) -> Vec<f32> {
    (0..n).map(|_| rng.random_range(-bound..bound)).collect()
}

/// Cosine decay from `base` to 0 over `total` steps.
fn cosine_lr(base: f64, step: usize, total: usize) -> f64 {
    0.5 * base * (1.0 + (std::f64::consts::PI * step as f64 / total as f64).cos())
}

fn display(p: &Path) -> String {
    p.display().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cosine_schedule_starts_at_base_and_decays() {
        assert_eq!(cosine_lr(1.0, 0, 10), 1.0);
        assert!((cosine_lr(1.0, 5, 10) - 0.5).abs() < 1e-12);
        assert!(cosine_lr(1.0, 9, 10) < 0.03);
    }

    #[test]
    fn trains_and_writes_every_artefact() {
        let tmp = tempfile::tempdir().unwrap();
        let cfg = SmokeConfig { out: tmp.path().join("run"), ..Default::default() };
        let report = run(&cfg, DeviceSpec::Cpu, Device::Cpu).unwrap();
        assert!(report.final_loss < report.first_loss * 0.05, "{report:?}");
        assert!(report.eval_mse < 0.02, "eval mse {}", report.eval_mse);
        let df = ParquetReader::new(std::fs::File::open(cfg.out.join("metrics.parquet")).unwrap()).finish().unwrap();
        assert_eq!(df.shape(), (300, 3));
        let summary: serde_json::Value =
            serde_json::from_slice(&std::fs::read(cfg.out.join("summary.json")).unwrap()).unwrap();
        assert_eq!(summary["steps"], 300);
        image::open(cfg.out.join("loss.png")).unwrap();
    }

    #[test]
    fn same_seed_same_losses() {
        let tmp = tempfile::tempdir().unwrap();
        let a = run(
            &SmokeConfig { steps: 20, out: tmp.path().join("a"), ..Default::default() },
            DeviceSpec::Cpu,
            Device::Cpu,
        )
        .unwrap();
        let b = run(
            &SmokeConfig { steps: 20, out: tmp.path().join("b"), ..Default::default() },
            DeviceSpec::Cpu,
            Device::Cpu,
        )
        .unwrap();
        assert_eq!(a.final_loss, b.final_loss);
    }

    #[test]
    fn divergence_is_reported_with_the_step() {
        let tmp = tempfile::tempdir().unwrap();
        let cfg = SmokeConfig { steps: 50, lr: 1e30, out: tmp.path().join("x"), ..Default::default() };
        let err = run(&cfg, DeviceSpec::Cpu, Device::Cpu).unwrap_err().to_string();
        assert!(err.contains("loss became") && err.contains("lower --lr"), "{err}");
        assert!(!cfg.out.join("summary.json").exists());
    }
}
