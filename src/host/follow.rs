//! What a host accepts from an environment before it acts on it, as
//! TUF's client does:
//!
//! - the history must extend the newest event this root accepted before
//!   (its high-water mark, `.verbatim/seen/<env>.json`): never fewer
//!   events, never another event at the same place, never a pointer on an
//!   older event. Exit 5, naming both.
//! - with `--require-event-signer`, the live event must be signed by each
//!   principal named (its keys from the host's own `allowed_signers`), so a
//!   pointer or event written without the key moves no host. A rollback is
//!   an event too.
//! - with `--max-age`, the newest signed statement about the environment
//!   (the live event's own time, or a timestamp vouching for it, see
//!   `environments::timestamp`) must be that recent: exit 5, and the host
//!   reports `stale`.
//!
//! The mark moves only after every check passed ([`Accepted::remember`]).
//! Going back on the host (`deploy --to previous`) is the operator's own
//! act and reads none of this.

use std::path::Path;

use anyhow::{Context, Result};

use super::root::{Root, Seen};
use crate::clock::{now, parse_rfc3339, rfc3339};
use crate::digest::Digest;
use crate::environments::event::event_key;
use crate::environments::policy_store::not_in_policy;
use crate::environments::reader::{get_record, EnvState, Reader};
use crate::environments::resolve::resolve_manifest;
use crate::environments::signatures::event_signers;
use crate::environments::timestamp::read_timestamp;
use crate::error::{IntegrityError, Stale, UsageError};
use crate::store::{Key, Store};
use crate::text::human_duration;
use crate::trust::{Trust, EVENT_NAMESPACE};

/// An environment's live move, accepted by a host.
#[derive(Debug, Clone)]
pub struct Accepted {
    /// The environment.
    pub env: String,
    /// The manifest its pointer names.
    pub manifest: Digest,
    /// The event that made it live.
    pub seq: u64,
    /// The sha256 of that event's stored bytes.
    pub event: Digest,
    /// The rollout step that event records, if it is one: then what the
    /// host runs depends on its id (`rollout::assign`).
    pub rollout: Option<crate::environments::rollout::Rollout>,
}

/// Reads `env` and accepts its live move for the host at `root`, or says
/// why not: nothing live (exit 2), a history that does not extend the
/// root's mark, a move not signed as `trust` requires (exit 5), or one too
/// old for `--max-age` ([`Stale`], exit 5).
pub fn accept(
    store: &dyn Store,
    root: &Root,
    env: &str,
    trust: Option<&Trust>,
) -> Result<Accepted> {
    let reader = Reader::new(store, crate::config::DEFAULT_CONCURRENCY);
    let state = reader.load(env)?;
    let (Some((pointer, _)), Some(live)) = (&state.pointer, state.live_event()) else {
        if let Some(unknown) = not_in_policy(&reader, env) {
            return Err(unknown);
        }
        return Err(UsageError(format!(
            "nothing is live in environment `{env}` in {}: promote a manifest there first, or check the environment's name and --store",
            store.location()
        ))
        .into());
    };
    let accepted = Accepted {
        env: env.to_owned(),
        manifest: pointer.manifest.parse().map_err(anyhow::Error::msg)?,
        seq: live.seq,
        event: state.digests[state.applied - 1],
        rollout: live.rollout.clone(),
    };
    extends_mark(root, &state, &accepted)?;
    let Some(trust) = trust.filter(|t| !t.require_event.is_empty()) else {
        return Ok(accepted);
    };
    signed_as_required(store, trust, &accepted)?;
    if let Some(max_age) = trust.max_age {
        fresh_enough(store, trust, &accepted, &live.time, max_age)?;
    }
    Ok(accepted)
}

impl Accepted {
    /// Moves `root`'s mark for the environment up to this event (never
    /// down): called once every check of the move passed.
    pub fn remember(&self, root: &Root) -> Result<()> {
        let higher = root
            .seen(&self.env)
            .context("reading the host's mark")?
            .is_none_or(|s| s.seq < self.seq);
        if higher {
            root.set_seen(&Seen {
                env: self.env.clone(),
                seq: self.seq,
                event: self.event.to_string(),
                time: rfc3339(now()),
            })
            .with_context(|| format!("writing {}", root.seen_path(&self.env).display()))?;
        }
        Ok(())
    }
}

/// `fetch`'s `<manifest>`: an environment is accepted as `deploy` would
/// (reading the mark of the root at `into`, not moving it) when `trust`
/// requires signed events; anything else resolves as usual.
pub fn resolve_for_fetch(
    store: &dyn Store,
    into: &Path,
    target: &str,
    trust: Option<&Trust>,
) -> Result<Digest> {
    let names_env = crate::config::check_env_name(target).is_ok()
        && target.parse::<Digest>().is_err()
        && !target.ends_with(".json");
    match trust.filter(|t| !t.require_event.is_empty()) {
        Some(t) if names_env => Ok(accept(store, &Root::view(into)?, target, Some(t))?.manifest),
        _ => resolve_manifest(store, target),
    }
}

