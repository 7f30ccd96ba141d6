//! The JavaScript API, and the only module that exports to JS (the clock reads the browser's
//! through web-sys, in `crate::clock`). It sits on top of the core: it calls `train`,
//! `checkpoint`, `data` and `config`, and nothing in the core calls it.
//!
//! ```js
//! const data = new Data(manifestJson, trainBytes, testBytes);   // checks sizes and sha256
//! const s = new Session(JSON.stringify(config), data);           // config: TrainConfig
//! const r = s.trainBatches(20);       // {progress, epoch: EpochStats | null}
//! s.evaluate("test");                 // EvalStats
//! s.predictRgba(rgba, w, h);          // {probabilities, image: 32x32 RGBA}
//! const bytes = s.exportWeights();    // safetensors, the same files as the CLI's
//! s.importWeights(bytes);
//! ```
//! Errors are thrown as `Error` with the crate's message; no user input can panic.
//! In the threaded package, `initThreadPool(n)` (wasm-bindgen-rayon) must be awaited in the
//! Worker before training; the GEMM then splits across that pool. The benchmark exports are in
//! `wasm/bench.rs`, compiled only into the bench page's packages (feature `bench`).

use crate::checkpoint;
use crate::config::TrainConfig;
use crate::data::resize::{chw_to_rgba, rgba_to_chw};
use crate::data::{Dataset, Manifest, PIXELS, Split};
use crate::error::Error;
use crate::matmul::Kernel;
use crate::train::Trainer;
use serde::Serialize;
use std::sync::Arc;
use wasm_bindgen::prelude::*;

#[cfg(feature = "wasm-threads")]
pub use wasm_bindgen_rayon::init_thread_pool;

mod gpu;
pub use gpu::{GpuSession, gpu_probe};
mod inspect;
pub use inspect::*;
mod translation;
pub use translation::TranslationRun;

/// The benchmark exports (`benchPeak`, `benchGemm`, `benchEpochs`, and WebGPU's `gpuBenchGemm`,
/// `gpuBenchEpochs`), in the bench page's packages only (feature `bench`, `scripts/build --bench`).
#[cfg(feature = "bench")]
mod bench;

#[wasm_bindgen(typescript_custom_section)]
const TS_TYPES: &str = r#"
export interface ModelConfig { layers: number[]; activation: "tanh" | "relu"; loss: "nll" | "cross-entropy"; }
export interface OptimizerConfig { kind: "sgd" | "adam"; lr: number; momentum?: number; nesterov?: boolean;
  weight_decay?: number; beta1?: number; beta2?: number; eps?: number; }
export interface TrainConfig { model: ModelConfig; optimizer: OptimizerConfig; batch_size: number; epochs: number;
  seed: number; train_size?: number | null; }
export interface EpochStats { epoch: number; loss: number; train_accuracy: number; val_accuracy: number; seconds: number; }
export interface Progress { epoch: number; batch: number; batches: number; samples: number; loss: number; }
export interface TrainStep { progress: Progress; epoch: EpochStats | null; }
export interface EvalStats { count: number; accuracy: number; loss: number; confusion: number[][]; }
export interface Prediction { probabilities: number[]; image: Uint8Array; }
export interface BuildInfo { kernel: string; threads: boolean; version: string; }
"#;

#[wasm_bindgen(start)]
fn start() {
    console_error_panic_hook::set_once();
}

/// Runs `f` on a thread of the rayon pool (threaded package), as the native CLI does with
/// `ThreadPool::install`. Called from the Worker, which is not in the pool, every parallel
/// product inside `f` would be injected into the pool and the Worker woken when it ends: two
/// more cross-thread wake-ups (`Atomics.wait` / `notify`) per product, twice per batch. Inside
/// the pool the calling thread computes its half and only the other thread is woken.
fn on_pool<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    #[cfg(feature = "wasm-threads")]
    {
        rayon::scope(|_| f())
    }
    #[cfg(not(feature = "wasm-threads"))]
    {
        f()
    }
}

fn to_js<T: Serialize>(v: &T) -> Result<JsValue, JsError> {
    v.serialize(&serde_wasm_bindgen::Serializer::json_compatible())
        .map_err(|e| JsError::new(&format!("internal: cannot convert to JS: {e}")))
}

/// What this build runs: the GEMM kernel and whether it was built with threads.
#[wasm_bindgen(js_name = buildInfo, unchecked_return_type = "BuildInfo")]
pub fn build_info() -> Result<JsValue, JsError> {
    #[derive(Serialize)]
    struct Info {
        kernel: &'static str,
        threads: bool,
        version: &'static str,
    }
    to_js(&Info {
        kernel: Kernel::best().name(),
        threads: cfg!(feature = "wasm-threads"),
        version: env!("CARGO_PKG_VERSION"),
    })
}

/// A preset's configuration (`lecture` or `deep`) as JSON.
#[wasm_bindgen(js_name = presetConfig)]
pub fn preset_config(name: &str) -> Result<String, JsError> {
    Ok(serde_json::to_string(&TrainConfig::preset(name)?).expect("config serialises"))
}

