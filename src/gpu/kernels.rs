//! The WGSL kernels (files in `kernels/`, maths at the top of each), their bind-group layouts and
//! pipelines, and one *call* type per kernel: its parameters and buffers bound once, then encoded
//! into compute passes as often as needed with no buffer write in between.
//!
//! Every kernel sees the batch it works on through group 1, one entry of a [`BatchTable`]
//! selected by a dynamic offset (`batch.wgsl`): rows, where its statistics go, and the
//! optimizer's per-step factors. Group 0 holds the kernel's own uniform and storage buffers.
//! Variants (transposes, epilogue, activation, loss) are pipeline-overridable constants, so the
//! compiler sees constants and drops the branches not taken.

use super::device::Gpu;
use crate::config::{Activation, LossKind};
use crate::error::Result;
use std::cell::RefCell;
use std::collections::HashMap;
use wasm_bindgen::JsCast;
use web_sys::{
    GpuBindGroup, GpuBindGroupDescriptor, GpuBindGroupEntry, GpuBindGroupLayout, GpuBindGroupLayoutDescriptor,
    GpuBindGroupLayoutEntry, GpuBuffer, GpuBufferBinding, GpuBufferBindingLayout, GpuBufferBindingType,
    GpuComputePassEncoder, GpuComputePipeline, GpuComputePipelineDescriptor, GpuPipelineLayout,
    GpuPipelineLayoutDescriptor, GpuProgrammableStage, GpuShaderModule, gpu_buffer_usage, gpu_shader_stage,
};

const BATCH: (&str, &str) = ("batch.wgsl", include_str!("kernels/batch.wgsl"));
const ACT: (&str, &str) = ("act.wgsl", include_str!("kernels/act.wgsl"));
const GEMM: (&str, &str) = ("gemm.wgsl", include_str!("kernels/gemm.wgsl"));
const ACTIVATION: (&str, &str) = ("activation.wgsl", include_str!("kernels/activation.wgsl"));
const GATHER: (&str, &str) = ("gather.wgsl", include_str!("kernels/gather.wgsl"));
const BIAS_GRAD: (&str, &str) = ("bias_grad.wgsl", include_str!("kernels/bias_grad.wgsl"));
const LOSS: (&str, &str) = ("loss.wgsl", include_str!("kernels/loss.wgsl"));
const OPTIMIZER: (&str, &str) = ("optimizer.wgsl", include_str!("kernels/optimizer.wgsl"));

/// Bytes between two entries of a batch table: WebGPU's largest permitted
/// `minUniformBufferOffsetAlignment`, so it is valid on every adapter.
pub const BATCH_STRIDE: u64 = 256;
/// Bytes of one entry as the shaders read it (`struct Batch`, 6 x 4 bytes, bound as 32).
const BATCH_BYTES: u64 = 32;
/// Output tile of the GEMM (`TM`, `TN` in gemm.wgsl) and its K step (`TK`).
pub const TILE: u32 = 64;
const TILE_K: u32 = 16;
/// Workgroups the GEMM aims for before it splits K: enough to fill a laptop GPU's cores.
const TARGET_WORKGROUPS: u32 = 128;
/// Smallest K chunk of a split (shorter chunks spend more on the reduction than they save).
const MIN_K_CHUNK: u32 = 256;
/// Threads per workgroup of the element-wise kernels.
const WG: u32 = 256;
/// Bytes of one statistics slot (summed loss f32, correct count u32).
pub const STAT_BYTES: u64 = 8;

/// Where the loss kernel writes besides the batch's statistics (see [`Kernels::loss`]).
pub enum LossOut<'a> {
    /// Training: the gradient `dz` and each row's [`STAT_BYTES`] (loss, correct) in `rows`.
    Train { dz: &'a GpuBuffer, rows: &'a GpuBuffer },
    /// Evaluation: the confusion counts.
    Eval { confusion: &'a GpuBuffer },
}

