//! The objects a manifest names, in a store: reading the manifest itself
//! (checked against its id), and whether every object it names is stored
//! with the right size and bytes. `publish` uses the check for keys it may
//! not trust by name, `promote` refuses to point at a manifest with a
//! missing object, and [`verify`] and [`diff`] are the `verify` and `diff`
//! operations.

pub mod diff;
pub mod verify;

use std::collections::BTreeMap;
use std::io::Read;

use anyhow::{Context, Result};

use crate::digest::Digest;
use crate::error::IntegrityError;
use crate::manifest::{self, Manifest};
use crate::store::{Key, Store, StoreError};

/// Reads stored manifest `id` and checks that its bytes hash to its id. The bytes
/// are parsed as they stream in, never held whole.
pub fn load_manifest(store: &dyn Store, id: &Digest) -> Result<Manifest> {
    let key = Key::new(manifest::key_for(id))?;
    let object = match store.get(&key) {
        Ok(o) => o,
        Err(StoreError::NotFound { .. }) => {
            return Err(IntegrityError(format!(
                "manifest {id} is not in the store {} ({key} missing)",
                store.location()
            ))
            .into())
        }
        Err(e) => return Err(e.into()),
    };
    if object.meta.size > manifest::MAX_BYTES {
        return Err(IntegrityError(format!(
            "{key}: {} bytes, more than the {} a manifest may have",
            object.meta.size,
            manifest::MAX_BYTES
        ))
        .into());
    }
    let reader = object.reader.take(manifest::MAX_BYTES + 1);
    let (m, actual, size) = match Manifest::parse_reader(reader) {
        Ok(parsed) => parsed,
        Err(manifest::ManifestError::Json(e)) if e.is_io() => {
            return Err(std::io::Error::from(e)).with_context(|| format!("reading {key}"))
        }
        Err(e) => {
            // Read it again whole for the best message (a newer schema, …).
            let why = match store
                .get(&key)
                .map(|o| o.into_bytes_limited(manifest::MAX_BYTES))
            {
                Ok(Ok(bytes)) => Manifest::parse(&bytes)
                    .err()
                    .map_or(e.to_string(), |e| e.to_string()),
                _ => e.to_string(),
            };
            return Err(IntegrityError(format!(
                "{key}: {why}; it was not written by this verbatim (or was tampered with)"
            ))
            .into());
        }
    };
    if size > manifest::MAX_BYTES {
        return Err(IntegrityError(format!(
            "{key}: more than the {} bytes a manifest may have",
            manifest::MAX_BYTES
        ))
        .into());
    }
    if actual != *id {
        return Err(IntegrityError(format!(
            "{key}: stored manifest hashes to {actual}, not {id}; the store was tampered with"
        ))
        .into());
    }
    if m.id() != *id {
        return Err(IntegrityError(format!(
            "{key}: manifest is not in canonical form; it was not written by verbatim"
        ))
        .into());
    }
    Ok(m)
}

/// Compares one object's size and sha256 with the manifest's: from the
/// store's metadata when it vouches for a sha256 (unless `deep`), else by
/// streaming and hashing the bytes.
///
/// The status is `ok`, `missing`, `size mismatch`, `digest mismatch` or
/// `not an object` (a symlink, fifo or device where a local store's object
/// should be).
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

/// The objects of `m` that are not stored with their size, described. Many
/// assets are checked with one listing rather than a request each.
pub fn missing_objects(store: &dyn Store, m: &Manifest) -> Result<Vec<String>> {
    const LIST_ABOVE: usize = 8;
    let listed: Option<BTreeMap<Key, u64>> = if m.assets.len() > LIST_ABOVE {
        Some(
            store
                .list("assets/")?
                .into_iter()
                .map(|l| (l.key, l.size))
                .collect(),
        )
    } else {
        None
    };
    let mut missing = Vec::new();
    for o in m.objects() {
        let key = Key::new(o.key.clone())?;
        let size = match &listed {
            Some(sizes) if o.key.starts_with("assets/") => sizes.get(&key).copied(),
            _ => store.head(&key)?.map(|meta| meta.size),
        };
        match size {
            Some(size) if size == o.size => {}
            Some(size) => missing.push(format!("{} (size {size} instead of {})", o.key, o.size)),
            None => missing.push(format!("{} (missing)", o.key)),
        }
    }
    Ok(missing)
}
