//! Hostile inputs: a malicious repository, store, artifact or endpoint gets a
//! clear error naming the culprit, and nothing else — nothing written outside
//! the project, no hang, no unbounded memory. One submodule per attack surface.

mod assets;
mod chain;
mod history;

use std::process::Command;

mod endpoint;
mod fetch;
mod output;
mod perms;

use crate::util::{bounded, Project};

/// A project with `app/` and `static/` as its assets directory.
pub fn assets_project() -> Project {
    let p = Project::with_config("[app]\ndir = \"app\"\n[assets]\ndir = \"static\"\n");
    std::fs::create_dir(p.path().join("static")).unwrap();
    p
}

#[test]
fn a_fifo_among_the_assets_is_refused_not_read() {
    let p = assets_project();
    let fifo = p.path().join("static/pipe.css");
    let st = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(st.success());
    let run = bounded(p.cmd(&["build"]).arg("--no-progress"), 60);
    let err = run.exits(1, 256);
    assert!(err.contains("pipe.css"), "{err}");
    assert!(!p.path().join(".verbatim/build").exists());
}
