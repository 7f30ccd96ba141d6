//! The command line as typed: `skywatch train --seed random` draws a seed, says which on the
//! first line of its log and records it in the checkpoint it saves, so that the run can be
//! repeated exactly; `skywatch eval` reads the record back.
#![cfg(all(feature = "cli", not(target_arch = "wasm32")))]

mod common;

use common::fixtures::{synthetic_cifar2, write_bundle};
use skywatch::checkpoint;
use std::path::Path;
use std::process::{Command, Output};

fn skywatch(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_skywatch")).args(args).output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).unwrap()
}

/// `skywatch train` of a small model for one epoch on the bundle `data`, with `extra` options.
fn train(data: &Path, extra: &[&str]) -> Output {
    let data = data.to_str().unwrap();
    let mut args = vec!["train", "--data", data, "--layers", "3072,16,2", "--epochs", "1", "--threads", "2"];
    args.extend_from_slice(extra);
    let out = skywatch(&args);
    assert!(out.status.success(), "skywatch {args:?}:\n{}{}", text(&out.stdout), text(&out.stderr));
    out
}

#[test]
fn a_random_seed_is_printed_first_and_recorded_in_the_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    write_bundle(&data, &synthetic_cifar2(256, 64, 9));
    let [first, second] = ["first.safetensors", "second.safetensors"].map(|n| dir.path().join(n));

    let out = train(&data, &["--seed", "random", "--save", first.to_str().unwrap()]);
    let log = text(&out.stdout);
    let line = log.lines().next().unwrap();
    let seed: u64 = line
        .strip_prefix("seed ")
        .and_then(|rest| rest.strip_suffix(" (drawn at random)"))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("first line {line:?}"));
    let recorded = checkpoint::load_train_config(&std::fs::read(&first).unwrap()).unwrap().expect("a training record");
    assert_eq!(recorded.seed, seed);
    assert_eq!((recorded.model.layers.as_slice(), recorded.epochs), (&[3072, 16, 2][..], 1));

    // The seed given back repeats the run: the same weights, bit for bit; nothing is drawn.
    let out = train(&data, &["--seed", &seed.to_string(), "--save", second.to_str().unwrap()]);
    assert!(!text(&out.stdout).contains("drawn at random"));
    let weights = |p: &Path| checkpoint::load(&std::fs::read(p).unwrap(), None).unwrap().params;
    assert!(weights(&first) == weights(&second), "the repeated run gave other weights");

    // `eval` shows how the weights were made.
    let out = skywatch(&["eval", "--data", data.to_str().unwrap(), "--model", second.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).starts_with(&format!("trained with seed {seed}: {{")), "{}", text(&out.stdout));

    // With --json, stdout holds only the epochs; the seed line goes to stderr.
    let out = train(&data, &["--seed", "random", "--json"]);
    for l in text(&out.stdout).lines() {
        let v: serde_json::Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?}: {e}"));
        assert!(v.get("epoch").is_some(), "{l}");
    }
    assert!(text(&out.stderr).lines().any(|l| l.starts_with("seed ") && l.ends_with(" (drawn at random)")));
}

#[test]
fn a_seed_that_is_neither_a_number_nor_random_is_refused() {
    let out = skywatch(&["train", "--seed", "lucky"]);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(err.contains("'lucky' is neither a whole number nor 'random'"), "{err}");
}

#[test]
fn augment_is_recorded_and_eval_shift_adds_its_keys_to_the_test_split_only() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    write_bundle(&data, &synthetic_cifar2(256, 64, 5));
    let model = dir.path().join("m.safetensors");
    let out = train(&data, &["--augment", "flip,shift:4", "--json", "--save", model.to_str().unwrap()]);
    // `train --json` keeps its keys.
    let line: serde_json::Value = serde_json::from_str(text(&out.stdout).trim()).unwrap();
    let keys: Vec<&str> = line.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(keys, ["epoch", "loss", "seconds", "train_accuracy", "val_accuracy"]);
    let recorded = checkpoint::load_train_config(&std::fs::read(&model).unwrap()).unwrap().unwrap();
    assert_eq!(recorded.augment.to_string(), "flip,shift:4");

    let args = ["eval", "--data", data.to_str().unwrap(), "--model", model.to_str().unwrap(), "--json"];
    let out = skywatch(&[&args[..], &["--shift", "0,1,2,4,8"]].concat());
    assert!(out.status.success(), "{}", text(&out.stderr));
    let lines: Vec<serde_json::Value> = text(&out.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 2);
    assert!(lines[0].get("shift_px").is_none(), "the train split has no shift keys");
    let test = &lines[1];
    assert_eq!(test["split"], "test");
    assert_eq!(test["shift_px"], serde_json::json!([0, 1, 2, 4, 8]));
    let acc = test["shift_accuracy"].as_array().unwrap();
    assert_eq!(acc[0], test["accuracy"], "at 0 px: the validation accuracy");
    assert!(acc.iter().all(|a| (0.0..=1.0).contains(&a.as_f64().unwrap())));
    assert_eq!(test["shift_similarity"][0], 1.0);

    let out = skywatch(&[&args[..], &["--shift", "9"]].concat());
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("0..=8"), "{}", text(&out.stderr));
    let out = skywatch(&["train", "--data", data.to_str().unwrap(), "--augment", "shift:12"]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("augment"), "{}", text(&out.stderr));
}
