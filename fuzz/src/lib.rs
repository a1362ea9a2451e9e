//! The properties the fuzz targets check, beyond "does not panic". Each
//! target in `fuzz_targets/` is a thin wrapper around one function here.
//!
//! A failed property panics with the input and what was expected, so
//! libFuzzer records it as a crash with a reproducer, like any other panic.

use std::sync::OnceLock;

use verbatim::assets::graph::{rewrite, Edge};
use verbatim::assets::refs::{RefKind, Reference};
use verbatim::assets::url::{is_bare_specifier, resolve, Target, UrlOptions};

pub mod documents;
pub mod unpack;

/// The linear-time check scans the input repeated to at least this many
/// bytes, so that a scanner that is not linear in its input overruns
/// libFuzzer's `-timeout` (see `cargo xtask fuzz` for the figures).
pub const LINEAR_CHECK_BYTES: usize = 4 << 20;

/// The linear-time check costs about half a second, so it runs on one
/// input in this many, chosen by a hash of the input so that a reproducer
/// reproduces. `VERBATIM_FUZZ_LINEAR=always` (or `never`) overrides.
pub const LINEAR_CHECK_ONE_IN: u64 = 4096;

/// A reference scanner and the logical path its input is scanned as
/// (references resolve against it, as in `assets::graph`).
#[derive(Clone, Copy)]
pub struct Scanner {
    pub scan: fn(&str) -> Vec<Reference>,
    pub path: &'static str,
}

/// Every property of a reference scanner and of the rewriter on `data`:
///
/// - every reference's range lies inside the text, on char boundaries, in
///   source order and not overlapping the previous one, and its line and
///   column agree with an independent count from the start of the text;
/// - rewriting every reference to a file of the tree with the identity
///   mapping (each file keeps its own name) keeps every reference's kind
///   and resolved target, and creates or loses none;
/// - rewriting the rewriter's own output again gives the same bytes;
/// - the scanner finishes on the text repeated to [`LINEAR_CHECK_BYTES`]
///   in time (libFuzzer's `-timeout`), for one input in
///   [`LINEAR_CHECK_ONE_IN`].
pub fn check_scanner(data: &[u8], s: Scanner) {
    let text = String::from_utf8_lossy(data);
    let refs = (s.scan)(&text);
    check_positions(&text, &refs);
    check_identity_rewrite(&text, &refs, s);
    if wants_linear_check(data) {
        check_linear(&text, s);
    }
}

/// Ranges inside the text, on char boundaries, sorted and disjoint; line
/// and column from one independent walk over the text.
pub fn check_positions(text: &str, refs: &[Reference]) {
    let mut prev_end = 0;
    for r in refs {
        let ok = r.range.start <= r.range.end
            && r.range.end <= text.len()
            && text.is_char_boundary(r.range.start)
            && text.is_char_boundary(r.range.end)
            && r.range.start >= prev_end;
        assert!(
            ok,
            "bad range {:?} (text is {} bytes, previous reference ended at {prev_end}): {r:?}\ntext: {text:?}",
            r.range,
            text.len()
        );
        prev_end = r.range.end;
    }
    // Line breaks are `\n`, `\r\n` and a lone `\r`; columns count chars.
    let (mut line, mut column) = (1u32, 1u32);
    let mut chars = text.char_indices().peekable();
    let mut next = refs.iter().peekable();
    loop {
        let at = chars.peek().map_or(text.len(), |&(i, _)| i);
        while let Some(r) = next.next_if(|r| r.range.start == at) {
            assert!(
                (r.line, r.column) == (line, column),
                "reference at byte {at} says line {} column {}, it is at line {line} column {column}: {r:?}\ntext: {text:?}",
                r.line,
                r.column
            );
        }
        let Some((_, c)) = chars.next() else { break };
        let crlf = c == '\r' && chars.peek().is_some_and(|&(_, n)| n == '\n');
        if c == '\n' || (c == '\r' && !crlf) {
            line += 1;
            column = 1;
        } else {
            column += 1;
        }
    }
    assert!(
        next.peek().is_none(),
        "unreached reference: {:?}",
        next.peek()
    );
}

