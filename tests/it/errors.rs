//! Errors a machine and a person can read: with `--json` every outcome is
//! one JSON document, S3 failures are one line that says what to fix (the
//! client library's dump only with `-v`), and mistyped settings are usage
//! errors naming the setting.

use std::process::Command;

use crate::util::{bounded, Project};

/// Runs with `--json`; asserts the exit code and that stdout is exactly one
/// JSON document with an `error` of that code; returns it.
fn json_error(cmd: &mut Command, code: i32) -> serde_json::Value {
    let run = bounded(cmd.arg("--json"), 60);
    let stderr = String::from_utf8_lossy(&run.out.stderr);
    assert_eq!(run.out.status.code(), Some(code), "stderr:\n{stderr}");
    let doc: serde_json::Value = serde_json::from_slice(&run.out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not one JSON document ({e}): {}",
            String::from_utf8_lossy(&run.out.stdout)
        )
    });
    assert_eq!(doc["error"]["code"], code, "{doc}");
    assert!(
        doc["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{doc}"
    );
    doc
}

#[test]
fn outside_any_project_json_says_so_in_one_document() {
    let dir = tempfile::tempdir().unwrap();
    for args in [
        vec!["status"],
        vec!["build"],
        vec!["promote", "sha256:00000000", "--to", "dev"],
    ] {
        let mut cmd = Command::new(crate::util::BIN);
        cmd.current_dir(dir.path())
            .args(&args)
            .env("CI", "true")
            .env_remove("VERBATIM_STORE");
        let doc = json_error(&mut cmd, 2);
        assert_eq!(doc["error"]["kind"], "usage");
        assert!(
            doc["error"]["message"]
                .as_str()
                .unwrap()
                .contains("verbatim.toml"),
            "{doc}"
        );
    }
    // clap's own usage errors too.
    let doc = json_error(Command::new(crate::util::BIN).args(["promote"]), 2);
    assert!(
        doc["error"]["message"].as_str().unwrap().contains("--to"),
        "{doc}"
    );
}

#[test]
fn an_integrity_failure_is_one_document_too() {
    let p = Project::new();
    p.write("app/x.py", "x");
    p.ok(&["publish"]);
    let doc = json_error(
        &mut p.cmd(&[
            "verify",
            "sha256:1234567812345678123456781234567812345678123456781234567812345678",
        ]),
        5,
    );
    assert_eq!(doc["error"]["kind"], "integrity");
}

#[test]
fn boolean_variables_take_the_usual_spellings_and_name_themselves() {
    let p = Project::new();
    p.write("app/x.py", "x");
    for v in ["1", "0", "true", "False", "yes", "no", "on", "off"] {
        let out = p
            .cmd(&["build"])
            .env("VERBATIM_NO_PROGRESS", v)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "VERBATIM_NO_PROGRESS={v}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    for var in ["VERBATIM_NO_PROGRESS", "VERBATIM_S3_PATH_STYLE"] {
        let err = crate::util::exits(p.cmd(&["build"]).env(var, "banana"), 2);
        assert!(err.contains(var) && err.contains("banana"), "{err}");
    }
}

#[test]
fn mistyped_store_urls_are_usage_errors_not_directories() {
    let p = Project::new();
    p.write("app/x.py", "x");
    for url in [
        "s3:/bucket",
        "s3//bucket",
        "s3://",
        "s3:bucket",
        "file:/tmp/x",
    ] {
        let err = crate::util::exits(&mut p.cmd(&["publish", "--store", url]), 2);
        assert!(err.contains(url), "{url}: {err}");
    }
    let made: Vec<String> = Project::files_under(p.path())
        .into_iter()
        .filter(|f| f.starts_with("s3") || f.starts_with("file"))
        .collect();
    assert!(made.is_empty(), "created {made:?}");
}

#[test]
fn reading_a_local_store_that_does_not_exist_is_an_error() {
    let p = Project::new();
    for args in [
        vec!["status"],
        vec!["history", "dev"],
        vec!["verify", "sha256:1234"],
        vec!["fetch", "dev", "--into", "host"],
        vec!["diff", "dev", "prod"],
    ] {
        let err = crate::util::exits(&mut p.cmd(&args), 2);
        assert!(
            err.contains("no store at") && err.contains(".verbatim/store"),
            "{args:?}: {err}"
        );
    }
    assert!(!p.path().join(".verbatim").exists() && !p.path().join("host").exists());
}

/// `history dev` (a LIST, whose error carries the server's reason) with the
/// right access key and a wrong secret, against the server at `url`.
fn wrong_secret(url: &str) {
    let p = Project::new();
    let mut cmd = crate::s3::cli(
        &p,
        url,
        "wrong-secret",
        &["history", "dev", "--timeout", "10"],
    );
    cmd.env("AWS_SECRET_ACCESS_KEY", "not-the-secret");
    let run = bounded(&mut cmd, 60);
    let err = String::from_utf8_lossy(&run.out.stderr).into_owned();
    assert_eq!(run.out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("secret key does not belong to the access key"),
        "{err}"
    );
    assert!(err.lines().count() <= 2, "more than two lines: {err}");
    for dump in ["ServiceError", "DispatchFailure", "Response {", "raw:"] {
        assert!(!err.contains(dump), "{dump} in {err}");
    }
    let run = bounded(cmd.arg("-v"), 60);
    let err = String::from_utf8_lossy(&run.out.stderr);
    assert!(
        err.contains("raw:") && err.contains("SignatureDoesNotMatch"),
        "{err}"
    );
}

#[test]
fn a_wrong_secret_says_so_against_s3s_fs() {
    let Some(s3) = crate::s3::S3Server::start() else {
        return;
    };
    wrong_secret(&s3.url());
}

#[test]
fn a_wrong_secret_says_so_against_radosgw() {
    let Some(url) = crate::ceph::rgw() else {
        return;
    };
    wrong_secret(&url);
}

#[test]
fn a_refused_promotion_is_one_document_with_its_gates() {
    let p = Project::new();
    p.write("app/x.py", "x");
    let id = p.ok(&["publish"]).trim().to_owned();
    let doc = json_error(&mut p.cmd(&["promote", &id, "--to", "prod"]), 3);
    assert_eq!(doc["error"]["kind"], "gate-refused");
    assert_eq!(doc["env"], "prod");
    let gates = doc["gates"].as_array().unwrap();
    assert!(
        gates
            .iter()
            .any(|g| g["gate"] == "order" && g["ok"] == false),
        "{doc}"
    );
}

#[test]
fn status_and_history_of_an_undeclared_environment_suggest_one() {
    let p = Project::new();
    p.write("app/x.py", "x");
    p.ok(&["publish", "--env", "dev"]);
    for args in [["status", "prd"], ["history", "prd"]] {
        let err = crate::util::exits(&mut p.cmd(&args), 2);
        assert!(
            err.contains("`prd`") && err.contains("did you mean `prod`?"),
            "{err}"
        );
    }
    let err = crate::util::exits(&mut p.cmd(&["history", "staging"]), 2);
    assert!(
        err.contains("`staging`") && !err.contains("did you mean"),
        "{err}"
    );
}
