//! Event signatures: `promote --sign-key` and `rollback --sign-key` sign
//! an event's stored bytes in namespace `verbatim-event@v1`, stored
//! create-only under `envs/<env>/signatures/<seq>/`; `history` lists and
//! checks them.

use anyhow::Result;

use crate::store::{Key, Store, StoreError};
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
