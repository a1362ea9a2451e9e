//! The command layer: one module per subcommand, `anyhow` errors with context.
//!
//! As cargo's `src/bin/cargo/commands/*.rs` over `cargo::ops`: a command
//! turns its flags and the configuration into the options of one library
//! operation (`builder`, `publish`, `environments::promote`, `host::deploy`,
//! …), calls it, and prints what it returns through [`Printer`]. The rules
//! live in the library; `flags` turns the global flags into library values.
//! Commands never import each other.

mod agent;
mod build;
mod config;
mod dashboard;
mod deploy;
mod diff;
mod export;
mod fetch;
mod flags;
mod hosts;
mod init;
mod man;
mod policy;
mod promote;
mod publish;
mod rollout;
mod sign;
mod status;
mod timestamp;
mod verify;

use anyhow::Result;

use crate::cli::{Cli, Command};
use crate::output::Printer;

pub fn run(cli: Cli) -> Result<()> {
    let g = &cli.global;
    let printer = Printer::new(g.json, g.quiet, g.verbose, g.no_progress);
    // Commands that write big temp files stop at a signal's next check and
    // remove them (exit 128 + the signal) rather than die leaving them.
    let signals = matches!(
        cli.command,
        Command::Build(_) | Command::Publish(_) | Command::Fetch(_)
    )
    .then(verbatim::signals::Signals::install)
    .transpose()?;
    let result = match &cli.command {
        Command::Init(a) => init::run(g, a, &printer),
        Command::Build(a) => build::run(g, a, &printer),
        Command::Publish(a) => publish::run(g, a, &printer),
        Command::Verify(a) => verify::run(g, a, &printer),
        Command::Promote(a) => promote::run_promote(g, a, &printer),
        Command::Rollback(a) => promote::run_rollback(g, a, &printer),
        Command::Status(a) => status::run_status(g, a, &printer),
        Command::History(a) => status::run_history(g, a, &printer),
        Command::Dashboard(a) => dashboard::run(g, a, &printer),
        Command::Fetch(a) => fetch::run(g, a, &printer),
        Command::Deploy(a) => deploy::run(g, a, &printer),
        Command::Agent(a) => agent::run(g, a, &printer),
        Command::Diff(a) => diff::run(g, a, &printer),
        Command::Export(a) => export::run(g, a, &printer),
        Command::Policy(a) => policy::run(g, a, &printer),
        Command::Key(a) => sign::run_key(g, a, &printer),
        Command::Completions { shell } => {
            let mut cmd = <Cli as clap::CommandFactory>::command();
            // Into memory first: clap_complete panics on a closed stdout.
            let mut script = Vec::new();
            clap_complete::generate(*shell, &mut cmd, "verbatim", &mut script);
            std::io::Write::write_all(&mut std::io::stdout(), &script).map_err(Into::into)
        }
        Command::Man { out, markdown } => man::run(out.as_deref(), *markdown, &printer),
        Command::Sign(a) => sign::run_sign(g, a, &printer),
        Command::Timestamp(a) => timestamp::run(g, a, &printer),
        Command::Rollout(a) => rollout::run(g, a, &printer),
        Command::Hosts(a) => hosts::run(g, a, &printer),
        Command::Config(a) => config::run(g, a, &printer),
    };
    drop(signals);
    let result = result.map_err(|e| match verbatim::signals::caught() {
        Some(signal) if !e.chain().any(|c| c.is::<verbatim::error::Interrupted>()) => {
            verbatim::error::Interrupted {
                signal,
                message: format!(
                    "stopped by {} ({e:#}); temporary files removed",
                    verbatim::signals::signal_name(signal)
                ),
            }
            .into()
        }
        _ => e,
    });
    if let Err(err) = &result {
        if !crate::exit::is_broken_pipe(err) {
            let _ = printer.json_error(err);
        }
    }
    result
}
