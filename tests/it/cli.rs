//! CLI conventions: help, exit codes, config errors, `init`, `--json`.

use std::fs;

use crate::util::{Project, BIN};

#[test]
fn help_documents_commands_and_exit_codes() {
    let out = std::process::Command::new(BIN)
        .arg("--help")
        .output()
        .unwrap();
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).unwrap();
    for needle in [
        "publish",
        "verify",
        "Exit codes",
        "integrity",
        "VERBATIM_STORE",
    ] {
        assert!(help.contains(needle), "--help lacks {needle}:\n{help}");
    }
}

#[test]
fn usage_errors_exit_2() {
    let p = Project::new();
    p.fails(&["frobnicate"], 2);
    p.fails(&["build", "--jobs", "0"], 2);
    p.write("app/x.py", "x");
    p.ok(&["publish"]);
    let err = p.fails(&["verify", "zz"], 2);
    assert!(err.contains("zz"), "{err}");
}

#[test]
fn an_invalid_exclude_glob_is_a_config_error() {
    let p = Project::with_config("[app]\ndir = \"app\"\nexclude = [\"a/{b\"]\n");
    let err = p.fails(&["build"], 2);
    assert!(err.contains("app.exclude") && err.contains("a/{b"), "{err}");
}

#[test]
fn config_errors_name_the_key_and_exit_2() {
    let p = Project::with_config("[app]\ndir = \"app\"\nexclued = []\n");
    let err = p.fails(&["build"], 2);
    assert!(
        err.contains("exclued") && err.contains("verbatim.toml"),
        "{err}"
    );

    let p = Project::with_config("[app]\ndir = \"missing\"\n");
    let err = p.fails(&["build"], 2);
    assert!(err.contains("app.dir") && err.contains("missing"), "{err}");

    let p = Project::new();
    fs::remove_file(p.path().join("verbatim.toml")).unwrap();
    let err = p.fails(&["build"], 2);
    assert!(err.contains("verbatim init"), "{err}");
    let err = p.fails(&["build", "--config", "nope.toml"], 2);
    assert!(err.contains("nope.toml"), "{err}");
}

#[test]
fn init_writes_a_working_config_once() {
    let p = Project::new();
    fs::remove_file(p.path().join("verbatim.toml")).unwrap();
    let v = p.json(&["init"]);
    assert_eq!(v["config"], "verbatim.toml");
    let text = fs::read_to_string(p.path().join("verbatim.toml")).unwrap();
    assert!(text.contains("[environments]") && text.contains("# "));
    p.write("app/x", "x");
    p.ok(&["publish"]);
    let err = p.fails(&["init"], 2);
    assert!(err.contains("--force"), "{err}");
    p.ok(&["init", "--force"]);
}

#[test]
fn json_mode_prints_only_json_on_stdout() {
    let p = Project::new();
    p.write("app/x", "x");
    for args in [&["build", "--json"][..], &["publish", "--json"][..]] {
        let out = p.run(args);
        assert!(out.status.success());
        let v: serde_json::Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{args:?}: {e}: {}", String::from_utf8_lossy(&out.stdout)));
        assert!(v["manifest"].as_str().unwrap().starts_with("sha256:"));
    }
}

#[test]
fn the_config_is_found_from_any_subdirectory() {
    let p = Project::new();
    p.write("app/deep/er/x.py", "x");
    let m = p.json(&["publish"])["manifest"]
        .as_str()
        .unwrap()
        .to_owned();
    // From a subdirectory, the store and paths resolve against the
    // config's directory, not the current one.
    let sub = p.app().join("deep/er");
    let run = |args: &[&str]| {
        let mut c = p.cmd(args);
        c.current_dir(&sub);
        crate::util::json_out(c.arg("--json"))
    };
    let moved = run(&["promote", &m, "--to", "dev"]);
    assert_eq!(moved["result"], "moved", "{moved}");
    let status = run(&["status", "dev"]);
    assert_eq!(status["environments"][0]["manifest"], m.as_str());
    let again = run(&["publish"]);
    assert_eq!(
        again["manifest"],
        m.as_str(),
        "built from the config's app.dir"
    );
    assert!(
        !sub.join(".verbatim").exists(),
        "nothing written beside the cwd"
    );
}

#[test]
fn commands_that_do_not_pack_need_no_app_dir() {
    let p = Project::new();
    p.write("app/x.py", "x");
    let m = p.json(&["publish"])["manifest"]
        .as_str()
        .unwrap()
        .to_owned();
    // A promotion box: the config and the store, no app.
    fs::remove_dir_all(p.app()).unwrap();
    p.ok(&["promote", &m, "--to", "dev"]);
    p.ok(&["status"]);
    p.ok(&["history", "dev"]);
    p.ok(&["verify", "dev"]);
    p.ok(&["diff", &m, "dev"]);
    p.ok(&["rollback", "dev", "--to", &m, "--force", "--reason", "test"]);
    // Packing still says what is missing.
    let err = p.fails(&["build"], 2);
    assert!(
        err.contains("app directory") && err.contains("`app.dir`"),
        "{err}"
    );
}

