//! Image inputs of Qwen2-VL / Qwen2.5-VL exactly as transformers 5.17's PIL-based `Qwen2VLImageProcessorPil`
//! makes them (called `Qwen2VLImageProcessor` before transformers 5; the processor the papers' training
//! frameworks used). For each image: decode, convert to RGB as PIL's `convert("RGB")` does, [`smart_resize`]
//! to multiples of `patch_size * merge_size` within `[min_pixels, max_pixels]`, resize with Pillow's bicubic
//! filter ([`super::resample`]), rescale by `rescale_factor` (in f64, then f32), normalise with
//! `image_mean`/`image_std` (in f32), repeat to `temporal_patch_size` frames and flatten into patches.
//!
//! `pixel_values` has one row per patch, `(sum of t*h*w, C * T * P * P)`; rows run over merge blocks
//! (`h/merge`, `w/merge`), then the `merge x merge` patches inside a block, and each row is laid out as
//! (channel, frame, y, x). `image_grid_thw` has one `[t, h, w]` row (in patches) per image; an image then takes
//! `t*h*w / merge_size^2` `<|image_pad|>` tokens ([`num_image_tokens`]).
//!
//! Measured against transformers 5.17 + Pillow 13.0 (`tests/processor_parity.rs`): bit-identical
//! `pixel_values` and `image_grid_thw` for PNG input (8/16-bit, RGB, RGBA, grey, palette); the torchvision-based
//! `Qwen2VLImageProcessor` (transformers 5's `AutoImageProcessor` default) differs from both by up to 0.2
//! (13 u8 levels, on the one fixture image that Pillow 13 resamples vertically first; 0.057 on the JPEG; 1 level,
//! 0.015, on the others). Notes:
//! - no EXIF orientation is applied, as in transformers;
//! - transformers 5.17's `smart_resize` accepts sides shorter than the factor (older 4.x releases raised an
//!   error); this module follows 5.17 and errs only on a zero side or an aspect ratio above 200;
//! - JPEG is decoded by the `image` crate (zune-jpeg), not libjpeg-turbo as in PIL: decoded pixels differ by
//!   up to 4 levels (mean 0.34 on a 4:2:0 file), `pixel_values` by up to 0.044; from the same decoded pixels the
//!   output is identical;
//! - 16-bit PNGs are reduced as PIL does: the high byte for RGB(A) and grey+alpha, clamping to 255 for grey.
use std::path::Path;

use ::image::{DynamicImage, RgbImage};
use anyhow::{Context, Result, anyhow, ensure};
use serde::{Deserialize, Serialize};
use tch::Tensor;

use super::resample::resize_bicubic;

/// transformers' `OPENAI_CLIP_MEAN` / `OPENAI_CLIP_STD`, the defaults of the Qwen2-VL processors.
pub const OPENAI_CLIP_MEAN: [f64; 3] = [0.48145466, 0.4578275, 0.40821073];
pub const OPENAI_CLIP_STD: [f64; 3] = [0.26862954, 0.26130258, 0.27577711];
/// Pillow's `Image.Resampling.BICUBIC`, the only filter implemented.
pub const PIL_BICUBIC: u32 = 3;

/// `preprocessor_config.json`, keys verbatim. Both spellings of the pixel bounds are read: top-level
/// `min_pixels` / `max_pixels` (published checkpoints) win over `size.shortest_edge` / `size.longest_edge`
/// (what transformers 5 writes), as in transformers. Unknown keys are errors.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImageProcessorConfig {
    #[serde(default = "d_true")]
    pub do_resize: bool,
    #[serde(default = "d_resample")]
    pub resample: u32,
    #[serde(default = "d_true")]
    pub do_rescale: bool,
    #[serde(default = "d_rescale_factor")]
    pub rescale_factor: f64,
    #[serde(default = "d_true")]
    pub do_normalize: bool,
    #[serde(default = "d_mean")]
    pub image_mean: Vec<f64>,
    #[serde(default = "d_std")]
    pub image_std: Vec<f64>,
    #[serde(default = "d_true")]
    pub do_convert_rgb: bool,
    #[serde(default = "d_patch_size")]
    pub patch_size: usize,
    #[serde(default = "d_two")]
    pub temporal_patch_size: usize,
    #[serde(default = "d_two")]
    pub merge_size: usize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_pixels: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_pixels: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<SizeSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_processor_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub processor_class: Option<String>,
}

/// The `size` dict: `shortest_edge`/`longest_edge` are pixel counts (transformers 5), older files used
/// `min_pixels`/`max_pixels`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SizeSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shortest_edge: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub longest_edge: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_pixels: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_pixels: Option<u64>,
}

