//! Hosts report back: `envs/<env>/hosts/<host-id>.json`, each overwritten
//! by its own host after every deploy attempt. Reports never move a
//! pointer; `status` counts them and `promote --wait-hosts` waits on them.
//! Anyone who can write the bucket can write a report, so none is taken on
//! its word: [`read_reports`] keeps only those whose key, schema,
//! environment and host agree ([`check_report`]), and [`tally`] counts for
//! a move only the reports that name that very move (its `seq` and the
//! sha256 of its event's stored bytes). [`read_reports`] reads; the rest is
//! pure.
//!
//! That still lets anyone who can read the event forge a report for it, so
//! a host may sign its reports (`deploy --report-key`): an SSHSIG in
//! namespace `verbatim-report@v1` over the report's exact stored bytes,
//! stored beside it at [`signature_key`] (`envs/<env>/hosts/<id>.sig`),
//! and `promote --wait-hosts … --signed-reports` reads them with
//! [`read_signed_reports`], which keeps only reports whose signature
//! verifies with a key the policy's allowed signers list for the principal
//! named like the host ([`check_signature`]).
//!
//! Why a file beside the report, not a wrapper document: a report stays
//! the very document it was, so readers older than signatures keep
//! counting it, and what is signed is exactly the bytes read. The host
//! writes the signature first and the report second, and a reader reads
//! the report first and the signature second; so a reader may find a
//! newer signature than its report (the host is rewriting both), never an
//! older one paired with newer bytes. A signature that does not verify
//! over the report as read leaves that report unsigned for this read; the
//! next poll reads both again. Either way a signature is checked against
//! the bytes read, never trusted for other bytes.

use anyhow::Result;
use serde::{Deserialize, Serialize};

use super::policy::Policy;
use crate::digest::Digest;
use crate::store::{Key, Store, StoreError};
use crate::trust::{self, AllowedSigners, REPORT_NAMESPACE};

/// The `schema` of every host [`Report`].
pub const SCHEMA: &str = "verbatim.host/v1";

/// The most bytes a report may have; a bigger one is not read.
pub const MAX_BYTES: u64 = 64 << 10;

/// Where a host stands with the manifest its report names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum State {
    /// Fetching, unpacking or running hooks.
    Deploying,
    /// `current` names the manifest and its check passed.
    Active,
    /// A hook or the check failed; the host runs `running`.
    Failed,
    /// The newest signed statement about the environment is older than
    /// the host's `--max-age`: it runs `running` and moves nowhere.
    Stale,
    /// The manifest is on disk, verified and unpacked, ready to flip to
    /// (a rollout's release phase, blue/green before the switch); the
    /// host runs `running`.
    Staged,
    /// The host's agent stopped cleanly (or a deploy was interrupted by a
    /// signal): it runs `running` and follows nothing until it starts again.
    Stopped,
}

/// One host's report, stored at [`report_key`]`(env, host)` and overwritten
/// by that host only. Anyone who can write the bucket can write one too, so
/// a report counts only as far as it is checked: [`check_report`] (its key,
/// schema, environment and host agree) for `status`, and besides for
/// `promote --wait-hosts` ([`tally`]) it must name the move waited for by
/// both its `seq` and the sha256 of that event's stored bytes (`event`).
/// A host with `--report-key` signs its exact bytes into
/// [`signature_key`]`(env, host)`; with `--signed-reports` only a report
/// signed so, by a key the policy lists for its host ([`check_signature`]),
/// counts. The signature lives beside the report, so the report's bytes
/// and this document are the same whether or not it is signed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Report {
    /// Always [`SCHEMA`].
    pub schema: String,
    /// The environment the host follows, or was deployed for; must be the
    /// one whose `hosts/` holds the report.
    pub env: String,
    /// The host's id (`--host-id`, else its hostname; [`check_host_id`]); its
    /// key is [`report_key`] of it.
    pub host: String,
    /// The manifest the report is about: the one deployed, or attempted.
    pub manifest: String,
    /// The event of the environment's pointer the host followed; `None`
    /// when it was deployed by manifest or flipped back by hand.
    pub seq: Option<u64>,
    /// `sha256:<hex>` of the stored bytes of event `seq` as the host read
    /// it: which move the report answers. Absent with `seq`, and in reports
    /// of hosts older than the field (those still show in `status`, but
    /// answer no `--wait-hosts`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event: Option<String>,
    /// Where the host stands with `manifest`.
    pub state: State,
    /// What the host's `current` names now.
    pub running: Option<String>,
    /// The check hook's outcome, or why the attempt failed.
    pub detail: Option<String>,
    /// RFC 3339, UTC, by the host's clock.
    pub time: String,
    /// `verbatim <version>` on the host.
    pub tool: String,
    /// The host's agent may run a rollout's release phase
    /// (`--release-runner`). Absent (not `false`) otherwise.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub release_runner: bool,
    /// RFC 3339, UTC, by the host's clock: when its agent last said it is
    /// alive (its report is rewritten every [`HEARTBEAT_INTERVALS`]
    /// intervals even when nothing moves). Absent from a deploy's report.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_seen: Option<String>,
    /// The agent's `--interval`, in milliseconds: how often it looks.
    /// Absent from a deploy's report.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval_ms: Option<u64>,
}

