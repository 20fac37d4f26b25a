//! Validation of a chat request into a model job: every check that can fail with a 4xx runs here, on the HTTP
//! handler's thread, before the request reaches the batching worker.
//!
//! - Messages become `processor::chat::Message`s (roles `system`, `user`, `assistant`; images only in user
//!   turns, as the Qwen2.5-VL template places them); the last message must be a user turn (the server always
//!   adds the generation prompt).
//! - Images: `data:image/...;base64,` URIs, `file://` URLs or plain local paths, at most
//!   [`Limits::max_image_bytes`] encoded bytes and [`Limits::max_image_pixels`] pixels (checked from the header
//!   before decoding); more than [`Limits::max_images`] images per request is a 400. Oversized images are 413.
//! - Sampling: `temperature` in [0, 2] (0 = greedy; default 1, as OpenAI), `top_p` in (0, 1], `top_k` ≥ 0,
//!   `n` in 1..=[`Limits::max_n`], `max_tokens` in 1..=[`Limits::max_tokens`] (default 256), ≤ 4 non-empty stop
//!   strings.
use std::io::Cursor;
use std::path::PathBuf;

use base64::Engine;
use image::RgbImage;

use super::api::{ApiError, ChatRequest, ContentItem, MessageContent};
use crate::model::sampling::SamplingParams;
use crate::processor::chat::{ContentPart, Message};
use crate::processor::image::to_rgb_like_pil;

/// Request limits of a server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest request body.
    pub max_body_bytes: usize,
    /// Largest encoded image.
    pub max_image_bytes: usize,
    /// Largest image, width × height.
    pub max_image_pixels: u64,
    pub max_images: usize,
    pub max_n: usize,
    pub max_tokens: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_body_bytes: 32 << 20,
            max_image_bytes: 16 << 20,
            max_image_pixels: 40_000_000,
            max_images: 8,
            max_n: 16,
            max_tokens: 4096,
        }
    }
}

/// A validated request, ready for the worker.
#[derive(Debug, Clone)]
pub struct Job {
    pub conversation: Vec<Message>,
    pub images: Vec<RgbImage>,
    /// Sampling without EOS ids (the worker adds the model's).
    pub params: SamplingParams,
    pub n: usize,
    pub stop: Vec<String>,
    /// Seed of choice 0; choice `i` uses `seed + i`. `None`: the server picks one.
    pub seed: Option<u64>,
}

