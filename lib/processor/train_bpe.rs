//! Training a small Qwen2-style byte-level BPE tokenizer on a text corpus (issue 6: the tiny model's
//! tokenizer), with the `tokenizers` crate (the Rust core of HF `tokenizers`), written as the two files a
//! Qwen2.5-VL checkpoint ships, so that [`super::tokenizer::QwenTokenizer::from_dir`] and
//! [`super::chat::ChatProcessor::from_dir`] load it unchanged:
//!
//! - `tokenizer.json`: the pipeline of Qwen2 / Qwen2.5-VL's file: NFC normalizer; pre-tokenizer `Sequence` of
//!   `Split` on Qwen2's regex ([`QWEN2_PATTERN`], `Isolated`, not inverted) and `ByteLevel` (no prefix space, no
//!   offset trimming, no regex); `ByteLevel` post-processor and decoder with the same options; a `BPE` model
//!   without unk token, dropout or byte fallback, empty `continuing_subword_prefix` / `end_of_word_suffix`. The
//!   BPE starts from the 256-symbol byte-level alphabet (every byte is a token, so any text round-trips) and
//!   learns merges up to [`BpeSpec::vocab_size`]; then Qwen2.5-VL's 22 added tokens follow the learned vocabulary
//!   in Qwen's order ([`SPECIAL_TOKENS`] special, [`NON_SPECIAL_TOKENS`] not), as
//!   `tests/fixtures/qwen2_5_vl_chat.py` builds the fixture tokenizer with Python `tokenizers`. Their ids are
//!   therefore not Qwen's 151643..151664: everything downstream looks them up by name.
//! - `tokenizer_config.json`: the keys of Qwen2.5-VL-7B-Instruct's file (`added_tokens_decoder`,
//!   `additional_special_tokens`, no bos, eos `<|im_end|>`, pad `<|endoftext|>`, `Qwen2Tokenizer`,
//!   `model_max_length` 131072) with the real chat template [`QWEN2_5_VL_CHAT_TEMPLATE`].
//!
//! Determinism: the trainer counts words in hash maps but picks merges by (count, then pair ids) and the files
//! serialize the vocabulary by id, so the same corpus and spec give byte-identical files (tested).
//!
//! Deviation: the tokenizers crate's BPE trainer is used as is, so the learned merges are those HF `tokenizers`
//! would learn from the same corpus, not Qwen's (which were trained on Qwen's corpus).
use std::collections::{BTreeMap, HashSet};
use std::path::Path;

use anyhow::{Result, anyhow, ensure};
use serde::Serialize;
use tokenizers::decoders::byte_level::ByteLevel as ByteLevelDecoder;
use tokenizers::models::bpe::{BPE, BpeTrainerBuilder};
use tokenizers::models::{ModelWrapper, TrainerWrapper};
use tokenizers::normalizers::unicode::NFC;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::pre_tokenizers::split::{Split, SplitPattern};
use tokenizers::{AddedToken, PreTokenizerWrapper, SplitDelimiterBehavior, Tokenizer};

use super::chat::TOKENIZER_CONFIG_FILE;
use super::tokenizer::{QwenTokenizer, TOKENIZER_FILE};

/// Qwen2's pre-tokenizer split pattern, verbatim from Qwen2 / Qwen2.5(-VL) `tokenizer.json`.
pub const QWEN2_PATTERN: &str =
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

/// Qwen2.5-VL's special added tokens in id order (151643..151656 in Qwen).
pub const SPECIAL_TOKENS: [&str; 14] = [
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|object_ref_start|>",
    "<|object_ref_end|>",
    "<|box_start|>",
    "<|box_end|>",
    "<|quad_start|>",
    "<|quad_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|vision_pad|>",
    "<|image_pad|>",
    "<|video_pad|>",
];

/// Qwen2.5-VL's non-special added tokens, after the special ones (151657..151664 in Qwen).
pub const NON_SPECIAL_TOKENS: [&str; 8] = [
    "<tool_call>",
    "</tool_call>",
    "<|fim_prefix|>",
    "<|fim_middle|>",
    "<|fim_suffix|>",
    "<|fim_pad|>",
    "<|repo_name|>",
    "<|file_sep|>",
];

