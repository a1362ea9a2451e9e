//! The embedded default store: a directory on the local disk.
//!
//! Layout is the store layout itself (`<root>/artifacts/…`, `<root>/envs/…`),
//! plus `<root>/.tmp` for writes in flight and `<root>/.locks` for
//! compare-and-swap. A create-only put writes a temp file, fsyncs it and
//! hard-links it into place — `link(2)` never replaces an existing file, so two
//! writers can race safely. A compare-and-swap put takes an exclusive file lock
//! (safe between processes), checks the ETag (the content's sha256) and renames
//! a temp file over the pointer. A crash leaves at worst a stray temp file.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use super::{
    Body, ETag, Key, Listed, Object, ObjectMeta, PutMode, PutOptions, PutOutcome, Result, Store,
    StoreError,
};
use crate::digest::{Digest, HashingWriter};

/// Objects up to this size are read into memory by `get`; larger ones stream.
const SMALL_OBJECT: u64 = 16 << 20;

pub struct LocalStore {
    root: PathBuf,
}

impl LocalStore {
    pub fn new(root: PathBuf) -> LocalStore {
        LocalStore { root }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn path(&self, key: &Key) -> PathBuf {
        self.root.join(key.as_str())
    }

    fn temp_file(&self, key: &Key) -> Result<tempfile::NamedTempFile> {
        let dir = self.root.join(".tmp");
        fs::create_dir_all(&dir).map_err(io_err("creating temp dir for", key))?;
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
        tmp.as_file().sync_all().map_err(io_err("syncing", key))?;
        Ok(tmp)
    }

    fn create_only(&self, key: &Key, body: Body<'_>) -> Result<PutOutcome> {
        let dest = self.path(key);
        if let Some(existing) = self.head(key)? {
            return same_or_conflict(key, existing, &body);
        }
        let tmp = self.stage(key, &body)?;
        let parent = dest
            .parent()
            .expect("keys are relative, so dest has a parent");
        fs::create_dir_all(parent).map_err(io_err("creating the directory for", key))?;
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

    fn replace_if_match(&self, key: &Key, body: Body<'_>, expected: &ETag) -> Result<PutOutcome> {
        let dest = self.path(key);
        let lock_dir = self.root.join(".locks");
        fs::create_dir_all(&lock_dir).map_err(io_err("creating the lock dir for", key))?;
        let lock_name = key.as_str().replace('%', "%25").replace('/', "%2F");
        let lock = File::create(lock_dir.join(lock_name)).map_err(io_err("locking", key))?;
        lock.lock().map_err(io_err("locking", key))?;
        match self.head(key)? {
            Some(current) if current.etag == *expected => {}
            _ => return Err(StoreError::PreconditionFailed { key: key.clone() }),
        }
        let tmp = self.stage(key, &body)?;
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
            PutMode::ReplaceIfMatch(etag) => self.replace_if_match(key, body, &etag),
        }
    }

    fn get(&self, key: &Key) -> Result<Object> {
        let path = self.path(key);
        let mut file = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(StoreError::NotFound { key: key.clone() })
            }
            Err(e) => return Err(io_err("reading", key)(e)),
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
        let meta = self
            .head(key)?
            .ok_or_else(|| StoreError::NotFound { key: key.clone() })?;
        Ok(Object {
            reader: Box::new(io::BufReader::with_capacity(256 << 10, file)),
            meta,
        })
    }

    fn head(&self, key: &Key) -> Result<Option<ObjectMeta>> {
        let file = match File::open(self.path(key)) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_err("reading", key)(e)),
        };
        let (sha256, size) = Digest::of_reader(io::BufReader::with_capacity(256 << 10, file))
            .map_err(io_err("hashing", key))?;
        Ok(Some(ObjectMeta {
            size,
            etag: ETag(sha256.hex()),
            sha256: Some(sha256),
        }))
    }

    fn list(&self, prefix: &str) -> Result<Vec<Listed>> {
        let dir_part = match prefix.rfind('/') {
            Some(i) => &prefix[..i],
            None => "",
        };
        let start = self.root.join(dir_part);
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
                if ft.is_dir() {
                    stack.push((dirent.path(), key));
                } else if key.starts_with(prefix) {
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
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}
