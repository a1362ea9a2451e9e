//! Read-only views of environments: what `status` and `history` show.
//!
//! Both say where canary checks stand: `status` marks an environment whose
//! live manifest came with a check that has not passed (pending, expired or
//! failed) as unchecked; `history` gives each check's status beside the
//! move that started it, and every event's signatures, checked. A history
//! that loaded has an intact hash chain: the load refused a broken one.

use std::collections::BTreeMap;

use anyhow::Result;
use serde::Serialize;

use super::checks::check_status;
use super::event::{event_key, CheckState, CheckStatus, Event};
use super::hosts::counts;
use super::policy_store::{stored_order_to_read, Order};
use super::reader::{EnvState, Reader, Verified};
use super::reports::{check_named_event, report_key, Liveness, Report, State};
use super::signatures::{check_event_signatures, event_signatures};
use crate::clock::{now, parse_rfc3339};
use crate::config::{check_env_name, Config};
use crate::error::UsageError;
use crate::objects::load_manifest;
use crate::progress::Progress;
use crate::store::Store;
use crate::trust::{AllowedSigners, SignatureJson};

/// `status`: every environment (or `env` alone), in order. A
/// `verbatim.toml` (`cfg`) disagreeing with the store's order is warned
/// about, and the store's order shown.
pub fn status(
    reader: &Reader<'_>,
    cfg: Option<Config>,
    env: Option<&str>,
    progress: &dyn Progress,
) -> Result<Vec<EnvJson>> {
    let store = reader.store();
    let stored = stored_order_to_read(reader, cfg.as_ref(), progress)?;
    let names = match env {
        Some(e) => {
            check_declared(e, stored, cfg, store)?;
            vec![e.to_owned()]
        }
        None => env_names(stored, cfg, store)?,
    };
    names
        .into_iter()
        .map(|env| env_status(reader, env, progress))
        .collect()
}

/// One environment's status.
fn env_status(reader: &Reader<'_>, env: String, progress: &dyn Progress) -> Result<EnvJson> {
    let store = reader.store();
    let state = reader.load(&env)?;
    note_pending(progress, &state);
    let check = match (state.live_event(), state.live_check(now())) {
        (Some(live), Some((status, detail))) => live.check.as_ref().map(|c| EnvCheckJson {
            seq: live.seq,
            cmd: c.cmd.clone(),
            hosts: c.hosts,
            host_ids: c.host_ids.clone(),
            signed_reports: c.signed_reports,
            deadline: c.deadline.clone(),
            status,
            detail,
        }),
        _ => None,
    };
    let unchecked = check.as_ref().is_some_and(|c| !c.status.passed());
    let reports = counted_reports(store, &state, progress)?;
    let p = state.pointer.map(|(p, _)| p);
    let now = now();
    let on_manifest = reports
        .iter()
        .filter(|r| {
            r.state == State::Active
                && Some(&r.manifest) == p.as_ref().map(|p| &p.manifest)
                && counts(r.liveness(now))
        })
        .count();
    let live = reports.iter().filter(|r| counts(r.liveness(now))).count();
    let provenance = match &p {
        Some(p) => {
            let id = p.manifest.parse().map_err(anyhow::Error::msg)?;
            Some(load_manifest(store, &id)?.provenance)
        }
        None => None,
    };
    let hosts: Vec<HostJson> = reports
        .into_iter()
        .map(|r| HostJson {
            age_secs: parse_rfc3339(&r.time).map(|t| now.saturating_sub(t)),
            seen_secs: r
                .last_seen
                .as_deref()
                .and_then(parse_rfc3339)
                .map(|t| now.saturating_sub(t)),
            liveness: r.liveness(now),
            report: r,
        })
        .collect();
    Ok(EnvJson {
        env,
        manifest: p.as_ref().map(|p| p.manifest.clone()),
        seq: p.as_ref().map(|p| p.seq),
        time: p.as_ref().map(|p| p.time.clone()),
        actor: p.map(|p| p.actor),
        check,
        unchecked,
        revision: provenance.as_ref().and_then(|pv| pv.revision.clone()),
        branch: provenance.as_ref().and_then(|pv| pv.branch.clone()),
        dirty: provenance.as_ref().is_some_and(|pv| pv.dirty),
        ci_url: provenance.and_then(|pv| pv.ci_url),
        hosts_on_manifest: on_manifest,
        hosts_live: live,
        hosts,
    })
}

