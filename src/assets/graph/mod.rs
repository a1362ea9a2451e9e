//! The fingerprinting pipeline: scan every text asset for references,
//! resolve them against the tree, order files leaves-first with Tarjan's SCC
//! algorithm, and give every file a name derived from the hash of its final
//! (rewritten) bytes. A change in one file therefore renames exactly the files
//! that transitively reference it, and nothing else. Files that keep their
//! names ([`crate::assets::keep`]) are scanned and rewritten all the same.

mod edit;
mod types;

pub use edit::{apply, apply_to, rewrite, Edge, Edit};
pub use types::{reads_text, AssetError, Input, Opaque, OutFile, Output, MIN_HASH_LEN};

use edit::edits_with;
use types::{allowed_missing, extension};

use crate::assets::css::css_references;
use crate::assets::html::{html_scan, source_map_sources, web_manifest_references};
use crate::assets::js::js_references;
use crate::assets::refs::{fill_positions, json_string, RefKind, Reference};
use crate::assets::sri;
use crate::assets::url::{
    is_absolute, is_bare_specifier, is_path_relative, percent_decode, percent_encode_segment,
    resolve, resolve_dir, split_suffix, Target, UrlOptions,
};
use crate::digest::Digest;
use sha2::{Digest as _, Sha256};
use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;

/// A file's bytes, or its digests alone.
#[derive(Clone, Copy)]
enum Content<'a> {
    Bytes(&'a [u8]),
    Opaque(&'a Opaque),
}

struct Node<'a> {
    path: &'a str,
    /// The file's bytes (empty for an opaque one).
    bytes: &'a [u8],
    opaque: Option<&'a Opaque>,
    /// Source text, for scanned (rewritable) files only.
    text: Option<&'a str>,
    edges: Vec<Edge>,
    /// Sorted, deduplicated edge targets.
    adj: Vec<usize>,
    kept: bool,
    /// `integrity` attributes that hold the digest of their file's bytes
    /// in the tree: (value range, index into `edges` of the reference
    /// they cover). Brought up to date when that file's bytes change.
    sri: Vec<(Range<usize>, usize)>,
    /// SHA-256 of `bytes` when they are final already (nothing to
    /// rewrite), computed during the parallel scan.
    digest: Option<Digest>,
    /// Problems found scanning it (moved out after the scan).
    errors: Vec<AssetError>,
    /// Files a `<link rel=manifest>` of this page names: web app
    /// manifests, scanned as such whatever their extension.
    manifest_links: Vec<usize>,
    /// Import map prefix entries naming a directory of the tree, each
    /// replaced by one entry per file under it.
    expansions: Vec<Expansion>,
}

/// An import map prefix entry (`"three/addons/": "./jsm/"`) whose value
/// names a directory of the tree. It is written out as one entry per file
/// under that directory, in path order (`"three/addons/a.js":
/// "./jsm/a.<hash>.js", …`): a browser maps a specifier under the prefix
/// by appending to the value, which would name the file as it was before
/// it was renamed.
struct Expansion {
    /// [`crate::assets::html::ImportMapPrefix::entry`].
    entry: Range<usize>,
    /// The key, decoded; ends with `/`.
    key: String,
    /// The value as written, decoded; ends with `/`.
    value: String,
    /// The logical directory the value names (`""` or ending with `/`).
    dir: String,
    /// The files under `dir`, in path order.
    targets: Vec<usize>,
}

impl Expansion {
    /// The replacement of [`Expansion::entry`]: `name(t)` is the name a
    /// target is written as (its final name, or its path while unknown).
    fn text<'a>(&self, nodes: &[Node<'a>], name: impl Fn(usize) -> &'a str) -> String {
        let mut out = String::new();
        for (i, &t) in self.targets.iter().enumerate() {
            if i > 0 {
                out.push_str("\", \"");
            }
            let rest = &nodes[t].path[self.dir.len()..];
            let final_rest = name(t).get(self.dir.len()..).unwrap_or(rest);
            out.push_str(&json_string(&expanded_key(&self.key, rest)));
            out.push_str("\": \"");
            out.push_str(&json_string(&format!(
                "{}{}",
                self.value,
                encode_path(final_rest)
            )));
        }
        out
    }
}

