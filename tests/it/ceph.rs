//! Ceph radosgw, the second real S3 server. Its conditional writes are
//! atomic (an `If-None-Match: *` create is an exclusive create in RADOS), so
//! the race checks that s3s-fs cannot run are run here: the conformance
//! suite in full, the CLI pipeline, promoters racing for one pointer, and
//! agents following the environment.
//!
//! One cluster serves every test: the first test that needs it starts it
//! with `tests/ceph/cluster.sh` (under a file lock, about 12 s), the others
//! reuse it, and `cargo xtask ci` stops it after the run. Without Ceph's
//! packages these tests say so loudly and skip, except under CI, where they
//! fail.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::s3::{cli, ok_json, pipeline, store, ACCESS_KEY, BUCKET, SECRET_KEY};
use crate::util::{race, Project};

/// Where the shared cluster lives; `cargo xtask ci` stops the one here.
pub fn cluster_dir() -> PathBuf {
    std::env::temp_dir().join("verbatim-test-ceph")
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/ceph/cluster.sh")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The radosgw endpoint of the shared cluster (with bucket `verbatim`),
/// starting it if needed; `None` (after a loud note) without Ceph outside CI.
pub fn rgw() -> Option<String> {
    let installed = Command::new("radosgw")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !installed {
        assert!(
            std::env::var_os("CI").is_none(),
            "radosgw not found: apt-get install ceph-mon ceph-osd radosgw ceph-common (`cargo xtask ci` does)"
        );
        eprintln!("SKIPPED: Ceph radosgw is not installed (apt-get install ceph-mon ceph-osd radosgw ceph-common, or run `cargo xtask ci`)");
        return None;
    }
    let dir = cluster_dir();
    let up = || {
        Command::new("flock")
            .arg("-o")
            .arg(dir.with_extension("lock"))
            .arg("bash")
            .arg(script())
            .arg("up")
            .arg(&dir)
            .args([free_port().to_string(), free_port().to_string()])
            .args([ACCESS_KEY, SECRET_KEY])
            .output()
            .unwrap()
    };
    let mut out = up();
    // Right after another cluster stopped, a new OSD can be refused by
    // the new monitor ('wrong fsid') for a few seconds: try again.
    for attempt in 2..=4 {
        if out.status.success() {
            break;
        }
        eprintln!(
            "WARNING: starting Ceph failed ({}), attempt {attempt} of 4 in 3 s:\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        std::thread::sleep(std::time::Duration::from_secs(3));
        out = up();
    }
    assert!(
        out.status.success(),
        "starting Ceph failed ({}):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let out = out.stdout;
    let endpoint = String::from_utf8(out).unwrap().trim().to_owned();
    create_bucket(&endpoint);
    Some(endpoint)
}

/// Creates bucket `verbatim` unless the cluster has it already.
fn create_bucket(endpoint: &str) {
    use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
    let conf = aws_sdk_s3::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(Region::new("us-east-1"))
        .force_path_style(true)
        .credentials_provider(Credentials::new(ACCESS_KEY, SECRET_KEY, None, None, "test"))
        .http_client(aws_smithy_http_client::Builder::new().build_http())
        .build();
    let client = aws_sdk_s3::Client::from_conf(conf);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    if let Err(e) = rt.block_on(client.create_bucket().bucket(BUCKET).send()) {
        let owned = e
            .as_service_error()
            .is_some_and(|s| s.is_bucket_already_owned_by_you() || s.is_bucket_already_exists());
        assert!(
            owned,
            "creating bucket {BUCKET}: {}",
            aws_sdk_s3::error::DisplayErrorContext(&e)
        );
    }
}

/// A prefix no other test (or earlier run on the same cluster) uses.
fn fresh_prefix(name: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{name}-{}-{nanos}", std::process::id())
}

#[test]
fn agents_follow_promotions_and_rollbacks_over_radosgw() {
    let Some(url) = rgw() else { return };
    let fleet = crate::agents::Fleet::on(url, &fresh_prefix("agents"));
    crate::agents::converge_on_promotions_and_rollbacks(&fleet);
}

#[test]
fn radosgw_passes_the_whole_conformance_suite() {
    let Some(url) = rgw() else { return };
    let base = fresh_prefix("conformance");
    for (name, check) in crate::store_conformance::CHECKS {
        eprintln!("conformance: radosgw: {name}");
        check(&store(&url, &format!("{base}/{name}")));
    }
}

#[test]
fn publish_promote_verify_fetch_over_radosgw() {
    let Some(url) = rgw() else { return };
    let prefix = fresh_prefix("pipeline");
    let s = store(&url, &prefix);
    pipeline(&url, &prefix, &|k| {
        verbatim::store::Store::head(&s, &verbatim::store::Key::new(k).unwrap())
            .unwrap()
            .is_some()
    });
}

#[test]
fn racing_promoters_on_radosgw_lose_nothing() {
    const RACERS: usize = 6;
    const ROUNDS: usize = 5;
    let Some(url) = rgw() else { return };
    let base = fresh_prefix("race");
    let p = Project::new();
    for r in 0..ROUNDS {
        // A fresh store per round: the same manifests, a fresh `dev`.
        let prefix = format!("{base}/round{r}");
        let manifests: Vec<String> = (0..RACERS)
            .map(|i| {
                p.write("app/x.py", format!("racer {i}"));
                ok_json(&mut cli(&p, &url, &prefix, &["publish"]))["manifest"]
                    .as_str()
                    .unwrap()
                    .to_owned()
            })
            .collect();
        let outs = race(
            manifests
                .iter()
                .map(|m| cli(&p, &url, &prefix, &["promote", m, "--to", "dev", "-q"])),
        );
        let mut winners = Vec::new();
        for (i, out) in outs.into_iter().enumerate() {
            let err = String::from_utf8_lossy(&out.stderr);
            match out.status.code() {
                Some(0) => winners.push(i),
                Some(4) => assert!(err.contains("racer-"), "the loser names the winner: {err}"),
                other => panic!("round {r}: racer {i} exited {other:?}: {err}"),
            }
        }
        assert!(!winners.is_empty(), "round {r}: nobody won");
        let history = ok_json(&mut cli(&p, &url, &prefix, &["history", "dev"]));
        let events = history["events"].as_array().unwrap();
        let mut seqs: Vec<u64> = events.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
        seqs.reverse();
        assert_eq!(
            seqs,
            (1..=events.len() as u64).collect::<Vec<_>>(),
            "round {r}: gap"
        );
        assert_eq!(
            events.len(),
            winners.len(),
            "round {r}: one event per winner"
        );
        for w in &winners {
            assert!(
                events
                    .iter()
                    .any(|e| e["actor"] == format!("racer-{w}").as_str()
                        && e["to"] == manifests[*w].as_str()),
                "round {r}: winner {w} has no event"
            );
        }
        let status = ok_json(&mut cli(&p, &url, &prefix, &["status", "dev"]));
        let live = &status["environments"][0];
        assert_eq!(
            live["seq"], events[0]["seq"],
            "round {r}: pointer behind the newest event"
        );
        assert_eq!(live["manifest"], events[0]["to"], "round {r}");
    }
}

/// The steps of `dev`'s history over radosgw, oldest first, with their actors.
fn rollout_steps(f: &crate::rollout::Fleet) -> Vec<(String, String)> {
    let h = crate::util::json_out(&mut f.cmd(&["history", "dev", "--json"]));
    let mut steps: Vec<(String, String)> = h["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| {
            let step = e["rollout"]["step"].as_str()?;
            Some((
                step.to_owned(),
                e["actor"].as_str().unwrap_or("").to_owned(),
            ))
        })
        .collect();
    steps.reverse();
    steps
}

#[test]
fn two_controllers_resuming_one_rollout_on_radosgw_take_each_step_once() {
    let Some(url) = rgw() else { return };
    let f = crate::rollout::Fleet::on(url, &fresh_prefix("resume"), "[app]\ndir = \"app\"\n");
    let v1 = f.release("v1");
    crate::util::success(&mut f.cmd(&["promote", &v1, "--to", "dev"]));
    let agents: Vec<_> = (1..=2).map(|i| f.agent(i, &[])).collect();
    crate::rollout::converge(&agents, &v1);
    let v2 = f.release("v2");
    // Inconclusive until the flag exists: the rollout pauses after wave 1.
    let flag = f.hosts.path().join("go");
    let check = format!("test -e {} || exit 75", flag.display());
    crate::util::exits(
        &mut f.cmd(&[
            "promote",
            &v2,
            "--to",
            "dev",
            "--waves",
            "1,100%",
            "--bake",
            "0",
            "--check-cmd",
            &check,
        ]),
        8,
    );
    std::fs::write(&flag, "").unwrap();
    let outs = race((0..2).map(|_| f.cmd(&["rollout", "resume", "dev"])));
    let mut codes: Vec<Option<i32>> = outs.iter().map(|o| o.status.code()).collect();
    codes.sort();
    let errs: Vec<String> = outs
        .iter()
        .map(|o| String::from_utf8_lossy(&o.stderr).into_owned())
        .collect();
    assert_eq!(codes, [Some(0), Some(4)], "{errs:#?}");
    let winner = format!(
        "racer-{}",
        outs.iter().position(|o| o.status.success()).unwrap()
    );
    let loser_err = &errs[outs.iter().position(|o| !o.status.success()).unwrap()];
    assert!(
        loser_err.contains("lost the race") || loser_err.contains("took over"),
        "{loser_err}"
    );
    crate::rollout::converge(&agents, &v2);
    let steps = rollout_steps(&f);
    let paused = steps.iter().position(|(s, _)| s == "paused").unwrap();
    let after = &steps[paused + 1..];
    // Each step after the pause was taken once, and the loser took none
    // after the winner's first.
    let first_win = after.iter().position(|(_, a)| *a == winner).unwrap();
    assert!(
        after[first_win..].iter().all(|(_, a)| *a == winner),
        "{steps:?}"
    );
    assert_eq!(after.last().unwrap().0, "completed", "{steps:?}");
    let tail: Vec<&str> = after[first_win..].iter().map(|(s, _)| s.as_str()).collect();
    assert_eq!(
        &tail[tail.len() - 4..],
        ["wave", "wave-done", "baked", "completed"]
    );
}

#[test]
fn two_release_runners_on_radosgw_run_the_release_phase_once() {
    let Some(url) = rgw() else { return };
    let config = "[app]\ndir = \"app\"\n[deploy]\nhooks.release = 'echo \"$VERBATIM_MANIFEST\" >> \"$RELEASE_LOG\"'\n";
    let f = crate::rollout::Fleet::on(url, &fresh_prefix("release"), config);
    let v1 = f.release("v1");
    crate::util::success(&mut f.cmd(&["promote", &v1, "--to", "dev"]));
    let agents: Vec<_> = (1..=3).map(|i| f.agent(i, &["--release-runner"])).collect();
    crate::rollout::converge(&agents, &v1);
    let v2 = f.release("v2");
    let out = crate::util::json_out(&mut f.cmd(&[
        "promote", &v2, "--to", "dev", "--waves", "1,100%", "--bake", "0", "--json",
    ]));
    assert_eq!(out["rollout"]["state"], "completed", "{out:#}");
    crate::rollout::converge(&agents, &v2);
    let log = std::fs::read_to_string(&f.release_log).unwrap();
    assert_eq!(log.lines().filter(|l| *l == v2).count(), 1, "{log}");
    let claims = agents
        .iter()
        .filter(|a| {
            std::fs::read_to_string(&a.log)
                .unwrap_or_default()
                .contains("running the release phase")
        })
        .count();
    assert_eq!(claims, 1, "exactly one agent claimed it");
}
