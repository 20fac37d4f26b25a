//! Synthetic multimodal reasoning tasks for the embedded default (issue 6, item 1): small rendered
//! images (shapes, bar charts, digit grids, right triangles) with questions whose answer needs facts
//! that are only in the image and several reasoning steps.
//!
//! - **Determinism.** Problem `index` of `(family, level, seed)` draws all its randomness from
//!   `repro::seed::rng(seed, SeedDomain::DataOrder, SYNTH_STEP + family.tag(), index, level)`.
//!   `SeedDomain` has no data-synthesis tag yet, so the synthetic stream lives in `DataOrder` at step
//!   numbers ≥ 2^40, far above any epoch number (a dedicated tag would be cleaner; it belongs to
//!   `repro::seed`). Same inputs → byte-identical PNGs.
//! - **Answers** are integers (`"17"`, `"-3"`) or choice letters (`"B"`), graded by
//!   `rl::grader::grade_answer`.
//! - **Difficulty** `level` 1..=3 sets object counts, number ranges and the number of steps (see each
//!   family's `build`).
//! - **Splits** are disjoint by construction: a problem's split is a hash of its family and its
//!   canonical parameter tuple [`Problem::key`] (the full scene and question, not the seed or level),
//!   so one tuple can only ever fall in one split ([`split_of`]). [`generate_split`] scans indices
//!   and keeps the problems of the requested split, each key once.
//! - **Text-only twin** ([`Problem::text_twin`]): the same facts stated in words, for ReVisual-R1's
//!   text stages; **ground-truth trace** ([`Trace`]): the facts and the steps, structured, for the
//!   describer / reasoner of modality bridging.
use std::collections::HashSet;
use std::fmt;
use std::str::FromStr;

use anyhow::{Result, bail, ensure};
use image::RgbImage;
use rand::Rng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::repro::seed::{self, SeedDomain};

mod bars;
mod digits;
pub mod export;
mod geometry;
pub mod raster;
mod shapes;

/// Step offset of the synthetic streams inside `SeedDomain::DataOrder` (see the module header).
pub const SYNTH_STEP: u64 = 1 << 40;
/// One problem in `HELD_OUT_DENOM` (by key hash) is held out.
pub const HELD_OUT_DENOM: u64 = 5;

/// A task family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Family {
    /// Coloured circles, squares and triangles of two sizes on a grid: counting with set logic.
    Shapes,
    /// A bar chart with lettered bars and their values: comparisons and arithmetic.
    Bars,
    /// A grid of digits: row/column sums, parities, extremes.
    Digits,
    /// A right triangle with labelled legs: hypotenuse, area, perimeter.
    Geometry,
}

impl Family {
    pub const ALL: [Family; 4] = [Family::Shapes, Family::Bars, Family::Digits, Family::Geometry];

    /// Stable number mixed into the seed (never renumber).
    pub const fn tag(self) -> u64 {
        match self {
            Family::Shapes => 1,
            Family::Bars => 2,
            Family::Digits => 3,
            Family::Geometry => 4,
        }
    }

    pub const fn name(self) -> &'static str {
        match self {
            Family::Shapes => "shapes",
            Family::Bars => "bars",
            Family::Digits => "digits",
            Family::Geometry => "geometry",
        }
    }
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Family {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<Self> {
        match Family::ALL.into_iter().find(|f| f.name() == s) {
            Some(f) => Ok(f),
            None => bail!("unknown synthetic task family {s:?}: use one of shapes, bars, digits, geometry"),
        }
    }
}

/// Train or held-out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Split {
    Train,
    /// Held out for evaluation.
    Test,
}

impl FromStr for Split {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "train" => Ok(Split::Train),
            "test" | "heldout" | "held_out" => Ok(Split::Test),
            _ => bail!("unknown split {s:?}: use train or test"),
        }
    }
}

impl fmt::Display for Split {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Split::Train => "train",
            Split::Test => "test",
        })
    }
}

/// Generation settings shared by all families.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Config {
    /// Base seed of the stream.
    pub seed: u64,
    /// Difficulty 1..=3.
    pub level: u8,
    /// Image side in pixels (square), a multiple of 28 in 112..=448.
    pub size: u32,
}

