//! MathVista testmini scoring, faithful to the official scorer (lupantech/MathVista
//! `evaluation/calculate_score.py` at commit 53d525874bdde205128e6b160b7357a88277d479): every
//! output record's `extraction` is normalized to a `prediction`, compared with the answer
//! (`true_false`), and the accuracy is broken down by question type, answer type and metadata.
//!
//! Inputs are the official files: the annotations (`testmini.json`, pid -> problem) and an output
//! file (`output_*.json`, pid -> record with at least `extraction`). As in the official script the
//! problem fields of an output record (`choices`, `question_type`, `answer_type`, `precision`,
//! `answer`, `metadata`) win over the annotations; the annotations fill whatever a record lacks, so
//! r1lab's own outputs need only `extraction`. Published output files carry older metadata (for
//! example grade "daily life" where testmini.json says "not applicable"); [`Evaluation::disagreements`]
//! counts such records. Items are scored in the outputs file's order, which decides the order of
//! equal-accuracy entries in the breakdown.
//!
//! Deviations, both where the official script stops with an exception: a record without
//! `extraction` is scored as if it were null (`str(None)` = "None"), and a problem the script has no
//! rule for (a multi-choice problem without choices, answer type "text" on a free-form question) is
//! an error naming the pid.
//!
//! - [`normalize`]: extraction -> prediction, and the equality test.
//! - [`score`]: the accuracy breakdown and its JSON.
pub mod normalize;
pub mod score;

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use serde::de::{DeserializeOwned, Deserializer, MapAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

pub use normalize::{NormalizeOptions, normalize_extracted_answer, safe_equal};
pub use score::{AccuracyFormat, GROUP_KEYS, Scores, Tally};

use crate::io::write_atomic;

/// The metadata fields the breakdown uses; a missing one leaves the item out of that group (as
/// pandas does with NaN).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct Metadata {
    #[serde(default)]
    pub language: Option<String>,
    #[serde(default)]
    pub source: Option<String>,
    #[serde(default)]
    pub category: Option<String>,
    #[serde(default)]
    pub task: Option<String>,
    #[serde(default)]
    pub context: Option<String>,
    #[serde(default)]
    pub grade: Option<String>,
    #[serde(default)]
    pub skills: Vec<String>,
}

/// The fields of one problem that scoring needs.
#[derive(Debug, Clone, PartialEq)]
pub struct Problem {
    /// `multi_choice` or `free_form`.
    pub question_type: String,
    /// `text`, `integer`, `float` or `list`.
    pub answer_type: String,
    pub choices: Option<Vec<String>>,
    /// Decimals a float answer is rounded to (a JSON number; null where not a float answer).
    pub precision: Value,
    /// The reference answer as a JSON value (a string in testmini).
    pub answer: Value,
    pub metadata: Metadata,
}

impl Problem {
    /// The values this problem counts under for one of [`GROUP_KEYS`] (each skill once).
    pub fn group_values(&self, key: &str) -> Vec<&str> {
        fn one(v: &Option<String>) -> Vec<&str> {
            v.as_deref().into_iter().collect()
        }
        let m = &self.metadata;
        match key {
            "question_type" => vec![self.question_type.as_str()],
            "answer_type" => vec![self.answer_type.as_str()],
            "language" => one(&m.language),
            "source" => one(&m.source),
            "category" => one(&m.category),
            "task" => one(&m.task),
            "context" => one(&m.context),
            "grade" => one(&m.grade),
            "skills" => {
                let mut skills: Vec<&str> = vec![];
                for s in &m.skills {
                    if !skills.contains(&s.as_str()) {
                        skills.push(s);
                    }
                }
                skills
            }
            _ => vec![],
        }
    }
}

/// Problem fields, in the order they are checked; the last two may be absent (null).
const PROBLEM_FIELDS: [&str; 6] = ["question_type", "answer_type", "answer", "metadata", "choices", "precision"];

