//! `verbatim timestamp ENV --sign-key KEY`: re-sign an environment's
//! freshness; the work is `verbatim::environments::timestamp::vouch`.

use anyhow::Result;

use super::flags;
use crate::cli::{Global, TimestampArgs};
use crate::output::Printer;
use verbatim::environments::reader::Reader;
use verbatim::environments::timestamp::vouch;
use verbatim::trust::keys::load_key;

pub fn run(g: &Global, args: &TimestampArgs, printer: &Printer) -> Result<()> {
    let store = flags::open_store_for(g)?;
    let key = load_key(&args.sign_key)?;
    let state = Reader::new(store.as_ref(), flags::concurrency(g)).load(&args.env)?;
    let signed = vouch(store.as_ref(), &state, &key, args.valid_for.as_secs())?;
    printer.note(format!(
        "{}: event {} vouched for as the newest until {}",
        signed.env, signed.seq, signed.expires
    ));
    printer.result(format!("{} {} {}", signed.env, signed.seq, signed.expires))?;
    printer.json(&signed)?;
    Ok(())
}