impl Default for Config {
    fn default() -> Self {
        Config { seed: 0, level: 2, size: 224 }
    }
}

impl Config {
    pub fn validate(&self) -> Result<()> {
        ensure!((1..=3).contains(&self.level), "synthetic level {} is out of range: use 1, 2 or 3", self.level);
        ensure!(
            self.size.is_multiple_of(28) && (112..=448).contains(&self.size),
            "synthetic image size {} is not supported: use a multiple of 28 between 112 and 448",
            self.size
        );
        Ok(())
    }
}

/// One reasoning step of the ground-truth solution.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Step {
    /// What is done, in words ("Add the heights of bars A and C").
    pub text: String,
    /// The intermediate result.
    pub value: String,
}

/// The ground truth of a problem: every fact the image shows and the steps from them to the answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Trace {
    /// One sentence per visible fact ("Bar C has value 12.").
    pub facts: Vec<String>,
    pub steps: Vec<Step>,
}

/// A generated problem.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Problem {
    /// `{family}-l{level}-s{seed}-{index}`.
    pub id: String,
    pub family: Family,
    pub level: u8,
    pub index: u64,
    pub split: Split,
    /// Canonical parameter tuple: the scene and the question (what decides the split).
    pub key: String,
    /// The question without image placeholder or choices.
    pub question: String,
    /// Choice texts for multiple choice, lettered (A), (B), ... in order; empty otherwise.
    pub choices: Vec<String>,
    /// Ground-truth answer: an integer or a choice letter.
    pub answer: String,
    /// One-sentence summary of the picture, used by the text twin ("A bar chart with 5 bars.").
    pub scene: String,
    pub trace: Trace,
    /// Short perception questions about the image with their answers (`text` = question, `value` = answer), for
    /// the base model ([`crate::data::perception`]); empty for families that have none yet (only shapes has them).
    /// Not serialised: a function of the scene, rebuilt by [`generate`].
    #[serde(skip)]
    pub perception: Vec<Step>,
    /// The image as PNG bytes.
    #[serde(skip)]
    pub png: Vec<u8>,
    pub width: u32,
    pub height: u32,
}

/// What a family builds for one draw.
pub(crate) struct Built {
    pub key: String,
    pub scene: String,
    pub question: String,
    pub choices: Vec<String>,
    pub answer: String,
    pub trace: Trace,
    pub image: RgbImage,
    pub perception: Vec<Step>,
}

impl Problem {
    /// The question followed by its lettered choices, if any.
    pub fn question_with_choices(&self) -> String {
        let mut q = self.question.clone();
        if !self.choices.is_empty() {
            q.push_str("\nChoices:");
            for (i, c) in self.choices.iter().enumerate() {
                q.push_str(&format!(" ({}) {c}", letter(i)));
            }
        }
        q
    }

    /// The multimodal prompt as EasyR1 and LLaMA-Factory expect it: `<image>` then the question.
    pub fn problem(&self) -> String {
        format!("<image>{}", self.question_with_choices())
    }

    /// The scene and every fact in words: what the text-only twin states instead of the picture.
    pub fn scene_in_words(&self) -> String {
        format!("{} {}", self.scene, self.trace.facts.join(" "))
    }

    /// The text-only twin: the scene in words, then the same question.
    pub fn text_twin(&self) -> String {
        format!("{}\n{}", self.scene_in_words(), self.question_with_choices())
    }

    /// A reference solution in Vision-R1's target format
    /// `<think> ... </think><answer> Final Answer:X </answer>`, written from the trace.
    pub fn reference_response(&self) -> String {
        let steps: Vec<String> = self.trace.steps.iter().map(|s| format!("{} gives {}.", s.text, s.value)).collect();
        format!(
            "<think> {} {} So the answer is {}. </think><answer> Final Answer:{} </answer>",
            self.trace.facts.join(" "),
            steps.join(" "),
            self.answer,
            self.answer
        )
    }
}

/// The letter of choice `i` (0 → `A`).
pub fn letter(i: usize) -> char {
    (b'A' + i as u8) as char
}

