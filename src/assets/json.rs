//! A small JSON scanner for the JSON the assets hold references in: import
//! maps (inline in a page, [`import_map_scan`]), web app manifests
//! ([`web_manifest_references`]) and source maps ([`source_map_sources`]).
//! It keeps nothing but the URLs it finds, their ranges and the few keys
//! the graph needs, so memory does not grow with the document, and it
//! refuses JSON nested deeper than [`MAX_JSON_DEPTH`] rather than recurse
//! without bound. Malformed JSON yields nothing.
//!
//! It reads text and returns references; it resolves and rewrites nothing.

use crate::assets::refs::{fill_positions, reference, Integrity, RefKind, Reference};
use std::ops::Range;

/// A prefix entry of an import map, `"three/addons/": "./jsm/"`: it maps
/// every specifier starting with its key to a URL under its value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportMapPrefix {
    /// From just inside the key's opening quote to just inside the value's
    /// closing quote: replacing it with `k1": "v1", "k2": "v2` keeps the
    /// JSON valid.
    pub entry: Range<usize>,
    /// The key, decoded; ends with `/`.
    pub key: String,
    /// The range of the value's reference, as in
    /// [`HtmlScan::refs`](crate::assets::html::HtmlScan::refs).
    pub value: Range<usize>,
    /// Index into
    /// [`HtmlScan::import_map_keys`](crate::assets::html::HtmlScan::import_map_keys)
    /// of the keys of the map
    /// holding it: a key longer than this one that a specifier starts
    /// with (or equals) takes that specifier from it.
    pub keys: usize,
}

/// What [`import_map_scan`] finds, ranges relative to the map's text.
#[derive(Default)]
pub(super) struct ImportMapScan {
    /// String values of `imports` and of each scope, the keys of its
    /// `integrity` map and the scopes naming one module, in source order.
    pub(super) refs: Vec<Reference>,
    /// The entries of its `integrity` map.
    pub(super) integrity: Vec<Integrity>,
    /// Its prefix entries.
    pub(super) prefixes: Vec<ImportMapPrefix>,
    /// The sorted keys of each specifier map holding a prefix entry.
    pub(super) keys: Vec<Vec<String>>,
}

/// String values of `imports` and of each `scopes` entry in an import map,
/// and the keys of its `integrity` map, with their values and its prefix
/// entries. Malformed JSON, or JSON nested deeper than
/// [`MAX_JSON_DEPTH`], yields nothing.
pub(super) fn import_map_scan(text: &str) -> ImportMapScan {
    let mut p = Json {
        s: text,
        pos: 0,
        refs: Vec::new(),
        kind: RefKind::ImportMap,
        source_root: None,
        integrity: Vec::new(),
        prefixes: Vec::new(),
        keys: Vec::new(),
    };
    match p.value(Role::Root, 0) {
        Some(()) => ImportMapScan {
            refs: p.refs,
            integrity: p.integrity,
            prefixes: p.prefixes,
            keys: p.keys,
        },
        None => ImportMapScan::default(),
    }
}

/// What a source map (`*.map`, JSON) names: each entry of its `sources`,
/// in source order, positions filled, and its `sourceRoot` unless empty.
/// Malformed JSON yields nothing.
#[derive(Debug, Default)]
pub struct SourceMapScan {
    /// Each string of its `sources`.
    pub sources: Vec<Reference>,
    /// The URL of the directory a relative entry of `sources` is below
    /// (with or without a final `/`), in place of the map's own.
    pub root: Option<Reference>,
}

/// Scans a source map: see [`SourceMapScan`].
pub fn source_map_sources(text: &str) -> SourceMapScan {
    let mut p = Json {
        s: text,
        pos: 0,
        refs: Vec::new(),
        kind: RefKind::SourceMapSource,
        source_root: None,
        integrity: Vec::new(),
        prefixes: Vec::new(),
        keys: Vec::new(),
    };
    if p.value(Role::SourceMap, 0).is_none() {
        return SourceMapScan::default();
    }
    let (mut sources, mut root) = (p.refs, Vec::from_iter(p.source_root));
    fill_positions(text, &mut sources);
    fill_positions(text, &mut root);
    SourceMapScan {
        sources,
        root: root.pop(),
    }
}

