//! `verbatim promote` and `verbatim rollback`: move an environment's pointer.
//!
//! The protocol (see `environments` for why it is safe):
//! 1. read and cross-check the history and the pointer (`history::Reader`;
//!    anything inconsistent stops here with an integrity error);
//! 2. settle: if the newest event is one the pointer has not applied (a
//!    crashed or in-flight move), complete it by writing the pointer it
//!    implies, once its manifest's objects are checked;
//! 3. check: every object the manifest names exists with the right size, and
//!    the gates pass (or `--force --reason`);
//! 4. create event `n + 1` (create-only: exactly one racer wins; the others
//!    exit with the lost-race code, naming the winner);
//! 5. compare-and-swap the pointer to what the event says.

use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use serde::Serialize;

use super::history::{self, EnvState, Reader};
use crate::cli::{Global, PromoteArgs, RollbackArgs};
use crate::config::Config;
use crate::digest::Digest;
use crate::environments::{self as envs, Event, Gate, Kind, Pointer};
use crate::exit::{CheckFailed, GateRefused, IntegrityError, LostRace, UsageError};
use crate::manifest::Manifest;
use crate::output::{escape, Printer};
use crate::store::{Body, ETag, Key, PutMode, PutOptions, Store, StoreError};

/// What a move did, as `--json` prints it.
#[derive(Debug, Serialize)]
pub struct MoveJson {
    pub env: String,
    /// `moved`, or `unchanged` when the manifest was already live.
    pub result: &'static str,
    pub manifest: String,
    pub previous: Option<String>,
    pub seq: u64,
    pub kind: Kind,
    pub gates: Vec<Gate>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rolled_back: Option<Box<MoveJson>>,
}

pub fn run_promote(g: &Global, args: &PromoteArgs, printer: &Printer) -> Result<()> {
    let cfg = super::load_config(g, Default::default())?;
    let store = super::open_store(&cfg)?;
    let reader = Reader::new(store.as_ref(), cfg.concurrency);
    let id = super::resolve_manifest_with(&reader, &args.manifest)?;
    let req = MoveRequest {
        env: &args.to,
        to: id,
        kind: Kind::Promote,
        reason: args.reason.clone(),
        force: args.force,
    };
    let mut report = move_with(&reader, &cfg, &req, None, printer)?;
    if let (Some(cmd), "moved") = (&args.check_cmd, report.result) {
        if let Err(why) = canary(cmd, args.check_timeout, &report, printer) {
            let Some(previous) = report.previous.clone() else {
                printer.json(&report)?;
                return Err(CheckFailed(format!(
                    "canary check failed ({why}) and {} had no earlier manifest to roll back to; it stays on {}",
                    args.to, report.manifest
                ))
                .into());
            };
            let back = MoveRequest {
                env: &args.to,
                to: previous.parse().map_err(anyhow::Error::msg)?,
                kind: Kind::AutoRollback,
                reason: Some(format!("canary check failed: {why}")),
                force: true,
            };
            let rolled = move_with(&reader, &cfg, &back, None, printer)?;
            printer.warn(format!(
                "canary check failed ({why}); rolled {} back to {previous}",
                args.to
            ));
            report.rolled_back = Some(Box::new(rolled));
            printer.json(&report)?;
            return Err(CheckFailed(format!(
                "canary check failed for {} on {}: {why}; rolled back to {previous}",
                report.manifest, args.to
            ))
            .into());
        }
        printer.note("canary check passed");
    }
    print_move(printer, &report)
}

fn print_move(printer: &Printer, report: &MoveJson) -> Result<()> {
    printer.result(format!(
        "{} {} {}",
        report.env, report.result, report.manifest
    ))?;
    printer.json(report)?;
    Ok(())
}

