//! Unit tests of the config parser against the fixtures of `tests/fixtures/qwen2_5_vl_config.py`.
use std::path::PathBuf;

use serde_json::{Value, json};

use super::*;

const PUBLISHED: &str = "qwen2_5_vl_7b_instruct.config.json";
const RESAVED: &str = "qwen2_5_vl_7b_instruct.resaved.config.json";
const TINY: &str = "tiny.config.json";
const HF_DEFAULT: &str = "hf_default.config.json";

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/qwen2_5_vl_config").join(name)
}

fn read(name: &str) -> String {
    std::fs::read_to_string(fixture(name)).unwrap()
}

fn expected(name: &str) -> Value {
    let all: Value = serde_json::from_str(&read("expected.json")).unwrap();
    all[name].clone()
}

/// The same view of a config as `resolved()` in the fixture script.
fn resolved(c: &Config) -> Value {
    let (t, v) = (&c.text_config, &c.vision_config);
    let (total, visual) = c.num_parameters();
    json!({
        "text": {
            "vocab_size": t.vocab_size, "hidden_size": t.hidden_size, "intermediate_size": t.intermediate_size,
            "num_hidden_layers": t.num_hidden_layers, "num_attention_heads": t.num_attention_heads,
            "num_key_value_heads": t.num_key_value_heads(), "head_dim": t.head_dim(), "hidden_act": t.hidden_act,
            "max_position_embeddings": t.max_position_embeddings, "rms_norm_eps": t.rms_norm_eps,
            "rope_theta": t.rope_theta(), "mrope_section": t.mrope_section(), "bos_token_id": t.bos_token_id,
            "eos_token_id": t.eos_token_ids()[0],
        },
        "vision": {
            "depth": v.depth, "hidden_size": v.hidden_size, "intermediate_size": v.intermediate_size,
            "num_heads": v.num_heads, "in_channels": v.in_channels, "out_hidden_size": v.out_hidden_size,
            "patch_size": v.patch_size, "spatial_merge_size": v.spatial_merge_size,
            "temporal_patch_size": v.temporal_patch_size, "window_size": v.window_size,
            "fullatt_block_indexes": v.fullatt_block_indexes, "tokens_per_second": v.tokens_per_second,
            "hidden_act": v.hidden_act, "rope_theta": v.rope_theta(),
        },
        "image_token_id": c.image_token_id, "video_token_id": c.video_token_id,
        "vision_start_token_id": c.vision_start_token_id, "vision_end_token_id": c.vision_end_token_id,
        "tie_word_embeddings": c.tie_word_embeddings, "num_parameters": total, "num_parameters_visual": visual,
    })
}

fn parse_err(json: &str) -> String {
    let err = Config::parse(json, "test.json").and_then(|c| c.validate().map(|_| c)).unwrap_err();
    format!("{err:#}")
}

/// The published flat config as a JSON object, to be edited by a test.
fn published() -> serde_json::Map<String, Value> {
    match serde_json::from_str(&read(PUBLISHED)).unwrap() {
        Value::Object(m) => m,
        _ => unreachable!(),
    }
}

#[test]
fn every_fixture_resolves_like_transformers() {
    for name in [PUBLISHED, RESAVED, TINY, HF_DEFAULT] {
        let cfg = Config::parse(&read(name), name).unwrap();
        assert_eq!(resolved(&cfg), expected(name), "{name}");
    }
}

#[test]
fn published_flat_and_resaved_nested_are_the_same_model() {
    let flat = Config::from_file(&fixture(PUBLISHED)).unwrap();
    let nested = Config::from_file(&fixture(RESAVED)).unwrap();
    assert_eq!(resolved(&flat), resolved(&nested));
    assert_eq!(flat.num_parameters(), (8_292_166_656, 676_550_144));
    assert_eq!(flat.text_config.mrope_section(), vec![16, 24, 24]);
    assert_eq!(flat.vision_config.in_chans, Some(3));
    assert_eq!(flat.vision_token_id, Some(151654));
    assert!(!flat.tie_word_embeddings);
    assert_eq!(flat.vision_config.window_merged_tokens(), 4);
}

