//! What follows a move that started a canary check: run it (`sh -c` in
//! its own process group, or wait for the hosts' reports), then record how
//! it ended. A check that passed is recorded; one that failed, timed out or
//! was interrupted is followed by an auto-rollback event, made from the
//! promote event only (never over a move someone else made meanwhile), and
//! then recorded, create-only, in `envs/<env>/checks/<seq>.json`.
//!
//! The caller keeps SIGINT, SIGTERM and SIGHUP to a flag
//! (`crate::signals::Signals`) from before the move until this returns, so
//! no signal can stop the rollback half way.

use std::collections::BTreeSet;
use std::time::Duration;

use anyhow::{Context, Result};

use super::event::{check_key, CheckRecord, CheckStatus, Kind, Outcome, CHECK_SCHEMA};
use super::moves::{move_with, CheckJson, CheckSpec, MoveJson, MoveRequest};
use super::policy_store;
use super::reader::Reader;
use super::reports;
use crate::clock::{deadline, now, parse_rfc3339, rfc3339, since_epoch};
use crate::config::Config;
use crate::error::{CheckFailed, Failed, Interrupted};
use crate::process::{self, Ended};
use crate::progress::Progress;
use crate::signals;
use crate::store::{Body, Key, PutMode, PutOptions, Store};
use crate::trust::AllowedSigners;

/// Runs the check `report`'s move started, then records its outcome: on
/// success in its check record; on failure by an auto-rollback (unless the
/// environment moved on meanwhile, or nothing was live before) and then its
/// check record. A failed check is an error (exit 6, or 128 + the signal)
/// that carries the report, the rollback in it.
pub fn finish_check(
    reader: &Reader<'_>,
    cfg: &Config,
    mut report: MoveJson,
    sign: Option<&ssh_key::PrivateKey>,
    progress: &dyn Progress,
) -> Result<MoveJson, Failed<MoveJson>> {
    if report.check.is_none() {
        return Ok(report);
    }
    let ended = run_check(reader, &report, progress);
    let (outcome, detail) = match &ended {
        Ended::Passed(d) => (Outcome::Passed, d.clone()),
        Ended::Failed(why) => (Outcome::Failed, why.clone()),
        Ended::Interrupted(sig) => (
            Outcome::Failed,
            format!("interrupted by {}", signals::signal_name(*sig)),
        ),
    };
    if let Some(check) = report.check.as_mut() {
        check.status = match outcome {
            Outcome::Passed => CheckStatus::Passed,
            Outcome::Failed => CheckStatus::Failed,
        };
        check.detail = Some(detail.clone());
    }
    let (env, manifest) = (report.env.clone(), report.manifest.clone());
    let record = CheckRecord {
        schema: CHECK_SCHEMA.into(),
        env: env.clone(),
        seq: report.seq,
        manifest: manifest.clone(),
        outcome,
        detail: detail.clone(),
        time: rfc3339(now()),
    };

    if outcome == Outcome::Passed {
        record_check(reader.store(), &record).with_context(|| {
            format!(
                "the canary check of {manifest} on {env} passed, but recording that failed; {env} shows as unchecked until it is rolled back or promoted over with --force"
            )
        })?;
        progress.note(format!("canary check passed: {detail}"));
        return Ok(report);
    }

    // Failed: the unchecked release goes first, the record after.
    let failure = |message: String| -> anyhow::Error {
        match ended {
            Ended::Interrupted(signal) => Interrupted { signal, message }.into(),
            _ => CheckFailed(message).into(),
        }
    };
    let record_it = || {
        if let Err(e) = record_check(reader.store(), &record) {
            progress.warn(format!(
                "could not record the canary check's outcome ({e:#}); the history records it"
            ));
        }
    };
    let Some(previous) = report.previous.clone() else {
        record_it();
        let error = failure(format!(
            "canary check failed ({detail}) and {env} had no earlier manifest to roll back to; it stays on {manifest}, marked as failed (`verbatim status` shows it unchecked)"
        ));
        return Err(Failed {
            report: Some(Box::new(report)),
            error,
        });
    };
    let back = MoveRequest {
        env: &env,
        to: previous.parse().map_err(anyhow::Error::msg)?,
        kind: Kind::AutoRollback,
        reason: Some(format!("canary check failed: {detail}")),
        force: true,
        check: None,
        sign,
        dry_run: false,
        rollout: None,
    };
    // Only from our own move: if someone moved the environment meanwhile,
    // their move stands and ours is no longer live.
    let error = match move_with(reader, cfg, &back, Some(report.seq), progress) {
        Ok(rolled) => {
            record_it();
            progress.warn(format!(
                "canary check failed ({detail}); rolled {env} back to {previous}"
            ));
            report.rolled_back = Some(Box::new(rolled));
            failure(format!(
                "canary check failed for {manifest} on {env}: {detail}; rolled back to {previous}"
            ))
        }
        Err(e) => {
            record_it();
            e.context(format!(
                "canary check failed for {manifest} on {env} ({detail}), and {env} was not rolled back to {previous}; see `verbatim status {env}`"
            ))
        }
    };
    Err(Failed {
        report: Some(Box::new(report)),
        error,
    })
}

