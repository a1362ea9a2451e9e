//! The rollout controller: plans a rollout, then takes its steps one by
//! one as the hosts' reports allow, each an event of the environment
//! (`moves::append_step`: create-only, so of two controllers one takes
//! each step and the other stops with exit 4). It keeps nothing a step
//! needs in memory: everything is read back from the history, so `rollout
//! resume` from any machine goes on where a killed controller stopped.
//!
//! The steps (`rollout::Step`): `started` → (`release`, when the target
//! has a release command) → for each wave `wave` → `wave-done` (it bakes)
//! → `baked` → … → `completed`. Blue/green: `started` → (`release`) →
//! `stage` → `switch` → `wave-done` → `baked` → `completed`. A failed
//! host (told to the reader's observers), a failed check, a timeout, a
//! signal or `rollout abort` ends it with `aborted`; an inconclusive check
//! (exit [`INCONCLUSIVE`]) or `rollout
//! pause` writes `paused`.

use std::time::Duration;

use anyhow::{Context, Result};

use super::event::{Event, Kind};
use super::moves::{append_step, settle};
use super::reader::{get_record, EnvState, Reader};
use super::reports::read_reports;
use super::rollout::{
    fleet, order_hosts, release_key, wave_hosts, Fleet, Plan, ReleaseRecord, Rollout, RolloutJson,
    Size, Step, StepJson, Strategy, INCONCLUSIVE,
};
use crate::clock::{deadline, now, parse_rfc3339, rfc3339};
use crate::digest::Digest;
use crate::error::{CheckFailed, LostRace, Paused, UsageError};
use crate::objects::load_manifest;
use crate::process::{self, Ended};
use crate::progress::Progress;
use crate::signals;
use crate::store::{Key, Store};
use crate::text::escape;

/// How often the controller reads the hosts' reports.
const POLL: Duration = Duration::from_millis(250);

/// How long an aborting controller waits for switched hosts to report
/// they are back, at most.
const BACK_WAIT: Duration = Duration::from_secs(120);

/// How a rollout is to go, from the flags (or the policy's default).
#[derive(Debug, Clone)]
pub struct RolloutOptions {
    /// Waves or blue/green.
    pub strategy: Strategy,
    /// The waves (`--waves`); blue/green: `100%`.
    pub waves: Vec<Size>,
    /// How long each wave bakes (`--bake`).
    pub bake_secs: u64,
    /// The check after each bake (`--check-cmd`).
    pub check: Option<String>,
    /// How long it may take (`--check-timeout`).
    pub check_timeout_secs: u64,
    /// How long a wave, the staging or the release phase may take
    /// (`--wave-timeout`).
    pub wave_timeout_secs: u64,
    /// The first wave's hosts (`--canary-hosts`).
    pub canary_hosts: Vec<String>,
    /// Blue/green: hosts staged before the switch (`--min-staged`).
    pub min_staged: Option<u64>,
}

/// The plan of a rollout of `target` to `env`: the hosts known from their
/// reports in rollout order, the target's release command and who may
/// run it. A usage error when no host ever reported, or a canary host is
/// not one of them.
pub fn plan(store: &dyn Store, env: &str, target: &Digest, opts: &RolloutOptions) -> Result<Plan> {
    // Only hosts whose agents are alive take part.
    let now = now();
    let reports: Vec<_> = super::hosts::known_reports(store, env)?
        .reports
        .into_iter()
        .filter(|r| super::hosts::counts(r.liveness(now)))
        .collect();
    let mut known: Vec<String> = reports.iter().map(|r| r.host.clone()).collect();
    known.sort();
    known.dedup();
    if known.is_empty() {
        return Err(UsageError(format!(
            "no host has reported to {env} yet, so a rollout has no one to roll out to: start the hosts' agents (`verbatim agent {env} …`) first, or promote without --waves/--strategy to move {env} at once"
        ))
        .into());
    }
    if let Some(h) = opts.canary_hosts.iter().find(|h| !known.contains(h)) {
        return Err(UsageError(format!(
            "--canary-hosts: host `{}` never reported to {env}; the hosts that did: {}",
            escape(h),
            known.join(", ")
        ))
        .into());
    }
    let hosts = order_hosts(&known, &opts.canary_hosts, &target.to_string());
    let release = load_manifest(store, target)?
        .deploy
        .and_then(|d| d.hooks.release);
    let mut release_hosts: Vec<String> = reports
        .iter()
        .filter(|r| r.release_runner)
        .map(|r| r.host.clone())
        .collect();
    if release_hosts.is_empty() {
        release_hosts = hosts.iter().take(1).cloned().collect();
    }
    Ok(Plan {
        strategy: opts.strategy,
        waves: match opts.strategy {
            Strategy::Waves => opts.waves.clone(),
            Strategy::BlueGreen => vec![Size::Percent(100)],
        },
        bake_secs: opts.bake_secs,
        check: opts.check.clone(),
        check_timeout_secs: opts.check_timeout_secs,
        wave_timeout_secs: opts.wave_timeout_secs,
        canaries: opts.canary_hosts.len() as u64,
        hosts,
        min_staged: opts.min_staged,
        release_hosts: if release.is_some() {
            release_hosts
        } else {
            vec![]
        },
        release,
    })
}

