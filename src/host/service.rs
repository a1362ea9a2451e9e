//! An agent under a service manager: systemd's notify protocol
//! (`sd_notify`), spoken over the datagram socket `NOTIFY_SOCKET` names,
//! and the unit file that runs an agent so (`Type=notify`, a watchdog,
//! `Restart=on-failure`). Without `NOTIFY_SOCKET` every message is a
//! no-op.

use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::time::{Duration, Instant};

/// Tells the service manager how the agent is doing.
pub struct Notifier {
    socket: Option<(UnixDatagram, SocketAddr)>,
    /// Half of `WATCHDOG_USEC`: how often to say the agent is alive.
    every: Option<Duration>,
    last: std::cell::Cell<Option<Instant>>,
}

impl Notifier {
    /// From `NOTIFY_SOCKET` (a path, or `@name` for an abstract socket)
    /// and `WATCHDOG_USEC`, as systemd sets them.
    pub fn from_env() -> Notifier {
        let socket = std::env::var_os("NOTIFY_SOCKET").and_then(|path| {
            let path = path.to_string_lossy().into_owned();
            let addr = match path.strip_prefix('@') {
                Some(name) => abstract_addr(name)?,
                None => SocketAddr::from_pathname(&path).ok()?,
            };
            Some((UnixDatagram::unbound().ok()?, addr))
        });
        let every = std::env::var("WATCHDOG_USEC")
            .ok()
            .and_then(|u| u.parse::<u64>().ok())
            .filter(|&u| u > 0)
            .map(|u| Duration::from_micros(u) / 2);
        Notifier {
            socket,
            every,
            last: std::cell::Cell::new(None),
        }
    }

    fn send(&self, message: &str) {
        if let Some((sock, addr)) = &self.socket {
            // Best effort: a service manager that went away is not ours to fix.
            let _ = sock.send_to_addr(message.as_bytes(), addr);
        }
    }

    /// `READY=1`, with a status line.
    pub fn ready(&self, status: &str) {
        self.send(&format!("READY=1\nSTATUS={}", one_line(status)));
        self.last.set(Some(Instant::now()));
    }

    /// `WATCHDOG=1`, at most every half watchdog interval; call it often.
    pub fn alive(&self) {
        let Some(every) = self.every else { return };
        if self.last.get().is_some_and(|t| t.elapsed() < every) {
            return;
        }
        self.send("WATCHDOG=1");
        self.last.set(Some(Instant::now()));
    }

    /// `STOPPING=1`, with why.
    pub fn stopping(&self, why: &str) {
        self.send(&format!("STOPPING=1\nSTATUS={}", one_line(why)));
    }
}

fn one_line(s: &str) -> String {
    s.replace(['\n', '\r'], " ")
}

#[cfg(target_os = "linux")]
fn abstract_addr(name: &str) -> Option<SocketAddr> {
    use std::os::linux::net::SocketAddrExt;
    SocketAddr::from_abstract_name(name.as_bytes()).ok()
}

#[cfg(not(target_os = "linux"))]
fn abstract_addr(_name: &str) -> Option<SocketAddr> {
    None
}

/// A systemd unit running `exec` with `args` (an agent's command line,
/// each argument quoted as systemd reads them), as user `user`: notify
/// readiness, a watchdog of `watchdog`, restarted on failure, stopped with
/// SIGTERM (the agent finishes or abandons its step and exits 0).
pub fn systemd_unit(exec: &str, args: &[String], watchdog: Duration) -> String {
    let quoted: Vec<String> = std::iter::once(exec.to_owned())
        .chain(args.iter().cloned())
        .map(|a| quote(&a))
        .collect();
    format!(
        "[Unit]\n\
         Description=verbatim agent: keeps this host on its environment\n\
         Wants=network-online.target\n\
         After=network-online.target\n\
         \n\
         [Service]\n\
         Type=notify\n\
         NotifyAccess=main\n\
         ExecStart={}\n\
         Restart=on-failure\n\
         RestartSec=5s\n\
         WatchdogSec={}s\n\
         KillMode=mixed\n\
         TimeoutStopSec=10min\n\
         \n\
         [Install]\n\
         WantedBy=multi-user.target\n",
        quoted.join(" "),
        watchdog.as_secs().max(1)
    )
}

/// `a` as systemd's `ExecStart=` reads one argument: bare when it can be,
/// else double-quoted with `\`, `"` escaped and `%` and `$` doubled.
fn quote(a: &str) -> String {
    let plain = !a.is_empty()
        && a.chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-=:,@+".contains(c));
    if plain {
        return a.to_owned();
    }
    let mut out = String::from("\"");
    for c in a.chars() {
        match c {
            '\\' | '"' => {
                out.push('\\');
                out.push(c);
            }
            '%' => out.push_str("%%"),
            '$' => out.push_str("$$"),
            _ => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_are_quoted_as_systemd_reads_them() {
        assert_eq!(quote("/usr/bin/verbatim"), "/usr/bin/verbatim");
        assert_eq!(quote("a b"), "\"a b\"");
        assert_eq!(quote("100%"), "\"100%%\"");
        assert_eq!(quote("$HOME"), "\"$$HOME\"");
        assert_eq!(quote(""), "\"\"");
        let unit = systemd_unit(
            "/bin/v",
            &["agent".into(), "prod".into()],
            Duration::from_secs(90),
        );
        assert!(unit.contains("ExecStart=/bin/v agent prod\n"));
        assert!(unit.contains("Type=notify\n") && unit.contains("WatchdogSec=90s\n"));
    }
}
