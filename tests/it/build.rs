//! `verbatim build`: the artifact is reproducible and follows pack spec v1.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::process::Command;
use std::time::{Duration, SystemTime};

use crate::util::{is_root, json_out, Project};

/// The fixture tree, written in the given order with the given modes.
fn fixture(p: &Project, reverse: bool, exec_mode: u32, file_mode: u32) {
    let mut files: Vec<(&str, Vec<u8>)> = vec![
        ("server.py", b"print('hi')\n".to_vec()),
        ("bin/start", b"#!/bin/sh\nexec python3 server.py\n".to_vec()),
        ("templates/index.html", b"<h1>hi</h1>\n".to_vec()),
        ("a-b/x.txt", b"dash sorts before slash\n".to_vec()),
        ("a/x.txt", b"x\n".to_vec()),
        ("empty", Vec::new()),
        (
            "deep/very/long/path/that/goes/beyond/one/hundred/bytes/of/tar/header/name/field/limit/file.txt",
            b"long\n".to_vec(),
        ),
        ("big.bin", (0..3_000_000u32).map(|i| (i * 7 % 251) as u8).collect()),
    ];
    if reverse {
        files.reverse();
    }
    for (path, bytes) in &files {
        let f = p.write(&format!("app/{path}"), bytes);
        let mode = if path.starts_with("bin/") {
            exec_mode
        } else {
            file_mode
        };
        fs::set_permissions(&f, fs::Permissions::from_mode(mode)).unwrap();
    }
    fs::create_dir_all(p.app().join("empty-dir")).unwrap();
    std::os::unix::fs::symlink("../server.py", p.app().join("templates/link.py")).unwrap();
}

fn artifact_digest(p: &Project, extra: &[&str]) -> String {
    let mut args = vec!["build"];
    args.extend_from_slice(extra);
    let v = p.json(&args);
    v["artifact"]["sha256"].as_str().unwrap().to_owned()
}

/// Pinned: changing the pack spec must be a deliberate, versioned change.
const GOLDEN: &str = "f4db1012735d0ea9935922c2a34535657222deb01eff468df784178bf60e7948";

#[test]
fn golden_digest_is_pinned() {
    let p = Project::new();
    fixture(&p, false, 0o755, 0o644);
    assert_eq!(
        artifact_digest(&p, &[]),
        GOLDEN,
        "pack spec v1 output changed"
    );
}

#[test]
fn same_tree_same_bytes_whatever_the_machine_state() {
    let a = Project::new();
    fixture(&a, false, 0o755, 0o644);
    let reference = artifact_digest(&a, &["--jobs", "1"]);

    // Another creation order, other permission bits, other mtimes, owner,
    // umask, time zone, locale and thread count.
    let b = Project::new();
    fixture(&b, true, 0o700, 0o600);
    let old = SystemTime::UNIX_EPOCH + Duration::from_secs(123_456_789);
    for e in crate::util::Project::files_under(&b.app()) {
        let f = fs::File::options().write(true).open(b.app().join(&e));
        if let Ok(f) = f {
            f.set_modified(old).unwrap();
        }
    }
    if is_root() {
        let status = Command::new("chown")
            .args(["-R", "4321:4321"])
            .arg(b.app())
            .status()
            .unwrap();
        assert!(status.success());
    }
    for jobs in ["2", "7"] {
        let v = json_out(
            b.cmd(&["build", "--json", "--jobs", jobs])
                .env("TZ", "Pacific/Kiritimati")
                .env("LC_ALL", "tr_TR.UTF-8")
                .env("LANG", "tr_TR.UTF-8"),
        );
        assert_eq!(v["artifact"]["sha256"], reference.as_str(), "jobs={jobs}");
    }
    let umask = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "umask 077 && exec {} build --json",
            crate::util::BIN
        ))
        .current_dir(b.path())
        .env_remove("SOURCE_DATE_EPOCH")
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&umask.stdout).unwrap();
    assert_eq!(v["artifact"]["sha256"], reference.as_str(), "umask 077");

    // The content does matter: one byte changes the digest.
    b.write("app/server.py", "print('hi!')\n");
    assert_ne!(artifact_digest(&b, &[]), reference);
}

