//! Hard examples: per-row losses from the loss functions, the bookkeeping of forgetting events on
//! a hand-made sequence, and the trainer's records after real epochs.
#![cfg(not(target_arch = "wasm32"))] // native; tests/wasm.rs holds the tests that run in the browser

mod common;

use common::fixtures::synthetic_cifar2;
use ndarray::Array2;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use skywatch::config::{LossKind, TrainConfig};
use skywatch::data::{RECORD_BYTES, Split};
use skywatch::examples::ExampleLog;
use skywatch::loss::{RowLoss, loss_and_grad, loss_rows_and_grad};
use skywatch::train::Trainer;
use std::sync::Arc;

#[test]
fn per_row_losses_sum_to_the_batch_loss() {
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    for kind in [LossKind::Nll, LossKind::CrossEntropy] {
        let mut out = Array2::from_shape_fn((37, 3), |_| rng.random_range(-3.0f32..3.0));
        if kind == LossKind::Nll {
            skywatch::layers::log_softmax_forward(out.view_mut());
        }
        let targets: Vec<u8> = (0..37).map(|_| rng.random_range(0..3u8)).collect();
        let mut rows = vec![RowLoss::default(); 5]; // cleared by the call
        let mut g1 = Array2::zeros((37, 3));
        let mut g2 = Array2::zeros((37, 3));
        let res = loss_rows_and_grad(kind, out.view(), &targets, Some(g1.view_mut()), Some(&mut rows));
        // The plain call gives the same loss, count and gradient.
        assert_eq!(loss_and_grad(kind, out.view(), &targets, Some(g2.view_mut())), res);
        assert_eq!(g1, g2);
        assert_eq!(rows.len(), 37);
        // Summed in the same order in f64: exactly the batch's summed loss.
        assert_eq!(rows.iter().map(|r| r.loss as f64).sum::<f64>(), res.loss_sum);
        assert_eq!(rows.iter().filter(|r| r.correct).count(), res.correct);
        for (i, r) in rows.iter().enumerate() {
            // -log p[t] from the log-softmax / softmax of the row, independently in f64.
            let row: Vec<f64> = out.row(i).iter().map(|&v| v as f64).collect();
            let lse = row.iter().map(|v| v.exp()).sum::<f64>().ln();
            let t = targets[i] as usize;
            let want = if kind == LossKind::Nll { -row[t] } else { lse - row[t] };
            assert!((r.loss as f64 - want).abs() < 1e-5, "row {i}: {} vs {want}", r.loss);
            assert!((r.probability() as f64 - (-want).exp()).abs() < 1e-5);
        }
    }
}

fn row(loss: f32, correct: bool) -> RowLoss {
    RowLoss { loss, correct }
}

/// A split of `n` images whose label is `i % 2`.
fn labels_split(n: usize) -> Split {
    let mut rec = vec![0u8; n * RECORD_BYTES];
    for (i, r) in rec.chunks_exact_mut(RECORD_BYTES).enumerate() {
        r[0] = (i % 2) as u8;
    }
    Split::from_records("labels", 2, rec).unwrap()
}

