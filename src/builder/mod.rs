//! Building: pack the app into the artifact, fingerprint the assets, and
//! write the manifest that names them, locally (no network).
//!
//! Output goes to `<root>/.verbatim/build/`: `artifact.tar.gz` (written to a
//! temp file and renamed, so never half there) and then `manifest.json`.
//!
//! The assets are fingerprinted first, in memory, so everything made from
//! their names is known before packing: with `assets.django_manifest`,
//! Django's `staticfiles.json` (the bytes `export --format django` writes
//! for this manifest) is packed into the artifact at that path, never
//! written to the tree. The artifact's digest, which the manifest records,
//! then covers it; nothing in it depends on the artifact.

pub mod assets;
mod cache;
pub mod django;
pub mod provenance;

use std::io::{self, BufWriter};
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::Serialize;

use crate::config::{init, Config, DEFAULT_OUT};
use crate::digest::Digest;
use crate::manifest::{self, Manifest};
use crate::pack;
use crate::progress::Progress;
use crate::safe_fs;
use crate::signals::Interruptible;
use crate::text::{escape, human_bytes};

/// The artifact's file in the build directory.
pub const ARTIFACT_FILE: &str = "artifact.tar.gz";
/// The manifest's file in the build directory.
pub const MANIFEST_FILE: &str = "manifest.json";
/// What a build leaves in the build directory.
const OUTPUTS: [&str; 4] = [
    ARTIFACT_FILE,
    MANIFEST_FILE,
    assets::PACK_FILE,
    assets::SITE_FILE,
];

/// How to build, beyond the configuration.
#[derive(Debug, Clone, Default)]
pub struct BuildOptions {
    /// The source revision to record; `None`: from git, else the CI's
    /// variables.
    pub revision: Option<String>,
    /// The branch to record; `None`: from the CI's variables, else git.
    pub branch: Option<String>,
    /// The URL of the CI run to record; `None`: from the CI's variables.
    pub ci_url: Option<String>,
    /// The mtime of every entry, and the build time recorded
    /// (`SOURCE_DATE_EPOCH`); `None`: [`pack::DEFAULT_MTIME`].
    pub source_date_epoch: Option<u64>,
    /// Compression threads; `None`: one per CPU. Never changes the bytes.
    pub jobs: Option<usize>,
    /// Pack everything again even when nothing changed since the last
    /// build (`--no-cache`, and `build --check`).
    pub fresh: bool,
}

/// A finished build in the build directory.
pub struct Built {
    /// The manifest.
    pub manifest: Manifest,
    /// Its id: the sha256 of its canonical bytes.
    pub id: Digest,
    /// `.verbatim/build/artifact.tar.gz`.
    pub artifact_path: PathBuf,
    /// `.verbatim/build/manifest.json`.
    pub manifest_path: PathBuf,
    /// Entries packed (0 for a build read back by [`load_built`]).
    pub entries: usize,
    /// Bytes of file content packed (0 for a build read back).
    pub content_bytes: u64,
}

/// One line of `build --list`.
#[derive(Serialize)]
pub struct ListedJson {
    /// Its path in the artifact.
    pub path: String,
    /// `file`, `dir` or `symlink`.
    pub r#type: &'static str,
    /// Its size in bytes (0 for directories and links).
    pub size: u64,
    /// As packed: `0644`, `0755` (files), `0755` (dirs), `0777` (links).
    pub mode: &'static str,
    /// A symlink's target.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// Made by the build, not read from the tree (`assets.django_manifest`).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub generated: bool,
}

/// A path left out of the artifact.
#[derive(Serialize)]
pub struct ExcludedJson {
    /// The path, relative to the app directory.
    pub path: String,
    /// Why: the rule that excludes it.
    pub why: String,
}

/// What `build --list --json` prints.
#[derive(Serialize)]
pub struct ListJson {
    /// What would be packed, in order.
    pub entries: Vec<ListedJson>,
    /// What is left out, and why.
    pub excluded: Vec<ExcludedJson>,
}

