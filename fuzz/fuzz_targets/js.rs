#![no_main]
//! The JS scanner and the rewriter: see `verbatim_fuzz::check_scanner`.

use libfuzzer_sys::fuzz_target;
use verbatim_fuzz::{check_scanner, Scanner};

fuzz_target!(|data: &[u8]| {
    check_scanner(
        data,
        Scanner {
            scan: verbatim::assets::js::js_references,
            path: "js/app.js",
        },
    );
});
