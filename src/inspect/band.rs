//! The lecture's curve beside yours: the PyTorch reference band and where a run stands in it.
//!
//! `www/reference/pytorch-band.json` is written by `tests/reference/pytorch_band.py`: the
//! lecture's recipe in PyTorch, run with several seeds for the `lecture` and `deep` presets on the
//! CIFAR-2 bundle, reduced per epoch to the minimum, median and maximum over the seeds of the
//! validation accuracy, the validation loss and the training loss (mean over the epoch's samples,
//! as [`crate::train::EpochStats::loss`]). Index `e` of each array is epoch `e` as numbered in the
//! lecture's log and in `EpochStats::epoch` (from 0: the values after `e + 1` epochs of training).
//! The file records how it was made ([`Provenance`]) and holds no image or per-image value.
//!
//! A run is compared with a preset's band only if it follows that recipe: the preset's model,
//! optimizer and batch size, on the band's full training set (a run on a subset, such as the
//! widget's quick mode, learns on other data). Its value at epoch `e` is *inside* when
//! `min[e] <= value <= max[e]`.
//!
//! How to read it: the band is the range of only `n` runs (5). A run that is statistically the
//! same as PyTorch's, with `n` PyTorch runs, is the largest or the smallest of the `n + 1` with
//! probability `2 / (n + 1)`, so it lies *outside* at a given epoch one time in three by chance
//! alone; staying outside epoch after epoch, on the same side, is what would mean a difference.

use crate::config::{Activation, LossKind, PRESETS, TrainConfig};
use crate::error::{Error, Result};
use serde::Serialize;
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// `format` of a band file.
pub const FORMAT_NAME: &str = "skywatch-pytorch-band";
/// Version of the band format this build reads.
pub const FORMAT_VERSION: u32 = 1;
/// The committed band, built into the crate (so that the worker needs no extra download).
pub const PYTORCH_BAND_JSON: &str = include_str!("../../www/reference/pytorch-band.json");

/// A band file (see the module documentation), read by [`Band::parse`].
#[derive(Clone, Debug, PartialEq)]
pub struct Band {
    pub format: String,
    pub version: u32,
    pub provenance: Provenance,
    /// Per preset name (`lecture`, `deep`).
    pub presets: BTreeMap<String, PresetBand>,
}

/// How the band was made.
#[derive(Clone, Debug, PartialEq)]
pub struct Provenance {
    /// The script, relative to the repository root.
    pub script: String,
    pub python: String,
    pub torch: String,
    pub numpy: String,
    pub seeds: Vec<u64>,
    pub threads: u64,
    /// UTC date, `YYYY-MM-DD`.
    pub date: String,
    pub data: BandData,
    /// The recipe in words and numbers (normalisation, optimizer, batches, losses).
    pub recipe: Value,
}

/// The bundle the band was trained on: its manifest's hash, the record files' hashes and counts.
#[derive(Clone, Debug, PartialEq)]
pub struct BandData {
    pub classes: Vec<String>,
    pub manifest_sha256: String,
    pub train: SplitDigest,
    pub test: SplitDigest,
    pub source_kind: String,
    pub source_fingerprint: String,
}

#[derive(Clone, Debug, PartialEq)]
pub struct SplitDigest {
    pub count: usize,
    pub sha256: String,
}

/// One preset's band.
#[derive(Clone, Debug, PartialEq)]
pub struct PresetBand {
    /// Convolution channel widths (`conv`: the book's `Net`); empty for an MLP.
    pub conv: Vec<usize>,
    /// The day this preset's runs were made, when it is not the provenance's (a preset added to
    /// the file later, with the same versions, seeds, threads and data).
    pub date: Option<String>,
    pub layers: Vec<usize>,
    pub activation: Activation,
    pub loss: LossKind,
    pub epochs: usize,
    pub val_accuracy: Stat,
    pub val_loss: Stat,
    pub train_loss: Stat,
}

/// Per-epoch minimum, median and maximum over the seeds.
#[derive(Clone, Debug, PartialEq)]
pub struct Stat {
    pub min: Vec<f64>,
    pub median: Vec<f64>,
    pub max: Vec<f64>,
}

