//! Per-environment config (`verbatim config`): one manifest, a config per
//! environment, in its pages and on its hosts, without a rebuild.
//!
//! - `config set` records a hash-chained event, writes the block into the
//!   live pages, `verify ENV` proves each live file is the release's entry
//!   plus exactly that block; `config rollback` goes back; tampering with
//!   the log or a live page is refused (exit 5).
//! - Bad keys and values are refused naming them, with nothing written.
//! - Signed where the policy asks moves of the environment to be.
//! - An agent picks a toggle up within its interval and runs the `reload`
//!   hook, with no new release and no flip of `current`.
//! - The same manifest in dev and prod shows each environment's value in
//!   headless Chromium, through nginx, under a CSP without `unsafe-inline`.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use crate::browser::{chromium, dump_dom, Log};
use crate::signing::{openssh_key, public};
use crate::sites::{check_load, nginx_log, requests, site_nginx, Gate};
use crate::util::{exits, Project};

const SITE: &str = "[app]\ndir = \"app\"\n[assets]\ndir = \"static\"\n\
                    [site]\nentries = [\"index.html\", \"about/index.html\", \"robots.txt\"]\n\
                    [deploy]\nhooks.reload = 'echo \"$VERBATIM_CONFIG_SEQ $(cat \"$VERBATIM_ROOT/shared/verbatim-config.env\" | grep FLAG)\" >> \"$VERBATIM_ROOT/reloads\"'\n\
                    [environments]\norder = [\"dev\", \"prod\"]\n";

/// The page reads its config from the block (no inline script: the CSP
/// allows only scripts from the origin).
const PAGE: &str = "<!doctype html><html><head><meta charset=\"utf-8\">\
    <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'self'; script-src 'self'\">\
    <script type=\"module\" src=\"js/app.js\"></script></head>\
    <body><p id=\"out\">waiting</p></body></html>\n";

const APP: &str =
    "const c = JSON.parse(document.getElementById('verbatim-config')?.textContent ?? '{}');\n\
    document.getElementById('out').textContent = `api=${c.API_URL} flag=${c.FLAG}`;\n";

/// A project with the site published to dev (and `prod` when asked).
fn site() -> (Project, String) {
    let p = Project::with_config(SITE);
    p.write("app/main.py", "print('app')\n");
    p.write("static/index.html", PAGE);
    p.write(
        "static/about/index.html",
        "<html><body>about</body></html>\n",
    );
    p.write("static/robots.txt", "User-agent: *\n");
    p.write("static/js/app.js", APP);
    let m = p.json(&["publish", "--env", "dev"])["manifest"]
        .as_str()
        .unwrap()
        .to_owned();
    (p, m)
}

fn hex(m: &str) -> &str {
    m.strip_prefix("sha256:").unwrap()
}

/// `<script type="application/json" id="verbatim-config">{json}</script>`
fn block(json: &str) -> String {
    format!("<script type=\"application/json\" id=\"verbatim-config\">{json}</script>")
}

