//! Hashed directories ([`Input::hash_dirs`]): a directory published whole
//! under a name carrying the hash of its tree (`vendor/pdfjs/cmaps` becomes
//! `vendor/pdfjs/cmaps.<hash>`), for code that builds URLs from the
//! directory's URL at run time. The directory is one vertex of the graph
//! ([`HashDirs`]); its name is the hash of its files' paths and final
//! digests ([`dir_hash`]), which `publish` recomputes from a manifest.
//!
//! References between its files are left as written: the directory's name
//! is not known while their bytes are being made.

use crate::assets::graph::naming::Finals;
use crate::assets::graph::scan::Node;
use crate::assets::graph::types::{AssetError, Input, MIN_HASH_LEN};
use crate::assets::url::{percent_decode, resolve, split_suffix, Target};
use crate::digest::Digest;
use sha2::{Digest as _, Sha256};

/// The files of [`Input::hash_dirs`], each directory named as one unit.
pub(super) struct HashDirs {
    /// Per node: the index of its hashed directory, if in one.
    pub(super) dir_of: Vec<Option<usize>>,
    /// Per hashed directory: its files (node indices, sorted).
    pub(super) members: Vec<Vec<usize>>,
}

impl HashDirs {
    /// Finds each file's directory, and checks the references into one:
    /// from outside, the URL must end with the path of the file from the
    /// directory's own name on (those segments are what is rewritten);
    /// between files of one directory, it must be relative and stay inside
    /// it (it is left as written: the directory's name is not known while
    /// its files' bytes are being made).
    pub(super) fn new(input: &Input, nodes: &[Node], errors: &mut Vec<AssetError>) -> HashDirs {
        let mut dir_of = vec![None; nodes.len()];
        let mut members = vec![Vec::new(); input.hash_dirs.len()];
        for (v, node) in nodes.iter().enumerate() {
            let d = input.hash_dirs.iter().position(|d| {
                node.path
                    .strip_prefix(d.as_str())
                    .is_some_and(|r| r.starts_with('/'))
            });
            if let Some(d) = d {
                dir_of[v] = Some(d);
                members[d].push(v);
                if node.kept {
                    errors.push(AssetError {
                        file: node.path.to_owned(),
                        line: 0,
                        column: 0,
                        reference: String::new(),
                        message: format!(
                            "the file is in a hashed directory ({:?}, `assets.hash_dirs`) and also keeps its name (Vite's output, `assets.keep_names`); it can only be one of them",
                            input.hash_dirs[d]
                        ),
                    });
                }
            }
        }
        for (u, node) in nodes.iter().enumerate() {
            for e in &node.edges {
                let Some(d) = dir_of[e.target] else { continue };
                let dir = &input.hash_dirs[d];
                let target = nodes[e.target].path;
                let ok = if dir_of[u] == Some(d) {
                    let stand_in = format!("{dir}.{}", "0".repeat(input.hash_len));
                    let from = format!("{stand_in}{}", &node.path[dir.len()..]);
                    let want = format!("{stand_in}{}", &target[dir.len()..]);
                    matches!(resolve(&e.r.value, &from, &input.url),
                             Ok(Target::Local { path, .. }) if path == want)
                } else {
                    let value = e.r.value.trim_matches(|c: char| c.is_ascii_whitespace());
                    let written = split_suffix(value).0.rsplit('/');
                    let tail = dir_tail(dir, target).rsplit('/');
                    let n = tail.clone().count();
                    written.clone().count() >= n
                        && written
                            .zip(tail)
                            .all(|(w, t)| percent_decode(w).is_some_and(|w| w == t))
                };
                if !ok {
                    let message = if dir_of[u] == Some(d) {
                        format!(
                            "{target:?} is in the same hashed directory ({dir:?}, `assets.hash_dirs`), which is renamed as a whole: refer to it with a relative path that stays inside the directory"
                        )
                    } else {
                        format!(
                            "{target:?} is in a hashed directory ({dir:?}, `assets.hash_dirs`), whose name is rewritten in the reference: write the path without `.` or `..` from the directory's name on"
                        )
                    };
                    errors.push(AssetError::at(node.path, &e.r, message));
                }
            }
        }
        HashDirs { dir_of, members }
    }

    /// How many trailing segments of a reference to each file are
    /// rewritten: the name, and for a file in a hashed directory the path
    /// from the directory's name on.
    pub(super) fn tails(&self, input: &Input, nodes: &[Node]) -> Vec<usize> {
        (0..nodes.len())
            .map(|v| match self.dir_of[v] {
                Some(d) => dir_tail(&input.hash_dirs[d], nodes[v].path)
                    .split('/')
                    .count(),
                None => 1,
            })
            .collect()
    }

    /// The graph with each hashed directory's files as one vertex (its
    /// first file; the others have no edges, and references between files
    /// of one directory are left out).
    pub(super) fn contracted(&self, nodes: &[Node]) -> Vec<Vec<usize>> {
        let vertex = |v: usize| self.dir_of[v].map_or(v, |d| self.members[d][0]);
        let mut adj: Vec<Vec<usize>> = nodes.iter().map(|n| n.adj.clone()).collect();
        for (d, members) in self.members.iter().enumerate() {
            let Some(&first) = members.first() else {
                continue;
            };
            let mut out: Vec<usize> = members
                .iter()
                .flat_map(|&m| nodes[m].adj.iter().copied())
                .filter(|&t| self.dir_of[t] != Some(d))
                .collect();
            for &m in members {
                adj[m].clear();
            }
            out.sort_unstable();
            out.dedup();
            adj[first] = out;
        }
        for a in &mut adj {
            for t in a.iter_mut() {
                *t = vertex(*t);
            }
            a.sort_unstable();
            a.dedup();
        }
        adj
    }

