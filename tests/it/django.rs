//! The book's Django + gunicorn example (docs/src/guides/django.md), run
//! for real: its `verbatim.toml`, `deploy/check.py` and gunicorn command
//! line are read from the guide, so the example cannot drift from what
//! this test proves.
//! A small Django site is published three times and deployed to one root
//! under one gunicorn master: the first release before gunicorn runs, the
//! second picked up by a HUP (same master pid), the third failing its
//! health check, flipped back and HUPed back to the second.
//!
//! Needs a venv with Django and gunicorn: `VERBATIM_TEST_DJANGO_VENV`, else
//! `~/.cache/verbatim/venv-django` (`cargo xtask ci` makes it, pinned).
//! Without it the test fails; it never skips.
//!
//! How gunicorn follows `current` (gunicorn 27, `gunicorn/app/base.py`,
//! `arbiter.py`): `--chdir` is kept as given, unresolved, and on HUP the
//! master reloads its configuration and calls `os.chdir` on it again, so
//! its working directory becomes the release `current` names now. The same
//! unresolved path is first on `sys.path` (put there at start), so the new
//! workers it then forks import the app afresh through the link (the
//! master never imports it without `--preload`); a module a worker imports
//! lazily after a later flip, before the HUP that replaces it, comes from
//! the newer release. The old workers get SIGTERM: they finish their
//! request and exit. Without `--chdir`, each HUP goes back to
//! the directory gunicorn started in, resolved at start (the old release),
//! unless `$PWD` spells it through `current`. The listening socket and the
//! master's pid never change.

use std::fs;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::util::{Project, BIN};

const GUIDE: &str = include_str!("../../docs/src/guides/django.md");

/// The code block of the guide's gunicorn example whose first line is
/// `# NAME…` (the file it shows).
fn readme_block(name: &str) -> &'static str {
    let start = GUIDE
        .find("## Example: Django behind gunicorn")
        .expect("docs/src/guides/django.md has no `## Example: Django behind gunicorn`");
    let section = &GUIDE[start..];
    let section = &section[..section[1..].find("\n## ").map_or(section.len(), |i| i + 1)];
    let mut rest = section;
    while let Some(open) = rest.find("\n```") {
        let after = &rest[open + 4..];
        let body_start = after.find('\n').map_or(after.len(), |i| i + 1);
        let body = &after[body_start..];
        let end = body
            .find("\n```")
            .expect("docs/src/guides/django.md: an unclosed code block");
        let block = &body[..=end];
        if block.starts_with(&format!("# {name}")) {
            return block;
        }
        rest = &body[end + 4..];
    }
    panic!("docs/src/guides/django.md's gunicorn example has no code block starting `# {name}`")
}

/// The venv with Django and gunicorn; panics (the test fails) without it.
pub fn venv() -> PathBuf {
    let venv = std::env::var_os("VERBATIM_TEST_DJANGO_VENV").map_or_else(
        || {
            let home = std::env::var_os("HOME").unwrap_or_else(|| "/root".into());
            Path::new(&home).join(".cache/verbatim/venv-django")
        },
        PathBuf::from,
    );
    for bin in ["python", "gunicorn"] {
        assert!(
            venv.join("bin").join(bin).is_file(),
            "no {bin} in {}: run `cargo xtask ci` (it makes the venv with pinned Django and \
             gunicorn), or point VERBATIM_TEST_DJANGO_VENV at a venv that has both",
            venv.display()
        );
    }
    venv
}

const MANAGE_PY: &str = r##"import os
import sys

if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mysite.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
"##;

const WSGI_PY: &str = r##"import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mysite.settings")
application = get_wsgi_application()
"##;

const SETTINGS_PY: &str = r##"import os
from pathlib import Path

from django.core.files.storage import FileSystemStorage

# This release's directory (DIR/releases/<manifest hex>), links resolved:
# the release reads its own files whatever `current` names by then.
BASE_DIR = Path(__file__).resolve().parent.parent

