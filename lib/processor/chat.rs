//! Chat prompts of Qwen2.5-VL exactly as transformers 5.17's `Qwen2_5_VLProcessor.apply_chat_template` makes
//! them: the checkpoint's own Jinja chat template rendered with minijinja, `<|image_pad|>` expanded to
//! `t*h*w / merge_size^2` copies per image, then tokenized, with left padding for batches.
//!
//! - **Which template** ([`ChatTemplate::from_dir`]): the processor's, in transformers' order: the
//!   `chat_template` key of `processor_config.json`, else `chat_template.json` (the legacy file that
//!   Qwen2.5-VL checkpoints ship), else `chat_template.jinja`; a checkpoint with none of these falls back to the
//!   tokenizer's (`chat_template` in `tokenizer_config.json`, the template named `default` if it is a list).
//! - **Environment** as transformers' `_compile_jinja_template`: `trim_blocks`, `lstrip_blocks`, no
//!   auto-escaping, a trailing newline of the template dropped, loop controls, `raise_exception(msg)`, and
//!   `tojson` as Python's `json.dumps(..., ensure_ascii=False)` ([`tojson`]). Python string/dict/list methods
//!   (`.strip()`, `.items()`, `.startswith()`, ...) come from `minijinja_contrib::pycompat`; `{{ ... }}` prints
//!   values as Python's `str()` (`True`, `None`, `['a']`; [`pystr`]) where minijinja would print `true`...
//! - **Context**: `messages`, `add_generation_prompt`, `add_vision_id` when set, and the special token strings
//!   of `tokenizer_config.json` (`bos_token`, `eos_token`, `pad_token`, `unk_token`) as transformers passes
//!   `tokenizer.special_tokens_map`.
//! - **Tokenizing** as the processor's `__call__`: the expanded prompt goes through the tokenizer with
//!   special tokens added, unless it starts with the bos token; batches are padded on the left with the pad
//!   token of `tokenizer_config.json` (`<|endoftext|>` for Qwen) and attention mask 0.
//!
//! Deliberate deviations: no videos (a video item is an error), no `tools`/`documents`, no
//! `continue_final_message` and no assistant-token masks; `strftime_now` raises an error instead of
//! printing the date (rendering stays deterministic); OpenAI-style `image_url` items are not rewritten into
//! `image` items (the Qwen template treats both the same). Undefined values follow minijinja's lenient
//! rules, which match Jinja2's default `Undefined` for printing, tests and `in`; the `string` filter and `~`
//! spell booleans and none as minijinja does (`true`, `none`), unlike Python.
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail, ensure};
use minijinja::syntax::SyntaxConfig;
use minijinja::value::{Kwargs, Serde, Value};
use minijinja::{AutoEscape, Environment, Error, ErrorKind};
use serde::{Deserialize, Serialize};
use tch::Tensor;

use super::image::{ImageProcessorConfig, expand_image_pads};
use super::tokenizer::QwenTokenizer;

pub mod pystr;
pub mod tojson;

pub const PROCESSOR_CONFIG_FILE: &str = "processor_config.json";
pub const CHAT_TEMPLATE_JSON_FILE: &str = "chat_template.json";
pub const CHAT_TEMPLATE_JINJA_FILE: &str = "chat_template.jinja";
pub const TOKENIZER_CONFIG_FILE: &str = "tokenizer_config.json";
pub const PREPROCESSOR_CONFIG_FILE: &str = "preprocessor_config.json";

/// One chat message. `content` is a plain string or a list of typed items, as in transformers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    pub role: String,
    pub content: Content,
}

/// A message's content: a string, or text and image items.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Content {
    Text(String),
    Parts(Vec<ContentPart>),
}

/// One content item: `{"type": "text", "text": ...}` or `{"type": "image", "image": ...}`; the image field
/// (a path or URL, optional) is for the caller, the template only needs the item's type.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
pub enum ContentPart {
    Text {
        text: String,
    },
    Image {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        image: Option<String>,
    },
}

impl Message {
    pub fn new(role: &str, content: Content) -> Self {
        Self { role: role.to_string(), content }
    }
    pub fn system(text: &str) -> Self {
        Self::new("system", Content::Text(text.to_string()))
    }
    pub fn user(text: &str) -> Self {
        Self::new("user", Content::Text(text.to_string()))
    }
    pub fn assistant(text: &str) -> Self {
        Self::new("assistant", Content::Text(text.to_string()))
    }
    /// A message with text and image items.
    pub fn with_parts(role: &str, parts: Vec<ContentPart>) -> Self {
        Self::new(role, Content::Parts(parts))
    }
    /// Number of image items.
    pub fn num_images(&self) -> usize {
        match &self.content {
            Content::Text(_) => 0,
            Content::Parts(parts) => parts.iter().filter(|p| matches!(p, ContentPart::Image { .. })).count(),
        }
    }
}

