//! Where a build comes from, as its manifest records it: the source
//! revision, the branch and the CI run, from flags, the CI's variables or
//! `git` (the one process a build starts), and whether the work tree had
//! uncommitted changes.

use std::path::Path;
use std::process::Command;

use crate::manifest::Provenance;

/// `given` (what the flags said) completed for the project at `root`: a
/// branch, CI run or revision not given is found in the CI's variables or
/// with `git`.
pub fn complete(root: &Path, given: Provenance) -> Provenance {
    Provenance {
        branch: branch(root, given.branch),
        ci_url: ci_url(given.ci_url),
        revision: revision(root, given.revision),
        dirty: dirty(root) == Some(true),
        ..given
    }
}

/// Whether the git work tree holding `root` has uncommitted changes under
/// it (tracked files changed or staged, or untracked files git does not
/// ignore; verbatim's own `.verbatim/` aside); `None` when `root` is not
/// in a git work tree (or git is not there to ask).
pub fn dirty(root: &Path) -> Option<bool> {
    let out = Command::new("git")
        .arg("-C")
        .arg(root)
        .args([
            "--no-optional-locks",
            "status",
            "--porcelain",
            "--untracked-files=normal",
            "--",
            ".",
            ":(exclude).verbatim",
        ])
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| out.stdout.iter().any(|b| !b.is_ascii_whitespace()))
}

/// The first of these environment variables that is set and not empty.
fn first_var(names: &[&str]) -> Option<String> {
    names
        .iter()
        .find_map(|n| std::env::var(n).ok().filter(|v| !v.trim().is_empty()))
}

/// `git -C root ARGS`'s output, trimmed, when it succeeds.
fn git(root: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .arg("-C")
        .arg(root)
        .args(args)
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    let text = String::from_utf8(out.stdout).ok()?.trim().to_owned();
    (out.status.success() && !text.is_empty()).then_some(text)
}

/// `--branch`, else the CI's branch variable, else git's current branch.
fn branch(root: &Path, given: Option<String>) -> Option<String> {
    given
        .or_else(|| {
            first_var(&[
                "GITHUB_HEAD_REF",
                "GITHUB_REF_NAME",
                "CI_COMMIT_REF_NAME",
                "BUILDKITE_BRANCH",
            ])
        })
        .or_else(|| git(root, &["rev-parse", "--abbrev-ref", "HEAD"]).filter(|b| b != "HEAD"))
}

/// `--ci-url`, else the run's URL from GitHub Actions, GitLab CI or
/// Buildkite variables.
fn ci_url(given: Option<String>) -> Option<String> {
    if given.is_some() {
        return given;
    }
    if let (Some(server), Some(repo), Some(run)) = (
        first_var(&["GITHUB_SERVER_URL"]),
        first_var(&["GITHUB_REPOSITORY"]),
        first_var(&["GITHUB_RUN_ID"]),
    ) {
        return Some(format!("{server}/{repo}/actions/runs/{run}"));
    }
    first_var(&["CI_JOB_URL", "CI_PIPELINE_URL", "BUILDKITE_BUILD_URL"])
}

/// `--revision`, else the git commit of the project root, else the CI's
/// commit variable, else none.
fn revision(root: &Path, given: Option<String>) -> Option<String> {
    if given.is_some() {
        return given;
    }
    if let Some(r) = git(root, &["rev-parse", "--verify", "--quiet", "HEAD"]) {
        return Some(r);
    }
    first_var(&["GITHUB_SHA", "CI_COMMIT_SHA", "BUILDKITE_COMMIT"])
}
