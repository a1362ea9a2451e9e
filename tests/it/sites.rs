//! Sites end to end: entry files served per environment by a real nginx
//! in front of a local store (`site/<env>/` at the root, `assets/` under
//! `/static/`), loaded in headless Chromium.
//!
//! - The Vite fixture published three times with changes, promoted dev →
//!   prod, then rolled back: every page loads with no failed request; a
//!   page opened before a deploy still finds its lazy chunk after it;
//!   after the rollback prod serves the previous entry.
//! - A service worker (an entry, `importScripts()` of an asset) updated
//!   across two releases: Chromium activates the new one.
//!
//! Needs nginx and Chromium (`cargo xtask ci` installs both): without
//! Chromium the tests say so loudly and pass, except with `CI` set.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use crate::assets::{copy_dir, fixture};
use crate::browser::{chromium, dump_dom, dump_dom_in, serve_with, Log};
use crate::nginx::Nginx;
use crate::util::Project;

/// nginx serving, for each of `envs`, `http://<env>.localhost:<port>/`:
/// `site/<env>/` of `store` at the root, `assets/` under `/static/`, and
/// `/gate` and `/tick` from `gate` (a base URL). Every request is logged.
pub fn site_nginx(store: &Path, envs: &[&str], gate: &str) -> Nginx {
    let store = store.display().to_string();
    let envs: Vec<String> = envs.iter().map(|e| e.to_string()).collect();
    let gate = gate.to_owned();
    Nginx::start_servers(move |addr, dir| {
        envs.iter()
            .map(|env| {
                format!(
                    "server {{\n\
                     listen {addr};\n\
                     server_name {env}.localhost;\n\
                     include /etc/nginx/mime.types;\n\
                     access_log {dir}/access.log status;\n\
                     location /static/ {{ alias {store}/assets/; }}\n\
                     location = /gate {{ proxy_pass {gate}; }}\n\
                     location = /tick {{ proxy_pass {gate}; }}\n\
                     location / {{ root {store}/site/{env}; }}\n\
                     }}\n",
                    dir = dir.display()
                )
            })
            .collect()
    })
}

/// Requests nginx logged (`$host $status $uri`) from line `from` on,
/// favicon aside.
pub fn requests(nginx_log: &Path, from: usize) -> Vec<(String, u16, String)> {
    fs::read_to_string(nginx_log)
        .unwrap_or_default()
        .lines()
        .skip(from)
        .filter_map(|l| {
            let mut f = l.split(' ');
            let (host, status, uri) = (f.next()?, f.next()?, f.next()?);
            Some((host.to_owned(), status.parse().ok()?, uri.to_owned()))
        })
        .filter(|(_, _, uri)| uri != "/favicon.ico")
        .collect()
}

/// A gate: `/gate` answers once it is open; `arrived` counts requests.
#[derive(Clone, Default)]
pub struct Gate(Arc<(Mutex<bool>, Condvar)>, Arc<AtomicUsize>);

impl Gate {
    pub fn set(&self, open: bool) {
        *self.0 .0.lock().unwrap() = open;
        self.0 .1.notify_all();
    }

    /// Serves `/gate` on loopback; the base URL.
    pub fn serve(&self, log: Log) -> String {
        let gate = self.clone();
        serve_with(
            Arc::new(move |path: &str| {
                if path == "/tick" {
                    // Real time for a page to wait in: virtual time (the
                    // loads' budget) stands still while a fetch is pending.
                    std::thread::sleep(Duration::from_millis(25));
                    return Some((b"tick".to_vec(), "text/plain".to_owned()));
                }
                (path == "/gate").then(|| {
                    gate.1.fetch_add(1, Ordering::SeqCst);
                    let (lock, cv) = &*gate.0;
                    let open = cv
                        .wait_timeout_while(lock.lock().unwrap(), Duration::from_secs(60), |o| !*o)
                        .unwrap();
                    drop(open);
                    (b"open".to_vec(), "text/plain".to_owned())
                })
            }),
            log,
        )
    }
}

