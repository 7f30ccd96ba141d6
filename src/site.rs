//! `skywatch build`: a static folder with the page, the blog widget, both wasm packages and the
//! data, ready to copy to any static host.
//!
//! ```text
//! DIR/widget.js widget.css embed.html embed-example.html index.html boot.js app.js worker.js ...
//! DIR/page/ shared/ widget/          the page's panels, the modules page and widget share, the widget's
//! DIR/worker/                        the worker's modules (the backend: WebGPU or wasm)
//! DIR/pkg/ pkg-threads/ pkg-threads-simd/ vendor/   the wasm packages and browser libraries
//! DIR/data-quick/                    the widget's quick subset (first N images of each split)
//! DIR/data/                          the full bundle, for the full page (unless --no-full-data)
//! DIR/_headers                       COOP/COEP/CORP/CORS/CSP for hosts that read this file
//! ```
//!
//! The folder is assembled beside `DIR` and renamed into place, so a failed build leaves the
//! previous one intact. The command ends with the bytes a reader's browser transfers for the
//! widget (gzip, as static hosts serve it).

use crate::data::build::{DEFAULT_DATA_DIR, QUICK_TEST, QUICK_TRAIN, subset};
use crate::error::{Error, Result};
use flate2::Compression;
use flate2::write::GzEncoder;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

#[derive(clap::Args, Clone, Debug)]
pub struct SiteArgs {
    /// Output folder (replaced as a whole).
    #[arg(long)]
    pub out: PathBuf,
    /// The page sources and build output (`scripts/build` fills pkg/, pkg-threads/, pkg-threads-simd/,
    /// vendor/).
    #[arg(long, default_value = "www")]
    pub www: PathBuf,
    /// The full bundle (`skywatch data`).
    #[arg(long, default_value = DEFAULT_DATA_DIR)]
    pub data: PathBuf,
    /// Training images in the widget's quick subset.
    #[arg(long, default_value_t = QUICK_TRAIN)]
    pub quick_train: usize,
    /// Validation images in the widget's quick subset.
    #[arg(long, default_value_t = QUICK_TEST)]
    pub quick_test: usize,
    /// Leave the full bundle out (the widget alone needs only the quick subset).
    #[arg(long)]
    pub no_full_data: bool,
}

/// Files of `www/` that make up the site (everything else there is build output or data).
const PAGE_FILES: &[&str] = &[
    "index.html",
    "boot.js",
    "app.js",
    "style.css",
    "client.js",
    "worker.js",
    "widget.js",
    "widget.css",
    "embed.html",
    "embed.js",
    "embed.css",
    "embed-example.html",
    "embed-example.css",
];
/// Folders of `www/` with the page's and the widget's modules.
const PAGE_DIRS: &[&str] = &["page", "shared", "widget", "worker"];
const BUILT_DIRS: &[&str] = &["pkg", "pkg-threads", "pkg-threads-simd", "vendor"];

/// Headers for hosts that read a `_headers` file (Netlify, Cloudflare Pages): cross-origin
/// isolation for threads, CORS + CORP so that blogs on other origins may load the widget, and the
/// content security policy of `skywatch serve` ([`crate::serve::CSP`]).
fn headers_file() -> String {
    format!(
        "/*
  Cross-Origin-Opener-Policy: same-origin
  Cross-Origin-Embedder-Policy: require-corp
  Cross-Origin-Resource-Policy: cross-origin
  Access-Control-Allow-Origin: *
  X-Content-Type-Options: nosniff
  Content-Security-Policy: {}
",
        crate::serve::CSP
    )
}

