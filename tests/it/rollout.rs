//! Rollouts across a fleet of real agents on one local store: waves that
//! bake before the next starts, a bad release aborted in its first wave,
//! a controller killed with SIGKILL and resumed from another process,
//! blue/green, and the release phase. Every host is a real `verbatim
//! agent` with its own root; the checks are shell scripts reading the
//! roots, so what they see is what the hosts run.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::util::{self, Project};

const CONFIG: &str = r#"
[app]
dir = "app"

[deploy]
hooks.release = 'echo "$(date +%s%N) $VERBATIM_MANIFEST" >> "$RELEASE_LOG"; test ! -e fail-release'
"#;

/// A running `verbatim agent` for `dev`; killed on drop.
pub struct Agent {
    child: Child,
    pub root: PathBuf,
    pub log: PathBuf,
}

impl Agent {
    /// The manifest `current` names, as `sha256:<hex>`.
    pub fn current(&self) -> Option<String> {
        let t = fs::read_link(self.root.join("current")).ok()?;
        Some(format!("sha256:{}", t.to_str()?.strip_prefix("releases/")?))
    }

    /// Every manifest this host ever activated, from its history.
    pub fn activated(&self) -> Vec<String> {
        let text =
            fs::read_to_string(self.root.join(".verbatim/history.jsonl")).unwrap_or_default();
        text.lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|e| e["outcome"] == "activated")
            .filter_map(|e| e["manifest"].as_str().map(String::from))
            .collect()
    }
}