/// How one reference resolves, for comparing a text with its rewrite.
#[derive(Debug, PartialEq, Eq)]
enum Resolved {
    /// A bare JS specifier: resolved by import maps, never rewritten.
    Bare,
    External,
    Error,
    Local {
        path: String,
        suffix: String,
    },
}

fn classify(refs: &[Reference], from: &str) -> Vec<(RefKind, Resolved)> {
    let opts = UrlOptions::default();
    refs.iter()
        .map(|r| {
            let how = if r.kind.is_js_specifier() && is_bare_specifier(&r.value) {
                Resolved::Bare
            } else {
                match resolve(&r.value, from, &opts) {
                    Ok(Target::Local { path, suffix }) => Resolved::Local {
                        path,
                        suffix: as_requested(&suffix),
                    },
                    Ok(Target::External) => Resolved::External,
                    Err(_) => Resolved::Error,
                }
            };
            (r.kind, how)
        })
        .collect()
}

/// A `?query#fragment` compared up to percent-encoding: the rewriter may
/// percent-encode characters that could end the reference in its context
/// (a `*` in a comment, a `,` in a `srcset`), as the URL parser encodes
/// controls and spaces and drops tabs and newlines. Paths are compared
/// exactly, percent-decoded as `resolve` decodes them.
fn as_requested(suffix: &str) -> String {
    let b = suffix.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = (b[i] == b'%')
            .then(|| suffix.get(i + 1..i + 3))
            .flatten()
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match hex {
            Some(v) => {
                out.push(v);
                i += 3;
            }
            None => {
                out.push(b[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).replace(['\t', '\n', '\r'], "")
}

/// What `assets::graph` does when no file changes name: every reference to
/// a file of the tree is re-encoded, the rest is copied.
fn identity_rewrite(text: &str, refs: &[Reference], from: &str) -> String {
    let mut edges = Vec::new();
    let mut names = Vec::new();
    for (r, (_, how)) in refs.iter().zip(classify(refs, from)) {
        if let Resolved::Local { path, .. } = how {
            edges.push(Edge {
                r: r.clone(),
                target: names.len(),
            });
            names.push(Some(path));
        }
    }
    rewrite(text, &edges, &names)
}

fn check_identity_rewrite(text: &str, refs: &[Reference], s: Scanner) {
    let before = classify(refs, s.path);
    let once = identity_rewrite(text, refs, s.path);
    let refs_once = (s.scan)(&once);
    check_positions(&once, &refs_once);
    let after = classify(&refs_once, s.path);
    assert!(
        before == after,
        "the identity rewrite changed the references\ntext:      {text:?}\nrewritten: {once:?}\nbefore: {before:?}\nafter:  {after:?}"
    );
    let twice = identity_rewrite(&once, &refs_once, s.path);
    assert!(
        twice == once,
        "rewriting the rewriter's output with the identity mapping changed it\ntext:      {text:?}\nrewritten: {once:?}\nagain:     {twice:?}"
    );
}

fn wants_linear_check(data: &[u8]) -> bool {
    static MODE: OnceLock<Option<bool>> = OnceLock::new();
    let forced = MODE.get_or_init(|| match std::env::var("VERBATIM_FUZZ_LINEAR").as_deref() {
        Ok("always") => Some(true),
        Ok("never") => Some(false),
        _ => None,
    });
    forced.unwrap_or_else(|| fnv1a(data) % LINEAR_CHECK_ONE_IN == 0)
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The text repeated to at least [`LINEAR_CHECK_BYTES`]: a linear scanner
/// takes well under a second here even instrumented, a quadratic one tens
/// of seconds at least.
fn check_linear(text: &str, s: Scanner) {
    if text.is_empty() {
        return;
    }
    let big = text.repeat(LINEAR_CHECK_BYTES.div_ceil(text.len()));
    let refs = (s.scan)(&big);
    check_positions(&big, &refs);
}
