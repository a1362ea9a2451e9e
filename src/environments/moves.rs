//! Moving an environment's pointer: the one place pointers move.
//!
//! The protocol (see `log` for why it is safe):
//! 1. read and cross-check the history and the pointer (`Reader::load`;
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
//! With a canary check, the event of step 4 also records the check
//! (command, deadline) before it starts (`canary` runs it and records how
//! it ended). A promote on top of a manifest whose check did not pass is
//! refused by the `canary` gate.

use anyhow::{Context, Result};
use serde::Serialize;

use super::checks;
use super::event::{
    event_key, pointer_key, Check, CheckStatus, Event, Gate, Kind, Pointer, EVENT_SCHEMA,
};
use super::gates;
use super::log::Log;
use super::observe::Notice;
use super::policy_store::{self, Order};
use super::reader::{get_record, EnvState, Reader};
use super::rollout::{Plan, Rollout, RolloutJson, Step};
use super::signatures::{move_signer_rule, sign_event, signature_gate};
use super::timestamp;
use crate::actor::actor;
use crate::clock::{deadline, now, rfc3339};
use crate::config::Config;
use crate::digest::Digest;
use crate::error::{GateRefused, IntegrityError, Interrupted, LostRace, UsageError};
use crate::objects::{load_manifest, missing_objects};
use crate::progress::Progress;
use crate::signals;
use crate::store::{Body, ETag, Key, PutMode, PutOptions, Store, StoreError};
use crate::text::escape;

/// What a move did, as `--json` prints it.
#[derive(Debug, Serialize)]
pub struct MoveJson {
    /// The environment moved.
    pub env: String,
    /// `moved`; `unchanged` when the manifest was already live; `refused`
    /// when a gate refused (printed with the error, exit 3).
    pub result: &'static str,
    /// The manifest it points at now (or would).
    pub manifest: String,
    /// The manifest it pointed at before.
    pub previous: Option<String>,
    /// The event of the move (the pointer's, when nothing moved).
    pub seq: u64,
    /// `sha256:<hex>` of the stored bytes of event `seq`, when this move
    /// created it: the hosts' reports name it (`--wait-hosts`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event: Option<String>,
    /// Promote, rollback or auto-rollback.
    pub kind: Kind,
    /// The gates checked, and what each said.
    pub gates: Vec<Gate>,
    /// The auto-rollback a failed canary check made.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rolled_back: Option<Box<MoveJson>>,
    /// The canary check this move started, and how it ended.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub check: Option<CheckJson>,
    /// The rollout this move started, and how it went.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rollout: Option<Box<RolloutJson>>,
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
    /// Those hosts by id, when `--wait-hosts` named them.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub host_ids: Vec<String>,
    /// Whether only signed reports count (`--signed-reports`).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub signed_reports: bool,
    /// How long it may take.
    pub timeout_secs: u64,
    /// RFC 3339: when it is ended at the latest.
    pub deadline: String,
    /// `passed` or `failed` once it ran (`pending` only if it never did).
    pub status: CheckStatus,
    /// How it ended, in words.
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
            Kind::Rollout => write!(f, "refused to roll {m} out to {env}"),
        }
    }
}

/// A move to make.
pub struct MoveRequest<'a> {
    /// The environment to move.
    pub env: &'a str,
    /// The manifest to point it at.
    pub to: Digest,
    /// Promote, rollback or auto-rollback.
    pub kind: Kind,
    /// Why (`--reason`): recorded in the event.
    pub reason: Option<String>,
    /// Move even though gates refuse (`--force`): recorded.
    pub force: bool,
    /// A canary check the move starts (a promote only): recorded in its event.
    pub check: Option<CheckSpec>,
    /// Sign the event with this key (`--sign-key`).
    pub sign: Option<&'a ssh_key::PrivateKey>,
    /// Check everything, write nothing (`--dry-run`): `result` is
    /// `would-move`.
    pub dry_run: bool,
    /// Roll it out by this plan (a promote only): the event is the
    /// rollout's `started` step and the pointer stays where it is; the
    /// controller (`rolling`) takes the steps after it.
    pub rollout: Option<Plan>,
}

