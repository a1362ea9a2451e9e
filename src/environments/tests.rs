//! Unit tests of the pure environment rules.
use super::gates::edit_distance;
use super::*;
use std::collections::BTreeMap;

use serde::Serialize;

use crate::clock::rfc3339;
use crate::digest::Digest;

fn ev(seq: u64, from: Option<&str>, to: &str) -> Event {
    Event {
        schema: EVENT_SCHEMA.into(),
        env: "prod".into(),
        seq,
        kind: Kind::Promote,
        time: rfc3339(0),
        actor: "ci".into(),
        from: from.map(String::from),
        to: to.into(),
        reason: None,
        forced: false,
        gates: vec![],
        check: None,
        prev: None,
        rollout: None,
    }
}

/// The sha256 of each event's bytes, as a store holds them.
fn digests<E: Entry + Serialize>(h: &[E]) -> Vec<Digest> {
    h.iter().map(|e| Digest::of(&canonical(e))).collect()
}

#[test]
fn keys_sort_in_sequence_order() {
    assert!(event_key("prod", 9) < event_key("prod", 10));
    assert_eq!(event_key("dev", 1), "envs/dev/events/0000000001.json");
    assert!(event_key("dev", 1).starts_with(&events_prefix("dev")));
}

#[test]
fn order_gate_needs_the_previous_environment() {
    let order: Vec<String> = ["dev", "preprod", "prod"].map(String::from).to_vec();
    assert_eq!(previous(&order, "dev", "x"), Ok(None));
    assert_eq!(previous(&order, "prod", "x"), Ok(Some("preprod")));
    assert!(previous(&order, "qa", "x")
        .unwrap_err()
        .contains("dev, preprod, prod"));
    assert!(order_gate(None, &[], None, "m1").ok);
    let hist = [ev(1, None, "m1")];
    assert!(order_gate(Some("preprod"), &hist, None, "m1").ok);
    let g = order_gate(Some("preprod"), &hist, None, "m2");
    assert!(!g.ok && g.detail.contains("--force"), "{g:?}");

    // Live there is not verified there until its canary check passed.
    let gate = |check| order_gate(Some("preprod"), &hist, Some(check), "m1");
    assert!(gate(CheckStatus::Passed).ok);
    for (check, says) in [
        (CheckStatus::Pending, "has not finished"),
        (CheckStatus::Expired, "never finished"),
        (CheckStatus::Failed, "failed"),
    ] {
        let g = gate(check);
        assert!(
            !g.ok && g.detail.contains(says) && g.detail.contains("event 1"),
            "{g:?}"
        );
    }
}

fn rb(seq: u64, from: &str, to: &str) -> Event {
    Event {
        kind: Kind::Rollback,
        ..ev(seq, Some(from), to)
    }
}

#[test]
fn rollback_targets() {
    let hist = [
        ev(1, None, "a"),
        ev(2, Some("a"), "b"),
        ev(3, Some("b"), "c"),
    ];
    assert_eq!(rollback_target(&hist, None).unwrap(), "b");
    assert_eq!(rollback_target(&hist, Some(1)).unwrap(), "a");
    assert!(rollback_target(&hist, Some(7)).is_err());
    assert!(rollback_target(&hist[..1], None).is_err());
    assert!(rollback_target(&[], None).is_err());
    assert!(was_live(&hist, "a") && !was_live(&hist, "z"));
    // A manifest promoted again is not "before" itself: a → b → a, back to b.
    let again = [
        ev(1, None, "a"),
        ev(2, Some("a"), "b"),
        ev(3, Some("b"), "a"),
    ];
    assert_eq!(rollback_target(&again, None).unwrap(), "b");
}

