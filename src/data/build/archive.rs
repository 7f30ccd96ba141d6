//! The CIFAR-10 binary format: records of 3073 bytes (label, then 1024 red, green and blue
//! values) in five training batches and a test batch, read from the released `.tar.gz` as a
//! stream (gzip, then tar; never extracted to disk) or from its extracted folder. The official
//! record order is kept, filtered to the chosen classes. An archive's md5 is computed as it is
//! read.

use super::{Records, label_map, progress_bar, resolve_classes};
use crate::data::{RECORD_BYTES, Split, hex};
use crate::error::{Error, Result};
use flate2::read::GzDecoder;
use indicatif::ProgressBar;
use md5::{Digest, Md5};
use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::Path;

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
pub(super) fn read_archive(path: &Path, md5: &str, classes: &[String], progress: bool) -> Result<(Records, Records)> {
    let shown = path.display().to_string();
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    let len = file.metadata().map_err(|e| Error::io(path, e))?.len();
    let bar = progress_bar(progress, Some(len), "reading archive", true);
    let mut hashing = HashingReader::new(file, bar.clone());
    let (train, test) = read_archive_from(&mut hashing, &shown, classes)?;
    bar.finish_and_clear();
    check_md5(&shown, md5, &hashing.md5_hex())?;
    Ok((Records::from_split(train, classes.len()), Records::from_split(test, classes.len())))
}

/// Reads the CIFAR-10 binary archive (a gzip-compressed tar, as released) from `reader` as a
/// stream, without extracting it, and returns the `(train, test)` records of `classes` (CIFAR-10
/// class names; label `i` of the result is `classes[i]`) in the official order: the train split
/// is `data_batch_1.bin` .. `data_batch_5.bin`, the test split `test_batch.bin`, wherever they are
/// in the archive. `shown` names the archive in errors.
///
/// `reader` is read to its very end, so the gzip trailer's CRC is checked and a hashing reader
/// sees every byte. The archive and download sources of [`build`](super::build) read their file through this
/// (behind a reader that computes the md5); it is public so that any byte source can be checked
/// the same way (the fuzz targets use it).
pub fn read_archive_from(reader: impl Read, shown: &str, classes: &[String]) -> Result<(Split, Split)> {
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
    Ok((Split { records: all.bytes }, Split { records: test.bytes }))
}

/// Reads the batch files of an extracted `cifar-10-batches-bin/` folder.
pub(super) fn read_batches(dir: &Path, map: &[Option<u8>; 10], classes: usize) -> Result<(Records, Records)> {
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

/// Counts and hashes what passes through, for the md5 of an archive read as a stream.
pub(super) struct HashingReader<R> {
    inner: R,
    md5: Md5,
    bar: ProgressBar,
}

impl<R> HashingReader<R> {
    pub(super) fn new(inner: R, bar: ProgressBar) -> Self {
        HashingReader { inner, md5: Md5::new(), bar }
    }

    /// The md5 of what was read, in hex.
    pub(super) fn md5_hex(self) -> String {
        hex(&self.md5.finalize())
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.md5.update(&buf[..n]);
        self.bar.inc(n as u64);
        Ok(n)
    }
}

/// The md5 of the file at `path` (hex), with a progress bar.
pub(super) fn md5_file(path: &Path, progress: bool) -> Result<String> {
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    let len = file.metadata().map_err(|e| Error::io(path, e))?.len();
    let bar = progress_bar(progress, Some(len), "checking md5", true);
    let mut hashing = HashingReader::new(BufReader::with_capacity(1 << 20, file), bar.clone());
    io::copy(&mut hashing, &mut io::sink()).map_err(|e| Error::io(path, e))?;
    bar.finish_and_clear();
    Ok(hashing.md5_hex())
}

pub(super) fn check_md5(file: &str, expected: &str, actual: &str) -> Result<()> {
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
