//! Hidden units as pictures: the first layer's weights, one 32x32 RGB tile per unit.
//!
//! Unit `j` of the first layer computes `z_j = w_j . x + b_j` over the 3072 inputs of a
//! normalised image, planar `C, H, W` as the data: `w_j[c * 1024 + y * 32 + x]` weighs channel
//! `c` of pixel `(x, y)`, so `w_j` is itself a 32x32 RGB picture, the pattern the unit responds to.
//!
//! *Scale* (diverging, per tile): with `s_j = max_i |w_j[i]|`, channel value
//! `v = round(128 + 127 w / s_j)`, in `1..=255`: mid-grey `128` is a zero weight, `255` the tile's
//! largest positive weight, `1` its largest negative one (for `s_j = 0` the tile is all 128). Each
//! tile has its own `s_j` ([`UnitTiles::scale`]), so tiles show patterns, not magnitudes.
//!
//! *Votes*: which class a unit pushes towards. For a model with one hidden layer the votes are the
//! unit's outgoing weights `W2[:, j]` exactly (`classes x units`, `W2` as stored): unit `j` adds
//! `W2[c, j] tanh(z_j)` to the score of class `c`. For deeper models they are the product
//! `W_L ... W_2` (the votes if the later activations were linear, their small-signal regime;
//! [`UnitTiles::votes_exact`] is then false). *Strength* is the spread of a unit's votes,
//! `max_c v[c, j] - min_c v[c, j]` (for two classes `|W2[1, j] - W2[0, j]|`, the unit's weight on
//! the log-odds), and [`UnitTiles::order`] lists the units by strength, strongest first (ties: lower
//! index first): its first 16 are the widget's strip.
//!
//! *Change since the start* ([`Change`]): the same tiles drawn from `D = W - W0`, the weights
//! minus those the run started from (its seed's random initialisation), each tile on its own
//! scale `t_j = max_i |d_j[i]|`. Early in training `W` is mostly its random start (for `lecture`,
//! after 3 epochs `||W - W0||` is about 4% of `||W0||`), so the tiles of `W` look like noise while
//! those of `D` show what was learned. Only when the start is known: a run from a file's weights
//! has none.
//!
//! *Memory.* A tile is 3072 bytes of RGB (4096 as RGBA for display): 1.5 MB per snapshot for the
//! lecture's 512 units, 3 MB for `deep`'s 1024, twice that with the change tiles. [`TileHistory`]
//! keeps snapshots after epochs within a byte budget, thinned to roughly even spacing in
//! `log(1 + epoch)`: dense early, where the weights change fastest, sparser later. With the
//! default budget of 48 MiB that is 15 snapshots for `lecture` (7 for `deep`) with the change
//! tiles, always the first and the latest.

use crate::data::SIDE;
use crate::model::Mlp;
use ndarray::Array2;

/// Pixels of a tile.
pub const TILE_PIXELS: usize = SIDE * SIDE;
/// Bytes of a tile as RGB (the stored form).
pub const TILE_RGB_BYTES: usize = 3 * TILE_PIXELS;
/// Bytes of a tile as RGBA (the display form).
pub const TILE_RGBA_BYTES: usize = 4 * TILE_PIXELS;
/// Default byte budget of a [`TileHistory`].
pub const DEFAULT_HISTORY_BUDGET: usize = 48 << 20;

/// `round(128 + 127 w / s)`, the tile value of weight `w` in a tile of scale `s` (see the module
/// documentation); 128 when `s` is 0. Computed in `f32` as `floor(128.5 + w (127 / s))` (the
/// value is positive, so this rounds halves up as `round` does; within about `1e-5` of a half the
/// `f32` rounding may pick either neighbour).
pub fn tile_value(w: f32, s: f32) -> u8 {
    value(w, factor(s))
}

fn factor(s: f32) -> f32 {
    if s > 0.0 { 127.0 / s } else { 0.0 }
}

#[inline(always)]
fn value(w: f32, factor: f32) -> u8 {
    // In [1.5, 255.5] up to rounding; `as` truncates (floor, for positive values) and saturates.
    (128.5 + w * factor) as u8
}

