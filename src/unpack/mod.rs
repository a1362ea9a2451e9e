//! Safe unpacking of an artifact into a fresh directory.
//!
//! Artifacts are verified by digest before they get here, but a digest only
//! proves the bytes are the ones published, not that they are benign. So every
//! entry is checked: relative paths only, no `..`, no writing through a
//! symlink, symlinks that stay inside the tree, and nothing but files,
//! directories and symlinks. Symlinks are created last, so no file is ever
//! written through one. Unpacking also stops at the entry count and unpacked
//! size the manifest recorded at build time, so a small artifact cannot
//! expand into a full disk.
//!
//! Every file is hashed as it is written: the [`Entry`] list returned is
//! what a host keeps to tell later whether a release was modified.

mod writers;

use std::collections::BTreeSet;
use std::fs;
use std::io::{self, Read};
use std::path::Path;

use writers::{Creator, File, Job, Target, Writers, SMALL_FILE};

/// An entry that cannot be unpacked safely, or an I/O failure.
#[derive(Debug, thiserror::Error)]
pub enum UnpackError {
    /// The artifact holds an entry that is not safe, or more than its
    /// manifest records; unpacking stops at it.
    #[error("artifact entry `{entry}`: {why}; refusing to unpack it")]
    Refused {
        /// The entry's path as the archive names it (`<non-UTF-8>` when it
        /// is not UTF-8).
        entry: String,
        /// What is wrong with it.
        why: String,
    },
    /// Unpacking one entry failed: reading its header, or creating or
    /// writing it.
    #[error("artifact entry `{entry}`: {op}")]
    Entry {
        /// The entry's path as the archive names it.
        entry: String,
        /// What was being done (`creating the file`, `writing`, …).
        op: &'static str,
        /// The error of the operating system.
        #[source]
        source: io::Error,
    },
    /// Reading the archive failed: corrupt gzip or tar, or more bytes than
    /// the limits allow.
    #[error("unpacking the artifact")]
    Io(#[from] io::Error),
}

/// One unpacked entry, as a host records it to re-check the release later.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Entry {
    /// `/`-separated, relative to the release.
    pub path: String,
    /// What it is; its fields sit beside `path` in the record, `type`
    /// naming the kind.
    #[serde(flatten)]
    pub kind: EntryKind,
}

/// What an unpacked [`Entry`] is, and what a host checks of it later
/// (`"type"`: `dir`, `file` or `symlink`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum EntryKind {
    /// A directory.
    Dir,
    /// A regular file, written 0755 or 0644.
    File {
        /// The sha256 of its bytes as written, in hex.
        sha256: String,
        /// Its size in bytes.
        size: u64,
        /// Whether it is executable (0755).
        exec: bool,
    },
    /// A symlink, created after every file and directory.
    Symlink {
        /// Its target, relative and inside the release.
        target: String,
    },
}

/// What the manifest says the artifact holds: unpacking stops beyond it.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Tar entries (files, directories, symlinks).
    pub entries: u64,
    /// Sum of the file sizes.
    pub bytes: u64,
}

impl Limits {
    /// The most tar bytes such an artifact can decompress to: contents, plus
    /// per entry a header, a GNU long-name record and padding, plus the end.
    fn stream_bytes(&self) -> u64 {
        self.bytes
            .saturating_add(self.entries.saturating_add(1).saturating_mul(8 << 10))
            .saturating_add(1 << 20)
    }
}

/// A reader that fails once more than `left` bytes were asked of it.
struct Capped<R> {
    inner: R,
    left: u64,
}

impl<R: Read> Read for Capped<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.left = self.left.checked_sub(n as u64).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                "the artifact decompresses to more than its manifest allows",
            )
        })?;
        Ok(n)
    }
}

fn refused(entry: &str, why: impl Into<String>) -> UnpackError {
    UnpackError::Refused {
        entry: entry.to_owned(),
        why: why.into(),
    }
}

/// Splits an entry path into plain components, refusing anything else.
fn components(entry: &str) -> Result<Vec<&str>, UnpackError> {
    if entry.starts_with('/') {
        return Err(refused(entry, "absolute path"));
    }
    let trimmed = entry.strip_suffix('/').unwrap_or(entry);
    let parts: Vec<&str> = trimmed.split('/').collect();
    for p in &parts {
        match *p {
            "" => return Err(refused(entry, "empty path component")),
            "." | ".." => return Err(refused(entry, "`.` or `..` in the path")),
            _ => {}
        }
    }
    Ok(parts)
}

/// Unpacks a gzipped tar from `reader` into `dest`, which must be empty,
/// refusing anything beyond `limits`. Returns every entry, in archive order
/// (symlinks last).
pub fn unpack(reader: impl Read, dest: &Path, limits: Limits) -> Result<Vec<Entry>, UnpackError> {
    unpack_tar(flate2::read::GzDecoder::new(reader), dest, limits)
}

