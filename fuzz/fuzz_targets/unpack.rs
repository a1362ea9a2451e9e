#![no_main]
//! The unpacker on hostile tar streams: see `verbatim_fuzz::unpack`.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| verbatim_fuzz::unpack::check(data));
