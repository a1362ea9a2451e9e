//! Deploying a release on a host: the host half of a release.
//!
//! Under the host lock: clean what a crash left; resolve the manifest (an
//! environment's live one, a manifest, or the host's previous release);
//! fetch and verify it into `releases/<hex>/` (a release already there is
//! re-checked file by file, and fetched again if it was modified); link
//! the shared paths; `pre_activate`; flip `current`; `post_activate` and
//! `check`, flipping back if either fails; keep the newest releases; report
//! to `envs/<env>/hosts/<host>.json`. `root::Root` does the disk work,
//! `stage` the download, `hooks` the hooks (through `crate::process::run`),
//! `report` the report.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::Serialize;
use ssh_key::PrivateKey;

use super::follow::{self, Accepted};
use super::hooks::{describe, Hooks};
use super::recover::{local_manifest, post_activate_again, recover, verified};
use super::release::{release_phase, Release};
use super::report::Reporter;
use super::root::{HostEvent, Interrupted as Marker, Outcome, Root};
use super::stage::{discard_if_modified, hold_staging, is_real_dir, place, stage};
use crate::clock::rfc3339;
use crate::digest::Digest;
use crate::environments::reports::State;
use crate::environments::resolve::resolve_manifest;
use crate::environments::rollout::assign;
use crate::error::{CheckFailed, Failed, Interrupted, Stale, UsageError};
use crate::manifest::{Deploy, Manifest};
use crate::objects::load_manifest;
use crate::process::Ended;
use crate::progress::Progress;
use crate::signals;
use crate::store::Store;
use crate::text::human_bytes;
use crate::trust::Trust;

/// What `deploy --json` prints (also the fields beside `error` when it fails).
#[derive(Debug, Serialize)]
pub struct DeployJson {
    /// The deploy root.
    pub root: PathBuf,
    /// This host's id.
    pub host: String,
    /// The environment followed, if one was named.
    pub env: Option<String>,
    /// The manifest deployed.
    pub manifest: String,
    /// What `current` named before.
    pub previous: Option<String>,
    /// `activated`; `unchanged` when it was already current; `failed` (exit
    /// 6: `current` was left as it was, or flipped back).
    pub result: &'static str,
    /// The release directory.
    pub release: PathBuf,
    /// Whether the artifact was downloaded (else the release was on disk).
    pub fetched: bool,
    /// Releases removed to keep the newest ones.
    pub removed: Vec<String>,
    /// Whether the host's report reached the store.
    pub reported: bool,
    /// A rollout's target, staged beside `current` without flipping to it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub staged: Option<String>,
    /// How the rollout's release phase went on this host, when it was its
    /// to run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub release_phase: Option<String>,
    /// A rollout is in flight in the environment (an agent looks more often).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub rollout: bool,
}

impl DeployJson {
    /// Nothing done yet: what a deploy of `id` starts from.
    fn unchanged(
        root: &Root,
        host: &str,
        env: Option<String>,
        id: &Digest,
        current: Option<&Digest>,
    ) -> DeployJson {
        DeployJson {
            root: root.dir().to_owned(),
            host: host.to_owned(),
            env,
            manifest: id.to_string(),
            previous: current.map(Digest::to_string),
            result: "unchanged",
            release: root.release_dir(id),
            fetched: false,
            removed: Vec::new(),
            reported: false,
            staged: None,
            release_phase: None,
            rollout: false,
        }
    }
}

/// What to deploy.
pub enum Target<'a> {
    /// The environment's live manifest; the host reports to it.
    Env(&'a str),
    /// A manifest argument (`sha256:…`, a prefix, a file).
    Manifest(&'a str),
    /// What `current` named before it named what it names now.
    Previous,
}

/// A host, as every deploy on it (and its agent) sees it.
#[derive(Clone, Copy)]
pub struct Host<'a> {
    /// The deploy root.
    pub root: &'a Path,
    /// This host's id, for its report.
    pub id: &'a str,
    /// More variables for the hooks (`--hook-env`).
    pub hook_env: &'a [(String, String)],
    /// Whose signatures a manifest needs (going back to the previous
    /// release too: it may have been deployed without the rule).
    pub trust: Option<&'a Trust>,
    /// Sign this host's reports with this key (`--report-key`), so a
    /// promoter asking for signed reports counts them.
    pub report_key: Option<&'a PrivateKey>,
    /// This host may run a rollout's release phase (`--release-runner`).
    pub release_runner: bool,
    /// The agent's interval in milliseconds, when an agent deploys: its
    /// reports then say when it was last seen.
    pub interval_ms: Option<u64>,
}

