//! Signed host reports (`deploy --report-key`, `promote --wait-hosts …
//! --signed-reports`): a report counts only when its host signed its exact
//! bytes with the key the store's policy lists for that host id. Real
//! `deploy` processes with keys made by the real `ssh-keygen` answer;
//! reports a script forges for the live move, unsigned or signed with
//! another host's key or over other bytes, do not, and are named on stderr.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use crate::environments::{history, live, release};
use crate::reports::{forged, plant, until_live};
use crate::signing::{openssh_key, public};
use crate::util::{self, Project};

const NS: &str = "verbatim-report@v1";

/// Keys for `ids` made by ssh-keygen in `dir`, listed in the store's
/// policy as allowed signers, each for the principal of its host id.
fn keys_in_policy(p: &Project, dir: &Path, ids: &[&str]) -> Vec<PathBuf> {
    let keys: Vec<PathBuf> = ids.iter().map(|id| openssh_key(dir, id)).collect();
    let lines: String = ids
        .iter()
        .zip(&keys)
        .map(|(id, k)| format!("{id} {}\n", public(k)))
        .collect();
    let file = p.write("hosts.allowed_signers", lines);
    p.ok(&[
        "policy",
        "set",
        "--allowed-signers",
        file.to_str().unwrap(),
        "--reason",
        "hosts sign their reports",
    ]);
    keys
}

/// `verbatim deploy dev` on host `id`, its root under `hosts`, signing
/// its report with `key`.
fn deploy_signed(p: &Project, hosts: &Path, id: &str, key: &Path) {
    util::success(
        p.cmd(&["deploy", "dev", "--host-id", id])
            .arg("--root")
            .arg(hosts.join(id))
            .arg("--store")
            .arg(p.store())
            .arg("--report-key")
            .arg(key),
    );
}

