//! The policy in the store: reading it (checked like any log), the
//! environment order every command follows, storing that order on the
//! first move of all, and `policy set`.
//!
//! The policy lives in the store (`policy.json`, with its events under
//! `policy/events/`; see `policy`) and is read through
//! [`Reader::load_log`], so a tampered event or pointer is refused (exit 5)
//! by the same checks as an environment's. Until the store holds one, the
//! order is `verbatim.toml`'s (`environments.order`, else the default); the
//! first move of any environment stores it ([`settle_for_move`]). From then
//! on the store's order rules: a `verbatim.toml` that declares another is a
//! configuration error (exit 2) naming both for every command that moves a
//! pointer, and a warning for those that only read
//! ([`stored_order_to_read`]); one that declares none simply follows the
//! store.
//!
//! Writes follow the environments' protocol: create event `n + 1`
//! (create-only: of concurrent writers exactly one wins, the others exit 4
//! naming the winner), then compare-and-swap `policy.json`. The newest event
//! is the policy in effect; a `policy.json` left one step behind by a crash
//! is completed by the next writer.

use std::path::PathBuf;

use anyhow::{Context, Result};
use serde::Serialize;

use super::gates;
use super::log::Inconsistent;
use super::policy::{self, EnvRules, Kind, Policy, PolicyEvent, PolicyPin, PolicyPointer};
use super::reader::{append_entry, get_record, put_log_pointer, Appended, Reader};
use super::signatures::{policy_event_signers, sign_policy_event};
use super::waves::RolloutDefault;
use crate::actor::actor;
use crate::clock::{now, rfc3339};
use crate::config::{check_env_names, Config, ConfigError};
use crate::digest::Digest;
use crate::error::{IntegrityError, LostRace, UsageError};
use crate::progress::Progress;
use crate::store::{ETag, Key, StoreError};
use crate::text::escape;

/// The policy as stored, checked.
#[derive(Debug)]
pub struct PolicyState {
    /// Every event, oldest first: `events[i].seq == i + 1`.
    pub events: Vec<PolicyEvent>,
    /// The sha256 of each event's stored bytes: `digests[i]` of `events[i]`.
    pub digests: Vec<Digest>,
    /// `policy.json` and its ETag; what `events[applied - 1]` sets.
    pub pointer: Option<(PolicyPointer, ETag)>,
    /// How many events `policy.json` has applied: all, or all but the newest.
    pub applied: usize,
}

impl PolicyState {
    /// The event in effect: the newest. Creating it decided the race;
    /// `policy.json` is its copy.
    pub fn current(&self) -> Option<&PolicyEvent> {
        self.events.last()
    }

    /// The newest event, when `policy.json` has not caught up with it.
    fn pending(&self) -> Option<&PolicyEvent> {
        self.events.get(self.applied)
    }

    fn next_seq(&self) -> Result<u64> {
        u64::try_from(self.events.len())
            .ok()
            .and_then(|n| n.checked_add(1))
            .ok_or_else(|| {
                IntegrityError(format!(
                    "{}: the policy's history is full; no sequence number is left",
                    policy::EVENTS_PREFIX
                ))
                .into()
            })
    }
}

/// Reads and checks the policy's history and pointer (exit 5 on anything
/// that does not add up, naming the key).
pub fn load(reader: &Reader<'_>) -> Result<PolicyState> {
    let log = policy::log();
    let refuse = |e: Inconsistent| -> anyhow::Error {
        IntegrityError(format!(
            "refusing to rely on the policy: {e} (the store was altered outside verbatim: inspect it)"
        ))
        .into()
    };
    let loaded = reader.load_log::<PolicyEvent>(&log, &refuse)?;
    let pointer = match loaded.pointer {
        Some((bytes, etag)) => Some((
            PolicyPointer::parse(&log.pointer_key, &bytes).map_err(refuse)?,
            etag,
        )),
        None => None,
    };
    let state = PolicyState {
        events: loaded.events,
        digests: loaded.digests,
        pointer,
        applied: loaded.applied,
    };
    if let Some(pin) = reader.policy_pin() {
        check_pinned(reader, &state, pin)?;
    }
    Ok(state)
}

