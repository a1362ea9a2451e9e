//! The store's narrow API: validated keys, bodies and their put modes,
//! objects and their metadata, the [`Store`] trait every implementation
//! provides, and [`StoreError`].

use std::fmt;
use std::io::{self, Read, Seek};
use std::path::Path;

use crate::digest::Digest;
use crate::error::Class;

/// A validated object key: `/`-separated, relative, no empty, `.` or `..`
/// segment, no segment starting with `.` at the top level.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Key(String);

impl Key {
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
pub enum Data<'a> {
    Bytes(&'a [u8]),
    /// The body's `size` bytes from `offset` on in a regular file (a whole
    /// file, or one member of the build's assets pack).
    File {
        path: &'a Path,
        offset: u64,
    },
}

/// Bytes plus their claimed digest and size. A store verifies the claim while
/// writing and refuses a body that does not match it.
pub struct Body<'a> {
    pub data: Data<'a>,
    pub sha256: Digest,
    pub size: u64,
}

impl<'a> Body<'a> {
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
    pub size: u64,
    pub etag: ETag,
    /// The sha256 the store vouches for, when it keeps one.
    pub sha256: Option<Digest>,
}

/// One object of a listing.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Listed {
    pub key: Key,
    pub size: u64,
}

/// An open object: a reader plus its metadata.
pub struct Object {
    pub reader: Box<dyn Read + Send>,
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

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{key}: not found in the store")]
    NotFound { key: Key },
    #[error("{key}: already exists with different content; immutable keys are never overwritten (tampering, or a bug: compare the stored object with what you are publishing)")]
    AlreadyExists { key: Key },
    #[error("{key}: changed since it was read (compare-and-swap lost)")]
    PreconditionFailed { key: Key },
    #[error("{key}: the bytes to write do not match their expected sha256 {expected} (got {actual}); the source changed while publishing")]
    BodyMismatch {
        key: Key,
        expected: Digest,
        actual: Digest,
    },
    /// What is stored under the key is not an object: a symlink, a fifo, a
    /// device, or a directory on the way that is a link (local store).
    #[error("{key}: {why}")]
    NotAnObject { key: Key, why: String },
    #[error("invalid object key `{key}`: {why}")]
    InvalidKey { key: String, why: String },
    #[error("{0}")]
    Unsupported(String),
    #[error("{op} {key}: {message}")]
    Backend {
        op: &'static str,
        key: String,
        message: String,
        /// The client library's whole description, shown with `--verbose`.
        raw: Option<String>,
    },
    /// The server did not answer (a timeout) or could not be connected to.
    #[error("{op} {key}: {detail}")]
    Unreachable {
        op: &'static str,
        key: String,
        timed_out: bool,
        detail: String,
    },
    #[error("{op} {key}")]
    Io {
        op: &'static str,
        key: String,
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

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// An object store: create-only immutable objects and compare-and-swap pointers.
pub trait Store: Send + Sync {
    /// A human-readable location, for messages (`/path/to/store`, `s3://b/p`).
    fn location(&self) -> String;
    fn put(
        &self,
        key: &Key,
        body: Body<'_>,
        mode: PutMode,
        opts: &PutOptions,
    ) -> Result<PutOutcome>;
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
