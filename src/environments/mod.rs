//! Environments: pointers to manifests, and the append-only history behind them.
//!
//! The history is the truth: event `n` of an environment (`envs/<env>/events/
//! <n>.json`, create-only) records one move of its pointer. The pointer
//! (`envs/<env>.json`, compare-and-swap) is a cache of the newest event,
//! derived from it byte for byte, so anyone can complete a move a crashed
//! process left half done. Creating event `n+1` is what wins a race: exactly
//! one writer can. Event `n+1` records the sha256 of event `n`'s stored
//! bytes (`prev`), so the history is a hash chain: an event changed,
//! removed or inserted breaks the link after it ([`check_link`]). This
//! module is pure: encoding, the promotion order rule, the choice of a
//! rollback target, and the checks that a history and its pointer add up
//! before anything relies on them (`check_*`, written once for any [`Log`]
//! of [`Entry`] events: the policy, `crate::policy`, is one too);
//! `commands::history` reads and `commands::promote` writes.
//!
//! A canary check is part of the move it checks: the promote event carries
//! the check (command and deadline) before the check starts, so a promoter
//! killed mid-check leaves a record that the check never finished. Events
//! are immutable, so how the check ended goes elsewhere: a create-only
//! [`CheckRecord`] at `envs/<env>/checks/<seq>.json` (and, on failure, the
//! auto-rollback event after it). [`check_status`] turns these, and the
//! clock, into what the check's state is; [`canary_gate`] refuses a promote
//! on top of a manifest whose check did not pass.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub mod signatures;

use crate::clock::parse_rfc3339;
use crate::digest::Digest;

pub const POINTER_SCHEMA: &str = "verbatim.pointer/v1";
pub const EVENT_SCHEMA: &str = "verbatim.event/v1";
pub const CHECK_SCHEMA: &str = "verbatim.check/v1";

/// What moved a pointer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    Promote,
    Rollback,
    /// A rollback made by a failed canary check.
    AutoRollback,
}

/// The result of one gate, recorded in the event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Gate {
    pub gate: String,
    pub ok: bool,
    pub detail: String,
}

/// One move of an environment's pointer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Event {
    pub schema: String,
    pub env: String,
    pub seq: u64,
    pub kind: Kind,
    /// RFC 3339, UTC.
    pub time: String,
    pub actor: String,
    /// The manifest live before, if any.
    pub from: Option<String>,
    pub to: String,
    #[serde(default)]
    pub reason: Option<String>,
    #[serde(default)]
    pub forced: bool,
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
    pub timeout_secs: u64,
    /// RFC 3339, UTC: when the check is ended at the latest.
    pub deadline: String,
}

/// How a check ended. Written once, create-only, by the process that ran
/// it, at [`check_key`]`(env, seq)` where `seq` is the event that started it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckRecord {
    pub schema: String,
    pub env: String,
    pub seq: u64,
    /// The manifest checked: the `to` of event `seq`.
    pub manifest: String,
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
    Passed,
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
    Passed,
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
    pub schema: String,
    pub env: String,
    pub manifest: String,
    pub seq: u64,
    pub time: String,
    pub actor: String,
}

impl Event {
    pub fn to_bytes(&self) -> Vec<u8> {
        canonical(self)
    }

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
    pub fn to_bytes(&self) -> Vec<u8> {
        canonical(self)
    }
}

impl CheckRecord {
    pub fn to_bytes(&self) -> Vec<u8> {
        canonical(self)
    }

    /// Parses a stored record; `key` names it in the error.
    pub fn parse(key: &str, bytes: &[u8]) -> Result<CheckRecord, Inconsistent> {
        serde_json::from_slice(bytes)
            .map_err(|e| inconsistent(key, format!("not a valid check record ({e})")))
    }
}

/// Canonical JSON: sorted keys, no insignificant whitespace.
pub fn canonical<T: Serialize>(v: &T) -> Vec<u8> {
    let value = serde_json::to_value(v).expect("environment types always serialize");
    serde_json::to_vec(&value).expect("a Value always serializes")
}

/// Why a stored history or pointer cannot be trusted: the key at fault and
/// what disagrees. Nothing may act on such a history; the command layer
/// reports it as an integrity error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inconsistent {
    pub key: String,
    pub what: String,
}

impl std::fmt::Display for Inconsistent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.key, self.what)
    }
}

impl std::error::Error for Inconsistent {}

pub fn inconsistent(key: impl Into<String>, what: impl Into<String>) -> Inconsistent {
    Inconsistent {
        key: key.into(),
        what: what.into(),
    }
}

/// Parses `sha256:<64 lower-case hex>`, the one spelling events and pointers use.
pub fn strict_digest(s: &str) -> Option<Digest> {
    let d: Digest = s.parse().ok()?;
    (d.to_string() == s).then_some(d)
}

impl Pointer {
    /// Parses a stored pointer; `key` names it in the error.
    pub fn parse(key: &str, bytes: &[u8]) -> Result<Pointer, Inconsistent> {
        serde_json::from_slice(bytes)
            .map_err(|e| inconsistent(key, format!("not a valid pointer ({e})")))
    }
}

/// An append-only log in the store: create-only events `1..=n` under one
/// prefix, each moving one pointer, which is derived from the newest event
/// byte for byte. Every environment is one ([`Log::env`]); so is the policy
/// (`crate::policy`). What makes a history trustworthy is the same for both,
/// so the checks below are written once, over any [`Entry`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Log {
    /// Its name in messages: an environment (`prod`), or `the policy`.
    pub name: String,
    pub pointer_key: String,
    /// Event keys below it sort in sequence order.
    pub events_prefix: String,
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

    /// `<events_prefix><seq, zero-padded to 10 digits>.json`
    pub fn event_key(&self, seq: u64) -> String {
        format!("{}{seq:010}.json", self.events_prefix)
    }

    /// The sequence number an event key names, when it is spelt as
    /// [`Log::event_key`] spells it.
    fn seq_of_key(&self, key: &str) -> Option<u64> {
        seq_in(&self.events_prefix, key).filter(|&seq| self.event_key(seq) == key)
    }
}

