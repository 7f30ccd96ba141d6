//! `skywatch build`: a static folder with the page, the blog widget, both wasm packages and the
//! data, ready to copy to any static host.
//!
//! ```text
//! DIR/widget.js widget.css embed.html embed-example.html index.html boot.js app.js worker.js ...
//! DIR/page/ shared/ widget/          the page's panels, the modules page and widget share, the widget's
//! DIR/worker/                        the worker's modules (the backend: WebGPU or wasm; data, training, saving, inspection, bench)
//! DIR/reference/                     the committed PyTorch reference band
//! DIR/pkg/ pkg-threads/ pkg-threads-simd/ vendor/   the wasm packages and browser libraries
//! DIR/data-quick/                    the widget's quick subset (first N images of each split)
//! DIR/data/                          the full bundle, for the full page (unless --no-full-data)
//! DIR/_headers                       COOP/COEP/CORP/CORS/CSP for hosts that read this file
//! DIR/**/NAME.br, NAME.gz            precompressed siblings of every text and wasm asset
//! ```
//!
//! Both bundles are written as version 2 (pixel predictor, then deflate: `crate::data::codec`).
//!
//! The folder is assembled beside `DIR` and renamed into place, so a failed build leaves the
//! previous one intact. Since `DIR` is replaced as a whole, a folder that is neither empty nor an
//! earlier build (recognised by its [`MARKER`] file) is refused unless `force` is set: pointed at
//! the wrong folder, the build would otherwise delete what is there. The command ends with the
//! bytes a reader's browser transfers for the widget (gzip and brotli, as hosts serve them).

use crate::data::build::subset;
use crate::error::{Error, Result};
use flate2::Compression;
use flate2::write::GzEncoder;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// What `skywatch build` writes, and from what.
#[derive(Clone, Debug)]
pub struct SiteOptions {
    /// The output folder, replaced as a whole.
    pub out: PathBuf,
    /// The page sources and build output (`scripts/build` fills pkg/, pkg-threads/, pkg-threads-simd/,
    /// vendor/).
    pub www: PathBuf,
    /// The full bundle (`skywatch data`).
    pub data: PathBuf,
    /// Training images in the widget's quick subset.
    pub quick_train: usize,
    /// Validation images in the widget's quick subset.
    pub quick_test: usize,
    /// Include the full bundle (the widget alone needs only the quick subset).
    pub full_data: bool,
    /// Replace `out` even if it is neither empty nor an earlier build.
    pub force: bool,
}

/// The file every build writes at the top of its folder: a later build replaces a folder that
/// holds it without asking for `force`.
pub const MARKER: &str = ".skywatch-build";

/// Files of `www/` that make up the site (everything else there is build output or data).
pub const PAGE_FILES: &[&str] = &[
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
/// Folders of `www/` with the page's, the widget's and the worker's modules, and the committed
/// PyTorch reference band (`reference/`), served as they are.
pub const PAGE_DIRS: &[&str] = &["page", "shared", "widget", "worker", "reference"];
/// Folders of `www/` that `scripts/build` fills, copied whole.
pub const BUILT_DIRS: &[&str] = &["pkg", "pkg-threads", "pkg-threads-simd", "vendor"];

/// The scripts and styles a reader's browser loads for the widget (besides its wasm and data),
/// counted by the size report.
pub const WIDGET_FILES: &[&str] = &[
    "widget.js",
    "widget.css",
    "widget/trainer.js",
    "widget/attributes.js",
    "client.js",
    "shared/dom.js",
    "shared/format.js",
    "shared/image.js",
    "shared/prediction.js",
    "shared/probe.js",
    "shared/startup.js",
    "shared/tiles.js",
    "worker.js",
    "worker/backend.js",
    "worker/bench.js",
    "worker/data.js",
    "worker/inspect.js",
    "worker/saving.js",
    "worker/training.js",
    "vendor/wasm-feature-detect/index.js",
    "vendor/idb-keyval/index.js",
    "pkg/skywatch.js",
];

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

/// Writes the site into `opts.out` and returns what a reader's browser transfers for the widget,
/// as one line.
pub fn build(opts: &SiteOptions) -> Result<String> {
    check_replaceable(&opts.out, opts.force)?;
    for d in BUILT_DIRS {
        if !opts.www.join(d).is_dir() {
            return Err(Error::Config(format!(
                "{} is missing: run scripts/build first (it builds the wasm packages and copies the browser libraries)",
                opts.www.join(d).display()
            )));
        }
    }
    let parent = opts.out.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
    let tmp =
        tempfile::Builder::new().prefix(".skywatch-site-").tempdir_in(parent).map_err(|e| Error::io(parent, e))?;
    let dir = tmp.path();
    for f in PAGE_FILES {
        copy(&opts.www.join(f), &dir.join(f))?;
    }
    for d in PAGE_DIRS.iter().chain(BUILT_DIRS) {
        copy_tree(&opts.www.join(d), &dir.join(d))?;
    }
    // Both bundles as version 2 (pixel predictor, then deflate): what the reader downloads.
    let quick = subset(&opts.data, &dir.join("data-quick"), opts.quick_train, opts.quick_test, true)?;
    if opts.full_data {
        let m = crate::data::Manifest::parse(&read(&opts.data.join("manifest.json"))?)?;
        subset(&opts.data, &dir.join("data"), m.train.count, m.test.count, true)?;
    }
    precompress(dir)?;
    fs::write(dir.join("_headers"), headers_file()).map_err(|e| Error::io(dir.join("_headers"), e))?;
    let marker = "Written by `skywatch build`, which replaces this folder as a whole.\n";
    fs::write(dir.join(MARKER), marker).map_err(|e| Error::io(dir.join(MARKER), e))?;
    let report = size_report(dir, quick.manifest())?;

    // Swap in the new folder: the old one goes only once the new one is complete.
    let old = parent.join(format!(".skywatch-site-old-{}", std::process::id()));
    if fs::symlink_metadata(&opts.out).is_ok() {
        fs::rename(&opts.out, &old).map_err(|e| Error::io(&opts.out, e))?;
    }
    let kept = tmp.keep();
    if let Err(e) = fs::rename(&kept, &opts.out) {
        let _ = fs::rename(&old, &opts.out);
        let _ = fs::remove_dir_all(&kept);
        return Err(Error::io(&opts.out, e));
    }
    // What was there before (a folder, or with `force` a file).
    let _ = fs::remove_dir_all(&old).or_else(|_| fs::remove_file(&old));
    Ok(report)
}

/// Whether the build may replace `out`: a folder that does not exist yet, an empty one, or an
/// earlier build's (it holds [`MARKER`]); anything else only with `force`.
fn check_replaceable(out: &Path, force: bool) -> Result<()> {
    let meta = match fs::symlink_metadata(out) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::io(out, e)),
        Ok(meta) => meta,
    };
    if force {
        return Ok(());
    }
    let what = if meta.is_dir() {
        let mut entries = fs::read_dir(out).map_err(|e| Error::io(out, e))?;
        if entries.next().is_none() || out.join(MARKER).is_file() {
            return Ok(());
        }
        format!("the folder is not empty and is not an earlier build (it has no {MARKER} file)")
    } else {
        "it is not a folder".to_string()
    };
    let why = format!(
        "{what}: the build replaces its output folder as a whole, which would delete what is there. \
         Choose a new or empty folder, or pass --force to replace it anyway"
    );
    Err(Error::io(out, io::Error::new(io::ErrorKind::DirectoryNotEmpty, why)))
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

