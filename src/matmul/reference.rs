//! The naive triple loop: `C[i, j] = alpha sum_p A[i, p] B[p, j] + beta C[i, j]`, accumulated
//! in f64. Slow on purpose: it is the oracle the blocked kernels are tested against.

use ndarray::{ArrayView2, ArrayViewMut2};

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
