//! `verbatim rollout status|pause|resume|abort`: thin over
//! `verbatim::environments::rolling`.

use anyhow::{Context, Result};

use super::flags;
use crate::cli::Global;
use crate::cli::{RolloutArgs, RolloutCommand};
use crate::output::Printer;
use verbatim::config::check_env_name;
use verbatim::environments::{rolling, rollout_status};
use verbatim::error::UsageError;
use verbatim::trust::keys::load_key;

pub fn run(g: &Global, args: &RolloutArgs, printer: &Printer) -> Result<()> {
    let cfg = flags::load_config(g, Default::default())?;
    let store = flags::open_store(&cfg)?;
    let observers = flags::Observers::new(&cfg);
    let reader = observers.attach(flags::reader(g, store.as_ref(), cfg.concurrency)?);
    let change = match &args.command {
        RolloutCommand::Status(a) => {
            check_env_name(&a.env).map_err(UsageError)?;
            return match rollout_status::status(&reader, &a.env)? {
                Some(s) => {
                    printer.result(&s.line)?;
                    Ok(printer.json(&s)?)
                }
                None => {
                    printer.result(format!("{}  no rollout yet", a.env))?;
                    Ok(printer.json(&serde_json::json!({ "env": a.env, "state": "none" }))?)
                }
            };
        }
        RolloutCommand::Pause(a) | RolloutCommand::Resume(a) | RolloutCommand::Abort(a) => a,
    };
    check_env_name(&change.env).map_err(UsageError)?;
    let key = change.sign_key.as_deref().map(load_key).transpose()?;
    let (env, reason, sign) = (&change.env, change.reason.as_deref(), key.as_ref());
    let json = match &args.command {
        RolloutCommand::Pause(_) => rolling::pause(&reader, env, reason, sign, printer),
        RolloutCommand::Abort(_) => rolling::abort(&reader, env, reason, sign, printer),
        _ => {
            // Like promote: a signal aborts the rollout, never half a step.
            let _signals = verbatim::signals::Signals::install()
                .context("installing the signal handlers of the rollout")?;
            rolling::resume(&reader, env, sign, printer)
        }
    };
    observers.finish(printer);
    let json = json?;
    printer.result(format!("{env} {} {}", json.state, json.target))?;
    Ok(printer.json(&json)?)
}