/// What one batch-table entry says (`struct Batch` in batch.wgsl).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct BatchEntry {
    pub start: u32,
    pub rows: u32,
    pub slot: u32,
    /// The optimizer's first step (SGD momentum starts its buffer at the gradient).
    pub first: bool,
    /// Adam's `lr / (1 - beta1^t)`.
    pub step_size: f32,
    /// Adam's `sqrt(1 - beta2^t)`.
    pub bc2_sqrt: f32,
}

impl BatchEntry {
    fn bytes(&self) -> [u8; 24] {
        let mut out = [0; 24];
        let words =
            [self.start, self.rows, self.slot, self.first as u32, self.step_size.to_bits(), self.bc2_sqrt.to_bits()];
        for (o, w) in out.chunks_exact_mut(4).zip(words) {
            o.copy_from_slice(&w.to_le_bytes());
        }
        out
    }
}

/// A uniform buffer of batch entries, [`BATCH_STRIDE`] apart, and its bind group (group 1).
pub struct BatchTable {
    pub buffer: GpuBuffer,
    group: GpuBindGroup,
    pub capacity: usize,
}

impl BatchTable {
    /// Writes `entries` from entry 0 (one `writeBuffer`).
    pub fn write(&self, gpu: &Gpu, entries: &[BatchEntry]) -> Result<()> {
        assert!(entries.len() <= self.capacity, "batch table overflow");
        let mut bytes = vec![0u8; entries.len() * BATCH_STRIDE as usize];
        for (chunk, e) in bytes.chunks_exact_mut(BATCH_STRIDE as usize).zip(entries) {
            chunk[..24].copy_from_slice(&e.bytes());
        }
        gpu.write(&self.buffer, 0, &bytes)
    }

