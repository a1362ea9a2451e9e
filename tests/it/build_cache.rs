//! The build cache: an unchanged tree is not packed again, a changed one
//! always is (content behind a restored mtime included: ctime gives it
//! away), a file modified within a second of the build is not trusted, and
//! `build --check` and `--no-cache` build from scratch.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::process::Command;

use crate::util::{success, Project};

const CONFIG: &str = "[app]\ndir = \"app\"\n[assets]\ndir = \"app/static\"\n";
const REUSED: &str = "nothing changed since the last build";

/// A project with an app and assets, every mtime set a while back (so none
/// is racy).
fn project() -> Project {
    let p = Project::with_config(CONFIG);
    p.write("app/main.py", "print('v1')\n");
    p.write("app/lib/util.py", "X = 1\n");
    p.write("app/static/app.css", "body{background:url(logo.svg)}\n");
    p.write("app/static/logo.svg", "<svg/>");
    // Assets two levels down: the cache lists each depth on every core.
    p.write("app/static/img/deep/dot.svg", "<svg/>");
    age(&p);
    p
}

/// Sets every mtime under the app to 2020 (ctime moves to now, as it must).
fn age(p: &Project) {
    success(Command::new("find").arg(p.app()).args([
        "-exec",
        "touch",
        "-h",
        "-d",
        "@1600000000",
        "{}",
        "+",
    ]));
}

/// Sets the mtime of one file of the project to 2020.
fn age_file(p: &Project, rel: &str) {
    success(
        Command::new("touch")
            .args(["-h", "-d", "@1600000000"])
            .arg(p.path().join(rel)),
    );
}

type Edit = fn(&Project);

/// `build` (with `args`): its stderr and manifest id.
fn build(p: &Project, args: &[&str]) -> (String, String) {
    let out = p
        .cmd(&[&["build", "--json"][..], args].concat())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{err}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    (err, v["manifest"].as_str().unwrap().to_owned())
}

fn artifact_identity(p: &Project) -> (u64, i64) {
    let m = fs::metadata(p.path().join(".verbatim/build/artifact.tar.gz")).unwrap();
    (m.ino(), m.mtime_nsec())
}

