//! The manifest: one canonical JSON document naming everything a release is.
//!
//! A manifest names the artifact and every asset by sha256 and records where
//! the build came from. Its bytes are canonical (keys sorted, no insignificant
//! whitespace), so its id, the sha256 of those bytes, is a pure function of its
//! content. This module does no I/O; `manifests/manifest.schema.json` is the
//! schema and a test keeps the two in step.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::digest::Digest;

/// The schema version written into every manifest.
pub const SCHEMA: &str = "verbatim.manifest/v1";

/// A release: the artifact, every asset, how a host runs it, and where the
/// build came from. Its id is the sha256 of its canonical bytes
/// ([`Manifest::id`]); it is stored at [`key_for`] that id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
// Fields are declared in alphabetical order: serializing them directly is
// then canonical (a unit test holds this), with no intermediate `Value`.
pub struct Manifest {
    /// The app directory's archive.
    pub artifact: Artifact,
    /// Logical asset path (as the app names it) → stored asset.
    pub assets: BTreeMap<String, Asset>,
    /// How a host runs the release (`[deploy]` of `verbatim.toml`); absent
    /// when the config has none, so older manifests keep their bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deploy: Option<Deploy>,
    /// Where the build came from.
    pub provenance: Provenance,
    /// Always [`SCHEMA`]; a manifest of another schema is refused
    /// ([`ManifestError::Schema`]).
    pub schema: String,
    /// The release's entry files (`[site]`); absent when it has none, so
    /// older manifests keep their bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub site: Option<Site>,
}

/// Entry files: pages and files whose URL stays the same while their
/// bytes change (`index.html`, a service worker, `robots.txt`). Each is
/// stored create-only at [`site_key`] (`sites/<manifest hex>/<path>`), and
/// copied to `site/<env>/<path>` when an environment moves to the release.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Site {
    /// Where the artifact carries the entries too, relative to the app
    /// directory (`site`), for hosts that serve from `current/`.
    pub artifact_dir: String,
    /// The `Cache-Control` of an environment's live copies (printable
    /// ASCII).
    pub cache_control: String,
    /// Path (as served from the site's root, and in the assets directory)
    /// → entry.
    pub entries: BTreeMap<String, Entry>,
}

/// One entry file. Its key is not recorded: it is [`site_key`] of the
/// manifest's own id, which cannot be inside the manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    /// The `Content-Type` it is stored and served with (printable ASCII).
    pub content_type: String,
    /// Subresource-integrity value (`sha384-<base64>`) of its bytes.
    pub integrity: String,
    /// Logical paths of the assets (and entries) it references.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub references: Vec<String>,
    /// Hex sha256 of its bytes.
    pub sha256: String,
    /// Size in bytes.
    pub size: u64,
}

/// The app's deploy settings, carried in the manifest so that a host needs
/// only the store and its root.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Deploy {
    /// Seconds `hooks.check` may take.
    pub check_timeout: u64,
    /// Seconds `hooks.pre_activate` and `hooks.post_activate` may each take.
    pub hook_timeout: u64,
    /// The commands a host runs around the flip of `current`; absent when
    /// there are none.
    #[serde(default, skip_serializing_if = "Hooks::is_empty")]
    pub hooks: Hooks,
    /// Releases a host keeps (besides the current and the previous one).
    pub keep: u32,
    /// Paths in the release that are links into `DIR/shared/`, so they
    /// survive releases (uploads, `.env`, sockets).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub shared: Vec<String>,
    /// Globs of the app's database migrations (`*/migrations/*.py`), so
    /// that a rollback can say which ones it does not undo.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub migrations: Vec<String>,
    /// The artifact's files `migrations` matches, sorted: filled by the
    /// build.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub migration_files: Vec<String>,
}

/// Shell commands (`sh -c`) a host runs in the release directory.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Hooks {
    /// After `post_activate`: the release is healthy when it exits 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub check: Option<String>,
    /// After `current` points at the release (reload the app server).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub post_activate: Option<String>,
    /// Before `current` moves (migrations, cache warm-up).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pre_activate: Option<String>,
    /// Once per rollout, on one host, with the release staged there and
    /// before any host flips (`python manage.py migrate --noinput`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub release: Option<String>,
    /// In the current release, when only the environment's config changed
    /// (`verbatim config set`): the agent wrote the new
    /// `shared/verbatim-config.{json,env}` and `current` stays.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reload: Option<String>,
}

