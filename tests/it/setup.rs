//! A team's first month: `init` for the project it finds, an order the
//! store rules without breaking anyone's reads, hosts without a
//! verbatim.toml, builds that say where they came from, environment names
//! checked (with a did-you-mean) before anything is written.

use std::fs;

use crate::environments::release;
use crate::util::Project;

/// A project with no verbatim.toml yet, and `app/` to pack.
fn bare() -> Project {
    let p = Project::new();
    fs::remove_file(p.path().join("verbatim.toml")).unwrap();
    p
}

/// `init` leaves `environments.order` commented out, so a teammate's
/// config follows the store: after someone's `policy set`, their reads
/// and moves carry on, with nothing to edit and nothing to warn about.
#[test]
fn init_leaves_the_order_to_the_store() {
    let p = bare();
    p.ok(&["init"]);
    let text = fs::read_to_string(p.path().join("verbatim.toml")).unwrap();
    assert!(
        text.contains("\n# order = [\"dev\", \"preprod\", \"prod\"]\n"),
        "{text}"
    );
    assert!(
        !text.lines().any(|l| l.trim_start().starts_with("order")),
        "{text}"
    );
    let m = release(&p, "1");
    p.ok(&["promote", &m, "--to", "dev"]);
    p.ok(&["policy", "set", "--order", "dev,qa,prod", "--reason", "qa"]);
    for args in [&["status"][..], &["history", "dev"]] {
        let out = p.run(args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{args:?}: {err}");
        assert!(!err.contains("warning"), "{args:?}: {err}");
    }
    p.ok(&["promote", &m, "--to", "qa"]);
}

/// The hint to follow the store's order is TOML that parses and agrees:
/// put it in verbatim.toml as it is written, and the moves go on.
#[test]
fn the_order_hint_is_config_that_parses() {
    let p = Project::with_config(
        "[app]\ndir = \"app\"\n[environments]\norder = [\"dev\", \"preprod\", \"prod\"]\n",
    );
    let m = release(&p, "1");
    p.ok(&["promote", &m, "--to", "dev"]);
    p.ok(&["key", "generate", "--out", "qa.key"]);
    let qa = fs::read_to_string(p.path().join("qa.key.pub")).unwrap();
    p.write("allowed_signers", format!("qa@acme {qa}"));
    let out = p.run(&[
        "policy",
        "set",
        "--order",
        "dev,qa,prod",
        "--require",
        "prod=qa@acme",
        "--allowed-signers",
        "allowed_signers",
        "--reason",
        "qa signs prod",
    ]);
    let warned = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{warned}");
    let refused = p.fails(&["promote", &m, "--to", "qa"], 2);
    for said in [warned, refused] {
        let line = said
            .split("set `")
            .nth(1)
            .and_then(|rest| rest.split("` in the [environments] table").next())
            .unwrap_or_else(|| panic!("no hint in:\n{said}"));
        assert_eq!(line, "order = [\"dev\", \"qa\", \"prod\"]", "{said}");
        p.write(
            "verbatim.toml",
            format!("[app]\ndir = \"app\"\n[environments]\n{line}\n"),
        );
        let out = p.run(&["status"]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success() && !err.contains("warning"), "{err}");
    }
    p.ok(&["promote", &m, "--to", "qa"]);
}

/// `init` knows a front-end build by its config file and proposes what it
/// builds, not the sources beside it (`src/`, `public/`).
#[test]
fn init_proposes_what_the_build_tool_builds() {
    let cases = [
        ("vite.config.js", "export default {}", "Vite", "dist", None),
        ("vite.config.ts", "export default {}", "Vite", "dist", None),
        ("vite.config.mjs", "export default {}", "Vite", "dist", None),
        (
            "vite.config.cjs",
            "module.exports = {}",
            "Vite",
            "dist",
            None,
        ),
        ("vite.config.mts", "export default {}", "Vite", "dist", None),
        (
            "vite.config.ts",
            "export default defineConfig({ build: { outDir: './web', manifest: true } })",
            "Vite",
            "web",
            Some("web/.vite/manifest.json"),
        ),
        (
            "astro.config.mjs",
            "export default {}",
            "Astro",
            "dist",
            None,
        ),
        (
            "webpack.config.js",
            "module.exports = {}",
            "webpack",
            "dist",
            None,
        ),
    ];
    for (file, text, tool, out, manifest) in cases {
        let p = bare();
        p.write("src/main.ts", "console.log(1)");
        p.write("public/favicon.ico", "ico");
        p.write(file, text);
        let v = p.json(&["init"]);
        assert_eq!(v["found"]["file"], file, "{v}");
        assert_eq!(v["found"]["tool"], tool, "{v}");
        assert_eq!(v["assets_dir"], out, "{file}: {v}");
        assert_eq!(v["app_dir"], ".", "{file}: {v}");
        assert_eq!(v["vite_manifest"].as_str(), manifest, "{file}: {v}");
        let config = fs::read_to_string(p.path().join("verbatim.toml")).unwrap();
        assert!(
            config.contains(&format!("[assets]\n# Front-end files, fingerprinted and published under assets/.\ndir = \"{out}\"\n")),
            "{file}:\n{config}"
        );
    }

    // What it proposes works once the tool has built, though git ignores it.
    let p = bare();
    p.write("vite.config.ts", "export default {}");
    p.write(".gitignore", "node_modules/\ndist/\n");
    p.write("src/main.ts", "console.log(1)");
    p.ok(&["init"]);
    p.write(
        "dist/index.html",
        "<script src=\"/static/app.js\"></script>",
    );
    p.write("dist/app.js", "console.log(1)");
    let out = p.run(&["publish", "--json"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(!err.contains("warning"), "{err}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let written = v["written"].to_string();
    assert!(written.contains("assets/app."), "{v}");
}

/// A directory named like build output that an ignore file keeps out of
/// the artifact is warned about at build time, naming the file and line;
/// not when it is the assets directory, nor for other ignored paths.
#[test]
fn a_gitignored_build_output_is_warned_about() {
    let p = Project::with_config("[app]\ndir = \".\"\n");
    p.write(".gitignore", "dist/\ntmp/\n");
    p.write("dist/app.js", "1");
    p.write("tmp/scratch", "1");
    p.write("app/build/x", "1");
    p.write("app/.gitignore", "build\n");
    p.write("main.py", "1");
    let out = p.run(&["build"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    let warnings: Vec<&str> = err.lines().filter(|l| l.starts_with("warning:")).collect();
    assert_eq!(warnings.len(), 2, "{err}");
    let about = |dir: &str| {
        *warnings
            .iter()
            .find(|w| w.starts_with(&format!("warning: {dir}/ is not packed")))
            .unwrap_or_else(|| panic!("no warning about {dir}/:\n{err}"))
    };
    assert!(
        about("app/build").contains("app/.gitignore (build)"),
        "{err}"
    );
    let dist = about("dist");
    assert!(
        dist.contains("/.gitignore (dist/)")
            && dist.contains("[assets] dir = \"dist\"")
            && dist.contains("app.respect_gitignore = false"),
        "{err}"
    );
    assert!(!err.contains(" tmp/ is not packed"), "{err}");
    // Published as the assets, it is not the artifact's to miss.
    p.write(
        "verbatim.toml",
        "[app]\ndir = \".\"\n[assets]\ndir = \"dist\"\n",
    );
    let out = p.run(&["build"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(!err.contains("dist/ is not packed"), "{err}");
    assert!(err.contains("app/build/ is not packed"), "{err}");
}

/// A host has no verbatim.toml: without a store, `deploy`, `agent` and
/// `fetch` say to pass one, not to run `verbatim init`.
#[test]
fn a_host_without_a_store_is_told_to_pass_one() {
    let host = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        let mut cmd = crate::util::cmd_in(host.path(), args);
        crate::util::exits(&mut cmd, 2)
    };
    for args in [
        &["deploy", "prod", "--root", "srv"][..],
        &["agent", "prod", "--root", "srv"],
        &["fetch", "prod", "--into", "srv"],
    ] {
        let err = run(args);
        assert!(
            err.contains("pass --store URL or set VERBATIM_STORE") && !err.contains("init"),
            "{args:?}: {err}"
        );
    }
    assert!(!host.path().join("srv").exists());
}

/// `git` in `dir`, which must succeed.
fn git(dir: &std::path::Path, args: &[&str]) {
    let out = std::process::Command::new("git")
        .current_dir(dir)
        .args(["-c", "user.name=t", "-c", "user.email=t@example.com"])
        .args(args)
        .env_remove("GIT_DIR")
        .env_remove("GIT_WORK_TREE")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Every file of the store, with its bytes.
fn store_files(p: &Project) -> Vec<(String, Vec<u8>)> {
    Project::files_under(&p.store())
        .into_iter()
        .map(|f| {
            let bytes = fs::read(p.store().join(&f)).unwrap();
            (f, bytes)
        })
        .collect()
}

/// A build records `dirty` when the work tree has uncommitted changes,
/// `status` shows it, and `publish --require-clean` refuses such a tree
/// (exit 2) before anything reaches the store, or a tree git cannot tell
/// about.
#[test]
fn a_dirty_tree_is_recorded_shown_and_refused_on_request() {
    let p = Project::new();
    p.write("app/x.py", "1");
    p.write(".gitignore", "/.verbatim/\n");
    // Not a git work tree: nothing to tell clean by.
    let err = p.fails(&["publish", "--require-clean"], 2);
    assert!(err.contains("not in a git work tree"), "{err}");
    assert!(store_files(&p).is_empty());

    git(p.path(), &["init", "-q"]);
    git(p.path(), &["add", "-A"]);
    git(p.path(), &["commit", "-qm", "one"]);
    let clean = p.json(&["publish", "--require-clean", "--env", "dev"]);
    let manifest = |v: &serde_json::Value| -> serde_json::Value {
        let id = v["manifest"].as_str().unwrap();
        let key = format!("manifests/sha256/{}.json", &id[7..]);
        serde_json::from_slice(&fs::read(p.store().join(key)).unwrap()).unwrap()
    };
    let m = manifest(&clean);
    assert!(m["provenance"]["revision"].is_string(), "{m}");
    assert!(m["provenance"].get("dirty").is_none(), "{m}");
    assert_eq!(
        p.json(&["status", "dev"])["environments"][0]["dirty"],
        false
    );

    // A changed file, then an untracked one: each is dirty.
    for (path, text) in [("app/x.py", "2"), ("app/new.py", "3")] {
        p.write(path, text);
        let before = store_files(&p);
        for args in [
            &["publish", "--require-clean"][..],
            &["publish", "--require-clean", "--dry-run"],
        ] {
            let err = p.fails(args, 2);
            assert!(
                err.contains("--require-clean") && err.contains("uncommitted changes"),
                "{path}: {err}"
            );
        }
        let mut env = p.cmd(&["publish"]);
        env.env("VERBATIM_REQUIRE_CLEAN", "true");
        crate::util::exits(&mut env, 2);
        assert_eq!(store_files(&p), before, "{path}: something was written");
    }
    let dirty = p.json(&["publish", "--env", "dev"]);
    let m = manifest(&dirty);
    assert_eq!(m["provenance"]["dirty"], true, "{m}");
    crate::schema::validate(&m, "a dirty build's manifest");
    let status = p.json(&["status", "dev"]);
    assert_eq!(status["environments"][0]["dirty"], true, "{status}");
    let line = p.ok(&["status", "dev"]);
    assert!(line.contains("+dirty"), "{line}");

    // Committed, the same tree is clean again, but not the dirty build
    // published from .verbatim/build as it is.
    git(p.path(), &["add", "-A"]);
    git(p.path(), &["commit", "-qm", "two"]);
    let err = p.fails(&["publish", "--prebuilt", "--require-clean"], 2);
    assert!(
        err.contains("built from a work tree with uncommitted changes"),
        "{err}"
    );
    p.ok(&["publish", "--require-clean"]);
}

/// `publish --env` with a mistyped environment is refused before anything
/// is uploaded, and every command that takes an environment says which
/// one was meant, in the same words.
#[test]
fn a_mistyped_environment_is_refused_with_a_did_you_mean_before_any_write() {
    let p = Project::new();
    p.write("app/x.py", "1");
    let err = p.fails(&["publish", "--env", "dve"], 2);
    assert!(
        err.contains("`dve` is not in the environment order (dev, preprod, prod)")
            && err.ends_with("did you mean `dev`?\n"),
        "{err}"
    );
    assert!(
        Project::files_under(&p.store()).is_empty(),
        "publish --env dve wrote {:?}",
        Project::files_under(&p.store())
    );
    let m = release(&p, "1");
    p.ok(&["promote", &m, "--to", "dev"]);
    let before = Project::files_under(&p.store());
    let err = p.fails(&["publish", "--env", "dve"], 2);
    assert!(err.contains("did you mean `dev`?"), "{err}");
    assert_eq!(Project::files_under(&p.store()), before);

    p.ok(&["key", "generate", "--out", "ci.key"]);
    let store = p.store().display().to_string();
    let commands: [&[&str]; 10] = [
        &["promote", &m, "--to", "prdo"],
        &["rollback", "prdo"],
        &["history", "prdo"],
        &["status", "prdo"],
        &["verify", "prdo"],
        &["timestamp", "prdo", "--sign-key", "ci.key"],
        &["deploy", "prdo", "--root", "srv", "--store", &store],
        &["fetch", "prdo", "--into", "srv", "--store", &store],
        &["agent", "prdo", "--root", "srv", "--store", &store],
        &["deploy", "prdo", "--root", "srv"],
    ];
    for args in commands {
        let out = crate::util::bounded(&mut p.cmd(args), 20).out;
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(
            err.contains(
                "`prdo` is not in the environment order (dev, preprod, prod) of the store's policy"
            ) && err.contains("did you mean `prod`?"),
            "{args:?}: {err}"
        );
    }
    assert_eq!(Project::files_under(&p.store()), before);
    assert!(!p.path().join("srv/current").exists());
}
