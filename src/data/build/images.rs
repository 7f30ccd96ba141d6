//! Image folders: `{train,test}/{class}/*.{jpg,jpeg,png}` of 32 x 32 RGB pictures, decoded in
//! parallel and interleaved round-robin by class, so that any prefix of a split is balanced.

use super::Records;
use crate::data::{PIXELS, RECORD_BYTES, SIDE};
use crate::error::{Error, Result};
use image::ImageDecoder as _;
use indicatif::ProgressBar;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

#[cfg(feature = "parallel")]
use rayon::prelude::*;

const IMAGE_EXTENSIONS: [&str; 3] = ["jpg", "jpeg", "png"];

/// The image files of one class folder, sorted by name, with their metadata.
pub(super) fn list_images(dir: &Path) -> Result<Vec<(PathBuf, fs::Metadata)>> {
    let shown = dir.display().to_string();
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if matches!(e.kind(), io::ErrorKind::NotFound | io::ErrorKind::NotADirectory) => {
            return Err(Error::format(
                shown,
                None,
                "class folder is missing (expected {train,test}/<class>/ with .jpg, .jpeg or .png images)",
            ));
        }
        Err(e) => return Err(Error::io(dir, e)),
    };
    let mut files = Vec::new();
    for entry in entries {
        let path = entry.map_err(|e| Error::io(dir, e))?.path();
        let is_image = path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| IMAGE_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()));
        if !is_image {
            continue;
        }
        // Follows symbolic links, so a tree of links to the real images works.
        let meta = fs::metadata(&path).map_err(|e| Error::io(&path, e))?;
        if meta.is_file() {
            files.push((path, meta));
        }
    }
    if files.is_empty() {
        return Err(Error::format(shown, None, "class folder has no .jpg, .jpeg or .png images"));
    }
    files.sort_by(|a, b| a.0.file_name().cmp(&b.0.file_name()));
    Ok(files)
}

/// Decodes one split's images (`files[class]`) and interleaves the classes round-robin.
pub(super) fn read_images(files: &[Vec<PathBuf>], bar: &ProgressBar) -> Result<Records> {
    let flat: Vec<&PathBuf> = files.iter().flatten().collect();
    let decode = |p: &&PathBuf| {
        let r = decode_image(p);
        bar.inc(1);
        r
    };
    // Collected in input order either way, and the first error in that order is the one
    // reported, so the result does not depend on thread timing.
    #[cfg(feature = "parallel")]
    let decoded: Vec<Result<Vec<u8>>> = flat.par_iter().map(decode).collect();
    #[cfg(not(feature = "parallel"))]
    let decoded: Vec<Result<Vec<u8>>> = flat.iter().map(decode).collect();
    let decoded = decoded.into_iter().collect::<Result<Vec<_>>>()?;

    let mut per_class = Vec::with_capacity(files.len());
    let mut rest = decoded.as_slice();
    for list in files {
        let (head, tail) = rest.split_at(list.len());
        per_class.push(head);
        rest = tail;
    }
    let mut out = Records::new(files.len());
    out.bytes.reserve(flat.len() * RECORD_BYTES);
    let longest = files.iter().map(Vec::len).max().unwrap_or(0);
    for i in 0..longest {
        for (label, images) in per_class.iter().enumerate() {
            if let Some(pixels) = images.get(i) {
                out.push(label as u8, pixels);
            }
        }
    }
    Ok(out)
}

/// One 32 x 32 RGB image file as planar `R, G, B` bytes.
fn decode_image(path: &Path) -> Result<Vec<u8>> {
    let bytes = fs::read(path).map_err(|e| Error::io(path, e))?;
    decode_image_bytes(&bytes, &path.display().to_string())
}

/// Decodes one image of an image folder: a JPEG or PNG (told by its content, not its name) that
/// must be 32 x 32 8-bit RGB without alpha, returned as the 3072 planar bytes of a record (the
/// 1024 red values, then green, then blue). `shown` names the image in errors. The image-folder
/// source of [`build`](super::build) decodes every file through this.
pub fn decode_image_bytes(bytes: &[u8], shown: &str) -> Result<Vec<u8>> {
    // A crafted file can make a decoder panic (zune-jpeg 0.5.15, the `image` crate's JPEG
    // decoder, indexes out of bounds on some): that is one more image that cannot be decoded, to
    // be named like the others, not a crash of the whole build.
    std::panic::catch_unwind(|| decode_rgb32(bytes, shown)).unwrap_or_else(|panic| {
        let what = panic.downcast_ref::<&str>().copied().or_else(|| panic.downcast_ref::<String>().map(String::as_str));
        Err(Error::format(shown, None, format!("cannot be decoded: the decoder failed ({})", what.unwrap_or("panic"))))
    })
}

fn decode_rgb32(bytes: &[u8], shown: &str) -> Result<Vec<u8>> {
    let shown = || shown.to_string();
    // The format is taken from the content, not the extension: a PNG named .jpg still works.
    let reader = image::ImageReader::new(io::Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| Error::format(shown(), None, format!("cannot be read: {e}")))?;
    if reader.format().is_none() {
        return Err(Error::format(shown(), None, "is not a JPEG or PNG image"));
    }
    let undecodable = |e: image::ImageError| Error::format(shown(), None, format!("cannot be decoded: {e}"));
    let wrong = |w: u32, h: u32, color: image::ColorType| {
        let reason = if color == image::ColorType::Rgb8 {
            format!("is a {w}x{h} {color:?} image, expected 32x32 Rgb8")
        } else {
            format!("is a {w}x{h} {color:?} image, expected 32x32 Rgb8 (8-bit RGB, no alpha)")
        };
        Error::format(shown(), None, reason)
    };
    // Size and colour type from the header, before any pixel is decoded: a few hundred bytes can
    // declare an image of hundreds of megabytes, which would take seconds to decode only to be
    // refused.
    let decoder = reader.into_decoder().map_err(undecodable)?;
    let ((w, h), color) = (decoder.dimensions(), decoder.color_type());
    if color != image::ColorType::Rgb8 || (w, h) != (SIDE as u32, SIDE as u32) {
        return Err(wrong(w, h, color));
    }
    let img = image::DynamicImage::from_decoder(decoder).map_err(undecodable)?;
    // What the header announced, checked again on what was decoded.
    let (w, h, color) = (img.width(), img.height(), img.color());
    let image::DynamicImage::ImageRgb8(rgb) = img else {
        return Err(wrong(w, h, color));
    };
    if (w, h) != (SIDE as u32, SIDE as u32) {
        return Err(wrong(w, h, color));
    }
    let mut planar = vec![0u8; PIXELS];
    let plane = SIDE * SIDE;
    for (p, px) in rgb.as_raw().chunks_exact(3).enumerate() {
        planar[p] = px[0];
        planar[plane + p] = px[1];
        planar[2 * plane + p] = px[2];
    }
    Ok(planar)
}