/// A canary check to start: `sh -c cmd`, or waiting until `hosts` hosts
/// report the manifest active; ended after `timeout_secs`.
pub struct CheckSpec {
    /// `sh -c` this (`--check-cmd`).
    pub cmd: Option<String>,
    /// Wait for this many hosts (`--wait-hosts N`); with `host_ids`, their
    /// number.
    pub hosts: Option<u64>,
    /// Wait for exactly these hosts (`--wait-hosts web1,web2`); empty, any.
    pub host_ids: Vec<String>,
    /// Count only reports signed by a key the policy's allowed signers
    /// list for the host id (`--signed-reports`); a usage error without
    /// such a policy.
    pub signed_reports: bool,
    /// How long it may take.
    pub timeout_secs: u64,
}

/// Moves `req.env` to `req.to` by the protocol in the module docs.
pub fn move_pointer(
    store: &dyn Store,
    cfg: &Config,
    req: &MoveRequest<'_>,
    progress: &dyn Progress,
) -> Result<MoveJson> {
    let pin = cfg
        .policy_signers
        .as_deref()
        .map(policy_store::read_pin)
        .transpose()?;
    move_with(
        &Reader::new(store, cfg.concurrency).pin_policy(pin),
        cfg,
        req,
        None,
        progress,
    )
}

/// [`move_pointer`] with a reader shared with the rest of the operation
/// and, when the request was derived from the history at seq `based_on`, a
/// lost race if the environment has moved since.
pub(crate) fn move_with(
    reader: &Reader<'_>,
    cfg: &Config,
    req: &MoveRequest<'_>,
    based_on: Option<u64>,
    progress: &dyn Progress,
) -> Result<MoveJson> {
    let env = req.env;
    let order = policy_store::order(reader, cfg)?;
    let prev_env = order.previous(env)?;
    move_signer_rule(order.policy.as_ref(), env, req.sign)?;
    if req.check.as_ref().is_some_and(|c| c.signed_reports) {
        super::reports::report_signers(order.policy.as_ref()).map_err(UsageError)?;
    }
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
        event: None,
        kind: req.kind,
        gates,
        rolled_back: None,
        check: None,
        rollout: None,
    };
    // A rollout in flight ends by its own steps, or `rollout abort`.
    if let Some(gate) = rollout_gate(&current) {
        return Err(refused(req, vec![gate], |gates| {
            report("refused", current.seq(), gates)
        }));
    }
    // Nothing goes on top of a manifest whose canary check did not pass,
    // not even itself again: it would stay live unchecked.
    let canary_gate = match (req.kind, current.live_event()) {
        (Kind::Promote, Some(live)) => {
            checks::canary_gate(env, live, current.live_check(now()).map(|(s, _)| s))
        }
        _ => None,
    };
    let unchecked = canary_gate.as_ref().is_some_and(|g| !g.ok);
    if unchecked && !req.force {
        let gates: Vec<Gate> = canary_gate.into_iter().collect();
        return Err(refused(req, gates, |gates| {
            report("refused", current.seq(), gates)
        }));
    }
    if previous.as_deref() == Some(to.as_str()) {
        if unchecked {
            progress.warn(format!(
                "{env} already runs {to}, and it stays unchecked: --force does not make a check pass; roll it back with `verbatim rollback {env}`"
            ));
        } else {
            progress.note(format!("{env} already runs {to}; nothing to do"));
        }
        return Ok(report("unchanged", current.seq(), vec![]));
    }

    let mut gates = check_gates(reader, req, &order, prev_env, &current)?;
    gates.extend(canary_gate);
    let any_refused = gates.iter().any(|g| !g.ok);
    if any_refused && !req.force {
        return Err(refused(req, gates, |gates| {
            report("refused", current.seq(), gates)
        }));
    }
    if any_refused {
        progress.warn(format!(
            "gates overridden with --force: {}",
            escape(req.reason.as_deref().unwrap_or(""))
        ));
    }

    // A signal that came while the gates were checked: nothing moved yet.
    if let (Some(_), Some(signal)) = (&req.check, signals::caught()) {
        return Err(Interrupted {
            signal,
            message: format!(
                "interrupted by {} before {env} moved; nothing changed",
                signals::signal_name(signal)
            ),
        }
        .into());
    }
    if req.dry_run {
        let seq = current.next_seq()?;
        progress.note(format!(
            "dry run: would move {env} to {to} as event {seq}; nothing written"
        ));
        return Ok(report("would-move", seq, gates));
    }
    // The first move of all stores the order it was checked against.
    policy_store::settle_for_move(reader, cfg, (&order, req.sign), progress)?;
    let event = record_event(reader, req, &current, gates.clone(), any_refused, progress)?;
    write_pointer(
        reader,
        env,
        &event.pointer(),
        current.pointer.map(|(_, e)| e),
    )?;
    // A rollout's start leaves the pointer (and so the site) where it was.
    if event.kind != Kind::Rollout {
        super::site::write_site(reader.store(), env, &req.to, progress)?;
    }
    progress.note(format!(
        "{env}: {} → {to} (event {})",
        previous.as_deref().unwrap_or("nothing"),
        event.seq
    ));
    vouch(reader, &event, req.sign, progress);
    reader.tell(&Notice::Moved(&event), progress);
    let mut moved = report("moved", event.seq, gates);
    moved.kind = event.kind;
    moved.event = Some(Digest::of(&event.to_bytes()).to_string());
    moved.check = event.check.map(|c| CheckJson {
        cmd: c.cmd,
        hosts: c.hosts,
        host_ids: c.host_ids,
        signed_reports: c.signed_reports,
        timeout_secs: c.timeout_secs,
        deadline: c.deadline,
        status: CheckStatus::Pending,
        detail: None,
    });
    Ok(moved)
}