/// A fresh seed drawn from the browser's entropy source (`crypto.getRandomValues`, through
/// getrandom), below 2^32, for a "new seed" run (`seed=random`).
#[wasm_bindgen(js_name = randomSeed)]
pub fn random_seed() -> Result<f64, JsError> {
    Ok(crate::config::random_seed()? as f64)
}

/// Checks a configuration (JSON); returns the parameter count as the lecture prints it.
#[wasm_bindgen(js_name = describeConfig)]
pub fn describe_config(config_json: &str) -> Result<String, JsError> {
    let c = parse_config(config_json)?;
    Ok(c.model.parameter_summary())
}

fn parse_config(json: &str) -> Result<TrainConfig, Error> {
    let c: TrainConfig =
        serde_json::from_str(json).map_err(|e| Error::Config(format!("not a valid configuration: {e}")))?;
    c.validate()?;
    Ok(c)
}

/// A checked bundle in wasm memory, shared by the sessions trained on it.
#[wasm_bindgen]
pub struct Data {
    inner: Arc<Dataset>,
}

#[wasm_bindgen]
impl Data {
    /// Checks both files against the manifest (byte length, sha256, labels). The sha256 of each
    /// file may be passed in (hex) when JS computed it with `crypto.subtle`, several times faster
    /// than hashing in wasm; it is computed here when omitted. For a version-2 bundle each file
    /// comes inflated (`DecompressionStream('deflate')` in the worker), its sha256 is required
    /// and is that of the file as downloaded, and the pixel predictor is undone here.
    #[wasm_bindgen(constructor)]
    pub fn new(
        manifest_json: &str,
        train: Vec<u8>,
        test: Vec<u8>,
        train_sha256: Option<String>,
        test_sha256: Option<String>,
    ) -> Result<Data, JsError> {
        let manifest = Manifest::parse(manifest_json.as_bytes())?;
        let data =
            Dataset::from_bundle_hashed(&manifest, (train, train_sha256.as_deref()), (test, test_sha256.as_deref()))?;
        Ok(Data { inner: Arc::new(data) })
    }

    pub fn classes(&self) -> Vec<String> {
        self.inner.classes.clone()
    }

    #[wasm_bindgen(js_name = trainLength)]
    pub fn train_len(&self) -> usize {
        self.inner.train.len()
    }

    #[wasm_bindgen(js_name = testLength)]
    pub fn test_len(&self) -> usize {
        self.inner.test.len()
    }

    /// Test image `i` as 32x32 RGBA, for display.
    #[wasm_bindgen(js_name = testImageRgba)]
    pub fn test_image_rgba(&self, i: usize) -> Result<Vec<u8>, JsError> {
        self.check_index(i)?;
        Ok(chw_to_rgba(self.inner.test.image(i)))
    }

    #[wasm_bindgen(js_name = testLabel)]
    pub fn test_label(&self, i: usize) -> Result<u8, JsError> {
        self.check_index(i)?;
        Ok(self.inner.test.label(i))
    }

    fn check_index(&self, i: usize) -> Result<(), Error> {
        check_image(&self.inner.test, "test", i)
    }
}

/// Split `"train"` or `"test"` of `data`; any other name is refused, with the two it takes.
pub(crate) fn split_of<'a>(data: &'a Dataset, split: &str) -> Result<&'a Split, Error> {
    match split {
        "train" => Ok(&data.train),
        "test" => Ok(&data.test),
        other => Err(Error::Config(format!("unknown split '{other}' (train or test)"))),
    }
}

/// Refuses image `i` of `split` (named `name` in the message) when it does not exist.
pub(crate) fn check_image(split: &Split, name: &str, i: usize) -> Result<(), Error> {
    if i >= split.len() {
        return Err(Error::Config(format!("{name} image {i} does not exist (there are {})", split.len())));
    }
    Ok(())
}

/// The test images `indices` one after another (planar bytes), each checked: the input of
/// `predictTest` on either backend.
pub(crate) fn test_images(test: &Split, indices: &[u32]) -> Result<Vec<u8>, Error> {
    let mut images = Vec::with_capacity(indices.len() * PIXELS);
    for &i in indices {
        check_image(test, "test", i as usize)?;
        images.extend_from_slice(test.image(i as usize));
    }
    Ok(images)
}

/// A training run: model, optimizer, loader position.
#[wasm_bindgen]
pub struct Session {
    trainer: Trainer,
    /// Unit-tile history and the cached training-set scan (`inspect.rs`).
    inspector: crate::inspect::Inspector,
}

#[wasm_bindgen]
impl Session {
    #[wasm_bindgen(constructor)]
    pub fn new(config_json: &str, data: &Data) -> Result<Session, JsError> {
        let config = parse_config(config_json)?;
        Ok(Session { trainer: Trainer::new(config, Arc::clone(&data.inner))?, inspector: Default::default() })
    }

