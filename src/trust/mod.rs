//! Trust: who signed a release, and whether a host may act on it.
//!
//! A signature is an OpenSSH SSHSIG ([`sshsig`], what `ssh-keygen -Y sign`
//! writes) over a manifest's exact stored bytes in namespace
//! `verbatim-manifest@v1`, stored create-only at
//! `signatures/sha256/<manifest-hex>/<key-fingerprint>.sig` ([`stored`]); a
//! manifest may have many (the build's, QA's). Who may sign as whom is the
//! business of an `allowed_signers` file the verifier holds
//! ([`allowed_signers`]): a host's trust root lives on the host, never in
//! the bucket ([`Trust`]). Keys are made and read by [`keys`]; [`names`]
//! says where signatures are stored and how keys are named.
//!
//! This module and [`sshsig`] and [`allowed_signers`] are pure but for
//! reading a named file; [`stored`] reads and writes the store.

pub mod allowed_signers;
pub mod keys;
pub mod names;
pub mod sshsig;
pub mod stored;

pub use allowed_signers::{read_allowed_signers, AllowedSigners};
pub use names::{
    env_signatures_prefix, event_signatures_prefix, file_name, fingerprint,
    policy_signatures_prefix, signature_key, signatures_prefix, EVENT_NAMESPACE,
    MANIFEST_NAMESPACE, MAX_SIGNATURE_BYTES, POLICY_NAMESPACE, REPORT_NAMESPACE,
    TIMESTAMP_NAMESPACE,
};
pub use sshsig::{check, sign_bytes};
pub use stored::{signatures, store_signature, Checked, SignatureJson, Trust, TrustRules};