/// The split of a canonical parameter tuple: held out when SHA-256(`family/key`) ≡ 0 mod
/// [`HELD_OUT_DENOM`] (first 8 bytes, little-endian).
pub fn split_of(family: Family, key: &str) -> Split {
    let d = Sha256::digest(format!("{}/{key}", family.name()).as_bytes());
    let v = u64::from_le_bytes(d[..8].try_into().expect("8 bytes"));
    if v.is_multiple_of(HELD_OUT_DENOM) { Split::Test } else { Split::Train }
}

/// The random stream of problem `index` (see the module header).
pub fn problem_rng(family: Family, cfg: &Config, index: u64) -> ChaCha8Rng {
    seed::rng(cfg.seed, SeedDomain::DataOrder, SYNTH_STEP + family.tag(), index, cfg.level as u64)
}

fn build(family: Family, cfg: &Config, index: u64) -> Built {
    let mut rng = problem_rng(family, cfg, index);
    match family {
        Family::Shapes => shapes::build(&mut rng, cfg.level, cfg.size),
        Family::Bars => bars::build(&mut rng, cfg.level, cfg.size),
        Family::Digits => digits::build(&mut rng, cfg.level, cfg.size),
        Family::Geometry => geometry::build(&mut rng, cfg.level, cfg.size),
    }
}

/// The canonical parameter tuple: the family's scene parameters, the question and the choices.
fn key_of(b: &Built) -> String {
    format!("{}|{}|{}", b.key, b.question, b.choices.join(";"))
}

/// Problem `index` of the stream `(family, cfg)`, whatever its split.
pub fn generate(family: Family, cfg: &Config, index: u64) -> Result<Problem> {
    cfg.validate()?;
    let b = build(family, cfg, index);
    let key = key_of(&b);
    Ok(Problem {
        id: format!("{}-l{}-s{}-{index}", family.name(), cfg.level, cfg.seed),
        family,
        level: cfg.level,
        index,
        split: split_of(family, &key),
        key,
        question: b.question,
        choices: b.choices,
        answer: b.answer,
        scene: b.scene,
        trace: b.trace,
        perception: b.perception,
        png: raster::encode_png(&b.image)?,
        width: b.image.width(),
        height: b.image.height(),
    })
}

/// The first `n` problems of `split` in the stream `(family, cfg)`, each parameter tuple once.
pub fn generate_split(family: Family, cfg: &Config, split: Split, n: usize) -> Result<Vec<Problem>> {
    cfg.validate()?;
    let mut out = Vec::with_capacity(n);
    let mut seen = HashSet::new();
    let max_scan = 100 * n as u64 + 1000;
    let mut index = 0u64;
    while out.len() < n {
        ensure!(
            index < max_scan,
            "only {} distinct {split} problems of family {family} at level {} in the first {max_scan} draws: \
             ask for fewer or use a higher level",
            out.len(),
            cfg.level
        );
        // The split is known before the PNG is encoded.
        let key = key_of(&build(family, cfg, index));
        if split_of(family, &key) == split && seen.insert(key) {
            out.push(generate(family, cfg, index)?);
        }
        index += 1;
    }
    Ok(out)
}

/// `n` problems of `split` for each family in `families`, in family order.
pub fn generate_mix(families: &[Family], cfg: &Config, split: Split, n: usize) -> Result<Vec<Problem>> {
    let mut out = Vec::new();
    for &f in families {
        out.extend(generate_split(f, cfg, split, n)?);
    }
    Ok(out)
}

/// Four distinct numeric choices containing `answer`, shuffled; returns the choices and the
/// correct letter.
pub(crate) fn numeric_choices(rng: &mut ChaCha8Rng, answer: i64) -> (Vec<String>, String) {
    let mut opts = vec![answer];
    while opts.len() < 4 {
        let spread = (answer.abs() / 4).max(3);
        let d = rng.random_range(-spread..=spread);
        let cand = answer + d;
        if d != 0 && !opts.contains(&cand) {
            opts.push(cand);
        }
    }
    opts.shuffle(rng);
    let pos = opts.iter().position(|&v| v == answer).expect("answer is among the options");
    (opts.iter().map(|v| v.to_string()).collect(), letter(pos).to_string())
}

/// `"1 + 2 + 3"`.
pub(crate) fn join_plus(v: &[i64]) -> String {
    v.iter().map(|x| x.to_string()).collect::<Vec<_>>().join(" + ")
}

#[cfg(test)]
mod tests;
