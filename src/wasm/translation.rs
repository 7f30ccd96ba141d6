//! The translation API (`crate::inspect::translation`): a picture moved by the shift control, and
//! the translation test of the current model.
//!
//! ```js
//! s.shiftImage("test", 12, 3, -1);   // (a class to explain may follow: default, the answer)
//!                                    // {dx, dy, image: Uint8Array(4096) RGBA as the model sees it,
//!                                    //  probabilities, magnitude: Float32Array(1024), magnitude_max,
//!                                    //  kind: "hidden" | "conv", original, shifted: Float32Array,
//!                                    //  side, second, second_shifted, second_side, similarity}
//! s.shiftRgba(rgba, w, h, 3, -1);    // the same for a picture of one's own
//! s.translationTest();               // {shift_px: [0, 1, 2, 3, 4, 6, 8], shift_accuracy, shift_similarity, seconds}
//! const t = new TranslationRun(s);   // the same test, in slices:
//! while (!t.step(s, 3)) { /* other messages */ }  // at most 3 forward passes of 500 images per call
//! t.progress();                      // passes done / passes in all
//! t.result();                        // as translationTest (seconds: the time spent in step)
//! ```
//! The translation test makes `2000 (1 + 4 x 6)` forward passes on the test split (about a
//! quarter of an epoch's work for the lecture's MLP, seconds to a minute on wasm): the worker
//! runs it in slices ([`TranslationRun`]) when a run ends, answering other requests in between.

use super::inspect::{Js, saliency_js};
use super::{Session, check_image, on_pool, split_of, to_js};
use crate::clock::Stopwatch;
use crate::data::Normalizer;
use crate::data::resize::{chw_to_rgba, rgba_to_chw};
use crate::inspect::translation::{self as tr, PAGE_SHIFTS, ShiftView, shift_view, translation_test};
use js_sys::{Float32Array, Uint8Array};
use std::sync::Arc;
use wasm_bindgen::prelude::*;

#[wasm_bindgen(typescript_custom_section)]
const TS_TRANSLATION: &str = r#"
export interface ShiftView { dx: number; dy: number; image: Uint8Array; probabilities: number[]; class: number;
  magnitude: Float32Array; magnitude_max: number; kind: "hidden" | "conv"; original: Float32Array;
  shifted: Float32Array; side: number; second: Float32Array; second_shifted: Float32Array; second_side: number;
  similarity: number; }
export interface TranslationTest { shift_px: number[]; shift_accuracy: number[]; shift_similarity: number[];
  seconds: number; }
"#;

fn view_js(v: ShiftView) -> Result<JsValue, JsError> {
    let s = saliency_js(v.saliency, &v.image)?;
    let get = |k: &str| js_sys::Reflect::get(&s, &k.into()).map_err(|_| JsError::new("internal: saliency"));
    Ok(Js::new()
        .set("dx", v.dx)?
        .set("dy", v.dy)?
        .set("image", Uint8Array::from(chw_to_rgba(&v.image).as_slice()))?
        .set("probabilities", get("probabilities")?)?
        .set("class", get("class")?)?
        .set("magnitude", get("magnitude")?)?
        .set("magnitude_max", get("magnitude_max")?)?
        .set("kind", if v.side > 0 { "conv" } else { "hidden" })?
        .set("original", Float32Array::from(v.original.as_slice()))?
        .set("shifted", Float32Array::from(v.shifted.as_slice()))?
        .set("side", v.side as f64)?
        .set("second", Float32Array::from(v.second.as_slice()))?
        .set("second_shifted", Float32Array::from(v.second_shifted.as_slice()))?
        .set("second_side", v.second_side as f64)?
        .set("similarity", v.similarity)?
        .done())
}

#[wasm_bindgen]
impl Session {
    /// Image `index` of `split` moved by `(dx, dy)` pixels (right and down positive, each in
    /// -8..=8; zeros, the mean colour, shifted in): the prediction, the saliency and the first
    /// layer's response for the original and the moved picture, with their similarity. The
    /// saliency is that of `class`, by default the moved picture's answer.
    #[wasm_bindgen(js_name = shiftImage, unchecked_return_type = "ShiftView")]
    pub fn shift_image(
        &mut self,
        split: &str,
        index: usize,
        dx: i32,
        dy: i32,
        class: Option<u32>,
    ) -> Result<JsValue, JsError> {
        let data = Arc::clone(&self.trainer.data);
        let s = split_of(&data, split)?;
        check_image(s, split, index)?;
        self.shift_of(s.image(index), (dx, dy), class)
    }