pub fn run_rollback(g: &Global, args: &RollbackArgs, printer: &Printer) -> Result<()> {
    let cfg = super::load_config(g, Default::default())?;
    let store = super::open_store(&cfg)?;
    envs::previous(&cfg.environments, &args.env).map_err(UsageError)?;
    let reader = Reader::new(store.as_ref(), cfg.concurrency);
    let current = settle(&reader, &args.env)?;
    let history = &current.events;
    let target = match &args.to {
        Some(to) if to.chars().all(|c| c.is_ascii_digit()) => {
            let seq = to
                .parse()
                .map_err(|_| UsageError(format!("--to {to}: not a sequence number")))?;
            envs::rollback_target(history, Some(seq)).map_err(UsageError)?
        }
        Some(to) => super::resolve_manifest_with(&reader, to)?.to_string(),
        None => envs::rollback_target(history, None)
            .map_err(|e| UsageError(format!("cannot roll back {}: {e}", args.env)))?,
    };
    let req = MoveRequest {
        env: &args.env,
        to: target.parse().map_err(anyhow::Error::msg)?,
        kind: Kind::Rollback,
        reason: args.reason.clone(),
        force: args.force,
    };
    // The target was chosen from this history: if it moves meanwhile, lose.
    let report = move_with(&reader, &cfg, &req, Some(current.seq()), printer)?;
    print_move(printer, &report)
}

pub struct MoveRequest<'a> {
    pub env: &'a str,
    pub to: Digest,
    pub kind: Kind,
    pub reason: Option<String>,
    pub force: bool,
}

/// Moves `req.env` to `req.to` by the protocol in the module docs.
pub fn move_pointer(
    store: &dyn Store,
    cfg: &Config,
    req: &MoveRequest<'_>,
    printer: &Printer,
) -> Result<MoveJson> {
    move_with(
        &Reader::new(store, cfg.concurrency),
        cfg,
        req,
        None,
        printer,
    )
}

/// [`move_pointer`] with a reader shared with the rest of the command and,
/// when the request was derived from the history at seq `based_on`, a lost
/// race if the environment has moved since.
fn move_with(
    reader: &Reader<'_>,
    cfg: &Config,
    req: &MoveRequest<'_>,
    based_on: Option<u64>,
    printer: &Printer,
) -> Result<MoveJson> {
    let store = reader.store();
    let env = req.env;
    let prev_env = envs::previous(&cfg.environments, env).map_err(UsageError)?;
    let current = settle(reader, env)?;
    if let Some(seen) = based_on.filter(|&s| s != current.seq()) {
        return Err(LostRace(format!(
            "{env} moved (event {}) while this move was being prepared from event {seen}; check `verbatim history {env}` and run again if still wanted",
            current.seq()
        ))
        .into());
    }
    let to = req.to.to_string();
    let previous = current.live().map(String::from);
    if previous.as_deref() == Some(to.as_str()) {
        printer.note(format!("{env} already runs {to}; nothing to do"));
        let seq = current.seq();
        return Ok(MoveJson {
            env: env.into(),
            result: "unchanged",
            manifest: to,
            previous,
            seq,
            kind: req.kind,
            gates: vec![],
            rolled_back: None,
        });
    }

    // Safety, not a gate: a manifest with a missing object never goes live.
    let manifest = super::load_manifest(store, &req.to)?;
    reader.mark_present(req.to);
    let missing = missing_objects(store, &manifest)?;
    if !missing.is_empty() {
        return Err(IntegrityError(format!(
            "refusing to point {env} at {to}: {} object(s) are not in the store: {}; publish it again",
            missing.len(),
            missing.join(", ")
        ))
        .into());
    }
    let mut gates = vec![Gate {
        gate: "objects".into(),
        ok: true,
        detail: format!("{} objects present", manifest.objects().len()),
    }];
    let gate = match req.kind {
        Kind::Promote => {
            // Only moves the pointer there has applied: a recorded move not
            // yet applied was never live there.
            let prev_state = prev_env.map(|p| reader.load(p)).transpose()?;
            let prev_history = prev_state.as_ref().map_or(&[][..], EnvState::applied);
            envs::order_gate(prev_env, prev_history, &to)
        }
        Kind::Rollback | Kind::AutoRollback => {
            let ok = envs::was_live(current.applied(), &to);
            Gate {
                gate: "was-live".into(),
                ok,
                detail: if ok {
                    format!("was live in {env} before")
                } else {
                    format!("was never live in {env}; promote it instead, or pass --force --reason")
                },
            }
        }
    };
    let refused = !gate.ok;
    gates.push(gate);
    if refused && !req.force {
        let g = gates.last().expect("just pushed");
        return Err(GateRefused(format!(
            "gate `{}` refused {to} for {env}: {}",
            g.gate, g.detail
        ))
        .into());
    }
    if refused {
        printer.warn(format!(
            "gates overridden with --force: {}",
            escape(req.reason.as_deref().unwrap_or(""))
        ));
    }

    let seq = current.next_seq()?;
    let event = Event {
        schema: envs::EVENT_SCHEMA.into(),
        env: env.into(),
        seq,
        kind: req.kind,
        time: envs::rfc3339(now()),
        actor: actor(),
        from: previous.clone(),
        to: to.clone(),
        reason: req.reason.clone(),
        forced: req.force && refused,
        gates: gates.clone(),
        check: None,
    };
    let bytes = event.to_bytes();
    let key = Key::new(envs::event_key(env, seq))?;
    match store.put(&key, Body::bytes(&bytes), PutMode::CreateOnly, &json_opts()) {
        Ok(_) => reader.remember(&event)?,
        Err(StoreError::AlreadyExists { .. }) => {
            let winner = read_event(store, env, seq)
                .map(|w| {
                    format!(
                        "{} moved {env} to {} at {} (event {seq})",
                        escape(&w.actor),
                        escape(&w.to),
                        escape(&w.time)
                    )
                })
                .unwrap_or_else(|_| format!("another process wrote event {seq} of {env}"));
            return Err(LostRace(format!(
                "lost the race to move {env}: {winner}; check `verbatim status` and run again if still wanted"
            ))
            .into());
        }
        Err(e) => return Err(e).with_context(|| format!("recording event {seq} of {env}")),
    }
    write_pointer(
        reader,
        env,
        &event.pointer(),
        current.pointer.map(|(_, e)| e),
    )?;
    printer.note(format!(
        "{env}: {} → {to} (event {seq})",
        previous.as_deref().unwrap_or("nothing")
    ));
    Ok(MoveJson {
        env: env.into(),
        result: "moved",
        manifest: to,
        previous,
        seq,
        kind: req.kind,
        gates,
        rolled_back: None,
    })
}

