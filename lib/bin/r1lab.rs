//! `r1lab`: the command-line entry point. Each subcommand is a thin shell over the library.
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use r1lab::backend::{DeviceSpec, EnvInfo};
use r1lab::demo;
use r1lab::eval::mathvista::{self, AccuracyFormat, NormalizeOptions};
use r1lab::model::qwen2_5_vl::model::run;
use r1lab::model::sampling::SamplingParams;
use r1lab::pipeline::RunOptions;
use r1lab::rl::grader::pairs;
use r1lab::smoke::{self, SmokeConfig};

#[derive(Parser)]
#[command(name = "r1lab", version, about = "Reproduce and extend Vision-R1 and ReVisual-R1 on libtorch")]
struct Cli {
    /// Device to run on: auto (cuda:0 if usable, else cpu), cpu, cuda or cuda:N.
    #[arg(long, global = true, default_value = "auto", env = "R1LAB_DEVICE")]
    device: DeviceSpec,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print r1lab, tch and libtorch versions, CUDA availability and the selected device.
    Info {
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// The embedded default end to end: build the tiny model and the synthetic data, run a chain of stage
    /// manifests (default: Vision-R1 = cold-start SFT -> PTST GRPO), print the held-out summary table.
    Demo {
        /// The chain file: data to prepare and manifests to run in order.
        #[arg(long, default_value = "experiments/embedded/vision_r1.chain.toml")]
        chain: PathBuf,
        /// Folder of run folders.
        #[arg(long, default_value = "artifacts/runs")]
        runs: PathBuf,
        /// Only build the tiny model and the data.
        #[arg(long)]
        prepare_only: bool,
        /// No progress bars.
        #[arg(long)]
        quiet: bool,
        /// Run the chain once per seed (e.g. 1,2,3) and print each stage's mean ± 95 % CI over them.
        #[arg(long, value_delimiter = ',')]
        seeds: Vec<u64>,
    },
    /// A seconds-long device check: fit sin(3x) with a small MLP through libtorch, write parquet + a plot.
    Smoke {
        #[arg(long, default_value_t = SmokeConfig::default().steps)]
        steps: usize,
        #[arg(long, default_value_t = SmokeConfig::default().seed)]
        seed: u64,
        #[arg(long, default_value_t = SmokeConfig::default().lr)]
        lr: f64,
        /// Output folder for metrics.parquet, loss.png and summary.json.
        #[arg(long, default_value = "artifacts/runs/smoke")]
        out: PathBuf,
    },
    /// Re-score benchmark outputs exactly as the benchmark's official scorer does.
    Score {
        #[command(subcommand)]
        bench: ScoreCommand,
    },
    /// Benchmarks in the papers' protocols: `eval bench --benchmark NAME --root DIR --outputs FILE --out DIR`.
    Eval {
        #[command(subcommand)]
        command: r1lab::eval::bench::cli::EvalCommand,
    },
    /// Grade (prediction, gold) pairs with the RL answer grader (mathruler's grade_answer).
    Grade {
        /// JSON lines, one {"pred": ..., "gold": ...} object per line; prints one
        /// {"pred", "gold", "correct"} object per line.
        #[arg(long)]
        pairs: PathBuf,
    },
    /// Speed benchmarks on fresh weights of a real config (7B by default): `bench rollout|update [--baseline]`
    /// prints tokens/s, step time, peak memory, MFU and the roofline fraction, against transformers with
    /// --baseline.
    Bench {
        #[command(subcommand)]
        command: r1lab::perf::cli::BenchCommand,
    },
    /// Hugging Face Hub files pinned by commit: `hub fetch REPO --revision SHA --file F...`.
    Hub {
        #[command(subcommand)]
        command: r1lab::hub::cli::HubCommand,
    },
    /// Data sets: `data synth --family all --n 100 --split train --out DIR` (synthetic task family).
    Data {
        #[command(subcommand)]
        command: r1lab::data::cli::DataCommand,
    },
    /// The tiny Qwen2.5-VL of the embedded default: `tiny init [--cache DIR] [--seed N]` builds it into the Hub cache.
    Tiny {
        #[command(subcommand)]
        command: r1lab::model::tiny::cli::TinyCommand,
    },
    /// Run one experiment stage from its manifest (SFT or GRPO/PTST) into artifacts/runs/<run id>/: run.json,
    /// metrics.parquet, plots, samples, evaluations, checkpoints.
    Run {
        /// The manifest (TOML), e.g. experiments/embedded/vision_r1_cold_start.toml; or, with --resume, the run
        /// folder to continue (artifacts/runs/<run id>).
        manifest: PathBuf,
        /// Folder of run folders.
        #[arg(long, default_value = "artifacts/runs")]
        runs: PathBuf,
        /// Continue the unfinished run of this manifest from its newest checkpoint.
        #[arg(long)]
        resume: bool,
        /// No progress bars.
        #[arg(long)]
        quiet: bool,
        /// Refuse a manifest that is not locked (see `r1lab lock`).
        #[arg(long)]
        require_locked: bool,
    },
    /// Pin every input of a manifest by content hash (Hub commits and file sha256s, local file sha256s, the parent
    /// run's checkpoint) and write the locked copy next to it as <stem>.lock.toml.
    Lock {
        manifest: PathBuf,
        /// Folder of run folders (where parent runs are looked up).
        #[arg(long, default_value = "artifacts/runs")]
        runs: PathBuf,
    },
    /// Rerun a finished run and report the replay level reached (L0 inputs and data order, L1 bit-identical
    /// fingerprints, L2/L3 numeric/statistical within the manifest's [replay] tolerances);
    /// prints the report as JSON and writes RUN_DIR/replay-<n>/replay.json.
    Replay {
        run_dir: PathBuf,
        /// Compare only the first K steps (default: every recorded step).
        #[arg(long)]
        steps: Option<u64>,
        /// Folder of run folders where parent runs are looked up [default: the folder holding RUN_DIR].
        #[arg(long)]
        runs: Option<PathBuf>,
        /// The highest level to attempt: l0 inputs and data order, l1 bitwise, l2 numeric, l3 statistical (l3
        /// retrains the manifest once per seed of its [replay.statistical]).
        #[arg(long, value_enum, default_value = "l3")]
        level: r1lab::repro::replay::Level,
    },
    /// Run a grid of manifest variants with paired seeds and write sweep.parquet, sweep_summary.parquet
    /// (mean, 95 % CI), sweep.png and a markdown table.
    Sweep {
        #[arg(required_unless_present = "grid")]
        manifest: Option<PathBuf>,
        /// A dotted manifest key and its values, e.g. train.optimizer.lr=1e-3,3e-3 (repeatable; none: the manifest
        /// itself over the seeds).
        #[arg(long = "set")]
        set: Vec<String>,
        /// Base seeds every cell runs with, e.g. 1,2,3.
        #[arg(long, value_delimiter = ',', required_unless_present = "grid")]
        seeds: Vec<u64>,
        /// Instead of MANIFEST/--set/--seeds/--metric: an ablation grid file (experiments/*/grids/*.grid.toml,
        /// format in lib/repro/grid.rs); also writes grid.md with the paper's numbers beside ours.
        #[arg(long, conflicts_with_all = ["manifest", "set", "seeds", "metric"])]
        grid: Option<PathBuf>,
        /// The final metric to tabulate.
        #[arg(long, default_value = "heldout.acc")]
        metric: String,
        /// Output folder [default: artifacts/sweeps/<manifest file stem>].
        #[arg(long)]
        out: Option<PathBuf>,
        /// Folder of run folders (where parent runs are looked up).
        #[arg(long, default_value = "artifacts/runs")]
        runs: PathBuf,
        /// No progress bars.
        #[arg(long)]
        quiet: bool,
    },
    /// Run Qwen2.5-VL on one chat prompt (+ images) and write logits, input_ids, pixel_values, image_grid_thw.
    Forward {
        #[command(flatten)]
        input: ChatInput,
        /// Output safetensors file.
        #[arg(long)]
        out: PathBuf,
    },
    /// OpenAI-compatible HTTP server (/v1/chat/completions, /v1/models) over a Qwen2.5-VL checkpoint, batching
    /// concurrent requests; prints `listening on http://ADDR` once the model is loaded.
    Serve {
        /// Checkpoint folder: config.json, safetensors, tokenizer.json, chat template, preprocessor_config.json.
        #[arg(long)]
        model: PathBuf,
        /// Address to bind; the default is loopback only.
        #[arg(long, default_value = "127.0.0.1")]
        host: String,
        /// Port; 0 picks a free one.
        #[arg(long, default_value_t = 8000)]
        port: u16,
        /// Name reported by /v1/models [default: the folder name].
        #[arg(long)]
        served_model_name: Option<String>,
        /// Weights and activations: f32 or bf16.
        #[arg(long, default_value = "f32")]
        dtype: String,
        /// Most sequences (n counted) generated together.
        #[arg(long, default_value_t = 32)]
        max_batch: usize,
        /// HTTP handler threads (requests in flight).
        #[arg(long, default_value_t = 16)]
        threads: usize,
        /// Largest request body in MiB.
        #[arg(long, default_value_t = 32)]
        max_body_mib: usize,
        /// Largest image in MiB (encoded).
        #[arg(long, default_value_t = 16)]
        max_image_mib: usize,
    },
    /// Generate a reply to one chat prompt (+ images) with Qwen2.5-VL; prints the text, then a JSON summary on
    /// stderr.
    Generate {
        #[command(flatten)]
        input: ChatInput,
        /// Stop after this many tokens if no EOS (config eos_token_id or <|im_end|>) came.
        #[arg(long, default_value_t = 256)]
        max_new_tokens: usize,
        /// Sampling temperature; 0 = greedy.
        #[arg(long, default_value_t = 0.0)]
        temperature: f64,
        /// Nucleus sampling mass; 1 = off.
        #[arg(long, default_value_t = 1.0)]
        top_p: f64,
        /// Keep the k most likely tokens; 0 = off.
        #[arg(long, default_value_t = 0)]
        top_k: i64,
        /// Seed of the sequence's ChaCha random stream.
        #[arg(long, default_value_t = 0)]
        seed: u64,
    },
}

/// One chat prompt for `forward` and `generate`: the checkpoint, the user turn and its images.
#[derive(clap::Args)]
struct ChatInput {
    /// Checkpoint folder: config.json, safetensors, tokenizer.json, chat template, preprocessor_config.json.
    #[arg(long)]
    model: PathBuf,
    /// The user turn's text.
    #[arg(long)]
    prompt: String,
    /// An image file; repeat for several (they come before the text in the user turn).
    #[arg(long)]
    image: Vec<PathBuf>,
    /// Weights and activations: f32 or bf16.
    #[arg(long, default_value = "f32")]
    dtype: String,
}

#[derive(Subcommand)]
enum ScoreCommand {
    /// MathVista testmini: normalize every extraction, score it and print the official scores JSON.
    Mathvista {
        /// Outputs file, pid -> record with `extraction` (the official output_*.json shape).
        #[arg(long)]
        outputs: PathBuf,
        /// Annotations: MathVista's testmini.json.
        #[arg(long)]
        annotations: PathBuf,
        /// Folder for scores.json and predictions.json [default: artifacts/eval/mathvista/<outputs file stem>].
        #[arg(long)]
        out: Option<PathBuf>,
        /// Accuracy as a fraction (the official script) or as percent strings (the published score files).
        #[arg(long, default_value_t = AccuracyFormat::Fraction)]
        accuracy: AccuracyFormat,
        /// No prediction for an empty multi-choice extraction (the official --ignore_empty_extractions).
        #[arg(long)]
        ignore_empty_extractions: bool,
        /// Extract answers from each record's `response` with an LLM judge at this OpenAI-compatible base URL
        /// (e.g. http://127.0.0.1:8000/v1; key from $R1LAB_JUDGE_API_KEY) instead of using `extraction`.
        #[arg(long, requires = "judge_model")]
        judge_url: Option<String>,
        /// The judge's model name (with --judge-url).
        #[arg(long, requires = "judge_url")]
        judge_model: Option<String>,
    },
    /// MathVista: agreement of r1lab's rule-based extraction with the official GPT `extraction` of
    /// every published output file; writes the report (markdown, and every differing prediction as CSV) and prints
    /// the per-file table. The committed report is reports/ (`--out reports` regenerates it; a test compares).
    Agreement {
        /// Folder searched (recursively) for output_*.json files with `response` and `extraction`.
        #[arg(long)]
        results: PathBuf,
        /// Annotations: MathVista's testmini.json.
        #[arg(long)]
        annotations: PathBuf,
        /// Folder for mathvista_extraction_agreement{.md,_disagreements.csv}.
        #[arg(long, default_value = "artifacts/eval")]
        out: PathBuf,
    },
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Info { json } => {
            let device = cli.device.resolve()?;
            let info = EnvInfo::collect(cli.device, device);
            if json {
                println!("{}", serde_json::to_string_pretty(&info)?);
            } else {
                println!("{info}");
            }
        }
        Command::Demo { chain, runs, prepare_only, quiet, seeds } => {
            let opts = demo::DemoOptions {
                repo_root: std::env::current_dir()?,
                runs_root: runs,
                device: cli.device,
                prepare_only,
                progress: !quiet,
                hub: r1lab::hub::HubOptions::from_env(),
                seeds,
            };
            demo::run(&chain, &opts)?;
        }
        Command::Smoke { steps, seed, lr, out } => {
            let device = cli.device.resolve()?;
            let cfg = SmokeConfig { steps, seed, lr, out, ..SmokeConfig::default() };
            println!("smoke: fitting sin(3x) with a {}-unit MLP for {steps} steps on {device:?}", cfg.hidden);
            let r = smoke::run(&cfg, cli.device, device)?;
            println!(
                "smoke: loss {:.4} -> {:.4}, held-out MSE {:.4}, {:.2} s",
                r.first_loss, r.final_loss, r.eval_mse, r.wall_seconds
            );
            for f in &r.files {
                println!("  wrote {f}");
            }
        }
        Command::Score { bench } => score(bench)?,
        Command::Grade { pairs } => grade(&pairs)?,
        Command::Eval { command } => r1lab::eval::bench::cli::run_on(&command, Some(cli.device))?,
        Command::Hub { command } => r1lab::hub::cli::run(&command)?,
        Command::Bench { command } => {
            let out = r1lab::perf::cli::run(&command, cli.device)?;
            println!("{}", out.table);
            println!("wrote {}", out.path.display());
        }
        Command::Data { command } => r1lab::data::cli::run(&command)?,
        Command::Tiny { command } => r1lab::model::tiny::cli::run(&command)?,
        Command::Run { manifest, runs, resume, quiet, require_locked } => {
            let opts = RunOptions {
                repo_root: std::env::current_dir()?,
                runs_root: runs,
                device: cli.device,
                resume,
                progress: !quiet,
                hub: r1lab::hub::HubOptions::from_env(),
            };
            let control = r1lab::pipeline::RunControl { require_locked, ..Default::default() };
            let out = r1lab::pipeline::run_manifest_with(&manifest, &opts, &control)?;
            println!("run {} finished: {}", out.record.run_id, out.dir.display());
            for (k, v) in &out.final_metrics {
                println!("  {k} = {v:.4}");
            }
        }
        Command::Lock { manifest, runs } => {
            let roots = r1lab::pipeline::resolve::Roots { repo: std::env::current_dir()?, runs };
            let hub = r1lab::hub::Hub::from_env();
            let (path, report) = r1lab::repro::lock::lock_file(&manifest, &roots, &hub)?;
            println!("{}", serde_json::to_string_pretty(&report)?);
            let state = if report.is_locked() { "locked" } else { "still unlocked (see unresolved)" };
            eprintln!("lock: {} -> {} ({state})", manifest.display(), path.display());
        }
        Command::Replay { run_dir, steps, runs, level } => {
            let runs_root = runs.or_else(|| run_dir.parent().map(PathBuf::from)).unwrap_or_default();
            let opts = RunOptions {
                repo_root: std::env::current_dir()?,
                runs_root,
                device: cli.device,
                resume: false,
                progress: false,
                hub: r1lab::hub::HubOptions::from_env(),
            };
            let ropts = r1lab::repro::replay::ReplayOptions { steps, max_level: level };
            let report = r1lab::repro::replay::replay_with(&run_dir, &opts, &ropts)?;
            println!("{}", serde_json::to_string_pretty(&report)?);
            eprintln!("replay: {}", report.summary);
        }
        Command::Sweep { manifest, set, seeds, metric, out, runs, quiet, grid } => {
            let opts = RunOptions {
                repo_root: std::env::current_dir()?,
                runs_root: runs,
                device: cli.device,
                resume: false,
                progress: !quiet,
                hub: r1lab::hub::HubOptions::from_env(),
            };
            if let Some(grid) = grid {
                let stem = grid.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
                let out = out.unwrap_or_else(|| PathBuf::from("artifacts/sweeps").join(stem));
                let outcome = r1lab::repro::grid::run_grid(&grid, &opts, &out)?;
                println!("{}", outcome.markdown);
                eprintln!("sweep: {} cells, tables in {}", outcome.cells.len(), outcome.dir.display());
                return Ok(());
            }
            let manifest = manifest.context("give MANIFEST (or --grid FILE)")?;
            let axes = set.iter().map(|s| r1lab::repro::sweep::Axis::parse(s)).collect::<Result<Vec<_>>>()?;
            let spec = r1lab::repro::sweep::SweepSpec { axes, seeds, metric };
            let stem = manifest.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
            let out = out.unwrap_or_else(|| PathBuf::from("artifacts/sweeps").join(stem));
            let outcome = r1lab::repro::sweep::run_sweep(&manifest, &spec, &opts, &out)?;
            println!("{}", outcome.markdown);
            eprintln!("sweep: {} runs, tables and plot in {}", outcome.rows.len(), outcome.dir.display());
        }
        Command::Forward { input: ChatInput { model, prompt, image, dtype }, out } => {
            let inputs =
                run::forward_to_file(&model, cli.device.resolve()?, run::parse_dtype(&dtype)?, &prompt, &image, &out)?;
            eprintln!(
                "forward: {} tokens, {} image(s), wrote {}",
                inputs.input_ids.size()[1],
                inputs.grids.len(),
                out.display()
            );
        }
        Command::Serve {
            model,
            host,
            port,
            served_model_name,
            dtype,
            max_batch,
            threads,
            max_body_mib,
            max_image_mib,
        } => {
            let mut opts = r1lab::serve::ServeOptions::new(model);
            opts.model_name = served_model_name.unwrap_or(opts.model_name);
            opts.host = host;
            opts.port = port;
            opts.device = cli.device.resolve()?;
            opts.kind = run::parse_dtype(&dtype)?;
            opts.max_batch = max_batch;
            opts.threads = threads;
            opts.limits.max_body_bytes = max_body_mib << 20;
            opts.limits.max_image_bytes = max_image_mib << 20;
            if !matches!(opts.host.as_str(), "127.0.0.1" | "localhost" | "::1") {
                eprintln!("serve: binding {} exposes the model beyond this machine (no authentication)", opts.host);
            }
            let server = r1lab::serve::start(&opts)?;
            println!("listening on http://{}", server.addr());
            std::io::Write::flush(&mut std::io::stdout())?;
            server.wait();
        }
        Command::Generate {
            input: ChatInput { model, prompt, image, dtype },
            max_new_tokens,
            temperature,
            top_p,
            top_k,
            seed,
        } => {
            let params = SamplingParams { temperature, top_p, top_k, max_new_tokens, ..Default::default() };
            let kind = run::parse_dtype(&dtype)?;
            let (g, text) = run::generate_text(&model, cli.device.resolve()?, kind, &prompt, &image, params, seed)?;
            println!("{text}");
            let logprob: f32 = g.logprobs.iter().sum();
            eprintln!(
                "{}",
                serde_json::json!({"tokens": g.tokens.len(), "truncated": g.truncated, "sum_logprob": logprob})
            );
        }
    }
    Ok(())
}