/// Refuses the policy in effect unless a key `pin` lists signed its stored
/// bytes (exit 5): the store's word on who may sign is not taken for the
/// policy itself.
fn check_pinned(reader: &Reader<'_>, state: &PolicyState, pin: &PolicyPin) -> Result<()> {
    let Some(current) = state.current() else {
        return Ok(());
    };
    let seq = current.seq;
    let bytes = stored_current(reader, state)?;
    let keys = policy_event_signers(reader.store(), seq, &bytes)?;
    let at = now();
    let pinned = keys.iter().any(|k| {
        !pin.signers
            .principals(k, crate::trust::POLICY_NAMESPACE, at)
            .is_empty()
    });
    if pinned {
        return Ok(());
    }
    Err(IntegrityError(format!(
        "refusing the policy in effect: policy event {seq} ({}, by {}) is not signed by a key {} lists ({} valid signature(s) by other keys); a policy written without the team's key rules nothing. Check it with `verbatim policy history`; if it is yours, sign it with `verbatim policy set --sign-key KEY --reason …` (unchanged, it signs the event in effect)",
        current.to.describe(),
        escape(&current.actor),
        pin.source.display(),
        keys.len()
    ))
    .into())
}

/// The stored bytes of the policy event in effect, as the load hashed them.
fn stored_current(reader: &Reader<'_>, state: &PolicyState) -> Result<Vec<u8>> {
    let seq = state.current().map_or(0, |e| e.seq);
    let key = Key::new(policy::log().event_key(seq))?;
    get_record(reader.store(), &key)?
        .map(|(b, _)| b)
        .filter(|b| Some(&Digest::of(b)) == state.digests.last())
        .ok_or_else(|| IntegrityError(format!("{key} changed while it was read")).into())
}

/// `policy history --verify`, on signatures: once a policy event is signed,
/// every later one must be; with a pin (`--policy-signers`), every
/// signature must be by a key it lists. Exit 5 naming the first event at
/// fault.
pub fn verify_signatures(reader: &Reader<'_>, state: &PolicyState) -> Result<()> {
    let store = reader.store();
    let at = now();
    let mut first_signed = None;
    for (e, digest) in state.events.iter().zip(&state.digests) {
        let seq = e.seq;
        let key = Key::new(policy::log().event_key(seq))?;
        let bytes = get_record(store, &key)?
            .map(|(b, _)| b)
            .filter(|b| Digest::of(b) == *digest)
            .ok_or_else(|| IntegrityError(format!("{key} changed while it was read")))?;
        let keys = policy_event_signers(store, seq, &bytes)?;
        if let Some(pin) = reader.policy_pin() {
            let unlisted = keys.iter().find(|k| {
                pin.signers
                    .principals(k, crate::trust::POLICY_NAMESPACE, at)
                    .is_empty()
            });
            if let Some(k) = unlisted {
                return Err(IntegrityError(format!(
                    "policy event {seq} is signed by key {}, which {} does not list: find out who signed it",
                    crate::trust::fingerprint(k),
                    pin.source.display()
                ))
                .into());
            }
        }
        match (keys.is_empty(), first_signed) {
            (false, None) => first_signed = Some(seq),
            (true, Some(first)) => {
                return Err(IntegrityError(format!(
                    "policy event {seq} is not signed, but policy event {first} before it is: once the policy is signed, every change must be (policy set --sign-key); find out who wrote {key}"
                ))
                .into())
            }
            _ => {}
        }
    }
    Ok(())
}

/// Reads the policy's trust root from `path` (`--policy-signers`).
pub fn read_pin(path: &std::path::Path) -> Result<PolicyPin> {
    Ok(PolicyPin {
        signers: crate::trust::read_allowed_signers(path)?,
        source: path.to_owned(),
    })
}

/// The environment order a command follows, and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Order {
    /// The environment names, first to last.
    pub names: Vec<String>,
    /// The store's policy it comes from (its per-environment rules);
    /// `None` before the store holds one.
    pub policy: Option<Policy>,
    /// The policy event it comes from; `None` before the store holds one.
    pub seq: Option<u64>,
    /// Where it comes from, for messages.
    source: Source,
}

/// Where an [`Order`] comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Source {
    /// The store's policy.
    Policy,
    /// `environments.order` of this config file.
    Config(String),
    /// The default order: this config file declares none.
    Default(String),
    /// No policy and no config: the environments with a pointer in this
    /// store, by name.
    Pointers(String),
}

impl Order {
    /// The order the policy event `current` (the one in effect) sets.
    fn stored(current: PolicyEvent) -> Order {
        Order {
            names: current.to.order(),
            seq: Some(current.seq),
            policy: Some(current.to),
            source: Source::Policy,
        }
    }