#[test]
fn forgetting_events_and_lists_on_a_hand_made_sequence() {
    // Five images over four epochs (1 correct, 0 wrong, . not presented):
    //   image 0: 1 0 1 0   learned at 0, forgotten at 1 and 3: two events
    //   image 1: 0 0 1 1   learned at 2, never forgotten
    //   image 2: 1 1 1 1   never forgotten
    //   image 3: 0 1 . 0   learned at 1; presented again at 3 and wrong: one event
    //   image 4: . . . .   never presented
    let seq: [[Option<(f32, bool)>; 5]; 4] = [
        [Some((0.3, true)), Some((1.2, false)), Some((0.1, true)), Some((0.9, false)), None],
        [Some((0.8, false)), Some((0.75, false)), Some((0.05, true)), Some((0.6, true)), None],
        [Some((0.4, true)), Some((0.5, true)), Some((0.02, true)), None, None],
        [Some((2.0, false)), Some((0.2, true)), Some((0.01, true)), Some((0.7, false)), None],
    ];
    let mut log = ExampleLog::new(5);
    for (e, epoch) in seq.iter().enumerate() {
        // Recorded in two batches, in shuffled order, as training does.
        let items: Vec<(u32, RowLoss)> =
            epoch.iter().enumerate().rev().filter_map(|(i, r)| r.map(|(l, c)| (i as u32, row(l, c)))).collect();
        let (a, b) = items.split_at(items.len() / 2);
        for batch in [a, b] {
            let idx: Vec<u32> = batch.iter().map(|x| x.0).collect();
            let rows: Vec<RowLoss> = batch.iter().map(|x| x.1).collect();
            log.record(&idx, &rows);
        }
        log.commit_epoch(e);
    }
    // An epoch that diverged leaves no trace.
    log.record(&[0, 1], &[row(9.0, false), row(9.0, false)]);
    log.discard_epoch();

    assert_eq!(log.epochs(), &[0, 1, 2, 3]);
    assert_eq!((0..5).map(|i| log.forgetting_events(i)).collect::<Vec<_>>(), [2, 0, 0, 1, 0]);
    assert_eq!((0..5).map(|i| log.history(i)).collect::<Vec<_>>(), ["1010", "0011", "1111", "01.0", "...."]);
    assert_eq!(log.last_loss(0), Some(2.0));
    assert_eq!(log.last_loss(3), Some(0.7));
    assert_eq!(log.last_loss(4), None);

    let r = log.report(3, &labels_split(5));
    assert_eq!((r.images, r.forgettable), (4, 2));
    let idx = |v: &[skywatch::examples::ExampleItem]| v.iter().map(|i| i.index).collect::<Vec<_>>();
    // Highest last loss: 2.0 (image 0), 0.7 (3), 0.2 (1).
    assert_eq!(idx(&r.most_wrong), [0, 3, 1]);
    // Forgotten: image 0 (two events) before image 3 (one).
    assert_eq!(idx(&r.forgotten), [0, 3]);
    // |exp(-loss) - 0.5|: image 3 (exp(-0.7) = 0.497), 0 (0.135), 1 (0.819 -> 0.319), 2 (0.99).
    assert_eq!(idx(&r.ambiguous), [3, 1, 0]);
    let first = &r.forgotten[0];
    assert_eq!((first.label, first.correct, first.forgetting_events, first.first_learned), (0, false, 2, Some(0)));
    assert!((first.probability - (-2.0f32).exp()).abs() < 1e-7);
    assert_eq!(r.forgotten[1].first_learned, Some(1));
    assert_eq!(r.most_wrong[2].history, "0011");
}

#[test]
fn the_trainer_records_every_image_of_every_epoch_from_its_forward_pass() {
    let data = Arc::new(synthetic_cifar2(700, 100, 4));
    let mut c = TrainConfig::preset("lecture").unwrap();
    c.model.layers = vec![3072, 16, 2];
    c.train_size = Some(500);
    let mut t = Trainer::new(c, Arc::clone(&data)).unwrap();
    let s0 = t.train_epoch(&mut |_| {}).unwrap();
    let s1 = t.train_epoch(&mut |_| {}).unwrap();
    let r = t.examples.report(10_000, &data.train);
    assert_eq!(r.epochs, [0, 1]);
    assert_eq!(r.images, 500, "exactly the run's subset");
    assert_eq!(r.most_wrong.len(), 500);
    // The records of the last epoch are those of its batches: their mean loss is the epoch's loss
    // and their accuracy its training accuracy (sums in another order: not bit-exact).
    let mean = r.most_wrong.iter().map(|i| i.loss as f64).sum::<f64>() / 500.0;
    assert!((mean - s1.loss).abs() < 1e-6, "{mean} vs {}", s1.loss);
    let acc = r.most_wrong.iter().filter(|i| i.correct).count() as f64 / 500.0;
    assert_eq!(acc, s1.train_accuracy);
    assert!(r.most_wrong.iter().all(|i| i.history.len() == 2 && !i.history.contains('.')));
    assert!(r.most_wrong.windows(2).all(|w| w[0].loss >= w[1].loss));
    assert_ne!(s0.loss, s1.loss);
    // A new model (imported weights) starts a new log and counts epochs from 0.
    let bytes = skywatch::checkpoint::save(&t.model);
    t.load_weights(&bytes).unwrap();
    assert_eq!((t.epochs_done(), t.examples.epochs().len()), (0, 0));
    assert_eq!(t.train_epoch(&mut |_| {}).unwrap().epoch, 0);
}