#[test]
fn rollback_walks_back_and_never_toggles() {
    let mut h = vec![
        ev(1, None, "a"),
        ev(2, Some("a"), "b"),
        ev(3, Some("b"), "c"),
    ];
    h.push(rb(4, "c", &rollback_target(&h, None).unwrap()));
    assert_eq!(h[3].to, "b");
    assert_eq!(rolled_back_from(&h), BTreeMap::from([("c", 4)]));
    // The second rollback walks past c (rolled back from), to a.
    h.push(rb(5, "b", &rollback_target(&h, None).unwrap()));
    assert_eq!(h[4].to, "a");
    assert_eq!(rolled_back_from(&h), BTreeMap::from([("b", 5), ("c", 4)]));
    // A third has nowhere left to go, and says why and how.
    let e = rollback_target(&h, None).unwrap_err();
    assert!(e.contains("b at event 5") && e.contains("--to"), "{e}");
    // Named explicitly, a manifest rolled back from is still reachable.
    assert_eq!(rollback_target(&h, Some(3)).unwrap(), "c");
    // Restoring it by name clears its mark (the live one is never marked);
    // the one it left (a) is now rolled back from.
    h.push(rb(6, "a", "c"));
    assert_eq!(rolled_back_from(&h), BTreeMap::from([("a", 6), ("b", 5)]));
    assert!(rollback_target(&h, None).is_err());
}

#[test]
fn an_auto_rollback_marks_too_and_a_promote_of_the_same_bytes_clears() {
    let mut h = vec![ev(1, None, "a"), ev(2, Some("a"), "b")];
    h.push(Event {
        kind: Kind::AutoRollback,
        ..ev(3, Some("b"), "a")
    });
    assert_eq!(rolled_back_from(&h), BTreeMap::from([("b", 3)]));
    h.push(ev(4, Some("a"), "c"));
    // c → a, not c → b: b stays rolled back from.
    assert_eq!(rollback_target(&h, None).unwrap(), "a");
    // Promoting b again (a fix-forward of the same bytes) makes it eligible.
    h.push(ev(5, Some("c"), "b"));
    assert!(rolled_back_from(&h).is_empty());
    h.push(ev(6, Some("b"), "d"));
    assert_eq!(rollback_target(&h, None).unwrap(), "b");
}

#[test]
fn the_order_gate_refuses_what_the_previous_environment_rolled_back_from() {
    let pre = |seq, from: Option<&str>, to: &str| Event {
        env: "preprod".into(),
        ..ev(seq, from, to)
    };
    let mut h = vec![pre(1, None, "a"), pre(2, Some("a"), "b")];
    assert!(order_gate(Some("preprod"), &h, None, "b").ok);
    let g = order_gate(Some("preprod"), &h, None, "a");
    assert!(g.ok && g.detail.contains("not rolled back from"), "{g:?}");
    h.push(Event {
        kind: Kind::Rollback,
        ..pre(3, Some("b"), "a")
    });
    let g = order_gate(Some("preprod"), &h, None, "b");
    assert!(!g.ok, "{g:?}");
    assert!(
        g.detail.contains("rolled back from b")
            && g.detail.contains(&event_key("preprod", 3))
            && g.detail.contains("--force"),
        "{g:?}"
    );
    // Live wins: a is live in preprod.
    assert!(order_gate(Some("preprod"), &h, None, "a").ok);
    // Promoted to preprod again: it may go on.
    h.push(pre(4, Some("a"), "b"));
    assert!(order_gate(Some("preprod"), &h, None, "b").ok);
}

#[test]
fn pointer_is_derived_from_the_event_byte_for_byte() {
    let e = ev(3, Some("b"), "c");
    assert_eq!(e.pointer().to_bytes(), e.pointer().to_bytes());
    assert_eq!(e.pointer().seq, 3);
    let back: Event = serde_json::from_slice(&e.to_bytes()).unwrap();
    assert_eq!(back, e);
}

fn id(c: char) -> String {
    format!("sha256:{}", c.to_string().repeat(64))
}

/// A consistent history of `n` moves through manifests a, b, c, …
fn chain(n: u64) -> Vec<Event> {
    let m = |i: u64| id(char::from(b'a' + (i % 6) as u8));
    (1..=n)
        .map(|seq| ev(seq, (seq > 1).then(|| m(seq - 1)).as_deref(), &m(seq)))
        .collect()
}

