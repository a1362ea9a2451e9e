//! The store-held policy: the first promotion stores the environment order,
//! a `verbatim.toml` disagreeing with it is refused by moves (and warned
//! about by reads), `policy set` changes it
//! with a recorded event, races have one winner, and a tampered policy is
//! refused wherever the order is read.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use serde_json::{json, Value};

use crate::environments::release;
use crate::util::{json_out, success, Project};

const PREPROD_FIRST: &str =
    "[app]\ndir = \"app\"\n[environments]\norder = [\"dev\", \"preprod\", \"prod\"]\n";
const SKIP_PREPROD: &str = "[app]\ndir = \"app\"\n[environments]\norder = [\"dev\", \"prod\"]\n";

fn read_json(path: &Path) -> Value {
    serde_json::from_slice(&fs::read(path).unwrap()).unwrap()
}

fn event_path(p: &Project, seq: u64) -> std::path::PathBuf {
    p.store().join(format!("policy/events/{seq:010}.json"))
}

/// The environment names of a `{"environments": [{"name"}…]}` policy.
fn names(policy: &Value) -> Vec<&str> {
    policy["environments"]
        .as_array()
        .unwrap_or_else(|| panic!("no environments in {policy}"))
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect()
}

/// Every file under the store's `envs/` and `policy/`, and `policy.json`.
fn moving_parts(p: &Project) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    for dir in ["envs", "policy"] {
        let d = p.store().join(dir);
        for f in Project::files_under(&d) {
            out.insert(format!("{dir}/{f}"), fs::read(d.join(&f)).unwrap());
        }
    }
    if let Ok(b) = fs::read(p.store().join("policy.json")) {
        out.insert("policy.json".into(), b);
    }
    out
}

#[test]
fn the_first_promotion_stores_the_order_from_the_config() {
    let p = Project::with_config(PREPROD_FIRST);
    let m = release(&p, "1");
    // Before: the config's order, not stored yet.
    let v = p.json(&["policy", "show"]);
    assert_eq!(v["source"], "config");
    assert_eq!(v["seq"], Value::Null);
    assert_eq!(names(&v["policy"]), ["dev", "preprod", "prod"]);
    assert!(!p.store().join("policy.json").exists());
    // Publishing is not a promotion; a refused promotion stores nothing either.
    p.fails(&["promote", &m, "--to", "prod"], 3);
    assert!(!p.store().join("policy.json").exists());

    success(
        p.cmd(&["promote", &m, "--to", "dev"])
            .env("VERBATIM_ACTOR", "alice"),
    );
    let pointer = read_json(&p.store().join("policy.json"));
    assert_eq!(pointer["schema"], "verbatim.policy/v1");
    assert_eq!(pointer["seq"], 1);
    assert_eq!(pointer["actor"], "alice");
    assert_eq!(names(&pointer["policy"]), ["dev", "preprod", "prod"]);
    let e = read_json(&event_path(&p, 1));
    assert_eq!(e["schema"], "verbatim.policy-event/v1");
    assert_eq!(e["kind"], "init");
    assert_eq!(e["from"], Value::Null);
    assert_eq!(e["to"], pointer["policy"]);
    assert!(e["reason"].as_str().unwrap().contains("environments.order"));
    assert_eq!(e["time"], pointer["time"]);

    let v = p.json(&["policy", "show"]);
    assert_eq!(v["source"], "store");
    assert_eq!(v["seq"], 1);
    assert_eq!(v["actor"], "alice");
    let text = p.ok(&["policy", "show"]);
    assert!(text.contains("dev → preprod → prod"), "{text}");

    // Later moves leave it alone.
    p.ok(&["promote", "dev", "--to", "preprod"]);
    assert_eq!(
        Project::files_under(&p.store().join("policy/events")).len(),
        1
    );
}

