//! A tampered environment history: every read of it fails closed (exit 5,
//! naming the event key and what disagrees) and nothing is written. And text
//! from outside (reasons, actors, arguments) never reaches a terminal raw.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use serde_json::Value;
use verbatim::digest::Digest;

use crate::environments::release;
use crate::util::{exits, json_out, success, Project};

fn event_path(p: &Project, env: &str, seq: u64) -> std::path::PathBuf {
    p.store().join(format!("envs/{env}/events/{seq:010}.json"))
}

fn event_key(env: &str, seq: u64) -> String {
    format!("envs/{env}/events/{seq:010}.json")
}

fn read_json(path: &Path) -> Value {
    serde_json::from_slice(&fs::read(path).unwrap()).unwrap()
}

/// Rewrites a stored JSON record in canonical form (sorted keys, compact),
/// as verbatim writes it, after `edit`.
fn edit_json(path: &Path, edit: impl FnOnce(&mut Value)) {
    let mut v = read_json(path);
    edit(&mut v);
    fs::write(path, serde_json::to_vec(&v).unwrap()).unwrap();
}

/// Every file under the store's `envs/`, with its bytes.
fn envs_tree(p: &Project) -> BTreeMap<String, Vec<u8>> {
    let dir = p.store().join("envs");
    Project::files_under(&dir)
        .into_iter()
        .map(|f| {
            let bytes = fs::read(dir.join(&f)).unwrap();
            (f, bytes)
        })
        .collect()
}

/// Three releases, all promoted to dev in turn (events 1..=3); the first
/// also to preprod. Returns the manifest ids.
fn three_moves(p: &Project) -> [String; 3] {
    let ids = ["1", "2", "3"].map(|v| release(p, v));
    for id in &ids {
        p.ok(&["promote", id, "--to", "dev"]);
    }
    p.ok(&["promote", &ids[0], "--to", "preprod"]);
    ids
}

/// Every command that reads `env`'s history or pointer refuses with exit 5,
/// naming `key` and `says`, and the store's `envs/` is left byte for byte.
/// `ids` are [`three_moves`]'.
fn refused_everywhere(p: &Project, env: &str, key: &str, says: &str, ids: &[String; 3]) {
    let before = envs_tree(p);
    let next = match env {
        "dev" => "preprod",
        "preprod" => "prod",
        _ => panic!("no environment after {env}"),
    };
    let commands: [&[&str]; 8] = [
        &["promote", &ids[0], "--to", env],
        &["promote", &ids[1], "--to", env, "--force", "--reason", "x"],
        &["rollback", env],
        &["status"],
        &["history", env],
        &["verify", env],                    // an environment named as a manifest
        &["promote", env, "--to", next],     // the same, as the source of a promotion
        &["promote", &ids[1], "--to", next], // the order gate reads `env`
    ];
    for args in commands {
        let err = p.fails(args, 5);
        assert!(
            err.contains(key) && err.contains(says),
            "{args:?}: {key:?} and {says:?} not in:\n{err}"
        );
        assert_eq!(envs_tree(p), before, "{args:?} wrote to envs/");
    }
}

#[test]
fn a_pointer_seq_edited_up_is_refused_not_continued() {
    let p = Project::new();
    let ids = three_moves(&p);
    edit_json(&p.store().join("envs/dev.json"), |v| v["seq"] = 7.into());
    refused_everywhere(
        &p,
        "dev",
        &event_key("dev", 3),
        "envs/dev.json: says seq 7",
        &ids,
    );
    assert!(!event_path(&p, "dev", 8).exists());
}

#[test]
fn a_pointer_seq_at_u64_max_does_not_wrap() {
    let p = Project::new();
    let ids = three_moves(&p);
    edit_json(&p.store().join("envs/dev.json"), |v| {
        v["seq"] = u64::MAX.into()
    });
    refused_everywhere(
        &p,
        "dev",
        &event_key("dev", 3),
        "says seq 18446744073709551615",
        &ids,
    );
    assert!(!event_path(&p, "dev", 0).exists());
}

#[test]
fn a_deleted_middle_event_is_a_gap() {
    let p = Project::new();
    let ids = three_moves(&p);
    fs::remove_file(event_path(&p, "dev", 2)).unwrap();
    refused_everywhere(&p, "dev", &event_key("dev", 2), "gap", &ids);
}

#[test]
fn renamed_event_files_disagree_with_their_seq() {
    let p = Project::new();
    let ids = three_moves(&p);
    // Swap events 2 and 3: the same names exist, each holding the other.
    let (two, three) = (event_path(&p, "dev", 2), event_path(&p, "dev", 3));
    let tmp = two.with_extension("swap");
    fs::rename(&two, &tmp).unwrap();
    fs::rename(&three, &two).unwrap();
    fs::rename(&tmp, &three).unwrap();
    refused_everywhere(
        &p,
        "dev",
        &event_key("dev", 2),
        "says it is event 3 but its file name says 2",
        &ids,
    );
}