/// Hosts with `--max-age` hear that `event`, signed with `sign`, is the
/// newest: its timestamp (a warning when it cannot be written).
fn vouch(
    reader: &Reader<'_>,
    event: &Event,
    sign: Option<&ssh_key::PrivateKey>,
    progress: &dyn Progress,
) {
    let Some(key) = sign else { return };
    let digest = Digest::of(&event.to_bytes());
    let vouched = timestamp::write_timestamp(
        reader.store(),
        &event.env,
        (event.seq, &digest),
        key,
        timestamp::DEFAULT_VALID_SECS,
    );
    if let Err(e) = vouched {
        progress.warn(format!(
            "could not write the timestamp of {}: {e:#}",
            event.env
        ));
    }
}

/// Appends rollout step `rollout` to the settled `current` state of its
/// environment, as the next event (create-only: of two controllers taking
/// a step at once, one loses, exit 4), and moves the pointer to it. The
/// event's `to` is the stable manifest until the step is `completed`.
pub(crate) fn append_step(
    reader: &Reader<'_>,
    current: &EnvState,
    rollout: Rollout,
    sign: Option<&ssh_key::PrivateKey>,
    progress: &dyn Progress,
) -> Result<Event> {
    let env = current.env.as_str();
    let to = if rollout.step == Step::Completed {
        rollout.target.clone()
    } else {
        rollout.stable.clone()
    };
    let event = Event {
        schema: EVENT_SCHEMA.into(),
        env: env.into(),
        seq: current.next_seq()?,
        kind: Kind::Rollout,
        time: rfc3339(now()),
        actor: actor(),
        from: current.live().map(String::from),
        to,
        reason: None,
        forced: false,
        gates: vec![],
        check: None,
        prev: current.head(),
        rollout: Some(rollout),
    };
    let event = create_event(reader, event, sign, progress)?;
    write_pointer(
        reader,
        env,
        &event.pointer(),
        current.pointer.as_ref().map(|(_, e)| e.clone()),
    )?;
    // Only `completed` moves the pointer to another manifest.
    if event.from.as_deref() != Some(event.to.as_str()) {
        let to = event.to.parse().map_err(anyhow::Error::msg)?;
        super::site::write_site(reader.store(), env, &to, progress)?;
    }
    vouch(reader, &event, sign, progress);
    reader.tell(&Notice::Moved(&event), progress);
    Ok(event)
}

