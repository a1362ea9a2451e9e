//! The canary check never leaves an unchecked release live: real processes,
//! real signals. A signal ends the check's whole process group and rolls
//! back; a timeout ends the whole group; a promoter killed with SIGKILL
//! leaves a check that `status` shows unfinished and that gates the next
//! promote.

use std::fs;
use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Output, Stdio};
use std::time::{Duration, Instant};

use crate::environments::{history, live, release};
use crate::util::Project;

/// A check that records its shell's pid (the process group's id) and a
/// background child's, says it is running, and waits.
const CHECK: &str = "echo $$ > check.pid; sleep 30 & echo $! > child.pid; touch started; wait";

/// Starts `verbatim args…` with stdout and stderr piped, SIGINT and SIGTERM
/// at their defaults (whatever the test runner left them at).
fn spawn(p: &Project, args: &[&str]) -> Child {
    let mut cmd = p.cmd(args);
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // SAFETY: signal(2) is async-signal-safe; nothing else runs in the child.
    unsafe {
        cmd.pre_exec(|| {
            libc::signal(libc::SIGINT, libc::SIG_DFL);
            libc::signal(libc::SIGTERM, libc::SIG_DFL);
            Ok(())
        });
    }
    cmd.spawn().expect("starting verbatim")
}

/// Waits for `path` to appear (the check is running), failing after 60 s.
fn wait_for_file(path: &Path, child: &mut Child) {
    let start = Instant::now();
    while !path.exists() {
        if let Ok(Some(status)) = child.try_wait() {
            let mut err = String::new();
            let _ = child.stderr.take().unwrap().read_to_string(&mut err);
            panic!("verbatim exited ({status}) before the check started:\n{err}");
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the check never started ({} missing)",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits for `child` to exit within `secs`, killing it and failing if not.
fn wait_bounded(mut child: Child, secs: u64) -> (Output, Duration) {
    let start = Instant::now();
    loop {
        if child.try_wait().unwrap().is_some() {
            let took = start.elapsed();
            return (child.wait_with_output().unwrap(), took);
        }
        if start.elapsed() > Duration::from_secs(secs) {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "verbatim did not exit within {secs} s; stderr:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn pid_in(p: &Project, file: &str) -> libc::pid_t {
    fs::read_to_string(p.path().join(file))
        .unwrap_or_else(|e| panic!("{file}: {e}"))
        .trim()
        .parse()
        .unwrap()
}

/// Whether `pid` still runs: it exists and is not a zombie (an orphan whose
/// new parent does not reap it stays a zombie, but runs no more).
pub fn running(pid: libc::pid_t) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            let state = stat.rsplit_once(')').map(|(_, r)| r.trim_start());
            !state.is_some_and(|s| s.starts_with('Z') || s.starts_with('X'))
        }
        Err(_) => false,
    }
}

/// Asserts that the processes named in `files` have ended, allowing a moment
/// for the kernel to finish with them.
fn assert_gone(p: &Project, files: &[&str]) {
    for f in files {
        let pid = pid_in(p, f);
        let start = Instant::now();
        while running(pid) && start.elapsed() < Duration::from_secs(2) {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(!running(pid), "{f}: process {pid} still runs");
    }
}

/// Parses stdout as exactly one JSON document.
fn one_document(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not one JSON document ({e}):\n{}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

fn status_of(p: &Project, env: &str) -> serde_json::Value {
    p.json(&["status", env])["environments"][0].clone()
}

#[test]
fn canary_sigint_and_sigterm_end_the_check_and_roll_back() {
    for (sig, name) in [(libc::SIGINT, "SIGINT"), (libc::SIGTERM, "SIGTERM")] {
        let p = Project::new();
        let m1 = release(&p, "1");
        p.ok(&["promote", &m1, "--to", "dev"]);
        let m2 = release(&p, "2");
        let mut child = spawn(
            &p,
            &[
                "promote",
                &m2,
                "--to",
                "dev",
                "--check-cmd",
                CHECK,
                "--json",
            ],
        );
        wait_for_file(&p.path().join("started"), &mut child);
        // SAFETY: signalling our own child.
        assert_eq!(unsafe { libc::kill(child.id() as libc::pid_t, sig) }, 0);
        let (out, took) = wait_bounded(child, 20);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(128 + sig), "{name}: {stderr}");
        assert!(
            took < Duration::from_secs(10),
            "{name}: took {took:?}: {stderr}"
        );
        assert!(
            stderr.contains(name) && stderr.contains("rolled back"),
            "{stderr}"
        );

        let v = one_document(&out);
        assert_eq!(v["result"], "moved");
        assert_eq!(v["manifest"], m2.as_str());
        assert_eq!(v["rolled_back"]["manifest"], m1.as_str());
        assert_eq!(v["rolled_back"]["kind"], "auto-rollback");
        assert_eq!(v["check"]["status"], "failed");
        assert!(v["check"]["detail"].as_str().unwrap().contains(name), "{v}");

        assert_eq!(live(&p, "dev").unwrap(), m1, "{name}");
        let h = history(&p, "dev");
        assert_eq!(h[0]["kind"], "auto-rollback");
        assert_eq!(h[0]["to"], m1.as_str());
        let reason = h[0]["reason"].as_str().unwrap();
        assert!(
            reason.contains("canary") && reason.contains(name),
            "{reason}"
        );
        assert_eq!(h[1]["kind"], "promote");
        assert_eq!(h[1]["check"]["status"], "failed");
        assert!(h[1]["check"]["deadline"].as_str().unwrap().ends_with('Z'));
        // Live again is what ran before: nothing unchecked.
        let s = status_of(&p, "dev");
        assert_eq!(s["unchecked"], false);
        assert_eq!(s["check"], serde_json::Value::Null);
        // The check's shell and its background child are gone.
        assert_gone(&p, &["check.pid", "child.pid"]);
        // The outcome is recorded beside the event that started it.
        assert!(p.store().join("envs/dev/checks/0000000002.json").is_file());
    }
}

/// Ctrl-C pressed again and again (and a SIGTERM) while verbatim ends a
/// check that ignores SIGTERM and rolls back: the first signal decides, the
/// others are noted and ignored, the rollback is completed and recorded.
#[test]
fn canary_repeated_signals_do_not_abandon_the_rollback() {
    let p = Project::new();
    let m1 = release(&p, "1");
    p.ok(&["promote", &m1, "--to", "dev"]);
    let m2 = release(&p, "2");
    let check = format!("trap '' TERM; {CHECK}");
    let mut child = spawn(
        &p,
        &[
            "promote",
            &m2,
            "--to",
            "dev",
            "--check-cmd",
            &check,
            "--json",
        ],
    );
    wait_for_file(&p.path().join("started"), &mut child);
    let pid = child.id() as libc::pid_t;
    // The group ignores SIGTERM, so ending it takes the grace period; keep
    // signalling verbatim all through it.
    let start = Instant::now();
    let mut sent = 0;
    while child.try_wait().unwrap().is_none() && start.elapsed() < Duration::from_secs(20) {
        let sig = if sent % 3 == 2 {
            libc::SIGTERM
        } else {
            libc::SIGINT
        };
        // SAFETY: signalling our own child (which may just have exited; then
        // the signal goes nowhere, as it is not reaped yet).
        unsafe { libc::kill(pid, sig) };
        sent += 1;
        std::thread::sleep(Duration::from_millis(100));
    }
    let (out, _) = wait_bounded(child, 20);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(sent > 10, "only {sent} signals sent: {stderr}");
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    let v = one_document(&out);
    assert_eq!(v["rolled_back"]["manifest"], m1.as_str());
    assert_eq!(live(&p, "dev").unwrap(), m1);
    let h = history(&p, "dev");
    assert_eq!(h[0]["kind"], "auto-rollback");
    assert!(h[0]["reason"].as_str().unwrap().contains("SIGINT"));
    assert_eq!(h[1]["check"]["status"], "failed");
    assert_gone(&p, &["check.pid", "child.pid"]);
}

#[test]
fn canary_timeout_and_exit_end_the_whole_process_group() {
    let p = Project::new();
    let m1 = release(&p, "1");
    p.ok(&["promote", &m1, "--to", "dev"]);
    let m2 = release(&p, "2");

    // Timed out: the shell and what it started in the background both go.
    let err = p.fails(
        &[
            "promote",
            &m2,
            "--to",
            "dev",
            "--check-cmd",
            "echo $$ > check.pid; sleep 30 & echo $! > child.pid; sleep 30",
            "--check-timeout",
            "1",
        ],
        6,
    );
    assert!(err.contains("timed out"), "{err}");
    assert_gone(&p, &["check.pid", "child.pid"]);
    assert_eq!(live(&p, "dev").unwrap(), m1);

    // A group that ignores SIGTERM is killed after the grace period.
    let start = Instant::now();
    let err = p.fails(
        &[
            "promote",
            &m2,
            "--to",
            "dev",
            "--check-cmd",
            "trap '' TERM; echo $$ > check.pid; sleep 30 & echo $! > child.pid; sleep 30",
            "--check-timeout",
            "1",
        ],
        6,
    );
    assert!(err.contains("SIGKILL"), "{err}");
    assert!(start.elapsed() < Duration::from_secs(20), "{err}");
    assert_gone(&p, &["check.pid", "child.pid"]);
    assert_eq!(live(&p, "dev").unwrap(), m1);

    // A check that passes leaves nothing running in the background either.
    let v = p.json(&[
        "promote",
        &m2,
        "--to",
        "dev",
        "--check-cmd",
        "echo $$ > check.pid; sleep 30 & echo $! > child.pid; true",
    ]);
    assert_eq!(v["check"]["status"], "passed");
    assert_gone(&p, &["check.pid", "child.pid"]);
    let s = status_of(&p, "dev");
    assert_eq!(s["manifest"], m2.as_str());
    assert_eq!(s["unchecked"], false);
    assert_eq!(s["check"]["status"], "passed");
    assert!(p.ok(&["status", "dev"]).contains("check passed"));
}

#[test]
fn canary_promoter_killed_leaves_the_environment_unchecked() {
    let p = Project::new();
    let m1 = release(&p, "1");
    p.ok(&["promote", &m1, "--to", "dev"]);
    let m2 = release(&p, "2");
    let m3 = release(&p, "3");
    let mut child = spawn(
        &p,
        &[
            "promote",
            &m2,
            "--to",
            "dev",
            "--check-cmd",
            "echo $$ > check.pid; touch started; sleep 30",
            "--check-timeout",
            "4",
        ],
    );
    wait_for_file(&p.path().join("started"), &mut child);
    child.kill().unwrap(); // SIGKILL
    let _ = child.wait();
    // The check outlives its promoter (nothing it does can move a pointer);
    // end it here.
    let pgid = pid_in(&p, "check.pid");
    // SAFETY: signalling the orphaned check's own process group.
    unsafe { libc::kill(-pgid, libc::SIGKILL) };

    // Unchecked at once: the event recorded the check before it started.
    let s = status_of(&p, "dev");
    assert_eq!(s["manifest"], m2.as_str());
    assert_eq!(s["unchecked"], true, "{s}");
    assert_eq!(s["check"]["seq"], 2);
    assert!(
        ["pending", "expired"].contains(&s["check"]["status"].as_str().unwrap()),
        "{s}"
    );
    assert!(p.ok(&["status"]).contains("UNCHECKED"));

    // No promote on top of it, not even of itself; one JSON document says why.
    for m in [&m3, &m2] {
        let out = p.run(&["promote", m, "--to", "dev", "--json"]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(3), "{stderr}");
        assert!(
            stderr.contains("canary") && stderr.contains("verbatim rollback dev"),
            "{stderr}"
        );
        let v = one_document(&out);
        assert_eq!(v["result"], "refused");
        assert_eq!(v["gates"][0]["gate"], "canary");
        assert_eq!(v["gates"][0]["ok"], false);
    }

    // Past its deadline: expired, in status and history.
    let start = Instant::now();
    let s = loop {
        let s = status_of(&p, "dev");
        if s["check"]["status"] == "expired" {
            break s;
        }
        assert!(start.elapsed() < Duration::from_secs(15), "{s}");
        std::thread::sleep(Duration::from_millis(250));
    };
    assert_eq!(s["unchecked"], true);
    let text = p.ok(&["status", "dev"]);
    assert!(
        text.contains("UNCHECKED") && text.contains("never finished"),
        "{text}"
    );
    let h = history(&p, "dev");
    assert_eq!(h[0]["check"]["status"], "expired");
    assert!(p.ok(&["history", "dev"]).contains("check expired"));
    let err = p.fails(&["promote", &m3, "--to", "dev"], 3);
    assert!(err.contains("never finished"), "{err}");
    // Nor does it go on to the next environment, unverified.
    let err = p.fails(&["promote", &m2, "--to", "preprod"], 3);
    assert!(
        err.contains("gate `order`") && err.contains("is live in dev unchecked"),
        "{err}"
    );

    // Rollback is the way out: back to what ran before the unchecked move.
    let v = p.json(&["rollback", "dev"]);
    assert_eq!(v["manifest"], m1.as_str());
    let s = status_of(&p, "dev");
    assert_eq!(s["unchecked"], false);
    assert_eq!(s["check"], serde_json::Value::Null);
    // … after which promotes work again.
    let v = p.json(&["promote", &m3, "--to", "dev", "--check-cmd", "true"]);
    assert_eq!(v["check"]["status"], "passed");
    assert_eq!(status_of(&p, "dev")["check"]["status"], "passed");
}

#[test]
fn canary_failure_with_nothing_to_roll_back_to_leaves_it_marked_and_gated() {
    let p = Project::new();
    let m1 = release(&p, "1");
    let out = p.run(&[
        "promote",
        &m1,
        "--to",
        "dev",
        "--check-cmd",
        "exit 3",
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(6));
    let v = one_document(&out);
    assert_eq!(v["check"]["status"], "failed");
    assert!(v.get("rolled_back").is_none(), "{v}");
    let s = status_of(&p, "dev");
    assert_eq!(s["unchecked"], true);
    assert_eq!(s["check"]["status"], "failed");
    assert!(
        s["check"]["detail"].as_str().unwrap().contains("exit"),
        "{s}"
    );
    assert!(p.ok(&["status", "dev"]).contains("failed"));

    // Live in dev but failed there: not on to the next environment either.
    let err = p.fails(&["promote", &m1, "--to", "preprod"], 3);
    assert!(
        err.contains("gate `order`") && err.contains("canary check there (event 1) failed"),
        "{err}"
    );

    // Nothing earlier to roll back to: only a forced promote moves on, and
    // the overridden gate is recorded.
    let m2 = release(&p, "2");
    p.fails(&["rollback", "dev"], 2);
    p.fails(&["promote", &m2, "--to", "dev"], 3);
    p.ok(&[
        "promote",
        &m2,
        "--to",
        "dev",
        "--force",
        "--reason",
        "fix forward",
    ]);
    let h = history(&p, "dev");
    assert_eq!(h[0]["forced"], true);
    let gate = h[0]["gates"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["gate"] == "canary")
        .unwrap()
        .clone();
    assert_eq!(gate["ok"], false);
    assert_eq!(status_of(&p, "dev")["unchecked"], false);
}

#[test]
fn canary_check_records_are_cross_checked() {
    let p = Project::new();
    let m1 = release(&p, "1");
    p.ok(&["promote", &m1, "--to", "dev"]);
    let m2 = release(&p, "2");
    p.ok(&["promote", &m2, "--to", "dev", "--check-cmd", "true"]);
    let key = p.store().join("envs/dev/checks/0000000002.json");
    let mut record: serde_json::Value = serde_json::from_slice(&fs::read(&key).unwrap()).unwrap();
    assert_eq!(record["outcome"], "passed");
    assert_eq!(record["manifest"], m2.as_str());

    // A record planted for a move that started no check: refused by name.
    let planted = p.store().join("envs/dev/checks/0000000001.json");
    record["seq"] = 1.into();
    record["manifest"] = m1.as_str().into();
    fs::write(&planted, serde_json::to_vec(&record).unwrap()).unwrap();
    let err = p.fails(&["history", "dev"], 5);
    assert!(
        err.contains("envs/dev/checks/0000000001.json") && err.contains("started none"),
        "{err}"
    );
    fs::remove_file(&planted).unwrap();

    // The live move's record naming another manifest: every reader refuses.
    record["seq"] = 2.into();
    fs::write(&key, serde_json::to_vec(&record).unwrap()).unwrap();
    let err = p.fails(&["status", "dev"], 5);
    assert!(err.contains("envs/dev/checks/0000000002.json"), "{err}");
    p.fails(&["promote", &m1, "--to", "dev"], 5);
}
