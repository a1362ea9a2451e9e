//! `verbatim deploy`: make this host run a release.
//!
//! Under the host lock: clean what a crash left; resolve the manifest (an
//! environment's live one, a manifest, or the host's previous release);
//! fetch and verify it into `releases/<hex>/` (a release already there is
//! re-checked file by file, and fetched again if it was modified); link
//! the shared paths; `pre_activate`; flip `current`; `post_activate` and
//! `check`, flipping back if either fails; keep the newest releases; report
//! to `envs/<env>/hosts/<host>.json`. `host::Root` does the disk work;
//! hooks run through `crate::process::run`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use serde::Serialize;

use crate::cli::{DeployArgs, Global, HostArgs};
use crate::digest::Digest;
use crate::environments::reader::Reader;
use crate::environments::reports::{self, Report, State};
use crate::error::{CheckFailed, Interrupted, UsageError};
use crate::host::{HostEvent, Outcome, Root};
use crate::manifest::{Deploy, Manifest};
use crate::output::Printer;
use crate::process::Ended;
use crate::store::{Body, Key, PutMode, PutOptions, Store};

/// What `deploy --json` prints (also the fields beside `error` when it fails).
#[derive(Debug, Serialize)]
pub struct DeployJson {
    pub root: PathBuf,
    pub host: String,
    /// The environment followed, if one was named.
    pub env: Option<String>,
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

/// One deploy, as `deploy` and `agent` ask for it.
pub struct Request<'a> {
    pub target: Target<'a>,
    pub root: &'a Path,
    pub host: &'a str,
    pub hook_env: &'a [(String, String)],
    pub wait: bool,
    /// Whose signatures a manifest needs (not checked when going back to
    /// the previous release, which was checked when it was deployed).
    pub trust: Option<&'a crate::trust::Trust>,
}

pub fn run(g: &Global, args: &DeployArgs, printer: &Printer) -> Result<()> {
    let host = host_id(&args.host)?;
    let target = match (&args.to, &args.target) {
        (Some(crate::cli::DeployTo::Previous), _) => Target::Previous,
        (None, Some(t)) => target_of(t),
        (None, None) => unreachable!("clap requires a target or --to"),
    };
    // Hosts usually have no verbatim.toml: --store alone is enough. Going
    // back needs no store (only to report).
    let store = match target {
        Target::Previous => super::open_store_for(g).ok(),
        _ => Some(super::open_store_for(g)?),
    };
    let trust =
        crate::trust::Trust::new(args.trust.allowed_signers.as_deref(), &args.trust.require)?;
    let signals = crate::signals::Signals::install().context("installing signal handlers")?;
    let req = Request {
        target,
        root: &args.host.root,
        host: &host,
        hook_env: &args.host.hook_env,
        wait: !args.no_wait,
        trust: trust.as_ref(),
    };
    let result = if args.dry_run {
        plan(store.as_deref(), &req, printer)
    } else {
        deploy(store.as_deref(), &req, printer)
    };
    drop(signals);
    let report = result.map_err(|e| match crate::signals::caught() {
        // A download or unpack the signal cut short: say so, exit 128 + it.
        Some(signal) if !e.chain().any(|c| c.is::<Interrupted>()) => Interrupted {
            signal,
            message: format!(
                "deploy stopped by {} ({e:#}); `current` was not changed",
                crate::signals::signal_name(signal)
            ),
        }
        .into(),
        _ => e,
    })?;
    printer.result(format!(
        "{} {} {}",
        report.root.join(crate::host::CURRENT).display(),
        report.result,
        report.manifest
    ))?;
    printer.json(&report)?;
    Ok(())
}

/// An environment name is taken as one (a manifest file needs a `/` or
/// `.json`, a digest prefix is hex).
fn target_of(arg: &str) -> Target<'_> {
    let looks_like_digest =
        arg.starts_with("sha256:") || arg.chars().all(|c| c.is_ascii_hexdigit());
    if crate::config::check_env_name(arg).is_ok() && !looks_like_digest {
        Target::Env(arg)
    } else {
        Target::Manifest(arg)
    }
}

