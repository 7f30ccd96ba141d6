//! The official CIFAR-10 binary release, downloaded into a cache folder.
//!
//! The archive is streamed from the URL into a temporary file in the cache folder while its md5
//! is computed, checked against the expected one and only then renamed to
//! `cifar-10-binary.tar.gz`, so the cache never holds a partial or wrong archive under the final
//! name. A cached archive with the right md5 is used as it is.

use super::archive::{HashingReader, check_md5, md5_file};
use super::bundle::{sync_dir, temp_file};
use super::progress_bar;
use crate::error::{Error, Result};
use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The official CIFAR-10 binary release: its address, md5 and size.
pub const OFFICIAL_URL: &str = "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz";
pub const OFFICIAL_MD5: &str = "c32a1d4ab5d03f1284b67883e8d87530";
pub const OFFICIAL_BYTES: u64 = 170_052_171;

/// Name of the downloaded archive inside the cache folder.
const CACHE_NAME: &str = "cifar-10-binary.tar.gz";

/// The archive in `cache_dir`, downloaded unless a copy with the right md5 is already there.
pub(super) fn fetch(url: &str, cache_dir: &Path, md5: &str, progress: bool) -> Result<PathBuf> {
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
    let mut reader = HashingReader::new(body.into_reader(), bar.clone());
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(failed(e.to_string())),
        };
        tmp.write_all(&buf[..n]).map_err(|e| Error::io(tmp.path(), e))?;
    }
    bar.finish_and_clear();
    tmp.as_file().sync_all().map_err(|e| Error::io(tmp.path(), e))?;
    // Dropping `tmp` on this error deletes the bad download.
    check_md5(url, md5, &reader.md5_hex())?;
    tmp.persist(&target).map_err(|e| Error::io(&target, e.error))?;
    sync_dir(cache_dir);
    Ok(target)
}
