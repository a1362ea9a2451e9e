//! `cargo xtask docs --test`: the book's `console` blocks, run.
//!
//! The format is trycmd's: in a block fenced ```` ```console ````, a line
//! `$ command` is run (lines `> …` after it continue it: a here-document,
//! a long command), an optional `? 2` (or `? failed`) line after it is the
//! exit status expected (else 0), and the lines up to the next `$` are its
//! output, stdout and stderr together. `...` on a line of its own matches
//! any number of lines, `[..]` any text within a line. Each page runs in
//! a fresh temporary directory, its blocks in order, with the real
//! `verbatim` first on `PATH`; `cd DIR` and `export NAME=VALUE` lines carry
//! over to the next commands, like a shell. A process a command leaves in
//! the background (`verbatim agent … &`) is ended when the page is done.
//!
//! A block that needs what CI cannot start cheaply (an AWS account, a
//! cluster) is fenced ```` ```console,ignore ```` and counted as skipped,
//! by page, never silently.

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::{links, root, Result};

/// How long one command may take before it fails the page.
const TIMEOUT: Duration = Duration::from_secs(120);

#[derive(Debug, PartialEq)]
struct Cmd {
    line: usize,
    script: String,
    status: Status,
    output: Vec<String>,
}

#[derive(Debug, PartialEq)]
enum Status {
    Code(i32),
    Failed,
}

#[derive(Default, Debug)]
struct Page {
    cmds: Vec<Cmd>,
    skipped: usize,
}

/// Runs every page's `console` blocks against `bin`.
pub fn run(bin: &Path) -> Result {
    let started = Instant::now();
    let src = root().join("docs/src");
    let mut failures = Vec::new();
    let (mut ran, mut skipped) = (0, Vec::new());
    for file in links::markdown_files(&src) {
        let rel = file
            .strip_prefix(&src)
            .unwrap_or(&file)
            .display()
            .to_string();
        let text = std::fs::read_to_string(&file).map_err(|e| format!("{rel}: {e}"))?;
        let page = parse(&text).map_err(|e| format!("docs/src/{rel}:{e}"))?;
        if page.skipped > 0 {
            skipped.push(format!("{rel} ({})", page.skipped));
        }
        if page.cmds.is_empty() {
            continue;
        }
        let took = Instant::now();
        let n = page.cmds.len();
        match run_page(bin, &rel, &page.cmds) {
            Ok(()) => eprintln!("docs: {rel}: {n} commands ok ({:.1?})", took.elapsed()),
            Err(e) => failures.push(e),
        }
        ran += n;
    }
    let count: usize = skipped
        .iter()
        .filter_map(|s| {
            s.rsplit_once('(')?
                .1
                .trim_end_matches(')')
                .parse::<usize>()
                .ok()
        })
        .sum();
    eprintln!(
        "docs: ran {ran} commands in {:.1?}; skipped {count} blocks marked `console,ignore`{}{}",
        started.elapsed(),
        if skipped.is_empty() { "" } else { ": " },
        skipped.join(", ")
    );
    if failures.is_empty() {
        Ok(())
    } else {
        Err(failures.join("\n\n"))
    }
}

/// The commands of a page's `console` blocks, and how many blocks are
/// marked `ignore`.
fn parse(text: &str) -> std::result::Result<Page, String> {
    let mut page = Page::default();
    let mut lines = text.lines().enumerate().peekable();
    while let Some((_, line)) = lines.next() {
        let Some(info) = line.trim_start().strip_prefix("```") else {
            continue;
        };
        let mut body = Vec::new();
        for (n, l) in lines.by_ref() {
            if l.trim_start().starts_with("```") {
                break;
            }
            body.push((n + 1, l));
        }
        let mut tags = info.split(',').map(str::trim);
        if tags.next() != Some("console") {
            continue;
        }
        if tags.any(|t| t == "ignore") {
            page.skipped += 1;
            continue;
        }
        page.cmds.extend(commands(&body)?);
    }
    Ok(page)
}

