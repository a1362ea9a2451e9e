//! Where rollouts stand, read only: `rollout status` and the rollout
//! the store's policy sets for an environment.

use anyhow::Result;
use serde::Serialize;

use super::reader::Reader;
use super::reports::read_reports;
use super::rolling::{plan_of, rollout_json};
use super::rollout::{fleet, short, Fleet, RolloutJson, Step};
use super::waves::RolloutDefault;
use crate::clock::{now, parse_rfc3339};
use crate::text::escape;

/// Where the newest rollout of `env` stands, as `rollout status` prints
/// it; `None` when there never was one.
pub fn status(reader: &Reader<'_>, env: &str) -> Result<Option<RolloutStatus>> {
    let state = reader.load(env)?;
    let Some((live, r)) = state
        .applied()
        .iter()
        .rev()
        .find_map(|e| Some((e, e.rollout.as_ref()?)))
    else {
        return Ok(None);
    };
    let plan = plan_of(&state, r.id)?;
    let due = r.deadline.as_deref().and_then(parse_rfc3339);
    let words = match r.step {
        Step::Completed => "completed",
        Step::Aborted => "aborted",
        Step::Paused => "paused",
        _ if due.is_some_and(|d| now() > d) => "expired",
        _ => "rolling",
    };
    let f = match read_reports(reader.store(), env) {
        Ok(rep) => fleet(&rep.reports, &state.digests, r),
        Err(_) => Fleet::default(),
    };
    let on_target = f.on_target.len();
    let hosts = plan.hosts.len().max(f.known.len());
    let bake_left = (r.step == Step::WaveDone)
        .then(|| parse_rfc3339(&live.time))
        .flatten()
        .map(|t| t.saturating_add(plan.bake_secs).saturating_sub(now()));
    let mut line = format!(
        "{env}  {words} {} over {}",
        short(&r.target),
        short(&r.stable)
    );
    if !r.step.ended() {
        line.push_str(&format!(
            "  wave {}/{} ({on_target}/{hosts} hosts)  {}",
            r.wave,
            plan.waves.len(),
            r.step.name()
        ));
        if let Some(left) = bake_left {
            line.push_str(&format!(
                "  baking {} left",
                crate::text::human_duration(left)
            ));
        }
    }
    if let Some(d) = &r.detail {
        line.push_str(&format!("  ({})", escape(d)));
    }
    Ok(Some(RolloutStatus {
        line,
        on_target,
        hosts,
        bake_left_secs: bake_left,
        rollout: rollout_json(&state, r.id, words),
    }))
}

/// `rollout status ENV`.
#[derive(Debug, Serialize)]
pub struct RolloutStatus {
    /// The rollout and its steps.
    #[serde(flatten)]
    pub rollout: RolloutJson,
    /// Hosts that run the target.
    pub on_target: usize,
    /// Hosts known.
    pub hosts: usize,
    /// Seconds of bake left, while a wave bakes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bake_left_secs: Option<u64>,
    /// The one line a person reads.
    #[serde(skip)]
    pub line: String,
}

/// The rollout the store's policy sets for `env`, if any (`policy set
/// --rollout`).
pub fn policy_default(reader: &Reader<'_>, env: &str) -> Result<Option<RolloutDefault>> {
    let order = super::policy_store::stored_order(reader, None)?;
    Ok(order
        .and_then(|o| o.policy)
        .and_then(|p| p.rules(env).and_then(|r| r.rollout.clone())))
}
