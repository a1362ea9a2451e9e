//! A host's report to the store (`envs/<env>/hosts/<host>.json`), sent
//! after every step of a deploy that follows an environment. Best effort:
//! a host runs what it runs whether or not the store heard of it.
//!
//! With a report key (`--report-key`), the host signs each report: an
//! SSHSIG over its exact bytes in `verbatim-report@v1`, written to
//! `envs/<env>/hosts/<host>.sig` before the report itself, so that a
//! reader, which reads the report first, never finds an older signature
//! beside newer bytes (`environments::reports` says why it lives there).

use std::path::{Path, PathBuf};

use crate::clock::{now, rfc3339};
use crate::digest::Digest;
use crate::environments::reports::{self, Report, State};
use crate::progress::Progress;
use crate::store::{Body, Key, PutMode, PutOptions, Store};
use crate::trust::{sign_bytes, REPORT_NAMESPACE};

/// Sends the host's report, if it follows an environment. A report that
/// cannot be written is a warning: the host runs what it runs either way.
pub(super) struct Reporter<'a> {
    /// Where to send it; none, no report.
    pub store: Option<&'a dyn Store>,
    /// The environment followed; none, no report.
    pub env: Option<&'a str>,
    /// This host's id.
    pub host: &'a str,
    /// The manifest the deploy is of.
    pub manifest: String,
    /// The event of the pointer deployed.
    pub seq: Option<u64>,
    /// The sha256 of that event's stored bytes: which move the report
    /// answers (`promote --wait-hosts` counts it only for that one).
    pub event: Option<Digest>,
    /// Sign the report with this key (`--report-key`).
    pub key: Option<&'a ssh_key::PrivateKey>,
    /// Say the host may run a rollout's release phase.
    pub release_runner: bool,
    /// The agent's interval in milliseconds, when an agent reports: the
    /// report then says when the agent was last seen.
    pub interval_ms: Option<u64>,
    /// The deploy root, which keeps a copy of the newest report for the
    /// agent's heartbeats.
    pub root: &'a Path,
    pub progress: &'a dyn Progress,
}

impl Reporter<'_> {
    /// Sends the report; whether it reached the store.
    pub(super) fn send(
        &self,
        state: State,
        running: Option<&Digest>,
        detail: Option<String>,
    ) -> bool {
        let (Some(store), Some(env)) = (self.store, self.env) else {
            return false;
        };
        let report = Report {
            schema: reports::SCHEMA.into(),
            env: env.to_owned(),
            host: self.host.to_owned(),
            manifest: self.manifest.clone(),
            seq: self.seq,
            event: self.event.map(|d| d.to_string()),
            state,
            running: running.map(Digest::to_string),
            detail,
            time: rfc3339(now()),
            tool: format!("verbatim {}", env!("CARGO_PKG_VERSION")),
            release_runner: self.release_runner,
            last_seen: self.interval_ms.map(|_| rfc3339(now())),
            interval_ms: self.interval_ms,
        };
        keep_copy(self.root, &report);
        upload(store, &report, self.key, self.progress)
    }
}

/// Where a root keeps the newest report it sent about `env`.
fn copy_path(root: &Path, env: &str) -> PathBuf {
    root.join(".verbatim/reports").join(format!("{env}.json"))
}

/// Keeps `report` in the root (best effort: a heartbeat without it just
/// waits for the next deploy's report).
fn keep_copy(root: &Path, report: &Report) {
    let Ok(dir) = crate::safe_fs::create_dirs(root, Path::new(".verbatim/reports")) else {
        return;
    };
    let tmp = dir.join(format!(".{}.tmp", report.env));
    if std::fs::write(&tmp, report.to_bytes()).is_ok() {
        let _ = std::fs::rename(&tmp, copy_path(root, &report.env));
    }
}

/// Signs (with `key`) and writes `report`; whether it reached the store.
fn upload(
    store: &dyn Store,
    report: &Report,
    key: Option<&ssh_key::PrivateKey>,
    progress: &dyn Progress,
) -> bool {
    let (env, host) = (&report.env, &report.host);
    let bytes = report.to_bytes();
    if let Some(key) = key {
        // Before the report: see the module docs. A report without its
        // signature still goes out: `status` shows it, and a promoter
        // asking for signed reports ignores it.
        let signed = sign_bytes(key, REPORT_NAMESPACE, &bytes)
            .and_then(|sig| put(store, reports::signature_key(env, host), &sig));
        if let Err(e) = signed {
            progress.warn(format!("could not sign the report to the store: {e:#}"));
        }
    }
    match put(store, reports::report_key(env, host), &bytes) {
        Ok(_) => true,
        Err(e) => {
            progress.warn(format!("could not report to the store: {e:#}"));
            false
        }
    }
}

/// An agent's heartbeat: its newest report about `env` again, seen now
/// (and, with `stop`, in state `stopped` saying why); `false` when there
/// is no report to renew yet or the store did not take it.
pub fn heartbeat(
    store: &dyn Store,
    (root, env): (&Path, &str),
    interval_ms: u64,
    key: Option<&ssh_key::PrivateKey>,
    stop: Option<String>,
    progress: &dyn Progress,
) -> bool {
    let Ok(bytes) = crate::safe_fs::read_regular_limited(&copy_path(root, env), reports::MAX_BYTES)
    else {
        return false;
    };
    let Ok(mut report) = serde_json::from_slice::<Report>(&bytes) else {
        return false;
    };
    report.last_seen = Some(rfc3339(now()));
    report.interval_ms = Some(interval_ms);
    if let Some(why) = stop {
        report.state = State::Stopped;
        report.detail = Some(why);
        report.time = rfc3339(now());
    }
    keep_copy(root, &report);
    upload(store, &report, key, progress)
}

/// Overwrites `key` with `bytes`, read fresh every time.
fn put(store: &dyn Store, key: String, bytes: &[u8]) -> anyhow::Result<()> {
    let opts = PutOptions::json();
    store.put(
        &Key::new(key)?,
        Body::bytes(bytes),
        PutMode::Overwrite,
        &opts,
    )?;
    Ok(())
}
