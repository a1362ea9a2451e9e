//! Per-environment config: values (`API_URL=https://…`) an environment's
//! pages and hosts read at run time, changed without a rebuild, so one
//! manifest runs verbatim in every environment.
//!
//! Each environment's config is a log of its own ([`log`]), beside its
//! history and not in it: create-only events
//! `envs/<env>/config/events/<seq>.json`, each recording who changed which
//! keys, when, why, and the whole config after it (`to`), hash-chained
//! (`prev`) like every log; the pointer `envs/<env>/config.json` is the
//! newest event's config, byte for byte, moved by compare-and-swap. An
//! event's `to` must be the `to` before it with its `set` and `unset`
//! applied, so no event can say one change and make another.
//!
//! The config reaches pages as one JSON block ([`block`], [`inject`]) and
//! hosts as a JSON file and an env file ([`env_file`]). Keys are
//! environment-variable names; values are bounded text without control
//! characters ([`check_values`]). Pure: no I/O.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::log::{canonical, inconsistent, strict_digest, Entry, Inconsistent, Log};

/// The `schema` of every [`ConfigEvent`].
pub const EVENT_SCHEMA: &str = "verbatim.config-event/v1";
/// The `schema` of every [`ConfigPointer`].
pub const POINTER_SCHEMA: &str = "verbatim.config/v1";
/// The `id` of the block injected into pages.
pub const BLOCK_ID: &str = "verbatim-config";
/// The longest key, in bytes.
pub const MAX_KEY_BYTES: usize = 128;
/// The longest value, in bytes (UTF-8).
pub const MAX_VALUE_BYTES: usize = 4096;
/// The most keys one environment's config holds.
pub const MAX_KEYS: usize = 256;
/// The most bytes of keys and values together.
pub const MAX_TOTAL_BYTES: usize = 64 << 10;

/// A config: keys to values, sorted by key.
pub type Values = BTreeMap<String, String>;

/// How a config event came about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// `verbatim config set`.
    Set,
    /// `verbatim config rollback`: back to what an earlier event left.
    Rollback,
}

/// One change of an environment's config:
/// `envs/<env>/config/events/<seq>.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigEvent {
    /// Always [`EVENT_SCHEMA`].
    pub schema: String,
    /// The environment whose config it changes; must agree with its key.
    pub env: String,
    /// Its place in the log, from 1; must agree with its file name.
    pub seq: u64,
    /// How it came about.
    pub kind: Kind,
    /// RFC 3339, UTC.
    pub time: String,
    /// Who changed it ([`crate::actor::actor`]).
    pub actor: String,
    /// The keys it set, to their new values.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub set: Values,
    /// The keys it removed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unset: Vec<String>,
    /// The whole config after it: the `to` before it, `set` and `unset` applied.
    pub to: Values,
    /// For a rollback, the event whose config it restores.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollback_to: Option<u64>,
    /// Why, as `--reason` gave it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// `sha256:<hex>` of the stored bytes of the event before it; absent on
    /// the first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prev: Option<String>,
}

/// `envs/<env>/config.json`: the config in effect, and the event that set it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigPointer {
    /// Always [`POINTER_SCHEMA`].
    pub schema: String,
    /// The environment.
    pub env: String,
    /// The newest event it applies.
    pub seq: u64,
    /// RFC 3339, UTC: when that event was made.
    pub time: String,
    /// Who made it.
    pub actor: String,
    /// The config in effect: the `to` of event `seq`.
    pub config: Values,
}

/// `envs/<env>/config.json`
pub fn pointer_key(env: &str) -> String {
    format!("envs/{env}/config.json")
}

/// `envs/<env>/config/events/`
pub fn events_prefix(env: &str) -> String {
    format!("envs/{env}/config/events/")
}

/// `envs/<env>/config/signatures/<seq>/`: the signatures of one config event.
pub fn signatures_prefix(env: &str, seq: u64) -> String {
    format!("envs/{env}/config/signatures/{seq}/")
}

/// The config log of environment `env`.
pub fn log(env: &str) -> Log {
    Log {
        name: format!("the config of {env}"),
        pointer_key: pointer_key(env),
        events_prefix: events_prefix(env),
    }
}

