//! `allowed_signers` files read as OpenSSH reads them: for every form a
//! line can take, `ssh-keygen -Y verify` and a host (`verbatim fetch
//! --allowed-signers F --require P`, the real binary) decide the same. The
//! verdicts come from ssh-keygen; nothing here says what they should be.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::signing::{openssh_key, public};
use crate::util::{self, Project};

const NS: &str = "verbatim-manifest@v1";

/// A published release signed (by ssh-keygen) with one key.
struct Signed {
    p: Project,
    manifest: String,
    /// The stored manifest's bytes, and its signature.
    bytes: PathBuf,
    sig: PathBuf,
    /// The key's public line (`ssh-ed25519 AAAA… ci`).
    key: String,
}

fn signed() -> Signed {
    let p = Project::new();
    p.write("app/index.html", "v1");
    let manifest = p.json(&["publish"])["manifest"]
        .as_str()
        .unwrap()
        .to_owned();
    let hex = manifest.strip_prefix("sha256:").unwrap();
    let bytes = p.path().join("manifest.json");
    fs::copy(
        p.store().join(format!("manifests/sha256/{hex}.json")),
        &bytes,
    )
    .unwrap();
    let ci = openssh_key(p.path(), "ci");
    util::success(
        Command::new("ssh-keygen")
            .args(["-Y", "sign", "-n", NS, "-f"])
            .arg(&ci)
            .arg(&bytes),
    );
    let sig = p.path().join("manifest.json.sig");
    p.ok(&["sign", &manifest, "--signature", sig.to_str().unwrap()]);
    let key = public(&ci);
    Signed {
        p,
        manifest,
        bytes,
        sig,
        key,
    }
}

impl Signed {
    /// Whether `ssh-keygen -Y verify` accepts the signature for
    /// `principal` under `file`, in time zone `tz`.
    fn ssh_keygen(&self, file: &Path, principal: &str, tz: &str) -> bool {
        let out = Command::new("ssh-keygen")
            .env("TZ", tz)
            .args(["-Y", "verify", "-f"])
            .arg(file)
            .args(["-I", principal, "-n", NS, "-s"])
            .arg(&self.sig)
            .stdin(fs::File::open(&self.bytes).unwrap())
            .output()
            .unwrap();
        out.status.success()
    }

    /// Whether a host accepts the release for `principal` under `file`
    /// (`fetch` exits 0), or refuses it (exit 5), in time zone `tz`; any
    /// other exit (a file it refuses to read) is the error.
    fn verbatim(&self, file: &Path, principal: &str, tz: &str, n: usize) -> Result<bool, String> {
        let into = self.p.path().join(format!("fetched-{n}"));
        let out = self
            .p
            .cmd(&["fetch", &self.manifest, "--require", principal])
            .arg("--allowed-signers")
            .arg(file)
            .arg("--into")
            .arg(&into)
            .env("TZ", tz)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        match out.status.code() {
            Some(0) => Ok(true),
            Some(5) => Ok(false),
            code => Err(format!("exits {code:?}, not 0 or 5 ({})", err.trim())),
        }
    }

    /// For each `(line, principal, tz)`, both verdicts, and every case
    /// where they differ.
    fn compare(&self, cases: &[(String, &str, &str)]) -> (Vec<bool>, Vec<String>) {
        let mut verdicts = Vec::new();
        let mut differ = Vec::new();
        for (n, (lines, principal, tz)) in cases.iter().enumerate() {
            let file = self.p.write(&format!("allowed_signers-{n}"), lines);
            let ssh = self.ssh_keygen(&file, principal, tz);
            let ours = self.verbatim(&file, principal, tz, n);
            if ours != Ok(ssh) {
                differ.push(format!(
                    "TZ={tz} -I {principal:?}: ssh-keygen {}, verbatim {}, for\n{lines}",
                    verdict(ssh),
                    ours.map_or_else(|e| e, |v| verdict(v).to_owned())
                ));
            }
            verdicts.push(ssh);
        }
        (verdicts, differ)
    }
}

fn verdict(ok: bool) -> &'static str {
    if ok {
        "accepts"
    } else {
        "refuses"
    }
}

