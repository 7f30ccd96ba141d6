//! The safetensors checkpoint loaders on arbitrary bytes: `checkpoint::load(bytes, None)`,
//! `load(bytes, lecture)` and `load_exact(bytes, lecture)` (weights files from the CLI, the page
//! and PyTorch), and `load_run` (the run state the page keeps for resuming).
//!
//! Never panics; a loaded model has a configuration that validates, exactly the parameters that
//! configuration needs, all finite; saving it and loading it again gives the same model bit for
//! bit, and `load_exact` with its own configuration accepts the same file. `load_exact` only ever
//! returns the lecture's model.
#![no_main]

use libfuzzer_sys::fuzz_target;
use skywatch::checkpoint;
use skywatch::config::TrainConfig;
use skywatch::model::Mlp;

fuzz_target!(|data: &[u8]| {
    let lecture = TrainConfig::preset("lecture").unwrap().model;
    if let Ok(model) = checkpoint::load(data, None) {
        check(&model);
        let again = checkpoint::load(&checkpoint::save(&model), None).expect("a saved model loads");
        assert_eq!(again.config, model.config);
        assert!(same_bits(&again.params, &model.params), "save and load changed the parameters");
        let exact = checkpoint::load_exact(data, &model.config).expect("load_exact with the file's own config");
        assert!(same_bits(&exact.params, &model.params));
    }
    if let Ok(model) = checkpoint::load(data, Some(&lecture)) {
        check(&model);
    }
    if let Ok(model) = checkpoint::load_exact(data, &lecture) {
        check(&model);
        assert_eq!(model.config, lecture);
    }
    if let Ok((_, buffers)) = checkpoint::load_run(data) {
        // Sizes are checked against the model by `Trainer::resume`; values here.
        assert!(buffers.iter().flatten().all(|v| v.is_finite()), "a run state with a non-finite value");
    }
});

fn check(model: &Mlp) {
    model.config.validate().expect("a loaded configuration validates");
    assert_eq!(model.params.len(), model.config.parameter_counts().iter().sum::<usize>());
    assert_eq!(model.linears.len(), model.config.layers.len() - 1);
    if let Some(i) = model.params.iter().position(|v| !v.is_finite()) {
        panic!("parameter {i} is {}", model.params[i]);
    }
}

fn same_bits(a: &[f32], b: &[f32]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits())
}
