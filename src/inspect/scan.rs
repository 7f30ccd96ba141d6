//! One pass over the training images through the first layer: each unit's top activations, and a
//! compact copy of the hidden representation for nearest-neighbour queries.
//!
//! For the images `X: [n, 3072]` (normalised, in batches of [`EVAL_BATCH`] through the GEMM) the
//! first layer's pre-activations are `Z = X W1^T + b1: [n, units]` and its outputs
//! `H = act(Z)` (the model's activation, `tanh` for the presets).
//!
//! For a convolutional model the "first layer" is the first fully connected one after the
//! convolutions (the book's `fc1`): `Z = F(X) W1^T + b1` with `F(X): [n, 512]` the flattened
//! features ([`crate::model::features`], run forward-only in chunks), so `H = tanh(Z): [n, 32]`
//! is the 32-dimensional space in which the model's last layer separates the classes.
//!
//! *Top activations* are ranked on the pre-activation `z` (documented choice): `tanh` is monotonic,
//! so the order is the post-activation's, but `tanh` rounds to exactly `1.0` in `f32` from
//! `z ~ 9` on, which would make many images tie. Per unit: the `k` images with the largest `z`
//! (largest first) and the `k` with the most negative `z` (most negative first); ties go to the
//! smaller image index.
//!
//! *Nearest neighbours* in the first hidden layer's space (post-activation, Euclidean). Keeping
//! `H` itself would cost `4 n units` bytes (20 MB for 10,000 images and 512 units, 40 MB for
//! `deep`), too much for the page; the scan keeps each row quantised to `i8`:
//! `q_r = round(127 h_r / m_r)` with `m_r = max |h_r|`, 5 MB (10 MB). The result is still exact:
//! the quantisation error of row `r` is at most `e_r = sqrt(units) m_r / 254` in Euclidean norm, so
//! with the approximate distance `d'_r` to the query, the true distance lies in
//! `[d'_r - e_r, d'_r + e_r]`. If `U` is the `k`-th smallest upper bound, no image whose lower bound
//! exceeds `U` can be among the `k` nearest; the remaining candidates (typically a few more than
//! `k`) are recomputed exactly from their pixels and ranked by exact distance (ties: smaller index).

use crate::config::Activation;
use crate::data::{Normalizer, PIXELS, Split};
use crate::layers::activation;
use crate::model::Mlp;
use crate::model::features::Features;
use crate::train::EVAL_BATCH;
use ndarray::{Array2, ArrayView2, s};
use serde::Serialize;

/// The `k` best `(value, index)` pairs seen, best first, for one ranking direction.
/// `better(a, b)`: `a` ranks above `b`; equal values rank by the smaller index.
#[derive(Clone, Debug)]
pub struct TopK {
    k: usize,
    largest: bool,
    items: Vec<(f32, u32)>,
}

impl TopK {
    /// Keeps the `k` largest values (`largest`) or the `k` smallest.
    pub fn new(k: usize, largest: bool) -> TopK {
        TopK { k, largest, items: Vec::with_capacity(k + 1) }
    }

    fn better(&self, a: (f32, u32), b: (f32, u32)) -> bool {
        let ord = if self.largest { b.0.total_cmp(&a.0) } else { a.0.total_cmp(&b.0) };
        ord.then(a.1.cmp(&b.1)) == std::cmp::Ordering::Less
    }

    /// Offers one pair.
    #[inline]
    pub fn offer(&mut self, value: f32, index: u32) {
        if self.k == 0 {
            return;
        }
        if self.items.len() == self.k && !self.better((value, index), self.items[self.k - 1]) {
            return;
        }
        let pos = self.items.iter().position(|&it| self.better((value, index), it)).unwrap_or(self.items.len());
        self.items.insert(pos, (value, index));
        self.items.truncate(self.k);
    }

    /// `(value, index)` pairs, best first.
    pub fn items(&self) -> &[(f32, u32)] {
        &self.items
    }
}

/// The first layer's view of a set of training images (see the module documentation).
#[derive(Clone, Debug)]
pub struct FirstLayerScan {
    pub units: usize,
    /// Images ranked per unit and direction (`min(k, n)`).
    pub k: usize,
    /// The images scanned (indices in the split), ascending; row `r` below is image `images[r]`.
    pub images: Vec<u32>,
    /// `[units x k]`: per unit, the images of largest pre-activation, largest first.
    pub top: Vec<u32>,
    pub top_values: Vec<f32>,
    /// `[units x k]`: per unit, the images of most negative pre-activation, most negative first.
    pub bottom: Vec<u32>,
    pub bottom_values: Vec<f32>,
    /// `[n x units]` quantised hidden rows and their scales `m_r`.
    codes: Vec<i8>,
    code_scale: Vec<f32>,
}

/// One unit's top activations: image indices and pre-activations, best first.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct UnitActivations {
    pub top: Vec<u32>,
    pub top_values: Vec<f32>,
    pub bottom: Vec<u32>,
    pub bottom_values: Vec<f32>,
}