/// An agent rewrites its report at least every this many intervals.
pub const HEARTBEAT_INTERVALS: u32 = 3;

/// A host whose agent has not been seen for this many intervals (and at
/// least [`STALE_MIN_SECS`]) is stale: its agent is dead or cut off.
pub const STALE_INTERVALS: u32 = 10;

/// The shortest time after which a host counts as stale, so an agent
/// looking every 200 ms does not flap.
pub const STALE_MIN_SECS: u64 = 10;

/// Whether a host's agent is alive, as its report tells.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Liveness {
    /// Its agent was seen within [`STALE_INTERVALS`] of its interval.
    Live,
    /// Its agent was not: dead, stopped uncleanly or cut off.
    Stale,
    /// Its agent stopped cleanly.
    Stopped,
    /// The report is a deploy's, not an agent's: nothing to tell by.
    Unknown,
}

impl Report {
    /// Whether the host is alive at `now` (seconds since the epoch), by
    /// its `last_seen` and interval.
    pub fn liveness(&self, now: u64) -> Liveness {
        if self.state == State::Stopped {
            return Liveness::Stopped;
        }
        let (Some(seen), Some(ms)) = (self.last_seen.as_deref(), self.interval_ms) else {
            return Liveness::Unknown;
        };
        let Some(seen) = crate::clock::parse_rfc3339(seen) else {
            return Liveness::Stale;
        };
        let limit = (ms.saturating_mul(u64::from(STALE_INTERVALS)) / 1000).max(STALE_MIN_SECS);
        if now.saturating_sub(seen) > limit {
            Liveness::Stale
        } else {
            Liveness::Live
        }
    }
}

impl Report {
    /// Its canonical JSON, stored at [`report_key`] (overwritten by its host
    /// only).
    pub fn to_bytes(&self) -> Vec<u8> {
        super::log::canonical(self)
    }
}

/// `envs/<env>/hosts/`: every host report of `env`.
pub fn hosts_prefix(env: &str) -> String {
    format!("envs/{env}/hosts/")
}

/// `envs/<env>/hosts/<host>.json`: the one report of `host`.
pub fn report_key(env: &str, host: &str) -> String {
    format!("{}{host}.json", hosts_prefix(env))
}

/// `envs/<env>/hosts/<host>.sig`: the signature of `host`'s report, if it
/// signs them (written before the report; see the module docs).
pub fn signature_key(env: &str, host: &str) -> String {
    format!("{}{host}.sig", hosts_prefix(env))
}

/// Whether `key`, listed under [`hosts_prefix`]`(env)`, is the signature
/// of a host's report ([`signature_key`]): not a report, and no warning.
fn is_signature_key(env: &str, key: &str) -> bool {
    key.strip_prefix(&hosts_prefix(env))
        .and_then(|rest| rest.strip_suffix(".sig"))
        .is_some_and(|id| check_host_id(id).is_ok())
}

/// The allowed signers `--signed-reports` checks reports against: the
/// store's `policy`'s, which must list some key; why not, otherwise.
pub fn report_signers(policy: Option<&Policy>) -> Result<AllowedSigners, String> {
    let how = "run `verbatim policy set --allowed-signers FILE --reason …` with a line per host, its id then its public key (`web1 ssh-ed25519 AAAA…`)";
    let Some(text) = policy.and_then(|p| p.allowed_signers.as_deref()) else {
        return Err(format!(
            "--signed-reports counts reports signed by keys the store's policy lists, and it lists none: {how}"
        ));
    };
    let signers = AllowedSigners::parse(text)
        .map_err(|e| format!("the store's policy's allowed_signers: {e}; {how}"))?;
    if signers.is_empty() {
        return Err(format!(
            "--signed-reports counts reports signed by keys the store's policy lists, and its allowed_signers list no key: {how}"
        ));
    }
    Ok(signers)
}

