//! `verbatim.toml`: the project's settings, and how flags override them.
//!
//! The file is parsed strictly (unknown keys and wrong types are errors that
//! name the key and line). Paths in it are relative to the file's directory,
//! the project root. Command-line flags and `VERBATIM_*` environment variables
//! (handled by clap) win over the file; [`Overrides`] carries them in.

mod fleet;
pub mod init;

pub use fleet::{check_webhook, Dashboard, Notify, DEFAULT_NOTIFY_TIMEOUT_SECS};

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::error::Class;
use crate::store::S3Options;
use crate::text::Lines;

/// The file name looked for in the current directory.
pub const FILE_NAME: &str = "verbatim.toml";
/// The store used when neither the file nor a flag names one.
pub const DEFAULT_STORE: &str = ".verbatim/store";
/// Where `build` writes, relative to the project root.
pub const DEFAULT_OUT: &str = ".verbatim/build";
/// The URL path assets are served under when `assets.public_prefix` is unset.
pub const DEFAULT_PUBLIC_PREFIX: &str = "/static/";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    app: AppSection,
    #[serde(default)]
    assets: Option<AssetsSection>,
    #[serde(default)]
    store: StoreSection,
    #[serde(default)]
    environments: EnvSection,
    #[serde(default)]
    deploy: Option<DeploySection>,
    #[serde(default)]
    site: Option<SiteSection>,
    #[serde(default)]
    dashboard: fleet::DashboardSection,
    #[serde(default)]
    notify: fleet::NotifySection,
}

/// `[site]`: entry files, served per environment from `site/<env>/`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SiteSection {
    entries: Option<Vec<String>>,
    #[serde(default = "default_site_cache_control")]
    cache_control: String,
    #[serde(default = "default_site_artifact_dir")]
    artifact_dir: String,
}

fn default_site_cache_control() -> String {
    DEFAULT_SITE_CACHE_CONTROL.to_owned()
}

fn default_site_artifact_dir() -> String {
    DEFAULT_SITE_ARTIFACT_DIR.to_owned()
}

/// `Cache-Control` of an environment's live entry files when `[site]
/// cache_control` is unset: a browser or CDN may keep them, but asks
/// again every time before using them.
pub const DEFAULT_SITE_CACHE_CONTROL: &str = "no-cache";
/// Where in the artifact (relative to the app directory) a build packs the
/// entry files when `[site] artifact_dir` is unset.
pub const DEFAULT_SITE_ARTIFACT_DIR: &str = "site";

/// `[site]` as the build uses it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Site {
    /// `entries`: globs (the configuration's dialect) of asset paths that
    /// are entry files; `None` when unset (for Vite's output: its pages and
    /// the copies of `public/`).
    pub entries: Option<Vec<String>>,
    /// `cache_control`: the live copies' `Cache-Control` (printable ASCII).
    pub cache_control: String,
    /// `artifact_dir`: where the artifact carries the entries, relative to
    /// the app directory (`/`-separated, plain).
    pub artifact_dir: String,
}

