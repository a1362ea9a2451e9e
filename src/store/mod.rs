//! Where objects live: one narrow trait and its implementations.
//!
//! Everything verbatim persists goes through [`Store`]: immutable objects are
//! written with [`PutMode::CreateOnly`] (the same bytes again is a no-op,
//! different bytes an error, never an overwrite) and environment pointers with
//! [`PutMode::ReplaceIfMatch`] (compare-and-swap); a host's own report with
//! [`PutMode::Overwrite`]. Nothing outside this module
//! touches the store's files or the network. The same conformance suite
//! (`tests/it/store_conformance.rs`) runs against every implementation.

pub mod api;
pub mod local;
pub mod open;
#[cfg(feature = "s3")]
mod s3;
mod s3_options;

pub use api::{
    AfterPut, Body, Data, ETag, Key, Listed, Object, ObjectMeta, Put, PutMode, PutOptions,
    PutOutcome, Result, Store, StoreError,
};
pub use local::LocalStore;
pub use open::{open, OpenError};
#[cfg(feature = "s3")]
pub use s3::S3Store;
pub use s3_options::{S3Options, DEFAULT_TIMEOUT};