/// `build --list`: what would be packed, and what is left out and why;
/// nothing is written.
pub fn list(cfg: &Config, progress: &dyn Progress) -> Result<ListJson> {
    let mut excluded = Vec::new();
    let mut entries = scan(cfg, &mut |path, why| {
        excluded.push(ExcludedJson {
            path: path.to_owned(),
            why: why.to_string(),
        })
    })?;
    if cfg.django_manifest.is_some() || cfg.site.is_some() {
        let fingerprinted = fingerprint(cfg, progress)?;
        let site = match &fingerprinted {
            Some(f) => assets::entry_files(f)?,
            None => Vec::new(),
        };
        let made = generated(cfg, fingerprinted.as_ref().map(|f| &f.output), &site)?;
        add_generated(&mut entries, &made, progress)?;
    }
    let entries = entries
        .into_iter()
        .map(|e| {
            let generated = matches!(e.kind, pack::EntryKind::Generated { .. });
            let (r#type, size, mode, target) = match e.kind {
                pack::EntryKind::Dir => ("dir", 0, "0755", None),
                pack::EntryKind::File {
                    size, executable, ..
                } => ("file", size, if executable { "0755" } else { "0644" }, None),
                pack::EntryKind::Generated { bytes } => ("file", bytes.len() as u64, "0644", None),
                pack::EntryKind::Symlink { target } => ("symlink", 0, "0777", Some(target)),
            };
            ListedJson {
                path: e.path,
                r#type,
                size,
                mode,
                target,
                generated,
            }
        })
        .collect();
    Ok(ListJson { entries, excluded })
}

/// Packs the app into the build directory and writes the manifest after it;
/// when nothing changed since the last build (`cache`), that build is it.
pub fn build(cfg: &Config, opts: &BuildOptions, progress: &dyn Progress) -> Result<Built> {
    let sde = opts.source_date_epoch.unwrap_or(pack::DEFAULT_MTIME);
    // Taken before anything is read (and nothing is written until the
    // fingerprint passed): what changes while this build runs makes the
    // next one build again.
    let mut ignored_outputs = Vec::new();
    let started_ns = cache::now_ns();
    // git's answers (up to three short processes) come while the tree is
    // walked.
    let (snapshot, provenance) = std::thread::scope(|s| {
        let provenance = s.spawn(|| provenance_of(cfg, opts));
        let entries = scan(cfg, &mut |path, why| {
            if let pack::Excluded::Ignored { by, dir: true } = why {
                ignored_outputs.push((path.to_owned(), by.to_owned()));
            }
        })?;
        let snapshot = cache::Snapshot::take(cfg, &entries, sde, started_ns)?;
        let provenance = provenance
            .join()
            .unwrap_or_else(|e| std::panic::resume_unwind(e));
        anyhow::Ok((snapshot, provenance))
    })?;
    warn_ignored_outputs(cfg, &ignored_outputs, progress);
    let existing = safe_fs::existing_dirs(&cfg.root, Path::new(DEFAULT_OUT))?;
    if let (false, Some(out)) = (opts.fresh, &existing) {
        let _lock = lock_dir(out, progress)?;
        if let Some(built) = reuse(cfg, out, &snapshot, &provenance, progress)? {
            return Ok(built);
        }
    }
    // Fingerprint first, in memory: a broken reference fails the build
    // before anything is written, and the names are known before packing.
    let fingerprinted = fingerprint(cfg, progress)?;
    let site_files = match &fingerprinted {
        Some(f) => assets::entry_files(f)?,
        None => Vec::new(),
    };
    let made = generated(cfg, fingerprinted.as_ref().map(|f| &f.output), &site_files)?;
    let out = safe_fs::create_dirs(&cfg.root, Path::new(DEFAULT_OUT))
        .context("creating the build directory")?;
    let _lock = lock_dir(&out, progress)?;
    cache::forget(&out);
    for dirent in std::fs::read_dir(&out).with_context(|| format!("reading {}", out.display()))? {
        let dirent = dirent?;
        let name = dirent.file_name();
        let name = name.to_string_lossy();
        if [".artifact-", ".cache-", assets::PACK_TEMP_PREFIX, ".site-"]
            .iter()
            .any(|p| name.starts_with(p))
        {
            let _ = std::fs::remove_file(dirent.path());
            progress.note(format!(
                "removed {}, left by an interrupted build",
                dirent.path().display()
            ));
        }
    }
    let tmp = tempfile::Builder::new()
        .prefix(".artifact-")
        .permissions(std::fs::Permissions::from_mode(0o644))
        .tempfile_in(&out)
        .with_context(|| format!("creating a temp file in {}", out.display()))?;
    let mut writer = Interruptible(BufWriter::with_capacity(1 << 20, tmp));
    let (packed, entries, migration_files) = pack_counted(cfg, opts, progress, &made, &mut writer)?;
    let tmp = writer.0.into_inner().map_err(|e| e.into_error())?;
    tmp.as_file().sync_all()?;
    let artifact_path = out.join(ARTIFACT_FILE);
    tmp.persist(&artifact_path)
        .with_context(|| format!("writing {}", artifact_path.display()))?;
    let assets = match fingerprinted {
        Some(f) => assets::write(&out, f, progress)?,
        None => Default::default(),
    };
    assets::write_site(&out, &site_files)?;
    let site = cfg
        .site
        .as_ref()
        .filter(|_| !site_files.is_empty())
        .map(|s| manifest::Site {
            artifact_dir: s.artifact_dir.clone(),
            cache_control: s.cache_control.clone(),
            entries: site_files.into_iter().map(|e| (e.path, e.entry)).collect(),
        });

    let manifest = Manifest {
        schema: manifest::SCHEMA.into(),
        artifact: manifest::Artifact {
            entries: entries as u64,
            key: manifest::artifact_key(&packed.sha256),
            sha256: packed.sha256.hex(),
            size: packed.size,
            pack_spec: pack::SPEC.into(),
            unpacked_size: packed.content_bytes,
            // One block needs no index.
            blocks: match packed.blocks.len() {
                0 | 1 => Vec::new(),
                _ => packed.blocks.clone(),
            },
        },
        assets,
        deploy: cfg.deploy.clone().map(|d| manifest::Deploy {
            migration_files,
            ..d
        }),
        provenance,
        site,
    };
    let manifest_path = out.join(MANIFEST_FILE);
    let id = write_manifest(&out, &manifest)?;
    let counts = (entries, packed.content_bytes);
    if let Err(e) = cache::record(&out, &OUTPUTS, snapshot, &id, counts) {
        progress.warn(format!("could not record the build cache: {e:#}"));
    }
    progress.note(format!(
        "built artifact {} ({}, {entries} entries, {} of content) and manifest {id}",
        packed.sha256,
        human_bytes(packed.size),
        human_bytes(packed.content_bytes),
    ));
    Ok(Built {
        id,
        manifest,
        artifact_path,
        manifest_path,
        entries,
        content_bytes: packed.content_bytes,
    })
}

