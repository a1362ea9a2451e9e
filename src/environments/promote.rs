//! `promote` and `rollback`: the operations that move a pointer, over
//! [`moves`](super::moves) and, for a promote that starts a canary check,
//! [`canary`](super::canary).

use anyhow::Result;

use super::canary::{finish_check, wait_after_rollback};
use super::checks::status_words;
use super::event::Kind;
use super::gates::rollback_target;
use super::moves::{move_with, settle, CheckSpec, MoveJson, MoveRequest};
use super::policy_store;
use super::reader::Reader;
use super::reports::report_signers;
use super::resolve::resolve_manifest_with;
use super::rolling;
use crate::clock::now;
use crate::config::Config;
use crate::error::{Failed, UsageError};
use crate::progress::Progress;

/// Promotes `req.to` to `req.env` (`req.kind` is `Promote`), then, when the
/// move started a canary check, runs it and records its outcome (see
/// [`finish_check`]). A refused move's error carries its report as a
/// [`Refused`](super::moves::Refused) context; a failed check's carries the
/// report with its rollback.
pub fn promote(
    reader: &Reader<'_>,
    cfg: &Config,
    req: &MoveRequest<'_>,
    progress: &dyn Progress,
) -> Result<MoveJson, Failed<MoveJson>> {
    let mut report = move_with(reader, cfg, req, None, progress)?;
    match (&report.check, report.result, report.kind) {
        (Some(_), "moved", _) => finish_check(reader, cfg, report, req.sign, progress),
        (_, "moved", Kind::Rollout) => {
            let driven = rolling::drive(reader, req.env, Some(report.seq), req.sign, progress);
            let state = match &driven {
                Ok(_) => "completed",
                Err(e) => match e.chain().find_map(crate::error::class_of) {
                    Some(crate::error::Class::Paused) => "paused",
                    Some(crate::error::Class::LostRace) => "taken-over",
                    _ => "aborted",
                },
            };
            if let Ok(now) = reader.load(req.env) {
                report.rollout = Some(Box::new(rolling::rollout_json(&now, report.seq, state)));
            }
            match driven {
                Ok(_) => Ok(report),
                Err(error) => Err(Failed {
                    report: Some(Box::new(report)),
                    error,
                }),
            }
        }
        _ => Ok(report),
    }
}

/// A rollback to make.
pub struct RollbackRequest<'a> {
    /// The environment to roll back.
    pub env: &'a str,
    /// Where to: an event's sequence number or a `<manifest>` argument;
    /// `None`: the manifest live before the current one, past every one
    /// the environment rolled back from.
    pub to: Option<&'a str>,
    /// Why (`--reason`): recorded in the event.
    pub reason: Option<String>,
    /// Move even though the `was-live` gate refuses.
    pub force: bool,
    /// Sign the event with this key.
    pub sign: Option<&'a ssh_key::PrivateKey>,
    /// Check everything, write nothing.
    pub dry_run: bool,
    /// Then wait for the hosts to report it active (`--wait-hosts`): a
    /// spec without a command ([`wait_after_rollback`]).
    pub wait: Option<CheckSpec>,
}

/// Rolls `req.env` back (see [`RollbackRequest::to`]); the target is
/// chosen from the history as read, so a move landing meanwhile makes this
/// one lose (exit 4). With `req.wait`, then waits for the hosts; a failed
/// wait's error carries the report.
pub fn rollback(
    reader: &Reader<'_>,
    cfg: &Config,
    req: &RollbackRequest<'_>,
    progress: &dyn Progress,
) -> Result<MoveJson, Failed<MoveJson>> {
    let report = move_back(reader, cfg, req, progress)?;
    match (&req.wait, report.result) {
        (Some(wait), "moved") => wait_after_rollback(reader, report, wait, progress),
        _ => Ok(report),
    }
}

/// The move of [`rollback`], the wait for the hosts checked before it.
fn move_back(
    reader: &Reader<'_>,
    cfg: &Config,
    req: &RollbackRequest<'_>,
    progress: &dyn Progress,
) -> Result<MoveJson> {
    let env = req.env;
    let order = policy_store::order(reader, cfg)?;
    order.previous(env)?;
    if let Some(wait) = &req.wait {
        if wait.cmd.is_some() || wait.hosts.is_none() {
            return Err(UsageError("a rollback waits for hosts only (--wait-hosts)".into()).into());
        }
        if wait.signed_reports {
            report_signers(order.policy.as_ref()).map_err(UsageError)?;
        }
    }
    let current = if req.dry_run {
        reader.load(env)?
    } else {
        settle(reader, env)?
    };
    let history = &current.events;
    let target = match req.to {
        Some(to) if to.chars().all(|c| c.is_ascii_digit()) => {
            let seq = to
                .parse()
                .map_err(|_| UsageError(format!("--to {to}: not a sequence number")))?;
            rollback_target(history, Some(seq)).map_err(UsageError)?
        }
        Some(to) => resolve_manifest_with(reader, to)?.to_string(),
        None => rollback_target(history, None)
            .map_err(|e| UsageError(format!("cannot roll back {env}: {e}")))?,
    };
    if let (Some(live), Some((status, _))) = (current.live_event(), current.live_check(now())) {
        if !status.passed() {
            progress.note(format!(
                "{env} runs {} with its canary check (event {}) {}; rolling back",
                live.to,
                live.seq,
                status_words(status)
            ));
        }
    }
    let move_req = MoveRequest {
        env,
        to: target.parse().map_err(anyhow::Error::msg)?,
        kind: Kind::Rollback,
        reason: req.reason.clone(),
        force: req.force,
        check: None,
        sign: req.sign,
        dry_run: req.dry_run,
        rollout: None,
    };
    let report = move_with(reader, cfg, &move_req, Some(current.seq()), progress)?;
    if let (Some(from), "moved" | "would-move") = (&report.previous, report.result) {
        if let Some(warning) = rolling::undone_migrations(reader.store(), from, &report.manifest) {
            progress.warn(warning);
        }
    }
    Ok(report)
}