/// `[deploy]`: what a host does with a release; `build` copies it into the
/// manifest.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DeploySection {
    #[serde(default)]
    shared: Vec<String>,
    #[serde(default)]
    migrations: Vec<String>,
    keep: Option<u32>,
    check_timeout: Option<u64>,
    hook_timeout: Option<u64>,
    #[serde(default)]
    hooks: HooksSection,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct HooksSection {
    pre_activate: Option<String>,
    post_activate: Option<String>,
    check: Option<String>,
    release: Option<String>,
    reload: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AppSection {
    dir: PathBuf,
    #[serde(default)]
    exclude: Vec<String>,
    #[serde(default = "yes")]
    default_excludes: bool,
    #[serde(default = "yes")]
    respect_gitignore: bool,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AssetsSection {
    dir: PathBuf,
    #[serde(default)]
    exclude: Vec<String>,
    #[serde(default)]
    allow_missing: Vec<String>,
    #[serde(default = "default_public_prefix")]
    public_prefix: String,
    #[serde(default)]
    cdn_base: Option<String>,
    #[serde(default)]
    vite_manifest: Option<PathBuf>,
    #[serde(default)]
    django_manifest: Option<PathBuf>,
    #[serde(default)]
    keep_names: Vec<String>,
    #[serde(default)]
    hash_dirs: Vec<String>,
}

fn default_public_prefix() -> String {
    DEFAULT_PUBLIC_PREFIX.to_owned()
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct StoreSection {
    url: Option<String>,
    endpoint_url: Option<String>,
    region: Option<String>,
    path_style: Option<bool>,
    concurrency: Option<usize>,
    timeout: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct EnvSection {
    #[serde(default)]
    order: Option<Vec<String>>,
}

/// The environment order when neither the store's policy nor
/// `environments.order` gives one.
pub const DEFAULT_ORDER: [&str; 3] = ["dev", "preprod", "prod"];

/// Settings given on the command line or in `VERBATIM_*` variables.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    /// `--app-dir` / `VERBATIM_APP_DIR`: the app directory, instead of
    /// `app.dir`.
    pub app_dir: Option<PathBuf>,
    /// `--store` / `VERBATIM_STORE`: the store URL, instead of `store.url`; a
    /// relative path is taken from the current directory.
    pub store: Option<String>,
    /// `--endpoint-url`: the S3 endpoint, instead of `store.endpoint_url`.
    pub endpoint_url: Option<String>,
    /// `--region`: the S3 region, instead of `store.region`.
    pub region: Option<String>,
    /// `--path-style` / `VERBATIM_S3_PATH_STYLE`: path-style S3 addressing;
    /// `false` leaves `store.path_style` to decide.
    pub path_style: bool,
    /// `--unsafe-no-conditional-writes`: accept an S3 server that ignores
    /// conditional writes, falling back to racy HEAD-then-PUT.
    pub unsafe_no_conditional_writes: bool,
    /// `--concurrency` / `VERBATIM_CONCURRENCY`: store requests in flight at
    /// once, instead of `store.concurrency`.
    pub concurrency: Option<usize>,
    /// Seconds one store request may take.
    pub timeout: Option<u64>,
    /// `--policy-signers` / `VERBATIM_POLICY_SIGNERS`: the `allowed_signers`
    /// file whose keys must have signed the store's policy.
    pub policy_signers: Option<PathBuf>,
}

impl Overrides {
    /// S3 settings from flags alone (no config file).
    pub fn s3(&self) -> S3Options {
        S3Options {
            endpoint_url: self.endpoint_url.clone(),
            region: self.region.clone(),
            path_style: self.path_style,
            allow_unconditional: self.unsafe_no_conditional_writes,
            static_credentials: None,
            timeout: self.timeout.map(Duration::from_secs),
        }
    }
}

/// Concurrent uploads when neither `--concurrency` nor `store.concurrency` says.
pub const DEFAULT_CONCURRENCY: usize = 16;

/// The resolved configuration every command works from.
#[derive(Debug, Clone)]
pub struct Config {
    /// The directory holding the config file; relative paths hang off it.
    pub root: PathBuf,
    /// The config file as found or given (relative when found in the current
    /// directory); named in messages.
    pub config_path: PathBuf,
    /// The directory packed into the artifact: `--app-dir`, else `app.dir`
    /// resolved against `root`.
    pub app_dir: PathBuf,
    /// `app.default_excludes`: leave out `.git`, `node_modules`, … (default true).
    pub default_excludes: bool,
    /// `app.respect_gitignore`: honour `.gitignore` and `.ignore` (default true).
    pub respect_gitignore: bool,
    /// Whether `app_dir` came from `--app-dir` / `VERBATIM_APP_DIR`.
    app_dir_from_flag: bool,
    /// `app.exclude`: globs of app paths left out of the artifact
    /// ([`crate::pack::glob_set`]).
    pub exclude: Vec<String>,
    /// `assets.dir` resolved against `root`; `None` when the file has no
    /// `[assets]`.
    pub assets_dir: Option<PathBuf>,
    /// `assets.allow_missing`: globs of references allowed to point nowhere.
    pub allow_missing: Vec<String>,
    /// `assets.exclude`: globs of asset paths not published (nor scanned).
    pub assets_exclude: Vec<String>,
    /// URL path the assets are served under (`assets.public_prefix`).
    pub public_prefix: String,
    /// Absolute URL the assets are also served under (`assets.cdn_base`).
    pub cdn_base: Option<String>,
    /// A Vite `manifest.json`: the files of Vite's output directory (the
    /// one holding it, or its `.vite/`) keep their names.
    pub vite_manifest: Option<PathBuf>,
    /// `assets.django_manifest` as written: where, relative to the root and
    /// inside `app_dir`, `build` puts Django's `staticfiles.json` in the
    /// artifact ([`Config::django_manifest_entry`] resolves it).
    pub django_manifest: Option<PathBuf>,
    /// `assets.keep_names`: globs of asset paths that keep their names
    /// (content-hashed by their own bundler).
    pub keep_names: Vec<String>,
    /// `assets.hash_dirs` as written: directories (relative to the assets
    /// directory) published whole under a hashed name
    /// (`builder::assets` checks them).
    pub hash_dirs: Vec<String>,
    /// Store URL, relative paths already resolved against the right base.
    pub store_url: String,
    /// Base directory for a relative local store path.
    pub store_base: PathBuf,
    /// How to reach an `s3://` store.
    pub s3: S3Options,
    /// Uploads in flight at once.
    pub concurrency: usize,
    /// `environments.order`, `None` when the file declares none. Once the
    /// store holds a policy its order rules, and this must agree with it
    /// (`environments::policy_store`); before, the first move stores [`Config::order`].
    pub environments: Option<Vec<String>>,
    /// `[deploy]`, as the manifest carries it; `None` when the file has none.
    pub deploy: Option<crate::manifest::Deploy>,
    /// The policy's trust root (`--policy-signers`): the `allowed_signers`
    /// file whose keys must have signed the policy in effect.
    pub policy_signers: Option<PathBuf>,
    /// `[site]`; `None` when the file has none.
    pub site: Option<Site>,
    /// `[dashboard]`.
    pub dashboard: Dashboard,
    /// `[notify]`.
    pub notify: Notify,
}

/// A configuration problem: always exit code 2. Most are one line; a
/// TOML syntax error adds the lines that show where (the line of the file,
/// a caret under the fault, what was expected).
#[derive(Debug)]
pub struct ConfigError(Lines);

impl ConfigError {
    /// A problem told in one line.
    pub fn new(message: impl Into<String>) -> ConfigError {
        ConfigError(Lines {
            head: message.into(),
            items: Vec::new(),
        })
    }

    /// A configuration problem is a usage error.
    pub fn class(&self) -> Class {
        Class::Usage
    }

    /// The message as lines, for a terminal: each printed escaped on its
    /// own line, so the lines TOML's error draws stay lines.
    pub fn lines(&self) -> &Lines {
        &self.0
    }

    /// `text` (a TOML parse error of `path`) as a head and the lines below.
    fn parse(path: &Path, text: &str) -> ConfigError {
        let mut lines = text.trim_end().lines();
        let head = format!(
            "invalid config {}: {}",
            path.display(),
            lines.next().unwrap_or("not valid TOML")
        );
        ConfigError(Lines {
            head,
            items: lines.map(str::to_owned).collect(),
        })
    }
}

/// The lines as they are, one per line (`--json` messages carry them
/// exactly); a terminal prints [`ConfigError::lines`], escaped.
impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0.head)?;
        for item in &self.0.items {
            write!(f, "\n  {item}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

impl Config {
    /// Loads `path`, or, when `path` is `None`, the `verbatim.toml` of the
    /// current directory or the nearest one above it ([`discover`]).
    pub fn load(path: Option<&Path>, o: &Overrides) -> Result<Config, ConfigError> {
        let (path, explicit) = match path {
            Some(p) => (p.to_owned(), true),
            None => (
                discover().unwrap_or_else(|| PathBuf::from(FILE_NAME)),
                false,
            ),
        };
        let text = std::fs::read_to_string(&path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound && !explicit {
                ConfigError::new(format!(
                    "no {FILE_NAME} in {}: run `verbatim init` to write one, or pass --config PATH",
                    std::env::current_dir()
                        .map(|d| d.display().to_string())
                        .unwrap_or_else(|_| ".".into())
                ))
            } else {
                ConfigError::new(format!("cannot read config {}: {e}", path.display()))
            }
        })?;
        let root = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
            _ => PathBuf::from("."),
        };
        Config::from_toml(&text, &path, root, o)
    }

    /// Parses config text; `path` is only used in messages.
    pub fn from_toml(
        text: &str,
        path: &Path,
        root: PathBuf,
        o: &Overrides,
    ) -> Result<Config, ConfigError> {
        let file: File =
            toml::from_str(text).map_err(|e| ConfigError::parse(path, &e.to_string()))?;
        let app_dir = match &o.app_dir {
            Some(d) => d.clone(),
            None => root.join(&file.app.dir),
        };
        if let Some(a) = &file.assets {
            if !a.public_prefix.starts_with('/') {
                return Err(ConfigError::new(format!(
                    "`assets.public_prefix` in {} is `{}`: it must be a URL path starting with `/`, like \"/static/\"",
                    path.display(),
                    a.public_prefix
                )));
            }
            if let Some(p) = &a.django_manifest {
                if !is_plain_relative(p) {
                    return Err(ConfigError::new(format!(
                        "`assets.django_manifest` in {} is `{}`: it must be a relative path to a file \
                         inside app.dir, without `..`, like \"app/mysite/static/staticfiles.json\"",
                        path.display(),
                        p.display()
                    )));
                }
            }
            if let Some(cdn) = &a.cdn_base {
                if !(cdn.starts_with("https://") || cdn.starts_with("http://")) {
                    return Err(ConfigError::new(format!(
                        "`assets.cdn_base` in {} is `{cdn}`: it must be an absolute http(s) URL, like \"https://cdn.example.com/static/\"",
                        path.display()
                    )));
                }
            }
        }
        let assets_dir = file.assets.as_ref().map(|a| root.join(&a.dir));
        let envs = file.environments.order;
        if let Some(envs) = &envs {
            check_env_names(envs).map_err(|e| {
                ConfigError::new(format!("`environments.order` in {}: {e}", path.display()))
            })?;
        }
        let (store_url, store_base) = match (&o.store, file.store.url) {
            (Some(flag), _) => (flag.clone(), PathBuf::from(".")),
            (None, Some(url)) => (url, root.clone()),
            (None, None) => (DEFAULT_STORE.to_owned(), root.clone()),
        };
        let s3 = S3Options {
            endpoint_url: o.endpoint_url.clone().or(file.store.endpoint_url),
            region: o.region.clone().or(file.store.region),
            path_style: o.path_style || file.store.path_style.unwrap_or(false),
            allow_unconditional: o.unsafe_no_conditional_writes,
            static_credentials: None,
            timeout: o.timeout.or(file.store.timeout).map(Duration::from_secs),
        };
        if s3.timeout == Some(Duration::ZERO) {
            return Err(ConfigError::new(format!(
                "`store.timeout` in {} must be at least 1 (seconds)",
                path.display()
            )));
        }
        let concurrency = o
            .concurrency
            .or(file.store.concurrency)
            .unwrap_or(DEFAULT_CONCURRENCY);
        if concurrency == 0 {
            return Err(ConfigError::new(format!(
                "`store.concurrency` in {} must be at least 1",
                path.display()
            )));
        }
        let deploy = file.deploy.map(|d| deploy_settings(d, path)).transpose()?;
        let site = file.site.map(|s| check_site(s, path)).transpose()?;
        if site.is_some() && file.assets.is_none() {
            return Err(ConfigError::new(format!(
                "`[site]` in {} needs `[assets]`: entry files are files of the assets directory",
                path.display()
            )));
        }
        Ok(Config {
            site,
            dashboard: fleet::check_dashboard(file.dashboard),
            notify: fleet::check_notify(file.notify, path)?,
            app_dir_from_flag: o.app_dir.is_some(),
            default_excludes: file.app.default_excludes,
            respect_gitignore: file.app.respect_gitignore,
            deploy,
            s3,
            concurrency,
            policy_signers: o.policy_signers.clone(),
            config_path: path.to_owned(),
            app_dir,
            exclude: file.app.exclude,
            assets_dir,
            public_prefix: file
                .assets
                .as_ref()
                .map_or_else(default_public_prefix, |a| a.public_prefix.clone()),
            cdn_base: file.assets.as_ref().and_then(|a| a.cdn_base.clone()),
            vite_manifest: file
                .assets
                .as_ref()
                .and_then(|a| a.vite_manifest.as_ref())
                .map(|v| root.join(v)),
            django_manifest: file.assets.as_ref().and_then(|a| a.django_manifest.clone()),
            keep_names: file
                .assets
                .as_ref()
                .map(|a| a.keep_names.clone())
                .unwrap_or_default(),
            hash_dirs: file
                .assets
                .as_ref()
                .map(|a| a.hash_dirs.clone())
                .unwrap_or_default(),
            assets_exclude: file
                .assets
                .as_ref()
                .map(|a| a.exclude.clone())
                .unwrap_or_default(),
            allow_missing: file.assets.map(|a| a.allow_missing).unwrap_or_default(),
            store_url,
            store_base,
            environments: envs,
            root,
        })
    }

    /// Checks that the directories packing reads exist: only commands that
    /// pack ask (a promotion box may hold nothing but the config).
    pub fn check_dirs(&self) -> Result<(), ConfigError> {
        if !self.app_dir.is_dir() {
            let source = if self.app_dir_from_flag {
                "--app-dir / VERBATIM_APP_DIR".to_owned()
            } else {
                format!("`app.dir` in {}", self.config_path.display())
            };
            return Err(ConfigError::new(format!(
                "app directory {} (from {source}) does not exist or is not a directory",
                self.app_dir.display()
            )));
        }
        if let Some(d) = self.assets_dir.as_ref().filter(|d| !d.is_dir()) {
            return Err(ConfigError::new(format!(
                "assets directory {} (from `assets.dir` in {}) does not exist or is not a directory",
                d.display(),
                self.config_path.display()
            )));
        }
        Ok(())
    }

    /// Where `assets.django_manifest` goes in the artifact: its
    /// `/`-separated path relative to the app directory, `None` when unset.
    /// It must lie inside the app directory (as it resolves now, links
    /// included, so `app.dir = "."` and `--app-dir` both work) and outside
    /// the assets directory, whose files are published (a `staticfiles.json`
    /// there would become an asset). Reads the disk: call after
    /// [`Config::check_dirs`].
    pub fn django_manifest_entry(&self) -> Result<Option<String>, ConfigError> {
        let Some(p) = &self.django_manifest else {
            return Ok(None);
        };
        let names: Vec<&str> = p
            .components()
            .filter_map(|c| match c {
                std::path::Component::Normal(n) => n.to_str(),
                _ => None,
            })
            .collect();
        let key = || {
            format!(
                "`assets.django_manifest` (`{}`) in {}",
                p.display(),
                self.config_path.display()
            )
        };
        if let Some(dir) = &self.assets_dir {
            if below(&self.root, &names, dir).is_some() {
                return Err(ConfigError::new(format!(
                    "{} lies inside the assets directory {}, whose files are published as assets; \
                     put it in the app directory, outside assets.dir",
                    key(),
                    dir.display()
                )));
            }
        }
        match below(&self.root, &names, &self.app_dir) {
            Some(rest) => Ok(Some(rest.join("/"))),
            None => Err(ConfigError::new(format!(
                "{} is not inside the app directory {}: it names a file in the artifact, \
                 so it must lie under app.dir",
                key(),
                self.app_dir.display(),
            ))),
        }
    }

    /// The order this file asks for: `environments.order`, else [`DEFAULT_ORDER`].
    pub fn order(&self) -> Vec<String> {
        self.environments
            .clone()
            .unwrap_or_else(|| DEFAULT_ORDER.map(String::from).to_vec())
    }

    /// The build output directory.
    pub fn out_dir(&self) -> PathBuf {
        self.root.join(DEFAULT_OUT)
    }

    /// verbatim's own directory (build output, default store): never packed.
    pub fn work_dir(&self) -> PathBuf {
        self.root.join(".verbatim")
    }
}

/// `[site]` checked: its `Cache-Control` printable ASCII, its artifact
/// directory a plain relative path.
fn check_site(s: SiteSection, path: &Path) -> Result<Site, ConfigError> {
    let cc = &s.cache_control;
    if cc.is_empty() || !cc.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        return Err(ConfigError::new(format!(
            "`site.cache_control` in {} is {cc:?}: give a Cache-Control header value, like \"no-cache\"",
            path.display()
        )));
    }
    let dir = s.artifact_dir.trim_end_matches('/');
    if dir.is_empty() || crate::manifest::check_logical(dir).is_err() {
        return Err(ConfigError::new(format!(
            "`site.artifact_dir` in {} is {:?}: give a relative path inside app.dir, like \"site\"",
            path.display(),
            s.artifact_dir
        )));
    }
    Ok(Site {
        entries: s.entries,
        cache_control: s.cache_control,
        artifact_dir: dir.to_owned(),
    })
}

/// The nearest `verbatim.toml`: in the current directory or the first
/// parent that has one (as cargo finds `Cargo.toml`). Relative when found
/// in the current directory, so messages stay short.
pub fn discover() -> Option<PathBuf> {
    if Path::new(FILE_NAME).is_file() {
        return Some(PathBuf::from(FILE_NAME));
    }
    let cwd = std::env::current_dir().ok()?;
    cwd.ancestors()
        .skip(1)
        .map(|d| d.join(FILE_NAME))
        .find(|p| p.is_file())
}

/// A relative path of plain names (`.` allowed, `..` not), naming a file.
fn is_plain_relative(p: &Path) -> bool {
    use std::path::Component;
    p.components()
        .all(|c| matches!(c, Component::Normal(_) | Component::CurDir))
        && matches!(p.components().next_back(), Some(Component::Normal(_)))
        && p.to_str().is_some()
}

/// The names of `root/names…` below `dir`, if one of its proper prefixes
/// (`root` itself included) resolves to the same directory as `dir`.
fn below<'a>(root: &Path, names: &'a [&'a str], dir: &Path) -> Option<&'a [&'a str]> {
    let dir = std::fs::canonicalize(dir).ok()?;
    let mut at = root.to_owned();
    for (i, name) in names.iter().enumerate() {
        if std::fs::canonicalize(&at).is_ok_and(|c| c == dir) {
            return Some(&names[i..]);
        }
        at.push(name);
    }
    None
}

/// Environment names become store keys: keep them short and plain.
pub fn check_env_names(envs: &[String]) -> Result<(), String> {
    if envs.is_empty() {
        return Err("declare at least one environment".into());
    }
    for (i, e) in envs.iter().enumerate() {
        check_env_name(e)?;
        if envs[..i].contains(e) {
            return Err(format!("environment `{e}` is listed twice"));
        }
    }
    Ok(())
}

/// One environment name: 1 to 64 lower-case ASCII letters, digits, `-`
/// and `_`, starting with a letter. The error says so, naming it.
pub fn check_env_name(e: &str) -> Result<(), String> {
    let ok = !e.is_empty()
        && e.len() <= 64
        && e.starts_with(|c: char| c.is_ascii_lowercase())
        && e.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "`{e}` is not a valid environment name (lower-case letters, digits, `-`, `_`; starting with a letter)"
        ))
    }
}

