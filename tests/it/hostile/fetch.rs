//! Hostile artifacts and manifests: a publisher with write access to the
//! store cannot make a host expand a bomb, nor make any command act on a
//! manifest entry that escapes its prefix or drives the terminal.

use std::io::Read;

use verbatim::manifest::Asset;

use crate::environments::store_release_with;
use crate::util::{bounded, Project};

/// A gzipped tar of `files` (name, size of zeros), compressed hard.
fn zeros_tar(files: &[(&str, u64)]) -> Vec<u8> {
    let mut b = tar::Builder::new(flate2::write::GzEncoder::new(
        Vec::new(),
        flate2::Compression::best(),
    ));
    for (name, size) in files {
        let mut h = tar::Header::new_gnu();
        h.set_path(name).unwrap();
        h.set_mode(0o644);
        h.set_size(*size);
        h.set_cksum();
        b.append(&h, std::io::repeat(0).take(*size)).unwrap();
    }
    b.into_inner().unwrap().finish().unwrap()
}

fn fetch_into(p: &Project, id: &str) -> (tempfile::TempDir, crate::util::Bounded) {
    let host = tempfile::tempdir().unwrap();
    let run = bounded(
        &mut p.cmd(&["fetch", id, "--into", host.path().to_str().unwrap()]),
        120,
    );
    (host, run)
}

#[test]
fn an_artifact_that_expands_past_its_recorded_size_is_refused() {
    let p = Project::new();
    // 256 MiB of zeros gzips to about 250 KiB; the manifest says 1 KiB.
    let tgz = zeros_tar(&[("small.txt", 10), ("bomb.bin", 256 << 20)]);
    assert!(tgz.len() < 1 << 20, "{}", tgz.len());
    let id = store_release_with(&p, &tgz, |m| {
        m.artifact.entries = 2;
        m.artifact.unpacked_size = 1024;
    });
    let (host, run) = fetch_into(&p, &id);
    let err = run.exits(5, 256);
    assert!(
        err.contains("bomb.bin") && err.contains("1024 bytes"),
        "{err}"
    );
    assert!(
        !host.path().join("releases").exists(),
        "left releases/ behind"
    );
    // And the honest size passes.
    let id = store_release_with(&p, &tgz, |m| {
        m.artifact.entries = 2;
        m.artifact.unpacked_size = (256 << 20) + 10;
    });
    let (_host, run) = fetch_into(&p, &id);
    run.exits(0, 256);
}

#[test]
fn an_artifact_with_more_entries_than_recorded_is_refused() {
    let p = Project::new();
    let names: Vec<String> = (0..100).map(|i| format!("f{i:03}")).collect();
    let files: Vec<(&str, u64)> = names.iter().map(|n| (n.as_str(), 0)).collect();
    let id = store_release_with(&p, &zeros_tar(&files), |m| {
        m.artifact.entries = 10;
        m.artifact.unpacked_size = 0;
    });
    let (host, run) = fetch_into(&p, &id);
    let err = run.exits(5, 256);
    assert!(err.contains("f010") && err.contains("10 entries"), "{err}");
    assert!(!host.path().join("releases").exists());
}

fn asset(key: &str) -> Asset {
    Asset {
        cache_control: "public".into(),
        content_type: "text/plain".into(),
        integrity: format!("sha384-{}", "A".repeat(64)),
        key: key.into(),
        references: vec![],
        sha256: "0".repeat(64),
        size: 1,
    }
}

/// Every command that reads a manifest refuses the same bad entries.
#[test]
fn every_command_refuses_a_manifest_entry_that_escapes() {
    type Edit = Box<dyn Fn(&mut verbatim::manifest::Manifest)>;
    let cases: Vec<(&str, Edit)> = vec![
        (
            "assets/../../../../etc/passwd",
            Box::new(|m| {
                m.assets
                    .insert("p.txt".into(), asset("assets/../../../../etc/passwd"));
            }),
        ),
        (
            "../../etc/x",
            Box::new(|m| {
                m.assets.insert("../../etc/x".into(), asset("assets/x"));
            }),
        ),
        (
            r"a\u{1b}[31mred",
            Box::new(|m| {
                m.assets.insert("a\x1b[31mred".into(), asset("assets/y"));
            }),
        ),
        (
            r"b\nforged",
            Box::new(|m| {
                m.assets.insert("b\nforged".into(), asset("assets/z"));
            }),
        ),
        (
            "content_type",
            Box::new(|m| {
                let mut a = asset("assets/ct");
                a.content_type = "text/html\r\nX-Injected: 1".into();
                m.assets.insert("ct.html".into(), a);
            }),
        ),
    ];
    for (culprit, edit) in cases {
        let p = Project::new();
        let id = store_release_with(&p, &zeros_tar(&[("a", 1)]), |m| edit(m));
        let out_json = p.path().join("staticfiles.json");
        for args in [
            vec!["verify", id.as_str()],
            vec!["fetch", id.as_str(), "--into", "host"],
            vec!["diff", id.as_str(), id.as_str()],
            vec![
                "export",
                "--format",
                "django",
                "--manifest",
                id.as_str(),
                "--out",
                "staticfiles.json",
            ],
            vec!["promote", id.as_str(), "--to", "dev"],
        ] {
            let err = bounded(&mut p.cmd(&args), 60).exits(5, 256);
            assert!(err.contains(culprit), "{args:?} {culprit}: {err}");
            assert!(!err.contains('\x1b') && !err.contains("\nforged"), "{err}");
        }
        assert!(!out_json.exists(), "export wrote {}", out_json.display());
        assert!(!p.path().join("host").exists());
        assert!(!p.store().join("envs").exists(), "a pointer moved");
    }
}

#[test]
fn a_huge_manifest_is_read_in_bounded_memory() {
    // ~50 MB of manifest: 150,000 assets.
    let p = Project::new();
    let id = store_release_with(&p, &zeros_tar(&[("a", 1)]), |m| {
        for i in 0..150_000 {
            let mut a = asset(&format!("assets/dir/file-{i:07}.0123456789ab.css"));
            a.references = vec![format!("dir/other-{i:07}.css")];
            m.assets.insert(format!("dir/file-{i:07}.css"), a);
        }
    });
    let size = std::fs::metadata(
        p.store()
            .join(format!("manifests/sha256/{}.json", &id["sha256:".len()..])),
    )
    .unwrap()
    .len();
    assert!(size > 45 << 20, "{size}");
    let run = bounded(
        &mut p.cmd(&[
            "export",
            "--format",
            "django",
            "--manifest",
            &id,
            "--out",
            "s.json",
        ]),
        120,
    );
    eprintln!(
        "export of a {} MiB manifest: peak RSS {} MiB",
        size >> 20,
        run.peak_rss_mib
    );
    // The parsed manifest costs about 2× its JSON; export adds its output.
    run.exits(0, 4 * (size >> 20));
}