/// An environment's history, as `history` shows it.
pub struct History {
    /// Every event, newest first, with where its canary check stands.
    pub events: Vec<(Event, Option<CheckState>)>,
    /// Each event's signatures, checked, by sequence number.
    pub signatures: BTreeMap<u64, Vec<SignatureJson>>,
    /// With `verify`: the verdict on the hash chain.
    pub verified: Option<Verified>,
}

/// `history`: `env`'s events, newest first (at most `limit`), their checks
/// and signatures (the principals `signers` grants); with `verify`, the
/// chain's verdict comes back, and a bad signature, a key `signers` does
/// not list, or an unsigned event after a signed one is an integrity
/// error (exit 5; [`check_event_signatures`]).
pub fn history(
    reader: &Reader<'_>,
    cfg: Option<Config>,
    env: &str,
    signers: Option<&AllowedSigners>,
    (verify, limit): (bool, Option<usize>),
    progress: &dyn Progress,
) -> Result<History> {
    let store = reader.store();
    let stored = stored_order_to_read(reader, cfg.as_ref(), progress)?;
    check_declared(env, stored, cfg, store)?;
    let state = reader.load(env)?;
    if state.events.is_empty() {
        progress.note(format!("{env}: no history (nothing promoted yet)"));
    }
    note_pending(progress, &state);
    let records = reader.check_records(&state)?;
    // The load walked the chain and refused a broken one (exit 5).
    let verified = verify.then(|| Verified::of(&state.events, &state.digests));
    let signatures = event_signatures(store, env, signers)?;
    if verify {
        let seqs = state.events.iter().map(|e| e.seq);
        check_event_signatures(env, seqs, &signatures, signers.is_some())?;
    }
    let now = now();
    let checks: Vec<Option<CheckState>> = (0..state.events.len())
        .map(|i| {
            let seq = state.events[i].seq;
            check_status(&state.events, i, records.get(&seq), now)
        })
        .collect();
    let mut events: Vec<(Event, Option<CheckState>)> =
        state.events.into_iter().zip(checks).collect();
    events.reverse();
    if let Some(n) = limit {
        events.truncate(n);
    }
    Ok(History {
        events,
        signatures,
        verified,
    })
}

/// One environment, as `status --json` shows it.
#[derive(Serialize)]
pub struct EnvJson {
    /// Its name.
    pub env: String,
    /// `null` when nothing was ever promoted there.
    pub manifest: Option<String>,
    /// The event of the live move.
    pub seq: Option<u64>,
    /// When it was made.
    pub time: Option<String>,
    /// Who made it.
    pub actor: Option<String>,
    /// The canary check of the move that made `manifest` live; `null` when
    /// that move started none.
    pub check: Option<EnvCheckJson>,
    /// True when that check has not passed: `manifest` is live unverified.
    pub unchecked: bool,
    /// Where `manifest` was built from, as its provenance records it.
    pub revision: Option<String>,
    /// The branch it was built from.
    pub branch: Option<String>,
    /// Whether it was built from a work tree with uncommitted changes.
    pub dirty: bool,
    /// The CI run that built it.
    pub ci_url: Option<String>,
    /// Live hosts whose report says they run `manifest`, checked
    /// (`active`).
    pub hosts_on_manifest: usize,
    /// Hosts that count: live, or known only by a deploy's report.
    pub hosts_live: usize,
    /// Every host that reports to the environment, by id.
    pub hosts: Vec<HostJson>,
}

