//! The CIFAR-k bundle, batches and the seeded minibatch loader.
//!
//! A bundle is a folder with `manifest.json` and one file of records per split (`train`, `test`).
//! A record is `1 + 3 * 32 * 32 = 3073` bytes: the label (`0..k-1`, in the order of the manifest's
//! `classes`), then the 1024 red values, the 1024 green values and the 1024 blue values, rows top to
//! bottom — the record layout of the official CIFAR-10 binary release. Pixels stay `u8` in memory;
//! a batch is converted to `f32` and normalised per channel when it is drawn:
//! `x = (v / 255 - mean[c]) / std[c]`, which is torchvision's `ToTensor()` then
//! `Normalize(mean, std)`, flattened in `C, H, W` order as `img.view(-1)` does in the lecture.
//!
//! Version 1 stores the records as they are. Version 2 stores each split as the records passed
//! through a per-channel pixel predictor, then deflated ([`codec`]): the manifest's `bytes` and
//! counts describe the decoded records, `stored_bytes` and `sha256` the file as downloaded (so
//! integrity is checked before anything is decoded). Readers accept both.
//!
//! [`Manifest`] describes and checks a bundle (format version, counts, byte lengths, sha256);
//! building one from the official archive or an image folder is in [`build`] (native only).

pub mod augment;
#[cfg(all(feature = "cli", not(target_arch = "wasm32")))]
pub mod build;
pub mod codec;
mod loader;
pub mod resize;

pub use loader::Loader;

use crate::error::{Error, Result};
use ndarray::ArrayViewMut2;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Image side in pixels.
pub const SIDE: usize = 32;
/// Values per image: 3 channels of 32 x 32.
pub const PIXELS: usize = 3 * SIDE * SIDE;
/// Bytes per record: the label and the pixels.
pub const RECORD_BYTES: usize = 1 + PIXELS;
/// Per-channel mean of the training images (the lecture's constants).
pub const MEAN: [f32; 3] = [0.4915, 0.4823, 0.4468];
/// Per-channel standard deviation (the lecture's constants).
pub const STD: [f32; 3] = [0.2470, 0.2435, 0.2616];
/// The ten CIFAR-10 classes, in the order of their labels in the official release.
pub const CIFAR10_CLASSES: [&str; 10] =
    ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"];
/// `format` field of every manifest.
pub const FORMAT_NAME: &str = "skywatch-cifar-bundle";
/// The raw bundle format version (records stored as they are).
pub const FORMAT_VERSION: u32 = 1;
/// The encoded bundle format version: each split stored as [`codec::SUB_UP_DEFLATE`]. Readers
/// accept this and [`FORMAT_VERSION`], and refuse any other.
pub const ENCODED_VERSION: u32 = 2;

/// `manifest.json` of a bundle.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub format: String,
    pub version: u32,
    pub classes: Vec<String>,
    /// `[channels, height, width]`, always `[3, 32, 32]`.
    pub image_shape: [usize; 3],
    pub record_bytes: usize,
    pub train: SplitInfo,
    pub test: SplitInfo,
    /// Where the images came from, and a fingerprint of it used to skip identical rebuilds.
    pub source: SourceInfo,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SplitInfo {
    /// File name inside the bundle folder.
    pub file: String,
    pub count: usize,
    /// Images per class, in the order of `classes`.
    pub per_class: Vec<usize>,
    /// Bytes of the decoded records (`count * 3073`).
    pub bytes: u64,
    /// Lower-case hex sha256 of the file as stored and downloaded.
    pub sha256: String,
    /// Version 2 only: how the file encodes the records ([`codec::SUB_UP_DEFLATE`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encoding: Option<String>,
    /// Version 2 only: bytes of the file as stored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stored_bytes: Option<u64>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceInfo {
    /// `cifar-10-binary` (the official archive or its extracted folder) or `image-folder`.
    pub kind: String,
    /// The URL or path it was read from.
    pub location: String,
    /// sha256 over what identifies the input (archive checksum, or file names, sizes and times).
    pub fingerprint: String,
}

