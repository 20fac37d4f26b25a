//! The benchmarks both papers report (Vision-R1 Tab.1, ReVisual-R1 Tab.2; papers_spec §1.7, §1.8, §2.10,
//! §2.11), read from each benchmark's published files as they are, into one item type ([`BenchItem`]).
//!
//! `root` is the folder of one benchmark as its authors publish it (a Hugging Face dataset repository or
//! the GitHub `data` folder); each adapter's header names the files it reads and says where a layout could
//! not be checked against the real repository (UNVERIFIED). A missing file, column/field or image is an
//! error that names it and the layout that was expected.
//!
//! - [`mathvista`]: MathVista testmini (`testmini.json`, through [`crate::eval::mathvista`]).
//! - [`mathverse`]: MathVerse testmini, all five vision-bearing versions or the Vision-Only split.
//! - [`mathvision`]: MATH-Vision test.
//! - [`wemath`]: We-Math testmini (one-step sub-problems and their multi-step problem share a group).
//! - [`dynamath`]: DynaMath_Sample, 10 variants of 501 seed questions (the seed id is the group).
//! - [`logicvista`]: LogicVista (logical reasoning over diagrams).
//! - [`mmmath`]: MM-Math (the answer is the last `\boxed{}` of the published solution).
//! - [`text_sets`]: AIME24, AIME25, MATH500, GPQA-Diamond (ReVisual-R1's text benchmarks).
//! - [`preset`]: each paper's generation protocol as a named preset.
//! - [`score`]: answer extraction, per-item correctness and the aggregate metrics (accuracy, per category,
//!   We-Math strict/loose, DynaMath average/worst case, average@k).
//! - [`official`]: the official rule-based scorers of MATH-Vision, DynaMath, LogicVista and MM-Math.
//! - [`judged`]: scoring with an LLM judge: answer extraction for every benchmark, MathVerse's stage-2 match.
//! - [`report`]: per-item records, parquet summaries, markdown tables shaped like the papers' tables.
//! - [`generate`]: prompts built by a preset and batched, seeded generation with the tch model (re-query rule).
//! - [`run`]: `r1lab eval run`, generate → extract → score → report, resumable, with a `run.json` record.
//! - [`cli`]: `r1lab eval bench` (scoring a file of responses and writing the reports) and `r1lab eval run`.
//!
//! Categories: [`BenchItem::categories`] maps a category key to its value; a value that lists several
//! (MathVista skills, LogicVista skills) joins them with [`MULTI_SEP`] and the item counts under each.
pub mod cli;
pub mod dynamath;
pub mod generate;
pub mod judged;
pub mod logicvista;
pub mod mathverse;
pub mod mathvision;
pub mod mathvista;
pub mod mmmath;
pub mod official;
pub mod preset;
pub mod report;
pub mod run;
pub mod score;
pub mod text_sets;
pub mod wemath;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use anyhow::{Context, Result, anyhow, bail};
use polars::prelude::{DataFrame, ParquetReader, SerReader};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Separator of a multi-valued category value (each part counts as its own category value).
pub const MULTI_SEP: char = '|';

/// One benchmark (or one split of it that a paper reports on its own). The names are stable: they are
/// the `--benchmark` values, the `benchmark` column of every report, and never change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub enum Benchmark {
    /// MathVista testmini, 1,000 items (both papers).
    MathVista,
    /// MathVerse testmini, all vision-bearing versions (Vision-R1's "MathVerse", §1.7).
    MathVerse,
    /// MathVerse testmini, the Vision-Only version (ReVisual-R1's "MathVerse", §2.10).
    MathVerseVisionOnly,
    /// MATH-Vision test, 3,040 items (ReVisual-R1).
    MathVision,
    /// We-Math testmini, 1,740 items in 525 multi-step problems (ReVisual-R1 reports strict).
    WeMath,
    /// DynaMath, 501 seeds x 10 variants (Vision-R1 v4: average case; ReVisual-R1: worst case).
    DynaMath,
    /// LogicVista (ReVisual-R1).
    LogicVista,
    /// MM-Math (Vision-R1).
    MmMath,
    /// AIME 2024, 30 problems (ReVisual-R1, average@k).
    Aime24,
    /// AIME 2025, 30 problems (ReVisual-R1, average@k).
    Aime25,
    /// MATH500 (ReVisual-R1).
    Math500,
    /// GPQA Diamond, 198 items (ReVisual-R1).
    GpqaDiamond,
}