impl Hooks {
    /// Whether there is no hook at all (then the manifest leaves `hooks`
    /// out).
    pub fn is_empty(&self) -> bool {
        self.check.is_none()
            && self.post_activate.is_none()
            && self.pre_activate.is_none()
            && self.release.is_none()
            && self.reload.is_none()
    }
}

impl Default for Deploy {
    fn default() -> Deploy {
        Deploy {
            check_timeout: 60,
            hook_timeout: 600,
            hooks: Hooks::default(),
            keep: 5,
            shared: Vec::new(),
            migrations: Vec::new(),
            migration_files: Vec::new(),
        }
    }
}

/// The longest a hook may be given.
pub const MAX_HOOK_SECS: u64 = 86_400;

impl Deploy {
    /// The rules `[deploy]` and a manifest's `deploy` share; the message
    /// names the field as `[deploy]` spells it.
    pub fn check(&self) -> Result<(), String> {
        for (field, secs) in [
            ("check_timeout", self.check_timeout),
            ("hook_timeout", self.hook_timeout),
        ] {
            if !(1..=MAX_HOOK_SECS).contains(&secs) {
                return Err(format!(
                    "{field} is {secs}: give seconds from 1 to {MAX_HOOK_SECS}"
                ));
            }
        }
        if self.keep == 0 || self.keep > 1000 {
            return Err(format!(
                "keep is {}: give how many releases a host keeps, from 1 to 1000",
                self.keep
            ));
        }
        for (name, hook) in [
            ("pre_activate", &self.hooks.pre_activate),
            ("post_activate", &self.hooks.post_activate),
            ("check", &self.hooks.check),
            ("release", &self.hooks.release),
            ("reload", &self.hooks.reload),
        ] {
            let Some(cmd) = hook else { continue };
            if cmd.trim().is_empty() {
                return Err(format!(
                    "hooks.{name} is empty: remove it or give a command"
                ));
            }
            if cmd
                .chars()
                .any(|c| c.is_control() && c != '\n' && c != '\t')
            {
                return Err(format!(
                    "hooks.{name} holds a control character other than a newline or tab"
                ));
            }
        }
        for (i, path) in self.shared.iter().enumerate() {
            check_logical(path).map_err(|why| format!("shared path {path:?}: {why}"))?;
            if let Some(other) = self.shared[..i].iter().find(|o| {
                *o == path
                    || path.starts_with(&format!("{o}/"))
                    || o.starts_with(&format!("{path}/"))
            }) {
                return Err(format!(
                    "shared paths {other:?} and {path:?} overlap: list each path once, and no path inside another"
                ));
            }
        }
        Ok(())
    }
}

/// The artifact: the app directory packed as a reproducible `tar.gz`
/// ([`crate::pack`]), stored create-only under its sha256.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Artifact {
    /// Number of tar entries (files, directories, symlinks).
    pub entries: u64,
    /// Store key: `artifacts/sha256/<hex>.tar.gz`.
    pub key: String,
    /// The pack spec the artifact was written with (`verbatim.pack/v1`).
    pub pack_spec: String,
    /// Hex sha256 of the stored bytes.
    pub sha256: String,
    /// Size in bytes of the stored (compressed) archive.
    pub size: u64,
    /// Sum of the file sizes inside: unpacking stops beyond it.
    pub unpacked_size: u64,
    /// The compressed length of each 1 MiB deflate block after the 10-byte
    /// gzip header, when there is more than one: hosts inflate them on
    /// every core at once (pack spec v1, "block index"). Absent, the
    /// artifact is inflated in one stream; the bytes are the same.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub blocks: Vec<u64>,
}

/// One fingerprinted asset, stored create-only under its own key so a CDN
/// can serve it straight from the store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Asset {
    /// The `Cache-Control` it is stored with (printable ASCII).
    pub cache_control: String,
    /// The `Content-Type` it is stored with, from its extension (printable
    /// ASCII).
    pub content_type: String,
    /// Subresource-integrity value (`sha384-<base64>`) of the stored bytes.
    pub integrity: String,
    /// Store key: `assets/<dir>/<stem>.<hash>.<ext>`, or `assets/<logical>`
    /// for a file that keeps its name (`assets::keep`).
    pub key: String,
    /// Logical paths of the assets this one references.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub references: Vec<String>,
    /// Hex sha256 of the stored bytes.
    pub sha256: String,
    /// Size in bytes of the stored bytes.
    pub size: u64,
}