/// `max |v|`, in 16 independent lanes so that the loop vectorises (a single `f32::max` chain
/// does not).
fn abs_max(v: &[f32]) -> f32 {
    let mut lanes = [0.0f32; 16];
    let chunks = v.chunks_exact(16);
    let rest = chunks.remainder();
    for c in chunks {
        for (l, &x) in lanes.iter_mut().zip(c) {
            *l = l.max(x.abs());
        }
    }
    rest.iter().chain(&lanes).fold(0.0, |m, &x| m.max(x.abs()))
}

/// The change since the start, `D = W - W0`, drawn as tiles the same way as the weights: tile `j`
/// is `round(128 + 127 d / t_j)` with `t_j = max_i |d_j[i]|`, each tile on its own scale.
#[derive(Clone, Debug, PartialEq)]
pub struct Change {
    /// As [`UnitTiles::rgb`].
    pub rgb: Vec<u8>,
    /// `t_j = max |w_j - w0_j|`, per unit.
    pub scale: Vec<f32>,
    /// `||W - W0|| / ||W0||` over the whole layer (Frobenius norms; 0 when `W0` is 0).
    pub relative: f32,
}

/// `sum v^2` in `f64`, in 8 independent lanes so that the loop vectorises.
fn sum_squares(v: &[f32]) -> f64 {
    let mut lanes = [0.0f64; 8];
    let chunks = v.chunks_exact(8);
    let rest: f64 = chunks.remainder().iter().map(|&x| x as f64 * x as f64).sum();
    for c in chunks {
        for (l, &x) in lanes.iter_mut().zip(c) {
            *l += x as f64 * x as f64;
        }
    }
    rest + lanes.iter().sum::<f64>()
}

/// Tiles, scales and votes of every first-layer unit of a model at one moment.
#[derive(Clone, Debug, PartialEq)]
pub struct UnitTiles {
    pub units: usize,
    pub classes: usize,
    /// `units` tiles of 32x32 pixels, rows top to bottom, each pixel `R, G, B`:
    /// tile `j`, pixel `(x, y)`, channel `c` is `rgb[j * 3072 + (y * 32 + x) * 3 + c]`.
    pub rgb: Vec<u8>,
    /// `s_j = max |w_j|`, per unit.
    pub scale: Vec<f32>,
    /// `[classes x units]`, row-major: `votes[c * units + j]`.
    pub votes: Vec<f32>,
    /// Whether the votes are the outgoing weights themselves (one hidden layer).
    pub votes_exact: bool,
    /// Units by vote strength, strongest first.
    pub order: Vec<u32>,
    /// The change since the start, when the run's starting parameters are known.
    pub change: Option<Change>,
}

/// How a first-layer row becomes a tile: a 3x32x32 picture, or a `k x k` filter on 3 planes,
/// enlarged (pixel `(x, y)` shows weight `(y k / 32, x k / 32)`).
#[derive(Clone, Copy)]
enum Layout {
    Picture,
    Filter(usize),
}

/// The first layer's weights of `params` (row-major `[units, inputs]`, flat) and their layout.
fn first_layer<'a>(model: &Mlp, params: &'a [f32]) -> (&'a [f32], usize, Layout) {
    let (range, units, layout) = match &model.features {
        Some(f) => {
            let conv = &f.blocks[0].conv;
            assert_eq!(conv.in_channels, 3, "the first convolution sees RGB images");
            (conv.offset..conv.offset + conv.num_weights(), conv.out_channels, Layout::Filter(conv.kernel))
        }
        None => {
            let first = &model.linears[0];
            assert_eq!(first.in_features, 3 * TILE_PIXELS, "the first layer must see 3x32x32 images");
            (first.offset..first.offset + first.out_features * first.in_features, first.out_features, Layout::Picture)
        }
    };
    (&params[range], units, layout)
}

