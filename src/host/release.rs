//! A rollout's host half beyond running a manifest: staging the target
//! without flipping to it (blue/green before the switch, and the release
//! phase), and the release phase itself: claimed create-only in the store
//! so that, of every host allowed to, exactly one runs the release command
//! once per rollout, in the staged release, before any host flips.

use std::path::Path;

use anyhow::{Context, Result};

use super::hooks::{describe, Hooks};
use crate::clock::{now, rfc3339};
use crate::digest::Digest;
use crate::environments::rolling::read_release_at;
use crate::environments::rollout::{release_claim_key, release_key, ReleaseRecord, RELEASE_SCHEMA};
use crate::process::Ended;
use crate::store::{Body, Key, PutMode, PutOptions, Store, StoreError};

/// The lines of the release command's output its record keeps.
const TAIL_LINES: usize = 20;

/// What the host did about a rollout's release phase.
pub(super) enum Release {
    /// Another host claimed it first.
    ClaimedElsewhere(String),
    /// This host ran it: how it ended.
    Ran(ReleaseRecord),
}

/// The release phase of rollout `rollout` of `env` on this host, with
/// `target` staged at `dir`: claims it (create-only; a host that finds a
/// claim does nothing), runs the release command of `hooks` with its
/// output kept under `log_dir`, and records how it ended (create-only).
/// A target without a release command records that it passed.
pub(super) fn release_phase(
    store: &dyn Store,
    (env, rollout): (&str, u64),
    target: &Digest,
    dir: &Path,
    hooks: &Hooks<'_>,
    (host, log_dir): (&str, &Path),
) -> Result<Release> {
    let record = |outcome: &str, detail: String| ReleaseRecord {
        schema: RELEASE_SCHEMA.into(),
        env: env.to_owned(),
        rollout,
        manifest: target.to_string(),
        host: host.to_owned(),
        outcome: outcome.to_owned(),
        detail,
        time: rfc3339(now()),
    };
    let claim = record("running", "claimed".into());
    let key = Key::new(release_claim_key(env, rollout))?;
    match store.put(
        &key,
        Body::bytes(&claim.to_bytes()),
        PutMode::CreateOnly,
        &PutOptions::json(),
    ) {
        Ok(_) => {}
        Err(StoreError::AlreadyExists { .. }) => {
            let by = read_release_at(store, &key)
                .ok()
                .flatten()
                .map_or_else(|| "another host".to_owned(), |r| r.host);
            return Ok(Release::ClaimedElsewhere(by));
        }
        Err(e) => return Err(e).with_context(|| format!("claiming {key}")),
    }
    hooks.progress.note(format!(
        "running the release phase of rollout {rollout} of {env} (claimed {key})"
    ));
    let log = log_dir.join(format!("release-{env}-{rollout}.log"));
    let ended = hooks.run_logged("release", target, None, dir, Some(&log));
    let tail = tail(&log);
    let done = match &ended {
        None => record("passed", format!("release command passed{tail}")),
        Some(e @ (Ended::Failed(_) | Ended::Interrupted(_) | Ended::Passed(_))) => {
            record("failed", format!("{}{tail}", describe(e)))
        }
    };
    let key = Key::new(release_key(env, rollout))?;
    store
        .put(
            &key,
            Body::bytes(&done.to_bytes()),
            PutMode::CreateOnly,
            &PutOptions::json(),
        )
        .with_context(|| format!("recording the release phase at {key}"))?;
    Ok(Release::Ran(done))
}

/// The last [`TAIL_LINES`] lines of `log`, after `"; output:\n"`, or
/// nothing when it is empty or unreadable.
fn tail(log: &Path) -> String {
    let Ok(text) = std::fs::read(log) else {
        return String::new();
    };
    let text = String::from_utf8_lossy(&text);
    let lines: Vec<&str> = text.lines().collect();
    if lines.is_empty() {
        return String::new();
    }
    let last = &lines[lines.len().saturating_sub(TAIL_LINES)..];
    format!("; output:\n{}", last.join("\n"))
}