/// Warns about each directory of `ignored` (app paths an ignore file left
/// out, and which line) that is named like build output
/// ([`init::BUILD_OUTPUTS`]) and is not the assets directory, nor holds it
/// nor lies in it: a `dist/` that `.gitignore` keeps out of git is left
/// out of the artifact too, which is rarely what a build wants.
fn warn_ignored_outputs(cfg: &Config, ignored: &[(String, String)], progress: &dyn Progress) {
    let assets = cfg
        .assets_dir
        .as_deref()
        .and_then(|d| std::fs::canonicalize(d).ok());
    for (path, by) in ignored {
        let name = path.rsplit('/').next().unwrap_or(path);
        if !init::BUILD_OUTPUTS.contains(&name) {
            continue;
        }
        let dir = cfg.app_dir.join(path);
        let related = match (&assets, std::fs::canonicalize(&dir)) {
            (Some(a), Ok(d)) => a.starts_with(&d) || d.starts_with(a),
            _ => false,
        };
        if related {
            continue;
        }
        // As the config names it: relative to its directory, `./` dropped.
        let shown: PathBuf = dir
            .strip_prefix(&cfg.root)
            .unwrap_or(&dir)
            .components()
            .filter(|c| !matches!(c, std::path::Component::CurDir))
            .collect();
        let shown = shown.display().to_string();
        progress.warn(format!(
            "{shown}/ is not packed into the artifact: {by} ignores it, and it looks like build output. \
             If it is the front-end build, publish it as the assets (`[assets] dir = \"{shown}\"`); \
             if the app needs it at run time, set `app.respect_gitignore = false` in {} (and list what not to pack in app.exclude)",
            cfg.config_path.display(),
            shown = escape(&shown),
            by = escape(by),
        ));
    }
}

