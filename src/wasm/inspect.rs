//! The inspection API (`crate::inspect`): hidden units as pictures, top activations, "why this
//! answer?" (saliency and nearest neighbours), hard examples, the PyTorch band, and "train more".
//!
//! ```js
//! const t = s.unitTiles();                 // tiles: Uint8Array(units * 4096), RGBA, tile j at j * 4096
//! s.unitTileEpochs();                      // {epochs: [0, 1, 2, 4, ...], bytes, budget}
//! s.unitTilesAt(4);                        // the snapshot after 4 epochs
//! s.topActivations(17);                    // {top: Uint32Array(8), top_values, top_labels, bottom, ...}
//! s.saliencyRgba(rgba, w, h);              // {class, probabilities, gradient: Float32Array(3072), magnitude: Float32Array(1024), ...}
//! s.saliencyImage("test", 12);             // the same for a gallery image
//! s.neighboursImage("test", 12, 8);        // {indices: Uint32Array, labels: Uint8Array, distances: Float32Array}
//! s.hardExamples(24);                      // {most_wrong, forgotten, ambiguous: [{index, label, loss, ...}]}
//! s.bandPosition("val_accuracy", 37, 0.81);// {inside, min, max, text: "epoch 37: inside the PyTorch band (0.790-0.822)"} | null
//! s.extendEpochs(10);                      // "Train more": the run's epoch budget grows by 10
//! data.imagesRgba("train", idx);           // Uint8Array(idx.length * 4096)
//! ```
//! Big arrays arrive as typed arrays (copies out of wasm memory, safe to transfer to the page).
//! The first call of `topActivations*` or `neighbours*` after the weights changed runs the scan
//! over the training images (31 GFLOP for the lecture model, 63 for `deep`: about 3 s and 7 s
//! on one wasm thread of this project's busy 2-core machine); later calls with the same weights
//! take milliseconds; `inspectionReady()` says whether it is cached.

use super::{Data, Session, check_image, on_pool, split_of, to_js};
use crate::data::Normalizer;
use crate::data::resize::{chw_to_rgba, rgba_to_chw};
use crate::error::Error;
use crate::inspect::band::{Band, Metric};
use crate::inspect::saliency::{Saliency, saliency};
use crate::inspect::scan::Neighbour;
use crate::inspect::units::UnitTiles;
use crate::inspect::{Inspector, TOP_IMAGES};
use crate::train::Trainer;
use js_sys::{Float32Array, Object, Reflect, Uint8Array, Uint32Array};
use std::sync::Arc;
use wasm_bindgen::prelude::*;

#[wasm_bindgen(typescript_custom_section)]
const TS_INSPECT: &str = r#"
export type Split = "train" | "test";
export interface UnitTiles { epoch: number; mid_epoch: boolean; units: number; classes: number;
  tiles: Uint8Array; scale: Float32Array; votes: Float32Array; votes_exact: boolean; order: Uint32Array;
  change: Uint8Array | null; change_scale: Float32Array | null; change_relative: number | null; }
export interface TileHistoryInfo { epochs: number[]; bytes: number; budget: number; }
export interface TopActivations { unit: number; k: number; top: Uint32Array; top_values: Float32Array; top_labels: Uint8Array;
  bottom: Uint32Array; bottom_values: Float32Array; bottom_labels: Uint8Array; }
export interface TopActivationsAll { units: number; k: number; top: Uint32Array; top_values: Float32Array;
  bottom: Uint32Array; bottom_values: Float32Array; }
export interface SaliencyMap { class: number; probabilities: number[]; log_probability: number; gradient: Float32Array;
  magnitude: Float32Array; magnitude_max: number; image: Uint8Array; }
export interface Neighbours { indices: Uint32Array; labels: Uint8Array; distances: Float32Array; }
export interface ExampleItem { index: number; label: number; loss: number; probability: number; correct: boolean;
  forgetting_events: number; first_learned: number | null; history: string; }
export interface HardExamples { epochs: number[]; images: number; forgettable: number; most_wrong: ExampleItem[];
  forgotten: ExampleItem[]; ambiguous: ExampleItem[]; }
export type BandMetric = "val_accuracy" | "val_loss" | "train_loss";
export interface BandStat { min: number[]; median: number[]; max: number[]; }
export interface PresetBand { layers: number[]; activation: "tanh" | "relu"; loss: "nll" | "cross-entropy"; epochs: number;
  val_accuracy: BandStat; val_loss: BandStat; train_loss: BandStat; }
