//! Seed inputs for the fuzz targets, taken from the repository's own
//! fixtures so the fuzzer starts from the shapes the tests already know:
//! string literals of the unit and integration tests, the example project,
//! the example manifests, `fuzz/seeds/<target>/`, and, for the unpacker,
//! tar streams written here (ordinary and hostile).

use std::fs;
use std::path::Path;

use crate::{root, Result};

/// Every seed of `target`.
pub fn seeds(target: &str) -> Result<Vec<Vec<u8>>> {
    let root = root();
    let mut out = files_in(&root.join("fuzz/seeds").join(target))?;
    match target {
        "css" | "js" | "html" => {
            for src in [
                "src/assets/css.rs",
                "src/assets/js.rs",
                "src/assets/html.rs",
                "src/assets/graph",
                "tests/it/assets.rs",
                "tests/it/browser.rs",
                "tests/it/build.rs",
            ] {
                out.extend(literals_of(&root.join(src))?);
            }
            let ext: &[&str] = match target {
                "css" => &["css"],
                "js" => &["js", "mjs"],
                _ => &["html", "htm"],
            };
            out.extend(files_with(&root.join("examples"), ext)?);
        }
        "json" => {
            // The first byte picks the scanner: both for every document.
            let mut docs = literals_of(&root.join("src/assets/html.rs"))?;
            docs.extend(literals_of(&root.join("src/assets/json.rs"))?);
            docs.extend(it_literals()?);
            docs.retain(|d| d.first() == Some(&b'{'));
            docs.extend(files_with(
                &root.join("examples"),
                &["map", "webmanifest", "json"],
            )?);
            for doc in docs {
                for pick in [b'0', b'1'] {
                    out.push([&[pick], &doc[..]].concat());
                }
            }
        }
        "config" => {
            out.extend(files_with(&root.join("examples"), &["toml"])?);
            out.extend(literals_of(&root.join("src/config"))?);
            for lit in it_literals()? {
                if lit.windows(5).any(|w| w == b"[app]") {
                    out.push(lit);
                }
            }
        }
        "documents" => {
            out.extend(files_with(&root.join("manifests/examples"), &["json"])?);
            for lit in it_literals()? {
                if lit.first() == Some(&b'{') {
                    out.push(lit);
                }
            }
        }
        "unpack" => out.extend(tars()),
        _ => return Err(format!("no seeds for unknown target `{target}`")),
    }
    out.retain(|s| s.len() >= 3);
    out.sort();
    out.dedup();
    Ok(out)
}

fn files_in(dir: &Path) -> Result<Vec<Vec<u8>>> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for e in entries.flatten() {
        if e.file_type().is_ok_and(|t| t.is_file()) {
            out.push(
                fs::read(e.path())
                    .map_err(|err| format!("reading {}: {err}", e.path().display()))?,
            );
        }
    }
    Ok(out)
}

/// Files under `dir` (recursively) whose extension is one of `ext`.
fn files_with(dir: &Path, ext: &[&str]) -> Result<Vec<Vec<u8>>> {
    let mut out = Vec::new();
    let Ok(entries) = fs::read_dir(dir) else {
        return Ok(out);
    };
    for e in entries.flatten() {
        let p = e.path();
        let Ok(t) = e.file_type() else { continue };
        if t.is_dir() {
            out.extend(files_with(&p, ext)?);
        } else if t.is_file() && p.extension().is_some_and(|x| ext.iter().any(|e| x == *e)) {
            out.push(fs::read(&p).map_err(|err| format!("reading {}: {err}", p.display()))?);
        }
    }
    Ok(out)
}

fn it_literals() -> Result<Vec<Vec<u8>>> {
    let mut out = Vec::new();
    let dir = root().join("tests/it");
    let mut paths: Vec<_> = fs::read_dir(&dir)
        .map_err(|e| format!("reading {}: {e}", dir.display()))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "rs"))
        .collect();
    paths.sort();
    for p in paths {
        out.extend(literals_of(&p)?);
    }
    Ok(out)
}

