//! `verbatim man`: the man pages, from the command line's own definitions.

use std::path::Path;

use anyhow::{Context, Result};
use clap::Command;

use crate::cli::Cli;
use crate::output::Printer;

/// `verbatim man`: the page of the whole command on stdout, or one page
/// per command into `out`, nested ones included (`verbatim-deploy.1`,
/// `verbatim-key-generate.1`, `verbatim-policy-set.1`), each with its
/// synopsis as typed (`verbatim policy set …`).
pub fn run(out: Option<&Path>, printer: &Printer) -> Result<()> {
    // Built, every command knows its full name (`verbatim key generate`)
    // and its page's (`verbatim-key-generate`), and carries the global
    // flags; `help` is not a command of its own here.
    let mut cmd = <Cli as clap::CommandFactory>::command().disable_help_subcommand(true);
    cmd.build();
    let Some(dir) = out else {
        clap_mangen::Man::new(cmd).render(&mut std::io::stdout())?;
        return Ok(());
    };
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut pages = Vec::new();
    every_command(&cmd, &mut pages);
    for page in pages {
        let name = page
            .get_display_name()
            .unwrap_or(page.get_name())
            .to_owned();
        let path = dir.join(format!("{name}.1"));
        let mut bytes = Vec::new();
        clap_mangen::Man::new(page)
            .source(format!("verbatim {}", env!("CARGO_PKG_VERSION")))
            .render(&mut bytes)?;
        std::fs::write(&path, bytes).with_context(|| format!("writing {}", path.display()))?;
        printer.result(path.display())?;
    }
    Ok(())
}

/// `cmd` and every command below it that is not hidden, depth first.
fn every_command(cmd: &Command, pages: &mut Vec<Command>) {
    pages.push(cmd.clone());
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        every_command(sub, pages);
    }
}