    /// Names directory `d` after the paths and final bytes of its files.
    /// References between them are left as written, so their final bytes
    /// are known before the name is; each file's after those of the files
    /// of the directory its integrity attributes cover.
    pub(super) fn name(&self, input: &Input, d: usize, nodes: &[Node], done: &mut Finals) {
        let dir = &input.hash_dirs[d];
        let mut pending = self.members[d].clone();
        while !pending.is_empty() {
            let mut waiting = Vec::new();
            for &v in &pending {
                let node = &nodes[v];
                let blocked = node.sri.iter().any(|&(_, e)| {
                    let t = node.edges[e].target;
                    done.finals[t].is_none() && self.dir_of[t] == Some(d)
                });
                if blocked {
                    waiting.push(v);
                    continue;
                }
                done.finish(nodes, v);
            }
            if waiting.len() == pending.len() {
                // No two files can hold each other's digest: unreachable.
                for &v in &waiting {
                    done.finish(nodes, v);
                }
                break;
            }
            pending = waiting;
        }
        let hash = dir_hash(self.members[d].iter().filter_map(|&v| {
            let fin = done.finals[v].as_ref()?;
            Some((&nodes[v].path[dir.len() + 1..], &fin.sha256))
        }));
        let name = hashed_dir_name(dir, &hash.hex(), input.hash_len);
        for &v in &self.members[d] {
            done.names[v] = Some(format!("{name}{}", &nodes[v].path[dir.len()..]));
        }
    }

    /// Errors for a reference cycle through hashed directories: a file
    /// inside names a file that (in turn) names one inside.
    pub(super) fn cycle_errors(
        &self,
        input: &Input,
        scc: &[usize],
        nodes: &[Node],
    ) -> Vec<AssetError> {
        let vertex = |v: usize| self.dir_of[v].map_or(v, |d| self.members[d][0]);
        let mut errors = Vec::new();
        for &v in scc {
            let Some(d) = self.dir_of[v] else { continue };
            let leaving = self.members[d].iter().find_map(|&m| {
                nodes[m].edges.iter().find_map(|e| {
                    let t = vertex(e.target);
                    (t != v && scc.binary_search(&t).is_ok()).then_some((m, e))
                })
            });
            if let Some((m, e)) = leaving {
                errors.push(AssetError::at(
                    nodes[m].path,
                    &e.r,
                    format!(
                        "reference cycle through the hashed directory {:?} (`assets.hash_dirs`): {:?} refers back into it, and the directory's name is the hash of its files; break the cycle or take the directory out of `assets.hash_dirs`",
                        input.hash_dirs[d], nodes[e.target].path
                    ),
                ));
            }
        }
        errors
    }
}

/// The path of `file` from the directory `dir`'s own name on:
/// `vendor/pdfjs/cmaps` and `vendor/pdfjs/cmaps/a/b` give `cmaps/a/b`.
fn dir_tail<'a>(dir: &str, file: &'a str) -> &'a str {
    let start = dir.rfind('/').map_or(0, |i| i + 1);
    &file[start..]
}

/// The hash a hashed directory is named after: SHA-256 over its files in
/// order of their paths inside it, each as the path's length (8 bytes, big
/// endian), the path, and the SHA-256 of the file's final bytes. A change
/// in any file, or a file added, removed or renamed, changes it; and it can
/// be recomputed from a manifest.
pub fn dir_hash<'a>(files: impl IntoIterator<Item = (&'a str, &'a Digest)>) -> Digest {
    let mut files: Vec<(&str, &Digest)> = files.into_iter().collect();
    files.sort_unstable();
    let mut h = Sha256::new();
    for (path, digest) in files {
        h.update((path.len() as u64).to_be_bytes());
        h.update(path.as_bytes());
        h.update(digest.as_bytes());
    }
    Digest::from_bytes(h.finalize().into())
}

/// If `name` is `logical` in a hashed directory ([`hashed_dir_name`]),
/// the directory's logical path and final name:
/// (`vendor/cmaps/a/x`, `vendor/cmaps.3fa9c1d2e4b5/a/x`) gives
/// (`vendor/cmaps`, `vendor/cmaps.3fa9c1d2e4b5`). Whether the hash is
/// right is not checked here ([`dir_hash`] recomputes it).
pub fn hashed_dir_of<'a, 'b>(logical: &'a str, name: &'b str) -> Option<(&'a str, &'b str)> {
    let (l, n): (Vec<&str>, Vec<&str>) = (logical.split('/').collect(), name.split('/').collect());
    if l.len() != n.len() || l.len() < 2 {
        return None;
    }
    let last = l.len() - 1;
    let differing: Vec<usize> = (0..l.len()).filter(|&i| l[i] != n[i]).collect();
    let [i] = differing[..] else { return None };
    let hash = n[i].strip_prefix(l[i])?.strip_prefix('.')?;
    let is_hash = (MIN_HASH_LEN..=64).contains(&hash.len())
        && hash.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    if i == last || !is_hash {
        return None;
    }
    let len = |segments: &[&str]| segments[..=i].iter().map(|s| s.len() + 1).sum::<usize>() - 1;
    Some((&logical[..len(&l)], &name[..len(&n)]))
}

/// `vendor/pdfjs/cmaps` + hash -> `vendor/pdfjs/cmaps.<hash>`.
pub fn hashed_dir_name(dir: &str, hex: &str, hash_len: usize) -> String {
    format!("{dir}.{}", &hex[..hash_len.min(hex.len())])
}
