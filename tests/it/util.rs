//! The test harness: a temp project with a config, and a way to run the binary.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub const BIN: &str = env!("CARGO_BIN_EXE_verbatim");

pub struct Project {
    pub dir: tempfile::TempDir,
}

impl Project {
    /// A project with `verbatim.toml` pointing at an empty `app/`.
    pub fn new() -> Project {
        Project::with_config("[app]\ndir = \"app\"\n")
    }

    pub fn with_config(config: &str) -> Project {
        let dir = tempfile::tempdir().expect("temp dir");
        fs::create_dir(dir.path().join("app")).unwrap();
        fs::write(dir.path().join("verbatim.toml"), config).unwrap();
        Project { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn app(&self) -> PathBuf {
        self.path().join("app")
    }

    /// Writes a file under the project, creating directories.
    pub fn write(&self, rel: &str, contents: impl AsRef<[u8]>) -> PathBuf {
        let p = self.path().join(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(&p, contents).unwrap();
        p
    }

    /// The binary, run in the project with a clean environment.
    pub fn cmd(&self, args: &[&str]) -> Command {
        cmd_in(self.path(), args)
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().expect("running verbatim")
    }

    /// Runs and asserts success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        String::from_utf8(success(&mut self.cmd(args))).unwrap()
    }

    /// Runs `--json` and parses stdout.
    pub fn json(&self, args: &[&str]) -> serde_json::Value {
        json_out(self.cmd(args).arg("--json"))
    }

    /// Runs, asserts the exit code, returns stderr.
    pub fn fails(&self, args: &[&str], code: i32) -> String {
        exits(&mut self.cmd(args), code)
    }

    pub fn store(&self) -> PathBuf {
        self.path().join(".verbatim/store")
    }

    /// Every file under `dir`, relative, sorted (empty if `dir` is missing).
    /// The members of the build's assets pack (`.verbatim/build/assets.tar`),
    /// name to bytes.
    pub fn built_assets(&self) -> std::collections::BTreeMap<String, Vec<u8>> {
        let file = fs::File::open(self.path().join(".verbatim/build/assets.tar")).unwrap();
        let mut out = std::collections::BTreeMap::new();
        for entry in tar::Archive::new(file).entries().unwrap() {
            let mut entry = entry.unwrap();
            let name = entry.path().unwrap().to_string_lossy().into_owned();
            let mut bytes = Vec::new();
            std::io::Read::read_to_end(&mut entry, &mut bytes).unwrap();
            assert!(
                out.insert(name, bytes).is_none(),
                "a name twice in the pack"
            );
        }
        out
    }

    /// The bytes the last build packed for the asset stored at `key`
    /// (`assets/<name>`).
    pub fn built_asset(&self, key: &str) -> Vec<u8> {
        let name = key.strip_prefix("assets/").unwrap_or(key);
        self.built_assets()
            .remove(name)
            .unwrap_or_else(|| panic!("{name} is not in the assets pack"))
    }

    pub fn files_under(dir: &Path) -> Vec<String> {
        let mut out = Vec::new();
        let mut stack = vec![dir.to_owned()];
        while let Some(d) = stack.pop() {
            let Ok(rd) = fs::read_dir(&d) else { continue };
            for e in rd {
                let p = e.unwrap().path();
                if p.is_dir() && !p.is_symlink() {
                    stack.push(p);
                } else {
                    out.push(p.strip_prefix(dir).unwrap().display().to_string());
                }
            }
        }
        out.sort();
        out
    }
}

/// The binary, run in `dir` with a clean environment: no `VERBATIM_*`,
/// AWS or CI variables leak in.
pub fn cmd_in(dir: &Path, args: &[&str]) -> Command {
    cmd_of(Path::new(BIN), dir, args)
}

/// [`cmd_in`], running the binary at `bin` (a copy another user can run).
pub fn cmd_of(bin: &Path, dir: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(bin);
    c.current_dir(dir).args(args);
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy().into_owned();
        // Hermetic: no settings, credentials or CI provenance leak in.
        let ci = ["GITHUB_", "CI_", "BUILDKITE_"]
            .iter()
            .any(|p| k.starts_with(p));
        if k.starts_with("VERBATIM_") || k == "SOURCE_DATE_EPOCH" || k.starts_with("AWS_") || ci {
            c.env_remove(k);
        }
    }
    c.env("CI", "true");
    c
}

/// Runs `cmd`, asserts it succeeded (showing its stderr if not), returns stdout.
pub fn success(cmd: &mut Command) -> Vec<u8> {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("running {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed ({:?}):\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Runs `cmd`, asserts success, parses stdout as one JSON document.
pub fn json_out(cmd: &mut Command) -> serde_json::Value {
    let out = success(cmd);
    serde_json::from_slice(&out).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}): {}",
            String::from_utf8_lossy(&out)
        )
    })
}

/// Runs `cmd`, asserts its exit code, returns its stderr.
pub fn exits(cmd: &mut Command, code: i32) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("running {cmd:?}: {e}"));
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(
        out.status.code(),
        Some(code),
        "{cmd:?}: wrong exit code; stderr:\n{stderr}"
    );
    stderr
}

/// The strings of a JSON array.
pub fn strings(v: &serde_json::Value) -> Vec<&str> {
    v.as_array()
        .unwrap_or_else(|| panic!("not an array: {v}"))
        .iter()
        .map(|s| s.as_str().unwrap_or_else(|| panic!("not a string: {s}")))
        .collect()
}

