//! Import map prefix entries (`"three/addons/": "./jsm/"`). A browser
//! maps a specifier under the prefix by appending its rest to the value,
//! which would name a file as it was before it was renamed; so an entry
//! whose value names a directory of the tree is expanded into one entry
//! per file under it ([`expand`], [`Expansion`]), except for the files
//! another key of the same map takes ([`key_form`], [`shadowed`]): that is
//! how a browser would have resolved them.
//!
//! It knows the tree only by its sorted paths, and never reads a file.

use crate::assets::graph::types::{allowed_missing, AssetError, Input};
use crate::assets::json::ImportMapPrefix;
use crate::assets::refs::{json_string, Reference};
use crate::assets::url::{
    is_absolute, is_bare_specifier, percent_encode_segment, resolve, resolve_dir, Target,
    UrlOptions,
};
use std::collections::BTreeMap;
use std::ops::Range;

/// An import map prefix entry (`"three/addons/": "./jsm/"`) whose value
/// names a directory of the tree. It is written out as one entry per file
/// under that directory, in path order (`"three/addons/a.js":
/// "./jsm/a.<hash>.js", …`): a browser maps a specifier under the prefix
/// by appending to the value, which would name the file as it was before
/// it was renamed.
pub(super) struct Expansion {
    /// [`crate::assets::json::ImportMapPrefix::entry`].
    pub(super) entry: Range<usize>,
    /// The key, decoded; ends with `/`.
    key: String,
    /// The value as written, decoded; ends with `/`.
    value: String,
    /// The logical directory the value names (`""` or ending with `/`).
    dir: String,
    /// The files under `dir`, in path order.
    pub(super) targets: Vec<usize>,
}

impl Expansion {
    /// The replacement of [`Expansion::entry`]: `path(t)` is a target's
    /// logical path, `name(t)` the name it is written as (its final name,
    /// or its path while unknown).
    pub(super) fn text<'a>(
        &self,
        path: impl Fn(usize) -> &'a str,
        name: impl Fn(usize) -> &'a str,
    ) -> String {
        let mut out = String::new();
        for (i, &t) in self.targets.iter().enumerate() {
            if i > 0 {
                out.push_str("\", \"");
            }
            let rest = &path(t)[self.dir.len()..];
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

/// Expands the import map prefix entry `p` of the page at `path`, whose
/// value is the reference `r`: the [`Expansion`] that replaces it, or none
/// when it stays as written (its value names a directory outside the tree,
/// or every file under that directory has an entry of its own). `from` is
/// the file the page's URLs resolve against (none when its `<base href>`
/// is outside the tree), `keys` the sorted keys of the specifier map
/// holding `p`, `index` the tree's paths.
pub(super) fn expand(
    input: &Input,
    path: &str,
    from: Option<&str>,
    r: &Reference,
    p: ImportMapPrefix,
    keys: &[String],
    index: &BTreeMap<&str, usize>,
) -> Result<Option<Expansion>, AssetError> {
    let resolved = match from {
        Some(from) => resolve_dir(&r.value, from, &input.url),
        None if !is_absolute(&r.value) => Ok(None),
        None => resolve_dir(&r.value, path, &input.url),
    };
    let dir = match resolved {
        Err(msg) => {
            return Err(AssetError::at(
                path,
                r,
                format!("import map prefix {:?} cannot be expanded: {msg}", p.key),
            ))
        }
        Ok(None) => return Ok(None), // outside the tree: left as written
        Ok(Some(dir)) => dir,
    };
    let form = |key: &str| key_form(key, from, path, &input.url);
    let mut keys: Vec<KeyForm> = keys.iter().map(|k| form(k)).collect();
    keys.sort_unstable();
    let prefix = form(&p.key);
    let mut shadowed_any = false;
    let targets: Vec<usize> = index
        .range(dir.as_str()..)
        .take_while(|(k, _)| k.starts_with(dir.as_str()))
        .filter(|(k, _)| {
            let key = form(&expanded_key(&p.key, &k[dir.len()..]));
            let s = shadowed(&keys, &prefix, &key);
            shadowed_any |= s;
            !s
        })
        .map(|(_, &t)| t)
        .collect();
    if targets.is_empty() {
        // Every file under it has its own entry: left as written.
        if !shadowed_any && !allowed_missing(&input.allow_missing, &r.value, &dir) {
            return Err(AssetError::at(
                path,
                r,
                format!(
                    "import map prefix {:?} names {dir:?}, under which the tree \
                     has no file, so it cannot be expanded into one entry per file",
                    p.key
                ),
            ));
        }
        return Ok(None);
    }
    Ok(Some(Expansion {
        entry: p.entry,
        key: p.key,
        value: r
            .value
            .trim_matches(|c: char| c.is_ascii_whitespace())
            .to_string(),
        dir,
        targets,
    }))
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
pub(super) fn encode_path(path: &str) -> String {
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