/// After a rollback that moved: waits until the hosts `spec` names report
/// it active (`rollback --wait-hosts`), as a promote's check would. The
/// wait is not recorded in the event (only a promote starts a canary
/// check) and never undone: rolling back again would return to the
/// release the environment just left. When the hosts do not confirm it in
/// time, or one reports it failed, the error (exit 6, or 128 + the signal)
/// says the rollback stands, and carries the report with its `check`.
pub fn wait_after_rollback(
    reader: &Reader<'_>,
    mut report: MoveJson,
    spec: &CheckSpec,
    progress: &dyn Progress,
) -> Result<MoveJson, Failed<MoveJson>> {
    report.check = Some(CheckJson {
        cmd: None,
        hosts: spec.hosts,
        host_ids: spec.host_ids.clone(),
        signed_reports: spec.signed_reports,
        timeout_secs: spec.timeout_secs,
        deadline: rfc3339(deadline(spec.timeout_secs)),
        status: CheckStatus::Pending,
        detail: None,
    });
    let ended = run_check(reader, &report, progress);
    let (passed, detail) = match &ended {
        Ended::Passed(d) => (true, d.clone()),
        Ended::Failed(why) => (false, why.clone()),
        Ended::Interrupted(sig) => (
            false,
            format!("interrupted by {}", signals::signal_name(*sig)),
        ),
    };
    if let Some(check) = report.check.as_mut() {
        check.status = match passed {
            true => CheckStatus::Passed,
            false => CheckStatus::Failed,
        };
        check.detail = Some(detail.clone());
    }
    if passed {
        progress.note(format!("the hosts run the rollback: {detail}"));
        return Ok(report);
    }
    let message = format!(
        "rolled {} back to {}, but the hosts did not confirm it: {detail}; the rollback stands (it is not undone): see `verbatim status {} --hosts`",
        report.env, report.manifest, report.env
    );
    let error = match ended {
        Ended::Interrupted(signal) => Interrupted { signal, message }.into(),
        _ => CheckFailed(message).into(),
    };
    Err(Failed {
        report: Some(Box::new(report)),
        error,
    })
}

/// Runs the check of the move `report` describes, until the deadline its
/// event recorded (the timeout, less the time the move took).
fn run_check(reader: &Reader<'_>, report: &MoveJson, progress: &dyn Progress) -> Ended {
    let Some(check) = &report.check else {
        return Ended::Failed("the move started no check".into());
    };
    // The keys reports must be signed with: the policy's as it stands now.
    let signers = if check.signed_reports {
        let policy = policy_store::stored_order(reader, None)
            .map(|o| o.and_then(|o| o.policy))
            .map_err(|e| format!("reading the store's policy: {e:#}"));
        match policy.and_then(|p| reports::report_signers(p.as_ref())) {
            Ok(s) => Some(s),
            Err(why) => return Ended::Failed(why),
        }
    } else {
        None
    };
    let left = parse_rfc3339(&check.deadline)
        .map(|d| Duration::from_secs(d).saturating_sub(since_epoch()))
        .unwrap_or_default()
        .min(Duration::from_secs(check.timeout_secs));
    let vars = [
        ("VERBATIM_ENV", report.env.as_str()),
        ("VERBATIM_MANIFEST", report.manifest.as_str()),
        (
            "VERBATIM_PREVIOUS_MANIFEST",
            report.previous.as_deref().unwrap_or(""),
        ),
    ];
    match (&check.cmd, check.hosts) {
        (Some(cmd), _) => process::run(
            &process::Job {
                cmd,
                label: "canary check",
                cwd: None,
                vars: &vars,
                timeout: left,
                log: None,
            },
            progress,
        ),
        (None, Some(n)) => match &report.event {
            Some(event) => wait_hosts(
                reader,
                &report.env,
                &reports::Move {
                    manifest: &report.manifest,
                    seq: report.seq,
                    event,
                    hosts: &check.host_ids,
                },
                signers.as_ref(),
                n,
                left,
                progress,
            ),
            None => Ended::Failed("the move's event digest is unknown".into()),
        },
        (None, None) => Ended::Failed("the check names neither a command nor hosts".into()),
    }
}