/// Why `key` is not a config key, if it is not: an environment variable's
/// name (`A-Z`, `a-z`, `0-9`, `_`, not starting with a digit), up to
/// [`MAX_KEY_BYTES`].
pub fn check_key(key: &str) -> Result<(), String> {
    let shown = || crate::text::escape(key);
    if key.is_empty() {
        return Err("a key is empty: write KEY=VALUE".into());
    }
    if key.len() > MAX_KEY_BYTES {
        return Err(format!(
            "key `{}…` is {} bytes, more than {MAX_KEY_BYTES}",
            crate::text::escape(&key.chars().take(32).collect::<String>()),
            key.len()
        ));
    }
    let ok_char = |c: char| c.is_ascii_alphanumeric() || c == '_';
    if key.starts_with(|c: char| c.is_ascii_digit()) || !key.chars().all(ok_char) {
        return Err(format!(
            "key `{}` is not an environment variable's name: use letters, digits and `_`, not starting with a digit (API_URL, featureFlag_2)",
            shown()
        ));
    }
    Ok(())
}

/// Why `value` cannot be `key`'s value, if it cannot: at most
/// [`MAX_VALUE_BYTES`], no control characters (a newline included: the
/// env file holds one line per key).
pub fn check_value(key: &str, value: &str) -> Result<(), String> {
    if value.len() > MAX_VALUE_BYTES {
        return Err(format!(
            "the value of {key} is {} bytes, more than {MAX_VALUE_BYTES}: keep large documents elsewhere and put their URL here",
            value.len()
        ));
    }
    if let Some(c) = value.chars().find(|c| c.is_control()) {
        return Err(format!(
            "the value of {key} holds a control character ({:?}); values are one line of text",
            c
        ));
    }
    Ok(())
}

/// Why `values` is not a config anyone may use, if it is not: each key
/// and value as above, at most [`MAX_KEYS`] keys and [`MAX_TOTAL_BYTES`].
pub fn check_values(values: &Values) -> Result<(), String> {
    for (k, v) in values {
        check_key(k)?;
        check_value(k, v)?;
    }
    if values.len() > MAX_KEYS {
        return Err(format!(
            "the config would hold {} keys, more than {MAX_KEYS}",
            values.len()
        ));
    }
    let total: usize = values.iter().map(|(k, v)| k.len() + v.len()).sum();
    if total > MAX_TOTAL_BYTES {
        return Err(format!(
            "the config would hold {total} bytes of keys and values, more than {MAX_TOTAL_BYTES}"
        ));
    }
    Ok(())
}

/// `from` with `set` applied, then `unset` removed.
pub fn apply(from: &Values, set: &Values, unset: &[String]) -> Values {
    let mut to = from.clone();
    to.extend(set.iter().map(|(k, v)| (k.clone(), v.clone())));
    for k in unset {
        to.remove(k);
    }
    to
}

/// What turns `from` into `to`: the keys to set (new or changed) and those
/// to unset.
pub fn diff(from: &Values, to: &Values) -> (Values, Vec<String>) {
    let set = to
        .iter()
        .filter(|(k, v)| from.get(*k) != Some(*v))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let unset = from
        .keys()
        .filter(|k| !to.contains_key(*k))
        .cloned()
        .collect();
    (set, unset)
}

impl ConfigEvent {
    /// Its canonical JSON: the bytes stored at its key, which the next
    /// event's `prev` hashes.
    pub fn to_bytes(&self) -> Vec<u8> {
        canonical(self)
    }

    /// The pointer this event sets.
    pub fn pointer(&self) -> ConfigPointer {
        ConfigPointer {
            schema: POINTER_SCHEMA.into(),
            env: self.env.clone(),
            seq: self.seq,
            time: self.time.clone(),
            actor: self.actor.clone(),
            config: self.to.clone(),
        }
    }

    /// `set A, B; unset C` in words.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if !self.set.is_empty() {
            let keys: Vec<&str> = self.set.keys().map(String::as_str).collect();
            parts.push(format!("set {}", keys.join(", ")));
        }
        if !self.unset.is_empty() {
            parts.push(format!("unset {}", self.unset.join(", ")));
        }
        if parts.is_empty() {
            parts.push("no change".into());
        }
        parts.join("; ")
    }
}

