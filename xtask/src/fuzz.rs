//! `cargo xtask fuzz [--minutes N] [--target NAME]`: coverage-guided fuzzing
//! of everything that reads hostile input, with `cargo fuzz` (libFuzzer).
//!
//! The targets live in `fuzz/` (its own workspace, built on nightly into
//! `~/.cache/verbatim/fuzz-target`, or `fuzz-target-ci` at opt-level 1 for
//! the short CI pass, where the compile costs more than the runs); their
//! properties are in
//! `fuzz/src/lib.rs`. Each target runs in turn on a corpus kept in
//! `~/.cache/verbatim/fuzz-corpus/<target>`, seeded every run from
//! `fuzz/seeds/<target>` and from the repository's own fixtures: the string
//! literals of the scanners' unit tests and of `tests/it`, the example
//! project, `manifests/examples`, and tar streams written here for the
//! unpacker. A crash or a failed property fails the task and names the
//! reproducer; libFuzzer reruns one with `<binary> <file>`.
//!
//! Time per input stays linear. The scanner targets scan an input a second
//! time repeated to at least 4 MiB, and libFuzzer runs with
//! `-timeout=TIMEOUT_SECS`. Measured on the instrumented build: a linear
//! scanner takes 0.1 to 0.7 s on 4 MiB; the quadratic scanners fuzzing
//! found (a per-reference recount of the line, a per-tag copy of the rest
//! of the page, a per-`import` scan to the end) took 1.6 to 34 s already
//! at 1 MiB, so 25 s or more at 4 MiB. That gap is wide enough not to flake on
//! a loaded machine, and needs no timing assertion of our own: libFuzzer
//! reports a timeout like a crash, with a reproducer. Counting work
//! instead would need hardware counters (absent in the VMs this runs on)
//! or counters inside the scanners (test code in the product). The check
//! costs about half a second, so it runs on one input in 4096, picked by
//! a hash of the input (a reproducer reproduces), and always on the
//! committed seeds in `fuzz/seeds/`, which are replayed first, as
//! regression tests, before each target fuzzes.
//!
//! The build uses `-s none` (no sanitizer): the product has no `unsafe`
//! code, so AddressSanitizer would find nothing that Rust's own checks do
//! not, at twice the cost; `-a` keeps debug assertions and overflow checks.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use crate::setup::cache;
use crate::{root, Result};

/// Every target, in the order they run.
pub const TARGETS: &[&str] = &["css", "js", "html", "json", "config", "documents", "unpack"];

/// The cargo-fuzz release installed into the cache when missing.
const CARGO_FUZZ_VERSION: &str = "0.13.2";

/// libFuzzer's per-input limit; see the module docs.
const TIMEOUT_SECS: u32 = 5;

/// Seconds per target in the CI pass: short, as the corpus kept under
/// `~/.cache/verbatim` grows from run to run (`cargo xtask fuzz` is the
/// long run).
const CI_SECS: u64 = 12;

const USAGE: &str = "usage: cargo xtask fuzz [--minutes N] [--target NAME]";

/// `cargo xtask fuzz …`.
pub fn main(args: &[&str]) -> Result {
    let mut minutes: u64 = 15;
    let mut targets: Vec<&str> = Vec::new();
    let mut it = args.iter();
    while let Some(&arg) = it.next() {
        match arg {
            "--minutes" => {
                minutes = it
                    .next()
                    .and_then(|m| m.parse().ok())
                    .filter(|&m| m > 0)
                    .ok_or(format!(
                        "--minutes needs a whole number of minutes\n{USAGE}"
                    ))?;
            }
            "--target" => {
                let t = it.next().ok_or(format!("--target needs a name\n{USAGE}"))?;
                if !TARGETS.contains(t) {
                    return Err(format!(
                        "unknown fuzz target `{t}`; the targets are {}",
                        TARGETS.join(", ")
                    ));
                }
                targets.push(t);
            }
            other => return Err(format!("unexpected argument `{other}`\n{USAGE}")),
        }
    }
    if targets.is_empty() {
        targets = TARGETS.to_vec();
    }
    if let Err(why) = nightly() {
        return Err(format!(
            "fuzzing needs the nightly toolchain ({why}); install it with `rustup toolchain install nightly`"
        ));
    }
    fuzz(&targets, minutes * 60, &Build::LONG)
}

