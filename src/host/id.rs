//! Which host this is: `--host-id`, else the id its root remembers
//! (`.verbatim/host-id`, written on first use), else the machine's
//! hostname; checked to be a valid report name. A root keeps one id, so a
//! deploy by hand without `--host-id` cannot report as a second host.

use std::path::Path;

use anyhow::{Context, Result};

use crate::environments::reports::check_host_id;
use crate::error::UsageError;

/// `given` (`--host-id`), else the hostname, checked.
pub fn host_id(given: Option<&str>) -> Result<String> {
    let id = match given {
        Some(id) => id.to_owned(),
        None => hostname().context("reading the hostname for the host id; pass --host-id")?,
    };
    check_host_id(&id).map_err(|e| {
        UsageError(match given {
            Some(_) => format!("--host-id / VERBATIM_HOST_ID: {e}"),
            None => format!("{e} (it is this machine's hostname); pass --host-id"),
        })
    })?;
    Ok(id)
}

/// Where a root remembers its host id.
const ID_FILE: &str = ".verbatim/host-id";

/// The host id of the root at `root`: `given` (`--host-id`), else the one
/// the root remembers, else the hostname. A `given` id other than the one
/// the root remembers is a usage error: one root is one host. Reads only;
/// a deploy makes the root remember it ([`remember`]).
pub fn for_root(root: &Path, given: Option<&str>) -> Result<String> {
    let file = root.join(ID_FILE);
    let stored = match crate::safe_fs::read_regular_limited(&file, 256) {
        Ok(bytes) => Some(String::from_utf8_lossy(&bytes).trim().to_owned()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(e).with_context(|| format!("reading {}", file.display())),
    };
    match (given, stored) {
        (Some(g), Some(s)) if g != s => Err(UsageError(format!(
            "{} is host `{}` ({}), not `{}`: pass --host-id {}, or remove that file to rename this host (then `verbatim hosts forget {}` in each environment)",
            root.display(),
            crate::text::escape(&s),
            file.display(),
            crate::text::escape(g),
            crate::text::escape(&s),
            crate::text::escape(&s)
        ))
        .into()),
        (None, Some(s)) => {
            check_host_id(&s).map_err(|e| UsageError(format!("{}: {e}", file.display())))?;
            Ok(s)
        }
        (given, _) => host_id(given),
    }
}

/// Makes the root at `root` (which exists) remember host id `id`, unless
/// it remembers one already.
pub fn remember(root: &Path, id: &str) -> Result<()> {
    let file = root.join(ID_FILE);
    if file.exists() {
        return Ok(());
    }
    crate::safe_fs::create_dirs(root, Path::new(".verbatim"))
        .and_then(|dir| {
            let tmp = dir.join(".host-id.tmp");
            std::fs::write(&tmp, format!("{id}\n"))?;
            std::fs::rename(&tmp, &file)
        })
        .with_context(|| format!("remembering the host id in {}", file.display()))
}

fn hostname() -> std::io::Result<String> {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for writes of its length.
    if unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    Ok(String::from_utf8_lossy(&buf[..end]).into_owned())
}
