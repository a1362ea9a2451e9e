//! The `config` operations: `set`, `rollback`, `show` and `history` of an
//! environment's config (`envconfig`), through its log
//! (`envconfig_store`). A change is checked whole before anything is
//! written (every key and value, naming the one at fault, exit 2), signed
//! where the policy's `sign_moves` asks it of the environment's moves,
//! recorded as one event, and then written into the pages of the live
//! release's site (`site::rewrite_live`). Hosts pick it up on their own
//! (`host::config`).

use std::collections::BTreeMap;

use anyhow::Result;
use serde::Serialize;

use super::envconfig::{self, ConfigEvent, Kind, Values};
use super::envconfig_store::{self, Change, ConfigState};
use super::policy_store::{self, Order};
use super::reader::Appended;
use super::reader::{Reader, Verified};
use super::signatures::{config_event_signers, move_signer_rule};
use crate::config::Config;
use crate::error::{LostRace, UsageError};
use crate::progress::Progress;
use crate::text::escape;

/// A change `config set` asks for.
pub struct SetRequest {
    /// The environment.
    pub env: String,
    /// `KEY=VALUE` pairs, as given (a key given twice is refused).
    pub set: Vec<(String, String)>,
    /// Keys to remove (`--unset`).
    pub unset: Vec<String>,
    /// Why: recorded in the config's history.
    pub reason: Option<String>,
    /// Sign the event with this key (`--sign-key`).
    pub sign_key: Option<ssh_key::PrivateKey>,
}

/// `config set --json` and `config rollback --json`.
#[derive(Debug, Serialize)]
pub struct SetJson {
    /// The environment.
    pub env: String,
    /// `set`, `rolled-back`, or `unchanged` (nothing was written).
    pub result: &'static str,
    /// The config event in effect after.
    pub seq: u64,
    /// The keys set by this change.
    pub set: Values,
    /// The keys removed by it.
    pub unset: Vec<String>,
    /// The whole config in effect after.
    pub config: Values,
    /// The release whose site was written again with it; `null` when
    /// nothing is live or nothing was written.
    pub site: Option<SiteWritten>,
}

/// The site written after a config change.
#[derive(Debug, Serialize)]
pub struct SiteWritten {
    /// The live release.
    pub manifest: String,
    /// How many of its entry files were written (0: it has no `[site]`).
    pub files: usize,
}

/// The environment order to check `env` against: the store's, else the
/// config's; a bare name check with neither.
fn check_env(reader: &Reader<'_>, cfg: Option<&Config>, env: &str) -> Result<Option<Order>> {
    let order = match policy_store::stored_order(reader, cfg)? {
        Some(o) => Some(o),
        None => cfg.map(Order::of_config),
    };
    match &order {
        Some(o) => o.check_env(env)?,
        None => crate::config::check_env_name(env).map_err(UsageError)?,
    }
    Ok(order)
}

/// Refuses a change that does not hold, naming the key or flag at fault
/// (exit 2); returns the keys to set and to unset.
fn checked_change(req: &SetRequest, from: &Values) -> Result<(Values, Vec<String>)> {
    let mut set = Values::new();
    for (k, v) in &req.set {
        envconfig::check_key(k).map_err(|e| UsageError(format!("{e}; nothing was changed")))?;
        envconfig::check_value(k, v)
            .map_err(|e| UsageError(format!("{e}; nothing was changed")))?;
        if set.insert(k.clone(), v.clone()).is_some() {
            return Err(UsageError(format!(
                "{k} is given twice: give each key once; nothing was changed"
            ))
            .into());
        }
    }
    let mut unset = Vec::new();
    for k in &req.unset {
        envconfig::check_key(k)
            .map_err(|e| UsageError(format!("--unset: {e}; nothing was changed")))?;
        if set.contains_key(k) {
            return Err(UsageError(format!(
                "{k} is both set and given to --unset; nothing was changed"
            ))
            .into());
        }
        if !from.contains_key(k) {
            let keys: Vec<&str> = from.keys().map(String::as_str).collect();
            return Err(UsageError(format!(
                "--unset {k}: the config of {} has no key {k} (it has: {}); nothing was changed",
                req.env,
                if keys.is_empty() {
                    "none".into()
                } else {
                    keys.join(", ")
                }
            ))
            .into());
        }
        if !unset.contains(k) {
            unset.push(k.clone());
        }
    }
    if set.is_empty() && unset.is_empty() {
        return Err(UsageError("give KEY=VALUE or --unset KEY".into()).into());
    }
    envconfig::check_values(&envconfig::apply(from, &set, &unset))
        .map_err(|e| UsageError(format!("{e}; nothing was changed")))?;
    // Only what changes is recorded.
    set.retain(|k, v| from.get(k) != Some(v));
    Ok((set, unset))
}

