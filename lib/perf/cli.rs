//! `r1lab bench rollout|update`: builds the model, measures the device's peaks, runs r1lab's workload and (with
//! `--baseline`) the transformers/PyTorch one, prints one table with the ratios and writes it all as JSON.
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use serde_json::json;
use tch::Kind;

use super::cost::TextShape;
use super::device::{MemoryProbe, Peaks};
use super::rollout::{RolloutFigures, RolloutShape};
use super::update::{UpdateFigures, UpdateShape};
use super::{Measured, ModelChoice, baseline_measured, build_model, run_baseline};
use crate::backend::{DeviceSpec, EnvInfo};
use crate::model::qwen2_5_vl::config::Config;
use crate::model::qwen2_5_vl::model::run::parse_dtype;
use crate::train::optim::StatePrecision;

fn parse_states(s: &str) -> Result<StatePrecision> {
    serde_json::from_value(json!(s))
        .with_context(|| format!("--states {s}: use param_dtype, f32_moments or f32_master"))
}

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Batched generation: `batch` prompts of `prompt-len` random tokens, exactly `new-tokens` generated each.
    Rollout {
        #[command(flatten)]
        common: Common,
        #[arg(long, default_value_t = 64)]
        batch: usize,
        #[arg(long, default_value_t = 256)]
        prompt_len: usize,
        #[arg(long, default_value_t = 512)]
        new_tokens: usize,
    },
    /// One GRPO optimizer step over `batch` sequences of `prompt-len + response-len` tokens.
    Update {
        #[command(flatten)]
        common: Common,
        #[arg(long, default_value_t = 8)]
        batch: usize,
        #[arg(long, default_value_t = 256)]
        prompt_len: usize,
        #[arg(long, default_value_t = 1024)]
        response_len: usize,
        /// Sequences per forward/backward.
        #[arg(long, default_value_t = 1)]
        micro_batch: usize,
        /// AdamW state precision for bf16 parameters: param_dtype (plain PyTorch, the baseline's), f32_moments
        /// or f32_master.
        #[arg(long, default_value = "param_dtype", value_parser = parse_states)]
        states: StatePrecision,
        /// Recompute decoder activations in the backward pass (both sides: the baseline gets
        /// --gradient-checkpointing).
        #[arg(long)]
        recompute: bool,
    },
}

/// Options both benchmarks take.
#[derive(Debug, Args)]
pub struct Common {
    /// `7b` (Qwen2.5-VL-7B-Instruct's config, the default) or a config.json path (e.g. assets/tiny-base/config.json).
    #[arg(long, default_value = "7b")]
    pub model: ModelChoice,
    /// bf16 or f32.
    #[arg(long, default_value = "bf16")]
    pub dtype: String,
    #[arg(long, default_value_t = 1)]
    pub warmup: usize,
    #[arg(long, default_value_t = 3)]
    pub iters: usize,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Also run the same workload with transformers / PyTorch (scripts/bench/hf_baseline.py) and print ratios.
    #[arg(long)]
    pub baseline: bool,
    /// The Python that has torch and transformers.
    #[arg(long, env = "R1LAB_BENCH_PYTHON", default_value = "python3")]
    pub python: PathBuf,
    #[arg(long, default_value = "scripts/bench/hf_baseline.py")]
    pub script: PathBuf,
    /// Folder for the JSON reports.
    #[arg(long, default_value = "artifacts/bench")]
    pub out: PathBuf,
}

/// Turns measurements (r1lab's or the baseline's) into the reported figures, with the same formulas for both.
type Figures = Box<dyn Fn(&Measured) -> serde_json::Value>;

/// What a benchmark printed, also written as `<out>/<workload>.json`.
pub struct Outcome {
    pub table: String,
    pub json: serde_json::Value,
    pub path: PathBuf,
}

