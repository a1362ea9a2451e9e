//! Seeing the fleet: a root keeps its host id, agents say they are alive,
//! a dead agent turns stale and stops counting, a forgotten host is gone
//! (and the act recorded), a cleanly stopped agent says `stopped`, and a
//! failing check's own words reach the promoter and `status --hosts`.

use std::fs;
use std::time::{Duration, Instant};

use crate::rollout::{converge, Fleet};
use crate::util;

/// dev's hosts in `status --json`: (host, liveness, state).
fn hosts(f: &Fleet) -> Vec<(String, String, String)> {
    let s = f.p.json(&["status", "dev", "--hosts"]);
    let mut out: Vec<_> = s["environments"][0]["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            let s = |k: &str| h[k].as_str().unwrap_or_default().to_owned();
            (s("host"), s("liveness"), s("state"))
        })
        .collect();
    out.sort();
    out
}

#[test]
fn a_dead_agent_turns_stale_stops_counting_and_can_be_forgotten() {
    let f = Fleet::new("[app]\ndir = \"app\"\n");
    let v1 = f.release("v1");
    f.p.ok(&["promote", &v1, "--to", "dev"]);
    let mut agents: Vec<_> = (1..=3).map(|i| f.agent(i, &[])).collect();
    converge(&agents, &v1);
    assert!(
        hosts(&f).iter().all(|(_, l, _)| l == "live"),
        "{:?}",
        hosts(&f)
    );
    // SIGKILL: no goodbye. Within 10 intervals (at least 10 s) it is stale.
    let dead = agents.remove(2);
    drop(dead);
    let start = Instant::now();
    let stale = loop {
        let h = hosts(&f);
        if h.iter().any(|(id, l, _)| id == "web-3" && l == "stale") {
            break start.elapsed();
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "never stale: {h:?}"
        );
        std::thread::sleep(Duration::from_millis(500));
    };
    println!(
        "a killed agent turned stale after {:.1} s",
        stale.as_secs_f64()
    );
    let line = f.p.ok(&["status", "dev"]);
    assert!(
        line.contains("2/2 live hosts (1 stale or stopped)"),
        "{line}"
    );
    // The live ones kept refreshing their reports meanwhile.
    assert!(hosts(&f).iter().filter(|(_, l, _)| l == "live").count() == 2);

    let out = f.p.json(&[
        "hosts",
        "forget",
        "web-3",
        "--env",
        "dev",
        "--reason",
        "decommissioned",
    ]);
    assert_eq!(out["host"], "web-3");
    assert_eq!(hosts(&f).len(), 2, "forgotten");
    let listed = f.p.ok(&["hosts", "list", "--env", "dev"]);
    assert!(
        listed.contains("web-3")
            && listed.contains("forgotten")
            && listed.contains("decommissioned"),
        "{listed}"
    );
    f.p.fails(&["hosts", "forget", "web-9", "--env", "dev"], 2);
    let history = f.p.ok(&["history", "dev"]);
    assert!(
        history.contains("host web-3 forgotten by") && history.contains("decommissioned"),
        "{history}"
    );
    assert_eq!(
        f.p.json(&["history", "dev"])["forgotten"][0]["host"],
        "web-3"
    );

    // A cleanly stopped agent says so.
    let stopped = agents.remove(1);
    stopped.stop();
    let h = hosts(&f);
    assert!(
        h.iter()
            .any(|(id, l, s)| id == "web-2" && l == "stopped" && s == "stopped"),
        "{h:?}"
    );
    assert!(f.p.ok(&["status", "dev"]).contains("1/1 live hosts"));
}

#[test]
fn a_root_keeps_its_host_id() {
    let f = Fleet::new("[app]\ndir = \"app\"\n");
    let v1 = f.release("v1");
    f.p.ok(&["promote", &v1, "--to", "dev"]);
    let root = f.hosts.path().join("web-1");
    let root_s = root.to_str().unwrap();
    f.p.ok(&["deploy", "dev", "--root", root_s, "--host-id", "web-1"]);
    assert_eq!(
        fs::read_to_string(root.join(".verbatim/host-id")).unwrap(),
        "web-1\n"
    );
    // By hand, without --host-id: still web-1, no ghost host.
    let v2 = f.release("v2");
    f.p.ok(&["promote", &v2, "--to", "dev"]);
    f.p.ok(&["deploy", "dev", "--root", root_s]);
    let h = hosts(&f);
    assert_eq!(h.len(), 1, "{h:?}");
    let err = f.p.fails(
        &["deploy", "dev", "--root", root_s, "--host-id", "web-2"],
        2,
    );
    assert!(
        err.contains("is host `web-1`") && err.contains("--host-id web-1"),
        "{err}"
    );
}

#[test]
fn a_failing_checks_own_words_reach_the_promoter_and_status() {
    let config = "[app]\ndir = \"app\"\n[deploy]\nhooks.check = 'echo \"answered 500: broken\" >&2; test ! -e broken'\n";
    let f = Fleet::new(config);
    let v1 = f.release("v1");
    f.p.ok(&["promote", &v1, "--to", "dev"]);
    let agents: Vec<_> = (1..=2).map(|i| f.agent(i, &[])).collect();
    converge(&agents, &v1);
    f.p.write("app/broken", "");
    let v2 = f.release("v2");
    let err = util::exits(
        &mut f.p.cmd(&[
            "promote",
            &v2,
            "--to",
            "dev",
            "--wait-hosts",
            "2",
            "--wait-timeout",
            "60s",
        ]),
        6,
    );
    assert!(
        err.contains("answered 500: broken") && err.contains("web-"),
        "{err}"
    );
    converge(&agents, &v1);
    let status = f.p.ok(&["status", "dev", "--hosts"]);
    assert!(status.contains("answered 500: broken"), "{status}");
}
