//! `init`: a commented `verbatim.toml` for the project in a directory,
//! and `.verbatim/` kept out of git.
//!
//! It looks at what is there: a Django project (`manage.py`) packs `.`
//! and publishes `static/`; a Vite build (`dist/.vite/manifest.json`)
//! publishes `dist/` with its manifest; else `app/`, `src/` or `.` is
//! packed, and `static/` or `public/` published when present.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::Serialize;

use crate::error::UsageError;
use crate::store::local::write_atomic;

/// What `init --json` prints.
#[derive(Serialize)]
pub struct InitJson {
    /// The configuration file written.
    pub config: PathBuf,
    /// What it chose: `app.dir` and `assets.dir` (`null` when none).
    pub app_dir: String,
    /// `assets.dir`, when the project has one.
    pub assets_dir: Option<String>,
    /// Whether `.verbatim/` was added to `.gitignore` (false when it was there).
    pub gitignore_updated: bool,
}

/// `init`: writes a commented configuration at `path` for the project in
/// its directory (what it finds there decides `app.dir` and `assets.dir`),
/// never over an existing one unless `force`, and keeps `.verbatim/` out of
/// git.
pub fn init(path: &Path, force: bool) -> Result<InitJson> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    };
    let (app_dir, assets_dir, vite) = detect(&dir);
    let text = template(app_dir, assets_dir.map(|a| (a, vite)));
    if force {
        write_atomic(path, text.as_bytes())
            .with_context(|| format!("writing {}", path.display()))?;
    } else {
        let mut f = match OpenOptions::new().write(true).create_new(true).open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                return Err(UsageError(format!(
                    "{} already exists; edit it, or pass --force to replace it",
                    path.display()
                ))
                .into())
            }
            Err(e) => return Err(e).with_context(|| format!("creating {}", path.display())),
        };
        f.write_all(text.as_bytes())
            .and_then(|()| f.sync_all())
            .with_context(|| format!("writing {}", path.display()))?;
    }
    let gitignore_updated = ignore_work_dir(&dir)?;
    Ok(InitJson {
        config: path.to_owned(),
        app_dir: app_dir.to_owned(),
        assets_dir: assets_dir.map(str::to_owned),
        gitignore_updated,
    })
}

/// What the project looks like: (app dir, assets dir, Vite manifest).
fn detect(dir: &Path) -> (&'static str, Option<&'static str>, Option<&'static str>) {
    let has = |p: &str| dir.join(p).exists();
    if has("dist/.vite/manifest.json") {
        let app = if has("server") { "server" } else { "." };
        return (app, Some("dist"), Some("dist/.vite/manifest.json"));
    }
    let assets = ["static", "public"]
        .into_iter()
        .find(|d| dir.join(d).is_dir());
    let app = if has("manage.py") {
        "."
    } else {
        ["app", "src"]
            .into_iter()
            .find(|d| dir.join(d).is_dir())
            .unwrap_or(".")
    };
    (app, assets, None)
}

/// Adds `.verbatim/` to the `.gitignore` beside the config (creating it),
/// unless a line already ignores it. The default store and the build output
/// live there: committed, a checkout would rewind environment pointers.
fn ignore_work_dir(dir: &Path) -> Result<bool> {
    let path = dir.join(".gitignore");
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    let ignored = text
        .lines()
        .map(str::trim)
        .any(|l| matches!(l, ".verbatim" | ".verbatim/" | "/.verbatim" | "/.verbatim/"));
    if ignored {
        return Ok(false);
    }
    let mut f = OpenOptions::new()
        .append(true)
        .create(true)
        .open(&path)
        .with_context(|| format!("opening {}", path.display()))?;
    let sep = if text.is_empty() || text.ends_with('\n') {
        ""
    } else {
        "\n"
    };
    f.write_all(
        format!("{sep}# verbatim: build output and the local store\n/.verbatim/\n").as_bytes(),
    )
    .with_context(|| format!("writing {}", path.display()))?;
    Ok(true)
}

