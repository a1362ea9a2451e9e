//! A fault-injecting HTTP/1.1 proxy for tests that talk to a local
//! S3-compatible server (s3s-fs).
//!
//! ```ignore
//! let proxy = Proxy::start(s3_addr, Faults { error_500: 0.2, seed: 7, ..Faults::default() });
//! // point the client at proxy.url(), run it, then:
//! assert!(proxy.injected() > 0);
//! assert_eq!(proxy.count("PUT"), 12);
//! ```
//!
//! Faults are decided per request (not per connection) by a deterministic
//! PRNG: request number `n` (counted from 0 in arrival order, over all
//! connections) draws `splitmix64(seed + n)` followed by one xorshift64
//! step, so a sequential client sees the same faults on every run.
//!
//! * drop: the client socket is closed without an answer;
//! * 500 / 503: an S3 XML error (`InternalError` / `SlowDown`) with
//!   `Connection: close`, then the socket is closed;
//! * otherwise the request goes to upstream on a fresh TCP connection, with
//!   `Connection: close` (and without `If-None-Match` when
//!   `strip_if_none_match` is set); the response is copied back.
//!
//! Client connections are kept alive between requests when the upstream
//! response is framed by `Content-Length` (or has no body), with the
//! response's `Connection` header removed; chunked or close-delimited
//! responses are copied until upstream EOF and the client connection is then
//! closed. `Expect: 100-continue` is answered by the proxy itself (the
//! upstream's interim 1xx responses are swallowed). Chunked request bodies
//! are forwarded verbatim up to and including the terminating chunk.
//!
//! ## `strip_if_none_match` and SigV4
//!
//! The AWS SDK for Rust signs every header except `authorization`,
//! `user-agent`, `x-amzn-trace-id` and `transfer-encoding`, so
//! `if-none-match` is in `SignedHeaders`. s3s (0.14) silently skips signed
//! headers that are missing from the request when it builds the canonical
//! request, so removing the header alone makes s3s-fs answer
//! `403 SignatureDoesNotMatch`; and s3s-fs started without credentials rejects
//! every signed request (`NotImplemented`). So when the proxy strips the
//! header from a header-signed SigV4 request it re-signs it: set
//! `Faults::resign_secret_key` to the secret key s3s-fs was started with. The
//! new signature covers the same headers minus `if-none-match`, with the
//! client's date, scope and `x-amz-content-sha256` (the canonical URI and
//! query are taken raw, as the SDK sent them, which s3s accepts). Requests
//! with signed chunks (`STREAMING-AWS4-HMAC-SHA256-PAYLOAD`) cannot be
//! re-signed: the connection thread panics with a message saying so. Without
//! a key the header is just removed (right for unsigned requests and for
//! fake upstreams).
//!
//! Every socket has 30 s read/write timeouts, so nothing hangs forever.
//! Dropping the `Proxy` shuts down live client connections, closes the
//! listener and joins the accept thread.

use std::collections::HashMap;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use sha2::{Digest, Sha256};

const IO_TIMEOUT: Duration = Duration::from_secs(30);
const MAX_HEAD: usize = 64 * 1024;

/// Which faults to inject. `Default` injects none.
#[derive(Clone, Debug, Default)]
pub struct Faults {
    /// Probability of answering `500 Internal Server Error` (`InternalError`).
    pub error_500: f64,
    /// Probability of answering `503 Slow Down` (`SlowDown`).
    pub slow_down_503: f64,
    /// Probability of closing the client connection without an answer.
    pub drop_connection: f64,
    /// Remove `If-None-Match` from forwarded requests (a server that ignores
    /// conditional writes, like Garage). See the module docs about SigV4.
    pub strip_if_none_match: bool,
    /// Secret key used to re-sign requests whose signed `If-None-Match` was
    /// stripped; must be the upstream's `--secret-key`.
    pub resign_secret_key: Option<String>,
    /// PRNG seed.
    pub seed: u64,
}

/// The running proxy; stops on drop.
pub struct Proxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    acceptor: Option<JoinHandle<()>>,
}

struct Shared {
    upstream: SocketAddr,
    faults: Faults,
    stop: AtomicBool,
    requests: AtomicU64,
    injected: AtomicUsize,
    counts: Mutex<HashMap<String, usize>>,
    /// Clones of live client sockets, to shut them down on drop.
    clients: Mutex<HashMap<u64, TcpStream>>,
}

