//! Element-wise work split into chunks: on the rayon pool with the `parallel` feature, in a plain
//! loop without. Each chunk is handled whole by one task, so the results do not depend on the
//! number of threads.

#[cfg(feature = "parallel")]
use rayon::prelude::*;

/// Calls `f(i, chunk)` for each `len`-element chunk `i` of `v`.
pub fn par_chunks_mut<T: Send, F>(v: &mut [T], len: usize, f: F)
where
    F: Fn(usize, &mut [T]) + Send + Sync,
{
    #[cfg(feature = "parallel")]
    v.par_chunks_mut(len.max(1)).enumerate().for_each(|(i, c)| f(i, c));
    #[cfg(not(feature = "parallel"))]
    v.chunks_mut(len.max(1)).enumerate().for_each(|(i, c)| f(i, c));
}

/// Calls `f(i, a_chunk, b_chunk)` for the `i`-th `a_len`-element chunk of `a` and the `i`-th
/// `b_len`-element chunk of `b` together.
pub fn par_zip_chunks<A: Send, B: Sync, F>(a: &mut [A], a_len: usize, b: &[B], b_len: usize, f: F)
where
    F: Fn(usize, &mut [A], &[B]) + Send + Sync,
{
    #[cfg(feature = "parallel")]
    a.par_chunks_mut(a_len.max(1)).zip(b.par_chunks(b_len.max(1))).enumerate().for_each(|(i, (a, b))| f(i, a, b));
    #[cfg(not(feature = "parallel"))]
    a.chunks_mut(a_len.max(1)).zip(b.chunks(b_len.max(1))).enumerate().for_each(|(i, (a, b))| f(i, a, b));
}

/// Calls `f(i, a_chunk, b_chunk)` for the `i`-th chunks of two buffers that are both written.
pub fn par_chunks2_mut<A: Send, B: Send, F>(a: &mut [A], a_len: usize, b: &mut [B], b_len: usize, f: F)
where
    F: Fn(usize, &mut [A], &mut [B]) + Send + Sync,
{
    #[cfg(feature = "parallel")]
    a.par_chunks_mut(a_len.max(1)).zip(b.par_chunks_mut(b_len.max(1))).enumerate().for_each(|(i, (a, b))| f(i, a, b));
    #[cfg(not(feature = "parallel"))]
    a.chunks_mut(a_len.max(1)).zip(b.chunks_mut(b_len.max(1))).enumerate().for_each(|(i, (a, b))| f(i, a, b));
}

/// Calls `f(t)` for each task `t < n`: on the rayon pool with the `parallel` feature, each task's
/// products on its own thread ([`crate::matmul::serially`]); in a plain loop without. For work
/// split into fixed tasks (the convolutional blocks' images), so that the results do not depend
/// on the number of threads, and one fork/join covers a whole pass.
pub fn par_tasks<F: Fn(usize) + Send + Sync>(n: usize, f: F) {
    #[cfg(feature = "parallel")]
    (0..n).into_par_iter().for_each(|t| crate::matmul::serially(|| f(t)));
    #[cfg(not(feature = "parallel"))]
    (0..n).for_each(f);
}

/// A buffer that tasks write in disjoint parts: each task takes its own ranges with
/// [`Disjoint::range`]. (The parts of one task are strided over the buffer, channel by channel,
/// so `chunks_mut` cannot hand them out.)
#[derive(Clone, Copy)]
pub struct Disjoint<T> {
    ptr: *mut T,
    len: usize,
}

// SAFETY: tasks only reach the buffer through `range`, whose callers promise disjoint ranges.
unsafe impl<T: Send> Send for Disjoint<T> {}
unsafe impl<T: Send> Sync for Disjoint<T> {}

impl<T> Disjoint<T> {
    pub fn new(v: &mut [T]) -> Disjoint<T> {
        Disjoint { ptr: v.as_mut_ptr(), len: v.len() }
    }

    /// `v[start..start + len]`.
    ///
    /// # Safety
    /// No other live slice taken from this buffer may overlap the range, and the buffer given to
    /// [`Disjoint::new`] must outlive the slice and not be used otherwise meanwhile.
    #[allow(clippy::mut_from_ref)]
    pub unsafe fn range(&self, start: usize, len: usize) -> &mut [T] {
        assert!(start + len <= self.len, "range {start}+{len} of a buffer of {}", self.len);
        unsafe { std::slice::from_raw_parts_mut(self.ptr.add(start), len) }
    }

    /// The first element's address, for a strided view.
    pub fn ptr(&self) -> *mut T {
        self.ptr
    }
}

/// A sum in eight interleaved lanes, then the lanes in order: a fixed order (the result does not
/// depend on threads) that vectorises, where a plain `iter().sum()` is one long dependency chain.
pub fn lane_sum(v: &[f32]) -> f32 {
    let mut acc = [0.0f32; 8];
    let mut chunks = v.chunks_exact(8);
    for c in chunks.by_ref() {
        for (a, &x) in acc.iter_mut().zip(c) {
            *a += x;
        }
    }
    for (a, &x) in acc.iter_mut().zip(chunks.remainder()) {
        *a += x;
    }
    acc.iter().sum()
}

/// Elements per task of the element-wise passes: large enough to amortise a task.
pub const CHUNK: usize = 1 << 14;