/// The key of the entry an import map prefix `key` expands to for the file
/// at `rest` under its directory. A bare key is matched against
/// specifiers as written; a URL-like one is parsed as a URL, so it is
/// written encoded like the value.
fn expanded_key(key: &str, rest: &str) -> String {
    if is_bare_specifier(key) {
        format!("{key}{rest}")
    } else {
        format!("{key}{}", encode_path(rest))
    }
}

/// Each segment of a `/`-separated path percent-encoded.
fn encode_path(path: &str) -> String {
    path.split('/')
        .map(percent_encode_segment)
        .collect::<Vec<_>>()
        .join("/")
}

/// An import map key as a browser matches specifiers against it: a bare
/// one as written; a URL-like one (`/…`, `./…`, `../…`, a scheme) by the
/// URL it names, so `./lib/a.js` and `/static/lib/a.js` on a page in
/// `/static/` are one key: here the tree's path of that file or directory
/// (`true`), or the key as written when it names none.
type KeyForm = (bool, String);

fn key_form(key: &str, from: Option<&str>, page: &str, url: &UrlOptions) -> KeyForm {
    let as_written = (false, key.to_owned());
    if is_bare_specifier(key) {
        return as_written;
    }
    let from = match from {
        Some(from) => from,
        None if !is_absolute(key) => return as_written,
        None => page,
    };
    let local = if key.ends_with('/') {
        resolve_dir(key, from, url).ok().flatten()
    } else {
        match resolve(key, from, url) {
            Ok(Target::Local { path, suffix }) if suffix.is_empty() => Some(path),
            _ => None,
        }
    };
    local.map_or(as_written, |path| (true, path))
}

/// Whether another key of the same specifier map (`keys`, sorted) takes
/// the specifier `expanded` from the prefix `key`: the same key, or a
/// longer prefix of it, which a browser prefers.
fn shadowed(keys: &[KeyForm], key: &KeyForm, expanded: &KeyForm) -> bool {
    let (local, expanded) = (expanded.0, expanded.1.as_str());
    let has = |k: &str| {
        keys.binary_search_by(|(l, x)| (*l, x.as_str()).cmp(&(local, k)))
            .is_ok()
    };
    has(expanded)
        || expanded
            .match_indices('/')
            .map(|(i, _)| &expanded[..=i])
            .any(|k| k.len() > key.1.len() && has(k))
}

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
    let mut files: Vec<(&str, Content)> = input
        .files
        .iter()
        .map(|(k, v)| (k.as_str(), Content::Bytes(v)))
        .chain(
            input
                .opaque
                .iter()
                .filter(|(k, _)| !input.files.contains_key(*k))
                .map(|(k, v)| (k.as_str(), Content::Opaque(v))),
        )
        .collect();
    files.sort_unstable_by_key(|(k, _)| *k);
    let index: BTreeMap<&str, usize> = files
        .iter()
        .enumerate()
        .map(|(i, (k, _))| (*k, i))
        .collect();
    let mut nodes = crate::par::map(&files, threads, |(path, content)| {
        scan_node(input, path, *content, &index, &files)
    });
    let mut errors = Vec::new();
    for node in &mut nodes {
        errors.append(&mut node.errors);
    }
    // A `.json` a page links as its web app manifest is one.
    let linked: BTreeSet<usize> = nodes
        .iter()
        .flat_map(|n| n.manifest_links.iter().copied())
        .collect();
    for t in linked {
        let node = &mut nodes[t];
        let ext = extension(node.path).map(str::to_ascii_lowercase);
        if node.text.is_none() && node.opaque.is_none() && ext.as_deref() == Some("json") {
            scan_references(
                input,
                node,
                Syntax::WebManifest,
                &index,
                &files,
                &mut errors,
            );
            node.finish();
        }
    }

    // Only the nodes are needed from here on.
    drop((index, files));

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
                let text = x.text(nodes, |t| self.names[t].as_deref().unwrap_or(nodes[t].path));
                (x.entry.clone(), text)
            }))
            .collect();
        edits_with(text, &node.edges, &self.names, &self.tails, sri)
    }
}

