//! Asset fingerprinting through the real binary: `build` names and rewrites
//! the tree, `publish` stores it leaves-first before the artifact and the
//! manifest, `export --format django` writes staticfiles.json.

use std::collections::BTreeMap;
use std::fs;

use crate::util::Project;

const CONFIG: &str = "[app]\ndir = \"app\"\n[assets]\ndir = \"static\"\n";

/// A small site: html → css (@import, url() to an image and a font) and js
/// (static and dynamic import, source map).
pub fn site() -> Project {
    let p = Project::with_config(CONFIG);
    p.write("app/main.py", "print('app')\n");
    p.write(
        "static/index.html",
        "<!doctype html>\n<html><head>\n<link rel=\"stylesheet\" href=\"css/site.css\">\n\
         <script type=\"module\" src=\"js/app.js\"></script>\n</head>\n\
         <body><img src=\"img/logo.png\" alt=\"\"><p id=\"out\"></p></body></html>\n",
    );
    p.write(
        "static/css/site.css",
        "@import \"base.css\";\nbody { background: url(../img/logo.png); }\n",
    );
    p.write(
        "static/css/base.css",
        "@font-face { font-family: F; src: url(\"../fonts/f.woff2\") format(\"woff2\"); }\n",
    );
    p.write("static/img/logo.png", b"\x89PNG\r\n\x1a\nlogo");
    p.write("static/fonts/f.woff2", b"wOF2font");
    p.write(
        "static/js/app.js",
        "import { greet } from \"./util.js\";\n\
         const lazy = () => import(\"./lazy.js\");\n\
         greet();\nlazy();\n//# sourceMappingURL=app.js.map\n",
    );
    p.write(
        "static/js/util.js",
        "export function greet() { document.getElementById('out').textContent = 'ran'; }\n",
    );
    p.write(
        "static/js/lazy.js",
        "document.body.dataset.lazy = 'loaded';\n",
    );
    p.write(
        "static/js/app.js.map",
        "{\"version\":3,\"sources\":[],\"mappings\":\"\"}",
    );
    p.write("static/.DS_Store", "ignored dotfile");
    p
}

fn manifest(p: &Project) -> serde_json::Value {
    serde_json::from_slice(&fs::read(p.path().join(".verbatim/build/manifest.json")).unwrap())
        .unwrap()
}

fn keys(m: &serde_json::Value) -> BTreeMap<String, String> {
    m["assets"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v["key"].as_str().unwrap().to_owned()))
        .collect()
}

