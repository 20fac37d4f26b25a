use std::time::Instant;

use tch::Kind;

use super::*;
use crate::hub::HubOptions;
use crate::model::qwen2_5_vl::Images;
use crate::processor::chat::{ChatProcessor, ContentPart, Message, RenderOptions};
use crate::processor::image::load_image_bytes;
use crate::processor::train_bpe::SPECIAL_TOKENS;

/// A spec small enough for CI (the corpus has 24 problems).
fn small() -> TinySpec {
    TinySpec { problems_per_family: 2, bpe: BpeSpec { vocab_size: 400, min_frequency: 2 }, ..TinySpec::default() }
}

fn offline_hub(cache: &Path) -> Hub {
    Hub::new(HubOptions { offline: true, ..HubOptions::new(cache) })
}

#[test]
fn tiny_repo_is_reproducible_loadable_and_verified() {
    let _g = tch::no_grad_guard();
    let spec = small();
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let ra = install(&spec, a.path()).unwrap();
    let rb = install(&spec, b.path()).unwrap();
    assert_eq!(ra.revision, rb.revision);
    assert_eq!(ra.files, rb.files);
    for (f, _, written) in &ra.files {
        assert!(written, "{f}");
        let (x, y) = (std::fs::read(ra.snapshot.join(f)).unwrap(), std::fs::read(rb.snapshot.join(f)).unwrap());
        assert!(x == y, "{f} differs between two builds");
    }
    let names: Vec<&str> = ra.files.iter().map(|(f, _, _)| f.as_str()).collect();
    assert_eq!(
        names,
        [
            "README.md",
            "chat_template.json",
            "config.json",
            "generation_config.json",
            "model.safetensors",
            "preprocessor_config.json",
            "tokenizer.json",
            "tokenizer_config.json"
        ]
    );
    // Idempotent: the same revision, nothing rewritten, no temporary folders left in the cache.
    let again = install(&spec, a.path()).unwrap();
    assert_eq!(again.revision, ra.revision);
    assert!(again.files.iter().all(|(_, _, w)| !w), "{:?}", again.files);
    let entries: Vec<String> =
        std::fs::read_dir(a.path()).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    assert_eq!(entries, vec!["models--r1lab--tiny-qwen2.5-vl".to_string()]);
    let repo_dir = a.path().join("models--r1lab--tiny-qwen2.5-vl");
    assert_eq!(std::fs::read_to_string(repo_dir.join("refs/main")).unwrap(), ra.revision);

    // Resolved offline through the Hub cache exactly as a downloaded model, pinned or through refs/main.
    let hub = offline_hub(a.path());
    let snap = ra.fetch(&hub).unwrap();
    assert_eq!(snap, ra.snapshot);
    let main = Hub::new(HubOptions { allow_moving_revision: true, ..hub.options().clone() });
    let cfg_path = main.fetch(&HubRepo::model(TINY_REPO_ID, "main"), "config.json").unwrap();
    assert_eq!(cfg_path, snap.join("config.json"));

    let model = Qwen2_5_VL::from_dir(&snap, Device::Cpu, Kind::Float).unwrap();
    let (params, vision) = model.config.num_parameters();
    let counted: i64 = model.var_store().unwrap().variables().values().map(|t| t.numel() as i64).sum();
    assert_eq!(params as i64, counted, "the tied lm_head is one variable");
    println!("tiny model: {params} parameters ({vision} in the vision tower)");
    assert_eq!(params, ra.parameters);

    // The processor of the repository, on a synthetic problem's image: 224 px -> 16x16 patches -> 64 tokens.
    let processor = ChatProcessor::from_dir(&snap).unwrap();
    let tok = &processor.tokenizer;
    assert_eq!(tok.vocab_size(), ra.tokenizer_vocab);
    assert!(model.config.text_config.vocab_size >= tok.vocab_size());
    assert_eq!(model.config.image_token_id, i64::from(tok.special().image_pad));
    assert_eq!(model.config.vision_start_token_id, i64::from(tok.special().vision_start));
    assert_eq!(model.config.text_config.eos_token_ids(), vec![i64::from(tok.special().im_end)]);
    let problem = synthetic::generate(Family::Bars, &spec.data, 0).unwrap();
    let image = load_image_bytes(&problem.png, "bars").unwrap();
    let pre = ImageProcessorConfig::from_file(&snap.join(PREPROCESSOR_CONFIG_FILE)).unwrap();
    let inputs = pre.preprocess(&[image]).unwrap();
    assert_eq!(inputs.grids, vec![[1, 16, 16]]);
    let conv = vec![Message::with_parts(
        "user",
        vec![ContentPart::image(None), ContentPart::text(&problem.question_with_choices())],
    )];
    let opts = RenderOptions { add_generation_prompt: true, add_vision_id: false };
    let batch = processor.encode(&[conv], &inputs.grids, opts).unwrap();
    let pads = batch.input_ids[0].iter().filter(|&&i| i == model.config.image_token_id).count();
    assert_eq!(pads, 64);
    let (ids, mask) = batch.to_tensors();
    let images = Images { pixel_values: &inputs.pixel_values, grid_thw: &inputs.grids };
    let start = Instant::now();
    let logits = model.forward(&ids, Some(&mask), Some(images)).unwrap();
    let secs = start.elapsed().as_secs_f64();
    let len = ids.size()[1];
    println!("tiny model: forward of one multimodal prompt ({len} tokens, {pads} image tokens) on CPU: {secs:.3} s");
    assert_eq!(logits.size(), vec![1, len, model.config.text_config.vocab_size as i64]);
    assert!(bool::try_from(logits.isfinite().all()).unwrap());

    // A corrupt blob is caught by the sha256 check, naming the file; installing again repairs it.
    let (_, sha, _) = ra.files.iter().find(|(f, _, _)| f == "tokenizer.json").unwrap();
    let blob = repo_dir.join("blobs").join(sha);
    let mut bytes = std::fs::read(&blob).unwrap();
    bytes[10] ^= 1;
    std::fs::write(&blob, bytes).unwrap();
    let err = format!("{:#}", hub.fetch(&ra.hub_repo(), "tokenizer.json").unwrap_err());
    assert!(err.contains("sha256 mismatch for tokenizer.json") && err.contains(TINY_REPO_ID), "{err}");
    let repaired = install(&spec, a.path()).unwrap();
    let written: Vec<&str> = repaired.files.iter().filter(|(_, _, w)| *w).map(|(f, _, _)| f.as_str()).collect();
    assert_eq!(written, vec!["tokenizer.json"]);
    hub.fetch(&ra.hub_repo(), "tokenizer.json").unwrap();
}

