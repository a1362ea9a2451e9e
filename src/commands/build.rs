//! `verbatim build`: pack the artifact and write the manifest, locally.
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

use std::io::{self, BufWriter};
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};
use serde::Serialize;

use crate::cli::{BuildArgs, BuildOpts, Global};
use crate::config::{Config, Overrides, DEFAULT_OUT};
use crate::digest::Digest;
use crate::manifest::{self, Manifest};
use crate::output::Printer;
use crate::pack;
use crate::safe_fs;
use crate::text::human_bytes;

pub const ARTIFACT_FILE: &str = "artifact.tar.gz";
pub const MANIFEST_FILE: &str = "manifest.json";

/// A finished build in the build directory.
pub struct Built {
    pub manifest: Manifest,
    pub id: Digest,
    pub artifact_path: PathBuf,
    pub manifest_path: PathBuf,
    pub entries: usize,
    pub content_bytes: u64,
}

#[derive(Serialize)]
struct BuildJson<'a> {
    manifest: String,
    manifest_path: &'a Path,
    artifact: ArtifactJson<'a>,
    entries: usize,
    content_bytes: u64,
    reproducible: Option<bool>,
    /// Number of fingerprinted assets in the manifest.
    assets: usize,
}

#[derive(Serialize)]
pub struct ArtifactJson<'a> {
    pub key: &'a str,
    pub sha256: String,
    pub size: u64,
    pub path: &'a Path,
}

/// One line of `build --list`.
#[derive(Serialize)]
struct ListedJson {
    path: String,
    /// `file`, `dir` or `symlink`.
    r#type: &'static str,
    size: u64,
    /// As packed: `0644`, `0755` (files), `0755` (dirs), `0777` (links).
    mode: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    target: Option<String>,
    /// Made by the build, not read from the tree (`assets.django_manifest`).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    generated: bool,
}

#[derive(Serialize)]
struct ExcludedJson {
    path: String,
    why: String,
}

#[derive(Serialize)]
struct ListJson {
    entries: Vec<ListedJson>,
    excluded: Vec<ExcludedJson>,
}

/// `build --list`: what would be packed, and what is left out and why;
/// nothing is written.
fn list(cfg: &Config, printer: &Printer) -> Result<()> {
    let mut excluded = Vec::new();
    let mut entries = scan(cfg, &mut |path, why| {
        excluded.push(ExcludedJson {
            path: path.to_owned(),
            why: why.to_owned(),
        })
    })?;
    if cfg.django_manifest.is_some() {
        let fingerprinted = fingerprint(cfg)?;
        let made = generated(cfg, fingerprinted.as_ref().map(|f| &f.output))?;
        add_generated(&mut entries, made.as_ref(), printer)?;
    }
    let mut out = ListJson {
        entries: Vec::with_capacity(entries.len()),
        excluded,
    };
    for e in entries {
        let generated = matches!(e.kind, pack::EntryKind::Generated { .. });
        let (t, size, mode, target) = match e.kind {
            pack::EntryKind::Dir => ("dir", 0, "0755", None),
            pack::EntryKind::File { size, executable } => {
                ("file", size, if executable { "0755" } else { "0644" }, None)
            }
            pack::EntryKind::Generated { bytes } => ("file", bytes.len() as u64, "0644", None),
            pack::EntryKind::Symlink { target } => ("symlink", 0, "0777", Some(target)),
        };
        printer.result(format!(
            "{mode} {size:>12}  {}{}{}",
            e.path,
            target
                .as_ref()
                .map_or(String::new(), |t| format!(" -> {t}")),
            if generated {
                "  (generated: assets.django_manifest)"
            } else {
                ""
            }
        ))?;
        out.entries.push(ListedJson {
            path: e.path,
            r#type: t,
            size,
            mode,
            target,
            generated,
        });
    }
    for x in &out.excluded {
        printer.detail(format!("excluded {}: {}", x.path, x.why));
    }
    printer.note(format!(
        "{} entries would be packed, {} excluded (-v lists them)",
        out.entries.len(),
        out.excluded.len()
    ));
    printer.json(&out)?;
    Ok(())
}