export interface PytorchBand { format: "skywatch-pytorch-band"; version: number;
  provenance: { script: string; python: string; torch: string; numpy: string; seeds: number[]; threads: number; date: string;
    data: { classes: string[]; manifest_sha256: string; train: { count: number; sha256: string };
      test: { count: number; sha256: string }; source_kind: string; source_fingerprint: string };
    recipe: Record<string, unknown>; };
  presets: Record<string, PresetBand>; }
export interface BandPosition { preset: string; metric: BandMetric; epoch: number; value: number; min: number; median: number;
  max: number; inside: boolean; side: "inside" | "above" | "below"; text: string; }
"#;

/// A plain JS object built field by field (typed arrays stay typed; serde would make Arrays).
pub(super) struct Js(Object);

impl Js {
    pub(super) fn new() -> Js {
        Js(Object::new())
    }

    pub(super) fn set(self, key: &str, value: impl Into<JsValue>) -> Result<Js, JsError> {
        Reflect::set(&self.0, &key.into(), &value.into())
            .map_err(|_| JsError::new("internal: cannot build a result"))?;
        Ok(self)
    }

    pub(super) fn done(self) -> JsValue {
        self.0.into()
    }
}

fn tiles_js(t: &UnitTiles, epoch: usize, mid_epoch: bool) -> Result<JsValue, JsError> {
    let change = t.change.as_ref();
    let or_null = |v: Option<JsValue>| v.unwrap_or(JsValue::NULL);
    Ok(Js::new()
        .set("change", or_null(t.change_rgba().map(|v| Uint8Array::from(v.as_slice()).into())))?
        .set("change_scale", or_null(change.map(|c| Float32Array::from(c.scale.as_slice()).into())))?
        .set("change_relative", or_null(change.map(|c| JsValue::from(c.relative as f64))))?
        .set("epoch", epoch as f64)?
        .set("mid_epoch", mid_epoch)?
        .set("units", t.units as f64)?
        .set("classes", t.classes as f64)?
        .set("tiles", Uint8Array::from(t.rgba().as_slice()))?
        .set("scale", Float32Array::from(t.scale.as_slice()))?
        .set("votes", Float32Array::from(t.votes.as_slice()))?
        .set("votes_exact", t.votes_exact)?
        .set("order", Uint32Array::from(t.order.as_slice()))?
        .done())
}

pub(super) fn saliency_js(s: Saliency, image: &[u8]) -> Result<JsValue, JsError> {
    Ok(Js::new()
        .set("class", s.class as f64)?
        .set("probabilities", to_js(&s.probabilities)?)?
        .set("log_probability", s.log_probability as f64)?
        .set("gradient", Float32Array::from(s.gradient.as_slice()))?
        .set("magnitude", Float32Array::from(s.magnitude.as_slice()))?
        .set("magnitude_max", s.magnitude_max as f64)?
        .set("image", Uint8Array::from(chw_to_rgba(image).as_slice()))?
        .done())
}

fn neighbours_js(n: &[Neighbour]) -> Result<JsValue, JsError> {
    let indices: Vec<u32> = n.iter().map(|n| n.index).collect();
    let labels: Vec<u8> = n.iter().map(|n| n.label).collect();
    let distances: Vec<f32> = n.iter().map(|n| n.distance).collect();
    Ok(Js::new()
        .set("indices", Uint32Array::from(indices.as_slice()))?
        .set("labels", Uint8Array::from(labels.as_slice()))?
        .set("distances", Float32Array::from(distances.as_slice()))?
        .done())
}

#[wasm_bindgen]
impl Session {
    /// The first layer's units as pictures now: 32x32 RGBA tiles (`units * 4096` bytes; per
    /// tile `round(128 + 127 w / s)`, `s = max |w|` of the tile, mid-grey = 0), each tile's `s`,
    /// the class votes `[classes x units]` (outgoing weights `W2`; `votes_exact` false for deeper
    /// models, where they are `W_L ... W_2`) and the units by vote strength, strongest first;
    /// `change`, the tiles of `W - W0` (each on its own scale `change_scale`), and
    /// `change_relative`, `||W - W0|| / ||W0||`, or null when the run started from a file's weights.
    #[wasm_bindgen(js_name = unitTiles, unchecked_return_type = "UnitTiles")]
    pub fn unit_tiles(&self) -> Result<JsValue, JsError> {
        let t = UnitTiles::with_start(&self.trainer.model, self.trainer.initial_params());
        tiles_js(&t, self.trainer.epochs_done(), self.trainer.in_epoch())
    }

