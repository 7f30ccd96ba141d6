//! The translation test: how a model's answers and its first layer's response change when the
//! picture moves (the lecture's last slide: a fully connected network is not translation
//! invariant).
//!
//! For each shift `k` and each of the four directions `(dx, dy)` in `(k, 0), (-k, 0), (0, k),
//! (0, -k)`, every image `x` of a split is shifted on the normalised tensor, zeros shifted in
//! ([`crate::data::augment::shift_image`]), and
//! - `accuracy[k]` = the fraction of shifted images classified correctly, the mean over the four
//!   directions (at `k = 0`, one pass: exactly the ordinary validation accuracy);
//! - `similarity[k]` = the cosine similarity `<r(x), r'> / (|r(x)| |r'|)` of the first layer's
//!   response, per image, averaged over the images and the four directions. For an MLP,
//!   `r = tanh(W1 x + b1)` (`[n1]`, e.g. the 512 hidden units) and `r' = r(shift(x))`: the
//!   units see something else once the picture moves. With convolutions, `r` is `conv1`'s maps
//!   `[c1, 32, 32]` and `r'` the maps of the shifted picture shifted back by `(-dx, -dy)`,
//!   compared on the interior, the positions whose 3x3 window lies inside the picture both
//!   before and after the shift (`1 <= y, y + dy <= 30`, the same for `x`): a convolution is
//!   translation equivariant, so this is 1 up to rounding.
//!
//! Cost: `n (1 + 4 (K - 1))` forward passes for `K` shifts with `0` among them.

use crate::data::augment::{directions, shift_image, shift_planes};
use crate::data::{MEAN, Normalizer, PIXELS, STD, Split};
use crate::error::{Error, Result};
use crate::inspect::saliency::{Saliency, saliency_of_input};
use crate::loss::argmax;
use crate::model::Mlp;
use crate::train::EVAL_BATCH;
use ndarray::{Array2, ArrayView2, s};
use serde::Serialize;

/// The shifts of the page's curve, in pixels.
pub const PAGE_SHIFTS: [usize; 7] = [0, 1, 2, 3, 4, 6, 8];
/// Largest shift measured (a quarter of the picture).
pub const MAX_SHIFT: usize = 8;

/// The test's result, one entry per shift (the CLI's `--json` keys).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Translation {
    pub shift_px: Vec<usize>,
    /// Fractions from 0 to 1.
    pub shift_accuracy: Vec<f64>,
    pub shift_similarity: Vec<f64>,
}

/// Cosine similarity; two zero vectors are the same response (1), one zero vector is unlike
/// anything (0).
pub fn cosine(a: &[f32], b: &[f32]) -> f64 {
    let (mut ab, mut aa, mut bb) = (0.0f64, 0.0f64, 0.0f64);
    for (&x, &y) in a.iter().zip(b) {
        let (x, y) = (f64::from(x), f64::from(y));
        ab += x * y;
        aa += x * x;
        bb += y * y;
    }
    match (aa == 0.0, bb == 0.0) {
        (true, true) => 1.0,
        (true, false) | (false, true) => 0.0,
        _ => ab / (aa.sqrt() * bb.sqrt()),
    }
}

/// The similarity of one image's response `orig` and its shifted picture's `shifted` (see the
/// module docs): `side` is 0 for an MLP's hidden units, else the maps' side (`[C, side, side]`).
pub fn response_similarity(orig: &[f32], shifted: &[f32], side: usize, dx: i32, dy: i32) -> f64 {
    if side == 0 {
        return cosine(orig, shifted);
    }
    let mut back = vec![0.0; shifted.len()];
    shift_planes(shifted, side, -dx, -dy, &mut back);
    let s = side as i32;
    let inside = |v: i32, d: i32| (1..s - 1).contains(&v) && (1..s - 1).contains(&(v + d));
    let plane = side * side;
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for c in 0..orig.len() / plane {
        for y in (0..s).filter(|&y| inside(y, dy)) {
            for x in (0..s).filter(|&x| inside(x, dx)) {
                let i = c * plane + (y * s + x) as usize;
                a.push(orig[i]);
                b.push(back[i]);
            }
        }
    }
    cosine(&a, &b)
}

/// The side of the first layer's maps (0 for an MLP: its response has no geometry).
pub fn response_side(model: &Mlp) -> usize {
    model.features.as_ref().map_or(0, |f| f.blocks[0].conv.output().0)
}

/// Runs the test on `split` for the shifts `shifts` (each at most [`MAX_SHIFT`]) in one go:
/// [`TranslationRun`] to the end.
pub fn translation_test(model: &mut Mlp, split: &Split, norm: &Normalizer, shifts: &[usize]) -> Translation {
    let mut run = TranslationRun::new(model, split.len(), shifts);
    while !run.advance(model, split, norm, usize::MAX) {}
    run.result()
}