/// The gate that refuses any move but a rollout's own steps while a
/// rollout is in flight in `current`'s environment; `None` otherwise.
fn rollout_gate(current: &EnvState) -> Option<Gate> {
    let env = &current.env;
    let r = current
        .live_event()
        .and_then(|e| e.rollout.as_ref())
        .filter(|r| !r.step.ended())?;
    Some(Gate {
        gate: "rollout".into(),
        ok: false,
        detail: format!(
            "rollout {} of {} over {} is in flight in {env} (step `{}`): wait for it (`verbatim rollout status {env}`), or end it with `verbatim rollout abort {env}`",
            r.id,
            r.target,
            r.stable,
            r.step.name()
        ),
    })
}

/// The error of a move the gates refused: exit 3, naming each gate that
/// refused, with the move's report (made by `report` of the gates) as its
/// context for the `--json` document.
fn refused(
    req: &MoveRequest<'_>,
    gates: Vec<Gate>,
    report: impl FnOnce(Vec<Gate>) -> MoveJson,
) -> anyhow::Error {
    let message = gates
        .iter()
        .filter(|g| !g.ok)
        .map(|g| {
            format!(
                "gate `{}` refused {} for {}: {}",
                g.gate, req.to, req.env, g.detail
            )
        })
        .collect::<Vec<_>>()
        .join("; ");
    anyhow::Error::new(GateRefused(message)).context(Refused(Box::new(report(gates))))
}

/// The gates of a move to `req.to` from the settled `current` state, in
/// the order they are recorded: the objects (a safety check, not a gate: a
/// manifest with a missing object never goes live, forced or not), then
/// the order gate (promote) or was-live (rollback), then the signatures
/// the policy requires (promote).
fn check_gates(
    reader: &Reader<'_>,
    req: &MoveRequest<'_>,
    order: &Order,
    prev_env: Option<&str>,
    current: &EnvState,
) -> Result<Vec<Gate>> {
    let (store, env, to) = (reader.store(), req.env, req.to.to_string());
    let manifest = load_manifest(store, &req.to)?;
    reader.mark_present(req.to);
    let missing = missing_objects(store, &manifest)?;
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
    gates.push(match req.kind {
        Kind::Promote => {
            // Only moves the pointer there has applied: a recorded move not
            // yet applied was never live there.
            let prev_state = prev_env.map(|p| reader.load(p)).transpose()?;
            let prev_history = prev_state.as_ref().map_or(&[][..], EnvState::applied);
            let prev_check = prev_state
                .as_ref()
                .and_then(|s| s.live_check(now()))
                .map(|(status, _)| status);
            gates::order_gate(prev_env, prev_history, prev_check, &to)
        }
        Kind::Rollback | Kind::AutoRollback | Kind::Rollout => {
            was_live_gate(env, current.applied(), &to)
        }
    });
    if req.kind == Kind::Promote {
        gates.extend(signature_gate(
            store,
            order.policy.as_ref(),
            env,
            &req.to,
            &manifest,
        )?);
    }
    Ok(gates)
}

/// The `was-live` gate of a rollback of `env` to `to`.
fn was_live_gate(env: &str, applied: &[Event], to: &str) -> Gate {
    let ok = gates::was_live(applied, to);
    let marked = gates::rolled_back_from(applied).get(to).copied();
    Gate {
        gate: "was-live".into(),
        ok,
        detail: if let (true, Some(seq)) = (ok, marked) {
            format!(
                "was live in {env} before; {env} rolled back from it ({}), restored by name",
                event_key(env, seq)
            )
        } else if ok {
            format!("was live in {env} before")
        } else {
            format!("was never live in {env}; promote it instead, or pass --force --reason")
        },
    }
}

