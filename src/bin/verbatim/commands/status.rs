//! `verbatim status` and `verbatim history`: read-only views of
//! environments (`verbatim::environments::views`), printed.

use anyhow::Result;
use serde::Serialize;

use super::flags;
use crate::cli::{Global, HistoryArgs, StatusArgs};
use crate::output::Printer;
use verbatim::environments::event::{kind_name, CheckStatus};
use verbatim::environments::reader::Verified;
use verbatim::environments::reports::{Liveness, State};
use verbatim::environments::views::{self, EnvCheckJson, EnvJson};
use verbatim::text::escape;

#[derive(Serialize)]
struct StatusJson {
    environments: Vec<EnvJson>,
}

#[derive(Serialize)]
struct HistoryJson<'a> {
    env: &'a str,
    /// Newest first; an event's `check` carries its `status` and `detail`.
    events: Vec<serde_json::Value>,
    /// With `--verify`: what the walk of the hash chain found.
    #[serde(skip_serializing_if = "Option::is_none")]
    verified: Option<Verified>,
    /// Hosts a person forgot (`hosts forget`), oldest first.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    forgotten: Vec<verbatim::environments::hosts::Forgotten>,
}

pub fn run_status(g: &Global, args: &StatusArgs, printer: &Printer) -> Result<()> {
    let store = flags::open_store_for(g)?;
    let reader = flags::reader(g, store.as_ref(), flags::concurrency(g))?;
    let cfg = flags::load_config(g, Default::default()).ok();
    let environments = views::status(&reader, cfg, args.env.as_deref(), printer)?;
    for e in &environments {
        print_env(e, args.hosts, printer)?;
    }
    printer.json(&StatusJson { environments })?;
    Ok(())
}

/// `text` from a host, escaped and indented under its line, line by line.
fn indent(text: &str) -> String {
    text.lines()
        .map(|l| format!("      {}", escape(l)))
        .collect::<Vec<_>>()
        .join("\n")
}

/// An environment's status line (and, with `--hosts`, a line per host).
fn print_env(e: &EnvJson, hosts: bool, printer: &Printer) -> Result<()> {
    let env = &e.env;
    let built_from = {
        let rev = e.revision.as_deref().map(|r| {
            let short: String = r.chars().take(12).collect();
            match e.dirty {
                true => format!("{short}+dirty"),
                false => short,
            }
        });
        match (rev.as_deref(), e.branch.as_deref()) {
            (Some(r), Some(b)) => format!("  rev {} ({})", escape(r), escape(b)),
            (Some(r), None) => format!("  rev {}", escape(r)),
            (None, Some(b)) => format!("  ({})", escape(b)),
            (None, None) => String::new(),
        }
    };
    let hosts_words = match (e.hosts.len(), e.hosts.len() - e.hosts_live) {
        (0, _) => String::new(),
        (_, 0) => format!("  {}/{} hosts", e.hosts_on_manifest, e.hosts_live),
        (_, away) => format!(
            "  {}/{} live hosts ({away} stale or stopped)",
            e.hosts_on_manifest, e.hosts_live
        ),
    };
    match (&e.manifest, e.seq, &e.time, &e.actor) {
        (Some(manifest), Some(seq), Some(time), Some(actor)) => printer.result(format!(
            "{env:<10} {manifest}  #{seq} {} by {}{built_from}{hosts_words}{}",
            escape(time),
            escape(actor),
            e.check.as_ref().map_or(String::new(), check_words)
        ))?,
        _ => printer.result(format!("{env:<10} (nothing promoted yet){hosts_words}"))?,
    }
    if let Some(url) = e.ci_url.as_deref() {
        printer.result(format!("{:<10} built by {}", "", escape(url)))?;
    }
    if hosts {
        for h in &e.hosts {
            let r = &h.report;
            let runs = match r.state {
                State::Active => r.manifest.clone(),
                _ => r.running.clone().unwrap_or_else(|| "nothing".into()),
            };
            let state = match r.state {
                State::Active => "active".to_owned(),
                State::Deploying => format!("deploying {}", short(&r.manifest)),
                State::Failed => format!("failed {}", short(&r.manifest)),
                State::Stale => "stale".to_owned(),
                State::Staged => format!("staged {}", short(&r.manifest)),
                State::Stopped => "stopped".to_owned(),
            };
            let alive = match h.liveness {
                Liveness::Live => h
                    .seen_secs
                    .map_or(String::new(), |s| format!("  seen {}", age(s))),
                Liveness::Stale => format!(
                    "  STALE: agent not seen for {}",
                    h.seen_secs.map_or("?".into(), age)
                ),
                Liveness::Stopped | Liveness::Unknown => String::new(),
            };
            printer.result(format!(
                "  {:<20} {runs}  {state}  {}{alive}{}",
                escape(&r.host).to_string(),
                h.age_secs.map_or("?".into(), age),
                r.detail
                    .as_deref()
                    .filter(|_| matches!(r.state, State::Failed | State::Stale | State::Stopped))
                    .map_or(String::new(), |d| format!("\n{}", indent(d)))
            ))?;
        }
    }
    Ok(())
}

