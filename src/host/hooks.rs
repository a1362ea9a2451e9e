//! A release's deploy hooks (`pre_activate`, `post_activate`, `check`):
//! each runs `sh -c` in the release directory, in a process group of its
//! own (`crate::process`), with the deploy's variables set.

use std::path::Path;
use std::time::Duration;

use crate::digest::Digest;
use crate::manifest::Deploy;
use crate::process::{self, Ended};
use crate::progress::Progress;
use crate::signals;

/// The hooks of one deploy.
pub(super) struct Hooks<'a> {
    /// The release's deploy settings: its hooks and their timeouts.
    pub settings: &'a Deploy,
    /// The deploy root.
    pub root: &'a Path,
    /// The environment followed (`""` for none).
    pub env: &'a str,
    /// `--hook-env` variables.
    pub extra: &'a [(String, String)],
    pub progress: &'a dyn Progress,
    /// How the check hook passed, for the report.
    pub check_passed: std::cell::RefCell<Option<String>>,
}

impl Hooks<'_> {
    /// Runs hook `name` (if the manifest has one) in `dir` for `manifest`;
    /// `None` when it passed or there is none, else how it failed.
    pub(super) fn run(
        &self,
        name: &str,
        manifest: &Digest,
        previous: Option<&Digest>,
        dir: &Path,
    ) -> Option<Ended> {
        self.run_logged(name, manifest, previous, dir, None)
    }

    /// [`Hooks::run`], its output into `log` when given.
    pub(super) fn run_logged(
        &self,
        name: &str,
        manifest: &Digest,
        previous: Option<&Digest>,
        dir: &Path,
        log: Option<&Path>,
    ) -> Option<Ended> {
        let h = &self.settings.hooks;
        let (cmd, timeout) = match name {
            "release" => (h.release.as_deref()?, self.settings.hook_timeout),
            "pre_activate" => (h.pre_activate.as_deref()?, self.settings.hook_timeout),
            "post_activate" => (h.post_activate.as_deref()?, self.settings.hook_timeout),
            "reload" => (h.reload.as_deref()?, self.settings.hook_timeout),
            _ => (h.check.as_deref()?, self.settings.check_timeout),
        };
        let (m, p) = (
            manifest.to_string(),
            previous.map(Digest::to_string).unwrap_or_default(),
        );
        let (release, root) = (dir.to_string_lossy(), self.root.to_string_lossy());
        let mut vars: Vec<(&str, &str)> = self
            .extra
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        vars.extend([
            ("VERBATIM_ENV", self.env),
            ("VERBATIM_MANIFEST", m.as_str()),
            ("VERBATIM_PREVIOUS_MANIFEST", p.as_str()),
            ("VERBATIM_RELEASE_DIR", &release),
            ("VERBATIM_ROOT", &root),
        ]);
        let label = match name {
            "check" => "check hook".to_owned(),
            other => format!("{other} hook"),
        };
        // Its output is kept, so that a failure can say why in the report.
        let own = match log {
            Some(_) => None,
            None => crate::safe_fs::create_dirs(self.root, Path::new(".verbatim/hooks"))
                .ok()
                .map(|d| d.join(format!("{name}.log"))),
        };
        let ended = process::run(
            &process::Job {
                cmd,
                label: &label,
                cwd: Some(dir),
                vars: &vars,
                timeout: Duration::from_secs(timeout),
                log: log.or(own.as_deref()),
            },
            self.progress,
        );
        let output = own.as_deref().map(read_tail).unwrap_or_default();
        match ended {
            Ended::Passed(detail) => {
                for line in output.lines() {
                    self.progress.note(format!("{label}: {line}"));
                }
                if name == "check" {
                    *self.check_passed.borrow_mut() = Some(format!("check passed: {detail}"));
                }
                None
            }
            Ended::Failed(why) if !output.is_empty() => {
                for line in output.lines() {
                    self.progress.warn(format!("{label}: {line}"));
                }
                let lines: Vec<&str> = output.lines().collect();
                let tail = lines[lines.len().saturating_sub(TAIL_LINES)..].join("\n");
                // Bounded: a report is at most 64 KiB.
                let cut = tail.len().saturating_sub(4096);
                let cut = (cut..=tail.len())
                    .find(|&i| tail.is_char_boundary(i))
                    .unwrap_or(0);
                Some(Ended::Failed(format!(
                    "{why}; its last output:\n{}",
                    &tail[cut..]
                )))
            }
            other => Some(other),
        }
    }
}

/// The lines of a failed hook's output its report carries.
const TAIL_LINES: usize = 20;

/// The end of a hook's output (its last 16 KiB), as text.
fn read_tail(log: &Path) -> String {
    use std::io::{Read, Seek, SeekFrom};
    let Ok(mut f) = std::fs::File::open(log) else {
        return String::new();
    };
    let len = f.metadata().map_or(0, |m| m.len());
    let _ = f.seek(SeekFrom::Start(len.saturating_sub(16 << 10)));
    let mut buf = Vec::new();
    let _ = f.take(16 << 10).read_to_end(&mut buf);
    String::from_utf8_lossy(&buf).trim_end().to_owned()
}

/// How a hook ended, in words.
pub(super) fn describe(ended: &Ended) -> String {
    match ended {
        Ended::Passed(d) | Ended::Failed(d) => d.clone(),
        Ended::Interrupted(sig) => format!("interrupted by {}", signals::signal_name(*sig)),
    }
}
