//! wasm simd128 kernel, 4 x 8, with separate multiply and add; also the tile code of the
//! relaxed-simd kernel (`relaxed_simd.rs`), which differs only in its multiply-add.
//!
//! 4 x 8: 8 accumulators + 2 B vectors + 1 broadcast fit in the 16 XMM registers V8 has on
//! x86-64. Measured in Chromium 156: 5 x 8 and 6 x 8 spill and run at half the speed.
//!
//! `f32::mul_add` is never used here: without relaxed-simd it compiles to a software `fmaf` call,
//! about 6x slower than a multiply and an add.

use super::kernel::MicroKernel;
use core::arch::wasm32::*;
use std::marker::PhantomData;

/// One step of the accumulation, `a * b + c`.
pub(super) trait MulAdd {
    fn madd(a: v128, b: v128, c: v128) -> v128;
}

/// `f32x4.mul` then `f32x4.add`: runs in every engine with SIMD.
pub(super) struct Separate;

impl MulAdd for Separate {
    #[inline(always)]
    fn madd(a: v128, b: v128, c: v128) -> v128 {
        f32x4_add(f32x4_mul(a, b), c)
    }
}

/// The 4 x 8 wasm kernel over a multiply-add `M`.
pub(super) struct WasmKernel<M>(PhantomData<M>);

/// The simd128 kernel.
pub type Simd128Kernel = WasmKernel<Separate>;

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

/// `*p = alpha * v + beta * *p` for four values (`*p` not read when `beta` is 0).
#[inline(always)]
unsafe fn store4(p: *mut f32, v: v128, alpha: f32, beta: f32) {
    let p = p as *mut v128;
    unsafe {
        let out = if beta == 0.0 {
            f32x4_mul(f32x4_splat(alpha), v)
        } else {
            f32x4_add(f32x4_mul(f32x4_splat(alpha), v), f32x4_mul(f32x4_splat(beta), v128_load(p)))
        };
        v128_store(p, out);
    }
}

impl<M: MulAdd> MicroKernel for WasmKernel<M> {
    const MR: usize = 4;
    const NR: usize = 8;
    const KC: usize = 256;
    const MC: usize = 64;
    const NC: usize = 2048;

    unsafe fn kernel(kc: usize, alpha: f32, a: *const f32, b: *const f32, beta: f32, c: *mut f32, rsc: usize) {
        unsafe {
            let mut acc = [[f32x4_splat(0.0); 2]; 4];
            for kk in 0..kc {
                let b0 = v128_load(b.add(kk * 8) as *const v128);
                let b1 = v128_load(b.add(kk * 8 + 4) as *const v128);
                let ak = a.add(kk * 4);
                for (i, row) in acc.iter_mut().enumerate() {
                    let ai = f32x4_splat(*ak.add(i));
                    row[0] = M::madd(ai, b0, row[0]);
                    row[1] = M::madd(ai, b1, row[1]);
                }
            }
            for (i, row) in acc.iter().enumerate() {
                for (h, &v) in row.iter().enumerate() {
                    store4(c.add(i * rsc + h * 4), v, alpha, beta);
                }
            }
        }
    }

    const DIRECT_A: bool = true;

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
        unsafe {
            let rows: [*const f32; 4] = std::array::from_fn(|i| a.add(i * lda));
            let mut acc = [[f32x4_splat(0.0); 2]; 4];
            for kk in 0..kc {
                let b0 = v128_load(b.add(kk * 8) as *const v128);
                let b1 = v128_load(b.add(kk * 8 + 4) as *const v128);
                for (row, &ai) in acc.iter_mut().zip(&rows) {
                    let ai = f32x4_splat(*ai.add(kk));
                    row[0] = M::madd(ai, b0, row[0]);
                    row[1] = M::madd(ai, b1, row[1]);
                }
            }
            // Column j of the tile (4 values, one per row) is contiguous in C: a 4 x 4 transpose
            // of each half of the accumulator gives it as one vector.
            #[allow(clippy::needless_range_loop)] // `h` picks the same half of all four rows
            for h in 0..2 {
                let cols = transpose4([acc[0][h], acc[1][h], acc[2][h], acc[3][h]]);
                for (t, &v) in cols.iter().enumerate() {
                    store4(c.add((h * 4 + t) * csc), v, alpha, beta);
                }
            }
        }
    }
}
