//! x86-64 AVX2 + FMA kernel, 6 x 16: 12 of the 16 ymm registers hold the accumulator, two
//! hold a row of the B panel, one the broadcast element of A.

use super::kernel::MicroKernel;
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
