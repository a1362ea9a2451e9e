//! `verbatim init`: write a commented `verbatim.toml` for the project in
//! the current directory; the work is `verbatim::config::init`.

use std::path::PathBuf;

use anyhow::Result;

use crate::cli::{Global, InitArgs};
use crate::output::Printer;
use verbatim::config::FILE_NAME;

pub fn run(g: &Global, args: &InitArgs, printer: &Printer) -> Result<()> {
    let path = g.config.clone().unwrap_or_else(|| PathBuf::from(FILE_NAME));
    let made = verbatim::config::init::init(&path, args.force)?;
    printer.note(format!(
        "wrote {}: packs {:?}{}; check it, then run `verbatim publish`",
        made.config.display(),
        made.app_dir,
        made.assets_dir.as_ref().map_or(String::new(), |a| format!(
            ", publishes the assets in {a:?}"
        ))
    ));
    if let (Some(found), Some(assets)) = (&made.found, &made.assets_dir) {
        if found.tool != "Django" {
            printer.note(format!(
                "found {} ({}): it builds into {assets}/, which verbatim publishes; run that build (`npm run build`) before `verbatim publish`",
                found.file, found.tool
            ));
        }
        if found.tool == "Vite" && made.vite_manifest.is_none() {
            printer.note(format!(
                "turn on `build: {{ manifest: true }}` in {} and set assets.vite_manifest, so the files Vite hashed keep their names",
                found.file
            ));
        }
    }
    if made.gitignore_updated {
        printer.note("added /.verbatim/ to .gitignore (build output and the local store)");
    }
    printer.result(made.config.display())?;
    printer.json(&made)?;
    Ok(())
}
