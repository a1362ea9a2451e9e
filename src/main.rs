//! The `verbatim` binary: parse, run, map the error to an exit code.

use std::process::ExitCode;

use clap::Parser;
use verbatim::{cli::Cli, commands, exit, output};

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => match output::clap_error_report(&err) {
            Some(report) => {
                eprint!("{report}");
                return ExitCode::from(exit::USAGE);
            }
            None => err.exit(), // help, version, and usage errors as clap prints them
        },
    };
    match commands::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) if exit::is_broken_pipe(&err) => ExitCode::SUCCESS,
        Err(err) => {
            eprint!("{}", output::error_report(&err));
            exit::code_for(&err)
        }
    }
}
