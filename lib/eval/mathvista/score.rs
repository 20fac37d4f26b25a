//! The accuracy breakdown of the official scorer: overall, then per value of `question_type`,
//! `answer_type` and the metadata fields, each value's entries sorted by accuracy, highest first
//! (ties keep the order in which values first appear). An item counts once in each of its skills.
//! Rendered as the official scores JSON (`json.dump(indent=4)`), with accuracy either as the
//! script at the pinned commit writes it (a fraction) or as the published score files print it
//! (percent strings: `"34.8"` for the average, two decimals, `"48.70"`, for the rest).
use std::fmt;
use std::str::FromStr;

use anyhow::{Result, bail};
use serde::Serialize;

use super::Problem;
use crate::eval::python;

/// The breakdown keys after `average`, in the official order.
pub const GROUP_KEYS: [&str; 9] =
    ["question_type", "answer_type", "language", "source", "category", "task", "context", "grade", "skills"];

/// Correct and total items of one group.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Tally {
    pub correct: usize,
    pub total: usize,
}

impl Tally {
    /// `correct / total` as Python computes it (NaN for an empty tally, which never is printed).
    pub fn accuracy(&self) -> f64 {
        self.correct as f64 / self.total as f64
    }

    fn add(&mut self, correct: bool) {
        self.correct += usize::from(correct);
        self.total += 1;
    }
}

/// How accuracy is written in the scores JSON.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum AccuracyFormat {
    /// A number in [0, 1], as `calculate_score.py` at the pinned commit writes it.
    #[default]
    Fraction,
    /// Percent strings as in the published `scores_*.json`: `str(round(100 * acc, 2))` for the
    /// average, `f"{100 * acc:.2f}"` for every group.
    Percent,
}

impl FromStr for AccuracyFormat {
    type Err = anyhow::Error;

    fn from_str(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "fraction" => Ok(Self::Fraction),
            "percent" => Ok(Self::Percent),
            _ => bail!("invalid accuracy format {s:?}: expected fraction (0.348) or percent (\"34.80\")"),
        }
    }
}

impl fmt::Display for AccuracyFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Fraction => "fraction",
            Self::Percent => "percent",
        })
    }
}

/// The whole breakdown. Group values are kept in order of first appearance; [`Scores::to_json`]
/// sorts them as the official script does.
#[derive(Debug, Clone, PartialEq)]
pub struct Scores {
    pub average: Tally,
    /// One entry per [`GROUP_KEYS`] key, in that order.
    pub groups: Vec<(&'static str, Vec<(String, Tally)>)>,
}

impl Scores {
    /// Tallies `(problem, true_false)` pairs, in the outputs file's order.
    pub fn tally<'a>(items: impl IntoIterator<Item = (&'a Problem, bool)>) -> Self {
        let mut average = Tally::default();
        let mut groups: Vec<(&'static str, Vec<(String, Tally)>)> = GROUP_KEYS.iter().map(|&k| (k, vec![])).collect();
        for (problem, correct) in items {
            average.add(correct);
            for (key, values) in &mut groups {
                for value in problem.group_values(key) {
                    match values.iter_mut().find(|(v, _)| v == value) {
                        Some((_, tally)) => tally.add(correct),
                        None => {
                            let mut tally = Tally::default();
                            tally.add(correct);
                            values.push((value.to_string(), tally));
                        }
                    }
                }
            }
        }
        Self { average, groups }
    }

    /// The tally of one group value (`("grade", "college")`), if any item has it.
    pub fn get(&self, key: &str, value: &str) -> Option<Tally> {
        let (_, values) = self.groups.iter().find(|(k, _)| *k == key)?;
        values.iter().find(|(v, _)| v == value).map(|(_, t)| *t)
    }

    /// The official scores JSON, four-space indented with ASCII-escaped strings like `json.dump`.
    pub fn to_json(&self, format: AccuracyFormat) -> String {
        let mut out = String::from("{\n");
        out.push_str(&format!("    \"average\": {}", tally_json(&self.average, format, true, 1)));
        for (key, values) in &self.groups {
            let mut sorted: Vec<(&String, &Tally, f64)> =
                values.iter().map(|(v, t)| (v, t, sort_value(t, format))).collect();
            // Stable, highest first: ties keep their order, as Python's sorted(reverse=True).
            sorted.sort_by(|a, b| b.2.total_cmp(&a.2));
            out.push_str(&format!(",\n    {}: ", json_str(key)));
            if sorted.is_empty() {
                out.push_str("{}");
                continue;
            }
            out.push_str("{\n");
            let entries: Vec<String> = sorted
                .iter()
                .map(|(v, t, _)| format!("        {}: {}", json_str(v), tally_json(t, format, false, 2)))
                .collect();
            out.push_str(&entries.join(",\n"));
            out.push_str("\n    }");
        }
        out.push_str("\n}");
        out
    }
}

