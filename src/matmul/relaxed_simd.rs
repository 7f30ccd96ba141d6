//! wasm relaxed-simd kernel: the 4 x 8 tile of the simd128 kernel with `f32x4.relaxed_madd`,
//! fused where the CPU has FMA (the threaded package; Safari has no relaxed SIMD).

use super::simd128::{MulAdd, WasmKernel};
use core::arch::wasm32::*;

/// `f32x4.relaxed_madd`.
pub(super) struct Fused;

impl MulAdd for Fused {
    #[inline(always)]
    fn madd(a: v128, b: v128, c: v128) -> v128 {
        f32x4_relaxed_madd(a, b, c)
    }
}

/// The relaxed-simd kernel.
pub type RelaxedKernel = WasmKernel<Fused>;
