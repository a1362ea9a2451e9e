//! The fingerprinting pipeline: scan every text asset for references,
//! resolve them against the tree, order files leaves-first with Tarjan's SCC
//! algorithm, and give every file a name derived from the hash of its final
//! (rewritten) bytes. A change in one file therefore renames exactly the files
//! that transitively reference it, and nothing else. Files that keep their
//! names ([`crate::assets::keep`]) are scanned and rewritten all the same.

mod edit;
mod import_map;
mod scan;
mod types;

pub use edit::{apply, apply_to, rewrite, Edge, Edit};
pub use types::{reads_text, AssetError, Input, Opaque, OutFile, Output, MIN_HASH_LEN};

use edit::edits_with;
use scan::Node;

use crate::assets::refs::RefKind;
use crate::assets::sri;
use crate::assets::url::{percent_decode, resolve, split_suffix, Target};
use crate::digest::Digest;
use sha2::{Digest as _, Sha256};
use std::collections::{BTreeMap, BTreeSet};

/// Fingerprints the whole tree. Either every file gets its final name, or all
/// errors of the build are returned (sorted by file and position).
pub fn fingerprint(input: &Input) -> Result<Output, Vec<AssetError>> {
    fingerprint_with(input, crate::par::threads())
}

/// [`fingerprint`] scanning on `threads` threads; the result never depends
/// on the thread count.
fn fingerprint_with(input: &Input, threads: usize) -> Result<Output, Vec<AssetError>> {
    if !(MIN_HASH_LEN..=64).contains(&input.hash_len) {
        return Err(vec![AssetError {
            file: String::new(),
            line: 0,
            column: 0,
            reference: String::new(),
            message: format!(
                "hash_len must be between {MIN_HASH_LEN} and 64, got {}",
                input.hash_len
            ),
        }]);
    }
    let (nodes, mut errors) = scan::scan_tree(input, threads);

    // Each hashed directory is one vertex of the graph: its name depends on
    // all its files, so a file referring into it comes after all of them.
    let dirs = HashDirs::new(input, &nodes, &mut errors);
    let mut done = Finals::new(&nodes);
    done.tails = dirs.tails(input, &nodes);
    let adj = dirs.contracted(&nodes);
    let sccs = tarjan(&adj);
    // Level by level, leaves first: a file's final bytes depend only on
    // files of lower levels, so the single files of a level (outside
    // cycles and hashed directories: nearly all of a tree) are made in
    // parallel.
    let mut scc_of = vec![0; nodes.len()];
    for (i, scc) in sccs.iter().enumerate() {
        for &v in scc {
            scc_of[v] = i;
        }
    }
    let mut levels: Vec<Vec<usize>> = Vec::new();
    let mut level_of = vec![0; sccs.len()];
    for (i, scc) in sccs.iter().enumerate() {
        // Tarjan gives every SCC after those it reaches.
        let level = scc
            .iter()
            .flat_map(|&v| &adj[v])
            .map(|&t| scc_of[t])
            .filter(|&j| j != i)
            .map(|j| level_of[j] + 1)
            .max()
            .unwrap_or(0);
        level_of[i] = level;
        if levels.len() <= level {
            levels.resize_with(level + 1, Vec::new);
        }
        levels[level].push(i);
    }
    drop((adj, scc_of, level_of));
    for level in levels {
        let (single, rest): (Vec<usize>, Vec<usize>) = level.into_iter().partition(|&i| {
            let v = sccs[i][0];
            sccs[i].len() == 1
                && dirs.dir_of[v].is_none()
                && nodes[v].adj.binary_search(&v).is_err()
        });
        let made = crate::par::map(&single, threads, |&i| done.make(&nodes, sccs[i][0]));
        for (&i, fin) in single.iter().zip(made) {
            let v = sccs[i][0];
            let digest = done.store(v, fin);
            if !nodes[v].kept {
                done.names[v] = Some(hashed_name(nodes[v].path, &digest.hex(), input.hash_len));
            }
        }
        for scc in rest.into_iter().map(|i| &sccs[i]) {
            walk_scc(input, scc, &nodes, &dirs, &mut done, &mut errors);
        }
    }

    if !errors.is_empty() {
        errors.sort();
        errors.dedup();
        return Err(errors);
    }
    let mut files = BTreeMap::new();
    let named = done.names.into_iter().zip(done.finals);
    for (node, (name, fin)) in nodes.iter().zip(named) {
        let name = if node.kept {
            Some(node.path.to_string())
        } else {
            name
        };
        let (Some(name), Some(fin)) = (name, fin) else {
            continue; // unreachable: Tarjan visits every node
        };
        let grown: isize = fin
            .edits
            .iter()
            .map(|e| e.text.len() as isize - e.range.len() as isize)
            .sum();
        let size = match node.opaque {
            Some(o) => o.size,
            None => (node.bytes.len() as isize + grown) as u64,
        };
        let references = node
            .adj
            .iter()
            .map(|&t| nodes[t].path.to_string())
            .collect();
        files.insert(
            node.path.to_string(),
            OutFile {
                name,
                sha256: fin.sha256,
                size,
                integrity: fin.integrity,
                edits: fin.edits,
                references,
                kept: node.kept,
            },
        );
    }
    let dirs = dirs
        .members
        .iter()
        .enumerate()
        .filter_map(|(d, m)| {
            // `<dir>.<hash>/x` from `<dir>/x`.
            let dir = input.hash_dirs[d].clone();
            let path = nodes[*m.first()?].path;
            let name = &files.get(path)?.name;
            let name = name.get(..name.len().checked_sub(path.len() - dir.len())?)?;
            Some((dir, name.to_owned()))
        })
        .collect();
    Ok(Output { files, dirs })
}

