//! General matrix multiply: `C = alpha * A B + beta * C`.
//!
//! Shapes: `A` is `m x k`, `B` is `k x n`, `C` is `m x n`. All three are ndarray views with any
//! strides, so a transpose is just `.t()` on a view (no copy): the forward pass of a linear layer is
//! `gemm(1, x, w.t(), 0, y)`, its weight gradient `gemm(1, dy.t(), x, 0, dw)`.
//!
//! The structure follows BLIS / `matrixmultiply`:
//! 1. `B` is packed one `KC x NC` block at a time into column panels `NR` wide,
//! 2. `A` one `MC x KC` block at a time into row panels `MR` tall (both zero-padded at the edges),
//! 3. a register-blocked micro-kernel multiplies one `MR x KC` panel by one `KC x NR` panel, keeping
//!    the `MR x NR` accumulator in registers, and writes `alpha * acc + beta * C` once per K block.
//!
//! When A is row-major and B column-major (`x W^T`), a kernel with a direct variant (wasm) computes
//! `C^T = B^T A^T` instead: it reads `W` in place rather than packing it, and stores its tile
//! transposed.
//!
//! There is one micro-kernel per instruction set (AVX-512, AVX2 + FMA, wasm simd128, wasm
//! relaxed-simd, portable scalar), each behind `cfg`, and one selector, [`Kernel::best`].
//! [`gemm_reference`] is the naive triple loop, kept on purpose as the oracle for the tests.
//!
//! Determinism: every element of `C` is accumulated in the same order over `k` (K blocks in order,
//! then `k` within a block) whatever the tile it falls in, so splitting the work between threads
//! along `M` or `N` gives bit-identical results for any thread count.

use ndarray::{ArrayView2, ArrayViewMut2};
use std::cell::RefCell;

/// Micro-kernel choice: the instruction set the inner loop uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kernel {
    /// Portable Rust, 4 x 8 tile; what any target can run.
    Scalar,
    /// x86-64 AVX2 + FMA, 6 x 16 tile (12 of the 16 ymm registers hold the accumulator).
    #[cfg(target_arch = "x86_64")]
    Avx2,
    /// x86-64 AVX-512F, 8 x 32 tile (16 of the 32 zmm registers hold the accumulator).
    #[cfg(target_arch = "x86_64")]
    Avx512,
    /// wasm simd128 with separate multiply and add. `f32::mul_add` is never used in wasm: without
    /// relaxed-simd it compiles to a software `fmaf` call, about 6x slower.
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    Simd128,
    /// wasm relaxed-simd `f32x4.relaxed_madd` (fused where the CPU has FMA).
    #[cfg(all(target_arch = "wasm32", target_feature = "relaxed-simd"))]
    RelaxedSimd,
}

impl Kernel {
    /// The fastest kernel this machine (or this wasm build) can run. Chosen once per process.
    pub fn best() -> Kernel {
        #[cfg(target_arch = "x86_64")]
        {
            static BEST: std::sync::OnceLock<Kernel> = std::sync::OnceLock::new();
            *BEST.get_or_init(|| {
                if std::arch::is_x86_feature_detected!("avx512f") {
                    Kernel::Avx512
                } else if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
                    Kernel::Avx2
                } else {
                    Kernel::Scalar
                }
            })
        }
        #[cfg(all(target_arch = "wasm32", target_feature = "relaxed-simd"))]
        {
            Kernel::RelaxedSimd
        }
        #[cfg(all(target_arch = "wasm32", target_feature = "simd128", not(target_feature = "relaxed-simd")))]
        {
            Kernel::Simd128
        }
        #[cfg(not(any(target_arch = "x86_64", all(target_arch = "wasm32", target_feature = "simd128"))))]
        {
            Kernel::Scalar
        }
    }

    /// Every kernel this machine can run, for tests and benchmarks.
    pub fn available() -> Vec<Kernel> {
        #[allow(unused_mut)]
        let mut v = vec![Kernel::Scalar];
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
                v.push(Kernel::Avx2);
            }
            if std::arch::is_x86_feature_detected!("avx512f") {
                v.push(Kernel::Avx512);
            }
        }
        #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
        v.push(Kernel::Simd128);
        #[cfg(all(target_arch = "wasm32", target_feature = "relaxed-simd"))]
        v.push(Kernel::RelaxedSimd);
        v
    }

    /// Short name shown by the benchmark and the page ("avx512", "simd128", ...).
    pub fn name(self) -> &'static str {
        match self {
            Kernel::Scalar => "scalar",
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx2 => "avx2-fma",
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx512 => "avx512",
            #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
            Kernel::Simd128 => "simd128",
            #[cfg(all(target_arch = "wasm32", target_feature = "relaxed-simd"))]
            Kernel::RelaxedSimd => "relaxed-simd",
        }
    }
}

