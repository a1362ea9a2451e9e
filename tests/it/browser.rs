//! End to end in a real browser: headless Chromium loads a published page
//! from the local store over HTTP, every request succeeds and the module
//! script runs; after a changed release is published, the old page still
//! loads completely (old assets are never overwritten or removed).
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

/// Serves `<store>/assets/…` at `/static/…` on 127.0.0.1; returns the base URL.
fn serve(store: PathBuf, log: Log) -> String {
    serve_with(
        Arc::new(move |path: &str| {
            let file = path
                .strip_prefix("/static/")
                .filter(|p| !p.split('/').any(|s| s == ".." || s.is_empty()))
                .map(|p| store.join("assets").join(p))?;
            let body = fs::read(&file).ok()?;
            Some((body, content_type(&file).to_owned()))
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

fn content_type(f: &Path) -> &'static str {
    match f.extension().and_then(|e| e.to_str()) {
        Some("html") => "text/html; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("png") => "image/png",
        Some("woff2") => "font/woff2",
        _ => "application/octet-stream",
    }
}

/// Loads `url` headless and returns the DOM after scripts ran.
pub fn dump_dom(chromium: &Path, url: &str) -> String {
    let profile = tempfile::tempdir().unwrap();
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
        .arg(format!("--user-data-dir={}", profile.path().display()))
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

fn page_key(p: &crate::util::Project) -> String {
    let m: serde_json::Value =
        serde_json::from_slice(&fs::read(p.path().join(".verbatim/build/manifest.json")).unwrap())
            .unwrap();
    m["assets"]["index.html"]["key"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn check_page(chromium: &Path, base: &str, key: &str, log: &Log, what: &str) {
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
    for needle in [
        "/css/site.",
        "/css/base.",
        "/js/app.",
        "/js/util.",
        "/img/logo.",
    ] {
        assert!(
            requests.keys().any(|p| p.contains(needle)),
            "{what}: {needle} was never requested: {requests:?}"
        );
    }
    assert!(
        dom.contains("id=\"out\">ran</p>"),
        "{what}: the module script did not run; DOM:\n{dom}"
    );
}

#[test]
fn a_published_page_loads_completely_and_still_does_after_the_next_release() {
    let Some(chromium) = chromium() else { return };
    let p = site();
    p.ok(&["publish"]);
    let old_page = page_key(&p);
    let log: Log = Arc::default();
    let base = serve(p.store(), log.clone());
    check_page(&chromium, &base, &old_page, &log, "release 1");

    // Release 2 changes a leaf script and the stylesheet.
    p.write(
        "static/js/util.js",
        "export function greet() { document.getElementById('out').textContent = 'ran'; \
         document.title = 'v2'; }\n",
    );
    p.write("static/css/base.css", "body { color: #333; }\n");
    p.ok(&["publish"]);
    let new_page = page_key(&p);
    assert_ne!(new_page, old_page);
    check_page(&chromium, &base, &new_page, &log, "release 2");
    check_page(
        &chromium,
        &base,
        &old_page,
        &log,
        "release 1 after release 2",
    );
}
