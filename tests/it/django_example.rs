//! `examples/django/`, as its users run it: a Django site whose
//! `verbatim.toml` sets `assets.django_manifest`, so `build` packs Django's
//! `staticfiles.json` into the artifact and a release renders
//! `{% static %}` with no extra step (no collectstatic, no export hook).
//!
//! The example is built and published to a local store, fetched like a
//! host fetches it, and its pages rendered by Django's test client (the
//! venv's python, in a subprocess, in the release directory) with
//! `STATIC_URL` pointing at a local server that serves the store's
//! `assets/` prefix as a CDN would. Every `{% static %}` URL must name an
//! object of the store, with the content type the manifest gives it; then
//! headless Chromium loads each rendered page from that server with no
//! failed request, the stylesheet's own image included, and the script runs.
//!
//! Needs the Django venv (`VERBATIM_TEST_DJANGO_VENV`, else
//! `~/.cache/verbatim/venv-django`; `cargo xtask ci` makes it): without it
//! the test fails. Chromium is optional as in `browser.rs` (a loud skip of
//! the browser half, a failure when `CI` is set).

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::Read;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use verbatim::digest::Digest;

use crate::browser::{chromium, dump_dom, serve_with, Log};
use crate::util::Project;

const EXAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/django");
/// Where the example's verbatim.toml puts staticfiles.json, relative to app.dir.
const STATICFILES: &str = "mysite/static/staticfiles.json";
/// The example's pages.
const PAGES: [&str; 2] = ["/", "/about/"];

/// A copy of the example in a temp directory (never its build output).
fn example() -> Project {
    fn copy(from: &Path, to: &Path) {
        fs::create_dir_all(to).unwrap();
        for e in fs::read_dir(from).unwrap() {
            let e = e.unwrap();
            let name = e.file_name();
            if name == ".verbatim" || name == "__pycache__" {
                continue;
            }
            if e.file_type().unwrap().is_dir() {
                copy(&e.path(), &to.join(&name));
            } else {
                fs::copy(e.path(), to.join(&name)).unwrap();
            }
        }
    }
    let dir = tempfile::tempdir().expect("temp dir");
    copy(Path::new(EXAMPLE), dir.path());
    Project { dir }
}

fn manifest(p: &Project) -> serde_json::Value {
    serde_json::from_slice(&fs::read(p.path().join(".verbatim/build/manifest.json")).unwrap())
        .unwrap()
}

/// The artifact's entries in archive order: (path, mode, mtime, uid, gid, bytes).
type TarEntry = (String, u32, u64, u64, u64, Vec<u8>);

fn artifact_entries(artifact: &Path) -> Vec<TarEntry> {
    let gz = flate2::read::MultiGzDecoder::new(fs::File::open(artifact).unwrap());
    let mut tar = tar::Archive::new(gz);
    tar.entries()
        .unwrap()
        .map(|e| {
            let mut e = e.unwrap();
            let h = e.header().clone();
            let mut bytes = Vec::new();
            e.read_to_end(&mut bytes).unwrap();
            (
                e.path().unwrap().display().to_string(),
                h.mode().unwrap(),
                h.mtime().unwrap(),
                h.uid().unwrap(),
                h.gid().unwrap(),
                bytes,
            )
        })
        .collect()
}

/// Renders `pages` with Django's test client, in `release`, with
/// `static_url` as STATIC_URL: path → (status, HTML).
fn render(venv: &Path, release: &Path, static_url: &str) -> BTreeMap<String, (u16, String)> {
    const SCRIPT: &str = r#"
import json
import sys

import django
from django.test.utils import setup_test_environment

django.setup()
setup_test_environment()  # lets the test client's "testserver" host in
from django.test import Client

client = Client()  # re-raises a view's exception: a missing manifest entry fails here
pages = {}
for path in sys.argv[1:]:
    response = client.get(path)
    pages[path] = [response.status_code, response.content.decode()]
json.dump(pages, sys.stdout)
"#;
    let mut cmd = Command::new(venv.join("bin/python"));
    cmd.arg("-c")
        .arg(SCRIPT)
        .args(PAGES)
        .current_dir(release)
        .env("DJANGO_SETTINGS_MODULE", "mysite.settings")
        .env("DJANGO_STATIC_URL", static_url)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env_remove("PYTHONPATH")
        .env_remove("PYTHONHOME");
    let out = crate::util::success(&mut cmd);
    let pages: BTreeMap<String, (u16, String)> = serde_json::from_slice(&out)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out)));
    pages
}

/// The values of the `src` and `href` attributes in `html`.
fn urls(html: &str) -> Vec<&str> {
    let mut out = Vec::new();
    for attr in [" src=\"", " href=\""] {
        let mut rest = html;
        while let Some(i) = rest.find(attr) {
            rest = &rest[i + attr.len()..];
            let end = rest.find('"').expect("an unclosed attribute");
            out.push(&rest[..end]);
            rest = &rest[end..];
        }
    }
    out
}

