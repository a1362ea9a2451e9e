//! An S3-compatible bucket: AWS S3, MinIO, RustFS, Ceph, R2, Garage …
//!
//! The trait is synchronous; this store owns a small tokio runtime and one
//! shared SDK client and blocks on it, so callers may put from many threads
//! at once. Immutable keys are written with `If-None-Match: *` and a
//! sha256 checksum the server verifies (`x-amz-checksum-sha256`, computed
//! here: the SDK's default CRC32/aws-chunked trailers break several servers),
//! and the hex digest is kept in `x-amz-meta-sha256` so `head` can vouch for
//! it. Pointers use `If-Match`. Because some servers accept conditional
//! headers and ignore them, the first write of a run probes the server and
//! refuses to go on if a second create of the same key succeeds.

use std::io::{self, Read};
use std::sync::OnceLock;
use std::time::Duration;

use aws_sdk_s3::config::{Region, RequestChecksumCalculation, ResponseChecksumValidation};
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use aws_sdk_s3::Client;

use super::{
    Body, Data, ETag, Key, Listed, Object, ObjectMeta, PutMode, PutOptions, PutOutcome, Result,
    Store, StoreError,
};
use crate::digest::{base64, Digest};

/// Objects up to this size are sent in one PutObject (read into memory);
/// larger ones go up in parts of this size, streamed from disk.
const PART_SIZE: u64 = 8 << 20;
/// Parts uploaded at once for one large object (memory: this × PART_SIZE).
const PARTS_IN_FLIGHT: usize = 4;
/// Objects up to this size are read into memory by `get`.
const SMALL_OBJECT: u64 = 16 << 20;
/// Retries of `409 ConditionalRequestConflict` (the SDK retries 5xx itself).
const CONFLICT_RETRIES: u32 = 8;
const SHA256_META: &str = "sha256";

/// How to reach the bucket, beyond what the AWS chain provides.
#[derive(Debug, Clone, Default)]
pub struct S3Options {
    pub endpoint_url: Option<String>,
    pub region: Option<String>,
    pub path_style: bool,
    /// Allow servers that ignore conditional writes (HEAD-then-PUT: racy).
    pub allow_unconditional: bool,
    /// Access key and secret to use instead of the AWS chain (tests, embedding).
    pub static_credentials: Option<(String, String)>,
    /// The longest one store request may take, retries included
    /// [default: [`DEFAULT_TIMEOUT`]].
    pub timeout: Option<Duration>,
}

/// How long one store request may take, retries included, unless told.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

pub struct S3Store {
    rt: tokio::runtime::Runtime,
    client: Client,
    bucket: String,
    /// "" or "some/prefix/".
    prefix: String,
    allow_unconditional: bool,
    /// The endpoint, for messages.
    endpoint: String,
    timeout: Duration,
    /// Probe result: `Ok(true)` when the server honours conditional writes.
    conditional: OnceLock<std::result::Result<bool, String>>,
    /// Set by the probe: the server matches `If-Match` only against the
    /// bare ETag, without its quotes (Ceph radosgw 16).
    bare_etags: OnceLock<bool>,
}

