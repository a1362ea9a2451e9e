//! `verbatim hosts list|forget`: thin over `verbatim::environments::hosts`
//! and `views::status`.

use anyhow::Result;

use super::flags;
use crate::cli::{Global, HostsArgs, HostsCommand};
use crate::output::Printer;
use verbatim::environments::{hosts, views};
use verbatim::text::escape;

pub fn run(g: &Global, args: &HostsArgs, printer: &Printer) -> Result<()> {
    let store = flags::open_store_for(g)?;
    match &args.command {
        HostsCommand::Forget { id, env, reason } => {
            let f = hosts::forget(store.as_ref(), env, id, reason.clone())?;
            printer.note(format!(
                "{env}: host {} forgotten (last heard of {}); it comes back if it reports again",
                escape(&f.host),
                f.seen
            ));
            printer.result(format!("{env} forgot {}", escape(&f.host)))?;
            Ok(printer.json(&f)?)
        }
        HostsCommand::List { env } => {
            let reader = flags::reader(g, store.as_ref(), flags::concurrency(g))?;
            let cfg = flags::load_config(g, Default::default()).ok();
            let envs = views::status(&reader, cfg, env.as_deref(), printer)?;
            let mut json = Vec::new();
            for e in &envs {
                for h in &e.hosts {
                    let r = &h.report;
                    printer.result(format!(
                        "{:<10} {:<20} {:<8} {:<8} {}",
                        e.env,
                        escape(&r.host).to_string(),
                        serde_json::to_value(h.liveness)?.as_str().unwrap_or("?"),
                        serde_json::to_value(r.state)?.as_str().unwrap_or("?"),
                        r.running.as_deref().unwrap_or("nothing")
                    ))?;
                }
                let gone = hosts::forgotten(store.as_ref(), &e.env)?;
                for f in &gone {
                    printer.result(format!(
                        "{:<10} {:<20} forgotten at {} by {}{}",
                        e.env,
                        escape(&f.host).to_string(),
                        escape(&f.time),
                        escape(&f.actor),
                        f.reason
                            .as_deref()
                            .map_or(String::new(), |r| format!(" ({})", escape(r)))
                    ))?;
                }
                json.push(serde_json::json!({
                    "env": e.env,
                    "hosts": e.hosts,
                    "forgotten": gone,
                }));
            }
            Ok(printer.json(&serde_json::json!({ "environments": json }))?)
        }
    }
}
