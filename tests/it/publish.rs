//! `verbatim publish` and `verbatim verify` on the local store.

use std::fs;

use crate::util::{strings, success, Project};

fn published(p: &Project) -> serde_json::Value {
    p.json(&["publish"])
}

#[test]
fn publish_writes_artifact_then_manifest_and_republish_writes_nothing() {
    let p = Project::new();
    p.write("app/main.py", "print(1)\n");
    let first = published(&p);
    let id = first["manifest"].as_str().unwrap().to_owned();
    let written = strings(&first["written"]);
    assert_eq!(written.len(), 2);
    assert!(
        written[0].starts_with("artifacts/sha256/"),
        "artifact first: {written:?}"
    );
    assert_eq!(written[1], format!("manifests/sha256/{}.json", &id[7..]));

    // The stored manifest is canonical and hashes to its id.
    let stored = fs::read(p.store().join(written[1])).unwrap();
    assert_eq!(format!("sha256:{}", sha256_hex(&stored)), id);

    let before = Project::files_under(&p.store());
    let mtimes: Vec<_> = before
        .iter()
        .map(|f| fs::metadata(p.store().join(f)).unwrap().modified().unwrap())
        .collect();
    let again = published(&p);
    assert_eq!(again["manifest"], id.as_str(), "same tree, same id");
    assert_eq!(again["written"], serde_json::json!([]));
    assert_eq!(Project::files_under(&p.store()), before);
    let mtimes_after: Vec<_> = before
        .iter()
        .map(|f| fs::metadata(p.store().join(f)).unwrap().modified().unwrap())
        .collect();
    assert_eq!(mtimes, mtimes_after, "republish touched stored objects");

    // Human mode prints just the id on stdout.
    assert_eq!(p.ok(&["publish", "-q"]).trim(), id);
}

#[test]
fn prebuilt_publishes_the_earlier_build_verbatim() {
    let p = Project::new();
    p.write("app/main.py", "v1\n");
    let built = p.json(&["build"]);
    p.write("app/main.py", "v2 after the build\n");
    let published = p.json(&["publish", "--prebuilt"]);
    assert_eq!(published["manifest"], built["manifest"]);

    // A build dir whose artifact was swapped is refused, nothing stored.
    let q = Project::new();
    q.write("app/main.py", "v1\n");
    q.ok(&["build"]);
    fs::write(
        q.path().join(".verbatim/build/artifact.tar.gz"),
        "not the artifact",
    )
    .unwrap();
    let err = q.fails(&["publish", "--prebuilt"], 5);
    assert!(err.contains("artifacts/sha256/"), "{err}");
    let objects: Vec<_> = Project::files_under(&q.store())
        .into_iter()
        .filter(|f| !f.starts_with(".tmp"))
        .collect();
    assert!(objects.is_empty(), "{objects:?}");
}

#[test]
fn verify_accepts_good_and_names_each_bad_object() {
    let p = Project::new();
    p.write("app/main.py", "print(1)\n");
    let v = published(&p);
    let id = v["manifest"].as_str().unwrap();
    let report = p.json(&["verify", id]);
    assert_eq!(report["ok"], true);
    // Prefixes and manifest files resolve too.
    p.ok(&["verify", &id[7..19]]);
    p.ok(&["verify", ".verbatim/build/manifest.json"]);

    let artifact_key = v["written"][0].as_str().unwrap();
    let path = p.store().join(artifact_key);
    let mut bytes = fs::read(&path).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 1;
    fs::write(&path, &bytes).unwrap();
    let out = p.run(&["verify", id, "--json"]);
    assert_eq!(out.status.code(), Some(5));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["ok"], false);
    assert_eq!(report["objects"][0]["status"], "digest mismatch");
    assert!(String::from_utf8_lossy(&out.stderr).contains(artifact_key));

    fs::remove_file(&path).unwrap();
    let err = p.fails(&["verify", id], 5);
    assert!(
        err.contains(artifact_key) && err.contains("missing"),
        "{err}"
    );

    // A tampered manifest is caught before anything else.
    let mkey = v["written"][1].as_str().unwrap();
    fs::write(p.store().join(mkey), "{}").unwrap();
    let err = p.fails(&["verify", id], 5);
    assert!(err.contains(mkey), "{err}");
}

