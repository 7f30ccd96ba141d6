//! Planning a build: which source a path is (the archive, its extracted folder, an image
//! folder, or the download), what identifies it, and what must be read.
//!
//! The fingerprint stored in the manifest is the archive's md5, or a sha256 over the names,
//! sizes and modification times of the files read; when `out/manifest.json` holds the same
//! fingerprint for the same classes and its files are intact, the build is a no-op.

use super::archive::{BATCH_FILES, check_md5, md5_file, read_archive, read_batches};
use super::download::fetch;
use super::images::{list_images, read_images};
use super::{Records, SourceSpec, label_map, progress_bar};
use crate::data::{CIFAR10_CLASSES, SourceInfo, hex, sha256_hex};
use crate::error::{Error, Result};
use sha2::{Digest, Sha256};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

const KIND_BINARY: &str = "cifar-10-binary";
const KIND_IMAGES: &str = "image-folder";

/// A resolved source: what identifies it (for the manifest and the up-to-date check), and what
/// must be read to build it.
pub(super) struct Plan {
    pub(super) info: SourceInfo,
    pub(super) input: Input,
}

pub(super) enum Input {
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
    pub(super) fn resolve(source: &SourceSpec, md5: &str, classes: &[String], progress: bool) -> Result<Plan> {
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
    pub(super) fn read(
        self,
        info: &SourceInfo,
        classes: &[String],
        labels: &[u8],
        progress: bool,
    ) -> Result<(Records, Records)> {
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

pub(super) fn location(path: &Path) -> String {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf()).display().to_string()
}

fn archive_fingerprint(md5: &str) -> String {
    sha256_hex(format!("cifar-10-binary.tar.gz md5 {md5}\n").as_bytes())
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
