//! `skywatch pack --out DIR` (`skywatch::pack::pack`): the widget as an npm package folder and the
//! tarball `npm pack` makes of it (needs `npm` on PATH, as the build does).
#![cfg(all(feature = "cli", not(target_arch = "wasm32")))]

mod common;

use common::fixtures::{synthetic_cifar2, write_bundle};
use skywatch::data::{Dataset, ENCODED_VERSION, Manifest};
use skywatch::pack::{NAME, PackOptions, pack};
use std::fs;
use std::process::Command;

#[test]
fn the_package_holds_the_widget_its_worker_the_wasm_and_the_quick_data() {
    let tmp = tempfile::tempdir().unwrap();
    let www = tmp.path().join("www");
    // Stand-ins for the page's files and scripts/build's output.
    for f in [
        "widget.js",
        "widget.css",
        "client.js",
        "worker.js",
        "widget/trainer.js",
        "shared/dom.js",
        "worker/packages.js",
        "pkg/skywatch.js",
        "pkg/skywatch_bg.wasm",
        "pkg/.gitignore",
        "pkg-threads/skywatch.js",
        "pkg-threads-simd/skywatch.js",
        "vendor/wasm-feature-detect/index.js",
        "vendor/idb-keyval/index.js",
        "vendor/uplot/uPlot.esm.js",
        "index.html",
    ] {
        let path = www.join(f);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, format!("// {f}\n")).unwrap();
    }
    let data = synthetic_cifar2(30, 12, 4);
    write_bundle(&tmp.path().join("data"), &data);
    let out = tmp.path().join("out");
    fs::create_dir_all(&out).unwrap();
    let opts = PackOptions { out: out.clone(), www, data: tmp.path().join("data"), quick_train: 20, quick_test: 10 };
    let p = pack(&opts).unwrap();

    let version = env!("CARGO_PKG_VERSION");
    assert_eq!(p.tarball, out.join(format!("{NAME}-{version}.tgz")));
    assert_eq!(p.tarball_bytes, fs::metadata(&p.tarball).unwrap().len());
    let json: serde_json::Value = serde_json::from_slice(&fs::read(p.folder.join("package.json")).unwrap()).unwrap();
    assert_eq!(json["name"], NAME);
    assert_eq!(json["version"], version, "Cargo.toml's version");
    assert_eq!(json["type"], "module");
    assert_eq!(json["license"], "MIT");
    assert_eq!(json["exports"]["."]["default"], "./index.js");
    assert_eq!(json["exports"]["."]["types"], "./index.d.ts");
    assert!(json.get("sideEffects").is_none(), "importing the package must register the element");
    let types = fs::read_to_string(p.folder.join("index.d.ts")).unwrap();
    assert!(types.contains("interface HTMLElementTagNameMap") && types.contains("'skywatch-trainer': SkywatchTrainer"));
    assert!(fs::read_to_string(p.folder.join("index.js")).unwrap().contains("from './widget.js'"));

    // The quick data: version 2, decoding to the first images of the bundle.
    let m = Manifest::parse(&fs::read(p.folder.join("data-quick/manifest.json")).unwrap()).unwrap();
    assert_eq!(m.version, ENCODED_VERSION);
    let quick = Dataset::load(&p.folder.join("data-quick")).unwrap();
    assert_eq!(quick.train.records(), &data.train.records()[..20 * 3073]);

    // The tarball: every entry under package/, the page's own files left out.
    let list = Command::new("tar").arg("-tzf").arg(&p.tarball).output().unwrap();
    let list = String::from_utf8(list.stdout).unwrap();
    let entries: Vec<&str> = list.lines().collect();
    assert!(entries.iter().all(|e| e.starts_with("package/")), "{entries:?}");
    for f in [
        "package/package.json",
        "package/README.md",
        "package/LICENSE",
        "package/index.js",
        "package/index.d.ts",
        "package/widget.js",
        "package/widget/trainer.js",
        "package/worker.js",
        "package/worker/packages.js",
        "package/pkg/skywatch_bg.wasm",
        "package/pkg-threads/skywatch.js",
        "package/pkg-threads-simd/skywatch.js",
        "package/vendor/idb-keyval/index.js",
        "package/data-quick/files.js",
        "package/data-quick/manifest.json",
    ] {
        assert!(entries.contains(&f), "{f} missing from {entries:?}");
    }
    for f in ["package/index.html", "package/vendor/uplot/uPlot.esm.js", "package/pkg/.gitignore"] {
        assert!(!entries.contains(&f), "{f} is not the widget's");
    }
}

#[test]
fn without_the_built_packages_it_says_what_to_run() {
    let tmp = tempfile::tempdir().unwrap();
    let opts = PackOptions {
        out: tmp.path().join("out"),
        www: tmp.path().join("www"),
        data: tmp.path().join("data"),
        quick_train: 20,
        quick_test: 10,
    };
    let e = pack(&opts).unwrap_err().to_string();
    assert!(e.contains("is missing: run scripts/build first"), "{e}");
}
