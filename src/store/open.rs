//! Opening the store a URL names: a local directory, or an S3-compatible
//! bucket; a mistyped URL is refused rather than taken for a directory.

use std::path::{Path, PathBuf};

use super::api::Store;
use super::local::LocalStore;
#[cfg(feature = "s3")]
use super::s3::S3Store;
use super::s3_options::S3Options;
use crate::error::Class;

/// Opens the store a URL names: `file:///abs/path`, a plain path, or
/// `s3://bucket/prefix` (with `s3`'s settings).
pub fn open(url: &str, base: &Path, s3: &S3Options) -> Result<Box<dyn Store>, OpenError> {
    check_url(url)?;
    if url.starts_with("s3://") {
        #[cfg(feature = "s3")]
        return Ok(Box::new(S3Store::open(url, s3).map_err(OpenError)?));
        #[cfg(not(feature = "s3"))]
        return Err(OpenError(format!(
            "store URL `{url}`: this verbatim was built without S3 support ({s3:?} unused); build it with the default feature `s3`"
        )));
    }
    if let Some(rest) = url.strip_prefix("file://") {
        if !rest.starts_with('/') {
            return Err(OpenError(format!(
                "store URL `{url}`: file URLs need an absolute path (file:///abs/path)"
            )));
        }
        return Ok(Box::new(LocalStore::new(PathBuf::from(rest))));
    }
    if let Some((scheme, _)) = url.split_once("://") {
        return Err(OpenError(format!(
            "store URL `{url}`: unsupported scheme `{scheme}` (use a path, file:///path or s3://bucket/prefix)"
        )));
    }
    if url.is_empty() {
        return Err(OpenError("store URL is empty".into()));
    }
    Ok(Box::new(LocalStore::within(base, Path::new(url))))
}

/// Refuses what looks like a mistyped URL rather than taking it for a local
/// directory: `s3:/bucket`, `s3//bucket`, `s3:bucket`, `file:/x`, and an
/// `s3://` URL without a valid bucket name.
fn check_url(url: &str) -> Result<(), OpenError> {
    let lower = url.to_ascii_lowercase();
    for scheme in ["s3", "file"] {
        let typo =
            lower.starts_with(&format!("{scheme}:")) || lower.starts_with(&format!("{scheme}//"));
        if typo && !lower.starts_with(&format!("{scheme}://")) {
            return Err(OpenError(format!(
                "store URL `{}` looks like a mistyped {scheme}:// URL; write {}",
                crate::text::escape(url),
                if scheme == "s3" {
                    "s3://bucket/prefix"
                } else {
                    "file:///absolute/path"
                }
            )));
        }
    }
    if let Some(rest) = url.strip_prefix("s3://") {
        let bucket = rest.split('/').next().unwrap_or_default();
        let valid = (3..=63).contains(&bucket.len())
            && bucket
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
            && !bucket.starts_with(['.', '-'])
            && !bucket.ends_with(['.', '-']);
        if !valid {
            return Err(OpenError(format!(
                "store URL `{}`: `{}` is not a bucket name (3 to 63 lower-case letters, digits, `.` and `-`); write s3://bucket/prefix",
                crate::text::escape(url),
                crate::text::escape(bucket)
            )));
        }
    }
    Ok(())
}

/// A store URL that cannot be opened.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct OpenError(pub String);

impl OpenError {
    /// A store URL that cannot be opened is a usage error.
    pub fn class(&self) -> Class {
        Class::Usage
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mistyped_urls_are_refused() {
        for bad in [
            "s3:/bucket",
            "s3//bucket",
            "s3:bucket",
            "S3:/bucket",
            "s3://",
            "s3:///p",
            "s3://B/p",
            "s3://ab",
            "file:/abs",
            "file:rel",
        ] {
            assert!(check_url(bad).is_err(), "{bad} accepted");
        }
        for ok in [
            "s3://bucket",
            "s3://my.bucket-1/a/b",
            "file:///abs",
            "./store",
            "s3store",
            ".verbatim/store",
        ] {
            assert!(check_url(ok).is_ok(), "{ok} refused");
        }
    }
}
