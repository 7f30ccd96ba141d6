//! Building bundles (`skywatch::data::build`) from archives, extracted folders and image folders
//! generated here, plus one build from the real image folder when `SKYWATCH_DATA_SOURCE` is set.
#![cfg(all(feature = "cli", not(target_arch = "wasm32")))]

#[path = "common/archive.rs"]
mod archive;
mod common;

use md5::{Digest, Md5};
use skywatch::data::build::{BATCH_FILES, BuildOptions, BuildOutcome, FILES_JS, SourceSpec, build, files_js};
use skywatch::data::{CIFAR10_CLASSES, Dataset, Manifest, RECORD_BYTES};
use skywatch::error::Error;
use std::collections::BTreeMap;
use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime};

const PER_BATCH: usize = 30;

// ---------------------------------------------------------------------------------------------
// Fixtures

/// Deterministic records of batch `b` (0..4 train, 5 test): labels cycle 0..9, pixels depend on
/// batch, record and position so that any mix-up shows.
fn batch_records(b: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(PER_BATCH * RECORD_BYTES);
    for r in 0..PER_BATCH {
        out.push((r % 10) as u8);
        for p in 0..RECORD_BYTES - 1 {
            out.push(((b * 97 + r * 31 + p * 7 + p / 1024) % 256) as u8);
        }
    }
    out
}

/// Records of the official order kept for `classes`, relabelled: what a bundle must contain.
fn expected(batches: &[usize], classes: &[&str]) -> (Vec<u8>, Vec<usize>) {
    let mut out = Vec::new();
    let mut per_class = vec![0; classes.len()];
    for &b in batches {
        for rec in batch_records(b).chunks_exact(RECORD_BYTES) {
            let name = CIFAR10_CLASSES[rec[0] as usize];
            if let Some(new) = classes.iter().position(|c| *c == name) {
                out.push(new as u8);
                out.extend_from_slice(&rec[1..]);
                per_class[new] += 1;
            }
        }
    }
    (out, per_class)
}

/// A gzipped tar with the given members (path, bytes), in that order.
fn tar_gz(members: &[(String, Vec<u8>)]) -> Vec<u8> {
    archive::gzip(&archive::tar(members))
}

/// The members of a fake release, deliberately not in batch order and with unrelated files.
fn fake_members() -> Vec<(String, Vec<u8>)> {
    let mut m = vec![("cifar-10-batches-bin/batches.meta.txt".to_string(), CIFAR10_CLASSES.join("\n").into_bytes())];
    for b in [5, 2, 0, 4, 1, 3] {
        m.push((format!("cifar-10-batches-bin/{}", BATCH_FILES[b]), batch_records(b)));
    }
    m.push(("cifar-10-batches-bin/readme.html".to_string(), b"<p>fake</p>".to_vec()));
    m
}

fn md5_hex(bytes: &[u8]) -> String {
    Md5::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// Writes `bytes` as `dir/name` and returns the path and its md5.
fn write_archive(dir: &Path, name: &str, bytes: &[u8]) -> (PathBuf, String) {
    let path = dir.join(name);
    fs::write(&path, bytes).unwrap();
    (path, md5_hex(bytes))
}

fn opts(source: SourceSpec, classes: &[&str], out: &Path, md5: Option<&str>) -> BuildOptions {
    BuildOptions {
        source,
        classes: classes.iter().map(|c| c.to_string()).collect(),
        out: out.to_path_buf(),
        md5: md5.map(str::to_string),
        progress: false,
    }
}

fn archive_opts(archive: &Path, md5: &str, classes: &[&str], out: &Path) -> BuildOptions {
    opts(SourceSpec::Path(archive.to_path_buf()), classes, out, Some(md5))
}

fn built(outcome: BuildOutcome) -> Manifest {
    match outcome {
        BuildOutcome::Built(m) => m,
        BuildOutcome::UpToDate(_) => panic!("expected a new build, got UpToDate"),
    }
}

/// Every entry of a folder (recursively) with its modification time.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, SystemTime> {
    let mut out = BTreeMap::new();
    for entry in fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let meta = entry.metadata().unwrap();
        out.insert(entry.path(), meta.modified().unwrap());
        if meta.is_dir() {
            out.extend(snapshot(&entry.path()));
        }
    }
    out
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> =
        fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    v.sort();
    v
}

