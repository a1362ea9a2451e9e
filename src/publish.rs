//! Publishing: put a build's objects, then its manifest, into the store.
//!
//! Order is the crash-safety contract: objects first (assets leaves-first,
//! then the artifact), the manifest that names
//! them last, so a stored manifest always names objects that exist. Every put
//! is create-only, so republishing an unchanged tree writes nothing.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::ControlFlow;
use std::path::Path;

use anyhow::{bail, Context, Result};
use serde::Serialize;
use ssh_key::PrivateKey;

use crate::assets::graph;
use crate::builder::{assets, Built};
use crate::config::Config;
use crate::digest::Digest;
use crate::environments::event::Kind;
use crate::environments::moves::{move_with, MoveJson, MoveRequest};
use crate::environments::policy_store;
use crate::environments::reader::Reader;
use crate::error::{IntegrityError, UsageError};
use crate::manifest::{self, Manifest};
use crate::objects::check;
use crate::progress::{Bar, Progress};
use crate::signals;
use crate::store::{Body, Key, Put, PutMode, PutOptions, PutOutcome, Store};
use crate::trust;

/// What `publish --json` prints.
#[derive(Serialize)]
pub struct PublishJson {
    /// The manifest published.
    pub manifest: String,
    /// Where.
    pub store: String,
    /// What was written, and what was there already.
    #[serde(flatten)]
    pub tally: Tally,
    /// With `--env`: the promotion, as `verbatim promote --json` prints it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub promoted: Option<MoveJson>,
    /// With `--sign-key`: the signature's key in the store.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signature: Option<String>,
    /// `--dry-run`: `written` lists what would be written; nothing was.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub dry_run: bool,
}

impl PublishJson {
    /// The report of publishing `built` to `store`, nothing done yet.
    fn new(built: &Built, store: &dyn Store, dry_run: bool) -> PublishJson {
        PublishJson {
            manifest: built.id.to_string(),
            store: store.location(),
            tally: Tally::default(),
            promoted: None,
            signature: None,
            dry_run,
        }
    }
}

/// Which keys a publish wrote and which were stored already, in order.
#[derive(Serialize, Default)]
pub struct Tally {
    /// Keys written.
    pub written: Vec<String>,
    /// Keys the store held already.
    pub unchanged: Vec<String>,
}

impl Tally {
    fn extend(&mut self, other: Tally) {
        self.written.extend(other.written);
        self.unchanged.extend(other.unchanged);
    }
}

/// How to publish.
pub struct PublishOptions<'a> {
    /// Then promote the manifest to this environment.
    pub env: Option<&'a str>,
    /// Sign the manifest (and the promote event) with this key.
    pub sign: Option<&'a PrivateKey>,
    /// Say what the store lacks; write, sign and promote nothing.
    pub dry_run: bool,
    /// Refuse a build from a work tree with uncommitted changes, or from
    /// none git can tell about (`--require-clean`).
    pub require_clean: bool,
    /// Told of the move `env` makes (`environments::observe`).
    pub observers: Vec<&'a dyn crate::environments::observe::Observer>,
}

/// Publishes `built` to `store`: objects first, the manifest last; then,
/// as asked, signs it and promotes it.
pub fn publish(
    store: &dyn Store,
    cfg: &Config,
    built: &Built,
    opts: &PublishOptions<'_>,
    progress: &dyn Progress,
) -> Result<PublishJson> {
    if opts.require_clean {
        require_clean(cfg, built)?;
    }
    // The environment is checked before anything is written: a mistyped
    // one (with a did-you-mean) or a config at odds with the store's
    // order uploads nothing.
    let reader = match opts.env {
        Some(env) => {
            let pin = cfg
                .policy_signers
                .as_deref()
                .map(policy_store::read_pin)
                .transpose()?;
            let reader = opts.observers.iter().fold(
                Reader::new(store, cfg.concurrency).pin_policy(pin),
                |r, o| r.observe(*o),
            );
            policy_store::order(&reader, cfg)?.check_env(env)?;
            Some((reader, env))
        }
        None => None,
    };
    if opts.dry_run {
        return plan(store, built, cfg.concurrency, progress);
    }
    let mut report = upload(store, built, cfg.concurrency, progress)?;
    if let Some(key) = opts.sign {
        let bytes = built.manifest.to_canonical_bytes();
        let armored = trust::sign_bytes(key, trust::MANIFEST_NAMESPACE, &bytes)?;
        let (k, _) = trust::store_signature(store, &built.id, key.public_key(), &armored)?;
        progress.note(format!(
            "signed by {}: {k}",
            trust::fingerprint(key.public_key())
        ));
        report.signature = Some(k);
    }
    if let Some((reader, env)) = reader {
        let req = MoveRequest {
            env,
            to: built.id,
            kind: Kind::Promote,
            reason: None,
            force: false,
            check: None,
            sign: opts.sign,
            dry_run: false,
            rollout: None,
        };
        report.promoted = Some(move_with(&reader, cfg, &req, None, progress)?);
    }
    Ok(report)
}

