//! Building a bundle (native only): from the official CIFAR-10 binary archive (downloaded or on
//! disk), its extracted folder, or an image-folder tree.
//!
//! # Sources
//!
//! * [`SourceSpec::Download`]: the official archive, downloaded into a cache folder and checked
//!   against [`BuildOptions::md5`] (or [`OFFICIAL_MD5`]) before it is used (`download.rs`).
//! * [`SourceSpec::Path`] to a `.tar.gz` / `.tgz` file: the same archive already on disk; its md5
//!   is checked too (`archive.rs`).
//! * [`SourceSpec::Path`] to an extracted `cifar-10-batches-bin/` folder (or a folder holding it).
//! * [`SourceSpec::Path`] to an image-folder tree `{train,test}/{class}/*.{jpg,jpeg,png}` of
//!   32 x 32 RGB images (`images.rs`).
//!
//! For the CIFAR binary sources the official record order is kept, filtered to the chosen
//! classes; for an image folder the classes are interleaved round-robin so that any prefix of a
//! split is balanced.
//!
//! # Idempotence and atomic output
//!
//! The manifest records a fingerprint of the input (`plan.rs`); when `out/manifest.json` already
//! describes the same input, classes and format, and its files are intact, nothing is read or
//! written again. Otherwise everything is read and validated in memory, then written through
//! temporary files and renames, the manifest last (`bundle.rs`): a reader sees the old bundle or
//! the new one, and a failed build leaves nothing behind.
//!
//! | file | what |
//! |------|------|
//! | `mod.rs` | the options, [`build`] and [`subset`], the class names and the records read |
//! | `plan.rs` | which source a path is, and its fingerprint for the up-to-date check |
//! | `download.rs` | the official release: download into the cache, md5-checked |
//! | `archive.rs` | the CIFAR-10 binary format: the `.tar.gz` read as a stream, or its extracted batch files |
//! | `images.rs` | image folders: listing, decoding and checking each picture |
//! | `bundle.rs` | the bundle writer: temporary files, renames, the manifest last |

mod archive;
mod bundle;
mod download;
mod images;
mod plan;

pub use archive::{BATCH_FILES, read_archive_from};
pub use download::{OFFICIAL_BYTES, OFFICIAL_MD5, OFFICIAL_URL};
pub use images::decode_image_bytes;

use crate::data::{CIFAR10_CLASSES, Dataset, Manifest, SourceInfo, Split, sha256_hex};
use crate::error::{Error, Result};
pub use bundle::{FILES_JS, files_js};
use bundle::{up_to_date, write_bundle};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use plan::{Plan, location};
use std::fs;
use std::path::{Path, PathBuf};

/// Where the page serves the full bundle from, and the CLI's default for it.
pub const DEFAULT_DATA_DIR: &str = "www/data";
/// The blog widget's quick subset: the first training and test images of the full bundle.
pub const QUICK_TRAIN: usize = 1000;
pub const QUICK_TEST: usize = 500;

/// Where the images come from.
#[derive(Clone, Debug)]
pub enum SourceSpec {
    /// Download the archive from `url` into `cache_dir` (reused when already there and intact).
    Download { url: String, cache_dir: PathBuf },
    /// A `.tar.gz` / `.tgz` archive, an extracted `cifar-10-batches-bin/` folder (or a folder
    /// holding one), or an image-folder tree with `train/` and `test/`.
    Path(PathBuf),
}

#[derive(Clone, Debug)]
pub struct BuildOptions {
    pub source: SourceSpec,
    /// CIFAR-10 class names, at least two, distinct; label `i` of the bundle is `classes[i]`.
    pub classes: Vec<String>,
    /// The bundle folder; created (with its parents) when missing.
    pub out: PathBuf,
    /// Expected md5 of the archive (hex); [`OFFICIAL_MD5`] when `None`. Not used by the folder
    /// sources, which have no archive.
    pub md5: Option<String>,
    /// Show progress bars on stderr (they stay hidden when stderr is not a terminal).
    pub progress: bool,
}

#[derive(Clone, Debug)]
pub enum BuildOutcome {
    /// A new bundle was written.
    Built(Manifest),
    /// `out` already held the bundle for this input and these classes; nothing was written.
    UpToDate(Manifest),
}

impl BuildOutcome {
    pub fn manifest(&self) -> &Manifest {
        match self {
            BuildOutcome::Built(m) | BuildOutcome::UpToDate(m) => m,
        }
    }

    /// "built" or "up to date", for the command line.
    pub fn verb(&self) -> &'static str {
        match self {
            BuildOutcome::Built(_) => "built",
            BuildOutcome::UpToDate(_) => "up to date",
        }
    }
}

/// Builds (or confirms) the bundle described by `opts` in `opts.out`.
pub fn build(opts: &BuildOptions) -> Result<BuildOutcome> {
    // Cheap checks first, so a typo is reported before a 170 MB download or a decode of 12 000
    // images.
    let labels = resolve_classes(&opts.classes)?;
    let md5 = expected_md5(opts.md5.as_deref())?;
    let plan = Plan::resolve(&opts.source, &md5, &opts.classes, opts.progress)?;

    if let Some(m) = up_to_date(&opts.out, &plan.info, &opts.classes) {
        return Ok(BuildOutcome::UpToDate(m));
    }

    let (train, test) = plan.input.read(&plan.info, &opts.classes, &labels, opts.progress)?;
    let manifest = write_bundle(&opts.out, &opts.classes, &train, &test, plan.info, false)?;
    Ok(BuildOutcome::Built(manifest))
}

