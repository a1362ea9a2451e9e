//! `verify`: every object a manifest names is read back (or vouched for by
//! the store's digest) and compared with the manifest; its signatures are
//! listed and checked.

use anyhow::Result;
use serde::Serialize;

use super::{check, load_manifest};
use crate::digest::Digest;
use crate::error::IntegrityError;
use crate::progress::Progress;
use crate::store::Store;
use crate::trust::{self, AllowedSigners, SignatureJson};

/// What `verify --json` prints.
#[derive(Serialize)]
pub struct VerifyJson {
    /// The manifest verified.
    pub manifest: String,
    /// Whether every object is stored with the right bytes.
    pub ok: bool,
    /// Every object the manifest names, checked.
    pub objects: Vec<ObjectJson>,
    /// Every stored signature of the manifest, checked.
    pub signatures: Vec<SignatureJson>,
}

/// One object, checked.
#[derive(Serialize)]
pub struct ObjectJson {
    /// Its key in the store.
    pub key: String,
    /// Its size, as the manifest records it.
    pub size: u64,
    /// Its sha256, as the manifest records it.
    pub sha256: String,
    /// `ok`, `missing`, `size mismatch`, `digest mismatch` or `not an object`
    /// (a symlink, fifo or device where a local store's object should be).
    pub status: &'static str,
}

/// What to verify and how.
pub struct VerifyOptions<'a> {
    /// Hash every object's bytes, even where the store vouches for a digest.
    pub deep: bool,
    /// Whose signatures count, to name the principals of each.
    pub signers: Option<&'a AllowedSigners>,
    /// Checks in flight at once.
    pub concurrency: usize,
}

/// Checks every object of manifest `id` and lists its signatures. The
/// report comes back either way; with an object missing or corrupt, the
/// error (exit 5) carries it.
pub fn verify(
    store: &dyn Store,
    id: &Digest,
    opts: &VerifyOptions<'_>,
    progress: &dyn Progress,
) -> Result<VerifyJson, crate::error::Failed<VerifyJson>> {
    let manifest = load_manifest(store, id)?;
    let objects = manifest.objects();
    let total = objects.iter().map(|o| o.size).sum();
    let bar = progress.objects_bar(total, objects.len(), "verifying");
    let bytes = manifest.to_canonical_bytes();
    let signatures: Vec<_> = trust::signatures(store, id, &bytes, opts.signers)?
        .into_iter()
        .map(|c| c.json)
        .collect();
    for s in &signatures {
        match (&s.fingerprint, &s.error) {
            (Some(fp), _) if opts.signers.is_some() && s.principals.is_empty() => {
                progress.note(format!("signed by {fp} (not in the allowed signers)"))
            }
            (Some(fp), _) if opts.signers.is_some() => {
                progress.note(format!("signed by {fp} as {}", s.principals.join(", ")))
            }
            (Some(fp), _) => progress.note(format!("signed by {fp}")),
            (None, Some(e)) => progress.warn(format!("BAD signature {}: {e}", s.key)),
            (None, None) => {}
        }
    }
    let mut report = VerifyJson {
        manifest: id.to_string(),
        ok: true,
        objects: vec![],
        signatures,
    };
    let statuses = crate::par::try_map(&objects, opts.concurrency, |o| {
        let status = check(store, &o.key, o.sha256, o.size, opts.deep);
        bar.object_done(o.size);
        status
    });
    for (o, status) in objects.iter().zip(statuses) {
        // `None`: not started because an earlier check failed, whose error
        // comes first in this loop.
        let Some(status) = status else { continue };
        let status = status?;
        if status != "ok" {
            report.ok = false;
            progress.note(format!("BAD {}: {status}", o.key));
        }
        report.objects.push(ObjectJson {
            key: o.key.clone(),
            size: o.size,
            sha256: o.sha256.hex(),
            status,
        });
    }
    bar.finish();
    let bad = report.objects.iter().filter(|o| o.status != "ok").count();
    if bad > 0 {
        return Err(crate::error::Failed {
            error: IntegrityError(format!(
                "manifest {id}: {bad} of {} objects are missing or corrupt (listed above)",
                objects.len()
            ))
            .into(),
            report: Some(Box::new(report)),
        });
    }
    progress.note(format!("{} objects verified for {id}", objects.len()));
    Ok(report)
}