/// `--require-clean`: `built` was built from a clean work tree (its
/// provenance says so), and the project's work tree is clean now (so a
/// `--prebuilt` build is what HEAD holds). A usage error otherwise (exit
/// 2), before anything is written.
fn require_clean(cfg: &Config, built: &Built) -> Result<()> {
    let refuse = |why: String| -> Result<()> {
        Err(UsageError(format!(
            "refusing to publish {} (--require-clean): {why}",
            built.id
        ))
        .into())
    };
    match crate::builder::provenance::dirty(&cfg.root) {
        None => refuse(format!(
            "{} is not in a git work tree, so nothing tells which commit it is; publish from a git checkout, or without --require-clean",
            cfg.root.display()
        )),
        Some(true) => refuse(format!(
            "the git work tree under {} has uncommitted changes (`git status` lists them); commit or stash them, then publish again",
            cfg.root.display()
        )),
        Some(false) if built.manifest.provenance.dirty => refuse(
            "it was built from a work tree with uncommitted changes (its provenance says dirty); build it again from the clean tree".into(),
        ),
        Some(false) => Ok(()),
    }
}

/// `publish --dry-run`: what the store lacks, found as `publish` would
/// (one HEAD of the manifest, else [`stored_assets`] and a HEAD of the
/// artifact), with the same checks; nothing is written.
fn plan(
    store: &dyn Store,
    built: &Built,
    concurrency: usize,
    progress: &dyn Progress,
) -> Result<PublishJson> {
    let m = &built.manifest;
    let mut report = PublishJson::new(built, store, true);
    let manifest_key = Key::new(manifest::key_for(&built.id))?;
    if store.head(&manifest_key)?.is_some() {
        report.tally.unchanged = m.objects().into_iter().map(|o| o.key).collect();
        report.tally.unchanged.push(manifest_key.to_string());
    } else {
        let stored = stored_assets(store, m, concurrency, progress)?;
        for a in m.assets.values() {
            let key = Key::new(a.key.clone())?;
            let list = if stored.contains(&key) {
                &mut report.tally.unchanged
            } else {
                &mut report.tally.written
            };
            list.push(key.to_string());
        }
        let artifact = Key::new(m.artifact.key.clone())?;
        match store.head(&artifact)? {
            Some(_) => report.tally.unchanged.push(artifact.to_string()),
            None => report.tally.written.push(artifact.to_string()),
        }
        for path in m.site.iter().flat_map(|s| s.entries.keys()) {
            let key = Key::new(manifest::site_key(&built.id, path))?;
            match store.head(&key)? {
                Some(_) => report.tally.unchanged.push(key.to_string()),
                None => report.tally.written.push(key.to_string()),
            }
        }
        report.tally.written.push(manifest_key.to_string());
    }
    progress.note(format!(
        "dry run: would write {} object(s) to {} ({} already there); nothing written",
        report.tally.written.len(),
        store.location(),
        report.tally.unchanged.len()
    ));
    for k in &report.tally.written {
        progress.detail(format!("would write {k}"));
    }
    Ok(report)
}

/// One object to store.
struct Job {
    /// What it is, for messages: `asset css/site.css`, `the artifact`.
    what: String,
    key: Key,
    path: std::path::PathBuf,
    /// Where its bytes start in `path` (a member of the assets pack).
    offset: u64,
    sha256: Digest,
    size: u64,
    opts: PutOptions,
}