fn d_true() -> bool {
    true
}
fn d_resample() -> u32 {
    PIL_BICUBIC
}
fn d_rescale_factor() -> f64 {
    1.0 / 255.0
}
fn d_mean() -> Vec<f64> {
    OPENAI_CLIP_MEAN.to_vec()
}
fn d_std() -> Vec<f64> {
    OPENAI_CLIP_STD.to_vec()
}
fn d_patch_size() -> usize {
    14
}
fn d_two() -> usize {
    2
}

/// transformers' defaults when neither spelling is given: 56*56 and 28*28*1280 pixels.
pub const DEFAULT_MIN_PIXELS: u64 = 56 * 56;
pub const DEFAULT_MAX_PIXELS: u64 = 28 * 28 * 1280;

/// The model inputs for a list of images.
#[derive(Debug)]
pub struct ImageInputs {
    /// `(sum of t*h*w, C * temporal_patch_size * patch_size^2)`, f32, CPU.
    pub pixel_values: Tensor,
    /// `(n_images, 3)`, i64, CPU: `[t, h, w]` in patches.
    pub image_grid_thw: Tensor,
    /// The same grids as plain values.
    pub grids: Vec<[i64; 3]>,
}

impl Default for ImageProcessorConfig {
    fn default() -> Self {
        serde_json::from_str("{}").expect("every field has a default")
    }
}

