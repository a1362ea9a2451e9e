//! The names of signatures: their SSHSIG namespaces, where they are
//! stored, and how a key is named (its fingerprint). Pure.

use ssh_key::{HashAlg, PublicKey};

use crate::digest::Digest;

/// The SSHSIG namespace of a manifest signature.
pub const MANIFEST_NAMESPACE: &str = "verbatim-manifest@v1";
/// The SSHSIG namespace of an event signature (`promote --sign-key`).
pub const EVENT_NAMESPACE: &str = "verbatim-event@v1";
/// The SSHSIG namespace of an environment's timestamp (its freshness).
pub const TIMESTAMP_NAMESPACE: &str = "verbatim-timestamp@v1";
/// The SSHSIG namespace of a policy event (`policy set --sign-key`).
pub const POLICY_NAMESPACE: &str = "verbatim-policy@v1";
/// The SSHSIG namespace of a host's report (`deploy --report-key`), made
/// over the report's exact stored bytes.
pub const REPORT_NAMESPACE: &str = "verbatim-report@v1";
/// The largest signature file read (an ed25519 one is ~300 bytes).
pub const MAX_SIGNATURE_BYTES: u64 = 64 << 10;

/// `signatures/sha256/<hex>/`
pub fn signatures_prefix(id: &Digest) -> String {
    format!("signatures/sha256/{}/", id.hex())
}

/// `signatures/sha256/<hex>/<fingerprint>.sig`
pub fn signature_key(id: &Digest, key: &PublicKey) -> String {
    format!("{}{}.sig", signatures_prefix(id), file_name(key))
}

/// `envs/<env>/signatures/<seq>/`: the signatures of one event.
pub fn event_signatures_prefix(env: &str, seq: u64) -> String {
    format!("envs/{env}/signatures/{seq}/")
}

/// `policy/signatures/<seq>/`: the signatures of one policy event.
pub fn policy_signatures_prefix(seq: u64) -> String {
    format!("policy/signatures/{seq}/")
}

/// `envs/<env>/signatures/`: the signatures of every event of `env`.
pub fn env_signatures_prefix(env: &str) -> String {
    format!("envs/{env}/signatures/")
}

/// `SHA256:<base64>` as ssh-keygen prints it.
pub fn fingerprint(key: &PublicKey) -> String {
    key.fingerprint(HashAlg::Sha256).to_string()
}

/// The fingerprint made file-name safe: `SHA256-<base64url>`.
pub fn file_name(key: &PublicKey) -> String {
    fingerprint(key)
        .replacen(':', "-", 1)
        .replace('+', "-")
        .replace('/', "_")
}