/// Scans one file for references and resolves them; pure, so files can be
/// scanned in parallel.
fn scan_node<'a>(
    input: &Input,
    path: &'a str,
    content: Content<'a>,
    index: &BTreeMap<&str, usize>,
    files: &[(&str, Content)],
) -> Node<'a> {
    let mut errors = Vec::new();
    let (bytes, opaque) = match content {
        Content::Bytes(b) => (b, None),
        Content::Opaque(o) => (&[][..], Some(o)),
    };
    let mut node = Node {
        path,
        bytes,
        opaque,
        text: None,
        edges: Vec::new(),
        adj: Vec::new(),
        kept: input.keep.contains(path),
        sri: Vec::new(),
        digest: None,
        manifest_links: Vec::new(),
        expansions: Vec::new(),
        errors: Vec::new(),
    };
    let ext = extension(path).map(str::to_ascii_lowercase);
    let syntax = match ext.as_deref().filter(|_| opaque.is_none()) {
        Some("css") => Some(Syntax::Css),
        Some("js" | "mjs") => Some(Syntax::Js),
        // SVG is XML, but its references are attributes (`href`,
        // `xlink:href`, `<image src>`…) and `<style>` sheets, which the
        // HTML tokenizer reads the same way.
        Some("html" | "htm" | "svg") => Some(Syntax::Html),
        Some("webmanifest") => Some(Syntax::WebManifest),
        Some("map") => Some(Syntax::SourceMap),
        _ => None,
    };
    if let Some(syntax) = syntax {
        scan_references(input, &mut node, syntax, index, files, &mut errors);
    }
    node.finish();
    node.errors = errors;
    node
}

impl Node<'_> {
    /// Fills `adj` from `edges`, and `digest` if there is nothing to rewrite.
    fn finish(&mut self) {
        self.adj = self.edges.iter().map(|e| e.target).collect();
        for x in &self.expansions {
            self.adj.extend_from_slice(&x.targets);
        }
        self.adj.sort_unstable();
        self.adj.dedup();
        self.digest = if self.edges.is_empty() && self.expansions.is_empty() {
            // Nothing to rewrite: the bytes are final, hash them here.
            Some(match self.opaque {
                Some(o) => Digest::from_bytes(o.digests.sha256),
                None => Digest::of(self.bytes),
            })
        } else {
            None
        };
    }
}

#[derive(Clone, Copy)]
enum Syntax {
    Css,
    Js,
    Html,
    WebManifest,
    SourceMap,
}

