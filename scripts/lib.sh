# Shared by the scripts: tool versions and the flags of the two WebAssembly builds.
# shellcheck shell=bash

NIGHTLY=nightly-2026-05-20
WASM_BINDGEN_VERSION=0.2.130 # must equal the exact pin in Cargo.toml
WASM_PACK_VERSION=0.15.1
CARGO_FUZZ_VERSION=0.13.2 # scripts/fuzz; runs on $NIGHTLY
GECKODRIVER_VERSION=0.37.1 # Firefox ESR over WebDriver BiDi (e2e tests) and `wasm-pack test --firefox`
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

# Threaded package without relaxed SIMD, for browsers that have wasm threads but not relaxed SIMD
# (Safari): the flags of wasm_threads less +relaxed-simd, in a target folder of its own (other
# flags rebuild std). RUSTFLAGS replaces the rustflags of .cargo/config.toml, so the cfg that
# gates web-sys's WebGPU items is repeated here.
wasm_threads_simd() {
  local flags=(
    --cfg=web_sys_unstable_apis
    -C target-feature=+atomics,+bulk-memory,+mutable-globals,+simd128
    -C link-arg=--shared-memory -C link-arg=--import-memory -C link-arg=--max-memory=4294967296
    -C link-arg=--export=__wasm_init_tls -C link-arg=--export=__tls_size
    -C link-arg=--export=__tls_align -C link-arg=--export=__tls_base
  )
  RUSTUP_TOOLCHAIN=$NIGHTLY RUSTFLAGS="${flags[*]}" CARGO_TARGET_DIR=target/wasm-threads-simd \
    CARGO_UNSTABLE_BUILD_STD=panic_abort,std "$@"
}