/// One controller of one environment's rollout.
struct Controller<'a> {
    reader: &'a Reader<'a>,
    env: &'a str,
    sign: Option<&'a ssh_key::PrivateKey>,
    progress: &'a dyn Progress,
    /// The event this controller wrote last: any other live event means
    /// someone else acted.
    wrote: Option<u64>,
}

/// What the controller does next.
enum Next {
    /// Write this step.
    Write(Box<Rollout>),
    /// Wait and look again.
    Wait,
    /// End the rollout: why.
    Abort(String),
    /// Pause it: the step to resume with, and why.
    Pause(Step, String),
}

/// Takes the steps of the rollout in flight in `env` until it completes
/// (`Ok`), aborts (exit 6), pauses (exit 8), or another controller takes a
/// step (exit 4). `wrote`: the event this process just wrote, if any.
pub fn drive(
    reader: &Reader<'_>,
    env: &str,
    wrote: Option<u64>,
    sign: Option<&ssh_key::PrivateKey>,
    progress: &dyn Progress,
) -> Result<RolloutJson> {
    let mut c = Controller {
        reader,
        env,
        sign,
        progress,
        wrote,
    };
    loop {
        let state = settle(reader, env)?;
        let (live, r) = in_flight_or_ended(&state)?;
        let plan = plan_of(&state, r.id)?;
        if let Some(w) = c.wrote.filter(|&w| w != live.seq) {
            return Err(someone_else(&state, live, r, w));
        }
        if r.step.ended() {
            return finish(&state, r);
        }
        if let Some(sig) = signals::caught() {
            let why = format!(
                "the controller was interrupted by {}",
                signals::signal_name(sig)
            );
            return Err(c.abort(&state, r, &plan, why));
        }
        match c.next(&state, live, r, &plan)? {
            Next::Write(step) => c.write(&state, *step)?,
            Next::Wait => std::thread::sleep(POLL),
            Next::Abort(why) => return Err(c.abort(&state, r, &plan, why)),
            Next::Pause(resume, why) => {
                let paused = Rollout {
                    step: Step::Paused,
                    resume: Some(resume),
                    deadline: None,
                    detail: Some(why.clone()),
                    ..r.clone()
                };
                c.write(&state, paused)?;
                return Err(Paused(format!(
                    "rollout {} of {} to {env} paused: {why}; go on with `verbatim rollout resume {env}`, or end it with `verbatim rollout abort {env}`",
                    r.id, r.target
                ))
                .into());
            }
        }
    }
}

