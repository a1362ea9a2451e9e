//! `verbatim promote` and `verbatim rollback`: move an environment's pointer.
//!
//! The protocol (see `environments` for why it is safe):
//! 1. read and cross-check the history and the pointer (`history::Reader`;
//!    anything inconsistent stops here with an integrity error);
//! 2. settle: if the newest event is one the pointer has not applied (a
//!    crashed or in-flight move), complete it by writing the pointer it
//!    implies, once its manifest's objects are checked;
//! 3. check: every object the manifest names exists with the right size, and
//!    the gates pass (or `--force --reason`);
//! 4. create event `n + 1`, its `prev` the sha256 of event `n` as read
//!    (create-only: exactly one racer wins; the others exit with the
//!    lost-race code, naming the winner);
//! 5. compare-and-swap the pointer to what the event says.
//!
//! With `--check-cmd`, the event of step 4 also records the canary check
//! (command, deadline) before it starts; SIGINT, SIGTERM and SIGHUP are only
//! noted from before the move until the check's outcome is recorded. A
//! check that fails, times out or is interrupted is followed by an
//! auto-rollback event, made from the promote event only (never over a move
//! someone else made meanwhile); then its outcome is recorded, create-only,
//! in `envs/<env>/checks/<seq>.json`. A promote on top of a manifest whose
//! check did not pass is refused by the `canary` gate.

use std::time::Duration;

use crate::actor::actor;
use crate::clock::{deadline, now, since_epoch};

use anyhow::{Context, Result};
use serde::Serialize;

use super::history::{self, EnvState, Reader};
use crate::cli::{Global, PromoteArgs, RollbackArgs};
use crate::config::Config;
use crate::digest::Digest;
use crate::environments::{
    self as envs, Check, CheckRecord, CheckStatus, Event, Gate, Kind, Outcome, Pointer,
};
use crate::error::{CheckFailed, GateRefused, IntegrityError, Interrupted, LostRace, UsageError};
use crate::manifest::Manifest;
use crate::output::Printer;
use crate::process::Ended;
use crate::store::{Body, ETag, Key, PutMode, PutOptions, Store, StoreError};
use crate::text::escape;

/// What a move did, as `--json` prints it.
#[derive(Debug, Serialize)]
pub struct MoveJson {
    pub env: String,
    /// `moved`; `unchanged` when the manifest was already live; `refused`
    /// when a gate refused (printed with the error, exit 3).
    pub result: &'static str,
    pub manifest: String,
    pub previous: Option<String>,
    pub seq: u64,
    pub kind: Kind,
    pub gates: Vec<Gate>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rolled_back: Option<Box<MoveJson>>,
    /// The canary check this move started, and how it ended.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub check: Option<CheckJson>,
}

/// A canary check as `promote --json` reports it.
#[derive(Debug, Serialize)]
pub struct CheckJson {
    /// The command of `--check-cmd`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cmd: Option<String>,
    /// The hosts `--wait-hosts` waits for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hosts: Option<u64>,
    pub timeout_secs: u64,
    /// RFC 3339: when it is ended at the latest.
    pub deadline: String,
    /// `passed` or `failed` once it ran (`pending` only if it never did).
    pub status: CheckStatus,
    pub detail: Option<String>,
}

/// A move a gate refused: what `--json` prints for it. Carried as the
/// context of the [`GateRefused`] error, so the exit code stays 3.
#[derive(Debug)]
pub struct Refused(pub Box<MoveJson>);

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (env, m) = (&self.0.env, &self.0.manifest);
        match self.0.kind {
            Kind::Promote => write!(f, "refused to promote {m} to {env}"),
            Kind::Rollback | Kind::AutoRollback => write!(f, "refused to roll {env} back to {m}"),
        }
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

