//! Hosts trust only moves the team signed, and never go backwards (TUF's
//! rollback and freeze attacks). The attacker can write the store but has
//! no signing key: it moves pointers with the real binary (no
//! `--sign-key`, or a key the host does not list), deletes and copies the
//! store's files, and keeps an old copy of the store to replay. Hosts run
//! `deploy` with `--require-event-signer` and `--allowed-signers`, and
//! each refusal must exit 5, name the culprit, and leave `current` and the
//! hooks untouched.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::signing::{openssh_key, public};
use crate::util::{exits, success, Project};

const RULE: [&str; 2] = ["--require-event-signer", "release@ci"];

/// A project with three published releases signed by the team's key `ci` (listed as
/// `release@ci` in `allowed_signers`) and a `stranger` key, and a host
/// root whose `post_activate` hook logs every run.
struct Fleet {
    p: Project,
    host: tempfile::TempDir,
    ci: PathBuf,
    stranger: PathBuf,
    m: [String; 3],
}

impl Fleet {
    fn new() -> Fleet {
        let p = Project::with_config(
            "[app]\ndir = \"app\"\n\n[deploy.hooks]\npost_activate = 'echo \"$VERBATIM_MANIFEST\" >> \"$VT_LOG\"'\n",
        );
        let m = ["v1", "v2", "v3"].map(|v| {
            p.write("app/index.html", v);
            p.json(&["publish"])["manifest"]
                .as_str()
                .unwrap()
                .to_owned()
        });
        let ci = openssh_key(p.path(), "ci");
        let stranger = openssh_key(p.path(), "stranger");
        for m in &m {
            success(p.cmd(&["sign", m, "--key"]).arg(&ci));
        }
        p.write("allowed_signers", format!("release@ci {}\n", public(&ci)));
        Fleet {
            p,
            host: tempfile::tempdir().unwrap(),
            ci,
            stranger,
            m,
        }
    }

    /// `verbatim ARGS… --sign-key KEY` in the project.
    fn signed(&self, args: &[&str], key: &Path) {
        success(self.p.cmd(args).arg("--sign-key").arg(key));
    }

    fn root(&self) -> PathBuf {
        self.host.path().join("root")
    }

    /// `deploy dev` on the host, under the rule, from `store`, plus `more`.
    fn deploy_from(&self, store: &Path, more: &[&str]) -> Command {
        let mut c = self.p.cmd(&["deploy", "dev", "--host-id", "web1"]);
        c.args(RULE)
            .arg("--allowed-signers")
            .arg(self.p.path().join("allowed_signers"))
            .arg("--root")
            .arg(self.root())
            .arg("--store")
            .arg(store)
            .env("VT_LOG", self.host.path().join("log"))
            .args(more);
        c
    }

    fn deploy(&self, more: &[&str]) -> Command {
        self.deploy_from(&self.p.store(), more)
    }

    /// The manifest `current` names.
    fn current(&self) -> Option<String> {
        let t = fs::read_link(self.root().join("current")).ok()?;
        Some(format!("sha256:{}", t.to_str()?.strip_prefix("releases/")?))
    }

    /// The hook log, emptied.
    fn take_log(&self) -> Vec<String> {
        let path = self.host.path().join("log");
        let text = fs::read_to_string(&path).unwrap_or_default();
        let _ = fs::remove_file(&path);
        text.lines().map(str::to_owned).collect()
    }

    fn report(&self) -> serde_json::Value {
        let path = self.p.store().join("envs/dev/hosts/web1.json");
        serde_json::from_slice(&fs::read(path).unwrap()).unwrap()
    }
}

/// Copies a directory tree (the attacker's snapshot of the store).
fn copy_tree(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for e in fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_tree(&e.path(), &target);
        } else {
            fs::copy(e.path(), &target).unwrap();
        }
    }
}