/// Starts `promote M --to dev --wait-hosts WAIT --wait-timeout T --json`
/// and `more`.
fn promote_waiting(p: &Project, m: &str, wait: &str, timeout: &str, more: &[&str]) -> Child {
    let mut args = vec![
        "promote",
        m,
        "--to",
        "dev",
        "--wait-hosts",
        wait,
        "--wait-timeout",
        timeout,
        "--json",
    ];
    args.extend(more);
    p.cmd(&args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting verbatim promote")
}

/// `ssh-keygen -Y sign` of `file` with `key` in the reports' namespace:
/// `<file>.sig`, as a script holding that key would make it.
fn ssh_sign(key: &Path, file: &Path) -> Vec<u8> {
    util::success(
        Command::new("ssh-keygen")
            .args(["-q", "-Y", "sign", "-n", NS, "-f"])
            .arg(key)
            .arg(file),
    );
    fs::read(format!("{}.sig", file.display())).unwrap()
}

#[test]
fn deployed_hosts_with_listed_keys_answer_signed_reports() {
    let p = Project::new();
    let hosts = tempfile::tempdir().unwrap();
    let m1 = release(&p, "1");
    p.ok(&["promote", &m1, "--to", "dev"]);
    let ids = ["web1", "web2"];
    let keys = keys_in_policy(&p, p.path(), &ids);

    let m2 = release(&p, "2");
    let child = promote_waiting(&p, &m2, "web1,web2", "60s", &["--signed-reports"]);
    until_live(&p, &m2);
    for (id, key) in ids.iter().zip(&keys) {
        deploy_signed(&p, hosts.path(), id, key);
    }
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(!err.contains("ignored"), "{err}");
    assert!(err.contains("signed reports only"), "{err}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["check"]["status"], "passed", "{v}");
    assert_eq!(v["check"]["signed_reports"], true, "{v}");
    // The event records it, so whoever reads the check knows what counted.
    assert_eq!(history(&p, "dev")[0]["check"]["signed_reports"], true);

    // What the hosts signed, the real ssh-keygen verifies: the report's
    // exact bytes, in the reports' namespace, as the host's principal.
    let allowed = p.path().join("hosts.allowed_signers");
    for id in ids {
        let report = p.store().join(format!("envs/dev/hosts/{id}.json"));
        let sig = p.store().join(format!("envs/dev/hosts/{id}.sig"));
        util::success(
            Command::new("ssh-keygen")
                .args(["-Y", "verify", "-n", NS, "-I", id, "-f"])
                .arg(&allowed)
                .arg("-s")
                .arg(&sig)
                .stdin(fs::File::open(&report).unwrap()),
        );
    }
    // `status` takes no signature for a report, nor warns about one.
    let out = p.run(&["status", "dev", "--hosts", "--json"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && !err.contains(".sig"), "{err}");
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let hosts = status["environments"][0]["hosts"].as_array().unwrap();
    assert_eq!(hosts.len(), 2, "{status}");
}

/// Once dev's pointer names `m` (event `seq`), plants reports for that
/// very move (its seq and event digest) as a script could: `web1`'s
/// unsigned, `web2`'s signed with web1's key, `web3`'s signed with its own
/// key but over other bytes.
fn forge_for(p: &Project, m: &str, seq: u64, keys: &[PathBuf]) {
    until_live(p, m);
    let stored = fs::read(p.store().join(format!("envs/dev/events/{seq:010}.json"))).unwrap();
    let event = verbatim::digest::Digest::of(&stored).to_string();
    let dir = tempfile::tempdir().unwrap();
    let file = |name: &str, body: &str| {
        let path = dir.path().join(name);
        fs::write(&path, body).unwrap();
        path
    };
    let web1 = forged("dev", "web1", m, seq, Some(&event));
    plant(p, "envs/dev/hosts/web1.json", &web1);
    let web2 = forged("dev", "web2", m, seq, Some(&event));
    let sig = ssh_sign(&keys[0], &file("web2.json", &web2));
    plant(
        p,
        "envs/dev/hosts/web2.sig",
        std::str::from_utf8(&sig).unwrap(),
    );
    plant(p, "envs/dev/hosts/web2.json", &web2);
    let web3 = forged("dev", "web3", m, seq, Some(&event));
    let other = web3.replace("\"forged\"", "\"signed as it was\"");
    let sig = ssh_sign(&keys[2], &file("web3.json", &other));
    plant(
        p,
        "envs/dev/hosts/web3.sig",
        std::str::from_utf8(&sig).unwrap(),
    );
    plant(p, "envs/dev/hosts/web3.json", &web3);
}

#[test]
fn forged_reports_unsigned_or_signed_by_another_key_satisfy_no_signed_reports() {
    let p = Project::new();
    let m1 = release(&p, "1");
    p.ok(&["promote", &m1, "--to", "dev"]);
    let keys = keys_in_policy(&p, p.path(), &["web1", "web2", "web3"]);

    // Without --signed-reports these forgeries pass: that is the hole.
    let m2 = release(&p, "2");
    let child = promote_waiting(&p, &m2, "web1,web2,web3", "60s", &[]);
    forge_for(&p, &m2, 2, &keys);
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let m3 = release(&p, "3");
    let child = promote_waiting(&p, &m3, "web1,web2,web3", "4s", &["--signed-reports"]);
    forge_for(&p, &m3, 3, &keys);
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(6), "{err}");
    assert!(err.contains("only 0/3 hosts"), "{err}");
    let web1_key = {
        let text = fs::read_to_string(format!("{}.pub", keys[0].display())).unwrap();
        let key: ssh_key::PublicKey = text.parse().unwrap();
        key.fingerprint(ssh_key::HashAlg::Sha256).to_string()
    };
    for (host, why) in [
        ("web1", "it is not signed".to_owned()),
        (
            "web2",
            format!("it is signed by key {web1_key}, which the policy's allowed signers do not list for principal web2"),
        ),
        ("web3", "does not verify".to_owned()),
    ] {
        let prefix = format!("envs/dev/hosts/{host}.json: ignored: ");
        assert_eq!(err.matches(&prefix).count(), 1, "{prefix}:\n{err}");
        let line = err.lines().find(|l| l.contains(&prefix)).unwrap();
        assert!(line.contains(&why), "{host}: {why}:\n{err}");
    }
    assert!(!err.contains(".sig: ignored"), "{err}");
    assert_eq!(history(&p, "dev")[0]["kind"], "auto-rollback");
    assert_eq!(live(&p, "dev").as_deref(), Some(m2.as_str()));
}

#[test]
fn signed_reports_without_allowed_signers_in_the_policy_is_a_usage_error() {
    let p = Project::new();
    let m1 = release(&p, "1");
    let signed = |m: &str| {
        let args = [
            "promote",
            m,
            "--to",
            "dev",
            "--wait-hosts",
            "web1",
            "--signed-reports",
        ];
        let err = p.fails(&args, 2);
        assert!(err.contains("policy set --allowed-signers"), "{err}");
        assert!(err.contains("web1 ssh-ed25519"), "{err}");
    };
    // No policy at all yet (the first move would store it): nothing moves.
    signed(&m1);
    assert_eq!(live(&p, "dev"), None);
    // A policy without allowed signers: nothing moves either.
    p.ok(&["promote", &m1, "--to", "dev"]);
    assert!(p.store().join("policy.json").exists());
    let m2 = release(&p, "2");
    signed(&m2);
    assert_eq!(live(&p, "dev").as_deref(), Some(m1.as_str()));
    assert_eq!(history(&p, "dev").len(), 1);
    // Asking for signed reports without waiting for hosts is refused too.
    let err = p.fails(&["promote", &m2, "--to", "dev", "--signed-reports"], 2);
    assert!(err.contains("--wait-hosts"), "{err}");
}