/// A host's report, as `status --json` shows it.
#[derive(Serialize)]
pub struct HostJson {
    /// The host's report.
    #[serde(flatten)]
    pub report: Report,
    /// Seconds since the report was written, by this machine's clock.
    pub age_secs: Option<u64>,
    /// Seconds since its agent was last seen, when an agent reports.
    pub seen_secs: Option<u64>,
    /// Whether its agent is alive: `live`, `stale` (not seen for
    /// `reports::STALE_INTERVALS` of its interval), `stopped`, or
    /// `unknown` (a deploy's report).
    pub liveness: Liveness,
}

/// The canary check of an environment's live move.
#[derive(Serialize)]
pub struct EnvCheckJson {
    /// The event that started it.
    pub seq: u64,
    /// Its command (`--check-cmd`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cmd: Option<String>,
    /// The hosts it waits for (`--wait-hosts`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hosts: Option<u64>,
    /// Those hosts by id, when `--wait-hosts` named them.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub host_ids: Vec<String>,
    /// Whether only signed reports count (`--signed-reports`).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub signed_reports: bool,
    /// When it is ended at the latest.
    pub deadline: String,
    /// `pending` (may still run), `expired` (never finished), `passed`, `failed`.
    pub status: CheckStatus,
    /// How it ended, in words.
    pub detail: Option<String>,
}

/// The reports of `state.env` that count for `status`: those that pass
/// `reports::check_report` and whose named event, if any, is the stored
/// one. Every other is a warning naming its key and why.
fn counted_reports(
    store: &dyn Store,
    state: &EnvState,
    progress: &dyn Progress,
) -> Result<Vec<Report>> {
    let read = super::hosts::known_reports(store, &state.env)?;
    let mut out = Vec::new();
    let stored = |seq: u64| {
        let i = state.events.iter().position(|e| e.seq == seq)?;
        state.digests.get(i)
    };
    let mut ignored = read.ignored;
    for r in read.reports {
        match check_named_event(&r, r.seq.and_then(stored)) {
            Ok(()) => out.push(r),
            Err(why) => ignored.push((report_key(&state.env, &r.host), why)),
        }
    }
    for (key, why) in ignored {
        progress.warn(format!("{key}: not counted: {why}"));
    }
    Ok(out)
}

/// Says so when the newest event is recorded but not yet applied.
fn note_pending(progress: &dyn Progress, state: &EnvState) {
    if let Some(e) = state.pending() {
        progress.note(format!(
            "{}: {} (to {}) is recorded but the pointer has not moved yet; the next promote or rollback of {} completes it",
            state.env,
            event_key(&state.env, e.seq),
            e.to,
            state.env
        ));
    }
}

/// An environment asked for by name must be one of the known ones (the
/// store's order, else the config's, else those with a pointer), with a
/// did-you-mean; when nothing names any environment, any name is looked up.
pub fn check_declared(
    env: &str,
    stored: Option<Order>,
    cfg: Option<Config>,
    store: &dyn Store,
) -> Result<()> {
    check_env_name(env).map_err(UsageError)?;
    let order = match (stored, cfg) {
        (Some(order), _) => order,
        (None, Some(cfg)) => Order::of_config(&cfg),
        (None, None) => match env_names(None, None, store) {
            Ok(names) => Order::of_pointers(names, &store.location()),
            Err(_) => return Ok(()),
        },
    };
    order.check_env(env)
}

/// The environments in order: the store's policy, else the config's order,
/// else, with neither, those found in the store.
pub fn env_names(
    stored: Option<Order>,
    cfg: Option<Config>,
    store: &dyn Store,
) -> Result<Vec<String>> {
    if let Some(order) = stored {
        return Ok(order.names);
    }
    if let Some(cfg) = cfg {
        return Ok(cfg.order());
    }
    let mut names: Vec<String> = store
        .list("envs/")?
        .iter()
        .filter_map(|l| {
            l.key
                .as_str()
                .strip_prefix("envs/")?
                .strip_suffix(".json")
                .map(String::from)
        })
        .filter(|n| !n.contains('/'))
        .collect();
    names.sort();
    if names.is_empty() {
        return Err(UsageError(format!(
            "no environments in {} and no verbatim.toml to list them from",
            store.location()
        ))
        .into());
    }
    Ok(names)
}