/// The string literals of the Rust file at `path`, or of every Rust file
/// below the directory at `path`, in path order.
fn literals_of(path: &Path) -> Result<Vec<Vec<u8>>> {
    if path.is_dir() {
        let mut paths: Vec<_> = fs::read_dir(path)
            .map_err(|e| format!("reading {}: {e}", path.display()))?
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.is_dir() || p.extension().is_some_and(|x| x == "rs"))
            .collect();
        paths.sort();
        let mut out = Vec::new();
        for p in paths {
            out.extend(literals_of(&p)?);
        }
        return Ok(out);
    }
    let text = fs::read_to_string(path).map_err(|e| format!("reading {}: {e}", path.display()))?;
    Ok(string_literals(&text)
        .into_iter()
        .map(String::into_bytes)
        .collect())
}

/// The values of the string literals in Rust source (`"…"` with escapes,
/// `r"…"`, `r#"…"#`), skipping comments and char literals. Good enough
/// for the repository's own tests; a seed that comes out wrong is still a
/// seed.
pub fn string_literals(src: &str) -> Vec<String> {
    let b = src.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'/' if b.get(i + 1) == Some(&b'/') => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            b'\'' => {
                // A char literal ('x', '\n', '"') or a lifetime ('a).
                if b.get(i + 1) == Some(&b'\\') {
                    i += 2;
                    while i < b.len() && b[i] != b'\'' {
                        i += 1;
                    }
                    i += 1;
                } else {
                    let len = src[i + 1..].chars().next().map_or(1, char::len_utf8);
                    i += if b.get(i + 1 + len) == Some(&b'\'') {
                        len + 2
                    } else {
                        1
                    };
                }
            }
            b'r' if (b.get(i + 1) == Some(&b'"') || b.get(i + 1) == Some(&b'#'))
                && (i == 0 || !(b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_')) =>
            {
                let hashes = b[i + 1..].iter().take_while(|&&c| c == b'#').count();
                let open = i + 1 + hashes;
                if b.get(open) != Some(&b'"') {
                    i += 1;
                    continue;
                }
                let close = format!("\"{}", "#".repeat(hashes));
                match src[open + 1..].find(&close) {
                    Some(k) => {
                        out.push(src[open + 1..open + 1 + k].to_string());
                        i = open + 1 + k + close.len();
                    }
                    None => break,
                }
            }
            b'"' => {
                let (value, end) = cooked(src, i + 1);
                out.push(value);
                i = end;
            }
            _ => i += 1,
        }
    }
    out
}

/// A `"…"` literal's value from just after the quote; returns the value
/// and the offset after the closing quote.
fn cooked(src: &str, start: usize) -> (String, usize) {
    let mut value = String::new();
    let mut chars = src[start..].char_indices().peekable();
    while let Some((k, c)) = chars.next() {
        match c {
            '"' => return (value, start + k + 1),
            '\\' => match chars.next().map(|(_, e)| e) {
                Some('n') => value.push('\n'),
                Some('r') => value.push('\r'),
                Some('t') => value.push('\t'),
                Some('0') => value.push('\0'),
                Some('x') => {
                    let hex: String = chars.by_ref().take(2).map(|(_, c)| c).collect();
                    if let Some(c) = u8::from_str_radix(&hex, 16).ok().map(char::from) {
                        value.push(c);
                    }
                }
                Some('u') => {
                    let hex: String = chars
                        .by_ref()
                        .map(|(_, c)| c)
                        .take_while(|&c| c != '}')
                        .filter(|&c| c != '{')
                        .collect();
                    if let Some(c) = u32::from_str_radix(&hex, 16).ok().and_then(char::from_u32) {
                        value.push(c);
                    }
                }
                Some('\n') => while chars.next_if(|&(_, c)| c.is_whitespace()).is_some() {},
                Some(other) => value.push(other),
                None => break,
            },
            c => value.push(c),
        }
    }
    (value, src.len())
}

/// One tar entry: path, type flag, link target, contents, mode.
type Entry<'a> = (&'a str, u8, &'a str, &'a [u8], u32);

