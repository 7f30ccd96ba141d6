//! The WebGPU backend's JavaScript API: `GpuSession`, the GPU twin of `Session`, and the probe
//! (its benchmarks are in `wasm::bench`, feature `bench`).
//!
//! ```js
//! const report = await gpuProbe();      // {available, fallback, description, reason, ...}
//! const s = await GpuSession.create(JSON.stringify(config), data);   // or GpuSession.resume(state, data)
//! const r = await s.trainBatches(40);    // {progress, epoch: EpochStats | null}, as Session's
//! await s.evaluate("test");              // EvalStats, computed on the GPU
//! await s.predictRgba(rgba, w, h);       // {probabilities, image}
//! const state = await s.saveState();     // between epochs; Session.resume(state, data) takes it
//! ```
//! Every method that touches the GPU returns a Promise; one call at a time (a second call while
//! one is pending is rejected, never queued). Errors reject with an `Error` carrying the core's
//! message; after a device loss every call rejects with "the GPU device was lost (REASON)", and
//! the run continues on the CPU from the last `saveState()` (`Session.resume`).

use super::{Data, parse_config, split_of, test_images, to_js};
use crate::checkpoint;
use crate::data::Dataset;
use crate::data::resize::{chw_to_rgba, rgba_to_chw};
use crate::error::Error;
use crate::gpu::{Gpu, GpuTrainer};
use crate::train::{EpochStats, Progress, Trainer};
use serde::Serialize;
use std::cell::RefCell;
use std::future::Future;
use std::rc::Rc;
use std::sync::Arc;
use wasm_bindgen::prelude::*;

#[wasm_bindgen(typescript_custom_section)]
const TS_GPU_TYPES: &str = r#"
export interface AdapterReport { available: boolean; fallback: boolean; vendor: string; architecture: string;
  device: string; adapter_description: string; description: string; reason: string | null; }
"#;

/// The `Error` a promise rejects with. A fault of the GPU itself (no adapter, a lost device, GPU
/// memory or buffer limits, a shader that does not compile: `Error::Gpu`) is named `GpuError`, so
/// that the worker can tell it from a fault of the run (divergence, bad input) and move the run
/// to wasm (`www/worker/backend.js`).
fn js_error(e: impl Into<Error>) -> JsValue {
    let e = e.into();
    let err = js_sys::Error::new(&e.to_string());
    if matches!(e, Error::Gpu(_)) {
        err.set_name(GPU_ERROR_NAME);
    }
    err.into()
}

/// `Error.name` of the GPU's own faults (see [`js_error`]).
const GPU_ERROR_NAME: &str = "GpuError";

/// A promise of `fut`'s value (as a JS value), rejected with an `Error` on failure.
pub(super) fn promise<F>(fut: F) -> js_sys::Promise
where
    F: Future<Output = Result<JsValue, Error>> + 'static,
{
    wasm_bindgen_futures::future_to_promise(async move { fut.await.map_err(js_error) })
}

pub(super) fn to_js_value<T: Serialize>(v: &T) -> Result<JsValue, Error> {
    to_js(v).map_err(|_| Error::Gpu("internal: cannot convert a result to JS".into()))
}

/// Looks for a WebGPU adapter (in a worker or on the page) without keeping it: for the `auto`
/// backend choice. Never rejects: no adapter is a report with `available: false` and a `reason`.
#[wasm_bindgen(js_name = gpuProbe, unchecked_return_type = "Promise<AdapterReport>")]
pub fn gpu_probe() -> js_sys::Promise {
    promise(async { to_js_value(&crate::gpu::probe().await) })
}

/// A training run on the GPU. See the module documentation.
#[wasm_bindgen]
pub struct GpuSession {
    /// Empty while a call has the trainer (across its awaits): a second call is refused.
    inner: Rc<RefCell<Option<GpuTrainer>>>,
    gpu: Gpu,
}

const BUSY: &str = "the GPU session is busy with another call; await it first";

