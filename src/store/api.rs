//! The store's narrow API: validated keys, bodies and their put modes,
//! objects and their metadata, the [`Store`] trait every implementation
//! provides, and [`StoreError`].

use std::fmt;
use std::io::{self, Read, Seek};
use std::ops::ControlFlow;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::digest::Digest;
use crate::error::Class;

/// A validated object key: `/`-separated, relative, no empty, `.` or `..`
/// segment, no segment starting with `.` at the top level.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Key(String);

impl Key {
    /// Checks `key` against the rules of [`Key`]; a key that breaks one is
    /// [`StoreError::InvalidKey`], naming the rule.
    pub fn new(key: impl Into<String>) -> Result<Key, StoreError> {
        let key = key.into();
        let bad = |why: &str| StoreError::InvalidKey {
            key: key.clone(),
            why: why.to_owned(),
        };
        if key.is_empty() {
            return Err(bad("it is empty"));
        }
        if key.starts_with('.') {
            return Err(bad("it starts with `.`"));
        }
        if key.chars().any(|c| c.is_control() || c == '\\') {
            return Err(bad("it contains a control character or backslash"));
        }
        if key
            .split('/')
            .any(|s| s.is_empty() || s == "." || s == "..")
        {
            return Err(bad("it has an empty, `.` or `..` segment"));
        }
        Ok(Key(key))
    }

    /// The key as the store spells it.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An opaque version tag for compare-and-swap.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ETag(pub String);

/// How a put treats an existing object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PutMode {
    /// Create the key. If it exists with the same bytes, do nothing; with
    /// other bytes, fail with [`StoreError::AlreadyExists`].
    CreateOnly,
    /// Replace the key only if its current ETag is this one; otherwise fail
    /// with [`StoreError::PreconditionFailed`].
    ReplaceIfMatch(ETag),
    /// Write the key whatever is there: only for keys one writer owns (a
    /// host's own report), never for immutable objects or pointers.
    Overwrite,
}

/// What to write.
#[derive(Clone, Copy)]
pub enum Data<'a> {
    /// Bytes already in memory (a manifest, an event, a pointer).
    Bytes(&'a [u8]),
    /// The body's `size` bytes from `offset` on in a regular file (a whole
    /// file, or one member of the build's assets pack).
    File {
        /// The file, opened regular-only without following a symlink.
        path: &'a Path,
        /// Where the body starts in it, in bytes.
        offset: u64,
    },
}

/// Bytes plus their claimed digest and size. A store verifies the claim while
/// writing and refuses a body that does not match it.
#[derive(Clone, Copy)]
pub struct Body<'a> {
    /// Where the bytes come from.
    pub data: Data<'a>,
    /// The sha256 the bytes must have.
    pub sha256: Digest,
    /// How many bytes there must be.
    pub size: u64,
}

impl<'a> Body<'a> {
    /// Bytes in memory, their digest and size computed here.
    pub fn bytes(bytes: &'a [u8]) -> Body<'a> {
        Body {
            sha256: Digest::of(bytes),
            size: bytes.len() as u64,
            data: Data::Bytes(bytes),
        }
    }

    /// A file whose digest and size the caller already knows.
    pub fn file(path: &'a Path, sha256: Digest, size: u64) -> Body<'a> {
        Body::file_at(path, 0, sha256, size)
    }

    /// The `size` bytes at `offset` in a file, whose digest the caller knows.
    pub fn file_at(path: &'a Path, offset: u64, sha256: Digest, size: u64) -> Body<'a> {
        Body {
            data: Data::File { path, offset },
            sha256,
            size,
        }
    }

    /// Opens a reader over the body's bytes. A file is read for `size`
    /// bytes and no further: what a store checks against the digest is
    /// exactly what it stores.
    pub fn open(&self) -> io::Result<Box<dyn Read + Send + 'a>> {
        Ok(match self.data {
            Data::Bytes(b) => Box::new(b),
            Data::File { path, offset } => {
                let mut file = crate::safe_fs::open_regular(path)?;
                file.seek(io::SeekFrom::Start(offset))?;
                Box::new(file.take(self.size))
            }
        })
    }
}

/// Object metadata sent with a put.
#[derive(Debug, Clone, Default)]
pub struct PutOptions {
    /// `Content-Type`.
    pub content_type: Option<String>,
    /// `Cache-Control`.
    pub cache_control: Option<String>,
}

impl PutOptions {
    /// A JSON record read fresh every time (events, pointers, reports,
    /// signatures): `application/json`, `no-cache`.
    pub fn json() -> PutOptions {
        PutOptions {
            content_type: Some("application/json".into()),
            cache_control: Some("no-cache".into()),
        }
    }
}

/// One put of a batch ([`Store::put_many`]): [`Store::put`]'s arguments.
pub struct Put<'a> {
    /// The key to write.
    pub key: &'a Key,
    /// Its bytes.
    pub body: Body<'a>,
    /// How an existing object is treated.
    pub mode: PutMode,
    /// The metadata sent with it.
    pub opts: &'a PutOptions,
}

/// Called as each put of a batch ends, with its index: `Break` starts no
/// more of them (the caller must stop: a signal came, say).
pub type AfterPut<'a> = &'a (dyn Fn(usize) -> ControlFlow<()> + Sync);

/// How a put ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PutOutcome {
    /// The object was written.
    Written(ETag),
    /// A create-only put found the same bytes already there; nothing written.
    Unchanged(ETag),
}

