//! Speed benchmarks (`r1lab bench rollout|update`): r1lab's generation and GRPO update on a Qwen2.5-VL config with
//! fresh random weights (the real 7B config by default: no download), measured against the same workload run with
//! transformers / plain PyTorch by `scripts/bench/hf_baseline.py` on the same machine in the same run. Prints
//! tokens/s, step time, peak memory, MFU, the roofline fraction and the ratios, and writes them as JSON.
//!
//! Benchmarks, not tests: nothing here asserts a speed. The denominators are in [`device`], the work counts in
//! [`cost`].
pub mod cli;
pub mod cost;
pub mod device;
pub mod rollout;
pub mod update;

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, ensure};
use tch::{Device, Kind};

use crate::model::qwen2_5_vl::Qwen2_5_VL;
use crate::model::qwen2_5_vl::config::Config;

/// The published Qwen2.5-VL-7B-Instruct `config.json` (as transformers re-saves it).
pub const QWEN2_5_VL_7B_CONFIG: &str =
    include_str!("../../tests/fixtures/qwen2_5_vl_config/qwen2_5_vl_7b_instruct.resaved.config.json");

/// Which model config a benchmark builds.
#[derive(Debug, Clone, PartialEq)]
pub enum ModelChoice {
    /// Qwen2.5-VL-7B-Instruct's config.
    Qwen7b,
    /// A `config.json` file (e.g. `assets/tiny-base/config.json` for a CPU run).
    File(PathBuf),
}

impl std::str::FromStr for ModelChoice {
    type Err = anyhow::Error;

    fn from_str(s: &str) -> Result<Self> {
        Ok(match s {
            "7b" | "qwen2.5-vl-7b" => Self::Qwen7b,
            path => Self::File(PathBuf::from(path)),
        })
    }
}

impl ModelChoice {
    /// The config's JSON text and where it came from.
    pub fn json(&self) -> Result<(String, String)> {
        match self {
            Self::Qwen7b => Ok((QWEN2_5_VL_7B_CONFIG.to_string(), "Qwen2.5-VL-7B-Instruct config.json".into())),
            Self::File(p) => {
                let text = std::fs::read_to_string(p)
                    .with_context(|| format!("reading the model config {}; pass 7b or a config.json", p.display()))?;
                Ok((text, p.display().to_string()))
            }
        }
    }
}

/// One measured phase of a workload.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Phase {
    pub name: String,
    pub time_s: f64,
    pub peak_memory: Option<u64>,
}

/// Raw measurements of one implementation on one workload.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Measured {
    /// Seconds per timed iteration (one generation, or one optimizer step).
    pub iter_times_s: Vec<f64>,
    /// A prefill alone (rollouts).
    pub prefill_s: Option<f64>,
    pub phases: Vec<Phase>,
    /// Peak memory over the timed iterations, bytes (see [`device::MemoryProbe`]).
    pub peak_memory: Option<u64>,
}

/// The median of non-empty `xs`.
pub fn median(xs: &[f64]) -> f64 {
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n == 0 {
        f64::NAN
    } else if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// Builds the benchmark model: fresh weights, seeded, every parameter trainable.
pub fn build_model(cfg: &Config, device: Device, kind: Kind, seed: u64) -> Result<Qwen2_5_VL> {
    ensure!(matches!(kind, Kind::Float | Kind::BFloat16), "benchmarks run in f32 or bf16");
    tch::manual_seed(seed as i64);
    Qwen2_5_VL::with_fresh_weights(cfg, device, kind)
}

/// Runs `script` with `python` (the transformers baseline) and parses the JSON it writes to `out`.
pub fn run_baseline(python: &Path, script: &Path, args: &[String], out: &Path) -> Result<serde_json::Value> {
    ensure!(script.exists(), "the baseline script {} does not exist; run from the repository root", script.display());
    let status = std::process::Command::new(python)
        .arg(script)
        .args(args)
        .arg("--out")
        .arg(out)
        .status()
        .with_context(|| format!("starting {} {}", python.display(), script.display()))?;
    ensure!(status.success(), "the baseline {} failed ({status}); its error is printed above", script.display());
    let text = std::fs::read_to_string(out).with_context(|| format!("reading the baseline's {}", out.display()))?;
    serde_json::from_str(&text).with_context(|| format!("parsing the baseline's {}", out.display()))
}

/// The baseline's measurements from its JSON (`iter_times_s`, `prefill_s`, phases, memory).
pub fn baseline_measured(v: &serde_json::Value) -> Result<Measured> {
    let times: Vec<f64> = serde_json::from_value(v["iter_times_s"].clone()).context("baseline JSON: iter_times_s")?;
    ensure!(!times.is_empty(), "baseline JSON: no iteration times");
    let phases = v["phases"]
        .as_object()
        .map(|o| {
            o.iter()
                .filter_map(|(k, t)| t.as_f64().map(|s| Phase { name: k.clone(), time_s: s, peak_memory: None }))
                .collect()
        })
        .unwrap_or_default();
    Ok(Measured {
        iter_times_s: times,
        prefill_s: v["prefill_s"].as_f64(),
        phases,
        peak_memory: v["memory"]["device_used_peak_bytes"].as_u64(),
    })
}
