//! Data augmentation on the GPU (gather.wgsl's `augment` entry) against the CPU's
//! (`skywatch::data::augment`): the gather with a draw per position equals the CPU's flip then
//! shift of the normalised tensor bit for bit (it only copies values of the normalisation table,
//! or writes the zeros shifted in), with hand-picked draws and with the seeded draws of a run;
//! then whole augmented runs against the CPU `Trainer` (same seed, data, batch order and draws),
//! within the parity tolerances of the plain runs.

use super::*;
use skywatch::config::Augment;
use skywatch::data::augment::{Draw, augment_batch, draws, flip_image, shift_image};
use skywatch::gpu::table::pack_draw;

/// The bits of `v`: equal means the same float, sign of zero included.
fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

/// 37 records (not a whole number of words) in a shuffled order, as the plain gather's test.
fn bundle() -> (Vec<u8>, Split, Vec<f32>, Vec<u32>) {
    let recs = records(37, 3);
    let split = Split::from_records("gather", 2, recs.clone()).unwrap();
    let lut: Vec<f32> = Normalizer::default().table().iter().flatten().copied().collect();
    let mut index: Vec<u32> = (0..37).collect();
    index.reverse();
    index.swap(3, 30);
    (recs, split, lut, index)
}

/// The CPU's batch of positions `start..start + rows` of `index`, normalised, then each row
/// flipped and shifted by its draw (`augment.rs`'s functions, in its order: flip, then shift).
fn cpu_batch(split: &Split, index: &[u32], start: usize, d: &[Draw]) -> (Vec<f32>, Vec<u32>) {
    let mut x = Array2::zeros((d.len(), PIXELS));
    let mut labels = Vec::new();
    split.gather(&index[start..start + d.len()], &Normalizer::default(), x.view_mut(), &mut labels);
    let mut shifted = vec![0.0; PIXELS];
    for (mut row, d) in x.rows_mut().into_iter().zip(d) {
        let row = row.as_slice_mut().unwrap();
        if d.flip {
            flip_image(row);
        }
        shift_image(row, d.dx, d.dy, &mut shifted);
        row.copy_from_slice(&shifted);
    }
    (x.into_raw_vec_and_offset().0, labels.iter().map(|&l| u32::from(l)).collect())
}

#[wasm_bindgen_test]
async fn the_gather_flips_and_shifts_as_the_cpu_bit_for_bit() {
    let ops = ops().await;
    let (recs, split, lut, index) = bundle();
    // Draws at the batch's positions 5..18: nothing, a flip alone, one pixel each way, both, the
    // largest shift the option allows (8) and beyond it (a whole side: all zeros).
    let picked = [
        (false, 0, 0),
        (true, 0, 0),
        (false, 1, 0),
        (false, 0, -1),
        (true, -1, 1),
        (true, 3, -2),
        (false, -8, 8),
        (true, 8, -8),
        (false, 4, 4),
        (true, -4, 0),
        (false, 31, -5),
        (true, 0, -32),
        (true, 7, 6),
    ]
    .map(|(flip, dx, dy)| Draw { flip, dx, dy });
    // Other positions get other draws, so a batch reading its draws at the wrong place fails.
    let mut all: Vec<Draw> = (0..37).map(|i| Draw { flip: i % 2 == 0, dx: 2, dy: -3 }).collect();
    all[5..18].copy_from_slice(&picked);
    let packed: Vec<u32> = all.iter().map(pack_draw).collect();
    let entry = BatchEntry { start: 5, rows: 13, ..BatchEntry::default() };
    let (x, labels) = ops.gather(&recs, &lut, &index, Some(&packed), entry).await.unwrap();
    let (want, want_labels) = cpu_batch(&split, &index, 5, &picked);
    for (r, d) in picked.iter().enumerate() {
        let rows = r * PIXELS..(r + 1) * PIXELS;
        assert_eq!(bits(&x[rows.clone()]), bits(&want[rows]), "row {r}, draw {d:?}");
    }
    assert_eq!(labels, want_labels);
    // The draws do something: every row but the first (no flip, no shift) differs from the
    // plain gather.
    let (plain, _) = ops.gather(&recs, &lut, &index, None, entry).await.unwrap();
    for (r, d) in picked.iter().enumerate() {
        let rows = r * PIXELS..(r + 1) * PIXELS;
        assert_eq!(x[rows.clone()] == plain[rows], r == 0, "row {r}, draw {d:?}");
    }
}