fn format_error(e: Error) -> (String, Option<u64>, String) {
    match e {
        Error::Format { file, offset, reason } => {
            // Shown with --nocapture, to read the messages users get.
            eprintln!("error: {file}: {reason} (offset {offset:?})");
            (file, offset, reason)
        }
        other => panic!("expected a Format error, got: {other}"),
    }
}

/// Checks the bundle in `out` against `manifest` and the expected records.
fn check_bundle(out: &Path, manifest: &Manifest, train: &[u8], test: &[u8]) -> Dataset {
    let on_disk = Manifest::parse(&fs::read(out.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(&on_disk, manifest);
    assert_eq!(fs::read(out.join(&manifest.train.file)).unwrap(), train);
    assert_eq!(fs::read(out.join(&manifest.test.file)).unwrap(), test);
    assert!(manifest.train.file.starts_with("train-") && manifest.train.file.ends_with(".bin"));
    assert!(manifest.test.file.starts_with("test-") && manifest.test.file.ends_with(".bin"));
    assert_eq!(fs::read_to_string(out.join(FILES_JS)).unwrap(), files_js(manifest));
    assert_eq!(
        names(out),
        {
            let mut v = vec![
                "files.js".to_string(),
                "manifest.json".to_string(),
                manifest.train.file.clone(),
                manifest.test.file.clone(),
            ];
            v.sort();
            v
        },
        "the bundle folder holds exactly the manifest, its two files and the module naming them"
    );
    let ds = Dataset::load(out).unwrap();
    assert_eq!(ds.train.records(), train);
    assert_eq!(ds.test.records(), test);
    ds
}

// ---------------------------------------------------------------------------------------------
// The CIFAR-10 binary archive

#[test]
fn archive_builds_relabelled_bundle_in_official_order() {
    let tmp = tempfile::tempdir().unwrap();
    let (archive, md5) = write_archive(tmp.path(), "cifar.tar.gz", &tar_gz(&fake_members()));
    let out = tmp.path().join("a/b/bundle");
    let classes = ["bird", "airplane"];
    let m = built(build(&archive_opts(&archive, &md5, &classes, &out)).unwrap());

    let (train, train_pc) = expected(&[0, 1, 2, 3, 4], &classes);
    let (test, test_pc) = expected(&[5], &classes);
    assert_eq!(m.classes, ["bird", "airplane"]);
    assert_eq!(m.train.count, 5 * PER_BATCH / 10 * 2);
    assert_eq!(m.train.per_class, [15, 15]);
    assert_eq!(m.train.per_class, train_pc);
    assert_eq!(m.test.count, 6);
    assert_eq!(m.test.per_class, test_pc);
    assert_eq!(m.record_bytes, 3073);
    assert_eq!(m.image_shape, [3, 32, 32]);
    assert_eq!(m.source.kind, "cifar-10-binary");
    assert_eq!(m.source.fingerprint.len(), 64);
    // Bird (official label 2) is label 0 now; record 0 of batch 1 is an airplane.
    assert_eq!(train[0], 1);
    assert_eq!(train[RECORD_BYTES], 0);
    let ds = check_bundle(&out, &m, &train, &test);
    assert_eq!(ds.classes, ["bird", "airplane"]);
    assert_eq!(ds.train.counts(2), [15, 15]);
}

#[test]
fn rerun_is_up_to_date_and_touches_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let (archive, md5) = write_archive(tmp.path(), "cifar.tgz", &tar_gz(&fake_members()));
    let out = tmp.path().join("bundle");
    let o = archive_opts(&archive, &md5, &["airplane", "bird"], &out);
    let first = built(build(&o).unwrap());
    let before = snapshot(&out);
    std::thread::sleep(Duration::from_millis(20));
    match build(&o).unwrap() {
        BuildOutcome::UpToDate(m) => assert_eq!(m, first),
        BuildOutcome::Built(_) => panic!("second build of the same input was not UpToDate"),
    }
    assert_eq!(snapshot(&out), before, "an up-to-date build changed files");

    // A damaged record file is noticed and the bundle rebuilt.
    fs::write(out.join(&first.train.file), b"damaged").unwrap();
    let again = built(build(&o).unwrap());
    assert_eq!(again, first);
    let (train, _) = expected(&[0, 1, 2, 3, 4], &["airplane", "bird"]);
    let (test, _) = expected(&[5], &["airplane", "bird"]);
    check_bundle(&out, &again, &train, &test);
}

#[test]
fn new_classes_replace_the_old_files() {
    let tmp = tempfile::tempdir().unwrap();
    let (archive, md5) = write_archive(tmp.path(), "cifar.tar.gz", &tar_gz(&fake_members()));
    let out = tmp.path().join("bundle");
    let old = built(build(&archive_opts(&archive, &md5, &["airplane", "bird"], &out)).unwrap());
    let classes = ["cat", "dog", "truck"];
    let m = built(build(&archive_opts(&archive, &md5, &classes, &out)).unwrap());
    assert_ne!(m.train.file, old.train.file);
    assert_eq!(m.train.per_class, [15, 15, 15]);
    let (train, _) = expected(&[0, 1, 2, 3, 4], &classes);
    let (test, _) = expected(&[5], &classes);
    // check_bundle also asserts that the old record files are gone.
    check_bundle(&out, &m, &train, &test);
}

#[test]
fn truncated_archive_is_a_format_error_and_leaves_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let full = tar_gz(&fake_members());
    for cut in [full.len() / 2, full.len() - 3, 30] {
        let (archive, md5) = write_archive(tmp.path(), "cut.tar.gz", &full[..cut]);
        let out = tmp.path().join("new/bundle");
        let err = build(&archive_opts(&archive, &md5, &["airplane", "bird"], &out)).unwrap_err();
        let msg = err.to_string();
        let (file, _, reason) = format_error(err);
        assert!(file.contains("cut.tar.gz"), "{msg}");
        assert!(reason.contains("truncated or corrupt") || reason.contains("missing"), "{msg}");
        assert!(!tmp.path().join("new").exists(), "output left behind: {msg}");
        assert_eq!(names(tmp.path()), ["cut.tar.gz"], "stray files: {msg}");
    }
}

