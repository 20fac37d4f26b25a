//! SFT records to training examples, as LLaMA-Factory's `SupervisedDatasetProcessor` makes them for the
//! `qwen2_vl` template (papers_spec §1.3, §2.3): the conversation rendered with the checkpoint's chat template
//! (no generation prompt), each `<image>` placeholder of a sharegpt message replaced by an image item
//! (`<|vision_start|><|image_pad|>…<|vision_end|>`, the pad expanded to the image's token count), labels on
//! assistant tokens only ([`crate::sft::labels`], `TrainedEnd::ImEndAndNewline`), then the cutoff.
//!
//! **Cutoff rule** (LLaMA-Factory `cutoff_len` = [`PrepareOptions::max_length`]): the sequence is split into
//! (source, target) pairs, a target being one trained assistant span and its source every untrained token
//! before it (system, user turn, `<|im_start|>assistant\n`). Pairs are kept in order while the running length
//! is below the cutoff, each cut by LLaMA-Factory's `infer_seqlen(source_len, target_len, cutoff − total)`
//! ([`infer_seqlen`], same f64 arithmetic) to a prefix of its source and a prefix of its target; an example
//! that fits is kept whole. Tokens that do not fit are removed from the *end of each pair's source and
//! target* (so a long prompt loses its assistant header before the answer is cut), not from the end of the
//! sequence; [`SftExample::truncated`] says whether anything was cut. An example whose cut removes any
//! `<|image_pad|>` token cannot be trained (the image features would not match the placeholders):
//! [`ImageCut::Error`] makes that an error, [`ImageCut::Drop`] drops the example and counts it in
//! [`PrepareStats::dropped_image_cut`].
//!
//! Images are not decoded here: the grid of each image comes from its header dimensions and the image
//! processor's `smart_resize` ([`ImageProcessorConfig::target_size`]); pixels are decoded and preprocessed when
//! a batch is built (the trainer checks the grid again), so preparing 200K examples holds no pixels in memory.
//!
//! Deviations: records must be `[system] (user assistant)+`, anything else is an error (LLaMA-Factory drops
//! invalid records with a warning); an example with no trained token left after the cutoff is an error;
//! [`Modality::TextOnly`] rejects a record with images (an error naming it) instead of ignoring them. Whole-string
//! tokenization instead of LLaMA-Factory's per-piece tokenization (see [`crate::sft::labels`]).
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail, ensure};

use crate::data::sharegpt::{SftRecord, resolve};
use crate::processor::chat::{ChatProcessor, Content, ContentPart, Message, RenderOptions};
use crate::processor::image::ImageProcessorConfig;
use crate::repro::manifest::train::{Modality, SftSettings};
use crate::sft::labels::{ChatMarkers, IGNORE_INDEX, TrainedEnd, assistant_labels};

/// The image placeholder of LLaMA-Factory's sharegpt messages.
pub const IMAGE_PLACEHOLDER: &str = "<image>";

/// What to do with an example whose cutoff would remove image tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageCut {
    /// Fail, naming the record (the default: no silently lost samples).
    Error,
    /// Leave the example out and count it.
    Drop,
}

/// How records become examples.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PrepareOptions {
    /// LLaMA-Factory `cutoff_len`.
    pub max_length: usize,
    pub modality: Modality,
    pub image_cut: ImageCut,
}

impl PrepareOptions {
    /// `max_length` and `modality` of the stage settings, [`ImageCut::Error`].
    pub fn from_settings(s: &SftSettings) -> Self {
        Self { max_length: s.max_length as usize, modality: s.modality, image_cut: ImageCut::Error }
    }
}

/// One tokenized, labelled, cut conversation.
#[derive(Debug, Clone, PartialEq)]
pub struct SftExample {
    /// Index of the record it came from.
    pub record: usize,
    pub input_ids: Vec<i64>,
    /// Aligned with `input_ids`; [`IGNORE_INDEX`] where not trained.
    pub labels: Vec<i64>,
    /// Resolved image files, in placeholder order.
    pub images: Vec<PathBuf>,
    /// `[t, h, w]` (patches) of each image, as the image processor will produce it.
    pub grids: Vec<[i64; 3]>,
    /// Whether the cutoff removed tokens.
    pub truncated: bool,
}

