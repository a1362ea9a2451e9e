//! The policy: the rules every environment follows, held in the store so
//! that no one's local `verbatim.toml` can change them.
//!
//! Today a policy is the environment order (`dev → preprod → prod`); a later
//! version adds per-environment rules (required signers), which is why each
//! environment is an object with a `name` rather than a bare string. It is
//! stored like an environment: an append-only log ([`Log`])
//! of create-only events `policy/events/<seq>.json`, each recording who
//! changed it, when, from what, to what and why, and the pointer
//! `policy.json`, derived from the newest event byte for byte and moved by
//! compare-and-swap. The same checks guard both logs. This module is pure:
//! the types, their keys and canonical bytes, the event checks, and the rule
//! for a `verbatim.toml` that disagrees; `policy_store` reads and writes.

use serde::{Deserialize, Serialize};

use super::waves::RolloutDefault;

use super::log::{canonical, inconsistent, Entry, Inconsistent, Log};
use crate::config::check_env_names;

/// The schema of `policy.json`.
pub const POLICY_SCHEMA: &str = "verbatim.policy/v1";
/// The schema of a policy event.
pub const EVENT_SCHEMA: &str = "verbatim.policy-event/v1";
/// The pointer: the policy in effect.
pub const POINTER_KEY: &str = "policy.json";
/// Where its events live.
pub const EVENTS_PREFIX: &str = "policy/events/";

/// The policy's trust root, held by the promoter, never read from the
/// store (`--policy-signers FILE`, `VERBATIM_POLICY_SIGNERS`): the policy in
/// effect counts only when a key this file lists signed it, so a forged
/// policy event that adds an attacker's key to the gate rules nothing.
#[derive(Debug, Clone)]
pub struct PolicyPin {
    /// The keys (any principal) that may sign policy events.
    pub signers: crate::trust::AllowedSigners,
    /// Where the file is, for messages.
    pub source: std::path::PathBuf,
}

/// The rules themselves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    /// An OpenSSH `allowed_signers` file's text: the keys the principals of
    /// `require` sign with. Absent when no environment requires signatures.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_signers: Option<String>,
    /// The environments in promotion order, first to last.
    pub environments: Vec<EnvRules>,
}

/// One environment's place and rules.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnvRules {
    /// The environment's name, as its keys spell it (`envs/<name>.json`).
    pub name: String,
    /// Principals whose signatures a manifest needs before it may be
    /// promoted here (the `signatures` gate).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub require: Vec<String>,
    /// Principals that must sign every move of this environment
    /// (`promote`/`rollback --sign-key`, with a key the policy's allowed
    /// signers list for them), so hosts with `--require-event-signer`
    /// never see an unsigned move the team made by mistake.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sign_moves: Vec<String>,
    /// How `promote` rolls a manifest out here when its flags do not say
    /// (`policy set --rollout ENV=SPEC`); absent: all at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollout: Option<RolloutDefault>,
}

/// How a policy event came about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// Written from `verbatim.toml` (or its default order) by the first move
    /// of any environment; only ever event 1.
    Init,
    /// Written by `verbatim policy set`.
    Set,
}

/// One change of the policy: `policy/events/<seq>.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyEvent {
    /// Always [`EVENT_SCHEMA`].
    pub schema: String,
    /// Its place in the log, from 1; must agree with its file name.
    pub seq: u64,
    /// How it came about.
    pub kind: Kind,
    /// RFC 3339, UTC.
    pub time: String,
    /// Who changed it ([`crate::actor::actor`]).
    pub actor: String,
    /// The policy before, if any.
    pub from: Option<Policy>,
    /// The policy after it.
    pub to: Policy,
    /// Why: `--reason` of `policy set`, or where an `init` took the order from.
    #[serde(default)]
    pub reason: Option<String>,
    /// `sha256:<hex>` of the stored bytes of the event before it, as an
    /// environment's events carry it (`super::log::check_link`);
    /// absent on the first event and on events written before chaining.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prev: Option<String>,
}

/// `policy.json`: the policy in effect, and the event that set it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyPointer {
    /// Always [`POLICY_SCHEMA`].
    pub schema: String,
    /// The newest policy event it applies.
    pub seq: u64,
    /// RFC 3339, UTC: when that event was made.
    pub time: String,
    /// Who made that event.
    pub actor: String,
    /// The policy in effect: the `to` of event `seq`.
    pub policy: Policy,
}

/// The policy's log: `policy.json` and `policy/events/`.
pub fn log() -> Log {
    Log {
        name: "the policy".into(),
        pointer_key: POINTER_KEY.into(),
        events_prefix: EVENTS_PREFIX.into(),
    }
}

