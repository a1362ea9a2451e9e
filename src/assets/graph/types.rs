//! The values the fingerprinting pipeline takes and gives: what to
//! fingerprint ([`Input`]), what comes out ([`Output`], one [`OutFile`]
//! per file), and the problems found on the way ([`AssetError`]). They are
//! shared by every room of `graph`, so they live on its ground floor, and
//! hold no logic beyond reading themselves.

use crate::assets::graph::edit::{apply, Edit};
use crate::assets::refs::Reference;
use crate::assets::sri;
use crate::assets::url::UrlOptions;
use crate::digest::Digest;
use globset::GlobSet;
use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};

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
    /// How the tree is served: what a URL must start with to name one of
    /// its files.
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
    /// ([`hashed_dir_name`](super::hashed_dir_name)): `vendor/pdfjs/cmaps/x` becomes
    /// `vendor/pdfjs/cmaps.<hash>/x`, for code that builds URLs from the
    /// directory's URL at run time.
    pub hash_dirs: Vec<String>,
    /// Entry files (`[site] entries`): pages and files whose URL stays the
    /// same while their bytes change (`index.html`, a service worker). They
    /// keep their names, are scanned like any file, and are served from
    /// the site's root (`/<path>`), not under the public prefix: references
    /// to one are rewritten to `/<path>`, and an entry's own relative
    /// references to the root-absolute URL of their target.
    pub entries: BTreeSet<String>,
    /// Whether the tree is a site (`[site]` is set): files nothing reaches
    /// are then worth a warning even without pages ([`Output::warnings`]).
    pub site: bool,
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
            entries: BTreeSet::new(),
            site: false,
        }
    }
}

/// A file of [`Input::opaque`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opaque {
    /// Its size in bytes.
    pub size: u64,
    /// Its digests, which its integrity and its final name are made of.
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

/// The extension of the file name at the end of `path`, without its dot;
/// none for a name that only starts with one (`.htaccess`).
pub(super) fn extension(path: &str) -> Option<&str> {
    let file = path.rsplit('/').next().unwrap_or(path);
    file.rfind('.').filter(|&i| i > 0).map(|i| &file[i + 1..])
}

/// Whether a reference to a missing file may stay as written: the
/// reference `value` or the `path` it resolves to matches one of `globs`
/// ([`Input::allow_missing`]).
pub(super) fn allowed_missing(globs: &GlobSet, value: &str, path: &str) -> bool {
    globs.is_match(value) || globs.is_match(path)
}

/// The fingerprinted tree, keyed by original logical path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    /// Every file of the tree, opaque ones too.
    pub files: BTreeMap<String, OutFile>,
    /// Each of [`Input::hash_dirs`] holding a file, to its final name
    /// (`vendor/pdfjs/cmaps` to `vendor/pdfjs/cmaps.3fa9c1d2e4b5`).
    pub dirs: BTreeMap<String, String>,
    /// What is worth telling, short of an error: a source map that is not
    /// there, files only code could reach (sorted, one per directory).
    pub warnings: Vec<AssetError>,
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

/// One fingerprinted file: its final name, and how to make its final bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutFile {
    /// Final logical name, e.g. `css/site.3fa9c1d2e4b5.css`.
    pub name: String,
    /// What makes the final bytes from the input's (references rewritten):
    /// none for a file published as it is.
    pub edits: Vec<Edit>,
    /// SHA-256 of the final bytes.
    pub sha256: Digest,
    /// Size of the final bytes.
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
    /// An entry file ([`Input::entries`]): not an asset.
    pub entry: bool,
}

/// One problem found while fingerprinting (or, in [`Output::warnings`],
/// one worth a warning); all are collected and reported together. `line`/`column` are 1-based, or 0 when not tied to a position.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, thiserror::Error)]
#[error("{file}:{line}:{column}: {message} (reference {reference:?})")]
pub struct AssetError {
    /// Logical path of the file the problem is in (empty when it is in
    /// the [`Input`] itself).
    pub file: String,
    /// 1-based line of the reference, or 0.
    pub line: u32,
    /// 1-based column of the reference, or 0.
    pub column: u32,
    /// The reference as written (empty when not about one).
    pub reference: String,
    /// What is wrong, and what to do about it.
    pub message: String,
}

impl AssetError {
    /// A problem with reference `r` of `file`, at its position.
    pub(super) fn at(file: &str, r: &Reference, message: String) -> Self {
        AssetError {
            file: file.to_string(),
            line: r.line,
            column: r.column,
            reference: r.value.clone(),
            message,
        }
    }
}
