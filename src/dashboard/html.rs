//! The dashboard as one HTML page: inline CSS, a few lines of vanilla JS
//! (ages kept current while the page stays open), no request of its own,
//! so it works from `file://` and from a bucket alike. Everything that
//! came from the store is untrusted and goes through [`esc`] (and a link
//! only through [`safe_href`]).

use std::fmt::Write;

use super::model::{Dashboard, EnvView, EventView, HostView, RolloutView};
use crate::clock::parse_rfc3339;
use crate::text::human_duration;

/// `s` safe inside HTML text and quoted attributes: `& < > " '` escaped,
/// control characters (but newline and tab) replaced.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '\n' | '\t' => out.push(c),
            c if c.is_control() => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

/// `url`, escaped, when it is an `http(s)://` URL a link may carry;
/// `None` for anything else (`javascript:`, `data:` …).
pub fn safe_href(url: &str) -> Option<String> {
    let lower = url.trim().to_ascii_lowercase();
    (lower.starts_with("https://") || lower.starts_with("http://")).then(|| esc(url.trim()))
}

/// `sha256:5d8f1a2b3c4d…` → `5d8f1a2b3c4d`, escaped.
pub fn short(id: &str) -> String {
    let hex = id.strip_prefix("sha256:").unwrap_or(id);
    esc(&hex.chars().take(12).collect::<String>())
}

/// `time`'s age at `at` (seconds since the epoch), as a `<time>` the
/// script keeps current.
fn ago(time: &str, at: u64) -> String {
    let words = parse_rfc3339(time).map_or_else(
        || "at an unknown time".into(),
        |t| format!("{} ago", human_duration(at.saturating_sub(t))),
    );
    format!(
        "<time class=\"ago\" datetime=\"{}\" title=\"{}\">{}</time>",
        esc(time),
        esc(time),
        esc(&words)
    )
}

const STYLE: &str = include_str!("style.css");
const SCRIPT: &str = include_str!("ages.js");

/// The page.
pub fn page(d: &Dashboard) -> String {
    let mut h = String::with_capacity(64 << 10);
    let _ = write!(
        h,
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>verbatim · {store}</title><style>{STYLE}</style></head>\n<body>\n\
         <header><div class=\"brand\">verbatim<span>fleet</span></div>\
         <div class=\"meta\"><span class=\"store\" title=\"store\">{store}</span> · generated {gen}</div></header>\n<main>\n",
        store = esc(&d.store),
        gen = ago(&d.generated, d.generated_secs),
    );
    pipeline(&mut h, d);
    for e in &d.environments {
        environment(&mut h, e, (d.stale_after_secs, d.generated_secs));
    }
    let _ = write!(
        h,
        "</main>\n<footer>A host is stale when its agent has not been seen for 10 of its intervals \
         (at least 10 s), or, known only by a deploy's report, when that is older than {}. \
         Drift: a host runs something other than its environment's pointer (or, during a rollout, its wave's target).</footer>\n\
         <script>{SCRIPT}</script>\n</body></html>\n",
        esc(&human_duration(d.stale_after_secs))
    );
    h
}

/// The environments in order, one card each.
fn pipeline(h: &mut String, d: &Dashboard) {
    let at = d.generated_secs;
    h.push_str("<section class=\"pipeline\" aria-label=\"environments\">\n");
    for (i, e) in d.environments.iter().enumerate() {
        if i > 0 {
            h.push_str("<div class=\"arrow\" aria-hidden=\"true\">→</div>");
        }
        let live = e.hosts.iter().filter(|x| x.live).count();
        let stale = e.hosts.len() - live;
        let drift = e.hosts.iter().filter(|x| x.live && x.drift).count();
        let rolling = e.rollout.as_ref().filter(|r| in_flight(r));
        let (pill, cls) = if let Some(r) = rolling {
            let cls = if r.state == "rolling" {
                "rolling"
            } else {
                "warn"
            };
            (format!("rollout {}", esc(&r.state)), cls)
        } else if e.unchecked {
            ("unchecked".into(), "bad")
        } else if drift > 0 {
            (format!("{drift} drifting"), "warn")
        } else if e.manifest.is_none() {
            ("empty".into(), "idle")
        } else {
            ("live".into(), "ok")
        };
        let _ = write!(
            h,
            "<a class=\"card {cls}\" href=\"#env-{id}\" data-env=\"{id}\"><div class=\"card-head\"><span class=\"env\">{id}</span><span class=\"pill {cls}\">{pill}</span></div>",
            id = esc(&e.name),
        );
        match &e.manifest {
            Some(m) => {
                let _ = write!(
                    h,
                    "<div class=\"manifest mono\" title=\"{}\" data-manifest=\"{}\">{}</div>",
                    esc(m),
                    esc(m),
                    short(m)
                );
                let _ = write!(h, "<div class=\"rev\">{}</div>", revision(e));
                let _ = write!(
                    h,
                    "<div class=\"when\">live {} by {}</div>",
                    ago(e.time.as_deref().unwrap_or(""), at),
                    esc(e.actor.as_deref().unwrap_or("?"))
                );
            }
            None => h.push_str("<div class=\"manifest\">nothing promoted yet</div>"),
        }
        let _ = write!(
            h,
            "<div class=\"counts\"><span class=\"n-live\">{live} live</span>{}{}</div></a>",
            if stale > 0 {
                format!(" · <span class=\"n-stale\">{stale} stale</span>")
            } else {
                String::new()
            },
            if drift > 0 {
                format!(" · <span class=\"n-drift\">{drift} drift</span>")
            } else {
                String::new()
            },
        );
    }
    h.push_str("</section>\n");
}

