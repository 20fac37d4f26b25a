//! Manifest tests: every refusal names its key, round trips, hash stability, and the shipped example
//! manifests validate.
use std::path::PathBuf;

use super::*;
use crate::rl::pad::Pad;
use crate::rl::reward::Reward;

const SFT: &str = r#"
schema_version = 1
id = "test_paper/cold_start"
lock = { state = "locked" }
paper = { arxiv = "2503.06749", version = "v4", section = "§3.3" }
stage = { name = "cold_start" }
model = { source = { kind = "hub", repo = "Qwen/Qwen2.5-VL-7B-Instruct", revision = "cc594898137f460bfe9f0759e9844b3ce807cfb5" }, dtype = "bf16" }
data = { source = { kind = "local", path = "data/cold", files = { "train.json" = "3b5d5c3712955042212316173ccf37be800cbd4e5c1b0c9da39f1d0b1f2e4c6d" } }, split = "train" }
seeds = { base = 7 }
checkpoint = { every_steps = 10, include_optimizer = true }

[train]
algo = "sft"
epochs = 2
global_batch = 32
grad_accumulation = 4
max_length = 16384
freeze_vision = true
freeze_merger = true
modality = "multimodal"
optimizer = { lr = 5e-6, betas = [0.9, 0.999], eps = 1e-8, weight_decay = 0.0, grad_clip = 1.0, schedule = "cosine", warmup_ratio = 0.05 }
"#;

fn err(text: &str) -> String {
    format!("{:#}", Manifest::from_toml_str(text).unwrap_err())
}

fn example(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(rel)
}

fn vision_r1() -> String {
    std::fs::read_to_string(example("experiments/vision_r1/ptst_stage1_stage2.toml")).unwrap()
}

#[test]
fn minimal_sft_manifest_loads() {
    let m = Manifest::from_toml_str(SFT).unwrap();
    assert!(m.is_locked());
    assert!(matches!(m.train, TrainSettings::Sft(ref s) if s.epochs == 2 && s.freeze_vision));
}

#[test]
fn unknown_keys_are_refused_at_every_level() {
    assert!(err(&format!("{SFT}\n[extra]\nx = 1\n")).contains("extra"));
    let e = err(&SFT.replace("seeds = { base = 7 }", "seeds = { base = 7, salt = 3 }"));
    assert!(e.contains("salt"), "{e}");
    let e = err(&SFT.replace("epochs = 2", "epochs = 2\nepoch = 3"));
    assert!(e.contains("epoch"), "{e}");
    let e = err(&SFT.replace("kind = \"local\", path", "kind = \"local\", sha = \"x\", path"));
    assert!(e.contains("sha"), "{e}");
}

#[test]
fn missing_keys_are_refused() {
    let e = err(&SFT.replace("seeds = { base = 7 }\n", ""));
    assert!(e.contains("seeds"), "{e}");
    let e = err(&SFT.replace("grad_accumulation = 4\n", ""));
    assert!(e.contains("grad_accumulation"), "{e}");
    let e = err(&SFT.replace("schema_version = 1\n", ""));
    assert!(e.contains("schema_version"), "{e}");
}

#[test]
fn wrong_schema_version_is_refused() {
    assert!(err(&SFT.replace("schema_version = 1", "schema_version = 2")).contains("schema_version = 2"));
}

#[test]
fn pad_on_an_sft_stage_is_refused() {
    let pad = "pad = { method = { kind = \"released_code\", t_low = 0.03, t_high = 0.97, alpha = 1.5, ratio = 1.5, \
               replacement = true }, normalize_by_length = true }";
    let e = err(&SFT.replace("modality = \"multimodal\"", &format!("modality = \"multimodal\"\n{pad}")));
    assert!(e.contains("pad"), "{e}");
}

