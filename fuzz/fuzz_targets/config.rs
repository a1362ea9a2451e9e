#![no_main]
//! `verbatim.toml` parsing: any text gives a config or a `ConfigError`,
//! never a panic.

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use verbatim::config::{Config, Overrides};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // The example project has the `app/` and `static/` its config names, so
    // parsing gets past the existence checks. Nothing is written.
    let root = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/shop"));
    let path = root.join("verbatim.toml");
    let _ = Config::from_toml(text, &path, root.to_owned(), &Overrides::default());
});
