//! `verbatim dashboard`: the page, rendered in headless Chromium from
//! `file://`, of a store holding three environments, a rollout in
//! progress on real agents (paused after its first wave), a stale host,
//! a drifting one and 50 history events; asserted from the DOM, with no
//! request made. `[dashboard] publish = true` rewrote the store's copy on
//! every move, and `[notify]` carried each rollout step.

use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};

use crate::browser::{chromium, serve_with, Log};
use crate::notify::{Answer, Receiver};
use crate::rollout::{converge, Fleet};
use crate::util;

const HOSTILE: &str = "<img src=x onerror=alert(1)><script>alert(2)</script>";

/// Loads `page` from `file://` with every host name resolved to a local
/// server that logs what it is asked: the page must ask nothing.
fn load(chromium: &Path, page: &Path) -> (String, Vec<(String, u16)>) {
    let log: Log = Arc::new(Mutex::new(Vec::new()));
    let base = serve_with(Arc::new(|_: &str| None), log.clone());
    let port = base.rsplit(':').next().unwrap().to_owned();
    let url = format!("file://{}", page.display());
    let profile = tempfile::tempdir().unwrap();
    let out = Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-background-networking",
            "--disable-component-update",
            "--no-first-run",
            "--virtual-time-budget=3000",
        ])
        .arg(format!("--host-resolver-rules=MAP * 127.0.0.1:{port}"))
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(["--dump-dom", &url])
        .stderr(Stdio::null())
        .output()
        .unwrap();
    // Chromium's own background requests (network time, updates) aside.
    let requests = log
        .lock()
        .unwrap()
        .iter()
        .filter(|(p, _)| !p.starts_with("/time/1/") && !p.starts_with("/service/update2/"))
        .cloned()
        .collect();
    (String::from_utf8_lossy(&out.stdout).into_owned(), requests)
}

fn screenshot(chromium: &Path, page: &Path, png: &Path) {
    let profile = tempfile::tempdir().unwrap();
    let ok = Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(format!("--screenshot={}", png.display()))
        .args(["--window-size=1360,2200"])
        .arg(format!("file://{}", page.display()))
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(ok.success());
}

/// The part of `dom` inside the section of environment `env`.
fn section<'a>(dom: &'a str, env: &str) -> &'a str {
    let start = dom
        .find(&format!("<section class=\"env-detail\" id=\"env-{env}\""))
        .unwrap_or_else(|| panic!("no section for {env}"));
    let rest = &dom[start..];
    &rest[..rest.find("</section>").unwrap()]
}