/// `C = alpha * A B + beta * C` with the best kernel, on the current rayon pool when the
/// `parallel` feature is on. When `beta == 0`, `C` is not read (it may hold NaN), as in BLAS.
///
/// Panics if the shapes do not agree: shapes are fixed by the model, never by user input.
pub fn gemm(alpha: f32, a: &ArrayView2<f32>, b: &ArrayView2<f32>, beta: f32, c: &mut ArrayViewMut2<f32>) {
    gemm_with(Kernel::best(), alpha, a, b, beta, c)
}

/// [`gemm`] with a chosen kernel (tests run every available kernel against the reference).
pub fn gemm_with(
    kernel: Kernel,
    alpha: f32,
    a: &ArrayView2<f32>,
    b: &ArrayView2<f32>,
    beta: f32,
    c: &mut ArrayViewMut2<f32>,
) {
    gemm_with_threads(kernel, usize::MAX, alpha, a, b, beta, c)
}

/// [`gemm_with`] on at most `max_threads` threads of the current pool (tests compare thread
/// counts inside one pool, which wasm cannot create twice).
#[allow(clippy::too_many_arguments)]
pub fn gemm_with_threads(
    kernel: Kernel,
    max_threads: usize,
    alpha: f32,
    a: &ArrayView2<f32>,
    b: &ArrayView2<f32>,
    beta: f32,
    c: &mut ArrayViewMut2<f32>,
) {
    let (m, k) = a.dim();
    let (k2, n) = b.dim();
    assert!(k == k2 && c.dim() == (m, n), "gemm shapes: A {:?} B {:?} C {:?}", a.dim(), b.dim(), c.dim());
    let a = Strided { ptr: a.as_ptr(), rs: a.strides()[0], cs: a.strides()[1] };
    let b = Strided { ptr: b.as_ptr(), rs: b.strides()[0], cs: b.strides()[1] };
    let c = StridedMut { ptr: c.as_mut_ptr(), rs: c.strides()[0], cs: c.strides()[1] };
    let p = Problem { m, n, k, alpha, beta, max_threads };
    // SAFETY: the pointers and strides come from live ndarray views whose shapes were checked
    // above; `c` is borrowed mutably for the whole call.
    unsafe {
        match kernel {
            Kernel::Scalar => parallel_gemm::<ScalarKernel>(p, a, b, c),
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx2 => parallel_gemm::<x86::Avx2Kernel>(p, a, b, c),
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx512 => parallel_gemm::<x86::Avx512Kernel>(p, a, b, c),
            #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
            Kernel::Simd128 => parallel_gemm::<wasm::Simd128Kernel>(p, a, b, c),
            #[cfg(all(target_arch = "wasm32", target_feature = "relaxed-simd"))]
            Kernel::RelaxedSimd => parallel_gemm::<wasm::RelaxedKernel>(p, a, b, c),
        }
    }
}

/// The naive triple loop: the oracle the blocked kernels are tested against. Accumulates in f64
/// so that it is more accurate than what it checks.
pub fn gemm_reference(alpha: f32, a: &ArrayView2<f32>, b: &ArrayView2<f32>, beta: f32, c: &mut ArrayViewMut2<f32>) {
    let (m, k) = a.dim();
    let n = b.dim().1;
    assert!(b.dim().0 == k && c.dim() == (m, n), "gemm_reference shapes");
    for i in 0..m {
        for j in 0..n {
            let mut acc = 0.0f64;
            for p in 0..k {
                acc += a[[i, p]] as f64 * b[[p, j]] as f64;
            }
            let prev = if beta == 0.0 { 0.0 } else { beta as f64 * c[[i, j]] as f64 };
            c[[i, j]] = (alpha as f64 * acc + prev) as f32;
        }
    }
}

