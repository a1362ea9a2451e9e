//! `cargo xtask house`: the layout rules ARCHITECTURE.md promises, checked
//! so that they stay true.
//!
//! - No source file of the product over [`MAX_FILE_LINES`] lines, not
//!   counting its unit tests (a trailing `#[cfg(test)] mod tests { … }`).
//! - No function over [`MAX_FN_LINES`] lines, unit tests aside.
//! - No command module imports another: a command may use `super::flags`,
//!   nothing else of the command layer.
//! - The library never reaches into the binary (`src/bin/`).
//!
//! Functions are found with a small lexer that knows strings, raw strings,
//! characters, lifetimes and comments, so a `'{'` in a scanner never
//! unbalances the braces.

use std::fs;
use std::path::{Path, PathBuf};

use crate::{root, Result};

/// The most lines a source file may have, unit tests aside.
pub const MAX_FILE_LINES: usize = 900;
/// The most lines a function may have, unit tests aside.
pub const MAX_FN_LINES: usize = 150;

pub fn check() -> Result {
    let src = root().join("src");
    let mut problems = Vec::new();
    for path in rust_files(&src)? {
        let text = fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let shown = path
            .strip_prefix(root())
            .unwrap_or(&path)
            .display()
            .to_string();
        problems.extend(check_file(&shown, &text));
    }
    if problems.is_empty() {
        eprintln!(
            "house: every file ≤ {MAX_FILE_LINES} lines, every function ≤ {MAX_FN_LINES}, no command imports another"
        );
        return Ok(());
    }
    for p in &problems {
        eprintln!("house: {p}");
    }
    Err(format!(
        "{} layout rule(s) broken (see ARCHITECTURE.md)",
        problems.len()
    ))
}

/// The problems of one file, `path` as shown in messages.
fn check_file(path: &str, text: &str) -> Vec<String> {
    let mut problems = Vec::new();
    let code = without_tests(text);
    let lines = code.lines().count();
    if lines > MAX_FILE_LINES {
        problems.push(format!(
            "{path}: {lines} lines besides its tests (at most {MAX_FILE_LINES}): split it by concern"
        ));
    }
    for (name, line, len) in functions(code) {
        if len > MAX_FN_LINES {
            problems.push(format!(
                "{path}:{line}: fn {name} is {len} lines (at most {MAX_FN_LINES}): split it into steps"
            ));
        }
    }
    let is_command = path.contains("src/bin/verbatim/commands/")
        && !path.ends_with("/mod.rs")
        && !path.ends_with("/flags.rs");
    for (n, l) in code.lines().enumerate() {
        let l = l.trim_start();
        if l.starts_with("//") {
            continue;
        }
        if is_command {
            let reaches = l
                .match_indices("super::")
                .any(|(i, _)| !l[i + "super::".len()..].starts_with("flags"));
            if reaches || l.contains("crate::commands") {
                problems.push(format!(
                    "{path}:{}: a command imports another module of the command layer (only `super::flags` is allowed): {l}",
                    n + 1
                ));
            }
        }
        if !path.contains("src/bin/") && (l.contains("crate::commands") || l.contains("crate::cli"))
        {
            problems.push(format!(
                "{path}:{}: the library reaches into the binary: {l}",
                n + 1
            ));
        }
    }
    problems
}

/// `text` up to a trailing `#[cfg(test)] mod tests`, if it has one.
fn without_tests(text: &str) -> &str {
    let mut at = 0;
    for line in text.split_inclusive('\n') {
        if line.trim_end() == "#[cfg(test)]" {
            let rest = text[at + line.len()..].trim_start();
            if rest.starts_with("mod tests {") || rest.starts_with("mod tests;") {
                return &text[..at];
            }
        }
        at += line.len();
    }
    text
}

/// Every function in `code`: its name, its first line (1-based) and its
/// length in lines, from `fn` to its closing brace.
fn functions(code: &str) -> Vec<(String, usize, usize)> {
    let tokens = tokens(code);
    let mut out = Vec::new();
    for (i, t) in tokens.iter().enumerate() {
        let Tok::Word(w, line) = t else { continue };
        if *w != "fn" {
            continue;
        }
        let Some(Tok::Word(name, _)) = tokens.get(i + 1) else {
            continue;
        };
        // The body: the first `{` before a `;` (a declaration has none).
        let mut depth = 0usize;
        let mut end = None;
        for t in &tokens[i + 2..] {
            match t {
                Tok::Punct(';', _) if depth == 0 => break,
                Tok::Punct('{', _) => depth += 1,
                Tok::Punct('}', l) => {
                    depth = depth.saturating_sub(1);
                    if depth == 0 {
                        end = Some(*l);
                        break;
                    }
                }
                _ => {}
            }
        }
        if let Some(end) = end {
            out.push((name.to_string(), *line, end - line + 1));
        }
    }
    out
}