enum Action {
    Drop,
    Error(&'static str, &'static str),
    Forward,
}

impl Proxy {
    /// Listens on `127.0.0.1:0` and forwards to `upstream`.
    pub fn start(upstream: SocketAddr, faults: Faults) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("proxy: bind 127.0.0.1:0");
        let addr = listener.local_addr().unwrap();
        let shared = Arc::new(Shared {
            upstream,
            faults,
            stop: AtomicBool::new(false),
            requests: AtomicU64::new(0),
            injected: AtomicUsize::new(0),
            counts: Mutex::new(HashMap::new()),
            clients: Mutex::new(HashMap::new()),
        });
        let s = shared.clone();
        let acceptor = thread::Builder::new()
            .name("proxy-accept".into())
            .spawn(move || accept_loop(listener, s))
            .expect("proxy: spawn accept thread");
        Proxy {
            addr,
            shared,
            acceptor: Some(acceptor),
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Requests seen with this method (faulted ones included).
    pub fn count(&self, method: &str) -> usize {
        let counts = self.shared.counts.lock().unwrap();
        counts.get(method).copied().unwrap_or(0)
    }

    /// Faults injected so far (drops, 500s and 503s).
    pub fn injected(&self) -> usize {
        self.shared.injected.load(Ordering::SeqCst)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        {
            let mut clients = self.shared.clients.lock().unwrap();
            self.shared.stop.store(true, Ordering::SeqCst);
            for (_, c) in clients.drain() {
                let _ = c.shutdown(Shutdown::Both);
            }
        }
        // Wake the accept thread; it sees `stop` and returns, closing the listener.
        if TcpStream::connect_timeout(&self.addr, Duration::from_secs(5)).is_ok() {
            if let Some(h) = self.acceptor.take() {
                let _ = h.join();
            }
        }
    }
}

fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    for (id, conn) in (0u64..).zip(listener.incoming()) {
        let Ok(client) = conn else { continue };
        {
            let mut clients = shared.clients.lock().unwrap();
            if shared.stop.load(Ordering::SeqCst) {
                return;
            }
            if let Ok(c) = client.try_clone() {
                clients.insert(id, c);
            }
        }
        let s = shared.clone();
        let spawned = thread::Builder::new()
            .name(format!("proxy-conn-{id}"))
            .spawn(move || {
                let _ = serve(&s, client);
                s.clients.lock().unwrap().remove(&id);
            });
        if spawned.is_err() {
            shared.clients.lock().unwrap().remove(&id);
        }
    }
}

impl Shared {
    fn decide(&self) -> Action {
        let n = self.requests.fetch_add(1, Ordering::SeqCst);
        let r = unit(self.faults.seed, n);
        let f = &self.faults;
        if r < f.drop_connection {
            Action::Drop
        } else if r < f.drop_connection + f.error_500 {
            Action::Error("500 Internal Server Error", "InternalError")
        } else if r < f.drop_connection + f.error_500 + f.slow_down_503 {
            Action::Error("503 Slow Down", "SlowDown")
        } else {
            Action::Forward
        }
    }
}

/// A uniform number in [0, 1) for request `n`.
fn unit(seed: u64, n: u64) -> f64 {
    // splitmix64 spreads neighbouring counters; then one xorshift64 step.
    let mut x = seed.wrapping_add(n).wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^= x >> 31;
    if x == 0 {
        x = 0x2545_F491_4F6C_DD1D;
    }
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    (x >> 11) as f64 / (1u64 << 53) as f64
}

struct Request {
    /// `METHOD TARGET VERSION`
    line: String,
    method: String,
    target: String,
    /// Raw header lines (without CRLF) and their parsed (name, value).
    headers: Vec<(String, String, String)>,
    body: Vec<u8>,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        header(&self.headers, name)
    }
}

fn header<'a>(headers: &'a [(String, String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(_, n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, _, v)| v.as_str())
}

fn has_token(headers: &[(String, String, String)], name: &str, token: &str) -> bool {
    headers
        .iter()
        .filter(|(_, n, _)| n.eq_ignore_ascii_case(name))
        .flat_map(|(_, _, v)| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}

fn invalid(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.into())
}