impl ContentPart {
    pub fn text(text: &str) -> Self {
        Self::Text { text: text.to_string() }
    }
    pub fn image(source: Option<&str>) -> Self {
        Self::Image { image: source.map(str::to_string) }
    }
}

/// Options of one render, as keyword arguments of `apply_chat_template`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RenderOptions {
    /// End with the header of an assistant turn (`<|im_start|>assistant\n`).
    pub add_generation_prompt: bool,
    /// Qwen-VL's `add_vision_id`: "Picture N: " before each image.
    pub add_vision_id: bool,
}

/// A compiled chat template with the special-token strings it may use.
pub struct ChatTemplate {
    env: Environment<'static>,
    origin: String,
    special_tokens: BTreeMap<String, String>,
}

impl std::fmt::Debug for ChatTemplate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChatTemplate").field("origin", &self.origin).finish()
    }
}

const TEMPLATE_NAME: &str = "chat_template";

impl ChatTemplate {
    /// Compiles `source`; `origin` names it in errors. No special tokens are known.
    pub fn new(source: &str, origin: &str) -> Result<Self> {
        let mut env = Environment::new();
        let syntax = SyntaxConfig::builder()
            .trim_blocks(true)
            .lstrip_blocks(true)
            .keep_trailing_newline(false)
            .build()
            .map_err(|e| anyhow!("minijinja syntax config: {e}"))?;
        env.set_syntax(syntax);
        env.set_auto_escape_callback(|_| AutoEscape::None);
        env.set_formatter(pystr::python_formatter);
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.add_function("raise_exception", raise_exception);
        env.add_function("strftime_now", strftime_now);
        env.add_filter("tojson", tojson::tojson);
        env.add_template_owned(TEMPLATE_NAME, source.to_string())
            .map_err(|e| anyhow!("the chat template from {origin} does not compile: {e:#}"))?;
        Ok(Self { env, origin: origin.to_string(), special_tokens: BTreeMap::new() })
    }

    /// The processor's chat template of a checkpoint folder (see the module docs for the order), with the
    /// special-token strings of its `tokenizer_config.json`.
    pub fn from_dir(dir: &Path) -> Result<Self> {
        let tokenizer_config = read_json_if_exists(&dir.join(TOKENIZER_CONFIG_FILE))?;
        let (source, origin) = find_template(dir, tokenizer_config.as_ref())?;
        let mut template = Self::new(&source, &origin)?;
        if let Some(cfg) = &tokenizer_config {
            template.special_tokens = special_token_strings(cfg);
        }
        Ok(template)
    }

    /// Where the template came from.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// Sets a special-token variable (`bos_token`, `eos_token`, ...) of the render context.
    pub fn set_special_token(&mut self, name: &str, value: &str) {
        self.special_tokens.insert(name.to_string(), value.to_string());
    }

    /// Renders one conversation.
    pub fn render(&self, messages: &[Message], opts: RenderOptions) -> Result<String> {
        let mut ctx: BTreeMap<String, Value> =
            self.special_tokens.iter().map(|(k, v)| (k.clone(), Value::from(v.as_str()))).collect();
        ctx.insert("messages".into(), Value::from(Serde(messages)));
        ctx.insert("add_generation_prompt".into(), Value::from(opts.add_generation_prompt));
        if opts.add_vision_id {
            ctx.insert("add_vision_id".into(), Value::from(true));
        }
        let template = self.env.get_template(TEMPLATE_NAME).expect("added in new()");
        template
            .render(Value::from(ctx))
            .map_err(|e| anyhow!("rendering the chat template from {}: {e:#}", self.origin))
    }
}

fn raise_exception(message: String) -> Result<Value, Error> {
    Err(Error::new(ErrorKind::InvalidOperation, message))
}

fn strftime_now(_format: String, _kwargs: Kwargs) -> Result<Value, Error> {
    Err(Error::new(
        ErrorKind::InvalidOperation,
        "strftime_now is not provided by r1lab (prompts must not depend on the clock); put the date in a message",
    ))
}

