//! Edits: how a file's final bytes are made from its bytes in the tree.
//! A rewritten file is kept as its list of [`Edit`]s (never as a second
//! copy of its bytes) and [`apply`]ed again when it is written. This room
//! also turns the references of a file into those edits ([`edits_with`]),
//! replacing only the trailing path segments that name the renamed file
//! ([`new_url`]) and re-encoding them for the place they were written in.
//!
//! Pure text: it knows nothing of the graph, and does no I/O.

use crate::assets::refs::{encode_for, Reference};
use crate::assets::url::{percent_encode_segment, split_suffix};
use std::ops::Range;

/// A resolved reference to a file of the tree.
#[doc(hidden)] // public for the fuzz targets only
pub struct Edge {
    /// The reference, as the file's scanner found it.
    pub r: Reference,
    /// Index into the `names` given to [`rewrite`].
    pub target: usize,
}

/// One replacement in a file's text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edit {
    /// The bytes replaced, as a range of the file's bytes in the tree.
    pub range: Range<usize>,
    /// What they are replaced with.
    pub text: String,
}

/// `bytes` with `edits` (in order, none overlapping another, as made by
/// [`fingerprint`](super::fingerprint)) applied.
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
pub(super) fn edits_with<'e>(
    text: &str,
    edges: impl IntoIterator<Item = &'e Edge>,
    names: &[Option<String>],
    tails: &[usize],
    mut more: Vec<(Range<usize>, String)>,
) -> Vec<Edit> {
    let mut order: Vec<&Edge> = edges
        .into_iter()
        .filter(|e| names[e.target].is_some())
        .collect();
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
pub(super) fn new_url(value: &str, final_name: &str, tail: usize) -> String {
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
