//! Files no reference reaches. In a site (a tree holding pages, or one
//! `[site]` is set for), a file that no page, stylesheet or script names,
//! and that is neither a page nor an entry, can only be loaded by code
//! building its URL at run time (MathJax's fonts, TinyMCE's plugins,
//! Monaco's `vs/`, sql.js's `.wasm`). Renamed, it is then a 404 in the
//! browser and nothing else tells: so one warning per directory names the
//! line to add, `assets.hash_dirs` for the directory holding the loader
//! (the nearest one holding a file something references), or `[site]
//! entries` for files outside any such directory (fetched by a fixed URL).
//!
//! A Django tree (no pages: its templates live in the app) stays quiet.
//! Pure: it reads the graph.

use std::collections::{BTreeMap, BTreeSet};

use crate::assets::graph::hash_dirs::HashDirs;
use crate::assets::graph::scan::Node;
use crate::assets::graph::types::{extension, AssetError, Input};

/// What to add for a group of unreached files.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Advice {
    /// `assets.hash_dirs`: this directory.
    HashDir(String),
    /// `[site] entries`: this glob.
    Entries(String),
}

/// One warning per directory of files only code could reach; none unless
/// the tree is a site ([`Input::site`], or a page in the tree).
pub(super) fn warnings(input: &Input, nodes: &[Node], dirs: &HashDirs) -> Vec<AssetError> {
    let is_page = |p: &str| {
        extension(p)
            .is_some_and(|e| e.eq_ignore_ascii_case("html") || e.eq_ignore_ascii_case("htm"))
    };
    if !input.site && !nodes.iter().any(|n| is_page(n.path)) {
        return Vec::new();
    }
    let mut referenced = vec![false; nodes.len()];
    for n in nodes {
        for &t in &n.adj {
            referenced[t] = true;
        }
    }
    // Every directory holding (at any depth) a file something references.
    let mut holds_referenced: BTreeSet<&str> = BTreeSet::new();
    for (n, _) in nodes.iter().zip(&referenced).filter(|(_, r)| **r) {
        let mut p = n.path;
        while let Some(i) = p.rfind('/') {
            p = &p[..i];
            if !holds_referenced.insert(p) {
                break;
            }
        }
    }
    let mut groups: BTreeMap<Advice, (usize, &str)> = BTreeMap::new();
    for (v, n) in nodes.iter().enumerate() {
        let quiet = referenced[v]
            || n.kept
            || dirs.dir_of[v].is_some()
            || is_page(n.path)
            || n.path == crate::assets::dirs::MODULE
            || extension(n.path).is_some_and(|e| e.eq_ignore_ascii_case("map"));
        if quiet {
            continue;
        }
        let advice = advice(n.path, &holds_referenced);
        let group = groups.entry(advice).or_insert((0, n.path));
        group.0 += 1;
    }
    groups
        .into_iter()
        .map(|(advice, (count, example))| warning(advice, count, example))
        .collect()
}

/// The line that makes a file at `path` load: its nearest directory that
/// holds a referenced file, hashed whole; else, an entry.
fn advice(path: &str, holds_referenced: &BTreeSet<&str>) -> Advice {
    let mut p = path;
    while let Some(i) = p.rfind('/') {
        p = &p[..i];
        if holds_referenced.contains(p) {
            return Advice::HashDir(p.to_owned());
        }
    }
    match path.split_once('/') {
        Some((top, _)) => Advice::Entries(format!("{top}/**")),
        None => Advice::Entries(path.to_owned()),
    }
}

fn warning(advice: Advice, count: usize, example: &str) -> AssetError {
    let files = match count {
        1 => format!("{example:?} is"),
        n => format!("{n} files (e.g. {example:?}) are"),
    };
    let (file, message) = match advice {
        Advice::HashDir(dir) => (
            dir.clone(),
            format!(
                "{files} under {dir:?} but named by no page, stylesheet or script; if code \
                 there loads them at run time (by URLs built from its directory), publish the \
                 directory whole: `hash_dirs = [{dir:?}]` in [assets] (page code finds its \
                 hashed name in verbatim-dirs.js); else leave them out with `assets.exclude`"
            ),
        ),
        Advice::Entries(glob) => (
            glob.trim_end_matches("/**").to_owned(),
            format!(
                "{files} named by no page, stylesheet or script; if they are fetched at run \
                 time by a URL that must not change, serve them per environment: \
                 `entries = [{glob:?}]` in [site]; else leave them out with `assets.exclude`"
            ),
        ),
    };
    AssetError {
        file,
        line: 0,
        column: 0,
        reference: String::new(),
        message,
    }
}