#[test]
fn the_page_shows_environments_rollouts_hosts_and_history_in_a_browser() {
    let rx = Receiver::start(Answer::Ok);
    let config = format!(
        "[app]\ndir = \"app\"\n\n[environments]\norder = [\"dev\", \"staging\", \"prod\"]\n\n\
         [dashboard]\npublish = true\n\n[notify]\nwebhooks = [{:?}]\n",
        rx.url
    );
    let f = Fleet::new(&config);
    let v1 = f.release("v1");
    f.p.ok(&["promote", &v1, "--to", "dev"]);
    let agents = f.agents(2);
    converge(&agents, &v1);
    let v2 = f.release("v2");
    f.p.ok(&["promote", &v2, "--to", "dev"]);
    converge(&agents, &v2);
    // 50 events in staging.
    for i in 0..50 {
        let m = if i % 2 == 0 { &v1 } else { &v2 };
        f.p.ok(&[
            "promote",
            m,
            "--to",
            "staging",
            "--reason",
            &format!("round {i}"),
        ]);
    }
    f.p.ok(&["promote", &v2, "--to", "prod", "--reason", HOSTILE]);
    // A host that last reported two days ago, running v1 where prod runs v2.
    let old = serde_json::json!({
        "schema": "verbatim.host/v1", "env": "prod", "host": "old-1", "manifest": v1,
        "seq": null, "state": "active", "running": v1, "detail": HOSTILE,
        "time": "2020-01-01T00:00:00Z", "tool": "verbatim 0.1.0",
    });
    f.p.write(
        ".verbatim/store/envs/prod/hosts/old-1.json",
        old.to_string(),
    );
    // A rollout of v3 in dev, paused after its first wave (inconclusive check).
    let v3 = f.release("v3");
    util::exits(
        &mut f.p.cmd(&[
            "promote",
            &v3,
            "--to",
            "dev",
            "--waves",
            "1,100%",
            "--bake",
            "0",
            "--check-cmd",
            "exit 75",
        ]),
        8,
    );

    let out = tempfile::tempdir().unwrap();
    let written =
        f.p.json(&["dashboard", "--out", out.path().to_str().unwrap()]);
    assert_eq!(written["environments"], 3);
    let page = out.path().join("index.html");
    let html = fs::read_to_string(&page).unwrap();
    eprintln!(
        "dashboard: {} bytes, {} diff page(s): {}",
        html.len(),
        written["diffs_written"].as_array().unwrap().len(),
        written["diffs_written"]
    );
    // The store's copy, rewritten on every move (the last one: the pause).
    let stored = fs::read_to_string(f.p.store().join("dashboard/index.html")).unwrap();
    assert!(
        stored.contains("data-state=\"paused\""),
        "the store's page is current"
    );

    // Every rollout step reached the webhook, and every move.
    let steps: Vec<String> = rx
        .bodies()
        .iter()
        .filter(|b| b["kind"] == "rollout")
        .map(|b| b["event"]["rollout"]["step"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(steps.first().map(String::as_str), Some("started"));
    assert_eq!(
        steps.last().map(String::as_str),
        Some("paused"),
        "{steps:?}"
    );
    assert_eq!(
        rx.bodies()
            .iter()
            .filter(|b| b["kind"] == "promote")
            .count(),
        2 + 50 + 1
    );

    let Some(chromium) = chromium() else { return };
    let (dom, requests) = load(&chromium, &page);
    assert!(requests.is_empty(), "the page made requests: {requests:?}");
    // Three environments, in order, with their manifests.
    let cards: Vec<usize> = ["dev", "staging", "prod"]
        .iter()
        .map(|e| dom.find(&format!("data-env=\"{e}\"")).unwrap())
        .collect();
    assert!(
        cards.windows(2).all(|w| w[0] < w[1]),
        "policy order: {cards:?}"
    );
    assert!(
        dom.contains(&format!("data-manifest=\"{v2}\"")),
        "dev and prod run v2"
    );
    // The rollout: paused, wave 1 holds one host on v3, wave 2 waits.
    let dev = section(&dom, "dev");
    assert!(dev.contains("data-state=\"paused\""), "{dev}");
    let wave1 = &dev[dev.find("data-wave=\"1\"").unwrap()..dev.find("data-wave=\"2\"").unwrap()];
    assert_eq!(wave1.matches("class=\"chip on\"").count(), 1, "{wave1}");
    let wave2 = &dev[dev.find("data-wave=\"2\"").unwrap()..];
    assert_eq!(
        wave2.matches("class=\"chip waiting\"").count(),
        1,
        "{wave2}"
    );
    // Both agents live; the one on v3 in wave 1 is not drift.
    assert_eq!(
        dev.matches("data-live=\"true\" data-drift=\"false\"")
            .count(),
        2,
        "{dev}"
    );
    // The stale host, and its drift.
    let prod = section(&dom, "prod");
    assert!(
        prod.contains("data-host=\"old-1\" data-live=\"false\" data-drift=\"true\""),
        "{prod}"
    );
    // 50 events on staging's timeline (the newest twelve open).
    let staging = section(&dom, "staging");
    assert_eq!(staging.matches("class=\"event ").count(), 50);
    assert!(staging.contains("data-seq=\"50\"") && staging.contains("data-seq=\"1\""));
    assert!(staging.contains("38 older events"));
    // Hostile text is text: no element came of it.
    assert!(!dom.contains("<img"), "markup was injected");
    assert_eq!(
        dom.matches("<script").count(),
        1,
        "only the page's own script"
    );
    assert!(prod.contains("&lt;img src=x onerror=alert(1)&gt;"));
    // A diff page per environment whose live manifest replaced another
    // (dev and staging: v1 → v2, one page; prod started with v2).
    let diffs: Vec<&str> = dom
        .split("class=\"diff\" href=\"")
        .skip(1)
        .map(|s| &s[..s.find('"').unwrap()])
        .collect();
    assert_eq!(diffs.len(), 2, "{diffs:?}");
    for d in &diffs {
        let text = fs::read_to_string(out.path().join(d)).unwrap();
        assert!(text.contains("version.txt"), "{d}: {text}");
    }

    let png = std::env::temp_dir().join("verbatim-dashboard.png");
    screenshot(&chromium, &page, &png);
    eprintln!("screenshot: {}", png.display());
}
