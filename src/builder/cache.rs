//! The build cache, as cargo's fingerprints do it: an unchanged tree is not
//! packed again.
//!
//! After a build, `.verbatim/build/cache.json` records what went in: every
//! entry the app directory packs and every entry of the assets directory,
//! each file with its size, mtime and ctime (ns), inode and mode; the
//! settings a build depends on, the tool's version, the pack spec and the
//! entries' mtime (`SOURCE_DATE_EPOCH`), as one key. The next build takes
//! the same snapshot first (a directory walk and an `lstat` per file, no
//! reading); when everything matches, the artifact, the assets pack and the
//! manifest already in the build directory are the build, and only the
//! manifest's provenance (the revision may have moved) is written again.
//!
//! The record is two JSON lines: the first holds the key and the sha256 of
//! the entries, which is all a hit reads (a tree of 15,000 entries is a
//! 2 MB record, and parsing it took longer than the rest of a warm
//! publish); the second holds the entries themselves, read on a miss to
//! say which one changed.
//!
//! Racy timestamps, as git guards them: a file whose mtime is less than a
//! second older than the snapshot that recorded it may have changed again
//! within the same clock tick without its stat changing, so a record
//! holding one is never reused. (A content change moves mtime; one put
//! back by hand still moves ctime, which is compared too.) Anything unexpected (a record from another
//! version, an output missing or resized) is a miss, and a miss costs what
//! a build always cost plus the walk.

use std::collections::BTreeMap;
use std::fs;
use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::digest::Digest;
use crate::pack;

/// The record's file in the build directory.
pub const CACHE_FILE: &str = "cache.json";
const VERSION: u32 = 2;
/// How much older than the snapshot a file's mtime must be to be trusted.
const RACY_NS: i128 = 1_000_000_000;

/// One entry as the snapshot saw it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Stat {
    path: String,
    /// `f`ile, `d`irectory, `l`ink or `o`ther.
    kind: char,
    size: u64,
    mtime_ns: i128,
    ctime_ns: i128,
    ino: u64,
    mode: u32,
    /// A link's target.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    target: Option<String>,
}

/// What a build is made from, as far as the disk tells without reading a
/// file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Snapshot {
    /// The configuration, the tool, the pack spec and the entries' mtime.
    key: String,
    /// When the walk started (ns since the epoch, this machine's clock).
    started_ns: i128,
    app: Vec<Stat>,
    assets: Vec<Stat>,
}

/// The first line of `cache.json`: a snapshot, as its key and digest, and
/// the build it made.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Record {
    version: u32,
    key: String,
    started_ns: i128,
    /// [`Snapshot::digest`]: the entries, which the second line lists.
    digest: String,
    /// The manifest built (`sha256:<hex>`) and what the build counted.
    manifest: String,
    entries: usize,
    content_bytes: u64,
    /// The build directory's files as this build left them: one written
    /// since (a tampered artifact) is no longer this build.
    outputs: Vec<Stat>,
}

/// The second line of `cache.json`: the entries the digest covers.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Entries {
    app: Vec<Stat>,
    assets: Vec<Stat>,
}

/// What a hit hands back: the manifest's id and the build's counts.
pub(super) struct Hit {
    pub manifest: Digest,
    pub entries: usize,
    pub content_bytes: u64,
    /// Entries compared.
    pub checked: usize,
}

