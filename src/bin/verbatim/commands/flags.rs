//! The global flags and the configuration, turned into what library
//! operations take: a `Config`, an open store, build options.

use std::path::Path;

use anyhow::Result;

use crate::cli::{BuildOpts, Global};
use verbatim::config::{Config, Overrides};
use verbatim::error::UsageError;
use verbatim::store::{self, Store};

/// Loads the config named by `--config` (or `./verbatim.toml`) with overrides.
pub(super) fn load_config(g: &Global, overrides: Overrides) -> Result<Config> {
    let overrides = Overrides {
        app_dir: overrides.app_dir,
        ..global_overrides(g)
    };
    Ok(Config::load(g.config.as_deref(), &overrides)?)
}

/// The config for `build` and `publish`: `--app-dir` applied, the app and
/// assets directories checked.
pub(super) fn build_config(g: &Global, opts: &BuildOpts) -> Result<Config> {
    let cfg = load_config(
        g,
        Overrides {
            app_dir: opts.app_dir.clone(),
            ..Overrides::default()
        },
    )?;
    cfg.check_dirs()?;
    Ok(cfg)
}

/// The build's options from its flags.
pub(super) fn build_options(opts: &BuildOpts) -> verbatim::builder::BuildOptions {
    verbatim::builder::BuildOptions {
        revision: opts.revision.clone(),
        branch: opts.branch.clone(),
        ci_url: opts.ci_url.clone(),
        source_date_epoch: opts.source_date_epoch,
        jobs: opts.jobs.map(usize::from),
        fresh: opts.no_cache,
    }
}

/// Opens the store for commands that only read it (and need no app): a
/// `--store` flag works without any config file. A local store that does not
/// exist is an error, not an empty store.
pub(super) fn open_store_for(g: &Global) -> Result<Box<dyn Store>> {
    let store = open_store_any(g)?;
    if !store.exists() {
        return Err(UsageError(format!(
            "there is no store at {}: nothing was ever published there; check --store, VERBATIM_STORE or store.url",
            store.location()
        ))
        .into());
    }
    Ok(store)
}

/// Opens the store for a host's commands (`deploy`, `agent`, `fetch`),
/// as [`open_store_for`]: a host needs no verbatim.toml, so with neither
/// `--store` nor a config, the error says how to name the store.
pub(super) fn open_host_store(g: &Global) -> Result<Box<dyn Store>> {
    let store = host_store_any(g)?;
    if !store.exists() {
        return open_store_for(g); // says there is none
    }
    Ok(store)
}

/// The store a host's command names, existing or not (an agent waits for
/// a local store that is not there yet).
pub(super) fn host_store_any(g: &Global) -> Result<Box<dyn Store>> {
    if g.store.is_none() && g.config.is_none() && verbatim::config::discover().is_none() {
        return Err(UsageError(
            "no store to read: pass --store URL or set VERBATIM_STORE (a host needs only a store and a root, no verbatim.toml)".into(),
        )
        .into());
    }
    open_store_any(g)
}

/// Opens the store named by `--store`, else the config's, existing or not.
pub(super) fn open_store_any(g: &Global) -> Result<Box<dyn Store>> {
    Ok(match (&g.store, &g.config) {
        (Some(url), None) if verbatim::config::discover().is_none() => {
            store::open(url, Path::new("."), &global_overrides(g).s3())?
        }
        _ => open_store(&load_config(g, Overrides::default())?)?,
    })
}

pub(super) fn open_store(cfg: &Config) -> Result<Box<dyn Store>> {
    Ok(store::open(&cfg.store_url, &cfg.store_base, &cfg.s3)?)
}

/// Requests in flight for commands that may run without a config file.
pub(super) fn concurrency(g: &Global) -> usize {
    g.concurrency
        .map_or(verbatim::config::DEFAULT_CONCURRENCY, usize::from)
}

/// The settings every command takes from global flags and variables.
pub(super) fn global_overrides(g: &Global) -> Overrides {
    Overrides {
        app_dir: None,
        store: g.store.clone(),
        endpoint_url: g.endpoint_url.clone(),
        region: g.region.clone(),
        path_style: g.path_style,
        unsafe_no_conditional_writes: g.unsafe_no_conditional_writes,
        concurrency: g.concurrency.map(usize::from),
        timeout: g.timeout,
        policy_signers: g.policy_signers.clone(),
    }
}

