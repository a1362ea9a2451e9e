//! The fingerprinting pipeline: scan every text asset for references,
//! resolve them against the tree, order files leaves-first with Tarjan's SCC
//! algorithm, and give every file a name derived from the hash of its final
//! (rewritten) bytes. A change in one file therefore renames exactly the files
//! that transitively reference it, and nothing else. Files that keep their
//! names ([`crate::assets::keep`]) are scanned and rewritten all the same.

use crate::assets::css::css_references;
use crate::assets::html::{html_scan, source_map_sources, web_manifest_references};
use crate::assets::js::js_references;
use crate::assets::refs::{encode_for, fill_positions, json_string, RefKind, Reference};
use crate::assets::sri;
use crate::assets::url::{
    is_absolute, is_bare_specifier, is_path_relative, percent_decode, percent_encode_segment,
    resolve, resolve_dir, split_suffix, Target, UrlOptions,
};
use crate::digest::Digest;
use globset::GlobSet;
use sha2::{Digest as _, Sha256};
use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::ops::Range;

/// Minimum number of hex chars of the content hash in file names.
pub const MIN_HASH_LEN: usize = 12;

/// What to fingerprint.
#[derive(Debug, Clone)]
pub struct Input {
    /// Logical path (`/`-separated, no leading `/`) to file bytes.
    pub files: BTreeMap<String, Vec<u8>>,
    /// Files whose bytes are not at hand, by logical path (none also in
    /// `files`): those no scanner reads ([`reads_text`]), which are
    /// published as they are, so their digests are all the graph needs.
    pub opaque: BTreeMap<String, Opaque>,
    pub url: UrlOptions,
    /// Globs (the configuration's dialect, [`crate::pack::glob_set`])
    /// matched against the reference value and the resolved path; a
    /// missing file matching one is left unrewritten instead of failing.
    pub allow_missing: GlobSet,
    /// Hex chars of the hash in names; must be in `12..=64`.
    pub hash_len: usize,
    /// Paths that keep their own names ([`crate::assets::keep::kept`]).
    /// They are scanned like any other file: references from them to
    /// renamed files are rewritten (so their bytes may differ from the
    /// tree's), references to them are left as written.
    pub keep: BTreeSet<String>,
    /// Directories (logical paths, no trailing `/`, none inside another)
    /// published whole under a name carrying the hash of their tree
    /// ([`hashed_dir_name`]): `vendor/pdfjs/cmaps/x` becomes
    /// `vendor/pdfjs/cmaps.<hash>/x`, for code that builds URLs from the
    /// directory's URL at run time.
    pub hash_dirs: Vec<String>,
}

impl Default for Input {
    fn default() -> Self {
        Input {
            files: BTreeMap::new(),
            opaque: BTreeMap::new(),
            url: UrlOptions::default(),
            allow_missing: GlobSet::empty(),
            hash_len: MIN_HASH_LEN,
            keep: BTreeSet::new(),
            hash_dirs: Vec::new(),
        }
    }
}

/// A file of [`Input::opaque`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opaque {
    pub size: u64,
    pub digests: sri::Digests,
}

/// Whether the scanners read a file at `path` (by its extension): only
/// those need to be in [`Input::files`]. A `.json` may be a web app
/// manifest a page links to.
pub fn reads_text(path: &str) -> bool {
    extension(path).is_some_and(|ext| {
        [
            "css",
            "js",
            "mjs",
            "html",
            "htm",
            "svg",
            "webmanifest",
            "map",
            "json",
        ]
        .iter()
        .any(|t| ext.eq_ignore_ascii_case(t))
    })
}

/// The fingerprinted tree, keyed by original logical path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    pub files: BTreeMap<String, OutFile>,
    /// Each of [`Input::hash_dirs`] holding a file, to its final name
    /// (`vendor/pdfjs/cmaps` to `vendor/pdfjs/cmaps.3fa9c1d2e4b5`).
    pub dirs: BTreeMap<String, String>,
}

impl Output {
    /// Original logical path to final logical name.
    pub fn manifest(&self) -> BTreeMap<String, String> {
        self.files
            .iter()
            .map(|(k, v)| (k.clone(), v.name.clone()))
            .collect()
    }

    /// The final bytes of the file at `path`, unless it is opaque.
    pub fn bytes<'a>(&self, input: &'a Input, path: &str) -> Option<Cow<'a, [u8]>> {
        let edits = &self.files.get(path)?.edits;
        let text = input.files.get(path)?;
        Some(match edits.is_empty() {
            true => Cow::Borrowed(text),
            false => Cow::Owned(apply(text, edits)),
        })
    }
}

/// One replacement in a file's text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edit {
    pub range: Range<usize>,
    pub text: String,
}

/// `bytes` with `edits` (in order, none overlapping another, as made by
/// [`fingerprint`]) applied.
pub fn apply(bytes: &[u8], edits: &[Edit]) -> Vec<u8> {
    let grown: usize = edits.iter().map(|e| e.text.len()).sum();
    let mut out = Vec::with_capacity(bytes.len() + grown);
    apply_to(&mut out, bytes, edits);
    out
}

/// [`apply`], appending to `out`.
pub fn apply_to(out: &mut Vec<u8>, bytes: &[u8], edits: &[Edit]) {
    let mut pos = 0;
    for e in edits {
        out.extend_from_slice(&bytes[pos..e.range.start]);
        out.extend_from_slice(e.text.as_bytes());
        pos = e.range.end;
    }
    out.extend_from_slice(&bytes[pos..]);
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutFile {
    /// Final logical name, e.g. `css/site.3fa9c1d2e4b5.css`.
    pub name: String,
    /// What makes the final bytes from the input's (references rewritten):
    /// none for a file published as it is.
    pub edits: Vec<Edit>,
    /// SHA-256 of the final bytes.
    pub sha256: Digest,
    pub size: u64,
    /// Subresource integrity of the final bytes ([`sri::integrity`]) when
    /// it was needed here (an integrity attribute covers the file) or is
    /// known (an opaque file); else it is for whoever makes the bytes
    /// ([`Output::bytes`]) to compute.
    pub integrity: Option<String>,
    /// Original logical paths of the tree files this file references.
    pub references: Vec<String>,
    /// Kept under its original name ([`Input::keep`]).
    pub kept: bool,
}

/// One problem found while fingerprinting; all are collected and reported
/// together. `line`/`column` are 1-based, or 0 when not tied to a position.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct AssetError {
    pub file: String,
    pub line: u32,
    pub column: u32,
    pub reference: String,
    pub message: String,
}

impl fmt::Display for AssetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {} (reference {:?})",
            self.file, self.line, self.column, self.message, self.reference
        )
    }
}

impl std::error::Error for AssetError {}

impl AssetError {
    fn at(file: &str, r: &Reference, message: String) -> Self {
        AssetError {
            file: file.to_string(),
            line: r.line,
            column: r.column,
            reference: r.value.clone(),
            message,
        }
    }
}

/// A resolved reference to a file of the tree.
#[doc(hidden)] // public for the fuzz targets only
pub struct Edge {
    pub r: Reference,
    /// Index into the `names` given to [`rewrite`].
    pub target: usize,
}

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