/// Writes release `n` of the Vite fixture into `frontend/dist`: its entry
/// and lazy chunks changed and renamed as Vite would rename them, the lazy
/// import behind a fetch of `/gate`.
fn vite_release(p: &Project, n: u32) {
    let dist = p.path().join("frontend/dist");
    let _ = fs::remove_dir_all(&dist);
    copy_dir(&fixture("vite/dist"), &dist);
    let (index, lazy) = (format!("index-rel{n}.js"), format!("lazy-rel{n}.js"));
    let a = dist.join("assets");
    let edit = |from: &str, to: &str, changes: &[(&str, &str)]| {
        let mut text = fs::read_to_string(a.join(from)).unwrap();
        for (old, new) in changes {
            assert!(text.contains(old), "{from} has no {old:?}");
            text = text.replace(old, new);
        }
        fs::remove_file(a.join(from)).unwrap();
        fs::remove_file(a.join(format!("{from}.map"))).unwrap();
        fs::write(a.join(to), text).unwrap();
    };
    edit(
        "index-9GimqxIf.js",
        &index,
        &[
            (
                "<p id=\"out\">ran</p>",
                &format!("<p id=\"out\">ran {n}</p>"),
            ),
            (
                "s(()=>import(`./lazy-B2qQgaqo.js`).then(e=>e.run()),[]);",
                &format!("fetch(`/gate`).then(()=>s(()=>import(`./{lazy}`).then(e=>e.run()),[]));"),
            ),
            ("index-9GimqxIf.js.map", "none.map"),
        ],
    );
    edit(
        "lazy-B2qQgaqo.js",
        &lazy,
        &[
            ("`loaded`", &format!("`loaded {n}`")),
            ("lazy-B2qQgaqo.js.map", "none.map"),
        ],
    );
    for f in ["index.html", ".vite/manifest.json"] {
        let text = fs::read_to_string(dist.join(f))
            .unwrap()
            .replace("index-9GimqxIf.js", &index)
            .replace("lazy-B2qQgaqo.js", &lazy);
        fs::write(dist.join(f), text).unwrap();
    }
}

const VITE_SITE: &str = "[app]\ndir = \"app\"\n[assets]\ndir = \"frontend/dist\"\n[site]\n\
                         [environments]\norder = [\"dev\", \"prod\"]\n";

/// Loads `http://<env>.localhost:<port>/` and checks that every request
/// succeeded and that the DOM holds each of `dom_has`.
fn check_site(chromium: &Path, nginx: &Nginx, log: &Path, env: &str, what: &str, dom_has: &[&str]) {
    let from = requests(log, 0).len();
    let dom = dump_dom(
        chromium,
        &format!("http://{env}.localhost:{}/", nginx.addr.port()),
    );
    check_load(log, from, env, what, &dom, dom_has);
}

pub fn check_load(log: &Path, from: usize, env: &str, what: &str, dom: &str, dom_has: &[&str]) {
    let seen = requests(log, from);
    // A 304 is a revalidation that found the copy fresh.
    let failed: Vec<_> = seen.iter().filter(|(_, s, _)| *s >= 400).collect();
    assert!(
        failed.is_empty(),
        "{what}: failed requests {failed:?} of {seen:?}"
    );
    assert!(
        seen.iter()
            .any(|(h, _, u)| h == &format!("{env}.localhost") && u == "/"),
        "{what}: the page was not loaded through nginx: {seen:?}"
    );
    for want in dom_has {
        assert!(
            dom.contains(want),
            "{what}: {want:?} is not in the DOM:\n{dom}\nrequests: {seen:?}"
        );
    }
}

/// Runs `verbatim ARGS` against the test's store.
type Cli<'a> = &'a dyn Fn(&[&str]) -> std::process::Command;

