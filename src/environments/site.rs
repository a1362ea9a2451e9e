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
//!
//! Pages (`.html`, `.htm`) carry the environment's config, when it has
//! one (`verbatim config set`), as one `<script type="application/json"
//! id="verbatim-config">` block right after `<head>` (`envconfig::inject`);
//! every other byte is the release's. A config change rewrites the pages
//! of the live release ([`rewrite_live`]). A move and a config change
//! racing each read the other's side again once written and write again
//! when it changed, so the last to finish leaves the newest of both.
//! [`verify_site`] proves each live file is the release's entry, plus
//! exactly that block for a page.

use std::cmp::Reverse;

use anyhow::{Context, Result};

use serde::Serialize;

use super::envconfig::{self, Values};
use super::envconfig_store;
use super::reader::Reader;
use crate::digest::Digest;
use crate::error::{Failed, IntegrityError};
use crate::manifest::{site_key, Manifest};
use crate::objects::load_manifest;
use crate::progress::Progress;
use crate::store::{Body, Key, PutMode, PutOptions, Store, StoreError};

/// The prefix of every environment's live entry files.
pub const SITE_PREFIX: &str = "site/";

/// `site/<env>/<path>`: where environment `env` serves entry `path`.
pub fn live_key(env: &str, path: &str) -> String {
    format!("{SITE_PREFIX}{env}/{path}")
}

/// How often a site write starts again because the config (or the live
/// manifest) changed while it wrote, before it leaves the rest to the
/// writer that changed it.
const REWRITES: usize = 5;

/// Writes the entry files of manifest `id` to `site/<env>/`, in
/// [`write_order`], its pages with `env`'s config; returns how many (none
/// when the release has no `[site]`). Called once `env`'s pointer names
/// `id`: everything the entries reference is stored by then. A config
/// change landing meanwhile is written too.
pub fn write_site(
    store: &dyn Store,
    env: &str,
    id: &Digest,
    progress: &dyn Progress,
) -> Result<usize> {
    let manifest = load_manifest(store, id)?;
    if manifest.site.is_none() {
        return Ok(0);
    }
    let reader = Reader::new(store, crate::config::DEFAULT_CONCURRENCY);
    let mut config = envconfig_store::load(&reader, env)?;
    let mut written = 0;
    for _ in 0..REWRITES {
        written = write_site_of(store, env, id, &manifest, config.values(), progress)?;
        let now = envconfig_store::load(&reader, env)?;
        if now.head() == config.head() {
            break;
        }
        config = now;
    }
    Ok(written)
}

/// After a config change: writes the site of `env`'s live release again
/// (its pages with the new config), until the pointer stays on the
/// release written. Returns the release and how many files; `None` when
/// nothing is live.
pub fn rewrite_live(
    reader: &Reader<'_>,
    env: &str,
    progress: &dyn Progress,
) -> Result<Option<(Digest, usize)>> {
    let mut out = None;
    for _ in 0..REWRITES {
        let Some(live) = live_manifest(reader, env)? else {
            return Ok(out);
        };
        if out.as_ref().is_some_and(|(d, _)| *d == live) {
            break;
        }
        out = Some((live, write_site(reader.store(), env, &live, progress)?));
    }
    Ok(out)
}

fn live_manifest(reader: &Reader<'_>, env: &str) -> Result<Option<Digest>> {
    reader
        .load(env)?
        .live()
        .map(|m| m.parse().map_err(anyhow::Error::msg))
        .transpose()
}

/// Whether `path` is a page, which carries the config block.
fn is_page(path: &str) -> bool {
    let lower = path.to_ascii_lowercase();
    lower.ends_with(".html") || lower.ends_with(".htm")
}

/// The bytes `site/<env>/<path>` must hold for an entry whose bytes are
/// `entry`: with `config`, a page gets its block.
fn live_bytes(path: &str, entry: Vec<u8>, config: Option<&Values>) -> Vec<u8> {
    match config {
        Some(values) if is_page(path) => envconfig::inject(&entry, values),
        _ => entry,
    }
}

/// [`write_site`] with the manifest and the config at hand.
pub fn write_site_of(
    store: &dyn Store,
    env: &str,
    id: &Digest,
    manifest: &Manifest,
    config: Option<&Values>,
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
        let bytes = live_bytes(path, bytes, config);
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
        (
            is_page(p),
            *p == "index.html",
            Reverse(p.matches('/').count()),
            *p,
        )
    });
    paths
}