    /// The order `cfg` asks for, before the store holds one.
    pub fn of_config(cfg: &Config) -> Order {
        let file = cfg.config_path.display().to_string();
        Order {
            policy: None,
            names: cfg.order(),
            seq: None,
            source: match cfg.environments {
                Some(_) => Source::Config(file),
                None => Source::Default(file),
            },
        }
    }

    /// With neither a policy nor a config: the environments that have a
    /// pointer in the store at `location`.
    pub fn of_pointers(names: Vec<String>, location: &str) -> Order {
        Order {
            policy: None,
            names,
            seq: None,
            source: Source::Pointers(location.to_owned()),
        }
    }

    /// The environment before `env`, `None` for the first; a usage error
    /// saying where the order came from, with a did-you-mean, when `env`
    /// is not in it ([`gates::undeclared`]).
    pub fn previous(&self, env: &str) -> Result<Option<&str>> {
        let source = match (&self.source, self.seq) {
            (Source::Policy, seq) => format!(
                "the store's policy (policy event {}; `verbatim policy set` changes it)",
                seq.unwrap_or_default()
            ),
            (Source::Config(file), _) => format!("environments.order in {file}"),
            (Source::Default(file), _) => {
                format!("the default order ({file} declares none)")
            }
            (Source::Pointers(store), _) => {
                format!("the environments with a pointer in {store}")
            }
        };
        gates::previous(&self.names, env, &source).map_err(|e| UsageError(e).into())
    }

    /// Refuses `env` unless it is a valid name this order lists: the one
    /// check of a name every command that takes an environment makes
    /// (exit 2, naming where the order comes from, with a did-you-mean).
    pub fn check_env(&self, env: &str) -> Result<()> {
        crate::config::check_env_name(env).map_err(UsageError)?;
        self.previous(env).map(|_| ())
    }
}

/// The order to follow: the store's policy once it holds one (checked
/// against `cfg`), else `cfg`'s.
pub fn order(reader: &Reader<'_>, cfg: &Config) -> Result<Order> {
    Ok(match stored_order(reader, Some(cfg))? {
        Some(order) => order,
        None => Order::of_config(cfg),
    })
}

/// When the store holds a policy that does not list `env`, the error
/// [`Order::check_env`] gives; for commands that read an environment
/// without a config (`deploy`, `agent`, `fetch`, `timestamp`) and found
/// nothing live there. `None` when the policy lists it, there is none
/// yet, or it cannot be read (this is a hint: the caller's own error
/// stands then).
pub fn not_in_policy(reader: &Reader<'_>, env: &str) -> Option<anyhow::Error> {
    let order = stored_order(reader, None).ok().flatten()?;
    order.check_env(env).err()
}

/// The store's order, if it holds one. A `cfg` declaring another order is
/// a configuration error naming both.
pub fn stored_order(reader: &Reader<'_>, cfg: Option<&Config>) -> Result<Option<Order>> {
    let Some(current) = load(reader)?.events.pop() else {
        return Ok(None);
    };
    if let Some(cfg) = cfg {
        agrees(cfg, &current)?;
    }
    Ok(Some(Order::stored(current)))
}

/// [`stored_order`] for a command that only reads (`status`, `history`):
/// a `cfg` declaring another order is a warning, and the store's order is
/// followed. Commands that move a pointer still refuse it.
pub fn stored_order_to_read(
    reader: &Reader<'_>,
    cfg: Option<&Config>,
    progress: &dyn Progress,
) -> Result<Option<Order>> {
    let Some(current) = load(reader)?.events.pop() else {
        return Ok(None);
    };
    if let Some(Err(e)) = cfg.map(|cfg| agrees(cfg, &current)) {
        progress.warn(format!(
            "{e:#}. Showing the store's order; promote, rollback and publish --env refuse this config until it agrees"
        ));
    }
    Ok(Some(Order::stored(current)))
}

/// `cfg`'s `environments.order` agrees with the policy `current` sets, or
/// declares none.
fn agrees(cfg: &Config, current: &PolicyEvent) -> Result<()> {
    policy::check_declared(
        &cfg.config_path.display().to_string(),
        cfg.environments.as_deref(),
        &current.to,
        current.seq,
    )
    .map_err(|e| ConfigError::new(e).into())
}