pub fn run(cmd: &BenchCommand, spec: DeviceSpec) -> Result<Outcome> {
    let (common, workload) = match cmd {
        BenchCommand::Rollout { common, .. } => (common, "rollout"),
        BenchCommand::Update { common, .. } => (common, "update"),
    };
    match *cmd {
        BenchCommand::Rollout { batch, prompt_len, new_tokens, .. } => {
            RolloutShape { batch, prompt_len, new_tokens }.validate()?
        }
        BenchCommand::Update { batch, prompt_len, response_len, micro_batch, states, recompute, .. } => {
            UpdateShape { batch, prompt_len, response_len, micro_batch, states, recompute }.validate()?
        }
    }
    let device = spec.resolve()?;
    let kind = parse_dtype(&common.dtype)?;
    let (cfg_text, origin) = common.model.json()?;
    let cfg = Config::parse(&cfg_text, &origin)?;
    let text = TextShape::of(&cfg);
    let elem = kind.elt_size_in_bytes() as f64;
    eprintln!("bench {workload}: measuring the device's peaks");
    let peaks = Peaks::measure(device, kind)?;
    let probe = MemoryProbe::start(device);
    eprintln!("bench {workload}: building {origin} with fresh weights ({:?}, {device:?})", kind);
    let model = build_model(&cfg, device, kind, common.seed)?;
    let model_memory = probe.peak()?;
    let (iters, warmup, seed) = (common.iters, common.warmup, common.seed);
    let mut args = vec![
        format!("--workload={workload}"),
        format!("--device={}", if device.is_cuda() { "cuda" } else { "cpu" }),
        format!("--dtype={}", if kind == Kind::BFloat16 { "bf16" } else { "f32" }),
        format!("--warmup={warmup}"),
        format!("--iters={iters}"),
        format!("--seed={seed}"),
        format!("--threads={}", tch::get_num_threads()),
    ];
    let (mine, shape_json, figures): (Measured, serde_json::Value, Figures) = match *cmd {
        BenchCommand::Rollout { batch, prompt_len, new_tokens, .. } => {
            let shape = RolloutShape { batch, prompt_len, new_tokens };
            args.extend([format!("--batch={batch}"), format!("--prompt-len={prompt_len}")]);
            args.push(format!("--new-tokens={new_tokens}"));
            eprintln!("bench rollout: r1lab, {batch} × ({prompt_len} + {new_tokens}) tokens");
            let m = super::rollout::run(&model, shape, warmup, iters, seed, &probe)?;
            let peaks = peaks.clone();
            let f = move |m: &Measured| json!(RolloutFigures::of(m, shape, &text, elem, &peaks));
            (m, json!(shape), Box::new(f))
        }
        BenchCommand::Update { batch, prompt_len, response_len, micro_batch, states, recompute, .. } => {
            let shape = UpdateShape { batch, prompt_len, response_len, micro_batch, states, recompute };
            if recompute {
                args.push("--gradient-checkpointing".into());
            }
            args.extend([format!("--batch={batch}"), format!("--prompt-len={prompt_len}")]);
            args.extend([format!("--response-len={response_len}"), format!("--micro-batch={micro_batch}")]);
            eprintln!(
                "bench update: r1lab, {batch} × ({prompt_len} + {response_len}) tokens, micro-batch {micro_batch}"
            );
            let m = super::update::run(&model, shape, warmup, iters, seed, &probe)?;
            let peaks = peaks.clone();
            let f = move |m: &Measured| json!(UpdateFigures::of(m, shape, &text, &peaks));
            (m, json!(shape), Box::new(f))
        }
    };
    let memory_source = probe.source().to_string();
    drop(model);
    drop(probe);
    let mine_fig = figures(&mine);
    let baseline = if common.baseline {
        let cfg_path = common.out.join("config.json");
        crate::io::write_atomic(&cfg_path, cfg_text.as_bytes())?;
        args.push(format!("--config={}", cfg_path.display()));
        let out = common.out.join(format!("{workload}.baseline.json"));
        eprintln!("bench {workload}: baseline {} {}", common.python.display(), common.script.display());
        let v = run_baseline(&common.python, &common.script, &args, &out)?;
        let m = baseline_measured(&v)?;
        Some((figures(&m), m, v))
    } else {
        None
    };
    let info = EnvInfo::collect(spec, device);
    let json = json!({
        "workload": workload,
        "model": origin,
        "dtype": common.dtype,
        "device": format!("{device:?}"),
        "env": info,
        "peaks": peaks,
        "memory_source": memory_source,
        "model_memory": model_memory,
        "shape": shape_json,
        "warmup": warmup,
        "iters": iters,
        "r1lab": { "measured": mine, "figures": mine_fig },
        "baseline": baseline.as_ref().map(|(f, m, v)| json!({
            "measured": m, "figures": f, "versions": v["versions"], "device": v["device"], "raw": v,
        })),
    });
    let path = common.out.join(format!("{workload}.json"));
    crate::io::write_atomic(&path, serde_json::to_string_pretty(&json)?.as_bytes())
        .with_context(|| format!("writing the benchmark report {}", path.display()))?;
    let table = table(&json, &mine, &baseline.as_ref().map(|(_, m, _)| m.clone()));
    Ok(Outcome { table, json, path })
}