/// The chat template of Qwen/Qwen2.5-VL-7B-Instruct (`chat_template.json` and `tokenizer_config.json`; see
/// `tests/fixtures/qwen2_5_vl_chat/README.md` for where the text was checked). A unit test keeps it equal to
/// the fixture's `chat_template.json`.
pub const QWEN2_5_VL_CHAT_TEMPLATE: &str = concat!(
    "{% set image_count = namespace(value=0) %}{% set video_count = namespace(value=0) %}{% for message in ",
    "messages %}{% if loop.first and message['role'] != 'system' %}<|im_start|>system\nYou are a helpful ",
    "assistant.<|im_end|>\n{% endif %}<|im_start|>{{ message['role'] }}\n{% if message['content'] is string ",
    "%}{{ message['content'] }}<|im_end|>\n{% else %}{% for content in message['content'] %}{% if ",
    "content['type'] == 'image' or 'image' in content or 'image_url' in content %}{% set image_count.value = ",
    "image_count.value + 1 %}{% if add_vision_id %}Picture {{ image_count.value }}: {% endif ",
    "%}<|vision_start|><|image_pad|><|vision_end|>{% elif content['type'] == 'video' or 'video' in content ",
    "%}{% set video_count.value = video_count.value + 1 %}{% if add_vision_id %}Video {{ video_count.value ",
    "}}: {% endif %}<|vision_start|><|video_pad|><|vision_end|>{% elif 'text' in content %}{{ content['text'] ",
    "}}{% endif %}{% endfor %}<|im_end|>\n{% endif %}{% endfor %}{% if add_generation_prompt ",
    "%}<|im_start|>assistant\n{% endif %}"
);

/// The plain text the chat template adds around messages (role names, the default system prompt, vision ids),
/// to put in a corpus so that the BPE learns it too.
pub const CHAT_TEMPLATE_TEXT: [&str; 5] =
    ["system\nYou are a helpful assistant.", "user\n", "assistant\n", "Picture 1: ", "Video 1: "];

/// What to train.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct BpeSpec {
    /// Target size of the learned vocabulary (256 byte symbols + merges), added tokens not included. Training
    /// stops earlier when no pair is left to merge.
    pub vocab_size: usize,
    /// A pair must occur this often to be merged.
    pub min_frequency: u64,
}

impl Default for BpeSpec {
    fn default() -> Self {
        Self { vocab_size: 1024, min_frequency: 2 }
    }
}

/// A trained tokenizer as file contents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrainedTokenizer {
    /// `tokenizer.json` (pretty-printed, as `Tokenizer.save` writes it).
    pub tokenizer_json: String,
    /// `tokenizer_config.json`.
    pub tokenizer_config_json: String,
    /// Learned vocabulary (bytes + merges), without the added tokens.
    pub learned_vocab: usize,
    /// Learned vocabulary plus the 22 added tokens (`len(tokenizer)`).
    pub vocab_size: usize,
}

impl TrainedTokenizer {
    /// Writes `tokenizer.json` and `tokenizer_config.json` into `dir` (each atomically).
    pub fn write(&self, dir: &Path) -> Result<()> {
        crate::io::write_atomic(&dir.join(TOKENIZER_FILE), self.tokenizer_json.as_bytes())?;
        crate::io::write_atomic(&dir.join(TOKENIZER_CONFIG_FILE), self.tokenizer_config_json.as_bytes())
    }

    /// The tokenizer, parsed back from [`Self::tokenizer_json`].
    pub fn tokenizer(&self) -> Result<QwenTokenizer> {
        QwenTokenizer::from_bytes(self.tokenizer_json.as_bytes(), "the trained tokenizer.json")
    }
}

