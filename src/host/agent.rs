//! The agent: keep a host on an environment.
//!
//! A loop: HEAD the environment's pointer (one cheap request; its ETag
//! says whether it moved), and when it moved since the last deploy, deploy
//! it as `verbatim deploy ENV` would. Each look also HEADs the
//! environment's config pointer (`envs/<env>/config.json`): when it moved,
//! the config is written into `shared/` (`super::config`) before any
//! deploy, and when no new release was activated in the same look, the
//! current release's `reload` hook runs. While a rollout is in flight it looks
//! every second, and every 200 ms while it holds a staged release waiting
//! for the switch. A deploy whose hooks failed is not
//! retried until the pointer moves again (the host reported `failed`, and
//! the environment is expected to roll back); a store error is retried
//! with exponential backoff. With `--max-age`, the move is read again
//! every quarter of it even when the pointer did not move, so a frozen
//! pointer turns the host `stale`. SIGTERM, SIGINT or SIGHUP end the loop: a
//! running deploy abandons its download or hook cleanly (`current` stays
//! on a complete release) and the agent returns. The command installs the
//! handlers (`crate::signals::Signals`); this loop only reads the flag.

use std::hash::BuildHasher;
use std::io;
use std::time::{Duration, Instant};

use anyhow::Result;
use serde::Serialize;

use super::config::{reload, sync, ConfigJson};
use super::deploy::{deploy, DeployJson, Host, Request, Target};
use super::report::heartbeat;
use super::root::agent_lock;
use super::service::Notifier;
use crate::clock::{now, rfc3339};
use crate::config::check_env_name;
use crate::environments::envconfig;
use crate::environments::event::pointer_key;
use crate::environments::policy_store::not_in_policy;
use crate::environments::reader::Reader;
use crate::environments::reports::HEARTBEAT_INTERVALS;
use crate::error::{Class, UsageError};
use crate::progress::Progress;
use crate::signals;
use crate::store::{ETag, Key, Store};

/// The longest pause between attempts after store errors.
const MAX_BACKOFF: Duration = Duration::from_secs(300);

/// How often the pointer is looked at while a rollout is in flight in
/// the environment (at most; a shorter `--interval` stays).
const ROLLING: Duration = Duration::from_secs(1);

/// How often while this host holds a staged release waiting for the
/// switch: a blue/green fleet flips within about this of the switch.
const STAGED: Duration = Duration::from_millis(200);

/// One deploy attempt: a line of `agent --json`.
#[derive(Serialize)]
pub struct AttemptJson {
    /// When it ended.
    pub time: String,
    /// What the deploy did, when it did not fail before doing anything.
    #[serde(flatten)]
    pub deploy: Option<DeployJson>,
    /// Why the attempt failed, if it did.
    pub error: Option<String>,
    /// A config change written into `shared/`, and its `reload` hook.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub config: Option<ConfigJson>,
}

/// What an agent keeps where.
pub struct AgentRequest<'a> {
    /// The environment followed.
    pub env: &'a str,
    /// The host kept on it.
    pub host: Host<'a>,
    /// How long between looks at the pointer (± 10 %).
    pub interval: Duration,
}