impl GpuSession {
    /// Runs `f` on the trainer in a promise. The trainer is taken out of the session for the
    /// call and put back after it, so a call made meanwhile is rejected as busy.
    fn with<F>(&self, f: F) -> js_sys::Promise
    where
        F: AsyncFnOnce(&mut GpuTrainer) -> Result<JsValue, Error> + 'static,
    {
        let inner = Rc::clone(&self.inner);
        promise(async move {
            let mut t = inner.borrow_mut().take().ok_or_else(|| Error::Gpu(BUSY.into()))?;
            let result = f(&mut t).await;
            *inner.borrow_mut() = Some(t);
            result
        })
    }

    fn read<T>(&self, f: impl FnOnce(&GpuTrainer) -> T) -> Result<T, JsError> {
        let t = self.inner.borrow();
        Ok(f(t.as_ref().ok_or_else(|| JsError::new(BUSY))?))
    }

    async fn start(trainer: Trainer) -> Result<JsValue, Error> {
        let gpu = Gpu::request().await?;
        let t = GpuTrainer::with_gpu(&gpu, trainer).await?;
        Ok(GpuSession { inner: Rc::new(RefCell::new(Some(t))), gpu }.into())
    }
}

#[wasm_bindgen]
impl GpuSession {
    /// A new run of `configJson` (a `TrainConfig`) on `data`, on the GPU: the same initial
    /// weights, batch order and model as `new Session(configJson, data)`. Rejects with "no WebGPU
    /// adapter" and the like; a software adapter is accepted (check `gpuProbe()` first for `auto`).
    #[wasm_bindgen(unchecked_return_type = "Promise<GpuSession>")]
    pub fn create(config_json: &str, data: &Data) -> js_sys::Promise {
        let config = parse_config(config_json);
        let data: Arc<Dataset> = Arc::clone(&data.inner);
        promise(async move { GpuSession::start(Trainer::new(config?, data)?).await })
    }

    /// Continues on the GPU a run saved by `saveState` of either backend.
    #[wasm_bindgen(unchecked_return_type = "Promise<GpuSession>")]
    pub fn resume(state: &[u8], data: &Data) -> js_sys::Promise {
        let trainer = Trainer::resume(state, Arc::clone(&data.inner));
        promise(async move { GpuSession::start(trainer?).await })
    }

    /// One line naming the adapter, for the mode line ("nvidia ampere (…)").
    #[wasm_bindgen(js_name = adapterDescription)]
    pub fn adapter_description(&self) -> String {
        self.gpu.report().description.clone()
    }

    pub fn config(&self) -> Result<String, JsError> {
        self.read(|t| serde_json::to_string(&t.trainer().config).expect("config serialises"))
    }

    #[wasm_bindgen(js_name = parameterSummary)]
    pub fn parameter_summary(&self) -> Result<String, JsError> {
        self.read(|t| t.trainer().config.model.parameter_summary())
    }

    #[wasm_bindgen(js_name = epochsDone)]
    pub fn epochs_done(&self) -> Result<usize, JsError> {
        self.read(|t| t.trainer().epochs_done())
    }

    #[wasm_bindgen(js_name = batchesPerEpoch)]
    pub fn batches_per_epoch(&self) -> Result<usize, JsError> {
        self.read(|t| t.trainer().batches_per_epoch())
    }

    #[wasm_bindgen(js_name = trainLength)]
    pub fn train_len(&self) -> Result<usize, JsError> {
        self.read(|t| t.trainer().train_len())
    }

    /// Trains up to `n` batches in one GPU submission; `epoch` is set when this call finished an
    /// epoch (validation on the GPU included).
    #[wasm_bindgen(js_name = trainBatches, unchecked_return_type = "Promise<TrainStep>")]
    pub fn train_batches(&self, n: usize) -> js_sys::Promise {
        self.with(async move |t| {
            #[derive(Serialize)]
            struct Step {
                progress: Progress,
                epoch: Option<EpochStats>,
            }
            let mut last = Progress::default();
            let epoch = t.train_batches(n, &mut |p| last = p).await?;
            to_js_value(&Step { progress: last, epoch })
        })
    }

    /// Accuracy, loss and confusion matrix on `"train"` or `"test"`, computed on the GPU.
    #[wasm_bindgen(unchecked_return_type = "Promise<EvalStats>")]
    pub fn evaluate(&self, split: &str) -> js_sys::Promise {
        let split = split.to_owned();
        self.with(async move |t| {
            let data = &t.trainer().data;
            let train = std::ptr::eq(split_of(data, &split)?, &data.train);
            to_js_value(&t.evaluate_split(train).await?)
        })
    }