    /// [`Session::shift_image`] for a picture given as RGBA (any size, as `predictRgba`).
    #[wasm_bindgen(js_name = shiftRgba, unchecked_return_type = "ShiftView")]
    pub fn shift_rgba(
        &mut self,
        rgba: &[u8],
        width: u32,
        height: u32,
        dx: i32,
        dy: i32,
        class: Option<u32>,
    ) -> Result<JsValue, JsError> {
        let chw = rgba_to_chw(rgba, width, height)?;
        self.shift_of(&chw, (dx, dy), class)
    }

    fn shift_of(&mut self, image: &[u8], shift: (i32, i32), class: Option<u32>) -> Result<JsValue, JsError> {
        let model = &mut self.trainer.model;
        let class = class.map(|c| c as usize);
        let v = on_pool(|| shift_view(model, image, &Normalizer::default(), shift, class))?;
        view_js(v)
    }

    /// The translation test of the current model on the test split, at 0, 1, 2, 3, 4, 6 and 8
    /// pixels (`crate::inspect::translation`), with the seconds it took.
    #[wasm_bindgen(js_name = translationTest, unchecked_return_type = "TranslationTest")]
    pub fn translation_test(&mut self) -> Result<JsValue, JsError> {
        let clock = Stopwatch::start();
        let trainer = &mut self.trainer;
        let data = Arc::clone(&trainer.data);
        let t = on_pool(|| translation_test(&mut trainer.model, &data.test, &Normalizer::default(), &PAGE_SHIFTS));
        let out = to_js(&t)?;
        js_sys::Reflect::set(&out, &"seconds".into(), &clock.seconds().into())
            .map_err(|_| JsError::new("internal: cannot build a result"))?;
        Ok(out)
    }
}

/// The translation test of one model, resumable: each [`TranslationRun::step`] makes a few
/// forward passes, so that the worker answers other requests between two steps. Its numbers are
/// those of [`Session::translation_test`], bit for bit ([`tr::TranslationRun`]).
#[wasm_bindgen]
pub struct TranslationRun {
    run: tr::TranslationRun,
    /// Where the session's training stood when the test began (epochs done, within an epoch): a
    /// model trained since is refused. (Weights replaced in the same session are the caller's to
    /// watch: the worker ends the test for another model.)
    stage: (usize, bool),
    seconds: f64,
}

#[wasm_bindgen]
impl TranslationRun {
    /// The test of `session`'s current model on its test split, at 0, 1, 2, 3, 4, 6 and 8 pixels.
    #[wasm_bindgen(constructor)]
    pub fn new(session: &Session) -> TranslationRun {
        let trainer = &session.trainer;
        TranslationRun {
            run: tr::TranslationRun::new(&trainer.model, trainer.data.test.len(), &PAGE_SHIFTS),
            stage: (trainer.epochs_done(), trainer.in_epoch()),
            seconds: 0.0,
        }
    }

    /// Makes at most `passes` forward passes (at least one) of `session`'s model, the one the
    /// test began with; returns whether the test is over.
    pub fn step(&mut self, session: &mut Session, passes: usize) -> Result<bool, JsError> {
        let trainer = &mut session.trainer;
        if (trainer.epochs_done(), trainer.in_epoch()) != self.stage {
            return Err(JsError::new("the model was trained further since the translation test began"));
        }
        let clock = Stopwatch::start();
        let data = Arc::clone(&trainer.data);
        let model = &mut trainer.model;
        let run = &mut self.run;
        let done = on_pool(|| run.advance(model, &data.test, &Normalizer::default(), passes));
        self.seconds += clock.seconds();
        Ok(done)
    }

    /// Forward passes made, as a fraction of all (0 to 1).
    pub fn progress(&self) -> f64 {
        self.run.passes_done() as f64 / self.run.passes_total().max(1) as f64
    }

    /// Forward passes made so far.
    #[wasm_bindgen(getter)]
    pub fn passes(&self) -> usize {
        self.run.passes_done()
    }

    /// The result, as [`Session::translation_test`]'s, `seconds` the time spent in `step`.
    #[wasm_bindgen(unchecked_return_type = "TranslationTest")]
    pub fn result(&self) -> Result<JsValue, JsError> {
        if !self.run.done() {
            return Err(JsError::new("the translation test is not over yet"));
        }
        let out = to_js(&self.run.result())?;
        js_sys::Reflect::set(&out, &"seconds".into(), &self.seconds.into())
            .map_err(|_| JsError::new("internal: cannot build a result"))?;
        Ok(out)
    }
}