/// Where a build came from, as far as the build could tell.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Provenance {
    /// The branch built (CI variables, `git`, or `--branch`), when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branch: Option<String>,
    /// The CI run that built it (`--ci-url`, or GitHub Actions, GitLab CI,
    /// Buildkite variables), when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ci_url: Option<String>,
    /// Whether the git work tree had uncommitted changes under the project
    /// (tracked files changed, or files git does not ignore added) when it
    /// was built: `revision` alone does not rebuild it. Written only when
    /// true, so a clean build's manifest is what it always was.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub dirty: bool,
    /// Source revision (git commit or `--revision`), when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<String>,
    /// `SOURCE_DATE_EPOCH` the build used (also the mtime of every tar entry).
    pub source_date_epoch: u64,
    /// `verbatim <version>` that wrote the manifest.
    pub tool: String,
}

/// Why bytes are not a manifest this version understands.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// Not JSON, or not the shape of a manifest (a field missing, unknown
    /// or of the wrong type).
    #[error("not valid JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// A `schema` other than [`SCHEMA`]: the schema it names.
    #[error(
        "schema `{0}` is not supported by this verbatim (it reads `{SCHEMA}`); upgrade verbatim"
    )]
    Schema(String),
    /// The shape is right but a value breaks a rule; says which field and
    /// why.
    #[error("{0}")]
    Invalid(String),
}

impl Manifest {
    /// The canonical bytes: sorted keys, compact, UTF-8, no trailing newline.
    pub fn to_canonical_bytes(&self) -> Vec<u8> {
        // Struct fields are in alphabetical order and maps are BTreeMaps, so
        // the direct encoding has sorted keys at every level.
        serde_json::to_vec(self).expect("manifest types always serialize")
    }

    /// The manifest's id: sha256 of its canonical bytes (hashed as they are
    /// encoded, never held in memory).
    pub fn id(&self) -> Digest {
        self.write_canonical(std::io::sink())
            .expect("a sink takes every byte")
    }

    /// Writes the canonical bytes to `w` as they are encoded, and returns
    /// their sha256 (the manifest's id).
    pub fn write_canonical(&self, w: impl std::io::Write) -> std::io::Result<Digest> {
        // The encoder writes token by token: buffer before hashing.
        let hashing = crate::digest::HashingWriter::new(w);
        let mut buffered = std::io::BufWriter::with_capacity(64 << 10, hashing);
        serde_json::to_writer(&mut buffered, self)?;
        let hashing = buffered.into_inner().map_err(|e| e.into_error())?;
        let (mut inner, id, _) = hashing.finish();
        inner.flush()?;
        Ok(id)
    }

    /// Store key of this manifest.
    pub fn key(&self) -> String {
        key_for(&self.id())
    }

    /// Parses and checks a manifest. Accepts any JSON spelling; the id is
    /// always computed from the canonical form.
    pub fn parse(bytes: &[u8]) -> Result<Manifest, ManifestError> {
        let m: Manifest = match serde_json::from_slice(bytes) {
            Ok(m) => m,
            Err(e) => {
                // Say "unsupported schema" rather than "unknown field" when
                // that is the reason.
                #[derive(Deserialize)]
                struct Schema {
                    schema: Option<String>,
                }
                return Err(match serde_json::from_slice::<Schema>(bytes) {
                    Ok(Schema { schema: Some(s) }) if s != SCHEMA => ManifestError::Schema(s),
                    Ok(Schema { schema: None }) => {
                        ManifestError::Invalid("missing `schema`".into())
                    }
                    _ => ManifestError::Json(e),
                });
            }
        };
        if m.schema != SCHEMA {
            return Err(ManifestError::Schema(m.schema));
        }
        m.check()?;
        Ok(m)
    }