/// Checks `req` against `limits` and decodes its images.
pub fn validate(req: ChatRequest, limits: &Limits) -> Result<Job, ApiError> {
    if let Some(name) = req.other.keys().next() {
        return Err(ApiError::param(name, format!("unsupported field `{name}`: r1lab serve does not implement it")));
    }
    if req.stream == Some(true) {
        return Err(ApiError::param("stream", "streaming is not supported: send `stream: false` or leave it out"));
    }
    if req.messages.is_empty() {
        return Err(ApiError::param("messages", "`messages` is empty: send at least one user message"));
    }
    let mut conversation = Vec::with_capacity(req.messages.len());
    let mut images = Vec::new();
    for (i, m) in req.messages.iter().enumerate() {
        if !matches!(m.role.as_str(), "system" | "user" | "assistant") {
            return Err(ApiError::param(
                "messages",
                format!("messages[{i}]: unsupported role `{}` (use system, user or assistant)", m.role),
            ));
        }
        let msg = match &m.content {
            MessageContent::Text(t) => Message::new(&m.role, crate::processor::chat::Content::Text(t.clone())),
            MessageContent::Parts(parts) => {
                let mut out = Vec::with_capacity(parts.len());
                for p in parts {
                    match p {
                        ContentItem::Text { text } => out.push(ContentPart::text(text)),
                        ContentItem::ImageUrl { image_url } => {
                            if m.role != "user" {
                                return Err(ApiError::param(
                                    "messages",
                                    format!("messages[{i}]: images are only accepted in user messages"),
                                ));
                            }
                            if images.len() == limits.max_images {
                                return Err(ApiError::param(
                                    "messages",
                                    format!("more than {} images in one request", limits.max_images),
                                ));
                            }
                            images.push(load_url(&image_url.url, limits).map_err(|mut e| {
                                e.message = format!("messages[{i}]: {}", e.message);
                                e
                            })?);
                            out.push(ContentPart::image(None));
                        }
                    }
                }
                Message::with_parts(&m.role, out)
            }
        };
        conversation.push(msg);
    }
    if req.messages.last().is_some_and(|m| m.role != "user") {
        return Err(ApiError::param("messages", "the last message must be a user message"));
    }
    let temperature = req.temperature.unwrap_or(1.0);
    if !(0.0..=2.0).contains(&temperature) {
        return Err(ApiError::param("temperature", format!("temperature must be in [0, 2], got {temperature}")));
    }
    let top_p = req.top_p.unwrap_or(1.0);
    if !(top_p > 0.0 && top_p <= 1.0) {
        return Err(ApiError::param("top_p", format!("top_p must be in (0, 1], got {top_p}")));
    }
    let top_k = req.top_k.unwrap_or(0);
    if top_k < 0 {
        return Err(ApiError::param("top_k", format!("top_k must be ≥ 0 (0 = off), got {top_k}")));
    }
    let n = req.n.unwrap_or(1);
    if n == 0 || n > limits.max_n {
        return Err(ApiError::param("n", format!("n must be in 1..={}, got {n}", limits.max_n)));
    }
    let max_tokens = req.max_completion_tokens.or(req.max_tokens).unwrap_or(256.min(limits.max_tokens));
    if max_tokens == 0 || max_tokens > limits.max_tokens {
        return Err(ApiError::param(
            "max_tokens",
            format!("max_tokens must be in 1..={}, got {max_tokens}", limits.max_tokens),
        ));
    }
    let stop = req.stop.map(|s| s.into_vec()).unwrap_or_default();
    if stop.len() > 4 || stop.iter().any(String::is_empty) {
        return Err(ApiError::param("stop", "stop must be at most 4 non-empty strings"));
    }
    let params = SamplingParams { temperature, top_p, top_k, max_new_tokens: max_tokens, ..SamplingParams::default() };
    Ok(Job { conversation, images, params, n, stop, seed: req.seed })
}

/// Decodes one image URL (see the module header).
fn load_url(url: &str, limits: &Limits) -> Result<RgbImage, ApiError> {
    let bytes = if let Some(rest) = url.strip_prefix("data:") {
        let (meta, data) = rest
            .split_once(',')
            .ok_or_else(|| ApiError::bad_request("a data URI without a comma: use data:image/png;base64,<data>"))?;
        if !meta.ends_with(";base64") {
            return Err(ApiError::bad_request("only base64 data URIs are supported (data:image/...;base64,...)"));
        }
        // Base64 is 4/3 of the bytes: reject before decoding.
        if data.len() / 4 * 3 > limits.max_image_bytes {
            return Err(too_large(data.len() / 4 * 3, limits));
        }
        base64::engine::general_purpose::STANDARD
            .decode(data.trim())
            .map_err(|e| ApiError::bad_request(format!("the image data URI is not valid base64: {e}")))?
    } else if url.starts_with("http://") || url.starts_with("https://") {
        return Err(ApiError::bad_request(
            "remote image URLs are not fetched: send the image as a data URI or a local path",
        ));
    } else {
        let path = PathBuf::from(url.strip_prefix("file://").unwrap_or(url));
        let len = std::fs::metadata(&path)
            .map_err(|e| ApiError::bad_request(format!("cannot read image {}: {e}", path.display())))?
            .len() as usize;
        if len > limits.max_image_bytes {
            return Err(too_large(len, limits));
        }
        std::fs::read(&path).map_err(|e| ApiError::bad_request(format!("cannot read image {}: {e}", path.display())))?
    };
    if bytes.len() > limits.max_image_bytes {
        return Err(too_large(bytes.len(), limits));
    }
    let reader = image::ImageReader::new(Cursor::new(&bytes))
        .with_guessed_format()
        .map_err(|e| ApiError::bad_request(format!("unreadable image: {e}")))?;
    let (w, h) =
        reader.into_dimensions().map_err(|e| ApiError::bad_request(format!("not a PNG or JPEG image: {e}")))?;
    if u64::from(w) * u64::from(h) > limits.max_image_pixels {
        return Err(ApiError::new(
            413,
            format!("image of {w}x{h} pixels exceeds the limit of {} pixels", limits.max_image_pixels),
        ));
    }
    let img = image::load_from_memory(&bytes)
        .map_err(|e| ApiError::bad_request(format!("the image cannot be decoded (corrupt or not PNG/JPEG): {e}")))?;
    Ok(to_rgb_like_pil(img))
}

