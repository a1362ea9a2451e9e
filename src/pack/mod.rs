//! The artifact: a reproducible `tar.gz` of the app directory (pack spec v1).
//!
//! Packing is two steps. [`scan`] walks the tree and turns it into a sorted
//! list of [`Entry`] values, refusing anything the spec cannot represent
//! (devices, fifos, sockets, symlinks that leave the tree, non-UTF-8 names).
//! [`write()`] streams those entries as a tar with normalised headers into the
//! deterministic gzip of [`crate::gzip`], hashing the output as it goes.
//! [`insert_generated`] adds a file the build made (Django's
//! `staticfiles.json`) to the list, in sorted position; it is packed exactly
//! as a file of the tree with the same bytes would be. The
//! spec itself is `manifests/pack-spec-v1.md`; every rule there is enforced
//! here and pinned by the golden-digest test.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::digest::{Digest, HashingWriter};
use crate::error::Class;
use crate::gzip::GzWriter;

mod scan;

pub use scan::{
    check_link, glob_set, scan, scan_explained, Excluded, Filter, GlobError, DEFAULT_EXCLUDES,
};

/// The pack spec implemented here; recorded in every manifest.
pub const SPEC: &str = "verbatim.pack/v1";

/// mtime used when `SOURCE_DATE_EPOCH` is not set.
pub const DEFAULT_MTIME: u64 = 0;

/// One thing to store in the archive, in archive order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// `/`-separated path relative to the app dir; directories have no trailing `/`.
    pub path: String,
    /// What it is, and what the archive records of it.
    pub kind: EntryKind,
}

/// A file's identity and times as `lstat` gave them when it was scanned:
/// what the build cache compares, none of it packed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stamp {
    /// Modified, in ns since the epoch.
    pub mtime_ns: i128,
    /// Changed (content, mode or name), in ns since the epoch.
    pub ctime_ns: i128,
    /// The inode number.
    pub ino: u64,
    /// The whole `st_mode`.
    pub mode: u32,
}

impl Stamp {
    /// The stamp of `m`.
    pub fn of(m: &fs::Metadata) -> Stamp {
        let ns = |s: i64, n: i64| i128::from(s) * 1_000_000_000 + i128::from(n);
        Stamp {
            mtime_ns: ns(m.mtime(), m.mtime_nsec()),
            ctime_ns: ns(m.ctime(), m.ctime_nsec()),
            ino: m.ino(),
            mode: m.mode(),
        }
    }
}

/// What an [`Entry`] is: the only kinds the pack spec can hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryKind {
    /// A directory (packed 0755, as `path/`).
    Dir,
    /// A regular file of the tree, read when it is packed.
    File {
        /// Its size in bytes when scanned; a file that changes size before
        /// it is packed is [`PackError::Changed`].
        size: u64,
        /// Whether the owner may execute it: packed 0755, else 0644.
        executable: bool,
        /// What `lstat` said of it when scanned (the build cache's record).
        stamp: Stamp,
    },
    /// A symlink that stays inside the tree ([`check_link`]), packed 0777.
    Symlink {
        /// Its target, relative, exactly as the link holds it.
        target: String,
    },
    /// A regular file (0644) whose bytes the build made, not read from the
    /// tree: added by [`insert_generated`].
    Generated {
        /// The whole file.
        bytes: Vec<u8>,
    },
}