fn publish(cli: Cli<'_>, env: &str) -> String {
    crate::util::json_out(cli(&["publish", "--env", env]).arg("--json"))["manifest"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[test]
fn a_vite_site_per_environment_survives_deploys_and_rolls_back() {
    let Some(chromium) = chromium() else { return };
    let p = Project::with_config(VITE_SITE);
    let gate = Gate::default();
    gate.set(true);
    let nginx = site_nginx(&p.store(), &["dev", "prod"], &gate.serve(Log::default()));
    let object = |key: &str| fs::read(p.store().join(key)).unwrap();
    vite_scenario(&chromium, &p, &|args| p.cmd(args), (&nginx, &gate), &object);
}

/// The same, with the store in s3s-fs and nginx proxying to it (an
/// anonymous endpoint over the same bucket, as a public-read bucket or a
/// CDN origin): `site/<env>/` at the root, `assets/` under `/static/`.
#[test]
fn a_vite_site_per_environment_through_nginx_in_front_of_s3s_fs() {
    let Some(chromium) = chromium() else { return };
    let Some(s3) = crate::s3::S3Server::start() else {
        return;
    };
    let public = s3.public_reader();
    let p = Project::with_config(VITE_SITE);
    let (url, prefix) = (s3.url(), "web");
    let cli = |args: &[&str]| crate::s3::cli(&p, &url, prefix, args);
    let gate = Gate::default();
    gate.set(true);
    let gate_url = gate.serve(Log::default());
    let origin = format!("http://{}/{}/{prefix}", public.addr, crate::s3::BUCKET);
    let nginx = Nginx::start_servers(|addr, dir| {
        ["dev", "prod"]
            .iter()
            .map(|env| {
                format!(
                    "server {{\n\
                     listen {addr};\n\
                     server_name {env}.localhost;\n\
                     access_log {dir}/access.log status;\n\
                     location /static/ {{ proxy_pass {origin}/assets/; }}\n\
                     location = /gate {{ proxy_pass {gate_url}; }}\n\
                     location = /tick {{ proxy_pass {gate_url}; }}\n\
                     location = / {{ proxy_pass {origin}/site/{env}/index.html; }}\n\
                     location / {{ proxy_pass {origin}/site/{env}/; }}\n\
                     }}\n",
                    dir = dir.display()
                )
            })
            .collect()
    });
    let object = |key: &str| fs::read(s3.object_path(&format!("{prefix}/{key}"))).unwrap();
    vite_scenario(&chromium, &p, &cli, (&nginx, &gate), &object);
}

/// The Vite fixture published three times with changes through `cli`,
/// promoted dev → prod, then rolled back, each page loaded through
/// `nginx`; `object(key)` reads a stored object's bytes.
fn vite_scenario(
    chromium: &Path,
    p: &Project,
    cli: Cli<'_>,
    (nginx, gate): (&Nginx, &Gate),
    object: &dyn Fn(&str) -> Vec<u8>,
) {
    let chromium = chromium.to_owned();
    let ok = |args: &[&str]| crate::util::success(&mut cli(args));
    p.write("app/main.py", "print('app')\n");
    let log = nginx_log(nginx);
    let ran = |n: u32| {
        [
            format!("id=\"out\">ran {n}</p>"),
            format!("data-lazy=\"loaded {n}\""),
        ]
    };
    let check = |env: &str, n: u32, what: &str| {
        let want = ran(n);
        let want: Vec<&str> = want.iter().map(String::as_str).collect();
        check_site(&chromium, nginx, &log, env, what, &want)
    };

    let mut releases = Vec::new();
    vite_release(p, 1);
    releases.push(publish(cli, "dev"));
    check("dev", 1, "release 1 in dev");
    ok(&["promote", &releases[0], "--to", "prod"]);
    check("prod", 1, "release 1 in prod");

    vite_release(p, 2);
    releases.push(publish(cli, "dev"));
    check("dev", 2, "release 2 in dev");
    ok(&["promote", &releases[1], "--to", "prod"]);
    check("prod", 2, "release 2 in prod");

    // A page opened before a deploy: it waits at the gate while release 3
    // goes live in dev, then imports its lazy chunk, release 2's.
    vite_release(p, 3);
    gate.set(false);
    let from = requests(&log, 0).len();
    let arrived = gate.1.load(Ordering::SeqCst);
    let url = format!("http://dev.localhost:{}/", nginx.addr.port());
    let opened = std::thread::scope(|s| {
        let page = s.spawn(|| dump_dom(&chromium, &url));
        let deadline = Instant::now() + Duration::from_secs(60);
        while gate.1.load(Ordering::SeqCst) == arrived {
            assert!(Instant::now() < deadline, "the page never reached the gate");
            std::thread::sleep(Duration::from_millis(20));
        }
        releases.push(publish(cli, "dev"));
        gate.set(true);
        page.join().unwrap()
    });
    check_load(
        &log,
        from,
        "dev",
        "a page opened before release 3",
        &opened,
        &["ran 2", "loaded 2"],
    );
    assert!(
        requests(&log, from)
            .iter()
            .any(|(_, _, u)| u.contains("lazy-rel2.js")),
        "release 2's lazy chunk was not what the old page loaded"
    );
    check("dev", 3, "release 3 in dev");
    check("prod", 2, "prod still on release 2");

    // Rollback: prod serves release 1's entry again, byte for byte.
    ok(&["rollback", "prod"]);
    let hex = |m: &str| m.strip_prefix("sha256:").unwrap().to_owned();
    let live = object("site/prod/index.html");
    let r1 = object(&format!("sites/{}/index.html", hex(&releases[0])));
    assert_eq!(
        live, r1,
        "prod's index.html is release 1's after the rollback"
    );
    check("prod", 1, "prod rolled back to release 1");
    // Each release's entries stay stored under its own prefix.
    for m in &releases {
        object(&format!("sites/{}/index.html", hex(m)));
    }
}

/// The path of nginx's access log (`site_nginx`'s servers write it).
pub fn nginx_log(nginx: &Nginx) -> std::path::PathBuf {
    nginx.dir().join("access.log")
}

const SW_SITE: &str = "[app]\ndir = \"app\"\n[assets]\ndir = \"static\"\n\
                       [site]\nentries = [\"index.html\", \"sw.js\"]\n\
                       [environments]\norder = [\"prod\"]\n";

/// A page that registers `/sw.js`, waits until the newest worker controls
/// it, and writes the version that worker answers with.
const SW_PAGE: &str = "let done = false;\n\
// A fetch always pending keeps the load's virtual time from running out\n\
// while the worker installs.\n\
(async () => { while (!done) await fetch('/tick'); })();\n\
(async () => {\n\
  const out = document.getElementById('out');\n\
  try {\n\
    const reg = await navigator.serviceWorker.register('/sw.js');\n\
    await reg.update();\n\
    for (let i = 0; i < 100; i++) {\n\
      const c = navigator.serviceWorker.controller;\n\
      if (!reg.installing && !reg.waiting && reg.active && reg.active.state === 'activated' && c === reg.active) {\n\
        const version = await new Promise((r) => {\n\
          navigator.serviceWorker.addEventListener('message', (e) => r(e.data), { once: true });\n\
          c.postMessage('version?');\n\
        });\n\
        out.textContent = 'sw ' + version;\n\
        break;\n\
      }\n\
      await fetch('/tick');\n\
    }\n\
    if (out.textContent === 'waiting') {\n\
      const c = navigator.serviceWorker.controller;\n\
      out.textContent = `timed out: installing ${reg.installing?.state}, waiting ${reg.waiting?.state}, \
active ${reg.active?.state}, controlled ${!!c}, by the active one ${c === reg.active}`;\n\
    }\n\
  } catch (e) {\n\
    out.textContent = 'error ' + e;\n\
  }\n\
  done = true;\n\
})();\n";

const SW: &str = "importScripts('sw-lib.js');\n\
self.addEventListener('install', () => self.skipWaiting());\n\
self.addEventListener('activate', (e) => e.waitUntil(self.clients.claim()));\n\
// No fetch handler: a worker handling fetches activates only once the old\n\
// one has none in flight, which a page that keeps fetching never lets be.\n\
self.addEventListener('message', (e) => e.source.postMessage(self.VERSION));\n";

#[test]
fn a_service_worker_is_updated_across_two_releases() {
    let Some(chromium) = chromium() else { return };
    let p = Project::with_config(SW_SITE);
    p.write("app/main.py", "print('app')\n");
    p.write(
        "static/index.html",
        "<!doctype html><html><body><p id=\"out\">waiting</p>\
         <script src=\"js/page.js\"></script></body></html>\n",
    );
    p.write("static/js/page.js", SW_PAGE);
    p.write("static/sw.js", SW);
    p.write("static/sw-lib.js", "self.VERSION = 'v1';\n");
    let v1 = publish(&|a| p.cmd(a), "prod");
    let m: serde_json::Value =
        serde_json::from_slice(&fs::read(p.path().join(".verbatim/build/manifest.json")).unwrap())
            .unwrap();
    crate::schema::validate(&m, "a manifest with entry files");
    let sw = fs::read_to_string(p.store().join("site/prod/sw.js")).unwrap();
    assert!(sw.starts_with("importScripts('/static/sw-lib."), "{sw}");

    let gate = Gate::default();
    gate.set(true);
    let nginx = site_nginx(&p.store(), &["prod"], &gate.serve(Log::default()));
    let log = nginx_log(&nginx);
    let profile = tempfile::tempdir().unwrap();
    let url = format!("http://prod.localhost:{}/", nginx.addr.port());
    let dom = dump_dom_in(&chromium, &url, profile.path());
    check_load(
        &log,
        0,
        "prod",
        "release 1",
        &dom,
        &["<p id=\"out\">sw v1</p>"],
    );

    p.write("static/sw-lib.js", "self.VERSION = 'v2';\n");
    let v2 = publish(&|a| p.cmd(a), "prod");
    assert_ne!(v1, v2);
    let from = requests(&log, 0).len();
    let dom = dump_dom_in(&chromium, &url, profile.path());
    check_load(
        &log,
        from,
        "prod",
        "release 2, same browser",
        &dom,
        &["<p id=\"out\">sw v2</p>"],
    );
    let fetched: BTreeMap<String, u16> = requests(&log, from)
        .into_iter()
        .map(|(_, s, u)| (u, s))
        .collect();
    assert!(fetched.contains_key("/sw.js"), "{fetched:?}");
}

/// A library that loads its own files at run time, as TinyMCE and MathJax
/// do: the URL of its plugin is built from the loader's own `src`.
const LOADER: &str = "(function () {\n\
  const base = document.currentScript.src.replace(/[^/]*$/, '');\n\
  const s = document.createElement('script');\n\
  s.src = base + 'plugins/hello/plugin.js';\n\
  document.head.appendChild(s);\n\
})();\n";

#[test]
fn a_run_time_loader_warns_then_loads_as_the_warning_says() {
    let Some(chromium) = chromium() else { return };
    let config = "[app]\ndir = \"app\"\n[assets]\ndir = \"static\"\n[site]\n\
                  entries = [\"index.html\"]\n[environments]\norder = [\"prod\"]\n";
    let p = Project::with_config(config);
    p.write("app/main.py", "print('app')\n");
    let page = |module: &str| {
        format!(
            "<!doctype html><html><head><script src=\"vendor/lib/loader.js\"></script></head>\
             <body><p id=\"plugin\"></p><p id=\"data\"></p>{module}</body></html>\n"
        )
    };
    p.write("static/index.html", page(""));
    p.write("static/vendor/lib/loader.js", LOADER);
    p.write(
        "static/vendor/lib/plugins/hello/plugin.js",
        "document.getElementById('plugin').textContent = 'plugin loaded';\n",
    );
    p.write("static/vendor/wasm/glue.js", "self.glue = 1;\n");
    p.write("static/vendor/wasm/data.txt", "ok\n");
    p.write(
        "static/vendor/wasm/index.html",
        "<script src=\"glue.js\"></script>\n",
    );

    // Without hash_dirs: the build passes (and verbatim-dirs.js is not
    // made), but says which line to add for each directory.
    let out = p.run(&["build"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("`hash_dirs = [\"vendor/lib\"]` in [assets]"),
        "{stderr}"
    );
    assert!(
        stderr.contains("`hash_dirs = [\"vendor/wasm\"]` in [assets]"),
        "{stderr}"
    );

    // The page reads vendor/wasm's URL from verbatim-dirs.js, which only
    // hash_dirs makes.
    p.write(
        "static/index.html",
        page(
            "<script type=\"module\">\n\
             import { dirs } from '/static/verbatim-dirs.js';\n\
             const text = await (await fetch(dirs['vendor/wasm'] + 'data.txt')).text();\n\
             document.getElementById('data').textContent = 'data ' + text.trim();\n\
             </script>",
        ),
    );
    let err = p.fails(&["build"], 1);
    assert!(
        err.contains("only when `assets.hash_dirs` lists a directory"),
        "{err}"
    );
    // As the warnings say.
    p.write(
        "verbatim.toml",
        config.replace(
            "[site]",
            "hash_dirs = [\"vendor/lib\", \"vendor/wasm\"]\n[site]",
        ),
    );
    let out = p.run(&["publish", "--env", "prod"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(!stderr.contains("hash_dirs = ["), "still warned: {stderr}");
    let nginx = site_nginx(&p.store(), &["prod"], "http://127.0.0.1:9");
    let log = nginx_log(&nginx);
    check_site(
        &chromium,
        &nginx,
        &log,
        "prod",
        "hash_dirs",
        &[
            "<p id=\"plugin\">plugin loaded</p>",
            "<p id=\"data\">data ok</p>",
        ],
    );
    let seen = requests(&log, 0);
    assert!(
        seen.iter()
            .any(|(_, _, u)| u.starts_with("/static/vendor/lib.")
                && u.ends_with("/plugins/hello/plugin.js")),
        "{seen:?}"
    );
}