#[test]
fn an_event_with_a_wrong_seq_inside_is_refused() {
    let p = Project::new();
    let ids = three_moves(&p);
    edit_json(&event_path(&p, "dev", 2), |v| v["seq"] = 5.into());
    refused_everywhere(&p, "dev", &event_key("dev", 2), "says it is event 5", &ids);
}

#[test]
fn an_event_of_another_environment_is_refused() {
    let p = Project::new();
    let ids = three_moves(&p);
    edit_json(&event_path(&p, "dev", 2), |v| v["env"] = "prod".into());
    refused_everywhere(
        &p,
        "dev",
        &event_key("dev", 2),
        "says it belongs to environment \"prod\"",
        &ids,
    );
}

/// dev's event 2 (to the second release) copied into preprod's folder to
/// make the order gate believe preprod ran it: prod refuses, without --force
/// and with it.
#[test]
fn an_event_planted_in_the_previous_environment_does_not_open_the_gate() {
    let p = Project::new();
    let ids = three_moves(&p);
    fs::copy(event_path(&p, "dev", 2), event_path(&p, "preprod", 2)).unwrap();
    let key = event_key("preprod", 2);
    let says = "says it belongs to environment \"dev\"";
    let before = envs_tree(&p);
    for args in [
        &["promote", &ids[1], "--to", "prod"][..],
        &[
            "promote", &ids[1], "--to", "prod", "--force", "--reason", "gate",
        ],
    ] {
        let err = p.fails(args, 5);
        assert!(err.contains(&key) && err.contains(says), "{err}");
        assert_eq!(envs_tree(&p), before);
    }
    assert!(!p.store().join("envs/prod.json").exists());
    refused_everywhere(&p, "preprod", &key, says, &ids);
}

/// A well-formed event of preprod's own, recorded but never applied (the
/// pointer did not follow): the manifest was never live in preprod, so the
/// order gate stays shut. A gate refusal (3), not an integrity error.
#[test]
fn an_unapplied_event_in_the_previous_environment_does_not_open_the_gate() {
    let p = Project::new();
    let ids = three_moves(&p);
    let planted = event_path(&p, "preprod", 2);
    fs::copy(event_path(&p, "preprod", 1), &planted).unwrap();
    edit_json(&planted, |v| {
        v["seq"] = 2.into();
        v["from"] = ids[0].as_str().into();
        v["to"] = ids[1].as_str().into();
    });
    let before = envs_tree(&p);
    let err = p.fails(&["promote", &ids[1], "--to", "prod"], 3);
    assert!(err.contains("never been promoted to preprod"), "{err}");
    assert_eq!(envs_tree(&p), before);
    // history shows it for what it is.
    let out = p.run(&["history", "preprod"]);
    assert!(out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("recorded but the pointer has not moved yet"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// An event naming a manifest that is not in the store, planted after the
/// newest: completing it would point dev at nothing. Refused, pointer kept.
#[test]
fn a_planted_event_naming_an_absent_manifest_is_never_completed() {
    let p = Project::new();
    let ids = three_moves(&p);
    let absent = format!("sha256:{}", "ab".repeat(32));
    let planted = event_path(&p, "dev", 4);
    fs::copy(event_path(&p, "dev", 3), &planted).unwrap();
    // Linked to event 3 as verbatim would: only the manifest is wrong.
    let prev = Digest::of(&fs::read(event_path(&p, "dev", 3)).unwrap()).to_string();
    edit_json(&planted, |v| {
        v["seq"] = 4.into();
        v["from"] = ids[2].as_str().into();
        v["to"] = absent.as_str().into();
        v["prev"] = prev.into();
    });
    let pointer = fs::read(p.store().join("envs/dev.json")).unwrap();
    refused_everywhere(
        &p,
        "dev",
        &event_key("dev", 4),
        &format!("names manifest {absent}, which is not in the store"),
        &ids,
    );
    assert_eq!(fs::read(p.store().join("envs/dev.json")).unwrap(), pointer);
}

/// The crash case the checks must not break: an event recorded, its pointer
/// write lost. The next move completes it, then goes on.
#[test]
fn a_genuine_half_done_move_is_still_completed() {
    let p = Project::new();
    let ids = three_moves(&p);
    let pointer_at_2 = {
        let mut v = read_json(&event_path(&p, "dev", 2));
        let mut ptr = read_json(&p.store().join("envs/dev.json"));
        ptr["seq"] = 2.into();
        ptr["manifest"] = v["to"].take();
        ptr["time"] = v["time"].take();
        ptr["actor"] = v["actor"].take();
        ptr
    };
    fs::write(
        p.store().join("envs/dev.json"),
        serde_json::to_vec(&pointer_at_2).unwrap(),
    )
    .unwrap();
    assert_eq!(p.json(&["status", "dev"])["environments"][0]["seq"], 2);
    let v = p.json(&["promote", &ids[0], "--to", "dev"]);
    assert_eq!(v["seq"], 4);
    assert_eq!(v["previous"], ids[2].as_str());
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
