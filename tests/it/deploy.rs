//! `verbatim deploy` on a host root: SIGKILL at random points and inside
//! each hook, two deploys at once, releases modified after unpack, keep-N,
//! failing hooks, going back without a store, deploying what is already
//! current, shared paths, and a `current` verbatim did not make.
//!
//! Releases are published into the project's local store from trees the
//! test holds, so a release directory can be compared with exactly what
//! went in. Every hook is one script (`HOOK`) run with `--hook-env
//! VT_CTL=<dir>`: it logs each run to `<dir>/log` and its variables to
//! `<dir>/env`, pauses while `<dir>/hold-<hook>` exists (after writing its
//! pid to `<dir>/held-<hook>`), sleeps `$VT_SLEEP` when set, and fails
//! when `<dir>/fail-<hook>` exists.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crate::util::{bounded, race, Project};

const HOST: &str = "web-1";

/// The hook script; `$1` is the hook's name.
const HOOK: &str = r#"c="$VT_CTL"
echo "$1 start $VERBATIM_MANIFEST" >> "$c/log"
echo "$1 $VERBATIM_MANIFEST env=$VERBATIM_ENV prev=$VERBATIM_PREVIOUS_MANIFEST dir=$VERBATIM_RELEASE_DIR root=$VERBATIM_ROOT pwd=$(pwd -P)" >> "$c/env"
if [ -e "$c/hold-$1" ]; then
    echo $$ > "$c/held.tmp" && mv "$c/held.tmp" "$c/held-$1"
    while [ -e "$c/hold-$1" ]; do sleep 0.01; done
fi
[ -z "$VT_SLEEP" ] || sleep "$VT_SLEEP"
echo "$1 end $VERBATIM_MANIFEST" >> "$c/log"
[ ! -e "$c/fail-$1" ]
"#;

/// `[deploy.hooks]` running `HOOK` for all three hooks.
const HOOKS: &str = "[deploy.hooks]\n\
    pre_activate = 'sh \"$VT_CTL/hook.sh\" pre_activate'\n\
    post_activate = 'sh \"$VT_CTL/hook.sh\" post_activate'\n\
    check = 'sh \"$VT_CTL/hook.sh\" check'\n";

/// One entry of a tree, as the test wrote it or as found on disk (symlinks
/// are not followed; of a file's mode only the exec bit counts).
#[derive(Clone, PartialEq, Eq)]
enum Node {
    Dir,
    File { bytes: Vec<u8>, exec: bool },
    Link(String),
}

impl fmt::Debug for Node {
    /// Big files print as their length and first bytes.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Node::Dir => write!(f, "Dir"),
            Node::File { bytes, exec } => {
                let head = String::from_utf8_lossy(&bytes[..bytes.len().min(24)]);
                write!(f, "File({} bytes {head:?}, exec {exec})", bytes.len())
            }
            Node::Link(t) => write!(f, "Link({t})"),
        }
    }
}

type Tree = BTreeMap<String, Node>;

fn file(s: impl AsRef<[u8]>) -> Node {
    Node::File {
        bytes: s.as_ref().to_vec(),
        exec: false,
    }
}

fn exe(s: impl AsRef<[u8]>) -> Node {
    Node::File {
        bytes: s.as_ref().to_vec(),
        exec: true,
    }
}

fn link(t: &str) -> Node {
    Node::Link(t.to_owned())
}

/// A tree of `entries`, with their parent directories.
fn tree(entries: Vec<(&str, Node)>) -> Tree {
    let mut t = Tree::new();
    for (path, node) in entries {
        let mut parent = Path::new(path).parent();
        while let Some(p) = parent.filter(|p| !p.as_os_str().is_empty()) {
            t.insert(p.to_str().unwrap().to_owned(), Node::Dir);
            parent = p.parent();
        }
        t.insert(path.to_owned(), node);
    }
    t
}

/// A small release whose files all say `name`.
fn small(name: &str) -> Tree {
    tree(vec![
        (
            "index.html",
            file(format!("<title>release {name}</title>\n")),
        ),
        ("bin/run", exe(format!("#!/bin/sh\necho {name}\n"))),
        ("lib/x.txt", file(format!("x of {name}\n"))),
        ("link", link("index.html")),
    ])
}

/// What is under `dir`, relative paths, without following symlinks.
fn read_tree(dir: &Path) -> Tree {
    let mut t = Tree::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap_or_else(|e| panic!("{}: {e}", d.display())) {
            let path = e.unwrap().path();
            let rel = path.strip_prefix(dir).unwrap().to_str().unwrap().to_owned();
            let meta = fs::symlink_metadata(&path).unwrap();
            let node = if meta.file_type().is_symlink() {
                Node::Link(fs::read_link(&path).unwrap().to_str().unwrap().to_owned())
            } else if meta.is_dir() {
                stack.push(path.clone());
                Node::Dir
            } else {
                assert!(meta.is_file(), "{}: not a file", path.display());
                Node::File {
                    bytes: fs::read(&path).unwrap(),
                    exec: meta.permissions().mode() & 0o100 != 0,
                }
            };
            t.insert(rel, node);
        }
    }
    t
}

/// Writes `tree` under `dir` (parents come before children in its order).
fn write_tree(dir: &Path, tree: &Tree) {
    for (rel, node) in tree {
        let path = dir.join(rel);
        match node {
            Node::Dir => fs::create_dir_all(&path).unwrap(),
            Node::File { bytes, exec } => {
                fs::write(&path, bytes).unwrap();
                let mode = if *exec { 0o755 } else { 0o644 };
                fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
            }
            Node::Link(t) => std::os::unix::fs::symlink(t, &path).unwrap(),
        }
    }
}

/// splitmix64: a seeded generator for kill delays and incompressible bytes.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// `len` bytes that gzip cannot shrink, the same for the same seed.
fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut rng = Rng(seed);
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        out.extend_from_slice(&rng.next().to_le_bytes());
    }
    out.truncate(len);
    out
}

