//! Environments: pointers to manifests, and the append-only history behind them.
//!
//! The history is the truth: event `n` of an environment (`envs/<env>/events/
//! <n>.json`, create-only) records one move of its pointer. The pointer
//! (`envs/<env>.json`, compare-and-swap) is a cache of the newest event,
//! derived from it byte for byte, so anyone can complete a move a crashed
//! process left half done. Creating event `n+1` is what wins a race: exactly
//! one writer can. This module is pure: encoding, the promotion order rule and
//! the choice of a rollback target; `commands::promote` does the I/O.

use serde::{Deserialize, Serialize};

use crate::digest::Digest;

pub const POINTER_SCHEMA: &str = "verbatim.pointer/v1";
pub const EVENT_SCHEMA: &str = "verbatim.event/v1";

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

fn canonical<T: Serialize>(v: &T) -> Vec<u8> {
    let value = serde_json::to_value(v).expect("environment types always serialize");
    serde_json::to_vec(&value).expect("a Value always serializes")
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
    format!("envs/{env}/events/{seq:010}.json")
}

/// The environment before `env` in the promotion order, or `None` for the first.
/// `Err` when `env` is not declared.
pub fn previous<'a>(order: &'a [String], env: &str) -> Result<Option<&'a str>, String> {
    match order.iter().position(|e| e == env) {
        Some(0) => Ok(None),
        Some(i) => Ok(Some(&order[i - 1])),
        None => Err(format!(
            "`{env}` is not a declared environment (environments.order: {})",
            order.join(", ")
        )),
    }
}

/// The order gate: `manifest` may enter `env` once it was promoted to the
/// environment before it (its `history` given), or anywhere first.
pub fn order_gate(prev: Option<&str>, prev_history: &[Event], manifest: &str) -> Gate {
    match prev {
        None => Gate {
            gate: "order".into(),
            ok: true,
            detail: "first environment: any published manifest".into(),
        },
        Some(prev) => {
            let ok = prev_history.iter().any(|e| e.to == manifest);
            Gate {
                gate: "order".into(),
                ok,
                detail: if ok {
                    format!("was promoted to {prev}")
                } else {
                    format!("has never been promoted to {prev}; promote it there first, or pass --force --reason")
                },
            }
        }
    }
}

/// Where `rollback` goes: `to_seq` names an event whose manifest to restore;
/// otherwise the manifest that was live before the current one. `history` is
/// oldest first.
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
    current.from.clone().ok_or_else(|| {
        "nothing was live before the current manifest; nothing to roll back to".into()
    })
}

/// Whether `manifest` was ever live in an environment with this history.
pub fn was_live(history: &[Event], manifest: &str) -> bool {
    history.iter().any(|e| e.to == manifest)
}

/// Formats seconds since the epoch as RFC 3339 UTC (`2026-11-26T13:33:54Z`).
pub fn rfc3339(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Howard Hinnant's days-to-civil.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

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
        }
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
        assert!(order_gate(None, &[], "m1").ok);
        let hist = [ev(1, None, "m1")];
        assert!(order_gate(Some("preprod"), &hist, "m1").ok);
        let g = order_gate(Some("preprod"), &hist, "m2");
        assert!(!g.ok && g.detail.contains("--force"), "{g:?}");
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
    }

    #[test]
    fn pointer_is_derived_from_the_event_byte_for_byte() {
        let e = ev(3, Some("b"), "c");
        assert_eq!(e.pointer().to_bytes(), e.pointer().to_bytes());
        assert_eq!(e.pointer().seq, 3);
        let back: Event = serde_json::from_slice(&e.to_bytes()).unwrap();
        assert_eq!(back, e);
    }

    #[test]
    fn rfc3339_dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
    }
}
