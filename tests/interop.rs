//! A Skywatch checkpoint is a PyTorch `state_dict` in safetensors: Python's `safetensors` with
//! NumPy reads it, finds PyTorch's names and shapes and computes the same outputs; a file it
//! writes the way `safetensors.torch.save_file` does loads back here. The checkpoint carries the
//! training configuration too (`skywatch.train`, as `train --save` writes it), which Python reads
//! as plain metadata.
//!
//! Needs a Python with numpy and safetensors (`scripts/python-env`), given as `SKYWATCH_PYTHON`;
//! `scripts/test` runs it with `--include-ignored`.
#![cfg(not(target_arch = "wasm32"))] // native; tests/wasm.rs holds the tests that run in the browser

use ndarray::Array2;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use skywatch::checkpoint;
use skywatch::config::TrainConfig;
use skywatch::model::Mlp;
use std::path::Path;
use std::process::Command;

/// Minimal `.npy` (format 1.0) writer for a little-endian f32 matrix.
fn write_npy(path: &Path, a: &Array2<f32>) {
    let header = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': ({}, {}), }}", a.nrows(), a.ncols());
    let pad = 64 - (10 + header.len() + 1) % 64;
    let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
    bytes.extend(((header.len() + pad + 1) as u16).to_le_bytes());
    bytes.extend(header.as_bytes());
    bytes.extend(std::iter::repeat_n(b' ', pad));
    bytes.push(b'\n');
    bytes.extend(a.iter().flat_map(|v| v.to_le_bytes()));
    std::fs::write(path, bytes).unwrap();
}

#[test]
#[ignore = "needs SKYWATCH_PYTHON with numpy and safetensors; run by scripts/test"]
fn python_safetensors_reads_and_writes_our_checkpoints() {
    let python =
        std::env::var("SKYWATCH_PYTHON").expect("SKYWATCH_PYTHON must name a Python with numpy and safetensors");
    let dir = tempfile::tempdir().unwrap();
    let train = TrainConfig { seed: 1234567, ..TrainConfig::preset("lecture").unwrap() };
    let config = train.model.clone();
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let mut model = Mlp::new(&config, &mut rng).unwrap();
    let x = Array2::from_shape_fn((5, 3072), |_| rng.random_range(-2.0f32..2.0));
    let out = model.forward(x.view()).to_owned();
    let [ckpt, xin, xout, back] =
        ["model.safetensors", "x.npy", "out.npy", "torch.safetensors"].map(|n| dir.path().join(n));
    std::fs::write(&ckpt, checkpoint::save_trained(&model, &train)).unwrap();
    write_npy(&xin, &x);
    write_npy(&xout, &out);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/reference/interop.py");
    let res = Command::new(&python).arg(script).args([&ckpt, &xin, &xout, &back]).output().unwrap();
    assert!(
        res.status.success(),
        "interop.py failed:\n{}{}",
        String::from_utf8_lossy(&res.stdout),
        String::from_utf8_lossy(&res.stderr)
    );
    eprintln!("{}", String::from_utf8_lossy(&res.stdout));

    // The Python-written file (no Skywatch metadata) loads, and holds the halved weights.
    let loaded = checkpoint::load(&std::fs::read(&back).unwrap(), None).unwrap();
    assert_eq!(loaded.config.layers, vec![3072, 512, 2]);
    let halved: Vec<f32> = model.params.iter().map(|v| v * 0.5).collect();
    assert_eq!(loaded.params, halved);
}

/// The same for the book's convolutional `Net` (preset `conv`): exactly its tensors, its output in
/// NumPy (`tests/reference/conv_interop.py`), and a file written as PyTorch would loads back.
#[test]
#[ignore = "needs SKYWATCH_PYTHON with numpy and safetensors; run by scripts/test"]
fn python_reads_and_writes_the_books_convolutional_net() {
    let python =
        std::env::var("SKYWATCH_PYTHON").expect("SKYWATCH_PYTHON must name a Python with numpy and safetensors");
    let dir = tempfile::tempdir().unwrap();
    let train = TrainConfig { seed: 7, ..TrainConfig::preset("conv").unwrap() };
    let mut rng = ChaCha8Rng::seed_from_u64(12);
    let mut model = Mlp::new(&train.model, &mut rng).unwrap();
    let x = Array2::from_shape_fn((3, 3072), |_| rng.random_range(-2.0f32..2.0));
    let out = model.forward(x.view()).to_owned();
    let [ckpt, xin, xout, back] =
        ["net.safetensors", "x.npy", "out.npy", "torch.safetensors"].map(|n| dir.path().join(n));
    std::fs::write(&ckpt, checkpoint::save_trained(&model, &train)).unwrap();
    write_npy(&xin, &x);
    write_npy(&xout, &out);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/reference/conv_interop.py");
    let res = Command::new(&python).arg(script).args([&ckpt, &xin, &xout, &back]).output().unwrap();
    assert!(
        res.status.success(),
        "conv_interop.py failed:\n{}{}",
        String::from_utf8_lossy(&res.stdout),
        String::from_utf8_lossy(&res.stderr)
    );
    eprintln!("{}", String::from_utf8_lossy(&res.stdout));
    let loaded = checkpoint::load(&std::fs::read(&back).unwrap(), Some(&train.model)).unwrap();
    assert_eq!(loaded.config, train.model, "a plain state_dict of Net is read as the conv preset");
    let halved: Vec<f32> = model.params.iter().map(|v| v * 0.5).collect();
    assert_eq!(loaded.params, halved);
}
