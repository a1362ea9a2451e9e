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

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
// Fields are declared in alphabetical order: serializing them directly is
// then canonical (a unit test holds this), with no intermediate `Value`.
pub struct Manifest {
    pub artifact: Artifact,
    /// Logical asset path (as the app names it) → stored asset.
    pub assets: BTreeMap<String, Asset>,
    pub provenance: Provenance,
    pub schema: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Artifact {
    /// Store key: `artifacts/sha256/<hex>.tar.gz`.
    pub key: String,
    /// The pack spec the artifact was written with (`verbatim.pack/v1`).
    pub pack_spec: String,
    /// Hex sha256 of the stored bytes.
    pub sha256: String,
    pub size: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Asset {
    pub cache_control: String,
    pub content_type: String,
    /// Subresource-integrity value (`sha384-<base64>`) of the stored bytes.
    pub integrity: String,
    /// Store key: `assets/<dir>/<stem>.<hash>.<ext>`.
    pub key: String,
    /// Logical paths of the assets this one references.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub references: Vec<String>,
    pub sha256: String,
    pub size: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Provenance {
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
    #[error("not valid JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error(
        "schema `{0}` is not supported by this verbatim (it reads `{SCHEMA}`); upgrade verbatim"
    )]
    Schema(String),
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

    /// The manifest's id: sha256 of its canonical bytes.
    pub fn id(&self) -> Digest {
        Digest::of(&self.to_canonical_bytes())
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

    fn check(&self) -> Result<(), ManifestError> {
        let bad = |what: String| Err(ManifestError::Invalid(what));
        let Some(d) = Digest::from_hex(&self.artifact.sha256) else {
            return bad(format!(
                "artifact.sha256 `{}` is not 64 hex digits",
                self.artifact.sha256
            ));
        };
        if self.artifact.key != artifact_key(&d) {
            return bad(format!(
                "artifact.key `{}` does not match its sha256 (expected `{}`)",
                self.artifact.key,
                artifact_key(&d)
            ));
        }
        for (path, a) in &self.assets {
            if Digest::from_hex(&a.sha256).is_none() {
                return bad(format!("assets[{path:?}].sha256 is not 64 hex digits"));
            }
            if !a.key.starts_with("assets/") {
                return bad(format!(
                    "assets[{path:?}].key `{}` is not under assets/",
                    a.key
                ));
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
        v
    }
}

/// One object a manifest names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectRef {
    pub key: String,
    pub sha256: Digest,
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

/// The directory all manifest keys live in.
pub const MANIFEST_PREFIX: &str = "manifests/sha256/";

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn sample() -> Manifest {
        let d = Digest::of(b"artifact");
        Manifest {
            schema: SCHEMA.into(),
            artifact: Artifact {
                key: artifact_key(&d),
                sha256: d.hex(),
                size: 8,
                pack_spec: "verbatim.pack/v1".into(),
            },
            assets: BTreeMap::new(),
            provenance: Provenance {
                revision: Some("abc123".into()),
                source_date_epoch: 0,
                tool: "verbatim 0.1.0".into(),
            },
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
