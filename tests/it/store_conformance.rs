//! The store conformance suite: the contract every `Store` implementation
//! keeps. Each check takes a fresh, empty store; `local_store` runs them all
//! against the local-directory store, and an S3 store runs the very same list.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use std::ops::ControlFlow;
use verbatim::digest::Digest;

use verbatim::store::{
    Body, ETag, Key, LocalStore, Put, PutMode, PutOptions, PutOutcome, Store, StoreError,
};

type Check = fn(&dyn Store);

/// Checks that race writers against each other: they need a server whose
/// conditional writes are atomic, not check-then-write.
pub const RACES: &[&str] = &[
    "concurrent_creates_have_one_winner",
    "concurrent_swaps_lose_no_update",
];

/// Every check in the suite, by name.
pub const CHECKS: &[(&str, Check)] = &[
    ("create_then_read_back", create_then_read_back),
    ("same_bytes_again_is_a_no_op", same_bytes_again_is_a_no_op),
    (
        "different_bytes_never_overwrite",
        different_bytes_never_overwrite,
    ),
    (
        "body_not_matching_its_digest_is_refused",
        body_not_matching_its_digest_is_refused,
    ),
    ("missing_keys", missing_keys),
    ("list_by_prefix", list_by_prefix),
    ("compare_and_swap", compare_and_swap),
    (
        "overwrite_replaces_whatever_is_there",
        overwrite_replaces_whatever_is_there,
    ),
    (
        "concurrent_creates_have_one_winner",
        concurrent_creates_have_one_winner,
    ),
    (
        "concurrent_swaps_lose_no_update",
        concurrent_swaps_lose_no_update,
    ),
    ("large_file_body", large_file_body),
    ("file_range_bodies", file_range_bodies),
    (
        "a_batch_stops_at_its_first_failure",
        a_batch_stops_at_its_first_failure,
    ),
    (
        "a_batch_stops_at_a_planted_object",
        a_batch_stops_at_a_planted_object,
    ),
    (
        "a_batch_starts_nothing_once_told_to_stop",
        a_batch_starts_nothing_once_told_to_stop,
    ),
];

fn key(s: &str) -> Key {
    Key::new(s).unwrap()
}

fn put(store: &dyn Store, k: &str, bytes: &[u8], mode: PutMode) -> Result<PutOutcome, StoreError> {
    store.put(&key(k), Body::bytes(bytes), mode, &PutOptions::default())
}

fn read(store: &dyn Store, k: &str) -> Vec<u8> {
    store.get(&key(k)).unwrap().into_bytes().unwrap()
}

fn etag(store: &dyn Store, k: &str) -> ETag {
    store.head(&key(k)).unwrap().unwrap().etag
}

fn create_then_read_back(store: &dyn Store) {
    let out = put(
        store,
        "artifacts/sha256/a.tar.gz",
        b"hello",
        PutMode::CreateOnly,
    )
    .unwrap();
    assert!(matches!(out, PutOutcome::Written(_)), "{out:?}");
    assert_eq!(read(store, "artifacts/sha256/a.tar.gz"), b"hello");
    let meta = store
        .head(&key("artifacts/sha256/a.tar.gz"))
        .unwrap()
        .unwrap();
    assert_eq!(meta.size, 5);
    if let Some(d) = meta.sha256 {
        assert_eq!(d, Digest::of(b"hello"));
    }
}

fn same_bytes_again_is_a_no_op(store: &dyn Store) {
    put(store, "k/x", b"same", PutMode::CreateOnly).unwrap();
    let before = etag(store, "k/x");
    let out = put(store, "k/x", b"same", PutMode::CreateOnly).unwrap();
    assert!(matches!(out, PutOutcome::Unchanged(_)), "{out:?}");
    assert_eq!(etag(store, "k/x"), before);
}

fn different_bytes_never_overwrite(store: &dyn Store) {
    put(store, "k/x", b"first", PutMode::CreateOnly).unwrap();
    let err = put(store, "k/x", b"second", PutMode::CreateOnly).unwrap_err();
    assert!(matches!(err, StoreError::AlreadyExists { .. }), "{err:?}");
    assert!(err.to_string().contains("k/x"), "{err}");
    assert_eq!(read(store, "k/x"), b"first");
}

fn body_not_matching_its_digest_is_refused(store: &dyn Store) {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("body");
    std::fs::write(&f, b"actual bytes").unwrap();
    let claimed = Digest::of(b"claimed bytes");
    let err = store
        .put(
            &key("k/lie"),
            Body::file(&f, claimed, 12),
            PutMode::CreateOnly,
            &PutOptions::default(),
        )
        .unwrap_err();
    assert!(matches!(err, StoreError::BodyMismatch { .. }), "{err:?}");
    assert!(
        store.head(&key("k/lie")).unwrap().is_none(),
        "a refused body was stored"
    );
}

