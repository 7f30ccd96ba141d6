//! Bad configurations are refused with a message naming the value, before anything is allocated.
#![cfg(not(target_arch = "wasm32"))] // native; tests/wasm.rs holds the tests that run in the browser

use skywatch::config::{MAX_PARAMETERS, TrainConfig};
use skywatch::model::Mlp;

fn err(f: impl FnOnce(&mut TrainConfig)) -> String {
    let mut c = TrainConfig::preset("lecture").unwrap();
    f(&mut c);
    c.validate().unwrap_err().to_string()
}

#[test]
fn bad_values_are_named() {
    assert!(err(|c| c.optimizer.lr = 0.0).contains("learning rate"));
    assert!(err(|c| c.optimizer.lr = f32::NAN).contains("learning rate"));
    assert!(err(|c| c.optimizer.lr = -1.0).contains("learning rate"));
    assert!(err(|c| c.batch_size = 0).contains("batch size"));
    assert!(err(|c| c.optimizer.momentum = 1.5).contains("momentum"));
    assert!(err(|c| c.train_size = Some(0)).contains("training-set size"));
    assert!(err(|c| c.model.layers = vec![3072]).contains("at least the input and output"));
    assert!(err(|c| c.model.layers = vec![3072, 0, 2]).contains("layer width 0"));
    assert!(err(|c| c.model.layers = vec![3072, 512, 1]).contains("at least 2 classes"));
    assert!(err(|c| c.model.layers = vec![3072, 1_000_000, 2]).contains("out of range"));
}

#[test]
fn absurd_models_are_refused_before_allocation() {
    // 16384 x 16384 x 8 layers is 2 G parameters: refused by arithmetic, not by running out of memory.
    let mut c = TrainConfig::preset("lecture").unwrap();
    c.model.layers = vec![3072, 16384, 16384, 16384, 16384, 16384, 16384, 16384, 2];
    let e = c.validate().unwrap_err().to_string();
    assert!(e.contains(&format!("limit of {MAX_PARAMETERS}")), "{e}");
    assert!(Mlp::zeros(&c.model).is_err());
}

#[test]
fn configuration_is_plain_json_and_rejects_unknown_fields() {
    let c = TrainConfig::preset("deep").unwrap();
    let json = serde_json::to_string(&c).unwrap();
    assert_eq!(serde_json::from_str::<TrainConfig>(&json).unwrap(), c);
    let typo = json.replace("\"batch_size\"", "\"batchsize\"");
    assert!(serde_json::from_str::<TrainConfig>(&typo).is_err());
}

#[test]
fn random_seeds_are_below_the_bound_and_differ() {
    use skywatch::config::{RANDOM_SEED_BOUND, random_seed};
    let seeds: Vec<u64> = (0..8).map(|_| random_seed().unwrap()).collect();
    assert!(seeds.iter().all(|&s| s < RANDOM_SEED_BOUND), "{seeds:?}");
    // Eight draws of 32 bits that are all equal would mean the entropy source is not used.
    assert!(seeds.iter().any(|&s| s != seeds[0]), "{seeds:?}");
}
