//! `verbatim export`: the manifest's asset names in another tool's format.
//!
//! `--format django` writes the `staticfiles.json` that Django's
//! `ManifestStaticFilesStorage` reads, so `{% static "css/site.css" %}`
//! renders the fingerprinted name verbatim published. The manifest is the
//! build directory's, or a stored one named by `--manifest`.
//! [`django_staticfiles`] is also what `build` packs into the artifact at
//! `assets.django_manifest`, so both are the same bytes.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result};
use serde::Serialize;

use crate::cli::{ExportArgs, ExportFormat, Global};
use crate::config::Overrides;
use crate::digest::Digest;
use crate::manifest::Manifest;
use crate::output::Printer;
use crate::store::local::write_atomic;

use super::assets::ASSETS_DIR;

/// Django's `staticfiles.json` (manifest version 1.1).
#[derive(Serialize)]
struct Staticfiles<'a> {
    paths: BTreeMap<String, &'a str>,
    version: &'static str,
    hash: String,
}

#[derive(Serialize)]
struct ExportJson<'a> {
    manifest: String,
    format: &'static str,
    out: &'a Path,
    paths: usize,
}

pub fn run(g: &Global, args: &ExportArgs, printer: &Printer) -> Result<()> {
    let (manifest, origin) = match &args.manifest {
        Some(arg) if Path::new(arg).is_file() => {
            let bytes = std::fs::read(arg).with_context(|| format!("reading {arg}"))?;
            let m =
                Manifest::parse(&bytes).with_context(|| format!("parsing manifest file {arg}"))?;
            (m, arg.clone())
        }
        Some(arg) => {
            let store = super::open_store_for(g)?;
            let id = crate::environments::resolve::resolve_manifest(store.as_ref(), arg)?;
            (
                crate::objects::load_manifest(store.as_ref(), &id)?,
                id.to_string(),
            )
        }
        None => {
            let cfg = super::load_config(g, Overrides::default())?;
            let built = super::build::load_built(&cfg)?;
            let origin = built.manifest_path.display().to_string();
            (built.manifest, origin)
        }
    };
    let id = manifest.id();
    let ExportFormat::Django = args.format;
    let bytes = django_staticfiles(
        manifest
            .assets
            .iter()
            .map(|(logical, a)| (logical.as_str(), a.key.as_str())),
    );
    let paths = manifest.assets.len();
    match &args.out {
        Some(out) => {
            write_atomic(out, &bytes).with_context(|| format!("writing {}", out.display()))?;
            printer.note(format!(
                "wrote {} ({} paths) from manifest {origin}",
                out.display(),
                paths
            ));
            printer.result(out.display())?;
            printer.json(&ExportJson {
                manifest: id.to_string(),
                format: "django",
                out,
                paths,
            })?;
        }
        // The document is the result: it goes to stdout, --json or not.
        None => {
            use std::io::Write as _;
            std::io::stdout().lock().write_all(&bytes)?;
        }
    }
    Ok(())
}

/// Django's `staticfiles.json` for `assets` (logical path, store key):
/// each logical path → its hashed name (the key without `assets/`), and
/// each hashed directory `dir/` → `dir.<hash>/`, plus a hash of that mapping, as Django's storage expects; pretty-printed, with
/// a final newline. The same assets give the same bytes.
pub fn django_staticfiles<'a>(assets: impl IntoIterator<Item = (&'a str, &'a str)>) -> Vec<u8> {
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
