//! What the command line says: config errors drawn on real lines, help
//! under the right headings, one duration syntax, arguments that are not
//! UTF-8, permission errors that say whose the path is, man pages.

use std::fs;

use crate::util::Project;

/// A TOML syntax error shows the line and a caret on lines of their own,
/// not a literal `\n`; `--json` carries the same lines exactly.
#[test]
fn a_toml_error_is_drawn_on_real_lines() {
    let p = Project::with_config("[app]\ndir = \"app\"\nexclud = [\"x\"]\n");
    let err = p.fails(&["build"], 2);
    assert!(!err.contains("\\n"), "a literal \\n:\n{err}");
    let lines: Vec<&str> = err.lines().collect();
    assert!(
        lines[0].starts_with("error: invalid config verbatim.toml: TOML parse error at line 3"),
        "{err}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.trim_start() == "3 | exclud = [\"x\"]"),
        "{err}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.trim_start().starts_with("unknown field `exclud`")),
        "{err}"
    );
    let out = p.run(&["build", "--json"]);
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let message = doc["error"]["message"].as_str().unwrap();
    assert!(message.contains("\n  3 | exclud"), "{message:?}");
}

/// Every duration flag takes the same forms (`5m`, `15s`, `300`, `2h`,
/// `1500ms`) and refuses the same way: one parser for all. clap parses
/// every value before it checks conflicts, so `-q -v` after it tells a
/// value taken (the conflict is the error) from one refused.
#[test]
fn every_duration_flag_takes_the_same_forms() {
    let p = Project::new();
    let flags: [&[&str]; 8] = [
        &["status", "--timeout"],
        &[
            "promote",
            "dev",
            "--to",
            "prod",
            "--check-cmd",
            "true",
            "--check-timeout",
        ],
        &[
            "promote",
            "dev",
            "--to",
            "prod",
            "--wait-hosts",
            "1",
            "--wait-timeout",
        ],
        &["rollback", "prod", "--wait-hosts", "1", "--wait-timeout"],
        &["timestamp", "prod", "--sign-key", "k", "--valid-for"],
        &["agent", "prod", "--root", "srv", "--interval"],
        &["deploy", "prod", "--root", "srv", "--max-age"],
        &["fetch", "prod", "--into", "srv", "--max-age"],
    ];
    for flag in flags {
        for value in ["5m", "15s", "300", "2h", "1500ms"] {
            let args = [flag, &[value, "-q", "-v"]].concat();
            let err = p.fails(&args, 2);
            assert!(
                err.contains("'--quiet' cannot be used with '--verbose'"),
                "{args:?}: {err}"
            );
        }
        for (value, why) in [
            ("5x", "`5x`: unknown unit `x`; use ms, s, m, h or d"),
            ("m5", "`m5` is not a duration like 30s, 10m, 1h or 500ms"),
            ("0", "`0`: a duration must be more than zero"),
        ] {
            let args = [flag, &[value, "-q", "-v"]].concat();
            let err = p.fails(&args, 2);
            assert!(
                err.contains("invalid value") && err.contains(why),
                "{args:?}: {err}"
            );
        }
    }
    // And it is what the check gets: 5m is 300 seconds.
    p.write("app/x.py", "1");
    p.ok(&["publish", "--env", "dev"]);
    let v = p.json(&[
        "promote",
        "dev",
        "--to",
        "preprod",
        "--check-cmd",
        "true",
        "--check-timeout",
        "5m",
    ]);
    assert_eq!(v["check"]["timeout_secs"], 300, "{v}");
    assert_eq!(v["check"]["status"], "passed", "{v}");
    let err = p.fails(
        &[
            "promote",
            "dev",
            "--to",
            "preprod",
            "--check-cmd",
            "true",
            "--check-timeout",
            "8d",
        ],
        2,
    );
    assert!(err.contains("`8d` is more than 7d"), "{err}");
}

