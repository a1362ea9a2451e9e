//! `verbatim status` and `verbatim history`: read-only views of environments.

use anyhow::Result;
use serde::Serialize;

use crate::cli::{Global, HistoryArgs, StatusArgs};
use crate::config::Config;
use crate::environments::{self as envs, Event};
use crate::exit::UsageError;
use crate::output::{escape, Printer};
use crate::store::Store;

use super::history::{EnvState, Reader};
use super::policy::Order;

#[derive(Serialize)]
struct StatusJson {
    environments: Vec<EnvJson>,
}

#[derive(Serialize)]
struct EnvJson {
    env: String,
    /// `null` when nothing was ever promoted there.
    manifest: Option<String>,
    seq: Option<u64>,
    time: Option<String>,
    actor: Option<String>,
}

#[derive(Serialize)]
struct HistoryJson<'a> {
    env: &'a str,
    /// Newest first.
    events: Vec<Event>,
}

pub fn run_status(g: &Global, args: &StatusArgs, printer: &Printer) -> Result<()> {
    let store = super::open_store_for(g)?;
    let reader = Reader::new(store.as_ref(), super::concurrency(g));
    // A verbatim.toml disagreeing with the store's order is refused even
    // when one environment is asked for.
    let cfg = super::load_config(g, Default::default()).ok();
    let stored = super::policy::stored_order(&reader, cfg.as_ref())?;
    let names = match &args.env {
        Some(e) => {
            check_declared(e, stored, cfg, store.as_ref())?;
            vec![e.clone()]
        }
        None => env_names(stored, cfg, store.as_ref())?,
    };
    let mut out = StatusJson {
        environments: vec![],
    };
    for env in names {
        let state = reader.load(&env)?;
        note_pending(printer, &state);
        let p = state.pointer.map(|(p, _)| p);
        match &p {
            Some(p) => printer.result(format!(
                "{env:<10} {}  #{} {} by {}",
                p.manifest,
                p.seq,
                escape(&p.time),
                escape(&p.actor)
            ))?,
            None => printer.result(format!("{env:<10} (nothing promoted yet)"))?,
        }
        out.environments.push(EnvJson {
            env,
            manifest: p.as_ref().map(|p| p.manifest.clone()),
            seq: p.as_ref().map(|p| p.seq),
            time: p.as_ref().map(|p| p.time.clone()),
            actor: p.map(|p| p.actor),
        });
    }
    printer.json(&out)?;
    Ok(())
}

pub fn run_history(g: &Global, args: &HistoryArgs, printer: &Printer) -> Result<()> {
    let store = super::open_store_for(g)?;
    let reader = Reader::new(store.as_ref(), super::concurrency(g));
    // A verbatim.toml disagreeing with the store's order is refused here too.
    let cfg = super::load_config(g, Default::default()).ok();
    let stored = super::policy::stored_order(&reader, cfg.as_ref())?;
    check_declared(&args.env, stored, cfg, store.as_ref())?;
    let state = reader.load(&args.env)?;
    if state.events.is_empty() {
        printer.note(format!("{}: no history (nothing promoted yet)", args.env));
    }
    note_pending(printer, &state);
    let mut events = state.events;
    events.reverse();
    if let Some(n) = args.limit {
        events.truncate(n);
    }
    for e in &events {
        let from = e.from.as_deref().map_or("nothing".into(), short);
        let mut line = format!(
            "#{:<4} {} {:<13} {} → {}  by {}",
            e.seq,
            escape(&e.time),
            serde_json::to_value(e.kind)?.as_str().unwrap_or("?"),
            from,
            short(&e.to),
            escape(&e.actor)
        );
        if e.forced {
            line.push_str("  FORCED");
        }
        if let Some(r) = &e.reason {
            line.push_str(&format!("  ({})", escape(r)));
        }
        printer.result(line)?;
    }
    printer.json(&HistoryJson {
        env: &args.env,
        events,
    })?;
    Ok(())
}

/// Says so when the newest event is recorded but not yet applied.
fn note_pending(printer: &Printer, state: &EnvState) {
    if let Some(e) = state.pending() {
        printer.note(format!(
            "{}: {} (to {}) is recorded but the pointer has not moved yet; the next promote or rollback of {} completes it",
            state.env,
            envs::event_key(&state.env, e.seq),
            e.to,
            state.env
        ));
    }
}

/// `sha256:` and the first 12 hex digits.
fn short(id: &str) -> String {
    id.chars().take(19).collect()
}

/// The environments in order: the store's policy, else the config's order,
/// else, with neither, those found in the store.
/// An environment asked for by name must be one of the known ones (the
/// store's order, else the config's, else those with a pointer), with a
/// did-you-mean; when nothing names any environment, any name is looked up.
fn check_declared(
    env: &str,
    stored: Option<Order>,
    cfg: Option<Config>,
    store: &dyn Store,
) -> Result<()> {
    crate::config::check_env_name(env).map_err(UsageError)?;
    match env_names(stored, cfg, store) {
        Ok(known) if !known.iter().any(|k| k == env) => {
            Err(UsageError(crate::environments::undeclared(&known, env)).into())
        }
        _ => Ok(()),
    }
}

fn env_names(stored: Option<Order>, cfg: Option<Config>, store: &dyn Store) -> Result<Vec<String>> {
    if let Some(order) = stored {
        return Ok(order.names);
    }
    if let Some(cfg) = cfg {
        return Ok(cfg.order());
    }
    let mut names: Vec<String> = store
        .list("envs/")?
        .iter()
        .filter_map(|l| {
            l.key
                .as_str()
                .strip_prefix("envs/")?
                .strip_suffix(".json")
                .map(String::from)
        })
        .filter(|n| !n.contains('/'))
        .collect();
    names.sort();
    if names.is_empty() {
        return Err(UsageError(format!(
            "no environments in {} and no verbatim.toml to list them from",
            store.location()
        ))
        .into());
    }
    Ok(names)
}
