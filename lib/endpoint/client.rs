//! A blocking client for any OpenAI-compatible `/v1/chat/completions` endpoint (`r1lab serve`, vLLM, SGLang, the
//! OpenAI API): per-request timeout, retries with exponential backoff on transport errors, 408, 429 and 5xx
//! (honouring `Retry-After` seconds when sent), and no retry on other 4xx (a bad request stays bad: the error
//! carries the server's message). Concurrency comes from the caller's threads ([`super::run_resumable`]); the
//! client itself is `Sync` and shares one connection pool.
use std::time::Duration;

use anyhow::{Result, anyhow, bail};

use crate::serve::api::{ChatRequest, ChatResponse, ErrorBody};

/// How to reach the endpoint.
#[derive(Debug, Clone)]
pub struct EndpointConfig {
    /// The API base, e.g. `http://127.0.0.1:8000/v1`.
    pub base_url: String,
    /// The `model` sent with each request.
    pub model: String,
    /// Sent as `Authorization: Bearer ...` when set.
    pub api_key: Option<String>,
    /// Per request, connect to last byte.
    pub timeout: Duration,
    /// Attempts after the first.
    pub retries: u32,
    /// Wait before the first retry; doubled each time, capped at 30 s.
    pub backoff: Duration,
}

impl EndpointConfig {
    /// 600 s timeout, 4 retries, 0.5 s initial backoff, no API key.
    pub fn new(base_url: &str, model: &str) -> Self {
        Self {
            base_url: base_url.trim_end_matches('/').to_string(),
            model: model.to_string(),
            api_key: None,
            timeout: Duration::from_secs(600),
            retries: 4,
            backoff: Duration::from_millis(500),
        }
    }
}

/// The client.
#[derive(Debug)]
pub struct Endpoint {
    pub config: EndpointConfig,
    agent: ureq::Agent,
}

/// What one attempt ended with.
enum Attempt {
    Done(ChatResponse),
    Retry(String, Option<Duration>),
    Fail(anyhow::Error),
}

impl Endpoint {
    pub fn new(config: EndpointConfig) -> Self {
        let agent = ureq::AgentBuilder::new().timeout(config.timeout).build();
        Self { config, agent }
    }

    /// Sends `req` (its `model` set to the configured one), retrying as the module header says.
    pub fn chat(&self, req: &ChatRequest) -> Result<ChatResponse> {
        let req = ChatRequest { model: Some(self.config.model.clone()), ..req.clone() };
        let body = serde_json::to_string(&req)?;
        let url = format!("{}/chat/completions", self.config.base_url);
        let mut wait = self.config.backoff;
        let mut last = String::new();
        for attempt in 0..=self.config.retries {
            if attempt > 0 {
                std::thread::sleep(wait);
                wait = (wait * 2).min(Duration::from_secs(30));
            }
            match self.attempt(&url, &body) {
                Attempt::Done(r) => return Ok(r),
                Attempt::Fail(e) => return Err(e),
                Attempt::Retry(msg, after) => {
                    last = msg;
                    if let Some(a) = after {
                        wait = wait.max(a);
                    }
                }
            }
        }
        bail!("{url}: gave up after {} attempts; last error: {last}", self.config.retries + 1)
    }

    fn attempt(&self, url: &str, body: &str) -> Attempt {
        let mut r = self.agent.post(url).set("Content-Type", "application/json");
        if let Some(k) = &self.config.api_key {
            r = r.set("Authorization", &format!("Bearer {k}"));
        }
        match r.send_string(body) {
            Ok(resp) => match resp.into_string() {
                Ok(text) => match serde_json::from_str::<ChatResponse>(&text) {
                    Ok(c) => Attempt::Done(c),
                    Err(e) => Attempt::Fail(anyhow!("{url}: the response is not a chat completion ({e}): {text:.300}")),
                },
                Err(e) => Attempt::Retry(format!("reading the response: {e}"), None),
            },
            Err(ureq::Error::Status(code, resp)) => {
                let after =
                    resp.header("Retry-After").and_then(|s| s.trim().parse::<u64>().ok()).map(Duration::from_secs);
                let text = resp.into_string().unwrap_or_default();
                let msg = serde_json::from_str::<ErrorBody>(&text).map(|b| b.error.message).unwrap_or(text);
                if code == 408 || code == 429 || code >= 500 {
                    Attempt::Retry(format!("HTTP {code}: {msg}"), after)
                } else {
                    Attempt::Fail(anyhow!("{url}: HTTP {code}: {msg} (not retried: fix the request)"))
                }
            }
            Err(ureq::Error::Transport(t)) => Attempt::Retry(format!("transport: {t}"), None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, BufReader, Write};
    use std::net::TcpListener;

    /// A one-thread HTTP server answering the given (status, body) pairs in order; returns its base URL.
    fn scripted(replies: Vec<(u16, String)>) -> (String, std::thread::JoinHandle<usize>) {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}/v1", l.local_addr().unwrap());
        let h = std::thread::spawn(move || {
            let mut served = 0;
            for (code, body) in replies {
                let (mut s, _) = l.accept().unwrap();
                let mut r = BufReader::new(s.try_clone().unwrap());
                let mut len = 0;
                loop {
                    let mut line = String::new();
                    r.read_line(&mut line).unwrap();
                    if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                        len = v.trim().parse().unwrap();
                    }
                    if line == "\r\n" {
                        break;
                    }
                }
                let mut buf = vec![0; len];
                std::io::Read::read_exact(&mut r, &mut buf).unwrap();
                write!(s, "HTTP/1.1 {code} X\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len())
                    .unwrap();
                served += 1;
            }
            served
        });
        (base, h)
    }

    fn ok_body() -> String {
        r#"{"id":"x","object":"chat.completion","created":0,"model":"m","choices":[{"index":0,
           "message":{"role":"assistant","content":"hi"},"finish_reason":"stop"}],
           "usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}}"#
            .into()
    }

    fn fast(base: &str) -> Endpoint {
        Endpoint::new(EndpointConfig {
            backoff: Duration::from_millis(1),
            retries: 2,
            ..EndpointConfig::new(base, "m")
        })
    }

    #[test]
    fn retries_server_errors_then_succeeds() {
        let (base, h) = scripted(vec![(503, "{}".into()), (500, "oops".into()), (200, ok_body())]);
        let r = fast(&base).chat(&ChatRequest::default()).unwrap();
        assert_eq!(r.texts(), vec!["hi".to_string()]);
        assert_eq!(h.join().unwrap(), 3);
    }

    #[test]
    fn does_not_retry_bad_requests_and_gives_up_after_retries() {
        let err =
            r#"{"error":{"message":"n must be in 1..=16","type":"invalid_request_error","param":"n","code":null}}"#;
        let (base, h) = scripted(vec![(400, err.into())]);
        let e = fast(&base).chat(&ChatRequest::default()).unwrap_err().to_string();
        assert!(e.contains("HTTP 400") && e.contains("n must be in"), "{e}");
        assert_eq!(h.join().unwrap(), 1);
        let (base, h) = scripted(vec![(502, "a".into()), (502, "b".into()), (502, "c".into())]);
        let e = fast(&base).chat(&ChatRequest::default()).unwrap_err().to_string();
        assert!(e.contains("after 3 attempts") && e.contains("HTTP 502: c"), "{e}");
        assert_eq!(h.join().unwrap(), 3);
    }
}
