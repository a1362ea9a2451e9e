//! An environment's events and pointer: what they hold, where they are
//! stored, how they are encoded, and the checks an event and a history
//! must pass before anything relies on them. Pure: no I/O.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::log::{
    canonical, check_log, check_log_keys, check_log_pointer, inconsistent, strict_digest, Entry,
    Inconsistent, Log,
};
use super::reports::check_host_id;
use super::rollout::{Rollout, Step};
use crate::clock::parse_rfc3339;
use crate::digest::Digest;

/// The `schema` of every [`Pointer`].
pub const POINTER_SCHEMA: &str = "verbatim.pointer/v1";
/// The `schema` of every environment [`Event`]; [`check_event`] refuses any
/// other.
pub const EVENT_SCHEMA: &str = "verbatim.event/v1";
/// The `schema` of every [`CheckRecord`].
pub const CHECK_SCHEMA: &str = "verbatim.check/v1";

/// What moved a pointer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// A move to a manifest by `promote`.
    Promote,
    /// A move by `rollback`, back to a manifest the environment ran before
    /// (or, forced, to any).
    Rollback,
    /// A rollback made by a failed canary check.
    AutoRollback,
    /// A step of a rollout (`promote --waves`, `--strategy blue-green`):
    /// its `rollout` says which.
    Rollout,
}

/// The result of one gate, recorded in the event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Gate {
    /// Its name: `order`, `objects`, `signatures`, `was-live` or `canary`.
    pub gate: String,
    /// Whether it passed; a recorded event with a failed gate was forced.
    pub ok: bool,
    /// What it found, in words for a person.
    pub detail: String,
}

/// One move of an environment's pointer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Event {
    /// Always [`EVENT_SCHEMA`].
    pub schema: String,
    /// The environment whose history holds it; must agree with its key.
    pub env: String,
    /// Its place in the history, from 1; must agree with its file name.
    pub seq: u64,
    /// What moved the pointer.
    pub kind: Kind,
    /// RFC 3339, UTC.
    pub time: String,
    /// Who moved it ([`crate::actor::actor`]).
    pub actor: String,
    /// The manifest live before, if any.
    pub from: Option<String>,
    /// The manifest live after it: `sha256:<64 hex digits>`.
    pub to: String,
    /// Why, as `--reason` gave it; `null` when none was given.
    #[serde(default)]
    pub reason: Option<String>,
    /// Whether `--force` overrode a gate that refused (see `gates`).
    #[serde(default)]
    pub forced: bool,
    /// The gates checked before the move, and what each said.
    #[serde(default)]
    pub gates: Vec<Gate>,
    /// The canary check this move starts, recorded before it starts; absent
    /// (not `null`) when there is none, so events without one keep their bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub check: Option<Check>,
    /// `sha256:<hex>` of the stored bytes of event `seq - 1`: the history is
    /// a hash chain ([`check_log`]). Absent on the first event and on events
    /// written before chaining (so they keep their bytes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prev: Option<String>,
    /// The rollout step this event records (kind `rollout` only): while it
    /// is in flight `to` stays the stable manifest (see `rollout`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollout: Option<Rollout>,
}

/// A canary check, as the promote event that starts it records it. It must
/// have ended by `deadline`; an outcome is recorded by a [`CheckRecord`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Check {
    /// The shell command (`sh -c`), for `--check-cmd`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cmd: Option<String>,
    /// How many hosts must report the manifest active, for `--wait-hosts`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hosts: Option<u64>,
    /// The hosts, by id, that must report it active (`--wait-hosts
    /// web1,web2`): then `hosts` is their number, and no other host's
    /// report counts. Absent (not `[]`) for a count, so those events keep
    /// their bytes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub host_ids: Vec<String>,
    /// Whether only signed reports count (`--wait-hosts …
    /// --signed-reports`): signed by a key the policy's allowed signers
    /// list for the host's id, in namespace `verbatim-report@v1`. Absent
    /// (not `false`) otherwise, so older events keep their bytes.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub signed_reports: bool,
    /// How long it may take, in seconds; `deadline` is when the move was
    /// recorded plus this.
    pub timeout_secs: u64,
    /// RFC 3339, UTC: when the check is ended at the latest.
    pub deadline: String,
}