/// Makes the final bytes and names of one strongly connected component
/// that is not a single file: a hashed directory, or a reference cycle.
fn walk_scc(
    input: &Input,
    scc: &[usize],
    nodes: &[Node],
    dirs: &HashDirs,
    done: &mut Finals,
    errors: &mut Vec<AssetError>,
) {
    if let Some(d) = dirs.dir_of[scc[0]] {
        if scc.len() == 1 {
            if dirs.members[d][0] == scc[0] {
                dirs.name(input, d, nodes, done);
            }
            return; // other members: named with their directory
        }
    }
    if scc.iter().any(|&v| dirs.dir_of[v].is_some()) {
        errors.extend(dirs.cycle_errors(input, scc, nodes));
        return;
    }
    if let Some(err) = css_import_cycle(nodes, scc) {
        errors.push(err);
        return; // no output when there are errors
    }
    // Group hash over the members as they are with every reference
    // leaving the group rewritten (`names` has no entry yet for
    // members, nor ever for kept files, so those stay as written).
    // Kept members are hashed too: through an integrity attribute, a
    // renamed member's bytes may depend on theirs.
    if scc.iter().any(|&v| !nodes[v].kept) {
        let mut group = Sha256::new();
        for &v in scc {
            let partial = done.final_bytes(nodes, v);
            group.update(nodes[v].path.as_bytes());
            group.update([0]);
            group.update((partial.len() as u64).to_be_bytes());
            group.update(&partial);
        }
        let group = group.finalize();
        for &v in scc.iter().filter(|&&v| !nodes[v].kept) {
            let mut h = Sha256::new();
            h.update(group);
            h.update(nodes[v].path.as_bytes());
            done.names[v] = Some(hashed_name(
                nodes[v].path,
                &Digest::from_bytes(h.finalize().into()).hex(),
                input.hash_len,
            ));
        }
    }
    // Final bytes, each member after the members its integrity
    // attributes cover.
    let mut pending = scc.to_vec();
    while !pending.is_empty() {
        let mut waiting = Vec::new();
        for &v in &pending {
            let blocked = nodes[v].sri.iter().any(|&(_, e)| {
                let t = nodes[v].edges[e].target;
                done.finals[t].is_none() && scc.binary_search(&t).is_ok()
            });
            if blocked {
                waiting.push(v);
            } else {
                done.finish(nodes, v);
            }
        }
        if waiting.len() == pending.len() {
            for &v in &waiting {
                for &(_, e) in &nodes[v].sri {
                    errors.push(AssetError::at(
                        nodes[v].path,
                        &nodes[v].edges[e].r,
                        // Unreachable in practice: each attribute was checked against
                        // the other file's bytes, and no two files can hold each
                        // other's digest.
                        "its integrity attribute covers a file whose bytes depend on this \
                         one's (a cycle of integrity attributes); remove one of them"
                            .to_string(),
                    ));
                }
            }
            break;
        }
        pending = waiting;
    }
}