impl Benchmark {
    pub const ALL: [Benchmark; 12] = [
        Benchmark::MathVista,
        Benchmark::MathVerse,
        Benchmark::MathVerseVisionOnly,
        Benchmark::MathVision,
        Benchmark::WeMath,
        Benchmark::DynaMath,
        Benchmark::LogicVista,
        Benchmark::MmMath,
        Benchmark::Aime24,
        Benchmark::Aime25,
        Benchmark::Math500,
        Benchmark::GpqaDiamond,
    ];

    /// The stable name (FromStr/Display).
    pub const fn name(self) -> &'static str {
        match self {
            Benchmark::MathVista => "mathvista_testmini",
            Benchmark::MathVerse => "mathverse_testmini",
            Benchmark::MathVerseVisionOnly => "mathverse_vision_only",
            Benchmark::MathVision => "mathvision_test",
            Benchmark::WeMath => "wemath_testmini",
            Benchmark::DynaMath => "dynamath",
            Benchmark::LogicVista => "logicvista",
            Benchmark::MmMath => "mm_math",
            Benchmark::Aime24 => "aime24",
            Benchmark::Aime25 => "aime25",
            Benchmark::Math500 => "math500",
            Benchmark::GpqaDiamond => "gpqa_diamond",
        }
    }

    /// The files `root` must hold (named in every "missing file" error).
    pub const fn layout(self) -> &'static str {
        match self {
            Benchmark::MathVista => "testmini.json (pid -> problem) and the images it names (images/<pid>.jpg)",
            Benchmark::MathVerse | Benchmark::MathVerseVisionOnly => {
                "testmini.json (a list of records) and images/<image>"
            }
            Benchmark::MathVision => {
                "data/test.jsonl and the images it names (images/<id>.jpg), or the Hub's data/test-*.parquet"
            }
            Benchmark::WeMath => "testmini.json and the images it names (<n>steps/image/...)",
            Benchmark::DynaMath => "data/sample<k>-*.parquet for k = 1..10 (the Hub's DynaMath/DynaMath_Sample)",
            Benchmark::LogicVista => "data/test-*.parquet (images embedded)",
            Benchmark::MmMath => "MM_Math/MM_Math.jsonl and the images of MM_Math/MM_Math.zip unzipped into MM_Math/",
            Benchmark::Aime24 => "data/train-*.parquet (id, problem, answer)",
            Benchmark::Aime25 => "aime2025-I.jsonl and aime2025-II.jsonl (question, answer)",
            Benchmark::Math500 => "test.jsonl (problem, answer, subject, level, unique_id)",
            Benchmark::GpqaDiamond => "gpqa_diamond.csv",
        }
    }

    /// No image in any item.
    pub const fn is_text_only(self) -> bool {
        matches!(self, Benchmark::Aime24 | Benchmark::Aime25 | Benchmark::Math500 | Benchmark::GpqaDiamond)
    }
}

impl fmt::Display for Benchmark {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Benchmark {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<Self> {
        Benchmark::ALL.into_iter().find(|b| b.name() == s).ok_or_else(|| {
            let names: Vec<&str> = Benchmark::ALL.iter().map(|b| b.name()).collect();
            anyhow!("unknown benchmark `{s}`: expected one of {}", names.join(", "))
        })
    }
}

impl From<Benchmark> for String {
    fn from(b: Benchmark) -> String {
        b.name().to_string()
    }
}

impl TryFrom<String> for Benchmark {
    type Error = anyhow::Error;
    fn try_from(s: String) -> Result<Self> {
        s.parse()
    }
}

/// How an answer is compared (see [`score`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AnswerType {
    /// One option letter (or, for LogicVista, a set of letters written without separators, e.g. `AC`).
    MultipleChoice,
    Integer,
    Float,
    /// A list of values (MathVista `list`).
    List,
    /// Anything else (expressions, text): compared with the math grader.
    FreeForm,
}