#[test]
fn tokenizer_fits_the_synthetic_corpus() {
    let spec = small();
    let docs = corpus(&spec).unwrap();
    let trained = train_bpe(&docs, &spec.bpe).unwrap();
    let tok = trained.tokenizer().unwrap();
    let mut tokens = 0;
    for doc in &docs {
        let ids = tok.encode(doc, false).unwrap();
        assert_eq!(tok.decode(&ids, false).unwrap(), *doc, "lossless");
        tokens += ids.len();
    }
    let bytes: usize = docs.iter().map(String::len).sum();
    println!("tiny tokenizer: {} tokens, {tokens} tokens for {bytes} corpus bytes", trained.vocab_size);
    assert!(tokens * 2 < bytes);
    let cfg = tiny_config(&spec.arch, &tok).unwrap();
    assert_eq!(cfg.text_config.vocab_size % VOCAB_MULTIPLE, 0);
    assert_eq!(cfg.image_token_id, i64::from(tok.token_id("<|image_pad|>").unwrap()));
    assert_eq!(tok.special().endoftext as usize, trained.learned_vocab);
    assert_eq!(tok.special().video_pad as usize, trained.learned_vocab + SPECIAL_TOKENS.len() - 1);
    assert_eq!(cfg.text_config.mrope_section(), vec![4, 6, 6]);
    assert_eq!(cfg.vision_config.fullatt_block_indexes, vec![3]);
}