/// What `verify ENV` found in `site/<env>/` (`site` in `verify --json`).
#[derive(Debug, Serialize)]
pub struct SiteJson {
    /// The environment.
    pub env: String,
    /// The config event whose values the pages must carry; `null` when
    /// the environment has no config (the pages are the entries as stored).
    pub config_seq: Option<u64>,
    /// Whether every live file is what it must be.
    pub ok: bool,
    /// Every entry of the release, checked at its live key.
    pub files: Vec<LiveFileJson>,
}

/// One live file, checked.
#[derive(Debug, Serialize)]
pub struct LiveFileJson {
    /// `site/<env>/<path>`.
    pub key: String,
    /// `ok`; `missing`; `differs` (neither the release's entry nor, for a
    /// page, the entry plus exactly the config block); `bad entry` (the
    /// release's own copy under `sites/` is corrupt).
    pub status: &'static str,
    /// Whether it must carry the config block.
    pub config_block: bool,
}

/// `verify ENV`'s look at the environment's site: when `env`'s pointer
/// names `id` and the release has entries, each `site/<env>/<path>` must
/// be the release's entry (`sites/<hex>/<path>`, checked against the
/// manifest's digest), a page with exactly the config block in effect
/// injected. `None` when `env` does not run `id` or the release has no
/// site; an error (exit 5) carrying the report when a file is not right.
pub fn verify_site(
    store: &dyn Store,
    env: &str,
    id: &Digest,
    progress: &dyn Progress,
) -> Result<Option<SiteJson>, Failed<SiteJson>> {
    let reader = Reader::new(store, crate::config::DEFAULT_CONCURRENCY);
    if live_manifest(&reader, env)?.as_ref() != Some(id) {
        return Ok(None);
    }
    let manifest = load_manifest(store, id)?;
    let Some(site) = &manifest.site else {
        return Ok(None);
    };
    let config = envconfig_store::load(&reader, env)?;
    let mut report = SiteJson {
        env: env.to_owned(),
        config_seq: config.current().map(|e| e.seq),
        ok: true,
        files: Vec::new(),
    };
    for path in write_order(site.entries.keys().map(String::as_str)) {
        let e = &site.entries[path];
        let entry = store
            .get(&Key::new(site_key(id, path)).map_err(anyhow::Error::from)?)
            .ok()
            .and_then(|o| o.into_bytes_limited(e.size).ok())
            .filter(|b| Digest::of(b).hex() == e.sha256);
        let key = live_key(env, path);
        let config_block = config.values().is_some() && is_page(path);
        let status = match entry {
            None => "bad entry",
            Some(entry) => {
                let want = live_bytes(path, entry, config.values());
                match store.get(&Key::new(key.clone()).map_err(anyhow::Error::from)?) {
                    Err(StoreError::NotFound { .. }) => "missing",
                    Err(e) => {
                        return Err(anyhow::Error::from(e)
                            .context(format!("reading {key}"))
                            .into())
                    }
                    Ok(o) => match o.into_bytes_limited(want.len() as u64) {
                        Ok(got) if got == want => "ok",
                        _ => "differs",
                    },
                }
            }
        };
        if status != "ok" {
            report.ok = false;
            progress.note(format!("BAD {key}: {status}"));
        }
        report.files.push(LiveFileJson {
            key,
            status,
            config_block,
        });
    }
    if report.ok {
        progress.note(format!(
            "site/{env}/: {} file(s) are the release's entries{}",
            report.files.len(),
            match report.config_seq {
                Some(seq) => format!(", its pages with config event {seq}"),
                None => String::new(),
            }
        ));
        return Ok(Some(report));
    }
    let bad = report.files.iter().filter(|f| f.status != "ok").count();
    Err(Failed {
        error: IntegrityError(format!(
            "site/{env}/: {bad} of {} live file(s) are not release {id}'s entries{} (listed above); \
             `verbatim config set` or a move writes them again",
            report.files.len(),
            if report.config_seq.is_some() { " with the config block" } else { "" }
        ))
        .into(),
        report: Some(Box::new(report)),
    })
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