    /// The epochs whose tiles are kept for the scrubber (0: before training), and the bytes they
    /// take against the budget.
    #[wasm_bindgen(js_name = unitTileEpochs, unchecked_return_type = "TileHistoryInfo")]
    pub fn unit_tile_epochs(&mut self) -> Result<JsValue, JsError> {
        self.inspector.observe(&self.trainer);
        #[derive(serde::Serialize)]
        struct Info {
            epochs: Vec<usize>,
            bytes: usize,
            budget: usize,
        }
        let h = &self.inspector.tiles;
        to_js(&Info { epochs: h.epochs(), bytes: h.bytes(), budget: h.budget() })
    }

    /// The tiles kept for `epoch` (one of `unitTileEpochs().epochs`).
    #[wasm_bindgen(js_name = unitTilesAt, unchecked_return_type = "UnitTiles")]
    pub fn unit_tiles_at(&mut self, epoch: usize) -> Result<JsValue, JsError> {
        self.inspector.observe(&self.trainer);
        let h = &self.inspector.tiles;
        let t = h
            .get(epoch)
            .ok_or_else(|| Error::Config(format!("no unit tiles kept for epoch {epoch} (kept: {:?})", h.epochs())))?;
        tiles_js(t, epoch, false)
    }

    /// Whether the scan behind top activations and neighbours is cached for the current weights.
    #[wasm_bindgen(js_name = inspectionReady)]
    pub fn inspection_ready(&self) -> bool {
        self.inspector.has_scan(&self.trainer)
    }

    /// The 8 training images with the largest and the 8 with the most negative pre-activation
    /// `z = w . x + b` of first-layer unit `unit` (largest / most negative first; ties: lower
    /// index), with their values and labels.
    #[wasm_bindgen(js_name = topActivations, unchecked_return_type = "TopActivations")]
    pub fn top_activations(&mut self, unit: usize) -> Result<JsValue, JsError> {
        Inspector::require_pixel_layer(&self.trainer)?;
        let (inspector, trainer) = (&mut self.inspector, &self.trainer);
        let Some(u) = on_pool(|| inspector.scan(trainer).unit(unit)) else {
            let units = trainer.model.linears[0].out_features;
            return Err(Error::Config(format!("unit {unit} does not exist (the first layer has {units})")).into());
        };
        let train = &self.trainer.data.train;
        let labels = |idx: &[u32]| -> Vec<u8> { idx.iter().map(|&i| train.label(i as usize)).collect() };
        Ok(Js::new()
            .set("unit", unit as f64)?
            .set("k", u.top.len() as f64)?
            .set("top_labels", Uint8Array::from(labels(&u.top).as_slice()))?
            .set("bottom_labels", Uint8Array::from(labels(&u.bottom).as_slice()))?
            .set("top", Uint32Array::from(u.top.as_slice()))?
            .set("top_values", Float32Array::from(u.top_values.as_slice()))?
            .set("bottom", Uint32Array::from(u.bottom.as_slice()))?
            .set("bottom_values", Float32Array::from(u.bottom_values.as_slice()))?
            .done())
    }

    /// [`Session::top_activations`] for every unit at once: `[units x k]` arrays.
    #[wasm_bindgen(js_name = topActivationsAll, unchecked_return_type = "TopActivationsAll")]
    pub fn top_activations_all(&mut self) -> Result<JsValue, JsError> {
        Inspector::require_pixel_layer(&self.trainer)?;
        let (inspector, trainer) = (&mut self.inspector, &self.trainer);
        let s = on_pool(move || inspector.scan(trainer));
        Ok(Js::new()
            .set("units", s.units as f64)?
            .set("k", s.k as f64)?
            .set("top", Uint32Array::from(s.top.as_slice()))?
            .set("top_values", Float32Array::from(s.top_values.as_slice()))?
            .set("bottom", Uint32Array::from(s.bottom.as_slice()))?
            .set("bottom_values", Float32Array::from(s.bottom_values.as_slice()))?
            .done())
    }

