//! The embedded default's pipeline, what `make demo` runs (issue 6): a chain file names the data to prepare and
//! the stage manifests to run in order, e.g. `experiments/embedded/vision_r1.chain.toml` (cold-start SFT on
//! modality-bridged CoT → GRPO under PTST → held-out evaluation, all on the tiny Qwen2.5-VL).
//!
//! 1. **Prepare** (idempotent, deterministic from the chain file's seeds): the tiny model repository into the Hub
//!    cache ([`crate::model::tiny::install`], loaded later through `hub` like a real checkpoint), the synthetic
//!    RL train / held-out splits (`data synth`), and the bridged cold-start CoT (`data bridge`, with its filter
//!    statistics in `bridge_stats.json`) under `data.out`.
//! 2. **Run** each manifest with [`crate::pipeline::run_manifest`] (a later stage's model is the newest finished run
//!    of its parent stage), each leaving a complete run record. A stage whose run (same manifest, code commit and
//!    seed) already finished is reused, so a second `make demo` only prints the summary again.
//! 3. **Summarize**: one row per stage plus the starting model (the first stage's step-0 evaluation): held-out
//!    accuracy, format rate, mean response length, truncation; printed and written to `<runs>/<chain>-summary.md`
//!    and `.json`. With `--seeds`, the chain runs once per seed and [`seeds`] adds each stage's mean ± 95 % CI and
//!    the paired stage-to-stage differences (issue 6's proof).
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::backend::DeviceSpec;
use crate::data::bridging::cli::BridgeArgs;
use crate::data::cli::SynthArgs;
use crate::data::format::AnswerFormat;
use crate::data::synthetic::export::export;
use crate::data::synthetic::{Config as SynthConfig, Family, Split};
use crate::data::{easyr1, sharegpt};
use crate::hub::HubOptions;
use crate::io::write_atomic;
use crate::model::tiny::{TinySpec, install};
use crate::pipeline::{RunOptions, RunOutcome, finished_outcome, run_manifest};
use crate::repro::record::Metrics;

#[cfg(test)]
mod pins;
pub mod seeds;

/// A chain file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Chain {
    /// Name used for the summary files.
    pub name: String,
    pub tiny: TinySettings,
    pub data: DataSettings,
    /// Committed model folders installed into the Hub cache before the stages run (`[[install]]`), e.g. the base
    /// model `assets/tiny-base/` that the cold starts pin as `r1lab/tiny-qwen2.5-vl-base`.
    #[serde(default)]
    pub install: Vec<InstallSettings>,
    /// Stage manifests, in order.
    pub manifests: Vec<PathBuf>,
}

/// How the tiny model repository is built (`r1lab tiny init` flags).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TinySettings {
    pub seed: u64,
    /// Image side the preprocessor is set for.
    pub size: u32,
}

/// A committed model folder placed into the Hub cache at its content revision ([`crate::hub::install`]), so stage
/// manifests pin it by repository, revision and file hashes exactly as they pin a downloaded checkpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InstallSettings {
    /// Repository id it is installed as (`owner/name`).
    pub repo: String,
    /// The folder (relative to the repository root); every file in it is installed.
    pub path: PathBuf,
}

/// Installs every file of `s.path` into the cache.
fn install_folder(s: &InstallSettings, repo_root: &Path, cache_dir: &Path) -> Result<crate::hub::install::Installed> {
    let dir = repo_root.join(&s.path);
    let mut files = Vec::new();
    for entry in std::fs::read_dir(&dir)
        .with_context(|| format!("reading {} (the model folder to install as {})", dir.display(), s.repo))?
    {
        let entry = entry.with_context(|| format!("listing {}", dir.display()))?;
        if entry.file_type().with_context(|| format!("inspecting {}", entry.path().display()))?.is_file() {
            files.push(entry.file_name().to_string_lossy().into_owned());
        }
    }
    files.sort();
    crate::hub::install::install_dir(&s.repo, &dir, &files, cache_dir)
}

