//! `r1lab data bridge-endpoint` and `r1lab data curate`: the endpoint pipelines ([`super::bridge`],
//! [`super::curate`]) from the command line. Both print one JSON summary line on stdout and exit non-zero when
//! items failed (rerunning the same command retries only those). `--api-key` falls back to `OPENAI_API_KEY`.
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Result, bail};
use clap::Args;

use super::bridge::BridgeConfig;
use super::curate::{BalanceKey, CurateConfig};
use crate::endpoint::EndpointConfig;

/// Where requests go and how patiently.
#[derive(Debug, Clone, Args)]
pub struct EndpointArgs {
    /// OpenAI-compatible API base, e.g. http://127.0.0.1:8000/v1 (`r1lab serve` prints it).
    #[arg(long)]
    pub endpoint: String,
    /// The `model` field of the requests.
    #[arg(long, default_value = "default")]
    pub model: String,
    #[arg(long, env = "OPENAI_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,
    /// Per-request timeout in seconds.
    #[arg(long, default_value_t = 600.0)]
    pub timeout_s: f64,
    /// Retries after a failed attempt (transport errors, 408, 429, 5xx), with exponential backoff.
    #[arg(long, default_value_t = 4)]
    pub retries: u32,
    /// Initial backoff in seconds (doubled per retry).
    #[arg(long, default_value_t = 0.5)]
    pub backoff_s: f64,
    /// Items in flight at once.
    #[arg(long, default_value_t = 8)]
    pub concurrency: usize,
}

impl EndpointArgs {
    fn config(&self, endpoint: &str, model: &str) -> EndpointConfig {
        EndpointConfig {
            api_key: self.api_key.clone(),
            timeout: Duration::from_secs_f64(self.timeout_s),
            retries: self.retries,
            backoff: Duration::from_secs_f64(self.backoff_s),
            ..EndpointConfig::new(endpoint, model)
        }
    }
}

/// Input, output and prompts shared by both pipelines.
#[derive(Debug, Clone, Args)]
pub struct PipelineIo {
    /// EasyR1 parquet (`id`, `images`, `problem`, `answer`), e.g. from `r1lab data synth`.
    #[arg(long)]
    pub input: PathBuf,
    /// Output folder; rerunning with the same folder resumes.
    #[arg(long)]
    pub out: PathBuf,
    /// The prompts/ folder of the repository.
    #[arg(long, default_value = "prompts")]
    pub prompts: PathBuf,
    #[arg(long, default_value = "v1")]
    pub prompt_version: String,
    /// Only the first N items.
    #[arg(long)]
    pub limit: Option<usize>,
    /// Base of the per-item request seeds.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

#[derive(Debug, Clone, Args)]
pub struct BridgeEndpointArgs {
    #[command(flatten)]
    pub io: PipelineIo,
    /// The MLLM endpoint (steps 1–2).
    #[command(flatten)]
    pub endpoint: EndpointArgs,
    /// The text reasoner's endpoint (step 3) [default: --endpoint].
    #[arg(long)]
    pub reasoner_endpoint: Option<String>,
    /// The text reasoner's model name [default: --model].
    #[arg(long)]
    pub reasoner_model: Option<String>,
    /// Sampling temperature of every step (0 = greedy).
    #[arg(long, default_value_t = 0.0)]
    pub temperature: f64,
    #[arg(long, default_value_t = 1024)]
    pub pseudo_cot_tokens: usize,
    #[arg(long, default_value_t = 1024)]
    pub description_tokens: usize,
    #[arg(long, default_value_t = 8192)]
    pub reasoning_tokens: usize,
}

#[derive(Debug, Clone, Args)]
pub struct CurateArgs {
    #[command(flatten)]
    pub io: PipelineIo,
    #[command(flatten)]
    pub endpoint: EndpointArgs,
    /// Samples per item for the pass rate.
    #[arg(long, default_value_t = 8)]
    pub k: usize,
    /// Sampling temperature of the k samples.
    #[arg(long, default_value_t = 1.0)]
    pub temperature: f64,
    #[arg(long, default_value_t = 2048)]
    pub max_tokens: usize,
    /// Keep items with pass rate ≥ this (drop too hard).
    #[arg(long, default_value_t = 0.0)]
    pub min_pass: f64,
    /// Keep items with pass rate ≤ this (drop too easy).
    #[arg(long, default_value_t = 1.0)]
    pub max_pass: f64,
    #[arg(long, value_enum, default_value_t = BalanceKey::TopicDifficulty)]
    pub balance: BalanceKey,
    /// Topic = group 1 of this regex on the item id.
    #[arg(long, default_value = "^([A-Za-z]+)")]
    pub topic_regex: String,
    /// Difficulty bins over the pass rate.
    #[arg(long, default_value_t = 4)]
    pub bins: usize,
    /// Items to select [default: all in the band].
    #[arg(long)]
    pub total: Option<usize>,
}

pub fn run_bridge(a: &BridgeEndpointArgs) -> Result<()> {
    let e = &a.endpoint;
    let cfg = BridgeConfig {
        input: a.io.input.clone(),
        out: a.io.out.clone(),
        prompts: a.io.prompts.clone(),
        version: a.io.prompt_version.clone(),
        mllm: e.config(&e.endpoint, &e.model),
        reasoner: e.config(
            a.reasoner_endpoint.as_deref().unwrap_or(&e.endpoint),
            a.reasoner_model.as_deref().unwrap_or(&e.model),
        ),
        concurrency: e.concurrency,
        max_tokens: [a.pseudo_cot_tokens, a.description_tokens, a.reasoning_tokens],
        temperature: a.temperature,
        seed: a.io.seed,
        limit: a.io.limit,
    };
    let r = super::bridge::run(&cfg)?;
    println!(
        "{}",
        serde_json::json!({"items": r.items, "stored": r.stored, "kept": r.counts.kept, "dropped": r.counts.dropped(),
                           "failed": r.failed.len(), "skipped_on_resume": r.skipped_on_resume})
    );
    finish("bridge-endpoint", &a.io.out, &r.failed)
}

pub fn run_curate(a: &CurateArgs) -> Result<()> {
    let e = &a.endpoint;
    let cfg = CurateConfig {
        input: a.io.input.clone(),
        out: a.io.out.clone(),
        prompts: a.io.prompts.clone(),
        version: a.io.prompt_version.clone(),
        endpoint: e.config(&e.endpoint, &e.model),
        concurrency: e.concurrency,
        k: a.k,
        temperature: a.temperature,
        max_tokens: a.max_tokens,
        seed: a.io.seed,
        min_pass: a.min_pass,
        max_pass: a.max_pass,
        key: a.balance,
        topic_regex: a.topic_regex.clone(),
        bins: a.bins,
        total: a.total,
        limit: a.io.limit,
    };
    let r = super::curate::run(&cfg)?;
    println!(
        "{}",
        serde_json::json!({"items": r.items, "scored": r.scored, "in_band": r.in_band, "selected": r.selected,
                           "failed": r.failed.len(), "skipped_on_resume": r.skipped_on_resume})
    );
    finish("curate", &a.io.out, &r.failed)
}

/// Says where the outputs are, and fails (after everything that succeeded is stored) when items failed.
fn finish(name: &str, out: &std::path::Path, failed: &[(String, String)]) -> Result<()> {
    eprintln!("{name}: outputs in {}", out.display());
    if let Some((id, why)) = failed.first() {
        bail!("{} item(s) failed (first: {id} — {why}); rerun the same command to retry them", failed.len());
    }
    Ok(())
}