impl SftExample {
    /// Next-token targets: `labels[1..] != -100` (what [`crate::sft::loss::count_targets`] counts).
    pub fn targets(&self) -> i64 {
        self.labels.iter().skip(1).filter(|&&l| l != IGNORE_INDEX).count() as i64
    }
}

/// Counts of one preparation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PrepareStats {
    pub records: usize,
    pub examples: usize,
    /// Examples shortened by the cutoff (kept).
    pub truncated: usize,
    /// Examples left out because the cutoff would cut image tokens ([`ImageCut::Drop`]).
    pub dropped_image_cut: usize,
}

/// Examples and what the trainer needs to batch them.
#[derive(Debug, Clone)]
pub struct SftData {
    pub examples: Vec<SftExample>,
    pub stats: PrepareStats,
    /// Token id written into padding (never attended, never a target).
    pub pad_id: i64,
    /// The image processor used for the grids (and for the pixels at batch time).
    pub image_cfg: ImageProcessorConfig,
}

/// LLaMA-Factory `infer_seqlen`: the kept `(source, target)` lengths of a pair under `cutoff` remaining tokens.
pub fn infer_seqlen(source: usize, target: usize, cutoff: usize) -> (usize, usize) {
    let max_target = if target * 2 < cutoff {
        cutoff
    } else if source * 2 < cutoff {
        cutoff - source
    } else {
        // Python: int(cutoff_len * (target_len / (source_len + target_len))), in f64.
        (cutoff as f64 * (target as f64 / (source + target) as f64)) as usize
    };
    let new_target = max_target.min(target);
    let new_source = cutoff.saturating_sub(new_target).min(source);
    (new_source, new_target)
}

/// Tokenizes, labels and cuts `records`; image paths are resolved against `media_dir` (the dataset folder).
pub fn prepare(
    processor: &ChatProcessor,
    image_cfg: &ImageProcessorConfig,
    records: &[SftRecord],
    media_dir: &Path,
    opts: &PrepareOptions,
) -> Result<SftData> {
    ensure!(opts.max_length >= 2, "max_length must be >= 2 tokens (one input and one target), got {}", opts.max_length);
    ensure!(
        processor.merge_size == image_cfg.merge_size,
        "the chat processor's merge_size ({}) differs from the image processor's ({}); load both from the same \
         checkpoint folder",
        processor.merge_size,
        image_cfg.merge_size
    );
    let markers = ChatMarkers::from_tokenizer(&processor.tokenizer)?;
    let image_pad = i64::from(processor.tokenizer.special().image_pad);
    let mut stats = PrepareStats { records: records.len(), ..PrepareStats::default() };
    let mut examples = Vec::with_capacity(records.len());
    for (i, rec) in records.iter().enumerate() {
        let ex = encode_record(processor, image_cfg, &markers, image_pad, rec, i, media_dir, opts)
            .with_context(|| format!("SFT record {i}"))?;
        match ex {
            Some(ex) => {
                stats.truncated += usize::from(ex.truncated);
                examples.push(ex);
            }
            None => stats.dropped_image_cut += 1,
        }
    }
    stats.examples = examples.len();
    ensure!(!examples.is_empty(), "no SFT example left out of {} records", records.len());
    Ok(SftData { examples, stats, pad_id: i64::from(processor.pad_id()), image_cfg: image_cfg.clone() })
}

