//! `skywatch build`: a static folder for any host (see `skywatch::site`).

use clap::Args;
use skywatch::Result;
use skywatch::data::build::{DEFAULT_DATA_DIR, QUICK_TEST, QUICK_TRAIN};
use skywatch::site::{self, MARKER, SiteOptions};
use std::path::PathBuf;

#[derive(Args, Clone, Debug)]
pub struct SiteArgs {
    /// Output folder, replaced as a whole: it must be new, empty, or an earlier build (which
    /// holds a `.skywatch-build` file), unless --force is given.
    #[arg(long)]
    out: PathBuf,
    /// Replace the output folder even if it is neither empty nor an earlier build: everything in
    /// it is deleted.
    #[arg(long)]
    force: bool,
    /// The page sources and build output (`scripts/build` fills pkg/, pkg-threads/, vendor/).
    #[arg(long, default_value = "www")]
    www: PathBuf,
    /// The full bundle (`skywatch data`).
    #[arg(long, default_value = DEFAULT_DATA_DIR)]
    data: PathBuf,
    /// Training images in the widget's quick subset.
    #[arg(long, default_value_t = QUICK_TRAIN)]
    quick_train: usize,
    /// Validation images in the widget's quick subset.
    #[arg(long, default_value_t = QUICK_TEST)]
    quick_test: usize,
    /// Leave the full bundle out (the widget alone needs only the quick subset).
    #[arg(long)]
    no_full_data: bool,
}

/// Writes the site and reports what a reader's browser transfers for the widget.
pub fn build(a: &SiteArgs) -> Result<()> {
    let report = site::build(&SiteOptions {
        out: a.out.clone(),
        www: a.www.clone(),
        data: a.data.clone(),
        quick_train: a.quick_train,
        quick_test: a.quick_test,
        full_data: !a.no_full_data,
        force: a.force,
    })?;
    println!("{}: static site written (marked as a build by {MARKER})", a.out.display());
    println!("{report}");
    Ok(())
}