impl Policy {
    /// The policy of an environment order.
    pub fn from_order(order: &[String]) -> Policy {
        Policy {
            allowed_signers: None,
            environments: order
                .iter()
                .map(|name| EnvRules {
                    name: name.clone(),
                    require: Vec::new(),
                    sign_moves: Vec::new(),
                    rollout: None,
                })
                .collect(),
        }
    }

    /// The environment names, first to last.
    pub fn order(&self) -> Vec<String> {
        self.environments.iter().map(|e| e.name.clone()).collect()
    }

    /// The order as people write it, with what each environment requires:
    /// `dev, preprod, prod (signed by qa@acme)`.
    pub fn describe(&self) -> String {
        self.environments
            .iter()
            .map(|e| {
                let mut rules = Vec::new();
                if !e.require.is_empty() {
                    rules.push(format!("signed by {}", e.require.join(", ")));
                }
                if !e.sign_moves.is_empty() {
                    rules.push(format!("moves signed by {}", e.sign_moves.join(", ")));
                }
                if let Some(r) = &e.rollout {
                    rules.push(format!("rolled out in {}", r.describe()));
                }
                match rules.is_empty() {
                    true => e.name.clone(),
                    false => format!("{} ({})", e.name, rules.join("; ")),
                }
            })
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The rules of environment `env`, if the policy names it.
    pub fn rules(&self, env: &str) -> Option<&EnvRules> {
        self.environments.iter().find(|e| e.name == env)
    }

    /// Why this is not a policy anyone may follow, if it is not: for a
    /// policy about to be set, whose allowed signers must read as this
    /// verbatim reads them.
    pub fn check(&self) -> Result<(), String> {
        let signers = match &self.allowed_signers {
            Some(text) => {
                let s = crate::trust::AllowedSigners::parse(text)
                    .map_err(|e| format!("allowed_signers: {e}"))?;
                !s.is_empty()
            }
            None => false,
        };
        self.check_rules(signers)
    }

    /// [`Policy::check`] for a policy already stored (in an event): how its
    /// allowed signers read depends on the verbatim and the time zone
    /// reading them (a local `valid-after`, a line an older verbatim took),
    /// so here they need only list something; the `signatures` gate reads
    /// them when it uses them, and refuses then. A stored history never
    /// becomes unreadable, and `policy set` can replace them.
    pub fn check_stored(&self) -> Result<(), String> {
        let listed = self.allowed_signers.as_deref().is_some_and(|text| {
            text.lines()
                .map(|l| l.trim_start_matches([' ', '\t', '\r']))
                .any(|l| !l.is_empty() && !l.starts_with('#'))
        });
        self.check_rules(listed)
    }

    /// The rules of [`Policy::check`] but the reading of the allowed
    /// signers (`signers`: they list some key).
    fn check_rules(&self, signers: bool) -> Result<(), String> {
        check_env_names(&self.order())?;
        for e in &self.environments {
            if let Some(p) =
                e.require.iter().chain(&e.sign_moves).find(|p| {
                    p.is_empty() || p.chars().any(|c| c.is_whitespace() || c.is_control())
                })
            {
                return Err(format!(
                    "{}: required principal {p:?} is empty or holds spaces",
                    e.name
                ));
            }
            let needs = e.require.iter().chain(&e.sign_moves);
            if let (false, Some(_)) = (signers, needs.clone().next()) {
                return Err(format!(
                    "{} requires signatures by {}, but the policy has no allowed signers naming their keys",
                    e.name,
                    needs.cloned().collect::<Vec<_>>().join(", ")
                ));
            }
        }
        Ok(())
    }
}

impl PolicyEvent {
    /// Its canonical JSON: the bytes stored at its key in `policy/events/`,
    /// which the next event's `prev` hashes.
    pub fn to_bytes(&self) -> Vec<u8> {
        canonical(self)
    }

    /// The pointer this event sets.
    pub fn pointer(&self) -> PolicyPointer {
        PolicyPointer {
            schema: POLICY_SCHEMA.into(),
            seq: self.seq,
            time: self.time.clone(),
            actor: self.actor.clone(),
            policy: self.to.clone(),
        }
    }
}

impl PolicyPointer {
    /// Its canonical JSON, stored at [`POINTER_KEY`]: byte for byte what
    /// [`PolicyEvent::pointer`] of the newest event encodes to.
    pub fn to_bytes(&self) -> Vec<u8> {
        canonical(self)
    }