/// The human-readable report: header lines, then one markdown row per metric with the ratio where both exist.
fn table(j: &serde_json::Value, mine: &Measured, base: &Option<Measured>) -> String {
    let p = &j["peaks"];
    let mut out = format!(
        "r1lab bench {} · {} · {} · {} ({})\nshape {} · warmup {}, iters {}\n",
        j["workload"].as_str().unwrap_or(""),
        j["model"].as_str().unwrap_or(""),
        j["dtype"].as_str().unwrap_or(""),
        j["device"].as_str().unwrap_or(""),
        p["device_name"].as_str().unwrap_or(""),
        j["shape"],
        j["warmup"],
        j["iters"],
    );
    let si = |v: &serde_json::Value, unit: &str| {
        v.as_f64().map_or("-".into(), |x| match x {
            x if x >= 1e12 => format!("{:.1} T{unit}", x / 1e12),
            x if x >= 1e9 => format!("{:.1} G{unit}", x / 1e9),
            x => format!("{:.1} M{unit}", x / 1e6),
        })
    };
    out += &format!(
        "peaks: measured {} matmul, {} copy; spec {}, {} (MFU and roofline use the spec when known, else the \
         measured)\nmemory: {}\n\n",
        si(&p["measured_flops"], "FLOP/s"),
        si(&p["measured_bandwidth"], "B/s"),
        si(&p["spec_flops"], "FLOP/s"),
        si(&p["spec_bandwidth"], "B/s"),
        j["memory_source"].as_str().unwrap_or(""),
    );
    let has_base = base.is_some();
    out += if has_base {
        "| metric | r1lab | transformers/PyTorch | gain |\n|---|---:|---:|---:|\n"
    } else {
        "| metric | r1lab |\n|---|---:|\n"
    };
    let fm = &j["r1lab"]["figures"];
    let fb = &j["baseline"]["figures"];
    // (label, key, scale, higher is better)
    let rows: &[(&str, &str, f64, bool)] = &[
        ("tokens/s", "tokens_per_s", 1.0, true),
        ("step time (s)", "step_time_s", 1.0, false),
        ("prefill (s)", "prefill_s", 1.0, false),
        ("decode tokens/s", "decode_tokens_per_s", 1.0, true),
        ("decode MFU (%)", "decode_mfu", 100.0, true),
        ("decode roofline (% of bandwidth)", "decode_roofline", 100.0, true),
        ("MFU (%)", "mfu", 100.0, true),
    ];
    for &(label, key, scale, higher) in rows {
        let Some(a) = fm[key].as_f64() else { continue };
        let b = fb[key].as_f64();
        out += &row(label, a * scale, b.map(|b| b * scale), higher, has_base);
    }
    let gib = |b: u64| b as f64 / (1u64 << 30) as f64;
    if let Some(a) = mine.peak_memory {
        let b = base.as_ref().and_then(|m| m.peak_memory);
        out += &row("peak memory (GiB)", gib(a), b.map(gib), false, has_base);
    }
    for ph in &mine.phases {
        out += &row(&format!("phase {} (s)", ph.name), ph.time_s, None, false, has_base);
        if let Some(m) = ph.peak_memory {
            out += &row(&format!("phase {} peak (GiB)", ph.name), gib(m), None, false, has_base);
        }
    }
    for ph in base.iter().flat_map(|m| &m.phases) {
        out += &format!("| baseline phase {} (s) | - | {:.4} | |\n", ph.name, ph.time_s);
    }
    if has_base {
        out += "\ngain: r1lab ÷ baseline for rates and MFU, baseline ÷ r1lab for times and memory; > 1 favours r1lab\n";
    }
    out
}

fn row(label: &str, a: f64, b: Option<f64>, higher_is_better: bool, has_base: bool) -> String {
    let fmt = |x: f64| if x.abs() >= 100.0 { format!("{x:.0}") } else { format!("{x:.4}") };
    if !has_base {
        return format!("| {label} | {} |\n", fmt(a));
    }
    let ratio = b.filter(|b| *b > 0.0 && a > 0.0).map(|b| if higher_is_better { a / b } else { b / a });
    let verdict = ratio.map_or(String::new(), |r| format!("{r:.2}×"));
    format!("| {label} | {} | {} | {verdict} |\n", fmt(a), b.map_or("-".into(), fmt))
}