#[allow(clippy::too_many_arguments)]
fn encode_record(
    processor: &ChatProcessor,
    image_cfg: &ImageProcessorConfig,
    markers: &ChatMarkers,
    image_pad: i64,
    rec: &SftRecord,
    index: usize,
    media_dir: &Path,
    opts: &PrepareOptions,
) -> Result<Option<SftExample>> {
    check_roles(rec)?;
    if opts.modality == Modality::TextOnly {
        ensure!(
            rec.images.is_empty(),
            "has {} image(s) but the stage's modality is text_only; remove the images (and their <image> \
             placeholders) from the data or set modality = \"multimodal\"",
            rec.images.len()
        );
    }
    let messages = chat_messages(rec)?;
    let images: Vec<PathBuf> = rec.images.iter().map(|p| resolve(media_dir, p)).collect();
    let grids = images.iter().map(|p| image_grid(image_cfg, p)).collect::<Result<Vec<_>>>()?;
    let batch = processor.encode(&[messages], &grids, RenderOptions::default())?;
    let ids = batch.input_ids.into_iter().next().expect("one conversation encoded");
    let labels = assistant_labels(&ids, markers, TrainedEnd::ImEndAndNewline)?;
    let (kept_ids, kept_labels) = cut(&ids, &labels, opts.max_length)?;
    let count_pads = |v: &[i64]| v.iter().filter(|&&t| t == image_pad).count();
    let (all_pads, kept_pads) = (count_pads(&ids), count_pads(&kept_ids));
    if kept_pads != all_pads {
        match opts.image_cut {
            ImageCut::Drop => return Ok(None),
            ImageCut::Error => bail!(
                "the cutoff to max_length {} would cut its image tokens (the example has {} tokens, {kept_pads} of \
                 its {all_pads} <|image_pad|> tokens would be kept); raise max_length, lower the image processor's \
                 max_pixels, or prepare with ImageCut::Drop",
                opts.max_length,
                ids.len()
            ),
        }
    }
    let ex = SftExample {
        record: index,
        truncated: kept_ids.len() < ids.len(),
        input_ids: kept_ids,
        labels: kept_labels,
        images,
        grids,
    };
    ensure!(
        ex.targets() > 0,
        "no assistant token is left to train on after the cutoff to max_length {} (the example has {} tokens); \
         raise max_length",
        opts.max_length,
        ids.len()
    );
    Ok(Some(ex))
}

/// `[system] (user assistant)+`.
fn check_roles(rec: &SftRecord) -> Result<()> {
    let roles: Vec<&str> = rec.messages.iter().map(|m| m.role.as_str()).collect();
    let turns = if roles.first() == Some(&"system") { &roles[1..] } else { &roles[..] };
    let ok = !turns.is_empty()
        && turns.len().is_multiple_of(2)
        && turns.chunks(2).all(|pair| pair[0] == "user" && pair[1] == "assistant");
    ensure!(
        ok,
        "roles {roles:?} are not [system] followed by user/assistant pairs ending with an assistant turn, as \
         LLaMA-Factory's sharegpt format requires"
    );
    Ok(())
}

/// sharegpt messages as chat messages: `<image>` placeholders become image items, in order.
pub fn chat_messages(rec: &SftRecord) -> Result<Vec<Message>> {
    let placeholders: usize = rec.messages.iter().map(|m| m.content.matches(IMAGE_PLACEHOLDER).count()).sum();
    ensure!(
        placeholders == rec.images.len(),
        "the messages hold {placeholders} {IMAGE_PLACEHOLDER} placeholder(s) but the record lists {} image(s); \
         write one {IMAGE_PLACEHOLDER} per image",
        rec.images.len()
    );
    Ok(rec
        .messages
        .iter()
        .map(|m| {
            if !m.content.contains(IMAGE_PLACEHOLDER) {
                return Message::new(&m.role, Content::Text(m.content.clone()));
            }
            let mut parts = Vec::new();
            for (k, piece) in m.content.split(IMAGE_PLACEHOLDER).enumerate() {
                if k > 0 {
                    parts.push(ContentPart::image(None));
                }
                if !piece.is_empty() {
                    parts.push(ContentPart::text(piece));
                }
            }
            Message::with_parts(&m.role, parts)
        })
        .collect())
}

/// `[1, h / patch, w / patch]` of an image file, from its header and `smart_resize`.
pub fn image_grid(cfg: &ImageProcessorConfig, path: &Path) -> Result<[i64; 3]> {
    let (width, height) = ::image::ImageReader::open(path)
        .with_context(|| format!("opening image {}: check the path and the dataset folder", path.display()))?
        .with_guessed_format()
        .with_context(|| format!("reading image {}", path.display()))?
        .into_dimensions()
        .with_context(|| format!("reading the size of image {} (not a PNG/JPEG file?)", path.display()))?;
    let (h, w) = cfg.target_size(height, width).with_context(|| format!("resizing image {}", path.display()))?;
    let p = cfg.patch_size as i64;
    Ok([1, i64::from(h) / p, i64::from(w) / p])
}

