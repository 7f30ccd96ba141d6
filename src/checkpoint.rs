//! Checkpoints as safetensors files with PyTorch's `state_dict` names and shapes.
//!
//! An MLP is PyTorch's `nn.Sequential`: linear layer `l` is stored as `{2l}.weight` (`[out, in]`,
//! f32) and `{2l}.bias` (`[out]`), so the lecture's model gives `0.weight [512, 3072]`,
//! `0.bias [512]`, `2.weight [2, 512]`, `2.bias [2]`. A model with convolutions is the book's
//! `Net` (chapter 8), whose attributes name its tensors: `conv1.weight [16, 3, 3, 3]`,
//! `conv1.bias [16]`, `conv2.*`, then `fc1.weight [32, 512]`, `fc1.bias`, `fc2.*`. Either way
//! `model.load_state_dict(safetensors.torch.load_file(f))` works in PyTorch, strict: the file
//! holds exactly the model's tensors.
//! The model configuration travels in the header metadata (`skywatch.model`, JSON) next to
//! `format: pt`; a file saved by PyTorch has no such entry, and its layer widths are read from the
//! tensor shapes instead. A file saved after training also records the training configuration
//! (`skywatch.train`, JSON: optimizer, batch size, epochs, seed, training-set size), so that the
//! run that made the weights can be repeated, a seed drawn at random included.

use crate::config::{Activation, LossKind, MAX_PARAMETERS, ModelConfig, TrainConfig};
use crate::error::{Error, Result};
use crate::model::Mlp;
use safetensors::{Dtype, SafeTensors, tensor::TensorView};
use std::collections::HashMap;

/// Metadata key holding the model configuration.
pub const MODEL_KEY: &str = "skywatch.model";
/// Metadata key holding the training configuration of [`save_trained`].
pub const TRAIN_KEY: &str = "skywatch.train";
/// Files above this size are refused before parsing: no model allowed by the configuration
/// limits is this large.
pub const MAX_FILE_BYTES: usize = MAX_PARAMETERS * 4 + (1 << 20);

/// Serialises the model's parameters (and its configuration as metadata).
pub fn save(model: &Mlp) -> Vec<u8> {
    save_with(model, None)
}

/// [`save`], recording also the configuration the model was trained with (`train`, whose
/// `model` is the model's own), seed included.
pub fn save_trained(model: &Mlp, train: &TrainConfig) -> Vec<u8> {
    save_with(model, Some(train))
}

/// One tensor of a model: its `state_dict` name, PyTorch's shape, and where it lies in the flat
/// parameter buffer.
#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    pub name: String,
    pub shape: Vec<usize>,
    pub range: std::ops::Range<usize>,
}

/// The model's tensors in PyTorch's `parameters()` order, with their `state_dict` names.
pub fn entries(model: &Mlp) -> Vec<Entry> {
    let mut out = Vec::new();
    let mut push = |name: String, shape: Vec<usize>, start: usize| {
        let len = shape.iter().product::<usize>();
        out.push(Entry { name, shape, range: start..start + len });
    };
    let conv = model.features.is_some();
    for (i, b) in model.features.iter().flat_map(|f| &f.blocks).enumerate() {
        let c = &b.conv;
        push(format!("conv{}.weight", i + 1), c.weight_shape(), c.offset);
        push(format!("conv{}.bias", i + 1), vec![c.out_channels], c.offset + c.num_weights());
    }
    for (l, lin) in model.linears.iter().enumerate() {
        let prefix = if conv { format!("fc{}", l + 1) } else { format!("{}", 2 * l) };
        push(format!("{prefix}.weight"), vec![lin.out_features, lin.in_features], lin.offset);
        push(format!("{prefix}.bias"), vec![lin.out_features], lin.offset + lin.out_features * lin.in_features);
    }
    out
}

fn save_with(model: &Mlp, train: Option<&TrainConfig>) -> Vec<u8> {
    let views: Vec<(String, Vec<u8>, Vec<usize>)> =
        entries(model).into_iter().map(|e| (e.name, bytes_of(&model.params[e.range]), e.shape)).collect();
    let tensors = views.iter().map(|(name, data, shape)| {
        (name.clone(), TensorView::new(Dtype::F32, shape.clone(), data).expect("shape matches data"))
    });
    let mut meta = HashMap::from([
        ("format".to_string(), "pt".to_string()),
        (MODEL_KEY.to_string(), serde_json::to_string(&model.config).expect("config serialises")),
    ]);
    if let Some(train) = train {
        meta.insert(TRAIN_KEY.to_string(), serde_json::to_string(train).expect("config serialises"));
    }
    stable_header(safetensors::serialize(tensors, Some(meta)).expect("valid tensors serialise"))
}