/// The synthetic data of the chain.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataSettings {
    /// Output folder (relative to the repository root): `rl/` and `cold/` go under it.
    pub out: PathBuf,
    pub seed: u64,
    /// Task families (default all four). The embedded Vision-R1 chain uses `["shapes"]`: the tiny model learns to
    /// read colours, kinds and cells from 16 image tokens in minutes, not rendered digits or bar heights.
    #[serde(default = "all_families")]
    pub families: Vec<Family>,
    pub level: u8,
    pub size: u32,
    /// RL train problems per family.
    pub train_per_family: usize,
    /// Held-out problems per family.
    pub test_per_family: usize,
    /// Problems per family fed to modality bridging (the kept ones become the cold-start set).
    pub bridge_per_family: usize,
    pub bridge_seed: u64,
    /// The reasoner's slip probability (`data bridge --p-slip`); default the bridge's.
    #[serde(default = "default_p_slip")]
    pub p_slip: f64,
    /// Probability that a reflection catches a slip (`--p-catch`).
    #[serde(default = "default_p_catch")]
    pub p_catch: f64,
    /// Probability that the reasoner lists the cells of the shapes it counts (`--p-positions`).
    #[serde(default = "default_p_positions")]
    pub p_positions: f64,
    /// Also build the text-twin cold-start sets (`train_bridge_text.json`, and `train_bridge_text_boxed.json` in
    /// ReVisual-R1's answer format for its text cold start).
    #[serde(default)]
    pub text_twins: bool,
    /// Also build the image-removed ("blind") control sets: the bridged CoT and the held-out problems with their
    /// images and `<image>` placeholders dropped (`cold/train_bridge_blind.json`, `rl/test_blind.parquet`). A model
    /// trained and evaluated on them measures how much of the task text alone gives away (issue 6's control).
    #[serde(default)]
    pub blind_control: bool,
    /// Train-split images per family for the base model's perception set (`base/train_perception.json`, see
    /// [`crate::data::perception`]), and every question about `test_per_family` held-out images
    /// (`base/test_perception.json`); 0 (the default) builds neither.
    #[serde(default)]
    pub perception_per_family: usize,
    /// Perception questions per image.
    #[serde(default = "default_perception_turns")]
    pub perception_turns: usize,
    /// Seed of the perception question draws.
    #[serde(default)]
    pub perception_seed: u64,
    /// Also build the perception sets with the scene in words instead of the picture
    /// (`base/train_perception_text.json`, `base/test_perception_text.json`): the text reader the controls start from.
    #[serde(default)]
    pub perception_text: bool,
}

fn default_perception_turns() -> usize {
    8
}

fn all_families() -> Vec<Family> {
    Family::ALL.to_vec()
}

fn default_p_slip() -> f64 {
    crate::data::bridging::reasoner::Knobs::default().p_slip
}

fn default_p_catch() -> f64 {
    crate::data::bridging::reasoner::Knobs::default().p_catch
}

fn default_p_positions() -> f64 {
    crate::data::bridging::reasoner::Knobs::default().p_positions
}

impl Chain {
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading chain file {}", path.display()))?;
        let c: Chain = toml::from_str(&text).with_context(|| format!("parsing chain file {}", path.display()))?;
        anyhow::ensure!(!c.manifests.is_empty(), "{}: `manifests` is empty", path.display());
        anyhow::ensure!(!c.data.families.is_empty(), "{}: `data.families` is empty; name at least one", path.display());
        anyhow::ensure!(
            !c.data.perception_text || c.data.perception_per_family > 0,
            "{}: `data.perception_text` builds text versions of the perception sets, but `data.perception_per_family` \
             is 0: set it too",
            path.display()
        );
        Ok(c)
    }
}

/// What `r1lab demo` does with a chain.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    pub repo_root: PathBuf,
    pub runs_root: PathBuf,
    pub device: DeviceSpec,
    /// Stop after preparing the data.
    pub prepare_only: bool,
    pub progress: bool,
    /// The Hub cache the tiny model is installed into and loaded from.
    pub hub: HubOptions,
    /// Run the chain once per seed (`seeds.base` of every stage), each in `<runs>/seed<s>/`, and summarize the
    /// stages over seeds with 95 % CIs ([`seeds`]). Empty: once, with the manifests' own seeds.
    pub seeds: Vec<u64>,
}

/// One row of the summary.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SummaryRow {
    pub stage: String,
    pub run: Option<String>,
    pub values: BTreeMap<String, f64>,
    pub wall_s: f64,
}

/// The tiny model spec of a chain's `[tiny]` settings.
pub fn tiny_spec(t: &TinySettings) -> TinySpec {
    TinySpec { seed: t.seed, data: SynthConfig { size: t.size, ..TinySpec::default().data }, ..TinySpec::default() }
}