/// Extensions of the assets that get precompressed siblings: text and wasm. The bundles are not
/// among them: version 2 is deflated already, and gzip gains little on raw pixels.
pub const PRECOMPRESSED: &[&str] = &["html", "js", "mjs", "css", "json", "wasm", "svg"];

/// Writes `NAME.br` (brotli, quality 11) and `NAME.gz` (gzip, level 9) beside every asset of
/// [`PRECOMPRESSED`] under `dir`, for servers that send a precompressed file when the browser
/// accepts it (`skywatch serve`, nginx's `gzip_static`/`brotli_static`, Caddy's
/// `file_server { precompressed }`). A sibling that would not be smaller is not written.
fn precompress(dir: &Path) -> Result<()> {
    for entry in fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
        let path = entry.map_err(|e| Error::io(dir, e))?.path();
        if path.is_dir() {
            precompress(&path)?;
            continue;
        }
        let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
        if !PRECOMPRESSED.contains(&ext) {
            continue;
        }
        let bytes = read(&path)?;
        let sibling = |suffix: &str| {
            let mut name = path.clone().into_os_string();
            name.push(suffix);
            PathBuf::from(name)
        };
        let gz = gzip(&bytes);
        if gz.len() < bytes.len() {
            fs::write(sibling(".gz"), gz).map_err(|e| Error::io(sibling(".gz"), e))?;
        }
        let br = brotli_bytes(&bytes);
        if br.len() < bytes.len() {
            fs::write(sibling(".br"), br).map_err(|e| Error::io(sibling(".br"), e))?;
        }
    }
    Ok(())
}

fn brotli_bytes(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let params = brotli::enc::BrotliEncoderParams { quality: 11, lgwin: 22, ..Default::default() };
    brotli::BrotliCompress(&mut &bytes[..], &mut out, &params).expect("writing to memory");
    out
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = GzEncoder::new(Vec::new(), Compression::best());
    e.write_all(bytes).expect("writing to memory");
    e.finish().expect("writing to memory")
}

/// What a reader's browser downloads for the widget: scripts and styles and the wasm, raw and
/// as the precompressed siblings; the quick data as stored (version 2 is deflated already).
fn size_report(dir: &Path, m: &crate::data::Manifest) -> Result<String> {
    let size = |rel: &str| -> Result<[usize; 3]> {
        let b = read(&dir.join(rel))?;
        Ok([b.len(), gzip(&b).len(), brotli_bytes(&b).len()])
    };
    let sum = |files: &[&str]| -> Result<[usize; 3]> {
        files.iter().map(|f| size(f)).try_fold([0; 3], |a, r| r.map(|x| [a[0] + x[0], a[1] + x[1], a[2] + x[2]]))
    };
    let kb = |[raw, gz, br]: [usize; 3]| {
        format!("{:.0} kB ({:.0} kB gzip, {:.0} kB brotli)", raw as f64 / 1e3, gz as f64 / 1e3, br as f64 / 1e3)
    };
    let js = sum(WIDGET_FILES)?;
    let wasm = size("pkg/skywatch_bg.wasm")?;
    let wasm_threads = size("pkg-threads/skywatch_bg.wasm")?;
    let stored: u64 = [&m.train, &m.test].iter().map(|s| s.stored_bytes.unwrap_or(s.bytes)).sum();
    let raw = m.train.bytes + m.test.bytes;
    Ok(format!(
        "widget transfer: scripts and styles {}, wasm {} (threaded build {}), quick data {:.0} kB ({:.0}% of the raw {:.0} kB; {} + {} images)",
        kb(js),
        kb(wasm),
        kb(wasm_threads),
        stored as f64 / 1e3,
        100.0 * stored as f64 / raw as f64,
        raw as f64 / 1e3,
        m.train.count,
        m.test.count
    ))
}
