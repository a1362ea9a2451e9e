//! `cargo xtask bench s3`: publishing 10,000 small assets and a ~200 MiB
//! artifact to each local S3-compatible server (s3s-fs, then a one-node
//! Ceph radosgw), cold and warm, against `aws s3 sync`,
//! `rclone copy --transfers 16` and `s5cmd sync` of the same objects (the
//! fingerprinted assets, the artifact and the manifest) to the same
//! server, in three alternating rounds (medians). Prints, never asserts.

use std::fs;
use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::bench::{measure, median_wall, peak_mib, release_binary, Measured};
use crate::{setup, Result};

const ASSETS: usize = 10_000;
const KEY: &str = "bench";
const SECRET: &str = "bench-secret";

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn io(e: std::io::Error) -> String {
    e.to_string()
}

/// The app: one incompressible ~200 MiB file; static/: 10,000 small files.
fn generate(dir: &Path) -> Result {
    let marker = dir.join(".complete");
    if marker.exists() {
        return Ok(());
    }
    let _ = fs::remove_dir_all(dir);
    fs::create_dir_all(dir.join("app")).map_err(io)?;
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut f = fs::File::create(dir.join("app/model.bin")).map_err(io)?;
    for _ in 0..200 {
        let block: Vec<u8> = (0..(1 << 17))
            .flat_map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x.to_le_bytes()
            })
            .collect();
        f.write_all(&block).map_err(io)?;
    }
    for i in 0..ASSETS {
        let sub = dir.join(format!("static/d{:03}", i / 100));
        fs::create_dir_all(&sub).map_err(io)?;
        let body = format!(
            "/* asset {i} */\n.a{i} {{ color: #{:06x}; }}\n",
            i * 2654435761 % 0xffffff
        );
        fs::write(sub.join(format!("s{i:05}.css")), body).map_err(io)?;
    }
    fs::write(
        dir.join("verbatim.toml"),
        "[app]\ndir = \"app\"\n\n[assets]\ndir = \"static\"\n",
    )
    .map_err(io)?;
    fs::write(&marker, "").map_err(io)
}

/// An S3-compatible server for the bench, stopped on drop.
pub(crate) struct Endpoint {
    name: &'static str,
    pub(crate) url: String,
    server: Option<Server>,
    /// For radosgw: the cluster directory to stop.
    ceph: Option<std::path::PathBuf>,
    /// For s3s-fs: its data, removed once it has stopped.
    data: Option<std::path::PathBuf>,
}

impl Drop for Endpoint {
    fn drop(&mut self) {
        if let Some(dir) = &self.ceph {
            let _ = Command::new("bash")
                .arg(crate::root().join("tests/ceph/cluster.sh"))
                .arg("down")
                .arg(dir)
                .status();
        }
        if let Some(data) = &self.data {
            drop(self.server.take());
            let trash = data.parent().map(|base| base.join("trash"));
            let _ = trash.map(|trash| set_aside(data, &trash));
        }
    }
}

fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")
        .map_err(io)?
        .local_addr()
        .map_err(io)?
        .port())
}

