//! `skywatch`: the native command line on the same core as the browser trainer. The commands are
//! in `src/cli/`, part of this binary only.
// Native only. `wasm-pack test` builds every target of the crate for wasm32 with the default
// features, this binary included: there it is empty.
#![cfg_attr(target_arch = "wasm32", no_main)]
#![cfg(not(target_arch = "wasm32"))]

mod cli;

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    match cli::Cli::parse().run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
