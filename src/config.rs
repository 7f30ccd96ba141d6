//! Run configuration: the model, the optimizer and the loop, with the lecture's presets.
//!
//! A configuration is plain data (serde), the same in the CLI, in the page's URL, in the wasm API and
//! in a checkpoint's metadata, so a run can be shared and reproduced from it and its seed.
//! [`TrainConfig::validate`] refuses bad values before anything is allocated.

use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};

/// Largest width of one layer; far above any sensible MLP on 32x32 images.
pub const MAX_LAYER_WIDTH: usize = 16_384;
/// Largest total number of parameters (weights and biases); 64 M floats are 256 MB, and the
/// optimizer state can triple that, which is about what a browser tab can hold.
pub const MAX_PARAMETERS: usize = 64 << 20;
/// Most layer widths in one model (input and output included).
pub const MAX_LAYERS: usize = 32;
/// Largest minibatch.
pub const MAX_BATCH_SIZE: usize = 65_536;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Activation {
    Tanh,
    Relu,
}

/// The loss, which also decides the last layer: `Nll` puts a `LogSoftmax` after the last `Linear`
/// (the lecture's first model), `CrossEntropy` takes the logits directly (its deep model).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LossKind {
    Nll,
    CrossEntropy,
}

/// A model: an optional convolutional front, then the fully connected layers.
///
/// With `conv` empty it is the lecture's MLP, `layers` from input to output. With `conv =
/// [c1, c2, ...]` it is the book's `Net` (chapter 8) generalised: for each width `c`,
/// `Conv2d(prev, c, kernel_size=3, padding=1) -> activation -> MaxPool2d(2)` on the 3 x 32 x 32
/// image, then the flatten, then `layers`, whose first width is the flattened size
/// `c_last * (32 / 2^n)^2` (`8 * 8 * 8 = 512` for the book's `[16, 8]`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    /// Widths of the fully connected layers from their input to the output, e.g. `[3072, 512, 2]`.
    pub layers: Vec<usize>,
    pub activation: Activation,
    pub loss: LossKind,
    /// Output channels of each convolution block; empty for an MLP (and then not serialised, so
    /// that an MLP's configuration and checkpoints stay what they were).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conv: Vec<usize>,
}

/// The images: 3 colour planes of 32 x 32, each image's row `[C, H, W]` as PyTorch stores it.
pub const IMAGE_CHANNELS: usize = 3;
/// Height and width of an image.
pub const IMAGE_SIDE: usize = 32;
/// The convolution blocks' geometry (the book's `Net`): 3 x 3 kernels, padding 1, stride 1, then
/// a 2 x 2 max pooling.
pub const CONV_KERNEL: usize = 3;
pub const CONV_PADDING: usize = 1;
pub const POOL: usize = 2;
/// Most convolution blocks: each halves the 32-pixel side.
pub const MAX_CONV_BLOCKS: usize = 5;
/// Largest channel count of one convolution.
pub const MAX_CONV_CHANNELS: usize = 256;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OptimizerKind {
    Sgd,
    Adam,
}

/// Optimizer hyper-parameters with PyTorch's names and defaults.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OptimizerConfig {
    pub kind: OptimizerKind,
    pub lr: f32,
    /// SGD only.
    pub momentum: f32,
    /// SGD only.
    pub nesterov: bool,
    /// L2 penalty added to the gradient (both optimizers, as in PyTorch).
    pub weight_decay: f32,
    /// Adam only.
    pub beta1: f32,
    /// Adam only.
    pub beta2: f32,
    /// Adam only.
    pub eps: f32,
}

impl Default for OptimizerConfig {
    fn default() -> Self {
        OptimizerConfig {
            kind: OptimizerKind::Sgd,
            lr: 1e-2,
            momentum: 0.0,
            nesterov: false,
            weight_decay: 0.0,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainConfig {
    pub model: ModelConfig,
    #[serde(default)]
    pub optimizer: OptimizerConfig,
    pub batch_size: usize,
    pub epochs: usize,
    pub seed: u64,
    /// Train on this many images, drawn (seeded) from the training split; all when absent.
    #[serde(default)]
    pub train_size: Option<usize>,
    /// Data augmentation of the training batches (`none`, the lecture's recipe, is not
    /// serialised, so that such a run's configuration and checkpoints stay what they were).
    #[serde(default, skip_serializing_if = "Augment::is_none")]
    pub augment: Augment,
}

/// Largest augmentation shift, in pixels (a quarter of the 32-pixel side).
pub const MAX_AUGMENT_SHIFT: u8 = 8;

/// Data augmentation, the usual remedy for a network that is not translation invariant: each
/// training image is flipped left-right with probability 1/2 (`flip`) and/or shifted by a random
/// `dx, dy` in `-K..=K` (`shift:K`, zeros, the mean colour, shifted in), in that order, on the
/// normalised tensor. Written as a string: `none`, `flip`, `shift:K` or `flip,shift:K`. The draws
/// are in [`crate::data::augment`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Augment {
    pub flip: bool,
    /// `K`: shifts in `-K..=K` on each axis; 0 for none.
    pub shift: u8,
}

impl Augment {
    pub fn is_none(&self) -> bool {
        !self.flip && self.shift == 0
    }
}

impl std::fmt::Display for Augment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.flip, self.shift) {
            (false, 0) => f.write_str("none"),
            (true, 0) => f.write_str("flip"),
            (false, k) => write!(f, "shift:{k}"),
            (true, k) => write!(f, "flip,shift:{k}"),
        }
    }
}