#[test]
fn tiny_config_is_valid_and_tied() {
    let cfg = Config::from_file(&fixture(TINY)).unwrap();
    assert!(cfg.tie_word_embeddings);
    assert_eq!(cfg.text_config.head_dim(), 16);
    assert_eq!(cfg.vision_config.fullatt_block_indexes, vec![1]);
}

#[test]
fn transformers_default_config_is_rejected_for_its_merger_width() {
    let err = format!("{:#}", Config::from_file(&fixture(HF_DEFAULT)).unwrap_err());
    assert!(err.contains("hf_default.config.json") && err.contains("out_hidden_size (3584)"), "{err}");
}

#[test]
fn patched_rope_spelling_and_rope_parameters_agree() {
    let mut m = published();
    m.insert("rope_scaling".into(), json!({"mrope_section": [16, 24, 24], "rope_type": "mrope"}));
    let patched = Config::parse(&Value::Object(m).to_string(), "patched").unwrap();
    patched.validate().unwrap();
    let flat = Config::parse(&read(PUBLISHED), PUBLISHED).unwrap();
    assert_eq!(resolved(&patched), resolved(&flat));
}

#[test]
fn unknown_keys_are_errors_naming_key_section_and_file() {
    let mut m = published();
    m.insert("rope_sclaing".into(), json!({}));
    let err = parse_err(&Value::Object(m).to_string());
    assert!(err.contains("test.json") && err.contains("rope_sclaing") && err.contains("flat layout"), "{err}");

    let mut m = published();
    m["vision_config"]["window_sise"] = json!(112);
    let err = parse_err(&Value::Object(m).to_string());
    assert!(err.contains("window_sise") && err.contains("vision_config"), "{err}");

    let nested = read(RESAVED).replacen("\"image_token_id\"", "\"mystery\": 1, \"image_token_id\"", 1);
    let err = parse_err(&nested);
    assert!(err.contains("unknown key `mystery` at the top level"), "{err}");

    let mut m = published();
    m["rope_scaling"]["factor"] = json!(2.0);
    assert!(parse_err(&Value::Object(m).to_string()).contains("factor"));
}

#[test]
fn bookkeeping_and_shadowed_keys_are_ignored() {
    // Keys transformers 4.5x wrote: text keys repeated at the top level of the nested form, token ids copied
    // into text_config, generation defaults.
    let mut m: serde_json::Map<String, Value> = serde_json::from_str(&read(RESAVED)).unwrap();
    m.insert("hidden_size".into(), json!(1));
    m.insert("rope_scaling".into(), json!({"type": "mrope", "mrope_section": [16, 24, 24]}));
    m.insert("use_bfloat16".into(), json!(false));
    m["text_config"]["video_token_id"] = Value::Null;
    m["text_config"]["_name_or_path"] = json!("x");
    let cfg = Config::parse(&Value::Object(m).to_string(), "t").unwrap();
    cfg.validate().unwrap();
    assert_eq!(cfg.text_config.hidden_size, 3584);
}

#[test]
fn missing_required_keys_are_errors_naming_them() {
    let mut m = published();
    m.remove("hidden_size");
    let err = parse_err(&Value::Object(m).to_string());
    assert!(err.contains("missing field `hidden_size`") && err.contains("top level"), "{err}");
    let nested = read(RESAVED).replacen("\"hidden_size\": 3584,", "", 1);
    let err = parse_err(&nested);
    assert!(err.contains("missing field `hidden_size`") && err.contains("text_config"), "{err}");

    let mut m = published();
    m["vision_config"].as_object_mut().unwrap().remove("out_hidden_size");
    assert!(parse_err(&Value::Object(m).to_string()).contains("missing field `out_hidden_size`"));

    let mut m = published();
    m.remove("vision_config");
    assert!(parse_err(&Value::Object(m).to_string()).contains("missing required key `vision_config`"));

    let err = format!("{:#}", Config::from_file(&fixture("no_such.json")).unwrap_err());
    assert!(err.contains("no_such.json"), "{err}");
}

