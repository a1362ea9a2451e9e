//! Environments: promote, rollback, status, history, fetch, diff — and the
//! guarantees under races and crashes.

use std::fs;
use std::process::{Command, Stdio};

use verbatim::digest::Digest;
use verbatim::manifest::{self, Manifest};

use crate::util::{strings, success, Project};

/// Publishes the app with `version` in it; returns the manifest id.
pub fn release(p: &Project, version: &str) -> String {
    p.write("app/version.txt", version);
    p.json(&["publish"])["manifest"]
        .as_str()
        .unwrap()
        .to_owned()
}

pub fn live(p: &Project, env: &str) -> Option<String> {
    let v = p.json(&["status", env]);
    v["environments"][0]["manifest"].as_str().map(String::from)
}

pub fn history(p: &Project, env: &str) -> Vec<serde_json::Value> {
    p.json(&["history", env])["events"]
        .as_array()
        .unwrap()
        .clone()
}

#[test]
fn pipeline_dev_preprod_prod_rollback_and_repromote() {
    let p = Project::new();
    let m1 = release(&p, "1");
    for (what, env) in [
        (&m1, "dev"),
        (&"dev".to_owned(), "preprod"),
        (&"preprod".to_owned(), "prod"),
    ] {
        let v = p.json(&["promote", what, "--to", env]);
        assert_eq!(v["result"], "moved");
        assert_eq!(v["manifest"], m1.as_str());
    }
    p.write("app/version.txt", "2");
    let m2 = p.json(&["publish", "--env", "dev"])["manifest"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(m1, m2);
    // publish --env with an unchanged tree: nothing to do.
    let again = p.json(&["publish", "--env", "dev"]);
    assert_eq!(again["promoted"]["result"], "unchanged");
    p.ok(&["promote", &m2, "--to", "preprod"]);
    p.ok(&["promote", "preprod", "--to", "prod"]);
    assert_eq!(live(&p, "prod").unwrap(), m2);

    let v = p.json(&["rollback", "prod", "--reason", "bad deploy"]);
    assert_eq!(v["manifest"], m1.as_str());
    assert_eq!(v["previous"], m2.as_str());
    assert_eq!(live(&p, "prod").unwrap(), m1);

    // Re-promote: preprod still has m2.
    p.ok(&["promote", "preprod", "--to", "prod"]);
    assert_eq!(live(&p, "prod").unwrap(), m2);

    let h = history(&p, "prod");
    let kinds: Vec<&str> = h.iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        ["promote", "rollback", "promote", "promote"],
        "newest first"
    );
    let seqs: Vec<u64> = h.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, [4, 3, 2, 1]);
    assert_eq!(h[1]["reason"], "bad deploy");
    assert_eq!(h[1]["from"], m2.as_str());
    assert_eq!(h[1]["to"], m1.as_str());

    // Rollback to an event number.
    p.ok(&["rollback", "prod", "--to", "1"]);
    assert_eq!(live(&p, "prod").unwrap(), m1);

    // Every event is an immutable object; the pointer equals the newest one.
    let pointer: serde_json::Value =
        serde_json::from_slice(&fs::read(p.store().join("envs/prod.json")).unwrap()).unwrap();
    assert_eq!(pointer["seq"], 5);
    assert_eq!(pointer["manifest"], m1.as_str());
    assert_eq!(
        Project::files_under(&p.store().join("envs/prod/events")).len(),
        5
    );

    // status lists every environment in order; human output names them.
    let all = p.json(&["status"]);
    let envs: Vec<&str> = all["environments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["env"].as_str().unwrap())
        .collect();
    assert_eq!(envs, ["dev", "preprod", "prod"]);
    assert!(p.ok(&["history", "prod"]).contains("rollback"));
}

