//! `init`: a commented `verbatim.toml` for the project in a directory,
//! and `.verbatim/` kept out of git.
//!
//! It looks at what is there. A front-end build tool it knows by its
//! config file ([`TOOLS`]: `vite.config.ts`, `astro.config.mjs`,
//! `webpack.config.js`, …) publishes what that tool builds (`dist/`, or
//! Vite's `build.outDir`), with Vite's manifest when the build writes one;
//! a Django project (`manage.py`) packs `.` and publishes `static/`; else
//! `app/`, `src/` or `.` is packed, and `static/` or `public/` published
//! when present.

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
    /// `assets.vite_manifest`, when the build writes one.
    pub vite_manifest: Option<String>,
    /// The file the choice went by (`vite.config.ts`, `manage.py`), and
    /// the tool it belongs to; `null` when nothing was recognised.
    pub found: Option<Found>,
    /// Whether `.verbatim/` was added to `.gitignore` (false when it was there).
    pub gitignore_updated: bool,
}

/// A layout `init` recognised.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Found {
    /// The file it went by, relative to the project.
    pub file: String,
    /// The tool: `Vite`, `Astro`, `webpack`, `Django`.
    pub tool: &'static str,
}

/// A front-end build tool `init` knows by its config file, and the
/// directory it builds into by default.
pub struct Tool {
    /// Its name, for messages.
    pub name: &'static str,
    /// Its config files, any one of which at the project root names it.
    pub configs: &'static [&'static str],
    /// Where it builds by default (Vite's and Astro's `outDir` is read
    /// from the config when written there as a plain string).
    pub out: &'static str,
    /// Whether it can write a Vite manifest (`build.manifest`).
    pub vite: bool,
}

/// The build tools `init` recognises, first match wins (Astro and
/// SvelteKit projects often carry a `vite.config` too: Vite's layout is
/// theirs).
pub const TOOLS: [Tool; 3] = [
    Tool {
        name: "Vite",
        configs: &[
            "vite.config.js",
            "vite.config.ts",
            "vite.config.mjs",
            "vite.config.cjs",
            "vite.config.mts",
        ],
        out: "dist",
        vite: true,
    },
    Tool {
        name: "Astro",
        configs: &[
            "astro.config.mjs",
            "astro.config.js",
            "astro.config.ts",
            "astro.config.mts",
            "astro.config.cjs",
        ],
        out: "dist",
        vite: false,
    },
    Tool {
        name: "webpack",
        configs: &[
            "webpack.config.js",
            "webpack.config.ts",
            "webpack.config.mjs",
            "webpack.config.cjs",
        ],
        out: "dist",
        vite: false,
    },
];

/// Directory names build tools write their output to: a `build` that
/// finds one of them left out of the artifact by `.gitignore` says so
/// (`builder`), rather than leave it out silently.
pub const BUILD_OUTPUTS: [&str; 6] = ["dist", "build", "out", "_site", ".next", ".output"];

/// `init`: writes a commented configuration at `path` for the project in
/// its directory (what it finds there decides `app.dir` and `assets.dir`),
/// never over an existing one unless `force`, and keeps `.verbatim/` out of
/// git.
pub fn init(path: &Path, force: bool) -> Result<InitJson> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    };
    let layout = detect(&dir);
    let text = template(
        &layout.app,
        layout
            .assets
            .as_deref()
            .map(|a| (a, layout.vite_manifest.as_deref())),
    );
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
        app_dir: layout.app,
        assets_dir: layout.assets,
        vite_manifest: layout.vite_manifest,
        found: layout.found,
        gitignore_updated,
    })
}

/// What the project looks like.
#[derive(Debug, PartialEq, Eq)]
struct Layout {
    app: String,
    assets: Option<String>,
    vite_manifest: Option<String>,
    found: Option<Found>,
}

