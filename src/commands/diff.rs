//! `verbatim diff <a> <b>`: what changed between two manifests.

use anyhow::Result;
use serde::Serialize;

use crate::cli::{DiffArgs, Global};
use crate::output::Printer;

#[derive(Serialize)]
struct DiffJson {
    a: String,
    b: String,
    artifact_changed: bool,
    assets: AssetsDiff,
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
    for (sign, list) in [
        ("+", &assets.added),
        ("-", &assets.removed),
        ("~", &assets.changed),
    ] {
        for p in list {
            printer.result(format!("{sign} {p}"))?;
        }
    }
    printer.json(&DiffJson {
        a: a_id.to_string(),
        b: b_id.to_string(),
        artifact_changed,
        assets,
    })?;
    Ok(())
}
