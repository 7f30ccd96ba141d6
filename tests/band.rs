//! The PyTorch band: the committed `www/reference/pytorch-band.json` is well-formed (100 epochs for
//! `lecture` and `deep`, min <= median <= max, its provenance given), and the position of a run in
//! it. The file is made by `tests/reference/pytorch_band.py`, which needs PyTorch and does not run
//! in CI.
#![cfg(not(target_arch = "wasm32"))] // native; tests/wasm.rs holds the tests that run in the browser

use skywatch::config::TrainConfig;
use skywatch::inspect::band::{Band, Metric, PYTORCH_BAND_JSON};

#[test]
fn the_committed_band_is_well_formed_and_says_how_it_was_made() {
    // Read independently as plain JSON first.
    let v: serde_json::Value = serde_json::from_str(PYTORCH_BAND_JSON).unwrap();
    let on_disk =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/www/reference/pytorch-band.json")).unwrap();
    assert_eq!(on_disk, PYTORCH_BAND_JSON, "the crate embeds the committed file");
    assert_eq!(v["format"], "skywatch-pytorch-band");
    let p = &v["provenance"];
    assert_eq!(p["script"], "tests/reference/pytorch_band.py");
    assert!(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(p["script"].as_str().unwrap()).is_file());
    for key in ["python", "torch", "numpy", "date"] {
        assert!(!p[key].as_str().unwrap().is_empty(), "provenance.{key}");
    }
    assert_eq!(p["seeds"].as_array().unwrap().len(), 5);
    let data = &p["data"];
    assert_eq!(data["classes"], serde_json::json!(["airplane", "bird"]));
    assert_eq!((data["train"]["count"].as_u64(), data["test"]["count"].as_u64()), (Some(10_000), Some(2_000)));
    for hash in [&data["manifest_sha256"], &data["train"]["sha256"], &data["test"]["sha256"]] {
        let h = hash.as_str().unwrap();
        assert!(h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()), "sha256 {h}");
    }
    // Small, and no per-image data: only per-epoch statistics.
    assert!(PYTORCH_BAND_JSON.len() < 64 << 10, "{} bytes", PYTORCH_BAND_JSON.len());

    let band = Band::parse(PYTORCH_BAND_JSON).unwrap();
    assert_eq!(band.presets.keys().collect::<Vec<_>>(), ["conv", "deep", "lecture"]);
    for (name, pb) in &band.presets {
        assert_eq!(pb.epochs, 100, "{name}");
        let preset = TrainConfig::preset(name).unwrap().model;
        assert_eq!((&pb.layers, &pb.conv), (&preset.layers, &preset.conv), "{name}");
        for metric in Metric::ALL {
            let s = pb.stat(metric);
            assert_eq!((s.min.len(), s.median.len(), s.max.len()), (100, 100, 100));
            for e in 0..100 {
                assert!(s.min[e] <= s.median[e] && s.median[e] <= s.max[e], "{name} {metric:?} epoch {e}");
            }
        }
        // The lecture's picture: about 0.8 validation accuracy late in the run for the MLPs, about
        // 0.89 for the book's convolutional Net (chapter 8 prints 0.89), loss falling.
        let acc = &pb.val_accuracy.median;
        let expected = if preset.is_conv() { 0.85..0.93 } else { 0.75..0.86 };
        assert!(expected.contains(&acc[99]), "{name}: median val accuracy {}", acc[99]);
        assert!(pb.train_loss.median[99] < pb.train_loss.median[0] / 2.0, "{name}: training loss must fall");
    }
}

#[test]
fn bad_band_files_are_refused() {
    let good: serde_json::Value = serde_json::from_str(PYTORCH_BAND_JSON).unwrap();
    let refused = |edit: &dyn Fn(&mut serde_json::Value), needle: &str| {
        let mut v = good.clone();
        edit(&mut v);
        let err = Band::parse(&v.to_string()).unwrap_err().to_string();
        assert!(err.contains(needle), "{err}");
    };
    refused(&|v| v["version"] = 2.into(), "version 2");
    refused(&|v| v["provenance"]["seeds"] = serde_json::json!([]), "seeds");
    refused(&|v| v["presets"]["lecture"]["val_loss"]["max"][3] = (-1.0).into(), "lecture.val_loss at epoch 3");
    refused(&|v| v["presets"]["deep"]["val_accuracy"]["min"][0] = 2.0.into(), "deep.val_accuracy at epoch 0");
    refused(
        &|v| {
            v["presets"]["deep"]["train_loss"]["median"].as_array_mut().unwrap().pop();
        },
        "100 / 99 / 100 values for 100 epochs",
    );
    refused(
        &|v| {
            v.as_object_mut().unwrap().remove("provenance");
        },
        "provenance",
    );
    refused(&|v| v["presets"]["lecture"]["val_acuracy"] = serde_json::json!({}), "unknown field `val_acuracy`");
    refused(&|v| v["presets"]["deep"]["loss"] = "mse".into(), "unknown loss 'mse'");
}

#[test]
fn where_a_run_stands_in_the_band() {
    let band = Band::pytorch();
    let pb = &band.presets["lecture"];
    let (lo, hi) = (pb.val_accuracy.min[37], pb.val_accuracy.max[37]);
    let mid = (lo + hi) / 2.0;
    let p = band.position("lecture", Metric::ValAccuracy, 37, mid).unwrap().unwrap();
    assert!(p.inside);
    assert_eq!(p.side, "inside");
    assert_eq!(p.text, format!("epoch 37: inside the PyTorch band ({lo:.3}-{hi:.3})"));
    // The bounds belong to the band.
    assert!(band.position("lecture", Metric::ValAccuracy, 37, lo).unwrap().unwrap().inside);
    assert!(band.position("lecture", Metric::ValAccuracy, 37, hi).unwrap().unwrap().inside);
    let above = band.position("lecture", Metric::ValAccuracy, 37, hi + 1e-3).unwrap().unwrap();
    assert_eq!((above.inside, above.side), (false, "above"));
    assert!(above.text.starts_with("epoch 37: outside the PyTorch band"));
    let below =
        band.position("deep", Metric::ValLoss, 0, band.presets["deep"].val_loss.min[0] - 0.01).unwrap().unwrap();
    assert_eq!(below.side, "below");
    assert_eq!(band.position("lecture", Metric::TrainLoss, 100, 0.1).unwrap(), None, "past the band");
    assert!(band.position("custom", Metric::ValLoss, 1, 0.1).is_err());
    assert!(band.position("lecture", Metric::ValLoss, 1, f64::NAN).is_err());
    assert_eq!(Metric::parse("val_loss").unwrap(), Metric::ValLoss);
    assert!(Metric::parse("accuracy").is_err());

    // Which runs the band applies to: the preset's recipe on the whole training set, any seed
    // and any number of epochs.
    let mut c = TrainConfig::preset("deep").unwrap();
    (c.seed, c.epochs) = (7, 300);
    assert_eq!(band.preset_for(&c, 10_000), Some("deep"));
    assert_eq!(band.preset_for(&TrainConfig::preset("lecture").unwrap(), 10_000), Some("lecture"));
    assert_eq!(band.preset_for(&TrainConfig::preset("conv").unwrap(), 10_000), Some("conv"));
    assert_eq!(band.preset_for(&c, 1_000), None, "the widget's quick subset learns on other data");
    c.optimizer.lr = 0.1;
    assert_eq!(band.preset_for(&c, 10_000), None);
    let mut c = TrainConfig::preset("lecture").unwrap();
    c.batch_size = 32;
    assert_eq!(band.preset_for(&c, 10_000), None);
}