#[test]
fn moving_revision_needs_an_unlocked_manifest() {
    let moving = SFT.replace("cc594898137f460bfe9f0759e9844b3ce807cfb5", "main");
    let e = err(&moving);
    assert!(e.contains("model.source.revision") && e.contains("40-hex") && e.contains("unlocked"), "{e}");
    let unlocked = moving.replace("{ state = \"locked\" }", "{ state = \"unlocked\", reason = \"offline\" }");
    assert!(!Manifest::from_toml_str(&unlocked).unwrap().is_locked());
    let e = err(&moving.replace("{ state = \"locked\" }", "{ state = \"unlocked\", reason = \" \" }"));
    assert!(e.contains("lock.reason"), "{e}");
}

#[test]
fn grpo_group_of_one_with_z_scores_is_refused() {
    let text = vision_r1().replace("group_size = 8", "group_size = 1");
    let e = err(&text);
    assert!(e.contains("train.schedule[1].group_size = 1"), "{e}");
    // Dr.GRPO with size-1 groups (mean 0) is allowed.
    let dr = text.replace("estimator = { kind = \"grpo\", eps = 1e-6 }", "estimator = { kind = \"dr_grpo\" }");
    Manifest::from_toml_str(&dr).unwrap();
}

#[test]
fn eps_low_of_one_or_more_is_refused() {
    let e = err(&vision_r1().replace("eps_low = 0.2", "eps_low = 1.0"));
    assert!(e.contains("train.surrogate") && e.contains("eps_low"), "{e}");
}

#[test]
fn empty_ptst_schedule_is_refused() {
    let text = vision_r1();
    let start = text.find("schedule = [").unwrap();
    let end = start + text[start..].find("]\n").unwrap() + 2;
    let e = err(&format!("{}schedule = []\n{}", &text[..start], &text[end..]));
    assert!(e.contains("train.schedule is empty"), "{e}");
}

#[test]
fn other_invalid_combinations_name_their_key() {
    let e = err(&SFT.replace("global_batch = 32", "global_batch = 30"));
    assert!(e.contains("train.global_batch"), "{e}");
    let e = err(&vision_r1().replace("update_batch_prompts = 128", "update_batch_prompts = 100"));
    assert!(e.contains("train.update_batch_prompts"), "{e}");
    let e = err(&SFT.replace("every_steps = 10", "every_steps = 0"));
    assert!(e.contains("checkpoint.every_steps"), "{e}");
    let run_src = SFT.replace(
        "{ kind = \"hub\", repo = \"Qwen/Qwen2.5-VL-7B-Instruct\", revision = \"cc594898137f460bfe9f0759e9844b3ce807cfb5\" }",
        &format!("{{ kind = \"parent_run\", stage = \"test_paper/other\", step = 5, sha256 = \"{}\" }}", "a".repeat(64)),
    );
    let e = err(&run_src);
    assert!(e.contains("model.source.stage") && e.contains("stage.parent"), "{e}");
}

#[test]
fn optimizer_states_are_named_and_checked_against_the_dtype() {
    let with =
        |states: &str| SFT.replace("warmup_ratio = 0.05 }", &format!("warmup_ratio = 0.05, states = \"{states}\" }}"));
    let m = Manifest::from_toml_str(&with("f32_master")).unwrap();
    assert!(matches!(m.train, TrainSettings::Sft(ref s) if s.optimizer.states == StatePrecision::F32Master));
    assert_ne!(m.sha256().unwrap(), Manifest::from_toml_str(SFT).unwrap().sha256().unwrap());
    // The default is left out of the canonical form: existing run ids do not change.
    let default = Manifest::from_toml_str(&with("f32_moments")).unwrap();
    assert_eq!(default.sha256().unwrap(), Manifest::from_toml_str(SFT).unwrap().sha256().unwrap());
    let e = err(&with("param_dtype").replace("dtype = \"bf16\"", "dtype = \"f32\""));
    assert!(e.contains("train.optimizer.states") && e.contains("param_dtype"), "{e}");
    let e = err(&with("f16_master"));
    assert!(e.contains("f16_master"), "{e}");
}

