//! The convolution kernels and the convolutional model on the GPU against the CPU layers
//! (src/layers/conv.rs, src/layers/pool.rs, src/model/features.rs): each kernel on odd sizes (5 x 7
//! planes, 3 -> 4 channels, 3 images, stride 1 and 2, a pooling that drops a row and a column),
//! the block's three GEMMs as the kernel table states them, then whole runs of the book's `Net`
//! against the CPU `Trainer` (same seed, data and batch order). SwiftShader computes on the CPU
//! (about 10 ms per image for this model), so the runs are small.

use super::*;
use skywatch::config::{CONV_KERNEL, CONV_PADDING};
use skywatch::gpu::kernels::{ConvBlockSpec, PlaneLayout};
use skywatch::layers::activation::{backward_flat, forward_flat};
use skywatch::layers::conv::{Conv2d, Planes};
use skywatch::layers::pool::MaxPool2d;

/// A block of 3 -> 4 channels on 5 x 7 planes (stride `s`, padding 1, 3 x 3), weights at offset
/// 5 of the parameter buffer, its pooling, on 3 images.
fn block(stride: usize) -> ConvBlockSpec {
    let conv = Conv2d::new(3, 4, 3, stride, 1, (5, 7), 5);
    let pool = MaxPool2d::new(2, conv.output());
    ConvBlockSpec { conv, pool, images: 3 }
}

/// `cnhw` (`[C, B, plane]`) in `layout`'s order (offset 0), `len` floats.
fn relayout(cnhw: &[f32], c: usize, b: usize, plane: usize, layout: PlaneLayout) -> Vec<f32> {
    let mut out = vec![0.0; c * b * plane];
    for ch in 0..c {
        for img in 0..b {
            let dst = ch * layout.channel as usize + img * layout.image as usize;
            out[dst..dst + plane].copy_from_slice(&cnhw[(ch * b + img) * plane..][..plane]);
        }
    }
    out
}

#[wasm_bindgen_test]
async fn im2col_and_col2im_match_the_cpu_layer_on_odd_sizes() {
    let ops = ops().await;
    let mut rng = ChaCha8Rng::seed_from_u64(21);
    for stride in [1, 2] {
        let b = block(stride);
        let c = &b.conv;
        let plane = c.input.0 * c.input.1;
        let x = random(3 * 3 * plane, &mut rng);
        let n = b.positions() as usize;
        for planes in [Planes::nchw(3, plane), Planes::cnhw(3, plane)] {
            let what = format!("stride {stride}, {planes:?}");
            let mut want = vec![0.0; c.patch() * n];
            c.im2col(&x, planes, 3, &mut want);
            // A whole batch: the CPU's matrix bit for bit (a copy).
            assert_eq!(ops.im2col(&b, planes.into(), &x, 3).await.unwrap(), want, "{what}: im2col");
            // A short batch of 2: the third image's columns are zeros.
            let per_image = n / 3;
            for row in want.chunks_exact_mut(n) {
                row[2 * per_image..].fill(0.0);
            }
            assert_eq!(ops.im2col(&b, planes.into(), &x, 2).await.unwrap(), want, "{what}: im2col of 2 images");

            let dcol = random(c.patch() * n, &mut rng);
            let mut dx = vec![0.0; 3 * 3 * plane];
            c.col2im(&dcol, planes, 3, &mut dx);
            let got = ops.col2im(&b, planes.into(), &dcol, dx.len()).await.unwrap();
            // The same sums in the same order (kernel rows, then columns).
            assert_close(&got, &dx, 1e-6, &format!("{what}: col2im"));
        }
    }
}

#[wasm_bindgen_test]
async fn pooling_kernels_match_the_cpu_block() {
    let ops = ops().await;
    let mut rng = ChaCha8Rng::seed_from_u64(22);
    let b = block(1);
    let (c, (h, w), (ph, pw)) = (4, b.pool.input, b.pool.output());
    assert_eq!((h, w, ph, pw), (5, 7, 2, 3), "floor mode drops the last row and column");
    let mut y = random(c * 3 * h * w, &mut rng);
    // Ties: the first maximum in row-major order wins (PyTorch's CPU kernel).
    for q in 0..c * 3 {
        let v = y[q * h * w + 1];
        y[q * h * w + w] = v;
        y[q * h * w + w + 1] = v;
    }
    let params = random(b.conv.offset + b.conv.num_params(), &mut rng);
    let bias = b.conv.bias(&params).to_vec();
    for act in [Activation::Tanh, Activation::Relu] {
        let mut pooled = vec![0.0; c * 3 * ph * pw];
        let mut arg = vec![0u8; pooled.len()];
        b.pool.forward(&y, &mut pooled, &mut arg);
        for (q, plane) in pooled.chunks_exact_mut(ph * pw).enumerate() {
            plane.iter_mut().for_each(|v| *v += bias[q / 3]);
        }
        forward_flat(act, &mut pooled);
        let dpooled = random(pooled.len(), &mut rng);
        let mut d = dpooled.clone();
        backward_flat(act, &pooled, &mut d);
        let mut dy = vec![0.0; y.len()];
        b.pool.backward(&d, &arg, &mut dy);
        // CNHW (the next block's input) and flattened per image (the first linear layer's).
        for layout in [b.pooled_cnhw(), b.pooled_flat()] {
            let what = format!("{act:?}, {layout:?}");
            let (got, got_arg) = ops.pool_forward(&b, act, layout, &y, &params).await.unwrap();
            assert_eq!(got_arg, arg.iter().map(|&a| a as u32).collect::<Vec<_>>(), "{what}: argmax");
            assert_close(&got, &relayout(&pooled, c, 3, ph * pw, layout), 1e-6, &format!("{what}: pooled"));
            let (dl, pl) = (relayout(&dpooled, c, 3, ph * pw, layout), relayout(&pooled, c, 3, ph * pw, layout));
            let got = ops.pool_backward(&b, act, layout, &dl, &pl, &got_arg, 3).await.unwrap();
            assert_close(&got, &dy, 1e-6, &format!("{what}: backward"));
            // A short batch of 2: the third image's gradient is 0.
            let got = ops.pool_backward(&b, act, layout, &dl, &pl, &got_arg, 2).await.unwrap();
            let mut want = dy.clone();
            for q in 0..c {
                want[(q * 3 + 2) * h * w..][..h * w].fill(0.0);
            }
            assert_close(&got, &want, 1e-6, &format!("{what}: backward of 2 images"));
        }
    }
}