/// A project publishing into its local store, and a host: `root/` is the
/// deploy root, `ctl/` holds the hook script and what controls it.
struct Host {
    p: Project,
    tmp: tempfile::TempDir,
}

impl Host {
    /// `deploy` is the body of the `[deploy]` section.
    fn new(deploy: &str) -> Host {
        let p = Project::with_config(&format!("[app]\ndir = \"app\"\n\n[deploy]\n{deploy}"));
        let tmp = tempfile::tempdir().expect("temp dir");
        fs::create_dir(tmp.path().join("ctl")).unwrap();
        fs::write(tmp.path().join("ctl/hook.sh"), HOOK).unwrap();
        Host { p, tmp }
    }

    fn root(&self) -> PathBuf {
        self.tmp.path().join("root")
    }

    fn ctl(&self, name: &str) -> PathBuf {
        self.tmp.path().join("ctl").join(name)
    }

    fn set(&self, name: &str) {
        fs::write(self.ctl(name), "").unwrap();
    }

    fn unset(&self, name: &str) {
        fs::remove_file(self.ctl(name)).unwrap();
    }

    /// Publishes `tree` as the whole app; returns the manifest id.
    fn publish(&self, tree: &Tree) -> String {
        let app = self.p.app();
        fs::remove_dir_all(&app).unwrap();
        fs::create_dir(&app).unwrap();
        write_tree(&app, tree);
        self.p.json(&["publish"])["manifest"]
            .as_str()
            .expect("publish prints the manifest")
            .to_owned()
    }

    fn promote(&self, m: &str, env: &str) {
        self.p.ok(&["promote", m, "--to", env]);
    }

    /// `verbatim deploy ARGS… --root ROOT --store STORE --host-id web-1
    /// --hook-env VT_CTL=…`, in the project.
    fn deploy_in(&self, root: &Path, args: &[&str]) -> Command {
        let mut c = self.p.cmd(&["deploy"]);
        c.args(args)
            .arg("--root")
            .arg(root)
            .arg("--store")
            .arg(self.p.store())
            .args(["--host-id", HOST])
            .arg("--hook-env")
            .arg(format!("VT_CTL={}", self.tmp.path().join("ctl").display()));
        c
    }

    fn deploy(&self, args: &[&str]) -> Command {
        self.deploy_in(&self.root(), args)
    }

    /// `deploy ARGS… --json`, which must exit `code`: its JSON document
    /// and its stderr.
    fn expect(&self, args: &[&str], code: i32) -> (serde_json::Value, String) {
        expect(self.deploy(args).arg("--json"), code)
    }

    /// `deploy ARGS… --json`, which must succeed.
    fn ok(&self, args: &[&str]) -> serde_json::Value {
        self.expect(args, 0).0
    }

    /// The manifest `current` names; `None` when there is none. Anything
    /// but a link to exactly `releases/<64 hex>` fails the test.
    fn current(&self) -> Option<String> {
        let path = self.root().join("current");
        let target = match fs::read_link(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
            Err(e) => panic!("{}: {e}", path.display()),
        };
        let t = target.to_str().unwrap();
        let hex = t
            .strip_prefix("releases/")
            .filter(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
            .filter(|h| !h.bytes().any(|b| b.is_ascii_uppercase()))
            .unwrap_or_else(|| panic!("current -> {t}, not releases/<64 hex>"));
        Some(format!("sha256:{hex}"))
    }

    fn release_dir(&self, m: &str) -> PathBuf {
        self.root().join("releases").join(hex(m))
    }

    /// The manifests with a directory in `releases/`.
    fn release_dirs(&self) -> BTreeSet<String> {
        self.releases_where(|name, is_dir| is_dir.then(|| name.to_owned()))
    }

    /// The manifests with a `releases/<hex>.json`.
    fn release_manifests(&self) -> BTreeSet<String> {
        self.releases_where(|name, is_dir| {
            name.strip_suffix(".json")
                .filter(|_| !is_dir)
                .map(str::to_owned)
        })
    }

    fn releases_where(&self, f: impl Fn(&str, bool) -> Option<String>) -> BTreeSet<String> {
        fs::read_dir(self.root().join("releases"))
            .unwrap()
            .filter_map(|e| {
                let e = e.unwrap();
                let name = e.file_name().into_string().unwrap();
                f(&name, e.file_type().unwrap().is_dir())
            })
            .filter(|hex| !hex.starts_with('.'))
            .map(|hex| format!("sha256:{hex}"))
            .collect()
    }

    /// The file records in `.verbatim/releases/`.
    fn records(&self) -> BTreeSet<String> {
        fs::read_dir(self.root().join(".verbatim/releases"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .map(|n| format!("sha256:{}", n.strip_suffix(".json").unwrap()))
            .collect()
    }

    /// What an interrupted deploy leaves: anything in `releases/` but
    /// `<hex>/` and `<hex>.json` (temp names), and anything in the root
    /// but the layout (`current.tmp`).
    fn leftovers(&self) -> Vec<String> {
        let is_hex =
            |h: &str| h.len() == 64 && h.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        // A deploy killed before it made the root's layout left nothing.
        let names = |dir: &Path| -> Vec<(String, bool)> {
            let listing = match fs::read_dir(dir) {
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Vec::new(),
                other => other.unwrap(),
            };
            listing
                .map(|e| {
                    let e = e.unwrap();
                    (
                        e.file_name().into_string().unwrap(),
                        e.file_type().unwrap().is_dir(),
                    )
                })
                .collect()
        };
        let mut out: Vec<String> = names(&self.root().join("releases"))
            .into_iter()
            .filter(|(n, dir)| match n.strip_suffix(".json") {
                Some(h) => *dir || !is_hex(h),
                None => !*dir || !is_hex(n),
            })
            .map(|(n, _)| format!("releases/{n}"))
            .collect();
        out.extend(
            names(&self.root())
                .into_iter()
                .map(|(n, _)| n)
                .filter(|n| ![".verbatim", "current", "releases", "shared"].contains(&n.as_str())),
        );
        out
    }

    /// `.verbatim/history.jsonl`, every line parsed.
    fn history(&self) -> Vec<serde_json::Value> {
        let path = self.root().join(".verbatim/history.jsonl");
        fs::read_to_string(&path)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?}: {e}")))
            .collect()
    }

    /// The host's report to environment `env`.
    fn report(&self, env: &str) -> serde_json::Value {
        let path = self.p.store().join(format!("envs/{env}/hosts/{HOST}.json"));
        let bytes = fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        serde_json::from_slice(&bytes).unwrap()
    }

    /// The hook log, line by line; emptied.
    fn take_log(&self) -> Vec<String> {
        let text = fs::read_to_string(self.ctl("log")).unwrap_or_default();
        let _ = fs::remove_file(self.ctl("log"));
        text.lines().map(str::to_owned).collect()
    }

    /// Asserts that `current` names `m` and that its release directory
    /// holds exactly `tree`.
    fn assert_live(&self, m: &str, tree: &Tree) {
        assert_eq!(self.current().as_deref(), Some(m), "current");
        assert_eq!(read_tree(&self.release_dir(m)), *tree, "release {m}");
    }
}

fn hex(m: &str) -> &str {
    m.strip_prefix("sha256:").expect("a sha256 manifest id")
}

/// Runs `cmd` (bounded: a hang fails), asserts its exit code; returns its
/// JSON document (`Null` when stdout is empty) and its stderr.
fn expect(cmd: &mut Command, code: i32) -> (serde_json::Value, String) {
    let out = bounded(cmd, 60).out;
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(
        out.status.code(),
        Some(code),
        "{cmd:?}: wrong exit code; stderr:\n{stderr}"
    );
    let v = if out.stdout.is_empty() {
        serde_json::Value::Null
    } else {
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not JSON ({e}): {}",
                String::from_utf8_lossy(&out.stdout)
            )
        })
    };
    (v, stderr)
}