/// `--host-id`, else the hostname, checked.
pub fn host_id(args: &HostArgs) -> Result<String> {
    let id = match &args.host_id {
        Some(id) => id.clone(),
        None => hostname().context("reading the hostname for the host id; pass --host-id")?,
    };
    reports::check_host_id(&id).map_err(|e| {
        UsageError(match &args.host_id {
            Some(_) => format!("--host-id / VERBATIM_HOST_ID: {e}"),
            None => format!("{e} (it is this machine's hostname); pass --host-id"),
        })
    })?;
    Ok(id)
}

fn hostname() -> std::io::Result<String> {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for writes of its length.
    if unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    Ok(String::from_utf8_lossy(&buf[..end]).into_owned())
}

/// The deploy itself. On a hook failure it returns `CheckFailed` (or
/// `Interrupted`), with its `--json` document set as the partial output.
pub fn deploy(
    store: Option<&dyn Store>,
    req: &Request<'_>,
    printer: &Printer,
) -> Result<DeployJson> {
    let root = Root::lock(
        req.root,
        req.wait,
        |msg| printer.note(msg),
        || crate::signals::caught().is_some(),
    )?;
    // Held for the whole deploy; taking it removed what a killed fetch or
    // deploy left staged, unless another one is staging now.
    let _staging = super::fetch::hold_staging(&root, printer)?;
    for name in root
        .cleanup()
        .context("removing what an earlier deploy left")?
    {
        printer.note(format!(
            "removed {name}, left by an interrupted fetch or deploy"
        ));
    }
    if let Some(a) = root
        .interrupted()
        .context("reading the host's activation marker")?
    {
        recover(&root, &a, req.hook_env, printer)?;
    }
    let current = root.current().map_err(UsageError)?;
    let history = root
        .history(|n| {
            printer.warn(format!(
                "{}: line {n} is unreadable; skipped",
                root.dir().join(".verbatim/history.jsonl").display()
            ))
        })
        .context("reading the host history")?;

    let (id, env, seq) = resolve(store, &root, current.as_ref(), &history, &req.target)?;
    let mut out = DeployJson::unchanged(&root, req.host, env.clone(), &id, current.as_ref());
    let reporter = Reporter {
        store,
        env: env.as_deref(),
        host: req.host,
        manifest: id.to_string(),
        seq,
        printer,
    };
    if current == Some(id) {
        printer.note(format!(
            "{id} is already current in {}; nothing to do",
            root.dir().display()
        ));
        out.reported = reporter.send(State::Active, current.as_ref(), None);
        return Ok(out);
    }

    let manifest = manifest_for(store, req, &root, &id)?;
    let settings = manifest.deploy.clone().unwrap_or_default();
    reporter.send(State::Deploying, current.as_ref(), None);
    let hooks = Hooks {
        settings: &settings,
        root: root.dir(),
        env: env.as_deref().unwrap_or(""),
        extra: req.hook_env,
        printer,
        check_passed: Default::default(),
    };
    // Any failure from here on is reported (`failed`), unless a signal
    // cut it short: that is not the release's fault, and the next deploy
    // tries again.
    let result = (|| -> Result<()> {
        // The release, verified, with its shared links.
        let dir = root.release_dir(&id);
        // Only a real directory can be what was unpacked: a symlink there
        // (even to an identical copy) is replaced, never followed.
        let real_dir = |d: &Path| std::fs::symlink_metadata(d).is_ok_and(|m| m.is_dir());
        if let Ok(meta) = std::fs::symlink_metadata(&dir) {
            let why = if meta.is_dir() {
                root.modified(&id, &settings.shared)
            } else {
                Some("it is no longer a directory".to_owned())
            };
            if let Some(why) = why {
                printer.warn(format!(
                    "release {} was modified since it was unpacked ({why}); fetching it again",
                    dir.display()
                ));
                root.discard(&id)
                    .with_context(|| format!("removing the modified release {}", dir.display()))?;
            }
        }
        if !real_dir(&dir) {
            let Some(store) = store else {
                return Err(UsageError(format!(
                    "release {} is gone or was modified, and no store is given to fetch it again: pass --store",
                    dir.display()
                ))
                .into());
            };
            let (staging, entries) =
                super::fetch::stage(store, &id, &manifest, &root.releases(), printer)?;
            let n = entries.len();
            root.write_record(&id, entries)
                .context("recording the release's files")?;
            root.link_shared(staging.path(), &settings.shared)
                .context("linking the shared paths")?;
            crate::host::sync_tree(staging.path()).context("syncing the unpacked release")?;
            // The rename is the "finished" mark.
            let staged = staging.keep();
            if let Err(e) = std::fs::rename(&staged, &dir) {
                let _ = std::fs::remove_dir_all(&staged);
                return Err(e)
                    .with_context(|| format!("moving the release into {}", dir.display()));
            }
            std::fs::File::open(root.releases())
                .and_then(|d| d.sync_all())
                .context("syncing the releases directory")?;
            out.fetched = true;
            printer.note(format!(
                "unpacked {n} entries of {id} into {}",
                dir.display()
            ));
        }
        root.link_shared(&dir, &settings.shared)
            .with_context(|| format!("linking the shared paths of {}", dir.display()))?;
        let manifest_path = root.manifest_path(&id);
        let bytes = manifest.to_canonical_bytes();
        if std::fs::read(&manifest_path).ok().as_deref() != Some(&bytes[..]) {
            crate::store::local::write_atomic(&manifest_path, &bytes)
                .with_context(|| format!("writing {}", manifest_path.display()))?;
        }

        let failed = |detail: String, now: Option<&Digest>, ended: &Ended| {
            let _ = root.append(&HostEvent {
                time: crate::clock::rfc3339(crate::clock::now()),
                manifest: id.to_string(),
                outcome: Outcome::Failed,
                current: now.map(Digest::to_string),
                env: env.clone(),
                seq,
                detail: Some(detail.clone()),
            });
            let _ = root.end_activation();
            match ended {
                Ended::Interrupted(signal) => anyhow::Error::new(Interrupted {
                    signal: *signal,
                    message: detail,
                }),
                _ => CheckFailed(detail).into(),
            }
        };

        if let Some(ended) = hooks.run("pre_activate", &id, current.as_ref(), &dir) {
            let detail = format!(
                "pre_activate hook failed ({}); current still names {}",
                describe(&ended),
                current.map_or("nothing".into(), |c| c.to_string())
            );
            return Err(failed(detail, current.as_ref(), &ended));
        }
        root.begin_activation(current.as_ref(), &id)
            .context("recording the activation about to start")?;
        root.flip(Some(&id)).with_context(|| {
            format!(
                "pointing {} at {}",
                root.dir().join("current").display(),
                dir.display()
            )
        })?;
        printer.note(format!("current -> releases/{}", id.hex()));

        let ended = hooks
            .run("post_activate", &id, current.as_ref(), &dir)
            .map(|e| ("post_activate hook", e))
            .or_else(|| {
                hooks
                    .run("check", &id, current.as_ref(), &dir)
                    .map(|e| ("check", e))
            });
        if let Some((what, ended)) = ended {
            root.flip(current.as_ref()).with_context(|| {
                format!(
                    "{what} failed ({}), and flipping current back failed",
                    describe(&ended)
                )
            })?;
            if let Some(prev) = &current {
                // The app server goes back to the previous release too.
                let prev_dir = root.release_dir(prev);
                if let Some(again) = hooks.run("post_activate", prev, Some(&id), &prev_dir) {
                    printer.warn(format!(
                        "post_activate for the previous release {prev} failed too ({})",
                        describe(&again)
                    ));
                }
            }
            let detail = format!(
                "{what} failed ({}); current flipped back to {}",
                describe(&ended),
                current.map_or("nothing (removed)".into(), |c| c.to_string())
            );
            return Err(failed(detail, current.as_ref(), &ended));
        }

        root.append(&HostEvent {
            time: crate::clock::rfc3339(crate::clock::now()),
            manifest: id.to_string(),
            outcome: Outcome::Activated,
            current: Some(id.to_string()),
            env: env.clone(),
            seq,
            detail: None,
        })
        .context("appending to the host history")?;
        root.end_activation()
            .context("clearing the host's activation marker")?;
        out.result = "activated";
        let history = root.history(|_| {}).context("reading the host history")?;
        let keep_too: Vec<Digest> = std::iter::once(id).chain(current).collect();
        match root.prune(&history, settings.keep as usize, &keep_too, false) {
            Ok(removed) => {
                for r in &removed {
                    printer.note(format!("removed release {r} (keep = {})", settings.keep));
                }
                out.removed = removed.iter().map(Digest::to_string).collect();
            }
            Err(e) => printer.warn(format!("could not remove old releases: {e}")),
        }
        Ok(())
    })();
    match result {
        Ok(()) => {
            out.reported = reporter.send(State::Active, Some(&id), hooks.check_passed.take());
            Ok(out)
        }
        Err(e) => {
            out.result = "failed";
            let interrupted =
                crate::signals::caught().is_some() || e.chain().any(|c| c.is::<Interrupted>());
            if !interrupted {
                let now = root.current().ok().flatten();
                out.reported = reporter.send(State::Failed, now.as_ref(), Some(format!("{e:#}")));
            }
            printer.partial(&out);
            Err(e)
        }
    }
}

