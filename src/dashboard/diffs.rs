//! Each environment's live manifest against the one live before it, file
//! by file (`objects::diff`), as a small page beside the dashboard:
//! `diff-<before hex>-<after hex>.html`. A pair's diff never changes, so
//! a page already there is not made again: each pair's artifacts are
//! streamed (never stored) once, ever. Artifacts over
//! [`MAX_ARTIFACT_BYTES`] together are not streamed: their page lists the
//! assets that changed and says the artifact did.

use std::fmt::Write;

use anyhow::Result;

use super::html::{esc, short};
use crate::digest::Digest;
use crate::objects::diff::{diff, DiffJson};
use crate::objects::load_manifest;
use crate::store::Store;
use crate::text::human_bytes;

/// The most compressed artifact bytes (both together) a diff page streams.
pub const MAX_ARTIFACT_BYTES: u64 = 256 << 20;

/// The file name of the diff page from `before` to `after`.
pub fn file_name(before: &str, after: &str) -> String {
    let hex = |id: &str| id.strip_prefix("sha256:").unwrap_or(id).to_owned();
    format!("diff-{}-{}.html", hex(before), hex(after))
}

/// The diff page of `before` → `after` in `store`, for environment `env`.
pub fn page(store: &dyn Store, env: &str, before: &str, after: &str) -> Result<String> {
    let (a_id, b_id): (Digest, Digest) = (
        before.parse().map_err(anyhow::Error::msg)?,
        after.parse().map_err(anyhow::Error::msg)?,
    );
    let (a, mut b) = (load_manifest(store, &a_id)?, load_manifest(store, &b_id)?);
    let big = a.artifact.sha256 != b.artifact.sha256
        && a.artifact.size.saturating_add(b.artifact.size) > MAX_ARTIFACT_BYTES;
    let sizes = (a.artifact.size, b.artifact.size);
    if big {
        // Compare the assets only: the artifact is said to differ below.
        b.artifact = a.artifact.clone();
    }
    let d = diff(store, (&a_id, &a), (&b_id, &b))?;
    Ok(render(env, &d, big.then_some(sizes)))
}

fn render(env: &str, d: &DiffJson, skipped: Option<(u64, u64)>) -> String {
    let mut h = String::with_capacity(8 << 10);
    let _ = write!(
        h,
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{env}: {a} → {b}</title><style>{STYLE}</style></head><body>\
         <p><a href=\"index.html\">← dashboard</a></p><h1>{env}: <span class=\"mono\">{a}</span> → <span class=\"mono\">{b}</span></h1>\
         <p class=\"dim mono\">{fa}<br>{fb}</p>",
        env = esc(env),
        a = short(&d.a),
        b = short(&d.b),
        fa = esc(&d.a),
        fb = esc(&d.b),
    );
    let art = &d.artifact;
    let n = art.added.len() + art.removed.len() + art.changed.len();
    match skipped {
        Some((x, y)) => {
            let _ = write!(
                h,
                "<h2>artifact</h2><p>changed ({} → {}); its files were not compared: the two weigh over {} (`verbatim diff` compares them)</p>",
                human_bytes(x),
                human_bytes(y),
                human_bytes(MAX_ARTIFACT_BYTES)
            );
        }
        None if !d.artifact_changed => h.push_str("<h2>artifact</h2><p>unchanged</p>"),
        None => {
            let _ = write!(
                h,
                "<h2>artifact <span class=\"dim\">{n} file(s)</span></h2><table>"
            );
            for e in &art.added {
                row(&mut h, "added", &e.path, &human_bytes(e.size));
            }
            for e in &art.removed {
                row(&mut h, "removed", &e.path, &human_bytes(e.size));
            }
            for e in &art.changed {
                let sizes = format!(
                    "{} → {}",
                    human_bytes(e.size_before),
                    human_bytes(e.size_after)
                );
                row(&mut h, "changed", &e.path, &sizes);
            }
            h.push_str("</table>");
        }
    }
    let s = &d.assets;
    let m = s.added.len() + s.removed.len() + s.changed.len();
    let _ = write!(h, "<h2>assets <span class=\"dim\">{m} file(s)</span></h2>");
    if m == 0 {
        h.push_str("<p>unchanged</p>");
    } else {
        h.push_str("<table>");
        for (what, paths) in [
            ("added", &s.added),
            ("removed", &s.removed),
            ("changed", &s.changed),
        ] {
            for p in paths {
                row(&mut h, what, p, "");
            }
        }
        h.push_str("</table>");
    }
    h.push_str("</body></html>\n");
    h
}

fn row(h: &mut String, what: &str, path: &str, size: &str) {
    let _ = write!(
        h,
        "<tr class=\"{what}\"><td class=\"what\">{what}</td><td class=\"mono\">{}</td><td class=\"dim\">{}</td></tr>",
        esc(path),
        esc(size)
    );
}

const STYLE: &str = "body{font:14px/1.45 system-ui,sans-serif;max-width:1000px;margin:20px auto;padding:0 20px;color:#1d2330}\
.mono{font-family:ui-monospace,Menlo,monospace;font-size:12.5px}.dim{color:#6b7385}h1{font-size:20px}h2{font-size:15px;margin-top:22px}\
table{border-collapse:collapse;width:100%}td{border-bottom:1px solid #e2e5eb;padding:3px 8px}\
.what{width:6em;font-weight:600}.added .what{color:#1f9d55}.removed .what{color:#d64545}.changed .what{color:#b7791f}";
