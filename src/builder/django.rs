//! Django's `staticfiles.json` for a manifest's assets: what `export
//! --format django` writes, and what `build` packs into the artifact at
//! `assets.django_manifest`, the same bytes for the same assets.

use std::collections::BTreeMap;

use serde::Serialize;

use super::assets::ASSETS_DIR;
use crate::digest::Digest;

/// Django's `staticfiles.json` (manifest version 1.1).
#[derive(Serialize)]
struct Staticfiles<'a> {
    paths: BTreeMap<String, &'a str>,
    version: &'static str,
    hash: String,
}

/// Django's `staticfiles.json` for `assets` (logical path, store key):
/// each logical path → its hashed name (the key without `assets/`), and
/// each hashed directory `dir/` → `dir.<hash>/`, plus a hash of that
/// mapping, as Django's storage expects; pretty-printed, with a final
/// newline. The same assets give the same bytes.
pub fn staticfiles<'a>(assets: impl IntoIterator<Item = (&'a str, &'a str)>) -> Vec<u8> {
    let prefix = format!("{ASSETS_DIR}/");
    let mut paths: BTreeMap<String, &str> = BTreeMap::new();
    let mut dirs: BTreeMap<String, String> = BTreeMap::new();
    for (logical, key) in assets {
        let name = key.strip_prefix(&prefix).unwrap_or(key);
        if let Some((dir, hashed)) = crate::assets::graph::hashed_dir_of(logical, name) {
            dirs.insert(format!("{dir}/"), format!("{hashed}/"));
        }
        paths.insert(logical.to_owned(), name);
    }
    // A hashed directory's own URL (`{% static "vendor/pdfjs/cmaps/" %}`),
    // for code that builds file URLs from it at run time.
    for (dir, hashed) in &dirs {
        paths.entry(dir.clone()).or_insert(hashed);
    }
    let canonical = serde_json::to_vec(&paths).unwrap_or_default();
    let hash = Digest::of(&canonical).hex()[..12].to_owned();
    let doc = Staticfiles {
        paths,
        version: "1.1",
        hash,
    };
    // A map of strings always serializes.
    let mut bytes = serde_json::to_vec_pretty(&doc).unwrap_or_default();
    bytes.push(b'\n');
    bytes
}