/// The accuracy as the official script sorts on: `float(entry['accuracy'])` of what it prints.
fn sort_value(t: &Tally, format: AccuracyFormat) -> f64 {
    match format {
        AccuracyFormat::Fraction => t.accuracy(),
        AccuracyFormat::Percent => python::format_fixed(t.accuracy() * 100.0, 2).parse().unwrap_or(f64::NAN),
    }
}

fn tally_json(t: &Tally, format: AccuracyFormat, is_average: bool, depth: usize) -> String {
    let accuracy = match (format, is_average) {
        (AccuracyFormat::Fraction, _) => python::float_repr(t.accuracy()),
        (AccuracyFormat::Percent, true) => {
            json_str(&python::float_repr(python::round(t.accuracy() * 100.0, 2).unwrap_or(f64::NAN)))
        }
        (AccuracyFormat::Percent, false) => json_str(&python::format_fixed(t.accuracy() * 100.0, 2)),
    };
    let pad = "    ".repeat(depth + 1);
    let end = "    ".repeat(depth);
    format!(
        "{{\n{pad}\"accuracy\": {accuracy},\n{pad}\"correct\": {},\n{pad}\"total\": {}\n{end}}}",
        t.correct, t.total
    )
}

/// A JSON string literal with non-ASCII escaped as `\uXXXX`, as Python's `ensure_ascii` does.
fn json_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    for c in serde_json::to_string(s).expect("a string serializes").chars() {
        if c.is_ascii() {
            out.push(c);
        } else {
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                out.push_str(&format!("\\u{unit:04x}"));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::mathvista::Metadata;
    use serde_json::json;

    fn problem(question_type: &str, grade: &str, skills: &[&str]) -> Problem {
        Problem {
            question_type: question_type.into(),
            answer_type: "integer".into(),
            choices: None,
            precision: json!(null),
            answer: json!("1"),
            metadata: Metadata {
                grade: Some(grade.into()),
                skills: skills.iter().map(|s| s.to_string()).collect(),
                ..Default::default()
            },
        }
    }

    #[test]
    fn groups_skills_and_sorting_follow_the_official_script() {
        let items = [
            (problem("free_form", "college", &["a", "b"]), false),
            (problem("multi_choice", "daily life", &["b"]), true),
            (problem("free_form", "daily life", &["b", "b"]), true),
        ];
        let scores = Scores::tally(items.iter().map(|(p, c)| (p, *c)));
        assert_eq!(scores.average, Tally { correct: 2, total: 3 });
        assert_eq!(scores.get("question_type", "free_form"), Some(Tally { correct: 1, total: 2 }));
        assert_eq!(scores.get("skills", "b"), Some(Tally { correct: 2, total: 3 })); // once per item
        assert_eq!(scores.get("skills", "a"), Some(Tally { correct: 0, total: 1 }));
        assert_eq!(scores.get("language", "english"), None); // no item has a language

        let json: serde_json::Value = serde_json::from_str(&scores.to_json(AccuracyFormat::Percent)).unwrap();
        assert_eq!(json["average"], json!({"accuracy": "66.67", "correct": 2, "total": 3}));
        assert_eq!(json["grade"]["daily life"]["accuracy"], "100.00");
        assert_eq!(json["language"], json!({}));
        let text = scores.to_json(AccuracyFormat::Fraction);
        let json: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(json["average"]["accuracy"], json!(2.0 / 3.0));
        // Highest accuracy first: multi_choice (1.0) before free_form (0.5), although it came second.
        assert!(text.find("\"multi_choice\"").unwrap() < text.find("\"free_form\"").unwrap(), "{text}");
        assert!(text.starts_with("{\n    \"average\": {\n        \"accuracy\": 0.6666666666666666,\n"), "{text}");
    }

    #[test]
    fn percent_average_is_python_round_and_groups_two_decimals() {
        let scores = Scores { average: Tally { correct: 348, total: 1000 }, groups: vec![] };
        assert!(scores.to_json(AccuracyFormat::Percent).contains("\"accuracy\": \"34.8\""));
        assert_eq!(json_str("é😀"), "\"\\u00e9\\ud83d\\ude00\"");
        assert_eq!("Percent".parse::<AccuracyFormat>().unwrap(), AccuracyFormat::Percent);
        assert!("pct".parse::<AccuracyFormat>().is_err());
    }
}