/// Builds the tiny repository and the data sets; returns the seconds taken.
pub fn prepare(chain: &Chain, repo_root: &Path, hub: &HubOptions) -> Result<f64> {
    let t0 = Instant::now();
    let repo = install(&tiny_spec(&chain.tiny), &hub.cache_dir)?;
    println!("prepare: tiny model r1lab/tiny-qwen2.5-vl@{} in {}", repo.revision, hub.cache_dir.display());
    for i in &chain.install {
        let revision = install_folder(i, repo_root, &hub.cache_dir)?.revision;
        println!("prepare: {} from {} as {}@{revision}", i.repo, i.path.display(), i.repo);
    }
    let d = &chain.data;
    let out = repo_root.join(&d.out);
    let cfg = SynthConfig { seed: d.seed, level: d.level, size: d.size };
    for (split, n) in [(Split::Train, d.train_per_family), (Split::Test, d.test_per_family)] {
        let done = export(&out.join("rl"), &d.families, &cfg, split, n)?;
        println!("prepare: {} {split} problems in {}", done.problems.len(), out.join("rl").display());
    }
    let args = BridgeArgs {
        synth: SynthArgs {
            family: d.families.iter().map(|f| f.name()).collect::<Vec<_>>().join(","),
            n: d.bridge_per_family,
            split: Split::Train,
            out: out.join("cold"),
            seed: d.seed,
            level: d.level,
            size: d.size,
        },
        bridge_seed: d.bridge_seed,
        p_slip: d.p_slip,
        p_catch: d.p_catch,
        p_positions: d.p_positions,
        caption_ablation: false,
        text: d.text_twins,
    };
    crate::data::bridging::cli::run(&args)?;
    if d.text_twins {
        let written = boxed_twin(&out.join("cold"))?;
        println!("prepare: ReVisual-R1 text cold start (\\boxed answers) in {}", written.display());
    }
    if d.perception_per_family > 0 {
        use crate::data::perception::{Medium, SetSpec};
        let seed = d.perception_seed;
        let mut sets = vec![
            ("base model's perception set", "train_perception", Medium::Image, Split::Train),
            ("held-out perception set", "test_perception", Medium::Image, Split::Test),
        ];
        if d.perception_text {
            sets.push(("text reader's perception set", "train_perception_text", Medium::Text, Split::Train));
            sets.push(("held-out text perception set", "test_perception_text", Medium::Text, Split::Test));
        }
        let base = out.join("base");
        for (what, name, medium, split) in sets {
            let (n, turns) = match split {
                Split::Train => (d.perception_per_family, d.perception_turns),
                Split::Test => (d.test_per_family, usize::MAX),
            };
            let spec = SetSpec { split, n, turns, seed, medium };
            let (file, turns) = crate::data::perception::export(&base, name, &d.families, &cfg, spec)?;
            println!("prepare: {what}, {turns} questions, in {}", file.display());
        }
    }
    if d.blind_control {
        let [sft, rl] = blind_copies(&out)?;
        println!("prepare: image-removed control sets {} and {}", sft.display(), rl.display());
    }
    Ok(t0.elapsed().as_secs_f64())
}

/// The image-removed control sets (see [`DataSettings::blind_control`]): same text, same answers, no images.
fn blind_copies(out: &Path) -> Result<[PathBuf; 2]> {
    let mut records = sharegpt::read_json(&out.join("cold/train_bridge.json"))?;
    for r in records.iter_mut() {
        r.images.clear();
        for m in r.messages.iter_mut() {
            m.content = m.content.replace("<image>", "");
        }
    }
    let sft = sharegpt::write_dataset(&out.join("cold"), "train_bridge_blind", &records, &[])?;
    let mut test = easyr1::read_parquet(&out.join("rl/test.parquet"))?;
    for r in test.iter_mut() {
        r.images.clear();
        r.problem = r.problem.replace("<image>", "");
        r.id = format!("{}-blind", r.id);
    }
    let rl = out.join("rl/test_blind.parquet");
    easyr1::write_parquet(&rl, &test)?;
    Ok([sft, rl])
}

/// `train_bridge_text_boxed.json`: the bridged text-twin CoT with ReVisual-R1's answer format
/// ([`AnswerFormat::Boxed`]), for the ReVisual chain's text cold start.
fn boxed_twin(dir: &Path) -> Result<PathBuf> {
    let mut records = sharegpt::read_json(&dir.join("train_bridge_text.json"))?;
    for m in records.iter_mut().flat_map(|r| r.messages.iter_mut()).filter(|m| m.role == "assistant") {
        m.content = AnswerFormat::Boxed
            .convert(&m.content)
            .with_context(|| format!("a bridged response is not in Vision-R1's format: {:?}", m.content))?;
    }
    let path = dir.join("train_bridge_text_boxed.json");
    sharegpt::write_json(&path, &records)?;
    Ok(path)
}

