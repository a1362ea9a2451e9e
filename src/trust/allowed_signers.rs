//! OpenSSH `allowed_signers` files (what `ssh-keygen -Y verify -f` reads):
//! principals and the keys they sign with, in which namespaces and when.
//! Pure but for [`read_allowed_signers`], which reads the named file.

use std::path::Path;

use anyhow::{Context, Result};
use ssh_key::PublicKey;

use crate::error::UsageError;

/// One line of an `allowed_signers` file.
#[derive(Debug, Clone)]
struct Signer {
    /// Patterns (`*` and `?` wildcards), as OpenSSH matches `-I`.
    principals: Vec<String>,
    key: PublicKey,
    /// `namespaces="a,b"`: the only namespaces the key may sign in.
    namespaces: Option<Vec<String>>,
    /// `valid-after` / `valid-before`, seconds since the epoch (UTC).
    valid_after: Option<u64>,
    valid_before: Option<u64>,
}

/// An OpenSSH `allowed_signers` file: principals and the keys they sign
/// with (see ssh-keygen(1), ALLOWED SIGNERS).
#[derive(Debug, Clone, Default)]
pub struct AllowedSigners {
    signers: Vec<Signer>,
}

impl AllowedSigners {
    /// Parses the file's text; an error names the line. `cert-authority`
    /// lines (certificates) are not supported and are an error, so that a
    /// host never silently trusts less or more than its file says.
    pub fn parse(text: &str) -> Result<AllowedSigners, String> {
        let mut signers = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let at = |why: String| format!("line {}: {why}", n + 1);
            let (principals, rest) = split_field(line);
            let mut rest = rest.trim_start();
            let (mut namespaces, mut valid_after, mut valid_before) = (None, None, None);
            // Options come before the key type, which always starts `ssh-`,
            // `ecdsa-` or `sk-`.
            if !is_key_type(rest) {
                let (options, after) = split_field(rest);
                for opt in split_options(options) {
                    let (name, value) = match opt.split_once('=') {
                        Some((k, v)) => (k.to_ascii_lowercase(), Some(v.trim_matches('"'))),
                        None => (opt.to_ascii_lowercase(), None),
                    };
                    match (name.as_str(), value) {
                        ("namespaces", Some(v)) => {
                            namespaces = Some(v.split(',').map(str::to_owned).collect())
                        }
                        ("valid-after", Some(v)) => valid_after = Some(parse_time(v).map_err(at)?),
                        ("valid-before", Some(v)) => {
                            valid_before = Some(parse_time(v).map_err(at)?)
                        }
                        ("cert-authority", None) => {
                            return Err(at(
                                "cert-authority (certificates) is not supported; list the signing keys themselves".into(),
                            ))
                        }
                        _ => return Err(at(format!("unknown option `{opt}`"))),
                    }
                }
                rest = after.trim_start();
            }
            let key =
                PublicKey::from_openssh(rest).map_err(|e| at(format!("not a public key ({e})")))?;
            signers.push(Signer {
                principals: principals.split(',').map(str::to_owned).collect(),
                key,
                namespaces,
                valid_after,
                valid_before,
            });
        }
        Ok(AllowedSigners { signers })
    }

    /// The principal patterns `key` may sign as in `namespace` at `now`.
    fn patterns_for<'a>(
        &'a self,
        key: &'a PublicKey,
        namespace: &'a str,
        now: u64,
    ) -> impl Iterator<Item = &'a str> + 'a {
        self.signers
            .iter()
            .filter(move |s| s.key.key_data() == key.key_data())
            .filter(move |s| {
                s.namespaces
                    .as_ref()
                    .is_none_or(|ns| ns.iter().any(|n| glob(n, namespace)))
            })
            .filter(move |s| s.valid_after.is_none_or(|t| now >= t))
            .filter(move |s| s.valid_before.is_none_or(|t| now < t))
            .flat_map(|s| s.principals.iter().map(String::as_str))
    }

    /// Whether `key` may sign as `principal` in `namespace` at `now`.
    pub fn allows(&self, key: &PublicKey, principal: &str, namespace: &str, now: u64) -> bool {
        self.patterns_for(key, namespace, now)
            .any(|p| glob(p, principal))
    }

    /// The principals (patterns, as written) `key` may sign as.
    pub fn principals(&self, key: &PublicKey, namespace: &str, now: u64) -> Vec<String> {
        let mut v: Vec<String> = self
            .patterns_for(key, namespace, now)
            .map(str::to_owned)
            .collect();
        v.dedup();
        v
    }

    /// Whether the file lists no key at all (only comments and blank
    /// lines).
    pub fn is_empty(&self) -> bool {
        self.signers.is_empty()
    }
}