    /// Class probabilities of a picture given as RGBA (any size: its centre square is resized to
    /// 32x32), with the 32x32 RGBA the model saw, as `Session.predictRgba`.
    #[wasm_bindgen(js_name = predictRgba, unchecked_return_type = "Promise<Prediction>")]
    pub fn predict_rgba(&self, rgba: &[u8], width: u32, height: u32) -> js_sys::Promise {
        let chw = rgba_to_chw(rgba, width, height);
        self.with(async move |t| {
            let chw = chw?;
            let probabilities = t.predict(&chw).await?.row(0).to_vec();
            let out = js_sys::Object::new();
            let fail = |_| Error::Gpu("internal: cannot build the prediction".into());
            js_sys::Reflect::set(&out, &"probabilities".into(), &to_js_value(&probabilities)?).map_err(fail)?;
            let image = js_sys::Uint8Array::from(chw_to_rgba(&chw).as_slice());
            js_sys::Reflect::set(&out, &"image".into(), &image.into()).map_err(fail)?;
            Ok(out.into())
        })
    }

    /// Probabilities for test images `indices`, flattened `[indices.len() * classes]`.
    #[wasm_bindgen(js_name = predictTest, unchecked_return_type = "Promise<Float32Array>")]
    pub fn predict_test(&self, indices: &[u32]) -> js_sys::Promise {
        let indices = indices.to_vec();
        self.with(async move |t| {
            let images = test_images(&t.trainer().data.test, &indices)?;
            let p = t.predict(&images).await?.into_raw_vec_and_offset().0;
            Ok(js_sys::Float32Array::from(p.as_slice()).into())
        })
    }

    /// The run between two epochs, for `Session.resume` or `GpuSession.resume`.
    #[wasm_bindgen(js_name = saveState, unchecked_return_type = "Promise<Uint8Array>")]
    pub fn save_state(&self) -> js_sys::Promise {
        self.with(async move |t| Ok(js_sys::Uint8Array::from(t.save_state().await?.as_slice()).into()))
    }

    /// The weights as a safetensors file (PyTorch `state_dict` names).
    #[wasm_bindgen(js_name = exportWeights, unchecked_return_type = "Promise<Uint8Array>")]
    pub fn export_weights(&self) -> js_sys::Promise {
        self.with(async move |t| {
            let trainer = t.trainer_synced().await?;
            Ok(js_sys::Uint8Array::from(checkpoint::save_trained(&trainer.model, &trainer.config).as_slice()).into())
        })
    }

    /// Replaces the weights from a safetensors file and uploads them.
    #[wasm_bindgen(js_name = importWeights, unchecked_return_type = "Promise<void>")]
    pub fn import_weights(&self, bytes: &[u8]) -> js_sys::Promise {
        let bytes = bytes.to_vec();
        self.with(async move |t| {
            t.load_weights(&bytes).await?;
            Ok(JsValue::UNDEFINED)
        })
    }

    /// The hard examples of this run's epochs, as `Session.hardExamples`: the loss kernel stores
    /// each training image's loss and correctness, read back with the batches' statistics.
    #[wasm_bindgen(js_name = hardExamples, unchecked_return_type = "HardExamples")]
    pub fn hard_examples(&self, n: usize) -> Result<JsValue, JsError> {
        to_js(&self.read(|t| t.trainer().examples.report(n, &t.trainer().data.train))?)
    }

    /// "Train more": raises the run's epoch budget by `n` and returns it, as `Session.extendEpochs`.
    #[wasm_bindgen(js_name = extendEpochs, unchecked_return_type = "Promise<number>")]
    pub fn extend_epochs(&self, n: usize) -> js_sys::Promise {
        self.with(async move |t| Ok((t.extend_epochs(n)? as f64).into()))
    }

    /// Test hook: destroys the device, as a driver reset would; every later call rejects with
    /// "the GPU device was lost (…)".
    #[wasm_bindgen(js_name = debugLoseDevice)]
    pub fn debug_lose_device(&self) {
        self.gpu.lose("destroyed by debugLoseDevice");
    }
}
