//! `verbatim verify`: re-read every object a manifest names and check it.

use anyhow::Result;

use super::flags;
use crate::cli::{Global, VerifyArgs};
use crate::output::Printer;
use verbatim::objects::verify::{verify, VerifyOptions};

pub fn run(g: &Global, args: &VerifyArgs, printer: &Printer) -> Result<()> {
    let store = flags::open_store_for(g)?;
    let id = verbatim::environments::resolve::resolve_manifest(store.as_ref(), &args.manifest)?;
    let signers = args
        .allowed_signers
        .as_deref()
        .map(verbatim::trust::read_allowed_signers)
        .transpose()?;
    let opts = VerifyOptions {
        deep: args.deep,
        signers: signers.as_ref(),
        concurrency: flags::concurrency(g),
    };
    match verify(store.as_ref(), &id, &opts, printer) {
        Ok(report) => {
            printer.json(&report)?;
            printer.result(format!("ok {id}"))?;
            Ok(())
        }
        Err(failed) => {
            if let Some(report) = &failed.report {
                printer.json(report)?;
            }
            Err(failed.error)
        }
    }
}