/// Installs cargo-fuzz and builds every target at the lowest CPU priority,
/// for `cargo xtask ci` to start first: the build then takes only the CPU
/// the compiles, installs and tests leave idle, and the fuzz pass at the
/// end finds it done. Without nightly there is nothing to build.
pub fn prebuild() -> Result {
    if nightly().is_err() {
        return Ok(());
    }
    crate::lowest_priority();
    let cargo_fuzz = cargo_fuzz()?;
    build(&cargo_fuzz, &Build::CI, TARGETS)
}

/// The short pass `cargo xtask ci` runs after the tests: every target for
/// [`CI_SECS`]. Without nightly it warns loudly and skips.
pub fn ci_pass() -> Result {
    if let Err(why) = nightly() {
        eprintln!();
        eprintln!("WARNING: ==========================================================");
        eprintln!("WARNING: fuzzing was SKIPPED: the nightly toolchain is missing");
        eprintln!("WARNING: ({why}).");
        eprintln!("WARNING: `rustup toolchain install nightly` enables the CI fuzz pass.");
        eprintln!("WARNING: ==========================================================");
        eprintln!();
        return Ok(());
    }
    fuzz(TARGETS, CI_SECS, &Build::CI)
}

fn nightly() -> std::result::Result<(), String> {
    match Command::new("cargo")
        .args(["+nightly", "--version"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
    {
        Ok(s) if s.success() => Ok(()),
        Ok(s) => Err(format!("`cargo +nightly --version` failed ({s})")),
        Err(e) => Err(format!("cannot run cargo: {e}")),
    }
}

/// What one libFuzzer run reported.
#[derive(Debug, Default)]
struct Stats {
    execs: Option<u64>,
    exec_per_sec: Option<u64>,
    cov: Option<u64>,
    ft: Option<u64>,
    corpus: usize,
    /// `Test unit written to <path>`: a crash, timeout or leak.
    reproducers: Vec<String>,
    /// libFuzzer's summary of a failure (`SUMMARY: libFuzzer: …`).
    failure: Option<String>,
}

/// Where the targets build, at which opt-level, and with how much debug
/// info.
struct Build {
    dir: &'static str,
    opt_level: &'static str,
    debug: &'static str,
}

impl Build {
    /// The long runs: every execution counts, and a crash's stack names
    /// its lines.
    const LONG: Build = Build {
        dir: "fuzz-target",
        opt_level: "3",
        debug: "1",
    };
    /// The CI pass: 12 s a target, where the compile counts more. Without
    /// debug info it costs 9% less CPU (238 against 262 s, cold). A
    /// crash's stack still names its functions; the long build's binary
    /// (`cargo xtask fuzz --target NAME` builds it) names the lines too,
    /// rerun on the reproducer.
    const CI: Build = Build {
        dir: "fuzz-target-ci",
        opt_level: "1",
        debug: "0",
    };
}

fn fuzz(targets: &[&str], secs: u64, how: &Build) -> Result {
    let cargo_fuzz = cargo_fuzz()?;
    let target_dir = cache().join(how.dir);
    let started = Instant::now();
    build(&cargo_fuzz, how, targets)?;
    eprintln!("fuzz build: {:.0?}", started.elapsed());
    let bin_dir = target_dir.join(host_triple()?).join("release");
    // libFuzzer runs one thread: one target per core at a time.
    let next = std::sync::atomic::AtomicUsize::new(0);
    let one = |t: &str| -> Result<(bool, Stats)> {
        let corpus = cache().join("fuzz-corpus").join(t);
        let seeded = seed(t, &corpus)?;
        let artifacts = cache().join("fuzz-artifacts").join(t);
        fs::create_dir_all(&artifacts)
            .map_err(|e| format!("creating {}: {e}", artifacts.display()))?;
        eprintln!(
            "fuzz {t}: {secs} s on {} inputs ({seeded} seeds)",
            count_files(&corpus)
        );
        let mut ok = true;
        if let Err(why) = replay_seeds(&bin_dir.join(t), t, &artifacts) {
            eprintln!("fuzz {t}: FAILED on a committed seed: {why}");
            ok = false;
        }
        let stats = run_target(&bin_dir.join(t), t, &corpus, &artifacts, secs)?;
        if let Some(why) = &stats.failure {
            eprintln!("fuzz {t}: FAILED: {why}");
            for r in &stats.reproducers {
                eprintln!(
                    "fuzz {t}: reproducer {r}\n  rerun: {} {r}",
                    bin_dir.join(t).display()
                );
            }
            ok = false;
        }
        Ok((ok, stats))
    };
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut done: Vec<(usize, Result<(bool, Stats)>)> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads.min(targets.len()))
            .map(|_| {
                scope.spawn(|| {
                    let mut mine = Vec::new();
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some(&t) = targets.get(i) else {
                            return mine;
                        };
                        mine.push((i, one(t)));
                    }
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().unwrap_or_default())
            .collect()
    });
    done.sort_by_key(|(i, _)| *i);
    let mut failed = Vec::new();
    let mut rows = Vec::new();
    for (i, result) in done {
        let (ok, stats) = result?;
        if !ok {
            failed.push(targets[i]);
        }
        rows.push((targets[i], stats));
    }
    println!(
        "{:<10} {:>12} {:>8} {:>7} {:>7} {:>7} {:>8}",
        "target", "execs", "exec/s", "cov", "ft", "corpus", "crashes"
    );
    let show = |v: Option<u64>| v.map_or("?".to_string(), |v| v.to_string());
    for (t, s) in &rows {
        println!(
            "{:<10} {:>12} {:>8} {:>7} {:>7} {:>7} {:>8}",
            t,
            show(s.execs),
            show(s.exec_per_sec),
            show(s.cov),
            show(s.ft),
            s.corpus,
            s.reproducers.len() + usize::from(s.failure.is_some() && s.reproducers.is_empty()),
        );
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "fuzzing found problems in: {} (reproducers above; logs in {})",
            failed.join(", "),
            cache().join("fuzz-logs").display()
        ))
    }
}

