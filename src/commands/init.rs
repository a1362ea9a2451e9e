//! `verbatim init`: write a commented `verbatim.toml` for the project in
//! the current directory, and keep `.verbatim/` out of git.
//!
//! It looks at what is there: a Django project (`manage.py`) packs `.`
//! and publishes `static/`; a Vite build (`dist/.vite/manifest.json`)
//! publishes `dist/` with its manifest; else `app/`, `src/` or `.` is
//! packed, and `static/` or `public/` published when present.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::Serialize;

use crate::cli::{Global, InitArgs};
use crate::config::FILE_NAME;
use crate::error::UsageError;
use crate::output::Printer;
use crate::store::local::write_atomic;

#[derive(Serialize)]
struct InitJson {
    config: PathBuf,
    /// What it chose: `app.dir` and `assets.dir` (`null` when none).
    app_dir: String,
    assets_dir: Option<String>,
    /// Whether `.verbatim/` was added to `.gitignore` (false when it was there).
    gitignore_updated: bool,
}

/// What the project looks like: (app dir, assets dir, Vite manifest).
fn detect(dir: &Path) -> (&'static str, Option<&'static str>, Option<&'static str>) {
    let has = |p: &str| dir.join(p).exists();
    if has("dist/.vite/manifest.json") {
        let app = if has("server") { "server" } else { "." };
        return (app, Some("dist"), Some("dist/.vite/manifest.json"));
    }
    let assets = ["static", "public"]
        .into_iter()
        .find(|d| dir.join(d).is_dir());
    let app = if has("manage.py") {
        "."
    } else {
        ["app", "src"]
            .into_iter()
            .find(|d| dir.join(d).is_dir())
            .unwrap_or(".")
    };
    (app, assets, None)
}

/// Adds `.verbatim/` to the `.gitignore` beside the config (creating it),
/// unless a line already ignores it. The default store and the build output
/// live there: committed, a checkout would rewind environment pointers.
fn ignore_work_dir(dir: &Path) -> Result<bool> {
    let path = dir.join(".gitignore");
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    let ignored = text
        .lines()
        .map(str::trim)
        .any(|l| matches!(l, ".verbatim" | ".verbatim/" | "/.verbatim" | "/.verbatim/"));
    if ignored {
        return Ok(false);
    }
    let mut f = OpenOptions::new()
        .append(true)
        .create(true)
        .open(&path)
        .with_context(|| format!("opening {}", path.display()))?;
    let sep = if text.is_empty() || text.ends_with('\n') {
        ""
    } else {
        "\n"
    };
    f.write_all(
        format!("{sep}# verbatim: build output and the local store\n/.verbatim/\n").as_bytes(),
    )
    .with_context(|| format!("writing {}", path.display()))?;
    Ok(true)
}

pub fn run(g: &Global, args: &InitArgs, printer: &Printer) -> Result<()> {
    let path = g.config.clone().unwrap_or_else(|| PathBuf::from(FILE_NAME));
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    };
    let (app_dir, assets_dir, vite) = detect(&dir);
    let text = crate::config::template(app_dir, assets_dir.map(|a| (a, vite)));
    if args.force {
        write_atomic(&path, text.as_bytes())
            .with_context(|| format!("writing {}", path.display()))?;
    } else {
        let mut f = match OpenOptions::new().write(true).create_new(true).open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                return Err(UsageError(format!(
                    "{} already exists; edit it, or pass --force to replace it",
                    path.display()
                ))
                .into())
            }
            Err(e) => return Err(e).with_context(|| format!("creating {}", path.display())),
        };
        f.write_all(text.as_bytes())
            .and_then(|()| f.sync_all())
            .with_context(|| format!("writing {}", path.display()))?;
    }
    let gitignore_updated = ignore_work_dir(&dir)?;
    printer.note(format!(
        "wrote {}: packs {app_dir:?}{}; check it, then run `verbatim publish`",
        path.display(),
        assets_dir.map_or(String::new(), |a| format!(
            ", publishes the assets in {a:?}"
        ))
    ));
    if gitignore_updated {
        printer.note("added /.verbatim/ to .gitignore (build output and the local store)");
    }
    printer.result(path.display())?;
    printer.json(&InitJson {
        config: path,
        app_dir: app_dir.to_owned(),
        assets_dir: assets_dir.map(str::to_owned),
        gitignore_updated,
    })?;
    Ok(())
}
