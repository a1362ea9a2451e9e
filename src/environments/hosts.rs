//! The hosts an environment knows: their reports, less the ones a person
//! forgot (`hosts forget`), each with its liveness. Forgetting is an act
//! on the record, never a delete: a create-only document at
//! `envs/<env>/forgotten/<host>/<time>.json` saying who forgot which
//! report and why. A forgotten host that reports again (a newer
//! `last_seen`) comes back.

use std::collections::BTreeMap;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use super::reports::{check_host_id, read_reports, Liveness, Report, Reports};
use crate::clock::{now, parse_rfc3339, rfc3339};
use crate::error::UsageError;
use crate::store::{Body, Key, PutMode, PutOptions, Store};

/// The `schema` of every [`Forgotten`] record.
pub const SCHEMA: &str = "verbatim.forget/v1";

/// A host forgotten by a person: it no longer counts, until it reports
/// after `seen`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Forgotten {
    /// Always [`SCHEMA`].
    pub schema: String,
    /// The environment.
    pub env: String,
    /// The host forgotten.
    pub host: String,
    /// RFC 3339: when its report forgotten was last seen (or written);
    /// a report seen later brings the host back.
    pub seen: String,
    /// Who forgot it.
    pub actor: String,
    /// When.
    pub time: String,
    /// Why (`--reason`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// `envs/<env>/forgotten/`.
fn prefix(env: &str) -> String {
    format!("envs/{env}/forgotten/")
}

/// When a report was last heard of: its `last_seen`, else its `time`.
fn heard(r: &Report) -> u64 {
    r.last_seen
        .as_deref()
        .or(Some(r.time.as_str()))
        .and_then(parse_rfc3339)
        .unwrap_or(0)
}

/// Every forget record of `env`, oldest first; records that do not parse
/// or do not agree with their key are skipped (they forget nothing).
pub fn forgotten(store: &dyn Store, env: &str) -> Result<Vec<Forgotten>> {
    let mut out = Vec::new();
    for listed in store.list(&prefix(env))? {
        let key = listed.key;
        let Some((bytes, _)) = super::reader::get_record(store, &key)? else {
            continue;
        };
        let Ok(f) = serde_json::from_slice::<Forgotten>(&bytes) else {
            continue;
        };
        let agrees = f.schema == SCHEMA
            && f.env == env
            && key
                .as_str()
                .starts_with(&format!("{}{}/", prefix(env), f.host));
        if agrees {
            out.push(f);
        }
    }
    out.sort_by(|a, b| a.time.cmp(&b.time));
    Ok(out)
}

/// The reports of `env` that count: those [`read_reports`] keeps, less
/// the hosts forgotten since they were last heard of.
pub fn known_reports(store: &dyn Store, env: &str) -> Result<Reports> {
    let mut read = read_reports(store, env)?;
    let mut gone: BTreeMap<String, u64> = BTreeMap::new();
    for f in forgotten(store, env)? {
        let seen = parse_rfc3339(&f.seen).unwrap_or(u64::MAX);
        let at = gone.entry(f.host).or_default();
        *at = (*at).max(seen);
    }
    read.reports
        .retain(|r| gone.get(&r.host).is_none_or(|&seen| heard(r) > seen));
    Ok(read)
}

/// Whether a host of this liveness counts (against `--wait-hosts`, a
/// rollout's waves, `status`'s count): alive, or a deploy's report that
/// cannot tell.
pub fn counts(l: Liveness) -> bool {
    matches!(l, Liveness::Live | Liveness::Unknown)
}

/// `hosts forget HOST --env ENV`: records that `host`'s report (as last
/// heard of) no longer counts. A usage error when `env` has no report of
/// `host`.
pub fn forget(
    store: &dyn Store,
    env: &str,
    host: &str,
    reason: Option<String>,
) -> Result<Forgotten> {
    check_host_id(host).map_err(UsageError)?;
    let reports = known_reports(store, env)?.reports;
    let Some(report) = reports.iter().find(|r| r.host == host) else {
        let known: Vec<&str> = reports.iter().map(|r| r.host.as_str()).collect();
        return Err(UsageError(format!(
            "{env} knows no host `{host}` (it knows: {}); see `verbatim hosts list --env {env}`",
            if known.is_empty() {
                "none".to_owned()
            } else {
                known.join(", ")
            }
        ))
        .into());
    };
    let f = Forgotten {
        schema: SCHEMA.into(),
        env: env.to_owned(),
        host: host.to_owned(),
        seen: rfc3339(heard(report)),
        actor: crate::actor::actor(),
        time: rfc3339(now()),
        reason,
    };
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let key = Key::new(format!("{}{host}/{nanos:024}.json", prefix(env)))?;
    store
        .put(
            &key,
            Body::bytes(&super::log::canonical(&f)),
            PutMode::CreateOnly,
            &PutOptions::json(),
        )
        .with_context(|| format!("recording {key}"))?;
    Ok(f)
}
