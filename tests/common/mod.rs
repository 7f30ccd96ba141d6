//! Shared by the tests that need the real CIFAR-10 copy.

use std::path::PathBuf;

/// The CIFAR-10 copy named by `SKYWATCH_DATA_SOURCE` (anything `skywatch data --from` accepts).
/// Without it the test is skipped with a message, except where the data is required
/// (`SKYWATCH_REQUIRE_DATA=1`, set by `scripts/test`, or `CI=true`): there it fails.
pub fn data_source(test: &str) -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("SKYWATCH_DATA_SOURCE") {
        return Some(PathBuf::from(p));
    }
    let required =
        std::env::var("SKYWATCH_REQUIRE_DATA").as_deref() == Ok("1") || std::env::var("CI").as_deref() == Ok("true");
    assert!(
        !required,
        "{test}: SKYWATCH_DATA_SOURCE is not set; point it at a CIFAR-10 copy such as ../shared/data/cifar10-jpg"
    );
    eprintln!("SKIPPED {test}: SKYWATCH_DATA_SOURCE is not set (point it at a CIFAR-10 copy to run it)");
    None
}
