//! End to end in a real browser: headless Chromium loads a published page
//! from the local store over HTTP, every request succeeds and the module
//! script runs; after a changed release is published, the old page still
//! loads completely (old assets are never overwritten or removed). The
//! server sends each object with the `Content-Type` the manifest gives it
//! and `X-Content-Type-Options: nosniff`, as a bucket or CDN would, so the
//! browser's own checks of types and integrity apply: a real Vite build
//! (its copies of `public/` included), a rewritten file under an
//! `integrity` attribute, module scripts, a JSON module, WebAssembly, and
//! modules imported through an import map's prefix and integrity entries.
//!
//! Needs the `chromium` binary (`apt-get install chromium`; `cargo xtask ci`
//! installs it when root). Without it the test says so loudly and passes,
//! except when `CI` is set: then it fails.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use std::{fs, thread};

use crate::assets::site;

/// The Chromium binary, or `None` (said loudly) when it is not installed;
/// with `CI` set, a missing Chromium fails the test instead.
pub fn chromium() -> Option<PathBuf> {
    for name in ["chromium", "chromium-browser"] {
        let found = Command::new(name)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if found {
            return Some(PathBuf::from(name));
        }
    }
    let ci = std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false");
    let msg = "chromium is not installed: the browser end-to-end test did NOT run \
               (apt-get install -y chromium, or run `cargo xtask ci` as root)";
    if ci {
        panic!("{msg}; CI is set, so this is a failure");
    }
    eprintln!("\n!!!!!!!! SKIPPED: {msg} !!!!!!!!\n");
    None
}

/// Requests seen by the server: (path, status).
pub type Log = Arc<Mutex<Vec<(String, u16)>>>;

/// What a test server answers for a path (query and fragment removed):
/// the body and its content type, or `None` for a 404.
pub type Route = dyn Fn(&str) -> Option<(Vec<u8>, String)> + Send + Sync;

/// Store key to the `Content-Type` the manifests give it.
type Types = Arc<Mutex<BTreeMap<String, String>>>;

/// Serves `<store>/assets/…` at `/static/…` on 127.0.0.1; returns the base URL.
fn serve(store: PathBuf, log: Log, types: Types) -> String {
    serve_with(
        Arc::new(move |path: &str| {
            let key = path
                .strip_prefix("/static/")
                .filter(|p| !p.split('/').any(|s| s == ".." || s.is_empty()))
                .map(|p| format!("assets/{p}"))?;
            let body = fs::read(store.join(&key)).ok()?;
            // What the manifest says, as a bucket would answer; a key no
            // manifest names is served as bytes, which no script survives.
            let ctype = types.lock().unwrap().get(&key).cloned();
            Some((
                body,
                ctype.unwrap_or_else(|| "application/octet-stream".into()),
            ))
        }),
        log,
    )
}

/// Serves what `route` answers on 127.0.0.1, logging every request, with
/// `X-Content-Type-Options: nosniff` (so a browser uses a stylesheet or a
/// script only when its content type is right); returns the base URL.
pub fn serve_with(route: Arc<Route>, log: Log) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("binding 127.0.0.1");
    let addr = listener.local_addr().expect("local addr");
    thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let (route, log) = (route.clone(), log.clone());
            thread::spawn(move || respond(stream, &*route, &log));
        }
    });
    format!("http://{addr}")
}