/// Sorts the header's `__metadata__` keys, so that one model always gives the same bytes:
/// `safetensors::serialize` writes them in `HashMap` order, which is random per process.
/// The header keeps its length (same tokens, compact JSON, the same space padding).
fn stable_header(mut file: Vec<u8>) -> Vec<u8> {
    let n = u64::from_le_bytes(file[..8].try_into().expect("8-byte length")) as usize;
    let Ok(mut header) = serde_json::from_slice::<serde_json::Value>(&file[8..8 + n]) else { return file };
    if let Some(serde_json::Value::Object(meta)) = header.get_mut("__metadata__") {
        let sorted: std::collections::BTreeMap<String, serde_json::Value> = std::mem::take(meta).into_iter().collect();
        meta.extend(sorted);
    }
    let json = serde_json::to_string(&header).expect("a JSON value serialises");
    if json.len() <= n {
        file[8..8 + json.len()].copy_from_slice(json.as_bytes());
        file[8 + json.len()..8 + n].fill(b' ');
    }
    file
}

/// Loads a checkpoint. The configuration comes from the file's metadata; a file without it (a
/// PyTorch `state_dict`) gets its layer widths from the tensor shapes, and its activation and loss
/// from `hint` when the widths agree with it (tanh and NLL otherwise: a plain `state_dict` does
/// not record them).
pub fn load(bytes: &[u8], hint: Option<&ModelConfig>) -> Result<Mlp> {
    if bytes.len() > MAX_FILE_BYTES {
        return Err(Error::Checkpoint(format!(
            "file of {} bytes is larger than any model this build can hold ({MAX_FILE_BYTES} bytes)",
            bytes.len()
        )));
    }
    let st = SafeTensors::deserialize(bytes).map_err(|e| Error::Checkpoint(format!("not a safetensors file: {e}")))?;
    let (_, header) =
        SafeTensors::read_metadata(bytes).map_err(|e| Error::Checkpoint(format!("not a safetensors file: {e}")))?;
    let stored = header
        .metadata()
        .as_ref()
        .and_then(|m| m.get(MODEL_KEY))
        .map(|json| {
            serde_json::from_str::<ModelConfig>(json)
                .map_err(|e| Error::Checkpoint(format!("metadata '{MODEL_KEY}' is not a model configuration: {e}")))
        })
        .transpose()?;
    let config = match stored {
        Some(s) => s,
        None => {
            let inferred = infer_config(&st)?;
            match hint {
                Some(h) if h.layers == inferred.layers && h.conv == inferred.conv => h.clone(),
                _ => inferred,
            }
        }
    };
    let mut model = Mlp::zeros(&config)?;
    let mut names: Vec<String> = Vec::new();
    for e in entries(&model) {
        read_tensor(&st, &e.name, &e.shape, &mut model.params[e.range])?;
        names.push(e.name);
    }
    let mut extra: Vec<&str> = st.names().into_iter().filter(|n| !names.iter().any(|m| m == n)).collect();
    if !extra.is_empty() {
        extra.sort_unstable();
        return Err(Error::Checkpoint(format!(
            "unexpected tensors {extra:?}: the model {} has only {names:?}",
            describe(&config)
        )));
    }
    Ok(model)
}

/// The training configuration a checkpoint records ([`save_trained`]); `None` for a file saved
/// without one (by [`save`], or by PyTorch).
pub fn load_train_config(bytes: &[u8]) -> Result<Option<TrainConfig>> {
    let (_, header) =
        SafeTensors::read_metadata(bytes).map_err(|e| Error::Checkpoint(format!("not a safetensors file: {e}")))?;
    let Some(json) = header.metadata().as_ref().and_then(|m| m.get(TRAIN_KEY)) else {
        return Ok(None);
    };
    let config = serde_json::from_str::<TrainConfig>(json)
        .map_err(|e| Error::Checkpoint(format!("metadata '{TRAIN_KEY}' is not a training configuration: {e}")))?;
    Ok(Some(config))
}

/// Loads a checkpoint that must hold exactly the model `expected`; a different architecture is
/// refused with the first tensor whose shape differs.
pub fn load_exact(bytes: &[u8], expected: &ModelConfig) -> Result<Mlp> {
    let model = load(bytes, Some(expected))?;
    if model.config.layers != expected.layers || model.config.conv != expected.conv {
        let want = entries(&Mlp::zeros(expected)?);
        let got = entries(&model);
        let first = want.iter().zip(&got).find(|(w, g)| w.name != g.name || w.shape != g.shape);
        return Err(match first {
            Some((w, g)) if w.name == g.name => Error::Shape {
                what: format!("tensor '{}'", w.name),
                expected: w.shape.clone(),
                actual: g.shape.clone(),
            },
            _ => Error::Checkpoint(format!(
                "the file holds the model {}, the run uses {}",
                describe(&model.config),
                describe(expected)
            )),
        });
    }
    if model.config != *expected {
        return Err(Error::Checkpoint(format!(
            "the file is for {:?} / {:?}, the run uses {:?} / {:?}",
            model.config.activation, model.config.loss, expected.activation, expected.loss
        )));
    }
    Ok(model)
}

