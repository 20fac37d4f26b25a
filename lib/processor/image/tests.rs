//! Unit tests of the image processor; parity with transformers is in `tests/processor_parity.rs`.
use ::image::{ImageBuffer, Luma, Rgb};
use tch::{Kind, Tensor};

use super::*;

fn fixture_config() -> ImageProcessorConfig {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/processor/preprocessor_config.json");
    ImageProcessorConfig::from_file(&path).unwrap()
}

#[test]
fn smart_resize_rounds_half_to_even_like_python() {
    let cases = [(42, 56), (70, 56), (98, 112), (126, 112), (154, 168), (182, 168)];
    for (side, want) in cases {
        let (h, _) = smart_resize(side, 280, 28, DEFAULT_MIN_PIXELS, DEFAULT_MAX_PIXELS).unwrap();
        assert_eq!(h, want, "{side}");
    }
}

#[test]
fn smart_resize_clamps_and_rejects() {
    assert_eq!(smart_resize(9, 13, 28, 1568, 6272).unwrap(), (56, 56));
    assert_eq!(smart_resize(700, 1000, 28, 1568, 6272).unwrap(), (56, 84));
    assert_eq!(smart_resize(1, 200, 28, DEFAULT_MIN_PIXELS, DEFAULT_MAX_PIXELS).unwrap(), (28, 812));
    let err = smart_resize(1, 201, 28, DEFAULT_MIN_PIXELS, DEFAULT_MAX_PIXELS).unwrap_err().to_string();
    assert!(err.contains("aspect ratio must be smaller than 200"), "{err}");
    assert!(smart_resize(0, 5, 28, 1, 10).unwrap_err().to_string().contains("zero side"));
}

#[test]
fn config_files_parse_in_both_spellings() {
    let cfg = fixture_config();
    assert_eq!((cfg.min_pixels(), cfg.max_pixels(), cfg.factor()), (1568, 6272, 28));
    // Published Qwen2.5-VL-7B-Instruct style: top-level bounds, no size dict.
    let published = r#"{"min_pixels": 3136, "max_pixels": 12845056, "patch_size": 14, "temporal_patch_size": 2,
        "merge_size": 2, "image_mean": [0.48145466, 0.4578275, 0.40821073],
        "image_std": [0.26862954, 0.26130258, 0.27577711], "image_processor_type": "Qwen2VLImageProcessor",
        "processor_class": "Qwen2_5_VLProcessor"}"#;
    let p = ImageProcessorConfig::parse(published, "published").unwrap();
    assert_eq!((p.min_pixels(), p.max_pixels()), (3136, 12845056));
    // Top-level bounds win over the size dict, as in transformers.
    let both = r#"{"min_pixels": 200704, "size": {"min_pixels": 3136, "max_pixels": 12845056}}"#;
    let b = ImageProcessorConfig::parse(both, "both").unwrap();
    assert_eq!((b.min_pixels(), b.max_pixels()), (200704, 12845056));
    // serde_json must parse these decimals exactly as Rust (and Python) do.
    assert_eq!(cfg.image_mean, OPENAI_CLIP_MEAN.to_vec());
    assert_eq!(cfg.image_std, OPENAI_CLIP_STD.to_vec());
    assert_eq!(cfg.rescale_factor, 1.0 / 255.0);
    assert_eq!(ImageProcessorConfig::default(), ImageProcessorConfig::parse("{}", "x").unwrap());
}

