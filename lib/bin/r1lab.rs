//! `r1lab`: the command-line entry point. Each subcommand is a thin shell over the library.
use std::path::PathBuf;

use anyhow::Result;
use clap::{Parser, Subcommand};
use r1lab::backend::{DeviceSpec, EnvInfo};
use r1lab::demo::{self, DemoConfig};

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
    /// Run the main job on the embedded default (now: the foundation smoke job).
    Demo {
        #[arg(long, default_value_t = DemoConfig::default().steps)]
        steps: usize,
        #[arg(long, default_value_t = DemoConfig::default().seed)]
        seed: u64,
        #[arg(long, default_value_t = DemoConfig::default().lr)]
        lr: f64,
        /// Output folder for metrics.parquet, loss.png and summary.json.
        #[arg(long, default_value = "artifacts/runs/demo")]
        out: PathBuf,
    },
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    let device = cli.device.resolve()?;
    match cli.command {
        Command::Info { json } => {
            let info = EnvInfo::collect(cli.device, device);
            if json {
                println!("{}", serde_json::to_string_pretty(&info)?);
            } else {
                println!("{info}");
            }
        }
        Command::Demo { steps, seed, lr, out } => {
            let cfg = DemoConfig { steps, seed, lr, out, ..DemoConfig::default() };
            println!("demo: fitting sin(3x) with a {}-unit MLP for {steps} steps on {device:?}", cfg.hidden);
            let r = demo::run(&cfg, cli.device, device)?;
            println!(
                "demo: loss {:.4} -> {:.4}, held-out MSE {:.4}, {:.2} s",
                r.first_loss, r.final_loss, r.eval_mse, r.wall_seconds
            );
            for f in &r.files {
                println!("  wrote {f}");
            }
        }
    }
    Ok(())
}