fn missing_keys(store: &dyn Store) {
    assert!(store.head(&key("nope/x")).unwrap().is_none());
    assert!(matches!(
        store.get(&key("nope/x")),
        Err(StoreError::NotFound { .. })
    ));
    let err = put(
        store,
        "nope/x",
        b"v",
        PutMode::ReplaceIfMatch(ETag("x".into())),
    )
    .unwrap_err();
    assert!(
        matches!(err, StoreError::PreconditionFailed { .. }),
        "{err:?}"
    );
}

fn list_by_prefix(store: &dyn Store) {
    for k in [
        "manifests/sha256/ab1.json",
        "manifests/sha256/ab2.json",
        "manifests/sha256/cd.json",
        "envs/prod.json",
        "envs/prod/events/1.json",
    ] {
        put(store, k, k.as_bytes(), PutMode::CreateOnly).unwrap();
    }
    let names = |p: &str| -> Vec<String> {
        let listed = store.list(p).unwrap();
        for l in &listed {
            assert_eq!(l.size, l.key.as_str().len() as u64, "size of {}", l.key);
        }
        listed.iter().map(|l| l.key.to_string()).collect()
    };
    assert_eq!(
        names("manifests/sha256/ab"),
        ["manifests/sha256/ab1.json", "manifests/sha256/ab2.json"]
    );
    assert_eq!(names("manifests/").len(), 3);
    assert_eq!(names("envs/prod/events/"), ["envs/prod/events/1.json"]);
    assert_eq!(
        names("envs/"),
        ["envs/prod.json", "envs/prod/events/1.json"]
    );
    assert!(names("nothing/").is_empty());
}

fn compare_and_swap(store: &dyn Store) {
    put(store, "envs/dev.json", b"v1", PutMode::CreateOnly).unwrap();
    let e1 = etag(store, "envs/dev.json");
    put(
        store,
        "envs/dev.json",
        b"v2",
        PutMode::ReplaceIfMatch(e1.clone()),
    )
    .unwrap();
    assert_eq!(read(store, "envs/dev.json"), b"v2");
    let err = put(store, "envs/dev.json", b"v3", PutMode::ReplaceIfMatch(e1)).unwrap_err();
    assert!(
        matches!(err, StoreError::PreconditionFailed { .. }),
        "{err:?}"
    );
    assert_eq!(read(store, "envs/dev.json"), b"v2");
    let e2 = store.get(&key("envs/dev.json")).unwrap().meta.etag;
    assert_eq!(
        e2,
        etag(store, "envs/dev.json"),
        "get and head agree on the etag"
    );
    put(store, "envs/dev.json", b"v3", PutMode::ReplaceIfMatch(e2)).unwrap();
    assert_eq!(read(store, "envs/dev.json"), b"v3");
}

fn overwrite_replaces_whatever_is_there(store: &dyn Store) {
    let k = "envs/dev/hosts/web-1.json";
    put(store, k, b"first", PutMode::Overwrite).unwrap();
    assert_eq!(read(store, k), b"first");
    put(store, k, b"second report", PutMode::Overwrite).unwrap();
    assert_eq!(read(store, k), b"second report");
    let meta = store.head(&key(k)).unwrap().unwrap();
    assert_eq!(meta.size, 13);
}

fn concurrent_creates_have_one_winner(store: &dyn Store) {
    let winners = AtomicUsize::new(0);
    std::thread::scope(|s| {
        for i in 0..8 {
            let winners = &winners;
            s.spawn(move || {
                let body = format!("writer {i}");
                match put(store, "race/create", body.as_bytes(), PutMode::CreateOnly) {
                    Ok(PutOutcome::Written(_)) => {
                        winners.fetch_add(1, Ordering::SeqCst);
                    }
                    Err(StoreError::AlreadyExists { .. }) => {}
                    other => panic!("unexpected {other:?}"),
                }
            });
        }
    });
    assert_eq!(winners.load(Ordering::SeqCst), 1);
    assert!(String::from_utf8(read(store, "race/create"))
        .unwrap()
        .starts_with("writer "));
}

