//! Building a bundle (native only): from the official CIFAR-10 binary archive (downloaded or on
//! disk), its extracted folder, or an image-folder tree.

use super::Manifest;
use crate::error::Result;
use std::path::PathBuf;

/// The official CIFAR-10 binary release.
pub const OFFICIAL_URL: &str = "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz";
pub const OFFICIAL_MD5: &str = "c32a1d4ab5d03f1284b67883e8d87530";
pub const OFFICIAL_BYTES: u64 = 170_052_171;

#[derive(Clone, Debug)]
pub enum SourceSpec {
    Download { url: String, cache_dir: PathBuf },
    Path(PathBuf),
}

#[derive(Clone, Debug)]
pub struct BuildOptions {
    pub source: SourceSpec,
    pub classes: Vec<String>,
    pub out: PathBuf,
    pub md5: Option<String>,
    pub progress: bool,
}

#[derive(Clone, Debug)]
pub enum BuildOutcome {
    Built(Manifest),
    UpToDate(Manifest),
}

pub fn build(_opts: &BuildOptions) -> Result<BuildOutcome> {
    todo!()
}