/// A move written without the team's key (a rollback to a release that
/// was signed and live once: the replay), or signed by a key the host does
/// not list, moves no host; the same rollback signed by the team does.
#[test]
fn a_move_not_signed_by_a_required_principal_moves_no_host() {
    let f = Fleet::new();
    let [v1, v2, _] = &f.m;
    f.signed(&["promote", v1, "--to", "dev"], &f.ci);
    success(&mut f.deploy(&[]));
    f.signed(&["promote", v2, "--to", "dev"], &f.ci);
    success(&mut f.deploy(&[]));
    assert_eq!(f.current().as_ref(), Some(v2));
    assert_eq!(f.take_log(), [v1.clone(), v2.clone()]);

    // The attacker rolls dev back to v1 without a key: a consistent event
    // and pointer, as anyone who can write the store can make.
    f.p.ok(&["rollback", "dev", "--reason", "replay"]);
    let err = exits(&mut f.deploy(&[]), 5);
    assert!(
        err.contains("event 3 of dev") && err.contains("is not signed by release@ci"),
        "{err}"
    );
    assert_eq!(f.current().as_ref(), Some(v2), "nothing moved");
    assert!(f.take_log().is_empty(), "no hook ran");

    // Signed, but by a key allowed_signers does not list.
    f.signed(&["promote", v2, "--to", "dev"], &f.stranger);
    f.signed(&["rollback", "dev"], &f.stranger);
    let err = exits(&mut f.deploy(&[]), 5);
    assert!(
        err.contains("event 5 of dev") && err.contains("1 valid signature(s) by other keys"),
        "{err}"
    );
    assert_eq!(f.current().as_ref(), Some(v2));

    // A rollback is an event too: signed by the team, it moves the host.
    f.signed(&["promote", v2, "--to", "dev"], &f.ci);
    f.signed(&["rollback", "dev", "--to", "1"], &f.ci);
    success(&mut f.deploy(&[]));
    assert_eq!(f.current().as_ref(), Some(v1));
    assert_eq!(f.take_log(), std::slice::from_ref(v1));
}

/// The root remembers the newest event it accepted: a store whose history
/// lost events, one that forked at that event (a replayed snapshot the
/// team signed on), or a pointer moved back, is refused, naming both; the
/// operator may still go back on the host, and may reset the mark.
#[test]
fn a_history_that_does_not_extend_what_the_host_accepted_is_refused() {
    let f = Fleet::new();
    let [v1, v2, v3] = &f.m;
    f.signed(&["promote", v1, "--to", "dev"], &f.ci);
    success(&mut f.deploy(&[]));
    let snapshot = f.host.path().join("snapshot");
    copy_tree(&f.p.store(), &snapshot);
    fs::copy(
        snapshot.join("envs/dev.json"),
        f.host.path().join("pointer-1.json"),
    )
    .unwrap();
    f.signed(&["promote", v2, "--to", "dev"], &f.ci);
    success(&mut f.deploy(&[]));
    let mark = f.root().join(".verbatim/seen/dev.json");
    let seen: serde_json::Value = serde_json::from_slice(&fs::read(&mark).unwrap()).unwrap();
    assert_eq!(
        (seen["env"].as_str(), seen["seq"].as_u64()),
        (Some("dev"), Some(2))
    );
    f.take_log();

    // The snapshot, replayed: one event, signed, consistent.
    let err = exits(&mut f.deploy_from(&snapshot, &[]), 5);
    assert!(
        err.contains("ends at event 1") && err.contains("this host accepted event 2"),
        "{err}"
    );
    assert!(err.contains(&mark.display().to_string()), "{err}");
    assert_eq!(f.current().as_ref(), Some(v2));

    // The snapshot, extended by a signed move of its own: a fork at event 2.
    let mut forked = f.p.cmd(&["promote", v3, "--to", "dev", "--store"]);
    forked.arg(&snapshot).arg("--sign-key").arg(&f.ci);
    success(&mut forked);
    let err = exits(&mut f.deploy_from(&snapshot, &[]), 5);
    assert!(
        err.contains("event 2 of dev is sha256:") && err.contains("the history was rewritten"),
        "{err}"
    );
    assert_eq!(f.current().as_ref(), Some(v2));

    // The pointer of the real store set back one event (as a stuck
    // replica would show it).
    // The snapshot's pointer was taken before event 2 was forked there.
    let old_pointer = fs::read(f.host.path().join("pointer-1.json")).unwrap();
    fs::write(f.p.store().join("envs/dev.json"), old_pointer).unwrap();
    let err = exits(&mut f.deploy(&[]), 5);
    assert!(err.contains("a pointer never moves back"), "{err}");
    assert_eq!(f.current().as_ref(), Some(v2));
    assert!(f.take_log().is_empty(), "no hook ran");

    // Going back on the host is the operator's own act.
    let mut back = f.p.cmd(&["deploy", "--to", "previous", "--root"]);
    back.arg(f.root()).env("VT_LOG", f.host.path().join("log"));
    success(&mut back);
    assert_eq!(f.current().as_ref(), Some(v1));

    // Removing the mark accepts the store as it is now.
    fs::remove_file(&mark).unwrap();
    success(&mut f.deploy_from(&snapshot, &[]));
    assert_eq!(f.current().as_ref(), Some(v3));
}