pub fn run_history(g: &Global, args: &HistoryArgs, printer: &Printer) -> Result<()> {
    let store = flags::open_store_for(g)?;
    let reader = flags::reader(g, store.as_ref(), flags::concurrency(g))?;
    // A verbatim.toml disagreeing with the store's order is warned about.
    let cfg = flags::load_config(g, Default::default()).ok();
    let signers = args
        .allowed_signers
        .as_deref()
        .map(verbatim::trust::read_allowed_signers)
        .transpose()?;
    let history = views::history(
        &reader,
        cfg,
        &args.env,
        signers.as_ref(),
        (args.verify, args.limit),
        printer,
    )?;
    let views::History {
        events,
        mut signatures,
        verified,
    } = history;
    let signed = signatures.len();
    let mut json = Vec::with_capacity(events.len());
    for (e, check) in &events {
        let from = e.from.as_deref().map_or("nothing".into(), short);
        let mut line = format!(
            "#{:<4} {} {:<13} {} → {}  by {}",
            e.seq,
            escape(&e.time),
            kind_name(e.kind),
            from,
            short(&e.to),
            escape(&e.actor)
        );
        if let Some(r) = &e.rollout {
            line.push_str(&format!(
                "  rollout {}: {} wave {} of {}",
                r.id,
                r.step.name(),
                r.wave,
                short(&r.target)
            ));
            if let Some(d) = &r.detail {
                line.push_str(&format!(" ({})", escape(d)));
            }
        }
        if e.forced {
            line.push_str("  FORCED");
        }
        if let Some(r) = &e.reason {
            line.push_str(&format!("  ({})", escape(r)));
        }
        let mut value = serde_json::to_value(e)?;
        if let Some(sigs) = signatures.remove(&e.seq) {
            for s in &sigs {
                line.push_str(&match (&s.fingerprint, s.principals.as_slice()) {
                    (None, _) => "  BAD SIGNATURE".to_owned(),
                    (Some(fp), []) => format!("  signed by {fp}"),
                    (Some(_), p) => format!("  signed by {}", escape(&p.join(", "))),
                });
            }
            value["signatures"] = serde_json::to_value(sigs)?;
        }
        if let Some((status, detail)) = check {
            line.push_str(&format!(
                "  check {}",
                serde_json::to_value(status)?.as_str().unwrap_or("?")
            ));
            if let Some(c) = value.get_mut("check").and_then(|c| c.as_object_mut()) {
                c.insert("status".into(), serde_json::to_value(status)?);
                c.insert("detail".into(), serde_json::to_value(detail)?);
            }
        }
        if verified.is_none() {
            printer.result(line)?;
        }
        json.push(value);
    }
    if let Some(v) = &verified {
        printer.result(v.verdict(&args.env))?;
        if signed > 0 {
            let by = if args.allowed_signers.is_some() {
                ", by a key the allowed signers file lists"
            } else {
                ""
            };
            printer.result(format!(
                "{}: {signed} signed event(s), every signature verifies{by}; no unsigned event after the first signed one",
                args.env
            ))?;
        }
    }
    // Hosts forgotten are acts on the environment too, if not events.
    let forgotten = verbatim::environments::hosts::forgotten(store.as_ref(), &args.env)?;
    if verified.is_none() {
        for f in forgotten.iter().rev() {
            printer.result(format!(
                "      {} host {} forgotten by {}{}",
                escape(&f.time),
                escape(&f.host),
                escape(&f.actor),
                f.reason
                    .as_deref()
                    .map_or(String::new(), |r| format!("  ({})", escape(r)))
            ))?;
        }
    }
    printer.json(&HistoryJson {
        env: &args.env,
        events: json,
        verified,
        forgotten,
    })?;
    Ok(())
}

/// `12s ago`, `5m ago`, `3h ago`, `2d ago`.
fn age(secs: u64) -> String {
    match secs {
        s if s < 120 => format!("{s}s ago"),
        s if s < 7200 => format!("{}m ago", s / 60),
        s if s < 172_800 => format!("{}h ago", s / 3600),
        s => format!("{}d ago", s / 86_400),
    }
}

/// `  UNCHECKED: …` or `  check passed`, for the end of a status line.
fn check_words(c: &EnvCheckJson) -> String {
    let detail = c
        .detail
        .as_deref()
        .map_or(String::new(), |d| format!(" ({})", escape(d)));
    match c.status {
        CheckStatus::Passed => "  check passed".into(),
        CheckStatus::Pending => format!(
            "  UNCHECKED: canary check (#{}) not finished, may still be running until {}",
            c.seq,
            escape(&c.deadline)
        ),
        CheckStatus::Expired => format!(
            "  UNCHECKED: canary check (#{}) never finished (deadline {} passed)",
            c.seq,
            escape(&c.deadline)
        ),
        CheckStatus::Failed => format!("  UNCHECKED: canary check (#{}) failed{detail}", c.seq),
    }
}

/// `sha256:` and the first 12 hex digits.
fn short(id: &str) -> String {
    id.chars().take(19).collect()
}
