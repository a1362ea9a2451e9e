//! A host's report to the store (`envs/<env>/hosts/<host>.json`), sent
//! after every step of a deploy that follows an environment. Best effort:
//! a host runs what it runs whether or not the store heard of it.

use crate::clock::{now, rfc3339};
use crate::digest::Digest;
use crate::environments::reports::{self, Report, State};
use crate::progress::Progress;
use crate::store::{Body, Key, PutMode, PutOptions, Store};

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
        };
        let sent = Key::new(reports::report_key(env, self.host))
            .map_err(anyhow::Error::from)
            .and_then(|key| {
                store
                    .put(
                        &key,
                        Body::bytes(&report.to_bytes()),
                        PutMode::Overwrite,
                        &PutOptions::json(),
                    )
                    .map_err(anyhow::Error::from)
            });
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