/// One benchmark item, whatever file it came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BenchItem {
    pub benchmark: Benchmark,
    /// Unique within the benchmark (the published id, or id plus variant / sub-problem).
    pub id: String,
    /// The question text the protocol sends (the published prompt field where there is one; options
    /// included where the benchmark embeds them).
    pub question: String,
    /// Image files, in prompt order (checked to exist when loading).
    pub images: Vec<PathBuf>,
    /// Option texts, in letter order (A first); empty for free-form items and for benchmarks whose
    /// options are only inside the question text.
    pub choices: Vec<String>,
    /// The reference answer: the option letter(s) for multiple choice, else the published answer.
    pub answer: String,
    pub answer_type: AnswerType,
    /// Category key -> value (multi-valued values joined with [`MULTI_SEP`]).
    pub categories: BTreeMap<String, String>,
    /// Items scored together: the DynaMath seed id, the We-Math problem id.
    pub group: Option<String>,
    /// Decimal places a float answer is rounded to before comparison (MathVista's `precision`).
    #[serde(default)]
    pub precision: Option<u32>,
}

#[cfg(test)]
impl BenchItem {
    /// A test item: `answer` to `question` with no images, categories or group; multiple choice when `choices` is
    /// not empty, free-form otherwise (tests change other fields with struct update syntax).
    pub(crate) fn fixture(benchmark: Benchmark, question: &str, choices: &[&str], answer: &str) -> Self {
        BenchItem {
            benchmark,
            id: "1".into(),
            question: question.into(),
            images: vec![],
            choices: choices.iter().map(|c| c.to_string()).collect(),
            answer: answer.into(),
            answer_type: if choices.is_empty() { AnswerType::FreeForm } else { AnswerType::MultipleChoice },
            categories: Default::default(),
            group: None,
            precision: None,
        }
    }
}

/// Loads every item of `benchmark` from the folder `root` (see each adapter for the layout).
pub fn load(benchmark: Benchmark, root: &Path) -> Result<Vec<BenchItem>> {
    if !root.is_dir() {
        bail!(
            "{benchmark}: the benchmark folder {} does not exist: download the benchmark there (expected: {})",
            root.display(),
            benchmark.layout()
        );
    }
    let items = match benchmark {
        Benchmark::MathVista => mathvista::load(root)?,
        Benchmark::MathVerse => mathverse::load(root, mathverse::Split::AllVersions)?,
        Benchmark::MathVerseVisionOnly => mathverse::load(root, mathverse::Split::VisionOnly)?,
        Benchmark::MathVision => mathvision::load(root)?,
        Benchmark::WeMath => wemath::load(root)?,
        Benchmark::DynaMath => dynamath::load(root)?,
        Benchmark::LogicVista => logicvista::load(root)?,
        Benchmark::MmMath => mmmath::load(root)?,
        Benchmark::Aime24 => text_sets::load_aime24(root)?,
        Benchmark::Aime25 => text_sets::load_aime25(root)?,
        Benchmark::Math500 => text_sets::load_math500(root)?,
        Benchmark::GpqaDiamond => text_sets::load_gpqa(root)?,
    };
    if items.is_empty() {
        bail!("{benchmark}: no items under {} (expected: {})", root.display(), benchmark.layout());
    }
    let mut seen = std::collections::HashSet::new();
    for item in &items {
        if !seen.insert(item.id.as_str()) {
            bail!("{benchmark}: item id `{}` occurs twice under {}", item.id, root.display());
        }
    }
    Ok(items)
}

/// The option letter of index `i` (A, B, ...).
pub fn letter(i: usize) -> Result<char> {
    u8::try_from(i)
        .ok()
        .filter(|&i| i < 26)
        .map(|i| char::from(b'A' + i))
        .ok_or_else(|| anyhow!("option {i}: more than 26 options"))
}

/// `path`, or an error naming the missing file and the layout `benchmark` expects.
pub(crate) fn need_file(benchmark: Benchmark, path: &Path) -> Result<()> {
    if !path.is_file() {
        bail!(
            "{benchmark}: missing file {} (expected under the benchmark folder: {})",
            path.display(),
            benchmark.layout()
        );
    }
    Ok(())
}

/// The image `rel` under `base` for item `id`; an error names the missing image.
pub(crate) fn image_path(benchmark: Benchmark, base: &Path, rel: &str, id: &str) -> Result<PathBuf> {
    let path = base.join(rel);
    if !path.is_file() {
        bail!("{benchmark}: item {id}: missing image {} (download the benchmark's images too)", path.display());
    }
    Ok(path)
}

/// Reads a JSON file.
pub(crate) fn read_json(benchmark: Benchmark, path: &Path) -> Result<Value> {
    need_file(benchmark, path)?;
    let bytes = std::fs::read(path).with_context(|| format!("{benchmark}: reading {}", path.display()))?;
    serde_json::from_slice(&bytes).with_context(|| format!("{benchmark}: {} is not valid JSON", path.display()))
}

