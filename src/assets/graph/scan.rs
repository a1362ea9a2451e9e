//! Scanning: every text file of the tree is read by the scanner of its
//! syntax (CSS, JS, HTML and SVG, web app manifests, source maps), and
//! each reference it finds is resolved against the tree, giving the edges
//! of the graph ([`Node`]). Files are scanned in parallel, each on its own:
//! a scan reads only its file and the tree's paths (and, for an integrity
//! attribute, the digests of the file it covers), so it is pure, and the
//! graph never depends on the thread count.
//!
//! It decides which references are edges; it never renames a file.

use crate::assets::css::css_references;
use crate::assets::graph::edit::Edge;
use crate::assets::graph::import_map::{self, Expansion};
use crate::assets::graph::types::{allowed_missing, extension, AssetError, Input, Opaque};
use crate::assets::html::html_scan;
use crate::assets::js::js_scan;
use crate::assets::json::{source_map_sources, web_manifest_references, ImportMapPrefix};
use crate::assets::refs::{fill_positions, Integrity, RefKind, Reference};
use crate::assets::sri;
use crate::assets::url::{
    is_absolute, is_bare_specifier, is_path_relative, resolve, resolve_dir, split_suffix, Target,
};
use crate::digest::Digest;
use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;

/// A file's bytes, or its digests alone.
#[derive(Clone, Copy)]
enum Content<'a> {
    Bytes(&'a [u8]),
    Opaque(&'a Opaque),
}

/// One file of the tree as the graph sees it: its references resolved.
pub(super) struct Node<'a> {
    /// Its logical path.
    pub(super) path: &'a str,
    /// The file's bytes (empty for an opaque one).
    pub(super) bytes: &'a [u8],
    /// Its size and digests, for a file whose bytes are not at hand.
    pub(super) opaque: Option<&'a Opaque>,
    /// Source text, for scanned (rewritable) files only.
    pub(super) text: Option<&'a str>,
    /// The references naming a file of the tree, in source order.
    pub(super) edges: Vec<Edge>,
    /// Sorted, deduplicated edge targets.
    pub(super) adj: Vec<usize>,
    /// Keeps its name ([`Input::keep`], or an entry).
    pub(super) kept: bool,
    /// An entry file ([`Input::entries`]).
    pub(super) entry: bool,
    /// `integrity` attributes that hold the digest of their file's bytes
    /// in the tree: (value range, index into `edges` of the reference
    /// they cover). Brought up to date when that file's bytes change.
    pub(super) sri: Vec<(Range<usize>, usize)>,
    /// SHA-256 of `bytes` when they are final already (nothing to
    /// rewrite), computed during the parallel scan.
    pub(super) digest: Option<Digest>,
    /// Problems found scanning it (moved out after the scan).
    errors: Vec<AssetError>,
    /// What it is worth telling about it, short of an error (moved out
    /// after the scan).
    warnings: Vec<AssetError>,
    /// Files a `<link rel=manifest>` of this page names: web app
    /// manifests, scanned as such whatever their extension.
    manifest_links: Vec<usize>,
    /// Import map prefix entries naming a directory of the tree, each
    /// replaced by one entry per file under it.
    pub(super) expansions: Vec<Expansion>,
}

/// The nodes of the graph, every problem found, and the warnings.
pub(super) type Scanned<'a> = (Vec<Node<'a>>, Vec<AssetError>, Vec<AssetError>);

