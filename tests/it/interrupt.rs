//! Ctrl-C leaves no temp files: real SIGINTs to real `build` and `fetch`
//! runs, and the next run sweeps what a harder kill left; a publish to S3
//! starts no new upload after one, and stores no manifest.

use std::fs;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use verbatim::store::Store;

use crate::s3::{cli, S3Server};
use crate::util::Project;

/// `n` bytes that do not compress (xorshift), so packing takes a while.
fn noise(n: usize) -> Vec<u8> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(n);
    out
}

/// Names in `dir` starting with `prefix`.
fn temps(dir: &Path, prefix: &str) -> Vec<String> {
    fs::read_dir(dir)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with(prefix))
                .collect()
        })
        .unwrap_or_default()
}

/// Runs `cmd`, sends SIGINT once `ready()` holds, and returns its exit
/// code and stderr.
fn interrupt(mut cmd: Command, ready: impl Fn() -> bool) -> (Option<i32>, String) {
    let what = format!("{cmd:?}");
    cmd.stdout(Stdio::null()).stderr(Stdio::piped());
    // SAFETY: signal(2) is async-signal-safe; nothing else runs there.
    unsafe {
        cmd.pre_exec(|| {
            libc::signal(libc::SIGINT, libc::SIG_DFL);
            Ok(())
        });
    }
    let mut child = cmd.spawn().unwrap();
    let start = Instant::now();
    while !ready() {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("{what} ended ({status}) before it could be interrupted");
        }
        assert!(start.elapsed() < Duration::from_secs(60), "never got ready");
        std::thread::sleep(Duration::from_millis(2));
    }
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGINT) };
    let out = child.wait_with_output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn sigint_during_build_and_fetch_removes_their_temp_files() {
    let p = Project::new();
    p.write("app/big.bin", noise(96 << 20));
    let out = p.path().join(".verbatim/build");
    let (code, err) = interrupt(p.cmd(&["build", "--jobs", "1"]), || {
        !temps(&out, ".artifact-").is_empty()
    });
    assert_eq!(code, Some(130), "{err}");
    assert!(err.contains("stopped by SIGINT"), "{err}");
    assert_eq!(temps(&out, ".artifact-"), Vec::<String>::new());
    assert!(!out.join("artifact.tar.gz").exists());

    let m = p.json(&["publish"])["manifest"]
        .as_str()
        .unwrap()
        .to_owned();
    let releases = p.path().join("host/releases");
    let (code, err) = interrupt(p.cmd(&["fetch", &m, "--into", "host"]), || {
        !temps(&releases, ".download-").is_empty() || !temps(&releases, ".unpack-").is_empty()
    });
    assert_eq!(code, Some(130), "{err}");
    for prefix in [".download-", ".unpack-"] {
        assert_eq!(temps(&releases, prefix), Vec::<String>::new(), "{prefix}");
    }
    assert!(!releases.join(&m[7..]).exists());
}

#[test]
fn sigint_during_an_s3_publish_starts_no_new_upload_and_stores_no_manifest() {
    let Some(s3) = S3Server::start() else { return };
    let p = Project::with_config("[app]\ndir = \"app\"\n\n[assets]\ndir = \"static\"\n");
    p.write("app/x", "x");
    const ASSETS: usize = 1500;
    for i in 0..ASSETS {
        p.write(&format!("static/f/{i:04}.txt"), format!("asset {i}\n"));
    }
    p.ok(&["build"]);
    let uploading = s3.object_path("rel/assets");
    let (code, err) = interrupt(
        cli(&p, &s3.url(), "rel", &["publish", "--prebuilt"]),
        || uploading.exists(),
    );
    assert_eq!(code, Some(130), "{err}");
    assert!(err.contains("stopped by SIGINT"), "{err}");
    let store = crate::s3::store(&s3.url(), "rel");
    assert_eq!(store.list("manifests/").unwrap(), Vec::new(), "{err}");
    let stored = store.list("assets/").unwrap().len();
    // What was in flight finished; nothing started after the signal.
    assert!(stored < ASSETS, "all {stored} assets went up after SIGINT");
}

#[test]
fn the_next_run_sweeps_what_a_killed_one_left() {
    let p = Project::new();
    p.write("app/x", "x");
    p.ok(&["publish"]);
    // What SIGKILL leaves: a half-written artifact and a half-staged put.
    let stale_build = p.write(".verbatim/build/.artifact-Ab12Cd", "half");
    let stale_put = p.write(".verbatim/store/.tmp/put-Ef34Gh", "half");
    p.write("app/x", "y");
    let err = String::from_utf8(p.run(&["publish"]).stderr).unwrap();
    assert!(!stale_build.exists(), "{err}");
    assert!(!stale_put.exists(), "{err}");
    assert!(err.contains("left by an interrupted build"), "{err}");
}

#[test]
fn what_a_killed_fetch_left_goes_but_never_what_a_live_one_stages() {
    let p = Project::new();
    let publish = |version: &str| crate::environments::release(&p, version);
    let fetch = |m: &str| String::from_utf8(p.run(&["fetch", m, "--into", "host"]).stderr).unwrap();
    let store = p.store();
    let deploy = |m: &str| {
        let out = p
            .cmd(&[
                "deploy",
                m,
                "--root",
                "host",
                "--host-id",
                "web-1",
                "--store",
            ])
            .arg(&store)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        String::from_utf8(out.stderr).unwrap()
    };
    fetch(&publish("1"));
    // What SIGKILL leaves mid-fetch (or mid-deploy).
    let download = p.write("host/releases/.download-Ab12Cd", "half");
    let unpack = p.write("host/releases/.unpack-Ef34Gh/x", "half");
    let manifest = p.write("host/releases/.manifest-Ij56Kl", "{\"half");
    let record = p.write("host/.verbatim/releases/.record-Uv12Wx", "{\"half");
    let left = || download.exists() && unpack.exists() && manifest.exists() && record.exists();

    // Another fetch is staging: the temps may be its own, so they stay.
    let lock = fs::File::open(p.path().join("host/.verbatim/staging.lock")).unwrap();
    lock.lock_shared().unwrap();
    let err = fetch(&publish("2"));
    assert!(left(), "{err}");
    let err = deploy(&publish("3"));
    assert!(left(), "{err}");

    // Once none is, they are a killed one's: the next fetch removes them.
    drop(lock);
    let err = fetch(&publish("4"));
    assert!(
        !download.exists() && !unpack.exists() && !manifest.exists() && !record.exists(),
        "{err}"
    );
    assert!(
        err.contains("left by an interrupted fetch or deploy"),
        "{err}"
    );
    assert_eq!(
        temps(&p.path().join("host/releases"), "."),
        Vec::<String>::new()
    );

    // What a killed deploy leaves beside its staged temps goes with the
    // next deploy, which holds the host lock.
    let activating = p.write("host/.verbatim/.activating-Mn78Op", "{");
    let trash = p.write("host/releases/.trash-Qr90St/x", "old");
    let err = deploy(&publish("5"));
    assert!(!activating.exists() && !trash.exists(), "{err}");
}
