//! OpenSSH `allowed_signers` files (what `ssh-keygen -Y verify -f` reads):
//! principals and the keys they sign with, in which namespaces and when,
//! read as OpenSSH reads them (`sshsig.c`, `match.c`'s
//! `match_pattern_list`, `misc.c`'s `parse_absolute_time`), so that a file
//! never trusts more or less here than under `ssh-keygen -Y verify`.
//! Pure but for [`read_allowed_signers`], which reads the named file, and
//! [`local_time`], the one call into the C library's time zone.
//!
//! Where OpenSSH skips a malformed line (it logs it and reads on), this
//! refuses the whole file, naming the line: a host never trusts a file
//! that does not say what its writer meant.

use std::path::Path;

use anyhow::{Context, Result};
use ssh_key::PublicKey;

use crate::error::UsageError;

/// One line of an `allowed_signers` file.
#[derive(Debug, Clone)]
struct Signer {
    /// The principals, as written (quotes removed): a pattern list, as
    /// [`match_pattern_list`] reads it.
    principals: String,
    key: PublicKey,
    /// `namespaces="…"`: a pattern list the namespace must match.
    namespaces: Option<String>,
    /// `valid-after` / `valid-before`, seconds since the epoch.
    valid_after: Option<u64>,
    valid_before: Option<u64>,
}

/// A `valid-after` / `valid-before` time as written, broken down; what
/// [`local_time`] turns into seconds when it carries no `Z`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CivilTime {
    /// The year, 0 to 9999.
    pub year: i32,
    /// 1 to 12.
    pub month: u32,
    /// 1 to 31 (a day past the month's end runs into the next, as in C).
    pub day: u32,
    /// 0 to 23.
    pub hour: u32,
    /// 0 to 59.
    pub minute: u32,
    /// 0 to 61, as `strptime` takes it.
    pub second: u32,
}

/// How a time written without `Z` becomes seconds since the epoch.
type LocalTime<'a> = &'a dyn Fn(&CivilTime) -> Option<u64>;

/// An OpenSSH `allowed_signers` file: principals and the keys they sign
/// with (see ssh-keygen(1), ALLOWED SIGNERS).
#[derive(Debug, Clone, Default)]
pub struct AllowedSigners {
    signers: Vec<Signer>,
}

impl AllowedSigners {
    /// Parses the file's text; an error names the line. Times written
    /// without `Z` (or `UTC`) are local times, in this process's time zone
    /// (`TZ`), as OpenSSH reads them. `cert-authority` lines (certificates)
    /// are not supported and are an error, so that a host never silently
    /// trusts less or more than its file says.
    pub fn parse(text: &str) -> Result<AllowedSigners, String> {
        AllowedSigners::parse_in(text, &local_time)
    }

    /// [`AllowedSigners::parse`], with `local` reading the times written
    /// without `Z`.
    fn parse_in(text: &str, local: LocalTime<'_>) -> Result<AllowedSigners, String> {
        let mut signers = Vec::new();
        for (n, line) in text.lines().enumerate() {
            if let Some(s) =
                parse_line(line, local).map_err(|why| format!("line {}: {why}", n + 1))?
            {
                signers.push(s);
            }
        }
        Ok(AllowedSigners { signers })
    }