    /// Selects entry `i` for the dispatches that follow in `pass`.
    pub fn select(&self, pass: &GpuComputePassEncoder, i: usize) {
        let offset = [(i as u64 * BATCH_STRIDE) as u32];
        pass.set_bind_group_with_u32_slice_and_u32_and_dynamic_offsets_data_length(1, Some(&self.group), &offset, 0, 1)
            .expect("a dynamic offset within the table");
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Module {
    Gemm,
    Activation,
    Gather,
    BiasGrad,
    Loss,
    Optimizer,
}

impl Module {
    const ALL: [Module; 6] =
        [Module::Gemm, Module::Activation, Module::Gather, Module::BiasGrad, Module::Loss, Module::Optimizer];

    fn sources(self) -> Vec<(&'static str, &'static str)> {
        match self {
            Module::Gemm => vec![BATCH, ACT, GEMM],
            Module::Activation => vec![BATCH, ACT, ACTIVATION],
            Module::Gather => vec![BATCH, GATHER],
            Module::BiasGrad => vec![BATCH, BIAS_GRAD],
            Module::Loss => vec![BATCH, LOSS],
            Module::Optimizer => vec![BATCH, OPTIMIZER],
        }
    }

    /// Group 0's bindings, in order of their binding numbers.
    fn bindings(self) -> &'static [Bind] {
        use Bind::*;
        match self {
            Module::Gemm => &[Uniform, Read, Read, Write, Read, Write],
            Module::Activation => &[Uniform, Write, Read],
            Module::Gather => &[Read, Read, Read, Write, Write],
            Module::BiasGrad => &[Uniform, Read, Write],
            Module::Loss => &[Read, Read, Write, Write, Write, Write],
            Module::Optimizer => &[Uniform, Write, Read, Write, Write],
        }
    }
}

#[derive(Clone, Copy, Debug)]
enum Bind {
    Uniform,
    Read,
    Write,
}

fn layout_entry(binding: u32, kind: GpuBufferBindingType, dynamic: bool) -> GpuBindGroupLayoutEntry {
    let entry = GpuBindGroupLayoutEntry::new(binding, gpu_shader_stage::COMPUTE);
    let buffer = GpuBufferBindingLayout::new();
    buffer.set_type(kind);
    buffer.set_has_dynamic_offset(dynamic);
    entry.set_buffer(&buffer);
    entry
}

/// Workgroup counts `(x, y)` covering `groups` workgroups in 1-D (kernels index them as
/// `y * num_x + x`), within the 65535 per dimension WebGPU guarantees.
pub fn grid(groups: u32) -> (u32, u32) {
    let x = groups.clamp(1, 65_535);
    (x, groups.div_ceil(x).max(1))
}

fn words(values: &[u32]) -> Vec<u8> {
    values.iter().flat_map(|w| w.to_le_bytes()).collect()
}

/// The compiled modules and layouts of one device, and the pipelines made from them (cached by
/// entry point and constants).
pub struct Kernels {
    gpu: Gpu,
    modules: HashMap<Module, (GpuShaderModule, GpuBindGroupLayout, GpuPipelineLayout)>,
    batch_layout: GpuBindGroupLayout,
    pipelines: RefCell<HashMap<String, GpuComputePipeline>>,
    /// Bound where a layout has a buffer the variant does not use; two writable ones, since the
    /// writable bindings of one dispatch must not alias (WebGPU's validation refuses it).
    dummy_read: GpuBuffer,
    dummy_write: [GpuBuffer; 2],
}

impl Kernels {
    /// Compiles every kernel (a compile error names the file, line and column).
    pub async fn new(gpu: &Gpu) -> Result<Kernels> {
        let mut modules = Vec::new();
        for m in Module::ALL {
            modules.push((m, gpu.module(&m.sources()).await?));
        }
        gpu.scoped("creating the kernels' layouts", || {
            let d = gpu.device();
            let batch_layout = d
                .create_bind_group_layout(&GpuBindGroupLayoutDescriptor::new(&[layout_entry(
                    0,
                    GpuBufferBindingType::Uniform,
                    true,
                )]))
                .map_err(|e| crate::Error::Gpu(super::device::js_message(&e)))?;
            let mut done = HashMap::new();
            for (m, module) in modules {
                let entries: Vec<_> = m
                    .bindings()
                    .iter()
                    .enumerate()
                    .map(|(i, b)| {
                        let kind = match b {
                            Bind::Uniform => GpuBufferBindingType::Uniform,
                            Bind::Read => GpuBufferBindingType::ReadOnlyStorage,
                            Bind::Write => GpuBufferBindingType::Storage,
                        };
                        layout_entry(i as u32, kind, false)
                    })
                    .collect();
                let layout = d
                    .create_bind_group_layout(&GpuBindGroupLayoutDescriptor::new(&entries))
                    .map_err(|e| crate::Error::Gpu(super::device::js_message(&e)))?;
                let groups = [js_sys::JsNullable::wrap(layout.clone()), js_sys::JsNullable::wrap(batch_layout.clone())];
                let pipeline_layout = d.create_pipeline_layout(&GpuPipelineLayoutDescriptor::new(&groups));
                done.insert(m, (module, layout, pipeline_layout));
            }
            let usage = gpu_buffer_usage::STORAGE;
            Ok(Kernels {
                gpu: gpu.clone(),
                modules: done,
                batch_layout,
                pipelines: RefCell::new(HashMap::new()),
                dummy_read: gpu.buffer("an unused binding", 256, usage)?,
                dummy_write: [
                    gpu.buffer("an unused binding", 256, usage)?,
                    gpu.buffer("a second unused binding", 256, usage)?,
                ],
            })
        })
        .await
    }

    pub fn gpu(&self) -> &Gpu {
        &self.gpu
    }

    /// The pipeline of `entry` in module `m` with override `constants`.
    fn pipeline(&self, m: Module, entry: &str, constants: &[(&str, f64)]) -> GpuComputePipeline {
        let key = format!("{m:?}/{entry}/{constants:?}");
        if let Some(p) = self.pipelines.borrow().get(&key) {
            return p.clone();
        }
        let (module, _, layout) = &self.modules[&m];
        let stage = GpuProgrammableStage::new(module);
        stage.set_entry_point(entry);
        if !constants.is_empty() {
            let record = js_sys::Object::new();
            for (name, value) in constants {
                js_sys::Reflect::set(&record, &(*name).into(), &(*value).into())
                    .expect("setting a property of a new object");
            }
            stage.set_constants(record.unchecked_ref());
        }
        let p = self.gpu.device().create_compute_pipeline(&GpuComputePipelineDescriptor::new(layout, &stage));
        self.pipelines.borrow_mut().insert(key, p.clone());
        p
    }

