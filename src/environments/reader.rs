//! Reading an environment: its events and pointer, cross-checked before
//! anything relies on them.
//!
//! Every command that reads a history or a pointer (`promote`, `rollback`,
//! settling a half-done move, the order gate's look at the environment
//! before, `status`, `history`, an environment named as a `<manifest>`) gets
//! them from [`Reader::load`]. It fails closed: an event whose file name,
//! `seq`, position or folder disagree, a gap, a `from` that is not the `to`
//! before it, a `prev` that is not the sha256 of the event before it as
//! stored (the hash chain: an event changed, removed or inserted), a
//! manifest that is not in the store, or a pointer that is neither the
//! newest event's nor one step behind it, is an integrity error (exit 5)
//! naming the first key at fault, and nothing is written. The checks are
//! the pure ones of `log`, `event` and `checks`; this module only fetches,
//! and hashes each event's bytes exactly as read. The policy
//! (`policy_store`) is a log of the same shape, read and checked by the
//! same [`Reader::load_log`].
//!
//! When the move that made the live manifest started a canary check, the
//! load also reads how that check ended (`envs/<env>/checks/<seq>.json`, if
//! it is there) and checks it against its event; [`Reader::check_records`]
//! reads them all for `history`.
//!
//! What a load costs: one LIST of the events, one GET of the pointer, one GET
//! per event not already read in this run and one HEAD per manifest not
//! already seen in this run, both in parallel, and one GET of the live
//! move's check record when it started a check and none was found yet.
//! Events are immutable, so a second load in the same run (after settling, for the gate, after losing a
//! compare-and-swap) costs the LIST and the pointer only.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::Read;
use std::sync::Mutex;

use anyhow::{Context, Result};
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::checks::{check_record, check_record_seqs, check_status};
use super::envconfig::ConfigEvent;
use super::event::{
    check_key, checks_prefix, event_key, events_prefix, manifests_named, CheckRecord, CheckState,
    Event, Pointer,
};
use super::log::{
    chain_start, check_log, check_log_keys, check_log_pointer, inconsistent, Entry, Inconsistent,
    Log,
};
use super::policy::{PolicyEvent, PolicyPin};
use crate::config::check_env_name;
use crate::digest::Digest;
use crate::error::{IntegrityError, LostRace, UsageError};
use crate::manifest;
use crate::par;
use crate::progress::Progress;
use crate::store::{Body, ETag, Key, PutMode, PutOptions, Store, StoreError};

/// The most an event or a pointer may weigh. Real ones are a few hundred
/// bytes; `--reason` and the actor are bounded by the OS's argument and
/// variable limits (128 KiB each on Linux).
pub const MAX_RECORD_BYTES: u64 = 1 << 20;

/// Times the pointer may be seen ahead of a fresh listing (moves landing
/// while we read) before giving up.
const RELIST_ATTEMPTS: usize = 20;

/// An environment as stored, checked.
#[derive(Debug)]
pub struct EnvState {
    /// The environment's name.
    pub env: String,
    /// Every event, oldest first: `events[i].seq == i + 1`.
    pub events: Vec<Event>,
    /// The sha256 of each event's stored bytes: `digests[i]` of `events[i]`.
    pub digests: Vec<Digest>,
    /// The pointer and its ETag; equal to what `events[applied - 1]` sets.
    pub pointer: Option<(Pointer, ETag)>,
    /// How many events the pointer has applied: all, or all but the newest
    /// (a move whose pointer write has not happened yet).
    pub applied: usize,
    /// How the canary check of the live move ended, when it started one and
    /// its record is stored.
    pub check: Option<CheckRecord>,
}

impl EnvState {
    /// The events the pointer has applied: what was live, and when.
    pub fn applied(&self) -> &[Event] {
        &self.events[..self.applied]
    }

    /// The newest event, when the pointer has not caught up with it.
    pub fn pending(&self) -> Option<&Event> {
        self.events.get(self.applied)
    }

