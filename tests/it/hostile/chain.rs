//! The hash chain (`prev`): an event changed, removed or inserted behind
//! verbatim's back, in a local store or in an S3 bucket, with every other
//! check satisfied (JSON valid, `seq`, `from` and the pointer consistent),
//! makes `history --verify` and `promote` exit 5 naming it. An untouched
//! history verifies; one written before chaining still reads, and new
//! events chain onto it.

use std::fs;
use std::process::Command;

use serde_json::Value;
use verbatim::digest::Digest;
use verbatim::store::{Body, Key, PutMode, S3Store, Store};

use crate::s3::{self, S3Server};
use crate::util::{exits, json_out, success, Project};

/// Where the tampering happens: a local store's files, or an S3 bucket
/// (written through its API, deleted as its DELETE does).
trait Backend {
    fn get(&self, key: &str) -> Option<Vec<u8>>;
    fn put(&self, key: &str, bytes: &[u8]);
    fn delete(&self, key: &str);
    /// `verbatim ARGS` against this store.
    fn cmd(&self, args: &[&str]) -> Command;
    fn project(&self) -> &Project;
}

struct Local(Project);

impl Backend for Local {
    fn get(&self, key: &str) -> Option<Vec<u8>> {
        fs::read(self.0.store().join(key)).ok()
    }
    fn put(&self, key: &str, bytes: &[u8]) {
        fs::write(self.0.store().join(key), bytes).unwrap();
    }
    fn delete(&self, key: &str) {
        fs::remove_file(self.0.store().join(key)).unwrap();
    }
    fn cmd(&self, args: &[&str]) -> Command {
        self.0.cmd(args)
    }
    fn project(&self) -> &Project {
        &self.0
    }
}

struct S3 {
    p: Project,
    server: S3Server,
    store: S3Store,
}

const PREFIX: &str = "chain";

impl S3 {
    fn start() -> Option<S3> {
        let server = S3Server::start()?;
        let store = s3::store(&server.url(), PREFIX);
        Some(S3 {
            p: Project::new(),
            server,
            store,
        })
    }
}

impl Backend for S3 {
    fn get(&self, key: &str) -> Option<Vec<u8>> {
        let key = Key::new(key).unwrap();
        match self.store.get(&key) {
            Ok(o) => Some(o.into_bytes().unwrap()),
            Err(verbatim::store::StoreError::NotFound { .. }) => None,
            Err(e) => panic!("{key}: {e}"),
        }
    }
    fn put(&self, key: &str, bytes: &[u8]) {
        let key = Key::new(key).unwrap();
        self.store
            .put(
                &key,
                Body::bytes(bytes),
                PutMode::Overwrite,
                &Default::default(),
            )
            .unwrap();
    }
    fn delete(&self, key: &str) {
        // s3s-fs's DeleteObject removes the object's file, and so do we.
        fs::remove_file(self.server.object_path(&format!("{PREFIX}/{key}"))).unwrap();
    }
    fn cmd(&self, args: &[&str]) -> Command {
        s3::cli(&self.p, &self.server.url(), PREFIX, args)
    }
    fn project(&self) -> &Project {
        &self.p
    }
}

fn event_key(seq: u64) -> String {
    format!("envs/dev/events/{seq:010}.json")
}

const POINTER: &str = "envs/dev.json";

fn read(b: &dyn Backend, key: &str) -> Value {
    serde_json::from_slice(&b.get(key).unwrap_or_else(|| panic!("{key} is missing"))).unwrap()
}

/// Writes `v` in canonical form (sorted keys, compact), as verbatim does.
fn write(b: &dyn Backend, key: &str, v: &Value) {
    b.put(key, &serde_json::to_vec(v).unwrap());
}

fn sha(bytes: &[u8]) -> String {
    Digest::of(bytes).to_string()
}

/// Publishes `n` releases and promotes each to dev in turn (events
/// `1..=n`); returns the manifest ids.
fn moves(b: &dyn Backend, n: usize) -> Vec<String> {
    let mut ids = vec![];
    for i in 1..=n {
        b.project().write("app/version.txt", i.to_string());
        let v = json_out(&mut b.cmd(&["publish", "--json"]));
        let id = v["manifest"].as_str().unwrap().to_owned();
        json_out(&mut b.cmd(&["promote", &id, "--to", "dev", "--json"]));
        ids.push(id);
    }
    ids
}