/// Every row of `w` (`units` rows) as a tile on its own scale: `(rgb, scales)`.
fn draw(w: &[f32], units: usize, layout: Layout) -> (Vec<u8>, Vec<f32>) {
    let mut rgb = vec![0u8; units * TILE_RGB_BYTES];
    let mut scale = vec![0.0f32; units];
    let mut planes = [[0u8; TILE_PIXELS]; 3];
    let rows = w.chunks_exact(w.len() / units.max(1));
    for ((row, tile), s) in rows.zip(rgb.chunks_exact_mut(TILE_RGB_BYTES)).zip(&mut scale) {
        *s = abs_max(row);
        let f = factor(*s);
        match layout {
            Layout::Picture => {
                // Plane by plane (vectorised), then interleaved to RGB.
                for (plane, w) in planes.iter_mut().zip(row.chunks_exact(TILE_PIXELS)) {
                    for (v, &w) in plane.iter_mut().zip(w) {
                        *v = value(w, f);
                    }
                }
                for (p, px) in tile.chunks_exact_mut(3).enumerate() {
                    px.copy_from_slice(&[planes[0][p], planes[1][p], planes[2][p]]);
                }
            }
            Layout::Filter(k) => {
                for (p, px) in tile.chunks_exact_mut(3).enumerate() {
                    let (i, j) = (p / SIDE * k / SIDE, p % SIDE * k / SIDE);
                    for (c, v) in px.iter_mut().enumerate() {
                        *v = value(row[(c * k + i) * k + j], f);
                    }
                }
            }
        }
    }
    (rgb, scale)
}

impl UnitTiles {
    /// The tiles of `model`'s first layer (which must see 3x32x32 images); for a convolutional
    /// model, its first convolution's filters (see [`UnitTiles::with_start`]). No change tiles.
    pub fn of(model: &Mlp) -> UnitTiles {
        UnitTiles::with_start(model, None)
    }

    /// [`UnitTiles::of`], and with `initial` (the model's parameters at the start of the run,
    /// the same layout as `model.params`) the change since then, `W - W0`, as tiles too.
    ///
    /// A convolutional model's tiles are its first convolution's `k x k` filters on the 3 input
    /// channels, each enlarged to a 32x32 tile, on the same diverging scale. A filter has no
    /// direct vote for a class (pooling and the later layers stand between), so the votes are 0,
    /// `votes_exact` is false, and the order is the filters' own.
    pub fn with_start(model: &Mlp, initial: Option<&[f32]>) -> UnitTiles {
        let (w, units, layout) = first_layer(model, &model.params);
        let (rgb, scale) = draw(w, units, layout);
        let change = initial.map(|p0| {
            assert_eq!(p0.len(), model.params.len(), "starting parameters of another model");
            let (w0, _, _) = first_layer(model, p0);
            let d: Vec<f32> = w.iter().zip(w0).map(|(&w, &w0)| w - w0).collect();
            let (rgb, scale) = draw(&d, units, layout);
            let (nd, n0) = (sum_squares(&d).sqrt(), sum_squares(w0).sqrt());
            Change { rgb, scale, relative: if n0 > 0.0 { (nd / n0) as f32 } else { 0.0 } }
        });
        let classes = model.config.classes();
        if model.features.is_some() {
            let order = (0..units as u32).collect();
            let votes = vec![0.0; classes * units];
            return UnitTiles { units, classes, rgb, scale, votes, votes_exact: false, order, change };
        }
        let (votes, votes_exact) = votes(model);
        let strength: Vec<f32> = (0..units)
            .map(|j| {
                let col = (0..classes).map(|c| votes[c * units + j]);
                col.clone().fold(f32::NEG_INFINITY, f32::max) - col.fold(f32::INFINITY, f32::min)
            })
            .collect();
        let mut order: Vec<u32> = (0..units as u32).collect();
        super::sort_indices(&mut order, &|a, b| strength[b as usize].total_cmp(&strength[a as usize]));
        UnitTiles { units, classes, rgb, scale, votes, votes_exact, order, change }
    }

    /// The tiles as RGBA (alpha 255), `units * 4096` bytes: tile `j` is the 32x32 `ImageData`
    /// at byte `j * 4096`.
    pub fn rgba(&self) -> Vec<u8> {
        rgba(&self.rgb)
    }

    /// The change tiles as RGBA, as [`UnitTiles::rgba`], when known.
    pub fn change_rgba(&self) -> Option<Vec<u8>> {
        self.change.as_ref().map(|c| rgba(&c.rgb))
    }