/// Scans every file of `input` on `threads` threads: the nodes of the
/// graph, in path order (an edge's target is an index into them), every
/// problem found, and what is worth a warning.
pub(super) fn scan_tree(input: &Input, threads: usize) -> Scanned<'_> {
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
    let mut warnings = Vec::new();
    for node in &mut nodes {
        errors.append(&mut node.errors);
        warnings.append(&mut node.warnings);
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
    (nodes, errors, warnings)
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
        kept: input.keep.contains(path) || input.entries.contains(path),
        entry: input.entries.contains(path),
        sri: Vec::new(),
        digest: None,
        manifest_links: Vec::new(),
        expansions: Vec::new(),
        errors: Vec::new(),
        warnings: Vec::new(),
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

/// The scanner a file is read with.
#[derive(Clone, Copy)]
enum Syntax {
    Css,
    Js,
    Html,
    WebManifest,
    SourceMap,
}

/// What a file's scanner found, whatever its syntax.
#[derive(Default)]
struct Found {
    /// Every reference, in source order.
    refs: Vec<Reference>,
    /// Integrity values covering a reference (HTML: attributes and import
    /// map entries).
    integrity: Vec<Integrity>,
    /// The ranges of the references a `<link rel=manifest>` makes.
    manifests: Vec<Range<usize>>,
    /// Import map prefix entries.
    prefixes: Vec<ImportMapPrefix>,
    /// The sorted keys of each specifier map holding a prefix entry.
    map_keys: Vec<Vec<String>>,
    /// The page's `<base href>`.
    base: Option<Reference>,
    /// A source map's `sourceRoot`.
    source_root: Option<Reference>,
    /// A script written as a module ([`crate::assets::js::JsScan::module`]).
    module: bool,
}

impl Syntax {
    /// Scans `text` with the scanner of this syntax.
    fn scan(self, text: &str) -> Found {
        match self {
            Syntax::Css => Found {
                refs: css_references(text),
                ..Found::default()
            },
            Syntax::Js => {
                let scan = js_scan(text);
                Found {
                    refs: scan.refs,
                    module: scan.module,
                    ..Found::default()
                }
            }
            Syntax::WebManifest => Found {
                refs: web_manifest_references(text),
                ..Found::default()
            },
            Syntax::SourceMap => {
                let scan = source_map_sources(text);
                Found {
                    refs: scan.sources,
                    source_root: scan.root,
                    ..Found::default()
                }
            }
            Syntax::Html => {
                let scan = html_scan(text);
                Found {
                    refs: scan.refs,
                    integrity: scan.integrity,
                    manifests: scan.manifests,
                    prefixes: scan.import_map_prefixes,
                    map_keys: scan.import_map_keys,
                    base: scan.base,
                    source_root: None,
                    module: false,
                }
            }
        }
    }
}

/// Scans `node`'s text as `syntax` and resolves what it finds: its edges,
/// import map expansions and integrity attributes, or errors.
fn scan_references<'a>(
    input: &Input,
    node: &mut Node<'a>,
    syntax: Syntax,
    index: &BTreeMap<&str, usize>,
    files: &[(&str, Content)],
    errors: &mut Vec<AssetError>,
) {
    let path = node.path;
    let text = match utf8(path, node.bytes) {
        Ok(text) => text,
        Err(e) => {
            errors.push(e);
            return;
        }
    };
    node.text = Some(text);
    let found = syntax.scan(text);
    let from = match resolving_from(input, path, &found) {
        Ok(from) => from,
        Err(e) => {
            errors.push(e);
            return;
        }
    };
    let from = from.as_deref();
    let place = Place {
        input,
        path,
        from,
        syntax,
        module: found.module,
    };
    // A prefix value names a directory: reported here, not as a reference.
    let prefix_values: BTreeSet<usize> = found.prefixes.iter().map(|p| p.value.start).collect();
    for p in found.prefixes {
        let Ok(at) = found
            .refs
            .binary_search_by_key(&p.value.start, |r| r.range.start)
        else {
            continue; // unreachable: the value is one of the references
        };
        let keys = found.map_keys.get(p.keys).map_or(&[][..], Vec::as_slice);
        match import_map::expand(input, path, from, &found.refs[at], p, keys, index) {
            Ok(Some(expansion)) => node.expansions.push(expansion),
            Ok(None) => {}
            Err(e) => errors.push(e),
        }
    }
    for r in found.refs {
        if prefix_values.contains(&r.range.start) {
            continue;
        }
        match resolve_reference(&place, &r, index, &mut node.warnings) {
            Ok(Some(t)) => {
                if found
                    .manifests
                    .binary_search_by_key(&r.range.start, |m| m.start)
                    .is_ok()
                {
                    node.manifest_links.push(t);
                }
                node.edges.push(Edge { r, target: t })
            }
            Ok(None) => {}
            Err(e) => errors.push(e),
        }
    }
    check_integrity(node, found.integrity, files, errors);
}

/// `bytes` as text, or an error at the first byte that is not UTF-8.
fn utf8<'a>(path: &str, bytes: &'a [u8]) -> Result<&'a str, AssetError> {
    std::str::from_utf8(bytes).map_err(|e| {
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
        AssetError::at(path, &at[0], "file is not valid UTF-8".to_string())
    })
}

/// The file the URLs of the file at `path` resolve against: itself, or a
/// file in the directory its `<base href>` (a page) or its `sourceRoot` (a
/// source map) names; `None` when that is outside the tree, where every
/// URL but an absolute one then points. An error for a `<base href>` that
/// cannot be resolved.
fn resolving_from(input: &Input, path: &str, found: &Found) -> Result<Option<String>, AssetError> {
    let mut from = Some(path.to_string());
    if let Some(b) = &found.base {
        let url = split_suffix(&b.value).0;
        let dir = &url[..url.rfind('/').map_or(0, |i| i + 1)];
        match resolve_dir(dir, path, &input.url) {
            Ok(Some(dir)) => from = Some(format!("{dir}_")),
            Ok(None) => from = None,
            Err(msg) => return Err(AssetError::at(path, b, format!("<base href> {msg}"))),
        }
    }
    // A source map's relative sources are below its `sourceRoot`, a
    // directory URL with or without the final `/`. A root outside the tree
    // (or unresolvable) leaves them as written: sources are optional.
    if let Some(root) = &found.source_root {
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
    Ok(from)
}

/// Where a file's references are being resolved: the file, what its
/// URLs resolve against, its syntax, and whether it is a module.
struct Place<'a> {
    input: &'a Input,
    /// The file's logical path.
    path: &'a str,
    /// The file its URLs resolve against ([`resolving_from`]).
    from: Option<&'a str>,
    syntax: Syntax,
    /// A script written as a module.
    module: bool,
}