impl Controller<'_> {
    /// The step after `r` (the live event `live`'s), or what to do instead.
    fn next(&self, state: &EnvState, live: &Event, r: &Rollout, plan: &Plan) -> Result<Next> {
        let env = self.env;
        let step = |step: Step, wave: u32, hosts: Vec<String>, all: bool| Rollout {
            step,
            wave,
            hosts,
            all,
            stage: false,
            deadline: due(step, plan),
            plan: None,
            resume: None,
            detail: None,
            ..r.clone()
        };
        let first = || match plan.strategy {
            Strategy::Waves => self.wave(r, plan, 1),
            Strategy::BlueGreen => Rollout {
                stage: true,
                ..step(Step::Stage, 1, vec![], true)
            },
        };
        let overdue = r
            .deadline
            .as_deref()
            .and_then(parse_rfc3339)
            .is_some_and(|d| now() > d);
        Ok(match r.step {
            Step::Started if plan.release.is_some() => Next::Write(Box::new(Rollout {
                stage: true,
                ..step(Step::Release, 0, plan.release_hosts.clone(), false)
            })),
            Step::Started => Next::Write(Box::new(first())),
            Step::Release => match self.release_record(r.id)? {
                Some(rec) if rec.outcome == "passed" => Next::Write(Box::new(first())),
                Some(rec) => Next::Abort(format!(
                    "the release phase failed on {}: {}",
                    rec.host, rec.detail
                )),
                None if overdue => Next::Abort(format!(
                    "the release phase did not end within {}s (hosts that may run it: {})",
                    plan.wave_timeout_secs,
                    plan.release_hosts.join(", ")
                )),
                None => Next::Wait,
            },
            Step::Wave | Step::Switch => {
                let f = self.fleet(state, r)?;
                let waiting = waiting_for(&f, r);
                if let Some((host, why)) = f.failed.first() {
                    Next::Abort(format!("host {host} failed to run {}: {why}", r.target))
                } else if waiting.is_empty() {
                    self.progress.note(format!(
                        "{env}: wave {} done: {} host(s) run {}; baking {}s",
                        r.wave,
                        f.on_target.len(),
                        r.target,
                        plan.bake_secs
                    ));
                    let done = step(Step::WaveDone, r.wave, r.hosts.clone(), r.all);
                    Next::Write(Box::new(done))
                } else if overdue {
                    Next::Abort(format!(
                        "wave {} timed out after {}s: {} did not report running {}",
                        r.wave,
                        plan.wave_timeout_secs,
                        waiting.join(", "),
                        r.target
                    ))
                } else {
                    Next::Wait
                }
            }
            Step::Stage => {
                let f = self.fleet(state, r)?;
                let want = plan.min_staged.map_or(f.known.len(), |n| n as usize);
                if let Some((host, why)) = f.failed.first() {
                    Next::Abort(format!("host {host} failed to stage {}: {why}", r.target))
                } else if f.staged.len() >= want.max(1) {
                    self.progress.note(format!(
                        "{env}: {} host(s) staged {}; switching",
                        f.staged.len(),
                        r.target
                    ));
                    Next::Write(Box::new(step(Step::Switch, 1, vec![], true)))
                } else if overdue {
                    Next::Abort(format!(
                        "only {} of {want} host(s) staged {} within {}s",
                        f.staged.len(),
                        r.target,
                        plan.wave_timeout_secs
                    ))
                } else {
                    Next::Wait
                }
            }
            Step::WaveDone => self.bake(state, live, r, plan)?,
            Step::Baked if r.wave as usize >= plan.waves.len() => Next::Write(Box::new(step(
                Step::Completed,
                r.wave,
                r.hosts.clone(),
                true,
            ))),
            Step::Baked => Next::Write(Box::new(self.wave(r, plan, r.wave + 1))),
            Step::Paused | Step::Aborted | Step::Completed => {
                unreachable!("drive handles ended and paused rollouts")
            }
        })
    }

    /// The `wave` step of wave `k`.
    fn wave(&self, r: &Rollout, plan: &Plan, k: u32) -> Rollout {
        let hosts = wave_hosts(plan, k);
        let all = hosts.is_none();
        let hosts = hosts.unwrap_or_else(|| plan.hosts.clone());
        self.progress.note(format!(
            "{}: wave {k}/{} starts: {}",
            self.env,
            plan.waves.len(),
            if all {
                "every host".to_owned()
            } else {
                format!(
                    "{} ({} of {} hosts)",
                    hosts.join(", "),
                    hosts.len(),
                    plan.hosts.len()
                )
            }
        ));
        Rollout {
            step: Step::Wave,
            wave: k,
            hosts,
            all,
            stage: false,
            deadline: due(Step::Wave, plan),
            plan: None,
            resume: None,
            detail: None,
            ..r.clone()
        }
    }

    /// A wave that is done bakes until its event's time plus the bake;
    /// then the check runs. A host failing meanwhile aborts.
    fn bake(&self, state: &EnvState, live: &Event, r: &Rollout, plan: &Plan) -> Result<Next> {
        let f = self.fleet(state, r)?;
        if let Some((host, why)) = f.failed.first() {
            return Ok(Next::Abort(format!(
                "host {host} failed while wave {} baked: {why}",
                r.wave
            )));
        }
        let since = parse_rfc3339(&live.time).unwrap_or_else(now);
        if now() < since.saturating_add(plan.bake_secs) {
            return Ok(Next::Wait);
        }
        let baked = Rollout {
            step: Step::Baked,
            deadline: due(Step::Baked, plan),
            detail: None,
            ..r.clone()
        };
        let Some(cmd) = &plan.check else {
            return Ok(Next::Write(Box::new(baked)));
        };
        let wave = r.wave.to_string();
        let vars = [
            ("VERBATIM_ENV", self.env),
            ("VERBATIM_MANIFEST", r.target.as_str()),
            ("VERBATIM_PREVIOUS_MANIFEST", r.stable.as_str()),
            ("VERBATIM_WAVE", wave.as_str()),
        ];
        let (ended, code) = process::run_with_code(
            &process::Job {
                cmd,
                label: "rollout check",
                cwd: None,
                vars: &vars,
                timeout: Duration::from_secs(plan.check_timeout_secs),
                log: None,
            },
            self.progress,
        );
        Ok(match ended {
            Ended::Passed(detail) => Next::Write(Box::new(Rollout {
                detail: Some(detail),
                ..baked
            })),
            Ended::Failed(why) if code == Some(INCONCLUSIVE) => Next::Pause(
                Step::Baked,
                format!("the check of wave {} was inconclusive ({why})", r.wave),
            ),
            Ended::Failed(why) => {
                Next::Abort(format!("the check of wave {} failed: {why}", r.wave))
            }
            Ended::Interrupted(sig) => Next::Abort(format!(
                "the check of wave {} was interrupted by {}",
                r.wave,
                signals::signal_name(sig)
            )),
        })
    }

    /// Where the hosts stand with `r`, from their reports.
    fn fleet(&self, state: &EnvState, r: &Rollout) -> Result<Fleet> {
        let reports = read_reports(self.reader.store(), self.env)?;
        let f = fleet(&reports.reports, &state.digests, r);
        super::observe::tell_failed(self.reader, (self.env, &r.target), &f.failed, self.progress);
        Ok(f)
    }

    /// How rollout `id`'s release phase ended, if it has.
    fn release_record(&self, id: u64) -> Result<Option<ReleaseRecord>> {
        read_release(self.reader.store(), self.env, id)
    }

    /// Writes `step` after the settled `state`.
    fn write(&mut self, state: &EnvState, step: Rollout) -> Result<()> {
        let name = step.step;
        let event = append_step(self.reader, state, step, self.sign, self.progress)?;
        self.progress.note(format!(
            "{}: rollout step `{}` (event {})",
            self.env,
            name.name(),
            event.seq
        ));
        self.wrote = Some(event.seq);
        Ok(())
    }

    /// Ends the rollout: `aborted`, every host back on the stable
    /// manifest; waits (a while) for the switched hosts to say they are
    /// back. The error says why, exit 6.
    fn abort(&mut self, state: &EnvState, r: &Rollout, plan: &Plan, why: String) -> anyhow::Error {
        let env = self.env;
        self.progress
            .warn(format!("{env}: aborting rollout {}: {why}", r.id));
        let aborted = Rollout {
            step: Step::Aborted,
            deadline: None,
            resume: None,
            detail: Some(why.clone()),
            ..r.clone()
        };
        if let Err(e) = self.write(state, aborted) {
            return e.context(format!("aborting rollout {} of {env} ({why})", r.id));
        }
        if let Some(warning) = undone_migrations(self.reader.store(), &r.target, &r.stable) {
            self.progress.warn(warning);
        }
        let back = self.wait_back(r, plan);
        CheckFailed(format!(
            "rollout {} of {} to {env} aborted: {why}; {env} is back on {}{back}",
            r.id, r.target, r.stable
        ))
        .into()
    }

    /// Waits until every host that ran the target reports the stable
    /// manifest again (or [`BACK_WAIT`] passes); says how that went.
    fn wait_back(&self, r: &Rollout, plan: &Plan) -> String {
        let start = std::time::Instant::now();
        let limit = BACK_WAIT.min(Duration::from_secs(plan.wave_timeout_secs));
        loop {
            let Ok(state) = self.reader.load(self.env) else {
                return String::new();
            };
            let Ok(f) = self.fleet(&state, r) else {
                return String::new();
            };
            let switched: Vec<&String> = f.known.iter().filter(|h| r.names(h)).collect();
            let missing: Vec<&str> = switched
                .iter()
                .filter(|h| !f.on_stable.contains(**h))
                .map(|h| h.as_str())
                .collect();
            if missing.is_empty() {
                return format!("; {} switched host(s) report it", switched.len());
            }
            if start.elapsed() >= limit || signals::caught().is_some() {
                return format!(
                    "; not yet reported back by {} (their agents flip back when they see the abort)",
                    missing.join(", ")
                );
            }
            std::thread::sleep(POLL);
        }
    }
}

