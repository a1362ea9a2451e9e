//! Signed releases, checked both ways against the real OpenSSH tools:
//! what verbatim signs, `ssh-keygen -Y verify` accepts; what `ssh-keygen -Y
//! sign` makes, verbatim accepts; and hosts refuse every kind of bad or
//! missing signature before anything is unpacked.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::util::{self, Project};

const NS: &str = "verbatim-manifest@v1";

/// `ssh-keygen`, which the tests need (openssh-client; `cargo xtask ci`
/// installs it).
fn ssh_keygen() -> Command {
    Command::new("ssh-keygen")
}

/// An ed25519 key made by ssh-keygen itself (no passphrase).
pub fn openssh_key(dir: &Path, name: &str) -> PathBuf {
    let path = dir.join(name);
    util::success(
        ssh_keygen()
            .args(["-q", "-t", "ed25519", "-N", "", "-C", name, "-f"])
            .arg(&path),
    );
    path
}

/// The public key of `key`, one `allowed_signers` line's key part.
pub fn public(key: &Path) -> String {
    fs::read_to_string(format!("{}.pub", key.display()))
        .unwrap()
        .trim()
        .to_owned()
}

/// A project with one published (unsigned) release; returns it and its id.
fn published() -> (Project, String) {
    let p = Project::new();
    p.write("app/index.html", "v1");
    let m = p.json(&["publish"])["manifest"]
        .as_str()
        .unwrap()
        .to_owned();
    (p, m)
}

/// The stored manifest's path, and its signatures directory.
fn stored(p: &Project, m: &str) -> (PathBuf, PathBuf) {
    let hex = m.strip_prefix("sha256:").unwrap();
    (
        p.store().join(format!("manifests/sha256/{hex}.json")),
        p.store().join(format!("signatures/sha256/{hex}")),
    )
}

fn signature_files(p: &Project, m: &str) -> Vec<PathBuf> {
    let (_, dir) = stored(p, m);
    let mut v: Vec<PathBuf> = fs::read_dir(dir)
        .map(|d| d.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default();
    v.sort();
    v
}

#[test]
fn key_generate_writes_a_0600_key_ssh_keygen_reads_and_never_overwrites() {
    let p = Project::new();
    let out = p.path().join("ci.key");
    let fp = p.ok(&["key", "generate", "--out", "ci.key"]);
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        fs::metadata(&out).unwrap().permissions().mode() & 0o777,
        0o600
    );
    // ssh-keygen derives the same public key and fingerprint from it.
    let derived = util::success(ssh_keygen().arg("-y").arg("-f").arg(&out));
    let derived = String::from_utf8(derived).unwrap();
    assert_eq!(
        derived.split_whitespace().take(2).collect::<Vec<_>>(),
        public(&out).split_whitespace().take(2).collect::<Vec<_>>()
    );
    let listed = util::success(ssh_keygen().arg("-l").arg("-f").arg(&out));
    assert!(
        String::from_utf8(listed).unwrap().contains(fp.trim()),
        "{fp}"
    );
    let before = fs::read(&out).unwrap();
    let err = p.fails(&["key", "generate", "--out", "ci.key"], 2);
    assert!(err.contains("never overwrites"), "{err}");
    assert_eq!(fs::read(&out).unwrap(), before);
}

#[test]
fn what_verbatim_signs_ssh_keygen_verifies() {
    let (p, m) = published();
    p.ok(&["key", "generate", "--out", "ci.key"]);
    p.write("app/index.html", "v2");
    let out = p.json(&["publish", "--sign-key", "ci.key"]);
    let m2 = out["manifest"].as_str().unwrap().to_owned();
    assert_ne!(m, m2);
    let (manifest, _) = stored(&p, &m2);
    let sigs = signature_files(&p, &m2);
    assert_eq!(sigs.len(), 1, "{sigs:?}");
    let allowed = p.write(
        "allowed_signers",
        format!("release@ci {}\n", public(&p.path().join("ci.key"))),
    );
    let verified = util::success(
        ssh_keygen()
            .args(["-Y", "verify", "-f"])
            .arg(&allowed)
            .args(["-I", "release@ci", "-n", NS, "-s"])
            .arg(&sigs[0])
            .stdin(fs::File::open(&manifest).unwrap()),
    );
    assert!(
        String::from_utf8_lossy(&verified).contains("Good \"verbatim-manifest@v1\" signature"),
        "{}",
        String::from_utf8_lossy(&verified)
    );
    // verify lists it with its principal.
    let v = p.json(&["verify", &m2, "--allowed-signers", "allowed_signers"]);
    assert_eq!(v["signatures"][0]["valid"], true, "{v}");
    assert_eq!(v["signatures"][0]["principals"][0], "release@ci", "{v}");
    // `sign --key` again is a no-op (ed25519 signatures are deterministic).
    let again = p.json(&["sign", &m2, "--key", "ci.key"]);
    assert_eq!(again["result"], "unchanged", "{again}");
}

