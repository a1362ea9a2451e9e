//! `cargo xtask bench fleet`: 6, 12 and 24 real agents on loopback, each
//! with its own root, following one environment on s3s-fs through a
//! counting proxy of its own. For each fleet size it moves the
//! environment all at once, in waves (`1,50%,100%`, no bake) and
//! blue/green, and prints the time from promote to every host converged,
//! the store requests per host per minute (idle and during each move),
//! and the mixed-version window (first flip to last, from every root's
//! `current` polled every 5 ms). Prints, never asserts.

use std::fs;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::bench_s3::{env as store_env, s3s_fs, BUCKETS};
use crate::Result;

const SIZES: [usize; 3] = [6, 12, 24];
const INTERVAL: &str = "5s";
const IDLE: Duration = Duration::from_secs(30);

fn io(e: std::io::Error) -> String {
    e.to_string()
}

/// A TCP proxy to `upstream` counting the HTTP requests passing through
/// (request lines ending in ` HTTP/1.1`).
struct Proxy {
    port: u16,
    requests: Arc<AtomicU64>,
}

impl Proxy {
    fn start(upstream: u16) -> Result<Proxy> {
        let listener = TcpListener::bind("127.0.0.1:0").map_err(io)?;
        let port = listener.local_addr().map_err(io)?.port();
        let requests = Arc::new(AtomicU64::new(0));
        let counted = requests.clone();
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)) else {
                    continue;
                };
                let (c2, s2) = match (client.try_clone(), server.try_clone()) {
                    (Ok(c), Ok(s)) => (c, s),
                    _ => continue,
                };
                let n = counted.clone();
                std::thread::spawn(move || pipe(client, server, Some(n)));
                std::thread::spawn(move || pipe(s2, c2, None));
            }
        });
        Ok(Proxy { port, requests })
    }

    fn take(&self) -> u64 {
        self.requests.swap(0, Ordering::Relaxed)
    }
}

/// Copies `from` to `to` until either closes, counting request lines.
fn pipe(mut from: TcpStream, mut to: TcpStream, count: Option<Arc<AtomicU64>>) {
    const MARK: &[u8] = b" HTTP/1.1\r\n";
    let mut buf = vec![0; 64 << 10];
    let mut tail: Vec<u8> = Vec::new();
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if let Some(c) = &count {
            tail.extend_from_slice(&buf[..n]);
            let hits = tail.windows(MARK.len()).filter(|w| *w == MARK).count();
            c.fetch_add(hits as u64, Ordering::Relaxed);
            let keep = tail.len().min(MARK.len() - 1);
            tail.drain(..tail.len() - keep);
        }
        if to.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    let _ = to.shutdown(std::net::Shutdown::Both);
}

struct Agent(Child);

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// One fleet: a project, its hosts and their proxies.
struct Fleet {
    bin: PathBuf,
    dir: PathBuf,
    store: String,
    s3_port: u16,
    proxies: Vec<Proxy>,
    agents: Vec<Agent>,
}

impl Fleet {
    fn cmd(&self, port: u16, args: &[&str]) -> Command {
        let mut c = Command::new(&self.bin);
        c.current_dir(&self.dir)
            .args(args)
            .args(["--store", &self.store, "--path-style", "--quiet"])
            .args(["--endpoint-url", &format!("http://127.0.0.1:{port}")]);
        store_env(&mut c);
        c.stdout(Stdio::piped());
        c
    }

    fn run(&self, args: &[&str]) -> Result<String> {
        let out = self
            .cmd(self.s3_port, args)
            .stderr(Stdio::inherit())
            .output()
            .map_err(io)?;
        if !out.status.success() {
            return Err(format!("verbatim {args:?} failed"));
        }
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    }

    fn release(&self, version: &str) -> Result<String> {
        fs::write(self.dir.join("app/version.txt"), version).map_err(io)?;
        let out = self.run(&["publish"])?;
        Ok(out.lines().last().unwrap_or_default().to_owned())
    }

    fn root(&self, i: usize) -> PathBuf {
        self.dir.join(format!("hosts/web-{i}"))
    }

    /// Per host, the hex `current` names.
    fn currents(&self) -> Vec<Option<String>> {
        (0..self.agents.len())
            .map(|i| {
                let t = fs::read_link(self.root(i).join("current")).ok()?;
                Some(t.to_str()?.strip_prefix("releases/")?.to_owned())
            })
            .collect()
    }

    fn requests(&self) -> u64 {
        self.proxies.iter().map(Proxy::take).sum()
    }

