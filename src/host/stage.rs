//! Staging a release on a host: download the artifact (hashing while
//! streaming to a temp file), check it against the manifest, unpack it into
//! a temp directory, and rename that to `releases/<manifest-hex>/`, so a
//! release directory is either complete or absent. `fetch` does only this;
//! `deploy` does it on its way to activating the release.
//!
//! A release already there is re-checked against the per-file records made
//! when it was unpacked, and fetched again if it was modified. Temps carry
//! the names a crash leaves behind (`.download-*`, `.unpack-*`,
//! `.manifest-*`); they are removed only under the root's staging lock, by
//! whoever can take it alone.

use std::fs;
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};

use anyhow::{Context, Result};
use serde::Serialize;

use super::root::{sync_tree, Root, RELEASES};
use crate::digest::{Digest, HashingWriter};
use crate::error::IntegrityError;
use crate::gzip::{Available, ParallelGunzip};
use crate::manifest::Manifest;
use crate::progress::Progress;
use crate::safe_fs;
use crate::signals::Interruptible;
use crate::store::{Key, Store};
use crate::unpack;

/// What `fetch --json` prints.
#[derive(Serialize)]
pub struct FetchJson {
    /// The manifest fetched.
    pub manifest: String,
    /// The release directory.
    pub path: PathBuf,
    /// `fetched`, or `present` when the release was already there.
    pub result: &'static str,
}

/// `fetch`: downloads, verifies and unpacks manifest `id` into
/// `into/releases/<hex>/` (no activation). On failure, directories it
/// created are removed again, so the host is left as it was.
pub fn fetch(
    store: &dyn Store,
    id: &Digest,
    manifest: &Manifest,
    into: &Path,
    progress: &dyn Progress,
) -> Result<FetchJson> {
    let releases = into.join(RELEASES);
    let had_into = fs::symlink_metadata(into).is_ok();
    let had_releases = fs::symlink_metadata(&releases).is_ok();
    fs::create_dir_all(into).with_context(|| format!("creating {}", into.display()))?;
    safe_fs::create_dirs(into, Path::new(RELEASES))
        .with_context(|| format!("creating {}", releases.display()))?;
    let result = fetch_into(store, id, manifest, &releases, progress);
    if result.is_err() {
        // Leave the host as it was: remove_dir only removes what is empty.
        if !had_releases {
            let _ = fs::remove_dir(&releases);
        }
        if !had_into {
            let _ = fs::remove_dir(into);
        }
    }
    let (path, result) = result?;
    Ok(FetchJson {
        manifest: id.to_string(),
        path,
        result,
    })
}

/// Downloads, verifies and unpacks `manifest` into `releases/<hex>/` unless
/// it is there; writes the manifest beside it.
fn fetch_into(
    store: &dyn Store,
    id: &Digest,
    manifest: &Manifest,
    releases: &Path,
    progress: &dyn Progress,
) -> Result<(PathBuf, &'static str)> {
    let dest = releases.join(id.hex());

    // The release's files are re-checked against the digests recorded when
    // it was unpacked (by fetch or deploy); a modified one is fetched again.
    let into = releases.parent().unwrap_or(Path::new("."));
    let root = Root::view(into)?;
    let shared = manifest
        .deploy
        .as_ref()
        .map(|d| d.shared.clone())
        .unwrap_or_default();
    discard_if_modified(&root, id, &shared, progress)?;
    // Held until the release and its manifest are in place.
    let _staging = hold_staging(&root, progress)?;
    let mut result = "present";
    if !is_real_dir(&dest) {
        result = "fetched";
        let (staging, entries) = stage(store, id, manifest, releases, progress)?;
        let n = entries.len();
        safe_fs::create_dirs(into, Path::new(".verbatim/releases"))
            .with_context(|| format!("creating {}", into.join(".verbatim/releases").display()))?;
        root.write_record(id, entries)
            .context("recording the release's files")?;
        place(staging, id, &dest, n, progress)?;
    }
    root.write_manifest(id, &manifest.to_canonical_bytes())
        .with_context(|| format!("writing {}", root.manifest_path(id).display()))?;
    if result == "present" {
        progress.note(format!(
            "{id} is already in {}, every file as unpacked",
            dest.display()
        ));
    }
    Ok((dest, result))
}

/// Whether `path` is a directory, not a link to one.
pub(crate) fn is_real_dir(path: &Path) -> bool {
    fs::symlink_metadata(path).is_ok_and(|m| m.is_dir())
}