/// Reads one CRLF-terminated line (without the line ending); `None` at EOF.
fn read_line(r: &mut impl BufRead) -> io::Result<Option<String>> {
    let mut buf = Vec::new();
    let n = r
        .by_ref()
        .take(MAX_HEAD as u64)
        .read_until(b'\n', &mut buf)?;
    if n == 0 {
        return Ok(None);
    }
    if buf.last() != Some(&b'\n') {
        return Err(invalid("line too long or truncated"));
    }
    while matches!(buf.last(), Some(b'\n' | b'\r')) {
        buf.pop();
    }
    String::from_utf8(buf)
        .map(Some)
        .map_err(|_| invalid("non-UTF-8 head"))
}

/// Reads a message head: the start line and the header lines. `None` at a
/// clean EOF before the start line.
#[allow(clippy::type_complexity)]
fn read_head(r: &mut impl BufRead) -> io::Result<Option<(String, Vec<(String, String, String)>)>> {
    let start = loop {
        match read_line(r)? {
            None => return Ok(None),
            Some(l) if l.is_empty() => continue, // tolerate stray CRLFs between messages
            Some(l) => break l,
        }
    };
    let mut headers = Vec::new();
    let mut size = start.len();
    loop {
        let line = read_line(r)?.ok_or_else(|| invalid("EOF inside a message head"))?;
        if line.is_empty() {
            return Ok(Some((start, headers)));
        }
        size += line.len();
        if size > MAX_HEAD {
            return Err(invalid("message head too large"));
        }
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| invalid(format!("bad header line {line:?}")))?;
        let (name, value) = (name.trim().to_owned(), value.trim().to_owned());
        headers.push((line, name, value));
    }
}

fn content_length(headers: &[(String, String, String)]) -> io::Result<Option<u64>> {
    header(headers, "content-length")
        .map(|v| {
            v.parse()
                .map_err(|_| invalid(format!("bad Content-Length {v:?}")))
        })
        .transpose()
}

/// Reads a chunked body, returning its raw bytes (chunks, final chunk and trailers).
fn read_chunked(r: &mut impl BufRead) -> io::Result<Vec<u8>> {
    let mut raw = Vec::new();
    loop {
        let line = read_line(r)?.ok_or_else(|| invalid("EOF inside a chunked body"))?;
        raw.extend_from_slice(line.as_bytes());
        raw.extend_from_slice(b"\r\n");
        let size = line.split(';').next().unwrap().trim();
        let size = usize::from_str_radix(size, 16)
            .map_err(|_| invalid(format!("bad chunk size {line:?}")))?;
        if size == 0 {
            // Trailers, up to the empty line.
            loop {
                let t = read_line(r)?.ok_or_else(|| invalid("EOF inside chunked trailers"))?;
                raw.extend_from_slice(t.as_bytes());
                raw.extend_from_slice(b"\r\n");
                if t.is_empty() {
                    return Ok(raw);
                }
            }
        }
        let start = raw.len();
        raw.resize(start + size + 2, 0);
        r.read_exact(&mut raw[start..])?;
    }
}

/// Reads a request; answers `Expect: 100-continue` itself before reading the body.
fn read_request(r: &mut impl BufRead, client: &mut TcpStream) -> io::Result<Option<Request>> {
    let Some((line, headers)) = read_head(r)? else {
        return Ok(None);
    };
    let mut parts = line.split(' ');
    let (Some(method), Some(target), Some(_version)) = (parts.next(), parts.next(), parts.next())
    else {
        return Err(invalid(format!("bad request line {line:?}")));
    };
    let (method, target) = (method.to_owned(), target.to_owned());
    if has_token(&headers, "expect", "100-continue") {
        client.write_all(b"HTTP/1.1 100 Continue\r\n\r\n")?;
    }
    let body = if has_token(&headers, "transfer-encoding", "chunked") {
        read_chunked(r)?
    } else {
        let n = content_length(&headers)?.unwrap_or(0);
        let mut body = Vec::new();
        r.by_ref().take(n).read_to_end(&mut body)?;
        if body.len() as u64 != n {
            return Err(invalid("EOF inside a request body"));
        }
        body
    };
    Ok(Some(Request {
        line,
        method,
        target,
        headers,
        body,
    }))
}

