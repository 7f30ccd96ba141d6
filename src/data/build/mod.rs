//! Building a bundle (native only): from the official CIFAR-10 binary archive (downloaded or on
//! disk), its extracted folder, or an image-folder tree.
//!
//! # Sources
//!
//! * [`SourceSpec::Download`]: the archive is streamed from the URL into a temporary file in the
//!   cache folder while its md5 is computed, checked against [`BuildOptions::md5`] (or
//!   [`OFFICIAL_MD5`]) and only then renamed to `cifar-10-binary.tar.gz`, so the cache never holds
//!   a partial or wrong archive under the final name. A cached archive with the right md5 is used
//!   as it is.
//! * [`SourceSpec::Path`] to a `.tar.gz` / `.tgz` file: the same archive already on disk; its md5
//!   is checked too.
//! * [`SourceSpec::Path`] to an extracted `cifar-10-batches-bin/` folder (or a folder holding it).
//! * [`SourceSpec::Path`] to an image-folder tree `{train,test}/{class}/*.{jpg,jpeg,png}` of
//!   32 x 32 RGB images.
//!
//! The archive is read as a stream (gzip, then tar) and never extracted to disk. For the CIFAR
//! binary sources the official record order is kept, filtered to the chosen classes; for an image
//! folder the classes are interleaved round-robin so that any prefix of a split is balanced.
//!
//! # Idempotence
//!
//! The manifest records a fingerprint of the input (the archive's md5, or the names, sizes and
//! modification times of the files read). When `out/manifest.json` already describes the same
//! input, classes and format, and its files are intact, nothing is read or written again.
//!
//! # Atomic output
//!
//! Everything is read and validated in memory before the first byte is written. The record files
//! are named after their content hash and each is written to a temporary file in the bundle
//! folder and renamed into place; `manifest.json` is written the same way, last: that rename is
//! the commit point. A reader therefore sees either the old bundle or the new one, never a mix.
//! Only after the commit are the record files of the previous manifest deleted. On failure the
//! temporary files and any record file this build added are removed, and so is the bundle folder
//! if this build created it.

use super::{CIFAR10_CLASSES, Manifest, PIXELS, RECORD_BYTES, SIDE, SourceInfo, hex};
use crate::error::{Error, Result};
use flate2::read::GzDecoder;
use image::ImageDecoder as _;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use md5::{Digest, Md5};
use sha2::Sha256;
use std::fs::{self, File};
use std::io::{self, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, UNIX_EPOCH};

#[cfg(feature = "parallel")]
use rayon::prelude::*;

/// The official CIFAR-10 binary release.
/// Where the page serves the full bundle from, and the CLI's default for it.
pub const DEFAULT_DATA_DIR: &str = "www/data";
/// The blog widget's quick subset: the first training and test images of the full bundle.
pub const QUICK_TRAIN: usize = 1000;
pub const QUICK_TEST: usize = 500;

pub const OFFICIAL_URL: &str = "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz";
pub const OFFICIAL_MD5: &str = "c32a1d4ab5d03f1284b67883e8d87530";
pub const OFFICIAL_BYTES: u64 = 170_052_171;

/// Name of the downloaded archive inside the cache folder.
const CACHE_NAME: &str = "cifar-10-binary.tar.gz";
const KIND_BINARY: &str = "cifar-10-binary";
const KIND_IMAGES: &str = "image-folder";
/// The batch files of the official binary release: five training batches, then the test batch.
pub const BATCH_FILES: [&str; 6] = [
    "data_batch_1.bin",
    "data_batch_2.bin",
    "data_batch_3.bin",
    "data_batch_4.bin",
    "data_batch_5.bin",
    "test_batch.bin",
];
const TRAIN_BATCHES: [&str; 5] = [BATCH_FILES[0], BATCH_FILES[1], BATCH_FILES[2], BATCH_FILES[3], BATCH_FILES[4]];
const TEST_BATCH: &str = BATCH_FILES[5];
const IMAGE_EXTENSIONS: [&str; 3] = ["jpg", "jpeg", "png"];
/// Prefix of every temporary file this module creates, so they are recognisable as ours.
const TMP_PREFIX: &str = ".skywatch-";

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
    let manifest = write_bundle(&opts.out, &opts.classes, &train, &test, plan.info)?;
    Ok(BuildOutcome::Built(manifest))
}

