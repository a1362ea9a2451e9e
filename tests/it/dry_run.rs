//! `--dry-run` says what would happen and writes nothing: the store and a
//! host's root stay byte-identical.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use crate::util::Project;

/// Every path under `dir` with what it is: file bytes, link target, or dir.
fn snapshot(dir: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = fs::read_dir(&d) else { continue };
        for e in rd {
            let p = e.unwrap().path();
            let rel = p.strip_prefix(dir).unwrap().display().to_string();
            let meta = fs::symlink_metadata(&p).unwrap();
            let what = if meta.is_dir() {
                stack.push(p.clone());
                "dir".to_owned()
            } else if meta.file_type().is_symlink() {
                format!("-> {}", fs::read_link(&p).unwrap().display())
            } else {
                format!("{:?}", fs::read(&p).unwrap())
            };
            out.insert(rel, what);
        }
    }
    out
}

#[test]
fn dry_runs_write_nothing() {
    let p = Project::new();
    p.write("app/v", "1");
    let m1 = p.json(&["publish", "--env", "dev"])["manifest"]
        .as_str()
        .unwrap()
        .to_owned();
    p.write("app/v", "2");
    p.write("static/site.css", "body{}");
    let before = snapshot(&p.store());

    // publish: builds locally, says what the store lacks, uploads nothing.
    let plan = p.json(&["publish", "--dry-run", "--env", "dev"]);
    assert_eq!(plan["dry_run"], true, "{plan}");
    let m2 = plan["manifest"].as_str().unwrap().to_owned();
    let written: Vec<&str> = plan["written"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k.as_str().unwrap())
        .collect();
    assert!(
        written.iter().any(|k| k.starts_with("artifacts/")),
        "{plan}"
    );
    assert!(
        written.iter().any(|k| k.starts_with("manifests/")),
        "{plan}"
    );
    assert_eq!(snapshot(&p.store()), before, "publish --dry-run wrote");
    p.ok(&["publish"]);
    let before = snapshot(&p.store());

    // promote and rollback: every gate checked, nothing moved.
    let would = p.json(&["promote", &m2, "--to", "dev", "--dry-run"]);
    assert_eq!(would["result"], "would-move", "{would}");
    assert_eq!(would["seq"], 2, "{would}");
    p.fails(&["promote", &m2, "--to", "prod", "--dry-run"], 3);
    assert_eq!(snapshot(&p.store()), before, "promote --dry-run wrote");
    p.ok(&["promote", &m2, "--to", "dev"]);
    let before = snapshot(&p.store());
    let back = p.json(&["rollback", "dev", "--dry-run"]);
    assert_eq!(back["result"], "would-move", "{back}");
    assert_eq!(back["manifest"], m1.as_str(), "{back}");
    assert_eq!(snapshot(&p.store()), before, "rollback --dry-run wrote");

    // deploy: on a root that does not exist yet, and on one that does.
    let root = p.path().join("host");
    let d = p.json(&["deploy", "dev", "--dry-run", "--root", "host"]);
    assert_eq!(d["result"], "would-activate", "{d}");
    assert_eq!(d["fetched"], true, "{d}");
    assert!(!root.exists(), "deploy --dry-run created the root");
    p.ok(&["deploy", &m1, "--root", "host"]);
    let host = snapshot(&root);
    let d = p.json(&["deploy", "dev", "--dry-run", "--root", "host"]);
    assert_eq!(d["result"], "would-activate", "{d}");
    assert_eq!(d["previous"], m1.as_str(), "{d}");
    assert_eq!(snapshot(&root), host, "deploy --dry-run changed the root");
    assert_eq!(
        snapshot(&p.store()),
        before,
        "deploy --dry-run wrote to the store"
    );
}
