//! Packing: blocks of A and B copied into the panels the micro-kernels read contiguously (A as
//! row panels `MR` tall, B as column panels `NR` wide, `k` outermost in both), zero-padded at the
//! edges so that a kernel always computes a whole tile.

use super::driver::Strided;
use super::kernel::MicroKernel;

/// Packs an `mc x kc` block of A into row panels of `MR`: panel `p` holds, for each `k`, the `MR`
/// values `A[p*MR + 0..MR, k]`, zero-padded past `mc`.
pub(super) unsafe fn pack_a<K: MicroKernel>(mc: usize, kc: usize, a: Strided, out: &mut [f32]) {
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
pub(super) unsafe fn pack_b<K: MicroKernel>(kc: usize, nc: usize, b: Strided, out: &mut [f32]) {
    let mut o = 0;
    for j0 in (0..nc).step_by(K::NR) {
        let cols = K::NR.min(nc - j0);
        let dst = &mut out[o..o + K::NR * kc];
        if b.cs == 1 {
            for kk in 0..kc {
                let src = unsafe { b.at(kk, j0).ptr };
                let row = &mut dst[kk * K::NR..kk * K::NR + K::NR];
                // SAFETY: row `kk` of the block has `cols` elements from `src` on (unit stride).
                row[..cols].copy_from_slice(unsafe { std::slice::from_raw_parts(src, cols) });
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
                    for (t, col) in super::simd128::transpose4(r).into_iter().enumerate() {
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