/// An object's size and version, from [`Store::head`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectMeta {
    /// The object's size in bytes.
    pub size: u64,
    /// Its current version, for [`PutMode::ReplaceIfMatch`].
    pub etag: ETag,
    /// The sha256 the store vouches for, when it keeps one.
    pub sha256: Option<Digest>,
}

/// One object of a listing.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Listed {
    /// The object's key.
    pub key: Key,
    /// Its size in bytes.
    pub size: u64,
}

/// An open object: a reader plus its metadata.
pub struct Object {
    /// The object's bytes; a large object streams from the store.
    pub reader: Box<dyn Read + Send>,
    /// Its size and version as the store announced them.
    pub meta: ObjectMeta,
}

impl Object {
    /// Reads the whole object into memory (for small objects: manifests, pointers).
    pub fn into_bytes(self) -> io::Result<Vec<u8>> {
        self.into_bytes_limited(u64::MAX)
    }

    /// Reads the whole object into memory, failing once it is over `limit`
    /// bytes (whatever size the store announced).
    pub fn into_bytes_limited(self, limit: u64) -> io::Result<Vec<u8>> {
        if self.meta.size > limit {
            return Err(too_large(limit));
        }
        let mut buf = Vec::with_capacity(self.meta.size.min(1 << 20) as usize);
        self.reader
            .take(limit.saturating_add(1))
            .read_to_end(&mut buf)?;
        if buf.len() as u64 > limit {
            return Err(too_large(limit));
        }
        Ok(buf)
    }
}

fn too_large(limit: u64) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("larger than the {limit} bytes allowed for it"),
    )
}

/// Why a store operation failed. [`StoreError::class`] says which of them
/// have an exit code of their own.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Nothing is stored under the key (a get).
    #[error("{key}: not found in the store")]
    NotFound {
        /// The key read.
        key: Key,
    },
    /// A create-only put found other bytes under the key: an integrity
    /// failure (exit 5), never an overwrite.
    #[error("{key}: already exists with different content; immutable keys are never overwritten (tampering, or a bug: compare the stored object with what you are publishing)")]
    AlreadyExists {
        /// The immutable key.
        key: Key,
    },
    /// A compare-and-swap put found another version than the one it
    /// expected, or no object at all: a lost race (exit 4).
    #[error("{key}: changed since it was read (compare-and-swap lost)")]
    PreconditionFailed {
        /// The pointer's key.
        key: Key,
    },
    /// The bytes read for a put did not have the body's claimed sha256 or
    /// size; nothing was written (exit 5).
    #[error("{key}: the bytes to write do not match their expected sha256 {expected} (got {actual}); the source changed while publishing")]
    BodyMismatch {
        /// The key being written.
        key: Key,
        /// The digest the body claimed.
        expected: Digest,
        /// The digest of the bytes actually read.
        actual: Digest,
    },
    /// What is stored under the key is not an object: a symlink, a fifo, a
    /// device, or a directory on the way that is a link (local store).
    #[error("{key}: {why}")]
    NotAnObject {
        /// The key read or written.
        key: Key,
        /// What was found there instead.
        why: String,
    },
    /// A key that breaks the rules of [`Key`]: a usage error (exit 2).
    #[error("invalid object key `{key}`: {why}")]
    InvalidKey {
        /// The key as given.
        key: String,
        /// Which rule it breaks.
        why: String,
    },
    /// Something this store cannot do (a compare-and-swap of a large
    /// object, a server that ignores conditional writes); the message says
    /// what, and what to do instead.
    #[error("{0}")]
    Unsupported(String),
    /// The server refused or failed a request.
    #[error("{op} {key}: {message}")]
    Backend {
        /// The request: `GET`, `PUT`, `HEAD`, `LIST`, ….
        op: &'static str,
        /// The key or prefix it was for.
        key: String,
        /// One line a person can act on.
        message: String,
        /// The client library's whole description, shown with `--verbose`.
        raw: Option<String>,
    },
    /// The server did not answer (a timeout) or could not be connected to.
    /// The S3 store turns it into a [`StoreError::Backend`] naming the
    /// endpoint before returning it.
    #[error("{op} {key}: {detail}")]
    Unreachable {
        /// The request: `GET`, `PUT`, `HEAD`, `LIST`, ….
        op: &'static str,
        /// The key or prefix it was for.
        key: String,
        /// Whether it timed out, rather than failing to connect.
        timed_out: bool,
        /// The first line of the client library's description.
        detail: String,
    },
    /// Reading or writing bytes failed: the local store's files, a body's
    /// file, or an object's body as it arrived.
    #[error("{op} {key}")]
    Io {
        /// What was being done to the key (`reading`, `linking`, …).
        op: &'static str,
        /// The key or prefix it was for.
        key: String,
        /// The error of the operating system.
        #[source]
        source: io::Error,
    },
}