    /// The manifest the pointer names.
    pub fn live(&self) -> Option<&str> {
        self.pointer.as_ref().map(|(p, _)| p.manifest.as_str())
    }

    /// The move that made the live manifest live, if any.
    pub fn live_event(&self) -> Option<&Event> {
        self.applied.checked_sub(1).map(|i| &self.events[i])
    }

    /// Where the canary check of the live move stands at `now` (seconds
    /// since the epoch), with its detail; `None` when it started none.
    pub fn live_check(&self, now: u64) -> Option<CheckState> {
        let i = self.applied.checked_sub(1)?;
        check_status(&self.events, i, self.check.as_ref(), now)
    }

    /// The `prev` of the next event: the digest of the newest one as stored.
    pub fn head(&self) -> Option<String> {
        self.digests.last().map(Digest::to_string)
    }

    /// The sequence number of the pointer (0 before the first move).
    pub fn seq(&self) -> u64 {
        self.pointer.as_ref().map_or(0, |(p, _)| p.seq)
    }

    /// The sequence number the next event gets.
    pub fn next_seq(&self) -> Result<u64> {
        u64::try_from(self.events.len())
            .ok()
            .and_then(|n| n.checked_add(1))
            .ok_or_else(|| {
                IntegrityError(format!(
                    "{}: the history of {} is full; no sequence number is left",
                    events_prefix(&self.env),
                    self.env
                ))
                .into()
            })
    }
}

/// Reads environments (and the policy, `policy_store`) from one store,
/// remembering within a run what cannot change: events (create-only) and
/// the presence of manifests (never deleted).
pub struct Reader<'a> {
    store: &'a dyn Store,
    threads: usize,
    /// Events read or written, with the sha256 of their stored bytes.
    events: Mutex<HashMap<Key, (Event, Digest)>>,
    policy_events: Mutex<HashMap<Key, (PolicyEvent, Digest)>>,
    config_events: Cache<ConfigEvent>,
    present: Mutex<BTreeSet<Digest>>,
    /// Check records read (create-only, so they never change once there).
    checks: Mutex<HashMap<Key, CheckRecord>>,
    /// Who must have signed the policy in effect (`--policy-signers`).
    pin: Option<PolicyPin>,
    /// Told of every move and failed host (`observe`).
    observers: Vec<&'a dyn Observer>,
}

/// Where a [`Reader`] remembers the events of one type, each with the
/// sha256 of its stored bytes.
pub type Cache<E> = Mutex<HashMap<Key, (E, Digest)>>;

/// An event type [`Reader::load_log`] can read: parsed from JSON, checked by
/// the shared [`Entry`] rules, remembered in its own cache.
pub trait Stored: Entry + DeserializeOwned + Clone + Send + Sync {
    /// Where the reader remembers events of this type.
    fn cache<'r>(reader: &'r Reader<'_>) -> &'r Cache<Self>;
}

impl Stored for Event {
    fn cache<'r>(reader: &'r Reader<'_>) -> &'r Cache<Self> {
        &reader.events
    }
}

impl Stored for PolicyEvent {
    fn cache<'r>(reader: &'r Reader<'_>) -> &'r Cache<Self> {
        &reader.policy_events
    }
}

impl Stored for ConfigEvent {
    fn cache<'r>(reader: &'r Reader<'_>) -> &'r Cache<Self> {
        &reader.config_events
    }
}

/// A log as stored, checked: every event oldest first (`events[i]` is event
/// `i + 1`) and the sha256 of its stored bytes (`digests[i]`), the
/// pointer's bytes and ETag, and how many events the pointer has applied.
pub struct Loaded<E> {
    /// Every event, oldest first.
    pub events: Vec<E>,
    /// The sha256 of each event's bytes as read: `digests[i]` of `events[i]`.
    pub digests: Vec<Digest>,
    /// The pointer's bytes as read and its ETag; `None` when there is no
    /// pointer yet.
    pub pointer: Option<(Vec<u8>, ETag)>,
    /// How many events the pointer has applied: all, or all but the newest.
    pub applied: usize,
}