/// Why a tree cannot be packed.
#[derive(Debug, thiserror::Error)]
pub enum PackError {
    /// The app directory (the root given to [`scan`]) is missing or not a
    /// directory.
    #[error("app directory {0} does not exist or is not a directory (set `app.dir` in verbatim.toml or --app-dir)")]
    MissingRoot(PathBuf),
    /// Something the spec cannot hold: a fifo, socket or device.
    #[error("{path}: {what} cannot be packed; remove it or add it to `app.exclude`")]
    Unsupported {
        /// Where it is on disk.
        path: PathBuf,
        /// What it is (`a fifo`, `a socket`, …).
        what: &'static str,
    },
    /// A symlink whose target is absolute or leaves the tree, lexically or
    /// once resolved.
    #[error("{path}: symlink to {target} points outside the app directory; only links that stay inside the tree are packed (replace it with a copy or exclude it)")]
    EscapingLink {
        /// The link, on disk.
        path: PathBuf,
        /// Its target as it holds it.
        target: String,
    },
    /// A symlink whose target does not exist.
    #[error("{path}: symlink to {target} is dangling; fix or exclude it")]
    DanglingLink {
        /// The link, on disk.
        path: PathBuf,
        /// Its target as it holds it.
        target: String,
    },
    /// A file name, or a symlink's target, that is not UTF-8.
    #[error("{0}: file name is not valid UTF-8; rename it or exclude it")]
    NonUtf8(PathBuf),
    /// A file whose size changed between [`scan`] and [`write()`], or while
    /// it was read: the archive would not be what was scanned.
    #[error("{path}: changed size while it was being packed; pack a tree nobody is writing to")]
    Changed {
        /// The file, on disk.
        path: PathBuf,
    },
    /// A pattern of `app.exclude` that does not compile: a usage error
    /// (exit 2).
    #[error("invalid exclude glob `{glob}` in `app.exclude`: {message}")]
    BadGlob {
        /// The pattern (all of them when only the set as a whole failed).
        glob: String,
        /// What globset said is wrong with it.
        message: String,
    },
    /// A `.gitignore` or `.ignore` file that cannot be read or parsed.
    #[error("{path}: {message}; fix it, or set `app.respect_gitignore = false`")]
    BadIgnoreFile {
        /// The ignore file.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// [`insert_generated`] refused the path.
    #[error("cannot add {path} to the artifact: {why}")]
    CannotInsert {
        /// The `/`-separated path it was asked to add.
        path: String,
        /// Why it cannot be there.
        why: String,
    },
    /// Reading the tree, or writing the archive, failed.
    #[error("reading {path}")]
    Io {
        /// The file or directory read (`<artifact output>` when writing the
        /// archive failed).
        path: PathBuf,
        /// The error of the operating system.
        #[source]
        source: io::Error,
    },
}

impl PackError {
    /// The exit class of this error: a bad glob is a usage error.
    pub fn class(&self) -> Option<Class> {
        match self {
            PackError::BadGlob { .. } => Some(Class::Usage),
            _ => None,
        }
    }
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> PackError + '_ {
    move |source| PackError::Io {
        path: path.to_owned(),
        source,
    }
}

/// What [`insert_generated`] did besides adding the file.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Inserted {
    /// The tree's entry the generated file replaced, if the tree had one.
    pub replaced: Option<EntryKind>,
    /// Directories added because the tree had none there (outermost first).
    pub added_dirs: Vec<String>,
}

/// Puts a generated file at `path` (`/`-separated, relative to the app dir)
/// into `entries` (sorted, as [`scan`] returns them), keeping them sorted:
/// it replaces a file or symlink the tree has there, and directories the
/// tree lacks on the way are added (packed like every directory). Refused
/// when `path` is not a plain relative path, is a directory in the tree, or
/// lies below something that is not a directory there (a symlink would make
/// the unpacker write through it, which it refuses).
pub fn insert_generated(
    entries: &mut Vec<Entry>,
    path: &str,
    bytes: Vec<u8>,
) -> Result<Inserted, PackError> {
    let refuse = |why: String| PackError::CannotInsert {
        path: path.to_owned(),
        why,
    };
    let names: Vec<&str> = path.split('/').collect();
    if names
        .iter()
        .any(|n| n.is_empty() || *n == "." || *n == "..")
    {
        return Err(refuse("not a plain relative path".into()));
    }
    let find = |entries: &[Entry], p: &str| {
        entries.binary_search_by(|e| e.path.as_bytes().cmp(p.as_bytes()))
    };
    let mut inserted = Inserted::default();
    for end in 1..names.len() {
        let dir = names[..end].join("/");
        match find(entries, &dir) {
            Ok(i) => match &entries[i].kind {
                EntryKind::Dir => {}
                EntryKind::Symlink { target } => {
                    return Err(refuse(format!(
                        "{dir} is a symlink (to {target}) in the app directory; \
                         name a path through real directories"
                    )))
                }
                _ => return Err(refuse(format!("{dir} is a file in the app directory"))),
            },
            Err(i) => {
                entries.insert(
                    i,
                    Entry {
                        path: dir.clone(),
                        kind: EntryKind::Dir,
                    },
                );
                inserted.added_dirs.push(dir);
            }
        }
    }
    let entry = Entry {
        path: path.to_owned(),
        kind: EntryKind::Generated { bytes },
    };
    match find(entries, path) {
        Ok(i) if entries[i].kind == EntryKind::Dir => {
            return Err(refuse("it is a directory in the app directory".into()))
        }
        Ok(i) => {
            inserted.replaced = Some(std::mem::replace(&mut entries[i], entry).kind);
        }
        Err(i) => entries.insert(i, entry),
    }
    Ok(inserted)
}

