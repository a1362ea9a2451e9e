//! A host's own files, hostile or broken: a fifo where a marker, the
//! history or a record belongs; a marker that does not parse; a history
//! that cannot be written; a planted artifact of the wrong size. Nothing
//! hangs, `current` never goes away without a verified release to name,
//! and going back runs the previous release's own hooks.

use std::fs;
use std::os::unix::process::CommandExt;
use std::path::Path;

use super::{hook_runs, small, Host, HOOKS};

fn mkfifo(path: &Path) {
    let _ = fs::remove_file(path);
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(
        unsafe { libc::mkfifo(c.as_ptr(), 0o644) },
        0,
        "mkfifo {}",
        path.display()
    );
}

/// A fifo at the activation marker or the history is refused by name, with
/// nothing run and `current` untouched; one at a release's file record
/// makes that release count as modified, and it is fetched again.
#[test]
fn fifos_among_the_host_files_are_refused_never_waited_on() {
    let h = Host::new(HOOKS);
    let (a, b) = (h.publish(&small("A")), h.publish(&small("B")));
    h.promote(&a, "dev");
    h.ok(&["dev"]);
    h.promote(&b, "dev");
    h.take_log();
    for name in ["activating.json", "history.jsonl"] {
        let path = h.root().join(".verbatim").join(name);
        let kept = fs::read(&path).ok();
        mkfifo(&path);
        let (_, err) = h.expect(&["dev"], 1);
        assert!(
            err.contains(&path.display().to_string()) && err.contains("not a regular file"),
            "{name}: {err}"
        );
        h.assert_live(&a, &small("A"));
        assert_eq!(h.take_log(), Vec::<String>::new(), "{name}: nothing runs");
        fs::remove_file(&path).unwrap();
        if let Some(bytes) = kept {
            fs::write(&path, bytes).unwrap();
        }
    }

    h.ok(&["dev"]);
    h.promote(&a, "dev");
    let record = h
        .root()
        .join(format!(".verbatim/releases/{}.json", super::hex(&a)));
    mkfifo(&record);
    let (v, err) = h.expect(&["dev"], 0);
    assert!(
        err.contains("its file record is unreadable") && err.contains("not a regular file"),
        "{err}"
    );
    assert_eq!(v["fetched"], true, "the release was fetched again");
    h.assert_live(&a, &small("A"));
    assert!(fs::symlink_metadata(&record).unwrap().is_file());
}