/// Before a pointer moves, by a move checked against `used`: makes the
/// store hold that order. The first move of all stores it (policy event 1,
/// `init`, from `cfg`); a `policy.json` left behind is completed. If the
/// order in effect is no longer `used` (a `policy set`, or another first
/// move, landed meanwhile), the move lost a race.
pub fn settle_for_move(
    reader: &Reader<'_>,
    cfg: &Config,
    (used, sign): (&Order, Option<&ssh_key::PrivateKey>),
    progress: &dyn Progress,
) -> Result<()> {
    let mut state = settled(reader)?;
    if state.current().is_none() {
        let to = Policy::from_order(&used.names);
        let config = cfg.config_path.display();
        let reason = if cfg.environments.is_some() {
            format!("environments.order of {config}, stored by the first move of an environment")
        } else {
            format!(
                "the default order ({config} declares no environments.order), stored by the first move of an environment"
            )
        };
        if sign.is_none() && reader.policy_pin().is_some() {
            return Err(UsageError(format!(
                "this first move stores the environment order as the policy, which --policy-signers requires signed: pass --sign-key with a key {} lists",
                reader.policy_pin().map_or(String::new(), |p| p.source.display().to_string())
            ))
            .into());
        }
        match append(reader, &state, (Kind::Init, to, Some(reason)), sign)? {
            Appended::Written(e) => {
                progress.note(format!(
                    "stored the environment order ({}) in {} (policy event 1); from now on it rules for everyone: `verbatim policy show`, `verbatim policy set`",
                    e.to.describe(),
                    policy::POINTER_KEY
                ));
                return Ok(());
            }
            // Someone stored one first: check against theirs.
            Appended::Lost(_) => state = settled(reader)?,
        }
    }
    let current = state
        .current()
        .context("the policy's history is empty after it was written")?;
    agrees(cfg, current)?;
    if current.to.order() != used.names {
        return Err(LostRace(format!(
            "the environment order changed to ({}) (policy event {}, by {}) while this move was being checked against ({}); run it again",
            current.to.describe(),
            current.seq,
            escape(&current.actor),
            used.names.join(", ")
        ))
        .into());
    }
    Ok(())
}

/// Reads the policy, completing a `policy.json` left one step behind its
/// newest event (a crash between the two writes).
fn settled(reader: &Reader<'_>) -> Result<PolicyState> {
    for _ in 0..100 {
        let state = load(reader)?;
        let Some(pending) = state.pending() else {
            return Ok(state);
        };
        let etag = state.pointer.as_ref().map(|(_, e)| e.clone());
        match put_log_pointer(reader, &policy::log(), &pending.pointer().to_bytes(), etag) {
            Ok(())
            | Err(StoreError::PreconditionFailed { .. } | StoreError::AlreadyExists { .. }) => {}
            Err(e) => {
                return Err(e).with_context(|| {
                    format!("completing {}", policy::log().event_key(pending.seq))
                })
            }
        }
    }
    Err(LostRace("the policy keeps changing; try again".into()).into())
}

/// Appends the change to `to` after the settled `state`: event `n + 1`
/// (create-only), then `policy.json` (compare-and-swap).
fn append(
    reader: &Reader<'_>,
    state: &PolicyState,
    (kind, to, reason): (Kind, Policy, Option<String>),
    sign: Option<&ssh_key::PrivateKey>,
) -> Result<Appended<PolicyEvent>> {
    let log = policy::log();
    let store = reader.store();
    let seq = state.next_seq()?;
    let event = PolicyEvent {
        schema: policy::EVENT_SCHEMA.into(),
        seq,
        kind,
        time: rfc3339(now()),
        actor: actor(),
        from: state.current().map(|e| e.to.clone()),
        to,
        reason,
        prev: state.digests.last().map(ToString::to_string),
    };
    let bytes = event.to_bytes();
    let etag = state.pointer.as_ref().map(|(_, e)| e.clone());
    append_entry(
        reader,
        &log,
        (seq, event, &bytes),
        etag,
        // Signed before policy.json moves: a pinned reader accepts it.
        |bytes| match sign {
            Some(key) => sign_policy_event(store, seq, bytes, key)
                .with_context(|| format!("signing policy event {seq}")),
            None => Ok(()),
        },
        || Ok(load(reader)?.applied as u64),
        "policy event",
    )
}