/// The content type a file of this kind must be served with.
fn expected_type(logical: &str) -> &'static str {
    match logical.rsplit('.').next() {
        Some("css") => "text/css; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("png") => "image/png",
        Some("svg") => "image/svg+xml; charset=utf-8",
        _ => panic!("no expected content type for {logical}"),
    }
}

#[test]
fn the_django_example_renders_static_urls_from_the_artifact_and_loads_them_in_chromium() {
    let venv = crate::django::venv();
    let p = example();
    let published = p.json(&["publish"]);
    let id = published["manifest"].as_str().unwrap().to_owned();
    let m = manifest(&p);
    assert!(
        !p.app().join("mysite/static").exists(),
        "build wrote into the source tree"
    );

    // What the artifact holds at assets.django_manifest is exactly what
    // `export --format django` writes for this manifest, packed like every
    // other entry (sorted, 0644, the same mtime and owner).
    let exported = p.ok(&["export", "--format", "django"]);
    let artifact = p.store().join(m["artifact"]["key"].as_str().unwrap());
    let entries = artifact_entries(&artifact);
    let paths: Vec<&str> = entries.iter().map(|e| e.0.as_str()).collect();
    let mut sorted = paths.clone();
    sorted.sort_by(|a, b| {
        a.trim_end_matches('/')
            .as_bytes()
            .cmp(b.trim_end_matches('/').as_bytes())
    });
    assert_eq!(paths, sorted, "entries out of order");
    assert!(paths.contains(&"mysite/static/"), "{paths:?}");
    let entry = entries
        .iter()
        .find(|e| e.0 == STATICFILES)
        .unwrap_or_else(|| panic!("no {STATICFILES} in the artifact: {paths:?}"));
    assert_eq!(String::from_utf8_lossy(&entry.5), exported);
    assert_eq!(entry.1, 0o644);
    let settings = entries
        .iter()
        .find(|e| e.0 == "mysite/settings.py")
        .unwrap();
    assert_eq!(
        (entry.2, entry.3, entry.4),
        (settings.2, settings.3, settings.4)
    );
    let doc: serde_json::Value = serde_json::from_str(&exported).unwrap();
    assert_eq!(
        doc["paths"].as_object().unwrap().len(),
        m["assets"].as_object().unwrap().len()
    );
    assert_eq!(m["artifact"]["entries"], entries.len());

    // Same tree, same bytes: again here, and from another copy elsewhere.
    p.ok(&["build", "--check"]);
    let other = example();
    let again = other.json(&["build"]);
    assert_eq!(again["manifest"], id.as_str());
    assert_eq!(again["artifact"]["sha256"], m["artifact"]["sha256"]);

    // A host fetches the release; Django renders its pages from it.
    let host = tempfile::tempdir().unwrap();
    let fetched = p.json(&["fetch", &id, "--into", host.path().to_str().unwrap()]);
    let release = Path::new(fetched["path"].as_str().unwrap()).to_owned();
    assert_eq!(
        fs::read_to_string(release.join(STATICFILES)).unwrap(),
        exported
    );

    // The "CDN": the store's objects under /assets/…, each with the content
    // type its manifest records, and the rendered pages at their paths.
    let by_key: BTreeMap<String, (String, serde_json::Value)> = m["assets"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(logical, a)| {
            (
                a["key"].as_str().unwrap().to_owned(),
                (logical.clone(), a.clone()),
            )
        })
        .collect();
    let log: Log = Arc::default();
    let pages: Arc<std::sync::Mutex<BTreeMap<String, String>>> = Arc::default();
    let (store, types) = (
        p.store(),
        by_key
            .iter()
            .map(|(k, (_, a))| (k.clone(), a["content_type"].as_str().unwrap().to_owned()))
            .collect::<BTreeMap<_, _>>(),
    );
    let served_pages = pages.clone();
    let base = serve_with(
        Arc::new(move |path: &str| {
            if let Some(html) = served_pages.lock().unwrap().get(path) {
                return Some((html.clone().into_bytes(), "text/html; charset=utf-8".into()));
            }
            let key = path.strip_prefix('/')?;
            let ctype = types.get(key)?;
            Some((fs::read(store.join(key)).ok()?, ctype.clone()))
        }),
        log.clone(),
    );
    let static_url = format!("{base}/assets/");
    let rendered = render(&venv, &release, &static_url);

    let mut referenced = BTreeSet::new();
    for (page, (status, html)) in &rendered {
        assert_eq!(*status, 200, "{page}:\n{html}");
        let statics: Vec<&str> = urls(html)
            .into_iter()
            .filter(|u| u.starts_with(&base))
            .collect();
        assert_eq!(statics.len(), 3, "{page}: {statics:?}\n{html}");
        let mut logicals = BTreeSet::new();
        for url in statics {
            let key = url.strip_prefix(&base).unwrap().trim_start_matches('/');
            let (logical, asset) = by_key
                .get(key)
                .unwrap_or_else(|| panic!("{page}: {url} names no asset of the manifest"));
            let stored = fs::read(p.store().join(key))
                .unwrap_or_else(|e| panic!("{page}: {url}: no object {key} in the store: {e}"));
            assert_eq!(
                Digest::of(&stored).hex(),
                asset["sha256"].as_str().unwrap(),
                "{key}"
            );
            assert_eq!(
                asset["content_type"].as_str().unwrap(),
                expected_type(logical),
                "{url}"
            );
            logicals.insert(logical.as_str());
        }
        assert_eq!(
            logicals,
            BTreeSet::from(["css/site.css", "img/logo.png", "js/app.js"]),
            "{page}"
        );
        referenced.extend(logicals);
        assert!(html.contains("JavaScript did not run."), "{page}");
        pages.lock().unwrap().insert(page.clone(), html.clone());
    }
    assert_eq!(referenced.len(), 3);

    // In a browser: every request succeeds, the stylesheet's image and the
    // script included, each with its manifest content type (nosniff).
    let Some(chromium) = chromium() else { return };
    let stripe = format!(
        "/{}",
        m["assets"]["img/stripe.svg"]["key"].as_str().unwrap()
    );
    for page in PAGES {
        log.lock().unwrap().clear();
        let dom = dump_dom(&chromium, &format!("{base}{page}"));
        let requests: BTreeMap<String, u16> = log
            .lock()
            .unwrap()
            .iter()
            .filter(|(p, _)| p != "/favicon.ico")
            .cloned()
            .collect();
        let failed: Vec<_> = requests.iter().filter(|(_, s)| **s != 200).collect();
        assert!(failed.is_empty(), "{page}: failed requests {failed:?}");
        let mut wanted: Vec<String> = ["css/site.css", "img/logo.png", "js/app.js"]
            .iter()
            .map(|l| format!("/{}", m["assets"][l]["key"].as_str().unwrap()))
            .collect();
        wanted.push(stripe.clone());
        wanted.push(page.to_owned());
        for w in &wanted {
            assert!(
                requests.contains_key(w),
                "{page}: {w} was never requested: {requests:?}"
            );
        }
        assert_eq!(requests.len(), wanted.len(), "{page}: {requests:?}");
        assert!(
            dom.contains("JavaScript ran."),
            "{page}: the script did not run; DOM:\n{dom}"
        );
    }
}

