//! `skywatch`: the native command line on the same core as the browser trainer.
// Native only. `wasm-pack test` builds every target of the crate for wasm32 with the default
// features, this binary included: there it is empty.
#![cfg_attr(target_arch = "wasm32", no_main)]
#![cfg(not(target_arch = "wasm32"))]

use clap::{Args, Parser, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use skywatch::config::{Activation, LossKind, ModelConfig, OptimizerKind, TrainConfig};
use skywatch::data::build::{self, BuildOptions, DEFAULT_DATA_DIR, SourceSpec};
use skywatch::data::{Dataset, Normalizer};
use skywatch::train::{Trainer, evaluate};
use skywatch::{Error, Result, bench, checkpoint, serve};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Default bundle folder: where the page loads its data from.

#[derive(Parser)]
#[command(name = "skywatch", version, about = "Train the lecture's MLP on CIFAR-2 (airplane vs bird)")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Download CIFAR-10 (or read a local copy) and build a CIFAR-k bundle.
    Data(DataArgs),
    /// Train a model, one line per epoch.
    Train(TrainArgs),
    /// Accuracy and confusion matrix of a saved model.
    Eval(EvalArgs),
    /// Parameter count of a model, as the lecture prints it.
    Info(ModelArgs),
    /// GEMM GFLOP/s and seconds per epoch on this CPU, as JSON lines. WebGPU runs only in a
    /// browser: its rows (the adapter, GEMM GFLOP/s, seconds per epoch) come from `scripts/bench`.
    Bench(bench::BenchArgs),
    /// Serve the page (www/) over HTTP, cross-origin isolated for the threaded package.
    Serve(serve::ServeArgs),
    /// A smaller bundle from the first images of each split (the blog widget's quick data).
    Subset(SubsetArgs),
    /// A static folder with the page, the widget, the wasm packages and the data, for any host.
    Build(skywatch::site::SiteArgs),
}