/// `[deploy]` as a manifest carries it, checked; the error names `path`.
fn deploy_settings(d: DeploySection, path: &Path) -> Result<crate::manifest::Deploy, ConfigError> {
    let defaults = crate::manifest::Deploy::default();
    let deploy = crate::manifest::Deploy {
        check_timeout: d.check_timeout.unwrap_or(defaults.check_timeout),
        hook_timeout: d.hook_timeout.unwrap_or(defaults.hook_timeout),
        hooks: crate::manifest::Hooks {
            check: d.hooks.check,
            post_activate: d.hooks.post_activate,
            pre_activate: d.hooks.pre_activate,
            release: d.hooks.release,
            reload: d.hooks.reload,
        },
        keep: d.keep.unwrap_or(defaults.keep),
        shared: d.shared,
        migrations: d.migrations,
        migration_files: Vec::new(),
    };
    crate::pack::glob_set(&deploy.migrations).map_err(|e| {
        ConfigError::new(format!(
            "`[deploy] migrations` in {}: glob {:?}: {}",
            path.display(),
            e.glob,
            e.message
        ))
    })?;
    deploy
        .check()
        .map_err(|why| ConfigError::new(format!("`[deploy]` in {}: {why}", path.display())))?;
    Ok(deploy)
}

#[cfg(test)]
mod tests {
    use super::init::TEMPLATE;
    use super::*;