/// A marker that does not parse says nothing of where `current` was: it
/// stays where it is, and a deploy that then fails flips back to it. A
/// marker naming a release that was modified since leaves `current` too.
#[test]
fn an_unreadable_marker_or_an_unverified_release_leaves_current_where_it_is() {
    let h = Host::new(HOOKS);
    let (a, b) = (h.publish(&small("A")), h.publish(&small("B")));
    h.promote(&a, "dev");
    h.ok(&["dev"]);
    h.promote(&b, "dev");
    let marker = h.root().join(".verbatim/activating.json");
    fs::write(&marker, b"{not json").unwrap();
    h.set("fail-check");
    let (v, err) = h.expect(&["dev"], 6);
    h.unset("fail-check");
    assert_eq!(v["result"], "failed");
    assert!(err.contains("its marker is unreadable"), "{err}");
    h.assert_live(&a, &small("A"));
    let history = h.history();
    let recovered = &history[history.len() - 2];
    assert_eq!(recovered["outcome"], "failed", "{recovered}");
    assert_eq!(recovered["current"], a.as_str(), "{recovered}");
    assert!(!marker.exists());

    // B live; a marker says it came from A, whose files changed since.
    h.ok(&["dev"]);
    fs::write(h.release_dir(&a).join("lib/x.txt"), "changed\n").unwrap();
    fs::write(&marker, format!(r#"{{"from":"{a}","to":"{b}"}}"#)).unwrap();
    h.take_log();
    let (v, err) = h.expect(&["dev"], 0);
    assert!(
        err.contains("cannot be verified") && err.contains("lib/x.txt"),
        "{err}"
    );
    assert_eq!(v["result"], "unchanged");
    assert_eq!(h.current().as_deref(), Some(b.as_str()));
    assert_eq!(h.take_log(), Vec::<String>::new(), "no hook runs");
}

/// A history that cannot be written stops a deploy before any hook; one
/// that fails at the end (here: the file-size limit) flips `current` back,
/// runs the previous release's `post_activate`, and reports `failed`.
#[test]
fn a_history_that_cannot_be_written_never_leaves_an_unrecorded_release_live() {
    let h = Host::new(HOOKS);
    let (a, b) = (h.publish(&small("A")), h.publish(&small("B")));
    h.promote(&a, "dev");
    h.ok(&["dev"]);
    h.promote(&b, "dev");
    h.take_log();
    let path = h.root().join(".verbatim/history.jsonl");
    let lines = fs::read(&path).unwrap();

    fs::remove_file(&path).unwrap();
    fs::create_dir(&path).unwrap();
    let (_, err) = h.expect(&["dev"], 1);
    assert!(err.contains("history.jsonl"), "{err}");
    h.assert_live(&a, &small("A"));
    assert_eq!(h.take_log(), Vec::<String>::new(), "nothing runs");
    fs::remove_dir(&path).unwrap();

    // The history fills the file-size limit: reading it works, the
    // append after the check does not (EFBIG, with SIGXFSZ ignored).
    const LIMIT: u64 = 256 << 10;
    let mut full = Vec::new();
    while (full.len() as u64) + (lines.len() as u64) <= LIMIT {
        full.extend_from_slice(&lines);
    }
    full.resize(LIMIT as usize - 1, b' ');
    full.push(b'\n');
    fs::write(&path, &full).unwrap();
    let mut cmd = h.deploy(&["dev"]);
    cmd.arg("--json");
    // SAFETY: setrlimit and signal are async-signal-safe.
    unsafe {
        cmd.pre_exec(|| {
            let lim = libc::rlimit {
                rlim_cur: LIMIT,
                rlim_max: LIMIT,
            };
            libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
            match libc::setrlimit(libc::RLIMIT_FSIZE, &lim) {
                0 => Ok(()),
                _ => Err(std::io::Error::last_os_error()),
            }
        });
    }
    let (v, err) = super::expect(&mut cmd, 6);
    assert_eq!(v["result"], "failed");
    assert!(
        err.contains("recording it in the host history failed"),
        "{err}"
    );
    h.assert_live(&a, &small("A"));
    let mut expected = hook_runs(&b, &["pre_activate", "post_activate", "check"]);
    expected.extend(hook_runs(&a, &["post_activate"]));
    assert_eq!(h.take_log(), expected);
    let r = h.report("dev");
    assert_eq!(
        (r["state"].as_str(), r["running"].as_str()),
        (Some("failed"), Some(a.as_str()))
    );
}

/// Going back after a failed check runs the previous release's own
/// `post_activate`, from its own manifest, not the failed release's.
#[test]
fn flipping_back_runs_the_previous_releases_own_hooks() {
    let h = Host::new(HOOKS);
    let a = h.publish(&small("A"));
    let theirs = "[deploy.hooks]\n\
        post_activate = 'echo \"B-post_activate $VERBATIM_MANIFEST\" >> \"$VT_CTL/log\"'\n\
        check = 'false'\n";
    h.p.write(
        "verbatim.toml",
        format!("[app]\ndir = \"app\"\n\n[deploy]\n{theirs}"),
    );
    let b = h.publish(&small("B"));
    h.promote(&a, "dev");
    h.ok(&["dev"]);
    h.promote(&b, "dev");
    h.take_log();
    let (_, err) = h.expect(&["dev"], 6);
    h.assert_live(&a, &small("A"));
    let mut expected = vec![format!("B-post_activate {b}")];
    expected.extend(hook_runs(&a, &["post_activate"]));
    assert_eq!(h.take_log(), expected, "{err}");
}

/// A store object whose size is not the manifest's is refused before a
/// byte of it is read: a 20 GiB planted file costs nothing.
#[test]
fn an_artifact_of_the_wrong_size_is_refused_before_it_is_read() {
    let h = Host::new("");
    let a = h.publish(&small("A"));
    h.promote(&a, "dev");
    let dir = h.p.store().join("artifacts/sha256");
    let artifact = fs::read_dir(&dir).unwrap().next().unwrap().unwrap().path();
    let size = fs::metadata(&artifact).unwrap().len();
    for planted in [20u64 << 30, size - 1] {
        let f = fs::OpenOptions::new().write(true).open(&artifact).unwrap();
        f.set_len(planted).unwrap();
        let (_, err) = h.expect(&["dev"], 5);
        assert!(
            err.contains(&format!("the store holds {planted} bytes"))
                && err.contains(&format!("says {size}")),
            "{err}"
        );
        assert_eq!(h.current(), None);
        assert_eq!(h.release_dirs(), Default::default());
    }
}

/// `deploy --to previous` is the operator's own act, but not around
/// `--require`: a previous release deployed without the rule is checked
/// now, and refused unsigned (exit 5) with nothing run; without a store to
/// read signatures from, the combination is refused (exit 2).
#[test]
fn going_back_under_require_checks_the_previous_release() {
    use crate::signing::{openssh_key, public};
    let h = Host::new(HOOKS);
    let (unsigned, signed) = (h.publish(&small("U")), h.publish(&small("S")));
    let ci = openssh_key(h.p.path(), "ci");
    h.p.ok(&["sign", &signed, "--key", ci.to_str().unwrap()]);
    h.p.write("allowed_signers", format!("release@ci {}\n", public(&ci)));
    let rule = [
        "--allowed-signers",
        "allowed_signers",
        "--require",
        "release@ci",
    ];
    h.ok(&[&unsigned]);
    h.ok(&[&[signed.as_str()][..], &rule].concat());
    h.take_log();

    let (_, err) = h.expect(&[&["--to", "previous"][..], &rule].concat(), 5);
    assert!(err.contains("no signatures"), "{err}");
    h.assert_live(&signed, &small("S"));
    assert_eq!(h.take_log(), Vec::<String>::new(), "nothing runs");

    // On a host with no verbatim.toml, so no store but --store.
    let signers = h.p.path().join("allowed_signers");
    let mut no_store =
        h.p.cmd(&["deploy", "--to", "previous", "--require", "release@ci"]);
    no_store
        .arg("--allowed-signers")
        .arg(&signers)
        .arg("--root")
        .arg(h.root())
        .current_dir(h.root());
    let err = crate::util::exits(&mut no_store, 2);
    assert!(err.contains("pass --store"), "{err}");
    h.assert_live(&signed, &small("S"));
}
