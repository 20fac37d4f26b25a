//! `r1lab eval run`: a model over a benchmark under a paper's protocol, end to end: load the items
//! ([`super::load`], `--limit` takes the first N), generate ([`super::generate`]), extract answers (the rules of
//! [`super::score`], or an LLM judge, [`crate::eval::judge`], when `--judge-url`/`--judge-model` are given),
//! score, and write [`super::report::write_reports`]'s files plus `outputs.jsonl` (the responses in the format
//! `r1lab eval bench --outputs` reads) and `run.json` ([`EvalRunRecord`]) into `--out`.
//!
//! - **Model** ([`ModelSpec`]): an existing folder (a Hugging Face checkpoint folder, every top-level file hashed),
//!   or `owner/name@revision` resolved through [`crate::hub::Hub`] (the environment's cache; a branch or tag is
//!   read from the cache's `refs/`, so the record always names a commit). The files of a cached snapshot are
//!   fetched and verified; a repository not yet cached is downloaded (configs, tokenizer, chat template and the
//!   safetensors listed by `model.safetensors.index.json`, else `model.safetensors`).
//! - **Record**: `run.json` names the model (folder or repo and commit, sha256 of every file), the preset, every
//!   effective setting (protocol, sampling, pixel bounds, samples per item, the re-query rule), the overrides
//!   (`--max-new-tokens`, with the preset's value), seed and seed rule, batch, device, dtype, extraction,
//!   the code (commit and dirty flag from `git`, as [`crate::repro::record::CodeState`] records every run; the
//!   crate version), start and end time (UTC RFC 3339), generation counts, metrics and output hashes. It is
//!   written with status `running` before the first generation and rewritten `finished` at the end, atomically.
//! - **Resume**: every finished (item, sample) is appended to `generations.jsonl` ([`crate::endpoint::JobStore`]:
//!   one synced line per response, a torn last line cut) after its batch; a rerun into the same `--out` skips the
//!   stored ones and generates the rest. A rerun whose generation settings ([`GenSettings`]: benchmark, model
//!   files, dtype, preset, protocol, sampling, seed) differ from the recorded ones is refused, so that a store never
//!   mixes two configurations. Batch size, device and `--limit` may change between runs.
//!
//! - **Device**: the binary's `--device` (or `R1LAB_DEVICE`), passed through [`super::cli::run_on`].
//!
//! Deviations: the re-query and sampling follow [`super::generate`]'s notes; MathVista and MathVerse are scored
//! by the rules unless a judge is given (the papers use gpt-4o-mini, see [`super::score`]). With a judge,
//! [`super::judged`] scores: its extraction is scored as if it were the whole response (so the same
//! normalisation applies), an item it gives no answer for counts as wrong, and MathVerse gets its official
//! stage 2; its files go to `<out>/judge/` and `<out>/judge_score/`.
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use anyhow::{Context, Result, bail, ensure};
use clap::Args;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tch::Kind;

use super::generate::{GenRecord, Generator, Job, image_config};
use super::judged::{self, Response};
use super::preset::{Preset, Requery};
use super::score::{ItemScore, Metric, score_response, summarize};
use super::{BenchItem, Benchmark, load, report};
use crate::backend::DeviceSpec;
use crate::backend::device::device_name;
use crate::endpoint::JobStore;
use crate::eval::judge::JudgeConfig;
use crate::hub::{Hub, HubRepo, repo_folder};
use crate::io::{sha256_file, write_atomic, write_atomic_with};
use crate::model::qwen2_5_vl::model::run::{eos_token_ids, load as load_model, parse_dtype};
use crate::processor::chat::PREPROCESSOR_CONFIG_FILE;
use crate::processor::image::ImageProcessorConfig;
use crate::repro::manifest::source::is_hex;
use crate::repro::record::{CodeState, now_rfc3339};

/// Layout version of `run.json`.
pub const EVAL_RUN_SCHEMA_VERSION: u32 = 1;
/// The resume store in `--out`.
pub const STORE_FILE: &str = "generations.jsonl";