#[test]
fn what_ssh_keygen_signs_verbatim_accepts_and_deploys() {
    let (p, m) = published();
    let qa = openssh_key(p.path(), "qa");
    let (manifest, _) = stored(&p, &m);
    let copy = p.path().join("manifest.json");
    fs::copy(&manifest, &copy).unwrap();
    util::success(
        ssh_keygen()
            .args(["-Y", "sign", "-n", NS, "-f"])
            .arg(&qa)
            .arg(&copy),
    );
    let sig = p.path().join("manifest.json.sig");
    let out = p.json(&["sign", &m, "--signature", sig.to_str().unwrap()]);
    assert_eq!(out["result"], "written", "{out}");
    p.write("allowed_signers", format!("qa@acme {}\n", public(&qa)));
    let root = p.path().join("host");
    let d = p.json(&[
        "deploy",
        &m,
        "--root",
        root.to_str().unwrap(),
        "--allowed-signers",
        "allowed_signers",
        "--require",
        "qa@acme",
    ]);
    assert_eq!(d["result"], "activated", "{d}");
    assert_eq!(
        fs::read_to_string(root.join("current/index.html")).unwrap(),
        "v1"
    );
}

#[test]
fn sign_refuses_a_signature_that_does_not_verify() {
    let (p, m) = published();
    let qa = openssh_key(p.path(), "qa");
    let other = p.write("other.json", "{}");
    util::success(
        ssh_keygen()
            .args(["-Y", "sign", "-n", NS, "-f"])
            .arg(&qa)
            .arg(&other),
    );
    let err = p.fails(&["sign", &m, "--signature", "other.json.sig"], 5);
    assert!(err.contains("does not verify"), "{err}");
    assert!(signature_files(&p, &m).is_empty());
}

