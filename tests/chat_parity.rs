//! Parity of `r1lab::processor::{tokenizer, chat}` with transformers 5.17's `Qwen2_5_VLProcessor`, on fixtures
//! made by `tests/fixtures/qwen2_5_vl_chat.py`: rendered prompts, token ids and attention masks of
//! conversations (system / no system, multi-turn, text only, one and two images, with and without the
//! generation prompt), a left-padded batch, plain encode/decode cases for Qwen2's pre-tokenizer regex, and a
//! template that exercises the Jinja features chat templates use (whitespace control, loop controls, Python
//! methods, `tojson`, Python printing, `raise_exception`).
use std::path::{Path, PathBuf};

use r1lab::processor::chat::{ChatProcessor, ChatTemplate, Message, RenderOptions};
use r1lab::processor::tokenizer::QwenTokenizer;
use serde::Deserialize;

#[derive(Deserialize)]
struct Cases {
    token_ids: std::collections::BTreeMap<String, u32>,
    vocab_size_with_added: usize,
    chat: Vec<ChatCase>,
    batch: BatchCase,
    special_tokens_map: std::collections::BTreeMap<String, String>,
    feature_template: String,
    features: Vec<FeatureCase>,
    encode: Vec<EncodeCase>,
}

#[derive(Deserialize)]
struct FeatureCase {
    name: String,
    add_generation_prompt: bool,
    text: Option<String>,
    error: Option<String>,
}

#[derive(Deserialize)]
struct ChatCase {
    name: String,
    add_generation_prompt: bool,
    messages: Vec<Message>,
    text: String,
    image_grid_thw: Vec<[i64; 3]>,
    input_ids: Vec<i64>,
    attention_mask: Vec<i64>,
}

#[derive(Deserialize)]
struct BatchCase {
    names: Vec<String>,
    add_generation_prompt: bool,
    image_grid_thw: Vec<[i64; 3]>,
    input_ids: Vec<Vec<i64>>,
    attention_mask: Vec<Vec<i64>>,
}

#[derive(Deserialize)]
struct EncodeCase {
    text: String,
    ids: Vec<u32>,
    decoded: String,
    decoded_skip_special: String,
}

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/qwen2_5_vl_chat")
}

fn cases() -> Cases {
    let text = std::fs::read_to_string(dir().join("cases.json")).expect("run tests/fixtures/qwen2_5_vl_chat.py");
    serde_json::from_str(&text).unwrap()
}

fn opts(add_generation_prompt: bool) -> RenderOptions {
    RenderOptions { add_generation_prompt, add_vision_id: false }
}

#[test]
fn special_tokens_match_transformers() {
    let cases = cases();
    let tok = QwenTokenizer::from_dir(&dir()).unwrap();
    assert_eq!(tok.vocab_size(), cases.vocab_size_with_added);
    for (name, id) in &cases.token_ids {
        assert_eq!(tok.token_id(name).unwrap(), *id, "{name}");
    }
    let s = tok.special();
    for (name, id) in [
        ("<|im_start|>", s.im_start),
        ("<|im_end|>", s.im_end),
        ("<|endoftext|>", s.endoftext),
        ("<|vision_start|>", s.vision_start),
        ("<|vision_end|>", s.vision_end),
        ("<|image_pad|>", s.image_pad),
        ("<|video_pad|>", s.video_pad),
    ] {
        assert_eq!(cases.token_ids[name], id, "{name}");
    }
}

#[test]
fn encode_and_decode_match_transformers() {
    let tok = QwenTokenizer::from_dir(&dir()).unwrap();
    for case in cases().encode {
        assert_eq!(tok.encode(&case.text, true).unwrap(), case.ids, "encode {:?}", case.text);
        assert_eq!(tok.decode(&case.ids, false).unwrap(), case.decoded, "decode {:?}", case.text);
        assert_eq!(tok.decode(&case.ids, true).unwrap(), case.decoded_skip_special, "decode(skip) {:?}", case.text);
        let mut stream = tok.stream_decoder(false);
        let mut streamed = String::new();
        for id in &case.ids {
            if let Some(piece) = stream.step(*id).unwrap() {
                streamed.push_str(&piece);
            }
        }
        assert_eq!(streamed, case.decoded, "streamed {:?}", case.text);
    }
}

#[test]
fn chat_prompts_and_ids_match_transformers() {
    let processor = ChatProcessor::from_dir(&dir()).unwrap();
    let cases = cases();
    assert_eq!(cases.chat.len(), 14);
    for case in &cases.chat {
        let label = format!("{} (add_generation_prompt={})", case.name, case.add_generation_prompt);
        let text = processor.render(&case.messages, opts(case.add_generation_prompt)).unwrap();
        assert_eq!(text, case.text, "{label}");
        let batch = processor
            .encode(std::slice::from_ref(&case.messages), &case.image_grid_thw, opts(case.add_generation_prompt))
            .unwrap();
        assert_eq!(batch.texts, std::slice::from_ref(&case.text), "{label}");
        assert_eq!(batch.input_ids, std::slice::from_ref(&case.input_ids), "{label}");
        assert_eq!(batch.attention_mask, std::slice::from_ref(&case.attention_mask), "{label}");
    }
}

#[test]
fn left_padded_batch_matches_transformers() {
    let processor = ChatProcessor::from_dir(&dir()).unwrap();
    let cases = cases();
    let convs: Vec<Vec<Message>> = cases
        .batch
        .names
        .iter()
        .map(|name| cases.chat.iter().find(|c| &c.name == name).unwrap().messages.clone())
        .collect();
    let batch = processor.encode(&convs, &cases.batch.image_grid_thw, opts(cases.batch.add_generation_prompt)).unwrap();
    assert_eq!(batch.input_ids, cases.batch.input_ids);
    assert_eq!(batch.attention_mask, cases.batch.attention_mask);
    let (ids, mask) = batch.to_tensors();
    assert_eq!(ids.size(), [convs.len() as i64, cases.batch.input_ids[0].len() as i64]);
    assert_eq!(mask.sum(tch::Kind::Int64).int64_value(&[]), cases.batch.attention_mask.concat().iter().sum::<i64>());
}

#[test]
fn jinja_features_render_like_transformers() {
    let cases = cases();
    let mut template = ChatTemplate::new(&cases.feature_template, "feature template").unwrap();
    for (name, value) in &cases.special_tokens_map {
        template.set_special_token(name, value);
    }
    let from_dir = ChatProcessor::from_dir(&dir()).unwrap();
    assert_eq!(from_dir.tokenizer.token_id(&cases.special_tokens_map["pad_token"]).unwrap(), from_dir.pad_id());
    assert_eq!(cases.features.len(), 14);
    assert!(cases.features.iter().any(|c| c.error.is_some()));
    for case in &cases.features {
        let messages = &cases.chat.iter().find(|c| c.name == case.name).unwrap().messages;
        let label = format!("{} (add_generation_prompt={})", case.name, case.add_generation_prompt);
        let got = template.render(messages, opts(case.add_generation_prompt));
        match (&case.text, &case.error) {
            (Some(text), None) => assert_eq!(&got.unwrap(), text, "{label}"),
            (None, Some(error)) => {
                let err = format!("{:#}", got.unwrap_err());
                assert!(err.contains(error.as_str()), "{label}: {err}");
            }
            _ => panic!("bad fixture {label}"),
        }
    }
}