impl std::str::FromStr for Augment {
    type Err = Error;

    fn from_str(s: &str) -> Result<Augment> {
        let bad = || {
            Error::Config(format!(
                "augment '{s}' is not one of none, flip, shift:K or flip,shift:K (K in 1..={MAX_AUGMENT_SHIFT})"
            ))
        };
        let mut a = Augment::default();
        if s == "none" {
            return Ok(a);
        }
        let parts: Vec<&str> = s.split(',').collect();
        for (i, part) in parts.iter().enumerate() {
            match part.strip_prefix("shift:") {
                None if *part == "flip" && i == 0 => a.flip = true,
                Some(k) if i == parts.len() - 1 && a.shift == 0 => {
                    a.shift = k.parse().ok().filter(|k| (1..=MAX_AUGMENT_SHIFT).contains(k)).ok_or_else(bad)?;
                }
                _ => return Err(bad()),
            }
        }
        if parts.len() > 2 || a.is_none() {
            return Err(bad());
        }
        Ok(a)
    }
}

impl TryFrom<String> for Augment {
    type Error = Error;

    fn try_from(s: String) -> Result<Augment> {
        s.parse()
    }
}

impl From<Augment> for String {
    fn from(a: Augment) -> String {
        a.to_string()
    }
}

/// Names accepted by [`TrainConfig::preset`].
pub const PRESETS: [&str; 3] = ["lecture", "deep", "conv"];

/// Random seeds are drawn below this bound, so that they stay exact in JavaScript numbers and in
/// URLs, and short enough to copy by hand.
pub const RANDOM_SEED_BOUND: u64 = 1 << 32;

/// A fresh seed from the operating system's (or the browser's) entropy source, for a "new seed"
/// run. The seed drawn is recorded in the run's configuration, so that the run can be repeated.
pub fn random_seed() -> Result<u64> {
    let v = getrandom::u64().map_err(|e| Error::Config(format!("cannot draw a random seed: {e}")))?;
    Ok(v % RANDOM_SEED_BOUND)
}

impl TrainConfig {
    /// `lecture`: 3072-512-2, Tanh, LogSoftmax + NLLLoss, SGD lr 1e-2, batch 64, 100 epochs.
    /// `deep`: 3072-1024-512-128-2, Tanh, CrossEntropyLoss, same optimizer and loop.
    /// `conv`: the book's `Net` (chapter 8): conv 3->16 and 16->8 (3x3, padding 1), each with
    /// Tanh and 2x2 max pooling, then 512-32-2 with Tanh between; CrossEntropyLoss, same
    /// optimizer and loop.
    pub fn preset(name: &str) -> Result<TrainConfig> {
        let model = match name {
            "lecture" => ModelConfig::mlp(vec![3072, 512, 2], Activation::Tanh, LossKind::Nll),
            "deep" => ModelConfig::mlp(vec![3072, 1024, 512, 128, 2], Activation::Tanh, LossKind::CrossEntropy),
            "conv" => ModelConfig {
                layers: vec![8 * 8 * 8, 32, 2],
                activation: Activation::Tanh,
                loss: LossKind::CrossEntropy,
                conv: vec![16, 8],
            },
            other => {
                return Err(Error::Config(format!("unknown preset '{other}' (known: {})", PRESETS.join(", "))));
            }
        };
        Ok(TrainConfig {
            model,
            optimizer: OptimizerConfig::default(),
            batch_size: 64,
            epochs: 100,
            seed: 0,
            train_size: None,
            augment: Augment::default(),
        })
    }

    /// Checks every value; called before a model or buffer is allocated.
    pub fn validate(&self) -> Result<()> {
        self.model.validate()?;
        let o = &self.optimizer;
        if !(o.lr.is_finite() && o.lr > 0.0) {
            return Err(Error::Config(format!("learning rate must be a finite number > 0, got {}", o.lr)));
        }
        if !(o.momentum.is_finite() && (0.0..1.0).contains(&o.momentum)) {
            return Err(Error::Config(format!("momentum must be in [0, 1), got {}", o.momentum)));
        }
        if o.nesterov && o.momentum == 0.0 {
            return Err(Error::Config("nesterov momentum needs momentum > 0".into()));
        }
        if !(o.weight_decay.is_finite() && o.weight_decay >= 0.0) {
            return Err(Error::Config(format!("weight decay must be >= 0, got {}", o.weight_decay)));
        }
        for (name, b) in [("beta1", o.beta1), ("beta2", o.beta2)] {
            if !(b.is_finite() && (0.0..1.0).contains(&b)) {
                return Err(Error::Config(format!("{name} must be in [0, 1), got {b}")));
            }
        }
        if !(o.eps.is_finite() && o.eps > 0.0) {
            return Err(Error::Config(format!("eps must be > 0, got {}", o.eps)));
        }
        if self.batch_size == 0 || self.batch_size > MAX_BATCH_SIZE {
            return Err(Error::Config(format!(
                "batch size must be between 1 and {MAX_BATCH_SIZE}, got {}",
                self.batch_size
            )));
        }
        if self.augment.shift > MAX_AUGMENT_SHIFT {
            return Err(Error::Config(format!(
                "augment shift must be at most {MAX_AUGMENT_SHIFT}, got {}",
                self.augment.shift
            )));
        }
        if self.train_size == Some(0) {
            return Err(Error::Config("training-set size must be at least 1".into()));
        }
        Ok(())
    }
}