/// Each thread increments a counter by compare-and-swap, retrying when it
/// loses; no increment may be lost.
fn concurrent_swaps_lose_no_update(store: &dyn Store) {
    put(store, "race/counter", b"0", PutMode::CreateOnly).unwrap();
    let lost = Arc::new(AtomicUsize::new(0));
    std::thread::scope(|s| {
        for _ in 0..4 {
            let lost = lost.clone();
            s.spawn(move || {
                for _ in 0..10 {
                    loop {
                        let obj = store.get(&key("race/counter")).unwrap();
                        let tag = obj.meta.etag.clone();
                        let n: u64 = String::from_utf8(obj.into_bytes().unwrap())
                            .unwrap()
                            .parse()
                            .unwrap();
                        let next = (n + 1).to_string();
                        match put(
                            store,
                            "race/counter",
                            next.as_bytes(),
                            PutMode::ReplaceIfMatch(tag),
                        ) {
                            Ok(_) => break,
                            Err(StoreError::PreconditionFailed { .. }) => {
                                lost.fetch_add(1, Ordering::SeqCst);
                            }
                            Err(e) => panic!("{e}"),
                        }
                    }
                }
            });
        }
    });
    assert_eq!(read(store, "race/counter"), b"40");
}

fn large_file_body(store: &dyn Store) {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("big");
    let bytes: Vec<u8> = (0..(20u32 << 20)).map(|i| (i % 253) as u8).collect();
    std::fs::write(&f, &bytes).unwrap();
    let d = Digest::of(&bytes);
    store
        .put(
            &key("artifacts/big"),
            Body::file(&f, d, bytes.len() as u64),
            PutMode::CreateOnly,
            &PutOptions::default(),
        )
        .unwrap();
    let obj = store.get(&key("artifacts/big")).unwrap();
    assert_eq!(obj.meta.size, bytes.len() as u64);
    let (got, n) = Digest::of_reader(obj.reader).unwrap();
    assert_eq!((got, n), (d, bytes.len() as u64));
}

/// A body read from the middle of a file (a member of the build's assets
/// pack) is stored exactly, small or in parts; a range that holds other
/// bytes than claimed is refused.
fn file_range_bodies(store: &dyn Store) {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("pack");
    let small = b"body { color: red }".to_vec();
    let large: Vec<u8> = (0..(17u32 << 20)).map(|i| (i % 251) as u8).collect();
    let mut pack = vec![b'h'; 512];
    pack.extend(&small);
    pack.extend(vec![b'p'; 1000]);
    let at = pack.len() as u64;
    pack.extend(&large);
    pack.extend(vec![b't'; 4096]);
    std::fs::write(&f, &pack).unwrap();
    for (k, offset, bytes) in [("r/small", 512, &small), ("r/large", at, &large)] {
        let d = Digest::of(bytes);
        let body = Body::file_at(&f, offset, d, bytes.len() as u64);
        store
            .put(&key(k), body, PutMode::CreateOnly, &PutOptions::default())
            .unwrap();
        let obj = store.get(&key(k)).unwrap();
        assert_eq!(
            Digest::of_reader(obj.reader).unwrap(),
            (d, bytes.len() as u64)
        );
    }
    let wrong = Body::file_at(&f, 511, Digest::of(&small), small.len() as u64);
    let err = store
        .put(
            &key("r/wrong"),
            wrong,
            PutMode::CreateOnly,
            &PutOptions::default(),
        )
        .unwrap_err();
    assert!(matches!(err, StoreError::BodyMismatch { .. }), "{err:?}");
    assert!(store.head(&key("r/wrong")).unwrap().is_none());
}

/// `n` keys under `batch/` and a body for each.
fn batch(n: usize) -> (Vec<Key>, Vec<Vec<u8>>) {
    let keys = (0..n).map(|i| key(&format!("batch/{i:03}"))).collect();
    let bodies = (0..n).map(|i| format!("body {i}").into_bytes()).collect();
    (keys, bodies)
}

/// What a batch did, checked against what the store holds: the puts that
/// ran come first, each stored exactly when it says so, and none of those
/// that never started is there (`there_before` was stored before it).
fn ran(
    store: &dyn Store,
    keys: &[Key],
    results: &[Option<Result<PutOutcome, StoreError>>],
    there_before: Option<&Key>,
) -> usize {
    let started = results.iter().take_while(|r| r.is_some()).count();
    assert!(
        results[started..].iter().all(Option::is_none),
        "a put started after one that did not"
    );
    let stored: Vec<Key> = store
        .list("batch/")
        .unwrap()
        .into_iter()
        .map(|l| l.key)
        .collect();
    let written: Vec<Key> = keys
        .iter()
        .zip(results)
        .filter(|(k, r)| matches!(r, Some(Ok(PutOutcome::Written(_)))) || there_before == Some(*k))
        .map(|(k, _)| k.clone())
        .collect();
    assert_eq!(stored, written);
    started
}

