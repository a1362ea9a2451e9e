//! `cargo xtask bench s3`: publishing 10,000 small assets and a ~200 MiB
//! artifact to a local S3-compatible server (s3s-fs), cold and warm, against
//! `aws s3 sync` of the same files to the same server. Prints, never asserts.

use std::fs;
use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::bench::{measure, release_binary};
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

pub fn s3() -> Result {
    let bin = release_binary()?;
    let s3s = setup::s3s_fs()?;
    let aws = setup::awscli()?;
    let base = std::env::temp_dir().join("verbatim-bench-s3");
    generate(&base)?;
    let data = base.join("s3-data");
    let _ = fs::remove_dir_all(&data);
    for bucket in ["verbatim", "sync"] {
        fs::create_dir_all(data.join(bucket)).map_err(io)?;
    }
    let port = TcpListener::bind("127.0.0.1:0")
        .map_err(io)?
        .local_addr()
        .map_err(io)?
        .port();
    let _server = Server(
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
    let endpoint = format!("http://127.0.0.1:{port}");

    let _ = fs::remove_dir_all(base.join(".verbatim"));
    let built = Command::new(&bin)
        .args(["build", "--quiet", "--no-progress"])
        .current_dir(&base)
        .status()
        .map_err(io)?;
    if !built.success() {
        return Err("verbatim build failed".into());
    }
    let env = |c: &mut Command| {
        c.env("AWS_ACCESS_KEY_ID", KEY)
            .env("AWS_SECRET_ACCESS_KEY", SECRET)
            .env("AWS_REGION", "us-east-1")
            .env("AWS_DEFAULT_REGION", "us-east-1")
            // Everything is given: never probe the instance metadata address.
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .stdout(Stdio::null());
    };
    let publish = || {
        let mut c = Command::new(&bin);
        c.args([
            "publish",
            "--prebuilt",
            "--quiet",
            "--no-progress",
            "--store",
            "s3://verbatim/releases",
        ])
        .args(["--endpoint-url", &endpoint, "--path-style"])
        .current_dir(&base);
        env(&mut c);
        measure(&mut c)
    };
    let sync = || {
        let mut c = Command::new(&aws);
        c.args([
            "s3",
            "sync",
            "--only-show-errors",
            ".verbatim/build/",
            "s3://sync/releases/",
        ])
        .args(["--endpoint-url", &endpoint])
        .current_dir(&base);
        env(&mut c);
        measure(&mut c)
    };
    let cold = publish()?;
    let warm = publish()?;
    let sync_cold = sync()?;
    let sync_warm = sync()?;
    let s = |d: Duration| d.as_secs_f64();
    println!("publish {ASSETS} assets + a ~200 MiB artifact to s3s-fs on loopback");
    println!(
        "  cold: verbatim {:>7.2} s   aws s3 sync {:>7.2} s   ratio {:>6.1}x (target >= 10x)",
        s(cold.wall),
        s(sync_cold.wall),
        s(sync_cold.wall) / s(cold.wall)
    );
    println!("  warm: verbatim {:>7.3} s   aws s3 sync {:>7.2} s   ratio {:>6.1}x (target >= 50x, verbatim < 1 s)", s(warm.wall), s(sync_warm.wall), s(sync_warm.wall) / s(warm.wall));
    println!(
        "  peak RSS: verbatim cold {:.1} MiB",
        cold.max_rss_kib as f64 / 1024.0
    );
    Ok(())
}
