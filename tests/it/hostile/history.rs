//! Text from outside (reasons, actors, arguments) never reaches a terminal
//! raw.

use crate::util::{exits, json_out, success, Project};

/// Publishes the app with `version` in it; returns the manifest id.
fn release(p: &Project, version: &str) -> String {
    p.write("app/version.txt", version);
    p.json(&["publish"])["manifest"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[test]
fn reasons_and_actors_with_controls_are_escaped_in_text_and_exact_in_json() {
    let p = Project::new();
    let id = release(&p, "1");
    let reason =
        "ok\n#7   2026-01-01T00:00:00Z promote  a → b  by release-bot \x1b[31mred\x1b[0m\u{9b}2J";
    let actor = "mallory\x1b]0;pwned\x07\r\u{202e}";
    let out = p
        .cmd(&[
            "promote", &id, "--to", "prod", "--force", "--reason", reason,
        ])
        .env("VERBATIM_ACTOR", actor)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_clean(&stderr);
    assert!(stderr.contains("ok\\n#7"), "{stderr}");

    let history = p.ok(&["history", "prod"]);
    assert_clean(&history);
    assert_eq!(
        history.lines().count(),
        1,
        "one event, one line:\n{history}"
    );
    assert!(
        history.contains("ok\\n#7") && history.contains("\\x1b[31mred\\x1b[0m\\u{9b}2J"),
        "{history}"
    );
    assert!(
        history.contains("by mallory\\x1b]0;pwned\\x07\\r\\u{202e}"),
        "{history}"
    );
    let status = p.ok(&["status", "prod"]);
    assert_clean(&status);
    assert!(
        status.contains("by mallory\\x1b]0;pwned\\x07\\r\\u{202e}"),
        "{status}"
    );

    // JSON is exact.
    let h = p.json(&["history", "prod"]);
    assert_eq!(h["events"][0]["reason"], reason);
    assert_eq!(h["events"][0]["actor"], actor);
    let s = p.json(&["status", "prod"]);
    assert_eq!(s["environments"][0]["actor"], actor);
}

#[test]
fn error_messages_escape_values_but_keep_their_own_lines() {
    let p = Project::new();
    // A value in an error of ours.
    let err = p.fails(&["promote", "nope\nerror: forged\x1b[2J", "--to", "dev"], 2);
    assert_clean(&err);
    assert!(err.contains("nope\\nerror: forged\\x1b[2J"), "{err}");
    assert_eq!(
        err.lines().filter(|l| l.starts_with("error:")).count(),
        1,
        "{err}"
    );
    // A value clap quotes.
    let err = exits(
        &mut p.cmd(&["history", "dev", "--limit", "1\nerror: forged\x1b[2J"]),
        2,
    );
    assert_clean(&err);
    assert!(err.contains("1\\nerror: forged\\x1b[2J"), "{err}");
    assert_eq!(
        err.lines().filter(|l| l.starts_with("error:")).count(),
        1,
        "{err}"
    );

    // A list the tool composes keeps one problem per line; a newline in a
    // file name stays inside its line.
    let p = Project::with_config("[app]\ndir = \"app\"\n[assets]\ndir = \"static\"\n");
    p.write(
        "static/evil\nerror: forged\x1b[31m.css",
        "a{background:url(gone.png)}",
    );
    p.write("static/site.css", "a{background:url(missing.png)}");
    let err = exits(&mut p.cmd(&["build"]), 1);
    assert_clean(&err);
    let lines: Vec<&str> = err.lines().collect();
    assert!(lines[0].starts_with("error: 2 problems"), "{err}");
    assert!(
        lines.iter().any(|l| l.starts_with("  ")
            && l.contains("evil\\nerror: forged\\x1b[31m.css")
            && l.contains("gone.png")),
        "{err}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("  ") && l.contains("site.css") && l.contains("missing.png")),
        "{err}"
    );
    assert_eq!(
        err.lines().filter(|l| l.starts_with("error:")).count(),
        1,
        "{err}"
    );
}

/// No control character but the line feeds ending lines.
fn assert_clean(text: &str) {
    let bad: Vec<char> = text
        .chars()
        .filter(|&c| c != '\n' && (c.is_control() || c == '\u{202e}'))
        .collect();
    assert!(bad.is_empty(), "raw controls {bad:?} in:\n{text}");
}

#[test]
fn json_output_is_unchanged_by_escaping() {
    let p = Project::new();
    let id = release(&p, "1");
    let reason = "tab\there\nnew line";
    let v = json_out(
        p.cmd(&["promote", &id, "--to", "dev", "--reason", reason, "--json"])
            .env("VERBATIM_ACTOR", "ci\tbot"),
    );
    assert_eq!(v["result"], "moved");
    let raw = success(&mut p.cmd(&["history", "dev", "--json"]));
    let text = String::from_utf8(raw).unwrap();
    // serde_json's own escapes, not ours.
    assert!(
        text.contains(r#""reason": "tab\there\nnew line""#),
        "{text}"
    );
    assert!(text.contains(r#""actor": "ci\tbot""#), "{text}");
}
