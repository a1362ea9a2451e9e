//! Final bytes and names. A file's final bytes are its bytes with every
//! reference to a renamed file rewritten and every integrity value brought
//! up to date ([`Finals`]); its name is the hash of those bytes, spliced
//! into its path ([`hashed_name`]). Files are made leaves first, so a file
//! is made only once every file it references has its final name.
//!
//! It makes one file at a time; the order (levels, cycles, hashed
//! directories) is for its callers to keep.

use crate::assets::graph::edit::{apply, edits_with, Edge, Edit};
use crate::assets::graph::import_map::encode_path;
use crate::assets::graph::scan::Node;
use crate::assets::graph::types::MIN_HASH_LEN;
use crate::assets::refs::encode_for;
use crate::assets::sri;
use crate::assets::url::{is_path_relative, split_suffix};
use crate::digest::Digest;

/// A file's final bytes.
pub(super) struct Final {
    /// Empty when they are the file's bytes in the tree.
    pub(super) edits: Vec<Edit>,
    /// SHA-256 of the final bytes.
    pub(super) sha256: Digest,
    /// Computed when needed early; the rest after the walk, in parallel.
    pub(super) integrity: Option<String>,
}

/// What is known of each file so far, leaves first.
pub(super) struct Finals {
    /// The name references to a file are rewritten to: its hashed name once
    /// known; never one for a kept file (references to it stay as written).
    pub(super) names: Vec<Option<String>>,
    /// How many trailing segments of a reference to each file are rewritten.
    pub(super) tails: Vec<usize>,
    /// Each file once its final bytes are known.
    pub(super) finals: Vec<Option<Final>>,
    /// Files some integrity attribute covers: [`Finals::make`] computes
    /// their integrity at once, for the attributes to be brought up to date.
    covered: Vec<bool>,
    /// The URL path assets are served under: an entry's relative
    /// references are rewritten to start with it.
    pub(super) public_prefix: String,
}

impl Finals {
    /// Nothing known yet of `nodes`.
    pub(super) fn new(nodes: &[Node]) -> Finals {
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
            public_prefix: "/".into(),
        }
    }

    /// Makes file `v`'s final bytes (every file it references is final,
    /// or in its cycle), stores them, and returns their SHA-256.
    pub(super) fn finish(&mut self, nodes: &[Node], v: usize) -> Digest {
        let fin = self.make(nodes, v);
        self.store(v, fin)
    }

    /// Stores what [`Finals::make`] made of file `v`.
    pub(super) fn store(&mut self, v: usize, fin: Final) -> Digest {
        let sha256 = fin.sha256;
        self.finals[v] = Some(fin);
        sha256
    }

    /// File `v`'s final bytes, as edits of its bytes, their digest, and
    /// their integrity if an integrity attribute needs it.
    pub(super) fn make(&self, nodes: &[Node], v: usize) -> Final {
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
    pub(super) fn final_bytes(&self, nodes: &[Node], v: usize) -> Vec<u8> {
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
                let path = |t: usize| nodes[t].path;
                let text = x.text(path, |t| self.names[t].as_deref().unwrap_or(nodes[t].path));
                (x.entry.clone(), text)
            }))
            .collect::<Vec<_>>();
        let (sited, plain): (Vec<&Edge>, Vec<&Edge>) = node
            .edges
            .iter()
            .partition(|e| self.site_url(nodes, v, e).is_some());
        let mut more = sri;
        for e in sited {
            if let Some(url) = self.site_url(nodes, v, e) {
                let suffix = split_suffix(e.r.value.trim()).1;
                more.push((
                    e.r.range.clone(),
                    encode_for(&e.r, &format!("{url}{suffix}")),
                ));
            }
        }
        edits_with(text, plain, &self.names, &self.tails, more)
    }

    /// The URL (without `?#` suffix) edge `e` of file `v` is rewritten to
    /// because an entry is at one of its ends: an entry is served from the
    /// site's root (`/<path>`), so a reference to one names that; and an
    /// entry may be served anywhere (`site/<env>/`, a host's `current/`),
    /// so its relative references name their target from the root.
    fn site_url(&self, nodes: &[Node], v: usize, e: &Edge) -> Option<String> {
        let target = &nodes[e.target];
        if target.entry {
            return Some(format!("/{}", encode_path(target.path)));
        }
        if !(nodes[v].entry && is_path_relative(&e.r.value)) {
            return None;
        }
        let name = match &self.names[e.target] {
            Some(name) => name.as_str(),
            None if target.kept => target.path,
            None => return None, // in a cycle with the entry: left as written
        };
        Some(format!("{}{}", self.public_prefix, encode_path(name)))
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