/// A model's shape in words for messages: `conv [16, 8] then 512-32-2`, or `3072-512-2`.
pub fn describe(c: &ModelConfig) -> String {
    let widths = c.layers.iter().map(|w| w.to_string()).collect::<Vec<_>>().join("-");
    if c.is_conv() { format!("conv {:?} then {widths}", c.conv) } else { widths }
}

/// The model of a plain PyTorch `state_dict`: the book's `Net` (`conv1.weight`, ..., `fc1.weight`,
/// ...) with Tanh and CrossEntropyLoss, or an `nn.Sequential` MLP (`0.weight`, `2.weight`, ...)
/// with Tanh and NLLLoss; the caller's hint replaces activation and loss when the shapes agree.
fn infer_config(st: &SafeTensors) -> Result<ModelConfig> {
    if st.tensor("conv1.weight").is_ok() {
        return infer_conv(st);
    }
    let mut layers = Vec::new();
    for l in 0.. {
        let Ok(w) = st.tensor(&format!("{}.weight", 2 * l)) else {
            break;
        };
        let [out, inp] = w.shape() else {
            return Err(Error::Checkpoint(format!("{}.weight has shape {:?}, expected [out, in]", 2 * l, w.shape())));
        };
        if let Some(&prev) = layers.last() {
            if prev != *inp {
                return Err(Error::Shape {
                    what: format!("{}.weight (input width must equal the previous layer's output)", 2 * l),
                    expected: vec![*out, prev],
                    actual: w.shape().to_vec(),
                });
            }
        } else {
            layers.push(*inp);
        }
        layers.push(*out);
    }
    if layers.is_empty() {
        let names = st.names();
        return Err(Error::Checkpoint(format!(
            "no tensor named '0.weight': not an nn.Sequential MLP state_dict (found {names:?})"
        )));
    }
    Ok(ModelConfig::mlp(layers, Activation::Tanh, LossKind::Nll))
}

/// `conv1.weight [c1, 3, 3, 3]`, `conv2.weight [c2, c1, 3, 3]`, ..., `fc1.weight [o1, flat]`, ...
fn infer_conv(st: &SafeTensors) -> Result<ModelConfig> {
    let mut conv = Vec::new();
    let mut inp = crate::config::IMAGE_CHANNELS;
    while let Ok(w) = st.tensor(&format!("conv{}.weight", conv.len() + 1)) {
        let k = crate::config::CONV_KERNEL;
        let name = format!("conv{}.weight", conv.len() + 1);
        match w.shape() {
            [out, i, kh, kw] if *i == inp && *kh == k && *kw == k => {
                conv.push(*out);
                inp = *out;
            }
            [out, ..] => {
                return Err(Error::Shape {
                    what: format!("tensor '{name}'"),
                    expected: vec![*out, inp, k, k],
                    actual: w.shape().to_vec(),
                });
            }
            [] => return Err(Error::Checkpoint(format!("tensor '{name}' is a scalar, expected [out, in, 3, 3]"))),
        }
    }
    let mut layers = Vec::new();
    for l in 1.. {
        let Ok(w) = st.tensor(&format!("fc{l}.weight")) else { break };
        let [out, inp] = w.shape() else {
            return Err(Error::Checkpoint(format!("fc{l}.weight has shape {:?}, expected [out, in]", w.shape())));
        };
        if layers.is_empty() {
            layers.push(*inp);
        }
        layers.push(*out);
    }
    if layers.is_empty() {
        return Err(Error::Checkpoint(format!(
            "convolutions without a 'fc1.weight': not the book's Net (found {:?})",
            {
                let mut n = st.names();
                n.sort_unstable();
                n
            }
        )));
    }
    let config = ModelConfig { layers, activation: Activation::Tanh, loss: LossKind::CrossEntropy, conv };
    config.validate().map_err(|e| Error::Checkpoint(format!("the file's tensors do not make a model: {e}")))?;
    Ok(config)
}

