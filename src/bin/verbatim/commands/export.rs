//! `verbatim export`: the manifest's asset names in another tool's format.
//!
//! `--format django` writes the `staticfiles.json` that Django's
//! `ManifestStaticFilesStorage` reads, so `{% static "css/site.css" %}`
//! renders the fingerprinted name verbatim published. The manifest is the
//! build directory's, or a stored one named by `--manifest`.
//! The document is `verbatim::builder::django::staticfiles`, also what `build`
//! packs into the artifact at `assets.django_manifest`.

use std::path::Path;

use anyhow::{Context, Result};
use serde::Serialize;

use super::flags;
use crate::cli::{ExportArgs, ExportFormat, Global};
use crate::output::Printer;
use verbatim::config::Overrides;
use verbatim::manifest::Manifest;
use verbatim::store::local::write_atomic;

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
            let store = flags::open_store_for(g)?;
            let id = verbatim::environments::resolve::resolve_manifest(store.as_ref(), arg)?;
            (
                verbatim::objects::load_manifest(store.as_ref(), &id)?,
                id.to_string(),
            )
        }
        None => {
            let cfg = flags::load_config(g, Overrides::default())?;
            let built = verbatim::builder::load_built(&cfg)?;
            let origin = built.manifest_path.display().to_string();
            (built.manifest, origin)
        }
    };
    let id = manifest.id();
    let ExportFormat::Django = args.format;
    let bytes = verbatim::builder::django::staticfiles(
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
