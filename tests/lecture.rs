//! The lecture's own numbers (Stevens, Antiga & Viehmann, "Deep Learning with PyTorch", ch. 7):
//! softmax of [1, 2, 3], the parameter counts of both models as `numel()` lists, and PyTorch's
//! `state_dict` names.
#![cfg(not(target_arch = "wasm32"))] // native; tests/wasm.rs holds the tests that run in the browser

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use skywatch::checkpoint;
use skywatch::config::{LossKind, TrainConfig};
use skywatch::layers::softmax;
use skywatch::model::Mlp;

#[test]
fn softmax_of_one_two_three() {
    // The lecture: softmax(torch.tensor([1.0, 2.0, 3.0])) = tensor([0.0900, 0.2447, 0.6652]).
    let p = softmax(&[1.0, 2.0, 3.0]);
    for (got, want) in p.iter().zip([0.0900, 0.2447, 0.6652]) {
        assert!((got - want).abs() < 5e-5, "{p:?}");
    }
    assert!((p.iter().sum::<f32>() - 1.0).abs() < 1e-6);
}

#[test]
fn parameter_counts_as_the_lecture_prints_them() {
    let lecture = TrainConfig::preset("lecture").unwrap().model;
    assert_eq!(lecture.parameter_counts(), vec![1572864, 512, 1024, 2]);
    assert_eq!(lecture.parameter_summary(), "(1574402, [1572864, 512, 1024, 2])");
    let deep = TrainConfig::preset("deep").unwrap().model;
    assert_eq!(deep.parameter_counts(), vec![3145728, 1024, 524288, 512, 65536, 128, 256, 2]);
    assert_eq!(deep.parameter_summary(), "(3737474, [3145728, 1024, 524288, 512, 65536, 128, 256, 2])");
    let model = Mlp::new(&deep, &mut ChaCha8Rng::seed_from_u64(0)).unwrap();
    assert_eq!(model.num_params(), 3_737_474);
}

#[test]
fn presets_match_the_lecture_setup() {
    let l = TrainConfig::preset("lecture").unwrap();
    assert_eq!((l.model.layers.as_slice(), l.model.loss), ([3072, 512, 2].as_slice(), LossKind::Nll));
    assert_eq!((l.optimizer.lr, l.batch_size, l.epochs), (1e-2, 64, 100));
    let d = TrainConfig::preset("deep").unwrap();
    assert_eq!(d.model.loss, LossKind::CrossEntropy);
    assert!(TrainConfig::preset("huge").unwrap_err().to_string().contains("unknown preset 'huge'"));
}

#[test]
fn state_dict_names_and_shapes() {
    // PyTorch: nn.Sequential(Linear, Tanh, Linear, LogSoftmax).state_dict() has
    // 0.weight [512, 3072], 0.bias [512], 2.weight [2, 512], 2.bias [2].
    let config = TrainConfig::preset("deep").unwrap().model;
    let model = Mlp::new(&config, &mut ChaCha8Rng::seed_from_u64(0)).unwrap();
    let bytes = checkpoint::save(&model);
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut got: Vec<(String, Vec<usize>)> = st.tensors().into_iter().map(|(n, t)| (n, t.shape().to_vec())).collect();
    got.sort();
    let want = [
        ("0.bias", vec![1024]),
        ("0.weight", vec![1024, 3072]),
        ("2.bias", vec![512]),
        ("2.weight", vec![512, 1024]),
        ("4.bias", vec![128]),
        ("4.weight", vec![128, 512]),
        ("6.bias", vec![2]),
        ("6.weight", vec![2, 128]),
    ];
    assert_eq!(got, want.iter().map(|(n, s)| (n.to_string(), s.clone())).collect::<Vec<_>>());
}

#[test]
fn initialisation_follows_pytorch_bounds() {
    // nn.Linear: weight and bias uniform in +-1/sqrt(in_features); for in = 3072 the bound is
    // 0.018042; the sample should also nearly reach it and be centred.
    let config = TrainConfig::preset("lecture").unwrap().model;
    let model = Mlp::new(&config, &mut ChaCha8Rng::seed_from_u64(3)).unwrap();
    let first = &model.linears[0];
    let w = first.weight(&model.params);
    let bound = 1.0 / 3072f32.sqrt();
    let max = w.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    assert!(max <= bound && max > 0.99 * bound, "max |w| = {max}, bound {bound}");
    let mean = w.iter().map(|&v| v as f64).sum::<f64>() / w.len() as f64;
    assert!(mean.abs() < 1e-4, "mean {mean}");
    let second = model.linears[1].weight(&model.params);
    assert!(second.iter().all(|v| v.abs() <= 1.0 / 512f32.sqrt()));
}
