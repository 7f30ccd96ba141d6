//! One kernel on host data: upload, one dispatch (through the same calls the trainer encodes),
//! readback. For checking each kernel against the CPU reference, and for the benchmarks; training
//! never goes through here.

use super::device::Gpu;
use super::kernels::{
    BatchEntry, ConvBlockSpec, Epilogue, GemmSpec, Kernels, LossOut, PlaneLayout, RowsDim, STAT_BYTES,
};
use super::model::{bytes_f32, f32_bytes, parse_rows};
use crate::config::{Activation, LossKind, OptimizerConfig};
use crate::error::Result;
use crate::loss::RowLoss;
use web_sys::{GpuBuffer, GpuComputePassEncoder, gpu_buffer_usage as usage};

/// What the loss kernel returns for a batch.
#[derive(Clone, Debug, PartialEq)]
pub struct LossOutput {
    /// `dL/dz` of the mean loss, `[rows, classes]` (empty when evaluating).
    pub grad: Vec<f32>,
    pub loss_sum: f32,
    pub correct: u32,
    /// `confusion[t * classes + predicted]` (evaluation only).
    pub confusion: Vec<u32>,
    /// Each row's loss and correctness (training only).
    pub rows: Vec<RowLoss>,
}

/// The kernels of a device, run one at a time on host data.
pub struct Ops {
    kernels: Kernels,
}