fn in_flight(r: &RolloutView) -> bool {
    !matches!(r.state.as_str(), "completed" | "aborted")
}

/// Revision, branch and CI run, escaped; the CI link only if it is one.
fn revision(e: &EnvView) -> String {
    let mut out = match &e.revision {
        Some(r) => {
            let s: String = r.chars().take(12).collect();
            format!(
                "<span class=\"mono\" title=\"{}\">{}{}</span>",
                esc(r),
                esc(&s),
                if e.dirty { "+dirty" } else { "" }
            )
        }
        None => "<span class=\"dim\">no revision</span>".into(),
    };
    if let Some(b) = &e.branch {
        let _ = write!(out, " on <span class=\"branch\">{}</span>", esc(b));
    }
    if let Some(href) = e.ci_url.as_deref().and_then(safe_href) {
        let _ = write!(out, " · <a href=\"{href}\" rel=\"noreferrer\">CI run</a>");
    }
    out
}

fn environment(h: &mut String, e: &EnvView, (stale_after, at): (u64, u64)) {
    let _ = write!(
        h,
        "<section class=\"env-detail\" id=\"env-{id}\" data-env=\"{id}\"><h2>{id}",
        id = esc(&e.name)
    );
    if let Some(m) = &e.manifest {
        let _ = write!(h, " <span class=\"mono dim\">{}</span>", short(m));
    }
    h.push_str("</h2>\n<div class=\"facts\">");
    if let Some(m) = &e.manifest {
        let _ = write!(
            h,
            "<div><b>live</b> <span class=\"mono\">{}</span> (event {}) {}</div>",
            esc(m),
            e.seq.unwrap_or(0),
            ago(e.time.as_deref().unwrap_or(""), at)
        );
        let _ = write!(h, "<div><b>built from</b> {}</div>", revision(e));
    }
    if let Some(c) = &e.check {
        let cls = if e.unchecked { "bad" } else { "ok" };
        let _ = write!(
            h,
            "<div><b>check</b> <span class=\"{cls}-text\">{}</span></div>",
            esc(c)
        );
    }
    match (&e.previous, &e.diff) {
        (Some(p), Some(file)) => {
            let _ = write!(
                h,
                "<div><b>changes</b> <a class=\"diff\" href=\"{}\">files changed since {}</a></div>",
                esc(file),
                short(p)
            );
        }
        (Some(p), None) => {
            let _ = write!(
                h,
                "<div><b>previous</b> <span class=\"mono\">{}</span></div>",
                short(p)
            );
        }
        _ => {}
    }
    h.push_str("</div>\n");
    if let Some(r) = &e.rollout {
        rollout(h, r);
    }
    hosts(h, e, (stale_after, at));
    history(h, e, at);
    h.push_str("</section>\n");
}