    /// The lines that let `key` sign in `namespace` at `now`.
    fn lines_for<'a>(
        &'a self,
        key: &'a PublicKey,
        namespace: &'a str,
        now: u64,
    ) -> impl Iterator<Item = &'a Signer> + 'a {
        self.signers
            .iter()
            .filter(move |s| s.key.key_data() == key.key_data())
            .filter(move |s| {
                s.namespaces
                    .as_deref()
                    .is_none_or(|ns| match_pattern_list(namespace, ns) == ListMatch::Yes)
            })
            // OpenSSH: refused when `now < valid-after` or `now > valid-before`.
            .filter(move |s| s.valid_after.is_none_or(|t| now >= t))
            .filter(move |s| s.valid_before.is_none_or(|t| now <= t))
    }

    /// Whether `key` may sign as `principal` in `namespace` at `now`: some
    /// line of the file lists the key, lets it sign in that namespace
    /// then, and its principal list matches `principal` with no negated
    /// pattern matching it (`*,!mallory@x` refuses `mallory@x`).
    pub fn allows(&self, key: &PublicKey, principal: &str, namespace: &str, now: u64) -> bool {
        self.lines_for(key, namespace, now)
            .any(|s| match_pattern_list(principal, &s.principals) == ListMatch::Yes)
    }

    /// The principals `key` may sign as in `namespace` at `now`, for
    /// people to read: each line's patterns as written, one by one; a line
    /// whose list negates something is listed whole (`*,!mallory@x`),
    /// since a negation only qualifies the patterns of its own line; a
    /// line that admits no principal at all (`!x` alone) is left out.
    pub fn principals(&self, key: &PublicKey, namespace: &str, now: u64) -> Vec<String> {
        let mut v: Vec<String> = Vec::new();
        for s in self.lines_for(key, namespace, now) {
            let patterns = split_list(&s.principals);
            if !admits_some(&patterns) {
                continue;
            }
            let listed: Vec<&str> = if patterns.iter().any(|p| p.starts_with('!')) {
                vec![s.principals.as_str()]
            } else {
                patterns
            };
            for p in listed {
                if !v.iter().any(|q| q == p) {
                    v.push(p.to_owned());
                }
            }
        }
        v
    }

    /// Whether the file lists no key at all (only comments and blank
    /// lines).
    pub fn is_empty(&self) -> bool {
        self.signers.is_empty()
    }
}

/// One line: `principals [options] key`, or nothing for a blank line or a
/// comment.
fn parse_line(line: &str, local: LocalTime<'_>) -> Result<Option<Signer>, String> {
    let line = line.trim_start_matches(BLANK);
    if line.is_empty() || line.starts_with('#') {
        return Ok(None);
    }
    let (principals, rest) = principal_field(line)?;
    // As OpenSSH: the options come before the key only when what follows
    // the principals is not a key.
    let (options, key) = if is_key_type(rest) {
        ("", rest)
    } else {
        options_field(rest)?
    };
    let key = key.trim_matches(BLANK);
    if key.is_empty() {
        return Err("no public key after the principals and options".into());
    }
    let options = parse_options(options, local)?;
    let key = PublicKey::from_openssh(key).map_err(|e| format!("not a public key ({e})"))?;
    Ok(Some(Signer {
        principals,
        key,
        namespaces: options.namespaces,
        valid_after: options.valid_after,
        valid_before: options.valid_before,
    }))
}

/// What OpenSSH counts as blanks between fields.
const BLANK: [char; 4] = [' ', '\t', '\r', '\n'];

fn is_key_type(s: &str) -> bool {
    ["ssh-", "ecdsa-", "sk-"].iter().any(|p| s.starts_with(p))
}

/// The principals field and what follows it, split as OpenSSH's
/// `strdelimw` splits it: the field ends at the first blank, unless a `"`
/// comes first; then that quote is dropped and the field runs to the next
/// `"` (`"a b"` is the one principal `a b`).
fn principal_field(line: &str) -> Result<(String, &str), String> {
    match line.find(|c| BLANK.contains(&c) || c == '"') {
        None => Err("a principal list and no public key".into()),
        Some(i) if line[i..].starts_with('"') => {
            let after = &line[i + 1..];
            let end = after
                .find('"')
                .ok_or("a `\"` in the principals is never closed")?;
            let field = format!("{}{}", &line[..i], &after[..end]);
            Ok((field, after[end + 1..].trim_start_matches(BLANK)))
        }
        Some(i) => Ok((line[..i].to_owned(), line[i..].trim_start_matches(BLANK))),
    }
}

/// The options field and what follows it: up to the first space or tab
/// outside double quotes (`\"` does not end a quote), as OpenSSH's
/// `sshkey_advance_past_options`.
fn options_field(s: &str) -> Result<(&str, &str), String> {
    let b = s.as_bytes();
    let (mut i, mut quoted) = (0, false);
    while i < b.len() && (quoted || (b[i] != b' ' && b[i] != b'\t')) {
        if b[i] == b'\\' && b.get(i + 1) == Some(&b'"') {
            i += 1;
        } else if b[i] == b'"' {
            quoted = !quoted;
        }
        i += 1;
    }
    if quoted {
        return Err("a `\"` in the options is never closed".into());
    }
    Ok((&s[..i], &s[i..]))
}

