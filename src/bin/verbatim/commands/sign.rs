//! `verbatim key generate` and `verbatim sign`: thin over `verbatim::trust`.

use anyhow::{Context, Result};

use super::flags;
use crate::cli::{Global, KeyArgs, KeyCommand, SignArgs};
use crate::output::Printer;
use verbatim::trust::{self, keys, stored::Signer};

pub fn run_key(_g: &Global, args: &KeyArgs, printer: &Printer) -> Result<()> {
    let KeyCommand::Generate { out, comment } = &args.command;
    let made = keys::generate(out, comment.as_deref())?;
    printer.note(format!(
        "wrote {} (private, 0600) and {}; list it in an allowed_signers file as:",
        made.private_key.display(),
        made.public_key.display(),
    ));
    printer.note(format!("  <principal> {}", made.public_line));
    printer.result(&made.fingerprint)?;
    printer.json(&made)?;
    Ok(())
}

pub fn run_sign(g: &Global, args: &SignArgs, printer: &Printer) -> Result<()> {
    let store = flags::open_store_for(g)?;
    let id = verbatim::environments::resolve::resolve_manifest(store.as_ref(), &args.manifest)?;
    let bytes = verbatim::objects::load_manifest(store.as_ref(), &id)?.to_canonical_bytes();
    let key;
    let signer = match (&args.key, &args.signature) {
        (Some(path), _) => {
            key = keys::load_key(path)?;
            Signer::Key(&key)
        }
        (None, Some(path)) => Signer::Signature {
            armored: verbatim::safe_fs::read_regular(path)
                .with_context(|| format!("reading {}", path.display()))?,
            source: path.clone(),
        },
        (None, None) => unreachable!("clap requires --key or --signature"),
    };
    let signed = trust::stored::sign_manifest(store.as_ref(), &id, &bytes, signer)?;
    printer.note(format!(
        "{id} signed by {}: {}",
        signed.fingerprint, signed.key
    ));
    printer.result(format!("{} {}", signed.result, signed.key))?;
    printer.json(&signed)?;
    Ok(())
}
