//! Where output goes: results on stdout, diagnostics and progress on stderr.
//!
//! With `--json` stdout carries exactly one JSON document and nothing else.
//! Progress bars are drawn only when stderr is a terminal, outside CI, and
//! not with `--json`, `--quiet` or `--no-progress`.
//!
//! Every line printed here and every error line passes through
//! [`escape`] (`verbatim::text`); JSON output is escaped by `serde_json` and
//! left as it is.

use std::fmt;
use std::io::{self, IsTerminal, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;

use verbatim::progress::{Bar, Level, Meter, Progress};
use verbatim::text::{escape, human_bytes, needs_escape, Lines};

pub struct Printer {
    json: bool,
    quiet: bool,
    verbose: bool,
    progress: bool,
    /// A `--json` document went to stdout: an error must not add another.
    printed: AtomicBool,
    /// What a command knew before it failed, for the `--json` error document.
    partial: Mutex<Option<serde_json::Value>>,
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
            printed: AtomicBool::new(false),
            partial: Mutex::new(None),
        }
    }

    /// Records what the command knew (an object: its fields join the
    /// `--json` error document) in case it fails before printing a result.
    pub fn partial<T: Serialize>(&self, value: &T) {
        if let Ok(v) = serde_json::to_value(value) {
            *self.partial.lock().unwrap_or_else(|e| e.into_inner()) = Some(v);
        }
    }

    /// With `--json`, prints the error document for `err` unless the command
    /// printed its own: `{"error": {"code", "kind", "message", "causes"}}`
    /// plus the fields of what [`Printer::partial`] recorded.
    pub fn json_error(&self, err: &anyhow::Error) -> io::Result<()> {
        if !self.json || self.printed.load(Ordering::SeqCst) {
            return Ok(());
        }
        let partial = self
            .partial
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        self.json(&error_document(err, partial))
    }

    /// A result line on stdout (suppressed with `--json`), escaped.
    pub fn result(&self, line: impl fmt::Display) -> io::Result<()> {
        if self.json {
            return Ok(());
        }
        writeln!(io::stdout().lock(), "{}", escape(&line.to_string()))
    }

    /// The `--json` document (only with `--json`).
    pub fn json<T: Serialize>(&self, value: &T) -> io::Result<()> {
        if !self.json {
            return Ok(());
        }
        self.printed.store(true, Ordering::SeqCst);
        let mut out = io::stdout().lock();
        serde_json::to_writer_pretty(&mut out, value)?;
        writeln!(out)
    }

    /// One line of a JSON Lines stream (only with `--json`): what a
    /// long-running command prints per step.
    pub fn json_line<T: Serialize>(&self, value: &T) -> io::Result<()> {
        if !self.json {
            return Ok(());
        }
        self.printed.store(true, Ordering::SeqCst);
        let mut out = io::stdout().lock();
        serde_json::to_writer(&mut out, value)?;
        writeln!(out)?;
        out.flush()
    }

    /// A diagnostic on stderr, unless `--quiet`; escaped.
    pub fn note(&self, line: impl fmt::Display) {
        if !self.quiet {
            diagnostic(format_args!("{}", escape(&line.to_string())));
        }
    }

    /// A diagnostic shown only with `--verbose`; escaped.
    pub fn detail(&self, line: impl fmt::Display) {
        if self.verbose {
            diagnostic(format_args!("{}", escape(&line.to_string())));
        }
    }

    /// A warning on stderr, even with `--quiet`; escaped.
    pub fn warn(&self, line: impl fmt::Display) {
        diagnostic(format_args!(
            "{} {}",
            paint("warning:", YELLOW),
            escape(&line.to_string())
        ));
    }
}

impl Progress for Printer {
    fn shows(&self, level: Level) -> bool {
        match level {
            Level::Note => !self.quiet,
            Level::Detail => self.verbose,
            Level::Warn => true,
        }
    }

    fn message(&self, level: Level, text: &str) {
        match level {
            Level::Note => self.note(text),
            Level::Detail => self.detail(text),
            Level::Warn => self.warn(text),
        }
    }

    fn bar(&self, total: u64, objects: Option<usize>, label: &'static str) -> Bar {
        if !self.progress {
            return Bar::hidden();
        }
        match objects {
            None => Bar::new(Box::new(BytesBar(bytes_bar(total, label)))),
            Some(n) => Bar::new(Box::new(objects_bar(total, n, label))),
        }
    }
}

