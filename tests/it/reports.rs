//! Hosts' reports are written into a bucket anyone with write access can
//! write: a report counts for `promote --wait-hosts` only when it names the
//! very move waited for (its event and the sha256 of that event's bytes),
//! sits at `envs/<env>/hosts/<host>.json` and agrees with that key. Forged
//! reports planted by a script count for nothing and are named on stderr;
//! real `deploy` processes answer by count and by name.

use std::fs;
use std::path::Path;
use std::process::{Child, Output, Stdio};
use std::time::{Duration, Instant};

use crate::environments::{history, live, release};
use crate::util::Project;

/// A report as a script might plant one, `host` and `env` as claimed.
pub fn forged(env: &str, host: &str, manifest: &str, seq: u64, event: Option<&str>) -> String {
    let mut v = serde_json::json!({
        "schema": "verbatim.host/v1",
        "env": env,
        "host": host,
        "manifest": manifest,
        "seq": seq,
        "state": "active",
        "running": manifest,
        "detail": "forged",
        "time": "2026-12-01T00:00:00Z",
        "tool": "verbatim 9.9.9",
    });
    if let Some(e) = event {
        v["event"] = e.into();
    }
    v.to_string()
}

/// Plants `body` at `key` in the project's local store, as a script
/// writing the bucket would.
pub fn plant(p: &Project, key: &str, body: &str) {
    let path = p.store().join(key);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, body).unwrap();
}