const SUMMARY_KEYS: [&str; 4] = ["heldout.acc", "heldout.format", "heldout.len", "heldout.truncated"];

fn pick(values: impl Fn(&str) -> Option<f64>) -> BTreeMap<String, f64> {
    SUMMARY_KEYS.iter().filter_map(|k| values(k).map(|v| (k.to_string(), v))).collect()
}

/// The step-0 evaluation of a run (the model it started from).
fn initial_eval(run_dir: &Path) -> Result<BTreeMap<String, f64>> {
    let m = Metrics::read_parquet(&run_dir.join("metrics.parquet"), 1)?;
    Ok(pick(|k| m.series(k).first().map(|(_, v)| *v)))
}

/// Runs the chain; returns the summary rows (the starting model first). With `opts.seeds`, runs it once per seed
/// instead ([`seeds`]) and returns the rows of the first seed.
pub fn run(chain_path: &Path, opts: &DemoOptions) -> Result<Vec<SummaryRow>> {
    let chain = Chain::load(chain_path)?;
    let prep_s = prepare(&chain, &opts.repo_root, &opts.hub)?;
    let mut rows = vec![SummaryRow { stage: "prepare".into(), run: None, values: BTreeMap::new(), wall_s: prep_s }];
    if opts.prepare_only {
        return Ok(rows);
    }
    if !opts.seeds.is_empty() {
        let per_seed = seeds::run(&chain, opts)?;
        rows.extend(per_seed.into_iter().next().map(|(_, r)| r).unwrap_or_default());
        return Ok(rows);
    }
    let manifests: Vec<PathBuf> = chain.manifests.iter().map(|m| opts.repo_root.join(m)).collect();
    rows.extend(run_stages(&manifests, &run_options(opts, &opts.runs_root))?);
    let table = summary_table(&rows);
    println!("{table}");
    std::fs::create_dir_all(&opts.runs_root)?;
    let md = opts.runs_root.join(format!("{}-summary.md", chain.name));
    write_atomic(&md, table.as_bytes())?;
    write_atomic(&opts.runs_root.join(format!("{}-summary.json", chain.name)), &serde_json::to_vec_pretty(&rows)?)?;
    println!("summary: {}", md.display());
    Ok(rows)
}

fn run_options(opts: &DemoOptions, runs_root: &Path) -> RunOptions {
    RunOptions {
        repo_root: opts.repo_root.clone(),
        runs_root: runs_root.to_path_buf(),
        device: opts.device,
        resume: false,
        progress: opts.progress,
        hub: opts.hub.clone(),
    }
}

/// The summary row of the model the chain starts from (the first stage's step-0 evaluation): the base model of the
/// embedded chains, `assets/tiny-base/`.
pub const START_ROW: &str = "base (step 0)";

/// Runs `manifests` in order (reusing finished runs); one row per stage, after the starting model's.
fn run_stages(manifests: &[PathBuf], run_opts: &RunOptions) -> Result<Vec<SummaryRow>> {
    let mut rows = Vec::new();
    for (i, path) in manifests.iter().enumerate() {
        let t0 = Instant::now();
        let out: RunOutcome = match finished_outcome(path, run_opts)? {
            Some(done) => {
                println!("demo: {} already finished in {}; reusing it", done.record.run_id, done.dir.display());
                done
            }
            None => run_manifest(path, run_opts).with_context(|| format!("stage {}", path.display()))?,
        };
        if i == 0 {
            rows.push(SummaryRow { stage: START_ROW.into(), run: None, values: initial_eval(&out.dir)?, wall_s: 0.0 });
        }
        rows.push(SummaryRow {
            stage: out.record.manifest.id.clone(),
            run: Some(out.dir.display().to_string()),
            values: pick(|k| out.final_metrics.get(k).copied()),
            wall_s: t0.elapsed().as_secs_f64(),
        });
    }
    Ok(rows)
}

