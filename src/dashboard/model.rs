//! The dashboard as a typed value: what the page shows, read from the
//! store through the operations `status`, `history` and `rollout status`
//! use, so the page and the commands never disagree.

use anyhow::Result;
use serde::Serialize;

use crate::clock::{now, parse_rfc3339, rfc3339};
use crate::config::Config;
use crate::environments::event::{kind_name, Event};
use crate::environments::reader::{EnvState, Reader};
use crate::environments::reports::{Liveness, Report, State};
use crate::environments::rollout::{assign, Plan};
use crate::environments::views::{self, EnvJson};
use crate::environments::{rollout_status, status_words};
use crate::progress::Progress;

/// What to show.
#[derive(Debug, Clone)]
pub struct Options {
    /// Only these environments (in the store's order); empty: all.
    pub envs: Vec<String>,
    /// The newest events of each history shown.
    pub history: usize,
    /// A host whose last report is older than this is stale.
    pub stale_after_secs: u64,
}

/// Events of a history a page shows by default.
pub const DEFAULT_HISTORY: usize = 200;
/// A host unheard of for this long is stale, by default: until agents
/// refresh their reports while idle, an idle host's report is as old as
/// its last deploy, so this is generous.
pub const DEFAULT_STALE_SECS: u64 = 15 * 60;

impl Default for Options {
    fn default() -> Options {
        Options {
            envs: vec![],
            history: DEFAULT_HISTORY,
            stale_after_secs: DEFAULT_STALE_SECS,
        }
    }
}

/// The whole page.
#[derive(Debug, Serialize)]
pub struct Dashboard {
    /// Where it was read from.
    pub store: String,
    /// When, RFC 3339.
    pub generated: String,
    /// When, in seconds since the epoch.
    pub generated_secs: u64,
    /// Hosts are stale past this age.
    pub stale_after_secs: u64,
    /// In the store's order.
    pub environments: Vec<EnvView>,
}

/// One environment.
#[derive(Debug, Serialize)]
pub struct EnvView {
    /// Its name.
    pub name: String,
    /// The live manifest.
    pub manifest: Option<String>,
    /// The event that made it live.
    pub seq: Option<u64>,
    /// When it went live.
    pub time: Option<String>,
    /// Seconds since.
    pub age_secs: Option<u64>,
    /// Who moved it.
    pub actor: Option<String>,
    /// Its source revision, branch, dirty flag and CI run.
    pub revision: Option<String>,
    /// The branch it was built from.
    pub branch: Option<String>,
    /// Built from a dirty tree.
    pub dirty: bool,
    /// The CI run that built it.
    pub ci_url: Option<String>,
    /// Where the live move's canary check stands, in words, when it had one.
    pub check: Option<String>,
    /// Its check did not pass.
    pub unchecked: bool,
    /// The manifest live before `manifest`, for its diff.
    pub previous: Option<String>,
    /// The diff page of `previous` → `manifest`, beside the page, once written.
    pub diff: Option<String>,
    /// The newest rollout, if any.
    pub rollout: Option<RolloutView>,
    /// Every host that reports to it.
    pub hosts: Vec<HostView>,
    /// The newest events first.
    pub history: Vec<EventView>,
    /// How many events the history holds in all.
    pub events_total: usize,
}

/// One host.
#[derive(Debug, Serialize)]
pub struct HostView {
    /// Its id.
    pub id: String,
    /// `active`, `failed`, `deploying`, `staged`, `stale` (its report's).
    pub state: String,
    /// What its `current` names.
    pub running: Option<String>,
    /// The manifest its report is about.
    pub manifest: String,
    /// What it should run now (the pointer, or a rollout's target).
    pub expected: Option<String>,
    /// Runs something other than `expected`.
    pub drift: bool,
    /// Heard from within `stale_after_secs`.
    pub live: bool,
    /// When it last reported.
    pub seen: String,
    /// Seconds since.
    pub age_secs: Option<u64>,
    /// Its check, or why it failed.
    pub detail: Option<String>,
    /// `verbatim <version>` on the host.
    pub tool: String,
}