/// Writes (or confirms) in `out` a smaller bundle made of the first `train` and `test` records of
/// the bundle in `src` (the blog widget's quick mode downloads only this). Bundles built from an
/// image folder interleave the classes, so the prefixes are balanced.
pub fn subset(src: &Path, out: &Path, train: usize, test: usize) -> Result<BuildOutcome> {
    let json = fs::read(src.join("manifest.json")).map_err(|e| Error::io(src.join("manifest.json"), e))?;
    let m = Manifest::parse(&json)?;
    if train == 0 || test == 0 {
        return Err(Error::Config(format!("a subset needs at least one image per split (asked {train} and {test})")));
    }
    let fingerprint = super::sha256_hex(format!("{}:{}:{train}:{test}", m.train.sha256, m.test.sha256).as_bytes());
    let info = SourceInfo { kind: "subset".into(), location: location(src), fingerprint };
    if let Some(m) = up_to_date(out, &info, &m.classes) {
        return Ok(BuildOutcome::UpToDate(m));
    }
    let data = super::Dataset::load(src)?;
    let prefix = |split: &super::Split, n: usize| {
        let mut r = Records::new(m.classes.len());
        for i in 0..n.min(split.len()) {
            r.push(split.label(i), split.image(i));
        }
        r
    };
    let manifest = write_bundle(out, &m.classes, &prefix(&data.train, train), &prefix(&data.test, test), info)?;
    Ok(BuildOutcome::Built(manifest))
}

// ---------------------------------------------------------------------------------------------
// Options

/// The official label of each requested class, in the requested order.
fn resolve_classes(names: &[String]) -> Result<Vec<u8>> {
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

fn expected_md5(given: Option<&str>) -> Result<String> {
    let md5 = given.unwrap_or(OFFICIAL_MD5).trim().to_ascii_lowercase();
    if md5.len() != 32 || !md5.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(Error::Config(format!("md5 '{}' is not 32 hexadecimal digits", given.unwrap_or_default())));
    }
    Ok(md5)
}

/// Official label (0..9) to bundle label, for the classes kept.
fn label_map(labels: &[u8]) -> [Option<u8>; 10] {
    let mut map = [None; 10];
    for (new, &old) in labels.iter().enumerate() {
        map[old as usize] = Some(new as u8);
    }
    map
}

// ---------------------------------------------------------------------------------------------
// Sources

/// A resolved source: what identifies it (for the manifest and the up-to-date check), and what
/// must be read to build it.
struct Plan {
    info: SourceInfo,
    input: Input,
}

enum Input {
    Download {
        url: String,
        cache_dir: PathBuf,
        md5: String,
    },
    Archive {
        path: PathBuf,
        md5: String,
    },
    Batches {
        dir: PathBuf,
    },
    Images {
        /// `[train, test]`, each per class in the requested order, files sorted by name.
        splits: [Vec<Vec<PathBuf>>; 2],
    },
}

/// Files listed for a fingerprint: relative path (as bytes, so any file name works), size and
/// modification time in nanoseconds since the epoch.
type Stamp = (Vec<u8>, u64, i128);

impl Plan {
    fn resolve(source: &SourceSpec, md5: &str, classes: &[String], progress: bool) -> Result<Plan> {
        match source {
            SourceSpec::Download { url, cache_dir } => Ok(Plan {
                // The md5 identifies the archive's content whatever the URL, so an up-to-date
                // bundle is recognised without the cache or the network.
                info: SourceInfo {
                    kind: KIND_BINARY.into(),
                    location: url.clone(),
                    fingerprint: archive_fingerprint(md5),
                },
                input: Input::Download { url: url.clone(), cache_dir: cache_dir.clone(), md5: md5.to_string() },
            }),
            SourceSpec::Path(path) => {
                let meta = fs::metadata(path).map_err(|e| Error::io(path, e))?;
                if meta.is_file() {
                    Plan::archive(path, md5, progress)
                } else if let Some(dir) = batches_dir(path) {
                    Plan::batches(&dir)
                } else if path.join("train").is_dir() && path.join("test").is_dir() {
                    Plan::images(path, classes)
                } else {
                    Err(Error::Config(format!(
                        "{} is neither a CIFAR-10 binary folder (data_batch_1.bin .. data_batch_5.bin, test_batch.bin, possibly inside cifar-10-batches-bin/) nor an image folder (train/<class>/*.jpg, test/<class>/*.jpg)",
                        path.display()
                    )))
                }
            }
        }
    }