#[test]
fn gates_refuse_out_of_order_and_force_is_recorded() {
    let p = Project::new();
    let m1 = release(&p, "1");
    let err = p.fails(&["promote", &m1, "--to", "prod"], 3);
    assert!(err.contains("preprod") && err.contains("--force"), "{err}");
    assert_eq!(live(&p, "prod"), None);

    p.fails(&["promote", &m1, "--to", "prod", "--force"], 2); // --reason is required
    success(
        p.cmd(&[
            "promote", &m1, "--to", "prod", "--force", "--reason", "hotfix",
        ])
        .env("VERBATIM_ACTOR", "alice"),
    );
    let h = history(&p, "prod");
    assert_eq!(h[0]["forced"], true);
    assert_eq!(h[0]["reason"], "hotfix");
    assert_eq!(h[0]["actor"], "alice");
    let order_gate = h[0]["gates"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["gate"] == "order")
        .unwrap();
    assert_eq!(order_gate["ok"], false);

    // Undeclared environments are usage errors; rollback with no history too.
    p.fails(&["promote", &m1, "--to", "qa"], 2);
    p.fails(&["rollback", "dev"], 2);
    // A rollback target never live there is a gate.
    let m2 = release(&p, "2");
    p.ok(&["promote", &m2, "--to", "dev"]);
    let err = p.fails(&["rollback", "prod", "--to", &m2], 3);
    assert!(err.contains("never live"), "{err}");
}

#[test]
fn a_manifest_with_a_missing_object_never_goes_live() {
    let p = Project::new();
    let m1 = release(&p, "1");
    let m = p.json(&["verify", &m1]);
    let artifact = m["objects"][0]["key"].as_str().unwrap().to_owned();
    fs::remove_file(p.store().join(&artifact)).unwrap();
    let err = p.fails(&["promote", &m1, "--to", "dev"], 5);
    assert!(err.contains(&artifact), "{err}");
    assert_eq!(live(&p, "dev"), None);
    assert!(!p.store().join("envs/dev/events").exists());
}

#[test]
fn canary_check_failure_rolls_back() {
    let p = Project::new();
    let m1 = release(&p, "1");
    p.ok(&["promote", &m1, "--to", "dev"]);
    let m2 = release(&p, "2");

    // The check sees the environment and both manifests.
    let check = format!(
        "test \"$VERBATIM_ENV\" = dev && test \"$VERBATIM_MANIFEST\" = {m2} && test \"$VERBATIM_PREVIOUS_MANIFEST\" = {m1} && echo checked"
    );
    let v = p.json(&["promote", &m2, "--to", "dev", "--check-cmd", &check]);
    assert_eq!(v["result"], "moved");
    p.ok(&["rollback", "dev"]);
    assert_eq!(live(&p, "dev").unwrap(), m1);

    let out = p.run(&[
        "promote",
        &m2,
        "--to",
        "dev",
        "--check-cmd",
        "exit 1",
        "--json",
    ]);
    assert_eq!(
        out.status.code(),
        Some(6),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["rolled_back"]["manifest"], m1.as_str());
    assert_eq!(live(&p, "dev").unwrap(), m1);
    let h = history(&p, "dev");
    assert_eq!(h[0]["kind"], "auto-rollback");
    assert!(h[0]["reason"].as_str().unwrap().contains("canary"));
    assert_eq!(h[1]["kind"], "promote");
    assert_eq!(h[1]["to"], m2.as_str());

    let err = p.fails(
        &[
            "promote",
            &m2,
            "--to",
            "dev",
            "--check-cmd",
            "sleep 10",
            "--check-timeout",
            "1",
        ],
        6,
    );
    assert!(err.contains("timed out"), "{err}");
    assert_eq!(live(&p, "dev").unwrap(), m1);
}

