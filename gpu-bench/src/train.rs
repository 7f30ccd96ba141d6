//! A lecture training epoch on the native device: the browser trainer's per-batch dispatches
//! (`src/gpu/model.rs`), built from the same kernel table (`LayerGemms`, the modules, their
//! constants and grids): gather, forward GEMMs, fused loss, input- and weight-gradient GEMMs
//! (bias gradient fused), the optimizer step when it is not fused. All batches of an epoch go
//! into one compute pass, timed from submit to completion; the epoch's summed loss is read back
//! to show that it trains.

use crate::gpu::{self, Gpu};
use skywatch::config::{LossKind, OptimizerKind, TrainConfig};
use skywatch::gpu::table::{BatchEntry, GemmSpec, LayerGemms, Module, STAT_BYTES, WG, fused_sgd, grid, words};
use skywatch::train::Trainer;
use std::sync::Arc;

pub fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// One dispatch: a pipeline, its group 0 and its grid (group 1 is selected per batch).
pub struct Dispatch {
    pipeline: wgpu::ComputePipeline,
    group: wgpu::BindGroup,
    grid: (u32, u32, u32),
    _uniform: Option<wgpu::Buffer>,
}

impl Dispatch {
    pub fn encode(&self, pass: &mut wgpu::ComputePass) {
        pass.set_pipeline(&self.pipeline);
        pass.set_bind_group(0, &self.group, &[]);
        pass.dispatch_workgroups(self.grid.0, self.grid.1, self.grid.2);
    }
}

/// The dispatches of one GEMM on tile `t` (the product, then the split-K reduction if any).
pub fn gemm_dispatches(
    gpu: &Gpu,
    spec: &GemmSpec,
    t: usize,
    [a, b, c]: [&wgpu::Buffer; 3],
    aux: &wgpu::Buffer,
    scratch: &wgpu::Buffer,
) -> Vec<Dispatch> {
    let constants = spec.constants();
    let (main, reduce) = spec.grids(t);
    let uniform = gpu.uniform(&spec.params(t));
    let group = gpu.bind(Module::Gemm(t), &[&uniform, a, b, c, aux, scratch]);
    let mut out = vec![Dispatch {
        pipeline: gpu.pipeline(Module::Gemm(t), "main", &constants),
        group: group.clone(),
        grid: main,
        _uniform: Some(uniform),
    }];
    if let Some((x, y)) = reduce {
        out.push(Dispatch {
            pipeline: gpu.pipeline(Module::Gemm(t), "reduce", &constants),
            group,
            grid: (x, y, 1),
            _uniform: None,
        });
    }
    out
}

