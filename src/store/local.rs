//! The embedded default store: a directory on the local disk.
//!
//! Layout is the store layout itself (`<root>/artifacts/…`, `<root>/envs/…`),
//! plus `<root>/.tmp` for writes in flight and `<root>/.locks` for
//! compare-and-swap. A create-only put writes a temp file, fsyncs it and
//! hard-links it into place — `link(2)` never replaces an existing file, so two
//! writers can race safely. A compare-and-swap put takes an exclusive file lock
//! (safe between processes), checks the ETag (the content's sha256) and renames
//! a temp file over the pointer. A crash leaves at worst a stray temp file.
//! Nothing below the store's anchor is reached through a symlink, and only
//! regular files are read: a planted link or fifo is an error naming it.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use super::api::{
    Body, ETag, Key, Listed, Object, ObjectMeta, PutMode, PutOptions, PutOutcome, Result, Store,
    StoreError,
};
use crate::digest::{Digest, HashingWriter};
use crate::safe_fs;

/// Objects up to this size are read into memory by `get`; larger ones stream.
const SMALL_OBJECT: u64 = 16 << 20;

/// A store in a directory on the local disk (`file://` store URLs and plain
/// paths): the store layout under its root, written as the module says.
pub struct LocalStore {
    /// Trusted as it is: a path the user named (it may itself be a symlink).
    anchor: PathBuf,
    /// The store below the anchor; none of its components may be a symlink.
    below: PathBuf,
    root: PathBuf,
    /// A shared lock on `.tmp/.lock`, held from the first put on: while any
    /// process holds one, nobody sweeps `.tmp/`.
    tmp_lock: std::sync::OnceLock<File>,
}

impl LocalStore {
    /// A store at `root`, trusted as it is (an absolute path the user gave).
    pub fn new(root: PathBuf) -> LocalStore {
        LocalStore {
            anchor: root.clone(),
            below: PathBuf::new(),
            root,
            tmp_lock: std::sync::OnceLock::new(),
        }
    }

    /// A store at `rel` below `base` (a relative store URL in a project):
    /// `rel` is folded lexically, and no directory below `base` on the way
    /// may be a symlink, so a repository cannot redirect the store. An
    /// absolute `rel` is the user's explicit choice, trusted as [`Self::new`].
    pub fn within(base: &Path, rel: &Path) -> LocalStore {
        if rel.is_absolute() {
            return LocalStore::new(rel.to_owned());
        }
        let rel = safe_fs::normalize(rel);
        let mut anchor = base.to_owned();
        let mut below = PathBuf::new();
        for c in rel.components() {
            match c {
                Component::ParentDir if below.as_os_str().is_empty() => anchor.push(".."),
                c => below.push(c),
            }
        }
        LocalStore {
            root: anchor.join(&below),
            anchor,
            below,
            tmp_lock: std::sync::OnceLock::new(),
        }
    }

    /// The store's directory: the anchor joined with what lies below it.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The store directory `rel` (relative to the root), created when
    /// `create`; `Ok(None)` when it does not exist and `create` is false.
    /// Never goes through a symlink below the anchor.
    fn dir(&self, rel: &Path, create: bool) -> io::Result<Option<PathBuf>> {
        let rel = self.below.join(rel);
        if create {
            fs::create_dir_all(&self.anchor)?;
            safe_fs::create_dirs_with_mode(&self.anchor, &rel, 0o755).map(Some)
        } else {
            safe_fs::existing_dirs(&self.anchor, &rel)
        }
    }

    /// The path of `key`, its directories created when `create`; `None`
    /// when a directory on the way does not exist (and `create` is false).
    fn path(&self, key: &Key, create: bool) -> Result<Option<PathBuf>> {
        let (dir, name) = key.as_str().rsplit_once('/').unwrap_or(("", key.as_str()));
        let op = if create {
            "creating the directory of"
        } else {
            "reading"
        };
        Ok(self
            .dir(Path::new(dir), create)
            .map_err(fs_err(op, key))?
            .map(|d| d.join(name)))
    }

