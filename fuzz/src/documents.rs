//! The store's JSON documents: manifests, pointers and events.

use verbatim::digest::Digest;
use verbatim::environments::{Event, Pointer};
use verbatim::manifest::Manifest;

/// Parsing never panics. A manifest that parses re-encodes canonically
/// (sorted keys, compact), re-parses to the same value and keeps its id;
/// its object list can be built (it `expect`s what `parse` checked): the
/// assets, the artifact and the site's entries. An
/// event or pointer that parses round-trips through its canonical bytes,
/// and an event's pointer too.
pub fn check(data: &[u8]) {
    if let Ok(m) = Manifest::parse(data) {
        let bytes = m.to_canonical_bytes();
        let back = Manifest::parse(&bytes).unwrap_or_else(|e| {
            panic!(
                "canonical bytes of a parsed manifest do not parse: {e}\n{}",
                String::from_utf8_lossy(&bytes)
            )
        });
        assert_eq!(back, m, "manifest changed through its canonical bytes");
        assert_eq!(back.id(), m.id());
        assert_eq!(m.id(), Digest::of(&bytes));
        assert_eq!(back.to_canonical_bytes(), bytes);
        assert_canonical(&bytes);
        if data == bytes.as_slice() {
            assert_eq!(m.id(), Digest::of(data));
        }
        let objects = m.objects();
        let entries = m.site.as_ref().map_or(0, |s| s.entries.len());
        assert_eq!(objects.len(), m.assets.len() + 1 + entries);
        assert_eq!(m.key(), verbatim::manifest::key_for(&m.id()));
    }
    if let Ok(e) = serde_json::from_slice::<Event>(data) {
        let bytes = e.to_bytes();
        let back: Event = serde_json::from_slice(&bytes).expect("an event's bytes parse");
        assert_eq!(back, e, "event changed through its bytes");
        assert_eq!(back.to_bytes(), bytes);
        assert_canonical(&bytes);
        let _ = e.to_digest();
        round_trip_pointer(&e.pointer());
    }
    if let Ok(p) = serde_json::from_slice::<Pointer>(data) {
        round_trip_pointer(&p);
    }
}

fn round_trip_pointer(p: &Pointer) {
    let bytes = p.to_bytes();
    let back: Pointer = serde_json::from_slice(&bytes).expect("a pointer's bytes parse");
    assert_eq!(&back, p, "pointer changed through its bytes");
    assert_eq!(back.to_bytes(), bytes);
    assert_canonical(&bytes);
}

/// Sorted keys at every level and no insignificant whitespace: the bytes
/// are what a `serde_json::Value` (a sorted map) re-encodes them to.
fn assert_canonical(bytes: &[u8]) {
    let value: serde_json::Value = serde_json::from_slice(bytes).expect("canonical bytes are JSON");
    let again = serde_json::to_vec(&value).expect("a Value always serializes");
    assert!(
        again == bytes,
        "not canonical:\n{}\nvs\n{}",
        String::from_utf8_lossy(bytes),
        String::from_utf8_lossy(&again)
    );
}