fn upload(
    store: &dyn Store,
    built: &Built,
    concurrency: usize,
    progress: &dyn Progress,
) -> Result<PublishJson> {
    let m: &Manifest = &built.manifest;
    let mut report = PublishJson::new(built, store, false);
    let out = built.manifest_path.parent().unwrap_or(Path::new("."));

    // A stored manifest names only stored objects (it is always written
    // last), so finding it means there is nothing to upload.
    let manifest_bytes = m.to_canonical_bytes();
    let manifest_key = Key::new(manifest::key_for(&built.id))?;
    if let Some(outcome) = already_stored(store, &manifest_key, built.id)? {
        for key in m.objects().into_iter().map(|o| o.key) {
            report.tally.unchanged.push(key);
        }
        record(&mut report.tally, &manifest_key, &outcome, progress);
        progress.note(format!(
            "{} is already published in {}",
            built.id,
            store.location()
        ));
        return Ok(report);
    }

    // Before anything is written: which assets are stored already, and
    // whether any key holds other bytes than this build's (then nothing is).
    let stored = stored_assets(store, m, concurrency, progress)?;
    let site = m.site.as_ref().map(|s| &s.entries);
    let total: u64 = m.assets.values().map(|a| a.size).sum::<u64>()
        + m.artifact.size
        + site.into_iter().flatten().map(|(_, e)| e.size).sum::<u64>();
    let count = m.assets.len() + 1 + site.map_or(0, |e| e.len());
    let bar = progress.objects_bar(total, count, "uploading");
    let artifact = Job {
        what: "the artifact".into(),
        key: Key::new(m.artifact.key.clone())?,
        path: built.artifact_path.clone(),
        offset: 0,
        sha256: Digest::from_hex(&m.artifact.sha256).expect("parsed manifests are valid"),
        size: m.artifact.size,
        opts: PutOptions {
            content_type: Some("application/gzip".into()),
            cache_control: Some(assets::CACHE_CONTROL.into()),
        },
    };
    // The artifact goes up beside the assets; only the manifest must wait.
    let (artifact_report, assets_result) = std::thread::scope(|s| {
        let artifact_thread = s.spawn(|| {
            let mut r = Tally::default();
            match already_stored(store, &artifact.key, artifact.sha256) {
                Ok(Some(outcome)) => {
                    bar.object_done(artifact.size);
                    record(&mut r, &artifact.key, &outcome, progress);
                    Ok(r)
                }
                Ok(None) => put_all(
                    store,
                    std::slice::from_ref(&artifact),
                    1,
                    &mut r,
                    &bar,
                    progress,
                )
                .map(|()| r),
                Err(e) => Err(e),
            }
        });
        let assets = upload_assets(
            store,
            out,
            m,
            &stored,
            concurrency,
            &mut report.tally,
            &bar,
            progress,
        );
        (artifact_thread.join(), assets)
    });
    assets_result?;
    let artifact_report =
        artifact_report.map_err(|_| anyhow::anyhow!("the artifact upload thread panicked"))??;
    report.tally.extend(artifact_report);
    // The entry files reference the assets: after them.
    let entries = site_jobs(out, built)?;
    put_all(
        store,
        &entries,
        concurrency,
        &mut report.tally,
        &bar,
        progress,
    )?;
    bar.finish();

    // Last, so that a stored manifest only ever names stored objects.
    let outcome = store
        .put(
            &manifest_key,
            Body::bytes(&manifest_bytes),
            PutMode::CreateOnly,
            &PutOptions {
                content_type: Some("application/json".into()),
                cache_control: Some(assets::CACHE_CONTROL.into()),
            },
        )
        .context("publishing the manifest")?;
    record(&mut report.tally, &manifest_key, &outcome, progress);
    progress.note(format!(
        "published {} to {} ({} written, {} already there)",
        built.id,
        store.location(),
        report.tally.written.len(),
        report.tally.unchanged.len()
    ));
    Ok(report)
}