/// Serves one client connection, request after request.
fn serve(shared: &Shared, mut client: TcpStream) -> io::Result<()> {
    client.set_read_timeout(Some(IO_TIMEOUT))?;
    client.set_write_timeout(Some(IO_TIMEOUT))?;
    let _ = client.set_nodelay(true);
    let mut reader = BufReader::new(client.try_clone()?);
    let result = (|| loop {
        if shared.stop.load(Ordering::SeqCst) {
            return Ok(());
        }
        let Some(req) = read_request(&mut reader, &mut client)? else {
            return Ok(());
        };
        *shared
            .counts
            .lock()
            .unwrap()
            .entry(req.method.clone())
            .or_insert(0) += 1;
        match shared.decide() {
            Action::Drop => {
                shared.injected.fetch_add(1, Ordering::SeqCst);
                return Ok(());
            }
            Action::Error(status, code) => {
                shared.injected.fetch_add(1, Ordering::SeqCst);
                let body = format!("<Error><Code>{code}</Code><Message>injected</Message></Error>");
                let resp = format!(
                    "HTTP/1.1 {status}\r\nContent-Type: application/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                client.write_all(resp.as_bytes())?;
                client.flush()?;
                return Ok(());
            }
            Action::Forward => {
                let keep_alive = forward(shared, &req, &mut client)?;
                if !keep_alive || has_token(&req.headers, "connection", "close") {
                    return Ok(());
                }
            }
        }
    })();
    let _ = client.shutdown(Shutdown::Both);
    result
}

/// The request head sent upstream.
fn upstream_head(req: &Request, faults: &Faults) -> String {
    let strip = faults.strip_if_none_match && req.header("if-none-match").is_some();
    let new_auth = match (&faults.resign_secret_key, strip) {
        (Some(key), true) => resign(req, key, "if-none-match"),
        _ => None,
    };
    let mut head = format!("{}\r\n", req.line);
    for (line, name, _) in &req.headers {
        if name.eq_ignore_ascii_case("connection")
            || (strip && name.eq_ignore_ascii_case("if-none-match"))
        {
            continue;
        }
        match &new_auth {
            Some(auth) if name.eq_ignore_ascii_case("authorization") => {
                head.push_str(&format!("{name}: {auth}\r\n"));
            }
            _ => {
                head.push_str(line);
                head.push_str("\r\n");
            }
        }
    }
    head.push_str("Connection: close\r\n\r\n");
    head
}

/// Forwards one request and relays the response; returns whether the client
/// connection can stay open.
fn forward(shared: &Shared, req: &Request, client: &mut TcpStream) -> io::Result<bool> {
    let mut up = TcpStream::connect_timeout(&shared.upstream, IO_TIMEOUT)?;
    up.set_read_timeout(Some(IO_TIMEOUT))?;
    up.set_write_timeout(Some(IO_TIMEOUT))?;
    let _ = up.set_nodelay(true);
    up.write_all(upstream_head(req, &shared.faults).as_bytes())?;
    up.write_all(&req.body)?;
    up.flush()?;

    let mut up = BufReader::new(up);
    let (status_line, headers) = loop {
        let (line, headers) =
            read_head(&mut up)?.ok_or_else(|| invalid("upstream closed without a response"))?;
        let status: u16 = line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| invalid(format!("bad status line {line:?}")))?;
        // The proxy answered `Expect: 100-continue` itself: swallow interim responses.
        if (100..200).contains(&status) && status != 101 {
            continue;
        }
        break ((line, status), headers);
    };
    let (line, status) = status_line;
    let no_body = req.method == "HEAD" || status == 204 || status == 304;
    let chunked = has_token(&headers, "transfer-encoding", "chunked");
    let length = if no_body {
        Some(0)
    } else if chunked {
        None
    } else {
        content_length(&headers)?
    };

    let mut head = format!("{line}\r\n");
    for (raw, name, _) in &headers {
        if !name.eq_ignore_ascii_case("connection") {
            head.push_str(raw);
            head.push_str("\r\n");
        }
    }
    match length {
        Some(n) => {
            // Framed: keep the client connection alive.
            head.push_str("\r\n");
            client.write_all(head.as_bytes())?;
            let copied = io::copy(&mut up.by_ref().take(n), client)?;
            client.flush()?;
            if copied != n {
                return Err(invalid("upstream closed inside a response body"));
            }
            Ok(true)
        }
        None => {
            // Chunked or close-delimited: copy until upstream EOF, then close.
            head.push_str("Connection: close\r\n\r\n");
            client.write_all(head.as_bytes())?;
            io::copy(&mut up, client)?;
            client.flush()?;
            Ok(false)
        }
    }
}