pub fn run_promote(g: &Global, args: &PromoteArgs, printer: &Printer) -> Result<()> {
    let cfg = super::load_config(g, Default::default())?;
    let store = super::open_store(&cfg)?;
    let reader = Reader::new(store.as_ref(), cfg.concurrency);
    let id = super::resolve_manifest_with(&reader, &args.manifest)?;
    let key = args
        .sign_key
        .as_deref()
        .map(crate::trust::keys::load_key)
        .transpose()?;
    let check = match (&args.check_cmd, args.wait_hosts) {
        (Some(cmd), _) => Some(CheckSpec {
            cmd: Some(cmd.clone()),
            hosts: None,
            timeout_secs: args.check_timeout,
        }),
        (None, Some(n)) => Some(CheckSpec {
            cmd: None,
            hosts: Some(n),
            timeout_secs: args.wait_timeout.as_secs().max(1),
        }),
        (None, None) => None,
    };
    // From before the move until the check's outcome is recorded, SIGINT,
    // SIGTERM and SIGHUP are only noted: they stop the check, never the
    // rollback that follows.
    let signals = check
        .is_some()
        .then(crate::signals::Signals::install)
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
    };
    let mut report =
        move_with(&reader, &cfg, &req, None, printer).map_err(|e| print_refused(printer, e))?;
    let result = match (&report.check, report.result) {
        (Some(_), "moved") => finish_check(&reader, &cfg, &mut report, key.as_ref(), printer),
        _ => print_move(printer, &report),
    };
    drop(signals);
    result
}

/// Runs the check `report`'s move started, then records its outcome: on
/// success in its check record; on failure by an auto-rollback (unless the
/// environment moved on meanwhile, or nothing was live before) and then its
/// check record. Prints the one `--json` document.
fn finish_check(
    reader: &Reader<'_>,
    cfg: &Config,
    report: &mut MoveJson,
    sign: Option<&ssh_key::PrivateKey>,
    printer: &Printer,
) -> Result<()> {
    let Some(check) = report.check.as_mut() else {
        return print_move(printer, report);
    };
    let env = report.env.clone();
    let manifest = report.manifest.clone();
    let previous = report.previous.clone();
    // The check must end by the deadline recorded in the event (the
    // timeout, less the time the move took).
    let left = crate::clock::parse_rfc3339(&check.deadline)
        .map(|d| Duration::from_secs(d).saturating_sub(since_epoch()))
        .unwrap_or_default()
        .min(Duration::from_secs(check.timeout_secs));
    let vars = [
        ("VERBATIM_ENV", env.as_str()),
        ("VERBATIM_MANIFEST", manifest.as_str()),
        (
            "VERBATIM_PREVIOUS_MANIFEST",
            previous.as_deref().unwrap_or(""),
        ),
    ];
    let ended = match (&check.cmd, check.hosts) {
        (Some(cmd), _) => crate::process::run(
            &crate::process::Job {
                cmd,
                label: "canary check",
                cwd: None,
                vars: &vars,
                timeout: left,
            },
            printer,
        ),
        (None, Some(n)) => wait_hosts(
            reader.store(),
            &env,
            &manifest,
            report.seq,
            n,
            left,
            printer,
        ),
        (None, None) => Ended::Failed("the check names neither a command nor hosts".into()),
    };
    let (outcome, detail) = match &ended {
        Ended::Passed(d) => (Outcome::Passed, d.clone()),
        Ended::Failed(why) => (Outcome::Failed, why.clone()),
        Ended::Interrupted(sig) => (
            Outcome::Failed,
            format!("interrupted by {}", crate::signals::signal_name(*sig)),
        ),
    };
    check.status = match outcome {
        Outcome::Passed => CheckStatus::Passed,
        Outcome::Failed => CheckStatus::Failed,
    };
    check.detail = Some(detail.clone());
    let record = CheckRecord {
        schema: envs::CHECK_SCHEMA.into(),
        env: env.clone(),
        seq: report.seq,
        manifest: manifest.clone(),
        outcome,
        detail: detail.clone(),
        time: crate::clock::rfc3339(now()),
    };

    if outcome == Outcome::Passed {
        record_check(reader.store(), &record).with_context(|| {
            format!(
                "the canary check of {manifest} on {env} passed, but recording that failed; {env} shows as unchecked until it is rolled back or promoted over with --force"
            )
        })?;
        printer.note(format!("canary check passed: {detail}"));
        return print_move(printer, report);
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
            printer.warn(format!(
                "could not record the canary check's outcome ({e:#}); the history records it"
            ));
        }
    };
    let Some(previous) = previous else {
        record_it();
        let _ = printer.json(report);
        return Err(failure(format!(
            "canary check failed ({detail}) and {env} had no earlier manifest to roll back to; it stays on {manifest}, marked as failed (`verbatim status` shows it unchecked)"
        )));
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
    };
    // Only from our own move: if someone moved the environment meanwhile,
    // their move stands and ours is no longer live.
    match move_with(reader, cfg, &back, Some(report.seq), printer) {
        Ok(rolled) => {
            record_it();
            printer.warn(format!(
                "canary check failed ({detail}); rolled {env} back to {previous}"
            ));
            report.rolled_back = Some(Box::new(rolled));
            let _ = printer.json(report); // the failure, not stdout, is the error
            Err(failure(format!(
                "canary check failed for {manifest} on {env}: {detail}; rolled back to {previous}"
            )))
        }
        Err(e) => {
            record_it();
            let _ = printer.json(report); // the failure, not stdout, is the error
            Err(e.context(format!(
                "canary check failed for {manifest} on {env} ({detail}), and {env} was not rolled back to {previous}; see `verbatim status {env}`"
            )))
        }
    }
}