/// [`unpack`] of a tar stream inflated elsewhere (`gzip::ParallelGunzip`).
///
/// This thread reads the stream and checks every entry; files up to
/// 1 MiB and directories are created, written and hashed on a
/// pool of writer threads, since creating a file costs the kernel far more
/// than writing a few KiB into it. Larger files are written here.
pub fn unpack_tar(
    tar_stream: impl Read,
    dest: &Path,
    limits: Limits,
) -> Result<Vec<Entry>, UnpackError> {
    let mut archive = tar::Archive::new(Capped {
        inner: tar_stream,
        left: limits.stream_bytes(),
    });
    let mut links: Vec<(String, String)> = Vec::new();
    let mut link_paths: BTreeSet<String> = BTreeSet::new();
    let mut entries: u64 = 0;
    let mut written: u64 = 0;
    let mut writers = Writers::start(crate::par::threads());
    let mut here = Creator::new();
    let mut buf = vec![0u8; COPY_BUFFER];
    for entry in archive.entries()? {
        let mut entry = entry?;
        let raw = entry.path_bytes().into_owned();
        let name =
            String::from_utf8(raw).map_err(|_| refused("<non-UTF-8>", "name is not UTF-8"))?;
        let parts = components(&name)?;
        for i in 1..parts.len() {
            if link_paths.contains(&parts[..i].join("/")) {
                return Err(refused(&name, "path goes through a symlink"));
            }
        }
        if entries + links.len() as u64 >= limits.entries {
            return Err(refused(
                &name,
                format!(
                    "the artifact holds more than the {} entries its manifest records",
                    limits.entries
                ),
            ));
        }
        let rel = parts.join("/");
        let target = Target {
            path: dest.join(&rel),
            name,
            index: entries,
        };
        match entry.header().entry_type() {
            tar::EntryType::Directory => {
                entries += 1;
                writers.send(Job::Dir(target, rel))?;
            }
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                entries += 1;
                let name = &target.name;
                let at = |op| move |source| entry_error(name, op, source);
                let size = entry.header().size().map_err(at("reading the header"))?;
                let exec = entry.header().mode().map_err(at("reading the header"))? & 0o100 != 0;
                written = written.saturating_add(size);
                if written > limits.bytes {
                    return Err(refused(
                        name,
                        format!(
                            "the artifact unpacks to more than the {} bytes its manifest records",
                            limits.bytes
                        ),
                    ));
                }
                let file = File {
                    rel,
                    size,
                    exec,
                    bytes: Vec::new(),
                };
                if size <= SMALL_FILE {
                    let mut file = file;
                    file.bytes.reserve_exact(size as usize);
                    (&mut entry)
                        .take(size)
                        .read_to_end(&mut file.bytes)
                        .map_err(at("reading"))?;
                    writers.send(Job::File(target, file))?;
                } else {
                    let done =
                        here.file(&target, file, |w| copy(&mut entry, w, &mut buf).map(drop));
                    writers.record(target.index, done)?;
                }
            }
            tar::EntryType::Symlink => {
                let link = entry
                    .link_name_bytes()
                    .ok_or_else(|| refused(&target.name, "symlink without a target"))?;
                let link = String::from_utf8(link.into_owned())
                    .map_err(|_| refused(&target.name, "symlink target is not UTF-8"))?;
                link_paths.insert(rel.clone());
                links.push((rel, link));
            }
            other => {
                return Err(refused(&target.name, format!("entry type {other:?} is not allowed (only files, directories and symlinks)")));
            }
        }
    }
    let mut out = writers.finish()?;
    for (rel, target) in &links {
        check_link_target(rel, target, &link_paths)?;
        let path = dest.join(rel);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent)
                .map_err(|e| entry_error(rel, "creating its directory", e))?;
        }
        std::os::unix::fs::symlink(target, &path).map_err(|e| match e.kind() {
            io::ErrorKind::AlreadyExists => refused(rel, "duplicate entry"),
            _ => entry_error(rel, "creating the symlink", e),
        })?;
    }
    out.extend(links.into_iter().map(|(path, target)| Entry {
        path,
        kind: EntryKind::Symlink { target },
    }));
    Ok(out)
}

fn entry_error(entry: &str, op: &'static str, source: io::Error) -> UnpackError {
    UnpackError::Entry {
        entry: entry.to_owned(),
        op,
        source,
    }
}

/// The bytes moved per read and write: a quarter of an inflated block, so
/// a large file takes few system calls.
const COPY_BUFFER: usize = 256 << 10;

