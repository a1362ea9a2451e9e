//! A fleet under load: six hosts, each a root kept by a real `verbatim
//! agent` and a real HTTP app server answering from its `current/`, behind
//! one real nginx upstream, while a load client records every response's
//! host, release and time. A good release rolled out in waves serves no
//! failed request; a bad one (each host's own check passes, the
//! environment's check finds 500s) is aborted in its first wave and only
//! that wave's host ever served it; blue/green flips the fleet at one
//! switch. The mixed-version windows are printed (`cargo xtask bench
//! fleet` measures them against their targets; tests assert no timings).

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::nginx::Nginx;
use crate::rollout::{converge, Agent, Fleet};
use crate::util;

const HOSTS: usize = 6;

/// The app: answers `<host> <version>`, 500 when the release holds `bad`.
const APP: &str = r#"
import http.server, os, sys
root, host, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
class App(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        try:
            release = os.path.realpath(os.path.join(root, "current"))
            with open(os.path.join(release, "version.txt"), "rb") as f:
                version = f.read().strip()
            bad = os.path.exists(os.path.join(release, "bad"))
        except OSError:
            version, bad = b"none", False
        body = host.encode() + b" " + version
        self.send_response(500 if bad else 200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
http.server.ThreadingHTTPServer(("127.0.0.1", port), App).serve_forever()
"#;

/// The environment's check: 30 requests through nginx, every one a 200.
const CHECK: &str = r#"
import sys, urllib.request, urllib.error
for _ in range(30):
    try:
        urllib.request.urlopen(sys.argv[1], timeout=5).read()
    except urllib.error.HTTPError as e:
        print(f"{e.code} from {e.read().decode()}", file=sys.stderr)
        sys.exit(1)
"#;

/// An app server, killed on drop.
struct App(Child);

impl Drop for App {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// One response: seconds since the load started, status, host, version.
#[derive(Debug, Clone)]
struct Hit {
    at: f64,
    status: u16,
    host: String,
    version: String,
}

/// The load client: threads asking nginx for `/` back to back, every
/// response (or failure, status 0) recorded.
struct Load {
    stop: Arc<AtomicBool>,
    hits: Arc<Mutex<Vec<Hit>>>,
    threads: Vec<std::thread::JoinHandle<()>>,
    start: Instant,
}

impl Load {
    fn start(addr: SocketAddr, threads: usize) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let hits = Arc::new(Mutex::new(Vec::new()));
        let start = Instant::now();
        let threads = (0..threads)
            .map(|_| {
                let (stop, hits) = (stop.clone(), hits.clone());
                std::thread::spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        let hit = match get(addr) {
                            Ok((status, body)) => {
                                let (host, version) = body.split_once(' ').unwrap_or(("?", ""));
                                Hit {
                                    at: start.elapsed().as_secs_f64(),
                                    status,
                                    host: host.to_owned(),
                                    version: version.to_owned(),
                                }
                            }
                            Err(e) => Hit {
                                at: start.elapsed().as_secs_f64(),
                                status: 0,
                                host: String::new(),
                                version: e,
                            },
                        };
                        hits.lock().unwrap().push(hit);
                    }
                })
            })
            .collect();
        Load {
            stop,
            hits,
            threads,
            start,
        }
    }

    fn now(&self) -> f64 {
        self.start.elapsed().as_secs_f64()
    }

    /// The hits from `since` on.
    fn since(&self, since: f64) -> Vec<Hit> {
        let hits = self.hits.lock().unwrap();
        hits.iter().filter(|h| h.at >= since).cloned().collect()
    }

    fn stop(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            t.join().unwrap();
        }
    }
}

/// One `GET /` on a fresh connection: status and body.
fn get(addr: SocketAddr) -> Result<(u16, String), String> {
    let mut s = TcpStream::connect(addr).map_err(|e| format!("connect: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(|e| e.to_string())?;
    s.write_all(b"GET / HTTP/1.1\r\nHost: fleet\r\nConnection: close\r\n\r\n")
        .map_err(|e| format!("send: {e}"))?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)
        .map_err(|e| format!("receive: {e}"))?;
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text.split_once("\r\n\r\n").ok_or("no header end")?;
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| format!("bad status line in {head:?}"))?;
    Ok((status, body.to_owned()))
}

/// Per host, when it first served `version` (seconds since the load began).
fn first_served(hits: &[Hit], version: &str) -> BTreeMap<String, f64> {
    let mut first = BTreeMap::new();
    for h in hits
        .iter()
        .filter(|h| h.version == version && h.status != 0)
    {
        first.entry(h.host.clone()).or_insert(h.at);
    }
    first
}

/// The mixed-version window of a move to `version`: from the first host
/// serving it to the last, once all do.
fn window(hits: &[Hit], version: &str) -> f64 {
    let first = first_served(hits, version);
    assert_eq!(
        first.len(),
        HOSTS,
        "not every host served {version}: {first:?}"
    );
    let (lo, hi) = first
        .values()
        .fold((f64::MAX, 0f64), |(lo, hi), t| (lo.min(*t), hi.max(*t)));
    hi - lo
}

/// Waits until every hit from now on answers `version` from every host.
fn settled(load: &Load, version: &str) {
    let start = Instant::now();
    loop {
        let from = load.now();
        std::thread::sleep(Duration::from_millis(500));
        let hits = load.since(from);
        if !hits.is_empty() && hits.iter().all(|h| h.version == version) {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "never settled on {version}"
        );
    }
}