#[test]
fn publish_refuses_to_overwrite_a_tampered_object() {
    let p = Project::new();
    p.write("app/main.py", "print(1)\n");
    let v = published(&p);
    let key = v["written"][0].as_str().unwrap();
    fs::write(p.store().join(key), "tampered").unwrap();
    // The same artifact under a new manifest (another revision) must be
    // written again, and finds other bytes there.
    let err = p.fails(&["publish", "--revision", "other"], 5);
    assert!(
        err.contains(key) && err.contains("never overwritten"),
        "{err}"
    );
    assert_eq!(fs::read(p.store().join(key)).unwrap(), b"tampered");
}

#[test]
fn store_flag_and_env_and_file_url_pick_the_store() {
    let p = Project::new();
    p.write("app/main.py", "x\n");
    let elsewhere = tempfile::tempdir().unwrap();
    let url = format!("file://{}", elsewhere.path().display());
    let v = p.json(&["publish", "--store", &url]);
    let id = v["manifest"].as_str().unwrap();
    assert!(elsewhere
        .path()
        .join(v["written"][1].as_str().unwrap())
        .exists());
    assert!(!p.store().exists());
    success(
        p.cmd(&["verify", id])
            .env("VERBATIM_STORE", elsewhere.path()),
    );
    // Without the variable, the default store, which does not exist.
    let err = p.fails(&["verify", id], 2);
    assert!(err.contains("no store at"), "{err}");
    let err = p.fails(&["publish", "--store", "ftp://x/y"], 2);
    assert!(err.contains("ftp"), "{err}");
}

#[test]
fn a_kept_name_holding_other_bytes_fails_publish_before_anything_is_written() {
    // A Vite build (tests/fixtures/vite): its files keep their names, and
    // public/icons.svg is copied as it is, unhashed. Edit it without
    // renaming it, and the name already published means other bytes.
    let p = crate::assets::vite_project();
    let first = published(&p);
    let first_id = first["manifest"].as_str().unwrap().to_owned();

    // A new release with the same assets: every kept name is checked
    // against the store's digest, found equal, and not written again.
    p.write("app/main.py", "print('v2')\n");
    let second = published(&p);
    let kept: Vec<&str> = strings(&first["written"])
        .into_iter()
        .filter(|k| k.starts_with("assets/"))
        .collect();
    assert_eq!(kept.len(), 10);
    assert_eq!(strings(&second["unchanged"]), kept);
    assert_eq!(strings(&second["written"]).len(), 2, "{second}");

    let icons = p.store().join("assets/icons.svg");
    let stored = fs::read(&icons).unwrap();
    let manifests = || Project::files_under(&p.store().join("manifests"));
    let before = manifests();
    let source = p.path().join("frontend/dist/icons.svg");
    let original = fs::read_to_string(&source).unwrap();
    for (what, edited) in [
        ("same size", original.replace("#0a0", "#a00")),
        ("another size", original.replace("#0a0", "green")),
    ] {
        fs::write(&source, &edited).unwrap();
        for args in [&["publish", "--dry-run"][..], &["publish"]] {
            let err = p.fails(args, 5);
            assert!(
                err.contains("BAD assets/icons.svg")
                    && err.contains("error: assets/icons.svg already holds other bytes"),
                "{what} {args:?}: {err}"
            );
            assert!(
                err.contains("must be content-hashed by its bundler"),
                "{err}"
            );
        }
        assert_eq!(manifests(), before, "{what}: no manifest written");
        assert_eq!(
            fs::read(&icons).unwrap(),
            stored,
            "{what}: never overwritten"
        );
        // Nothing else either: the new artifact (the config changed nothing
        // in the app) and the other assets are all stored already.
    }
    p.ok(&["verify", &first_id]);

    // A content-hashed name holding another size is refused the same way.
    fs::write(&source, &original).unwrap();
    let q = crate::assets::site();
    let v = published(&q);
    let key = strings(&v["written"])
        .into_iter()
        .find(|k| k.starts_with("assets/img/logo."))
        .unwrap()
        .to_owned();
    fs::write(q.store().join(&key), "tampered, and longer").unwrap();
    q.write("app/main.py", "print('v2')\n");
    let err = q.fails(&["publish"], 5);
    assert!(
        err.contains(&format!("error: {key} already holds other bytes"))
            && err.contains("verbatim verify"),
        "{err}"
    );
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    verbatim::digest::Digest::of(bytes).hex()
}
