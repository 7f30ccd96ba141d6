//! Moving a picture: the shift of the translation test and the draws of data augmentation.
//!
//! Both act on the normalised tensor, one image `x: [3, 32, 32]` (a row of 3072 values, `C, H, W`).
//! The shift by `(dx, dy)` (right and down are positive) is
//! `out[c, y, x] = x[c, y - dy, x - dx]` where `0 <= y - dy < 32` and `0 <= x - dx < 32`, else 0:
//! zeros are the mean colour once normalised, so the picture moves and the mean colour fills
//! what it leaves (PyTorch: `F.pad` by the shift, then crop; tests/reference/shift_pytorch.py).
//! The flip is `out[c, y, x] = x[c, y, 31 - x]` (torchvision's `RandomHorizontalFlip`).
//!
//! Augmentation draws three 32-bit words per training image from a ChaCha8 generator of the run's
//! seed on its own stream ([`AUGMENT_STREAM`]), at word `3 (e n + p)` for the image at position `p`
//! of epoch `e`'s order over `n` training images: the draws depend on nothing else (not on the
//! batch size of a call, the thread count, or a resumed run), and `augment = none` draws nothing,
//! so a run without augmentation is what it was. From the words `w0, w1, w2`: flip when `w0` is
//! odd, `dx = floor(w1 (2K + 1) / 2^32) - K`, `dy` likewise from `w2`.

use super::{PIXELS, SIDE};
use crate::config::Augment;
use ndarray::ArrayViewMut2;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Seed stream of the augmentation draws (0 initial weights, 1 shuffling, 2 training subset).
pub const AUGMENT_STREAM: u64 = 3;
/// Words drawn per training image.
pub const WORDS_PER_IMAGE: u64 = 3;

/// The four directions of a shift by `k` pixels: right, left, down, up.
pub fn directions(k: i32) -> [(i32, i32); 4] {
    [(k, 0), (-k, 0), (0, k), (0, -k)]
}

/// `out` = `src` shifted by `(dx, dy)`, zeros shifted in (see the module docs); both `[3 * 32 * 32]`
/// (any number of planes of 32 x 32, in fact).
pub fn shift_image(src: &[f32], dx: i32, dy: i32, out: &mut [f32]) {
    shift_planes(src, SIDE, dx, dy, out);
}

/// [`shift_image`] for planes of `side x side` (feature maps too).
pub fn shift_planes(src: &[f32], side: usize, dx: i32, dy: i32, out: &mut [f32]) {
    assert_eq!(src.len(), out.len(), "shift: same sizes");
    let plane = side * side;
    let s = side as i32;
    // Columns of the output that come from inside: x - dx in 0..side.
    let (x0, x1) = ((dx.max(0)).min(s) as usize, (s + dx.min(0)).max(0) as usize);
    for (src, out) in src.chunks_exact(plane).zip(out.chunks_exact_mut(plane)) {
        for y in 0..side {
            let row = &mut out[y * side..][..side];
            let sy = y as i32 - dy;
            if !(0..s).contains(&sy) || x0 >= x1 {
                row.fill(0.0);
                continue;
            }
            let from = &src[sy as usize * side..][..side];
            row[..x0].fill(0.0);
            row[x1..].fill(0.0);
            let sx0 = (x0 as i32 - dx) as usize;
            row[x0..x1].copy_from_slice(&from[sx0..sx0 + (x1 - x0)]);
        }
    }
}

/// Flips every 32-pixel row of `x` left-right, in place.
pub fn flip_image(x: &mut [f32]) {
    for row in x.chunks_exact_mut(SIDE) {
        row.reverse();
    }
}

/// One image's draw: whether to flip, and the shift.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Draw {
    pub flip: bool,
    pub dx: i32,
    pub dy: i32,
}

/// A number in `-k..=k` from a word, `floor(w (2k + 1) / 2^32) - k` (no division, no rejection:
/// the same in every engine, and in a GPU kernel).
fn signed(w: u32, k: u8) -> i32 {
    ((u64::from(w) * (2 * u64::from(k) + 1)) >> 32) as i32 - i32::from(k)
}

/// The draws for the training images at positions `start..start + count` of epoch `epoch`'s
/// order over `n` images (see the module docs).
pub fn draws(a: Augment, seed: u64, epoch: usize, n: usize, start: usize, count: usize) -> Vec<Draw> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(AUGMENT_STREAM);
    rng.set_word_pos(u128::from(WORDS_PER_IMAGE) * (epoch as u128 * n as u128 + start as u128));
    (0..count)
        .map(|_| {
            let (w0, w1, w2) = (rng.next_u32(), rng.next_u32(), rng.next_u32());
            Draw {
                flip: a.flip && w0 & 1 == 1,
                dx: if a.shift > 0 { signed(w1, a.shift) } else { 0 },
                dy: if a.shift > 0 { signed(w2, a.shift) } else { 0 },
            }
        })
        .collect()
}

/// Augments a normalised batch `x: [B, 3072]` in place with [`draws`] for its positions
/// `start..start + B` of epoch `epoch` (over `n` images); nothing at all for `augment = none`.
pub fn augment_batch(a: Augment, seed: u64, epoch: usize, n: usize, start: usize, mut x: ArrayViewMut2<f32>) {
    if a.is_none() {
        return;
    }
    let mut scratch = vec![0.0f32; PIXELS];
    let d = draws(a, seed, epoch, n, start, x.nrows());
    for (mut row, d) in x.rows_mut().into_iter().zip(d) {
        let row = row.as_slice_mut().expect("batch rows are contiguous");
        if d.flip {
            flip_image(row);
        }
        if (d.dx, d.dy) != (0, 0) {
            scratch.copy_from_slice(row);
            shift_image(&scratch, d.dx, d.dy, row);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signed_covers_the_range_evenly() {
        // Formula: floor(w (2k+1) / 2^32) - k maps the 2^32 words onto 2k+1 equal intervals.
        assert_eq!(signed(0, 4), -4);
        assert_eq!(signed(u32::MAX, 4), 4);
        assert_eq!(signed(1 << 31, 4), 0);
    }

    #[test]
    fn shift_by_the_whole_side_is_all_zeros() {
        let src: Vec<f32> = (0..PIXELS).map(|i| i as f32 + 1.0).collect();
        let mut out = vec![1.0; PIXELS];
        shift_image(&src, 32, 0, &mut out);
        assert!(out.iter().all(|&v| v == 0.0));
        shift_image(&src, 0, -40, &mut out);
        assert!(out.iter().all(|&v| v == 0.0));
    }
}
