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
    /// Grade (prediction, gold) pairs with the RL answer grader (mathruler's grade_answer).
    Grade {
        /// JSON lines, one {"pred": ..., "gold": ...} object per line; prints one
        /// {"pred", "gold", "correct"} object per line.
        #[arg(long)]
        pairs: PathBuf,
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
        /// The manifest (TOML), e.g. experiments/embedded/vision_r1_cold_start.toml.
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
    },
    /// Run Qwen2.5-VL on one chat prompt (+ images) and write logits, input_ids, pixel_values, image_grid_thw.
    Forward {
        #[command(flatten)]
        input: ChatInput,
        /// Output safetensors file.
        #[arg(long)]
        out: PathBuf,
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
        Command::Demo { chain, runs, prepare_only, quiet } => {
            let opts = demo::DemoOptions {
                repo_root: std::env::current_dir()?,
                runs_root: runs,
                device: cli.device,
                prepare_only,
                progress: !quiet,
                hub: r1lab::hub::HubOptions::from_env(),
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
        Command::Hub { command } => r1lab::hub::cli::run(&command)?,
        Command::Data { command } => r1lab::data::cli::run(&command)?,
        Command::Tiny { command } => r1lab::model::tiny::cli::run(&command)?,
        Command::Run { manifest, runs, resume, quiet } => {
            let opts = RunOptions {
                repo_root: std::env::current_dir()?,
                runs_root: runs,
                device: cli.device,
                resume,
                progress: !quiet,
                hub: r1lab::hub::HubOptions::from_env(),
            };
            let out = r1lab::pipeline::run_manifest(&manifest, &opts)?;
            println!("run {} finished: {}", out.record.run_id, out.dir.display());
            for (k, v) in &out.final_metrics {
                println!("  {k} = {v:.4}");
            }
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
    let ScoreCommand::Mathvista { outputs, annotations, out, accuracy, ignore_empty_extractions } = bench;
    let eval = mathvista::score_files(&outputs, &annotations, NormalizeOptions { ignore_empty_extractions })?;
    let files = eval.write(&out.unwrap_or_else(|| mathvista::default_out_dir(&outputs)), accuracy)?;
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