impl Manifest {
    /// The manifest of a bundle of `classes` whose record files hold `train` and `test`; each file
    /// is named `{split}-{first 16 hex digits of its sha256}.bin`. Labels past `classes` are not
    /// counted per class (`parse` and the reader refuse such a bundle).
    pub fn for_records(classes: Vec<String>, train: &[u8], test: &[u8], source: SourceInfo) -> Manifest {
        let info = |split: &str, records: &[u8]| {
            let mut per_class = vec![0; classes.len()];
            for r in records.chunks_exact(RECORD_BYTES) {
                if let Some(n) = per_class.get_mut(usize::from(r[0])) {
                    *n += 1;
                }
            }
            let sha256 = sha256_hex(records);
            SplitInfo {
                file: format!("{split}-{}.bin", &sha256[..16]),
                count: records.len() / RECORD_BYTES,
                per_class,
                bytes: records.len() as u64,
                sha256,
                encoding: None,
                stored_bytes: None,
            }
        };
        let (train, test) = (info("train", train), info("test", test));
        Manifest {
            format: FORMAT_NAME.into(),
            version: FORMAT_VERSION,
            classes,
            image_shape: [3, SIDE, SIDE],
            record_bytes: RECORD_BYTES,
            train,
            test,
            source,
        }
    }

    /// [`Manifest::for_records`] for a version-2 bundle: also returns each split's file, the
    /// records filtered and deflated ([`codec`]), named `{split}-{16 hex of its sha256}.deflate`.
    #[cfg(all(feature = "cli", not(target_arch = "wasm32")))]
    pub fn encoded(classes: Vec<String>, train: &[u8], test: &[u8], source: SourceInfo) -> (Manifest, [Vec<u8>; 2]) {
        let mut m = Manifest::for_records(classes, train, test, source);
        m.version = ENCODED_VERSION;
        let files = [(&mut m.train, train, "train"), (&mut m.test, test, "test")].map(|(info, records, split)| {
            let stored = codec::encode(records);
            info.sha256 = sha256_hex(&stored);
            info.file = format!("{split}-{}.deflate", &info.sha256[..16]);
            info.encoding = Some(codec::SUB_UP_DEFLATE.into());
            info.stored_bytes = Some(stored.len() as u64);
            stored
        });
        (m, files)
    }

    /// Parses and checks `manifest.json`: format name and version, shapes, counts that add up.
    pub fn parse(json: &[u8]) -> Result<Manifest> {
        let m: Manifest = serde_json::from_slice(json)
            .map_err(|e| Error::format("manifest.json", None, format!("not a valid manifest: {e}")))?;
        let bad = |reason: String| Err(Error::format("manifest.json", None, reason));
        if m.format != FORMAT_NAME {
            return bad(format!("format is '{}', expected '{FORMAT_NAME}'", m.format));
        }
        if m.version != FORMAT_VERSION && m.version != ENCODED_VERSION {
            return bad(format!(
                "bundle format version {} is not supported (this build reads versions {FORMAT_VERSION} and {ENCODED_VERSION}); rebuild it with `skywatch data`",
                m.version
            ));
        }
        if m.image_shape != [3, SIDE, SIDE] || m.record_bytes != RECORD_BYTES {
            return bad(format!(
                "image shape {:?} with {}-byte records, expected [3, 32, 32] with {RECORD_BYTES}",
                m.image_shape, m.record_bytes
            ));
        }
        if m.classes.len() < 2 || m.classes.len() > 256 {
            return bad(format!("needs 2 to 256 classes, has {}", m.classes.len()));
        }
        for (name, s) in [("train", &m.train), ("test", &m.test)] {
            // Checked: the numbers come from the file, and must not wrap into a match.
            let sum = s.per_class.iter().try_fold(0usize, |a, &n| a.checked_add(n));
            if s.per_class.len() != m.classes.len() || sum != Some(s.count) {
                return bad(format!("{name}: per-class counts {:?} do not add up to {}", s.per_class, s.count));
            }
            if (s.count as u64).checked_mul(RECORD_BYTES as u64) != Some(s.bytes) {
                return bad(format!("{name}: {} bytes for {} records of {RECORD_BYTES}", s.bytes, s.count));
            }
            match (m.version, s.encoding.as_deref(), s.stored_bytes) {
                (FORMAT_VERSION, None, None) | (ENCODED_VERSION, Some(codec::SUB_UP_DEFLATE), Some(_)) => {}
                (FORMAT_VERSION, ..) => {
                    return bad(format!("{name}: a version-1 split has no `encoding` or `stored_bytes`"));
                }
                (_, Some(e), Some(_)) if e != codec::SUB_UP_DEFLATE => {
                    return bad(format!(
                        "{name}: encoding '{e}' is not supported (expected '{}')",
                        codec::SUB_UP_DEFLATE
                    ));
                }
                _ => return bad(format!("{name}: a version-2 split needs `encoding` and `stored_bytes`")),
            }
            if s.file.contains(['/', '\\']) || s.file.starts_with('.') {
                return bad(format!("{name}: file name '{}' must be a plain name in the bundle folder", s.file));
            }
        }
        Ok(m)
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("manifest serialises")
    }
}