/// One deploy, as `deploy` and `agent` ask for it.
pub struct Request<'a> {
    /// What to deploy.
    pub target: Target<'a>,
    /// Where, and as whom.
    pub host: Host<'a>,
    /// Wait for the host lock (else exit 7 when it is held).
    pub wait: bool,
}

/// The deploy itself. On a hook failure it returns `CheckFailed` (or
/// `Interrupted`, when a signal stopped it), carrying its report.
pub fn deploy(
    store: Option<&dyn Store>,
    req: &Request<'_>,
    progress: &dyn Progress,
) -> Result<DeployJson, Failed<DeployJson>> {
    let root = Root::lock(
        req.host.root,
        req.wait,
        |msg| progress.note(msg),
        || signals::caught().is_some(),
    )?;
    super::id::remember(root.dir(), req.host.id)?;
    // Held for the whole deploy; taking it removed what a killed fetch or
    // deploy left staged, unless another one is staging now.
    let _staging = hold_staging(&root, progress)?;
    for name in root
        .cleanup()
        .context("removing what an earlier deploy left")?
    {
        progress.note(format!(
            "removed {name}, left by an interrupted fetch or deploy"
        ));
    }
    if let Some(marker) = root
        .interrupted()
        .context("reading the host's activation marker")?
    {
        let none = Deploy::default();
        let hooks = Hooks {
            settings: &none,
            root: root.dir(),
            env: "",
            extra: req.host.hook_env,
            progress,
            check_passed: Default::default(),
        };
        recover(&root, &marker, &hooks)?;
    }
    let current = root.current().map_err(usage)?;
    let history = root
        .history(|n| {
            progress.warn(format!(
                "{}: line {n} is unreadable; skipped",
                root.dir().join(".verbatim/history.jsonl").display()
            ))
        })
        .context("reading the host history")?;

    let resolved = match resolve(store, &root, current.as_ref(), &history, req) {
        Ok(r) => r,
        Err(e) => return Err(stale(e, store, req, current.as_ref(), progress).into()),
    };
    let Resolved {
        id,
        ref env,
        seq,
        ref accepted,
        ..
    } = resolved;
    let mut out = DeployJson::unchanged(&root, req.host.id, env.clone(), &id, current.as_ref());
    out.rollout = resolved.in_flight;
    let reporter = Reporter {
        store,
        env: env.as_deref(),
        host: req.host.id,
        manifest: id.to_string(),
        seq,
        event: accepted.as_ref().map(|a| a.event),
        key: req.host.report_key,
        release_runner: req.host.release_runner,
        interval_ms: req.host.interval_ms,
        root: req.host.root,
        progress,
    };
    if current == Some(id) {
        if let Some(a) = accepted {
            a.remember(&root)?;
        }
        if resolved.stage.is_none() {
            progress.note(format!(
                "{id} is already current in {}; nothing to do",
                root.dir().display()
            ));
        }
        out.reported = reporter.send(State::Active, current.as_ref(), None);
        return then_stage(store, req, &root, &resolved, out, progress);
    }

    let manifest = manifest_for(store, req, &root, &id)?;
    // Every check of the move passed: the mark goes up before anything runs.
    if let Some(a) = &accepted {
        a.remember(&root)?;
    }
    let settings = manifest.deploy.clone().unwrap_or_default();
    reporter.send(State::Deploying, current.as_ref(), None);
    let hooks = Hooks {
        settings: &settings,
        root: root.dir(),
        env: env.as_deref().unwrap_or(""),
        extra: req.host.hook_env,
        progress,
        check_passed: Default::default(),
    };
    let run = Activation {
        root: &root,
        id,
        current,
        env: env.clone(),
        seq,
        hooks: &hooks,
    };
    // Any failure from here on is reported (`failed`), unless a signal
    // cut it short: that is not the release's fault, and the next deploy
    // tries again.
    let result =
        install(store, &run, &manifest, &mut out).and_then(|dir| run.activate(&dir, &mut out));
    match result {
        Ok(()) => {
            out.reported = reporter.send(State::Active, Some(&id), hooks.check_passed.take());
            then_stage(store, req, &root, &resolved, out, progress)
        }
        Err(e) => {
            out.result = "failed";
            let interrupted =
                signals::caught().is_some() || e.chain().any(|c| c.is::<Interrupted>());
            // A report never stays `deploying`: interrupted, the host
            // stopped where `current` is.
            let now = root.current().ok().flatten();
            let state = if interrupted {
                State::Stopped
            } else {
                State::Failed
            };
            out.reported = reporter.send(state, now.as_ref(), Some(format!("{e:#}")));
            Err(Failed {
                report: Some(Box::new(out)),
                error: e,
            })
        }
    }
}