// ---- SigV4 re-signing ----

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn hmac_sha256(key: &[u8], data: &[u8]) -> [u8; 32] {
    let mut k = [0u8; 64];
    if key.len() > 64 {
        k[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let ipad: Vec<u8> = k.iter().map(|b| b ^ 0x36).collect();
    let opad: Vec<u8> = k.iter().map(|b| b ^ 0x5c).collect();
    let inner = Sha256::new()
        .chain_update(&ipad)
        .chain_update(data)
        .finalize();
    Sha256::new()
        .chain_update(&opad)
        .chain_update(inner)
        .finalize()
        .into()
}

/// The SigV4 signature (hex) of a request, as s3s verifies it: `target` is
/// the raw path and query; `signed` are lowercase names, sorted; `headers`
/// are (name, value) pairs; `scope` is `DATE/REGION/SERVICE/aws4_request`.
#[allow(clippy::too_many_arguments)]
fn sigv4_signature(
    secret: &str,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    signed: &[&str],
    amz_date: &str,
    scope: &str,
    payload_hash: &str,
) -> String {
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let mut qs: Vec<(&str, &str)> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| p.split_once('=').unwrap_or((p, "")))
        .collect();
    qs.sort_by(|a, b| a.0.cmp(b.0));
    let query: Vec<String> = qs.iter().map(|(k, v)| format!("{k}={v}")).collect();

    let mut canonical = format!("{method}\n{path}\n{}\n", query.join("&"));
    for name in signed {
        let values: Vec<String> = headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.split_whitespace().collect::<Vec<_>>().join(" "))
            .collect();
        canonical.push_str(&format!("{name}:{}\n", values.join(",")));
    }
    canonical.push_str(&format!("\n{}\n{payload_hash}", signed.join(";")));

    let to_sign = format!(
        "AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}",
        hex(&Sha256::digest(canonical.as_bytes()))
    );
    let mut parts = scope.split('/');
    let mut key = hmac_sha256(
        format!("AWS4{secret}").as_bytes(),
        parts.next().unwrap_or("").as_bytes(),
    );
    for part in parts {
        key = hmac_sha256(&key, part.as_bytes());
    }
    hex(&hmac_sha256(&key, to_sign.as_bytes()))
}

/// A new `Authorization` value for `req` with `removed` taken out of the
/// signed headers; `None` when the request is not header-signed with SigV4
/// or did not sign `removed`.
fn resign(req: &Request, secret: &str, removed: &str) -> Option<String> {
    let auth = req
        .header("authorization")?
        .strip_prefix("AWS4-HMAC-SHA256 ")?;
    let mut credential = None;
    let mut signed = None;
    for part in auth.split(',') {
        match part.trim().split_once('=') {
            Some(("Credential", v)) => credential = Some(v),
            Some(("SignedHeaders", v)) => signed = Some(v),
            _ => {}
        }
    }
    let credential = credential?;
    let signed: Vec<&str> = signed?.split(';').collect();
    if !signed.contains(&removed) {
        return None;
    }
    let signed: Vec<&str> = signed.into_iter().filter(|h| *h != removed).collect();
    let scope = credential.split_once('/')?.1;
    let amz_date = req.header("x-amz-date")?;
    let payload = req
        .header("x-amz-content-sha256")
        .unwrap_or("UNSIGNED-PAYLOAD");
    assert!(
        !payload.starts_with("STREAMING-AWS4-HMAC-SHA256-PAYLOAD"),
        "proxy: cannot re-sign a request with signed chunks ({payload}) after stripping {removed}; \
         configure the client to send plain or unsigned payloads"
    );
    let headers: Vec<(&str, &str)> = req
        .headers
        .iter()
        .map(|(_, n, v)| (n.as_str(), v.as_str()))
        .collect();
    let signature = sigv4_signature(
        secret,
        &req.method,
        &req.target,
        &headers,
        &signed,
        amz_date,
        scope,
        payload,
    );
    Some(format!(
        "AWS4-HMAC-SHA256 Credential={credential}, SignedHeaders={}, Signature={signature}",
        signed.join(";")
    ))
}

// ---- tests ----

