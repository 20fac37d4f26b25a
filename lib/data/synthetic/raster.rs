//! Integer-only rasterisation for the synthetic images: filled rectangles, circles and triangles,
//! thick lines and a built-in 5×7 bitmap font (digits, `A`–`H`, `-`). Every routine is pure integer
//! arithmetic over an `image::RgbImage`, so the same scene always gives the same pixels, and
//! [`encode_png`] gives the same bytes (the `png` encoder writes no timestamps).
use anyhow::{Context, Result};
use image::{ImageEncoder, Rgb, RgbImage};

pub const WHITE: Rgb<u8> = Rgb([255, 255, 255]);
pub const BLACK: Rgb<u8> = Rgb([20, 20, 20]);
pub const GREY: Rgb<u8> = Rgb([190, 190, 190]);

/// A white canvas of `w`×`h` pixels.
pub fn canvas(w: u32, h: u32) -> RgbImage {
    RgbImage::from_pixel(w, h, WHITE)
}

fn put(img: &mut RgbImage, x: i64, y: i64, c: Rgb<u8>) {
    if x >= 0 && y >= 0 && (x as u64) < img.width() as u64 && (y as u64) < img.height() as u64 {
        img.put_pixel(x as u32, y as u32, c);
    }
}

/// Fills the rectangle `[x0, x1) × [y0, y1)` (clipped to the image).
pub fn fill_rect(img: &mut RgbImage, x0: i64, y0: i64, x1: i64, y1: i64, c: Rgb<u8>) {
    for y in y0..y1 {
        for x in x0..x1 {
            put(img, x, y, c);
        }
    }
}

/// Fills the disc of radius `r` around `(cx, cy)`.
pub fn fill_circle(img: &mut RgbImage, cx: i64, cy: i64, r: i64, c: Rgb<u8>) {
    for y in cy - r..=cy + r {
        for x in cx - r..=cx + r {
            let (dx, dy) = (x - cx, y - cy);
            if dx * dx + dy * dy <= r * r {
                put(img, x, y, c);
            }
        }
    }
}

/// Fills the triangle with corners `p` (edge-function test over its bounding box; either winding).
pub fn fill_triangle(img: &mut RgbImage, p: [(i64, i64); 3], c: Rgb<u8>) {
    let edge = |a: (i64, i64), b: (i64, i64), x: i64, y: i64| (b.0 - a.0) * (y - a.1) - (b.1 - a.1) * (x - a.0);
    let (xmin, xmax) = (p.iter().map(|q| q.0).min().unwrap(), p.iter().map(|q| q.0).max().unwrap());
    let (ymin, ymax) = (p.iter().map(|q| q.1).min().unwrap(), p.iter().map(|q| q.1).max().unwrap());
    for y in ymin..=ymax {
        for x in xmin..=xmax {
            let e = [edge(p[0], p[1], x, y), edge(p[1], p[2], x, y), edge(p[2], p[0], x, y)];
            if e.iter().all(|&v| v >= 0) || e.iter().all(|&v| v <= 0) {
                put(img, x, y, c);
            }
        }
    }
}

/// A line from `a` to `b` drawn with a square brush of side `t` (Bresenham).
pub fn line(img: &mut RgbImage, a: (i64, i64), b: (i64, i64), t: i64, c: Rgb<u8>) {
    let (mut x, mut y) = a;
    let (dx, dy) = ((b.0 - a.0).abs(), -(b.1 - a.1).abs());
    let (sx, sy) = (if a.0 < b.0 { 1 } else { -1 }, if a.1 < b.1 { 1 } else { -1 });
    let mut err = dx + dy;
    let h = t / 2;
    loop {
        fill_rect(img, x - h, y - h, x - h + t.max(1), y - h + t.max(1), c);
        if (x, y) == b {
            break;
        }
        let e2 = 2 * err;
        if e2 >= dy {
            err += dy;
            x += sx;
        }
        if e2 <= dx {
            err += dx;
            y += sy;
        }
    }
}

