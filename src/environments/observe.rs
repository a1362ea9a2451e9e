//! What happens to environments, told to whoever listens: a move stored
//! and applied, a host that reported a failure to the promoter waiting
//! for it. The rooms above (`notify`, `dashboard`) implement [`Observer`];
//! a command hands its observers to the [`Reader`](super::reader::Reader) it works with
//! ([`Reader::observe`](super::reader::Reader::observe)), and the one place events are made (`moves`)
//! and the loops that read reports (`canary`, `rolling`) tell it.
//!
//! An observer never fails or stops an operation: it warns through the
//! `Progress` it is handed, and bounds its own time.

pub use super::reader::{tell_failed, Notice, Observer};
