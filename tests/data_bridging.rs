//! End to end: Vision-R1's modality bridging on ~200 synthetic problems. Conditioned descriptions
//! keep most samples and plain captions few (App.B); every kept sample is in the cold-start format
//! and scores 1 under `vision_r1_hard`; reflection words appear; no kept CoT still talks about "the
//! description"; the CLI writes a sharegpt data set that reads back with images that exist.
use r1lab::data::bridging::cli::BridgeReport;
use r1lab::data::bridging::{BridgeConfig, DescribeMode, bridge, bridge_text};
use r1lab::data::sharegpt::{read_json, resolve};
use r1lab::data::synthetic::{Config, Family, Split, generate_mix};
use r1lab::rl::reward::vision_r1_hard;

#[test]
fn conditioned_descriptions_keep_most_and_captions_few() {
    let cfg = Config { seed: 0, level: 2, size: 112 };
    let problems = generate_mix(&Family::ALL, &cfg, Split::Train, 50).unwrap();
    assert_eq!(problems.len(), 200);
    let bc = BridgeConfig::default();
    let full = bridge(&problems, DescribeMode::PseudoCotConditioned, &bc).unwrap();
    let caption = bridge(&problems, DescribeMode::Caption, &bc).unwrap();
    let (kf, kc) = (full.stats.overall.keep_rate(), caption.stats.overall.keep_rate());
    eprintln!("keep rate: pseudo-CoT-conditioned {kf:.3}, caption {kc:.3}");
    assert!(kf >= 0.7, "conditioned descriptions kept only {kf:.3}");
    assert!(kc <= 0.3 && kc + 0.4 <= kf, "captions kept {kc:.3} against {kf:.3}");
    assert_eq!(caption.stats.overall.guessed, 200, "no caption states the values");
    for (name, run) in [("conditioned", &full), ("caption", &caption)] {
        let c = &run.stats.overall;
        assert_eq!(c.kept + c.dropped(), c.total, "{name}");
        assert_eq!(c.reward_check, 0, "{name}");
        for (r, &i) in run.records.iter().zip(&run.kept) {
            let response = &r.messages[1].content;
            assert_eq!(vision_r1_hard(response, &problems[i].answer).overall, 1.0, "{name}: {response}");
            assert!(!response.contains("description") && !response.contains("described"), "{response}");
        }
    }
    let c = &full.stats.overall;
    assert!(c.slips_made > 0 && c.slips_caught > 0 && c.slips_caught < c.slips_made, "{c:?}");
    assert!(c.wrong_answer > 0 && c.inconsistent > 0, "the filter has something to drop: {c:?}");
    let share = c.kept_with_reflection as f64 / c.kept as f64;
    eprintln!("reflection words in {share:.3} of kept samples: {:?}", c.reflection);
    assert!(share >= 0.4, "{share}");
    let r = c.reflection;
    assert!(r.wait > 0 && r.hmm > 0 && r.alternatively > 0 && r.check > 0 && r.mistake > 0, "{r:?}");
    assert!(c.replacements >= c.kept / 2, "{c:?}");
    eprintln!("kept CoT length: {:.1} words, {:.1} characters", c.mean_words, c.mean_chars);
    assert!((20.0..=150.0).contains(&c.mean_words), "{}", c.mean_words);

    let text = bridge_text(&problems, &bc).unwrap();
    assert!(text.stats.overall.keep_rate() >= 0.7, "{:?}", text.stats.overall);
}

#[test]
fn cli_writes_a_dataset_that_reads_back() {
    let out = tempfile::tempdir().unwrap();
    let run = std::process::Command::new(env!("CARGO_BIN_EXE_r1lab"))
        .args(["data", "bridge", "--family", "bars,geometry", "--n", "6", "--size", "112", "--caption-ablation"])
        .args(["--text", "--out"])
        .arg(out.path())
        .output()
        .unwrap();
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let table = String::from_utf8(run.stdout).unwrap();
    assert!(table.contains("pseudo_cot_conditioned") && table.contains("caption") && table.contains("text_twin"));

    let report: BridgeReport =
        serde_json::from_slice(&std::fs::read(out.path().join("bridge_stats.json")).unwrap()).unwrap();
    assert_eq!(report.runs.len(), 3);
    let main = &report.runs[0].overall;
    assert_eq!(main.total, 12);
    assert_eq!(main.kept + main.dropped(), main.total);

    let recs = read_json(&out.path().join("train_bridge.json")).unwrap();
    assert_eq!(recs.len(), main.kept);
    assert!(!recs.is_empty());
    for r in &recs {
        assert!(r.messages[0].content.starts_with("<image>"));
        let img = image::open(resolve(out.path(), &r.images[0])).unwrap();
        assert_eq!(img.width(), 112);
    }
    let text = read_json(&out.path().join("train_bridge_text.json")).unwrap();
    assert_eq!(text.len(), report.runs[2].overall.kept);
    assert!(text.iter().all(|r| r.images.is_empty()));
    let info: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.path().join("dataset_info.json")).unwrap()).unwrap();
    assert_eq!(info["train_bridge"]["file_name"], "train_bridge.json");
    let samples = std::fs::read_to_string(out.path().join("train_bridge_caption.jsonl")).unwrap();
    assert_eq!(samples.lines().count(), 12);
}