/// Whether `sig`, read at [`signature_key`]`(env, host)` after the report
/// `bytes` of `host`, makes that report one `host` signed: an SSHSIG in
/// [`REPORT_NAMESPACE`] over exactly `bytes`, by a key `signers` list for
/// the principal `host` at `now`; why not, otherwise.
pub fn check_signature(
    host: &str,
    bytes: &[u8],
    sig: Option<&[u8]>,
    signers: &AllowedSigners,
    now: u64,
) -> Result<(), String> {
    let Some(sig) = sig else {
        return Err(format!(
            "it is not signed (no {}.sig beside it; run the host with --report-key)",
            host
        ));
    };
    let key = trust::check(sig, bytes, REPORT_NAMESPACE).map_err(|e| {
        format!("its signature {host}.sig {e} (a wrong signature, or the host is rewriting it: read again next poll)")
    })?;
    if !signers.allows(&key, host, REPORT_NAMESPACE, now) {
        return Err(format!(
            "it is signed by key {}, which the policy's allowed signers do not list for principal {host} in namespace {REPORT_NAMESPACE}",
            trust::fingerprint(&key)
        ));
    }
    Ok(())
}

/// A host id becomes a store key: letters, digits, `.`, `_`, `-`, at most
/// 64, not starting with `.` or `-`.
pub fn check_host_id(id: &str) -> Result<(), String> {
    let ok = !id.is_empty()
        && id.len() <= 64
        && !id.starts_with(['.', '-'])
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "host id `{}` is not usable: use letters, digits, `.`, `_` and `-` (at most 64, not starting with `.` or `-`)",
            crate::text::escape(id)
        ))
    }
}

/// The host id a listed key under [`hosts_prefix`]`(env)` is the report of:
/// the key must be exactly `envs/<env>/hosts/<id>.json`, `<id>` a host id
/// (so nothing nested); why not, otherwise.
pub fn key_host<'k>(env: &str, key: &'k str) -> Result<&'k str, String> {
    key.strip_prefix(&hosts_prefix(env))
        .and_then(|rest| rest.strip_suffix(".json"))
        .filter(|id| check_host_id(id).is_ok())
        .ok_or_else(|| format!("not envs/{env}/hosts/<host-id>.json (nested, or not a host id)"))
}

/// Whether `report`, stored at `key`, may count at all in `env`: its key is
/// exactly [`report_key`] of its host, its schema is [`SCHEMA`] and its
/// `env` is `env`; why not, otherwise.
pub fn check_report(env: &str, key: &str, report: &Report) -> Result<(), String> {
    let id = key_host(env, key)?;
    if report.schema != SCHEMA {
        return Err(format!("its schema is {:?}, not {SCHEMA:?}", report.schema));
    }
    if report.env != env {
        return Err(format!(
            "it says it is about environment {:?}, not {env:?}",
            report.env
        ));
    }
    if report.host != id {
        return Err(format!(
            "it says it is from host {:?}, not {id:?} as its key does",
            report.host
        ));
    }
    Ok(())
}

/// Whether the event `report` names (`seq` and `event`) is the one the
/// environment's history holds (`stored`: the sha256 of event `seq`'s
/// stored bytes, `None` when the history has no such event). A report
/// naming no event (by hand, or from an older host) passes.
pub fn check_named_event(report: &Report, stored: Option<&Digest>) -> Result<(), String> {
    let (Some(seq), Some(named)) = (report.seq, &report.event) else {
        return Ok(());
    };
    match stored {
        None => Err(format!(
            "it names event {seq}, which the history does not hold"
        )),
        Some(d) if d.to_string() != *named => Err(format!(
            "it names event {seq} as {named}, but that event's stored bytes are {d}"
        )),
        Some(_) => Ok(()),
    }
}

/// The move `--wait-hosts` waits on.
#[derive(Debug, Clone, Copy)]
pub struct Move<'a> {
    /// The manifest it moved the environment to.
    pub manifest: &'a str,
    /// Its event.
    pub seq: u64,
    /// `sha256:<hex>` of that event's stored bytes.
    pub event: &'a str,
    /// The hosts waited for by id; empty, any host counts.
    pub hosts: &'a [String],
}