impl ConfigPointer {
    /// Its canonical JSON.
    pub fn to_bytes(&self) -> Vec<u8> {
        canonical(self)
    }

    /// Parses a stored pointer; `key` names it in the error.
    pub fn parse(key: &str, bytes: &[u8]) -> Result<ConfigPointer, Inconsistent> {
        serde_json::from_slice(bytes)
            .map_err(|e| inconsistent(key, format!("not a valid config pointer ({e})")))
    }
}

impl Entry for ConfigEvent {
    fn check(&self, log: &Log, seq: u64, before: Option<&Self>) -> Result<(), Inconsistent> {
        let key = log.event_key(seq);
        let bad = |what: String| Err(inconsistent(&key, what));
        if self.schema != EVENT_SCHEMA {
            return bad(format!("schema is {:?}, not {EVENT_SCHEMA:?}", self.schema));
        }
        if self.seq != seq {
            return bad(format!(
                "says it is event {} but its file name says {seq}",
                self.seq
            ));
        }
        if events_prefix(&self.env) != log.events_prefix {
            return bad(format!(
                "says it belongs to the config of {:?}, not to {}",
                self.env, log.name
            ));
        }
        if let Err(e) = check_values(&self.to).and_then(|()| check_values(&self.set)) {
            return bad(format!("is not a config anyone may use: {e}"));
        }
        if let Some(k) = self.unset.iter().find(|k| check_key(k).is_err()) {
            return bad(format!("unsets {k:?}, which is no key"));
        }
        if let Some(k) = self.unset.iter().find(|k| self.set.contains_key(*k)) {
            return bad(format!("both sets and unsets {k}"));
        }
        match (self.kind, self.rollback_to) {
            (Kind::Rollback, Some(to)) if to >= 1 && to < seq => {}
            (Kind::Set, None) => {}
            _ => {
                return bad(format!(
                    "is a {:?} event with rollback_to {:?}; a rollback names an earlier event, a set none",
                    self.kind, self.rollback_to
                ))
            }
        }
        if self
            .prev
            .as_deref()
            .is_some_and(|p| strict_digest(p).is_none())
        {
            return bad("`prev` is not an event digest".into());
        }
        let from = before.map(|b| b.to.clone()).unwrap_or_default();
        if apply(&from, &self.set, &self.unset) != self.to {
            return bad(format!(
                "says its config is {} keys, but event {} left {} keys and this one changes only {}: its `to` is not the config before it with its own change applied",
                self.to.len(),
                seq.saturating_sub(1),
                from.len(),
                self.describe()
            ));
        }
        Ok(())
    }

    fn prev(&self) -> Option<&str> {
        self.prev.as_deref()
    }

    fn pointer_bytes(&self) -> Vec<u8> {
        self.pointer().to_bytes()
    }

    fn pointer_seq(bytes: &[u8]) -> Result<u64, String> {
        serde_json::from_slice::<ConfigPointer>(bytes)
            .map(|p| p.seq)
            .map_err(|e| format!("not a valid config pointer ({e})"))
    }
}

/// The config as JSON safe inside a `<script>` element: `<`, `>` and `&`
/// (and U+2028, U+2029) written as `\uXXXX`, so no value can close the
/// element or open a comment; the JSON parses to the same object.
pub fn script_json(values: &Values) -> String {
    let json = serde_json::to_string(values).expect("a map of strings serializes");
    let mut out = String::with_capacity(json.len());
    for c in json.chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    out
}

/// The block a page carries: `<script type="application/json"
/// id="verbatim-config">{…}</script>`. Data, not code: a CSP without
/// `unsafe-inline` allows it, and page code reads it with
/// `JSON.parse(document.getElementById("verbatim-config").textContent)`.
pub fn block(values: &Values) -> String {
    format!(
        "<script type=\"application/json\" id=\"{BLOCK_ID}\">{}</script>",
        script_json(values)
    )
}

