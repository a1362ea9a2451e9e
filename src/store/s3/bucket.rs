//! The store's state (one SDK client on a small runtime of its own, the
//! bucket and the key prefix) and what every operation builds on: opening
//! the store, a key's full name, HEAD, whether an existing object is the
//! one being written, and an unreachable endpoint explained.
//!
//! It writes nothing: puts are in the rooms beside it.

use std::sync::OnceLock;
use std::time::Duration;

use aws_sdk_s3::config::SharedHttpClient;
use aws_sdk_s3::config::{Region, RequestChecksumCalculation, ResponseChecksumValidation};
use aws_sdk_s3::Client;
use aws_smithy_http_client::proxy::ProxyConfig;
use aws_smithy_http_client::tls::{rustls_provider::CryptoMode, Provider};
use aws_smithy_http_client::{Builder, ConnectorBuilder};

use super::errors::{backend, refuses_connections};
use crate::digest::Digest;
use crate::store::api::{Body, ETag, Key, ObjectMeta, PutOutcome, Result, StoreError};
use crate::store::s3_options::{S3Options, DEFAULT_TIMEOUT};

/// The user metadata key the hex SHA-256 of an object's bytes is kept
/// under (`x-amz-meta-sha256`), for `head` to vouch for them.
pub(super) const SHA256_META: &str = "sha256";

/// A [`Store`](crate::store::api::Store) in an S3-compatible bucket, under a key
/// prefix.
pub struct S3Store {
    pub(super) rt: tokio::runtime::Runtime,
    pub(super) client: Client,
    pub(super) bucket: String,
    /// "" or "some/prefix/".
    pub(super) prefix: String,
    pub(super) allow_unconditional: bool,
    /// The endpoint, for messages.
    pub(super) endpoint: String,
    pub(super) timeout: Duration,
    /// Probe result: `Ok(true)` when the server honours conditional writes.
    pub(super) conditional: OnceLock<std::result::Result<bool, String>>,
    /// Set by the probe: the server matches `If-Match` only against the
    /// bare ETag, without its quotes (Ceph radosgw 16).
    pub(super) bare_etags: OnceLock<bool>,
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
    pub(super) fn explain(&self, e: StoreError) -> StoreError {
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

    /// `s3://bucket/prefix/`, as [`Store::location`](crate::store::api::Store::location) says.
    pub(super) fn url(&self) -> String {
        format!("s3://{}/{}", self.bucket, self.prefix)
    }

    /// The object name of `key`: the prefix, then the key.
    pub(super) fn full(&self, key: &Key) -> String {
        format!("{}{}", self.prefix, key.as_str())
    }

    pub(super) async fn head_async(&self, key: &Key) -> Result<Option<ObjectMeta>> {
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
    pub(super) async fn same_as_existing(&self, key: &Key, body: &Body<'_>) -> Result<PutOutcome> {
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
}

/// Metadata as HEAD and GET report it; the sha256 is the one verbatim
/// stored with the object (absent if someone else wrote it).
pub(super) fn object_meta(
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

/// The SDK's default HTTPS client, built as the SDK builds it (hyper,
/// rustls, the system's roots, `HTTPS_PROXY`/`NO_PROXY` from the
/// environment, the connect and read timeouts of each request), except
/// for the crypto: ring instead of aws-lc (see Cargo.toml).
fn https_client() -> SharedHttpClient {
    Builder::new().build_with_connector_fn(|settings, components| {
        let mut b = ConnectorBuilder::default().tls_provider(Provider::Rustls(CryptoMode::Ring));
        b.set_connector_settings(settings.cloned());
        if let Some(components) = components {
            b.set_sleep_impl(components.sleep_impl());
        }
        b.set_proxy_config(Some(ProxyConfig::from_env()));
        b.build()
    })
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
        .http_client(https_client())
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
