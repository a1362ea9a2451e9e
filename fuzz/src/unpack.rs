//! The unpacker on hostile archives.

use std::fs;
use std::io::Write;
use std::path::{Component, Path, PathBuf};

use flate2::write::GzEncoder;
use flate2::Compression;

/// Unpacks `tar` (gzipped here, so the fuzzer works on tar bytes) into a
/// fresh directory `<root>/a/b/dest` beside an empty sentinel
/// `<root>/a/b/outside`. Whatever the result: no panic; nothing appears in
/// `<root>` but `dest` and its contents; `dest` holds only files,
/// directories and symlinks; every symlink stays inside `dest`, both
/// lexically and as the OS resolves it; the bytes written are at most the
/// bytes of the tar (an entry cannot claim more than it carries) and at most
/// the recorded unpacked size, and no more entries than recorded.
pub fn check(tar: &[u8]) {
    let mut gz = GzEncoder::new(Vec::new(), Compression::fast());
    gz.write_all(tar).expect("gzip to memory");
    let gz = gz.finish().expect("gzip to memory");

    let root = scratch();
    let b = root.path().join("a/b");
    let dest = b.join("dest");
    fs::create_dir_all(b.join("outside")).expect("sentinel dir");
    fs::create_dir(&dest).expect("dest dir");

    // Limits below what many inputs hold, so the refusals are fuzzed too.
    let limits = verbatim::unpack::Limits {
        entries: 64,
        bytes: tar.len() as u64 / 2,
    };
    let result = verbatim::unpack::unpack(gz.as_slice(), &dest, limits);
    if let Ok(entries) = &result {
        let n = entries.len();
        assert!(
            n as u64 <= limits.entries,
            "{n} entries unpacked past the limit"
        );
    }

    let mut outside = Vec::new();
    list(root.path(), &mut outside);
    outside.retain(|p| p == &dest || !p.starts_with(&dest));
    let expected = [
        root.path().join("a"),
        b.clone(),
        dest.clone(),
        b.join("outside"),
    ];
    outside.sort();
    assert!(
        outside == expected,
        "unpacking ({result:?}) created something outside the destination: {outside:?}"
    );

    let mut inside = Vec::new();
    list(&dest, &mut inside);
    let real_dest = fs::canonicalize(&dest).expect("dest exists");
    let mut written = 0u64;
    for p in &inside {
        let meta = fs::symlink_metadata(p).expect("listed path exists");
        let kind = meta.file_type();
        if kind.is_file() {
            written += meta.len();
        } else if kind.is_symlink() {
            let target = fs::read_link(p).expect("a symlink has a target");
            let rel = p.strip_prefix(&dest).expect("listed under dest");
            assert!(
                stays_inside(rel, &target),
                "symlink {rel:?} -> {target:?} leaves the destination ({result:?})"
            );
            if let Ok(real) = fs::canonicalize(p) {
                assert!(
                    real.starts_with(&real_dest),
                    "symlink {rel:?} -> {target:?} resolves to {real:?}, outside the destination ({result:?})"
                );
            }
        } else {
            assert!(kind.is_dir(), "{p:?} is not a file, directory or symlink");
        }
    }
    assert!(
        written <= tar.len() as u64,
        "wrote {written} bytes from a {}-byte tar ({result:?})",
        tar.len()
    );
    assert!(
        written <= limits.bytes,
        "wrote {written} bytes past the {}-byte limit ({result:?})",
        limits.bytes
    );
}

/// A temp dir, on tmpfs when there is one (this runs thousands of times a
/// second).
fn scratch() -> tempfile::TempDir {
    let shm = Path::new("/dev/shm");
    let builder = {
        let mut b = tempfile::Builder::new();
        b.prefix("verbatim-fuzz-unpack-");
        b
    };
    if shm.is_dir() {
        if let Ok(d) = builder.tempdir_in(shm) {
            return d;
        }
    }
    builder.tempdir().expect("a temp dir")
}

/// Every path under `dir`, without following symlinks.
fn list(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        out.push(p.clone());
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            list(&p, out);
        }
    }
}

/// Whether a symlink at `rel` (relative to the destination) pointing at
/// `target` stays inside the destination when resolved lexically.
fn stays_inside(rel: &Path, target: &Path) -> bool {
    let mut depth = rel.components().count().saturating_sub(1);
    for c in target.components() {
        match c {
            Component::Normal(_) => depth += 1,
            Component::CurDir => {}
            Component::ParentDir => match depth.checked_sub(1) {
                Some(d) => depth = d,
                None => return false,
            },
            Component::RootDir | Component::Prefix(_) => return false,
        }
    }
    true
}
