//! The command layer: one module per subcommand, `anyhow` errors with context.
//!
//! Commands turn flags and config into calls on the core (`pack`, `manifest`)
//! and the `store`, and print through [`Printer`]. Their `--json` output types
//! are defined beside them and are a stable, documented API.

mod agent;
mod build;
mod deploy;
mod diff;
mod export;
mod fetch;
mod init;
mod policy;
pub mod promote;
mod publish;
mod sign;
mod status;
mod verify;

use std::path::Path;

use anyhow::{Context, Result};

use crate::cli::{BuildOpts, Cli, Command, Global};
use crate::config::{Config, Overrides};
use crate::error::UsageError;
use crate::output::Printer;
use crate::store::{self, Store};

pub fn run(cli: Cli) -> Result<()> {
    let g = &cli.global;
    let printer = Printer::new(g.json, g.quiet, g.verbose, g.no_progress);
    // Commands that write big temp files stop at a signal's next check and
    // remove them (exit 128 + the signal) rather than die leaving them.
    let signals = matches!(
        cli.command,
        Command::Build(_) | Command::Publish(_) | Command::Fetch(_)
    )
    .then(crate::signals::Signals::install)
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
        Command::Man { out } => man(out.as_deref(), &printer),
        Command::Sign(a) => sign::run_sign(g, a, &printer),
    };
    drop(signals);
    let result = result.map_err(|e| match crate::signals::caught() {
        Some(signal) if !e.chain().any(|c| c.is::<crate::error::Interrupted>()) => {
            crate::error::Interrupted {
                signal,
                message: format!(
                    "stopped by {} ({e:#}); temporary files removed",
                    crate::signals::signal_name(signal)
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

/// `verbatim man`: the page of the whole command on stdout, or one page
/// per command (`verbatim-promote.1`, …) into `out`.
fn man(out: Option<&Path>, printer: &Printer) -> Result<()> {
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

/// Loads the config named by `--config` (or `./verbatim.toml`) with overrides.
fn load_config(g: &Global, overrides: Overrides) -> Result<Config> {
    let overrides = Overrides {
        app_dir: overrides.app_dir,
        ..global_overrides(g)
    };
    Ok(Config::load(g.config.as_deref(), &overrides)?)
}

/// The config for `build` and `publish`: `--app-dir` applied, the app and
/// assets directories checked.
fn build_config(g: &Global, opts: &BuildOpts) -> Result<Config> {
    let cfg = load_config(
        g,
        Overrides {
            app_dir: opts.app_dir.clone(),
            ..Overrides::default()
        },
    )?;
    cfg.check_dirs()?;
    Ok(cfg)
}

/// The build's options from its flags.
fn build_options(opts: &BuildOpts) -> crate::build::BuildOptions {
    crate::build::BuildOptions {
        revision: opts.revision.clone(),
        branch: opts.branch.clone(),
        ci_url: opts.ci_url.clone(),
        source_date_epoch: opts.source_date_epoch,
        jobs: opts.jobs.map(usize::from),
    }
}

/// Opens the store for commands that only read it (and need no app): a
/// `--store` flag works without any config file. A local store that does not
/// exist is an error, not an empty store.
fn open_store_for(g: &Global) -> Result<Box<dyn Store>> {
    let store = open_store_any(g)?;
    if !store.exists() {
        return Err(UsageError(format!(
            "there is no store at {}: nothing was ever published there; check --store, VERBATIM_STORE or store.url",
            store.location()
        ))
        .into());
    }
    Ok(store)
}

/// Opens the store named by `--store`, else the config's, existing or not.
fn open_store_any(g: &Global) -> Result<Box<dyn Store>> {
    Ok(match (&g.store, &g.config) {
        (Some(url), None) if crate::config::discover().is_none() => {
            store::open(url, Path::new("."), &global_overrides(g).s3())?
        }
        _ => open_store(&load_config(g, Overrides::default())?)?,
    })
}

fn open_store(cfg: &Config) -> Result<Box<dyn Store>> {
    Ok(store::open(&cfg.store_url, &cfg.store_base, &cfg.s3)?)
}

/// Requests in flight for commands that may run without a config file.
fn concurrency(g: &Global) -> usize {
    g.concurrency
        .map_or(crate::config::DEFAULT_CONCURRENCY, usize::from)
}

/// The settings every command takes from global flags and variables.
fn global_overrides(g: &Global) -> Overrides {
    Overrides {
        app_dir: None,
        store: g.store.clone(),
        endpoint_url: g.endpoint_url.clone(),
        region: g.region.clone(),
        path_style: g.path_style,
        unsafe_no_conditional_writes: g.unsafe_no_conditional_writes,
        concurrency: g.concurrency.map(usize::from),
        timeout: g.timeout,
    }
}