    fn load(text: &str) -> Result<Config, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("app")).unwrap();
        Config::from_toml(
            text,
            Path::new("verbatim.toml"),
            dir.path().to_owned(),
            &Overrides::default(),
        )
    }

    #[test]
    fn template_is_valid_once_app_exists() {
        let c = load(TEMPLATE).unwrap();
        // The order is left to the store's policy: commented out.
        assert_eq!(c.environments, None);
        let bare = load("[app]\ndir = \"app\"\n").unwrap();
        assert_eq!(bare.environments, None);
        assert_eq!(bare.order(), ["dev", "preprod", "prod"]);
        assert_eq!(c.store_url, ".verbatim/store");
        assert_eq!(c.public_prefix, DEFAULT_PUBLIC_PREFIX);
    }

    fn is_setting(line: &str) -> bool {
        line.split_once(" = ").is_some_and(|(k, _)| {
            k.chars()
                .all(|c| c.is_ascii_lowercase() || c == '_' || c == '.')
        })
    }

    #[test]
    fn assets_section_keys() {
        let c = load(
            "[app]\ndir = \"app\"\n[assets]\ndir = \"app\"\npublic_prefix = \"/s/\"\n\
             cdn_base = \"https://cdn.example.com/s/\"\nvite_manifest = \"app/manifest.json\"\n\
             keep_names = [\"vendor/**/*.min.js\"]\n",
        )
        .unwrap();
        assert_eq!(c.keep_names, ["vendor/**/*.min.js"]);
        assert_eq!(c.public_prefix, "/s/");
        assert_eq!(c.cdn_base.as_deref(), Some("https://cdn.example.com/s/"));
        assert!(c.vite_manifest.unwrap().ends_with("app/manifest.json"));
        // The template's commented [assets], [site] and [deploy] sections
        // are valid once uncommented.
        let uncommented: String = TEMPLATE
            .lines()
            .map(|l| match l.strip_prefix("# ") {
                Some(r) if ["[assets]", "[site]", "[deploy]"].contains(&r) || is_setting(r) => r,
                _ => l,
            })
            .map(|l| {
                if l.starts_with("dir = \"static\"") {
                    "dir = \"app\""
                } else {
                    l
                }
            })
            .collect::<Vec<_>>()
            .join("\n");
        assert!(uncommented.contains("\nkeep_names = []\n"), "{uncommented}");
        let c = load(&uncommented).unwrap();
        assert_eq!(c.public_prefix, "/static/");
        assert!(c.keep_names.is_empty());
        // So is the commented environments.order.
        assert_eq!(c.environments.unwrap(), ["dev", "preprod", "prod"]);
        assert_eq!(c.site.unwrap().cache_control, "no-cache");
        let hooks = c.deploy.unwrap().hooks;
        assert_eq!(hooks.reload.as_deref(), Some("systemctl reload myapp"));
    }

    #[test]
    fn django_manifest_lies_inside_the_app_and_outside_the_assets() {
        let dir = tempfile::tempdir().unwrap();
        for d in ["app", "static", "app/mysite"] {
            std::fs::create_dir(dir.path().join(d)).unwrap();
        }
        let cfg = |app: &str, manifest: &str| {
            Config::from_toml(
                &format!(
                    "[app]\ndir = {app:?}\n[assets]\ndir = \"static\"\ndjango_manifest = {manifest:?}\n"
                ),
                Path::new("verbatim.toml"),
                dir.path().to_owned(),
                &Overrides::default(),
            )
        };
        let entry = |app: &str, manifest: &str| cfg(app, manifest).unwrap().django_manifest_entry();
        let ok = [
            (
                "app",
                "app/mysite/static/staticfiles.json",
                "mysite/static/staticfiles.json",
            ),
            ("app", "./app/staticfiles.json", "staticfiles.json"),
            (".", "mysite/staticfiles.json", "mysite/staticfiles.json"),
            (".", "staticfiles.json", "staticfiles.json"),
        ];
        for (app, manifest, want) in ok {
            assert_eq!(
                entry(app, manifest).unwrap().as_deref(),
                Some(want),
                "{app} {manifest}"
            );
        }
        let inside_assets = entry(".", "static/staticfiles.json")
            .unwrap_err()
            .to_string();
        assert!(
            inside_assets.contains("inside the assets directory"),
            "{inside_assets}"
        );
        for outside in ["staticfiles.json", "app", "static2/x.json"] {
            let err = entry("app", outside).unwrap_err().to_string();
            assert!(
                err.contains("not inside the app directory"),
                "{outside}: {err}"
            );
            assert!(err.contains("assets.django_manifest"), "{err}");
        }
        for bad in [
            "../staticfiles.json",
            "/srv/app/staticfiles.json",
            "app/../x.json",
            ".",
        ] {
            let err = cfg("app", bad).unwrap_err().to_string();
            assert!(err.contains("assets.django_manifest"), "{bad}: {err}");
        }
        let unset = load("[app]\ndir = \"app\"\n").unwrap();
        assert_eq!(unset.django_manifest_entry().unwrap(), None);
    }

    #[test]
    fn errors_name_the_key() {
        let cases = [
            ("[app]\ndir = \"app\"\ncolour = 1\n", "colour"),
            ("[app]\ndir = 3\n", "dir"),
            (
                "[app]\ndir = \"app\"\n[environments]\norder = [\"Prod\"]\n",
                "environments.order",
            ),
            (
                "[app]\ndir = \"app\"\n[environments]\norder = [\"a\", \"a\"]\n",
                "twice",
            ),
            ("[store]\nurl = \"x\"\n", "app"),
            (
                "[app]\ndir = \"app\"\n[assets]\ndir = \"app\"\npublic_prefix = \"static\"\n",
                "assets.public_prefix",
            ),
            (
                "[app]\ndir = \"app\"\n[assets]\ndir = \"app\"\ncdn_base = \"cdn.example.com\"\n",
                "assets.cdn_base",
            ),
            (
                "[app]\ndir = \"app\"\n[assets]\ndir = \"app\"\nprefix = \"/s/\"\n",
                "prefix",
            ),
            (
                "[app]\ndir = \"app\"\n[assets]\ndir = \"app\"\nkeep_names = \"vendor/**\"\n",
                "keep_names",
            ),
            ("[app]\ndir = \"app\"\n[site]\n", "needs `[assets]`"),
            (
                "[app]\ndir = \"app\"\n[assets]\ndir = \"app\"\n[site]\nartifact_dir = \"../x\"\n",
                "site.artifact_dir",
            ),
            (
                "[app]\ndir = \"app\"\n[assets]\ndir = \"app\"\n[site]\ncache_control = \"\"\n",
                "site.cache_control",
            ),
            (
                "[app]\ndir = \"app\"\n[assets]\ndir = \"app\"\n[site]\nentry = []\n",
                "entry",
            ),
        ];
        for (text, needle) in cases {
            let err = load(text).unwrap_err().to_string();
            assert!(err.contains(needle), "{text:?}: {err}");
        }
        // A missing app.dir is an error only where packing needs it.
        let c = load("[app]\ndir = \"nope\"\n").unwrap();
        assert!(c.check_dirs().unwrap_err().to_string().contains("app.dir"));
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("app")).unwrap();
        let c = Config::from_toml(
            "[app]\ndir = \"app\"\n[assets]\ndir = \"static\"\n",
            Path::new("verbatim.toml"),
            dir.path().to_owned(),
            &Overrides::default(),
        )
        .unwrap();
        assert!(c
            .check_dirs()
            .unwrap_err()
            .to_string()
            .contains("assets.dir"));
    }
}
