//! The text tokenizer of Qwen2 / Qwen2.5-VL checkpoints: `tokenizer.json` loaded with the `tokenizers` crate
//! (the Rust core of HF's Python `tokenizers`, which transformers' `Qwen2TokenizerFast` / transformers 5's
//! `Qwen2Tokenizer` wrap), so encoding and decoding are those of transformers by construction.
//!
//! - The regex engine is Oniguruma (`onig` feature), the engine the Python wheel is built with. Qwen2's
//!   pre-tokenizer pattern uses a look-ahead (`\s+(?!\S)`) and Unicode classes (`\p{L}`, `\p{N}`, `\s`), where
//!   a different engine (`fancy-regex` on top of `regex`) could split differently on rare whitespace
//!   characters; with the same engine the splits are identical. The cost is one small C library (onig_sys).
//!   `tests/chat_parity.rs` checks ids against transformers on text with contractions, digits, CJK, emoji,
//!   NBSP/ideographic/zero-width spaces, `\r\n` runs and combining marks.
//! - Special tokens are looked up by name in the file ([`SpecialTokens`]), never hard-coded.
//! - `encode` applies the file's post-processor when `add_special_tokens` is true, as transformers'
//!   `tokenizer(text)` does (Qwen2's post-processor adds nothing).
//! - [`QwenTokenizer::decode`] is transformers' `decode` with `clean_up_tokenization_spaces=false` (Qwen's
//!   setting): the `tokenizers` decoder output unchanged.
//! - Streaming decode ([`StreamDecoder`], `tokenizers`' `DecodeStream`) yields text only once it is valid
//!   UTF-8, so the concatenated chunks equal the full decode.
use std::path::Path;

use anyhow::{Context, Result, anyhow};
use tokenizers::{
    DecodeStream, DecoderWrapper, ModelWrapper, NormalizerWrapper, PostProcessorWrapper, PreTokenizerWrapper, Tokenizer,
};

/// The file name of a checkpoint's tokenizer.
pub const TOKENIZER_FILE: &str = "tokenizer.json";

/// Ids of the special tokens r1lab uses, looked up by name in `tokenizer.json`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpecialTokens {
    /// `<|im_start|>`: opens a chat turn.
    pub im_start: u32,
    /// `<|im_end|>`: closes a chat turn; the chat models' eos.
    pub im_end: u32,
    /// `<|endoftext|>`: the pad token (and the base models' eos).
    pub endoftext: u32,
    /// `<|vision_start|>` / `<|vision_end|>`: bracket an image or video.
    pub vision_start: u32,
    pub vision_end: u32,
    /// `<|image_pad|>` / `<|video_pad|>`: one per merged vision patch.
    pub image_pad: u32,
    pub video_pad: u32,
}

/// A `tokenizer.json` tokenizer with Qwen's special tokens resolved.
#[derive(Clone)]
pub struct QwenTokenizer {
    inner: Tokenizer,
    origin: String,
    special: SpecialTokens,
}

impl std::fmt::Debug for QwenTokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QwenTokenizer")
            .field("origin", &self.origin)
            .field("vocab_size", &self.vocab_size())
            .field("special", &self.special)
            .finish()
    }
}

impl QwenTokenizer {
    /// Loads `dir/tokenizer.json`.
    pub fn from_dir(dir: &Path) -> Result<Self> {
        Self::from_file(&dir.join(TOKENIZER_FILE))
    }

    /// Loads a `tokenizer.json` file.
    pub fn from_file(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).with_context(|| {
            format!(
                "cannot read the tokenizer file {}: it must be the checkpoint's {TOKENIZER_FILE} (download the \
                 model's files or pass the folder that holds them)",
                path.display()
            )
        })?;
        Self::from_bytes(&bytes, &path.display().to_string())
    }

    /// Parses the contents of a `tokenizer.json`; `origin` names it in errors.
    pub fn from_bytes(bytes: &[u8], origin: &str) -> Result<Self> {
        let inner = Tokenizer::from_bytes(bytes).map_err(|e| {
            anyhow!(
                "{origin} is not a valid tokenizer.json ({e}); re-download it from the checkpoint (a truncated \
                 download or a Git LFS pointer file gives this error)"
            )
        })?;
        let find = |name: &str| -> Result<u32> {
            inner
                .token_to_id(name)
                .ok_or_else(|| anyhow!("{origin} has no token {name}: it is not a Qwen2 / Qwen2.5-VL tokenizer"))
        };
        let special = SpecialTokens {
            im_start: find("<|im_start|>")?,
            im_end: find("<|im_end|>")?,
            endoftext: find("<|endoftext|>")?,
            vision_start: find("<|vision_start|>")?,
            vision_end: find("<|vision_end|>")?,
            image_pad: find("<|image_pad|>")?,
            video_pad: find("<|video_pad|>")?,
        };
        Ok(Self { inner, origin: origin.to_string(), special })
    }

    /// Where the tokenizer was loaded from.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The special tokens, resolved by name.
    pub fn special(&self) -> &SpecialTokens {
        &self.special
    }

    /// The id of a token (vocabulary or added token) by its exact text.
    pub fn token_id(&self, token: &str) -> Result<u32> {
        self.inner.token_to_id(token).ok_or_else(|| anyhow!("{} has no token {token:?}", self.origin))
    }

    /// The text of a token id, `None` when out of range.
    pub fn id_to_token(&self, id: u32) -> Option<String> {
        self.inner.id_to_token(id)
    }

    /// Vocabulary size including added tokens (what transformers' `len(tokenizer)` gives).
    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    /// Token ids of `text`. `add_special_tokens` runs the file's post-processor, as `tokenizer(text)` does.
    pub fn encode(&self, text: &str, add_special_tokens: bool) -> Result<Vec<u32>> {
        let enc = self
            .inner
            .encode(text, add_special_tokens)
            .map_err(|e| anyhow!("tokenizing {} characters with {} failed: {e}", text.len(), self.origin))?;
        Ok(enc.get_ids().to_vec())
    }

    /// Text of `ids`, optionally dropping special tokens (`skip_special_tokens`).
    pub fn decode(&self, ids: &[u32], skip_special_tokens: bool) -> Result<String> {
        self.inner
            .decode(ids, skip_special_tokens)
            .map_err(|e| anyhow!("decoding {} ids with {} failed: {e}", ids.len(), self.origin))
    }

    /// A decoder that turns ids into text one id at a time (for printing while sampling).
    pub fn stream_decoder(&self, skip_special_tokens: bool) -> StreamDecoder<'_> {
        StreamDecoder { inner: self.inner.decode_stream(skip_special_tokens), origin: &self.origin }
    }

    /// The wrapped `tokenizers` tokenizer.
    pub fn inner(&self) -> &Tokenizer {
        &self.inner
    }
}

