//! Where output goes: results on stdout, diagnostics and progress on stderr.
//!
//! With `--json` stdout carries exactly one JSON document and nothing else.
//! Progress bars are drawn only when stderr is a terminal, outside CI, and
//! not with `--json`, `--quiet` or `--no-progress`.

use std::io::{self, IsTerminal, Write};
use std::sync::atomic::{AtomicUsize, Ordering};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;

pub struct Printer {
    json: bool,
    quiet: bool,
    verbose: bool,
    progress: bool,
}

impl Printer {
    pub fn new(json: bool, quiet: bool, verbose: bool, no_progress: bool) -> Printer {
        let in_ci = std::env::var_os("CI").is_some_and(|v| !v.is_empty() && v != "false");
        let progress = !json && !quiet && !no_progress && !in_ci && io::stderr().is_terminal();
        Printer {
            json,
            quiet,
            verbose,
            progress,
        }
    }

    pub fn is_json(&self) -> bool {
        self.json
    }

    /// A result line on stdout (suppressed with `--json`).
    pub fn result(&self, line: impl std::fmt::Display) -> io::Result<()> {
        if self.json {
            return Ok(());
        }
        writeln!(io::stdout().lock(), "{line}")
    }

    /// The `--json` document (only with `--json`).
    pub fn json<T: Serialize>(&self, value: &T) -> io::Result<()> {
        if !self.json {
            return Ok(());
        }
        let mut out = io::stdout().lock();
        serde_json::to_writer_pretty(&mut out, value)?;
        writeln!(out)
    }

    /// A diagnostic on stderr, unless `--quiet`.
    pub fn note(&self, line: impl std::fmt::Display) {
        if !self.quiet {
            eprintln!("{line}");
        }
    }

    /// A diagnostic shown only with `--verbose`.
    pub fn detail(&self, line: impl std::fmt::Display) {
        if self.verbose {
            eprintln!("{line}");
        }
    }

    /// A warning on stderr, even with `--quiet`.
    pub fn warn(&self, line: impl std::fmt::Display) {
        eprintln!("warning: {line}");
    }

    /// A byte-counting progress bar, hidden when progress is off.
    pub fn bytes_bar(&self, total: u64, message: &'static str) -> ProgressBar {
        if !self.progress {
            return ProgressBar::hidden();
        }
        let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
        let style = ProgressStyle::with_template(
            "{msg:>12} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} {eta}",
        )
        .map(|s| s.progress_chars("=> "))
        .unwrap_or_else(|_| ProgressStyle::default_bar());
        bar.set_style(style);
        bar.set_message(message);
        bar
    }
}

/// Progress over many objects: bytes on the bar, objects in the message.
pub struct ObjectsBar {
    bar: ProgressBar,
    verb: &'static str,
    done: AtomicUsize,
    total: usize,
}

impl ObjectsBar {
    /// One more object of `bytes` is done.
    pub fn object_done(&self, bytes: u64) {
        let n = self.done.fetch_add(1, Ordering::Relaxed) + 1;
        self.bar.inc(bytes);
        if !self.bar.is_hidden() {
            self.bar
                .set_message(format!("{} {n}/{}", self.verb, self.total));
        }
    }

    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

impl Printer {
    /// A bar for `objects` objects of `bytes` bytes in all.
    pub fn objects_bar(&self, bytes: u64, objects: usize, verb: &'static str) -> ObjectsBar {
        ObjectsBar {
            bar: self.bytes_bar(bytes, verb),
            verb,
            done: AtomicUsize::new(0),
            total: objects,
        }
    }
}

/// `12.3 MiB`
pub fn human_bytes(n: u64) -> String {
    indicatif::HumanBytes(n).to_string()
}