/// Runs the agent until a handled signal is caught; `attempt` hears of
/// every deploy attempt as it ends (an error from it, such as a closed
/// stdout, ends the loop).
pub fn run(
    store: &dyn Store,
    req: &AgentRequest<'_>,
    progress: &dyn Progress,
    attempt: &mut dyn FnMut(&AttemptJson) -> io::Result<()>,
) -> Result<()> {
    check_env_name(req.env).map_err(UsageError)?;
    if !wait_for_store(store, req.interval, progress) {
        return Ok(()); // a signal came first
    }
    let key = Key::new(pointer_key(req.env))?;
    // Nothing live there may be a typo: refuse a name the store's policy
    // does not list (an environment not promoted to yet is waited for).
    if let Ok(None) = store.head(&key) {
        let reader = Reader::new(store, crate::config::DEFAULT_CONCURRENCY);
        if let Some(unknown) = not_in_policy(&reader, req.env) {
            return Err(unknown);
        }
    }
    let _agent = agent_lock(req.host.root)?;
    let service = Notifier::from_env();
    service.ready(&format!(
        "following {} in {}",
        req.env,
        req.host.root.display()
    ));
    progress.note(format!(
        "agent {}: keeping {} on {} of {}, looking every {:?}",
        req.host.id,
        req.host.root.display(),
        req.env,
        store.location(),
        req.interval
    ));
    let interval_ms = u64::try_from(req.interval.as_millis()).unwrap_or(u64::MAX);
    // Its reports say when it was last seen, and how often it looks.
    let host = Host {
        interval_ms: Some(interval_ms),
        ..req.host
    };
    let beat_every = req.interval.saturating_mul(HEARTBEAT_INTERVALS);
    let mut beat = Instant::now();
    let mut done: Option<ETag> = None;
    // With --max-age, an unmoved pointer is looked at again now and then:
    // a frozen one must turn the host `stale`.
    let recheck = req
        .host
        .trust
        .and_then(|t| t.max_age)
        .map(|age| Duration::from_secs(age / 4).max(req.interval));
    let mut checked = Instant::now();
    let mut errors: u32 = 0;
    let mut said_empty = false;
    // The pace of the last look: the idle interval, or faster in a rollout.
    let mut pace = req.interval;
    let config_key = Key::new(envconfig::pointer_key(req.env))?;
    let mut config_done: Option<ETag> = None;
    while signals::caught().is_none() {
        service.alive();
        let changed = look_at_config(store, req, &config_key, &mut config_done, progress);
        let mut activated = false;
        let step: Result<()> = match store.head(&key) {
            Err(e) => Err(e.into()),
            Ok(None) => {
                if !said_empty {
                    progress.note(format!("nothing is live in {} yet; waiting", req.env));
                    said_empty = true;
                }
                Ok(())
            }
            Ok(Some(meta))
                if done.as_ref() == Some(&meta.etag)
                    && recheck.is_none_or(|r| checked.elapsed() < r) =>
            {
                Ok(())
            }
            Ok(Some(meta)) => {
                checked = Instant::now();
                beat = Instant::now();
                let looked = (&mut done, &mut pace);
                match deploy_once(store, req, host, meta.etag, looked, progress, attempt) {
                    Ok(None) => break,
                    Ok(Some(a)) => {
                        activated = a;
                        Ok(())
                    }
                    Err(e) => Err(e),
                }
            }
        };
        if let Some(mut config) = changed {
            // A new release activated in this look started with the files.
            if !activated && signals::caught().is_none() {
                config.reload = reload(&req.host, req.env, config.seq, progress)
                    .unwrap_or_else(|e| format!("failed: {e:#}"));
            }
            attempt(&AttemptJson {
                time: rfc3339(now()),
                deploy: None,
                error: None,
                config: Some(config),
            })?;
        }
        let pause = match step {
            Ok(()) => {
                errors = 0;
                if beat.elapsed() >= beat_every {
                    let at = (req.host.root, req.env);
                    heartbeat(store, at, interval_ms, req.host.report_key, None, progress);
                    beat = Instant::now();
                }
                jitter(pace)
            }
            Err(e) => {
                errors = errors.saturating_add(1);
                let backoff = req
                    .interval
                    .saturating_mul(1 << errors.min(10))
                    .min(MAX_BACKOFF.max(req.interval));
                progress.warn(format!(
                    "{e:#}; trying again in {:.1}s",
                    backoff.as_secs_f64()
                ));
                jitter(backoff)
            }
        };
        sleep_unless_signalled(pause, &service);
    }
    if let Some(sig) = signals::caught() {
        let why = format!("agent stopped by {}", signals::signal_name(sig));
        service.stopping(&why);
        let at = (req.host.root, req.env);
        heartbeat(
            store,
            at,
            interval_ms,
            req.host.report_key,
            Some(why),
            progress,
        );
        progress.note(format!("{}: agent stopped", signals::signal_name(sig)));
    }
    Ok(())
}