/// The jobs that store the entry files of `built` (`[site]`) create-only
/// under `sites/<manifest hex>/`, from the build's `site.tar`.
fn site_jobs(out: &Path, built: &Built) -> Result<Vec<Job>> {
    let Some(site) = &built.manifest.site else {
        return Ok(Vec::new());
    };
    let members = assets::site_members(out)?;
    let tar = out.join(assets::SITE_FILE);
    site.entries
        .iter()
        .map(|(path, e)| {
            let Some(&(offset, size)) = members.get(path.as_str()) else {
                bail!(
                    "entry file {path} is not in {}; run `verbatim build` again",
                    tar.display()
                );
            };
            if size != e.size {
                bail!(
                    "entry file {path} in {} is {size} bytes, the manifest says {}; run `verbatim build` again",
                    tar.display(),
                    e.size
                );
            }
            Ok(Job {
                what: format!("entry file {path}"),
                key: Key::new(manifest::site_key(&built.id, path))?,
                path: tar.clone(),
                offset,
                sha256: Digest::from_hex(&e.sha256).expect("parsed manifests are valid"),
                size,
                opts: PutOptions {
                    content_type: Some(e.content_type.clone()),
                    cache_control: Some(assets::CACHE_CONTROL.into()),
                },
            })
        })
        .collect()
}

/// The asset keys of `m` the store holds with this build's bytes, found
/// with one listing of `assets/` and, where the listing cannot tell, a HEAD.
///
/// Only a content-derived name ([`graph::is_content_named`]) may be
/// trusted from the listing alone, when the size agrees: it commits to the
/// first 48 bits (or more) of the sha256 of the only bytes verbatim ever
/// stores under it, so other bytes there of the same size mean a deliberate
/// prefix collision by someone who can write the store (which `verify`, with
/// the whole digest, still catches). A kept name (Vite's output,
/// `assets.keep_names`) commits to nothing, nor does the name of a member of
/// a reference cycle: the store's sha256 of those is compared (HEAD; a store
/// that vouches for none is read and hashed). A file of a hashed directory
/// (`assets.hash_dirs`) is content-named when the directory's name is the
/// hash of its files' digests in the manifest ([`hashed_dir_files`]).
///
/// A key holding other bytes is an integrity error (exit 5) naming every
/// such key, before anything is written: stored assets are immutable.
fn stored_assets(
    store: &dyn Store,
    m: &Manifest,
    concurrency: usize,
    progress: &dyn Progress,
) -> Result<BTreeSet<Key>> {
    let mut stored = BTreeSet::new();
    if m.assets.is_empty() {
        return Ok(stored);
    }
    let listed: BTreeMap<Key, u64> = store
        .list("assets/")?
        .into_iter()
        .map(|l| (l.key, l.size))
        .collect();
    let mut conflicts = Vec::new();
    let mut to_check = Vec::new();
    let in_hashed_dirs = hashed_dir_files(m);
    for (logical, a) in &m.assets {
        let key = Key::new(a.key.clone())?;
        let content_named = in_hashed_dirs.contains(logical.as_str())
            || a.key
                .strip_prefix("assets/")
                .is_some_and(|name| graph::is_content_named(logical, name, &a.sha256));
        match listed.get(&key) {
            None => {}
            Some(&size) if size != a.size => conflicts.push(Conflict {
                logical,
                key,
                content_named,
                why: format!("the store holds {size} bytes, this build {}", a.size),
            }),
            Some(_) if content_named => {
                stored.insert(key);
            }
            Some(_) => to_check.push((logical, key, a)),
        }
    }
    let statuses = crate::par::try_map(&to_check, concurrency, |(_, key, a)| {
        let sha256 = Digest::from_hex(&a.sha256).expect("parsed manifests are valid");
        check(store, key.as_str(), sha256, a.size, false)
    });
    for ((logical, key, _), status) in to_check.iter().zip(statuses) {
        let Some(status) = status else { continue }; // not started after a failure
        match status? {
            "ok" => {
                stored.insert(key.clone());
            }
            "missing" => {} // gone since the listing: put it
            other => conflicts.push(Conflict {
                logical,
                key: key.clone(),
                content_named: false,
                why: other.to_owned(),
            }),
        }
    }
    let Some(first) = conflicts.first() else {
        return Ok(stored);
    };
    for c in &conflicts {
        progress.note(format!(
            "BAD {}: stored with other bytes than this build's {} ({})",
            c.key, c.logical, c.why
        ));
    }
    let advice = if conflicts.iter().any(|c| !c.content_named) {
        "a file that keeps its name (Vite's output, `assets.keep_names`) must be \
         content-hashed by its bundler: rename it when its content changes (Vite's \
         public/ files are copied as they are), or let verbatim fingerprint it"
    } else {
        "verbatim never writes other bytes under a content-hashed name: compare the \
         stored object with the build (`verbatim verify` names what is corrupt)"
    };
    Err(IntegrityError(format!(
        "{}{} already {} other bytes in {} (listed above): stored assets are immutable, \
         so this build cannot be published; {advice}",
        first.key,
        match conflicts.len() {
            1 => String::new(),
            n => format!(
                " and {} more asset key{}",
                n - 1,
                if n == 2 { "" } else { "s" }
            ),
        },
        if conflicts.len() == 1 {
            "holds"
        } else {
            "hold"
        },
        store.location()
    ))
    .into())
}

