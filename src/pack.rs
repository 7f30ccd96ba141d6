//! `skywatch pack`: the blog widget as an npm package, for bundlers (Vite, webpack, Rollup,
//! esbuild) and for plain `<script type="module">` use from any origin.
//!
//! ```text
//! DIR/skywatch-widget/                  the package folder
//!   package.json README.md LICENSE      name, Cargo.toml's version, "type": "module", exports, files
//!   index.js index.d.ts                 `import 'skywatch-widget'` registers <skywatch-trainer>
//!   widget.js widget.css widget/ client.js shared/ worker.js worker/
//!   pkg/ pkg-threads/ pkg-threads-simd/ vendor/   the wasm packages the worker chooses from
//!   data-quick/                         the quick subset, version 2 (predictor + deflate)
//! DIR/skywatch-widget-VERSION.tgz       what `npm pack` makes of the folder (entries under package/)
//! ```
//!
//! Every file is reached from `index.js` through static `import` or
//! `new URL('./literal', import.meta.url)` expressions, which bundlers follow with their default
//! configuration, so the package has no `"sideEffects": false` (importing it defines the
//! element).

use crate::data::build::subset;
use crate::error::{Error, Result};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The package's name on npm.
pub const NAME: &str = "skywatch-widget";

/// What `skywatch pack` packs, and from what.
#[derive(Clone, Debug)]
pub struct PackOptions {
    /// The folder that receives the package folder and the tarball.
    pub out: PathBuf,
    /// The page sources and build output (`scripts/build` fills pkg*/ and vendor/).
    pub www: PathBuf,
    /// The full bundle, from which the quick subset is taken.
    pub data: PathBuf,
    pub quick_train: usize,
    pub quick_test: usize,
}

/// Where the package went.
#[derive(Clone, Debug)]
pub struct Packed {
    pub folder: PathBuf,
    pub tarball: PathBuf,
    pub tarball_bytes: u64,
}

/// Files of `www/` in the package.
const FILES: &[&str] = &["widget.js", "widget.css", "client.js", "worker.js"];
/// Folders of `www/` in the package (vendor/ only in part: the worker's two libraries).
const DIRS: &[&str] = &[
    "widget",
    "shared",
    "worker",
    "pkg",
    "pkg-threads",
    "pkg-threads-simd",
    "vendor/wasm-feature-detect",
    "vendor/idb-keyval",
];

/// Writes the package folder and its tarball into `opts.out` (the folder is replaced).
pub fn pack(opts: &PackOptions) -> Result<Packed> {
    for d in DIRS.iter().filter(|d| d.starts_with("pkg") || d.starts_with("vendor")) {
        if !opts.www.join(d).is_dir() {
            return Err(Error::Config(format!(
                "{} is missing: run scripts/build first (it builds the wasm packages and copies the browser libraries)",
                opts.www.join(d).display()
            )));
        }
    }
    let folder = opts.out.join(NAME);
    if folder.exists() {
        fs::remove_dir_all(&folder).map_err(|e| Error::io(&folder, e))?;
    }
    fs::create_dir_all(&folder).map_err(|e| Error::io(&folder, e))?;
    for f in FILES {
        copy(&opts.www.join(f), &folder.join(f))?;
    }
    for d in DIRS {
        copy_tree(&opts.www.join(d), &folder.join(d))?;
    }
    subset(&opts.data, &folder.join("data-quick"), opts.quick_train, opts.quick_test, true)?;
    let version = env!("CARGO_PKG_VERSION");
    write(&folder.join("package.json"), &package_json(version))?;
    write(&folder.join("index.js"), INDEX_JS)?;
    write(&folder.join("index.d.ts"), INDEX_D_TS)?;
    write(&folder.join("README.md"), README)?;
    write(&folder.join("LICENSE"), LICENSE)?;

    let tarball = opts.out.join(format!("{NAME}-{version}.tgz"));
    let dest = fs::canonicalize(&opts.out).map_err(|e| Error::io(&opts.out, e))?;
    let status = Command::new("npm")
        .args(["pack", "--silent", "--pack-destination"])
        .arg(&dest)
        .current_dir(&folder)
        .stdout(std::process::Stdio::null())
        .status()
        .map_err(|e| Error::io("npm", e))?;
    if !status.success() {
        return Err(Error::Config(format!("`npm pack` in {} failed ({status})", folder.display())));
    }
    let tarball_bytes = fs::metadata(&tarball).map_err(|e| Error::io(&tarball, e))?.len();
    Ok(Packed { folder, tarball, tarball_bytes })
}