/// `io::copy` through `buf`, which is larger than its 8 KiB.
fn copy(r: &mut impl Read, w: &mut impl io::Write, buf: &mut [u8]) -> io::Result<u64> {
    let mut copied = 0;
    loop {
        match r.read(buf) {
            Ok(0) => return Ok(copied),
            Ok(n) => {
                w.write_all(&buf[..n])?;
                copied += n as u64;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// A link target must be relative, stay inside the tree when resolved
/// lexically, and not pass through another symlink (which would make the
/// lexical answer wrong).
fn check_link_target(rel: &str, target: &str, links: &BTreeSet<String>) -> Result<(), UnpackError> {
    if target.starts_with('/') {
        return Err(refused(rel, format!("symlink to absolute path {target}")));
    }
    let mut stack: Vec<&str> = rel.split('/').collect();
    stack.pop();
    let parts: Vec<&str> = target
        .split('/')
        .filter(|p| !p.is_empty() && *p != ".")
        .collect();
    for (i, p) in parts.iter().enumerate() {
        if *p == ".." {
            if stack.pop().is_none() {
                return Err(refused(
                    rel,
                    format!("symlink to {target} points outside the release"),
                ));
            }
        } else {
            stack.push(p);
            if i + 1 < parts.len() && links.contains(&stack.join("/")) {
                return Err(refused(
                    rel,
                    format!("symlink to {target} goes through another symlink"),
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_paths() {
        assert_eq!(components("a/b/").unwrap(), ["a", "b"]);
        for bad in ["/etc/passwd", "a/../../x", "./a", "a//b", ".."] {
            assert!(components(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn link_targets() {
        let links: BTreeSet<String> = ["self".to_owned()].into();
        assert!(check_link_target("a/l", "../b", &links).is_ok());
        assert!(check_link_target("a/l", "../../b", &links).is_err());
        assert!(check_link_target("l", "/etc", &links).is_err());
        assert!(check_link_target("l", "self/../..", &links).is_err());
        assert!(check_link_target("l2", "self", &links).is_ok());
    }

    fn tar_of(files: &[(&str, Vec<u8>, u32)]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (path, bytes, mode) in files {
            let mut h = tar::Header::new_gnu();
            h.set_size(bytes.len() as u64);
            h.set_mode(*mode);
            h.set_entry_type(tar::EntryType::Regular);
            b.append_data(&mut h, path, bytes.as_slice()).unwrap();
        }
        b.into_inner().unwrap()
    }

    const ANY: Limits = Limits {
        entries: 10_000,
        bytes: 1 << 30,
    };

    #[test]
    fn small_and_large_files_come_back_in_archive_order_with_their_digests_and_modes() {
        use std::os::unix::fs::PermissionsExt;
        let mut files: Vec<(String, Vec<u8>, u32)> = (0..300)
            .map(|i| (format!("d{}/f{i:03}", i % 7), vec![i as u8; i * 37], 0o644))
            .collect();
        files.push(("big/blob".into(), vec![7u8; 3 << 20], 0o755));
        let borrowed: Vec<(&str, Vec<u8>, u32)> = files
            .iter()
            .map(|(p, b, m)| (p.as_str(), b.clone(), *m))
            .collect();
        let dest = tempfile::tempdir().unwrap();
        let entries = unpack_tar(&tar_of(&borrowed)[..], dest.path(), ANY).unwrap();
        assert_eq!(entries.len(), files.len());
        for (entry, (path, bytes, mode)) in entries.iter().zip(&files) {
            assert_eq!(&entry.path, path);
            let EntryKind::File { sha256, size, exec } = &entry.kind else {
                panic!("{path} is not a file: {entry:?}");
            };
            assert_eq!(*sha256, crate::digest::Digest::of(bytes).hex(), "{path}");
            assert_eq!(*size, bytes.len() as u64);
            assert_eq!(*exec, *mode == 0o755);
            let on_disk = dest.path().join(path);
            assert_eq!(fs::read(&on_disk).unwrap(), *bytes, "{path}");
            let perm = fs::metadata(&on_disk).unwrap().permissions().mode() & 0o777;
            assert_eq!(perm, *mode, "{path}");
        }
    }

    #[test]
    fn a_duplicate_file_is_refused_whichever_writer_gets_it() {
        let files = [
            ("a/x", b"one".to_vec(), 0o644),
            ("a/y", b"two".to_vec(), 0o644),
            ("a/x", b"three".to_vec(), 0o644),
        ];
        let dest = tempfile::tempdir().unwrap();
        let e = unpack_tar(&tar_of(&files)[..], dest.path(), ANY).unwrap_err();
        assert!(
            matches!(&e, UnpackError::Refused { entry, why } if entry == "a/x" && why == "duplicate entry"),
            "{e}"
        );
    }
}
