//! MathVista scoring against the official results: every published output file under
//! `shared/data/mathvista/results` is re-scored and compared with the data README's table (correct
//! items under the official normalization, items whose published prediction / true_false differ)
//! and, where the table says the official scorer reproduces it, with every number of the published
//! `scores_*.json`. Also runs `r1lab score mathvista` as a user would.
//!
//! The data lives in `<shared>/data/mathvista`, `<shared>` being `$R1LAB_SHARED_DIR` or the
//! `shared/` folder beside this checkout. Without it these tests fail and say where they looked.
use std::path::{Path, PathBuf};
use std::process::Command;

use r1lab::eval::mathvista::{AccuracyFormat, Annotations, NormalizeOptions, Outputs, evaluate};
use serde_json::Value;

/// One row of the data README's table.
#[derive(Debug)]
struct Row {
    file: &'static str,
    prediction_differs: usize,
    true_false_differs: usize,
    correct: usize,
    published_correct: usize,
    reproduced: bool,
}

const fn row(file: &'static str, p: usize, t: usize, correct: usize, published: usize, reproduced: bool) -> Row {
    Row { file, prediction_differs: p, true_false_differs: t, correct, published_correct: published, reproduced }
}

/// The table of `shared/data/mathvista/README.md` ("What the official scorer gives on these files").
const TABLE: [Row; 24] = [
    row("bard/output_bard.json", 3, 0, 348, 348, true),
    row("chatgpt/output_chatgpt.json", 1, 0, 235, 235, false),
    row("chatgpt/output_chatgpt_2shot_code.json", 55, 6, 257, 251, false),
    row("chatgpt/output_chatgpt_2shot_code_use_ocr.json", 36, 6, 298, 292, false),
    row("chatgpt/output_chatgpt_2shot_solution.json", 8, 0, 268, 268, true),
    row("chatgpt/output_chatgpt_2shot_solution_use_ocr.json", 11, 3, 286, 283, false),
    row("claude/output_claude.json", 3, 0, 264, 264, true),
    row("claude/output_claude_2shot_solution.json", 3, 0, 244, 244, true),
    row("claude/output_claude_2shot_solution_use_ocr.json", 5, 0, 274, 274, true),
    row("gpt4/output_gpt4.json", 0, 0, 261, 261, true),
    row("gpt4/output_gpt4_2shot_code.json", 57, 10, 270, 260, false),
    row("gpt4/output_gpt4_2shot_code_use_ocr.json", 36, 8, 286, 278, false),
    row("gpt4/output_gpt4_2shot_solution.json", 0, 0, 292, 292, true),
    row("gpt4/output_gpt4_2shot_solution_use_ocr.json", 3, 0, 321, 321, true),
    row("idefics/output_idefics_9b_instruct.json", 11, 2, 200, 198, false),
    row("instruct_blip2/output_instruct_blip2_vicuna_13b.json", 5, 1, 254, 253, false),
    row(
        "leaderboad_submission_template/output_testmini_template_for_leaderboard_submission.json",
        0,
        0,
        263,
        179,
        false,
    ),
    row("llama_adapter_v2/output_llama_adapter_v2.json", 9, 0, 239, 239, true),
    row("llava/output_llava_llama_2_13b.json", 4, 0, 261, 261, true),
    row("llavar/output_llavar.json", 0, 0, 252, 252, true),
    row("minigpt4/output_minigpt4_llama2.json", 5, 0, 231, 231, true),
    row("mplugowl/output_mplugowl_7b_ft.json", 22, 1, 223, 222, false),
    row("random/output_frequent_guess.json", 0, 0, 263, 263, true),
    row("random/output_random_guess.json", 0, 0, 179, 179, true),
];

fn data_dir() -> PathBuf {
    let shared = match std::env::var_os("R1LAB_SHARED_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared"),
    };
    let dir = shared.join("data/mathvista");
    assert!(
        dir.join("testmini.json").is_file() && dir.join("results").is_dir(),
        "MathVista data not found: looked for {0}/testmini.json and {0}/results (the shared/ folder beside the \
         checkout, or set R1LAB_SHARED_DIR to the folder that holds data/mathvista)",
        dir.display()
    );
    dir
}