impl<'a> Reader<'a> {
    /// A reader making up to `threads` requests at once.
    pub fn new(store: &'a dyn Store, threads: usize) -> Reader<'a> {
        Reader {
            store,
            threads: threads.max(1),
            events: Mutex::new(HashMap::new()),
            policy_events: Mutex::new(HashMap::new()),
            config_events: Mutex::new(HashMap::new()),
            present: Mutex::new(BTreeSet::new()),
            checks: Mutex::new(HashMap::new()),
            pin: None,
            observers: Vec::new(),
        }
    }

    /// The same reader, telling `observer` of every move made and every
    /// failed host seen through it ([`Notice`]).
    pub fn observe(mut self, observer: &'a dyn Observer) -> Reader<'a> {
        self.observers.push(observer);
        self
    }

    /// Tells every observer of `notice`.
    pub fn tell(&self, notice: &Notice<'_>, progress: &dyn Progress) {
        for o in &self.observers {
            o.notice(self, notice, progress);
        }
    }

    /// The same reader, refusing a policy not signed by a key of `pin`.
    pub fn pin_policy(mut self, pin: Option<PolicyPin>) -> Reader<'a> {
        self.pin = pin;
        self
    }

    /// The policy's trust root, when one was given.
    pub fn policy_pin(&self) -> Option<&PolicyPin> {
        self.pin.as_ref()
    }

    /// The store it reads.
    pub fn store(&self) -> &'a dyn Store {
        self.store
    }

    /// Records a manifest known to be stored (one just read, say).
    pub fn mark_present(&self, id: Digest) {
        if let Ok(mut p) = self.present.lock() {
            p.insert(id);
        }
    }

    /// Records an event this run created in `log` (`bytes`, exactly as
    /// stored), so it is not read back.
    pub fn remember<E: Stored>(&self, log: &Log, seq: u64, event: &E, bytes: &[u8]) -> Result<()> {
        let key = Key::new(log.event_key(seq))?;
        if let Ok(mut cache) = E::cache(self).lock() {
            cache.insert(key, (event.clone(), Digest::of(bytes)));
        }
        Ok(())
    }

    /// Reads and checks `env`'s history and pointer (see the module docs).
    pub fn load(&self, env: &str) -> Result<EnvState> {
        check_env_name(env).map_err(UsageError)?;
        let log = Log::env(env);
        let refuse = |e: Inconsistent| -> anyhow::Error {
            IntegrityError(format!(
                "refusing to rely on the history of {env}: {e} (the store was altered outside verbatim: inspect it)"
            ))
            .into()
        };
        let loaded = self.load_log::<Event>(&log, &refuse)?;
        self.check_manifests(env, &loaded.events)
            .map_err(|e| e.map(refuse))?;
        let pointer = match loaded.pointer {
            Some((bytes, etag)) => Some((
                Pointer::parse(&log.pointer_key, &bytes).map_err(refuse)?,
                etag,
            )),
            None => None,
        };
        let (events, digests, applied) = (loaded.events, loaded.digests, loaded.applied);
        let check = match applied.checked_sub(1).map(|i| &events[i]) {
            Some(live) if live.check.is_some() => self
                .read_check(env, live.seq, Some(live))
                .map_err(|e| e.map(refuse))?,
            _ => None,
        };
        Ok(EnvState {
            env: env.to_owned(),
            events,
            digests,
            pointer,
            applied,
            check,
        })
    }