fn read_tensor(st: &SafeTensors, name: &str, shape: &[usize], out: &mut [f32]) -> Result<()> {
    let t = st.tensor(name).map_err(|_| {
        Error::Checkpoint(format!("missing tensor '{name}' (found {:?})", {
            let mut n = st.names();
            n.sort_unstable();
            n
        }))
    })?;
    if t.shape() != shape {
        return Err(Error::Shape {
            what: format!("tensor '{name}'"),
            expected: shape.to_vec(),
            actual: t.shape().to_vec(),
        });
    }
    if t.dtype() != Dtype::F32 {
        return Err(Error::Checkpoint(format!("tensor '{name}' is {:?}; only F32 (float32) is supported", t.dtype())));
    }
    for (o, c) in out.iter_mut().zip(t.data().chunks_exact(4)) {
        *o = f32::from_le_bytes([c[0], c[1], c[2], c[3]]);
    }
    if let Some(i) = out.iter().position(|v| !v.is_finite()) {
        return Err(Error::Checkpoint(format!("tensor '{name}' holds a non-finite value ({}) at index {i}", out[i])));
    }
    Ok(())
}

fn bytes_of(v: &[f32]) -> Vec<u8> {
    // Sized up front: `flat_map(..).collect()` cannot know the length and grows step by step.
    let mut out = Vec::with_capacity(4 * v.len());
    for x in v {
        out.extend_from_slice(&x.to_le_bytes());
    }
    out
}

/// Metadata key of a run state (see [`save_run`]).
pub const RUN_KEY: &str = "skywatch.run";

/// Where a run stands between two epochs: with the parameters and the optimizer's buffers this is
/// everything a resumed run needs to end exactly as an uninterrupted one.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunState {
    pub config: crate::config::TrainConfig,
    pub epochs_done: usize,
    pub optimizer_step: u64,
    /// The loader's generator position (words), as a decimal string: JSON numbers lose `u128`s.
    pub loader_position: String,
    /// Whether the run started from its seed's random initialisation (`W0`, drawn again from
    /// `config.seed` on resume for the "change since the start" view), rather than from a file's
    /// weights. Absent in states written before it existed: read as `false` (start unknown).
    #[serde(default)]
    pub from_init: bool,
}

/// A run state as safetensors: flat tensors `params`, `optimizer.state1`, `optimizer.state2`
/// (the last two only when the optimizer has them) and the [`RunState`] as metadata.
pub fn save_run(state: &RunState, params: &[f32], state1: &[f32], state2: &[f32]) -> Vec<u8> {
    let bufs: Vec<(&str, Vec<u8>)> = [("params", params), ("optimizer.state1", state1), ("optimizer.state2", state2)]
        .into_iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(n, v)| (n, bytes_of(v)))
        .collect();
    let tensors = bufs.iter().map(|(name, data)| {
        (name.to_string(), TensorView::new(Dtype::F32, vec![data.len() / 4], data).expect("shape matches data"))
    });
    let meta = HashMap::from([(RUN_KEY.to_string(), serde_json::to_string(state).expect("run state serialises"))]);
    safetensors::serialize(tensors, Some(meta)).expect("valid tensors serialise")
}

/// Reads a run state: the [`RunState`] and the flat `params`, `optimizer.state1`,
/// `optimizer.state2` (empty when absent). Sizes are checked by the caller against its model.
pub fn load_run(bytes: &[u8]) -> Result<(RunState, [Vec<f32>; 3])> {
    if bytes.len() > 3 * MAX_FILE_BYTES {
        return Err(Error::Checkpoint(format!("run state of {} bytes is larger than any run", bytes.len())));
    }
    let st = SafeTensors::deserialize(bytes).map_err(|e| Error::Checkpoint(format!("not a run state: {e}")))?;
    let (_, header) =
        SafeTensors::read_metadata(bytes).map_err(|e| Error::Checkpoint(format!("not a run state: {e}")))?;
    let json = header
        .metadata()
        .as_ref()
        .and_then(|m| m.get(RUN_KEY))
        .ok_or_else(|| Error::Checkpoint(format!("not a run state: no '{RUN_KEY}' metadata (a weights file?)")))?;
    let state: RunState = serde_json::from_str(json)
        .map_err(|e| Error::Checkpoint(format!("metadata '{RUN_KEY}' is not a run state: {e}")))?;
    let read = |name: &str| -> Result<Vec<f32>> {
        match st.tensor(name) {
            Err(_) => Ok(Vec::new()),
            // The dtype first: the buffer is sized from the declared shape, which a one-byte
            // dtype would let a file inflate fourfold.
            Ok(t) if t.dtype() != Dtype::F32 => {
                Err(Error::Checkpoint(format!("run state: tensor '{name}' has dtype {:?}, expected F32", t.dtype())))
            }
            Ok(t) => {
                let mut v = vec![0.0; t.shape().iter().product()];
                read_tensor(&st, name, &[v.len()], &mut v)?;
                Ok(v)
            }
        }
    };
    Ok((state, [read("params")?, read("optimizer.state1")?, read("optimizer.state2")?]))
}
