//! `diff`: what changed between two manifests: the assets, and, when the
//! artifacts differ, the files inside them (both artifacts are streamed and
//! each entry hashed; nothing is written).

use std::collections::BTreeMap;
use std::io::{self, Read};

use anyhow::{Context, Result};
use serde::Serialize;

use crate::digest::{Digest, HashingReader};
use crate::error::IntegrityError;
use crate::manifest::Manifest;
use crate::store::{Key, Store};

/// What `diff --json` prints.
#[derive(Serialize)]
pub struct DiffJson {
    /// The first manifest.
    pub a: String,
    /// The second manifest.
    pub b: String,
    /// Whether the artifacts differ.
    pub artifact_changed: bool,
    /// The entries inside the artifacts that differ (empty when unchanged).
    pub artifact: ArtifactDiff,
    /// The logical paths of the assets that differ.
    pub assets: AssetsDiff,
}

/// The entries of the artifact that differ.
#[derive(Serialize, Default)]
pub struct ArtifactDiff {
    /// Only in `b`.
    pub added: Vec<EntryJson>,
    /// Only in `a`.
    pub removed: Vec<EntryJson>,
    /// In both, with other content, kind or mode.
    pub changed: Vec<ChangedJson>,
}

/// One entry of an artifact.
#[derive(Serialize)]
pub struct EntryJson {
    /// Its path in the artifact.
    pub path: String,
    /// Its size in bytes.
    pub size: u64,
}

/// One entry of an artifact that changed.
#[derive(Serialize)]
pub struct ChangedJson {
    /// Its path in the artifact.
    pub path: String,
    /// Its size in `a`.
    pub size_before: u64,
    /// Its size in `b`.
    pub size_after: u64,
}

/// What one artifact entry is, for comparing: its kind and content.
#[derive(PartialEq, Eq)]
struct Seen {
    size: u64,
    /// A file's sha256 and exec bit, a link's target, or nothing (dir).
    what: String,
}

/// Every entry of `m`'s artifact, streamed from the store and checked
/// against the manifest's digest as it is read.
fn entries(store: &dyn Store, m: &Manifest) -> Result<BTreeMap<String, Seen>> {
    let key = Key::new(m.artifact.key.clone())?;
    let object = store.get(&key)?;
    let mut hashing = HashingReader::new(object.reader.take(m.artifact.size.saturating_add(1)));
    let mut out = BTreeMap::new();
    {
        let gz = flate2::read::GzDecoder::new(&mut hashing);
        let mut archive = tar::Archive::new(gz);
        for entry in archive
            .entries()
            .with_context(|| format!("reading {key}"))?
        {
            let mut entry = entry.with_context(|| format!("reading {key}"))?;
            if out.len() as u64 >= m.artifact.entries {
                return Err(IntegrityError(format!(
                    "{key}: more entries than the {} its manifest records",
                    m.artifact.entries
                ))
                .into());
            }
            let path = String::from_utf8_lossy(&entry.path_bytes())
                .trim_end_matches('/')
                .to_owned();
            let header = entry.header();
            let seen = match header.entry_type() {
                tar::EntryType::Directory => Seen {
                    size: 0,
                    what: "dir".into(),
                },
                tar::EntryType::Symlink => Seen {
                    size: 0,
                    what: format!(
                        "-> {}",
                        entry
                            .link_name_bytes()
                            .map(|t| String::from_utf8_lossy(&t).into_owned())
                            .unwrap_or_default()
                    ),
                },
                _ => {
                    let exec = header.mode().unwrap_or(0) & 0o100 != 0;
                    let (digest, size) = Digest::of_reader(&mut entry)
                        .with_context(|| format!("reading {key}: {path}"))?;
                    Seen {
                        size,
                        what: format!("{digest} {exec}"),
                    }
                }
            };
            out.insert(path, seen);
        }
    }
    io::copy(&mut hashing, &mut io::sink()).with_context(|| format!("reading {key}"))?;
    let (digest, size) = hashing.finish();
    if digest.hex() != m.artifact.sha256 || size != m.artifact.size {
        return Err(IntegrityError(format!(
            "{key}: read {size} bytes hashing to {digest}, not what its manifest records; the store copy is corrupt"
        ))
        .into());
    }
    Ok(out)
}

/// The assets that differ, by logical path.
#[derive(Serialize, Default)]
pub struct AssetsDiff {
    /// Only in `b`.
    pub added: Vec<String>,
    /// Only in `a`.
    pub removed: Vec<String>,
    /// In both, with other bytes.
    pub changed: Vec<String>,
}

/// Compares manifests `a` and `b` (`a_id`, `b_id`) stored in `store`.
pub fn diff(
    store: &dyn Store,
    (a_id, a): (&Digest, &Manifest),
    (b_id, b): (&Digest, &Manifest),
) -> Result<DiffJson> {
    let mut assets = AssetsDiff::default();
    for (path, asset) in &b.assets {
        match a.assets.get(path) {
            None => assets.added.push(path.clone()),
            Some(old) if old.sha256 != asset.sha256 => assets.changed.push(path.clone()),
            Some(_) => {}
        }
    }
    assets.removed = a
        .assets
        .keys()
        .filter(|p| !b.assets.contains_key(*p))
        .cloned()
        .collect();
    let artifact_changed = a.artifact.sha256 != b.artifact.sha256;
    let mut artifact = ArtifactDiff::default();
    if artifact_changed {
        let (old, new) = (entries(store, a)?, entries(store, b)?);
        for (path, seen) in &new {
            match old.get(path) {
                None => artifact.added.push(EntryJson {
                    path: path.clone(),
                    size: seen.size,
                }),
                Some(before) if before != seen => artifact.changed.push(ChangedJson {
                    path: path.clone(),
                    size_before: before.size,
                    size_after: seen.size,
                }),
                Some(_) => {}
            }
        }
        for (path, seen) in &old {
            if !new.contains_key(path) {
                artifact.removed.push(EntryJson {
                    path: path.clone(),
                    size: seen.size,
                });
            }
        }
    }
    Ok(DiffJson {
        a: a_id.to_string(),
        b: b_id.to_string(),
        artifact_changed,
        artifact,
        assets,
    })
}