/// The hosts a `wave` or `switch` step `r` still waits for: those it names
/// that do not run the target (with `all`, every host known).
fn waiting_for(f: &Fleet, r: &Rollout) -> Vec<String> {
    let named: Vec<&String> = if r.all {
        f.known.iter().collect()
    } else {
        r.hosts.iter().collect()
    };
    named
        .into_iter()
        .filter(|h| !f.on_target.contains(*h))
        .cloned()
        .collect()
}

/// The live event and its rollout step; a usage error when the live event
/// is no rollout step.
fn in_flight_or_ended(state: &EnvState) -> Result<(&Event, &Rollout)> {
    let env = &state.env;
    match state.live_event() {
        Some(e) if e.kind == Kind::Rollout => Ok((e, e.rollout.as_ref().expect("checked"))),
        Some(e) => Err(CheckFailed(format!(
            "{env} moved to {} by a {} (event {}, by {}): no rollout is in flight",
            e.to,
            super::event::kind_name(e.kind),
            e.seq,
            escape(&e.actor)
        ))
        .into()),
        None => Err(UsageError(format!("nothing is live in {env}")).into()),
    }
}

/// The plan recorded by rollout `id`'s `started` event.
pub(crate) fn plan_of(state: &EnvState, id: u64) -> Result<Plan> {
    usize::try_from(id)
        .ok()
        .and_then(|i| state.events.get(i.checked_sub(1)?))
        .and_then(|e| e.rollout.as_ref()?.plan.clone())
        .with_context(|| format!("event {id} of {} is not a rollout's start", state.env))
}

