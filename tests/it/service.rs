//! Agents as services: the unit `agent --print-systemd-unit` prints passes
//! `systemd-analyze verify`; under `NOTIFY_SOCKET` an agent says it is
//! ready, feeds the watchdog and says it is stopping (seen by a test
//! socket, as systemd would); `--log-format` writes one timed line per
//! step on one stream, and `-q` hides a passing hook's output but never a
//! failing one's; a local store that is not there yet is waited for.

use std::fs;
use std::os::unix::net::UnixDatagram;
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::rollout::Fleet;
use crate::util::Project;

#[test]
fn the_printed_unit_passes_systemd_analyze_verify() {
    let p = Project::new();
    let unit = p.ok(&[
        "agent",
        "prod",
        "--root",
        "/srv/app",
        "--store",
        "s3://releases/web",
        "--interval",
        "15s",
        "--print-systemd-unit",
    ]);
    assert!(
        unit.contains("Type=notify") && unit.contains("WatchdogSec="),
        "{unit}"
    );
    assert!(
        unit.contains("--log-format text") && !unit.contains("--print-systemd-unit"),
        "{unit}"
    );
    let file = p.path().join("verbatim-agent.service");
    fs::write(&file, &unit).unwrap();
    let analyze = std::process::Command::new("systemd-analyze")
        .arg("verify")
        .arg(&file)
        .output()
        .expect("systemd-analyze (apt-get install systemd; `cargo xtask ci` does)");
    assert!(
        analyze.status.success(),
        "{}\n{unit}",
        String::from_utf8_lossy(&analyze.stderr)
    );
}

#[test]
fn an_agent_under_systemd_notify_is_ready_feeds_the_watchdog_and_says_stopping() {
    let f = Fleet::new("[app]\ndir = \"app\"\n");
    let v1 = f.release("v1");
    f.p.ok(&["promote", &v1, "--to", "dev"]);
    let sock_path = f.hosts.path().join("notify.sock");
    let sock = UnixDatagram::bind(&sock_path).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let root = f.hosts.path().join("web-1");
    let mut agent = f
        .cmd(&["agent", "dev", "--interval", "300ms", "--host-id", "web-1"])
        .arg("--root")
        .arg(&root)
        .env("NOTIFY_SOCKET", &sock_path)
        .env("WATCHDOG_USEC", "400000")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut buf = [0u8; 512];
    let mut next = || {
        let n = sock.recv(&mut buf).expect("a notification within 20 s");
        String::from_utf8_lossy(&buf[..n]).into_owned()
    };
    let first = next();
    assert!(
        first.starts_with("READY=1\nSTATUS=following dev"),
        "{first}"
    );
    let start = Instant::now();
    let mut pings = 0;
    while pings < 3 {
        assert_eq!(next(), "WATCHDOG=1");
        pings += 1;
    }
    println!(
        "3 watchdog pings in {:.2} s (WATCHDOG_USEC 0.4 s)",
        start.elapsed().as_secs_f64()
    );
    let pid = libc::pid_t::try_from(agent.id()).unwrap();
    // SAFETY: signalling our own child.
    unsafe { libc::kill(pid, libc::SIGTERM) };
    let stopping = loop {
        let m = next();
        if m != "WATCHDOG=1" {
            break m;
        }
    };
    assert!(
        stopping.starts_with("STOPPING=1\nSTATUS=agent stopped by SIGTERM"),
        "{stopping}"
    );
    assert!(agent.wait().unwrap().success());
}

#[test]
fn a_service_log_is_one_timed_line_per_step_and_quiet_hides_only_passing_hooks() {
    let config = "[app]\ndir = \"app\"\n[deploy]\nhooks.check = 'echo hook-says-$(cat version.txt) >&2; test ! -e broken'\n";
    let f = Fleet::new(config);
    let v1 = f.release("v1");
    f.p.ok(&["promote", &v1, "--to", "dev"]);
    let root = f.hosts.path().join("web-1");
    let log = f.hosts.path().join("agent.jsonl");
    let agent = f
        .cmd(&[
            "agent",
            "dev",
            "--interval",
            "300ms",
            "--host-id",
            "web-1",
            "-q",
            "--log-format",
            "json",
        ])
        .arg("--root")
        .arg(&root)
        .stdout(fs::File::create(&log).unwrap())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let wait_for = |what: &str| {
        let start = Instant::now();
        while !fs::read_to_string(&log).unwrap().contains(what) {
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "no {what} in:\n{}",
                fs::read_to_string(&log).unwrap()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    wait_for("\"result\"");
    f.p.write("app/broken", "");
    let v2 = f.release("v2");
    f.p.ok(&["promote", &v2, "--to", "dev"]);
    wait_for("hook-says-v2");
    let pid = libc::pid_t::try_from(agent.id()).unwrap();
    // SAFETY: signalling our own child.
    unsafe { libc::kill(pid, libc::SIGTERM) };
    let out = agent.wait_with_output().unwrap();
    assert!(out.status.success());
    assert!(
        out.stderr.is_empty(),
        "everything on one stream: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = fs::read_to_string(&log).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    for l in &lines {
        let time = l["time"].as_str().unwrap();
        assert!(verbatim::clock::parse_rfc3339(time).is_some(), "{l}");
        assert!(
            ["note", "warn", "detail", "result"].contains(&l["level"].as_str().unwrap()),
            "{l}"
        );
    }
    assert!(lines
        .iter()
        .any(|l| l["level"] == "result" && l["result"] == "activated"));
    // -q: the passing check's words (v1) hidden, the failing one's (v2) shown.
    assert!(!text.contains("hook-says-v1"), "{text}");
    assert!(lines
        .iter()
        .any(|l| l["level"] == "warn" && l["message"].as_str().unwrap().contains("hook-says-v2")));
}

#[test]
fn an_agent_waits_for_a_local_store_that_is_not_there_yet() {
    let p = Project::new();
    let store = p.path().join("later/store");
    let root = p.path().join("root");
    let mut agent = p
        .cmd(&[
            "agent",
            "dev",
            "--interval",
            "200ms",
            "--host-id",
            "web-1",
            "--store",
        ])
        .arg(&store)
        .arg("--root")
        .arg(&root)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    assert!(
        agent.try_wait().unwrap().is_none(),
        "the agent gave up on a missing store"
    );
    fs::create_dir_all(&store).unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    let pid = libc::pid_t::try_from(agent.id()).unwrap();
    // SAFETY: signalling our own child.
    unsafe { libc::kill(pid, libc::SIGTERM) };
    let out = agent.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("trying again"), "{err}");
    assert!(
        err.contains("keeping"),
        "it went on once the store was there: {err}"
    );
}