#[test]
fn an_unchanged_tree_is_not_packed_again_and_a_changed_one_always_is() {
    let p = project();
    let (err, first) = build(&p, &[]);
    assert!(!err.contains(REUSED), "{err}");
    let packed = artifact_identity(&p);

    let (err, again) = build(&p, &[]);
    assert!(err.contains(REUSED), "{err}");
    assert_eq!(again, first);
    assert_eq!(
        artifact_identity(&p),
        packed,
        "the artifact was not written again"
    );

    // publish right after build uses it, and says so, to another store too.
    let out = p
        .cmd(&["publish", "--json", "--store", "elsewhere"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && err.contains(REUSED), "{err}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["manifest"], first.as_str());

    // Same size, other bytes, mtime put back: ctime gives it away.
    p.write("app/lib/util.py", "X = 2\n");
    age_file(&p, "app/lib/util.py");
    let (err, changed) = build(&p, &["-v"]);
    assert!(
        !err.contains(REUSED) && err.contains("app: lib/util.py changed"),
        "{err}"
    );
    assert_ne!(changed, first);

    // An asset, a new file, a removed file, the config: each rebuilds.
    let edits: [(&str, Edit); 5] = [
        ("static/logo.svg changed", |p| {
            p.write("app/static/logo.svg", "<svg></svg>");
            age_file(p, "app/static/logo.svg");
        }),
        ("static/img/deep/dot.svg changed", |p| {
            p.write("app/static/img/deep/dot.svg", "<svg></svg>");
            age_file(p, "app/static/img/deep/dot.svg");
        }),
        ("app: new.py is new", |p| {
            p.write("app/new.py", "");
            age_file(p, "app/new.py");
        }),
        ("an entry was removed", |p| {
            fs::remove_file(p.app().join("new.py")).unwrap();
        }),
        ("the configuration", |p| {
            // [deploy] goes into the manifest.
            p.write("verbatim.toml", format!("{CONFIG}[deploy]\nkeep = 3\n"));
        }),
    ];
    for (why, edit) in edits {
        edit(&p);
        let (err, _) = build(&p, &["-v"]);
        assert!(err.contains(why) && !err.contains(REUSED), "{why}: {err}");
        let (err, _) = build(&p, &[]);
        assert!(err.contains(REUSED), "after {why}: {err}");
    }

    // The artifact overwritten in place, same size: no longer that build.
    let art = p.path().join(".verbatim/build/artifact.tar.gz");
    let mut bytes = fs::read(&art).unwrap();
    *bytes.last_mut().unwrap() ^= 1;
    fs::write(&art, bytes).unwrap();
    let (err, _) = build(&p, &["-v"]);
    assert!(
        err.contains("the build directory: artifact.tar.gz changed") && !err.contains(REUSED),
        "{err}"
    );
}

/// A file modified just before a build may change again in the same clock
/// tick without its stat changing: the next build does not trust it.
#[test]
fn a_file_modified_within_a_second_of_the_build_is_not_trusted() {
    let p = project();
    p.write("app/main.py", "print('v2')\n");
    let (_, first) = build(&p, &[]);
    let (err, again) = build(&p, &["-v"]);
    assert!(
        err.contains("racy timestamps") && !err.contains(REUSED),
        "{err}"
    );
    assert_eq!(again, first, "the same tree, packed again");
}

/// `build --check` builds twice from scratch, `--no-cache` once; a new
/// revision of the same tree reuses the artifact under a new manifest.
#[test]
fn check_and_no_cache_build_from_scratch_and_provenance_follows_the_revision() {
    let p = project();
    let (_, first) = build(&p, &["--revision", "aaaa"]);
    let (err, _) = build(&p, &["--revision", "aaaa", "--check"]);
    assert!(
        !err.contains(REUSED) && err.contains("reproducible"),
        "{err}"
    );
    let (err, _) = build(&p, &["--revision", "aaaa", "--no-cache"]);
    assert!(!err.contains(REUSED), "{err}");
    let packed = artifact_identity(&p);
    let (err, other) = build(&p, &["--revision", "bbbb"]);
    assert!(err.contains(REUSED), "{err}");
    assert_ne!(other, first, "another revision, another manifest");
    assert_eq!(artifact_identity(&p), packed);
    let m: serde_json::Value =
        serde_json::from_slice(&fs::read(p.path().join(".verbatim/build/manifest.json")).unwrap())
            .unwrap();
    assert_eq!(m["provenance"]["revision"], "bbbb");
    let (_, back) = build(&p, &["--revision", "aaaa"]);
    assert_eq!(back, first);
}

/// A record that is not this version's, does not parse, or whose digest
/// does not match the entries it lists is a miss, and says why.
#[test]
fn a_record_that_cannot_be_trusted_is_a_miss() {
    let p = project();
    let (_, first) = build(&p, &[]);
    let (err, _) = build(&p, &[]);
    assert!(err.contains(REUSED), "{err}");
    let record = p.path().join(".verbatim/build/cache.json");
    let text = fs::read_to_string(&record).unwrap();
    let (head, entries) = text.split_once('\n').unwrap();
    let digest = serde_json::from_str::<serde_json::Value>(head).unwrap()["digest"]
        .as_str()
        .unwrap()
        .to_owned();
    let other = format!("sha256:{}", "0".repeat(64));
    let cases = [
        (
            head.replace(&digest, &other) + "\n" + entries,
            "the entries' digest differs from cache.json's",
        ),
        (
            r#"{"version":1,"snapshot":{}}"#.to_owned() + "\n",
            "cache.json does not parse",
        ),
        (
            head[..head.len() / 2].to_owned(),
            "cache.json does not parse",
        ),
    ];
    for (bytes, why) in cases {
        fs::write(&record, bytes).unwrap();
        let (err, again) = build(&p, &["-v"]);
        assert!(err.contains(why) && !err.contains(REUSED), "{why}: {err}");
        assert_eq!(again, first, "the same tree, packed again");
        let (err, _) = build(&p, &[]);
        assert!(err.contains(REUSED), "after {why}: {err}");
    }
}
