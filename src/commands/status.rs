//! `verbatim status` and `verbatim history`: read-only views of environments.
//!
//! Both say where canary checks stand: `status` marks an environment whose
//! live manifest came with a check that has not passed (pending, expired or
//! failed) as unchecked; `history` shows each check's status beside the
//! move that started it. `history --verify` prints the verdict on the hash
//! chain instead of the events (the load already refused a broken one).

use anyhow::Result;

use crate::clock::now;
use serde::Serialize;

use crate::cli::{Global, HistoryArgs, StatusArgs};
use crate::config::Config;
use crate::environments::reports::{Report, State};
use crate::environments::{self as envs, CheckState, CheckStatus, Event};
use crate::error::UsageError;
use crate::output::Printer;
use crate::store::Store;
use crate::text::escape;

use crate::environments::policy_store::Order;
use crate::environments::reader::{EnvState, Reader, Verified};

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
    /// The canary check of the move that made `manifest` live; `null` when
    /// that move started none.
    check: Option<EnvCheckJson>,
    /// True when that check has not passed: `manifest` is live unverified.
    unchecked: bool,
    /// Where `manifest` was built from, as its provenance records it.
    revision: Option<String>,
    branch: Option<String>,
    ci_url: Option<String>,
    /// Hosts whose report says they run `manifest`, checked (`active`).
    hosts_on_manifest: usize,
    /// Every host that reports to the environment, by id.
    hosts: Vec<HostJson>,
}

/// A host's report, as `status --json` shows it.
#[derive(Serialize)]
struct HostJson {
    #[serde(flatten)]
    report: Report,
    /// Seconds since the report was written, by this machine's clock.
    age_secs: Option<u64>,
}

#[derive(Serialize)]
struct EnvCheckJson {
    /// The event that started it.
    seq: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    cmd: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    hosts: Option<u64>,
    deadline: String,
    /// `pending` (may still run), `expired` (never finished), `passed`, `failed`.
    status: CheckStatus,
    detail: Option<String>,
}

#[derive(Serialize)]
struct HistoryJson<'a> {
    env: &'a str,
    /// Newest first; an event's `check` carries its `status` and `detail`.
    events: Vec<serde_json::Value>,
    /// With `--verify`: what the walk of the hash chain found.
    #[serde(skip_serializing_if = "Option::is_none")]
    verified: Option<Verified>,
}