    /// Parses and checks a manifest streamed from `reader`, never holding
    /// its bytes; returns it with the sha256 and size of the bytes read.
    /// Errors are plainer than [`Manifest::parse`]'s (no schema hint).
    pub fn parse_reader(
        reader: impl std::io::Read,
    ) -> Result<(Manifest, Digest, u64), ManifestError> {
        let mut hashing = crate::digest::HashingReader::new(reader);
        let m: Manifest =
            serde_json::from_reader(std::io::BufReader::with_capacity(64 << 10, &mut hashing))?;
        if m.schema != SCHEMA {
            return Err(ManifestError::Schema(m.schema));
        }
        m.check()?;
        let (digest, size) = hashing.finish();
        Ok((m, digest, size))
    }

    /// Everything a command relies on, checked once on parse: keys are
    /// store keys under their prefix, logical paths are plain relative
    /// paths, digests are hex, and text that ends up in headers or on a
    /// terminal holds no control characters.
    fn check(&self) -> Result<(), ManifestError> {
        let bad = |what: String| Err(ManifestError::Invalid(what));
        let a = &self.artifact;
        let Some(d) = Digest::from_hex(&a.sha256) else {
            return bad(format!(
                "artifact.sha256 {:?} is not 64 hex digits",
                a.sha256
            ));
        };
        if a.key != artifact_key(&d) {
            return bad(format!(
                "artifact.key {:?} does not match its sha256 (expected `{}`)",
                a.key,
                artifact_key(&d)
            ));
        }
        let indexed = a
            .blocks
            .iter()
            .try_fold(18u64, |sum, b| sum.checked_add(*b));
        if !a.blocks.is_empty() && (indexed != Some(a.size) || a.blocks.contains(&0)) {
            return bad(format!(
                "artifact.blocks ({} blocks) do not add up to artifact.size {} with the 18 bytes of gzip header and trailer",
                a.blocks.len(),
                a.size
            ));
        }
        if a.pack_spec != crate::pack::SPEC {
            return bad(format!(
                "artifact.pack_spec {:?} is not supported (this verbatim reads `{}`); upgrade verbatim",
                a.pack_spec,
                crate::pack::SPEC
            ));
        }
        for (path, asset) in &self.assets {
            check_logical(path).or_else(|why| bad(format!("asset path {path:?}: {why}")))?;
            let at = |field: &str| format!("assets[{path:?}].{field}");
            if Digest::from_hex(&asset.sha256).is_none() {
                return bad(format!("{} is not 64 hex digits", at("sha256")));
            }
            match asset.key.strip_prefix("assets/") {
                Some(rest) if check_logical(rest).is_ok() => {}
                _ => {
                    return bad(format!(
                        "{} {:?} is not a plain key under assets/",
                        at("key"),
                        asset.key
                    ))
                }
            }
            for (field, value) in [
                ("content_type", &asset.content_type),
                ("cache_control", &asset.cache_control),
                ("integrity", &asset.integrity),
            ] {
                if value.is_empty() || !value.bytes().all(|b| (0x20..0x7f).contains(&b)) {
                    return bad(format!("{} {value:?} is not printable ASCII", at(field)));
                }
            }
            if let Some(r) = asset.references.iter().find(|r| check_logical(r).is_err()) {
                return bad(format!(
                    "{} names {r:?}, not a plain relative path",
                    at("references")
                ));
            }
        }
        if let Some(d) = &self.deploy {
            d.check().or_else(|why| bad(format!("deploy: {why}")))?;
        }
        if let Some(site) = &self.site {
            site.check().map_err(ManifestError::Invalid)?;
        }
        let p = &self.provenance;
        for (field, value) in [
            ("branch", p.branch.as_deref()),
            ("ci_url", p.ci_url.as_deref()),
            ("revision", p.revision.as_deref()),
            ("tool", Some(&p.tool)),
        ] {
            if value.is_some_and(|v| v.chars().any(char::is_control)) {
                return bad(format!("provenance.{field} holds a control character"));
            }
        }
        Ok(())
    }

    /// Every object the manifest names, with its expected digest and size.
    pub fn objects(&self) -> Vec<ObjectRef> {
        let mut v = Vec::with_capacity(1 + self.assets.len());
        for a in self.assets.values() {
            v.push(ObjectRef {
                key: a.key.clone(),
                sha256: Digest::from_hex(&a.sha256).expect("checked by parse"),
                size: a.size,
            });
        }
        v.push(ObjectRef {
            key: self.artifact.key.clone(),
            sha256: Digest::from_hex(&self.artifact.sha256).expect("checked by parse"),
            size: self.artifact.size,
        });
        if let Some(site) = &self.site {
            let id = self.id();
            for (path, e) in &site.entries {
                v.push(ObjectRef {
                    key: site_key(&id, path),
                    sha256: Digest::from_hex(&e.sha256).expect("checked by parse"),
                    size: e.size,
                });
            }
        }
        v
    }
}

