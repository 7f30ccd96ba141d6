//! Version 2 of the bundle format: each split stored as the records through the per-channel
//! "sub" + "up" pixel predictor, then deflated (`skywatch::data::codec`). The sha256 covers the
//! file as stored (what a browser downloads), the decoded pixels equal the raw ones exactly, and
//! version-1 (raw) bundles still load. Also: `skywatch build` writes both bundles as version 2
//! and precompressed `.br` / `.gz` siblings of its text and wasm assets that decode to the asset.
#![cfg(all(feature = "cli", not(target_arch = "wasm32")))]

mod common;

use common::fixtures::{synthetic_cifar2, write_bundle};
use skywatch::data::build::{FILES_JS, subset};
use skywatch::data::codec::{self, SUB_UP_DEFLATE};
use skywatch::data::{Dataset, ENCODED_VERSION, FORMAT_VERSION, Manifest, SourceInfo, Split, sha256_hex};
use std::fs;
use std::io::Read;

fn source() -> SourceInfo {
    SourceInfo { kind: "synthetic".into(), location: "tests".into(), fingerprint: String::new() }
}

/// Labels 0/1 and smooth planes (a gradient plus a per-record offset), the kind of picture the
/// predictor is for: unlike random pixels, they compress.
fn smooth_records(n: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for i in 0..n {
        out.push((i % 2) as u8);
        for c in 0..3 {
            for y in 0..32 {
                for x in 0..32 {
                    out.push((i * 7 + c * 40 + x * 3 + y * 2) as u8);
                }
            }
        }
    }
    out
}

#[test]
fn an_encoded_bundle_decodes_to_the_raw_pixels_exactly() {
    let data = synthetic_cifar2(30, 12, 3);
    let (m, files) = Manifest::encoded(data.classes.clone(), data.train.records(), data.test.records(), source());
    assert_eq!(m.version, ENCODED_VERSION);
    assert_eq!(m.train.encoding.as_deref(), Some(SUB_UP_DEFLATE));
    assert_eq!(m.train.bytes, 30 * 3073, "bytes: the decoded records");
    assert_eq!(m.train.stored_bytes, Some(files[0].len() as u64), "stored_bytes: the file");
    assert_eq!(m.train.sha256, sha256_hex(&files[0]), "sha256: the file as stored");
    assert!(m.train.file.starts_with("train-") && m.train.file.ends_with(".deflate"), "{}", m.train.file);
    // Round trip through the JSON the browser reads.
    let m = Manifest::parse(m.to_json().as_bytes()).unwrap();
    let train = Split::from_file(&m.train, 2, files[0].clone()).unwrap();
    let test = Split::from_file(&m.test, 2, files[1].clone()).unwrap();
    assert_eq!(train.records(), data.train.records());
    assert_eq!(test.records(), data.test.records());
}

#[test]
fn the_predictor_makes_smooth_pictures_smaller_than_deflate_alone() {
    let records = smooth_records(40);
    let stored = codec::encode(&records);
    let mut plain = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
    std::io::Write::write_all(&mut plain, &records).unwrap();
    let plain = plain.finish().unwrap();
    assert!(stored.len() < plain.len() / 2, "predicted {} bytes, deflate alone {}", stored.len(), plain.len());
}

#[test]
fn the_browser_path_inflated_bytes_and_the_downloaded_digest_load() {
    // What the worker hands to wasm: the file inflated by DecompressionStream('deflate'), and the
    // sha256 of the file as downloaded.
    let records = smooth_records(10);
    let (m, files) =
        Manifest::encoded(vec!["airplane".into(), "bird".into()], &records, &records[..3073 * 4], source());
    let mut inflated = Vec::new();
    flate2::read::ZlibDecoder::new(&files[0][..]).read_to_end(&mut inflated).unwrap();
    let split = Split::from_bytes(&m.train, 2, inflated.clone(), Some(&sha256_hex(&files[0]))).unwrap();
    assert_eq!(split.records(), &records[..]);
    // Without the digest there is nothing to check the download against.
    let e = Split::from_bytes(&m.train, 2, inflated.clone(), None).unwrap_err().to_string();
    assert!(e.contains("needs the sha256 of the file as stored"), "{e}");
    // The digest of the inflated bytes is not the one of the download.
    let e = Split::from_bytes(&m.train, 2, inflated.clone(), Some(&sha256_hex(&inflated))).unwrap_err().to_string();
    assert!(e.contains("sha256 checksum mismatch") && e.contains(&m.train.file), "{e}");
}

#[test]
fn a_corrupt_or_truncated_encoded_file_is_refused_naming_it() {
    let records = smooth_records(8);
    let (m, files) = Manifest::encoded(vec!["airplane".into(), "bird".into()], &records, &records, source());
    let mut bad = files[0].clone();
    let mid = bad.len() / 2;
    bad[mid] ^= 0x55;
    let e = Split::from_file(&m.train, 2, bad).unwrap_err().to_string();
    assert!(e.contains("sha256 checksum mismatch") && e.contains(&m.train.file), "{e}");

    // A stream that matches its manifest entry but does not inflate to the records: the entry
    // rewritten for a truncated stream.
    let short = files[0][..files[0].len() / 2].to_vec();
    let mut info = m.train.clone();
    info.sha256 = sha256_hex(&short);
    info.stored_bytes = Some(short.len() as u64);
    let e = Split::from_file(&info, 2, short).unwrap_err().to_string();
    assert!(e.contains(&m.train.file) && (e.contains("deflate") || e.contains("decoded to")), "{e}");
}