/// A fake upstream: answers every request with `200 OK` whose body is the
/// request head followed by `body-length: N`, then closes.
fn fake_upstream() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            thread::spawn(move || {
                conn.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
                let mut r = BufReader::new(conn.try_clone().unwrap());
                let Ok(Some((line, headers))) = read_head(&mut r) else {
                    return;
                };
                let body = if has_token(&headers, "transfer-encoding", "chunked") {
                    read_chunked(&mut r).unwrap()
                } else {
                    let n = content_length(&headers).unwrap().unwrap_or(0);
                    let mut body = Vec::new();
                    r.by_ref().take(n).read_to_end(&mut body).unwrap();
                    body
                };
                let mut echo = format!("{line}\r\n");
                for (raw, _, _) in &headers {
                    echo.push_str(raw);
                    echo.push_str("\r\n");
                }
                echo.push_str(&format!("\r\nbody-length: {}", body.len()));
                let head = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    echo.len()
                );
                let _ = conn.write_all(head.as_bytes());
                if !line.starts_with("HEAD ") {
                    let _ = conn.write_all(echo.as_bytes());
                }
            });
        }
    });
    addr
}

struct Response {
    status: u16,
    headers: Vec<(String, String, String)>,
    body: String,
}

/// Sends `raw` on `conn` and reads one Content-Length-framed response;
/// `None` if the connection was closed without an answer.
fn exchange(conn: &mut BufReader<TcpStream>, raw: &str, head_request: bool) -> Option<Response> {
    conn.get_mut().write_all(raw.as_bytes()).ok()?;
    let (line, headers) = read_head(conn).ok()??;
    let status = line.split(' ').nth(1).unwrap().parse().unwrap();
    let n = if head_request || (100..200).contains(&status) {
        0
    } else {
        content_length(&headers)
            .unwrap()
            .expect("test responses have Content-Length")
    };
    let mut body = Vec::new();
    conn.by_ref().take(n).read_to_end(&mut body).unwrap();
    Some(Response {
        status,
        headers,
        body: String::from_utf8(body).unwrap(),
    })
}

fn connect(addr: SocketAddr) -> BufReader<TcpStream> {
    let s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    BufReader::new(s)
}

#[test]
fn proxy_forwards_sequential_requests_on_one_connection() {
    let proxy = Proxy::start(fake_upstream(), Faults::default());
    assert_eq!(
        proxy.url(),
        format!("http://127.0.0.1:{}", proxy.addr().port())
    );
    let mut conn = connect(proxy.addr());

    let r = exchange(
        &mut conn,
        "GET /bucket/a?x=1 HTTP/1.1\r\nHost: h\r\nConnection: keep-alive\r\n\r\n",
        false,
    )
    .unwrap();
    assert_eq!(r.status, 200);
    assert!(
        r.body.starts_with("GET /bucket/a?x=1 HTTP/1.1\r\n"),
        "{}",
        r.body
    );
    assert!(r.body.contains("\r\nConnection: close\r\n"), "{}", r.body);
    assert!(!r.body.contains("keep-alive"), "{}", r.body);
    assert!(
        r.body.contains("\r\nHost: h\r\n"),
        "Host is forwarded unchanged: {}",
        r.body
    );
    assert!(
        header(&r.headers, "connection").is_none(),
        "client connection stays open"
    );

    let r = exchange(
        &mut conn,
        "PUT /bucket/b HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello",
        false,
    )
    .unwrap();
    assert_eq!(r.status, 200);
    assert!(
        r.body.starts_with("PUT /bucket/b HTTP/1.1\r\n"),
        "{}",
        r.body
    );
    assert!(r.body.ends_with("body-length: 5"), "{}", r.body);

    let r = exchange(
        &mut conn,
        "HEAD /bucket/b HTTP/1.1\r\nHost: h\r\n\r\n",
        true,
    )
    .unwrap();
    assert_eq!(r.status, 200);

    // Expect: 100-continue is answered by the proxy; chunked bodies pass through.
    let r = exchange(
        &mut conn,
        "POST /bucket?delete HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\nabc",
        false,
    )
    .unwrap();
    assert_eq!(r.status, 100);
    let r = exchange(&mut conn, "", false).unwrap();
    assert_eq!(r.status, 200);
    assert!(
        r.body.starts_with("POST /bucket?delete HTTP/1.1\r\n"),
        "{}",
        r.body
    );
    assert!(r.body.ends_with("body-length: 3"), "{}", r.body);
    let r = exchange(
        &mut conn,
        "POST /x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
        false,
    );
    let r = r.unwrap();
    assert_eq!(r.status, 200);
    assert!(
        r.body.ends_with("body-length: 13"),
        "raw chunked body forwarded: {}",
        r.body
    );

    assert_eq!(
        (
            proxy.count("GET"),
            proxy.count("PUT"),
            proxy.count("HEAD"),
            proxy.count("POST")
        ),
        (1, 1, 1, 2)
    );
    assert_eq!(proxy.injected(), 0);

    let addr = proxy.addr();
    drop(proxy);
    let mut buf = [0u8; 1];
    assert_eq!(
        conn.read(&mut buf).unwrap_or(0),
        0,
        "live connections are closed on drop"
    );
    assert!(
        TcpStream::connect(addr).is_err(),
        "listener is closed on drop"
    );
}