/// A line's options.
#[derive(Debug, Default)]
struct Options {
    namespaces: Option<String>,
    valid_after: Option<u64>,
    valid_before: Option<u64>,
}

/// `opt,opt,…` as OpenSSH's `sshsigopt_parse` reads it: names in any case,
/// values in double quotes, each option at most once, `valid-before`
/// after `valid-after`.
fn parse_options(mut s: &str, local: LocalTime<'_>) -> Result<Options, String> {
    let mut o = Options::default();
    while !s.is_empty() {
        if strip_ci(s, "cert-authority").is_some() {
            return Err(
                "cert-authority (certificates) is not supported; list the signing keys themselves"
                    .into(),
            );
        }
        let Some((name, rest)) = ["namespaces", "valid-after", "valid-before"]
            .into_iter()
            .find_map(|n| Some((n, strip_ci(s, n)?.strip_prefix('=')?)))
        else {
            let opt = s.split(',').next().unwrap_or(s);
            return Err(format!(
                "unknown option `{opt}` (known: namespaces=\"…\", valid-after=\"…\", valid-before=\"…\")"
            ));
        };
        let (value, rest) = dequote(rest).map_err(|why| format!("`{name}=`: {why}"))?;
        let twice = || format!("`{name}` is given twice");
        match name {
            "namespaces" if o.namespaces.is_some() => return Err(twice()),
            "namespaces" => o.namespaces = Some(value),
            "valid-after" if o.valid_after.is_some() => return Err(twice()),
            "valid-after" => o.valid_after = Some(parse_time(&value, local)?),
            _ if o.valid_before.is_some() => return Err(twice()),
            _ => o.valid_before = Some(parse_time(&value, local)?),
        }
        s = rest;
        if s.is_empty() {
            break;
        }
        s = s
            .strip_prefix(',')
            .ok_or_else(|| format!("`{name}=\"…\"` is followed by `{s}`, not a comma"))?;
        if s.is_empty() {
            return Err("the options end with a comma".into());
        }
    }
    if let (Some(after), Some(before)) = (o.valid_after, o.valid_before) {
        if before <= after {
            return Err("valid-before is not after valid-after".into());
        }
    }
    Ok(o)
}

/// `s` without its first `prefix.len()` bytes, when they are `prefix` in
/// any case.
fn strip_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &s[prefix.len()..])
}

/// A value in double quotes (`\"` stands for `"`), and what follows it,
/// as OpenSSH's `opt_dequote`.
fn dequote(s: &str) -> Result<(String, &str), String> {
    let body = s
        .strip_prefix('"')
        .ok_or("the value must be in double quotes (OpenSSH ignores the line otherwise)")?;
    let mut out = String::new();
    let mut chars = body.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' if body[i + 1..].starts_with('"') => {
                chars.next();
                out.push('"');
            }
            '"' => return Ok((out, &body[i + 1..])),
            c => out.push(c),
        }
    }
    Err("the value's `\"` is never closed".into())
}