pub fn run_status(g: &Global, args: &StatusArgs, printer: &Printer) -> Result<()> {
    let store = super::open_store_for(g)?;
    let reader = Reader::new(store.as_ref(), super::concurrency(g));
    // A verbatim.toml disagreeing with the store's order is refused even
    // when one environment is asked for.
    let cfg = super::load_config(g, Default::default()).ok();
    let stored = crate::environments::policy_store::stored_order(&reader, cfg.as_ref())?;
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
        let check = match (state.live_event(), state.live_check(now())) {
            (Some(live), Some((status, detail))) => live.check.as_ref().map(|c| EnvCheckJson {
                seq: live.seq,
                cmd: c.cmd.clone(),
                hosts: c.hosts,
                deadline: c.deadline.clone(),
                status,
                detail,
            }),
            _ => None,
        };
        let unchecked = check.as_ref().is_some_and(|c| !c.status.passed());
        let p = state.pointer.map(|(p, _)| p);
        let reports = crate::environments::reports::read_reports(store.as_ref(), &env, printer)?;
        let on_manifest = reports
            .iter()
            .filter(|r| {
                r.state == State::Active && Some(&r.manifest) == p.as_ref().map(|p| &p.manifest)
            })
            .count();
        let provenance = match &p {
            Some(p) => {
                let id = p.manifest.parse().map_err(anyhow::Error::msg)?;
                Some(crate::objects::load_manifest(store.as_ref(), &id)?.provenance)
            }
            None => None,
        };
        let built_from = provenance.as_ref().map_or(String::new(), |pv| {
            let rev = pv.revision.as_deref().map(|r| &r[..r.len().min(12)]);
            match (rev, pv.branch.as_deref()) {
                (Some(r), Some(b)) => format!("  rev {} ({})", escape(r), escape(b)),
                (Some(r), None) => format!("  rev {}", escape(r)),
                (None, Some(b)) => format!("  ({})", escape(b)),
                (None, None) => String::new(),
            }
        });
        let hosts_words = match reports.len() {
            0 => String::new(),
            n => format!("  {on_manifest}/{n} hosts"),
        };
        match &p {
            Some(p) => printer.result(format!(
                "{env:<10} {}  #{} {} by {}{built_from}{hosts_words}{}",
                p.manifest,
                p.seq,
                escape(&p.time),
                escape(&p.actor),
                check.as_ref().map_or(String::new(), check_words)
            ))?,
            None => printer.result(format!("{env:<10} (nothing promoted yet){hosts_words}"))?,
        }
        if let Some(url) = provenance.as_ref().and_then(|pv| pv.ci_url.as_deref()) {
            printer.result(format!("{:<10} built by {}", "", escape(url)))?;
        }
        let now = now();
        let hosts: Vec<HostJson> = reports
            .into_iter()
            .map(|r| HostJson {
                age_secs: crate::clock::parse_rfc3339(&r.time).map(|t| now.saturating_sub(t)),
                report: r,
            })
            .collect();
        if args.hosts {
            for h in &hosts {
                let r = &h.report;
                let runs = match r.state {
                    State::Active => r.manifest.clone(),
                    _ => r.running.clone().unwrap_or_else(|| "nothing".into()),
                };
                let state = match r.state {
                    State::Active => "active".to_owned(),
                    State::Deploying => format!("deploying {}", short(&r.manifest)),
                    State::Failed => format!("failed {}", short(&r.manifest)),
                };
                printer.result(format!(
                    "  {:<20} {runs}  {state}  {}{}",
                    escape(&r.host).to_string(),
                    h.age_secs.map_or("?".into(), age),
                    r.detail
                        .as_deref()
                        .filter(|_| r.state == State::Failed)
                        .map_or(String::new(), |d| format!("  ({})", escape(d)))
                ))?;
            }
        }
        out.environments.push(EnvJson {
            env,
            manifest: p.as_ref().map(|p| p.manifest.clone()),
            seq: p.as_ref().map(|p| p.seq),
            time: p.as_ref().map(|p| p.time.clone()),
            actor: p.map(|p| p.actor),
            check,
            unchecked,
            revision: provenance.as_ref().and_then(|pv| pv.revision.clone()),
            branch: provenance.as_ref().and_then(|pv| pv.branch.clone()),
            ci_url: provenance.and_then(|pv| pv.ci_url),
            hosts_on_manifest: on_manifest,
            hosts,
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
    let stored = crate::environments::policy_store::stored_order(&reader, cfg.as_ref())?;
    check_declared(&args.env, stored, cfg, store.as_ref())?;
    let state = reader.load(&args.env)?;
    if state.events.is_empty() {
        printer.note(format!("{}: no history (nothing promoted yet)", args.env));
    }
    note_pending(printer, &state);
    let records = reader.check_records(&state)?;
    // The load walked the chain and refused a broken one (exit 5).
    let verified = args
        .verify
        .then(|| Verified::of(&state.events, &state.digests));
    let signers = args
        .allowed_signers
        .as_deref()
        .map(crate::trust::read_allowed_signers)
        .transpose()?;
    let mut signatures = crate::environments::signatures::event_signatures(
        store.as_ref(),
        &args.env,
        signers.as_ref(),
    )?;
    let signed = signatures.len();
    if args.verify {
        for (seq, sigs) in &signatures {
            if let Some(bad) = sigs.iter().find(|s| !s.valid) {
                return Err(crate::error::IntegrityError(format!(
                    "{}: {}; event {seq} was changed after it was signed, or the signature was planted",
                    bad.key,
                    bad.error.as_deref().unwrap_or("does not verify")
                ))
                .into());
            }
        }
    }
    let now = now();
    let checks: Vec<Option<CheckState>> = (0..state.events.len())
        .map(|i| {
            let seq = state.events[i].seq;
            envs::check_status(&state.events, i, records.get(&seq), now)
        })
        .collect();
    let mut events: Vec<(Event, Option<CheckState>)> =
        state.events.into_iter().zip(checks).collect();
    events.reverse();
    if let Some(n) = args.limit {
        events.truncate(n);
    }
    let mut json = Vec::with_capacity(events.len());
    for (e, check) in &events {
        let from = e.from.as_deref().map_or("nothing".into(), short);
        let mut line = format!(
            "#{:<4} {} {:<13} {} → {}  by {}",
            e.seq,
            escape(&e.time),
            envs::kind_name(e.kind),
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
            printer.result(format!(
                "{}: {signed} signed event(s), every signature verifies",
                args.env
            ))?;
        }
    }
    printer.json(&HistoryJson {
        env: &args.env,
        events: json,
        verified,
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