/// Removes release `id` when its files changed since it was unpacked (as
/// [`Root::modified`] finds), or it is no longer a real directory, so that
/// it is fetched again; a symlink there, even to an identical copy, is
/// replaced, never followed.
pub(crate) fn discard_if_modified(
    root: &Root,
    id: &Digest,
    shared: &[String],
    progress: &dyn Progress,
) -> Result<()> {
    let dir = root.release_dir(id);
    let Ok(meta) = fs::symlink_metadata(&dir) else {
        return Ok(());
    };
    let why = match meta.is_dir() {
        true => root.modified(id, shared),
        false => Some("it is no longer a directory".to_owned()),
    };
    if let Some(why) = why {
        progress.warn(format!(
            "release {} was modified since it was unpacked ({why}); fetching it again",
            dir.display()
        ));
        root.discard(id)
            .with_context(|| format!("removing the modified release {}", dir.display()))?;
    }
    Ok(())
}

/// Renames the finished `staging` (release `id`, `n` entries) to `dest`, the
/// rename being the "finished" mark, and syncs the releases directory so
/// the mark survives a crash. When another run finished first, its copy is
/// as good as this one.
pub(crate) fn place(
    staging: tempfile::TempDir,
    id: &Digest,
    dest: &Path,
    n: usize,
    progress: &dyn Progress,
) -> Result<()> {
    sync_tree(staging.path()).context("syncing the unpacked release")?;
    let staged = staging.keep();
    if let Err(e) = fs::rename(&staged, dest) {
        let _ = fs::remove_dir_all(&staged);
        if !is_real_dir(dest) {
            return Err(e).with_context(|| format!("moving the release into {}", dest.display()));
        }
    }
    let releases = dest.parent().unwrap_or(Path::new("."));
    fs::File::open(releases)
        .and_then(|d| d.sync_all())
        .with_context(|| format!("syncing {}", releases.display()))?;
    progress.note(format!(
        "unpacked {n} entries of {id} into {}",
        dest.display()
    ));
    Ok(())
}

/// Takes `root`'s staging lock ([`Root::hold_staging`]), for
/// as long as the file lives, saying what a killed run left that it removed.
pub fn hold_staging(root: &Root, progress: &dyn Progress) -> Result<fs::File> {
    let (lock, removed) = root
        .hold_staging()
        .with_context(|| format!("locking {} to stage a release", root.dir().display()))?;
    for name in removed {
        progress.note(format!(
            "removed {name}, left by an interrupted fetch or deploy"
        ));
    }
    Ok(lock)
}

/// Downloads the artifact of `manifest` (`id`) into a temp file in `dir`,
/// hashing as it streams, and unpacks it, once verified, into a temp
/// directory there (`.download-*`, `.unpack-*`: what a crash leaves behind
/// carries those names). Returns the directory and what it holds.
pub fn stage(
    store: &dyn Store,
    id: &Digest,
    manifest: &Manifest,
    dir: &Path,
    progress: &dyn Progress,
) -> Result<(tempfile::TempDir, Vec<unpack::Entry>)> {
    let key = Key::new(manifest.artifact.key.clone())?;
    let object = store.get(&key)?;
    // A wrong size is known before a byte is read (a 20 GiB planted object
    // is not downloaded to find out).
    if object.meta.size != manifest.artifact.size {
        return Err(IntegrityError(format!(
            "{key}: the store holds {} bytes, but manifest {id} says {}; the store copy is corrupt or was tampered with",
            object.meta.size, manifest.artifact.size
        ))
        .into());
    }
    let tmp = tempfile::Builder::new()
        .prefix(".download-")
        .tempfile_in(dir)
        .with_context(|| format!("creating a temp file in {}", dir.display()))?;
    let staging = tempfile::Builder::new()
        .prefix(".unpack-")
        .tempdir_in(dir)
        .with_context(|| format!("creating a temp dir in {}", dir.display()))?;
    let art = Artifact {
        key: &key,
        id,
        manifest,
    };
    let entries = if manifest.artifact.blocks.is_empty() {
        // No block index (one block, or an artifact from before it):
        // download and check, then unpack as one stream.
        let bar = progress.bytes_bar(manifest.artifact.size, "fetching");
        let mut w = HashingWriter::new(BufWriter::new(tmp));
        // One byte past the recorded size is enough to know it is wrong.
        let limited = Interruptible(object.reader.take(manifest.artifact.size.saturating_add(1)));
        io::copy(&mut bar.wrap_read(limited), &mut w)
            .with_context(|| format!("downloading {key}"))?;
        bar.finish();
        let (buf, digest, size) = w.finish();
        art.check(&digest, size)?;
        let tmp = buf.into_inner().map_err(|e| e.into_error())?;
        let unpacking = progress.bytes_bar(manifest.artifact.size, "unpacking");
        let file = unpacking.wrap_read(Interruptible(tmp.reopen()?));
        let limits = art.limits();
        art.refused(unpack::unpack(
            io::BufReader::new(file),
            staging.path(),
            limits,
        ))?
    } else {
        download_while_unpacking(object.reader, tmp, &art, staging.path(), progress)?
    };
    Ok((staging, entries))
}

/// The artifact a stage is of, for its checks and messages.
struct Artifact<'a> {
    key: &'a Key,
    id: &'a Digest,
    manifest: &'a Manifest,
}

