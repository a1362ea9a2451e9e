//! `verbatim publish`: build (or take the build), then put it in the
//! store; the work is `verbatim::publish`.

use anyhow::Result;

use super::flags;
use crate::cli::{Global, PublishArgs};
use crate::output::Printer;
use verbatim::publish::{publish, PublishOptions};
use verbatim::trust::keys::load_key;

pub fn run(g: &Global, args: &PublishArgs, printer: &Printer) -> Result<()> {
    let cfg = flags::build_config(g, &args.opts)?;
    // A bad key fails before anything is built or uploaded.
    let sign_key = args.sign_key.as_deref().map(load_key).transpose()?;
    let built = if args.prebuilt {
        verbatim::builder::load_built(&cfg)?
    } else {
        verbatim::builder::build(&cfg, &flags::build_options(&args.opts), printer)?
    };
    let store = flags::open_store(&cfg)?;
    let observers = flags::Observers::new(&cfg);
    let opts = PublishOptions {
        env: args.env.as_deref(),
        sign: sign_key.as_ref(),
        dry_run: args.dry_run,
        require_clean: args.require_clean,
        observers: observers.all(),
    };
    let report = publish(store.as_ref(), &cfg, &built, &opts, printer);
    observers.finish(printer);
    let report = report?;
    printer.result(built.id)?;
    printer.json(&report)?;
    Ok(())
}
