//! `verbatim diff <a> <b>`: what changed between two manifests; the work is
//! `verbatim::objects::diff`.

use anyhow::Result;

use super::flags;
use crate::cli::{DiffArgs, Global};
use crate::output::Printer;
use verbatim::text::human_bytes;

pub fn run(g: &Global, args: &DiffArgs, printer: &Printer) -> Result<()> {
    let store = flags::open_store_for(g)?;
    let a_id = verbatim::environments::resolve::resolve_manifest(store.as_ref(), &args.a)?;
    let b_id = verbatim::environments::resolve::resolve_manifest(store.as_ref(), &args.b)?;
    let a = verbatim::objects::load_manifest(store.as_ref(), &a_id)?;
    let b = verbatim::objects::load_manifest(store.as_ref(), &b_id)?;
    let d = verbatim::objects::diff::diff(store.as_ref(), (&a_id, &a), (&b_id, &b))?;
    let (artifact, assets) = (&d.artifact, &d.assets);
    printer.result(format!(
        "artifact: {}",
        if d.artifact_changed {
            format!(
                "changed ({} → {})",
                &a.artifact.sha256[..12],
                &b.artifact.sha256[..12]
            )
        } else {
            "unchanged".into()
        }
    ))?;
    for e in &artifact.added {
        printer.result(format!("  + {} ({})", e.path, human_bytes(e.size)))?;
    }
    for e in &artifact.removed {
        printer.result(format!("  - {} ({})", e.path, human_bytes(e.size)))?;
    }
    for e in &artifact.changed {
        printer.result(format!(
            "  ~ {} ({} → {})",
            e.path,
            human_bytes(e.size_before),
            human_bytes(e.size_after)
        ))?;
    }
    if !assets.added.is_empty() || !assets.removed.is_empty() || !assets.changed.is_empty() {
        printer.result("assets:")?;
    }
    for (sign, list) in [
        ("+", &assets.added),
        ("-", &assets.removed),
        ("~", &assets.changed),
    ] {
        for p in list {
            printer.result(format!("  {sign} {p}"))?;
        }
    }
    printer.json(&d)?;
    Ok(())
}