/// Someone else wrote the live event after this controller's `wrote`.
fn someone_else(state: &EnvState, live: &Event, r: &Rollout, wrote: u64) -> anyhow::Error {
    let env = &state.env;
    let who = format!("{} (event {})", escape(&live.actor), live.seq);
    let detail = r
        .detail
        .as_deref()
        .map(|d| escape(d).to_string())
        .unwrap_or_default();
    match r.step {
        Step::Aborted => CheckFailed(format!(
            "rollout {} of {} to {env} was aborted by {who}: {detail}; {env} is back on {}",
            r.id, r.target, r.stable
        ))
        .into(),
        Step::Paused => Paused(format!(
            "rollout {} of {} to {env} was paused by {who}: {detail}; go on with `verbatim rollout resume {env}`",
            r.id, r.target
        ))
        .into(),
        _ => LostRace(format!(
            "another controller took over rollout {} of {env}: {who} wrote step `{}` after this one's event {wrote}",
            r.id,
            r.step.name()
        ))
        .into(),
    }
}

/// A rollout that has ended: `Ok` when completed, exit 6 when aborted.
fn finish(state: &EnvState, r: &Rollout) -> Result<RolloutJson> {
    let json = rollout_json(state, r.id, "completed");
    if r.step == Step::Completed {
        return Ok(json);
    }
    Err(CheckFailed(format!(
        "rollout {} of {} to {} aborted: {}",
        r.id,
        r.target,
        state.env,
        r.detail
            .as_deref()
            .map(|d| escape(d).to_string())
            .unwrap_or_default()
    ))
    .into())
}