fn too_large(bytes: usize, limits: &Limits) -> ApiError {
    ApiError::new(413, format!("image of {bytes} bytes exceeds the limit of {} bytes", limits.max_image_bytes))
}

/// A PNG file's bytes as a `data:image/png;base64,` URI (what clients send).
pub fn png_data_uri(png: &[u8]) -> String {
    format!("data:image/png;base64,{}", base64::engine::general_purpose::STANDARD.encode(png))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::serve::api::ChatMessage;

    fn png(w: u32, h: u32) -> Vec<u8> {
        let mut out = Vec::new();
        RgbImage::new(w, h).write_to(&mut Cursor::new(&mut out), image::ImageFormat::Png).unwrap();
        out
    }

    fn req(messages: Vec<ChatMessage>) -> ChatRequest {
        ChatRequest { messages, ..Default::default() }
    }

    #[test]
    fn accepts_text_and_images_and_fills_defaults() {
        let r = req(vec![
            ChatMessage::text("system", "s"),
            ChatMessage::user_with_images("what?", &[png_data_uri(&png(30, 20))]),
        ]);
        let j = validate(r, &Limits::default()).unwrap();
        assert_eq!(j.images.len(), 1);
        assert_eq!(j.images[0].dimensions(), (30, 20));
        assert_eq!(j.conversation[1].num_images(), 1);
        assert_eq!((j.n, j.params.temperature, j.params.max_new_tokens), (1, 1.0, 256));
    }

    #[test]
    fn rejects_with_4xx_and_names_the_problem() {
        let lim = Limits { max_image_bytes: 2000, max_image_pixels: 10_000, ..Limits::default() };
        let user = |t: &str| vec![ChatMessage::text("user", t)];
        let e = |r: ChatRequest| validate(r, &lim).unwrap_err();
        assert_eq!(e(req(vec![])).param.as_deref(), Some("messages"));
        assert_eq!(e(ChatRequest { n: Some(0), ..req(user("x")) }).param.as_deref(), Some("n"));
        assert_eq!(e(ChatRequest { temperature: Some(-1.0), ..req(user("x")) }).param.as_deref(), Some("temperature"));
        assert_eq!(e(ChatRequest { stream: Some(true), ..req(user("x")) }).param.as_deref(), Some("stream"));
        assert_eq!(e(ChatRequest { max_tokens: Some(0), ..req(user("x")) }).param.as_deref(), Some("max_tokens"));
        let mut other = serde_json::Map::new();
        other.insert("tools".into(), serde_json::json!([]));
        assert!(e(ChatRequest { other, ..req(user("x")) }).message.contains("`tools`"));
        assert!(e(req(vec![ChatMessage::text("tool", "x")])).message.contains("role `tool`"));
        assert!(
            e(req(vec![ChatMessage::text("user", "x"), ChatMessage::text("assistant", "y")]))
                .message
                .contains("last message")
        );
        let big = ChatMessage::user_with_images("q", &[png_data_uri(&png(200, 200))]);
        assert_eq!(e(req(vec![big])).status, 413);
        let junk = ChatMessage::user_with_images("q", &["data:image/png;base64,AAAA".into()]);
        assert_eq!(e(req(vec![junk])).status, 400);
        let remote = ChatMessage::user_with_images("q", &["https://x/y.png".into()]);
        assert!(e(req(vec![remote])).message.contains("not fetched"));
        let missing = ChatMessage::user_with_images("q", &["/no/such/file.png".into()]);
        assert!(e(req(vec![missing])).message.contains("/no/such/file.png"));
    }
}