fn read_json(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// `results/<model>/output_*.json`, relative to `results/`, sorted.
fn output_files(results: &Path) -> Vec<String> {
    let mut files = vec![];
    for model in std::fs::read_dir(results).unwrap() {
        let model = model.unwrap().path();
        if !model.is_dir() {
            continue;
        }
        for f in std::fs::read_dir(&model).unwrap() {
            let name = f.unwrap().file_name().into_string().unwrap();
            if name.starts_with("output_") && name.ends_with(".json") {
                let model_name = model.file_name().unwrap().to_str().unwrap();
                files.push(format!("{model_name}/{name}"));
            }
        }
    }
    files.sort();
    files
}

/// The names of the group values in the order a scores JSON text lists them (eight-space indented
/// keys), up to `skills`, whose order the official script leaves to Python's set ordering.
fn value_order(scores_text: &str) -> Vec<&str> {
    let before_skills = scores_text.split("\n    \"skills\": ").next().unwrap();
    before_skills
        .lines()
        .filter(|l| l.starts_with("        \"") && !l.starts_with("         ") && l.ends_with('{'))
        .collect()
}

#[test]
fn the_table_is_the_data_readmes_and_covers_every_output_file() {
    let dir = data_dir();
    let readme = std::fs::read_to_string(dir.join("README.md")).unwrap();
    let rows: Vec<Vec<String>> = readme
        .lines()
        .filter(|l| l.starts_with("| `results/"))
        .map(|l| l.trim_matches('|').split('|').map(|c| c.trim().trim_matches('`').to_string()).collect())
        .collect();
    assert_eq!(rows.len(), TABLE.len(), "README rows: {rows:?}");
    for (cells, want) in rows.iter().zip(&TABLE) {
        let num = |i: usize| cells[i].parse::<usize>().unwrap_or_else(|e| panic!("{cells:?}: {e}"));
        let got = (cells[0].strip_prefix("results/"), num(1), num(2), num(3), num(4), cells[5] == "yes");
        let pinned = (
            Some(want.file),
            want.prediction_differs,
            want.true_false_differs,
            want.correct,
            want.published_correct,
            want.reproduced,
        );
        assert_eq!(got, pinned, "README row vs this test's table");
    }
    let listed: Vec<&str> = TABLE.iter().map(|r| r.file).collect();
    assert_eq!(output_files(&dir.join("results")), listed, "output files on disk vs the table");
}

#[test]
fn every_output_file_scores_as_the_official_normalization() {
    let dir = data_dir();
    let annotations = Annotations::load(&dir.join("testmini.json")).unwrap();
    assert_eq!(annotations.problems.len(), 1000);
    let mut failures = vec![];
    for want in &TABLE {
        let path = dir.join("results").join(want.file);
        let outputs = Outputs::load(&path).unwrap();
        let eval = evaluate(&outputs, &annotations, NormalizeOptions::default()).unwrap();
        let got = (eval.scores.average.correct, eval.prediction_differs(), eval.true_false_differs());
        let expected = (want.correct, want.prediction_differs, want.true_false_differs);
        if got != expected {
            failures.push(format!(
                "{}: (correct, prediction differs, true_false differs) = {got:?}, README says {expected:?}",
                want.file
            ));
        }
        assert_eq!(eval.scores.average.total, 1000, "{}", want.file);
        assert_eq!(eval.items.iter().filter(|i| i.true_false).count(), eval.scores.average.correct);
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn published_scores_are_reproduced_where_the_readme_says_so() {
    let dir = data_dir();
    let annotations = Annotations::load(&dir.join("testmini.json")).unwrap();
    let mut failures = vec![];
    for want in &TABLE {
        let path = dir.join("results").join(want.file);
        let scores_path =
            path.with_file_name(path.file_name().unwrap().to_str().unwrap().replacen("output_", "scores_", 1));
        let published_text = std::fs::read_to_string(&scores_path).unwrap();
        let published: Value = serde_json::from_str(&published_text).unwrap();
        assert!(value_order(&published_text).len() > 50, "{}: unexpected layout", scores_path.display());
        assert_eq!(published["average"]["correct"], want.published_correct, "{}", scores_path.display());

        let eval = evaluate(&Outputs::load(&path).unwrap(), &annotations, NormalizeOptions::default()).unwrap();
        let ours_text = eval.scores.to_json(AccuracyFormat::Percent);
        let ours: Value = serde_json::from_str(&ours_text).unwrap();
        if (ours == published) != want.reproduced {
            let keys = ours.as_object().unwrap().keys().filter(|k| ours[k.as_str()] != published[k.as_str()]);
            failures.push(format!(
                "{}: README says reproduced = {}, but the groups that differ are {:?}",
                want.file,
                want.reproduced,
                keys.collect::<Vec<_>>()
            ));
        } else if want.reproduced && value_order(&ours_text) != value_order(&published_text) {
            failures.push(format!("{}: same numbers, but the entries are in another order", want.file));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn cli_scores_one_output_file_and_writes_predictions() {
    let dir = data_dir();
    let tmp = tempfile::tempdir().unwrap();
    let outputs = dir.join("results/bard/output_bard.json");
    let run = |accuracy: &str, out: &Path| {
        let o = Command::new(env!("CARGO_BIN_EXE_r1lab"))
            .args(["score", "mathvista", "--outputs"])
            .arg(&outputs)
            .arg("--annotations")
            .arg(dir.join("testmini.json"))
            .arg("--out")
            .arg(out)
            .args(["--accuracy", accuracy])
            .env_remove("LD_LIBRARY_PATH")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&o.stderr).into_owned();
        assert!(o.status.success(), "{stderr}");
        (serde_json::from_slice::<Value>(&o.stdout).unwrap(), stderr)
    };
    let (percent, stderr) = run("percent", &tmp.path().join("percent"));
    assert_eq!(percent, read_json(&dir.join("results/bard/scores_bard.json")));
    assert!(stderr.contains("348/1000 correct") && stderr.contains("prediction differs on 3 item(s)"), "{stderr}");

    let (fraction, _) = run("fraction", &tmp.path().join("fraction"));
    assert_eq!(fraction["average"], serde_json::json!({"accuracy": 0.348, "correct": 348, "total": 1000}));
    assert_eq!(read_json(&tmp.path().join("fraction/scores.json")), fraction);
    let rows = read_json(&tmp.path().join("fraction/predictions.json"));
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 1000);
    assert_eq!(rows.iter().filter(|r| r["true_false"] == true).count(), 348);
    let first = rows[0].as_object().unwrap();
    let fields: Vec<&str> = first.keys().map(String::as_str).collect();
    assert_eq!(fields.len(), 5, "{first:?}");
    for f in ["pid", "extraction", "prediction", "true_false", "answer"] {
        assert!(first.contains_key(f), "{first:?}");
    }
}

#[test]
fn cli_names_the_missing_file() {
    let tmp = tempfile::tempdir().unwrap();
    let annotations = tmp.path().join("testmini.json");
    std::fs::write(
        &annotations,
        r#"{"1": {"question_type": "free_form", "answer_type": "integer", "answer": "2", "metadata": {}}}"#,
    )
    .unwrap();
    let missing = tmp.path().join("output_nothing.json");
    let o = Command::new(env!("CARGO_BIN_EXE_r1lab"))
        .args(["score", "mathvista", "--outputs"])
        .arg(&missing)
        .arg("--annotations")
        .arg(&annotations)
        .arg("--out")
        .arg(tmp.path().join("out"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(stderr.contains(&missing.display().to_string()), "{stderr}");
    assert!(o.stdout.is_empty() && !tmp.path().join("out").exists());
}