#[test]
fn event_keys_must_be_one_to_n_without_gaps() {
    let keys: Vec<String> = (1..=3).map(|s| event_key("prod", s)).collect();
    fn refs(v: &[String]) -> Vec<&str> {
        v.iter().map(String::as_str).collect()
    }
    assert_eq!(check_event_keys("prod", refs(&keys)), Ok(3));
    assert_eq!(check_event_keys("prod", []), Ok(0));

    // A deleted middle event: the missing key is named.
    let gap = [keys[0].clone(), keys[2].clone()];
    let e = check_event_keys("prod", refs(&gap)).unwrap_err();
    assert_eq!(e.key, event_key("prod", 2));
    assert!(e.what.contains("gap") && e.what.contains(&keys[2]), "{e}");

    // Not an event name: unpadded, stray suffix, nested, another env.
    for stray in [
        "envs/prod/events/2.json",
        "envs/prod/events/0000000002.json.bak",
        "envs/prod/events/x/0000000002.json",
        "envs/prod/events/0000000002.JSON",
    ] {
        let v = [keys[0].clone(), stray.to_owned()];
        let e = check_event_keys("prod", refs(&v)).unwrap_err();
        assert_eq!(e.key, stray, "{e}");
    }
    // No wrap at the top of u64: a huge name is a gap, not an overflow.
    let huge = [event_key("prod", u64::MAX)];
    let e = check_event_keys("prod", refs(&huge)).unwrap_err();
    assert_eq!(e.key, event_key("prod", 1));
}

#[test]
fn each_event_agrees_with_its_name_folder_and_predecessor() {
    let h = chain(3);
    assert_eq!(check_history("prod", &h, &digests(&h)), Ok(()));
    assert_eq!(check_history("prod", &[], &[]), Ok(()));

    let broken = |f: &dyn Fn(&mut Vec<Event>), key_seq: u64, says: &str| {
        let mut h = chain(3);
        f(&mut h);
        let e = check_history("prod", &h, &digests(&h)).unwrap_err();
        assert_eq!(e.key, event_key("prod", key_seq), "{e}");
        assert!(e.what.contains(says), "{says:?} not in {e}");
    };
    broken(&|h| h[1].seq = 3, 2, "says it is event 3");
    broken(&|h| h.swap(1, 2), 2, "says it is event 3");
    broken(&|h| h[2].seq = u64::MAX, 3, "event 18446744073709551615");
    broken(&|h| h[1].env = "dev".into(), 2, "\"dev\"");
    broken(&|h| h[0].to = "sha256:abc".into(), 1, "`to`");
    broken(&|h| h[0].to = id('A'), 1, "`to`");
    broken(&|h| h[2].from = Some("main".into()), 3, "`from`");
    broken(&|h| h[2].from = Some(id('f')), 3, "left it on");
    broken(&|h| h[2].from = None, 3, "ran nothing");
    broken(&|h| h[0].from = Some(id('f')), 1, "first event");
    broken(&|h| h[0].schema = "verbatim.event/v0".into(), 1, "schema");
    // Reasons and actors are free text: controls there are not integrity
    // problems (they are escaped when printed).
    let mut h = chain(2);
    h[1].reason = Some("ok\n#7 \x1b[31m".into());
    h[1].actor = "\u{9b}bot".into();
    assert_eq!(check_history("prod", &h, &digests(&h)), Ok(()));
}

/// Sets each event's `prev` (from `from` on, 0-based) to the digest of
/// the one before it, as a writer does.
fn link(h: &mut [Event], from: usize) {
    for i in from.max(1)..h.len() {
        h[i].prev = Some(Digest::of(&h[i - 1].to_bytes()).to_string());
    }
}

#[test]
fn an_event_without_prev_keeps_its_bytes() {
    let mut e = ev(2, Some(&id('a')), &id('b'));
    let old = e.to_bytes();
    assert!(!String::from_utf8_lossy(&old).contains("prev"));
    e.prev = Some(Digest::of(b"event 1").to_string());
    let back: Event = serde_json::from_slice(&e.to_bytes()).unwrap();
    assert_eq!(back, e);
    e.prev = None;
    assert_eq!(e.to_bytes(), old);
    // The pointer does not carry it.
    let mut c = e.clone();
    c.prev = Some(id('f'));
    assert_eq!(c.pointer(), e.pointer());
}