/// cargo-fuzz from the cache, installed there when missing.
fn cargo_fuzz() -> Result<PathBuf> {
    let root_dir = cache().join(format!("cargo-fuzz-{CARGO_FUZZ_VERSION}"));
    let bin = root_dir.join("bin/cargo-fuzz");
    if bin.exists() {
        return Ok(bin);
    }
    crate::setup::cargo_install(
        &format!("cargo-fuzz@{CARGO_FUZZ_VERSION}"),
        &[],
        &root_dir,
        "0",
    )?;
    Ok(bin)
}

fn build(cargo_fuzz: &Path, how: &Build, targets: &[&str]) -> Result {
    // cargo-fuzz runs as `cargo fuzz`, so cargo must find it on PATH.
    let bin_dir = cargo_fuzz.parent().ok_or("cargo-fuzz has no directory")?;
    let path = std::env::var_os("PATH").unwrap_or_default();
    let path = std::env::join_paths(
        std::iter::once(bin_dir.to_owned()).chain(std::env::split_paths(&path)),
    )
    .map_err(|e| format!("PATH: {e}"))?;
    // One build for every target, or one per target asked for.
    let builds: Vec<Option<&str>> = if targets == TARGETS {
        vec![None]
    } else {
        targets.iter().map(|&t| Some(t)).collect()
    };
    for t in builds {
        let mut args = vec![
            "+nightly",
            "fuzz",
            "build",
            "--fuzz-dir",
            "fuzz",
            "-s",
            "none",
            "-a",
        ];
        args.extend(t);
        eprintln!("$ cargo {}", args.join(" "));
        let status = Command::new("cargo")
            .args(args)
            .current_dir(root())
            .env("PATH", &path)
            .env("CARGO_TARGET_DIR", cache().join(how.dir))
            .env("CARGO_PROFILE_RELEASE_OPT_LEVEL", how.opt_level)
            .env("CARGO_PROFILE_RELEASE_DEBUG", how.debug)
            .status()
            .map_err(|e| format!("cannot run cargo fuzz: {e}"))?;
        if !status.success() {
            return Err(format!(
                "building fuzz target `{}` failed ({status})",
                t.unwrap_or("(all)")
            ));
        }
    }
    Ok(())
}