#[test]
fn without_environments_in_the_config_the_default_is_stored_and_the_store_followed() {
    let p = Project::new();
    let m = release(&p, "1");
    assert_eq!(p.json(&["policy", "show"])["source"], "default");
    let v = p.json(&["publish", "--env", "dev"]);
    assert_eq!(v["promoted"]["result"], "moved");
    let e = read_json(&event_path(&p, 1));
    assert_eq!(names(&e["to"]), ["dev", "preprod", "prod"]);
    assert!(e["reason"].as_str().unwrap().contains("default"), "{e}");

    // A config declaring nothing follows whatever the store says.
    p.ok(&["policy", "set", "--order", "dev,qa,prod", "--reason", "qa"]);
    p.ok(&["promote", &m, "--to", "qa"]);
    let err = p.fails(&["promote", &m, "--to", "preprod"], 2);
    assert!(
        err.contains("`preprod` is not in the environment order (dev, qa, prod)")
            && err.contains("policy event 2"),
        "{err}"
    );
    let envs: Vec<String> = p.json(&["status"])["environments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["env"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(envs, ["dev", "qa", "prod"]);
}

/// Once stored, a verbatim.toml that skips preprod is refused by every
/// command that moves a pointer (exit 2, naming both orders and both
/// fixes), and nothing moves; commands that only read warn the same and
/// show the store's order.
#[test]
fn an_edited_config_order_is_refused_naming_both() {
    let p = Project::with_config(PREPROD_FIRST);
    let m = release(&p, "1");
    p.ok(&["promote", &m, "--to", "dev"]);
    p.write("verbatim.toml", SKIP_PREPROD);
    let before = moving_parts(&p);
    let needles = [
        "[dev, prod]",
        "[dev, preprod, prod]",
        "verbatim policy set --order dev,prod",
        "remove its `order` line",
    ];
    let moving: [&[&str]; 4] = [
        &["promote", &m, "--to", "prod"],
        &["promote", &m, "--to", "dev"],
        &["publish", "--env", "dev"],
        &["rollback", "dev"],
    ];
    for args in moving {
        let err = p.fails(args, 2);
        for needle in needles {
            assert!(err.contains(needle), "{args:?}: {needle:?} not in:\n{err}");
        }
        assert_eq!(moving_parts(&p), before, "{args:?} wrote");
    }
    let reading: [&[&str]; 2] = [&["status"], &["history", "dev"]];
    for args in reading {
        let out = p.run(args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{args:?}: {err}");
        assert!(err.starts_with("warning: "), "{args:?}: {err}");
        for needle in needles {
            assert!(err.contains(needle), "{args:?}: {needle:?} not in:\n{err}");
        }
    }
    let shown: Vec<String> = p.json(&["status"])["environments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["env"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(shown, ["dev", "preprod", "prod"], "the store's order");
    assert_eq!(moving_parts(&p), before);
    // `policy show` still shows what the store says, and warns.
    let out = p.run(&["policy", "show", "--json"]);
    assert!(out.status.success());
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(names(&v["policy"]), ["dev", "preprod", "prod"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("[dev, prod]"));

    // Either fix works: agree with the store, or follow it.
    p.write("verbatim.toml", PREPROD_FIRST);
    p.ok(&["promote", &m, "--to", "preprod"]);
    p.write("verbatim.toml", "[app]\ndir = \"app\"\n");
    p.ok(&["promote", &m, "--to", "prod"]);
}

#[test]
fn policy_set_changes_the_order_with_a_recorded_event() {
    let p = Project::with_config(PREPROD_FIRST);
    let m = release(&p, "1");
    p.ok(&["promote", &m, "--to", "dev"]);
    let out = p
        .cmd(&[
            "policy",
            "set",
            "--order",
            "dev,prod",
            "--reason",
            "preprod is gone",
            "--json",
        ])
        .env("VERBATIM_ACTOR", "carol")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["result"], "set");
    assert_eq!(v["seq"], 2);
    assert_eq!(names(&v["from"]), ["dev", "preprod", "prod"]);
    assert_eq!(names(&v["to"]), ["dev", "prod"]);
    // The config still says otherwise: warned at once.
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("still declares"), "{stderr}");

    let e = read_json(&event_path(&p, 2));
    assert_eq!(e["kind"], "set");
    assert_eq!(e["seq"], 2);
    assert_eq!(e["actor"], "carol");
    assert_eq!(e["reason"], "preprod is gone");
    assert_eq!(names(&e["from"]), ["dev", "preprod", "prod"]);
    assert_eq!(names(&e["to"]), ["dev", "prod"]);
    assert!(e["time"].as_str().unwrap().ends_with('Z'));
    let pointer = read_json(&p.store().join("policy.json"));
    assert_eq!(pointer["seq"], 2);
    assert_eq!(pointer["policy"], e["to"]);

    let v = p.json(&["policy", "show"]);
    assert_eq!(
        (v["source"].as_str(), v["seq"].as_u64(), v["actor"].as_str()),
        (Some("store"), Some(2), Some("carol"))
    );
    assert_eq!(v["reason"], "preprod is gone");
    assert_eq!(names(&v["policy"]), ["dev", "prod"]);
    let h = p.json(&["policy", "history"]);
    let seqs: Vec<u64> = h["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs, [2, 1], "newest first");
    assert!(p
        .ok(&["policy", "history"])
        .contains("by carol  (preprod is gone)"));

    // The old order in the config is now the one refused; the new one works.
    p.fails(&["promote", &m, "--to", "prod"], 2);
    p.write("verbatim.toml", SKIP_PREPROD);
    let v = p.json(&["promote", &m, "--to", "prod"]);
    assert!(
        v["gates"][1]["detail"].as_str().unwrap().contains("dev"),
        "{v}"
    );

    // A change based on an older policy than the one in effect is refused
    // (exit 4), and writes nothing; based on the one in effect it goes on.
    let set_expecting = |seq: &str| {
        p.run(&[
            "policy",
            "set",
            "--order",
            "dev,qa,prod",
            "--reason",
            "qa",
            "--expect-seq",
            seq,
        ])
    };
    for stale in ["1", "0", "3"] {
        let out = set_expecting(stale);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(4), "{stderr}");
        assert!(
            stderr.contains(&format!("policy event 2, not {stale}")),
            "{stderr}"
        );
    }
    assert!(!event_path(&p, 3).exists());
    assert!(set_expecting("2").status.success());
    assert_eq!(
        names(&read_json(&event_path(&p, 3))["to"]),
        ["dev", "qa", "prod"]
    );
    p.ok(&["policy", "set", "--order", "dev,prod", "--reason", "back"]);

    // The same order again records nothing.
    let v = p.json(&["policy", "set", "--order", "dev,prod", "--reason", "again"]);
    assert_eq!(v["result"], "unchanged");
    assert_eq!(v["seq"], 4);
    assert!(!event_path(&p, 5).exists());

    // Usage errors write nothing.
    for args in [
        &["policy", "set", "--order", "dev,Prod", "--reason", "x"][..],
        &["policy", "set", "--order", "dev,dev", "--reason", "x"],
        &["policy", "set", "--order", "", "--reason", "x"],
        &["policy", "set", "--order", "dev,prod"],
        &["policy", "set", "--reason", "x"],
    ] {
        p.fails(args, 2);
    }
    assert!(!event_path(&p, 5).exists());
}

/// `policy set` before any promotion: the first promotion then follows it,
/// and a config that disagrees is refused from the start.
#[test]
fn policy_set_before_the_first_promotion() {
    let p = Project::new();
    let m = release(&p, "1");
    let v = p.json(&[
        "policy",
        "set",
        "--order",
        "dev,prod",
        "--reason",
        "small team",
    ]);
    assert_eq!(
        (v["result"].as_str(), v["seq"].as_u64()),
        (Some("set"), Some(1))
    );
    assert_eq!(v["from"], Value::Null);
    assert_eq!(read_json(&event_path(&p, 1))["kind"], "set");
    p.ok(&["promote", &m, "--to", "dev"]);
    p.ok(&["promote", &m, "--to", "prod"]);
    p.write("verbatim.toml", PREPROD_FIRST);
    p.fails(&["promote", &m, "--to", "preprod"], 2);
}

/// An event recorded, `policy.json` not yet moved (a crash between the
/// two): the event is in effect, and the next writer completes the pointer.
#[test]
fn a_policy_pointer_left_behind_is_completed() {
    let p = Project::new();
    let m = release(&p, "1");
    p.ok(&["promote", &m, "--to", "dev"]);
    let at_1 = fs::read(p.store().join("policy.json")).unwrap();
    p.ok(&["policy", "set", "--order", "dev,prod", "--reason", "x"]);
    fs::write(p.store().join("policy.json"), &at_1).unwrap();

    let out = p.run(&["policy", "show", "--json"]);
    assert!(out.status.success());
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["seq"], 2);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("has not caught up"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    p.ok(&["promote", &m, "--to", "prod"]);
    assert_eq!(read_json(&p.store().join("policy.json"))["seq"], 2);
}

/// 8 processes set 8 different orders at once, 10 times over: each event is
/// one racer's, with no gap; a racer that loses exits 4 naming the winner.
#[test]
fn concurrent_policy_sets_have_one_winner_per_event() {
    let p = Project::new();
    let m = release(&p, "1");
    p.ok(&["promote", &m, "--to", "dev"]);
    let seed = tempfile::tempdir().unwrap();
    let mut losers = 0;
    for round in 0..10 {
        let store = seed.path().join(format!("round{round}"));
        let st = std::process::Command::new("cp")
            .arg("-a")
            .arg(p.store())
            .arg(&store)
            .status()
            .unwrap();
        assert!(st.success());
        let store_arg = store.to_str().unwrap();
        let outs = crate::util::race((0..8).map(|i| {
            let (order, reason) = (format!("dev,r{i},prod"), format!("racer {i}"));
            p.cmd(&[
                "policy", "set", "--order", &order, "--reason", &reason, "--store", store_arg, "-q",
            ])
        }));
        let mut winners = Vec::new();
        for (i, out) in outs.into_iter().enumerate() {
            let err = String::from_utf8_lossy(&out.stderr);
            match out.status.code() {
                Some(0) => winners.push(i),
                Some(4) => {
                    losers += 1;
                    assert!(
                        err.contains("lost the race to change the policy")
                            && err.contains("racer-"),
                        "{err}"
                    );
                }
                other => panic!("round {round}: racer {i} exited {other:?}: {err}"),
            }
        }
        assert!(!winners.is_empty(), "round {round}: nobody won");
        let dir = store.join("policy/events");
        let events: Vec<Value> = Project::files_under(&dir)
            .iter()
            .map(|f| read_json(&dir.join(f)))
            .collect();
        let seqs: Vec<u64> = events.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
        assert_eq!(seqs, (1..=events.len() as u64).collect::<Vec<_>>());
        assert_eq!(events.len(), 1 + winners.len(), "round {round}: {events:?}");
        for w in &winners {
            let mine = events[1..]
                .iter()
                .filter(|e| {
                    e["actor"] == format!("racer-{w}").as_str()
                        && names(&e["to"]) == ["dev", &format!("r{w}"), "prod"]
                })
                .count();
            assert_eq!(mine, 1, "round {round}: winner {w}");
        }
        let pointer = read_json(&store.join("policy.json"));
        let newest = events.last().unwrap();
        assert_eq!(pointer["seq"], newest["seq"]);
        assert_eq!(pointer["policy"], newest["to"]);
    }
    assert!(
        losers > 0,
        "80 simultaneous `policy set`s and not one lost a race: the race was never run"
    );
}

/// Tampering with the policy is refused (exit 5, naming the key) by every
/// command that reads the order, and nothing is written.
#[test]
fn a_tampered_policy_is_refused_wherever_the_order_is_read() {
    type Tamper = fn(&Project, &[u8]);
    let cases: [(&str, &str, Tamper); 6] = [
        (
            "policy.json",
            "is not what event 2 (policy/events/0000000002.json) sets",
            |p, _| {
                let path = p.store().join("policy.json");
                let mut v = read_json(&path);
                v["policy"] = json!({"environments": [{"name": "dev"}, {"name": "prod"}]});
                fs::write(&path, serde_json::to_vec(&v).unwrap()).unwrap();
            },
        ),
        ("policy.json", "says seq 7", |p, _| {
            let path = p.store().join("policy.json");
            let mut v = read_json(&path);
            v["seq"] = 7.into();
            fs::write(&path, serde_json::to_vec(&v).unwrap()).unwrap();
        }),
        (
            "policy/events/0000000001.json",
            "the history has a gap",
            |p, _| fs::remove_file(event_path(p, 1)).unwrap(),
        ),
        (
            "policy/events/0000000002.json",
            "but event 1 (policy/events/0000000001.json) left it at (dev, preprod, prod)",
            |p, _| {
                let path = event_path(p, 2);
                let mut v = read_json(&path);
                v["from"] = json!({"environments": [{"name": "dev"}]});
                fs::write(&path, serde_json::to_vec(&v).unwrap()).unwrap();
            },
        ),
        (
            "policy/events/0000000002.json",
            "says it is event 5",
            |p, _| {
                let path = event_path(p, 2);
                let mut v = read_json(&path);
                v["seq"] = 5.into();
                fs::write(&path, serde_json::to_vec(&v).unwrap()).unwrap();
            },
        ),
        // A policy.json written by hand into a store whose policy has no
        // history: planted, not recorded.
        (
            "policy.json",
            "exists, but the history of the policy is empty",
            |p, pointer| {
                fs::remove_dir_all(p.store().join("policy")).unwrap();
                fs::write(p.store().join("policy.json"), pointer).unwrap();
            },
        ),
    ];
    for (key, says, tamper) in cases {
        let p = Project::new();
        let m = release(&p, "1");
        p.ok(&["promote", &m, "--to", "dev"]);
        p.ok(&["policy", "set", "--order", "dev,qa,prod", "--reason", "qa"]);
        let pointer = fs::read(p.store().join("policy.json")).unwrap();
        tamper(&p, &pointer);
        let before = moving_parts(&p);
        let commands: [&[&str]; 9] = [
            &["promote", &m, "--to", "qa"],
            &["promote", &m, "--to", "qa", "--force", "--reason", "x"],
            &["publish", "--env", "dev"],
            &["rollback", "dev", "--to", &m],
            &["status"],
            &["history", "dev"],
            &["policy", "show"],
            &["policy", "set", "--order", "dev,prod", "--reason", "x"],
            &["policy", "history"],
        ];
        for args in commands {
            let err = p.fails(args, 5);
            assert!(
                err.contains(key) && err.contains(says),
                "{args:?}: {key:?} and {says:?} not in:\n{err}"
            );
            assert_eq!(moving_parts(&p), before, "{args:?} wrote");
        }
    }
}

#[test]
fn policy_json_output_is_exact_and_text_is_escaped() {
    let p = Project::new();
    let reason = "new\nline \x1b[31m";
    let v = json_out(
        p.cmd(&[
            "policy", "set", "--order", "dev,prod", "--reason", reason, "--json",
        ])
        .env("VERBATIM_ACTOR", "eve\x07"),
    );
    assert_eq!(v["result"], "set");
    assert_eq!(p.json(&["policy", "show"])["reason"], reason);
    let text = p.ok(&["policy", "history"]);
    assert!(
        text.contains("by eve\\x07  (new\\nline \\x1b[31m)") && text.lines().count() == 1,
        "{text}"
    );
    assert!(p.ok(&["policy", "show"]).contains("new\\nline"));
}

/// A policy stored with allowed signers that an older verbatim took but
/// OpenSSH skips (an unquoted `valid-before`): the history still reads,
/// the `signatures` gate refuses by line, and `policy set` replaces them.
#[test]
fn stored_allowed_signers_this_verbatim_refuses_leave_the_policy_readable_and_replaceable() {
    let p = Project::new();
    let m = release(&p, "v1");
    p.ok(&["promote", &m, "--to", "dev"]);
    p.ok(&["promote", "dev", "--to", "preprod"]);
    p.ok(&["key", "generate", "--out", "qa.key"]);
    let qa = fs::read_to_string(p.path().join("qa.key.pub")).unwrap();
    p.write("good", format!("qa@acme valid-before=\"20990101\" {qa}"));
    p.ok(&[
        "policy",
        "set",
        "--require",
        "prod=qa@acme",
        "--allowed-signers",
        "good",
        "--reason",
        "QA signs prod",
    ]);
    // Rewrite the newest event and the pointer as an older verbatim could
    // have written them (the newest event is not under the chain).
    let seq = read_json(&p.store().join("policy.json"))["seq"]
        .as_u64()
        .unwrap();
    for file in [event_path(&p, seq), p.store().join("policy.json")] {
        let text = fs::read_to_string(&file).unwrap();
        let old = text.replace(r#"valid-before=\"20990101\""#, "valid-before=20990101");
        assert_ne!(text, old, "{text}");
        fs::write(&file, old).unwrap();
    }
    p.ok(&["policy", "show"]);
    p.ok(&["policy", "history", "--verify"]);
    let err = p.fails(&["promote", "preprod", "--to", "prod"], 5);
    assert!(
        err.contains("line 1") && err.contains("double quotes"),
        "{err}"
    );
    assert!(err.contains("policy set --allowed-signers"), "{err}");
    p.ok(&[
        "policy",
        "set",
        "--allowed-signers",
        "good",
        "--reason",
        "quote valid-before",
    ]);
    p.ok(&["policy", "history", "--verify"]);
    // Now the gate reads them, and asks for QA's signature (exit 3).
    p.fails(&["promote", "preprod", "--to", "prod"], 3);
}