#[derive(Clone, Copy)]
struct Problem {
    m: usize,
    n: usize,
    k: usize,
    alpha: f32,
    beta: f32,
    #[cfg_attr(not(feature = "parallel"), allow(dead_code))]
    max_threads: usize,
}

#[derive(Clone, Copy)]
struct Strided {
    ptr: *const f32,
    rs: isize,
    cs: isize,
}

#[derive(Clone, Copy)]
struct StridedMut {
    ptr: *mut f32,
    rs: isize,
    cs: isize,
}

// SAFETY: the parallel driver hands each thread a disjoint block of C and read-only A and B.
unsafe impl Send for Strided {}
unsafe impl Sync for Strided {}
unsafe impl Send for StridedMut {}
unsafe impl Sync for StridedMut {}

impl Strided {
    unsafe fn at(self, i: usize, j: usize) -> Strided {
        Strided { ptr: unsafe { self.ptr.offset(i as isize * self.rs + j as isize * self.cs) }, ..self }
    }
}

impl StridedMut {
    unsafe fn at(self, i: usize, j: usize) -> StridedMut {
        StridedMut { ptr: unsafe { self.ptr.offset(i as isize * self.rs + j as isize * self.cs) }, ..self }
    }
}

/// A register-blocked micro-kernel and the cache blocking that suits it.
trait MicroKernel {
    /// Rows of the register tile.
    const MR: usize;
    /// Columns of the register tile.
    const NR: usize;
    /// Depth of one packed block: an `KC x NR` panel of B should sit in L1.
    const KC: usize;
    /// Rows of A packed at once (a multiple of MR): an `MC x KC` block should sit in L2.
    const MC: usize;
    /// Columns of B packed at once (a multiple of NR).
    const NC: usize;

    /// `C[0..MR, 0..NR] = alpha * (A_panel B_panel) + beta * C`, where `a` holds `kc` groups of `MR`
    /// values and `b` holds `kc` groups of `NR` values. `C` is row-major with row stride `rsc`.
    /// When `beta == 0`, `C` must not be read.
    unsafe fn kernel(kc: usize, alpha: f32, a: *const f32, b: *const f32, beta: f32, c: *mut f32, rsc: usize);

    /// Whether [`MicroKernel::kernel_direct`] exists.
    const DIRECT_A: bool = false;

    /// [`MicroKernel::kernel`] reading A in place, `MR` rows `lda` apart, each contiguous along
    /// `k` (no packing), and writing C transposed: element `(i, j)` of the tile goes to
    /// `c[i + j * csc]`.
    #[allow(clippy::too_many_arguments)]
    unsafe fn kernel_direct(
        _kc: usize,
        _alpha: f32,
        _a: *const f32,
        _lda: usize,
        _b: *const f32,
        _beta: f32,
        _c: *mut f32,
        _csc: usize,
    ) {
        unreachable!("kernel_direct called on a kernel without DIRECT_A")
    }
}

thread_local! {
    /// Packing buffers, reused across calls so that training allocates nothing per batch.
    static PACK: RefCell<(Vec<f32>, Vec<f32>)> = const { RefCell::new((Vec::new(), Vec::new())) };
}

