//! The `verbatim` binary: parse, run, map the error to an exit code.

use std::process::ExitCode;

use clap::Parser;
use verbatim::{cli::Cli, commands, exit};

fn main() -> ExitCode {
    let cli = Cli::parse();
    match commands::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) if exit::is_broken_pipe(&err) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err}");
            for cause in err.chain().skip(1) {
                eprintln!("  caused by: {cause}");
            }
            exit::code_for(&err)
        }
    }
}