impl Site {
    /// The rules of `site`; the message names the field.
    fn check(&self) -> Result<(), String> {
        check_logical(&self.artifact_dir)
            .map_err(|why| format!("site.artifact_dir {:?}: {why}", self.artifact_dir))?;
        if self.cache_control.is_empty()
            || !self
                .cache_control
                .bytes()
                .all(|b| (0x20..0x7f).contains(&b))
        {
            return Err(format!(
                "site.cache_control {:?} is not printable ASCII",
                self.cache_control
            ));
        }
        for (path, e) in &self.entries {
            check_logical(path).map_err(|why| format!("site entry {path:?}: {why}"))?;
            let at = |field: &str| format!("site.entries[{path:?}].{field}");
            if Digest::from_hex(&e.sha256).is_none() {
                return Err(format!("{} is not 64 hex digits", at("sha256")));
            }
            for (field, value) in [
                ("content_type", &e.content_type),
                ("integrity", &e.integrity),
            ] {
                if value.is_empty() || !value.bytes().all(|b| (0x20..0x7f).contains(&b)) {
                    return Err(format!("{} {value:?} is not printable ASCII", at(field)));
                }
            }
            if let Some(r) = e.references.iter().find(|r| check_logical(r).is_err()) {
                return Err(format!(
                    "{} names {r:?}, not a plain relative path",
                    at("references")
                ));
            }
        }
        Ok(())
    }
}

/// `sites/<manifest hex>/<path>`: where a release's entry file is stored.
pub fn site_key(id: &Digest, path: &str) -> String {
    format!("{SITES_PREFIX}{}/{path}", id.hex())
}

/// The prefix of every release's stored entry files.
pub const SITES_PREFIX: &str = "sites/";

/// Longest logical path accepted (bytes).
const MAX_PATH: usize = 1024;

/// A logical asset path: `/`-separated, relative, no empty, `.` or `..`
/// segment, no backslash or control character.
pub fn check_logical(path: &str) -> Result<(), &'static str> {
    if path.is_empty() || path.len() > MAX_PATH {
        return Err("empty or longer than 1024 bytes");
    }
    if path.chars().any(|c| c.is_control() || c == '\\') {
        return Err("holds a control character or backslash");
    }
    if path
        .split('/')
        .any(|s| s.is_empty() || s == "." || s == "..")
    {
        return Err("has an empty, `.` or `..` segment, or starts with `/`");
    }
    Ok(())
}

/// One object a manifest names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectRef {
    /// Its store key.
    pub key: String,
    /// The sha256 its bytes must have.
    pub sha256: Digest,
    /// The size in bytes it must have.
    pub size: u64,
}

/// `artifacts/sha256/<hex>.tar.gz`
pub fn artifact_key(d: &Digest) -> String {
    format!("artifacts/sha256/{}.tar.gz", d.hex())
}

/// `manifests/sha256/<hex>.json`
pub fn key_for(id: &Digest) -> String {
    format!("manifests/sha256/{}.json", id.hex())
}

/// The largest manifest any command reads (a 10,000-asset manifest is
/// about 5 MiB).
pub const MAX_BYTES: u64 = 256 << 20;

