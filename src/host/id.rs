//! Which host this is: `--host-id`, else the machine's hostname, checked
//! to be a valid report name.

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

fn hostname() -> std::io::Result<String> {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for writes of its length.
    if unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    Ok(String::from_utf8_lossy(&buf[..end]).into_owned())
}