/// What [`write()`] produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packed {
    /// The sha256 of the compressed archive: the artifact's digest.
    pub sha256: Digest,
    /// The compressed archive's size in bytes.
    pub size: u64,
    /// Uncompressed bytes of file content read.
    pub content_bytes: u64,
    /// The compressed length of each deflate block, in order (`gzip`).
    pub blocks: Vec<u64>,
}

/// Streams `entries` (from [`scan`] of `root`) into `out` as a gzipped tar.
/// `on_bytes` is told how many content bytes were packed, as it happens.
pub fn write(
    root: &Path,
    entries: &[Entry],
    mtime: u64,
    threads: usize,
    out: impl Write,
    on_bytes: &dyn Fn(u64),
) -> Result<Packed, PackError> {
    let out_err = |source| PackError::Io {
        path: PathBuf::from("<artifact output>"),
        source,
    };
    let gz = GzWriter::new(HashingWriter::new(out), threads).map_err(out_err)?;
    let mut tar = tar::Builder::new(gz);
    let mut content_bytes = 0;
    for entry in entries {
        let fs_path = root.join(&entry.path);
        let mut h = tar::Header::new_gnu();
        h.set_mtime(mtime);
        h.set_uid(0);
        h.set_gid(0);
        match &entry.kind {
            EntryKind::Dir => {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_mode(0o755);
                h.set_size(0);
                tar.append_data(&mut h, format!("{}/", entry.path), io::empty())
                    .map_err(out_err)?;
            }
            EntryKind::Symlink { target } => {
                h.set_entry_type(tar::EntryType::Symlink);
                h.set_mode(0o777);
                h.set_size(0);
                tar.append_link(&mut h, &entry.path, target)
                    .map_err(out_err)?;
            }
            EntryKind::Generated { bytes } => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_mode(0o644);
                h.set_size(bytes.len() as u64);
                tar.append_data(&mut h, &entry.path, bytes.as_slice())
                    .map_err(out_err)?;
                on_bytes(bytes.len() as u64);
                content_bytes += bytes.len() as u64;
            }
            EntryKind::File {
                size, executable, ..
            } => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_mode(if *executable { 0o755 } else { 0o644 });
                h.set_size(*size);
                let file = File::open(&fs_path).map_err(io_err(&fs_path))?;
                let mut reader = ExactReader {
                    inner: file.take(*size),
                    left: *size,
                    on_bytes,
                };
                if let Err(e) = tar.append_data(&mut h, &entry.path, &mut reader) {
                    return Err(if reader.left > 0 || is_changed(&e) {
                        PackError::Changed { path: fs_path }
                    } else {
                        PackError::Io {
                            path: fs_path,
                            source: e,
                        }
                    });
                }
                if reader.left != 0 || probe_grew(&fs_path, *size) {
                    return Err(PackError::Changed { path: fs_path });
                }
                content_bytes += size;
            }
        }
    }
    let gz = tar.into_inner().map_err(out_err)?;
    let (hashing, blocks) = gz.finish_indexed().map_err(out_err)?;
    let (_, sha256, size) = hashing.finish();
    Ok(Packed {
        sha256,
        size,
        content_bytes,
        blocks,
    })
}

fn is_changed(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::UnexpectedEof
}

fn probe_grew(path: &Path, size: u64) -> bool {
    fs::metadata(path).map(|m| m.len() != size).unwrap_or(true)
}

/// Yields exactly `left` bytes or fails with `UnexpectedEof`, so a file that
/// shrinks while being read cannot produce a corrupt archive.
struct ExactReader<'a, R> {
    inner: R,
    left: u64,
    on_bytes: &'a dyn Fn(u64),
}

