//! The CIFAR-10 binary archive reader, `data::build::read_archive_from`, through which the
//! archive and download sources of `skywatch data` read their `.tar.gz`.
//!
//! Input: one mode byte, then the archive. Mode bit 0 set: the rest is the `.tar.gz` itself.
//! Clear: the rest is a tar, gzipped here first (a fuzzer mutating compressed bytes rarely gets
//! past the gzip CRC, so this is what reaches the tar reading and the batch parsing). Bits 1..7
//! pick the classes kept: `airplane, bird`, `bird, airplane, cat` or all ten.
//!
//! Never panics; on success every record has a label below the class count, and for a plain tar
//! the records are exactly what an independent walk over the tar's members expects (batches 1..5
//! in order, then the test batch, filtered to the classes and relabelled).
#![no_main]

#[path = "../../tests/common/archive.rs"]
mod archive;

use libfuzzer_sys::fuzz_target;
use skywatch::data::build::{BATCH_FILES, read_archive_from};
use skywatch::data::{CIFAR10_CLASSES, RECORD_BYTES, Split};
use std::io::Read;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, payload)) = data.split_first() else {
        return;
    };
    let classes: Vec<String> = match (mode >> 1) % 3 {
        0 => vec!["airplane".into(), "bird".into()],
        1 => vec!["bird".into(), "airplane".into(), "cat".into()],
        _ => CIFAR10_CLASSES.iter().map(|c| c.to_string()).collect(),
    };
    let gzipped;
    let archive = if mode & 1 == 1 {
        payload
    } else {
        gzipped = archive::gzip(payload);
        &gzipped[..]
    };
    let Ok((train, test)) = read_archive_from(archive, "fuzz.tar.gz", &classes) else {
        return;
    };
    for split in [&train, &test] {
        check_split(split, classes.len());
    }
    if mode & 1 == 0 {
        let (want_train, want_test) = expected(payload, &classes);
        assert!(train.records() == want_train, "train records differ from the tar's members");
        assert!(test.records() == want_test, "test records differ from the tar's members");
    }
});

fn check_split(split: &Split, k: usize) {
    assert_eq!(split.records().len(), split.len() * RECORD_BYTES);
    for i in 0..split.len() {
        assert!(usize::from(split.label(i)) < k, "label {} of record {i}, {k} classes", split.label(i));
    }
}

/// The records a correct reader returns for the tar `bytes` that it accepted.
fn expected(bytes: &[u8], classes: &[String]) -> (Vec<u8>, Vec<u8>) {
    let mut members: [Vec<u8>; 6] = Default::default();
    let mut archive = tar::Archive::new(bytes);
    for entry in archive.entries().expect("the reader accepted this tar") {
        let mut entry = entry.expect("the reader accepted this tar");
        let path = entry.path().unwrap().to_string_lossy().into_owned();
        let name = Path::new(&path).file_name().and_then(|n| n.to_str()).unwrap_or_default();
        if let Some(b) = BATCH_FILES.iter().position(|m| *m == name) {
            entry.read_to_end(&mut members[b]).unwrap();
        }
    }
    let keep = |batches: &[Vec<u8>]| {
        let mut out = Vec::new();
        for rec in batches.iter().flat_map(|b| b.chunks_exact(RECORD_BYTES)) {
            let name = CIFAR10_CLASSES[usize::from(rec[0])];
            if let Some(new) = classes.iter().position(|c| c == name) {
                out.push(new as u8);
                out.extend_from_slice(&rec[1..]);
            }
        }
        out
    };
    (keep(&members[..5]), keep(&members[5..]))
}
