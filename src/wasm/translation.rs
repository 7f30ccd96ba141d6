//! The translation API (`crate::inspect::translation`): a picture moved by the shift control, and
//! the translation test of the current model.
//!
//! ```js
//! s.shiftImage("test", 12, 3, -1);   // {dx, dy, image: Uint8Array(4096) RGBA as the model sees it,
//!                                    //  probabilities, magnitude: Float32Array(1024), magnitude_max,
//!                                    //  kind: "hidden" | "conv", original, shifted: Float32Array,
//!                                    //  side, second, second_shifted, second_side, similarity}
//! s.shiftRgba(rgba, w, h, 3, -1);    // the same for a picture of one's own
//! s.translationTest();               // {shift_px: [0, 1, 2, 3, 4, 6, 8], shift_accuracy, shift_similarity, seconds}
//! ```
//! The translation test makes `2000 (1 + 4 x 6)` forward passes on the test split (about a
//! quarter of an epoch's work for the lecture's MLP): the worker runs it once when a run ends.

use super::inspect::{Js, saliency_js};
use super::{Session, check_image, on_pool, split_of, to_js};
use crate::clock::Stopwatch;
use crate::data::Normalizer;
use crate::data::resize::{chw_to_rgba, rgba_to_chw};
use crate::inspect::translation::{PAGE_SHIFTS, ShiftView, shift_view, translation_test};
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
    /// layer's response for the original and the moved picture, with their similarity.
    #[wasm_bindgen(js_name = shiftImage, unchecked_return_type = "ShiftView")]
    pub fn shift_image(&mut self, split: &str, index: usize, dx: i32, dy: i32) -> Result<JsValue, JsError> {
        let data = Arc::clone(&self.trainer.data);
        let s = split_of(&data, split)?;
        check_image(s, split, index)?;
        self.shift_of(s.image(index), dx, dy)
    }

    /// [`Session::shift_image`] for a picture given as RGBA (any size, as `predictRgba`).
    #[wasm_bindgen(js_name = shiftRgba, unchecked_return_type = "ShiftView")]
    pub fn shift_rgba(&mut self, rgba: &[u8], width: u32, height: u32, dx: i32, dy: i32) -> Result<JsValue, JsError> {
        let chw = rgba_to_chw(rgba, width, height)?;
        self.shift_of(&chw, dx, dy)
    }

    fn shift_of(&mut self, image: &[u8], dx: i32, dy: i32) -> Result<JsValue, JsError> {
        let model = &mut self.trainer.model;
        let v = on_pool(|| shift_view(model, image, &Normalizer::default(), dx, dy))?;
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