impl Artifact<'_> {
    /// Refuses bytes that are not the artifact the manifest names.
    fn check(&self, digest: &Digest, size: u64) -> Result<()> {
        let a = &self.manifest.artifact;
        if digest.hex() != a.sha256 || size != a.size {
            return Err(IntegrityError(format!(
                "{}: downloaded {size} bytes hashing to {digest}, but manifest {} says {} bytes, sha256:{}; the store copy is corrupt or was tampered with",
                self.key, self.id, a.size, a.sha256
            ))
            .into());
        }
        Ok(())
    }

    fn limits(&self) -> unpack::Limits {
        unpack::Limits {
            entries: self.manifest.artifact.entries,
            bytes: self.manifest.artifact.unpacked_size,
        }
    }

    /// An unpack's result, a refused entry an integrity error naming the key.
    fn refused<T>(&self, r: Result<T, unpack::UnpackError>) -> Result<T> {
        r.map_err(|e| match e {
            unpack::UnpackError::Refused { .. } => {
                anyhow::Error::new(IntegrityError(format!("{}: {e}", self.key)))
            }
            other => anyhow::Error::new(other),
        })
    }
}

/// Downloads into `tmp` on a thread of its own while every core inflates
/// the blocks already there (`gzip::ParallelGunzip`) and this thread writes
/// the files. The artifact is checked against the manifest when the
/// download ends, before its verdict on the unpack counts: bad bytes are
/// a corrupt store copy, and only the staging directory, which goes, ever
/// held them.
fn download_while_unpacking(
    reader: Box<dyn Read + Send>,
    tmp: tempfile::NamedTempFile,
    art: &Artifact<'_>,
    staging: &Path,
    progress: &dyn Progress,
) -> Result<Vec<unpack::Entry>> {
    let a = &art.manifest.artifact;
    let growing = Arc::new(Growing::default());
    let reading = tmp.reopen()?;
    let (g, size) = (growing.clone(), a.size);
    let download = std::thread::spawn(move || {
        let copied = copy_growing(reader, tmp, size, &g);
        g.end(copied.as_ref().err().map(ToString::to_string));
        copied
    });
    let g = growing.clone();
    let available: Available = Arc::new(move |end| g.wait_for(end));
    let unpacked =
        ParallelGunzip::growing(reading, (&a.blocks, size), crate::par::threads(), available)
            .map_err(|e| anyhow::Error::new(IntegrityError(format!("{}: {e}", art.key))))
            .and_then(|gunzip| {
                let bar = progress.bytes_bar(a.unpacked_size, "fetching and unpacking");
                let stream = bar.wrap_read(Interruptible(gunzip));
                art.refused(unpack::unpack_tar(stream, staging, art.limits()))
            });
    // Even after an unpack error the download goes on to its end: only
    // the digest can tell a corrupt store copy from a bad unpack.
    let downloaded = download
        .join()
        .map_err(|_| anyhow::anyhow!("the download of {} panicked", art.key))?;
    let (_tmp, digest, got) = downloaded.with_context(|| format!("downloading {}", art.key))?;
    art.check(&digest, got)?;
    unpacked
}

/// Copies the artifact into `tmp`, hashing it, telling `g` how far it got;
/// one byte past `size` is enough to know it is wrong.
fn copy_growing(
    reader: Box<dyn Read + Send>,
    tmp: tempfile::NamedTempFile,
    size: u64,
    g: &Growing,
) -> io::Result<(tempfile::NamedTempFile, Digest, u64)> {
    let mut reader = Interruptible(reader.take(size.saturating_add(1)));
    let mut w = HashingWriter::new(tmp);
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        w.write_all(&buf[..n])?;
        g.advance(n as u64);
    }
    Ok(w.finish())
}

/// How far a download has written its file, for the inflating threads to
/// wait on.
#[derive(Default)]
struct Growing {
    state: Mutex<GrowState>,
    changed: Condvar,
}

#[derive(Default)]
struct GrowState {
    written: u64,
    ended: bool,
    failed: Option<String>,
}

impl Growing {
    fn lock(&self) -> std::sync::MutexGuard<'_, GrowState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn advance(&self, n: u64) {
        self.lock().written += n;
        self.changed.notify_all();
    }

    fn end(&self, failed: Option<String>) {
        let mut s = self.lock();
        s.ended = true;
        s.failed = failed;
        self.changed.notify_all();
    }

    /// Waits until `end` bytes are written, or the download ended short.
    fn wait_for(&self, end: u64) -> io::Result<()> {
        let mut s = self.lock();
        loop {
            if s.written >= end {
                return Ok(());
            }
            if s.ended {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    match &s.failed {
                        Some(why) => format!("the download failed: {why}"),
                        None => format!("the download ended at byte {}, before {end}", s.written),
                    },
                ));
            }
            s = self.changed.wait(s).unwrap_or_else(|e| e.into_inner());
        }
    }
}
