//! The classes of failure that have an exit code of their own, and the
//! typed errors that carry them.
//!
//! Library code returns `anyhow::Error`s whose cause chain may hold one of
//! these types (a refused gate, a lost race, a corrupt object, …); an error
//! type of a lower room that stands for such a class says so with a
//! `class()` method of its own (`StoreError::class`, `ConfigError::class`).
//! The binary's `exit.rs` walks a chain and turns the first class found
//! into the process's exit code. The ground floor: it imports nothing of the crate.

/// Any other failure: exit 1.
pub const FAILURE: u8 = 1;
/// A usage or configuration error: exit 2.
pub const USAGE: u8 = 2;
/// A promotion gate refused: exit 3.
pub const GATE_REFUSED: u8 = 3;
/// A concurrent writer won: exit 4.
pub const LOST_RACE: u8 = 4;
/// An object is missing or its bytes are wrong: exit 5.
pub const INTEGRITY: u8 = 5;
/// A canary check or a host's hook failed: exit 6.
pub const CHECK_FAILED: u8 = 6;
/// Another deploy or agent holds the host's lock (`--no-wait`, or a
/// second agent): exit 7.
pub const BUSY: u8 = 7;
/// A rollout paused (an inconclusive check, or `rollout pause`): its
/// controller stopped, and `rollout resume` goes on. Exit 8.
pub const PAUSED: u8 = 8;
/// Added to the signal's number: 130 for SIGINT, 143 for SIGTERM, 129 for SIGHUP.
pub const SIGNALLED: u8 = 128;

/// What kind of failure an error is; it decides the exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// Bad input the user can fix: a flag, an argument, the configuration.
    Usage,
    /// A promotion gate refused.
    GateRefused,
    /// A concurrent writer won a race.
    LostRace,
    /// An object or record is missing, corrupt or inconsistent.
    Integrity,
    /// A canary check or a deploy hook failed.
    CheckFailed,
    /// A host's lock is held by someone else.
    Busy,
    /// A rollout paused; `rollout resume` goes on.
    Paused,
    /// A signal stopped the work: its number.
    Interrupted(i32),
}

impl Class {
    /// The exit code of this class.
    pub fn code(self) -> u8 {
        match self {
            Class::Usage => USAGE,
            Class::GateRefused => GATE_REFUSED,
            Class::LostRace => LOST_RACE,
            Class::Integrity => INTEGRITY,
            Class::CheckFailed => CHECK_FAILED,
            Class::Busy => BUSY,
            Class::Paused => PAUSED,
            Class::Interrupted(signal) => u8::try_from(signal)
                .ok()
                .and_then(|s| SIGNALLED.checked_add(s))
                .unwrap_or(FAILURE),
        }
    }
}

/// The name of an exit code in `--json` error documents: `failure`,
/// `usage`, `gate-refused`, `lost-race`, `integrity`, `check-failed`,
/// `busy` or `interrupted` (128 + a signal).
pub fn kind_name(code: u8) -> &'static str {
    match code {
        USAGE => "usage",
        GATE_REFUSED => "gate-refused",
        LOST_RACE => "lost-race",
        INTEGRITY => "integrity",
        CHECK_FAILED => "check-failed",
        BUSY => "busy",
        PAUSED => "paused",
        c if c > SIGNALLED => "interrupted",
        _ => "failure",
    }
}

/// The class of `cause` when it is one of this module's error types.
pub fn class_of(cause: &(dyn std::error::Error + 'static)) -> Option<Class> {
    if cause.is::<UsageError>() {
        Some(Class::Usage)
    } else if cause.is::<GateRefused>() {
        Some(Class::GateRefused)
    } else if cause.is::<LostRace>() {
        Some(Class::LostRace)
    } else if cause.is::<IntegrityError>() || cause.is::<Stale>() {
        Some(Class::Integrity)
    } else if cause.is::<CheckFailed>() {
        Some(Class::CheckFailed)
    } else if cause.is::<Busy>() {
        Some(Class::Busy)
    } else if cause.is::<Paused>() {
        Some(Class::Paused)
    } else {
        cause
            .downcast_ref::<Interrupted>()
            .map(|i| Class::Interrupted(i.signal))
    }
}

/// Bad input the user can fix (a flag, an argument): exit 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// An object is missing or its bytes are wrong: exit 5.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct IntegrityError(pub String);

/// A host's newest signed statement about its environment is older than
/// its `--max-age` allows: the pointer may be frozen. Exit 5, and the host
/// reports `stale`.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Stale(pub String);

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

/// Another process holds a host's lock and we were asked not to wait:
/// exit 7.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Busy(pub String);

/// A rollout paused and its controller stopped: exit 8.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Paused(pub String);

/// SIGINT, SIGTERM or SIGHUP stopped the work (a canary check: the
/// environment was rolled back, unless the message says why not): exit
/// 128 + `signal`, as a shell reports a process a signal ended.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct Interrupted {
    /// The signal's number.
    pub signal: i32,
    /// What was stopped, and what was done about it.
    pub message: String,
}

/// An operation that failed after it had something to report: what it did
/// (the command prints it beside the error, `--json` included), and why it
/// failed.
#[derive(Debug)]
pub struct Failed<T> {
    /// What the operation did before it failed, when it got that far.
    pub report: Option<Box<T>>,
    /// Why it failed.
    pub error: anyhow::Error,
}

impl<T> From<anyhow::Error> for Failed<T> {
    fn from(error: anyhow::Error) -> Failed<T> {
        Failed {
            report: None,
            error,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_have_their_documented_codes() {
        assert_eq!(Class::Usage.code(), 2);
        assert_eq!(Class::GateRefused.code(), 3);
        assert_eq!(Class::LostRace.code(), 4);
        assert_eq!(Class::Integrity.code(), 5);
        assert_eq!(Class::CheckFailed.code(), 6);
        assert_eq!(Class::Busy.code(), 7);
        assert_eq!(Class::Paused.code(), 8);
        assert_eq!(Class::Interrupted(2).code(), 130);
        assert_eq!(Class::Interrupted(15).code(), 143);
        assert_eq!(Class::Interrupted(300).code(), FAILURE);
        assert_eq!(kind_name(143), "interrupted");
        assert_eq!(kind_name(1), "failure");
    }
}