# The host's settings: DIR/shared/.env (a shared path), KEY=VALUE lines.
for line in (BASE_DIR / ".env").read_text().splitlines():
    key, sep, value = line.partition("=")
    if sep and not key.startswith("#"):
        os.environ.setdefault(key.strip(), value.strip())

SECRET_KEY = os.environ["SECRET_KEY"]
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.staticfiles",
]
ROOT_URLCONF = "mysite.urls"
WSGI_APPLICATION = "mysite.wsgi.application"
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ["SQLITE_PATH"],
    }
}
# Django sets TZ for the whole process (gunicorn's worker logs too).
TIME_ZONE = "UTC"
USE_TZ = True
MEDIA_ROOT = BASE_DIR / "media"
# The assets are served from where verbatim published them (public_prefix);
# their names come from the staticfiles.json pre_activate exported here.
STATIC_URL = "/static/"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.ManifestStaticFilesStorage",
        "OPTIONS": {"manifest_storage": FileSystemStorage(location=BASE_DIR)},
    },
}
"##;

const URLS_PY: &str = r##"from django.conf import settings
from django.contrib.auth.models import User
from django.db import DatabaseError
from django.http import HttpResponse
from django.templatetags.static import static
from django.urls import path


def answer(body, status=200):
    """Plain text, naming the release that answers (its manifest's hex)."""
    response = HttpResponse(body, status=status, content_type="text/plain")
    response["X-Release"] = settings.BASE_DIR.name
    return response


def index(request):
    return answer((settings.BASE_DIR / "VERSION").read_text().strip())


def healthz(request):
    if (settings.BASE_DIR / "UNHEALTHY").exists():
        return answer("unhealthy", status=503)
    try:
        User.objects.exists()  # the shared database is there and migrated
    except DatabaseError as e:
        return answer(f"database: {e}", status=503)
    return answer("ok")


def site_css(request):
    return answer(static("css/site.css"))


urlpatterns = [
    path("", index),
    path("healthz", healthz),
    path("site.css", site_css),
]
"##;

/// Writes release `version` of the site into the project; `healthy: false`
/// makes its /healthz answer 503.
fn write_release(p: &Project, version: &str, healthy: bool) {
    p.write("manage.py", MANAGE_PY);
    p.write("mysite/__init__.py", "");
    p.write("mysite/settings.py", SETTINGS_PY);
    p.write("mysite/urls.py", URLS_PY);
    p.write("mysite/wsgi.py", WSGI_PY);
    p.write("deploy/check.py", readme_block("deploy/check.py"));
    p.write("VERSION", format!("{version}\n"));
    p.write(
        "static/css/site.css",
        format!("/* release {version} */\nbody {{ color: #333 }}\n"),
    );
    let unhealthy = p.path().join("UNHEALTHY");
    if healthy {
        let _ = fs::remove_file(unhealthy);
    } else {
        fs::write(unhealthy, "").unwrap();
    }
}

fn publish(p: &Project) -> String {
    p.json(&["publish"])["manifest"]
        .as_str()
        .expect("publish prints the manifest")
        .to_owned()
}

fn hex(manifest: &str) -> &str {
    manifest
        .strip_prefix("sha256:")
        .expect("a sha256 manifest id")
}

/// `verbatim deploy MANIFEST`, its hooks finding the venv's `python` and
/// this `verbatim` first on PATH, as the guide's agent unit sets it.
fn deploy(p: &Project, manifest: &str, root: &Path, venv: &Path) -> Output {
    let bin_dir = Path::new(BIN).parent().unwrap();
    let path = std::env::join_paths([venv.join("bin"), bin_dir.to_owned()].into_iter().chain(
        std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()),
    ))
    .unwrap();
    let mut cmd = p.cmd(&["deploy", manifest, "--host-id", "web-1", "--root"]);
    cmd.arg(root)
        .arg("--store")
        .arg(p.store())
        .env("PATH", path);
    for var in ["DJANGO_SETTINGS_MODULE", "PYTHONPATH", "PYTHONHOME"] {
        cmd.env_remove(var);
    }
    cmd.output().expect("running verbatim deploy")
}