/// The `src` of each image of a web app manifest (`icons[]`,
/// `screenshots[]`, `shortcuts[].icons[]`), in source order, positions
/// filled. Malformed JSON yields no references.
pub fn web_manifest_references(text: &str) -> Vec<Reference> {
    let mut p = Json {
        s: text,
        pos: 0,
        refs: Vec::new(),
        kind: RefKind::WebManifest,
        source_root: None,
        integrity: Vec::new(),
        prefixes: Vec::new(),
        keys: Vec::new(),
    };
    let mut refs = match p.value(Role::Manifest, 0) {
        Some(()) => p.refs,
        None => Vec::new(),
    };
    fill_positions(text, &mut refs);
    refs
}

/// Import maps are three levels deep; anything much deeper is not one.
const MAX_JSON_DEPTH: usize = 64;

/// What a JSON value is in an import map, i.e. what its strings mean.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Role {
    Root,
    /// `imports`, or one entry of `scopes`: its string values are URLs.
    Imports,
    /// `integrity` of an import map: its keys are URLs, its string values
    /// integrity metadata.
    Integrity,
    /// `scopes`: each value is an `Imports`.
    Scopes,
    /// A value of an `Imports`: a URL if it is a string.
    Url,
    Other,
    /// The top of a web app manifest.
    Manifest,
    /// `icons` or `screenshots` of a manifest (or `icons` of a shortcut):
    /// each element is an `Image`.
    Images,
    /// One image resource: its `src` is a `Url`.
    Image,
    /// `shortcuts`: each element is a `Shortcut`.
    Shortcuts,
    /// One shortcut: its `icons` are `Images`.
    Shortcut,
    /// The top of a source map.
    SourceMap,
    /// `sources` of a source map: each string element is a `Url`.
    Sources,
    /// `sourceRoot` of a source map.
    SourceRoot,
}

/// A JSON parser that keeps nothing but the URLs it finds, so memory does
/// not grow with the document.
struct Json<'a> {
    s: &'a str,
    pos: usize,
    refs: Vec<Reference>,
    /// The kind of the references found.
    kind: RefKind,
    /// The last non-empty `sourceRoot` (source maps).
    source_root: Option<Reference>,
    /// Entries of an import map's `integrity`.
    integrity: Vec<Integrity>,
    /// Prefix entries of an import map.
    prefixes: Vec<ImportMapPrefix>,
    /// The sorted keys of each specifier map holding a prefix entry.
    keys: Vec<Vec<String>>,
}