fn usage(why: String) -> anyhow::Error {
    UsageError(why).into()
}

/// One activation of release `id` on `root`, where `current` was live.
struct Activation<'a> {
    root: &'a Root,
    id: Digest,
    current: Option<Digest>,
    /// The environment followed, and the event of its pointer.
    env: Option<String>,
    seq: Option<u64>,
    hooks: &'a Hooks<'a>,
}

/// Puts release `run.id` on disk, verified, with its shared links and its
/// manifest beside it: a release already there is re-checked file by file
/// (and fetched again if it was modified), else it is fetched and renamed
/// into place. Returns its directory.
fn install(
    store: Option<&dyn Store>,
    run: &Activation<'_>,
    manifest: &Manifest,
    out: &mut DeployJson,
) -> Result<PathBuf> {
    let (root, id, progress) = (run.root, &run.id, run.hooks.progress);
    let shared = &run.hooks.settings.shared;
    let dir = root.release_dir(id);
    discard_if_modified(root, id, shared, progress)?;
    if !is_real_dir(&dir) {
        let Some(store) = store else {
            return Err(UsageError(format!(
                "release {} is gone or was modified, and no store is given to fetch it again: pass --store",
                dir.display()
            ))
            .into());
        };
        let (staging, entries) = stage(store, id, manifest, &root.releases(), progress)?;
        let n = entries.len();
        root.write_record(id, entries)
            .context("recording the release's files")?;
        root.link_shared(staging.path(), shared)
            .context("linking the shared paths")?;
        place(staging, id, &dir, n, progress)?;
        out.fetched = true;
    }
    root.link_shared(&dir, shared)
        .with_context(|| format!("linking the shared paths of {}", dir.display()))?;
    root.write_manifest(id, &manifest.to_canonical_bytes())
        .with_context(|| format!("writing {}", root.manifest_path(id).display()))?;
    Ok(dir)
}

