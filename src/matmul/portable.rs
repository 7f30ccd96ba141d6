//! The portable kernel, 4 x 8: plain arrays the compiler can keep in vector registers; what any
//! target can run.

use super::kernel::{MicroKernel, store_tile};

/// Portable kernel: plain arrays the compiler can keep in vector registers.
pub struct ScalarKernel;

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