/// 8 processes promote 8 different manifests to one environment at once,
/// 20 times over: no update is ever lost.
#[test]
fn concurrent_promotions_never_lose_an_update() {
    let p = Project::new();
    let manifests: Vec<String> = (0..8).map(|i| release(&p, &format!("race {i}"))).collect();
    let seed = tempfile::tempdir().unwrap();
    let seed_store = seed.path().join("store");
    copy_dir(&p.store(), &seed_store);
    for round in 0..20 {
        let store = seed.path().join(format!("round{round}"));
        copy_dir(&seed_store, &store);
        let store_arg = store.to_str().unwrap();
        let outs = crate::util::race(
            manifests
                .iter()
                .map(|m| p.cmd(&["promote", m, "--to", "dev", "--store", store_arg, "-q"])),
        );
        let mut winners = Vec::new();
        for (i, out) in outs.into_iter().enumerate() {
            match out.status.code() {
                Some(0) => winners.push(i),
                Some(4) => {
                    let err = String::from_utf8_lossy(&out.stderr);
                    assert!(
                        err.contains("lost the race") && err.contains("racer-"),
                        "{err}"
                    );
                }
                other => panic!(
                    "round {round}: racer {i} exited {other:?}: {}",
                    String::from_utf8_lossy(&out.stderr)
                ),
            }
        }
        assert!(!winners.is_empty(), "round {round}: nobody won");
        let events: Vec<serde_json::Value> = Project::files_under(&store.join("envs/dev/events"))
            .iter()
            .map(|f| {
                serde_json::from_slice(&fs::read(store.join("envs/dev/events").join(f)).unwrap())
                    .unwrap()
            })
            .collect();
        let seqs: Vec<u64> = events.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
        assert_eq!(
            seqs,
            (1..=events.len() as u64).collect::<Vec<_>>(),
            "round {round}: gap in {seqs:?}"
        );
        assert_eq!(
            events.len(),
            winners.len(),
            "round {round}: events {events:?} vs winners {winners:?}"
        );
        for w in &winners {
            let mine = events.iter().filter(|e| {
                e["actor"] == format!("racer-{w}").as_str() && e["to"] == manifests[*w].as_str()
            });
            assert_eq!(
                mine.count(),
                1,
                "round {round}: winner {w} has no event of its own"
            );
        }
        let pointer: serde_json::Value =
            serde_json::from_slice(&fs::read(store.join("envs/dev.json")).unwrap()).unwrap();
        let newest = events.last().unwrap();
        assert_eq!(pointer["seq"], newest["seq"]);
        assert_eq!(pointer["manifest"], newest["to"]);
    }
}

