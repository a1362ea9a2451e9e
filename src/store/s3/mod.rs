//! An S3-compatible bucket: AWS S3, MinIO, RustFS, Ceph, R2, Garage …
//!
//! The trait is synchronous; this store owns a small tokio runtime and one
//! shared SDK client and blocks on it, so callers may put from many threads
//! at once, and a batch ([`Store::put_many`]) runs as futures inside one
//! `block_on`. Immutable keys are written with `If-None-Match: *` and a
//! sha256 checksum the server verifies (`x-amz-checksum-sha256`, computed
//! here: the SDK's default CRC32/aws-chunked trailers break several servers),
//! and the hex digest is kept in `x-amz-meta-sha256` so `head` can vouch for
//! it. Pointers use `If-Match`. Because some servers accept conditional
//! headers and ignore them, the first write of a run probes the server and
//! refuses to go on if a second create of the same key succeeds.
//!
//! This file holds the [`Store`] operations; the rest is in rooms beside it,
//! each using only those listed before it: `errors` (SDK errors read as
//! [`StoreError`]), `bucket` (the state, opening, HEAD), `probe` (the
//! conditional-write probe), `multipart` (large objects), `stream` (a
//! large object read as a stream).

mod bucket;
mod errors;
mod multipart;
mod probe;
mod stream;

pub use bucket::S3Store;

use std::io::{self, Read};
use std::time::Duration;

use aws_sdk_s3::primitives::{ByteStream, SdkBody};
use futures_util::stream::{FuturesUnordered, StreamExt};

use bucket::{object_meta, SHA256_META};
use errors::{backend, is_bad_digest, is_conflict, is_not_found, is_precondition_failed};
use multipart::PART_SIZE;
use stream::StreamReader;

use crate::digest::{base64, Digest};
use crate::store::api::{
    AfterPut, Body, Data, ETag, Key, Listed, Object, ObjectMeta, Put, PutMode, PutOptions,
    PutOutcome, Result, Store, StoreError,
};

/// Objects up to this size are read into memory by `get`.
const SMALL_OBJECT: u64 = 16 << 20;
/// Retries of `409 ConditionalRequestConflict` (the SDK retries 5xx itself).
const CONFLICT_RETRIES: u32 = 8;

impl S3Store {
    /// [`Store::put`], on the store's runtime; `conditional` says whether
    /// the server's conditional writes can be trusted (if not, a HEAD
    /// first: racy, and only when allowed).
    async fn put_async(
        &self,
        key: &Key,
        body: Body<'_>,
        mode: PutMode,
        opts: &PutOptions,
        conditional: bool,
    ) -> Result<PutOutcome> {
        if !conditional {
            match (&mode, self.head_async(key).await?) {
                (PutMode::CreateOnly, Some(_)) => return self.same_as_existing(key, &body).await,
                (PutMode::ReplaceIfMatch(want), Some(m)) if m.etag != *want => {
                    return Err(StoreError::PreconditionFailed { key: key.clone() })
                }
                (PutMode::ReplaceIfMatch(_), None) => {
                    return Err(StoreError::PreconditionFailed { key: key.clone() })
                }
                _ => {}
            }
        }
        if body.size > PART_SIZE {
            if mode != PutMode::CreateOnly {
                return Err(StoreError::Unsupported(format!(
                    "{key}: compare-and-swap of objects over {PART_SIZE} bytes"
                )));
            }
            // Content-addressed: if it is there, only its digest matters.
            if self.head_async(key).await?.is_some() {
                return self.same_as_existing(key, &body).await;
            }
            return self.multipart(key, &body, opts, conditional).await;
        }
        let bytes = match body.data {
            Data::Bytes(b) => b.to_vec(),
            Data::File { .. } => {
                let mut bytes = Vec::with_capacity(body.size as usize);
                body.open()
                    .and_then(|mut r| r.read_to_end(&mut bytes))
                    .map_err(|e| StoreError::Io {
                        op: "reading the body for",
                        key: key.to_string(),
                        source: e,
                    })?;
                bytes
            }
        };
        let actual = Digest::of(&bytes);
        if actual != body.sha256 || bytes.len() as u64 != body.size {
            return Err(StoreError::BodyMismatch {
                key: key.clone(),
                expected: body.sha256,
                actual,
            });
        }
        let len = bytes.len() as i64;
        // In memory, so each attempt's copy shares the bytes.
        let bytes = SdkBody::from(bytes);
        let mut attempt = 0;
        loop {
            let mut req = self
                .client
                .put_object()
                .bucket(&self.bucket)
                .key(self.full(key))
                .body(ByteStream::new(
                    bytes.try_clone().expect("an in-memory body clones"),
                ))
                .content_length(len)
                .checksum_sha256(base64(actual.as_bytes()))
                .metadata(SHA256_META, actual.hex())
                .set_content_type(opts.content_type.clone())
                .set_cache_control(opts.cache_control.clone());
            if conditional {
                req = match &mode {
                    PutMode::CreateOnly => req.if_none_match("*"),
                    PutMode::ReplaceIfMatch(etag) => req.if_match(self.if_match(etag)),
                    PutMode::Overwrite => req,
                };
            }
            // The payload is covered by the sha256 checksum the server
            // verifies; signing it too would hash every body a second time.
            match req.customize().disable_payload_signing().send().await {
                Ok(out) => {
                    return Ok(PutOutcome::Written(ETag(
                        out.e_tag().unwrap_or_default().to_owned(),
                    )))
                }
                Err(e) if is_conflict(&e) && attempt < CONFLICT_RETRIES => {
                    attempt += 1;
                    tokio::time::sleep(Duration::from_millis(50 << attempt.min(5))).await;
                }
                Err(e) if is_precondition_failed(&e) || is_not_found(&e) => {
                    return match mode {
                        PutMode::CreateOnly => self.same_as_existing(key, &body).await,
                        PutMode::ReplaceIfMatch(_) | PutMode::Overwrite => {
                            Err(StoreError::PreconditionFailed { key: key.clone() })
                        }
                    };
                }
                Err(e) if is_bad_digest(&e) => {
                    return Err(StoreError::BodyMismatch {
                        key: key.clone(),
                        expected: body.sha256,
                        actual,
                    })
                }
                Err(e) => return Err(backend("PUT", key, &e)),
            }
        }
    }
}