/// `hook start m`, `hook end m` for each hook of a deploy that passed.
fn hook_runs(m: &str, hooks: &[&str]) -> Vec<String> {
    hooks
        .iter()
        .flat_map(|h| [format!("{h} start {m}"), format!("{h} end {m}")])
        .collect()
}

const ALL: [&str; 3] = ["pre_activate", "post_activate", "check"];

/// Starts `cmd` with stdin and stdout closed and stderr to `stderr`.
fn spawn(cmd: &mut Command, stderr: &Path) -> Child {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(fs::File::create(stderr).unwrap())
        .spawn()
        .unwrap_or_else(|e| panic!("starting {cmd:?}: {e}"))
}

/// Waits for `child` to exit within `secs`, killing it and failing if not.
fn wait(child: &mut Child, secs: u64) -> ExitStatus {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("verbatim did not exit within {secs} s (killed)");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Waits until `ready()`, failing if `child` exits first or 30 s pass.
fn wait_until(what: &str, child: &mut Child, ready: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !ready() {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("verbatim exited ({status}) before {what}");
        }
        assert!(Instant::now() < deadline, "{what}: not within 30 s");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The pid a held hook wrote to `path`.
fn held_pid(path: &Path) -> libc::pid_t {
    fs::read_to_string(path)
        .unwrap()
        .trim()
        .parse()
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Ends the process group of hook process `pid` (verbatim, killed, can no
/// longer do it) and waits until `pid` has gone.
fn end_hook_group(pid: libc::pid_t) {
    // SAFETY: getpgid and killpg take plain integers.
    let pgid = unsafe { libc::getpgid(pid) };
    assert!(pgid > 1, "hook {pid}: {}", std::io::Error::last_os_error());
    // SAFETY: as above.
    assert_ne!(
        pgid,
        unsafe { libc::getpgrp() },
        "the hook shares our group"
    );
    // SAFETY: as above; the group is the hook's own, never ours.
    unsafe { libc::killpg(pgid, libc::SIGKILL) };
    let deadline = Instant::now() + Duration::from_secs(5);
    while running(pid) {
        assert!(Instant::now() < deadline, "hook {pid} outlived SIGKILL");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Whether `pid` runs (exists and is not a zombie).
fn running(pid: libc::pid_t) -> bool {
    fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        let state = stat.rsplit_once(')').map(|(_, r)| r.trim_start());
        !state.is_some_and(|s| s.starts_with('Z') || s.starts_with('X'))
    })
}

/// The seed of the kill delays: `VERBATIM_TEST_SEED`, else the clock.
fn seed() -> u64 {
    let seed = std::env::var("VERBATIM_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        });
    eprintln!("seed {seed} (VERBATIM_TEST_SEED={seed} replays the same kill delays)");
    seed
}

#[test]
fn deploy_killed_at_random_points_leaves_a_complete_release_and_reruns() {
    let mut rng = Rng(seed());
    // keep = 1 over three releases: every deploy fetches and prunes.
    let h = Host::new(&format!("keep = 1\n{HOOKS}"));
    let releases: Vec<(String, Tree)> = ["A", "B", "C"]
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let seed = i as u64 * 2;
            let mut t = small(name);
            // 2 MiB that gzip cannot shrink: downloading and unpacking
            // them takes a while.
            t.insert("big".into(), Node::Dir);
            t.insert("big/0.bin".into(), file(noise(seed, 1 << 20)));
            t.insert("big/1.bin".into(), file(noise(seed + 1, 1 << 20)));
            let m = h.publish(&t);
            (m, t)
        })
        .collect();
    let tree_of = |m: &str| &releases.iter().find(|(id, _)| id == m).unwrap().1;
    let sleep = ["--hook-env", "VT_SLEEP=0.03"];

    // How long one whole deploy takes here, on a root of its own.
    let start = Instant::now();
    expect(
        &mut h.deploy_in(
            &h.tmp.path().join("timing"),
            &[&releases[0].0, sleep[0], sleep[1], "--json"],
        ),
        0,
    );
    let whole = start.elapsed();
    eprintln!("one deploy takes {whole:?}");

    // Kills in all, kills that left temp files, kills after the flip.
    let (mut killed, mut temps, mut flipped) = (0, 0, 0);
    let mut deployed = false;
    for i in 0..20 {
        let (m, t) = &releases[i % releases.len()];
        let before = h.current();
        let delay = Duration::from_micros(rng.below(whole.as_micros() as u64 * 5 / 4));
        let err = h.tmp.path().join("killed.err");
        let mut child = spawn(&mut h.deploy(&[m, sleep[0], sleep[1]]), &err);
        std::thread::sleep(delay);
        let _ = child.kill(); // SIGKILL
        let status = wait(&mut child, 30);
        let was_killed = status.signal() == Some(libc::SIGKILL);
        killed += usize::from(was_killed);
        assert!(
            was_killed || status.success(),
            "iteration {i}: {status}:\n{}",
            fs::read_to_string(&err).unwrap()
        );
        match h.current() {
            None => assert!(
                !deployed,
                "iteration {i} (killed after {delay:?}): current is gone"
            ),
            Some(c) => {
                flipped += usize::from(was_killed && before.as_ref() != Some(&c));
                assert_eq!(
                    read_tree(&h.release_dir(&c)),
                    *tree_of(&c),
                    "iteration {i} (killed after {delay:?}): current is not a complete release"
                );
            }
        }

        temps += usize::from(was_killed && !h.leftovers().is_empty());

        let (v, stderr) = h.expect(&[m, sleep[0], sleep[1]], 0);
        deployed = true;
        assert_eq!(v["manifest"], m.as_str());
        h.assert_live(m, t);
        assert_eq!(
            h.leftovers(),
            Vec::<String>::new(),
            "iteration {i}: left behind"
        );
        for r in h.release_dirs() {
            assert_eq!(read_tree(&h.release_dir(&r)), *tree_of(&r), "release {r}");
        }
        assert!(!stderr.contains("unreadable"), "{stderr}");
        if v["result"] == "activated" {
            let last = h.history().pop().expect("a history");
            assert_eq!(last["outcome"], "activated");
            assert_eq!(last["manifest"], m.as_str());
        }
    }
    eprintln!(
        "{killed} of 20 deploys killed: {temps} left temp files, {flipped} had flipped current"
    );
    assert!(
        killed >= 5,
        "only {killed} of 20 deploys were killed before they finished"
    );
}

#[test]
fn deploy_killed_inside_each_hook_then_rerun_completes() {
    for hook in ALL {
        let h = Host::new(HOOKS);
        let (ta, tb) = (small("A"), small("B"));
        let (a, b) = (h.publish(&ta), h.publish(&tb));
        h.ok(&[&a]);
        h.set(&format!("hold-{hook}"));
        let held = h.ctl(&format!("held-{hook}"));
        let mut child = spawn(&mut h.deploy(&[&b]), &h.ctl("killed.err"));
        wait_until(&format!("{hook} started"), &mut child, || held.exists());
        child.kill().unwrap(); // SIGKILL
        assert_eq!(wait(&mut child, 30).signal(), Some(libc::SIGKILL));
        end_hook_group(held_pid(&held));
        h.unset(&format!("hold-{hook}"));

        // Killed before the flip: A; after it: B, complete either way.
        match hook {
            "pre_activate" => h.assert_live(&a, &ta),
            _ => h.assert_live(&b, &tb),
        }
        let v = h.ok(&[&b]);
        assert_eq!(v["manifest"], b.as_str(), "{hook}");
        h.assert_live(&b, &tb);
        assert_eq!(h.leftovers(), Vec::<String>::new(), "{hook}");
        assert_eq!(h.release_dirs(), BTreeSet::from([a.clone(), b.clone()]));
    }
}

/// A deploy killed after the flip (in `post_activate` or `check`) leaves
/// `current` on a release whose check never passed. The next deploy puts
/// `current` back on the last checked release first (its activation marker
/// says what that was), then deploys in full: the rerun of the same deploy
/// runs every hook and checks it, never calling it `unchanged`.
#[test]
fn deploy_rerun_after_a_kill_in_check_runs_the_hooks_again() {
    let h = Host::new(HOOKS);
    let (a, b) = (h.publish(&small("A")), h.publish(&small("B")));
    h.promote(&a, "dev");
    h.ok(&["dev"]);
    h.promote(&b, "dev");
    h.set("hold-check");
    let mut child = spawn(&mut h.deploy(&["dev"]), &h.ctl("killed.err"));
    let held = h.ctl("held-check");
    wait_until("check started", &mut child, || held.exists());
    child.kill().unwrap();
    wait(&mut child, 30);
    end_hook_group(held_pid(&held));
    h.unset("hold-check");
    h.take_log();

    let v = h.ok(&["dev"]);
    assert_eq!(h.current().as_deref(), Some(b.as_str()));
    assert_eq!(v["result"], "activated", "the check of {b} never passed");
    let log = h.take_log();
    assert!(log.contains(&format!("check end {b}")), "{log:?}");
    let history = h.history();
    let recovered = &history[history.len() - 2];
    assert_eq!(recovered["manifest"], b.as_str(), "{recovered}");
    assert_eq!(recovered["outcome"], "failed", "{recovered}");
    assert_eq!(recovered["current"], a.as_str(), "{recovered}");
    assert_eq!(h.history().last().unwrap()["manifest"], b.as_str());
}

#[test]
fn deploy_second_run_waits_for_the_lock_or_exits_7_with_no_wait() {
    let h = Host::new(HOOKS);
    let (a, b) = (h.publish(&small("A")), h.publish(&small("B")));
    h.ok(&[&a]);
    h.take_log();

    h.set("hold-pre_activate");
    let mut first = spawn(&mut h.deploy(&[&b]), &h.ctl("first.err"));
    let held = h.ctl("held-pre_activate");
    wait_until("pre_activate started", &mut first, || held.exists());
    let lock = h.root().join(".verbatim/lock");

    // --no-wait: turned away at once, naming the holder.
    let (v, err) = h.expect(&[&a, "--no-wait"], 7);
    assert!(
        err.contains(&format!("{} is held by pid {}", lock.display(), first.id())),
        "{err}"
    );
    assert_eq!(v["error"]["kind"], "busy");

    // Without it: waits, saying for whom, then runs.
    let second_err = h.ctl("second.err");
    let mut second = spawn(&mut h.deploy(&[&a]), &second_err);
    let waiting = format!("waiting for pid {} to release", first.id());
    wait_until("the second deploy says it waits", &mut second, || {
        fs::read_to_string(&second_err).is_ok_and(|e| e.contains(&waiting))
    });
    std::thread::sleep(Duration::from_millis(300));
    assert!(second.try_wait().unwrap().is_none(), "did not wait");
    h.unset("hold-pre_activate");
    for (name, child) in [("first", &mut first), ("second", &mut second)] {
        let status = wait(child, 60);
        assert!(
            status.success(),
            "{name}: {status}\n{}",
            fs::read_to_string(h.ctl(&format!("{name}.err"))).unwrap()
        );
    }
    let mut expected = hook_runs(&b, &ALL);
    expected.extend(hook_runs(&a, &ALL));
    assert_eq!(h.take_log(), expected, "hook runs interleaved");
    h.assert_live(&a, &small("A"));
    let outcomes: Vec<_> = h
        .history()
        .iter()
        .map(|e| (e["manifest"].clone(), e["outcome"].clone()))
        .collect();
    assert_eq!(
        outcomes,
        [a.as_str(), b.as_str(), a.as_str()].map(|m| (m.into(), "activated".into()))
    );
}

#[test]
fn deploy_racing_runs_take_turns() {
    let h = Host::new(HOOKS);
    let (a, b, c) = (
        h.publish(&small("A")),
        h.publish(&small("B")),
        h.publish(&small("C")),
    );
    let slow = ["--hook-env", "VT_SLEEP=0.1"];

    // Two at once on a fresh root: both succeed, one after the other.
    let outs = race([
        h.deploy(&[&a, slow[0], slow[1]]),
        h.deploy(&[&b, slow[0], slow[1]]),
    ]);
    for o in &outs {
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    let log = h.take_log();
    let (first, second) = if log.first() == Some(&format!("pre_activate start {a}")) {
        (&a, &b)
    } else {
        (&b, &a)
    };
    let mut expected = hook_runs(first, &ALL);
    expected.extend(hook_runs(second, &ALL));
    assert_eq!(log, expected, "hook runs interleaved");
    assert_eq!(h.current().as_ref(), Some(second));

    // Two at once with --no-wait: one runs, the other exits 7.
    let outs = race([
        h.deploy(&[&c, "--no-wait", slow[0], slow[1]]),
        h.deploy(&[&c, "--no-wait", slow[0], slow[1]]),
    ]);
    let mut codes: Vec<_> = outs.iter().map(|o| o.status.code()).collect();
    codes.sort();
    assert_eq!(codes, [Some(0), Some(7)]);
    let busy = outs.iter().find(|o| o.status.code() == Some(7)).unwrap();
    assert!(
        String::from_utf8_lossy(&busy.stderr).contains("is held by"),
        "{}",
        String::from_utf8_lossy(&busy.stderr)
    );
    assert_eq!(h.take_log(), hook_runs(&c, &ALL));
    h.assert_live(&c, &small("C"));
}

#[test]
fn deploy_refetches_a_release_modified_after_unpack() {
    let h = Host::new("keep = 5\n");
    let (ta, tb) = (small("A"), small("B"));
    let (a, b) = (h.publish(&ta), h.publish(&tb));
    h.ok(&[&a]);
    let dir = h.release_dir(&a);
    type Change = fn(&Path);
    let changes: [(&str, &str, Change); 5] = [
        ("content, same size", "lib/x.txt", |d| {
            fs::write(d.join("lib/x.txt"), "X of A\n").unwrap()
        }),
        ("exec bit", "bin/run", |d| {
            fs::set_permissions(d.join("bin/run"), fs::Permissions::from_mode(0o644)).unwrap()
        }),
        ("deleted", "lib/x.txt", |d| {
            fs::remove_file(d.join("lib/x.txt")).unwrap()
        }),
        ("file made a symlink", "index.html", |d| {
            fs::remove_file(d.join("index.html")).unwrap();
            std::os::unix::fs::symlink("lib/x.txt", d.join("index.html")).unwrap();
        }),
        ("symlink retargeted", "link", |d| {
            fs::remove_file(d.join("link")).unwrap();
            std::os::unix::fs::symlink("lib/x.txt", d.join("link")).unwrap();
        }),
    ];
    for (what, path, change) in changes {
        h.ok(&[&b]);
        change(&dir);
        assert_ne!(read_tree(&dir), ta, "{what}: nothing changed");
        let (v, err) = h.expect(&[&a], 0);
        assert_eq!(v["fetched"], true, "{what}: not fetched again:\n{err}");
        assert_eq!(v["result"], "activated");
        assert!(
            err.contains("was modified since it was unpacked")
                && err.contains(&format!("({path}: ")),
            "{what}: the warning does not name {path}:\n{err}"
        );
        h.assert_live(&a, &ta);
    }

    // The release directory made a symlink to an identical copy elsewhere:
    // not the directory verbatim unpacked; fetched again, the copy unused.
    h.ok(&[&b]);
    let copy = h.tmp.path().join("copy");
    fs::rename(&dir, &copy).unwrap();
    std::os::unix::fs::symlink(&copy, &dir).unwrap();
    let (v, err) = h.expect(&[&a], 0);
    assert_eq!(v["fetched"], true, "a symlinked release was used:\n{err}");
    assert!(err.contains("was modified since it was unpacked"), "{err}");
    assert!(fs::symlink_metadata(&dir).unwrap().is_dir());
    h.assert_live(&a, &ta);
    assert_eq!(read_tree(&copy), ta, "the copy was written to");

    // A file added beside the release's own is not a modification.
    h.ok(&[&b]);
    fs::create_dir(dir.join("__pycache__")).unwrap();
    fs::write(dir.join("__pycache__/x.pyc"), "bytecode").unwrap();
    let (v, err) = h.expect(&[&a], 0);
    assert_eq!(v["fetched"], false, "{err}");
    assert!(!err.contains("modified"), "{err}");
    let mut with_pyc = ta.clone();
    with_pyc.insert("__pycache__".into(), Node::Dir);
    with_pyc.insert("__pycache__/x.pyc".into(), file("bytecode"));
    h.assert_live(&a, &with_pyc);
}

#[test]
fn deploy_keeps_the_newest_live_releases_and_never_current_or_previous() {
    let h = Host::new(&format!("keep = 2\n{HOOKS}"));
    let r: Vec<String> = (1..=7).map(|i| h.publish(&small(&i.to_string()))).collect();
    let set = |ids: &[&String]| ids.iter().map(|s| (*s).clone()).collect::<BTreeSet<_>>();
    let on_disk = |expected: BTreeSet<String>, when: &str| {
        assert_eq!(h.release_dirs(), expected, "{when}: release dirs");
        assert_eq!(h.release_manifests(), expected, "{when}: manifests");
        assert_eq!(h.records(), expected, "{when}: file records");
    };
    for i in 0..5 {
        let v = h.ok(&[&r[i]]);
        let expected = if i == 0 {
            set(&[&r[0]])
        } else {
            set(&[&r[i - 1], &r[i]])
        };
        on_disk(expected, &format!("after r{}", i + 1));
        let removed: Vec<&str> = crate::util::strings(&v["removed"]);
        let want: Vec<&str> = if i >= 2 {
            vec![r[i - 2].as_str()]
        } else {
            vec![]
        };
        assert_eq!(removed, want, "r{}: removed", i + 1);
    }
    // A failed deploy (flipped back) prunes nothing and does not count.
    h.set("fail-check");
    h.expect(&[&r[5]], 6);
    h.unset("fail-check");
    assert_eq!(h.current().as_ref(), Some(&r[4]));
    assert!(h.release_dirs().is_superset(&set(&[&r[3], &r[4]])));
    let v = h.ok(&[&r[6]]);
    on_disk(set(&[&r[4], &r[6]]), "after r7");
    let removed: BTreeSet<String> = crate::util::strings(&v["removed"])
        .into_iter()
        .map(str::to_owned)
        .collect();
    assert_eq!(removed, set(&[&r[3], &r[5]]));

    // keep = 1: current and previous stay all the same.
    let h = Host::new(&format!("keep = 1\n{HOOKS}"));
    let s: Vec<String> = (1..=4)
        .map(|i| h.publish(&small(&format!("s{i}"))))
        .collect();
    for m in &s[..3] {
        h.ok(&[m]);
    }
    assert_eq!(h.release_dirs(), set(&[&s[1], &s[2]]));
    h.set("fail-check");
    h.expect(&[&s[3]], 6);
    h.unset("fail-check");
    assert!(h.release_dirs().is_superset(&set(&[&s[1], &s[2]])));
    let v = h.ok(&["--to", "previous"]);
    assert_eq!(v["manifest"], s[1].as_str());
    assert_eq!(h.current().as_ref(), Some(&s[1]));
    assert_eq!(h.release_dirs(), set(&[&s[1], &s[2]]));
    h.assert_live(&s[1], &small("s2"));
}

#[test]
fn deploy_hook_failures_leave_or_flip_back_current_and_report_failed() {
    let h = Host::new(HOOKS);
    let (a, b) = (h.publish(&small("A")), h.publish(&small("B")));
    h.promote(&a, "dev");
    let v = h.ok(&["dev"]);
    assert_eq!(
        (v["result"].as_str(), v["reported"].as_bool()),
        (Some("activated"), Some(true))
    );
    let r = h.report("dev");
    assert_eq!(r["state"], "active");
    assert_eq!(r["manifest"], a.as_str());
    assert_eq!(r["running"], a.as_str());
    assert_eq!(r["seq"], 1);
    assert_eq!(r["host"], HOST);
    h.promote(&b, "dev");
    h.take_log();

    // pre_activate fails: current untouched.
    h.set("fail-pre_activate");
    let (v, err) = h.expect(&["dev"], 6);
    h.unset("fail-pre_activate");
    assert_eq!(v["result"], "failed");
    assert_eq!(v["error"]["kind"], "check-failed");
    assert!(err.contains("pre_activate hook failed"), "{err}");
    h.assert_live(&a, &small("A"));
    assert_eq!(h.take_log(), hook_runs(&b, &["pre_activate"]));
    let r = h.report("dev");
    assert_eq!(r["state"], "failed");
    assert_eq!(r["manifest"], b.as_str());
    assert_eq!(r["running"], a.as_str());
    assert_eq!(r["seq"], 2);
    let detail = r["detail"].as_str().unwrap();
    assert!(
        detail.contains("pre_activate hook failed") && detail.contains("exit status: 1"),
        "{detail}"
    );
    assert!(
        detail.contains(&format!("current still names {a}")),
        "{detail}"
    );
    let last = h.history().last().unwrap().clone();
    assert_eq!(last["outcome"], "failed");
    assert_eq!(last["manifest"], b.as_str());
    assert_eq!(last["current"], a.as_str());
    assert_eq!(last["detail"], detail);
    assert_eq!(
        (last["env"].as_str(), last["seq"].as_u64()),
        (Some("dev"), Some(2))
    );

    // check fails, then post_activate does: flipped back, and the previous
    // release gets its post_activate again.
    for hook in ["check", "post_activate"] {
        h.set(&format!("fail-{hook}"));
        let (v, err) = h.expect(&["dev"], 6);
        h.unset(&format!("fail-{hook}"));
        assert_eq!(v["result"], "failed");
        h.assert_live(&a, &small("A"));
        let mut expected = hook_runs(&b, &["pre_activate", "post_activate"]);
        if hook == "check" {
            expected.extend(hook_runs(&b, &["check"]));
        }
        expected.extend(hook_runs(&a, &["post_activate"]));
        assert_eq!(h.take_log(), expected, "{hook} failed");
        let again = fs::read_to_string(h.ctl("env")).unwrap();
        let again = again.lines().last().unwrap();
        assert!(
            again.starts_with(&format!("post_activate {a} "))
                && again.contains(&format!("prev={b} ")),
            "{again}"
        );
        let r = h.report("dev");
        assert_eq!(
            (r["state"].as_str(), r["running"].as_str()),
            (Some("failed"), Some(a.as_str()))
        );
        let detail = r["detail"].as_str().unwrap();
        let what = if hook == "check" {
            "check"
        } else {
            "post_activate hook"
        };
        assert!(
            detail.starts_with(&format!("{what} failed"))
                && detail.contains(&format!("flipped back to {a}")),
            "{detail}\n{err}"
        );
        let last = h.history().last().unwrap().clone();
        assert_eq!(
            (last["outcome"].as_str(), last["current"].as_str()),
            (Some("failed"), Some(a.as_str()))
        );
    }

    // The first deploy ever, failing its check: no current at all.
    let fresh = h.tmp.path().join("fresh");
    h.set("fail-check");
    let (v, err) = expect(&mut h.deploy_in(&fresh, &[&b, "--json"]), 6);
    h.unset("fail-check");
    assert_eq!(v["result"], "failed");
    assert!(err.contains("flipped back to nothing"), "{err}");
    assert!(
        fs::symlink_metadata(fresh.join("current")).is_err(),
        "current exists"
    );
    assert_eq!(
        h.take_log(),
        hook_runs(&b, &ALL),
        "post_activate ran for nothing"
    );
}

#[test]
fn deploy_check_timeout_ends_the_check_and_flips_back() {
    let h = Host::new(&format!("check_timeout = 1\n{HOOKS}"));
    let (a, b) = (h.publish(&small("A")), h.publish(&small("B")));
    h.ok(&[&a]);
    // The check never ends by itself.
    h.set("hold-check");
    let (v, err) = h.expect(&[&b], 6);
    assert_eq!(v["result"], "failed");
    assert!(err.contains("timed out after 1s"), "{err}");
    h.assert_live(&a, &small("A"));
    // It was ended (its whole group, by verbatim).
    let pid = held_pid(&h.ctl("held-check"));
    let deadline = Instant::now() + Duration::from_secs(5);
    while running(pid) {
        assert!(
            Instant::now() < deadline,
            "the check ({pid}) outlived its timeout"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let last = h.history().pop().unwrap();
    assert_eq!(
        (last["outcome"].as_str(), last["current"].as_str()),
        (Some("failed"), Some(a.as_str()))
    );
}

#[test]
fn deploy_hooks_run_in_the_release_with_its_variables() {
    let h = Host::new(HOOKS);
    let (a, b) = (h.publish(&small("A")), h.publish(&small("B")));
    h.promote(&a, "dev");
    h.ok(&["dev"]);
    h.ok(&[&b]);
    let root = fs::canonicalize(h.root()).unwrap();
    let env = fs::read_to_string(h.ctl("env")).unwrap();
    let lines: Vec<&str> = env.lines().collect();
    let expect_line = |hook: &str, m: &str, env: &str, prev: &str| {
        let dir = root.join("releases").join(hex(m));
        format!(
            "{hook} {m} env={env} prev={prev} dir={} root={} pwd={}",
            dir.display(),
            root.display(),
            dir.display()
        )
    };
    let mut expected: Vec<String> = ALL.iter().map(|k| expect_line(k, &a, "dev", "")).collect();
    expected.extend(ALL.iter().map(|k| expect_line(k, &b, "", &a)));
    assert_eq!(lines, expected);
}

#[test]
fn deploy_to_previous_needs_no_store_and_toggles() {
    let h = Host::new(HOOKS);
    let (ta, tb) = (small("A"), small("B"));
    let (a, b) = (h.publish(&ta), h.publish(&tb));
    // Nothing deployed yet: nothing to go back to.
    let elsewhere = tempfile::tempdir().unwrap();
    let back = || {
        let mut c = h.p.cmd(&["deploy", "--to", "previous", "--root"]);
        c.arg(h.root())
            .args(["--host-id", HOST, "--json", "--hook-env"])
            .arg(format!("VT_CTL={}", h.ctl("").display()))
            .current_dir(elsewhere.path());
        c
    };
    let (_, err) = expect(&mut back(), 2);
    assert!(
        err.contains("has no previous release to go back to"),
        "{err}"
    );
    h.ok(&[&a]);
    let (_, err) = expect(&mut back(), 2);
    assert!(
        err.contains("has no previous release to go back to"),
        "{err}"
    );
    h.assert_live(&a, &ta);

    h.ok(&[&b]);
    h.take_log();
    // No verbatim.toml, no --store: the host alone.
    assert!(!elsewhere.path().join("verbatim.toml").exists());
    for (to, from, tree) in [(&a, &b, &ta), (&b, &a, &tb), (&a, &b, &ta)] {
        let (v, err) = expect(&mut back(), 0);
        assert_eq!(v["manifest"], to.as_str(), "{err}");
        assert_eq!(v["previous"], from.as_str());
        assert_eq!(v["result"], "activated");
        assert_eq!(v["fetched"], false);
        h.assert_live(to, tree);
        assert_eq!(h.take_log(), hook_runs(to, &ALL));
        let last = h.history().last().unwrap().clone();
        assert_eq!(
            (last["manifest"].as_str(), last["outcome"].as_str()),
            (Some(to.as_str()), Some("activated"))
        );
    }
}

#[test]
fn deploy_of_what_is_already_current_does_nothing() {
    let h = Host::new(HOOKS);
    let a = h.publish(&small("A"));
    h.promote(&a, "dev");
    h.ok(&["dev"]);
    h.take_log();
    let history = h.history();
    for target in ["dev", a.as_str()] {
        let v = h.ok(&[target]);
        assert_eq!(v["result"], "unchanged");
        assert_eq!(v["fetched"], false);
        assert_eq!(v["manifest"], a.as_str());
        assert_eq!(v["previous"], a.as_str());
        assert_eq!(h.take_log(), Vec::<String>::new(), "hooks ran");
        assert_eq!(h.history(), history, "history grew");
        h.assert_live(&a, &small("A"));
    }
    assert_eq!(h.report("dev")["state"], "active");
}

#[test]
fn deploy_links_shared_paths_that_survive_releases() {
    let h = Host::new("shared = [\"media\", \"config/.env\"]\n");
    let release = |name: &str| {
        let mut t = small(name);
        t.extend(tree(vec![
            ("media/logo.png", file(format!("logo {name}"))),
            ("config/.env", file(format!("SECRET={name}\n"))),
            ("config/app.toml", file(format!("name = \"{name}\"\n"))),
        ]));
        t
    };
    let linked = |mut t: Tree| {
        t.retain(|p, _| !p.starts_with("media/"));
        t.insert("media".into(), link("../../shared/media"));
        t.insert("config/.env".into(), link("../../../shared/config/.env"));
        t
    };
    let (a, b) = (h.publish(&release("A")), h.publish(&release("B")));
    h.ok(&[&a]);
    h.assert_live(&a, &linked(release("A")));
    // The first deploy seeded shared/ with what the release held there.
    let shared = h.root().join("shared");
    assert_eq!(
        read_tree(&shared),
        tree(vec![
            ("media/logo.png", file("logo A")),
            ("config/.env", file("SECRET=A\n")),
        ])
    );
    fs::write(h.root().join("current/media/upload.txt"), "uploaded").unwrap();

    h.ok(&[&b]);
    h.assert_live(&b, &linked(release("B")));
    assert_eq!(
        fs::read_to_string(h.root().join("current/media/upload.txt")).unwrap(),
        "uploaded"
    );
    assert_eq!(
        fs::read_to_string(h.root().join("current/config/.env")).unwrap(),
        "SECRET=A\n",
        "shared/ was overwritten by the next release"
    );
    assert_eq!(
        read_tree(&shared),
        tree(vec![
            ("media/logo.png", file("logo A")),
            ("media/upload.txt", file("uploaded")),
            ("config/.env", file("SECRET=A\n")),
        ])
    );
    // Going back: still linked, nothing fetched, nothing seen as modified.
    let (v, err) = h.expect(&[&a], 0);
    assert_eq!(v["fetched"], false, "{err}");
    h.assert_live(&a, &linked(release("A")));
}

#[test]
fn deploy_refuses_a_current_it_did_not_make() {
    let h = Host::new(HOOKS);
    let (ta, tb) = (small("A"), small("B"));
    let (a, b) = (h.publish(&ta), h.publish(&tb));
    h.ok(&[&a]);
    h.take_log();
    let current = h.root().join("current");
    let absolute = h.release_dir(&a);
    let cases: [(&str, &dyn Fn(), &str); 4] = [
        (
            "a directory",
            &|| fs::create_dir(&current).unwrap(),
            "is not a symlink",
        ),
        (
            "a link elsewhere",
            &|| std::os::unix::fs::symlink("/srv/elsewhere", &current).unwrap(),
            "points at /srv/elsewhere",
        ),
        (
            "an absolute link to the release",
            &|| std::os::unix::fs::symlink(&absolute, &current).unwrap(),
            "not at releases/<manifest-hex>",
        ),
        (
            "a link to a path inside the release",
            &|| {
                let t = format!("releases/{}/bin", hex(&a));
                std::os::unix::fs::symlink(t, &current).unwrap()
            },
            "not at releases/<manifest-hex>",
        ),
    ];
    for (what, make, says) in cases {
        fs::remove_file(&current)
            .or_else(|_| fs::remove_dir(&current))
            .unwrap();
        make();
        let lock = Path::new(".verbatim/lock");
        let snapshot = || {
            let mut t = read_tree(&h.root());
            t.remove(lock.to_str().unwrap());
            t
        };
        let before = snapshot();
        let (v, err) = h.expect(&[&b], 2);
        assert!(
            err.contains(&format!("{}", current.display())) && err.contains(says),
            "{what}:\n{err}"
        );
        assert_eq!(v["error"]["kind"], "usage");
        assert_eq!(snapshot(), before, "{what}: the root changed");
        assert_eq!(h.take_log(), Vec::<String>::new(), "{what}: hooks ran");
    }
}

#[test]
fn deploy_creates_missing_shared_paths_as_files_or_directories() {
    let h = Host::new("shared = [\"uploads\", \".env\", \"conf/app.yml\"]\n");
    let a = h.publish(&small("A"));
    h.ok(&[&a]);
    let shared = h.root().join("shared");
    assert!(fs::symlink_metadata(shared.join("uploads"))
        .unwrap()
        .is_dir());
    for f in [".env", "conf/app.yml"] {
        let meta = fs::symlink_metadata(shared.join(f)).unwrap();
        assert!(meta.is_file(), "{f}");
        assert_eq!(meta.len(), 0, "{f}");
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(meta.permissions().mode() & 0o777, 0o600, "{f}");
    }
    // Written through current, read back from shared.
    fs::write(h.root().join("current/.env"), "SECRET=x\n").unwrap();
    assert_eq!(
        fs::read_to_string(shared.join(".env")).unwrap(),
        "SECRET=x\n"
    );
}

mod host_files;