/// The assets of `m` in a hashed directory whose name carries the hash
/// ([`graph::dir_hash`]) of its files as `m` lists them: the name
/// commits to each file's digest, so it is content-derived.
fn hashed_dir_files(m: &Manifest) -> BTreeSet<&str> {
    let mut dirs: BTreeMap<(&str, &str), Vec<(&str, Digest)>> = BTreeMap::new();
    for (logical, a) in &m.assets {
        let Some(name) = a.key.strip_prefix("assets/") else {
            continue;
        };
        let Some(dir) = graph::hashed_dir_of(logical, name) else {
            continue;
        };
        let Some(digest) = Digest::from_hex(&a.sha256) else {
            continue;
        };
        dirs.entry(dir).or_default().push((logical, digest));
    }
    let mut confirmed = BTreeSet::new();
    for ((dir, name), files) in dirs {
        let hash = graph::dir_hash(
            files
                .iter()
                .map(|(logical, digest)| (&logical[dir.len() + 1..], digest)),
        );
        let len = name.len() - dir.len() - 1;
        if graph::hashed_dir_name(dir, &hash.hex(), len) == name {
            confirmed.extend(files.into_iter().map(|(logical, _)| logical));
        }
    }
    confirmed
}

/// An asset key the store holds with other bytes.
struct Conflict<'a> {
    logical: &'a str,
    key: Key,
    /// Whether the key is a content-derived name (else a kept name, or a
    /// cycle member's: nothing of the bytes it should hold is in it).
    content_named: bool,
    why: String,
}

/// Stores the assets of `m` from the build directory `out`, in leaves-first
/// waves; those in `stored` ([`stored_assets`]) are skipped.
#[allow(clippy::too_many_arguments)]
fn upload_assets(
    store: &dyn Store,
    out: &Path,
    m: &Manifest,
    stored: &BTreeSet<Key>,
    concurrency: usize,
    report: &mut Tally,
    bar: &Bar,
    progress: &dyn Progress,
) -> Result<()> {
    let pack = out.join(assets::PACK_FILE);
    let mut members = None;
    for wave in assets::upload_waves(&m.assets) {
        let mut jobs = Vec::new();
        for logical in wave {
            let a = &m.assets[logical];
            let key = Key::new(a.key.clone())?;
            if stored.contains(&key) {
                bar.object_done(a.size);
                progress.detail(format!("already there: {key}"));
                report.unchanged.push(key.to_string());
                continue;
            }
            let members = match &mut members {
                Some(m) => m,
                None => members.insert(assets::pack_members(out)?),
            };
            let name = a.key.strip_prefix("assets/").unwrap_or(&a.key);
            let Some(&(offset, _)) = members.get(name).filter(|(_, size)| *size == a.size) else {
                bail!(
                    "asset {logical} should be in {} as {name} but is not; run `verbatim build` again",
                    pack.display()
                );
            };
            jobs.push(Job {
                what: format!("asset {logical}"),
                key,
                path: pack.clone(),
                offset,
                sha256: Digest::from_hex(&a.sha256).expect("parsed manifests are valid"),
                size: a.size,
                opts: PutOptions {
                    content_type: Some(a.content_type.clone()),
                    cache_control: Some(a.cache_control.clone()),
                },
            });
        }
        put_all(store, &jobs, concurrency, report, bar, progress)?;
    }
    Ok(())
}