#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// Benchmark name (as for `eval bench`).
    #[arg(long)]
    pub benchmark: Benchmark,
    /// The benchmark's folder, as published.
    #[arg(long)]
    pub root: PathBuf,
    /// A checkpoint folder, or a Hub model `owner/name@revision`.
    #[arg(long)]
    pub model: String,
    /// Evaluation protocol: vision_r1, revisual_r1 or revisual_r1_repo.
    #[arg(long)]
    pub preset: Preset,
    /// Folder for the responses, reports and run.json (reused to resume).
    #[arg(long)]
    pub out: PathBuf,
    /// Evaluate only the first N items.
    #[arg(long)]
    pub limit: Option<usize>,
    /// Replace the preset's new-token cap (recorded as an override).
    #[arg(long)]
    pub max_new_tokens: Option<usize>,
    /// Sequences per generate call.
    #[arg(long, default_value_t = 8)]
    pub batch: usize,
    /// Base seed of the sampling seeds.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Model weights dtype: f32 or bf16.
    #[arg(long, default_value = "f32")]
    pub dtype: String,
    /// OpenAI-compatible endpoint of an LLM judge for answer extraction and MathVerse's stage 2 (with
    /// --judge-model).
    #[arg(long, requires = "judge_model")]
    pub judge_url: Option<String>,
    /// The judge's model name.
    #[arg(long, requires = "judge_url")]
    pub judge_model: Option<String>,
    /// Name of r1lab's row in the tables.
    #[arg(long, default_value = "r1lab")]
    pub label: String,
}

/// What `--model` names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModelSpec {
    Folder(PathBuf),
    Hub { repo: String, revision: String },
}

impl FromStr for ModelSpec {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<Self> {
        if Path::new(s).is_dir() {
            return Ok(ModelSpec::Folder(PathBuf::from(s)));
        }
        match s.rsplit_once('@') {
            Some((repo, rev)) if repo.split('/').count() == 2 && !repo.starts_with('/') && !rev.is_empty() => {
                Ok(ModelSpec::Hub { repo: repo.to_string(), revision: rev.to_string() })
            }
            _ => bail!(
                "--model {s:?} is neither an existing checkpoint folder nor a Hub model `owner/name@revision` \
                 (e.g. Qwen/Qwen2.5-VL-7B-Instruct@<40-hex commit>)"
            ),
        }
    }
}

/// The model as recorded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelRecord {
    /// `--model` as given.
    pub spec: String,
    /// The folder loaded.
    pub path: PathBuf,
    pub repo: Option<String>,
    /// The commit (Hub models).
    pub revision: Option<String>,
    /// File name -> sha256.
    pub files: BTreeMap<String, String>,
}

/// The files a Qwen2.5-VL checkpoint needs besides its weights; `(name, required)`.
const CHECKPOINT_FILES: [(&str, bool); 6] = [
    ("config.json", true),
    ("tokenizer.json", true),
    ("tokenizer_config.json", true),
    ("preprocessor_config.json", true),
    ("chat_template.json", false),
    ("generation_config.json", false),
];

