//! `verbatim dashboard`: thin over `verbatim::dashboard`.

use anyhow::Result;

use super::flags;
use crate::cli::{DashboardArgs, Global};
use crate::output::Printer;
use verbatim::dashboard::{self, Options};

pub fn run(g: &Global, args: &DashboardArgs, printer: &Printer) -> Result<()> {
    let store = flags::open_store_for(g)?;
    let reader = flags::reader(g, store.as_ref(), flags::concurrency(g))?;
    let cfg = flags::load_config(g, Default::default()).ok();
    let opts = Options {
        envs: args.envs.clone(),
        history: args.history,
        stale_after_secs: args.stale_after,
    };
    let written = match &args.out {
        Some(out) => dashboard::write_dir(&reader, cfg.as_ref(), &opts, out, printer)?,
        None => dashboard::publish(&reader, cfg.as_ref(), &opts, printer)?,
    };
    printer.result(format!(
        "{}  {} environment(s), {} host(s), {} new diff page(s)",
        verbatim::text::escape(&written.page),
        written.environments,
        written.hosts,
        written.diffs_written.len()
    ))?;
    Ok(printer.json(&written)?)
}
