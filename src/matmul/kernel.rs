//! What a micro-kernel provides: its register tile `MR x NR`, the cache blocking that suits it,
//! and the product of one packed `MR x KC` panel of A by one packed `KC x NR` panel of B into a
//! tile of C (`C = alpha * acc + beta * C`).

/// A register-blocked micro-kernel and the cache blocking that suits it.
pub(super) trait MicroKernel {
    /// Rows of the register tile.
    const MR: usize;
    /// Columns of the register tile.
    const NR: usize;
    /// Depth of one packed block: an `KC x NR` panel of B should sit in L1.
    const KC: usize;
    /// Rows of A packed at once (a multiple of MR): an `MC x KC` block should sit in L2.
    const MC: usize;
    /// Columns of B packed at once (a multiple of NR).
    const NC: usize;

    /// `C[0..MR, 0..NR] = alpha * (A_panel B_panel) + beta * C`, where `a` holds `kc` groups of `MR`
    /// values and `b` holds `kc` groups of `NR` values. `C` is row-major with row stride `rsc`.
    /// When `beta == 0`, `C` must not be read.
    unsafe fn kernel(kc: usize, alpha: f32, a: *const f32, b: *const f32, beta: f32, c: *mut f32, rsc: usize);

    /// Whether [`MicroKernel::kernel_direct`] exists.
    const DIRECT_A: bool = false;

    /// [`MicroKernel::kernel`] reading A in place, `MR` rows `lda` apart, each contiguous along
    /// `k` (no packing), and writing C transposed: element `(i, j)` of the tile goes to
    /// `c[i + j * csc]`.
    #[allow(clippy::too_many_arguments)]
    unsafe fn kernel_direct(
        _kc: usize,
        _alpha: f32,
        _a: *const f32,
        _lda: usize,
        _b: *const f32,
        _beta: f32,
        _c: *mut f32,
        _csc: usize,
    ) {
        unreachable!("kernel_direct called on a kernel without DIRECT_A")
    }
}

/// Writes an accumulator tile to C: `C = alpha * acc + beta * C` (C not read when beta is 0).
#[inline(always)]
pub(super) unsafe fn store_tile<const MR: usize, const NR: usize>(
    acc: &[[f32; NR]; MR],
    alpha: f32,
    beta: f32,
    c: *mut f32,
    rsc: usize,
) {
    for (i, row) in acc.iter().enumerate() {
        let crow = unsafe { c.add(i * rsc) };
        for (j, &v) in row.iter().enumerate() {
            unsafe {
                let p = crow.add(j);
                *p = if beta == 0.0 { alpha * v } else { alpha * v + beta * *p };
            }
        }
    }
}