fn read_json_if_exists(path: &Path) -> Result<Option<serde_json::Value>> {
    if !path.exists() {
        return Ok(None);
    }
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let value = serde_json::from_str(&text)
        .with_context(|| format!("{} is not valid JSON; re-download it from the checkpoint", path.display()))?;
    Ok(Some(value))
}

/// transformers' order for the processor's template, then the tokenizer's as a fallback.
fn find_template(dir: &Path, tokenizer_config: Option<&serde_json::Value>) -> Result<(String, String)> {
    let key_of = |path: PathBuf, value: &serde_json::Value| -> Result<Option<(String, String)>> {
        match value.get("chat_template") {
            None | Some(serde_json::Value::Null) => Ok(None),
            Some(serde_json::Value::String(s)) => Ok(Some((s.clone(), path.display().to_string()))),
            Some(serde_json::Value::Array(list)) => {
                // Tokenizer configs may hold [{"name": ..., "template": ...}, ...].
                let default = list.iter().find(|t| t.get("name").and_then(|n| n.as_str()) == Some("default"));
                match default.and_then(|t| t.get("template")).and_then(|t| t.as_str()) {
                    Some(s) => Ok(Some((s.to_string(), format!("{} (template \"default\")", path.display())))),
                    None => bail!("{} has several chat templates but none named \"default\"", path.display()),
                }
            }
            Some(_) => bail!("the chat_template of {} is neither a string nor a list of templates", path.display()),
        }
    };
    let processor_config = dir.join(PROCESSOR_CONFIG_FILE);
    if let Some(cfg) = read_json_if_exists(&processor_config)?
        && let Some(found) = key_of(processor_config, &cfg)?
    {
        return Ok(found);
    }
    let legacy = dir.join(CHAT_TEMPLATE_JSON_FILE);
    if let Some(cfg) = read_json_if_exists(&legacy)? {
        return key_of(legacy.clone(), &cfg)?
            .ok_or_else(|| anyhow!("{} has no \"chat_template\" string", legacy.display()));
    }
    let jinja = dir.join(CHAT_TEMPLATE_JINJA_FILE);
    if jinja.exists() {
        let text = std::fs::read_to_string(&jinja).with_context(|| format!("cannot read {}", jinja.display()))?;
        return Ok((text, jinja.display().to_string()));
    }
    if let Some(cfg) = tokenizer_config
        && let Some(found) = key_of(dir.join(TOKENIZER_CONFIG_FILE), cfg)?
    {
        return Ok(found);
    }
    bail!(
        "{} has no chat template: looked for {PROCESSOR_CONFIG_FILE} (\"chat_template\"), {CHAT_TEMPLATE_JSON_FILE}, \
         {CHAT_TEMPLATE_JINJA_FILE} and {TOKENIZER_CONFIG_FILE} (\"chat_template\"); copy the checkpoint's files there",
        dir.display()
    )
}

/// `bos_token`, `eos_token`, `pad_token`, `unk_token` of a tokenizer config: strings or `{"content": ...}`.
fn special_token_strings(cfg: &serde_json::Value) -> BTreeMap<String, String> {
    ["bos_token", "eos_token", "pad_token", "unk_token"]
        .into_iter()
        .filter_map(|key| {
            let v = cfg.get(key)?;
            let s = v.as_str().or_else(|| v.get("content").and_then(|c| c.as_str()))?;
            Some((key.to_string(), s.to_string()))
        })
        .collect()
}

/// Rendered, expanded and tokenized conversations, left-padded to one length.
#[derive(Debug, Clone, PartialEq)]
pub struct ChatBatch {
    /// The rendered prompts before `<|image_pad|>` expansion.
    pub texts: Vec<String>,
    /// `(batch, len)` token ids; padding (on the left) is the pad token.
    pub input_ids: Vec<Vec<i64>>,
    /// `(batch, len)`: 1 for tokens, 0 for padding.
    pub attention_mask: Vec<Vec<i64>>,
}

impl ChatBatch {
    /// `input_ids` and `attention_mask` as `(batch, len)` int64 tensors on the CPU.
    pub fn to_tensors(&self) -> (Tensor, Tensor) {
        let rows = self.input_ids.len() as i64;
        let cols = self.input_ids.first().map_or(0, Vec::len) as i64;
        let flat = |m: &[Vec<i64>]| Tensor::from_slice(&m.concat()).view([rows, cols]);
        (flat(&self.input_ids), flat(&self.attention_mask))
    }
}