/// `policy show --json`.
#[derive(Serialize)]
pub struct ShowJson {
    /// `store` once the store holds a policy; before, what the first move
    /// will store: `config` (`environments.order`) or `default`.
    pub source: &'static str,
    /// The policy event in effect; `null` before there is one.
    pub seq: Option<u64>,
    /// RFC 3339, UTC: when that event was made; `null` before there is one.
    pub time: Option<String>,
    /// Who made it; `null` before there is one.
    pub actor: Option<String>,
    /// Why it was made; `null` before there is one.
    pub reason: Option<String>,
    /// The policy in effect, or the one the first move will store.
    pub policy: Policy,
}

/// What `policy show` shows: the policy in effect, else what the first
/// move will store (`cfg`'s order, or the default).
pub fn show(
    reader: &Reader<'_>,
    cfg: Option<&Config>,
    progress: &dyn Progress,
) -> Result<ShowJson> {
    let state = load(reader)?;
    Ok(match state.current() {
        Some(e) => {
            if let Some(pending) = state.pending() {
                progress.note(format!(
                    "{} is recorded but {} has not caught up yet; the next `policy set` or promotion completes it",
                    policy::log().event_key(pending.seq),
                    policy::POINTER_KEY
                ));
            }
            if let Some(Err(err)) = cfg.map(|c| agrees(c, e)) {
                progress.warn(format!("{err:#}"));
            }
            ShowJson {
                source: "store",
                seq: Some(e.seq),
                time: Some(e.time.clone()),
                actor: Some(e.actor.clone()),
                reason: e.reason.clone(),
                policy: e.to.clone(),
            }
        }
        None => {
            let (source, names) = match cfg {
                Some(c) if c.environments.is_some() => ("config", c.order()),
                Some(c) => ("default", c.order()),
                None => (
                    "default",
                    crate::config::DEFAULT_ORDER.map(String::from).to_vec(),
                ),
            };
            progress.note(format!(
                "{} holds no policy yet: the first promotion stores this order ({})",
                reader.store().location(),
                if source == "config" {
                    "verbatim.toml's environments.order"
                } else {
                    "the default"
                }
            ));
            ShowJson {
                source,
                seq: None,
                time: None,
                actor: None,
                reason: None,
                policy: Policy::from_order(&names),
            }
        }
    })
}

/// A change `policy set` asks for.
pub struct SetRequest {
    /// The new environment order; empty: as it is.
    pub order: Vec<String>,
    /// The principals whose signatures each named environment requires.
    pub require: Vec<(String, Vec<String>)>,
    /// The principals that must sign each move of the named environments.
    pub sign_moves: Vec<(String, Vec<String>)>,
    /// The default rollout of each named environment (`None`: at once).
    pub rollout: Vec<(String, Option<RolloutDefault>)>,
    /// An `allowed_signers` file whose text the policy stores.
    pub allowed_signers: Option<PathBuf>,
    /// Why: recorded in the policy's history.
    pub reason: String,
    /// Change it only if this policy event is still the one in effect.
    pub expect_seq: Option<u64>,
    /// Sign the new policy event with this key (`--sign-key`); when the
    /// policy is unchanged, sign the event in effect.
    pub sign_key: Option<ssh_key::PrivateKey>,
}

