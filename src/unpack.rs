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

use std::collections::BTreeSet;
use std::fs::{self, File};
use std::io::{self, Read};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

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
    let mut out = Vec::new();
    let mut written: u64 = 0;
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
        if out.len() as u64 + links.len() as u64 >= limits.entries {
            return Err(refused(
                &name,
                format!(
                    "the artifact holds more than the {} entries its manifest records",
                    limits.entries
                ),
            ));
        }
        let rel = parts.join("/");
        let path = dest.join(&rel);
        let at = |op| {
            let name = name.clone();
            move |source| UnpackError::Entry {
                entry: name,
                op,
                source,
            }
        };
        match entry.header().entry_type() {
            tar::EntryType::Directory => {
                fs::create_dir_all(&path).map_err(at("creating the directory"))?;
                out.push(Entry {
                    path: rel,
                    kind: EntryKind::Dir,
                });
            }
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                let size = entry.header().size().map_err(at("reading the header"))?;
                written = written.saturating_add(size);
                if written > limits.bytes {
                    return Err(refused(
                        &name,
                        format!(
                            "the artifact unpacks to more than the {} bytes its manifest records",
                            limits.bytes
                        ),
                    ));
                }
                if let Some(parent) = path.parent() {
                    fs::create_dir_all(parent).map_err(at("creating its directory"))?;
                }
                let mut f = File::options()
                    .write(true)
                    .create_new(true)
                    .open(&path)
                    .map_err(|e| match e.kind() {
                        io::ErrorKind::AlreadyExists => refused(&name, "duplicate entry"),
                        _ => at("creating the file")(e),
                    })?;
                let mut w = crate::digest::HashingWriter::new(&mut f);
                io::copy(&mut entry, &mut w).map_err(at("writing"))?;
                let (_, sha256, copied) = w.finish();
                if copied != size {
                    return Err(refused(
                        &name,
                        format!("holds {copied} bytes, its header says {size}"),
                    ));
                }
                let exec = entry.header().mode().map_err(at("reading the header"))? & 0o100 != 0;
                f.set_permissions(fs::Permissions::from_mode(if exec { 0o755 } else { 0o644 }))
                    .map_err(at("setting its mode"))?;
                out.push(Entry {
                    path: rel,
                    kind: EntryKind::File {
                        sha256: sha256.hex(),
                        size,
                        exec,
                    },
                });
            }
            tar::EntryType::Symlink => {
                let target = entry
                    .link_name_bytes()
                    .ok_or_else(|| refused(&name, "symlink without a target"))?;
                let target = String::from_utf8(target.into_owned())
                    .map_err(|_| refused(&name, "symlink target is not UTF-8"))?;
                link_paths.insert(rel.clone());
                links.push((rel, target));
            }
            other => {
                return Err(refused(&name, format!("entry type {other:?} is not allowed (only files, directories and symlinks)")));
            }
        }
    }
    for (rel, target) in &links {
        check_link_target(rel, target, &link_paths)?;
        let path = dest.join(rel);
        let at = |op| {
            move |source| UnpackError::Entry {
                entry: rel.clone(),
                op,
                source,
            }
        };
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).map_err(at("creating its directory"))?;
        }
        std::os::unix::fs::symlink(target, &path).map_err(|e| match e.kind() {
            io::ErrorKind::AlreadyExists => refused(rel, "duplicate entry"),
            _ => at("creating the symlink")(e),
        })?;
    }
    out.extend(links.into_iter().map(|(path, target)| Entry {
        path,
        kind: EntryKind::Symlink { target },
    }));
    Ok(out)
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
}
