//! The command line: one module per group of commands, each with its clap arguments. clap lives
//! only here, in the binary; the library takes plain options.

mod bench;
mod data;
mod pack;
mod serve;
mod site;
mod train;

use clap::{Parser, Subcommand};
use skywatch::{Error, Result};

#[derive(Parser)]
#[command(name = "skywatch", version, about = "Train the lecture's MLP on CIFAR-2 (airplane vs bird)")]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Download CIFAR-10 (or read a local copy) and build a CIFAR-k bundle.
    Data(data::DataArgs),
    /// Train a model, one line per epoch.
    Train(train::TrainArgs),
    /// Accuracy and confusion matrix of a saved model.
    Eval(train::EvalArgs),
    /// Parameter count of a model, as the lecture prints it.
    Info(train::ModelArgs),
    /// GEMM GFLOP/s and seconds per epoch, as JSON lines.
    Bench(bench::BenchArgs),
    /// Serve the page (www/) over HTTP, cross-origin isolated for the threaded package.
    Serve(serve::ServeArgs),
    /// A smaller bundle from the first images of each split (the blog widget's quick data).
    Subset(data::SubsetArgs),
    /// A static folder with the page, the widget, the wasm packages and the data, for any host.
    Build(site::SiteArgs),
    /// The blog widget as an npm package: a folder and the tarball `npm pack` makes of it.
    Pack(pack::PackArgs),
}

impl Cli {
    /// Runs the command given.
    pub fn run(self) -> Result<()> {
        match self.command {
            Command::Data(a) => data::data(a),
            Command::Train(a) => train::train_on_pool(&a),
            Command::Eval(a) => train::eval_on_pool(&a),
            Command::Info(a) => train::info(&a),
            Command::Bench(a) => bench::bench(&a),
            Command::Subset(a) => data::subset(&a),
            Command::Build(a) => site::build(&a),
            Command::Pack(a) => pack::pack(&a),
            Command::Serve(a) => serve::serve(&a),
        }
    }
}

/// Runs `f` on a rayon pool of `threads` threads (all cores when `None`).
fn with_threads<T: Send>(threads: Option<usize>, f: impl FnOnce() -> Result<T> + Send) -> Result<T> {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads.unwrap_or(0))
        .build()
        .map_err(|e| Error::Config(format!("cannot start {threads:?} threads: {e}")))?;
    pool.install(f)
}