/// One step of a batch's plan: a forward pass of the batch as it is (which also serves `k = 0`)
/// or shifted, or the count for `k = 0`.
#[derive(Clone, Copy, Debug)]
enum Pass {
    Original,
    /// `k = 0`, shift number `.0`: the original pass's answers, counted again (no pass).
    Zero(usize),
    /// Shift number `.0` in the direction `(.1, .2)`.
    Shifted(usize, i32, i32),
}

/// The translation test as resumable work, for a caller that must stay responsive (the page's
/// worker answers other requests between two calls of [`TranslationRun::advance`]).
///
/// The test's unit of work is one forward pass of a batch of [`EVAL_BATCH`] images: the batch
/// itself, then, for each shift `k > 0`, its four shifted copies. The passes, their batches and
/// the order in which counts and similarities are summed are those of a run in one go, so the
/// result does not depend on how the work is sliced (bit for bit: `tests/translation.rs`).
/// `ceil(n / EVAL_BATCH) (1 + 4 (K - 1))` passes in all for `K` shifts with `0` among them.
pub struct TranslationRun {
    shifts: Vec<usize>,
    /// The passes of one batch, in order; the first is [`Pass::Original`].
    plan: Vec<Pass>,
    n: usize,
    side: usize,
    correct: Vec<usize>,
    sim: Vec<f64>,
    /// First image of the current batch, and the next pass of its plan.
    start: usize,
    next: usize,
    passes_done: usize,
    x: Array2<f32>,
    xs: Array2<f32>,
    y: Vec<u8>,
    /// The current batch's answers and first-layer responses, unshifted.
    out0: Array2<f32>,
    r0: Array2<f32>,
}

impl TranslationRun {
    /// A test of `model` over the `n` images of a split, for the shifts `shifts` (each at most
    /// [`MAX_SHIFT`]); nothing is computed yet.
    pub fn new(model: &Mlp, n: usize, shifts: &[usize]) -> Self {
        assert!(shifts.iter().all(|&k| k <= MAX_SHIFT), "shifts are at most {MAX_SHIFT} pixels");
        let mut plan = vec![Pass::Original];
        for (i, &k) in shifts.iter().enumerate() {
            if k == 0 {
                plan.push(Pass::Zero(i));
            } else {
                plan.extend(directions(k as i32).into_iter().map(|(dx, dy)| Pass::Shifted(i, dx, dy)));
            }
        }
        let x = Array2::zeros((EVAL_BATCH.min(n.max(1)), PIXELS));
        TranslationRun {
            shifts: shifts.to_vec(),
            plan,
            n,
            side: response_side(model),
            correct: vec![0; shifts.len()],
            sim: vec![0.0; shifts.len()],
            start: 0,
            next: 0,
            passes_done: 0,
            xs: x.clone(),
            x,
            y: Vec::with_capacity(EVAL_BATCH),
            out0: Array2::zeros((0, 0)),
            r0: Array2::zeros((0, 0)),
        }
    }

    /// Forward passes in all (a `k = 0` costs none of its own).
    pub fn passes_total(&self) -> usize {
        let per_batch = self.plan.iter().filter(|p| !matches!(p, Pass::Zero(_))).count();
        self.n.div_ceil(EVAL_BATCH) * per_batch
    }

    /// Forward passes made so far.
    pub fn passes_done(&self) -> usize {
        self.passes_done
    }

    /// Whether every image has been through every shift.
    pub fn done(&self) -> bool {
        self.start >= self.n
    }

    /// Makes at most `passes` forward passes (at least one, unless done) of `model` on `split`
    /// (the one of [`TranslationRun::new`], unchanged, as is the model); returns whether the
    /// test is over.
    pub fn advance(&mut self, model: &mut Mlp, split: &Split, norm: &Normalizer, passes: usize) -> bool {
        let mut made = 0;
        while !self.done() && made < passes.max(1) {
            let b = EVAL_BATCH.min(self.n - self.start);
            match self.plan[self.next] {
                Pass::Original => {
                    let idx: Vec<u32> = (self.start as u32..(self.start + b) as u32).collect();
                    split.gather(&idx, norm, self.x.slice_mut(s![..b, ..]), &mut self.y);
                    (self.out0, self.r0) = model.forward_and_response(self.x.slice(s![..b, ..]));
                    made += 1;
                }
                Pass::Zero(i) => {
                    self.correct[i] += count_correct(self.out0.view(), &self.y);
                    self.sim[i] += b as f64;
                }
                Pass::Shifted(i, dx, dy) => {
                    for (src, mut dst) in self.x.slice(s![..b, ..]).rows().into_iter().zip(self.xs.rows_mut()) {
                        let src = src.as_slice().expect("standard layout");
                        shift_image(src, dx, dy, dst.as_slice_mut().expect("standard layout"));
                    }
                    let (out, r) = model.forward_and_response(self.xs.slice(s![..b, ..]));
                    self.correct[i] += count_correct(out.view(), &self.y);
                    for (a, c) in self.r0.rows().into_iter().zip(r.rows()) {
                        let (a, c) = (a.as_slice().expect("row"), c.as_slice().expect("row"));
                        self.sim[i] += response_similarity(a, c, self.side, dx, dy);
                    }
                    made += 1;
                }
            }
            self.next += 1;
            if self.next == self.plan.len() {
                self.next = 0;
                self.start += b;
            }
        }
        self.passes_done += made;
        self.done()
    }