/// Puts `current` back where an interrupted activation (a deploy killed
/// after its flip, before its check passed) found it, runs that release's
/// `post_activate` again (the app server may run the unchecked one), and
/// records the attempt as failed.
fn recover(
    root: &Root,
    a: &crate::host::Activating,
    hook_env: &[(String, String)],
    printer: &Printer,
) -> Result<()> {
    let from = a
        .from
        .as_deref()
        .and_then(|f| f.parse::<Digest>().ok())
        .filter(|d| std::fs::symlink_metadata(root.release_dir(d)).is_ok_and(|m| m.is_dir()));
    printer.warn(format!(
        "a deploy of {} was interrupted before its check passed; putting current back on {}",
        if a.to.is_empty() { "a release" } else { &a.to },
        from.map_or("nothing".into(), |f| f.to_string())
    ));
    root.flip(from.as_ref())
        .context("putting current back after an interrupted deploy")?;
    if let Some(f) = &from {
        let settings = local_manifest(root, f)?.deploy.unwrap_or_default();
        let hooks = Hooks {
            settings: &settings,
            root: root.dir(),
            env: "",
            extra: hook_env,
            printer,
            check_passed: Default::default(),
        };
        let to = a.to.parse::<Digest>().ok();
        if let Some(e) = hooks.run("post_activate", f, to.as_ref(), &root.release_dir(f)) {
            printer.warn(format!("post_activate for {f} failed ({})", describe(&e)));
        }
    }
    root.append(&HostEvent {
        time: crate::clock::rfc3339(crate::clock::now()),
        manifest: a.to.clone(),
        outcome: Outcome::Failed,
        current: from.map(|f| f.to_string()),
        env: None,
        seq: None,
        detail: Some("interrupted before its check passed; current put back".into()),
    })
    .context("appending to the host history")?;
    root.end_activation()
        .context("clearing the host's activation marker")?;
    Ok(())
}

