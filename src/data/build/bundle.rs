//! The bundle writer: everything is read and validated in memory before the first byte is
//! written. The record files are named after their content hash and each is written to a
//! temporary file in the bundle folder and renamed into place; `manifest.json` is written the same
//! way, last: that rename is the commit point. A reader therefore sees either the old bundle or
//! the new one, never a mix. Only after the commit are the record files of the previous manifest
//! deleted. On failure the temporary files and any record file this build added are removed, and
//! so is the bundle folder if this build created it.

use super::Records;
use crate::data::{Manifest, SourceInfo, sha256_hex};
use crate::error::{Error, Result};
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Prefix of every temporary file this module creates, so they are recognisable as ours.
const TMP_PREFIX: &str = ".skywatch-";

/// The module beside the manifest that names the bundle's files as static URLs.
pub const FILES_JS: &str = "files.js";

/// `files.js`: the manifest and each split's file as `new URL('./literal', import.meta.url)`, the
/// form that bundlers (Vite, webpack, Rollup) follow and copy into their output, so that the
/// widget finds its quick data once bundled (`www/widget/trainer.js` imports this module).
pub fn files_js(m: &Manifest) -> String {
    let url = |f: &str| format!("new URL('./{f}', import.meta.url).href");
    format!(
        "// Written by skywatch with this bundle: its files as static URLs, for bundlers.\n\
         export const manifest = {};\n\
         export const files = {{\n  '{}': {},\n  '{}': {},\n}};\n",
        url("manifest.json"),
        m.train.file,
        url(&m.train.file),
        m.test.file,
        url(&m.test.file)
    )
}

/// The manifest in `out` if it describes exactly this input and these classes and its files are
/// intact. Any doubt (missing, unreadable, other version, changed files) means "rebuild".
pub(super) fn up_to_date(out: &Path, source: &SourceInfo, classes: &[String]) -> Option<Manifest> {
    let json = fs::read(out.join("manifest.json")).ok()?;
    let m = Manifest::parse(&json).ok()?;
    let same = m.source.kind == source.kind && m.source.fingerprint == source.fingerprint && m.classes == classes;
    if !same {
        return None;
    }
    if fs::read_to_string(out.join(FILES_JS)).ok()? != files_js(&m) {
        return None;
    }
    for split in [&m.train, &m.test] {
        let bytes = fs::read(out.join(&split.file)).ok()?;
        if bytes.len() as u64 != split.stored_bytes.unwrap_or(split.bytes) || sha256_hex(&bytes) != split.sha256 {
            return None;
        }
    }
    Some(m)
}

pub(super) fn temp_file(dir: &Path) -> Result<tempfile::NamedTempFile> {
    let mut builder = tempfile::Builder::new();
    builder.prefix(TMP_PREFIX).suffix(".tmp");
    // tempfile's default 0600 would make the bundle unreadable to a web server running as
    // another user; 0644 is still narrowed by the umask.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(fs::Permissions::from_mode(0o644));
    }
    builder.tempfile_in(dir).map_err(|e| Error::io(dir, e))
}

/// Writes `bytes` to `dir/name` through a temporary file and a rename, so `dir/name` is either
/// absent, the old file, or complete.
fn write_atomic(dir: &Path, name: &str, bytes: &[u8]) -> Result<()> {
    let mut tmp = temp_file(dir)?;
    tmp.write_all(bytes).and_then(|()| tmp.as_file().sync_all()).map_err(|e| Error::io(tmp.path(), e))?;
    let target = dir.join(name);
    tmp.persist(&target).map_err(|e| Error::io(&target, e.error))?;
    Ok(())
}

/// Makes renames in `dir` durable. Best effort: not every platform can sync a directory, and
/// the rename itself has already happened.
pub(super) fn sync_dir(dir: &Path) {
    #[cfg(unix)]
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    #[cfg(not(unix))]
    let _ = dir;
}

pub(super) fn write_bundle(
    out: &Path,
    classes: &[String],
    train: &Records,
    test: &Records,
    source: SourceInfo,
    encoded: bool,
) -> Result<Manifest> {
    let (manifest, files) = if encoded {
        Manifest::encoded(classes.to_vec(), &train.bytes, &test.bytes, source)
    } else {
        let m = Manifest::for_records(classes.to_vec(), &train.bytes, &test.bytes, source);
        (m, [train.bytes.clone(), test.bytes.clone()])
    };
    let json = manifest.to_json();
    // Self-check before touching the disk: what we are about to commit must read back.
    if Manifest::parse(json.as_bytes())? != manifest {
        return Err(Error::format("manifest.json", None, "the new manifest does not read back as written"));
    }

    // The first missing ancestor is the one to remove on failure, so no empty parents remain.
    let created =
        out.ancestors().take_while(|a| !a.as_os_str().is_empty() && !a.exists()).last().map(Path::to_path_buf);
    if let Err(e) = fs::create_dir_all(out) {
        // It may have created some of the parents before failing.
        if let Some(root) = &created {
            let _ = fs::remove_dir_all(root);
        }
        return Err(Error::io(out, e));
    }
    let previous = fs::read(out.join("manifest.json")).ok().and_then(|json| Manifest::parse(&json).ok());

    let mut added: Vec<PathBuf> = Vec::new();
    let result = (|| -> Result<()> {
        for (info, stored) in [(&manifest.train, &files[0]), (&manifest.test, &files[1])] {
            let target = out.join(&info.file);
            if !target.exists() {
                added.push(target);
            }
            write_atomic(out, &info.file, stored)?;
        }
        write_atomic(out, FILES_JS, files_js(&manifest).as_bytes())?;
        write_atomic(out, "manifest.json", json.as_bytes())
    })();
    if let Err(e) = result {
        // Temporary files are gone already (dropped); undo what was renamed into place.
        match &created {
            Some(root) => {
                let _ = fs::remove_dir_all(root);
            }
            None => {
                for path in &added {
                    let _ = fs::remove_file(path);
                }
            }
        }
        return Err(e);
    }
    sync_dir(out);

    // Committed. The old record files are garbage now; failing to delete one leaves a stray
    // file but a correct bundle, so it is not an error.
    if let Some(old) = previous {
        for file in [&old.train.file, &old.test.file] {
            if *file != manifest.train.file && *file != manifest.test.file {
                let _ = fs::remove_file(out.join(file));
            }
        }
    }
    Ok(manifest)
}