/// Reads one problem from `record`; a field the record lacks comes from `fallback`. Errors name
/// `path`, the pid and the field; `hint` is appended to a missing-field error.
fn problem_from(
    record: &Map<String, Value>,
    fallback: Option<&Problem>,
    path: &Path,
    pid: &str,
    hint: &str,
) -> Result<Problem> {
    fn field<T: DeserializeOwned>(v: &Value, path: &Path, pid: &str, name: &str) -> Result<T> {
        T::deserialize(v).map_err(|e| anyhow!("{}: pid {pid}: field `{name}`: {e}", path.display()))
    }
    let missing = |name: &str| anyhow!("{}: pid {pid}: missing field `{name}`{hint}", path.display());
    let get = |name: &str| record.get(name);
    Ok(Problem {
        question_type: match get("question_type") {
            Some(v) => field(v, path, pid, "question_type")?,
            None => fallback.map(|p| p.question_type.clone()).ok_or_else(|| missing("question_type"))?,
        },
        answer_type: match get("answer_type") {
            Some(v) => field(v, path, pid, "answer_type")?,
            None => fallback.map(|p| p.answer_type.clone()).ok_or_else(|| missing("answer_type"))?,
        },
        answer: match get("answer") {
            Some(v) => v.clone(),
            None => fallback.map(|p| p.answer.clone()).ok_or_else(|| missing("answer"))?,
        },
        metadata: match get("metadata") {
            Some(v) => field(v, path, pid, "metadata")?,
            None => fallback.map(|p| p.metadata.clone()).ok_or_else(|| missing("metadata"))?,
        },
        choices: match get("choices") {
            Some(v) => field(v, path, pid, "choices")?,
            None => fallback.and_then(|p| p.choices.clone()),
        },
        precision: match get("precision") {
            Some(v) => v.clone(),
            None => fallback.map(|p| p.precision.clone()).unwrap_or(Value::Null),
        },
    })
}

/// A JSON object's entries in file order (serde_json's `Map` sorts keys). A repeated key keeps its
/// first position and its last value, as Python's `json.load` does.
struct Ordered(Vec<(String, Value)>);

impl<'de> Deserialize<'de> for Ordered {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Ordered;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object mapping each pid to its record")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> std::result::Result<Ordered, A::Error> {
                let mut entries: Vec<(String, Value)> = vec![];
                let mut index: HashMap<String, usize> = HashMap::new();
                while let Some((k, v)) = map.next_entry::<String, Value>()? {
                    match index.get(&k) {
                        Some(&i) => entries[i].1 = v,
                        None => {
                            index.insert(k.clone(), entries.len());
                            entries.push((k, v));
                        }
                    }
                }
                Ok(Ordered(entries))
            }
        }
        d.deserialize_map(V)
    }
}

/// Reads `path` as pid -> record, keeping the file's order. `what` names the file in errors.
fn read_records(path: &Path, what: &str) -> Result<Vec<(String, Map<String, Value>)>> {
    let bytes = std::fs::read(path).with_context(|| format!("reading the MathVista {what} {}", path.display()))?;
    let Ordered(entries) = serde_json::from_slice(&bytes).with_context(|| {
        format!("{}: not a MathVista {what} file (expected a JSON object pid -> record)", path.display())
    })?;
    entries
        .into_iter()
        .map(|(pid, v)| match v {
            Value::Object(record) => Ok((pid, record)),
            other => bail!("{}: pid {pid}: expected a JSON object, found {other}", path.display()),
        })
        .collect()
}

/// The annotations: pid -> problem (testmini.json).
#[derive(Debug, Clone, Default)]
pub struct Annotations {
    pub path: PathBuf,
    pub problems: HashMap<String, Problem>,
}

impl Annotations {
    /// Loads `testmini.json` (or any file of the same shape). Every problem needs
    /// `question_type`, `answer_type`, `answer` and `metadata`.
    pub fn load(path: &Path) -> Result<Self> {
        let mut problems = HashMap::new();
        for (pid, record) in read_records(path, "annotations")? {
            let problem = problem_from(&record, None, path, &pid, "")?;
            problems.insert(pid, problem);
        }
        if problems.is_empty() {
            bail!("{}: the annotations file has no problems", path.display());
        }
        Ok(Self { path: path.to_path_buf(), problems })
    }
}

/// An outputs file: pid -> record, in file order.
#[derive(Debug, Clone, Default)]
pub struct Outputs {
    pub path: PathBuf,
    pub records: Vec<(String, Map<String, Value>)>,
}

impl Outputs {
    pub fn load(path: &Path) -> Result<Self> {
        let records = read_records(path, "outputs")?;
        if records.is_empty() {
            bail!("{}: the outputs file has no records (the official scorer divides by zero)", path.display());
        }
        Ok(Self { path: path.to_path_buf(), records })
    }
}

/// One scored item. `published_*` are the record's own `prediction` / `true_false` fields, if any.
#[derive(Debug, Clone, PartialEq)]
pub struct ItemResult {
    pub pid: String,
    /// The record's `extraction` (null when absent).
    pub extraction: Value,
    pub prediction: Option<String>,
    pub true_false: bool,
    pub problem: Problem,
    pub published_prediction: Option<Value>,
    pub published_true_false: Option<Value>,
}

impl ItemResult {
    /// Whether the record carries a `prediction` that differs from ours (Python `!=`).
    pub fn prediction_differs(&self) -> bool {
        let ours = self.prediction.clone().map_or(Value::Null, Value::String);
        self.published_prediction.as_ref().is_some_and(|p| *p != ours)
    }

