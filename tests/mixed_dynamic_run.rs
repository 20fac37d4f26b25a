//! `r1lab run` end to end on the tiny Qwen2.5-VL with the two issue-5 additions for ReVisual-R1 Tab.3
//! "CS+Mixed-RL" and Tab.4 "DAPO": a mixed data source (the synthetic multimodal RL problems and their text twins,
//! locked member by member, both recorded as inputs) and DAPO dynamic sampling, whose kept / generated group
//! counts land in `metrics.parquet` and whose data cursor lands in the checkpoint's `trainer.json`.
mod common;

use r1lab::data::synthetic::Split;
use r1lab::pipeline::{RunControl, run_manifest_with};
use r1lab::repro::checkpoint;
use r1lab::repro::manifest::Source;
use r1lab::repro::record::Metrics;

#[test]
fn a_mixed_source_with_dynamic_sampling_runs_and_logs_its_counts() {
    let s = common::Workspace::new();
    let cfg = r1lab::data::synthetic::Config { seed: 0, level: 1, size: 112 };
    let families = [r1lab::data::synthetic::Family::ALL[0]];
    let rl = s.root.path().join("data/rl");
    r1lab::data::synthetic::export::export(&rl, &families, &cfg, Split::Train, 3).unwrap();
    r1lab::data::synthetic::export::export(&rl, &families, &cfg, Split::Test, 2).unwrap();
    // The efficient-length reward varies with the response length, so a random policy's groups can have signal.
    let text = format!(
        "schema_version = 1\nid = \"mix_test/mixed_dapo\"\nlock = {{ state = \"unlocked\", reason = \"test\" }}\n\
         [paper]\narxiv = \"2506.04207\"\nversion = \"v2\"\nsection = \"test\"\n[stage]\nname = \"mixed_dapo\"\n\
         [model]\nsource = {{ kind = \"hub\", repo = \"r1lab/tiny-qwen2.5-vl\", revision = \"{rev}\" }}\ndtype = \"f32\"\n\
         [data]\nsplit = \"train\"\n[data.source]\nkind = \"mixed\"\nmix = \"concat_shuffle\"\n\
         [[data.source.members]]\nsplit = \"train\"\nsource = {{ kind = \"local\", path = \"data/rl\" }}\n\
         [[data.source.members]]\nsplit = \"train_text\"\nsource = {{ kind = \"local\", path = \"data/rl\" }}\n\
         [seeds]\nbase = 3\n[train]\nalgo = \"grpo\"\n\
         schedule = [{{ max_new_tokens = 6, group_size = 4, steps = 2 }}]\n\
         carry_over = {{ optimizer = \"reset\", reference = \"stage_init\" }}\nrollout_batch_prompts = 2\n\
         update_batch_prompts = 1\nmicro_batch = 4\nppo_epochs = 1\nfreeze_vision = false\n\
         sampling = {{ temperature = 1.0, top_p = 1.0, max_prompt_tokens = 512 }}\n\
         reward = {{ kind = \"efficient_length\", budget = 6, alpha = 0.2, delta = 0.0 }}\n\
         advantage = {{ estimator = {{ kind = \"grpo\", eps = 1e-6 }}, singleton = \"reject\", zero_variance = \"torch_numerics\" }}\n\
         surrogate = {{ kind = \"ppo_clip\", eps_low = 0.2, eps_high = 0.28 }}\nlog_ratio_clamp = {{ kind = \"none\" }}\n\
         aggregation = {{ kind = \"global_token_mean\" }}\n\
         dynamic_sampling = {{ kind = \"dapo\", max_gen_batches = 100, metric = \"reward\" }}\n\
         [train.optimizer]\nlr = 1e-3\nbetas = [0.9, 0.999]\neps = 1e-8\nweight_decay = 0.0\ngrad_clip = 1.0\n\
         schedule = \"constant\"\nwarmup_ratio = 0.0\n\
         [checkpoint]\nevery_steps = 1\ninclude_optimizer = false\n",
        rev = s.revision,
    );
    let path = s.root.path().join("mixed_dapo.toml");
    std::fs::write(&path, text).unwrap();
    let locked = s.lock(&path);
    let m = r1lab::repro::manifest::Manifest::load(&locked).unwrap();
    let Source::Mixed { members, .. } = &m.data.source else { panic!("still mixed after locking") };
    for (member, file) in members.iter().zip(["train.parquet", "train_text.parquet"]) {
        let Source::Local { files, .. } = &member.source else { panic!() };
        assert!(files.contains_key(file), "member {file} pinned: {files:?}");
    }

    let out = run_manifest_with(&locked, &s.run_options(), &RunControl::default()).unwrap();
    assert!(out.record.is_complete());
    let inputs: Vec<&String> = out.record.inputs.keys().collect();
    assert!(out.record.inputs.contains_key("data/0/train.parquet"), "{inputs:?}");
    assert!(out.record.inputs.contains_key("data/1/train_text.parquet"), "{inputs:?}");

    let metrics = Metrics::read_parquet(&out.dir.join("metrics.parquet"), u64::MAX).unwrap();
    let kept = metrics.series("dynamic_kept_groups");
    let generated = metrics.series("dynamic_generated_groups");
    let draws = metrics.series("dynamic_gen_batches");
    assert_eq!(kept, vec![(1, 2.0), (2, 2.0)], "every step trains on rollout_batch_prompts groups");
    assert_eq!(generated.len(), 2);
    for ((_, g), (_, d)) in generated.iter().zip(&draws) {
        assert_eq!(*g, 2.0 * d, "2 prompts per draw");
        assert!(*d >= 1.0);
    }
    assert_eq!(metrics.series("zero_variance_frac").iter().map(|(_, v)| *v).collect::<Vec<_>>(), vec![0.0, 0.0]);
    // The checkpoint keeps the data cursor: every draw of both steps.
    let ckpt = checkpoint::latest(&out.dir).unwrap().unwrap();
    let total: f64 = draws.iter().map(|(_, d)| d).sum();
    assert_eq!(ckpt.trainer.counters.get("gen_batches"), Some(&(total as u64)), "{:?}", ckpt.trainer);
}
