//! A user's picture to a CIFAR image: RGBA of any size to planar `3 x 32 x 32` `u8`.
//!
//! The largest centred square is cropped (CIFAR images are square and centred on the object),
//! transparent pixels are composited over white, and the square is resampled to 32 x 32 by area
//! averaging: output pixel `(x, y)` is the mean of the source area it covers, with fractional
//! weights at the borders, which is exact for downscaling and never aliases.

use super::SIDE;
use crate::error::{Error, Result};

/// Largest picture accepted (in pixels): 64 megapixels is 256 MB of RGBA.
pub const MAX_PIXELS: u64 = 64 << 20;

/// RGBA bytes (`width * height * 4`, rows top to bottom) to a planar `C, H, W` image of 32 x 32.
pub fn rgba_to_chw(rgba: &[u8], width: u32, height: u32) -> Result<Vec<u8>> {
    let (w, h) = (width as usize, height as usize);
    let what = "picture";
    if w == 0 || h == 0 {
        return Err(Error::format(what, None, format!("empty picture ({width}x{height})")));
    }
    if width as u64 * height as u64 > MAX_PIXELS {
        return Err(Error::format(what, None, format!("{width}x{height} is larger than {MAX_PIXELS} pixels")));
    }
    if rgba.len() != w * h * 4 {
        return Err(Error::format(
            what,
            None,
            format!("{} bytes for {width}x{height} RGBA (expected {})", rgba.len(), w * h * 4),
        ));
    }
    let side = w.min(h);
    let (x0, y0) = ((w - side) / 2, (h - side) / 2);
    // Weights of source rows/columns [0, side) for each of the 32 output rows/columns.
    let spans = coverage(side);
    let mut out = vec![0u8; 3 * SIDE * SIDE];
    for (oy, ys) in spans.iter().enumerate() {
        for (ox, xs) in spans.iter().enumerate() {
            let mut acc = [0.0f64; 3];
            let mut total = 0.0f64;
            for &(sy, wy) in ys {
                let row = (y0 + sy) * w;
                for &(sx, wx) in xs {
                    let p = &rgba[(row + x0 + sx) * 4..][..4];
                    let alpha = p[3] as f64 / 255.0;
                    for c in 0..3 {
                        // Composite over white: c * a + 255 * (1 - a).
                        acc[c] += wx * wy * (p[c] as f64 * alpha + 255.0 * (1.0 - alpha));
                    }
                    total += wx * wy;
                }
            }
            for c in 0..3 {
                out[c * SIDE * SIDE + oy * SIDE + ox] = (acc[c] / total).round().clamp(0.0, 255.0) as u8;
            }
        }
    }
    Ok(out)
}

/// For each output index `0..32`, the source indices it covers in `[0, side)` with their overlap.
fn coverage(side: usize) -> Vec<Vec<(usize, f64)>> {
    let scale = side as f64 / SIDE as f64;
    (0..SIDE)
        .map(|o| {
            let (lo, hi) = (o as f64 * scale, (o + 1) as f64 * scale);
            let first = lo.floor() as usize;
            let last = (hi.ceil() as usize).min(side).max(first + 1);
            (first..last).map(|s| (s, (hi.min(s as f64 + 1.0) - lo.max(s as f64)).max(1e-9))).collect()
        })
        .collect()
}

/// Planar `C, H, W` (as stored in a bundle) to RGBA for display.
pub fn chw_to_rgba(chw: &[u8]) -> Vec<u8> {
    let n = SIDE * SIDE;
    let mut out = vec![255u8; n * 4];
    for p in 0..n {
        for c in 0..3 {
            out[p * 4 + c] = chw[c * n + p];
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn solid(w: u32, h: u32, px: [u8; 4]) -> Vec<u8> {
        px.iter().copied().cycle().take((w * h * 4) as usize).collect()
    }

    #[test]
    fn a_32x32_picture_is_copied_exactly() {
        let rgba: Vec<u8> = (0..32 * 32 * 4).map(|i| (i * 7 % 251) as u8).collect();
        let rgba: Vec<u8> = rgba.chunks(4).flat_map(|p| [p[0], p[1], p[2], 255]).collect();
        let chw = rgba_to_chw(&rgba, 32, 32).unwrap();
        assert_eq!(chw_to_rgba(&chw), rgba);
    }

    #[test]
    fn downscaling_averages_areas_and_crops_the_centre() {
        // 96x64: the centred 64x64 square is columns 16..80. Left half red, right half blue within
        // the crop means output columns 0..16 red, 16..32 blue.
        let (w, h) = (96u32, 64u32);
        let mut rgba = Vec::new();
        for _y in 0..h {
            for x in 0..w {
                rgba.extend(if x < 48 { [255, 0, 0, 255] } else { [0, 0, 255, 255] });
            }
        }
        let chw = rgba_to_chw(&rgba, w, h).unwrap();
        assert_eq!((chw[0], chw[2048]), (255, 0)); // column 0: red
        assert_eq!((chw[31], chw[2048 + 31]), (0, 255)); // column 31: blue
        // Odd sizes: a uniform picture stays uniform.
        let grey = rgba_to_chw(&solid(37, 53, [100, 150, 200, 255]), 37, 53).unwrap();
        assert!(grey[..1024].iter().all(|&v| v == 100) && grey[2048..].iter().all(|&v| v == 200));
    }

    #[test]
    fn transparency_is_white_and_bad_sizes_are_refused() {
        let chw = rgba_to_chw(&solid(8, 8, [0, 0, 0, 0]), 8, 8).unwrap();
        assert!(chw.iter().all(|&v| v == 255));
        assert!(rgba_to_chw(&[0; 10], 2, 2).unwrap_err().to_string().contains("10 bytes for 2x2"));
        assert!(rgba_to_chw(&[], 0, 5).is_err());
        assert!(rgba_to_chw(&[], 1 << 14, 1 << 14).unwrap_err().to_string().contains("larger than"));
    }
}