/// The file of the tree that reference `r` of the file at `at` names, if
/// it is an edge: none for a reference outside the tree, a bare
/// specifier, or a missing file it may name (a missing source map is a
/// warning); an error for one that cannot be rewritten safely.
fn resolve_reference(
    at: &Place,
    r: &Reference,
    index: &BTreeMap<&str, usize>,
    warnings: &mut Vec<AssetError>,
) -> Result<Option<usize>, AssetError> {
    let (input, path) = (at.input, at.path);
    if r.kind.is_js_specifier() && is_bare_specifier(&r.value) {
        return Ok(None);
    }
    let worker = matches!(r.kind, RefKind::JsWorker | RefKind::JsServiceWorker);
    // A worker's URL is resolved against the page that runs the
    // script, which a script file cannot know (an inline script's page
    // is its own file): a relative one is only a guess.
    let guess = worker && matches!(at.syntax, Syntax::Js) && is_path_relative(&r.value);
    // A source map names the sources it was made from, which are
    // rarely published: only one in the tree is a reference.
    let optional = guess || r.kind == RefKind::SourceMapSource;
    let resolved = match at.from {
        Some(from) => resolve(&r.value, from, &input.url),
        None if !is_absolute(&r.value) => Ok(Target::External),
        None => resolve(&r.value, path, &input.url),
    };
    let target = match resolved {
        Err(_) if optional => return Ok(None),
        Err(msg) => return Err(AssetError::at(path, r, msg)),
        Ok(Target::External) => return Ok(None),
        Ok(Target::Local { path: target, .. }) => target,
    };
    let stays = |t: &str| input.keep.contains(t) || input.entries.contains(t);
    match index.get(target.as_str()) {
        Some(_) if guess => Err(AssetError::at(path, r, relative_worker(at, r, &target))),
        Some(_) if r.kind == RefKind::JsServiceWorker && !stays(&target) => Err(AssetError::at(
            path,
            r,
            format!(
                "a service worker's URL must stay the same from one release to the \
                 next (the browser checks that URL for updates), so {target:?} \
                 cannot be renamed; list it in `[site] entries` (it is then served \
                 per environment at /{target}, and updated every release)"
            ),
        )),
        Some(&t) => Ok(Some(t)),
        // A worker: most likely a route of the app, not an asset.
        None if optional => Ok(None),
        None if allowed_missing(&input.allow_missing, &r.value, &target) => Ok(None),
        // Browsers fetch source maps only with the developer tools open.
        None if r.kind == RefKind::SourceMap => {
            warnings.push(AssetError::at(
                path,
                r,
                format!(
                    "source map {target:?} does not exist; the reference is left as \
                     written (browsers fetch maps only with the developer tools open)"
                ),
            ));
            Ok(None)
        }
        None if target == crate::assets::dirs::MODULE => Err(AssetError::at(
            path,
            r,
            format!(
                "referenced file {target:?} does not exist: verbatim makes it (each hashed \
                 directory's URL) only when `assets.hash_dirs` lists a directory"
            ),
        )),
        None => Err(AssetError::at(
            path,
            r,
            format!("referenced file {target:?} does not exist"),
        )),
    }
}

/// Why a relative worker URL in a script file cannot be rewritten, and
/// what to write instead: advice that runs in the kind of script it is.
fn relative_worker(at: &Place, r: &Reference, target: &str) -> String {
    let why = format!(
        "a worker's URL is resolved against the page's URL, not this script's, \
         so whether it names {target:?} is unknown and it cannot be rewritten"
    );
    let rooted = format!("{}{target}", at.input.url.public_prefix);
    if r.kind == RefKind::JsServiceWorker {
        return format!(
            "{why}; a service worker's URL must besides stay the same every release: \
             list {target:?} in `[site] entries` and register it from the site's root, \
             `register('/{target}')`"
        );
    }
    if at.module {
        format!(
            "{why}; write `new URL({:?}, import.meta.url)` or a path from the root, {rooted:?}",
            r.value
        )
    } else {
        format!(
            "{why}; this is a classic script (no `import.meta`): write the path from the root, \
             {rooted:?}"
        )
    }
}

/// Keeps in `node.sri` each of `integrity` that covers an edge of `node`
/// and holds the digest of that file's bytes in the tree; one holding
/// another digest is an error.
fn check_integrity(
    node: &mut Node,
    integrity: Vec<Integrity>,
    files: &[(&str, Content)],
    errors: &mut Vec<AssetError>,
) {
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
                node.path,
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