/// With `--max-age`, a move whose newest signed statement is too old is
/// refused and reported `stale`; a timestamp the team re-signs makes it
/// fresh again, and one that names another event, has expired, or is
/// signed by a key the host does not list does not.
#[test]
fn a_frozen_pointer_turns_a_host_with_max_age_stale() {
    let f = Fleet::new();
    let [v1, v2, _] = &f.m;
    f.signed(&["promote", v1, "--to", "dev"], &f.ci);
    success(&mut f.deploy(&["--max-age", "1h"]));
    assert!(f.p.store().join("envs/dev/timestamp.json").is_file());
    f.signed(&["promote", v2, "--to", "dev"], &f.ci);
    std::thread::sleep(std::time::Duration::from_millis(2100));

    let err = exits(&mut f.deploy(&["--max-age", "1s"]), 5);
    assert!(
        err.contains("dev looks frozen") && err.contains("verbatim timestamp dev"),
        "{err}"
    );
    assert_eq!(f.current().as_ref(), Some(v1), "nothing moved");
    let r = f.report();
    assert_eq!(
        (r["state"].as_str(), r["running"].as_str()),
        (Some("stale"), Some(v1.as_str()))
    );
    assert!(
        r["detail"].as_str().unwrap().contains("looks frozen"),
        "{r}"
    );

    let stamp = |key: &Path, valid: &str| {
        let mut c =
            f.p.cmd(&["timestamp", "dev", "--valid-for", valid, "--json"]);
        success(c.arg("--sign-key").arg(key));
    };
    stamp(&f.stranger, "1h");
    let err = exits(&mut f.deploy(&["--max-age", "1s"]), 5);
    assert!(
        err.contains("not signed by every required principal"),
        "{err}"
    );

    stamp(&f.ci, "1h");
    success(&mut f.deploy(&["--max-age", "1s"]));
    assert_eq!(f.current().as_ref(), Some(v2));
    assert_eq!(f.report()["state"], "active");

    stamp(&f.ci, "1s");
    std::thread::sleep(std::time::Duration::from_millis(2100));
    let err = exits(&mut f.deploy(&["--max-age", "1s"]), 5);
    assert!(err.contains("it has expired"), "{err}");

    // A timestamp naming another event says nothing of this one.
    stamp(&f.ci, "1h");
    let ts = f.p.store().join("envs/dev/timestamp.json");
    let saved = fs::read(&ts).unwrap();
    f.p.ok(&["rollback", "dev"]);
    f.signed(&["promote", v2, "--to", "dev"], &f.ci);
    std::thread::sleep(std::time::Duration::from_millis(2100));
    fs::write(&ts, &saved).unwrap();
    let err = exits(&mut f.deploy(&["--max-age", "1s"]), 5);
    assert!(err.contains("it names another event"), "{err}");

    let err = exits(
        f.p.cmd(&["deploy", "dev", "--max-age", "1h", "--root", "x"])
            .arg("--allowed-signers")
            .arg(f.p.path().join("allowed_signers")),
        2,
    );
    assert!(
        err.contains("--max-age needs --require-event-signer"),
        "{err}"
    );
}

