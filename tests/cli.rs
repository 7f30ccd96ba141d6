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
