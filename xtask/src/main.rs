//! Development tasks: `cargo xtask ci`, `cargo xtask bench …`, `cargo xtask s3`,
//! `cargo xtask fuzz`, `cargo xtask house`, `cargo xtask docs`.
//!
//! `ci` is the one command that sets up and runs every check, a short fuzz
//! pass included; `.ci/run` calls exactly it. `bench` prints figures and ratios against the named peers on
//! the same data; nothing here asserts timings.

mod bench;
mod bench_assets;
mod bench_fleet;
mod bench_s3;
mod docs;
mod doctest;
mod fuzz;
mod fuzz_seeds;
mod house;
mod links;
mod setup;

use std::path::PathBuf;
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

type Result<T = ()> = std::result::Result<T, String>;

const USAGE: &str = "\
usage: cargo xtask <task>

tasks:
  ci            fmt --check, clippy -D warnings, the house rules, the docs,
                every test, and a short fuzz pass
  docs          check the book (docs/): its command reference is up to date, every
                page is in SUMMARY.md, every link resolves; build it with mdBook
                when installed (into the target directory's book/)
  docs --test   run the book's `console` examples against the real binary
  docs --reference
                write docs/src/reference/commands.md from the command line's definitions
  house         the layout rules: files ≤ 900 lines and functions ≤ 150
                (unit tests aside), no command importing another
  fuzz [--minutes N] [--target NAME]
                run the fuzz targets (css js html config documents unpack)
                for N minutes each (default 15), one after another
  bench pack    time `verbatim build` on a ~1 GiB tree vs tar | gzip and tar | pigz, hashing vs
                sha256sum, a warm build vs --no-cache, fetch vs tar -xzf
  bench fetch   time `verbatim fetch` of a ~150 MiB artifact vs tar -xzf, with peak memory;
                a publish with nothing changed, a build with one file changed vs --no-cache
  bench assets  time `verbatim build` on 10,000 assets vs Django collectstatic (Manifest storage)
  bench s3      publish 10,000 assets + a 200 MiB artifact to s3s-fs and radosgw vs
                aws s3 sync, rclone and s5cmd uploading the same objects
  bench fleet   6, 12 and 24 agents on s3s-fs: time to converge, store requests per
                host per minute (idle, all at once, waves, blue/green), mixed-version window
  s3            run a local S3-compatible server (s3s-fs) on 127.0.0.1:8014
  man [DIR]     write the man pages (verbatim.1, verbatim-<command>[-<sub>].1) into DIR
                (default target/man)
";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let result = match args.as_slice() {
        ["ci"] => ci(),
        ["house"] => house::check(),
        ["docs", rest @ ..] => docs::main(rest),
        ["fuzz", rest @ ..] => fuzz::main(rest),
        ["bench", "pack"] => bench::pack(),
        ["bench", "fetch"] => bench::fetch_bench(),
        ["bench", "assets"] => bench_assets::assets(),
        ["bench", "s3"] => bench_s3::s3(),
        ["bench", "fleet"] => bench_fleet::fleet(),
        ["s3"] => setup::serve(),
        ["man"] => man("target/man"),
        ["man", dir] => man(dir),
        _ => {
            eprint!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `verbatim man --out DIR`, from a fresh build.
fn man(dir: &str) -> Result {
    let root = root();
    run(
        "cargo",
        &[
            "run",
            "--quiet",
            "--manifest-path",
            &root.join("Cargo.toml").to_string_lossy(),
            "--",
            "man",
            "--out",
            dir,
        ],
    )
}

/// The repository root (the parent of `xtask/`).
pub fn root() -> PathBuf {
    // `cargo run` says where xtask is now. The path baked in at compile
    // time can be another checkout's: cargo reuses an xtask built from the
    // same sources elsewhere in a shared target directory.
    let manifest_dir = std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    manifest_dir
        .parent()
        .expect("xtask lives in the workspace")
        .to_owned()
}

/// Runs a command in the repository root, failing on a non-zero exit.
pub fn run(program: &str, args: &[&str]) -> Result {
    eprintln!("$ {program} {}", args.join(" "));
    let status = Command::new(program)
        .args(args)
        .current_dir(root())
        .status()
        .map_err(|e| format!("cannot run {program}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("`{program} {}` failed ({status})", args.join(" ")))
    }
}

fn ci() -> Result {
    let mut steps = Steps::default();
    let result = ci_steps(&mut steps);
    steps.print();
    result
}

fn ci_steps(steps: &mut Steps) -> Result {
    // Tools the tests call: GNU tar and gzip read the artifact.
    for tool in ["tar", "gzip", "mkfifo", "mknod"] {
        if !setup::have(tool) {
            return Err(format!(
                "`{tool}` is needed by the tests; install it (apt-get install tar gzip coreutils)"
            ));
        }
    }
    // The first compile (the test binaries, which nextest reuses) runs while
    // the servers and tools install: those wait on the network and the
    // disk, the compile on the CPU. The tools cargo builds (s3s-fs,
    // mdBook) build in target directories of their own, beside it.
    let started = Instant::now();
    // The fuzz targets build all along, on the CPU left idle.
    let fuzz_build = std::thread::spawn(fuzz::prebuild);
    let compile = std::thread::spawn(|| run("cargo", &["test", "--workspace", "--no-run", "-q"]));
    // mdBook builds beside them (a cached binary on a warm cache).
    let mdbook = std::thread::spawn(setup::mdbook);
    let tools = steps.time("install servers and tools", || {
        setup::chromium()?;
        setup::ceph()?;
        setup::nginx()?;
        setup::openssh()?;
        setup::systemd_analyze()?;
        Ok((setup::s3s_fs()?, setup::awscli()?, setup::django_venv()?))
    });
    let waited = Instant::now();
    let compiled = compile
        .join()
        .map_err(|_| "the first compile panicked".to_owned());
    steps.record(
        "first compile, after the installs",
        waited.elapsed(),
        &compiled,
    );
    eprintln!("first compile: {:.0?} in all", started.elapsed());
    let (s3s_fs, aws, django) = tools?;
    compiled??;
    let mdbook = mdbook
        .join()
        .map_err(|_| "installing mdBook panicked".to_owned())
        .and_then(|r| r);
    if let Err(e) = &mdbook {
        eprintln!(
            "WARNING: could not install mdBook ({e}): the book's structure is checked, not built"
        );
    }
    steps.time("cargo fmt --check", || {
        run("cargo", &["fmt", "--all", "--check"])
    })?;
    // clippy and rustdoc check everything again in check mode: in a target
    // directory of their own, at the lowest priority, they take the CPU
    // the docs and the tests leave idle, and are waited for after them.
    let lints = std::thread::spawn(lints);
    steps.time("house rules", house::check)?;
    steps.time("docs: reference, summary, links, book", || {
        docs::check()?;
        docs::build_book(mdbook.as_deref().ok())
    })?;
    // The tests start their own s3s-fs servers and read metadata with awscli.
    std::env::set_var("VERBATIM_TEST_S3S_FS", &s3s_fs);
    std::env::set_var("VERBATIM_TEST_AWS_CLI", &aws);
    // tests/it/django.rs runs gunicorn and manage.py from this venv.
    std::env::set_var("VERBATIM_TEST_DJANGO_VENV", &django);
    let tests = steps.time("tests", || {
        if Command::new("cargo")
            .args(["nextest", "--version"])
            .output()
            .is_ok_and(|o| o.status.success())
        {
            // nextest does not run doctests.
            run(
                "cargo",
                &["nextest", "run", "--workspace", "--no-fail-fast"],
            )
            .and_then(|()| run("cargo", &["test", "--workspace", "--doc"]))
        } else {
            run("cargo", &["test", "--workspace", "--no-fail-fast"])
        }
    });
    // The radosgw tests leave their shared cluster running for each other.
    setup::stop_ceph();
    tests?;
    let waited = Instant::now();
    let linted = lints
        .join()
        .map_err(|_| "clippy and cargo doc panicked".to_owned())
        .and_then(|r| r);
    steps.record(
        "clippy -D warnings, cargo doc -D warnings, after the tests",
        waited.elapsed(),
        &linted,
    );
    linted?;
    steps.time("docs: the book's examples", || {
        crate::doctest::run(&docs::verbatim()?)
    })?;
    let waited = Instant::now();
    let built = fuzz_build
        .join()
        .map_err(|_| "building the fuzz targets panicked".to_owned())
        .and_then(|r| r);
    steps.record("fuzz build, after the tests", waited.elapsed(), &built);
    built?;
    steps.time("fuzz pass", fuzz::ci_pass)
}

/// `cargo clippy --all-targets -- -D warnings`, then `cargo doc` with
/// warnings as errors (every public item documented, every intra-doc link
/// resolved), at the lowest CPU priority, in `<target>/lints`.
fn lints() -> Result {
    lowest_priority();
    let target = docs::target_dir().join("lints");
    for (what, args, rustdocflags) in [
        (
            "cargo clippy -D warnings",
            &[
                "clippy",
                "--all-targets",
                "--workspace",
                "--",
                "-D",
                "warnings",
            ][..],
            None,
        ),
        (
            "cargo doc -D warnings",
            &["doc", "--no-deps", "--workspace"][..],
            Some("-D warnings"),
        ),
    ] {
        eprintln!("$ cargo {}", args.join(" "));
        let mut c = Command::new("cargo");
        c.arg(args[0])
            .arg("--target-dir")
            .arg(&target)
            .args(&args[1..])
            .current_dir(root());
        if let Some(flags) = rustdocflags {
            c.env("RUSTDOCFLAGS", flags);
        }
        let status = c.status().map_err(|e| format!("cannot run cargo: {e}"))?;
        if !status.success() {
            return Err(format!("`{what}` failed ({status})"));
        }
    }
    Ok(())
}

/// Lowers the calling thread's CPU priority to the lowest (nice 19). On
/// Linux a nice value is per thread and what the thread spawns inherits
/// it, so only this thread's commands yield the CPU to everything else.
pub fn lowest_priority() {
    // SAFETY: setpriority only reads its integer arguments.
    unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, 19) };
}

/// How long each step of `ci` took, printed as a table at the end (also
/// when a step failed).
#[derive(Default)]
struct Steps(Vec<(&'static str, Duration, bool)>);

impl Steps {
    fn time<T>(&mut self, name: &'static str, f: impl FnOnce() -> Result<T>) -> Result<T> {
        let started = Instant::now();
        let r = f();
        self.record(name, started.elapsed(), &r);
        r
    }

    fn record<T, E>(&mut self, name: &'static str, took: Duration, r: &std::result::Result<T, E>) {
        self.0.push((name, took, r.is_ok()));
    }

    fn print(&self) {
        let total: Duration = self.0.iter().map(|(_, d, _)| *d).sum();
        eprintln!();
        eprintln!("{:<40} {:>9}", "ci step", "time");
        for (name, took, ok) in &self.0 {
            let mark = if *ok { "" } else { "  FAILED" };
            eprintln!("{name:<40} {:>8.1}s{mark}", took.as_secs_f64());
        }
        eprintln!("{:<40} {:>8.1}s", "total", total.as_secs_f64());
    }
}
