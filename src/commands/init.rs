//! `verbatim init`: write a commented `verbatim.toml`.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, Result};
use serde::Serialize;

use crate::cli::{Global, InitArgs};
use crate::config::{FILE_NAME, TEMPLATE};
use crate::exit::UsageError;
use crate::output::Printer;
use crate::store::local::write_atomic;

#[derive(Serialize)]
struct InitJson {
    config: PathBuf,
}

pub fn run(g: &Global, args: &InitArgs, printer: &Printer) -> Result<()> {
    let path = g.config.clone().unwrap_or_else(|| PathBuf::from(FILE_NAME));
    if args.force {
        write_atomic(&path, TEMPLATE.as_bytes())
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
        f.write_all(TEMPLATE.as_bytes())
            .and_then(|()| f.sync_all())
            .with_context(|| format!("writing {}", path.display()))?;
    }
    printer.note(format!(
        "wrote {}: set app.dir, then run `verbatim publish`",
        path.display()
    ));
    printer.result(path.display())?;
    printer.json(&InitJson { config: path })?;
    Ok(())
}
