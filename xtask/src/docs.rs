//! `cargo xtask docs`: the book in `docs/`. Its command reference is
//! generated from the command line's definitions (`verbatim man
//! --markdown`), its links are checked (`links`), its `console` examples
//! are run against the real binary (`doctest`), and it is built with
//! mdBook when mdBook is there (`cargo xtask ci` installs it), else its
//! structure is checked here.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::{doctest, links, root, run, setup, Result};

/// The generated page, relative to the repository root.
pub const REFERENCE: &str = "docs/src/reference/commands.md";

/// `cargo xtask docs [--test | --reference | --check]`.
pub fn main(args: &[&str]) -> Result {
    match args {
        [] => {
            check()?;
            build_book(mdbook().as_deref())
        }
        ["--test"] => doctest::run(&verbatim()?),
        ["--reference"] => write_reference(),
        ["--check"] => check(),
        _ => Err("usage: cargo xtask docs [--test | --reference | --check]".into()),
    }
}

/// What CI checks without building the book: the reference is up to date,
/// every page is in SUMMARY.md, every link and anchor resolves.
pub fn check() -> Result {
    check_reference()?;
    check_summary(&root().join("docs/src"))?;
    links::check(&root())
}

/// The `verbatim` binary, built now (a no-op when the tests built it).
pub fn verbatim() -> Result<PathBuf> {
    // The binary the tests build, with the features the tests unify: a
    // `cargo build --bin verbatim` would resolve them apart and build the
    // dependencies a second time (in `xtask ci`, over a minute cold).
    run("cargo", &["test", "--workspace", "--no-run", "--quiet"])?;
    let bin = target_dir().join("debug/verbatim");
    if bin.is_file() {
        Ok(bin)
    } else {
        Err(format!(
            "built verbatim, but {} is not there",
            bin.display()
        ))
    }
}

/// Cargo's target directory: `CARGO_TARGET_DIR`, else `target/`.
pub fn target_dir() -> PathBuf {
    let target =
        std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root().join("target"), PathBuf::from);
    if target.is_relative() {
        root().join(target)
    } else {
        target
    }
}

fn reference() -> Result<String> {
    let out = Command::new(verbatim()?)
        .args(["man", "--markdown"])
        .output()
        .map_err(|e| format!("cannot run verbatim man --markdown: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "verbatim man --markdown failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    String::from_utf8(out.stdout).map_err(|_| "verbatim man --markdown: not UTF-8".into())
}

fn write_reference() -> Result {
    let path = root().join(REFERENCE);
    std::fs::write(&path, reference()?).map_err(|e| format!("writing {}: {e}", path.display()))?;
    eprintln!("wrote {REFERENCE}");
    Ok(())
}

fn check_reference() -> Result {
    let path = root().join(REFERENCE);
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    if committed == reference()? {
        Ok(())
    } else {
        Err(format!(
            "{REFERENCE} is out of date with the command line: run `cargo xtask docs --reference` and commit it"
        ))
    }
}

/// Every link of SUMMARY.md names a page that exists, and every page of
/// the book is linked from it (mdBook would drop it silently).
pub fn check_summary(src: &Path) -> Result {
    let summary = std::fs::read_to_string(src.join("SUMMARY.md"))
        .map_err(|e| format!("reading docs/src/SUMMARY.md: {e}"))?;
    let listed: Vec<String> = links::targets(&summary)
        .into_iter()
        .map(|(_, t)| t)
        .collect();
    let mut problems = Vec::new();
    for page in &listed {
        if !src.join(page).is_file() {
            problems.push(format!(
                "docs/src/SUMMARY.md links {page}, which does not exist"
            ));
        }
    }
    for page in links::markdown_files(src) {
        let rel = page.strip_prefix(src).unwrap_or(&page);
        let rel = rel.to_string_lossy();
        if rel != "SUMMARY.md" && !listed.iter().any(|l| *l == rel) {
            problems.push(format!(
                "docs/src/{rel} is in no chapter of docs/src/SUMMARY.md"
            ));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("\n"))
    }
}

/// The mdBook `ci` installs (cached), else one on PATH.
pub fn mdbook() -> Option<PathBuf> {
    let cached = setup::mdbook_bin();
    if cached.is_file() {
        return Some(cached);
    }
    setup::have("mdbook").then(|| PathBuf::from("mdbook"))
}

/// `mdbook build docs` into the target directory's `book/`, or, without mdBook, says that
/// only the structure was checked.
pub fn build_book(mdbook: Option<&Path>) -> Result {
    let Some(mdbook) = mdbook else {
        eprintln!(
            "WARNING: mdBook is not installed: checked the book's structure, links and \
             reference, but did not build it (`cargo xtask ci` installs mdBook into ~/.cache/verbatim)"
        );
        return Ok(());
    };
    let out = target_dir().join("book");
    let mdbook = mdbook.to_string_lossy();
    run(
        &mdbook,
        &["build", "docs", "--dest-dir", &out.to_string_lossy()],
    )?;
    eprintln!("the book is in {}/index.html", out.display());
    Ok(())
}
