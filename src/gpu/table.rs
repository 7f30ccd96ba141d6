//! The kernel table: every WGSL kernel's sources, bindings and override constants, the GEMM's
//! tile shapes and how one is chosen per product, and the GEMMs of an MLP's training step. It
//! is plain data and arithmetic (no WebGPU API), compiled on every target, so that the browser
//! trainer (`kernels`, through web-sys) and the native benchmark (`gpu-bench/`, through wgpu)
//! build the same modules from the same files and dispatch the same grids.
//!
//! A GEMM computes `C[M, N] = epilogue(A[M, K] B[K, N])` (gemm.wgsl states the indexing). A
//! workgroup of `(TN / RN) x (TM / RM)` invocations computes one `TM x TN` tile of `C`; each
//! step of `TK` stages `A[TM, TK]` and `B[TK, TN]` in workgroup memory (`4 TK (TM + TN)` bytes)
//! and each invocation accumulates an `RM x RN` block in registers (`RM RN / 4` vec4s) from
//! `RM / 4 + RN / 4` vec4 reads of workgroup memory per `k`: `RM RN` multiply-adds per
//! `(RM + RN) / 4` loads.
//!
//! | tile | TM x TN x TK | RM x RN | invocations | workgroup memory | chosen for |
//! |---|---|---|---|---|---|
//! | 0 | 64 x 64 x 16 | 4 x 4 | 256 | 8 KiB | none by shape: the fallback, and the shape of the kernel before the table (for comparisons) |
//! | 1 | 32 x 64 x 16 | 4 x 4 | 128 | 6 KiB | M <= 32 (small batches) |
//! | 2 | 64 x 128 x 16 | 8 x 8 | 128 | 12 KiB | M > 32: a training batch's forward and input gradient (M = 64), the weight gradient (M = out), evaluation |
//!
//! Measured on lavapipe (docs/gpu-speed.md), 64 x 128 with 8 x 8 per invocation was the best or
//! level with the best on all three lecture shapes; 64 x 64 x 32 (8 x 4), 64 x 128 x 32 (24 KiB)
//! and 128 x 128 x 16 were tried and not better, so they are not in the table.
//!
//! [`GemmSpec::tile`] picks the first listed candidate for the shape that fits the adapter's
//! [`Limits`] (workgroup memory and invocations; tile 0 fits WebGPU's guaranteed minimums, so
//! there is always one). Split-K ([`GemmSpec::split`]) cuts a deep K when the output has few
//! tiles, so that a batch of 64 still fills the device; the partial sums are added in chunk order
//! by a second dispatch (deterministic). The weight gradient (K = the batch) is not split: its
//! `512 x 3072` output is 192 tiles of 64 x 128 already, and its bias gradient (the row sums of
//! `A = dy^T`) is fused into its epilogue ([`GemmSpec::bias_off`]), which needs the whole K in
//! one workgroup.
//!
//! For the convolutions' im2col products (forward `W col`: `[C_out, C_in 9] x [C_in 9, B H W]`,
//! and the two gradients) the same entry serves: any M, N, K, either transpose, offsets and
//! leading dimensions, the four epilogues; [`conv`] states their shapes and the convolution
//! kernels' parameters.

use crate::config::{Activation, OptimizerConfig, OptimizerKind};
use crate::data::augment::Draw;
use std::borrow::Cow;

pub mod conv;
pub use conv::{ConvBlockSpec, ConvGemms, PlaneLayout};

