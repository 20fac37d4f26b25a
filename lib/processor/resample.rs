//! Pillow's `Image.resize(size, Image.Resampling.BICUBIC)` for 8-bit RGB, reproduced bit for bit.
//!
//! transformers' PIL-based Qwen2-VL image processor resizes through Pillow (`src/libImaging/Resample.c`,
//! `ImagingResample`, Pillow 13.0). Its algorithm, implemented here from that description:
//! - a separable convolution with the Keys cubic kernel (a = -0.5, support 2); when downscaling, the kernel is
//!   stretched by the scale factor (antialiasing), so its support covers `2 * in/out` input pixels per side;
//! - output pixel `i` is centred on input coordinate `(i + 0.5) * in/out`; its taps are the input pixels
//!   `[trunc(center - support + 0.5), trunc(center + support + 0.5))` clipped to the image, weighted by the
//!   kernel at `(x - center + 0.5) / filterscale` and normalised to sum 1, in f64;
//! - the weights are then rounded half away from zero to 22-bit fixed point, and each pass accumulates
//!   `u8 * weight` in an integer starting at `2^21`, shifts right by 22 and clamps to `0..=255`;
//! - each pass runs only if its side changes, with the u8 rounding in between; the horizontal pass runs first,
//!   except that Pillow 13 (python-pillow/Pillow#9549, "if height is scaled down significantly more than
//!   width, resize vertically first") starts with the vertical pass when `out_h < in_h` and
//!   `in_h - out_h > 2 * (in_w - out_w)`. That condition was established by probing Pillow 13.0 on 400 random
//!   size pairs (its C source was not at hand); the order changes results by up to 16 levels.
//!
//! The `image` crate's `CatmullRom` filter uses the same kernel but a float pipeline with its own centring
//! and no intermediate rounding; its difference from Pillow is measured in `tests/processor_parity.rs`.
use ::image::RgbImage;

const PRECISION_BITS: u32 = 32 - 8 - 2;
const SUPPORT: f64 = 2.0;

/// Keys' cubic convolution kernel with a = -0.5 (Pillow's BICUBIC).
fn bicubic(x: f64) -> f64 {
    const A: f64 = -0.5;
    let x = x.abs();
    if x < 1.0 {
        ((A + 2.0) * x - (A + 3.0)) * x * x + 1.0
    } else if x < 2.0 {
        (((x - 5.0) * x + 8.0) * x - 4.0) * A
    } else {
        0.0
    }
}

/// Fixed-point taps of one resampling direction: output `i` reads `count[i]` inputs from `first[i]` with
/// weights `weights[i * ksize..][..count[i]]`.
struct Taps {
    ksize: usize,
    first: Vec<usize>,
    count: Vec<usize>,
    weights: Vec<i32>,
}

fn taps(in_size: usize, out_size: usize) -> Taps {
    // Pillow computes the box width in f32 (`in1 - in0`), then divides in f64.
    let scale = f64::from(in_size as f32) / out_size as f64;
    let filterscale = scale.max(1.0);
    let support = SUPPORT * filterscale;
    let ksize = support.ceil() as usize * 2 + 1;
    let inv_filterscale = 1.0 / filterscale;
    let mut t = Taps { ksize, first: vec![0; out_size], count: vec![0; out_size], weights: vec![0; out_size * ksize] };
    let mut k = vec![0f64; ksize];
    for xx in 0..out_size {
        let center = (xx as f64 + 0.5) * scale;
        // C `(int)` truncates toward zero; negative starts are clamped to 0 anyway.
        let xmin = ((center - support + 0.5) as i64).max(0) as usize;
        let xmax = ((center + support + 0.5) as i64).min(in_size as i64) as usize;
        let n = xmax.saturating_sub(xmin);
        let mut ww = 0.0;
        for (x, kx) in k.iter_mut().enumerate().take(n) {
            let w = bicubic(((x + xmin) as f64 - center + 0.5) * inv_filterscale);
            *kx = w;
            ww += w;
        }
        let row = &mut t.weights[xx * ksize..xx * ksize + n];
        for (dst, &w) in row.iter_mut().zip(&k[..n]) {
            let w = if ww != 0.0 { w / ww } else { w };
            let fixed = w * f64::from(1u32 << PRECISION_BITS);
            *dst = if w < 0.0 { (-0.5 + fixed) as i32 } else { (0.5 + fixed) as i32 };
        }
        t.first[xx] = xmin;
        t.count[xx] = n;
    }
    t
}