/// Resolves `--model` to a folder and hashes its files (see the module header).
pub fn resolve_model(spec: &str, hub: &Hub) -> Result<ModelRecord> {
    match spec.parse::<ModelSpec>()? {
        ModelSpec::Folder(dir) => {
            ensure!(dir.join("config.json").is_file(), "model folder {} has no config.json", dir.display());
            let mut files = BTreeMap::new();
            for e in std::fs::read_dir(&dir).with_context(|| format!("listing {}", dir.display()))? {
                let e = e?;
                if e.path().is_file()
                    && let Some(name) = e.file_name().to_str()
                {
                    files.insert(name.to_string(), sha256_file(&e.path())?);
                }
            }
            Ok(ModelRecord { spec: spec.into(), path: dir, repo: None, revision: None, files })
        }
        ModelSpec::Hub { repo, revision } => {
            let probe = HubRepo::model(&repo, &revision);
            let cache = hub.options().cache_dir.join(repo_folder(&probe));
            let commit = if is_hex(&revision, 40) {
                revision.clone()
            } else {
                let refs = cache.join("refs").join(&revision);
                let text = std::fs::read_to_string(&refs).with_context(|| {
                    format!(
                        "{}: revision {revision:?} is not a commit and not in the cache ({}); give the 40-hex commit",
                        probe.label(),
                        refs.display()
                    )
                })?;
                ensure!(is_hex(text.trim(), 40), "{} does not hold a 40-hex commit", refs.display());
                text.trim().to_string()
            };
            let pinned = HubRepo::model(&repo, &commit);
            let snapshot = cache.join("snapshots").join(&commit);
            let fetch = |name: &str| -> Result<PathBuf> { hub.fetch(&pinned.clone().with_file(name, None), name) };
            let mut names: Vec<String> = vec![];
            if snapshot.is_dir() {
                for e in std::fs::read_dir(&snapshot).with_context(|| format!("listing {}", snapshot.display()))? {
                    let e = e?;
                    if e.path().is_file()
                        && let Some(name) = e.file_name().to_str().filter(|n| !n.starts_with('.'))
                    {
                        names.push(name.to_string());
                    }
                }
            } else {
                for (name, required) in CHECKPOINT_FILES {
                    match fetch(name) {
                        Ok(_) => names.push(name.to_string()),
                        Err(e) if required => return Err(e),
                        Err(_) => {}
                    }
                }
                match fetch("model.safetensors.index.json") {
                    Ok(index) => {
                        let v: Value = serde_json::from_slice(&std::fs::read(&index)?)
                            .with_context(|| format!("{} is not JSON", index.display()))?;
                        let map = v
                            .get("weight_map")
                            .and_then(Value::as_object)
                            .with_context(|| format!("{} has no weight_map", index.display()))?;
                        names.push("model.safetensors.index.json".into());
                        names.extend(map.values().filter_map(Value::as_str).map(str::to_string));
                    }
                    Err(_) => names.push("model.safetensors".into()),
                }
            }
            names.sort();
            names.dedup();
            let mut files = BTreeMap::new();
            let mut dir = snapshot.clone();
            for name in &names {
                let path = fetch(name).with_context(|| format!("fetching {}", pinned.label()))?;
                if name == "config.json" {
                    dir = path.parent().context("config.json has no folder")?.to_path_buf();
                }
                files.insert(name.clone(), verified_sha256(&path)?);
            }
            ensure!(files.contains_key("config.json"), "{} has no config.json", pinned.label());
            Ok(ModelRecord { spec: spec.into(), path: dir, repo: Some(repo), revision: Some(commit), files })
        }
    }
}

/// The sha256 of a file [`Hub::fetch`] returned: the name of its blob when that is an LFS blob (named by its
/// sha256, which the fetch has just checked), else hashed here.
fn verified_sha256(path: &Path) -> Result<String> {
    let blob = std::fs::canonicalize(path).with_context(|| format!("resolving {}", path.display()))?;
    match blob.file_name().and_then(|n| n.to_str()) {
        Some(name) if is_hex(name, 64) => Ok(name.to_string()),
        _ => sha256_file(path),
    }
}

/// The protocol as run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Protocol {
    pub system_prompt: Option<String>,
    pub text_before_image: bool,
    /// The effective image bounds (preset's, else the checkpoint's).
    pub min_pixels: u64,
    pub max_pixels: u64,
    pub samples_per_item: usize,
    /// `never`, or `while_missing:<marker>:<max extra>`.
    pub requery: String,
}

/// The effective sampling parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SamplingRecord {
    pub temperature: f64,
    pub top_p: f64,
    /// 0 = disabled.
    pub top_k: i64,
    pub max_new_tokens: usize,
    pub eos_token_ids: Vec<i64>,
    pub suppress_tokens: Vec<i64>,
}