    /// Parses a stored pointer; `key` names it in the error.
    pub fn parse(key: &str, bytes: &[u8]) -> Result<PolicyPointer, Inconsistent> {
        serde_json::from_slice(bytes)
            .map_err(|e| inconsistent(key, format!("not a valid policy pointer ({e})")))
    }
}

impl Entry for PolicyEvent {
    fn check(&self, log: &Log, seq: u64, before: Option<&Self>) -> Result<(), Inconsistent> {
        let key = log.event_key(seq);
        let bad = |what: String| Err(inconsistent(&key, what));
        if self.schema != EVENT_SCHEMA {
            return bad(format!("schema is {:?}, not {EVENT_SCHEMA:?}", self.schema));
        }
        if self.seq != seq {
            return bad(format!(
                "says it is event {} but its file name says {seq}",
                self.seq
            ));
        }
        if let Err(e) = self.to.check_stored() {
            return bad(format!("`to` is not a policy anyone may follow: {e}"));
        }
        if let Some(Err(e)) = self.from.as_ref().map(Policy::check_stored) {
            return bad(format!("`from` is not a policy anyone may follow: {e}"));
        }
        if self.kind == Kind::Init && seq != 1 {
            return bad("is an `init` event, which only the first event may be".into());
        }
        match (before, &self.from) {
            (None, None) => Ok(()),
            (None, Some(from)) => bad(format!(
                "is the first event but says the policy was ({}) before it",
                from.describe()
            )),
            (Some(b), from) if from.as_ref() != Some(&b.to) => bad(format!(
                "says the policy was ({}) before it, but event {} ({}) left it at ({})",
                from.as_ref().map_or("nothing".into(), Policy::describe),
                b.seq,
                log.event_key(b.seq),
                b.to.describe()
            )),
            (Some(_), _) => Ok(()),
        }
    }

    fn prev(&self) -> Option<&str> {
        self.prev.as_deref()
    }

    fn pointer_bytes(&self) -> Vec<u8> {
        self.pointer().to_bytes()
    }

