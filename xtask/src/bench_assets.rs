//! `cargo xtask bench assets`: fingerprinting 10,000 generated assets with
//! `verbatim build` against Django's `collectstatic` with
//! `ManifestStaticFilesStorage`, in a venv this task creates from PyPI;
//! then verbatim's peak memory on the same kind of tree ten times larger.
//! Prints figures and the ratio; never asserts.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::bench::{measure, release_binary, warm_cache, Measured};
use crate::Result;

/// Files in the generated tree.
const ASSETS: usize = 10_000;
/// Files in the tree whose peak memory is reported, and the bound on it.
const BIG: usize = 100_000;
const BIG_RSS_MIB: f64 = 256.0;

/// A tree of `files` files in directories of 10: 3 CSS (each `url()`s two
/// images of its directory, one `@import`s a sibling), 3 JS (a source-map
/// comment; two import a sibling), 3 PNG-ish binaries and 1 source map.
fn generate(static_dir: &Path, files: usize) -> Result {
    let _ = fs::remove_dir_all(static_dir);
    let w = |p: PathBuf, b: &[u8]| -> Result {
        fs::create_dir_all(p.parent().unwrap_or(Path::new(".")))
            .and_then(|()| fs::write(&p, b))
            .map_err(|e| format!("writing {}: {e}", p.display()))
    };
    for d in 0..files / 10 {
        let dir = static_dir.join(format!("m{d:04}"));
        for i in 0..3 {
            let mut img = b"\x89PNG\r\n\x1a\n".to_vec();
            img.extend((0..2048).map(|k| ((k * 31 + d * 7 + i) % 251) as u8));
            w(dir.join(format!("img{i}.png")), &img)?;
        }
        for i in 0..3 {
            let import = if i == 0 { "@import \"c1.css\";\n" } else { "" };
            let css = format!(
                "{import}.m{d}-{i} {{ background: url(\"img{i}.png\"); }}\n\
                 .m{d}-{i}:hover {{ background: url('img{}.png') no-repeat; }}\n{}",
                (i + 1) % 3,
                ".x { color: #123456; margin: 0 auto; padding: 4px 8px; }\n".repeat(20)
            );
            w(dir.join(format!("c{i}.css")), css.as_bytes())?;
        }
        for i in 0..3 {
            let import = if i < 2 {
                format!("import {{ f{} }} from \"./j{}.js\";\n", i + 1, i + 1)
            } else {
                String::new()
            };
            let map = if i == 0 {
                "//# sourceMappingURL=j0.js.map\n"
            } else {
                ""
            };
            let js = format!(
                "{import}export function f{i}(x) {{ return x * {d} + {i}; }}\n{}{map}",
                "const value = [1, 2, 3].map((v) => v + 1).join(',');\n".repeat(20)
            );
            w(dir.join(format!("j{i}.js")), js.as_bytes())?;
        }
        w(
            dir.join("j0.js.map"),
            b"{\"version\":3,\"sources\":[\"j0.ts\"],\"mappings\":\"AAAA\"}",
        )?;
    }
    Ok(())
}

const SETTINGS: &str = r#"
from pathlib import Path
BASE = Path(__file__).resolve().parent
SECRET_KEY = "bench"
INSTALLED_APPS = ["django.contrib.staticfiles"]
STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE / "static"]
STATIC_ROOT = BASE / "collected"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.ManifestStaticFilesStorage"},
}
"#;

/// A project in `base` whose assets directory is `static/`.
fn project(base: &Path) -> Result {
    let write = |p: PathBuf, text: &str| {
        fs::write(&p, text).map_err(|e| format!("writing {}: {e}", p.display()))
    };
    fs::create_dir_all(base.join("app")).map_err(|e| e.to_string())?;
    write(base.join("app/main.py"), "print('bench')\n")?;
    write(
        base.join("verbatim.toml"),
        "[app]\ndir = \"app\"\n[assets]\ndir = \"static\"\n",
    )
}

/// Runs per side; the median is reported.
const RUNS: usize = 5;

fn median(mut all: Vec<Measured>) -> Measured {
    all.sort_by_key(|m| m.wall);
    all.swap_remove(all.len() / 2)
}