/// An agent with `--max-age` notices a frozen pointer although it never
/// moves: its report turns `stale`, and back to `active` once the team
/// re-signs the timestamp. SIGTERM still ends it with 0.
#[test]
fn an_agent_with_max_age_turns_stale_while_the_pointer_stands_still() {
    use std::time::{Duration, Instant};
    let f = Fleet::new();
    let [v1, _, _] = &f.m;
    let mut agent =
        f.p.cmd(&["agent", "dev", "--host-id", "web1", "--interval", "200ms"]);
    agent
        .args(RULE)
        .args(["--max-age", "2s"])
        .arg("--allowed-signers")
        .arg(f.p.path().join("allowed_signers"))
        .arg("--root")
        .arg(f.root())
        .env("VT_LOG", f.host.path().join("log"))
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(fs::File::create(f.host.path().join("agent.log")).unwrap());
    f.signed(&["promote", v1, "--to", "dev"], &f.ci);
    let mut child = agent.spawn().unwrap();
    let state = || {
        fs::read(f.p.store().join("envs/dev/hosts/web1.json"))
            .ok()
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
            .and_then(|r| r["state"].as_str().map(str::to_owned))
    };
    let wait_for = |want: &str| {
        let start = Instant::now();
        while state().as_deref() != Some(want) {
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "no `{want}` report within 30 s (now {:?}):\n{}",
                state(),
                fs::read_to_string(f.host.path().join("agent.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    wait_for("active");
    assert_eq!(f.current().as_ref(), Some(v1));
    wait_for("stale");
    assert_eq!(f.current().as_ref(), Some(v1), "it runs what it ran");
    let mut stamp =
        f.p.cmd(&["timestamp", "dev", "--valid-for", "1h", "--sign-key"]);
    success(stamp.arg(&f.ci));
    wait_for("active");
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0));
}

/// The policy can say every move of an environment must be signed (`policy
/// set --sign-moves`): a promote or rollback without the key, or with a key
/// the policy's allowed signers do not list for the principal, is refused
/// (exit 2) with nothing written, so the team never leaves its hosts a move
/// they refuse.
#[test]
fn a_policy_that_asks_for_signed_moves_refuses_unsigned_ones() {
    let f = Fleet::new();
    let [v1, v2, _] = &f.m;
    f.p.ok(&[
        "policy",
        "set",
        "--sign-moves",
        "dev=release@ci",
        "--allowed-signers",
        "allowed_signers",
        "--reason",
        "hosts require release@ci",
    ]);
    let events = f.p.store().join("envs/dev/events");
    let err = f.p.fails(&["promote", v1, "--to", "dev"], 2);
    assert!(
        err.contains("signed by release@ci: pass --sign-key"),
        "{err}"
    );
    assert!(!events.exists(), "nothing written");
    let mut stranger = f.p.cmd(&["promote", v1, "--to", "dev", "--sign-key"]);
    let err = exits(stranger.arg(&f.stranger), 2);
    assert!(err.contains("do not list key SHA256:"), "{err}");
    assert!(!events.exists(), "nothing written");
    f.signed(&["promote", v1, "--to", "dev"], &f.ci);
    f.signed(&["promote", v2, "--to", "dev"], &f.ci);
    let err = f.p.fails(&["rollback", "dev"], 2);
    assert!(err.contains("pass --sign-key"), "{err}");
    f.signed(&["rollback", "dev"], &f.ci);
    success(&mut f.deploy(&[]));
    assert_eq!(f.current().as_ref(), Some(v1));
}