/// Every way a signature can be missing or wrong: `deploy --require`
/// refuses each with exit 5, unpacks nothing and activates nothing; a good
/// one is accepted.
#[test]
fn deploy_refuses_unsigned_unknown_tampered_misnamespaced_and_truncated_signatures() {
    let (p, m) = published();
    let ci = openssh_key(p.path(), "ci");
    let stranger = openssh_key(p.path(), "stranger");
    p.write("allowed_signers", format!("release@ci {}\n", public(&ci)));
    let (manifest, sig_dir) = stored(&p, &m);
    let hex = m.strip_prefix("sha256:").unwrap();
    let sign = |key: &Path, ns: &str, bytes: &[u8]| -> Vec<u8> {
        let f = p.path().join("to-sign");
        fs::write(&f, bytes).unwrap();
        let _ = fs::remove_file(p.path().join("to-sign.sig"));
        util::success(
            ssh_keygen()
                .args(["-Y", "sign", "-n", ns, "-f"])
                .arg(key)
                .arg(&f),
        );
        fs::read(p.path().join("to-sign.sig")).unwrap()
    };
    let bytes = fs::read(&manifest).unwrap();
    let good = sign(&ci, NS, &bytes);
    let plant = |sig: &[u8]| {
        let _ = fs::remove_dir_all(&sig_dir);
        fs::create_dir_all(&sig_dir).unwrap();
        fs::write(sig_dir.join("planted.sig"), sig).unwrap();
    };
    let deploy = |root: &Path| {
        p.cmd(&[
            "deploy",
            &m,
            "--allowed-signers",
            "allowed_signers",
            "--require",
            "release@ci",
        ])
        .arg("--root")
        .arg(root)
        .output()
        .unwrap()
    };
    let cases: [(&str, Option<Vec<u8>>, &str); 5] = [
        ("unsigned", None, "no signatures"),
        (
            "an unknown key",
            Some(sign(&stranger, NS, &bytes)),
            "does not list",
        ),
        (
            "other bytes",
            Some(sign(&ci, NS, b"{\"not\":\"the manifest\"}")),
            "does not verify",
        ),
        (
            "the wrong namespace",
            Some(sign(&ci, "file", &bytes)),
            "namespace `file`",
        ),
        (
            "a truncated file",
            Some(good[..good.len() / 2].to_vec()),
            "not an SSH signature",
        ),
    ];
    for (i, (what, sig, says)) in cases.into_iter().enumerate() {
        match &sig {
            Some(s) => plant(s),
            None => {
                let _ = fs::remove_dir_all(&sig_dir);
            }
        }
        let root = p.path().join(format!("host-{i}"));
        let out = deploy(&root);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(5), "{what}: {err}");
        assert!(err.contains(says), "{what}: expected {says:?} in {err}");
        assert!(err.contains("release@ci"), "{what}: {err}");
        assert!(
            fs::symlink_metadata(root.join("current")).is_err(),
            "{what}: something was activated"
        );
        let releases: Vec<_> = fs::read_dir(root.join("releases"))
            .map(|d| d.collect())
            .unwrap_or_default();
        assert!(releases.is_empty(), "{what}: something was unpacked");
        // fetch refuses it the same way.
        let f = p
            .cmd(&[
                "fetch",
                &m,
                "--allowed-signers",
                "allowed_signers",
                "--require",
                "release@ci",
            ])
            .arg("--into")
            .arg(p.path().join(format!("fetched-{i}")))
            .output()
            .unwrap();
        assert_eq!(f.status.code(), Some(5), "fetch, {what}");
    }
    plant(&good);
    let root = p.path().join("host-ok");
    let out = deploy(&root);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        fs::read_link(root.join("current")).unwrap(),
        Path::new(&format!("releases/{hex}"))
    );
}

#[test]
fn a_policy_requiring_qa_refuses_promotion_until_qa_signs() {
    let (p, m) = published();
    p.ok(&["promote", &m, "--to", "dev"]);
    p.ok(&["promote", "dev", "--to", "preprod"]);
    p.ok(&["key", "generate", "--out", "qa.key"]);
    let qa = public(&p.path().join("qa.key"));
    // No signers, no requirement: refused, and the policy is unchanged.
    let err = p.fails(
        &[
            "policy",
            "set",
            "--require",
            "prod=qa@acme",
            "--reason",
            "r",
        ],
        2,
    );
    assert!(err.contains("no allowed signers"), "{err}");
    p.write("allowed_signers", format!("qa@acme {qa}\n"));
    p.ok(&[
        "policy",
        "set",
        "--require",
        "prod=qa@acme",
        "--allowed-signers",
        "allowed_signers",
        "--reason",
        "QA signs what goes to prod",
    ]);
    let shown = p.json(&["policy", "show"]);
    assert_eq!(
        shown["policy"]["environments"][2]["require"][0], "qa@acme",
        "{shown}"
    );
    // preprod needs nothing; prod refuses, naming the principal.
    let out = p.run(&["--json", "promote", "preprod", "--to", "prod"]);
    assert_eq!(out.status.code(), Some(3));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let gate = doc["gates"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["gate"] == "signatures")
        .unwrap_or_else(|| panic!("no signatures gate: {doc}"))
        .clone();
    assert_eq!(gate["ok"], false, "{gate}");
    assert!(
        gate["detail"]
            .as_str()
            .unwrap()
            .contains("missing: qa@acme"),
        "{gate}"
    );
    // A key the policy does not list does not count.
    p.ok(&["key", "generate", "--out", "other.key"]);
    p.ok(&["sign", &m, "--key", "other.key"]);
    p.fails(&["promote", "preprod", "--to", "prod"], 3);
    // QA signs: the gate passes.
    p.ok(&["sign", &m, "--key", "qa.key"]);
    let moved = p.json(&["promote", "preprod", "--to", "prod"]);
    assert_eq!(moved["result"], "moved", "{moved}");
    assert!(
        moved["gates"]
            .as_array()
            .unwrap()
            .iter()
            .any(|g| g["gate"] == "signatures" && g["ok"] == true),
        "{moved}"
    );
}

