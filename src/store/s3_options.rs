//! How to reach an S3-compatible bucket: settings that exist whether or
//! not this build can talk S3 (feature `s3`), so configuration reads the
//! same everywhere.

use std::time::Duration;

/// How to reach the bucket, beyond what the AWS chain provides.
#[derive(Debug, Clone, Default)]
pub struct S3Options {
    /// The server's URL (`http://localhost:9000`), for anything but AWS
    /// S3; none for the AWS chain's endpoint.
    pub endpoint_url: Option<String>,
    /// The region to sign for; none for the AWS chain's (`us-east-1` when
    /// it has none).
    pub region: Option<String>,
    /// Name the bucket in the path (`host/bucket/key`) instead of the host
    /// name (`bucket.host/key`), as most self-hosted servers want.
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