/// Rollout `id` of `state` as `--json` prints it, in `state`.
pub fn rollout_json(state: &EnvState, id: u64, words: &str) -> RolloutJson {
    let steps: Vec<(&Event, &Rollout)> = state
        .applied()
        .iter()
        .filter_map(|e| Some((e, e.rollout.as_ref().filter(|r| r.id == id)?)))
        .collect();
    let last = steps.last().map(|(_, r)| *r);
    RolloutJson {
        env: state.env.clone(),
        rollout: id,
        target: last.map(|r| r.target.clone()).unwrap_or_default(),
        stable: last.map(|r| r.stable.clone()).unwrap_or_default(),
        state: words.into(),
        detail: last.and_then(|r| r.detail.clone()),
        steps: steps
            .iter()
            .map(|(e, r)| StepJson {
                seq: e.seq,
                step: r.step,
                wave: r.wave,
                hosts: if r.all {
                    vec!["*".into()]
                } else {
                    r.hosts.clone()
                },
                time: e.time.clone(),
                actor: e.actor.clone(),
                detail: r.detail.clone(),
            })
            .collect(),
    }
}

/// How rollout `id` of `env`'s release phase ended, if it has.
pub fn read_release(store: &dyn Store, env: &str, id: u64) -> Result<Option<ReleaseRecord>> {
    read_release_at(store, &Key::new(release_key(env, id))?)
}

/// A release record (or claim) as stored at `key`, if there is one.
pub fn read_release_at(store: &dyn Store, key: &Key) -> Result<Option<ReleaseRecord>> {
    let Some((bytes, _)) = get_record(store, key)? else {
        return Ok(None);
    };
    serde_json::from_slice(&bytes)
        .map(Some)
        .with_context(|| format!("{key}: not a release record"))
}

/// When a step taken now is due to be followed, at the latest.
fn due(step: Step, plan: &Plan) -> Option<String> {
    let secs = match step {
        Step::Started | Step::Release | Step::Wave | Step::Stage | Step::Switch => {
            plan.wave_timeout_secs
        }
        Step::WaveDone => plan.bake_secs + plan.check_timeout_secs + 60,
        Step::Baked => 60,
        Step::Paused | Step::Aborted | Step::Completed => return None,
    };
    Some(rfc3339(deadline(secs)))
}

/// The rollout in flight in `env` (paused included), settled; a usage
/// error naming what is live instead.
fn in_flight(reader: &Reader<'_>, env: &str) -> Result<(EnvState, Rollout, Plan)> {
    let state = settle(reader, env)?;
    let r = match state.live_event().and_then(|e| e.rollout.as_ref()) {
        Some(r) if !r.step.ended() => r.clone(),
        _ => {
            return Err(UsageError(format!(
                "no rollout is in flight in {env}: see `verbatim rollout status {env}` and `verbatim history {env}`"
            ))
            .into())
        }
    };
    let plan = plan_of(&state, r.id)?;
    Ok((state, r, plan))
}

/// `rollout pause ENV`: the rollout stops where it is (hosts stay on what
/// they run) until `rollout resume`; its controller stops with exit 8.
pub fn pause(
    reader: &Reader<'_>,
    env: &str,
    reason: Option<&str>,
    sign: Option<&ssh_key::PrivateKey>,
    progress: &dyn Progress,
) -> Result<RolloutJson> {
    let (state, r, _) = in_flight(reader, env)?;
    if matches!(r.step, Step::Paused | Step::Started) {
        return Err(UsageError(format!(
            "rollout {} of {env} is `{}`: there is nothing to pause",
            r.id,
            r.step.name()
        ))
        .into());
    }
    let why = format!(
        "paused by {}{}",
        crate::actor::actor(),
        reason.map(|r| format!(": {r}")).unwrap_or_default()
    );
    let paused = Rollout {
        step: Step::Paused,
        resume: Some(r.step),
        deadline: None,
        detail: Some(why),
        ..r.clone()
    };
    let event = append_step(reader, &state, paused, sign, progress)?;
    progress.note(format!(
        "{env}: rollout {} paused (event {}); hosts stay where they are",
        r.id, event.seq
    ));
    Ok(rollout_json(&reader.load(env)?, r.id, "paused"))
}

