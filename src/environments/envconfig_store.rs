//! An environment's config in the store: reading its log (checked like
//! every log, through [`Reader::load_log`]: a gap, a broken hash chain, an
//! event whose `to` does not follow, or a pointer other than the newest
//! event's is refused, exit 5) and appending to it by the logs' protocol:
//! create event `n + 1` (create-only: of two writers exactly one wins),
//! sign it when asked, then compare-and-swap `envs/<env>/config.json`.
//! The newest event is the config in effect; a pointer left one step
//! behind by a crash is completed by the next writer.

use anyhow::{Context, Result};

use super::envconfig::{self, ConfigEvent, ConfigPointer, Kind, Values};
use super::log::Inconsistent;
use super::reader::{append_entry, get_record, put_log_pointer, Appended, Reader};
use super::signatures::sign_config_event;
use crate::actor::actor;
use crate::clock::{now, rfc3339};
use crate::digest::Digest;
use crate::error::{IntegrityError, LostRace};
use crate::store::{ETag, Key, StoreError};

/// An environment's config log as stored, checked.
#[derive(Debug)]
pub struct ConfigState {
    /// The environment.
    pub env: String,
    /// Every event, oldest first: `events[i].seq == i + 1`.
    pub events: Vec<ConfigEvent>,
    /// The sha256 of each event's stored bytes.
    pub digests: Vec<Digest>,
    /// `envs/<env>/config.json` and its ETag.
    pub pointer: Option<(ConfigPointer, ETag)>,
    /// How many events the pointer has applied: all, or all but the newest.
    pub applied: usize,
}

impl ConfigState {
    /// The event in effect: the newest (creating it decided the race).
    pub fn current(&self) -> Option<&ConfigEvent> {
        self.events.last()
    }

    /// The config in effect; `None` when the environment never had one.
    pub fn values(&self) -> Option<&Values> {
        self.current().map(|e| &e.to)
    }

    /// The newest event, when the pointer has not caught up with it.
    pub fn pending(&self) -> Option<&ConfigEvent> {
        self.events.get(self.applied)
    }

    /// The sha256 of the newest event as stored.
    pub fn head(&self) -> Option<Digest> {
        self.digests.last().copied()
    }

    fn next_seq(&self) -> Result<u64> {
        u64::try_from(self.events.len())
            .ok()
            .and_then(|n| n.checked_add(1))
            .ok_or_else(|| {
                IntegrityError(format!(
                    "{}: the config log is full",
                    envconfig::events_prefix(&self.env)
                ))
                .into()
            })
    }
}

/// Reads and checks `env`'s config log and pointer (exit 5 naming the key
/// at fault when anything does not add up).
pub fn load(reader: &Reader<'_>, env: &str) -> Result<ConfigState> {
    let log = envconfig::log(env);
    let refuse = |e: Inconsistent| -> anyhow::Error {
        IntegrityError(format!(
            "refusing to rely on the config of {env}: {e} (the store was altered outside verbatim: inspect it)"
        ))
        .into()
    };
    let loaded = reader.load_log::<ConfigEvent>(&log, &refuse)?;
    let pointer = match loaded.pointer {
        Some((bytes, etag)) => Some((
            ConfigPointer::parse(&log.pointer_key, &bytes).map_err(refuse)?,
            etag,
        )),
        None => None,
    };
    Ok(ConfigState {
        env: env.to_owned(),
        events: loaded.events,
        digests: loaded.digests,
        pointer,
        applied: loaded.applied,
    })
}

/// [`load`], completing a pointer left one step behind its newest event.
pub fn settled(reader: &Reader<'_>, env: &str) -> Result<ConfigState> {
    for _ in 0..100 {
        let state = load(reader, env)?;
        let Some(pending) = state.pending() else {
            return Ok(state);
        };
        let etag = state.pointer.as_ref().map(|(_, e)| e.clone());
        match put_log_pointer(
            reader,
            &envconfig::log(env),
            &pending.pointer().to_bytes(),
            etag,
        ) {
            Ok(())
            | Err(StoreError::PreconditionFailed { .. } | StoreError::AlreadyExists { .. }) => {}
            Err(e) => {
                return Err(e).with_context(|| {
                    format!("completing {}", envconfig::log(env).event_key(pending.seq))
                })
            }
        }
    }
    Err(LostRace(format!("the config of {env} keeps changing; try again")).into())
}

/// The stored bytes of the event in effect, checked against the digest
/// the load took of them; `None` when there is none.
pub fn stored_current(reader: &Reader<'_>, state: &ConfigState) -> Result<Option<Vec<u8>>> {
    let Some(current) = state.current() else {
        return Ok(None);
    };
    let key = Key::new(envconfig::log(&state.env).event_key(current.seq))?;
    get_record(reader.store(), &key)?
        .map(|(b, _)| b)
        .filter(|b| Some(Digest::of(b)) == state.head())
        .map(Some)
        .ok_or_else(|| IntegrityError(format!("{key} changed while it was read")).into())
}

/// One change to append.
pub struct Change {
    /// How it came about.
    pub kind: Kind,
    /// Keys to set.
    pub set: Values,
    /// Keys to remove.
    pub unset: Vec<String>,
    /// For a rollback: the event whose config it restores.
    pub rollback_to: Option<u64>,
    /// Why.
    pub reason: Option<String>,
}

/// Appends `change` after the settled `state`: event `n + 1`
/// (create-only), signed with `sign` before the pointer moves, then the
/// pointer (compare-and-swap). The change was checked by the caller; the
/// event is checked again here as a reader would check it.
pub fn append(
    reader: &Reader<'_>,
    state: &ConfigState,
    change: Change,
    sign: Option<&ssh_key::PrivateKey>,
) -> Result<Appended<ConfigEvent>> {
    let env = &state.env;
    let log = envconfig::log(env);
    let store = reader.store();
    let seq = state.next_seq()?;
    let from = state.values().cloned().unwrap_or_default();
    let event = ConfigEvent {
        schema: envconfig::EVENT_SCHEMA.into(),
        env: env.clone(),
        seq,
        kind: change.kind,
        time: rfc3339(now()),
        actor: actor(),
        to: envconfig::apply(&from, &change.set, &change.unset),
        set: change.set,
        unset: change.unset,
        rollback_to: change.rollback_to,
        reason: change.reason,
        prev: state.head().map(|d| d.to_string()),
    };
    super::log::Entry::check(&event, &log, seq, state.current())
        .map_err(|e| anyhow::anyhow!("the change would not hold: {}", e.what))?;
    let bytes = event.to_bytes();
    let etag = state.pointer.as_ref().map(|(_, e)| e.clone());
    append_entry(
        reader,
        &log,
        (seq, event, &bytes),
        etag,
        |bytes| match sign {
            Some(k) => sign_config_event(store, env, seq, bytes, k)
                .with_context(|| format!("signing config event {seq} of {env}")),
            None => Ok(()),
        },
        || Ok(load(reader, env)?.applied as u64),
        "config event",
    )
}
