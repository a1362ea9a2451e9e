#![no_main]
//! The JSON scanners, source maps' `sources` (below their `sourceRoot`) and
//! web app manifests' image `src`s, and the rewriter: see
//! `verbatim_fuzz::check_scanner`. The first byte picks the scanner.

use libfuzzer_sys::fuzz_target;
use verbatim_fuzz::{check_scanner, Scanner};

fn source_map(text: &str) -> Vec<verbatim::assets::refs::Reference> {
    let scan = verbatim::assets::html::source_map_sources(text);
    // The root is a value of the same document, outside every source.
    if let Some(root) = &scan.root {
        assert!(
            scan.sources
                .iter()
                .all(|s| s.range.end <= root.range.start || root.range.end <= s.range.start),
            "sourceRoot {root:?} overlaps a source"
        );
    }
    scan.sources
}

fuzz_target!(|data: &[u8]| {
    let Some((&pick, data)) = data.split_first() else {
        return;
    };
    let scanner = if pick % 2 == 0 {
        Scanner {
            scan: source_map,
            path: "js/app.js.map",
        }
    } else {
        Scanner {
            scan: verbatim::assets::html::web_manifest_references,
            path: "site.webmanifest",
        }
    };
    check_scanner(data, scanner);
});
