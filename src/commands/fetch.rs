//! `verbatim fetch ENV --into DIR`: what a host runs to deploy.
//!
//! Reads the environment's pointer, downloads and verifies the manifest and
//! the artifact (hashing while streaming to a temp file), unpacks into a temp
//! directory and renames it to `DIR/releases/<manifest-hex>/`, so a release
//! directory is either complete or absent. The manifest is written beside it
//! as `DIR/releases/<manifest-hex>.json`.

use std::fs;
use std::io::{self, BufWriter, Read};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::Serialize;

use crate::cli::{FetchArgs, Global};
use crate::digest::{Digest, HashingWriter};
use crate::error::IntegrityError;
use crate::manifest::Manifest;
use crate::output::Printer;
use crate::safe_fs;
use crate::signals::Interruptible;
use crate::store::local::write_atomic;
use crate::store::{Key, Store};
use crate::unpack;

#[derive(Serialize)]
struct FetchJson {
    manifest: String,
    path: PathBuf,
    /// `fetched`, or `present` when the release was already there.
    result: &'static str,
}

pub fn run(g: &Global, args: &FetchArgs, printer: &Printer) -> Result<()> {
    let store = super::open_store_for(g)?;
    let trust =
        crate::trust::Trust::new(args.trust.allowed_signers.as_deref(), &args.trust.require)?;
    let id = crate::environments::resolve::resolve_manifest(store.as_ref(), &args.target)?;
    let manifest = crate::objects::load_manifest(store.as_ref(), &id)?;
    if let Some(trust) = &trust {
        trust.check(store.as_ref(), &id, &manifest.to_canonical_bytes())?;
    }
    let releases = args.into.join("releases");
    let had_into = fs::symlink_metadata(&args.into).is_ok();
    let had_releases = fs::symlink_metadata(&releases).is_ok();
    fs::create_dir_all(&args.into).with_context(|| format!("creating {}", args.into.display()))?;
    safe_fs::create_dirs(&args.into, Path::new("releases"))
        .with_context(|| format!("creating {}", releases.display()))?;
    let result = fetch(store.as_ref(), &id, &manifest, &releases, printer);
    if result.is_err() {
        // Leave the host as it was: remove_dir only removes what is empty.
        if !had_releases {
            let _ = fs::remove_dir(&releases);
        }
        if !had_into {
            let _ = fs::remove_dir(&args.into);
        }
    }
    let (dest, result) = result?;
    printer.result(dest.display())?;
    printer.json(&FetchJson {
        manifest: id.to_string(),
        path: dest,
        result,
    })?;
    Ok(())
}

/// Downloads, verifies and unpacks `manifest` into `releases/<hex>/` unless
/// it is there; writes the manifest beside it.
fn fetch(
    store: &dyn Store,
    id: &Digest,
    manifest: &Manifest,
    releases: &Path,
    printer: &Printer,
) -> Result<(PathBuf, &'static str)> {
    let dest = releases.join(id.hex());
    let manifest_path = releases.join(format!("{}.json", id.hex()));
    let bytes = manifest.to_canonical_bytes();

    // The release's files are re-checked against the digests recorded when
    // it was unpacked (by fetch or deploy); a modified one is fetched again.
    let into = releases.parent().unwrap_or(Path::new("."));
    let root = crate::host::Root::view(into)?;
    let shared = manifest
        .deploy
        .as_ref()
        .map(|d| d.shared.clone())
        .unwrap_or_default();
    let real_dir = |d: &Path| fs::symlink_metadata(d).is_ok_and(|m| m.is_dir());
    if fs::symlink_metadata(&dest).is_ok() {
        let why = match real_dir(&dest) {
            true => root.modified(id, &shared),
            false => Some("it is no longer a directory".into()),
        };
        if let Some(why) = why {
            printer.warn(format!(
                "{} was modified since it was unpacked ({why}); fetching it again",
                dest.display()
            ));
            root.discard(id)
                .with_context(|| format!("removing the modified release {}", dest.display()))?;
        }
    }
    let mut result = "present";
    if !real_dir(&dest) {
        result = "fetched";
        let _staging = hold_staging(&root, printer)?; // until the rename
        let (staging, entries) = stage(store, id, manifest, releases, printer)?;
        let n = entries.len();
        safe_fs::create_dirs(into, Path::new(".verbatim/releases"))
            .with_context(|| format!("creating {}", into.join(".verbatim/releases").display()))?;
        root.write_record(id, entries)
            .context("recording the release's files")?;
        crate::host::sync_tree(staging.path()).context("syncing the unpacked release")?;
        let staged = staging.keep();
        if let Err(e) = fs::rename(&staged, &dest) {
            let _ = fs::remove_dir_all(&staged);
            if !dest.is_dir() {
                return Err(e)
                    .with_context(|| format!("moving the release into {}", dest.display()));
            }
            // Another fetch finished first; its copy is as good as ours.
        }
        printer.note(format!(
            "unpacked {n} entries of {id} into {}",
            dest.display()
        ));
    }
    if fs::read(&manifest_path).ok().as_deref() != Some(&bytes[..]) {
        write_atomic(&manifest_path, &bytes)
            .with_context(|| format!("writing {}", manifest_path.display()))?;
    }
    if result == "present" {
        printer.note(format!(
            "{id} is already in {}, every file as unpacked",
            dest.display()
        ));
    }
    Ok((dest, result))
}