/// The objects of `m` that are not stored with their size, described. Many
/// assets are checked with one listing rather than a request each.
fn missing_objects(store: &dyn Store, m: &Manifest) -> Result<Vec<String>> {
    const LIST_ABOVE: usize = 8;
    let listed: Option<BTreeMap<Key, u64>> = if m.assets.len() > LIST_ABOVE {
        Some(
            store
                .list("assets/")?
                .into_iter()
                .map(|l| (l.key, l.size))
                .collect(),
        )
    } else {
        None
    };
    let mut missing = Vec::new();
    for o in m.objects() {
        let key = Key::new(o.key.clone())?;
        let size = match &listed {
            Some(sizes) if o.key.starts_with("assets/") => sizes.get(&key).copied(),
            _ => store.head(&key)?.map(|meta| meta.size),
        };
        match size {
            Some(size) if size == o.size => {}
            Some(size) => missing.push(format!("{} (size {size} instead of {})", o.key, o.size)),
            None => missing.push(format!("{} (missing)", o.key)),
        }
    }
    Ok(missing)
}

/// Writes the pointer for an event we created. If the swap loses, someone
/// completed our move for us (see `settle`); anything else is a lost race.
fn write_pointer(
    reader: &Reader<'_>,
    env: &str,
    pointer: &Pointer,
    expected: Option<ETag>,
) -> Result<()> {
    let key = Key::new(envs::pointer_key(env))?;
    let bytes = pointer.to_bytes();
    let mode = match expected {
        Some(etag) => PutMode::ReplaceIfMatch(etag),
        None => PutMode::CreateOnly,
    };
    match reader
        .store()
        .put(&key, Body::bytes(&bytes), mode, &json_opts())
    {
        Ok(_) => Ok(()),
        Err(StoreError::PreconditionFailed { .. } | StoreError::AlreadyExists { .. }) => {
            if reader.load(env)?.seq() >= pointer.seq {
                Ok(())
            } else {
                Err(LostRace(format!(
                    "the pointer of {env} moved while event {} was being applied",
                    pointer.seq
                ))
                .into())
            }
        }
        Err(e) => Err(e).with_context(|| format!("moving the pointer of {env}")),
    }
}