#[test]
fn validation_names_the_broken_setting() {
    type Edit = fn(&mut serde_json::Map<String, Value>);
    let cases: [(&str, Edit); 12] = [
        ("mrope_section [16, 24, 23]", |m| m["rope_scaling"]["mrope_section"] = json!([16, 24, 23])),
        ("not divisible by num_attention_heads", |m| m["num_attention_heads"] = json!(27)),
        ("multiple of num_key_value_heads", |m| m["num_key_value_heads"] = json!(3)),
        ("fullatt_block_indexes contains 32", |m| m["vision_config"]["fullatt_block_indexes"] = json!([7, 32])),
        ("lists block 7 twice", |m| m["vision_config"]["fullatt_block_indexes"] = json!([7, 7])),
        ("in_chans 4 disagrees", |m| m["vision_config"]["in_chans"] = json!(4)),
        ("use_sliding_window", |m| m["use_sliding_window"] = json!(true)),
        ("rope type `yarn`", |m| m["rope_scaling"]["type"] = json!("yarn")),
        ("image_token_id 152064", |m| m["image_token_id"] = json!(152064)),
        ("model_type is `qwen2_vl`", |m| m["model_type"] = json!("qwen2_vl")),
        ("hidden_act `gelu`", |m| m["hidden_act"] = json!("gelu")),
        ("head_dim 64 differs", |m| {
            m.insert("head_dim".into(), json!(64));
        }),
    ];
    for (needle, edit) in cases {
        let mut m = published();
        edit(&mut m);
        let err = parse_err(&Value::Object(m).to_string());
        assert!(err.contains(needle), "expected `{needle}` in: {err}");
    }
}

#[test]
fn pre_v5_tie_flag_in_text_config_ties() {
    let mut m: serde_json::Map<String, Value> = serde_json::from_str(&read(RESAVED)).unwrap();
    m["text_config"]["tie_word_embeddings"] = json!(true);
    let cfg = Config::parse(&Value::Object(m).to_string(), "t").unwrap();
    assert!(cfg.tie_word_embeddings);
    let (untied, _) = Config::from_file(&fixture(RESAVED)).unwrap().num_parameters();
    assert_eq!(untied - cfg.num_parameters().0, 152064 * 3584);
}

#[test]
fn serializing_gives_the_nested_form_back() {
    for name in [PUBLISHED, RESAVED, TINY] {
        let cfg = Config::from_file(&fixture(name)).unwrap();
        let json = serde_json::to_string_pretty(&cfg).unwrap();
        assert!(json.contains("\"text_config\""));
        assert_eq!(Config::parse(&json, "round trip").unwrap(), cfg, "{name}");
    }
}

#[test]
fn text_keys_list_matches_the_struct() {
    let full = TextConfig {
        head_dim: Some(1),
        rope_parameters: Some(RopeParameters { rope_type: None, type_: None, mrope_section: None, rope_theta: None }),
        rope_scaling: Some(RopeParameters { rope_type: None, type_: None, mrope_section: None, rope_theta: None }),
        rope_theta: Some(1.0),
        layer_types: Some(vec![]),
        tie_word_embeddings: Some(false),
        model_type: Some("x".into()),
        ..Config::parse(&read(TINY), TINY).unwrap().text_config
    };
    let Value::Object(m) = serde_json::to_value(&full).unwrap() else { unreachable!() };
    let mut fields: Vec<&str> = m.keys().map(String::as_str).collect();
    let mut listed = TEXT_KEYS.to_vec();
    fields.sort_unstable();
    listed.sort_unstable();
    assert_eq!(fields, listed);
}
