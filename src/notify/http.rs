//! One HTTP POST with a deadline: plain `http://` over std's `TcpStream`,
//! `https://` through rustls (the TLS stack the AWS SDK already brings,
//! cargo feature `https`, on by default) with the system's roots. Reads
//! the status line and a little of the body; never follows a redirect.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

/// How a POST ended when it did not get a 2xx.
pub type Failure = String;

/// A URL split into what a request needs.
struct Target<'a> {
    https: bool,
    /// As the `Host` header carries it (`[::1]:8080`).
    authority: &'a str,
    /// Without brackets, for connecting and for TLS.
    host: &'a str,
    port: u16,
    path: &'a str,
}

fn split(url: &str) -> Result<Target<'_>, Failure> {
    let (https, rest) = match (url.strip_prefix("https://"), url.strip_prefix("http://")) {
        (Some(r), _) => (true, r),
        (None, Some(r)) => (false, r),
        _ => return Err("not an http:// or https:// URL".into()),
    };
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(end);
    let path = if path.is_empty() { "/" } else { path };
    let path = path.split('#').next().unwrap_or("/");
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) if !p.contains(']') => (
            h,
            p.parse::<u16>()
                .map_err(|_| format!("bad port {p:?} in the URL"))?,
        ),
        _ => (authority, if https { 443 } else { 80 }),
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() {
        return Err("no host in the URL".into());
    }
    Ok(Target {
        https,
        authority,
        host,
        port,
        path,
    })
}

/// POSTs `body` (JSON) to `url`, ending by `deadline`; `Ok(status)` for a
/// 2xx, else why not (a status and the start of the body, or the error).
pub fn post_json(url: &str, body: &[u8], deadline: Instant) -> Result<u16, Failure> {
    let t = split(url)?;
    let left = || {
        deadline
            .checked_duration_since(Instant::now())
            .filter(|d| !d.is_zero())
            .ok_or_else(|| "timed out".to_string())
    };
    let addrs: Vec<_> = (t.host, t.port)
        .to_socket_addrs()
        .map_err(|e| format!("resolving {}: {e}", t.host))?
        .collect();
    let mut stream = None;
    let mut last = format!("{} resolves to no address", t.host);
    for a in addrs {
        match TcpStream::connect_timeout(&a, left()?) {
            Ok(s) => {
                stream = Some(s);
                break;
            }
            Err(e) => last = format!("connecting to {a}: {e}"),
        }
    }
    let tcp = stream.ok_or(last)?;
    let io = |e: std::io::Error| -> Failure {
        match e.kind() {
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => "timed out".into(),
            _ => e.to_string(),
        }
    };
    tcp.set_write_timeout(Some(left()?)).map_err(io)?;
    tcp.set_read_timeout(Some(left()?)).map_err(io)?;
    let head = format!(
        "POST {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: verbatim/{}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        t.path,
        t.authority,
        env!("CARGO_PKG_VERSION"),
        body.len()
    );
    let mut conn = connect(tcp, &t)?;
    let mut request = head.into_bytes();
    request.extend_from_slice(body);
    conn.write_all(&request).map_err(io)?;
    conn.flush().map_err(io)?;
    // The status line and the start of the body: enough to say why.
    let mut answer = Vec::with_capacity(1024);
    let mut buf = [0u8; 1024];
    while answer.len() < 4096 {
        if Instant::now() >= deadline {
            break;
        }
        match conn.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => answer.extend_from_slice(&buf[..n]),
            Err(e) if answer.is_empty() => return Err(io(e)),
            Err(_) => break,
        }
        if let Some(status) = status_of(&answer) {
            if (200..300).contains(&status) {
                return Ok(status);
            }
            if answer.windows(4).any(|w| w == b"\r\n\r\n") && answer.len() > 200 {
                break;
            }
        }
    }
    match status_of(&answer) {
        Some(s) if (200..300).contains(&s) => Ok(s),
        Some(s) => {
            let text = String::from_utf8_lossy(&answer);
            let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
            let body: String = body.chars().take(120).collect();
            Err(format!(
                "answered {s}: {}",
                crate::text::escape(body.trim())
            ))
        }
        None if answer.is_empty() => Err("closed the connection without an answer".into()),
        None => Err("did not answer HTTP".into()),
    }
}

/// The status code of an HTTP/1.x answer's first line, once it is all read.
fn status_of(answer: &[u8]) -> Option<u16> {
    let end = answer.windows(2).position(|w| w == b"\r\n")?;
    let line = std::str::from_utf8(&answer[..end]).ok()?;
    let mut parts = line.split(' ');
    parts.next().filter(|v| v.starts_with("HTTP/1."))?;
    parts.next()?.parse().ok()
}

/// A connection to write the request into and read the answer from.
trait Conn: Read + Write {}
impl<T: Read + Write> Conn for T {}

fn connect(tcp: TcpStream, t: &Target<'_>) -> Result<Box<dyn Conn>, Failure> {
    if !t.https {
        return Ok(Box::new(tcp));
    }
    tls(tcp, t.host)
}

#[cfg(feature = "https")]
fn tls(tcp: TcpStream, host: &str) -> Result<Box<dyn Conn>, Failure> {
    use std::sync::{Arc, OnceLock};
    static CONFIG: OnceLock<Result<Arc<rustls::ClientConfig>, String>> = OnceLock::new();
    let config = CONFIG
        .get_or_init(|| {
            let mut roots = rustls::RootCertStore::empty();
            for cert in rustls_native_certs::load_native_certs().certs {
                let _ = roots.add(cert);
            }
            if roots.is_empty() {
                return Err("no trusted root certificates found on this system".into());
            }
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            let config = rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .map_err(|e| e.to_string())?
                .with_root_certificates(roots)
                .with_no_client_auth();
            Ok(Arc::new(config))
        })
        .clone()?;
    let name = rustls::pki_types::ServerName::try_from(host.to_owned())
        .map_err(|e| format!("{host}: {e}"))?;
    let conn = rustls::ClientConnection::new(config, name).map_err(|e| e.to_string())?;
    Ok(Box::new(rustls::StreamOwned::new(conn, tcp)))
}

#[cfg(not(feature = "https"))]
fn tls(_tcp: TcpStream, _host: &str) -> Result<Box<dyn Conn>, Failure> {
    Err("this verbatim was built without the `https` feature: use an http:// webhook".into())
}

/// At most this long for one attempt's connection, so a retry is left time.
pub const ATTEMPT_MAX: Duration = Duration::from_secs(3);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_split_into_host_port_and_path() {
        let t = split("http://127.0.0.1:8080/hook?x=1").unwrap();
        assert_eq!(
            (t.host, t.port, t.path, t.https),
            ("127.0.0.1", 8080, "/hook?x=1", false)
        );
        let t = split("https://hooks.example.com").unwrap();
        assert_eq!(
            (t.host, t.port, t.path, t.authority),
            ("hooks.example.com", 443, "/", "hooks.example.com")
        );
        let t = split("http://[::1]:9/a#f").unwrap();
        assert_eq!((t.host, t.port, t.path), ("::1", 9, "/a"));
        assert!(split("ftp://x").is_err());
    }

    #[test]
    fn status_lines() {
        assert_eq!(status_of(b"HTTP/1.1 204 No Content\r\n"), Some(204));
        assert_eq!(status_of(b"HTTP/1.0 500 X\r\n\r\n"), Some(500));
        assert_eq!(status_of(b"HTTP/1.1 20"), None);
        assert_eq!(status_of(b"SSH-2.0\r\n"), None);
    }
}
