//! Exit codes: which error means which.
//!
//! Commands return `anyhow::Error`; [`code_for`] walks its cause chain for
//! the first error that has a class of its own (`verbatim::error::Class`):
//! the typed errors of `verbatim::error`, and the error types of lower rooms
//! that carry one (`StoreError::class`, `ConfigError::class`, …). This is
//! the only place that knows every such type; it sits at the top, beside
//! `main`. Everything else is 1.

use std::process::ExitCode;

use verbatim::config::ConfigError;
use verbatim::error::{self, Class};
use verbatim::pack::PackError;
use verbatim::store::{OpenError, StoreError};

/// The process's exit code for `err`.
pub fn code_for(err: &anyhow::Error) -> ExitCode {
    ExitCode::from(code_and_kind(err).0)
}

/// The exit code for `err` and its name in `--json` error documents
/// ([`error::kind_name`]).
pub fn code_and_kind(err: &anyhow::Error) -> (u8, &'static str) {
    let code = err
        .chain()
        .find_map(class_of)
        .map_or(error::FAILURE, Class::code);
    (code, error::kind_name(code))
}

/// The class of one cause, if it has one.
fn class_of(cause: &(dyn std::error::Error + 'static)) -> Option<Class> {
    error::class_of(cause)
        .or_else(|| {
            cause
                .downcast_ref::<StoreError>()
                .and_then(StoreError::class)
        })
        .or_else(|| cause.downcast_ref::<PackError>().and_then(PackError::class))
        .or_else(|| cause.downcast_ref::<ConfigError>().map(ConfigError::class))
        .or_else(|| cause.downcast_ref::<OpenError>().map(OpenError::class))
}

/// True when the error is only stdout having gone away (`verbatim … | head`).
pub fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
