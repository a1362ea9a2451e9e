//! What happens to environments, told to whoever listens: a move stored
//! and applied, a host that reported a failure to the promoter waiting
//! for it. The rooms above (`notify`, `dashboard`) implement [`Observer`];
//! a command hands its observers to the [`Reader`] it works with
//! ([`Reader::observe`]), and the one place events are made (`moves`)
//! and the loops that read reports (`canary`, `rolling`) tell it.
//!
//! An observer never fails or stops an operation: it warns through the
//! `Progress` it is handed, and bounds its own time.

use super::event::Event;
use super::reader::Reader;
use crate::progress::Progress;

/// Something that happened to an environment.
#[derive(Debug, Clone, Copy)]
pub enum Notice<'a> {
    /// Event `event` is stored, and the pointer applies it: a promote, a
    /// rollback, an auto-rollback or a rollout's step (its `rollout` says
    /// which; `aborted` among them).
    Moved(&'a Event),
    /// A host reported that it failed to run `manifest` at the move the
    /// promoter waits for (`--wait-hosts`, a rollout's wave).
    HostFailed {
        /// The environment.
        env: &'a str,
        /// The host's id, as its report names it.
        host: &'a str,
        /// The manifest it failed to run.
        manifest: &'a str,
        /// Why, as its report says.
        detail: &'a str,
    },
}

/// Listens to [`Notice`]s. Called on the thread of the operation, after
/// the fact; must return promptly (a slow receiver is its own business).
pub trait Observer: Send + Sync {
    /// `notice` happened; `reader` is the operation's, for reading more.
    fn notice(&self, reader: &Reader<'_>, notice: &Notice<'_>, progress: &dyn Progress);
}

/// Tells `reader`'s observers of each host of `failed` (id, why) that
/// failed to run `manifest` in `env`.
pub fn tell_failed(
    reader: &Reader<'_>,
    (env, manifest): (&str, &str),
    failed: &[(String, String)],
    progress: &dyn Progress,
) {
    for (host, detail) in failed {
        let notice = Notice::HostFailed {
            env,
            host,
            manifest,
            detail,
        };
        reader.tell(&notice, progress);
    }
}