/// Reads and checks `env`, completing a move whose event exists but whose
/// pointer write did not happen (a crash between steps 4 and 5), once the
/// objects of its manifest are checked. Returns the settled state: the
/// pointer is the newest event's.
pub fn settle(reader: &Reader<'_>, env: &str) -> Result<EnvState> {
    for _ in 0..100 {
        let state = reader.load(env)?;
        let Some(pending) = state.pending() else {
            return Ok(state);
        };
        let event_key = envs::event_key(env, pending.seq);
        let id: Digest = pending.to.parse().map_err(anyhow::Error::msg)?;
        let manifest = super::load_manifest(reader.store(), &id)
            .with_context(|| format!("checking {event_key} before completing it"))?;
        let missing = missing_objects(reader.store(), &manifest)?;
        if !missing.is_empty() {
            return Err(IntegrityError(format!(
                "{event_key}: moves {env} to {id}, but {} of its object(s) are not in the store: {}; refusing to complete it",
                missing.len(),
                missing.join(", ")
            ))
            .into());
        }
        let key = Key::new(envs::pointer_key(env))?;
        let bytes = pending.pointer().to_bytes();
        let mode = match &state.pointer {
            Some((_, etag)) => PutMode::ReplaceIfMatch(etag.clone()),
            None => PutMode::CreateOnly,
        };
        match reader
            .store()
            .put(&key, Body::bytes(&bytes), mode, &json_opts())
        {
            Ok(_)
            | Err(StoreError::PreconditionFailed { .. } | StoreError::AlreadyExists { .. }) => {}
            Err(e) => return Err(e).with_context(|| format!("completing {event_key}")),
        }
    }
    Err(LostRace(format!("{env} keeps moving; try again")).into())
}

/// Event `seq` of `env` as stored, unchecked: only for naming the winner
/// of a race in a message.
fn read_event(store: &dyn Store, env: &str, seq: u64) -> Result<Event> {
    let key = Key::new(envs::event_key(env, seq))?;
    let (bytes, _) =
        history::get_record(store, &key)?.ok_or_else(|| anyhow::anyhow!("{key}: not found"))?;
    serde_json::from_slice(&bytes)
        .map_err(|e| IntegrityError(format!("{key}: not a valid event ({e})")).into())
}

fn json_opts() -> PutOptions {
    PutOptions {
        content_type: Some("application/json".into()),
        cache_control: Some("no-cache".into()),
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Who is acting: `VERBATIM_ACTOR`, the CI's user variable, else the OS user.
pub fn actor() -> String {
    for var in [
        "VERBATIM_ACTOR",
        "GITHUB_ACTOR",
        "GITLAB_USER_LOGIN",
        "BUILDKITE_BUILD_CREATOR",
        "USER",
        "LOGNAME",
    ] {
        if let Ok(v) = std::env::var(var) {
            if !v.trim().is_empty() {
                return v.trim().to_owned();
            }
        }
    }
    os_user().unwrap_or_else(|| "unknown".into())
}

/// The name of the current uid from /etc/passwd (no libc needed).
fn os_user() -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let uid = std::fs::metadata("/proc/self").ok()?.uid();
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|l| {
        let mut f = l.split(':');
        let name = f.next()?;
        (f.nth(1)?.parse::<u32>().ok()? == uid).then(|| name.to_owned())
    })
}

/// Runs the canary command; `Err` says why it failed.
fn canary(cmd: &str, timeout_secs: u64, moved: &MoveJson, printer: &Printer) -> Result<(), String> {
    printer.note(format!("running canary check: {cmd}"));
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(cmd)
        .env("VERBATIM_ENV", &moved.env)
        .env("VERBATIM_MANIFEST", &moved.manifest)
        .env(
            "VERBATIM_PREVIOUS_MANIFEST",
            moved.previous.as_deref().unwrap_or(""),
        )
        .stdin(Stdio::null())
        .stdout(Stdio::from(std::io::stderr())) // stdout is for results only
        .spawn()
        .map_err(|e| format!("cannot start `{cmd}`: {e}"))?;
    let deadline = Instant::now() + Duration::from_secs(timeout_secs);
    loop {
        match child.try_wait() {
            Ok(Some(status)) if status.success() => return Ok(()),
            Ok(Some(status)) => return Err(format!("`{cmd}` exited with {status}")),
            Ok(None) if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("`{cmd}` timed out after {timeout_secs}s"));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(50)),
            Err(e) => return Err(format!("waiting for `{cmd}`: {e}")),
        }
    }
}