/// `history dev --verify` and a promote both exit 5, their message naming
/// `key` and each of `says`; nothing is written (no event `next`).
fn refused(b: &dyn Backend, ids: &[String], key: &str, says: &[&str], next: u64) {
    let pointer = b.get(POINTER);
    for args in [
        &["history", "dev", "--verify"][..],
        &["promote", &ids[0], "--to", "dev"],
        &["history", "dev"],
    ] {
        let err = exits(&mut b.cmd(args), 5);
        for s in [key].iter().chain(says) {
            assert!(err.contains(s), "{args:?}: {s:?} not in:\n{err}");
        }
    }
    let out = b
        .cmd(&["history", "dev", "--verify", "--json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(5));
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["error"]["kind"], "integrity", "{doc}");
    assert!(
        doc["error"]["message"].as_str().unwrap().contains(key),
        "{doc}"
    );
    assert!(
        b.get(&event_key(next)).is_none(),
        "event {next} was written"
    );
    assert_eq!(b.get(POINTER), pointer, "the pointer moved");
}

/// Each event from 2 on names the sha256 of the bytes stored before it.
fn untouched_verifies(b: &dyn Backend) {
    moves(b, 4);
    let stored: Vec<Vec<u8>> = (1..=4).map(|s| b.get(&event_key(s)).unwrap()).collect();
    assert!(read(b, &event_key(1)).get("prev").is_none());
    for s in 1..4 {
        assert_eq!(
            read(b, &event_key(s as u64 + 1))["prev"],
            sha(&stored[s - 1])
        );
    }
    // The pointer copies the newest event's essentials, never its `prev`.
    assert!(read(b, POINTER).get("prev").is_none());

    let head = sha(&stored[3]);
    let out = String::from_utf8(success(&mut b.cmd(&["history", "dev", "--verify"]))).unwrap();
    assert_eq!(
        out,
        format!("dev: 4 events, hash chain intact over events 1–4; newest {head}\n")
    );
    let v = json_out(&mut b.cmd(&["history", "dev", "--verify", "--json"]));
    assert_eq!(
        v["verified"],
        serde_json::json!({"events": 4, "intact": true, "chained_from": 1, "head": head})
    );
    assert_eq!(v["events"][0]["prev"], sha(&stored[2]));
    // Without --verify, the events as before.
    let out = String::from_utf8(success(&mut b.cmd(&["history", "dev"]))).unwrap();
    assert_eq!(out.lines().count(), 4, "{out}");
    assert!(json_out(&mut b.cmd(&["history", "dev", "--json"]))
        .get("verified")
        .is_none());
}

/// Event 2's reason and actor rewritten; event 3's `prev` gives it away.
fn edited(b: &dyn Backend) {
    let ids = moves(b, 4);
    let before = sha(&b.get(&event_key(2)).unwrap());
    let mut v = read(b, &event_key(2));
    v["reason"] = "routine".into();
    v["actor"] = "alice".into();
    write(b, &event_key(2), &v);
    let after = sha(&b.get(&event_key(2)).unwrap());
    refused(
        b,
        &ids,
        &event_key(3),
        &[
            "its `prev` does not match event 2",
            &format!("`prev` is {before}"),
            &format!("but {} as stored is {after}", event_key(2)),
            "event 2 was changed",
        ],
        5,
    );
}

/// Event 2 deleted, 3 and 4 renumbered (and 3's `from` mended), the
/// pointer set back to match: no gap, but the new event 2's `prev` names
/// the one that is gone.
fn deleted(b: &dyn Backend) {
    let ids = moves(b, 4);
    let one = read(b, &event_key(1));
    for (from, to) in [(3, 2), (4, 3)] {
        let mut v = read(b, &event_key(from));
        v["seq"] = to.into();
        if to == 2 {
            v["from"] = one["to"].clone();
        }
        write(b, &event_key(to), &v);
    }
    b.delete(&event_key(4));
    let mut pointer = read(b, POINTER);
    pointer["seq"] = 3.into();
    write(b, POINTER, &pointer);
    // Every check but the chain passes: the pointer is what event 3 sets.
    refused(
        b,
        &ids,
        &event_key(2),
        &[
            "its `prev` does not match event 1",
            "removed or inserted before event 2",
        ],
        4,
    );
}

/// A move planted between events 2 and 3, linked to event 2 as verbatim
/// would link it; 3 and 4 renumbered (and 3's `from` mended) and the
/// pointer moved to match. The old event 3 still names event 2.
fn inserted(b: &dyn Backend) {
    let ids = moves(b, 4);
    let two = b.get(&event_key(2)).unwrap();
    for (from, to) in [(4, 5), (3, 4)] {
        let mut v = read(b, &event_key(from));
        v["seq"] = to.into();
        if to == 4 {
            v["from"] = ids[0].as_str().into();
        }
        write(b, &event_key(to), &v);
    }
    let mut planted = read(b, &event_key(2));
    planted["seq"] = 3.into();
    planted["from"] = ids[1].as_str().into();
    planted["to"] = ids[0].as_str().into();
    planted["reason"] = "planted".into();
    planted["prev"] = sha(&two).into();
    write(b, &event_key(3), &planted);
    let mut pointer = read(b, POINTER);
    pointer["seq"] = 5.into();
    write(b, POINTER, &pointer);
    refused(
        b,
        &ids,
        &event_key(4),
        &[
            "its `prev` does not match event 3",
            &format!("the sha256 of event 2 ({})", event_key(2)),
            "event 3 was inserted after event 2",
        ],
        6,
    );
}

/// Events without `prev` (and in another spelling than verbatim's: what
/// is hashed is the bytes as stored) still read; the next move links to
/// the newest as stored, and from then on the chain holds.
fn written_before_chaining(b: &dyn Backend) {
    let ids = moves(b, 3);
    for seq in 1..=3 {
        let mut v = read(b, &event_key(seq));
        v.as_object_mut().unwrap().remove("prev");
        b.put(&event_key(seq), &serde_json::to_vec_pretty(&v).unwrap());
    }
    let three = b.get(&event_key(3)).unwrap();
    let out = String::from_utf8(success(&mut b.cmd(&["history", "dev", "--verify"]))).unwrap();
    assert_eq!(
        out,
        format!(
            "dev: 3 events, written before hash chaining (none carries `prev`): nothing to verify; the next event starts the chain; newest {}\n",
            sha(&three)
        )
    );
    let v = json_out(&mut b.cmd(&["history", "dev", "--verify", "--json"]));
    assert_eq!(v["verified"]["chained_from"], Value::Null);
    assert_eq!(
        String::from_utf8(success(&mut b.cmd(&["history", "dev"])))
            .unwrap()
            .lines()
            .count(),
        3
    );

    json_out(&mut b.cmd(&["promote", &ids[0], "--to", "dev", "--json"]));
    let four = b.get(&event_key(4)).unwrap();
    assert_eq!(read(b, &event_key(4))["prev"], sha(&three));
    let out = String::from_utf8(success(&mut b.cmd(&["history", "dev", "--verify"]))).unwrap();
    assert_eq!(
        out,
        format!(
            "dev: 4 events, hash chain intact over events 3–4 (events 1–2 written before chaining, not covered); newest {}\n",
            sha(&four)
        )
    );
    json_out(&mut b.cmd(&["promote", &ids[1], "--to", "dev", "--json"]));
    let v = json_out(&mut b.cmd(&["history", "dev", "--verify", "--json"]));
    assert_eq!(v["verified"]["chained_from"], 3);
    assert_eq!(v["verified"]["events"], 5);

    // Once chained, an old event inside the chain is covered too.
    let mut v = read(b, &event_key(3));
    v["actor"] = "alice".into();
    b.put(&event_key(3), &serde_json::to_vec_pretty(&v).unwrap());
    refused(
        b,
        &ids,
        &event_key(4),
        &["its `prev` does not match event 3"],
        6,
    );
}

#[test]
fn an_untouched_history_verifies_in_a_local_store() {
    untouched_verifies(&Local(Project::new()));
}

#[test]
fn an_untouched_history_verifies_in_s3() {
    let Some(b) = S3::start() else { return };
    untouched_verifies(&b);
}

#[test]
fn an_edited_event_breaks_the_chain_in_a_local_store() {
    edited(&Local(Project::new()));
}

#[test]
fn an_edited_event_breaks_the_chain_in_s3() {
    let Some(b) = S3::start() else { return };
    edited(&b);
}

#[test]
fn a_deleted_event_breaks_the_chain_despite_renumbering_in_a_local_store() {
    deleted(&Local(Project::new()));
}

#[test]
fn a_deleted_event_breaks_the_chain_despite_renumbering_in_s3() {
    let Some(b) = S3::start() else { return };
    deleted(&b);
}

#[test]
fn an_inserted_event_breaks_the_chain_in_a_local_store() {
    inserted(&Local(Project::new()));
}

#[test]
fn an_inserted_event_breaks_the_chain_in_s3() {
    let Some(b) = S3::start() else { return };
    inserted(&b);
}

#[test]
fn a_history_written_before_chaining_reads_and_is_chained_onto_in_a_local_store() {
    written_before_chaining(&Local(Project::new()));
}

#[test]
fn a_history_written_before_chaining_reads_and_is_chained_onto_in_s3() {
    let Some(b) = S3::start() else { return };
    written_before_chaining(&b);
}

/// The policy's log is chained by the same rule.
#[test]
fn the_policy_history_is_chained_and_verified_too() {
    let b = Local(Project::new());
    let ids = moves(&b, 1);
    success(&mut b.cmd(&[
        "policy",
        "set",
        "--order",
        "dev,qa,prod",
        "--reason",
        "QA first",
    ]));
    let key = |seq: u64| format!("policy/events/{seq:010}.json");
    let one = b.get(&key(1)).unwrap();
    let two = b.get(&key(2)).unwrap();
    assert_eq!(read(&b, &key(2))["prev"], sha(&one));
    let out = String::from_utf8(success(&mut b.cmd(&["policy", "history", "--verify"]))).unwrap();
    assert_eq!(
        out,
        format!(
            "the policy: 2 events, hash chain intact over events 1–2; newest {}\n",
            sha(&two)
        )
    );
    let v = json_out(&mut b.cmd(&["policy", "history", "--verify", "--json"]));
    assert_eq!(v["verified"]["chained_from"], 1);

    let mut v = read(&b, &key(1));
    v["reason"] = "nothing to see".into();
    write(&b, &key(1), &v);
    for args in [
        &["policy", "history", "--verify"][..],
        &["promote", &ids[0], "--to", "qa"],
    ] {
        let err = exits(&mut b.cmd(args), 5);
        assert!(
            err.contains(&key(2)) && err.contains("its `prev` does not match event 1"),
            "{args:?}: {err}"
        );
    }
}
