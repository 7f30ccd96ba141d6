//! The seeded minibatch loader behaves as PyTorch's `DataLoader(shuffle=True, drop_last=False)`:
//! every epoch is a permutation, the last batch keeps the remainder, and the seed alone decides
//! the order.
#![cfg(not(target_arch = "wasm32"))] // native; tests/wasm.rs holds the tests that run in the browser

use skywatch::data::Loader;
use skywatch::train::training_indices;

fn epoch(loader: &mut Loader) -> Vec<Vec<u32>> {
    loader.start_epoch();
    let mut batches = Vec::new();
    while let Some(b) = loader.next_batch() {
        batches.push(b.to_vec());
    }
    batches
}

#[test]
fn each_epoch_is_a_permutation_with_the_remainder_kept() {
    let mut loader = Loader::new((0..10_000).collect(), 64, 5);
    assert_eq!(loader.batches_per_epoch(), 157); // 156 full batches and one of 16
    let mut previous = Vec::new();
    for _ in 0..3 {
        let batches = epoch(&mut loader);
        assert_eq!(batches.len(), 157);
        assert!(batches[..156].iter().all(|b| b.len() == 64));
        assert_eq!(batches[156].len(), 16);
        let mut all: Vec<u32> = batches.concat();
        assert_ne!(all, previous, "reshuffled every epoch");
        previous = all.clone();
        all.sort_unstable();
        assert_eq!(all, (0..10_000).collect::<Vec<u32>>());
    }
}

#[test]
fn same_seed_same_batches_other_seed_other_batches() {
    let run = |seed| {
        let mut l = Loader::new((0..1000).collect(), 64, seed);
        (0..3).map(|_| epoch(&mut l)).collect::<Vec<_>>()
    };
    assert_eq!(run(1), run(1));
    assert_ne!(run(1), run(2));
}

#[test]
fn generator_position_restores_the_next_epochs() {
    let mut a = Loader::new((0..500).collect(), 32, 9);
    epoch(&mut a);
    let pos = a.rng_position();
    let expected: Vec<_> = (0..2).map(|_| epoch(&mut a)).collect();
    let mut b = Loader::new((0..500).collect(), 32, 9);
    b.set_rng_position(pos);
    let got: Vec<_> = (0..2).map(|_| epoch(&mut b)).collect();
    assert_eq!(expected, got);
}

#[test]
fn training_subset_is_seeded_and_without_repeats() {
    let a = training_indices(10_000, Some(2000), 4);
    assert_eq!(a, training_indices(10_000, Some(2000), 4));
    assert_ne!(a, training_indices(10_000, Some(2000), 5));
    let mut d = a.clone();
    d.dedup();
    assert_eq!(d.len(), 2000);
    assert!(a.iter().all(|&i| i < 10_000));
    assert_eq!(training_indices(100, None, 0).len(), 100);
    assert_eq!(training_indices(100, Some(500), 0).len(), 100);
}

#[test]
fn a_drawn_epoch_is_its_batches_in_order() {
    // `draw_epoch` hands the permutation out whole (the WebGPU backend uploads it): its
    // consecutive slices are the batches `next_batch` gives, and the generator moves on alike.
    let mut batched = Loader::new((0..1000).collect(), 64, 9);
    let mut whole = batched.clone();
    for _ in 0..3 {
        let order = whole.draw_epoch().to_vec();
        let batches = epoch(&mut batched);
        assert_eq!(order.chunks(64).map(<[u32]>::to_vec).collect::<Vec<_>>(), batches);
        assert_eq!(whole.batches_done(), whole.batches_per_epoch());
        assert_eq!(whole.rng_position(), batched.rng_position());
    }
}
