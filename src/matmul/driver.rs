//! The BLIS loop nest (after `matrixmultiply`'s `gemm.rs`): for each `NC`-wide block of columns
//! and `KC`-deep block of `k`, pack B once; for each `MC`-tall block of rows, pack A; then one
//! micro-kernel call per `MR x NR` tile of C. [`parallel_gemm`] first splits C between the
//! threads of the rayon pool, along its longer side, in whole tiles.
//!
//! B comes through [`Panels`]: a strided matrix packed by [`pack_b`], or a [`PackedB`] source
//! that writes the panels itself (a convolution's im2col matrix, made from its images one block
//! at a time in cache instead of stored whole).

use super::PackedB;
use super::kernel::MicroKernel;
use super::packing::{pack_a, pack_b};
use std::cell::{Cell, RefCell};

/// Where the packed panels of B come from: `pack` writes `B[pc..pc+kc, jc..jc+nc]` as column
/// panels `K::NR` wide (`k` outermost), zero-padded past `nc`.
pub(super) trait Panels: Sync {
    unsafe fn pack<K: MicroKernel>(&self, pc: usize, kc: usize, jc: usize, nc: usize, out: &mut [f32]);
}

impl Panels for Strided {
    unsafe fn pack<K: MicroKernel>(&self, pc: usize, kc: usize, jc: usize, nc: usize, out: &mut [f32]) {
        unsafe { pack_b::<K>(kc, nc, self.at(pc, jc), out) }
    }
}

/// A [`PackedB`] source as [`Panels`].
pub(super) struct Source<'a, S: PackedB + ?Sized>(pub &'a S);

impl<S: PackedB + ?Sized> Panels for Source<'_, S> {
    unsafe fn pack<K: MicroKernel>(&self, pc: usize, kc: usize, jc: usize, nc: usize, out: &mut [f32]) {
        let len = nc.div_ceil(K::NR) * K::NR * kc;
        self.0.pack(pc, kc, jc, nc, K::NR, &mut out[..len]);
    }
}

/// The sizes and scalars of one product, and the most threads it may use.
#[derive(Clone, Copy)]
pub(super) struct Problem {
    pub m: usize,
    pub n: usize,
    pub k: usize,
    pub alpha: f32,
    pub beta: f32,
    #[cfg_attr(not(feature = "parallel"), allow(dead_code))]
    pub max_threads: usize,
}

/// A read-only matrix: its first element and its row and column strides (in elements).
#[derive(Clone, Copy)]
pub(super) struct Strided {
    pub ptr: *const f32,
    pub rs: isize,
    pub cs: isize,
}

/// The output matrix, as [`Strided`].
#[derive(Clone, Copy)]
pub(super) struct StridedMut {
    pub ptr: *mut f32,
    pub rs: isize,
    pub cs: isize,
}

// SAFETY: the parallel driver hands each thread a disjoint block of C and read-only A and B.
unsafe impl Send for Strided {}
unsafe impl Sync for Strided {}
unsafe impl Send for StridedMut {}
unsafe impl Sync for StridedMut {}

impl Strided {
    /// The matrix from element `(i, j)` on.
    pub unsafe fn at(self, i: usize, j: usize) -> Strided {
        Strided { ptr: unsafe { self.ptr.offset(i as isize * self.rs + j as isize * self.cs) }, ..self }
    }
}

impl StridedMut {
    /// The matrix from element `(i, j)` on.
    pub unsafe fn at(self, i: usize, j: usize) -> StridedMut {
        StridedMut { ptr: unsafe { self.ptr.offset(i as isize * self.rs + j as isize * self.cs) }, ..self }
    }
}

thread_local! {
    /// Packing buffers, reused across calls so that training allocates nothing per batch.
    static PACK: RefCell<(Vec<f32>, Vec<f32>)> = const { RefCell::new((Vec::new(), Vec::new())) };
}

thread_local! {
    /// Set while a caller that has split its own work between the pool's threads runs one share:
    /// its products then stay on its thread (see [`serially`]).
    static SERIAL: Cell<bool> = const { Cell::new(false) };
}

/// Runs `f` with every product it computes on the calling thread alone: for work already split
/// into tasks on the pool (the convolutional blocks' images), where a second split inside each
/// task would only add fork/join costs. The results are the same either way.
pub fn serially<R>(f: impl FnOnce() -> R) -> R {
    let before = SERIAL.replace(true);
    let r = f();
    SERIAL.set(before);
    r
}

/// Splits `C` into blocks for the rayon pool (when there is one), each computed by [`serial_gemm`].
pub(super) unsafe fn parallel_gemm<K: MicroKernel>(p: Problem, a: Strided, b: Strided, c: StridedMut) {
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
    unsafe { split_gemm::<K, _>(p, a, &b, c) }
}

/// Splits `C` into blocks for the rayon pool (when there is one), each computed by [`serial_gemm`],
/// with B from any [`Panels`].
pub(super) unsafe fn split_gemm<K: MicroKernel, B: Panels>(p: Problem, a: Strided, b: &B, c: StridedMut) {
    #[cfg(feature = "parallel")]
    {
        let threads = if SERIAL.get() { 1 } else { rayon::current_num_threads().min(p.max_threads) };
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
                            serial_gemm::<K, B>(q, a, b, start, c.at(0, start));
                        } else {
                            let q = Problem { m: end - start, ..p };
                            serial_gemm::<K, B>(q, a.at(start, 0), b, 0, c.at(start, 0));
                        }
                    }
                });
                return;
            }
        }
    }
    unsafe { serial_gemm::<K, B>(p, a, b, 0, c) }
}

/// One thread's share: the BLIS loop nest over the packed blocks. B's columns start at `j0` (the
/// share's first column of the whole product).
unsafe fn serial_gemm<K: MicroKernel, B: Panels>(p: Problem, a: Strided, b: &B, j0: usize, c: StridedMut) {
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
                unsafe { b.pack::<K>(pc, kc, j0 + jc, nc, bpack) };
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