fn respond(mut stream: TcpStream, route: &Route, log: &Log) {
    let mut line = String::new();
    let mut reader = BufReader::new(match stream.try_clone() {
        Ok(s) => s,
        Err(_) => return,
    });
    if reader.read_line(&mut line).is_err() {
        return;
    }
    // Drain the headers.
    let mut h = String::new();
    while reader.read_line(&mut h).is_ok_and(|n| n > 2) {
        h.clear();
    }
    let path = line.split_whitespace().nth(1).unwrap_or("/").to_owned();
    let path = path.split(['?', '#']).next().unwrap_or("").to_owned();
    let (status, body, ctype) = match route(&path) {
        Some((body, ctype)) => (200, body, ctype),
        None => (404, b"not found".to_vec(), "text/plain".to_owned()),
    };
    log.lock().unwrap().push((path, status));
    let head = format!(
        "HTTP/1.1 {status} X\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\n\
         X-Content-Type-Options: nosniff\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let _ = stream.write_all(head.as_bytes());
    let _ = stream.write_all(&body);
}

/// Adds the content types of the build's manifest to `types`.
fn learn_types(p: &crate::util::Project, types: &Types) {
    let m = built_manifest(p);
    let mut types = types.lock().unwrap();
    for a in m["assets"].as_object().unwrap().values() {
        types.insert(
            a["key"].as_str().unwrap().to_owned(),
            a["content_type"].as_str().unwrap().to_owned(),
        );
    }
}

fn built_manifest(p: &crate::util::Project) -> serde_json::Value {
    serde_json::from_slice(&fs::read(p.path().join(".verbatim/build/manifest.json")).unwrap())
        .unwrap()
}

/// Loads `url` headless and returns the DOM after scripts ran.
pub fn dump_dom(chromium: &Path, url: &str) -> String {
    let profile = tempfile::tempdir().unwrap();
    dump_dom_in(chromium, url, profile.path())
}

/// [`dump_dom`] with the browser profile in `profile`, which a later load
/// may use again (a service worker installed stays installed).
pub fn dump_dom_in(chromium: &Path, url: &str, profile: &Path) -> String {
    let mut child = Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--virtual-time-budget=5000",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(["--dump-dom", url])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting chromium");
    let start = Instant::now();
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if start.elapsed() > Duration::from_secs(90) {
            let _ = child.kill();
            panic!("chromium did not finish loading {url} in 90 s");
        }
        thread::sleep(Duration::from_millis(100));
    }
    let out = child.wait_with_output().unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The store key of the page at logical path `page` in the build's manifest.