fn is_key_type(s: &str) -> bool {
    ["ssh-", "ecdsa-", "sk-"].iter().any(|p| s.starts_with(p))
}

/// Splits off the first whitespace-separated field, honouring double
/// quotes (options may hold spaces inside quotes).
fn split_field(s: &str) -> (&str, &str) {
    let mut quoted = false;
    for (i, c) in s.char_indices() {
        match c {
            '"' => quoted = !quoted,
            c if c.is_whitespace() && !quoted => return (&s[..i], &s[i..]),
            _ => {}
        }
    }
    (s, "")
}

/// Splits `a,b="x,y",c` on commas outside quotes.
fn split_options(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut start, mut quoted) = (0, false);
    for (i, c) in s.char_indices() {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&s[start..]);
    out.into_iter().filter(|o| !o.is_empty()).collect()
}

/// `YYYYMMDD[HHMM[SS]][Z]`, as ssh-keygen takes it; read as UTC.
fn parse_time(v: &str) -> Result<u64, String> {
    let digits = v.strip_suffix('Z').unwrap_or(v);
    let bad = || format!("`{v}` is not a time like YYYYMMDD or YYYYMMDDHHMM[SS]");
    if !digits.bytes().all(|b| b.is_ascii_digit()) || ![8, 12, 14].contains(&digits.len()) {
        return Err(bad());
    }
    let num = |r: std::ops::Range<usize>| digits.get(r).map_or(Ok(0), |s| s.parse::<u64>());
    let (y, mo, d) = (num(0..4), num(4..6), num(6..8));
    let (h, mi, se) = (num(8..10), num(10..12), num(12..14));
    let text = format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        y.map_err(|_| bad())?,
        mo.map_err(|_| bad())?,
        d.map_err(|_| bad())?,
        h.map_err(|_| bad())?,
        mi.map_err(|_| bad())?,
        se.map_err(|_| bad())?
    );
    crate::clock::parse_rfc3339(&text).ok_or_else(bad)
}

/// OpenSSH pattern matching: `*` any run, `?` any one character.
fn glob(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
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
    p[pi..].iter().all(|&c| c == '*')
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

    #[test]
    fn patterns() {
        assert!(glob("release@ci", "release@ci"));
        assert!(glob("*@acme", "qa@acme"));
        assert!(glob("qa?@acme", "qa1@acme"));
        assert!(!glob("*@acme", "qa@acme.evil"));
        assert!(!glob("release@ci", "release@ci2"));
    }

    #[test]
    fn allowed_signers_lines() {
        let text = format!(
            "# comment\n\nrelease@ci,qa@acme {KEY} ci key\nops@acme namespaces=\"verbatim-event@v1\" {KEY}\nold@acme valid-before=20200101 {KEY}\n"
        );
        let a = AllowedSigners::parse(&text).unwrap();
        let key = PublicKey::from_openssh(KEY).unwrap();
        let now = 1_800_000_000;
        assert!(a.allows(&key, "release@ci", MANIFEST_NAMESPACE, now));
        assert!(a.allows(&key, "qa@acme", MANIFEST_NAMESPACE, now));
        assert!(!a.allows(&key, "ops@acme", MANIFEST_NAMESPACE, now));
        assert!(a.allows(&key, "ops@acme", EVENT_NAMESPACE, now));
        assert!(!a.allows(&key, "old@acme", MANIFEST_NAMESPACE, now));
        assert!(a.allows(&key, "old@acme", MANIFEST_NAMESPACE, 1_500_000_000));
        for bad in [
            format!("x cert-authority {KEY}"),
            format!("x bogus=1 {KEY}"),
            "x ssh-ed25519 notbase64".to_owned(),
            format!("x valid-after=2020 {KEY}"),
        ] {
            let e = AllowedSigners::parse(&bad).unwrap_err();
            assert!(e.starts_with("line 1:"), "{e}");
        }
    }
}