    fn archive(path: &Path, md5: &str, progress: bool) -> Result<Plan> {
        let name = path.file_name().map(|n| n.to_string_lossy().to_ascii_lowercase()).unwrap_or_default();
        if !(name.ends_with(".tar.gz") || name.ends_with(".tgz")) {
            return Err(Error::Config(format!(
                "{}: expected the CIFAR-10 binary archive (a .tar.gz or .tgz file), an extracted cifar-10-batches-bin folder or an image folder",
                path.display()
            )));
        }
        // The archive is hashed even when the bundle turns out to be up to date: the fingerprint
        // must describe the bytes on disk now, and hashing is quick next to decompressing.
        let actual = md5_file(path, progress)?;
        check_md5(&path.display().to_string(), md5, &actual)?;
        Ok(Plan {
            info: SourceInfo {
                kind: KIND_BINARY.into(),
                location: location(path),
                fingerprint: archive_fingerprint(&actual),
            },
            input: Input::Archive { path: path.to_path_buf(), md5: actual },
        })
    }

    fn batches(dir: &Path) -> Result<Plan> {
        let mut stamps = Vec::new();
        for name in BATCH_FILES.iter() {
            let file = dir.join(name);
            let meta = match fs::metadata(&file) {
                Ok(m) if m.is_file() => m,
                Ok(_) => {
                    return Err(Error::format(file.display().to_string(), None, "is not a regular file"));
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    return Err(Error::format(
                        file.display().to_string(),
                        None,
                        "is missing: an extracted CIFAR-10 binary folder holds data_batch_1.bin .. data_batch_5.bin and test_batch.bin",
                    ));
                }
                Err(e) => return Err(Error::io(file, e)),
            };
            stamps.push(stamp(name.as_bytes().to_vec(), &meta));
        }
        Ok(Plan {
            info: SourceInfo {
                kind: KIND_BINARY.into(),
                location: location(dir),
                fingerprint: files_fingerprint(KIND_BINARY, stamps),
            },
            input: Input::Batches { dir: dir.to_path_buf() },
        })
    }

    fn images(root: &Path, classes: &[String]) -> Result<Plan> {
        let mut stamps = Vec::new();
        let mut splits: [Vec<Vec<PathBuf>>; 2] = Default::default();
        for (split, lists) in ["train", "test"].into_iter().zip(&mut splits) {
            for class in classes {
                let rel = Path::new(split).join(class);
                let files = list_images(&root.join(&rel))?;
                for (path, meta) in &files {
                    // Relative paths keep the fingerprint valid when the tree is moved whole.
                    let name = path.file_name().unwrap_or_default();
                    let rel = rel.join(name);
                    stamps.push(stamp(rel.as_os_str().as_encoded_bytes().to_vec(), meta));
                }
                lists.push(files.into_iter().map(|(p, _)| p).collect());
            }
        }
        Ok(Plan {
            info: SourceInfo {
                kind: KIND_IMAGES.into(),
                location: location(root),
                fingerprint: files_fingerprint(KIND_IMAGES, stamps),
            },
            input: Input::Images { splits },
        })
    }
}

impl Input {
    /// Reads and validates the whole input: `(train, test)` records. `labels` are the official
    /// labels of `classes`.
    fn read(self, info: &SourceInfo, classes: &[String], labels: &[u8], progress: bool) -> Result<(Records, Records)> {
        let map = label_map(labels);
        let (train, test) = match self {
            Input::Download { url, cache_dir, md5 } => {
                let path = fetch(&url, &cache_dir, &md5, progress)?;
                read_archive(&path, &md5, classes, progress)?
            }
            Input::Archive { path, md5 } => read_archive(&path, &md5, classes, progress)?,
            Input::Batches { dir } => read_batches(&dir, &map, labels.len())?,
            Input::Images { splits } => {
                let [train, test] = splits;
                let bar = progress_bar(
                    progress,
                    Some(train.iter().chain(&test).map(Vec::len).sum::<usize>() as u64),
                    "decoding images",
                    false,
                );
                let out = (read_images(&train, &bar)?, read_images(&test, &bar)?);
                bar.finish_and_clear();
                return Ok(out);
            }
        };
        let source = &info.location;
        for (split, records) in [("train", &train), ("test", &test)] {
            if let Some(c) = records.per_class.iter().position(|&n| n == 0) {
                return Err(Error::format(
                    source.clone(),
                    None,
                    format!("the {split} split has no image of class {}", CIFAR10_CLASSES[labels[c] as usize]),
                ));
            }
        }
        Ok((train, test))
    }
}

