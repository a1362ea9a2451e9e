//! Signatures in environments: `promote --sign-key` and `rollback
//! --sign-key` sign an event's stored bytes in namespace
//! `verbatim-event@v1`, stored create-only under
//! `envs/<env>/signatures/<seq>/`, and `history` lists and checks them;
//! the `signatures` gate of a promote checks the manifest's signatures
//! against the principals the policy requires.

use anyhow::Result;

use super::event::Gate;
use super::policy::{self, Policy};
use crate::clock::now;
use crate::digest::Digest;
use crate::error::{IntegrityError, UsageError};
use crate::manifest::Manifest;
use crate::store::{Body, Key, PutMode, PutOptions, Store, StoreError};
use crate::trust::{self, AllowedSigners, SignatureJson};

/// Every event signature of `env` (`promote --sign-key`), by event, each
/// checked against the event's stored bytes.
pub fn event_signatures(
    store: &dyn Store,
    env: &str,
    signers: Option<&AllowedSigners>,
) -> Result<std::collections::BTreeMap<u64, Vec<SignatureJson>>> {
    let prefix = trust::env_signatures_prefix(env);
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
                let key = Key::new(super::event_key(env, seq))?;
                v.insert(match store.get(&key) {
                    Ok(o) => Some(o.into_bytes_limited(crate::manifest::MAX_BYTES)?),
                    Err(StoreError::NotFound { .. }) => None,
                    Err(e) => return Err(e.into()),
                })
            }
        };
        let checked = match event {
            None => Err(format!("event {seq} does not exist")),
            Some(bytes) if listed.size <= trust::MAX_SIGNATURE_BYTES => {
                match store.get(&listed.key) {
                    Ok(o) => o
                        .into_bytes_limited(trust::MAX_SIGNATURE_BYTES)
                        .map_err(|e| format!("unreadable: {e}"))
                        .and_then(|a| trust::check(&a, bytes, trust::EVENT_NAMESPACE)),
                    Err(StoreError::NotFound { .. }) => continue,
                    Err(e) => return Err(e.into()),
                }
            }
            Some(_) => Err(format!("{} bytes: too large for a signature", listed.size)),
        };
        out.entry(seq).or_default().push(match checked {
            Ok(key) => SignatureJson {
                key: listed.key.to_string(),
                fingerprint: Some(trust::fingerprint(&key)),
                valid: true,
                error: None,
                principals: signers
                    .map(|s| s.principals(&key, trust::EVENT_NAMESPACE, now))
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

/// What `history --verify` asks of `env`'s event signatures (`sigs`, as
/// [`event_signatures`] checked them; `seqs`, its events in order), beyond
/// its hash chain:
/// - every signature verifies over its event;
/// - with an allowed signers file (`listed`: the principals were looked
///   up in one), every key that signed has some principal there in
///   namespace `verbatim-event@v1`, now (a key whose `valid-before` has
///   passed no longer vouches for anything);
/// - once an event is signed, every later one is: removing the newest
///   event's signature (to edit it) or moving without `--sign-key` does
///   not go unnoticed.
///
/// An environment never signed passes. The first fault found, by event,
/// is the error (exit 5).
pub fn check_event_signatures(
    env: &str,
    seqs: impl IntoIterator<Item = u64>,
    sigs: &std::collections::BTreeMap<u64, Vec<SignatureJson>>,
    listed: bool,
) -> Result<(), IntegrityError> {
    for (seq, sigs) in sigs {
        if let Some(bad) = sigs.iter().find(|s| !s.valid) {
            return Err(IntegrityError(format!(
                "{}: {}; event {seq} was changed after it was signed, or the signature was planted",
                bad.key,
                bad.error.as_deref().unwrap_or("does not verify")
            )));
        }
    }
    let mut first_signed = None;
    for seq in seqs {
        let here = sigs.get(&seq).map_or(&[][..], Vec::as_slice);
        if let Some(s) = here.iter().find(|s| listed && s.principals.is_empty()) {
            return Err(IntegrityError(format!(
                "{}: event {seq} of {env} is signed by key {}, which the allowed signers file does not list (no principal in namespace {}, now): add the key to the file if it is one of the team's, else find out who signed event {seq}",
                s.key,
                s.fingerprint.as_deref().unwrap_or("?"),
                trust::EVENT_NAMESPACE
            )));
        }
        match (here.is_empty(), first_signed) {
            (false, None) => first_signed = Some(seq),
            (true, Some(first)) => {
                return Err(IntegrityError(format!(
                    "event {seq} of {env} is not signed, but event {first} before it is: once an environment's events are signed, every later one must be (promote/rollback --sign-key); its signature was removed from the store, or {env} was moved without signing; find out who wrote {} before trusting {env}",
                    super::event_key(env, seq)
                )))
            }
            _ => {}
        }
    }
    Ok(())
}

/// Signs event `seq` of `env` (its stored `bytes`) in namespace
/// `verbatim-event@v1`, stored create-only beside the history.
pub fn sign_event(
    store: &dyn Store,
    env: &str,
    seq: u64,
    bytes: &[u8],
    key: &ssh_key::PrivateKey,
) -> Result<()> {
    let prefix = trust::event_signatures_prefix(env, seq);
    sign_at(store, &prefix, trust::EVENT_NAMESPACE, bytes, key)
}

/// Signs config event `seq` of `env` (its stored `bytes`) in namespace
/// `verbatim-event@v1`, as a move is signed (the same keys, the same
/// `sign_moves` rule), stored create-only under
/// `envs/<env>/config/signatures/<seq>/`.
pub fn sign_config_event(
    store: &dyn Store,
    env: &str,
    seq: u64,
    bytes: &[u8],
    key: &ssh_key::PrivateKey,
) -> Result<()> {
    let prefix = super::envconfig::signatures_prefix(env, seq);
    sign_at(store, &prefix, trust::EVENT_NAMESPACE, bytes, key)
}

/// The keys whose stored signature over config event `seq` of `env` (its
/// stored `bytes`) verifies, in namespace `verbatim-event@v1`.
pub fn config_event_signers(
    store: &dyn Store,
    env: &str,
    seq: u64,
    bytes: &[u8],
) -> Result<Vec<ssh_key::PublicKey>> {
    let prefix = super::envconfig::signatures_prefix(env, seq);
    signers_at(store, &prefix, trust::EVENT_NAMESPACE, bytes)
}

/// Signs policy event `seq` (its stored `bytes`) in namespace
/// `verbatim-policy@v1`, stored create-only under `policy/signatures/`.
pub fn sign_policy_event(
    store: &dyn Store,
    seq: u64,
    bytes: &[u8],
    key: &ssh_key::PrivateKey,
) -> Result<()> {
    let prefix = trust::policy_signatures_prefix(seq);
    sign_at(store, &prefix, trust::POLICY_NAMESPACE, bytes, key)
}

/// Stores `key`'s signature of `bytes` in `namespace` under `prefix`, named
/// by the key; one already there (the same key signed before) is kept.
fn sign_at(
    store: &dyn Store,
    prefix: &str,
    namespace: &str,
    bytes: &[u8],
    key: &ssh_key::PrivateKey,
) -> Result<()> {
    let armored = trust::sign_bytes(key, namespace, bytes)?;
    let k = Key::new(format!(
        "{prefix}{}.sig",
        trust::file_name(key.public_key())
    ))?;
    match store.put(
        &k,
        Body::bytes(&armored),
        PutMode::CreateOnly,
        &PutOptions::json(),
    ) {
        Ok(_) | Err(StoreError::AlreadyExists { .. }) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// The policy's `sign_moves` rule for `env`: every move there must be
/// signed (`--sign-key`) with a key the policy's allowed signers list for
/// each principal it names. A usage error (exit 2) before anything is
/// written, so the team never leaves hosts an unsigned move they refuse.
pub fn move_signer_rule(
    policy: Option<&Policy>,
    env: &str,
    key: Option<&ssh_key::PrivateKey>,
) -> Result<()> {
    let Some((policy, rules)) = policy.and_then(|p| Some((p, p.rules(env)?))) else {
        return Ok(());
    };
    if rules.sign_moves.is_empty() {
        return Ok(());
    }
    let who = rules.sign_moves.join(", ");
    let Some(key) = key else {
        return Err(UsageError(format!(
            "the policy requires every move of {env} to be signed by {who}: pass --sign-key (VERBATIM_EVENT_SIGNING_KEY) with their key"
        ))
        .into());
    };
    let signers = AllowedSigners::parse(policy.allowed_signers.as_deref().unwrap_or_default())
        .map_err(|e| IntegrityError(format!("{}: allowed_signers {e}", policy::POINTER_KEY)))?;
    let at = now();
    let missing: Vec<&str> = rules
        .sign_moves
        .iter()
        .map(String::as_str)
        .filter(|p| !signers.allows(key.public_key(), p, trust::EVENT_NAMESPACE, at))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    Err(UsageError(format!(
        "the policy requires every move of {env} to be signed by {who}, and the policy's allowed signers do not list key {} for {}: sign with their key",
        trust::fingerprint(key.public_key()),
        missing.join(", ")
    ))
    .into())
}

/// The `signatures` gate of a promote to `env`, when the store's policy
/// requires principals there: each must have signed the manifest with a key
/// the policy's allowed signers list for it.
pub fn signature_gate(
    store: &dyn Store,
    policy: Option<&Policy>,
    env: &str,
    id: &Digest,
    manifest: &Manifest,
) -> Result<Option<Gate>> {
    let Some(policy) = policy else {
        return Ok(None);
    };
    let Some(rules) = policy.rules(env).filter(|r| !r.require.is_empty()) else {
        return Ok(None);
    };
    let signers = AllowedSigners::parse(policy.allowed_signers.as_deref().unwrap_or_default())
        .map_err(|e| {
            IntegrityError(format!(
                "{}: allowed_signers {e}; replace them: verbatim policy set --allowed-signers FILE --reason …",
                policy::POINTER_KEY
            ))
        })?;
    let sigs = trust::signatures(store, id, &manifest.to_canonical_bytes(), Some(&signers))?;
    let now = now();
    let missing: Vec<&str> = rules
        .require
        .iter()
        .map(String::as_str)
        .filter(|p| {
            !sigs.iter().any(|s| {
                s.key
                    .as_ref()
                    .is_some_and(|k| signers.allows(k, p, trust::MANIFEST_NAMESPACE, now))
            })
        })
        .collect();
    Ok(Some(Gate {
        gate: "signatures".into(),
        ok: missing.is_empty(),
        detail: if missing.is_empty() {
            format!("signed by {}", rules.require.join(", "))
        } else {
            format!(
                "{env} needs signatures by {}; missing: {} (add one with `verbatim sign {id} --key FILE`)",
                rules.require.join(", "),
                missing.join(", ")
            )
        },
    }))
}

/// The keys whose stored signature over event `seq` of `env` (its stored
/// `bytes`) verifies, in namespace `verbatim-event@v1`: what a host with
/// `--require-event-signer` checks before it acts on the event.
pub fn event_signers(
    store: &dyn Store,
    env: &str,
    seq: u64,
    bytes: &[u8],
) -> Result<Vec<ssh_key::PublicKey>> {
    let prefix = trust::event_signatures_prefix(env, seq);
    signers_at(store, &prefix, trust::EVENT_NAMESPACE, bytes)
}

/// The keys whose stored signature over policy event `seq` (its stored
/// `bytes`) verifies, in namespace `verbatim-policy@v1`.
pub fn policy_event_signers(
    store: &dyn Store,
    seq: u64,
    bytes: &[u8],
) -> Result<Vec<ssh_key::PublicKey>> {
    let prefix = trust::policy_signatures_prefix(seq);
    signers_at(store, &prefix, trust::POLICY_NAMESPACE, bytes)
}

/// The keys of the signatures under `prefix` that verify over `bytes` in
/// `namespace`; others (planted, oversized, of other bytes) are ignored.
fn signers_at(
    store: &dyn Store,
    prefix: &str,
    namespace: &str,
    bytes: &[u8],
) -> Result<Vec<ssh_key::PublicKey>> {
    let mut keys = Vec::new();
    for listed in store.list(prefix)? {
        if listed.size > trust::MAX_SIGNATURE_BYTES {
            continue;
        }
        let armored = match store.get(&listed.key) {
            Ok(o) => o.into_bytes_limited(trust::MAX_SIGNATURE_BYTES)?,
            Err(StoreError::NotFound { .. }) => continue,
            Err(e) => return Err(e.into()),
        };
        if let Ok(key) = trust::check(&armored, bytes, namespace) {
            keys.push(key);
        }
    }
    Ok(keys)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sig(seq: u64, valid: bool, principals: &[&str]) -> SignatureJson {
        SignatureJson {
            key: format!("envs/dev/signatures/{seq}/k.sig"),
            fingerprint: valid.then(|| "SHA256:k".to_owned()),
            valid,
            error: (!valid).then(|| "does not verify".to_owned()),
            principals: principals.iter().map(|p| p.to_string()).collect(),
        }
    }

    fn check(sigs: Vec<(u64, SignatureJson)>, listed: bool) -> Result<(), String> {
        let mut map: std::collections::BTreeMap<u64, Vec<SignatureJson>> = Default::default();
        for (seq, s) in sigs {
            map.entry(seq).or_default().push(s);
        }
        check_event_signatures("dev", 1..=3, &map, listed).map_err(|e| e.0)
    }

    #[test]
    fn history_signatures() {
        let ops = |seq| (seq, sig(seq, true, &["ops@acme"]));
        let stranger = |seq| (seq, sig(seq, true, &[]));
        // Never signed, or signed from some event on: fine.
        assert_eq!(check(vec![], false), Ok(()));
        assert_eq!(check(vec![], true), Ok(()));
        assert_eq!(check(vec![ops(2), ops(3)], true), Ok(()));
        // A gap after the first signed event.
        let e = check(vec![ops(1), ops(3)], false).unwrap_err();
        assert!(
            e.contains("event 2 of dev is not signed, but event 1"),
            "{e}"
        );
        let e = check(vec![ops(1), ops(2)], false).unwrap_err();
        assert!(
            e.contains("event 3 of dev is not signed, but event 1"),
            "{e}"
        );
        // A key the file does not list: a fault only with a file.
        assert_eq!(check(vec![ops(1), ops(2), stranger(3)], false), Ok(()));
        let e = check(vec![ops(1), ops(2), stranger(3)], true).unwrap_err();
        assert!(
            e.contains("event 3 of dev is signed by key SHA256:k"),
            "{e}"
        );
        // Beside a listed one, still a fault.
        let e = check(vec![ops(1), ops(2), ops(3), stranger(3)], true).unwrap_err();
        assert!(e.contains("event 3"), "{e}");
        // A signature that does not verify comes first, even on a later event.
        let e = check(vec![ops(1), (3, sig(3, false, &[]))], true).unwrap_err();
        assert!(e.contains("event 3 was changed after it was signed"), "{e}");
    }
}
