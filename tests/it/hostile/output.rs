//! A repository or a store directory that holds planted symlinks, fifos or
//! devices: verbatim refuses them by name and writes nothing through them.

use std::fs;
use std::os::unix::fs::symlink;
use std::path::Path;
use std::process::Command;

use crate::util::{bounded, Project};

/// A directory outside the project with one file in it, and its listing.
fn outside() -> (tempfile::TempDir, Vec<String>) {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("precious.txt"), "keep me").unwrap();
    fs::create_dir(dir.path().join("css")).unwrap();
    fs::write(dir.path().join("css/old.css"), "keep me too").unwrap();
    let listing = Project::files_under(dir.path());
    (dir, listing)
}

fn assert_untouched(dir: &Path, listing: &[String]) {
    assert_eq!(Project::files_under(dir), listing, "files outside changed");
    assert_eq!(
        fs::read_to_string(dir.join("precious.txt")).unwrap(),
        "keep me"
    );
}

fn project_with_assets() -> Project {
    let p = super::assets_project();
    p.write("app/main.py", "print('hi')");
    p.write("static/css/site.css", "body { color: red }");
    p
}

#[test]
fn build_replaces_linked_outputs_and_never_writes_through_them() {
    let p = project_with_assets();
    let (out, listing) = outside();
    let build = p.path().join(".verbatim/build");
    fs::create_dir_all(&build).unwrap();
    // The assets pack, and the directory older builds put assets in.
    symlink(out.path().join("precious.txt"), build.join("assets.tar")).unwrap();
    symlink(out.path(), build.join("assets")).unwrap();
    bounded(p.cmd(&["build"]).arg("--no-progress"), 60).exits(0, 256);
    assert_untouched(out.path(), &listing);
    let pack = fs::symlink_metadata(build.join("assets.tar")).unwrap();
    assert!(pack.is_file(), "the link was replaced by the pack");
    assert!(
        fs::symlink_metadata(build.join("assets")).is_err(),
        "the old assets link is removed, not what it points to"
    );
    assert_eq!(p.built_assets().len(), 1);
}

#[test]
fn build_never_writes_through_a_linked_build_or_work_dir() {
    for linked in [".verbatim/build", ".verbatim"] {
        let p = project_with_assets();
        let (out, listing) = outside();
        fs::create_dir_all(p.path().join(linked).parent().unwrap()).unwrap();
        symlink(out.path(), p.path().join(linked)).unwrap();
        let err = bounded(p.cmd(&["build"]).arg("--no-progress"), 60).exits(1, 256);
        assert!(
            err.contains(linked) && err.contains("symlink"),
            "{linked}: {err}"
        );
        assert_untouched(out.path(), &listing);
    }
}

#[test]
fn publish_never_writes_through_a_linked_store() {
    for linked in [
        ".verbatim/store",
        ".verbatim/store/artifacts",
        ".verbatim/store/.tmp",
    ] {
        let p = project_with_assets();
        let (out, listing) = outside();
        fs::create_dir_all(p.path().join(linked).parent().unwrap()).unwrap();
        symlink(out.path(), p.path().join(linked)).unwrap();
        let run = bounded(p.cmd(&["publish"]).arg("--no-progress"), 60);
        let err = String::from_utf8_lossy(&run.out.stderr);
        assert!(!run.out.status.success(), "{linked}: publish succeeded");
        assert!(
            err.contains(linked) && err.contains("symlink"),
            "{linked}: {err}"
        );
        assert_untouched(out.path(), &listing);
    }
}

#[test]
fn a_planted_lock_link_is_not_truncated() {
    let p = Project::new();
    p.write("app/x.py", "x");
    let id = p.ok(&["publish"]).trim().to_owned();
    let (out, listing) = outside();
    fs::create_dir_all(p.store().join(".locks")).unwrap();
    symlink(
        out.path().join("precious.txt"),
        p.store().join(".locks/envs%2Fdev.json"),
    )
    .unwrap();
    // The first promotion creates the pointer (no lock); the second replaces it.
    p.ok(&["promote", &id, "--to", "dev"]);
    p.write("app/x.py", "y");
    let id2 = p.ok(&["publish"]).trim().to_owned();
    let err = bounded(&mut p.cmd(&["promote", &id2, "--to", "dev"]), 60).exits(5, 256);
    assert!(err.contains(".locks") && err.contains("symlink"), "{err}");
    assert_untouched(out.path(), &listing);
}

/// Publishes one file and returns the project, manifest id and artifact path.
fn published() -> (Project, String, std::path::PathBuf) {
    let p = Project::new();
    p.write("app/x.py", "x");
    let v = p.json(&["publish"]);
    let id = v["manifest"].as_str().unwrap().to_owned();
    let key = crate::util::strings(&v["written"])
        .into_iter()
        .find(|k| k.starts_with("artifacts/"))
        .unwrap()
        .to_owned();
    let path = p.store().join(key);
    (p, id, path)
}

#[test]
fn a_store_object_linked_to_a_device_is_refused_not_read() {
    let (p, id, artifact) = published();
    fs::remove_file(&artifact).unwrap();
    symlink("/dev/zero", &artifact).unwrap();
    for deep in [false, true] {
        let mut cmd = p.cmd(&["verify", &id]);
        if deep {
            cmd.arg("--deep");
        }
        let err = bounded(&mut cmd, 60).exits(5, 256);
        assert!(err.contains("not an object"), "{err}");
    }
    let host = tempfile::tempdir().unwrap();
    let into = host.path().join("srv");
    let err = bounded(
        &mut p.cmd(&["fetch", &id, "--into", into.to_str().unwrap()]),
        60,
    )
    .exits(5, 256);
    assert!(
        err.contains("artifacts/sha256/") && err.contains("symlink"),
        "{err}"
    );
    assert!(
        !into.join("releases").exists(),
        "a refused fetch leaves no releases/"
    );
}

#[test]
fn a_store_object_that_is_a_fifo_does_not_block() {
    let (p, id, artifact) = published();
    fs::remove_file(&artifact).unwrap();
    assert!(Command::new("mkfifo")
        .arg(&artifact)
        .status()
        .unwrap()
        .success());
    let err = bounded(&mut p.cmd(&["verify", &id, "--deep"]), 60).exits(5, 256);
    assert!(err.contains("not an object"), "{err}");
    let host = tempfile::tempdir().unwrap();
    let err = bounded(
        &mut p.cmd(&["fetch", &id, "--into", host.path().to_str().unwrap()]),
        60,
    )
    .exits(5, 256);
    assert!(err.contains("regular file"), "{err}");
}

#[test]
fn a_store_url_with_dot_dot_creates_nothing_on_the_way() {
    let p = Project::with_config("[app]\ndir = \"app\"\n[store]\nurl = \"sub/../store\"\n");
    p.write("app/x.py", "x");
    p.ok(&["publish"]);
    assert!(p.path().join("store/manifests").is_dir());
    assert!(!p.path().join("sub").exists(), "a stray sub/ was created");
}

#[test]
fn a_store_path_that_is_a_file_is_named() {
    let p = Project::with_config("[app]\ndir = \"app\"\n[store]\nurl = \"store\"\n");
    p.write("app/x.py", "x");
    p.write("store", "not a directory");
    let err = bounded(&mut p.cmd(&["publish"]), 60).exits(5, 256);
    assert!(err.contains("/store is not a directory"), "{err}");
}