/// Outcome of one request on a fresh connection: status, or 0 for a drop.
fn outcomes(faults: Faults, n: usize) -> (Vec<u16>, Proxy) {
    let proxy = Proxy::start(fake_upstream(), faults);
    let mut out = Vec::new();
    for i in 0..n {
        let mut conn = connect(proxy.addr());
        let raw = format!("GET /o/{i} HTTP/1.1\r\nHost: h\r\n\r\n");
        match exchange(&mut conn, &raw, false) {
            None => out.push(0),
            Some(r) => {
                match r.status {
                    200 => assert!(r.body.starts_with(&format!("GET /o/{i} ")), "{}", r.body),
                    500 | 503 => {
                        let code = if r.status == 500 {
                            "InternalError"
                        } else {
                            "SlowDown"
                        };
                        assert_eq!(
                            r.body,
                            format!(
                                "<Error><Code>{code}</Code><Message>injected</Message></Error>"
                            )
                        );
                        assert_eq!(header(&r.headers, "content-type"), Some("application/xml"));
                        assert_eq!(header(&r.headers, "connection"), Some("close"));
                        let mut buf = [0u8; 1];
                        assert_eq!(conn.read(&mut buf).unwrap_or(0), 0, "closed after an error");
                    }
                    s => panic!("unexpected status {s}"),
                }
                out.push(r.status);
            }
        }
    }
    (out, proxy)
}

#[test]
fn proxy_injects_500_at_the_configured_rate() {
    let faults = Faults {
        error_500: 0.3,
        seed: 7,
        ..Faults::default()
    };
    let (out, proxy) = outcomes(faults, 100);
    let errors = out.iter().filter(|s| **s == 500).count();
    assert!(
        (15..=45).contains(&errors),
        "{errors} injected 500s out of 100"
    );
    assert_eq!(out.iter().filter(|s| **s == 200).count(), 100 - errors);
    assert_eq!(proxy.injected(), errors);
    assert_eq!(proxy.count("GET"), 100);
}

#[test]
fn proxy_mixed_faults_are_deterministic() {
    let faults = Faults {
        drop_connection: 0.1,
        error_500: 0.2,
        slow_down_503: 0.2,
        seed: 42,
        ..Faults::default()
    };
    let (first, proxy) = outcomes(faults.clone(), 200);
    let n = |s: u16| first.iter().filter(|x| **x == s).count();
    assert!((5..=40).contains(&n(0)), "{} drops", n(0));
    assert!((15..=65).contains(&n(500)), "{} 500s", n(500));
    assert!((15..=65).contains(&n(503)), "{} 503s", n(503));
    assert_eq!(proxy.injected(), n(0) + n(500) + n(503));
    let (second, _) = outcomes(faults.clone(), 200);
    assert_eq!(first, second, "same seed, same faults");
    let (other, _) = outcomes(Faults { seed: 43, ..faults }, 200);
    assert_ne!(first, other, "another seed, other faults");
}

#[test]
fn proxy_strips_if_none_match() {
    let raw = "PUT /b/k HTTP/1.1\r\nHost: h\r\nif-none-match: *\r\nX-Other: 1\r\nContent-Length: 0\r\n\r\n";
    let plain = Proxy::start(fake_upstream(), Faults::default());
    let r = exchange(&mut connect(plain.addr()), raw, false).unwrap();
    assert!(r.body.contains("\r\nif-none-match: *\r\n"), "{}", r.body);

    let strip = Proxy::start(
        fake_upstream(),
        Faults {
            strip_if_none_match: true,
            ..Faults::default()
        },
    );
    let r = exchange(&mut connect(strip.addr()), raw, false).unwrap();
    assert_eq!(r.status, 200);
    assert!(
        !r.body.to_ascii_lowercase().contains("if-none-match"),
        "{}",
        r.body
    );
    assert!(r.body.contains("\r\nX-Other: 1\r\n"), "{}", r.body);
    assert_eq!(strip.count("PUT"), 1);
}

