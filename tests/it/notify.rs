//! `[notify] webhooks`: a real HTTP receiver on loopback gets one JSON
//! POST per event, with a Slack/Teams `text` and the full event; a
//! receiver that hangs or answers 500 delays a move by at most the
//! timeout, and the move lands all the same.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::util::Project;

/// How the receiver answers.
#[derive(Clone, Copy)]
pub enum Answer {
    Ok,
    Status500,
    Hang,
}

/// A webhook receiver: every request's path and JSON body, in order.
pub struct Receiver {
    pub url: String,
    pub got: Arc<Mutex<Vec<(String, serde_json::Value)>>>,
}

impl Receiver {
    pub fn start(answer: Answer) -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/hooks/T0/secret", listener.local_addr().unwrap());
        let got = Arc::new(Mutex::new(Vec::new()));
        let seen = got.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let seen = seen.clone();
                std::thread::spawn(move || {
                    let mut r = BufReader::new(stream.try_clone().unwrap());
                    let mut line = String::new();
                    r.read_line(&mut line).unwrap();
                    let path = line.split(' ').nth(1).unwrap_or("").to_owned();
                    let mut len = 0;
                    loop {
                        let mut h = String::new();
                        if r.read_line(&mut h).unwrap_or(0) <= 2 {
                            break;
                        }
                        let lower = h.to_ascii_lowercase();
                        if let Some(v) = lower.strip_prefix("content-length:") {
                            len = v.trim().parse().unwrap();
                        }
                    }
                    let mut body = vec![0; len];
                    r.read_exact(&mut body).unwrap();
                    seen.lock()
                        .unwrap()
                        .push((path, serde_json::from_slice(&body).unwrap()));
                    let mut s = stream;
                    match answer {
                        Answer::Ok => {
                            let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
                        }
                        Answer::Status500 => {
                            let _ = s
                                .write_all(b"HTTP/1.1 500 Oops\r\nContent-Length: 6\r\n\r\nbroken");
                        }
                        Answer::Hang => std::thread::sleep(Duration::from_secs(60)),
                    }
                });
            }
        });
        Receiver { url, got }
    }

    pub fn bodies(&self) -> Vec<serde_json::Value> {
        self.got
            .lock()
            .unwrap()
            .iter()
            .map(|(_, b)| b.clone())
            .collect()
    }
}

fn project(webhooks: &[&str], timeout: u64) -> Project {
    let list: Vec<String> = webhooks.iter().map(|u| format!("{u:?}")).collect();
    Project::with_config(&format!(
        "[app]\ndir = \"app\"\n\n[environments]\norder = [\"dev\", \"prod\"]\n\n[notify]\nwebhooks = [{}]\ntimeout = {timeout}\n",
        list.join(", ")
    ))
}

fn release(p: &Project, v: &str) -> String {
    p.write("app/version.txt", v);
    p.json(&["publish"])["manifest"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[test]
fn each_move_is_one_post_with_text_and_the_full_event() {
    let rx = Receiver::start(Answer::Ok);
    let p = project(&[&rx.url], 5);
    let v1 = release(&p, "v1");
    let v2 = release(&p, "v2");
    p.ok(&["promote", &v1, "--to", "dev"]);
    p.ok(&[
        "promote",
        &v2,
        "--to",
        "dev",
        "--reason",
        "<!channel> ship & go",
    ]);
    p.ok(&["promote", "dev", "--to", "prod"]);
    p.ok(&["rollback", "dev", "--reason", "bad"]);
    let got = rx.got.lock().unwrap().clone();
    assert_eq!(got.len(), 4, "one POST per event: {got:#?}");
    assert!(got.iter().all(|(path, _)| path == "/hooks/T0/secret"));
    let b: Vec<&serde_json::Value> = got.iter().map(|(_, b)| b).collect();
    let kinds: Vec<(&str, &str, u64)> = b
        .iter()
        .map(|m| {
            (
                m["kind"].as_str().unwrap(),
                m["env"].as_str().unwrap(),
                m["event"]["seq"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        kinds,
        [
            ("promote", "dev", 1),
            ("promote", "dev", 2),
            ("promote", "prod", 1),
            ("rollback", "dev", 3)
        ]
    );
    assert_eq!(b[1]["event"]["to"], v2.as_str());
    assert_eq!(b[1]["event"]["from"], v1.as_str());
    assert_eq!(b[3]["event"]["to"], v1.as_str());
    assert_eq!(b[3]["event"]["schema"], "verbatim.event/v1");
    let text = b[1]["text"].as_str().unwrap();
    assert!(text.contains("dev") && text.contains("promoted"), "{text}");
    assert!(text.contains(&v2["sha256:".len()..][..8]), "{text}");
    // Untrusted text cannot ping a channel or forge a link in Slack.
    assert!(text.contains("&lt;!channel&gt; ship &amp; go"), "{text}");
    assert_eq!(b[1]["event"]["reason"], "<!channel> ship & go");
    assert!(b[3]["text"].as_str().unwrap().contains("rolled back"));
}

#[test]
fn a_receiver_that_hangs_or_fails_delays_a_move_by_at_most_the_timeout() {
    for (answer, what) in [(Answer::Hang, "hangs"), (Answer::Status500, "answers 500")] {
        let rx = Receiver::start(answer);
        let timeout = 2;
        let p = project(&[&rx.url], timeout);
        let v1 = release(&p, "v1");
        let start = Instant::now();
        let out = p.cmd(&["promote", &v1, "--to", "dev"]).output().unwrap();
        let took = start.elapsed();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success(),
            "{what}: the move must succeed: {stderr}"
        );
        eprintln!("a receiver that {what}: promote took {took:.2?} (timeout {timeout}s)");
        assert!(
            took < Duration::from_secs(timeout + 4),
            "{what}: took {took:?}"
        );
        // The move landed.
        let s = p.json(&["status", "dev"]);
        assert_eq!(s["environments"][0]["manifest"], v1.as_str());
        // Warned, naming the receiver's host only (the path is a secret).
        assert!(stderr.contains("was not delivered"), "{what}: {stderr}");
        assert!(!stderr.contains("secret"), "{what}: {stderr}");
        match answer {
            Answer::Status500 => {
                assert!(stderr.contains("answered 500: broken"), "{stderr}");
                let n = rx.bodies().len();
                assert!((2..=3).contains(&n), "retried: {n} POSTs");
            }
            _ => assert!(stderr.contains("timed out"), "{stderr}"),
        }
    }
}

#[test]
fn a_webhook_that_is_not_an_http_url_is_a_config_error_naming_the_key() {
    let p = project(&["ftp://example.com/x"], 5);
    let err = p.fails(&["status"], 2);
    assert!(err.contains("notify.webhooks[0]"), "{err}");
    let p = project(&["http://127.0.0.1:9/"], 0);
    let err = p.fails(&["status"], 2);
    assert!(err.contains("notify.timeout"), "{err}");
}
