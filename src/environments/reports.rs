//! Hosts report back: `envs/<env>/hosts/<host-id>.json`, each overwritten
//! by its own host after every deploy attempt. Reports never move a
//! pointer; `status` counts them and `promote --wait-hosts` waits on them.
//! [`read_reports`] reads them all; the rest is pure.

use anyhow::Result;
use serde::{Deserialize, Serialize};

use crate::progress::Progress;
use crate::store::{Store, StoreError};

/// The `schema` of every host [`Report`].
pub const SCHEMA: &str = "verbatim.host/v1";

/// The most bytes a report may have; a bigger one is not read.
pub const MAX_BYTES: u64 = 64 << 10;

/// Where a host stands with the manifest its report names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum State {
    /// Fetching, unpacking or running hooks.
    Deploying,
    /// `current` names the manifest and its check passed.
    Active,
    /// A hook or the check failed; the host runs `running`.
    Failed,
    /// The newest signed statement about the environment is older than
    /// the host's `--max-age`: it runs `running` and moves nowhere.
    Stale,
}

/// One host's report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Report {
    /// Always [`SCHEMA`].
    pub schema: String,
    /// The environment the host follows, or was deployed for.
    pub env: String,
    /// The host's id (`--host-id`, else its hostname; [`check_host_id`]); its
    /// key is [`report_key`] of it.
    pub host: String,
    /// The manifest the report is about: the one deployed, or attempted.
    pub manifest: String,
    /// The event of the environment's pointer the host followed; `None`
    /// when it was deployed by manifest or flipped back by hand.
    pub seq: Option<u64>,
    /// Where the host stands with `manifest`.
    pub state: State,
    /// What the host's `current` names now.
    pub running: Option<String>,
    /// The check hook's outcome, or why the attempt failed.
    pub detail: Option<String>,
    /// RFC 3339, UTC, by the host's clock.
    pub time: String,
    /// `verbatim <version>` on the host.
    pub tool: String,
}

impl Report {
    /// Its canonical JSON, stored at [`report_key`] (overwritten by its host
    /// only).
    pub fn to_bytes(&self) -> Vec<u8> {
        super::log::canonical(self)
    }
}

/// `envs/<env>/hosts/`: every host report of `env`.
pub fn hosts_prefix(env: &str) -> String {
    format!("envs/{env}/hosts/")
}

/// `envs/<env>/hosts/<host>.json`: the one report of `host`.
pub fn report_key(env: &str, host: &str) -> String {
    format!("{}{host}.json", hosts_prefix(env))
}

/// A host id becomes a store key: letters, digits, `.`, `_`, `-`, at most
/// 64, not starting with `.` or `-`.
pub fn check_host_id(id: &str) -> Result<(), String> {
    let ok = !id.is_empty()
        && id.len() <= 64
        && !id.starts_with(['.', '-'])
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "host id `{}` is not usable: use letters, digits, `.`, `_` and `-` (at most 64, not starting with `.` or `-`)",
            crate::text::escape(id)
        ))
    }
}

/// How the hosts stand with one move of an environment, for
/// `promote --wait-hosts`: reports about `manifest` that followed event
/// `seq` or a later one.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Tally {
    /// Hosts that run it, checked.
    pub active: Vec<String>,
    /// Hosts whose deploy of it failed, each with why.
    pub failed: Vec<(String, String)>,
}

/// Tallies `reports` for the move of `seq` to `manifest`: a report counts
/// when it names `manifest` and followed event `seq` or a later one; one
/// still deploying counts for nothing yet.
pub fn tally(reports: &[Report], manifest: &str, seq: u64) -> Tally {
    let mut t = Tally::default();
    for r in reports {
        if r.manifest != manifest || r.seq.is_none_or(|s| s < seq) {
            continue;
        }
        match r.state {
            State::Active => t.active.push(r.host.clone()),
            State::Failed => t
                .failed
                .push((r.host.clone(), r.detail.clone().unwrap_or_default())),
            State::Deploying | State::Stale => {}
        }
    }
    t
}

/// Every readable report under `envs/<env>/hosts/`; one that does not
/// parse is skipped (said with `--verbose`).
pub fn read_reports(store: &dyn Store, env: &str, progress: &dyn Progress) -> Result<Vec<Report>> {
    let mut out = Vec::new();
    for listed in store.list(&hosts_prefix(env))? {
        if listed.size > MAX_BYTES {
            progress.detail(format!(
                "{}: too large for a host report; skipped",
                listed.key
            ));
            continue;
        }
        let bytes = match store.get(&listed.key) {
            Ok(o) => o.into_bytes_limited(MAX_BYTES)?,
            Err(StoreError::NotFound { .. }) => continue,
            Err(e) => return Err(e.into()),
        };
        match serde_json::from_slice::<Report>(&bytes) {
            Ok(r) if listed.key.as_str() == report_key(env, &r.host) => out.push(r),
            _ => progress.detail(format!("{}: not a host report; skipped", listed.key)),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(host: &str, manifest: &str, seq: Option<u64>, state: State) -> Report {
        Report {
            schema: SCHEMA.into(),
            env: "prod".into(),
            host: host.into(),
            manifest: manifest.into(),
            seq,
            state,
            running: Some(manifest.into()),
            detail: Some("why".into()),
            time: "2026-11-29T00:00:00Z".into(),
            tool: "verbatim 0".into(),
        }
    }

    #[test]
    fn tally_counts_reports_of_this_move_only() {
        let reports = [
            report("a", "m2", Some(7), State::Active),
            report("b", "m2", Some(6), State::Active), // an older move of m2
            report("c", "m2", None, State::Active),    // by hand
            report("d", "m1", Some(7), State::Active), // another manifest
            report("e", "m2", Some(8), State::Failed),
            report("f", "m2", Some(7), State::Deploying),
        ];
        let t = tally(&reports, "m2", 7);
        assert_eq!(t.active, ["a"]);
        assert_eq!(t.failed, [("e".to_owned(), "why".to_owned())]);
    }

    #[test]
    fn host_ids() {
        for ok in ["web-1", "ip-10-0-0-1.ec2.internal", "A_b"] {
            assert!(check_host_id(ok).is_ok(), "{ok}");
        }
        for bad in ["", ".x", "-x", "a/b", "a b", "é", &"x".repeat(65)] {
            assert!(check_host_id(bad).is_err(), "{bad}");
        }
    }
}