fn check_sha(info: &SplitInfo, actual: String) -> Result<()> {
    if actual != info.sha256 {
        return Err(Error::Checksum {
            file: info.file.clone(),
            algorithm: "sha256",
            expected: info.sha256.clone(),
            actual,
        });
    }
    Ok(())
}

/// Lower-case hex sha256.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// One split in memory: its records, as on disk.
#[derive(Clone, Default, PartialEq)]
pub struct Split {
    records: Vec<u8>,
}

/// Size only: the records are megabytes.
impl std::fmt::Debug for Split {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Split({} images)", self.len())
    }
}

impl Split {
    /// Checks `bytes` against the manifest entry (length, sha256, images per class) and every
    /// label against `classes`, then keeps them. Errors name the file and, for a bad label, its
    /// byte offset.
    ///
    /// For a raw (version-1) split `bytes` is the file, and `digest` its sha256 when the caller
    /// already computed it (the browser hashes at native speed with `crypto.subtle`); it is
    /// computed here otherwise. For an encoded (version-2) split `bytes` is the file already
    /// inflated (by the browser's `DecompressionStream`, or natively by [`Split::from_file`]) and
    /// `digest`, the sha256 of the file as downloaded, is required: the filter is undone here.
    pub fn from_bytes(info: &SplitInfo, classes: usize, mut bytes: Vec<u8>, digest: Option<&str>) -> Result<Split> {
        let encoded = info.encoding.is_some();
        if encoded {
            let Some(digest) = digest else {
                return Err(Error::format(&info.file, None, "an encoded split needs the sha256 of the file as stored"));
            };
            check_sha(info, digest.to_ascii_lowercase())?;
        }
        if bytes.len() as u64 != info.bytes {
            let what = if encoded { "decoded to " } else { "" };
            return Err(Error::format(
                &info.file,
                None,
                format!("{what}{} bytes, the manifest says {} (truncated or wrong file)", bytes.len(), info.bytes),
            ));
        }
        if encoded {
            codec::unfilter(&mut bytes);
        } else {
            check_sha(info, digest.map_or_else(|| sha256_hex(&bytes), str::to_ascii_lowercase))?;
        }
        let split = Split::from_records(&info.file, classes, bytes)?;
        // The manifest's counts are what the page and the CLI report; they must be the file's.
        let counts = split.counts(classes);
        if counts != info.per_class {
            return Err(Error::format(
                &info.file,
                None,
                format!("holds {counts:?} images per class, the manifest says {:?}", info.per_class),
            ));
        }
        Ok(split)
    }

    /// Checks and decodes a split's file as stored (native): hashes it, inflates an encoded one
    /// (at most the manifest's byte count), then [`Split::from_bytes`].
    #[cfg(all(feature = "cli", not(target_arch = "wasm32")))]
    pub fn from_file(info: &SplitInfo, classes: usize, stored: Vec<u8>) -> Result<Split> {
        if info.encoding.is_none() {
            return Split::from_bytes(info, classes, stored, None);
        }
        let digest = sha256_hex(&stored);
        check_sha(info, digest.clone())?;
        let records = codec::inflate(&info.file, &stored, info.bytes)?;
        Split::from_bytes(info, classes, records, Some(&digest))
    }

    /// Records without a manifest (used when building bundles and in tests).
    pub fn from_records(file: &str, classes: usize, records: Vec<u8>) -> Result<Split> {
        if !records.len().is_multiple_of(RECORD_BYTES) {
            return Err(Error::format(
                file,
                None,
                format!("{} bytes is not a whole number of {RECORD_BYTES}-byte records", records.len()),
            ));
        }
        for (i, rec) in records.chunks_exact(RECORD_BYTES).enumerate() {
            if rec[0] as usize >= classes {
                return Err(Error::format(
                    file,
                    Some((i * RECORD_BYTES) as u64),
                    format!("label {} of record {i} is not below the class count {classes}", rec[0]),
                ));
            }
        }
        Ok(Split { records })
    }