fn u32_bytes(v: &[u32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

impl Ops {
    pub async fn new(gpu: &Gpu) -> Result<Ops> {
        Ok(Ops { kernels: Kernels::new(gpu).await? })
    }

    /// The tile (index into the kernel table's `TILES`) and K chunks `spec` runs with here.
    pub fn tile_and_splits(&self, spec: &GemmSpec) -> (usize, u32) {
        let t = self.kernels.tile(spec);
        (t, spec.split(t).0)
    }

    fn gpu(&self) -> &Gpu {
        self.kernels.gpu()
    }

    fn upload(&self, label: &str, data: &[u8]) -> Result<GpuBuffer> {
        self.gpu().storage_with(label, data)
    }

    /// Runs `encode` with batch entry `entry` selected, then reads `reads` (buffer, bytes).
    async fn run(
        &self,
        entry: BatchEntry,
        encode: impl FnOnce(&GpuComputePassEncoder),
        reads: &[(&GpuBuffer, u64)],
    ) -> Result<Vec<Vec<u8>>> {
        let gpu = self.gpu().clone();
        let k = &self.kernels;
        let targets = gpu
            .scoped("running a kernel", || {
                let table = k.batch_table(1)?;
                table.write(&gpu, &[entry])?;
                let encoder = gpu.device().create_command_encoder();
                let pass = encoder.begin_compute_pass();
                table.select(&pass, 0);
                encode(&pass);
                pass.end();
                let mut targets = Vec::new();
                for (src, bytes) in reads {
                    let dst = gpu.buffer("a readback", *bytes, usage::MAP_READ | usage::COPY_DST)?;
                    encoder
                        .copy_buffer_to_buffer_with_f64_and_f64_and_f64(src, 0.0, &dst, 0.0, *bytes as f64)
                        .map_err(|e| crate::Error::Gpu(super::device::js_message(&e)))?;
                    targets.push((dst, *bytes));
                }
                gpu.queue().submit(&[encoder.finish()]);
                Ok(targets)
            })
            .await?;
        let mut out = Vec::new();
        for (dst, bytes) in targets {
            out.push(gpu.read(&dst, bytes).await?);
            dst.destroy();
        }
        Ok(out)
    }

    /// `C = epilogue(A B)` for `spec`; `c` is C's initial content (read by the SGD epilogue),
    /// `aux` the bias or activation output, `rows` the batch entry's row count (for `spec.rows`).
    pub async fn gemm(
        &self,
        spec: &GemmSpec,
        a: &[f32],
        b: &[f32],
        c: &[f32],
        aux: Option<&[f32]>,
        rows: u32,
    ) -> Result<Vec<f32>> {
        let (ab, bb, cb) =
            (self.upload("A", &f32_bytes(a))?, self.upload("B", &f32_bytes(b))?, self.upload("C", &f32_bytes(c))?);
        let auxb = match aux {
            Some(x) => Some(self.upload("aux", &f32_bytes(x))?),
            None => None,
        };
        let scratch = self.upload("scratch", &vec![0; (self.kernels.scratch_floats(spec) * 4) as usize])?;
        let call = self.kernels.gemm(spec, [&ab, &bb, &cb], auxb.as_ref(), &scratch)?;
        let entry = BatchEntry { rows, ..BatchEntry::default() };
        let out = self.run(entry, |p| call.encode(p), &[(&cb, c.len() as u64 * 4)]).await?;
        Ok(bytes_f32(&out[0]))
    }

    /// Gathers batch `entry` (start, rows) of `index` from `records` (3073-byte records):
    /// the normalised rows `[rows, 3072]` and the labels; with `draws` (one packed draw per
    /// position of `index`, `table::pack_draw`), flipped and shifted.
    pub async fn gather(
        &self,
        records: &[u8],
        lut: &[f32],
        index: &[u32],
        draws: Option<&[u32]>,
        entry: BatchEntry,
    ) -> Result<(Vec<f32>, Vec<u32>)> {
        let rows = entry.rows as usize;
        let rb = self.upload("records", records)?;
        let lb = self.upload("lut", &f32_bytes(lut))?;
        let ib = self.upload("index", &u32_bytes(index))?;
        let db = match draws {
            Some(d) => Some(self.upload("draws", &u32_bytes(d))?),
            None => None,
        };
        let xb = self.upload("x", &vec![0; rows * crate::data::PIXELS * 4])?;
        let yb = self.upload("labels", &vec![0; rows * 4])?;
        let call = self.kernels.gather([&rb, &lb, &ib, &xb, &yb], db.as_ref(), entry.rows);
        let out = self
            .run(entry, |p| call.encode(p), &[(&xb, (rows * crate::data::PIXELS * 4) as u64), (&yb, rows as u64 * 4)])
            .await?;
        let labels = out[1].chunks_exact(4).map(|c| u32::from_le_bytes(c.try_into().expect("4 bytes"))).collect();
        Ok((bytes_f32(&out[0]), labels))
    }

    /// The fused loss kernel on logits `z: [labels.len(), classes]`.
    pub async fn loss(
        &self,
        kind: LossKind,
        classes: u32,
        z: &[f32],
        labels: &[u32],
        train: bool,
    ) -> Result<LossOutput> {
        let rows = labels.len() as u32;
        let c = classes as usize;
        let zb = self.upload("logits", &f32_bytes(z))?;
        let lb = self.upload("labels", &u32_bytes(labels))?;
        let sb = self.upload("stats", &[0; 16])?;
        let db = self.upload("gradient", &vec![0; z.len() * 4])?;
        let cb = self.upload("confusion", &vec![0; c * c * 4])?;
        let rb = self.upload("row losses", &vec![0; rows as usize * STAT_BYTES as usize])?;
        let out = if train { LossOut::Train { dz: &db, rows: &rb } } else { LossOut::Eval { confusion: &cb } };
        let call = self.kernels.loss(kind, classes, [&zb, &lb, &sb], out);
        let entry = BatchEntry { rows, ..BatchEntry::default() };
        let row_bytes = rows as u64 * STAT_BYTES;
        let out = self
            .run(
                entry,
                |p| call.encode(p),
                &[(&sb, STAT_BYTES), (&db, z.len() as u64 * 4), (&cb, (c * c * 4) as u64), (&rb, row_bytes)],
            )
            .await?;
        let stat = &out[0];
        Ok(LossOutput {
            grad: if train { bytes_f32(&out[1]) } else { Vec::new() },
            loss_sum: f32::from_le_bytes(stat[..4].try_into().expect("4 bytes")),
            correct: u32::from_le_bytes(stat[4..8].try_into().expect("4 bytes")),
            confusion: out[2].chunks_exact(4).map(|b| u32::from_le_bytes(b.try_into().expect("4 bytes"))).collect(),
            rows: if train { parse_rows(&out[3]) } else { Vec::new() },
        })
    }

    /// Bias gradient of `dy: [rows, n]` into `out[off..off + n]` (stored, or an SGD step).
    pub async fn bias_grad(
        &self,
        dy: &[f32],
        n: u32,
        off: u32,
        sgd: Option<(f32, f32)>,
        out: &[f32],
    ) -> Result<Vec<f32>> {
        let rows = (dy.len() / n as usize) as u32;
        let db = self.upload("dy", &f32_bytes(dy))?;
        let ob = self.upload("out", &f32_bytes(out))?;
        let call = self.kernels.bias_grad(n, off, sgd, [&db, &ob])?;
        let entry = BatchEntry { rows, ..BatchEntry::default() };
        Ok(bytes_f32(&self.run(entry, |p| call.encode(p), &[(&ob, out.len() as u64 * 4)]).await?[0]))
    }

    /// One optimizer step (SGD with momentum, or Adam) at step `t` (from 1), as
    /// `Optimizer::step` takes it: returns the parameters and both states.
    pub async fn optimizer_step(
        &self,
        config: &OptimizerConfig,
        t: u64,
        params: &[f32],
        grads: &[f32],
        state1: &[f32],
        state2: &[f32],
    ) -> Result<(Vec<f32>, Vec<f32>, Vec<f32>)> {
        let n = params.len();
        let pb = self.upload("params", &f32_bytes(params))?;
        let gb = self.upload("grads", &f32_bytes(grads))?;
        let s1 = self.upload("state1", &f32_bytes(state1))?;
        let s2 = self.upload("state2", &f32_bytes(state2))?;
        let adam = config.kind == crate::config::OptimizerKind::Adam;
        let call = self.kernels.optimizer(config, n as u32, [&pb, &gb, &s1], adam.then_some(&s2))?;
        let ti = t as i32;
        let entry = BatchEntry {
            first: t == 1,
            step_size: config.lr / (1.0 - config.beta1.powi(ti)),
            bc2_sqrt: (1.0 - config.beta2.powi(ti)).sqrt(),
            ..BatchEntry::default()
        };
        let bytes = n as u64 * 4;
        let out = self.run(entry, |p| call.encode(p), &[(&pb, bytes), (&s1, bytes), (&s2, bytes)]).await?;
        Ok((bytes_f32(&out[0]), bytes_f32(&out[1]), bytes_f32(&out[2])))
    }

    /// The stand-alone activation kernel: `act(d)` (forward) or `d act'(y)` (backward).
    pub async fn activation(&self, act: Activation, backward: bool, d: &[f32], y: Option<&[f32]>) -> Result<Vec<f32>> {
        let db = self.upload("d", &f32_bytes(d))?;
        let yb = match y {
            Some(y) => Some(self.upload("y", &f32_bytes(y))?),
            None => None,
        };
        let call = self.kernels.activation(act, backward, d.len() as u32, &db, yb.as_ref())?;
        Ok(bytes_f32(&self.run(BatchEntry::default(), |p| call.encode(p), &[(&db, d.len() as u64 * 4)]).await?[0]))
    }

    /// im2col of block `b` (im2col.wgsl) on the planes of `x` laid out as `input`; images from
    /// `rows` on get zero columns.
    pub async fn im2col(&self, b: &ConvBlockSpec, input: PlaneLayout, x: &[f32], rows: u32) -> Result<Vec<f32>> {
        let bytes = b.col_floats() * 4;
        let (xb, cb) = (self.upload("x", &f32_bytes(x))?, self.upload("col", &vec![0; bytes as usize])?);
        let call = self.kernels.im2col(b, input, [&xb, &cb])?;
        let entry = BatchEntry { rows, ..BatchEntry::default() };
        Ok(bytes_f32(&self.run(entry, |p| call.encode(p), &[(&cb, bytes)]).await?[0]))
    }

    /// col2im of block `b` (col2im.wgsl): the input gradient (`len` floats, planes laid out as
    /// `out`; values outside the planes stay 0) from `dcol`.
    pub async fn col2im(&self, b: &ConvBlockSpec, out: PlaneLayout, dcol: &[f32], len: usize) -> Result<Vec<f32>> {
        let (db, xb) = (self.upload("dcol", &f32_bytes(dcol))?, self.upload("dx", &vec![0; len * 4])?);
        let call = self.kernels.col2im(b, out, [&db, &xb])?;
        let entry = BatchEntry { rows: b.images, ..BatchEntry::default() };
        Ok(bytes_f32(&self.run(entry, |p| call.encode(p), &[(&xb, len as u64 * 4)]).await?[0]))
    }

    /// The pooling with bias and activation of block `b` (pool_forward.wgsl) on the
    /// convolution's output `y`, the bias read from `params`: the pooled output (laid out as
    /// `layout`) and the argmax of each window.
    pub async fn pool_forward(
        &self,
        b: &ConvBlockSpec,
        act: Activation,
        layout: PlaneLayout,
        y: &[f32],
        params: &[f32],
    ) -> Result<(Vec<f32>, Vec<u32>)> {
        let bytes = b.pooled_floats() * 4;
        let (yb, pb) = (self.upload("y", &f32_bytes(y))?, self.upload("params", &f32_bytes(params))?);
        let (ob, ab) =
            (self.upload("pooled", &vec![0; bytes as usize])?, self.upload("arg", &vec![0; bytes as usize])?);
        let call = self.kernels.pool_forward(b, act, layout, [&yb, &pb, &ob, &ab])?;
        let entry = BatchEntry { rows: b.images, ..BatchEntry::default() };
        let out = self.run(entry, |p| call.encode(p), &[(&ob, bytes), (&ab, bytes)]).await?;
        let arg = out[1].chunks_exact(4).map(|c| u32::from_le_bytes(c.try_into().expect("4 bytes"))).collect();
        Ok((bytes_f32(&out[0]), arg))
    }

    /// The backward of block `b`'s pooling and activation (pool_backward.wgsl): the convolution
    /// output's gradient from `dpooled`, `pooled` (laid out as `layout`) and `arg`; images from
    /// `rows` on get 0.
    #[allow(clippy::too_many_arguments)]
    pub async fn pool_backward(
        &self,
        b: &ConvBlockSpec,
        act: Activation,
        layout: PlaneLayout,
        dpooled: &[f32],
        pooled: &[f32],
        arg: &[u32],
        rows: u32,
    ) -> Result<Vec<f32>> {
        let bytes = b.out_floats() * 4;
        let (db, pb) = (self.upload("dpooled", &f32_bytes(dpooled))?, self.upload("pooled", &f32_bytes(pooled))?);
        let (ab, yb) = (self.upload("arg", &u32_bytes(arg))?, self.upload("dy", &vec![0; bytes as usize])?);
        let call = self.kernels.pool_backward(b, act, layout, [&db, &pb, &ab, &yb])?;
        let entry = BatchEntry { rows, ..BatchEntry::default() };
        Ok(bytes_f32(&self.run(entry, |p| call.encode(p), &[(&yb, bytes)]).await?[0]))
    }

    /// Seconds per product of `spec` (`Store` epilogue), `reps` products in one pass, after a
    /// warm-up pass: for the GFLOP/s benchmark.
    pub async fn time_gemm(&self, spec: &GemmSpec, reps: usize) -> Result<f64> {
        let floats =
            |r: u32, c: u32| (0..r as usize * c as usize).map(|i| (i % 2003 * 7919 % 2003) as f32 / 1001.0 - 1.0);
        let (a_rows, a_cols) = if spec.a_trans { (spec.k, spec.m) } else { (spec.m, spec.k) };
        let (b_rows, b_cols) = if spec.b_trans { (spec.n, spec.k) } else { (spec.k, spec.n) };
        let a: Vec<f32> = floats(a_rows, a_cols).collect();
        let b: Vec<f32> = floats(b_rows, b_cols).collect();
        let ab = self.upload("A", &f32_bytes(&a))?;
        let bb = self.upload("B", &f32_bytes(&b))?;
        let cb = self.upload("C", &vec![0; (spec.m * spec.n * 4) as usize])?;
        let scratch = self.upload("scratch", &vec![0; (self.kernels.scratch_floats(spec) * 4) as usize])?;
        let spec = GemmSpec { rows: RowsDim::None, epilogue: Epilogue::Store, ..*spec };
        let call = self.kernels.gemm(&spec, [&ab, &bb, &cb], None, &scratch)?;
        let entry = BatchEntry { rows: spec.m, ..BatchEntry::default() };
        self.run(entry, |p| call.encode(p), &[(&cb, 4)]).await?;
        let clock = crate::clock::Stopwatch::start();
        self.run(
            entry,
            |p| {
                for _ in 0..reps {
                    call.encode(p);
                }
            },
            &[(&cb, 4)],
        )
        .await?;
        Ok(clock.seconds() / reps.max(1) as f64)
    }
}