#[test]
fn config_errors_name_the_key_and_file() {
    let err = format!("{:#}", ImageProcessorConfig::parse(r#"{"min_pixel": 3136}"#, "pp.json").unwrap_err());
    assert!(err.contains("pp.json") && err.contains("min_pixel"), "{err}");
    let err = format!("{:#}", ImageProcessorConfig::parse(r#"{"resample": 2}"#, "pp.json").unwrap_err());
    assert!(err.contains("resample 2 is not supported"), "{err}");
    let err = format!("{:#}", ImageProcessorConfig::parse(r#"{"min_pixels": 9, "max_pixels": 8}"#, "x").unwrap_err());
    assert!(err.contains("min_pixels 9 exceeds max_pixels 8"), "{err}");
}

/// The flattening written as transformers writes it (reshape + transpose + broadcast), with tch ops.
fn reference_patches(img: &RgbImage, cfg: &ImageProcessorConfig) -> Tensor {
    let (h, w) = (img.height() as i64, img.width() as i64);
    let (p, m, t) = (cfg.patch_size as i64, cfg.merge_size as i64, cfg.temporal_patch_size as i64);
    let chw = Tensor::from_slice(img.as_raw()).to_kind(Kind::Float).view([h, w, 3]).permute([2, 0, 1]);
    let (gh, gw) = (h / p, w / p);
    let x = chw.reshape([3, gh / m, m, p, gw / m, m, p]).permute([1, 4, 2, 5, 0, 3, 6]);
    let x = x.unsqueeze(5).expand([gh / m, gw / m, m, m, 3, t, p, p], false);
    x.reshape([gh * gw, 3 * t * p * p])
}

#[test]
fn flattening_order_matches_transformers_reshape() {
    let mut cfg = fixture_config();
    cfg.do_rescale = false;
    cfg.do_normalize = false;
    let img = RgbImage::from_fn(56, 84, |x, y| Rgb([(x * 3 + y) as u8, (x + 7 * y) as u8, ((x * y) % 251) as u8]));
    let out = cfg.preprocess(std::slice::from_ref(&img)).unwrap();
    assert_eq!(out.grids, vec![[1, 6, 4]]);
    assert_eq!(out.pixel_values.size(), vec![24, 1176]);
    let want = reference_patches(&img, &cfg);
    assert_eq!((&out.pixel_values - &want).abs().max().double_value(&[]), 0.0);
    assert_eq!(num_image_tokens(out.grids[0], cfg.merge_size), 6);
}

#[test]
fn normalisation_is_f32_like_numpy() {
    let cfg = fixture_config();
    let img = RgbImage::from_pixel(28, 28, Rgb([0, 128, 255]));
    let (v, _) = cfg.patches(&img).unwrap();
    for (c, u) in [0u8, 128, 255].into_iter().enumerate() {
        let x = (f64::from(u) / 255.0) as f32;
        let want = (x - OPENAI_CLIP_MEAN[c] as f32) / OPENAI_CLIP_STD[c] as f32;
        assert_eq!(v[c * 2 * 196], want);
    }
}

#[test]
fn batches_concatenate_and_grids_follow_each_image() {
    let cfg = fixture_config();
    let a = RgbImage::from_pixel(45, 67, Rgb([10, 20, 30]));
    let b = RgbImage::from_pixel(700, 1000, Rgb([1, 2, 3]));
    let out = cfg.preprocess(&[a, b]).unwrap();
    assert_eq!(out.grids, vec![[1, 4, 4], [1, 6, 4]]);
    assert_eq!(out.pixel_values.size(), vec![40, 1176]);
    assert_eq!(Vec::<i64>::try_from(out.image_grid_thw.view([-1])).unwrap(), vec![1, 4, 4, 1, 6, 4]);
    assert!(cfg.preprocess(&[]).is_err());
}

#[test]
fn sixteen_bit_images_reduce_like_pil() {
    let rgb16 = ImageBuffer::<Rgb<u16>, Vec<u16>>::from_raw(2, 1, vec![0x12ff, 0x3480, 0x567f, 0xffff, 0x80, 0x7f]);
    let out = to_rgb_like_pil(DynamicImage::ImageRgb16(rgb16.unwrap()));
    assert_eq!(out.as_raw(), &vec![18, 52, 86, 255, 0, 0]);
    let grey = ImageBuffer::<Luma<u16>, Vec<u16>>::from_raw(3, 1, vec![4863, 200, 256]).unwrap();
    let out = to_rgb_like_pil(DynamicImage::ImageLuma16(grey));
    assert_eq!(out.as_raw(), &vec![255, 255, 255, 200, 200, 200, 255, 255, 255]);
}

#[test]
fn broken_images_are_errors_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let broken = dir.path().join("broken_photo.png");
    std::fs::write(&broken, b"\x89PNG\r\n\x1a\n\0\0\0\rIHDRgarbage").unwrap();
    let err = format!("{:#}", load_image(&broken).unwrap_err());
    assert!(err.contains("broken_photo.png") && err.contains("decoding image"), "{err}");
    let err = format!("{:#}", load_image(&dir.path().join("missing.jpg")).unwrap_err());
    assert!(err.contains("missing.jpg"), "{err}");
    let err = format!("{:#}", load_image_bytes(b"not an image", "row 17").unwrap_err());
    assert!(err.contains("row 17"), "{err}");
    let err = format!("{:#}", fixture_config().preprocess_files(&[broken]).unwrap_err());
    assert!(err.contains("broken_photo.png"), "{err}");
}

#[test]
fn image_pads_expand_in_order_across_the_batch() {
    let texts = vec![
        "<|vision_start|><|image_pad|><|vision_end|>a<|vision_start|><|image_pad|><|vision_end|>".to_string(),
        "no image".to_string(),
        "<|image_pad|>".to_string(),
    ];
    let out = expand_image_pads(&texts, &[[1, 4, 6], [1, 2, 2], [1, 4, 4]], 2).unwrap();
    assert_eq!(
        out[0],
        format!("<|vision_start|>{}<|vision_end|>a<|vision_start|>{IMAGE_PAD}<|vision_end|>", IMAGE_PAD.repeat(6))
    );
    assert_eq!(out[1], "no image");
    assert_eq!(out[2], IMAGE_PAD.repeat(4));
    let err = expand_image_pads(&texts, &[[1, 4, 6]], 2).unwrap_err().to_string();
    assert!(err.contains("3 <|image_pad|> placeholders but 1 images"), "{err}");
}