/// One event of a [`Log`], as far as the shared checks need to know it.
pub trait Entry {
    /// Checks the event stored as event `seq` of `log` on its own and
    /// against the event before it (`None` for the first); the error names
    /// `log.event_key(seq)`.
    fn check(&self, log: &Log, seq: u64, before: Option<&Self>) -> Result<(), Inconsistent>;
    /// Its `prev`: the digest of the stored bytes of the event before it,
    /// if it carries one.
    fn prev(&self) -> Option<&str>;
    /// The canonical bytes of the pointer this event sets.
    fn pointer_bytes(&self) -> Vec<u8>;
    /// The `seq` a stored pointer claims, or why it is not a pointer.
    fn pointer_seq(bytes: &[u8]) -> Result<u64, String>;
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

/// The number in `<prefix><digits>.json`, if `key` is spelt so.
fn seq_in(prefix: &str, key: &str) -> Option<u64> {
    let digits = key.strip_prefix(prefix)?.strip_suffix(".json")?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// Checks the keys listed under [`events_prefix`] (sorted): they must be
/// exactly events `1..=n`, gap-free. Returns `n`.
pub fn check_event_keys<'a>(
    env: &str,
    keys: impl IntoIterator<Item = &'a str>,
) -> Result<u64, Inconsistent> {
    check_log_keys(&Log::env(env), keys)
}

/// Checks the keys listed under `log.events_prefix` (sorted): they must be
/// exactly events `1..=n`, gap-free. Returns `n`.
pub fn check_log_keys<'a>(
    log: &Log,
    keys: impl IntoIterator<Item = &'a str>,
) -> Result<u64, Inconsistent> {
    let mut n: u64 = 0;
    for key in keys {
        let want = n
            .checked_add(1)
            .ok_or_else(|| inconsistent(key, "more events than a u64 counts"))?;
        let expected = log.event_key(want);
        if key == expected {
            n = want;
            continue;
        }
        return Err(match log.seq_of_key(key) {
            Some(seq) if seq > want => inconsistent(
                expected,
                format!("is missing, but {key} (event {seq}) exists: the history has a gap"),
            ),
            _ => inconsistent(
                key,
                format!(
                    "is not an event file of {} (expected {expected} next; events are named by their 10-digit sequence number)",
                    log.name
                ),
            ),
        });
    }
    Ok(n)
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
        if parse_rfc3339(&check.deadline).is_none() {
            return bad(format!(
                "check.deadline is {:?}, not an RFC 3339 UTC time (YYYY-MM-DDTHH:MM:SSZ)",
                check.deadline
            ));
        }
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

/// Checks a whole history, oldest first, as read from events `1..=n`, with
/// the sha256 of each one's stored bytes (see [`check_log`]).
pub fn check_history(env: &str, events: &[Event], digests: &[Digest]) -> Result<(), Inconsistent> {
    check_log(&Log::env(env), events, digests)
}

/// Checks the whole history of `log`, oldest first, as read from events
/// `1..=n`; `digests[i]` is the sha256 of the stored bytes of `events[i]`
/// (one each). Each event is checked on its own, against the one before
/// ([`Entry::check`]) and by the hash chain ([`check_link`]), in order, so
/// the error names the first event at fault.
pub fn check_log<E: Entry>(
    log: &Log,
    events: &[E],
    digests: &[Digest],
) -> Result<(), Inconsistent> {
    assert_eq!(events.len(), digests.len(), "one digest per event");
    let mut chained = false;
    for (i, (seq, e)) in (1u64..).zip(events).enumerate() {
        e.check(log, seq, i.checked_sub(1).map(|b| &events[b]))?;
        check_link(log, seq, e.prev(), &digests[..i], chained)?;
        chained |= e.prev().is_some();
    }
    Ok(())
}

/// The hash chain rule for event `seq` of `log`, whose `prev` is `prev`:
/// `earlier` holds the sha256 of the stored bytes of events `1..seq`
/// (empty for the first event, which has no `prev`), and `chained` says
/// whether an earlier event carries a `prev`. A history may start its
/// chain late (events written before chaining have none), but once an
/// event has a `prev`, every later one has, and each is the digest of the
/// event before it as stored: an event changed, removed or inserted breaks
/// the link after it. The error says which it was where the digests tell.
pub fn check_link(
    log: &Log,
    seq: u64,
    prev: Option<&str>,
    earlier: &[Digest],
    chained: bool,
) -> Result<(), Inconsistent> {
    let key = log.event_key(seq);
    let bad = |what: String| Err(inconsistent(&key, what));
    let last = seq.saturating_sub(1);
    match (prev, earlier.last()) {
        (None, None) => Ok(()),
        (Some(p), None) => bad(format!(
            "is the first event, but its `prev` ({p}) names an event before it"
        )),
        (None, Some(_)) if chained => bad(format!(
            "has no `prev`, but event {last} before it has one (once a history is hash-chained, every later event is): an event was inserted, or this one's `prev` removed"
        )),
        (None, Some(_)) => Ok(()),
        (Some(p), Some(d)) => {
            let Some(p) = strict_digest(p) else {
                return bad(format!(
                    "`prev` is {p:?}, not an event digest (sha256:<64 hex digits>)"
                ));
            };
            if p == *d {
                return Ok(());
            }
            let last_key = log.event_key(last);
            let head = format!("its `prev` does not match event {last}: `prev` is {p}");
            // Naming an event further back: what lies between was inserted.
            let named = earlier.iter().rposition(|e| *e == p).map(|i| i as u64 + 1);
            match named {
                Some(named) => {
                    let what = if named + 1 == last {
                        format!("event {last} was")
                    } else {
                        format!("events {}–{last} were", named + 1)
                    };
                    bad(format!(
                        "{head}, the sha256 of event {named} ({}), not of {last_key} ({d}); {what} inserted after event {named}",
                        log.event_key(named)
                    ))
                }
                None => bad(format!(
                    "{head}, but {last_key} as stored is {d}; event {last} was changed, or an event was removed or inserted before event {seq}"
                )),
            }
        }
    }
}

/// The first event the hash chain of a checked history covers: the one
/// the first `prev` names (every event from there on is sealed by the
/// `prev` of the one after it, all but the newest). `None` when no event
/// carries a `prev`.
pub fn chain_start<E: Entry>(events: &[E]) -> Option<u64> {
    // A checked history's events are numbered 1..=n; event 1 has no `prev`.
    (0u64..)
        .zip(events)
        .find(|(_, e)| e.prev().is_some())
        .map(|(i, _)| i)
}

/// Checks a stored check record read from [`check_key`]`(env, seq)` against
/// event `seq` of the history (`None` if there is no such event).
pub fn check_record(
    env: &str,
    seq: u64,
    record: &CheckRecord,
    event: Option<&Event>,
) -> Result<(), Inconsistent> {
    let key = check_key(env, seq);
    let bad = |what: String| Err(inconsistent(&key, what));
    if record.schema != CHECK_SCHEMA {
        return bad(format!(
            "schema is {:?}, not {CHECK_SCHEMA:?}",
            record.schema
        ));
    }
    if record.seq != seq {
        return bad(format!(
            "says it is the check of event {} but its file name says {seq}",
            record.seq
        ));
    }
    if record.env != env {
        return bad(format!(
            "says it belongs to environment {:?} but is in the checks of {env}",
            record.env
        ));
    }
    let Some(event) = event else {
        return bad(format!(
            "records a check of event {seq}, which does not exist"
        ));
    };
    if event.check.is_none() {
        return bad(format!(
            "records a check of event {seq} ({}), which started none",
            event_key(env, seq)
        ));
    }
    if record.manifest != event.to {
        return bad(format!(
            "records a check of {}, but event {seq} moved {env} to {}",
            record.manifest, event.to
        ));
    }
    Ok(())
}

/// The sequence numbers of the check record keys listed under
/// [`checks_prefix`]; a key not spelt as [`check_key`] spells it is an error.
pub fn check_record_seqs<'a>(
    env: &str,
    keys: impl IntoIterator<Item = &'a str>,
) -> Result<Vec<u64>, Inconsistent> {
    keys.into_iter()
        .map(|key| {
            seq_in(&checks_prefix(env), key)
                .filter(|&seq| check_key(env, seq) == key)
                .ok_or_else(|| {
                    inconsistent(
                        key,
                        format!(
                            "is not a check record of {env} (they are named by the 10-digit sequence number of the event that started the check)"
                        ),
                    )
                })
        })
        .collect()
}

