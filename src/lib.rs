//! Skywatch: train a multilayer perceptron on CIFAR-2 (airplane vs bird), natively or in a web
//! browser, reproducing the PyTorch lecture it comes from.
//!
//! The map of the crate, from the maths up:
//!
//! | module         | concept                                                                |
//! |----------------|------------------------------------------------------------------------|
//! | [`matmul`]     | `C = alpha A B + beta C`: packed, register-blocked GEMM per instruction set |
//! | [`layers`]     | `Linear` (`y = x W^T + b`), `Tanh`, `ReLU`, `LogSoftmax`, forward/backward |
//! | [`loss`]       | `NLLLoss`, `CrossEntropyLoss` with the fused `softmax - onehot` gradient |
//! | [`model`]      | the MLP as PyTorch's `nn.Sequential`, flat parameter/gradient buffers   |
//! | [`optim`]      | SGD (momentum, weight decay, Nesterov) and Adam, PyTorch's update rules  |
//! | [`config`]     | run configuration and the `lecture` / `deep` presets                    |
//! | [`data`]       | the CIFAR bundle format, normalisation, the seeded minibatch loader     |
//! | [`train`]      | the training loop and evaluation                                        |
//! | [`checkpoint`] | safetensors files with PyTorch `state_dict` names                        |
//! | [`error`]      | the one error type                                                      |
//!
//! | [`bench`](mod@bench) | GEMM, peak and epoch timings (natively and in wasm)             |
//!
//! Native only (feature `cli`): [`data::build`] (download and build bundles), the `bench`
//! command, [`serve`] (the static web server for the page), [`site`] (a static folder for any host).
//! In wasm only: `wasm`, the JavaScript API, and `gpu`, the WebGPU training backend (which only
//! `wasm` uses); nothing else in the crate knows about JS.
//! The core does no I/O and starts no threads: the GEMM runs on whatever rayon pool the caller
//! installs (feature `parallel`).

pub mod checkpoint;
pub mod config;
pub mod data;
pub mod error;
pub mod layers;
pub mod loss;
pub mod matmul;
pub mod model;
pub mod optim;
pub mod train;

pub mod bench;
#[cfg(all(feature = "cli", not(target_arch = "wasm32")))]
pub mod serve;
#[cfg(all(feature = "cli", not(target_arch = "wasm32")))]
pub mod site;

#[cfg(target_arch = "wasm32")]
pub mod gpu;
#[cfg(target_arch = "wasm32")]
pub mod wasm;

pub use config::{Activation, LossKind, ModelConfig, OptimizerConfig, OptimizerKind, TrainConfig};
pub use data::Dataset;
pub use error::{Error, Result};
pub use model::Mlp;
pub use train::{EpochStats, EvalStats, Trainer};
