//! Rollouts: a move to a new manifest that reaches the fleet in steps.
//!
//! A rollout is a run of events in the environment's own hash chain, each
//! of kind `rollout`, created one by one (create-only, the pointer moved
//! by compare-and-swap), so two controllers never both take a step. Every
//! event carries a [`Rollout`]: the target and the stable manifest, the
//! step it records and which hosts run (or stage) the target. While it is
//! in flight the event's `to` (and so the pointer) stays on the **stable**
//! manifest: the target becomes the environment's manifest only with the
//! `completed` step, and an `aborted` step names the stable one again.
//!
//! A host reads only the live event: [`assign`] says what it runs, what it
//! stages, and whether it may run the release phase. Pure: no I/O, no
//! clock (times are handed in).

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::reports::{Report, State};
pub use super::waves::{parse_waves, Size, Strategy};
use crate::digest::Digest;

/// The exit code of a check command that cannot tell (inconclusive): the
/// rollout pauses until `verbatim rollout resume`. `EX_TEMPFAIL`, so a
/// command failing for any ordinary reason is a failure, not a pause.
pub const INCONCLUSIVE: i32 = 75;

/// A rollout's plan, recorded by its `started` event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Plan {
    /// Waves or blue/green.
    pub strategy: Strategy,
    /// The waves, cumulative (blue/green: one, `100%`).
    pub waves: Vec<Size>,
    /// How long each wave bakes once all its hosts run the target.
    pub bake_secs: u64,
    /// The check run after each bake (`sh -c`): 0 passes, [`INCONCLUSIVE`]
    /// pauses, anything else aborts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub check: Option<String>,
    /// How long the check may take.
    pub check_timeout_secs: u64,
    /// How long a wave (or the staging, or the release phase) may take
    /// before the rollout is aborted.
    pub wave_timeout_secs: u64,
    /// The hosts known when it started, in rollout order (the pinned
    /// `--canary-hosts` first, then by a hash of the host id and the
    /// target): wave `k` is the first [`Size::of`] of them.
    pub hosts: Vec<String>,
    /// How many of `hosts`, first, `--canary-hosts` pinned: exactly the
    /// first wave.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub canaries: u64,
    /// Blue/green: how many hosts must have staged before the switch
    /// (`--min-staged`; all known hosts when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_staged: Option<u64>,
    /// The target's release command (`[deploy.hooks] release`), run once
    /// before any host flips.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub release: Option<String>,
    /// The hosts that may run it: those whose agent says
    /// `--release-runner`, else the first wave's first host.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub release_hosts: Vec<String>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// The steps a rollout records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Step {
    /// The plan is recorded; no host runs the target yet.
    Started,
    /// The release hosts stage the target and one of them runs the
    /// release command.
    Release,
    /// Wave `wave` started: its hosts (and those of earlier waves) run the
    /// target.
    Wave,
    /// Every host of wave `wave` runs the target; it bakes.
    WaveDone,
    /// Wave `wave` baked and its check passed.
    Baked,
    /// Blue/green: every host stages the target.
    Stage,
    /// Blue/green: every host runs the target.
    Switch,
    /// Paused (by `rollout pause`, or an inconclusive check): hosts stay
    /// where they are until `rollout resume`.
    Paused,
    /// Ended without the target: every host back on the stable manifest.
    Aborted,
    /// Ended with every host on the target, now the environment's manifest.
    Completed,
}

impl Step {
    /// Whether the rollout has ended with this step.
    pub fn ended(self) -> bool {
        matches!(self, Step::Aborted | Step::Completed)
    }

    /// Its name, as events and `status` spell it.
    pub fn name(self) -> &'static str {
        match self {
            Step::Started => "started",
            Step::Release => "release",
            Step::Wave => "wave",
            Step::WaveDone => "wave-done",
            Step::Baked => "baked",
            Step::Stage => "stage",
            Step::Switch => "switch",
            Step::Paused => "paused",
            Step::Aborted => "aborted",
            Step::Completed => "completed",
        }
    }
}