    /// The configuration, as JSON.
    pub fn config(&self) -> String {
        serde_json::to_string(&self.trainer.config).expect("config serialises")
    }

    #[wasm_bindgen(js_name = parameterSummary)]
    pub fn parameter_summary(&self) -> String {
        self.trainer.config.model.parameter_summary()
    }

    #[wasm_bindgen(js_name = epochsDone)]
    pub fn epochs_done(&self) -> usize {
        self.trainer.epochs_done()
    }

    #[wasm_bindgen(js_name = batchesPerEpoch)]
    pub fn batches_per_epoch(&self) -> usize {
        self.trainer.batches_per_epoch()
    }

    #[wasm_bindgen(js_name = trainLength)]
    pub fn train_len(&self) -> usize {
        self.trainer.train_len()
    }

    /// Trains up to `n` batches; `epoch` is set when this call finished an epoch.
    #[wasm_bindgen(js_name = trainBatches, unchecked_return_type = "TrainStep")]
    pub fn train_batches(&mut self, n: usize) -> Result<JsValue, JsError> {
        #[derive(Serialize)]
        struct Step {
            progress: crate::train::Progress,
            epoch: Option<crate::train::EpochStats>,
        }
        let mut last = crate::train::Progress::default();
        self.inspector.observe(&self.trainer);
        let trainer = &mut self.trainer;
        let epoch = on_pool(|| trainer.train_batches(n, &mut |p| last = p))?;
        self.inspector.observe(&self.trainer);
        to_js(&Step { progress: last, epoch })
    }

    /// Accuracy, loss and confusion matrix on `"train"` or `"test"`.
    #[wasm_bindgen(unchecked_return_type = "EvalStats")]
    pub fn evaluate(&mut self, split: &str) -> Result<JsValue, JsError> {
        let train = std::ptr::eq(split_of(&self.trainer.data, split)?, &self.trainer.data.train);
        let trainer = &mut self.trainer;
        to_js(&on_pool(|| trainer.evaluate_split(train)))
    }

    /// Class probabilities of a picture given as RGBA (`width * height * 4` bytes, any size: the
    /// centre square is resized to 32x32), with the 32x32 RGBA the model saw.
    #[wasm_bindgen(js_name = predictRgba, unchecked_return_type = "Prediction")]
    pub fn predict_rgba(&mut self, rgba: &[u8], width: u32, height: u32) -> Result<JsValue, JsError> {
        let chw = rgba_to_chw(rgba, width, height)?;
        let trainer = &mut self.trainer;
        let probabilities = on_pool(|| trainer.predict(&chw).row(0).to_vec());
        // Built by hand: serde's JSON-compatible mapping would turn the bytes into a plain Array.
        let out = js_sys::Object::new();
        let set = |k: &str, v: JsValue| js_sys::Reflect::set(&out, &k.into(), &v).map(|_| ());
        set("probabilities", to_js(&probabilities)?)
            .map_err(|_| JsError::new("internal: cannot build the prediction"))?;
        let image = js_sys::Uint8Array::from(chw_to_rgba(&chw).as_slice());
        set("image", image.into()).map_err(|_| JsError::new("internal: cannot build the prediction"))?;
        Ok(out.into())
    }

    /// Probabilities for test images `indices`, flattened `[indices.len() * classes]`.
    #[wasm_bindgen(js_name = predictTest)]
    pub fn predict_test(&mut self, indices: &[u32]) -> Result<Vec<f32>, JsError> {
        let images = test_images(&self.trainer.data.test, indices)?;
        let trainer = &mut self.trainer;
        Ok(on_pool(|| trainer.predict(&images).into_raw_vec_and_offset().0))
    }

    /// The whole run between two epochs (weights, optimizer state, loader position, epoch
    /// count): `Session.resume` continues it exactly.
    #[wasm_bindgen(js_name = saveState)]
    pub fn save_state(&self) -> Result<Vec<u8>, JsError> {
        Ok(self.trainer.save_state()?)
    }

    /// Continues a run saved by `saveState` on `data`.
    pub fn resume(state: &[u8], data: &Data) -> Result<Session, JsError> {
        Ok(Session { trainer: Trainer::resume(state, Arc::clone(&data.inner))?, inspector: Default::default() })
    }

    /// The weights as a safetensors file (PyTorch `state_dict` names), with the run's
    /// configuration, seed included, in its metadata.
    #[wasm_bindgen(js_name = exportWeights)]
    pub fn export_weights(&self) -> Vec<u8> {
        checkpoint::save_trained(&self.trainer.model, &self.trainer.config)
    }

    /// Replaces the weights from a safetensors file (from the CLI, the page or PyTorch). The run
    /// then starts anew from them: epochs counted from 0, optimizer fresh, inspection reset.
    #[wasm_bindgen(js_name = importWeights)]
    pub fn import_weights(&mut self, bytes: &[u8]) -> Result<(), JsError> {
        self.trainer.load_weights(bytes)?;
        self.inspector.reset();
        Ok(())
    }
}