/// LLaMA-Factory's pairwise cutoff (module doc) of one labelled sequence.
fn cut(ids: &[i64], labels: &[i64], cutoff: usize) -> Result<(Vec<i64>, Vec<i64>)> {
    // (source range, target range) pairs: a target is a maximal run of trained labels.
    let mut pairs = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while i < ids.len() {
        if labels[i] == IGNORE_INDEX {
            i += 1;
            continue;
        }
        let t0 = i;
        while i < ids.len() && labels[i] != IGNORE_INDEX {
            i += 1;
        }
        pairs.push((start..t0, t0..i));
        start = i;
    }
    ensure!(
        start == ids.len(),
        "the rendered conversation has {} untrained tokens after its last assistant turn; the chat template must \
         end a conversation with the assistant's <|im_end|>\\n",
        ids.len() - start
    );
    let (mut out_ids, mut out_labels) = (Vec::new(), Vec::new());
    let mut total = 0;
    for (src, tgt) in pairs {
        if total >= cutoff {
            break;
        }
        let (s, t) = infer_seqlen(src.len(), tgt.len(), cutoff - total);
        for r in [src.start..src.start + s, tgt.start..tgt.start + t] {
            out_ids.extend_from_slice(&ids[r.clone()]);
            out_labels.extend_from_slice(&labels[r]);
        }
        total += s + t;
    }
    Ok((out_ids, out_labels))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::sharegpt::Message as Turn;

    #[test]
    fn infer_seqlen_follows_llama_factory() {
        // short target: the source is cut.
        assert_eq!(infer_seqlen(100, 10, 50), (40, 10));
        // short source, long target: the target is cut.
        assert_eq!(infer_seqlen(10, 100, 50), (10, 40));
        // both long: proportional, int() of the f64 product.
        assert_eq!(infer_seqlen(60, 40, 50), (30, 20));
        assert_eq!(infer_seqlen(70, 30, 10), (7, 3));
        // fits: kept whole.
        assert_eq!(infer_seqlen(3, 4, 100), (3, 4));
        // exactly filling, both halves >= cutoff/2: kept whole.
        assert_eq!(infer_seqlen(4, 4, 8), (4, 4));
        assert_eq!(infer_seqlen(0, 5, 3), (0, 3));
    }

    #[test]
    fn cut_keeps_pair_prefixes_in_order() {
        let i = IGNORE_INDEX;
        // source 3, target 2, source 2, target 3.
        let ids = [1, 2, 3, 10, 11, 4, 5, 12, 13, 14];
        let labels = [i, i, i, 10, 11, i, i, 12, 13, 14];
        let (a, b) = cut(&ids, &labels, 100).unwrap();
        assert_eq!((a.as_slice(), b.as_slice()), (&ids[..], &labels[..]));
        // cutoff 7: pair 1 whole (5), pair 2 gets 2 remaining: infer_seqlen(2, 3, 2) -> target int(2*0.6)=1, source 1.
        let (a, b) = cut(&ids, &labels, 7).unwrap();
        assert_eq!(a, [1, 2, 3, 10, 11, 4, 12]);
        assert_eq!(b, [i, i, i, 10, 11, i, 12]);
        // trailing untrained tokens are an error.
        assert!(cut(&[1, 10, 2], &[i, 10, i], 10).is_err());
    }

    #[test]
    fn placeholders_become_image_items_and_roles_are_checked() {
        let turn = |role: &str, content: &str| Turn { role: role.into(), content: content.into() };
        let rec = SftRecord {
            messages: vec![turn("user", "<image>a<image>"), turn("assistant", "b")],
            images: vec!["x.png".into(), "y.png".into()],
        };
        let msgs = chat_messages(&rec).unwrap();
        assert_eq!(
            msgs[0],
            Message::with_parts(
                "user",
                vec![ContentPart::image(None), ContentPart::text("a"), ContentPart::image(None)]
            )
        );
        assert_eq!(msgs[1], Message::assistant("b"));
        check_roles(&rec).unwrap();
        let mismatch = SftRecord { images: vec![], ..rec.clone() };
        assert!(chat_messages(&mismatch).unwrap_err().to_string().contains("placeholder"));
        let no_answer = SftRecord { messages: vec![turn("system", "s"), turn("user", "q")], images: vec![] };
        assert!(check_roles(&no_answer).unwrap_err().to_string().contains("roles"));
        let with_system = SftRecord {
            messages: vec![turn("system", "s"), turn("user", "q"), turn("assistant", "a")],
            images: vec![],
        };
        check_roles(&with_system).unwrap();
    }
}