#[test]
fn forged_reports_satisfy_no_wait_hosts_and_each_is_named_once() {
    let p = Project::new();
    let m1 = release(&p, "1");
    p.ok(&["promote", &m1, "--to", "dev"]);
    let m2 = release(&p, "2");
    // The promote below makes event 2 of dev.
    let zeros = format!("sha256:{}", "0".repeat(64));
    for ghost in ["ghost1", "ghost2", "ghost3"] {
        let body = forged("dev", ghost, &m2, u64::MAX, Some(&zeros));
        plant(&p, &format!("envs/dev/hosts/{ghost}.json"), &body);
    }
    let wrong_event = forged("dev", "ghost4", &m2, 2, Some(&zeros));
    plant(&p, "envs/dev/hosts/ghost4.json", &wrong_event);
    let prod = forged("prod", "prod1", &m2, 2, Some(&zeros));
    plant(&p, "envs/dev/hosts/prod1.json", &prod);
    let nested = forged("dev", "x", &m2, 2, Some(&zeros));
    plant(&p, "envs/dev/hosts/sub/x.json", &nested);
    let other = forged("dev", "web1", &m2, 2, Some(&zeros));
    plant(&p, "envs/dev/hosts/web9.json", &other);
    // A report from a host older than event digests: shown, never waited on.
    let old = forged("dev", "old1", &m2, 2, None);
    plant(&p, "envs/dev/hosts/old1.json", &old);

    let start = Instant::now();
    let err = p.fails(
        &[
            "promote",
            &m2,
            "--to",
            "dev",
            "--wait-hosts",
            "3",
            "--wait-timeout",
            "3s",
        ],
        6,
    );
    assert!(start.elapsed() >= Duration::from_secs(3), "{err}");
    assert!(err.contains("only 0/3 hosts"), "{err}");
    for (key, why) in [
        (
            "ghost1.json",
            "it names event 18446744073709551615, not event 2",
        ),
        ("ghost4.json", "it names event 2 as sha256:000"),
        (
            "prod1.json",
            "it says it is about environment \"prod\", not \"dev\"",
        ),
        ("sub/x.json", "not envs/dev/hosts/<host-id>.json"),
        (
            "web9.json",
            "it says it is from host \"web1\", not \"web9\"",
        ),
        ("old1.json", "it names no event digest"),
    ] {
        let prefix = format!("envs/dev/hosts/{key}: ignored: ");
        // Said once, though the reports were read at every poll.
        assert_eq!(err.matches(&prefix).count(), 1, "{prefix}:\n{err}");
        assert!(
            err.contains(&format!("{prefix}{why}")),
            "{key}: {why}:\n{err}"
        );
    }
    let events = history(&p, "dev");
    assert_eq!(events[0]["kind"], "auto-rollback", "{events:?}");
    assert_eq!(live(&p, "dev").as_deref(), Some(m1.as_str()));

    // `status` shows only the well-formed report naming no event; every
    // other is a warning.
    let out = p
        .cmd(&["status", "dev", "--hosts", "--json"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let hosts: Vec<&str> = v["environments"][0]["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["host"].as_str().unwrap())
        .collect();
    assert_eq!(hosts, ["old1"], "{v}");
    let err = String::from_utf8_lossy(&out.stderr);
    for key in ["ghost1", "ghost4", "prod1", "sub/x", "web9"] {
        let line = format!("envs/dev/hosts/{key}.json: not counted");
        assert!(err.contains(&line), "{line}:\n{err}");
    }
}

/// Starts `promote M --to dev --wait-hosts WAIT --wait-timeout T --json`.
fn promote_waiting(p: &Project, m: &str, wait: &str, timeout: &str) -> Child {
    p.cmd(&[
        "promote",
        m,
        "--to",
        "dev",
        "--wait-hosts",
        wait,
        "--wait-timeout",
        timeout,
        "--json",
    ])
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .expect("starting verbatim promote")
}

/// Waits until dev's pointer names `m` (the promote moved it).
pub fn until_live(p: &Project, m: &str) {
    let start = Instant::now();
    while live(p, "dev").as_deref() != Some(m) {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "dev never moved to {m}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `verbatim deploy dev` on host `id`, its root under `hosts`.
fn deploy(p: &Project, hosts: &Path, id: &str) {
    let out = p
        .cmd(&["deploy", "dev", "--host-id", id])
        .arg("--root")
        .arg(hosts.join(id))
        .arg("--store")
        .arg(p.store())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "deploy on {id}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Deploys on `ids` once the promote moved dev to `m`; its output.
fn answer(p: &Project, child: Child, m: &str, hosts: &Path, ids: &[&str]) -> Output {
    until_live(p, m);
    for id in ids {
        deploy(p, hosts, id);
    }
    child.wait_with_output().unwrap()
}

#[test]
fn deployed_hosts_answer_wait_hosts_by_count_and_by_name() {
    let p = Project::new();
    let hosts = tempfile::tempdir().unwrap();
    let m1 = release(&p, "1");
    p.ok(&["promote", &m1, "--to", "dev"]);
    for id in ["web1", "web2"] {
        deploy(&p, hosts.path(), id);
    }

    let m2 = release(&p, "2");
    let child = promote_waiting(&p, &m2, "2", "60s");
    let out = answer(&p, child, &m2, hosts.path(), &["web1", "web2"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["check"]["status"], "passed", "{v}");
    assert_eq!(v["check"]["hosts"], 2, "{v}");
    assert!(v["check"].get("host_ids").is_none(), "{v}");
    // The reports name the move by its event's digest, as promote does.
    let event = v["event"].as_str().unwrap();
    let stored = fs::read(p.store().join("envs/dev/events/0000000002.json")).unwrap();
    assert_eq!(event, format!("sha256:{}", sha256_hex(&stored)));
    let report: serde_json::Value =
        serde_json::from_slice(&fs::read(p.store().join("envs/dev/hosts/web1.json")).unwrap())
            .unwrap();
    assert_eq!(report["event"], event, "{report}");
    assert_eq!(report["seq"], 2, "{report}");
    assert!(!err.contains("ignored"), "{err}");

    let m3 = release(&p, "3");
    let child = promote_waiting(&p, &m3, "web1,web2", "60s");
    let out = answer(&p, child, &m3, hosts.path(), &["web2", "web1"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["check"]["status"], "passed", "{v}");
    assert_eq!(v["check"]["host_ids"], serde_json::json!(["web1", "web2"]));
    let events = history(&p, "dev");
    assert_eq!(
        events[0]["check"]["host_ids"],
        serde_json::json!(["web1", "web2"])
    );

    // A host that never reports: web2's report does not stand in for it.
    let m4 = release(&p, "4");
    let child = promote_waiting(&p, &m4, "web1,web3", "10s");
    let out = answer(&p, child, &m4, hosts.path(), &["web1", "web2"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(6), "{err}");
    assert!(err.contains("only 1/2 hosts"), "{err}");
    assert!(err.contains("not reported active: web3"), "{err}");
    assert!(
        err.contains("envs/dev/hosts/web2.json: ignored: host web2 is not one of those waited for"),
        "{err}"
    );
    assert_eq!(live(&p, "dev").as_deref(), Some(m3.as_str()));
}

/// `rollback --wait-hosts` waits for the hosts to run the rollback, as a
/// promote does; when they do not confirm it in time it exits 6, and the
/// rollback stands: nothing rolls it back, and its event records no check.
#[test]
fn rollback_waits_for_its_hosts_and_stands_when_they_do_not_confirm() {
    let p = Project::new();
    let hosts = tempfile::tempdir().unwrap();
    let rollback_waiting = |wait: &str, timeout: &str| {
        p.cmd(&[
            "rollback",
            "dev",
            "--wait-hosts",
            wait,
            "--wait-timeout",
            timeout,
            "--json",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting verbatim rollback")
    };
    let m1 = release(&p, "1");
    let m2 = release(&p, "2");
    for m in [&m1, &m2] {
        p.ok(&["promote", m, "--to", "dev"]);
        for id in ["web1", "web2"] {
            deploy(&p, hosts.path(), id);
        }
    }
    let child = rollback_waiting("web1,web2", "60s");
    let out = answer(&p, child, &m1, hosts.path(), &["web1", "web2"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["kind"], "rollback", "{v}");
    assert_eq!(v["check"]["status"], "passed", "{v}");
    assert_eq!(v["check"]["host_ids"], serde_json::json!(["web1", "web2"]));
    assert!(history(&p, "dev")[0].get("check").is_none());

    // Nobody deploys the next one: exit 6 when the time is up, and dev
    // stays where the rollback put it.
    let m3 = release(&p, "3");
    p.ok(&["promote", &m3, "--to", "dev"]);
    let out = rollback_waiting("2", "2s").wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(6), "{err}");
    assert!(
        err.contains("the hosts did not confirm it: only 0/2 hosts")
            && err.contains("the rollback stands"),
        "{err}"
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["check"]["status"], "failed", "{v}");
    assert_eq!(live(&p, "dev").as_deref(), Some(m1.as_str()));
    let events = history(&p, "dev");
    assert_eq!(events[0]["kind"], "rollback", "nothing undid it");
    assert_eq!(events.len(), 5);
    // Nothing to wait for without a move; no wait in a dry run.
    p.fails(&["rollback", "dev", "--dry-run", "--wait-hosts", "1"], 2);
}

#[test]
fn wait_hosts_takes_a_count_or_host_ids() {
    let p = Project::new();
    let m1 = release(&p, "1");
    for (bad, why) in [
        ("0", "wait for 1 to 100000 hosts"),
        ("web1,web1", "listed twice"),
        ("web1,,web2", "not usable"),
        ("a/b", "not usable"),
    ] {
        let err = p.fails(&["promote", &m1, "--to", "dev", "--wait-hosts", bad], 2);
        assert!(err.contains(why), "{bad}: {err}");
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    verbatim::digest::Digest::of(bytes).hex()
}