/// Reads a JSON-lines file (blank lines skipped); each line must be an object.
pub(crate) fn read_jsonl(benchmark: Benchmark, path: &Path) -> Result<Vec<Map<String, Value>>> {
    need_file(benchmark, path)?;
    let text = std::fs::read_to_string(path).with_context(|| format!("{benchmark}: reading {}", path.display()))?;
    let mut out = vec![];
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str(line).with_context(|| format!("{}: line {}: not JSON", path.display(), i + 1))? {
            Value::Object(m) => out.push(m),
            other => bail!("{}: line {}: expected a JSON object, found {other}", path.display(), i + 1),
        }
    }
    Ok(out)
}

/// The records of a JSON file holding a list of objects.
pub(crate) fn json_records(benchmark: Benchmark, path: &Path) -> Result<Vec<Map<String, Value>>> {
    match read_json(benchmark, path)? {
        Value::Array(rows) => rows
            .into_iter()
            .enumerate()
            .map(|(i, v)| match v {
                Value::Object(m) => Ok(m),
                other => bail!("{}: record {i}: expected a JSON object, found {other}", path.display()),
            })
            .collect(),
        _ => bail!("{benchmark}: {} must hold a JSON list of records", path.display()),
    }
}

/// Field `key` of a record as text (strings as they are, numbers and booleans written out); an error
/// names the file, the record and the field.
pub(crate) fn text_field(rec: &Map<String, Value>, key: &str, path: &Path, at: &str) -> Result<String> {
    match rec.get(key) {
        Some(v) => value_text(v).ok_or_else(|| anyhow!("{}: {at}: field `{key}` is not text: {v}", path.display())),
        None => bail!("{}: {at}: missing field `{key}`", path.display()),
    }
}

/// Optional field `key` as text (absent or null -> None).
pub(crate) fn opt_text(rec: &Map<String, Value>, key: &str) -> Option<String> {
    rec.get(key).and_then(value_text)
}

/// A JSON scalar as text; `None` for null, arrays and objects.
pub(crate) fn value_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// Reads one parquet file.
pub(crate) fn read_parquet(benchmark: Benchmark, path: &Path) -> Result<DataFrame> {
    need_file(benchmark, path)?;
    let file = std::fs::File::open(path).with_context(|| format!("{benchmark}: opening {}", path.display()))?;
    ParquetReader::new(file).finish().with_context(|| format!("{benchmark}: reading parquet {}", path.display()))
}

/// The files in `dir` whose names start with `prefix` and end with `.parquet`, sorted (Hub shards
/// `<split>-00000-of-00002.parquet`, ...); an error when there is none.
pub(crate) fn parquet_shards(benchmark: Benchmark, dir: &Path, prefix: &str) -> Result<Vec<PathBuf>> {
    let entries = std::fs::read_dir(dir)
        .with_context(|| format!("{benchmark}: missing folder {} (expected: {})", dir.display(), benchmark.layout()))?;
    let mut out = vec![];
    for e in entries {
        let e = e.with_context(|| format!("listing {}", dir.display()))?;
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with(prefix) && name.ends_with(".parquet") {
            out.push(e.path());
        }
    }
    out.sort();
    if out.is_empty() {
        bail!("{benchmark}: missing file {}/{prefix}*.parquet (expected: {})", dir.display(), benchmark.layout());
    }
    Ok(out)
}

/// Column `name` of `df` as text per row (strings, or integers/floats written out); an error names the file.
pub(crate) fn text_column(df: &DataFrame, name: &str, path: &Path) -> Result<Vec<Option<String>>> {
    use polars::prelude::DataType;
    let col = df.column(name).map_err(|_| anyhow!("{}: missing column `{name}`", path.display()))?;
    let col = match col.dtype() {
        DataType::String => col.clone(),
        _ => col.cast(&DataType::String).with_context(|| format!("{}: column `{name}` is not text", path.display()))?,
    };
    let s = col.str().with_context(|| format!("{}: column `{name}`", path.display()))?;
    Ok(s.iter().map(|v| v.map(str::to_string)).collect())
}

