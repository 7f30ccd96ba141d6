//! x86-64 AVX-512F kernel, 8 x 32: 16 of the 32 zmm registers hold the accumulator, two hold a
//! row of the B panel, one the broadcast element of A.

use super::kernel::MicroKernel;
use std::arch::x86_64::*;

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
