//! `verbatim build`: pack the artifact and write the manifest, locally; the
//! work is `verbatim::builder`.

use std::path::Path;

use anyhow::Result;
use serde::Serialize;

use super::flags;
use crate::cli::{BuildArgs, Global};
use crate::output::Printer;
use verbatim::builder;

#[derive(Serialize)]
struct BuildJson<'a> {
    manifest: String,
    manifest_path: &'a Path,
    artifact: ArtifactJson<'a>,
    entries: usize,
    content_bytes: u64,
    reproducible: Option<bool>,
    /// Number of fingerprinted assets in the manifest.
    assets: usize,
}

#[derive(Serialize)]
struct ArtifactJson<'a> {
    key: &'a str,
    sha256: String,
    size: u64,
    path: &'a Path,
}

pub fn run(g: &Global, args: &BuildArgs, printer: &Printer) -> Result<()> {
    let cfg = flags::build_config(g, &args.opts)?;
    if args.list {
        return list(&builder::list(&cfg, printer)?, printer);
    }
    let mut opts = flags::build_options(&args.opts);
    // Twice from scratch: the first build too.
    opts.fresh |= args.check;
    let built = builder::build(&cfg, &opts, printer)?;
    let mut reproducible = None;
    if args.check {
        builder::check_reproducible(&cfg, &opts, &built, printer)?;
        reproducible = Some(true);
    }
    printer.result(built.id)?;
    printer.json(&BuildJson {
        manifest: built.id.to_string(),
        manifest_path: &built.manifest_path,
        artifact: ArtifactJson {
            key: &built.manifest.artifact.key,
            sha256: built.manifest.artifact.sha256.clone(),
            size: built.manifest.artifact.size,
            path: &built.artifact_path,
        },
        entries: built.entries,
        content_bytes: built.content_bytes,
        reproducible,
        assets: built.manifest.assets.len(),
    })?;
    Ok(())
}

/// Prints `build --list`: a line per entry on stdout, the excluded with -v.
fn list(out: &builder::ListJson, printer: &Printer) -> Result<()> {
    for e in &out.entries {
        printer.result(format!(
            "{} {:>12}  {}{}{}",
            e.mode,
            e.size,
            e.path,
            e.target
                .as_ref()
                .map_or(String::new(), |t| format!(" -> {t}")),
            if e.generated {
                "  (generated: assets.django_manifest)"
            } else {
                ""
            }
        ))?;
    }
    for x in &out.excluded {
        printer.detail(format!("excluded {}: {}", x.path, x.why));
    }
    printer.note(format!(
        "{} entries would be packed, {} excluded (-v lists them)",
        out.entries.len(),
        out.excluded.len()
    ));
    printer.json(out)?;
    Ok(())
}