pub const BATCH: (&str, &str) = ("batch.wgsl", include_str!("kernels/batch.wgsl"));
pub const ACT: (&str, &str) = ("act.wgsl", include_str!("kernels/act.wgsl"));
pub const GEMM: (&str, &str) = ("gemm.wgsl", include_str!("kernels/gemm.wgsl"));
pub const ACTIVATION: (&str, &str) = ("activation.wgsl", include_str!("kernels/activation.wgsl"));
pub const GATHER: (&str, &str) = ("gather.wgsl", include_str!("kernels/gather.wgsl"));
pub const BIAS_GRAD: (&str, &str) = ("bias_grad.wgsl", include_str!("kernels/bias_grad.wgsl"));
pub const LOSS: (&str, &str) = ("loss.wgsl", include_str!("kernels/loss.wgsl"));
pub const OPTIMIZER: (&str, &str) = ("optimizer.wgsl", include_str!("kernels/optimizer.wgsl"));
pub const IM2COL: (&str, &str) = ("im2col.wgsl", include_str!("kernels/im2col.wgsl"));
pub const COL2IM: (&str, &str) = ("col2im.wgsl", include_str!("kernels/col2im.wgsl"));
pub const POOL_FORWARD: (&str, &str) = ("pool_forward.wgsl", include_str!("kernels/pool_forward.wgsl"));
pub const POOL_BACKWARD: (&str, &str) = ("pool_backward.wgsl", include_str!("kernels/pool_backward.wgsl"));

/// Bytes between two entries of a batch table: WebGPU's largest permitted
/// `minUniformBufferOffsetAlignment`, so it is valid on every adapter.
pub const BATCH_STRIDE: u64 = 256;
/// Bytes of one entry as the shaders read it (`struct Batch`, 6 x 4 bytes, bound as 32).
pub const BATCH_BYTES: u64 = 32;
/// Workgroups the GEMM aims for before it splits K: enough to fill a laptop GPU's cores.
const TARGET_WORKGROUPS: u32 = 128;
/// Smallest K chunk of a split (shorter chunks spend more on the reduction than they save).
const MIN_K_CHUNK: u32 = 256;
/// Threads per workgroup of the element-wise kernels.
pub const WG: u32 = 256;
/// Bytes of one statistics slot (summed loss f32, correct count u32).
pub const STAT_BYTES: u64 = 8;

/// A GEMM tile shape (see the module's table).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Tile {
    pub tm: u32,
    pub tn: u32,
    pub tk: u32,
    pub rm: u32,
    pub rn: u32,
}

/// The GEMM tiles, by index (the module's table).
pub const TILES: [Tile; 3] = [
    Tile { tm: 64, tn: 64, tk: 16, rm: 4, rn: 4 },
    Tile { tm: 32, tn: 64, tk: 16, rm: 4, rn: 4 },
    Tile { tm: 64, tn: 128, tk: 16, rm: 8, rn: 8 },
];

impl Tile {
    pub fn invocations(&self) -> u32 {
        (self.tm / self.rm) * (self.tn / self.rn)
    }

    /// Bytes of workgroup memory: the A and B tiles.
    pub fn workgroup_bytes(&self) -> u32 {
        4 * self.tk * (self.tm + self.tn)
    }

    pub fn fits(&self, limits: &Limits) -> bool {
        self.invocations() <= limits.invocations && self.workgroup_bytes() <= limits.workgroup_bytes
    }

    /// The WGSL constants gemm.wgsl is compiled with for this tile.
    pub fn header(&self) -> String {
        format!(
            "// GEMM tile (src/gpu/table.rs)\nconst TM: u32 = {}u;\nconst TN: u32 = {}u;\nconst TK: u32 = {}u;\nconst RM: u32 = {}u;\nconst RN: u32 = {}u;",
            self.tm, self.tn, self.tk, self.rm, self.rn
        )
    }
}

/// The adapter limits a tile must fit.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Limits {
    /// `maxComputeWorkgroupStorageSize` (WebGPU guarantees 16384).
    pub workgroup_bytes: u32,
    /// `maxComputeInvocationsPerWorkgroup` (WebGPU guarantees 256).
    pub invocations: u32,
}

impl Default for Limits {
    /// WebGPU's guaranteed minimums.
    fn default() -> Limits {
        Limits { workgroup_bytes: 16_384, invocations: 256 }
    }
}

/// The compiled units: each is its sources joined, with group 0's bindings.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Module {
    /// gemm.wgsl with the constants of tile `TILES[i]`.
    Gemm(usize),
    Activation,
    Gather,
    /// gather.wgsl's `augment` entry: the gather with flip and shift, reading the epoch's draws
    /// (a sixth binding), for runs with data augmentation only.
    GatherAugment,
    BiasGrad,
    Loss,
    Optimizer,
    Im2col,
    Col2im,
    PoolForward,
    PoolBackward,
}