impl Activation<'_> {
    /// `pre_activate`, the flip of `current` to `dir`, `post_activate`
    /// and `check` (flipping back when either fails), then the host
    /// history and keep-N.
    fn activate(&self, dir: &Path, out: &mut DeployJson) -> Result<()> {
        let (root, id, current, hooks) = (self.root, &self.id, self.current, self.hooks);
        let progress = hooks.progress;
        // A history that cannot be written stops the deploy before anything runs.
        let log = root
            .open_history()
            .context("opening the host history, before any hook runs")?;
        if let Some(ended) = hooks.run("pre_activate", id, current.as_ref(), dir) {
            let detail = format!(
                "pre_activate hook failed ({}); current still names {}",
                describe(&ended),
                current.map_or("nothing".into(), |c| c.to_string())
            );
            return Err(self.failed(detail, &ended));
        }
        root.begin_activation(current.as_ref(), id)
            .context("recording the activation about to start")?;
        root.flip(Some(id)).with_context(|| {
            format!(
                "pointing {} at {}",
                root.dir().join("current").display(),
                dir.display()
            )
        })?;
        progress.note(format!("current -> releases/{}", id.hex()));

        let ended = hooks
            .run("post_activate", id, current.as_ref(), dir)
            .map(|e| ("post_activate hook", e))
            .or_else(|| {
                hooks
                    .run("check", id, current.as_ref(), dir)
                    .map(|e| ("check", e))
            });
        if let Some((what, ended)) = ended {
            return Err(self.flip_back(what, &ended));
        }

        if let Err(e) = log.append(&self.event(Outcome::Activated, Some(id), None)) {
            // Live but unrecorded, the release would be forgotten by keep-N
            // and `--to previous`: it goes back like a failed check.
            return Err(self.flip_back(
                "recording it in the host history",
                &Ended::Failed(e.to_string()),
            ));
        }
        root.end_activation()
            .context("clearing the host's activation marker")?;
        out.result = "activated";
        let history = root.history(|_| {}).context("reading the host history")?;
        let keep = hooks.settings.keep;
        let keep_too: Vec<Digest> = std::iter::once(*id).chain(current).collect();
        match root.prune(&history, keep as usize, &keep_too, false) {
            Ok(removed) => {
                for r in &removed {
                    progress.note(format!("removed release {r} (keep = {keep})"));
                }
                out.removed = removed.iter().map(Digest::to_string).collect();
            }
            Err(e) => progress.warn(format!("could not remove old releases: {e}")),
        }
        Ok(())
    }

    /// After `what` failed as `ended` with the release live: `current` back
    /// where it was, the previous release's own `post_activate` again (the
    /// app server goes back too), and the failure recorded.
    fn flip_back(&self, what: &str, ended: &Ended) -> anyhow::Error {
        let (root, id, current, hooks) = (self.root, &self.id, self.current, self.hooks);
        if let Err(e) = root.flip(current.as_ref()) {
            return anyhow::Error::new(e).context(format!(
                "{what} failed ({}), and flipping current back failed",
                describe(ended)
            ));
        }
        if let Some(prev) = &current {
            post_activate_again(root, prev, Some(id), hooks);
        }
        let detail = format!(
            "{what} failed ({}); current flipped back to {}",
            describe(ended),
            current.map_or("nothing (removed)".into(), |c| c.to_string())
        );
        self.failed(detail, ended)
    }

    /// Records a failed attempt in the host history (current unchanged, or
    /// back where it was) and turns it into the deploy's error: exit 6, or
    /// 128 + the signal that interrupted a hook.
    fn failed(&self, detail: String, ended: &Ended) -> anyhow::Error {
        let _ = self.root.append(&self.event(
            Outcome::Failed,
            self.current.as_ref(),
            Some(detail.clone()),
        ));
        let _ = self.root.end_activation();
        match ended {
            Ended::Interrupted(signal) => anyhow::Error::new(Interrupted {
                signal: *signal,
                message: detail,
            }),
            _ => CheckFailed(detail).into(),
        }
    }

    /// The host history's record of this attempt.
    fn event(&self, outcome: Outcome, now: Option<&Digest>, detail: Option<String>) -> HostEvent {
        HostEvent {
            time: rfc3339(crate::clock::now()),
            manifest: self.id.to_string(),
            outcome,
            current: now.map(Digest::to_string),
            env: self.env.clone(),
            seq: self.seq,
            detail,
        }
    }
}

/// `deploy --dry-run`: what a deploy would do, from the root as it is,
/// without a lock and without writing anything (the manifest and its
/// signatures are read; the artifact is not).
pub fn plan(
    store: Option<&dyn Store>,
    req: &Request<'_>,
    progress: &dyn Progress,
) -> Result<DeployJson> {
    let root = Root::view(req.host.root).context("resolving the deploy root")?;
    let current = root.current().map_err(UsageError)?;
    let history = root.history(|_| {}).context("reading the host history")?;
    let interrupted = root
        .interrupted()
        .context("reading the host's activation marker")?;
    let current = match &interrupted {
        Some(Marker::From(a)) => {
            let from = a.from.as_deref().and_then(|f| f.parse().ok());
            match from.map(|f| verified(&root, &f)) {
                Some(Err(why)) => {
                    progress.note(format!(
                        "would leave current as it is after an interrupted deploy of {}: {why}",
                        a.to
                    ));
                    current
                }
                _ => {
                    progress.note(format!(
                        "would first put current back where an interrupted deploy of {} found it",
                        a.to
                    ));
                    from
                }
            }
        }
        Some(Marker::Unreadable(why)) => {
            progress.note(format!("would leave current as it is after an interrupted deploy: its marker is unreadable ({why})"));
            current
        }
        None => current,
    };
    let Resolved { id, env, .. } = resolve(store, &root, current.as_ref(), &history, req)?;
    let mut out = DeployJson::unchanged(&root, req.host.id, env.clone(), &id, current.as_ref());
    if current == Some(id) && interrupted.is_none() {
        progress.note(format!(
            "dry run: {id} is already current; nothing would change"
        ));
        return Ok(out);
    }
    let manifest = manifest_for(store, req, &root, &id)?;
    let settings = manifest.deploy.clone().unwrap_or_default();
    let dir = root.release_dir(&id);
    let on_disk = std::fs::symlink_metadata(&dir).is_ok_and(|m| m.is_dir());
    let why_fetch = if !on_disk {
        Some("it is not on this host".to_owned())
    } else {
        root.modified(&id, &settings.shared)
            .map(|why| format!("it was modified ({why})"))
    };
    out.fetched = why_fetch.is_some();
    match &why_fetch {
        Some(why) => progress.note(format!(
            "would fetch {} ({}) into {}: {why}",
            manifest.artifact.key,
            human_bytes(manifest.artifact.size),
            dir.display()
        )),
        None => progress.note(format!("{} is on this host, unmodified", dir.display())),
    }
    let hooks = &settings.hooks;
    for (name, cmd) in [
        ("pre_activate", &hooks.pre_activate),
        ("post_activate", &hooks.post_activate),
        ("check", &hooks.check),
    ] {
        if let Some(cmd) = cmd {
            progress.note(format!("would run {name}: {cmd}"));
        }
        if name == "pre_activate" {
            progress.note(format!(
                "would point current at releases/{} (now: {})",
                id.hex(),
                current.map_or("nothing".into(), |c| c.to_string())
            ));
        }
    }
    let mut after = history.clone();
    after.push(HostEvent {
        time: String::new(),
        manifest: id.to_string(),
        outcome: Outcome::Activated,
        current: Some(id.to_string()),
        env,
        seq: None,
        detail: None,
    });
    let keep_too: Vec<Digest> = std::iter::once(id).chain(current).collect();
    let removed = root.prune(&after, settings.keep as usize, &keep_too, true)?;
    for r in &removed {
        progress.note(format!(
            "would remove release {r} (keep = {})",
            settings.keep
        ));
    }
    out.removed = removed.iter().map(Digest::to_string).collect();
    out.result = "would-activate";
    progress.note("dry run: nothing written");
    Ok(out)
}