/// How often `--wait-hosts` reads the hosts' reports.
const HOSTS_POLL: Duration = Duration::from_secs(1);

/// Waits until `n` hosts (those `mv.hosts` names, if any) report move `mv`
/// active, any of them reports it failed, the time is up, or a signal
/// comes. With `signers`, only reports their hosts signed with a key
/// listed there count (`--signed-reports`). A report that does not count
/// is said once, with why.
fn wait_hosts(
    reader: &Reader<'_>,
    env: &str,
    mv: &reports::Move<'_>,
    signers: Option<&AllowedSigners>,
    n: u64,
    left: Duration,
    progress: &dyn Progress,
) -> Ended {
    let (store, manifest) = (reader.store(), mv.manifest);
    let whom = if mv.hosts.is_empty() {
        format!("{n} host(s)")
    } else {
        mv.hosts.join(", ")
    };
    progress.note(format!(
        "waiting up to {}s for {whom} to report {manifest} active on {env} (event {}{})",
        left.as_secs(),
        mv.seq,
        if signers.is_some() {
            "; signed reports only"
        } else {
            ""
        }
    ));
    let start = std::time::Instant::now();
    let mut last = usize::MAX;
    let mut errors = 0;
    let mut said = BTreeSet::new();
    loop {
        if let Some(sig) = signals::caught() {
            return Ended::Interrupted(sig);
        }
        let read = match signers {
            Some(s) => reports::read_signed_reports(store, env, s, now()),
            None => reports::read_reports(store, env),
        };
        match read {
            Ok(read) => {
                errors = 0;
                let t = reports::tally(&read.reports, mv);
                for (key, why) in read.ignored.iter().chain(&t.ignored) {
                    if said.insert(key.clone()) {
                        progress.warn(format!("{key}: ignored: {why}"));
                    }
                }
                super::observe::tell_failed(reader, (env, manifest), &t.failed, progress);
                if let Some((host, why)) = t.failed.first() {
                    return Ended::Failed(format!("host {host} failed to run it: {why}"));
                }
                if t.active.len() as u64 >= n {
                    return Ended::Passed(format!(
                        "{} host(s) run it after {:.1}s: {}",
                        t.active.len(),
                        start.elapsed().as_secs_f64(),
                        t.active.join(", ")
                    ));
                }
                if t.active.len() != last {
                    last = t.active.len();
                    progress.note(format!("{last}/{n} hosts run {manifest}"));
                }
                if start.elapsed() >= left {
                    return Ended::Failed(too_few(&t.active, mv.hosts, n, left));
                }
            }
            Err(e) => {
                errors += 1;
                progress.warn(format!("reading the hosts' reports: {e:#}"));
                if start.elapsed() >= left {
                    return Ended::Failed(format!(
                        "the hosts' reports could not be read before the {}s were up: {e:#}",
                        left.as_secs()
                    ));
                }
            }
        }
        std::thread::sleep(
            HOSTS_POLL.saturating_mul(errors + 1).min(
                left.saturating_sub(start.elapsed())
                    .max(Duration::from_millis(10)),
            ),
        );
    }
}

/// Why a wait for `n` hosts (`expected`, if named) timed out with only
/// `active` reporting.
fn too_few(active: &[String], expected: &[String], n: u64, left: Duration) -> String {
    let mut why = format!(
        "only {}/{n} hosts reported it active within {}s",
        active.len(),
        left.as_secs(),
    );
    if !active.is_empty() {
        why.push_str(&format!(" ({})", active.join(", ")));
    }
    let missing: Vec<&str> = expected
        .iter()
        .filter(|h| !active.contains(h))
        .map(String::as_str)
        .collect();
    if !missing.is_empty() {
        why.push_str(&format!("; not reported active: {}", missing.join(", ")));
    }
    why
}

/// Records how the check of `record.seq` ended (create-only).
fn record_check(store: &dyn Store, record: &CheckRecord) -> Result<()> {
    let key = Key::new(check_key(&record.env, record.seq))?;
    store
        .put(
            &key,
            Body::bytes(&record.to_bytes()),
            PutMode::CreateOnly,
            &PutOptions::json(),
        )
        .with_context(|| format!("recording the canary check's outcome in {key}"))?;
    Ok(())
}
