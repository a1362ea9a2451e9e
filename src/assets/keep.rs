//! Which files keep their own names instead of being renamed after their
//! content. Never guessed from a name's shape (`icons-v4compat.woff2` is
//! no bundler hash): a file keeps its name only when it is in a bundler's
//! output directory (the Vite manifest's hashed files, and the copies of
//! `public/` that Vite writes beside them, which its bundle names plainly),
//! when an `assets.keep_names` glob matches it, or when it is the `.map`
//! of a file that keeps its name (bundles name their source maps plainly).
//!
//! A kept name is not derived from the file's bytes, so it is only as
//! immutable as its bundler makes it: the store refuses other bytes under a
//! name it already holds (`publish` fails, exit 5).

use std::collections::BTreeSet;

use globset::GlobSet;

/// What decides which names are kept.
#[derive(Debug, Clone)]
pub struct KeepRules {
    /// `assets.keep_names`, matched against logical paths.
    pub globs: GlobSet,
    /// The Vite output directory inside the assets tree, if there is one.
    pub vite: Option<ViteOutput>,
}

impl Default for KeepRules {
    fn default() -> Self {
        KeepRules {
            globs: GlobSet::empty(),
            vite: None,
        }
    }
}

/// Vite's `outDir` as logical paths of the assets tree.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ViteOutput {
    /// The directory's logical path with a trailing `/`, or `""` when it
    /// is the assets directory itself.
    pub dir: String,
    /// The files the Vite manifest names (`file`, `css`, `assets` of every
    /// entry), as logical paths.
    pub listed: BTreeSet<String>,
}

impl ViteOutput {
    /// Whether `path` is inside Vite's output directory.
    pub fn contains(&self, path: &str) -> bool {
        path.starts_with(&self.dir)
    }
}

/// The logical paths among `files` that keep their names.
pub fn kept<'a>(files: impl IntoIterator<Item = &'a str>, rules: &KeepRules) -> BTreeSet<String> {
    let files: BTreeSet<&str> = files.into_iter().collect();
    let by_rule =
        |p: &str| rules.globs.is_match(p) || rules.vite.as_ref().is_some_and(|v| v.contains(p));
    let mut out = BTreeSet::new();
    for &path in &files {
        let map_of = path
            .len()
            .checked_sub(4)
            .filter(|&i| path.is_char_boundary(i) && path[i..].eq_ignore_ascii_case(".map"))
            .map(|i| &path[..i])
            .filter(|f| files.contains(f));
        if by_rule(path) || map_of.is_some_and(by_rule) {
            out.insert(path.to_owned());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn globs(patterns: &[&str]) -> GlobSet {
        let patterns: Vec<String> = patterns.iter().map(|p| p.to_string()).collect();
        crate::pack::glob_set(&patterns).expect("valid globs")
    }

    #[test]
    fn nothing_is_kept_by_its_shape() {
        // Real names that look like bundler hashes: Font Awesome's
        // v4-compatibility font, jQuery UI's icon sprites, Vite's own
        // output when no Vite manifest is configured.
        let files = [
            "webfonts/fa-v4compatibility.woff2",
            "themes/base/images/ui-icons_444444_256x240.png",
            "css/theme-v2compact.css",
            "assets/index-BxK3a9Zq.js",
            "assets/index-BxK3a9Zq.js.map",
        ];
        assert!(kept(files, &KeepRules::default()).is_empty());
    }

    #[test]
    fn vite_output_globs_and_their_maps() {
        let files = [
            // A Vite build under dist/: hashed files, copies of public/,
            // source maps, index.html.
            "dist/assets/index-9GimqxIf.js",
            "dist/assets/index-9GimqxIf.js.map",
            "dist/assets/index-gGNJdlJx.css",
            "dist/icons.svg",
            "dist/index.html",
            // Beside it, not Vite's.
            "img/logo.png",
            "distant/x.js",
            // keep_names, and a map of a kept file.
            "vendor/pdfjs/pdf.worker.min.mjs",
            "vendor/pdfjs/pdf.worker.min.mjs.map",
            "vendor/other.js",
            "vendor/other.js.map",
            // A map whose file is not there.
            "vendor/pdfjs/gone.mjs.map",
        ];
        let rules = KeepRules {
            globs: globs(&["vendor/pdfjs/*.mjs"]),
            vite: Some(ViteOutput {
                dir: "dist/".into(),
                listed: [
                    "dist/assets/index-9GimqxIf.js",
                    "dist/assets/index-gGNJdlJx.css",
                ]
                .map(String::from)
                .into(),
            }),
        };
        let got = kept(files, &rules);
        assert_eq!(
            got.iter().map(String::as_str).collect::<Vec<_>>(),
            [
                "dist/assets/index-9GimqxIf.js",
                "dist/assets/index-9GimqxIf.js.map",
                "dist/assets/index-gGNJdlJx.css",
                "dist/icons.svg",
                "dist/index.html",
                "vendor/pdfjs/pdf.worker.min.mjs",
                "vendor/pdfjs/pdf.worker.min.mjs.map",
            ]
        );
        // Vite's output directory is the assets directory itself.
        let rules = KeepRules {
            vite: Some(ViteOutput::default()),
            ..KeepRules::default()
        };
        assert_eq!(kept(files, &rules).len(), files.len());
    }
}