/// Tokenizer + chat template + `merge_size`: the text side of `Qwen2_5_VLProcessor`.
#[derive(Debug)]
pub struct ChatProcessor {
    pub tokenizer: QwenTokenizer,
    pub template: ChatTemplate,
    /// The vision merge size (`preprocessor_config.json`'s `merge_size`, 2 for Qwen2.5-VL).
    pub merge_size: usize,
    pad_id: u32,
    bos: Option<String>,
}

impl ChatProcessor {
    /// Builds from parts; the pad token is the template's `pad_token` if known, else `<|endoftext|>`.
    pub fn new(tokenizer: QwenTokenizer, template: ChatTemplate, merge_size: usize) -> Result<Self> {
        ensure!(merge_size > 0, "merge_size must be positive");
        let pad_id = match template.special_tokens.get("pad_token") {
            Some(pad) => {
                tokenizer.token_id(pad).with_context(|| format!("the pad token {pad} is not in the vocabulary"))?
            }
            None => tokenizer.special().endoftext,
        };
        let bos = template.special_tokens.get("bos_token").cloned();
        Ok(Self { tokenizer, template, merge_size, pad_id, bos })
    }

    /// Loads `tokenizer.json`, the chat template and `merge_size` (from `preprocessor_config.json` when present,
    /// else 2) of a checkpoint folder.
    pub fn from_dir(dir: &Path) -> Result<Self> {
        let tokenizer = QwenTokenizer::from_dir(dir)?;
        let template = ChatTemplate::from_dir(dir)?;
        let pre = dir.join(PREPROCESSOR_CONFIG_FILE);
        let merge_size = if pre.exists() { ImageProcessorConfig::from_file(&pre)?.merge_size } else { 2 };
        Self::new(tokenizer, template, merge_size)
    }

    /// The id used for left padding.
    pub fn pad_id(&self) -> u32 {
        self.pad_id
    }

    /// Renders one conversation (no expansion, no tokenization): `apply_chat_template(tokenize=False)`.
    pub fn render(&self, messages: &[Message], opts: RenderOptions) -> Result<String> {
        self.template.render(messages, opts)
    }

    /// Renders, expands and tokenizes conversations. `grids` holds one `image_grid_thw` row per image item,
    /// in order across the batch (what the image processor returns for the images in that order).
    pub fn encode(&self, conversations: &[Vec<Message>], grids: &[[i64; 3]], opts: RenderOptions) -> Result<ChatBatch> {
        ensure!(!conversations.is_empty(), "no conversations to encode");
        let texts =
            conversations.iter().map(|conv| self.template.render(conv, opts)).collect::<Result<Vec<String>>>()?;
        let expanded = expand_image_pads(&texts, grids, self.merge_size)?;
        let add_special = !matches!(&self.bos, Some(bos) if texts[0].starts_with(bos.as_str()));
        let ids =
            expanded.iter().map(|text| self.tokenizer.encode(text, add_special)).collect::<Result<Vec<Vec<u32>>>>()?;
        let len = ids.iter().map(Vec::len).max().unwrap_or(0);
        let pad = i64::from(self.pad_id);
        let mut input_ids = Vec::with_capacity(ids.len());
        let mut attention_mask = Vec::with_capacity(ids.len());
        for row in ids {
            let n_pad = len - row.len();
            let mut padded = vec![pad; n_pad];
            padded.extend(row.iter().map(|&id| i64::from(id)));
            let mut mask = vec![0; n_pad];
            mask.resize(len, 1);
            input_ids.push(padded);
            attention_mask.push(mask);
        }
        Ok(ChatBatch { texts, input_ids, attention_mask })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture_dir() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/qwen2_5_vl_chat")
    }

    #[test]
    fn renders_text_and_images_with_the_checkpoint_template() {
        let template = ChatTemplate::from_dir(&fixture_dir()).unwrap();
        assert!(template.origin().ends_with(CHAT_TEMPLATE_JSON_FILE), "{}", template.origin());
        let msgs = [Message::with_parts("user", vec![ContentPart::image(None), ContentPart::text("Hi")])];
        let opts = RenderOptions { add_generation_prompt: true, add_vision_id: false };
        assert_eq!(
            template.render(&msgs, opts).unwrap(),
            "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n\
             <|vision_start|><|image_pad|><|vision_end|>Hi<|im_end|>\n<|im_start|>assistant\n"
        );
        let opts = RenderOptions { add_generation_prompt: false, add_vision_id: true };
        assert!(template.render(&msgs, opts).unwrap().contains("Picture 1: <|vision_start|>"));
    }