    pub fn len(&self) -> usize {
        self.records.len() / RECORD_BYTES
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    pub fn label(&self, i: usize) -> u8 {
        self.records[i * RECORD_BYTES]
    }

    /// The 3072 pixel bytes of image `i`, planar `C, H, W`.
    pub fn image(&self, i: usize) -> &[u8] {
        &self.records[i * RECORD_BYTES + 1..(i + 1) * RECORD_BYTES]
    }

    pub fn records(&self) -> &[u8] {
        &self.records
    }

    /// Images per label.
    pub fn counts(&self, classes: usize) -> Vec<usize> {
        let mut c = vec![0; classes];
        for i in 0..self.len() {
            c[self.label(i) as usize] += 1;
        }
        c
    }

    /// Normalised `f32` rows for the images `indices` into `x` (`[indices.len(), 3072]`) and
    /// their labels into `y`.
    pub fn gather(&self, indices: &[u32], norm: &Normalizer, mut x: ArrayViewMut2<f32>, y: &mut Vec<u8>) {
        y.clear();
        for (mut row, &i) in x.rows_mut().into_iter().zip(indices) {
            let i = i as usize;
            norm.apply(self.image(i), row.as_slice_mut().expect("batch rows are contiguous"));
            y.push(self.label(i));
        }
    }
}

/// Classes plus both splits.
#[derive(Clone, Debug, PartialEq)]
pub struct Dataset {
    pub classes: Vec<String>,
    pub train: Split,
    pub test: Split,
}

impl Dataset {
    /// Checks both files against the manifest.
    pub fn from_bundle(manifest: &Manifest, train: Vec<u8>, test: Vec<u8>) -> Result<Dataset> {
        Dataset::from_bundle_hashed(manifest, (train, None), (test, None))
    }

    /// [`Dataset::from_bundle`] with each file's sha256 when the caller already has it.
    pub fn from_bundle_hashed(
        manifest: &Manifest,
        (train, train_sha): (Vec<u8>, Option<&str>),
        (test, test_sha): (Vec<u8>, Option<&str>),
    ) -> Result<Dataset> {
        let k = manifest.classes.len();
        Ok(Dataset {
            classes: manifest.classes.clone(),
            train: Split::from_bytes(&manifest.train, k, train, train_sha)?,
            test: Split::from_bytes(&manifest.test, k, test, test_sha)?,
        })
    }

    /// Reads a bundle folder (native).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn load(dir: &std::path::Path) -> Result<Dataset> {
        let read = |name: &str| std::fs::read(dir.join(name)).map_err(|e| Error::io(dir.join(name), e));
        let manifest = Manifest::parse(&read("manifest.json")?)?;
        let k = manifest.classes.len();
        #[cfg(feature = "cli")]
        let split = |info: &SplitInfo| Split::from_file(info, k, read(&info.file)?);
        #[cfg(not(feature = "cli"))]
        let split = |info: &SplitInfo| Split::from_bytes(info, k, read(&info.file)?, None);
        Ok(Dataset { classes: manifest.classes.clone(), train: split(&manifest.train)?, test: split(&manifest.test)? })
    }
}

/// `u8` pixel to normalised `f32`, by table: `(v / 255 - mean[c]) / std[c]` computed in `f32` in
/// the same order as torchvision, so the values equal PyTorch's bit for bit.
#[derive(Clone, Debug)]
pub struct Normalizer {
    lut: [[f32; 256]; 3],
}

impl Default for Normalizer {
    fn default() -> Self {
        Normalizer::new(MEAN, STD)
    }
}

impl Normalizer {
    pub fn new(mean: [f32; 3], std: [f32; 3]) -> Self {
        let mut lut = [[0.0; 256]; 3];
        for (c, table) in lut.iter_mut().enumerate() {
            for (v, out) in table.iter_mut().enumerate() {
                *out = (v as f32 / 255.0 - mean[c]) / std[c];
            }
        }
        Normalizer { lut }
    }

    /// The table, `[channel][byte]` (uploaded as is by the WebGPU backend, so that its inputs
    /// equal the CPU's bit for bit).
    pub fn table(&self) -> &[[f32; 256]; 3] {
        &self.lut
    }

    /// One image: `out[c * 1024 + p] = lut[c][image[c * 1024 + p]]`.
    pub fn apply(&self, image: &[u8], out: &mut [f32]) {
        for (c, (src, dst)) in image.chunks_exact(SIDE * SIDE).zip(out.chunks_exact_mut(SIDE * SIDE)).enumerate() {
            let lut = &self.lut[c];
            for (d, &s) in dst.iter_mut().zip(src) {
                *d = lut[s as usize];
            }
        }
    }
}
