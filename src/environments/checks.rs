//! Canary checks as the store records them: the check a promote event
//! starts, the create-only record of how it ended, where a check stands by
//! the clock it is handed, and the `canary` gate that refuses a promote on
//! top of a manifest whose check did not pass. Pure: no I/O, no clock of
//! its own.

use super::event::{
    check_key, checks_prefix, event_key, CheckRecord, CheckState, CheckStatus, Event, Gate, Kind,
    Outcome, CHECK_SCHEMA,
};
use super::log::{inconsistent, seq_in, Inconsistent};
use crate::clock::parse_rfc3339;

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

/// How a check's state reads in a sentence.
pub fn status_words(status: CheckStatus) -> &'static str {
    match status {
        CheckStatus::Pending => "not finished (it may still be running)",
        CheckStatus::Expired => "never finished (its deadline passed)",
        CheckStatus::Passed => "passed",
        CheckStatus::Failed => "failed",
    }
}