/// A byte-counting bar on stderr.
fn bytes_bar(total: u64, label: &'static str) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
    let style = ProgressStyle::with_template(
        "{msg:>12} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} {eta}",
    )
    .map(|s| s.progress_chars("=> "))
    .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style);
    bar.set_message(label);
    bar
}

/// Draws a bytes [`Bar`].
struct BytesBar(ProgressBar);

impl Meter for BytesBar {
    fn advance(&self, bytes: u64) {
        self.0.inc(bytes);
    }

    fn object_done(&self, bytes: u64) {
        self.0.inc(bytes);
    }

    fn finish(&self) {
        self.0.finish_and_clear();
    }
}

/// Whether `error:` and `warning:` are coloured (decided once by `main`).
static COLOR: AtomicBool = AtomicBool::new(false);

const RED: &str = "\x1b[1;31m";
const YELLOW: &str = "\x1b[1;33m";

/// Decides colour for this run: `--color always|never`, else (`auto`) only
/// on a terminal, unless `NO_COLOR` is set (or `CLICOLOR_FORCE` forces it).
pub fn set_color(choice: clap::ColorChoice) {
    let set = |name: &str| std::env::var_os(name).is_some_and(|v| !v.is_empty());
    let on = match choice {
        clap::ColorChoice::Always => true,
        clap::ColorChoice::Never => false,
        clap::ColorChoice::Auto => {
            !set("NO_COLOR")
                && (set("CLICOLOR_FORCE")
                    || (io::stderr().is_terminal()
                        && std::env::var("TERM").map_or(true, |t| t != "dumb")))
        }
    };
    COLOR.store(on, Ordering::Relaxed);
}

/// `label` in `style` when colour is on; only labels verbatim writes are
/// painted, never outside text.
fn paint(label: &str, style: &str) -> String {
    if COLOR.load(Ordering::Relaxed) {
        format!("{style}{label}\x1b[0m")
    } else {
        label.to_owned()
    }
}

/// Writes one diagnostic line to stderr, ignoring failure: a closed stderr
/// (a cancelled CI job's log, a hung-up terminal) must not stop a rollback
/// half way, as `eprintln!`'s panic would.
fn diagnostic(args: fmt::Arguments<'_>) {
    let _ = writeln!(io::stderr().lock(), "{args}");
}

/// What one object costs on the bar besides its bytes: a request's worth
/// of time, so that 10,000 small assets and one big artifact each take
/// their share of the bar (bytes alone showed it nearly full with half the
/// objects to go).
const OBJECT_WEIGHT: u64 = 256 << 10;

/// Progress over many objects: the bar advances by bytes plus a fixed
/// weight per object; the message counts objects and bytes.
struct ObjectsBar {
    bar: ProgressBar,
    verb: &'static str,
    done: AtomicUsize,
    total: usize,
    bytes_done: AtomicU64,
    bytes_total: u64,
}

fn objects_bar(bytes: u64, objects: usize, verb: &'static str) -> ObjectsBar {
    let weight = bytes.saturating_add((objects as u64).saturating_mul(OBJECT_WEIGHT));
    let bar = ProgressBar::with_draw_target(Some(weight), ProgressDrawTarget::stderr());
    let style = ProgressStyle::with_template("[{bar:30}] {percent:>3}% {msg} {eta}")
        .map(|s| s.progress_chars("=> "))
        .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style);
    bar.set_message(format!("{verb} 0/{objects} objects"));
    ObjectsBar {
        bar,
        verb,
        done: AtomicUsize::new(0),
        total: objects,
        bytes_done: AtomicU64::new(0),
        bytes_total: bytes,
    }
}

impl Meter for ObjectsBar {
    fn advance(&self, bytes: u64) {
        self.bar.inc(bytes);
    }

    fn object_done(&self, bytes: u64) {
        let n = self.done.fetch_add(1, Ordering::Relaxed) + 1;
        let b = self.bytes_done.fetch_add(bytes, Ordering::Relaxed) + bytes;
        self.bar.inc(bytes.saturating_add(OBJECT_WEIGHT));
        self.bar.set_message(format!(
            "{} {n}/{} objects, {}/{}",
            self.verb,
            self.total,
            human_bytes(b),
            human_bytes(self.bytes_total)
        ));
    }

    fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

/// What `main` prints for an error: `error: …` and one `  caused by: …` per
/// cause, every line escaped; a [`Lines`] keeps its own line breaks.
pub fn error_report(err: &anyhow::Error, verbose: bool) -> String {
    let mut out = String::new();
    for (i, cause) in err.chain().enumerate() {
        let label = if i == 0 {
            format!("{} ", paint("error:", RED))
        } else {
            "  caused by: ".to_owned()
        };
        let lines = cause.downcast_ref::<Lines>().or_else(|| {
            cause
                .downcast_ref::<verbatim::config::ConfigError>()
                .map(verbatim::config::ConfigError::lines)
        });
        match lines {
            Some(lines) => out.push_str(&format!("{label}{lines}\n")),
            None => out.push_str(&format!("{label}{}\n", escape(&cause.to_string()))),
        }
        if let (true, Some(verbatim::store::StoreError::Backend { raw: Some(raw), .. })) =
            (verbose, cause.downcast_ref::<verbatim::store::StoreError>())
        {
            out.push_str(&format!("  raw: {}\n", escape(raw)));
        }
    }
    if let Some(hint) = denied_hint(err) {
        out.push_str(&format!("  hint: {}\n", escape(&hint)));
    }
    out
}

/// For a permission refused on a path: whose it is and what to run
/// (`safe_fs::denied_hint`), the path found in the messages of the chain
/// (the innermost naming one that exists, or whose parent does).
fn denied_hint(err: &anyhow::Error) -> Option<String> {
    let denied = err.chain().any(|c| {
        c.downcast_ref::<io::Error>()
            .is_some_and(|e| e.kind() == io::ErrorKind::PermissionDenied)
    });
    if !denied {
        return None;
    }
    let messages: Vec<String> = err.chain().map(|c| c.to_string()).collect();
    messages.iter().rev().find_map(|m| {
        m.split_whitespace().rev().find_map(|word| {
            let word = word.trim_matches(|c: char| "\"'`(),:;".contains(c));
            let path = std::path::Path::new(word);
            let there = path.exists() || path.parent().is_some_and(|p| p.is_dir());
            (word.contains('/') && !word.contains("://") && there)
                .then(|| verbatim::safe_fs::denied_hint(path))
                .flatten()
        })
    })
}

/// The `--json` document of a failure: `{"error": {"code", "kind",
/// "message", "causes"}}`, plus the fields of `partial` (an object) when
/// the command knew more (a refused promotion's gates).
pub fn error_document(
    err: &anyhow::Error,
    partial: Option<serde_json::Value>,
) -> serde_json::Value {
    let (code, kind) = crate::exit::code_and_kind(err);
    let mut doc = match partial {
        Some(serde_json::Value::Object(map)) => map,
        _ => serde_json::Map::new(),
    };
    doc.insert(
        "error".into(),
        serde_json::json!({
            "code": code,
            "kind": kind,
            "message": err.to_string(),
            "causes": err.chain().skip(1).map(|c| c.to_string()).collect::<Vec<_>>(),
        }),
    );
    if let Some(hint) = denied_hint(err) {
        doc["error"]["hint"] = hint.into();
    }
    serde_json::Value::Object(doc)
}

/// The usage error for arguments that are not UTF-8 where verbatim needs
/// text (clap's own error names none): which argument, as the command line
/// knows it (`<MANIFEST>`, `--to`), and its bytes escaped. Paths may be
/// any bytes; an argument clap took as a path is not the culprit.
pub fn invalid_utf8(cmd: clap::Command, args: &[std::ffi::OsString]) -> String {
    use std::os::unix::ffi::OsStrExt;
    let lossy: Vec<String> = args
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let named = cmd
        .clone()
        .try_get_matches_from(&lossy)
        .ok()
        .map(|m| text_args(&cmd, &m))
        .unwrap_or_default();
    let escaped = |raw: &std::ffi::OsString| raw.as_bytes().escape_ascii().to_string();
    let bad: Vec<(usize, &std::ffi::OsString, &String)> = args
        .iter()
        .zip(&lossy)
        .enumerate()
        .skip(1)
        .filter(|(_, (raw, _))| raw.to_str().is_none())
        .map(|(i, (raw, l))| (i, raw, l))
        .collect();
    // An argument clap takes as text; else (a path takes any bytes) the
    // first that is not UTF-8, by its place.
    let culprit = bad
        .iter()
        .find_map(|(_, raw, l)| {
            // `--to=VALUE` names its value after the `=`.
            let value = match l.split_once('=') {
                Some((flag, v)) if flag.starts_with("--") => v,
                _ => l.as_str(),
            };
            let (name, _) = named.iter().find(|(_, v)| v == value)?;
            Some(format!("{name} (`{}`)", escaped(raw)))
        })
        .or_else(|| {
            bad.first()
                .map(|(i, raw, _)| format!("argument {i} (`{}`)", escaped(raw)))
        })
        // clap reads flags from VERBATIM_* variables too.
        .or_else(|| {
            std::env::vars_os().find_map(|(k, v)| {
                let k = k.to_str().filter(|k| k.starts_with("VERBATIM_"))?;
                v.to_str()
                    .is_none()
                    .then(|| format!("environment variable {k} (`{}`)", escaped(&v)))
            })
        });
    format!(
        "{} is not valid UTF-8: verbatim takes it as text (names, digests, URLs); pass it in UTF-8",
        culprit.unwrap_or_else(|| "an argument".into())
    )
}

/// Every (argument name, value) of `m` (matched by `cmd`) whose argument
/// takes text, subcommands included: `<MANIFEST>` or `--to`.
fn text_args(cmd: &clap::Command, m: &clap::ArgMatches) -> Vec<(String, String)> {
    use std::any::TypeId;
    let mut out = Vec::new();
    for arg in cmd.get_arguments() {
        let parser = arg.get_value_parser().type_id();
        if parser == TypeId::of::<std::path::PathBuf>()
            || parser == TypeId::of::<std::ffi::OsString>()
        {
            continue;
        }
        let Ok(Some(values)) = m.try_get_raw(arg.get_id().as_str()) else {
            continue;
        };
        let name = match (arg.get_long(), arg.get_value_names()) {
            (Some(long), _) => format!("--{long}"),
            (None, Some([first, ..])) => format!("<{first}>"),
            (None, _) => format!("<{}>", arg.get_id().as_str().to_uppercase()),
        };
        for v in values {
            out.push((name.clone(), v.to_string_lossy().into_owned()));
        }
    }
    if let Some((sub, sub_m)) = m.subcommand() {
        if let Some(sub_cmd) = cmd.find_subcommand(sub) {
            out.extend(text_args(sub_cmd, sub_m));
        }
    }
    out
}

/// A command-line error whose quoted values hold control characters,
/// composed from its parts with each value escaped; `None` for every other
/// error, which clap prints itself (in colour on a terminal).
pub fn clap_error_report(err: &clap::Error) -> Option<String> {
    use clap::error::ContextValue;
    let hostile = err.context().any(|(_, v)| match v {
        ContextValue::String(s) => s.contains(needs_escape),
        ContextValue::Strings(v) => v.iter().any(|s| s.contains(needs_escape)),
        _ => false,
    });
    if !hostile {
        return None;
    }
    let mut out = format!("{} {}\n", paint("error:", RED), err.kind());
    for (kind, value) in err.context() {
        if let Some(kind) = kind.as_str() {
            let value = value.to_string();
            out.push_str(&format!("  {}: {}\n", kind.to_lowercase(), escape(&value)));
        }
    }
    if let Some(cause) = std::error::Error::source(err) {
        out.push_str(&format!("  caused by: {}\n", escape(&cause.to_string())));
    }
    out.push_str("\nFor more information, try '--help'.\n");
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_reports_keep_the_tools_lines_and_escape_the_values() {
        let lines = Lines {
            head: "2 problems:".into(),
            items: vec![
                "a.css:1:1: missing".into(),
                "b\nerror: forged\x1b[2J".into(),
            ],
        };
        let err = anyhow::Error::new(lines).context("building \x1b[31mapp");
        assert_eq!(
            error_report(&err, false),
            "error: building \\x1b[31mapp\n  caused by: 2 problems:\n  a.css:1:1: missing\n  b\\nerror: forged\\x1b[2J\n"
        );
        let err = anyhow::anyhow!("line one\nline two");
        assert_eq!(error_report(&err, false), "error: line one\\nline two\n");
    }
}