/// A quantity the band covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    ValAccuracy,
    ValLoss,
    TrainLoss,
}

impl Metric {
    pub const ALL: [Metric; 3] = [Metric::ValAccuracy, Metric::ValLoss, Metric::TrainLoss];

    pub fn name(self) -> &'static str {
        match self {
            Metric::ValAccuracy => "val_accuracy",
            Metric::ValLoss => "val_loss",
            Metric::TrainLoss => "train_loss",
        }
    }

    pub fn parse(name: &str) -> Result<Metric> {
        Metric::ALL.into_iter().find(|m| m.name() == name).ok_or_else(|| {
            Error::Config(format!("unknown band metric '{name}' (known: val_accuracy, val_loss, train_loss)"))
        })
    }
}

/// Where a run's value stands against the band at one epoch.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Position {
    pub preset: String,
    pub metric: Metric,
    pub epoch: usize,
    pub value: f64,
    pub min: f64,
    pub median: f64,
    pub max: f64,
    /// `min <= value <= max`.
    pub inside: bool,
    /// `"inside"`, `"above"` (over `max`) or `"below"` (under `min`).
    pub side: &'static str,
    /// For the page: `epoch 37: inside the PyTorch band (0.790-0.822)`.
    pub text: String,
}

impl PresetBand {
    pub fn stat(&self, metric: Metric) -> &Stat {
        match metric {
            Metric::ValAccuracy => &self.val_accuracy,
            Metric::ValLoss => &self.val_loss,
            Metric::TrainLoss => &self.train_loss,
        }
    }
}

impl Band {
    /// Parses and checks a band file: format and version, every array `epochs` long, finite
    /// values with `min <= median <= max`, accuracies within `[0, 1]`, losses `>= 0`, seeds and
    /// provenance present.
    pub fn parse(json: &str) -> Result<Band> {
        let v: Value = serde_json::from_str(json).map_err(|e| bad(format!("not a band file: {e}")))?;
        let band = read_band(&v)?;
        if band.format != FORMAT_NAME || band.version != FORMAT_VERSION {
            return Err(bad(format!(
                "format '{}' version {}, expected '{FORMAT_NAME}' version {FORMAT_VERSION}",
                band.format, band.version
            )));
        }
        let p = &band.provenance;
        if p.seeds.is_empty() || p.script.is_empty() || p.torch.is_empty() || p.python.is_empty() || p.numpy.is_empty()
        {
            return Err(bad("provenance: script, versions and seeds must be given".into()));
        }
        if band.presets.is_empty() {
            return Err(bad("no preset".into()));
        }
        for (name, pb) in &band.presets {
            for metric in Metric::ALL {
                let s = pb.stat(metric);
                let what = format!("{name}.{}", metric.name());
                if [&s.min, &s.median, &s.max].iter().any(|v| v.len() != pb.epochs) {
                    return Err(bad(format!(
                        "{what}: {} / {} / {} values for {} epochs",
                        s.min.len(),
                        s.median.len(),
                        s.max.len(),
                        pb.epochs
                    )));
                }
                for e in 0..pb.epochs {
                    let (lo, mid, hi) = (s.min[e], s.median[e], s.max[e]);
                    let range = if metric == Metric::ValAccuracy { 0.0..=1.0 } else { 0.0..=f64::MAX };
                    if !(lo <= mid && mid <= hi && range.contains(&lo) && range.contains(&hi)) {
                        return Err(bad(format!("{what} at epoch {e}: min {lo}, median {mid}, max {hi}")));
                    }
                }
            }
        }
        Ok(band)
    }

