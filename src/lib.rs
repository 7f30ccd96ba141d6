//! Skywatch: train a multilayer perceptron on CIFAR-2 (airplane vs bird), natively or in a web
//! browser, reproducing the PyTorch lecture it comes from.
//!
//! The map of the crate, from the maths up. Each layer imports only from the layers below it:
//!
//! ```text
//! wasm (the JavaScript API)        the CLI (src/main.rs, src/cli/: clap lives only there)
//!          \                      /
//!           train       bench (feature `bench`)        serve, site (native, feature `cli`)
//!             |                                              |
//!         checkpoint                                   data::build (native)
//!             |
//!           model ------------------------ config, data, clock, error (plain data and I/O-free
//!        /    |    \                                                 helpers, used at any level)
//!   layers   loss   optim
//!        \         /
//!   matmul      update (the SGD step both layers and optim apply)
//! ```
//!
//! | module         | concept                                                                |
//! |----------------|------------------------------------------------------------------------|
//! | [`matmul`]     | `C = alpha A B + beta C`: packed, register-blocked GEMM per instruction set |
//! | [`update`]     | the plain SGD step `p -= lr (g + wd p)`, shared by the fused backward pass and the optimizer |
//! | [`layers`]     | `Linear` (`y = x W^T + b`), `Tanh`, `ReLU`, `LogSoftmax`, forward/backward |
//! | [`loss`]       | `NLLLoss`, `CrossEntropyLoss` with the fused `softmax - onehot` gradient |
//! | [`optim`]      | SGD (momentum, weight decay, Nesterov) and Adam, PyTorch's update rules  |
//! | [`model`]      | the MLP as PyTorch's `nn.Sequential`, flat parameter/gradient buffers   |
//! | [`checkpoint`] | safetensors files with PyTorch `state_dict` names                        |
//! | [`train`]      | the training loop and evaluation                                        |
//! | [`config`]     | run configuration and the `lecture` / `deep` presets                    |
//! | [`data`]       | the CIFAR bundle format, normalisation, the seeded minibatch loader     |
//! | [`clock`]      | seconds on a monotonic clock, natively and in the browser               |
//! | [`error`]      | the one error type                                                      |
//!
//! Feature `bench` (on with `cli`, and in the benchmark build of the wasm packages only): `bench`,
//! the GEMM, peak and epoch measurements. Native only (feature `cli`): [`data::build`] (download
//! and build bundles), `serve` (the static web server for the page), `site` (a static folder for
//! any host). In wasm only: `wasm`, the JavaScript API; nothing else in the crate knows about JS
//! (the clock reads `performance.now()` through web-sys). The core does no I/O and starts no
//! threads: the GEMM runs on whatever rayon pool the caller installs (feature `parallel`).

pub mod checkpoint;
pub mod clock;
pub mod config;
pub mod data;
pub mod error;
pub mod layers;
pub mod loss;
pub mod matmul;
pub mod model;
pub mod optim;
pub mod train;
pub mod update;

#[cfg(feature = "bench")]
pub mod bench;
#[cfg(all(feature = "cli", not(target_arch = "wasm32")))]
pub mod serve;
#[cfg(all(feature = "cli", not(target_arch = "wasm32")))]
pub mod site;

#[cfg(target_arch = "wasm32")]
pub mod wasm;

pub use config::{Activation, LossKind, ModelConfig, OptimizerConfig, OptimizerKind, TrainConfig};
pub use data::Dataset;
pub use error::{Error, Result};
pub use model::Mlp;
pub use train::{EpochStats, EvalStats, Trainer};
