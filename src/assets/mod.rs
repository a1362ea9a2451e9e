//! Asset fingerprinting: scan CSS, JS and HTML for references, resolve them
//! against the logical asset tree, and rename every file after the hash of
//! its final (rewritten) content, leaves first, so that a release always
//! serves exactly the files it was built with.
//!
//! Pure: this module and its children do no I/O. `crate::builder::assets` reads
//! the tree and hands the bytes in as an [`graph::Input`]; it writes what
//! [`graph::fingerprint`] returns.

pub mod css;
pub mod dirs;
pub mod graph;
pub mod html;
pub mod js;
mod json;
pub mod keep;
pub mod mime;
pub mod refs;
pub mod sri;
pub mod url;

pub use graph::{fingerprint, AssetError, Input, OutFile, Output};