/// One of the nearest images.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Neighbour {
    pub index: u32,
    pub label: u8,
    pub distance: f32,
}

/// What stands before the first fully connected layer: nothing for an MLP, the convolutions for a
/// convolutional model (its own workspaces, so that `model` stays shared).
struct Front {
    features: Option<Features>,
    flat: Array2<f32>,
}

impl Front {
    fn of(model: &Mlp) -> Front {
        let features = model.features.as_ref().map(|_| Features::new(&model.config.conv, model.config.activation, 0));
        Front { features, flat: Array2::zeros((0, 0)) }
    }

    /// The first fully connected layer's input for the images `x: [rows, 3072]`: `x` itself, or
    /// the flattened features `[rows, flat]`.
    fn input<'a>(&'a mut self, model: &Mlp, x: ArrayView2<'a, f32>) -> ArrayView2<'a, f32> {
        let Some(f) = &mut self.features else { return x };
        let b = x.nrows();
        if self.flat.nrows() < b {
            self.flat = Array2::zeros((b, f.flat()));
        }
        f.forward(&model.params, x, self.flat.slice_mut(s![..b, ..]));
        self.flat.slice(s![..b, ..])
    }
}

/// The first hidden layer's output `act(x W1^T + b1)` for the rows of `x`: `[rows, units]` (for a
/// convolutional model, of its first fully connected layer, on the features of `x`).
pub fn hidden(model: &Mlp, x: ArrayView2<f32>) -> Array2<f32> {
    let first = &model.linears[0];
    let mut h = Array2::zeros((x.nrows(), first.out_features));
    let mut front = Front::of(model);
    first.forward(&model.params, front.input(model, x), h.view_mut());
    activate(model, &mut h);
    h
}

fn activate(model: &Mlp, h: &mut Array2<f32>) {
    // With no hidden layer the first layer is the output layer: its "units" are the logits.
    if model.linears.len() > 1 {
        match model.config.activation {
            Activation::Tanh => activation::tanh_forward(h.view_mut()),
            Activation::Relu => activation::relu_forward(h.view_mut()),
        }
    }
}

impl FirstLayerScan {
    /// Scans images `images` (ascending indices of `split`) through `model`'s first layer, keeping
    /// the `k` top and bottom images per unit and the quantised hidden rows.
    pub fn run(model: &Mlp, split: &Split, images: &[u32], norm: &Normalizer, k: usize) -> FirstLayerScan {
        let first = &model.linears[0];
        let units = first.out_features;
        let n = images.len();
        let k = k.min(n);
        let mut top: Vec<TopK> = (0..units).map(|_| TopK::new(k, true)).collect();
        let mut bottom: Vec<TopK> = (0..units).map(|_| TopK::new(k, false)).collect();
        let mut codes = vec![0i8; n * units];
        let mut code_scale = vec![0.0f32; n];
        let rows = EVAL_BATCH.min(n.max(1));
        let mut x = Array2::zeros((rows, PIXELS));
        let mut z = Array2::zeros((rows, units));
        let mut labels = Vec::with_capacity(rows);
        let mut front = Front::of(model);
        for (chunk_no, idx) in images.chunks(EVAL_BATCH).enumerate() {
            let b = idx.len();
            let mut xb = x.slice_mut(s![..b, ..]);
            split.gather(idx, norm, xb.view_mut(), &mut labels);
            let mut zb = z.slice_mut(s![..b, ..]);
            first.forward(&model.params, front.input(model, xb.view()), zb.view_mut());
            // Pre-activations: the rankings. Per unit only a threshold test for most images.
            for (row, &image) in zb.rows().into_iter().zip(idx) {
                for (j, &v) in row.iter().enumerate() {
                    top[j].offer(v, image);
                    bottom[j].offer(v, image);
                }
            }
            let mut hb = zb.to_owned();
            activate(model, &mut hb);
            let r0 = chunk_no * EVAL_BATCH;
            for (r, h) in hb.rows().into_iter().enumerate() {
                let (q, m) = quantise(h.as_slice().expect("row-major"));
                codes[(r0 + r) * units..(r0 + r + 1) * units].copy_from_slice(&q);
                code_scale[r0 + r] = m;
            }
        }
        let flat = |t: &[TopK]| -> (Vec<u32>, Vec<f32>) {
            let mut idx = Vec::with_capacity(units * k);
            let mut val = Vec::with_capacity(units * k);
            for u in t {
                for &(v, i) in u.items() {
                    idx.push(i);
                    val.push(v);
                }
            }
            (idx, val)
        };
        let (top, top_values) = flat(&top);
        let (bottom, bottom_values) = flat(&bottom);
        FirstLayerScan { units, k, images: images.to_vec(), top, top_values, bottom, bottom_values, codes, code_scale }
    }

