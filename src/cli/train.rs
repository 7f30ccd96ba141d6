//! `skywatch train`, `eval` and `info`: the lecture's training loop and its measurements.

use super::with_threads;
use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use skywatch::config::{Activation, Augment, LossKind, ModelConfig, OptimizerKind, TrainConfig, random_seed};
use skywatch::data::build::DEFAULT_DATA_DIR;
use skywatch::data::{Dataset, Normalizer};
use skywatch::inspect::translation::{MAX_SHIFT, translation_test};
use skywatch::train::{Trainer, evaluate};
use skywatch::{Error, Result, checkpoint};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::str::FromStr;

#[derive(Args, Clone)]
pub struct ModelArgs {
    /// `lecture` (3072-512-2, LogSoftmax + NLLLoss), `deep` (3072-1024-512-128-2,
    /// CrossEntropyLoss) or `conv` (the book's convolutional Net: conv 16, 8 then 512-32-2,
    /// CrossEntropyLoss).
    #[arg(long, default_value = "lecture")]
    preset: String,
    /// Custom fully connected widths, input to output, e.g. 3072,256,2 (replaces the preset's);
    /// after convolutions the input is their flattened output (512 for `conv`).
    #[arg(long, value_delimiter = ',')]
    layers: Option<Vec<usize>>,
    /// Convolution channel widths, e.g. 32,16 (the book's wider Net): each block is a 3x3
    /// convolution with padding 1, the activation and a 2x2 max pooling. Without --layers, the
    /// first fully connected width follows the flattened size.
    #[arg(long, value_delimiter = ',')]
    conv: Option<Vec<usize>>,
    #[arg(long, value_enum)]
    activation: Option<ActivationArg>,
    #[arg(long, value_enum)]
    loss: Option<LossArg>,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum ActivationArg {
    Tanh,
    Relu,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum LossArg {
    Nll,
    CrossEntropy,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum OptimizerArg {
    Sgd,
    Adam,
}

#[derive(Args)]
pub struct TrainArgs {
    /// Bundle folder (built by `skywatch data`).
    #[arg(long, default_value = DEFAULT_DATA_DIR)]
    data: PathBuf,
    #[command(flatten)]
    model: ModelArgs,
    #[arg(long)]
    epochs: Option<usize>,
    /// A whole number, or `random` for a new seed drawn from the system's entropy (printed first,
    /// and recorded in the saved checkpoint, so that the run can be repeated).
    #[arg(long, value_name = "N|random")]
    seed: Option<Seed>,
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
    /// Data augmentation: `none` (the lecture's recipe), `flip` (random left-right flip),
    /// `shift:K` (random shift in -K..K on each axis, zeros shifted in) or `flip,shift:K`;
    /// seeded, and recorded in the saved checkpoint.
    #[arg(long, value_name = "none|flip|shift:K|flip,shift:K")]
    augment: Option<Augment>,
    /// Threads for the matrix products (default: all cores).
    #[arg(long)]
    threads: Option<usize>,
    /// Write the weights here (safetensors) after every epoch.
    #[arg(long)]
    save: Option<PathBuf>,
    /// Start from these weights (a checkpoint of ours or a PyTorch `state_dict` in safetensors;
    /// the preset supplies the activation and loss such a file lacks). The optimizer starts fresh
    /// and epochs are counted from 0.
    #[arg(long)]
    init: Option<PathBuf>,
    /// One JSON object per epoch: epoch, loss, train_accuracy, val_accuracy, seconds.
    #[arg(long)]
    json: bool,
}

/// `--seed`: a number, or `random`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Seed {
    Given(u64),
    /// Drawn with [`random_seed`] when the run starts.
    Random,
}

impl FromStr for Seed {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Seed, String> {
        match s {
            "random" => Ok(Seed::Random),
            _ => s.parse().map(Seed::Given).map_err(|_| format!("'{s}' is neither a whole number nor 'random'")),
        }
    }
}

#[derive(Args)]
pub struct EvalArgs {
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
    /// The translation test on the test split: accuracy on the images shifted by each of these
    /// pixel counts (0..=8, mean over the four directions) and the first layer's similarity.
    #[arg(long, value_delimiter = ',', value_name = "K,K,...")]
    shift: Option<Vec<usize>>,
    #[arg(long)]
    json: bool,
}

/// `skywatch train`, on a pool of `--threads`.
pub fn train_on_pool(a: &TrainArgs) -> Result<()> {
    with_threads(a.threads, || train(a))
}

/// `skywatch eval`, on a pool of `--threads`.
pub fn eval_on_pool(a: &EvalArgs) -> Result<()> {
    with_threads(a.threads, || eval(a))
}

/// The parameter count, as the lecture prints it.
pub fn info(a: &ModelArgs) -> Result<()> {
    println!("{}", model_config(a)?.parameter_summary());
    Ok(())
}

/// The preset's model with the options that replace parts of it.
pub fn model_config(a: &ModelArgs) -> Result<ModelConfig> {
    let mut m = TrainConfig::preset(&a.preset)?.model;
    if let Some(c) = &a.conv {
        m.conv = c.clone();
        if let Some(flat) = m.flat_features() {
            m.layers[0] = flat;
        }
    }
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

/// The configuration of a run, and whether its seed was drawn at random.
fn train_config(a: &TrainArgs) -> Result<(TrainConfig, bool)> {
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
    let drawn = matches!(a.seed, Some(Seed::Random));
    c.seed = match a.seed {
        None => c.seed,
        Some(Seed::Given(s)) => s,
        Some(Seed::Random) => random_seed()?,
    };
    c.batch_size = a.batch_size.unwrap_or(c.batch_size);
    c.train_size = a.train_size;
    c.augment = a.augment.unwrap_or_default();
    c.validate()?;
    Ok((c, drawn))
}

/// Trains, one line per epoch (the lecture's, or JSON), saving the checkpoint after each.
pub fn train(a: &TrainArgs) -> Result<()> {
    let (config, drawn) = train_config(a)?;
    if drawn {
        // The first line of the log; on stderr with --json, whose stdout holds only epochs.
        let line = format!("seed {} (drawn at random)", config.seed);
        if a.json { eprintln!("{line}") } else { println!("{line}") }
    }
    let data = Dataset::load(&a.data)?;
    let epochs = config.epochs;
    let mut t = Trainer::new(config, data)?;
    if let Some(path) = &a.init {
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        t.load_weights(&bytes).map_err(|e| Error::format(path.display().to_string(), None, e.to_string()))?;
    }
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
            write_atomic(path, &checkpoint::save_trained(&t.model, &t.config))?;
        }
    }
    if !a.json {
        // The lecture's closing measurement: exact accuracy on both splits with the final weights.
        println!("Accuracy (train): {:.4}", t.evaluate_split(true).accuracy);
        println!("Accuracy (val): {:.4}", t.evaluate_split(false).accuracy);
    }
    Ok(())
}

/// Accuracy, loss and confusion matrix of a saved model on both splits.
pub fn eval(a: &EvalArgs) -> Result<()> {
    let bytes = std::fs::read(&a.model).map_err(|e| Error::io(&a.model, e))?;
    let expected = a.preset.as_deref().map(TrainConfig::preset).transpose()?.map(|c| c.model);
    let mut model = checkpoint::load(&bytes, expected.as_ref())?;
    if let (Some(trained), false) = (checkpoint::load_train_config(&bytes)?, a.json) {
        // How the weights were made (a file from `train --save` or the page): enough to repeat it.
        let json = serde_json::to_string(&trained).expect("config serialises");
        println!("trained with seed {}: {json}", trained.seed);
    }
    let data = Dataset::load(&a.data)?;
    if model.config.classes() != data.classes.len() {
        return Err(Error::Config(format!(
            "the model has {} outputs but the data has {} classes",
            model.config.classes(),
            data.classes.len()
        )));
    }
    if let Some(k) = a.shift.iter().flatten().find(|&&k| k > MAX_SHIFT) {
        return Err(Error::Config(format!("--shift {k}: shifts are 0..={MAX_SHIFT} pixels")));
    }
    let norm = Normalizer::default();
    for (name, split) in [("train", &data.train), ("test", &data.test)] {
        let s = evaluate(&mut model, split, &norm);
        let shift = a.shift.as_ref().filter(|_| name == "test").map(|k| translation_test(&mut model, split, &norm, k));
        if a.json {
            let mut v = serde_json::json!({
                "split": name, "count": s.count, "accuracy": s.accuracy, "loss": s.loss,
                "classes": data.classes, "confusion": s.confusion,
            });
            if let (Some(t), Some(obj)) = (&shift, v.as_object_mut()) {
                obj.insert("shift_px".into(), serde_json::json!(t.shift_px));
                obj.insert("shift_accuracy".into(), serde_json::json!(t.shift_accuracy));
                obj.insert("shift_similarity".into(), serde_json::json!(t.shift_similarity));
            }
            println!("{v}");
        } else {
            println!("{name}: accuracy {:.4} on {} images, mean loss {:.4}", s.accuracy, s.count, s.loss);
            print_confusion(&data.classes, &s.confusion);
            if let Some(t) = shift {
                let what =
                    if model.config.is_conv() { "conv1 maps, shifted back, interior" } else { "first hidden layer" };
                println!("{name}, shifted (mean over right, left, down, up; zeros shifted in):");
                println!("  {:>5} {:>9} {:>11}", "shift", "accuracy", "similarity");
                for ((k, acc), sim) in t.shift_px.iter().zip(&t.shift_accuracy).zip(&t.shift_similarity) {
                    println!("  {:>3} px {acc:>9.4} {sim:>11.4}", k);
                }
                println!("  (similarity: the cosine of the first layer's response, {what})");
            }
        }
    }
    Ok(())
}

/// `confusion[true][predicted]` as a table.
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