/// A reader of `store`, pinned to `--policy-signers` when it is given.
pub(super) fn reader<'a>(
    g: &Global,
    store: &'a dyn Store,
    threads: usize,
) -> Result<verbatim::environments::reader::Reader<'a>> {
    let pin = g
        .policy_signers
        .as_deref()
        .map(verbatim::environments::policy_store::read_pin)
        .transpose()?;
    Ok(verbatim::environments::reader::Reader::new(store, threads).pin_policy(pin))
}

/// Who hears of the moves a command makes: `[notify] webhooks` and
/// `[dashboard] publish`, as the config sets them.
pub(super) struct Observers {
    notifier: Option<verbatim::notify::Notifier>,
    publisher: Option<verbatim::dashboard::Publisher>,
}

impl Observers {
    pub(super) fn new(cfg: &Config) -> Observers {
        Observers {
            notifier: verbatim::notify::Notifier::new(&cfg.notify),
            publisher: cfg.dashboard.publish.then(|| {
                verbatim::dashboard::Publisher::new(Some(cfg.clone()), Default::default())
            }),
        }
    }

    /// Each of them, to hand to a reader or an operation.
    pub(super) fn all(&self) -> Vec<&dyn verbatim::environments::observe::Observer> {
        let mut all: Vec<&dyn verbatim::environments::observe::Observer> = Vec::new();
        if let Some(n) = &self.notifier {
            all.push(n);
        }
        if let Some(p) = &self.publisher {
            all.push(p);
        }
        all
    }

    /// `reader`, telling them.
    pub(super) fn attach<'a>(
        &'a self,
        reader: verbatim::environments::reader::Reader<'a>,
    ) -> verbatim::environments::reader::Reader<'a> {
        self.all().into_iter().fold(reader, |r, o| r.observe(o))
    }

    /// Waits (a bounded time) for webhooks still in flight; warns of those
    /// not delivered.
    pub(super) fn finish(&self, printer: &crate::output::Printer) {
        if let Some(n) = &self.notifier {
            n.finish(printer);
        }
    }
}

/// What a host trusts (`deploy`, `agent`, `fetch`), from its flags.
pub(super) fn trust(args: &crate::cli::TrustArgs) -> Result<Option<verbatim::trust::Trust>> {
    verbatim::trust::Trust::new(&verbatim::trust::TrustRules {
        allowed_signers: args.allowed_signers.as_deref(),
        require: &args.require,
        require_event: &args.require_event_signer,
        max_age: args.max_age.map(|d| d.as_secs().max(1)),
    })
}

/// A host as `deploy` and `agent` are told it: its id, what it trusts and
/// the key it signs its reports with, owned; [`HostFlags::host`] lends them.
pub(super) struct HostFlags<'a> {
    args: &'a crate::cli::HostArgs,
    id: String,
    pub(super) trust: Option<verbatim::trust::Trust>,
    report_key: Option<ssh_key::PrivateKey>,
}

impl<'a> HostFlags<'a> {
    pub(super) fn new(
        args: &'a crate::cli::HostArgs,
        trust: &crate::cli::TrustArgs,
    ) -> Result<HostFlags<'a>> {
        Ok(HostFlags {
            args,
            id: verbatim::host::id::for_root(&args.root, args.host_id.as_deref())?,
            trust: self::trust(trust)?,
            report_key: args
                .report_key
                .as_deref()
                .map(verbatim::trust::keys::load_key)
                .transpose()?,
        })
    }

    pub(super) fn host(&self) -> verbatim::host::deploy::Host<'_> {
        verbatim::host::deploy::Host {
            root: &self.args.root,
            id: &self.id,
            hook_env: &self.args.hook_env,
            trust: self.trust.as_ref(),
            report_key: self.report_key.as_ref(),
            release_runner: self.args.release_runner,
            interval_ms: None,
        }
    }
}
