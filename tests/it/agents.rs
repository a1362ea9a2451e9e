//! Agents keep hosts on their environment: real agent processes, each with
//! its own root and host id, following promotions and rollbacks through a
//! real s3s-fs, and `promote --wait-hosts` answered by their reports.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::canary::running;
use crate::s3::{self, S3Server};
use crate::util::{self, Project};

const CONFIG: &str = r#"
[app]
dir = "app"

[deploy]
hooks.check = 'test ! -e "$VERBATIM_ROOT/fail-check"'
hooks.pre_activate = 'if [ -e "$VERBATIM_ROOT/slow" ]; then sleep 30 & echo $! > "$VERBATIM_ROOT/sleep.pid"; echo $$ > "$VERBATIM_ROOT/hook.pid"; wait; fi'
"#;

/// A running `verbatim agent`; SIGTERMed (then killed) on drop.
struct Agent {
    child: Option<Child>,
    root: PathBuf,
    log: PathBuf,
}

impl Agent {
    fn start(mut cmd: Command, root: &Path, id: &str) -> Agent {
        let log = root.with_extension("log");
        cmd.args(["agent", "dev", "--interval", "200ms", "--host-id", id])
            .arg("--root")
            .arg(root)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(fs::File::create(&log).unwrap());
        Agent {
            child: Some(cmd.spawn().expect("starting the agent")),
            root: root.to_owned(),
            log,
        }
    }

    /// The manifest `current` names, as `sha256:<hex>`.
    fn current(&self) -> Option<String> {
        let t = fs::read_link(self.root.join("current")).ok()?;
        Some(format!("sha256:{}", t.to_str()?.strip_prefix("releases/")?))
    }

