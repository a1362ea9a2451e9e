//! What a `<manifest>` argument names: a digest, a unique prefix of one, a
//! manifest file, or an environment (the manifest its checked pointer
//! names).

use std::path::Path;

use anyhow::{Context, Result};

use super::reader::Reader;
use crate::digest::Digest;
use crate::error::{IntegrityError, UsageError};
use crate::manifest::{self, Manifest};
use crate::store::Store;

/// Turns a `<manifest>` argument into an id: `sha256:<hex>`, 64 hex digits, a
/// unique hex prefix of a stored manifest, a manifest file, or an environment
/// (what its checked pointer names).
pub fn resolve_manifest(store: &dyn Store, arg: &str) -> Result<Digest> {
    let reader = Reader::new(store, crate::config::DEFAULT_CONCURRENCY);
    resolve_manifest_with(&reader, arg)
}

/// [`resolve_manifest`] with a reader the caller goes on using.
pub fn resolve_manifest_with(reader: &Reader<'_>, arg: &str) -> Result<Digest> {
    let store = reader.store();
    let path = Path::new(arg);
    if (arg.contains('/') || arg.ends_with(".json")) && path.is_file() {
        let bytes = std::fs::read(path).with_context(|| format!("reading {arg}"))?;
        let m = Manifest::parse(&bytes).with_context(|| format!("parsing manifest file {arg}"))?;
        return Ok(m.id());
    }
    if let Ok(d) = arg.parse::<Digest>() {
        return Ok(d);
    }
    if crate::config::check_env_name(arg).is_ok() {
        if let Some(live) = reader.load(arg)?.live() {
            // Checked: a pointer equals what an event sets, and events name
            // manifests by strict digests.
            return live.parse().map_err(|e: String| {
                IntegrityError(format!("{}: {e}", super::event::pointer_key(arg))).into()
            });
        }
    }
    let hex = arg.strip_prefix("sha256:").unwrap_or(arg);
    if hex.len() >= 4 && hex.len() < 64 && hex.chars().all(|c| c.is_ascii_hexdigit()) {
        let hex = hex.to_ascii_lowercase();
        let keys = store.list(&format!("{}{hex}", manifest::MANIFEST_PREFIX))?;
        let ids: Vec<Digest> = keys
            .iter()
            .filter_map(|l| l.key.as_str().strip_prefix(manifest::MANIFEST_PREFIX))
            .filter_map(|n| n.strip_suffix(".json"))
            .filter_map(Digest::from_hex)
            .collect();
        return match ids.as_slice() {
            [one] => Ok(*one),
            [] => Err(UsageError(format!(
                "no manifest in {} starts with `{hex}`; `verbatim status` lists live ones",
                store.location()
            ))
            .into()),
            many => Err(UsageError(format!(
                "`{hex}` is ambiguous: it starts {} manifests ({}); give more digits",
                many.len(),
                many.iter()
                    .map(|d| d.hex()[..16].to_owned())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
            .into()),
        };
    }
    if crate::config::check_env_name(arg).is_ok() {
        if let Some(unknown) = super::policy_store::not_in_policy(reader, arg) {
            return Err(unknown);
        }
        return Err(UsageError(format!(
            "nothing is live in environment `{arg}` in {} (and `{arg}` is no manifest file or digest): promote a manifest there first, or check --store",
            store.location()
        ))
        .into());
    }
    Err(UsageError(format!(
        "`{arg}` is not a manifest: give sha256:<hex>, a hex prefix (4+ digits), a manifest file or an environment with a live manifest"
    ))
    .into())
}
