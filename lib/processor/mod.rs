//! Turning raw inputs into model inputs the way HF `Qwen2_5_VLProcessor` does: images
//! (`smart_resize`, rescale, normalize, patch flattening, `image_grid_thw`), tokenizer and chat template.
//!
//! - [`image`]: decode, `smart_resize`, rescale/normalize, patch flattening (`pixel_values`, `image_grid_thw`),
//!   `<|image_pad|>` expansion.
//! - [`resample`]: Pillow's bicubic resize, bit-exact.
//! - [`tokenizer`]: `tokenizer.json` through the `tokenizers` crate, Qwen's special tokens by name.
//! - [`chat`]: the checkpoint's chat template (minijinja), pad expansion, tokenizing, left-padded batches.
pub mod chat;
pub mod image;
pub mod resample;
pub mod tokenizer;
pub mod train_bpe;

pub use self::image::{ImageInputs, ImageProcessorConfig, expand_image_pads, load_image, smart_resize};
