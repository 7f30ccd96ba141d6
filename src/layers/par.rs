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

/// Elements per task of the element-wise passes: large enough to amortise a task.
pub const CHUNK: usize = 1 << 14;