impl Snapshot {
    /// The app directory's packed entries (`entries`, as scanned from
    /// `started_ns` on, with their `lstat`) and the assets directory,
    /// walked and `lstat`ed.
    pub(super) fn take(
        cfg: &Config,
        entries: &[pack::Entry],
        sde: u64,
        started_ns: i128,
    ) -> Result<Snapshot> {
        // What of the configuration a build depends on, whatever file (or
        // flags, or library caller) it came from. Where the store is does
        // not count: its effect on the scan (a local store inside the app
        // is skipped) is in the entries, so `publish --store …` after
        // `build` reuses it.
        let settings = format!(
            "{:?}",
            (
                (&cfg.app_dir, cfg.default_excludes, cfg.respect_gitignore),
                (&cfg.exclude, &cfg.assets_dir, &cfg.allow_missing),
                (&cfg.assets_exclude, &cfg.public_prefix, &cfg.cdn_base),
                (&cfg.vite_manifest, &cfg.django_manifest, &cfg.keep_names),
                (&cfg.hash_dirs, &cfg.deploy, &cfg.site),
            )
        );
        let key = Digest::of(
            format!(
                "verbatim {}\n{}\n{sde}\n{settings}\n",
                env!("CARGO_PKG_VERSION"),
                pack::SPEC,
            )
            .as_bytes(),
        )
        .to_string();
        let app = entries
            .iter()
            .map(|e| {
                let stat = |kind, target| Stat {
                    path: e.path.clone(),
                    kind,
                    size: 0,
                    mtime_ns: 0,
                    ctime_ns: 0,
                    ino: 0,
                    mode: 0,
                    target,
                };
                match &e.kind {
                    pack::EntryKind::File { size, stamp, .. } => Stat {
                        size: *size,
                        mtime_ns: stamp.mtime_ns,
                        ctime_ns: stamp.ctime_ns,
                        ino: stamp.ino,
                        mode: stamp.mode,
                        ..stat('f', None)
                    },
                    pack::EntryKind::Dir => stat('d', None),
                    pack::EntryKind::Symlink { target } => stat('l', Some(target.clone())),
                    pack::EntryKind::Generated { .. } => stat('o', None),
                }
            })
            .collect();
        let assets = match &cfg.assets_dir {
            Some(dir) => walk(dir)?,
            None => Vec::new(),
        };
        Ok(Snapshot {
            key,
            started_ns,
            app,
            assets,
        })
    }

    /// The first entry a snapshot started at `started_ns` could not trust.
    fn racy(&self, started_ns: i128) -> Option<&str> {
        let trusted_before = started_ns - RACY_NS;
        self.app
            .iter()
            .chain(&self.assets)
            .find(|s| s.mtime_ns >= trusted_before)
            .map(|s| s.path.as_str())
    }

    /// The sha256 of the entries (not the key or the time), each field
    /// length-prefixed or fixed-width, so that no two lists share it.
    fn digest(&self) -> Digest {
        use sha2::{Digest as _, Sha256};
        let mut h = Sha256::new();
        for (tree, stats) in [(b'a', &self.app), (b's', &self.assets)] {
            h.update([tree]);
            h.update((stats.len() as u64).to_le_bytes());
            for s in stats {
                h.update((s.path.len() as u64).to_le_bytes());
                h.update(s.path.as_bytes());
                h.update((s.kind as u32).to_le_bytes());
                h.update(s.size.to_le_bytes());
                h.update(s.mtime_ns.to_le_bytes());
                h.update(s.ctime_ns.to_le_bytes());
                h.update(s.ino.to_le_bytes());
                h.update(s.mode.to_le_bytes());
                let target = s.target.as_deref().map(str::as_bytes);
                h.update((target.map_or(u64::MAX, |t| t.len() as u64)).to_le_bytes());
                h.update(target.unwrap_or_default());
            }
        }
        Digest::from_bytes(h.finalize().into())
    }

    fn len(&self) -> usize {
        self.app.len() + self.assets.len()
    }
}

/// The build `snapshot` matches, if the build directory `out` still holds
/// it; `why` hears what made it a miss.
pub(super) fn find(
    out: &Path,
    outputs: &[&str],
    snapshot: &Snapshot,
    why: &mut dyn FnMut(String),
) -> Option<Hit> {
    let file = crate::safe_fs::open_regular(&out.join(CACHE_FILE)).ok()?;
    // A record is never near 1 GiB: a bigger file is cut, and does not parse.
    let mut lines = BufReader::new(file.take(1 << 30));
    let parse_error = |e: &dyn std::fmt::Display| format!("{CACHE_FILE} does not parse ({e})");
    let record: Record = match read_line(&mut lines) {
        Ok(r) => r,
        Err(e) => {
            why(parse_error(&e));
            return None;
        }
    };
    let differs = if record.version != VERSION || record.key != snapshot.key {
        Some("the configuration, the tool or the pack spec changed".to_owned())
    } else if record.digest != snapshot.digest().to_string() {
        // Which entry changed, from the second line.
        Some(match read_line::<Entries>(&mut lines) {
            Ok(was) => first_difference("app", &was.app, &snapshot.app)
                .or_else(|| first_difference("assets", &was.assets, &snapshot.assets))
                .unwrap_or_else(|| format!("the entries' digest differs from {CACHE_FILE}'s")),
            Err(e) => parse_error(&e),
        })
    } else if let Some(path) = snapshot.racy(record.started_ns) {
        Some(format!(
            "{path} was modified within a second of the last build (racy timestamps)"
        ))
    } else {
        stat_outputs(out, outputs)
            .ok()
            .and_then(|now| first_difference("the build directory", &record.outputs, &now))
    };
    if let Some(d) = differs {
        why(d);
        return None;
    }
    let manifest = record.manifest.parse().ok()?;
    Some(Hit {
        manifest,
        entries: record.entries,
        content_bytes: record.content_bytes,
        checked: snapshot.len(),
    })
}