/// What fixes the responses: a resumed run must match these.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GenSettings {
    pub benchmark: Benchmark,
    pub model_files: BTreeMap<String, String>,
    pub dtype: String,
    pub preset: String,
    pub protocol: Protocol,
    pub sampling: SamplingRecord,
    pub seed: u64,
}

/// Counts of the generation step.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct GenCounts {
    /// Responses generated by this invocation.
    pub generated_now: usize,
    /// Responses taken from the store (earlier invocations).
    pub resumed: usize,
    /// Extra queries of the kept responses (re-query rule).
    pub requeries: u64,
    pub truncated: usize,
    pub mean_tokens: f64,
}

/// `run.json` (see the module header).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvalRunRecord {
    pub schema_version: u32,
    /// `running` or `finished`.
    pub status: String,
    pub settings: GenSettings,
    pub root: PathBuf,
    pub items: usize,
    pub limit: Option<usize>,
    pub model: ModelRecord,
    /// `name -> {"preset": value, "used": value}` for every command-line override.
    pub overrides: BTreeMap<String, Value>,
    pub seed_rule: String,
    pub batch: usize,
    pub device: String,
    /// `{"kind": "rules"}` or `{"kind": "judge", "url", "model", "prompt_version", "templates": {name: sha256}}`
    /// ([`super::judged::record`]).
    pub extraction: Value,
    pub code: CodeState,
    pub r1lab_version: String,
    pub start_time: String,
    pub end_time: Option<String>,
    pub generation: Option<GenCounts>,
    pub metrics: Vec<Metric>,
    /// File name in `--out` -> sha256.
    pub outputs: BTreeMap<String, String>,
}

fn requery_name(p: Preset) -> String {
    match p.requery() {
        Requery::Never => "never".into(),
        Requery::WhileMissing { marker, max_extra } => format!("while_missing:{marker}:{max_extra}"),
    }
}

