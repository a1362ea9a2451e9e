//! Signing: `key generate`, `sign`, `publish --sign-key`, and the checks
//! that `verify` reports and hosts (`deploy`, `agent`, `fetch`) enforce.
//!
//! A signature is an OpenSSH SSHSIG over the manifest's exact stored bytes
//! in namespace `verbatim-manifest@v1`, stored create-only under
//! `signatures/sha256/<manifest-hex>/`. Who may sign as whom is the
//! business of an `allowed_signers` file the verifier holds: a host's trust
//! root lives on the host, never in the bucket.

use std::fs;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::Serialize;
use ssh_key::{HashAlg, LineEnding, PrivateKey, PublicKey};

use crate::cli::{Global, KeyArgs, KeyCommand, SignArgs, TrustArgs};
use crate::digest::Digest;
use crate::error::{IntegrityError, UsageError};
use crate::output::Printer;
use crate::signing::{self, AllowedSigners, MANIFEST_NAMESPACE};
use crate::store::{Body, Key, PutMode, Store, StoreError};

#[derive(Serialize)]
struct KeyJson {
    private_key: PathBuf,
    public_key: PathBuf,
    fingerprint: String,
}

#[derive(Serialize)]
struct SignJson {
    manifest: String,
    key: String,
    fingerprint: String,
    /// `written`, or `unchanged` when the store held this signature already.
    result: &'static str,
}

/// One stored signature of a manifest, as `verify` lists it.
#[derive(Debug, Serialize)]
pub struct SignatureJson {
    pub key: String,
    /// The signer's key, when the signature verifies.
    pub fingerprint: Option<String>,
    pub valid: bool,
    /// Why it does not verify.
    pub error: Option<String>,
    /// The principals of `--allowed-signers` the key may sign as.
    pub principals: Vec<String>,
}

pub fn run_key(_g: &Global, args: &KeyArgs, printer: &Printer) -> Result<()> {
    let KeyCommand::Generate { out, comment } = &args.command;
    let public = public_path(out);
    for p in [out, &public] {
        if fs::symlink_metadata(p).is_ok() {
            return Err(UsageError(format!(
                "{} exists; verbatim never overwrites a key: choose another --out or move it away",
                p.display()
            ))
            .into());
        }
    }
    let mut key = PrivateKey::random(&mut ssh_key::rand_core::OsRng, ssh_key::Algorithm::Ed25519)
        .context("generating an ed25519 key")?;
    key.set_comment(comment.as_deref().unwrap_or("verbatim"));
    let text = key.to_openssh(LineEnding::LF).context("encoding the key")?;
    write_new(out, text.as_bytes(), 0o600)?;
    let public_text = format!("{}\n", key.public_key().to_openssh()?);
    if let Err(e) = write_new(&public, public_text.as_bytes(), 0o644) {
        let _ = fs::remove_file(out);
        return Err(e);
    }
    let fingerprint = signing::fingerprint(key.public_key());
    printer.note(format!(
        "wrote {} (private, 0600) and {}; list it in an allowed_signers file as:",
        out.display(),
        public.display(),
    ));
    printer.note(format!("  <principal> {}", public_text.trim_end()));
    printer.result(&fingerprint)?;
    printer.json(&KeyJson {
        private_key: out.clone(),
        public_key: public,
        fingerprint,
    })?;
    Ok(())
}

fn public_path(private: &Path) -> PathBuf {
    let mut name = private.as_os_str().to_owned();
    name.push(".pub");
    PathBuf::from(name)
}

/// Creates `path` with `mode` (never replacing anything) and syncs it.
fn write_new(path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .with_context(|| format!("writing {}", path.display()))
}