#[derive(Debug, PartialEq)]
enum Tok<'a> {
    Word(&'a str, usize),
    Punct(char, usize),
}

/// Words and the punctuation that matters (`{`, `}`, `;`), with their
/// lines; strings, characters and comments are skipped whole.
fn tokens(code: &str) -> Vec<Tok<'_>> {
    let b = code.as_bytes();
    let (mut i, mut line, mut out) = (0, 1, Vec::new());
    let skip_to = |from: usize, line: &mut usize, end: usize| {
        *line += code[from..end].matches('\n').count();
        end
    };
    while i < b.len() {
        let c = b[i];
        match c {
            b'\n' => {
                line += 1;
                i += 1;
            }
            b'/' if b.get(i + 1) == Some(&b'/') => {
                i = code[i..].find('\n').map_or(b.len(), |n| i + n);
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                let end = code[i + 2..].find("*/").map_or(b.len(), |n| i + 2 + n + 2);
                i = skip_to(i, &mut line, end);
            }
            b'r' if raw_string_start(&b[i..]).is_some() => {
                let hashes = raw_string_start(&b[i..]).unwrap_or(0);
                let close = format!("\"{}", "#".repeat(hashes));
                let body = i + 2 + hashes;
                let end = code[body..]
                    .find(&close)
                    .map_or(b.len(), |n| body + n + close.len());
                i = skip_to(i, &mut line, end);
            }
            b'"' => {
                let mut j = i + 1;
                while j < b.len() && b[j] != b'"' {
                    j += if b[j] == b'\\' { 2 } else { 1 };
                }
                i = skip_to(i, &mut line, (j + 1).min(b.len()));
            }
            b'\'' => {
                // A character ('x', '\n', '\u{1F600}') or a lifetime ('a).
                if b.get(i + 1) == Some(&b'\\') {
                    let end = code[i + 2..].find('\'').map_or(b.len(), |n| i + 2 + n + 1);
                    i = end;
                } else {
                    let ch_len = code[i + 1..].chars().next().map_or(1, char::len_utf8);
                    if b.get(i + 1 + ch_len) == Some(&b'\'') {
                        i += 2 + ch_len;
                    } else {
                        i += 1; // a lifetime: its name is read as a word next
                    }
                }
            }
            b'{' | b'}' | b';' => {
                out.push(Tok::Punct(c as char, line));
                i += 1;
            }
            c if c.is_ascii_alphabetic() || c == b'_' => {
                let start = i;
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                    i += 1;
                }
                out.push(Tok::Word(&code[start..i], line));
            }
            _ => i += 1,
        }
    }
    out
}

/// The number of `#`s when `b` starts a raw string (`r"`, `r#"`, `br"` is
/// seen from its `r`).
fn raw_string_start(b: &[u8]) -> Option<usize> {
    let hashes = b[1..].iter().take_while(|&&c| c == b'#').count();
    (b.get(1 + hashes) == Some(&b'"')).then_some(hashes)
}

/// Every `.rs` file under `dir`, sorted.
fn rust_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        let entries = fs::read_dir(&d).map_err(|e| format!("{}: {e}", d.display()))?;
        for e in entries {
            let p = e.map_err(|e| format!("{}: {e}", d.display()))?.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }
    out.sort();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn functions_are_measured_whatever_their_text_holds() {
        let code = "fn a() {\n    let c = '{';\n    let s = \"}}\";\n    let r = r#\"{\"#;\n    // }\n}\nfn decl();\nfn b<'x>(v: &'x str) {\n}\n";
        assert_eq!(
            functions(code),
            [("a".to_owned(), 1, 6), ("b".to_owned(), 8, 2)]
        );
    }

    #[test]
    fn long_files_and_functions_and_command_imports_are_named() {
        let long_fn = format!("fn big() {{\n{}}}\n", "    x();\n".repeat(MAX_FN_LINES));
        let problems = check_file("src/x.rs", &long_fn);
        assert!(problems[0].contains("fn big is 152 lines"), "{problems:?}");

        let tests = format!(
            "fn f() {{}}\n#[cfg(test)]\nmod tests {{\n{}}}\n",
            "\n".repeat(1000)
        );
        assert!(check_file("src/x.rs", &tests).is_empty());
        let long_file = "\n".repeat(MAX_FILE_LINES + 1);
        assert_eq!(check_file("src/x.rs", &long_file).len(), 1);

        let cmd = "use super::flags;\nuse super::status::print;\n";
        let problems = check_file("src/bin/verbatim/commands/deploy.rs", cmd);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].contains(":2:"));
        assert!(check_file("src/bin/verbatim/commands/mod.rs", cmd).is_empty());
        assert_eq!(
            check_file("src/host/x.rs", "use crate::cli::Global;\n").len(),
            1
        );
    }
}
