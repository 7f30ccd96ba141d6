//! The JavaScript API (wasm-bindgen). Filled in by the browser trainer.