/// How a check ended. Written once, create-only, by the process that ran
/// it, at [`check_key`]`(env, seq)` where `seq` is the event that started it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckRecord {
    /// Always [`CHECK_SCHEMA`].
    pub schema: String,
    /// The environment moved; must agree with its key.
    pub env: String,
    /// The event that started the check; must agree with its file name.
    pub seq: u64,
    /// The manifest checked: the `to` of event `seq`.
    pub manifest: String,
    /// Whether it passed.
    pub outcome: Outcome,
    /// What happened: an exit status, a timeout, a signal.
    pub detail: String,
    /// RFC 3339, UTC: when the check ended.
    pub time: String,
}

/// The end of a check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// The command exited 0, or enough hosts reported the manifest active in
    /// time.
    Passed,
    /// It did not: a non-zero exit, a timeout, a signal, or too few hosts
    /// reported in time.
    Failed,
}

/// Where a check stands, as far as the store tells.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CheckStatus {
    /// No outcome yet and the deadline has not passed: it may still be running.
    Pending,
    /// No outcome and the deadline has passed: the check never finished
    /// (its promoter was killed, or lost the store).
    Expired,
    /// Its record says it passed.
    Passed,
    /// Its record says it failed; or, with no record yet, an auto-rollback
    /// from its manifest came right after its event.
    Failed,
}

/// Where a check stands, and what is known of why (its record's detail, or
/// the reason of the auto-rollback that followed it).
pub type CheckState = (CheckStatus, Option<String>);

impl CheckStatus {
    /// Whether the manifest this check is about counts as verified.
    pub fn passed(self) -> bool {
        self == CheckStatus::Passed
    }
}

/// What an environment runs: a copy of its newest event's essentials.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pointer {
    /// Always [`POINTER_SCHEMA`].
    pub schema: String,
    /// The environment.
    pub env: String,
    /// The manifest it runs: the `to` of event `seq`.
    pub manifest: String,
    /// The newest event the pointer applies.
    pub seq: u64,
    /// RFC 3339, UTC: when that event was made.
    pub time: String,
    /// Who made that event.
    pub actor: String,
}

impl Event {
    /// Its canonical JSON: the bytes stored at [`event_key`], which the next
    /// event's `prev` hashes.
    pub fn to_bytes(&self) -> Vec<u8> {
        canonical(self)
    }

    /// `to` as a manifest id; `None` when it is not one (never, once
    /// [`check_event`] passed).
    pub fn to_digest(&self) -> Option<Digest> {
        self.to.parse().ok()
    }

    /// The pointer this event sets.
    pub fn pointer(&self) -> Pointer {
        Pointer {
            schema: POINTER_SCHEMA.into(),
            env: self.env.clone(),
            manifest: self.to.clone(),
            seq: self.seq,
            time: self.time.clone(),
            actor: self.actor.clone(),
        }
    }
}

impl Pointer {
    /// Its canonical JSON, stored at [`pointer_key`]: byte for byte what
    /// [`Event::pointer`] of the newest event encodes to.
    pub fn to_bytes(&self) -> Vec<u8> {
        canonical(self)
    }
}

impl CheckRecord {
    /// Its canonical JSON, stored at [`check_key`].
    pub fn to_bytes(&self) -> Vec<u8> {
        canonical(self)
    }

    /// Parses a stored record; `key` names it in the error.
    pub fn parse(key: &str, bytes: &[u8]) -> Result<CheckRecord, Inconsistent> {
        serde_json::from_slice(bytes)
            .map_err(|e| inconsistent(key, format!("not a valid check record ({e})")))
    }
}

impl Pointer {
    /// Parses a stored pointer; `key` names it in the error.
    pub fn parse(key: &str, bytes: &[u8]) -> Result<Pointer, Inconsistent> {
        serde_json::from_slice(bytes)
            .map_err(|e| inconsistent(key, format!("not a valid pointer ({e})")))
    }
}

impl Entry for Event {
    fn check(&self, log: &Log, seq: u64, before: Option<&Self>) -> Result<(), Inconsistent> {
        check_event(&log.name, seq, self, before)
    }

    fn prev(&self) -> Option<&str> {
        self.prev.as_deref()
    }

    fn pointer_bytes(&self) -> Vec<u8> {
        self.pointer().to_bytes()
    }

    fn pointer_seq(bytes: &[u8]) -> Result<u64, String> {
        serde_json::from_slice::<Pointer>(bytes)
            .map(|p| p.seq)
            .map_err(|e| format!("not a valid pointer ({e})"))
    }
}