/// Creates event `n + 1` of the move (create-only: of racing movers
/// exactly one wins; the others lose, naming the winner), and signs it
/// when asked. `any_refused`: a gate refused, and `--force` overrode it.
fn record_event(
    reader: &Reader<'_>,
    req: &MoveRequest<'_>,
    current: &EnvState,
    gates: Vec<Gate>,
    any_refused: bool,
    progress: &dyn Progress,
) -> Result<Event> {
    let env = req.env;
    let seq = current.next_seq()?;
    let event = Event {
        schema: EVENT_SCHEMA.into(),
        env: env.into(),
        seq,
        kind: req.kind,
        time: rfc3339(now()),
        actor: actor(),
        from: current.live().map(String::from),
        to: req.to.to_string(),
        reason: req.reason.clone(),
        forced: req.force && any_refused,
        gates,
        check: req.check.as_ref().map(|c| Check {
            cmd: c.cmd.clone(),
            hosts: c.hosts,
            host_ids: c.host_ids.clone(),
            signed_reports: c.signed_reports,
            timeout_secs: c.timeout_secs,
            deadline: rfc3339(deadline(c.timeout_secs)),
        }),
        // The newest event as read (settled: the pointer applies it).
        prev: current.head(),
        rollout: None,
    };
    let event = match (&req.rollout, current.live()) {
        (Some(plan), Some(stable)) => Event {
            kind: Kind::Rollout,
            to: stable.to_owned(),
            rollout: Some(Rollout {
                id: seq,
                target: req.to.to_string(),
                stable: stable.to_owned(),
                step: Step::Started,
                wave: 0,
                hosts: vec![],
                all: false,
                stage: false,
                deadline: Some(rfc3339(deadline(plan.wave_timeout_secs))),
                plan: Some(plan.clone()),
                resume: None,
                detail: None,
            }),
            ..event
        },
        _ => event,
    };
    create_event(reader, event, req.sign, progress)
}

/// Creates `event` (create-only: of racing movers exactly one wins; the
/// others lose, naming the winner), and signs it with `sign`.
pub(crate) fn create_event(
    reader: &Reader<'_>,
    event: Event,
    sign: Option<&ssh_key::PrivateKey>,
    progress: &dyn Progress,
) -> Result<Event> {
    let (store, env, seq) = (reader.store(), event.env.clone(), event.seq);
    let env = env.as_str();
    let bytes = event.to_bytes();
    let key = Key::new(event_key(env, seq))?;
    match store.put(
        &key,
        Body::bytes(&bytes),
        PutMode::CreateOnly,
        &PutOptions::json(),
    ) {
        Ok(_) => {
            reader.remember(&Log::env(env), seq, &event, &bytes)?;
            if let Some(key) = sign {
                // The move stands either way; a missing signature shows in
                // `history`.
                if let Err(e) = sign_event(store, env, seq, &bytes, key) {
                    progress.warn(format!("could not sign event {seq} of {env}: {e:#}"));
                }
            }
            Ok(event)
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
            Err(LostRace(format!(
                "lost the race to move {env}: {winner}; check `verbatim status` and run again if still wanted"
            ))
            .into())
        }
        Err(e) => Err(e).with_context(|| format!("recording event {seq} of {env}")),
    }
}

/// Writes the pointer for an event we created. If the swap loses, someone
/// completed our move for us (see `settle`); anything else is a lost race.
fn write_pointer(
    reader: &Reader<'_>,
    env: &str,
    pointer: &Pointer,
    expected: Option<ETag>,
) -> Result<()> {
    let key = Key::new(pointer_key(env))?;
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
        let event_key = event_key(env, pending.seq);
        let id: Digest = pending.to.parse().map_err(anyhow::Error::msg)?;
        let manifest = load_manifest(reader.store(), &id)
            .with_context(|| format!("checking {event_key} before completing it"))?;
        let missing = missing_objects(reader.store(), &manifest)?;
        if !missing.is_empty() {
            return Err(IntegrityError(format!(
                "{event_key}: moves {env} to {id}, but {} of its object(s) are not in the store: {}; refusing to complete it",
                missing.len(),
                missing.join(", ")
            ))
            .into());
        }
        let key = Key::new(pointer_key(env))?;
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
    let key = Key::new(event_key(env, seq))?;
    let (bytes, _) = get_record(store, &key)?.ok_or_else(|| anyhow::anyhow!("{key}: not found"))?;
    serde_json::from_slice(&bytes)
        .map_err(|e| IntegrityError(format!("{key}: not a valid event ({e})")).into())
}
