//! WebGPU training backend: the same run as the CPU's [`Trainer`](crate::Trainer), computed on
//! the reader's GPU through web-sys's WebGPU bindings (wasm only).
//!
//! The maths and the shapes are the CPU's (`layers`, `loss`, `optim`), for a batch `x: [B, 3072]`
//! and linear layer `l` (`W_l: [out, in]` row-major, `b_l: [out]`):
//!
//! | step | kernel | what it computes |
//! |---|---|---|
//! | gather | `gather.wgsl` | `x[r, p] = (v / 255 - mean[c]) / std[c]` for byte `v` of image `order[start + r]`, straight from the uint8 bundle on the GPU; with augmentation flipped, then shifted (zeros in) by the draw of position `start + r` |
//! | forward | `gemm.wgsl` (MODE 0) | `y_l = act(y_{l-1} W_l^T + b_l)`, bias and activation fused in the epilogue; the last layer without activation |
//! | loss | `loss.wgsl` | log-softmax + NLL or softmax + cross-entropy: `dz = (softmax(z) - onehot(t)) / B`, the batch's summed loss and correct count into its statistics slot |
//! | input grad | `gemm.wgsl` (MODE 1) | `d_{l-1} = (d_l W_l) * act'(y_{l-1})`, the activation's derivative fused (`act.wgsl`) |
//! | weight grad | `gemm.wgsl` (MODE 2, 3, BIAS) | `dW_l = d_l^T y_{l-1}` and, fused, `db_l = sum_rows d_l`: stored, or applied at once as plain SGD `W -= lr (dW + wd W)` |
//! | bias grad | `bias_grad.wgsl` | `db_l = sum_rows d_l` stand-alone, stored or applied as plain SGD (for tests and other layers; training fuses it) |
//! | optimizer | `optimizer.wgsl` | SGD with momentum (Nesterov, weight decay) or Adam, PyTorch's rules as `optim.rs` |
//! | activation | `activation.wgsl` | the stand-alone tanh / ReLU forward and backward |
//!
//! Parameters and optimizer state live on the GPU in `Mlp::params`' flat layout (layer by layer,
//! weight then bias), so a readback is the CPU model's `params`. The shuffle stays on the CPU
//! (the same seeded loader), the epoch's order (and, with augmentation, the CPU's draws for it) is
//! uploaded once per epoch, and each call of [`GpuTrainer::train_batches`] encodes all its
//! batches into one compute pass with one readback of per-batch loss sums and correct counts: no
//! per-batch synchronisation or buffer write.
//!
//! Module map: [`table`] (the kernel table: WGSL sources, bindings, GEMM tiles and their choice,
//! the GEMMs of a layer; plain data, compiled on every target and shared with the native
//! benchmark `gpu-bench/`), and in wasm only: [`device`] (adapter, device, error scopes, loss,
//! buffers), [`kernels`] (modules, pipelines), [`calls`] (kernels bound to buffers), [`model`]
//! (the run's buffers and the encoding of a batch), [`trainer`] ([`GpuTrainer`]), [`ops`] (one
//! kernel on host data, for tests), [`bench`] (GFLOP/s and epoch timings). Nothing outside this
//! module imports it except the wasm API (`wasm::gpu`) and the native benchmark (the table
//! only): the core's maths does not depend on it.
//!
//! Errors are [`Error::Gpu`](crate::Error::Gpu) with the user's message: "no WebGPU adapter",
//! "the WebGPU adapter is software (fallback)" (a [`probe`] reason), "the GPU device was lost
//! (REASON)" (then every later call fails with it), "out of GPU memory while …", "a WebGPU shader
//! failed to compile: FILE:LINE:COL: …".

/// The WebGPU benchmarks, in the benchmark build only (feature `bench`).
#[cfg(all(feature = "bench", target_arch = "wasm32"))]
pub mod bench;
#[cfg(target_arch = "wasm32")]
pub mod calls;
#[cfg(target_arch = "wasm32")]
pub mod conv;
#[cfg(target_arch = "wasm32")]
pub mod device;
#[cfg(target_arch = "wasm32")]
pub mod kernels;
#[cfg(target_arch = "wasm32")]
pub mod model;
#[cfg(target_arch = "wasm32")]
pub mod ops;
pub mod table;
#[cfg(target_arch = "wasm32")]
pub mod trainer;

#[cfg(target_arch = "wasm32")]
pub use device::{AdapterReport, Gpu, probe};
#[cfg(target_arch = "wasm32")]
pub use trainer::{EVAL_ROWS, GpuTrainer};