/// `r1lab eval run` (see the module header). Returns the record written.
pub fn run(a: &RunArgs, device: DeviceSpec) -> Result<EvalRunRecord> {
    let start_time = now_rfc3339();
    ensure!(a.batch > 0, "--batch must be at least 1");
    let all = load(a.benchmark, &a.root)?;
    let n = a.limit.map_or(all.len(), |l| l.min(all.len()));
    ensure!(n > 0, "--limit 0 leaves no item to evaluate");
    let items = &all[..n];
    let model_rec = resolve_model(&a.model, &Hub::from_env())?;
    let kind: Kind = parse_dtype(&a.dtype)?;
    let dev = device.resolve()?;
    let (model, processor) = load_model(&model_rec.path, dev, kind)?;
    let pre = model_rec.path.join(PREPROCESSOR_CONFIG_FILE);
    let base_images =
        if pre.exists() { ImageProcessorConfig::from_file(&pre)? } else { ImageProcessorConfig::default() };
    let images = image_config(a.preset, &base_images)?;
    let mut params = a.preset.sampling_params(eos_token_ids(&model, &processor));
    let mut overrides = BTreeMap::new();
    if let Some(m) = a.max_new_tokens {
        ensure!(m > 0, "--max-new-tokens must be at least 1");
        overrides.insert("max_new_tokens".into(), serde_json::json!({"preset": params.max_new_tokens, "used": m}));
        params.max_new_tokens = m;
    }
    let special = processor.tokenizer.special();
    params.suppress_tokens = vec![i64::from(special.image_pad), i64::from(special.video_pad)];
    let samples = a.preset.samples_per_item(a.benchmark);
    let settings = GenSettings {
        benchmark: a.benchmark,
        model_files: model_rec.files.clone(),
        dtype: a.dtype.clone(),
        preset: a.preset.name().into(),
        protocol: Protocol {
            system_prompt: a.preset.system_prompt().map(str::to_string),
            text_before_image: a.preset.text_before_image(),
            min_pixels: images.min_pixels(),
            max_pixels: images.max_pixels(),
            samples_per_item: samples,
            requery: requery_name(a.preset),
        },
        sampling: SamplingRecord {
            temperature: params.temperature,
            top_p: params.top_p,
            top_k: params.top_k,
            max_new_tokens: params.max_new_tokens,
            eos_token_ids: params.eos_token_ids.clone(),
            suppress_tokens: params.suppress_tokens.clone(),
        },
        seed: a.seed,
    };
    std::fs::create_dir_all(&a.out).with_context(|| format!("creating the output folder {}", a.out.display()))?;
    let record_path = a.out.join("run.json");
    if let Ok(bytes) = std::fs::read(&record_path) {
        let old: EvalRunRecord = serde_json::from_slice(&bytes)
            .with_context(|| format!("{} is not an eval run record: use a new --out", record_path.display()))?;
        if old.settings != settings {
            bail!(
                "{} was generated with other settings (benchmark, model files, dtype, preset, sampling or seed): \
                 use a new --out, or the same settings to resume ({})",
                a.out.display(),
                first_difference(&old.settings, &settings)
            );
        }
    }
    let extraction = judged::record(a.benchmark, judge_config(a).as_ref())?;
    let mut record = EvalRunRecord {
        schema_version: EVAL_RUN_SCHEMA_VERSION,
        status: "running".into(),
        settings,
        root: a.root.clone(),
        items: n,
        limit: a.limit,
        model: model_rec,
        overrides,
        seed_rule: "seed::derive(seed, Eval, attempt, item index in the benchmark, sample); attempt 0 = first query"
            .into(),
        batch: a.batch,
        device: device_name(dev),
        extraction,
        code: CodeState::detect(Path::new(env!("CARGO_MANIFEST_DIR"))),
        r1lab_version: env!("CARGO_PKG_VERSION").into(),
        start_time,
        end_time: None,
        generation: None,
        metrics: vec![],
        outputs: BTreeMap::new(),
    };
    write_atomic(&record_path, &serde_json::to_vec_pretty(&record)?)?;

    // Generate what the store lacks.
    let store_path = a.out.join(STORE_FILE);
    let store = JobStore::open(&store_path)?;
    let jobs: Vec<Job> = (0..n)
        .flat_map(|index| (0..samples).map(move |sample| Job { index, sample }))
        .filter(|j| !store.contains(&GenRecord::key(&items[j.index].id, j.sample)))
        .collect();
    let resumed = n * samples - jobs.len();
    if resumed > 0 {
        eprintln!("eval run: {resumed} response(s) already in {}, {} to generate", store_path.display(), jobs.len());
    }
    let generator = Generator {
        model: &model,
        processor: &processor,
        images,
        preset: a.preset,
        params,
        batch: a.batch,
        base_seed: a.seed,
    };
    let total = jobs.len();
    let mut finished = 0usize;
    let stats = generator.run(items, &jobs, |rec| {
        store.append(&GenRecord::key(&rec.id, rec.sample), &rec)?;
        finished += 1;
        if finished.is_multiple_of(a.batch) || finished == total {
            eprintln!("eval run: generated {finished}/{total}");
        }
        Ok(())
    })?;
    drop(store);

    // Every response of the selected items, in item and sample order.
    let stored: BTreeMap<String, GenRecord> = JobStore::read::<GenRecord>(&store_path)?.into_iter().collect();
    let mut gens: Vec<(&BenchItem, GenRecord)> = Vec::with_capacity(n * samples);
    for item in items {
        for sample in 0..samples {
            let key = GenRecord::key(&item.id, sample);
            let g =
                stored.get(&key).with_context(|| format!("{}: no stored response for {key}", store_path.display()))?;
            gens.push((item, g.clone()));
        }
    }
    let outputs_path = a.out.join("outputs.jsonl");
    write_atomic_with(&outputs_path, |w| {
        for (_, g) in &gens {
            serde_json::to_writer(&mut *w, g)?;
            w.write_all(b"\n")?;
        }
        Ok(())
    })?;

    let scores = score_all(a, &gens)?;
    let summary = summarize(items, &scores).context("scoring the generated responses")?;
    for m in &summary.metrics {
        println!("{}\t{}\t{:.2}", m.benchmark, m.kind.name(), m.value);
    }
    let mut written = vec![outputs_path];
    written.extend(report::write_reports(&a.out, items, &scores, std::slice::from_ref(&summary), &a.label)?);
    for f in &written {
        let name = f.file_name().and_then(|s| s.to_str()).unwrap_or_default().to_string();
        record.outputs.insert(name, sha256_file(f)?);
        eprintln!("  wrote {}", f.display());
    }
    let tokens: usize = gens.iter().map(|(_, g)| g.n_tokens).sum();
    record.generation = Some(GenCounts {
        generated_now: stats.generated,
        resumed,
        requeries: gens.iter().map(|(_, g)| u64::from(g.requeries)).sum(),
        truncated: gens.iter().filter(|(_, g)| g.truncated).count(),
        mean_tokens: tokens as f64 / gens.len().max(1) as f64,
    });
    record.metrics = summary.metrics;
    record.status = "finished".into();
    record.end_time = Some(now_rfc3339());
    write_atomic(&record_path, &serde_json::to_vec_pretty(&record)?)?;
    eprintln!("  wrote {}", record_path.display());
    Ok(record)
}