/// What a deploy's target names.
struct Resolved {
    /// The manifest.
    id: Digest,
    /// The environment to report to.
    env: Option<String>,
    /// The event of its pointer.
    seq: Option<u64>,
    /// The move accepted, when following an environment.
    accepted: Option<Accepted>,
    /// A rollout's target to stage once `id` runs.
    stage: Option<Digest>,
    /// The rollout whose release phase this host may run, once staged.
    release: Option<u64>,
    /// A rollout is in flight.
    in_flight: bool,
}

/// After the host runs what it should: stages the rollout's target when
/// `resolved` says so, reports `staged` and runs the release phase if it
/// is this host's to claim.
fn then_stage(
    store: Option<&dyn Store>,
    req: &Request<'_>,
    root: &Root,
    resolved: &Resolved,
    mut out: DeployJson,
    progress: &dyn Progress,
) -> Result<DeployJson, Failed<DeployJson>> {
    let (Some(target), Some(store)) = (resolved.stage, store) else {
        return Ok(out);
    };
    let staged = stage_target(store, req, root, resolved, &target, &mut out, progress);
    match staged {
        Ok(()) => Ok(out),
        Err(e) => Err(Failed {
            report: Some(Box::new(out)),
            error: e,
        }),
    }
}

/// Puts the rollout's `target` on disk beside `current` (fetched,
/// verified, unpacked, its shared links made; never flipped to), reports
/// it `staged`, and runs the release phase when this host may claim it.
fn stage_target(
    store: &dyn Store,
    req: &Request<'_>,
    root: &Root,
    resolved: &Resolved,
    target: &Digest,
    out: &mut DeployJson,
    progress: &dyn Progress,
) -> Result<()> {
    let manifest = manifest_for(Some(store), req, root, target)?;
    let settings = manifest.deploy.clone().unwrap_or_default();
    let env = resolved.env.as_deref().unwrap_or("");
    let hooks = Hooks {
        settings: &settings,
        root: root.dir(),
        env,
        extra: req.host.hook_env,
        progress,
        check_passed: Default::default(),
    };
    let current = root.current().map_err(usage)?;
    let run = Activation {
        root,
        id: *target,
        current,
        env: resolved.env.clone(),
        seq: resolved.seq,
        hooks: &hooks,
    };
    let dir = install(Some(store), &run, &manifest, out)?;
    progress.note(format!(
        "staged {target} in {} (current stays on {})",
        dir.display(),
        current.map_or("nothing".into(), |c| c.to_string())
    ));
    out.staged = Some(target.to_string());
    let reporter = Reporter {
        store: Some(store),
        env: resolved.env.as_deref(),
        host: req.host.id,
        manifest: target.to_string(),
        seq: resolved.seq,
        event: resolved.accepted.as_ref().map(|a| a.event),
        key: req.host.report_key,
        release_runner: req.host.release_runner,
        interval_ms: req.host.interval_ms,
        root: req.host.root,
        progress,
    };
    let mut detail = None;
    if let Some(rollout) = resolved.release {
        let log_dir = root.dir().join(".verbatim");
        let ran = release_phase(
            store,
            (env, rollout),
            target,
            &dir,
            &hooks,
            (req.host.id, &log_dir),
        )?;
        let said = match ran {
            Release::ClaimedElsewhere(host) => {
                format!("the release phase of rollout {rollout} is {host}'s to run")
            }
            Release::Ran(record) => format!("release phase {}: {}", record.outcome, record.detail),
        };
        progress.note(said.clone());
        out.release_phase = Some(said.clone());
        detail = Some(said);
    }
    out.reported = reporter.send(State::Staged, current.as_ref(), detail);
    Ok(())
}