fn rollout(h: &mut String, r: &RolloutView) {
    let cls = match r.state.as_str() {
        "completed" => "ok",
        "aborted" | "expired" => "bad",
        "paused" => "warn",
        _ => "rolling",
    };
    let _ = write!(
        h,
        "<div class=\"rollout {cls}\" data-rollout=\"{id}\" data-state=\"{state}\"><div class=\"rollout-head\">\
         <span class=\"pill {cls}\">{state}</span> <b>rollout {id}</b> \
         <span class=\"mono\">{stable}</span> → <span class=\"mono\">{target}</span>\
         <span class=\"dim\"> · step {step}{wave} · {on}/{n} hosts on the target{bake}</span></div>",
        id = r.id,
        state = esc(&r.state),
        stable = short(&r.stable),
        target = short(&r.target),
        step = esc(&r.step),
        wave = if r.wave > 0 { format!(", wave {}/{}", r.wave, r.waves.len()) } else { String::new() },
        on = r.on_target,
        n = r.hosts,
        bake = r.bake_left_secs.map_or(String::new(), |s| format!(" · baking, {} left", human_duration(s))),
    );
    if let Some(d) = &r.detail {
        let _ = write!(h, "<div class=\"why\">{}</div>", esc(d));
    }
    h.push_str("<ol class=\"waves\">");
    for w in &r.waves {
        let _ = write!(
            h,
            "<li class=\"wave {}\" data-wave=\"{}\"><div class=\"wave-head\">wave {} <span class=\"dim\">{}</span></div>",
            w.state,
            w.n,
            w.n,
            esc(&w.size)
        );
        for (host, st) in &w.hosts {
            let _ = write!(
                h,
                "<span class=\"chip {st}\" data-host=\"{id}\" title=\"{st}\">{id}</span>",
                id = esc(host)
            );
        }
        h.push_str("</li>");
    }
    h.push_str("</ol></div>\n");
}

fn hosts(h: &mut String, e: &EnvView, (stale_after, at): (u64, u64)) {
    if e.hosts.is_empty() {
        h.push_str("<p class=\"dim\">No host reports to this environment.</p>\n");
        return;
    }
    h.push_str(
        "<table class=\"hosts\"><thead><tr><th>host</th><th>state</th><th>runs</th><th>should run</th><th>last report</th><th>detail</th></tr></thead><tbody>\n",
    );
    for x in &e.hosts {
        host_row(h, x, (stale_after, at));
    }
    h.push_str("</tbody></table>\n");
}

fn host_row(h: &mut String, x: &HostView, (stale_after, at): (u64, u64)) {
    let liveness = if x.live { "live" } else { "stale" };
    let state_cls = match x.state.as_str() {
        "active" => "ok",
        "failed" => "bad",
        "stale" => "warn",
        _ => "rolling",
    };
    let runs = x
        .running
        .as_deref()
        .map_or("<span class=\"dim\">nothing</span>".into(), |m| {
            format!(
                "<span class=\"mono\" title=\"{}\">{}</span>",
                esc(m),
                short(m)
            )
        });
    let expected = x.expected.as_deref().map_or(String::new(), short);
    let _ = write!(
        h,
        "<tr class=\"host {liveness}{drift}\" data-host=\"{id}\" data-live=\"{live}\" data-drift=\"{d}\" data-state=\"{state}\">\
         <td class=\"mono\">{id}</td><td><span class=\"pill {state_cls}\">{state}</span>{stale}</td>\
         <td>{runs}{driftmark}</td><td class=\"mono dim\">{expected}</td><td>{seen}</td><td class=\"detail\">{detail}</td></tr>",
        drift = if x.drift { " drift" } else { "" },
        id = esc(&x.id),
        live = x.live,
        d = x.drift,
        state = esc(&x.state),
        stale = if x.live {
            String::new()
        } else {
            format!(" <span class=\"pill warn\" title=\"no report for over {}\">stale</span>", esc(&human_duration(stale_after)))
        },
        driftmark = if x.drift { " <span class=\"pill warn\">drift</span>" } else { "" },
        seen = ago(&x.seen, at),
        detail = esc(x.detail.as_deref().unwrap_or("")),
    );
    h.push('\n');
}

/// Events shown before the rest fold away.
const OPEN_EVENTS: usize = 12;

fn history(h: &mut String, e: &EnvView, at: u64) {
    let _ = write!(
        h,
        "<h3>history <span class=\"dim\">{} event{}</span></h3>\n<ol class=\"timeline\">\n",
        e.events_total,
        if e.events_total == 1 { "" } else { "s" }
    );
    for (i, ev) in e.history.iter().enumerate() {
        if i == OPEN_EVENTS {
            let _ = write!(
                h,
                "</ol><details><summary>{} older event{}</summary><ol class=\"timeline\">",
                e.history.len() - OPEN_EVENTS,
                if e.history.len() - OPEN_EVENTS == 1 {
                    ""
                } else {
                    "s"
                }
            );
        }
        event(h, ev, at);
    }
    h.push_str("</ol>");
    if e.history.len() > OPEN_EVENTS {
        h.push_str("</details>");
    }
    if e.history.len() < e.events_total {
        let _ = write!(
            h,
            "<p class=\"dim\">…and {} older (`verbatim history {}`).</p>",
            e.events_total - e.history.len(),
            esc(&e.name)
        );
    }
    h.push('\n');
}

