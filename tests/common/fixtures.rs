//! Data made up for the tests, seeded, so that a test gives the same result on every run.

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use skywatch::data::{Dataset, Manifest, PIXELS, RECORD_BYTES, SourceInfo, Split};
use std::fs;
use std::path::Path;

/// A CIFAR-2-shaped dataset (`train` and `test` images of 3x32x32 bytes, classes airplane and
/// bird): random pixels from the seed's ChaCha8 stream, labels alternating 0, 1, 0, ...
pub fn synthetic_cifar2(train: usize, test: usize, seed: u64) -> Dataset {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut split = |n: usize| {
        let mut rec = vec![0u8; n * RECORD_BYTES];
        for (i, r) in rec.chunks_exact_mut(RECORD_BYTES).enumerate() {
            r[0] = (i % 2) as u8;
            rng.fill(&mut r[1..=PIXELS]);
        }
        Split::from_records("synthetic", 2, rec).expect("valid synthetic records")
    };
    Dataset { classes: vec!["airplane".into(), "bird".into()], train: split(train), test: split(test) }
}

/// Writes `data` as a bundle folder, as `skywatch data` does: `manifest.json` and the two record
/// files it names.
pub fn write_bundle(dir: &Path, data: &Dataset) {
    let (train, test) = (data.train.records(), data.test.records());
    let source = SourceInfo { kind: "synthetic".into(), location: "tests".into(), fingerprint: String::new() };
    let m = Manifest::for_records(data.classes.clone(), train, test, source);
    fs::create_dir_all(dir).unwrap();
    fs::write(dir.join(&m.train.file), train).unwrap();
    fs::write(dir.join(&m.test.file), test).unwrap();
    fs::write(dir.join("manifest.json"), m.to_json()).unwrap();
}
