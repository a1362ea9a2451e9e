//! An environment's site: the live copies of its release's entry files
//! (`[site]`), at `site/<env>/<path>`, written when the environment moves
//! (promote, rollback, auto-rollback) right after its pointer. A bucket
//! behind a CDN, or nginx in front of a local store, serves `site/<env>/`
//! at the site's root and `assets/` under the public prefix: an SPA per
//! environment, with instant rollback.
//!
//! The one prefix verbatim overwrites: each move writes every entry of the
//! release it moves to, with the manifest's `site.cache_control` (`no-cache`
//! by default), copied from `sites/<manifest hex>/<path>` and checked
//! against the manifest's digest on the way. Nothing is deleted (an entry
//! a later release dropped stays until a release has it again).
//!
//! Write order ([`write_order`]): files that are not pages first (a service
//! worker, `robots.txt`, JSON fetched at run time), then pages, deepest
//! first, the root `index.html` last. Every entry references only immutable
//! assets, which were all stored before the pointer moved, so no single
//! file is ever inconsistent; while the few entries are written, a visitor
//! gets the old or the new copy of each. The page they arrive at is the
//! last to change, so a new page never fetches an old fragment or service
//! worker; a page loaded before (or during) the write may fetch a new one,
//! as it would after any deploy.

use std::cmp::Reverse;

use anyhow::{Context, Result};

use crate::digest::Digest;
use crate::error::IntegrityError;
use crate::manifest::{site_key, Manifest};
use crate::objects::load_manifest;
use crate::progress::Progress;
use crate::store::{Body, Key, PutMode, PutOptions, Store};

/// The prefix of every environment's live entry files.
pub const SITE_PREFIX: &str = "site/";

/// `site/<env>/<path>`: where environment `env` serves entry `path`.
pub fn live_key(env: &str, path: &str) -> String {
    format!("{SITE_PREFIX}{env}/{path}")
}

/// Writes the entry files of manifest `id` to `site/<env>/`, in
/// [`write_order`]; returns how many (none when the release has no
/// `[site]`). Called once `env`'s pointer names `id`: everything the
/// entries reference is stored by then.
pub fn write_site(
    store: &dyn Store,
    env: &str,
    id: &Digest,
    progress: &dyn Progress,
) -> Result<usize> {
    let manifest = load_manifest(store, id)?;
    write_site_of(store, env, id, &manifest, progress)
}

/// [`write_site`] with the manifest at hand.
pub fn write_site_of(
    store: &dyn Store,
    env: &str,
    id: &Digest,
    manifest: &Manifest,
    progress: &dyn Progress,
) -> Result<usize> {
    let Some(site) = &manifest.site else {
        return Ok(0);
    };
    let order = write_order(site.entries.keys().map(String::as_str));
    for (n, path) in order.iter().enumerate() {
        let e = &site.entries[*path];
        let from = Key::new(site_key(id, path))?;
        let what = || format!("reading {from} to write the site of {env}");
        let bytes = store
            .get(&from)
            .with_context(what)?
            .into_bytes_limited(e.size)
            .with_context(what)?;
        if Digest::of(&bytes).hex() != e.sha256 {
            return Err(IntegrityError(format!(
                "{from}: its bytes do not hash to the sha256 manifest {id} records; \
                 site/{env}/ was not brought up to date past its first {n} of {} files \
                 (`verbatim verify {id}` names what is corrupt)",
                order.len()
            ))
            .into());
        }
        let to = Key::new(live_key(env, path))?;
        let opts = PutOptions {
            content_type: Some(e.content_type.clone()),
            cache_control: Some(site.cache_control.clone()),
        };
        store
            .put(&to, Body::bytes(&bytes), PutMode::Overwrite, &opts)
            .with_context(|| {
                format!(
                    "writing {to}: site/{env}/ now holds the first {n} of the {} entry files of {id} \
                     and older copies of the rest",
                    order.len()
                )
            })?;
        progress.detail(format!("wrote {to}"));
    }
    progress.note(format!(
        "site/{env}/: {} entry file{} of {id}",
        order.len(),
        if order.len() == 1 { "" } else { "s" }
    ));
    Ok(order.len())
}

/// The order entries are written in: what is not a page first, then
/// pages, deepest first, the root `index.html` last; by path within each.
pub fn write_order<'a>(paths: impl Iterator<Item = &'a str>) -> Vec<&'a str> {
    let mut paths: Vec<&str> = paths.collect();
    paths.sort_by_key(|p| {
        let lower = p.to_ascii_lowercase();
        let page = lower.ends_with(".html") || lower.ends_with(".htm");
        (
            page,
            *p == "index.html",
            Reverse(p.matches('/').count()),
            *p,
        )
    });
    paths
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_last_and_the_root_page_after_them_all() {
        let got = write_order(
            [
                "index.html",
                "about/index.html",
                "sw.js",
                "robots.txt",
                "fragments/a.html",
                "fragments/deep/b.html",
                "openapi.json",
                "404.html",
            ]
            .into_iter(),
        );
        assert_eq!(
            got,
            [
                "openapi.json",
                "robots.txt",
                "sw.js",
                "fragments/deep/b.html",
                "about/index.html",
                "fragments/a.html",
                "404.html",
                "index.html",
            ]
        );
    }
}
