//! A run saved between epochs and resumed (as the page does after a reload) ends exactly as the
//! uninterrupted run: same weights, bit for bit, for every optimizer.
#![cfg(not(target_arch = "wasm32"))] // native; tests/wasm.rs holds the tests that run in the browser

mod common;

use common::fixtures::synthetic_cifar2;
use skywatch::checkpoint;
use skywatch::config::{OptimizerKind, TrainConfig};
use skywatch::train::Trainer;
use std::sync::Arc;

fn config(kind: OptimizerKind, momentum: f32) -> TrainConfig {
    let mut c = TrainConfig::preset("lecture").unwrap();
    c.model.layers = vec![3072, 32, 2];
    c.optimizer.kind = kind;
    c.optimizer.momentum = momentum;
    if kind == OptimizerKind::Adam {
        c.optimizer.lr = 1e-3;
    }
    (c.seed, c.train_size) = (11, Some(600));
    c
}

#[test]
fn resumed_runs_end_exactly_as_uninterrupted_ones() {
    let data = Arc::new(synthetic_cifar2(1000, 200, 3));
    for (kind, momentum) in [(OptimizerKind::Sgd, 0.0), (OptimizerKind::Sgd, 0.9), (OptimizerKind::Adam, 0.0)] {
        let c = config(kind, momentum);
        let mut straight = Trainer::new(c.clone(), Arc::clone(&data)).unwrap();
        let want: Vec<_> = (0..3).map(|_| straight.train_epoch(&mut |_| {}).unwrap()).collect();

        let mut first = Trainer::new(c.clone(), Arc::clone(&data)).unwrap();
        first.train_epoch(&mut |_| {}).unwrap();
        let saved = first.save_state().unwrap();
        drop(first);
        let mut resumed = Trainer::resume(&saved, Arc::clone(&data)).unwrap();
        assert_eq!(resumed.epochs_done(), 1);
        let got: Vec<_> = (0..2).map(|_| resumed.train_epoch(&mut |_| {}).unwrap()).collect();
        assert!(
            resumed.model.params == straight.model.params,
            "{kind:?} momentum {momentum}: weights differ after resuming"
        );
        assert_eq!(resumed.optimizer, straight.optimizer);
        for (g, w) in got.iter().zip(&want[1..]) {
            assert_eq!((g.epoch, g.loss, g.val_accuracy), (w.epoch, w.loss, w.val_accuracy));
        }
    }
}

#[test]
fn bad_run_states_are_refused() {
    let data = Arc::new(synthetic_cifar2(300, 100, 4));
    let mut t = Trainer::new(config(OptimizerKind::Sgd, 0.9), Arc::clone(&data)).unwrap();
    t.train_batches(2, &mut |_| {}).unwrap();
    assert!(t.save_state().unwrap_err().to_string().contains("only between epochs"));
    let weights = checkpoint::save(&t.model);
    let err = Trainer::resume(&weights, Arc::clone(&data)).unwrap_err().to_string();
    assert!(err.contains("no 'skywatch.run' metadata"), "{err}");
    assert!(Trainer::resume(b"\x08\x00\x00\x00\x00\x00\x00\x00{}      ", Arc::clone(&data)).is_err());
    t.train_epoch(&mut |_| {}).unwrap();
    let mut saved = t.save_state().unwrap();
    // A flipped byte inside the parameters is still a valid file, but a truncated one is not.
    saved.truncate(saved.len() - 10);
    assert!(Trainer::resume(&saved, data).is_err());
}

#[test]
fn a_run_state_with_a_one_byte_dtype_is_refused_before_it_is_read() {
    use safetensors::{Dtype, SafeTensors, tensor::TensorView};
    let data = Arc::new(synthetic_cifar2(300, 100, 4));
    let mut t = Trainer::new(config(OptimizerKind::Sgd, 0.0), Arc::clone(&data)).unwrap();
    t.train_epoch(&mut |_| {}).unwrap();
    let saved = t.save_state().unwrap();
    let (_, header) = SafeTensors::read_metadata(&saved).unwrap();
    // The same metadata, with `params` declared as one byte per element (a quarter of the bytes
    // that as many f32 would need): refused by its dtype, not read into a buffer of f32.
    let n = t.model.params.len();
    let bytes = vec![0u8; n];
    let params = TensorView::new(Dtype::U8, vec![n], &bytes).unwrap();
    let forged = safetensors::serialize([("params", params)], header.metadata().clone()).unwrap();
    let err = Trainer::resume(&forged, data).unwrap_err().to_string();
    assert!(err.contains("tensor 'params' has dtype U8, expected F32"), "{err}");
}

