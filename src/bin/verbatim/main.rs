//! The `verbatim` binary: parse, run, map the error to an exit code.

use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches};
use verbatim::error;

use crate::cli::Cli;

mod cli;
mod commands;
mod exit;
mod output;

fn main() -> ExitCode {
    if let Err(why) = cli::check_bool_vars() {
        let err = anyhow::Error::new(error::UsageError(why));
        if std::env::args_os().any(|a| a == "--json") {
            let doc = output::error_document(&err, None);
            println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
        }
        eprint!("{}", output::error_report(&err, false));
        return ExitCode::from(error::USAGE);
    }
    // Colour is decided before parsing, so clap's own messages follow it.
    let color = color_choice();
    output::set_color(color);
    let parsed = Cli::command()
        .color(color)
        .try_get_matches()
        .and_then(|m| Cli::from_arg_matches(&m));
    let cli = match parsed {
        Ok(cli) => cli,
        Err(err) if err.kind() == clap::error::ErrorKind::InvalidUtf8 => {
            let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
            let why = output::invalid_utf8(Cli::command(), &args);
            let err = anyhow::Error::new(error::UsageError(why));
            if std::env::args_os().any(|a| a == "--json") {
                let doc = output::error_document(&err, None);
                println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
            }
            eprint!("{}", output::error_report(&err, false));
            return ExitCode::from(error::USAGE);
        }
        Err(err) => {
            if err.use_stderr() && std::env::args_os().any(|a| a == "--json") {
                // Even a usage error is one JSON document with --json.
                // clap's message is the lines before its usage block.
                let text = err.render().to_string();
                let lines: Vec<&str> = text.lines().take_while(|l| !l.is_empty()).collect();
                let message = lines
                    .join(" ")
                    .split_whitespace()
                    .collect::<Vec<_>>()
                    .join(" ");
                let message = message.trim_start_matches("error: ").to_owned();
                let doc = output::error_document(&error::UsageError(message).into(), None);
                println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
            }
            match output::clap_error_report(&err) {
                Some(report) => {
                    eprint!("{report}");
                    return ExitCode::from(error::USAGE);
                }
                None => err.exit(), // help, version, and usage errors as clap prints them
            }
        }
    };
    let verbose = cli.global.verbose;
    match commands::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) if exit::is_broken_pipe(&err) => ExitCode::SUCCESS,
        Err(err) => {
            eprint!("{}", output::error_report(&err, verbose));
            exit::code_for(&err)
        }
    }
}

/// `--color WHEN` (or `--color=WHEN`) from the raw arguments, else auto.
/// Read as `OsString`s: an argument that is not UTF-8 is clap's to refuse.
fn color_choice() -> clap::ColorChoice {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let value =
        args.iter()
            .enumerate()
            .find_map(|(i, a)| match a.to_str()?.strip_prefix("--color") {
                Some("") => args.get(i + 1).and_then(|v| v.to_str()),
                Some(rest) => rest.strip_prefix('='),
                None => None,
            });
    match value {
        Some("always") => clap::ColorChoice::Always,
        Some("never") => clap::ColorChoice::Never,
        _ => clap::ColorChoice::Auto,
    }
}