#[test]
fn gnu_tar_and_gzip_read_the_artifact() {
    let p = Project::new();
    fixture(&p, false, 0o755, 0o644);
    p.ok(&["build", "--source-date-epoch", "1700000000"]);
    let artifact = p.path().join(".verbatim/build/artifact.tar.gz");
    // Readable like the manifest beside it, 0644 less the umask (a CI job
    // may hand the build directory to another user, or copy it into an
    // image), not the 0600 of a temp file.
    let mode = |name: &str| {
        let meta = std::fs::metadata(p.path().join(".verbatim/build").join(name)).unwrap();
        std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o777
    };
    assert_eq!(mode("artifact.tar.gz"), mode("manifest.json"));
    let gz = Command::new("gzip")
        .arg("-t")
        .arg(&artifact)
        .status()
        .unwrap();
    assert!(gz.success(), "gzip -t rejected the artifact");
    let out = Command::new("tar")
        .arg("-tzvf")
        .arg(&artifact)
        .env("TZ", "UTC")
        .output()
        .unwrap();
    assert!(out.status.success());
    let listing = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = listing.lines().collect();
    let names: Vec<&str> = lines
        .iter()
        .map(|l| l.split(" 2023-11-14 22:13 ").nth(1).expect(l))
        .collect();
    let mut sorted = names.clone();
    sorted.sort_by_key(|n| {
        n.trim_end_matches('/')
            .split(" -> ")
            .next()
            .unwrap()
            .to_owned()
    });
    assert_eq!(names, sorted, "entries are not sorted bytewise");
    assert!(names.contains(&"a-b/") && names.contains(&"bin/start"));
    let at = |name: &str| names.iter().position(|n| *n == name).unwrap();
    assert!(
        at("a/") < at("a-b/") && at("a-b/x.txt") < at("a/x.txt"),
        "{names:?}"
    );
    assert!(
        names.iter().any(|n| n.ends_with("limit/file.txt")),
        "long name lost"
    );
    for l in &lines {
        assert!(l.contains(" 0/0 "), "owner not 0/0: {l}");
    }
    let mode_of = |name: &str| lines.iter().find(|l| l.ends_with(name)).unwrap()[..10].to_owned();
    assert_eq!(mode_of(" bin/start"), "-rwxr-xr-x");
    assert_eq!(mode_of(" server.py"), "-rw-r--r--");
    assert_eq!(mode_of(" empty-dir/"), "drwxr-xr-x");
    assert!(listing.contains("templates/link.py -> ../server.py"));

    // gzip header: no name, mtime 0.
    let bytes = fs::read(&artifact).unwrap();
    assert_eq!(&bytes[..10], &[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff]);
}

#[test]
fn build_check_confirms_reproducibility() {
    let p = Project::new();
    fixture(&p, false, 0o755, 0o644);
    let v = p.json(&["build", "--check"]);
    assert_eq!(v["reproducible"], true);

    // Assets take part too.
    let q = Project::with_config("[app]\ndir = \"app\"\n[assets]\ndir = \"static\"\n");
    q.write("app/x", "x");
    q.write("static/a.css", "b { background: url(i.png) }");
    q.write("static/i.png", "png");
    let v = q.json(&["build", "--check"]);
    assert_eq!(
        (v["reproducible"].clone(), v["assets"].clone()),
        (true.into(), 2.into())
    );
}

#[test]
fn source_date_epoch_sets_mtime_and_provenance() {
    let p = Project::new();
    p.write("app/x", "x");
    let a = p.json(&["build"]);
    let out = p
        .cmd(&["build", "--json"])
        .env("SOURCE_DATE_EPOCH", "1700000000")
        .output()
        .unwrap();
    let b: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_ne!(a["artifact"]["sha256"], b["artifact"]["sha256"]);
    let m: serde_json::Value =
        serde_json::from_slice(&fs::read(p.path().join(".verbatim/build/manifest.json")).unwrap())
            .unwrap();
    assert_eq!(m["provenance"]["source_date_epoch"], 1700000000);
    let bad = p
        .cmd(&["build"])
        .env("SOURCE_DATE_EPOCH", "yesterday")
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("source-date-epoch"));
}