/// Column `name` as a list of texts per row: a list column element by element, a scalar column as a
/// one-element list, null as an empty list; an error names the file.
pub(crate) fn list_column(df: &DataFrame, name: &str, path: &Path) -> Result<Vec<Vec<String>>> {
    use polars::prelude::DataType;
    let col = df.column(name).map_err(|_| anyhow!("{}: missing column `{name}`", path.display()))?;
    if let DataType::List(_) = col.dtype() {
        let list = col.list().with_context(|| format!("{}: column `{name}`", path.display()))?;
        let mut out = Vec::with_capacity(list.len());
        for i in 0..list.len() {
            let texts = match list.get_as_series(i) {
                None => vec![],
                Some(s) => {
                    let s = s
                        .cast(&DataType::String)
                        .with_context(|| format!("{}: column `{name}` row {i}", path.display()))?;
                    s.str()?.iter().flatten().map(str::to_string).collect()
                }
            };
            out.push(texts);
        }
        return Ok(out);
    }
    Ok(text_column(df, name, path)?.into_iter().map(|v| v.into_iter().collect()).collect())
}

/// The image bytes of column `name` per row (a Hub image struct `{bytes, path}` or a binary column);
/// `None` when the column does not exist.
pub(crate) fn embedded_images(df: &DataFrame, name: &str, path: &Path) -> Result<Option<Vec<Option<Vec<u8>>>>> {
    use polars::prelude::DataType;
    let Ok(col) = df.column(name) else { return Ok(None) };
    let s = col.as_materialized_series();
    let bytes = match s.dtype() {
        DataType::Struct(_) => s
            .struct_()?
            .field_by_name("bytes")
            .with_context(|| format!("{}: image column `{name}` has no `bytes` field", path.display()))?,
        DataType::Binary => s.clone(),
        other => bail!("{}: column `{name}` is {other}, not an image struct {{bytes, path}}", path.display()),
    };
    let bytes = bytes.binary().with_context(|| format!("{}: `{name}.bytes` must be binary", path.display()))?;
    Ok(Some(bytes.iter().map(|v| v.map(<[u8]>::to_vec)).collect()))
}

/// Writes embedded image bytes once (crash-safe) to `<root>/r1lab_images/<sub>/<key>.<png|jpg>` and
/// returns that path; a file of the same size already there is reused.
pub(crate) fn materialize_image(
    benchmark: Benchmark,
    root: &Path,
    sub: &str,
    key: &str,
    bytes: &[u8],
) -> Result<PathBuf> {
    let ext = if bytes.starts_with(b"\x89PNG") { "png" } else { "jpg" };
    let safe: String =
        key.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' }).collect();
    let path = root.join("r1lab_images").join(sub).join(format!("{safe}.{ext}"));
    let same = std::fs::metadata(&path).map(|m| m.len() == bytes.len() as u64).unwrap_or(false);
    if !same {
        crate::io::write_atomic(&path, bytes).with_context(|| {
            format!("{benchmark}: extracting an embedded image (is the benchmark folder writable?)")
        })?;
    }
    Ok(path)
}

/// Sorts ids that are numbers numerically, the others after them by text (published files' keys are
/// "1", "2", ..., "10": JSON objects do not keep an order this crate relies on).
pub(crate) fn natural_key(id: &str) -> (u64, String) {
    (id.parse::<u64>().unwrap_or(u64::MAX), id.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_are_unique() {
        let mut names = std::collections::HashSet::new();
        for b in Benchmark::ALL {
            assert_eq!(b.name().parse::<Benchmark>().unwrap(), b);
            assert_eq!(b.to_string(), b.name());
            assert!(names.insert(b.name()));
        }
        let err = "mathvista".parse::<Benchmark>().unwrap_err().to_string();
        assert!(err.contains("mathvista_testmini") && err.contains("gpqa_diamond"), "{err}");
        let json = serde_json::to_string(&Benchmark::WeMath).unwrap();
        assert_eq!(json, "\"wemath_testmini\"");
        assert_eq!(serde_json::from_str::<Benchmark>(&json).unwrap(), Benchmark::WeMath);
    }

    #[test]
    fn letters() {
        assert_eq!(letter(0).unwrap(), 'A');
        assert_eq!(letter(25).unwrap(), 'Z');
        assert!(letter(26).is_err());
    }

    #[test]
    fn missing_root_names_the_folder_and_layout() {
        let err = load(Benchmark::MathVision, Path::new("/nonexistent/bench")).unwrap_err().to_string();
        assert!(err.contains("/nonexistent/bench") && err.contains("data/test.jsonl"), "{err}");
    }
}