/// Whether the tests run as root (needed to chown and mknod); says so when not.
pub fn is_root() -> bool {
    let root = Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout.starts_with(b"0\n"))
        .unwrap_or(false);
    if !root {
        eprintln!("NOTE: not root: skipping the parts of this test that need root (chown, mknod)");
    }
    root
}

/// What [`bounded`] saw: the output, and the child's peak resident memory.
pub struct Bounded {
    pub out: Output,
    pub peak_rss_mib: u64,
}

/// Runs `cmd` with stdin closed, killing it (and failing the test) if it
/// outlives `secs`; reports its peak RSS from the kernel (`wait4`). For
/// hostile inputs, where a hang or a blow-up is the bug being tested.
// The child is reaped by wait4/waitpid below, which clippy cannot see.
#[allow(clippy::zombie_processes)]
pub fn bounded(cmd: &mut Command, secs: u64) -> Bounded {
    use std::io::Read;
    use std::process::Stdio;
    use std::time::{Duration, Instant};
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("running {cmd:?}: {e}"));
    let (mut so, mut se) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
    let out_t = std::thread::spawn(move || {
        let mut b = Vec::new();
        let _ = so.read_to_end(&mut b);
        b
    });
    let err_t = std::thread::spawn(move || {
        let mut b = Vec::new();
        let _ = se.read_to_end(&mut b);
        b
    });
    let pid = child.id() as libc::pid_t;
    let deadline = Instant::now() + Duration::from_secs(secs);
    let (status, rusage) = loop {
        let mut status = 0;
        // SAFETY: a zeroed rusage is a valid out-parameter for wait4.
        let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: pid is our own child, not yet reaped (we never call
        // Child::wait); status and ru are valid for writes.
        let r = unsafe { libc::wait4(pid, &mut status, libc::WNOHANG, &mut ru) };
        if r == pid {
            break (status, ru);
        }
        assert!(r == 0, "wait4: {}", std::io::Error::last_os_error());
        if Instant::now() >= deadline {
            let _ = child.kill();
            // SAFETY: as above; reap the killed child.
            unsafe { libc::waitpid(pid, &mut status, 0) };
            panic!("{cmd:?} did not finish within {secs} s (killed)");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let out = Output {
        status: std::os::unix::process::ExitStatusExt::from_raw(status),
        stdout: out_t.join().unwrap(),
        stderr: err_t.join().unwrap(),
    };
    Bounded {
        out,
        peak_rss_mib: u64::try_from(rusage.ru_maxrss).unwrap_or(0) / 1024,
    }
}

impl Bounded {
    /// Asserts the exit code and a memory ceiling; returns stderr.
    pub fn exits(&self, code: i32, max_rss_mib: u64) -> String {
        let stderr = String::from_utf8_lossy(&self.out.stderr).into_owned();
        assert_eq!(
            self.out.status.code(),
            Some(code),
            "wrong exit code; stderr:\n{stderr}"
        );
        assert!(
            self.peak_rss_mib <= max_rss_mib,
            "peak RSS {} MiB is over the {max_rss_mib} MiB bound; stderr:\n{stderr}",
            self.peak_rss_mib
        );
        stderr
    }
}

/// Starts every command at once, racer `i` acting as `racer-i` (stdout
/// discarded, stderr kept), and waits for all: each racer's output, in order.
pub fn race(cmds: impl IntoIterator<Item = Command>) -> Vec<Output> {
    use std::process::Stdio;
    let children: Vec<std::process::Child> = cmds
        .into_iter()
        .enumerate()
        .map(|(i, mut c)| {
            c.env("VERBATIM_ACTOR", format!("racer-{i}"))
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap_or_else(|e| panic!("starting {c:?}: {e}"))
        })
        .collect();
    children
        .into_iter()
        .map(|c| c.wait_with_output().unwrap())
        .collect()
}

/// A TCP socket bound to a free loopback port that never listens, so a
/// connection to the port is refused, and its port.
pub fn bound_not_listening() -> (std::os::fd::OwnedFd, u16) {
    use std::os::fd::FromRawFd;
    // SAFETY: plain socket calls on a descriptor this function owns; the
    // address structs are zeroed and sized as the kernel expects.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
        assert!(fd >= 0, "socket: {}", std::io::Error::last_os_error());
        let fd = std::os::fd::OwnedFd::from_raw_fd(fd);
        let mut addr: libc::sockaddr_in = std::mem::zeroed();
        addr.sin_family = libc::AF_INET as libc::sa_family_t;
        addr.sin_addr.s_addr = u32::from(std::net::Ipv4Addr::LOCALHOST).to_be();
        let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
        let raw = std::os::fd::AsRawFd::as_raw_fd(&fd);
        let at = (&raw const addr).cast::<libc::sockaddr>();
        assert_eq!(
            libc::bind(raw, at, len),
            0,
            "bind: {}",
            std::io::Error::last_os_error()
        );
        let mut got: libc::sockaddr_in = std::mem::zeroed();
        let mut got_len = len;
        let at = (&raw mut got).cast::<libc::sockaddr>();
        assert_eq!(libc::getsockname(raw, at, &mut got_len), 0);
        (fd, u16::from_be(got.sin_port))
    }
}

/// `len` bytes that do not compress, the same on every run.
pub fn noise(len: usize) -> Vec<u8> {
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}
