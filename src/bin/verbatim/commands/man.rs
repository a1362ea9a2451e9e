//! `verbatim man`: the man pages, from the command line's own definitions.

use std::path::Path;

use anyhow::{Context, Result};

use crate::cli::Cli;
use crate::output::Printer;

/// `verbatim man`: the page of the whole command on stdout, or one page
/// per command (`verbatim-promote.1`, …) into `out`.
pub fn run(out: Option<&Path>, printer: &Printer) -> Result<()> {
    let cmd = <Cli as clap::CommandFactory>::command();
    let Some(dir) = out else {
        clap_mangen::Man::new(cmd).render(&mut std::io::stdout())?;
        return Ok(());
    };
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut pages = vec![("verbatim".to_owned(), cmd.clone())];
    for sub in cmd.get_subcommands() {
        pages.push((format!("verbatim-{}", sub.get_name()), sub.clone()));
    }
    for (name, page) in pages {
        let path = dir.join(format!("{name}.1"));
        let mut bytes = Vec::new();
        clap_mangen::Man::new(page)
            .title(&name)
            .render(&mut bytes)?;
        std::fs::write(&path, bytes).with_context(|| format!("writing {}", path.display()))?;
        printer.result(path.display())?;
    }
    Ok(())
}
