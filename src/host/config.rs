//! An environment's config on a host: the agent writes the config in
//! effect (`verbatim config set`, `environments::envconfig`) into the
//! root as `shared/verbatim-config.json` (one JSON object) and
//! `shared/verbatim-config.env` (`KEY="value"` lines), each through a temp
//! file renamed into place (0644), so an app never reads half of one.
//! When only the config changed (no new release), the current release's
//! `reload` hook runs; `current` does not flip.
//!
//! The config log is read checked (a tampered one is refused, exit 5, and
//! the files stay as they were); with `--require-event-signer`, the config
//! event in effect must be signed by each required principal, as a move
//! must be.

use std::path::Path;

use anyhow::{Context, Result};
use serde::Serialize;

use super::deploy::Host;
use super::hooks::{describe, Hooks};
use super::recover::local_manifest;
use super::root::{Root, SHARED};
use crate::clock::now;
use crate::environments::envconfig::{self, Values};
use crate::environments::envconfig_store;
use crate::environments::reader::Reader;
use crate::environments::signatures::config_event_signers;
use crate::error::IntegrityError;
use crate::progress::Progress;
use crate::signals;
use crate::store::Store;
use crate::trust::{Trust, EVENT_NAMESPACE};

/// The JSON form, in `DIR/shared/`.
pub const JSON_FILE: &str = "verbatim-config.json";
/// The env-file form, in `DIR/shared/`.
pub const ENV_FILE: &str = "verbatim-config.env";

/// What a config sync did: a line of `agent --json` (`"config": {…}`).
#[derive(Debug, Serialize)]
pub struct ConfigJson {
    /// The config event in effect.
    pub seq: u64,
    /// Whether the files changed (else they already held it).
    pub written: bool,
    /// The `reload` hook: `passed`, `failed: …`, `none` (the release has
    /// none), or `not run` (the files did not change, or a deploy of a new
    /// release followed, which starts with them).
    pub reload: String,
}

/// The config in effect for `env`, checked (and its signatures, as
/// `trust` requires); `None` when the environment has none.
fn config_in_effect(
    store: &dyn Store,
    env: &str,
    trust: Option<&Trust>,
) -> Result<Option<(u64, Values)>> {
    let reader = Reader::new(store, crate::config::DEFAULT_CONCURRENCY);
    let state = envconfig_store::load(&reader, env)?;
    let (Some(current), Some(bytes)) = (
        state.current(),
        envconfig_store::stored_current(&reader, &state)?,
    ) else {
        return Ok(None);
    };
    if let Some(trust) = trust.filter(|t| !t.require_event.is_empty()) {
        let keys = config_event_signers(store, env, current.seq, &bytes)?;
        let at = now();
        let missing: Vec<&str> = trust
            .require_event
            .iter()
            .map(String::as_str)
            .filter(|p| {
                !keys
                    .iter()
                    .any(|k| trust.signers.allows(k, p, EVENT_NAMESPACE, at))
            })
            .collect();
        if !missing.is_empty() {
            return Err(IntegrityError(format!(
                "config event {} of {env} is not signed by {} (allowed signers: {}): this host keeps the config it has. Sign config changes with `config set --sign-key`",
                current.seq,
                missing.join(", "),
                trust.source.display()
            ))
            .into());
        }
    }
    Ok(Some((current.seq, current.to.clone())))
}

/// Writes `env`'s config in effect into `root`'s `shared/` where it
/// differs; `None` when the environment has none (the files are left
/// alone). The host lock is held while writing.
pub fn sync(
    store: &dyn Store,
    host: &Host<'_>,
    env: &str,
    progress: &dyn Progress,
) -> Result<Option<ConfigJson>> {
    let Some((seq, values)) = config_in_effect(store, env, host.trust)? else {
        return Ok(None);
    };
    let root = Root::lock(
        host.root,
        true,
        |msg| progress.note(msg),
        || signals::caught().is_some(),
    )?;
    let shared = root.dir().join(SHARED);
    let mut json = serde_json::to_vec_pretty(&values).expect("a map of strings serializes");
    json.push(b'\n');
    let files = [
        (JSON_FILE, json),
        (ENV_FILE, envconfig::env_file(&values).into_bytes()),
    ];
    let mut written = false;
    for (name, bytes) in &files {
        let path = shared.join(name);
        let limit = bytes.len() as u64;
        if crate::safe_fs::read_regular_limited(&path, limit)
            .ok()
            .as_ref()
            == Some(bytes)
        {
            continue;
        }
        write_file(&path, bytes).with_context(|| format!("writing {}", path.display()))?;
        written = true;
    }
    if written {
        progress.note(format!(
            "{}: config event {seq} of {env} ({} key(s))",
            shared.join(JSON_FILE).display(),
            values.len()
        ));
    }
    Ok(Some(ConfigJson {
        seq,
        written,
        reload: "not run".into(),
    }))
}

/// A temp file beside `path`, 0644, synced, renamed over it.
fn write_file(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::PermissionsExt;
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::Builder::new()
        .prefix(".verbatim-config-")
        .permissions(std::fs::Permissions::from_mode(0o644))
        .tempfile_in(dir)?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    std::fs::File::open(dir)?.sync_all()
}

/// Runs the `reload` hook of the release `current` names (as its kept
/// manifest gives it), in its directory, with `VERBATIM_CONFIG_SEQ` set;
/// `current` does not move. Returns what to report: `passed`, `none` or
/// `failed: …`.
pub fn reload(host: &Host<'_>, env: &str, seq: u64, progress: &dyn Progress) -> Result<String> {
    let root = Root::lock(
        host.root,
        true,
        |msg| progress.note(msg),
        || signals::caught().is_some(),
    )?;
    let Some(current) = root.current().map_err(anyhow::Error::msg)? else {
        return Ok("none".into());
    };
    let settings = local_manifest(&root, &current)?.deploy.unwrap_or_default();
    if settings.hooks.reload.is_none() {
        return Ok("none".into());
    }
    let mut extra = host.hook_env.to_vec();
    extra.push(("VERBATIM_CONFIG_SEQ".into(), seq.to_string()));
    let hooks = Hooks {
        settings: &settings,
        root: root.dir(),
        env,
        extra: &extra,
        progress,
        check_passed: Default::default(),
    };
    Ok(
        match hooks.run("reload", &current, None, &root.release_dir(&current)) {
            None => {
                progress.note(format!("reload hook passed (config event {seq} of {env})"));
                "passed".into()
            }
            Some(ended) => {
                let why = describe(&ended);
                progress.warn(format!(
                    "reload hook failed after config event {seq} of {env}: {why}; the new config files stay"
                ));
                format!("failed: {why}")
            }
        },
    )
}