/// Checks the keys listed under [`events_prefix`] (sorted): they must be
/// exactly events `1..=n`, gap-free. Returns `n`.
pub fn check_event_keys<'a>(
    env: &str,
    keys: impl IntoIterator<Item = &'a str>,
) -> Result<u64, Inconsistent> {
    check_log_keys(&Log::env(env), keys)
}

/// Checks event `seq` of `env` (read from [`event_key`]`(env, seq)`) on its
/// own and against the event before it.
pub fn check_event(
    env: &str,
    seq: u64,
    event: &Event,
    before: Option<&Event>,
) -> Result<(), Inconsistent> {
    let key = event_key(env, seq);
    let bad = |what: String| Err(inconsistent(&key, what));
    if event.schema != EVENT_SCHEMA {
        return bad(format!(
            "schema is {:?}, not {EVENT_SCHEMA:?}",
            event.schema
        ));
    }
    if event.seq != seq {
        return bad(format!(
            "says it is event {} but its file name says {seq}",
            event.seq
        ));
    }
    if event.env != env {
        return bad(format!(
            "says it belongs to environment {:?} but is in the history of {env}",
            event.env
        ));
    }
    if strict_digest(&event.to).is_none() {
        return bad(format!(
            "`to` is {:?}, not a manifest id (sha256:<64 hex digits>)",
            event.to
        ));
    }
    if let Some(from) = &event.from {
        if strict_digest(from).is_none() {
            return bad(format!(
                "`from` is {from:?}, not a manifest id (sha256:<64 hex digits>)"
            ));
        }
    }
    if let Some(check) = &event.check {
        if event.kind != Kind::Promote {
            return bad(format!(
                "is a {} but carries a canary check; only a promote starts one",
                kind_name(event.kind)
            ));
        }
        if check.cmd.is_some() == check.hosts.is_some() {
            return bad(
                "check must name either a command (`cmd`) or a number of hosts (`hosts`)".into(),
            );
        }
        if let Err(why) = check_host_ids(check) {
            return bad(why);
        }
        if parse_rfc3339(&check.deadline).is_none() {
            return bad(format!(
                "check.deadline is {:?}, not an RFC 3339 UTC time (YYYY-MM-DDTHH:MM:SSZ)",
                check.deadline
            ));
        }
    }
    if let Err(why) = check_rollout(event, before) {
        return bad(why);
    }
    match (before, &event.from) {
        (None, None) => Ok(()),
        (None, Some(from)) => bad(format!(
            "is the first event but says {env} ran {from} before it"
        )),
        (Some(b), from) if from.as_deref() != Some(b.to.as_str()) => bad(format!(
            "says {env} ran {} before it, but event {} ({}) left it on {}",
            from.as_deref().unwrap_or("nothing"),
            b.seq,
            event_key(env, b.seq),
            b.to
        )),
        (Some(_), _) => Ok(()),
    }
}

/// A rollout step on its own and against the event before it: only
/// events of kind `rollout` carry one, and they all do; `to` is the stable
/// manifest until `completed` makes it the target; a step after the first
/// continues the rollout the event before is in, which has not ended; the
/// plan is on `started` only.
fn check_rollout(event: &Event, before: Option<&Event>) -> Result<(), String> {
    let r = match (&event.rollout, event.kind) {
        (None, Kind::Rollout) => {
            return Err("is a rollout step but says which nowhere (`rollout`)".into())
        }
        (None, _) => return Ok(()),
        (Some(_), kind) if kind != Kind::Rollout => {
            return Err(format!(
                "is a {} but carries a rollout step",
                kind_name(kind)
            ))
        }
        (Some(r), _) => r,
    };
    for (what, id) in [("target", &r.target), ("stable", &r.stable)] {
        if strict_digest(id).is_none() {
            return Err(format!("rollout.{what} is {id:?}, not a manifest id"));
        }
    }
    let to = if r.step == Step::Completed {
        &r.target
    } else {
        &r.stable
    };
    if event.to != *to {
        return Err(format!(
            "is rollout step `{}` but moves the environment to {}, not {to}",
            r.step.name(),
            event.to
        ));
    }
    if (r.step == Step::Started) != r.plan.is_some() {
        return Err("a rollout's plan is on its `started` step, and only there".into());
    }
    if let Some(d) = r.deadline.as_deref().filter(|d| parse_rfc3339(d).is_none()) {
        return Err(format!(
            "rollout.deadline is {d:?}, not an RFC 3339 UTC time"
        ));
    }
    if r.step == Step::Started {
        return if r.id == event.seq {
            Ok(())
        } else {
            Err(format!(
                "starts rollout {} but is event {}",
                r.id, event.seq
            ))
        };
    }
    match before.and_then(|b| b.rollout.as_ref()) {
        Some(b) if b.id == r.id && b.target == r.target && b.stable == r.stable && !b.step.ended() => Ok(()),
        _ => Err(format!(
            "is step `{}` of rollout {}, but the event before it is not a step of that rollout in flight",
            r.step.name(),
            r.id
        )),
    }
}