/// Trains `epochs` lecture epochs of `images` synthetic images and prints each one's seconds.
/// `legacy`: the GEMM kernel was replaced, so the bias gradient runs as its own dispatch and
/// every GEMM uses tile 0's grid.
pub fn lecture_epochs(gpu: &Gpu, images: usize, epochs: usize, legacy: bool) {
    let config = TrainConfig::preset("lecture").expect("the lecture preset");
    let data = Arc::new(skywatch::bench::timing_data_of((images, 16)));
    let mut t = Trainer::new(config, data).expect("a trainer");
    let c = t.config.clone();
    let m = &t.model;
    let batch = c.batch_size;
    let classes = m.config.classes();
    let n_params = m.num_params();
    let last = m.linears.len() - 1;
    let fused = fused_sgd(&c.optimizer);

    let mut records = t.data.train.records().to_vec();
    records.resize(records.len().next_multiple_of(4), 0);
    let records = gpu.storage(&records);
    let lut: Vec<f32> = t.normalizer().table().iter().flatten().copied().collect();
    let lut = gpu.storage(&f32_bytes(&lut));
    let params = gpu.storage(&f32_bytes(&m.params));
    let p_bytes = n_params as u64 * 4;
    let grads = (!fused).then(|| gpu.zeros(p_bytes));
    let states: Vec<_> = match c.optimizer.kind {
        OptimizerKind::Sgd if fused => vec![],
        OptimizerKind::Sgd => vec![gpu.zeros(p_bytes)],
        OptimizerKind::Adam => vec![gpu.zeros(p_bytes), gpu.zeros(p_bytes)],
    };
    let order = gpu.zeros(images as u64 * 4);
    let x0 = gpu.zeros((batch * 3072) as u64 * 4);
    let labels = gpu.zeros(batch as u64 * 4);
    let widths = &m.config.layers;
    let outs: Vec<_> = widths[1..].iter().map(|&w| gpu.zeros((batch * w) as u64 * 4)).collect();
    let deltas: Vec<_> = widths[1..].iter().map(|&w| gpu.zeros((batch * w) as u64 * 4)).collect();
    let batches = t.batches_per_epoch();
    let stats = gpu.zeros(batches as u64 * STAT_BYTES);
    let row_stats = gpu.zeros(images as u64 * STAT_BYTES);
    let dummy_read = gpu.zeros(16);
    let dummy_write = gpu.zeros(16);

    let gemms: Vec<LayerGemms> = m
        .linears
        .iter()
        .enumerate()
        .map(|(l, lin)| {
            let shape = (lin.in_features as u32, lin.out_features as u32, lin.offset as u32);
            let mut g = LayerGemms::new(shape, l == 0, l == last, m.config.activation, batch as u32, &c.optimizer);
            if legacy {
                g.weight_grad.bias_off = None;
            }
            g
        })
        .collect();
    let tile = |s: &GemmSpec| if legacy { 0 } else { s.tile(&gpu.limits) };
    let scratch_floats = gemms
        .iter()
        .flat_map(|g| [Some(g.forward), g.input_grad, Some(g.weight_grad)])
        .flatten()
        .map(|s| s.scratch_floats(tile(&s)))
        .max()
        .unwrap_or(0);
    let scratch = gpu.zeros(scratch_floats * 4);

    let mut plan: Vec<Dispatch> = Vec::new();
    plan.push(Dispatch {
        pipeline: gpu.pipeline(Module::Gather, "main", &[]),
        group: gpu.bind(Module::Gather, &[&records, &lut, &order, &x0, &labels]),
        grid: (3072 / WG, batch as u32, 1),
        _uniform: None,
    });
    for (l, g) in gemms.iter().enumerate() {
        let input = if l == 0 { &x0 } else { &outs[l - 1] };
        plan.extend(gemm_dispatches(gpu, &g.forward, tile(&g.forward), [input, &params, &outs[l]], &params, &scratch));
    }
    let nll = (m.config.loss == LossKind::Nll) as u32 as f64;
    plan.push(Dispatch {
        pipeline: gpu.pipeline(Module::Loss, "main", &[("NLL", nll), ("TRAIN", 1.0), ("CLASSES", classes as f64)]),
        group: gpu.bind(Module::Loss, &[&outs[last], &labels, &deltas[last], &stats, &dummy_write, &row_stats]),
        grid: (1, 1, 1),
        _uniform: None,
    });
    let target = grads.as_ref().unwrap_or(&params);
    for (l, g) in gemms.iter().enumerate().rev() {
        let input = if l == 0 { &x0 } else { &outs[l - 1] };
        if let Some(dx) = &g.input_grad {
            let bufs = [&deltas[l], &params, &deltas[l - 1]];
            plan.extend(gemm_dispatches(gpu, dx, tile(dx), bufs, &outs[l - 1], &scratch));
        }
        let dw = &g.weight_grad;
        plan.extend(gemm_dispatches(gpu, dw, tile(dw), [&deltas[l], input, target], &dummy_read, &scratch));
        if legacy {
            let lin = &m.linears[l];
            let (n, off) = (lin.out_features as u32, (lin.offset + lin.in_features * lin.out_features) as u32);
            let (lr, wd) = if fused { (c.optimizer.lr, c.optimizer.weight_decay) } else { (0.0, 0.0) };
            let uniform = gpu.uniform(&words(&[n, off, lr.to_bits(), wd.to_bits()]));
            plan.push(Dispatch {
                pipeline: gpu.pipeline(Module::BiasGrad, "main", &[("SGD", fused as u32 as f64)]),
                group: gpu.bind(Module::BiasGrad, &[&uniform, &deltas[l], target]),
                grid: (n.div_ceil(WG), 1, 1),
                _uniform: Some(uniform),
            });
        }
    }
    if let Some(grads) = &grads {
        let o = &c.optimizer;
        let uniform = gpu.uniform(&words(&[
            n_params as u32,
            o.nesterov as u32,
            o.lr.to_bits(),
            o.momentum.to_bits(),
            o.weight_decay.to_bits(),
            o.beta1.to_bits(),
            o.beta2.to_bits(),
            o.eps.to_bits(),
        ]));
        let entry = if o.kind == OptimizerKind::Adam { "adam" } else { "sgd" };
        let s2 = states.get(1).unwrap_or(&dummy_write);
        let (x, y) = grid((n_params as u32).div_ceil(WG));
        plan.push(Dispatch {
            pipeline: gpu.pipeline(Module::Optimizer, entry, &[]),
            group: gpu.bind(Module::Optimizer, &[&uniform, &params, grads, &states[0], s2]),
            grid: (x, y, 1),
            _uniform: Some(uniform),
        });
    }
    println!(
        "\nlecture epochs: {images} synthetic images, batch {batch}, {batches} batches, {} dispatches per batch{}",
        plan.len(),
        if legacy { " (bias gradient as its own dispatch)" } else { "" }
    );
    for epoch in 0..epochs {
        let order_now = t.draw_external_epoch().expect("an epoch's order").to_vec();
        gpu.queue.write_buffer(&order, 0, &words(&order_now));
        let entries: Vec<BatchEntry> = (0..batches)
            .map(|i| BatchEntry {
                start: (i * batch) as u32,
                rows: (images - i * batch).min(batch) as u32,
                slot: i as u32,
                first: epoch == 0 && i == 0,
                // Plain SGD (the lecture) never reads Adam's factors.
                ..Default::default()
            })
            .collect();
        let (_table, group) = gpu.batch_table(&entries);
        let seconds = gpu.time(|pass| {
            for b in 0..batches {
                gpu::select(pass, &group, b);
                for d in &plan {
                    d.encode(pass);
                }
            }
        });
        let sums = gpu.read(&stats, batches * 2);
        let loss: f64 = sums.iter().step_by(2).map(|&v| v as f64).sum::<f64>() / images as f64;
        println!(
            "epoch {epoch}: {seconds:.3} s ({:.3} ms per image), mean training loss {loss:.4}",
            seconds * 1e3 / images as f64
        );
        // Validation is not timed here: close the epoch with an empty evaluation.
        let none = skywatch::train::EvalStats { count: 0, accuracy: 0.0, loss: 0.0, confusion: vec![] };
        t.finish_external_epoch(none);
    }
}