    /// "Why this answer?" for a picture given as RGBA (any size, as `predictRgba`): the gradient of
    /// `log p[class]` per pixel level and channel (planar `3 x 32 x 32`), the 32x32 map
    /// `max_c |gradient|`, the probabilities, and the 32x32 RGBA the model saw. `class` defaults to
    /// the predicted one.
    #[wasm_bindgen(js_name = saliencyRgba, unchecked_return_type = "SaliencyMap")]
    pub fn saliency_rgba(
        &mut self,
        rgba: &[u8],
        width: u32,
        height: u32,
        class: Option<u32>,
    ) -> Result<JsValue, JsError> {
        let chw = rgba_to_chw(rgba, width, height)?;
        self.saliency_of(&chw, class)
    }

    /// "Why this answer?" for image `index` of `split` (`"train"` or `"test"`).
    #[wasm_bindgen(js_name = saliencyImage, unchecked_return_type = "SaliencyMap")]
    pub fn saliency_image(&mut self, split: &str, index: usize, class: Option<u32>) -> Result<JsValue, JsError> {
        let data = std::sync::Arc::clone(&self.trainer.data);
        let s = split_of(&data, split)?;
        check_image(s, split, index)?;
        self.saliency_of(s.image(index), class)
    }

    fn saliency_of(&mut self, image: &[u8], class: Option<u32>) -> Result<JsValue, JsError> {
        let model = &mut self.trainer.model;
        let s = on_pool(|| saliency(model, image, &Normalizer::default(), class.map(|c| c as usize)))?;
        saliency_js(s, image)
    }

    /// The `k` (default 8) training images nearest to a picture (RGBA, any size) in the first
    /// hidden layer's space (post-activation, Euclidean; for a convolutional model its first
    /// fully connected layer, `fc1`), nearest first.
    #[wasm_bindgen(js_name = neighboursRgba, unchecked_return_type = "Neighbours")]
    pub fn neighbours_rgba(
        &mut self,
        rgba: &[u8],
        width: u32,
        height: u32,
        k: Option<usize>,
    ) -> Result<JsValue, JsError> {
        let chw = rgba_to_chw(rgba, width, height)?;
        let (inspector, trainer) = (&mut self.inspector, &self.trainer);
        let n = on_pool(|| inspector.neighbours(trainer, &chw, k.unwrap_or(TOP_IMAGES), None))?;
        neighbours_js(&n)
    }

    /// The `k` (default 8) training images nearest to image `index` of `split`; a training image
    /// is left out of its own neighbours.
    #[wasm_bindgen(js_name = neighboursImage, unchecked_return_type = "Neighbours")]
    pub fn neighbours_image(&mut self, split: &str, index: usize, k: Option<usize>) -> Result<JsValue, JsError> {
        let data = std::sync::Arc::clone(&self.trainer.data);
        let s = split_of(&data, split)?;
        check_image(s, split, index)?;
        let exclude = (split == "train").then_some(index as u32);
        let (inspector, trainer) = (&mut self.inspector, &self.trainer);
        let n = on_pool(|| inspector.neighbours(trainer, s.image(index), k.unwrap_or(TOP_IMAGES), exclude))?;
        neighbours_js(&n)
    }

    /// The hard examples of the run so far (epochs finished in this session): the `n` training
    /// images with the highest last loss, the `n` learned and then forgotten (most forgetting
    /// events first), the `n` with the true-class probability nearest 0.5.
    #[wasm_bindgen(js_name = hardExamples, unchecked_return_type = "HardExamples")]
    pub fn hard_examples(&self, n: usize) -> Result<JsValue, JsError> {
        to_js(&self.trainer.examples.report(n, &self.trainer.data.train))
    }

    /// Validation (accuracy, loss, confusion) after the last finished epoch, or null.
    #[wasm_bindgen(js_name = lastValidation, unchecked_return_type = "EvalStats | null")]
    pub fn last_validation(&self) -> Result<JsValue, JsError> {
        match self.trainer.last_validation() {
            Some(v) => to_js(v),
            None => Ok(JsValue::NULL),
        }
    }