/// The folder with the batch files: `dir` itself or its `cifar-10-batches-bin/`.
fn batches_dir(dir: &Path) -> Option<PathBuf> {
    let has_batches = |d: &Path| BATCH_FILES.iter().any(|n| d.join(n).exists());
    if has_batches(dir) {
        return Some(dir.to_path_buf());
    }
    let inner = dir.join("cifar-10-batches-bin");
    inner.is_dir().then_some(inner)
}

fn location(path: &Path) -> String {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf()).display().to_string()
}

fn archive_fingerprint(md5: &str) -> String {
    super::sha256_hex(format!("cifar-10-binary.tar.gz md5 {md5}\n").as_bytes())
}

fn stamp(rel: Vec<u8>, meta: &fs::Metadata) -> Stamp {
    let mtime = meta
        .modified()
        .ok()
        .map(|t| match t.duration_since(UNIX_EPOCH) {
            Ok(d) => d.as_nanos() as i128,
            Err(e) => -(e.duration().as_nanos() as i128),
        })
        .unwrap_or(0);
    (rel, meta.len(), mtime)
}

fn files_fingerprint(kind: &str, mut stamps: Vec<Stamp>) -> String {
    stamps.sort();
    let mut h = Sha256::new();
    h.update(kind.as_bytes());
    h.update(b"\n");
    for (rel, size, mtime) in &stamps {
        // Length-prefixed so that no file name can forge another entry.
        h.update((rel.len() as u64).to_le_bytes());
        h.update(rel);
        h.update(size.to_le_bytes());
        h.update(mtime.to_le_bytes());
    }
    hex(&h.finalize())
}

/// The image files of one class folder, sorted by name, with their metadata.
fn list_images(dir: &Path) -> Result<Vec<(PathBuf, fs::Metadata)>> {
    let shown = dir.display().to_string();
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if matches!(e.kind(), io::ErrorKind::NotFound | io::ErrorKind::NotADirectory) => {
            return Err(Error::format(
                shown,
                None,
                "class folder is missing (expected {train,test}/<class>/ with .jpg, .jpeg or .png images)",
            ));
        }
        Err(e) => return Err(Error::io(dir, e)),
    };
    let mut files = Vec::new();
    for entry in entries {
        let path = entry.map_err(|e| Error::io(dir, e))?.path();
        let is_image = path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| IMAGE_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()));
        if !is_image {
            continue;
        }
        // Follows symbolic links, so a tree of links to the real images works.
        let meta = fs::metadata(&path).map_err(|e| Error::io(&path, e))?;
        if meta.is_file() {
            files.push((path, meta));
        }
    }
    if files.is_empty() {
        return Err(Error::format(shown, None, "class folder has no .jpg, .jpeg or .png images"));
    }
    files.sort_by(|a, b| a.0.file_name().cmp(&b.0.file_name()));
    Ok(files)
}

// ---------------------------------------------------------------------------------------------
// Reading

/// Records of one split and the number per class.
struct Records {
    bytes: Vec<u8>,
    per_class: Vec<usize>,
}

impl Records {
    fn new(classes: usize) -> Records {
        Records { bytes: Vec::new(), per_class: vec![0; classes] }
    }

    fn push(&mut self, label: u8, pixels: &[u8]) {
        self.bytes.push(label);
        self.bytes.extend_from_slice(pixels);
        self.per_class[label as usize] += 1;
    }

    fn append(&mut self, other: Records) {
        self.bytes.extend_from_slice(&other.bytes);
        for (a, b) in self.per_class.iter_mut().zip(other.per_class) {
            *a += b;
        }
    }

    fn from_split(split: super::Split, classes: usize) -> Records {
        Records { per_class: split.counts(classes), bytes: split.records }
    }
}

/// Streams one CIFAR-10 batch (`size` bytes from `r`), keeping the records of the mapped classes.
/// `file` names it in errors; `on_io` turns a read error into the right error for the source.
fn read_batch(
    r: &mut impl Read,
    size: u64,
    file: &str,
    map: &[Option<u8>; 10],
    classes: usize,
    on_io: impl Fn(io::Error) -> Error,
) -> Result<Records> {
    let rb = RECORD_BYTES as u64;
    if !size.is_multiple_of(rb) {
        return Err(Error::format(
            file,
            None,
            format!(
                "{size} bytes is not a whole number of {RECORD_BYTES}-byte records ({} records and {} bytes left over)",
                size / rb,
                size % rb
            ),
        ));
    }
    if size == 0 {
        return Err(Error::format(file, None, "has no records"));
    }
    let mut out = Records::new(classes);
    // Record by record rather than one allocation of `size`: the size comes from an archive
    // header, and a corrupt one must not turn into a huge allocation.
    let mut rec = [0u8; RECORD_BYTES];
    for i in 0..size / rb {
        r.read_exact(&mut rec).map_err(&on_io)?;
        let label = rec[0];
        let Some(&mapped) = map.get(label as usize) else {
            return Err(Error::format(
                file,
                Some(i * rb),
                format!("label {label} of record {i} is not a CIFAR-10 label (0..9)"),
            ));
        };
        if let Some(new) = mapped {
            out.push(new, &rec[1..]);
        }
    }
    Ok(out)
}