pub fn assets() -> Result {
    let bin = release_binary()?;
    // Both contenders write ~10,000 new files into a directory emptied just
    // before. On ext4 that measures the kernel's inode allocator after mass
    // deletion (perf: find_inode_bit, recently_deleted), 3-10x apart from run
    // to run, more than either tool. A tmpfs measures the tools.
    let base = std::env::var_os("VERBATIM_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let shm = Path::new("/dev/shm");
            let dir = if shm.is_dir() {
                shm.to_owned()
            } else {
                std::env::temp_dir()
            };
            dir.join("verbatim-bench-assets")
        });
    eprintln!(
        "bench tree in {} (set VERBATIM_BENCH_DIR to move it)",
        base.display()
    );
    project(&base)?;
    fs::write(base.join("benchsettings.py"), SETTINGS).map_err(|e| e.to_string())?;
    generate(&base.join("static"), ASSETS)?;

    let venv = std::env::temp_dir().join("verbatim-bench-django-venv");
    let python = venv.join("bin/python");
    if !python.exists() {
        eprintln!(
            "creating a venv with Django from PyPI in {}",
            venv.display()
        );
        let ok = Command::new("python3")
            .args(["-m", "venv"])
            .arg(&venv)
            .status()
            .is_ok_and(|s| s.success())
            && Command::new(&python)
                .args(["-m", "pip", "install", "--quiet", "django"])
                .status()
                .is_ok_and(|s| s.success());
        if !ok {
            let _ = fs::remove_dir_all(&venv);
            return Err("could not create the Django venv (python3 -m venv, pip install django); is python3-venv installed and PyPI reachable?".into());
        }
    }
    let version = Command::new(&python)
        .args(["-c", "import django; print(django.get_version())"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();

    warm_cache(&base, "static");

    let build_in = |dir: &Path| {
        measure(
            Command::new(&bin)
                .args(["build", "--quiet", "--no-progress"])
                .current_dir(dir)
                .stdout(Stdio::null()),
        )
    };
    // Each side runs from an empty output directory, RUNS times, the two
    // taking turns so that a busy spell of the machine slows both (one
    // unmeasured round first); the median of each counts.
    let ours_once = || {
        let _ = fs::remove_dir_all(base.join(".verbatim"));
        build_in(&base)
    };
    let peer_once = || {
        let _ = fs::remove_dir_all(base.join("collected"));
        measure(
            Command::new(&python)
                .args(["-m", "django", "collectstatic", "--noinput", "-v", "0"])
                .env("DJANGO_SETTINGS_MODULE", "benchsettings")
                .env("PYTHONPATH", &base)
                .current_dir(&base)
                .stdout(Stdio::null()),
        )
    };
    ours_once()?;
    peer_once()?;
    let (mut ours, mut peer) = (Vec::new(), Vec::new());
    for _ in 0..RUNS {
        ours.push(ours_once()?);
        peer.push(peer_once()?);
    }
    let (ours, peer) = (median(ours), median(peer));
    // A rebuild with nothing changed, the last build's output in place.
    let again = build_in(&base)?;

    // Memory on a tree ten times larger (verbatim only: collectstatic
    // would take minutes).
    let big_base = base.join("big");
    project(&big_base)?;
    generate(&big_base.join("static"), BIG)?;
    warm_cache(&big_base, "static");
    let big = build_in(&big_base)?;
    let _ = fs::remove_dir_all(&big_base);

    println!("\nassets: {ASSETS} files in {}; verbatim build vs Django {version} collectstatic (ManifestStaticFilesStorage)", base.display());
    println!(
        "  verbatim build          {:>7.2} s  peak RSS {:>6.1} MiB  (median of {RUNS})",
        ours.wall.as_secs_f64(),
        ours.max_rss_kib as f64 / 1024.0
    );
    println!(
        "  verbatim build (again)  {:>7.2} s",
        again.wall.as_secs_f64()
    );
    println!(
        "  django collectstatic    {:>7.2} s  peak RSS {:>6.1} MiB  (median of {RUNS})",
        peer.wall.as_secs_f64(),
        peer.max_rss_kib as f64 / 1024.0
    );
    println!(
        "  speed-up collectstatic / verbatim = {:.1}x  (target >= 25x, issue #11)",
        peer.wall.as_secs_f64() / ours.wall.as_secs_f64()
    );
    println!(
        "  verbatim build, {BIG} files {:>7.2} s  peak RSS {:>6.1} MiB  (target < {BIG_RSS_MIB} MiB, issue #11)",
        big.wall.as_secs_f64(),
        big.max_rss_kib as f64 / 1024.0
    );
    Ok(())
}
