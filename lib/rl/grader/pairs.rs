//! `r1lab grade --pairs FILE.jsonl`: grades outside (prediction, gold) corpora without writing
//! Rust. Input: one JSON object per line with string fields `pred` and `gold` (other fields are
//! ignored; blank lines are skipped). Output: one `{"pred", "gold", "correct"}` object per line.
use std::io::{BufRead, Write};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

use super::grade_answer;

/// One input line.
#[derive(Debug, Clone, Deserialize)]
pub struct Pair {
    pub pred: String,
    pub gold: String,
}

/// One output line.
#[derive(Debug, Clone, Serialize)]
pub struct Verdict {
    pub pred: String,
    pub gold: String,
    pub correct: bool,
}

/// Reads every pair of `input` (named `source` in errors), failing on the first malformed line.
pub fn read_pairs(input: impl BufRead, source: &str) -> Result<Vec<Pair>> {
    let mut pairs = Vec::new();
    for (i, line) in input.lines().enumerate() {
        let n = i + 1;
        let line = line.with_context(|| format!("{source}:{n}: cannot read the line (is the file UTF-8?)"))?;
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<Pair>(&line) {
            Ok(p) => pairs.push(p),
            Err(e) => {
                bail!("{source}:{n}: expected a JSON object with string fields \"pred\" and \"gold\" on each line: {e}")
            }
        }
    }
    Ok(pairs)
}

/// Grades `pairs` with [`grade_answer`], writing one JSON verdict per line; returns how many
/// were correct.
pub fn write_verdicts(pairs: Vec<Pair>, mut out: impl Write) -> Result<usize> {
    let mut correct = 0;
    for Pair { pred, gold } in pairs {
        let c = grade_answer(&pred, &gold);
        correct += usize::from(c);
        serde_json::to_writer(&mut out, &Verdict { pred, gold, correct: c })?;
        out.write_all(b"\n")?;
    }
    out.flush()?;
    Ok(correct)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grades_lines_and_names_the_bad_one() {
        let input = "{\"pred\": \"1/2\", \"gold\": \"0.5\", \"kind\": \"x\"}\n\n{\"pred\": \"3\", \"gold\": \"4\"}\n";
        let pairs = read_pairs(input.as_bytes(), "in.jsonl").unwrap();
        let mut out = Vec::new();
        assert_eq!(write_verdicts(pairs, &mut out).unwrap(), 1);
        let text = String::from_utf8(out).unwrap();
        assert_eq!(
            text,
            "{\"pred\":\"1/2\",\"gold\":\"0.5\",\"correct\":true}\n{\"pred\":\"3\",\"gold\":\"4\",\"correct\":false}\n"
        );
        let err = read_pairs("{\"pred\": \"1\", \"gold\": \"1\"}\n{\"pred\": 1}\n".as_bytes(), "in.jsonl").unwrap_err();
        assert!(err.to_string().starts_with("in.jsonl:2: expected a JSON object"), "{err}");
    }
}
