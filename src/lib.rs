//! verbatim: build once, publish immutably, promote the same manifest.
//!
//! The library holds every operation (`builder::build`, `publish::publish`,
//! `environments::promote`, `host::deploy`, …) over a configuration, a
//! [`store::Store`] and a [`progress::Progress`]; the `verbatim` binary
//! (`src/bin/verbatim/`) only parses the command line, calls one operation
//! and prints what it returns. See ARCHITECTURE.md for the map.

#![deny(missing_docs)]

pub mod actor;
pub mod assets;
pub mod builder;
pub mod clock;
pub mod config;
pub mod dashboard;
pub mod digest;
pub mod environments;
pub mod error;
pub mod gzip;
pub mod host;
pub mod manifest;
pub mod notify;
pub mod objects;
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
