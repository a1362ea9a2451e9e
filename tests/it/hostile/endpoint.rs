//! An S3 endpoint that never answers, or stops mid-body: every command ends
//! within its timeout with one clear error naming the endpoint. And one
//! reached only through the proxy the environment names.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::Command;

use crate::util::{bound_not_listening, bounded, Project};

/// `cmd` against the endpoint at `port` with a 3-second timeout.
fn against(p: &Project, args: &[&str], port: u16) -> Command {
    against_url(p, args, &format!("http://127.0.0.1:{port}"))
}

/// `cmd` against the endpoint at `url` with a 3-second timeout.
fn against_url(p: &Project, args: &[&str], url: &str) -> Command {
    let mut cmd = p.cmd(args);
    cmd.args([
        "--store",
        "s3://bucket/releases",
        "--path-style",
        "--timeout",
        "3",
    ])
    .args(["--endpoint-url", url])
    .env("AWS_ACCESS_KEY_ID", "verbatim")
    .env("AWS_SECRET_ACCESS_KEY", "verbatim-secret")
    .env("AWS_REGION", "us-east-1")
    .env("AWS_EC2_METADATA_DISABLED", "true");
    cmd
}

const ID: &str = "sha256:0000000000000000000000000000000000000000000000000000000000000000";

fn commands() -> Vec<Vec<&'static str>> {
    vec![
        vec!["status"],
        vec!["publish"],
        vec!["verify", ID],
        vec!["fetch", ID, "--into", "host"],
        vec!["promote", ID, "--to", "dev"],
    ]
}

#[test]
fn a_black_hole_endpoint_fails_every_command_within_its_timeout() {
    // Bound but never accepted: the kernel completes handshakes into the
    // backlog, and nothing ever answers.
    let hole = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = hole.local_addr().unwrap().port();
    let p = Project::new();
    p.write("app/x.py", "x");
    for args in commands() {
        let run = bounded(&mut against(&p, &args, port), 30);
        let err = run.exits(1, 256);
        assert!(
            err.contains(&format!(
                "endpoint http://127.0.0.1:{port} did not answer within 3 s"
            )),
            "{args:?}: {err}"
        );
        assert!(
            !err.contains("DispatchFailure") && !err.contains("TimeoutError"),
            "{err}"
        );
    }
    assert!(!p.path().join("host").exists());
}

#[test]
fn a_closed_port_is_reported_as_refused_not_as_slow() {
    // Bound but never listening: connecting is refused at once, which the
    // SDK retries until the timeout. Holding the bound socket keeps every
    // other test's server off the port for as long as this test runs.
    let (_held, port) = bound_not_listening();
    let p = Project::new();
    p.write("app/x.py", "x");
    for args in commands() {
        let err = bounded(&mut against(&p, &args, port), 30).exits(1, 256);
        assert!(
            err.contains(&format!(
                "endpoint http://127.0.0.1:{port} refused the connection"
            )) && err.contains("server is running"),
            "{args:?}: {err}"
        );
    }
}

#[test]
fn an_endpoint_that_stalls_mid_body_fails_within_its_timeout() {
    let server = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = server.local_addr().unwrap().port();
    // Answers every request with a 100 MB body, sends 100 bytes, then holds
    // the connection open in silence.
    std::thread::spawn(move || {
        let mut held: Vec<TcpStream> = Vec::new();
        for conn in server.incoming() {
            let Ok(mut conn) = conn else { continue };
            let mut req = Vec::new();
            let mut buf = [0u8; 4096];
            while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                match conn.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => req.extend_from_slice(&buf[..n]),
                }
            }
            let _ = conn.write_all(
                b"HTTP/1.1 200 OK\r\nContent-Length: 100000000\r\nETag: \"e\"\r\n\r\n{\"artifact\": ",
            );
            let _ = conn.write_all(&[b' '; 87]);
            held.push(conn);
        }
    });
    let p = Project::new();
    let run = bounded(&mut against(&p, &["fetch", ID, "--into", "host"], port), 60);
    let err = run.exits(1, 256);
    assert!(err.contains("sent nothing for 3 s"), "{err}");
    assert!(!p.path().join("host").exists());
}

#[test]
fn requests_go_through_the_proxy_the_environment_names() {
    // A proxy that records each request line and refuses it: the endpoint's
    // name does not resolve, so only a client that honours `HTTP_PROXY`
    // (as the SDK's default client does) reaches it at all.
    let proxy = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = proxy.local_addr().unwrap().port();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let recorder = seen.clone();
    std::thread::spawn(move || {
        for conn in proxy.incoming() {
            let Ok(mut conn) = conn else { return };
            let mut head = Vec::new();
            let mut byte = [0u8];
            while !head.ends_with(b"\r\n\r\n") && conn.read(&mut byte).is_ok_and(|n| n == 1) {
                head.push(byte[0]);
            }
            let head = String::from_utf8_lossy(&head).into_owned();
            recorder
                .lock()
                .unwrap()
                .push(head.lines().next().unwrap_or_default().to_owned());
            let _ = conn.write_all(
                b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            );
        }
    });
    let p = Project::new();
    p.write("app/x.py", "x");
    let mut cmd = against_url(&p, &["status"], "http://s3.verbatim.invalid:9000");
    cmd.env("HTTP_PROXY", format!("http://127.0.0.1:{port}"))
        .env("http_proxy", format!("http://127.0.0.1:{port}"))
        .env_remove("NO_PROXY")
        .env_remove("no_proxy");
    bounded(&mut cmd, 30).exits(1, 256);
    let seen = seen.lock().unwrap();
    assert!(
        seen.iter()
            .any(|line| line.contains(" http://s3.verbatim.invalid:9000/bucket")),
        "the proxy saw {seen:?}"
    );
}