/// `config set`: records the change as config event `n + 1` and writes
/// the live release's pages with it; exit 4 when another change landed
/// first.
pub fn set(
    reader: &Reader<'_>,
    cfg: Option<&Config>,
    req: &SetRequest,
    progress: &dyn Progress,
) -> Result<SetJson> {
    let env = &req.env;
    let order = check_env(reader, cfg, env)?;
    let state = envconfig_store::settled(reader, env)?;
    let from = state.values().cloned().unwrap_or_default();
    let (set, unset) = checked_change(req, &from)?;
    if set.is_empty() && unset.is_empty() {
        progress.note(format!(
            "the config of {env} already holds these values; nothing to do"
        ));
        return Ok(unchanged(&state));
    }
    move_signer_rule(
        order.as_ref().and_then(|o| o.policy.as_ref()),
        env,
        req.sign_key.as_ref(),
    )?;
    let change = Change {
        kind: Kind::Set,
        set,
        unset,
        rollback_to: None,
        reason: req.reason.clone(),
    };
    record(reader, &state, change, req.sign_key.as_ref(), progress)
}

/// `config rollback`: back to the config event `to` left (default: the
/// one before the newest), recorded as a new event that sets and unsets
/// what differs; the history keeps both.
pub fn rollback(
    reader: &Reader<'_>,
    cfg: Option<&Config>,
    (env, to): (&str, Option<u64>),
    reason: Option<String>,
    sign_key: Option<&ssh_key::PrivateKey>,
    progress: &dyn Progress,
) -> Result<SetJson> {
    let order = check_env(reader, cfg, env)?;
    let state = envconfig_store::settled(reader, env)?;
    let n = state.events.len() as u64;
    let target = match to {
        Some(t) if t >= 1 && t <= n => t,
        Some(t) => {
            return Err(UsageError(format!(
                "--to {t}: the config of {env} has events 1–{n} (`verbatim config history {env}`)"
            ))
            .into())
        }
        None if n >= 2 => n - 1,
        None => {
            return Err(UsageError(format!(
                "the config of {env} has {n} event(s): nothing before the one in effect to go back to (`config set` or `config set --unset` changes it)"
            ))
            .into())
        }
    };
    let from = state.values().cloned().unwrap_or_default();
    let back = &state.events[(target - 1) as usize].to;
    let (set, unset) = envconfig::diff(&from, back);
    if set.is_empty() && unset.is_empty() {
        progress.note(format!(
            "the config of {env} already is what config event {target} left; nothing to do"
        ));
        return Ok(unchanged(&state));
    }
    move_signer_rule(
        order.as_ref().and_then(|o| o.policy.as_ref()),
        env,
        sign_key,
    )?;
    let change = Change {
        kind: Kind::Rollback,
        set,
        unset,
        rollback_to: Some(target),
        reason,
    };
    record(reader, &state, change, sign_key, progress)
}

fn unchanged(state: &ConfigState) -> SetJson {
    SetJson {
        env: state.env.clone(),
        result: "unchanged",
        seq: state.current().map_or(0, |e| e.seq),
        set: Values::new(),
        unset: Vec::new(),
        config: state.values().cloned().unwrap_or_default(),
        site: None,
    }
}