/// Writes (or confirms) in `out` a smaller bundle made of the first `train` and `test` records of
/// the bundle in `src` (the blog widget's quick mode downloads only this). Bundles built from an
/// image folder interleave the classes, so the prefixes are balanced. With `encoded` it is written
/// as a version-2 bundle (pixel predictor, then deflate: [`crate::data::codec`]).
pub fn subset(src: &Path, out: &Path, train: usize, test: usize, encoded: bool) -> Result<BuildOutcome> {
    let json = fs::read(src.join("manifest.json")).map_err(|e| Error::io(src.join("manifest.json"), e))?;
    let m = Manifest::parse(&json)?;
    if train == 0 || test == 0 {
        return Err(Error::Config(format!("a subset needs at least one image per split (asked {train} and {test})")));
    }
    // The encoding is part of the fingerprint: a raw subset is not up to date for an encoded one.
    let key = if encoded { format!(":{}", crate::data::codec::SUB_UP_DEFLATE) } else { String::new() };
    let fingerprint = sha256_hex(format!("{}:{}:{train}:{test}{key}", m.train.sha256, m.test.sha256).as_bytes());
    let info = SourceInfo { kind: "subset".into(), location: location(src), fingerprint };
    if let Some(m) = up_to_date(out, &info, &m.classes) {
        return Ok(BuildOutcome::UpToDate(m));
    }
    let data = Dataset::load(src)?;
    let prefix = |split: &Split, n: usize| {
        let mut r = Records::new(m.classes.len());
        for i in 0..n.min(split.len()) {
            r.push(split.label(i), split.image(i));
        }
        r
    };
    let manifest =
        write_bundle(out, &m.classes, &prefix(&data.train, train), &prefix(&data.test, test), info, encoded)?;
    Ok(BuildOutcome::Built(manifest))
}

/// The official label of each requested class, in the requested order.
pub(super) fn resolve_classes(names: &[String]) -> Result<Vec<u8>> {
    let known = CIFAR10_CLASSES.join(", ");
    if names.len() < 2 {
        return Err(Error::Config(format!(
            "a bundle needs at least 2 classes, {} given; the CIFAR-10 classes are: {known}",
            names.len()
        )));
    }
    let mut labels = Vec::with_capacity(names.len());
    for (i, name) in names.iter().enumerate() {
        let Some(label) = CIFAR10_CLASSES.iter().position(|c| c == name) else {
            return Err(Error::Config(format!("unknown class '{name}'; the CIFAR-10 classes are: {known}")));
        };
        if names[..i].contains(name) {
            return Err(Error::Config(format!(
                "class '{name}' is listed twice; give each class once (the CIFAR-10 classes are: {known})"
            )));
        }
        labels.push(label as u8);
    }
    Ok(labels)
}

pub(super) fn expected_md5(given: Option<&str>) -> Result<String> {
    let md5 = given.unwrap_or(OFFICIAL_MD5).trim().to_ascii_lowercase();
    if md5.len() != 32 || !md5.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(Error::Config(format!("md5 '{}' is not 32 hexadecimal digits", given.unwrap_or_default())));
    }
    Ok(md5)
}

/// Official label (0..9) to bundle label, for the classes kept.
pub(super) fn label_map(labels: &[u8]) -> [Option<u8>; 10] {
    let mut map = [None; 10];
    for (new, &old) in labels.iter().enumerate() {
        map[old as usize] = Some(new as u8);
    }
    map
}

/// Records of one split and the number per class.
pub(super) struct Records {
    pub(super) bytes: Vec<u8>,
    pub(super) per_class: Vec<usize>,
}

impl Records {
    pub(super) fn new(classes: usize) -> Records {
        Records { bytes: Vec::new(), per_class: vec![0; classes] }
    }

    pub(super) fn push(&mut self, label: u8, pixels: &[u8]) {
        self.bytes.push(label);
        self.bytes.extend_from_slice(pixels);
        self.per_class[label as usize] += 1;
    }

    pub(super) fn append(&mut self, other: Records) {
        self.bytes.extend_from_slice(&other.bytes);
        for (a, b) in self.per_class.iter_mut().zip(other.per_class) {
            *a += b;
        }
    }

    pub(super) fn from_split(split: Split, classes: usize) -> Records {
        Records { per_class: split.counts(classes), bytes: split.records }
    }
}

pub(super) fn progress_bar(show: bool, len: Option<u64>, message: &'static str, bytes: bool) -> ProgressBar {
    if !show {
        return ProgressBar::hidden();
    }
    let template = match (len, bytes) {
        (Some(_), true) => "{msg} [{bar:40}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
        (Some(_), false) => "{msg} [{bar:40}] {pos}/{len} eta {eta}",
        (None, true) => "{spinner} {msg} {bytes} {bytes_per_sec}",
        (None, false) => "{spinner} {msg} {pos}",
    };
    let style =
        ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_bar()).progress_chars("=> ");
    ProgressBar::with_draw_target(len, ProgressDrawTarget::stderr()).with_style(style).with_message(message)
}