/// `deploy --dry-run`: what a deploy would do, from the root as it is,
/// without a lock and without writing anything (the manifest and its
/// signatures are read; the artifact is not).
fn plan(store: Option<&dyn Store>, req: &Request<'_>, printer: &Printer) -> Result<DeployJson> {
    let root = Root::view(req.root).context("resolving the deploy root")?;
    let current = root.current().map_err(UsageError)?;
    let history = root.history(|_| {}).context("reading the host history")?;
    let interrupted = root
        .interrupted()
        .context("reading the host's activation marker")?;
    if let Some(a) = &interrupted {
        printer.note(format!(
            "would first put current back where an interrupted deploy of {} found it",
            a.to
        ));
    }
    let current = match &interrupted {
        Some(a) => a.from.as_deref().and_then(|f| f.parse().ok()),
        None => current,
    };
    let (id, env, _) = resolve(store, &root, current.as_ref(), &history, &req.target)?;
    let mut out = DeployJson::unchanged(&root, req.host, env.clone(), &id, current.as_ref());
    if current == Some(id) && interrupted.is_none() {
        printer.note(format!(
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
        Some(why) => printer.note(format!(
            "would fetch {} ({}) into {}: {why}",
            manifest.artifact.key,
            crate::text::human_bytes(manifest.artifact.size),
            dir.display()
        )),
        None => printer.note(format!("{} is on this host, unmodified", dir.display())),
    }
    let hooks = &settings.hooks;
    for (name, cmd) in [
        ("pre_activate", &hooks.pre_activate),
        ("post_activate", &hooks.post_activate),
        ("check", &hooks.check),
    ] {
        if let Some(cmd) = cmd {
            printer.note(format!("would run {name}: {cmd}"));
        }
        if name == "pre_activate" {
            printer.note(format!(
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
        printer.note(format!(
            "would remove release {r} (keep = {})",
            settings.keep
        ));
    }
    out.removed = removed.iter().map(Digest::to_string).collect();
    out.result = "would-activate";
    printer.note("dry run: nothing written");
    Ok(out)
}

/// What `target` names: the manifest, the environment to report to, and
/// the event of its pointer.
fn resolve(
    store: Option<&dyn Store>,
    root: &Root,
    current: Option<&Digest>,
    history: &[HostEvent],
    target: &Target<'_>,
) -> Result<(Digest, Option<String>, Option<u64>)> {
    Ok(match *target {
        Target::Env(env) => {
            let store = store.expect("an environment needs the store");
            let state = Reader::new(store, crate::config::DEFAULT_CONCURRENCY).load(env)?;
            let Some((pointer, _)) = state.pointer else {
                return Err(UsageError(format!(
                    "nothing is live in environment `{env}` in {}: promote a manifest there first, or check the environment's name and --store",
                    store.location()
                ))
                .into());
            };
            let id: Digest = pointer.manifest.parse().map_err(anyhow::Error::msg)?;
            (id, Some(env.to_owned()), Some(pointer.seq))
        }
        Target::Manifest(arg) => {
            let store = store.expect("a manifest needs the store");
            (
                crate::environments::resolve::resolve_manifest(store, arg)?,
                None,
                None,
            )
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
            (prev, env, None)
        }
    })
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
        (Target::Previous, _) | (_, None) => local_manifest(root, id),
        (_, Some(store)) => {
            let m = crate::objects::load_manifest(store, id)?;
            if let Some(trust) = req.trust {
                trust.check(store, id, &m.to_canonical_bytes())?;
            }
            Ok(m)
        }
    }
}

/// A manifest kept beside its release, checked against its id.
fn local_manifest(root: &Root, id: &Digest) -> Result<Manifest> {
    let path = root.manifest_path(id);
    let bytes = crate::safe_fs::read_regular(&path)
        .with_context(|| format!("reading {}", path.display()))?;
    let m = Manifest::parse(&bytes).with_context(|| format!("parsing {}", path.display()))?;
    if m.id() != *id {
        return Err(crate::error::IntegrityError(format!(
            "{} is not manifest {id}: it was modified",
            path.display()
        ))
        .into());
    }
    Ok(m)
}

fn describe(ended: &Ended) -> String {
    match ended {
        Ended::Passed(d) | Ended::Failed(d) => d.clone(),
        Ended::Interrupted(sig) => format!("interrupted by {}", crate::signals::signal_name(*sig)),
    }
}

/// The hooks of one deploy.
struct Hooks<'a> {
    settings: &'a Deploy,
    root: &'a Path,
    env: &'a str,
    extra: &'a [(String, String)],
    printer: &'a Printer,
    /// How the check hook passed, for the report.
    check_passed: std::cell::RefCell<Option<String>>,
}

impl Hooks<'_> {
    /// Runs hook `name` (if the manifest has one) in `dir` for `manifest`;
    /// `None` when it passed or there is none, else how it failed.
    fn run(
        &self,
        name: &str,
        manifest: &Digest,
        previous: Option<&Digest>,
        dir: &Path,
    ) -> Option<Ended> {
        let h = &self.settings.hooks;
        let (cmd, timeout) = match name {
            "pre_activate" => (h.pre_activate.as_deref()?, self.settings.hook_timeout),
            "post_activate" => (h.post_activate.as_deref()?, self.settings.hook_timeout),
            _ => (h.check.as_deref()?, self.settings.check_timeout),
        };
        let (m, p) = (
            manifest.to_string(),
            previous.map(Digest::to_string).unwrap_or_default(),
        );
        let (release, root) = (dir.to_string_lossy(), self.root.to_string_lossy());
        let mut vars: Vec<(&str, &str)> = self
            .extra
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        vars.extend([
            ("VERBATIM_ENV", self.env),
            ("VERBATIM_MANIFEST", m.as_str()),
            ("VERBATIM_PREVIOUS_MANIFEST", p.as_str()),
            ("VERBATIM_RELEASE_DIR", &release),
            ("VERBATIM_ROOT", &root),
        ]);
        let label = match name {
            "check" => "check hook".to_owned(),
            other => format!("{other} hook"),
        };
        match crate::process::run(
            &crate::process::Job {
                cmd,
                label: &label,
                cwd: Some(dir),
                vars: &vars,
                timeout: Duration::from_secs(timeout),
            },
            self.printer,
        ) {
            Ended::Passed(detail) => {
                if name == "check" {
                    *self.check_passed.borrow_mut() = Some(format!("check passed: {detail}"));
                }
                None
            }
            other => Some(other),
        }
    }
}

/// Sends the host's report, if it follows an environment. A report that
/// cannot be written is a warning: the host runs what it runs either way.
struct Reporter<'a> {
    store: Option<&'a dyn Store>,
    env: Option<&'a str>,
    host: &'a str,
    manifest: String,
    seq: Option<u64>,
    printer: &'a Printer,
}

impl Reporter<'_> {
    fn send(&self, state: State, running: Option<&Digest>, detail: Option<String>) -> bool {
        let (Some(store), Some(env)) = (self.store, self.env) else {
            return false;
        };
        let report = Report {
            schema: reports::SCHEMA.into(),
            env: env.to_owned(),
            host: self.host.to_owned(),
            manifest: self.manifest.clone(),
            seq: self.seq,
            state,
            running: running.map(Digest::to_string),
            detail,
            time: crate::clock::rfc3339(crate::clock::now()),
            tool: format!("verbatim {}", env!("CARGO_PKG_VERSION")),
        };
        let sent = Key::new(reports::report_key(env, self.host))
            .map_err(anyhow::Error::from)
            .and_then(|key| {
                store
                    .put(
                        &key,
                        Body::bytes(&report.to_bytes()),
                        PutMode::Overwrite,
                        &PutOptions::json(),
                    )
                    .map_err(anyhow::Error::from)
            });
        match sent {
            Ok(_) => true,
            Err(e) => {
                self.printer
                    .warn(format!("could not report to the store: {e:#}"));
                false
            }
        }
    }
}
