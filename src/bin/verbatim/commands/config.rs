//! `verbatim config set|show|history|rollback`: thin over
//! `verbatim::environments::configure`.

use anyhow::Result;

use super::flags;
use crate::cli::{ConfigArgs, ConfigCommand, Global};
use crate::output::Printer;
use verbatim::environments::configure::{self, SetJson, SetRequest};
use verbatim::environments::envconfig::Kind;
use verbatim::text::escape;
use verbatim::trust::keys::load_key;

pub fn run(g: &Global, args: &ConfigArgs, printer: &Printer) -> Result<()> {
    let store = flags::open_store_any(g)?;
    let reader = flags::reader(g, store.as_ref(), flags::concurrency(g))?;
    let cfg = flags::load_config(g, Default::default()).ok();
    let cfg = cfg.as_ref();
    match &args.command {
        ConfigCommand::Set(a) => {
            let req = SetRequest {
                env: a.env.clone(),
                set: a.pairs.clone(),
                unset: a.unset.clone(),
                reason: a.change.reason.clone(),
                sign_key: a.change.sign_key.as_deref().map(load_key).transpose()?,
            };
            let out = configure::set(&reader, cfg, &req, printer)?;
            print_change(&out, printer)
        }
        ConfigCommand::Rollback(a) => {
            let key = a.change.sign_key.as_deref().map(load_key).transpose()?;
            let out = configure::rollback(
                &reader,
                cfg,
                (&a.env, a.to),
                a.change.reason.clone(),
                key.as_ref(),
                printer,
            )?;
            print_change(&out, printer)
        }
        ConfigCommand::Show(a) => {
            let out = configure::show(&reader, cfg, &a.env, printer)?;
            match out.seq {
                Some(seq) => printer.note(format!(
                    "config event {seq}, {} by {}{}",
                    escape(out.time.as_deref().unwrap_or("")),
                    escape(out.actor.as_deref().unwrap_or("")),
                    out.reason
                        .as_deref()
                        .map_or(String::new(), |r| format!("  ({})", escape(r)))
                )),
                None => printer.note(format!(
                    "{} has no config yet (`verbatim config set`)",
                    a.env
                )),
            }
            for (k, v) in &out.config {
                printer.result(format!("{k}={}", escape(v)))?;
            }
            Ok(printer.json(&out)?)
        }
        ConfigCommand::History(a) => {
            let mut out = configure::history(&reader, cfg, &a.env)?;
            if let Some(n) = a.limit {
                out.events.truncate(n);
            }
            for e in &out.events {
                let kind = match (e.kind, e.rollback_to) {
                    (Kind::Rollback, Some(to)) => format!("rollback to {to}"),
                    _ => "set".to_owned(),
                };
                let mut line = format!(
                    "#{:<4} {} {kind}: {}  by {}",
                    e.seq,
                    escape(&e.time),
                    e.describe(),
                    escape(&e.actor)
                );
                if let Some(r) = &e.reason {
                    line.push_str(&format!("  ({})", escape(r)));
                }
                if let Some(keys) = out.signed.get(&e.seq) {
                    line.push_str(&format!("  signed by {}", keys.join(", ")));
                }
                printer.result(line)?;
            }
            printer.note(out.verified.verdict(&format!("the config of {}", a.env)));
            Ok(printer.json(&out)?)
        }
    }
}

fn print_change(out: &SetJson, printer: &Printer) -> Result<()> {
    printer.result(format!(
        "{} {} config event {}",
        out.env, out.result, out.seq
    ))?;
    Ok(printer.json(out)?)
}