    /// Whether the record carries a `true_false` that differs from ours (Python `!=`, so 1 == True).
    pub fn true_false_differs(&self) -> bool {
        self.published_true_false.as_ref().is_some_and(|p| match p {
            Value::Bool(b) => *b != self.true_false,
            Value::Number(n) => n.as_f64() != Some(f64::from(u8::from(self.true_false))),
            _ => true,
        })
    }
}

/// One row of `predictions.json`.
#[derive(Debug, Serialize)]
struct PredictionRow<'a> {
    pid: &'a str,
    extraction: &'a Value,
    prediction: &'a Option<String>,
    true_false: bool,
    answer: &'a Value,
}

/// Every item of one outputs file, scored, and the breakdown.
#[derive(Debug, Clone)]
pub struct Evaluation {
    pub outputs: PathBuf,
    pub items: Vec<ItemResult>,
    pub scores: Scores,
    /// For each problem field, how many records carry a value that differs from the annotations'
    /// (the record's value is the one used).
    pub disagreements: Vec<(&'static str, usize)>,
}

impl Evaluation {
    /// Items whose published `prediction` differs from the official normalization's.
    pub fn prediction_differs(&self) -> usize {
        self.items.iter().filter(|i| i.prediction_differs()).count()
    }

    /// Items whose published `true_false` differs from the official normalization's.
    pub fn true_false_differs(&self) -> usize {
        self.items.iter().filter(|i| i.true_false_differs()).count()
    }

    /// Writes `scores.json` (as [`Scores::to_json`]) and `predictions.json` (pid, extraction,
    /// prediction, true_false, answer per item, in file order) into `dir`; returns their paths.
    pub fn write(&self, dir: &Path, format: AccuracyFormat) -> Result<Vec<PathBuf>> {
        let scores = dir.join("scores.json");
        write_atomic(&scores, format!("{}\n", self.scores.to_json(format)).as_bytes())?;
        let rows: Vec<PredictionRow> = self
            .items
            .iter()
            .map(|i| PredictionRow {
                pid: &i.pid,
                extraction: &i.extraction,
                prediction: &i.prediction,
                true_false: i.true_false,
                answer: &i.problem.answer,
            })
            .collect();
        let predictions = dir.join("predictions.json");
        write_atomic(&predictions, &serde_json::to_vec_pretty(&rows)?)?;
        Ok(vec![scores, predictions])
    }
}

/// Scores every record of `outputs` as the official scorer does.
pub fn evaluate(outputs: &Outputs, annotations: &Annotations, opts: NormalizeOptions) -> Result<Evaluation> {
    let mut items = Vec::with_capacity(outputs.records.len());
    let mut disagreements: Vec<(&'static str, usize)> = PROBLEM_FIELDS.iter().map(|&f| (f, 0)).collect();
    for (pid, record) in &outputs.records {
        let annotated = annotations.problems.get(pid);
        let hint = match annotated {
            Some(_) => String::new(),
            None => format!(", and the annotations {} have no pid {pid}", annotations.path.display()),
        };
        let problem = problem_from(record, annotated, &outputs.path, pid, &hint)?;
        if let Some(a) = annotated {
            let differs = [
                problem.question_type != a.question_type,
                problem.answer_type != a.answer_type,
                problem.answer != a.answer,
                problem.metadata != a.metadata,
                problem.choices != a.choices,
                problem.precision != a.precision,
            ];
            for ((_, n), d) in disagreements.iter_mut().zip(differs) {
                *n += usize::from(d);
            }
        }
        let extraction = record.get("extraction").cloned().unwrap_or(Value::Null);
        let prediction = normalize_extracted_answer(&extraction, &problem, opts)
            .with_context(|| format!("{}: pid {pid}", outputs.path.display()))?;
        let true_false = safe_equal(prediction.as_deref(), &problem.answer);
        items.push(ItemResult {
            pid: pid.clone(),
            extraction,
            prediction,
            true_false,
            problem,
            published_prediction: record.get("prediction").cloned(),
            published_true_false: record.get("true_false").cloned(),
        });
    }
    let scores = Scores::tally(items.iter().map(|i| (&i.problem, i.true_false)));
    disagreements.retain(|(_, n)| *n > 0);
    Ok(Evaluation { outputs: outputs.path.clone(), items, scores, disagreements })
}

/// Loads both files and scores them.
pub fn score_files(outputs: &Path, annotations: &Path, opts: NormalizeOptions) -> Result<Evaluation> {
    let annotations = Annotations::load(annotations)?;
    evaluate(&Outputs::load(outputs)?, &annotations, opts)
}

/// Where `r1lab score mathvista` writes by default: `artifacts/eval/mathvista/<outputs file stem>`.
pub fn default_out_dir(outputs: &Path) -> PathBuf {
    let stem = outputs.file_stem().map_or_else(|| "outputs".into(), |s| s.to_string_lossy().into_owned());
    Path::new("artifacts/eval/mathvista").join(stem)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn write(dir: &Path, name: &str, v: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, v).unwrap();
        p
    }

    fn annotations_json() -> Value {
        let meta = json!({"language": "english", "source": "S", "category": "c", "task": "t", "context": "x",
                          "grade": "college", "skills": ["arithmetic reasoning"]});
        json!({
            "2": {"question_type": "free_form", "answer_type": "integer", "choices": null, "precision": null,
                  "answer": "7", "metadata": meta},
            "1": {"question_type": "multi_choice", "answer_type": "text", "choices": ["red", "blue"],
                  "precision": null, "answer": "blue", "metadata": meta},
        })
    }

    #[test]
    fn records_take_missing_fields_from_the_annotations_and_keep_file_order() {
        let tmp = tempfile::tempdir().unwrap();
        let ann = write(tmp.path(), "testmini.json", &annotations_json().to_string());
        // pid "2" first; its record overrides the grade, as published outputs do.
        let out = write(
            tmp.path(),
            "output_x.json",
            r#"{"2": {"extraction": "7.0", "metadata": {"grade": "daily life", "skills": []}, "prediction": "8"},
                "1": {"extraction": "(B)", "true_false": true}}"#,
        );
        let eval = score_files(&out, &ann, NormalizeOptions::default()).unwrap();
        let pids: Vec<&str> = eval.items.iter().map(|i| i.pid.as_str()).collect();
        assert_eq!(pids, ["2", "1"]);
        assert_eq!(eval.items[0].prediction.as_deref(), Some("7"));
        assert_eq!(eval.items[1].prediction.as_deref(), Some("blue"));
        assert_eq!(eval.scores.average, Tally { correct: 2, total: 2 });
        assert_eq!(eval.scores.get("grade", "daily life"), Some(Tally { correct: 1, total: 1 }));
        assert_eq!(eval.scores.get("language", "english"), Some(Tally { correct: 1, total: 1 }));
        assert_eq!((eval.prediction_differs(), eval.true_false_differs()), (1, 0));
        assert_eq!(eval.disagreements, vec![("metadata", 1)]);

        let files = eval.write(&tmp.path().join("run"), AccuracyFormat::Percent).unwrap();
        let rows: Value = serde_json::from_slice(&std::fs::read(&files[1]).unwrap()).unwrap();
        assert_eq!(
            rows[1],
            json!({"pid": "1", "extraction": "(B)", "prediction": "blue", "true_false": true,
                                   "answer": "blue"})
        );
    }