#[wasm_bindgen_test]
async fn the_gather_applies_a_runs_seeded_draws_as_the_cpus_augment_batch() {
    let ops = ops().await;
    let (recs, split, lut, index) = bundle();
    let norm = Normalizer::default();
    for (augment, seed, epoch) in [("flip,shift:4", 7, 0), ("shift:8", 1, 3), ("flip", 0, 2), ("shift:1", 9, 1)] {
        let a: Augment = augment.parse().unwrap();
        // The epoch's draws for all 37 positions, uploaded once as the trainer does.
        let packed: Vec<u32> = draws(a, seed, epoch, 37, 0, 37).iter().map(pack_draw).collect();
        for (start, rows) in [(0usize, 16usize), (16, 16), (32, 5)] {
            let entry = BatchEntry { start: start as u32, rows: rows as u32, ..BatchEntry::default() };
            let (x, _) = ops.gather(&recs, &lut, &index, Some(&packed), entry).await.unwrap();
            let mut want = Array2::zeros((rows, PIXELS));
            split.gather(&index[start..start + rows], &norm, want.view_mut(), &mut Vec::new());
            augment_batch(a, seed, epoch, 37, start, want.view_mut());
            assert_eq!(
                bits(&x),
                bits(want.as_slice().unwrap()),
                "{augment}, seed {seed}, epoch {epoch}, start {start}"
            );
        }
    }
}

/// Trains `steps` batches of `config` on the CPU without and with `augment`, and returns the
/// largest difference of their parameters relative to the largest parameter.
fn cpu_effect(config: &TrainConfig, data: &Arc<Dataset>, steps: usize) -> f32 {
    let params = |c: &TrainConfig| {
        let mut t = Trainer::new(c.clone(), Arc::clone(data)).unwrap();
        let mut done = 0;
        while done < steps {
            let n = (steps - done).min(t.batches_per_epoch());
            t.train_batches(n, &mut |_| {}).unwrap();
            done += n;
        }
        t.model.params
    };
    let plain = params(&TrainConfig { augment: Augment::default(), ..config.clone() });
    let augmented = params(config);
    let max = plain.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    plain.iter().zip(&augmented).fold(0.0f32, |m, (a, b)| m.max((a - b).abs())) / max
}

#[wasm_bindgen_test]
async fn an_augmented_mlp_run_matches_the_cpu() {
    // 400 images, batch 64: 7 batches per epoch (the last of 16); 60 steps cross 8 epoch ends,
    // each with a new upload of the epoch's draws. Tolerances: those of the plain runs.
    let mut c = config(&[3072, 48, 2], Activation::Tanh, LossKind::Nll, OptimizerConfig::default(), 64);
    c.augment = "flip,shift:4".parse().unwrap();
    let data = dataset(400, 100);
    // The augmentation changes the run far beyond the tolerance, so a GPU that ignored it fails.
    let effect = cpu_effect(&c, &data, 60);
    assert!(effect > 1e-2, "augmentation changes the parameters by {effect} only");
    compare_runs(c.clone(), Arc::clone(&data), 60, 9, 1e-3).await;
    // The gather is one dispatch with or without augmentation.
    let plain = TrainConfig { augment: Augment::default(), ..c.clone() };
    let with = GpuTrainer::new(Trainer::new(c, Arc::clone(&data)).unwrap()).await.unwrap();
    let without = GpuTrainer::new(Trainer::new(plain, data).unwrap()).await.unwrap();
    assert_eq!(with.dispatches_per_batch(), without.dispatches_per_batch());
}

#[wasm_bindgen_test]
async fn an_augmented_conv_run_matches_the_cpu() {
    // The book's Net with flip,shift:2, batch 16 on 80 images (5 batches per epoch): 12 steps.
    let c = TrainConfig {
        batch_size: 16,
        epochs: 100,
        seed: 7,
        augment: "flip,shift:2".parse().unwrap(),
        ..TrainConfig::preset("conv").unwrap()
    };
    compare_runs(c, dataset(80, 40), 12, 5, 1e-3).await;
}
