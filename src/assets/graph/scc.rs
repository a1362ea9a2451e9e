//! Strongly connected components: the order of the walk. Tarjan's
//! algorithm gives the components leaves first ([`tarjan`]), and
//! [`levels`] groups them so that each level depends only on the levels
//! below it. A component that is not one plain file, a hashed directory
//! or a reference cycle, is made here ([`walk_scc`]): a cycle's members
//! are named after one hash over all of them, and a CSS `@import` cycle,
//! which no browser can load, is an error ([`css_import_cycle`]).

use crate::assets::graph::hash_dirs::HashDirs;
use crate::assets::graph::naming::{hashed_name, Finals};
use crate::assets::graph::scan::Node;
use crate::assets::graph::types::{AssetError, Input};
use crate::assets::refs::RefKind;
use crate::digest::Digest;
use sha2::{Digest as _, Sha256};
use std::collections::{BTreeMap, BTreeSet};

/// Makes the final bytes and names of one strongly connected component
/// that is not a single file: a hashed directory, or a reference cycle.
pub(super) fn walk_scc(
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
pub(super) fn tarjan(adj: &[Vec<usize>]) -> Vec<Vec<usize>> {
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

/// The components `sccs` of the graph `adj` (as [`tarjan`] gives them),
/// level by level, leaves first: a component's level is one more than the
/// highest level of the components it references, so a file's final bytes
/// depend only on files of lower levels.
pub(super) fn levels(sccs: &[Vec<usize>], adj: &[Vec<usize>]) -> Vec<Vec<usize>> {
    let mut scc_of = vec![0; adj.len()];
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
    levels
}