#[test]
fn round_trip_through_toml_preserves_everything() {
    for text in [SFT.to_string(), vision_r1()] {
        let m = Manifest::from_toml_str(&text).unwrap();
        let again = Manifest::from_toml_str(&m.to_toml_string().unwrap()).unwrap();
        assert_eq!(m, again);
        assert_eq!(m.sha256().unwrap(), again.sha256().unwrap());
    }
}

#[test]
fn hash_is_stable_and_sensitive() {
    let m = Manifest::from_toml_str(SFT).unwrap();
    let h = m.sha256().unwrap();
    assert!(source::is_hex(&h, 64));
    // Formatting, comments and key order do not change the hash.
    let reordered =
        SFT.replace("seeds = { base = 7 }\n", "").replace("[train]", "# comment\n[train]") + "\n[seeds]\nbase = 7\n";
    let reordered = reordered.replacen("schema_version = 1\n", "", 1).replacen("id = ", "schema_version = 1\nid = ", 1);
    assert_eq!(Manifest::from_toml_str(&reordered).unwrap().sha256().unwrap(), h);
    // Every value does.
    assert_ne!(Manifest::from_toml_str(&SFT.replace("base = 7", "base = 8")).unwrap().sha256().unwrap(), h);
    assert_ne!(Manifest::from_toml_str(&SFT.replace("lr = 5e-6", "lr = 5.1e-6")).unwrap().sha256().unwrap(), h);
    // The canonical form is sorted JSON without whitespace.
    let json = m.canonical_json().unwrap();
    assert!(json.starts_with("{\"checkpoint\":{") && !json.contains(' '), "{json}");
}

#[test]
fn hash_is_pinned() {
    // A change of this value means every recorded run id changes: bump SCHEMA_VERSION deliberately.
    let h = Manifest::from_toml_str(SFT).unwrap().sha256().unwrap();
    assert_eq!(h, "3aabad299c0a0a35c71fcd9796eb58a7a10402b725c12abe464d9f5a5fc5daf8");
}

#[test]
fn example_manifests_validate_and_convert_to_rl_settings() {
    let v = Manifest::load(&example("experiments/vision_r1/ptst_stage1_stage2.toml")).unwrap();
    assert!(!v.is_locked());
    let TrainSettings::Grpo(g) = &v.train else { panic!("vision_r1 PTST is GRPO") };
    let stages: Vec<_> = g.schedule.iter().map(|s| (s.max_new_tokens, s.group_size, s.steps)).collect();
    assert_eq!(stages, vec![(4096, 16, 100), (8192, 8, 100)]);
    assert_eq!(g.total_steps(), 200);
    assert_eq!(g.reward(), Reward::VisionR1Hard);
    assert_eq!(g.actor_loss().policy, crate::rl::loss::PolicyLoss::EASYR1);
    assert!(g.pad().is_none());

    let r = Manifest::load(&example("experiments/revisual_r1/mrl_pad.toml")).unwrap();
    let TrainSettings::Grpo(g) = &r.train else { panic!("revisual MRL is GRPO") };
    assert_eq!(g.pad(), Some(Pad::released_code()));
    assert_eq!(g.actor_loss().policy, crate::rl::loss::PolicyLoss::revisual());
    assert!(g.actor_loss().kl.is_none());
    assert_eq!(g.actor_loss().entropy.unwrap().schedule, crate::rl::entropy::EntropySchedule::revisual_paper());
    assert_ne!(v.sha256().unwrap(), r.sha256().unwrap());
}

#[test]
fn load_names_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("bad.toml");
    std::fs::write(&p, SFT.replace("epochs = 2", "epochs = 0")).unwrap();
    let e = format!("{:#}", Manifest::load(&p).unwrap_err());
    assert!(e.contains("bad.toml") && e.contains("train.epochs"), "{e}");
    let m = Manifest::from_toml_str(SFT).unwrap();
    m.save(&tmp.path().join("resolved.toml")).unwrap();
    assert_eq!(Manifest::load(&tmp.path().join("resolved.toml")).unwrap(), m);
}