fn extension(path: &str) -> Option<&str> {
    let file = path.rsplit('/').next().unwrap_or(path);
    file.rfind('.').filter(|&i| i > 0).map(|i| &file[i + 1..])
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

/// Rewrites every edge whose target already has a final name.
#[doc(hidden)] // public for the fuzz targets only
pub fn rewrite(text: &str, edges: &[Edge], names: &[Option<String>]) -> String {
    let edits = edits_with(text, edges, names, &[], Vec::new());
    // Edits replace whole ranges of `text` with text: still UTF-8.
    String::from_utf8_lossy(&apply(text.as_bytes(), &edits)).into_owned()
}

/// [`rewrite`], replacing the last `tails[target]` segments of each
/// reference (1 when `tails` is empty), and also replacing each range of
/// `more` (disjoint from the references) with its text. Replacements are made in source order, each
/// when it is reached, so none is held longer than it takes to copy it.
fn edits_with(
    text: &str,
    edges: &[Edge],
    names: &[Option<String>],
    tails: &[usize],
    mut more: Vec<(Range<usize>, String)>,
) -> Vec<Edit> {
    let mut order: Vec<&Edge> = edges.iter().filter(|e| names[e.target].is_some()).collect();
    order.sort_by_key(|e| e.r.range.start);
    more.sort_by_key(|(range, _)| range.start);
    let mut order = order.into_iter().peekable();
    let mut more = more.into_iter().peekable();
    let mut out = Vec::new();
    let mut pos = 0;
    loop {
        let edge_first = match (order.peek(), more.peek()) {
            (Some(e), Some((range, _))) => e.r.range.start <= range.start,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (None, None) => break,
        };
        let (range, replacement) = if edge_first {
            let Some(e) = order.next() else { break };
            let Some(name) = &names[e.target] else {
                continue;
            };
            (
                e.r.range.clone(),
                encode_for(
                    &e.r,
                    &new_url(&e.r.value, name, tails.get(e.target).copied().unwrap_or(1)),
                ),
            )
        } else {
            let Some(next) = more.next() else { break };
            next
        };
        if range.start < pos || text.get(range.clone()).is_none() {
            continue; // overlapping or invalid range: never corrupt the file
        }
        pos = range.end;
        if text[range.clone()] != replacement {
            out.push(Edit {
                range,
                text: replacement,
            });
        }
    }
    out
}

/// The reference as written, with only its last `tail` path segments
/// replaced by those of the final name (directory style, prefix/CDN and
/// `?#` suffix preserved).
fn new_url(value: &str, final_name: &str, tail: usize) -> String {
    let value = value.trim_matches(|c: char| c.is_ascii_whitespace());
    let (path, suffix) = split_suffix(value);
    let dir = path
        .rmatch_indices('/')
        .nth(tail.max(1) - 1)
        .map_or("", |(i, _)| &path[..=i]);
    let mut segments: Vec<String> = final_name
        .rsplit('/')
        .take(tail.max(1))
        .map(percent_encode_segment)
        .collect();
    segments.reverse();
    let file = segments.join("/");
    // `a:b.png` on its own would read as a URL with scheme `a:` (found by
    // fuzzing: `%61:b.png` was rewritten to an external URL).
    let dot = if dir.is_empty() && file.contains(':') {
        "./"
    } else {
        ""
    };
    format!("{dot}{dir}{file}{suffix}")
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

fn allowed_missing(globs: &GlobSet, value: &str, path: &str) -> bool {
    globs.is_match(value) || globs.is_match(path)
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
mod tests {
    use super::*;

    fn input(files: &[(&str, &str)]) -> Input {
        Input {
            files: files
                .iter()
                .map(|(p, c)| (p.to_string(), c.as_bytes().to_vec()))
                .collect(),
            url: UrlOptions {
                public_prefix: "/static/".into(),
                cdn_base: Some("https://cdn.example.com/static/".into()),
            },
            ..Input::default()
        }
    }

    /// An [`Output`] with the final bytes of every file of
    /// [`Input::files`], by final name.
    #[derive(Debug, PartialEq)]
    struct Run {
        out: Output,
        bytes: BTreeMap<String, Vec<u8>>,
    }

    impl std::ops::Deref for Run {
        type Target = Output;
        fn deref(&self) -> &Output {
            &self.out
        }
    }

    impl Run {
        fn bytes_of(&self, f: &OutFile) -> &[u8] {
            &self.bytes[&f.name]
        }
    }

    fn run(inp: &Input) -> Run {
        let out = match fingerprint(inp) {
            Ok(o) => o,
            Err(e) => panic!("{}", e.iter().map(|e| format!("{e}\n")).collect::<String>()),
        };
        let bytes = out
            .files
            .iter()
            .filter_map(|(p, f)| Some((f.name.clone(), out.bytes(inp, p)?.into_owned())))
            .collect();
        Run { out, bytes }
    }

    fn text(out: &Run, path: &str) -> String {
        String::from_utf8(out.bytes_of(&out.files[path]).to_vec()).expect("utf8")
    }

    #[test]
    fn a_base_href_is_what_the_page_resolves_against() {
        let files = [
            ("css/site.css", "body { color: red }"),
            ("sub/css/site.css", "p { color: blue }"),
        ];
        let page = |base: &str| {
            format!(
                "<base href=\"{base}\"><link rel=stylesheet href=\"css/site.css\">\
                 <img src=\"https://cdn.example.com/static/sub/css/site.css\">"
            )
        };
        let name = |out: &Run, p: &str| out.files[p].name.clone();
        for (base, target) in [
            ("/static/", "css/site.css"),
            ("/static/index.html?x=1", "css/site.css"),
            ("../", "css/site.css"),
            ("", "sub/css/site.css"),
            ("https://cdn.example.com/static/sub/", "sub/css/site.css"),
        ] {
            let mut all = files.to_vec();
            let html = page(base);
            all.push(("sub/page.html", &html));
            let out = run(&input(&all));
            let text = text(&out, "sub/page.html");
            let written = name(&out, target);
            let relative = written.rsplit('/').take(2).collect::<Vec<_>>();
            assert!(
                text.contains(&format!("href=\"css/{}\"", relative[0])),
                "base {base:?} names {target}: {text}"
            );
            let want: BTreeSet<&str> = [target, "sub/css/site.css"].into();
            let refs = &out.files["sub/page.html"].references;
            assert_eq!(
                refs.iter().map(String::as_str).collect::<BTreeSet<_>>(),
                want
            );
            assert!(
                text.contains(&format!("<base href=\"{base}\">")),
                "left as written"
            );
        }
        // A base outside the tree: relative URLs point there, whatever the
        // tree holds; absolute ones still name the tree's files.
        let html = page("https://elsewhere.example/app/");
        let mut all = files.to_vec();
        all.push(("sub/page.html", &html));
        let out = run(&input(&all));
        let text = text(&out, "sub/page.html");
        assert!(text.contains("href=\"css/site.css\""), "{text}");
        assert!(text.contains(&name(&out, "sub/css/site.css")), "{text}");
        // One that climbs out of the tree is an error at its position.
        let html = page("../../../");
        all.pop();
        all.push(("sub/page.html", &html));
        let errs = errors(&input(&all));
        assert!(
            errs.iter()
                .any(|e| e.contains("<base href>") && e.contains(":1:")),
            "{errs:?}"
        );
    }

    #[test]
    fn opaque_files_go_by_their_digests_and_unchanged_bytes_are_not_copied() {
        let png = b"\x89PNG not read by the graph";
        let digests = sri::Digests::of(png);
        let sha512 = crate::digest::base64(&digests.sha512);
        let page = |sha512: &str| {
            format!("<link rel=preload as=image href=i.png integrity=sha512-{sha512}><p>")
        };
        let mut inp = input(&[
            ("a.css", "body { background: url(i.png) }"),
            ("b.css", "p { color: red }"),
            ("page.html", &page(&sha512)),
        ]);
        inp.opaque.insert(
            "i.png".into(),
            Opaque {
                size: png.len() as u64,
                digests: digests.clone(),
            },
        );
        let out = fingerprint(&inp).unwrap();
        let i = &out.files["i.png"];
        let sha256 = Digest::from_bytes(digests.sha256);
        assert_eq!(i.name, hashed_name("i.png", &sha256.hex(), MIN_HASH_LEN));
        assert_eq!(
            (i.edits.is_empty(), i.sha256, i.size, &i.integrity),
            (true, sha256, png.len() as u64, &Some(digests.integrity()))
        );
        assert_eq!(out.bytes(&inp, "i.png"), None);
        let b = &out.files["b.css"];
        assert_eq!(b.edits, [], "unchanged bytes: nothing to do");
        assert!(matches!(
            out.bytes(&inp, "b.css"),
            Some(Cow::Borrowed(b"p { color: red }"))
        ));
        assert_eq!(b.integrity, None, "left to the writer");
        let a = out.bytes(&inp, "a.css").unwrap();
        assert_eq!(
            a,
            format!("body {{ background: url({}) }}", i.name).as_bytes()
        );
        assert_eq!(out.files["a.css"].size, a.len() as u64);

        // The integrity attribute was checked against the digests.
        inp.files
            .insert("page.html".into(), page(&"A".repeat(86)).into_bytes());
        let errors = fingerprint(&inp).unwrap_err();
        assert!(errors[0].message.contains("does not match"), "{errors:?}");
    }

    fn errors(inp: &Input) -> Vec<String> {
        match fingerprint(inp) {
            Ok(_) => panic!("expected errors"),
            Err(e) => e.iter().map(ToString::to_string).collect(),
        }
    }

    fn site() -> Input {
        input(&[
            ("img/a.png", "PNG-A"),
            ("img/b.png", "PNG-B"),
            ("fonts/f.woff2", "WOFF"),
            (
                "css/site.css",
                "@import 'base.css';\n.a{background:url(../img/a.png)}\n/* url(../img/b.png) */\n\
                 @font-face{src:url(\"/static/fonts/f.woff2?#iefix\")}",
            ),
            ("css/base.css", "body{color:red}"),
            ("css/other.css", ".b{background:url(https://cdn.example.com/static/img/b.png)}"),
            ("js/app.js", "import {x} from './util.js';\nimport 'react';\nconst s = \"./util.js\";"),
            ("js/util.js", "export const x = new URL('../img/b.png', import.meta.url);"),
            (
                "index.html",
                "<link rel=stylesheet href=\"/static/css/site.css\">\n<script type=module src=\"js/app.js\"></script>\n\
                 <img srcset=\"img/a.png 1x, img/b.png 2x\" src='data:,x'>",
            ),
        ])
    }

    #[test]
    fn a_rewritten_name_with_a_colon_never_reads_as_a_scheme() {
        // Found by `cargo xtask fuzz`: `%6Fa-.:x` is a local file `oa-.:x`;
        // written back plainly it would be a URL with scheme `oa-.:`.
        assert_eq!(new_url("%6Fa-.:x", "oa-.:x.0123", 1), "./oa-.:x.0123");
        assert_eq!(
            new_url("img/a:b.png", "img/a:b.0123.png", 1),
            "img/a:b.0123.png"
        );
        assert_eq!(new_url("a.png?v=1", "a.0123.png", 1), "a.0123.png?v=1");
    }

    #[test]
    fn a_reference_into_a_hashed_dir_is_rewritten_from_the_dir_on() {
        for (value, name, tail, want) in [
            (
                "../v/cmaps/a%20b/x.bcmap?q",
                "v/cmaps.0123/a b/x.bcmap",
                3,
                "../v/cmaps.0123/a%20b/x.bcmap?q",
            ),
            ("cmaps/x", "cmaps.0123/x", 2, "cmaps.0123/x"),
            (
                "https://cdn.example.com/s/cmaps/x",
                "cmaps.0123/x",
                2,
                "https://cdn.example.com/s/cmaps.0123/x",
            ),
        ] {
            assert_eq!(new_url(value, name, tail), want);
        }
    }

    #[test]
    fn rewrites_and_names() {
        let out = run(&site());
        let m = out.manifest();
        for (path, name) in &m {
            let f = &out.files[path];
            assert_eq!(f.sha256, Digest::of(out.bytes_of(f)));
            assert!(!f.kept);
            // Names are derived from the final bytes for acyclic files.
            let expected = hashed_name(path, &f.sha256.hex(), 12);
            assert_eq!(name, &expected);
        }
        assert!(m["css/site.css"].starts_with("css/site.") && m["css/site.css"].ends_with(".css"));
        assert_eq!(m["css/site.css"].len(), "css/site.css".len() + 13);
        let a = m["img/a.png"]
            .rsplit('/')
            .next()
            .unwrap_or_default()
            .to_string();
        let b = m["img/b.png"]
            .rsplit('/')
            .next()
            .unwrap_or_default()
            .to_string();
        let f = m["fonts/f.woff2"]
            .rsplit('/')
            .next()
            .unwrap_or_default()
            .to_string();
        let base = m["css/base.css"]
            .rsplit('/')
            .next()
            .unwrap_or_default()
            .to_string();
        assert_eq!(
            text(&out, "css/site.css"),
            format!(
                "@import '{base}';\n.a{{background:url(../img/{a})}}\n/* url(../img/b.png) */\n\
                 @font-face{{src:url(\"/static/fonts/{f}?#iefix\")}}"
            )
        );
        assert_eq!(
            text(&out, "css/other.css"),
            format!(".b{{background:url(https://cdn.example.com/static/img/{b})}}")
        );
        let util = m["js/util.js"]
            .rsplit('/')
            .next()
            .unwrap_or_default()
            .to_string();
        assert_eq!(
            text(&out, "js/app.js"),
            format!("import {{x}} from './{util}';\nimport 'react';\nconst s = \"./util.js\";")
        );
        assert_eq!(
            text(&out, "index.html"),
            format!(
                "<link rel=stylesheet href=\"/static/{}\">\n<script type=module src=\"{}\"></script>\n\
                 <img srcset=\"img/{a} 1x, img/{b} 2x\" src='data:,x'>",
                m["css/site.css"], m["js/app.js"]
            )
        );
        assert_eq!(
            out.files["css/site.css"].references,
            vec!["css/base.css", "fonts/f.woff2", "img/a.png"]
        );
        assert_eq!(out, run(&site()), "deterministic");
    }

    #[test]
    fn output_does_not_depend_on_the_thread_count() {
        // Many small directories with every kind of edge and a JS cycle,
        // enough for several scan chunks per thread.
        let mut files = Vec::new();
        for d in 0..60 {
            let dir = |p: &str| format!("d{d}/{p}");
            files.extend([
                (dir("img/a.png"), format!("PNG-A{d}")),
                (dir("img/b.png"), format!("PNG-B{d}")),
                (
                    dir("css/site.css"),
                    "@import 'base.css'; a{b:url(../img/a.png)}".into(),
                ),
                (dir("css/base.css"), format!("body{{order:{d}}}")),
                (dir("js/app.js"), "import {x} from './util.js';".into()),
                (
                    dir("js/util.js"),
                    "new URL('../img/b.png', import.meta.url);".into(),
                ),
                (
                    dir("js/a.js"),
                    "import './b.js'; import '../../d0/img/a.png';".into(),
                ),
                (dir("js/b.js"), "import './a.js';".into()),
                (
                    dir("index.html"),
                    "<link href=css/site.css><script src=js/app.js></script>".into(),
                ),
            ]);
        }
        let files: Vec<(&str, &str)> = files.iter().map(|(p, c)| (&p[..], &c[..])).collect();
        let good = input(&files);
        let mut bad = good.clone();
        for d in [3, 17, 42] {
            bad.files.insert(
                format!("d{d}/css/broken.css"),
                b"a{b:url(nope.png)} @import 'broken.css';".to_vec(),
            );
        }
        for inp in [&good, &bad] {
            let one = fingerprint_with(inp, 1);
            for threads in [2, 3, 8] {
                assert_eq!(fingerprint_with(inp, threads), one, "{threads} threads");
            }
        }
        assert!(fingerprint_with(&good, 1).is_ok());
        assert_eq!(fingerprint_with(&bad, 4).map(|_| ()).unwrap_err().len(), 6);
    }

    #[test]
    fn leaf_change_propagates_to_referrers_only() {
        let before = run(&site()).manifest();
        let mut changed = site();
        changed.files.insert("img/a.png".into(), b"PNG-A2".to_vec());
        let after = run(&changed).manifest();
        let differ: Vec<&str> = before
            .keys()
            .filter(|k| before[*k] != after[*k])
            .map(String::as_str)
            .collect();
        assert_eq!(differ, vec!["css/site.css", "img/a.png", "index.html"]);
    }

    #[test]
    fn js_cycle() {
        let files = [
            ("a.js", "import {b} from './b.js'; export const a = 1;"),
            (
                "b.js",
                "import {a} from './a.js'; import './leaf.js'; export const b = 2;",
            ),
            ("c.js", "import {a} from './a.js';"),
            ("leaf.js", "export {};"),
            ("self.js", "import('./self.js');"),
        ];
        let out = run(&input(&files));
        let m = out.manifest();
        let name = |p: &str| m[p].clone();
        assert_eq!(
            text(&out, "a.js"),
            format!(
                "import {{b}} from './{}'; export const a = 1;",
                name("b.js")
            )
        );
        assert_eq!(
            text(&out, "b.js"),
            format!(
                "import {{a}} from './{}'; import './{}'; export const b = 2;",
                name("a.js"),
                name("leaf.js")
            )
        );
        assert_eq!(
            text(&out, "self.js"),
            format!("import('./{}');", name("self.js"))
        );
        for f in out.files.values() {
            assert_eq!(f.sha256, Digest::of(out.bytes_of(f)));
        }
        assert_eq!(out, run(&input(&files)), "deterministic");

        // A change below the cycle renames the whole cycle and its referrers.
        let mut changed = input(&files);
        changed
            .files
            .insert("leaf.js".into(), b"export const z = 0;".to_vec());
        let m2 = run(&changed).manifest();
        for p in ["a.js", "b.js", "c.js", "leaf.js"] {
            assert_ne!(m[p], m2[p], "{p}");
        }
        assert_eq!(m["self.js"], m2["self.js"]);
    }

    #[test]
    fn css_import_cycle_is_an_error() {
        let inp = input(&[
            ("a.css", "@import 'b.css';"),
            ("b.css", "@import url(c.css);"),
            ("c.css", "x{}\n  @import \"a.css\";"),
            ("d.css", "@import 'd.css';"),
        ]);
        assert_eq!(
            errors(&inp),
            vec![
                "a.css:1:10: CSS @import cycle: a.css -> b.css -> c.css -> a.css (reference \"b.css\")",
                "d.css:1:10: CSS @import cycle: d.css -> d.css (reference \"d.css\")",
            ]
        );
    }

    #[test]
    fn missing_references_are_all_reported() {
        let inp = input(&[
            (
                "css/a.css",
                ".x{}\n.y { background: url(\"../img/nope.png\") }\n.z{background:url(gone.png)}",
            ),
            ("js/m.js", "\n\n  import x from './missing.js';"),
            ("page.html", "<img src=\"../../escape.png\">"),
        ]);
        assert_eq!(
            errors(&inp),
            vec![
                "css/a.css:2:23: referenced file \"img/nope.png\" does not exist (reference \"../img/nope.png\")",
                "css/a.css:3:19: referenced file \"css/gone.png\" does not exist (reference \"gone.png\")",
                "js/m.js:3:18: referenced file \"js/missing.js\" does not exist (reference \"./missing.js\")",
                "page.html:1:11: path \"../../escape.png\" escapes the asset root (reference \"../../escape.png\")",
            ]
        );
    }

    #[test]
    fn workers_are_rewritten_where_their_url_is_certain() {
        let files = [
            ("js/w.js", "postMessage(1);"),
            ("js/s.js", "onconnect = () => {};"),
            ("sw.js", "self.onfetch = null;"),
            (
                "js/app.js",
                "new Worker('/static/js/w.js'); new SharedWorker(\"https://cdn.example.com/static/js/s.js\");\n\
                 new Worker('/elsewhere/x.js'); new Worker('not-an-asset.js');\n\
                 navigator.serviceWorker.register('/static/sw.js');",
            ),
            (
                "index.html",
                "<script type=module>new Worker('js/w.js')</script>",
            ),
        ];
        let mut inp = input(&files);
        inp.keep.insert("sw.js".into());
        let out = run(&inp);
        let m = out.manifest();
        let file = |p: &str| m[p].rsplit('/').next().unwrap_or_default().to_string();
        assert_eq!(
            text(&out, "js/app.js"),
            format!(
                "new Worker('/static/js/{}'); new SharedWorker(\"https://cdn.example.com/static/js/{}\");\n\
                 new Worker('/elsewhere/x.js'); new Worker('not-an-asset.js');\n\
                 navigator.serviceWorker.register('/static/sw.js');",
                file("js/w.js"),
                file("js/s.js")
            )
        );
        assert_eq!(
            text(&out, "index.html"),
            format!(
                "<script type=module>new Worker('{}')</script>",
                m["js/w.js"]
            )
        );

        // A relative URL in a script file that names an asset relative to
        // the script, and a service worker that would be renamed.
        inp.keep.clear();
        inp.files.insert(
            "js/b.js".into(),
            b"new Worker('./w.js');\nnavigator.serviceWorker.register(`../sw.js`);".to_vec(),
        );
        let errs = errors(&inp);
        assert_eq!(errs.len(), 3, "{errs:#?}");
        assert!(
            errs[0].starts_with("js/app.js:3:35: a service worker's URL must stay the same"),
            "{}",
            errs[0]
        );
        assert!(
            errs[1].starts_with("js/b.js:1:13: a worker's URL is resolved against the page's URL"),
            "{}",
            errs[1]
        );
        assert!(
            errs[1].contains("write `new URL(\"./w.js\", import.meta.url)`"),
            "{}",
            errs[1]
        );
        assert!(
            errs[2].starts_with("js/b.js:2:35: a worker's URL"),
            "{}",
            errs[2]
        );
    }

    fn globs(patterns: &[&str]) -> GlobSet {
        let patterns: Vec<String> = patterns.iter().map(|p| p.to_string()).collect();
        crate::pack::glob_set(&patterns).expect("valid globs")
    }

    #[test]
    fn allow_missing() {
        let mut inp = input(&[(
            "css/a.css",
            "a{b:url(../fonts/x.woff)} c{d:url(/static/img/missing-1.png)} e{f:url(dyn.png)} \
             g{h:url(icons/a.svg)} i{j:url(icons/b.svg)}",
        )]);
        inp.allow_missing = globs(&[
            "**/*.woff",
            "img/missing-*.png",
            "dyn.png",
            "css/icons/{a,b}.svg",
        ]);
        let out = run(&inp);
        assert_eq!(
            text(&out, "css/a.css"),
            "a{b:url(../fonts/x.woff)} c{d:url(/static/img/missing-1.png)} e{f:url(dyn.png)} \
             g{h:url(icons/a.svg)} i{j:url(icons/b.svg)}"
        );
        inp.allow_missing = globs(&["img/missing-?.png", "css/icons/a.svg"]);
        assert_eq!(
            errors(&inp),
            vec![
                "css/a.css:1:9: referenced file \"fonts/x.woff\" does not exist (reference \"../fonts/x.woff\")",
                "css/a.css:1:71: referenced file \"css/dyn.png\" does not exist (reference \"dyn.png\")",
                "css/a.css:1:111: referenced file \"css/icons/b.svg\" does not exist (reference \"icons/b.svg\")",
            ]
        );
    }

    #[test]
    fn allow_missing_is_the_exclude_dialect_and_linear() {
        for (pattern, name, expected) in [
            ("**/*.woff", "x.woff", true),
            ("**/*.woff", "a/b/x.woff", true),
            ("a/**/b", "a/x/y/b", true),
            ("a/?.png", "a/x.png", true),
            // As in `app.exclude`, `*` also crosses `/`.
            ("a/*.png", "a/x/y.png", true),
            ("*.{png,svg}", "i/x.svg", true),
            ("*.{png,svg}", "x.gif", false),
            ("[ab].js", "b.js", true),
            ("[ab].js", "c.js", false),
        ] {
            assert_eq!(
                globs(&[pattern]).is_match(name),
                expected,
                "{pattern} {name}"
            );
        }
        // Exponential for a backtracking matcher, linear here.
        let pattern = format!("{}b", "**a".repeat(20));
        assert!(!globs(&[&pattern]).is_match("a".repeat(1000)));
    }

    #[test]
    fn kept_files_keep_their_names_and_are_still_rewritten() {
        // The shape of a Vite build (tests/fixtures/vite): chunks that
        // import each other, a stylesheet naming a copy of `public/` by
        // its plain URL, and one import of a file verbatim renames.
        let mut inp = input(&[
            (
                "dist/assets/index-9GimqxIf.js",
                "import '../../vendor/x.js';\nimport(`./lazy-B2qQgaqo.js`);\n\
                 //# sourceMappingURL=index-9GimqxIf.js.map",
            ),
            ("dist/assets/index-9GimqxIf.js.map", "{}"),
            (
                "dist/assets/lazy-B2qQgaqo.js",
                "import{t as e}from\"./index-9GimqxIf.js\";",
            ),
            (
                "dist/assets/index-gGNJdlJx.css",
                "body{background:url(/static/dist/logo.svg)}",
            ),
            ("dist/logo.svg", "<svg/>"),
            ("vendor/x.js", "export {};"),
        ]);
        inp.keep = [
            "dist/assets/index-9GimqxIf.js",
            "dist/assets/index-9GimqxIf.js.map",
            "dist/assets/lazy-B2qQgaqo.js",
            "dist/assets/index-gGNJdlJx.css",
            "dist/logo.svg",
        ]
        .map(String::from)
        .into();
        let out = run(&inp);
        for p in &inp.keep {
            let f = &out.files[p];
            assert!(f.kept, "{p}");
            assert_eq!(&f.name, p);
            assert_eq!(f.sha256, Digest::of(out.bytes_of(f)));
        }
        // Only references to renamed files are rewritten.
        let x = out.files["vendor/x.js"].name.replace("vendor/", "");
        assert!(!out.files["vendor/x.js"].kept);
        assert_ne!(x, "x.js");
        assert_eq!(
            text(&out, "dist/assets/index-9GimqxIf.js"),
            format!(
                "import '../../vendor/{x}';\nimport(`./lazy-B2qQgaqo.js`);\n\
                 //# sourceMappingURL=index-9GimqxIf.js.map"
            )
        );
        for p in [
            "dist/assets/lazy-B2qQgaqo.js",
            "dist/assets/index-gGNJdlJx.css",
        ] {
            assert_eq!(out.bytes_of(&out.files[p]), inp.files[p], "{p} untouched");
        }
        // Kept files are scanned: their references are known.
        assert_eq!(
            out.files["dist/assets/index-gGNJdlJx.css"].references,
            ["dist/logo.svg"]
        );
        assert_eq!(
            out.files["dist/assets/index-9GimqxIf.js"].references,
            [
                "dist/assets/index-9GimqxIf.js.map",
                "dist/assets/lazy-B2qQgaqo.js",
                "vendor/x.js"
            ]
        );
        assert_eq!(out, run(&inp), "deterministic");

        // And checked: a kept file naming a missing file fails the build.
        inp.files.insert(
            "dist/assets/index-gGNJdlJx.css".into(),
            b"body{background:url(/static/dist/gone.svg)}".to_vec(),
        );
        assert_eq!(
            errors(&inp),
            ["dist/assets/index-gGNJdlJx.css:1:21: referenced file \"dist/gone.svg\" does not exist (reference \"/static/dist/gone.svg\")"]
        );
    }

    #[test]
    fn a_name_is_never_taken_for_a_hash() {
        // Names from real packages that look like bundler hashes: Font
        // Awesome's v4-compatibility font and jQuery UI's icon sprites,
        // referenced as their stylesheets do; and a stylesheet whose own
        // name looks hashed, which must still be scanned.
        let out = run(&input(&[
            (
                "fontawesome/css/v4-font-face.css",
                "@font-face{font-family:\"FontAwesome\";font-display:block;\
                 src:url(\"../webfonts/fa-v4compatibility.woff2\") format(\"woff2\")}",
            ),
            ("fontawesome/webfonts/fa-v4compatibility.woff2", "wOF2"),
            (
                "jquery-ui/themes/base/jquery-ui.css",
                ".ui-icon{background-image:url(\"images/ui-icons_444444_256x240.png\")}",
            ),
            (
                "jquery-ui/themes/base/images/ui-icons_444444_256x240.png",
                "PNG",
            ),
            (
                "css/theme-v2compact.css",
                "a{background:url(../img/bg.png)}",
            ),
            ("img/bg.png", "PNG"),
            ("assets/index-BxK3a9Zq.js", "export {};"),
        ]));
        for (path, f) in &out.files {
            assert!(!f.kept, "{path}");
            assert_eq!(f.name, hashed_name(path, &f.sha256.hex(), 12), "{path}");
        }
        let name = |p: &str| {
            let n = &out.files[p].name;
            n.rsplit('/').next().unwrap_or(n).to_owned()
        };
        assert!(
            text(&out, "fontawesome/css/v4-font-face.css").contains(&format!(
                "url(\"../webfonts/{}\")",
                name("fontawesome/webfonts/fa-v4compatibility.woff2")
            ))
        );
        assert!(
            text(&out, "jquery-ui/themes/base/jquery-ui.css").contains(&format!(
                "url(\"images/{}\")",
                name("jquery-ui/themes/base/images/ui-icons_444444_256x240.png")
            ))
        );
        assert_eq!(
            text(&out, "css/theme-v2compact.css"),
            format!("a{{background:url(../img/{})}}", name("img/bg.png"))
        );
    }

    #[test]
    fn a_cycle_of_kept_and_renamed_files() {
        let files = [
            ("kept.js", "import './renamed.js';"),
            ("renamed.js", "import './kept.js'; import './leaf.js';"),
            ("leaf.js", "export {};"),
        ];
        let mut inp = input(&files);
        inp.keep.insert("kept.js".into());
        let out = run(&inp);
        let renamed = out.files["renamed.js"].name.clone();
        assert_ne!(renamed, "renamed.js");
        assert_eq!(out.files["kept.js"].name, "kept.js");
        assert_eq!(text(&out, "kept.js"), format!("import './{renamed}';"));
        assert_eq!(
            text(&out, "renamed.js"),
            format!(
                "import './kept.js'; import './{}';",
                out.files["leaf.js"].name
            )
        );
        assert_eq!(out, run(&inp), "deterministic");
        // A change in the kept member renames the renamed one.
        inp.files
            .insert("kept.js".into(), b"import './renamed.js'; 1;".to_vec());
        assert_ne!(run(&inp).files["renamed.js"].name, renamed);
        // A cycle of kept files only is left as it is.
        let mut inp = input(&files);
        inp.keep = ["kept.js", "renamed.js", "leaf.js"]
            .map(String::from)
            .into();
        let out = run(&inp);
        for (p, f) in &out.files {
            assert_eq!((&f.name, out.bytes_of(f)), (p, &inp.files[p][..]));
        }
    }

    fn pdfjs(extra: &[(&str, &str)]) -> Input {
        let mut files = vec![
            ("vendor/pdfjs/cmaps/UniJIS-UCS2-H.bcmap", "CMAP-1"),
            ("vendor/pdfjs/cmaps/Adobe-Japan1-0.bcmap", "CMAP-2"),
            ("vendor/pdfjs/cmaps/sub/deep.bcmap", "CMAP-3"),
            ("vendor/pdfjs/standard_fonts/FoxitSans.pfb", "PFB"),
            (
                "css/viewer.css",
                "a{b:url(../vendor/pdfjs/cmaps/UniJIS-UCS2-H.bcmap)} \
                 c{d:url(/static/vendor/pdfjs/cmaps/sub/deep.bcmap?x#y)}",
            ),
            ("js/viewer.js", "const f = new URL('../vendor/pdfjs/standard_fonts/FoxitSans.pfb', import.meta.url);"),
        ];
        files.extend_from_slice(extra);
        let mut inp = input(&files);
        inp.hash_dirs = vec![
            "vendor/pdfjs/cmaps".into(),
            "vendor/pdfjs/standard_fonts".into(),
        ];
        inp
    }

    #[test]
    fn hashed_dirs_are_named_as_a_whole() {
        let inp = pdfjs(&[]);
        let out = run(&inp);
        let cmaps = out.dirs["vendor/pdfjs/cmaps"].clone();
        let fonts = out.dirs["vendor/pdfjs/standard_fonts"].clone();
        // The hash of the tree: each file's path in the directory and the
        // digest of its final bytes.
        let files = [
            "UniJIS-UCS2-H.bcmap",
            "Adobe-Japan1-0.bcmap",
            "sub/deep.bcmap",
        ];
        let digests: Vec<Digest> = files
            .iter()
            .map(|f| Digest::of(&inp.files[&format!("vendor/pdfjs/cmaps/{f}")]))
            .collect();
        let hash = dir_hash(files.iter().copied().zip(&digests));
        assert_eq!(
            cmaps,
            hashed_dir_name("vendor/pdfjs/cmaps", &hash.hex(), 12)
        );
        assert_eq!(cmaps.len(), "vendor/pdfjs/cmaps.".len() + 12);
        // Files keep their names inside it.
        for f in files {
            let out_file = &out.files[&format!("vendor/pdfjs/cmaps/{f}")];
            assert_eq!(out_file.name, format!("{cmaps}/{f}"));
            assert!(!out_file.kept);
        }
        assert_eq!(
            out.files["vendor/pdfjs/standard_fonts/FoxitSans.pfb"].name,
            format!("{fonts}/FoxitSans.pfb")
        );
        // References into it are rewritten from the directory's name on.
        let c = cmaps.rsplit('/').next().unwrap();
        assert_eq!(
            text(&out, "css/viewer.css"),
            format!(
                "a{{b:url(../vendor/pdfjs/{c}/UniJIS-UCS2-H.bcmap)}} \
                 c{{d:url(/static/vendor/pdfjs/{c}/sub/deep.bcmap?x#y)}}"
            )
        );
        let f = fonts.rsplit('/').next().unwrap();
        assert!(
            text(&out, "js/viewer.js").contains(&format!("'../vendor/pdfjs/{f}/FoxitSans.pfb'"))
        );
        assert_eq!(out, run(&inp), "deterministic");
    }

    #[test]
    fn any_change_in_a_hashed_dir_renames_it() {
        let base = run(&pdfjs(&[]));
        let name = |out: &Output| out.dirs["vendor/pdfjs/cmaps"].clone();
        for change in [
            ("vendor/pdfjs/cmaps/Adobe-Japan1-0.bcmap", "CMAP-2!"),
            ("vendor/pdfjs/cmaps/sub/deep.bcmap", "CMAP-3!"),
            ("vendor/pdfjs/cmaps/new.bcmap", ""),
        ] {
            let out = run(&pdfjs(&[change]));
            assert_ne!(name(&out), name(&base), "{change:?}");
            // The other directory, and its referrer's name, stay.
            assert_eq!(
                out.dirs["vendor/pdfjs/standard_fonts"],
                base.dirs["vendor/pdfjs/standard_fonts"]
            );
            assert_eq!(
                out.files["js/viewer.js"].name,
                base.files["js/viewer.js"].name
            );
            // The stylesheet naming a file inside is renamed too.
            assert_ne!(
                out.files["css/viewer.css"].name,
                base.files["css/viewer.css"].name
            );
        }
        // A file renamed inside: same bytes, another path.
        let mut inp = pdfjs(&[]);
        let b = inp
            .files
            .remove("vendor/pdfjs/cmaps/sub/deep.bcmap")
            .unwrap();
        inp.files
            .insert("vendor/pdfjs/cmaps/sub/deeper.bcmap".into(), b);
        inp.files.insert("css/viewer.css".into(), b"a{}".to_vec());
        assert_ne!(name(&run(&inp)), name(&base));
        // Order independence: the hash sorts its files.
        let d = [Digest::of(b"1"), Digest::of(b"2")];
        assert_eq!(
            dir_hash([("a", &d[0]), ("b", &d[1])]),
            dir_hash([("b", &d[1]), ("a", &d[0])])
        );
        // The encoding is unambiguous: paths are length-prefixed.
        assert_ne!(dir_hash([("ab", &d[0])]), dir_hash([("a", &d[0])]),);
    }

    #[test]
    fn files_in_a_hashed_dir_are_rewritten_and_hashed_as_stored() {
        // A stylesheet inside refers out (rewritten, and its rewritten
        // bytes are what the directory is named after) and in (left as
        // written: relative paths stay inside the renamed directory).
        let mut inp = input(&[
            ("img/x.png", "PNG"),
            ("vendor/leaflet/images/marker.png", "M"),
            (
                "vendor/leaflet/leaflet.css",
                "a{b:url(images/marker.png)} c{d:url(../../img/x.png)}",
            ),
        ]);
        inp.hash_dirs = vec!["vendor/leaflet".into()];
        let out = run(&inp);
        let dir = &out.dirs["vendor/leaflet"];
        let css = &out.files["vendor/leaflet/leaflet.css"];
        assert_eq!(css.name, format!("{dir}/leaflet.css"));
        assert_eq!(
            text(&out, "vendor/leaflet/leaflet.css"),
            format!(
                "a{{b:url(images/marker.png)}} c{{d:url(../../img/{})}}",
                out.files["img/x.png"].name.replace("img/", "")
            )
        );
        let hash = dir_hash([
            ("images/marker.png", &Digest::of(b"M")),
            ("leaflet.css", &css.sha256),
        ]);
        assert_eq!(*dir, hashed_dir_name("vendor/leaflet", &hash.hex(), 12));
        // A change outside that the directory refers to renames it.
        inp.files.insert("img/x.png".into(), b"PNG2".to_vec());
        assert_ne!(&run(&inp).dirs["vendor/leaflet"], dir);
    }

    #[test]
    fn integrity_inside_a_hashed_dir_is_brought_up_to_date() {
        let js = "import '../x.js';";
        let page = format!(
            "<script type=module src=z.js integrity={}></script>",
            sri::integrity(js.as_bytes())
        );
        let mut inp = input(&[("d/page.html", &page), ("d/z.js", js), ("x.js", "1")]);
        inp.hash_dirs = vec!["d".into()];
        let out = run(&inp);
        let z = &out.files["d/z.js"];
        assert_ne!(out.bytes_of(z), js.as_bytes());
        assert_eq!(
            text(&out, "d/page.html"),
            format!(
                "<script type=module src=z.js integrity={}></script>",
                sri::integrity(out.bytes_of(z))
            )
        );
        let hash = dir_hash([
            ("z.js", &z.sha256),
            ("page.html", &out.files["d/page.html"].sha256),
        ]);
        assert_eq!(out.dirs["d"], hashed_dir_name("d", &hash.hex(), 12));
    }

    #[test]
    fn hashed_dir_errors() {
        // A reference between its files that would not survive the rename.
        let mut inp = input(&[
            (
                "d/a.css",
                "a{b:url(/static/d/b.png)} c{d:url(../d/b.png)} e{f:url(./b.png)}",
            ),
            ("d/b.png", "B"),
            ("x.css", "a{b:url(d/./b.png)}"),
        ]);
        inp.hash_dirs = vec!["d".into()];
        let e = errors(&inp);
        assert_eq!(e.len(), 3, "{e:?}");
        assert!(
            e[0].starts_with("d/a.css:1:9: \"d/b.png\" is in the same hashed directory"),
            "{e:?}"
        );
        assert!(e[1].starts_with("d/a.css:1:35: "), "{e:?}");
        assert!(
            e[2].starts_with("x.css:1:9: \"d/b.png\" is in a hashed directory"),
            "{e:?}"
        );
        // A cycle through the directory.
        let mut inp = input(&[
            ("d/a.css", "a{b:url(../x.css)}"),
            ("x.css", "a{b:url(d/a.css)}"),
        ]);
        inp.hash_dirs = vec!["d".into()];
        let e = errors(&inp);
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(
            e[0].starts_with("d/a.css:1:9: reference cycle through the hashed directory \"d\""),
            "{e:?}"
        );
        // Kept and hashed at once.
        let mut inp = input(&[("d/a.js", "1")]);
        inp.hash_dirs = vec!["d".into()];
        inp.keep.insert("d/a.js".into());
        assert!(errors(&inp)[0].contains("also keeps its name"));
    }

    #[test]
    fn hashed_dirs_are_recognised() {
        let h = "0123456789ab";
        assert_eq!(
            hashed_dir_of("v/cmaps/a/x.bcmap", &format!("v/cmaps.{h}/a/x.bcmap")),
            Some(("v/cmaps", format!("v/cmaps.{h}").as_str()))
        );
        assert_eq!(
            hashed_dir_of("cmaps/x", &format!("cmaps.{h}/x")),
            Some(("cmaps", format!("cmaps.{h}").as_str()))
        );
        for (logical, name) in [
            ("css/site.css", format!("css/site.{h}.css")),
            ("v/cmaps/x", format!("v/cmaps.{}/x", &h[..8])),
            ("v/cmaps/x", "v/cmaps.0123456789AB/x".to_owned()),
            ("v/cmaps/x", format!("v/cmaps.{h}/y")),
            ("v/cmaps/x", format!("w/cmaps.{h}/x")),
            ("v/cmaps/x", "v/cmaps/x".to_owned()),
        ] {
            assert_eq!(hashed_dir_of(logical, &name), None, "{name}");
        }
    }

    #[test]
    fn content_named() {
        let sha = Digest::of(b"x").hex();
        let named = hashed_name("css/site.css", &sha, 12);
        assert!(is_content_named("css/site.css", &named, &sha));
        assert!(is_content_named(
            "css/site.css",
            &hashed_name("css/site.css", &sha, 20),
            &sha
        ));
        assert!(is_content_named(
            "LICENSE",
            &hashed_name("LICENSE", &sha, 12),
            &sha
        ));
        let other = Digest::of(b"y").hex();
        for (logical, name) in [
            // Kept names.
            ("css/site.css", "css/site.css".to_owned()),
            (named.as_str(), named.clone()),
            // Another digest, a shorter hash, another file.
            ("css/site.css", hashed_name("css/site.css", &other, 12)),
            ("css/site.css", hashed_name("css/site.css", &sha, 8)),
            ("css/other.css", named.clone()),
            ("", String::new()),
        ] {
            assert!(!is_content_named(logical, &name, &sha), "{logical} {name}");
        }
    }

    #[test]
    fn stale_integrity_attributes_get_the_published_digest() {
        // Self-hosted Bootstrap as its documentation shows it: the
        // stylesheet ends with a sourceMappingURL, which is rewritten, so
        // the integrity attribute copied from the docs (the digest of the
        // file as shipped) would block it.
        let css = "body{margin:0}\n/*# sourceMappingURL=bootstrap.min.css.map */";
        let js = "export const x = 1;";
        let cdn = "<script src=\"https://cdn.jsdelivr.net/npm/bootstrap@5.3.3/dist/js/bootstrap.bundle.min.js\" \
                   integrity=\"sha384-YvpcrYf0tY3lHB60NNkmXc5s9fDVZLESaAA55NDzOxhy9GkcIdslK1eN7N6jIeHz\" \
                   crossorigin=\"anonymous\"></script>";
        let page = format!(
            "<link href=\"css/bootstrap.min.css\" rel=\"stylesheet\" integrity=\"{}\" crossorigin=\"anonymous\">\n\
             <script type=module src=js/app.js integrity='sha384-bogus {}'></script>\n{cdn}",
            sri::integrity(css.as_bytes()),
            format_args!("sha512-{}", crate::digest::base64(&sha2::Sha512::digest(js))),
        );
        for kept in [false, true] {
            let mut inp = input(&[
                ("css/bootstrap.min.css", css),
                ("css/bootstrap.min.css.map", "{}"),
                ("js/app.js", js),
                ("index.html", &page),
            ]);
            if kept {
                inp.keep.insert("index.html".into());
            }
            let out = run(&inp);
            let css_out = &out.files["css/bootstrap.min.css"];
            assert_ne!(out.bytes_of(css_out), css.as_bytes());
            let html = text(&out, "index.html");
            // The changed stylesheet's attribute holds the manifest's value;
            // the unchanged script's and the CDN's are left as written.
            let want = format!(
                "<link href=\"css/{}\" rel=\"stylesheet\" integrity=\"{}\" crossorigin=\"anonymous\">\n\
                 <script type=module src=js/{} integrity='sha384-bogus {}'></script>\n{cdn}",
                css_out.name.replace("css/", ""),
                sri::integrity(out.bytes_of(css_out)),
                out.files["js/app.js"].name.replace("js/", ""),
                format_args!("sha512-{}", crate::digest::base64(&sha2::Sha512::digest(js))),
            );
            assert_eq!(html, want, "kept: {kept}");
            assert_eq!(out.files["index.html"].kept, kept);
        }
    }

    #[test]
    fn import_map_prefixes_are_expanded_and_integrity_rewritten() {
        // three.js as its manual shows it: a module name and a prefix for
        // the addons, whose modules import each other relatively and
        // `three` through the map.
        let orbit = "import {V} from 'three';\nimport {u} from '../utils/u.js';";
        let page = format!(
            r#"<script type="importmap">
{{ "imports": {{ "three": "./vendor/three/build/three.module.js",
    "three/addons/": "./vendor/three/examples/jsm/",
    "cdn/": "https://unpkg.com/lib/", "/static/x/": "/static/vendor/three/examples/jsm/" }},
  "integrity": {{ "./vendor/three/examples/jsm/controls/Orbit.js": "{}" }} }}
</script>
<script type=module>import 'three/addons/controls/Orbit.js';</script>"#,
            sri::integrity(orbit.as_bytes())
        );
        for kept in [false, true] {
            let mut inp = input(&[
                ("vendor/three/build/three.module.js", "export const V = 1;"),
                ("vendor/three/examples/jsm/controls/Orbit.js", orbit),
                (
                    "vendor/three/examples/jsm/utils/u a.js",
                    "export const w = 1;",
                ),
                (
                    "vendor/three/examples/jsm/utils/u.js",
                    "export const u = 1;",
                ),
                ("index.html", &page),
            ]);
            if kept {
                inp.keep
                    .insert("vendor/three/examples/jsm/utils/u.js".into());
            }
            let out = run(&inp);
            let m = out.manifest();
            let rest = |p: &str| {
                m[p].strip_prefix("vendor/three/examples/jsm/")
                    .unwrap()
                    .to_string()
            };
            let orbit_out = &out.files["vendor/three/examples/jsm/controls/Orbit.js"];
            // Its relative import is rewritten unless it names a kept file.
            assert_eq!(out.bytes_of(orbit_out) != orbit.as_bytes(), !kept);
            let want = format!(
                r#"<script type="importmap">
{{ "imports": {{ "three": "./vendor/three/build/{three}",
    "three/addons/controls/Orbit.js": "./vendor/three/examples/jsm/{o}", "three/addons/utils/u a.js": "./vendor/three/examples/jsm/{ua}", "three/addons/utils/u.js": "./vendor/three/examples/jsm/{u}",
    "cdn/": "https://unpkg.com/lib/", "/static/x/controls/Orbit.js": "/static/vendor/three/examples/jsm/{o}", "/static/x/utils/u%20a.js": "/static/vendor/three/examples/jsm/{ua}", "/static/x/utils/u.js": "/static/vendor/three/examples/jsm/{u}" }},
  "integrity": {{ "./vendor/three/examples/jsm/{o}": "{sri}" }} }}
</script>
<script type=module>import 'three/addons/controls/Orbit.js';</script>"#,
                three = m["vendor/three/build/three.module.js"]
                    .rsplit('/')
                    .next()
                    .unwrap(),
                o = rest("vendor/three/examples/jsm/controls/Orbit.js"),
                ua = rest("vendor/three/examples/jsm/utils/u a.js").replace(' ', "%20"),
                u = rest("vendor/three/examples/jsm/utils/u.js"),
                sri = sri::integrity(out.bytes_of(orbit_out)),
            );
            let html = text(&out, "index.html");
            assert_eq!(html, want, "kept: {kept}");
            assert_eq!(
                kept,
                m["vendor/three/examples/jsm/utils/u.js"] == "vendor/three/examples/jsm/utils/u.js"
            );
            // Still JSON, and the page depends on every file under the prefix.
            let json = &html[html.find('{').unwrap()..html.find("</script>").unwrap()];
            let map: serde_json::Value = serde_json::from_str(json).expect("valid JSON");
            assert_eq!(map["imports"].as_object().unwrap().len(), 8);
            assert_eq!(out.files["index.html"].references.len(), 4);
        }
    }

    #[test]
    fn import_map_keys_of_their_own_win_over_an_expansion() {
        // A browser maps a specifier by its own key, else by the longest
        // prefix: an expansion never writes a second entry for it, and a
        // prefix all of whose files have their own is left as written.
        let page = r#"<script type=importmap>{"imports": {
"lib/a.js": "./other/a.js", "lib/": "./lib/", "lib/sub/": "./other/",
"all/a.js": "./lib/a.js", "all/b.js": "./lib/b.js", "all/sub/c.js": "./lib/sub/c.js", "all/": "./lib/"},
"scopes": {"/s/": {"lib/": "./lib/"}}}</script>"#;
        let with_page = |page| {
            run(&input(&[
                ("lib/a.js", "export {}"),
                ("lib/b.js", "export {}"),
                ("lib/sub/c.js", "export {}"),
                ("other/a.js", "export {}"),
                ("index.html", page),
            ]))
        };
        let out = with_page(page);
        let m = out.manifest();
        let html = text(&out, "index.html");
        let (a, b, c, o) = (
            &m["lib/a.js"],
            &m["lib/b.js"],
            &m["lib/sub/c.js"],
            &m["other/a.js"],
        );
        assert_eq!(
            html,
            format!(
                r#"<script type=importmap>{{"imports": {{
"lib/a.js": "./{o}", "lib/b.js": "./{b}", "lib/sub/a.js": "./{o}",
"all/a.js": "./{a}", "all/b.js": "./{b}", "all/sub/c.js": "./{c}", "all/": "./lib/"}},
"scopes": {{"/s/": {{"lib/a.js": "./{a}", "lib/b.js": "./{b}", "lib/sub/c.js": "./{c}"}}}}}}</script>"#
            )
        );
        let json = &html[html.find('{').unwrap()..html.find("</script>").unwrap()];
        serde_json::from_str::<serde_json::Value>(json).expect("valid JSON");

        // URL-like keys are compared by the URL they name, however spelt
        // (the page is at /static/index.html, the CDN serves /static/): an
        // expansion written after `/static/lib/a.js` would otherwise take
        // its specifier, and `lib/sub/` is the CDN key's, the longer prefix.
        let page = r#"<script type=importmap>{"imports": {