    /// Bytes held.
    pub fn bytes(&self) -> usize {
        let change = self.change.as_ref().map_or(0, |c| c.rgb.len() + 4 * c.scale.len());
        self.rgb.len() + 4 * (self.scale.len() + self.votes.len() + self.order.len()) + change
    }
}

fn rgba(rgb: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(rgb.len() / 3 * 4);
    for p in rgb.chunks_exact(3) {
        out.extend_from_slice(&[p[0], p[1], p[2], 255]);
    }
    out
}

/// `[classes x units]` votes of the first layer's units and whether they are exact (see the module
/// documentation).
fn votes(model: &Mlp) -> (Vec<f32>, bool) {
    let linears = &model.linears;
    let last = linears.len() - 1;
    // Right to left: V = W_L, then V W_(L-1), ..., down to W_2 (`linears[1]`).
    let mut v: Array2<f32> = linears[last].weight(&model.params).to_owned();
    for l in (1..last).rev() {
        // The crate's GEMM, not ndarray's `dot`, which would link a second GEMM into the wasm.
        let w = linears[l].weight(&model.params);
        let mut next = Array2::zeros((v.nrows(), w.ncols()));
        crate::matmul::gemm(1.0, &v.view(), &w, 0.0, &mut next.view_mut());
        v = next;
    }
    if last == 0 {
        // No hidden layer: the "units" are the classes themselves.
        v = Array2::eye(linears[0].out_features);
    }
    (v.into_raw_vec_and_offset().0, last <= 1)
}

/// Snapshots of [`UnitTiles`] after epochs, within a byte budget (see the module documentation).
#[derive(Clone, Debug)]
pub struct TileHistory {
    budget: usize,
    /// `(epochs done, tiles)`, by epoch.
    snapshots: Vec<(usize, UnitTiles)>,
}

impl Default for TileHistory {
    fn default() -> Self {
        TileHistory::new(DEFAULT_HISTORY_BUDGET)
    }
}

impl TileHistory {
    pub fn new(budget: usize) -> TileHistory {
        TileHistory { budget, snapshots: Vec::new() }
    }

    /// Epochs done at each snapshot, in order (0: the weights before training).
    pub fn epochs(&self) -> Vec<usize> {
        self.snapshots.iter().map(|(e, _)| *e).collect()
    }

    pub fn last_epoch(&self) -> Option<usize> {
        self.snapshots.last().map(|(e, _)| *e)
    }

    /// The snapshot taken after `epoch` epochs, if kept.
    pub fn get(&self, epoch: usize) -> Option<&UnitTiles> {
        self.snapshots.iter().find(|(e, _)| *e == epoch).map(|(_, t)| t)
    }

    pub fn bytes(&self) -> usize {
        self.snapshots.iter().map(|(_, t)| t.bytes()).sum()
    }

    pub fn budget(&self) -> usize {
        self.budget
    }

    pub fn clear(&mut self) {
        self.snapshots.clear();
    }

    /// Changes the budget, thinning the history to it.
    pub fn set_budget(&mut self, budget: usize) {
        self.budget = budget;
        self.thin();
    }

    /// Adds the snapshot after `epoch` epochs (replacing one of the same epoch, and dropping any
    /// of later epochs: they belonged to a run that no longer exists), then thins to the budget.
    pub fn push(&mut self, epoch: usize, tiles: UnitTiles) {
        self.snapshots.retain(|(e, _)| *e < epoch);
        self.snapshots.push((epoch, tiles));
        self.thin();
    }

    /// While over budget, removes the inner snapshot whose removal leaves the smallest gap in
    /// `log(1 + epoch)` (the first and the latest always stay).
    fn thin(&mut self) {
        while self.bytes() > self.budget && self.snapshots.len() > 2 {
            let x = |i: usize| (1.0 + self.snapshots[i].0 as f64).ln();
            let victim = (1..self.snapshots.len() - 1)
                .min_by(|&a, &b| (x(a + 1) - x(a - 1)).total_cmp(&(x(b + 1) - x(b - 1))))
                .expect("at least one inner snapshot");
            self.snapshots.remove(victim);
        }
    }
}
