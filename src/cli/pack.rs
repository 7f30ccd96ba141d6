//! `skywatch pack`: the blog widget as an npm package (see `skywatch::pack`).

use clap::Args;
use skywatch::Result;
use skywatch::data::build::{DEFAULT_DATA_DIR, QUICK_TEST, QUICK_TRAIN};
use skywatch::pack::{self, PackOptions};
use std::path::PathBuf;

#[derive(Args, Clone, Debug)]
pub struct PackArgs {
    /// Folder that receives the package folder (skywatch-widget/, replaced) and its tarball.
    #[arg(long)]
    out: PathBuf,
    /// The page sources and build output (`scripts/build` fills pkg*/ and vendor/).
    #[arg(long, default_value = "www")]
    www: PathBuf,
    /// The full bundle, from which the quick subset is taken.
    #[arg(long, default_value = DEFAULT_DATA_DIR)]
    data: PathBuf,
    #[arg(long, default_value_t = QUICK_TRAIN)]
    quick_train: usize,
    #[arg(long, default_value_t = QUICK_TEST)]
    quick_test: usize,
}

pub fn pack(a: &PackArgs) -> Result<()> {
    std::fs::create_dir_all(&a.out).map_err(|e| skywatch::Error::io(&a.out, e))?;
    let p = pack::pack(&PackOptions {
        out: a.out.clone(),
        www: a.www.clone(),
        data: a.data.clone(),
        quick_train: a.quick_train,
        quick_test: a.quick_test,
    })?;
    println!("{}: package folder", p.folder.display());
    println!("{}: {:.0} kB", p.tarball.display(), p.tarball_bytes as f64 / 1e3);
    Ok(())
}
