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
