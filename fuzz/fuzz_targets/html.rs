#![no_main]
//! The HTML scanner (and the CSS and JS scanners it calls) and the rewriter: see `verbatim_fuzz::check_scanner`.

use libfuzzer_sys::fuzz_target;
use verbatim_fuzz::{check_scanner, Scanner};

fuzz_target!(|data: &[u8]| {
    check_scanner(
        data,
        Scanner {
            scan: verbatim::assets::html::html_references,
            path: "pages/index.html",
        },
    );
});