fn host_triple() -> Result<String> {
    let out = Command::new("rustc")
        .args(["+nightly", "-vV"])
        .output()
        .map_err(|e| format!("cannot run rustc: {e}"))?;
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("host: "))
        .map(str::to_owned)
        .ok_or_else(|| "`rustc -vV` names no host".to_string())
}

/// Runs the committed seeds of `t` once each, with the scanners' linear
/// time check forced on: the regression tests of what fuzzing found.
fn replay_seeds(bin: &Path, t: &str, artifacts: &Path) -> Result {
    let dir = root().join("fuzz/seeds").join(t);
    let mut seeds: Vec<PathBuf> = fs::read_dir(&dir)
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    if seeds.is_empty() {
        return Ok(());
    }
    seeds.sort();
    let log_path = cache().join("fuzz-logs").join(format!("{t}-seeds.log"));
    fs::create_dir_all(cache().join("fuzz-logs")).map_err(|e| format!("creating logs: {e}"))?;
    let log =
        fs::File::create(&log_path).map_err(|e| format!("creating {}: {e}", log_path.display()))?;
    let status = Command::new(bin)
        .env("VERBATIM_FUZZ_LINEAR", "always")
        .arg(format!("-timeout={TIMEOUT_SECS}"))
        .arg(format!("-artifact_prefix={}/", artifacts.display()))
        .args(&seeds)
        .stdout(Stdio::null())
        .stderr(log)
        .status()
        .map_err(|e| format!("cannot run {}: {e}", bin.display()))?;
    if status.success() {
        return Ok(());
    }
    let text = fs::read_to_string(&log_path).unwrap_or_default();
    for l in text.lines().rev().take(30).collect::<Vec<_>>().iter().rev() {
        eprintln!("  | {l}");
    }
    let culprit = text
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix("Running: "))
        .unwrap_or("?");
    Err(format!(
        "{culprit} ({status}); rerun: VERBATIM_FUZZ_LINEAR=always {} {culprit}",
        bin.display()
    ))
}

/// Per-target libFuzzer flags: inputs up to `max_len` bytes.
fn max_len(target: &str) -> usize {
    match target {
        "unpack" => 16 * 1024,
        _ => 8 * 1024,
    }
}

fn run_target(bin: &Path, t: &str, corpus: &Path, artifacts: &Path, secs: u64) -> Result<Stats> {
    let logs = cache().join("fuzz-logs");
    fs::create_dir_all(&logs).map_err(|e| format!("creating {}: {e}", logs.display()))?;
    let log_path = logs.join(format!("{t}.log"));
    let log =
        fs::File::create(&log_path).map_err(|e| format!("creating {}: {e}", log_path.display()))?;
    let mut args = vec![
        corpus.display().to_string(),
        format!("-max_total_time={secs}"),
        format!("-timeout={TIMEOUT_SECS}"),
        format!("-max_len={}", max_len(t)),
        "-rss_limit_mb=2048".into(),
        "-print_final_stats=1".into(),
        format!("-artifact_prefix={}/", artifacts.display()),
    ];
    let dict = root().join("fuzz/dicts").join(format!("{t}.dict"));
    if dict.exists() {
        args.push(format!("-dict={}", dict.display()));
    }
    let status = Command::new(bin)
        .args(&args)
        .stdout(Stdio::null())
        .stderr(log)
        .status()
        .map_err(|e| format!("cannot run {}: {e}", bin.display()))?;
    let text = fs::read_to_string(&log_path)
        .map_err(|e| format!("reading {}: {e}", log_path.display()))?;
    let mut stats = parse_log(&text);
    stats.corpus = count_files(corpus);
    if !status.success() && stats.failure.is_none() {
        stats.failure = Some(format!("{} exited with {status}", bin.display()));
    }
    if stats.failure.is_some() {
        // The panic message or libFuzzer's report: the lines before SUMMARY.
        let tail: Vec<&str> = text.lines().rev().take(40).collect();
        for l in tail.iter().rev() {
            eprintln!("  | {l}");
        }
        eprintln!("fuzz {t}: full log in {}", log_path.display());
    }
    Ok(stats)
}