#[wasm_bindgen_test]
async fn a_blocks_gemms_match_the_cpu_convolution() {
    let ops = ops().await;
    let mut rng = ChaCha8Rng::seed_from_u64(23);
    let b = block(1);
    let c = &b.conv;
    let n = b.positions() as usize;
    let params = random(c.offset + c.num_params() + 3, &mut rng);
    let col = random(c.patch() * n, &mut rng);
    let dy = random(c.out_channels * n, &mut rng);
    let mut y = vec![0.0; c.out_channels * n];
    c.forward_unbiased(&params, &col, &mut y);
    let mut grads = vec![0.0; params.len()];
    let mut dcol = vec![0.0; col.len()];
    c.backward(&params, &mut grads, &col, &dy, Some(&mut dcol));
    let sgd = OptimizerConfig { weight_decay: 0.01, ..OptimizerConfig::default() };
    let g = b.gemms(false, &OptimizerConfig { momentum: 0.9, ..sgd.clone() });
    let got = ops.gemm(&g.forward, &params, &col, &vec![0.0; y.len()], None, 3).await.unwrap();
    assert_close(&got, &y, 1e-5, "forward W col");
    let got = ops.gemm(&g.input_grad.unwrap(), &params, &dy, &vec![0.0; col.len()], None, 3).await.unwrap();
    assert_close(&got, &dcol, 1e-5, "input gradient W^T dy");
    let ones = vec![1.0; n];
    let got = ops.gemm(&g.weight_grad, &dy, &col, &vec![0.0; params.len()], None, 3).await.unwrap();
    let got = ops.gemm(&g.bias_grad, &dy, &ones, &got, None, 3).await.unwrap();
    assert_close(&got, &grads, 1e-5, "weight gradient dy col^T and bias gradient dy 1");
    // Plain SGD fused into the weight gradient: p - lr (g + wd p) on the block's range only.
    let g = b.gemms(true, &sgd);
    assert!(g.input_grad.is_none(), "the first block has no input gradient");
    let got = ops.gemm(&g.weight_grad, &dy, &col, &params, None, 3).await.unwrap();
    let got = ops.gemm(&g.bias_grad, &dy, &ones, &got, None, 3).await.unwrap();
    let range = c.offset..c.offset + c.num_params();
    let step = SgdStep { lr: sgd.lr, weight_decay: sgd.weight_decay };
    let want: Vec<f32> = (0..params.len())
        .map(|i| {
            let mut p = params[i];
            if range.contains(&i) {
                step.apply(&mut p, grads[i]);
            }
            p
        })
        .collect();
    assert_close(&got, &want, 1e-5, "weight gradient with the SGD step");
}

/// The book's `Net` (preset `conv`) with `batch` and `optimizer`.
fn net(batch: usize, optimizer: Option<OptimizerConfig>) -> TrainConfig {
    let c = TrainConfig::preset("conv").unwrap();
    assert_eq!((CONV_KERNEL, CONV_PADDING, &c.model.conv[..]), (3, 1, &[16usize, 8][..]));
    TrainConfig { batch_size: batch, epochs: 100, seed: 7, optimizer: optimizer.unwrap_or(c.optimizer.clone()), ..c }
}

#[wasm_bindgen_test]
async fn the_conv_model_matches_the_cpu_over_two_epochs() {
    // 600 training images, batch 64 (the preset's): 10 batches per epoch, the last of 24 (a short
    // batch, zero columns in its products); 2 epochs, each validated on 300 images on the GPU.
    compare_runs(net(64, None), dataset(600, 300), 20, 7, 1e-3).await;
    // Dispatches per batch, counted from the kernel table: gather, fc1 forward (K = 512 split in
    // two, then reduced), fc2 forward, loss, fc2's input and weight gradients, fc1's, i.e. 9; the
    // first block im2col, forward, pooling, its backward, weight and bias gradients (each split,
    // then reduced): 8; the second those and its input gradient and col2im: 10.
    let t = GpuTrainer::new(Trainer::new(net(64, None), dataset(64, 8)).unwrap()).await.unwrap();
    assert_eq!(t.dispatches_per_batch(), 9 + 8 + 10);
}

#[wasm_bindgen_test]
async fn two_hundred_sgd_steps_of_the_conv_model_match_the_cpu() {
    // 200 steps of 8 images from 100 (13 batches per epoch, the last of 4): 15 epoch ends.
    compare_runs(net(8, None), dataset(100, 40), 200, 50, 1e-3).await;
}

#[wasm_bindgen_test]
async fn the_conv_model_with_momentum_matches_the_cpu() {
    // Not plain SGD: the weight gradients are stored, then the optimizer kernel steps.
    let sgd = OptimizerConfig { momentum: 0.9, nesterov: true, weight_decay: 1e-3, ..OptimizerConfig::default() };
    compare_runs(net(16, Some(sgd)), dataset(80, 40), 12, 5, 1e-3).await;
}