struct Setup {
    f: Fleet,
    agents: Vec<Agent>,
    _apps: Vec<App>,
    nginx: Nginx,
    check: String,
}

fn setup() -> Setup {
    let mut f = Fleet::new("[app]\ndir = \"app\"\n");
    f.interval = "2s";
    let app = f.hosts.path().join("app.py");
    std::fs::write(&app, APP).unwrap();
    let check = f.hosts.path().join("check.py");
    std::fs::write(&check, CHECK).unwrap();
    let v1 = f.release("v1");
    f.p.ok(&["promote", &v1, "--to", "dev"]);
    let agents: Vec<Agent> = (1..=HOSTS).map(|i| f.agent(i, &[])).collect();
    converge(&agents, &v1);
    let mut upstream = String::from("upstream fleet {");
    let apps = (1..=HOSTS)
        .map(|i| {
            let port = free_port();
            upstream.push_str(&format!(" server 127.0.0.1:{port};"));
            let child = Command::new("python3")
                .arg(&app)
                .arg(f.hosts.path().join(format!("web-{i}")))
                .arg(format!("web-{i}"))
                .arg(port.to_string())
                .stdin(Stdio::null())
                .spawn()
                .expect("python3 (the app server)");
            wait_port(port);
            App(child)
        })
        .collect();
    upstream.push_str(" }");
    let nginx = Nginx::with(&upstream, "location / { proxy_pass http://fleet; }");
    let check = format!("python3 {} http://{}/", check.display(), nginx.addr);
    Setup {
        f,
        agents,
        _apps: apps,
        nginx,
        check,
    }
}

fn wait_port(port: u16) {
    let start = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "app on {port} never answered"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_fleet_under_load_rolls_out_in_waves_aborts_a_bad_release_and_flips_blue_green() {
    let s = setup();
    let load = Load::start(s.nginx.addr, 4);
    settled(&load, "v1");

    // A good release, in waves: not one failed request, and at each
    // wave's check exactly that wave's hosts (and earlier ones) run it.
    let v2 = s.f.release("v2");
    let snap = s.f.hosts.path().join("snap");
    let from = load.now();
    let check = format!("{} && {}", s.f.snapshot_cmd(&snap), s.check);
    let out = s.f.p.json(&[
        "promote",
        &v2,
        "--to",
        "dev",
        "--waves",
        "1,50%,100%",
        "--bake",
        "2s",
        "--check-cmd",
        &check,
    ]);
    assert_eq!(out["rollout"]["state"], "completed", "{out:#}");
    converge(&s.agents, &v2);
    settled(&load, "v2");
    let hits = load.since(from);
    let failed: Vec<&Hit> = hits.iter().filter(|h| h.status != 200).collect();
    assert!(
        failed.is_empty(),
        "{} of {} requests failed: {:?}",
        failed.len(),
        hits.len(),
        &failed[..failed.len().min(5)]
    );
    let on_v2 = |k: u32| {
        let text = std::fs::read_to_string(snap.with_extension(k.to_string())).unwrap();
        let hex = v2.strip_prefix("sha256:").unwrap().to_owned();
        text.lines().filter(|l| l.ends_with(&hex)).count()
    };
    assert_eq!((on_v2(1), on_v2(2), on_v2(3)), (1, 3, HOSTS));
    println!("waves: {} requests, 0 failed", hits.len());

    // A bad release: every host's own check passes, the environment's
    // finds 500s in wave 1; aborted there, and only that host served it.
    s.f.p.write("app/bad", "");
    let v3 = s.f.release("v3");
    let from = load.now();
    let err = util::exits(
        &mut s.f.p.cmd(&[
            "promote",
            &v3,
            "--to",
            "dev",
            "--waves",
            "1,50%,100%",
            "--bake",
            "1s",
            "--check-cmd",
            &s.check,
        ]),
        6,
    );
    assert!(err.contains("check of wave 1 failed"), "{err}");
    converge(&s.agents, &v2);
    settled(&load, "v2");
    let hits = load.since(from);
    let served = first_served(&hits, "v3");
    assert_eq!(
        served.len(),
        1,
        "only wave 1's host served the bad release: {served:?}"
    );
    let bad = hits.iter().filter(|h| h.version == "v3").count();
    println!(
        "bad release: aborted in wave 1; blast radius {bad} of {} requests ({:.1} %), all from {:?}",
        hits.len(),
        100.0 * bad as f64 / hits.len() as f64,
        served.keys().collect::<Vec<_>>()
    );
    std::fs::remove_file(s.f.p.path().join("app/bad")).unwrap();

    // Blue/green, then all at once: the mixed-version windows.
    let v4 = s.f.release("v4");
    let from = load.now();
    let out = s.f.p.json(&[
        "promote",
        &v4,
        "--to",
        "dev",
        "--strategy",
        "blue-green",
        "--bake",
        "1s",
        "--check-cmd",
        &s.check,
    ]);
    assert_eq!(out["rollout"]["state"], "completed", "{out:#}");
    settled(&load, "v4");
    let blue_green = window(&load.since(from), "v4");
    let v5 = s.f.release("v5");
    let from = load.now();
    s.f.p.ok(&["promote", &v5, "--to", "dev"]);
    settled(&load, "v5");
    let at_once = window(&load.since(from), "v5");
    println!("mixed-version window over {HOSTS} hosts: blue/green {blue_green:.3} s, all at once {at_once:.3} s (agents' --interval {})", s.f.interval);
    let hits = load.since(0.0);
    assert!(
        hits.iter().all(|h| h.status != 0),
        "a request failed to connect"
    );
    load.stop();
}