#[test]
fn corrupt_gzip_is_a_format_error() {
    let tmp = tempfile::tempdir().unwrap();
    let mut bytes = tar_gz(&fake_members());
    let n = bytes.len();
    for b in &mut bytes[n / 3..n / 3 + 64] {
        *b ^= 0x5a;
    }
    let (archive, md5) = write_archive(tmp.path(), "bad.tar.gz", &bytes);
    let out = tmp.path().join("bundle");
    let err = build(&archive_opts(&archive, &md5, &["airplane", "bird"], &out)).unwrap_err();
    let (file, _, _) = format_error(err);
    assert!(file.contains("bad.tar.gz"));
    assert!(!out.exists());
}

#[test]
fn wrong_md5_is_a_checksum_error() {
    let tmp = tempfile::tempdir().unwrap();
    let (archive, md5) = write_archive(tmp.path(), "cifar.tar.gz", &tar_gz(&fake_members()));
    let out = tmp.path().join("bundle");
    let wrong = "0123456789abcdef0123456789abcdef";
    match build(&archive_opts(&archive, wrong, &["airplane", "bird"], &out)) {
        Err(Error::Checksum { file, algorithm, expected, actual }) => {
            assert!(file.contains("cifar.tar.gz"));
            assert_eq!(algorithm, "md5");
            assert_eq!(expected, wrong);
            assert_eq!(actual, md5);
        }
        other => panic!("expected a Checksum error, got {other:?}"),
    }
    // Without an md5 the official one is expected, which a fake archive does not have.
    let no_md5 = opts(SourceSpec::Path(archive.clone()), &["airplane", "bird"], &out, None);
    assert!(matches!(build(&no_md5), Err(Error::Checksum { .. })));
    // A malformed md5 is a configuration error.
    let bad = archive_opts(&archive, "xyz", &["airplane", "bird"], &out);
    assert!(matches!(build(&bad), Err(Error::Config(_))));
    assert!(!out.exists());
}