/// One step of a rollout, as its event records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rollout {
    /// The `seq` of the rollout's `started` event: which rollout this is.
    pub id: u64,
    /// The manifest rolled out.
    pub target: String,
    /// The manifest the environment ran before, and runs again if aborted.
    pub stable: String,
    /// What this event records.
    pub step: Step,
    /// The wave it is about (from 1); 0 before the first.
    #[serde(default)]
    pub wave: u32,
    /// The hosts that run (or, with `stage`, stage) the target after this
    /// step, by id.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hosts: Vec<String>,
    /// Every host runs (or stages) the target, the ones known when it
    /// started or not (the last wave).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub all: bool,
    /// The hosts named stage the target but keep running the stable
    /// manifest (the release phase, and blue/green before the switch).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub stage: bool,
    /// RFC 3339: when the next step is due at the latest. A rollout still
    /// in flight after it has no controller (`expired`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline: Option<String>,
    /// On `started`: the plan.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan: Option<Plan>,
    /// On `paused`: the step `rollout resume` goes on from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resume: Option<Step>,
    /// Why: a failed host, a check's output, who paused it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

impl Rollout {
    /// Whether `host` is one this step names (or all are).
    pub fn names(&self, host: &str) -> bool {
        self.all || self.hosts.iter().any(|h| h == host)
    }
}

/// The `schema` of every [`ReleaseRecord`].
pub const RELEASE_SCHEMA: &str = "verbatim.release/v1";

/// `envs/<env>/rollouts/<id>/release-claim.json`: created (create-only) by
/// the one host that runs rollout `id`'s release phase.
pub fn release_claim_key(env: &str, id: u64) -> String {
    format!("envs/{env}/rollouts/{id}/release-claim.json")
}

/// `envs/<env>/rollouts/<id>/release.json`: how rollout `id`'s release
/// phase ended, written once by the host that claimed it.
pub fn release_key(env: &str, id: u64) -> String {
    format!("envs/{env}/rollouts/{id}/release.json")
}

/// How a rollout's release phase ended (or, at [`release_claim_key`],
/// who claimed it: `outcome` is then `running`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReleaseRecord {
    /// Always [`RELEASE_SCHEMA`].
    pub schema: String,
    /// The environment.
    pub env: String,
    /// The rollout: the `seq` of its `started` event.
    pub rollout: u64,
    /// The manifest whose release command ran.
    pub manifest: String,
    /// The host that ran it.
    pub host: String,
    /// `running` (the claim), `passed` or `failed`.
    pub outcome: String,
    /// How it ended, and its last lines of output.
    pub detail: String,
    /// RFC 3339, UTC, by the host's clock.
    pub time: String,
}

impl ReleaseRecord {
    /// Its canonical JSON.
    pub fn to_bytes(&self) -> Vec<u8> {
        super::log::canonical(self)
    }
}