/// The files of [`Input::hash_dirs`], each directory named as one unit.
struct HashDirs {
    /// Per node: the index of its hashed directory, if in one.
    dir_of: Vec<Option<usize>>,
    /// Per hashed directory: its files (node indices, sorted).
    members: Vec<Vec<usize>>,
}

impl HashDirs {
    /// Finds each file's directory, and checks the references into one:
    /// from outside, the URL must end with the path of the file from the
    /// directory's own name on (those segments are what is rewritten);
    /// between files of one directory, it must be relative and stay inside
    /// it (it is left as written: the directory's name is not known while
    /// its files' bytes are being made).
    fn new(input: &Input, nodes: &[Node], errors: &mut Vec<AssetError>) -> HashDirs {
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
                            "the file is in a hashed directory ({:?}, `assets.hash_dirs`) and                              also keeps its name (Vite's output, `assets.keep_names`); it can                              only be one of them",
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
                            "{target:?} is in the same hashed directory ({dir:?},                              `assets.hash_dirs`), which is renamed as a whole: refer to it                              with a relative path that stays inside the directory"
                        )
                    } else {
                        format!(
                            "{target:?} is in a hashed directory ({dir:?}, `assets.hash_dirs`),                              whose name is rewritten in the reference: write the path without                              `.` or `..` from the directory's name on"
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
    fn tails(&self, input: &Input, nodes: &[Node]) -> Vec<usize> {
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
    fn contracted(&self, nodes: &[Node]) -> Vec<Vec<usize>> {
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
    fn name(&self, input: &Input, d: usize, nodes: &[Node], done: &mut Finals) {
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
    fn cycle_errors(&self, input: &Input, scc: &[usize], nodes: &[Node]) -> Vec<AssetError> {
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
                        "reference cycle through the hashed directory {:?}                          (`assets.hash_dirs`): {:?} refers back into it, and the                          directory's name is the hash of its files; break the cycle                          or take the directory out of `assets.hash_dirs`",
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

/// A file's final bytes.
struct Final {
    /// Empty when they are the file's bytes in the tree.
    edits: Vec<Edit>,
    sha256: Digest,
    /// Computed when needed early; the rest after the walk, in parallel.
    integrity: Option<String>,
}

/// What is known of each file so far, leaves first.
struct Finals {
    /// The name references to a file are rewritten to: its hashed name once
    /// known; never one for a kept file (references to it stay as written).
    names: Vec<Option<String>>,
    /// How many trailing segments of a reference to each file are rewritten.
    tails: Vec<usize>,
    /// Each file once its final bytes are known.
    finals: Vec<Option<Final>>,
    /// Files some integrity attribute covers: [`Finals::make`] computes
    /// their integrity at once, for the attributes to be brought up to date.
    covered: Vec<bool>,
}

impl Finals {
    fn new(nodes: &[Node]) -> Finals {
        let mut covered = vec![false; nodes.len()];
        for node in nodes {
            for &(_, e) in &node.sri {
                covered[node.edges[e].target] = true;
            }
        }
        Finals {
            names: vec![None; nodes.len()],
            tails: vec![1; nodes.len()],
            finals: (0..nodes.len()).map(|_| None).collect(),
            covered,
        }
    }

    /// Makes file `v`'s final bytes (every file it references is final,
    /// or in its cycle), stores them, and returns their SHA-256.
    fn finish(&mut self, nodes: &[Node], v: usize) -> Digest {
        let fin = self.make(nodes, v);
        self.store(v, fin)
    }

    /// Stores what [`Finals::make`] made of file `v`.
    fn store(&mut self, v: usize, fin: Final) -> Digest {
        let sha256 = fin.sha256;
        self.finals[v] = Some(fin);
        sha256
    }

    /// File `v`'s final bytes, as edits of its bytes, their digest, and
    /// their integrity if an integrity attribute needs it.
    fn make(&self, nodes: &[Node], v: usize) -> Final {
        let node = &nodes[v];
        match &node.digest {
            Some(sha256) => Final {
                edits: Vec::new(),
                sha256: *sha256,
                integrity: node.opaque.map(|o| o.digests.integrity()),
            },
            None => {
                // The bytes are made to be hashed, and made again when
                // written: holding them all would take as much memory as
                // the tree itself.
                let mut edits = self.edits(nodes, v);
                let bytes = apply(node.bytes, &edits);
                let sha256 = Digest::of(&bytes);
                let mut integrity = None;
                if bytes[..] == *node.bytes {
                    edits.clear();
                } else if self.covered[v] {
                    // An integrity attribute needs it now; the others are
                    // computed when the bytes are made again.
                    integrity = Some(sri::integrity(&bytes));
                }
                Final {
                    edits,
                    sha256,
                    integrity,
                }
            }
        }
    }

    /// The bytes of file `v` with every reference to a file already named
    /// rewritten, and every integrity attribute covering a file whose bytes
    /// changed brought up to date.
    fn final_bytes(&self, nodes: &[Node], v: usize) -> Vec<u8> {
        apply(nodes[v].bytes, &self.edits(nodes, v))
    }

    /// The edits [`Finals::final_bytes`] makes.
    fn edits(&self, nodes: &[Node], v: usize) -> Vec<Edit> {
        let node = &nodes[v];
        let Some(text) = node.text else {
            return Vec::new();
        };
        let sri = node
            .sri
            .iter()
            .filter_map(|(range, e)| {
                // Only a file whose bytes changed needs a new value.
                let fin = self.finals[node.edges[*e].target].as_ref()?;
                let value = fin.integrity.as_ref().filter(|_| !fin.edits.is_empty())?;
                Some((range.clone(), value.clone()))
            })
            .chain(node.expansions.iter().map(|x| {
                let path = |t: usize| nodes[t].path;
                let text = x.text(path, |t| self.names[t].as_deref().unwrap_or(nodes[t].path));
                (x.entry.clone(), text)
            }))
            .collect();
        edits_with(text, &node.edges, &self.names, &self.tails, sri)
    }
}

/// `css/site.css` + hash -> `css/site.<hash>.css`; `LICENSE` -> `LICENSE.<hash>`;
/// `site.css.map` -> `site.css.<hash>.map`.
pub fn hashed_name(path: &str, hex: &str, hash_len: usize) -> String {
    let hash = &hex[..hash_len.min(hex.len())];
    let (dir, file) = match path.rfind('/') {
        Some(i) => path.split_at(i + 1),
        None => ("", path),
    };
    match file.rfind('.').filter(|&i| i > 0) {
        Some(i) => format!("{dir}{}.{hash}.{}", &file[..i], &file[i + 1..]),
        None => format!("{dir}{file}.{hash}"),
    }
}

/// Whether `name` is `logical` renamed by [`hashed_name`] after the
/// SHA-256 whose hex is `sha256_hex` (with any hash length from
/// [`MIN_HASH_LEN`] up). Such a name commits to at least the first 48 bits
/// of the digest of the bytes stored under it, and those bytes are the
/// only ones verbatim ever stores under it. A kept name, or the name of a
/// member of a reference cycle (named after the group), never is.
pub fn is_content_named(logical: &str, name: &str, sha256_hex: &str) -> bool {
    name.len()
        .checked_sub(logical.len() + 1)
        .filter(|n| (MIN_HASH_LEN..=sha256_hex.len().min(64)).contains(n))
        .is_some_and(|n| hashed_name(logical, sha256_hex, n) == name)
}

/// If the strongly connected group contains a CSS `@import` edge, an error
/// naming one such cycle, e.g. `a.css -> b.css -> a.css`.
fn css_import_cycle(nodes: &[Node], scc: &[usize]) -> Option<AssetError> {
    let members: BTreeSet<usize> = scc.iter().copied().collect();
    for &u in scc {
        for e in &nodes[u].edges {
            if e.r.kind != RefKind::CssImport || !members.contains(&e.target) {
                continue;
            }
            // Shortest path back from the target to `u` inside the group.
            let mut prev: BTreeMap<usize, usize> = BTreeMap::new();
            let mut queue = std::collections::VecDeque::from([e.target]);
            let mut seen = BTreeSet::from([e.target]);
            while let Some(x) = queue.pop_front() {
                if x == u {
                    break;
                }
                for &y in &nodes[x].adj {
                    if members.contains(&y) && seen.insert(y) {
                        prev.insert(y, x);
                        queue.push_back(y);
                    }
                }
            }
            let mut path = vec![u];
            let mut x = u;
            while x != e.target {
                match prev.get(&x) {
                    Some(&p) => {
                        path.push(p);
                        x = p;
                    }
                    None => break,
                }
            }
            path.push(u);
            path.reverse();
            let cycle: Vec<&str> = path.iter().map(|&i| nodes[i].path).collect();
            return Some(AssetError::at(
                nodes[u].path,
                &e.r,
                format!("CSS @import cycle: {}", cycle.join(" -> ")),
            ));
        }
    }
    None
}

/// Strongly connected components in reverse topological order (every
/// component comes after all components it references), members sorted.
/// Iterative, visiting nodes and edges in sorted order for determinism.
fn tarjan(adj: &[Vec<usize>]) -> Vec<Vec<usize>> {
    let n = adj.len();
    let mut index: Vec<Option<usize>> = vec![None; n];
    let mut low = vec![0usize; n];
    let mut on_stack = vec![false; n];
    let mut stack = Vec::new();
    let mut sccs = Vec::new();
    let mut counter = 0;
    for root in 0..n {
        if index[root].is_some() {
            continue;
        }
        let mut call: Vec<(usize, usize)> = vec![(root, 0)];
        index[root] = Some(counter);
        low[root] = counter;
        counter += 1;
        stack.push(root);
        on_stack[root] = true;
        while let Some(&mut (v, ref mut next)) = call.last_mut() {
            if let Some(&w) = adj[v].get(*next) {
                *next += 1;
                match index[w] {
                    None => {
                        index[w] = Some(counter);
                        low[w] = counter;
                        counter += 1;
                        stack.push(w);
                        on_stack[w] = true;
                        call.push((w, 0));
                    }
                    Some(iw) if on_stack[w] => low[v] = low[v].min(iw),
                    Some(_) => {}
                }
                continue;
            }
            call.pop();
            if let Some(&(u, _)) = call.last() {
                low[u] = low[u].min(low[v]);
            }
            if Some(low[v]) == index[v] {
                let mut scc = Vec::new();
                while let Some(w) = stack.pop() {
                    on_stack[w] = false;
                    scc.push(w);
                    if w == v {
                        break;
                    }
                }
                scc.sort_unstable();
                sccs.push(scc);
            }
        }
    }
    sccs
}

#[cfg(test)]
mod tests;