pub(crate) fn s3s_fs(base: &Path) -> Result<Endpoint> {
    let s3s = setup::s3s_fs_release()?;
    // A data directory of its own, set aside into `trash` when the server
    // stops and deleted by whoever owns `base` when nothing is measured:
    // ext4 scans past inodes freed in the last half minute when it
    // allocates, so deleting objects would slow the next writes.
    let data = base.join(format!("s3-data-{}", stamp()));
    for bucket in BUCKETS {
        fs::create_dir_all(data.join(bucket)).map_err(io)?;
    }
    let port = free_port()?;
    let server = Server(
        Command::new(s3s)
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .args(["--access-key", KEY, "--secret-key", SECRET])
            .arg(&data)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(io)?,
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if Instant::now() > deadline {
            return Err("s3s-fs did not start".into());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(Endpoint {
        name: "s3s-fs",
        url: format!("http://127.0.0.1:{port}"),
        server: Some(server),
        ceph: None,
        data: Some(data),
    })
}

/// A fresh one-node Ceph cluster (tests/ceph/cluster.sh) with the buckets.
fn radosgw(base: &Path, aws: &str) -> Result<Endpoint> {
    setup::ceph()?;
    let dir = base.join("ceph");
    let out = Command::new("bash")
        .arg(crate::root().join("tests/ceph/cluster.sh"))
        .arg("up")
        .arg(&dir)
        .args([free_port()?.to_string(), free_port()?.to_string()])
        .args([KEY, SECRET])
        .stderr(Stdio::inherit())
        .output()
        .map_err(io)?;
    if !out.status.success() {
        return Err("starting Ceph failed (see above)".into());
    }
    let url = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    let endpoint = Endpoint {
        name: "radosgw",
        url,
        server: None,
        ceph: Some(dir),
        data: None,
    };
    for bucket in BUCKETS {
        let mut c = Command::new(aws);
        c.args([
            "s3api",
            "create-bucket",
            "--bucket",
            bucket,
            "--endpoint-url",
            &endpoint.url,
        ]);
        env(&mut c);
        if !c.status().map_err(io)?.success() {
            return Err(format!("creating bucket {bucket} on radosgw failed"));
        }
    }
    Ok(endpoint)
}

pub(crate) const BUCKETS: [&str; 4] = ["verbatim", "sync", "rclone", "s5cmd"];

pub(crate) fn env(c: &mut Command) {
    c.env("AWS_ACCESS_KEY_ID", KEY)
        .env("AWS_SECRET_ACCESS_KEY", SECRET)
        .env("AWS_REGION", "us-east-1")
        .env("AWS_DEFAULT_REGION", "us-east-1")
        // Everything is given: never probe the instance metadata address.
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .stdout(Stdio::null());
}

pub fn s3() -> Result {
    let bin = release_binary()?;
    let aws = setup::awscli()?;
    let peers = Peers {
        aws,
        rclone: setup::rclone()?,
        s5cmd: setup::s5cmd()?,
    };
    let base = std::env::temp_dir().join("verbatim-bench-s3");
    generate(&base)?;
    crate::bench::warm_cache(&base, "static");
    crate::bench::warm_cache(&base, "app");
    println!("publish {ASSETS} assets + a ~200 MiB artifact, cold and warm, on loopback");
    println!("  peers upload the same objects: the 10,000 fingerprinted assets, the artifact, the manifest");
    println!("  targets: cold >= 10x aws s3 sync, >= 1.5x rclone; warm (nothing changed) >= 50x aws, >= 20x rclone, >= 20x s5cmd\n");
    // Nothing is deleted until the end: on ext4 without a journal, every
    // file created in the half minute after a large delete scans past the
    // freed inodes, and the first contender would pay for it.
    let trash = base.join("trash");
    set_aside(&base.join(".verbatim"), &trash)?;
    let built = measure(
        Command::new(&bin)
            .args(["build", "--quiet", "--no-progress"])
            .current_dir(&base)
            .stdout(Stdio::null()),
    )?;
    println!("the first build alone: {:.3} s\n", built.wall.as_secs_f64());
    let dir = peer_tree(&base, &trash)?;
    // One server at a time: an idle Ceph still takes CPU from the other.
    bench_one(&s3s_fs(&base)?, &bin, &peers, &base, dir)?;
    bench_one(&radosgw(&base, &peers.aws)?, &bin, &peers, &base, dir)?;
    let _ = fs::remove_dir_all(base.join(dir));
    let _ = fs::remove_dir_all(trash);
    // What an interrupted run left behind.
    for entry in fs::read_dir(&base).map_err(io)?.flatten() {
        if entry.file_name().to_string_lossy().starts_with("s3-data-") {
            let _ = fs::remove_dir_all(entry.path());
        }
    }
    Ok(())
}

/// Moves `path`, if it is there, into `trash`, to be deleted at the end.
fn set_aside(path: &Path, trash: &Path) -> Result {
    if !path.exists() {
        return Ok(());
    }
    fs::create_dir_all(trash).map_err(io)?;
    fs::rename(path, trash.join(stamp().to_string())).map_err(io)
}

/// Nanoseconds since the epoch: a name no earlier run has used.
fn stamp() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos())
}

/// The peers' commands: awscli, rclone and s5cmd.
struct Peers {
    aws: String,
    rclone: String,
    s5cmd: String,
}