/// How often `--wait-hosts` reads the hosts' reports.
const HOSTS_POLL: Duration = Duration::from_secs(1);

/// Waits until `n` hosts report `manifest` active after event `seq`, any
/// host reports it failed, the time is up, or a signal comes.
fn wait_hosts(
    store: &dyn Store,
    env: &str,
    manifest: &str,
    seq: u64,
    n: u64,
    left: Duration,
    printer: &Printer,
) -> Ended {
    printer.note(format!(
        "waiting up to {}s for {n} host(s) to report {manifest} active on {env}",
        left.as_secs()
    ));
    let start = std::time::Instant::now();
    let mut last = usize::MAX;
    let mut errors = 0;
    loop {
        if let Some(sig) = crate::signals::caught() {
            return Ended::Interrupted(sig);
        }
        match read_reports(store, env, printer) {
            Ok(reports) => {
                errors = 0;
                let t = crate::reports::tally(&reports, manifest, seq);
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
                    printer.note(format!("{last}/{n} hosts run {manifest}"));
                }
                if start.elapsed() >= left {
                    return Ended::Failed(format!(
                        "only {}/{n} hosts reported it active within {}s{}",
                        t.active.len(),
                        left.as_secs(),
                        if t.active.is_empty() {
                            String::new()
                        } else {
                            format!(" ({})", t.active.join(", "))
                        }
                    ));
                }
            }
            Err(e) => {
                errors += 1;
                printer.warn(format!("reading the hosts' reports: {e:#}"));
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

/// Every readable report under `envs/<env>/hosts/`; one that does not
/// parse is skipped (said with `--verbose`).
pub fn read_reports(
    store: &dyn Store,
    env: &str,
    printer: &Printer,
) -> Result<Vec<crate::reports::Report>> {
    let mut out = Vec::new();
    for listed in store.list(&crate::reports::hosts_prefix(env))? {
        if listed.size > crate::reports::MAX_BYTES {
            printer.detail(format!(
                "{}: too large for a host report; skipped",
                listed.key
            ));
            continue;
        }
        let bytes = match store.get(&listed.key) {
            Ok(o) => o.into_bytes_limited(crate::reports::MAX_BYTES)?,
            Err(StoreError::NotFound { .. }) => continue,
            Err(e) => return Err(e.into()),
        };
        match serde_json::from_slice::<crate::reports::Report>(&bytes) {
            Ok(r) if listed.key.as_str() == crate::reports::report_key(env, &r.host) => out.push(r),
            _ => printer.detail(format!("{}: not a host report; skipped", listed.key)),
        }
    }
    Ok(out)
}

/// Signs event `seq` of `env` (its stored `bytes`) in namespace
/// `verbatim-event@v1`, stored create-only beside the history.
fn sign_event(
    store: &dyn Store,
    env: &str,
    seq: u64,
    bytes: &[u8],
    key: &ssh_key::PrivateKey,
) -> Result<()> {
    let armored = crate::trust::sign_bytes(key, crate::trust::EVENT_NAMESPACE, bytes)?;
    let k = Key::new(format!(
        "{}{}.sig",
        crate::trust::event_signatures_prefix(env, seq),
        crate::trust::file_name(key.public_key())
    ))?;
    store.put(
        &k,
        Body::bytes(&armored),
        PutMode::CreateOnly,
        &PutOptions::json(),
    )?;
    Ok(())
}

/// Records how the check of `record.seq` ended (create-only).
fn record_check(store: &dyn Store, record: &CheckRecord) -> Result<()> {
    let key = Key::new(envs::check_key(&record.env, record.seq))?;
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

fn print_move(printer: &Printer, report: &MoveJson) -> Result<()> {
    printer.result(format!(
        "{} {} {}",
        report.env, report.result, report.manifest
    ))?;
    printer.json(report)?;
    Ok(())
}

pub fn run_rollback(g: &Global, args: &RollbackArgs, printer: &Printer) -> Result<()> {
    let cfg = super::load_config(g, Default::default())?;
    let key = args
        .sign_key
        .as_deref()
        .map(crate::trust::keys::load_key)
        .transpose()?;
    let store = super::open_store(&cfg)?;
    let reader = Reader::new(store.as_ref(), cfg.concurrency);
    super::policy::order(&reader, &cfg)?.previous(&args.env)?;
    let current = if args.dry_run {
        reader.load(&args.env)?
    } else {
        settle(&reader, &args.env)?
    };
    let history = &current.events;
    let target = match &args.to {
        Some(to) if to.chars().all(|c| c.is_ascii_digit()) => {
            let seq = to
                .parse()
                .map_err(|_| UsageError(format!("--to {to}: not a sequence number")))?;
            envs::rollback_target(history, Some(seq)).map_err(UsageError)?
        }
        Some(to) => super::resolve_manifest_with(&reader, to)?.to_string(),
        None => envs::rollback_target(history, None)
            .map_err(|e| UsageError(format!("cannot roll back {}: {e}", args.env)))?,
    };
    if let (Some(live), Some((status, _))) = (current.live_event(), current.live_check(now())) {
        if !status.passed() {
            printer.note(format!(
                "{} runs {} with its canary check (event {}) {}; rolling back",
                args.env,
                live.to,
                live.seq,
                status_words(status)
            ));
        }
    }
    let req = MoveRequest {
        env: &args.env,
        to: target.parse().map_err(anyhow::Error::msg)?,
        kind: Kind::Rollback,
        reason: args.reason.clone(),
        force: args.force,
        check: None,
        sign: key.as_ref(),
        dry_run: args.dry_run,
    };
    // The target was chosen from this history: if it moves meanwhile, lose.
    let report = move_with(&reader, &cfg, &req, Some(current.seq()), printer)
        .map_err(|e| print_refused(printer, e))?;
    print_move(printer, &report)
}

pub struct MoveRequest<'a> {
    pub env: &'a str,
    pub to: Digest,
    pub kind: Kind,
    pub reason: Option<String>,
    pub force: bool,
    /// A canary check the move starts (a promote only): recorded in its event.
    pub check: Option<CheckSpec>,
    /// Sign the event with this key (`--sign-key`).
    pub sign: Option<&'a ssh_key::PrivateKey>,
    /// Check everything, write nothing (`--dry-run`): `result` is
    /// `would-move`.
    pub dry_run: bool,
}

/// A canary check to start: `sh -c cmd`, or waiting until `hosts` hosts
/// report the manifest active; ended after `timeout_secs`.
pub struct CheckSpec {
    pub cmd: Option<String>,
    pub hosts: Option<u64>,
    pub timeout_secs: u64,
}

/// How a check's state reads in a sentence.
pub fn status_words(status: CheckStatus) -> &'static str {
    match status {
        CheckStatus::Pending => "not finished (it may still be running)",
        CheckStatus::Expired => "never finished (its deadline passed)",
        CheckStatus::Passed => "passed",
        CheckStatus::Failed => "failed",
    }
}

/// Moves `req.env` to `req.to` by the protocol in the module docs.
pub fn move_pointer(
    store: &dyn Store,
    cfg: &Config,
    req: &MoveRequest<'_>,
    printer: &Printer,
) -> Result<MoveJson> {
    move_with(
        &Reader::new(store, cfg.concurrency),
        cfg,
        req,
        None,
        printer,
    )
}

/// [`move_pointer`] with a reader shared with the rest of the command and,
/// when the request was derived from the history at seq `based_on`, a lost
/// race if the environment has moved since.
fn move_with(
    reader: &Reader<'_>,
    cfg: &Config,
    req: &MoveRequest<'_>,
    based_on: Option<u64>,
    printer: &Printer,
) -> Result<MoveJson> {
    let store = reader.store();
    let env = req.env;
    let order = super::policy::order(reader, cfg)?;
    let prev_env = order.previous(env)?;
    // A dry run reads as it is: completing a half-done move is a write.
    let current = if req.dry_run {
        reader.load(env)?
    } else {
        settle(reader, env)?
    };
    if let Some(seen) = based_on.filter(|&s| s != current.seq()) {
        return Err(LostRace(format!(
            "{env} moved (event {}) while this move was being prepared from event {seen}; check `verbatim history {env}` and run again if still wanted",
            current.seq()
        ))
        .into());
    }
    let to = req.to.to_string();
    let previous = current.live().map(String::from);
    let report = |result: &'static str, seq: u64, gates: Vec<Gate>| MoveJson {
        env: env.into(),
        result,
        manifest: to.clone(),
        previous: previous.clone(),
        seq,
        kind: req.kind,
        gates,
        rolled_back: None,
        check: None,
    };
    // Nothing goes on top of a manifest whose canary check did not pass,
    // not even itself again: it would stay live unchecked.
    let canary_gate = match (req.kind, current.live_event()) {
        (Kind::Promote, Some(live)) => {
            envs::canary_gate(env, live, current.live_check(now()).map(|(s, _)| s))
        }
        _ => None,
    };
    let unchecked = canary_gate.as_ref().is_some_and(|g| !g.ok);
    if unchecked && !req.force {
        let gates: Vec<Gate> = canary_gate.into_iter().collect();
        let detail = &gates[0].detail;
        let message = format!("gate `canary` refused {to} for {env}: {detail}");
        return Err(
            anyhow::Error::new(GateRefused(message)).context(Refused(Box::new(report(
                "refused",
                current.seq(),
                gates,
            )))),
        );
    }
    if previous.as_deref() == Some(to.as_str()) {
        if unchecked {
            printer.warn(format!(
                "{env} already runs {to}, and it stays unchecked: --force does not make a check pass; roll it back with `verbatim rollback {env}`"
            ));
        } else {
            printer.note(format!("{env} already runs {to}; nothing to do"));
        }
        return Ok(report("unchanged", current.seq(), vec![]));
    }

    // Safety, not a gate: a manifest with a missing object never goes live.
    let manifest = crate::objects::load_manifest(store, &req.to)?;
    reader.mark_present(req.to);
    let missing = crate::objects::missing_objects(store, &manifest)?;
    if !missing.is_empty() {
        return Err(IntegrityError(format!(
            "refusing to point {env} at {to}: {} object(s) are not in the store: {}; publish it again",
            missing.len(),
            missing.join(", ")
        ))
        .into());
    }
    let mut gates = vec![Gate {
        gate: "objects".into(),
        ok: true,
        detail: format!("{} objects present", manifest.objects().len()),
    }];
    let gate = match req.kind {
        Kind::Promote => {
            // Only moves the pointer there has applied: a recorded move not
            // yet applied was never live there.
            let prev_state = prev_env.map(|p| reader.load(p)).transpose()?;
            let prev_history = prev_state.as_ref().map_or(&[][..], EnvState::applied);
            let prev_check = prev_state
                .as_ref()
                .and_then(|s| s.live_check(now()))
                .map(|(status, _)| status);
            envs::order_gate(prev_env, prev_history, prev_check, &to)
        }
        Kind::Rollback | Kind::AutoRollback => {
            let ok = envs::was_live(current.applied(), &to);
            let marked = envs::rolled_back_from(current.applied())
                .get(to.as_str())
                .copied();
            Gate {
                gate: "was-live".into(),
                ok,
                detail: if let (true, Some(seq)) = (ok, marked) {
                    format!(
                        "was live in {env} before; {env} rolled back from it ({}), restored by name",
                        envs::event_key(env, seq)
                    )
                } else if ok {
                    format!("was live in {env} before")
                } else {
                    format!("was never live in {env}; promote it instead, or pass --force --reason")
                },
            }
        }
    };
    gates.push(gate);
    if req.kind == Kind::Promote {
        gates.extend(signature_gate(
            store,
            order.policy.as_ref(),
            env,
            &req.to,
            &manifest,
        )?);
    }
    gates.extend(canary_gate);
    let refused = gates.iter().any(|g| !g.ok);
    if refused && !req.force {
        let message = gates
            .iter()
            .filter(|g| !g.ok)
            .map(|g| format!("gate `{}` refused {to} for {env}: {}", g.gate, g.detail))
            .collect::<Vec<_>>()
            .join("; ");
        return Err(
            anyhow::Error::new(GateRefused(message)).context(Refused(Box::new(report(
                "refused",
                current.seq(),
                gates,
            )))),
        );
    }
    if refused {
        printer.warn(format!(
            "gates overridden with --force: {}",
            escape(req.reason.as_deref().unwrap_or(""))
        ));
    }

    // A signal that came while the gates were checked: nothing moved yet.
    if let (Some(_), Some(signal)) = (&req.check, crate::signals::caught()) {
        return Err(Interrupted {
            signal,
            message: format!(
                "interrupted by {} before {env} moved; nothing changed",
                crate::signals::signal_name(signal)
            ),
        }
        .into());
    }
    if req.dry_run {
        let seq = current.next_seq()?;
        printer.note(format!(
            "dry run: would move {env} to {to} as event {seq}; nothing written"
        ));
        return Ok(report("would-move", seq, gates));
    }
    // The first move of all stores the order it was checked against.
    super::policy::settle_for_move(reader, cfg, &order, printer)?;
    let seq = current.next_seq()?;
    let check = req.check.as_ref().map(|c| Check {
        cmd: c.cmd.clone(),
        hosts: c.hosts,
        timeout_secs: c.timeout_secs,
        deadline: crate::clock::rfc3339(deadline(c.timeout_secs)),
    });
    let event = Event {
        schema: envs::EVENT_SCHEMA.into(),
        env: env.into(),
        seq,
        kind: req.kind,
        time: crate::clock::rfc3339(now()),
        actor: actor(),
        from: previous.clone(),
        to: to.clone(),
        reason: req.reason.clone(),
        forced: req.force && refused,
        gates: gates.clone(),
        check: check.clone(),
        // The newest event as read (settled: the pointer applies it).
        prev: current.head(),
    };
    let bytes = event.to_bytes();
    let key = Key::new(envs::event_key(env, seq))?;
    match store.put(
        &key,
        Body::bytes(&bytes),
        PutMode::CreateOnly,
        &PutOptions::json(),
    ) {
        Ok(_) => {
            reader.remember(&envs::Log::env(env), seq, &event, &bytes)?;
            if let Some(key) = req.sign {
                // The move stands either way; a missing signature shows in
                // `history`.
                if let Err(e) = sign_event(store, env, seq, &bytes, key) {
                    printer.warn(format!("could not sign event {seq} of {env}: {e:#}"));
                }
            }
        }
        Err(StoreError::AlreadyExists { .. }) => {
            let winner = read_event(store, env, seq)
                .map(|w| {
                    format!(
                        "{} moved {env} to {} at {} (event {seq})",
                        escape(&w.actor),
                        escape(&w.to),
                        escape(&w.time)
                    )
                })
                .unwrap_or_else(|_| format!("another process wrote event {seq} of {env}"));
            return Err(LostRace(format!(
                "lost the race to move {env}: {winner}; check `verbatim status` and run again if still wanted"
            ))
            .into());
        }
        Err(e) => return Err(e).with_context(|| format!("recording event {seq} of {env}")),
    }
    write_pointer(
        reader,
        env,
        &event.pointer(),
        current.pointer.map(|(_, e)| e),
    )?;
    printer.note(format!(
        "{env}: {} → {to} (event {seq})",
        previous.as_deref().unwrap_or("nothing")
    ));
    let mut moved = report("moved", seq, gates);
    moved.check = check.map(|c| CheckJson {
        cmd: c.cmd,
        hosts: c.hosts,
        timeout_secs: c.timeout_secs,
        deadline: c.deadline,
        status: CheckStatus::Pending,
        detail: None,
    });
    Ok(moved)
}

/// The `signatures` gate of a promote to `env`, when the store's policy
/// requires principals there: each must have signed the manifest with a key
/// the policy's allowed signers list for it.
fn signature_gate(
    store: &dyn Store,
    policy: Option<&crate::policy::Policy>,
    env: &str,
    id: &Digest,
    manifest: &Manifest,
) -> Result<Option<Gate>> {
    let Some(policy) = policy else {
        return Ok(None);
    };
    let Some(rules) = policy.rules(env).filter(|r| !r.require.is_empty()) else {
        return Ok(None);
    };
    let signers =
        crate::trust::AllowedSigners::parse(policy.allowed_signers.as_deref().unwrap_or_default())
            .map_err(|e| {
                IntegrityError(format!(
                    "{}: allowed_signers {e}",
                    crate::policy::POINTER_KEY
                ))
            })?;
    let sigs = crate::trust::signatures(store, id, &manifest.to_canonical_bytes(), Some(&signers))?;
    let now = now();
    let missing: Vec<&str> = rules
        .require
        .iter()
        .map(String::as_str)
        .filter(|p| {
            !sigs.iter().any(|s| {
                s.key
                    .as_ref()
                    .is_some_and(|k| signers.allows(k, p, crate::trust::MANIFEST_NAMESPACE, now))
            })
        })
        .collect();
    Ok(Some(Gate {
        gate: "signatures".into(),
        ok: missing.is_empty(),
        detail: if missing.is_empty() {
            format!("signed by {}", rules.require.join(", "))
        } else {
            format!(
                "{env} needs signatures by {}; missing: {} (add one with `verbatim sign {id} --key FILE`)",
                rules.require.join(", "),
                missing.join(", ")
            )
        },
    }))
}

/// Writes the pointer for an event we created. If the swap loses, someone
/// completed our move for us (see `settle`); anything else is a lost race.
fn write_pointer(
    reader: &Reader<'_>,
    env: &str,
    pointer: &Pointer,
    expected: Option<ETag>,
) -> Result<()> {
    let key = Key::new(envs::pointer_key(env))?;
    let bytes = pointer.to_bytes();
    let mode = match expected {
        Some(etag) => PutMode::ReplaceIfMatch(etag),
        None => PutMode::CreateOnly,
    };
    match reader
        .store()
        .put(&key, Body::bytes(&bytes), mode, &PutOptions::json())
    {
        Ok(_) => Ok(()),
        Err(StoreError::PreconditionFailed { .. } | StoreError::AlreadyExists { .. }) => {
            if reader.load(env)?.seq() >= pointer.seq {
                Ok(())
            } else {
                Err(LostRace(format!(
                    "the pointer of {env} moved while event {} was being applied",
                    pointer.seq
                ))
                .into())
            }
        }
        Err(e) => Err(e).with_context(|| format!("moving the pointer of {env}")),
    }
}

/// Reads and checks `env`, completing a move whose event exists but whose
/// pointer write did not happen (a crash between steps 4 and 5), once the
/// objects of its manifest are checked. Returns the settled state: the
/// pointer is the newest event's.
pub fn settle(reader: &Reader<'_>, env: &str) -> Result<EnvState> {
    for _ in 0..100 {
        let state = reader.load(env)?;
        let Some(pending) = state.pending() else {
            return Ok(state);
        };
        let event_key = envs::event_key(env, pending.seq);
        let id: Digest = pending.to.parse().map_err(anyhow::Error::msg)?;
        let manifest = crate::objects::load_manifest(reader.store(), &id)
            .with_context(|| format!("checking {event_key} before completing it"))?;
        let missing = crate::objects::missing_objects(reader.store(), &manifest)?;
        if !missing.is_empty() {
            return Err(IntegrityError(format!(
                "{event_key}: moves {env} to {id}, but {} of its object(s) are not in the store: {}; refusing to complete it",
                missing.len(),
                missing.join(", ")
            ))
            .into());
        }
        let key = Key::new(envs::pointer_key(env))?;
        let bytes = pending.pointer().to_bytes();
        let mode = match &state.pointer {
            Some((_, etag)) => PutMode::ReplaceIfMatch(etag.clone()),
            None => PutMode::CreateOnly,
        };
        match reader
            .store()
            .put(&key, Body::bytes(&bytes), mode, &PutOptions::json())
        {
            Ok(_)
            | Err(StoreError::PreconditionFailed { .. } | StoreError::AlreadyExists { .. }) => {}
            Err(e) => return Err(e).with_context(|| format!("completing {event_key}")),
        }
    }
    Err(LostRace(format!("{env} keeps moving; try again")).into())
}

/// Event `seq` of `env` as stored, unchecked: only for naming the winner
/// of a race in a message.
fn read_event(store: &dyn Store, env: &str, seq: u64) -> Result<Event> {
    let key = Key::new(envs::event_key(env, seq))?;
    let (bytes, _) =
        history::get_record(store, &key)?.ok_or_else(|| anyhow::anyhow!("{key}: not found"))?;
    serde_json::from_slice(&bytes)
        .map_err(|e| IntegrityError(format!("{key}: not a valid event ({e})")).into())
}