fn commands(body: &[(usize, &str)]) -> std::result::Result<Vec<Cmd>, String> {
    let mut cmds: Vec<Cmd> = Vec::new();
    let mut continuing = false;
    for &(n, l) in body {
        if let Some(script) = l.strip_prefix("$ ") {
            cmds.push(Cmd {
                line: n,
                script: script.to_owned(),
                status: Status::Code(0),
                output: Vec::new(),
            });
            continuing = true;
            continue;
        }
        let Some(cmd) = cmds.last_mut() else {
            return Err(format!("{n}: a console block must start with `$ command`"));
        };
        if continuing {
            if let Some(more) = l.strip_prefix("> ").or((l == ">").then_some("")) {
                cmd.script.push('\n');
                cmd.script.push_str(more);
                continue;
            }
            continuing = false;
            if let Some(status) = l.strip_prefix("? ") {
                cmd.status = match status.trim() {
                    "failed" => Status::Failed,
                    code => Status::Code(
                        code.parse()
                            .map_err(|_| format!("{n}: `? {code}`: not an exit code"))?,
                    ),
                };
                continue;
            }
        }
        cmd.output.push(l.to_owned());
    }
    Ok(cmds)
}

/// Runs one page's commands in a fresh directory, then ends whatever they
/// left running.
fn run_page(bin: &Path, rel: &str, cmds: &[Cmd]) -> Result {
    let dir = std::env::temp_dir().join(format!(
        "verbatim-docs-{}-{}",
        std::process::id(),
        rel.replace(['/', '.'], "-")
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    let mut shell = Shell::new(bin, &dir);
    // Every command runs, so that one run shows every difference.
    let failed: Vec<String> = cmds
        .iter()
        .filter_map(|cmd| {
            let e = shell.run(cmd).err()?;
            Some(format!(
                "docs/src/{rel}:{}: `$ {}`\n{e}",
                cmd.line, cmd.script
            ))
        })
        .collect();
    shell.end();
    if failed.is_empty() {
        let _ = std::fs::remove_dir_all(&dir);
        Ok(())
    } else {
        Err(format!(
            "{}\n(the page's directory is kept: {})",
            failed.join("\n\n"),
            dir.display()
        ))
    }
}

/// The state a page's commands share: the directory, the variables, the
/// process groups to end.
struct Shell {
    cwd: PathBuf,
    env: Vec<(String, String)>,
    groups: Vec<u32>,
}

impl Shell {
    fn new(bin: &Path, dir: &Path) -> Shell {
        let bin_dir = bin.parent().unwrap_or(Path::new("."));
        let path = std::env::var("PATH").unwrap_or_default();
        let env = [
            ("PATH", format!("{}:{path}", bin_dir.display())),
            ("NO_COLOR", "1".into()),
            ("CI", "true".into()),
            ("TERM", "dumb".into()),
            ("GIT_AUTHOR_NAME", "Ada".into()),
            ("GIT_AUTHOR_EMAIL", "ada@example.com".into()),
            ("GIT_COMMITTER_NAME", "Ada".into()),
            ("GIT_COMMITTER_EMAIL", "ada@example.com".into()),
            ("VERBATIM_ACTOR", "ada".into()),
        ];
        Shell {
            cwd: dir.to_owned(),
            env: env.into_iter().map(|(k, v)| (k.to_owned(), v)).collect(),
            groups: Vec::new(),
        }
    }

    fn run(&mut self, cmd: &Cmd) -> Result {
        let script = cmd.script.trim();
        if let Some(dir) = script
            .strip_prefix("cd ")
            .filter(|d| !d.contains([';', '&', '|']))
        {
            self.cwd = self.cwd.join(dir.trim());
            return Ok(());
        }
        if let Some((name, value)) = script
            .strip_prefix("export ")
            .and_then(|a| a.split_once('='))
            .filter(|(n, v)| !n.contains(' ') && !v.contains([' ', '$', '`']))
        {
            let value = value.trim_matches(['"', '\'']).to_owned();
            self.env.retain(|(k, _)| k != name);
            self.env.push((name.to_owned(), value));
            return Ok(());
        }
        let (code, output) = self.exec(&cmd.script)?;
        let actual: Vec<&str> = output.lines().map(str::trim_end).collect();
        let expected: Vec<&str> = cmd.output.iter().map(|l| l.trim_end()).collect();
        let status_ok = match cmd.status {
            Status::Code(c) => code == Some(c),
            Status::Failed => code.is_some_and(|c| c != 0),
        };
        if status_ok && lines_match(&expected, &actual) {
            return Ok(());
        }
        Err(format!(
            "exit status {code:?}, expected {:?}\n--- expected\n{}\n--- actual\n{}",
            cmd.status,
            expected.join("\n"),
            actual.join("\n")
        ))
    }

    /// `bash -c SCRIPT` with stderr into stdout, in a process group of its
    /// own, within [`TIMEOUT`].
    fn exec(&mut self, script: &str) -> Result<(Option<i32>, String)> {
        let mut child = Command::new("bash")
            .arg("-c")
            .arg(format!("exec 2>&1\n{script}"))
            .current_dir(&self.cwd)
            .env_clear()
            .envs(inherited())
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .map_err(|e| format!("cannot run bash: {e}"))?;
        self.groups.push(child.id());
        let mut stdout = child.stdout.take().expect("piped");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut out = Vec::new();
            let _ = stdout.read_to_end(&mut out);
            let _ = tx.send(out);
        });
        let deadline = Instant::now() + TIMEOUT;
        let status = loop {
            if let Some(s) = child.try_wait().map_err(|e| e.to_string())? {
                break s;
            }
            if Instant::now() > deadline {
                kill_group(child.id());
                let _ = child.wait();
                return Err(format!("still running after {TIMEOUT:?}: ended"));
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let out = rx.recv_timeout(Duration::from_secs(5)).map_err(|_| {
            "a process it left in the background holds its output open: redirect the \
             background command's output (`> web1.log 2>&1 &`)"
                .to_owned()
        })?;
        Ok((status.code(), String::from_utf8_lossy(&out).into_owned()))
    }

    /// Ends every process group a command of the page started.
    fn end(&mut self) {
        for pgid in self.groups.drain(..) {
            kill_group(pgid);
        }
    }
}

/// What the commands inherit: what a shell needs, nothing of verbatim's.
fn inherited() -> Vec<(String, String)> {
    std::env::vars()
        .filter(|(k, _)| {
            matches!(k.as_str(), "HOME" | "USER" | "LANG" | "TMPDIR")
                || k.starts_with("LC_")
                || k.starts_with("VERBATIM_TEST_")
        })
        .collect()
}

fn kill_group(pgid: u32) {
    let _ = Command::new("kill")
        .args(["-TERM", "--", &format!("-{pgid}")])
        .stderr(Stdio::null())
        .status();
}

/// trycmd's matching: `...` alone on a line matches any lines, `[..]`
/// any text within one.
fn lines_match(expected: &[&str], actual: &[&str]) -> bool {
    match expected.split_first() {
        None => actual.is_empty(),
        Some((&"...", rest)) => (0..=actual.len()).any(|i| lines_match(rest, &actual[i..])),
        Some((e, rest)) => actual
            .split_first()
            .is_some_and(|(a, more)| line_matches(e, a) && lines_match(rest, more)),
    }
}

fn line_matches(expected: &str, actual: &str) -> bool {
    let parts: Vec<&str> = expected.split("[..]").collect();
    if parts.len() == 1 {
        return expected == actual;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !actual.starts_with(first)
        || !actual.ends_with(last)
        || actual.len() < first.len() + last.len()
    {
        return false;
    }
    let mut rest = &actual[first.len()..actual.len() - last.len()];
    for part in &parts[1..parts.len() - 1] {
        match rest.find(part) {
            Some(i) => rest = &rest[i + part.len()..],
            None => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards() {
        assert!(line_matches(
            "built [..] and manifest sha256:[..]",
            "built x and manifest sha256:ab"
        ));
        assert!(!line_matches("a[..]b", "ab-"));
        assert!(line_matches("a[..]b", "ab"));
        assert!(lines_match(&["x", "...", "z"], &["x", "y", "y", "z"]));
        assert!(lines_match(&["x", "...", "z"], &["x", "z"]));
        assert!(!lines_match(&["x"], &["x", "y"]));
        assert!(lines_match(&["..."], &[]));
    }

    #[test]
    fn parses_commands_status_and_output() {
        let page = parse(
            "text\n```console\n$ cat > a <<'EOF'\n> one\n> EOF\n$ verbatim nope\n? 2\nerror: [..]\n...\n```\n\n```console,ignore\n$ aws s3 ls\n```\n```toml\n$ not = 1\n```\n",
        )
        .unwrap();
        assert_eq!(page.skipped, 1);
        assert_eq!(page.cmds.len(), 2);
        assert_eq!(page.cmds[0].script, "cat > a <<'EOF'\none\nEOF");
        assert_eq!(page.cmds[1].status, Status::Code(2));
        assert_eq!(page.cmds[1].output, ["error: [..]", "..."]);
        assert_eq!(page.cmds[1].line, 6);
    }
}
