//! A host's deploy root, on disk: what `deploy` and `agent` read and write.
//!
//! ```text
//! DIR/releases/<hex>/        one verified, unpacked release each (the rename is the "finished" mark)
//! DIR/releases/<hex>.json    its manifest
//! DIR/current -> releases/<hex>   flipped by renaming a new link over it, never removed first
//! DIR/shared/                paths that survive releases, linked into each one
//! DIR/.verbatim/lock         the host lock (flock), holding the holder's pid
//! DIR/.verbatim/history.jsonl     one line per deploy attempt, appended
//! DIR/.verbatim/releases/<hex>.json   each release's files as unpacked, to re-check it
//! DIR/.verbatim/activating.json  while `current` moves and the new release is unchecked
//! DIR/.verbatim/seen/<env>.json  the newest event of <env> this root accepted (`host::follow`)
//! ```
//!
//! Every change is made so that a crash (kill -9) at any point leaves
//! `current` naming a complete release: a release is unpacked under a
//! temp name and renamed into place whole; `current` moves by `rename`;
//! deletions go through a rename to `.trash-*` first. What a crash leaves
//! behind carries a temp name and is removed by [`Root::cleanup`].

use std::collections::BTreeSet;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::digest::Digest;
use crate::error::Busy;
use crate::safe_fs;
use crate::unpack::{Entry, EntryKind};

/// The link the app is served from.
pub const CURRENT: &str = "current";
const CURRENT_TMP: &str = "current.tmp";
/// The directory of unpacked releases, one per manifest hex, beside their
/// manifests.
pub const RELEASES: &str = "releases";
/// The directory of paths that survive releases, linked into each one.
pub const SHARED: &str = "shared";
const STATE: &str = ".verbatim";
const HISTORY: &str = "history.jsonl";
/// Written just before `current` moves, removed once the attempt is
/// recorded: if it is there, an activation was interrupted.
const ACTIVATING: &str = "activating.json";
/// Temp names in `releases/` of a fetch or deploy staging a release (the
/// artifact, its unpacked tree, the manifest beside it): what a crash
/// leaves behind there, but for `.trash-*`.
const STAGING_PREFIXES: [&str; 3] = [".download-", ".unpack-", ".manifest-"];
/// The temp of a release's file record in `.verbatim/releases/`, swept
/// with the staging temps.
const RECORD_TEMP: &str = ".record-";
/// The temp of `.verbatim/activating.json`, swept by [`Root::cleanup`].
const ACTIVATING_TEMP: &str = ".activating-";
/// The most bytes the activation marker may have (it names two manifests).
const MAX_ACTIVATING_BYTES: u64 = 64 << 10;
/// The most bytes a release's file record may have: about a million
/// entries.
const MAX_RECORD_BYTES: u64 = 256 << 20;
/// The most bytes the host history may have: about a million deploys.
const MAX_HISTORY_BYTES: u64 = 256 << 20;
/// In `.verbatim/`: per environment, the newest event accepted.
const SEEN: &str = "seen";
/// The temp of a `.verbatim/seen/<env>.json`, swept by [`Root::cleanup`].
const SEEN_TEMP: &str = ".seen-";
/// A release being removed (out of sight first).
const TRASH_PREFIX: &str = ".trash-";
/// In `.verbatim/`: held shared by each fetch or deploy while it stages a
/// release, so that only temps no live process owns are removed.
const STAGING_LOCK: &str = "staging.lock";

/// A host's deploy root, locked for as long as the value lives.
pub struct Root {
    dir: PathBuf,
    /// `None` for a read-only [`Root::view`].
    _lock: Option<File>,
}

/// How a deploy attempt ended, as the host history records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// `current` names the manifest and its check passed.
    Activated,
    /// A hook failed; `current` was left as it was or flipped back.
    Failed,
}

/// One line of `.verbatim/history.jsonl`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostEvent {
    /// RFC 3339, UTC.
    pub time: String,
    /// The manifest deployed (or attempted).
    pub manifest: String,
    /// How it ended.
    pub outcome: Outcome,
    /// What `current` names after the attempt.
    pub current: Option<String>,
    /// The environment followed, and the event of its pointer.
    pub env: Option<String>,
    /// The event of that environment's pointer that named the manifest;
    /// `None` when no pointer was read.
    pub seq: Option<u64>,
    /// Why it failed (a hook's exit, an interruption); `None` when it did not.
    pub detail: Option<String>,
}