#[test]
fn member_with_partial_record_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    let mut members = fake_members();
    for (path, bytes) in &mut members {
        if path.ends_with("data_batch_3.bin") {
            bytes.extend_from_slice(&[1, 2, 3, 4, 5]);
        }
    }
    let (archive, md5) = write_archive(tmp.path(), "cifar.tar.gz", &tar_gz(&members));
    let out = tmp.path().join("bundle");
    let err = build(&archive_opts(&archive, &md5, &["airplane", "bird"], &out)).unwrap_err();
    let msg = err.to_string();
    let (file, _, reason) = format_error(err);
    assert!(file.contains("cifar.tar.gz") && file.ends_with("cifar-10-batches-bin/data_batch_3.bin"), "{msg}");
    assert!(reason.contains("not a whole number of 3073-byte records"), "{msg}");
    assert!(!out.exists());
}

#[test]
fn bad_label_gives_its_byte_offset() {
    let tmp = tempfile::tempdir().unwrap();
    let mut members = fake_members();
    for (path, bytes) in &mut members {
        if path.ends_with("data_batch_2.bin") {
            bytes[7 * RECORD_BYTES] = 12;
        }
    }
    let (archive, md5) = write_archive(tmp.path(), "cifar.tar.gz", &tar_gz(&members));
    let out = tmp.path().join("bundle");
    let err = build(&archive_opts(&archive, &md5, &["airplane", "bird"], &out)).unwrap_err();
    let msg = err.to_string();
    let (file, offset, reason) = format_error(err);
    assert!(file.ends_with("data_batch_2.bin"), "{msg}");
    assert_eq!(offset, Some(7 * RECORD_BYTES as u64), "{msg}");
    assert!(reason.contains("label 12"), "{msg}");
    assert!(msg.contains(&format!("at byte {}", 7 * RECORD_BYTES)), "{msg}");
}

#[test]
fn missing_member_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    let members: Vec<_> = fake_members().into_iter().filter(|(p, _)| !p.ends_with("data_batch_4.bin")).collect();
    let (archive, md5) = write_archive(tmp.path(), "cifar.tar.gz", &tar_gz(&members));
    let out = tmp.path().join("bundle");
    let err = build(&archive_opts(&archive, &md5, &["airplane", "bird"], &out)).unwrap_err();
    let msg = err.to_string();
    let (file, _, reason) = format_error(err);
    assert!(file.contains("cifar.tar.gz"), "{msg}");
    assert!(reason.contains("data_batch_4.bin"), "{msg}");
    assert!(!out.exists());
}

#[test]
fn extracted_folder_matches_the_archive() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("extracted");
    let dir = root.join("cifar-10-batches-bin");
    fs::create_dir_all(&dir).unwrap();
    for (b, name) in BATCH_FILES.iter().enumerate() {
        fs::write(dir.join(name), batch_records(b)).unwrap();
    }
    let classes = ["frog", "ship"];
    let (train, _) = expected(&[0, 1, 2, 3, 4], &classes);
    let (test, _) = expected(&[5], &classes);
    // The folder itself, and a folder holding it.
    for (i, src) in [&dir, &root].into_iter().enumerate() {
        let out = tmp.path().join(format!("bundle{i}"));
        let o = opts(SourceSpec::Path(src.clone()), &classes, &out, None);
        let m = built(build(&o).unwrap());
        assert_eq!(m.source.kind, "cifar-10-binary");
        assert_eq!(m.train.per_class, [15, 15]);
        check_bundle(&out, &m, &train, &test);
        assert!(matches!(build(&o).unwrap(), BuildOutcome::UpToDate(_)));
    }

    // A changed batch file changes the fingerprint: the next build is a rebuild, and sees the
    // bad label.
    let mut bad = batch_records(5);
    bad[2 * RECORD_BYTES] = 10;
    fs::write(dir.join("test_batch.bin"), bad).unwrap();
    let o = opts(SourceSpec::Path(dir.clone()), &classes, &tmp.path().join("bundle0"), None);
    let (file, offset, _) = format_error(build(&o).unwrap_err());
    assert!(file.ends_with("test_batch.bin"));
    assert_eq!(offset, Some(2 * RECORD_BYTES as u64));

    fs::remove_file(dir.join("data_batch_5.bin")).unwrap();
    let (file, _, _) = format_error(build(&o).unwrap_err());
    assert!(file.ends_with("data_batch_5.bin"));
}

