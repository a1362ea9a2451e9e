//! Notifications: one JSON POST per event to every `[notify] webhooks`
//! URL, with a Slack- and Teams-compatible `text` and the full event.
//!
//! What is sent: every move an operation makes through its reader
//! (promote, rollback, auto-rollback, each rollout step, `aborted` among
//! them) and every host the promoter sees fail while it waits
//! (`--wait-hosts`, a rollout's waves): the [`Notice`]s of
//! `environments::observe`, told after the event is stored and applied.
//!
//! How: one sender thread per webhook, fed in order, so a slow receiver
//! never holds the move up; each event may take `notify.timeout` seconds
//! (default 5) from when it was stored to reach a webhook, retries
//! included (up to [`ATTEMPTS`], a short pause between). [`Notifier::finish`],
//! at the end of the command, waits for what is still in flight, at most
//! until the newest event's time is up. A webhook that cannot be reached,
//! answers non-2xx or takes too long is a warning, never a failed move.

mod http;

use std::collections::BTreeSet;
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::json;

pub use http::post_json;

use crate::config::Notify;
use crate::environments::event::{Event, Kind};
use crate::environments::observe::{Notice, Observer};
use crate::environments::reader::Reader;
use crate::environments::rollout::{short, Step};
use crate::progress::Progress;

/// Tries per event and webhook, while its time lasts.
pub const ATTEMPTS: u32 = 3;

/// One event for one webhook.
struct Job {
    body: Arc<Vec<u8>>,
    what: String,
    deadline: Instant,
}

struct Worker {
    url: String,
    tx: Mutex<Option<Sender<Job>>>,
    handle: Mutex<Option<JoinHandle<()>>>,
}

/// The webhooks of `[notify]`: an [`Observer`] that POSTs each notice.
pub struct Notifier {
    workers: Vec<Worker>,
    timeout: Duration,
    warnings: Arc<Mutex<Vec<String>>>,
    /// The newest event's deadline: `finish` waits no longer.
    last_deadline: Mutex<Option<Instant>>,
    /// Failed hosts already told (env, host, manifest): a loop that reads
    /// the same report again tells no one twice.
    told: Mutex<BTreeSet<(String, String, String)>>,
}

/// The document POSTed for each notice.
#[derive(Serialize)]
pub struct Message<'a> {
    /// One line for a person, Slack `mrkdwn` escaped (`&`, `<`, `>`).
    pub text: String,
    /// `promote`, `rollback`, `auto-rollback`, `rollout` or `host-failed`.
    pub kind: &'a str,
    /// The environment.
    pub env: &'a str,
    /// The event, as stored (a move), or the failed host (`host-failed`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event: Option<&'a Event>,
    /// The failed host: `{"host", "manifest", "detail"}`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host: Option<serde_json::Value>,
}

impl Notifier {
    /// A notifier for `cfg`'s webhooks; `None` when there are none.
    pub fn new(cfg: &Notify) -> Option<Notifier> {
        if cfg.webhooks.is_empty() {
            return None;
        }
        let warnings = Arc::new(Mutex::new(Vec::new()));
        let workers = cfg
            .webhooks
            .iter()
            .map(|url| {
                let (tx, rx) = mpsc::channel();
                let (u, w) = (url.clone(), warnings.clone());
                let handle = std::thread::spawn(move || send_all(&u, &rx, &w));
                Worker {
                    url: url.clone(),
                    tx: Mutex::new(Some(tx)),
                    handle: Mutex::new(Some(handle)),
                }
            })
            .collect();
        Some(Notifier {
            workers,
            timeout: Duration::from_secs(cfg.timeout_secs),
            warnings,
            last_deadline: Mutex::new(None),
            told: Mutex::new(BTreeSet::new()),
        })
    }

    /// Queues `message` for every webhook.
    pub fn send(&self, message: &Message<'_>, progress: &dyn Progress) {
        let body = match serde_json::to_vec(message) {
            Ok(b) => Arc::new(b),
            Err(e) => return progress.warn(format!("notify: cannot encode a message: {e}")),
        };
        let deadline = Instant::now() + self.timeout;
        if let Ok(mut d) = self.last_deadline.lock() {
            *d = Some(deadline);
        }
        let what = format!("{} of {}", message.kind, message.env);
        for w in &self.workers {
            let sent = w.tx.lock().ok().and_then(|tx| {
                let job = Job {
                    body: body.clone(),
                    what: what.clone(),
                    deadline,
                };
                tx.as_ref()?.send(job).ok()
            });
            if sent.is_none() {
                let url = shown(&w.url);
                progress.warn(format!(
                    "notify: {url}: the {what} was not sent (sender stopped)"
                ));
            }
        }
        self.say(progress);
    }

    /// Waits for what is in flight (no longer than the newest event's
    /// deadline), then says what was not delivered.
    pub fn finish(&self, progress: &dyn Progress) {
        self.stop();
        self.say(progress);
    }