pub fn run(g: &Global, args: &BuildArgs, printer: &Printer) -> Result<()> {
    let cfg = config_for(g, &args.opts)?;
    if args.list {
        return list(&cfg, printer);
    }
    let built = build(&cfg, &args.opts, printer)?;
    let mut reproducible = None;
    if args.check {
        // A second build from scratch: fingerprint, then pack (the assets
        // first: with assets.django_manifest, the artifact depends on them).
        let assets_again = fingerprint(&cfg)?;
        if let (Some(dir), Some(again)) = (&cfg.assets_dir, &assets_again) {
            for (logical, asset) in &built.manifest.assets {
                let same = again.output.files.get(logical).is_some_and(|f| {
                    f.sha256.hex() == asset.sha256
                        && format!("{}/{}", super::assets::ASSETS_DIR, f.name) == asset.key
                });
                if !same {
                    bail!(
                        "build is not reproducible: a second fingerprint of {} changed asset {logical}; is something writing to the tree?",
                        dir.display()
                    );
                }
            }
        }
        let made = generated(&cfg, assets_again.as_ref().map(|f| &f.output))?;
        let again = pack_to(&cfg, &args.opts, printer, made.as_ref(), io::sink())?;
        if again.sha256.hex() != built.manifest.artifact.sha256 {
            bail!(
                "build is not reproducible: a second pack of {} gave {} instead of sha256:{}; \
                 is something writing to the tree?",
                cfg.app_dir.display(),
                again.sha256,
                built.manifest.artifact.sha256
            );
        }
        printer.note("reproducible: a second build gave the same bytes");
        reproducible = Some(true);
    }
    printer.result(built.id)?;
    printer.json(&BuildJson {
        manifest: built.id.to_string(),
        manifest_path: &built.manifest_path,
        artifact: ArtifactJson {
            key: &built.manifest.artifact.key,
            sha256: built.manifest.artifact.sha256.clone(),
            size: built.manifest.artifact.size,
            path: &built.artifact_path,
        },
        entries: built.entries,
        content_bytes: built.content_bytes,
        reproducible,
        assets: built.manifest.assets.len(),
    })?;
    Ok(())
}

pub fn config_for(g: &Global, opts: &BuildOpts) -> Result<Config> {
    let cfg = super::load_config(
        g,
        Overrides {
            app_dir: opts.app_dir.clone(),
            ..Overrides::default()
        },
    )?;
    cfg.check_dirs()?;
    Ok(cfg)
}

