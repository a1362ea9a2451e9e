//! `cargo xtask bench s3`: publishing 10,000 small assets and a ~200 MiB
//! artifact to each local S3-compatible server (s3s-fs, then a one-node
//! Ceph radosgw), cold and warm, against `aws s3 sync` and
//! `rclone copy --transfers 16` of the same files to the same server.
//! Prints, never asserts.

use std::fs;
use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::bench::{measure, release_binary, Measured};
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
    _server: Option<Server>,
    /// For radosgw: the cluster directory to stop.
    ceph: Option<std::path::PathBuf>,
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
    let s3s = setup::s3s_fs()?;
    let data = base.join("s3-data");
    let _ = fs::remove_dir_all(&data);
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
        _server: Some(server),
        ceph: None,
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
        _server: None,
        ceph: Some(dir),
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

pub(crate) const BUCKETS: [&str; 3] = ["verbatim", "sync", "rclone"];

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
    let rclone = setup::rclone()?;
    let base = std::env::temp_dir().join("verbatim-bench-s3");
    generate(&base)?;
    crate::bench::warm_cache(&base, "static");
    crate::bench::warm_cache(&base, "app");
    println!("publish {ASSETS} assets + a ~200 MiB artifact, cold and warm, on loopback");
    println!("  targets: cold >= 10x aws s3 sync and >= 1.5x rclone; warm < 1 s, >= 50x aws, >= 10x rclone\n");
    for server in [s3s_fs(&base)?, radosgw(&base, &aws)?] {
        bench_one(&server, &bin, &aws, &rclone, &base)?;
    }
    Ok(())
}

fn bench_one(server: &Endpoint, bin: &Path, aws: &str, rclone: &str, base: &Path) -> Result {
    let endpoint = &server.url;
    let _ = fs::remove_dir_all(base.join(".verbatim"));
    let build = || {
        let mut c = Command::new(bin);
        c.args(["build", "--quiet", "--no-progress"])
            .current_dir(base)
            .stdout(Stdio::null());
        measure(&mut c)
    };
    let built = build()?;
    let publish = |prebuilt: bool| {
        let mut c = Command::new(bin);
        c.args([
            "publish",
            "--quiet",
            "--no-progress",
            "--store",
            "s3://verbatim/releases",
        ])
        .args(["--endpoint-url", endpoint, "--path-style"])
        .current_dir(base);
        if prebuilt {
            c.arg("--prebuilt");
        }
        env(&mut c);
        measure(&mut c)
    };
    let sync = || {
        let mut c = Command::new(aws);
        c.args([
            "s3",
            "sync",
            "--only-show-errors",
            ".verbatim/build/",
            "s3://sync/releases/",
        ])
        .args(["--endpoint-url", endpoint])
        .current_dir(base);
        env(&mut c);
        measure(&mut c)
    };
    let copy = || {
        let mut c = Command::new(rclone);
        c.args([
            "copy",
            "-q",
            "--transfers",
            "16",
            "--checkers",
            "16",
            ".verbatim/build",
            "bench:rclone/releases",
        ])
        .env("RCLONE_CONFIG_BENCH_TYPE", "s3")
        .env("RCLONE_CONFIG_BENCH_PROVIDER", "Other")
        .env("RCLONE_CONFIG_BENCH_ENDPOINT", endpoint)
        .env("RCLONE_CONFIG_BENCH_ACCESS_KEY_ID", KEY)
        .env("RCLONE_CONFIG_BENCH_SECRET_ACCESS_KEY", SECRET)
        .env("RCLONE_CONFIG_BENCH_FORCE_PATH_STYLE", "true")
        .current_dir(base);
        env(&mut c);
        measure(&mut c)
    };
    let cold = publish(true)?;
    let warm = publish(true)?;
    let warm_rebuilt = publish(false)?;
    let (sync_cold, sync_warm) = (sync()?, sync()?);
    let (copy_cold, copy_warm) = (copy()?, copy()?);
    let s = |d: Duration| d.as_secs_f64();
    let ratio = |peer: &Measured, ours: &Measured| s(peer.wall) / s(ours.wall);
    println!("{}:", server.name);
    println!(
        "  cold  verbatim {:>7.3} s   aws s3 sync {:>7.2} s ({:>5.1}x)   rclone {:>7.2} s ({:>5.1}x)",
        s(cold.wall), s(sync_cold.wall), ratio(&sync_cold, &cold), s(copy_cold.wall), ratio(&copy_cold, &cold)
    );
    println!(
        "  warm  verbatim {:>7.3} s   aws s3 sync {:>7.2} s ({:>5.1}x)   rclone {:>7.2} s ({:>5.1}x)   (publish --prebuilt)",
        s(warm.wall), s(sync_warm.wall), ratio(&sync_warm, &warm), s(copy_warm.wall), ratio(&copy_warm, &warm)
    );
    println!(
        "  warm  verbatim {:>7.3} s   aws s3 sync {:>7.2} s ({:>5.1}x)   rclone {:>7.2} s ({:>5.1}x)   (publish, rebuild included; the build alone: {:.3} s)",
        s(warm_rebuilt.wall), s(sync_warm.wall), ratio(&sync_warm, &warm_rebuilt), s(copy_warm.wall), ratio(&copy_warm, &warm_rebuilt), s(built.wall)
    );
    println!(
        "  peak RSS: verbatim cold {:.1} MiB, rclone cold {:.1} MiB\n",
        cold.max_rss_kib as f64 / 1024.0,
        copy_cold.max_rss_kib as f64 / 1024.0
    );
    Ok(())
}
