//! Writes valid starting inputs for every fuzz target into `<dir>/<target>/` (default
//! `fuzz/corpus`, which git ignores): a tiny bundle, tiny CIFAR-10 archives, 32 x 32 PNG and
//! JPEG images (and a few near misses), small checkpoints. Everything is generated here from
//! fixed patterns; no real image is used. Re-running overwrites the same files.
//!
//! `cargo +nightly-2026-05-20 run --manifest-path fuzz/Cargo.toml --example seeds [-- DIR]`

#[path = "../../tests/common/archive.rs"]
mod archive;

use safetensors::{Dtype, tensor::TensorView};
use skywatch::checkpoint;
use skywatch::config::{Activation, LossKind, ModelConfig};
use skywatch::data::{Manifest, PIXELS, RECORD_BYTES, SourceInfo, sha256_hex};
use skywatch::model::Mlp;
use std::collections::HashMap;
use std::fs;
use std::io::Cursor;
use std::path::PathBuf;

fn main() {
    let root = PathBuf::from(std::env::args().nth(1).unwrap_or_else(|| "fuzz/corpus".into()));
    let mut written = 0;
    let mut put = |target: &str, name: &str, bytes: &[u8]| {
        let dir = root.join(target);
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join(format!("seed-{name}")), bytes).unwrap();
        written += 1;
    };
    bundle(&mut put);
    cifar_tar(&mut put);
    images(&mut put);
    checkpoints(&mut put);
    println!("seeds: {written} files in {}", root.display());
}

/// Deterministic pixels that differ between images.
fn pixels(seed: usize) -> Vec<u8> {
    (0..PIXELS).map(|p| ((seed * 89 + p * 7 + p / 1024 * 13) % 256) as u8).collect()
}

fn records(labels: &[u8], seed: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, &l) in labels.iter().enumerate() {
        out.push(l);
        out.extend(pixels(seed + i));
    }
    out
}

// -------------------------------------------------------------------------------------------
// bundle: flag byte, manifest JSON, 0, train file, test file

