//! `verbatim export --format django`: staticfiles.json from a manifest.

use std::fs;

use crate::assets::site;

fn paths_of(doc: &serde_json::Value) -> serde_json::Map<String, serde_json::Value> {
    doc["paths"].as_object().unwrap().clone()
}

#[test]
fn django_staticfiles_from_the_build_and_from_the_store() {
    let p = site();
    let published = p.json(&["publish"]);
    let m: serde_json::Value =
        serde_json::from_slice(&fs::read(p.path().join(".verbatim/build/manifest.json")).unwrap())
            .unwrap();

    // From the build directory, to stdout.
    let doc: serde_json::Value =
        serde_json::from_str(&p.ok(&["export", "--format", "django"])).unwrap();
    assert_eq!(doc["version"], "1.1");
    let hash = doc["hash"].as_str().unwrap();
    assert_eq!(hash.len(), 12);
    let paths = paths_of(&doc);
    assert_eq!(paths.len(), m["assets"].as_object().unwrap().len());
    for (logical, name) in &paths {
        let key = m["assets"][logical]["key"].as_str().unwrap();
        assert_eq!(format!("assets/{}", name.as_str().unwrap()), key);
    }
    let site_css = paths["css/site.css"].as_str().unwrap();
    assert!(
        site_css.starts_with("css/site.") && site_css.ends_with(".css") && site_css.len() == 25,
        "{site_css}"
    );

    // From the store by id prefix, to a file; the same document.
    let id = published["manifest"].as_str().unwrap();
    let v = p.json(&[
        "export",
        "--format",
        "django",
        "--manifest",
        &id[7..19],
        "--out",
        "staticfiles.json",
    ]);
    assert_eq!(v["paths"], paths.len());
    assert_eq!(v["manifest"], id);
    let written: serde_json::Value =
        serde_json::from_slice(&fs::read(p.path().join("staticfiles.json")).unwrap()).unwrap();
    assert_eq!(written, doc, "stable: same manifest, same document");

    // An unknown manifest is an error that says so.
    let err = p.fails(
        &["export", "--format", "django", "--manifest", "0000000"],
        2,
    );
    assert!(err.contains("no manifest"), "{err}");
}
