//! Integration tests: the real `verbatim` binary in temp directories (and,
//! in `library`, the operations called from Rust).
//!
//! One module per command or contract. `util` is the harness.

mod agents;
mod allowed_signers;
mod assets;
mod browser;
mod build;
mod build_cache;
mod canary;
mod ceph;
mod cli;
mod dashboard;
mod deploy;
mod django;
mod django_example;
mod dry_run;
mod envconfig;
mod environments;
mod errors;
mod export;
mod fleet;
mod follow;
mod hostile;
mod interrupt;
mod library;
mod liveness;
mod messages;
mod nginx;
mod notify;
mod pinned;
mod policy;
mod proxy;
mod publish;
mod reports;
mod rollout;
mod s3;
mod schema;
mod service;
mod setup;
mod signed_reports;
mod signing;
mod sites;
mod store_conformance;
mod util;