#[test]
fn a_history_is_a_hash_chain_which_may_start_late() {
    let mut h = chain(4);
    // Written before chaining: no `prev` anywhere.
    assert_eq!(check_history("prod", &h, &digests(&h)), Ok(()));
    assert_eq!(chain_start(&h), None);
    // Chained from event 3 on: events 2..=4 are covered.
    link(&mut h, 2);
    assert_eq!(check_history("prod", &h, &digests(&h)), Ok(()));
    assert_eq!(chain_start(&h), Some(2));
    // Chained throughout.
    let mut h = chain(4);
    link(&mut h, 1);
    assert_eq!(check_history("prod", &h, &digests(&h)), Ok(()));
    assert_eq!(chain_start(&h), Some(1));
    assert_eq!(chain_start(&h[..1]), None);
    // What is hashed is the bytes as stored, whatever their spelling.
    let mut h = chain(2);
    let stored = serde_json::to_vec_pretty(&h[0]).unwrap();
    h[1].prev = Some(Digest::of(&stored).to_string());
    let d = vec![Digest::of(&stored), Digest::of(&h[1].to_bytes())];
    assert_eq!(check_history("prod", &h, &d), Ok(()));
    let e = check_history("prod", &h, &digests(&h)).unwrap_err();
    assert_eq!(e.key, event_key("prod", 2), "{e}");
}

#[test]
fn a_changed_removed_or_inserted_event_breaks_the_chain_after_it() {
    let linked = |n| {
        let mut h = chain(n);
        link(&mut h, 1);
        h
    };
    let broken = |h: &[Event], seq: u64, says: &[&str]| {
        let e = check_history("prod", h, &digests(h)).unwrap_err();
        assert_eq!(e.key, event_key("prod", seq), "{e}");
        for s in says {
            assert!(e.what.contains(s), "{s:?} not in {e}");
        }
    };
    // Changed: a free-text field of event 2, every other check passes.
    let mut h = linked(4);
    h[1].reason = Some("nothing to see".into());
    let was = Digest::of(&linked(4)[1].to_bytes()).to_string();
    let now = Digest::of(&h[1].to_bytes()).to_string();
    broken(
        &h,
        3,
        &[
            "its `prev` does not match event 2",
            &was,
            &now,
            &event_key("prod", 2),
            "event 2 was changed",
        ],
    );
    // Removed, the rest renumbered and re-linked by `from`.
    let mut h = linked(4);
    h.remove(1);
    for (i, e) in h.iter_mut().enumerate() {
        e.seq = i as u64 + 1;
    }
    h[1].from = Some(h[0].to.clone());
    broken(&h, 2, &["does not match event 1", "removed or inserted"]);
    // Inserted, with a `prev` linking it to the event before it.
    let mut h = linked(3);
    let mut planted = ev(2, Some(&h[0].to), &h[0].to);
    planted.prev = Some(Digest::of(&h[0].to_bytes()).to_string());
    h.insert(1, planted);
    for (i, e) in h.iter_mut().enumerate() {
        e.seq = i as u64 + 1;
    }
    broken(
        &h,
        3,
        &[
            "does not match event 2",
            "the sha256 of event 1",
            "event 2 was inserted after event 1",
        ],
    );
    // Two of them.
    let mut h = linked(3);
    let mut second = ev(3, Some(&h[0].to), &h[0].to);
    h.insert(1, h[1].clone());
    h[1].to = h[0].to.clone();
    link(&mut h[..2], 1);
    second.prev = Some(Digest::of(&h[1].to_bytes()).to_string());
    h.insert(2, second);
    for (i, e) in h.iter_mut().enumerate() {
        e.seq = i as u64 + 1;
    }
    h[3].from = Some(h[0].to.clone());
    broken(&h, 4, &["events 2–3 were inserted after event 1"]);
    // Inserted without one: after the first event, it looks written
    // before chaining, but the next link breaks; later, it cannot hide.
    let mut h = linked(3);
    h.insert(1, ev(2, Some(&h[0].to), &h[0].to));
    for (i, e) in h.iter_mut().enumerate() {
        e.seq = i as u64 + 1;
    }
    broken(&h, 3, &["does not match event 2"]);
    let mut h = linked(3);
    h.insert(2, ev(3, Some(&h[1].to), &h[1].to));
    for (i, e) in h.iter_mut().enumerate() {
        e.seq = i as u64 + 1;
    }
    broken(&h, 3, &["has no `prev`, but event 2 before it has one"]);
    // A `prev` removed once the chain started.
    let mut h = linked(4);
    h[3].prev = None;
    broken(&h, 4, &["has no `prev`, but event 3 before it has one"]);
    // The first event has nothing before it.
    let mut h = linked(2);
    h[0].prev = Some(id('a'));
    broken(&h, 1, &["is the first event, but its `prev`"]);
    // Not a digest.
    let mut h = linked(2);
    h[1].prev = Some(id('A'));
    broken(&h, 2, &["`prev` is", "not an event digest"]);
    // The first event at fault is named: the break at 3 (event 2
    // changed) before event 4's own fault.
    let mut h = linked(4);
    h[1].reason = Some("x".into());
    h[3].env = "dev".into();
    broken(&h, 3, &["does not match event 2"]);
}