/// How the 21st put of a batch fails.
#[derive(Clone, Copy, PartialEq)]
enum Failure {
    /// Its body does not match its digest (the file changed).
    BodyLies,
    /// Someone with write access to the store planted other bytes under
    /// its key first.
    Planted,
}

/// A batch runs its puts in order with several in flight; after a put fails,
/// nothing new starts, and what never started is not stored.
fn a_batch_stops_at_its_first_failure(store: &dyn Store) {
    batch_failing(store, Failure::BodyLies);
}

/// A planted object stops the batch and is never overwritten.
fn a_batch_stops_at_a_planted_object(store: &dyn Store) {
    batch_failing(store, Failure::Planted);
}

fn batch_failing(store: &dyn Store, how: Failure) {
    let (keys, mut bodies) = batch(120);
    let lie = Digest::of(b"other bytes");
    bodies[20] = b"the bytes of a changed file".to_vec();
    if how == Failure::Planted {
        put(store, keys[20].as_str(), b"planted", PutMode::CreateOnly).unwrap();
    }
    let opts = PutOptions::default();
    let puts: Vec<Put<'_>> = keys
        .iter()
        .zip(&bodies)
        .enumerate()
        .map(|(i, (key, bytes))| Put {
            key,
            body: if i == 20 && how == Failure::BodyLies {
                Body {
                    sha256: lie,
                    ..Body::bytes(bytes)
                }
            } else {
                Body::bytes(bytes)
            },
            mode: PutMode::CreateOnly,
            opts: &opts,
        })
        .collect();
    let results = store.put_many(&puts, 4, &|_| ControlFlow::Continue(()));
    assert!(
        results[..20]
            .iter()
            .all(|r| matches!(r, Some(Ok(PutOutcome::Written(_))))),
        "{:?}",
        &results[..20]
    );
    match how {
        Failure::BodyLies => assert!(
            matches!(results[20], Some(Err(StoreError::BodyMismatch { .. }))),
            "{:?}",
            results[20]
        ),
        Failure::Planted => {
            assert!(
                matches!(results[20], Some(Err(StoreError::AlreadyExists { .. }))),
                "{:?}",
                results[20]
            );
            assert_eq!(read(store, keys[20].as_str()), b"planted");
        }
    }
    let planted = (how == Failure::Planted).then_some(&keys[20]);
    let started = ran(store, &keys, &results, planted);
    assert!(started < 120, "every put started after one failed");
}

/// `after` is told of each put as it ends; once it breaks, nothing new
/// starts and what ran is stored.
fn a_batch_starts_nothing_once_told_to_stop(store: &dyn Store) {
    let (keys, bodies) = batch(60);
    let opts = PutOptions::default();
    let puts: Vec<Put<'_>> = keys
        .iter()
        .zip(&bodies)
        .map(|(key, bytes)| Put {
            key,
            body: Body::bytes(bytes),
            mode: PutMode::CreateOnly,
            opts: &opts,
        })
        .collect();
    let ended = std::sync::Mutex::new(Vec::new());
    let results = store.put_many(&puts, 3, &|i| {
        let mut ended = ended.lock().unwrap();
        ended.push(i);
        if ended.len() >= 5 {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    });
    let started = ran(store, &keys, &results, None);
    assert!(
        results[..started].iter().all(|r| matches!(r, Some(Ok(_)))),
        "{results:?}"
    );
    // Those in flight when it broke (at most 3) finish; no more start.
    assert!((5..=7).contains(&started), "{started} of 60 started");
    let mut ended = ended.into_inner().unwrap();
    ended.sort_unstable();
    assert_eq!(ended, (0..started).collect::<Vec<_>>());
}

#[test]
fn local_store() {
    for (name, check) in CHECKS {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::new(dir.path().join("store"));
        eprintln!("conformance: local store: {name}");
        check(&store);
    }
}

#[test]
fn local_store_leaves_no_temp_files_after_puts() {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::new(dir.path().to_owned());
    put(&store, "a/b", b"x", PutMode::CreateOnly).unwrap();
    put(&store, "a/b", b"x", PutMode::CreateOnly).unwrap();
    let _ = put(&store, "a/b", b"y", PutMode::CreateOnly);
    // Only the lock that keeps sweepers out while a process writes.
    let tmp: Vec<_> = std::fs::read_dir(dir.path().join(".tmp"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n != ".lock")
        .collect();
    assert!(tmp.is_empty(), "{tmp:?}");
}