"/static/lib/a.js": "./other/a.js", "https://cdn.example.com/static/lib/sub/": "./other/",
"./lib/": "./lib/"}}</script>"#;
        let out = with_page(page);
        let m = out.manifest();
        assert_eq!(
            text(&out, "index.html"),
            format!(
                r#"<script type=importmap>{{"imports": {{
"/static/lib/a.js": "./{o}", "https://cdn.example.com/static/lib/sub/a.js": "./{o}",
"./lib/b.js": "./{b}"}}}}</script>"#,
                o = m["other/a.js"],
                b = m["lib/b.js"],
            )
        );
    }

    #[test]
    fn an_import_map_prefix_naming_the_pages_own_directory() {
        // The page is under the prefix too: it names itself, a cycle named
        // as a group like any other.
        let page = "<script type=importmap>{\"imports\": {\"app/\": \"./\"}}</script>";
        let out = run(&input(&[("a.js", "export {}"), ("index.html", page)]));
        let m = out.manifest();
        assert_ne!(m["index.html"], "index.html");
        assert_eq!(
            text(&out, "index.html"),
            format!(
                "<script type=importmap>{{\"imports\": {{\"app/a.js\": \"./{}\", \
                 \"app/index.html\": \"./{}\"}}}}</script>",
                m["a.js"], m["index.html"]
            )
        );
        assert_eq!(
            out,
            run(&input(&[("a.js", "export {}"), ("index.html", page)]))
        );
    }

    #[test]
    fn an_import_map_scope_naming_a_module_follows_it() {
        let page = "<script type=importmap>{\"scopes\": {\"./js/app.js\": {\"x\": \"./js/x.js\"}, \
                    \"./js/\": {}, \"https://x.org/a.js\": {}}}</script>";
        let out = run(&input(&[
            ("js/app.js", "import 'x';"),
            ("js/x.js", "export {}"),
            ("index.html", page),
        ]));
        let m = out.manifest();
        assert_eq!(
            text(&out, "index.html"),
            format!(
                "<script type=importmap>{{\"scopes\": {{\"./{}\": {{\"x\": \"./{}\"}}, \
                 \"./js/\": {{}}, \"https://x.org/a.js\": {{}}}}}}</script>",
                m["js/app.js"], m["js/x.js"]
            )
        );
    }

    #[test]
    fn import_map_prefixes_that_cannot_be_expanded() {
        let page = "<script type=importmap>{\"imports\": {\n\
                    \"none/\": \"./none/\",\n\
                    \"q/\": \"./lib/?v=1/\", \"up/\": \"../\",\n\
                    \"ok/\": \"./lib/\", \"gone/\": \"./gone/\", \"far/\": \"//cdn.example.org/x/\"}}</script>";
        let mut inp = input(&[("lib/a.js", "export {}"), ("index.html", page)]);
        let errs = errors(&inp);
        assert_eq!(errs.len(), 4, "{errs:#?}");
        assert!(errs[0].starts_with("index.html:2:11: import map prefix \"none/\" names \"none/\", under which the tree has no file"), "{errs:#?}");
        assert!(errs[1].starts_with("index.html:3:8: import map prefix \"q/\" cannot be expanded: URL prefix \"./lib/?v=1/\" has a query"), "{errs:#?}");
        assert!(errs[2].starts_with("index.html:3:30: import map prefix \"up/\" cannot be expanded: path \"../\" escapes"), "{errs:#?}");
        assert!(
            errs[3].starts_with("index.html:4:28: import map prefix \"gone/\" names"),
            "{errs:#?}"
        );
        // A prefix allowed to be missing is left as written.
        inp.allow_missing = globs(&["none/", "gone/"]);
        assert_eq!(errors(&inp).len(), 2);
    }

    #[test]
    fn integrity_must_match_the_file_in_the_tree() {
        let inp = input(&[
            ("a.js", "1"),
            (
                "page.html",
                "<script src=a.js integrity=\"sha256-AAAAL3z2vDgxUt0W3dWQOrprscmda2Y5pLsLg4GF+pI=\"></script>\n\
                 <script src=a.js integrity=\"md5-whatever\"></script>",
            ),
        ]);
        assert_eq!(
            errors(&inp),
            ["page.html:1:13: integrity \"sha256-AAAAL3z2vDgxUt0W3dWQOrprscmda2Y5pLsLg4GF+pI=\" \
              does not match \"a.js\" as it is in the tree; fix or remove it \
              (it is kept up to date with the published bytes) (reference \"a.js\")"]
        );
        // So must an import map's, at its key.
        let inp = input(&[
            ("a.js", "1"),
            (
                "page.html",
                "<script type=importmap>{\"integrity\": {\n  \"./a.js\": \"sha384-AAAA\", \
                 \"https://x.org/a.js\": \"sha384-AAAA\", \"a.js\": 3}}</script>",
            ),
        ]);
        assert_eq!(
            errors(&inp),
            [
                "page.html:2:4: integrity \"sha384-AAAA\" does not match \"a.js\" as it is in \
              the tree; fix or remove it (it is kept up to date with the published bytes) \
              (reference \"./a.js\")"
            ]
        );
    }

    #[test]
    fn integrity_inside_a_reference_cycle() {
        // A page whose script refers back to it: the script's bytes are
        // known once the group is named, then the page's attribute.
        let js = "new URL('./page.html', import.meta.url);";
        let page = format!(
            "<script src=a.js integrity={}></script>",
            sri::integrity(js.as_bytes())
        );
        let out = run(&input(&[("a.js", js), ("page.html", &page)]));
        let a = &out.files["a.js"];
        assert_ne!(out.bytes_of(a), js.as_bytes());
        assert!(text(&out, "page.html").contains(&sri::integrity(out.bytes_of(a))));
    }

    #[test]
    fn names() {
        let h = "0123456789abcdef0123456789abcdef";
        for (p, expected) in [
            ("css/site.css", "css/site.0123456789ab.css"),
            ("app.min.js", "app.min.0123456789ab.js"),
            ("site.css.map", "site.css.0123456789ab.map"),
            ("LICENSE", "LICENSE.0123456789ab"),
            ("d.v1/.htaccess", "d.v1/.htaccess.0123456789ab"),
        ] {
            assert_eq!(hashed_name(p, h, 12), expected);
        }
        assert_eq!(hashed_name("a.js", h, 16), "a.0123456789abcdef.js");
    }

    #[test]
    fn special_names_are_encoded() {
        let out = run(&input(&[
            ("img/a b.png", "x"),
            ("a.css", "a{b:url(img/a%20b.png)} c{d:url('img/a b.png')}"),
            ("a.html", "<img src='img/a%20b.png?x=1&amp;y=2'>"),
        ]));
        let n = out.files["img/a b.png"]
            .name
            .replace("img/", "")
            .replace(' ', "%20");
        assert_eq!(
            text(&out, "a.css"),
            format!("a{{b:url(img/{n})}} c{{d:url('img/{n}')}}")
        );
        assert_eq!(
            text(&out, "a.html"),
            format!("<img src='img/{n}?x=1&amp;y=2'>")
        );
    }

    #[test]
    fn bad_input() {
        let mut inp = input(&[("a.css", "")]);
        inp.hash_len = 8;
        assert_eq!(
            errors(&inp),
            vec![":0:0: hash_len must be between 12 and 64, got 8 (reference \"\")"]
        );
        let mut inp = input(&[]);
        inp.files.insert("b.css".into(), b"a{}\nb\xff".to_vec());
        inp.files.insert("c.png".into(), b"\xff\xfe".to_vec());
        assert_eq!(
            errors(&inp),
            vec!["b.css:2:2: file is not valid UTF-8 (reference \"\")"]
        );
    }
}