#[test]
fn init_looks_at_the_project_and_keeps_verbatim_out_of_git() {
    // A Django project: pack the project, publish static/.
    let p = Project::new();
    fs::remove_file(p.path().join("verbatim.toml")).unwrap();
    p.write("manage.py", "#!/usr/bin/env python\n");
    p.write("static/css/site.css", "body{}");
    p.write(".gitignore", "*.pyc");
    let v = p.json(&["init"]);
    assert_eq!(v["app_dir"], ".", "{v}");
    assert_eq!(v["assets_dir"], "static", "{v}");
    assert_eq!(v["gitignore_updated"], true, "{v}");
    let ignore = fs::read_to_string(p.path().join(".gitignore")).unwrap();
    assert_eq!(
        ignore,
        "*.pyc\n# verbatim: build output and the local store\n/.verbatim/\n"
    );
    let m = p.json(&["publish"]);
    assert!(
        m["manifest"].as_str().unwrap().starts_with("sha256:"),
        "{m}"
    );
    // Once is enough.
    let again = p.json(&["init", "--force"]);
    assert_eq!(again["gitignore_updated"], false, "{again}");
    assert_eq!(
        fs::read_to_string(p.path().join(".gitignore")).unwrap(),
        ignore
    );

    // A Vite build: publish dist/ with its manifest; no .gitignore yet.
    let q = Project::new();
    fs::remove_file(q.path().join("verbatim.toml")).unwrap();
    q.write("dist/.vite/manifest.json", "{}");
    q.write("dist/index.html", "<!doctype html>");
    let v = q.json(&["init"]);
    assert_eq!(v["assets_dir"], "dist", "{v}");
    let text = fs::read_to_string(q.path().join("verbatim.toml")).unwrap();
    assert!(
        text.contains("vite_manifest = \"dist/.vite/manifest.json\""),
        "{text}"
    );
    assert_eq!(
        fs::read_to_string(q.path().join(".gitignore")).unwrap(),
        "# verbatim: build output and the local store\n/.verbatim/\n"
    );
}

#[test]
fn completions_and_man_pages_cover_every_command() {
    let p = Project::new();
    let bash = p.ok(&["completions", "bash"]);
    for cmd in ["deploy", "agent", "promote", "sign", "key"] {
        assert!(bash.contains(cmd), "bash completion lacks {cmd}");
    }
    // bash itself accepts the script.
    let script = p.write("completion.bash", &bash);
    let out = std::process::Command::new("bash")
        .arg("-c")
        .arg(format!(
            "source {} && complete -p verbatim",
            script.display()
        ))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for shell in ["zsh", "fish"] {
        assert!(!p.ok(&["completions", shell]).is_empty());
    }
    let dir = p.path().join("man");
    p.ok(&["man", "--out", "man"]);
    let page = fs::read_to_string(dir.join("verbatim-deploy.1")).unwrap();
    assert!(page.starts_with(".ie") || page.contains(".TH"), "{page}");
    assert!(page.contains("allowed\\-signers"), "{page}");
    assert!(dir.join("verbatim.1").exists());
}

/// `man --markdown` is the book's command reference: every command, nested
/// ones too, each flag with its variable, the globals once, `<` escaped in
/// prose and the variables' table; `cargo xtask docs` keeps the committed
/// copy equal to it.
#[test]
fn man_markdown_is_the_command_reference() {
    let p = Project::new();
    let md = p.ok(&["man", "--markdown"]);
    for heading in [
        "## `verbatim publish`",
        "## `verbatim key generate`",
        "## `verbatim policy set`",
        "## `verbatim rollout abort`",
        "## Global options",
        "## Environment variables",
    ] {
        assert!(md.contains(&format!("\n{heading}\n")), "{heading} missing");
    }
    assert!(md.contains("- `--store <URL>` (env `VERBATIM_STORE`)"));
    assert!(md.contains("| `VERBATIM_ROOT` | `deploy --root`, `agent --root` |"));
    assert!(md.contains("verbatim-&lt;command&gt;.1"));
    assert!(!md.contains("## `verbatim help`"));
    // The global flags are listed once, not under every command.
    assert_eq!(md.matches("- `--store <URL>`").count(), 1);
    let committed = fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/src/reference/commands.md"),
    )
    .unwrap();
    assert_eq!(
        committed, md,
        "docs/src/reference/commands.md is stale: run `cargo xtask docs --reference`"
    );
}

#[test]
fn colour_follows_color_and_no_color() {
    let p = Project::new();
    let stderr = |args: &[&str], no_color: bool| {
        let mut c = p.cmd(args);
        if no_color {
            c.env("NO_COLOR", "1");
        }
        let out = c.output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        String::from_utf8(out.stderr).unwrap()
    };
    let missing = ["verify", "sha256:0000"];
    let always = stderr(&[&["--color", "always"][..], &missing].concat(), false);
    assert!(always.starts_with("\x1b[1;31merror:\x1b[0m "), "{always:?}");
    for (args, no_color) in [
        (vec!["--color=never"], false),
        (vec![], true),  // NO_COLOR, auto
        (vec![], false), // auto, not a terminal
    ] {
        let text = stderr(&[&args[..], &missing].concat(), no_color);
        assert!(
            text.starts_with("error: ") && !text.contains('\x1b'),
            "{args:?}: {text:?}"
        );
    }
    p.fails(&["--color", "sometimes", "status"], 2);
}