/// What the activation marker of an interrupted deploy says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Interrupted {
    /// `current` was moving as the marker says.
    From(Activating),
    /// The marker does not parse (why): nothing is known of where
    /// `current` was, so it is left where it is.
    Unreadable(String),
}

/// An activation in flight: `current` is moving from `from` to `to`, and
/// `to` is not checked yet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Activating {
    /// The manifest `current` named before (`sha256:<hex>`); `None` when there
    /// was no `current`.
    pub from: Option<String>,
    /// The manifest it moves to (`sha256:<hex>`).
    pub to: String,
}

/// The newest event of an environment a root accepted: its high-water
/// mark (`.verbatim/seen/<env>.json`). A history that does not extend it
/// is refused (`host::follow`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Seen {
    /// The environment.
    pub env: String,
    /// The event's sequence number.
    pub seq: u64,
    /// `sha256:<hex>` of its stored bytes.
    pub event: String,
    /// RFC 3339, UTC: when this root accepted it.
    pub time: String,
}

/// What a release directory holds, as unpacked (`.verbatim/releases/<hex>.json`).
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Record {
    manifest: String,
    entries: Vec<Entry>,
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

impl Root {
    /// Creates the layout under `dir` where missing and takes the host lock:
    /// waits for it (saying who holds it through `waiting`), or with
    /// `wait == false` fails with [`Busy`].
    /// While it waits, `stop` is asked every 100 ms whether to give up.
    pub fn lock(
        dir: &Path,
        wait: bool,
        waiting: impl Fn(&str),
        stop: impl Fn() -> bool,
    ) -> anyhow::Result<Root> {
        let dir = layout(dir)?;
        let lock = hold(&dir.join(STATE).join("lock"), wait, waiting, stop)?;
        Ok(Root {
            dir,
            _lock: Some(lock),
        })
    }

    /// The root as it is, to read only (`deploy --dry-run`): nothing is
    /// created and no lock is taken, so what it reads may be changing.
    pub fn view(dir: &Path) -> io::Result<Root> {
        Ok(Root {
            dir: std::path::absolute(dir)?,
            _lock: None,
        })
    }

    /// The deploy root, absolute.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// `DIR/releases/`, where every release is unpacked.
    pub fn releases(&self) -> PathBuf {
        self.dir.join(RELEASES)
    }

    /// The directory of `id`'s release: `DIR/releases/<hex>/`.
    pub fn release_dir(&self, id: &Digest) -> PathBuf {
        self.releases().join(id.hex())
    }

    /// The manifest kept beside a release.
    pub fn manifest_path(&self, id: &Digest) -> PathBuf {
        self.releases().join(format!("{}.json", id.hex()))
    }

    /// Writes `bytes` as the manifest beside release `id` (0644), unless
    /// it holds them already: through a `.manifest-*` temp renamed into
    /// place, which the staging sweep removes if a kill leaves it. Called
    /// with the staging lock held.
    pub fn write_manifest(&self, id: &Digest, bytes: &[u8]) -> io::Result<()> {
        let path = self.manifest_path(id);
        let limit = crate::manifest::MAX_BYTES;
        if safe_fs::read_regular_limited(&path, limit).ok().as_deref() == Some(bytes) {
            return Ok(());
        }
        write_through_temp(&path, ".manifest-", bytes)
    }

    fn record_path(&self, id: &Digest) -> PathBuf {
        self.dir
            .join(STATE)
            .join(RELEASES)
            .join(format!("{}.json", id.hex()))
    }

    /// Removes what an interrupted deploy left, but for its staged temps
    /// ([`Root::hold_staging`] does): half-deleted releases, a
    /// `current.tmp` link and the temp of an activation marker. Returns
    /// their names.
    pub fn cleanup(&self) -> io::Result<Vec<String>> {
        let mut removed = sweep(&self.releases(), RELEASES, &[TRASH_PREFIX])?;
        removed.extend(sweep(&self.dir.join(STATE), STATE, &[ACTIVATING_TEMP])?);
        let seen = self.dir.join(STATE).join(SEEN);
        removed.extend(sweep(&seen, &format!("{STATE}/{SEEN}"), &[SEEN_TEMP])?);
        match fs::remove_file(self.dir.join(CURRENT_TMP)) {
            Ok(()) => removed.push(CURRENT_TMP.into()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        Ok(removed)
    }

    /// Takes the staging lock, shared, for as long as the returned file is
    /// open: every fetch or deploy holds it while it stages a release in
    /// `releases/`. When no other process holds it, the `.download-*`,
    /// `.unpack-*` and `.manifest-*` there (and the `.record-*` in
    /// `.verbatim/releases/`) are a killed one's, and are removed first;
    /// their names are returned.
    pub fn hold_staging(&self) -> io::Result<(File, Vec<String>)> {
        let state = safe_fs::create_dirs(&self.dir, Path::new(STATE))?;
        let lock = safe_fs::open_lock(&state.join(STAGING_LOCK))?;
        let mut removed = Vec::new();
        if lock.try_lock().is_ok() {
            removed = sweep(&self.releases(), RELEASES, &STAGING_PREFIXES)?;
            let records = self.dir.join(STATE).join(RELEASES);
            removed.extend(sweep(
                &records,
                &format!("{STATE}/{RELEASES}"),
                &[RECORD_TEMP],
            )?);
        }
        lock.lock_shared()?;
        Ok((lock, removed))
    }

    /// The release `current` names, `None` when there is no `current`. A
    /// `current` verbatim did not make (a directory, a link elsewhere) is an
    /// error saying so.
    pub fn current(&self) -> Result<Option<Digest>, String> {
        let path = self.dir.join(CURRENT);
        let target = match fs::read_link(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(_) => {
                return Err(format!(
                    "{} is not a symlink: verbatim flips `current` by renaming a new link over it; move it away first",
                    path.display()
                ))
            }
        };
        target
            .to_str()
            .and_then(|t| t.strip_prefix("releases/"))
            .and_then(Digest::from_hex)
            .filter(|d| target.to_str() == Some(&format!("releases/{}", d.hex())))
            .map(Some)
            .ok_or_else(|| {
                format!(
                    "{} points at {}, not at releases/<manifest-hex>: it was not made by verbatim; remove it, or point it at a release verbatim deployed",
                    path.display(),
                    target.display()
                )
            })
    }

    /// Points `current` at `id`'s release (or removes it, for `None`): a new
    /// link renamed over the old one, so there is never a moment without
    /// one; then the root is synced.
    pub fn flip(&self, id: Option<&Digest>) -> io::Result<()> {
        let current = self.dir.join(CURRENT);
        match id {
            Some(id) => {
                let tmp = self.dir.join(CURRENT_TMP);
                match fs::remove_file(&tmp) {
                    Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                    _ => {}
                }
                std::os::unix::fs::symlink(format!("{RELEASES}/{}", id.hex()), &tmp)?;
                fs::rename(&tmp, &current)?;
            }
            None => match fs::remove_file(&current) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                _ => {}
            },
        }
        sync_dir(&self.dir)
    }

    /// Records that `current` is about to move from `from` to `to` (synced
    /// before the flip), so a deploy killed before the outcome is recorded
    /// is noticed by the next one.
    pub fn begin_activation(&self, from: Option<&Digest>, to: &Digest) -> io::Result<()> {
        let a = Activating {
            from: from.map(Digest::to_string),
            to: to.to_string(),
        };
        let bytes = serde_json::to_vec(&a).map_err(io::Error::other)?;
        write_through_temp(
            &self.dir.join(STATE).join(ACTIVATING),
            ACTIVATING_TEMP,
            &bytes,
        )?;
        sync_dir(&self.dir.join(STATE))
    }

    /// Where the high-water mark of `env` is kept.
    pub fn seen_path(&self, env: &str) -> PathBuf {
        self.dir.join(STATE).join(SEEN).join(format!("{env}.json"))
    }

    /// The newest event of `env` this root accepted, `None` before the
    /// first. A mark that is not a regular file or does not parse is an
    /// error naming it: trust is never reset by a broken file.
    pub fn seen(&self, env: &str) -> io::Result<Option<Seen>> {
        let path = self.seen_path(env);
        match safe_fs::read_regular_limited(&path, MAX_ACTIVATING_BYTES) {
            Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("{} does not parse ({e}); remove it to accept the store's history as it is now", path.display()),
                )
            }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Records `seen` as the newest event of its environment accepted
    /// (synced; through a temp, so a crash leaves the old mark or the new).
    pub fn set_seen(&self, seen: &Seen) -> io::Result<()> {
        let dir = safe_fs::create_dirs(&self.dir, &Path::new(STATE).join(SEEN))?;
        let bytes = serde_json::to_vec(seen).map_err(io::Error::other)?;
        write_through_temp(&self.seen_path(&seen.env), SEEN_TEMP, &bytes)?;
        sync_dir(&dir)
    }

    /// The outcome is recorded: the activation is over.
    pub fn end_activation(&self) -> io::Result<()> {
        match fs::remove_file(self.dir.join(STATE).join(ACTIVATING)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    /// An activation a crash interrupted, if any. One that does not parse
    /// is [`Interrupted::Unreadable`]: what `current` names stays. A marker
    /// that is not a regular file (a fifo, a link) or is too large is an
    /// error naming it, never waited on.
    pub fn interrupted(&self) -> io::Result<Option<Interrupted>> {
        let path = self.dir.join(STATE).join(ACTIVATING);
        match safe_fs::read_regular_limited(&path, MAX_ACTIVATING_BYTES) {
            Ok(bytes) => Ok(Some(match serde_json::from_slice(&bytes) {
                Ok(a) => Interrupted::From(a),
                Err(e) => Interrupted::Unreadable(format!("{}: {e}", path.display())),
            })),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Writes what `staged` (a release about to be renamed into place)
    /// holds, for [`Root::modified`] to check it against later.
    pub fn write_record(&self, id: &Digest, entries: Vec<Entry>) -> io::Result<()> {
        let record = Record {
            manifest: id.to_string(),
            entries,
        };
        let bytes = serde_json::to_vec(&record).map_err(io::Error::other)?;
        write_through_temp(&self.record_path(id), RECORD_TEMP, &bytes)
    }

    /// Why `id`'s release no longer holds what was unpacked, `None` when it
    /// does. Only what the artifact held is checked (paths at or under a
    /// shared path aside): files the app writes beside it, like
    /// `__pycache__`, do not count.
    pub fn modified(&self, id: &Digest, shared: &[String]) -> Option<String> {
        let record: Record =
            match safe_fs::read_regular_limited(&self.record_path(id), MAX_RECORD_BYTES) {
                Ok(bytes) => match serde_json::from_slice(&bytes) {
                    Ok(r) => r,
                    Err(e) => return Some(format!("its file record is unreadable ({e})")),
                },
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    return Some(format!("it has no file record ({e})"))
                }
                Err(e) => return Some(format!("its file record is unreadable ({e})")),
            };
        let dir = self.release_dir(id);
        let under_shared = |path: &str| {
            shared
                .iter()
                .any(|s| path == s || path.starts_with(&format!("{s}/")))
        };
        let entries: Vec<&Entry> = record
            .entries
            .iter()
            .filter(|e| !under_shared(&e.path))
            .collect();
        let problems = crate::par::map(&entries, crate::par::threads(), |e| {
            check_entry(&dir, e)
                .err()
                .map(|why| format!("{}: {why}", e.path))
        });
        problems.into_iter().flatten().next()
    }

    /// Links every shared path of `release` (a directory under
    /// `releases/`) to `DIR/shared/<path>` with a relative symlink. A
    /// shared path missing from `shared/` is seeded with what the release
    /// holds there, else created empty: a file (0600) when its name has a
    /// dot (`.env`, `settings.yml`), else a directory (`media`).
    pub fn link_shared(&self, release: &Path, shared: &[String]) -> io::Result<()> {
        for path in shared {
            let target = self.dir.join(SHARED).join(path);
            let inside = release.join(path);
            let parent = Path::new(path).parent().unwrap_or(Path::new(""));
            let depth = Path::new(path).components().count() + 1;
            let link = format!("{}{SHARED}/{path}", "../".repeat(depth));
            if fs::read_link(&inside).is_ok_and(|t| t == Path::new(&link)) {
                continue;
            }
            safe_fs::create_dirs(release, parent)?;
            if fs::symlink_metadata(&target).is_err() {
                if let Some(p) = target.parent() {
                    fs::create_dir_all(p)?;
                }
                let is_file = path
                    .rsplit('/')
                    .next()
                    .is_some_and(|name| name.contains('.'));
                match fs::symlink_metadata(&inside) {
                    Ok(m) if !m.file_type().is_symlink() => fs::rename(&inside, &target)?,
                    // `.env`, `settings.yml`: an empty file for the
                    // operator to fill, readable by its owner only.
                    _ if is_file => drop(
                        OpenOptions::new()
                            .write(true)
                            .create_new(true)
                            .mode(0o600)
                            .custom_flags(libc::O_NOFOLLOW)
                            .open(&target)?,
                    ),
                    _ => fs::create_dir_all(&target)?,
                }
            }
            if fs::symlink_metadata(&inside).is_ok() {
                remove_any(&inside)?;
            }
            std::os::unix::fs::symlink(&link, &inside)?;
        }
        Ok(())
    }

    /// The host history, oldest first. A last line cut short by a crash is
    /// skipped; so is any other line that does not parse, with its number
    /// handed to `bad_line`.
    pub fn history(&self, bad_line: impl Fn(usize)) -> io::Result<Vec<HostEvent>> {
        let path = self.dir.join(STATE).join(HISTORY);
        let bytes = match safe_fs::read_regular_limited(&path, MAX_HISTORY_BYTES) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        let mut out = Vec::new();
        let mut reader = io::Cursor::new(bytes);
        let mut line = String::new();
        let mut n = 0;
        loop {
            line.clear();
            if reader.read_line(&mut line)? == 0 {
                return Ok(out);
            }
            n += 1;
            match serde_json::from_str(&line) {
                Ok(e) => out.push(e),
                Err(_) if !line.ends_with('\n') => return Ok(out), // torn by a crash
                Err(_) => bad_line(n),
            }
        }
    }

    /// Appends one event to the host history and syncs it.
    pub fn append(&self, event: &HostEvent) -> io::Result<()> {
        self.open_history()?.append(event)
    }

    /// Opens the host history to append to it: a deploy opens it before
    /// anything runs, so a history that cannot be written (not a regular
    /// file, a link) stops it while `current` is untouched.
    pub fn open_history(&self) -> io::Result<HistoryFile> {
        let path = self.dir.join(STATE).join(HISTORY);
        let file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .mode(0o644)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
            .open(&path)
            .and_then(|f| match f.metadata()?.is_file() {
                true => Ok(f),
                false => Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "not a regular file; remove or rename it",
                )),
            })
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
        Ok(HistoryFile { file, path })
    }

    /// The release `current` named before it named `current` (per the
    /// history), if it is still on disk.
    pub fn previous(&self, history: &[HostEvent], current: Option<&Digest>) -> Option<Digest> {
        let now = current.map(Digest::to_string);
        history
            .iter()
            .rev()
            .filter_map(|e| e.current.as_ref())
            .find(|c| Some(*c) != now.as_ref())
            .and_then(|c| c.parse::<Digest>().ok())
            .filter(|d| self.release_dir(d).is_dir())
    }

    /// Removes every release but the newest `keep` that went live (by the
    /// history, never by mtime) and `keep_too` (current and previous).
    /// Failed releases do not count. Returns the manifests removed; with
    /// `dry`, those it would remove, touching nothing.
    pub fn prune(
        &self,
        history: &[HostEvent],
        keep: usize,
        keep_too: &[Digest],
        dry: bool,
    ) -> io::Result<Vec<Digest>> {
        let mut kept: BTreeSet<Digest> = keep_too.iter().copied().collect();
        let mut live = BTreeSet::new();
        for e in history.iter().rev() {
            if live.len() >= keep {
                break;
            }
            if e.outcome == Outcome::Activated {
                if let Ok(d) = e.manifest.parse::<Digest>() {
                    live.insert(d);
                }
            }
        }
        kept.extend(live);
        let mut removed = Vec::new();
        let listing = match fs::read_dir(self.releases()) {
            Err(e) if dry && e.kind() == io::ErrorKind::NotFound => return Ok(removed),
            other => other?,
        };
        for dirent in listing {
            let name = dirent?.file_name().to_string_lossy().into_owned();
            let hex = name.strip_suffix(".json").unwrap_or(&name);
            let Some(id) = Digest::from_hex(hex).filter(|d| d.hex() == hex) else {
                continue; // not ours
            };
            if kept.contains(&id) {
                continue;
            }
            if dry {
                if hex == name {
                    removed.push(id);
                }
                continue;
            }
            if hex == name {
                // Out of sight first: a crash leaves a `.trash-*` to clean.
                let trash = self.releases().join(format!("{TRASH_PREFIX}{hex}"));
                fs::rename(self.release_dir(&id), &trash)?;
                remove_any(&trash)?;
                removed.push(id);
            } else {
                fs::remove_file(self.releases().join(&name))?;
                match fs::remove_file(self.record_path(&id)) {
                    Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                    _ => {}
                }
            }
        }
        removed.sort();
        Ok(removed)
    }

    /// Moves a release found modified out of the way (and removes it).
    pub fn discard(&self, id: &Digest) -> io::Result<()> {
        let trash = self.releases().join(format!(".trash-{}", id.hex()));
        fs::rename(self.release_dir(id), &trash)?;
        remove_any(&trash)
    }
}

/// Creates the layout under `dir` where missing; returns `dir` absolute.
fn layout(dir: &Path) -> anyhow::Result<PathBuf> {
    use anyhow::Context;
    let dir = std::path::absolute(dir)
        .with_context(|| format!("resolving the deploy root {}", dir.display()))?;
    fs::create_dir_all(&dir)
        .with_context(|| format!("creating the deploy root {}", dir.display()))?;
    for sub in [STATE, RELEASES, ".verbatim/releases"] {
        safe_fs::create_dirs(&dir, Path::new(sub))
            .with_context(|| format!("creating {}", dir.join(sub).display()))?;
    }
    // `shared` may be a link to a volume: only created when missing.
    if fs::metadata(dir.join(SHARED)).is_err() {
        fs::create_dir_all(dir.join(SHARED))
            .with_context(|| format!("creating {}", dir.join(SHARED).display()))?;
    }
    Ok(dir)
}

/// The agent's lock on `dir`, held for as long as it runs: a second agent
/// on the same root fails with [`Busy`].
pub fn agent_lock(dir: &Path) -> anyhow::Result<File> {
    let dir = layout(dir)?;
    hold(&dir.join(STATE).join("agent.lock"), false, |_| {}, || true)
}

/// Takes an exclusive `flock` on `path`, writing our pid into it.
fn hold(
    path: &Path,
    wait: bool,
    waiting: impl Fn(&str),
    stop: impl Fn() -> bool,
) -> anyhow::Result<File> {
    use anyhow::Context;
    let mut lock =
        safe_fs::open_lock(path).with_context(|| format!("opening the lock {}", path.display()))?;
    let mut said = false;
    loop {
        match lock.try_lock() {
            Ok(()) => break,
            Err(fs::TryLockError::WouldBlock) => {
                let holder = holder(path);
                let busy = Busy(format!(
                    "{} is held by {holder}: another deploy or agent is at work on this root",
                    path.display()
                ));
                if !wait || stop() {
                    return Err(busy.into());
                }
                if !said {
                    waiting(&format!(
                        "waiting for {holder} to release {}",
                        path.display()
                    ));
                    said = true;
                }
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
            Err(fs::TryLockError::Error(e)) => {
                return Err(e).with_context(|| format!("locking {}", path.display()))
            }
        }
    }
    // Say who holds it, for the next one to wait.
    lock.set_len(0)?;
    writeln!(lock, "{}", std::process::id())?;
    Ok(lock)
}

/// Flushes everything written under `dir` to disk before it is renamed
/// into place, so that after a power loss a release that is there is
/// whole. One `syncfs` for the whole file system rather than an fsync per
/// file: the same guarantee for a tree of thousands of files.
pub fn sync_tree(dir: &Path) -> io::Result<()> {
    let d = File::open(dir)?;
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        // SAFETY: syncfs only reads the descriptor, which `d` keeps open.
        if unsafe { libc::syncfs(d.as_raw_fd()) } != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    #[cfg(not(target_os = "linux"))]
    // SAFETY: sync(2) takes no arguments and cannot fail.
    unsafe {
        libc::sync()
    };
    d.sync_all()
}

/// Who holds a lock file: `pid N` as it wrote, else `another process`.
fn holder(path: &Path) -> String {
    let mut text = String::new();
    let _ = safe_fs::open_regular(path).and_then(|mut f| f.read_to_string(&mut text));
    match text.trim().parse::<u32>() {
        Ok(pid) => format!("pid {pid}"),
        Err(_) => "another process".into(),
    }
}

/// The host history, open to append to ([`Root::open_history`]).
pub struct HistoryFile {
    file: File,
    path: PathBuf,
}

impl HistoryFile {
    /// Appends one event and syncs it; an error names the file.
    pub fn append(&self, event: &HostEvent) -> io::Result<()> {
        use std::os::unix::fs::FileExt;
        let mut line = serde_json::to_vec(event).map_err(io::Error::other)?;
        line.push(b'\n');
        let named =
            |e: io::Error| io::Error::new(e.kind(), format!("{}: {e}", self.path.display()));
        let len = self.file.metadata().map_err(named)?.len();
        let mut last = [0u8];
        // A line torn by a crash would otherwise glue onto this one.
        if len > 0 && self.file.read_at(&mut last, len - 1).map_err(named)? == 1 && last[0] != b'\n'
        {
            line.insert(0, b'\n');
        }
        (&self.file).write_all(&line).map_err(named)?;
        self.file.sync_data().map_err(named)
    }
}

/// Removes a file, a link or a whole directory, never following a link.
/// Removes the entries of `dir` (`shown` in the names returned) whose
/// names start with one of `prefixes`; a missing `dir` holds none.
fn sweep(dir: &Path, shown: &str, prefixes: &[&str]) -> io::Result<Vec<String>> {
    let listing = match fs::read_dir(dir) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        other => other?,
    };
    let mut removed = Vec::new();
    for dirent in listing {
        let dirent = dirent?;
        let name = dirent.file_name().to_string_lossy().into_owned();
        if prefixes.iter().any(|p| name.starts_with(p)) {
            remove_any(&dirent.path())?;
            removed.push(format!("{shown}/{name}"));
        }
    }
    Ok(removed)
}

/// Writes `bytes` to `path` (0644, synced) through a temp beside it named
/// `prefix…`, renamed into place: a kill leaves the old file or the new
/// one, and a temp whose name the sweeps know.
fn write_through_temp(path: &Path, prefix: &str, bytes: &[u8]) -> io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::Builder::new()
        .prefix(prefix)
        .permissions(fs::Permissions::from_mode(0o644))
        .tempfile_in(dir)?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

fn remove_any(path: &Path) -> io::Result<()> {
    match fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => fs::remove_dir_all(path),
        Ok(_) => fs::remove_file(path),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// Whether one recorded entry is still what was unpacked.
fn check_entry(dir: &Path, e: &Entry) -> Result<(), String> {
    let path = dir.join(&e.path);
    let meta = fs::symlink_metadata(&path).map_err(|err| err.to_string())?;
    match &e.kind {
        EntryKind::Dir if meta.is_dir() => Ok(()),
        EntryKind::Dir => Err("no longer a directory".into()),
        EntryKind::Symlink { target } => match fs::read_link(&path) {
            Ok(t) if t == Path::new(target) => Ok(()),
            Ok(t) => Err(format!("links to {} instead of {target}", t.display())),
            Err(_) => Err("no longer a symlink".into()),
        },
        EntryKind::File { sha256, size, exec } => {
            if !meta.is_file() {
                return Err("no longer a regular file".into());
            }
            if meta.len() != *size {
                return Err(format!("{} bytes instead of {size}", meta.len()));
            }
            if (meta.permissions().mode() & 0o100 != 0) != *exec {
                return Err("its executable bit changed".into());
            }
            let file = safe_fs::open_regular(&path).map_err(|err| err.to_string())?;
            let (digest, _) = Digest::of_reader(io::BufReader::with_capacity(256 << 10, file))
                .map_err(|err| err.to_string())?;
            if digest.hex() != *sha256 {
                return Err("its content changed".into());
            }
            Ok(())
        }
    }
}
