//! Putting a host back together after a deploy was killed mid-way:
//! `current` back to a release verified unmodified (or away when there
//! was none before), that release's own `post_activate` run again, the
//! attempt recorded as failed. Also what going back needs: a release's
//! manifest as kept beside it.

use anyhow::{Context, Result};

use super::hooks::{describe, Hooks};
use super::root::{HostEvent, Interrupted as Marker, Outcome, Root};
use super::stage::is_real_dir;
use crate::clock::{now, rfc3339};
use crate::digest::Digest;
use crate::error::IntegrityError;
use crate::manifest::Manifest;
use crate::safe_fs;

/// Puts `current` back where an interrupted activation (a deploy killed
/// after its flip, before its check passed) found it, runs that release's
/// own `post_activate` again (the app server may run the unchecked one),
/// and records the attempt as failed. `current` moves only to a release
/// verified unmodified, or away when there was none before; an unreadable
/// marker, or a release to go back to that is gone or modified, leaves it
/// where it is.
pub(super) fn recover(root: &Root, marker: &Marker, hooks: &Hooks<'_>) -> Result<()> {
    let progress = hooks.progress;
    let live = root.current().ok().flatten();
    let here = live.map_or("nothing".into(), |c| c.to_string());
    let (to, detail) = match marker {
        Marker::Unreadable(why) => {
            progress.warn(format!(
                "a deploy was interrupted before its check passed, and its marker is unreadable ({why}); current is left on {here}"
            ));
            (
                String::new(),
                format!("interrupted; marker unreadable, current left on {here}"),
            )
        }
        Marker::From(a) => {
            let back = match a.from.as_deref().map(str::parse::<Digest>) {
                None => Ok(None),
                Some(Ok(from)) => verified(root, &from).map(|()| Some(from)),
                Some(Err(e)) => Err(format!(
                    "it names `{}` ({e})",
                    a.from.as_deref().unwrap_or_default()
                )),
            };
            match back {
                Ok(from) => {
                    let there = from.map_or("nothing".into(), |f| f.to_string());
                    progress.warn(format!(
                        "a deploy of {} was interrupted before its check passed; putting current back on {there}",
                        a.to
                    ));
                    root.flip(from.as_ref())
                        .context("putting current back after an interrupted deploy")?;
                    if let Some(f) = &from {
                        post_activate_again(root, f, a.to.parse().ok().as_ref(), hooks);
                    }
                    (
                        a.to.clone(),
                        "interrupted before its check passed; current put back".into(),
                    )
                }
                Err(why) => {
                    progress.warn(format!(
                        "a deploy of {} was interrupted before its check passed, and the release before it cannot be verified ({why}); current is left on {here}",
                        a.to
                    ));
                    (a.to.clone(), format!("interrupted; the release before it cannot be verified ({why}), current left on {here}"))
                }
            }
        }
    };
    root.append(&HostEvent {
        time: rfc3339(now()),
        manifest: to,
        outcome: Outcome::Failed,
        current: root.current().ok().flatten().map(|f| f.to_string()),
        env: None,
        seq: None,
        detail: Some(detail),
    })
    .context("appending to the host history")?;
    root.end_activation()
        .context("clearing the host's activation marker")?;
    Ok(())
}

/// Whether release `id` is on disk as it was unpacked: a real directory,
/// its kept manifest intact, every file of its record unchanged.
pub(super) fn verified(root: &Root, id: &Digest) -> Result<(), String> {
    if !is_real_dir(&root.release_dir(id)) {
        return Err(format!("release {id} is not on this host"));
    }
    let shared = local_manifest(root, id)
        .map_err(|e| format!("{e:#}"))?
        .deploy
        .unwrap_or_default()
        .shared;
    match root.modified(id, &shared) {
        None => Ok(()),
        Some(why) => Err(format!("release {id} was modified: {why}")),
    }
}

/// Runs release `prev`'s own `post_activate` (from the manifest kept
/// beside it) after `current` went back to it from `to`: the hooks of the
/// release that failed are not the ones to run for the one that did not.
pub(super) fn post_activate_again(
    root: &Root,
    prev: &Digest,
    to: Option<&Digest>,
    hooks: &Hooks<'_>,
) {
    let settings = match local_manifest(root, prev) {
        Ok(m) => m.deploy.unwrap_or_default(),
        Err(e) => {
            hooks.progress.warn(format!(
                "post_activate for the previous release {prev} was not run: {e:#}"
            ));
            return;
        }
    };
    let theirs = Hooks {
        settings: &settings,
        check_passed: Default::default(),
        ..*hooks
    };
    if let Some(e) = theirs.run("post_activate", prev, to, &root.release_dir(prev)) {
        hooks.progress.warn(format!(
            "post_activate for the previous release {prev} failed too ({})",
            describe(&e)
        ));
    }
}

/// A manifest kept beside its release, checked against its id.
pub(super) fn local_manifest(root: &Root, id: &Digest) -> Result<Manifest> {
    let path = root.manifest_path(id);
    let bytes =
        safe_fs::read_regular(&path).with_context(|| format!("reading {}", path.display()))?;
    let m = Manifest::parse(&bytes).with_context(|| format!("parsing {}", path.display()))?;
    if m.id() != *id {
        return Err(IntegrityError(format!(
            "{} is not manifest {id}: it was modified",
            path.display()
        ))
        .into());
    }
    Ok(m)
}