/// Scores every response: by the rules, or with the judge ([`super::judged::score_all`], files under `--out`).
fn score_all(a: &RunArgs, gens: &[(&BenchItem, GenRecord)]) -> Result<Vec<ItemScore>> {
    let responses: Vec<Response> = gens.iter().map(|(item, g)| (*item, g.sample, g.response.as_str())).collect();
    match judge_config(a) {
        Some(c) => judged::score_all(&responses, &c, &a.root, &a.out),
        None => Ok(responses.iter().map(|(item, sample, r)| score_response(item, *sample, r)).collect()),
    }
}

/// The judge `--judge-url`/`--judge-model` name, if any.
fn judge_config(a: &RunArgs) -> Option<JudgeConfig> {
    match (&a.judge_url, &a.judge_model) {
        (Some(url), Some(m)) => Some(JudgeConfig::new(url, m)),
        _ => None,
    }
}

/// The first top-level field of two settings that differs, for the resume error.
fn first_difference(old: &GenSettings, new: &GenSettings) -> String {
    let (Ok(Value::Object(o)), Ok(Value::Object(n))) = (serde_json::to_value(old), serde_json::to_value(new)) else {
        return "unknown difference".into();
    };
    o.iter()
        .find(|(k, v)| n.get(*k) != Some(*v))
        .map(|(k, v)| format!("`{k}` was {v}, now {}", n.get(k).unwrap_or(&Value::Null)))
        .unwrap_or_else(|| "unknown difference".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_specs_parse() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().to_str().unwrap();
        assert_eq!(d.parse::<ModelSpec>().unwrap(), ModelSpec::Folder(dir.path().into()));
        assert_eq!(
            "Qwen/Qwen2.5-VL-7B-Instruct@abc".parse::<ModelSpec>().unwrap(),
            ModelSpec::Hub { repo: "Qwen/Qwen2.5-VL-7B-Instruct".into(), revision: "abc".into() }
        );
        for bad in ["no-such-folder", "a/b/c@x", "a/b@", "/abs/path@rev"] {
            let e = format!("{:#}", bad.parse::<ModelSpec>().unwrap_err());
            assert!(e.contains("owner/name@revision"), "{bad}: {e}");
        }
    }

    #[test]
    fn requery_rules_are_named() {
        assert_eq!(requery_name(Preset::VisionR1), "while_missing:</answer>:4");
        assert_eq!(requery_name(Preset::ReVisualR1), "never");
    }
}