    /// "Train more": raises the run's epoch budget (`config().epochs`) by `n` and returns it; the
    /// run goes on from the current model, optimizer and loader position. `saveState` records the
    /// new budget, so a resumed run still ends there.
    #[wasm_bindgen(js_name = extendEpochs)]
    pub fn extend_epochs(&mut self, n: usize) -> Result<usize, JsError> {
        Ok(self.trainer.extend_epochs(n)?)
    }

    /// For a run that trains on another backend (WebGPU): takes its state after an epoch
    /// (`GpuSession.saveState`) as this session's, so that the inspection views follow it from
    /// the CPU. The unit-tile history goes on (the new epoch's tiles are added). This copy's
    /// hard-example log stays empty: the hard examples are read from the GPU run itself
    /// (`GpuSession.hardExamples`), whose loss kernel records them.
    #[wasm_bindgen(js_name = adoptState)]
    pub fn adopt_state(&mut self, state: &[u8]) -> Result<(), JsError> {
        let trainer = Trainer::resume(state, Arc::clone(&self.trainer.data))?;
        if trainer.epochs_done() < self.trainer.epochs_done() {
            self.inspector.reset(); // another run, not this one further on
        }
        self.trainer = trainer;
        self.inspector.observe(&self.trainer);
        Ok(())
    }

    /// The PyTorch band's preset that applies to this run (`"lecture"`, `"deep"`) or null: the
    /// preset's model, optimizer and batch size on the band's whole training set.
    #[wasm_bindgen(js_name = bandPreset)]
    pub fn band_preset(&self) -> Option<String> {
        Band::pytorch().preset_for(&self.trainer.config, self.trainer.train_len()).map(String::from)
    }

    /// Where `value` of `metric` (`"val_accuracy"`, `"val_loss"`, `"train_loss"`) at `epoch`
    /// (`EpochStats.epoch`, from 0) stands in this run's band; null if no band applies to the run
    /// or the epoch is past it.
    #[wasm_bindgen(js_name = bandPosition, unchecked_return_type = "BandPosition | null")]
    pub fn band_position(&self, metric: &str, epoch: usize, value: f64) -> Result<JsValue, JsError> {
        let metric = Metric::parse(metric)?;
        match self.band_preset() {
            Some(p) => band_position(&p, metric.name(), epoch, value),
            None => Ok(JsValue::NULL),
        }
    }
}

/// The committed PyTorch band (`www/reference/pytorch-band.json`), with its provenance.
#[wasm_bindgen(js_name = pytorchBand, unchecked_return_type = "PytorchBand")]
pub fn pytorch_band() -> Result<JsValue, JsError> {
    // The committed file itself (checked natively by tests/band.rs), parsed by the browser.
    js_sys::JSON::parse(crate::inspect::band::PYTORCH_BAND_JSON)
        .map_err(|_| JsError::new("internal: the built-in PyTorch band is not JSON"))
}

/// Where `value` of `metric` at `epoch` stands in `preset`'s PyTorch band; null past its epochs.
#[wasm_bindgen(js_name = bandPositionFor, unchecked_return_type = "BandPosition | null")]
pub fn band_position(preset: &str, metric: &str, epoch: usize, value: f64) -> Result<JsValue, JsError> {
    match Band::pytorch().position(preset, Metric::parse(metric)?, epoch, value)? {
        Some(p) => to_js(&p),
        None => Ok(JsValue::NULL),
    }
}

#[wasm_bindgen]
impl Data {
    /// Images `indices` of `split` as 32x32 RGBA, `indices.length * 4096` bytes.
    #[wasm_bindgen(js_name = imagesRgba)]
    pub fn images_rgba(&self, split: &str, indices: &[u32]) -> Result<Vec<u8>, JsError> {
        let s = split_of(&self.inner, split)?;
        let mut out = Vec::with_capacity(indices.len() * 4096);
        for &i in indices {
            check_image(s, split, i as usize)?;
            out.extend_from_slice(&chw_to_rgba(s.image(i as usize)));
        }
        Ok(out)
    }

    /// Labels of images `indices` of `split`.
    #[wasm_bindgen(js_name = labelsOf)]
    pub fn labels_of(&self, split: &str, indices: &[u32]) -> Result<Vec<u8>, JsError> {
        let s = split_of(&self.inner, split)?;
        indices
            .iter()
            .map(|&i| check_image(s, split, i as usize).map(|_| s.label(i as usize)))
            .collect::<Result<_, _>>()
            .map_err(Into::into)
    }
}
