//! `verbatim deploy`: make this host run a release; the work is
//! `verbatim::host::deploy`.

use anyhow::{Context, Result};

use super::flags;
use crate::cli::{DeployArgs, Global};
use crate::output::Printer;
use verbatim::error::{Failed, Interrupted};
use verbatim::host::deploy::{deploy, plan, Request, Target};
use verbatim::host::root::CURRENT;

pub fn run(g: &Global, args: &DeployArgs, printer: &Printer) -> Result<()> {
    let host = flags::HostFlags::new(&args.host, &args.trust)?;
    let target = match (&args.to, &args.target) {
        (Some(crate::cli::DeployTo::Previous), _) => Target::Previous,
        (None, Some(t)) => target_of(t),
        (None, None) => unreachable!("clap requires a target or --to"),
    };
    // Hosts usually have no verbatim.toml: --store alone is enough. Going
    // back needs no store (only to report), unless signatures are required.
    let store = match target {
        Target::Previous if host.trust.is_none() => flags::open_store_for(g).ok(),
        Target::Previous => Some(flags::open_host_store(g).context(
            "going back under --require checks the release's signatures in the store: pass --store",
        )?),
        _ => Some(flags::open_host_store(g)?),
    };
    let signals = verbatim::signals::Signals::install().context("installing signal handlers")?;
    let req = Request {
        target,
        host: host.host(),
        wait: !args.no_wait,
    };
    let result = if args.dry_run {
        plan(store.as_deref(), &req, printer).map_err(Failed::from)
    } else {
        deploy(store.as_deref(), &req, printer)
    };
    drop(signals);
    let result = result.map_err(|failed| {
        if let Some(report) = &failed.report {
            printer.partial(report);
        }
        failed.error
    });
    let report = result.map_err(|e| match verbatim::signals::caught() {
        // A download or unpack the signal cut short: say so, exit 128 + it.
        Some(signal) if !e.chain().any(|c| c.is::<Interrupted>()) => Interrupted {
            signal,
            message: format!(
                "deploy stopped by {} ({e:#}); `current` was not changed",
                verbatim::signals::signal_name(signal)
            ),
        }
        .into(),
        _ => e,
    })?;
    printer.result(format!(
        "{} {} {}",
        report.root.join(CURRENT).display(),
        report.result,
        report.manifest
    ))?;
    printer.json(&report)?;
    Ok(())
}

/// An environment name is taken as one (a manifest file needs a `/` or
/// `.json`, a digest prefix is hex).
fn target_of(arg: &str) -> Target<'_> {
    let looks_like_digest =
        arg.starts_with("sha256:") || arg.chars().all(|c| c.is_ascii_hexdigit());
    if verbatim::config::check_env_name(arg).is_ok() && !looks_like_digest {
        Target::Env(arg)
    } else {
        Target::Manifest(arg)
    }
}