/// Trains the byte-level BPE on `corpus` (one string per document) and builds both files.
pub fn train_bpe<S: AsRef<str> + Send + Sync>(corpus: &[S], spec: &BpeSpec) -> Result<TrainedTokenizer> {
    ensure!(!corpus.is_empty(), "the tokenizer corpus is empty: give at least one text");
    ensure!(
        spec.vocab_size >= 256,
        "BPE vocab_size {} is below the 256 byte symbols of the byte-level alphabet",
        spec.vocab_size
    );
    fn err(what: &'static str) -> impl Fn(tokenizers::Error) -> anyhow::Error {
        move |e| anyhow!("training the BPE tokenizer: {what}: {e}")
    }
    let byte_level = ByteLevel::new(false, false, false);
    let split = Split::new(SplitPattern::Regex(QWEN2_PATTERN.into()), SplitDelimiterBehavior::Isolated, false)
        .map_err(err("compiling Qwen2's pre-tokenizer regex"))?;
    let mut tok = Tokenizer::new(ModelWrapper::BPE(BPE::default()));
    tok.with_normalizer(Some(NFC)).map_err(err("setting the normalizer"))?;
    tok.with_pre_tokenizer(Some(PreTokenizerWrapper::Sequence(Sequence::new(vec![
        PreTokenizerWrapper::Split(split),
        PreTokenizerWrapper::ByteLevel(byte_level),
    ]))));
    tok.with_post_processor(Some(byte_level));
    tok.with_decoder(Some(ByteLevelDecoder::new(false, false, false)));
    let alphabet: HashSet<char> = ByteLevel::alphabet().into_iter().collect();
    let mut trainer = TrainerWrapper::BpeTrainer(
        BpeTrainerBuilder::new()
            .vocab_size(spec.vocab_size)
            .min_frequency(spec.min_frequency)
            .show_progress(false)
            .initial_alphabet(alphabet)
            .continuing_subword_prefix(String::new())
            .end_of_word_suffix(String::new())
            .build(),
    );
    tok.train(&mut trainer, corpus.iter().map(|s| s.as_ref())).map_err(err("running the BPE trainer"))?;
    let learned_vocab = tok.get_vocab_size(false);
    let special: Vec<AddedToken> =
        SPECIAL_TOKENS.iter().map(|t| AddedToken::from(*t, true).normalized(false)).collect();
    tok.add_special_tokens(special).map_err(err("adding the special tokens"))?;
    let plain: Vec<AddedToken> =
        NON_SPECIAL_TOKENS.iter().map(|t| AddedToken::from(*t, false).normalized(false)).collect();
    tok.add_tokens(plain).map_err(err("adding the non-special tokens"))?;
    let vocab_size = tok.get_vocab_size(true);
    ensure!(
        vocab_size == learned_vocab + SPECIAL_TOKENS.len() + NON_SPECIAL_TOKENS.len(),
        "the corpus already produced an added token as a learned token (vocabulary {learned_vocab} + 22 added \
         gave {vocab_size}); remove special-token strings from the corpus"
    );
    let tokenizer_json = tok.to_string(true).map_err(err("serializing tokenizer.json"))?;
    let tokenizer_config_json = tokenizer_config(&tok)?;
    Ok(TrainedTokenizer { tokenizer_json, tokenizer_config_json, learned_vocab, vocab_size })
}

/// One entry of `added_tokens_decoder`.
#[derive(Serialize)]
struct AddedTokenEntry {
    content: &'static str,
    lstrip: bool,
    normalized: bool,
    rstrip: bool,
    single_word: bool,
    special: bool,
}

/// `tokenizer_config.json`, keys in the published file's (alphabetical) order.
#[derive(Serialize)]
struct TokenizerConfig {
    add_prefix_space: bool,
    added_tokens_decoder: BTreeMap<u32, AddedTokenEntry>,
    additional_special_tokens: Vec<&'static str>,
    bos_token: Option<&'static str>,
    chat_template: &'static str,
    clean_up_tokenization_spaces: bool,
    eos_token: &'static str,
    errors: &'static str,
    model_max_length: u64,
    pad_token: &'static str,
    split_special_tokens: bool,
    tokenizer_class: &'static str,
    unk_token: Option<&'static str>,
}

fn tokenizer_config(tok: &Tokenizer) -> Result<String> {
    let mut decoder = BTreeMap::new();
    for (name, special) in
        SPECIAL_TOKENS.iter().map(|t| (*t, true)).chain(NON_SPECIAL_TOKENS.iter().map(|t| (*t, false)))
    {
        let id = tok.token_to_id(name).ok_or_else(|| anyhow!("the trained tokenizer lost the added token {name}"))?;
        let entry = AddedTokenEntry {
            content: name,
            lstrip: false,
            normalized: false,
            rstrip: false,
            single_word: false,
            special,
        };
        decoder.insert(id, entry);
    }
    let cfg = TokenizerConfig {
        add_prefix_space: false,
        added_tokens_decoder: decoder,
        additional_special_tokens: SPECIAL_TOKENS[1..].to_vec(),
        bos_token: None,
        chat_template: QWEN2_5_VL_CHAT_TEMPLATE,
        clean_up_tokenization_spaces: false,
        eos_token: "<|im_end|>",
        errors: "replace",
        model_max_length: 131072,
        pad_token: "<|endoftext|>",
        split_special_tokens: false,
        tokenizer_class: "Qwen2Tokenizer",
        unk_token: None,
    };
    Ok(serde_json::to_string_pretty(&cfg)? + "\n")
}

#[cfg(test)]
mod tests;