/// A rollout as `promote --waves` and `rollout … --json` print it.
#[derive(Debug, Serialize)]
pub struct RolloutJson {
    /// The environment.
    pub env: String,
    /// The rollout: the `seq` of its `started` event.
    pub rollout: u64,
    /// The manifest rolled out.
    pub target: String,
    /// The manifest it replaces.
    pub stable: String,
    /// `completed`, `aborted`, `paused`, `rolling` or `expired`.
    pub state: String,
    /// The steps taken, oldest first.
    pub steps: Vec<StepJson>,
    /// Why it ended as it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// One step of a rollout.
#[derive(Debug, Serialize)]
pub struct StepJson {
    /// Its event.
    pub seq: u64,
    /// The step.
    pub step: Step,
    /// The wave.
    pub wave: u32,
    /// The hosts on (or staging) the target after it; `["*"]` for all.
    pub hosts: Vec<String>,
    /// When.
    pub time: String,
    /// Who.
    pub actor: String,
    /// Why.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// What a host does about an environment's live event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assignment {
    /// The manifest it runs.
    pub run: String,
    /// A manifest it stages (downloads, verifies, unpacks) without running.
    pub stage: Option<String>,
    /// It may claim and run the release phase of rollout `id` (the `seq`
    /// of its `started` event) once the target is staged.
    pub release: Option<u64>,
    /// A rollout is in flight: look at the pointer more often.
    pub in_flight: bool,
}

/// What `host` does when `to` is the live event's manifest and `rollout`
/// its step, if it is one.
pub fn assign(to: &str, rollout: Option<&Rollout>, host: &str) -> Assignment {
    let idle = Assignment {
        run: to.to_owned(),
        stage: None,
        release: None,
        in_flight: false,
    };
    let Some(r) = rollout.filter(|r| !r.step.ended()) else {
        return idle;
    };
    let mut a = Assignment {
        in_flight: true,
        ..idle
    };
    if !r.names(host) {
        a.run = r.stable.clone();
    } else if r.stage {
        a.run = r.stable.clone();
        a.stage = Some(r.target.clone());
        let releasing = r.step == Step::Release;
        a.release = releasing.then_some(r.id);
    } else {
        a.run = r.target.clone();
    }
    a
}

/// Where the hosts stand with a rollout, from their reports.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Fleet {
    /// Every host that reported, about anything.
    pub known: BTreeSet<String>,
    /// Hosts that run the target, for this rollout.
    pub on_target: BTreeSet<String>,
    /// Hosts that have the target staged (or run it), for this rollout.
    pub staged: BTreeSet<String>,
    /// Hosts whose deploy of the target failed, with why.
    pub failed: Vec<(String, String)>,
    /// Hosts that run the stable manifest, having answered a step of this
    /// rollout (or a later event).
    pub on_stable: BTreeSet<String>,
}

/// Tallies `reports` for rollout `r` of an environment whose events have
/// the digests `digests` (`digests[i]` of event `i + 1`): a report counts
/// when it answers an event of this rollout or after (its `seq` and event
/// digest those of the history), so reports from before the rollout, or
/// forged for an event the history does not hold, count for nothing.
pub fn fleet(reports: &[Report], digests: &[Digest], r: &Rollout) -> Fleet {
    let mut f = Fleet::default();
    for rep in reports {
        f.known.insert(rep.host.clone());
        let answers = rep.seq.filter(|&s| s >= r.id).is_some_and(|s| {
            let stored = usize::try_from(s - 1).ok().and_then(|i| digests.get(i));
            stored.is_some_and(|d| rep.event.as_deref() == Some(d.to_string().as_str()))
        });
        if !answers {
            continue;
        }
        let host = rep.host.clone();
        match (rep.state, rep.manifest == r.target) {
            (State::Active, true) => {
                f.on_target.insert(host.clone());
                f.staged.insert(host);
            }
            (State::Staged, true) => {
                f.staged.insert(host);
            }
            (State::Failed, true) => f
                .failed
                .push((host, rep.detail.clone().unwrap_or_default())),
            (State::Active, false) if rep.manifest == r.stable => {
                f.on_stable.insert(host);
            }
            _ => {}
        }
    }
    f
}

/// The rollout order of `known` hosts for a rollout of `target`: the
/// `canary` hosts first, as given, then the rest by the sha256 of the
/// target and the host id, so the order is stable for one rollout and
/// differs between rollouts.
pub fn order_hosts(known: &[String], canary: &[String], target: &str) -> Vec<String> {
    let mut rest: Vec<(Digest, &String)> = known
        .iter()
        .filter(|h| !canary.contains(h))
        .map(|h| (Digest::of(format!("{target}\n{h}").as_bytes()), h))
        .collect();
    rest.sort();
    rest.dedup_by(|a, b| a.1 == b.1);
    canary
        .iter()
        .cloned()
        .chain(rest.into_iter().map(|(_, h)| h.clone()))
        .collect()
}

