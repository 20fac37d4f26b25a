//! End to end: a synthetic export is byte-identical for the same seed, and what it writes reads back
//! through the same loaders as real data (EasyR1 parquet, LLaMA-Factory sharegpt JSON), with images
//! that decode at the configured size and answers the grader accepts.
use std::path::Path;

use r1lab::data::easyr1::read_parquet;
use r1lab::data::sharegpt::{read_json, resolve};
use r1lab::data::synthetic::export::export;
use r1lab::data::synthetic::{Config, Family, Split};
use r1lab::rl::grader::{answer_tag, grade_answer, strip_final_answer};

fn files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for sub in ["", "images"] {
        let mut names: Vec<_> =
            std::fs::read_dir(dir.join(sub)).unwrap().map(|e| e.unwrap().path()).filter(|p| p.is_file()).collect();
        names.sort();
        out.extend(
            names.into_iter().map(|p| (p.strip_prefix(dir).unwrap().display().to_string(), std::fs::read(&p).unwrap())),
        );
    }
    out
}

#[test]
fn export_is_deterministic_and_reads_back() {
    let cfg = Config { seed: 5, level: 2, size: 112 };
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let done = export(a.path(), &Family::ALL, &cfg, Split::Test, 3).unwrap();
    export(b.path(), &Family::ALL, &cfg, Split::Test, 3).unwrap();
    let (fa, fb) = (files(a.path()), files(b.path()));
    assert_eq!(fa.len(), 6 + 12, "{:?}", fa.iter().map(|f| &f.0).collect::<Vec<_>>());
    assert_eq!(fa, fb, "same seed must give byte-identical files");
    let other = tempfile::tempdir().unwrap();
    export(other.path(), &Family::ALL, &Config { seed: 6, ..cfg }, Split::Test, 3).unwrap();
    assert_ne!(
        std::fs::read(a.path().join("test.parquet")).unwrap(),
        std::fs::read(other.path().join("test.parquet")).unwrap()
    );

    let rl = read_parquet(&a.path().join("test.parquet")).unwrap();
    assert_eq!(rl.len(), 12);
    for (r, p) in rl.iter().zip(&done.problems) {
        assert_eq!((&r.id, &r.problem, &r.answer), (&p.id, &p.problem(), &p.answer));
        let bytes = r.images[0].bytes.as_ref().unwrap();
        assert_eq!(bytes, &p.png);
        let img = image::load_from_memory(bytes).unwrap();
        assert_eq!((img.width(), img.height()), (112, 112));
    }
    let text = read_parquet(&a.path().join("test_text.parquet")).unwrap();
    assert!(text.iter().all(|r| r.images.is_empty() && !r.problem.contains("<image>")));

    let sft = read_json(&a.path().join("test_sft.json")).unwrap();
    assert_eq!(sft.len(), 12);
    for (r, p) in sft.iter().zip(&done.problems) {
        assert_eq!(r.messages[0].content, p.problem());
        let pred = strip_final_answer(answer_tag(&r.messages[1].content).unwrap());
        assert!(grade_answer(pred, &p.answer));
        let img = image::open(resolve(a.path(), &r.images[0])).unwrap();
        assert_eq!(img.width(), 112);
    }
    assert!(read_json(&a.path().join("test_text_sft.json")).unwrap().iter().all(|r| r.images.is_empty()));
    let info: serde_json::Value =
        serde_json::from_slice(&std::fs::read(a.path().join("dataset_info.json")).unwrap()).unwrap();
    assert_eq!(info["test_sft"]["formatting"], "sharegpt");
    assert_eq!(info["test_text_sft"]["file_name"], "test_text_sft.json");
    let lines = std::fs::read_to_string(a.path().join("test_problems.jsonl")).unwrap();
    let first: serde_json::Value = serde_json::from_str(lines.lines().next().unwrap()).unwrap();
    assert!(first["trace"]["facts"].as_array().is_some_and(|f| !f.is_empty()));
    assert_eq!(first["split"], "test");
}

#[test]
fn cli_writes_a_split() {
    let out = tempfile::tempdir().unwrap();
    let status = std::process::Command::new(env!("CARGO_BIN_EXE_r1lab"))
        .args(["data", "synth", "--family", "bars,digits", "--n", "2", "--split", "train", "--size", "112", "--out"])
        .arg(out.path())
        .output()
        .unwrap();
    assert!(status.status.success(), "{}", String::from_utf8_lossy(&status.stderr));
    let rl = read_parquet(&out.path().join("train.parquet")).unwrap();
    assert_eq!(rl.len(), 4);
    assert!(rl.iter().all(|r| r.id.starts_with("bars-") || r.id.starts_with("digits-")));
    let bad = std::process::Command::new(env!("CARGO_BIN_EXE_r1lab"))
        .args(["data", "synth", "--family", "pies", "--out"])
        .arg(out.path())
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("shapes, bars, digits, geometry"));
}