/// Where the check started by `history[i]` stands (`None` if that event
/// started none), given its record if one is stored and the time `now`
/// (seconds since the epoch). Without a record, an auto-rollback right
/// after it means it failed (the rollback is made before the record is
/// written); otherwise it is pending until its deadline, expired after.
pub fn check_status(
    history: &[Event],
    i: usize,
    record: Option<&CheckRecord>,
    now: u64,
) -> Option<CheckState> {
    let event = history.get(i)?;
    let check = event.check.as_ref()?;
    if let Some(r) = record {
        let status = match r.outcome {
            Outcome::Passed => CheckStatus::Passed,
            Outcome::Failed => CheckStatus::Failed,
        };
        return Some((status, Some(r.detail.clone())));
    }
    if let Some(next) = history.get(i + 1) {
        if next.kind == Kind::AutoRollback && next.from.as_deref() == Some(event.to.as_str()) {
            return Some((CheckStatus::Failed, next.reason.clone()));
        }
    }
    // A deadline that does not parse was refused by `check_event`; should
    // one get here, it counts as passed long ago: expired, never "passed".
    let deadline = parse_rfc3339(&check.deadline).unwrap_or(0);
    Some(if now < deadline {
        (CheckStatus::Pending, None)
    } else {
        (CheckStatus::Expired, None)
    })
}

/// The canary gate of a promote to `env`: when the move that made the live
/// manifest started a canary check (`live` is that event and where its
/// check stands), a manifest may go on top only once that check passed.
/// Otherwise the unverified manifest would become the one a rollback (or
/// the next failed check) goes back to. `None` when the live manifest came
/// with no check. Rollbacks are not gated by it: they are the way out.
pub fn canary_gate(env: &str, live: &Event, status: Option<CheckStatus>) -> Option<Gate> {
    let check = live.check.as_ref()?;
    let status = status?;
    let seq = live.seq;
    let way_out = format!("roll it back with `verbatim rollback {env}`, or pass --force --reason");
    let (ok, detail) = match status {
        CheckStatus::Passed => (true, format!("the canary check of event {seq} passed")),
        CheckStatus::Pending => (
            false,
            format!(
                "{env} runs {} and its canary check (event {seq}) has not finished; it may still be running, until {}: wait for it, or {way_out}",
                live.to, check.deadline
            ),
        ),
        CheckStatus::Expired => (
            false,
            format!(
                "{env} runs {} unchecked: its canary check (event {seq}) never finished (deadline {} passed); {way_out}",
                live.to, check.deadline
            ),
        ),
        CheckStatus::Failed => (
            false,
            format!(
                "{env} runs {} although its canary check (event {seq}) failed; {way_out}",
                live.to
            ),
        ),
    };
    Some(Gate {
        gate: "canary".into(),
        ok,
        detail,
    })
}

/// `promote`, `rollback`, `auto-rollback`
pub fn kind_name(kind: Kind) -> &'static str {
    match kind {
        Kind::Promote => "promote",
        Kind::Rollback => "rollback",
        Kind::AutoRollback => "auto-rollback",
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

/// [`check_pointer`] for any log.
pub fn check_log_pointer<E: Entry>(
    log: &Log,
    pointer: Option<&[u8]>,
    history: &[E],
) -> Result<usize, Inconsistent> {
    let key = &log.pointer_key;
    let n = history.len();
    let Some(bytes) = pointer else {
        return match n {
            0 | 1 => Ok(0),
            _ => Err(inconsistent(
                key,
                format!(
                    "is missing, but the history has {n} events (newest {})",
                    log.event_key(n as u64)
                ),
            )),
        };
    };
    let Some(newest) = history.last() else {
        return Err(inconsistent(
            key,
            format!(
                "exists, but the history of {} is empty ({} holds no event)",
                log.name, log.events_prefix
            ),
        ));
    };
    if bytes == newest.pointer_bytes() {
        return Ok(n);
    }
    if let Some(before) = n.checked_sub(2).map(|i| &history[i]) {
        if bytes == before.pointer_bytes() {
            return Ok(n - 1);
        }
    }
    // A checked history's events are numbered 1..=n.
    let newest_seq = n as u64;
    let newest_key = log.event_key(newest_seq);
    let seq = E::pointer_seq(bytes).map_err(|e| inconsistent(key, e))?;
    let what = if seq > newest_seq {
        format!("says seq {seq}, but the newest event is {newest_key} (seq {newest_seq})")
    } else if seq == 0 || seq < newest_seq.saturating_sub(1) {
        format!(
            "says seq {seq}, but the newest event is {newest_key}; a pointer is never more than one move behind"
        )
    } else {
        format!(
            "is not what event {seq} ({}) sets, byte for byte",
            log.event_key(seq)
        )
    };
    Err(inconsistent(key, what))
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

/// The environment before `env` in the promotion order, or `None` for the first.
/// `Err` when `env` is not declared.
pub fn previous<'a>(order: &'a [String], env: &str) -> Result<Option<&'a str>, String> {
    match order.iter().position(|e| e == env) {
        Some(0) => Ok(None),
        Some(i) => Ok(Some(&order[i - 1])),
        None => Err(undeclared(order, env)),
    }
}

