//! `verbatim diff <a> <b>`: what changed between two manifests: the
//! assets, and, when the artifacts differ, the files inside them (both
//! artifacts are streamed and each entry hashed; nothing is written).

use std::collections::BTreeMap;
use std::io::{self, Read};

use anyhow::{Context, Result};
use serde::Serialize;

use crate::cli::{DiffArgs, Global};
use crate::digest::{Digest, HashingReader};
use crate::error::IntegrityError;
use crate::manifest::Manifest;
use crate::output::Printer;
use crate::store::{Key, Store};
use crate::text::human_bytes;

#[derive(Serialize)]
struct DiffJson {
    a: String,
    b: String,
    artifact_changed: bool,
    /// The entries inside the artifacts that differ (empty when unchanged).
    artifact: ArtifactDiff,
    assets: AssetsDiff,
}

#[derive(Serialize, Default)]
struct ArtifactDiff {
    added: Vec<EntryJson>,
    removed: Vec<EntryJson>,
    changed: Vec<ChangedJson>,
}

#[derive(Serialize)]
struct EntryJson {
    path: String,
    size: u64,
}

#[derive(Serialize)]
struct ChangedJson {
    path: String,
    size_before: u64,
    size_after: u64,
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

#[derive(Serialize, Default)]
struct AssetsDiff {
    added: Vec<String>,
    removed: Vec<String>,
    changed: Vec<String>,
}

pub fn run(g: &Global, args: &DiffArgs, printer: &Printer) -> Result<()> {
    let store = super::open_store_for(g)?;
    let a_id = super::resolve_manifest(store.as_ref(), &args.a)?;
    let b_id = super::resolve_manifest(store.as_ref(), &args.b)?;
    let a = super::load_manifest(store.as_ref(), &a_id)?;
    let b = super::load_manifest(store.as_ref(), &b_id)?;
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
        let (old, new) = (entries(store.as_ref(), &a)?, entries(store.as_ref(), &b)?);
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
    printer.result(format!(
        "artifact: {}",
        if artifact_changed {
            format!(
                "changed ({} → {})",
                &a.artifact.sha256[..12],
                &b.artifact.sha256[..12]
            )
        } else {
            "unchanged".into()
        }
    ))?;
    for e in &artifact.added {
        printer.result(format!("  + {} ({})", e.path, human_bytes(e.size)))?;
    }
    for e in &artifact.removed {
        printer.result(format!("  - {} ({})", e.path, human_bytes(e.size)))?;
    }
    for e in &artifact.changed {
        printer.result(format!(
            "  ~ {} ({} → {})",
            e.path,
            human_bytes(e.size_before),
            human_bytes(e.size_after)
        ))?;
    }
    if !assets.added.is_empty() || !assets.removed.is_empty() || !assets.changed.is_empty() {
        printer.result("assets:")?;
    }
    for (sign, list) in [
        ("+", &assets.added),
        ("-", &assets.removed),
        ("~", &assets.changed),
    ] {
        for p in list {
            printer.result(format!("  {sign} {p}"))?;
        }
    }
    printer.json(&DiffJson {
        a: a_id.to_string(),
        b: b_id.to_string(),
        artifact_changed,
        artifact,
        assets,
    })?;
    Ok(())
}