    /// Group 0 of module `m`, binding each buffer whole in order.
    fn bind(&self, m: Module, buffers: &[&GpuBuffer]) -> GpuBindGroup {
        let entries: Vec<_> = buffers
            .iter()
            .enumerate()
            .map(|(i, b)| GpuBindGroupEntry::new_with_gpu_buffer_binding(i as u32, &GpuBufferBinding::new(b)))
            .collect();
        self.gpu.device().create_bind_group(&GpuBindGroupDescriptor::new(&entries, &self.modules[&m].1))
    }

    fn uniform(&self, label: &str, bytes: &[u8]) -> Result<GpuBuffer> {
        let buf = self.gpu.buffer(label, bytes.len() as u64, gpu_buffer_usage::UNIFORM | gpu_buffer_usage::COPY_DST)?;
        self.gpu.write(&buf, 0, bytes)?;
        Ok(buf)
    }

    /// A batch table of `capacity` entries.
    pub fn batch_table(&self, capacity: usize) -> Result<BatchTable> {
        let bytes = capacity.max(1) as u64 * BATCH_STRIDE;
        let buffer = self.gpu.buffer("a batch table", bytes, gpu_buffer_usage::UNIFORM | gpu_buffer_usage::COPY_DST)?;
        let binding = GpuBufferBinding::new(&buffer);
        binding.set_size_f64(BATCH_BYTES as f64);
        let entries = [GpuBindGroupEntry::new_with_gpu_buffer_binding(0, &binding)];
        let group = self.gpu.device().create_bind_group(&GpuBindGroupDescriptor::new(&entries, &self.batch_layout));
        Ok(BatchTable { buffer, group, capacity: capacity.max(1) })
    }

    /// A GEMM with its epilogue (see gemm.wgsl). `aux` is the bias buffer (`BiasAct`) or the
    /// previous layer's output (`ActGrad`); `scratch` holds split-K partials, at least
    /// [`GemmSpec::scratch_floats`] floats.
    pub fn gemm(
        &self,
        spec: &GemmSpec,
        [a, b, c]: [&GpuBuffer; 3],
        aux: Option<&GpuBuffer>,
        scratch: &GpuBuffer,
    ) -> Result<GemmCall> {
        let (splits, k_chunk) = spec.split();
        let (mode, act, lr, wd) = match spec.epilogue {
            Epilogue::BiasAct(act) => (0, act, 0.0, 0.0),
            Epilogue::ActGrad(act) => (1, act, 0.0, 0.0),
            Epilogue::Store => (2, None, 0.0, 0.0),
            Epilogue::Sgd { lr, weight_decay } => (3, None, lr, weight_decay),
        };
        let rows_dim = match spec.rows {
            RowsDim::None => 0,
            RowsDim::M => 1,
            RowsDim::K => 2,
        };
        let s = spec;
        let params = words(&[
            s.m,
            s.n,
            s.k,
            s.lda,
            s.ldb,
            s.ldc,
            s.a_off,
            s.b_off,
            s.c_off,
            s.aux_off,
            rows_dim,
            splits,
            k_chunk,
            f32::to_bits(lr),
            f32::to_bits(wd),
            0,
        ]);
        let uniform = self.uniform("GEMM parameters", &params)?;
        let constants = [
            ("A_TRANS", s.a_trans as u32 as f64),
            ("B_TRANS", s.b_trans as u32 as f64),
            ("MODE", mode as f64),
            ("ACT", act_code(act) as f64),
        ];
        let main = self.pipeline(Module::Gemm, "main", &constants);
        let reduce = (splits > 1).then(|| self.pipeline(Module::Gemm, "reduce", &constants));
        let aux = aux.unwrap_or(&self.dummy_read);
        let group = self.bind(Module::Gemm, &[&uniform, a, b, c, aux, scratch]);
        Ok(GemmCall {
            main,
            reduce,
            group,
            grid: (s.n.div_ceil(TILE), s.m.div_ceil(TILE), splits),
            reduce_grid: grid((s.m * s.n).div_ceil(WG)),
            _uniform: uniform,
        })
    }

