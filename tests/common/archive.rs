//! CIFAR-10-style archives built in memory, for the data tests and the fuzz seeds and harness
//! (`fuzz/` includes this file by path).
#![allow(dead_code)]

use std::io::Write;

/// A tar holding `cifar-10-batches-bin/` and then the given members (path, bytes), in order.
pub fn tar(members: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut t = tar::Builder::new(Vec::new());
    let mut dir = tar::Header::new_gnu();
    dir.set_entry_type(tar::EntryType::Directory);
    dir.set_path("cifar-10-batches-bin/").unwrap();
    dir.set_size(0);
    dir.set_mode(0o755);
    dir.set_cksum();
    t.append(&dir, std::io::empty()).unwrap();
    for (path, bytes) in members {
        let mut h = tar::Header::new_gnu();
        h.set_path(path).unwrap();
        h.set_size(bytes.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        t.append(&h, bytes.as_slice()).unwrap();
    }
    t.into_inner().unwrap()
}

/// `bytes` gzipped.
pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(bytes).unwrap();
    gz.finish().unwrap()
}