/// Each refused input: a clear error naming the path, and nothing written.
#[test]
fn unpackable_trees_are_refused_and_nothing_is_written() {
    type Setup = Box<dyn Fn(&Project) -> String>;
    let mut cases: Vec<(&str, Setup)> = vec![
        (
            "points outside",
            Box::new(|p| {
                std::os::unix::fs::symlink("../../etc/passwd", p.app().join("sub/escape")).unwrap();
                "sub/escape".into()
            }),
        ),
        (
            "points outside",
            Box::new(|p| {
                std::os::unix::fs::symlink("/etc/hostname", p.app().join("abs")).unwrap();
                "abs".into()
            }),
        ),
        (
            "points outside",
            Box::new(|p| {
                // Lexically inside, really outside: `self` is the tree root.
                std::os::unix::fs::symlink(".", p.app().join("self")).unwrap();
                std::os::unix::fs::symlink("self/../outside", p.app().join("sneaky")).unwrap();
                fs::write(p.path().join("outside"), "secret").unwrap();
                "sneaky".into()
            }),
        ),
        (
            "dangling",
            Box::new(|p| {
                std::os::unix::fs::symlink("nowhere", p.app().join("dangling")).unwrap();
                "dangling".into()
            }),
        ),
        (
            "a fifo",
            Box::new(|p| {
                let st = Command::new("mkfifo")
                    .arg(p.app().join("pipe"))
                    .status()
                    .unwrap();
                assert!(st.success());
                "pipe".into()
            }),
        ),
        (
            "a socket",
            Box::new(|p| {
                let l = std::os::unix::net::UnixListener::bind(p.app().join("sock")).unwrap();
                std::mem::forget(l);
                "sock".into()
            }),
        ),
    ];
    if is_root() {
        cases.push((
            "a character device",
            Box::new(|p| {
                let st = Command::new("mknod")
                    .arg(p.app().join("null"))
                    .args(["c", "1", "3"])
                    .status()
                    .unwrap();
                assert!(st.success());
                "null".into()
            }),
        ));
    }
    for (what, setup) in cases {
        let p = Project::new();
        p.write("app/ok.txt", "fine");
        fs::create_dir_all(p.app().join("sub")).unwrap();
        let culprit = setup(&p);
        for cmd in ["build", "publish"] {
            let err = p.fails(&[cmd], 1);
            assert!(
                err.contains(&culprit) && err.contains(what),
                "{what}: {err}"
            );
            let written = Project::files_under(&p.path().join(".verbatim"));
            assert!(written.is_empty(), "{what}: {cmd} left {written:?}");
        }
    }
}

#[test]
fn excluded_paths_and_the_output_dir_are_not_packed() {
    let p = Project::with_config("[app]\ndir = \".\"\nexclude = [\"**/*.log\"]\n");
    p.write("keep.txt", "k");
    p.write("logs/x.log", "noise");
    p.ok(&["publish"]);
    p.ok(&["publish"]);
    let out = Command::new("tar")
        .arg("-tzf")
        .arg(p.path().join(".verbatim/build/artifact.tar.gz"))
        .output()
        .unwrap();
    let listing = String::from_utf8(out.stdout).unwrap();
    assert!(listing.contains("keep.txt"));
    assert!(!listing.contains(".log"), "{listing}");
    assert!(!listing.contains(".verbatim"), "{listing}");
}

/// What an artifact holds, by `tar tzf`.
fn artifact_paths(p: &Project) -> Vec<String> {
    let out = std::process::Command::new("tar")
        .arg("tzf")
        .arg(p.path().join(".verbatim/build/artifact.tar.gz"))
        .output()
        .unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| l.trim_end_matches('/').to_owned())
        .collect()
}