impl Peers {
    /// Each peer's command that uploads `dir` (relative to `base`) to its
    /// own bucket, as its users would run it.
    fn commands(
        &self,
        endpoint: &str,
        base: &Path,
        dir: &str,
        round: usize,
    ) -> Vec<(&'static str, Command)> {
        let mut aws = Command::new(&self.aws);
        aws.args([
            "s3",
            "sync",
            "--only-show-errors",
            dir,
            &format!("s3://sync/r{round}/"),
        ])
        .args(["--endpoint-url", endpoint]);
        let mut rclone = Command::new(&self.rclone);
        rclone
            .args(["copy", "-q", "--transfers", "16", "--checkers", "16", dir])
            .arg(format!("bench:rclone/r{round}"))
            .env("RCLONE_CONFIG_BENCH_TYPE", "s3")
            .env("RCLONE_CONFIG_BENCH_PROVIDER", "Other")
            .env("RCLONE_CONFIG_BENCH_ENDPOINT", endpoint)
            .env("RCLONE_CONFIG_BENCH_ACCESS_KEY_ID", KEY)
            .env("RCLONE_CONFIG_BENCH_SECRET_ACCESS_KEY", SECRET)
            .env("RCLONE_CONFIG_BENCH_FORCE_PATH_STYLE", "true");
        let mut s5cmd = Command::new(&self.s5cmd);
        s5cmd
            .args(["--endpoint-url", endpoint, "sync"])
            .arg(format!("{dir}/"))
            .arg(format!("s3://s5cmd/r{round}/"));
        let mut all = vec![("aws s3 sync", aws), ("rclone", rclone), ("s5cmd", s5cmd)];
        for (_, c) in &mut all {
            c.current_dir(base);
            env(c);
        }
        all
    }
}

/// What the peers upload: the build's assets as verbatim stores them
/// (unpacked from `assets.tar`, fingerprinted names), the artifact and
/// the manifest.
fn peer_tree(base: &Path, trash: &Path) -> Result<&'static str> {
    const DIR: &str = "peer-upload";
    let dir = base.join(DIR);
    set_aside(&dir, trash)?;
    fs::create_dir_all(dir.join("assets")).map_err(io)?;
    let build = base.join(".verbatim/build");
    let untar = Command::new("tar")
        .arg("-xf")
        .arg(build.join("assets.tar"))
        .arg("-C")
        .arg(dir.join("assets"))
        .status()
        .map_err(io)?;
    if !untar.success() {
        return Err("unpacking assets.tar for the peers failed".into());
    }
    for file in ["artifact.tar.gz", "manifest.json"] {
        fs::hard_link(build.join(file), dir.join(file)).map_err(io)?;
    }
    Ok(DIR)
}

/// Rounds of every contender, alternating; each round writes under a
/// prefix of its own, so that its first upload is cold.
const ROUNDS: usize = 3;

/// One contender's runs: the cold upload, then the same again (warm).
#[derive(Default)]
struct Runs {
    cold: Vec<Measured>,
    warm: Vec<Measured>,
}

fn bench_one(server: &Endpoint, bin: &Path, peers: &Peers, base: &Path, dir: &str) -> Result {
    let endpoint = &server.url;
    let publish = |round: usize, prebuilt: bool| {
        let mut c = Command::new(bin);
        c.args(["publish", "--quiet", "--no-progress", "--store"])
            .arg(format!("s3://verbatim/r{round}"))
            .args(["--endpoint-url", endpoint, "--path-style"])
            .current_dir(base);
        if prebuilt {
            c.arg("--prebuilt");
        }
        env(&mut c);
        measure(&mut c)
    };
    let (mut ours, mut ours_nocheck) = (Runs::default(), Vec::new());
    let mut peer_runs: Vec<(&str, Runs)> = Vec::new();
    for round in 0..ROUNDS {
        ours.cold.push(publish(round, true)?);
        // What a CI job runs again with nothing changed: the build
        // cache's check, then the store's.
        ours.warm.push(publish(round, false)?);
        ours_nocheck.push(publish(round, true)?);
        for (i, (name, mut c)) in peers
            .commands(endpoint, base, dir, round)
            .into_iter()
            .enumerate()
        {
            if peer_runs.len() <= i {
                peer_runs.push((name, Runs::default()));
            }
            peer_runs[i].1.cold.push(measure(&mut c)?);
            peer_runs[i].1.warm.push(measure(&mut c)?);
        }
    }
    println!("{} (medians of {ROUNDS} alternating rounds):", server.name);
    let line = |what: &str, ours: f64, peers_warm: bool| {
        let mut text = format!("  {what:<26} verbatim {ours:>7.3} s");
        for (name, runs) in &peer_runs {
            let peer = median_wall(if peers_warm { &runs.warm } else { &runs.cold });
            text += &format!("   {name} {peer:>6.2} s ({:>5.1}x)", peer / ours);
        }
        println!("{text}");
    };
    line("cold", median_wall(&ours.cold), false);
    line("warm, nothing changed", median_wall(&ours.warm), true);
    line("warm, publish --prebuilt", median_wall(&ours_nocheck), true);
    println!(
        "  peak RSS cold: verbatim {:.1} MiB{}\n",
        peak_mib(&ours.cold),
        peer_runs
            .iter()
            .map(|(name, runs)| format!(", {name} {:.1} MiB", peak_mib(&runs.cold)))
            .collect::<String>()
    );
    Ok(())
}
