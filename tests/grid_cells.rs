//! The grid rows issue 5 item 7 added, end to end on the tiny Qwen2.5-VL (seconds on a CPU):
//!
//! - an evaluation-only stage (`train.algo = "none"`, Vision-R1 Tab.5 "Baseline") finishes with evaluation results
//!   and no checkpoint, its record holding the manifest's system prompt;
//! - a grid with a coupled axis (one value makes the stage evaluation-only, the other changes the reward and the
//!   system prompt together, as Vision-R1-Zero does) runs both cells and tabulates them.
//!
//! Every checked-in grid file loading, and every cell's merged manifest validating, is tested in
//! `lib/repro/grid.rs` (`every_checked_in_grid_parses_and_every_cell_validates`,
//! `vision_r1_baseline_zero_and_no_cot_rows_are_cells`).
mod common;

use std::path::{Path, PathBuf};

use r1lab::data::synthetic::Split;
use r1lab::pipeline::{RunControl, RunOptions, run_manifest_with};
use r1lab::repro::checkpoint;
use r1lab::repro::grid::run_grid;
use r1lab::repro::manifest::TrainSettings;

type Setup = common::Workspace;

/// The tiny model in an offline Hub cache and synthetic RL data (`data/rl/{train,test}.parquet`).
fn setup() -> Setup {
    let s = Setup::new();
    let cfg = r1lab::data::synthetic::Config { seed: 0, level: 1, size: 112 };
    let families = [r1lab::data::synthetic::Family::ALL[0]];
    let rl = s.root.path().join("data/rl");
    r1lab::data::synthetic::export::export(&rl, &families, &cfg, Split::Train, 2).unwrap();
    r1lab::data::synthetic::export::export(&rl, &families, &cfg, Split::Test, 2).unwrap();
    s
}

fn opts(s: &Setup) -> RunOptions {
    s.run_options()
}

const SYSTEM: &str = "Think in <think> </think>, answer in <answer> </answer>.";

/// One GRPO step on the digit-free synthetic prompts.
const GRPO: &str = "algo = \"grpo\"\nschedule = [{ max_new_tokens = 8, group_size = 2, steps = 1 }]\n\
    carry_over = { optimizer = \"reset\", reference = \"stage_init\" }\nrollout_batch_prompts = 2\n\
    update_batch_prompts = 1\nmicro_batch = 2\nppo_epochs = 1\nfreeze_vision = false\n\
    sampling = { temperature = 1.0, top_p = 1.0, max_prompt_tokens = 512 }\nreward = { kind = \"vision_r1_hard\" }\n\
    advantage = { estimator = { kind = \"grpo\", eps = 1e-6 }, singleton = \"zero_mean_unit_std\", zero_variance = \"torch_numerics\" }\n\
    surrogate = { kind = \"ppo_clip\", eps_low = 0.2, eps_high = 0.2 }\nlog_ratio_clamp = { kind = \"none\" }\n\
    aggregation = { kind = \"micro_batch_token_mean\" }\n\
    [train.optimizer]\nlr = 1e-3\nbetas = [0.9, 0.999]\neps = 1e-8\nweight_decay = 0.0\ngrad_clip = 1.0\n\
    schedule = \"constant\"\nwarmup_ratio = 0.0\n";

/// The RL data (`[data]` body).
const RL_DATA: &str = "source = { kind = \"local\", path = \"data/rl\" }\nsplit = \"train\"\n";

/// A locked manifest on the tiny model with a held-out suite, `data` and `train` being the bodies of its tables.
fn manifest(s: &Setup, name: &str, data: &str, train: &str) -> PathBuf {
    let text = format!(
        "schema_version = 1\nid = \"grid_test/{name}\"\nlock = {{ state = \"unlocked\", reason = \"test\" }}\n\
         [paper]\narxiv = \"2503.06749\"\nversion = \"v4\"\nsection = \"test\"\n[stage]\nname = \"{name}\"\n\
         [model]\nsource = {{ kind = \"hub\", repo = \"r1lab/tiny-qwen2.5-vl\", revision = \"{rev}\" }}\ndtype = \"f32\"\n\
         [data]\n{data}[seeds]\nbase = 3\n[train]\n{train}\n\
         [[eval]]\nname = \"heldout\"\nsource = {{ kind = \"local\", path = \"data/rl\" }}\nsplit = \"test\"\n\
         every_steps = 1\nmax_new_tokens = 8\ntemperature = 0.6\ntop_p = 0.95\n\
         [checkpoint]\nevery_steps = 1\ninclude_optimizer = false\n",
        rev = s.revision,
    );
    let path = s.root.path().join(format!("{name}.toml"));
    std::fs::write(&path, text).unwrap();
    // Locking lists the model's files (an unlisted Hub snapshot is refused) and pins the data.
    s.lock(&path)
}