#[test]
fn manifests_named_once_each_with_the_first_event() {
    let mut h = chain(3);
    h.push(ev(4, Some(&h[2].to), &h[0].to));
    let named = manifests_named(&h);
    assert_eq!(named.len(), 3);
    assert_eq!(named[&strict_digest(&h[0].to).unwrap()], 1);
    assert_eq!(named[&strict_digest(&h[2].to).unwrap()], 3);
}

#[test]
fn the_pointer_is_the_newest_event_or_one_step_behind() {
    let h = chain(3);
    let bytes = |i: usize| h[i].pointer().to_bytes();
    assert_eq!(check_pointer("prod", Some(&bytes(2)), &h), Ok(3));
    assert_eq!(check_pointer("prod", Some(&bytes(1)), &h), Ok(2));
    assert_eq!(check_pointer("prod", None, &[]), Ok(0));
    assert_eq!(check_pointer("prod", None, &h[..1]), Ok(0));

    let bad = |pointer: Option<&[u8]>, hist: &[Event], says: &str| {
        let e = check_pointer("prod", pointer, hist).unwrap_err();
        assert_eq!(e.key, pointer_key("prod"));
        assert!(e.what.contains(says), "{says:?} not in {e}");
    };
    bad(Some(&bytes(0)), &h, "never more than one move behind");
    bad(None, &h, "is missing");
    bad(Some(&bytes(2)), &[], "empty");
    bad(Some(b"{"), &h, "not a valid pointer");
    for seq in [7, u64::MAX] {
        let mut p = h[2].pointer();
        p.seq = seq;
        bad(
            Some(&p.to_bytes()),
            &h,
            &format!(
                "says seq {seq}, but the newest event is {}",
                event_key("prod", 3)
            ),
        );
    }
    let mut p = h[2].pointer();
    p.manifest = h[0].to.clone();
    bad(Some(&p.to_bytes()), &h, "is not what event 3");
    // Same fields, other bytes (reordered keys, whitespace): not byte for byte.
    let mut spaced = bytes(2);
    spaced.insert(1, b' ');
    bad(Some(&spaced), &h, "byte for byte");
}

#[test]
fn strict_digests_only() {
    assert!(strict_digest(&id('a')).is_some());
    assert!(strict_digest(&id('a')[7..]).is_none());
    assert!(strict_digest(&id('A')).is_none());
    assert!(strict_digest(&format!("{} ", id('a'))).is_none());
}

fn checked(seq: u64, from: Option<&str>, to: &str, deadline: u64) -> Event {
    let mut e = ev(seq, from, to);
    e.check = Some(Check {
        cmd: Some("./smoke".into()),
        hosts: None,
        host_ids: vec![],
        signed_reports: false,
        timeout_secs: 60,
        deadline: rfc3339(deadline),
    });
    e
}

#[test]
fn a_check_lists_hosts_by_id_each_once_as_many_as_it_counts() {
    let with = |hosts: Option<u64>, ids: &[&str]| {
        let mut e = checked(1, None, &id('a'), 60);
        let c = e.check.as_mut().unwrap();
        c.cmd = None;
        c.hosts = hosts;
        c.host_ids = ids.iter().map(|s| s.to_string()).collect();
        check_event("prod", 1, &e, None)
    };
    assert_eq!(with(Some(2), &[]), Ok(()));
    assert_eq!(with(Some(2), &["web1", "web2"]), Ok(()));
    for (hosts, ids, why) in [
        (Some(3), &["web1", "web2"][..], "names 2 host(s)"),
        (None, &["web1"][..], "command"),
        (Some(2), &["web1", "web1"][..], "twice"),
        (Some(1), &["a/b"][..], "not usable"),
    ] {
        let e = with(hosts, ids).unwrap_err().to_string();
        assert!(e.contains(why), "{ids:?}: {e}");
    }
    // Events without a list keep their bytes.
    let e = checked(1, None, &id('a'), 60);
    assert!(!String::from_utf8(e.to_bytes())
        .unwrap()
        .contains("host_ids"));
}