/// Splits `C` into blocks for the rayon pool (when there is one), each computed by [`serial_gemm`].
unsafe fn parallel_gemm<K: MicroKernel>(p: Problem, a: Strided, b: Strided, c: StridedMut) {
    // `x W^T` with a row-major `W`: B is column-major, and packing it transposes all of `W` (6 MB
    // in the lecture model) every batch. Computed as `C^T = B^T A^T` instead, `W` is a row-major
    // A that a direct kernel reads in place, and the small `x` is what gets packed. The result is
    // bit-identical: every element still sums over `k` in the same order.
    let swap = K::DIRECT_A && b.rs == 1 && b.cs != 1 && a.cs == 1;
    let (p, a, b, c) = if swap {
        (
            Problem { m: p.n, n: p.m, ..p },
            Strided { ptr: b.ptr, rs: b.cs, cs: b.rs },
            Strided { ptr: a.ptr, rs: a.cs, cs: a.rs },
            StridedMut { ptr: c.ptr, rs: c.cs, cs: c.rs },
        )
    } else {
        (p, a, b, c)
    };
    #[cfg(feature = "parallel")]
    {
        let threads = rayon::current_num_threads().min(p.max_threads);
        // Below about 2 MFLOP the fork/join costs more than it saves.
        if threads > 1 && p.m * p.n * p.k >= 1 << 20 {
            // Split the longer side into pieces aligned to the register tile: the 64-row batches
            // of training have few rows but many columns, so this is usually N.
            let split_n = p.n.div_ceil(K::NR) >= p.m.div_ceil(K::MR);
            let (len, unit) = if split_n { (p.n, K::NR) } else { (p.m, K::MR) };
            let units = len.div_ceil(unit);
            let parts = threads.min(units);
            if parts > 1 {
                use rayon::prelude::*;
                (0..parts).into_par_iter().for_each(|t| {
                    let start = units * t / parts * unit;
                    let end = (units * (t + 1) / parts * unit).min(len);
                    // SAFETY: blocks [start, end) of C are disjoint between parts.
                    unsafe {
                        if split_n {
                            let q = Problem { n: end - start, ..p };
                            serial_gemm::<K>(q, a, b.at(0, start), c.at(0, start));
                        } else {
                            let q = Problem { m: end - start, ..p };
                            serial_gemm::<K>(q, a.at(start, 0), b, c.at(start, 0));
                        }
                    }
                });
                return;
            }
        }
    }
    unsafe { serial_gemm::<K>(p, a, b, c) }
}