/// `policy set`: appends the change `req` asks for (nothing when the policy
/// already is that), by the log's protocol; exit 4 when another change
/// landed first or `expect_seq` is no longer in effect.
pub fn set(
    reader: &Reader<'_>,
    cfg: Option<&Config>,
    req: &SetRequest,
    progress: &dyn Progress,
) -> Result<SetJson> {
    if !req.order.is_empty() {
        check_env_names(&req.order).map_err(|e| UsageError(format!("--order: {e}")))?;
    }
    let state = settled(reader)?;
    let seq = state.current().map_or(0, |e| e.seq);
    if let Some(expected) = req.expect_seq.filter(|&s| s != seq) {
        return Err(LostRace(format!(
            "the policy in effect is policy event {seq}, not {expected} as --expect-seq says: it changed since; check `verbatim policy history` and run again if still wanted"
        ))
        .into());
    }
    let from = state.current().map(|e| e.to.clone());
    let to = edited(cfg, req, from.as_ref())?;
    let out = if let Some(current) = state.current().filter(|e| e.to == to) {
        match &req.sign_key {
            Some(key) => {
                let bytes = stored_current(reader, &state)?;
                sign_policy_event(reader.store(), current.seq, &bytes, key)
                    .with_context(|| format!("signing policy event {}", current.seq))?;
                progress.note(format!(
                    "the policy already is ({}) (policy event {}); signed it",
                    to.describe(),
                    current.seq
                ));
            }
            None => progress.note(format!(
                "the policy already is ({}) (policy event {}); nothing to do",
                to.describe(),
                current.seq
            )),
        }
        SetJson {
            result: "unchanged",
            seq: current.seq,
            from,
            to,
        }
    } else {
        let change = (Kind::Set, to, Some(req.reason.clone()));
        match append(reader, &state, change, req.sign_key.as_ref())? {
            Appended::Written(e) => {
                progress.note(format!(
                    "policy: ({}) → ({}) (policy event {})",
                    from.as_ref().map_or("nothing".into(), Policy::describe),
                    e.to.describe(),
                    e.seq
                ));
                SetJson {
                    result: "set",
                    seq: e.seq,
                    from,
                    to: e.to,
                }
            }
            Appended::Lost(winner) => {
                let seq = state.next_seq()?;
                let who = winner.map_or_else(
                    || format!("another process wrote policy event {seq}"),
                    |w| {
                        format!(
                            "{} set it to ({}) at {} (policy event {seq})",
                            escape(&w.actor),
                            w.to.describe(),
                            escape(&w.time)
                        )
                    },
                );
                return Err(LostRace(format!(
                    "lost the race to change the policy: {who}; check `verbatim policy show` and run again if still wanted"
                ))
                .into());
            }
        }
    };
    if let Some(cfg) = cfg {
        if let Some(declared) = cfg.environments.as_ref().filter(|d| **d != out.to.order()) {
            let config = cfg.config_path.display().to_string();
            progress.warn(format!(
                "{config} still declares environments.order = [{}]: {}, or commands that move a pointer will refuse it",
                declared.join(", "),
                policy::follow_hint(&config, &out.to.order())
            ));
        }
    }
    Ok(out)
}

/// `policy set --json`.
#[derive(Serialize)]
pub struct SetJson {
    /// `set`, or `unchanged` when the policy already was this.
    pub result: &'static str,
    /// The policy event in effect after.
    pub seq: u64,
    /// The policy before; `null` when the store held none.
    pub from: Option<Policy>,
    /// The policy in effect after.
    pub to: Policy,
}

/// The policy `policy set` asks for: `from` (or, before the store holds
/// one, the config's order) with the flags applied, checked.
fn edited(cfg: Option<&Config>, args: &SetRequest, from: Option<&Policy>) -> Result<Policy> {
    let base = match from {
        Some(p) => p.clone(),
        None => Policy::from_order(
            &cfg.map(Config::order)
                .unwrap_or_else(|| crate::config::DEFAULT_ORDER.map(String::from).to_vec()),
        ),
    };
    let mut to = if args.order.is_empty() {
        base.clone()
    } else {
        // Environments keep their rules across a reorder.
        let mut p = Policy::from_order(&args.order);
        p.allowed_signers = base.allowed_signers.clone();
        for e in &mut p.environments {
            if let Some(old) = base.rules(&e.name) {
                e.require = old.require.clone();
                e.sign_moves = old.sign_moves.clone();
                e.rollout = old.rollout.clone();
            }
        }
        p
    };
    type Field = fn(&mut EnvRules) -> &mut Vec<String>;
    type Pairs<'a> = &'a [(String, Vec<String>)];
    let flags: [(&str, Pairs, Field); 2] = [
        ("--require", &args.require, |r| &mut r.require),
        ("--sign-moves", &args.sign_moves, |r| &mut r.sign_moves),
    ];
    for (flag, pairs, field) in flags {
        for (env, principals) in pairs {
            let order = to.order();
            let Some(rules) = to.environments.iter_mut().find(|e| &e.name == env) else {
                return Err(UsageError(format!(
                    "{flag} {env}=…: {}",
                    super::gates::undeclared(&order, env, "the policy it would set")
                ))
                .into());
            };
            *field(rules) = principals.clone();
        }
    }
    for (env, rollout) in &args.rollout {
        let order = to.order();
        let Some(rules) = to.environments.iter_mut().find(|e| &e.name == env) else {
            return Err(UsageError(format!(
                "--rollout {env}=…: {}",
                super::gates::undeclared(&order, env, "the policy it would set")
            ))
            .into());
        };
        rules.rollout = rollout.clone();
    }
    if let Some(path) = &args.allowed_signers {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        crate::trust::read_allowed_signers(path)?; // says what is wrong, by line
        to.allowed_signers = Some(text);
    }
    to.check()
        .map_err(|e| UsageError(format!("the policy would not hold: {e}")))?;
    Ok(to)
}