fn event(h: &mut String, ev: &EventView, at: u64) {
    let what = match (&ev.step, ev.kind) {
        (Some(step), _) => format!("rollout {}", esc(step)),
        (None, k) => esc(k),
    };
    let cls = match (ev.kind, ev.step.as_deref()) {
        (_, Some("aborted")) | ("auto-rollback", _) => "bad",
        ("rollback", _) | (_, Some("paused")) => "warn",
        (_, Some("completed")) | ("promote", _) => "ok",
        _ => "rolling",
    };
    let from = ev.from.as_deref().map_or("nothing".into(), short);
    let _ = write!(
        h,
        "<li class=\"event {cls}\" data-seq=\"{seq}\"><span class=\"dot\"></span><div class=\"ev-head\">\
         <span class=\"seq\">#{seq}</span> <b>{what}</b> <span class=\"mono\">{from} → {to}</span>{forced}</div>\
         <div class=\"ev-meta\">{time} by {actor}{check}</div>",
        seq = ev.seq,
        to = short(&ev.to),
        forced = if ev.forced { " <span class=\"pill bad\">forced</span>" } else { "" },
        time = ago(&ev.time, at),
        actor = esc(&ev.actor),
        check = ev.check.as_deref().map_or(String::new(), |c| format!(" · check {}", esc(c))),
    );
    if let Some(r) = &ev.reason {
        let _ = write!(h, "<div class=\"reason\">“{}”</div>", esc(r));
    }
    if let Some(d) = &ev.detail {
        let _ = write!(h, "<div class=\"ev-detail\">{}</div>", esc(d));
    }
    h.push_str("</li>\n");
}

#[cfg(test)]
mod tests {
    use super::super::model::{Dashboard, EnvView, EventView, HostView};
    use super::*;

    const BAD: &str = "\"'><script>alert(1)</script><img src=x onerror=alert(2)>&amp;";

    #[test]
    fn nothing_from_the_store_becomes_markup() {
        let host = HostView {
            id: BAD.into(),
            state: BAD.into(),
            running: Some(BAD.into()),
            manifest: BAD.into(),
            expected: Some(BAD.into()),
            drift: true,
            live: false,
            seen: BAD.into(),
            age_secs: None,
            detail: Some(BAD.into()),
            tool: BAD.into(),
        };
        let event = EventView {
            seq: 1,
            kind: "promote",
            step: Some(BAD.into()),
            time: BAD.into(),
            actor: BAD.into(),
            from: Some(BAD.into()),
            to: BAD.into(),
            reason: Some(BAD.into()),
            forced: true,
            detail: Some(BAD.into()),
            check: Some(BAD.into()),
        };
        let env = EnvView {
            name: BAD.into(),
            manifest: Some(BAD.into()),
            seq: Some(1),
            time: Some(BAD.into()),
            age_secs: None,
            actor: Some(BAD.into()),
            revision: Some(BAD.into()),
            branch: Some(BAD.into()),
            dirty: true,
            ci_url: Some("javascript:alert(3)".into()),
            check: Some(BAD.into()),
            unchecked: true,
            previous: Some(BAD.into()),
            diff: Some(BAD.into()),
            rollout: None,
            hosts: vec![host],
            history: vec![event],
            events_total: 1,
        };
        let page = page(&Dashboard {
            store: BAD.into(),
            generated: BAD.into(),
            generated_secs: 0,
            stale_after_secs: 60,
            environments: vec![env],
        });
        assert_eq!(page.matches("<script").count(), 1, "only the page's own");
        assert!(!page.contains("<img"));
        assert!(!page.contains("javascript:"));
        assert!(!page.contains("\"'>"), "an attribute was closed");
        assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(page.contains("&amp;amp;"));
    }

    #[test]
    fn links_are_http_only() {
        assert_eq!(
            safe_href("https://ci/x?a=1&b=\"").as_deref(),
            Some("https://ci/x?a=1&amp;b=&quot;")
        );
        assert_eq!(safe_href(" JavaScript:alert(1)"), None);
        assert_eq!(safe_href("data:text/html,x"), None);
    }
}