#[test]
fn signed_reports_are_recorded_for_hosts_only_and_absent_when_not_asked() {
    let mut e = checked(1, None, &id('a'), 60);
    let text = String::from_utf8(e.to_bytes()).unwrap();
    assert!(!text.contains("signed_reports"), "{text}");
    let c = e.check.as_mut().unwrap();
    c.signed_reports = true;
    let e2 = check_event("prod", 1, &e, None).unwrap_err().to_string();
    assert!(e2.contains("waits for no hosts"), "{e2}");
    let c = e.check.as_mut().unwrap();
    c.cmd = None;
    c.hosts = Some(1);
    assert_eq!(check_event("prod", 1, &e, None), Ok(()));
    let text = String::from_utf8(e.to_bytes()).unwrap();
    assert!(text.contains("\"signed_reports\":true"), "{text}");
    let back: Event = serde_json::from_slice(&e.to_bytes()).unwrap();
    assert!(back.check.unwrap().signed_reports);
}

fn record(e: &Event, outcome: Outcome) -> CheckRecord {
    CheckRecord {
        schema: CHECK_SCHEMA.into(),
        env: e.env.clone(),
        seq: e.seq,
        manifest: e.to.clone(),
        outcome,
        detail: "`./smoke` exited 0".into(),
        time: rfc3339(1),
    }
}

#[test]
fn an_event_without_a_check_keeps_its_bytes() {
    let e = ev(1, None, &id('a'));
    let text = String::from_utf8(e.to_bytes()).unwrap();
    assert!(!text.contains("check"), "{text}");
    let c = checked(1, None, &id('a'), 100);
    let back: Event = serde_json::from_slice(&c.to_bytes()).unwrap();
    assert_eq!(back, c);
    // The pointer does not carry the check.
    assert_eq!(c.pointer(), e.pointer());
}

#[test]
fn only_promotes_carry_a_check_with_a_valid_deadline() {
    let mut h = chain(2);
    h[1].check = checked(2, None, "x", 100).check;
    assert_eq!(check_history("prod", &h, &digests(&h)), Ok(()));
    h[1].kind = Kind::Rollback;
    let e = check_history("prod", &h, &digests(&h)).unwrap_err();
    assert!(e.what.contains("only a promote"), "{e}");
    h[1].kind = Kind::Promote;
    for bad in [
        "2026-02-30T00:00:00Z",
        "tomorrow",
        "2026-01-01 00:00:00Z",
        "",
    ] {
        h[1].check.as_mut().unwrap().deadline = bad.into();
        let e = check_history("prod", &h, &digests(&h)).unwrap_err();
        assert!(e.what.contains("check.deadline"), "{bad}: {e}");
    }
}

#[test]
fn check_status_from_record_rollback_or_clock() {
    let (a, b) = (id('a'), id('b'));
    let h = [ev(1, None, &a), checked(2, Some(&a), &b, 100)];
    // No check: no status.
    assert_eq!(check_status(&h, 0, None, 0), None);
    assert_eq!(check_status(&h, 7, None, 0), None);
    // No outcome: pending until the deadline, expired from it on.
    assert_eq!(
        check_status(&h, 1, None, 99),
        Some((CheckStatus::Pending, None))
    );
    assert_eq!(
        check_status(&h, 1, None, 100),
        Some((CheckStatus::Expired, None))
    );
    // A record decides, whatever the clock says.
    let passed = record(&h[1], Outcome::Passed);
    let (s, detail) = check_status(&h, 1, Some(&passed), 1_000).unwrap();
    assert!(s.passed() && detail.unwrap().contains("exited 0"));
    let failed = record(&h[1], Outcome::Failed);
    assert_eq!(
        check_status(&h, 1, Some(&failed), 0).unwrap().0,
        CheckStatus::Failed
    );
    // An auto-rollback right after it, without a record: failed.
    let mut back = ev(3, Some(&b), &a);
    back.kind = Kind::AutoRollback;
    back.reason = Some("canary check failed: interrupted by SIGINT".into());
    let mut h2 = h.to_vec();
    h2.push(back.clone());
    let (s, detail) = check_status(&h2, 1, None, 0).unwrap();
    assert_eq!(s, CheckStatus::Failed);
    assert!(detail.unwrap().contains("SIGINT"));
    // A plain rollback after it says nothing about the check.
    back.kind = Kind::Rollback;
    h2[2] = back;
    assert_eq!(
        check_status(&h2, 1, None, 100).unwrap().0,
        CheckStatus::Expired
    );
}

