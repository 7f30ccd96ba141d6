//! `skywatch build --out DIR` (`skywatch::site::build`) replaces DIR as a whole, so it refuses a
//! folder that holds anything but an earlier build (recognised by its marker file) unless forced,
//! and leaves such a folder as it was.
#![cfg(all(feature = "cli", not(target_arch = "wasm32")))]

mod common;

use common::fixtures::{synthetic_cifar2, write_bundle};
use skywatch::site::{self, BUILT_DIRS, MARKER, PAGE_DIRS, PAGE_FILES, SiteOptions, WIDGET_FILES};
use std::fs;
use std::path::Path;

/// The page's files and `scripts/build`'s output in `tmp/www` (stand-ins), a bundle in
/// `tmp/data`; the site goes to `tmp/out` unless the test says otherwise.
fn sources(tmp: &Path) -> SiteOptions {
    let www = tmp.join("www");
    for d in PAGE_DIRS.iter().chain(BUILT_DIRS) {
        fs::create_dir_all(www.join(d)).unwrap();
    }
    let wasm = ["pkg/skywatch_bg.wasm", "pkg-threads/skywatch_bg.wasm"];
    for f in PAGE_FILES.iter().chain(WIDGET_FILES).chain(&wasm) {
        let path = www.join(f);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, format!("// {f}\n")).unwrap();
    }
    write_bundle(&tmp.join("data"), &synthetic_cifar2(40, 20, 5));
    SiteOptions {
        out: tmp.join("out"),
        www,
        data: tmp.join("data"),
        quick_train: 20,
        quick_test: 10,
        full_data: true,
        force: false,
    }
}

/// Only what a build writes, and the marker among it.
fn assert_is_a_build(out: &Path) {
    assert!(out.join(MARKER).is_file(), "no {MARKER}");
    assert!(out.join("index.html").is_file() && out.join("data-quick/manifest.json").is_file());
    assert!(!out.join("notes.txt").exists(), "a file from before survived");
}

/// Nothing left beside the output: no half-built or old folder.
fn assert_no_leftovers(tmp: &Path) {
    let names: Vec<String> =
        fs::read_dir(tmp).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    assert!(names.iter().all(|n| !n.starts_with(".skywatch-site")), "{names:?}");
}

#[test]
fn a_folder_with_other_files_is_refused_and_left_as_it_was() {
    let tmp = tempfile::tempdir().unwrap();
    let opts = sources(tmp.path());
    fs::create_dir_all(&opts.out).unwrap();
    fs::write(opts.out.join("notes.txt"), "my notes").unwrap();

    let e = site::build(&opts).unwrap_err().to_string();
    assert!(e.contains("not empty") && e.contains("not an earlier build") && e.contains("--force"), "{e}");
    assert_eq!(fs::read_to_string(opts.out.join("notes.txt")).unwrap(), "my notes");
    assert_eq!(fs::read_dir(&opts.out).unwrap().count(), 1, "only the user's file");
    assert_no_leftovers(tmp.path());

    // A file where the folder should be is refused too.
    let file = tmp.path().join("a-file");
    fs::write(&file, "x").unwrap();
    let e = site::build(&SiteOptions { out: file.clone(), ..opts }).unwrap_err().to_string();
    assert!(e.contains("not a folder") && e.contains("--force"), "{e}");
    assert_eq!(fs::read_to_string(&file).unwrap(), "x");
}

#[test]
fn an_earlier_build_is_replaced_whole() {
    let tmp = tempfile::tempdir().unwrap();
    let opts = sources(tmp.path());
    site::build(&opts).unwrap();
    assert_is_a_build(&opts.out);
    // Whatever was added to the earlier build goes with it.
    fs::write(opts.out.join("notes.txt"), "added later").unwrap();
    site::build(&opts).unwrap();
    assert_is_a_build(&opts.out);
    assert_no_leftovers(tmp.path());
}

#[test]
fn force_replaces_any_folder() {
    let tmp = tempfile::tempdir().unwrap();
    let opts = SiteOptions { force: true, ..sources(tmp.path()) };
    fs::create_dir_all(&opts.out).unwrap();
    fs::write(opts.out.join("notes.txt"), "my notes").unwrap();
    site::build(&opts).unwrap();
    assert_is_a_build(&opts.out);
    assert_no_leftovers(tmp.path());
}

#[test]
fn a_new_or_empty_folder_is_written() {
    let tmp = tempfile::tempdir().unwrap();
    let opts = sources(tmp.path());
    site::build(&SiteOptions { out: tmp.path().join("new/site"), ..opts.clone() }).unwrap();
    assert_is_a_build(&tmp.path().join("new/site"));
    fs::create_dir_all(&opts.out).unwrap();
    site::build(&opts).unwrap();
    assert_is_a_build(&opts.out);
}
