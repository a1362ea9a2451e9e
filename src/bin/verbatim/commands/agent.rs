//! `verbatim agent ENV --root DIR`: keep a host on an environment; the
//! loop is `verbatim::host::agent`.

use anyhow::{Context, Result};

use super::flags;
use crate::cli::{AgentArgs, Global};
use crate::output::Printer;
use verbatim::host::agent::{self, AgentRequest};

pub fn run(g: &Global, args: &AgentArgs, printer: &Printer) -> Result<()> {
    let host = flags::HostFlags::new(&args.host, &args.trust)?;
    let store = flags::open_host_store(g)?;
    let _signals = verbatim::signals::Signals::install().context("installing signal handlers")?;
    let req = AgentRequest {
        env: &args.env,
        host: host.host(),
        interval: args.interval,
    };
    agent::run(store.as_ref(), &req, printer, &mut |attempt| {
        if let Some(out) = attempt.deploy.as_ref().filter(|o| o.result != "unchanged") {
            printer.result(format!("{} {} {}", args.env, out.result, out.manifest))?;
        }
        printer.json_line(attempt)
    })
}