/// `YYYYMMDD[HHMM[SS]]`, a UTC time when it ends in `Z` or `UTC` (in any
/// case), else a local time read by `local`; as OpenSSH's
/// `parse_absolute_time`, which also refuses the epoch itself.
fn parse_time(v: &str, local: LocalTime<'_>) -> Result<u64, String> {
    let bad = || {
        format!("`{v}` is not a time like YYYYMMDD[HHMM[SS]] (local) or YYYYMMDD[HHMM[SS]]Z (UTC)")
    };
    let (digits, utc) = if let Some(d) = strip_suffix_ci(v, "Z").filter(|d| !d.is_empty()) {
        (d, true)
    } else if let Some(d) = strip_suffix_ci(v, "UTC").filter(|d| !d.is_empty()) {
        (d, true)
    } else {
        (v, false)
    };
    if !digits.bytes().all(|b| b.is_ascii_digit()) || ![8, 12, 14].contains(&digits.len()) {
        return Err(bad());
    }
    let num = |r: std::ops::Range<usize>| {
        digits
            .get(r)
            .map_or(0, |s| s.parse::<u32>().unwrap_or(u32::MAX))
    };
    let t = CivilTime {
        year: num(0..4) as i32,
        month: num(4..6),
        day: num(6..8),
        hour: num(8..10),
        minute: num(10..12),
        second: num(12..14),
    };
    // strptime's ranges; a day past the month's end runs on, as in C.
    let in_range = (1..=12).contains(&t.month)
        && (1..=31).contains(&t.day)
        && t.hour <= 23
        && t.minute <= 59
        && t.second <= 61;
    let secs = if !in_range {
        None
    } else if utc {
        utc_time(&t)
    } else {
        local(&t)
    };
    secs.filter(|&s| s > 0).ok_or_else(bad)
}

fn strip_suffix_ci<'a>(s: &'a str, suffix: &str) -> Option<&'a str> {
    let at = s.len().checked_sub(suffix.len())?;
    let tail = s.get(at..)?;
    tail.eq_ignore_ascii_case(suffix).then(|| &s[..at])
}

/// Seconds since the epoch of `t` read as UTC (`timegm`); `None` before
/// the epoch.
fn utc_time(t: &CivilTime) -> Option<u64> {
    // Days from 1970-01-01 to the date (Howard Hinnant's days_from_civil),
    // linear in the day, so a day past the month's end runs on.
    let (m, d) = (i64::from(t.month), i64::from(t.day));
    let y = i64::from(t.year) - i64::from(m <= 2);
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * ((m + 9) % 12) + 2) / 5 + d - 1;
    let days = era * 146_097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719_468;
    let secs =
        days * 86_400 + i64::from(t.hour) * 3_600 + i64::from(t.minute) * 60 + i64::from(t.second);
    u64::try_from(secs).ok()
}

/// Seconds since the epoch of `t` read as a local time in this process's
/// time zone (`TZ`, else /etc/localtime): `mktime(3)` with `tm_isdst` 0,
/// exactly as OpenSSH calls it (its `struct tm` is zeroed; in summer time a
/// zone with daylight saving reads the time as standard time, as
/// `ssh-keygen` does). `None` before the epoch or when C cannot say.
pub fn local_time(t: &CivilTime) -> Option<u64> {
    // SAFETY: an all-zero `tm` is a valid value (its `tm_zone` pointer is
    // null, which mktime never reads); mktime only normalizes the fields
    // of the struct it is handed and reads the time zone.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    tm.tm_year = t.year - 1900;
    tm.tm_mon = t.month as i32 - 1;
    tm.tm_mday = t.day as i32;
    tm.tm_hour = t.hour as i32;
    tm.tm_min = t.minute as i32;
    tm.tm_sec = t.second as i32;
    tm.tm_isdst = 0;
    // SAFETY: `tm` is a valid, exclusively borrowed struct tm.
    let secs = unsafe { libc::mktime(&mut tm) };
    u64::try_from(secs).ok()
}

/// How a string matches a pattern list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ListMatch {
    /// A negated pattern matches (OpenSSH's -1): whatever else matches.
    Negated,
    /// Nothing matches (0).
    No,
    /// A pattern matches and no negated one does (1).
    Yes,
}

/// The patterns of a comma-separated list, as OpenSSH's
/// `match_pattern_list` walks them: one trailing comma ends the list
/// (`a,` is just `a`), any other empty pattern is a pattern (`a,,b`
/// matches the empty string).
fn split_list(list: &str) -> Vec<&str> {
    if list.is_empty() {
        return Vec::new();
    }
    list.strip_suffix(',').unwrap_or(list).split(',').collect()
}