    /// The result (meaningful once [`TranslationRun::done`]).
    pub fn result(&self) -> Translation {
        let n = self.n;
        let per = |k: usize| if k == 0 { n.max(1) as f64 } else { 4.0 * n.max(1) as f64 };
        let shifts = &self.shifts;
        Translation {
            shift_px: shifts.clone(),
            shift_accuracy: shifts.iter().zip(&self.correct).map(|(&k, &c)| c as f64 / per(k)).collect(),
            shift_similarity: shifts.iter().zip(&self.sim).map(|(&k, &v)| v / per(k)).collect(),
        }
    }
}

fn count_correct(out: ArrayView2<f32>, y: &[u8]) -> usize {
    out.rows().into_iter().zip(y).filter(|(row, t)| argmax(*row) == **t as usize).count()
}

/// One picture, moved: what the page's shift control shows (see the module docs for the
/// similarity).
#[derive(Clone, Debug, PartialEq)]
pub struct ShiftView {
    pub dx: i32,
    pub dy: i32,
    /// The shifted input as the model sees it, turned back into pixel levels (`v = 255 (x std +
    /// mean)`, clamped), planar `[3 x 32 x 32]`: the shifted-in zeros show as the mean colour.
    pub image: Vec<u8>,
    /// "Why this answer?" for the shifted input (its probabilities are the prediction), for the
    /// class asked for or the predicted one.
    pub saliency: Saliency,
    /// The first layer's response to the original and to the shifted picture (rows of
    /// [`Mlp::forward_and_response`]: hidden units, or `conv1`'s maps `[c1, 32, 32]`).
    pub original: Vec<f32>,
    pub shifted: Vec<f32>,
    /// Their similarity (for `conv`, once shifted back, on the interior).
    pub similarity: f64,
    /// For `conv`: the side of `conv1`'s maps, and `conv2`'s maps (before pooling) of both
    /// pictures with their side; 0 and empty for an MLP.
    pub side: usize,
    pub second: Vec<f32>,
    pub second_shifted: Vec<f32>,
    pub second_side: usize,
}

/// The [`ShiftView`] of `image` (3072 planar bytes) shifted by `(dx, dy)` (each in
/// `-MAX_SHIFT..=MAX_SHIFT`), its saliency for `class` (default: the moved picture's answer).
pub fn shift_view(
    model: &mut Mlp,
    image: &[u8],
    norm: &Normalizer,
    (dx, dy): (i32, i32),
    class: Option<usize>,
) -> Result<ShiftView> {
    if image.len() != PIXELS {
        return Err(Error::Shape { what: "image".into(), expected: vec![PIXELS], actual: vec![image.len()] });
    }
    let m = MAX_SHIFT as i32;
    if !(-m..=m).contains(&dx) || !(-m..=m).contains(&dy) {
        return Err(Error::Config(format!("shift ({dx}, {dy}) is outside -{m}..={m} pixels")));
    }
    let mut x = Array2::zeros((2, PIXELS));
    norm.apply(image, x.row_mut(0).into_slice().expect("row"));
    let orig = x.row(0).to_vec();
    let mut moved = vec![0.0; PIXELS];
    shift_image(&orig, dx, dy, &mut moved);
    x.row_mut(1).assign(&ndarray::ArrayView1::from(&moved));
    let (_, r) = model.forward_and_response(x.view());
    let side = response_side(model);
    let (original, shifted) = (r.row(0).to_vec(), r.row(1).to_vec());
    let similarity = response_similarity(&original, &shifted, side, dx, dy);
    let (mut second, mut second_shifted, mut second_side) = (Vec::new(), Vec::new(), 0);
    if let Some(f) = &model.features
        && f.blocks.len() > 1
    {
        second_side = f.blocks[1].conv.output().0;
        let maps = model.feature_maps(x.view());
        second = maps[1].row(0).to_vec();
        second_shifted = maps[1].row(1).to_vec();
    }
    let saliency = saliency_of_input(model, x.slice(s![1..2, ..]), class)?;
    Ok(ShiftView {
        dx,
        dy,
        image: to_levels(&moved),
        saliency,
        original,
        shifted,
        similarity,
        side,
        second,
        second_shifted,
        second_side,
    })
}

/// Normalised values back to pixel levels, `round(255 (x std[c] + mean[c]))` clamped to `0..=255`.
pub fn to_levels(x: &[f32]) -> Vec<u8> {
    let plane = PIXELS / 3;
    x.iter()
        .enumerate()
        .map(|(i, &v)| {
            let c = i / plane;
            (255.0 * (v * STD[c] + MEAN[c])).round().clamp(0.0, 255.0) as u8
        })
        .collect()
}