impl Agent {
    /// SIGTERM, and waits (up to 30 s) for it to exit 0.
    pub fn stop(mut self) {
        let pid = libc::pid_t::try_from(self.child.id()).unwrap();
        // SAFETY: signalling our own child.
        unsafe { libc::kill(pid, libc::SIGTERM) };
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                assert!(status.success(), "the agent exited {status}");
                return;
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "agent did not stop"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A project on a local store and its hosts.
pub struct Fleet {
    pub p: Project,
    pub hosts: tempfile::TempDir,
    pub release_log: PathBuf,
    /// The agents' `--interval`.
    pub interval: &'static str,
    /// An S3 endpoint and prefix to use instead of the local store.
    pub s3: Option<(String, String)>,
}

impl Fleet {
    pub fn new(config: &str) -> Fleet {
        let p = Project::with_config(config);
        let hosts = tempfile::tempdir().unwrap();
        let release_log = hosts.path().join("release.log");
        Fleet {
            p,
            hosts,
            release_log,
            interval: "300ms",
            s3: None,
        }
    }

    /// A fleet on the S3 server at `url`, under `prefix`.
    pub fn on(url: String, prefix: &str, config: &str) -> Fleet {
        Fleet {
            s3: Some((url, prefix.to_owned())),
            ..Fleet::new(config)
        }
    }

    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = match &self.s3 {
            Some((url, prefix)) => crate::s3::cli(&self.p, url, prefix, args),
            None => self.p.cmd(args),
        };
        c.env("RELEASE_LOG", &self.release_log);
        c
    }

    pub fn release(&self, version: &str) -> String {
        self.p.write("app/version.txt", version);
        util::json_out(&mut self.cmd(&["publish", "--json"]))["manifest"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// Starts agent `web-<i>` with `extra` flags.
    pub fn agent(&self, i: usize, extra: &[&str]) -> Agent {
        let root = self.hosts.path().join(format!("web-{i}"));
        let log = self.hosts.path().join(format!("web-{i}.log"));
        let mut cmd = self.cmd(&["agent", "dev", "--interval", self.interval]);
        cmd.args(["--host-id", &format!("web-{i}")])
            .arg("--root")
            .arg(&root)
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(fs::File::create(&log).unwrap());
        Agent {
            child: cmd.spawn().expect("starting an agent"),
            root,
            log,
        }
    }

    pub fn agents(&self, n: usize) -> Vec<Agent> {
        (1..=n).map(|i| self.agent(i, &[])).collect()
    }

    /// A shell command printing, per host root, `<host> <manifest>`.
    pub fn snapshot_cmd(&self, out: &Path) -> String {
        format!(
            "for r in {}/web-*/; do printf '%s %s\\n' \"$(basename $r)\" \"$(readlink $r/current)\"; done > {}.$VERBATIM_WAVE",
            self.hosts.path().display(),
            out.display()
        )
    }
}

/// Waits (up to 60 s) until every agent runs `manifest`, its check done.
pub fn converge(agents: &[Agent], manifest: &str) {
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

/// A fleet of `n` agents on dev, all running a first release; returns
/// the agents and that release.
fn running(f: &Fleet, n: usize) -> (Vec<Agent>, String) {
    let v1 = f.release("v1");
    f.p.ok(&["promote", &v1, "--to", "dev"]);
    let agents = f.agents(n);
    converge(&agents, &v1);
    (agents, v1)
}

/// The hosts a snapshot file lists as running `manifest`.
fn on(snapshot: &Path, manifest: &str) -> Vec<String> {
    let hex = manifest.strip_prefix("sha256:").unwrap();
    let text =
        fs::read_to_string(snapshot).unwrap_or_else(|e| panic!("{}: {e}", snapshot.display()));
    let mut hosts: Vec<String> = text
        .lines()
        .filter(|l| l.ends_with(&format!("releases/{hex}")))
        .map(|l| l.split(' ').next().unwrap().to_owned())
        .collect();
    hosts.sort();
    hosts
}

/// The steps `history --json` lists for dev, oldest first.
fn steps(f: &Fleet) -> Vec<String> {
    let h = f.p.json(&["history", "dev"]);
    let mut steps: Vec<String> = h["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["rollout"]["step"].as_str().map(String::from))
        .collect();
    steps.reverse();
    steps
}

#[test]
fn a_good_release_rolls_out_wave_by_wave_each_baked_before_the_next() {
    let f = Fleet::new("[app]\ndir = \"app\"\n");
    let (agents, v1) = running(&f, 4);
    let v2 = f.release("v2");
    let snap = f.hosts.path().join("snap");
    let out = f.p.json(&[
        "promote",
        &v2,
        "--to",
        "dev",
        "--waves",
        "1,50%,100%",
        "--bake",
        "1s",
        "--check-cmd",
        &f.snapshot_cmd(&snap),
    ]);
    assert_eq!(out["rollout"]["state"], "completed", "{out:#}");
    // At each wave's check, exactly the hosts of that wave and those
    // before ran the target: none of a later wave had flipped.
    let wave = |k: u32| on(&snap.with_extension(k.to_string()), &v2);
    let (w1, w2, w3) = (wave(1), wave(2), wave(3));
    assert_eq!(
        (w1.len(), w2.len(), w3.len()),
        (1, 2, 4),
        "{w1:?} {w2:?} {w3:?}"
    );
    assert!(w2.starts_with(&[]) && w1.iter().all(|h| w2.contains(h)));
    assert_eq!(on(&snap.with_extension("1"), &v1).len(), 3);
    converge(&agents, &v2);
    assert_eq!(
        steps(&f),
        [
            "started",
            "wave",
            "wave-done",
            "baked",
            "wave",
            "wave-done",
            "baked",
            "wave",
            "wave-done",
            "baked",
            "completed"
        ]
    );
    let status = f.p.json(&["status", "dev"]);
    assert_eq!(status["environments"][0]["manifest"], v2.as_str());
    let rs = f.p.json(&["rollout", "status", "dev"]);
    assert_eq!(
        (rs["state"].as_str(), rs["on_target"].as_u64()),
        (Some("completed"), Some(4))
    );
}

#[test]
fn a_bad_release_is_aborted_in_its_first_wave_and_every_host_returns() {
    let f = Fleet::new("[app]\ndir = \"app\"\n");
    let (agents, v1) = running(&f, 4);
    let v2 = f.release("v2-bad");
    let err = util::exits(
        &mut f.p.cmd(&[
            "promote",
            &v2,
            "--to",
            "dev",
            "--waves",
            "1,100%",
            "--bake",
            "0",
            "--check-cmd",
            "echo 'error rate 12%' >&2; exit 1",
        ]),
        6,
    );
    assert!(
        err.contains("aborted") && err.contains("check of wave 1 failed"),
        "{err}"
    );
    converge(&agents, &v1);
    let touched: Vec<&Agent> = agents
        .iter()
        .filter(|a| a.activated().contains(&v2))
        .collect();
    assert_eq!(touched.len(), 1, "only the first wave's host ever ran it");
    assert_eq!(steps(&f), ["started", "wave", "wave-done", "aborted"]);
    assert_eq!(
        f.p.json(&["status", "dev"])["environments"][0]["manifest"],
        v1.as_str()
    );
    // Nothing goes on top of a rollout in flight; once aborted, promote works again.
    let v3 = f.release("v3");
    f.p.ok(&["promote", &v3, "--to", "dev"]);
    converge(&agents, &v3);
}

#[test]
fn a_controller_killed_mid_bake_is_resumed_from_another_process() {
    let f = Fleet::new("[app]\ndir = \"app\"\n");
    let (agents, _v1) = running(&f, 3);
    let v2 = f.release("v2");
    let mut promoter =
        f.p.cmd(&[
            "promote", &v2, "--to", "dev", "--waves", "1,100%", "--bake", "4s",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Wait until wave 1 is done and baking, then SIGKILL the promoter.
    let start = Instant::now();
    loop {
        let s = f.p.json(&["rollout", "status", "dev"]);
        if s["steps"]
            .as_array()
            .is_some_and(|a| a.iter().any(|st| st["step"] == "wave-done"))
        {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "never baked: {s:#}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    promoter.kill().unwrap();
    promoter.wait().unwrap();
    let line = f.p.ok(&["rollout", "status", "dev"]);
    assert!(
        line.contains("rolling") && line.contains("wave 1/2") && line.contains("baking"),
        "{line}"
    );
    let s = f.p.json(&["rollout", "status", "dev"]);
    assert_eq!(
        (s["state"].as_str(), s["on_target"].as_u64()),
        (Some("rolling"), Some(1))
    );
    // A promote on top of it is refused while it is in flight.
    let v3 = f.release("v3");
    let refused = f.p.fails(&["promote", &v3, "--to", "dev"], 3);
    assert!(refused.contains("rollout abort dev"), "{refused}");
    let resumed = util::json_out(
        f.p.cmd(&["rollout", "resume", "dev", "--json"])
            .env("VERBATIM_ACTOR", "second-controller"),
    );
    assert_eq!(resumed["state"], "completed", "{resumed:#}");
    converge(&agents, &v2);
    let tail: Vec<String> = steps(&f).split_off(2);
    assert_eq!(
        tail,
        [
            "wave-done",
            "wave-done",
            "baked",
            "wave",
            "wave-done",
            "baked",
            "completed"
        ]
    );
}

const MIGRATIONS: &str = "[app]\ndir = \"app\"\n[deploy]\nmigrations = [\"*/migrations/*.py\"]\n";

#[test]
fn a_rollback_names_the_migrations_it_does_not_undo() {
    let p = Project::with_config(MIGRATIONS);
    p.write("app/shop/migrations/0001_initial.py", "# first");
    let v1 = p.json(&["publish"])["manifest"]
        .as_str()
        .unwrap()
        .to_owned();
    p.write("app/shop/migrations/0042_add_genre2.py", "# second");
    let v2 = p.json(&["publish"])["manifest"]
        .as_str()
        .unwrap()
        .to_owned();
    p.ok(&["promote", &v1, "--to", "dev"]);
    p.ok(&["promote", &v2, "--to", "dev"]);
    let out = p.cmd(&["rollback", "dev"]).output().unwrap();
    assert!(out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("rolling back does not undo 0042_add_genre2.py"),
        "{err}"
    );
    assert!(!err.contains("0001_initial"), "{err}");
    // Forward again: nothing to warn about.
    let out = p.cmd(&["promote", &v2, "--to", "dev"]).output().unwrap();
    assert!(!String::from_utf8_lossy(&out.stderr).contains("does not undo"));
}

#[test]
fn pause_holds_the_hosts_where_they_are_and_abort_brings_them_back() {
    let f = Fleet::new(MIGRATIONS);
    let (agents, v1) = running(&f, 2);
    f.p.write("app/shop/migrations/0042_add_genre2.py", "# a migration");
    let v2 = f.release("v2");
    // Inconclusive (75) pauses after wave 1: the promoter exits 8.
    let err = util::exits(
        &mut f.p.cmd(&[
            "promote",
            &v2,
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
    assert!(
        err.contains("inconclusive") && err.contains("rollout resume dev"),
        "{err}"
    );
    let s = f.p.json(&["rollout", "status", "dev"]);
    assert_eq!(
        (s["state"].as_str(), s["on_target"].as_u64()),
        (Some("paused"), Some(1))
    );
    std::thread::sleep(Duration::from_secs(1));
    let on_v2 = agents
        .iter()
        .filter(|a| a.current().as_deref() == Some(v2.as_str()))
        .count();
    assert_eq!(on_v2, 1, "a paused rollout keeps wave 1 where it is");
    let out =
        f.p.cmd(&["rollout", "abort", "dev", "--reason", "enough", "--json"])
            .output()
            .unwrap();
    let aborted: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(aborted["state"], "aborted");
    let warned = String::from_utf8_lossy(&out.stderr);
    assert!(
        warned.contains("rolling back does not undo 0042_add_genre2.py"),
        "{warned}"
    );
    converge(&agents, &v1);
    f.p.fails(&["rollout", "resume", "dev"], 2);
}

#[test]
fn blue_green_stages_everywhere_then_switches_all_hosts_together() {
    let f = Fleet::new("[app]\ndir = \"app\"\n");
    let (agents, _v1) = running(&f, 4);
    let v2 = f.release("v2");
    let out = f.p.json(&[
        "promote",
        &v2,
        "--to",
        "dev",
        "--strategy",
        "blue-green",
        "--bake",
        "0",
    ]);
    assert_eq!(out["rollout"]["state"], "completed", "{out:#}");
    converge(&agents, &v2);
    assert_eq!(
        steps(&f),
        [
            "started",
            "stage",
            "switch",
            "wave-done",
            "baked",
            "completed"
        ]
    );
    // Every host had the release staged before the switch: none fetched at the flip.
    for a in &agents {
        let log = fs::read_to_string(&a.log).unwrap();
        assert!(log.contains("staged"), "{log}");
    }
}

#[test]
fn the_release_phase_runs_once_before_any_flip_and_a_failure_flips_nothing() {
    let f = Fleet::new(CONFIG);
    let (agents, _v1) = running(&f, 3);
    let v2 = f.release("v2");
    let out = f.p.json(&[
        "promote", &v2, "--to", "dev", "--waves", "1,100%", "--bake", "0",
    ]);
    assert_eq!(out["rollout"]["state"], "completed", "{out:#}");
    converge(&agents, &v2);
    let runs = fs::read_to_string(&f.release_log).unwrap();
    let ran: Vec<&str> = runs.lines().filter(|l| l.ends_with(&v2)).collect();
    assert_eq!(ran.len(), 1, "{runs}");
    // Before any flip: every activation of v2 is later than the release ran.
    let ran_at: u128 = ran[0].split(' ').next().unwrap().parse().unwrap();
    for a in &agents {
        let modified = fs::symlink_metadata(a.root.join("current"))
            .unwrap()
            .modified()
            .unwrap();
        let ns = modified
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        assert!(
            ns > ran_at,
            "{} flipped before the release phase ran",
            a.root.display()
        );
    }
    assert_eq!(steps(&f)[..3], ["started", "release", "wave"]);

    // A failing release command: aborted, nothing flips.
    f.p.write("app/fail-release", "");
    let v3 = f.release("v3");
    let err = util::exits(
        &mut f.p.cmd(&[
            "promote", &v3, "--to", "dev", "--waves", "1,100%", "--bake", "0",
        ]),
        6,
    );
    assert!(err.contains("release phase failed"), "{err}");
    std::thread::sleep(Duration::from_secs(1));
    for a in &agents {
        assert!(!a.activated().contains(&v3), "{} ran it", a.root.display());
        assert_eq!(a.current().as_deref(), Some(v2.as_str()));
    }
}

#[test]
fn the_site_moves_when_a_rollout_completes_not_when_it_starts() {
    let config =
        "[app]\ndir = \"app\"\n[assets]\ndir = \"static\"\n[site]\nentries = [\"index.html\"]\n";
    let f = Fleet::new(config);
    f.p.write("static/index.html", "<p>one</p>");
    let (agents, _v1) = running(&f, 2);
    let site = f.p.store().join("site/dev/index.html");
    assert_eq!(fs::read_to_string(&site).unwrap(), "<p>one</p>");
    f.p.write("static/index.html", "<p>two</p>");
    let v2 = f.release("v2");
    // Paused after wave 1: the site still serves the stable release.
    let go = f.hosts.path().join("go");
    let check = format!("test -e {} || exit 75", go.display());
    util::exits(
        &mut f.p.cmd(&[
            "promote",
            &v2,
            "--to",
            "dev",
            "--waves",
            "1,100%",
            "--bake",
            "0",
            "--check-cmd",
            &check,
        ]),
        8,
    );
    assert_eq!(fs::read_to_string(&site).unwrap(), "<p>one</p>");
    fs::write(&go, "").unwrap();
    let done = f.p.json(&["rollout", "resume", "dev"]);
    assert_eq!(done["state"], "completed", "{done:#}");
    assert_eq!(fs::read_to_string(&site).unwrap(), "<p>two</p>");
    converge(&agents, &v2);
}

#[test]
fn the_policy_sets_an_environments_rollout_and_at_once_overrides_it() {
    let f = Fleet::new("[app]\ndir = \"app\"\n");
    let (agents, _v1) = running(&f, 2);
    let bad = f.p.fails(
        &["policy", "set", "--rollout", "dev=1,50%", "--reason", "r"],
        2,
    );
    assert!(bad.contains("100%"), "{bad}");
    f.p.ok(&[
        "policy",
        "set",
        "--rollout",
        "dev=1,100%@0",
        "--reason",
        "waves in dev",
    ]);
    let shown = f.p.ok(&["policy", "show"]);
    assert!(
        shown.contains("rollout dev: waves 1,100%, bake 0s"),
        "{shown}"
    );
    let v2 = f.release("v2");
    let out = f.p.json(&["promote", &v2, "--to", "dev"]);
    assert_eq!(out["rollout"]["state"], "completed", "{out:#}");
    assert_eq!(steps(&f).first().map(String::as_str), Some("started"));
    converge(&agents, &v2);
    let refused =
        f.p.fails(&["promote", &v2, "--to", "dev", "--wait-hosts", "2"], 2);
    assert!(refused.contains("--at-once"), "{refused}");
    let v3 = f.release("v3");
    let before = steps(&f).len();
    let out = f.p.json(&["promote", &v3, "--to", "dev", "--at-once"]);
    assert_eq!(
        (out["kind"].as_str(), out.get("rollout")),
        (Some("promote"), None)
    );
    assert_eq!(steps(&f).len(), before, "no rollout step");
    converge(&agents, &v3);
    f.p.ok(&[
        "policy",
        "set",
        "--rollout",
        "dev=",
        "--reason",
        "at once again",
    ]);
    assert!(!f.p.ok(&["policy", "show"]).contains("rollout dev"));
}