/// Refuses a history that does not extend what `root` accepted of it.
fn extends_mark(root: &Root, state: &EnvState, live: &Accepted) -> Result<()> {
    let env = &state.env;
    let Some(mark) = root.seen(env).context("reading the host's mark")? else {
        return Ok(());
    };
    let path = root.seen_path(env);
    let accepted = format!(
        "this host accepted event {} ({}) on {} ({})",
        mark.seq,
        mark.event,
        mark.time,
        path.display()
    );
    let ours = usize::try_from(mark.seq)
        .ok()
        .and_then(|s| s.checked_sub(1))
        .and_then(|i| state.digests.get(i));
    let why = match ours {
        None => format!(
            "the history of {env} ends at event {}, but {accepted}: events were removed",
            state.digests.len()
        ),
        Some(d) if d.to_string() != mark.event => format!(
            "event {} of {env} is {d}, but {accepted}: the history was rewritten",
            mark.seq
        ),
        Some(_) if live.seq < mark.seq => format!(
            "the pointer of {env} names event {}, older than event {}: {accepted}, and a pointer never moves back",
            live.seq, mark.seq
        ),
        Some(_) => return Ok(()),
    };
    Err(IntegrityError(format!(
        "{why}. Nothing was changed on this host. If the team really rewound the store, remove {} to accept its history as it is now",
        path.display()
    ))
    .into())
}

/// Refuses the live event unless each principal of `--require-event-signer`
/// signed its stored bytes with a key the host's file lists for it.
fn signed_as_required(store: &dyn Store, trust: &Trust, live: &Accepted) -> Result<()> {
    let key = Key::new(event_key(&live.env, live.seq))?;
    let Some((bytes, _)) = get_record(store, &key)? else {
        return Err(IntegrityError(format!("{key} disappeared while it was read")).into());
    };
    if Digest::of(&bytes) != live.event {
        return Err(IntegrityError(format!("{key} changed while it was read")).into());
    }
    let keys = event_signers(store, &live.env, live.seq, &bytes)?;
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
    if missing.is_empty() {
        return Ok(());
    }
    Err(IntegrityError(format!(
        "event {} of {} (the move to {}) is not signed by {} (allowed signers: {}; {} valid signature(s) by other keys): a pointer or event written without the key moves no host. Sign moves with `promote --sign-key`/`rollback --sign-key`",
        live.seq,
        live.env,
        live.manifest,
        missing.join(", "),
        trust.source.display(),
        keys.len()
    ))
    .into())
}

/// Refuses a move whose newest signed statement (the event's own time, or
/// a timestamp signed by a required principal that names this very event
/// and has not expired) is older than `max_age` seconds.
fn fresh_enough(
    store: &dyn Store,
    trust: &Trust,
    live: &Accepted,
    event_time: &str,
    max_age: u64,
) -> Result<()> {
    let at = now();
    let mut newest = parse_rfc3339(event_time);
    let mut said = format!("its event {} was signed at {event_time}", live.seq);
    if let Some(t) = read_timestamp(store, &live.env)? {
        let s = &t.signed;
        let names_it = s.seq == live.seq && s.event == live.event.to_string();
        let signers = t.signers();
        let by_required = trust.require_event.iter().all(|p| {
            signers.iter().any(|k| {
                trust
                    .signers
                    .allows(k, p, crate::trust::TIMESTAMP_NAMESPACE, at)
            })
        });
        match s.times() {
            Some((time, expires)) if names_it && by_required && at < expires => {
                if newest.is_none_or(|n| time > n) {
                    newest = Some(time);
                    said = format!("its timestamp was signed at {}", s.time);
                }
            }
            _ => {
                said.push_str(&format!(
                    "; its timestamp (of event {}, signed at {}, expiring {}) does not count: {}",
                    s.seq,
                    s.time,
                    s.expires,
                    if !names_it {
                        "it names another event"
                    } else if !by_required {
                        "it is not signed by every required principal"
                    } else {
                        "it has expired"
                    }
                ));
            }
        }
    }
    let age = newest.map(|n| at.saturating_sub(n));
    if age.is_some_and(|a| a <= max_age) {
        return Ok(());
    }
    Err(Stale(format!(
        "{} looks frozen: the newest signed statement about it is {}, more than --max-age {} allows ({said}). Nothing was changed on this host. Whoever holds the key re-signs it with `verbatim timestamp {} --sign-key KEY`; until then, check who can write the store",
        live.env,
        age.map_or("of unknown age".into(), |a| format!("{} old", human_duration(a))),
        human_duration(max_age),
        live.env
    ))
    .into())
}