#[test]
fn a_diverging_run_stops_and_keeps_the_last_finished_epoch() {
    let data = Arc::new(synthetic_cifar2(640, 100, 5));
    let mut c = config(OptimizerKind::Sgd, 0.0);
    c.model.activation = skywatch::config::Activation::Relu;
    let mut t = Trainer::new(c, Arc::clone(&data)).unwrap();
    t.train_epoch(&mut |_| {}).unwrap();
    let good = t.model.params.clone();
    // An absurd learning rate makes the next epoch's loss overflow.
    t.optimizer.config.lr = 1e30;
    let err = t.train_epoch(&mut |_| {}).unwrap_err();
    let msg = err.to_string();
    assert!(msg.starts_with("training diverged: loss became") && msg.contains("epoch 1"), "{msg}");
    assert!(t.model.params == good, "the weights of the last finished epoch are kept");
    assert_eq!(t.epochs_done(), 1);
    // And the run can carry on from there (with a sane learning rate).
    t.optimizer.config.lr = 1e-2;
    assert_eq!(t.train_epoch(&mut |_| {}).unwrap().epoch, 1);
    assert!(t.model.params.iter().all(|v| v.is_finite()));
}

#[test]
fn an_epoch_trained_by_another_backend_continues_the_same_run() {
    // The WebGPU backend draws the epoch from the trainer's loader, trains it, writes the weights
    // and optimizer state back and counts the epoch; the CPU then goes on exactly as if it had
    // trained that epoch itself. Here a clone of the trainer plays the other backend.
    let data = Arc::new(synthetic_cifar2(1000, 200, 4));
    let c = config(OptimizerKind::Sgd, 0.9);
    let mut straight = Trainer::new(c.clone(), Arc::clone(&data)).unwrap();
    let want: Vec<_> = (0..2).map(|_| straight.train_epoch(&mut |_| {}).unwrap()).collect();

    let mut host = Trainer::new(c, Arc::clone(&data)).unwrap();
    let mut other = host.clone();
    let order = host.draw_external_epoch().unwrap().to_vec();
    assert_eq!(order.len(), host.train_len());
    other.train_epoch(&mut |_| {}).unwrap();
    host.model.params = other.model.params.clone();
    host.optimizer = other.optimizer.clone();
    let val = host.evaluate_split(false);
    host.finish_external_epoch(val.clone());
    assert_eq!(host.epochs_done(), 1);
    // The epoch's validation is kept, as an epoch trained here keeps it.
    assert_eq!(host.last_validation(), Some(&val));
    assert_eq!(val.accuracy, want[0].val_accuracy);
    let got = host.train_epoch(&mut |_| {}).unwrap();
    assert_eq!((got.epoch, got.loss, got.val_accuracy), (want[1].epoch, want[1].loss, want[1].val_accuracy));
    assert!(host.model.params == straight.model.params, "weights differ after an external epoch");

    // Mid-epoch on the CPU, no other backend may take the next epoch.
    host.train_batches(1, &mut |_| {}).unwrap();
    assert!(host.in_epoch());
    assert!(host.draw_external_epoch().is_err());
}

#[test]
fn the_runs_start_survives_a_resume_and_a_run_from_a_file_has_none() {
    // The "change since the start" view needs W0: a resumed run draws it again from the seed in
    // its state (a flag, not a copy of the weights); a run from a file's weights has no start.
    let data = Arc::new(synthetic_cifar2(300, 100, 6));
    let mut t = Trainer::new(config(OptimizerKind::Sgd, 0.0), Arc::clone(&data)).unwrap();
    let w0 = t.model.params.clone();
    assert_eq!(t.initial_params(), Some(w0.as_slice()));
    t.train_epoch(&mut |_| {}).unwrap();
    assert!(t.model.params != w0);
    let resumed = Trainer::resume(&t.save_state().unwrap(), Arc::clone(&data)).unwrap();
    assert_eq!(resumed.initial_params(), Some(w0.as_slice()), "the resumed run's start is the run's own");
    assert!(resumed.model.params == t.model.params);

    let file = checkpoint::save(&t.model);
    let mut from_file = Trainer::new(config(OptimizerKind::Sgd, 0.0), Arc::clone(&data)).unwrap();
    from_file.load_weights(&file).unwrap();
    assert_eq!(from_file.initial_params(), None);
    from_file.train_epoch(&mut |_| {}).unwrap();
    let again = Trainer::resume(&from_file.save_state().unwrap(), Arc::clone(&data)).unwrap();
    assert_eq!(again.initial_params(), None, "a resumed run from a file still has no known start");

    // A state written before the flag existed (no `from_init` in its metadata): start unknown.
    use safetensors::SafeTensors;
    let saved = t.save_state().unwrap();
    let (_, header) = SafeTensors::read_metadata(&saved).unwrap();
    let mut meta = header.metadata().clone().unwrap();
    let run = meta.get_mut(checkpoint::RUN_KEY).unwrap();
    let mut json: serde_json::Value = serde_json::from_str(run).unwrap();
    json.as_object_mut().unwrap().remove("from_init").expect("the flag is written");
    *run = json.to_string();
    let st = SafeTensors::deserialize(&saved).unwrap();
    let old = safetensors::serialize(st.tensors(), Some(meta)).unwrap();
    let old = Trainer::resume(&old, data).unwrap();
    assert_eq!(old.initial_params(), None);
    assert!(old.model.params == t.model.params);
}