/// `page` with [`block`] inserted right after its `<head …>` start tag
/// (else after `<html …>`, else after `<!doctype …>`, else at the very
/// start), so it is in the DOM before any script of the page runs. The
/// rest of the page is untouched: `verify` recomputes this exactly.
pub fn inject(page: &[u8], values: &Values) -> Vec<u8> {
    let at = after_tag(page, b"<head").or_else(|| after_tag(page, b"<html"));
    let at = at.or_else(|| after_tag(page, b"<!doctype")).unwrap_or(0);
    let block = block(values);
    let mut out = Vec::with_capacity(page.len() + block.len());
    out.extend_from_slice(&page[..at]);
    out.extend_from_slice(block.as_bytes());
    out.extend_from_slice(&page[at..]);
    out
}

/// The offset just past the first start tag named `open` (`<head`, any
/// case, followed by `>`, `/` or white space), if there is one.
fn after_tag(page: &[u8], open: &[u8]) -> Option<usize> {
    let n = open.len();
    let mut i = 0;
    while i + n <= page.len() {
        let found = page[i..]
            .windows(n)
            .position(|w| w.eq_ignore_ascii_case(open))?
            + i;
        let next = page.get(found + n).copied();
        if matches!(
            next,
            Some(b'>' | b'/' | b' ' | b'\t' | b'\n' | b'\r' | b'\x0c')
        ) {
            let end = page[found..].iter().position(|&b| b == b'>')? + found;
            return Some(end + 1);
        }
        i = found + 1;
    }
    None
}

