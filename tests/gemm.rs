//! Every GEMM kernel against the naive reference (`gemm_reference`, f64 accumulation) on odd
//! sizes, all four transpose combinations, and C as a window inside a NaN-filled buffer, which
//! proves that nothing outside C is written and that `beta = 0` does not read C.
#![cfg(not(target_arch = "wasm32"))] // native; tests/wasm.rs holds the tests that run in the browser

use ndarray::{Array2, ArrayView2, s};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use skywatch::matmul::{Kernel, gemm, gemm_reference, gemm_with};

fn random(rows: usize, cols: usize, rng: &mut ChaCha8Rng) -> Array2<f32> {
    Array2::from_shape_fn((rows, cols), |_| rng.random_range(-1.0f32..1.0))
}

/// A or B in the requested layout: `trans` stores the transpose and returns a `.t()` view of it.
fn operand(rows: usize, cols: usize, trans: bool, rng: &mut ChaCha8Rng) -> Array2<f32> {
    if trans { random(cols, rows, rng) } else { random(rows, cols, rng) }
}

fn view(a: &Array2<f32>, trans: bool) -> ArrayView2<'_, f32> {
    if trans { a.t() } else { a.view() }
}

/// One product to check: `C (m x n) = alpha * op(A) op(B) + beta * C`, `op` a transpose when set.
#[derive(Clone, Copy)]
struct Case {
    m: usize,
    k: usize,
    n: usize,
    ta: bool,
    tb: bool,
    alpha: f32,
    beta: f32,
}

fn check(kernel: Kernel, case: Case, rng: &mut ChaCha8Rng) {
    let Case { m, k, n, ta, tb, alpha, beta } = case;

    let a = operand(m, k, ta, rng);
    let b = operand(k, n, tb, rng);
    // C lives at rows 2.., cols 3.. of a NaN-filled buffer; with beta != 0 it starts random.
    let mut big = Array2::from_elem((m + 5, n + 7), f32::NAN);
    if beta != 0.0 {
        let init = random(m, n, rng);
        big.slice_mut(s![2..2 + m, 3..3 + n]).assign(&init);
    }
    let mut expected = big.clone();
    gemm_reference(alpha, &view(&a, ta), &view(&b, tb), beta, &mut expected.slice_mut(s![2..2 + m, 3..3 + n]));
    gemm_with(kernel, alpha, &view(&a, ta), &view(&b, tb), beta, &mut big.slice_mut(s![2..2 + m, 3..3 + n]));
    // f32 accumulation over k terms of size <= 1: error bound about k * eps.
    let tol = 1e-6 * (k as f32 + 1.0) * 4.0;
    for ((i, j), &v) in big.indexed_iter() {
        let inside = (2..2 + m).contains(&i) && (3..3 + n).contains(&j);
        if inside {
            let e = expected[[i, j]];
            assert!(
                (v - e).abs() <= tol * (1.0 + e.abs()),
                "{kernel:?} m={m} k={k} n={n} ta={ta} tb={tb} alpha={alpha} beta={beta}: C[{},{}] = {v}, expected {e}",
                i - 2,
                j - 3
            );
        } else {
            assert!(v.is_nan(), "{kernel:?} m={m} k={k} n={n}: wrote outside C at [{i},{j}]");
        }
    }
}

#[test]
fn every_kernel_matches_the_reference_on_odd_sizes_and_transposes() {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let sizes = [(1, 1, 1), (3, 5, 7), (13, 17, 33), (65, 130, 47), (8, 300, 32), (31, 257, 95), (64, 70, 513)];
    for kernel in Kernel::available() {
        for &(m, k, n) in &sizes {
            for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
                check(kernel, Case { m, k, n, ta, tb, alpha: 1.0, beta: 0.0 }, &mut rng);
            }
            check(kernel, Case { m, k, n, ta: false, tb: true, alpha: -0.5, beta: 1.0 }, &mut rng);
            check(kernel, Case { m, k, n, ta: true, tb: false, alpha: 2.0, beta: 0.25 }, &mut rng);
        }
    }
}

#[test]
fn the_workload_shapes_match_the_reference() {
    let mut rng = ChaCha8Rng::seed_from_u64(8);
    for kernel in Kernel::available() {
        check(kernel, Case { m: 64, k: 3072, n: 512, ta: false, tb: true, alpha: 1.0, beta: 1.0 }, &mut rng); // forward x W^T + b
        check(kernel, Case { m: 512, k: 64, n: 3072, ta: true, tb: false, alpha: 1.0, beta: 0.0 }, &mut rng); // dW = dy^T x
        check(kernel, Case { m: 64, k: 512, n: 3072, ta: false, tb: false, alpha: 1.0, beta: 0.0 }, &mut rng); // dx = dy W
    }
}

#[test]
fn k_zero_scales_c_by_beta() {
    let a = Array2::<f32>::zeros((4, 0));
    let b = Array2::<f32>::zeros((0, 3));
    let mut c = Array2::from_elem((4, 3), 2.0f32);
    gemm(1.0, &a.view(), &b.view(), 0.5, &mut c.view_mut());
    assert!(c.iter().all(|&v| v == 1.0));
    let mut c = Array2::from_elem((4, 3), f32::NAN);
    gemm(1.0, &a.view(), &b.view(), 0.0, &mut c.view_mut());
    assert!(c.iter().all(|&v| v == 0.0), "beta = 0 must not read C");
}

#[cfg(feature = "parallel")]
#[test]
fn results_are_bit_identical_for_any_thread_count() {
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    for (m, k, n, ta, tb) in [(64, 3072, 512, false, true), (512, 64, 3072, true, false), (300, 200, 40, false, false)]
    {
        let a = operand(m, k, ta, &mut rng);
        let b = operand(k, n, tb, &mut rng);
        let run = |threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
            let mut c = Array2::<f32>::zeros((m, n));
            pool.install(|| gemm(1.0, &view(&a, ta), &view(&b, tb), 0.0, &mut c.view_mut()));
            c
        };
        let one = run(1);
        for threads in [2, 3, 4] {
            assert_eq!(one, run(threads), "m={m} k={k} n={n}: {threads} threads differ from 1");
        }
    }
}