#[test]
fn signed_events_verify_with_ssh_keygen_and_an_edited_one_is_caught() {
    let (p, m) = published();
    p.ok(&["key", "generate", "--out", "ops.key"]);
    p.write(
        "allowed_signers",
        format!("ops@acme {}\n", public(&p.path().join("ops.key"))),
    );
    p.ok(&[
        "promote",
        &m,
        "--to",
        "dev",
        "--sign-key",
        "ops.key",
        "--reason",
        "ship it",
    ]);
    let event = p.store().join("envs/dev/events");
    let event = fs::read_dir(&event)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let sig_dir = p.store().join("envs/dev/signatures/1");
    let sig = fs::read_dir(&sig_dir)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    // OpenSSH agrees the event is signed by ops@acme.
    util::success(
        ssh_keygen()
            .args(["-Y", "verify", "-f"])
            .arg(p.path().join("allowed_signers"))
            .args(["-I", "ops@acme", "-n", "verbatim-event@v1", "-s"])
            .arg(&sig)
            .stdin(fs::File::open(&event).unwrap()),
    );
    let h = p.json(&["history", "dev", "--allowed-signers", "allowed_signers"]);
    let sigs = &h["events"][0]["signatures"];
    assert_eq!(sigs[0]["valid"], true, "{h}");
    assert_eq!(sigs[0]["principals"][0], "ops@acme", "{h}");
    let text = p.ok(&["history", "dev", "--allowed-signers", "allowed_signers"]);
    assert!(text.contains("signed by ops@acme"), "{text}");
    let v = p.ok(&["history", "dev", "--verify"]);
    assert!(v.contains("1 signed event(s)"), "{v}");

    // The newest event's reason is not covered by the hash chain (nothing
    // comes after it) nor by the pointer; its signature covers it.
    let text = fs::read_to_string(&event).unwrap();
    fs::write(&event, text.replace("ship it", "shipped by mistake")).unwrap();
    let err = p.fails(&["history", "dev", "--verify"], 5);
    assert!(
        err.contains("event 1 was changed after it was signed"),
        "{err}"
    );
    let listed = p.ok(&["history", "dev"]);
    assert!(listed.contains("BAD SIGNATURE"), "{listed}");
}