/// What a binding of group 0 is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bind {
    Uniform,
    Read,
    Write,
}

impl Module {
    /// Every module, the GEMM once per tile.
    pub fn all() -> Vec<Module> {
        let mut out: Vec<Module> = (0..TILES.len()).map(Module::Gemm).collect();
        out.extend([Module::Activation, Module::Gather, Module::GatherAugment, Module::BiasGrad, Module::Loss]);
        out.extend([Module::Optimizer, Module::Im2col, Module::Col2im, Module::PoolForward, Module::PoolBackward]);
        out
    }

    /// (file name, text) of each part, joined by newlines into the module.
    pub fn sources(self) -> Vec<(&'static str, Cow<'static, str>)> {
        let parts = match self {
            Module::Gemm(t) => {
                return vec![
                    ("gemm tile", Cow::Owned(TILES[t].header())),
                    (BATCH.0, BATCH.1.into()),
                    (ACT.0, ACT.1.into()),
                    (GEMM.0, GEMM.1.into()),
                ];
            }
            Module::Activation => [BATCH, ACT, ACTIVATION].to_vec(),
            Module::Gather | Module::GatherAugment => [BATCH, GATHER].to_vec(),
            Module::BiasGrad => [BATCH, BIAS_GRAD].to_vec(),
            Module::Loss => [BATCH, LOSS].to_vec(),
            Module::Optimizer => [BATCH, OPTIMIZER].to_vec(),
            Module::Im2col => [BATCH, IM2COL].to_vec(),
            Module::Col2im => [BATCH, COL2IM].to_vec(),
            Module::PoolForward => [BATCH, ACT, POOL_FORWARD].to_vec(),
            Module::PoolBackward => [BATCH, ACT, POOL_BACKWARD].to_vec(),
        };
        parts.into_iter().map(|(n, s)| (n, Cow::Borrowed(s))).collect()
    }

    /// Group 0's bindings, in order of their binding numbers (group 1 is the batch entry,
    /// a uniform with a dynamic offset).
    pub fn bindings(self) -> &'static [Bind] {
        use Bind::*;
        match self {
            Module::Gemm(_) => &[Uniform, Read, Read, Write, Read, Write],
            Module::Activation => &[Uniform, Write, Read],
            Module::Gather => &[Read, Read, Read, Write, Write],
            Module::GatherAugment => &[Read, Read, Read, Write, Write, Read],
            Module::BiasGrad => &[Uniform, Read, Write],
            Module::Loss => &[Read, Read, Write, Write, Write, Write],
            Module::Optimizer => &[Uniform, Write, Read, Write, Write],
            Module::Im2col | Module::Col2im => &[Uniform, Read, Write],
            Module::PoolForward => &[Uniform, Read, Read, Write, Write],
            Module::PoolBackward => &[Uniform, Read, Read, Read, Write],
        }
    }
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
    pub fn bytes(&self) -> [u8; 24] {
        let mut out = [0; 24];
        let words =
            [self.start, self.rows, self.slot, self.first as u32, self.step_size.to_bits(), self.bc2_sqrt.to_bits()];
        for (o, w) in out.chunks_exact_mut(4).zip(words) {
            o.copy_from_slice(&w.to_le_bytes());
        }
        out
    }

    /// `entries` laid out [`BATCH_STRIDE`] apart, as a batch table's buffer holds them.
    pub fn table_bytes(entries: &[BatchEntry]) -> Vec<u8> {
        let mut bytes = vec![0u8; entries.len() * BATCH_STRIDE as usize];
        for (chunk, e) in bytes.chunks_exact_mut(BATCH_STRIDE as usize).zip(entries) {
            chunk[..24].copy_from_slice(&e.bytes());
        }
        bytes
    }
}