    /// Reads and checks any log: its events, their hash chain and its
    /// pointer, by the shared rules ([`check_log`],
    /// [`check_log_pointer`]); `refuse` turns what disagrees into the
    /// caller's error.
    pub fn load_log<E: Stored>(
        &self,
        log: &Log,
        refuse: &dyn Fn(Inconsistent) -> anyhow::Error,
    ) -> Result<Loaded<E>> {
        let pointer_key = Key::new(log.pointer_key.clone())?;
        // List first, then read the pointer: a pointer only moves to an
        // event that exists, so one read after the listing is at most one
        // step behind it, and one ahead of it means a move landed meanwhile
        // (list again) or the pointer lies (the new listing does not reach it).
        let mut listed = self.list_events(log).map_err(|e| e.map(refuse))?;
        let mut attempts = 0;
        let pointer = loop {
            let pointer = self.get_record(&pointer_key)?;
            let seq = match &pointer {
                Some((bytes, _)) => E::pointer_seq(bytes)
                    .map_err(|what| refuse(inconsistent(pointer_key.as_str(), what)))?,
                None => 0,
            };
            if seq <= listed.len() as u64 {
                break pointer;
            }
            let again = self.list_events(log).map_err(|e| e.map(refuse))?;
            if (again.len() as u64) < seq {
                // check_log_pointer below names what disagrees.
                listed = again;
                break pointer;
            }
            attempts += 1;
            if attempts >= RELIST_ATTEMPTS {
                return Err(LostRace(format!(
                    "{} keeps moving while being read; try again",
                    log.name
                ))
                .into());
            }
            listed = again;
        };

        let (events, digests) = self.read_events::<E>(&listed)?;
        check_log(log, &events, &digests).map_err(refuse)?;
        let applied = check_log_pointer(
            log,
            pointer.as_ref().map(|(bytes, _)| bytes.as_slice()),
            &events,
        )
        .map_err(refuse)?;
        Ok(Loaded {
            events,
            digests,
            pointer,
            applied,
        })
    }

    /// Every check record of a loaded environment, by the sequence number
    /// of the event that started the check; each is checked against it.
    pub fn check_records(&self, state: &EnvState) -> Result<BTreeMap<u64, CheckRecord>> {
        let env = &state.env;
        let refuse = |e: Inconsistent| -> anyhow::Error {
            IntegrityError(format!(
                "refusing to rely on the canary checks of {env}: {e} (the store was altered outside verbatim: inspect it)"
            ))
            .into()
        };
        let listed = self
            .store
            .list(&checks_prefix(env))
            .with_context(|| format!("listing the canary checks of {env}"))?;
        let seqs = check_record_seqs(env, listed.iter().map(|l| l.key.as_str())).map_err(refuse)?;
        let event = |seq: u64| {
            usize::try_from(seq)
                .ok()
                .and_then(|s| s.checked_sub(1))
                .and_then(|i| state.events.get(i))
        };
        let results = par::try_map(&seqs, self.threads, |&seq| {
            self.read_check(env, seq, event(seq))
                .map_err(|e| e.map(refuse))
        });
        let mut out = BTreeMap::new();
        for (&seq, r) in seqs.iter().zip(results) {
            let r = r.ok_or_else(|| anyhow::anyhow!("check record {seq} of {env}: not read"))??;
            if let Some(record) = r {
                out.insert(seq, record);
            }
        }
        Ok(out)
    }

    /// The check record of event `seq` (`event`, if it exists), checked
    /// against it; `None` if absent.
    fn read_check(
        &self,
        env: &str,
        seq: u64,
        event: Option<&Event>,
    ) -> Result<Option<CheckRecord>, Fail> {
        let key = Key::new(check_key(env, seq)).map_err(anyhow::Error::from)?;
        let cached = self.checks.lock().ok().and_then(|c| c.get(&key).cloned());
        let record = match cached {
            Some(r) => r,
            None => {
                let Some((bytes, _)) = self.get_record(&key)? else {
                    return Ok(None);
                };
                CheckRecord::parse(key.as_str(), &bytes)?
            }
        };
        check_record(env, seq, &record, event)?;
        if let Ok(mut c) = self.checks.lock() {
            c.insert(key, record.clone());
        }
        Ok(Some(record))
    }