#[test]
fn system_prompt_is_recorded_hashed_and_never_empty() {
    let with = |p: &str| SFT.replace("split = \"train\" }", &format!("split = \"train\", system_prompt = {p:?} }}"));
    let m = Manifest::from_toml_str(&with("Think first.")).unwrap();
    assert_eq!(m.data.system_prompt.as_deref(), Some("Think first."));
    let again = Manifest::from_toml_str(&m.to_toml_string().unwrap()).unwrap();
    assert_eq!(again.data.system_prompt.as_deref(), Some("Think first."));
    assert!(m.canonical_json().unwrap().contains("\"system_prompt\":\"Think first.\""));
    assert_ne!(m.sha256().unwrap(), Manifest::from_toml_str(SFT).unwrap().sha256().unwrap());
    let e = err(&with(" "));
    assert!(e.contains("data.system_prompt is empty"), "{e}");
}

#[test]
fn strip_cot_transform_is_for_sft_stages_only() {
    let sft = SFT.replace("split = \"train\" }", "split = \"train\", transform = \"strip_cot\" }");
    let m = Manifest::from_toml_str(&sft).unwrap();
    assert_eq!(m.data.transform, Some(DataTransform::StripCot));
    let grpo = vision_r1().replace("split = \"train\"\n", "split = \"train\"\ntransform = \"strip_cot\"\n");
    let e = err(&grpo);
    assert!(e.contains("data.transform") && e.contains("not SFT"), "{e}");
    let e = err(&SFT.replace("split = \"train\" }", "split = \"train\", transform = \"strip_reasoning\" }"));
    assert!(e.contains("strip_reasoning"), "{e}");
}

#[test]
fn evaluation_only_stages_need_a_suite_and_take_no_settings() {
    let text = vision_r1();
    let start = text.find("[train]").unwrap();
    let end = text.find("[[eval]]").unwrap();
    let eval_only = format!("{}[train]\nalgo = \"none\"\n\n{}", &text[..start], &text[end..]);
    let m = Manifest::from_toml_str(&eval_only).unwrap();
    assert_eq!(m.train, TrainSettings::EvalOnly(EvalOnlySettings {}));
    assert_eq!(Manifest::from_toml_str(&m.to_toml_string().unwrap()).unwrap(), m);
    assert!(m.canonical_json().unwrap().contains("\"train\":{\"algo\":\"none\"}"));
    let e = err(&eval_only.replace("algo = \"none\"", "algo = \"none\"\nepochs = 1"));
    assert!(e.contains("epochs"), "{e}");
    let suites = eval_only.find("[[eval]]").unwrap();
    let no_suite = format!("{}{}", &eval_only[..suites], &eval_only[eval_only.find("[checkpoint]").unwrap()..]);
    let e = err(&no_suite);
    assert!(e.contains("train.algo = \"none\"") && e.contains("no [[eval]] suite"), "{e}");
}

#[test]
fn before_train_defaults_to_true_and_round_trips() {
    let text = vision_r1();
    let m = Manifest::from_toml_str(&text).unwrap();
    assert!(m.eval.iter().all(|e| e.before_train));
    // Left at its default it is not serialised, so the run ids of manifests that do not set it stay the same.
    assert!(!m.canonical_json().unwrap().contains("before_train"));
    let off = text.replacen("[[eval]]\n", "[[eval]]\nbefore_train = false\n", 1);
    let m = Manifest::from_toml_str(&off).unwrap();
    assert!(!m.eval[0].before_train);
    assert_eq!(Manifest::from_toml_str(&m.to_toml_string().unwrap()).unwrap(), m);
    assert!(m.canonical_json().unwrap().contains("\"before_train\":false"));
}