/// Takes `root`'s staging lock ([`crate::host::Root::hold_staging`]), for
/// as long as the file lives, saying what a killed run left that it removed.
pub(super) fn hold_staging(root: &crate::host::Root, printer: &Printer) -> Result<fs::File> {
    let (lock, removed) = root
        .hold_staging()
        .with_context(|| format!("locking {} to stage a release", root.dir().display()))?;
    for name in removed {
        printer.note(format!(
            "removed {name}, left by an interrupted fetch or deploy"
        ));
    }
    Ok(lock)
}

/// Downloads the artifact of `manifest` (`id`) into a temp file in `dir`,
/// hashing as it streams, and unpacks it, once verified, into a temp
/// directory there (`.download-*`, `.unpack-*`: what a crash leaves behind
/// carries those names). Returns the directory and what it holds.
pub(super) fn stage(
    store: &dyn Store,
    id: &Digest,
    manifest: &Manifest,
    dir: &Path,
    printer: &Printer,
) -> Result<(tempfile::TempDir, Vec<unpack::Entry>)> {
    let key = Key::new(manifest.artifact.key.clone())?;
    let object = store.get(&key)?;
    let tmp = tempfile::Builder::new()
        .prefix(".download-")
        .tempfile_in(dir)
        .with_context(|| format!("creating a temp file in {}", dir.display()))?;
    let bar = printer.bytes_bar(manifest.artifact.size, "fetching");
    let mut w = HashingWriter::new(BufWriter::new(tmp));
    // One byte past the recorded size is enough to know it is wrong.
    let limited = Interruptible(object.reader.take(manifest.artifact.size.saturating_add(1)));
    io::copy(&mut bar.wrap_read(limited), &mut w).with_context(|| format!("downloading {key}"))?;
    bar.finish();
    let (buf, digest, size) = w.finish();
    if digest.hex() != manifest.artifact.sha256 || size != manifest.artifact.size {
        return Err(IntegrityError(format!(
            "{key}: downloaded {size} bytes hashing to {digest}, but manifest {id} says {} bytes, sha256:{}; the store copy is corrupt or was tampered with",
            manifest.artifact.size, manifest.artifact.sha256
        ))
        .into());
    }
    let tmp = buf.into_inner().map_err(|e| e.into_error())?;
    let staging = tempfile::Builder::new()
        .prefix(".unpack-")
        .tempdir_in(dir)
        .with_context(|| format!("creating a temp dir in {}", dir.display()))?;
    let unpacking = printer.bytes_bar(manifest.artifact.size, "unpacking");
    let file = unpacking.wrap_read(Interruptible(tmp.reopen()?));
    let limits = unpack::Limits {
        entries: manifest.artifact.entries,
        bytes: manifest.artifact.unpacked_size,
    };
    let entries =
        unpack::unpack(io::BufReader::new(file), staging.path(), limits).map_err(|e| match e {
            unpack::UnpackError::Refused { .. } => {
                anyhow::Error::new(IntegrityError(format!("{key}: {e}")))
            }
            other => anyhow::Error::new(other),
        })?;
    Ok((staging, entries))
}