/// Reads an unencrypted OpenSSH private key.
pub fn load_key(path: &Path) -> Result<PrivateKey> {
    let text = crate::safe_fs::read_regular(path)
        .with_context(|| format!("reading the signing key {}", path.display()))?;
    let key = PrivateKey::from_openssh(&text).map_err(|e| {
        UsageError(format!(
            "{} is not an OpenSSH private key ({e}); create one with `verbatim key generate --out FILE`",
            path.display()
        ))
    })?;
    if key.is_encrypted() {
        return Err(UsageError(format!(
            "{} is passphrase-protected, and verbatim reads unencrypted keys only: keep it in a CI secret, or sign with `ssh-keygen -Y sign -n {MANIFEST_NAMESPACE}` (ssh-agent, hardware keys) and add that with `verbatim sign --signature`",
            path.display()
        ))
        .into());
    }
    Ok(key)
}

pub fn run_sign(g: &Global, args: &SignArgs, printer: &Printer) -> Result<()> {
    let store = super::open_store_for(g)?;
    let id = super::resolve_manifest(store.as_ref(), &args.manifest)?;
    let bytes = super::load_manifest(store.as_ref(), &id)?.to_canonical_bytes();
    let (armored, key) = match (&args.key, &args.signature) {
        (Some(path), _) => {
            let key = load_key(path)?;
            (
                sign_bytes(&key, MANIFEST_NAMESPACE, &bytes)?,
                key.public_key().clone(),
            )
        }
        (None, Some(path)) => {
            let armored = crate::safe_fs::read_regular(path)
                .with_context(|| format!("reading {}", path.display()))?;
            let key = signing::check(&armored, &bytes, MANIFEST_NAMESPACE).map_err(|why| {
                IntegrityError(format!(
                    "{}: {why}; sign the manifest's stored bytes (`verbatim verify {id}` names it; fetch manifests/sha256/{}.json) with `ssh-keygen -Y sign -n {MANIFEST_NAMESPACE}`",
                    path.display(),
                    id.hex()
                ))
            })?;
            (armored, key)
        }
        (None, None) => unreachable!("clap requires --key or --signature"),
    };
    let (store_key, result) = store_signature(store.as_ref(), &id, &key, &armored)?;
    let fingerprint = signing::fingerprint(&key);
    printer.note(format!("{id} signed by {fingerprint}: {store_key}"));
    printer.result(format!("{result} {store_key}"))?;
    printer.json(&SignJson {
        manifest: id.to_string(),
        key: store_key,
        fingerprint,
        result,
    })?;
    Ok(())
}

/// An armored SSHSIG of `msg`, as `ssh-keygen -Y sign` makes it.
pub fn sign_bytes(key: &PrivateKey, namespace: &str, msg: &[u8]) -> Result<Vec<u8>> {
    let sig = key
        .sign(namespace, HashAlg::Sha512, msg)
        .context("signing")?;
    Ok(sig.to_pem(LineEnding::LF)?.into_bytes())
}

/// Stores a manifest signature create-only (ed25519 signatures are
/// deterministic: signing again is a no-op).
pub fn store_signature(
    store: &dyn Store,
    id: &Digest,
    key: &PublicKey,
    armored: &[u8],
) -> Result<(String, &'static str)> {
    let k = Key::new(signing::signature_key(id, key))?;
    let outcome = store
        .put(
            &k,
            Body::bytes(armored),
            PutMode::CreateOnly,
            &super::promote::json_opts(),
        )
        .with_context(|| format!("storing the signature {k}"))?;
    let result = match outcome {
        crate::store::PutOutcome::Written(_) => "written",
        crate::store::PutOutcome::Unchanged(_) => "unchanged",
    };
    Ok((k.to_string(), result))
}

