//! How an operation tells the person running it what it does: notes,
//! details, warnings and progress bars, through the [`Progress`] trait.
//!
//! The library reports; the command line decides what to draw (its printer
//! in the binary's `output.rs` writes notes to stderr and draws bars only on a
//! terminal). A caller from Rust passes [`Silent`], or its own
//! implementation. Messages are plain text: escaping what came from
//! outside is the drawer's business. The ground floor: it imports nothing
//! of the crate.

use std::fmt;
use std::io::{self, Read};

/// How much a message matters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// What is being done, or was: shown unless the user asked for quiet.
    Note,
    /// The small print: shown only when the user asked for it (`-v`).
    Detail,
    /// Something the user should act on or know of, even when quiet.
    Warn,
}

/// Where an operation reports to. Implementations must be usable from
/// several threads at once (uploads and checks run in parallel).
pub trait Progress: Sync {
    /// Whether a message of `level` would be shown (so a costly one need
    /// not be composed when it would not).
    fn shows(&self, level: Level) -> bool;
    /// One line for the person running verbatim.
    fn message(&self, level: Level, text: &str);
    /// A bar over `total` bytes; with `objects`, over that many objects of
    /// `total` bytes in all. `label` says what is measured (`uploading`).
    fn bar(&self, total: u64, objects: Option<usize>, label: &'static str) -> Bar;
}

impl dyn Progress + '_ {
    /// A [`Level::Note`].
    pub fn note(&self, line: impl fmt::Display) {
        self.say(Level::Note, line);
    }

    /// A [`Level::Detail`].
    pub fn detail(&self, line: impl fmt::Display) {
        self.say(Level::Detail, line);
    }

    /// A [`Level::Warn`].
    pub fn warn(&self, line: impl fmt::Display) {
        self.say(Level::Warn, line);
    }

    /// A bar counting bytes.
    pub fn bytes_bar(&self, total: u64, label: &'static str) -> Bar {
        self.bar(total, None, label)
    }

    /// A bar counting `objects` objects of `bytes` bytes in all.
    pub fn objects_bar(&self, bytes: u64, objects: usize, label: &'static str) -> Bar {
        self.bar(bytes, Some(objects), label)
    }

    fn say(&self, level: Level, line: impl fmt::Display) {
        if self.shows(level) {
            self.message(level, &line.to_string());
        }
    }
}

/// What draws a [`Bar`].
pub trait Meter: Send + Sync {
    /// `bytes` more are done.
    fn advance(&self, bytes: u64);
    /// One more object of `bytes` is done.
    fn object_done(&self, bytes: u64);
    /// The work is over: clear the bar.
    fn finish(&self);
}

/// A progress bar an operation advances; hidden bars cost nothing.
pub struct Bar(Option<Box<dyn Meter>>);

impl Bar {
    /// A bar nobody sees.
    pub fn hidden() -> Bar {
        Bar(None)
    }

    /// A bar drawn by `meter`.
    pub fn new(meter: Box<dyn Meter>) -> Bar {
        Bar(Some(meter))
    }

    /// `n` more bytes are done.
    pub fn inc(&self, n: u64) {
        if let Some(m) = &self.0 {
            m.advance(n);
        }
    }

    /// One more object of `bytes` is done.
    pub fn object_done(&self, bytes: u64) {
        if let Some(m) = &self.0 {
            m.object_done(bytes);
        }
    }

    /// The work is over: the bar goes.
    pub fn finish(&self) {
        if let Some(m) = &self.0 {
            m.finish();
        }
    }

    /// `inner`, advancing this bar by every byte read through it.
    pub fn wrap_read<R: Read>(&self, inner: R) -> BarRead<'_, R> {
        BarRead { bar: self, inner }
    }
}

/// A reader that advances a [`Bar`]: see [`Bar::wrap_read`].
pub struct BarRead<'a, R> {
    bar: &'a Bar,
    inner: R,
}

impl<R: Read> Read for BarRead<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.bar.inc(n as u64);
        Ok(n)
    }
}

/// Reports nothing: for callers that want none.
pub struct Silent;

impl Progress for Silent {
    fn shows(&self, _: Level) -> bool {
        false
    }

    fn message(&self, _: Level, _: &str) {}

    fn bar(&self, _: u64, _: Option<usize>, _: &'static str) -> Bar {
        Bar::hidden()
    }
}