/// OpenSSH's `match_pattern_list` (match.c): each pattern may be negated
/// with a leading `!`; a negated match wins over any other. A pattern of
/// 1023 bytes or more makes the whole list match nothing, as there.
fn match_pattern_list(s: &str, list: &str) -> ListMatch {
    let mut positive = false;
    for sub in split_list(list) {
        let (negated, pattern) = match sub.strip_prefix('!') {
            Some(p) => (true, p),
            None => (false, sub),
        };
        if pattern.len() >= 1023 {
            return ListMatch::No;
        }
        if match_pattern(s.as_bytes(), pattern.as_bytes()) {
            if negated {
                return ListMatch::Negated;
            }
            positive = true;
        }
    }
    if positive {
        ListMatch::Yes
    } else {
        ListMatch::No
    }
}

/// Whether some principal could match `patterns`: there is a positive
/// pattern, and no negated one is all `*` (which refuses everything).
fn admits_some(patterns: &[&str]) -> bool {
    patterns.iter().any(|p| !p.starts_with('!'))
        && !patterns.iter().any(|p| {
            p.strip_prefix('!')
                .is_some_and(|n| n.bytes().all(|b| b == b'*'))
        })
}

/// OpenSSH's `match_pattern`: `*` any run of bytes, `?` any one byte
/// (not one character: `?` against `é` does not match, as there).
fn match_pattern(t: &[u8], p: &[u8]) -> bool {
    let (mut pi, mut ti) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == b'?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == b'*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == b'*')
}

