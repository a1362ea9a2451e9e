//! Benchmarks against named peers on the same data. Prints, never asserts.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::{root, run, setup, Result};

/// Wall time and peak RSS of one command (and its waited-for children).
pub struct Measured {
    pub wall: Duration,
    pub max_rss_kib: i64,
}

/// Every measurement starts with nothing left to write back: the dirty
/// pages an earlier command left behind (a peer's uploads, say) are flushed
/// first, untimed, or the kernel's writeback and ext4's locks would charge
/// them to whichever command runs next.
pub fn measure(cmd: &mut Command) -> Result<Measured> {
    // SAFETY: sync(2) takes no arguments and cannot fail.
    unsafe { libc::sync() };
    let start = Instant::now();
    let child = cmd.spawn().map_err(|e| format!("spawning {cmd:?}: {e}"))?;
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value for wait4 to fill in.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: pid is our own un-waited child; the pointers are valid for the call.
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    let wall = start.elapsed();
    if r != pid {
        return Err(format!("wait4 failed for {cmd:?}"));
    }
    if !(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0) {
        return Err(format!("{cmd:?} failed (status {status})"));
    }
    Ok(Measured {
        wall,
        max_rss_kib: usage.ru_maxrss,
    })
}

/// The median of `v` (the upper one of an even count).
pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// The median wall time of `runs`, in seconds.
pub fn median_wall(runs: &[Measured]) -> f64 {
    median(runs.iter().map(|m| m.wall.as_secs_f64()).collect())
}

/// The largest peak RSS of `runs`, in MiB.
pub fn peak_mib(runs: &[Measured]) -> f64 {
    runs.iter().map(|m| m.max_rss_kib).max().unwrap_or(0) as f64 / 1024.0
}

/// A small, fast PRNG so the tree is the same on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

const WORDS: &[&str] = &[
    "fn", "let", "return", "import", "class", "def", "self", "value", "config", "deploy",
    "manifest", "render", "template", "request", "response", "error", "=", "(", ")", "{", "}",
    "if", "else", "for", "in", "while", "true", "false", "None", "0", "1", "42", "\"text\"",
];

/// Source-code-like text: compresses like real app files do.
fn text(rng: &mut Rng, len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 16);
    while out.len() < len {
        let w = WORDS[(rng.next() % WORDS.len() as u64) as usize];
        out.extend_from_slice(w.as_bytes());
        out.push(if rng.next().is_multiple_of(9) {
            b'\n'
        } else {
            b' '
        });
    }
    out.truncate(len);
    out
}

/// A generated app tree: `files` small text files (1–39 KB) and four
/// large files of `chunks` MiB each, alternating text and incompressible
/// MiBs.
struct Tree {
    files: u32,
    chunks: u32,
}

/// ~1 GiB: 30,000 small text files (~560 MiB) plus four large files mixing
/// text and incompressible bytes (~440 MiB).
const PACK_TREE: Tree = Tree {
    files: 30_000,
    chunks: 110,
};

/// ~350 MiB that packs into a ~150 MiB artifact: 10,000 small text files
/// plus four 40 MiB files.
const FETCH_TREE: Tree = Tree {
    files: 10_000,
    chunks: 40,
};