#[test]
fn every_principal_and_namespace_form_is_decided_as_ssh_keygen_decides() {
    let s = signed();
    let k = &s.key;
    let forms: &[(&str, &[&str])] = &[
        ("release@ci", &["release@ci", "release@ci2", "qa@acme"]),
        ("*", &["anyone@x"]),
        ("*@acme", &["qa@acme", "qa@acme.evil"]),
        ("qa?@acme", &["qa1@acme", "qa@acme", "qa12@acme"]),
        ("a@x,b@x", &["a@x", "b@x", "c@x"]),
        ("*,!mallory@x", &["alice@x", "mallory@x"]),
        ("!mallory@x,*@x", &["alice@x", "mallory@x"]),
        ("!x", &["x", "y"]),
        ("\"a b\"", &["a b", "a"]),
        (
            "release@ci namespaces=\"verbatim-manifest@v1\"",
            &["release@ci"],
        ),
        (
            "release@ci namespaces=\"verbatim-event@v1\"",
            &["release@ci"],
        ),
        ("release@ci NAMESPACES=\"verbatim-*\"", &["release@ci"]),
        (
            "release@ci namespaces=\"verbatim-*,!verbatim-manifest@v1\"",
            &["release@ci"],
        ),
        (
            "release@ci namespaces=\"!file,verbatim-m*\"",
            &["release@ci"],
        ),
        ("release@ci namespaces=\"!file\"", &["release@ci"]),
    ];
    let mut cases: Vec<(String, &str, &str)> = Vec::new();
    for (line, principals) in forms {
        for p in *principals {
            cases.push((format!("{line} {k}\n"), p, "UTC"));
        }
    }
    // A negation qualifies only its own line.
    cases.push((
        format!("*,!mallory@x {k}\nmallory@x {k}\n"),
        "mallory@x",
        "UTC",
    ));
    let (verdicts, differ) = s.compare(&cases);
    assert!(differ.is_empty(), "{}", differ.join("\n"));
    assert!(
        verdicts.contains(&true) && verdicts.contains(&false),
        "ssh-keygen decided every case the same way: {verdicts:?}"
    );
}

/// Digits of `secs` as a UTC wall-clock time, `YYYYMMDDHHMMSS`.
fn wall(secs: u64) -> String {
    verbatim::clock::rfc3339(secs)
        .chars()
        .filter(char::is_ascii_digit)
        .collect()
}

/// `valid-after` and `valid-before` without `Z` are local times: under a
/// zone far from UTC the same digits read as UTC would give the opposite
/// verdict, and verbatim (the real binary, under the same `TZ`) still
/// agrees with ssh-keygen, evaluated now.
#[test]
fn times_without_z_are_read_in_the_local_zone_as_ssh_keygen_reads_them() {
    for zone in ["Pacific/Kiritimati", "Etc/GMT+12"] {
        assert!(
            Path::new("/usr/share/zoneinfo").join(zone).is_file(),
            "the tz database has no {zone} (/usr/share/zoneinfo): install tzdata; this test needs a far time zone"
        );
    }
    let s = signed();
    let k = &s.key;
    let now = verbatim::clock::now();
    // UTC+14: digits 7h ahead of UTC read as local are 7h in the past.
    // UTC-12: digits 7h behind UTC read as local are 5h in the future.
    let zones = [
        ("Pacific/Kiritimati", wall(now + 7 * 3600)),
        ("Etc/GMT+12", wall(now - 7 * 3600)),
    ];
    let mut cases: Vec<(String, &str, &str)> = Vec::new();
    for (tz, digits) in &zones {
        for opt in ["valid-after", "valid-before"] {
            for written in [
                digits.clone(),
                format!("{digits}Z"),
                digits[..12].to_owned(),
                format!("{}utc", &digits[..12]),
            ] {
                cases.push((
                    format!("release@ci {opt}=\"{written}\" {k}\n"),
                    "release@ci",
                    tz,
                ));
            }
        }
    }
    let (verdicts, differ) = s.compare(&cases);
    assert!(differ.is_empty(), "{}", differ.join("\n"));
    // Each local form and its `Z` twin got opposite verdicts from
    // ssh-keygen: the zone applied, and reading local times as UTC would
    // have disagreed.
    for (pair, case) in verdicts.chunks(2).zip(cases.chunks(2)) {
        assert_ne!(
            pair[0], pair[1],
            "ssh-keygen gave the local and the UTC form the same verdict (did TZ apply?):\n{}{}",
            case[0].0, case[1].0
        );
    }
}