/// One thread's share: the BLIS loop nest over the packed blocks.
unsafe fn serial_gemm<K: MicroKernel>(p: Problem, a: Strided, b: Strided, c: StridedMut) {
    let Problem { m, n, k, alpha, beta, .. } = p;
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 || alpha == 0.0 {
        for i in 0..m {
            for j in 0..n {
                let cij = unsafe { c.at(i, j).ptr };
                unsafe { *cij = if beta == 0.0 { 0.0 } else { beta * *cij } };
            }
        }
        return;
    }
    PACK.with(|cell| {
        let mut bufs = cell.borrow_mut();
        let (apack, bpack) = &mut *bufs;
        let a_len = K::MC * K::KC;
        let b_len = K::KC * K::NC.min(n.div_ceil(K::NR) * K::NR);
        if apack.len() < a_len {
            apack.resize(a_len, 0.0);
        }
        if bpack.len() < b_len {
            bpack.resize(b_len, 0.0);
        }
        let mut tile = [0.0f32; 16 * 64];
        // A read in place and C written transposed (see `parallel_gemm`).
        let direct = K::DIRECT_A && a.cs == 1 && a.rs > 0 && c.rs == 1 && c.cs > 0;
        for jc in (0..n).step_by(K::NC) {
            let nc = K::NC.min(n - jc);
            for pc in (0..k).step_by(K::KC) {
                let kc = K::KC.min(k - pc);
                let beta_block = if pc == 0 { beta } else { 1.0 };
                unsafe { pack_b::<K>(kc, nc, b.at(pc, jc), bpack) };
                for ic in (0..m).step_by(K::MC) {
                    let mc = K::MC.min(m - ic);
                    if !direct {
                        unsafe { pack_a::<K>(mc, kc, a.at(ic, pc), apack) };
                    }
                    for jr in (0..nc).step_by(K::NR) {
                        let nr = K::NR.min(nc - jr);
                        let bp = unsafe { bpack.as_ptr().add(jr * kc) };
                        for ir in (0..mc).step_by(K::MR) {
                            let mr = K::MR.min(mc - ir);
                            let cblk = unsafe { c.at(ic + ir, jc + jr) };
                            if direct && mr == K::MR && nr == K::NR {
                                let ap = unsafe { a.at(ic + ir, pc).ptr };
                                unsafe {
                                    K::kernel_direct(
                                        kc,
                                        alpha,
                                        ap,
                                        a.rs as usize,
                                        bp,
                                        beta_block,
                                        cblk.ptr,
                                        c.cs as usize,
                                    )
                                };
                                continue;
                            }
                            let ap = if direct {
                                // An edge tile: pack just its rows.
                                unsafe { pack_a::<K>(mr, kc, a.at(ic + ir, pc), apack) };
                                apack.as_ptr()
                            } else {
                                unsafe { apack.as_ptr().add(ir * kc) }
                            };
                            if mr == K::MR && nr == K::NR && cblk.cs == 1 && cblk.rs > 0 {
                                unsafe { K::kernel(kc, alpha, ap, bp, beta_block, cblk.ptr, cblk.rs as usize) };
                            } else {
                                // Edge tile or unusual strides: go through a dense tile so the
                                // kernel never touches memory outside C.
                                unsafe {
                                    K::kernel(kc, alpha, ap, bp, 0.0, tile.as_mut_ptr(), K::NR);
                                }
                                for i in 0..mr {
                                    for j in 0..nr {
                                        let cij = unsafe { cblk.at(i, j).ptr };
                                        let v = tile[i * K::NR + j];
                                        unsafe {
                                            *cij = if beta_block == 0.0 { v } else { v + beta_block * *cij };
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    });
}

/// Packs an `mc x kc` block of A into row panels of `MR`: panel `p` holds, for each `k`, the `MR`
/// values `A[p*MR + 0..MR, k]`, zero-padded past `mc`.
unsafe fn pack_a<K: MicroKernel>(mc: usize, kc: usize, a: Strided, out: &mut [f32]) {
    let mut o = 0;
    for i0 in (0..mc).step_by(K::MR) {
        let rows = K::MR.min(mc - i0);
        let dst = &mut out[o..o + K::MR * kc];
        if a.cs == 1 {
            // Row-major A: read each row contiguously.
            unsafe { interleave_rows(a.at(i0, 0).ptr, a.rs, rows, K::MR, kc, dst) };
        } else {
            for kk in 0..kc {
                for i in 0..rows {
                    dst[kk * K::MR + i] = unsafe { *a.at(i0 + i, kk).ptr };
                }
            }
        }
        if rows < K::MR {
            for kk in 0..kc {
                dst[kk * K::MR + rows..kk * K::MR + K::MR].fill(0.0);
            }
        }
        o += K::MR * kc;
    }
}

/// Packs a `kc x nc` block of B into column panels of `NR`: panel `q` holds, for each `k`, the
/// `NR` values `B[k, q*NR + 0..NR]`, zero-padded past `nc`.
unsafe fn pack_b<K: MicroKernel>(kc: usize, nc: usize, b: Strided, out: &mut [f32]) {
    let mut o = 0;
    for j0 in (0..nc).step_by(K::NR) {
        let cols = K::NR.min(nc - j0);
        let dst = &mut out[o..o + K::NR * kc];
        if b.cs == 1 {
            for kk in 0..kc {
                let src = unsafe { b.at(kk, j0).ptr };
                let row = &mut dst[kk * K::NR..kk * K::NR + K::NR];
                for (j, v) in row.iter_mut().enumerate().take(cols) {
                    *v = unsafe { *src.add(j) };
                }
                row[cols..].fill(0.0);
            }
        } else {
            // Column-major B (for example W^T for a row-major W): read each column contiguously.
            if b.rs == 1 {
                unsafe { interleave_rows(b.at(0, j0).ptr, b.cs, cols, K::NR, kc, dst) };
            } else {
                for j in 0..cols {
                    let src = unsafe { b.at(0, j0 + j) };
                    for kk in 0..kc {
                        dst[kk * K::NR + j] = unsafe { *src.ptr.offset(kk as isize * src.rs) };
                    }
                }
            }
            if cols < K::NR {
                for kk in 0..kc {
                    dst[kk * K::NR + cols..kk * K::NR + K::NR].fill(0.0);
                }
            }
        }
        o += K::NR * kc;
    }
}

/// `dst[kk * width + r] = src[r * ld + kk]` for `r < rows`, `kk < kc`: `rows` source rows, each
/// contiguous along `k`, interleaved into a panel `width` wide (columns past `rows` untouched).
/// Packing is a transpose; in wasm it goes 4 x 4 blocks at a time (for the forward product it
/// packs `x^T`, and packed `W^T` before the direct kernel: forward GEMM 45 to 50 GFLOP/s then).
#[inline(always)]
unsafe fn interleave_rows(src: *const f32, ld: isize, rows: usize, width: usize, kc: usize, dst: &mut [f32]) {
    debug_assert!(rows <= width && dst.len() >= kc * width);
    #[allow(unused_mut)]
    let mut done = 0;
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    {
        // Blocks of 4 rows x 4 k: four loads, a 4 x 4 transpose in shuffles, four stores.
        use core::arch::wasm32::*;
        let k4 = kc / 4 * 4;
        while done + 4 <= rows {
            let p: [*const f32; 4] = std::array::from_fn(|i| unsafe { src.offset((done + i) as isize * ld) });
            let out = dst.as_mut_ptr();
            for kk in (0..k4).step_by(4) {
                unsafe {
                    let r: [v128; 4] = std::array::from_fn(|i| v128_load(p[i].add(kk) as *const v128));
                    let o = out.add(kk * width + done);
                    for (t, col) in wasm::transpose4(r).into_iter().enumerate() {
                        v128_store(o.add(t * width) as *mut v128, col);
                    }
                }
            }
            for kk in k4..kc {
                for (i, &pi) in p.iter().enumerate() {
                    dst[kk * width + done + i] = unsafe { *pi.add(kk) };
                }
            }
            done += 4;
        }
    }
    for r in done..rows {
        let row = unsafe { src.offset(r as isize * ld) };
        for kk in 0..kc {
            dst[kk * width + r] = unsafe { *row.add(kk) };
        }
    }
}

/// Writes an accumulator tile to C: `C = alpha * acc + beta * C` (C not read when beta is 0).
#[inline(always)]
unsafe fn store_tile<const MR: usize, const NR: usize>(
    acc: &[[f32; NR]; MR],
    alpha: f32,
    beta: f32,
    c: *mut f32,
    rsc: usize,
) {
    for (i, row) in acc.iter().enumerate() {
        let crow = unsafe { c.add(i * rsc) };
        for (j, &v) in row.iter().enumerate() {
            unsafe {
                let p = crow.add(j);
                *p = if beta == 0.0 { alpha * v } else { alpha * v + beta * *p };
            }
        }
    }
}

/// Portable kernel: plain arrays the compiler can keep in vector registers.
struct ScalarKernel;

impl MicroKernel for ScalarKernel {
    const MR: usize = 4;
    const NR: usize = 8;
    const KC: usize = 256;
    const MC: usize = 64;
    const NC: usize = 1024;

    unsafe fn kernel(kc: usize, alpha: f32, a: *const f32, b: *const f32, beta: f32, c: *mut f32, rsc: usize) {
        let mut acc = [[0.0f32; 8]; 4];
        for kk in 0..kc {
            let av = unsafe { std::slice::from_raw_parts(a.add(kk * 4), 4) };
            let bv = unsafe { std::slice::from_raw_parts(b.add(kk * 8), 8) };
            for i in 0..4 {
                for j in 0..8 {
                    acc[i][j] += av[i] * bv[j];
                }
            }
        }
        unsafe { store_tile(&acc, alpha, beta, c, rsc) }
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::MicroKernel;
    use std::arch::x86_64::*;

    pub struct Avx2Kernel;

    impl MicroKernel for Avx2Kernel {
        const MR: usize = 6;
        const NR: usize = 16;
        const KC: usize = 256;
        const MC: usize = 96;
        const NC: usize = 2048;

        unsafe fn kernel(kc: usize, alpha: f32, a: *const f32, b: *const f32, beta: f32, c: *mut f32, rsc: usize) {
            unsafe { avx2_6x16(kc, alpha, a, b, beta, c, rsc) }
        }
    }

    #[target_feature(enable = "avx2,fma")]
    unsafe fn avx2_6x16(kc: usize, alpha: f32, a: *const f32, b: *const f32, beta: f32, c: *mut f32, rsc: usize) {
        unsafe {
            let mut acc = [[_mm256_setzero_ps(); 2]; 6];
            for kk in 0..kc {
                let b0 = _mm256_loadu_ps(b.add(kk * 16));
                let b1 = _mm256_loadu_ps(b.add(kk * 16 + 8));
                let ak = a.add(kk * 6);
                for (i, row) in acc.iter_mut().enumerate() {
                    let ai = _mm256_broadcast_ss(&*ak.add(i));
                    row[0] = _mm256_fmadd_ps(ai, b0, row[0]);
                    row[1] = _mm256_fmadd_ps(ai, b1, row[1]);
                }
            }
            let va = _mm256_set1_ps(alpha);
            let vb = _mm256_set1_ps(beta);
            for (i, row) in acc.iter().enumerate() {
                for (h, &v) in row.iter().enumerate() {
                    let p = c.add(i * rsc + h * 8);
                    let out = if beta == 0.0 {
                        _mm256_mul_ps(va, v)
                    } else {
                        _mm256_fmadd_ps(vb, _mm256_loadu_ps(p), _mm256_mul_ps(va, v))
                    };
                    _mm256_storeu_ps(p, out);
                }
            }
        }
    }

    pub struct Avx512Kernel;

    impl MicroKernel for Avx512Kernel {
        const MR: usize = 8;
        const NR: usize = 32;
        const KC: usize = 256;
        const MC: usize = 128;
        const NC: usize = 2048;

        unsafe fn kernel(kc: usize, alpha: f32, a: *const f32, b: *const f32, beta: f32, c: *mut f32, rsc: usize) {
            unsafe { avx512_8x32(kc, alpha, a, b, beta, c, rsc) }
        }
    }

    #[target_feature(enable = "avx512f")]
    unsafe fn avx512_8x32(kc: usize, alpha: f32, a: *const f32, b: *const f32, beta: f32, c: *mut f32, rsc: usize) {
        unsafe {
            let mut acc = [[_mm512_setzero_ps(); 2]; 8];
            for kk in 0..kc {
                let b0 = _mm512_loadu_ps(b.add(kk * 32));
                let b1 = _mm512_loadu_ps(b.add(kk * 32 + 16));
                let ak = a.add(kk * 8);
                for (i, row) in acc.iter_mut().enumerate() {
                    let ai = _mm512_set1_ps(*ak.add(i));
                    row[0] = _mm512_fmadd_ps(ai, b0, row[0]);
                    row[1] = _mm512_fmadd_ps(ai, b1, row[1]);
                }
            }
            let va = _mm512_set1_ps(alpha);
            let vb = _mm512_set1_ps(beta);
            for (i, row) in acc.iter().enumerate() {
                for (h, &v) in row.iter().enumerate() {
                    let p = c.add(i * rsc + h * 16);
                    let out = if beta == 0.0 {
                        _mm512_mul_ps(va, v)
                    } else {
                        _mm512_fmadd_ps(vb, _mm512_loadu_ps(p), _mm512_mul_ps(va, v))
                    };
                    _mm512_storeu_ps(p, out);
                }
            }
        }
    }
}

#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
mod wasm {
    use super::MicroKernel;
    use core::arch::wasm32::*;

    /// The 4 x 4 transpose of four rows: output `t` holds element `t` of each input, in order.
    #[inline(always)]
    pub(super) fn transpose4(r: [v128; 4]) -> [v128; 4] {
        let t0 = i32x4_shuffle::<0, 4, 1, 5>(r[0], r[1]);
        let t1 = i32x4_shuffle::<2, 6, 3, 7>(r[0], r[1]);
        let t2 = i32x4_shuffle::<0, 4, 1, 5>(r[2], r[3]);
        let t3 = i32x4_shuffle::<2, 6, 3, 7>(r[2], r[3]);
        [
            i32x4_shuffle::<0, 1, 4, 5>(t0, t2),
            i32x4_shuffle::<2, 3, 6, 7>(t0, t2),
            i32x4_shuffle::<0, 1, 4, 5>(t1, t3),
            i32x4_shuffle::<2, 3, 6, 7>(t1, t3),
        ]
    }

    /// One step of the accumulation: `acc + a * b`, fused when relaxed-simd is available.
    macro_rules! wasm_kernel {
        ($name:ident, $mr:expr, |$x:ident, $y:ident, $z:ident| $madd:expr) => {
            pub struct $name;

            impl MicroKernel for $name {
                const MR: usize = $mr;
                const NR: usize = 8;
                const KC: usize = 256;
                const MC: usize = 16 * $mr;
                const NC: usize = 2048;

                unsafe fn kernel(
                    kc: usize,
                    alpha: f32,
                    a: *const f32,
                    b: *const f32,
                    beta: f32,
                    c: *mut f32,
                    rsc: usize,
                ) {
                    #[inline(always)]
                    fn madd($x: v128, $y: v128, $z: v128) -> v128 {
                        $madd
                    }
                    unsafe {
                        let mut acc = [[f32x4_splat(0.0); 2]; $mr];
                        for kk in 0..kc {
                            let b0 = v128_load(b.add(kk * 8) as *const v128);
                            let b1 = v128_load(b.add(kk * 8 + 4) as *const v128);
                            let ak = a.add(kk * $mr);
                            for (i, row) in acc.iter_mut().enumerate() {
                                let ai = f32x4_splat(*ak.add(i));
                                row[0] = madd(ai, b0, row[0]);
                                row[1] = madd(ai, b1, row[1]);
                            }
                        }
                        let va = f32x4_splat(alpha);
                        let vb = f32x4_splat(beta);
                        for (i, row) in acc.iter().enumerate() {
                            for (h, &v) in row.iter().enumerate() {
                                let p = c.add(i * rsc + h * 4) as *mut v128;
                                let out = if beta == 0.0 {
                                    f32x4_mul(va, v)
                                } else {
                                    f32x4_add(f32x4_mul(va, v), f32x4_mul(vb, v128_load(p)))
                                };
                                v128_store(p, out);
                            }
                        }
                    }
                }

                const DIRECT_A: bool = $mr == 4;

                #[allow(clippy::too_many_arguments)]
                unsafe fn kernel_direct(
                    kc: usize,
                    alpha: f32,
                    a: *const f32,
                    lda: usize,
                    b: *const f32,
                    beta: f32,
                    c: *mut f32,
                    csc: usize,
                ) {
                    #[inline(always)]
                    fn madd($x: v128, $y: v128, $z: v128) -> v128 {
                        $madd
                    }
                    const { assert!($mr == 4, "the transposed store is written for 4 rows") };
                    unsafe {
                        let rows: [*const f32; 4] = std::array::from_fn(|i| a.add(i * lda));
                        let mut acc = [[f32x4_splat(0.0); 2]; 4];
                        for kk in 0..kc {
                            let b0 = v128_load(b.add(kk * 8) as *const v128);
                            let b1 = v128_load(b.add(kk * 8 + 4) as *const v128);
                            for (row, &ai) in acc.iter_mut().zip(&rows) {
                                let ai = f32x4_splat(*ai.add(kk));
                                row[0] = madd(ai, b0, row[0]);
                                row[1] = madd(ai, b1, row[1]);
                            }
                        }
                        // Column j of the tile (4 values, one per row) is contiguous in C: a
                        // 4 x 4 transpose of each half of the accumulator gives it as one vector.
                        let va = f32x4_splat(alpha);
                        let vb = f32x4_splat(beta);
                        for h in 0..2 {
                            let cols = transpose4([acc[0][h], acc[1][h], acc[2][h], acc[3][h]]);
                            for (t, &v) in cols.iter().enumerate() {
                                let p = c.add((h * 4 + t) * csc) as *mut v128;
                                let out = if beta == 0.0 {
                                    f32x4_mul(va, v)
                                } else {
                                    f32x4_add(f32x4_mul(va, v), f32x4_mul(vb, v128_load(p)))
                                };
                                v128_store(p, out);
                            }
                        }
                    }
                }
            }
        };
    }

    // 4 x 8: 8 accumulators + 2 B vectors + 1 broadcast fit in the 16 XMM registers V8 has on
    // x86-64. Measured in Chromium 156: 5 x 8 and 6 x 8 spill and run at half the speed.
    wasm_kernel!(Simd128Kernel, 4, |a, b, c| f32x4_add(f32x4_mul(a, b), c));
    #[cfg(target_feature = "relaxed-simd")]
    wasm_kernel!(RelaxedKernel, 4, |a, b, c| f32x4_relaxed_madd(a, b, c));
}