/// Reads the train and test batches from the archive at `path`, streaming, and checks that its
/// md5 is still `md5` (it was checked before; this catches a file changed in between).
fn read_archive(path: &Path, md5: &str, classes: &[String], progress: bool) -> Result<(Records, Records)> {
    let shown = path.display().to_string();
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    let len = file.metadata().map_err(|e| Error::io(path, e))?.len();
    let bar = progress_bar(progress, Some(len), "reading archive", true);
    let mut hashing = HashingReader { inner: file, md5: Md5::new(), bar: bar.clone() };
    let (train, test) = read_archive_from(&mut hashing, &shown, classes)?;
    bar.finish_and_clear();
    check_md5(&shown, md5, &hex(&hashing.md5.finalize()))?;
    Ok((Records::from_split(train, classes.len()), Records::from_split(test, classes.len())))
}

/// Reads the CIFAR-10 binary archive (a gzip-compressed tar, as released) from `reader` as a
/// stream, without extracting it, and returns the `(train, test)` records of `classes` (CIFAR-10
/// class names; label `i` of the result is `classes[i]`) in the official order: the train split
/// is `data_batch_1.bin` .. `data_batch_5.bin`, the test split `test_batch.bin`, wherever they are
/// in the archive. `shown` names the archive in errors.
///
/// `reader` is read to its very end, so the gzip trailer's CRC is checked and a hashing reader
/// sees every byte. The archive and download sources of [`build`] read their file through this
/// (behind a reader that computes the md5); it is public so that any byte source can be checked
/// the same way (the fuzz targets use it).
pub fn read_archive_from(reader: impl Read, shown: &str, classes: &[String]) -> Result<(super::Split, super::Split)> {
    let labels = resolve_classes(classes)?;
    let map = label_map(&labels);
    let classes = labels.len();
    let mut archive = tar::Archive::new(GzDecoder::new(reader));
    let corrupt = |member: Option<&str>, e: io::Error| {
        let file = match member {
            Some(m) => format!("{shown}: {m}"),
            None => shown.to_string(),
        };
        Error::format(file, None, format!("truncated or corrupt archive: {e}"))
    };

    let mut train: [Option<Records>; 5] = Default::default();
    let mut test: Option<Records> = None;
    let entries = archive.entries().map_err(|e| corrupt(None, e))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| corrupt(None, e))?;
        let member = entry.path().map_err(|e| corrupt(None, e))?.to_string_lossy().into_owned();
        let name = Path::new(&member).file_name().and_then(|n| n.to_str()).unwrap_or_default();
        let slot = if name == TEST_BATCH {
            &mut test
        } else if let Some(i) = TRAIN_BATCHES.iter().position(|b| *b == name) {
            &mut train[i]
        } else {
            continue;
        };
        let file = format!("{shown}: {member}");
        if !entry.header().entry_type().is_file() {
            return Err(Error::format(file, None, "is not a regular file"));
        }
        if slot.is_some() {
            return Err(Error::format(file, None, format!("the archive holds {name} more than once")));
        }
        let size = entry.size();
        *slot = Some(read_batch(&mut entry, size, &file, &map, classes, |e| corrupt(Some(&member), e))?);
    }

    // Read to the very end: the gzip trailer's CRC is checked there, and an md5 needs every byte.
    let mut gz = archive.into_inner();
    io::copy(&mut gz, &mut io::sink()).map_err(|e| corrupt(None, e))?;
    io::copy(&mut gz.into_inner(), &mut io::sink()).map_err(|e| corrupt(None, e))?;

    let missing = |name: &str| {
        Error::format(
            shown,
            None,
            format!(
                "member {name} is missing (the CIFAR-10 binary archive holds cifar-10-batches-bin/data_batch_1.bin .. data_batch_5.bin and test_batch.bin)"
            ),
        )
    };
    let mut all = Records::new(classes);
    for (batch, name) in train.into_iter().zip(TRAIN_BATCHES) {
        all.append(batch.ok_or_else(|| missing(name))?);
    }
    let test = test.ok_or_else(|| missing(TEST_BATCH))?;
    // `read_batch` kept only mapped labels, all below `classes`.
    Ok((super::Split { records: all.bytes }, super::Split { records: test.bytes }))
}