impl ImageProcessorConfig {
    /// Reads and validates a checkpoint's `preprocessor_config.json`.
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading the image processor config {}", path.display()))?;
        Self::parse(&text, &path.display().to_string())
    }

    /// Parses and validates; `origin` names the source in error messages.
    pub fn parse(json: &str, origin: &str) -> Result<Self> {
        let cfg: Self = serde_json::from_str(json).map_err(|e| {
            anyhow!(
                "{origin}: {e} (keys must be those of transformers' Qwen2VLImageProcessor preprocessor_config.json)"
            )
        })?;
        cfg.validate().with_context(|| format!("invalid image processor config {origin}"))?;
        Ok(cfg)
    }

    pub fn validate(&self) -> Result<()> {
        ensure!(
            self.resample == PIL_BICUBIC,
            "resample {} is not supported: only 3 (PIL BICUBIC), the Qwen2-VL default, is implemented",
            self.resample
        );
        ensure!(self.do_convert_rgb, "do_convert_rgb = false is not supported: images are always converted to RGB");
        ensure!(
            self.image_mean.len() == 3 && self.image_std.len() == 3,
            "image_mean and image_std need one value per RGB channel, got {} and {}",
            self.image_mean.len(),
            self.image_std.len()
        );
        ensure!(self.image_std.iter().all(|s| *s != 0.0), "image_std contains 0");
        ensure!(
            self.patch_size > 0 && self.merge_size > 0 && self.temporal_patch_size > 0,
            "patch_size, merge_size and temporal_patch_size must be positive"
        );
        ensure!(
            self.min_pixels() <= self.max_pixels(),
            "min_pixels {} exceeds max_pixels {}",
            self.min_pixels(),
            self.max_pixels()
        );
        Ok(())
    }

    pub fn min_pixels(&self) -> u64 {
        let size = self.size.as_ref();
        self.min_pixels.or(size.and_then(|s| s.shortest_edge.or(s.min_pixels))).unwrap_or(DEFAULT_MIN_PIXELS)
    }

    pub fn max_pixels(&self) -> u64 {
        let size = self.size.as_ref();
        self.max_pixels.or(size.and_then(|s| s.longest_edge.or(s.max_pixels))).unwrap_or(DEFAULT_MAX_PIXELS)
    }

    /// Side lengths are made multiples of this (28 for Qwen2.5-VL).
    pub fn factor(&self) -> u32 {
        (self.patch_size * self.merge_size) as u32
    }

    /// `(height, width)` an image of this size is resized to.
    pub fn target_size(&self, height: u32, width: u32) -> Result<(u32, u32)> {
        if self.do_resize {
            return smart_resize(height, width, self.factor(), self.min_pixels(), self.max_pixels());
        }
        let f = self.factor();
        ensure!(
            height.is_multiple_of(f) && width.is_multiple_of(f),
            "do_resize = false needs sides that are multiples of {f}, got {height}x{width}"
        );
        Ok((height, width))
    }

    /// Flattened patches of one image (row-major `(t*h*w, C*T*P*P)`) and its `[t, h, w]` grid.
    pub fn patches(&self, img: &RgbImage) -> Result<(Vec<f32>, [i64; 3])> {
        let (h, w) = self.target_size(img.height(), img.width())?;
        let resized;
        let img = if (h, w) == (img.height(), img.width()) {
            img
        } else {
            resized = resize_bicubic(img, w, h);
            &resized
        };
        let (p, m, tp) = (self.patch_size, self.merge_size, self.temporal_patch_size);
        let (gh, gw) = (h as usize / p, w as usize / p);
        let mean: Vec<f32> = self.image_mean.iter().map(|&v| v as f32).collect();
        let std: Vec<f32> = self.image_std.iter().map(|&v| v as f32).collect();
        let value = |v: u8, c: usize| -> f32 {
            let mut x = if self.do_rescale { (f64::from(v) * self.rescale_factor) as f32 } else { f32::from(v) };
            if self.do_normalize {
                x = (x - mean[c]) / std[c];
            }
            x
        };
        let row_len = 3 * tp * p * p;
        let raw = img.as_raw();
        let width = w as usize;
        let mut out = vec![0f32; gh * gw * row_len];
        let mut rows = out.chunks_exact_mut(row_len);
        for bh in 0..gh / m {
            for bw in 0..gw / m {
                for mh in 0..m {
                    for mw in 0..m {
                        let row = rows.next().expect("one row per patch");
                        let (y0, x0) = ((bh * m + mh) * p, (bw * m + mw) * p);
                        for c in 0..3 {
                            for t in 0..tp {
                                for y in 0..p {
                                    for x in 0..p {
                                        let px = raw[((y0 + y) * width + x0 + x) * 3 + c];
                                        row[((c * tp + t) * p + y) * p + x] = value(px, c);
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        Ok((out, [1, gh as i64, gw as i64]))
    }

    /// `pixel_values` and `image_grid_thw` of several images, concatenated in order.
    pub fn preprocess(&self, images: &[RgbImage]) -> Result<ImageInputs> {
        ensure!(!images.is_empty(), "no images to preprocess");
        let mut values = Vec::new();
        let mut grids = Vec::with_capacity(images.len());
        for (i, img) in images.iter().enumerate() {
            let (v, g) = self.patches(img).with_context(|| format!("preprocessing image {i}"))?;
            values.extend_from_slice(&v);
            grids.push(g);
        }
        let row_len = (3 * self.temporal_patch_size * self.patch_size * self.patch_size) as i64;
        let n = values.len() as i64 / row_len;
        let flat: Vec<i64> = grids.iter().flatten().copied().collect();
        Ok(ImageInputs {
            pixel_values: Tensor::from_slice(&values).view([n, row_len]),
            image_grid_thw: Tensor::from_slice(&flat).view([grids.len() as i64, 3]),
            grids,
        })
    }

    /// Decodes the files and preprocesses them; errors name the file.
    pub fn preprocess_files<P: AsRef<Path>>(&self, paths: &[P]) -> Result<ImageInputs> {
        let images = paths.iter().map(|p| load_image(p.as_ref())).collect::<Result<Vec<_>>>()?;
        self.preprocess(&images)
    }
}

/// Number of `<|image_pad|>` tokens an image with this grid takes: `t*h*w / merge_size^2`.
pub fn num_image_tokens(grid_thw: [i64; 3], merge_size: usize) -> usize {
    (grid_thw[0] * grid_thw[1] * grid_thw[2]) as usize / (merge_size * merge_size)
}

/// The placeholder the chat template writes once per image (`<|vision_start|><|image_pad|><|vision_end|>`).
pub const IMAGE_PAD: &str = "<|image_pad|>";

/// Expands each `<|image_pad|>` of a batch of prompts into [`num_image_tokens`] copies, the i-th placeholder
/// (counting across the batch, in order) for the i-th image, as `Qwen2_5_VLProcessor.__call__` does.
/// Unlike transformers, which fails on surplus placeholders but leaves surplus images unused, any count
/// mismatch is an error.
pub fn expand_image_pads(texts: &[String], grids: &[[i64; 3]], merge_size: usize) -> Result<Vec<String>> {
    let found: usize = texts.iter().map(|t| t.matches(IMAGE_PAD).count()).sum();
    ensure!(
        found == grids.len(),
        "the prompts contain {found} {IMAGE_PAD} placeholders but {} images were given",
        grids.len()
    );
    let mut next = grids.iter();
    let out = texts
        .iter()
        .map(|text| {
            let mut parts = text.split(IMAGE_PAD);
            let mut expanded = parts.next().unwrap_or_default().to_string();
            for rest in parts {
                let grid = next.next().expect("counted above");
                expanded.push_str(&IMAGE_PAD.repeat(num_image_tokens(*grid, merge_size)));
                expanded.push_str(rest);
            }
            expanded
        })
        .collect();
    Ok(out)
}

/// transformers' `smart_resize`: the `(height, width)` closest to the input's aspect ratio whose sides are
/// multiples of `factor` and whose area lies in `[min_pixels, max_pixels]`. Rounds as Python does (`round`
/// is half-to-even, hence `round_ties_even`), and errs like it on an aspect ratio above 200.
pub fn smart_resize(height: u32, width: u32, factor: u32, min_pixels: u64, max_pixels: u64) -> Result<(u32, u32)> {
    ensure!(height > 0 && width > 0, "the image has a zero side ({height}x{width})");
    ensure!(factor > 0, "smart_resize factor must be positive");
    let (h, w, f) = (f64::from(height), f64::from(width), f64::from(factor));
    let ratio = h.max(w) / h.min(w);
    ensure!(ratio <= 200.0, "absolute aspect ratio must be smaller than 200, got {ratio} ({height}x{width})");
    let fu = u64::from(factor);
    let mut hb = (h / f).round_ties_even() as u64 * fu;
    let mut wb = (w / f).round_ties_even() as u64 * fu;
    let area = u64::from(height) * u64::from(width);
    if hb * wb > max_pixels {
        let beta = (area as f64 / max_pixels as f64).sqrt();
        hb = fu.max((h / beta / f).floor() as u64 * fu);
        wb = fu.max((w / beta / f).floor() as u64 * fu);
    } else if hb * wb < min_pixels {
        let beta = (min_pixels as f64 / area as f64).sqrt();
        hb = (h * beta / f).ceil() as u64 * fu;
        wb = (w * beta / f).ceil() as u64 * fu;
    }
    let side = |v: u64| u32::try_from(v).map_err(|_| anyhow!("smart_resize result {v} does not fit an image side"));
    Ok((side(hb)?, side(wb)?))
}

/// Decodes an image file (PNG or JPEG) into RGB as PIL's `Image.open(path).convert("RGB")` does.
pub fn load_image(path: &Path) -> Result<RgbImage> {
    let reader = ::image::ImageReader::open(path)
        .with_context(|| format!("opening image {}", path.display()))?
        .with_guessed_format()
        .with_context(|| format!("reading image {}", path.display()))?;
    let img = reader
        .decode()
        .with_context(|| format!("decoding image {} (corrupt, truncated or not a PNG/JPEG file?)", path.display()))?;
    Ok(to_rgb_like_pil(img))
}

/// Decodes an in-memory image (PNG or JPEG bytes, e.g. from a dataset); `name` is used in errors.
pub fn load_image_bytes(bytes: &[u8], name: &str) -> Result<RgbImage> {
    let img = ::image::load_from_memory(bytes)
        .with_context(|| format!("decoding image {name} (corrupt, truncated or not a PNG/JPEG file?)"))?;
    Ok(to_rgb_like_pil(img))
}

/// RGB conversion with PIL's results: alpha is dropped (not composited), grey is replicated, palettes are
/// expanded by the decoder; 16-bit RGB(A) and grey+alpha keep the high byte (PIL opens them as 8-bit
/// "RGB"/"RGBA"/"LA"), 16-bit grey is clamped to 255 (PIL's "I;16" to "RGB" conversion).
pub fn to_rgb_like_pil(img: DynamicImage) -> RgbImage {
    let (w, h) = (img.width(), img.height());
    let from = |samples: Vec<u8>| RgbImage::from_raw(w, h, samples).expect("3 samples per pixel");
    match img {
        DynamicImage::ImageRgb8(i) => i,
        DynamicImage::ImageRgb16(i) => from(i.as_raw().iter().map(|v| (v >> 8) as u8).collect()),
        DynamicImage::ImageRgba16(i) => {
            from(i.as_raw().chunks_exact(4).flat_map(|p| [p[0], p[1], p[2]]).map(|v| (v >> 8) as u8).collect())
        }
        DynamicImage::ImageLumaA16(i) => {
            from(i.as_raw().chunks_exact(2).flat_map(|p| [(p[0] >> 8) as u8; 3]).collect())
        }
        DynamicImage::ImageLuma16(i) => from(i.as_raw().iter().flat_map(|&v| [v.min(255) as u8; 3]).collect()),
        other => other.to_rgb8(),
    }
}

#[cfg(test)]
mod tests;
