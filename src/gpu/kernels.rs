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

pub use super::calls::{ActivationCall, BiasCall, ConvCall, GatherCall, GemmCall, LossCall, OptimCall};
use super::table::{BATCH_BYTES, Bind, Module, act_code, words};
pub use super::table::{
    BATCH_STRIDE, BatchEntry, ConvBlockSpec, ConvGemms, Epilogue, GemmSpec, LayerGemms, PlaneLayout, RowsDim,
    STAT_BYTES, TILES, WG, grid,
};

/// Where the loss kernel writes besides the batch's statistics (see [`Kernels::loss`]).
pub enum LossOut<'a> {
    /// Training: the gradient `dz` and each row's [`STAT_BYTES`] (loss, correct) in `rows`.
    Train { dz: &'a GpuBuffer, rows: &'a GpuBuffer },
    /// Evaluation: the confusion counts.
    Eval { confusion: &'a GpuBuffer },
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
        gpu.write(&self.buffer, 0, &BatchEntry::table_bytes(entries))
    }

    /// Selects entry `i` for the dispatches that follow in `pass`.
    pub fn select(&self, pass: &GpuComputePassEncoder, i: usize) {
        let offset = [(i as u64 * BATCH_STRIDE) as u32];
        pass.set_bind_group_with_u32_slice_and_u32_and_dynamic_offsets_data_length(1, Some(&self.group), &offset, 0, 1)
            .expect("a dynamic offset within the table");
    }
}

fn layout_entry(binding: u32, kind: GpuBufferBindingType, dynamic: bool) -> GpuBindGroupLayoutEntry {
    let entry = GpuBindGroupLayoutEntry::new(binding, gpu_shader_stage::COMPUTE);
    let buffer = GpuBufferBindingLayout::new();
    buffer.set_type(kind);
    buffer.set_has_dynamic_offset(dynamic);
    entry.set_buffer(&buffer);
    entry
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
        for m in Module::all() {
            let sources = m.sources();
            let parts: Vec<(&str, &str)> = sources.iter().map(|(n, s)| (*n, s.as_ref())).collect();
            modules.push((m, gpu.module(&parts).await?));
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

    /// The tile (index into [`TILES`]) `spec` runs with on this device.
    pub fn tile(&self, spec: &GemmSpec) -> usize {
        spec.tile(&self.gpu.limits().tiles)
    }

    /// Floats of split-K scratch `spec` needs on this device.
    pub fn scratch_floats(&self, spec: &GemmSpec) -> u64 {
        spec.scratch_floats(self.tile(spec))
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

    /// A GEMM with its epilogue (see gemm.wgsl), on the tile the kernel table chooses for this
    /// device. `aux` is the bias buffer (`BiasAct`) or the previous layer's output (`ActGrad`);
    /// `scratch` holds split-K partials, at least [`Kernels::scratch_floats`] floats.
    pub fn gemm(
        &self,
        spec: &GemmSpec,
        [a, b, c]: [&GpuBuffer; 3],
        aux: Option<&GpuBuffer>,
        scratch: &GpuBuffer,
    ) -> Result<GemmCall> {
        let t = spec.tile(&self.gpu.limits().tiles);
        let uniform = self.uniform("GEMM parameters", &spec.params(t))?;
        let constants = spec.constants();
        let (grid, reduce_grid) = spec.grids(t);
        let main = self.pipeline(Module::Gemm(t), "main", &constants);
        let reduce = reduce_grid.map(|g| (self.pipeline(Module::Gemm(t), "reduce", &constants), g));
        let aux = aux.unwrap_or(&self.dummy_read);
        let group = self.bind(Module::Gemm(t), &[&uniform, a, b, c, aux, scratch]);
        Ok(GemmCall { main, reduce, group, grid, _uniform: uniform })
    }

    /// Gathers and normalises a batch (gather.wgsl): `records` the split's bytes as words, `lut`
    /// the 768 normalisation values, `index` the image indices the batch entries point into.
    /// With `draws` (one packed draw per position of `index`, `table::pack_draw`), each image is
    /// flipped and shifted as it is gathered (entry `augment`); without, the plain gather.
    pub fn gather(
        &self,
        [records, lut, index, x, labels]: [&GpuBuffer; 5],
        draws: Option<&GpuBuffer>,
        max_rows: u32,
    ) -> GatherCall {
        let (pipeline, group) = match draws {
            None => (
                self.pipeline(Module::Gather, "main", &[]),
                self.bind(Module::Gather, &[records, lut, index, x, labels]),
            ),
            Some(d) => (
                self.pipeline(Module::GatherAugment, "augment", &[]),
                self.bind(Module::GatherAugment, &[records, lut, index, x, labels, d]),
            ),
        };
        GatherCall { pipeline, group, rows: max_rows.clamp(1, 65_535) }
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

    fn conv_call(
        &self,
        m: Module,
        act: Option<Activation>,
        params: &[u8],
        buffers: &[&GpuBuffer],
        grid: (u32, u32),
    ) -> Result<ConvCall> {
        let uniform = self.uniform("convolution parameters", params)?;
        let act = act.map(|a| ("ACT", act_code(Some(a)) as f64));
        let constants: Vec<_> = act.into_iter().collect();
        let mut all = vec![&uniform];
        all.extend_from_slice(buffers);
        Ok(ConvCall {
            pipeline: self.pipeline(m, "main", &constants),
            group: self.bind(m, &all),
            grid,
            _uniform: uniform,
        })
    }

    /// im2col of block `b` (im2col.wgsl): `col` from the planes of `src` laid out as `input`.
    pub fn im2col(&self, b: &ConvBlockSpec, input: PlaneLayout, [src, col]: [&GpuBuffer; 2]) -> Result<ConvCall> {
        self.conv_call(Module::Im2col, None, &b.im2col_params(input), &[src, col], b.grids()[0])
    }

    /// col2im of block `b` (col2im.wgsl): the input gradient's planes, laid out as `out`, from
    /// `dcol`.
    pub fn col2im(&self, b: &ConvBlockSpec, out: PlaneLayout, [dcol, dx]: [&GpuBuffer; 2]) -> Result<ConvCall> {
        self.conv_call(Module::Col2im, None, &b.col2im_params(out), &[dcol, dx], b.grids()[1])
    }

    /// Pooling, bias and activation of block `b` (pool_forward.wgsl): `pooled` (laid out as
    /// `layout`) and `arg` from the convolution's output `y`, the bias read from `params`.
    pub fn pool_forward(
        &self,
        b: &ConvBlockSpec,
        act: Activation,
        layout: PlaneLayout,
        [y, params, pooled, arg]: [&GpuBuffer; 4],
    ) -> Result<ConvCall> {
        self.conv_call(Module::PoolForward, Some(act), &b.pool_params(layout), &[y, params, pooled, arg], b.grids()[2])
    }

    /// The backward of block `b`'s pooling and activation (pool_backward.wgsl): the convolution
    /// output's gradient `dy` from `dpooled` and `pooled` (laid out as `layout`) and `arg`.
    pub fn pool_backward(
        &self,
        b: &ConvBlockSpec,
        act: Activation,
        layout: PlaneLayout,
        [dpooled, pooled, arg, dy]: [&GpuBuffer; 4],
    ) -> Result<ConvCall> {
        self.conv_call(
            Module::PoolBackward,
            Some(act),
            &b.pool_params(layout),
            &[dpooled, pooled, arg, dy],
            b.grids()[3],
        )
    }
}
