//! verbatim: build once, publish immutably, promote the same manifest.
//!
//! See ARCHITECTURE.md for the map. The pure core (`pack` spec, `manifest`,
//! `gzip`, `digest`) does no I/O beyond the streams it is handed; `store` is
//! the only module that persists anything; `commands` is the CLI edge.

pub mod actor;
pub mod assets;
pub mod builder;
pub mod cli;
pub mod clock;
pub mod commands;
pub mod config;
pub mod digest;
pub mod environments;
pub mod error;
pub mod exit;
pub mod gzip;
pub mod host;
pub mod manifest;
pub mod objects;
pub mod output;
pub mod pack;
pub mod par;
pub mod process;
pub mod progress;
pub mod publish;
pub mod safe_fs;
pub mod signals;
pub mod store;
pub mod text;
pub mod trust;
pub mod unpack;
