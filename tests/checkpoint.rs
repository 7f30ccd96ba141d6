//! Safetensors checkpoints: a bit-exact round trip, PyTorch-style files without metadata, and a
//! clear refusal of files that do not fit the model.
#![cfg(not(target_arch = "wasm32"))] // native; tests/wasm.rs holds the tests that run in the browser

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use safetensors::{Dtype, tensor::TensorView};
use skywatch::checkpoint::{self, MODEL_KEY};
use skywatch::config::{Activation, LossKind, ModelConfig, TrainConfig};
use skywatch::model::Mlp;
use std::collections::HashMap;

fn lecture() -> ModelConfig {
    TrainConfig::preset("lecture").unwrap().model
}

/// A safetensors file like `safetensors.torch.save_file(model.state_dict(), f)` writes: F32
/// tensors, `{"format": "pt"}` metadata and nothing else.
fn pytorch_file(tensors: &[(&str, Vec<usize>, Vec<f32>)]) -> Vec<u8> {
    let bytes: Vec<(String, Vec<usize>, Vec<u8>)> = tensors
        .iter()
        .map(|(n, s, v)| (n.to_string(), s.clone(), v.iter().flat_map(|x| x.to_le_bytes()).collect()))
        .collect();
    let views = bytes.iter().map(|(n, s, b)| (n.clone(), TensorView::new(Dtype::F32, s.clone(), b).unwrap()));
    safetensors::serialize(views, Some(HashMap::from([("format".to_string(), "pt".to_string())]))).unwrap()
}

fn small_state_dict(w0: Vec<usize>) -> Vec<(&'static str, Vec<usize>, Vec<f32>)> {
    let n0 = w0.iter().product();
    vec![
        ("0.weight", w0.clone(), (0..n0).map(|i| i as f32 * 0.01).collect()),
        ("0.bias", vec![w0[0]], vec![0.5; w0[0]]),
        ("2.weight", vec![2, w0[0]], vec![-0.25; 2 * w0[0]]),
        ("2.bias", vec![2], vec![1.0, -1.0]),
    ]
}

#[test]
fn round_trip_is_bit_exact_and_keeps_the_configuration() {
    let config = ModelConfig::mlp(vec![3072, 64, 32, 3], Activation::Relu, LossKind::CrossEntropy);
    let model = Mlp::new(&config, &mut ChaCha8Rng::seed_from_u64(1)).unwrap();
    let bytes = checkpoint::save(&model);
    // One model, one file: the bytes do not depend on hash-map order (which varies per run).
    for _ in 0..8 {
        assert!(checkpoint::save(&model.clone()) == bytes, "saving twice gave different bytes");
    }
    let back = checkpoint::load(&bytes, None).unwrap();
    assert_eq!(back.config, config);
    assert_eq!(back.params, model.params);
    let meta = safetensors::SafeTensors::read_metadata(&bytes).unwrap().1;
    assert_eq!(meta.metadata().as_ref().unwrap().get("format").map(String::as_str), Some("pt"));
    assert!(meta.metadata().as_ref().unwrap().contains_key(MODEL_KEY));
}

#[test]
fn a_pytorch_state_dict_loads_with_widths_from_the_shapes() {
    let file = pytorch_file(&small_state_dict(vec![4, 3072]));
    let model = checkpoint::load(&file, None).unwrap();
    assert_eq!(model.config.layers, vec![3072, 4, 2]);
    // A hint with the same widths supplies what a state_dict does not record.
    let hint = ModelConfig::mlp(vec![3072, 4, 2], Activation::Relu, LossKind::CrossEntropy);
    assert_eq!(checkpoint::load(&file, Some(&hint)).unwrap().config, hint);
    let lin = &model.linears[1];
    assert_eq!(lin.bias(&model.params).to_vec(), vec![1.0, -1.0]);
    assert_eq!(model.linears[0].weight(&model.params)[[1, 2]], (3072 + 2) as f32 * 0.01);
}

#[test]
fn wrong_shape_is_refused_with_the_tensor_name() {
    let model = Mlp::new(&lecture(), &mut ChaCha8Rng::seed_from_u64(1)).unwrap();
    let file = pytorch_file(&small_state_dict(vec![4, 3072]));
    let err = checkpoint::load_exact(&file, &model.config).unwrap_err().to_string();
    assert!(err.contains("'0.weight'") && err.contains("[512, 3072]") && err.contains("[4, 3072]"), "{err}");
}

#[test]
fn missing_extra_non_finite_and_foreign_files_are_refused() {
    let mut sd = small_state_dict(vec![4, 3072]);
    sd.pop();
    let err = checkpoint::load(&pytorch_file(&sd), None).unwrap_err().to_string();
    assert!(err.contains("missing tensor '2.bias'"), "{err}");

    let mut sd = small_state_dict(vec![4, 3072]);
    sd.push(("9.running_mean", vec![2], vec![0.0, 0.0]));
    let err = checkpoint::load(&pytorch_file(&sd), None).unwrap_err().to_string();
    assert!(err.contains("unexpected tensors") && err.contains("9.running_mean"), "{err}");

    let mut sd = small_state_dict(vec![4, 3072]);
    sd[3].2[1] = f32::NAN;
    let err = checkpoint::load(&pytorch_file(&sd), None).unwrap_err().to_string();
    assert!(err.contains("'2.bias'") && err.contains("non-finite"), "{err}");

    let err = checkpoint::load(b"PK\x03\x04 this is a zip file", None).unwrap_err().to_string();
    assert!(err.contains("not a safetensors file"), "{err}");

    let sd = vec![("fc.weight", vec![2, 2], vec![0.0; 4])];
    let err = checkpoint::load(&pytorch_file(&sd), None).unwrap_err().to_string();
    assert!(err.contains("no tensor named '0.weight'"), "{err}");
}

/// `train --save` and the page record how the weights were made (`skywatch.train`); the file
/// still loads as weights, and files without the record (ours from `save`, PyTorch's) say so.
#[test]
fn the_training_configuration_is_recorded_and_read_back() {
    let mut train = TrainConfig::preset("lecture").unwrap();
    train.seed = 3_141_592_653;
    train.epochs = 7;
    train.train_size = Some(1000);
    let model = Mlp::new(&train.model, &mut ChaCha8Rng::seed_from_u64(2)).unwrap();
    let bytes = checkpoint::save_trained(&model, &train);
    assert_eq!(checkpoint::load_train_config(&bytes).unwrap(), Some(train.clone()));
    let back = checkpoint::load(&bytes, None).unwrap();
    assert_eq!((back.config, back.params), (model.config.clone(), model.params.clone()));

    assert_eq!(checkpoint::load_train_config(&checkpoint::save(&model)).unwrap(), None);
    assert_eq!(checkpoint::load_train_config(&pytorch_file(&small_state_dict(vec![4, 3072]))).unwrap(), None);

    // A record that is not a configuration is refused by name.
    let views = [("x", TensorView::new(Dtype::F32, vec![1], &[0u8; 4][..]).unwrap())];
    let meta = HashMap::from([(checkpoint::TRAIN_KEY.to_string(), "{\"seed\": -1}".to_string())]);
    let bad = safetensors::serialize(views, Some(meta)).unwrap();
    let e = checkpoint::load_train_config(&bad).unwrap_err().to_string();
    assert!(e.contains("skywatch.train"), "{e}");
}