#[test]
fn django_manifest_replaces_the_trees_file_in_the_artifact_and_leaves_the_tree_alone() {
    let p = example();
    let stale = "{\"paths\": {}, \"version\": \"1.1\", \"hash\": \"stale\"}\n";
    p.write(&format!("app/{STATICFILES}"), stale);
    let out = p.run(&["build", "-v"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains(&format!("replaced {STATICFILES}")),
        "-v says it replaced the tree's file:\n{err}"
    );
    let quiet = p.run(&["build"]);
    assert!(
        !String::from_utf8_lossy(&quiet.stderr).contains("replaced"),
        "only -v says so"
    );
    assert_eq!(
        fs::read_to_string(p.app().join(STATICFILES)).unwrap(),
        stale
    );
    let exported = p.ok(&["export", "--format", "django"]);
    let entries = artifact_entries(&p.path().join(".verbatim/build/artifact.tar.gz"));
    let packed: Vec<_> = entries.iter().filter(|e| e.0 == STATICFILES).collect();
    assert_eq!(packed.len(), 1, "one entry, not two");
    assert_eq!(String::from_utf8_lossy(&packed[0].5), exported);

    // `build --list` shows it, as packed.
    let list = p.json(&["build", "--list"]);
    let listed: Vec<&serde_json::Value> = list["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["path"] == STATICFILES)
        .collect();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["generated"], true);
    assert_eq!(listed[0]["size"], exported.len());
    assert_eq!(listed[0]["mode"], "0644");

    // Outside app.dir, or among the assets: a configuration error.
    let config = fs::read_to_string(p.path().join("verbatim.toml")).unwrap();
    for (path, why) in [
        ("staticfiles.json", "not inside the app directory"),
        ("static/staticfiles.json", "inside the assets directory"),
        ("app/../staticfiles.json", "without `..`"),
    ] {
        p.write(
            "verbatim.toml",
            config.replace(
                "\"app/mysite/static/staticfiles.json\"",
                &format!("{path:?}"),
            ),
        );
        let err = p.fails(&["build"], 2);
        assert!(
            err.contains("assets.django_manifest") && err.contains(why),
            "{path}: {err}"
        );
    }
}