fn page_key(p: &crate::util::Project, page: &str) -> String {
    built_manifest(p)["assets"][page]["key"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Loads the page stored under `key`: every request must succeed, each of
/// `needles` must be part of some requested path, and each of `dom` must
/// be in the DOM once scripts ran.
fn check_page(
    chromium: &Path,
    base: &str,
    key: &str,
    log: &Log,
    what: &str,
    needles: &[&str],
    dom_has: &[&str],
) {
    log.lock().unwrap().clear();
    let url = format!("{base}/static/{}", key.trim_start_matches("assets/"));
    let dom = dump_dom(chromium, &url);
    let requests: BTreeMap<String, u16> = log
        .lock()
        .unwrap()
        .iter()
        .filter(|(p, _)| p != "/favicon.ico")
        .cloned()
        .collect();
    let failed: Vec<_> = requests.iter().filter(|(_, s)| **s != 200).collect();
    assert!(failed.is_empty(), "{what}: failed requests {failed:?}");
    for needle in needles {
        assert!(
            requests.keys().any(|p| p.contains(needle)),
            "{what}: {needle} was never requested: {requests:?}"
        );
    }
    for want in dom_has {
        assert!(
            dom.contains(want),
            "{what}: {want:?} is not in the DOM (a script did not run, or ran into an error); DOM:\n{dom}"
        );
    }
}

/// Serves `p`'s store and loads its page at logical path `page`, as
/// [`check_page`] does.
fn load_published(
    chromium: &Path,
    p: &crate::util::Project,
    page: &str,
    what: &str,
    needles: &[&str],
    dom_has: &[&str],
) {
    let (log, types): (Log, Types) = Default::default();
    learn_types(p, &types);
    let base = serve(p.store(), log.clone(), types);
    let key = page_key(p, page);
    check_page(chromium, &base, &key, &log, what, needles, dom_has);
}

/// What the site of [`site`] requests, and what its module script writes.
const SITE_NEEDLES: &[&str] = &[
    "/css/site.",
    "/css/base.",
    "/js/app.",
    "/js/util.",
    "/img/logo.",
];
const SITE_RAN: &[&str] = &["id=\"out\">ran</p>"];

#[test]
fn a_published_page_loads_completely_and_still_does_after_the_next_release() {
    let Some(chromium) = chromium() else { return };
    let p = site();
    p.ok(&["publish"]);
    let old_page = page_key(&p, "index.html");
    let (log, types): (Log, Types) = Default::default();
    learn_types(&p, &types);
    let base = serve(p.store(), log.clone(), types.clone());
    let check = |key: &str, what: &str| {
        check_page(&chromium, &base, key, &log, what, SITE_NEEDLES, SITE_RAN)
    };
    check(&old_page, "release 1");

    // Release 2 changes a leaf script and the stylesheet.
    p.write(
        "static/js/util.js",
        "export function greet() { document.getElementById('out').textContent = 'ran'; \
         document.title = 'v2'; }\n",
    );
    p.write("static/css/base.css", "body { color: #333; }\n");
    p.ok(&["publish"]);
    learn_types(&p, &types);
    let new_page = page_key(&p, "index.html");
    assert_ne!(new_page, old_page);
    check(&new_page, "release 2");
    check(&old_page, "release 1 after release 2");
}

#[test]
fn a_vite_build_loads_completely_with_its_public_files() {
    // tests/fixtures/vite: Vite's output, `public/` copies and all. Its
    // bundle names /static/icons.svg, /static/vite.svg and, in its CSS,
    // /static/logo.svg, plainly.
    let Some(chromium) = chromium() else { return };
    let p = crate::assets::vite_project();
    p.ok(&["publish"]);
    let (log, types): (Log, Types) = Default::default();
    learn_types(&p, &types);
    let base = serve(p.store(), log.clone(), types);
    let page = page_key(&p, "index.html");
    assert_eq!(page, "assets/index.html");
    check_page(
        &chromium,
        &base,
        &page,
        &log,
        "the Vite build",
        &[
            "/static/assets/index-9GimqxIf.js",
            "/static/assets/index-gGNJdlJx.css",
            "/static/assets/lazy-B2qQgaqo.js",
            "/static/assets/javascript-DWV2vKwc.svg",
            "/static/vite.svg",
            "/static/icons.svg",
            "/static/logo.svg",
        ],
        &["id=\"out\">ran</p>", "data-lazy=\"loaded\""],
    );
}

#[test]
fn a_file_rewritten_under_an_integrity_attribute_still_loads() {
    // Bootstrap self-hosted as its documentation shows it, with the
    // `integrity` of the file as shipped: its sourceMappingURL is
    // rewritten, and so must the attribute be. The module script, whose
    // import is rewritten, carries one too.
    let Some(chromium) = chromium() else { return };
    let p = crate::util::Project::with_config("[app]\ndir = \"app\"\n[assets]\ndir = \"static\"\n");
    p.write("app/main.py", "print('app')\n");
    let css = "body{color:rgb(1, 2, 3)}\n/*# sourceMappingURL=bootstrap.min.css.map */\n";
    let js = "import { x } from './util.js';\n\
              document.getElementById('out').textContent = x + ' ' + getComputedStyle(document.body).color;\n";
    p.write("static/css/bootstrap.min.css", css);
    p.write(
        "static/css/bootstrap.min.css.map",
        "{\"version\":3,\"sources\":[],\"mappings\":\"\"}",
    );
    p.write("static/js/app.js", js);
    p.write("static/js/util.js", "export const x = 'ran';\n");
    p.write(
        "static/index.html",
        format!(
            "<!doctype html>\n<html><head>\n\
             <link href=\"css/bootstrap.min.css\" rel=\"stylesheet\" integrity=\"{}\" crossorigin=\"anonymous\">\n\
             <script type=\"module\" src=\"js/app.js\" integrity=\"{}\" crossorigin=\"anonymous\"></script>\n\
             </head><body><p id=\"out\"></p></body></html>\n",
            sri(css.as_bytes()),
            sri(js.as_bytes())
        ),
    );
    p.ok(&["publish"]);
    let m = built_manifest(&p);
    let stored_css = fs::read(
        p.store().join(
            m["assets"]["css/bootstrap.min.css"]["key"]
                .as_str()
                .unwrap(),
        ),
    )
    .unwrap();
    assert_ne!(stored_css, css.as_bytes(), "the stylesheet was rewritten");
    load_published(
        &chromium,
        &p,
        "index.html",
        "integrity",
        &["/css/bootstrap.min.", "/js/app.", "/js/util."],
        &["id=\"out\">ran rgb(1, 2, 3)</p>"],
    );
}

#[test]
fn a_page_with_a_base_href_loads_what_the_base_names() {
    // `<base href="/static/">` in a page below the root: its relative
    // URLs name the files at the root, not the decoys beside the page.
    let Some(chromium) = chromium() else { return };
    let p = crate::util::Project::with_config("[app]\ndir = \"app\"\n[assets]\ndir = \"static\"\n");
    p.write("app/main.py", "print('app')\n");
    p.write("static/css/site.css", "body { color: rgb(1, 2, 3) }\n");
    p.write("static/js/app.js", "import { x } from './util.js';\ndocument.getElementById('out').textContent = x + ' ' + getComputedStyle(document.body).color;\n");
    p.write("static/js/util.js", "export const x = 'ran';\n");
    p.write("static/docs/css/site.css", "body { color: rgb(9, 9, 9) }\n");
    p.write(
        "static/docs/js/app.js",
        "document.getElementById('out').textContent = 'decoy';\n",
    );
    p.write(
        "static/docs/index.html",
        "<!doctype html>\n<html><head><base href=\"/static/\">\n\
         <link href=\"css/site.css\" rel=\"stylesheet\">\n\
         <script type=\"module\" src=\"js/app.js\"></script>\n\
         </head><body><p id=\"out\"></p></body></html>\n",
    );
    p.ok(&["publish"]);
    load_published(
        &chromium,
        &p,
        "docs/index.html",
        "base href",
        &["/static/css/site.", "/static/js/app.", "/static/js/util."],
        &["id=\"out\">ran rgb(1, 2, 3)</p>"],
    );
}

#[test]
fn three_addons_assets_load_through_the_import_map() {
    // three.js as its manual loads it: `three/addons/…` through an import
    // map prefix, which names files that are renamed; `three` under an
    // import map `integrity` entry, its bytes rewritten (source map URL).
    let Some(chromium) = chromium() else { return };
    let p = crate::assets::three_project();
    p.ok(&["publish"]);
    load_published(
        &chromium,
        &p,
        "index.html",
        "import map",
        &[
            "/js/main.",
            "/vendor/three/build/three.module.",
            "/vendor/three/examples/jsm/controls/OrbitControls.",
            "/vendor/three/examples/jsm/math/MathUtils.",
        ],
        &["id=\"out\">orbit3 170</p>"],
    );
}

#[test]
fn content_types_pass_the_browsers_checks() {
    // pdf.js's layout (pdfjs-dist): ES modules (.mjs) and WebAssembly
    // decoders started with instantiateStreaming, which takes nothing but
    // application/wasm; besides, a JSON module, a stylesheet and a classic
    // script, all under nosniff.
    let Some(chromium) = chromium() else { return };
    let p = crate::util::Project::with_config("[app]\ndir = \"app\"\n[assets]\ndir = \"static\"\n");
    p.write("app/main.py", "print('app')\n");
    // (module (func (export "answer") (result i32) i32.const 42))
    p.write(
        "static/pdfjs/wasm/answer.wasm",
        [
            0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, // magic, version
            0x01, 0x05, 0x01, 0x60, 0x00, 0x01, 0x7f, // type: () -> i32
            0x03, 0x02, 0x01, 0x00, // function 0 has type 0
            0x07, 0x0a, 0x01, 0x06, b'a', b'n', b's', b'w', b'e', b'r', 0x00, 0x00, // export
            0x0a, 0x06, 0x01, 0x04, 0x00, 0x41, 0x2a, 0x0b, // code: i32.const 42
        ],
    );
    p.write(
        "static/pdfjs/build/pdf.mjs",
        "import { label } from './util.mjs';\n\
         import data from './data.json' with { type: 'json' };\n\
         const wasm = new URL('../wasm/answer.wasm', import.meta.url);\n\
         const { instance } = await WebAssembly.instantiateStreaming(fetch(wasm));\n\
         document.getElementById('out').textContent = [label, data.ok, instance.exports.answer(),\n\
           getComputedStyle(document.body).color, window.classic].join(' ');\n",
    );
    p.write(
        "static/pdfjs/build/util.mjs",
        "export const label = 'mjs';\n",
    );
    p.write("static/pdfjs/build/data.json", "{\"ok\": \"json\"}\n");
    p.write("static/css/viewer.css", "body { color: rgb(4, 5, 6); }\n");
    p.write("static/js/classic.js", "window.classic = 'classic';\n");
    p.write(
        "static/viewer.html",
        "<!doctype html>\n<html><head><link rel=stylesheet href=css/viewer.css>\n\
         <script src=js/classic.js></script>\n\
         <script type=module src=pdfjs/build/pdf.mjs></script></head>\n\
         <body><p id=out></p></body></html>\n",
    );
    p.ok(&["publish"]);
    load_published(
        &chromium,
        &p,
        "viewer.html",
        "content types",
        &[
            "/pdfjs/wasm/answer.",
            "/pdfjs/build/data.",
            "/pdfjs/build/util.",
        ],
        &["<p id=\"out\">mjs json 42 rgb(4, 5, 6) classic</p>"],
    );
}

fn sri(bytes: &[u8]) -> String {
    verbatim::assets::sri::integrity(bytes)
}