impl Store for S3Store {
    fn location(&self) -> String {
        self.url()
    }

    fn put(
        &self,
        key: &Key,
        body: Body<'_>,
        mode: PutMode,
        opts: &PutOptions,
    ) -> Result<PutOutcome> {
        let conditional = self.conditional()?;
        self.rt
            .block_on(self.put_async(key, body, mode, opts, conditional))
            .map_err(|e| self.explain(e))
    }

    /// The puts are futures on this thread, their connections on the
    /// runtime's: no thread per put in flight, and no wake-up crossing
    /// threads for each request.
    fn put_many(
        &self,
        puts: &[Put<'_>],
        concurrency: usize,
        after: AfterPut<'_>,
    ) -> Vec<Option<Result<PutOutcome>>> {
        let mut results: Vec<Option<Result<PutOutcome>>> = puts.iter().map(|_| None).collect();
        let conditional = match self.conditional() {
            Ok(c) => c,
            Err(e) => {
                if let Some(first) = results.first_mut() {
                    *first = Some(Err(e));
                }
                return results;
            }
        };
        self.rt.block_on(async {
            let mut running = FuturesUnordered::new();
            let mut next = puts.iter().enumerate();
            let mut stop = false;
            loop {
                while !stop && running.len() < concurrency.max(1) {
                    let Some((i, p)) = next.next() else { break };
                    running.push(async move {
                        let mode = p.mode.clone();
                        (
                            i,
                            self.put_async(p.key, p.body, mode, p.opts, conditional)
                                .await,
                        )
                    });
                }
                let Some((i, outcome)) = running.next().await else {
                    break;
                };
                let told_to_stop = after(i).is_break();
                stop |= outcome.is_err() || told_to_stop;
                results[i] = Some(outcome.map_err(|e| self.explain(e)));
            }
        });
        results
    }

    fn get(&self, key: &Key) -> Result<Object> {
        self.get_inner(key).map_err(|e| self.explain(e))
    }

    fn head(&self, key: &Key) -> Result<Option<ObjectMeta>> {
        self.rt
            .block_on(self.head_async(key))
            .map_err(|e| self.explain(e))
    }

    fn list(&self, prefix: &str) -> Result<Vec<Listed>> {
        self.list_inner(prefix).map_err(|e| self.explain(e))
    }
}

impl S3Store {
    /// [`Store::get`]: a small object read at once, a large one (or one
    /// of unknown length) streamed.
    fn get_inner(&self, key: &Key) -> Result<Object> {
        let res = self.rt.block_on(
            self.client
                .get_object()
                .bucket(&self.bucket)
                .key(self.full(key))
                .send(),
        );
        let out = match res {
            Ok(out) => out,
            Err(e)
                if e.as_service_error().is_some_and(|s| s.is_no_such_key()) || is_not_found(&e) =>
            {
                return Err(StoreError::NotFound { key: key.clone() })
            }
            Err(e) => return Err(backend("GET", key, &e)),
        };
        let meta = object_meta(out.content_length(), out.e_tag(), out.metadata());
        // Without a length the body could be anything: stream it.
        if out.content_length().is_some() && meta.size <= SMALL_OBJECT {
            let read_err = |source| StoreError::Io {
                op: "reading",
                key: key.to_string(),
                source,
            };
            let bytes = self
                .rt
                .block_on(async { tokio::time::timeout(self.timeout, out.body.collect()).await })
                .map_err(|_| StoreError::Unreachable {
                    op: "GET",
                    key: key.to_string(),
                    timed_out: true,
                    detail: "body".into(),
                })?
                .map_err(|e| read_err(io::Error::other(e)))?
                .into_bytes();
            return Ok(Object {
                reader: Box::new(io::Cursor::new(bytes.to_vec())),
                meta,
            });
        }
        Ok(Object {
            reader: Box::new(StreamReader::new(
                self.rt.handle().clone(),
                out.body,
                self.timeout,
            )),
            meta,
        })
    }

    /// [`Store::list`]: every page of the listing, keys sorted.
    fn list_inner(&self, prefix: &str) -> Result<Vec<Listed>> {
        let full = format!("{}{prefix}", self.prefix);
        let mut pages = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(&full)
            .into_paginator()
            .send();
        let mut keys = Vec::new();
        while let Some(page) = self.rt.block_on(pages.next()) {
            let page = page.map_err(|e| backend("LIST", &full, &e))?;
            for o in page.contents() {
                let Some(k) = o.key().and_then(|k| k.strip_prefix(&self.prefix)) else {
                    continue;
                };
                if let Ok(key) = Key::new(k) {
                    let size = o.size().unwrap_or(0).max(0) as u64;
                    keys.push(Listed { key, size });
                }
            }
        }
        keys.sort();
        Ok(keys)
    }
}
