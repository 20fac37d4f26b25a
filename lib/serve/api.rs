//! The OpenAI chat-completions wire format that `r1lab serve` speaks and `crate::endpoint` sends: request and
//! response bodies of `POST /v1/chat/completions` and `GET /v1/models`, and the error body
//! `{"error": {"message", "type", "param", "code"}}` (OpenAI API reference, "Chat", "Models", "Error codes").
//!
//! Supported request fields: `model`, `messages` (roles `system`/`user`/`assistant`; content a string or a list
//! of `{"type": "text", "text"}` and `{"type": "image_url", "image_url": {"url"}}` items), `max_tokens` /
//! `max_completion_tokens`, `temperature`, `top_p`, `n`, `stop` (a string or a list of up to 4), `seed`, and the
//! vLLM extension `top_k`. Deviations: `stream: true`, `logprobs`, `tools` and the other fields are rejected with
//! a 400 naming the field, never silently ignored; image URLs may be `data:` URIs, `file://` URLs or local
//! paths (the server never fetches `http(s)://`).
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One message of a chat request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatMessage {
    pub role: String,
    pub content: MessageContent,
}

/// A string, or a list of text and image items.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum MessageContent {
    Text(String),
    Parts(Vec<ContentItem>),
}

/// `{"type": "text", "text": ...}` or `{"type": "image_url", "image_url": {"url": ...}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ContentItem {
    Text { text: String },
    ImageUrl { image_url: ImageUrl },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImageUrl {
    pub url: String,
}

impl ChatMessage {
    pub fn text(role: &str, text: &str) -> Self {
        Self { role: role.into(), content: MessageContent::Text(text.into()) }
    }

    /// A user turn with images (as URLs: data URIs or paths) before the text, Qwen2.5-VL's order.
    pub fn user_with_images(text: &str, image_urls: &[String]) -> Self {
        let mut parts: Vec<ContentItem> =
            image_urls.iter().map(|u| ContentItem::ImageUrl { image_url: ImageUrl { url: u.clone() } }).collect();
        parts.push(ContentItem::Text { text: text.into() });
        Self { role: "user".into(), content: MessageContent::Parts(parts) }
    }
}

/// `stop`: one string or a list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Stop {
    One(String),
    Many(Vec<String>),
}

impl Stop {
    pub fn into_vec(self) -> Vec<String> {
        match self {
            Stop::One(s) => vec![s],
            Stop::Many(v) => v,
        }
    }
}

/// The body of `POST /v1/chat/completions`. Unknown fields are kept in `other` so that the server can name them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ChatRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    pub messages: Vec<ChatMessage>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_completion_tokens: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_k: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub n: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop: Option<Stop>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<bool>,
    #[serde(flatten, default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub other: serde_json::Map<String, Value>,
}

/// The assistant message of a choice.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AssistantMessage {
    pub role: String,
    pub content: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Choice {
    pub index: usize,
    pub message: AssistantMessage,
    /// `stop` (EOS or a stop string) or `length` (`max_tokens` reached).
    pub finish_reason: String,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    pub prompt_tokens: usize,
    pub completion_tokens: usize,
    pub total_tokens: usize,
}

/// The body of a successful chat completion.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatResponse {
    pub id: String,
    pub object: String,
    pub created: u64,
    pub model: String,
    pub choices: Vec<Choice>,
    pub usage: Usage,
}

impl ChatResponse {
    /// The choices' texts in index order.
    pub fn texts(&self) -> Vec<String> {
        let mut c: Vec<&Choice> = self.choices.iter().collect();
        c.sort_by_key(|c| c.index);
        c.into_iter().map(|c| c.message.content.clone()).collect()
    }
}

/// The body of an error response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorDetail {
    pub message: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub param: Option<String>,
    pub code: Option<String>,
}

/// An error with its HTTP status.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub status: u16,
    pub message: String,
    pub param: Option<String>,
}

impl ApiError {
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self { status: 400, message: message.into(), param: None }
    }
    pub fn param(param: &str, message: impl Into<String>) -> Self {
        Self { status: 400, message: message.into(), param: Some(param.into()) }
    }
    pub fn new(status: u16, message: impl Into<String>) -> Self {
        Self { status, message: message.into(), param: None }
    }

    pub fn body(&self) -> ErrorBody {
        let kind = match self.status {
            400 | 404 | 405 | 413 | 415 => "invalid_request_error",
            503 => "service_unavailable",
            _ => "server_error",
        };
        ErrorBody {
            error: ErrorDetail {
                message: self.message.clone(),
                kind: kind.into(),
                param: self.param.clone(),
                code: None,
            },
        }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "HTTP {}: {}", self.status, self.message)
    }
}

/// One entry of `GET /v1/models`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelCard {
    pub id: String,
    pub object: String,
    pub created: u64,
    pub owned_by: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelList {
    pub object: String,
    pub data: Vec<ModelCard>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_openai_requests_and_keeps_unknown_fields() {
        let body = r#"{"model":"m","messages":[{"role":"system","content":"s"},
            {"role":"user","content":[{"type":"image_url","image_url":{"url":"data:image/png;base64,AA=="}},
            {"type":"text","text":"hi"}]}],"max_tokens":8,"stop":"\n","n":2,"logprobs":true}"#;
        let r: ChatRequest = serde_json::from_str(body).unwrap();
        assert_eq!(r.messages.len(), 2);
        assert_eq!(r.stop.clone().unwrap().into_vec(), vec!["\n".to_string()]);
        assert_eq!(r.n, Some(2));
        assert!(r.other.contains_key("logprobs"));
        let MessageContent::Parts(p) = &r.messages[1].content else { panic!("parts") };
        assert!(matches!(&p[0], ContentItem::ImageUrl { image_url } if image_url.url.starts_with("data:")));
        let back = serde_json::to_value(&r).unwrap();
        assert_eq!(back["logprobs"], Value::Bool(true));
        assert!(back.get("seed").is_none());
        let e = ApiError::param("n", "bad").body();
        assert_eq!(serde_json::to_value(e).unwrap()["error"]["type"], "invalid_request_error");
    }
}