/// `rollout abort ENV`: the rollout ends, every host back on the stable
/// manifest (agents flip back when they see it). Waits a while for the
/// switched hosts to report back.
pub fn abort(
    reader: &Reader<'_>,
    env: &str,
    reason: Option<&str>,
    sign: Option<&ssh_key::PrivateKey>,
    progress: &dyn Progress,
) -> Result<RolloutJson> {
    let (state, r, plan) = in_flight(reader, env)?;
    let why = format!(
        "aborted by {}{}",
        crate::actor::actor(),
        reason.map(|r| format!(": {r}")).unwrap_or_default()
    );
    let mut c = Controller {
        reader,
        env,
        sign,
        progress,
        wrote: None,
    };
    let aborted = Rollout {
        step: Step::Aborted,
        resume: None,
        deadline: None,
        detail: Some(why),
        ..r.clone()
    };
    c.write(&state, aborted)?;
    if let Some(warning) = undone_migrations(reader.store(), &r.target, &r.stable) {
        progress.warn(warning);
    }
    let back = c.wait_back(&r, &plan);
    progress.note(format!(
        "{env}: rollout {} aborted; {env} runs {}{back}",
        r.id, r.stable
    ));
    Ok(rollout_json(&reader.load(env)?, r.id, "aborted"))
}

/// `rollout resume ENV`: becomes the rollout's controller, from any
/// machine. A paused rollout goes on from the step it paused at; one in
/// flight is taken over (its step written again with a new deadline, so a
/// controller still running stops with exit 4; a wave's bake starts
/// again). Then drives it to its end as `promote` would.
pub fn resume(
    reader: &Reader<'_>,
    env: &str,
    sign: Option<&ssh_key::PrivateKey>,
    progress: &dyn Progress,
) -> Result<RolloutJson> {
    let (state, r, plan) = in_flight(reader, env)?;
    let step = match r.step {
        Step::Paused => r.resume.unwrap_or(Step::Wave),
        Step::Started => return drive(reader, env, None, sign, progress),
        other => other,
    };
    let again = Rollout {
        step,
        resume: None,
        deadline: due(step, &plan),
        detail: Some(format!("resumed by {}", crate::actor::actor())),
        ..r.clone()
    };
    let event = append_step(reader, &state, again, sign, progress)?;
    progress.note(format!(
        "{env}: rollout {} resumed at step `{}` (event {})",
        r.id,
        step.name(),
        event.seq
    ));
    drive(reader, env, Some(event.seq), sign, progress)
}

/// What going from manifest `from` back to `to` leaves done: the files of
/// `from`'s `[deploy] migrations` that `to` does not hold, in words
/// (`rolling back does not undo 0042_add_genre2.py`); `None` when there
/// are none, or the manifests cannot be read (a rollback never fails for
/// a warning).
pub fn undone_migrations(store: &dyn Store, from: &str, to: &str) -> Option<String> {
    let files = |id: &str| -> Option<Vec<String>> {
        let m = load_manifest(store, &id.parse().ok()?).ok()?;
        Some(m.deploy.map(|d| d.migration_files).unwrap_or_default())
    };
    let (newer, older) = (files(from)?, files(to)?);
    let undone: Vec<&str> = newer
        .iter()
        .filter(|f| !older.contains(f))
        .map(|f| f.rsplit('/').next().unwrap_or(f))
        .collect();
    if undone.is_empty() {
        return None;
    }
    Some(format!(
        "rolling back does not undo {}: the database keeps what {} did; roll it back by hand if {to} cannot run on it",
        undone.join(", "),
        if undone.len() == 1 { "it" } else { "they" }
    ))
}