/// What `req.target` names; an environment's move is accepted as
/// `follow::accept` rules (signed, extending the root's mark, fresh).
fn resolve(
    store: Option<&dyn Store>,
    root: &Root,
    current: Option<&Digest>,
    history: &[HostEvent],
    req: &Request<'_>,
) -> Result<Resolved> {
    Ok(match req.target {
        Target::Env(env) => {
            let store = store.expect("an environment needs the store");
            let a = follow::accept(store, root, env, req.host.trust)?;
            let to = assign(&a.manifest.to_string(), a.rollout.as_ref(), req.host.id);
            let digest = |m: &str| m.parse::<Digest>().map_err(anyhow::Error::msg);
            Resolved {
                id: digest(&to.run)?,
                env: Some(env.to_owned()),
                seq: Some(a.seq),
                accepted: Some(a),
                stage: to.stage.as_deref().map(digest).transpose()?,
                release: to.release,
                in_flight: to.in_flight,
            }
        }
        Target::Manifest(arg) => {
            let store = store.expect("a manifest needs the store");
            Resolved {
                id: resolve_manifest(store, arg)?,
                env: None,
                seq: None,
                accepted: None,
                stage: None,
                release: None,
                in_flight: false,
            }
        }
        Target::Previous => {
            let Some(prev) = root.previous(history, current) else {
                return Err(UsageError(format!(
                    "{} has no previous release to go back to (its history names none still on disk)",
                    root.dir().display()
                ))
                .into());
            };
            // Report to the environment the host followed last, if any.
            let env = history.iter().rev().find_map(|e| e.env.clone());
            Resolved {
                id: prev,
                env,
                seq: None,
                accepted: None,
                stage: None,
                release: None,
                in_flight: false,
            }
        }
    })
}

/// A move refused as too old: the host says so in its report (`stale`,
/// running what it runs) before the error goes up.
fn stale(
    e: anyhow::Error,
    store: Option<&dyn Store>,
    req: &Request<'_>,
    current: Option<&Digest>,
    progress: &dyn Progress,
) -> anyhow::Error {
    if let (Target::Env(env), true) = (&req.target, e.chain().any(|c| c.is::<Stale>())) {
        let reporter = Reporter {
            store,
            env: Some(env),
            host: req.host.id,
            manifest: current.map(Digest::to_string).unwrap_or_default(),
            seq: None,
            event: None,
            key: req.host.report_key,
            release_runner: req.host.release_runner,
            interval_ms: req.host.interval_ms,
            root: req.host.root,
            progress,
        };
        reporter.send(State::Stale, current, Some(format!("{e:#}")));
    }
    e
}

/// The manifest to deploy: the one kept beside its release when going
/// back (or with no store), else the store's, whose signatures are checked
/// before anything else is downloaded.
fn manifest_for(
    store: Option<&dyn Store>,
    req: &Request<'_>,
    root: &Root,
    id: &Digest,
) -> Result<Manifest> {
    match (&req.target, store) {
        (Target::Previous, _) | (_, None) => {
            let m = local_manifest(root, id)?;
            // Going back is the operator's own act, but not around the rule:
            // the release may never have been checked against it.
            if let Some(trust) = req.host.trust {
                let Some(store) = store else {
                    return Err(UsageError(format!(
                        "going back to {id} under --require checks its signatures in the store: pass --store, or deploy without --require"
                    ))
                    .into());
                };
                trust.check(store, id, &m.to_canonical_bytes())?;
            }
            Ok(m)
        }
        (_, Some(store)) => {
            let m = load_manifest(store, id)?;
            if let Some(trust) = req.host.trust {
                trust.check(store, id, &m.to_canonical_bytes())?;
            }
            Ok(m)
        }
    }
}