impl<R: Read> Read for ExactReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.left == 0 {
            return Ok(0);
        }
        let n = self.inner.read(buf)?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        self.left -= n as u64;
        (self.on_bytes)(n as u64);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scan_sorts_bytewise_and_skips_excluded() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        for p in ["a/x", "a-b/y", "B", "a/__pycache__/c.pyc"] {
            let p = root.join(p);
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            fs::write(p, "1").unwrap();
        }
        let filter = Filter::new(&["**/__pycache__".into()], vec![]).unwrap();
        let paths: Vec<_> = scan(root, &filter)
            .unwrap()
            .into_iter()
            .map(|e| e.path)
            .collect();
        assert_eq!(paths, ["B", "a", "a-b", "a-b/y", "a/x"]);
    }

    fn paths(entries: &[Entry]) -> Vec<&str> {
        entries.iter().map(|e| e.path.as_str()).collect()
    }

    fn dir(p: &str) -> Entry {
        Entry {
            path: p.into(),
            kind: EntryKind::Dir,
        }
    }

    fn file(p: &str) -> Entry {
        Entry {
            path: p.into(),
            kind: EntryKind::File {
                size: 1,
                executable: false,
                stamp: Stamp::default(),
            },
        }
    }

    #[test]
    fn a_generated_file_goes_in_sorted_position_with_its_directories() {
        let mut entries = vec![dir("a"), file("a-b"), file("a/x"), file("b")];
        let done = insert_generated(&mut entries, "a/s/t/f.json", b"{}".to_vec()).unwrap();
        assert_eq!(
            paths(&entries),
            ["a", "a-b", "a/s", "a/s/t", "a/s/t/f.json", "a/x", "b"]
        );
        assert_eq!(done.added_dirs, ["a/s", "a/s/t"]);
        assert_eq!(done.replaced, None);
        let mut sorted = entries.clone();
        sorted.sort_by(|a, b| a.path.as_bytes().cmp(b.path.as_bytes()));
        assert_eq!(entries, sorted);

        // The tree's own file there is replaced, nothing else moves.
        let done = insert_generated(&mut entries, "a/x", b"new".to_vec()).unwrap();
        assert_eq!(done.replaced, Some(file("a/x").kind));
        assert!(done.added_dirs.is_empty());
        assert_eq!(entries.len(), 7);
        assert_eq!(
            entries[5].kind,
            EntryKind::Generated {
                bytes: b"new".to_vec()
            }
        );
    }

    #[test]
    fn a_generated_file_never_goes_below_a_link_or_over_a_directory() {
        let link = Entry {
            path: "l".into(),
            kind: EntryKind::Symlink { target: "a".into() },
        };
        let mut entries = vec![dir("a"), file("f"), link];
        for (path, why) in [
            ("l/x.json", "symlink"),
            ("f/x.json", "is a file"),
            ("a", "is a directory"),
            ("a/../x", "plain relative"),
            ("/x", "plain relative"),
            ("a//x", "plain relative"),
        ] {
            let err = insert_generated(&mut entries, path, vec![]).unwrap_err();
            assert!(err.to_string().contains(why), "{path}: {err}");
        }
        assert_eq!(paths(&entries), ["a", "f", "l"]);
    }

    #[test]
    fn a_generated_file_is_packed_like_a_tree_file() {
        // The same bytes from the tree or from memory: the same archive.
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(dir.path().join("d")).unwrap();
        fs::write(dir.path().join("d/f.json"), b"{\"a\": 1}\n").unwrap();
        let filter = Filter::new(&[], vec![]).unwrap();
        let from_tree = scan(dir.path(), &filter).unwrap();
        let empty = tempfile::tempdir().unwrap();
        let mut generated = Vec::new();
        insert_generated(&mut generated, "d/f.json", b"{\"a\": 1}\n".to_vec()).unwrap();
        let pack = |root: &Path, entries: &[Entry]| {
            let mut out = Vec::new();
            let packed = write(root, entries, 7, 1, &mut out, &|_| {}).unwrap();
            (out, packed)
        };
        let (a, pa) = pack(dir.path(), &from_tree);
        let (b, pb) = pack(empty.path(), &generated);
        assert_eq!(a, b);
        assert_eq!(pa, pb);
        assert_eq!(pa.content_bytes, 9);
    }

    #[test]
    fn bad_glob_names_the_glob() {
        let err = Filter::new(&["a[".into()], vec![]).err().unwrap();
        assert!(err.to_string().contains("`a[`"), "{err}");
    }
}
