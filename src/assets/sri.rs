//! Subresource integrity: the `sha384-…` value the manifest records for
//! every asset, and how an `integrity` attribute already in an HTML file is
//! read, so that one written for a file's bytes in the tree can be replaced
//! by the value of the bytes actually published.

use sha2::{Digest as _, Sha256, Sha384, Sha512};

/// Subresource integrity of `bytes`: `sha384-<base64>`, as the manifest
/// records it and as a rewritten `integrity` attribute carries it.
pub fn integrity(bytes: &[u8]) -> String {
    value(&Sha384::digest(bytes))
}

fn value(sha384: &[u8]) -> String {
    format!("sha384-{}", crate::digest::base64(sha384))
}

/// Every digest an integrity value can name, of a file whose bytes are not
/// kept: an integrity attribute covering it is checked against these.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Digests {
    /// SHA-256 of the bytes.
    pub sha256: [u8; 32],
    /// SHA-384 of the bytes.
    pub sha384: [u8; 48],
    /// SHA-512 of the bytes.
    pub sha512: [u8; 64],
}

impl Digests {
    /// Every digest of `bytes`.
    pub fn of(bytes: &[u8]) -> Digests {
        Digests {
            sha256: Sha256::digest(bytes).into(),
            sha384: Sha384::digest(bytes).into(),
            sha512: Sha512::digest(bytes).into(),
        }
    }

    /// The manifest's integrity value: [`integrity`] of the bytes.
    pub fn integrity(&self) -> String {
        value(&self.sha384)
    }
}

/// Whether an `integrity` attribute's value lets a browser accept `bytes`,
/// or `None` when it holds no hash a browser would check (then it checks
/// nothing).
///
/// As the Subresource Integrity spec has it: the value is a
/// whitespace-separated list of `<algorithm>-<base64>[?options]`; tokens
/// with an unknown algorithm are ignored; of the rest only those of the
/// strongest algorithm count, and one of them must match. Base64 is taken
/// with or without padding, in either alphabet.
pub fn accepts(value: &str, bytes: &[u8]) -> Option<bool> {
    accepts_with(value, |alg| alg.digest(bytes))
}

/// [`accepts`] for a file known by its [`Digests`].
pub fn accepts_digests(value: &str, digests: &Digests) -> Option<bool> {
    accepts_with(value, |alg| match alg {
        Algorithm::Sha256 => digests.sha256.to_vec(),
        Algorithm::Sha384 => digests.sha384.to_vec(),
        Algorithm::Sha512 => digests.sha512.to_vec(),
    })
}

fn accepts_with(value: &str, digest: impl Fn(Algorithm) -> Vec<u8>) -> Option<bool> {
    let tokens: Vec<(Algorithm, &str)> = value
        .split(|c: char| c.is_ascii_whitespace())
        .filter_map(|token| {
            let (alg, rest) = token.split_once('-')?;
            let alg = Algorithm::from_name(alg)?;
            let digest = rest.split_once('?').map_or(rest, |(d, _)| d);
            Some((alg, digest))
        })
        .collect();
    let strongest = tokens.iter().map(|(a, _)| *a).max()?;
    let want = normalize(&crate::digest::base64(&digest(strongest)));
    Some(
        tokens
            .iter()
            .filter(|(a, _)| *a == strongest)
            .any(|(_, d)| normalize(d) == want),
    )
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Algorithm {
    Sha256,
    Sha384,
    Sha512,
}

impl Algorithm {
    fn from_name(name: &str) -> Option<Algorithm> {
        match name {
            "sha256" => Some(Algorithm::Sha256),
            "sha384" => Some(Algorithm::Sha384),
            "sha512" => Some(Algorithm::Sha512),
            _ => None,
        }
    }

    fn digest(self, bytes: &[u8]) -> Vec<u8> {
        match self {
            Algorithm::Sha256 => Sha256::digest(bytes).to_vec(),
            Algorithm::Sha384 => Sha384::digest(bytes).to_vec(),
            Algorithm::Sha512 => Sha512::digest(bytes).to_vec(),
        }
    }
}

/// Base64 in the standard alphabet without padding.
fn normalize(b64: &str) -> String {
    b64.trim_end_matches('=')
        .chars()
        .map(|c| match c {
            '-' => '+',
            '_' => '/',
            c => c,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integrity_of_known_bytes() {
        // `printf 'alert(1)' | openssl dgst -sha384 -binary | base64`
        assert_eq!(
            integrity(b"alert(1)"),
            "sha384-HT2E9NfWiuQ/w1PRai+hTyqW16NIoCGA/m8VQDUopfAtcz6YQjtsMmQd5uRbVDpW"
        );
    }

    #[test]
    fn accepts_as_a_browser_does() {
        let bytes = b"alert(1)";
        let sha384 = integrity(bytes);
        // `printf 'alert(1)' | openssl dgst -sha256 -binary | base64`
        let sha256 = "sha256-bhHHL3z2vDgxUt0W3dWQOrprscmda2Y5pLsLg4GF+pI=";
        let sha512 = format!("sha512-{}", crate::digest::base64(&Sha512::digest(bytes)));
        let wrong256 = "sha256-AAAAL3z2vDgxUt0W3dWQOrprscmda2Y5pLsLg4GF+pI=";
        for (value, expected) in [
            (sha384.clone(), Some(true)),
            (sha256.to_owned(), Some(true)),
            (sha512.clone(), Some(true)),
            (wrong256.to_owned(), Some(false)),
            // Only the strongest algorithm counts: a right sha256 does not
            // save a wrong sha384, and a wrong sha256 does not spoil a right one.
            (format!("{sha256} sha384-{}", "A".repeat(64)), Some(false)),
            (format!("{wrong256}  {sha384}"), Some(true)),
            // One match among several of the strongest is enough.
            (format!("sha384-{} {sha384}", "A".repeat(64)), Some(true)),
            // Options, no padding, the URL-safe alphabet.
            (format!("{sha384}?foo=bar"), Some(true)),
            (sha256.trim_end_matches('=').to_owned(), Some(true)),
            (sha256.replace('+', "-"), Some(true)),
            // Nothing a browser checks.
            (String::new(), None),
            ("md5-xyz sha1-abc".to_owned(), None),
            ("SHA384-x".to_owned(), None),
        ] {
            assert_eq!(accepts(&value, bytes), expected, "{value:?}");
            // The same from the digests alone.
            assert_eq!(
                accepts_digests(&value, &Digests::of(bytes)),
                expected,
                "{value:?}"
            );
        }
    }
}
