//! Asset fingerprinting through the real binary: `build` names and rewrites
//! the tree, `publish` stores it leaves-first before the artifact and the
//! manifest, `export --format django` writes staticfiles.json. Which files
//! keep their names: a real Vite build (tests/fixtures/vite), names from
//! real packages that look hashed, `assets.keep_names`.

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

/// The Vite build of tests/fixtures/vite/project (see its README), as a
/// project keeps it: `frontend/dist`, served under `/static/` (Vite's
/// `base`), with `assets.vite_manifest` pointing at its manifest.
pub fn vite_project() -> Project {
    let p = Project::with_config(VITE_CONFIG);
    p.write("app/main.py", "print('app')\n");
    copy_dir(&fixture("vite/dist"), &p.path().join("frontend/dist"));
    p
}

const VITE_CONFIG: &str = "[app]\ndir = \"app\"\n[assets]\ndir = \"frontend/dist\"\n\
                           vite_manifest = \"frontend/dist/.vite/manifest.json\"\n";

pub fn fixture(rel: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(rel)
}

/// Copies the tree at `from` to `to`, dotfiles included.
pub fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            fs::copy(entry.path(), target).unwrap();
        }
    }
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
        let bytes = p.built_asset(key);
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
    let read = |l: &str| String::from_utf8(p.built_asset(&k[l])).unwrap();
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
    // The build's pack holds this build's files, not the first build's.
    let built: Vec<String> = p.built_assets().into_keys().collect();
    let mut names: Vec<String> = after
        .values()
        .map(|k| k["assets/".len()..].to_owned())
        .collect();
    names.sort();
    assert_eq!(built, names);
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
fn the_pack_is_a_tar_gnu_tar_reads_whatever_the_names_and_sizes() {
    // Names of 100 bytes (a full name field) and 101 (a GNU long name) once
    // hashed (`.<12 hex>` more), sizes of 0, 512 (no padding) and 300 KiB
    // (more than one group of members written at once), and a long path.
    let p = site();
    let long = format!("{}/{}.css", "d".repeat(60), "n".repeat(80));
    let exact = format!("{}.css", "e".repeat(83));
    let over = format!("{}.css", "o".repeat(84));
    p.write(&format!("static/{long}"), "p { color: red }");
    p.write(&format!("static/{exact}"), "a {}");
    p.write(&format!("static/{over}"), "b {}");
    p.write("static/empty.txt", "");
    p.write("static/block.bin", [7u8; 512]);
    let big: Vec<u8> = (0..300u32 << 10)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    p.write("static/big.bin", &big);
    p.ok(&["publish"]);
    let keys = keys(&manifest(&p));
    assert_eq!(keys[&exact].len() - "assets/".len(), 100);
    assert_eq!(keys[&over].len() - "assets/".len(), 101);
    assert!(keys[&long].len() > 150, "{}", keys[&long]);

    let pack = p.path().join(".verbatim/build/assets.tar");
    let listed = std::process::Command::new("tar")
        .arg("-tf")
        .arg(&pack)
        .output()
        .unwrap();
    // Not even a warning (a missing end of archive, a lone zero block).
    assert!(
        listed.status.success() && listed.stderr.is_empty(),
        "{listed:?}"
    );
    let mut names: Vec<&str> = std::str::from_utf8(&listed.stdout)
        .unwrap()
        .lines()
        .collect();
    names.sort_unstable();
    let mut want: Vec<&str> = keys.values().map(|k| &k["assets/".len()..]).collect();
    want.sort_unstable();
    assert_eq!(names, want);

    let out = tempfile::tempdir().unwrap();
    let extracted = std::process::Command::new("tar")
        .arg("-xf")
        .arg(&pack)
        .arg("-C")
        .arg(out.path())
        .status()
        .unwrap();
    assert!(extracted.success());
    for key in keys.values() {
        let stored = fs::read(p.store().join(key)).unwrap();
        assert_eq!(
            fs::read(out.path().join(&key["assets/".len()..])).unwrap(),
            stored,
            "{key}"
        );
    }
    assert_eq!(fs::read(p.store().join(&keys["big.bin"])).unwrap(), big);
    assert_eq!(p.built_asset(&keys[&long]), b"p { color: red }");
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
    let pack = q.path().join(".verbatim/build/assets.tar");
    let logo = &k["img/logo.png"]["assets/".len()..];
    let offset = tar::Archive::new(fs::File::open(&pack).unwrap())
        .entries()
        .unwrap()
        .map(Result::unwrap)
        .find(|e| e.path().unwrap().to_str() == Some(logo))
        .map(|e| e.raw_file_position())
        .unwrap();
    let mut bytes = fs::read(&pack).unwrap();
    bytes[offset as usize] ^= 0xff;
    fs::write(&pack, bytes).unwrap();
    let err = q.fails(&["publish", "--prebuilt"], 5);
    assert!(err.contains("img/logo.png"), "{err}");
    assert!(!Project::files_under(&q.store())
        .iter()
        .any(|f| f.starts_with("manifests/")));

    // A missing pack is named, with what to do.
    fs::remove_file(&pack).unwrap();
    let err = q.fails(&["publish", "--prebuilt"], 1);
    assert!(
        err.contains("assets.tar") && err.contains("verbatim build"),
        "{err}"
    );
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

#[test]
fn a_vite_build_keeps_every_name_and_is_still_scanned() {
    let p = vite_project();
    let out = p.json(&["build"]);
    let m = manifest(&p);
    crate::schema::validate(&m, "manifest of a Vite build");
    let dist = p.path().join("frontend/dist");
    let k = keys(&m);
    assert_eq!(
        k.keys().map(String::as_str).collect::<Vec<_>>(),
        [
            "assets/index-9GimqxIf.js",
            "assets/index-9GimqxIf.js.map",
            "assets/index-gGNJdlJx.css",
            "assets/javascript-DWV2vKwc.svg",
            "assets/lazy-B2qQgaqo.js",
            "assets/lazy-B2qQgaqo.js.map",
            "icons.svg",
            "index.html",
            "logo.svg",
            "vite.svg",
        ],
        "the manifest's own .vite/ is not an asset"
    );
    // Vite's hashed files, its copies of public/, their source maps and
    // index.html keep their names and, naming only each other, their bytes.
    for (logical, key) in &k {
        assert_eq!(key, &format!("assets/{logical}"));
        let built = p.built_asset(key);
        assert_eq!(built, fs::read(dist.join(logical)).unwrap(), "{logical}");
        assert_eq!(m["assets"][logical]["sha256"], sha256_hex(&built));
    }
    // Kept files are scanned: the stylesheet's plain /static/logo.svg, the
    // dynamic import of the lazy chunk (a template literal), the maps.
    assert_eq!(
        strings(&m["assets"]["assets/index-gGNJdlJx.css"]["references"]),
        ["logo.svg"]
    );
    assert_eq!(
        strings(&m["assets"]["assets/index-9GimqxIf.js"]["references"]),
        ["assets/index-9GimqxIf.js.map", "assets/lazy-B2qQgaqo.js"]
    );
    assert_eq!(
        strings(&m["assets"]["index.html"]["references"]),
        [
            "assets/index-9GimqxIf.js",
            "assets/index-gGNJdlJx.css",
            "vite.svg"
        ]
    );
    assert_eq!(
        p.json(&["build"])["manifest"],
        out["manifest"],
        "reproducible"
    );

    // And checked: a missing file is an error, even in a kept file.
    fs::remove_file(dist.join("logo.svg")).unwrap();
    let err = p.fails(&["build"], 1);
    assert!(
        err.contains("assets/index-gGNJdlJx.css:1:21: referenced file \"logo.svg\" does not exist"),
        "{err}"
    );
    // A manifest that names files the directory does not hold is not its own.
    fs::remove_file(dist.join("assets/lazy-B2qQgaqo.js")).unwrap();
    let err = p.fails(&["build"], 1);
    assert!(
        err.contains("names 1 file") && err.contains("assets/lazy-B2qQgaqo.js"),
        "{err}"
    );
}

#[test]
fn names_that_look_hashed_are_fingerprinted_unless_kept() {
    // Font Awesome's v4-font-face.css and its fa-v4compatibility font, a
    // stylesheet named like theme-v2compact.css: before, taken for bundler
    // hashes, published unhashed and, for the stylesheet, never scanned.
    let p = Project::with_config(CONFIG);
    p.write("app/main.py", "print('app')\n");
    p.write(
        "static/fontawesome/css/v4-font-face.css",
        "@font-face {\n  font-family: \"FontAwesome\";\n  font-display: block;\n  \
         src: url(\"../webfonts/fa-v4compatibility.woff2\") format(\"woff2\");\n}\n",
    );
    p.write(
        "static/fontawesome/webfonts/fa-v4compatibility.woff2",
        b"wOF2v4",
    );
    p.write(
        "static/css/theme-v2compact.css",
        "body { background: url(../img/bg.png); }\n",
    );
    p.write("static/img/bg.png", b"\x89PNG bg");
    // pdf.js, kept by a glob: its worker and the worker's source map.
    p.write(
        "static/pdfjs/pdf.worker.min.mjs",
        "self.onmessage=()=>{};\n//# sourceMappingURL=pdf.worker.min.mjs.map\n",
    );
    p.write("static/pdfjs/pdf.worker.min.mjs.map", "{}");
    p.ok(&["build"]);
    let m = manifest(&p);
    let k = keys(&m);
    for logical in [
        "fontawesome/css/v4-font-face.css",
        "fontawesome/webfonts/fa-v4compatibility.woff2",
        "css/theme-v2compact.css",
        "img/bg.png",
        "pdfjs/pdf.worker.min.mjs",
    ] {
        let (stem, ext) = logical.rsplit_once('.').unwrap();
        let key = &k[logical];
        assert!(
            key.starts_with(&format!("assets/{stem}."))
                && key.ends_with(&format!(".{ext}"))
                && key.len() == "assets/".len() + logical.len() + 13,
            "{logical} -> {key}"
        );
    }
    let name = |l: &str| k[l].rsplit('/').next().unwrap().to_owned();
    let read = |key: &str| String::from_utf8(p.built_asset(key)).unwrap();
    assert!(read(&k["css/theme-v2compact.css"])
        .contains(&format!("url(../img/{})", name("img/bg.png"))));
    assert!(
        read(&k["fontawesome/css/v4-font-face.css"]).contains(&format!(
            "url(\"../webfonts/{}\")",
            name("fontawesome/webfonts/fa-v4compatibility.woff2")
        ))
    );

    // keep_names: pdf.js's files (and so the worker's map) and Font
    // Awesome's stylesheet keep their names; the stylesheet still names
    // the font's new name, so its stored bytes are not the tree's, and the
    // manifest records the bytes stored.
    p.write(
        "verbatim.toml",
        format!("{CONFIG}keep_names = [\"pdfjs/*.mjs\", \"fontawesome/css/**\"]\n"),
    );
    p.ok(&["build"]);
    let m = manifest(&p);
    let k = keys(&m);
    for logical in [
        "pdfjs/pdf.worker.min.mjs",
        "pdfjs/pdf.worker.min.mjs.map",
        "fontawesome/css/v4-font-face.css",
    ] {
        assert_eq!(k[logical], format!("assets/{logical}"));
    }
    assert_ne!(
        k["fontawesome/webfonts/fa-v4compatibility.woff2"],
        "assets/fontawesome/webfonts/fa-v4compatibility.woff2"
    );
    let css = read(&k["fontawesome/css/v4-font-face.css"]);
    assert!(
        css.contains(&format!(
            "url(\"../webfonts/{}\")",
            name("fontawesome/webfonts/fa-v4compatibility.woff2")
        )),
        "{css}"
    );
    assert_eq!(
        m["assets"]["fontawesome/css/v4-font-face.css"]["sha256"],
        sha256_hex(css.as_bytes())
    );
    assert_eq!(
        read(&k["pdfjs/pdf.worker.min.mjs"]),
        fs::read_to_string(p.path().join("static/pdfjs/pdf.worker.min.mjs")).unwrap()
    );

    // A bad glob is a configuration error naming the key.
    p.write("verbatim.toml", format!("{CONFIG}keep_names = [\"a/[\"]\n"));
    let err = p.fails(&["build"], 2);
    assert!(err.contains("assets.keep_names"), "{err}");
}

fn sha256_hex(bytes: &[u8]) -> String {
    verbatim::digest::Digest::of(bytes).hex()
}

#[test]
fn assets_exclude_leaves_sources_unpublished() {
    let p = Project::with_config(
        "[app]\ndir = \"app\"\n[assets]\ndir = \"static\"\nexclude = [\"**/*.scss\", \"src\"]\n",
    );
    p.write("app/x", "x");
    p.write("static/css/site.css", "body{background:url(../img/a.png)}");
    p.write("static/css/site.scss", "$c: red;");
    p.write("static/img/a.png", "png");
    p.write("static/src/main.ts", "export {}");
    p.ok(&["build"]);
    let manifest: serde_json::Value = serde_json::from_slice(
        &std::fs::read(p.path().join(".verbatim/build/manifest.json")).unwrap(),
    )
    .unwrap();
    let paths: Vec<&String> = manifest["assets"].as_object().unwrap().keys().collect();
    assert_eq!(paths, ["css/site.css", "img/a.png"], "{manifest}");
    // An excluded file is not there to be referenced.
    p.write("static/css/site.css", "@import \"site.scss\";");
    let err = p.fails(&["build"], 1);
    assert!(err.contains("site.scss"), "{err}");
    p.write(
        "verbatim.toml",
        "[app]\ndir = \"app\"\n[assets]\ndir = \"static\"\nexclude = [\"a[\"]\n",
    );
    let err = p.fails(&["build"], 2);
    assert!(err.contains("assets.exclude"), "{err}");
}

/// The stored text of `logical` in the last build, and every final name.
fn built(p: &Project, logical: &str) -> (String, BTreeMap<String, String>) {
    let k = keys(&manifest(p));
    let text = String::from_utf8(p.built_asset(&k[logical])).unwrap();
    (text, k)
}

/// The file name (last segment) of `logical`'s key.
fn name_of(k: &BTreeMap<String, String>, logical: &str) -> String {
    k[logical].rsplit('/').next().unwrap().to_owned()
}

#[test]
fn svg_references_and_object_data_are_rewritten() {
    let p = Project::with_config(CONFIG);
    p.write("app/main.py", "print('app')\n");
    p.write(
        "static/index.html",
        "<object data=\"img/doc.svg\" type=\"image/svg+xml\"></object>\n\
         <svg><use xlink:href=\"img/sprite.svg#star\"/></svg>\n",
    );
    p.write(
        "static/img/doc.svg",
        "<svg xmlns=\"http://www.w3.org/2000/svg\" xmlns:xlink=\"http://www.w3.org/1999/xlink\">\n\
         <defs><g id=\"dot\"/></defs><use href=\"#dot\"/>\n\
         <use href=\"sprite.svg#star\"/><image xlink:href=\"logo.png\" width=\"1\"/>\n\
         <style>g { fill: url(#grad) } rect { background: url(bg.png) }</style></svg>\n",
    );
    p.write(
        "static/img/sprite.svg",
        "<svg xmlns=\"http://www.w3.org/2000/svg\"><symbol id=\"star\"/></svg>\n",
    );
    p.write("static/img/logo.png", b"\x89PNG logo");
    p.write("static/img/bg.png", b"\x89PNG bg");
    p.ok(&["build"]);
    let (svg, k) = built(&p, "img/doc.svg");
    assert!(svg.contains("<use href=\"#dot\"/>"), "{svg}");
    assert!(svg.contains("url(#grad)"), "{svg}");
    for (written, logical) in [
        ("href=\"{}#star\"", "img/sprite.svg"),
        ("xlink:href=\"{}\"", "img/logo.png"),
        ("url({})", "img/bg.png"),
    ] {
        let want = written.replace("{}", &name_of(&k, logical));
        assert!(svg.contains(&want), "{want} in {svg}");
    }
    let (html, _) = built(&p, "index.html");
    for want in [
        format!("data=\"img/{}\"", name_of(&k, "img/doc.svg")),
        format!("xlink:href=\"img/{}#star\"", name_of(&k, "img/sprite.svg")),
    ] {
        assert!(html.contains(&want), "{want} in {html}");
    }

    // An SVG naming a file that is not there fails the build at its place.
    p.write(
        "static/img/sprite.svg",
        "<svg>\n  <image href=\"gone.png\"/></svg>\n",
    );
    let err = p.fails(&["build"], 1);
    assert!(err.contains("img/sprite.svg:2:16: "), "{err}");
}

#[test]
fn workers_are_rewritten_and_a_renamed_service_worker_is_refused() {
    let p = Project::with_config(CONFIG);
    p.write("app/main.py", "print('app')\n");
    p.write(
        "static/js/app.js",
        "const w = new Worker(\"/static/js/worker.js\", { type: \"module\" });\n\
         new SharedWorker('/static/js/shared.js');\n",
    );
    p.write("static/js/worker.js", "postMessage('hi');\n");
    p.write("static/js/shared.js", "onconnect = () => {};\n");
    p.write(
        "static/index.html",
        "<script type=\"module\">new Worker('js/worker.js')</script>\n",
    );
    p.ok(&["build"]);
    let (js, k) = built(&p, "js/app.js");
    for logical in ["js/worker.js", "js/shared.js"] {
        let want = format!("/static/js/{}", name_of(&k, logical));
        assert!(js.contains(&want), "{want} in {js}");
    }
    let (html, _) = built(&p, "index.html");
    let want = format!("new Worker('js/{}')", name_of(&k, "js/worker.js"));
    assert!(html.contains(&want), "{want} in {html}");

    // A service worker must keep its URL; a relative worker URL in a
    // script file depends on the page, so it is not guessed at.
    p.write(
        "static/js/app.js",
        "navigator.serviceWorker.register('/static/js/worker.js');\nnew Worker('shared.js');\n",
    );
    let err = p.fails(&["build"], 1);
    assert!(
        err.contains("js/app.js:1:35: a service worker's URL"),
        "{err}"
    );
    assert!(err.contains("js/app.js:2:13: a worker's URL"), "{err}");
    p.write(
        "verbatim.toml",
        format!("{CONFIG}keep_names = [\"js/worker.js\"]\n"),
    );
    p.write(
        "static/js/app.js",
        "navigator.serviceWorker.register('/static/js/worker.js');\n",
    );
    p.ok(&["build"]);
    let (js, k) = built(&p, "js/app.js");
    assert_eq!(k["js/worker.js"], "assets/js/worker.js");
    assert!(js.contains("register('/static/js/worker.js')"), "{js}");
}

#[test]
fn inline_scripts_are_rewritten_at_their_place_in_the_page() {
    let p = Project::with_config(CONFIG);
    p.write("app/main.py", "print('app')\n");
    p.write(
        "static/index.html",
        "<!doctype html>\n<script type=\"module\">\n  import { a } from './js/a.js';\n</script>\n\
         <script>\n  window.onload = () => import(\"./js/lazy.js\");\n</script>\n",
    );
    p.write("static/js/a.js", "export const a = 1;\n");
    p.write("static/js/lazy.js", "document.title = 'lazy';\n");
    p.ok(&["build"]);
    let (html, k) = built(&p, "index.html");
    for want in [
        format!("from './js/{}'", name_of(&k, "js/a.js")),
        format!("import(\"./js/{}\")", name_of(&k, "js/lazy.js")),
    ] {
        assert!(html.contains(&want), "{want} in {html}");
    }

    // A missing file is reported at its line and column in the page.
    p.write(
        "static/index.html",
        "<p>\n<script>\n  f(); import('./js/gone.js');\n</script>\n",
    );
    let err = p.fails(&["build"], 1);
    assert!(err.contains("index.html:3:16: "), "{err}");
    assert!(err.contains("\"js/gone.js\" does not exist"), "{err}");
}

#[test]
fn style_attributes_with_character_references_are_rewritten() {
    let p = Project::with_config(CONFIG);
    p.write("app/main.py", "print('app')\n");
    p.write(
        "static/index.html",
        "<div style=\"background: url(&quot;img/bg.png&quot;)\"></div>\n\
         <p style=background:url(img/a&amp;b.png)></p>\n",
    );
    p.write("static/img/bg.png", b"\x89PNG bg");
    p.write("static/img/a&b.png", b"\x89PNG ab");
    p.ok(&["build"]);
    let (html, k) = built(&p, "index.html");
    for want in [
        format!("url(&quot;img/{}&quot;)", name_of(&k, "img/bg.png")),
        format!(
            "url(img/{})",
            name_of(&k, "img/a&b.png").replace('&', "&amp;")
        ),
    ] {
        assert!(html.contains(&want), "{want} in {html}");
    }
    p.write(
        "static/index.html",
        "<p>\n<i style='a: url(&#34;img/gone.png&#34;)'></i>\n",
    );
    let err = p.fails(&["build"], 1);
    assert!(err.contains("index.html:2:23: "), "{err}");
}

#[test]
fn web_app_manifest_images_are_rewritten() {
    let p = Project::with_config(CONFIG);
    p.write("app/main.py", "print('app')\n");
    p.write(
        "static/index.html",
        "<link rel=\"manifest\" href=\"app/manifest.json\">\n",
    );
    let manifest = "{\n  \"name\": \"App\",\n  \"start_url\": \"/\",\n  \
                    \"icons\": [{ \"src\": \"icons/192.png\", \"sizes\": \"192x192\" }],\n  \
                    \"screenshots\": [{ \"src\": \"/static/shot.png\" }]\n}\n";
    p.write("static/app/manifest.json", manifest);
    p.write(
        "static/site.webmanifest",
        manifest.replace("icons/", "app/icons/"),
    );
    p.write("static/app/icons/192.png", b"\x89PNG 192");
    p.write("static/shot.png", b"\x89PNG shot");
    // Not linked as a manifest, so its `icons` are not references.
    p.write(
        "static/data.json",
        "{\"icons\": [{\"src\": \"nothing.png\"}]}",
    );
    p.ok(&["build"]);
    let (linked, k) = built(&p, "app/manifest.json");
    let (named, _) = built(&p, "site.webmanifest");
    let icon = name_of(&k, "app/icons/192.png");
    let shot = name_of(&k, "shot.png");
    for (text, want) in [
        (&linked, format!("\"src\": \"icons/{icon}\"")),
        (&linked, format!("\"src\": \"/static/{shot}\"")),
        (&named, format!("\"src\": \"app/icons/{icon}\"")),
        (&named, format!("\"src\": \"/static/{shot}\"")),
    ] {
        assert!(text.contains(&want), "{want} in {text}");
    }
    let (html, _) = built(&p, "index.html");
    let want = format!("href=\"app/{}\"", name_of(&k, "app/manifest.json"));
    assert!(html.contains(&want), "{want} in {html}");

    p.write(
        "static/site.webmanifest",
        "{\"icons\": [\n  {\"src\": \"gone.png\"}]}",
    );
    let err = p.fails(&["build"], 1);
    assert!(err.contains("site.webmanifest:2:12: "), "{err}");
}

#[test]
fn source_map_sources_in_the_tree_are_rewritten() {
    let p = Project::with_config(CONFIG);
    p.write("app/main.py", "print('app')\n");
    p.write(
        "static/js/app.min.js",
        "f();\n//# sourceMappingURL=app.min.js.map\n",
    );
    p.write(
        "static/js/app.min.js.map",
        "{\"version\":3,\"file\":\"app.min.js\",\n\"sources\":[\"src/app.js\",\"../../../node_modules/x/y.js\"],\"mappings\":\"AAAA\"}",
    );
    p.write("static/js/src/app.js", "function f() {}\n");
    p.ok(&["build"]);
    let (map, k) = built(&p, "js/app.min.js.map");
    let want = format!(
        "\"sources\":[\"src/{}\",\"../../../node_modules/x/y.js\"]",
        name_of(&k, "js/src/app.js")
    );
    assert!(map.contains(&want), "{want} in {map}");
    let (js, _) = built(&p, "js/app.min.js");
    assert!(
        js.contains(&format!(
            "sourceMappingURL={}",
            name_of(&k, "js/app.min.js.map")
        )),
        "{js}"
    );

    // Below a `sourceRoot` (a directory, with or without the final `/`);
    // one outside the tree (another scheme, outside the public prefix
    // `/static/`, or above the site) leaves its sources as they are.
    let roots = [
        ("src", "app.js", true),
        ("./src/", "app.js", true),
        ("/static/js/src", "app.js", true),
        ("/src", "js/src/app.js", false),
        ("webpack:///", "./js/src/app.js", false),
        ("../../../..", "js/src/app.js", false),
    ];
    for (i, (root, source, _)) in roots.iter().enumerate() {
        p.write(
            &format!("static/js/m{i}.js.map"),
            format!("{{\"version\":3,\"sourceRoot\":\"{root}\",\"sources\":[\"{source}\"],\"mappings\":\"\"}}"),
        );
    }
    p.ok(&["build"]);
    let k = keys(&manifest(&p));
    let app = name_of(&k, "js/src/app.js");
    for (i, (root, source, below)) in roots.iter().enumerate() {
        let (map, _) = built(&p, &format!("js/m{i}.js.map"));
        let want = if *below {
            source.replace("app.js", &app)
        } else {
            source.to_string()
        };
        assert!(
            map.contains(&format!("\"sources\":[\"{want}\"]")),
            "sourceRoot {root:?}: {want} in {map}"
        );
    }
}

const PDFJS_CONFIG: &str = "[app]\ndir = \"app\"\n[assets]\ndir = \"static\"\n\
     hash_dirs = [\"vendor/pdfjs/cmaps\", \"vendor/pdfjs/standard_fonts/\"]\n";

/// A PDF.js layout: the viewer builds cmap and font URLs from directory
/// URLs at run time; a stylesheet and a script also name files inside.
fn pdfjs_project() -> Project {
    let p = Project::with_config(PDFJS_CONFIG);
    p.write("app/main.py", "print('app')\n");
    p.write(
        "static/vendor/pdfjs/cmaps/UniJIS-UCS2-H.bcmap",
        b"\xe0cmap-1",
    );
    p.write(
        "static/vendor/pdfjs/cmaps/Adobe-Japan1-0.bcmap",
        b"\xe0cmap-2",
    );
    p.write("static/vendor/pdfjs/cmaps/LICENSE", "Apache-2.0\n");
    p.write(
        "static/vendor/pdfjs/standard_fonts/FoxitSans.pfb",
        b"\x80\x01pfb",
    );
    p.write(
        "static/vendor/pdfjs/standard_fonts/FoxitSerif.pfb",
        b"\x80\x01pfb2",
    );
    p.write(
        "static/css/viewer.css",
        "@font-face { font-family: Foxit; src: url(\"../vendor/pdfjs/standard_fonts/FoxitSans.pfb\"); }\n",
    );
    p.write(
        "static/js/viewer.js",
        "const cmap = new URL(\"../vendor/pdfjs/cmaps/UniJIS-UCS2-H.bcmap\", import.meta.url);\n",
    );
    p
}

#[test]
fn hash_dirs_publish_a_directory_whole_under_the_hash_of_its_tree() {
    let p = pdfjs_project();
    p.ok(&["build"]);
    let m = manifest(&p);
    crate::schema::validate(&m, "manifest with hashed directories");
    let k = keys(&m);
    let dir_of = |logical: &str| {
        let key = &k[logical];
        key[..key.rfind('/').unwrap()].to_owned()
    };
    let cmaps = dir_of("vendor/pdfjs/cmaps/LICENSE");
    let fonts = dir_of("vendor/pdfjs/standard_fonts/FoxitSans.pfb");
    for (dir, prefix) in [
        (&cmaps, "assets/vendor/pdfjs/cmaps."),
        (&fonts, "assets/vendor/pdfjs/standard_fonts."),
    ] {
        let hash = dir.strip_prefix(prefix).unwrap_or_else(|| panic!("{dir}"));
        assert_eq!(hash.len(), 12, "{dir}");
        assert!(hash.bytes().all(|b| b.is_ascii_hexdigit()), "{dir}");
    }
    // Every file keeps its name inside its hashed directory.
    for name in ["UniJIS-UCS2-H.bcmap", "Adobe-Japan1-0.bcmap", "LICENSE"] {
        assert_eq!(
            k[&format!("vendor/pdfjs/cmaps/{name}")],
            format!("{cmaps}/{name}")
        );
    }
    for name in ["FoxitSans.pfb", "FoxitSerif.pfb"] {
        assert_eq!(
            k[&format!("vendor/pdfjs/standard_fonts/{name}")],
            format!("{fonts}/{name}")
        );
    }
    let packed = p.built_assets();
    for key in k.values() {
        assert!(packed.contains_key(&key["assets/".len()..]), "{key}");
    }
    // References into them are rewritten.
    let rel = |dir: &str| dir.strip_prefix("assets/").unwrap().to_owned();
    let (css, _) = built(&p, "css/viewer.css");
    assert!(
        css.contains(&format!("url(\"../{}/FoxitSans.pfb\")", rel(&fonts))),
        "{css}"
    );
    let (js, _) = built(&p, "js/viewer.js");
    assert!(
        js.contains(&format!(
            "new URL(\"../{}/UniJIS-UCS2-H.bcmap\"",
            rel(&cmaps)
        )),
        "{js}"
    );
    // Django's staticfiles.json also maps each directory's own URL.
    let exported: serde_json::Value =
        serde_json::from_str(&p.ok(&["export", "--format", "django"])).unwrap();
    assert_eq!(
        exported["paths"]["vendor/pdfjs/cmaps/"],
        format!("{}/", rel(&cmaps))
    );
    assert_eq!(
        exported["paths"]["vendor/pdfjs/standard_fonts/"],
        format!("{}/", rel(&fonts))
    );

    // A change in one file renames its directory (and the script naming
    // a file in it, and the module that tells page code each directory's
    // name), and nothing else.
    p.write("static/vendor/pdfjs/cmaps/LICENSE", "Apache-2.0, changed\n");
    p.ok(&["build"]);
    let after = keys(&manifest(&p));
    let changed: Vec<&str> = k
        .keys()
        .filter(|l| k[*l] != after[*l])
        .map(String::as_str)
        .collect();
    assert_eq!(
        changed,
        [
            "js/viewer.js",
            "vendor/pdfjs/cmaps/Adobe-Japan1-0.bcmap",
            "vendor/pdfjs/cmaps/LICENSE",
            "vendor/pdfjs/cmaps/UniJIS-UCS2-H.bcmap",
            "verbatim-dirs.js",
        ]
    );
    let (dirs, _) = built(&p, "verbatim-dirs.js");
    let cmaps = keys(&manifest(&p))["vendor/pdfjs/cmaps/LICENSE"].clone();
    let cmaps = cmaps.strip_prefix("assets/").unwrap();
    let cmaps = &cmaps[..cmaps.rfind('/').unwrap()];
    assert!(
        dirs.contains(&format!("\"vendor/pdfjs/cmaps\": at(new URL(\"./{cmaps}/")),
        "{dirs}"
    );
}

#[test]
fn a_changed_file_in_a_hashed_dir_is_published_under_new_keys_only() {
    let p = pdfjs_project();
    let first = p.json(&["publish"]);
    let k = keys(&manifest(&p));
    let stored: BTreeMap<String, Vec<u8>> = Project::files_under(&p.store())
        .into_iter()
        .map(|f| {
            let bytes = fs::read(p.store().join(&f)).unwrap();
            (f, bytes)
        })
        .collect();
    assert!(strings(&first["written"]).contains(&k["vendor/pdfjs/cmaps/LICENSE"]));
    // Unchanged: nothing written.
    let again = p.json(&["publish"]);
    assert_eq!(again["written"], serde_json::json!([]));

    p.write(
        "static/vendor/pdfjs/cmaps/Adobe-Japan1-0.bcmap",
        b"\xe0cmap-2, v2",
    );
    let second = p.json(&["publish"]);
    let after = keys(&manifest(&p));
    let written = strings(&second["written"]);
    for name in ["UniJIS-UCS2-H.bcmap", "Adobe-Japan1-0.bcmap", "LICENSE"] {
        let logical = format!("vendor/pdfjs/cmaps/{name}");
        assert_ne!(after[&logical], k[&logical], "{logical}: a new directory");
        assert!(written.contains(&after[&logical]), "{written:?}");
    }
    // Nothing stored before is written again, or changed.
    for key in &written {
        assert!(!stored.contains_key(key), "{key} overwritten");
    }
    for (key, bytes) in &stored {
        assert_eq!(&fs::read(p.store().join(key)).unwrap(), bytes, "{key}");
    }
    // The untouched directory is stored already.
    let font = &after["vendor/pdfjs/standard_fonts/FoxitSans.pfb"];
    assert_eq!(font, &k["vendor/pdfjs/standard_fonts/FoxitSans.pfb"]);
    assert!(strings(&second["unchanged"]).contains(font));
}

#[test]
fn bad_hash_dirs_are_configuration_errors() {
    let p = pdfjs_project();
    let base = "[app]\ndir = \"app\"\n[assets]\ndir = \"static\"\n";
    for (dirs, why) in [
        ("[\"vendor/pdfjs\", \"vendor/pdfjs/cmaps\"]", "overlaps"),
        (
            "[\"vendor/pdfjs/cmaps\", \"vendor/pdfjs/cmaps/\"]",
            "overlaps",
        ),
        ("[\"vendor/nope\"]", "not a directory"),
        ("[\"css/viewer.css\"]", "not a directory"),
        ("[\"/vendor/pdfjs/cmaps\"]", "relative"),
        ("[\"vendor/../vendor/pdfjs/cmaps\"]", "relative"),
        ("[\"\"]", "relative"),
    ] {
        p.write("verbatim.toml", format!("{base}hash_dirs = {dirs}\n"));
        let err = p.fails(&["build"], 2);
        assert!(
            err.contains("assets.hash_dirs") && err.contains(why),
            "{dirs}: {err}"
        );
    }
    // A reference through a hashed directory back into it.
    p.write("verbatim.toml", PDFJS_CONFIG);
    p.write(
        "static/vendor/pdfjs/cmaps/x.css",
        "a { b: url(../../../css/viewer.css); }\n",
    );
    p.write(
        "static/css/viewer.css",
        "a { b: url(../vendor/pdfjs/cmaps/x.css); }\n",
    );
    let err = p.fails(&["build"], 1);
    assert!(
        err.contains("reference cycle through the hashed directory"),
        "{err}"
    );
}

/// three.js as its manual loads it: `three` and the `three/addons/`
/// prefix in an import map, a module importing an addon through it.
pub fn three_project() -> Project {
    let p = Project::with_config(CONFIG);
    p.write("app/main.py", "print('app')\n");
    p.write(
        "static/index.html",
        "<!doctype html>\n<html><head>\n<script type=\"importmap\">\n\
         {\n  \"imports\": {\n    \"three\": \"./vendor/three/build/three.module.js\",\n\
         \x20   \"three/addons/\": \"./vendor/three/examples/jsm/\",\n\
         \x20   \"lil-gui/\": \"https://cdn.jsdelivr.net/npm/lil-gui@0.19/\"\n  },\n\
         \x20 \"integrity\": {\n    \"./vendor/three/build/three.module.js\": \"INTEGRITY\"\n  }\n}\n\
         </script>\n<script type=\"module\" src=\"js/main.js\"></script>\n</head>\n\
         <body><p id=\"out\"></p></body></html>\n",
    );
    p.write(
        "static/js/main.js",
        "import { REVISION } from 'three';\n\
         import { orbit } from 'three/addons/controls/OrbitControls.js';\n\
         document.getElementById('out').textContent = orbit() + ' ' + REVISION;\n",
    );
    p.write(
        "static/vendor/three/build/three.module.js",
        "export const REVISION = '170';\n//# sourceMappingURL=three.module.js.map\n",
    );
    p.write(
        "static/vendor/three/build/three.module.js.map",
        "{\"version\":3,\"sources\":[],\"mappings\":\"\"}",
    );
    p.write(
        "static/vendor/three/examples/jsm/controls/OrbitControls.js",
        "import { REVISION } from 'three';\nimport { clamp } from '../math/MathUtils.js';\n\
         export function orbit() { return 'orbit' + clamp(REVISION); }\n",
    );
    p.write(
        "static/vendor/three/examples/jsm/math/MathUtils.js",
        "export function clamp(x) { return x.length; }\n",
    );
    let three = fs::read(p.path().join("static/vendor/three/build/three.module.js")).unwrap();
    let page = fs::read_to_string(p.path().join("static/index.html")).unwrap();
    p.write(
        "static/index.html",
        page.replace("INTEGRITY", &verbatim::assets::sri::integrity(&three)),
    );
    p
}

#[test]
fn import_map_prefixes_are_expanded_and_integrity_rewritten() {
    let p = three_project();
    p.ok(&["build"]);
    let m = manifest(&p);
    let (html, k) = built(&p, "index.html");
    let start = html.find("<script type=\"importmap\">").unwrap() + 25;
    let end = start + html[start..].find("</script>").unwrap();
    let map: serde_json::Value = serde_json::from_str(&html[start..end]).expect("valid JSON");
    let url = |logical: &str| format!("./{}", k[logical].strip_prefix("assets/").unwrap());
    let jsm = "vendor/three/examples/jsm/";
    let mut imports = serde_json::Map::new();
    imports.insert(
        "three".into(),
        url("vendor/three/build/three.module.js").into(),
    );
    for rest in ["controls/OrbitControls.js", "math/MathUtils.js"] {
        imports.insert(
            format!("three/addons/{rest}"),
            url(&format!("{jsm}{rest}")).into(),
        );
        assert_ne!(k[&format!("{jsm}{rest}")], format!("assets/{jsm}{rest}"));
    }
    // Outside the tree: left as written.
    imports.insert(
        "lil-gui/".into(),
        "https://cdn.jsdelivr.net/npm/lil-gui@0.19/".into(),
    );
    assert_eq!(map["imports"], serde_json::Value::Object(imports), "{html}");
    // The module's bytes changed (its source map URL): the integrity is
    // the manifest's, under its final URL.
    let three = "vendor/three/build/three.module.js";
    let mut integrity = serde_json::Map::new();
    integrity.insert(url(three), m["assets"][three]["integrity"].clone());
    assert_eq!(
        map["integrity"],
        serde_json::Value::Object(integrity),
        "{html}"
    );
    // The page depends on every file under the prefix.
    let refs = strings(&m["assets"]["index.html"]["references"]);
    for rest in ["controls/OrbitControls.js", "math/MathUtils.js"] {
        assert!(refs.contains(&format!("{jsm}{rest}")), "{refs:?}");
    }
}

#[test]
fn an_import_map_prefix_naming_no_file_fails_at_its_position() {
    let p = three_project();
    let page = fs::read_to_string(p.path().join("static/index.html")).unwrap();
    p.write(
        "static/index.html",
        page.replace(
            "./vendor/three/examples/jsm/",
            "./vendor/three/examples/jsx/",
        ),
    );
    let err = p.fails(&["build"], 1);
    assert!(err.contains("index.html:7:23: "), "{err}");
    assert!(err.contains("import map prefix \"three/addons/\""), "{err}");
    assert!(!p.path().join(".verbatim/build").exists());
}
