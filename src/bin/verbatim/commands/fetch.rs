//! `verbatim fetch ENV --into DIR`: download, verify and unpack a release
//! (no activation); the work is `verbatim::host::stage::fetch`.

use anyhow::Result;

use super::flags;
use crate::cli::{FetchArgs, Global};
use crate::output::Printer;
use verbatim::host::follow::resolve_for_fetch;
use verbatim::objects::load_manifest;

pub fn run(g: &Global, args: &FetchArgs, printer: &Printer) -> Result<()> {
    let store = flags::open_host_store(g)?;
    let trust = flags::trust(&args.trust)?;
    let id = resolve_for_fetch(store.as_ref(), &args.into, &args.target, trust.as_ref())?;
    let manifest = load_manifest(store.as_ref(), &id)?;
    if let Some(trust) = &trust {
        trust.check(store.as_ref(), &id, &manifest.to_canonical_bytes())?;
    }
    let fetched =
        verbatim::host::stage::fetch(store.as_ref(), &id, &manifest, &args.into, printer)?;
    printer.result(fetched.path.display())?;
    printer.json(&fetched)?;
    Ok(())
}