/// Packs the app into the build directory and writes the manifest after it.
pub fn build(cfg: &Config, opts: &BuildOpts, printer: &Printer) -> Result<Built> {
    // Fingerprint first, in memory: a broken reference fails the build
    // before anything is written, and the names are known before packing.
    let fingerprinted = fingerprint(cfg)?;
    let made = generated(cfg, fingerprinted.as_ref().map(|f| &f.output))?;
    let out = safe_fs::create_dirs(&cfg.root, Path::new(DEFAULT_OUT))
        .context("creating the build directory")?;
    // One build at a time in this directory (a lock on the directory
    // itself: no lock file is left); what a killed one left goes.
    let lock = std::fs::File::open(&out).with_context(|| format!("opening {}", out.display()))?;
    if lock.try_lock().is_err() {
        printer.note(format!(
            "waiting for another build in {} to finish",
            out.display()
        ));
        lock.lock()
            .with_context(|| format!("locking {}", out.display()))?;
    }
    for dirent in std::fs::read_dir(&out).with_context(|| format!("reading {}", out.display()))? {
        let dirent = dirent?;
        let name = dirent.file_name();
        let name = name.to_string_lossy();
        if name.starts_with(".artifact-") || name.starts_with(super::assets::PACK_TEMP_PREFIX) {
            let _ = std::fs::remove_file(dirent.path());
            printer.note(format!(
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
    let mut writer = crate::signals::Interruptible(BufWriter::with_capacity(1 << 20, tmp));
    let (packed, entries) = pack_counted(cfg, opts, printer, made.as_ref(), &mut writer)?;
    let tmp = writer.0.into_inner().map_err(|e| e.into_error())?;
    tmp.as_file().sync_all()?;
    let artifact_path = out.join(ARTIFACT_FILE);
    tmp.persist(&artifact_path)
        .with_context(|| format!("writing {}", artifact_path.display()))?;
    let assets = match fingerprinted {
        Some(f) => super::assets::write(&out, f, printer)?,
        None => Default::default(),
    };

    let manifest = Manifest {
        schema: manifest::SCHEMA.into(),
        artifact: manifest::Artifact {
            entries: entries as u64,
            key: manifest::artifact_key(&packed.sha256),
            sha256: packed.sha256.hex(),
            size: packed.size,
            pack_spec: pack::SPEC.into(),
            unpacked_size: packed.content_bytes,
        },
        assets,
        deploy: cfg.deploy.clone(),
        provenance: manifest::Provenance {
            branch: branch(cfg, opts),
            ci_url: ci_url(opts),
            revision: revision(cfg, opts),
            source_date_epoch: opts.source_date_epoch.unwrap_or(pack::DEFAULT_MTIME),
            tool: format!("verbatim {}", env!("CARGO_PKG_VERSION")),
        },
    };
    // Written as it is encoded: a manifest of 100,000 assets is 35 MB.
    let manifest_path = out.join(MANIFEST_FILE);
    let written = || -> io::Result<Digest> {
        let tmp = tempfile::Builder::new()
            .permissions(std::fs::Permissions::from_mode(0o644))
            .tempfile_in(&out)?;
        let id = manifest.write_canonical(tmp.as_file())?;
        tmp.as_file().sync_all()?;
        tmp.persist(&manifest_path).map_err(|e| e.error)?;
        Ok(id)
    };
    let id = written().with_context(|| format!("writing {}", manifest_path.display()))?;
    printer.note(format!(
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

fn pack_to(
    cfg: &Config,
    opts: &BuildOpts,
    printer: &Printer,
    made: Option<&Generated>,
    out: impl io::Write,
) -> Result<pack::Packed> {
    Ok(pack_counted(cfg, opts, printer, made, out)?.0)
}

fn pack_counted(
    cfg: &Config,
    opts: &BuildOpts,
    printer: &Printer,
    made: Option<&Generated>,
    out: impl io::Write,
) -> Result<(pack::Packed, usize)> {
    let mut entries = scan(cfg, &mut |path, why| {
        printer.detail(format!("excluded {path}: {why}"))
    })?;
    add_generated(&mut entries, made, printer)?;
    let total: u64 = entries
        .iter()
        .map(|e| match &e.kind {
            pack::EntryKind::File { size, .. } => *size,
            pack::EntryKind::Generated { bytes } => bytes.len() as u64,
            _ => 0,
        })
        .sum();
    let bar = printer.bytes_bar(total, "packing");
    let threads = opts.jobs.map(usize::from).unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    });
    let mtime = opts.source_date_epoch.unwrap_or(pack::DEFAULT_MTIME);
    let packed = pack::write(&cfg.app_dir, &entries, mtime, threads, out, &|n| bar.inc(n))
        .with_context(|| format!("packing {}", cfg.app_dir.display()))?;
    bar.finish();
    Ok((packed, entries.len()))
}

/// The assets directory fingerprinted in memory, if the config has one.
fn fingerprint(cfg: &Config) -> Result<Option<super::assets::Fingerprinted>> {
    cfg.assets_dir
        .as_ref()
        .map(|dir| super::assets::fingerprint(cfg, dir))
        .transpose()
}

/// A file the build makes and packs at `path` (relative to the app
/// directory), in place of anything the tree holds there.
struct Generated {
    path: String,
    bytes: Vec<u8>,
}

/// `assets.django_manifest`: Django's `staticfiles.json` for the
/// fingerprinted assets, the very bytes `export --format django` writes for
/// the manifest these assets go into.
fn generated(
    cfg: &Config,
    fingerprinted: Option<&crate::assets::Output>,
) -> Result<Option<Generated>> {
    let Some(path) = cfg.django_manifest_entry()? else {
        return Ok(None);
    };
    let keys: Vec<(&str, String)> = fingerprinted
        .map(|f| &f.files)
        .into_iter()
        .flatten()
        .map(|(logical, f)| {
            (
                logical.as_str(),
                format!("{}/{}", super::assets::ASSETS_DIR, f.name),
            )
        })
        .collect();
    let bytes = super::export::django_staticfiles(keys.iter().map(|(l, k)| (*l, k.as_str())));
    Ok(Some(Generated { path, bytes }))
}

/// Puts `made` into the scanned entries; says (with -v) when it replaces
/// a file of the tree.
fn add_generated(
    entries: &mut Vec<pack::Entry>,
    made: Option<&Generated>,
    printer: &Printer,
) -> Result<()> {
    let Some(made) = made else { return Ok(()) };
    let done = pack::insert_generated(entries, &made.path, made.bytes.clone())
        .context("placing Django's staticfiles.json (`assets.django_manifest`)")?;
    if let Some(old) = done.replaced {
        let what = match old {
            pack::EntryKind::Symlink { .. } => "symlink",
            _ => "file",
        };
        printer.detail(format!(
            "replaced {}: the app directory's {what} is packed as this build's staticfiles.json \
             (assets.django_manifest); the tree is left as it is",
            made.path
        ));
    }
    for dir in done.added_dirs {
        printer.detail(format!(
            "added directory {dir}: the app directory has none, and assets.django_manifest lies below it"
        ));
    }
    Ok(())
}

/// The entries of the app directory the config packs, telling `excluded`
/// what is left out and why.
fn scan(cfg: &Config, excluded: &mut dyn FnMut(&str, &str)) -> Result<Vec<pack::Entry>> {
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

/// The first of these environment variables that is set and not empty.
fn first_var(names: &[&str]) -> Option<String> {
    names
        .iter()
        .find_map(|n| std::env::var(n).ok().filter(|v| !v.trim().is_empty()))
}

/// `git -C root ARGS`'s output, trimmed, when it succeeds.
fn git(cfg: &Config, args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .arg("-C")
        .arg(&cfg.root)
        .args(args)
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    let text = String::from_utf8(out.stdout).ok()?.trim().to_owned();
    (out.status.success() && !text.is_empty()).then_some(text)
}

/// `--branch`, else the CI's branch variable, else git's current branch.
fn branch(cfg: &Config, opts: &BuildOpts) -> Option<String> {
    opts.branch
        .clone()
        .or_else(|| {
            first_var(&[
                "GITHUB_HEAD_REF",
                "GITHUB_REF_NAME",
                "CI_COMMIT_REF_NAME",
                "BUILDKITE_BRANCH",
            ])
        })
        .or_else(|| git(cfg, &["rev-parse", "--abbrev-ref", "HEAD"]).filter(|b| b != "HEAD"))
}

/// `--ci-url`, else the run's URL from GitHub Actions, GitLab CI or
/// Buildkite variables.
fn ci_url(opts: &BuildOpts) -> Option<String> {
    if let Some(u) = &opts.ci_url {
        return Some(u.clone());
    }
    if let (Some(server), Some(repo), Some(run)) = (
        first_var(&["GITHUB_SERVER_URL"]),
        first_var(&["GITHUB_REPOSITORY"]),
        first_var(&["GITHUB_RUN_ID"]),
    ) {
        return Some(format!("{server}/{repo}/actions/runs/{run}"));
    }
    first_var(&["CI_JOB_URL", "CI_PIPELINE_URL", "BUILDKITE_BUILD_URL"])
}

/// `--revision`, else the git commit of the project root, else the CI's
/// commit variable, else none.
fn revision(cfg: &Config, opts: &BuildOpts) -> Option<String> {
    if let Some(r) = &opts.revision {
        return Some(r.clone());
    }
    if let Some(r) = git(cfg, &["rev-parse", "--verify", "--quiet", "HEAD"]) {
        return Some(r);
    }
    first_var(&["GITHUB_SHA", "CI_COMMIT_SHA", "BUILDKITE_COMMIT"])
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