#[test]
fn the_manifest_must_say_how_a_split_is_stored() {
    let records = smooth_records(4);
    let (m, _) = Manifest::encoded(vec!["airplane".into(), "bird".into()], &records, &records, source());
    let json = m.to_json();
    let refused = |json: &str, what: &str| {
        let e = Manifest::parse(json.as_bytes()).unwrap_err().to_string();
        assert!(e.contains(what), "{e}");
    };
    refused(&json.replace("\"version\": 2", "\"version\": 3"), "versions 1 and 2");
    refused(&json.replacen(SUB_UP_DEFLATE, "xz", 1), "encoding 'xz' is not supported");
    refused(&json.replace("\"version\": 2", "\"version\": 1"), "a version-1 split has no `encoding`");
    let raw = Manifest::for_records(vec!["airplane".into(), "bird".into()], &records, &records, source());
    assert_eq!(raw.version, FORMAT_VERSION);
    refused(&raw.to_json().replace("\"version\": 1", "\"version\": 2"), "needs `encoding` and `stored_bytes`");
}

#[test]
fn subset_writes_version_2_with_its_files_module_and_version_1_still_loads() {
    let tmp = tempfile::tempdir().unwrap();
    let data = synthetic_cifar2(24, 10, 9);
    write_bundle(&tmp.path().join("raw"), &data);
    // The raw (version-1) bundle loads as before.
    assert_eq!(Dataset::load(&tmp.path().join("raw")).unwrap(), data);

    let out = tmp.path().join("quick");
    let m = subset(&tmp.path().join("raw"), &out, 24, 10, true).unwrap().manifest().clone();
    assert_eq!(m.version, ENCODED_VERSION);
    assert_eq!(Dataset::load(&out).unwrap(), data, "decoded pixels and labels equal the raw ones");
    let js = fs::read_to_string(out.join(FILES_JS)).unwrap();
    for name in ["manifest.json", &m.train.file, &m.test.file] {
        assert!(js.contains(&format!("new URL('./{name}', import.meta.url)")), "{js}");
    }
    // Up to date: a second run writes nothing; a raw subset of the same is a different bundle.
    assert_eq!(subset(&tmp.path().join("raw"), &out, 24, 10, true).unwrap().verb(), "up to date");
    let raw = subset(&tmp.path().join("raw"), &out, 24, 10, false).unwrap();
    assert_eq!((raw.verb(), raw.manifest().version), ("built", FORMAT_VERSION));
    assert_eq!(Dataset::load(&out).unwrap(), data);
}

fn gunzip(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(bytes).read_to_end(&mut out).unwrap();
    out
}

fn unbrotli(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    brotli::Decompressor::new(bytes, 4096).read_to_end(&mut out).unwrap();
    out
}

#[test]
fn skywatch_build_writes_precompressed_siblings_and_encoded_bundles() {
    use skywatch::site::{self, BUILT_DIRS, PAGE_DIRS, PAGE_FILES, SiteOptions, WIDGET_FILES};
    let tmp = tempfile::tempdir().unwrap();
    let www = tmp.path().join("www");
    for d in PAGE_DIRS.iter().chain(BUILT_DIRS) {
        fs::create_dir_all(www.join(d)).unwrap();
    }
    let wasm = ["pkg/skywatch_bg.wasm", "pkg-threads/skywatch_bg.wasm"];
    for f in PAGE_FILES.iter().chain(WIDGET_FILES).chain(&wasm) {
        let path = www.join(f);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        // Repetitive, so that both compressors gain.
        fs::write(path, format!("// {f}\n").repeat(50)).unwrap();
    }
    let data = synthetic_cifar2(30, 14, 2);
    write_bundle(&tmp.path().join("data"), &data);
    let out = tmp.path().join("out");
    let opts = SiteOptions {
        out: out.clone(),
        www,
        data: tmp.path().join("data"),
        quick_train: 20,
        quick_test: 10,
        full_data: true,
        force: false,
    };
    let report = site::build(&opts).unwrap();
    assert!(report.contains("quick data") && report.contains("brotli"), "{report}");
    for f in ["widget.js", "worker.js", "index.html", "widget.css", "pkg/skywatch_bg.wasm"] {
        let original = fs::read(out.join(f)).unwrap();
        assert_eq!(gunzip(&fs::read(out.join(format!("{f}.gz"))).unwrap()), original, "{f}.gz");
        assert_eq!(unbrotli(&fs::read(out.join(format!("{f}.br"))).unwrap()), original, "{f}.br");
    }
    // The bundles are deflated already: no siblings; both are version 2 and decode exactly.
    for dir in ["data-quick", "data"] {
        let m = Manifest::parse(&fs::read(out.join(dir).join("manifest.json")).unwrap()).unwrap();
        assert_eq!(m.version, ENCODED_VERSION, "{dir}");
        assert!(!out.join(dir).join(format!("{}.gz", m.train.file)).exists());
    }
    assert_eq!(Dataset::load(&out.join("data")).unwrap(), data);
    let quick = Dataset::load(&out.join("data-quick")).unwrap();
    assert_eq!(quick.train.records(), &data.train.records()[..20 * 3073]);
}
