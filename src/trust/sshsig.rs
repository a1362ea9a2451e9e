//! SSHSIG, byte-compatible with `ssh-keygen -Y sign` and `-Y verify`:
//! making a signature over some bytes in a namespace, and checking one.
//! Pure.

use anyhow::{Context, Result};
use ssh_key::{HashAlg, LineEnding, PrivateKey, PublicKey, SshSig};

use super::names::fingerprint;

/// Checks an armored signature over `msg` in `namespace`: it parses, was
/// made in that namespace, and verifies with the key it carries. Returns
/// that key (who signed is a separate question: [`AllowedSigners`](super::AllowedSigners)).
pub fn check(armored: &[u8], msg: &[u8], namespace: &str) -> Result<PublicKey, String> {
    let sig = SshSig::from_pem(armored).map_err(|e| format!("not an SSH signature ({e})"))?;
    if sig.namespace() != namespace {
        return Err(format!(
            "made for namespace `{}`, not `{namespace}`",
            sig.namespace()
        ));
    }
    let key = PublicKey::from(sig.public_key().clone());
    key.verify(namespace, msg, &sig).map_err(|_| {
        format!(
            "does not verify with its key {} over these bytes",
            fingerprint(&key)
        )
    })?;
    Ok(key)
}

/// An armored SSHSIG of `msg`, as `ssh-keygen -Y sign` makes it.
pub fn sign_bytes(key: &PrivateKey, namespace: &str, msg: &[u8]) -> Result<Vec<u8>> {
    let sig = key
        .sign(namespace, HashAlg::Sha512, msg)
        .context("signing")?;
    Ok(sig.to_pem(LineEnding::LF)?.into_bytes())
}