    /// Unit `j`'s rankings, or `None` past the layer's units.
    pub fn unit(&self, j: usize) -> Option<UnitActivations> {
        if j >= self.units {
            return None;
        }
        let r = j * self.k..(j + 1) * self.k;
        Some(UnitActivations {
            top: self.top[r.clone()].to_vec(),
            top_values: self.top_values[r.clone()].to_vec(),
            bottom: self.bottom[r.clone()].to_vec(),
            bottom_values: self.bottom_values[r].to_vec(),
        })
    }

    /// The `k` images of the scan nearest to `query` (a hidden row from [`hidden`]) in the first
    /// hidden layer's space, nearest first, leaving out image `exclude` (the query itself when it
    /// is a training image). `model`, `split` and `norm` must be the scan's: the candidates are
    /// recomputed from their pixels.
    pub fn neighbours(
        &self,
        model: &Mlp,
        split: &Split,
        norm: &Normalizer,
        query: &[f32],
        k: usize,
        exclude: Option<u32>,
    ) -> Vec<Neighbour> {
        assert_eq!(query.len(), self.units, "query width");
        let units = self.units;
        let bound_per_scale = (units as f32).sqrt() / 254.0;
        // Approximate distances and their error bounds.
        let mut lower = Vec::with_capacity(self.images.len());
        // The k smallest upper bounds (TopK rather than a selection: one ranking routine in wasm).
        let mut upper = TopK::new(k, false);
        for (r, &image) in self.images.iter().enumerate() {
            if Some(image) == exclude {
                continue;
            }
            let m = self.code_scale[r];
            if !m.is_finite() {
                // A row too large for f32 arithmetic: no bound, always a candidate.
                lower.push((f32::NEG_INFINITY, r));
                upper.offer(f32::INFINITY, r as u32);
                continue;
            }
            let step = m / 127.0;
            let code = &self.codes[r * units..(r + 1) * units];
            let d2 = squared_distance(code, step, query);
            let d = d2.sqrt();
            // f32 rounding of the sum: a relative slack far above its error (units * 2^-24).
            let e = bound_per_scale * m + 1e-4 * (1.0 + d);
            lower.push((d - e, r));
            upper.offer(d + e, r as u32);
        }
        let Some(&(cut, _)) = upper.items().last() else {
            return Vec::new();
        };
        let candidates: Vec<u32> = lower.iter().filter(|(lo, _)| *lo <= cut).map(|&(_, r)| self.images[r]).collect();
        // Exact distances of the candidates, from their pixels.
        let mut exact: Vec<(f64, u32)> = Vec::with_capacity(candidates.len());
        let k = k.min(lower.len());
        let mut x = Array2::zeros((EVAL_BATCH.min(candidates.len()), PIXELS));
        let mut labels = Vec::new();
        for idx in candidates.chunks(EVAL_BATCH) {
            let mut xb = x.slice_mut(s![..idx.len(), ..]);
            split.gather(idx, norm, xb.view_mut(), &mut labels);
            let h = hidden(model, xb.view());
            for (row, &image) in h.rows().into_iter().zip(idx) {
                let d2: f64 = row.iter().zip(query).map(|(&a, &b)| (a as f64 - b as f64).powi(2)).sum();
                exact.push((d2.sqrt(), image));
            }
        }
        let mut order: Vec<u32> = (0..exact.len() as u32).collect();
        super::sort_indices(&mut order, &|a, b| {
            let (a, b) = (exact[a as usize], exact[b as usize]);
            a.0.total_cmp(&b.0).then(a.1.cmp(&b.1))
        });
        order
            .into_iter()
            .take(k)
            .map(|r| exact[r as usize])
            .map(|(d, i)| Neighbour { index: i, label: split.label(i as usize), distance: d as f32 })
            .collect()
    }
}

/// `sum_i (h_i - q_i step)^2` in 8 independent lanes (vectorised; a single f32 sum is not).
fn squared_distance(code: &[i8], step: f32, h: &[f32]) -> f32 {
    let mut lanes = [0.0f32; 8];
    let (cc, hc) = (code.chunks_exact(8), h.chunks_exact(8));
    let rest: f32 = cc.remainder().iter().zip(hc.remainder()).map(|(&q, &h)| (h - q as f32 * step).powi(2)).sum();
    for (c, h) in cc.zip(hc) {
        for ((l, &q), &h) in lanes.iter_mut().zip(c).zip(h) {
            *l += (h - q as f32 * step).powi(2);
        }
    }
    rest + lanes.iter().sum::<f32>()
}

/// `round(127 h / m)` with `m = max |h|` (all zero when `m` is 0).
fn quantise(h: &[f32]) -> (Vec<i8>, f32) {
    let m = h.iter().fold(0.0f32, |a, v| a.max(v.abs()));
    if m == 0.0 || !m.is_finite() {
        return (vec![0; h.len()], m);
    }
    (h.iter().map(|&v| (127.0 * v / m).round().clamp(-127.0, 127.0) as i8).collect(), m)
}