/// "`prd` is not in the environment order (…); did you mean `prod`?"
pub fn undeclared(order: &[String], env: &str) -> String {
    let mut msg = format!(
        "`{}` is not in the environment order ({})",
        crate::text::escape(env),
        order.join(", ")
    );
    if let Some(near) = closest(env, order) {
        msg.push_str(&format!("; did you mean `{near}`?"));
    }
    msg
}

/// The candidate nearest to `name` by edit distance, if it is near enough
/// to be a typo (at most a third of the name's length, at least 1).
pub fn closest<'a>(name: &str, candidates: &'a [String]) -> Option<&'a str> {
    let limit = (name.chars().count() / 3).max(1);
    candidates
        .iter()
        .map(|c| (edit_distance(name, c), c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c.as_str())
}

/// Levenshtein distance in chars (names are short: O(n·m) is fine).
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

/// The order gate: `manifest` may enter `env` while it is live, or was live
/// and not rolled back from, in the environment before it (its applied
/// `history` given, and where the canary check of its live move stands,
/// if it started one), or anywhere first. Live there with a check that has
/// not passed is not enough: it is not verified there yet.
pub fn order_gate(
    prev: Option<&str>,
    prev_history: &[Event],
    prev_check: Option<CheckStatus>,
    manifest: &str,
) -> Gate {
    let Some(prev) = prev else {
        return Gate {
            gate: "order".into(),
            ok: true,
            detail: "first environment: any published manifest".into(),
        };
    };
    let live = prev_history.last().filter(|e| e.to == manifest);
    let (ok, detail) = if let Some(live) = live {
        let seq = live.seq;
        let way_out = "or pass --force --reason";
        match prev_check {
            None | Some(CheckStatus::Passed) => (true, format!("is live in {prev}")),
            Some(CheckStatus::Pending) => (
                false,
                format!(
                    "is live in {prev}, but its canary check there (event {seq}) has not finished; wait for it, {way_out}"
                ),
            ),
            Some(CheckStatus::Expired) => (
                false,
                format!(
                    "is live in {prev} unchecked: its canary check there (event {seq}) never finished; roll {prev} back and promote it again, {way_out}"
                ),
            ),
            Some(CheckStatus::Failed) => (
                false,
                format!(
                    "is live in {prev}, but its canary check there (event {seq}) failed; fix forward, {way_out}"
                ),
            ),
        }
    } else if let Some(seq) = rolled_back_from(prev_history).get(manifest) {
        (
            false,
            format!(
                "{prev} rolled back from {manifest} ({}); fix forward, or promote it to {prev} again, or pass --force --reason",
                event_key(prev, *seq)
            ),
        )
    } else if was_live(prev_history, manifest) {
        (true, format!("was live in {prev} and not rolled back from"))
    } else {
        (
            false,
            format!("has never been promoted to {prev}; promote it there first, or pass --force --reason"),
        )
    };
    Gate {
        gate: "order".into(),
        ok,
        detail,
    }
}

/// The manifests an environment rolled back from, each with the event that
/// did so, as of the end of `history` (oldest first). Rolling back *from* a
/// manifest marks it: the `from` of every rollback and auto-rollback event
/// is, by definition, rolled back from; no other field records it. A later
/// event moving the environment *to* that manifest again (a promote of the
/// same bytes, or a rollback naming it with `--to`) clears the mark, so the
/// manifest live is never marked.
pub fn rolled_back_from(history: &[Event]) -> BTreeMap<&str, u64> {
    let mut marked = BTreeMap::new();
    for e in history {
        if let (Kind::Rollback | Kind::AutoRollback, Some(from)) = (e.kind, &e.from) {
            marked.insert(from.as_str(), e.seq);
        }
        marked.remove(e.to.as_str());
    }
    marked
}

/// Where `rollback` goes: `to_seq` names an event whose manifest to restore
/// (whatever it is: naming it is choosing it); otherwise the newest manifest
/// live before the current one that the environment has not rolled back
/// from ([`rolled_back_from`]). Rolling back twice therefore walks back
/// (c → b → a), never toggles (c → b → c). `history` is oldest first.
pub fn rollback_target(history: &[Event], to_seq: Option<u64>) -> Result<String, String> {
    let current = history
        .last()
        .ok_or("the environment has no history to roll back")?;
    if let Some(seq) = to_seq {
        return history
            .iter()
            .find(|e| e.seq == seq)
            .map(|e| e.to.clone())
            .ok_or_else(|| format!("no event {seq} in the history (1..={})", current.seq));
    }
    let marked = rolled_back_from(history);
    if let Some(e) = history
        .iter()
        .rev()
        .find(|e| e.to != current.to && !marked.contains_key(e.to.as_str()))
    {
        return Ok(e.to.clone());
    }
    if marked.is_empty() {
        return Err("nothing was live before the current manifest; nothing to roll back to".into());
    }
    Err(format!(
        "every manifest live before the current one was rolled back from ({}); name one with --to MANIFEST|N to return to it anyway",
        marked
            .iter()
            .map(|(m, seq)| format!("{m} at event {seq}"))
            .collect::<Vec<_>>()
            .join(", ")
    ))
}