    fn pointer_seq(bytes: &[u8]) -> Result<u64, String> {
        serde_json::from_slice::<PolicyPointer>(bytes)
            .map(|p| p.seq)
            .map_err(|e| format!("not a valid policy pointer ({e})"))
    }
}

/// Whether a `verbatim.toml` agrees with the store's policy. `declared` is
/// its `environments.order`, `None` when it declares none (it then simply
/// follows the store). Otherwise it must name the same order; the error
/// names both, and how to settle it either way.
pub fn check_declared(
    config: &str,
    declared: Option<&[String]>,
    stored: &Policy,
    seq: u64,
) -> Result<(), String> {
    let Some(declared) = declared else {
        return Ok(());
    };
    if declared == stored.order().as_slice() {
        return Ok(());
    }
    let wanted = declared.join(",");
    Err(format!(
        "`environments.order` in {config} is [{}], but the store's policy (policy.json, event {seq}) is [{}]; \
         the store's order rules. To change it for everyone: `verbatim policy set --order {wanted} --reason \"…\"`; \
         to follow it: {}",
        declared.join(", "),
        stored.describe(),
        follow_hint(config, &stored.order())
    ))
}

/// How to make `config` follow `order`: the TOML line to write, as it
/// parses, or the line to remove.
pub fn follow_hint(config: &str, order: &[String]) -> String {
    format!(
        "set `{}` in the [environments] table of {config}, or remove its `order` line",
        order_line(order)
    )
}

/// `order = ["dev", "qa", "prod"]`: `environments.order` as TOML
/// (environment names need no escaping).
pub fn order_line(order: &[String]) -> String {
    let names: Vec<String> = order.iter().map(|n| format!("\"{n}\"")).collect();
    format!("order = [{}]", names.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::rfc3339;
    use crate::digest::Digest;
    use crate::environments::log::{check_log, check_log_keys, check_log_pointer};

    fn order(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    fn event(seq: u64, from: Option<&[&str]>, to: &[&str]) -> PolicyEvent {
        PolicyEvent {
            schema: EVENT_SCHEMA.into(),
            seq,
            kind: if seq == 1 { Kind::Init } else { Kind::Set },
            time: rfc3339(0),
            actor: "ci".into(),
            from: from.map(|f| Policy::from_order(&order(f))),
            to: Policy::from_order(&order(to)),
            reason: None,
            prev: None,
        }
    }

    /// Two events, the second linked to the first.
    fn chain() -> Vec<PolicyEvent> {
        let first = event(1, None, &["dev", "preprod", "prod"]);
        let mut second = event(2, Some(&["dev", "preprod", "prod"]), &["dev", "qa", "prod"]);
        second.prev = Some(Digest::of(&first.to_bytes()).to_string());
        vec![first, second]
    }

    fn digests(h: &[PolicyEvent]) -> Vec<Digest> {
        h.iter().map(|e| Digest::of(&e.to_bytes())).collect()
    }

    #[test]
    fn keys_and_canonical_bytes() {
        let log = log();
        assert_eq!(log.event_key(1), "policy/events/0000000001.json");
        assert_eq!(
            check_log_keys(&log, ["policy/events/0000000001.json"]),
            Ok(1)
        );
        let e = check_log_keys(&log, ["policy/events/1.json"]).unwrap_err();
        assert!(e.what.contains("the policy"), "{e}");
        let p = chain()[0].pointer();
        assert_eq!(
            String::from_utf8(p.to_bytes()).unwrap(),
            r#"{"actor":"ci","policy":{"environments":[{"name":"dev"},{"name":"preprod"},{"name":"prod"}]},"schema":"verbatim.policy/v1","seq":1,"time":"1970-01-01T00:00:00Z"}"#
        );
        let back: PolicyEvent = serde_json::from_slice(&chain()[1].to_bytes()).unwrap();
        assert_eq!(back, chain()[1]);
        assert_eq!(Policy::from_order(&order(&["a", "b"])).order(), ["a", "b"]);
    }

    #[test]
    fn a_policy_history_is_checked_like_an_environments() {
        let log = log();
        let h = chain();
        assert_eq!(check_log(&log, &h, &digests(&h)), Ok(()));
        let bytes = |i: usize| h[i].pointer_bytes();
        assert_eq!(check_log_pointer(&log, Some(&bytes(1)), &h), Ok(2));
        assert_eq!(check_log_pointer(&log, Some(&bytes(0)), &h), Ok(1));
        assert_eq!(check_log_pointer(&log, None, &h[..1]), Ok(0));

        let broken = |f: &dyn Fn(&mut Vec<PolicyEvent>), seq: u64, says: &str| {
            let mut h = chain();
            f(&mut h);
            let e = check_log(&log, &h, &digests(&h)).unwrap_err();
            assert_eq!(e.key, log.event_key(seq), "{e}");
            assert!(e.what.contains(says), "{says:?} not in {e}");
        };
        broken(&|h| h[1].seq = 3, 2, "says it is event 3");
        broken(&|h| h[0].schema = "verbatim.event/v1".into(), 1, "schema");
        broken(&|h| h[1].kind = Kind::Init, 2, "`init`");
        broken(&|h| h[1].from = None, 2, "was (nothing) before it");
        broken(
            &|h| h[1].from = Some(Policy::from_order(&order(&["dev", "prod"]))),
            2,
            "left it at (dev, preprod, prod)",
        );
        broken(&|h| h[0].from = h[1].from.clone(), 1, "first event");
        broken(
            &|h| h[1].to = Policy::from_order(&order(&["Prod"])),
            2,
            "`to` is not a policy",
        );
        broken(&|h| h[1].to.environments.clear(), 2, "at least one");
        // The hash chain: the same rule as an environment's.
        broken(
            &|h| h[0].reason = Some("edited".into()),
            2,
            "its `prev` does not match event 1",
        );
        broken(
            &|h| {
                let third = PolicyEvent {
                    seq: 3,
                    from: Some(h[1].to.clone()),
                    ..h[1].clone()
                };
                h.push(third);
            },
            3,
            "does not match event 2",
        );
        broken(
            &|h| h[1].to = Policy::from_order(&order(&["dev", "dev"])),
            2,
            "twice",
        );

        // Written before chaining: no `prev` at all, still a history.
        let mut old = chain();
        old[1].prev = None;
        assert_eq!(check_log(&log, &old, &digests(&old)), Ok(()));

        let bad = |pointer: &[u8], says: &str| {
            let e = check_log_pointer(&log, Some(pointer), &h).unwrap_err();
            assert_eq!(e.key, POINTER_KEY);
            assert!(e.what.contains(says), "{says:?} not in {e}");
        };
        let mut p = h[1].pointer();
        p.policy = Policy::from_order(&order(&["prod"]));
        bad(&p.to_bytes(), "is not what event 2");
        p.seq = 9;
        bad(&p.to_bytes(), "says seq 9");
        bad(b"{\"seq\":2}", "not a valid policy pointer");
        let e = check_log_pointer(&log, None, &h).unwrap_err();
        assert!(e.what.contains("is missing"), "{e}");
    }

    #[test]
    fn a_config_follows_or_agrees_or_is_told_both_orders() {
        let stored = Policy::from_order(&order(&["dev", "preprod", "prod"]));
        assert_eq!(check_declared("verbatim.toml", None, &stored, 1), Ok(()));
        let same = order(&["dev", "preprod", "prod"]);
        assert_eq!(
            check_declared("verbatim.toml", Some(&same), &stored, 1),
            Ok(())
        );
        let skip = order(&["dev", "prod"]);
        let e = check_declared("verbatim.toml", Some(&skip), &stored, 3).unwrap_err();
        for needle in [
            "[dev, prod]",
            "[dev, preprod, prod]",
            "event 3",
            "verbatim policy set --order dev,prod",
            "set `order = [\"dev\", \"preprod\", \"prod\"]` in the [environments] table",
            "remove its `order` line",
        ] {
            assert!(e.contains(needle), "{needle:?} not in {e}");
        }
    }
}