/// One image's augmentation draw as gather.wgsl's `augment` reads it: bit 0 the flip, bits 8..16
/// `dx + 128`, bits 16..24 `dy + 128` (shifts are at most `config::MAX_AUGMENT_SHIFT`).
pub fn pack_draw(d: &Draw) -> u32 {
    debug_assert!((-128..128).contains(&d.dx) && (-128..128).contains(&d.dy), "{d:?}");
    u32::from(d.flip) | ((d.dx + 128) as u32 & 0xff) << 8 | ((d.dy + 128) as u32 & 0xff) << 16
}

/// Workgroup counts `(x, y)` covering `groups` workgroups in 1-D (kernels index them as
/// `y * num_x + x`), within the 65535 per dimension WebGPU guarantees.
pub fn grid(groups: u32) -> (u32, u32) {
    let x = groups.clamp(1, 65_535);
    (x, groups.div_ceil(x).max(1))
}

/// Little-endian bytes of `values`, a uniform buffer's contents.
pub fn words(values: &[u32]) -> Vec<u8> {
    values.iter().flat_map(|w| w.to_le_bytes()).collect()
}

pub fn act_code(act: Option<Activation>) -> u32 {
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
    /// Also write the row sums of `A` over K (`sum_k A(m, k)`, the bias gradient when `A = dy^T`)
    /// to `c[bias_off + m]` through the same epilogue (`Store` or `Sgd` only). No K split then.
    pub bias_off: Option<u32>,
    /// A tile forced by index into [`TILES`] (tests and benchmarks); `None`: the table's choice.
    pub tile: Option<usize>,
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
            bias_off: None,
            tile: None,
        }
    }

    /// The tile (index into [`TILES`]): the forced one, else by the shape's M, the first
    /// candidate that fits `limits`.
    pub fn tile(&self, limits: &Limits) -> usize {
        if let Some(t) = self.tile {
            return t;
        }
        let candidates: &[usize] = match self.m {
            0..=32 => &[1, 0],
            _ => &[2, 0],
        };
        candidates.iter().copied().find(|&t| TILES[t].fits(limits)).unwrap_or(0)
    }

    /// K chunks and their length for tile `t`: split while the output has fewer than
    /// [`TARGET_WORKGROUPS`] tiles, each chunk at least [`MIN_K_CHUNK`] deep. Not when K is the
    /// batch (it varies) nor with the fused bias (its row sums need all of K).
    pub fn split(&self, t: usize) -> (u32, u32) {
        let tile = TILES[t];
        let tiles = self.m.div_ceil(tile.tm) * self.n.div_ceil(tile.tn);
        let want = TARGET_WORKGROUPS.div_ceil(tiles.max(1));
        let most = (self.k / MIN_K_CHUNK).max(1);
        let no_split = self.rows == RowsDim::K || self.bias_off.is_some();
        let splits = if no_split { 1 } else { want.clamp(1, most).min(64) };
        let chunk = self.k.div_ceil(splits).next_multiple_of(tile.tk).max(tile.tk);
        (self.k.div_ceil(chunk).max(1), chunk)
    }

    /// Floats of split-K scratch this product needs with tile `t` (0 without a split).
    pub fn scratch_floats(&self, t: usize) -> u64 {
        let (splits, _) = self.split(t);
        if splits > 1 { splits as u64 * self.m as u64 * self.n as u64 } else { 0 }
    }

    /// Floating-point operations: `2 m n k`.
    pub fn flops(&self) -> f64 {
        2.0 * self.m as f64 * self.n as f64 * self.k as f64
    }

    /// The contents of the GEMM's uniform buffer (`struct Gemm` in gemm.wgsl) for tile `t`.
    pub fn params(&self, t: usize) -> Vec<u8> {
        let (splits, k_chunk) = self.split(t);
        let (lr, wd) = match self.epilogue {
            Epilogue::Sgd { lr, weight_decay } => (lr, weight_decay),
            _ => (0.0, 0.0),
        };
        let rows_dim = match self.rows {
            RowsDim::None => 0,
            RowsDim::M => 1,
            RowsDim::K => 2,
        };
        let s = self;
        words(&[
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
            s.bias_off.unwrap_or(0),
        ])
    }

    /// The pipeline-overridable constants of gemm.wgsl.
    pub fn constants(&self) -> [(&'static str, f64); 5] {
        let (mode, act) = match self.epilogue {
            Epilogue::BiasAct(act) => (0, act),
            Epilogue::ActGrad(act) => (1, act),
            Epilogue::Store => (2, None),
            Epilogue::Sgd { .. } => (3, None),
        };
        assert!(self.bias_off.is_none() || mode >= 2, "the fused bias needs the Store or Sgd epilogue");
        [
            ("A_TRANS", self.a_trans as u32 as f64),
            ("B_TRANS", self.b_trans as u32 as f64),
            ("MODE", mode as f64),
            ("ACT", act_code(act) as f64),
            ("BIAS", self.bias_off.is_some() as u32 as f64),
        ]
    }

    /// Workgroups of the main dispatch with tile `t` (x over N, y over M, z over K chunks), and
    /// of the split-K reduction when there is one.
    pub fn grids(&self, t: usize) -> ((u32, u32, u32), Option<(u32, u32)>) {
        let tile = TILES[t];
        let (splits, _) = self.split(t);
        let main = (self.n.div_ceil(tile.tn), self.m.div_ceil(tile.tm), splits);
        (main, (splits > 1).then(|| grid((self.m * self.n).div_ceil(WG))))
    }
}