    /// The event keys of `log` with their listed sizes, checked to be
    /// `1..=n` without gaps.
    fn list_events(&self, log: &Log) -> Result<Vec<(Key, u64)>, Fail> {
        let listed = self
            .store
            .list(&log.events_prefix)
            .with_context(|| format!("listing the history of {}", log.name))?;
        check_log_keys(log, listed.iter().map(|l| l.key.as_str()))?;
        Ok(listed.into_iter().map(|l| (l.key, l.size)).collect())
    }

    /// The events at `keys`, in order, from the cache or the store, each
    /// with the sha256 of its bytes exactly as stored (what the next
    /// event's `prev` names).
    fn read_events<E: Stored>(&self, keys: &[(Key, u64)]) -> Result<(Vec<E>, Vec<Digest>)> {
        let cached = |key: &Key| E::cache(self).lock().ok()?.get(key).cloned();
        let results = par::try_map(keys, self.threads, |(key, size)| {
            if let Some(e) = cached(key) {
                return Ok(e);
            }
            if *size > MAX_RECORD_BYTES {
                return Err(IntegrityError(format!(
                    "{key}: {size} bytes, more than an event ever holds ({MAX_RECORD_BYTES}); refusing to read it"
                ))
                .into());
            }
            let (bytes, _) = self.get_record(key)?.ok_or_else(|| {
                IntegrityError(format!(
                    "{key}: listed but gone; events are never deleted (tampering?)"
                ))
            })?;
            let e: E = serde_json::from_slice(&bytes)
                .map_err(|e| IntegrityError(format!("{key}: not a valid event ({e})")))?;
            Ok::<_, anyhow::Error>((e, Digest::of(&bytes)))
        });
        let mut read = Vec::with_capacity(keys.len());
        for ((key, _), r) in keys.iter().zip(results) {
            let e =
                r.ok_or_else(|| anyhow::anyhow!("{key}: not read (an earlier read failed)"))??;
            read.push(e);
        }
        if let Ok(mut cache) = E::cache(self).lock() {
            for ((key, _), e) in keys.iter().zip(&read) {
                cache.entry(key.clone()).or_insert_with(|| e.clone());
            }
        }
        Ok(read.into_iter().unzip())
    }

    /// One HEAD per manifest the history names that this run has not seen.
    fn check_manifests(&self, env: &str, events: &[Event]) -> Result<(), Fail> {
        let known = self.present.lock().map(|p| p.clone()).unwrap_or_default();
        let mut todo: Vec<(Digest, u64)> = manifests_named(events)
            .into_iter()
            .filter(|(d, _)| !known.contains(d))
            .collect();
        todo.sort_by_key(|&(_, seq)| seq);
        let results = par::try_map(&todo, self.threads, |(d, _)| {
            let key = Key::new(manifest::key_for(d))?;
            self.store
                .head(&key)
                .with_context(|| format!("checking that {key} exists"))
        });
        for ((d, seq), r) in todo.iter().zip(results) {
            match r {
                Some(Ok(Some(_))) => self.mark_present(*d),
                Some(Ok(None)) => {
                    return Err(Fail::Bad(Inconsistent {
                        key: event_key(env, *seq),
                        what: format!(
                            "names manifest {d}, which is not in the store ({} is missing)",
                            manifest::key_for(d)
                        ),
                    }))
                }
                Some(Err(e)) => return Err(Fail::Io(e)),
                None => {}
            }
        }
        Ok(())
    }

    /// A small JSON record (an event or a pointer), read up to
    /// [`MAX_RECORD_BYTES`]; `None` if absent.
    fn get_record(&self, key: &Key) -> Result<Option<(Vec<u8>, ETag)>> {
        get_record(self.store, key)
    }
}

/// What `history --verify` (and `policy history --verify`) found in a log
/// that loaded, i.e. whose chain held: printed as `verified` with `--json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Verified {
    /// How many events the log holds.
    pub events: u64,
    /// Always true: a broken chain exits 5 instead.
    pub intact: bool,
    /// The first event the hash chain covers (the one the oldest `prev`
    /// names); `null` when no event carries a `prev` (a history written
    /// before chaining, or a single event).
    pub chained_from: Option<u64>,
    /// The sha256 of the newest event as stored: the `prev` of the next.
    /// Kept elsewhere, it anchors the chain's head.
    pub head: Option<String>,
}

