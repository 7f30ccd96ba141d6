//! "Why this answer?": the saliency of each input pixel for a class.
//!
//! For an image with pixel values `v` (`0..=255`, planar `C, H, W`), the model sees
//! `x = (v / 255 - mean[c]) / std[c]` (the lecture's constants, [`crate::data::MEAN`] and
//! [`crate::data::STD`]) and gives class `k` the log-probability `log p[k](x)`. The saliency is
//!
//! `g[c, y, x] = d log p[k] / d v[c, y, x] = (d log p[k] / d x[c, y, x]) / (255 std[c])`,
//!
//! the change of the log-probability per pixel level, by the model's own backward pass
//! ([`Mlp::input_gradient`]: the first layer's input gradient, which training skips). The map
//! for the overlay is `m[y, x] = max_c |g[c, y, x]|`.

use crate::data::{Normalizer, PIXELS, STD};
use crate::error::{Error, Result};
use crate::layers::softmax;
use crate::model::Mlp;
use ndarray::{Array2, ArrayView2};
use serde::Serialize;

/// Saliency of one image for one class.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Saliency {
    /// The class explained.
    pub class: usize,
    /// The model's class probabilities for the image.
    pub probabilities: Vec<f32>,
    /// `log p[class]`.
    pub log_probability: f32,
    /// `d log p[class] / d v` per pixel level, planar `[3 x 32 x 32]` as the data.
    pub gradient: Vec<f32>,
    /// `max_c |gradient[c, y, x]|`, `[32 x 32]` rows top to bottom.
    pub magnitude: Vec<f32>,
    /// The largest value of `magnitude` (to scale the overlay).
    pub magnitude_max: f32,
}

/// The saliency of `image` (3072 planar bytes) for `class`, or for the class the model predicts
/// when `class` is `None`. `norm` must be the lecture's normalisation ([`Normalizer::default`],
/// as training uses).
pub fn saliency(model: &mut Mlp, image: &[u8], norm: &Normalizer, class: Option<usize>) -> Result<Saliency> {
    if image.len() != PIXELS {
        return Err(Error::Shape { what: "image".into(), expected: vec![PIXELS], actual: vec![image.len()] });
    }
    let mut x = Array2::zeros((1, PIXELS));
    norm.apply(image, x.as_slice_mut().expect("contiguous"));
    saliency_of_input(model, x.view(), class)
}

/// [`saliency`] of an already normalised input row `x: [1, 3072]`.
pub fn saliency_of_input(model: &mut Mlp, x: ArrayView2<f32>, class: Option<usize>) -> Result<Saliency> {
    let classes = model.config.classes();
    let probabilities = softmax(model.forward(x).row(0).as_slice().expect("row-major output"));
    let class = match class {
        Some(c) if c >= classes => {
            return Err(Error::Config(format!("class {c} does not exist (the model has {classes})")));
        }
        Some(c) => c,
        None => crate::loss::argmax(ndarray::ArrayView1::from(&probabilities)),
    };
    let mut dx = Array2::zeros((1, PIXELS));
    let logp = model.input_gradient(x, &[class], dx.view_mut());
    let plane = PIXELS / 3;
    let mut gradient = dx.into_raw_vec_and_offset().0;
    for (c, g) in gradient.chunks_exact_mut(plane).enumerate() {
        let dxdv = 1.0 / (255.0 * STD[c]);
        g.iter_mut().for_each(|g| *g *= dxdv);
    }
    let magnitude: Vec<f32> =
        (0..plane).map(|p| (0..3).map(|c| gradient[c * plane + p].abs()).fold(0.0, f32::max)).collect();
    let magnitude_max = magnitude.iter().copied().fold(0.0, f32::max);
    Ok(Saliency { class, probabilities, log_probability: logp[[0, class]], gradient, magnitude, magnitude_max })
}
