//! `verbatim promote` and `verbatim rollback`: thin over
//! `verbatim::environments::promote`.

use anyhow::{Context, Result};

use super::flags;
use crate::cli::StrategyArg;
use crate::cli::{Global, PromoteArgs, RollbackArgs, WaitHosts};
use crate::output::Printer;
use verbatim::environments::event::Kind;
use verbatim::environments::moves::{CheckSpec, MoveJson, MoveRequest, Refused};
use verbatim::environments::promote::{self, RollbackRequest};
use verbatim::environments::resolve::resolve_manifest_with;
use verbatim::environments::rolling::{self, RolloutOptions};
use verbatim::environments::rollout::{Size, Strategy};
use verbatim::environments::rollout_status;
use verbatim::error::UsageError;
use verbatim::trust::keys::load_key;

pub fn run_promote(g: &Global, args: &PromoteArgs, printer: &Printer) -> Result<()> {
    let cfg = flags::load_config(g, Default::default())?;
    let store = flags::open_store(&cfg)?;
    let observers = flags::Observers::new(&cfg);
    let reader = observers.attach(flags::reader(g, store.as_ref(), cfg.concurrency)?);
    let id = resolve_manifest_with(&reader, &args.manifest)?;
    let key = args.sign_key.as_deref().map(load_key).transpose()?;
    let rollout = match rollout_options(args) {
        None if !args.rollout.at_once => rollout_status::policy_default(&reader, &args.to)?
            .map(|d| options(args, d.strategy, d.waves, d.bake_secs)),
        flags => flags,
    };
    if let (Some(_), Some(_)) = (&rollout, &args.wait_hosts) {
        return Err(UsageError(format!(
            "{} rolls out by the store's policy, and --wait-hosts has no place in a rollout (each wave waits for its hosts): pass --at-once to move every host at once and wait for them",
            args.to
        ))
        .into());
    }
    let check = match (&args.check_cmd, &args.wait_hosts) {
        // With a rollout, --check-cmd is each wave's check, not a canary check.
        _ if rollout.is_some() => None,
        (Some(cmd), _) => Some(CheckSpec {
            cmd: Some(cmd.clone()),
            hosts: None,
            host_ids: vec![],
            signed_reports: false,
            timeout_secs: args.check_timeout,
        }),
        (None, Some(wait)) => Some(wait_spec(wait, args.signed_reports, args.wait_timeout)),
        (None, None) => None,
    };
    // From before the move until the check's outcome is recorded, SIGINT,
    // SIGTERM and SIGHUP are only noted: they stop the check, never the
    // rollback that follows.
    let signals = (check.is_some() || rollout.is_some())
        .then(verbatim::signals::Signals::install)
        .transpose()
        .context("installing the signal handlers of the canary check")?;
    let req = MoveRequest {
        env: &args.to,
        to: id,
        kind: Kind::Promote,
        reason: args.reason.clone(),
        force: args.force,
        check,
        sign: key.as_ref(),
        dry_run: args.dry_run,
        rollout: rollout
            .map(|opts| rolling::plan(store.as_ref(), &args.to, &id, &opts))
            .transpose()?,
    };
    let result = promote::promote(&reader, &cfg, &req, printer);
    drop(signals);
    observers.finish(printer);
    // A failed check: its report (and rollback) is the document.
    print_outcome(printer, result)
}

pub fn run_rollback(g: &Global, args: &RollbackArgs, printer: &Printer) -> Result<()> {
    let cfg = flags::load_config(g, Default::default())?;
    let key = args.sign_key.as_deref().map(load_key).transpose()?;
    let store = flags::open_store(&cfg)?;
    let observers = flags::Observers::new(&cfg);
    let reader = observers.attach(flags::reader(g, store.as_ref(), cfg.concurrency)?);
    let wait = args
        .wait_hosts
        .as_ref()
        .map(|w| wait_spec(w, args.signed_reports, args.wait_timeout));
    // While waiting for the hosts, a signal ends the wait, not the run.
    let signals = wait
        .is_some()
        .then(verbatim::signals::Signals::install)
        .transpose()
        .context("installing the signal handlers of the wait for the hosts")?;
    let req = RollbackRequest {
        env: &args.env,
        to: args.to.as_deref(),
        reason: args.reason.clone(),
        force: args.force,
        sign: key.as_ref(),
        dry_run: args.dry_run,
        wait,
    };
    let result = promote::rollback(&reader, &cfg, &req, printer);
    drop(signals);
    observers.finish(printer);
    print_outcome(printer, result)
}

/// What `--wait-hosts` asks for, as a check without a command.
fn wait_spec(wait: &WaitHosts, signed_reports: bool, timeout: std::time::Duration) -> CheckSpec {
    let (hosts, host_ids) = match wait {
        WaitHosts::Count(n) => (*n, vec![]),
        WaitHosts::Ids(ids) => (ids.len() as u64, ids.clone()),
    };
    CheckSpec {
        cmd: None,
        hosts: Some(hosts),
        host_ids,
        signed_reports,
        timeout_secs: timeout.as_secs().max(1),
    }
}

/// Prints a move, or the report a failed check or wait carries (the
/// `--json` document), or a refused move's.
fn print_outcome(
    printer: &Printer,
    result: Result<MoveJson, verbatim::error::Failed<MoveJson>>,
) -> Result<()> {
    match result {
        Ok(report) => print_move(printer, &report),
        Err(failed) => match failed.report {
            Some(report) => {
                let _ = printer.json(&report);
                Err(failed.error)
            }
            None => Err(print_refused(printer, failed.error)),
        },
    }
}

/// Records a refused move's report for the `--json` error document (its
/// fields stand beside `error`), if `err` is one.
fn print_refused(printer: &Printer, err: anyhow::Error) -> anyhow::Error {
    if let Some(r) = err.downcast_ref::<Refused>() {
        printer.partial(&r.0);
    }
    err
}

/// The rollout `--waves` or `--strategy` asks for, if any.
fn rollout_options(args: &PromoteArgs) -> Option<RolloutOptions> {
    let r = &args.rollout;
    let strategy = match (r.strategy, &r.waves) {
        (Some(StrategyArg::BlueGreen), _) => Strategy::BlueGreen,
        (Some(StrategyArg::Waves), _) | (None, Some(_)) => Strategy::Waves,
        (None, None) => return None,
    };
    let waves = r
        .waves
        .clone()
        .map_or_else(|| vec![Size::Percent(100)], |w| w.0);
    Some(options(args, strategy, waves, 60))
}

/// The rollout of `strategy` and `waves` with the rest from the flags
/// (`--bake`, else `bake_secs`).
fn options(
    args: &PromoteArgs,
    strategy: Strategy,
    waves: Vec<Size>,
    bake_secs: u64,
) -> RolloutOptions {
    let r = &args.rollout;
    RolloutOptions {
        strategy,
        waves,
        bake_secs: r.bake.map_or(bake_secs, |b| b.as_secs()),
        check: args.check_cmd.clone(),
        check_timeout_secs: args.check_timeout,
        wave_timeout_secs: r.wave_timeout.as_secs().max(1),
        canary_hosts: r.canary_hosts.clone(),
        min_staged: r.min_staged,
    }
}

fn print_move(printer: &Printer, report: &MoveJson) -> Result<()> {
    printer.result(format!(
        "{} {} {}",
        report.env, report.result, report.manifest
    ))?;
    printer.json(report)?;
    Ok(())
}