impl Verified {
    /// The verdict on a loaded log's events and their stored digests.
    pub fn of<E: Entry>(events: &[E], digests: &[Digest]) -> Verified {
        Verified {
            events: events.len() as u64,
            intact: true,
            chained_from: chain_start(events),
            head: digests.last().map(Digest::to_string),
        }
    }

    /// One line: `prod: 12 events, hash chain intact over events 1–12; newest sha256:…`.
    pub fn verdict(&self, name: &str) -> String {
        let n = self.events;
        let head = self.head.as_deref().unwrap_or("");
        match (n, self.chained_from) {
            (0, _) => format!("{name}: no events, nothing to verify"),
            (1, _) => format!(
                "{name}: 1 event, hash chain intact (the first event; the next links to it); newest {head}"
            ),
            (_, None) => format!(
                "{name}: {n} events, written before hash chaining (none carries `prev`): nothing to verify; the next event starts the chain; newest {head}"
            ),
            (_, Some(1)) => {
                format!("{name}: {n} events, hash chain intact over events 1–{n}; newest {head}")
            }
            (_, Some(s)) => {
                let before = match s - 1 {
                    1 => "event 1".to_owned(),
                    b => format!("events 1–{b}"),
                };
                format!(
                    "{name}: {n} events, hash chain intact over events {s}–{n} ({before} written before chaining, not covered); newest {head}"
                )
            }
        }
    }
}

/// A small JSON record (an event or a pointer), read up to
/// [`MAX_RECORD_BYTES`] and refused beyond; `None` if absent.
pub fn get_record(store: &dyn Store, key: &Key) -> Result<Option<(Vec<u8>, ETag)>> {
    let object = match store.get(key) {
        Ok(o) => o,
        Err(StoreError::NotFound { .. }) => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("reading {key}")),
    };
    let etag = object.meta.etag.clone();
    let mut bytes = Vec::new();
    object
        .reader
        .take(MAX_RECORD_BYTES + 1)
        .read_to_end(&mut bytes)
        .with_context(|| format!("reading {key}"))?;
    if bytes.len() as u64 > MAX_RECORD_BYTES {
        return Err(IntegrityError(format!(
            "{key}: more than {MAX_RECORD_BYTES} bytes, more than an event or pointer ever holds; refusing it"
        ))
        .into());
    }
    Ok(Some((bytes, etag)))
}

/// A failed check, or a failure to look.
enum Fail {
    Bad(Inconsistent),
    Io(anyhow::Error),
}

impl Fail {
    fn map(self, refuse: impl Fn(Inconsistent) -> anyhow::Error) -> anyhow::Error {
        match self {
            Fail::Bad(e) => refuse(e),
            Fail::Io(e) => e,
        }
    }
}

impl From<Inconsistent> for Fail {
    fn from(e: Inconsistent) -> Fail {
        Fail::Bad(e)
    }
}

impl From<anyhow::Error> for Fail {
    fn from(e: anyhow::Error) -> Fail {
        Fail::Io(e)
    }
}

/// How appending to a log ended (`append_entry`: the policy and config logs).
pub enum Appended<E> {
    /// Event `n + 1` is ours, and the pointer names it.
    Written(E),
    /// Another writer created event `n + 1` first; theirs, if readable.
    Lost(Option<E>),
}

/// Puts a log's pointer: create-only when there is none (`expected`
/// `None`), else compare-and-swap from `expected`.
pub(crate) fn put_log_pointer(
    reader: &Reader<'_>,
    log: &Log,
    pointer: &[u8],
    expected: Option<ETag>,
) -> Result<(), StoreError> {
    let key = Key::new(log.pointer_key.clone())?;
    let mode = match expected {
        Some(etag) => PutMode::ReplaceIfMatch(etag),
        None => PutMode::CreateOnly,
    };
    reader
        .store()
        .put(&key, Body::bytes(pointer), mode, &PutOptions::json())
        .map(|_| ())
}

