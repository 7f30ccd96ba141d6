//! The image-folder reader: `data::build::decode_image_bytes` (the decoding and the 32 x 32 RGB
//! check that `skywatch data` applies to every file of an image folder) on arbitrary bytes, and,
//! for the inputs it accepts and for one in 16 of the others, a whole `build` of a tiny folder
//! tree made of the input (`{train,test}/{airplane,bird}/`, one file each, under the three image
//! extensions) in a temporary directory (in /dev/shm when there is one).
//!
//! Never panics; an accepted image is 3072 planar bytes equal to what the `image` crate decodes
//! on its own, and a tree of accepted images builds into a bundle that loads back with those
//! pixels, interleaved airplane, bird; a tree with a refused image fails and leaves no bundle.
#![no_main]

use libfuzzer_sys::fuzz_target;
use skywatch::data::build::{BuildOptions, SourceSpec, build, decode_image_bytes};
use skywatch::data::{Dataset, PIXELS};
use skywatch::error::Error;
use std::fs;
use std::path::Path;

fuzz_target!(init: quiet_panics(), |data: &[u8]| check(data));

/// libfuzzer-sys's panic hook aborts at once, even on a panic that the reader catches, so a
/// decoder panic (which `decode_image_bytes` turns into an error) would count as a crash. This
/// hook only prints; a panic that escapes still aborts, in libfuzzer-sys's `catch_unwind`.
fn quiet_panics() {
    std::panic::set_hook(Box::new(|info| eprintln!("{info}\n{}", std::backtrace::Backtrace::capture())));
}

fn check(data: &[u8]) {
    let decoded = decode_image_bytes(data, "fuzz.png");
    match &decoded {
        Ok(planar) => {
            assert_eq!(planar.len(), PIXELS);
            let img = image::load_from_memory(data).expect("the reader decoded it");
            let rgb = img.as_rgb8().expect("the reader accepted it as Rgb8");
            assert_eq!(rgb.dimensions(), (32, 32));
            for (p, px) in rgb.pixels().enumerate() {
                assert_eq!([planar[p], planar[1024 + p], planar[2048 + p]], px.0, "pixel {p}");
            }
        }
        Err(e) => assert!(matches!(e, Error::Format { .. }), "{e}"),
    }
    if decoded.is_ok() || data.len().is_multiple_of(16) {
        tree(data, decoded.ok());
    }
}

fn tree(data: &[u8], planar: Option<Vec<u8>>) {
    let shm = Path::new("/dev/shm");
    let tmp = if shm.is_dir() { tempfile::tempdir_in(shm) } else { tempfile::tempdir() }.unwrap();
    let root = tmp.path().join("images");
    for (split, class, name) in [
        ("train", "airplane", "a.png"),
        ("train", "bird", "b.jpg"),
        ("test", "airplane", "c.jpeg"),
        ("test", "bird", "d.PNG"),
    ] {
        let dir = root.join(split).join(class);
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join(name), data).unwrap();
    }
    let out = tmp.path().join("bundle");
    let opts = BuildOptions {
        source: SourceSpec::Path(root),
        classes: vec!["airplane".into(), "bird".into()],
        out: out.clone(),
        md5: None,
        progress: false,
    };
    let result = build(&opts);
    let Some(planar) = planar else {
        let e = result.expect_err("a tree with an image the reader refuses must not build");
        assert!(matches!(e, Error::Format { .. }), "{e}");
        assert!(!out.exists());
        return;
    };
    let m = result.expect("a tree of accepted images builds").manifest().clone();
    assert_eq!((m.train.per_class.as_slice(), m.test.per_class.as_slice()), ([1, 1].as_slice(), [1, 1].as_slice()));
    let d = Dataset::load(&out).expect("the bundle just built loads");
    for split in [&d.train, &d.test] {
        assert_eq!(split.len(), 2);
        for i in 0..2 {
            assert_eq!(split.label(i), i as u8);
            assert!(split.image(i) == planar.as_slice());
        }
    }
}