impl S3Store {
    /// `url` is `s3://bucket[/prefix]`.
    pub fn open(url: &str, opts: &S3Options) -> std::result::Result<S3Store, String> {
        let rest = url.strip_prefix("s3://").ok_or("not an s3:// URL")?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(format!(
                "store URL `{url}` names no bucket (s3://bucket/prefix)"
            ));
        }
        let prefix = prefix.trim_matches('/');
        let prefix = if prefix.is_empty() {
            String::new()
        } else {
            format!("{prefix}/")
        };
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("verbatim-s3")
            .enable_all()
            .build()
            .map_err(|e| format!("starting the S3 client runtime: {e}"))?;
        let timeout = opts.timeout.unwrap_or(DEFAULT_TIMEOUT);
        let (client, endpoint) = rt.block_on(client(opts, timeout));
        let endpoint = endpoint.unwrap_or_else(|| {
            format!(
                "AWS S3 ({})",
                client.config().region().map_or("us-east-1", |r| r.as_ref())
            )
        });
        Ok(S3Store {
            rt,
            client,
            bucket: bucket.to_owned(),
            prefix,
            allow_unconditional: opts.allow_unconditional,
            endpoint,
            timeout,
            conditional: OnceLock::new(),
            bare_etags: OnceLock::new(),
        })
    }

    /// Says which endpoint failed to answer, and what to do about it.
    fn explain(&self, e: StoreError) -> StoreError {
        match e {
            StoreError::Unreachable {
                op,
                key,
                timed_out,
                detail,
            } => StoreError::Backend {
                op,
                key,
                raw: Some(detail.clone()),
                message: if timed_out && refuses_connections(&self.endpoint) {
                    // The SDK retried the refused connection until the
                    // timeout: say what actually happened.
                    format!(
                        "endpoint {} refused the connection: nothing listens there; check the endpoint URL and that the server is running",
                        self.endpoint
                    )
                } else if timed_out {
                    format!(
                        "endpoint {} did not answer within {} s; check the endpoint URL and the network, or raise --timeout (store.timeout)",
                        self.endpoint,
                        self.timeout.as_secs()
                    )
                } else {
                    format!(
                        "cannot reach endpoint {} ({detail}); check the endpoint URL and that the server is running",
                        self.endpoint
                    )
                },
            },
            e => e,
        }
    }

    fn full(&self, key: &Key) -> String {
        format!("{}{}", self.prefix, key.as_str())
    }

    /// Whether conditional writes can be trusted; probes once per run.
    fn conditional(&self) -> Result<bool> {
        let probed = self.conditional.get_or_init(|| {
            let probed = self.rt.block_on(self.probe());
            if probed == Ok(false) && self.allow_unconditional {
                // Once per run, not once per object.
                eprintln!(
                    "warning: {}: the server ignores conditional writes; writing with racy HEAD-then-PUT as --unsafe-no-conditional-writes asks",
                    self.location()
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
    fn if_match(&self, etag: &ETag) -> String {
        if self.bare_etags.get() == Some(&true) {
            etag.0.trim_matches('"').to_owned()
        } else {
            etag.0.clone()
        }
    }

    async fn head_async(&self, key: &Key) -> Result<Option<ObjectMeta>> {
        let res = self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(self.full(key))
            .send()
            .await;
        match res {
            Ok(out) => Ok(Some(object_meta(
                out.content_length(),
                out.e_tag(),
                out.metadata(),
            ))),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_not_found()) => Ok(None),
            Err(e) => Err(backend("HEAD", key, &e)),
        }
    }

    /// The existing object has the body's bytes (by its recorded sha256).
    async fn same_as_existing(&self, key: &Key, body: &Body<'_>) -> Result<PutOutcome> {
        let Some(existing) = self.head_async(key).await? else {
            return Err(StoreError::Backend {
                op: "PUT",
                key: key.to_string(),
                message: "the server refused the create because the key exists, but then said it does not".into(),
                raw: None,
            });
        };
        if existing.sha256 == Some(body.sha256) && existing.size == body.size {
            Ok(PutOutcome::Unchanged(existing.etag))
        } else {
            Err(StoreError::AlreadyExists { key: key.clone() })
        }
    }

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
        let mut attempt = 0;
        loop {
            let mut req = self
                .client
                .put_object()
                .bucket(&self.bucket)
                .key(self.full(key))
                .body(ByteStream::from(bytes.clone()))
                .content_length(bytes.len() as i64)
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

    /// Streams a large file up in parts, hashing as it goes; completes only
    /// if the bytes match the claimed digest.
    async fn multipart(
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

/// Whether a TCP connection to the host and port of `endpoint` (an
/// `http://` or `https://` URL) is refused right now: a closed port, as
/// opposed to a host that does not answer.
fn refuses_connections(endpoint: &str) -> bool {
    use std::net::{TcpStream, ToSocketAddrs};
    let (rest, default_port) = match endpoint.split_once("://") {
        Some(("http", rest)) => (rest, 80),
        Some(("https", rest)) => (rest, 443),
        _ => return false,
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let authority = authority.rsplit_once('@').map_or(authority, |(_, a)| a);
    let (host, port) = match authority.strip_prefix('[') {
        // [v6]:port
        Some(v6) => match v6.split_once(']') {
            Some((host, rest)) => (host, rest.strip_prefix(':')),
            None => return false,
        },
        None => match authority.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        },
    };
    let Ok(port) = port.map_or(Ok(default_port), str::parse::<u16>) else {
        return false;
    };
    let Ok(addrs) = (host, port).to_socket_addrs() else {
        return false;
    };
    let addrs: Vec<_> = addrs.collect();
    !addrs.is_empty()
        && addrs.iter().all(|a| {
            TcpStream::connect_timeout(a, Duration::from_secs(1))
                .is_err_and(|e| e.kind() == io::ErrorKind::ConnectionRefused)
        })
}

/// Metadata as HEAD and GET report it; the sha256 is the one verbatim
/// stored with the object (absent if someone else wrote it).
fn object_meta(
    size: Option<i64>,
    etag: Option<&str>,
    metadata: Option<&std::collections::HashMap<String, String>>,
) -> ObjectMeta {
    ObjectMeta {
        size: size.unwrap_or(0).max(0) as u64,
        etag: ETag(etag.unwrap_or_default().to_owned()),
        sha256: metadata
            .and_then(|m| m.get(SHA256_META))
            .and_then(|h| Digest::from_hex(h)),
    }
}

/// A client whose every request ends within `timeout`, retries included: a
/// connection and a first byte each get a third of it, so a silent server
/// is retried before the time runs out.
async fn client(opts: &S3Options, timeout: Duration) -> (Client, Option<String>) {
    let timeouts = aws_config::timeout::TimeoutConfig::builder()
        .connect_timeout(timeout / 3)
        .read_timeout(timeout / 3)
        .operation_attempt_timeout(timeout)
        .operation_timeout(timeout)
        .build();
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .timeout_config(timeouts)
        .retry_config(aws_config::retry::RetryConfig::standard().with_max_attempts(6));
    if let Some(url) = &opts.endpoint_url {
        loader = loader.endpoint_url(url);
    }
    if let Some(region) = &opts.region {
        loader = loader.region(Region::new(region.clone()));
    }
    if let Some((id, secret)) = &opts.static_credentials {
        loader = loader.credentials_provider(aws_sdk_s3::config::Credentials::new(
            id.clone(),
            secret.clone(),
            None,
            None,
            "verbatim-static",
        ));
    }
    let shared = loader.load().await;
    let mut b = aws_sdk_s3::config::Builder::from(&shared)
        .force_path_style(opts.path_style)
        .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
        .response_checksum_validation(ResponseChecksumValidation::WhenRequired);
    if shared.region().is_none() {
        // Self-hosted servers rarely care; AWS itself redirects.
        b = b.region(Region::new("us-east-1"));
    }
    let endpoint = shared.endpoint_url().map(String::from);
    (Client::from_conf(b.build()), endpoint)
}

fn code<E: ProvideErrorMetadata, R>(e: &SdkError<E, R>) -> Option<&str> {
    match e {
        SdkError::ServiceError(s) => s.err().code(),
        _ => None,
    }
}

fn status<E>(e: &SdkError<E, aws_sdk_s3::config::http::HttpResponse>) -> Option<u16> {
    e.raw_response().map(|r| r.status().as_u16())
}

fn is_precondition_failed<E: ProvideErrorMetadata>(
    e: &SdkError<E, aws_sdk_s3::config::http::HttpResponse>,
) -> bool {
    code(e) == Some("PreconditionFailed") || status(e) == Some(412)
}

fn is_conflict<E: ProvideErrorMetadata>(
    e: &SdkError<E, aws_sdk_s3::config::http::HttpResponse>,
) -> bool {
    code(e) == Some("ConditionalRequestConflict") || status(e) == Some(409)
}

fn is_not_found<E: ProvideErrorMetadata>(
    e: &SdkError<E, aws_sdk_s3::config::http::HttpResponse>,
) -> bool {
    matches!(code(e), Some("NoSuchKey" | "NotFound")) || status(e) == Some(404)
}

fn is_bad_digest<E: ProvideErrorMetadata>(
    e: &SdkError<E, aws_sdk_s3::config::http::HttpResponse>,
) -> bool {
    matches!(
        code(e),
        Some("BadDigest" | "XAmzContentSHA256Mismatch" | "InvalidDigest")
    )
}

/// One line a person can act on for an SDK failure; the SDK's whole
/// description is kept in `raw` for `--verbose`.
fn backend<E: ProvideErrorMetadata + std::error::Error + 'static>(
    op: &'static str,
    key: &(impl std::fmt::Display + ?Sized),
    e: &SdkError<E, aws_sdk_s3::config::http::HttpResponse>,
) -> StoreError {
    let raw = DisplayErrorContext(e).to_string();
    let lower = raw.to_ascii_lowercase();
    let unreachable = |timed_out| StoreError::Unreachable {
        op,
        key: key.to_string(),
        timed_out,
        detail: first_line(&raw),
    };
    let message = match e {
        SdkError::TimeoutError(_) => return unreachable(true),
        SdkError::DispatchFailure(d) if d.is_timeout() => return unreachable(true),
        SdkError::DispatchFailure(_) if lower.contains("loading credentials") || lower.contains("no credentials") => {
            "no AWS credentials found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE, or use SSO or an instance role".to_owned()
        }
        SdkError::DispatchFailure(_) if lower.contains("certificate") || lower.contains("tls") || lower.contains("handshake") => {
            format!("the TLS handshake with the endpoint failed ({}); check the endpoint URL and its certificate (a local server may want http://)", first_line(&raw))
        }
        SdkError::DispatchFailure(d) if d.is_io() => return unreachable(false),
        _ => match code(e) {
            Some("SignatureDoesNotMatch") => "the server rejected the request signature: the secret key does not belong to the access key (check AWS_SECRET_ACCESS_KEY or the profile)".to_owned(),
            Some("InvalidAccessKeyId") => "the server does not know this access key (check AWS_ACCESS_KEY_ID or the profile)".to_owned(),
            Some("NoSuchBucket") => "the bucket does not exist at this endpoint: create it, or fix the bucket in the store URL".to_owned(),
            Some("AccessDenied") => "access denied: these credentials may not do this here (check the bucket policy or the IAM permissions)".to_owned(),
            Some(c) => {
                let said = match e {
                    SdkError::ServiceError(s) => s.err().message().unwrap_or_default().to_owned(),
                    _ => String::new(),
                };
                format!("{c}: {said}").trim_end_matches([':', ' ']).to_owned()
            }
            None => match status(e) {
                Some(403) => "the server refused the credentials or their permissions (HTTP 403; a HEAD carries no reason): check AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and the bucket policy".to_owned(),
                Some(404) if op == "LIST" => "the bucket does not exist at this endpoint (HTTP 404)".to_owned(),
                Some(s) => format!("the server answered HTTP {s}"),
                None => first_line(&raw),
            },
        },
    };
    StoreError::Backend {
        op,
        key: key.to_string(),
        message,
        raw: Some(raw),
    }
}

/// The first line of an SDK description, without its Debug dump.
fn first_line(raw: &str) -> String {
    raw.split(" (")
        .next()
        .unwrap_or(raw)
        .lines()
        .next()
        .unwrap_or_default()
        .to_owned()
}

/// A blocking `Read` over the SDK's async body stream.
struct StreamReader {
    handle: tokio::runtime::Handle,
    stream: ByteStream,
    /// The longest wait for the next chunk.
    timeout: Duration,
    /// The last chunk received and how much of it was read.
    chunk: Vec<u8>,
    pos: usize,
}

impl Read for StreamReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.chunk.len() {
            let next = self
                .handle
                .block_on(async { tokio::time::timeout(self.timeout, self.stream.next()).await })
                .map_err(|_| {
                    io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!("the server sent nothing for {} s", self.timeout.as_secs()),
                    )
                })?;
            match next {
                Some(Ok(bytes)) => {
                    self.chunk = bytes.to_vec();
                    self.pos = 0;
                }
                Some(Err(e)) => return Err(io::Error::other(e)),
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.chunk.len() - self.pos);
        buf[..n].copy_from_slice(&self.chunk[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

impl Store for S3Store {
    fn location(&self) -> String {
        format!("s3://{}/{}", self.bucket, self.prefix)
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
            reader: Box::new(StreamReader {
                handle: self.rt.handle().clone(),
                stream: out.body,
                timeout: self.timeout,
                chunk: Vec::new(),
                pos: 0,
            }),
            meta,
        })
    }

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