#[test]
fn class_names_are_checked_first() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("bundle");
    // The source does not even exist: the class check must come before any look at it.
    let src = SourceSpec::Path(tmp.path().join("nowhere.tar.gz"));
    for (classes, needle) in [
        (&["airplane", "plane"][..], "'plane'"),
        (&["bird", "airplane", "bird"][..], "'bird'"),
        (&["bird"][..], "at least 2"),
        (&["Airplane", "bird"][..], "'Airplane'"),
    ] {
        match build(&opts(src.clone(), classes, &out, None)) {
            Err(Error::Config(msg)) => {
                assert!(msg.contains(needle), "{msg}");
                assert!(msg.contains("airplane, automobile, bird"), "{msg}");
            }
            other => panic!("expected a Config error for {classes:?}, got {other:?}"),
        }
    }
    assert!(!out.exists());
}

#[test]
fn unknown_source_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("bundle");
    let txt = tmp.path().join("notes.txt");
    fs::write(&txt, "hello").unwrap();
    let classes = ["airplane", "bird"];
    assert!(matches!(build(&opts(SourceSpec::Path(txt), &classes, &out, None)), Err(Error::Config(_))));
    let empty = tmp.path().join("empty");
    fs::create_dir(&empty).unwrap();
    assert!(matches!(build(&opts(SourceSpec::Path(empty), &classes, &out, None)), Err(Error::Config(_))));
    assert!(matches!(
        build(&opts(SourceSpec::Path(tmp.path().join("missing")), &classes, &out, None)),
        Err(Error::Io { .. })
    ));
    assert!(!out.exists());
}

#[test]
fn failed_build_leaves_the_existing_bundle_intact() {
    let tmp = tempfile::tempdir().unwrap();
    let full = tar_gz(&fake_members());
    let (archive, md5) = write_archive(tmp.path(), "cifar.tar.gz", &full);
    let out = tmp.path().join("bundle");
    let m = built(build(&archive_opts(&archive, &md5, &["airplane", "bird"], &out)).unwrap());
    let before = snapshot(&out);
    let contents: Vec<Vec<u8>> = before.keys().map(|p| fs::read(p).unwrap()).collect();

    let (cut, cut_md5) = write_archive(tmp.path(), "cut.tar.gz", &full[..full.len() * 2 / 3]);
    assert!(build(&archive_opts(&cut, &cut_md5, &["cat", "dog"], &out)).is_err());
    assert!(build(&archive_opts(&archive, &md5, &["cat", "cow"], &out)).is_err());
    let wrong = "00000000000000000000000000000000";
    assert!(build(&archive_opts(&archive, wrong, &["cat", "dog"], &out)).is_err());

    assert_eq!(snapshot(&out), before);
    let after: Vec<Vec<u8>> = before.keys().map(|p| fs::read(p).unwrap()).collect();
    assert_eq!(after, contents);
    let (train, _) = expected(&[0, 1, 2, 3, 4], &["airplane", "bird"]);
    let (test, _) = expected(&[5], &["airplane", "bird"]);
    check_bundle(&out, &m, &train, &test);
}

// ---------------------------------------------------------------------------------------------
// Download, from a local HTTP server

/// Serves `body` for every request on a local port; returns the URL and the request counter.
fn serve(body: Vec<u8>) -> (String, Arc<AtomicUsize>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/cifar-10-binary.tar.gz", listener.local_addr().unwrap());
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            counter.fetch_add(1, Ordering::SeqCst);
            let mut request = Vec::new();
            let mut buf = [0u8; 1024];
            while !request.ends_with(b"\r\n\r\n") {
                match stream.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => request.extend_from_slice(&buf[..n]),
                }
            }
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = stream.write_all(head.as_bytes());
            let _ = stream.write_all(&body);
        }
    });
    (url, hits)
}