/// Reads and parses the `allowed_signers` file at `path`; a usage error
/// names the line at fault, or says the file lists nobody.
pub fn read_allowed_signers(path: &Path) -> Result<AllowedSigners> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading the allowed signers file {}", path.display()))?;
    let signers =
        AllowedSigners::parse(&text).map_err(|e| UsageError(format!("{}: {e}", path.display())))?;
    if signers.is_empty() {
        return Err(UsageError(format!(
            "{} lists no signers: add lines like `release@ci ssh-ed25519 AAAA…`",
            path.display()
        ))
        .into());
    }
    Ok(signers)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trust::names::{EVENT_NAMESPACE, MANIFEST_NAMESPACE};

    const KEY: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl";

    fn key() -> PublicKey {
        PublicKey::from_openssh(KEY).unwrap()
    }

    /// A far zone for the tests: local time is UTC+14 (Pacific/Kiritimati).
    fn kiritimati(t: &CivilTime) -> Option<u64> {
        utc_time(t)?.checked_sub(14 * 3600)
    }

    fn parse(text: &str) -> Result<AllowedSigners, String> {
        AllowedSigners::parse_in(text, &kiritimati)
    }

    #[test]
    fn pattern_lists_match_as_openssh_match_pattern_list() {
        use ListMatch::*;
        let check = |list: &str, s: &str, want: ListMatch| {
            assert_eq!(match_pattern_list(s, list), want, "{s:?} against {list:?}");
        };
        check("release@ci", "release@ci", Yes);
        check("release@ci", "release@ci2", No);
        check("*@acme", "qa@acme", Yes);
        check("*@acme", "qa@acme.evil", No);
        check("qa?@acme", "qa1@acme", Yes);
        check("qa?@acme", "qa@acme", No);
        check("qa?@acme", "qa12@acme", No);
        // `?` is one byte, as in C: not a two-byte character.
        check("qa?@acme", "qaé@acme", No);
        check("qa??@acme", "qaé@acme", Yes);
        check("a@x,b@x", "b@x", Yes);
        check("a@x,b@x", "c@x", No);
        // A negation wins over any positive, wherever it stands.
        check("*,!mallory@x", "mallory@x", Negated);
        check("*,!mallory@x", "alice@x", Yes);
        check("!mallory@x,*", "mallory@x", Negated);
        check("!*@evil,*", "a@evil", Negated);
        // A negation alone admits nobody.
        check("!mallory@x", "alice@x", No);
        check("!mallory@x", "mallory@x", Negated);
        // Empty patterns: one trailing comma ends the list, others count.
        check("a,", "", No);
        check("a,,b", "", Yes);
        check(",", "", Yes);
        check("", "", No);
        check("!", "", Negated);
        // `!` only negates at the start of a pattern.
        check("!!a", "!a", Negated);
        check("a!b", "a!b", Yes);
        // A pattern OpenSSH cannot hold makes the list match nothing.
        let long = "x".repeat(1023);
        check(&format!("*,{long}"), "y", No);
        check(&"x".repeat(1022), &"x".repeat(1022), Yes);
    }

    #[test]
    fn allows_each_principal_form() {
        let k = key();
        let allows = |principals: &str, principal: &str| {
            let a = parse(&format!("{principals} {KEY}\n")).unwrap();
            a.allows(&k, principal, MANIFEST_NAMESPACE, 1_800_000_000)
        };
        assert!(allows("release@ci", "release@ci"));
        assert!(!allows("release@ci", "qa@acme"));
        assert!(allows("*", "anyone"));
        assert!(allows("*,!mallory@x", "alice@x"));
        assert!(!allows("*,!mallory@x", "mallory@x"));
        assert!(!allows("!x", "x"));
        assert!(!allows("!x", "y"));
        assert!(allows("\"a b\"", "a b"));
        assert!(allows("x\"a b\"", "xa b"));
        assert!(!allows("\"a b\"", "\"a b\""));
        // Another line for the same key still counts: a negation only
        // qualifies its own line.
        let a = parse(&format!("*,!mallory@x {KEY}\nmallory@x {KEY}\n")).unwrap();
        assert!(a.allows(&k, "mallory@x", MANIFEST_NAMESPACE, 0));
    }

    #[test]
    fn namespaces_are_a_pattern_list_and_option_names_any_case() {
        let k = key();
        let allows = |opts: &str, ns: &str| {
            let a = parse(&format!("p {opts} {KEY}\n")).unwrap();
            a.allows(&k, "p", ns, 1_800_000_000)
        };
        assert!(allows("namespaces=\"verbatim-event@v1\"", EVENT_NAMESPACE));
        assert!(!allows(
            "namespaces=\"verbatim-event@v1\"",
            MANIFEST_NAMESPACE
        ));
        assert!(allows("NAMESPACES=\"verbatim-*\"", MANIFEST_NAMESPACE));
        assert!(!allows(
            "namespaces=\"verbatim-*,!verbatim-manifest@v1\"",
            MANIFEST_NAMESPACE
        ));
        assert!(allows(
            "namespaces=\"verbatim-*,!verbatim-manifest@v1\"",
            EVENT_NAMESPACE
        ));
        assert!(!allows("namespaces=\"!file\"", MANIFEST_NAMESPACE));
        assert!(!allows("namespaces=\"\"", MANIFEST_NAMESPACE));
        assert!(allows("namespaces=\"a\\\"b,*\"", MANIFEST_NAMESPACE));
        assert!(allows("namespaces=\"a\\\"b\"", "a\"b"));
    }

    #[test]
    fn times_without_z_are_local_and_bounds_are_inclusive() {
        let k = key();
        let at = |opts: &str, now: u64| {
            let a = parse(&format!("p {opts} {KEY}\n")).unwrap();
            a.allows(&k, "p", MANIFEST_NAMESPACE, now)
        };
        // 2030-01-01T00:00:00Z; the same digits in UTC+14 are 14h earlier.
        let z = 1_893_456_000;
        let local = z - 14 * 3600;
        for utc in [
            "\"20300101Z\"",
            "\"20300101z\"",
            "\"20300101UTC\"",
            "\"203001010000Z\"",
            "\"20300101000000utc\"",
        ] {
            assert!(at(&format!("valid-before={utc}"), z), "{utc}");
            assert!(!at(&format!("valid-before={utc}"), z + 1), "{utc}");
            assert!(at(&format!("valid-after={utc}"), z), "{utc}");
            assert!(!at(&format!("valid-after={utc}"), z - 1), "{utc}");
        }
        assert!(at("valid-before=\"20300101\"", local));
        assert!(!at("valid-before=\"20300101\"", local + 1));
        assert!(at("valid-after=\"20300101000000\"", local));
        assert!(!at("valid-after=\"20300101000000\"", local - 1));
        assert!(at(
            "VALID-AFTER=\"20200101Z\",Valid-Before=\"20300101Z\"",
            z
        ));
        // A day past the month's end runs on, as timegm and mktime do.
        assert_eq!(
            parse_time("20300231Z", &kiritimati),
            parse_time("20300303Z", &kiritimati)
        );
        assert_eq!(parse_time("20300101000000Z", &kiritimati), Ok(z));
        assert_eq!(parse_time("19700101000001Z", &kiritimati), Ok(1));
    }

    #[test]
    fn principals_lists_patterns_and_negated_lines_whole() {
        let k = key();
        let text = format!(
            "release@ci,qa@acme {KEY}\n*,!mallory@x {KEY}\n!nobody@x {KEY}\nqa@acme {KEY}\nlate@x valid-after=\"20300101Z\" {KEY}\n"
        );
        let a = parse(&text).unwrap();
        assert_eq!(
            a.principals(&k, MANIFEST_NAMESPACE, 1_800_000_000),
            ["release@ci", "qa@acme", "*,!mallory@x"]
        );
        let a = parse(&format!("*,!* {KEY}\n")).unwrap();
        assert!(a.principals(&k, MANIFEST_NAMESPACE, 0).is_empty());
    }

    #[test]
    fn allowed_signers_lines() {
        let text = format!(
            "# comment\n\n  \t# indented comment\nrelease@ci,qa@acme {KEY} ci key\nops@acme namespaces=\"verbatim-event@v1\" {KEY}\nold@acme valid-before=\"20200101Z\" {KEY}\n"
        );
        let a = parse(&text).unwrap();
        let key = key();
        let now = 1_800_000_000;
        assert!(a.allows(&key, "release@ci", MANIFEST_NAMESPACE, now));
        assert!(a.allows(&key, "qa@acme", MANIFEST_NAMESPACE, now));
        assert!(!a.allows(&key, "ops@acme", MANIFEST_NAMESPACE, now));
        assert!(a.allows(&key, "ops@acme", EVENT_NAMESPACE, now));
        assert!(!a.allows(&key, "old@acme", MANIFEST_NAMESPACE, now));
        assert!(a.allows(&key, "old@acme", MANIFEST_NAMESPACE, 1_500_000_000));
        for (bad, says) in [
            (format!("x cert-authority {KEY}"), "cert-authority"),
            (
                format!("x CERT-AUTHORITY,namespaces=\"a\" {KEY}"),
                "cert-authority",
            ),
            (
                format!("x bogus=\"1\" {KEY}"),
                "unknown option `bogus=\"1\"`",
            ),
            (format!("x namespaces=a {KEY}"), "double quotes"),
            (format!("x valid-before=20300101 {KEY}"), "double quotes"),
            (format!("x namespaces=\"a {KEY}"), "never closed"),
            (
                format!("x namespaces=\"a\",namespaces=\"b\" {KEY}"),
                "twice",
            ),
            (format!("x namespaces=\"a\", {KEY}"), "end with a comma"),
            (format!("x namespaces=\"a\"b {KEY}"), "not a comma"),
            (
                format!("x valid-after=\"20300101Z\",valid-before=\"20200101Z\" {KEY}"),
                "not after",
            ),
            (format!("x valid-after=\"2020\" {KEY}"), "not a time"),
            (format!("x valid-after=\"20201301\" {KEY}"), "not a time"),
            (
                format!("x valid-after=\"20200101240000Z\" {KEY}"),
                "not a time",
            ),
            (
                format!("x valid-after=\"19700101000000Z\" {KEY}"),
                "not a time",
            ),
            (format!("x valid-after=\"Z\" {KEY}"), "not a time"),
            (format!("\"x {KEY}"), "never closed"),
            ("x ssh-ed25519 notbase64".to_owned(), "not a public key"),
            ("x".to_owned(), "no public key"),
            ("x namespaces=\"a\"".to_owned(), "no public key"),
        ] {
            let e = parse(&bad).map(|_| ()).unwrap_err();
            assert!(e.starts_with("line 1:") && e.contains(says), "{bad}: {e}");
        }
    }
}