pub fn run(args: &SiteArgs) -> Result<()> {
    for d in BUILT_DIRS {
        if !args.www.join(d).is_dir() {
            return Err(Error::Config(format!(
                "{} is missing: run scripts/build first (it builds the wasm packages and copies the browser libraries)",
                args.www.join(d).display()
            )));
        }
    }
    let parent = args.out.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
    let tmp =
        tempfile::Builder::new().prefix(".skywatch-site-").tempdir_in(parent).map_err(|e| Error::io(parent, e))?;
    let dir = tmp.path();
    for f in PAGE_FILES {
        copy(&args.www.join(f), &dir.join(f))?;
    }
    for d in PAGE_DIRS.iter().chain(BUILT_DIRS) {
        copy_tree(&args.www.join(d), &dir.join(d))?;
    }
    let quick = subset(&args.data, &dir.join("data-quick"), args.quick_train, args.quick_test)?;
    if !args.no_full_data {
        let m = crate::data::Manifest::parse(&read(&args.data.join("manifest.json"))?)?;
        fs::create_dir_all(dir.join("data")).map_err(|e| Error::io(dir.join("data"), e))?;
        for f in [m.train.file.as_str(), m.test.file.as_str(), "manifest.json"] {
            copy(&args.data.join(f), &dir.join("data").join(f))?;
        }
    }
    fs::write(dir.join("_headers"), headers_file()).map_err(|e| Error::io(dir.join("_headers"), e))?;
    let report = size_report(dir, quick.manifest())?;

    // Swap in the new folder: the old one goes only once the new one is complete.
    let old = parent.join(format!(".skywatch-site-old-{}", std::process::id()));
    if args.out.exists() {
        fs::rename(&args.out, &old).map_err(|e| Error::io(&args.out, e))?;
    }
    let kept = tmp.keep();
    if let Err(e) = fs::rename(&kept, &args.out) {
        let _ = fs::rename(&old, &args.out);
        let _ = fs::remove_dir_all(&kept);
        return Err(Error::io(&args.out, e));
    }
    let _ = fs::remove_dir_all(&old);
    println!("{}: static site written", args.out.display());
    println!("{report}");
    Ok(())
}

fn read(path: &Path) -> Result<Vec<u8>> {
    fs::read(path).map_err(|e| Error::io(path, e))
}

fn copy(from: &Path, to: &Path) -> Result<()> {
    fs::copy(from, to).map(|_| ()).map_err(|e| Error::io(from, e))
}

fn copy_tree(from: &Path, to: &Path) -> Result<()> {
    fs::create_dir_all(to).map_err(|e| Error::io(to, e))?;
    for entry in fs::read_dir(from).map_err(|e| Error::io(from, e))? {
        let entry = entry.map_err(|e| Error::io(from, e))?;
        let (src, dst) = (entry.path(), to.join(entry.file_name()));
        // .gitignore files that wasm-pack writes, and TypeScript declarations, are not served.
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') || name.ends_with(".d.ts") {
            continue;
        }
        if entry.file_type().map_err(|e| Error::io(&src, e))?.is_dir() {
            copy_tree(&src, &dst)?;
        } else {
            copy(&src, &dst)?;
        }
    }
    Ok(())
}

fn gzip_len(bytes: &[u8]) -> usize {
    let mut e = GzEncoder::new(Vec::new(), Compression::best());
    e.write_all(bytes).expect("writing to memory");
    e.finish().expect("writing to memory").len()
}

/// What a reader's browser downloads for the widget in each mode, raw and gzipped.
fn size_report(dir: &Path, m: &crate::data::Manifest) -> Result<String> {
    let size = |rel: &str| -> Result<(usize, usize)> {
        let b = read(&dir.join(rel))?;
        Ok((b.len(), gzip_len(&b)))
    };
    let sum = |files: &[&str]| -> Result<(usize, usize)> {
        files.iter().map(|f| size(f)).try_fold((0, 0), |(a, b), r| r.map(|(x, y)| (a + x, b + y)))
    };
    let kb = |(raw, gz): (usize, usize)| format!("{:.0} kB ({:.0} kB gzipped)", raw as f64 / 1e3, gz as f64 / 1e3);
    let js = sum(&[
        "widget.js",
        "widget.css",
        "widget/trainer.js",
        "client.js",
        "shared/dom.js",
        "shared/format.js",
        "shared/image.js",
        "shared/prediction.js",
        "shared/probe.js",
        "shared/startup.js",
        "worker.js",
        "vendor/wasm-feature-detect/index.js",
        "vendor/idb-keyval/index.js",
        "pkg/skywatch.js",
    ])?;
    let wasm = size("pkg/skywatch_bg.wasm")?;
    let wasm_threads = size("pkg-threads/skywatch_bg.wasm")?;
    let data = sum(&[&format!("data-quick/{}", m.train.file), &format!("data-quick/{}", m.test.file)])?;
    Ok(format!(
        "widget transfer: scripts and styles {}, wasm {} (threaded build {}), quick data {} ({} + {} images)",
        kb(js),
        kb(wasm),
        kb(wasm_threads),
        kb(data),
        m.train.count,
        m.test.count
    ))
}
