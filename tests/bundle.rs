//! Reading a bundle (the page's and the CLI's path): every fault is named, with the file and,
//! where it applies, the byte offset; nothing half-read is ever used.
#![cfg(not(target_arch = "wasm32"))] // native; tests/wasm.rs holds the tests that run in the browser

mod common;

use common::fixtures::synthetic_cifar2;
use skywatch::data::{Dataset, Manifest, RECORD_BYTES, SourceInfo, sha256_hex};

fn bundle() -> (Manifest, Vec<u8>, Vec<u8>) {
    let d = synthetic_cifar2(10, 4, 1);
    let (train, test) = (d.train.records().to_vec(), d.test.records().to_vec());
    let source = SourceInfo { kind: "synthetic".into(), location: "test".into(), fingerprint: String::new() };
    let mut m = Manifest::for_records(vec!["airplane".into(), "bird".into()], &train, &test, source);
    // Short names, for the messages below.
    m.train.file = "train-x.bin".into();
    m.test.file = "test-x.bin".into();
    (m, train, test)
}

fn err(m: &Manifest, train: Vec<u8>, test: Vec<u8>) -> String {
    Dataset::from_bundle(m, train, test).unwrap_err().to_string()
}

#[test]
fn a_valid_bundle_reads_back() {
    let (m, train, test) = bundle();
    let back = Manifest::parse(m.to_json().as_bytes()).unwrap();
    let d = Dataset::from_bundle(&back, train, test).unwrap();
    assert_eq!((d.train.len(), d.test.len()), (10, 4));
}

#[test]
fn truncated_corrupt_and_mislabelled_files_are_named() {
    let (m, train, test) = bundle();
    let e = err(&m, train[..train.len() - 100].to_vec(), test.clone());
    assert!(e.starts_with("train-x.bin:") && e.contains("truncated"), "{e}");
    let mut flipped = test.clone();
    flipped[10] ^= 0xff;
    let e = err(&m, train.clone(), flipped);
    assert!(e.starts_with("test-x.bin: sha256 checksum mismatch"), "{e}");
    // A bad label with a matching checksum (a bundle written by a broken tool): its offset.
    let mut bad = train.clone();
    bad[3 * RECORD_BYTES] = 7;
    let mut m2 = m.clone();
    m2.train.sha256 = sha256_hex(&bad);
    let e = err(&m2, bad, test);
    assert!(e.contains("train-x.bin") && e.contains("label 7") && e.contains("at byte 9219"), "{e}");
}

#[test]
fn malformed_manifests_and_other_versions_are_refused() {
    let (m, ..) = bundle();
    let json = m.to_json();
    for (broken, needle) in [
        ("{".to_string(), "not a valid manifest"),
        (json.replace("\"version\": 1", "\"version\": 3"), "bundle format version 3 is not supported"),
        (json.replace("\"version\": 1", "\"version\": 2"), "a version-2 split needs `encoding` and `stored_bytes`"),
        (json.replace("skywatch-cifar-bundle", "something-else"), "format is 'something-else'"),
        (json.replace("\"count\": 10", "\"count\": 11"), "do not add up"),
        (json.replace("train-x.bin", "../train-x.bin"), "must be a plain name"),
        (json.replace("\"image_shape\"", "\"shape\""), "not a valid manifest"),
    ] {
        let e = Manifest::parse(broken.as_bytes()).unwrap_err().to_string();
        assert!(e.starts_with("manifest.json:") && e.contains(needle), "{needle}: {e}");
    }
}

#[cfg(not(target_arch = "wasm32"))] // reading a folder is native only
#[test]
fn a_missing_bundle_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let e = Dataset::load(dir.path()).unwrap_err().to_string();
    assert!(e.contains("manifest.json") && e.contains("No such file"), "{e}");
}