fn generate(dir: &Path, tree: &Tree) -> Result<u64> {
    let marker = dir.join(".complete");
    if marker.exists() {
        eprintln!("reusing the tree in {}", dir.display());
        return Ok(fs::read_to_string(&marker)
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0));
    }
    let _ = fs::remove_dir_all(dir);
    eprintln!("generating a tree in {} …", dir.display());
    let mut rng = Rng(0x5eed_1234_abcd_ef01);
    let mut total = 0u64;
    let io = |e: std::io::Error| e.to_string();
    for i in 0..tree.files {
        let sub = dir.join(format!("app/pkg{:03}/mod{:02}", i % 300, i % 17));
        fs::create_dir_all(&sub).map_err(io)?;
        let len = 1_000 + (rng.next() % 38_000) as usize;
        fs::write(sub.join(format!("file{i:05}.py")), text(&mut rng, len)).map_err(io)?;
        total += len as u64;
    }
    let big = dir.join("app/data");
    fs::create_dir_all(&big).map_err(io)?;
    for i in 0..4 {
        let mut f = fs::File::create(big.join(format!("blob{i}.bin"))).map_err(io)?;
        for chunk in 0..tree.chunks {
            let block = if chunk.is_multiple_of(2) {
                text(&mut rng, 1 << 20)
            } else {
                (0..(1 << 17))
                    .flat_map(|_| rng.next().to_le_bytes())
                    .collect()
            };
            f.write_all(&block).map_err(io)?;
            total += block.len() as u64;
        }
    }
    fs::write(dir.join("verbatim.toml"), "[app]\ndir = \"app\"\n").map_err(io)?;
    fs::write(&marker, total.to_string()).map_err(io)?;
    Ok(total)
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1 << 20) as f64
}

/// Builds the release binary; returns its path (honouring CARGO_TARGET_DIR).
pub fn release_binary() -> Result<PathBuf> {
    run(
        "cargo",
        &["build", "--release", "--quiet", "--bin", "verbatim"],
    )?;
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target"));
    Ok(target.join("release/verbatim"))
}

/// Reads `dir` once, so that no contender pays for the disk.
pub fn warm_cache(base: &Path, dir: &str) {
    let _ = Command::new("tar")
        .args(["-cf", "/dev/null", dir])
        .current_dir(base)
        .status();
}