/// Name, classes, train labels, test labels.
type BundleCase = (&'static str, &'static [&'static str], &'static [u8], &'static [u8]);

fn bundle(put: &mut impl FnMut(&str, &str, &[u8])) {
    let cases: [BundleCase; 3] = [
        ("cifar2", &["airplane", "bird"], &[0, 1], &[1]),
        ("cifar3", &["bird", "airplane", "cat"], &[2, 0, 1], &[0, 2]),
        ("empty-test", &["airplane", "bird"], &[1, 0], &[]),
    ];
    for (name, classes, train_labels, test_labels) in cases {
        let (train, test) = (records(train_labels, 1), records(test_labels, 50));
        let source = SourceInfo {
            kind: "image-folder".into(),
            location: "/seeds/images".into(),
            fingerprint: sha256_hex(name.as_bytes()),
        };
        let m = Manifest::for_records(classes.iter().map(|c| c.to_string()).collect(), &train, &test, source);
        for flags in [0u8, 1, 2, 3 | (2 << 3)] {
            let mut input = vec![flags];
            input.extend(m.to_json().as_bytes());
            input.push(0);
            input.extend(&train);
            input.extend(&test);
            put("bundle", &format!("{name}-flags{flags}"), &input);
        }
        // The same manifest as binary fields (flag bit 2), with the real hashes (bit 0).
        let mut input = vec![4 | 1, classes.len() as u8];
        for s in [&m.train, &m.test] {
            for v in [s.count as u64, s.bytes].into_iter().chain(s.per_class.iter().map(|&n| n as u64)) {
                input.extend(v.to_le_bytes());
            }
        }
        input.extend(&train);
        input.extend(&test);
        put("bundle", &format!("{name}-binary"), &input);
    }
}

// -------------------------------------------------------------------------------------------
// cifar_tar: mode byte, then a tar (bit 0 clear) or a .tar.gz (bit 0 set)

fn cifar_tar(put: &mut impl FnMut(&str, &str, &[u8])) {
    // One record per batch (labels airplane 0, bird 2, cat 3 and others), not in batch order,
    // with the release's other files around them.
    let batch =
        |name: &str, labels: &[u8], seed: usize| (format!("cifar-10-batches-bin/{name}"), records(labels, seed));
    let members = vec![
        ("cifar-10-batches-bin/batches.meta.txt".to_string(), b"airplane\nautomobile\nbird\ncat\n".to_vec()),
        batch("test_batch.bin", &[2, 0], 10),
        batch("data_batch_3.bin", &[0], 20),
        batch("data_batch_1.bin", &[2], 30),
        batch("data_batch_2.bin", &[3], 40),
        batch("data_batch_5.bin", &[9], 50),
        batch("data_batch_4.bin", &[0], 60),
        ("cifar-10-batches-bin/readme.html".to_string(), b"<p>seed</p>".to_vec()),
    ];
    let plain = archive::tar(&members);
    for mode in [0u8, 2, 4] {
        put("cifar_tar", &format!("tar-mode{mode}"), &[&[mode][..], &plain].concat());
    }
    put("cifar_tar", "targz-mode1", &[&[1u8][..], &archive::gzip(&plain)].concat());
    // Near misses: a batch with a partial record, a missing test batch.
    let mut partial = members.clone();
    partial[3].1.truncate(RECORD_BYTES - 5);
    put("cifar_tar", "tar-partial", &[&[0u8][..], &archive::tar(&partial)].concat());
    put("cifar_tar", "tar-no-test", &[&[0u8][..], &archive::tar(&members[2..])].concat());
}

// -------------------------------------------------------------------------------------------
// image_folder: one image file

fn encode(img: image::DynamicImage, format: image::ImageFormat) -> Vec<u8> {
    let mut out = Cursor::new(Vec::new());
    img.write_to(&mut out, format).unwrap();
    out.into_inner()
}

fn images(put: &mut impl FnMut(&str, &str, &[u8])) {
    let rgb = |w: u32, h: u32| {
        image::RgbImage::from_fn(w, h, |x, y| image::Rgb([(x * 8) as u8, (y * 8) as u8, ((x + y) * 4) as u8]))
    };
    let png = image::ImageFormat::Png;
    put("image_folder", "rgb.png", &encode(rgb(32, 32).into(), png));
    put("image_folder", "rgb.jpg", &encode(rgb(32, 32).into(), image::ImageFormat::Jpeg));
    put("image_folder", "narrow.png", &encode(rgb(31, 32).into(), png));
    put("image_folder", "grey.png", &encode(image::GrayImage::new(32, 32).into(), png));
    put("image_folder", "grey.jpg", &encode(image::GrayImage::new(32, 32).into(), image::ImageFormat::Jpeg));
    put("image_folder", "rgba.png", &encode(image::RgbaImage::new(32, 32).into(), png));
}

// -------------------------------------------------------------------------------------------
// checkpoint: one safetensors file

fn model(layers: &[usize], activation: Activation, loss: LossKind) -> Mlp {
    let config = ModelConfig::mlp(layers.to_vec(), activation, loss);
    let mut m = Mlp::zeros(&config).unwrap();
    for (i, p) in m.params.iter_mut().enumerate() {
        *p = ((i * 37 % 101) as f32 - 50.0) * 0.01;
    }
    m
}

/// What `safetensors.torch.save_file(model.state_dict(), f)` writes: no skywatch metadata.
fn pytorch_file(m: &Mlp) -> Vec<u8> {
    let saved = checkpoint::save(m);
    let st = safetensors::SafeTensors::deserialize(&saved).unwrap().tensors();
    let views =
        st.into_iter().map(|(name, t)| (name, TensorView::new(Dtype::F32, t.shape().to_vec(), t.data()).unwrap()));
    safetensors::serialize(views, Some(HashMap::from([("format".to_string(), "pt".to_string())]))).unwrap()
}

fn checkpoints(put: &mut impl FnMut(&str, &str, &[u8])) {
    let small = model(&[4, 3, 2], Activation::Tanh, LossKind::Nll);
    put("checkpoint", "small.safetensors", &checkpoint::save(&small));
    put("checkpoint", "small-pytorch.safetensors", &pytorch_file(&small));
    let deep = model(&[6, 5, 4, 3], Activation::Relu, LossKind::CrossEntropy);
    put("checkpoint", "deep.safetensors", &checkpoint::save(&deep));
    put("checkpoint", "deep-pytorch.safetensors", &pytorch_file(&deep));
    // The lecture's input width, so load_exact gets past the first layer.
    let wide = model(&[3072, 2], Activation::Tanh, LossKind::Nll);
    put("checkpoint", "wide-pytorch.safetensors", &pytorch_file(&wide));
}
