//! A host's report to the store (`envs/<env>/hosts/<host>.json`), sent
//! after every step of a deploy that follows an environment. Best effort:
//! a host runs what it runs whether or not the store heard of it.
//!
//! With a report key (`--report-key`), the host signs each report: an
//! SSHSIG over its exact bytes in `verbatim-report@v1`, written to
//! `envs/<env>/hosts/<host>.sig` before the report itself, so that a
//! reader, which reads the report first, never finds an older signature
//! beside newer bytes (`environments::reports` says why it lives there).

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
        };
        let bytes = report.to_bytes();
        if let Some(key) = self.key {
            // Before the report: see the module docs. A report without its
            // signature still goes out: `status` shows it, and a promoter
            // asking for signed reports ignores it.
            let signed = sign_bytes(key, REPORT_NAMESPACE, &bytes)
                .and_then(|sig| put(store, reports::signature_key(env, self.host), &sig));
            if let Err(e) = signed {
                self.progress
                    .warn(format!("could not sign the report to the store: {e:#}"));
            }
        }
        let sent = put(store, reports::report_key(env, self.host), &bytes);
        match sent {
            Ok(_) => true,
            Err(e) => {
                self.progress
                    .warn(format!("could not report to the store: {e:#}"));
                false
            }
        }
    }
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
