//! `verbatim fetch ENV --into DIR`: download, verify and unpack a release
//! (no activation); the work is `verbatim::host::stage::fetch`.

use anyhow::Result;

use super::flags;
use crate::cli::{FetchArgs, Global};
use crate::output::Printer;
use verbatim::environments::resolve::resolve_manifest;
use verbatim::objects::load_manifest;
use verbatim::trust::Trust;

pub fn run(g: &Global, args: &FetchArgs, printer: &Printer) -> Result<()> {
    let store = flags::open_store_for(g)?;
    let trust = Trust::new(args.trust.allowed_signers.as_deref(), &args.trust.require)?;
    let id = resolve_manifest(store.as_ref(), &args.target)?;
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