    #[test]
    fn broken_inputs_are_errors_naming_the_file_pid_and_field() {
        let tmp = tempfile::tempdir().unwrap();
        let ann = write(tmp.path(), "testmini.json", &annotations_json().to_string());
        let cases = [
            ("missing.json", None, "missing.json"),
            ("corrupt.json", Some("{\"1\": {"), "corrupt.json"),
            ("list.json", Some("[1, 2]"), "expected a JSON object pid -> record"),
            ("empty.json", Some("{}"), "has no records"),
            ("not_object.json", Some(r#"{"1": 5}"#), "pid 1: expected a JSON object"),
            ("bad_choices.json", Some(r#"{"1": {"extraction": "A", "choices": "red"}}"#), "field `choices`"),
            ("unknown_pid.json", Some(r#"{"99": {"extraction": "A"}}"#), "pid 99: missing field `question_type`"),
        ];
        for (name, text, want) in cases {
            let path = match text {
                Some(t) => write(tmp.path(), name, t),
                None => tmp.path().join(name),
            };
            let err = format!("{:#}", score_files(&path, &ann, NormalizeOptions::default()).unwrap_err());
            assert!(err.contains(name) && err.contains(want), "{name}: {err}");
        }
        let bad_ann = write(tmp.path(), "ann.json", r#"{"1": {"question_type": "free_form"}}"#);
        let err = format!("{:#}", Annotations::load(&bad_ann).unwrap_err());
        assert!(err.contains("ann.json") && err.contains("missing field `answer_type`"), "{err}");
        let bad_meta = write(
            tmp.path(),
            "meta.json",
            r#"{"1": {"question_type": "free_form", "answer_type": "list",
            "answer": "[1]", "metadata": {"skills": "algebra"}}}"#,
        );
        let err = format!("{:#}", Annotations::load(&bad_meta).unwrap_err());
        assert!(err.contains("meta.json: pid 1: field `metadata`"), "{err}");
    }

    #[test]
    fn default_folder_is_named_after_the_outputs_file() {
        assert_eq!(
            default_out_dir(Path::new("/x/results/bard/output_bard.json")),
            Path::new("artifacts/eval/mathvista/output_bard")
        );
    }
}