/// Appends `change`, then writes the live site with it.
fn record(
    reader: &Reader<'_>,
    state: &ConfigState,
    change: Change,
    sign: Option<&ssh_key::PrivateKey>,
    progress: &dyn Progress,
) -> Result<SetJson> {
    let env = &state.env;
    let event = match envconfig_store::append(reader, state, change, sign)? {
        Appended::Written(e) => e,
        Appended::Lost(winner) => {
            let who = winner.map_or_else(
                || "another process wrote it first".to_owned(),
                |w| {
                    format!(
                        "{} ({}) at {}",
                        escape(&w.actor),
                        w.describe(),
                        escape(&w.time)
                    )
                },
            );
            return Err(LostRace(format!(
                "lost the race to change the config of {env}: {who}; check `verbatim config show {env}` and run again if still wanted"
            ))
            .into());
        }
    };
    progress.note(format!(
        "config of {env}: {} (config event {})",
        event.describe(),
        event.seq
    ));
    let site = super::site::rewrite_live(reader, env, progress)?.map(|(m, files)| SiteWritten {
        manifest: m.to_string(),
        files,
    });
    Ok(SetJson {
        env: env.clone(),
        result: match event.kind {
            Kind::Set => "set",
            Kind::Rollback => "rolled-back",
        },
        seq: event.seq,
        set: event.set,
        unset: event.unset,
        config: event.to,
        site,
    })
}

/// `config show --json`.
#[derive(Debug, Serialize)]
pub struct ShowJson {
    /// The environment.
    pub env: String,
    /// The config event in effect; `null` when there is none.
    pub seq: Option<u64>,
    /// When it was made.
    pub time: Option<String>,
    /// Who made it.
    pub actor: Option<String>,
    /// Why.
    pub reason: Option<String>,
    /// The config in effect (`{}` when there is none).
    pub config: Values,
}

/// `config show`: the config in effect, and the event that set it.
pub fn show(
    reader: &Reader<'_>,
    cfg: Option<&Config>,
    env: &str,
    progress: &dyn Progress,
) -> Result<ShowJson> {
    check_env(reader, cfg, env)?;
    let state = envconfig_store::load(reader, env)?;
    if let Some(p) = state.pending() {
        progress.note(format!(
            "{} is recorded but {} has not caught up yet; the next `config set` completes it",
            envconfig::log(env).event_key(p.seq),
            envconfig::pointer_key(env)
        ));
    }
    let current = state.current();
    Ok(ShowJson {
        env: env.to_owned(),
        seq: current.map(|e| e.seq),
        time: current.map(|e| e.time.clone()),
        actor: current.map(|e| e.actor.clone()),
        reason: current.and_then(|e| e.reason.clone()),
        config: state.values().cloned().unwrap_or_default(),
    })
}

/// `config history --json`.
#[derive(Debug, Serialize)]
pub struct HistoryJson {
    /// The environment.
    pub env: String,
    /// Newest first.
    pub events: Vec<ConfigEvent>,
    /// The fingerprints of the keys whose signature over each event
    /// verifies, by event (events without one are left out).
    pub signed: BTreeMap<u64, Vec<String>>,
    /// The walk of the hash chain (the load refuses a broken one, exit 5).
    pub verified: Verified,
}

/// `config history`: every change, newest first, the chain checked.
pub fn history(reader: &Reader<'_>, cfg: Option<&Config>, env: &str) -> Result<HistoryJson> {
    check_env(reader, cfg, env)?;
    let state = envconfig_store::load(reader, env)?;
    let verified = Verified::of(&state.events, &state.digests);
    let mut signed = BTreeMap::new();
    for e in &state.events {
        let keys = config_event_signers(reader.store(), env, e.seq, &e.to_bytes())?;
        if !keys.is_empty() {
            signed.insert(e.seq, keys.iter().map(crate::trust::fingerprint).collect());
        }
    }
    let mut events = state.events;
    events.reverse();
    Ok(HistoryJson {
        env: env.to_owned(),
        events,
        signed,
        verified,
    })
}