#[test]
fn an_evaluation_only_stage_records_evaluations_and_no_checkpoint() {
    let s = setup();
    let data = format!("{RL_DATA}system_prompt = {SYSTEM:?}\n");
    let path = manifest(&s, "baseline", &data, "algo = \"none\"");
    let out = run_manifest_with(&path, &opts(&s), &RunControl::default()).unwrap();
    assert!(out.record.is_complete());
    assert!(matches!(out.record.manifest.train, TrainSettings::EvalOnly(_)));
    assert_eq!(out.record.manifest.data.system_prompt.as_deref(), Some(SYSTEM));
    let acc = out.final_metrics["heldout.acc"];
    assert!((0.0..=1.0).contains(&acc), "{:?}", out.final_metrics);
    assert!(out.final_metrics.keys().all(|k| k.starts_with("heldout.")), "only evaluations: {:?}", out.final_metrics);
    assert!(checkpoint::latest(&out.dir).unwrap().is_none(), "an evaluation-only run writes no checkpoint");
    let rows = std::fs::read_to_string(out.dir.join("eval/heldout-step000000.jsonl")).unwrap();
    assert_eq!(rows.lines().count(), 2, "both test prompts evaluated once");
    for f in ["metrics.parquet", "final_metrics.json", "eval/heldout-step000000.jsonl"] {
        assert!(out.record.outputs.contains_key(f), "{f} is a recorded output: {:?}", out.record.outputs.keys());
    }
    // A replay checks its inputs and manifest (L0); there are no training steps to fingerprint.
    let r = r1lab::repro::replay::replay(&out.dir, &opts(&s), None).unwrap();
    assert_eq!(r.level, "L0", "{r:#?}");
    assert!(!r.l1.attempted);
}

#[test]
fn a_coupled_axis_runs_an_evaluation_only_cell_beside_a_training_cell() {
    let s = setup();
    let base = manifest(&s, "zero", RL_DATA, GRPO);
    let grid = format!(
        "table = \"test\"\nmanifest = \"{}\"\nseeds = [1]\nmetric = \"heldout.acc\"\n\
         [[axis]]\nlabels = [\"Baseline\", \"Zero\"]\n\
         [[axis.sets]]\n\"train\" = {{ algo = \"none\" }}\n\
         [[axis.sets]]\n\"train.reward\" = {{ kind = \"r1v_format_accuracy\", format_weight = 0.5 }}\n\
         \"data.system_prompt\" = {SYSTEM:?}\n\
         [[published]]\ncell = \"Baseline\"\nsource = \"Tab.5 v4\"\nmetrics = {{ \"heldout.acc\" = 0.5 }}\n",
        base.file_name().unwrap().to_str().unwrap()
    );
    let grid_path = s.root.path().join("g.grid.toml");
    std::fs::write(&grid_path, grid).unwrap();
    let out_dir = s.root.path().join("grid");
    let out = run_grid(&grid_path, &opts(&s), &out_dir).unwrap();
    let labels: Vec<&str> = out.cells.iter().map(|(l, _)| l.as_str()).collect();
    assert_eq!(labels, ["Baseline", "Zero"]);
    assert!(
        out.markdown.contains("| Baseline | 1 |") && out.markdown.contains("| 0.5 | Tab.5 v4 |"),
        "{}",
        out.markdown
    );
    let run_dir = |cell: usize| -> PathBuf {
        let text = std::fs::read_to_string(out_dir.join(format!("cells/c{cell}-s1.toml"))).unwrap();
        let m = r1lab::repro::manifest::Manifest::from_toml_str(&text).unwrap();
        let id =
            r1lab::repro::record::run_id(&m, &r1lab::repro::record::CodeState::detect(s.root.path()), None).unwrap();
        out_dir.join("runs").join(id)
    };
    let (baseline, zero) = (run_dir(0), run_dir(1));
    assert!(checkpoint::latest(&baseline).unwrap().is_none());
    assert!(checkpoint::latest(&zero).unwrap().is_some(), "the training cell checkpoints");
    let zero_record = r1lab::repro::record::RunRecord::read(&zero).unwrap();
    assert_eq!(zero_record.manifest.data.system_prompt.as_deref(), Some(SYSTEM));
    assert!(Path::new(&out_dir.join("grid.md")).is_file());
}

#[test]
fn strip_cot_trains_the_sft_stage_on_the_answers_only() {
    let s = setup();
    let sft = "algo = \"sft\"\nepochs = 1\nglobal_batch = 2\ngrad_accumulation = 1\nmax_length = 1024\n\
               freeze_vision = false\nfreeze_merger = false\nmodality = \"multimodal\"\n\
               [train.optimizer]\nlr = 1e-3\nbetas = [0.9, 0.999]\neps = 1e-8\nweight_decay = 0.0\ngrad_clip = 1.0\n\
               schedule = \"constant\"\nwarmup_ratio = 0.0\n";
    let target_tokens = |name: &str, transform: &str| {
        let data = format!("source = {{ kind = \"local\", path = \"data/rl\" }}\nsplit = \"train_sft\"\n{transform}");
        let out = run_manifest_with(&manifest(&s, name, &data, sft), &opts(&s), &RunControl::default()).unwrap();
        out.final_metrics["target_tokens"]
    };
    let full = target_tokens("sft_cot", "");
    let stripped = target_tokens("sft_no_cot", "transform = \"strip_cot\"\n");
    assert!(stripped > 0.0 && stripped < full / 2.0, "targets without the CoT are short: {stripped} vs {full} tokens");
}