/// How the hosts stand with one move of an environment, for
/// `promote --wait-hosts`.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Tally {
    /// Hosts that run it, checked.
    pub active: Vec<String>,
    /// Hosts whose deploy of it failed, each with why.
    pub failed: Vec<(String, String)>,
    /// Reports that cannot be about this move though they claim to be, or
    /// from hosts not waited for: each key with why it does not count.
    pub ignored: Vec<(String, String)>,
}

/// Tallies `reports` (each passed [`check_report`]) for move `mv`: a
/// report counts when its host is waited for and it names that move
/// exactly: the same `seq`, the same event digest, the same manifest. A
/// report about an earlier event, or no event, is not there yet and counts
/// for nothing; one still deploying neither.
pub fn tally(reports: &[Report], mv: &Move<'_>) -> Tally {
    let mut t = Tally::default();
    for r in reports {
        let why = if !mv.hosts.is_empty() && !mv.hosts.contains(&r.host) {
            Some(format!("host {} is not one of those waited for", r.host))
        } else {
            match r.seq {
                None => continue,
                Some(s) if s < mv.seq => continue,
                Some(s) if s > mv.seq => Some(format!(
                    "it names event {s}, not event {} the check waits on",
                    mv.seq
                )),
                Some(_) => match r.event.as_deref() {
                    None => Some(format!(
                        "it names no event digest (written by `{}`, older than this check); upgrade the host",
                        r.tool
                    )),
                    Some(e) if e != mv.event => Some(format!(
                        "it names event {} as {e}, but that event is {}",
                        mv.seq, mv.event
                    )),
                    Some(_) if r.manifest != mv.manifest => Some(format!(
                        "it names event {} but manifest {}, not {}",
                        mv.seq, r.manifest, mv.manifest
                    )),
                    Some(_) => None,
                },
            }
        };
        if let Some(why) = why {
            t.ignored.push((report_key(&r.env, &r.host), why));
            continue;
        }
        match r.state {
            State::Active => t.active.push(r.host.clone()),
            State::Failed => t
                .failed
                .push((r.host.clone(), r.detail.clone().unwrap_or_default())),
            State::Deploying | State::Stale | State::Staged | State::Stopped => {}
        }
    }
    t
}

/// The reports under `envs/<env>/hosts/`, as read.
#[derive(Debug, Default)]
pub struct Reports {
    /// Those that passed [`check_report`].
    pub reports: Vec<Report>,
    /// Every other key listed there, with why it does not count.
    pub ignored: Vec<(String, String)>,
}

/// Reads every report under `envs/<env>/hosts/`: those that pass
/// [`check_report`], and every other key with why it does not count (the
/// caller says so). Signatures beside them ([`signature_key`]) are neither.
pub fn read_reports(store: &dyn Store, env: &str) -> Result<Reports> {
    read_with(store, env, None)
}

/// [`read_reports`], keeping only the reports their hosts signed
/// ([`check_signature`] with `signers` at `now`); every other report is
/// ignored with why (`promote --signed-reports`).
pub fn read_signed_reports(
    store: &dyn Store,
    env: &str,
    signers: &AllowedSigners,
    now: u64,
) -> Result<Reports> {
    read_with(store, env, Some((signers, now)))
}