/// `Some(Unchanged)` when `key` is stored with these bytes (by the digest
/// the store vouches for), `None` when it must be put. Checking first keeps
/// a republish free of writes, so it never needs the conditional-write probe.
fn already_stored(store: &dyn Store, key: &Key, sha256: Digest) -> Result<Option<PutOutcome>> {
    Ok(match store.head(key)? {
        Some(meta) if meta.sha256 == Some(sha256) => Some(PutOutcome::Unchanged(meta.etag)),
        Some(meta) if meta.sha256.is_some() => {
            return Err(crate::store::StoreError::AlreadyExists { key: key.clone() }.into())
        }
        _ => None,
    })
}

/// Stores `jobs` create-only with up to `concurrency` puts in flight; stops
/// at the first failure. Outcomes are recorded in job order.
fn put_all(
    store: &dyn Store,
    jobs: &[Job],
    concurrency: usize,
    report: &mut Tally,
    bar: &Bar,
    progress: &dyn Progress,
) -> Result<()> {
    let stopped = || signals::caught().map(signals::signal_name);
    if let Some(sig) = stopped() {
        bail!("stopped by {sig}");
    }
    let puts: Vec<Put<'_>> = jobs
        .iter()
        .map(|job| Put {
            key: &job.key,
            body: Body::file_at(&job.path, job.offset, job.sha256, job.size),
            mode: PutMode::CreateOnly,
            opts: &job.opts,
        })
        .collect();
    let results = store.put_many(&puts, concurrency, &|i| {
        bar.object_done(jobs[i].size);
        // Nothing new starts after a signal; what runs finishes.
        match stopped() {
            Some(_) => ControlFlow::Break(()),
            None => ControlFlow::Continue(()),
        }
    });
    for (job, result) in jobs.iter().zip(results) {
        match result {
            Some(Ok(outcome)) => record(report, &job.key, &outcome, progress),
            Some(Err(e)) => {
                return Err(anyhow::Error::new(e).context(format!(
                    "publishing {} from {}",
                    job.what,
                    job.path.display()
                )))
            }
            None => {
                if let Some(sig) = stopped() {
                    bail!("stopped by {sig}");
                }
            }
        }
    }
    Ok(())
}

fn record(report: &mut Tally, key: &Key, outcome: &PutOutcome, progress: &dyn Progress) {
    match outcome {
        PutOutcome::Written(_) => {
            progress.detail(format!("wrote {key}"));
            report.written.push(key.to_string());
        }
        PutOutcome::Unchanged(_) => {
            progress.detail(format!("already there: {key}"));
            report.unchanged.push(key.to_string());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::Asset;

    fn asset(key: &str, bytes: &[u8]) -> Asset {
        Asset {
            key: key.into(),
            sha256: Digest::of(bytes).hex(),
            size: bytes.len() as u64,
            content_type: String::new(),
            cache_control: String::new(),
            integrity: String::new(),
            references: Vec::new(),
        }
    }

    #[test]
    fn a_hashed_directory_is_content_named_when_its_files_hash_to_its_name() {
        let files: [(&str, &[u8]); 2] = [("a.bcmap", b"A"), ("sub/b.bcmap", b"B")];
        let digests: Vec<Digest> = files.iter().map(|(_, b)| Digest::of(b)).collect();
        let hash = graph::dir_hash(files.iter().map(|(p, _)| *p).zip(&digests));
        let dir = graph::hashed_dir_name("v/cmaps", &hash.hex(), 12);
        let mut m = crate::manifest::tests::sample();
        m.assets.clear();
        for (path, bytes) in files {
            m.assets.insert(
                format!("v/cmaps/{path}"),
                asset(&format!("assets/{dir}/{path}"), bytes),
            );
        }
        m.assets
            .insert("x.css".into(), asset("assets/x.0123456789ab.css", b"x"));
        assert_eq!(
            hashed_dir_files(&m).into_iter().collect::<Vec<_>>(),
            ["v/cmaps/a.bcmap", "v/cmaps/sub/b.bcmap"]
        );
        // Another digest for one file: the name no longer commits to it.
        m.assets.insert(
            "v/cmaps/a.bcmap".into(),
            asset(&format!("assets/{dir}/a.bcmap"), b"other"),
        );
        assert!(hashed_dir_files(&m).is_empty());
    }
}