    /// Opens `key` if it exists, refusing anything but a regular file.
    fn open(&self, key: &Key) -> Result<Option<File>> {
        let Some(path) = self.path(key, false)? else {
            return Ok(None);
        };
        match safe_fs::open_regular(&path) {
            Ok(f) => Ok(Some(f)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(fs_err("reading", key)(e)),
        }
    }

    fn temp_file(&self, key: &Key) -> Result<tempfile::NamedTempFile> {
        let dir = self
            .dir(Path::new(".tmp"), true)
            .map_err(fs_err("creating temp dir for", key))?
            .expect("created");
        if self.tmp_lock.get().is_none() {
            let lock = sweep(&dir).map_err(fs_err("sweeping the temp dir for", key))?;
            let _ = self.tmp_lock.set(lock);
        }
        tempfile::Builder::new()
            .prefix("put-")
            .tempfile_in(dir)
            .map_err(io_err("creating temp file for", key))
    }

    /// Copies the body into a fsynced temp file, checking its digest and size.
    fn stage(&self, key: &Key, body: &Body<'_>) -> Result<tempfile::NamedTempFile> {
        let tmp = self.temp_file(key)?;
        let mut reader = body.open().map_err(io_err("reading the body for", key))?;
        let mut w = HashingWriter::new(io::BufWriter::with_capacity(256 << 10, tmp));
        io::copy(&mut reader, &mut w).map_err(io_err("writing", key))?;
        let (buf, actual, size) = w.finish();
        let tmp = buf
            .into_inner()
            .map_err(|e| io_err("writing", key)(e.into_error()))?;
        if actual != body.sha256 || size != body.size {
            return Err(StoreError::BodyMismatch {
                key: key.clone(),
                expected: body.sha256,
                actual,
            });
        }
        // Readable by an nginx origin or another user, whatever the umask.
        tmp.as_file()
            .set_permissions(fs::Permissions::from_mode(0o644))
            .map_err(io_err("writing", key))?;
        tmp.as_file().sync_all().map_err(io_err("syncing", key))?;
        Ok(tmp)
    }

    fn create_only(&self, key: &Key, body: Body<'_>) -> Result<PutOutcome> {
        if let Some(existing) = self.head(key)? {
            return same_or_conflict(key, existing, &body);
        }
        let tmp = self.stage(key, &body)?;
        let dest = self.path(key, true)?.expect("created");
        let parent = dest.parent().expect("dest is below the root");
        // link(2) never follows or replaces what is at `dest`.
        match fs::hard_link(tmp.path(), &dest) {
            Ok(()) => {
                sync_dir(parent).map_err(io_err("syncing the directory of", key))?;
                Ok(PutOutcome::Written(ETag(body.sha256.hex())))
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                // Lost a race with another writer: judge what it wrote.
                let existing = self
                    .head(key)?
                    .ok_or_else(|| StoreError::NotFound { key: key.clone() })?;
                same_or_conflict(key, existing, &body)
            }
            Err(e) => Err(io_err("linking", key)(e)),
        }
    }

    /// Replaces `key` if its ETag is `expected`, or whatever it holds when
    /// `expected` is `None`.
    fn replace_if_match(
        &self,
        key: &Key,
        body: Body<'_>,
        expected: Option<&ETag>,
    ) -> Result<PutOutcome> {
        let lock_dir = self
            .dir(Path::new(".locks"), true)
            .map_err(fs_err("creating the lock dir for", key))?
            .expect("created");
        let lock_name = key.as_str().replace('%', "%25").replace('/', "%2F");
        let lock = safe_fs::open_lock(&lock_dir.join(lock_name)).map_err(fs_err("locking", key))?;
        lock.lock().map_err(io_err("locking", key))?;
        let dest = self.path(key, true)?.expect("created");
        if let Some(expected) = expected {
            match self.head(key)? {
                Some(current) if current.etag == *expected => {}
                _ => return Err(StoreError::PreconditionFailed { key: key.clone() }),
            }
        }
        let tmp = self.stage(key, &body)?;
        // rename(2) replaces whatever is at `dest`, never following it.
        tmp.persist(&dest)
            .map_err(|e| io_err("replacing", key)(e.error))?;
        let parent = dest.parent().expect("keys are relative");
        sync_dir(parent).map_err(io_err("syncing the directory of", key))?;
        drop(lock);
        Ok(PutOutcome::Written(ETag(body.sha256.hex())))
    }
}

fn same_or_conflict(key: &Key, existing: ObjectMeta, body: &Body<'_>) -> Result<PutOutcome> {
    if existing.sha256 == Some(body.sha256) && existing.size == body.size {
        Ok(PutOutcome::Unchanged(existing.etag))
    } else {
        Err(StoreError::AlreadyExists { key: key.clone() })
    }
}

/// Removes what writers killed mid-put left in `.tmp/` — only when no
/// other process is writing (none holds the lock) — and returns a shared
/// lock on it for this process to hold while it writes.
fn sweep(tmp: &Path) -> io::Result<File> {
    let lock = safe_fs::open_lock(&tmp.join(".lock"))?;
    if lock.try_lock().is_ok() {
        for dirent in fs::read_dir(tmp)? {
            let dirent = dirent?;
            if dirent.file_name().to_string_lossy().starts_with("put-") {
                let _ = fs::remove_file(dirent.path());
            }
        }
    }
    lock.lock_shared()?;
    Ok(lock)
}

/// Like [`io_err`], but a path `safe_fs` refused (a link, fifo, device) makes
/// the key [`StoreError::NotAnObject`].
fn fs_err<'a>(op: &'static str, key: &'a Key) -> impl FnOnce(io::Error) -> StoreError + 'a {
    move |source| match source.kind() {
        io::ErrorKind::InvalidInput => StoreError::NotAnObject {
            key: key.clone(),
            why: source.to_string(),
        },
        _ => io_err(op, key)(source),
    }
}

fn io_err<'a>(op: &'static str, key: &'a Key) -> impl FnOnce(io::Error) -> StoreError + 'a {
    move |source| StoreError::Io {
        op,
        key: key.to_string(),
        source,
    }
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

impl Store for LocalStore {
    fn location(&self) -> String {
        self.root.display().to_string()
    }

    fn put(&self, key: &Key, body: Body<'_>, mode: PutMode, _: &PutOptions) -> Result<PutOutcome> {
        match mode {
            PutMode::CreateOnly => self.create_only(key, body),
            PutMode::ReplaceIfMatch(etag) => self.replace_if_match(key, body, Some(&etag)),
            PutMode::Overwrite => self.replace_if_match(key, body, None),
        }
        .map_err(|e| self.located(e))
    }

    fn get(&self, key: &Key) -> Result<Object> {
        self.read(key).map_err(|e| self.located(e))
    }

    fn head(&self, key: &Key) -> Result<Option<ObjectMeta>> {
        self.hash(key).map_err(|e| self.located(e))
    }

    fn exists(&self) -> bool {
        self.root.is_dir()
    }

    fn list(&self, prefix: &str) -> Result<Vec<Listed>> {
        self.list_keys(prefix).map_err(|e| self.located(e))
    }
}

impl LocalStore {
    /// A permission refused names the store's directory too (the key
    /// alone says nothing of where it is), so the error can say whose it
    /// is (`safe_fs::denied_hint`).
    fn located(&self, e: StoreError) -> StoreError {
        match e {
            StoreError::Io { op, key, source }
                if source.kind() == io::ErrorKind::PermissionDenied =>
            {
                StoreError::Io {
                    op,
                    key: format!("{key} in {}", self.root.display()),
                    source,
                }
            }
            e => e,
        }
    }

    fn read(&self, key: &Key) -> Result<Object> {
        let Some(mut file) = self.open(key)? else {
            return Err(StoreError::NotFound { key: key.clone() });
        };
        let size = file.metadata().map_err(io_err("reading", key))?.len();
        if size <= SMALL_OBJECT {
            let mut bytes = Vec::with_capacity(size as usize);
            file.read_to_end(&mut bytes)
                .map_err(io_err("reading", key))?;
            let sha256 = Digest::of(&bytes);
            let meta = ObjectMeta {
                size: bytes.len() as u64,
                etag: ETag(sha256.hex()),
                sha256: Some(sha256),
            };
            return Ok(Object {
                reader: Box::new(io::Cursor::new(bytes)),
                meta,
            });
        }
        // Not hashed here: the reader hashes what it streams, and a size
        // that is wrong is known without reading a byte. The tag is the
        // file's identity, not its digest: large objects are never swapped.
        let m = file.metadata().map_err(io_err("reading", key))?;
        let meta = ObjectMeta {
            size,
            etag: ETag(format!(
                "{}-{size}-{}.{}",
                m.ino(),
                m.mtime(),
                m.mtime_nsec()
            )),
            sha256: None,
        };
        Ok(Object {
            reader: Box::new(io::BufReader::with_capacity(256 << 10, file)),
            meta,
        })
    }

    fn hash(&self, key: &Key) -> Result<Option<ObjectMeta>> {
        let Some(file) = self.open(key)? else {
            return Ok(None);
        };
        let (sha256, size) = Digest::of_reader(io::BufReader::with_capacity(256 << 10, file))
            .map_err(io_err("hashing", key))?;
        Ok(Some(ObjectMeta {
            size,
            etag: ETag(sha256.hex()),
            sha256: Some(sha256),
        }))
    }

    fn list_keys(&self, prefix: &str) -> Result<Vec<Listed>> {
        let dir_part = match prefix.rfind('/') {
            Some(i) => &prefix[..i],
            None => "",
        };
        let listing = |source| StoreError::Io {
            op: "listing",
            key: prefix.to_owned(),
            source,
        };
        let Some(start) = self.dir(Path::new(dir_part), false).map_err(listing)? else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        let mut stack = vec![(start, dir_part.to_owned())];
        while let Some((dir, rel)) = stack.pop() {
            let rd = match fs::read_dir(&dir) {
                Ok(rd) => rd,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => {
                    return Err(StoreError::Io {
                        op: "listing",
                        key: prefix.to_owned(),
                        source: e,
                    })
                }
            };
            for dirent in rd {
                let dirent = dirent.map_err(|source| StoreError::Io {
                    op: "listing",
                    key: prefix.to_owned(),
                    source,
                })?;
                let Ok(name) = dirent.file_name().into_string() else {
                    continue;
                };
                if rel.is_empty() && name.starts_with('.') {
                    continue; // .tmp and .locks are the store's own
                }
                let key = if rel.is_empty() {
                    name
                } else {
                    format!("{rel}/{name}")
                };
                if !key.starts_with(prefix) && !prefix.starts_with(&format!("{key}/")) {
                    continue;
                }
                let ft = dirent.file_type().map_err(|source| StoreError::Io {
                    op: "listing",
                    key: key.clone(),
                    source,
                })?;
                // The entry's own type: a symlink is neither, and not listed.
                if ft.is_dir() {
                    stack.push((dirent.path(), key));
                } else if ft.is_file() && key.starts_with(prefix) {
                    let size = dirent.metadata().map_or(0, |m| m.len());
                    if let Ok(key) = Key::new(key) {
                        out.push(Listed { key, size });
                    }
                }
            }
        }
        out.sort();
        Ok(out)
    }
}

/// Writes `bytes` to `path` atomically (temp file in the same directory,
/// fsync, rename). For files outside the store: build output, `init`.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    // Readable by the app and other users, whatever the umask.
    tmp.as_file()
        .set_permissions(fs::Permissions::from_mode(0o644))?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}