    /// The committed band ([`PYTORCH_BAND_JSON`]), parsed once.
    pub fn pytorch() -> &'static Band {
        static BAND: std::sync::OnceLock<Band> = std::sync::OnceLock::new();
        BAND.get_or_init(|| Band::parse(PYTORCH_BAND_JSON).expect("the committed band is valid (tests/band.rs)"))
    }

    /// The preset whose band applies to a run of `config` on `train_images` training images, if
    /// any: the preset's model, optimizer and batch size, and the band's whole training set.
    pub fn preset_for(&self, config: &TrainConfig, train_images: usize) -> Option<&str> {
        if train_images != self.provenance.data.train.count {
            return None;
        }
        PRESETS.into_iter().find(|&name| {
            let p = TrainConfig::preset(name).expect("known preset");
            self.presets.contains_key(name)
                && config.model == p.model
                && config.optimizer == p.optimizer
                && config.batch_size == p.batch_size
        })
    }

    /// Where `value` of `metric` stands at `epoch` (numbered from 0) in `preset`'s band; `None`
    /// past the band's epochs.
    pub fn position(&self, preset: &str, metric: Metric, epoch: usize, value: f64) -> Result<Option<Position>> {
        let pb = self.presets.get(preset).ok_or_else(|| {
            let known: Vec<&str> = self.presets.keys().map(String::as_str).collect();
            Error::Config(format!("no band for preset '{preset}' (the band has {})", known.join(", ")))
        })?;
        if value.is_nan() {
            return Err(Error::Config(format!("{} at epoch {epoch} is not a number", metric.name())));
        }
        if epoch >= pb.epochs {
            return Ok(None);
        }
        let s = pb.stat(metric);
        let (min, median, max) = (s.min[epoch], s.median[epoch], s.max[epoch]);
        let side = if value < min {
            "below"
        } else if value > max {
            "above"
        } else {
            "inside"
        };
        let inside = side == "inside";
        let text = format!(
            "epoch {epoch}: {} the PyTorch band ({min:.3}-{max:.3})",
            if inside { "inside" } else { "outside" }
        );
        Ok(Some(Position { preset: preset.to_string(), metric, epoch, value, min, median, max, inside, side, text }))
    }
}

fn bad(reason: String) -> Error {
    Error::format("pytorch-band.json", None, reason)
}

// The file is read through `serde_json::Value` field by field rather than by derived
// deserializers: the wasm package already holds `Value`'s parser, and a derived deserializer per
// struct would add about 25 kB to it.

/// `v` as an object holding exactly the fields `keys` (an unknown field is refused, as a typo).
fn object<'a>(v: &'a Value, path: &str, keys: &[&str]) -> Result<&'a Map<String, Value>> {
    let m = v.as_object().ok_or_else(|| bad(format!("{path}: expected an object")))?;
    if let Some(k) = m.keys().find(|k| !keys.contains(&k.as_str())) {
        return Err(bad(format!("{path}: unknown field `{k}`")));
    }
    Ok(m)
}

fn field<'a>(m: &'a Map<String, Value>, path: &str, key: &str) -> Result<&'a Value> {
    m.get(key).ok_or_else(|| bad(format!("{path}: missing field `{key}`")))
}

fn string(m: &Map<String, Value>, path: &str, key: &str) -> Result<String> {
    field(m, path, key)?.as_str().map(String::from).ok_or_else(|| bad(format!("{path}.{key}: expected a string")))
}

fn uint(v: &Value, path: &str) -> Result<u64> {
    v.as_u64().ok_or_else(|| bad(format!("{path}: expected a whole number")))
}

fn array<'a>(v: &'a Value, path: &str) -> Result<&'a Vec<Value>> {
    v.as_array().ok_or_else(|| bad(format!("{path}: expected an array")))
}

fn uints(v: &Value, path: &str) -> Result<Vec<u64>> {
    array(v, path)?.iter().map(|x| uint(x, path)).collect()
}

fn floats(v: &Value, path: &str) -> Result<Vec<f64>> {
    array(v, path)?.iter().map(|x| x.as_f64().ok_or_else(|| bad(format!("{path}: expected numbers")))).collect()
}

