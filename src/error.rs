//! The one error type of the crate. Every variant names what was wrong and where (file, byte
//! offset, tensor name, expected and actual shapes), so the message alone explains the failure.
//! It becomes a `JsError` only at the wasm boundary (`wasm.rs`).

use std::path::PathBuf;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A configuration value is out of range or unknown (learning rate, layer sizes, class names).
    #[error("invalid configuration: {0}")]
    Config(String),

    /// Bytes that do not follow their format: a bundle, an archive member, a manifest, an image.
    #[error("{file}: {reason}{}", offset.map(|o| format!(" (at byte {o})")).unwrap_or_default())]
    Format { file: String, offset: Option<u64>, reason: String },

    /// A checksum that does not match the one expected.
    #[error("{file}: {algorithm} checksum mismatch: expected {expected}, got {actual}")]
    Checksum { file: String, algorithm: &'static str, expected: String, actual: String },

    /// A tensor whose shape does not match the model.
    #[error("{what}: expected shape {expected:?}, got {actual:?}")]
    Shape { what: String, expected: Vec<usize>, actual: Vec<usize> },

    /// A checkpoint that cannot be used with this model (missing or unexpected tensors, bad values).
    #[error("checkpoint: {0}")]
    Checkpoint(String),

    /// Training produced a non-finite loss; the weights of the last good epoch are kept.
    #[error(
        "training diverged: loss became {loss} at epoch {epoch}, batch {batch}; the weights of the last finished epoch were kept (try a smaller learning rate)"
    )]
    Diverged { epoch: usize, batch: usize, loss: f32 },

    /// The WebGPU backend cannot run or stopped: no adapter, a lost device, GPU memory exhausted,
    /// a shader that does not compile (wasm only). The message is the whole explanation.
    #[error("{0}")]
    Gpu(String),

    /// An operating-system error on a named file (native only).
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },

    /// A network download failed (native only).
    #[error("download of {url} failed: {reason}")]
    Download { url: String, reason: String },
}

impl Error {
    pub fn format(file: impl Into<String>, offset: Option<u64>, reason: impl Into<String>) -> Self {
        Error::Format { file: file.into(), offset, reason: reason.into() }
    }

    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io { path: path.into(), source }
    }
}
