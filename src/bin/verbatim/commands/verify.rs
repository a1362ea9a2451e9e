//! `verbatim verify`: re-read every object a manifest names and check it;
//! for an environment, its live site too.

use anyhow::Result;
use serde::Serialize;

use super::flags;
use crate::cli::{Global, VerifyArgs};
use crate::output::Printer;
use verbatim::environments::site::{verify_site, SiteJson};
use verbatim::objects::verify::{verify, VerifyJson, VerifyOptions};

/// `verify --json`: the manifest's report, and for an environment its site's.
#[derive(Serialize)]
struct Out<'a> {
    #[serde(flatten)]
    report: &'a VerifyJson,
    #[serde(skip_serializing_if = "Option::is_none")]
    site: Option<&'a SiteJson>,
}

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
    let report = match verify(store.as_ref(), &id, &opts, printer) {
        Ok(report) => report,
        Err(failed) => {
            if let Some(report) = &failed.report {
                printer.json(report)?;
            }
            return Err(failed.error);
        }
    };
    // An environment's name: its live site must be the release's entries.
    let env = verbatim::config::check_env_name(&args.manifest).is_ok();
    let site = match env.then(|| verify_site(store.as_ref(), &args.manifest, &id, printer)) {
        None | Some(Ok(None)) => None,
        Some(Ok(Some(site))) => Some(site),
        Some(Err(failed)) => {
            printer.json(&Out {
                report: &report,
                site: failed.report.as_deref(),
            })?;
            return Err(failed.error);
        }
    };
    printer.json(&Out {
        report: &report,
        site: site.as_ref(),
    })?;
    match &site {
        Some(s) => printer.result(format!("ok {id} and site/{}/", s.env))?,
        None => printer.result(format!("ok {id}"))?,
    }
    Ok(())
}