/// The GEMMs of one Linear layer's training step (`W: [out, in]` at `w_off` in the flat
/// parameter buffer, its bias right after), for batches of up to `batch` rows.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LayerGemms {
    /// `y = act(x W^T + b)`.
    pub forward: GemmSpec,
    /// `dx = (dy W) * act'(x)`: not for the first layer.
    pub input_grad: Option<GemmSpec>,
    /// `dW = dy^T x` with the bias gradient `db = sum_rows dy` fused, stored in the gradient
    /// buffer (at the parameters' offsets) or applied as plain SGD.
    pub weight_grad: GemmSpec,
}

/// Whether `config` is plain SGD (no momentum), whose step is fused into the weight gradient.
pub fn fused_sgd(config: &OptimizerConfig) -> bool {
    config.kind == OptimizerKind::Sgd && config.momentum == 0.0
}

impl LayerGemms {
    /// Layer `l` of `last + 1`, `inp -> out` features at parameter offset `w_off`, with hidden
    /// activation `act` (none on the last layer).
    pub fn new(
        (inp, out, w_off): (u32, u32, u32),
        first: bool,
        last: bool,
        act: Activation,
        batch: u32,
        optimizer: &OptimizerConfig,
    ) -> LayerGemms {
        let b_off = w_off + inp * out;
        let forward = GemmSpec {
            b_trans: true,
            ldb: inp,
            b_off: w_off,
            aux_off: b_off,
            rows: RowsDim::M,
            ..GemmSpec::dense(batch, out, inp, false, false, Epilogue::BiasAct(if last { None } else { Some(act) }))
        };
        let input_grad = (!first).then(|| GemmSpec {
            b_off: w_off,
            rows: RowsDim::M,
            ..GemmSpec::dense(batch, inp, out, false, false, Epilogue::ActGrad(Some(act)))
        });
        let epilogue = if fused_sgd(optimizer) {
            Epilogue::Sgd { lr: optimizer.lr, weight_decay: optimizer.weight_decay }
        } else {
            Epilogue::Store
        };
        let weight_grad = GemmSpec {
            c_off: w_off,
            rows: RowsDim::K,
            bias_off: Some(b_off),
            ..GemmSpec::dense(out, inp, batch, true, false, epilogue)
        };
        LayerGemms { forward, input_grad, weight_grad }
    }
}