/// Reads the batch files of an extracted `cifar-10-batches-bin/` folder.
fn read_batches(dir: &Path, map: &[Option<u8>; 10], classes: usize) -> Result<(Records, Records)> {
    let read = |name: &str| -> Result<Records> {
        let path = dir.join(name);
        let file = File::open(&path).map_err(|e| Error::io(&path, e))?;
        let size = file.metadata().map_err(|e| Error::io(&path, e))?.len();
        let shown = path.display().to_string();
        read_batch(&mut BufReader::new(file), size, &shown, map, classes, |e| Error::io(&path, e))
    };
    let mut train = Records::new(classes);
    for name in TRAIN_BATCHES {
        train.append(read(name)?);
    }
    Ok((train, read(TEST_BATCH)?))
}

/// Decodes one split's images (`files[class]`) and interleaves the classes round-robin.
fn read_images(files: &[Vec<PathBuf>], bar: &ProgressBar) -> Result<Records> {
    let flat: Vec<&PathBuf> = files.iter().flatten().collect();
    let decode = |p: &&PathBuf| {
        let r = decode_image(p);
        bar.inc(1);
        r
    };
    // Collected in input order either way, and the first error in that order is the one
    // reported, so the result does not depend on thread timing.
    #[cfg(feature = "parallel")]
    let decoded: Vec<Result<Vec<u8>>> = flat.par_iter().map(decode).collect();
    #[cfg(not(feature = "parallel"))]
    let decoded: Vec<Result<Vec<u8>>> = flat.iter().map(decode).collect();
    let decoded = decoded.into_iter().collect::<Result<Vec<_>>>()?;

    let mut per_class = Vec::with_capacity(files.len());
    let mut rest = decoded.as_slice();
    for list in files {
        let (head, tail) = rest.split_at(list.len());
        per_class.push(head);
        rest = tail;
    }
    let mut out = Records::new(files.len());
    out.bytes.reserve(flat.len() * RECORD_BYTES);
    let longest = files.iter().map(Vec::len).max().unwrap_or(0);
    for i in 0..longest {
        for (label, images) in per_class.iter().enumerate() {
            if let Some(pixels) = images.get(i) {
                out.push(label as u8, pixels);
            }
        }
    }
    Ok(out)
}

/// One 32 x 32 RGB image file as planar `R, G, B` bytes.
fn decode_image(path: &Path) -> Result<Vec<u8>> {
    let bytes = fs::read(path).map_err(|e| Error::io(path, e))?;
    decode_image_bytes(&bytes, &path.display().to_string())
}

/// Decodes one image of an image folder: a JPEG or PNG (told by its content, not its name) that
/// must be 32 x 32 8-bit RGB without alpha, returned as the 3072 planar bytes of a record (the
/// 1024 red values, then green, then blue). `shown` names the image in errors. The image-folder
/// source of [`build`] decodes every file through this.
pub fn decode_image_bytes(bytes: &[u8], shown: &str) -> Result<Vec<u8>> {
    // A crafted file can make a decoder panic (zune-jpeg 0.5.15, the `image` crate's JPEG
    // decoder, indexes out of bounds on some): that is one more image that cannot be decoded, to
    // be named like the others, not a crash of the whole build.
    std::panic::catch_unwind(|| decode_rgb32(bytes, shown)).unwrap_or_else(|panic| {
        let what = panic.downcast_ref::<&str>().copied().or_else(|| panic.downcast_ref::<String>().map(String::as_str));
        Err(Error::format(shown, None, format!("cannot be decoded: the decoder failed ({})", what.unwrap_or("panic"))))
    })
}