fn clip8(acc: i64) -> u8 {
    (acc >> PRECISION_BITS).clamp(0, 255) as u8
}

/// One pass over interleaved RGB rows. `along_x`: resample within rows, else within columns.
fn pass(src: &[u8], width: usize, height: usize, out_len: usize, along_x: bool) -> Vec<u8> {
    let in_len = if along_x { width } else { height };
    let t = taps(in_len, out_len);
    let (ow, oh) = if along_x { (out_len, height) } else { (width, out_len) };
    let mut out = vec![0u8; ow * oh * 3];
    for y in 0..oh {
        for x in 0..ow {
            let i = if along_x { x } else { y };
            let ws = &t.weights[i * t.ksize..i * t.ksize + t.count[i]];
            for c in 0..3 {
                let mut acc: i64 = 1 << (PRECISION_BITS - 1);
                for (j, &w) in ws.iter().enumerate() {
                    let (sx, sy) = if along_x { (t.first[i] + j, y) } else { (x, t.first[i] + j) };
                    acc += i64::from(src[(sy * width + sx) * 3 + c]) * i64::from(w);
                }
                out[(y * ow + x) * 3 + c] = clip8(acc);
            }
        }
    }
    out
}

/// Resizes like Pillow's `image.resize((width, height), Image.Resampling.BICUBIC)` on an RGB image; a
/// same-size call returns a copy, as Pillow does. Both output sides must be positive.
pub fn resize_bicubic(img: &RgbImage, width: u32, height: u32) -> RgbImage {
    assert!(width > 0 && height > 0, "resize_bicubic: the output size {width}x{height} has a zero side");
    let (w0, h0) = (img.width() as usize, img.height() as usize);
    let (w1, h1) = (width as usize, height as usize);
    let mut buf = img.as_raw().clone();
    let vertical_first = h1 < h0 && (h0 - h1) as i64 > 2 * (w0 as i64 - w1 as i64);
    let (mut w, mut h) = (w0, h0);
    for along_x in if vertical_first { [false, true] } else { [true, false] } {
        if along_x && w1 != w {
            buf = pass(&buf, w, h, w1, true);
            w = w1;
        } else if !along_x && h1 != h {
            buf = pass(&buf, w, h, h1, false);
            h = h1;
        }
    }
    RgbImage::from_raw(width, height, buf).expect("buffer length matches the output size")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_values() {
        assert_eq!(bicubic(0.0), 1.0);
        assert_eq!(bicubic(1.0), 0.0);
        assert_eq!(bicubic(2.0), 0.0);
        assert_eq!(bicubic(0.5), 0.5625);
        assert_eq!(bicubic(-1.5), -0.0625);
    }

    #[test]
    fn weights_sum_to_one_in_fixed_point() {
        for (i, o) in [(45, 101), (700, 23), (9, 56), (56, 56), (1, 7), (7, 1)] {
            let t = taps(i, o);
            for xx in 0..o {
                let s: i32 = t.weights[xx * t.ksize..xx * t.ksize + t.count[xx]].iter().sum();
                assert!((s - (1 << PRECISION_BITS)).abs() <= t.count[xx] as i32, "{i}->{o} at {xx}: {s}");
                assert!(t.first[xx] + t.count[xx] <= i);
            }
        }
    }

    #[test]
    fn constant_images_stay_constant_and_same_size_is_a_copy() {
        let img = RgbImage::from_pixel(13, 9, ::image::Rgb([200, 3, 77]));
        for (w, h) in [(56, 28), (5, 3), (13, 40), (1, 1)] {
            let out = resize_bicubic(&img, w, h);
            assert!(out.pixels().all(|p| p.0 == [200, 3, 77]), "{w}x{h}");
        }
        let noisy = RgbImage::from_fn(6, 4, |x, y| ::image::Rgb([(x * 40) as u8, (y * 60) as u8, ((x * y) % 7) as u8]));
        assert_eq!(resize_bicubic(&noisy, 6, 4), noisy);
    }

    #[test]
    fn overshoot_is_clamped() {
        // A hard edge makes the negative lobes overshoot below 0 and above 255.
        let img = RgbImage::from_fn(8, 1, |x, _| ::image::Rgb(if x < 4 { [0; 3] } else { [255; 3] }));
        let out = resize_bicubic(&img, 24, 1);
        let row: Vec<u8> = out.pixels().map(|p| p.0[0]).collect();
        assert_eq!(&row[..4], &[0, 0, 0, 0]);
        assert_eq!(&row[20..], &[255, 255, 255, 255]);
    }
}