/// Tar streams for the unpacker: an ordinary release, and the hostile
/// shapes `tests/it/environments.rs` checks by hand.
fn tars() -> Vec<Vec<u8>> {
    let cases: &[&[Entry]] = &[
        &[
            ("app/", b'5', "", b"", 0o755),
            (
                "app/bin/start",
                b'0',
                "",
                b"#!/bin/sh\nexec python3 server.py\n",
                0o755,
            ),
            ("app/server.py", b'0', "", b"print('hi')\n", 0o644),
            ("app/current", b'2', "server.py", b"", 0o777),
            ("app/up", b'2', "../app/bin", b"", 0o777),
        ],
        &[
            ("ok.txt", b'0', "", b"ok\n", 0o644),
            ("../../outside.txt", b'0', "", b"x", 0o644),
        ],
        &[("/tmp/verbatim-fuzz-absolute.txt", b'0', "", b"x", 0o644)],
        &[("escape", b'2', "../../outside.txt", b"", 0o777)],
        &[("abs", b'2', "/etc", b"", 0o777)],
        &[
            ("d", b'2', "sub", b"", 0o777),
            ("d/x.txt", b'0', "", b"x", 0o644),
        ],
        &[
            ("l", b'2', "d/../..", b"", 0o777),
            ("d", b'2', ".", b"", 0o777),
        ],
        &[("dev", b'3', "", b"", 0o644)],
        &[("fifo", b'6', "", b"", 0o644)],
        &[
            ("ok.txt", b'0', "", b"ok", 0o644),
            ("hard", b'1', "ok.txt", b"", 0o644),
        ],
        &[
            ("a.txt", b'0', "", b"1", 0o644),
            ("a.txt", b'0', "", b"2", 0o644),
        ],
        &[("a/./b", b'0', "", b"1", 0o644)],
    ];
    cases.iter().map(|entries| tar(entries)).collect()
}

/// A ustar stream; the end-of-archive blocks included.
fn tar(entries: &[Entry]) -> Vec<u8> {
    let mut out = Vec::new();
    for &(name, kind, link, data, mode) in entries {
        let mut h = [0u8; 512];
        let put = |h: &mut [u8; 512], at: usize, bytes: &[u8]| {
            h[at..at + bytes.len()].copy_from_slice(bytes);
        };
        put(&mut h, 0, name.as_bytes());
        put(&mut h, 100, format!("{mode:07o}\0").as_bytes());
        put(&mut h, 108, b"0000000\0");
        put(&mut h, 116, b"0000000\0");
        put(&mut h, 124, format!("{:011o}\0", data.len()).as_bytes());
        put(&mut h, 136, b"00000000000\0");
        h[156] = kind;
        put(&mut h, 157, link.as_bytes());
        put(&mut h, 257, b"ustar\x0000");
        put(&mut h, 148, b"        ");
        let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
        put(&mut h, 148, format!("{sum:06o}\0 ").as_bytes());
        out.extend_from_slice(&h);
        out.extend_from_slice(data);
        out.resize(out.len().next_multiple_of(512), 0);
    }
    out.resize(out.len() + 1024, 0);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_target_has_seeds_from_files_that_exist() {
        // A source file named here that moved would fail the CI fuzz pass
        // only after every test ran; this fails with the tests.
        for t in crate::fuzz::TARGETS {
            let seeds = seeds(t).unwrap_or_else(|e| panic!("{t}: {e}"));
            assert!(seeds.len() > 10, "{t}: only {} seeds", seeds.len());
        }
    }

    #[test]
    fn literals() {
        let src = r####"
            // "not this"
            let c = '"'; let l: &'a str = "a\"b\n\x41\u{e9}";
            check(r#"url("x")"#, r"c\d", "line \
                   continued");
            let by = br"bytes"; let id = "π";
        "####;
        assert_eq!(
            string_literals(src),
            [
                "a\"b\nAé",
                "url(\"x\")",
                "c\\d",
                "line continued",
                "bytes",
                "π"
            ]
        );
    }

    #[test]
    fn tar_headers_are_valid() {
        let t = tar(&[("a/b.txt", b'0', "", b"hello", 0o644)]);
        assert_eq!(t.len(), 512 * 2 + 1024);
        assert_eq!(&t[257..263], b"ustar\0");
        let sum: u32 = t[..512]
            .iter()
            .enumerate()
            .map(|(i, &b)| {
                if (148..156).contains(&i) {
                    32
                } else {
                    u32::from(b)
                }
            })
            .sum();
        let written = std::str::from_utf8(&t[148..154]).unwrap();
        assert_eq!(u32::from_str_radix(written, 8).unwrap(), sum);
        assert_eq!(&t[512..517], b"hello");
    }
}