fn decode_rgb32(bytes: &[u8], shown: &str) -> Result<Vec<u8>> {
    let shown = || shown.to_string();
    // The format is taken from the content, not the extension: a PNG named .jpg still works.
    let reader = image::ImageReader::new(io::Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| Error::format(shown(), None, format!("cannot be read: {e}")))?;
    if reader.format().is_none() {
        return Err(Error::format(shown(), None, "is not a JPEG or PNG image"));
    }
    let undecodable = |e: image::ImageError| Error::format(shown(), None, format!("cannot be decoded: {e}"));
    let wrong = |w: u32, h: u32, color: image::ColorType| {
        let reason = if color == image::ColorType::Rgb8 {
            format!("is a {w}x{h} {color:?} image, expected 32x32 Rgb8")
        } else {
            format!("is a {w}x{h} {color:?} image, expected 32x32 Rgb8 (8-bit RGB, no alpha)")
        };
        Error::format(shown(), None, reason)
    };
    // Size and colour type from the header, before any pixel is decoded: a few hundred bytes can
    // declare an image of hundreds of megabytes, which would take seconds to decode only to be
    // refused.
    let decoder = reader.into_decoder().map_err(undecodable)?;
    let ((w, h), color) = (decoder.dimensions(), decoder.color_type());
    if color != image::ColorType::Rgb8 || (w, h) != (SIDE as u32, SIDE as u32) {
        return Err(wrong(w, h, color));
    }
    let img = image::DynamicImage::from_decoder(decoder).map_err(undecodable)?;
    // What the header announced, checked again on what was decoded.
    let (w, h, color) = (img.width(), img.height(), img.color());
    let image::DynamicImage::ImageRgb8(rgb) = img else {
        return Err(wrong(w, h, color));
    };
    if (w, h) != (SIDE as u32, SIDE as u32) {
        return Err(wrong(w, h, color));
    }
    let mut planar = vec![0u8; PIXELS];
    let plane = SIDE * SIDE;
    for (p, px) in rgb.as_raw().chunks_exact(3).enumerate() {
        planar[p] = px[0];
        planar[plane + p] = px[1];
        planar[2 * plane + p] = px[2];
    }
    Ok(planar)
}

// ---------------------------------------------------------------------------------------------
// Archive download and hashing

/// Counts and hashes what passes through, for the md5 of an archive read as a stream.
struct HashingReader<R> {
    inner: R,
    md5: Md5,
    bar: ProgressBar,
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.md5.update(&buf[..n]);
        self.bar.inc(n as u64);
        Ok(n)
    }
}

fn md5_file(path: &Path, progress: bool) -> Result<String> {
    let mut file = File::open(path).map_err(|e| Error::io(path, e))?;
    let len = file.metadata().map_err(|e| Error::io(path, e))?.len();
    let bar = progress_bar(progress, Some(len), "checking md5", true);
    let mut md5 = Md5::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Error::io(path, e)),
        };
        md5.update(&buf[..n]);
        bar.inc(n as u64);
    }
    bar.finish_and_clear();
    Ok(hex(&md5.finalize()))
}

fn check_md5(file: &str, expected: &str, actual: &str) -> Result<()> {
    if expected == actual {
        return Ok(());
    }
    Err(Error::Checksum {
        file: file.to_string(),
        algorithm: "md5",
        expected: expected.to_string(),
        actual: actual.to_string(),
    })
}

/// The archive in `cache_dir`, downloaded unless a copy with the right md5 is already there.
fn fetch(url: &str, cache_dir: &Path, md5: &str, progress: bool) -> Result<PathBuf> {
    let target = cache_dir.join(CACHE_NAME);
    // A cached copy with another md5 (another release, or damaged) is replaced below.
    if target.is_file() && md5_file(&target, progress)? == md5 {
        return Ok(target);
    }
    fs::create_dir_all(cache_dir).map_err(|e| Error::io(cache_dir, e))?;
    let mut tmp = temp_file(cache_dir)?;
    let failed = |reason: String| Error::Download { url: url.to_string(), reason };

    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_connect(Some(Duration::from_secs(30)))
        .timeout_recv_response(Some(Duration::from_secs(60)))
        // A stalled connection fails instead of hanging; a slow one is fine.
        .timeout_per_read(Some(Duration::from_secs(60)))
        .build()
        .into();
    let response = agent.get(url).call().map_err(|e| failed(e.to_string()))?;
    let body = response.into_body();
    let bar = progress_bar(progress, body.content_length(), "downloading", true);
    let mut reader = body.into_reader();
    let mut hasher = Md5::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(failed(e.to_string())),
        };
        hasher.update(&buf[..n]);
        tmp.write_all(&buf[..n]).map_err(|e| Error::io(tmp.path(), e))?;
        bar.inc(n as u64);
    }
    bar.finish_and_clear();
    tmp.as_file().sync_all().map_err(|e| Error::io(tmp.path(), e))?;
    // Dropping `tmp` on this error deletes the bad download.
    check_md5(url, md5, &hex(&hasher.finalize()))?;
    tmp.persist(&target).map_err(|e| Error::io(&target, e.error))?;
    sync_dir(cache_dir);
    Ok(target)
}

