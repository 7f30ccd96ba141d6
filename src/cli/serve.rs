//! `skywatch serve`: the page over HTTP (see `skywatch::serve`).

use clap::Args;
use skywatch::serve::{self, Mount, ServeOptions};
use skywatch::{Error, Result};
use std::io::Write;
use std::path::{Path, PathBuf};

#[derive(Args)]
pub struct ServeArgs {
    /// Port to listen on (0: any free port; the one chosen is printed).
    #[arg(long, default_value_t = 8080)]
    port: u16,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// Folder served at `/`.
    #[arg(long, default_value = "www")]
    root: PathBuf,
    /// Also serve DIR under URLPREFIX (repeatable), e.g. `/vendor/uplot/=node_modules/uplot/dist`
    /// (mounted by default when that folder exists).
    #[arg(long = "mount", value_name = "URLPREFIX=DIR")]
    mounts: Vec<Mount>,
    /// Leave out COOP and COEP: the page is not cross-origin isolated and runs single-threaded.
    #[arg(long)]
    no_isolation: bool,
    /// Add `Access-Control-Allow-Origin: *`, for pages on other origins that fetch our assets.
    #[arg(long)]
    cors: bool,
    /// Leave out the Content-Security-Policy header (for serving pages that are not ours, such as
    /// a test blog page with inline styles).
    #[arg(long)]
    no_csp: bool,
    /// Log one line per request to stderr.
    #[arg(long, short)]
    verbose: bool,
}

/// `skywatch serve`: the command line's options (with the uPlot mount when that folder exists),
/// served until the process is stopped.
pub fn serve(a: &ServeArgs) -> Result<()> {
    let mut mounts = Vec::new();
    if Path::new(serve::UPLOT_DIR).is_dir() {
        mounts.push(Mount { prefix: serve::UPLOT_PREFIX.into(), dir: serve::UPLOT_DIR.into() });
    }
    mounts.extend(a.mounts.iter().cloned());
    let server = serve::start(ServeOptions {
        host: a.host.clone(),
        port: a.port,
        root: a.root.clone(),
        mounts,
        isolation: !a.no_isolation,
        cors: a.cors,
        csp: !a.no_csp,
        verbose: a.verbose,
        ..ServeOptions::default()
    })?;
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "Serving {} (cross-origin isolated: {})",
        server.url(),
        if server.is_isolated() { "yes" } else { "no" }
    )
    .and_then(|()| out.flush())
    .map_err(|e| Error::io("stdout", e))?;
    drop(out);
    server.wait();
    Ok(())
}