#[test]
fn config_set_writes_the_pages_and_verify_proves_them() {
    let (p, m) = site();
    let entry =
        fs::read_to_string(p.store().join(format!("sites/{}/index.html", hex(&m)))).unwrap();
    // No config yet: the live pages are the entries, byte for byte.
    assert_eq!(
        fs::read_to_string(p.store().join("site/dev/index.html")).unwrap(),
        entry
    );
    let out = p.json(&[
        "config",
        "set",
        "dev",
        "API_URL=https://dev.example/api?a=1&b=2",
        "FLAG=</script><script>alert(1)</script>",
        "--reason",
        "first",
    ]);
    assert_eq!(out["result"], "set");
    assert_eq!(out["seq"], 1);
    assert_eq!(out["site"]["manifest"], m.as_str());
    assert_eq!(out["site"]["files"], 3);
    let live = fs::read_to_string(p.store().join("site/dev/index.html")).unwrap();
    let json = r#"{"API_URL":"https://dev.example/api?a=1\u0026b=2","FLAG":"\u003c/script\u003e\u003cscript\u003ealert(1)\u003c/script\u003e"}"#;
    let want = entry.replacen("<head>", &format!("<head>{}", block(json)), 1);
    assert_eq!(live, want, "the entry plus exactly the block, after <head>");
    assert_eq!(live.matches("</script>").count(), 2, "{live}");
    let about = fs::read_to_string(p.store().join("site/dev/about/index.html")).unwrap();
    assert!(
        about.starts_with(&format!("<html>{}", block(json))),
        "{about}"
    );
    assert_eq!(
        fs::read_to_string(p.store().join("site/dev/robots.txt")).unwrap(),
        "User-agent: *\n",
        "only pages carry the block"
    );

    let v = p.json(&["verify", "dev"]);
    assert_eq!(v["site"]["ok"], true, "{v}");
    assert_eq!(v["site"]["config_seq"], 1);
    assert_eq!(v["site"]["files"].as_array().unwrap().len(), 3);

    let shown = p.json(&["config", "show", "dev"]);
    assert_eq!(shown["seq"], 1);
    assert_eq!(shown["reason"], "first");
    assert_eq!(
        shown["config"]["API_URL"],
        "https://dev.example/api?a=1&b=2"
    );

    p.ok(&["config", "set", "dev", "FLAG=on", "--unset", "API_URL"]);
    let live = fs::read_to_string(p.store().join("site/dev/index.html")).unwrap();
    assert!(live.contains(&block(r#"{"FLAG":"on"}"#)), "{live}");
    // Unchanged: no event.
    let same = p.json(&["config", "set", "dev", "FLAG=on"]);
    assert_eq!(same["result"], "unchanged");
    assert_eq!(same["seq"], 2);

    // Rollback: back to what event 1 left, as event 3.
    let back = p.json(&["config", "rollback", "dev", "--to", "1"]);
    assert_eq!(back["result"], "rolled-back");
    assert_eq!(back["seq"], 3);
    assert_eq!(back["config"]["API_URL"], "https://dev.example/api?a=1&b=2");
    let h = p.json(&["config", "history", "dev"]);
    let kinds: Vec<(u64, &str)> = h["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["seq"].as_u64().unwrap(), e["kind"].as_str().unwrap()))
        .collect();
    assert_eq!(kinds, [(3, "rollback"), (2, "set"), (1, "set")]);
    assert_eq!(h["verified"]["intact"], true);
    assert_eq!(h["verified"]["chained_from"], 1);
    assert!(h["events"][0]["prev"]
        .as_str()
        .unwrap()
        .starts_with("sha256:"));
    let live = fs::read_to_string(p.store().join("site/dev/index.html")).unwrap();
    assert!(live.contains(json), "rolled back in the page: {live}");

    // A move writes the pages with the config in effect.
    p.ok(&["promote", &m, "--to", "prod"]);
    assert_eq!(
        fs::read_to_string(p.store().join("site/prod/index.html")).unwrap(),
        entry,
        "prod has no config: its pages are the entries"
    );
    p.ok(&["config", "set", "prod", "FLAG=prod"]);
    assert!(p.json(&["verify", "prod"])["site"]["ok"] == true);

    // A live page changed outside verbatim: verify names it (exit 5).
    fs::write(p.store().join("site/dev/about/index.html"), "<html>defaced").unwrap();
    let err = p.fails(&["verify", "dev"], 5);
    assert!(err.contains("site/dev/about/index.html: differs"), "{err}");
    assert!(err.contains("1 of 3 live file(s)"), "{err}");
    // A page that is the entry without its block is not right either.
    p.ok(&["config", "set", "dev", "FLAG=again"]);
    fs::write(p.store().join("site/dev/index.html"), &entry).unwrap();
    let err = p.fails(&["verify", "dev"], 5);
    assert!(err.contains("site/dev/index.html: differs"), "{err}");
    p.ok(&["verify", &m]);
}

#[test]
fn a_tampered_config_history_is_refused() {
    let (p, _) = site();
    p.ok(&["config", "set", "dev", "FLAG=on"]);
    p.ok(&["config", "set", "dev", "FLAG=off"]);
    p.ok(&["config", "set", "dev", "FLAG=on"]);
    let first = p.store().join("envs/dev/config/events/0000000001.json");
    let bytes = fs::read_to_string(&first).unwrap();
    let page = fs::read(p.store().join("site/dev/index.html")).unwrap();
    // Same shape, other value: the link from event 2 breaks.
    fs::write(&first, bytes.replace("\"on\"", "\"ON\"")).unwrap();
    for args in [
        &["config", "history", "dev"][..],
        &["config", "show", "dev"],
        &["config", "set", "dev", "FLAG=x"],
        &["verify", "dev"],
    ] {
        let err = p.fails(args, 5);
        assert!(
            err.contains("refusing to rely on the config of dev")
                && err.contains("envs/dev/config/events/0000000002.json")
                && err.contains("`prev` does not match event 1"),
            "{args:?}: {err}"
        );
    }
    assert!(!p
        .store()
        .join("envs/dev/config/events/0000000004.json")
        .exists());
    assert_eq!(
        fs::read(p.store().join("site/dev/index.html")).unwrap(),
        page
    );
    // An event whose `to` does not follow from its change.
    fs::write(&first, &bytes).unwrap();
    let third = p.store().join("envs/dev/config/events/0000000003.json");
    let t = fs::read_to_string(&third).unwrap();
    let mut e: serde_json::Value = serde_json::from_str(&t).unwrap();
    e["to"]["EXTRA"] = "1".into();
    fs::write(&third, serde_json::to_vec(&e).unwrap()).unwrap();
    let err = p.fails(&["config", "show", "dev"], 5);
    assert!(
        err.contains("its `to` is not the config before it"),
        "{err}"
    );
}

#[test]
fn bad_keys_and_values_are_refused_naming_them_and_nothing_is_written() {
    let (p, _) = site();
    let long = format!("A={}", "x".repeat(4097));
    for (args, says) in [
        (
            &["2FA=on"][..],
            "key `2FA` is not an environment variable's name",
        ),
        (&["API-URL=x"], "key `API-URL`"),
        (&["=x"], "a key is empty"),
        (&["A=one\ntwo"], "the value of A holds a control character"),
        (&[long.as_str()], "the value of A is 4097 bytes"),
        (&["A=1", "A=2"], "A is given twice"),
        (
            &["A=1", "--unset", "A"],
            "A is both set and given to --unset",
        ),
        (
            &["--unset", "NOPE"],
            "--unset NOPE: the config of dev has no key NOPE",
        ),
        (&["GOOD=1", "bad key=1"], "key `bad key`"),
        (&["NOEQUALS"], "`NOEQUALS` is not KEY=VALUE"),
        (&[], "give KEY=VALUE or --unset KEY"),
    ] {
        let mut all = vec!["config", "set", "dev"];
        all.extend_from_slice(args);
        let err = p.fails(&all, 2);
        assert!(err.contains(says), "{args:?}: {says:?} not in {err}");
    }
    let err = p.fails(&["config", "set", "staging", "A=1"], 2);
    assert!(err.contains("staging"), "{err}");
    assert!(
        !p.store().join("envs/dev/config").exists()
            && !p.store().join("envs/dev/config.json").exists(),
        "nothing written"
    );
    let err = p.fails(&["config", "rollback", "dev"], 2);
    assert!(err.contains("nothing before the one in effect"), "{err}");
}

#[test]
fn config_changes_are_signed_where_the_policy_asks_for_signed_moves() {
    let (p, _) = site();
    let ci = openssh_key(p.path(), "ci");
    let stranger = openssh_key(p.path(), "stranger");
    p.write("allowed_signers", format!("release@ci {}\n", public(&ci)));
    p.ok(&[
        "policy",
        "set",
        "--sign-moves",
        "dev=release@ci",
        "--allowed-signers",
        "allowed_signers",
        "--reason",
        "signed moves",
    ]);
    let err = p.fails(&["config", "set", "dev", "FLAG=on"], 2);
    assert!(
        err.contains("signed by release@ci: pass --sign-key"),
        "{err}"
    );
    let err = exits(
        p.cmd(&["config", "set", "dev", "FLAG=on", "--sign-key"])
            .arg(&stranger),
        2,
    );
    assert!(err.contains("do not list key SHA256:"), "{err}");
    assert!(
        !p.store().join("envs/dev/config").exists(),
        "nothing written"
    );
    crate::util::success(
        p.cmd(&["config", "set", "dev", "FLAG=on", "--sign-key"])
            .arg(&ci),
    );
    let h = p.json(&["config", "history", "dev"]);
    assert_eq!(h["signed"]["1"].as_array().unwrap().len(), 1, "{h}");
    assert!(p
        .store()
        .join("envs/dev/config/signatures/1")
        .read_dir()
        .unwrap()
        .next()
        .is_some());
}

/// A running `verbatim agent dev`, killed on drop.
struct Agent(Child);

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn wait_for(what: &str, log: &Path, f: impl Fn() -> bool) -> Duration {
    let start = Instant::now();
    while !f() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "{what}: not within 30 s\n{}",
            fs::read_to_string(log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    start.elapsed()
}

#[test]
fn a_toggle_reaches_an_agents_host_and_runs_reload_without_a_release() {
    let (p, m) = site();
    let root = p.path().join("host");
    let log = p.path().join("agent.log");
    let agent = Agent(
        p.cmd(&["agent", "dev", "--interval", "300ms", "--root"])
            .arg(&root)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(fs::File::create(&log).unwrap())
            .spawn()
            .unwrap(),
    );
    let current = || fs::read_link(root.join("current")).ok();
    wait_for("the first deploy", &log, || current().is_some());
    let before = current().unwrap();
    assert_eq!(before, Path::new("releases").join(hex(&m)));
    let reloads = root.join("reloads");
    assert!(!reloads.exists(), "no config yet, no reload");

    p.ok(&[
        "config",
        "set",
        "dev",
        "FLAG=on",
        "API_URL=https://x/\"$HOME\"",
    ]);
    let took = wait_for("the reload hook after config set", &log, || {
        fs::read_to_string(&reloads).is_ok_and(|r| r.lines().count() == 1)
    });
    eprintln!("config set → reload hook ran on the host: {took:?} (interval 300 ms)");
    assert!(took < Duration::from_secs(5), "{took:?}");
    assert_eq!(fs::read_to_string(&reloads).unwrap(), "1 FLAG=\"on\"\n");
    let shared = root.join("shared");
    let json: serde_json::Value =
        serde_json::from_slice(&fs::read(shared.join("verbatim-config.json")).unwrap()).unwrap();
    assert_eq!(
        json,
        serde_json::json!({"API_URL": "https://x/\"$HOME\"", "FLAG": "on"})
    );
    let env = fs::read_to_string(shared.join("verbatim-config.env")).unwrap();
    assert!(env.contains(r#"API_URL="https://x/\"\$HOME\"""#), "{env}");
    // sh reads it back exactly.
    let echoed = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            ". {}; printf %s \"$API_URL\"",
            shared.join("verbatim-config.env").display()
        ))
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&echoed.stdout),
        "https://x/\"$HOME\""
    );
    for f in ["verbatim-config.json", "verbatim-config.env"] {
        let mode = fs::metadata(shared.join(f)).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o644, "{f}");
    }
    assert_eq!(current().unwrap(), before, "current did not flip");
    assert_eq!(
        fs::read_dir(root.join("releases"))
            .unwrap()
            .filter(|e| e.as_ref().unwrap().path().is_dir())
            .count(),
        1
    );

    p.ok(&["config", "set", "dev", "FLAG=off"]);
    wait_for("the second reload", &log, || {
        fs::read_to_string(&reloads).is_ok_and(|r| r.lines().count() == 2)
    });
    assert!(fs::read_to_string(&reloads)
        .unwrap()
        .ends_with("2 FLAG=\"off\"\n"));
    assert_eq!(current().unwrap(), before, "current did not flip");
    // Nothing else: no reload while nothing changes.
    std::thread::sleep(Duration::from_millis(700));
    assert_eq!(fs::read_to_string(&reloads).unwrap().lines().count(), 2);
    drop(agent);
}

#[test]
fn the_same_manifest_shows_each_environments_config_in_the_page() {
    let Some(chromium) = chromium() else { return };
    let (p, m) = site();
    p.ok(&["promote", &m, "--to", "prod"]);
    p.ok(&[
        "config",
        "set",
        "dev",
        "API_URL=https://dev.example",
        "FLAG=on",
    ]);
    p.ok(&[
        "config",
        "set",
        "prod",
        "API_URL=https://prod.example",
        "FLAG=off",
    ]);
    let gate = Gate::default();
    gate.set(true);
    let nginx = site_nginx(&p.store(), &["dev", "prod"], &gate.serve(Log::default()));
    let log = nginx_log(&nginx);
    for (env, want) in [
        ("dev", "api=https://dev.example flag=on"),
        ("prod", "api=https://prod.example flag=off"),
    ] {
        let from = requests(&log, 0).len();
        let dom = dump_dom(
            &chromium,
            &format!("http://{env}.localhost:{}/", nginx.addr.port()),
        );
        check_load(
            &log,
            from,
            env,
            env,
            &dom,
            &[&format!("<p id=\"out\">{want}</p>")],
        );
    }
    // A toggle, no release: the page shows it at the next load.
    p.ok(&["config", "set", "prod", "FLAG=on"]);
    let from = requests(&log, 0).len();
    let dom = dump_dom(
        &chromium,
        &format!("http://prod.localhost:{}/", nginx.addr.port()),
    );
    check_load(
        &log,
        from,
        "prod",
        "prod after the toggle",
        &dom,
        &["flag=on</p>"],
    );
    // One manifest: both environments' pointers name it.
    for env in ["dev", "prod"] {
        let v = p.json(&["verify", env]);
        assert_eq!(v["manifest"], m.as_str());
        assert_eq!(v["site"]["ok"], true);
    }
}