/// A markdown table of the rows.
pub fn summary_table(rows: &[SummaryRow]) -> String {
    let mut s = String::from(
        "| stage | held-out acc % | format % | mean length | truncated % | wall s | run |\n|---|---|---|---|---|---|---|\n",
    );
    for r in rows {
        let v = |k: &str| r.values.get(k).map_or("-".to_string(), |x| format!("{x:.1}"));
        s.push_str(&format!(
            "| {} | {} | {} | {} | {} | {:.0} | {} |\n",
            r.stage,
            v("heldout.acc"),
            v("heldout.format"),
            v("heldout.len"),
            v("heldout.truncated"),
            r.wall_s,
            r.run.as_deref().unwrap_or("")
        ));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::repro::manifest::Manifest;

    #[test]
    fn every_checked_in_manifest_and_chain_loads() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let files = crate::io::files_ending(&root.join("experiments"), ".toml");
        let (mut manifests, mut chains) = (0, 0);
        for f in files {
            if f.to_string_lossy().ends_with(".grid.toml") {
                continue; // ablation grids: repro::grid's test checks them
            }
            if f.to_string_lossy().ends_with(".chain.toml") {
                let c = Chain::load(&f).unwrap_or_else(|e| panic!("{}: {e:#}", f.display()));
                for m in &c.manifests {
                    assert!(root.join(m).is_file(), "{} names a missing manifest {}", f.display(), m.display());
                }
                chains += 1;
            } else {
                Manifest::load(&f).unwrap_or_else(|e| panic!("{}: {e:#}", f.display()));
                manifests += 1;
            }
        }
        assert!(manifests >= 7 && chains >= 2, "{manifests} manifests, {chains} chains");
    }

    #[test]
    fn blind_copies_drop_every_image_and_keep_the_text() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = SynthConfig { seed: 0, level: 1, size: 112 };
        let done = export(&dir.path().join("rl"), &[Family::Shapes], &cfg, Split::Test, 3).unwrap();
        let sft: Vec<sharegpt::SftRecord> =
            done.problems.iter().map(|p| sharegpt::SftRecord::from_problem(p, p.reference_response())).collect();
        sharegpt::write_dataset(&dir.path().join("cold"), "train_bridge", &sft, &done.problems).unwrap();

        let [sft_path, rl_path] = blind_copies(dir.path()).unwrap();
        let blind = sharegpt::read_json(&sft_path).unwrap();
        assert_eq!(blind.len(), 3);
        for (b, orig) in blind.iter().zip(&sft) {
            assert!(b.images.is_empty() && !orig.images.is_empty());
            assert_eq!(b.messages[0].content, orig.messages[0].content.replace("<image>", ""));
            assert!(!b.messages[0].content.contains("<image>"));
            assert_eq!(b.messages[1].content, orig.messages[1].content, "the CoT target is unchanged");
        }
        let test = easyr1::read_parquet(&rl_path).unwrap();
        let orig = easyr1::read_parquet(&dir.path().join("rl/test.parquet")).unwrap();
        assert_eq!(test.len(), orig.len());
        for (b, o) in test.iter().zip(&orig) {
            assert!(b.images.is_empty() && !o.images.is_empty());
            assert_eq!((b.problem.as_str(), &b.answer), (o.problem.replace("<image>", "").as_str(), &o.answer));
        }
        let info = std::fs::read_to_string(dir.path().join("cold/dataset_info.json")).unwrap();
        assert!(info.contains("train_bridge_blind"), "{info}");
    }

    #[test]
    fn a_chain_without_families_takes_all_and_an_empty_list_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(root.join("experiments/embedded/vision_r1_controls.chain.toml")).unwrap();
        let without: String = text.lines().filter(|l| !l.starts_with("families")).map(|l| format!("{l}\n")).collect();
        let c: Chain = toml::from_str(&without).unwrap();
        assert_eq!(c.data.families, Family::ALL.to_vec());
        let path = dir.path().join("c.chain.toml");
        std::fs::write(&path, without.replace("[data]\n", "[data]\nfamilies = []\n")).unwrap();
        let err = format!("{:#}", Chain::load(&path).unwrap_err());
        assert!(err.contains("data.families"), "{err}");
    }

    #[test]
    fn text_perception_without_perception_sets_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(root.join("experiments/embedded/vision_r1.chain.toml")).unwrap();
        let path = dir.path().join("c.chain.toml");
        std::fs::write(&path, text.replace("[data]\n", "[data]\nperception_text = true\n")).unwrap();
        let err = format!("{:#}", Chain::load(&path).unwrap_err());
        assert!(err.contains("data.perception_per_family"), "{err}");
        let with_sets = text.replace("[data]\n", "[data]\nperception_text = true\nperception_per_family = 2\n");
        std::fs::write(&path, with_sets).unwrap();
        assert!(Chain::load(&path).unwrap().data.perception_text);
    }
}