#[test]
fn download_is_cached_and_skipped_when_up_to_date() {
    let tmp = tempfile::tempdir().unwrap();
    let bytes = tar_gz(&fake_members());
    let md5 = md5_hex(&bytes);
    let (url, hits) = serve(bytes.clone());
    let cache = tmp.path().join("cache");
    let out = tmp.path().join("bundle");
    let source = SourceSpec::Download { url: url.clone(), cache_dir: cache.clone() };
    let classes = ["airplane", "bird"];
    let o = opts(source.clone(), &classes, &out, Some(&md5));

    let m = built(build(&o).unwrap());
    assert_eq!(hits.load(Ordering::SeqCst), 1);
    assert_eq!(names(&cache), ["cifar-10-binary.tar.gz"]);
    assert_eq!(fs::read(cache.join("cifar-10-binary.tar.gz")).unwrap(), bytes);
    assert_eq!(m.source.location, url);
    let (train, _) = expected(&[0, 1, 2, 3, 4], &classes);
    let (test, _) = expected(&[5], &classes);
    check_bundle(&out, &m, &train, &test);

    // Up to date: no request, even without the cache.
    fs::remove_file(cache.join("cifar-10-binary.tar.gz")).unwrap();
    assert!(matches!(build(&o).unwrap(), BuildOutcome::UpToDate(_)));
    assert_eq!(hits.load(Ordering::SeqCst), 1);

    // Other classes: downloads once more, then uses the cache.
    let o2 = opts(source.clone(), &["cat", "dog"], &out, Some(&md5));
    built(build(&o2).unwrap());
    assert_eq!(hits.load(Ordering::SeqCst), 2);
    let o3 = opts(source, &["ship", "truck"], &out, Some(&md5));
    built(build(&o3).unwrap());
    assert_eq!(hits.load(Ordering::SeqCst), 2, "the cached archive was not used");

    // The same archive from disk has the same fingerprint as the download.
    let m3 = Manifest::parse(&fs::read(out.join("manifest.json")).unwrap()).unwrap();
    let from_disk = archive_opts(&cache.join("cifar-10-binary.tar.gz"), &md5, &["ship", "truck"], &out);
    match build(&from_disk).unwrap() {
        BuildOutcome::UpToDate(m) => assert_eq!(m, m3),
        BuildOutcome::Built(_) => panic!("same archive from disk was rebuilt"),
    }
}

#[test]
fn bad_download_leaves_no_cache_file() {
    let tmp = tempfile::tempdir().unwrap();
    let bytes = tar_gz(&fake_members());
    let (url, _) = serve(bytes);
    let cache = tmp.path().join("cache");
    let out = tmp.path().join("bundle");
    let source = SourceSpec::Download { url: url.clone(), cache_dir: cache.clone() };
    let wrong = "ffffffffffffffffffffffffffffffff";
    match build(&opts(source, &["airplane", "bird"], &out, Some(wrong))) {
        Err(Error::Checksum { file, expected, .. }) => {
            assert_eq!(file, url);
            assert_eq!(expected, wrong);
        }
        other => panic!("expected a Checksum error, got {other:?}"),
    }
    assert!(names(&cache).is_empty(), "left in cache: {:?}", names(&cache));
    assert!(!out.exists());

    // Nothing listening: a Download error naming the URL.
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}/x.tar.gz", l.local_addr().unwrap())
    };
    let source = SourceSpec::Download { url: dead.clone(), cache_dir: cache.clone() };
    match build(&opts(source, &["airplane", "bird"], &out, None)) {
        Err(Error::Download { url, .. }) => assert_eq!(url, dead),
        other => panic!("expected a Download error, got {other:?}"),
    }
    assert!(names(&cache).is_empty());
}

// ---------------------------------------------------------------------------------------------
// Image folders