/// The directory all manifest keys live in.
pub const MANIFEST_PREFIX: &str = "manifests/sha256/";

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn sample() -> Manifest {
        let d = Digest::of(b"artifact");
        Manifest {
            schema: SCHEMA.into(),
            artifact: Artifact {
                entries: 1,
                key: artifact_key(&d),
                sha256: d.hex(),
                size: 8,
                pack_spec: crate::pack::SPEC.into(),
                unpacked_size: 3,
                blocks: Vec::new(),
            },
            assets: BTreeMap::new(),
            deploy: None,
            provenance: Provenance {
                branch: None,
                ci_url: None,
                dirty: false,
                revision: Some("abc123".into()),
                source_date_epoch: 0,
                tool: "verbatim 0.1.0".into(),
            },
            site: None,
        }
    }

    #[test]
    fn canonical_bytes_are_sorted_and_compact() {
        let bytes = sample().to_canonical_bytes();
        let text = String::from_utf8(bytes).unwrap();
        assert!(
            !text.contains(": ") && !text.contains(", ") && !text.contains('\n'),
            "{text}"
        );
        let a = text.find("\"artifact\"").unwrap();
        let b = text.find("\"assets\"").unwrap();
        let p = text.find("\"provenance\"").unwrap();
        let s = text.find("\"schema\"").unwrap();
        assert!(a < b && b < p && p < s, "{text}");
        assert!(text.find("\"key\"").unwrap() < text.find("\"pack_spec\"").unwrap());
    }

    #[test]
    fn direct_encoding_is_the_sorted_encoding() {
        let mut m = sample();
        m.assets.insert(
            "css/site.css".into(),
            Asset {
                cache_control: "public".into(),
                content_type: "text/css; charset=utf-8".into(),
                integrity: "sha384-x".into(),
                key: "assets/css/site.0123456789ab.css".into(),
                references: vec!["img/a.png".into()],
                sha256: Digest::of(b"css").hex(),
                size: 3,
            },
        );
        let sorted = serde_json::to_vec(&serde_json::to_value(&m).unwrap()).unwrap();
        assert_eq!(
            m.to_canonical_bytes(),
            sorted,
            "a struct's fields are out of alphabetical order"
        );
    }

    #[test]
    fn a_site_is_optional_and_its_entries_are_objects_under_the_manifests_id() {
        let without = sample();
        assert!(!String::from_utf8(without.to_canonical_bytes())
            .unwrap()
            .contains("\"site\""));
        let mut m = sample();
        let entry = Entry {
            content_type: "text/html; charset=utf-8".into(),
            integrity: "sha384-x".into(),
            references: vec!["css/site.css".into()],
            sha256: Digest::of(b"<p>").hex(),
            size: 3,
        };
        m.site = Some(Site {
            artifact_dir: "site".into(),
            cache_control: "no-cache".into(),
            entries: [("index.html".to_owned(), entry)].into(),
        });
        let back = Manifest::parse(&m.to_canonical_bytes()).unwrap();
        assert_eq!(back, m);
        assert_ne!(back.id(), without.id());
        let keys: Vec<String> = m.objects().into_iter().map(|o| o.key).collect();
        assert!(
            keys.contains(&format!("sites/{}/index.html", m.id().hex())),
            "{keys:?}"
        );
        for (field, value) in [
            ("artifact_dir", serde_json::json!("../x")),
            ("cache_control", serde_json::json!("no-cache\n")),
        ] {
            let mut v = serde_json::to_value(&m).unwrap();
            v["site"][field] = value;
            let e = Manifest::parse(v.to_string().as_bytes()).unwrap_err();
            assert!(e.to_string().contains(field), "{e}");
        }
        let mut v = serde_json::to_value(&m).unwrap();
        v["site"]["entries"]["index.html"]["sha256"] = "nope".into();
        let e = Manifest::parse(v.to_string().as_bytes()).unwrap_err();
        assert!(e.to_string().contains("site.entries"), "{e}");
    }

    #[test]
    fn parse_round_trips_and_id_ignores_spelling() {
        let m = sample();
        let pretty = serde_json::to_vec_pretty(&m).unwrap();
        let back = Manifest::parse(&pretty).unwrap();
        assert_eq!(back, m);
        assert_eq!(back.id(), Digest::of(&m.to_canonical_bytes()));
    }

    #[test]
    fn parse_rejects_bad_manifests_with_reasons() {
        let mut v = serde_json::to_value(sample()).unwrap();
        v["schema"] = "verbatim.manifest/v9".into();
        let e = Manifest::parse(v.to_string().as_bytes()).unwrap_err();
        assert!(e.to_string().contains("v9"), "{e}");

        let mut v = serde_json::to_value(sample()).unwrap();
        v["artifact"]["key"] = "artifacts/sha256/other.tar.gz".into();
        let e = Manifest::parse(v.to_string().as_bytes()).unwrap_err();
        assert!(e.to_string().contains("does not match"), "{e}");

        let mut v = serde_json::to_value(sample()).unwrap();
        v["surprise"] = 1.into();
        let e = Manifest::parse(v.to_string().as_bytes()).unwrap_err();
        assert!(e.to_string().contains("surprise"), "{e}");
    }
}