impl Json<'_> {
    fn ws(&mut self) {
        let b = self.s.as_bytes();
        while self.pos < b.len() && matches!(b[self.pos], b' ' | b'\t' | b'\n' | b'\r') {
            self.pos += 1;
        }
    }

    fn eat(&mut self, c: u8) -> bool {
        self.ws();
        if self.s.as_bytes().get(self.pos) == Some(&c) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    /// Parses one value; `None` if it is malformed or too deep.
    fn value(&mut self, role: Role, depth: usize) -> Option<()> {
        if depth > MAX_JSON_DEPTH {
            return None;
        }
        self.ws();
        match self.s.as_bytes().get(self.pos)? {
            b'"' => {
                let (value, range) = self.string()?;
                if role == Role::Url {
                    self.refs
                        .push(reference(range, value, self.kind, Some('"')));
                } else if role == Role::SourceRoot {
                    self.source_root =
                        (!value.is_empty()).then(|| reference(range, value, self.kind, Some('"')));
                }
            }
            b'{' => {
                self.pos += 1;
                if self.eat(b'}') {
                    return Some(());
                }
                let first_prefix = self.prefixes.len();
                let mut keys = Vec::new();
                loop {
                    self.ws();
                    let (key, key_range) = self.string()?;
                    if role == Role::Imports {
                        keys.push(key.clone());
                    }
                    // A scope without a trailing `/` matches one URL only:
                    // the module it names.
                    if role == Role::Scopes && !key.ends_with('/') {
                        let r = reference(key_range.clone(), key.clone(), self.kind, Some('"'));
                        self.refs.push(r);
                    }
                    if !self.eat(b':') {
                        return None;
                    }
                    if role == Role::Integrity {
                        self.integrity_entry(key, key_range, depth + 1)?;
                        if self.eat(b',') {
                            continue;
                        }
                        return self.eat(b'}').then_some(());
                    }
                    let inner = match (role, key.as_str()) {
                        (Role::Root, "imports") | (Role::Scopes, _) => Role::Imports,
                        (Role::Root, "scopes") => Role::Scopes,
                        (Role::Root, "integrity") => Role::Integrity,
                        (Role::Imports, _) => Role::Url,
                        (Role::Manifest, "icons" | "screenshots") => Role::Images,
                        (Role::Manifest, "shortcuts") => Role::Shortcuts,
                        (Role::Shortcut, "icons") => Role::Images,
                        (Role::Image, "src") => Role::Url,
                        (Role::SourceMap, "sources") => Role::Sources,
                        (Role::SourceMap, "sourceRoot") => Role::SourceRoot,
                        _ => Role::Other,
                    };
                    let found = self.refs.len();
                    self.value(inner, depth + 1)?;
                    if let (Role::Url, Some(value)) = (inner, self.refs.get(found)) {
                        // Both must end with `/`, or a browser ignores the entry.
                        if key.ends_with('/') && value.value.ends_with('/') {
                            self.prefixes.push(ImportMapPrefix {
                                entry: key_range.start..value.range.end,
                                value: value.range.clone(),
                                key,
                                keys: self.keys.len(),
                            });
                        }
                    }
                    if self.eat(b',') {
                        continue;
                    }
                    if !self.eat(b'}') {
                        return None;
                    }
                    if role == Role::Imports && self.prefixes.len() > first_prefix {
                        keys.sort_unstable();
                        keys.dedup();
                        self.keys.push(keys);
                    }
                    return Some(());
                }
            }
            b'[' => {
                self.pos += 1;
                if self.eat(b']') {
                    return Some(());
                }
                let inner = match role {
                    Role::Images => Role::Image,
                    Role::Shortcuts => Role::Shortcut,
                    Role::Sources => Role::Url,
                    _ => Role::Other,
                };
                loop {
                    self.value(inner, depth + 1)?;
                    if self.eat(b',') {
                        continue;
                    }
                    return self.eat(b']').then_some(());
                }
            }
            _ => {
                let b = self.s.as_bytes();
                let start = self.pos;
                while self.pos < b.len()
                    && (b[self.pos].is_ascii_alphanumeric()
                        || matches!(b[self.pos], b'-' | b'+' | b'.'))
                {
                    self.pos += 1;
                }
                return (self.pos > start).then_some(());
            }
        }
        Some(())
    }

    /// The value of an import map's `integrity` entry whose key (a URL)
    /// has been read: the key is a reference, a string value the integrity
    /// of the file it names.
    fn integrity_entry(
        &mut self,
        key: String,
        key_range: Range<usize>,
        depth: usize,
    ) -> Option<()> {
        self.ws();
        if self.s.as_bytes().get(self.pos) != Some(&b'"') {
            return self.value(Role::Other, depth);
        }
        let (value, range) = self.string()?;
        self.refs
            .push(reference(key_range.clone(), key, self.kind, Some('"')));
        self.integrity.push(Integrity {
            range,
            value,
            of: key_range,
        });
        Some(())
    }

    fn string(&mut self) -> Option<(String, Range<usize>)> {
        if self.s.as_bytes().get(self.pos) != Some(&b'"') {
            return None;
        }
        self.pos += 1;
        let start = self.pos;
        let mut out = String::new();
        let mut chars = self.s[start..].char_indices();
        while let Some((k, c)) = chars.next() {
            match c {
                '"' => {
                    self.pos = start + k + 1;
                    return Some((out, start..start + k));
                }
                '\\' => {
                    let (_, e) = chars.next()?;
                    match e {
                        'b' => out.push('\u{8}'),
                        'f' => out.push('\u{c}'),
                        'n' => out.push('\n'),
                        'r' => out.push('\r'),
                        't' => out.push('\t'),
                        'u' => {
                            let hex = |chars: &mut std::str::CharIndices| -> Option<u32> {
                                let h: String = chars.by_ref().take(4).map(|(_, c)| c).collect();
                                u32::from_str_radix(&h, 16).ok()
                            };
                            let hi = hex(&mut chars)?;
                            let code = if (0xd800..0xdc00).contains(&hi) {
                                let rest = chars.as_str();
                                if rest.starts_with("\\u") {
                                    chars.next();
                                    chars.next();
                                    let lo = hex(&mut chars)?;
                                    0x10000
                                        + ((hi - 0xd800) << 10)
                                        + (lo.wrapping_sub(0xdc00) & 0x3ff)
                                } else {
                                    0xfffd
                                }
                            } else {
                                hi
                            };
                            out.push(char::from_u32(code).unwrap_or('\u{fffd}'));
                        }
                        other => out.push(other),
                    }
                }
                c => out.push(c),
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::assets::refs::assert_refs;

    #[test]
    fn web_manifest() {
        let src = r#"{ "name": "App", "start_url": "/", "src": "no1.png",
  "icons": [ { "src": "icons/a.png", "sizes": "192x192" }, {"purpose": "any", "src": "/static/b\u0063.png"} ],
  "screenshots": [{"src": "shot.webp", "label": "src"}], "related": [{"icons": [{"src": "no2.png"}]}],
  "shortcuts": [{ "name": "x", "url": "/x", "icons": [{ "src": "s.png" }] }], "x": {"icons": [{"src": "no3.png"}]} }"#;
        assert_refs(
            src,
            &web_manifest_references(src),
            r#"
            WebManifest@2:24 "icons/a.png" = icons/a.png
            WebManifest@2:87 "/static/b\u0063.png" = /static/bc.png
            WebManifest@3:28 "shot.webp" = shot.webp
            WebManifest@4:65 "s.png" = s.png
            "#,
        );
        assert!(web_manifest_references("{\"icons\": [{\"src\": \"a.png\"}").is_empty());
        let deep = format!("{{\"icons\": {}", "[".repeat(100_000));
        assert!(web_manifest_references(&deep).is_empty());
    }

    #[test]
    fn source_map_sources_entries() {
        let src = "{\"version\":3,\"file\":\"app.js\",\"sourceRoot\":\"\",\n\
                   \"sources\":[\"app.src.js\",null,\"../../src/x.ts\"],\"names\":[\"no\"],\"mappings\":\"AAAA\"}";
        assert_refs(
            src,
            &source_map_sources(src).sources,
            r#"
            SourceMapSource@2:13 "app.src.js" = app.src.js
            SourceMapSource@2:31 "../../src/x.ts" = ../../src/x.ts
            "#,
        );
        assert!(source_map_sources(src).root.is_none());
        let rooted = "{\"sourceRoot\":\"/src/\",\n\"sources\":[\"a.js\"],\"sourceRoot\":\"../s\"}";
        let scan = source_map_sources(rooted);
        assert_refs(
            rooted,
            &scan.sources,
            r#"SourceMapSource@2:13 "a.js" = a.js"#,
        );
        // The last one counts, as for any JSON key given twice.
        let root = scan.root.unwrap();
        assert_eq!(
            (root.value.as_str(), root.line, root.column),
            ("../s", 2, 34)
        );
        let broken = source_map_sources("{\"sources\":[\"a.js\"");
        assert!(broken.sources.is_empty() && broken.root.is_none());
    }
}