    /// Gathers and normalises a batch (gather.wgsl): `records` the split's bytes as words, `lut`
    /// the 768 normalisation values, `index` the image indices the batch entries point into.
    pub fn gather(&self, [records, lut, index, x, labels]: [&GpuBuffer; 5], max_rows: u32) -> GatherCall {
        GatherCall {
            pipeline: self.pipeline(Module::Gather, "main", &[]),
            group: self.bind(Module::Gather, &[records, lut, index, x, labels]),
            rows: max_rows.clamp(1, 65_535),
        }
    }

    /// Loss, gradient and statistics (loss.wgsl). For training `Train { dz, rows }`: the gradient,
    /// and each row's loss and correctness at its position in the epoch; for evaluation
    /// `Eval { confusion }` (C x C u32).
    pub fn loss(&self, kind: LossKind, classes: u32, [z, labels, stats]: [&GpuBuffer; 3], out: LossOut) -> LossCall {
        let train = matches!(out, LossOut::Train { .. });
        let constants = [
            ("NLL", (kind == LossKind::Nll) as u32 as f64),
            ("TRAIN", train as u32 as f64),
            ("CLASSES", classes as f64),
        ];
        let [unused, unused2] = &self.dummy_write;
        let (dz, rows, confusion) = match out {
            LossOut::Train { dz, rows } => (dz, rows, unused),
            LossOut::Eval { confusion } => (unused, unused2, confusion),
        };
        LossCall {
            pipeline: self.pipeline(Module::Loss, "main", &constants),
            group: self.bind(Module::Loss, &[z, labels, dz, stats, confusion, rows]),
        }
    }

    /// Bias gradient of a layer of `n` outputs into `out[off..off + n]`: stored, or applied as a
    /// plain SGD step when `sgd` is `(lr, weight_decay)` (bias_grad.wgsl).
    pub fn bias_grad(&self, n: u32, off: u32, sgd: Option<(f32, f32)>, [dy, out]: [&GpuBuffer; 2]) -> Result<BiasCall> {
        let (lr, wd) = sgd.unwrap_or((0.0, 0.0));
        let uniform = self.uniform("bias-gradient parameters", &words(&[n, off, lr.to_bits(), wd.to_bits()]))?;
        Ok(BiasCall {
            pipeline: self.pipeline(Module::BiasGrad, "main", &[("SGD", sgd.is_some() as u32 as f64)]),
            group: self.bind(Module::BiasGrad, &[&uniform, dy, out]),
            groups: n.div_ceil(WG),
            _uniform: uniform,
        })
    }

    /// The optimizer step over `n` parameters (optimizer.wgsl): SGD with momentum, or Adam.
    /// `state2` is used by Adam only.
    pub fn optimizer(
        &self,
        config: &crate::config::OptimizerConfig,
        n: u32,
        [params, grads, state1]: [&GpuBuffer; 3],
        state2: Option<&GpuBuffer>,
    ) -> Result<OptimCall> {
        let c = config;
        let entry = match c.kind {
            crate::config::OptimizerKind::Sgd => "sgd",
            crate::config::OptimizerKind::Adam => "adam",
        };
        let uniform = self.uniform(
            "optimizer parameters",
            &words(&[
                n,
                c.nesterov as u32,
                c.lr.to_bits(),
                c.momentum.to_bits(),
                c.weight_decay.to_bits(),
                c.beta1.to_bits(),
                c.beta2.to_bits(),
                c.eps.to_bits(),
            ]),
        )?;
        let state2 = state2.unwrap_or(&self.dummy_write[0]);
        Ok(OptimCall {
            pipeline: self.pipeline(Module::Optimizer, entry, &[]),
            group: self.bind(Module::Optimizer, &[&uniform, params, grads, state1, state2]),
            grid: grid(n.div_ceil(WG)),
            _uniform: uniform,
        })
    }