/// A check's `host_ids`, when it has any: host ids, each once, as many as
/// `hosts` says; `signed_reports` only for hosts.
fn check_host_ids(check: &Check) -> Result<(), String> {
    if check.signed_reports && check.hosts.is_none() {
        return Err("check.signed_reports is set but the check waits for no hosts".into());
    }
    if check.host_ids.is_empty() {
        return Ok(());
    }
    if check.hosts != Some(check.host_ids.len() as u64) {
        return Err(format!(
            "check.host_ids names {} host(s) but check.hosts is {:?}",
            check.host_ids.len(),
            check.hosts
        ));
    }
    let mut seen = std::collections::BTreeSet::new();
    for id in &check.host_ids {
        check_host_id(id).map_err(|e| format!("check.host_ids: {e}"))?;
        if !seen.insert(id) {
            return Err(format!("check.host_ids names host {id:?} twice"));
        }
    }
    Ok(())
}

/// Checks a whole history, oldest first, as read from events `1..=n`, with
/// the sha256 of each one's stored bytes (see [`check_log`]).
pub fn check_history(env: &str, events: &[Event], digests: &[Digest]) -> Result<(), Inconsistent> {
    check_log(&Log::env(env), events, digests)
}

/// `promote`, `rollback`, `auto-rollback`
pub fn kind_name(kind: Kind) -> &'static str {
    match kind {
        Kind::Promote => "promote",
        Kind::Rollback => "rollback",
        Kind::AutoRollback => "auto-rollback",
        Kind::Rollout => "rollout",
    }
}

/// Every manifest a checked history names, each with the first event that
/// names it (`from` is always an earlier `to`, so `to` covers both).
pub fn manifests_named(history: &[Event]) -> BTreeMap<Digest, u64> {
    let mut out = BTreeMap::new();
    for e in history {
        if let Some(d) = strict_digest(&e.to) {
            out.entry(d).or_insert(e.seq);
        }
    }
    out
}

/// Checks the pointer (its stored bytes, `None` if absent) against a checked
/// history. It must be the pointer the newest event sets, byte for byte, or
/// the one the event before sets (a move whose pointer write has not
/// happened yet). Returns how many events it has applied.
pub fn check_pointer(
    env: &str,
    pointer: Option<&[u8]>,
    history: &[Event],
) -> Result<usize, Inconsistent> {
    check_log_pointer(&Log::env(env), pointer, history)
}

impl Log {
    /// The log of environment `env`: `envs/<env>.json` and its events.
    pub fn env(env: &str) -> Log {
        Log {
            name: env.to_owned(),
            pointer_key: pointer_key(env),
            events_prefix: events_prefix(env),
        }
    }
}

/// `envs/<env>.json`
pub fn pointer_key(env: &str) -> String {
    format!("envs/{env}.json")
}

/// `envs/<env>/events/` — keys below sort in sequence order.
pub fn events_prefix(env: &str) -> String {
    format!("envs/{env}/events/")
}

/// `envs/<env>/events/<seq, zero-padded>.json`
pub fn event_key(env: &str, seq: u64) -> String {
    Log::env(env).event_key(seq)
}

/// `envs/<env>/checks/` — how each canary check ended.
pub fn checks_prefix(env: &str) -> String {
    format!("envs/{env}/checks/")
}

/// `envs/<env>/checks/<seq of the event that started it, zero-padded>.json`
pub fn check_key(env: &str, seq: u64) -> String {
    format!("envs/{env}/checks/{seq:010}.json")
}
