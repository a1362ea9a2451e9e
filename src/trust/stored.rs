//! Signatures in the store: storing one, listing and checking a manifest's,
//! and the rule a host enforces before it downloads a release ([`Trust`]).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::Serialize;
use ssh_key::{PrivateKey, PublicKey};

use super::allowed_signers::{read_allowed_signers, AllowedSigners};
use super::names::{
    fingerprint, signature_key, signatures_prefix, MANIFEST_NAMESPACE, MAX_SIGNATURE_BYTES,
};
use super::sshsig::{check, sign_bytes};
use crate::digest::Digest;
use crate::error::{IntegrityError, UsageError};
use crate::store::{Body, Key, PutMode, PutOptions, PutOutcome, Store, StoreError};

/// A signature [`sign_manifest`] stored, as `sign --json` prints it.
#[derive(Serialize)]
pub struct SignJson {
    /// The manifest signed.
    pub manifest: String,
    /// Where the signature is stored.
    pub key: String,
    /// The signer's key.
    pub fingerprint: String,
    /// `written`, or `unchanged` when the store held this signature already.
    pub result: &'static str,
}

/// One stored signature of a manifest, as `verify` lists it.
#[derive(Debug, Serialize)]
pub struct SignatureJson {
    /// Its store key, under `signatures/sha256/<manifest hex>/`.
    pub key: String,
    /// The signer's key, when the signature verifies.
    pub fingerprint: Option<String>,
    /// Whether it verifies over the manifest's stored bytes, in the manifest
    /// namespace.
    pub valid: bool,
    /// Why it does not verify.
    pub error: Option<String>,
    /// The principals of `--allowed-signers` the key may sign as.
    pub principals: Vec<String>,
}

/// How a signature is given to [`sign_manifest`]: a key to sign with, or a
/// signature made elsewhere (`ssh-keygen -Y sign`, an agent) to check and
/// store.
pub enum Signer<'a> {
    /// Sign with this private key.
    Key(&'a PrivateKey),
    /// Store this armored signature, once it verifies.
    Signature {
        /// The signature's bytes.
        armored: Vec<u8>,
        /// Where it came from, for messages.
        source: PathBuf,
    },
}

/// Signs manifest `id` (its stored `bytes`) or adds a signature made
/// elsewhere, stored create-only (`verbatim sign`).
pub fn sign_manifest(
    store: &dyn Store,
    id: &Digest,
    bytes: &[u8],
    signer: Signer<'_>,
) -> Result<SignJson> {
    let (armored, key) = match signer {
        Signer::Key(key) => (
            sign_bytes(key, MANIFEST_NAMESPACE, bytes)?,
            key.public_key().clone(),
        ),
        Signer::Signature { armored, source } => {
            let key = check(&armored, bytes, MANIFEST_NAMESPACE).map_err(|why| {
                IntegrityError(format!(
                    "{}: {why}; sign the manifest's stored bytes (`verbatim verify {id}` names it; fetch manifests/sha256/{}.json) with `ssh-keygen -Y sign -n {MANIFEST_NAMESPACE}`",
                    source.display(),
                    id.hex()
                ))
            })?;
            (armored, key)
        }
    };
    let (store_key, result) = store_signature(store, id, &key, &armored)?;
    Ok(SignJson {
        manifest: id.to_string(),
        key: store_key,
        fingerprint: fingerprint(&key),
        result,
    })
}

/// Stores a manifest signature create-only (ed25519 signatures are
/// deterministic: signing again is a no-op).
pub fn store_signature(
    store: &dyn Store,
    id: &Digest,
    key: &PublicKey,
    armored: &[u8],
) -> Result<(String, &'static str)> {
    let k = Key::new(signature_key(id, key))?;
    let outcome = store
        .put(
            &k,
            Body::bytes(armored),
            PutMode::CreateOnly,
            &PutOptions::json(),
        )
        .with_context(|| format!("storing the signature {k}"))?;
    let result = match outcome {
        PutOutcome::Written(_) => "written",
        PutOutcome::Unchanged(_) => "unchanged",
    };
    Ok((k.to_string(), result))
}

/// A stored signature, checked: what `verify` shows, and the key that made
/// it when it verifies.
pub struct Checked {
    /// The signature as `verify --json` lists it.
    pub json: SignatureJson,
    /// The key that made it; `None` when it does not verify.
    pub key: Option<PublicKey>,
}

/// Every signature stored for manifest `id` (`bytes`, its stored bytes),
/// checked, with the principals `signers` grants each key.
pub fn signatures(
    store: &dyn Store,
    id: &Digest,
    bytes: &[u8],
    signers: Option<&AllowedSigners>,
) -> Result<Vec<Checked>> {
    let now = crate::clock::now();
    let mut out = Vec::new();
    for listed in store.list(&signatures_prefix(id))? {
        let checked = if listed.size > MAX_SIGNATURE_BYTES {
            Err(format!("{} bytes: too large for a signature", listed.size))
        } else {
            match store.get(&listed.key) {
                Ok(o) => match o.into_bytes_limited(MAX_SIGNATURE_BYTES) {
                    Ok(armored) => check(&armored, bytes, MANIFEST_NAMESPACE),
                    Err(e) => Err(format!("unreadable: {e}")),
                },
                Err(StoreError::NotFound { .. }) => continue,
                Err(e) => return Err(e.into()),
            }
        };
        out.push(match checked {
            Ok(key) => Checked {
                json: SignatureJson {
                    key: listed.key.to_string(),
                    fingerprint: Some(fingerprint(&key)),
                    valid: true,
                    error: None,
                    principals: signers
                        .map(|s| s.principals(&key, MANIFEST_NAMESPACE, now))
                        .unwrap_or_default(),
                },
                key: Some(key),
            },
            Err(why) => Checked {
                json: SignatureJson {
                    key: listed.key.to_string(),
                    fingerprint: None,
                    valid: false,
                    error: Some(why),
                    principals: Vec::new(),
                },
                key: None,
            },
        });
    }
    Ok(out)
}