/// The hosts of wave `k` (from 1) of `plan`, cumulative: every host of
/// the waves before too. With canary hosts, the first wave is exactly
/// them. `None` for the last wave: every host.
pub fn wave_hosts(plan: &Plan, k: u32) -> Option<Vec<String>> {
    let canary = usize::try_from(plan.canaries).unwrap_or(usize::MAX);
    let i = usize::try_from(k).ok()?.checked_sub(1)?;
    if i + 1 >= plan.waves.len() {
        return None;
    }
    let n = plan.hosts.len();
    let covered = plan.waves[..=i]
        .iter()
        .enumerate()
        .map(|(j, s)| {
            if j == 0 && canary > 0 {
                canary
            } else {
                s.of(n)
            }
        })
        .max()
        .unwrap_or(0);
    Some(plan.hosts[..covered.min(n)].to_vec())
}

/// `sha256:5d8f…`: a manifest id short enough for a status line.
pub fn short(id: &str) -> String {
    let hex = id.strip_prefix("sha256:").unwrap_or(id);
    format!("{}…", &hex[..hex.len().min(8)])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hosts(n: usize) -> Vec<String> {
        (1..=n).map(|i| format!("web{i}")).collect()
    }

    fn plan(waves: &str, n: usize) -> Plan {
        Plan {
            strategy: Strategy::Waves,
            waves: parse_waves(waves).unwrap(),
            bake_secs: 0,
            check: None,
            check_timeout_secs: 60,
            wave_timeout_secs: 60,
            hosts: hosts(n),
            canaries: 0,
            min_staged: None,
            release: None,
            release_hosts: vec![],
        }
    }

    #[test]
    fn waves_parse_and_must_end_with_everyone() {
        assert_eq!(
            parse_waves("1, 25%,100%").unwrap(),
            vec![Size::Count(1), Size::Percent(25), Size::Percent(100)]
        );
        for bad in ["1,50%", "0,100%", "101%", "x,100%", "", "1,,100%"] {
            assert!(parse_waves(bad).is_err(), "{bad}");
        }
        let json = serde_json::to_string(&parse_waves("2,100%").unwrap()).unwrap();
        assert_eq!(json, r#"["2","100%"]"#);
    }

    #[test]
    fn waves_are_cumulative_and_round_up() {
        let p = plan("1,25%,50%,100%", 12);
        assert_eq!(wave_hosts(&p, 1).unwrap(), hosts(1));
        assert_eq!(wave_hosts(&p, 2).unwrap(), hosts(3));
        assert_eq!(wave_hosts(&p, 3).unwrap(), hosts(6));
        assert_eq!(wave_hosts(&p, 4), None, "the last wave is everyone");
        // A smaller wave after a bigger one never takes hosts back.
        let p = plan("5,1,100%", 3);
        assert_eq!(wave_hosts(&p, 2).unwrap(), hosts(3));
        // Canary hosts are the first wave, whatever its size says.
        let p = Plan {
            canaries: 2,
            ..plan("1,50%,100%", 6)
        };
        assert_eq!(wave_hosts(&p, 1).unwrap(), hosts(2));
        assert_eq!(wave_hosts(&p, 2).unwrap(), hosts(3));
        assert_eq!(Size::Percent(1).of(3), 1);
        assert_eq!(Size::Percent(1).of(0), 0);
    }

    #[test]
    fn the_order_is_stable_per_target_and_pins_canaries() {
        let known = hosts(8);
        let a = order_hosts(&known, &[], "sha256:aa");
        assert_eq!(a, order_hosts(&known, &[], "sha256:aa"));
        assert_ne!(a, order_hosts(&known, &[], "sha256:bb"));
        let mut sorted = a.clone();
        sorted.sort();
        assert_eq!(sorted, {
            let mut k = known.clone();
            k.sort();
            k
        });
        let pinned = order_hosts(&known, &["web7".into(), "web8".into()], "sha256:aa");
        assert_eq!(&pinned[..2], ["web7", "web8"]);
        assert_eq!(pinned.len(), 8);
    }

    fn step(step: Step, hosts: &[&str], all: bool, stage: bool) -> Rollout {
        Rollout {
            id: 4,
            target: "T".into(),
            stable: "S".into(),
            step,
            wave: 1,
            hosts: hosts.iter().map(|h| h.to_string()).collect(),
            all,
            stage,
            deadline: None,
            plan: None,
            resume: None,
            detail: None,
        }
    }

    #[test]
    fn a_host_runs_the_target_only_once_a_started_wave_names_it() {
        let w = step(Step::Wave, &["web1"], false, false);
        assert_eq!(assign("S", Some(&w), "web1").run, "T");
        assert_eq!(assign("S", Some(&w), "web2").run, "S");
        assert!(assign("S", Some(&w), "web2").in_flight);
        let last = step(Step::Wave, &[], true, false);
        assert_eq!(assign("S", Some(&last), "newcomer").run, "T");
        let paused = step(Step::Paused, &["web1"], false, false);
        assert_eq!(assign("S", Some(&paused), "web1").run, "T");
        // Ended: the event's `to` rules, whoever was switched.
        let aborted = step(Step::Aborted, &["web1"], false, false);
        let a = assign("S", Some(&aborted), "web1");
        assert_eq!((a.run.as_str(), a.in_flight), ("S", false));
        assert_eq!(assign("T", None, "web1").run, "T");
    }

    #[test]
    fn staging_hosts_keep_the_stable_release_and_only_release_steps_run_it() {
        let stage = step(Step::Stage, &[], true, true);
        let a = assign("S", Some(&stage), "web3");
        assert_eq!(
            (a.run.as_str(), a.stage.as_deref(), a.release),
            ("S", Some("T"), None)
        );
        let release = step(Step::Release, &["web1"], false, true);
        assert_eq!(assign("S", Some(&release), "web1").release, Some(4));
        assert_eq!(assign("S", Some(&release), "web2").stage, None);
    }

    /// A report counts for a rollout only when it answers one of its
    /// events by `seq` and by the digest of that event's stored bytes: a
    /// report forged for the target with a made-up digest, or one from
    /// before the rollout, counts for nothing.
    #[test]
    fn only_reports_naming_the_rollouts_own_events_count() {
        let digests: Vec<Digest> = (1..=5u8).map(|i| Digest::of(&[i])).collect();
        let report = |host: &str, seq: u64, event: &Digest, state: State, manifest: &str| Report {
            schema: super::super::reports::SCHEMA.into(),
            env: "prod".into(),
            host: host.into(),
            manifest: manifest.into(),
            seq: Some(seq),
            event: Some(event.to_string()),
            state,
            running: Some(manifest.into()),
            detail: Some("why".into()),
            time: "2026-12-06T00:00:00Z".into(),
            tool: "verbatim 0".into(),
            release_runner: false,
            last_seen: None,
            interval_ms: None,
        };
        let r = Rollout {
            id: 3,
            ..step(Step::Wave, &["web1", "web2", "web3", "web4"], false, false)
        };
        let forged = Digest::of(b"forged");
        let reports = [
            report("web1", 4, &digests[3], State::Active, "T"),
            report("web2", 4, &forged, State::Active, "T"),
            report("web3", 2, &digests[1], State::Active, "T"),
            report("web4", 5, &digests[4], State::Failed, "T"),
            report("web5", 9, &digests[4], State::Active, "T"),
        ];
        let f = fleet(&reports, &digests, &r);
        assert_eq!(f.on_target, BTreeSet::from(["web1".to_owned()]));
        assert_eq!(f.failed, vec![("web4".to_owned(), "why".to_owned())]);
        assert_eq!(f.known.len(), 5, "every report says the host exists");
    }
}
