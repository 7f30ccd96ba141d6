//! Seeded minibatch loader, as PyTorch's `DataLoader(dataset, batch_size, shuffle=True)`: every
//! epoch visits a fresh random permutation of the training indices in batches of `batch_size`, the
//! last batch keeping the remainder (`drop_last=False`).
//!
//! The permutation of epoch `e` is a Fisher-Yates shuffle of the indices in their original order,
//! driven by a ChaCha8 generator seeded from the run's seed, so the batches depend only on the
//! seed, the index set and the epoch. The generator's position is all the state a resumed run needs.

use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

/// Stream of the run's seed used for shuffling (streams keep independent uses apart).
pub const SHUFFLE_STREAM: u64 = 1;

#[derive(Clone, Debug)]
pub struct Loader {
    /// The indices of the split this loader draws from, in their original order.
    indices: Vec<u32>,
    /// This epoch's permutation of `indices`.
    order: Vec<u32>,
    batch_size: usize,
    rng: ChaCha8Rng,
    /// Position of the next batch in `order`.
    cursor: usize,
}

impl Loader {
    /// The indices of the split this loader draws from, in their original order.
    pub fn indices(&self) -> &[u32] {
        &self.indices
    }

    /// A loader over `indices`. Call [`Loader::start_epoch`] before drawing batches.
    pub fn new(indices: Vec<u32>, batch_size: usize, seed: u64) -> Self {
        assert!(batch_size > 0, "batch size is validated by the configuration");
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(SHUFFLE_STREAM);
        let order = indices.clone();
        let cursor = order.len();
        Loader { indices, order, batch_size, rng, cursor }
    }

    /// Draws this epoch's permutation.
    pub fn start_epoch(&mut self) {
        self.order.copy_from_slice(&self.indices);
        self.order.shuffle(&mut self.rng);
        self.cursor = 0;
    }

    /// Draws this epoch's permutation and hands it out whole, as if every batch had been drawn:
    /// for a backend that reads the batches from it itself (the WebGPU one uploads it once per
    /// epoch). The batches are its consecutive `batch_size` slices, as [`Loader::next_batch`]
    /// would give them.
    pub fn draw_epoch(&mut self) -> &[u32] {
        self.start_epoch();
        self.cursor = self.order.len();
        &self.order
    }

    /// The next batch of indices, or `None` at the end of the epoch.
    pub fn next_batch(&mut self) -> Option<&[u32]> {
        if self.cursor >= self.order.len() {
            return None;
        }
        let end = (self.cursor + self.batch_size).min(self.order.len());
        let batch = &self.order[self.cursor..end];
        self.cursor = end;
        Some(batch)
    }

    /// Batches per epoch (the last one may be partial).
    pub fn batches_per_epoch(&self) -> usize {
        self.indices.len().div_ceil(self.batch_size)
    }

    /// Batches already drawn this epoch.
    pub fn batches_done(&self) -> usize {
        self.cursor.div_ceil(self.batch_size)
    }

    pub fn len(&self) -> usize {
        self.indices.len()
    }

    pub fn is_empty(&self) -> bool {
        self.indices.is_empty()
    }

    /// Position of the generator (words consumed), enough to restore the loader between epochs.
    pub fn rng_position(&self) -> u128 {
        self.rng.get_word_pos()
    }

    /// Restores the generator to a position saved by [`Loader::rng_position`], at an epoch
    /// boundary.
    pub fn set_rng_position(&mut self, pos: u128) {
        self.rng.set_word_pos(pos);
        self.cursor = self.order.len();
    }
}
