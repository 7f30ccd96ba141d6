//! Test support, shared by the test files (each uses a part of it): the real CIFAR-10 copy
//! ([`data_source`]) and data made up for the tests ([`fixtures`]).
//!
//! The tests that need the real copy are marked `#[ignore = "needs CIFAR-10 …"]`, so that a plain `cargo test` without the
//! data reports them as ignored instead of passing them. `scripts/test` runs them with
//! `--include-ignored` and `SKYWATCH_DATA_SOURCE` set.

#![allow(dead_code)]

pub mod fixtures;

use std::path::PathBuf;

/// The CIFAR-10 copy named by `SKYWATCH_DATA_SOURCE` (anything `skywatch data --from` accepts).
/// A test that asks for it fails when it is not set: it never passes without its data.
pub fn data_source(test: &str) -> PathBuf {
    match std::env::var_os("SKYWATCH_DATA_SOURCE") {
        Some(p) => PathBuf::from(p),
        None => panic!(
            "{test}: SKYWATCH_DATA_SOURCE is not set; point it at a CIFAR-10 copy such as ../shared/data/cifar10-jpg"
        ),
    }
}