/// The env-file form: one `KEY="value"` line per key, sorted, with `\`,
/// `"`, `$` and `` ` `` escaped by a backslash: `. shared/verbatim-config.env`
/// in sh reads back every value exactly, as systemd's `EnvironmentFile=`
/// does.
pub fn env_file(values: &Values) -> String {
    let mut out = String::from("# written by verbatim agent: the config of this environment\n");
    for (k, v) in values {
        let mut quoted = String::with_capacity(v.len() + 2);
        for c in v.chars() {
            if matches!(c, '\\' | '"' | '$' | '`') {
                quoted.push('\\');
            }
            quoted.push(c);
        }
        out.push_str(&format!("{k}=\"{quoted}\"\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest::Digest;
    use crate::environments::log::check_log;

    fn values(pairs: &[(&str, &str)]) -> Values {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn event(seq: u64, set: &[(&str, &str)], unset: &[&str], to: &[(&str, &str)]) -> ConfigEvent {
        ConfigEvent {
            schema: EVENT_SCHEMA.into(),
            env: "prod".into(),
            seq,
            kind: Kind::Set,
            time: crate::clock::rfc3339(0),
            actor: "ci".into(),
            set: values(set),
            unset: unset.iter().map(|s| s.to_string()).collect(),
            to: values(to),
            rollback_to: None,
            reason: None,
            prev: None,
        }
    }

    fn chain() -> Vec<ConfigEvent> {
        let first = event(1, &[("A", "1"), ("B", "2")], &[], &[("A", "1"), ("B", "2")]);
        let mut second = event(2, &[("A", "3")], &["B"], &[("A", "3")]);
        second.prev = Some(Digest::of(&first.to_bytes()).to_string());
        vec![first, second]
    }

    fn digests(h: &[ConfigEvent]) -> Vec<Digest> {
        h.iter().map(|e| Digest::of(&e.to_bytes())).collect()
    }

    #[test]
    fn keys_and_values() {
        for ok in ["API_URL", "a", "_x", "featureFlag_2"] {
            assert_eq!(check_key(ok), Ok(()), "{ok}");
        }
        for (bad, says) in [
            ("", "empty"),
            ("2FA", "not starting with a digit"),
            ("API-URL", "`API-URL` is not"),
            ("A B", "not an environment"),
            ("É", "not an environment"),
        ] {
            let e = check_key(bad).unwrap_err();
            assert!(e.contains(says), "{bad:?}: {e}");
        }
        assert!(check_key(&"K".repeat(129))
            .unwrap_err()
            .contains("129 bytes"));
        assert_eq!(check_value("A", "https://x/?a=1&b=<2>"), Ok(()));
        assert!(check_value("A", "a\nb").unwrap_err().contains("value of A"));
        assert!(check_value("A", &"x".repeat(4097))
            .unwrap_err()
            .contains("4097 bytes"));
        let many: Values = (0..257).map(|i| (format!("K{i}"), String::new())).collect();
        assert!(check_values(&many).unwrap_err().contains("257 keys"));
    }

    #[test]
    fn a_config_log_is_checked_and_chained() {
        let log = log("prod");
        assert_eq!(log.event_key(1), "envs/prod/config/events/0000000001.json");
        let h = chain();
        assert_eq!(check_log(&log, &h, &digests(&h)), Ok(()));
        let broken = |f: &dyn Fn(&mut Vec<ConfigEvent>), seq: u64, says: &str| {
            let mut h = chain();
            f(&mut h);
            let e = check_log(&log, &h, &digests(&h)).unwrap_err();
            assert_eq!(e.key, log.event_key(seq), "{e}");
            assert!(e.what.contains(says), "{says:?} not in {e}");
        };
        broken(
            &|h| h[1].to = values(&[("A", "9")]),
            2,
            "not the config before it",
        );
        broken(&|h| h[0].env = "dev".into(), 1, "config of \"dev\"");
        broken(
            &|h| h[1].unset = vec!["A".into()],
            2,
            "both sets and unsets A",
        );
        broken(&|h| h[1].rollback_to = Some(1), 2, "rollback_to");
        broken(
            &|h| {
                h[0].set.insert("x-y".into(), "1".into());
            },
            1,
            "not an environment",
        );
        broken(
            &|h| h[0].reason = Some("edited".into()),
            2,
            "`prev` does not match",
        );
        let mut rb = chain();
        rb[1].kind = Kind::Rollback;
        rb[1].rollback_to = Some(1);
        assert_eq!(check_log(&log, &rb, &digests(&rb)), Ok(()));
        rb[1].rollback_to = Some(2);
        assert!(check_log(&log, &rb, &digests(&rb)).is_err());
    }

    #[test]
    fn apply_and_diff_agree() {
        let from = values(&[("A", "1"), ("B", "2")]);
        let to = values(&[("A", "1"), ("C", "3")]);
        let (set, unset) = diff(&from, &to);
        assert_eq!(set, values(&[("C", "3")]));
        assert_eq!(unset, ["B"]);
        assert_eq!(apply(&from, &set, &unset), to);
    }

    #[test]
    fn the_block_cannot_be_broken_out_of() {
        let v = values(&[("X", "</script><script>alert(1)</script><!--&\u{2028}")]);
        let b = block(&v);
        assert_eq!(b.matches("</script>").count(), 1, "{b}");
        assert!(!b.contains("<!--"), "{b}");
        let json = b
            .strip_prefix("<script type=\"application/json\" id=\"verbatim-config\">")
            .unwrap()
            .strip_suffix("</script>")
            .unwrap();
        let back: Values = serde_json::from_str(json).unwrap();
        assert_eq!(back, v);
    }

    #[test]
    fn the_block_goes_right_after_the_head_start_tag() {
        let v = values(&[("A", "1")]);
        let b = block(&v);
        let check = |page: &str, want: &str| {
            let got = String::from_utf8(inject(page.as_bytes(), &v)).unwrap();
            assert_eq!(got, want.replace("@", &b), "{page}");
        };
        check(
            "<!doctype html><html><HEAD lang=x><header></header>",
            "<!doctype html><html><HEAD lang=x>@<header></header>",
        );
        check("<header><head>x", "<header><head>@x");
        check("<html lang=en><body>", "<html lang=en>@<body>");
        check("<!DOCTYPE html><p>", "<!DOCTYPE html>@<p>");
        check("<p>bare", "@<p>bare");
        check("<headless><head\n>", "<headless><head\n>@");
    }

    #[test]
    fn the_env_file_reads_back_in_sh() {
        let v = values(&[("A", "x y"), ("B", "a\"b$c`d\\e'f")]);
        let text = env_file(&v);
        assert!(text.contains("A=\"x y\"\n"), "{text}");
        assert!(text.contains(r#"B="a\"b\$c\`d\\e'f""#), "{text}");
    }
}