/// kill -9 at arbitrary moments never leaves a pointer at an incomplete
/// release, and running the command again completes the job.
#[test]
fn killed_publish_and_promote_leave_every_pointer_at_a_complete_release() {
    let p = Project::new();
    p.write(
        "app/big.bin",
        (0..4_000_000u32)
            .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
            .collect::<Vec<u8>>(),
    );
    let m0 = release(&p, "base");
    p.ok(&["promote", &m0, "--to", "dev"]);
    p.ok(&["promote", &m0, "--to", "preprod"]);
    let mut rng: u64 = 0x2545F4914F6CDD1D;
    for run in 0..24 {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let delay = std::time::Duration::from_millis(rng % 120);
        p.write("app/version.txt", format!("killed run {run}"));
        let args: &[&str] = if run % 2 == 0 {
            &["publish", "--env", "dev", "-q"]
        } else {
            &["promote", "dev", "--to", "preprod", "-q"]
        };
        let mut child = p
            .cmd(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(delay);
        let _ = Command::new("kill")
            .args(["-9", &child.id().to_string()])
            .status();
        let _ = child.wait();
        for env in ["dev", "preprod"] {
            let id = live(&p, env).expect("pointer survives");
            // verify exits 0 only if the manifest and every object it names are intact.
            p.ok(&["verify", &id]);
        }
        // Rerunning completes.
        p.ok(args);
    }
    let dev = live(&p, "dev").unwrap();
    assert_eq!(live(&p, "preprod").unwrap(), dev);
    p.ok(&["verify", "dev"]);
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    let st = Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .status()
        .unwrap();
    assert!(st.success());
}

/// Stores a hand-made artifact and a manifest naming it; returns the id.
fn store_raw_release(p: &Project, tar_gz: &[u8]) -> String {
    store_release_with(p, tar_gz, |_| {})
}

/// Like [`store_raw_release`], with the manifest edited first (no validation:
/// what a hostile publisher could store).
pub fn store_release_with(p: &Project, tar_gz: &[u8], edit: impl FnOnce(&mut Manifest)) -> String {
    let d = Digest::of(tar_gz);
    let key = manifest::artifact_key(&d);
    fs::create_dir_all(p.store().join("artifacts/sha256")).unwrap();
    fs::write(p.store().join(&key), tar_gz).unwrap();
    let m = Manifest {
        schema: manifest::SCHEMA.into(),
        artifact: manifest::Artifact {
            entries: 1_000,
            key,
            sha256: d.hex(),
            size: tar_gz.len() as u64,
            pack_spec: "verbatim.pack/v1".into(),
            unpacked_size: 1 << 20,
            blocks: Vec::new(),
        },
        assets: Default::default(),
        deploy: None,
        provenance: manifest::Provenance {
            branch: None,
            ci_url: None,
            dirty: false,
            revision: None,
            source_date_epoch: 0,
            tool: "verbatim test".into(),
        },
        site: None,
    };
    let mut m = m;
    edit(&mut m);
    fs::create_dir_all(p.store().join("manifests/sha256")).unwrap();
    fs::write(p.store().join(m.key()), m.to_canonical_bytes()).unwrap();
    m.id().to_string()
}

/// A tar.gz with raw entry names (no validation), like an attacker would make.
fn hostile_tar(entries: &[(&str, tar::EntryType, &str)]) -> Vec<u8> {
    let mut b = tar::Builder::new(flate2::write::GzEncoder::new(
        Vec::new(),
        flate2::Compression::fast(),
    ));
    for (name, kind, link) in entries {
        let mut h = tar::Header::new_gnu();
        h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
        h.as_old_mut().linkname[..link.len()].copy_from_slice(link.as_bytes());
        h.set_entry_type(*kind);
        h.set_mode(0o644);
        let data: &[u8] = if *kind == tar::EntryType::Regular {
            b"pwned\n"
        } else {
            b""
        };
        h.set_size(data.len() as u64);
        h.set_cksum();
        b.append(&h, data).unwrap();
    }
    b.into_inner().unwrap().finish().unwrap()
}

#[test]
fn fetch_refuses_hostile_artifacts_and_writes_nothing_outside() {
    use tar::EntryType::*;
    type Entries = Vec<(&'static str, tar::EntryType, &'static str)>;
    let cases: Vec<(&str, Entries)> = vec![
        (
            "`..`",
            vec![("ok.txt", Regular, ""), ("../../outside.txt", Regular, "")],
        ),
        (
            "absolute",
            vec![("/tmp/verbatim-absolute-test.txt", Regular, "")],
        ),
        (
            "points outside",
            vec![("escape", Symlink, "../../outside.txt")],
        ),
        ("absolute path", vec![("abs", Symlink, "/etc")]),
        (
            "through a symlink",
            vec![("d", Symlink, "sub"), ("d/x.txt", Regular, "")],
        ),
        ("not allowed", vec![("dev", Char, "")]),
        ("not allowed", vec![("fifo", Fifo, "")]),
        ("not allowed", vec![("hard", Link, "ok.txt")]),
    ];
    for (why, entries) in cases {
        let p = Project::new();
        let id = store_raw_release(&p, &hostile_tar(&entries));
        p.ok(&["promote", &id, "--to", "dev"]);
        let deploy = p.path().join("deploy");
        let err = p.fails(&["fetch", "dev", "--into", "deploy"], 5);
        assert!(
            err.contains(why) && err.contains(entries.last().unwrap().0),
            "{why}: {err}"
        );
        assert!(!p.path().join("outside.txt").exists());
        assert!(!std::path::Path::new("/tmp/verbatim-absolute-test.txt").exists());
        let left: Vec<String> = Project::files_under(&deploy.join("releases"));
        assert!(left.is_empty(), "{why}: left {left:?}");
    }
}

#[test]
fn fetch_deploys_verified_releases_once() {
    let p = Project::new();
    p.write("app/bin/run", "#!/bin/sh\necho hi\n");
    fs::set_permissions(
        p.app().join("bin/run"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let m1 = release(&p, "1");
    p.ok(&["promote", &m1, "--to", "dev"]);
    let v = p.json(&["fetch", "dev", "--into", "deploy"]);
    assert_eq!(v["result"], "fetched");
    let dir = std::path::PathBuf::from(v["path"].as_str().unwrap());
    let dir = if dir.is_absolute() {
        dir
    } else {
        p.path().join(dir)
    };
    assert!(dir.ends_with(format!("deploy/releases/{}", &m1[7..])));
    assert_eq!(fs::read_to_string(dir.join("version.txt")).unwrap(), "1");
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &fs::metadata(dir.join("bin/run")).unwrap().permissions(),
    );
    assert_eq!(mode & 0o777, 0o755);
    let stored_manifest =
        fs::read(p.path().join(format!("deploy/releases/{}.json", &m1[7..]))).unwrap();
    assert_eq!(Digest::of(&stored_manifest).to_string(), m1);
    assert_eq!(
        p.json(&["fetch", "dev", "--into", "deploy"])["result"],
        "present"
    );
    // A file changed on the host is noticed and fetched again; a file
    // added beside the release is not a change.
    fs::write(dir.join("__added"), "x").unwrap();
    assert_eq!(
        p.json(&["fetch", "dev", "--into", "deploy"])["result"],
        "present"
    );
    fs::write(dir.join("version.txt"), "9").unwrap();
    let out = p.run(&["fetch", "dev", "--into", "deploy"]);
    assert!(out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("version.txt") && err.contains("fetching it again"),
        "{err}"
    );
    assert_eq!(fs::read_to_string(dir.join("version.txt")).unwrap(), "1");

    // A flipped byte in the stored artifact: fetch and verify refuse, naming it.
    let m2 = release(&p, "2");
    p.ok(&["promote", &m2, "--to", "dev"]);
    let key = p.json(&["verify", &m2])["objects"][0]["key"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = p.store().join(&key);
    let mut bytes = fs::read(&path).unwrap();
    bytes[100] ^= 0x40;
    fs::write(&path, bytes).unwrap();
    let err = p.fails(&["fetch", "dev", "--into", "deploy"], 5);
    assert!(err.contains(&key), "{err}");
    assert!(!p
        .path()
        .join(format!("deploy/releases/{}", &m2[7..]))
        .exists());
    let err = p.fails(&["verify", "dev"], 5);
    assert!(err.contains(&key), "{err}");

    // A tampered manifest is refused too.
    let mkey = format!("manifests/sha256/{}.json", &m1[7..]);
    fs::write(p.store().join(&mkey), b"{\"tampered\":true}").unwrap();
    let err = p.fails(&["fetch", &m1, "--into", "deploy2"], 5);
    assert!(err.contains(&mkey), "{err}");
}

#[test]
fn diff_lists_the_files_that_changed_inside_the_artifact() {
    let p = Project::new();
    p.write("app/keep.txt", "same");
    p.write("app/old.txt", "going");
    p.write("app/bin/run", "#!/bin/sh\n");
    let m1 = release(&p, "1");
    fs::remove_file(p.app().join("old.txt")).unwrap();
    p.write("app/new/file.txt", "arriving");
    std::fs::set_permissions(
        p.app().join("bin/run"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let m2 = release(&p, "22");
    let v = p.json(&["diff", &m1, &m2]);
    assert_eq!(v["artifact_changed"], true);
    let paths = |k: &str| -> Vec<String> {
        v["artifact"][k]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["path"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(paths("added"), ["new", "new/file.txt"], "{v}");
    assert_eq!(paths("removed"), ["old.txt"], "{v}");
    // Content (version.txt) and mode (bin/run) changes both count.
    assert_eq!(paths("changed"), ["bin/run", "version.txt"], "{v}");
    assert_eq!(v["artifact"]["changed"][1]["size_before"], 1, "{v}");
    assert_eq!(v["artifact"]["changed"][1]["size_after"], 2, "{v}");
    let text = p.ok(&["diff", &m1, &m2]);
    assert!(
        text.contains("artifact: changed") && text.contains("  - old.txt (5 B)"),
        "{text}"
    );
    let v = p.json(&["diff", &m1, &m1]);
    assert_eq!(v["artifact_changed"], false);
    assert!(v["artifact"]["changed"].as_array().unwrap().is_empty());
}

#[test]
fn a_missing_asset_blocks_promotion_too() {
    let p = Project::with_config("[app]\ndir = \"app\"\n\n[assets]\ndir = \"static\"\n");
    p.write("app/x", "x");
    for i in 0..12 {
        p.write(&format!("static/f{i}.txt"), format!("{i}"));
    }
    let v = p.json(&["publish"]);
    let id = v["manifest"].as_str().unwrap();
    let asset = strings(&v["written"])
        .into_iter()
        .find(|k| k.starts_with("assets/f7."))
        .unwrap()
        .to_owned();
    fs::remove_file(p.store().join(&asset)).unwrap();
    let err = p.fails(&["promote", id, "--to", "dev"], 5);
    assert!(err.contains(&asset) && err.contains("missing"), "{err}");
    assert_eq!(live(&p, "dev"), None);
}

/// a → b → c; `rollback` goes to b, then a, never back to c; with nowhere
/// left it says so; `--to c` still restores c by name.
#[test]
fn rollback_twice_walks_back_and_never_toggles() {
    let p = Project::new();
    let [a, b, c] = ["a", "b", "c"].map(|v| release(&p, v));
    for m in [&a, &b, &c] {
        p.ok(&["promote", m, "--to", "dev"]);
    }
    let v = p.json(&["rollback", "dev", "--reason", "c is bad"]);
    assert_eq!(
        (v["previous"].as_str(), v["manifest"].as_str()),
        (Some(&*c), Some(&*b))
    );
    let v = p.json(&["rollback", "dev", "--reason", "b is bad too"]);
    assert_eq!(
        (v["previous"].as_str(), v["manifest"].as_str()),
        (Some(&*b), Some(&*a))
    );
    assert_eq!(live(&p, "dev").unwrap(), a);

    // Both manifests rolled back from are named; nothing moves.
    let err = p.fails(&["rollback", "dev"], 2);
    assert!(
        err.contains(&format!("{b} at event 5"))
            && err.contains(&format!("{c} at event 4"))
            && err.contains("--to"),
        "{err}"
    );
    assert_eq!(live(&p, "dev").unwrap(), a);

    // Named explicitly, c is still reachable, and the gate says what it is.
    let v = p.json(&["rollback", "dev", "--to", &c, "--reason", "c was fine"]);
    assert_eq!(v["manifest"], c.as_str());
    let gate = &v["gates"][1];
    assert_eq!(gate["gate"], "was-live");
    assert!(
        gate["detail"]
            .as_str()
            .unwrap()
            .contains("restored by name"),
        "{gate}"
    );
    // Rolling back from c now walks past b (rolled back from) and a (just
    // left by a rollback): nothing is left but naming one.
    p.fails(&["rollback", "dev"], 2);
    let h = history(&p, "dev");
    let kinds: Vec<&str> = h.iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        ["rollback", "rollback", "rollback", "promote", "promote", "promote"]
    );
}

/// preprod rolled back from b: prod refuses b (exit 3) until --force
/// --reason (recorded), or until preprod runs b again.
#[test]
fn the_order_gate_refuses_what_the_previous_environment_rolled_back_from() {
    let p = Project::new();
    let [a, b] = ["a", "b"].map(|v| release(&p, v));
    for m in [&a, &b] {
        p.ok(&["promote", m, "--to", "dev"]);
        p.ok(&["promote", m, "--to", "preprod"]);
    }
    p.ok(&["rollback", "preprod", "--reason", "b breaks checkout"]);
    assert_eq!(live(&p, "preprod").unwrap(), a);

    let err = p.fails(&["promote", &b, "--to", "prod"], 3);
    assert!(
        err.contains(&format!("preprod rolled back from {b}"))
            && err.contains("envs/preprod/events/0000000003.json")
            && err.contains("--force --reason"),
        "{err}"
    );
    assert_eq!(live(&p, "prod"), None);
    // a, live in preprod, may go.
    p.ok(&["promote", &a, "--to", "prod"]);

    success(
        p.cmd(&[
            "promote",
            &b,
            "--to",
            "prod",
            "--force",
            "--reason",
            "INC-7 hotfix",
        ])
        .env("VERBATIM_ACTOR", "bob"),
    );
    let e = &history(&p, "prod")[0];
    assert_eq!(e["to"], b.as_str());
    assert_eq!(e["forced"], true);
    assert_eq!(e["reason"], "INC-7 hotfix");
    assert_eq!(e["actor"], "bob");
    let gate = e["gates"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["gate"] == "order")
        .unwrap();
    assert_eq!(gate["ok"], false);
    assert!(
        gate["detail"]
            .as_str()
            .unwrap()
            .contains("rolled back from"),
        "{gate}"
    );

    // A fix-forward of the same bytes: preprod runs b again, so prod may
    // take it without --force.
    p.ok(&["rollback", "prod", "--to", &a]);
    p.ok(&[
        "promote",
        &b,
        "--to",
        "preprod",
        "--reason",
        "the bug was in the data",
    ]);
    let v = p.json(&["promote", &b, "--to", "prod"]);
    assert_eq!(v["result"], "moved");
    assert_eq!(v["gates"][1]["ok"], true);
}
