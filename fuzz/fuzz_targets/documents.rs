#![no_main]
//! Manifest, pointer and event parsing: see `verbatim_fuzz::documents`.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| verbatim_fuzz::documents::check(data));
