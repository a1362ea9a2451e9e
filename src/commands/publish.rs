//! `verbatim publish`: put the artifact, then the manifest, into the store.
//!
//! Order is the crash-safety contract: objects first (assets leaves-first,
//! then the artifact), the manifest that names
//! them last, so a stored manifest always names objects that exist. Every put
//! is create-only, so republishing an unchanged tree writes nothing.

use std::path::Path;

use anyhow::{Context, Result};
use serde::Serialize;

use crate::cli::{Global, PublishArgs};
use crate::digest::Digest;
use crate::manifest::{self, Manifest};
use crate::output::Printer;
use crate::store::{Body, Key, PutMode, PutOptions, PutOutcome, Store};

use super::build;

#[derive(Serialize)]
struct PublishJson {
    manifest: String,
    store: String,
    written: Vec<String>,
    unchanged: Vec<String>,
    /// With `--env`: the promotion, as `verbatim promote --json` prints it.
    #[serde(skip_serializing_if = "Option::is_none")]
    promoted: Option<super::promote::MoveJson>,
}

pub fn run(g: &Global, args: &PublishArgs, printer: &Printer) -> Result<()> {
    let cfg = build::config_for(g, &args.opts)?;
    let built = if args.prebuilt {
        build::load_built(&cfg)?
    } else {
        build::build(&cfg, &args.opts, printer)?
    };
    let store = super::open_store(&cfg)?;
    let mut report = publish(store.as_ref(), &built, printer)?;
    if let Some(env) = &args.env {
        let req = super::promote::MoveRequest {
            env,
            to: built.id,
            kind: crate::environments::Kind::Promote,
            reason: None,
            force: false,
        };
        report.promoted = Some(super::promote::move_pointer(
            store.as_ref(),
            &cfg,
            &req,
            printer,
        )?);
    }
    printer.result(built.id)?;
    printer.json(&report)?;
    Ok(())
}

fn publish(store: &dyn Store, built: &build::Built, printer: &Printer) -> Result<PublishJson> {
    let m: &Manifest = &built.manifest;
    let mut report = PublishJson {
        manifest: built.id.to_string(),
        store: store.location(),
        written: vec![],
        unchanged: vec![],
        promoted: None,
    };
    let out = built.manifest_path.parent().unwrap_or(Path::new("."));
    super::assets::upload(store, out, m, |key, outcome| {
        record(&mut report, key, outcome, printer)
    })?;
    let artifact_digest = Digest::from_hex(&m.artifact.sha256).expect("parsed manifests are valid");
    let key = Key::new(m.artifact.key.clone())?;
    let outcome = store
        .put(
            &key,
            Body::file(&built.artifact_path, artifact_digest, m.artifact.size),
            PutMode::CreateOnly,
            &PutOptions {
                content_type: Some("application/gzip".into()),
                cache_control: None,
            },
        )
        .with_context(|| format!("publishing artifact {}", built.artifact_path.display()))?;
    record(&mut report, &key, &outcome, printer);

    let bytes = m.to_canonical_bytes();
    let key = Key::new(manifest::key_for(&built.id))?;
    let outcome = store
        .put(
            &key,
            Body::bytes(&bytes),
            PutMode::CreateOnly,
            &PutOptions {
                content_type: Some("application/json".into()),
                cache_control: None,
            },
        )
        .context("publishing the manifest")?;
    record(&mut report, &key, &outcome, printer);
    printer.note(format!(
        "published {} to {} ({} written, {} already there)",
        built.id,
        store.location(),
        report.written.len(),
        report.unchanged.len()
    ));
    Ok(report)
}

fn record(report: &mut PublishJson, key: &Key, outcome: &PutOutcome, printer: &Printer) {
    match outcome {
        PutOutcome::Written(_) => {
            printer.detail(format!("wrote {key}"));
            report.written.push(key.to_string());
        }
        PutOutcome::Unchanged(_) => {
            printer.detail(format!("already there: {key}"));
            report.unchanged.push(key.to_string());
        }
    }
}
