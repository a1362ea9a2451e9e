//! `verbatim agent ENV --root DIR`: keep a host on an environment; the
//! loop is `verbatim::host::agent`.

use anyhow::{Context, Result};

use super::flags;
use crate::cli::{AgentArgs, Global};
use crate::output::Printer;
use verbatim::host::agent::{self, AgentRequest};
use verbatim::host::deploy::Host;
use verbatim::host::id::host_id;
use verbatim::trust::keys::load_key;

pub fn run(g: &Global, args: &AgentArgs, printer: &Printer) -> Result<()> {
    let host = host_id(args.host.host_id.as_deref())?;
    let store = flags::open_store_for(g)?;
    let trust = flags::trust(&args.trust)?;
    let report_key = args.host.report_key.as_deref().map(load_key).transpose()?;
    let _signals = verbatim::signals::Signals::install().context("installing signal handlers")?;
    let req = AgentRequest {
        env: &args.env,
        host: Host {
            root: &args.host.root,
            id: &host,
            hook_env: &args.host.hook_env,
            trust: trust.as_ref(),
            report_key: report_key.as_ref(),
        },
        interval: args.interval,
    };
    agent::run(store.as_ref(), &req, printer, &mut |attempt| {
        if let Some(out) = attempt.deploy.as_ref().filter(|o| o.result != "unchanged") {
            printer.result(format!("{} {} {}", args.env, out.result, out.manifest))?;
        }
        printer.json_line(attempt)
    })
}
