//! Continuing to train a saved model: `skywatch train --init FILE` starts from the file's weights
//! (ours, or a PyTorch `state_dict`), so its first epoch's loss carries on from the saved model's
//! instead of starting high, with a fresh optimizer and epochs counted from 0.
#![cfg(all(feature = "cli", not(target_arch = "wasm32")))]

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use skywatch::data::{Manifest, RECORD_BYTES, SourceInfo};
use std::path::Path;
use std::process::Command;

/// A learnable bundle: class 1 images are brighter on average, with much noise.
fn write_bundle(dir: &Path) {
    let mut rng = ChaCha8Rng::seed_from_u64(21);
    let mut split = |n: usize| {
        let mut rec = vec![0u8; n * RECORD_BYTES];
        for (i, r) in rec.chunks_exact_mut(RECORD_BYTES).enumerate() {
            let label = (i % 2) as u8;
            r[0] = label;
            for p in r[1..].iter_mut() {
                *p = rng.random_range(0..200u8) + 30 * label;
            }
        }
        rec
    };
    let (train, test) = (split(2000), split(400));
    let source = SourceInfo { kind: "synthetic".into(), location: "tests/init.rs".into(), fingerprint: String::new() };
    let m = Manifest::for_records(vec!["airplane".into(), "bird".into()], &train, &test, source);
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join(&m.train.file), train).unwrap();
    std::fs::write(dir.join(&m.test.file), test).unwrap();
    std::fs::write(dir.join("manifest.json"), m.to_json()).unwrap();
}

/// Runs `skywatch train --json` with `args`; the epochs' `loss` values.
fn train(bundle: &Path, args: &[&str]) -> Vec<f64> {
    let out = Command::new(env!("CARGO_BIN_EXE_skywatch"))
        .args(["train", "--json", "--layers", "3072,32,2", "--threads", "1", "--lr", "0.001"])
        .arg("--data")
        .arg(bundle)
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .enumerate()
        .map(|(i, l)| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            assert_eq!(v["epoch"], i, "epochs are counted from 0");
            v["loss"].as_f64().unwrap()
        })
        .collect()
}

#[test]
fn train_init_continues_from_the_saved_model() {
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("bundle");
    write_bundle(&bundle);
    let saved = dir.path().join("m.safetensors");
    let saved_arg = saved.to_str().unwrap();
    // Four epochs in one run, then the same four as 2 + --init 2.
    let straight = train(&bundle, &["--epochs", "4", "--seed", "1"]);
    let first = train(&bundle, &["--epochs", "2", "--seed", "1", "--save", saved_arg]);
    let resumed = train(&bundle, &["--epochs", "2", "--seed", "5", "--init", saved_arg]);
    eprintln!("straight {straight:?}, first {first:?}, resumed {resumed:?}");
    assert_eq!(first, straight[..2], "the same seed gives the same first epochs");
    // The continued run's first epoch carries on where the saved model was (the straight run's
    // third epoch, with other batches): far below a fresh start, and not above the saved model's
    // last epoch.
    assert!(resumed[0] < first[1], "resumed {} vs the saved run's last epoch {}", resumed[0], first[1]);
    assert!((resumed[0] - straight[2]).abs() < 0.25 * (first[0] - straight[2]), "{} vs {}", resumed[0], straight[2]);
    let fresh = train(&bundle, &["--epochs", "1", "--seed", "5"]);
    assert!(resumed[0] < fresh[0] - 0.5 * (fresh[0] - straight[2]));

    // The same weights as PyTorch's `safetensors.torch.save_file(model.state_dict())` writes them
    // (no Skywatch metadata: the command line supplies the model): the same run.
    let bytes = std::fs::read(&saved).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let meta = std::collections::HashMap::from([("format".to_string(), "pt".to_string())]);
    let plain = safetensors::serialize(st.tensors(), Some(meta)).unwrap();
    let state_dict = dir.path().join("state_dict.safetensors");
    std::fs::write(&state_dict, plain).unwrap();
    assert!(!String::from_utf8_lossy(&std::fs::read(&state_dict).unwrap()[..200]).contains("skywatch"));
    assert_eq!(train(&bundle, &["--epochs", "2", "--seed", "5", "--init", state_dict.to_str().unwrap()]), resumed);

    // A file that is not a checkpoint is refused, naming it.
    let bad = dir.path().join("bad.safetensors");
    std::fs::write(&bad, b"not a checkpoint").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_skywatch"))
        .args(["train", "--epochs", "1", "--init"])
        .arg(&bad)
        .arg("--data")
        .arg(&bundle)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad.safetensors") && err.contains("not a safetensors file"), "{err}");
}