/// A 32 x 32 RGB image whose pixels depend on `seed`, and its planar record bytes.
fn rgb(seed: usize) -> (image::RgbImage, Vec<u8>) {
    let img = image::RgbImage::from_fn(32, 32, |x, y| {
        let v = seed * 53 + (y * 32 + x) as usize * 3;
        image::Rgb([(v % 256) as u8, ((v + 85) % 256) as u8, ((v * 7) % 256) as u8])
    });
    let mut planar = vec![0u8; 3072];
    for (i, px) in img.pixels().enumerate() {
        for c in 0..3 {
            planar[c * 1024 + i] = px[c];
        }
    }
    (img, planar)
}

/// `root/{split}/{class}/{index:03}.png` for the given counts; returns planar pixels per
/// `(split, class)` in file order.
fn image_tree(root: &Path, counts: &[(&str, &str, usize)]) -> BTreeMap<(String, String), Vec<Vec<u8>>> {
    let mut out = BTreeMap::new();
    let mut seed = 0;
    for &(split, class, n) in counts {
        let dir = root.join(split).join(class);
        fs::create_dir_all(&dir).unwrap();
        let mut pixels = Vec::new();
        // Written in reverse so that directory order differs from name order.
        for i in (0..n).rev() {
            seed += 1;
            let (img, planar) = rgb(seed);
            img.save(dir.join(format!("{i:03}.png"))).unwrap();
            pixels.push(planar);
        }
        pixels.reverse();
        out.insert((split.to_string(), class.to_string()), pixels);
    }
    out
}

#[test]
fn image_folder_interleaves_classes() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("images");
    let px = image_tree(
        &root,
        &[
            ("train", "airplane", 4),
            ("train", "bird", 2),
            ("train", "cat", 3),
            ("test", "airplane", 1),
            ("test", "bird", 2),
            ("test", "cat", 1),
        ],
    );
    fs::write(root.join("train/bird/notes.txt"), "not an image").unwrap();
    let out = tmp.path().join("bundle");
    let classes = ["bird", "airplane"];
    let o = opts(SourceSpec::Path(root.clone()), &classes, &out, None);
    let m = built(build(&o).unwrap());
    assert_eq!(m.source.kind, "image-folder");
    assert_eq!(m.train.per_class, [2, 4]);
    assert_eq!(m.test.per_class, [2, 1]);

    let get = |split: &str, class: &str, i: usize| &px[&(split.to_string(), class.to_string())][i];
    let record = |label: u8, pixels: &[u8]| {
        let mut r = vec![label];
        r.extend_from_slice(pixels);
        r
    };
    // bird0, airplane0, bird1, airplane1, then the airplanes left over.
    let train: Vec<u8> = [
        record(0, get("train", "bird", 0)),
        record(1, get("train", "airplane", 0)),
        record(0, get("train", "bird", 1)),
        record(1, get("train", "airplane", 1)),
        record(1, get("train", "airplane", 2)),
        record(1, get("train", "airplane", 3)),
    ]
    .concat();
    let test: Vec<u8> =
        [record(0, get("test", "bird", 0)), record(1, get("test", "airplane", 0)), record(0, get("test", "bird", 1))]
            .concat();
    check_bundle(&out, &m, &train, &test);

    // Unchanged files: up to date. A rewritten file: rebuilt.
    assert!(matches!(build(&o).unwrap(), BuildOutcome::UpToDate(_)));
    std::thread::sleep(Duration::from_millis(20));
    let (img, planar) = rgb(999);
    img.save(root.join("test/bird/001.png")).unwrap();
    let m2 = built(build(&o).unwrap());
    assert_ne!(m2.source.fingerprint, m.source.fingerprint);
    let test2 = [record(0, get("test", "bird", 0)), record(1, get("test", "airplane", 0)), record(0, &planar)].concat();
    check_bundle(&out, &m2, &train, &test2);
}

