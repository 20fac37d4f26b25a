//! Tests of the mixed data source ([`super::mix`]) and DAPO dynamic sampling ([`super::dynamic`]) in manifests:
//! the checked-in manifests load, every load-time refusal names its key, the hash covers every member, and a
//! manifest without the new keys hashes as before.
use std::path::PathBuf;

use super::*;
use crate::repro::manifest::dynamic::{DynamicSamplingSpec, FilterMetricSpec};
use crate::repro::manifest::mix::MixRule;

fn path(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(rel)
}

fn text(rel: &str) -> String {
    std::fs::read_to_string(path(rel)).unwrap()
}

fn err(text: &str) -> String {
    format!("{:#}", Manifest::from_toml_str(text).unwrap_err())
}

#[test]
fn mixed_rl_manifests_load_with_every_member() {
    for (rel, splits) in [
        ("experiments/revisual_r1/mixed_rl.toml", ["train", "train"]),
        ("experiments/embedded/revisual_r1_mixed_rl.toml", ["train", "train_text"]),
    ] {
        let m = Manifest::load(&path(rel)).unwrap();
        let Source::Mixed { mix, members } = &m.data.source else { panic!("{rel}: not mixed") };
        assert_eq!(*mix, MixRule::ConcatShuffle);
        assert_eq!(members.iter().map(|x| x.split.as_str()).collect::<Vec<_>>(), splits, "{rel}");
        assert!(matches!(m.train, TrainSettings::Grpo(_)), "{rel}");
        assert!(!m.data.source.is_locked(), "{rel}: members are not pinned");
        // Round trip, and the canonical JSON names both members.
        assert_eq!(Manifest::from_toml_str(&m.to_toml_string().unwrap()).unwrap(), m);
        let json = m.canonical_json().unwrap();
        assert!(json.contains("\"kind\":\"mixed\"") && json.matches("\"split\":").count() >= 3, "{json}");
    }
    let hub = Manifest::load(&path("experiments/revisual_r1/mixed_rl.toml")).unwrap();
    let Source::Mixed { members, .. } = &hub.data.source else { unreachable!() };
    let repos: Vec<&str> =
        members.iter().map(|m| if let Source::Hub { repo, .. } = &m.source { repo.as_str() } else { "" }).collect();
    assert_eq!(repos, ["csfufu/mmrl", "csfufu/textrl"]);
}

#[test]
fn the_hash_covers_every_member() {
    let t = text("experiments/embedded/revisual_r1_mixed_rl.toml");
    let h = Manifest::from_toml_str(&t).unwrap().sha256().unwrap();
    let changed = t.replace("split = \"train_text\"", "split = \"train_text2\"");
    assert_ne!(Manifest::from_toml_str(&changed).unwrap().sha256().unwrap(), h);
    // Member order is part of the mix (rows are concatenated in member order before the shuffle).
    let mut swapped = Manifest::from_toml_str(&t).unwrap();
    let Source::Mixed { members, .. } = &mut swapped.data.source else { unreachable!() };
    members.reverse();
    swapped.validate().unwrap();
    assert_ne!(swapped.sha256().unwrap(), h);
}

#[test]
fn mixed_source_refusals_name_the_key() {
    let t = text("experiments/embedded/revisual_r1_mixed_rl.toml");
    // One member.
    let second = t.find("[[data.source.members]]   # their text twins").unwrap();
    let end = t.find("[seeds]").unwrap();
    let one = format!("{}{}", &t[..second], &t[end..]);
    let e = err(&one);
    assert!(e.contains("data.source mixes 1 member") && e.contains("at least two"), "{e}");
    // No members at all.
    let first = t.find("[[data.source.members]]").unwrap();
    let e = err(&format!("{}{}", &t[..first], &t[end..]));
    assert!(e.contains("members"), "{e}");
    // A nested mix.
    let nested = t.replace(
        "split = \"train_text\"\nsource = { kind = \"local\", path = \"artifacts/data/embedded/rl\" }",
        "split = \"train_text\"\nsource = { kind = \"mixed\", mix = \"concat_shuffle\", members = [{ split = \"a\", source = \
         { kind = \"local\", path = \"x\" } }, { split = \"b\", source = { kind = \"local\", path = \"y\" } }] }",
    );
    let e = err(&nested);
    assert!(e.contains("data.source.members[1]") && e.contains("nested"), "{e}");
    // An unknown mixing rule.
    let e = err(&t.replace("mix = \"concat_shuffle\"", "mix = \"interleave\""));
    assert!(e.contains("interleave"), "{e}");
    // A mixed model source, a mixed eval suite, and a mixed SFT stage.
    let cold = text("experiments/embedded/revisual_r1_cold_start.toml");
    let m = Manifest::load(&path("experiments/embedded/revisual_r1_mixed_rl.toml")).unwrap();
    let mut bad = m.clone();
    bad.model.source = m.data.source.clone();
    assert!(format!("{:#}", bad.validate().unwrap_err()).contains("model.source is `kind = \"mixed\"`"));
    let mut bad = m.clone();
    bad.eval[0].source = m.data.source.clone();
    assert!(format!("{:#}", bad.validate().unwrap_err()).contains("eval[0].source is mixed"));
    let mut sft = Manifest::from_toml_str(&cold).unwrap();
    sft.data.source = m.data.source.clone();
    let e = format!("{:#}", sft.validate().unwrap_err());
    assert!(e.contains("data.source is mixed") && e.contains("SFT"), "{e}");
    // A locked manifest needs every member pinned.
    let locked =
        t.replace(&t[t.find("lock = ").unwrap()..t.find("\n\n[paper]").unwrap()], "lock = { state = \"locked\" }");
    let locked = locked.replace(
        "source = { kind = \"parent_run\", stage = \"embedded_revisual_r1/cold_start\" }",
        &format!("source = {{ kind = \"parent_run\", stage = \"embedded_revisual_r1/cold_start\", step = 1, sha256 = \"{}\" }}", "a".repeat(64)),
    );
    let e = err(&locked);
    assert!(e.contains("data.source.members[0].source") && e.contains("without file hashes"), "{e}");
}

