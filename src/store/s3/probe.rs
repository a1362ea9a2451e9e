//! The conditional-write probe. Some servers accept `If-None-Match` and
//! `If-Match` and ignore them, which would let a write overwrite an
//! immutable object or lose a promotion; so the first write of a run
//! writes one object under `.verbatim-probe/`, checks that a second create
//! and a stale `If-Match` are refused, learns which ETag form the server's
//! `If-Match` wants, and deletes it ([`S3Store::conditional`]).

use aws_sdk_s3::error::SdkError;
use aws_sdk_s3::primitives::ByteStream;

use super::bucket::S3Store;
use super::errors::{backend, is_not_found, is_precondition_failed};
use crate::store::api::{ETag, Result, StoreError};

impl S3Store {
    /// Whether conditional writes can be trusted; probes once per run.
    pub(super) fn conditional(&self) -> Result<bool> {
        let probed = self.conditional.get_or_init(|| {
            let probed = self.rt.block_on(self.probe());
            if probed == Ok(false) && self.allow_unconditional {
                // Once per run, not once per object.
                eprintln!(
                    "warning: {}: the server ignores conditional writes; writing with racy HEAD-then-PUT as --unsafe-no-conditional-writes asks",
                    self.url()
                );
            }
            probed
        });
        match probed {
            Ok(true) => Ok(true),
            Ok(false) if self.allow_unconditional => Ok(false),
            Ok(false) => Err(StoreError::Unsupported(format!(
                "s3://{}/{}: the server ignores conditional writes (a second create with `If-None-Match: *`, or a write with a stale `If-Match`, succeeded), so it could overwrite immutable objects or lose a promotion; use a server that implements them (AWS S3, MinIO, Ceph, R2, s3s), or pass --unsafe-no-conditional-writes to fall back to racy HEAD-then-PUT",
                self.bucket, self.prefix
            ))),
            Err(e) => Err(StoreError::Unsupported(e.clone())),
        }
    }

    /// Whether the server honours `If-None-Match: *` and `If-Match`, and
    /// which ETag form its `If-Match` wants. Writes and deletes one object
    /// under `.verbatim-probe/`.
    async fn probe(&self) -> std::result::Result<bool, String> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let key = format!(
            "{}.verbatim-probe/{}-{nanos}",
            self.prefix,
            std::process::id()
        );
        let put = || {
            self.client
                .put_object()
                .bucket(&self.bucket)
                .key(&key)
                .body(ByteStream::from_static(b"probe"))
        };
        let failed = |what: &str, e: &SdkError<_, _>| {
            format!(
                "s3://{}/{}: {what}: {}",
                self.bucket,
                self.prefix,
                self.explain(backend("PUT", &key, e))
            )
        };
        let first = put()
            .if_none_match("*")
            .send()
            .await
            .map_err(|e| failed("cannot write to the bucket", &e))?;
        let etag = first.e_tag().unwrap_or_default().to_owned();
        let result = async {
            match put().if_none_match("*").send().await {
                Ok(_) => return Ok(false),
                Err(e) if is_precondition_failed(&e) => {}
                Err(e) => return Err(failed("probing If-None-Match", &e)),
            }
            // A tag that cannot match must be refused, by 412 (or 404).
            match put().if_match("\"verbatim-probe-no-such-etag\"").send().await {
                Ok(_) => return Ok(false),
                Err(e) if is_precondition_failed(&e) || is_not_found(&e) => {}
                Err(e) => return Err(failed("probing If-Match", &e)),
            }
            // The object's own tag must match: as the server sent it, or bare.
            for (bare, tag) in [(false, etag.clone()), (true, etag.trim_matches('"').to_owned())] {
                match put().if_match(tag).send().await {
                    Ok(_) => {
                        let _ = self.bare_etags.set(bare);
                        return Ok(true);
                    }
                    Err(e) if is_precondition_failed(&e) => {}
                    Err(e) => return Err(failed("probing If-Match", &e)),
                }
            }
            Err(format!(
                "s3://{}/{}: the server refuses `If-Match` with the ETag it just returned ({etag}), quoted or bare, so environment pointers cannot be moved by compare-and-swap; use a server that implements conditional writes (AWS S3, MinIO, Ceph, R2, s3s)",
                self.bucket, self.prefix
            ))
        }
        .await;
        let _ = self
            .client
            .delete_object()
            .bucket(&self.bucket)
            .key(&key)
            .send()
            .await;
        result
    }

    /// The `If-Match` value for `etag` in the form the server matches.
    pub(super) fn if_match(&self, etag: &ETag) -> String {
        if self.bare_etags.get() == Some(&true) {
            etag.0.trim_matches('"').to_owned()
        } else {
            etag.0.clone()
        }
    }
}