    /// The stand-alone activation forward (`x = act(x)`) or backward (`d = d act'(y)`) over
    /// `n` values (activation.wgsl).
    pub fn activation(
        &self,
        act: Activation,
        backward: bool,
        n: u32,
        d: &GpuBuffer,
        y: Option<&GpuBuffer>,
    ) -> Result<ActivationCall> {
        let uniform = self.uniform("activation parameters", &words(&[n]))?;
        let entry = if backward { "backward" } else { "forward" };
        let y = y.unwrap_or(&self.dummy_read);
        Ok(ActivationCall {
            pipeline: self.pipeline(Module::Activation, entry, &[("ACT", act_code(Some(act)) as f64)]),
            group: self.bind(Module::Activation, &[&uniform, d, y]),
            grid: grid(n.div_ceil(WG)),
            _uniform: uniform,
        })
    }
}

fn act_code(act: Option<Activation>) -> u32 {
    match act {
        None => 0,
        Some(Activation::Tanh) => 1,
        Some(Activation::Relu) => 2,
    }
}

/// What a GEMM writes (gemm.wgsl's `MODE`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Epilogue {
    /// `C = act(AB + bias[n])` (the forward of a Linear layer; `None`: no activation).
    BiasAct(Option<Activation>),
    /// `C = AB * act'(aux[m, n])` (the input gradient through the previous layer's activation).
    ActGrad(Option<Activation>),
    /// `C = AB`.
    Store,
    /// `C = C - lr (AB + weight_decay C)`: a plain SGD step on the weights.
    Sgd { lr: f32, weight_decay: f32 },
}

/// Which dimension is the batch's row count, read from the batch entry at run time.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum RowsDim {
    /// Neither: `m`, `n`, `k` as given.
    None,
    /// `M` (forward, input gradient): `m` is then the largest row count, for the grid.
    M,
    /// `K` (weight gradient).
    K,
}

/// A GEMM's shape and operand windows (see gemm.wgsl for the indexing).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GemmSpec {
    pub m: u32,
    pub n: u32,
    pub k: u32,
    pub a_trans: bool,
    pub b_trans: bool,
    pub lda: u32,
    pub ldb: u32,
    pub ldc: u32,
    pub a_off: u32,
    pub b_off: u32,
    pub c_off: u32,
    pub aux_off: u32,
    pub rows: RowsDim,
    pub epilogue: Epilogue,
}

impl GemmSpec {
    /// A dense product of row-major operands (`lda`, `ldb`, `ldc` from the shape), no offsets.
    pub fn dense(m: u32, n: u32, k: u32, a_trans: bool, b_trans: bool, epilogue: Epilogue) -> GemmSpec {
        GemmSpec {
            m,
            n,
            k,
            a_trans,
            b_trans,
            lda: if a_trans { m } else { k },
            ldb: if b_trans { k } else { n },
            ldc: n,
            a_off: 0,
            b_off: 0,
            c_off: 0,
            aux_off: 0,
            rows: RowsDim::None,
            epilogue,
        }
    }

    /// K chunks and their length: split while the output has fewer than [`TARGET_WORKGROUPS`]
    /// tiles, each chunk at least [`MIN_K_CHUNK`] deep. Not when K is the batch (it varies).
    pub fn split(&self) -> (u32, u32) {
        let tiles = self.m.div_ceil(TILE) * self.n.div_ceil(TILE);
        let want = TARGET_WORKGROUPS.div_ceil(tiles.max(1));
        let most = (self.k / MIN_K_CHUNK).max(1);
        let splits = if self.rows == RowsDim::K { 1 } else { want.clamp(1, most).min(64) };
        let chunk = self.k.div_ceil(splits).next_multiple_of(TILE_K).max(TILE_K);
        (self.k.div_ceil(chunk).max(1), chunk)
    }