/// The `--help` of `cmd`, as heading → the flags listed under it.
fn help_sections(cmd: &str) -> Vec<(String, Vec<String>)> {
    let out = std::process::Command::new(crate::util::BIN)
        .args([cmd, "--help"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let mut sections: Vec<(String, Vec<String>)> = Vec::new();
    for line in text.lines() {
        if let Some(heading) = line.strip_suffix(':').filter(|l| !l.starts_with(' ')) {
            sections.push((heading.to_owned(), Vec::new()));
        } else if let (Some((_, flags)), Some(flag)) = (
            sections.last_mut(),
            line.split_whitespace()
                .find(|w| w.starts_with("--"))
                .filter(|_| line.trim_start().starts_with('-')),
        ) {
            flags.push(flag.trim_end_matches(',').to_owned());
        }
    }
    sections
}

/// The heading `flag` is listed under in `cmd --help`.
fn heading_of(cmd: &str, flag: &str) -> String {
    help_sections(cmd)
        .into_iter()
        .find(|(_, flags)| flags.iter().any(|f| f == flag))
        .map(|(h, _)| h)
        .unwrap_or_else(|| panic!("{cmd} --help lists no {flag}"))
}

/// `deploy --help` and `agent --help` list their own flags under
/// "Options", and only the trust flags under "Signatures"; `agent --help`
/// says `--json` prints a document per line.
#[test]
fn host_help_lists_flags_under_the_right_headings() {
    for (cmd, own) in [
        ("deploy", &["--no-wait", "--dry-run", "--root", "--to"][..]),
        ("agent", &["--interval", "--root", "--host-id"]),
        ("fetch", &["--into"]),
    ] {
        for flag in own {
            assert_eq!(heading_of(cmd, flag), "Options", "{cmd} {flag}");
        }
        for flag in [
            "--allowed-signers",
            "--require",
            "--require-event-signer",
            "--max-age",
        ] {
            assert_eq!(heading_of(cmd, flag), "Signatures", "{cmd} {flag}");
        }
    }
    let out = std::process::Command::new(crate::util::BIN)
        .args(["agent", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8(out.stdout).unwrap();
    let words = help.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        words.contains("--json Print only JSON on stdout: one document (agent: one per line)"),
        "{help}"
    );
    assert!(
        words.contains("With --json it prints one JSON document per line (JSON Lines)"),
        "{help}"
    );
}

/// An argument that is not UTF-8 is a usage error naming it (exit 2), not
/// a panic; a path may still be any bytes.
#[test]
fn an_argument_that_is_not_utf8_is_a_usage_error_naming_it() {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;
    let p = Project::new();
    let bytes = |b: &[u8]| OsStr::from_bytes(b).to_owned();
    let cases = [
        (
            vec![bytes(b"verify"), bytes(b"sha256:\xff\xfe")],
            "<MANIFEST> (`sha256:\\xff\\xfe`) is not valid UTF-8",
        ),
        (
            vec![
                bytes(b"promote"),
                bytes(b"dev"),
                bytes(b"--to"),
                bytes(b"pr\xffod"),
            ],
            "--to (`pr\\xffod`) is not valid UTF-8",
        ),
        (
            vec![bytes(b"--store"), bytes(b"s3://b\xe9/x"), bytes(b"status")],
            "--store (`s3://b\\xe9/x`) is not valid UTF-8",
        ),
    ];
    for (args, said) in cases {
        let mut cmd = p.cmd(&[]);
        cmd.args(&args);
        let err = crate::util::exits(&mut cmd, 2);
        assert!(
            err.starts_with("error: ") && err.contains(said),
            "{args:?}: {err}"
        );
        assert!(!err.contains("panicked"), "{err}");
        let mut cmd = p.cmd(&["--json"]);
        cmd.args(&args);
        let out = cmd.output().unwrap();
        let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(doc["error"]["code"], 2, "{doc}");
        assert!(
            doc["error"]["message"].as_str().unwrap().contains(said),
            "{doc}"
        );
    }
    // A variable standing for a flag is named too.
    let mut cmd = p.cmd(&["status"]);
    cmd.env("VERBATIM_STORE", bytes(b"/srv/st\xf6re"));
    let err = crate::util::exits(&mut cmd, 2);
    assert!(
        err.contains("environment variable VERBATIM_STORE (`/srv/st\\xf6re`) is not valid UTF-8"),
        "{err}"
    );
    // A path is bytes: this one is simply not there.
    let mut cmd = p.cmd(&["status", "--config"]);
    cmd.arg(bytes(b"conf\xff.toml"));
    let err = crate::util::exits(&mut cmd, 2);
    assert!(err.contains("cannot read config conf"), "{err}");
    assert!(!err.contains("UTF-8"), "{err}");
}

/// A permission refused says whose the path is and what to run: as root,
/// the test runs verbatim as `nobody` on files root owns; otherwise on a
/// directory of its own made read-only.
#[test]
fn a_permission_refused_says_whose_the_path_is_and_what_to_run() {
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::process::CommandExt;
    let p = Project::new();
    p.write("app/x.py", "1");
    p.ok(&["publish"]);
    p.write("app/x.py", "2");
    let root = crate::util::is_root();
    let build = p.path().join(".verbatim/build");
    // nobody runs a copy: the build's own may sit under root's 0700 home.
    let bin = p.path().join("verbatim-as-nobody");
    fs::copy(crate::util::BIN, &bin).unwrap();
    fs::set_permissions(&bin, fs::Permissions::from_mode(0o755)).unwrap();
    let as_nobody = |args: &[&str]| {
        let mut cmd = crate::util::cmd_of(&bin, p.path(), args);
        if root {
            cmd.uid(65534).gid(65534);
        }
        cmd
    };
    let run = |args: &[&str]| {
        let mut cmd = as_nobody(args);
        let err = crate::util::exits(&mut cmd, 1);
        let hint = err
            .lines()
            .find_map(|l| l.strip_prefix("  hint: "))
            .unwrap_or_else(|| panic!("{args:?}: no hint:\n{err}"))
            .to_owned();
        let mut json = as_nobody(&[&["--json"], args].concat());
        let doc: serde_json::Value =
            serde_json::from_slice(&json.output().unwrap().stdout).unwrap();
        assert_eq!(doc["error"]["hint"], hint.as_str(), "{doc}");
        hint
    };
    if root {
        fs::set_permissions(p.path(), fs::Permissions::from_mode(0o755)).unwrap();
        let hint = run(&["build"]);
        assert!(
            hint.contains(
                "/.verbatim/build belongs to root (uid 0), and verbatim runs as nobody (uid 65534)"
            ) && hint.contains("run it as root (`sudo -u root verbatim …`)")
                && hint.contains("(`sudo chown -R nobody ")
                && hint.ends_with("/.verbatim/build`)"),
            "{hint}"
        );
        // The local store says where it is, so the hint names it.
        p.write("app/x.py", "3");
        p.ok(&["build"]);
        fs::set_permissions(&build, fs::Permissions::from_mode(0o777)).unwrap();
        let hint = run(&["publish", "--prebuilt"]);
        assert!(
            hint.starts_with(".verbatim/store belongs to root (uid 0)")
                && hint.ends_with("`sudo chown -R nobody .verbatim/store`)"),
            "{hint}"
        );
    } else {
        fs::set_permissions(&build, fs::Permissions::from_mode(0o555)).unwrap();
        let hint = run(&["build"]);
        fs::set_permissions(&build, fs::Permissions::from_mode(0o755)).unwrap();
        assert!(
            hint.contains("/.verbatim/build is ")
                && hint.contains("'s own (mode 555)")
                && hint.contains("`chmod u+rwX "),
            "{hint}"
        );
    }
}

/// `verbatim man --out DIR` writes a page for every command, nested ones
/// included, each with its synopsis as typed: `verbatim key generate`.
#[test]
fn man_pages_cover_every_command_with_its_full_synopsis() {
    let p = Project::new();
    let listed = p.ok(&["man", "--out", "man"]);
    let dir = p.path().join("man");
    for page in [
        "verbatim",
        "verbatim-deploy",
        "verbatim-key",
        "verbatim-key-generate",
        "verbatim-policy-show",
        "verbatim-policy-set",
        "verbatim-policy-history",
    ] {
        assert!(
            listed.lines().any(|l| l == format!("man/{page}.1")),
            "{listed}"
        );
        assert!(dir.join(format!("{page}.1")).is_file(), "no {page}.1");
    }
    let mut pages = 0;
    for entry in fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let text = fs::read_to_string(&path).unwrap();
        let stem = path.file_stem().unwrap().to_str().unwrap().to_owned();
        let typed = stem.replace('-', " ");
        let synopsis = text
            .split(".SH SYNOPSIS\n")
            .nth(1)
            .unwrap_or_else(|| panic!("{stem}: no synopsis"));
        assert!(
            synopsis.starts_with(&format!("\\fB{typed}\\fR")),
            "{stem}: {}",
            synopsis.lines().next().unwrap()
        );
        assert!(text.contains(&format!(".TH {stem} 1")), "{stem}");
        pages += 1;
    }
    assert_eq!(pages, listed.lines().count());
    let set = fs::read_to_string(dir.join("verbatim-policy-set.1")).unwrap();
    assert!(set.contains("\\-\\-expect\\-seq"), "{set}");
    let key = fs::read_to_string(dir.join("verbatim-key.1")).unwrap();
    assert!(key.contains("verbatim\\-key\\-generate(1)"), "{key}");
}
