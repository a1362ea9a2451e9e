//! Freshness, as TUF's timestamp role gives it: a signed, expiring
//! statement that an environment's live event is still its newest
//! (`envs/<env>/timestamp.json`, overwritten). `promote` and `rollback`
//! with `--sign-key` write one; `verbatim timestamp ENV --sign-key KEY`
//! re-signs it on a schedule (in CI), so that a host with `--max-age` can
//! tell a pointer that is current from one frozen by an attacker or a
//! stuck replica. Its signatures are made in namespace
//! `verbatim-timestamp@v1` over the canonical bytes of `signed`.

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use ssh_key::{PrivateKey, PublicKey};

use super::reader::{EnvState, MAX_RECORD_BYTES};
use crate::clock::{now, parse_rfc3339, rfc3339};
use crate::digest::Digest;
use crate::error::{IntegrityError, UsageError};
use crate::store::{Body, Key, PutMode, PutOptions, Store, StoreError};
use crate::trust::{self, TIMESTAMP_NAMESPACE};

/// The `schema` of every [`Statement`].
pub const SCHEMA: &str = "verbatim.timestamp/v1";

/// How long a timestamp is valid when nobody says: a week.
pub const DEFAULT_VALID_SECS: u64 = 7 * 86_400;

/// What a timestamp says: as of `time`, event `seq` (`event`, the sha256
/// of its stored bytes) is the newest of `env`; believe it until `expires`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Statement {
    /// Always [`SCHEMA`].
    pub schema: String,
    /// The environment.
    pub env: String,
    /// Its newest event.
    pub seq: u64,
    /// `sha256:<hex>` of that event's stored bytes.
    pub event: String,
    /// RFC 3339, UTC: when it was signed.
    pub time: String,
    /// RFC 3339, UTC: after this, it says nothing.
    pub expires: String,
}

/// A stored timestamp: the statement and its armored SSH signatures.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Timestamp {
    /// What is signed, as [`Statement::to_bytes`] encodes it.
    pub signed: Statement,
    /// `-----BEGIN SSH SIGNATURE-----` blocks over those bytes.
    pub signatures: Vec<String>,
}

impl Statement {
    /// The bytes its signatures cover: compact JSON, fields in order.
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a statement serializes")
    }

    /// When it was signed and when it expires, in seconds since the epoch;
    /// `None` when either is not a time.
    pub fn times(&self) -> Option<(u64, u64)> {
        Some((parse_rfc3339(&self.time)?, parse_rfc3339(&self.expires)?))
    }
}

/// `envs/<env>/timestamp.json`
pub fn timestamp_key(env: &str) -> String {
    format!("envs/{env}/timestamp.json")
}

/// `verbatim timestamp ENV`: re-signs, with `key`, that the live event of
/// `state` is still its newest, valid for `valid_secs` (run on a schedule,
/// more often than hosts' `--max-age`).
pub fn vouch(
    store: &dyn Store,
    state: &EnvState,
    key: &PrivateKey,
    valid_secs: u64,
) -> Result<Statement> {
    let env = &state.env;
    let Some(live) = state.live_event() else {
        let reader = super::reader::Reader::new(store, crate::config::DEFAULT_CONCURRENCY);
        if let Some(unknown) = super::policy_store::not_in_policy(&reader, env) {
            return Err(unknown);
        }
        return Err(UsageError(format!(
            "nothing is live in {env}: there is no move to vouch for; promote first"
        ))
        .into());
    };
    if state.pending().is_some() {
        return Err(UsageError(format!(
            "{env} has a move whose pointer is not written yet (event {}): run `verbatim status {env}` to settle it first",
            live.seq + 1
        ))
        .into());
    }
    let event = state.digests[state.applied - 1];
    write_timestamp(store, env, (live.seq, &event), key, valid_secs)
}

/// Signs, with `key`, that event `seq` (`event`, its sha256) is the newest
/// of `env`, valid for `valid_secs`, and stores it over the previous
/// timestamp.
pub fn write_timestamp(
    store: &dyn Store,
    env: &str,
    (seq, event): (u64, &Digest),
    key: &PrivateKey,
    valid_secs: u64,
) -> Result<Statement> {
    let at = now();
    let signed = Statement {
        schema: SCHEMA.into(),
        env: env.to_owned(),
        seq,
        event: event.to_string(),
        time: rfc3339(at),
        expires: rfc3339(at.saturating_add(valid_secs)),
    };
    let armored = trust::sign_bytes(key, TIMESTAMP_NAMESPACE, &signed.to_bytes())?;
    let doc = Timestamp {
        signatures: vec![String::from_utf8(armored).context("an armored signature")?],
        signed: signed.clone(),
    };
    let bytes = serde_json::to_vec_pretty(&doc)?;
    store
        .put(
            &Key::new(timestamp_key(env))?,
            Body::bytes(&bytes),
            PutMode::Overwrite,
            &PutOptions::json(),
        )
        .with_context(|| format!("storing the timestamp of {env}"))?;
    Ok(signed)
}

/// The timestamp of `env`, `None` when it has none. One that does not
/// parse is an integrity error naming it.
pub fn read_timestamp(store: &dyn Store, env: &str) -> Result<Option<Timestamp>> {
    let key = Key::new(timestamp_key(env))?;
    let bytes = match store.get(&key) {
        Ok(o) => o
            .into_bytes_limited(MAX_RECORD_BYTES)
            .with_context(|| format!("reading {key}"))?,
        Err(StoreError::NotFound { .. }) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let t: Timestamp = serde_json::from_slice(&bytes)
        .map_err(|e| IntegrityError(format!("{key} is not a timestamp: {e}")))?;
    if t.signed.schema != SCHEMA || t.signed.env != env {
        return Err(IntegrityError(format!(
            "{key} is a timestamp of `{}` ({}), not of {env} ({SCHEMA})",
            t.signed.env, t.signed.schema
        ))
        .into());
    }
    Ok(Some(t))
}

impl Timestamp {
    /// The keys whose signature over the statement verifies.
    pub fn signers(&self) -> Vec<PublicKey> {
        let bytes = self.signed.to_bytes();
        self.signatures
            .iter()
            .filter_map(|a| trust::check(a.as_bytes(), &bytes, TIMESTAMP_NAMESPACE).ok())
            .collect()
    }
}