impl ModelConfig {
    /// A multilayer perceptron (no convolutions).
    pub fn mlp(layers: Vec<usize>, activation: Activation, loss: LossKind) -> ModelConfig {
        ModelConfig { layers, activation, loss, conv: Vec::new() }
    }

    /// Whether the model starts with convolutions.
    pub fn is_conv(&self) -> bool {
        !self.conv.is_empty()
    }

    /// The flattened size after the convolution blocks, `c_last * (32 / 2^n)^2`; `None` for an MLP.
    pub fn flat_features(&self) -> Option<usize> {
        let side = IMAGE_SIDE >> self.conv.len().min(MAX_CONV_BLOCKS);
        self.conv.last().map(|c| c * side * side)
    }

    /// Checks the layer list: at least input and output, each width in `1..=MAX_LAYER_WIDTH`, the
    /// output at least 2 classes, and the total parameter count under [`MAX_PARAMETERS`]; with
    /// convolutions, at most [`MAX_CONV_BLOCKS`] of `1..=MAX_CONV_CHANNELS` channels, and the first
    /// fully connected width equal to the flattened size.
    pub fn validate(&self) -> Result<()> {
        let l = &self.layers;
        if self.conv.len() > MAX_CONV_BLOCKS {
            return Err(Error::Config(format!(
                "at most {MAX_CONV_BLOCKS} convolution blocks (each halves the 32-pixel side), got {:?}",
                self.conv
            )));
        }
        if let Some(c) = self.conv.iter().find(|&&c| c == 0 || c > MAX_CONV_CHANNELS) {
            return Err(Error::Config(format!(
                "convolution channels {c} out of range 1..={MAX_CONV_CHANNELS} in {:?}",
                self.conv
            )));
        }
        if let (Some(flat), Some(&first)) = (self.flat_features(), l.first())
            && first != flat
        {
            return Err(Error::Config(format!(
                "the first fully connected layer of a model with convolutions {:?} takes their flattened output of {flat} values, got layers {l:?}",
                self.conv
            )));
        }
        if l.len() < 2 {
            return Err(Error::Config(format!("layers must list at least the input and output widths, got {l:?}")));
        }
        if let Some(w) = l.iter().find(|&&w| w == 0 || w > MAX_LAYER_WIDTH) {
            return Err(Error::Config(format!("layer width {w} is out of range 1..={MAX_LAYER_WIDTH} in {l:?}")));
        }
        if l[l.len() - 1] < 2 {
            return Err(Error::Config(format!("the output layer needs at least 2 classes, got {l:?}")));
        }
        if l.len() > MAX_LAYERS {
            return Err(Error::Config(format!("at most {MAX_LAYERS} layer widths, got {}", l.len())));
        }
        let params = self.parameter_counts().iter().fold(0usize, |a, &c| a.saturating_add(c));
        if params > MAX_PARAMETERS {
            return Err(Error::Config(format!(
                "{params} parameters exceed the limit of {MAX_PARAMETERS} for layers {l:?}"
            )));
        }
        Ok(())
    }

    /// Per-tensor parameter counts in PyTorch's `parameters()` order: weight, bias, weight, ...
    /// (the convolutions' first).
    pub fn parameter_counts(&self) -> Vec<usize> {
        let kk = CONV_KERNEL * CONV_KERNEL;
        let channels = std::iter::once(IMAGE_CHANNELS).chain(self.conv.iter().copied()).collect::<Vec<_>>();
        let conv = channels.windows(2).flat_map(|c| [c[0].saturating_mul(c[1]).saturating_mul(kk), c[1]]);
        conv.chain(self.layers.windows(2).flat_map(|w| [w[0].saturating_mul(w[1]), w[1]])).collect()
    }

    /// Values per input row: the image (`3 * 32 * 32`) for a convolutional model, else the first
    /// width.
    pub fn inputs(&self) -> usize {
        if self.is_conv() { IMAGE_CHANNELS * IMAGE_SIDE * IMAGE_SIDE } else { self.layers[0] }
    }

    pub fn classes(&self) -> usize {
        self.layers[self.layers.len() - 1]
    }

    /// The lecture's print of the parameter count: `(1574402, [1572864, 512, 1024, 2])`.
    pub fn parameter_summary(&self) -> String {
        let counts = self.parameter_counts();
        let list: Vec<String> = counts.iter().map(|c| c.to_string()).collect();
        format!("({}, [{}])", counts.iter().sum::<usize>(), list.join(", "))
    }
}