#[derive(Args)]
struct DataArgs {
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
struct SubsetArgs {
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
}

#[derive(Args, Clone)]
struct ModelArgs {
    /// `lecture` (3072-512-2, LogSoftmax + NLLLoss) or `deep` (3072-1024-512-128-2, CrossEntropyLoss).
    #[arg(long, default_value = "lecture")]
    preset: String,
    /// Custom layer widths, input to output, e.g. 3072,256,2 (replaces the preset's).
    #[arg(long, value_delimiter = ',')]
    layers: Option<Vec<usize>>,
    #[arg(long, value_enum)]
    activation: Option<ActivationArg>,
    #[arg(long, value_enum)]
    loss: Option<LossArg>,
}

#[derive(Clone, Copy, ValueEnum)]
enum ActivationArg {
    Tanh,
    Relu,
}

#[derive(Clone, Copy, ValueEnum)]
enum LossArg {
    Nll,
    CrossEntropy,
}

#[derive(Clone, Copy, ValueEnum)]
enum OptimizerArg {
    Sgd,
    Adam,
}

#[derive(Args)]
struct TrainArgs {
    /// Bundle folder (built by `skywatch data`).
    #[arg(long, default_value = DEFAULT_DATA_DIR)]
    data: PathBuf,
    #[command(flatten)]
    model: ModelArgs,
    #[arg(long)]
    epochs: Option<usize>,
    #[arg(long)]
    seed: Option<u64>,
    #[arg(long, allow_negative_numbers = true)]
    lr: Option<f32>,
    #[arg(long)]
    batch_size: Option<usize>,
    #[arg(long, value_enum)]
    optimizer: Option<OptimizerArg>,
    #[arg(long, allow_negative_numbers = true)]
    momentum: Option<f32>,
    #[arg(long)]
    nesterov: bool,
    #[arg(long, allow_negative_numbers = true)]
    weight_decay: Option<f32>,
    /// Train on this many images drawn (seeded) from the training split.
    #[arg(long)]
    train_size: Option<usize>,
    /// Threads for the matrix products (default: all cores).
    #[arg(long)]
    threads: Option<usize>,
    /// Write the weights here (safetensors) after every epoch.
    #[arg(long)]
    save: Option<PathBuf>,
    /// One JSON object per epoch: epoch, loss, train_accuracy, val_accuracy, seconds.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct EvalArgs {
    #[arg(long, default_value = DEFAULT_DATA_DIR)]
    data: PathBuf,
    /// A safetensors checkpoint (from `train --save`, the page, or PyTorch).
    #[arg(long)]
    model: PathBuf,
    /// Model shape for a file without Skywatch metadata (a PyTorch `state_dict`).
    #[arg(long)]
    preset: Option<String>,
    #[arg(long)]
    threads: Option<usize>,
    #[arg(long)]
    json: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Data(a) => cmd_data(a),
        Command::Train(a) => with_threads(a.threads, || cmd_train(&a)),
        Command::Eval(a) => with_threads(a.threads, || cmd_eval(&a)),
        Command::Info(a) => model_config(&a).map(|m| println!("{}", m.parameter_summary())),
        Command::Bench(a) => bench::run(&a),
        Command::Subset(a) => build::subset(&a.data, &a.out, a.train, a.test).map(|o| {
            let m = o.manifest();
            println!("{}: {}: {} training and {} test images", a.out.display(), o.verb(), m.train.count, m.test.count);
        }),
        Command::Build(a) => skywatch::site::run(&a),
        Command::Serve(a) => serve::run(&a),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
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

fn cmd_data(a: DataArgs) -> Result<()> {
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

fn default_cache_dir() -> PathBuf {
    std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir)
        .join("skywatch")
}

fn model_config(a: &ModelArgs) -> Result<ModelConfig> {
    let mut m = TrainConfig::preset(&a.preset)?.model;
    if let Some(l) = &a.layers {
        m.layers = l.clone();
    }
    if let Some(act) = a.activation {
        m.activation = match act {
            ActivationArg::Tanh => Activation::Tanh,
            ActivationArg::Relu => Activation::Relu,
        };
    }
    if let Some(loss) = a.loss {
        m.loss = match loss {
            LossArg::Nll => LossKind::Nll,
            LossArg::CrossEntropy => LossKind::CrossEntropy,
        };
    }
    m.validate()?;
    Ok(m)
}

fn train_config(a: &TrainArgs) -> Result<TrainConfig> {
    let mut c = TrainConfig::preset(&a.model.preset)?;
    c.model = model_config(&a.model)?;
    let o = &mut c.optimizer;
    if let Some(k) = a.optimizer {
        o.kind = match k {
            OptimizerArg::Sgd => OptimizerKind::Sgd,
            OptimizerArg::Adam => OptimizerKind::Adam,
        };
    }
    o.lr = a.lr.unwrap_or(o.lr);
    o.momentum = a.momentum.unwrap_or(o.momentum);
    o.nesterov = a.nesterov;
    o.weight_decay = a.weight_decay.unwrap_or(o.weight_decay);
    c.epochs = a.epochs.unwrap_or(c.epochs);
    c.seed = a.seed.unwrap_or(c.seed);
    c.batch_size = a.batch_size.unwrap_or(c.batch_size);
    c.train_size = a.train_size;
    c.validate()?;
    Ok(c)
}

fn cmd_train(a: &TrainArgs) -> Result<()> {
    let config = train_config(a)?;
    let data = Dataset::load(&a.data)?;
    let epochs = config.epochs;
    let mut t = Trainer::new(config, data)?;
    if !a.json {
        println!("{}", t.config.model.parameter_summary());
    }
    let bar = if a.json { ProgressBar::hidden() } else { ProgressBar::new(t.batches_per_epoch() as u64) };
    bar.set_style(
        ProgressStyle::with_template("epoch {prefix} [{bar:30}] {pos}/{len} batches, loss {msg} ({eta})")
            .expect("static template")
            .progress_chars("=> "),
    );
    let stdout = std::io::stdout();
    for _ in 0..epochs {
        bar.reset();
        bar.set_prefix(t.epochs_done().to_string());
        let s = t.train_epoch(&mut |p| {
            bar.set_position(p.batch as u64);
            bar.set_message(format!("{:.4}", p.loss));
        })?;
        bar.finish_and_clear();
        let line = if a.json {
            serde_json::to_string(&s).expect("stats serialise")
        } else {
            format!(
                "Epoch: {}, Loss: {:.6}, train accuracy: {:.4}, val accuracy: {:.4} ({:.2} s)",
                s.epoch, s.loss, s.train_accuracy, s.val_accuracy, s.seconds
            )
        };
        writeln!(stdout.lock(), "{line}").map_err(|e| Error::io("stdout", e))?;
        if let Some(path) = &a.save {
            write_atomic(path, &checkpoint::save(&t.model))?;
        }
    }
    if !a.json {
        // The lecture's closing measurement: exact accuracy on both splits with the final weights.
        println!("Accuracy (train): {:.4}", t.evaluate_split(true).accuracy);
        println!("Accuracy (val): {:.4}", t.evaluate_split(false).accuracy);
    }
    Ok(())
}

fn cmd_eval(a: &EvalArgs) -> Result<()> {
    let bytes = std::fs::read(&a.model).map_err(|e| Error::io(&a.model, e))?;
    let expected = a.preset.as_deref().map(TrainConfig::preset).transpose()?.map(|c| c.model);
    let mut model = checkpoint::load(&bytes, expected.as_ref())?;
    let data = Dataset::load(&a.data)?;
    if model.config.classes() != data.classes.len() {
        return Err(Error::Config(format!(
            "the model has {} outputs but the data has {} classes",
            model.config.classes(),
            data.classes.len()
        )));
    }
    let norm = Normalizer::default();
    for (name, split) in [("train", &data.train), ("test", &data.test)] {
        let s = evaluate(&mut model, split, &norm);
        if a.json {
            let v = serde_json::json!({
                "split": name, "count": s.count, "accuracy": s.accuracy, "loss": s.loss,
                "classes": data.classes, "confusion": s.confusion,
            });
            println!("{v}");
        } else {
            println!("{name}: accuracy {:.4} on {} images, mean loss {:.4}", s.accuracy, s.count, s.loss);
            print_confusion(&data.classes, &s.confusion);
        }
    }
    Ok(())
}

fn print_confusion(classes: &[String], confusion: &[Vec<usize>]) {
    let w = classes.iter().map(|c| c.len()).max().unwrap_or(4).max(6);
    print!("  {:>w$}", "true \\ predicted");
    for c in classes {
        print!(" {c:>w$}");
    }
    println!();
    for (c, row) in classes.iter().zip(confusion) {
        print!("  {c:>w$}", w = w.max(16));
        for v in row {
            print!(" {v:>w$}");
        }
        println!();
    }
}

/// Writes `bytes` to a temporary file beside `path`, then renames it over `path`: a reader never
/// sees a half-written checkpoint, and an interrupted run keeps the previous one.
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(|e| Error::io(dir, e))?;
    tmp.write_all(bytes).map_err(|e| Error::io(tmp.path(), e))?;
    tmp.as_file().sync_all().map_err(|e| Error::io(path, e))?;
    tmp.persist(path).map_err(|e| Error::io(path, e.error))?;
    Ok(())
}