/// A running gunicorn, started as the guide's unit starts it, ended (and
/// reaped, workers included) on drop.
struct Gunicorn {
    child: Child,
    dir: tempfile::TempDir,
    reaped: bool,
}

impl Gunicorn {
    /// Runs the guide's `ExecStart=` (paths and port replaced) once
    /// `<root>/current` exists: systemd's `Restart=` does that on a real
    /// host; a shell loop here, which then `exec`s, so the child's pid is
    /// gunicorn's master's.
    fn start(venv: &Path, root: &Path, addr: SocketAddr) -> Gunicorn {
        let unit = readme_block("/etc/systemd/system/gunicorn.service");
        let exec = unit
            .lines()
            .find_map(|l| l.strip_prefix("ExecStart="))
            .expect("docs/src/guides/django.md: the gunicorn unit has no ExecStart=");
        let venv_prefix = format!("{}/", venv.display());
        let exec = exec
            .replace("/srv/app/venv/", &venv_prefix)
            .replace("/srv/app", &root.display().to_string())
            .replace("127.0.0.1:8000", &addr.to_string());
        assert!(
            !venv_prefix.contains(' ') && !root.display().to_string().contains(' '),
            "paths with spaces"
        );
        let dir = tempfile::tempdir().expect("temp dir");
        let log = fs::File::create(dir.path().join("gunicorn.log")).unwrap();
        let mut cmd = Command::new("sh");
        cmd.arg("-c")
            .arg(r#"until [ -e "$0" ]; do sleep 0.05; done; exec "$@""#)
            .arg(root.join("current"))
            .args(exec.split_whitespace())
            .current_dir(dir.path())
            // gunicorn >= 25 opens a control socket, by default in
            // $XDG_RUNTIME_DIR or ~/.gunicorn: keep it in the temp dir.
            .env("XDG_RUNTIME_DIR", dir.path())
            .env_remove("PWD")
            .env_remove("GUNICORN_CMD_ARGS")
            .env_remove("DJANGO_SETTINGS_MODULE")
            .env_remove("PYTHONPATH")
            // Its own group, so that drop can end stray workers too.
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("starting {cmd:?}: {e}"));
        Gunicorn {
            child,
            dir,
            reaped: false,
        }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("gunicorn.log")).unwrap_or_default()
    }

    /// How many HUPs the master has handled.
    fn hups(&self) -> usize {
        self.log().matches("Handling signal: hup").count()
    }

    /// Waits until the master has handled `n` HUPs.
    fn wait_for_hups(&self, n: usize) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.hups() < n {
            assert!(
                Instant::now() < deadline,
                "gunicorn handled {} HUPs, not {n}:\n{}",
                self.hups(),
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        assert_eq!(self.hups(), n, "more HUPs than expected:\n{}", self.log());
    }

    /// Whether the master has exited, without reaping it (its pid, and so
    /// its process group, stay ours until it is reaped).
    fn exited(&self) -> bool {
        // SAFETY: a zeroed siginfo_t is a valid out-parameter for waitid.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        // SAFETY: our own unreaped child; WNOWAIT leaves it unreaped.
        let r = unsafe {
            libc::waitid(
                libc::P_PID,
                self.pid(),
                &mut info,
                libc::WEXITED | libc::WNOHANG | libc::WNOWAIT,
            )
        };
        // SAFETY: si_pid is set by waitid when a child changed state.
        r == 0 && unsafe { info.si_pid() } != 0
    }

    /// Ends the master with SIGTERM, as systemd would, and asserts that no
    /// worker outlived it.
    fn stop(mut self) {
        let pid = self.pid() as libc::pid_t;
        // SAFETY: signalling our own child, not yet reaped.
        unsafe { libc::kill(pid, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(30);
        while !self.exited() {
            assert!(
                Instant::now() < deadline,
                "gunicorn did not stop within 30 s of SIGTERM:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.wait();
        self.reaped = true;
        // SAFETY: signal 0 only asks whether any process is in the group.
        let left = unsafe { libc::killpg(pid, 0) } == 0;
        assert!(!left, "a gunicorn worker outlived its master");
    }
}

impl Drop for Gunicorn {
    fn drop(&mut self) {
        if self.reaped {
            return;
        }
        let pid = self.pid() as libc::pid_t;
        // SAFETY: signalling our own child, not yet reaped.
        unsafe { libc::kill(pid, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self.exited() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        // The master (exited or not) is unreaped, so its group id cannot
        // have been reused: end whatever is left of the group, then reap.
        // SAFETY: as above.
        unsafe { libc::killpg(pid, libc::SIGKILL) };
        let _ = self.child.wait();
    }
}

/// One HTTP answer: status, the `X-Release` header, the body.
#[derive(Debug)]
struct Answer {
    status: u16,
    release: Option<String>,
    body: String,
}

/// One HTTP/1.0 GET (gunicorn then closes the connection after the body).
fn get(addr: SocketAddr, path: &str) -> Result<Answer, String> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
        .map_err(|e| format!("connect: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(|e| e.to_string())?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").map_err(|e| e.to_string())?;
    let mut bytes = Vec::new();
    s.read_to_end(&mut bytes)
        .map_err(|e| format!("receive: {e}"))?;
    let text = String::from_utf8_lossy(&bytes);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| format!("no end of headers in {text:?}"))?;
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("bad status line in {head:?}"))?;
    let release = lines.find_map(|l| {
        let (name, value) = l.split_once(':')?;
        name.eq_ignore_ascii_case("x-release")
            .then(|| value.trim().to_owned())
    });
    Ok(Answer {
        status,
        release,
        body: body.to_owned(),
    })
}

/// Asks for `path` until release `manifest` answers it (other releases'
/// workers may answer for a moment after a HUP); that answer.
fn answer_from(g: &Gunicorn, addr: SocketAddr, path: &str, manifest: &str) -> Answer {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let last = get(addr, path);
        if let Ok(a) = &last {
            if a.release.as_deref() == Some(hex(manifest)) {
                return last.unwrap();
            }
        }
        assert!(
            Instant::now() < deadline,
            "release {manifest} did not answer {path} within 30 s (last: {last:?}); gunicorn:\n{}",
            g.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The URL `{% static "css/site.css" %}` must render for a release: the
/// public prefix and the name its manifest gives the file.
fn css_url(root: &Path, manifest: &str) -> String {
    let path = root
        .join("releases")
        .join(format!("{}.json", hex(manifest)));
    let m: serde_json::Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
    let key = m["assets"]["css/site.css"]["key"]
        .as_str()
        .unwrap_or_else(|| panic!("{} names no css/site.css", path.display()));
    format!("/static/{}", key.strip_prefix("assets/").unwrap())
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn django_behind_gunicorn_follows_deploys_and_flips_back() {
    let venv = venv();
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
        .port();
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let config = readme_block("verbatim.toml").replace("127.0.0.1:8000", &addr.to_string());
    let p = Project::with_config(&config);
    fs::remove_dir(p.app()).unwrap(); // app.dir is "." here
    let root = tempfile::tempdir().unwrap();
    let root = root.path();
    let shared = root.join("shared");
    fs::create_dir(&shared).unwrap();
    let db = shared.join("db.sqlite3");
    fs::write(
        shared.join(".env"),
        format!("SECRET_KEY=not-a-secret\nSQLITE_PATH={}\n", db.display()),
    )
    .unwrap();
    let current = || fs::read_link(root.join("current")).ok();

    // Release 1, before gunicorn runs: post_activate finds no pid file, and
    // the check waits for gunicorn, which starts once `current` exists.
    write_release(&p, "1", true);
    let m1 = publish(&p);
    let g = Gunicorn::start(&venv, root, addr);
    let out = deploy(&p, &m1, root, &venv);
    assert!(
        out.status.success(),
        "deploy 1 failed ({:?}):\n{}\ngunicorn:\n{}",
        out.status.code(),
        stderr(&out),
        g.log()
    );
    assert_eq!(current(), Some(Path::new("releases").join(hex(&m1))));
    let a = get(addr, "/").unwrap();
    assert_eq!((a.status, a.body.as_str()), (200, "1"), "{a:?}");
    assert_eq!(a.release.as_deref(), Some(hex(&m1)));
    let css = get(addr, "/site.css").unwrap();
    assert_eq!(css.body, css_url(root, &m1), "{css:?}");
    assert!(
        db.is_file(),
        "pre_activate's migrate made no {}",
        db.display()
    );
    let pid = g.pid();
    let pid_file = shared.join("gunicorn.pid");
    assert_eq!(
        fs::read_to_string(&pid_file).unwrap().trim(),
        pid.to_string()
    );
    // Usually 0: gunicorn was still booting when post_activate ran.
    let hups = g.hups();

    // Release 2: one HUP, the same master, the new release answering at
    // once (the check waited for it, and the old worker is gone).
    write_release(&p, "2", true);
    let m2 = publish(&p);
    let out = deploy(&p, &m2, root, &venv);
    assert!(
        out.status.success(),
        "deploy 2 failed ({:?}):\n{}\ngunicorn:\n{}",
        out.status.code(),
        stderr(&out),
        g.log()
    );
    g.wait_for_hups(hups + 1);
    let a = get(addr, "/").unwrap();
    assert_eq!((a.status, a.body.as_str()), (200, "2"), "{a:?}");
    assert_eq!(a.release.as_deref(), Some(hex(&m2)));
    let css = get(addr, "/site.css").unwrap();
    assert_eq!(css.body, css_url(root, &m2));
    assert_ne!(css_url(root, &m1), css_url(root, &m2));
    assert!(!g.exited(), "gunicorn's master exited:\n{}", g.log());
    assert_eq!(
        fs::read_to_string(&pid_file).unwrap().trim(),
        pid.to_string()
    );

    // Release 3 answers /healthz with 503: the check fails once release 3
    // answers, `current` flips back, post_activate runs again (a second
    // HUP) and gunicorn serves release 2 again.
    write_release(&p, "3", false);
    let m3 = publish(&p);
    let out = deploy(&p, &m3, root, &venv);
    let err = stderr(&out);
    assert_eq!(
        out.status.code(),
        Some(6),
        "deploy 3 should fail its check:\n{err}\ngunicorn:\n{}",
        g.log()
    );
    assert!(
        err.contains(&format!("release {} answered 503", hex(&m3))),
        "{err}"
    );
    assert!(
        err.contains("check failed") && err.contains(&format!("flipped back to {m2}")),
        "{err}"
    );
    assert_eq!(
        err.matches("running post_activate hook").count(),
        2,
        "{err}"
    );
    assert_eq!(current(), Some(Path::new("releases").join(hex(&m2))));
    g.wait_for_hups(hups + 3);
    let a = answer_from(&g, addr, "/", &m2);
    assert_eq!((a.status, a.body.as_str()), (200, "2"), "{a:?}");
    for _ in 0..5 {
        let a = get(addr, "/healthz").unwrap();
        assert_eq!(
            (a.status, a.body.as_str(), a.release.as_deref()),
            (200, "ok", Some(hex(&m2))),
            "after the flip back"
        );
    }
    assert!(!g.exited(), "gunicorn's master exited:\n{}", g.log());
    assert_eq!(
        fs::read_to_string(&pid_file).unwrap().trim(),
        pid.to_string()
    );
    g.stop();
}
