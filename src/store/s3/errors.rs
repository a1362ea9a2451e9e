//! What an S3 failure means: the SDK's errors read as the store's
//! ([`StoreError`]), with a message a person can act on (wrong keys, no
//! bucket, a refused connection, a TLS failure) and the SDK's whole
//! description kept for `--verbose`; and the predicates the requests
//! branch on (a failed precondition, a conflict, a missing key, a bad
//! digest).
//!
//! It builds no request and holds no state.

use std::io;
use std::time::Duration;

use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};

use crate::store::api::StoreError;

fn code<E: ProvideErrorMetadata, R>(e: &SdkError<E, R>) -> Option<&str> {
    match e {
        SdkError::ServiceError(s) => s.err().code(),
        _ => None,
    }
}

fn status<E>(e: &SdkError<E, aws_sdk_s3::config::http::HttpResponse>) -> Option<u16> {
    e.raw_response().map(|r| r.status().as_u16())
}

pub(super) fn is_precondition_failed<E: ProvideErrorMetadata>(
    e: &SdkError<E, aws_sdk_s3::config::http::HttpResponse>,
) -> bool {
    code(e) == Some("PreconditionFailed") || status(e) == Some(412)
}

pub(super) fn is_conflict<E: ProvideErrorMetadata>(
    e: &SdkError<E, aws_sdk_s3::config::http::HttpResponse>,
) -> bool {
    code(e) == Some("ConditionalRequestConflict") || status(e) == Some(409)
}

pub(super) fn is_not_found<E: ProvideErrorMetadata>(
    e: &SdkError<E, aws_sdk_s3::config::http::HttpResponse>,
) -> bool {
    matches!(code(e), Some("NoSuchKey" | "NotFound")) || status(e) == Some(404)
}

pub(super) fn is_bad_digest<E: ProvideErrorMetadata>(
    e: &SdkError<E, aws_sdk_s3::config::http::HttpResponse>,
) -> bool {
    matches!(
        code(e),
        Some("BadDigest" | "XAmzContentSHA256Mismatch" | "InvalidDigest")
    )
}

/// One line a person can act on for an SDK failure; the SDK's whole
/// description is kept in `raw` for `--verbose`.
pub(super) fn backend<E: ProvideErrorMetadata + std::error::Error + 'static>(
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

/// Whether a TCP connection to the host and port of `endpoint` (an
/// `http://` or `https://` URL) is refused right now: a closed port, as
/// opposed to a host that does not answer.
pub(super) fn refuses_connections(endpoint: &str) -> bool {
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