    fn stop(&self) {
        for w in &self.workers {
            if let Ok(mut tx) = w.tx.lock() {
                tx.take();
            }
        }
        let until = self.last_deadline.lock().ok().and_then(|d| *d);
        for w in &self.workers {
            let Some(h) = w.handle.lock().ok().and_then(|mut h| h.take()) else {
                continue;
            };
            // Each job ends by its deadline, so this ends too; the check
            // bounds the wait should a thread be stuck in DNS.
            while !h.is_finished() {
                if until.is_some_and(|u| Instant::now() > u + Duration::from_millis(500)) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }

    fn say(&self, progress: &dyn Progress) {
        let said: Vec<String> = match self.warnings.lock() {
            Ok(mut w) => w.drain(..).collect(),
            Err(_) => return,
        };
        for w in said {
            progress.warn(w);
        }
    }
}

impl Drop for Notifier {
    fn drop(&mut self) {
        self.stop();
    }
}

impl Observer for Notifier {
    fn notice(&self, _reader: &Reader<'_>, notice: &Notice<'_>, progress: &dyn Progress) {
        match *notice {
            Notice::Moved(event) => self.send(&moved(event), progress),
            Notice::HostFailed {
                env,
                host,
                manifest,
                detail,
            } => {
                let key = (env.to_owned(), host.to_owned(), manifest.to_owned());
                if !self.told.lock().is_ok_and(|mut t| t.insert(key)) {
                    return;
                }
                let text = format!(
                    "verbatim · {}: host {} *failed* to run {}: {}",
                    mrkdwn(env),
                    mrkdwn(host),
                    mrkdwn(&short(manifest)),
                    mrkdwn(detail)
                );
                let message = Message {
                    text,
                    kind: "host-failed",
                    env,
                    event: None,
                    host: Some(json!({"host": host, "manifest": manifest, "detail": detail})),
                };
                self.send(&message, progress);
            }
        }
    }
}

/// The message of a move.
pub fn moved(e: &Event) -> Message<'_> {
    let env = mrkdwn(&e.env);
    let from = e.from.as_deref().map_or("nothing".into(), short);
    let mut text = match (e.kind, &e.rollout) {
        (Kind::Rollout, Some(r)) => {
            let mut t = format!(
                "verbatim · {env}: rollout {} of {} over {}: *{}*",
                r.id,
                short(&r.target),
                short(&r.stable),
                r.step.name()
            );
            if r.wave > 0 && !matches!(r.step, Step::Completed | Step::Aborted) {
                t.push_str(&format!(" (wave {})", r.wave));
            }
            if r.all {
                t.push_str(", all hosts");
            } else if !r.hosts.is_empty() {
                t.push_str(&format!(", hosts {}", mrkdwn(&r.hosts.join(", "))));
            }
            if let Some(d) = &r.detail {
                t.push_str(&format!(": {}", mrkdwn(d)));
            }
            t
        }
        (Kind::Promote, _) => format!("verbatim · {env}: *promoted* {} (was {from})", short(&e.to)),
        (Kind::AutoRollback, _) => format!(
            "verbatim · {env}: *rolled back automatically* to {} (from {from})",
            short(&e.to)
        ),
        _ => format!(
            "verbatim · {env}: *rolled back* to {} (from {from})",
            short(&e.to)
        ),
    };
    text.push_str(&format!(" by {}, event {}", mrkdwn(&e.actor), e.seq));
    if let Some(r) = &e.reason {
        text.push_str(&format!(": {}", mrkdwn(r)));
    }
    Message {
        text,
        kind: crate::environments::event::kind_name(e.kind),
        env: &e.env,
        event: Some(e),
        host: None,
    }
}

/// `s` as Slack's `mrkdwn` shows it literally: `&`, `<` and `>` escaped,
/// so a reason cannot mention `<!channel>` or forge a link; control
/// characters dropped.
pub fn mrkdwn(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// The sender thread of one webhook: each job in order, retried while
/// its time lasts.
fn send_all(url: &str, rx: &Receiver<Job>, warnings: &Mutex<Vec<String>>) {
    let warn = |w: String| {
        if let Ok(mut v) = warnings.lock() {
            v.push(w);
        }
    };
    for job in rx.iter() {
        let mut last = String::from("its time was up before it could be sent");
        for attempt in 0..ATTEMPTS {
            let now = Instant::now();
            if now >= job.deadline {
                break;
            }
            let until = job.deadline.min(now + http::ATTEMPT_MAX);
            match post_json(url, &job.body, until) {
                Ok(_) => {
                    last.clear();
                    break;
                }
                Err(why) => last = why,
            }
            if attempt + 1 < ATTEMPTS {
                let pause = Duration::from_millis(200 << attempt);
                let left = job.deadline.saturating_duration_since(Instant::now());
                std::thread::sleep(pause.min(left));
            }
        }
        if !last.is_empty() {
            warn(format!(
                "notify: {}: the {} was not delivered: {last}",
                shown(url),
                job.what
            ));
        }
    }
}

/// A webhook's URL as a message shows it: up to its host, since the rest
/// of a chat webhook's URL is its secret.
pub fn shown(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    format!("{scheme}://{host}/…")
}