/// One build at a time in `out` (a lock on the directory itself: no lock
/// file is left), for as long as the file is open.
fn lock_dir(out: &Path, progress: &dyn Progress) -> Result<std::fs::File> {
    let lock = std::fs::File::open(out).with_context(|| format!("opening {}", out.display()))?;
    if lock.try_lock().is_err() {
        progress.note(format!(
            "waiting for another build in {} to finish",
            out.display()
        ));
        lock.lock()
            .with_context(|| format!("locking {}", out.display()))?;
    }
    Ok(lock)
}

/// Where the build comes from: flags, CI variables, git.
fn provenance_of(cfg: &Config, opts: &BuildOptions) -> manifest::Provenance {
    provenance::complete(
        &cfg.root,
        manifest::Provenance {
            branch: opts.branch.clone(),
            ci_url: opts.ci_url.clone(),
            dirty: false,
            revision: opts.revision.clone(),
            source_date_epoch: opts.source_date_epoch.unwrap_or(pack::DEFAULT_MTIME),
            tool: format!("verbatim {}", env!("CARGO_PKG_VERSION")),
        },
    )
}

/// Writes `manifest` as `out/manifest.json` (through a temp renamed into
/// place), as it is encoded: a manifest of 100,000 assets is 35 MB.
fn write_manifest(out: &Path, manifest: &Manifest) -> Result<Digest> {
    let manifest_path = out.join(MANIFEST_FILE);
    let written = || -> io::Result<Digest> {
        let tmp = tempfile::Builder::new()
            .permissions(std::fs::Permissions::from_mode(0o644))
            .tempfile_in(out)?;
        let id = manifest.write_canonical(tmp.as_file())?;
        tmp.as_file().sync_all()?;
        tmp.persist(&manifest_path).map_err(|e| e.error)?;
        Ok(id)
    };
    written().with_context(|| format!("writing {}", manifest_path.display()))
}

/// The last build, when `snapshot` says nothing it was made from changed
/// and its outputs are still there as it left them; its provenance is
/// brought up to date (a new revision of the same tree).
fn reuse(
    cfg: &Config,
    out: &Path,
    snapshot: &cache::Snapshot,
    provenance: &manifest::Provenance,
    progress: &dyn Progress,
) -> Result<Option<Built>> {
    let mut why = |w: String| progress.detail(format!("building afresh: {w}"));
    let Some(hit) = cache::find(out, &OUTPUTS, snapshot, &mut why) else {
        return Ok(None);
    };
    let Ok(mut built) = load_built(cfg) else {
        return Ok(None);
    };
    let artifact_there = std::fs::symlink_metadata(&built.artifact_path)
        .is_ok_and(|m| m.is_file() && m.len() == built.manifest.artifact.size);
    let assets_there = built.manifest.assets.is_empty() || out.join(assets::PACK_FILE).is_file();
    if built.id != hit.manifest || !artifact_there || !assets_there {
        why("the build directory no longer holds that build".into());
        return Ok(None);
    }
    if *provenance != built.manifest.provenance {
        built.manifest.provenance = provenance.clone();
        built.id = write_manifest(out, &built.manifest)?;
        cache::record(
            out,
            &OUTPUTS,
            snapshot.clone(),
            &built.id,
            (hit.entries, hit.content_bytes),
        )?;
    }
    built.entries = hit.entries;
    built.content_bytes = hit.content_bytes;
    progress.note(format!(
        "nothing changed since the last build ({} entries checked): reusing artifact sha256:{} and manifest {}",
        hit.checked, built.manifest.artifact.sha256, built.id
    ));
    Ok(Some(built))
}