fn scan_references<'a>(
    input: &Input,
    node: &mut Node<'a>,
    syntax: Syntax,
    index: &BTreeMap<&str, usize>,
    files: &[(&str, Content)],
    errors: &mut Vec<AssetError>,
) {
    let (path, bytes) = (node.path, node.bytes);
    let text = match std::str::from_utf8(bytes) {
        Ok(t) => t,
        Err(e) => {
            let prefix = std::str::from_utf8(&bytes[..e.valid_up_to()]).unwrap_or("");
            let mut at = [Reference {
                range: prefix.len()..prefix.len(),
                value: String::new(),
                line: 0,
                column: 0,
                kind: RefKind::HtmlAttr,
                quote: None,
            }];
            fill_positions(prefix, &mut at);
            errors.push(AssetError::at(
                path,
                &at[0],
                "file is not valid UTF-8".to_string(),
            ));
            return;
        }
    };
    node.text = Some(text);
    let mut manifests = Vec::new();
    let mut prefixes = Vec::new();
    let mut map_keys = Vec::new();
    let mut base = None;
    let mut source_root = None;
    let (refs, integrity) = match syntax {
        Syntax::Css => (css_references(text), Vec::new()),
        Syntax::Js => (js_references(text), Vec::new()),
        Syntax::WebManifest => (web_manifest_references(text), Vec::new()),
        Syntax::SourceMap => {
            let scan = source_map_sources(text);
            source_root = scan.root;
            (scan.sources, Vec::new())
        }
        Syntax::Html => {
            let scan = html_scan(text);
            manifests = scan.manifests;
            prefixes = scan.import_map_prefixes;
            map_keys = scan.import_map_keys;
            base = scan.base;
            (scan.refs, scan.integrity)
        }
    };
    // With a `<base href>`, the page's URLs resolve against it: `from` is
    // a file in the directory it names; `None` when that is outside the
    // tree, where every URL but an absolute one then points.
    let mut from = Some(path.to_string());
    if let Some(b) = &base {
        let url = split_suffix(&b.value).0;
        let dir = &url[..url.rfind('/').map_or(0, |i| i + 1)];
        match resolve_dir(dir, path, &input.url) {
            Ok(Some(dir)) => from = Some(format!("{dir}_")),
            Ok(None) => from = None,
            Err(msg) => {
                errors.push(AssetError::at(path, b, format!("<base href> {msg}")));
                return;
            }
        }
    }
    // A source map's relative sources are below its `sourceRoot`, a
    // directory URL with or without the final `/`. A root outside the tree
    // (or unresolvable) leaves them as written: sources are optional.
    if let Some(root) = &source_root {
        let url = split_suffix(&root.value).0;
        let dir = if url.ends_with('/') {
            url.to_string()
        } else {
            format!("{url}/")
        };
        from = match resolve_dir(&dir, path, &input.url) {
            Ok(Some(dir)) => Some(format!("{dir}_")),
            Ok(None) | Err(_) => None,
        };
    }
    // A prefix value names a directory: reported here, not as a reference.
    let prefix_values: BTreeSet<usize> = prefixes.iter().map(|p| p.value.start).collect();
    for p in prefixes {
        let Ok(at) = refs.binary_search_by_key(&p.value.start, |r| r.range.start) else {
            continue; // unreachable: the value is one of the references
        };
        let r = &refs[at];
        let resolved = match &from {
            Some(from) => resolve_dir(&r.value, from, &input.url),
            None if !is_absolute(&r.value) => Ok(None),
            None => resolve_dir(&r.value, path, &input.url),
        };
        match resolved {
            Err(msg) => errors.push(AssetError::at(
                path,
                r,
                format!("import map prefix {:?} cannot be expanded: {msg}", p.key),
            )),
            Ok(None) => {} // outside the tree: left as written
            Ok(Some(dir)) => {
                let targets: Vec<usize> = index
                    .range(dir.as_str()..)
                    .take_while(|(k, _)| k.starts_with(dir.as_str()))
                    .map(|(_, &t)| t)
                    .collect();
                let form = |key: &str| key_form(key, from.as_deref(), path, &input.url);
                let mut keys: Vec<KeyForm> = map_keys
                    .get(p.keys)
                    .map_or(&[][..], Vec::as_slice)
                    .iter()
                    .map(|k| form(k))
                    .collect();
                keys.sort_unstable();
                let prefix = form(&p.key);
                let mut shadowed_any = false;
                let targets: Vec<usize> = targets
                    .into_iter()
                    .filter(|&t| {
                        let key = form(&expanded_key(&p.key, &files[t].0[dir.len()..]));
                        let s = shadowed(&keys, &prefix, &key);
                        shadowed_any |= s;
                        !s
                    })
                    .collect();
                if targets.is_empty() {
                    // Every file under it has its own entry: left as written.
                    if !shadowed_any && !allowed_missing(&input.allow_missing, &r.value, &dir) {
                        errors.push(AssetError::at(
                            path,
                            r,
                            format!(
                                "import map prefix {:?} names {dir:?}, under which the tree \
                                 has no file, so it cannot be expanded into one entry per file",
                                p.key
                            ),
                        ));
                    }
                    continue;
                }
                node.expansions.push(Expansion {
                    entry: p.entry,
                    key: p.key,
                    value: r
                        .value
                        .trim_matches(|c: char| c.is_ascii_whitespace())
                        .to_string(),
                    dir,
                    targets,
                });
            }
        }
    }
    for r in refs {
        if prefix_values.contains(&r.range.start) {
            continue;
        }
        if r.kind.is_js_specifier() && is_bare_specifier(&r.value) {
            continue;
        }
        let worker = matches!(r.kind, RefKind::JsWorker | RefKind::JsServiceWorker);
        // A worker's URL is resolved against the page that runs the
        // script, which a script file cannot know (an inline script's page
        // is its own file): a relative one is only a guess.
        let guess = worker && matches!(syntax, Syntax::Js) && is_path_relative(&r.value);
        // A source map names the sources it was made from, which are
        // rarely published: only one in the tree is a reference.
        let optional = guess || r.kind == RefKind::SourceMapSource;
        let resolved = match &from {
            Some(from) => resolve(&r.value, from, &input.url),
            None if !is_absolute(&r.value) => Ok(Target::External),
            None => resolve(&r.value, path, &input.url),
        };
        match resolved {
            Err(_) if optional => {}
            Err(msg) => errors.push(AssetError::at(path, &r, msg)),
            Ok(Target::External) => {}
            Ok(Target::Local { path: target, .. }) => match index.get(target.as_str()) {
                Some(_) if guess => errors.push(AssetError::at(
                    path,
                    &r,
                    format!(
                        "a worker's URL is resolved against the page's URL, not this script's, \
                         so whether it names {target:?} is unknown and it cannot be rewritten; \
                         write `new URL({:?}, import.meta.url)` or a path from the root",
                        r.value
                    ),
                )),
                Some(_) if r.kind == RefKind::JsServiceWorker && !input.keep.contains(&target) => {
                    errors.push(AssetError::at(
                        path,
                        &r,
                        format!(
                            "a service worker's URL must stay the same from one release to the \
                             next (the browser checks that URL for updates), so {target:?} \
                             cannot be renamed; list it in assets.keep_names"
                        ),
                    ))
                }
                Some(&t) => {
                    if manifests
                        .binary_search_by_key(&r.range.start, |m| m.start)
                        .is_ok()
                    {
                        node.manifest_links.push(t);
                    }
                    node.edges.push(Edge { r, target: t })
                }
                // A worker: most likely a route of the app, not an asset.
                None if optional => {}
                None if allowed_missing(&input.allow_missing, &r.value, &target) => {}
                None => errors.push(AssetError::at(
                    path,
                    &r,
                    format!("referenced file {target:?} does not exist"),
                )),
            },
        }
    }
    // An integrity attribute covering a file of the tree must hold that
    // file's digest; it is then rewritten if the file's bytes change.
    // Edges are in source order (the scanners return references so).
    for i in integrity {
        let Ok(e) = node
            .edges
            .binary_search_by_key(&i.of.start, |e| e.r.range.start)
        else {
            continue; // external, or allowed to be missing
        };
        let (target, content) = files[node.edges[e].target];
        let accepts = match content {
            Content::Bytes(bytes) => sri::accepts(&i.value, bytes),
            Content::Opaque(o) => sri::accepts_digests(&i.value, &o.digests),
        };
        match accepts {
            None => {} // nothing a browser checks
            Some(true) => node.sri.push((i.range, e)),
            Some(false) => errors.push(AssetError::at(
                path,
                &node.edges[e].r,
                format!(
                    "integrity {:?} does not match {target:?} as it is in the tree; \
                     fix or remove it (it is kept up to date with the published bytes)",
                    i.value
                ),
            )),
        }
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
