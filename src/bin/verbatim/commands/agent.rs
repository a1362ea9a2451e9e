//! `verbatim agent ENV --root DIR`: keep a host on an environment; the
//! loop is `verbatim::host::agent`. Also prints its systemd unit, and logs
//! as a service does (`--log-format`).

use std::io::Write;
use std::sync::Mutex;
use std::time::Duration;

use anyhow::{Context, Result};

use super::flags;
use crate::cli::{AgentArgs, Global, LogFormat};
use crate::output::Printer;
use verbatim::clock::{now, rfc3339};
use verbatim::error::UsageError;
use verbatim::host::agent::{self, AgentRequest, AttemptJson};
use verbatim::progress::{Bar, Level, Progress};

pub fn run(g: &Global, args: &AgentArgs, printer: &Printer) -> Result<()> {
    if args.print_systemd_unit {
        return print_unit(args);
    }
    let host = flags::HostFlags::new(&args.host, &args.trust)?;
    let _signals = verbatim::signals::Signals::install().context("installing signal handlers")?;
    let log = args.log_format.map(|format| ServiceLog {
        format,
        quiet: g.quiet,
        verbose: g.verbose,
        out: Mutex::new(std::io::stdout()),
    });
    let progress: &dyn Progress = match &log {
        Some(l) => l,
        None => printer,
    };
    // A local store not there yet is waited for (`agent::run`).
    let store = flags::host_store_any(g)?;
    let req = AgentRequest {
        env: &args.env,
        host: host.host(),
        interval: args.interval,
    };
    agent::run(store.as_ref(), &req, progress, &mut |attempt| match &log {
        Some(l) => l.result(attempt),
        None => {
            if let Some(out) = attempt.deploy.as_ref().filter(|o| o.result != "unchanged") {
                printer.result(format!("{} {} {}", args.env, out.result, out.manifest))?;
            }
            printer.json_line(attempt)
        }
    })
}

/// `--print-systemd-unit`: this command line, less the flag, as a unit.
fn print_unit(args: &AgentArgs) -> Result<()> {
    let exe = std::env::current_exe().context("finding this executable for ExecStart")?;
    let exe = exe
        .to_str()
        .ok_or_else(|| UsageError(format!("{} is not UTF-8", exe.display())))?;
    let mut argv: Vec<String> = Vec::new();
    for a in std::env::args_os().skip(1) {
        let a = a
            .into_string()
            .map_err(|a| UsageError(format!("argument {a:?} is not UTF-8")))?;
        if a != "--print-systemd-unit" {
            argv.push(a);
        }
    }
    if args.log_format.is_none() {
        argv.extend(["--log-format".into(), "text".into()]);
    }
    // A deploy's download and hooks feed no watchdog: leave them room.
    let watchdog = (args.interval * 20).max(Duration::from_secs(30 * 60));
    let unit = verbatim::host::service::systemd_unit(exe, &argv, watchdog);
    // The unit as it is: a file's lines, not a result line to escape.
    std::io::stdout().write_all(unit.as_bytes())?;
    Ok(())
}

/// An agent's log as a service writes it: one line per message or
/// result, each with its time, on stdout.
struct ServiceLog {
    format: LogFormat,
    quiet: bool,
    verbose: bool,
    out: Mutex<std::io::Stdout>,
}

impl ServiceLog {
    fn line(&self, level: &str, text: &str, fields: Option<serde_json::Value>) {
        let time = rfc3339(now());
        let line = match self.format {
            LogFormat::Text => format!(
                "{time} {level:<6} {}",
                verbatim::text::escape(text)
                    .to_string()
                    .replace('\n', " | ")
            ),
            LogFormat::Json => {
                let mut v = serde_json::json!({ "time": time, "level": level, "message": text });
                if let (Some(serde_json::Value::Object(extra)), Some(obj)) =
                    (fields, v.as_object_mut())
                {
                    obj.extend(extra);
                }
                v.to_string()
            }
        };
        if let Ok(mut out) = self.out.lock() {
            // A log that cannot be written is dropped, never a panic.
            let _ = writeln!(out, "{line}").and_then(|()| out.flush());
        }
    }

    fn result(&self, attempt: &AttemptJson) -> std::io::Result<()> {
        let text = match (&attempt.deploy, &attempt.error) {
            (Some(d), _) => format!(
                "{} {} {}",
                d.env.as_deref().unwrap_or(""),
                d.result,
                d.manifest
            ),
            (None, Some(e)) => format!("failed: {e}"),
            (None, None) => "config changed".to_owned(),
        };
        self.line("result", &text, serde_json::to_value(attempt).ok());
        Ok(())
    }
}

impl Progress for ServiceLog {
    fn shows(&self, level: Level) -> bool {
        match level {
            Level::Warn => true,
            Level::Note => !self.quiet,
            Level::Detail => self.verbose,
        }
    }

    fn message(&self, level: Level, text: &str) {
        if self.shows(level) {
            let name = match level {
                Level::Warn => "warn",
                Level::Note => "note",
                Level::Detail => "detail",
            };
            self.line(name, text, None);
        }
    }

    fn bar(&self, _total: u64, _objects: Option<usize>, _label: &'static str) -> Bar {
        Bar::hidden()
    }
}
