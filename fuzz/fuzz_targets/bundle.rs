//! The bundle reader: `Manifest::parse` on arbitrary JSON, then `Dataset::from_bundle` (or
//! `from_bundle_hashed`, as the browser calls it) and so `Split::from_bytes` on arbitrary files,
//! plus `Split::from_records` on the same bytes without a manifest.
//!
//! Input: one flag byte, then the manifest and the bytes of the two files: the train file is the
//! first `train.bytes` of them (or all there are), the test file the rest. The manifest is either
//! JSON text up to a 0 byte, or (flag bit 2) built here from binary fields: a class count (u8),
//! then per split `count`, `bytes` and one `per_class` entry per class, each a little-endian u64
//! (the numbers are what the checks are about, and a fuzzer rarely makes consistent ones by
//! editing JSON digits; binary values let libFuzzer's comparison tracing fill them in).
//! Flags: bit 0 gives the parsed manifest the real sha256 of each file (a fuzzer cannot forge a
//! hash, and the label checks behind it would otherwise only ever see the seeds); bit 1 passes
//! each file's digest in, in upper case, as the browser does; bits 3..7 are the class count
//! (1..32) for `Split::from_records`.
//!
//! Never panics; whatever is accepted is consistent: a manifest that parses is internally
//! consistent and survives a round trip through JSON; a dataset holds exactly the manifest's
//! files, every label is below the class count, and the counts per class are the manifest's.
#![no_main]

use libfuzzer_sys::fuzz_target;
use skywatch::data::{Dataset, FORMAT_NAME, FORMAT_VERSION, Manifest, RECORD_BYTES, Split, SplitInfo, sha256_hex};

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let (json, files) = if flags & 4 != 0 {
        structured(rest)
    } else {
        match rest.iter().position(|&b| b == 0) {
            Some(i) => (rest[..i].to_vec(), &rest[i + 1..]),
            None => (rest.to_vec(), &[][..]),
        }
    };

    let k = usize::from(flags >> 3) + 1;
    if let Ok(split) = Split::from_records("fuzz", k, files.to_vec()) {
        assert_eq!(split.records(), files);
        check_split(&split, k);
    }

    let Ok(mut m) = Manifest::parse(&json) else {
        return;
    };
    let k = m.classes.len();
    assert!((2..=256).contains(&k), "{} classes accepted", k);
    for s in [&m.train, &m.test] {
        assert_eq!(s.per_class.len(), k, "{s:?}");
        assert_eq!(s.per_class.iter().map(|&n| n as u128).sum::<u128>(), s.count as u128, "{s:?}");
        assert_eq!(s.bytes as u128, s.count as u128 * RECORD_BYTES as u128, "{s:?}");
        assert!(!s.file.contains(['/', '\\']) && !s.file.starts_with('.'), "{s:?}");
    }
    let again = Manifest::parse(m.to_json().as_bytes()).expect("an accepted manifest reads back");
    assert_eq!(again, m);

    let cut = usize::try_from(m.train.bytes).unwrap_or(usize::MAX).min(files.len());
    let (train, test) = files.split_at(cut);
    if flags & 1 != 0 {
        m.train.sha256 = sha256_hex(train);
        m.test.sha256 = sha256_hex(test);
    }
    let result = if flags & 2 != 0 {
        let (a, b) = (sha256_hex(train).to_uppercase(), sha256_hex(test).to_uppercase());
        Dataset::from_bundle_hashed(&m, (train.to_vec(), Some(&a)), (test.to_vec(), Some(&b)))
    } else {
        Dataset::from_bundle(&m, train.to_vec(), test.to_vec())
    };
    let Ok(d) = result else {
        return;
    };
    assert_eq!(d.classes, m.classes);
    for (split, info, bytes) in [(&d.train, &m.train, train), (&d.test, &m.test, test)] {
        check_file(split, info, bytes, k);
    }
});

fn check_split(split: &Split, k: usize) {
    assert_eq!(split.records().len(), split.len() * RECORD_BYTES);
    assert_eq!(split.is_empty(), split.records().is_empty());
    for i in 0..split.len() {
        assert!(usize::from(split.label(i)) < k, "label {} of record {i}, {k} classes", split.label(i));
        assert_eq!(split.image(i).len(), RECORD_BYTES - 1);
    }
    assert_eq!(split.counts(k).iter().sum::<usize>(), split.len());
}

fn check_file(split: &Split, info: &SplitInfo, bytes: &[u8], k: usize) {
    assert_eq!(split.records(), bytes);
    assert_eq!(sha256_hex(bytes), info.sha256);
    assert_eq!(split.len(), info.count);
    check_split(split, k);
    assert_eq!(split.counts(k), info.per_class, "the records disagree with the manifest's counts per class");
}

/// Manifest JSON from binary fields (see the top), and the bytes after them.
fn structured(mut input: &[u8]) -> (Vec<u8>, &[u8]) {
    let mut take = |n: usize| {
        let (head, tail) = input.split_at(n.min(input.len()));
        input = tail;
        head
    };
    let classes = take(1).first().copied().unwrap_or(0) as usize;
    let mut u64s = |n: usize| -> Vec<u64> {
        (0..n)
            .map(|_| {
                let mut b = [0u8; 8];
                let got = take(8);
                b[..got.len()].copy_from_slice(got);
                u64::from_le_bytes(b)
            })
            .collect()
    };
    let mut split = |file: &str| {
        let counts = u64s(2);
        serde_json::json!({
            "file": file, "count": counts[0], "bytes": counts[1], "per_class": u64s(classes), "sha256": "0",
        })
    };
    let (train, test) = (split("train.bin"), split("test.bin"));
    let json = serde_json::json!({
        "format": FORMAT_NAME,
        "version": FORMAT_VERSION,
        "classes": (0..classes).map(|c| format!("class{c}")).collect::<Vec<_>>(),
        "image_shape": [3, 32, 32],
        "record_bytes": RECORD_BYTES,
        "train": train,
        "test": test,
        "source": { "kind": "fuzz", "location": "", "fingerprint": "" },
    });
    (serde_json::to_vec(&json).unwrap(), input)
}