pub fn pack() -> Result {
    let bin = release_binary()?;
    let base = std::env::var_os("VERBATIM_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("verbatim-bench-pack"));
    let total = generate(&base, &PACK_TREE)?;
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    println!("tree: {:.0} MiB of content, {cores} cores", mib(total));

    warm_cache(&base, "app");
    let pigz = setup::pigz()?;

    // Three alternating rounds of the three packers, medians. Each tar
    // writes the same canonical stream verbatim packs (sorted, owner 0,
    // mtime 0); gzip is serial, pigz compresses on every core.
    let tar = "tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 -cf - app";
    let out = base.join("peer.tar.gz");
    let artifact = base.join(".verbatim/build/artifact.tar.gz");
    let (mut ours, mut gzip, mut pigzed) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..3 {
        ours.push(measure(
            Command::new(&bin)
                .args(["build", "--no-cache", "--quiet", "--no-progress"])
                .current_dir(&base)
                .stdout(std::process::Stdio::null()),
        )?);
        gzip.push(measure(
            Command::new("sh")
                .current_dir(&base)
                .arg("-c")
                .arg(format!("{tar} | gzip -n > {}", out.display())),
        )?);
        pigzed.push(measure(
            Command::new("sh")
                .current_dir(&base)
                .arg("-c")
                .arg(format!("{tar} | {pigz} -n > {}", out.display())),
        )?);
    }
    let artifact_size = fs::metadata(&artifact).map_err(|e| e.to_string())?.len();
    let peer_size = fs::metadata(&out).map_err(|e| e.to_string())?.len();
    let (t_ours, t_gzip, t_pigz) = (median_wall(&ours), median_wall(&gzip), median_wall(&pigzed));

    println!("\npack: verbatim build --no-cache vs tar --sort=name … | gzip -n, | pigz -n; medians of 3 alternating rounds");
    println!(
        "  verbatim build  {t_ours:>7.2} s  peak RSS {:>6.1} MiB  artifact {:>7.1} MiB",
        peak_mib(&ours),
        mib(artifact_size)
    );
    println!(
        "  tar | gzip      {t_gzip:>7.2} s  peak RSS {:>6.1} MiB  artifact {:>7.1} MiB",
        peak_mib(&gzip),
        mib(peer_size)
    );
    println!(
        "  tar | pigz      {t_pigz:>7.2} s  peak RSS {:>6.1} MiB",
        peak_mib(&pigzed)
    );
    println!(
        "  time ratio verbatim / tar|gzip = {:.2}  (target <= 0.50)",
        t_ours / t_gzip
    );
    println!(
        "  time ratio verbatim / tar|pigz = {:.2}  (target <= 1.00)",
        t_ours / t_pigz
    );
    println!("  peak RSS {:.1} MiB (target <= 64 MiB)", peak_mib(&ours));

    // Hashing: `verbatim verify` re-reads and hashes the stored artifact;
    // sha256sum hashes the same file.
    let store = base.join(".verbatim/store");
    let _ = fs::remove_dir_all(&store);
    let published = Command::new(&bin)
        .args(["publish", "--prebuilt", "--quiet"])
        .current_dir(&base)
        .output()
        .map_err(|e| e.to_string())?;
    let id = String::from_utf8_lossy(&published.stdout).trim().to_owned();
    let stored = store.join(format!("artifacts/sha256/{}.tar.gz", artifact_hex(&base)?));
    let _ = Command::new("cat")
        .arg(&stored)
        .stdout(std::process::Stdio::null())
        .status();
    let ours = measure(
        Command::new(&bin)
            .args(["verify", &id, "--quiet", "--no-progress"])
            .current_dir(&base)
            .stdout(std::process::Stdio::null()),
    )?;
    let peer = measure(
        Command::new("sha256sum")
            .arg(&stored)
            .stdout(std::process::Stdio::null()),
    )?;
    let rate = |d: Duration| mib(artifact_size) / d.as_secs_f64();
    println!(
        "\nhashing {:.0} MiB: verbatim verify vs sha256sum",
        mib(artifact_size)
    );
    println!("  verbatim  {:>8.0} MiB/s", rate(ours.wall));
    println!("  sha256sum {:>8.0} MiB/s", rate(peer.wall));
    println!(
        "  rate ratio verbatim / sha256sum = {:.2}  (target >= 0.90)",
        rate(ours.wall) / rate(peer.wall)
    );
    let _ = fs::remove_file(out);
    warm_build(&bin, &base)?;
    fetch(&bin, &base, &id, &stored)
}

/// `publish` to the local store of the unchanged tree (the build cache,
/// then the store's check), and `build` of the tree with one file
/// changed, against the full pack of `build --no-cache`; medians of three.
fn warm_build(bin: &Path, base: &Path) -> Result {
    let run = |args: &[&str]| {
        measure(
            Command::new(bin)
                .args(args)
                .args(["--quiet", "--no-progress"])
                .current_dir(base)
                .stdout(std::process::Stdio::null()),
        )
        .map(|m| m.wall.as_secs_f64())
    };
    let changed = base.join("app/pkg000/mod00/file00000.py");
    let original = fs::read(&changed).map_err(|e| e.to_string())?;
    let (mut warm, mut one, mut full) = (Vec::new(), Vec::new(), Vec::new());
    run(&["publish"])?;
    for i in 0..3 {
        // Out of the racy second, so that the cache may trust mtimes;
        // the first publish stores what the last edit built.
        std::thread::sleep(Duration::from_millis(1100));
        run(&["publish"])?;
        warm.push(run(&["publish"])?);
        let mut edited = original.clone();
        edited.extend_from_slice(format!("\n# edit {i}\n").as_bytes());
        fs::write(&changed, edited).map_err(|e| e.to_string())?;
        one.push(run(&["build"])?);
        full.push(run(&["build", "--no-cache"])?);
    }
    fs::write(&changed, original).map_err(|e| e.to_string())?;
    let (warm, one, full) = (median(warm), median(one), median(full));
    println!(
        "
publish to the local store with nothing changed; build with one file changed vs the full pack (build --no-cache)"
    );
    println!("  nothing changed  {warm:>7.3} s  (target < 0.1 s, set for bench fetch's tree)");
    println!("  one file changed {one:>7.3} s");
    println!("  full pack        {full:>7.3} s");
    println!(
        "  time ratio one file changed / full pack = {:.2}  (target <= 1.10)",
        one / full
    );
    Ok(())
}

/// `cargo xtask bench fetch`: a host's fetch of a ~150 MiB artifact (the
/// size of a real app's) against `tar -xzf` of the same file, then the
/// warm paths of `warm_build` on the same tree.
pub fn fetch_bench() -> Result {
    let bin = release_binary()?;
    let base = std::env::var_os("VERBATIM_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("verbatim-bench-fetch"));
    let total = generate(&base, &FETCH_TREE)?;
    let store = base.join(".verbatim/store");
    let _ = fs::remove_dir_all(&store);
    let published = Command::new(&bin)
        .args(["publish", "--quiet", "--no-progress"])
        .current_dir(&base)
        .output()
        .map_err(|e| e.to_string())?;
    if !published.status.success() {
        return Err(format!(
            "publish failed: {}",
            String::from_utf8_lossy(&published.stderr)
        ));
    }
    let id = String::from_utf8_lossy(&published.stdout).trim().to_owned();
    let stored = store.join(format!("artifacts/sha256/{}.tar.gz", artifact_hex(&base)?));
    let size = fs::metadata(&stored).map_err(|e| e.to_string())?.len();
    println!(
        "tree: {:.0} MiB of content; artifact {:.0} MiB",
        mib(total),
        mib(size)
    );
    fetch(&bin, &base, &id, &stored)?;
    warm_build(&bin, &base)
}

/// `fetch` (download from the local store, verify, inflate on every core,
/// unpack, hash every file, sync, record) against `tar -xzf` of the same
/// artifact, five alternating pairs, medians.
fn fetch(bin: &Path, base: &Path, id: &str, stored: &Path) -> Result {
    // Every run writes into a directory of its own, and all are removed at
    // the end: ext4 skips inodes freed in the last minutes when it
    // allocates, so removing one run's files just before the next would
    // make that run pay for it.
    let out = base.join("fetch-runs");
    let _ = fs::remove_dir_all(&out);
    let _ = Command::new("cat")
        .arg(stored)
        .stdout(std::process::Stdio::null())
        .status();
    let mut pairs = Vec::new();
    for i in 0..5 {
        let (ours_dir, peer_dir) = (out.join(format!("ours-{i}")), out.join(format!("peer-{i}")));
        fs::create_dir_all(&peer_dir).map_err(|e| e.to_string())?;
        let ours = measure(
            Command::new(bin)
                .args(["fetch", id, "--quiet", "--no-progress", "--into"])
                .arg(&ours_dir)
                .current_dir(base)
                .stdout(std::process::Stdio::null()),
        )?;
        let peer = measure(
            Command::new("tar")
                .arg("-xzf")
                .arg(stored)
                .arg("-C")
                .arg(&peer_dir),
        )?;
        pairs.push((ours, peer));
    }
    let secs = |m: &Measured| m.wall.as_secs_f64();
    let ratio = median(pairs.iter().map(|p| secs(&p.0) / secs(&p.1)).collect());
    let (ours, peer): (Vec<Measured>, Vec<Measured>) = pairs.into_iter().unzip();
    let rss = peak_mib(&ours);
    let (ours, peer) = (median_wall(&ours), median_wall(&peer));
    println!(
        "
fetch (verify + parallel inflate + unpack + sync) vs tar -xzf, median of 5 pairs"
    );
    println!("  verbatim fetch  {ours:>7.2} s  peak RSS {rss:>6.1} MiB");
    println!("  tar -xzf        {peer:>7.2} s");
    println!("  time ratio verbatim / tar -xzf = {ratio:.2}  (target <= 0.70, peak RSS <= 64 MiB)");
    let _ = fs::remove_dir_all(&out);
    Ok(())
}

fn artifact_hex(base: &Path) -> Result<String> {
    let m = fs::read_to_string(base.join(".verbatim/build/manifest.json"))
        .map_err(|e| e.to_string())?;
    let i = m
        .find("\"sha256\":\"")
        .ok_or("no sha256 in the build manifest")?
        + 10;
    Ok(m[i..i + 64].to_owned())
}