fn package_json(version: &str) -> String {
    let files = ["index.js", "index.d.ts", "LICENSE", "README.md"]
        .iter()
        .chain(FILES)
        .map(|s| s.to_string())
        .chain(DIRS.iter().map(|d| format!("{d}/")))
        .chain(["data-quick/".to_string()])
        .collect::<Vec<_>>();
    let json = serde_json::json!({
        "name": NAME,
        "version": version,
        "description": "<skywatch-trainer>: train a small neural network on CIFAR-2 (bird or airplane?) in the reader's browser, in WebAssembly or on the GPU.",
        "license": "MIT",
        "type": "module",
        "main": "./index.js",
        "types": "./index.d.ts",
        "exports": {
            ".": { "types": "./index.d.ts", "default": "./index.js" },
            "./widget.js": "./widget.js",
            "./package.json": "./package.json"
        },
        "files": files,
        "keywords": ["web-component", "custom-element", "neural-network", "webassembly", "webgpu", "cifar"],
    });
    serde_json::to_string_pretty(&json).expect("serialises") + "\n"
}

const INDEX_JS: &str = "// Registers <skywatch-trainer> (once per page: a second copy says so on the console).\nexport * from './widget.js';\n";

const INDEX_D_TS: &str = r#"// Types for <skywatch-trainer>. Importing the package registers the element.

/** The element's attributes (all strings in HTML). */
export interface SkywatchTrainerAttributes {
  /** The model: `lecture` (3072-512-2, Tanh) or `deep` (3072-1024-512-128-2). Default `lecture`. */
  preset?: 'lecture' | 'deep';
  /** Epochs to train, 1 to 1000. Default 5 (quick run) or 100 (full run). */
  epochs?: string;
  /** Training images used, or `all`. */
  'train-size'?: string;
  /** A seed (a whole number) or `random`. Default 0. */
  seed?: string;
  /** A bundle folder (`skywatch data`, `skywatch subset`), relative to the page. Default: the quick subset in the package. */
  'data-url'?: string;
  /** `auto` (WebGPU on a real GPU, else WebAssembly), `webgpu` or `wasm`. Default `auto`. */
  backend?: 'auto' | 'webgpu' | 'wasm';
  /** The run offered first where a GPU is available: `quick` or `full`. Default `quick`. */
  recipe?: 'quick' | 'full';
  /** Start training as soon as the element connects. */
  autostart?: '' | boolean;
  /** A smaller layout. */
  compact?: '' | boolean;
  /** `light`, `dark` or `auto` (the reader's preference). */
  theme?: 'light' | 'dark' | 'auto';
  /** URL of the full trainer page, for the link at the bottom. */
  'full-page'?: string;
}

/** The element. Its state is reflected in `data-state`: loading, ready, training, done, error. */
export declare class SkywatchTrainer extends HTMLElement {}

declare global {
  interface HTMLElementTagNameMap {
    'skywatch-trainer': SkywatchTrainer;
  }
}
"#;

const LICENSE: &str = "MIT License\n\nPermission is hereby granted, free of charge, to any person obtaining a copy of this software and\nassociated documentation files (the \"Software\"), to deal in the Software without restriction,\nincluding without limitation the rights to use, copy, modify, merge, publish, distribute,\nsublicense, and/or sell copies of the Software, and to permit persons to whom the Software is\nfurnished to do so, subject to the following conditions:\n\nThe above copyright notice and this permission notice shall be included in all copies or\nsubstantial portions of the Software.\n\nTHE SOFTWARE IS PROVIDED \"AS IS\", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR IMPLIED, INCLUDING BUT\nNOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY, FITNESS FOR A PARTICULAR PURPOSE AND\nNONINFRINGEMENT. IN NO EVENT SHALL THE AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM,\nDAMAGES OR OTHER LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM, OUT\nOF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE SOFTWARE.\n";

const README: &str = include_str!("pack/README.md");

fn write(path: &Path, text: &str) -> Result<()> {
    fs::write(path, text).map_err(|e| Error::io(path, e))
}

fn copy(from: &Path, to: &Path) -> Result<()> {
    fs::copy(from, to).map(|_| ()).map_err(|e| Error::io(from, e))
}

fn copy_tree(from: &Path, to: &Path) -> Result<()> {
    fs::create_dir_all(to).map_err(|e| Error::io(to, e))?;
    for entry in fs::read_dir(from).map_err(|e| Error::io(from, e))? {
        let entry = entry.map_err(|e| Error::io(from, e))?;
        let (src, dst) = (entry.path(), to.join(entry.file_name()));
        // wasm-pack's .gitignore must not go in: npm pack would read it as the package's ignore list.
        if entry.file_name().to_string_lossy().starts_with('.') {
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
