# Shared by the scripts: tool versions and the flags of the two WebAssembly builds.
# shellcheck shell=bash

NIGHTLY=nightly-2026-05-20
WASM_BINDGEN_VERSION=0.2.130 # must equal the exact pin in Cargo.toml
WASM_PACK_VERSION=0.15.1
CARGO_FUZZ_VERSION=0.13.2 # scripts/fuzz; runs on $NIGHTLY
export PATH="$HOME/.cargo/bin:$PWD/node_modules/.bin:$PATH"

# Both packages carry the WebGPU backend (src/gpu/), whose web-sys bindings are behind
# `--cfg=web_sys_unstable_apis`. RUSTFLAGS replaces .cargo/config.toml's flags, so it is repeated here.
WASM_CFG="--cfg=web_sys_unstable_apis"

# Single-threaded package: simd128 only (runs in browsers without relaxed-simd), stable Rust.
wasm_st() {
  RUSTFLAGS="-C target-feature=+simd128 $WASM_CFG" CARGO_TARGET_DIR=target/wasm-st "$@"
}

# Threaded package: since nightly-2025-10-03 `+atomics` no longer implies shared memory, so the
# linker is asked for it, plus the TLS exports that wasm-bindgen-rayon's workers need; std is
# rebuilt with atomics (-Z build-std, given as an environment variable so that wasm-pack passes it
# to cargo). https://github.com/RReverser/wasm-bindgen-rayon#building-rust-code
wasm_threads() {
  local flags=(
    -C target-feature=+atomics,+bulk-memory,+mutable-globals,+simd128,+relaxed-simd
    -C link-arg=--shared-memory -C link-arg=--import-memory -C link-arg=--max-memory=4294967296
    -C link-arg=--export=__wasm_init_tls -C link-arg=--export=__tls_size
    -C link-arg=--export=__tls_align -C link-arg=--export=__tls_base
    "$WASM_CFG"
  )
  RUSTUP_TOOLCHAIN=$NIGHTLY RUSTFLAGS="${flags[*]}" CARGO_TARGET_DIR=target/wasm-threads \
    CARGO_UNSTABLE_BUILD_STD=panic_abort,std "$@"
}