/// 5×7 glyphs, one byte per row, bit 4 = leftmost column.
fn glyph(ch: char) -> Option<[u8; 7]> {
    Some(match ch {
        '0' => [0x0E, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0E],
        '1' => [0x04, 0x0C, 0x04, 0x04, 0x04, 0x04, 0x0E],
        '2' => [0x0E, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1F],
        '3' => [0x1F, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0E],
        '4' => [0x02, 0x06, 0x0A, 0x12, 0x1F, 0x02, 0x02],
        '5' => [0x1F, 0x10, 0x1E, 0x01, 0x01, 0x11, 0x0E],
        '6' => [0x06, 0x08, 0x10, 0x1E, 0x11, 0x11, 0x0E],
        '7' => [0x1F, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08],
        '8' => [0x0E, 0x11, 0x11, 0x0E, 0x11, 0x11, 0x0E],
        '9' => [0x0E, 0x11, 0x11, 0x0F, 0x01, 0x02, 0x0C],
        'A' => [0x0E, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11],
        'B' => [0x1E, 0x11, 0x11, 0x1E, 0x11, 0x11, 0x1E],
        'C' => [0x0E, 0x11, 0x10, 0x10, 0x10, 0x11, 0x0E],
        'D' => [0x1C, 0x12, 0x11, 0x11, 0x11, 0x12, 0x1C],
        'E' => [0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x1F],
        'F' => [0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x10],
        'G' => [0x0E, 0x11, 0x10, 0x17, 0x11, 0x11, 0x0F],
        'H' => [0x11, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11],
        '-' => [0x00, 0x00, 0x00, 0x1F, 0x00, 0x00, 0x00],
        ' ' => [0; 7],
        _ => return None,
    })
}

/// Width in pixels of `text` drawn at `scale` (6 columns per glyph including the gap, minus the last gap).
pub fn text_width(text: &str, scale: i64) -> i64 {
    (text.chars().count() as i64 * 6 - 1).max(0) * scale
}

/// Draws `text` with its top-left corner at `(x, y)`, each font pixel a `scale`×`scale` square.
/// Panics on a character outside the font (a bug in a generator, not an input error).
pub fn text(img: &mut RgbImage, x: i64, y: i64, scale: i64, s: &str, c: Rgb<u8>) {
    for (i, ch) in s.chars().enumerate() {
        let g = glyph(ch).unwrap_or_else(|| panic!("no glyph for {ch:?} in the built-in font"));
        let gx = x + i as i64 * 6 * scale;
        for (row, bits) in g.iter().enumerate() {
            for col in 0..5 {
                if bits & (0x10 >> col) != 0 {
                    let (px, py) = (gx + col * scale, y + row as i64 * scale);
                    fill_rect(img, px, py, px + scale, py + scale, c);
                }
            }
        }
    }
}

/// Draws `s` centred on `(cx, cy)`.
pub fn text_centered(img: &mut RgbImage, cx: i64, cy: i64, scale: i64, s: &str, c: Rgb<u8>) {
    text(img, cx - text_width(s, scale) / 2, cy - 7 * scale / 2, scale, s, c);
}

/// PNG bytes of `img` (default compression and filter: deterministic for equal pixels).
pub fn encode_png(img: &RgbImage) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    image::codecs::png::PngEncoder::new(&mut out)
        .write_image(img.as_raw(), img.width(), img.height(), image::ExtendedColorType::Rgb8)
        .context("encoding a synthetic image as PNG")?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_land_where_drawn() {
        let mut img = canvas(40, 40);
        fill_circle(&mut img, 10, 10, 4, BLACK);
        assert_eq!(*img.get_pixel(10, 10), BLACK);
        assert_eq!(*img.get_pixel(15, 10), WHITE);
        fill_triangle(&mut img, [(20, 20), (39, 20), (20, 39)], BLACK);
        assert_eq!(*img.get_pixel(22, 22), BLACK);
        assert_eq!(*img.get_pixel(38, 38), WHITE);
        line(&mut img, (0, 39), (39, 39), 1, GREY);
        assert_eq!(*img.get_pixel(30, 39), GREY);
        fill_rect(&mut img, -5, -5, 100, 2, GREY); // clipped, no panic
    }

    #[test]
    fn every_glyph_has_ink_and_text_is_sized() {
        for ch in "0123456789ABCDEFGH-".chars() {
            assert!(glyph(ch).unwrap().iter().any(|&r| r != 0), "{ch}");
        }
        assert_eq!(text_width("12", 2), 22);
        let mut img = canvas(30, 20);
        text(&mut img, 1, 1, 2, "7", BLACK);
        assert_eq!(*img.get_pixel(1, 1), BLACK); // top-left of the 7's bar
        let png = encode_png(&img).unwrap();
        assert_eq!(png, encode_png(&img).unwrap());
        assert_eq!(image::load_from_memory(&png).unwrap().width(), 30);
    }
}