/// Figures from libFuzzer's output: the last status line (`cov: ft: corp:
/// exec/s:`), the final stats, and any reproducer it wrote.
fn parse_log(text: &str) -> Stats {
    let mut s = Stats::default();
    let field = |line: &str, name: &str| -> Option<u64> {
        let rest = &line[line.find(name)? + name.len()..];
        rest.split_whitespace().next()?.parse().ok()
    };
    for line in text.lines() {
        if let Some(status) = line.strip_prefix('#') {
            s.cov = field(line, "cov: ").or(s.cov);
            s.ft = field(line, "ft: ").or(s.ft);
            s.exec_per_sec = field(line, "exec/s: ").or(s.exec_per_sec);
            s.execs = status
                .split_whitespace()
                .next()
                .and_then(|n| n.parse().ok())
                .or(s.execs);
        } else if let Some(n) = line.strip_prefix("stat::number_of_executed_units: ") {
            s.execs = n.trim().parse().ok().or(s.execs);
        } else if let Some(n) = line.strip_prefix("stat::average_exec_per_sec: ") {
            s.exec_per_sec = n.trim().parse().ok().or(s.exec_per_sec);
        } else if let Some(p) = line.split("Test unit written to ").nth(1) {
            s.reproducers.push(p.trim().to_string());
        } else if let Some(summary) = line.strip_prefix("SUMMARY: libFuzzer: ") {
            s.failure = Some(summary.trim().to_string());
        } else if line.contains("panicked at") && s.failure.is_none() {
            s.failure = Some(line.trim().to_string());
        }
    }
    s
}

fn count_files(dir: &Path) -> usize {
    fs::read_dir(dir).map_or(0, |d| d.flatten().count())
}

/// Writes the seeds of `target` into its corpus directory (file names are
/// content hashes, so seeding twice adds nothing). Returns the seed count.
fn seed(target: &str, corpus: &Path) -> Result<usize> {
    fs::create_dir_all(corpus).map_err(|e| format!("creating {}: {e}", corpus.display()))?;
    let seeds = crate::fuzz_seeds::seeds(target)?;
    for s in &seeds {
        let path = corpus.join(format!("seed-{:016x}", fnv1a(s)));
        if !path.exists() {
            fs::write(&path, s).map_err(|e| format!("writing {}: {e}", path.display()))?;
        }
    }
    Ok(seeds.len())
}

/// FNV-1a, for stable seed file names without a hashing dependency.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_libfuzzer_output() {
        let log = "\
INFO: Seed: 1
#2\tINITED cov: 10 ft: 11 corp: 1/1b exec/s: 0 rss: 30Mb
#1024\tNEW    cov: 120 ft: 300 corp: 40/2Kb lim: 4 exec/s: 512 rss: 40Mb L: 3/8 MS: 1 ChangeBit-
#409600\tDONE   cov: 130 ft: 310 corp: 42/2Kb lim: 4096 exec/s: 13653 rss: 41Mb
Done 409600 runs in 31 second(s)
stat::number_of_executed_units: 409600
stat::average_exec_per_sec:     13212
";
        let s = parse_log(log);
        assert_eq!(
            (s.execs, s.exec_per_sec, s.cov, s.ft),
            (Some(409_600), Some(13_212), Some(130), Some(310))
        );
        assert!(s.failure.is_none() && s.reproducers.is_empty());

        let crash = "\
#5\tNEW    cov: 12 ft: 13 corp: 2/2b exec/s: 0 rss: 30Mb
thread '<unnamed>' panicked at src/lib.rs:50:9:
bad range
==1== ERROR: libFuzzer: deadly signal
artifact_prefix='/c/'; Test unit written to /c/crash-abc
SUMMARY: libFuzzer: deadly signal
";
        let s = parse_log(crash);
        assert_eq!(s.reproducers, ["/c/crash-abc"]);
        assert_eq!(s.failure.as_deref(), Some("deadly signal"));
    }
}