/// One deploy of the pointer the agent saw move to `etag`: `attempt`
/// hears of it; `done` and `pace` are set from it. Whether it activated a
/// release, or `None` when a signal cut it short; an error only when it
/// is worth a retry with backoff (a failed hook waits for the pointer).
fn deploy_once(
    store: &dyn Store,
    req: &AgentRequest<'_>,
    host: Host<'_>,
    etag: ETag,
    (done, pace): (&mut Option<ETag>, &mut Duration),
    progress: &dyn Progress,
    attempt: &mut dyn FnMut(&AttemptJson) -> io::Result<()>,
) -> Result<Option<bool>> {
    let deploy_req = Request {
        target: Target::Env(req.env),
        host,
        wait: true,
    };
    let outcome = deploy(Some(store), &deploy_req, progress);
    let time = rfc3339(now());
    match outcome {
        Ok(out) => {
            *pace = match (out.staged.is_some(), out.rollout) {
                (true, _) => STAGED,
                (false, true) => ROLLING.min(req.interval),
                (false, false) => req.interval,
            };
            let activated = out.result == "activated";
            attempt(&AttemptJson {
                time,
                deploy: Some(out),
                error: None,
                config: None,
            })?;
            *done = Some(etag);
            Ok(Some(activated))
        }
        Err(_) if signals::caught().is_some() => Ok(None),
        Err(failed) => {
            let e = failed.error;
            attempt(&AttemptJson {
                time,
                deploy: None,
                error: Some(format!("{e:#}")),
                config: None,
            })?;
            if e.chain().find_map(crate::error::class_of) == Some(Class::CheckFailed) {
                // Reported `failed`: wait for the pointer to move.
                progress.warn(format!("{e:#}; waiting for {} to move", req.env));
                *done = Some(etag);
                Ok(Some(false))
            } else {
                Err(e)
            }
        }
    }
}

/// One HEAD of the config pointer; when it moved since `done`, the config
/// is written into `shared/`. Returns the change when the files changed.
/// A store error is retried at the next look; a config that cannot be
/// trusted (exit 5) is warned about once per pointer move, and the files
/// stay as they were.
fn look_at_config(
    store: &dyn Store,
    req: &AgentRequest<'_>,
    key: &Key,
    done: &mut Option<ETag>,
    progress: &dyn Progress,
) -> Option<ConfigJson> {
    let meta = match store.head(key) {
        Ok(Some(meta)) if done.as_ref() != Some(&meta.etag) => meta,
        Ok(_) => return None,
        Err(e) => {
            progress.warn(format!("looking at the config of {}: {e}", req.env));
            return None;
        }
    };
    match sync(store, &req.host, req.env, progress) {
        Ok(synced) => {
            *done = Some(meta.etag);
            synced.filter(|c| c.written)
        }
        Err(e) => {
            if e.chain().find_map(crate::error::class_of) == Some(Class::Integrity) {
                *done = Some(meta.etag);
            }
            progress.warn(format!("{e:#}"));
            None
        }
    }
}

/// Waits, with backoff, until `store` exists (a local store's disk not
/// mounted yet), as store errors are waited out; `false` when a signal
/// came first.
fn wait_for_store(store: &dyn Store, interval: Duration, progress: &dyn Progress) -> bool {
    let mut wait = interval.max(Duration::from_millis(100));
    while !store.exists() {
        progress.warn(format!(
            "there is no store at {} yet; trying again in {:.1}s",
            store.location(),
            wait.as_secs_f64()
        ));
        let until = Instant::now() + wait;
        while Instant::now() < until {
            if signals::caught().is_some() {
                return false;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        wait = wait.saturating_mul(2).min(MAX_BACKOFF);
    }
    true
}

/// `d` ± 10 %, so a fleet started at once does not poll in step.
fn jitter(d: Duration) -> Duration {
    let r = std::collections::hash_map::RandomState::new().hash_one(Instant::now());
    let factor = 0.9 + (r % 2001) as f64 / 10_000.0;
    d.mul_f64(factor)
}

fn sleep_unless_signalled(d: Duration, service: &Notifier) {
    let end = Instant::now() + d;
    while signals::caught().is_none() {
        service.alive();
        let left = end.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return;
        }
        std::thread::sleep(left.min(Duration::from_millis(50)));
    }
}