    #[test]
    fn template_precedence_follows_transformers() {
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, text: &str| std::fs::write(dir.path().join(name), text).unwrap();
        let render = || ChatTemplate::from_dir(dir.path()).unwrap().render(&[], RenderOptions::default()).unwrap();
        let err = ChatTemplate::from_dir(dir.path()).unwrap_err();
        assert!(err.to_string().contains("has no chat template"), "{err}");
        write(
            TOKENIZER_CONFIG_FILE,
            r#"{"chat_template": [{"name": "default", "template": "tok"}], "eos_token": "E"}"#,
        );
        assert_eq!(render(), "tok");
        write(CHAT_TEMPLATE_JINJA_FILE, "jinja {{ eos_token }}\n");
        assert_eq!(render(), "jinja E");
        write(CHAT_TEMPLATE_JSON_FILE, r#"{"chat_template": "legacy"}"#);
        assert_eq!(render(), "legacy");
        write(PROCESSOR_CONFIG_FILE, r#"{"chat_template": "processor"}"#);
        assert_eq!(render(), "processor");
        std::fs::remove_file(dir.path().join(PROCESSOR_CONFIG_FILE)).unwrap();
        write(CHAT_TEMPLATE_JSON_FILE, "{not json");
        assert!(format!("{:#}", ChatTemplate::from_dir(dir.path()).unwrap_err()).contains("chat_template.json"));
    }

    #[test]
    fn python_features_raise_exception_and_whitespace_control() {
        let src = "{% for m in messages %}\n  {% if m.role not in ['user', 'assistant'] %}\
                   {{ raise_exception('bad role ' + m.role) }}{% endif %}\n  {{ m.content.strip() | upper }}\n\
                   {% endfor %}";
        let t = ChatTemplate::new(src, "test").unwrap();
        let out = t.render(&[Message::user("  hi  "), Message::assistant("yo")], RenderOptions::default()).unwrap();
        assert_eq!(out, "  HI\n  YO\n");
        let err = t.render(&[Message::system("x")], RenderOptions::default()).unwrap_err();
        assert!(format!("{err:#}").contains("bad role system"), "{err:#}");
        assert!(ChatTemplate::new("{% if %}", "broken.jinja").unwrap_err().to_string().contains("broken.jinja"));
    }

    #[test]
    fn content_items_serialize_like_transformers_dicts() {
        let msg = Message::with_parts("user", vec![ContentPart::image(Some("a.png")), ContentPart::text("t")]);
        let json = serde_json::to_string(&msg).unwrap();
        assert_eq!(json, r#"{"role":"user","content":[{"type":"image","image":"a.png"},{"type":"text","text":"t"}]}"#);
        assert_eq!(serde_json::from_str::<Message>(&json).unwrap(), msg);
        assert_eq!(msg.num_images(), 1);
        assert!(serde_json::from_str::<Message>(r#"{"role":"user","content":[{"type":"video"}]}"#).is_err());
    }

    #[test]
    fn batches_are_left_padded() {
        let p = ChatProcessor::from_dir(&fixture_dir()).unwrap();
        let convs = vec![
            vec![Message::with_parts("user", vec![ContentPart::image(None), ContentPart::text("Describe.")])],
            vec![Message::user("Hi")],
        ];
        let opts = RenderOptions { add_generation_prompt: true, add_vision_id: false };
        let batch = p.encode(&convs, &[[1, 4, 6]], opts).unwrap();
        let image_pad = i64::from(p.tokenizer.special().image_pad);
        assert_eq!(batch.input_ids[0].iter().filter(|&&t| t == image_pad).count(), 6);
        assert_eq!(batch.input_ids[0].len(), batch.input_ids[1].len());
        let n_pad = batch.attention_mask[1].iter().take_while(|&&m| m == 0).count();
        assert!(n_pad > 0);
        assert!(batch.input_ids[1][..n_pad].iter().all(|&t| t == i64::from(p.pad_id())));
        assert!(batch.attention_mask[0].iter().all(|&m| m == 1));
        let (ids, mask) = batch.to_tensors();
        assert_eq!(ids.size(), mask.size());
        assert!(p.encode(&convs, &[], opts).is_err(), "one image item but no grid");
    }
}