/// Looks at the project in `dir`: a build tool's config file first, then
/// a Vite manifest already built, then Django, then the usual names.
fn detect(dir: &Path) -> Layout {
    let has = |p: &str| dir.join(p).exists();
    let server_or_root = || if has("server") { "server" } else { "." }.to_owned();
    let tool = TOOLS.iter().find_map(|t| {
        let file = t.configs.iter().find(|c| dir.join(c).is_file())?;
        Some((t, *file))
    });
    if let Some((tool, file)) = tool {
        let config = std::fs::read_to_string(dir.join(file)).unwrap_or_default();
        let out = string_setting(&config, "outDir")
            .and_then(|o| plain_dir(&o))
            .unwrap_or_else(|| tool.out.to_owned());
        let vite_manifest = tool
            .vite
            .then(|| vite_manifest(dir, &out, &config))
            .flatten();
        let app = if has("manage.py") {
            ".".to_owned()
        } else {
            server_or_root()
        };
        return Layout {
            app,
            assets: Some(out),
            vite_manifest,
            found: Some(Found {
                file: file.to_owned(),
                tool: tool.name,
            }),
        };
    }
    if has("dist/.vite/manifest.json") {
        return Layout {
            app: server_or_root(),
            assets: Some("dist".into()),
            vite_manifest: Some("dist/.vite/manifest.json".into()),
            found: Some(Found {
                file: "dist/.vite/manifest.json".into(),
                tool: "Vite",
            }),
        };
    }
    let assets = ["static", "public"]
        .into_iter()
        .find(|d| dir.join(d).is_dir())
        .map(str::to_owned);
    if has("manage.py") {
        return Layout {
            app: ".".into(),
            assets,
            vite_manifest: None,
            found: Some(Found {
                file: "manage.py".into(),
                tool: "Django",
            }),
        };
    }
    let app = ["app", "src"]
        .into_iter()
        .find(|d| dir.join(d).is_dir())
        .unwrap_or(".");
    Layout {
        app: app.to_owned(),
        assets,
        vite_manifest: None,
        found: None,
    }
}

/// Where Vite writes its manifest for output directory `out`: the one
/// already built (`.vite/manifest.json` since Vite 5, `manifest.json`
/// before), else `.vite/manifest.json` when the config turns
/// `build.manifest` on.
fn vite_manifest(dir: &Path, out: &str, config: &str) -> Option<String> {
    let candidates = [
        format!("{out}/.vite/manifest.json"),
        format!("{out}/manifest.json"),
    ];
    if let Some(built) = candidates.iter().find(|c| dir.join(c).is_file()) {
        return Some(built.clone());
    }
    let on = config.split("manifest").skip(1).any(|rest| {
        let rest = rest.trim_start();
        rest.strip_prefix(':')
            .is_some_and(|v| v.trim_start().starts_with("true"))
    });
    on.then(|| candidates[0].clone())
}

/// The string literal a JavaScript config gives `key` (`outDir: 'build'`),
/// when it is written as one.
fn string_setting(config: &str, key: &str) -> Option<String> {
    config.match_indices(key).find_map(|(i, _)| {
        let rest = config[i + key.len()..].trim_start();
        let rest = rest.strip_prefix(':')?.trim_start();
        let quote = rest
            .chars()
            .next()
            .filter(|c| matches!(c, '\'' | '"' | '`'))?;
        let value = &rest[1..];
        value.find(quote).map(|end| value[..end].to_owned())
    })
}

/// `d` as a relative directory of plain names (`build`, `web/dist`;
/// `./dist/` is `dist`), if it is one.
fn plain_dir(d: &str) -> Option<String> {
    let d = d.strip_prefix("./").unwrap_or(d).trim_end_matches('/');
    let plain = !d.is_empty()
        && d.split('/')
            .all(|n| !n.is_empty() && n != "." && n != ".." && !n.contains(['\\', '"', '$', '{']));
    plain.then(|| d.to_owned())
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
# # Page code finds each one's published URL in verbatim-dirs.js (the README's
# # Monaco and sql.js lines).

# [site]
# # Entry files: their URL stays while their bytes change (index.html, a
# # service worker, robots.txt). Stored per release under sites/<manifest>/,
# # copied to site/<env>/ when an environment moves. For Vite output, [site]
# # alone makes its pages (and public/ copies) entries.
# entries = ["index.html", "sw.js", "robots.txt"]
# cache_control = "no-cache"     # of the live copies
# # Each environment's pages get its config (`verbatim config set prod
# # API_URL=…`, no rebuild) as <script type="application/json"
# # id="verbatim-config"> right after <head>.

# [deploy]
# # How hosts run a release (`verbatim deploy`, `verbatim agent`).
# keep = 5
# shared = ["media"]             # release paths linked into DIR/shared/
# hooks.pre_activate = "python manage.py migrate --noinput"
# hooks.post_activate = "systemctl reload myapp"
# hooks.check = "curl -fsS http://127.0.0.1:8000/healthz"
# # When only the environment's config changed: the agent wrote
# # shared/verbatim-config.json and .env, and `current` stays.
# hooks.reload = "systemctl reload myapp"

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