/// A rollout.
#[derive(Debug, Serialize)]
pub struct RolloutView {
    /// The seq of its `started` event.
    pub id: u64,
    /// Rolled out.
    pub target: String,
    /// Replaced.
    pub stable: String,
    /// `rolling`, `paused`, `expired`, `completed`, `aborted`.
    pub state: String,
    /// Its newest step.
    pub step: String,
    /// The wave it is at (from 1).
    pub wave: u32,
    /// Each wave with its hosts.
    pub waves: Vec<WaveView>,
    /// Hosts on the target, and known.
    pub on_target: usize,
    /// Hosts known.
    pub hosts: usize,
    /// Why it stands as it does.
    pub detail: Option<String>,
    /// Seconds of bake left.
    pub bake_left_secs: Option<u64>,
}

/// One wave of a rollout.
#[derive(Debug, Serialize)]
pub struct WaveView {
    /// From 1.
    pub n: u32,
    /// As planned (`1`, `25%`).
    pub size: String,
    /// `done`, `current` or `next`.
    pub state: &'static str,
    /// Its hosts, each with `on` (runs the target), `failed` or `waiting`.
    pub hosts: Vec<(String, &'static str)>,
}

/// One event of a history.
#[derive(Debug, Serialize)]
pub struct EventView {
    /// Its seq.
    pub seq: u64,
    /// `promote`, `rollback`, `auto-rollback`, `rollout`.
    pub kind: &'static str,
    /// The rollout step, for `rollout`.
    pub step: Option<String>,
    /// When.
    pub time: String,
    /// Who.
    pub actor: String,
    /// From.
    pub from: Option<String>,
    /// To (for a rollout step, the target).
    pub to: String,
    /// Why.
    pub reason: Option<String>,
    /// Forced past a gate.
    pub forced: bool,
    /// A rollout step's wave and hosts, in words.
    pub detail: Option<String>,
    /// Its canary check, in words.
    pub check: Option<String>,
}

/// Reads the dashboard of `reader`'s store.
pub fn collect(
    reader: &Reader<'_>,
    cfg: Option<&Config>,
    opts: &Options,
    progress: &dyn Progress,
) -> Result<Dashboard> {
    let statuses = if opts.envs.is_empty() {
        views::status(reader, cfg.cloned(), None, progress)?
    } else {
        let mut all = Vec::new();
        for env in &opts.envs {
            all.extend(views::status(reader, cfg.cloned(), Some(env), progress)?);
        }
        all
    };
    let at = now();
    let environments = statuses
        .into_iter()
        .map(|s| env_view(reader, cfg, s, opts, at, progress))
        .collect::<Result<_>>()?;
    Ok(Dashboard {
        store: reader.store().location(),
        generated: rfc3339(at),
        generated_secs: at,
        stale_after_secs: opts.stale_after_secs,
        environments,
    })
}

fn env_view(
    reader: &Reader<'_>,
    cfg: Option<&Config>,
    s: EnvJson,
    opts: &Options,
    at: u64,
    progress: &dyn Progress,
) -> Result<EnvView> {
    let state = reader.load(&s.env)?;
    let history = views::history(
        reader,
        cfg.cloned(),
        &s.env,
        None,
        (false, Some(opts.history)),
        progress,
    )?;
    let rollout =
        rollout_status::status(reader, &s.env)?.map(|r| rollout_view(&state, r, &s.hosts));
    let live_rollout = state.live_event().and_then(|e| e.rollout.as_ref());
    let hosts =
        s.hosts
            .iter()
            .map(|h| {
                let expected = s.manifest.as_deref().map(|m| {
                    assign(m, live_rollout.filter(|r| !r.step.ended()), &h.report.host).run
                });
                host_view(&h.report, expected, opts.stale_after_secs, at)
            })
            .collect();
    Ok(EnvView {
        previous: s.manifest.as_deref().and_then(|m| previous(&state, m)),
        age_secs: s
            .time
            .as_deref()
            .and_then(parse_rfc3339)
            .map(|t| at.saturating_sub(t)),
        check: s.check.as_ref().map(|c| {
            let mut w = status_words(c.status).to_owned();
            if let Some(d) = &c.detail {
                w.push_str(": ");
                w.push_str(d);
            }
            w
        }),
        events_total: state.events.len(),
        history: history
            .events
            .iter()
            .map(|(e, c)| event_view(e, c.as_ref().map(|(st, _)| status_words(*st))))
            .collect(),
        name: s.env,
        manifest: s.manifest,
        seq: s.seq,
        time: s.time,
        actor: s.actor,
        revision: s.revision,
        branch: s.branch,
        dirty: s.dirty,
        ci_url: s.ci_url,
        unchecked: s.unchecked,
        diff: None,
        rollout,
        hosts,
    })
}

/// The manifest live before `live` in `state`: the `from` of the newest
/// applied move to `live` from something else.
fn previous(state: &EnvState, live: &str) -> Option<String> {
    state
        .applied()
        .iter()
        .rev()
        .find(|e| e.to == live && e.from.as_deref().is_some_and(|f| f != live))
        .and_then(|e| e.from.clone())
}

/// When a host was last heard from: its agent's `last_seen`, else its
/// report's `time` (a deploy's report).
fn seen(r: &Report) -> &str {
    r.last_seen.as_deref().unwrap_or(&r.time)
}

fn host_view(r: &Report, expected: Option<String>, stale_after: u64, at: u64) -> HostView {
    let age = parse_rfc3339(seen(r)).map(|t| at.saturating_sub(t));
    let running = r.running.clone();
    HostView {
        drift: expected.is_some() && running != expected,
        // An agent's report says whether it is alive; a deploy's is judged
        // by its age.
        live: match r.liveness(at) {
            Liveness::Live => true,
            Liveness::Stale | Liveness::Stopped => false,
            Liveness::Unknown => age.is_some_and(|a| a <= stale_after),
        },
        id: r.host.clone(),
        state: serde_json::to_value(r.state)
            .ok()
            .and_then(|v| v.as_str().map(String::from))
            .unwrap_or_default(),
        running,
        manifest: r.manifest.clone(),
        expected,
        seen: seen(r).to_owned(),
        age_secs: age,
        detail: r.detail.clone(),
        tool: r.tool.clone(),
    }
}

fn event_view(e: &Event, check: Option<&str>) -> EventView {
    let r = e.rollout.as_ref();
    EventView {
        seq: e.seq,
        kind: kind_name(e.kind),
        step: r.map(|r| r.step.name().to_owned()),
        time: e.time.clone(),
        actor: e.actor.clone(),
        from: e.from.clone(),
        to: r.map_or_else(|| e.to.clone(), |r| r.target.clone()),
        reason: e.reason.clone(),
        forced: e.forced,
        detail: r.and_then(|r| {
            let mut words = Vec::new();
            if r.wave > 0 {
                words.push(format!("wave {}", r.wave));
            }
            if r.all {
                words.push("all hosts".into());
            } else if !r.hosts.is_empty() {
                words.push(r.hosts.join(", "));
            }
            if let Some(d) = &r.detail {
                words.push(d.clone());
            }
            (!words.is_empty()).then(|| words.join(" · "))
        }),
        check: check.map(String::from),
    }
}

fn rollout_view(
    state: &EnvState,
    r: rollout_status::RolloutStatus,
    hosts: &[views::HostJson],
) -> RolloutView {
    let j = r.rollout;
    let last = j.steps.last();
    let wave = last.map_or(0, |s| s.wave);
    let plan: Option<&Plan> = state
        .events
        .iter()
        .find(|e| e.seq == j.rollout)
        .and_then(|e| e.rollout.as_ref()?.plan.as_ref());
    let host_state = |h: &str| -> &'static str {
        match hosts.iter().find(|x| x.report.host == h) {
            Some(x) if x.report.running.as_deref() == Some(j.target.as_str()) => "on",
            Some(x) if x.report.state == State::Failed && x.report.manifest == j.target => "failed",
            _ => "waiting",
        }
    };
    let mut waves = Vec::new();
    if let Some(plan) = plan {
        let mut done = 0;
        for (i, size) in plan.waves.iter().enumerate() {
            let n = u32::try_from(i + 1).unwrap_or(u32::MAX);
            let upto = size.of(plan.hosts.len()).max(done);
            let members = plan.hosts[done..upto]
                .iter()
                .map(|h| (h.clone(), host_state(h)))
                .collect();
            done = upto;
            let state = match n.cmp(&wave) {
                _ if j.state == "completed" => "done",
                std::cmp::Ordering::Less => "done",
                std::cmp::Ordering::Equal => "current",
                std::cmp::Ordering::Greater => "next",
            };
            waves.push(WaveView {
                n,
                size: size.to_string(),
                state,
                hosts: members,
            });
        }
    }
    RolloutView {
        id: j.rollout,
        step: last.map(|s| s.step.name().to_owned()).unwrap_or_default(),
        target: j.target,
        stable: j.stable,
        state: j.state,
        wave,
        waves,
        on_target: r.on_target,
        hosts: r.hosts,
        detail: j.detail,
        bake_left_secs: r.bake_left_secs,
    }
}
