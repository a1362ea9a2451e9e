//! The fingerprinting pipeline: scan every text asset for references,
//! resolve them against the tree, order files leaves-first with Tarjan's SCC
//! algorithm, and give every file a name derived from the hash of its final
//! (rewritten) bytes. A change in one file therefore renames exactly the files
//! that transitively reference it, and nothing else. Files that keep their
//! names ([`crate::assets::keep`]) are scanned and rewritten all the same.
//!
//! This file holds the pipeline itself ([`fingerprint`]); each step has a
//! room of its own, each using only the rooms listed before it:
//!
//! - `edit`: an [`Edit`] of a file's text, and the edits that rewrite
//!   its references ([`rewrite`]);
//! - `types`: what goes in and comes out ([`Input`], [`Output`],
//!   [`AssetError`]);
//! - `import_map`: import map prefix entries expanded into one entry per
//!   file;
//! - `scan`: every file scanned and its references resolved: the graph;
//! - `naming`: a file's final bytes, and the name made of their hash
//!   ([`hashed_name`]);
//! - `hash_dirs`: directories named as a whole ([`dir_hash`]);
//! - `scc`: the order of the walk, and reference cycles;
//! - `unreached`: files no reference reaches, which only code could load
//!   at run time (a warning per directory).

mod edit;
mod hash_dirs;
mod import_map;
mod naming;
mod scan;
mod scc;
mod types;
mod unreached;

pub use edit::{apply, apply_to, rewrite, Edge, Edit};
pub use hash_dirs::{dir_hash, hashed_dir_name, hashed_dir_of};
pub use naming::{hashed_name, is_content_named};
pub use types::{reads_text, AssetError, Input, Opaque, OutFile, Output, MIN_HASH_LEN};

use hash_dirs::HashDirs;
use naming::Finals;
use scan::Node;
use std::collections::BTreeMap;

/// Fingerprints the whole tree. Either every file gets its final name, or all
/// errors of the build are returned (sorted by file and position).
pub fn fingerprint(input: &Input) -> Result<Output, Vec<AssetError>> {
    fingerprint_with(input, crate::par::threads())
}

/// [`fingerprint`] scanning on `threads` threads; the result never depends
/// on the thread count.
fn fingerprint_with(input: &Input, threads: usize) -> Result<Output, Vec<AssetError>> {
    check_hash_len(input)?;
    let (nodes, mut errors, mut warnings) = scan::scan_tree(input, threads);

    // Each hashed directory is one vertex of the graph: its name depends on
    // all its files, so a file referring into it comes after all of them.
    let dirs = HashDirs::new(input, &nodes, &mut errors);
    let mut done = Finals::new(&nodes);
    done.public_prefix = format!("{}/", input.url.public_prefix.trim_end_matches('/'));
    done.tails = dirs.tails(input, &nodes);
    let adj = dirs.contracted(&nodes);
    let sccs = scc::tarjan(&adj);
    // Level by level, leaves first: a file's final bytes depend only on
    // files of lower levels, so the single files of a level (outside
    // cycles and hashed directories: nearly all of a tree) are made in
    // parallel.
    let levels = scc::levels(&sccs, &adj);
    drop(adj);
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
            scc::walk_scc(input, scc, &nodes, &dirs, &mut done, &mut errors);
        }
    }

    if !errors.is_empty() {
        errors.sort();
        errors.dedup();
        return Err(errors);
    }
    warnings.extend(unreached::warnings(input, &nodes, &dirs));
    warnings.sort();
    warnings.dedup();
    let files = out_files(&nodes, done);
    let dirs = dir_names(input, &nodes, &dirs, &files);
    Ok(Output {
        files,
        dirs,
        warnings,
    })
}

/// An error unless [`Input::hash_len`] is in `MIN_HASH_LEN..=64`.
fn check_hash_len(input: &Input) -> Result<(), Vec<AssetError>> {
    if (MIN_HASH_LEN..=64).contains(&input.hash_len) {
        return Ok(());
    }
    Err(vec![AssetError {
        file: String::new(),
        line: 0,
        column: 0,
        reference: String::new(),
        message: format!(
            "hash_len must be between {MIN_HASH_LEN} and 64, got {}",
            input.hash_len
        ),
    }])
}

/// Every file, by its logical path, once all are `done`.
fn out_files(nodes: &[Node], done: Finals) -> BTreeMap<String, OutFile> {
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
                entry: node.entry,
            },
        );
    }
    files
}

/// Each hashed directory holding a file, to its final name, read off the
/// final name of its first file.
fn dir_names(
    input: &Input,
    nodes: &[Node],
    dirs: &HashDirs,
    files: &BTreeMap<String, OutFile>,
) -> BTreeMap<String, String> {
    dirs.members
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
        .collect()
}

#[cfg(test)]
mod tests;