#[test]
fn the_canary_gate_lets_only_passed_checks_be_built_upon() {
    let (a, b) = (id('a'), id('b'));
    let plain = ev(1, None, &a);
    assert_eq!(canary_gate("prod", &plain, None), None);
    let live = checked(2, Some(&a), &b, 100);
    let g = canary_gate("prod", &live, Some(CheckStatus::Passed)).unwrap();
    assert!(g.ok && g.gate == "canary", "{g:?}");
    for (status, says) in [
        (CheckStatus::Pending, "may still be running"),
        (CheckStatus::Expired, "never finished"),
        (CheckStatus::Failed, "failed"),
    ] {
        let g = canary_gate("prod", &live, Some(status)).unwrap();
        assert!(!g.ok, "{g:?}");
        assert!(
            g.detail.contains(says)
                && g.detail.contains("verbatim rollback prod")
                && g.detail.contains("--force")
                && g.detail.contains(&b),
            "{g:?}"
        );
    }
}

#[test]
fn check_records_agree_with_their_key_and_event() {
    let (a, b) = (id('a'), id('b'));
    let h = [ev(1, None, &a), checked(2, Some(&a), &b, 100)];
    let good = record(&h[1], Outcome::Passed);
    assert_eq!(check_record("prod", 2, &good, Some(&h[1])), Ok(()));
    let back = CheckRecord::parse("k", &good.to_bytes()).unwrap();
    assert_eq!(back, good);
    assert!(CheckRecord::parse("k", b"{}").is_err());

    let bad = |f: &dyn Fn(&mut CheckRecord), seq: u64, event: Option<&Event>, says: &str| {
        let mut r = good.clone();
        f(&mut r);
        let e = check_record("prod", seq, &r, event).unwrap_err();
        assert_eq!(e.key, check_key("prod", seq));
        assert!(e.what.contains(says), "{says:?} not in {e}");
    };
    bad(&|r| r.schema = "x".into(), 2, Some(&h[1]), "schema");
    bad(&|r| r.seq = 3, 2, Some(&h[1]), "file name says 2");
    bad(&|r| r.env = "dev".into(), 2, Some(&h[1]), "\"dev\"");
    bad(&|r| r.manifest = a.clone(), 2, Some(&h[1]), "moved prod to");
    bad(&|r| r.seq = 1, 1, Some(&h[0]), "started none");
    bad(&|r| r.seq = 9, 9, None, "does not exist");

    let keys = [check_key("prod", 2), check_key("prod", 10)];
    assert_eq!(
        check_record_seqs("prod", keys.iter().map(String::as_str)),
        Ok(vec![2, 10])
    );
    for stray in [
        "envs/prod/checks/2.json",
        "envs/prod/checks/0000000002.json.tmp",
        "envs/prod/checks/x/0000000002.json",
    ] {
        let e = check_record_seqs("prod", [stray]).unwrap_err();
        assert_eq!(e.key, stray);
    }
}

