//! Skywatch: train a multilayer perceptron on CIFAR-2 (airplane vs bird), natively or in a web
//! browser, reproducing the PyTorch lecture it comes from.
//!
//! The map of the crate. Every module imports only from the modules below it, so each layer can
//! be read, tested and replaced without the ones above:
//!
//! ```text
//!  the CLI (src/main.rs, src/cli/)            wasm (the JavaScript API; wasm/bench.rs)
//!     |        \                              /            |
//!     |   serve, site, data::build           /        bench (feature `bench`, also the CLI's)
//!     |   (native: server, static site,     /          /
//!     |    bundle building)                /          /
//!     +----------> inspect --> train <---+----------+
//!                           |      \
//!                       checkpoint  examples (the hard-example log that train feeds; imports loss)
//!                           |
//!                         model
//!                       /   |   \
//!                 layers  loss  optim
//!                  |    \      /
//!               matmul   update
//!
//!  gpu, the WebGPU backend (wasm only), sits between wasm and train: it runs a train::Trainer's
//!  run on the GPU; only wasm imports it, and nothing below it imports it. Its kernel table
//!  (gpu::table: WGSL sources, tiles, the GEMMs of a layer) is plain data on every target, for
//!  the native benchmark crate gpu-bench/.
//!
//!  below them all, usable anywhere: config, data, clock, error
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
//! | [`data`]       | the CIFAR bundle format, normalisation, the seeded minibatch loader, the shift and the seeded augmentation |
//! | [`examples`]   | the hard-example log: each training image's loss from training's own forward pass, forgetting events |
//! | [`inspect`]    | what the model learned: unit tiles and their change since the start, top activations, saliency, neighbours, hard examples, the translation test, the PyTorch band |
//! | [`clock`]      | seconds on a monotonic clock, natively and in the browser               |
//! | [`error`]      | the one error type                                                      |
//!
//! Feature `bench` (on with `cli`, and in the benchmark build of the wasm packages only): `bench`,
//! the GEMM, peak and epoch measurements (and `gpu::bench`, the WebGPU ones). Native only (feature
//! `cli`): [`data::build`] (download and build bundles), `serve` (the static web server for the
//! page), `site` (a static folder for any host). In wasm only: `wasm`, the JavaScript API and the
//! only module that exports to JS, and `gpu`, the WebGPU training backend (which only `wasm` uses;
//! the core's maths does not import it); the clock reads the browser's `performance.now()` through
//! web-sys. The core does no I/O and starts no threads: the GEMM runs on whatever rayon pool the
//! caller installs (feature `parallel`).

pub mod checkpoint;
pub mod clock;
pub mod config;
pub mod data;
pub mod error;
pub mod examples;
pub mod inspect;
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
pub mod pack;
#[cfg(all(feature = "cli", not(target_arch = "wasm32")))]
pub mod serve;
#[cfg(all(feature = "cli", not(target_arch = "wasm32")))]
pub mod site;

pub mod gpu;
#[cfg(target_arch = "wasm32")]
pub mod wasm;

pub use config::{Activation, LossKind, ModelConfig, OptimizerConfig, OptimizerKind, TrainConfig};
pub use data::Dataset;
pub use error::{Error, Result};
pub use model::Mlp;
pub use train::{EpochStats, EvalStats, Trainer};
