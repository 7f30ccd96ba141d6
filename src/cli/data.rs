//! `skywatch data` and `skywatch subset`: the bundles the page and the widget load.

use clap::Args;
use skywatch::Result;
use skywatch::data::build::{self, BuildOptions, DEFAULT_DATA_DIR, SourceSpec};
use std::path::PathBuf;

#[derive(Args)]
pub struct DataArgs {
    /// Read this instead of downloading: the official .tar.gz, its extracted
    /// `cifar-10-batches-bin/` folder, or an image folder `{train,test}/{class}/*.jpg`.
    #[arg(long, env = "SKYWATCH_DATA_SOURCE")]
    from: Option<PathBuf>,
    /// Two or more CIFAR-10 class names; labels are numbered in this order.
    #[arg(long, default_value = "airplane,bird", value_delimiter = ',')]
    classes: Vec<String>,
    /// Output folder of the bundle.
    #[arg(long, default_value = DEFAULT_DATA_DIR)]
    out: PathBuf,
    /// Expected md5 of the archive (default: the official release's).
    #[arg(long)]
    md5: Option<String>,
    /// Download address of the archive.
    #[arg(long, default_value = build::OFFICIAL_URL)]
    url: String,
    /// Where the downloaded archive is kept between runs.
    #[arg(long)]
    cache_dir: Option<PathBuf>,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
}

#[derive(Args)]
pub struct SubsetArgs {
    /// The full bundle.
    #[arg(long, default_value = DEFAULT_DATA_DIR)]
    data: PathBuf,
    #[arg(long, default_value = "www/data-quick")]
    out: PathBuf,
    /// Training images (the first ones of the full bundle).
    #[arg(long, default_value_t = build::QUICK_TRAIN)]
    train: usize,
    /// Validation images.
    #[arg(long, default_value_t = build::QUICK_TEST)]
    test: usize,
    /// Write a version-1 bundle (raw records) instead of the default version 2 (a per-channel
    /// pixel predictor, then deflate: about 62% of the raw bytes).
    #[arg(long)]
    raw: bool,
}

/// Builds (or confirms) the bundle.
pub fn data(a: DataArgs) -> Result<()> {
    let source = match a.from {
        Some(p) => SourceSpec::Path(p),
        None => SourceSpec::Download { url: a.url, cache_dir: a.cache_dir.unwrap_or_else(default_cache_dir) },
    };
    let opts = BuildOptions { source, classes: a.classes, out: a.out.clone(), md5: a.md5, progress: !a.quiet };
    let outcome = build::build(&opts)?;
    let (verb, m) = (outcome.verb(), outcome.manifest());
    println!(
        "{}: {verb}: classes {}, {} training and {} test images (from {})",
        a.out.display(),
        m.classes.join(","),
        m.train.count,
        m.test.count,
        m.source.location
    );
    Ok(())
}

/// `$XDG_CACHE_HOME/skywatch`, or `~/.cache/skywatch`.
fn default_cache_dir() -> PathBuf {
    std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir)
        .join("skywatch")
}

/// Writes (or confirms) the quick subset.
pub fn subset(a: &SubsetArgs) -> Result<()> {
    let outcome = build::subset(&a.data, &a.out, a.train, a.test, !a.raw)?;
    let m = outcome.manifest();
    println!("{}: {}: {} training and {} test images", a.out.display(), outcome.verb(), m.train.count, m.test.count);
    Ok(())
}