fn read_band(v: &Value) -> Result<Band> {
    let m = object(v, "band", &["format", "version", "provenance", "presets"])?;
    let p = object(
        field(m, "band", "provenance")?,
        "provenance",
        &["script", "python", "torch", "numpy", "seeds", "threads", "date", "data", "recipe"],
    )?;
    let d = object(
        field(p, "provenance", "data")?,
        "provenance.data",
        &["classes", "manifest_sha256", "train", "test", "source_kind", "source_fingerprint"],
    )?;
    let digest = |key: &str| -> Result<SplitDigest> {
        let path = format!("provenance.data.{key}");
        let s = object(field(d, "provenance.data", key)?, &path, &["count", "sha256"])?;
        Ok(SplitDigest { count: uint(field(s, &path, "count")?, &path)? as usize, sha256: string(s, &path, "sha256")? })
    };
    let classes = array(field(d, "provenance.data", "classes")?, "provenance.data.classes")?
        .iter()
        .map(|c| c.as_str().map(String::from).ok_or_else(|| bad("provenance.data.classes: expected names".into())))
        .collect::<Result<_>>()?;
    let data = BandData {
        classes,
        manifest_sha256: string(d, "provenance.data", "manifest_sha256")?,
        train: digest("train")?,
        test: digest("test")?,
        source_kind: string(d, "provenance.data", "source_kind")?,
        source_fingerprint: string(d, "provenance.data", "source_fingerprint")?,
    };
    let provenance = Provenance {
        script: string(p, "provenance", "script")?,
        python: string(p, "provenance", "python")?,
        torch: string(p, "provenance", "torch")?,
        numpy: string(p, "provenance", "numpy")?,
        seeds: uints(field(p, "provenance", "seeds")?, "provenance.seeds")?,
        threads: uint(field(p, "provenance", "threads")?, "provenance.threads")?,
        date: string(p, "provenance", "date")?,
        data,
        recipe: field(p, "provenance", "recipe")?.clone(),
    };
    let mut presets = BTreeMap::new();
    let list = field(m, "band", "presets")?.as_object().ok_or_else(|| bad("presets: expected an object".into()))?;
    for (name, pv) in list {
        presets.insert(name.clone(), read_preset(pv, &format!("presets.{name}"))?);
    }
    Ok(Band {
        format: string(m, "band", "format")?,
        version: u32::try_from(uint(field(m, "band", "version")?, "version")?).unwrap_or(u32::MAX),
        provenance,
        presets,
    })
}

fn read_preset(v: &Value, path: &str) -> Result<PresetBand> {
    let m = object(
        v,
        path,
        &["conv", "date", "layers", "activation", "loss", "epochs", "val_accuracy", "val_loss", "train_loss"],
    )?;
    let activation = match string(m, path, "activation")?.as_str() {
        "tanh" => Activation::Tanh,
        "relu" => Activation::Relu,
        other => return Err(bad(format!("{path}.activation: unknown activation '{other}'"))),
    };
    let loss = match string(m, path, "loss")?.as_str() {
        "nll" => LossKind::Nll,
        "cross-entropy" => LossKind::CrossEntropy,
        other => return Err(bad(format!("{path}.loss: unknown loss '{other}'"))),
    };
    let stat = |key: &str| -> Result<Stat> {
        let sp = format!("{path}.{key}");
        let s = object(field(m, path, key)?, &sp, &["min", "median", "max"])?;
        let get = |k: &str| floats(field(s, &sp, k)?, &format!("{sp}.{k}"));
        Ok(Stat { min: get("min")?, median: get("median")?, max: get("max")? })
    };
    let conv = match m.get("conv") {
        Some(c) => uints(c, &format!("{path}.conv"))?.into_iter().map(|w| w as usize).collect(),
        None => Vec::new(),
    };
    let date = match m.get("date") {
        Some(_) => Some(string(m, path, "date")?),
        None => None,
    };
    Ok(PresetBand {
        conv,
        date,
        layers: uints(field(m, path, "layers")?, &format!("{path}.layers"))?.into_iter().map(|w| w as usize).collect(),
        activation,
        loss,
        epochs: uint(field(m, path, "epochs")?, &format!("{path}.epochs"))? as usize,
        val_accuracy: stat("val_accuracy")?,
        val_loss: stat("val_loss")?,
        train_loss: stat("train_loss")?,
    })
}