impl StoreError {
    /// The exit class of this error, if it has one: a lost
    /// compare-and-swap is a lost race; other bytes under an immutable key,
    /// a body that does not match its digest or a non-object where an
    /// object should be is an integrity failure; a bad key is a usage error.
    pub fn class(&self) -> Option<Class> {
        match self {
            StoreError::PreconditionFailed { .. } => Some(Class::LostRace),
            StoreError::AlreadyExists { .. }
            | StoreError::BodyMismatch { .. }
            | StoreError::NotAnObject { .. } => Some(Class::Integrity),
            StoreError::InvalidKey { .. } => Some(Class::Usage),
            _ => None,
        }
    }
}

/// A store operation's result; the error is a [`StoreError`] unless named.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// An object store: create-only immutable objects and compare-and-swap pointers.
pub trait Store: Send + Sync {
    /// A human-readable location, for messages (`/path/to/store`, `s3://b/p`).
    fn location(&self) -> String;
    /// Writes `body` under `key` as `mode` says, with `opts`' metadata. The
    /// body is checked against its digest and size before it becomes visible
    /// ([`StoreError::BodyMismatch`] otherwise); a create-only put of the bytes
    /// already there is [`PutOutcome::Unchanged`].
    fn put(
        &self,
        key: &Key,
        body: Body<'_>,
        mode: PutMode,
        opts: &PutOptions,
    ) -> Result<PutOutcome>;
    /// Runs every put of `puts` with up to `concurrency` in flight, calling
    /// `after` as each ends, and returns their outcomes in order. After a
    /// failure, or once `after` breaks, nothing new starts: the puts not
    /// started come back `None`. Each put is checked as [`Store::put`]'s.
    fn put_many(
        &self,
        puts: &[Put<'_>],
        concurrency: usize,
        after: AfterPut<'_>,
    ) -> Vec<Option<Result<PutOutcome>>> {
        let stopped = AtomicBool::new(false);
        let indexed: Vec<(usize, &Put<'_>)> = puts.iter().enumerate().collect();
        crate::par::try_map(&indexed, concurrency, |&(i, p)| {
            if stopped.load(Ordering::Relaxed) {
                return Err(None);
            }
            let outcome = self.put(p.key, p.body, p.mode.clone(), p.opts);
            if after(i).is_break() {
                stopped.store(true, Ordering::Relaxed);
            }
            outcome.map_err(Some)
        })
        .into_iter()
        .map(|r| match r {
            Some(Err(None)) | None => None,
            Some(Ok(outcome)) => Some(Ok(outcome)),
            Some(Err(Some(e))) => Some(Err(e)),
        })
        .collect()
    }
    /// Opens the object under `key`; [`StoreError::NotFound`] when there is
    /// none.
    fn get(&self, key: &Key) -> Result<Object>;
    /// `Ok(None)` when the key does not exist.
    fn head(&self, key: &Key) -> Result<Option<ObjectMeta>>;
    /// Every object whose key starts with `prefix` (a plain string prefix),
    /// sorted by key.
    fn list(&self, prefix: &str) -> Result<Vec<Listed>>;
    /// Whether the store is there at all (a local directory can be
    /// missing; a bucket answers for itself on the first request).
    fn exists(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_validated() {
        for ok in [
            "a",
            "artifacts/sha256/x.tar.gz",
            "assets/css/site.1234.css",
            "envs/prod.json",
        ] {
            Key::new(ok).unwrap();
        }
        for bad in [
            "", ".tmp/x", "a//b", "a/./b", "a/../b", "/abs", "a/", "a\\b", "a\nb",
        ] {
            assert!(Key::new(bad).is_err(), "{bad:?} accepted");
        }
    }
}