/// What a host trusts: an `allowed_signers` file and the principals every
/// manifest must be signed by.
pub struct Trust {
    /// The `allowed_signers` file: which keys may sign as which principal.
    pub signers: AllowedSigners,
    /// Where that file is, for messages.
    pub source: PathBuf,
    /// Principals that must each have signed a manifest (`--require`); empty:
    /// a signature by any principal of the file will do.
    pub require: Vec<String>,
    /// Principals that must each have signed the environment event a host
    /// acts on (`--require-event-signer`); empty: events are not checked.
    pub require_event: Vec<String>,
    /// With `require_event`: how old, in seconds, the newest signed
    /// statement about the environment may be (`--max-age`).
    pub max_age: Option<u64>,
}

/// What a host was told to trust, as flags and variables give it.
#[derive(Debug, Default)]
pub struct TrustRules<'a> {
    /// `--allowed-signers`.
    pub allowed_signers: Option<&'a Path>,
    /// `--require`.
    pub require: &'a [String],
    /// `--require-event-signer`.
    pub require_event: &'a [String],
    /// `--max-age`, in seconds.
    pub max_age: Option<u64>,
}

impl Trust {
    /// What a host trusts: the `allowed_signers` file (`--allowed-signers`),
    /// the principals every manifest needs (`--require`) and every event
    /// (`--require-event-signer`), and `--max-age`; `None` when no file is
    /// given (and then none of the rest may be).
    pub fn new(rules: &TrustRules<'_>) -> Result<Option<Trust>> {
        if rules.max_age.is_some() && rules.require_event.is_empty() {
            return Err(UsageError(
                "--max-age needs --require-event-signer PRINCIPAL: freshness is only as good as the signature that vouches for it".into(),
            )
            .into());
        }
        let Some(path) = rules.allowed_signers else {
            for (flag, given) in [
                ("--require", !rules.require.is_empty()),
                ("--require-event-signer", !rules.require_event.is_empty()),
            ] {
                if given {
                    return Err(UsageError(format!(
                        "{flag} needs --allowed-signers FILE (or VERBATIM_ALLOWED_SIGNERS): the keys each principal signs with"
                    ))
                    .into());
                }
            }
            return Ok(None);
        };
        Ok(Some(Trust {
            signers: read_allowed_signers(path)?,
            source: path.to_owned(),
            require: rules.require.to_vec(),
            require_event: rules.require_event.to_vec(),
            max_age: rules.max_age,
        }))
    }

    /// Refuses (exit 5) manifest `id` unless, for every required principal
    /// (or, with none required, for some principal of the file), a stored
    /// signature over `bytes` verifies with a key the file allows for it.
    pub fn check(&self, store: &dyn Store, id: &Digest, bytes: &[u8]) -> Result<()> {
        let sigs = signatures(store, id, bytes, Some(&self.signers))?;
        let now = crate::clock::now();
        let by = |principal: &str| {
            sigs.iter().any(|s| {
                s.key
                    .as_ref()
                    .is_some_and(|k| self.signers.allows(k, principal, MANIFEST_NAMESPACE, now))
            })
        };
        let missing: Vec<&str> = if self.require.is_empty() {
            if sigs.iter().any(|s| !s.json.principals.is_empty()) {
                vec![]
            } else {
                vec!["any principal of the file"]
            }
        } else {
            self.require
                .iter()
                .map(String::as_str)
                .filter(|p| !by(p))
                .collect()
        };
        if missing.is_empty() {
            return Ok(());
        }
        let found = if sigs.is_empty() {
            "it has no signatures".to_owned()
        } else {
            sigs.iter()
                .map(|s| &s.json)
                .map(|s| match (&s.error, &s.fingerprint) {
                    (Some(e), _) => format!("{}: {e}", s.key),
                    (None, Some(fp)) if s.principals.is_empty() => {
                        format!(
                            "{}: by {fp}, a key {} does not list",
                            s.key,
                            self.source.display()
                        )
                    }
                    (None, Some(fp)) => {
                        format!("{}: by {fp} as {}", s.key, s.principals.join(", "))
                    }
                    (None, None) => s.key.clone(),
                })
                .collect::<Vec<_>>()
                .join("; ")
        };
        Err(IntegrityError(format!(
            "refusing manifest {id}: it has no valid signature by {} (allowed signers: {}); found: {found}",
            missing.join(", "),
            self.source.display()
        ))
        .into())
    }
}