/// The concrete `tokenizers::DecodeStream` of a `tokenizer.json` tokenizer.
type InnerStream<'a> =
    DecodeStream<'a, ModelWrapper, NormalizerWrapper, PreTokenizerWrapper, PostProcessorWrapper, DecoderWrapper>;

/// Incremental decoding with `tokenizers`' `DecodeStream`: [`StreamDecoder::step`] returns the new text an id
/// completes, or `None` while the id ends inside a multi-byte character; the chunks concatenate to the full
/// [`QwenTokenizer::decode`].
pub struct StreamDecoder<'a> {
    inner: InnerStream<'a>,
    origin: &'a str,
}

impl StreamDecoder<'_> {
    /// Feeds one id; returns the text it completes, if any.
    pub fn step(&mut self, id: u32) -> Result<Option<String>> {
        self.inner.step(id).map_err(|e| anyhow!("streaming decode of id {id} with {} failed: {e}", self.origin))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture() -> QwenTokenizer {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/qwen2_5_vl_chat");
        QwenTokenizer::from_dir(&dir).unwrap()
    }

    #[test]
    fn special_tokens_are_found_by_name() {
        let tok = fixture();
        let s = tok.special();
        assert_eq!(tok.id_to_token(s.im_start).as_deref(), Some("<|im_start|>"));
        assert_eq!(tok.id_to_token(s.image_pad).as_deref(), Some("<|image_pad|>"));
        assert_eq!(tok.token_id("<|video_pad|>").unwrap(), s.video_pad);
        assert!(tok.token_id("<|no_such_token|>").is_err());
    }

    #[test]
    fn round_trip_and_streaming() {
        let tok = fixture();
        let text = "<|im_start|>user\nNaïve 数学 😀 x^2 - 5x + 6 = 0<|im_end|>\n";
        let ids = tok.encode(text, true).unwrap();
        assert_eq!(tok.decode(&ids, false).unwrap(), text);
        assert_eq!(tok.decode(&ids, true).unwrap(), "user\nNaïve 数学 😀 x^2 - 5x + 6 = 0\n");
        let mut stream = tok.stream_decoder(false);
        let mut streamed = String::new();
        for id in &ids {
            if let Some(piece) = stream.step(*id).unwrap() {
                streamed.push_str(&piece);
            }
        }
        assert_eq!(streamed, text);
    }

    #[test]
    fn missing_and_corrupt_files_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let err = QwenTokenizer::from_dir(dir.path()).unwrap_err();
        assert!(format!("{err:#}").contains("tokenizer.json"), "{err:#}");
        let path = dir.path().join(TOKENIZER_FILE);
        std::fs::write(&path, "version https://git-lfs.github.com/spec/v1\n").unwrap();
        let err = QwenTokenizer::from_file(&path).unwrap_err();
        assert!(format!("{err:#}").contains(&path.display().to_string()), "{err:#}");
        assert!(format!("{err:#}").contains("not a valid tokenizer.json"), "{err:#}");
    }

    #[test]
    fn a_tokenizer_without_qwen_tokens_is_refused() {
        let json = r#"{"version":"1.0","truncation":null,"padding":null,"added_tokens":[],"normalizer":null,
            "pre_tokenizer":null,"post_processor":null,"decoder":null,
            "model":{"type":"WordLevel","vocab":{"a":0},"unk_token":"a"}}"#;
        let err = QwenTokenizer::from_bytes(json.as_bytes(), "x/tokenizer.json").unwrap_err();
        assert!(err.to_string().contains("x/tokenizer.json has no token <|im_start|>"), "{err}");
    }
}
