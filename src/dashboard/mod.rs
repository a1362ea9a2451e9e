//! The dashboard: one static page of the whole store (environments in
//! order, rollouts with their waves, hosts live or stale with their drift,
//! each history as a timeline, a diff page per live manifest), needing no
//! server: `verbatim dashboard --out DIR` writes it to a directory, and
//! with `[dashboard] publish = true` every move rewrites it in the store
//! at `dashboard/index.html` ([`Publisher`], an `Observer` of moves), for
//! the bucket's CDN to show the team.
//!
//! [`model`] reads the store into a typed [`Dashboard`] through the same
//! operations `status`, `history` and `rollout status` use; [`html`]
//! renders it, escaping everything the store holds; [`diffs`] makes the
//! file-level diff pages. The page is made from the store as read: it
//! holds no state of its own.

pub mod diffs;
pub mod html;
pub mod model;

use std::path::Path;

use anyhow::{Context, Result};
use serde::Serialize;

pub use model::{collect, Dashboard, Options};

use crate::config::Config;
use crate::environments::observe::{Notice, Observer};
use crate::environments::reader::Reader;
use crate::progress::Progress;
use crate::store::{Body, Key, PutMode, PutOptions, Store};

/// Where `[dashboard] publish = true` writes the page in the store.
pub const STORE_PREFIX: &str = "dashboard/";
/// Its `Cache-Control`: a CDN asks again every time, as for `site/`.
pub const CACHE_CONTROL: &str = "no-cache";

/// What writing the dashboard did, as `dashboard --json` prints it.
#[derive(Debug, Serialize)]
pub struct Written {
    /// The page: a path, or a store key.
    pub page: String,
    /// Its size in bytes.
    pub bytes: usize,
    /// The environments on it.
    pub environments: usize,
    /// The hosts on it.
    pub hosts: usize,
    /// Diff pages written this time (those already there are kept).
    pub diffs_written: Vec<String>,
}

/// Where pages go: a directory or the store.
trait Sink {
    fn has(&self, name: &str) -> bool;
    fn put(&self, name: &str, bytes: &[u8], overwrite: bool) -> Result<String>;
}

struct Dir<'a>(&'a Path);

impl Sink for Dir<'_> {
    fn has(&self, name: &str) -> bool {
        self.0.join(name).is_file()
    }

    fn put(&self, name: &str, bytes: &[u8], _overwrite: bool) -> Result<String> {
        let path = self.0.join(name);
        let tmp = self.0.join(format!(".{name}.tmp-{}", std::process::id()));
        std::fs::write(&tmp, bytes).with_context(|| format!("writing {}", tmp.display()))?;
        std::fs::rename(&tmp, &path).with_context(|| format!("writing {}", path.display()))?;
        Ok(path.display().to_string())
    }
}

struct InStore<'a>(&'a dyn Store);

impl Sink for InStore<'_> {
    fn has(&self, name: &str) -> bool {
        Key::new(format!("{STORE_PREFIX}{name}"))
            .ok()
            .and_then(|k| self.0.head(&k).ok().flatten())
            .is_some()
    }

    fn put(&self, name: &str, bytes: &[u8], overwrite: bool) -> Result<String> {
        let key = Key::new(format!("{STORE_PREFIX}{name}"))?;
        let mode = if overwrite {
            PutMode::Overwrite
        } else {
            PutMode::CreateOnly
        };
        let opts = PutOptions {
            content_type: Some("text/html; charset=utf-8".into()),
            cache_control: Some(CACHE_CONTROL.into()),
        };
        self.0
            .put(&key, Body::bytes(bytes), mode, &opts)
            .with_context(|| format!("writing {key}"))?;
        Ok(key.to_string())
    }
}

/// `dashboard --out DIR`: writes `DIR/index.html` and the diff pages it
/// links to that `DIR` lacks.
pub fn write_dir(
    reader: &Reader<'_>,
    cfg: Option<&Config>,
    opts: &Options,
    out: &Path,
    progress: &dyn Progress,
) -> Result<Written> {
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let d = collect(reader, cfg, opts, progress)?;
    write(reader.store(), d, &Dir(out), progress)
}

/// Rewrites `dashboard/index.html` in the store (overwritten, short-cached)
/// and writes the diff pages it links to that are not there yet
/// (create-only: a pair's diff never changes).
pub fn publish(
    reader: &Reader<'_>,
    cfg: Option<&Config>,
    opts: &Options,
    progress: &dyn Progress,
) -> Result<Written> {
    let d = collect(reader, cfg, opts, progress)?;
    write(reader.store(), d, &InStore(reader.store()), progress)
}

fn write(
    store: &dyn Store,
    mut d: Dashboard,
    sink: &dyn Sink,
    progress: &dyn Progress,
) -> Result<Written> {
    let mut diffs_written = Vec::new();
    for e in &mut d.environments {
        let (Some(before), Some(after)) = (&e.previous, &e.manifest) else {
            continue;
        };
        let name = diffs::file_name(before, after);
        if !sink.has(&name) {
            let made = diffs::page(store, &e.name, before, after)
                .and_then(|page| sink.put(&name, page.as_bytes(), false));
            match made {
                Ok(_) => diffs_written.push(name.clone()),
                Err(err) => {
                    progress.warn(format!("dashboard: no diff page for {}: {err:#}", e.name));
                    continue;
                }
            }
        }
        e.diff = Some(name);
    }
    let page = html::page(&d);
    let at = sink.put("index.html", page.as_bytes(), true)?;
    Ok(Written {
        page: at,
        bytes: page.len(),
        environments: d.environments.len(),
        hosts: d.environments.iter().map(|e| e.hosts.len()).sum(),
        diffs_written,
    })
}

/// `[dashboard] publish = true`: an observer that rewrites the store's
/// page after every move, best effort (a warning, never a failed move).
pub struct Publisher {
    cfg: Option<Config>,
    opts: Options,
}

impl Publisher {
    /// A publisher reading with `cfg`, showing what `opts` asks.
    pub fn new(cfg: Option<Config>, opts: Options) -> Publisher {
        Publisher { cfg, opts }
    }
}

impl Observer for Publisher {
    fn notice(&self, reader: &Reader<'_>, notice: &Notice<'_>, progress: &dyn Progress) {
        if !matches!(notice, Notice::Moved(_)) {
            return;
        }
        match publish(reader, self.cfg.as_ref(), &self.opts, progress) {
            Ok(w) => progress.detail(format!("rewrote {}", w.page)),
            Err(e) => progress.warn(format!(
                "dashboard: {STORE_PREFIX}index.html was not rewritten (the move stands): {e:#}"
            )),
        }
    }
}