/// The next line of the record, parsed.
fn read_line<T: serde::de::DeserializeOwned>(lines: &mut impl BufRead) -> Result<T> {
    let mut line = Vec::new();
    lines.read_until(b'\n', &mut line)?;
    Ok(serde_json::from_slice(&line)?)
}

/// Records `snapshot` as what made manifest `id` (through a temp renamed
/// into place).
pub(super) fn record(
    out: &Path,
    outputs: &[&str],
    snapshot: Snapshot,
    id: &Digest,
    (entries, content_bytes): (usize, u64),
) -> Result<()> {
    let record = Record {
        version: VERSION,
        digest: snapshot.digest().to_string(),
        key: snapshot.key,
        started_ns: snapshot.started_ns,
        manifest: id.to_string(),
        entries,
        content_bytes,
        outputs: stat_outputs(out, outputs)?,
    };
    let entries = Entries {
        app: snapshot.app,
        assets: snapshot.assets,
    };
    let mut tmp = tempfile::Builder::new()
        .prefix(".cache-")
        .tempfile_in(out)?;
    let mut w = BufWriter::new(tmp.as_file_mut());
    serde_json::to_writer(&mut w, &record)?;
    w.write_all(b"\n")?;
    serde_json::to_writer(&mut w, &entries)?;
    w.write_all(b"\n")?;
    w.flush()?;
    drop(w);
    tmp.persist(out.join(CACHE_FILE)).map_err(|e| e.error)?;
    Ok(())
}

/// Removes the record, so that a build that fails half way is never reused.
pub(super) fn forget(out: &Path) {
    let _ = fs::remove_file(out.join(CACHE_FILE));
}

/// The first entry that differs between two snapshots of one tree.
fn first_difference(tree: &str, was: &[Stat], now: &[Stat]) -> Option<String> {
    let before: BTreeMap<&str, &Stat> = was.iter().map(|s| (s.path.as_str(), s)).collect();
    for s in now {
        match before.get(s.path.as_str()) {
            None => return Some(format!("{tree}: {} is new", s.path)),
            Some(b) if *b != s => return Some(format!("{tree}: {} changed", s.path)),
            Some(_) => {}
        }
    }
    (was.len() != now.len()).then(|| format!("{tree}: an entry was removed"))
}

/// The build directory's files of `names` that are there, `lstat`ed.
fn stat_outputs(out: &Path, names: &[&str]) -> Result<Vec<Stat>> {
    names
        .iter()
        .filter(|n| out.join(n).exists())
        .map(|n| stat(out, n))
        .collect()
}

/// `dir/rel`, `lstat`ed.
fn stat(dir: &Path, rel: &str) -> Result<Stat> {
    let path = dir.join(rel);
    let m = fs::symlink_metadata(&path).with_context(|| format!("reading {}", path.display()))?;
    Ok(stat_of(&m, rel.to_owned(), &path))
}