    /// Floats of split-K scratch this product needs (0 without a split).
    pub fn scratch_floats(&self) -> u64 {
        let (splits, _) = self.split();
        if splits > 1 { splits as u64 * self.m as u64 * self.n as u64 } else { 0 }
    }

    /// Floating-point operations: `2 m n k`.
    pub fn flops(&self) -> f64 {
        2.0 * self.m as f64 * self.n as f64 * self.k as f64
    }
}

/// A GEMM bound to its buffers.
pub struct GemmCall {
    main: GpuComputePipeline,
    reduce: Option<GpuComputePipeline>,
    group: GpuBindGroup,
    grid: (u32, u32, u32),
    reduce_grid: (u32, u32),
    _uniform: GpuBuffer,
}

impl GemmCall {
    pub fn encode(&self, pass: &GpuComputePassEncoder) {
        pass.set_pipeline(&self.main);
        pass.set_bind_group(0, Some(&self.group));
        let (x, y, z) = self.grid;
        pass.dispatch_workgroups_with_workgroup_count_y_and_workgroup_count_z(x, y, z);
        if let Some(reduce) = &self.reduce {
            pass.set_pipeline(reduce);
            let (x, y) = self.reduce_grid;
            pass.dispatch_workgroups_with_workgroup_count_y(x, y);
        }
    }

    /// Dispatches per encode (1, or 2 with a split-K reduction).
    pub fn dispatches(&self) -> usize {
        1 + self.reduce.is_some() as usize
    }
}

pub struct GatherCall {
    pipeline: GpuComputePipeline,
    group: GpuBindGroup,
    rows: u32,
}

impl GatherCall {
    pub fn encode(&self, pass: &GpuComputePassEncoder) {
        pass.set_pipeline(&self.pipeline);
        pass.set_bind_group(0, Some(&self.group));
        pass.dispatch_workgroups_with_workgroup_count_y(crate::data::PIXELS as u32 / WG, self.rows);
    }
}

pub struct LossCall {
    pipeline: GpuComputePipeline,
    group: GpuBindGroup,
}

impl LossCall {
    pub fn encode(&self, pass: &GpuComputePassEncoder) {
        pass.set_pipeline(&self.pipeline);
        pass.set_bind_group(0, Some(&self.group));
        pass.dispatch_workgroups(1);
    }
}

pub struct BiasCall {
    pipeline: GpuComputePipeline,
    group: GpuBindGroup,
    groups: u32,
    _uniform: GpuBuffer,
}

impl BiasCall {
    pub fn encode(&self, pass: &GpuComputePassEncoder) {
        pass.set_pipeline(&self.pipeline);
        pass.set_bind_group(0, Some(&self.group));
        pass.dispatch_workgroups(self.groups);
    }
}

pub struct OptimCall {
    pipeline: GpuComputePipeline,
    group: GpuBindGroup,
    grid: (u32, u32),
    _uniform: GpuBuffer,
}

impl OptimCall {
    pub fn encode(&self, pass: &GpuComputePassEncoder) {
        pass.set_pipeline(&self.pipeline);
        pass.set_bind_group(0, Some(&self.group));
        pass.dispatch_workgroups_with_workgroup_count_y(self.grid.0, self.grid.1);
    }
}

pub struct ActivationCall {
    pipeline: GpuComputePipeline,
    group: GpuBindGroup,
    grid: (u32, u32),
    _uniform: GpuBuffer,
}

impl ActivationCall {
    pub fn encode(&self, pass: &GpuComputePassEncoder) {
        pass.set_pipeline(&self.pipeline);
        pass.set_bind_group(0, Some(&self.group));
        pass.dispatch_workgroups_with_workgroup_count_y(self.grid.0, self.grid.1);
    }
}