fn progress_bar(show: bool, len: Option<u64>, message: &'static str, bytes: bool) -> ProgressBar {
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

// ---------------------------------------------------------------------------------------------
// The bundle on disk

/// The manifest in `out` if it describes exactly this input and these classes and its files are
/// intact. Any doubt (missing, unreadable, other version, changed files) means "rebuild".
fn up_to_date(out: &Path, source: &SourceInfo, classes: &[String]) -> Option<Manifest> {
    let json = fs::read(out.join("manifest.json")).ok()?;
    let m = Manifest::parse(&json).ok()?;
    let same = m.source.kind == source.kind && m.source.fingerprint == source.fingerprint && m.classes == classes;
    if !same {
        return None;
    }
    for split in [&m.train, &m.test] {
        let bytes = fs::read(out.join(&split.file)).ok()?;
        if bytes.len() as u64 != split.bytes || super::sha256_hex(&bytes) != split.sha256 {
            return None;
        }
    }
    Some(m)
}

fn temp_file(dir: &Path) -> Result<tempfile::NamedTempFile> {
    let mut builder = tempfile::Builder::new();
    builder.prefix(TMP_PREFIX).suffix(".tmp");
    // tempfile's default 0600 would make the bundle unreadable to a web server running as
    // another user; 0644 is still narrowed by the umask.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(fs::Permissions::from_mode(0o644));
    }
    builder.tempfile_in(dir).map_err(|e| Error::io(dir, e))
}

/// Writes `bytes` to `dir/name` through a temporary file and a rename, so `dir/name` is either
/// absent, the old file, or complete.
fn write_atomic(dir: &Path, name: &str, bytes: &[u8]) -> Result<()> {
    let mut tmp = temp_file(dir)?;
    tmp.write_all(bytes).and_then(|()| tmp.as_file().sync_all()).map_err(|e| Error::io(tmp.path(), e))?;
    let target = dir.join(name);
    tmp.persist(&target).map_err(|e| Error::io(&target, e.error))?;
    Ok(())
}

/// Makes renames in `dir` durable. Best effort: not every platform can sync a directory, and
/// the rename itself has already happened.
fn sync_dir(dir: &Path) {
    #[cfg(unix)]
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    #[cfg(not(unix))]
    let _ = dir;
}

fn write_bundle(
    out: &Path,
    classes: &[String],
    train: &Records,
    test: &Records,
    source: SourceInfo,
) -> Result<Manifest> {
    let manifest = Manifest::for_records(classes.to_vec(), &train.bytes, &test.bytes, source);
    let json = manifest.to_json();
    // Self-check before touching the disk: what we are about to commit must read back.
    if Manifest::parse(json.as_bytes())? != manifest {
        return Err(Error::format("manifest.json", None, "the new manifest does not read back as written"));
    }

    // The first missing ancestor is the one to remove on failure, so no empty parents remain.
    let created =
        out.ancestors().take_while(|a| !a.as_os_str().is_empty() && !a.exists()).last().map(Path::to_path_buf);
    if let Err(e) = fs::create_dir_all(out) {
        // It may have created some of the parents before failing.
        if let Some(root) = &created {
            let _ = fs::remove_dir_all(root);
        }
        return Err(Error::io(out, e));
    }
    let previous = fs::read(out.join("manifest.json")).ok().and_then(|json| Manifest::parse(&json).ok());

    let mut added: Vec<PathBuf> = Vec::new();
    let result = (|| -> Result<()> {
        for (info, records) in [(&manifest.train, train), (&manifest.test, test)] {
            let target = out.join(&info.file);
            if !target.exists() {
                added.push(target);
            }
            write_atomic(out, &info.file, &records.bytes)?;
        }
        write_atomic(out, "manifest.json", json.as_bytes())
    })();
    if let Err(e) = result {
        // Temporary files are gone already (dropped); undo what was renamed into place.
        match &created {
            Some(root) => {
                let _ = fs::remove_dir_all(root);
            }
            None => {
                for path in &added {
                    let _ = fs::remove_file(path);
                }
            }
        }
        return Err(e);
    }
    sync_dir(out);

    // Committed. The old record files are garbage now; failing to delete one leaves a stray
    // file but a correct bundle, so it is not an error.
    if let Some(old) = previous {
        for file in [&old.train.file, &old.test.file] {
            if *file != manifest.train.file && *file != manifest.test.file {
                let _ = fs::remove_file(out.join(file));
            }
        }
    }
    Ok(manifest)
}
