//! Signing keys: making an ed25519 OpenSSH key pair (`verbatim key
//! generate`) and reading one to sign with. Keys are files the user owns:
//! never overwritten, never read through a symlink.

use std::fs;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::Serialize;
use ssh_key::{LineEnding, PrivateKey};

use super::names::{fingerprint, MANIFEST_NAMESPACE};
use crate::error::UsageError;

/// A key pair [`generate`] wrote, as `key generate --json` prints it.
#[derive(Serialize)]
pub struct KeyJson {
    /// The private key (0600).
    pub private_key: PathBuf,
    /// The public key beside it (`<private>.pub`).
    pub public_key: PathBuf,
    /// `SHA256:…`, as ssh-keygen prints it.
    pub fingerprint: String,
    /// The public key's line, as written to `public_key` (for an
    /// `allowed_signers` line); not part of the `--json` document.
    #[serde(skip)]
    pub public_line: String,
}

/// Writes a new ed25519 key pair: the private key at `out` (0600) and the
/// public key at `<out>.pub`; refuses to replace anything that is there.
pub fn generate(out: &Path, comment: Option<&str>) -> Result<KeyJson> {
    let public = public_path(out);
    for p in [out, &public] {
        if fs::symlink_metadata(p).is_ok() {
            return Err(UsageError(format!(
                "{} exists; verbatim never overwrites a key: choose another --out or move it away",
                p.display()
            ))
            .into());
        }
    }
    let mut key = PrivateKey::random(&mut ssh_key::rand_core::OsRng, ssh_key::Algorithm::Ed25519)
        .context("generating an ed25519 key")?;
    key.set_comment(comment.unwrap_or("verbatim"));
    let text = key.to_openssh(LineEnding::LF).context("encoding the key")?;
    write_new(out, text.as_bytes(), 0o600)?;
    let public_text = format!("{}\n", key.public_key().to_openssh()?);
    if let Err(e) = write_new(&public, public_text.as_bytes(), 0o644) {
        let _ = fs::remove_file(out);
        return Err(e);
    }
    Ok(KeyJson {
        private_key: out.to_owned(),
        public_key: public,
        fingerprint: fingerprint(key.public_key()),
        public_line: public_text.trim_end().to_owned(),
    })
}

fn public_path(private: &Path) -> PathBuf {
    let mut name = private.as_os_str().to_owned();
    name.push(".pub");
    PathBuf::from(name)
}

/// Creates `path` with `mode` (never replacing anything) and syncs it.
fn write_new(path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .with_context(|| format!("writing {}", path.display()))
}

/// Reads an unencrypted OpenSSH private key to sign with.
pub fn load_key(path: &Path) -> Result<PrivateKey> {
    let text = crate::safe_fs::read_regular(path)
        .with_context(|| format!("reading the signing key {}", path.display()))?;
    let key = PrivateKey::from_openssh(&text).map_err(|e| {
        UsageError(format!(
            "{} is not an OpenSSH private key ({e}); create one with `verbatim key generate --out FILE`",
            path.display()
        ))
    })?;
    if key.is_encrypted() {
        return Err(UsageError(format!(
            "{} is passphrase-protected, and verbatim reads unencrypted keys only: keep it in a CI secret, or sign with `ssh-keygen -Y sign -n {MANIFEST_NAMESPACE}` (ssh-agent, hardware keys) and add that with `verbatim sign --signature`",
            path.display()
        ))
        .into());
    }
    Ok(key)
}
