//! Deploys under a real web server: nginx serves `<root>/current/` while
//! `verbatim deploy` flips `current` back and forth between two releases,
//! and a load client checks that no request fails and that every body is
//! exactly one release's file, never a mix and never a 404.
//!
//! Needs nginx (`/usr/sbin/nginx`, or `VERBATIM_TEST_NGINX`): `cargo xtask
//! ci` installs Debian's package when root. Without it the test fails; it
//! never skips. Every nginx here is the test's own, in the foreground on a
//! free loopback port, with its config, pid, logs and temp files in a temp
//! directory; the package's service is never used.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use verbatim::digest::Digest;

use crate::util::{is_root, Project};

/// A running nginx serving `<root>/current/` on 127.0.0.1, ended (and
/// reaped, workers included) on drop.
pub struct Nginx {
    child: Child,
    dir: tempfile::TempDir,
    pub addr: SocketAddr,
}

impl Nginx {
    /// Starts nginx with `root <root>/current;` and waits until it answers.
    /// Panics when nginx is not installed: this test never skips.
    pub fn start(root: &Path) -> Nginx {
        let root = root.display().to_string();
        Nginx::start_servers(move |addr, _| {
            format!("server {{\n    listen {addr};\n    root {root}/current;\n}}\n")
        })
    }

    /// Starts nginx with `http` added to its `http` block and one server
    /// listening on its address, `server` its body.
    pub fn with(http: &str, server: &str) -> Nginx {
        let (http, server) = (http.to_owned(), server.to_owned());
        Nginx::start_servers(move |addr, _| {
            format!("{http}\nserver {{\n    listen {addr};\n    {server}\n}}\n")
        })
    }

