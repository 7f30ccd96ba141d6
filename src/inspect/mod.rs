//! Seeing what the model learned: hidden units as pictures, top activations, saliency, nearest
//! neighbours, hard examples, and the PyTorch reference band.
//!
//! | module         | concept                                                                     |
//! |----------------|-----------------------------------------------------------------------------|
//! | [`units`]      | first-layer weights `W1[j, :]` and their change since the start `W1 - W1_0` as 32x32 RGB tiles, class votes, tile history |
//! | [`scan`]       | one pass `Z = X W1^T + b1` over the training set: top-k images per unit, a quantised `act(Z)` for exact nearest neighbours |
//! | [`saliency`]   | `d log p[k] / d pixel`, by the model's backward pass with the input gradient |
//! | [`crate::examples`] | (below [`crate::train`], which feeds it) per-image losses from training's own forward pass, forgetting events |
//! | [`translation`] | the translation test: accuracy and the first layer's response (cosine) on shifted pictures |
//! | [`band`]       | the PyTorch band (min/median/max over seeds per epoch) and a run's position |
//!
//! This module sits above [`crate::model`] and [`crate::train`] and is used by the wasm API and
//! the tests; the trainer feeds [`crate::examples::ExampleLog`], which sits below it. Everything heavy ([`scan`]) runs
//! on demand; [`Inspector`] caches its result per model version (a fingerprint of the
//! parameters) for a session.

pub mod band;
pub mod saliency;
pub mod scan;
pub mod translation;
pub mod units;

use crate::data::{Normalizer, PIXELS};
use crate::error::{Error, Result};
use crate::train::Trainer;
use scan::{FirstLayerScan, Neighbour};
use units::{TileHistory, UnitTiles};

/// Every ranking of the module sorts with the hard-example log's one routine (see there).
pub(crate) use crate::examples::sort_indices;

/// Images ranked per unit and direction by the top-activation scan.
pub const TOP_IMAGES: usize = 8;

/// A 64-bit fingerprint of a parameter buffer: FNV-1a over the values' bits, a word at a time, in
/// 4 interleaved lanes (independent multiply chains, 4 times faster) folded together. Equal
/// buffers give equal fingerprints; a change gives another one except with a chance of about
/// 2^-64. About a millisecond for the lecture model's 1.6 M values (natively).
pub fn fingerprint(params: &[f32]) -> u64 {
    fnv(params, f32::to_bits)
}

fn fnv<T: Copy>(v: &[T], bits: impl Fn(T) -> u32) -> u64 {
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let mut h = [0xcbf2_9ce4_8422_2325u64 ^ v.len() as u64, 1, 2, 3];
    let chunks = v.chunks_exact(4);
    let rest = chunks.remainder();
    for c in chunks {
        for (h, &x) in h.iter_mut().zip(c) {
            *h = (*h ^ bits(x) as u64).wrapping_mul(PRIME);
        }
    }
    for (h, &x) in h.iter_mut().zip(rest) {
        *h = (*h ^ bits(x) as u64).wrapping_mul(PRIME);
    }
    h.iter().fold(0, |acc, &x| (acc ^ x).wrapping_mul(PRIME))
}

/// The cache key of a scan: the parameters and the images scanned.
fn scan_key(trainer: &Trainer, images: &[u32]) -> u64 {
    fingerprint(&trainer.model.params) ^ fnv(images, |i| i).rotate_left(17)
}

/// What a training session keeps for inspection: the unit-tile history and the cached scan.
#[derive(Clone, Debug, Default)]
pub struct Inspector {
    pub tiles: TileHistory,
    /// The scan and the fingerprint of the parameters and images it was made with.
    scan: Option<(u64, FirstLayerScan)>,
}

impl Inspector {
    /// Takes a tile snapshot when the trainer is between epochs at an epoch not yet recorded
    /// (after `epochs_done` epochs; 0 is the model before training). Cheap otherwise: call it
    /// around every slice of training.
    pub fn observe(&mut self, trainer: &Trainer) {
        if trainer.in_epoch() || self.tiles.last_epoch() == Some(trainer.epochs_done()) {
            return;
        }
        self.tiles.push(trainer.epochs_done(), UnitTiles::with_start(&trainer.model, trainer.initial_params()));
    }

    /// Forgets everything: the model was replaced.
    pub fn reset(&mut self) {
        self.tiles.clear();
        self.scan = None;
    }

    /// The first-layer scan of the run's training images with the current weights, computed
    /// now unless the cached one was made with the same parameters and images.
    pub fn scan(&mut self, trainer: &Trainer) -> &FirstLayerScan {
        let images = trainer.train_indices();
        let key = scan_key(trainer, images);
        if self.scan.as_ref().is_none_or(|(k, _)| *k != key) {
            self.scan = None; // free the old one before building the new one
            let s =
                FirstLayerScan::run(&trainer.model, &trainer.data.train, images, &Normalizer::default(), TOP_IMAGES);
            self.scan = Some((key, s));
        }
        &self.scan.as_ref().expect("just set").1
    }

    /// Top activations rank images per unit of the layer the unit tiles show; a convolutional
    /// model's tiles are its first convolution's filters, which slide over the whole picture and
    /// so have no single response per image. (Its nearest neighbours are ranked in its first
    /// fully connected layer: see [`scan`].)
    pub fn require_pixel_layer(trainer: &Trainer) -> Result<()> {
        if trainer.model.features.is_some() {
            return Err(Error::Config(
                "top activations are shown for fully connected models; a convolutional model's first layer is its filters, shown as the units".into(),
            ));
        }
        Ok(())
    }

    /// Whether a scan for the current weights is cached (so that queries are instant).
    pub fn has_scan(&self, trainer: &Trainer) -> bool {
        let key = scan_key(trainer, trainer.train_indices());
        self.scan.as_ref().is_some_and(|(k, _)| *k == key)
    }

    /// The `k` training images nearest to `image` (3072 planar bytes) in the first hidden layer's
    /// space (a convolutional model's first fully connected layer, `fc1`), leaving out training
    /// image `exclude`.
    pub fn neighbours(
        &mut self,
        trainer: &Trainer,
        image: &[u8],
        k: usize,
        exclude: Option<u32>,
    ) -> Result<Vec<Neighbour>> {
        if image.len() != PIXELS {
            return Err(Error::Shape { what: "image".into(), expected: vec![PIXELS], actual: vec![image.len()] });
        }
        let norm = Normalizer::default();
        let mut x = ndarray::Array2::zeros((1, PIXELS));
        norm.apply(image, x.as_slice_mut().expect("contiguous"));
        let query = scan::hidden(&trainer.model, x.view());
        let query = query.as_slice().expect("row-major");
        let s = self.scan(trainer);
        Ok(s.neighbours(&trainer.model, &trainer.data.train, &norm, query, k, exclude))
    }
}
