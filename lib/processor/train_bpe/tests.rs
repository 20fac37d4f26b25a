use std::path::PathBuf;

use serde_json::Value;

use super::*;
use crate::data::synthetic::{self, Family, Split as DataSplit};
use crate::processor::chat::{ChatProcessor, ContentPart, Message, RenderOptions};

fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/qwen2_5_vl_chat")
}

fn json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// A small synthetic corpus: prompts, text twins and reference responses of a few train problems.
fn corpus() -> Vec<String> {
    let cfg = synthetic::Config::default();
    let problems = synthetic::generate_mix(&Family::ALL, &cfg, DataSplit::Train, 3).unwrap();
    let mut docs: Vec<String> = CHAT_TEMPLATE_TEXT.iter().map(|s| s.to_string()).collect();
    for p in &problems {
        docs.extend([p.question_with_choices(), p.text_twin(), p.reference_response()]);
    }
    docs
}

#[test]
fn the_chat_template_is_the_fixtures() {
    assert_eq!(json(&fixture_dir().join("chat_template.json"))["chat_template"], QWEN2_5_VL_CHAT_TEMPLATE);
    assert_eq!(json(&fixture_dir().join("tokenizer_config.json"))["chat_template"], QWEN2_5_VL_CHAT_TEMPLATE);
}

#[test]
fn deterministic_lossless_and_qwen_shaped() {
    let docs = corpus();
    let spec = BpeSpec { vocab_size: 400, min_frequency: 2 };
    let a = train_bpe(&docs, &spec).unwrap();
    let b = train_bpe(&docs, &spec).unwrap();
    assert_eq!(a, b, "same corpus, different files");
    assert!(a.learned_vocab > 256 && a.learned_vocab <= 400, "{}", a.learned_vocab);
    assert_eq!(a.vocab_size, a.learned_vocab + 22);

    let tok = a.tokenizer().unwrap();
    for doc in docs.iter().map(String::as_str).chain(["数学 😀 naïve\r\n\t x", "<|im_start|>user\nHi<|im_end|>"]) {
        let ids = tok.encode(doc, true).unwrap();
        assert_eq!(tok.decode(&ids, false).unwrap(), doc);
    }
    // Merges help: the corpus takes fewer tokens than bytes.
    let text = docs.join("\n");
    assert!(tok.encode(&text, false).unwrap().len() * 2 < text.len());

    // Added tokens follow the learned vocabulary in Qwen's order.
    let n = a.learned_vocab as u32;
    for (i, name) in SPECIAL_TOKENS.iter().chain(NON_SPECIAL_TOKENS.iter()).enumerate() {
        assert_eq!(tok.token_id(name).unwrap(), n + i as u32, "{name}");
    }
    assert_eq!(tok.encode("<|image_pad|>", false).unwrap(), vec![tok.special().image_pad]);

    // The same pipeline as the Qwen2-shaped fixture tokenizer (trained by Python tokenizers).
    let ours: Value = serde_json::from_str(&a.tokenizer_json).unwrap();
    let theirs = json(&fixture_dir().join("tokenizer.json"));
    for key in ["normalizer", "pre_tokenizer", "post_processor", "decoder", "truncation", "padding", "version"] {
        assert_eq!(ours[key], theirs[key], "{key}");
    }
    let model_opts = |v: &Value| {
        let mut m = v["model"].as_object().unwrap().clone();
        m.remove("vocab");
        m.remove("merges");
        m
    };
    assert_eq!(model_opts(&ours), model_opts(&theirs));
    let strip_ids = |v: &Value| {
        v["added_tokens"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| {
                let mut t = t.as_object().unwrap().clone();
                t.remove("id");
                t
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(strip_ids(&ours), strip_ids(&theirs));

    // tokenizer_config.json: the fixture's keys and values, only the added-token ids differ.
    let mut ours: Value = serde_json::from_str(&a.tokenizer_config_json).unwrap();
    let mut theirs = json(&fixture_dir().join("tokenizer_config.json"));
    let entries = |v: &mut Value| -> Vec<Value> {
        let d = v.as_object_mut().unwrap().remove("added_tokens_decoder").unwrap();
        let mut e: Vec<(u32, Value)> =
            d.as_object().unwrap().iter().map(|(k, v)| (k.parse().unwrap(), v.clone())).collect();
        e.sort_by_key(|(k, _)| *k);
        e.into_iter().map(|(_, v)| v).collect()
    };
    assert_eq!(entries(&mut ours), entries(&mut theirs));
    assert_eq!(ours, theirs);
}

#[test]
fn the_processor_loads_the_written_files() {
    let a = train_bpe(&corpus(), &BpeSpec { vocab_size: 300, min_frequency: 2 }).unwrap();
    let dir = tempfile::tempdir().unwrap();
    a.write(dir.path()).unwrap();
    let p = ChatProcessor::from_dir(dir.path()).unwrap();
    let conv = vec![Message::with_parts("user", vec![ContentPart::image(None), ContentPart::text("How many?")])];
    let opts = RenderOptions { add_generation_prompt: true, add_vision_id: false };
    let batch = p.encode(&[conv], &[[1, 8, 8]], opts).unwrap();
    let s = *p.tokenizer.special();
    let ids = &batch.input_ids[0];
    assert_eq!(ids.iter().filter(|&&i| i == i64::from(s.image_pad)).count(), 16);
    assert_eq!(ids[0], i64::from(s.im_start));
    assert_eq!(p.pad_id(), s.endoftext);
    let text = p.tokenizer.decode(&ids.iter().map(|&i| i as u32).collect::<Vec<_>>(), false).unwrap();
    assert!(text.ends_with("How many?<|im_end|>\n<|im_start|>assistant\n"), "{text}");
}

#[test]
fn bad_specs_are_refused() {
    assert!(train_bpe::<&str>(&[], &BpeSpec::default()).unwrap_err().to_string().contains("empty"));
    let e = train_bpe(&["abc"], &BpeSpec { vocab_size: 100, min_frequency: 1 }).unwrap_err();
    assert!(e.to_string().contains("256"), "{e}");
}