#[test]
fn default_excludes_and_gitignore_files_keep_litter_out() {
    let p = Project::new();
    // A repository whose root .gitignore applies to the app below it.
    std::fs::create_dir(p.path().join(".git")).unwrap();
    p.write(".gitignore", "*.pyc\n");
    p.write("app/main.py", "print()");
    p.write("app/main.pyc", "bytecode");
    p.write("app/.DS_Store", "finder");
    p.write("app/.hg/requires", "store");
    p.write("app/node_modules/x/index.js", "x");
    p.write("app/pkg/__pycache__/m.cpython-311.pyc", "x");
    p.write("app/logs/.gitignore", "*.log\n!keep.log\n");
    p.write("app/logs/keep.log", "keep");
    p.write("app/logs/drop.log", "drop");
    p.write("app/.ignore", "secret.txt\n");
    p.write("app/secret.txt", "s");
    let listed = p.json(&["build", "--list"]);
    assert!(
        !p.path().join(".verbatim/build").exists(),
        "--list wrote something"
    );
    let paths: Vec<&str> = listed["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["path"].as_str().unwrap())
        .collect();
    let want = [
        ".ignore",
        "logs",
        "logs/.gitignore",
        "logs/keep.log",
        "main.py",
        "pkg",
    ];
    assert_eq!(paths, want, "{listed}");
    let why = |path: &str| -> String {
        listed["excluded"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["path"] == path)
            .unwrap_or_else(|| panic!("{path} not listed as excluded: {listed}"))["why"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    assert!(why("main.pyc").contains(".gitignore (*.pyc)"));
    assert!(why("logs/drop.log").contains("logs/.gitignore (*.log)"));
    assert!(why("secret.txt").contains(".ignore (secret.txt)"));
    assert!(why("node_modules").contains("default exclude"));
    assert!(why(".hg").contains("default exclude"));
    // The artifact holds exactly what --list said.
    p.ok(&["build"]);
    assert_eq!(artifact_paths(&p), want);

    // Both rules can be turned off.
    p.write(
        "verbatim.toml",
        "[app]\ndir = \"app\"\ndefault_excludes = false\nrespect_gitignore = false\n",
    );
    p.ok(&["build"]);
    let all = artifact_paths(&p);
    for path in [
        "main.pyc",
        ".DS_Store",
        ".hg/requires",
        "node_modules/x/index.js",
        "logs/drop.log",
    ] {
        assert!(all.iter().any(|a| a == path), "{path} not packed: {all:?}");
    }
}

#[test]
fn provenance_records_revision_branch_and_ci_run_and_status_shows_them() {
    let p = Project::new();
    p.write("app/x.py", "x");
    let m = crate::util::json_out(
        p.cmd(&["publish", "--json"])
            .env("GITHUB_SHA", "1f2e3d4c5b6a79881726354453627181909a0b1c")
            .env("GITHUB_REF_NAME", "main")
            .env("GITHUB_SERVER_URL", "https://github.com")
            .env("GITHUB_REPOSITORY", "acme/web")
            .env("GITHUB_RUN_ID", "42"),
    )["manifest"]
        .as_str()
        .unwrap()
        .to_owned();
    p.ok(&["promote", &m, "--to", "dev"]);
    let env = &p.json(&["status", "dev"])["environments"][0];
    assert_eq!(
        env["revision"], "1f2e3d4c5b6a79881726354453627181909a0b1c",
        "{env}"
    );
    assert_eq!(env["branch"], "main", "{env}");
    assert_eq!(
        env["ci_url"], "https://github.com/acme/web/actions/runs/42",
        "{env}"
    );
    let text = p.ok(&["status", "dev"]);
    assert!(text.contains("rev 1f2e3d4c5b6a (main)"), "{text}");
    assert!(
        text.contains("built by https://github.com/acme/web/actions/runs/42"),
        "{text}"
    );
    // Flags win over CI variables (GitLab's here).
    p.write("app/x.py", "y");
    let built = crate::util::json_out(
        p.cmd(&[
            "build",
            "--json",
            "--branch",
            "release/2",
            "--revision",
            "abc",
        ])
        .env("CI_COMMIT_REF_NAME", "feature")
        .env("CI_JOB_URL", "https://gitlab.example.com/acme/web/-/jobs/7"),
    );
    let manifest: serde_json::Value = serde_json::from_slice(
        &std::fs::read(
            built["manifest_path"]
                .as_str()
                .map(std::path::PathBuf::from)
                .unwrap(),
        )
        .unwrap_or_else(|_| std::fs::read(p.path().join(".verbatim/build/manifest.json")).unwrap()),
    )
    .unwrap();
    assert_eq!(manifest["provenance"]["branch"], "release/2", "{manifest}");
    assert_eq!(manifest["provenance"]["revision"], "abc", "{manifest}");
    assert_eq!(
        manifest["provenance"]["ci_url"], "https://gitlab.example.com/acme/web/-/jobs/7",
        "{manifest}"
    );
}
