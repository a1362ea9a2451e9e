//! Append-only logs, the shape every history in the store has: create-only
//! events `1..=n` under one prefix, each moving one pointer, which is
//! derived from the newest event byte for byte. An environment is one; so
//! is the policy. Event `n+1` records the sha256 of event `n`'s stored
//! bytes (`prev`), so a log is a hash chain: an event changed, removed or
//! inserted breaks the link after it ([`check_link`]). The checks here are
//! written once, over any [`Entry`]. Pure: no I/O.

use serde::Serialize;

use crate::digest::Digest;

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
    /// The key at fault.
    pub key: String,
    /// What disagrees, in words for a person.
    pub what: String,
}

impl std::fmt::Display for Inconsistent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.key, self.what)
    }
}

impl std::error::Error for Inconsistent {}

/// An [`Inconsistent`] naming `key` and `what`.
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

/// An append-only log in the store: create-only events `1..=n` under one
/// prefix, each moving one pointer, which is derived from the newest event
/// byte for byte. Every environment is one ([`Log::env`]); so is the policy
/// (`super::policy`). What makes a history trustworthy is the same for both,
/// so the checks below are written once, over any [`Entry`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Log {
    /// Its name in messages: an environment (`prod`), or `the policy`.
    pub name: String,
    /// The pointer's key, moved by compare-and-swap.
    pub pointer_key: String,
    /// Event keys below it sort in sequence order.
    pub events_prefix: String,
}

impl Log {
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

/// The number in `<prefix><digits>.json`, if `key` is spelt so.
pub(crate) fn seq_in(prefix: &str, key: &str) -> Option<u64> {
    let digits = key.strip_prefix(prefix)?.strip_suffix(".json")?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
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

/// [`check_pointer`](super::event::check_pointer) for any log.
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