/// The product of `bench::GEMM_SHAPES` entry `shape` (`m x k` by `k x n`) in the layout training
/// uses, with the `Store` epilogue: forward `x W^T` (B transposed), weight gradient `dy^T x`
/// (A transposed), input gradient `dy W`.
pub fn bench_spec(shape: &str, m: usize, k: usize, n: usize) -> GemmSpec {
    let (m, k, n) = (m as u32, k as u32, n as u32);
    match shape {
        s if s.starts_with("forward") => GemmSpec::dense(m, n, k, false, true, Epilogue::Store),
        s if s.starts_with("weight") => GemmSpec::dense(m, n, k, true, false, Epilogue::Store),
        _ => GemmSpec::dense(m, n, k, false, false, Epilogue::Store),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::TrainConfig;

    #[test]
    fn every_tile_is_one_the_kernel_can_run_within_webgpus_minimums() {
        for (i, t) in TILES.iter().enumerate() {
            // gemm.wgsl writes the register block out for RM, RN in {4, 8}, and stages vec4s.
            assert!([4, 8].contains(&t.rm) && [4, 8].contains(&t.rn), "tile {i}: {t:?}");
            assert!(t.tm % t.rm == 0 && t.tn % t.rn == 0 && t.tm % 4 == 0 && t.tn % 4 == 0, "tile {i}");
            assert!(
                t.fits(&Limits::default()),
                "tile {i} ({} bytes, {} invocations)",
                t.workgroup_bytes(),
                t.invocations()
            );
            // The vec4 slots of a K step are shared out evenly between the invocations.
            assert_eq!((t.tm * t.tk / 4) % t.invocations(), 0, "tile {i}: A slots");
            assert_eq!((t.tn * t.tk / 4) % t.invocations(), 0, "tile {i}: B slots");
        }
    }

    #[test]
    fn a_draw_packs_into_the_word_gather_wgsl_reads() {
        // gather.wgsl: flip = bit 0, dx = ((w >> 8) & 255) - 128, dy = ((w >> 16) & 255) - 128.
        let w = pack_draw(&Draw { flip: true, dx: -8, dy: 8 });
        assert_eq!(w, 1 | 120 << 8 | 136 << 16);
        for (flip, dx, dy) in [(false, 0, 0), (true, 3, -1), (false, -4, 4)] {
            let w = pack_draw(&Draw { flip, dx, dy });
            let back = (w & 1 == 1, ((w >> 8) & 255) as i32 - 128, ((w >> 16) & 255) as i32 - 128);
            assert_eq!(back, (flip, dx, dy));
        }
    }

    #[test]
    fn the_choice_follows_the_shape_and_the_limits() {
        let small = GemmSpec::dense(20, 512, 3072, false, true, Epilogue::Store);
        let batch = GemmSpec::dense(64, 512, 3072, false, true, Epilogue::Store);
        let limits = Limits::default();
        assert_eq!(small.tile(&limits), 1);
        assert_eq!(batch.tile(&limits), 2);
        // An adapter below WebGPU's minimums still gets tile 0 if it fits, whatever the shape.
        let tight = Limits { workgroup_bytes: 8192, invocations: 256 };
        assert_eq!(batch.tile(&tight), 0);
        assert_eq!(GemmSpec { tile: Some(1), ..batch }.tile(&limits), 1);
    }

    #[test]
    fn the_lecture_step_fuses_the_bias_and_splits_only_deep_products() {
        let c = TrainConfig::preset("lecture").unwrap();
        let g = LayerGemms::new((3072, 512, 0), true, false, Activation::Tanh, 64, &c.optimizer);
        assert!(g.input_grad.is_none());
        let w = g.weight_grad;
        assert_eq!((w.m, w.n, w.k, w.a_trans, w.b_trans), (512, 3072, 64, true, false));
        assert_eq!(w.bias_off, Some(3072 * 512));
        assert_eq!(w.epilogue, Epilogue::Sgd { lr: c.optimizer.lr, weight_decay: c.optimizer.weight_decay });
        let limits = Limits::default();
        assert_eq!(w.split(w.tile(&limits)).0, 1);
        assert_eq!(w.grids(w.tile(&limits)), ((3072 / 128, 512 / 64, 1), None));
        // The forward of a batch of 64 by 512 outputs is 4 tiles of 64 x 128: K = 3072 is cut
        // into 12 chunks of 256 (the shortest allowed), reduced by a second dispatch.
        let f = g.forward;
        assert_eq!(f.split(f.tile(&limits)), (12, 256));
        assert!(f.grids(f.tile(&limits)).1.is_some());
    }
}