#[test]
fn initialisation_follows_hf_init_weights() {
    let _g = tch::no_grad_guard();
    let spec = small();
    let trained = train_bpe(&corpus(&spec).unwrap(), &spec.bpe).unwrap();
    let cfg = tiny_config(&spec.arch, &trained.tokenizer().unwrap()).unwrap();
    let init = |seed| {
        let vs = nn::VarStore::new(Device::Cpu);
        let _m = Qwen2_5_VL::new(&vs.root(), &cfg).unwrap();
        init_weights(&vs, &cfg, seed).unwrap();
        vs
    };
    let (a, b, c) = (init(3), init(3), init(4));
    let (va, vb, vc) = (a.variables(), b.variables(), c.variables());
    for (name, t) in &va {
        assert!(t.equal(&vb[name]), "{name}: same seed, different values");
        if name.ends_with(".bias") {
            assert_eq!(t.abs().max().double_value(&[]), 0.0, "{name}");
        } else if t.dim() == 1 {
            assert!(t.eq(1.0).all().int64_value(&[]) == 1, "{name}");
        } else {
            assert!(!t.equal(&vc[name]), "{name}: the seed changes the draw");
            let std = t.std(true).double_value(&[]);
            let mean = t.mean(Kind::Float).double_value(&[]);
            let want = if name.starts_with("visual.") {
                cfg.vision_config.initializer_range
            } else {
                cfg.text_config.initializer_range
            };
            assert!((std - want).abs() < 0.1 * want && mean.abs() < 0.1 * want, "{name}: mean {mean}, std {std}");
        }
    }
    assert!(va.contains_key("visual.patch_embed.proj.weight") && va.contains_key("model.embed_tokens.weight"));
    assert_eq!(
        (cfg.vision_config.initializer_range, cfg.text_config.initializer_range),
        (INITIALIZER_RANGE, INITIALIZER_RANGE)
    );
}

#[test]
fn box_muller_draws_are_standard_normal() {
    let v = normals(seed::rng(0, SeedDomain::Init, 0, 0, 0), 20001, 1.0);
    assert_eq!(v.len(), 20001);
    let n = v.len() as f64;
    let mean = v.iter().map(|&x| x as f64).sum::<f64>() / n;
    let var = v.iter().map(|&x| (x as f64 - mean).powi(2)).sum::<f64>() / n;
    let within_1 = v.iter().filter(|x| x.abs() < 1.0).count() as f64 / n;
    assert!(
        mean.abs() < 0.03 && (var - 1.0).abs() < 0.03 && (within_1 - 0.6827).abs() < 0.01,
        "{mean} {var} {within_1}"
    );
}

#[test]
fn content_revision_is_order_free_and_content_bound() {
    let a = vec![("a".to_string(), "1".repeat(64)), ("b".to_string(), "2".repeat(64))];
    let b = vec![a[1].clone(), a[0].clone()];
    assert_eq!(content_revision(&a), content_revision(&b));
    assert_eq!(content_revision(&a).len(), 40);
    let c = vec![a[0].clone(), ("b".to_string(), "3".repeat(64))];
    assert_ne!(content_revision(&a), content_revision(&c));
}

#[test]
fn normals_read_the_stream_as_next_u64_words() {
    let mut rng = seed::rng(5, SeedDomain::Init, 0, 1, 0);
    let (k1, k2) = (rng.next_u64(), rng.next_u64());
    let u1 = 1.0 - (k1 >> 11) as f64 / (1u64 << 53) as f64;
    let u2 = (k2 >> 11) as f64 / (1u64 << 53) as f64;
    let z0 = ((-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos() * 0.5) as f32;
    assert_eq!(normals(seed::rng(5, SeedDomain::Init, 0, 1, 0), 3, 0.5)[0], z0);
}