    /// Starts nginx with the `server` blocks `servers(addr, dir)` gives (its
    /// address; its own temp directory, for logs: the log format `status`
    /// writes `$host $status $request_uri`), and waits until it answers.
    pub fn start_servers(servers: impl FnOnce(SocketAddr, &Path) -> String) -> Nginx {
        let bin = std::env::var_os("VERBATIM_TEST_NGINX")
            .map_or_else(|| PathBuf::from("/usr/sbin/nginx"), PathBuf::from);
        assert!(
            bin.is_file(),
            "nginx not found at {}: run `cargo xtask ci` as root, or \
             `apt-get install nginx`, or set VERBATIM_TEST_NGINX",
            bin.display()
        );
        let dir = tempfile::tempdir().expect("temp dir");
        let d = dir.path();
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free loopback port")
            .port();
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        // Temp dirs are 0700: workers read them only as the master's user.
        let user = if is_root() { "user root;\n" } else { "" };
        let servers = servers(addr, d);
        let conf = format!(
            "{user}worker_processes 2;\n\
             pid {d}/nginx.pid;\n\
             error_log {d}/error.log;\n\
             events {{ worker_connections 256; }}\n\
             http {{\n\
             \x20   access_log off;\n\
             \x20   open_file_cache off;\n\
             \x20   default_type application/octet-stream;\n\
             \x20   client_body_temp_path {d}/body;\n\
             \x20   proxy_temp_path {d}/proxy;\n\
             \x20   fastcgi_temp_path {d}/fastcgi;\n\
             \x20   uwsgi_temp_path {d}/uwsgi;\n\
             \x20   scgi_temp_path {d}/scgi;\n\
             \x20   log_format status '$host $status $request_uri';\n\
             {servers}\
             }}\n",
            d = d.display(),
        );
        fs::write(d.join("nginx.conf"), conf).unwrap();
        let stderr = fs::File::create(d.join("stderr.log")).unwrap();
        let child = Command::new(&bin)
            .arg("-p")
            .arg(d)
            .arg("-c")
            .arg(d.join("nginx.conf"))
            .arg("-e")
            .arg(d.join("error.log"))
            .args(["-g", "daemon off;"])
            // Its own group, so that drop can end stray workers too.
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", bin.display()));
        let nginx = Nginx { child, dir, addr };
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(addr).is_err() {
            assert!(!nginx.exited(), "nginx exited at start:\n{}", nginx.logs());
            assert!(
                Instant::now() < deadline,
                "nginx did not answer on {addr} within 20 s:\n{}",
                nginx.logs()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        nginx
    }

    /// Its own temp directory (config, logs).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// nginx's stderr and the last 20 lines of its error log, for failure
    /// messages.
    pub fn logs(&self) -> String {
        let read = |f: &str| fs::read_to_string(self.dir.path().join(f)).unwrap_or_default();
        let log = read("error.log");
        let lines: Vec<&str> = log.lines().collect();
        let tail = lines[lines.len().saturating_sub(20)..].join("\n");
        format!("{}{tail}", read("stderr.log"))
    }

    /// Whether the master has exited, without reaping it (its pid, and so
    /// its process group, stay ours until drop).
    fn exited(&self) -> bool {
        // SAFETY: a zeroed siginfo_t is a valid out-parameter for waitid.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        // SAFETY: our own unreaped child; WNOWAIT leaves it unreaped.
        let r = unsafe {
            libc::waitid(
                libc::P_PID,
                self.child.id(),
                &mut info,
                libc::WEXITED | libc::WNOHANG | libc::WNOWAIT,
            )
        };
        // SAFETY: si_pid is set by waitid when a child changed state.
        r == 0 && unsafe { info.si_pid() } != 0
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let pid = self.child.id() as libc::pid_t;
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

/// One request's outcome: status and the body's sha256 and length (bodies
/// are not kept: thousands of 256 KiB copies would not fit), or an error.
#[derive(Debug)]
pub struct Response {
    pub path: &'static str,
    pub result: Result<(u16, Digest, usize), String>,
}

/// Threads sending GETs to nginx in a loop until stopped; each records
/// every response.
pub struct Load {
    stop: Arc<AtomicBool>,
    done: Arc<AtomicUsize>,
    threads: Vec<JoinHandle<Vec<Response>>>,
}

impl Load {
    /// `threads` clients cycling through `paths`; even ones keep their
    /// connection alive, odd ones send `Connection: close`.
    pub fn start(addr: SocketAddr, paths: &[&'static str], threads: usize) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let done = Arc::new(AtomicUsize::new(0));
        let threads = (0..threads)
            .map(|i| {
                let (stop, done) = (stop.clone(), done.clone());
                let paths = paths.to_vec();
                std::thread::spawn(move || {
                    let keep_alive = i % 2 == 0;
                    let mut conn: Option<BufReader<TcpStream>> = None;
                    let mut out = Vec::new();
                    for path in paths.iter().cycle().skip(i) {
                        if stop.load(Ordering::Relaxed) {
                            break;
                        }
                        let result = get(addr, &mut conn, path, keep_alive);
                        if result.is_err() {
                            conn = None;
                        }
                        out.push(Response { path, result });
                        done.fetch_add(1, Ordering::Relaxed);
                    }
                    out
                })
            })
            .collect();
        Load {
            stop,
            done,
            threads,
        }
    }

    /// Responses recorded so far, all threads together.
    pub fn count(&self) -> usize {
        self.done.load(Ordering::Relaxed)
    }

    /// Waits until `n` more responses are recorded; panics if the clients
    /// stall for 30 s.
    pub fn wait_for(&self, n: usize) {
        let target = self.count() + n;
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.count() < target {
            assert!(
                Instant::now() < deadline,
                "the load client stalled at {} responses",
                self.count()
            );
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// Stops the clients; every response, thread by thread.
    pub fn stop(mut self) -> Vec<Response> {
        self.stop.store(true, Ordering::Relaxed);
        std::mem::take(&mut self.threads)
            .into_iter()
            .flat_map(|t| t.join().expect("a load thread panicked"))
            .collect()
    }
}

impl Drop for Load {
    /// A test that panics mid-load leaves no client looping behind it.
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// One HTTP/1.1 GET on `conn` (opened when `None`); leaves `conn` open only
/// when both sides keep the connection alive.
fn get(
    addr: SocketAddr,
    conn: &mut Option<BufReader<TcpStream>>,
    path: &str,
    keep_alive: bool,
) -> Result<(u16, Digest, usize), String> {
    if conn.is_none() {
        let s = TcpStream::connect(addr).map_err(|e| format!("connect: {e}"))?;
        for t in [
            s.set_read_timeout(Some(Duration::from_secs(10))),
            s.set_write_timeout(Some(Duration::from_secs(10))),
        ] {
            t.map_err(|e| format!("timeout: {e}"))?;
        }
        *conn = Some(BufReader::new(s));
    }
    let r = conn.as_mut().expect("just opened");
    let close = if keep_alive {
        ""
    } else {
        "Connection: close\r\n"
    };
    write!(
        r.get_mut(),
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{close}\r\n"
    )
    .map_err(|e| format!("send: {e}"))?;
    let mut line = String::new();
    let head = |r: &mut BufReader<TcpStream>, line: &mut String| {
        line.clear();
        match r.read_line(line) {
            Ok(0) => Err("connection closed before the response ended".to_owned()),
            Ok(_) => Ok(line.trim_end().to_owned()),
            Err(e) => Err(format!("receive: {e}")),
        }
    };
    let status_line = head(r, &mut line)?;
    let mut parts = status_line.splitn(3, ' ');
    let version = parts.next().unwrap_or("");
    let status: u16 = parts
        .next()
        .and_then(|s| s.parse().ok())
        .filter(|_| version.starts_with("HTTP/1."))
        .ok_or_else(|| format!("bad status line {status_line:?}"))?;
    let mut length = None;
    let mut server_closes = version == "HTTP/1.0";
    loop {
        let h = head(r, &mut line)?;
        if h.is_empty() {
            break;
        }
        let (name, value) = h
            .split_once(':')
            .ok_or_else(|| format!("bad header {h:?}"))?;
        let value = value.trim();
        match name.to_ascii_lowercase().as_str() {
            "content-length" => {
                length = Some(
                    value
                        .parse::<usize>()
                        .map_err(|_| format!("bad Content-Length {value:?}"))?,
                );
            }
            "transfer-encoding" => return Err(format!("unexpected Transfer-Encoding {value}")),
            "connection" if value.eq_ignore_ascii_case("close") => server_closes = true,
            _ => {}
        }
    }
    let length = length.ok_or_else(|| format!("{status} without Content-Length"))?;
    let mut body = vec![0; length];
    r.read_exact(&mut body)
        .map_err(|e| format!("body ({length} bytes): {e}"))?;
    if server_closes || !keep_alive {
        *conn = None;
    }
    Ok((status, Digest::of(&body), length))
}

/// The paths the load client asks for, and the file each one serves.
const PATHS: [(&str, &str); 4] = [
    ("/", "index.html"),
    ("/index.html", "index.html"),
    ("/a/b.txt", "a/b.txt"),
    ("/big.bin", "big.bin"),
];

/// Publishes a release whose every file names `name`; returns its manifest
/// id and the digest of each path's body.
fn release(p: &Project, name: &str) -> (String, BTreeMap<&'static str, Digest>) {
    let mut files = BTreeMap::new();
    files.insert(
        "index.html",
        format!("<!doctype html><title>release {name}</title>\n").into_bytes(),
    );
    files.insert("a/b.txt", format!("release {name}\n").into_bytes());
    // ~256 KiB, the same size in both releases: a mix would still differ.
    let mut big = String::new();
    for i in 0.. {
        if big.len() >= 256 * 1024 {
            break;
        }
        big.push_str(&format!("release {name}, line {i:06}\n"));
    }
    files.insert("big.bin", big.into_bytes());
    for (rel, bytes) in &files {
        p.write(&format!("app/{rel}"), bytes);
    }
    let m = p.json(&["publish"])["manifest"]
        .as_str()
        .expect("publish prints the manifest")
        .to_owned();
    let bodies = PATHS
        .iter()
        .map(|(path, file)| (*path, Digest::of(&files[file])))
        .collect();
    (m, bodies)
}

/// `verbatim deploy MANIFEST --root ROOT --store STORE`, which must succeed.
fn deploy(p: &Project, manifest: &str, root: &Path) {
    let store = p.store();
    let out = p
        .cmd(&["deploy", manifest, "--root"])
        .arg(root)
        .arg("--store")
        .arg(&store)
        .output()
        .expect("running verbatim deploy");
    assert!(
        out.status.success(),
        "verbatim deploy {manifest} failed ({:?}):\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn deploy_flips_under_nginx_load_without_a_failed_request() {
    let p = Project::new();
    let (a, a_bodies) = release(&p, "A");
    let (b, b_bodies) = release(&p, "B");
    assert_ne!(a, b);
    let root = tempfile::tempdir().unwrap();
    deploy(&p, &a, root.path());
    let nginx = Nginx::start(root.path());
    let paths: Vec<&'static str> = PATHS.iter().map(|(path, _)| *path).collect();
    let load = Load::start(nginx.addr, &paths, 4);
    load.wait_for(20);
    let flips = 60;
    let mut last = &a;
    let started = std::time::Instant::now();
    for i in 0..flips {
        last = if i % 2 == 0 { &b } else { &a };
        deploy(&p, last, root.path());
        // Every release is live under load for a while before the next flip.
        load.wait_for(10);
    }
    let responses = load.stop();
    eprintln!(
        "{flips} deploys in {:.1}s under {} requests",
        started.elapsed().as_secs_f64(),
        responses.len()
    );

    let mut failures = Vec::new();
    let mut seen = BTreeSet::new();
    for r in &responses {
        match &r.result {
            Ok((200, body, _)) if *body == a_bodies[r.path] => {
                seen.insert((r.path, "A"));
            }
            Ok((200, body, _)) if *body == b_bodies[r.path] => {
                seen.insert((r.path, "B"));
            }
            Ok((status, _, len)) => {
                failures.push(format!(
                    "{}: {status}, a {len}-byte body of neither release",
                    r.path
                ));
            }
            Err(e) => failures.push(format!("{}: {e}", r.path)),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} requests failed during {flips} deploys, e.g. {:#?}\nnginx:\n{}",
        failures.len(),
        responses.len(),
        &failures[..failures.len().min(10)],
        nginx.logs()
    );
    assert!(
        responses.len() >= 20 + flips * 10,
        "only {} requests",
        responses.len()
    );
    for (path, _) in PATHS {
        for name in ["A", "B"] {
            assert!(
                seen.contains(&(path, name)),
                "{path} never served release {name} ({} requests)",
                responses.len()
            );
        }
    }

    // `current` is a relative symlink to the release deployed last.
    let current = root.path().join("current");
    let meta = fs::symlink_metadata(&current).unwrap();
    assert!(meta.file_type().is_symlink(), "current is not a symlink");
    let hex = last.strip_prefix("sha256:").expect("a sha256 manifest id");
    assert_eq!(
        fs::read_link(&current).unwrap(),
        Path::new("releases").join(hex)
    );
    assert!(root.path().join("releases").join(hex).is_dir());
}