#[test]
fn undeclared_environments_suggest_the_nearest() {
    let order: Vec<String> = ["dev", "preprod", "prod"].map(String::from).to_vec();
    assert_eq!(closest("prd", &order), Some("prod"));
    assert_eq!(closest("pre-prod", &order), Some("preprod"));
    assert_eq!(closest("staging", &order), None);
    assert_eq!(closest("dve", &order), Some("dev"), "a swap is one edit");
    assert_eq!(closest("prdo", &order), Some("prod"));
    let said = undeclared(&order, "prd", "the store's policy");
    assert!(
        said.ends_with("of the store's policy; did you mean `prod`?"),
        "{said}"
    );
    assert!(!undeclared(&order, "qa", "x").contains("did you mean"));
    assert_eq!(edit_distance("kitten", "sitting"), 3);
    assert_eq!(edit_distance("ab", "ba"), 1);
    assert_eq!(edit_distance("ca", "abc"), 3);
    assert_eq!(edit_distance("", "abc"), 3);
    assert_eq!(edit_distance("abc", ""), 3);
}

const STABLE: &str = "sha256:5555555555555555555555555555555555555555555555555555555555555555";
const TARGET: &str = "sha256:7777777777777777777777777777777777777777777777777777777777777777";

/// A rollout step at `seq` of rollout 2 (stable → target), `to` as given.
fn step(seq: u64, step: rollout::Step, to: &str) -> Event {
    let plan = (step == rollout::Step::Started).then(|| rollout::Plan {
        strategy: rollout::Strategy::Waves,
        waves: rollout::parse_waves("1,100%").unwrap(),
        bake_secs: 0,
        check: None,
        check_timeout_secs: 60,
        wave_timeout_secs: 60,
        hosts: vec!["web1".into()],
        canaries: 0,
        min_staged: None,
        release: None,
        release_hosts: vec![],
    });
    Event {
        kind: event::Kind::Rollout,
        rollout: Some(rollout::Rollout {
            id: 2,
            target: TARGET.into(),
            stable: STABLE.into(),
            step,
            wave: 1,
            hosts: vec!["web1".into()],
            all: false,
            stage: false,
            deadline: None,
            plan,
            resume: None,
            detail: None,
        }),
        ..ev(seq, Some(STABLE), to)
    }
}

/// What someone with write access to the bucket might plant as a rollout
/// step, each refused as a reader checks it: a step outside a rollout in
/// flight, a step that moves the pointer to the target before
/// `completed`, a `completed` that does not, a plan on a later step, a
/// rollout field on a promote, a rollout kind without one.
#[test]
fn forged_rollout_steps_are_refused() {
    use rollout::Step;
    let first = ev(1, None, STABLE);
    let started = step(2, Step::Started, STABLE);
    assert_eq!(check_event("prod", 2, &started, Some(&first)), Ok(()));
    let wave = step(3, Step::Wave, STABLE);
    assert_eq!(check_event("prod", 3, &wave, Some(&started)), Ok(()));
    let bad = |e: &Event, before: &Event| {
        check_event("prod", e.seq, e, Some(before))
            .unwrap_err()
            .to_string()
    };
    // A wave with no rollout before it.
    assert!(bad(&step(2, Step::Wave, STABLE), &first).contains("not a step of that rollout"));
    // Every host onto the target while still rolling.
    assert!(bad(&step(3, Step::Wave, TARGET), &started).contains(&format!("not {STABLE}")));
    // Completed, but the environment stays on the stable manifest.
    assert!(bad(&step(3, Step::Completed, STABLE), &started).contains(TARGET));
    // A step after the rollout ended.
    let done = step(3, Step::Completed, TARGET);
    assert_eq!(check_event("prod", 3, &done, Some(&started)), Ok(()));
    let after = Event {
        from: Some(TARGET.into()),
        ..step(4, Step::Wave, STABLE)
    };
    assert!(bad(&after, &done).contains("not a step of that rollout"));
    // A plan smuggled into a later step.
    let mut planned = step(3, Step::Wave, STABLE);
    planned.rollout.as_mut().unwrap().plan = started.rollout.clone().unwrap().plan;
    assert!(bad(&planned, &started).contains("plan"));
    // The wrong kind either way.
    let promote = Event {
        kind: event::Kind::Promote,
        ..step(3, Step::Wave, STABLE)
    };
    assert!(bad(&promote, &started).contains("carries a rollout step"));
    let bare = Event {
        rollout: None,
        ..step(3, Step::Wave, STABLE)
    };
    assert!(bad(&bare, &started).contains("says which nowhere"));
}
