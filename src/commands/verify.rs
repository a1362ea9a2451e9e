//! `verbatim verify`: re-read every object a manifest names and check it.

use std::io::Read;

use anyhow::Result;
use serde::Serialize;

use crate::cli::{Global, VerifyArgs};
use crate::digest::Digest;
use crate::error::IntegrityError;
use crate::output::Printer;
use crate::store::{Key, Store, StoreError};

#[derive(Serialize)]
struct VerifyJson {
    manifest: String,
    ok: bool,
    objects: Vec<ObjectJson>,
    /// Every stored signature of the manifest, checked.
    signatures: Vec<super::sign::SignatureJson>,
}

#[derive(Serialize)]
struct ObjectJson {
    key: String,
    size: u64,
    sha256: String,
    /// `ok`, `missing`, `size mismatch`, `digest mismatch` or `not an object`
    /// (a symlink, fifo or device where a local store's object should be).
    status: &'static str,
}

pub fn run(g: &Global, args: &VerifyArgs, printer: &Printer) -> Result<()> {
    let store = super::open_store_for(g)?;
    let id = super::resolve_manifest(store.as_ref(), &args.manifest)?;
    let manifest = super::load_manifest(store.as_ref(), &id)?;
    let objects = manifest.objects();
    let total = objects.iter().map(|o| o.size).sum();
    let bar = printer.objects_bar(total, objects.len(), "verifying");
    let signers = args
        .allowed_signers
        .as_deref()
        .map(super::sign::read_allowed_signers)
        .transpose()?;
    let bytes = manifest.to_canonical_bytes();
    let signatures: Vec<_> =
        super::sign::signatures(store.as_ref(), &id, &bytes, signers.as_ref())?
            .into_iter()
            .map(|c| c.json)
            .collect();
    for s in &signatures {
        match (&s.fingerprint, &s.error) {
            (Some(fp), _) if signers.is_some() && s.principals.is_empty() => {
                printer.note(format!("signed by {fp} (not in the allowed signers)"))
            }
            (Some(fp), _) if signers.is_some() => {
                printer.note(format!("signed by {fp} as {}", s.principals.join(", ")))
            }
            (Some(fp), _) => printer.note(format!("signed by {fp}")),
            (None, Some(e)) => printer.warn(format!("BAD signature {}: {e}", s.key)),
            (None, None) => {}
        }
    }
    let mut report = VerifyJson {
        manifest: id.to_string(),
        ok: true,
        objects: vec![],
        signatures,
    };
    let statuses = crate::par::try_map(&objects, super::concurrency(g), |o| {
        let status = check(store.as_ref(), &o.key, o.sha256, o.size, args.deep);
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
            printer.note(format!("BAD {}: {status}", o.key));
        }
        report.objects.push(ObjectJson {
            key: o.key.clone(),
            size: o.size,
            sha256: o.sha256.hex(),
            status,
        });
    }
    bar.finish();
    printer.json(&report)?;
    let bad = report.objects.iter().filter(|o| o.status != "ok").count();
    if bad > 0 {
        return Err(IntegrityError(format!(
            "manifest {id}: {bad} of {} objects are missing or corrupt (listed above)",
            objects.len()
        ))
        .into());
    }
    printer.note(format!("{} objects verified for {id}", objects.len()));
    printer.result(format!("ok {id}"))?;
    Ok(())
}

/// Compares one object's size and sha256 with the manifest's: from the
/// store's metadata when it vouches for a sha256 (unless `deep`), else by
/// streaming and hashing the bytes.
pub fn check(
    store: &dyn Store,
    key: &str,
    sha256: Digest,
    size: u64,
    deep: bool,
) -> Result<&'static str> {
    let key = Key::new(key)?;
    if !deep {
        match store.head(&key) {
            Err(StoreError::NotAnObject { .. }) => return Ok("not an object"),
            r => match r? {
                None => return Ok("missing"),
                Some(meta) if meta.size != size => return Ok("size mismatch"),
                Some(meta) if meta.sha256.is_some() => {
                    return Ok(if meta.sha256 == Some(sha256) {
                        "ok"
                    } else {
                        "digest mismatch"
                    })
                }
                Some(_) => {}
            },
        }
    }
    let object = match store.get(&key) {
        Ok(o) => o,
        Err(StoreError::NotFound { .. }) => return Ok("missing"),
        Err(StoreError::NotAnObject { .. }) => return Ok("not an object"),
        Err(e) => return Err(e.into()),
    };
    // One byte past the expected size is enough to know it is wrong.
    let (actual, actual_size) = Digest::of_reader(object.reader.take(size.saturating_add(1)))?;
    Ok(if actual_size != size {
        "size mismatch"
    } else if actual != sha256 {
        "digest mismatch"
    } else {
        "ok"
    })
}