fn strings(v: &serde_json::Value) -> Vec<String> {
    v.as_array()
        .map_or(&[][..], Vec::as_slice)
        .iter()
        .map(|s| s.as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn build_fingerprints_rewrites_and_fills_the_manifest() {
    let p = site();
    let out = p.json(&["build"]);
    assert_eq!(out["assets"], 9, "{out}");
    let m = manifest(&p);
    crate::schema::validate(&m, "manifest with assets");
    let k = keys(&m);
    assert!(!k.contains_key(".DS_Store"), "dotfiles are skipped");
    for (logical, key) in &k {
        let (stem, ext) = logical.rsplit_once('.').unwrap();
        let re_ok = key.starts_with(&format!("assets/{stem}."))
            && key.ends_with(&format!(".{ext}"))
            && key.len() == "assets/".len() + logical.len() + 13;
        assert!(re_ok, "{logical} -> {key}");
        let a = &m["assets"][logical];
        let bytes = fs::read(p.path().join(".verbatim/build").join(key)).unwrap();
        assert_eq!(a["size"], bytes.len());
        assert_eq!(a["sha256"], sha256_hex(&bytes));
        assert_eq!(a["cache_control"], "public, max-age=31536000, immutable");
        assert!(a["integrity"].as_str().unwrap().starts_with("sha384-"));
    }
    assert_eq!(
        m["assets"]["css/site.css"]["content_type"],
        "text/css; charset=utf-8"
    );
    assert_eq!(m["assets"]["fonts/f.woff2"]["content_type"], "font/woff2");
    assert_eq!(
        strings(&m["assets"]["css/site.css"]["references"]),
        ["css/base.css", "img/logo.png"]
    );
    assert_eq!(
        strings(&m["assets"]["js/app.js"]["references"]),
        ["js/app.js.map", "js/lazy.js", "js/util.js"]
    );
    // References inside the stored bytes name the hashed files.
    let name = |l: &str| k[l].rsplit('/').next().unwrap().to_owned();
    let read = |l: &str| fs::read_to_string(p.path().join(".verbatim/build").join(&k[l])).unwrap();
    let css = read("css/site.css");
    assert!(
        css.contains(&format!("@import \"{}\"", name("css/base.css"))),
        "{css}"
    );
    assert!(
        css.contains(&format!("url(../img/{})", name("img/logo.png"))),
        "{css}"
    );
    let js = read("js/app.js");
    assert!(
        js.contains(&format!("from \"./{}\"", name("js/util.js"))),
        "{js}"
    );
    assert!(
        js.contains(&format!("import(\"./{}\")", name("js/lazy.js"))),
        "{js}"
    );
    assert!(
        js.contains(&format!("sourceMappingURL={}", name("js/app.js.map"))),
        "{js}"
    );
    let html = read("index.html");
    assert!(
        html.contains(&format!("href=\"css/{}\"", name("css/site.css"))),
        "{html}"
    );

    // Same tree, same manifest.
    let again = p.json(&["build"]);
    assert_eq!(again["manifest"], out["manifest"]);
}

#[test]
fn a_leaf_change_renames_its_transitive_referrers_and_nothing_else() {
    let p = site();
    p.ok(&["build"]);
    let before = keys(&manifest(&p));
    p.write("static/fonts/f.woff2", b"wOF2font, version 2");
    p.ok(&["build"]);
    let after = keys(&manifest(&p));
    let changed: Vec<&str> = before
        .keys()
        .filter(|l| before[*l] != after[*l])
        .map(String::as_str)
        .collect();
    assert_eq!(
        changed,
        [
            "css/base.css",
            "css/site.css",
            "fonts/f.woff2",
            "index.html"
        ]
    );
    // Stale files from the first build are gone from the build directory.
    let built = Project::files_under(&p.path().join(".verbatim/build/assets"));
    assert_eq!(built.len(), after.len(), "{built:?}");
}

#[test]
fn a_missing_reference_fails_with_its_position_and_writes_nothing() {
    let p = site();
    p.write(
        "static/css/site.css",
        "@import \"base.css\";\nbody {\n  background: url(../img/nope.png);\n}\n",
    );
    p.write("static/js/util.js", "import \"./gone.js\";\n");
    let err = p.fails(&["build"], 1);
    assert!(err.contains("2 problems"), "{err}");
    assert!(err.contains("css/site.css:3:19: "), "{err}");
    assert!(err.contains("(reference \"../img/nope.png\")"), "{err}");
    assert!(err.contains("js/util.js:1:9: "), "{err}");
    assert!(
        !p.path().join(".verbatim/build").exists(),
        "a failed build wrote {:?}",
        Project::files_under(&p.path().join(".verbatim"))
    );
    let err = p.fails(&["publish"], 1);
    assert!(err.contains("css/site.css:3:19"), "{err}");
    assert!(Project::files_under(&p.store()).is_empty());

    // allow_missing lets a deliberate miss through.
    p.write(
        "verbatim.toml",
        format!("{CONFIG}allow_missing = [\"**/nope.png\", \"./gone.js\"]\n"),
    );
    p.ok(&["build"]);
}

#[test]
fn publish_stores_assets_leaves_first_then_artifact_then_manifest() {
    let p = site();
    let v = p.json(&["publish"]);
    let written = strings(&v["written"]);
    let m = manifest(&p);
    let k = keys(&m);
    assert_eq!(written.len(), k.len() + 2, "{written:?}");
    assert!(
        written[k.len()].starts_with("artifacts/sha256/"),
        "{written:?}"
    );
    assert!(
        written[k.len() + 1].starts_with("manifests/sha256/"),
        "{written:?}"
    );
    let pos = |key: &str| written.iter().position(|w| w == key).unwrap();
    for (logical, a) in m["assets"].as_object().unwrap() {
        for r in strings(&a["references"]) {
            assert!(
                pos(&k[&r]) < pos(&k[logical]),
                "{r} after {logical}: {written:?}"
            );
        }
        let stored = fs::read(p.store().join(&k[logical])).unwrap();
        assert_eq!(a["sha256"], sha256_hex(&stored));
    }

    // Republishing writes nothing; so does --prebuilt.
    let again = p.json(&["publish"]);
    assert_eq!(again["manifest"], v["manifest"]);
    assert_eq!(again["written"], serde_json::json!([]));
    assert_eq!(strings(&again["unchanged"]).len(), written.len());
    let prebuilt = p.json(&["publish", "--prebuilt"]);
    assert_eq!(prebuilt["written"], serde_json::json!([]));
}

#[test]
fn prebuilt_publishes_assets_from_the_build_dir() {
    let p = site();
    let built = p.json(&["build"]);
    let k = keys(&manifest(&p));
    // Changing the source after the build does not matter to --prebuilt.
    p.write("static/js/lazy.js", "changed after build\n");
    let v = p.json(&["publish", "--prebuilt"]);
    assert_eq!(v["manifest"], built["manifest"]);
    for key in k.values() {
        assert!(p.store().join(key).is_file(), "{key} not stored");
    }

    // A tampered build file is refused (integrity, exit 5) before the manifest.
    let q = site();
    q.ok(&["build"]);
    let k = keys(&manifest(&q));
    fs::write(
        q.path().join(".verbatim/build").join(&k["img/logo.png"]),
        "evil",
    )
    .unwrap();
    let err = q.fails(&["publish", "--prebuilt"], 5);
    assert!(err.contains("img/logo.png"), "{err}");
    assert!(!Project::files_under(&q.store())
        .iter()
        .any(|f| f.starts_with("manifests/")));
}

#[test]
fn the_example_with_assets_is_a_real_build() {
    // manifests/examples/with-assets.json was written by this build; keep it true.
    let p = site();
    p.ok(&[
        "build",
        "--revision",
        "0123456789abcdef0123456789abcdef01234567",
    ]);
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("manifests/examples/with-assets.json");
    let m = manifest(&p);
    if std::env::var_os("VERBATIM_BLESS").is_some() {
        let mut text = serde_json::to_string_pretty(&m).unwrap();
        text.push('\n');
        fs::write(&path, text).unwrap();
    }
    let example: serde_json::Value = serde_json::from_slice(&fs::read(&path).unwrap())
        .unwrap_or_else(|e| panic!("{}: {e}; run with VERBATIM_BLESS=1", path.display()));
    assert_eq!(
        m["assets"],
        example["assets"],
        "{} is stale: rerun this test with VERBATIM_BLESS=1",
        path.display()
    );
}

fn sha256_hex(bytes: &[u8]) -> String {
    verbatim::digest::Digest::of(bytes).hex()
}