/// `build --check`: builds again from scratch (fingerprint, then pack: with
/// `assets.django_manifest` the artifact depends on the assets), into
/// nothing, and fails unless every byte is what `built` holds.
pub fn check_reproducible(
    cfg: &Config,
    opts: &BuildOptions,
    built: &Built,
    progress: &dyn Progress,
) -> Result<()> {
    // A second build from scratch: fingerprint, then pack (the assets
    // first: with assets.django_manifest, the artifact depends on them).
    let assets_again = fingerprint(cfg, &crate::progress::Silent)?;
    if let (Some(dir), Some(again)) = (&cfg.assets_dir, &assets_again) {
        for (logical, asset) in &built.manifest.assets {
            let same = again.output.files.get(logical).is_some_and(|f| {
                f.sha256.hex() == asset.sha256
                    && format!("{}/{}", assets::ASSETS_DIR, f.name) == asset.key
            });
            if !same {
                bail!(
                    "build is not reproducible: a second fingerprint of {} changed asset {logical}; is something writing to the tree?",
                    dir.display()
                );
            }
        }
    }
    let site_again = match &assets_again {
        Some(f) => assets::entry_files(f)?,
        None => Vec::new(),
    };
    let recorded = built.manifest.site.as_ref().map(|s| &s.entries);
    let same_site = site_again.len() == recorded.map_or(0, |e| e.len())
        && site_again
            .iter()
            .all(|e| recorded.and_then(|r| r.get(&e.path)) == Some(&e.entry));
    if !same_site {
        bail!("build is not reproducible: a second fingerprint changed the entry files ([site]); is something writing to the tree?");
    }
    let made = generated(cfg, assets_again.as_ref().map(|f| &f.output), &site_again)?;
    let again = pack_to(cfg, opts, progress, &made, io::sink())?;
    if again.sha256.hex() != built.manifest.artifact.sha256 {
        bail!(
            "build is not reproducible: a second pack of {} gave {} instead of sha256:{}; \
             is something writing to the tree?",
            cfg.app_dir.display(),
            again.sha256,
            built.manifest.artifact.sha256
        );
    }
    progress.note("reproducible: a second build gave the same bytes");
    Ok(())
}

fn pack_to(
    cfg: &Config,
    opts: &BuildOptions,
    progress: &dyn Progress,
    made: &[Generated],
    out: impl io::Write,
) -> Result<pack::Packed> {
    Ok(pack_counted(cfg, opts, progress, made, out)?.0)
}

fn pack_counted(
    cfg: &Config,
    opts: &BuildOptions,
    progress: &dyn Progress,
    made: &[Generated],
    out: impl io::Write,
) -> Result<(pack::Packed, usize, Vec<String>)> {
    let mut entries = scan(cfg, &mut |path, why| {
        progress.detail(format!("excluded {path}: {why}"))
    })?;
    add_generated(&mut entries, made, progress)?;
    // The migrations the artifact holds, for a rollback to name.
    let globs = cfg.deploy.as_ref().map_or(&[][..], |d| &d.migrations[..]);
    let migrations = pack::glob_set(globs)
        .map_err(|e| anyhow::anyhow!("[deploy] migrations: glob {:?}: {}", e.glob, e.message))?;
    let migration_files: Vec<String> = entries
        .iter()
        .filter(|e| !globs.is_empty() && migrations.is_match(&e.path))
        .map(|e| e.path.clone())
        .collect();
    let total: u64 = entries
        .iter()
        .map(|e| match &e.kind {
            pack::EntryKind::File { size, .. } => *size,
            pack::EntryKind::Generated { bytes } => bytes.len() as u64,
            _ => 0,
        })
        .sum();
    let bar = progress.bytes_bar(total, "packing");
    let threads = opts.jobs.unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    });
    let mtime = opts.source_date_epoch.unwrap_or(pack::DEFAULT_MTIME);
    let packed = pack::write(&cfg.app_dir, &entries, mtime, threads, out, &|n| bar.inc(n))
        .with_context(|| format!("packing {}", cfg.app_dir.display()))?;
    bar.finish();
    Ok((packed, entries.len(), migration_files))
}

/// The assets directory fingerprinted in memory, if the config has one;
/// what there is to say about it goes to `progress`.
fn fingerprint(cfg: &Config, progress: &dyn Progress) -> Result<Option<assets::Fingerprinted>> {
    let Some(dir) = &cfg.assets_dir else {
        return Ok(None);
    };
    let f = assets::fingerprint(cfg, dir)?;
    for (level, note) in &f.notes {
        progress.message(*level, note);
    }
    Ok(Some(f))
}

