//! Large objects: a body over [`PART_SIZE`] goes up in parts of that
//! size, [`PARTS_IN_FLIGHT`] at a time, streamed from its file and hashed
//! on the way; the upload is completed only if the bytes match the digest
//! the body claims, and aborted otherwise.

use std::io::{self, Read};

use aws_sdk_s3::error::SdkError;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};

use super::bucket::{S3Store, SHA256_META};
use super::errors::{backend, is_precondition_failed};
use crate::digest::{base64, Digest};
use crate::store::api::{Body, Data, ETag, Key, PutOptions, PutOutcome, Result, StoreError};

/// Objects up to this size are sent in one PutObject (read into memory);
/// larger ones go up in parts of this size, streamed from disk.
pub(super) const PART_SIZE: u64 = 8 << 20;
/// Parts uploaded at once for one large object (memory: this × PART_SIZE).
const PARTS_IN_FLIGHT: usize = 4;

impl S3Store {
    /// Streams a large file up in parts, hashing as it goes; completes only
    /// if the bytes match the claimed digest.
    pub(super) async fn multipart(
        &self,
        key: &Key,
        body: &Body<'_>,
        opts: &PutOptions,
        conditional: bool,
    ) -> Result<PutOutcome> {
        if let Data::Bytes(_) = body.data {
            return Err(StoreError::Unsupported(format!(
                "{key}: in-memory bodies over {PART_SIZE} bytes"
            )));
        }
        let full = self.full(key);
        let created = self
            .client
            .create_multipart_upload()
            .bucket(&self.bucket)
            .key(&full)
            .metadata(SHA256_META, body.sha256.hex())
            .checksum_algorithm(aws_sdk_s3::types::ChecksumAlgorithm::Sha256)
            .set_content_type(opts.content_type.clone())
            .set_cache_control(opts.cache_control.clone())
            .send()
            .await
            .map_err(|e| backend("CreateMultipartUpload", key, &e))?;
        let upload_id = created.upload_id().unwrap_or_default().to_owned();
        let result = self.upload_parts(key, body, &upload_id, conditional).await;
        if result.is_err() {
            let _ = self
                .client
                .abort_multipart_upload()
                .bucket(&self.bucket)
                .key(&full)
                .upload_id(&upload_id)
                .send()
                .await;
        }
        result
    }

    async fn upload_parts(
        &self,
        key: &Key,
        body: &Body<'_>,
        upload_id: &str,
        conditional: bool,
    ) -> Result<PutOutcome> {
        let io_err = |e| StoreError::Io {
            op: "reading the body for",
            key: key.to_string(),
            source: e,
        };
        let mut file = body.open().map_err(io_err)?;
        let mut hasher = crate::digest::HashingWriter::new(io::sink());
        let mut in_flight = tokio::task::JoinSet::new();
        let mut parts = Vec::new();
        let mut number = 1;
        loop {
            let mut chunk = Vec::with_capacity(PART_SIZE as usize);
            (&mut file)
                .take(PART_SIZE)
                .read_to_end(&mut chunk)
                .map_err(io_err)?;
            if chunk.is_empty() {
                break;
            }
            io::Write::write_all(&mut hasher, &chunk).map_err(io_err)?;
            while in_flight.len() >= PARTS_IN_FLIGHT {
                parts.push(joined(key, in_flight.join_next().await)?);
            }
            let sha = base64(Digest::of(&chunk).as_bytes());
            let req = self
                .client
                .upload_part()
                .bucket(&self.bucket)
                .key(self.full(key))
                .upload_id(upload_id)
                .part_number(number)
                .content_length(chunk.len() as i64)
                .checksum_sha256(sha.clone())
                .body(ByteStream::from(chunk));
            in_flight.spawn(async move {
                let out = req.customize().disable_payload_signing().send().await;
                (number, sha, out)
            });
            number += 1;
        }
        while let Some(done) = in_flight.join_next().await {
            parts.push(joined(key, Some(done))?);
        }
        parts.sort_by_key(|p| p.part_number());
        let (_, actual, size) = hasher.finish();
        if actual != body.sha256 || size != body.size {
            return Err(StoreError::BodyMismatch {
                key: key.clone(),
                expected: body.sha256,
                actual,
            });
        }
        let mut req = self
            .client
            .complete_multipart_upload()
            .bucket(&self.bucket)
            .key(self.full(key))
            .upload_id(upload_id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(parts))
                    .build(),
            );
        if conditional {
            req = req.if_none_match("*");
        }
        match req.send().await {
            Ok(out) => Ok(PutOutcome::Written(ETag(
                out.e_tag().unwrap_or_default().to_owned(),
            ))),
            Err(e) if is_precondition_failed(&e) => self.same_as_existing(key, body).await,
            Err(e) => Err(backend("CompleteMultipartUpload", key, &e)),
        }
    }
}

type PartResult = (
    i32,
    String,
    std::result::Result<
        aws_sdk_s3::operation::upload_part::UploadPartOutput,
        SdkError<
            aws_sdk_s3::operation::upload_part::UploadPartError,
            aws_sdk_s3::config::http::HttpResponse,
        >,
    >,
);

/// One finished part upload, as the completion request lists it.
fn joined(
    key: &Key,
    done: Option<std::result::Result<PartResult, tokio::task::JoinError>>,
) -> Result<CompletedPart> {
    let Some(done) = done else {
        return Err(StoreError::Backend {
            op: "UploadPart",
            key: key.to_string(),
            message: "no part upload in flight".into(),
            raw: None,
        });
    };
    let (number, sha, out) = done.map_err(|e| StoreError::Backend {
        op: "UploadPart",
        key: key.to_string(),
        message: e.to_string(),
        raw: None,
    })?;
    let out = out.map_err(|e| backend("UploadPart", key, &e))?;
    Ok(CompletedPart::builder()
        .part_number(number)
        .checksum_sha256(sha)
        .set_e_tag(out.e_tag().map(String::from))
        .build())
}
