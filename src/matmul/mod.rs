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
//! | file | what |
//! |------|------|
//! | `mod.rs` | the entry points ([`gemm`], [`gemm_with`], [`gemm_with_threads`]) and the kernel choice |
//! | `driver.rs` | the loop nest over packed blocks, and the split of `C` between threads |
//! | `kernel.rs` | what a micro-kernel provides (tile and block sizes, the tile product) |
//! | `packing.rs` | packing blocks of A and B into the panels the kernels read; B may also come from a [`PackedB`] source ([`gemm_packed_b`]) |
//! | `avx512.rs`, `avx2.rs`, `simd128.rs`, `relaxed_simd.rs`, `portable.rs` | one micro-kernel each |
//! | `reference.rs` | the naive triple loop |
//!
//! Determinism: every element of `C` is accumulated in the same order over `k` (K blocks in order,
//! then `k` within a block) whatever the tile it falls in, so splitting the work between threads
//! along `M` or `N` gives bit-identical results for any thread count.

mod driver;
mod kernel;
mod packing;
mod portable;
mod reference;

#[cfg(target_arch = "x86_64")]
mod avx2;
#[cfg(target_arch = "x86_64")]
mod avx512;
#[cfg(all(target_arch = "wasm32", target_feature = "relaxed-simd"))]
mod relaxed_simd;
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
mod simd128;

pub use driver::serially;
pub use reference::gemm_reference;

use driver::{Problem, Source, Strided, StridedMut, parallel_gemm, split_gemm};
use ndarray::{ArrayView2, ArrayViewMut2};

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

/// A matrix `B` (`k x n`) that is never stored whole: the GEMM asks for it one block at a time,
/// already packed. A convolution's im2col matrix is one: made from the images panel by panel, it
/// stays in cache, where the stored matrix (9 times the images for a 3x3 kernel) would be written
/// to memory and read back twice.
pub trait PackedB: Sync {
    /// `(k, n)`.
    fn dims(&self) -> (usize, usize);
    /// Writes `B[pc..pc+kc, jc..jc+nc]` as column panels `nr` wide: panel `q` holds, for each
    /// `kk < kc`, the `nr` values `B[pc + kk, jc + q nr + 0..nr]`, zeros past `nc`; `out` holds
    /// exactly `nc.div_ceil(nr) * nr * kc` values.
    fn pack(&self, pc: usize, kc: usize, jc: usize, nc: usize, nr: usize, out: &mut [f32]);
}

/// `C = alpha * A B + beta * C` with B from a [`PackedB`] source, with the best kernel on the
/// current pool. Every element sums over `k` in the same order as [`gemm`] on the stored B, so
/// the result is the same, bit for bit.
pub fn gemm_packed_b(
    alpha: f32,
    a: &ArrayView2<f32>,
    b: &(impl PackedB + ?Sized),
    beta: f32,
    c: &mut ArrayViewMut2<f32>,
) {
    let (m, k) = a.dim();
    let (k2, n) = b.dims();
    assert!(k == k2 && c.dim() == (m, n), "gemm shapes: A {:?} B {:?} C {:?}", a.dim(), (k2, n), c.dim());
    let a = Strided { ptr: a.as_ptr(), rs: a.strides()[0], cs: a.strides()[1] };
    let c = StridedMut { ptr: c.as_mut_ptr(), rs: c.strides()[0], cs: c.strides()[1] };
    let p = Problem { m, n, k, alpha, beta, max_threads: usize::MAX };
    let b = Source(b);
    // SAFETY: as in `gemm_with_threads`: live views whose shapes were checked above.
    unsafe {
        match Kernel::best() {
            Kernel::Scalar => split_gemm::<portable::ScalarKernel, _>(p, a, &b, c),
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx2 => split_gemm::<avx2::Avx2Kernel, _>(p, a, &b, c),
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx512 => split_gemm::<avx512::Avx512Kernel, _>(p, a, &b, c),
            #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
            Kernel::Simd128 => split_gemm::<simd128::Simd128Kernel, _>(p, a, &b, c),
            #[cfg(all(target_arch = "wasm32", target_feature = "relaxed-simd"))]
            Kernel::RelaxedSimd => split_gemm::<relaxed_simd::RelaxedKernel, _>(p, a, &b, c),
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
            Kernel::Scalar => parallel_gemm::<portable::ScalarKernel>(p, a, b, c),
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx2 => parallel_gemm::<avx2::Avx2Kernel>(p, a, b, c),
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx512 => parallel_gemm::<avx512::Avx512Kernel>(p, a, b, c),
            #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
            Kernel::Simd128 => parallel_gemm::<simd128::Simd128Kernel>(p, a, b, c),
            #[cfg(all(target_arch = "wasm32", target_feature = "relaxed-simd"))]
            Kernel::RelaxedSimd => parallel_gemm::<relaxed_simd::RelaxedKernel>(p, a, b, c),
        }
    }
}