/// A file the build makes and packs at `path` (relative to the app
/// directory), in place of anything the tree holds there.
struct Generated {
    path: String,
    bytes: Vec<u8>,
    /// What it is, for messages.
    what: &'static str,
}

/// `assets.django_manifest`: Django's `staticfiles.json` for the
/// fingerprinted assets, the very bytes `export --format django` writes for
/// the manifest these assets go into.
fn generated(
    cfg: &Config,
    fingerprinted: Option<&crate::assets::Output>,
    entries: &[assets::EntryFile],
) -> Result<Vec<Generated>> {
    // The entry files, for hosts that serve them from `current/`.
    let mut made: Vec<Generated> = match &cfg.site {
        Some(site) => entries
            .iter()
            .map(|e| Generated {
                path: format!("{}/{}", site.artifact_dir, e.path),
                bytes: e.bytes.clone(),
                what: "an entry file ([site])",
            })
            .collect(),
        None => Vec::new(),
    };
    let Some(path) = cfg.django_manifest_entry()? else {
        return Ok(made);
    };
    let keys: Vec<(&str, String)> = fingerprinted
        .map(|f| &f.files)
        .into_iter()
        .flatten()
        .map(|(logical, f)| {
            (
                logical.as_str(),
                format!("{}/{}", assets::ASSETS_DIR, f.name),
            )
        })
        .collect();
    let bytes = django::staticfiles(keys.iter().map(|(l, k)| (*l, k.as_str())));
    made.push(Generated {
        path,
        bytes,
        what: "Django's staticfiles.json (assets.django_manifest)",
    });
    Ok(made)
}

/// Puts `made` into the scanned entries; says (with -v) when it replaces
/// a file of the tree.
fn add_generated(
    entries: &mut Vec<pack::Entry>,
    made: &[Generated],
    progress: &dyn Progress,
) -> Result<()> {
    for made in made {
        let done = pack::insert_generated(entries, &made.path, made.bytes.clone())
            .with_context(|| format!("placing {} at {}", made.what, made.path))?;
        if let Some(old) = done.replaced {
            let kind = match old {
                pack::EntryKind::Symlink { .. } => "symlink",
                _ => "file",
            };
            progress.detail(format!(
                "replaced {}: the app directory's {kind} is packed as this build's {}; \
                 the tree is left as it is",
                made.path, made.what
            ));
        }
        for dir in done.added_dirs {
            progress.detail(format!(
                "added directory {dir}: the app directory has none, and {} lies below it",
                made.what
            ));
        }
    }
    Ok(())
}

/// The entries of the app directory the config packs, telling `excluded`
/// what is left out and why.
fn scan(
    cfg: &Config,
    excluded: &mut dyn FnMut(&str, pack::Excluded<'_>),
) -> Result<Vec<pack::Entry>> {
    let mut skip = vec![cfg.work_dir(), cfg.out_dir()];
    if !cfg.store_url.contains("://") {
        skip.push(cfg.store_base.join(&cfg.store_url));
    }
    let mut filter = pack::Filter::new(&cfg.exclude, skip)?;
    filter.default_excludes = cfg.default_excludes;
    filter.ignore_files = cfg.respect_gitignore;
    pack::scan_explained(&cfg.app_dir, &filter, excluded)
        .with_context(|| format!("scanning app directory {}", cfg.app_dir.display()))
}

/// Reads the build directory's manifest and checks the artifact beside it.
pub fn load_built(cfg: &Config) -> Result<Built> {
    let out = cfg.out_dir();
    let manifest_path = out.join(MANIFEST_FILE);
    let bytes = safe_fs::existing_dirs(&cfg.root, Path::new(DEFAULT_OUT))
        .and_then(|_| safe_fs::read_regular(&manifest_path))
        .with_context(|| {
            format!(
                "reading {} (run `verbatim build` first, or publish without --prebuilt)",
                manifest_path.display()
            )
        })?;
    let manifest =
        Manifest::parse(&bytes).with_context(|| format!("parsing {}", manifest_path.display()))?;
    let artifact_path = out.join(ARTIFACT_FILE);
    Ok(Built {
        id: manifest.id(),
        manifest,
        artifact_path,
        manifest_path,
        entries: 0,
        content_bytes: 0,
    })
}