/// The signature at [`signature_key`]`(env, host)`, if there is one.
fn read_signature(store: &dyn Store, env: &str, host: &str) -> Result<Option<Vec<u8>>> {
    let key = Key::new(signature_key(env, host))?;
    match store.get(&key) {
        Ok(o) => Ok(Some(o.into_bytes_limited(trust::MAX_SIGNATURE_BYTES)?)),
        Err(StoreError::NotFound { .. }) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

fn read_with(
    store: &dyn Store,
    env: &str,
    signed: Option<(&AllowedSigners, u64)>,
) -> Result<Reports> {
    let mut out = Reports::default();
    for listed in store.list(&hosts_prefix(env))? {
        let key = listed.key.as_str().to_owned();
        if is_signature_key(env, &key) {
            continue;
        }
        if let Err(why) = key_host(env, &key) {
            out.ignored.push((key, why));
            continue;
        }
        if listed.size > MAX_BYTES {
            out.ignored
                .push((key, format!("it is over {MAX_BYTES} bytes")));
            continue;
        }
        let bytes = match store.get(&listed.key) {
            Ok(o) => o.into_bytes_limited(MAX_BYTES)?,
            Err(StoreError::NotFound { .. }) => continue,
            Err(e) => return Err(e.into()),
        };
        let checked = serde_json::from_slice::<Report>(&bytes)
            .map_err(|e| format!("not a host report ({e})"))
            .and_then(|r| check_report(env, &key, &r).map(|()| r));
        // The report first, its signature after: see the module docs.
        let checked = match (checked, signed) {
            (Ok(r), Some((signers, now))) => {
                let sig = read_signature(store, env, &r.host)?;
                check_signature(&r.host, &bytes, sig.as_deref(), signers, now).map(|()| r)
            }
            (checked, _) => checked,
        };
        match checked {
            Ok(r) => out.reports.push(r),
            Err(why) => out.ignored.push((key, why)),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const EV7: &str = "sha256:0707070707070707070707070707070707070707070707070707070707070707";

    fn report(host: &str, manifest: &str, seq: Option<u64>, state: State) -> Report {
        Report {
            schema: SCHEMA.into(),
            env: "prod".into(),
            host: host.into(),
            manifest: manifest.into(),
            seq,
            event: seq.map(|_| EV7.into()),
            state,
            running: Some(manifest.into()),
            detail: Some("why".into()),
            time: "2026-11-29T00:00:00Z".into(),
            tool: "verbatim 0".into(),
            release_runner: false,
            last_seen: None,
            interval_ms: None,
        }
    }

    fn mv<'a>(hosts: &'a [String]) -> Move<'a> {
        Move {
            manifest: "m2",
            seq: 7,
            event: EV7,
            hosts,
        }
    }

    fn keys(t: &Tally) -> Vec<&str> {
        t.ignored.iter().map(|(k, _)| k.as_str()).collect()
    }

    #[test]
    fn tally_counts_reports_of_this_very_move_only() {
        let mut forged = report("g", "m2", Some(7), State::Active);
        forged.event = Some(EV7.replace("07", "08"));
        let mut old_host = report("h", "m2", Some(7), State::Active);
        old_host.event = None;
        let reports = [
            report("a", "m2", Some(7), State::Active),
            report("b", "m2", Some(6), State::Active), // an older move: not yet
            report("c", "m2", None, State::Active),    // by hand: not yet
            report("d", "m1", Some(7), State::Active), // event 7 is not m1
            report("e", "m2", Some(7), State::Failed),
            report("f", "m2", Some(7), State::Deploying),
            report("x", "m2", Some(u64::MAX), State::Active), // not "at least"
            forged,
            old_host,
        ];
        let t = tally(&reports, &mv(&[]));
        assert_eq!(t.active, ["a"]);
        assert_eq!(t.failed, [("e".to_owned(), "why".to_owned())]);
        assert_eq!(
            keys(&t),
            [
                "envs/prod/hosts/d.json",
                "envs/prod/hosts/x.json",
                "envs/prod/hosts/g.json",
                "envs/prod/hosts/h.json"
            ]
        );
        assert!(
            t.ignored[1].1.contains("event 18446744073709551615"),
            "{t:?}"
        );
        assert!(t.ignored[3].1.contains("upgrade the host"), "{t:?}");
    }

    #[test]
    fn tally_with_a_list_counts_only_the_hosts_named() {
        let reports = [
            report("a", "m2", Some(7), State::Active),
            report("b", "m2", Some(7), State::Active),
        ];
        let t = tally(&reports, &mv(&["b".to_owned(), "c".to_owned()]));
        assert_eq!(t.active, ["b"]);
        assert_eq!(keys(&t), ["envs/prod/hosts/a.json"]);
        assert!(t.ignored[0].1.contains("not one of those waited for"));
    }

    #[test]
    fn a_report_counts_only_at_its_own_key_for_its_own_environment() {
        let r = report("web1", "m", Some(1), State::Active);
        assert_eq!(
            check_report("prod", "envs/prod/hosts/web1.json", &r),
            Ok(())
        );
        for (env, key, why) in [
            ("dev", "envs/dev/hosts/web1.json", "environment \"prod\""),
            ("prod", "envs/prod/hosts/web2.json", "from host \"web1\""),
            ("prod", "envs/prod/hosts/sub/web1.json", "nested"),
            ("prod", "envs/prod/hosts/web1.txt", "nested"),
            ("prod", "envs/prod/hosts/.json", "nested"),
        ] {
            let e = check_report(env, key, &r).unwrap_err();
            assert!(e.contains(why), "{key}: {e}");
        }
        let mut v2 = r.clone();
        v2.schema = "verbatim.host/v2".into();
        let e = check_report("prod", "envs/prod/hosts/web1.json", &v2).unwrap_err();
        assert!(e.contains("schema"), "{e}");
    }

    #[test]
    fn a_named_event_must_be_the_stored_one() {
        let r = report("a", "m", Some(7), State::Active);
        let d: Digest = EV7.parse().unwrap();
        assert_eq!(check_named_event(&r, Some(&d)), Ok(()));
        assert!(check_named_event(&r, None).is_err());
        assert!(check_named_event(&r, Some(&Digest::of(b"x"))).is_err());
        let mut old = r.clone();
        old.event = None;
        assert_eq!(check_named_event(&old, None), Ok(()));
    }

    fn key() -> ssh_key::PrivateKey {
        ssh_key::PrivateKey::random(&mut ssh_key::rand_core::OsRng, ssh_key::Algorithm::Ed25519)
            .unwrap()
    }

    #[test]
    fn a_signed_report_counts_only_signed_by_its_hosts_key_over_its_bytes() {
        let (web1, web2) = (key(), key());
        let signers = AllowedSigners::parse(&format!(
            "web1 {}\nweb2 {}\n",
            web1.public_key().to_openssh().unwrap(),
            web2.public_key().to_openssh().unwrap()
        ))
        .unwrap();
        let bytes = report("web2", "m2", Some(7), State::Active).to_bytes();
        let sign =
            |k: &ssh_key::PrivateKey, ns: &str, b: &[u8]| trust::sign_bytes(k, ns, b).unwrap();
        let check = |sig: Option<&[u8]>| check_signature("web2", &bytes, sig, &signers, 0);

        assert_eq!(check(Some(&sign(&web2, REPORT_NAMESPACE, &bytes))), Ok(()));
        for (sig, why) in [
            (None, "not signed"),
            // web1's key is listed, but not for web2.
            (
                Some(sign(&web1, REPORT_NAMESPACE, &bytes)),
                "not list for principal web2",
            ),
            // Someone's key no policy lists.
            (
                Some(sign(&key(), REPORT_NAMESPACE, &bytes)),
                "not list for principal web2",
            ),
            // The right key, over other bytes (an older report).
            (
                Some(sign(&web2, REPORT_NAMESPACE, b"older")),
                "does not verify",
            ),
            // The right key, in another namespace (a manifest signature).
            (
                Some(sign(&web2, trust::MANIFEST_NAMESPACE, &bytes)),
                "namespace",
            ),
            (Some(b"junk".to_vec()), "not an SSH signature"),
        ] {
            let e = check(sig.as_deref()).unwrap_err();
            assert!(e.contains(why), "{why}: {e}");
        }
    }

    #[test]
    fn signed_reports_need_a_policy_listing_keys() {
        let with = |signers: Option<&str>| {
            let mut p = Policy::from_order(&["dev".to_owned()]);
            p.allowed_signers = signers.map(str::to_owned);
            report_signers(Some(&p))
        };
        assert!(report_signers(None)
            .unwrap_err()
            .contains("policy set --allowed-signers"));
        for (signers, why) in [
            (None, "lists none"),
            (Some("# nobody\n"), "list no key"),
            (Some("web1 not-a-key\n"), "line 1"),
        ] {
            let e = with(signers).unwrap_err();
            assert!(e.contains(why) && e.contains("web1 ssh-ed25519"), "{e}");
        }
        let line = format!("web1 {}\n", key().public_key().to_openssh().unwrap());
        assert!(!with(Some(&line)).unwrap().is_empty());
    }

    #[test]
    fn a_signature_beside_a_report_is_no_report() {
        assert!(is_signature_key("prod", "envs/prod/hosts/web1.sig"));
        assert_eq!(signature_key("prod", "web1"), "envs/prod/hosts/web1.sig");
        for not in [
            "envs/prod/hosts/web1.json",
            "envs/prod/hosts/sub/web1.sig",
            "envs/prod/hosts/.sig",
            "envs/dev/hosts/web1.sig",
        ] {
            assert!(!is_signature_key("prod", not), "{not}");
        }
        assert!(key_host("prod", "envs/prod/hosts/web1.sig").is_err());
    }

    #[test]
    fn host_ids() {
        for ok in ["web-1", "ip-10-0-0-1.ec2.internal", "A_b"] {
            assert!(check_host_id(ok).is_ok(), "{ok}");
        }
        for bad in ["", ".x", "-x", "a/b", "a b", "é", &"x".repeat(65)] {
            assert!(check_host_id(bad).is_err(), "{bad}");
        }
    }
}