    /// Runs `move_it`, then polls every root until all run `manifest`:
    /// (seconds to converge, mixed-version window, requests per host per
    /// minute meanwhile).
    fn timed(
        &self,
        manifest: &str,
        move_it: impl FnOnce() -> Result + Send,
    ) -> Result<(f64, f64, f64)> {
        let hex = manifest.strip_prefix("sha256:").unwrap_or(manifest);
        self.requests();
        let start = Instant::now();
        let mover = std::thread::scope(|s| {
            let handle = s.spawn(move_it);
            let mut flipped: Vec<Option<f64>> = vec![None; self.agents.len()];
            while flipped.iter().any(Option::is_none) {
                for (i, c) in self.currents().into_iter().enumerate() {
                    if flipped[i].is_none() && c.as_deref() == Some(hex) {
                        flipped[i] = Some(start.elapsed().as_secs_f64());
                    }
                }
                if start.elapsed() > Duration::from_secs(300) {
                    return Err(format!("the fleet did not converge on {manifest} in 300 s"));
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            let joined = handle.join().map_err(|_| "the move panicked".to_owned())?;
            joined.map(|()| flipped)
        })?;
        let took = start.elapsed().as_secs_f64();
        let times: Vec<f64> = mover.into_iter().flatten().collect();
        let lo = times.iter().copied().fold(f64::MAX, f64::min);
        let hi = times.iter().copied().fold(0.0, f64::max);
        let per_min = self.requests() as f64 / self.agents.len() as f64 / took * 60.0;
        Ok((hi, hi - lo, per_min))
    }
}

pub fn fleet() -> Result {
    let bin = crate::bench::release_binary()?;
    let base = std::env::temp_dir().join("verbatim-bench-fleet");
    let _ = fs::remove_dir_all(&base);
    fs::create_dir_all(&base).map_err(io)?;
    let server = s3s_fs(&base)?;
    let s3_port: u16 = server
        .url
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .ok_or("s3s-fs url without a port")?;
    println!("a fleet of agents (--interval {INTERVAL}) on s3s-fs, each through a counting proxy");
    println!(
        "  targets: blue/green mixed-version window < 1 s; idle: 2 HEADs (pointer, config) a look and a report every 3 looks\n"
    );
    println!(
        "{:>6}  {:<12} {:>12} {:>14} {:>16}",
        "agents", "move", "converged", "mixed window", "req/host/min"
    );
    for n in SIZES {
        bench_size(&bin, &base, s3_port, n)?;
    }
    drop(server);
    Ok(())
}

fn bench_size(bin: &Path, base: &Path, s3_port: u16, n: usize) -> Result {
    let dir = base.join(format!("fleet-{n}"));
    fs::create_dir_all(dir.join("app")).map_err(io)?;
    fs::write(dir.join("verbatim.toml"), "[app]\ndir = \"app\"\n").map_err(io)?;
    let mut f = Fleet {
        bin: bin.to_owned(),
        store: format!("s3://{}/fleet-{n}", BUCKETS[0]),
        dir,
        s3_port,
        proxies: Vec::new(),
        agents: Vec::new(),
    };
    let v1 = f.release("v1")?;
    f.run(&["promote", &v1, "--to", "dev"])?;
    for i in 0..n {
        let proxy = Proxy::start(s3_port)?;
        let root = f.root(i);
        let child = f
            .cmd(proxy.port, &["agent", "dev", "--interval", INTERVAL])
            .args(["--host-id", &format!("web-{i}")])
            .arg("--root")
            .arg(&root)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(io)?;
        f.agents.push(Agent(child));
        f.proxies.push(proxy);
    }
    let hex1 = v1.trim_start_matches("sha256:").to_owned();
    let start = Instant::now();
    while f
        .currents()
        .iter()
        .any(|c| c.as_deref() != Some(hex1.as_str()))
    {
        if start.elapsed() > Duration::from_secs(300) {
            return Err(format!("{n} agents did not start on {v1}"));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    f.requests();
    std::thread::sleep(IDLE);
    let idle = f.requests() as f64 / n as f64 / IDLE.as_secs_f64() * 60.0;
    println!(
        "{n:>6}  {:<12} {:>12} {:>14} {idle:>16.1}",
        "idle", "-", "-"
    );
    let moves: [(&str, &[&str]); 3] = [
        ("all at once", &[]),
        ("waves", &["--waves", "1,50%,100%", "--bake", "0"]),
        ("blue/green", &["--strategy", "blue-green", "--bake", "0"]),
    ];
    for (i, (name, flags)) in moves.iter().enumerate() {
        let v = f.release(&format!("v{}", i + 2))?;
        let mut args = vec!["promote", v.as_str(), "--to", "dev"];
        args.extend_from_slice(flags);
        let (took, window, per_min) = f.timed(&v, || f.run(&args).map(drop))?;
        println!("{n:>6}  {name:<12} {took:>11.2}s {window:>13.3}s {per_min:>16.1}");
    }
    Ok(())
}