#[test]
fn proxy_sigv4_matches_the_aws_example() {
    // AWS "GET Object" example, also in s3s' own tests.
    let headers = [
        ("Host", "examplebucket.s3.amazonaws.com"),
        ("Range", "bytes=0-9"),
        (
            "x-amz-content-sha256",
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        ),
        ("x-amz-date", "20130524T000000Z"),
    ];
    let sig = sigv4_signature(
        "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        "GET",
        "/test.txt",
        &headers,
        &["host", "range", "x-amz-content-sha256", "x-amz-date"],
        "20130524T000000Z",
        "20130524/us-east-1/s3/aws4_request",
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    );
    assert_eq!(
        sig,
        "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
    );
}

// ---- against a real s3s-fs ----

/// `YYYYMMDDTHHMMSSZ`, now.
fn amz_date_now() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    // SigV4's basic ISO 8601 form: 20261126T133354Z.
    verbatim::clock::rfc3339(secs).replace(['-', ':'], "")
}

const TEST_ACCESS_KEY: &str = crate::s3::ACCESS_KEY;
const TEST_SECRET_KEY: &str = crate::s3::SECRET_KEY;

/// A request signed like the AWS SDK does: every header, `if-none-match` included.
fn signed_request(
    proxy: &Proxy,
    method: &str,
    target: &str,
    extra: &[(&str, &str)],
    body: &str,
) -> Response {
    let date = amz_date_now();
    let host = proxy.addr().to_string();
    let payload = hex(&Sha256::digest(body.as_bytes()));
    let len = body.len().to_string();
    let mut headers = vec![
        ("host", host.as_str()),
        ("x-amz-date", date.as_str()),
        ("x-amz-content-sha256", payload.as_str()),
        ("content-length", len.as_str()),
    ];
    headers.extend_from_slice(extra);
    let mut signed: Vec<&str> = headers.iter().map(|(n, _)| *n).collect();
    signed.sort_unstable();
    let scope = format!("{}/us-east-1/s3/aws4_request", &date[..8]);
    let sig = sigv4_signature(
        TEST_SECRET_KEY,
        method,
        target,
        &headers,
        &signed,
        &date,
        &scope,
        &payload,
    );
    let mut raw = format!("{method} {target} HTTP/1.1\r\n");
    for (n, v) in &headers {
        raw.push_str(&format!("{n}: {v}\r\n"));
    }
    raw.push_str(&format!(
        "authorization: AWS4-HMAC-SHA256 Credential={TEST_ACCESS_KEY}/{scope}, SignedHeaders={}, Signature={sig}\r\nconnection: close\r\n\r\n{body}",
        signed.join(";")
    ));
    exchange(&mut connect(proxy.addr()), &raw, method == "HEAD").expect("no response")
}

#[test]
fn proxy_strip_if_none_match_resigns_for_s3s_fs() {
    let Some(server) = crate::s3::S3Server::start() else {
        return;
    };
    let upstream = server.addr;

    let plain = Proxy::start(upstream, Faults::default());
    let create = &[("if-none-match", "*")];
    assert_eq!(
        signed_request(&plain, "PUT", "/bucket", &[], "").status,
        200
    );
    assert_eq!(
        signed_request(&plain, "PUT", "/bucket/k", create, "one").status,
        200
    );
    assert_eq!(
        signed_request(&plain, "PUT", "/bucket/k", create, "two").status,
        412
    );

    // Stripping a signed header without re-signing breaks the signature.
    let unsigned = Proxy::start(
        upstream,
        Faults {
            strip_if_none_match: true,
            ..Faults::default()
        },
    );
    let r = signed_request(&unsigned, "PUT", "/bucket/k", create, "three");
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(r.body.contains("SignatureDoesNotMatch"), "{}", r.body);

    let strip = Proxy::start(
        upstream,
        Faults {
            strip_if_none_match: true,
            resign_secret_key: Some(TEST_SECRET_KEY.into()),
            ..Faults::default()
        },
    );
    let r = signed_request(&strip, "PUT", "/bucket/k", create, "four");
    assert_eq!(
        r.status, 200,
        "the conditional write is ignored: {}",
        r.body
    );
    let r = signed_request(&strip, "GET", "/bucket/k?x-id=GetObject", &[], "");
    assert_eq!((r.status, r.body.as_str()), (200, "four"));
    assert_eq!((strip.count("PUT"), strip.count("GET")), (1, 1));
}