/// A stored signature, checked: what `verify` shows, and the key that made
/// it when it verifies.
pub struct Checked {
    pub json: SignatureJson,
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
    for listed in store.list(&signing::signatures_prefix(id))? {
        let checked = if listed.size > signing::MAX_SIGNATURE_BYTES {
            Err(format!("{} bytes: too large for a signature", listed.size))
        } else {
            match store.get(&listed.key) {
                Ok(o) => match o.into_bytes_limited(signing::MAX_SIGNATURE_BYTES) {
                    Ok(armored) => signing::check(&armored, bytes, MANIFEST_NAMESPACE),
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
                    fingerprint: Some(signing::fingerprint(&key)),
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
    pub signers: AllowedSigners,
    pub source: PathBuf,
    pub require: Vec<String>,
}

impl Trust {
    /// `None` when neither `--allowed-signers` nor `--require` is given.
    pub fn from_args(args: &TrustArgs) -> Result<Option<Trust>> {
        let Some(path) = &args.allowed_signers else {
            if !args.require.is_empty() {
                return Err(UsageError(
                    "--require needs --allowed-signers FILE (or VERBATIM_ALLOWED_SIGNERS): the keys each principal signs with".into(),
                )
                .into());
            }
            return Ok(None);
        };
        Ok(Some(Trust {
            signers: read_allowed_signers(path)?,
            source: path.clone(),
            require: args.require.clone(),
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

pub fn read_allowed_signers(path: &Path) -> Result<AllowedSigners> {
    let text = fs::read_to_string(path)
        .with_context(|| format!("reading the allowed signers file {}", path.display()))?;
    let signers =
        AllowedSigners::parse(&text).map_err(|e| UsageError(format!("{}: {e}", path.display())))?;
    if signers.is_empty() {
        return Err(UsageError(format!(
            "{} lists no signers: add lines like `release@ci ssh-ed25519 AAAA…`",
            path.display()
        ))
        .into());
    }
    Ok(signers)
}

/// Every event signature of `env` (`promote --sign-key`), by event, each
/// checked against the event's stored bytes.
pub fn event_signatures(
    store: &dyn Store,
    env: &str,
    signers: Option<&AllowedSigners>,
) -> Result<std::collections::BTreeMap<u64, Vec<SignatureJson>>> {
    let prefix = signing::env_signatures_prefix(env);
    let now = crate::clock::now();
    let mut out: std::collections::BTreeMap<u64, Vec<SignatureJson>> = Default::default();
    let mut events: std::collections::BTreeMap<u64, Option<Vec<u8>>> = Default::default();
    for listed in store.list(&prefix)? {
        let Some(seq) = listed
            .key
            .as_str()
            .strip_prefix(&prefix)
            .and_then(|rest| rest.split_once('/'))
            .and_then(|(seq, _)| seq.parse::<u64>().ok())
        else {
            continue;
        };
        let event = match events.entry(seq) {
            std::collections::btree_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::btree_map::Entry::Vacant(v) => {
                let key = Key::new(crate::environments::event_key(env, seq))?;
                v.insert(match store.get(&key) {
                    Ok(o) => Some(o.into_bytes_limited(crate::manifest::MAX_BYTES)?),
                    Err(StoreError::NotFound { .. }) => None,
                    Err(e) => return Err(e.into()),
                })
            }
        };
        let checked = match event {
            None => Err(format!("event {seq} does not exist")),
            Some(bytes) if listed.size <= signing::MAX_SIGNATURE_BYTES => {
                match store.get(&listed.key) {
                    Ok(o) => o
                        .into_bytes_limited(signing::MAX_SIGNATURE_BYTES)
                        .map_err(|e| format!("unreadable: {e}"))
                        .and_then(|a| signing::check(&a, bytes, signing::EVENT_NAMESPACE)),
                    Err(StoreError::NotFound { .. }) => continue,
                    Err(e) => return Err(e.into()),
                }
            }
            Some(_) => Err(format!("{} bytes: too large for a signature", listed.size)),
        };
        out.entry(seq).or_default().push(match checked {
            Ok(key) => SignatureJson {
                key: listed.key.to_string(),
                fingerprint: Some(signing::fingerprint(&key)),
                valid: true,
                error: None,
                principals: signers
                    .map(|s| s.principals(&key, signing::EVENT_NAMESPACE, now))
                    .unwrap_or_default(),
            },
            Err(why) => SignatureJson {
                key: listed.key.to_string(),
                fingerprint: None,
                valid: false,
                error: Some(why),
                principals: Vec::new(),
            },
        });
    }
    Ok(out)
}
