//! `r1lab eval bench --benchmark NAME --root DIR --outputs FILE.jsonl --out DIR [--label NAME]`: scores a
//! file of model responses against one benchmark and writes the reports of [`super::report`].
//!
//! The outputs file is JSON lines, one response per line: `{"id": ..., "response": ...}` with an optional
//! `"sample"` (0-based index for average@k). Lines of the same id without `sample` are numbered in file
//! order. Every benchmark item needs at least one response; a response for an id the benchmark lacks is an
//! error (both name the id). The metrics are printed on stdout, one `benchmark<TAB>metric<TAB>value` line
//! each; the written files go to stderr.
//!
//! With `--judge-url URL --judge-model M` the answers are extracted by an LLM judge and MathVerse is scored
//! in its official two stages ([`super::judged`]; the judge's files go under `--out`; the API key is read
//! from `R1LAB_JUDGE_API_KEY`).
//!
//! `r1lab eval run ...` generates the responses itself first (see [`super::run`]).
use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use clap::{Args, Subcommand};
use serde_json::Value;

use super::judged::{self, Response};
use super::score::{ItemScore, score_response, summarize};
use super::{Benchmark, load, report};
use crate::eval::judge::JudgeConfig;

#[derive(Debug, Subcommand)]
pub enum EvalCommand {
    /// Score a JSON-lines file of responses (id, response[, sample]) against a benchmark; write per-item
    /// records, parquet summaries and the Vision-R1 / ReVisual-R1 shaped tables.
    Bench(BenchArgs),
    /// Run a model over a benchmark with a paper's protocol preset (generate, extract, score, report,
    /// run.json); resumable into the same --out.
    Run(super::run::RunArgs),
}

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Benchmark name (mathvista_testmini, mathverse_testmini, mathverse_vision_only, mathvision_test,
    /// wemath_testmini, dynamath, logicvista, mm_math, aime24, aime25, math500, gpqa_diamond).
    #[arg(long)]
    pub benchmark: Benchmark,
    /// The benchmark's folder, as published.
    #[arg(long)]
    pub root: PathBuf,
    /// JSON lines with `id`, `response` and optionally `sample`.
    #[arg(long)]
    pub outputs: PathBuf,
    /// Folder for the report files.
    #[arg(long)]
    pub out: PathBuf,
    /// Name of r1lab's row in the tables.
    #[arg(long, default_value = "r1lab")]
    pub label: String,
    /// OpenAI-compatible endpoint of an LLM judge for answer extraction and MathVerse's stage 2 (with
    /// --judge-model).
    #[arg(long, requires = "judge_model")]
    pub judge_url: Option<String>,
    /// The judge's model name.
    #[arg(long, requires = "judge_url")]
    pub judge_model: Option<String>,
}

pub fn run(cmd: &EvalCommand) -> Result<()> {
    run_on(cmd, None)
}

/// [`run`] with the device `eval run` generates on (the binary's `--device`; `None`: `R1LAB_DEVICE`).
pub fn run_on(cmd: &EvalCommand, device: Option<crate::backend::DeviceSpec>) -> Result<()> {
    match cmd {
        EvalCommand::Run(a) => {
            let device = match device {
                Some(d) => d,
                None => crate::backend::DeviceSpec::from_env()?,
            };
            super::run::run(a, device).map(|_| ())
        }
        EvalCommand::Bench(a) => {
            let items = load(a.benchmark, &a.root)?;
            let by_id: HashMap<&str, usize> = items.iter().enumerate().map(|(i, it)| (it.id.as_str(), i)).collect();
            let mut responses: Vec<Response> = vec![];
            let outputs = read_outputs(&a.outputs)?;
            for (id, sample, response) in &outputs {
                let Some(&i) = by_id.get(id.as_str()) else {
                    bail!("{}: id `{id}` is not an item of {}", a.outputs.display(), a.benchmark);
                };
                responses.push((&items[i], *sample, response.as_str()));
            }
            let scores: Vec<ItemScore> = match (&a.judge_url, &a.judge_model) {
                (Some(url), Some(model)) => {
                    judged::score_all(&responses, &JudgeConfig::new(url, model), &a.root, &a.out)?
                }
                _ => responses.iter().map(|(item, sample, r)| score_response(item, *sample, r)).collect(),
            };
            let summary = summarize(&items, &scores).with_context(|| format!("scoring {}", a.outputs.display()))?;
            for m in &summary.metrics {
                println!("{}\t{}\t{:.2}", m.benchmark, m.kind.name(), m.value);
            }
            for f in report::write_reports(&a.out, &items, &scores, std::slice::from_ref(&summary), &a.label)? {
                eprintln!("  wrote {}", f.display());
            }
            Ok(())
        }
    }
}

/// (id, sample, response) per line of an outputs file (see the module header).
pub fn read_outputs(path: &Path) -> Result<Vec<(String, usize, String)>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading the outputs file {} (JSON lines with id and response)", path.display()))?;
    let mut next: HashMap<String, usize> = HashMap::new();
    let mut out = vec![];
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let at = || format!("{}: line {}", path.display(), n + 1);
        let v: Value = serde_json::from_str(line).with_context(|| format!("{}: not JSON", at()))?;
        let id = match v.get("id") {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Number(x)) => x.to_string(),
            _ => bail!("{}: missing `id`", at()),
        };
        let response = v
            .get("response")
            .and_then(Value::as_str)
            .ok_or_else(|| anyhow!("{}: missing `response`", at()))?
            .to_string();
        let counter = next.entry(id.clone()).or_insert(0);
        let sample = match v.get("sample") {
            Some(s) => s.as_u64().ok_or_else(|| anyhow!("{}: `sample` must be a non-negative integer", at()))? as usize,
            None => *counter,
        };
        *counter = sample + 1;
        out.push((id, sample, response));
    }
    Ok(out)
}
