//! `verbatim policy show|set|history`: thin over
//! `verbatim::environments::policy_store`.

use anyhow::Result;
use serde::Serialize;

use super::flags;
use crate::cli::{Global, PolicyArgs, PolicyCommand, PolicyHistoryArgs, PolicySetArgs};
use crate::output::Printer;
use verbatim::environments::policy::{self, Kind, Policy, PolicyEvent};
use verbatim::environments::policy_store::{self, SetRequest};
use verbatim::environments::reader::Verified;
use verbatim::text::escape;

pub fn run(g: &Global, args: &PolicyArgs, printer: &Printer) -> Result<()> {
    match &args.command {
        PolicyCommand::Show => run_show(g, printer),
        PolicyCommand::Set(a) => run_set(g, a, printer),
        PolicyCommand::History(a) => run_history(g, a, printer),
    }
}

fn run_show(g: &Global, printer: &Printer) -> Result<()> {
    // Before anything was published, the config's order is what applies.
    let store = flags::open_store_any(g)?;
    let reader = flags::reader(g, store.as_ref(), flags::concurrency(g))?;
    let cfg = flags::load_config(g, Default::default()).ok();
    let out = policy_store::show(&reader, cfg.as_ref(), printer)?;
    printer.result(format!("order  {}", out.policy.order().join(" → ")))?;
    for e in out
        .policy
        .environments
        .iter()
        .filter(|e| !e.require.is_empty())
    {
        printer.result(format!(
            "signed {}: {}",
            e.name,
            escape(&e.require.join(", "))
        ))?;
    }
    for e in &out.policy.environments {
        if let Some(r) = &e.rollout {
            printer.result(format!("rollout {}: {}", e.name, r.describe()))?;
        }
    }
    if let Some(text) = &out.policy.allowed_signers {
        let n = text
            .lines()
            .filter(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
            .count();
        printer.result(format!("signers {n} allowed_signers line(s)"))?;
    }
    if let (Some(seq), Some(time), Some(actor)) = (out.seq, &out.time, &out.actor) {
        let mut line = format!(
            "set    policy event {seq}, {} by {}",
            escape(time),
            escape(actor)
        );
        if let Some(r) = &out.reason {
            line.push_str(&format!("  ({})", escape(r)));
        }
        printer.result(line)?;
    }
    printer.json(&out)?;
    Ok(())
}

fn run_set(g: &Global, args: &PolicySetArgs, printer: &Printer) -> Result<()> {
    let store = flags::open_store_any(g)?;
    let reader = flags::reader(g, store.as_ref(), flags::concurrency(g))?;
    let cfg = flags::load_config(g, Default::default()).ok();
    let req = SetRequest {
        order: args.order.clone(),
        require: args.require.clone(),
        sign_moves: args.sign_moves.clone(),
        rollout: args.rollout.clone(),
        allowed_signers: args.allowed_signers.clone(),
        reason: args.reason.clone(),
        expect_seq: args.expect_seq,
        sign_key: args
            .sign_key
            .as_deref()
            .map(verbatim::trust::keys::load_key)
            .transpose()?,
    };
    let out = policy_store::set(&reader, cfg.as_ref(), &req, printer)?;
    printer.result(format!(
        "policy {} {}",
        out.result,
        out.to.order().join(" → ")
    ))?;
    printer.json(&out)?;
    Ok(())
}

/// `policy history --json`.
#[derive(Serialize)]
struct HistoryJson {
    /// Newest first.
    events: Vec<PolicyEvent>,
    /// With `--verify`: what the walk of the hash chain found.
    #[serde(skip_serializing_if = "Option::is_none")]
    verified: Option<Verified>,
}

fn run_history(g: &Global, args: &PolicyHistoryArgs, printer: &Printer) -> Result<()> {
    let store = flags::open_store_for(g)?;
    let reader = flags::reader(g, store.as_ref(), flags::concurrency(g))?;
    let state = policy_store::load(&reader)?;
    // The load walked the chain and refused a broken one (exit 5).
    if args.verify {
        policy_store::verify_signatures(&reader, &state)?;
    }
    let verified = args
        .verify
        .then(|| Verified::of(&state.events, &state.digests));
    let mut events = state.events;
    if events.is_empty() {
        printer.note("the store holds no policy yet (nothing promoted yet)");
    }
    events.reverse();
    if let Some(n) = args.limit {
        events.truncate(n);
    }
    for e in &events {
        let kind = match e.kind {
            Kind::Init => "init",
            Kind::Set => "set",
        };
        let mut line = format!(
            "#{:<4} {} {:<4} ({}) → ({})  by {}",
            e.seq,
            escape(&e.time),
            kind,
            e.from.as_ref().map_or("nothing".into(), Policy::describe),
            e.to.describe(),
            escape(&e.actor)
        );
        if let Some(r) = &e.reason {
            line.push_str(&format!("  ({})", escape(r)));
        }
        if verified.is_none() {
            printer.result(line)?;
        }
    }
    if let Some(v) = &verified {
        printer.result(v.verdict(&policy::log().name))?;
    }
    printer.json(&HistoryJson { events, verified })?;
    Ok(())
}
