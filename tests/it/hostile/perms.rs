//! Permissions as a non-root user meets them: an unreadable source file or
//! an unwritable store is an error naming the path, and nothing is left
//! half-written. Run as `nobody` (through `setpriv`) when the tests are root,
//! since root reads and writes through any mode.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::util::{bounded, is_root, Project, BIN};

/// The binary where `nobody` may run it (the target directory may sit under
/// a home only root can enter): a hard link, or a copy across file systems,
/// inside the project, so it goes when the project does.
fn shared_binary(p: &Project) -> PathBuf {
    let bin = p.path().join("verbatim-bin");
    // Once per project: a copy over the link would truncate the binary.
    if !bin.exists() && fs::hard_link(BIN, &bin).is_err() {
        fs::copy(BIN, &bin).unwrap();
        fs::set_permissions(&bin, fs::Permissions::from_mode(0o755)).unwrap();
    }
    bin
}

/// A project every user may enter and write, in a world-readable temp dir.
fn open_project(config: &str) -> Project {
    let p = Project::with_config(config);
    for d in [p.path().to_owned(), p.app()] {
        fs::set_permissions(&d, fs::Permissions::from_mode(0o777)).unwrap();
    }
    p
}

/// `verbatim args` in `p` as an unprivileged user.
fn unprivileged(p: &Project, args: &[&str]) -> Command {
    let mut cmd = if is_root() {
        let mut c = Command::new("setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
            .arg(shared_binary(p));
        c
    } else {
        Command::new(BIN)
    };
    cmd.current_dir(p.path()).args(args).env("CI", "true");
    cmd.env_remove("VERBATIM_STORE")
        .env_remove("VERBATIM_CONFIG");
    cmd
}

fn world_writable(p: &Path) {
    fs::set_permissions(p, fs::Permissions::from_mode(0o777)).unwrap();
}

#[test]
fn an_unreadable_app_file_is_named_and_nothing_is_written() {
    let p = open_project("[app]\ndir = \"app\"\n");
    p.write("app/ok.py", "x");
    let secret = p.write("app/secret.key", "s");
    fs::set_permissions(&secret, fs::Permissions::from_mode(0o000)).unwrap();
    let err = bounded(&mut unprivileged(&p, &["build"]), 60).exits(1, 256);
    assert!(
        err.contains("secret.key") && err.contains("ermission denied"),
        "{err}"
    );
    assert!(
        Project::files_under(&p.path().join(".verbatim/build")).is_empty(),
        "a half build was left"
    );
}

#[test]
fn an_unreadable_asset_is_named_and_nothing_is_written() {
    let p = open_project("[app]\ndir = \"app\"\n[assets]\ndir = \"static\"\n");
    fs::create_dir(p.path().join("static")).unwrap();
    world_writable(&p.path().join("static"));
    p.write("static/site.css", "body{}");
    let hidden = p.write("static/hidden.css", "a{}");
    fs::set_permissions(&hidden, fs::Permissions::from_mode(0o000)).unwrap();
    let err = bounded(&mut unprivileged(&p, &["build"]), 60).exits(1, 256);
    assert!(err.contains("hidden.css"), "{err}");
    assert!(!p.path().join(".verbatim").exists());
}

#[test]
fn an_unwritable_store_is_named_and_holds_no_partial_release() {
    let p = open_project("[app]\ndir = \"app\"\n[store]\nurl = \"store\"\n");
    p.write("app/x.py", "x");
    let store = p.path().join("store");
    fs::create_dir(&store).unwrap();
    fs::set_permissions(&store, fs::Permissions::from_mode(0o555)).unwrap();
    let err = bounded(&mut unprivileged(&p, &["publish"]), 60).exits(1, 256);
    assert!(
        err.contains("store") && err.contains("ermission denied"),
        "{err}"
    );
    assert!(Project::files_under(&store).is_empty());
}

#[test]
fn store_objects_are_readable_by_others_whatever_the_umask() {
    let p = open_project("[app]\ndir = \"app\"\n[store]\nurl = \"store\"\n");
    p.write("app/x.py", "x");
    fs::set_permissions(p.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let v = crate::util::json_out(
        Command::new("sh")
            .arg("-c")
            .arg(format!(
                "umask 077 && exec {} publish --json",
                crate::util::BIN
            ))
            .current_dir(p.path())
            .env("CI", "true"),
    );
    let store = p.path().join("store");
    for key in crate::util::strings(&v["written"]) {
        let path = store.join(key);
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o644,
            "{key}"
        );
        let mut dir = path.parent().unwrap();
        while dir.starts_with(&store) {
            assert_eq!(
                fs::metadata(dir).unwrap().permissions().mode() & 0o777,
                0o755,
                "{}",
                dir.display()
            );
            dir = dir.parent().unwrap();
        }
        // And a real other user can read it (an nginx origin, say).
        if is_root() {
            let cat = Command::new("setpriv")
                .args([
                    "--reuid=65534",
                    "--regid=65534",
                    "--clear-groups",
                    "--",
                    "cat",
                ])
                .arg(&path)
                .output()
                .unwrap();
            assert!(
                cat.status.success(),
                "nobody cannot read {key}: {}",
                String::from_utf8_lossy(&cat.stderr)
            );
        }
    }
}