/// What `verbatim init` writes for `app_dir` and, when the project has
/// one, an assets directory (and a Vite manifest inside it).
pub fn template(app_dir: &str, assets: Option<(&str, Option<&str>)>) -> String {
    let mut t = TEMPLATE.replacen("dir = \"app\"", &format!("dir = {app_dir:?}"), 1);
    let django = match app_dir {
        "." => "mysite/static/staticfiles.json".to_owned(),
        dir => format!("{dir}/mysite/static/staticfiles.json"),
    };
    t = t.replacen(
        "# django_manifest = \"app/mysite/static/staticfiles.json\"",
        &format!("# django_manifest = {django:?}"),
        1,
    );
    if let Some((dir, vite)) = assets {
        t = t
            .replacen("# [assets]\n", "[assets]\n", 1)
            .replacen("# # Front-end files", "# Front-end files", 1)
            .replacen("# dir = \"static\"", &format!("dir = {dir:?}"), 1);
        if let Some(v) = vite {
            t = t.replacen(
                "# vite_manifest = \"static/.vite/manifest.json\"",
                &format!("vite_manifest = {v:?}"),
                1,
            );
        }
    }
    t
}

/// What `verbatim init` writes, before [`template`] fills it in.
pub const TEMPLATE: &str = r#"# verbatim.toml: how verbatim builds, publishes and promotes this project.
# Every path is relative to this file. Flags and VERBATIM_* variables override.

[app]
# Packed into the artifact: a reproducible tar.gz named by its sha256.
dir = "app"
# Globs (relative to app.dir) left out of the artifact, besides .gitignore'd
# files and the default excludes (.git, .hg, .svn, .verbatim, .DS_Store,
# __pycache__, node_modules).
exclude = []
# default_excludes = true        # false packs .git, node_modules, … too
# respect_gitignore = true       # false ignores .gitignore and .ignore files

# [assets]
# # Front-end files, fingerprinted and published under assets/.
# dir = "static"
# # Globs (relative to assets.dir) of files not published: sources, tests.
# exclude = ["**/*.scss", "**/*.test.js"]
# # Globs of references allowed to point at nothing.
# allow_missing = []
# # URL path the assets are served under (root-relative references use it).
# public_prefix = "/static/"
# # Absolute URL they are also served under; references to it are rewritten.
# cdn_base = "https://cdn.example.com/static/"
# # A Vite manifest.json: every file in Vite's output directory keeps its name
# # (Vite hashed the ones its manifest lists; the rest are its copies of public/).
# vite_manifest = "static/.vite/manifest.json"
# # Django's staticfiles.json for this build, written into the artifact (not
# # the tree) at this path inside app.dir, so {% static %} needs no extra step.
# django_manifest = "app/mysite/static/staticfiles.json"
# # Globs of files that keep their names (and their .map files): names their
# # bundler hashed, or versioned ones. Stored assets are immutable: other
# # bytes under a kept name already published fail `verbatim publish`.
# keep_names = []
# # Directories code reads by directory URL at run time (PDF.js cmaps, Draco
# # decoders): each is published whole as <dir>.<hash of its files>/, its
# # files keeping their names; Django's staticfiles.json maps "<dir>/" to it.
# hash_dirs = ["vendor/pdfjs/cmaps", "vendor/pdfjs/standard_fonts"]

[store]
# Where releases live: a path, file:///abs/path, or s3://bucket/prefix.
# Override with --store or VERBATIM_STORE.
url = ".verbatim/store"
# For s3:// stores. Credentials and region come from the standard AWS chain
# (AWS_* variables, profiles, SSO, instance roles); these override it.
# endpoint_url = "http://127.0.0.1:8014"   # self-hosted S3 (or AWS_ENDPOINT_URL)
# region = "us-east-1"
# path_style = true                        # MinIO, Ceph, s3s and most self-hosted servers
# concurrency = 16                         # uploads in flight
# timeout = 60                             # seconds one store request may take, retries included

[environments]
# Promotion order: a manifest reaches each only after the one before it.
# The first promotion stores the order in the store (policy.json); from then
# on the store's order rules for everyone: `verbatim policy show` shows it,
# `verbatim policy set` changes it. Left commented, this file follows the
# store (before the first promotion: dev, preprod, prod). Set it only to
# choose the order the first promotion stores; once stored, a different one
# here is a warning for status and history and refused by promote, rollback
# and publish --env.
# order = ["dev", "preprod", "prod"]
"#;