#[test]
fn image_of_wrong_size_or_colour_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    let classes = ["airplane", "bird"];
    type Write = fn(&Path);
    let cases: [(&str, Write, &str); 3] = [
        ("narrow.png", |p| image::RgbImage::new(31, 32).save(p).unwrap(), "31x32"),
        ("grey.png", |p| image::GrayImage::new(32, 32).save(p).unwrap(), "L8"),
        ("alpha.png", |p| image::RgbaImage::new(32, 32).save(p).unwrap(), "Rgba8"),
    ];
    for (i, (name, write, needle)) in cases.iter().enumerate() {
        let root = tmp.path().join(format!("images{i}"));
        image_tree(
            &root,
            &[("train", "airplane", 2), ("train", "bird", 2), ("test", "airplane", 1), ("test", "bird", 1)],
        );
        let bad = root.join("train/bird").join(name);
        write(&bad);
        let out = tmp.path().join(format!("bundle{i}"));
        let err = build(&opts(SourceSpec::Path(root), &classes, &out, None)).unwrap_err();
        let msg = err.to_string();
        let (file, _, reason) = format_error(err);
        assert_eq!(file, bad.display().to_string(), "{msg}");
        assert!(reason.contains(needle), "{msg}");
        assert!(!out.exists());
    }

    // Not an image at all, under an image name.
    let root = tmp.path().join("junk");
    image_tree(&root, &[("train", "airplane", 1), ("train", "bird", 1), ("test", "airplane", 1), ("test", "bird", 1)]);
    let bad = root.join("test/airplane/zzz.jpg");
    fs::write(&bad, b"definitely not a jpeg").unwrap();
    let out = tmp.path().join("bundle-junk");
    let (file, _, _) = format_error(build(&opts(SourceSpec::Path(root), &classes, &out, None)).unwrap_err());
    assert_eq!(file, bad.display().to_string());
}

#[test]
fn empty_or_missing_class_folder_is_an_error() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("images");
    image_tree(&root, &[("train", "airplane", 2), ("train", "bird", 2), ("test", "airplane", 1)]);
    fs::create_dir_all(root.join("test/bird")).unwrap();
    fs::write(root.join("test/bird/readme.txt"), "no images here").unwrap();
    let out = tmp.path().join("bundle");
    let classes = ["airplane", "bird"];
    let err = build(&opts(SourceSpec::Path(root.clone()), &classes, &out, None)).unwrap_err();
    let msg = err.to_string();
    let (file, _, reason) = format_error(err);
    assert!(file.ends_with("test/bird"), "{msg}");
    assert!(reason.contains("no .jpg"), "{msg}");

    let err = build(&opts(SourceSpec::Path(root), &["airplane", "deer"], &out, None)).unwrap_err();
    let msg = err.to_string();
    let (file, _, reason) = format_error(err);
    assert!(file.ends_with("train/deer"), "{msg}");
    assert!(reason.contains("missing"), "{msg}");
    assert!(!out.exists());
}

// ---------------------------------------------------------------------------------------------
// The real data

#[test]
#[ignore = "needs CIFAR-10: set SKYWATCH_DATA_SOURCE and run with --include-ignored"]
fn real_image_folder_cifar2() {
    let src = common::data_source("real_image_folder_cifar2");
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("cifar2");
    let o = opts(SourceSpec::Path(src), &["airplane", "bird"], &out, None);
    let start = Instant::now();
    let m = built(build(&o).unwrap());
    eprintln!("built CIFAR-2 from the image folder in {:.2?}", start.elapsed());
    assert_eq!(m.train.count, 10000);
    assert_eq!(m.test.count, 2000);
    assert_eq!(m.train.per_class, [5000, 5000]);
    assert_eq!(m.test.per_class, [1000, 1000]);
    assert_eq!(m.source.kind, "image-folder");

    let ds = Dataset::load(&out).unwrap();
    assert_eq!(ds.train.len(), 10000);
    assert_eq!(ds.test.counts(2), [1000, 1000]);
    for i in 0..20 {
        assert_eq!(ds.train.label(i) as usize, i % 2, "classes alternate");
    }

    let start = Instant::now();
    assert!(matches!(build(&o).unwrap(), BuildOutcome::UpToDate(_)));
    eprintln!("up-to-date check in {:.2?}", start.elapsed());
}
