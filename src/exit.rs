//! Exit codes, and which error means which.
//!
//! Commands return `anyhow::Error`; [`code_for`] walks its cause chain for the
//! few typed errors that have their own code. Everything else is 1.

use std::process::ExitCode;

use crate::config::ConfigError;
use crate::store::{OpenError, StoreError};

pub const FAILURE: u8 = 1;
pub const USAGE: u8 = 2;
pub const GATE_REFUSED: u8 = 3;
pub const LOST_RACE: u8 = 4;
pub const INTEGRITY: u8 = 5;
pub const CHECK_FAILED: u8 = 6;
/// Another deploy or agent holds the host's lock (`--no-wait`, or a
/// second agent).
pub const BUSY: u8 = 7;
/// Added to the signal's number: 130 for SIGINT, 143 for SIGTERM, 129 for SIGHUP.
pub const SIGNALLED: u8 = 128;

/// Bad input the user can fix (a flag, an argument): exit 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// An object is missing or its bytes are wrong: exit 5.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct IntegrityError(pub String);

/// A promotion gate refused: exit 3.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct GateRefused(pub String);

/// A concurrent writer won: exit 4.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct LostRace(pub String);

/// A canary check failed (after an automatic rollback), or a deploy hook
/// or check failed on a host (after it flipped back): exit 6.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct CheckFailed(pub String);

/// SIGINT, SIGTERM or SIGHUP stopped a canary check (the environment was
/// rolled back, unless the message says why not): exit 128 + `signal`, as a
/// shell reports a process a signal ended.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct Interrupted {
    pub signal: i32,
    pub message: String,
}

pub fn code_for(err: &anyhow::Error) -> ExitCode {
    ExitCode::from(code_and_kind(err).0)
}

/// The exit code for `err` and its name in `--json` error documents:
/// `failure`, `usage`, `gate-refused`, `lost-race`, `integrity`,
/// `check-failed`, `busy` or `interrupted` (128 + a signal).
pub fn code_and_kind(err: &anyhow::Error) -> (u8, &'static str) {
    let code = code_of(err);
    let kind = match code {
        USAGE => "usage",
        GATE_REFUSED => "gate-refused",
        LOST_RACE => "lost-race",
        INTEGRITY => "integrity",
        CHECK_FAILED => "check-failed",
        BUSY => "busy",
        c if c > SIGNALLED => "interrupted",
        _ => "failure",
    };
    (code, kind)
}

fn code_of(err: &anyhow::Error) -> u8 {
    for cause in err.chain() {
        let code =
            if cause.is::<ConfigError>() || cause.is::<UsageError>() || cause.is::<OpenError>() {
                USAGE
            } else if cause.is::<GateRefused>() {
                GATE_REFUSED
            } else if cause.is::<LostRace>() {
                LOST_RACE
            } else if cause.is::<IntegrityError>() {
                INTEGRITY
            } else if cause.is::<CheckFailed>() {
                CHECK_FAILED
            } else if cause.is::<crate::host::Busy>() {
                BUSY
            } else if let Some(i) = cause.downcast_ref::<Interrupted>() {
                u8::try_from(i.signal)
                    .ok()
                    .and_then(|s| SIGNALLED.checked_add(s))
                    .unwrap_or(FAILURE)
            } else {
                match cause.downcast_ref::<StoreError>() {
                    Some(StoreError::PreconditionFailed { .. }) => LOST_RACE,
                    Some(
                        StoreError::AlreadyExists { .. }
                        | StoreError::BodyMismatch { .. }
                        | StoreError::NotAnObject { .. },
                    ) => INTEGRITY,
                    Some(StoreError::InvalidKey { .. }) => USAGE,
                    _ => match cause.downcast_ref::<crate::pack::PackError>() {
                        Some(crate::pack::PackError::BadGlob { .. }) => USAGE,
                        _ => continue,
                    },
                }
            };
        return code;
    }
    FAILURE
}

/// True when the error is only stdout having gone away (`verbatim … | head`).
pub fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