/// The embedded no-PAD MRL manifest with `line` added to `[train]`.
fn grpo_with(line: &str) -> String {
    text("experiments/embedded/revisual_r1_mrl_grpo.toml")
        .replace("algo = \"grpo\"\n", &format!("algo = \"grpo\"\n{line}\n"))
}

#[test]
fn dynamic_sampling_loads_and_is_left_out_of_the_hash_when_absent() {
    let base = Manifest::from_toml_str(&grpo_with("")).unwrap();
    let TrainSettings::Grpo(g) = &base.train else { panic!() };
    assert_eq!(g.dynamic_sampling, None);
    assert!(!base.canonical_json().unwrap().contains("dynamic_sampling"), "absent key, unchanged hash");
    let m = Manifest::from_toml_str(&grpo_with("dynamic_sampling = { kind = \"dapo\", max_gen_batches = 3 }")).unwrap();
    let TrainSettings::Grpo(g) = &m.train else { panic!() };
    assert_eq!(
        g.dynamic_sampling,
        Some(DynamicSamplingSpec::Dapo { max_gen_batches: 3, metric: FilterMetricSpec::Accuracy })
    );
    let d = g.dynamic_sampling().unwrap();
    assert_eq!((d.max_gen_batches, d.metric), (3, crate::rl::dynamic::FilterMetric::Accuracy));
    assert_ne!(m.sha256().unwrap(), base.sha256().unwrap());
    // The resolved manifest spells the default metric out.
    assert!(m.canonical_json().unwrap().contains("\"metric\":\"accuracy\""));
    assert_eq!(Manifest::from_toml_str(&m.to_toml_string().unwrap()).unwrap(), m);
}

#[test]
fn dynamic_sampling_refusals_name_the_key() {
    let e = err(&grpo_with("dynamic_sampling = { kind = \"dapo\", max_gen_batches = 0 }"));
    assert!(e.contains("train.dynamic_sampling.max_gen_batches = 0"), "{e}");
    let e = err(&grpo_with("dynamic_sampling = { kind = \"dapo\", max_gen_batches = 2, extra = 1 }"));
    assert!(e.contains("extra"), "{e}");
    let e = err(&grpo_with("dynamic_sampling = { kind = \"dynamic\", max_gen_batches = 2 }"));
    assert!(e.contains("dynamic"), "{e}");
    // With PAD.
    let pad = text("experiments/embedded/revisual_r1_mrl.toml")
        .replace("algo = \"grpo\"\n", "algo = \"grpo\"\ndynamic_sampling = { kind = \"dapo\", max_gen_batches = 2 }\n");
    let e = err(&pad);
    assert!(e.contains("train.dynamic_sampling and train.pad"), "{e}");
    // Accuracy with a reward that has none.
    let len_only = grpo_with("dynamic_sampling = { kind = \"dapo\", max_gen_batches = 2 }").replace(
        "reward = { kind = \"revisual_code\", efficient_length = { budget = 192, alpha = 0.005, delta = 0.5 } }",
        "reward = { kind = \"efficient_length\", budget = 192, alpha = 0.005, delta = 0.5 }",
    );
    let e = err(&len_only);
    assert!(e.contains("metric = \"reward\""), "{e}");
    Manifest::from_toml_str(&len_only.replace("max_gen_batches = 2 }", "max_gen_batches = 2, metric = \"reward\" }"))
        .unwrap();
    // Dynamic sampling is a GRPO setting: an unknown key on SFT.
    let cold = text("experiments/embedded/revisual_r1_cold_start.toml");
    let e = err(&cold
        .replace("algo = \"sft\"\n", "algo = \"sft\"\ndynamic_sampling = { kind = \"dapo\", max_gen_batches = 2 }\n"));
    assert!(e.contains("dynamic_sampling"), "{e}");
}