/// Prints the verdicts on stdout and a count on stderr.
fn grade(path: &std::path::Path) -> Result<()> {
    let file = std::fs::File::open(path).with_context(|| {
        format!("cannot open --pairs {}: give a JSON-lines file of pred/gold pairs", path.display())
    })?;
    let pairs = pairs::read_pairs(std::io::BufReader::new(file), &path.display().to_string())?;
    let total = pairs.len();
    let correct = pairs::write_verdicts(pairs, std::io::stdout().lock())?;
    eprintln!("grade: {correct}/{total} pairs correct in {}", path.display());
    Ok(())
}

/// Prints the scores JSON on stdout (and nothing else there, so it can be piped); the summary and
/// the written files go to stderr.
fn score(bench: ScoreCommand) -> Result<()> {
    let (outputs, annotations, out, accuracy, ignore_empty_extractions, judge) = match bench {
        ScoreCommand::Mathvista {
            outputs,
            annotations,
            out,
            accuracy,
            ignore_empty_extractions,
            judge_url,
            judge_model,
        } => (outputs, annotations, out, accuracy, ignore_empty_extractions, judge_url.zip(judge_model)),
        ScoreCommand::Agreement { results, annotations, out } => {
            return r1lab::eval::agreement::run_cli(&results, &annotations, &out).map(|_| ());
        }
    };
    let opts = NormalizeOptions { ignore_empty_extractions };
    let out = out.unwrap_or_else(|| mathvista::default_out_dir(&outputs));
    let eval = match judge {
        None => mathvista::score_files(&outputs, &annotations, opts)?,
        Some((url, model)) => {
            let config = r1lab::eval::judge::JudgeConfig::new(&url, &model);
            r1lab::eval::judge::score_mathvista_with_judge(&outputs, &annotations, opts, &config, &out)?
        }
    };
    let files = eval.write(&out, accuracy)?;
    println!("{}", eval.scores.to_json(accuracy));
    let avg = eval.scores.average;
    eprintln!(
        "mathvista: {}/{} correct ({:.2}%) in {}",
        avg.correct,
        avg.total,
        100.0 * avg.accuracy(),
        outputs.display()
    );
    let published = eval.items.iter().any(|i| i.published_prediction.is_some() || i.published_true_false.is_some());
    if published {
        eprintln!(
            "  the file's own prediction differs on {} item(s), its true_false on {}",
            eval.prediction_differs(),
            eval.true_false_differs()
        );
    }
    for (field, n) in &eval.disagreements {
        eprintln!(
            "  {n} record(s) carry a `{field}` that differs from {}; the record's is used, as by the official scorer",
            annotations.display()
        );
    }
    for f in files {
        eprintln!("  wrote {}", f.display());
    }
    Ok(())
}