    /// SIGTERM; returns the exit status (within 30 s).
    fn stop(&mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("running");
        let pid = libc::pid_t::try_from(child.id()).unwrap();
        // SAFETY: signalling our own child.
        unsafe { libc::kill(pid, libc::SIGTERM) };
        let start = Instant::now();
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return status;
            }
            if start.elapsed() > Duration::from_secs(30) {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "the agent did not stop within 30 s of SIGTERM:\n{}",
                    fs::read_to_string(&self.log).unwrap_or_default()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Waits (up to 60 s) until every agent's `current` names `manifest` and
/// its check has passed (`current` flips before the check runs; until it
/// passes, `.verbatim/activating.json` says so).
fn converge(agents: &[Agent], manifest: &str) {
    let start = Instant::now();
    let done = |a: &Agent| {
        a.current().as_deref() == Some(manifest)
            && !a.root.join(".verbatim/activating.json").exists()
    };
    while !agents.iter().all(done) {
        if start.elapsed() > Duration::from_secs(60) {
            let logs: Vec<String> = agents
                .iter()
                .map(|a| fs::read_to_string(&a.log).unwrap_or_default())
                .collect();
            panic!(
                "agents did not converge on {manifest}: {:?}\n{}",
                agents.iter().map(Agent::current).collect::<Vec<_>>(),
                logs.join("\n---\n")
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A project and its hosts on one S3 server: s3s-fs, started here, or
/// another at `url` (radosgw) under `prefix`.
pub struct Fleet {
    _server: Option<S3Server>,
    url: String,
    prefix: String,
    p: Project,
    hosts: tempfile::TempDir,
}

impl Fleet {
    fn new() -> Option<Fleet> {
        let server = S3Server::start()?;
        Some(Fleet {
            url: server.url(),
            _server: Some(server),
            ..Fleet::on(String::new(), "app")
        })
    }

    pub fn on(url: String, prefix: &str) -> Fleet {
        Fleet {
            _server: None,
            url,
            prefix: prefix.to_owned(),
            p: Project::with_config(CONFIG),
            hosts: tempfile::tempdir().unwrap(),
        }
    }

    fn cli(&self, args: &[&str]) -> Command {
        s3::cli(&self.p, &self.url, &self.prefix, args)
    }

    fn release(&self, version: &str) -> String {
        self.p.write("app/version.txt", version);
        s3::ok_json(&mut self.cli(&["publish"]))["manifest"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    fn agents(&self, n: usize) -> Vec<Agent> {
        (1..=n)
            .map(|i| {
                let root = self.hosts.path().join(format!("web-{i}"));
                Agent::start(self.cli(&[]), &root, &format!("web-{i}"))
            })
            .collect()
    }

    fn status(&self) -> serde_json::Value {
        s3::ok_json(&mut self.cli(&["status", "dev", "--hosts"]))["environments"][0].clone()
    }
}

/// The hosts of a `status --json` environment, as (id, manifest, state).
fn hosts(env: &serde_json::Value) -> Vec<(String, String, String)> {
    env["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            let s = |k: &str| h[k].as_str().unwrap_or_default().to_owned();
            (s("host"), s("manifest"), s("state"))
        })
        .collect()
}

#[test]
fn agents_converge_on_promotions_and_rollbacks_and_answer_wait_hosts() {
    if let Some(f) = Fleet::new() {
        converge_on_promotions_and_rollbacks(&f);
    }
}

/// Three agents follow a promotion (which waits for their reports) and a
/// rollback of `dev`, report what they run, and stop on SIGTERM with 0.
pub fn converge_on_promotions_and_rollbacks(f: &Fleet) {
    let m1 = f.release("1");
    util::success(&mut f.cli(&["promote", &m1, "--to", "dev"]));
    let mut agents = f.agents(3);
    converge(&agents, &m1);

    let m2 = f.release("2");
    let out = s3::ok_json(&mut f.cli(&[
        "promote",
        &m2,
        "--to",
        "dev",
        "--wait-hosts",
        "3",
        "--wait-timeout",
        "60s",
    ]));
    assert_eq!(out["check"]["hosts"], 3, "{out}");
    assert_eq!(out["check"]["status"], "passed", "{out}");
    // It returned once three hosts ran m2: they do now.
    for a in &agents {
        assert_eq!(a.current().as_deref(), Some(m2.as_str()));
        assert_eq!(
            fs::read_to_string(a.root.join("current/version.txt")).unwrap(),
            "2"
        );
    }

    util::success(&mut f.cli(&["rollback", "dev"]));
    converge(&agents, &m1);
    // Their reports catch up with their `current`.
    let start = Instant::now();
    let env = loop {
        let env = f.status();
        if env["hosts_on_manifest"] == 3 || start.elapsed() > Duration::from_secs(30) {
            break env;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(env["manifest"], m1.as_str(), "{env}");
    assert_eq!(env["hosts_on_manifest"], 3, "{env}");
    let mut seen = hosts(&env);
    seen.sort();
    let want: Vec<(String, String, String)> = (1..=3)
        .map(|i| (format!("web-{i}"), m1.clone(), "active".to_owned()))
        .collect();
    assert_eq!(seen, want, "{env}");
    let text = String::from_utf8(util::success(&mut f.cli(&["status", "dev"]))).unwrap();
    assert!(text.contains("3/3 hosts"), "{text}");

    for a in &mut agents {
        let status = a.stop();
        assert!(status.success(), "agent exited {status} on SIGTERM");
    }
}

#[test]
fn a_host_whose_check_fails_flips_back_and_wait_hosts_rolls_the_environment_back() {
    let Some(f) = Fleet::new() else { return };
    let m1 = f.release("1");
    util::success(&mut f.cli(&["promote", &m1, "--to", "dev"]));
    let agents = f.agents(3);
    converge(&agents, &m1);
    fs::write(agents[1].root.join("fail-check"), "").unwrap();

    let m2 = f.release("2");
    let err = util::exits(
        &mut f.cli(&[
            "promote",
            &m2,
            "--to",
            "dev",
            "--wait-hosts",
            "3",
            "--wait-timeout",
            "60s",
        ]),
        6,
    );
    assert!(err.contains("host web-2 failed"), "{err}");
    assert!(err.contains("rolled back to"), "{err}");
    let events = s3::ok_json(&mut f.cli(&["history", "dev"]))["events"].clone();
    assert_eq!(events[0]["kind"], "auto-rollback", "{events}");
    assert_eq!(events[0]["to"], m1.as_str());

    // Every host ends on m1: web-2 flipped back itself, the others follow
    // the rollback.
    converge(&agents, &m1);
    let env = f.status();
    let web2 = hosts(&env).into_iter().find(|h| h.0 == "web-2").unwrap();
    // web-2's last attempt was m2, which failed; then the rollback to m1,
    // which it already ran, is reported active.
    assert!(
        web2 == ("web-2".into(), m2.clone(), "failed".into())
            || web2 == ("web-2".into(), m1.clone(), "active".into()),
        "{web2:?}"
    );
    let history = fs::read_to_string(agents[1].root.join(".verbatim/history.jsonl")).unwrap();
    let failed = history
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|e| e["manifest"] == m2.as_str())
        .expect("web-2 recorded its attempt");
    assert_eq!(failed["outcome"], "failed", "{failed}");
    assert_eq!(failed["current"], m1.as_str(), "{failed}");
}

#[test]
fn sigterm_during_a_hook_ends_it_leaves_current_and_exits_0() {
    let p = Project::with_config(CONFIG);
    let m1 = crate::environments::release(&p, "1");
    p.ok(&["promote", &m1, "--to", "dev"]);
    let hosts = tempfile::tempdir().unwrap();
    let root = hosts.path().join("web");
    let mut agent = Agent::start(p.cmd(&[]), &root, "web");
    converge(std::slice::from_ref(&agent), &m1);
    fs::write(root.join("slow"), "").unwrap();
    let m2 = crate::environments::release(&p, "2");
    p.ok(&["promote", &m2, "--to", "dev"]);
    let pid_file = root.join("hook.pid");
    let start = Instant::now();
    while fs::read_to_string(&pid_file).map_or(true, |s| !s.ends_with('\n')) {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the hook never started"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let pid = |f: &str| -> libc::pid_t {
        fs::read_to_string(root.join(f))
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    };
    let (hook, sleep) = (pid("hook.pid"), pid("sleep.pid"));
    let stopping = Instant::now();
    assert!(agent.stop().success(), "the agent did not exit 0");
    assert!(
        stopping.elapsed() < Duration::from_secs(15),
        "SIGTERM took {:?} to stop the agent",
        stopping.elapsed()
    );
    assert_eq!(
        agent.current().as_deref(),
        Some(m1.as_str()),
        "current moved"
    );
    for pid in [hook, sleep] {
        assert!(
            !running(pid),
            "process {pid} of the hook outlived the agent"
        );
    }
}

#[test]
fn a_second_agent_on_one_root_exits_7_and_sigterm_stops_an_agent_with_0() {
    let p = Project::with_config(CONFIG);
    let m1 = crate::environments::release(&p, "1");
    p.ok(&["promote", &m1, "--to", "dev"]);
    let hosts = tempfile::tempdir().unwrap();
    let root = hosts.path().join("web");
    let mut first = Agent::start(p.cmd(&[]), &root, "web");
    converge(std::slice::from_ref(&first), &m1);
    let err = util::exits(
        p.cmd(&["agent", "dev", "--host-id", "web"])
            .arg("--root")
            .arg(&root),
        7,
    );
    assert!(err.contains("agent.lock"), "{err}");
    assert!(err.contains("held by pid"), "{err}");
    assert!(first.stop().success());
}

#[test]
fn an_agent_backs_off_while_the_store_is_unreachable_and_still_stops_with_0() {
    let p = Project::with_config(CONFIG);
    let hosts = tempfile::tempdir().unwrap();
    let root = hosts.path().join("web");
    // Nothing listens on the port, and nothing else can take it meanwhile.
    let (_held, port) = crate::util::bound_not_listening();
    let mut cmd = p.cmd(&[]);
    cmd.args([
        "--store",
        "s3://nowhere/app",
        "--path-style",
        "--timeout",
        "1",
    ])
    .args(["--endpoint-url", &format!("http://127.0.0.1:{port}")])
    .env("AWS_ACCESS_KEY_ID", "x")
    .env("AWS_SECRET_ACCESS_KEY", "y")
    .env("AWS_REGION", "us-east-1")
    .env("AWS_EC2_METADATA_DISABLED", "true");
    let mut agent = Agent::start(cmd, &root, "web");
    let start = Instant::now();
    let log = loop {
        let log = fs::read_to_string(&agent.log).unwrap_or_default();
        if log.matches("trying again in").count() >= 2 {
            break log;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the agent did not retry:\n{log}"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    // Backing off: the second pause is longer than the first.
    let pauses: Vec<f64> = log
        .lines()
        .filter_map(|l| l.split("trying again in ").nth(1))
        .filter_map(|r| r.trim_end_matches('s').parse().ok())
        .collect();
    assert!(pauses.len() >= 2 && pauses[1] > pauses[0], "{log}");
    assert!(agent.current().is_none());
    assert!(agent.stop().success(), "{log}");
}