/// Whether `manifest` was ever live in an environment with this history.
pub fn was_live(history: &[Event], manifest: &str) -> bool {
    history.iter().any(|e| e.to == manifest)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::rfc3339;

    fn ev(seq: u64, from: Option<&str>, to: &str) -> Event {
        Event {
            schema: EVENT_SCHEMA.into(),
            env: "prod".into(),
            seq,
            kind: Kind::Promote,
            time: rfc3339(0),
            actor: "ci".into(),
            from: from.map(String::from),
            to: to.into(),
            reason: None,
            forced: false,
            gates: vec![],
            check: None,
            prev: None,
        }
    }

    /// The sha256 of each event's bytes, as a store holds them.
    fn digests<E: Entry + Serialize>(h: &[E]) -> Vec<Digest> {
        h.iter().map(|e| Digest::of(&canonical(e))).collect()
    }

    #[test]
    fn keys_sort_in_sequence_order() {
        assert!(event_key("prod", 9) < event_key("prod", 10));
        assert_eq!(event_key("dev", 1), "envs/dev/events/0000000001.json");
        assert!(event_key("dev", 1).starts_with(&events_prefix("dev")));
    }

    #[test]
    fn order_gate_needs_the_previous_environment() {
        let order: Vec<String> = ["dev", "preprod", "prod"].map(String::from).to_vec();
        assert_eq!(previous(&order, "dev"), Ok(None));
        assert_eq!(previous(&order, "prod"), Ok(Some("preprod")));
        assert!(previous(&order, "qa")
            .unwrap_err()
            .contains("dev, preprod, prod"));
        assert!(order_gate(None, &[], None, "m1").ok);
        let hist = [ev(1, None, "m1")];
        assert!(order_gate(Some("preprod"), &hist, None, "m1").ok);
        let g = order_gate(Some("preprod"), &hist, None, "m2");
        assert!(!g.ok && g.detail.contains("--force"), "{g:?}");

        // Live there is not verified there until its canary check passed.
        let gate = |check| order_gate(Some("preprod"), &hist, Some(check), "m1");
        assert!(gate(CheckStatus::Passed).ok);
        for (check, says) in [
            (CheckStatus::Pending, "has not finished"),
            (CheckStatus::Expired, "never finished"),
            (CheckStatus::Failed, "failed"),
        ] {
            let g = gate(check);
            assert!(
                !g.ok && g.detail.contains(says) && g.detail.contains("event 1"),
                "{g:?}"
            );
        }
    }

    fn rb(seq: u64, from: &str, to: &str) -> Event {
        Event {
            kind: Kind::Rollback,
            ..ev(seq, Some(from), to)
        }
    }

    #[test]
    fn rollback_targets() {
        let hist = [
            ev(1, None, "a"),
            ev(2, Some("a"), "b"),
            ev(3, Some("b"), "c"),
        ];
        assert_eq!(rollback_target(&hist, None).unwrap(), "b");
        assert_eq!(rollback_target(&hist, Some(1)).unwrap(), "a");
        assert!(rollback_target(&hist, Some(7)).is_err());
        assert!(rollback_target(&hist[..1], None).is_err());
        assert!(rollback_target(&[], None).is_err());
        assert!(was_live(&hist, "a") && !was_live(&hist, "z"));
        // A manifest promoted again is not "before" itself: a → b → a, back to b.
        let again = [
            ev(1, None, "a"),
            ev(2, Some("a"), "b"),
            ev(3, Some("b"), "a"),
        ];
        assert_eq!(rollback_target(&again, None).unwrap(), "b");
    }

    #[test]
    fn rollback_walks_back_and_never_toggles() {
        let mut h = vec![
            ev(1, None, "a"),
            ev(2, Some("a"), "b"),
            ev(3, Some("b"), "c"),
        ];
        h.push(rb(4, "c", &rollback_target(&h, None).unwrap()));
        assert_eq!(h[3].to, "b");
        assert_eq!(rolled_back_from(&h), BTreeMap::from([("c", 4)]));
        // The second rollback walks past c (rolled back from), to a.
        h.push(rb(5, "b", &rollback_target(&h, None).unwrap()));
        assert_eq!(h[4].to, "a");
        assert_eq!(rolled_back_from(&h), BTreeMap::from([("b", 5), ("c", 4)]));
        // A third has nowhere left to go, and says why and how.
        let e = rollback_target(&h, None).unwrap_err();
        assert!(e.contains("b at event 5") && e.contains("--to"), "{e}");
        // Named explicitly, a manifest rolled back from is still reachable.
        assert_eq!(rollback_target(&h, Some(3)).unwrap(), "c");
        // Restoring it by name clears its mark (the live one is never marked);
        // the one it left (a) is now rolled back from.
        h.push(rb(6, "a", "c"));
        assert_eq!(rolled_back_from(&h), BTreeMap::from([("a", 6), ("b", 5)]));
        assert!(rollback_target(&h, None).is_err());
    }

    #[test]
    fn an_auto_rollback_marks_too_and_a_promote_of_the_same_bytes_clears() {
        let mut h = vec![ev(1, None, "a"), ev(2, Some("a"), "b")];
        h.push(Event {
            kind: Kind::AutoRollback,
            ..ev(3, Some("b"), "a")
        });
        assert_eq!(rolled_back_from(&h), BTreeMap::from([("b", 3)]));
        h.push(ev(4, Some("a"), "c"));
        // c → a, not c → b: b stays rolled back from.
        assert_eq!(rollback_target(&h, None).unwrap(), "a");
        // Promoting b again (a fix-forward of the same bytes) makes it eligible.
        h.push(ev(5, Some("c"), "b"));
        assert!(rolled_back_from(&h).is_empty());
        h.push(ev(6, Some("b"), "d"));
        assert_eq!(rollback_target(&h, None).unwrap(), "b");
    }

    #[test]
    fn the_order_gate_refuses_what_the_previous_environment_rolled_back_from() {
        let pre = |seq, from: Option<&str>, to: &str| Event {
            env: "preprod".into(),
            ..ev(seq, from, to)
        };
        let mut h = vec![pre(1, None, "a"), pre(2, Some("a"), "b")];
        assert!(order_gate(Some("preprod"), &h, None, "b").ok);
        let g = order_gate(Some("preprod"), &h, None, "a");
        assert!(g.ok && g.detail.contains("not rolled back from"), "{g:?}");
        h.push(Event {
            kind: Kind::Rollback,
            ..pre(3, Some("b"), "a")
        });
        let g = order_gate(Some("preprod"), &h, None, "b");
        assert!(!g.ok, "{g:?}");
        assert!(
            g.detail.contains("rolled back from b")
                && g.detail.contains(&event_key("preprod", 3))
                && g.detail.contains("--force"),
            "{g:?}"
        );
        // Live wins: a is live in preprod.
        assert!(order_gate(Some("preprod"), &h, None, "a").ok);
        // Promoted to preprod again: it may go on.
        h.push(pre(4, Some("a"), "b"));
        assert!(order_gate(Some("preprod"), &h, None, "b").ok);
    }

    #[test]
    fn pointer_is_derived_from_the_event_byte_for_byte() {
        let e = ev(3, Some("b"), "c");
        assert_eq!(e.pointer().to_bytes(), e.pointer().to_bytes());
        assert_eq!(e.pointer().seq, 3);
        let back: Event = serde_json::from_slice(&e.to_bytes()).unwrap();
        assert_eq!(back, e);
    }

    fn id(c: char) -> String {
        format!("sha256:{}", c.to_string().repeat(64))
    }

    /// A consistent history of `n` moves through manifests a, b, c, …
    fn chain(n: u64) -> Vec<Event> {
        let m = |i: u64| id(char::from(b'a' + (i % 6) as u8));
        (1..=n)
            .map(|seq| ev(seq, (seq > 1).then(|| m(seq - 1)).as_deref(), &m(seq)))
            .collect()
    }

    #[test]
    fn event_keys_must_be_one_to_n_without_gaps() {
        let keys: Vec<String> = (1..=3).map(|s| event_key("prod", s)).collect();
        fn refs(v: &[String]) -> Vec<&str> {
            v.iter().map(String::as_str).collect()
        }
        assert_eq!(check_event_keys("prod", refs(&keys)), Ok(3));
        assert_eq!(check_event_keys("prod", []), Ok(0));

        // A deleted middle event: the missing key is named.
        let gap = [keys[0].clone(), keys[2].clone()];
        let e = check_event_keys("prod", refs(&gap)).unwrap_err();
        assert_eq!(e.key, event_key("prod", 2));
        assert!(e.what.contains("gap") && e.what.contains(&keys[2]), "{e}");

        // Not an event name: unpadded, stray suffix, nested, another env.
        for stray in [
            "envs/prod/events/2.json",
            "envs/prod/events/0000000002.json.bak",
            "envs/prod/events/x/0000000002.json",
            "envs/prod/events/0000000002.JSON",
        ] {
            let v = [keys[0].clone(), stray.to_owned()];
            let e = check_event_keys("prod", refs(&v)).unwrap_err();
            assert_eq!(e.key, stray, "{e}");
        }
        // No wrap at the top of u64: a huge name is a gap, not an overflow.
        let huge = [event_key("prod", u64::MAX)];
        let e = check_event_keys("prod", refs(&huge)).unwrap_err();
        assert_eq!(e.key, event_key("prod", 1));
    }

    #[test]
    fn each_event_agrees_with_its_name_folder_and_predecessor() {
        let h = chain(3);
        assert_eq!(check_history("prod", &h, &digests(&h)), Ok(()));
        assert_eq!(check_history("prod", &[], &[]), Ok(()));

        let broken = |f: &dyn Fn(&mut Vec<Event>), key_seq: u64, says: &str| {
            let mut h = chain(3);
            f(&mut h);
            let e = check_history("prod", &h, &digests(&h)).unwrap_err();
            assert_eq!(e.key, event_key("prod", key_seq), "{e}");
            assert!(e.what.contains(says), "{says:?} not in {e}");
        };
        broken(&|h| h[1].seq = 3, 2, "says it is event 3");
        broken(&|h| h.swap(1, 2), 2, "says it is event 3");
        broken(&|h| h[2].seq = u64::MAX, 3, "event 18446744073709551615");
        broken(&|h| h[1].env = "dev".into(), 2, "\"dev\"");
        broken(&|h| h[0].to = "sha256:abc".into(), 1, "`to`");
        broken(&|h| h[0].to = id('A'), 1, "`to`");
        broken(&|h| h[2].from = Some("main".into()), 3, "`from`");
        broken(&|h| h[2].from = Some(id('f')), 3, "left it on");
        broken(&|h| h[2].from = None, 3, "ran nothing");
        broken(&|h| h[0].from = Some(id('f')), 1, "first event");
        broken(&|h| h[0].schema = "verbatim.event/v0".into(), 1, "schema");
        // Reasons and actors are free text: controls there are not integrity
        // problems (they are escaped when printed).
        let mut h = chain(2);
        h[1].reason = Some("ok\n#7 \x1b[31m".into());
        h[1].actor = "\u{9b}bot".into();
        assert_eq!(check_history("prod", &h, &digests(&h)), Ok(()));
    }

    /// Sets each event's `prev` (from `from` on, 0-based) to the digest of
    /// the one before it, as a writer does.
    fn link(h: &mut [Event], from: usize) {
        for i in from.max(1)..h.len() {
            h[i].prev = Some(Digest::of(&h[i - 1].to_bytes()).to_string());
        }
    }

    #[test]
    fn an_event_without_prev_keeps_its_bytes() {
        let mut e = ev(2, Some(&id('a')), &id('b'));
        let old = e.to_bytes();
        assert!(!String::from_utf8_lossy(&old).contains("prev"));
        e.prev = Some(Digest::of(b"event 1").to_string());
        let back: Event = serde_json::from_slice(&e.to_bytes()).unwrap();
        assert_eq!(back, e);
        e.prev = None;
        assert_eq!(e.to_bytes(), old);
        // The pointer does not carry it.
        let mut c = e.clone();
        c.prev = Some(id('f'));
        assert_eq!(c.pointer(), e.pointer());
    }

    #[test]
    fn a_history_is_a_hash_chain_which_may_start_late() {
        let mut h = chain(4);
        // Written before chaining: no `prev` anywhere.
        assert_eq!(check_history("prod", &h, &digests(&h)), Ok(()));
        assert_eq!(chain_start(&h), None);
        // Chained from event 3 on: events 2..=4 are covered.
        link(&mut h, 2);
        assert_eq!(check_history("prod", &h, &digests(&h)), Ok(()));
        assert_eq!(chain_start(&h), Some(2));
        // Chained throughout.
        let mut h = chain(4);
        link(&mut h, 1);
        assert_eq!(check_history("prod", &h, &digests(&h)), Ok(()));
        assert_eq!(chain_start(&h), Some(1));
        assert_eq!(chain_start(&h[..1]), None);
        // What is hashed is the bytes as stored, whatever their spelling.
        let mut h = chain(2);
        let stored = serde_json::to_vec_pretty(&h[0]).unwrap();
        h[1].prev = Some(Digest::of(&stored).to_string());
        let d = vec![Digest::of(&stored), Digest::of(&h[1].to_bytes())];
        assert_eq!(check_history("prod", &h, &d), Ok(()));
        let e = check_history("prod", &h, &digests(&h)).unwrap_err();
        assert_eq!(e.key, event_key("prod", 2), "{e}");
    }

    #[test]
    fn a_changed_removed_or_inserted_event_breaks_the_chain_after_it() {
        let linked = |n| {
            let mut h = chain(n);
            link(&mut h, 1);
            h
        };
        let broken = |h: &[Event], seq: u64, says: &[&str]| {
            let e = check_history("prod", h, &digests(h)).unwrap_err();
            assert_eq!(e.key, event_key("prod", seq), "{e}");
            for s in says {
                assert!(e.what.contains(s), "{s:?} not in {e}");
            }
        };
        // Changed: a free-text field of event 2, every other check passes.
        let mut h = linked(4);
        h[1].reason = Some("nothing to see".into());
        let was = Digest::of(&linked(4)[1].to_bytes()).to_string();
        let now = Digest::of(&h[1].to_bytes()).to_string();
        broken(
            &h,
            3,
            &[
                "its `prev` does not match event 2",
                &was,
                &now,
                &event_key("prod", 2),
                "event 2 was changed",
            ],
        );
        // Removed, the rest renumbered and re-linked by `from`.
        let mut h = linked(4);
        h.remove(1);
        for (i, e) in h.iter_mut().enumerate() {
            e.seq = i as u64 + 1;
        }
        h[1].from = Some(h[0].to.clone());
        broken(&h, 2, &["does not match event 1", "removed or inserted"]);
        // Inserted, with a `prev` linking it to the event before it.
        let mut h = linked(3);
        let mut planted = ev(2, Some(&h[0].to), &h[0].to);
        planted.prev = Some(Digest::of(&h[0].to_bytes()).to_string());
        h.insert(1, planted);
        for (i, e) in h.iter_mut().enumerate() {
            e.seq = i as u64 + 1;
        }
        broken(
            &h,
            3,
            &[
                "does not match event 2",
                "the sha256 of event 1",
                "event 2 was inserted after event 1",
            ],
        );
        // Two of them.
        let mut h = linked(3);
        let mut second = ev(3, Some(&h[0].to), &h[0].to);
        h.insert(1, h[1].clone());
        h[1].to = h[0].to.clone();
        link(&mut h[..2], 1);
        second.prev = Some(Digest::of(&h[1].to_bytes()).to_string());
        h.insert(2, second);
        for (i, e) in h.iter_mut().enumerate() {
            e.seq = i as u64 + 1;
        }
        h[3].from = Some(h[0].to.clone());
        broken(&h, 4, &["events 2–3 were inserted after event 1"]);
        // Inserted without one: after the first event, it looks written
        // before chaining, but the next link breaks; later, it cannot hide.
        let mut h = linked(3);
        h.insert(1, ev(2, Some(&h[0].to), &h[0].to));
        for (i, e) in h.iter_mut().enumerate() {
            e.seq = i as u64 + 1;
        }
        broken(&h, 3, &["does not match event 2"]);
        let mut h = linked(3);
        h.insert(2, ev(3, Some(&h[1].to), &h[1].to));
        for (i, e) in h.iter_mut().enumerate() {
            e.seq = i as u64 + 1;
        }
        broken(&h, 3, &["has no `prev`, but event 2 before it has one"]);
        // A `prev` removed once the chain started.
        let mut h = linked(4);
        h[3].prev = None;
        broken(&h, 4, &["has no `prev`, but event 3 before it has one"]);
        // The first event has nothing before it.
        let mut h = linked(2);
        h[0].prev = Some(id('a'));
        broken(&h, 1, &["is the first event, but its `prev`"]);
        // Not a digest.
        let mut h = linked(2);
        h[1].prev = Some(id('A'));
        broken(&h, 2, &["`prev` is", "not an event digest"]);
        // The first event at fault is named: the break at 3 (event 2
        // changed) before event 4's own fault.
        let mut h = linked(4);
        h[1].reason = Some("x".into());
        h[3].env = "dev".into();
        broken(&h, 3, &["does not match event 2"]);
    }

    #[test]
    fn manifests_named_once_each_with_the_first_event() {
        let mut h = chain(3);
        h.push(ev(4, Some(&h[2].to), &h[0].to));
        let named = manifests_named(&h);
        assert_eq!(named.len(), 3);
        assert_eq!(named[&strict_digest(&h[0].to).unwrap()], 1);
        assert_eq!(named[&strict_digest(&h[2].to).unwrap()], 3);
    }

    #[test]
    fn the_pointer_is_the_newest_event_or_one_step_behind() {
        let h = chain(3);
        let bytes = |i: usize| h[i].pointer().to_bytes();
        assert_eq!(check_pointer("prod", Some(&bytes(2)), &h), Ok(3));
        assert_eq!(check_pointer("prod", Some(&bytes(1)), &h), Ok(2));
        assert_eq!(check_pointer("prod", None, &[]), Ok(0));
        assert_eq!(check_pointer("prod", None, &h[..1]), Ok(0));

        let bad = |pointer: Option<&[u8]>, hist: &[Event], says: &str| {
            let e = check_pointer("prod", pointer, hist).unwrap_err();
            assert_eq!(e.key, pointer_key("prod"));
            assert!(e.what.contains(says), "{says:?} not in {e}");
        };
        bad(Some(&bytes(0)), &h, "never more than one move behind");
        bad(None, &h, "is missing");
        bad(Some(&bytes(2)), &[], "empty");
        bad(Some(b"{"), &h, "not a valid pointer");
        for seq in [7, u64::MAX] {
            let mut p = h[2].pointer();
            p.seq = seq;
            bad(
                Some(&p.to_bytes()),
                &h,
                &format!(
                    "says seq {seq}, but the newest event is {}",
                    event_key("prod", 3)
                ),
            );
        }
        let mut p = h[2].pointer();
        p.manifest = h[0].to.clone();
        bad(Some(&p.to_bytes()), &h, "is not what event 3");
        // Same fields, other bytes (reordered keys, whitespace): not byte for byte.
        let mut spaced = bytes(2);
        spaced.insert(1, b' ');
        bad(Some(&spaced), &h, "byte for byte");
    }

    #[test]
    fn strict_digests_only() {
        assert!(strict_digest(&id('a')).is_some());
        assert!(strict_digest(&id('a')[7..]).is_none());
        assert!(strict_digest(&id('A')).is_none());
        assert!(strict_digest(&format!("{} ", id('a'))).is_none());
    }

    fn checked(seq: u64, from: Option<&str>, to: &str, deadline: u64) -> Event {
        let mut e = ev(seq, from, to);
        e.check = Some(Check {
            cmd: Some("./smoke".into()),
            hosts: None,
            timeout_secs: 60,
            deadline: rfc3339(deadline),
        });
        e
    }

    fn record(e: &Event, outcome: Outcome) -> CheckRecord {
        CheckRecord {
            schema: CHECK_SCHEMA.into(),
            env: e.env.clone(),
            seq: e.seq,
            manifest: e.to.clone(),
            outcome,
            detail: "`./smoke` exited 0".into(),
            time: rfc3339(1),
        }
    }

    #[test]
    fn an_event_without_a_check_keeps_its_bytes() {
        let e = ev(1, None, &id('a'));
        let text = String::from_utf8(e.to_bytes()).unwrap();
        assert!(!text.contains("check"), "{text}");
        let c = checked(1, None, &id('a'), 100);
        let back: Event = serde_json::from_slice(&c.to_bytes()).unwrap();
        assert_eq!(back, c);
        // The pointer does not carry the check.
        assert_eq!(c.pointer(), e.pointer());
    }

    #[test]
    fn only_promotes_carry_a_check_with_a_valid_deadline() {
        let mut h = chain(2);
        h[1].check = checked(2, None, "x", 100).check;
        assert_eq!(check_history("prod", &h, &digests(&h)), Ok(()));
        h[1].kind = Kind::Rollback;
        let e = check_history("prod", &h, &digests(&h)).unwrap_err();
        assert!(e.what.contains("only a promote"), "{e}");
        h[1].kind = Kind::Promote;
        for bad in [
            "2026-02-30T00:00:00Z",
            "tomorrow",
            "2026-01-01 00:00:00Z",
            "",
        ] {
            h[1].check.as_mut().unwrap().deadline = bad.into();
            let e = check_history("prod", &h, &digests(&h)).unwrap_err();
            assert!(e.what.contains("check.deadline"), "{bad}: {e}");
        }
    }

    #[test]
    fn check_status_from_record_rollback_or_clock() {
        let (a, b) = (id('a'), id('b'));
        let h = [ev(1, None, &a), checked(2, Some(&a), &b, 100)];
        // No check: no status.
        assert_eq!(check_status(&h, 0, None, 0), None);
        assert_eq!(check_status(&h, 7, None, 0), None);
        // No outcome: pending until the deadline, expired from it on.
        assert_eq!(
            check_status(&h, 1, None, 99),
            Some((CheckStatus::Pending, None))
        );
        assert_eq!(
            check_status(&h, 1, None, 100),
            Some((CheckStatus::Expired, None))
        );
        // A record decides, whatever the clock says.
        let passed = record(&h[1], Outcome::Passed);
        let (s, detail) = check_status(&h, 1, Some(&passed), 1_000).unwrap();
        assert!(s.passed() && detail.unwrap().contains("exited 0"));
        let failed = record(&h[1], Outcome::Failed);
        assert_eq!(
            check_status(&h, 1, Some(&failed), 0).unwrap().0,
            CheckStatus::Failed
        );
        // An auto-rollback right after it, without a record: failed.
        let mut back = ev(3, Some(&b), &a);
        back.kind = Kind::AutoRollback;
        back.reason = Some("canary check failed: interrupted by SIGINT".into());
        let mut h2 = h.to_vec();
        h2.push(back.clone());
        let (s, detail) = check_status(&h2, 1, None, 0).unwrap();
        assert_eq!(s, CheckStatus::Failed);
        assert!(detail.unwrap().contains("SIGINT"));
        // A plain rollback after it says nothing about the check.
        back.kind = Kind::Rollback;
        h2[2] = back;
        assert_eq!(
            check_status(&h2, 1, None, 100).unwrap().0,
            CheckStatus::Expired
        );
    }

    #[test]
    fn the_canary_gate_lets_only_passed_checks_be_built_upon() {
        let (a, b) = (id('a'), id('b'));
        let plain = ev(1, None, &a);
        assert_eq!(canary_gate("prod", &plain, None), None);
        let live = checked(2, Some(&a), &b, 100);
        let g = canary_gate("prod", &live, Some(CheckStatus::Passed)).unwrap();
        assert!(g.ok && g.gate == "canary", "{g:?}");
        for (status, says) in [
            (CheckStatus::Pending, "may still be running"),
            (CheckStatus::Expired, "never finished"),
            (CheckStatus::Failed, "failed"),
        ] {
            let g = canary_gate("prod", &live, Some(status)).unwrap();
            assert!(!g.ok, "{g:?}");
            assert!(
                g.detail.contains(says)
                    && g.detail.contains("verbatim rollback prod")
                    && g.detail.contains("--force")
                    && g.detail.contains(&b),
                "{g:?}"
            );
        }
    }

    #[test]
    fn check_records_agree_with_their_key_and_event() {
        let (a, b) = (id('a'), id('b'));
        let h = [ev(1, None, &a), checked(2, Some(&a), &b, 100)];
        let good = record(&h[1], Outcome::Passed);
        assert_eq!(check_record("prod", 2, &good, Some(&h[1])), Ok(()));
        let back = CheckRecord::parse("k", &good.to_bytes()).unwrap();
        assert_eq!(back, good);
        assert!(CheckRecord::parse("k", b"{}").is_err());

        let bad = |f: &dyn Fn(&mut CheckRecord), seq: u64, event: Option<&Event>, says: &str| {
            let mut r = good.clone();
            f(&mut r);
            let e = check_record("prod", seq, &r, event).unwrap_err();
            assert_eq!(e.key, check_key("prod", seq));
            assert!(e.what.contains(says), "{says:?} not in {e}");
        };
        bad(&|r| r.schema = "x".into(), 2, Some(&h[1]), "schema");
        bad(&|r| r.seq = 3, 2, Some(&h[1]), "file name says 2");
        bad(&|r| r.env = "dev".into(), 2, Some(&h[1]), "\"dev\"");
        bad(&|r| r.manifest = a.clone(), 2, Some(&h[1]), "moved prod to");
        bad(&|r| r.seq = 1, 1, Some(&h[0]), "started none");
        bad(&|r| r.seq = 9, 9, None, "does not exist");

        let keys = [check_key("prod", 2), check_key("prod", 10)];
        assert_eq!(
            check_record_seqs("prod", keys.iter().map(String::as_str)),
            Ok(vec![2, 10])
        );
        for stray in [
            "envs/prod/checks/2.json",
            "envs/prod/checks/0000000002.json.tmp",
            "envs/prod/checks/x/0000000002.json",
        ] {
            let e = check_record_seqs("prod", [stray]).unwrap_err();
            assert_eq!(e.key, stray);
        }
    }

    #[test]
    fn undeclared_environments_suggest_the_nearest() {
        let order: Vec<String> = ["dev", "preprod", "prod"].map(String::from).to_vec();
        assert_eq!(closest("prd", &order), Some("prod"));
        assert_eq!(closest("pre-prod", &order), Some("preprod"));
        assert_eq!(closest("staging", &order), None);
        assert!(undeclared(&order, "prd").ends_with("did you mean `prod`?"));
        assert!(!undeclared(&order, "qa").contains("did you mean"));
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }
}