/// The record of the entry at `path` (`rel` in its tree), from its `lstat`.
fn stat_of(m: &fs::Metadata, rel: String, path: &Path) -> Stat {
    let kind = if m.is_file() {
        'f'
    } else if m.is_dir() {
        'd'
    } else if m.file_type().is_symlink() {
        'l'
    } else {
        'o'
    };
    let ns = |s: i64, n: i64| i128::from(s) * 1_000_000_000 + i128::from(n);
    // Of a directory or a link only the name (and a link's target) goes
    // into the pack; their times change with what is added beside them.
    let file = kind == 'f';
    Stat {
        path: rel,
        kind,
        size: if file { m.len() } else { 0 },
        mtime_ns: if file {
            ns(m.mtime(), m.mtime_nsec())
        } else {
            0
        },
        ctime_ns: if file {
            ns(m.ctime(), m.ctime_nsec())
        } else {
            0
        },
        ino: if file { m.ino() } else { 0 },
        mode: if file { m.mode() } else { 0 },
        target: (kind == 'l')
            .then(|| fs::read_link(path).ok())
            .flatten()
            .map(|t| t.to_string_lossy().into_owned()),
    }
}

/// Every entry under `dir`, never following a link, sorted by path. The
/// directories of each depth are listed on every core.
fn walk(dir: &Path) -> Result<Vec<Stat>> {
    let mut out = Vec::new();
    let mut level = vec![String::new()];
    while !level.is_empty() {
        let listed = crate::par::map(&level, crate::par::threads(), |rel| list(dir, rel));
        level = Vec::new();
        for stats in listed {
            for s in stats? {
                if s.kind == 'd' {
                    level.push(s.path.clone());
                }
                out.push(s);
            }
        }
    }
    out.sort_unstable_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}

/// The entries of `dir/rel`, each `lstat`ed relative to the open
/// directory (the kernel does not walk the path again).
fn list(dir: &Path, rel: &str) -> Result<Vec<Stat>> {
    let here = dir.join(rel);
    let reading = || format!("reading {}", here.display());
    fs::read_dir(&here)
        .with_context(reading)?
        .map(|d| {
            let d = d.with_context(reading)?;
            let name = d.file_name().to_string_lossy().into_owned();
            let m = d
                .metadata()
                .with_context(|| format!("reading {}", d.path().display()))?;
            let path = if rel.is_empty() {
                name
            } else {
                format!("{rel}/{name}")
            };
            Ok(stat_of(&m, path, &d.path()))
        })
        .collect()
}

/// Now, in ns since the epoch: taken before a scan, it is the snapshot's
/// start.
pub(super) fn now_ns() -> i128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i128)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(path: &str) -> Stat {
        Stat {
            path: path.into(),
            kind: 'f',
            size: 1,
            mtime_ns: 2,
            ctime_ns: 3,
            ino: 4,
            mode: 0o100644,
            target: None,
        }
    }

    fn snapshot(app: Vec<Stat>, assets: Vec<Stat>) -> Snapshot {
        Snapshot {
            key: "k".into(),
            started_ns: 0,
            app,
            assets,
        }
    }

    #[test]
    fn every_field_of_every_entry_moves_the_digest() {
        let base = snapshot(vec![file("a"), file("b")], vec![file("s")]);
        let edits: [fn(&mut Stat); 8] = [
            |s| s.path.push('x'),
            |s| s.kind = 'l',
            |s| s.size += 1,
            |s| s.mtime_ns += 1,
            |s| s.ctime_ns += 1,
            |s| s.ino += 1,
            |s| s.mode |= 0o100,
            |s| s.target = Some(String::new()),
        ];
        let mut seen = vec![base.digest()];
        for (i, edit) in edits.iter().enumerate() {
            for which in 0..3 {
                let mut s = base.clone();
                let stat = match which {
                    0 => &mut s.app[0],
                    1 => &mut s.app[1],
                    _ => &mut s.assets[0],
                };
                edit(stat);
                let d = s.digest();
                assert!(!seen.contains(&d), "edit {i} of entry {which}");
                seen.push(d);
            }
        }
        // Where one path ends and the next starts, and which tree holds an
        // entry, are part of it too; the key and the time are not.
        let split = |a: &str, b: &str| snapshot(vec![file(a), file(b)], vec![]).digest();
        assert_ne!(split("ab", "c"), split("a", "bc"));
        let moved = snapshot(vec![file("a"), file("b")], vec![]);
        let to_assets = snapshot(vec![file("a")], vec![file("b")]);
        assert_ne!(moved.digest(), to_assets.digest());
        let later = Snapshot {
            key: "other".into(),
            started_ns: 9,
            ..base.clone()
        };
        assert_eq!(later.digest(), base.digest());
    }
}