/// The log protocol's write: `event` (event `seq` of `log`, stored as
/// `bytes`) created create-only, so of racing writers one wins;
/// remembered; signed by `sign` before the pointer moves; then the
/// pointer the event sets swapped from `expected`. A lost swap
/// stands when `applied` says the log has applied `seq` since (someone
/// completed the change for us); else it is a lost race naming `what`.
pub(crate) fn append_entry<E: Stored>(
    reader: &Reader<'_>,
    log: &Log,
    (seq, event, bytes): (u64, E, &[u8]),
    expected: Option<ETag>,
    sign: impl FnOnce(&[u8]) -> Result<()>,
    applied: impl Fn() -> Result<u64>,
    what: &str,
) -> Result<Appended<E>> {
    let key = Key::new(log.event_key(seq))?;
    let store = reader.store();
    let pointer = event.pointer_bytes();
    match store.put(
        &key,
        Body::bytes(bytes),
        PutMode::CreateOnly,
        &PutOptions::json(),
    ) {
        Ok(_) => {
            reader.remember(log, seq, &event, bytes)?;
            sign(bytes)?;
        }
        Err(StoreError::AlreadyExists { .. }) => {
            let winner = get_record(store, &key)
                .ok()
                .flatten()
                .and_then(|(bytes, _)| serde_json::from_slice(&bytes).ok());
            return Ok(Appended::Lost(winner));
        }
        Err(e) => return Err(e).with_context(|| format!("recording {key}")),
    }
    match put_log_pointer(reader, log, &pointer, expected) {
        Ok(()) => Ok(Appended::Written(event)),
        Err(StoreError::PreconditionFailed { .. } | StoreError::AlreadyExists { .. })
            if applied()? >= seq =>
        {
            Ok(Appended::Written(event))
        }
        Err(StoreError::PreconditionFailed { .. } | StoreError::AlreadyExists { .. }) => {
            Err(LostRace(format!(
                "{} moved while {what} {seq} was being applied",
                log.pointer_key
            ))
            .into())
        }
        Err(e) => Err(e).with_context(|| format!("moving {}", log.pointer_key)),
    }
}

// What environments tell their observers; `observe` is where rooms
// above find it.

/// Something that happened to an environment.
#[derive(Debug, Clone, Copy)]
pub enum Notice<'a> {
    /// Event `event` is stored, and the pointer applies it: a promote, a
    /// rollback, an auto-rollback or a rollout's step (its `rollout` says
    /// which; `aborted` among them).
    Moved(&'a Event),
    /// A host reported that it failed to run `manifest` at the move the
    /// promoter waits for (`--wait-hosts`, a rollout's wave).
    HostFailed {
        /// The environment.
        env: &'a str,
        /// The host's id, as its report names it.
        host: &'a str,
        /// The manifest it failed to run.
        manifest: &'a str,
        /// Why, as its report says.
        detail: &'a str,
    },
}

/// Listens to [`Notice`]s. Called on the thread of the operation, after
/// the fact; must return promptly (a slow receiver is its own business).
pub trait Observer: Send + Sync {
    /// `notice` happened; `reader` is the operation's, for reading more.
    fn notice(&self, reader: &Reader<'_>, notice: &Notice<'_>, progress: &dyn Progress);
}

/// Tells `reader`'s observers of each host of `failed` (id, why) that
/// failed to run `manifest` in `env`.
pub fn tell_failed(
    reader: &Reader<'_>,
    (env, manifest): (&str, &str),
    failed: &[(String, String)],
    progress: &dyn Progress,
) {
    for (host, detail) in failed {
        let notice = Notice::HostFailed {
            env,
            host,
            manifest,
            detail,
        };
        reader.tell(&notice, progress);
    }
}