/// A project whose `dev` has two events, both signed by `ops.key`
/// (`ops@acme` in `allowed_signers`); returns it and the events' files.
fn two_signed_events() -> (Project, Vec<PathBuf>) {
    let (p, m1) = published();
    p.ok(&["key", "generate", "--out", "ops.key"]);
    p.write(
        "allowed_signers",
        format!("ops@acme {}\n", public(&p.path().join("ops.key"))),
    );
    p.ok(&["promote", &m1, "--to", "dev", "--sign-key", "ops.key"]);
    p.write("app/index.html", "v2");
    let m2 = p.json(&["publish"])["manifest"]
        .as_str()
        .unwrap()
        .to_owned();
    p.ok(&["promote", &m2, "--to", "dev", "--sign-key", "ops.key"]);
    let mut events: Vec<PathBuf> = fs::read_dir(p.store().join("envs/dev/events"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    events.sort();
    assert_eq!(events.len(), 2, "{events:?}");
    let v = p.ok(&[
        "history",
        "dev",
        "--verify",
        "--allowed-signers",
        "allowed_signers",
    ]);
    assert!(v.contains("2 signed event(s)"), "{v}");
    (p, events)
}

#[test]
fn history_verify_refuses_an_unsigned_event_after_a_signed_one() {
    let (p, events) = two_signed_events();
    // Event 2's signature removed: the newest event could now be edited
    // unseen, so its missing signature is itself the fault.
    fs::remove_dir_all(p.store().join("envs/dev/signatures/2")).unwrap();
    for with_file in [false, true] {
        let mut args = vec!["history", "dev", "--verify"];
        if with_file {
            args.extend(["--allowed-signers", "allowed_signers"]);
        }
        let err = p.fails(&args, 5);
        assert!(
            err.contains("event 2 of dev is not signed, but event 1 before it is"),
            "{err}"
        );
    }
    // And edited too, as someone removing the signature would.
    let text = fs::read_to_string(&events[1]).unwrap();
    let edited = text.replace("\"reason\":null", "\"reason\":\"edited\"");
    assert_ne!(text, edited, "{text}");
    fs::write(&events[1], edited).unwrap();
    let err = p.fails(&["history", "dev", "--verify"], 5);
    assert!(err.contains("event 2 of dev is not signed"), "{err}");
    // Without --verify the history is still shown.
    p.ok(&["history", "dev"]);
}

#[test]
fn history_verify_with_allowed_signers_refuses_a_key_the_file_does_not_list() {
    let (p, events) = two_signed_events();
    // Event 2 re-signed (by ssh-keygen) with a key allowed_signers does
    // not list, in place of ops@acme's signature.
    let sig_dir = p.store().join("envs/dev/signatures/2");
    fs::remove_dir_all(&sig_dir).unwrap();
    let stranger = openssh_key(p.path(), "stranger");
    let copy = p.path().join("event-2.json");
    fs::copy(&events[1], &copy).unwrap();
    util::success(
        ssh_keygen()
            .args(["-Y", "sign", "-n", "verbatim-event@v1", "-f"])
            .arg(&stranger)
            .arg(&copy),
    );
    fs::create_dir_all(&sig_dir).unwrap();
    fs::copy(
        p.path().join("event-2.json.sig"),
        sig_dir.join("stranger.sig"),
    )
    .unwrap();
    let listed = util::success(ssh_keygen().arg("-l").arg("-f").arg(&stranger));
    let fp = String::from_utf8(listed).unwrap();
    let fp = fp.split_whitespace().nth(1).unwrap().to_owned();
    assert!(fp.starts_with("SHA256:"), "{fp}");

    let err = p.fails(
        &[
            "history",
            "dev",
            "--verify",
            "--allowed-signers",
            "allowed_signers",
        ],
        5,
    );
    assert!(err.contains("event 2 of dev is signed by key"), "{err}");
    assert!(err.contains(&fp), "{fp} in {err}");
    assert!(err.contains("envs/dev/signatures/2/stranger.sig"), "{err}");
    assert!(err.contains("add the key"), "{err}");
    // Without the file, who signed is not a question `--verify` can ask:
    // the signature verifies, and every event is signed.
    let v = p.ok(&["history", "dev", "--verify"]);
    assert!(v.contains("2 signed event(s)"), "{v}");
    // A key listed only for manifests does not sign events either.
    p.write(
        "manifests_only",
        format!(
            "ops@acme {}\nstranger@acme namespaces=\"verbatim-manifest@v1\" {}\n",
            public(&p.path().join("ops.key")),
            public(&stranger)
        ),
    );
    let err = p.fails(
        &[
            "history",
            "dev",
            "--verify",
            "--allowed-signers",
            "manifests_only",
        ],
        5,
    );
    assert!(err.contains(&fp), "{err}");
}

#[test]
fn history_verify_passes_an_environment_never_signed() {
    let (p, m) = published();
    p.ok(&["promote", &m, "--to", "dev"]);
    p.write("app/index.html", "v2");
    let m2 = p.json(&["publish"])["manifest"]
        .as_str()
        .unwrap()
        .to_owned();
    p.ok(&["promote", &m2, "--to", "dev"]);
    p.ok(&["key", "generate", "--out", "ops.key"]);
    p.write(
        "allowed_signers",
        format!("ops@acme {}\n", public(&p.path().join("ops.key"))),
    );
    let v = p.ok(&["history", "dev", "--verify"]);
    assert!(v.contains("intact"), "{v}");
    assert!(!v.contains("signed event"), "{v}");
    p.ok(&[
        "history",
        "dev",
        "--verify",
        "--allowed-signers",
        "allowed_signers",
    ]);
}
