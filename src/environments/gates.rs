//! The rules of moving a pointer: the promotion order and its gate, which
//! manifests an environment rolled back from, where a rollback goes, and
//! the names of environments (with a did-you-mean). Pure: no I/O.

use std::collections::BTreeMap;

use super::event::{event_key, CheckStatus, Event, Gate, Kind};

/// The environment before `env` in the promotion order, or `None` for the first.
/// `Err` when `env` is not declared: [`undeclared`], the order from `source`.
pub fn previous<'a>(
    order: &'a [String],
    env: &str,
    source: &str,
) -> Result<Option<&'a str>, String> {
    match order.iter().position(|e| e == env) {
        Some(0) => Ok(None),
        Some(i) => Ok(Some(&order[i - 1])),
        None => Err(undeclared(order, env, source)),
    }
}

/// "`prd` is not in the environment order (dev, preprod, prod) of
/// `source`; did you mean `prod`?": what every command that takes an
/// environment says of a name the order lacks.
pub fn undeclared(order: &[String], env: &str, source: &str) -> String {
    let mut msg = format!(
        "`{}` is not in the environment order ({}) of {source}",
        crate::text::escape(env),
        order.join(", ")
    );
    if let Some(near) = closest(env, order) {
        msg.push_str(&format!("; did you mean `{near}`?"));
    }
    msg
}

/// The candidate nearest to `name` by edit distance, if it is near enough
/// to be a typo (at most a third of the name's length, at least 1).
pub fn closest<'a>(name: &str, candidates: &'a [String]) -> Option<&'a str> {
    let limit = (name.chars().count() / 3).max(1);
    candidates
        .iter()
        .map(|c| (edit_distance(name, c), c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c.as_str())
}

/// Edit distance in chars, a swap of two neighbours counting as one edit
/// (`dve` is one from `dev`): the optimal string alignment distance.
/// Names are short: O(n·m) is fine.
pub(crate) fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    // Rows i - 2, i - 1 and i of the table.
    let mut before: Vec<usize> = vec![0; b.len() + 1];
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for i in 1..=a.len() {
        let mut row = vec![i; b.len() + 1];
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            row[j] = (prev[j - 1] + cost).min(prev[j] + 1).min(row[j - 1] + 1);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                row[j] = row[j].min(before[j - 2] + 1);
            }
        }
        before = std::mem::replace(&mut prev, row);
    }
    prev[b.len()]
}

/// The order gate: `manifest` may enter `env` while it is live, or was live
/// and not rolled back from, in the environment before it (its applied
/// `history` given, and where the canary check of its live move stands,
/// if it started one), or anywhere first. Live there with a check that has
/// not passed is not enough: it is not verified there yet.
pub fn order_gate(
    prev: Option<&str>,
    prev_history: &[Event],
    prev_check: Option<CheckStatus>,
    manifest: &str,
) -> Gate {
    let Some(prev) = prev else {
        return Gate {
            gate: "order".into(),
            ok: true,
            detail: "first environment: any published manifest".into(),
        };
    };
    let live = prev_history.last().filter(|e| e.to == manifest);
    let (ok, detail) = if let Some(live) = live {
        let seq = live.seq;
        let way_out = "or pass --force --reason";
        match prev_check {
            None | Some(CheckStatus::Passed) => (true, format!("is live in {prev}")),
            Some(CheckStatus::Pending) => (
                false,
                format!(
                    "is live in {prev}, but its canary check there (event {seq}) has not finished; wait for it, {way_out}"
                ),
            ),
            Some(CheckStatus::Expired) => (
                false,
                format!(
                    "is live in {prev} unchecked: its canary check there (event {seq}) never finished; roll {prev} back and promote it again, {way_out}"
                ),
            ),
            Some(CheckStatus::Failed) => (
                false,
                format!(
                    "is live in {prev}, but its canary check there (event {seq}) failed; fix forward, {way_out}"
                ),
            ),
        }
    } else if let Some(seq) = rolled_back_from(prev_history).get(manifest) {
        (
            false,
            format!(
                "{prev} rolled back from {manifest} ({}); fix forward, or promote it to {prev} again, or pass --force --reason",
                event_key(prev, *seq)
            ),
        )
    } else if was_live(prev_history, manifest) {
        (true, format!("was live in {prev} and not rolled back from"))
    } else {
        (
            false,
            format!("has never been promoted to {prev}; promote it there first, or pass --force --reason"),
        )
    };
    Gate {
        gate: "order".into(),
        ok,
        detail,
    }
}

/// The manifests an environment rolled back from, each with the event that
/// did so, as of the end of `history` (oldest first). Rolling back *from* a
/// manifest marks it: the `from` of every rollback and auto-rollback event
/// is, by definition, rolled back from; no other field records it. A later
/// event moving the environment *to* that manifest again (a promote of the
/// same bytes, or a rollback naming it with `--to`) clears the mark, so the
/// manifest live is never marked.
pub fn rolled_back_from(history: &[Event]) -> BTreeMap<&str, u64> {
    let mut marked = BTreeMap::new();
    for e in history {
        if let (Kind::Rollback | Kind::AutoRollback, Some(from)) = (e.kind, &e.from) {
            marked.insert(from.as_str(), e.seq);
        }
        marked.remove(e.to.as_str());
    }
    marked
}

/// Where `rollback` goes: `to_seq` names an event whose manifest to restore
/// (whatever it is: naming it is choosing it); otherwise the newest manifest
/// live before the current one that the environment has not rolled back
/// from ([`rolled_back_from`]). Rolling back twice therefore walks back
/// (c → b → a), never toggles (c → b → c). `history` is oldest first.
pub fn rollback_target(history: &[Event], to_seq: Option<u64>) -> Result<String, String> {
    let current = history
        .last()
        .ok_or("the environment has no history to roll back")?;
    if let Some(seq) = to_seq {
        return history
            .iter()
            .find(|e| e.seq == seq)
            .map(|e| e.to.clone())
            .ok_or_else(|| format!("no event {seq} in the history (1..={})", current.seq));
    }
    let marked = rolled_back_from(history);
    if let Some(e) = history
        .iter()
        .rev()
        .find(|e| e.to != current.to && !marked.contains_key(e.to.as_str()))
    {
        return Ok(e.to.clone());
    }
    if marked.is_empty() {
        return Err("nothing was live before the current manifest; nothing to roll back to".into());
    }
    Err(format!(
        "every manifest live before the current one was rolled back from ({}); name one with --to MANIFEST|N to return to it anyway",
        marked
            .iter()
            .map(|(m, seq)| format!("{m} at event {seq}"))
            .collect::<Vec<_>>()
            .join(", ")
    ))
}

/// Whether `manifest` was ever live in an environment with this history.
pub fn was_live(history: &[Event], manifest: &str) -> bool {
    history.iter().any(|e| e.to == manifest)
}
