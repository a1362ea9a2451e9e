//! Running a canary check or a deploy hook: a shell command in a process
//! group of its own, ended as a whole on a timeout, on a signal, and when
//! it exits.
//!
//! `sh -c CMD` starts as the leader of a new process group, so everything it
//! starts (unless it leaves the group on purpose, as a daemon does) is
//! signalled at once. Ending the group is SIGTERM, up to [`GRACE`] for it to
//! go, then SIGKILL. That happens on a timeout, on an interrupt
//! ([`crate::signals::caught`]), and after the shell exits: what it left
//! running in the background was part of the check, and a check leaves
//! nothing behind.
//!
//! SIGKILL of verbatim itself needs not be feared: the promote event
//! recorded the check as started before it started, so the next reader sees
//! a check that never finished (see `environments`), and a move whose event
//! was written but whose pointer was not is completed by the next writer.
//!
//! The only module that starts a process besides `build`'s
//! `git rev-parse`.

use std::io;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::progress::Progress;
use crate::signals::{caught, signal_name};

/// How long a check's process group gets between SIGTERM and SIGKILL.
pub const GRACE: Duration = Duration::from_secs(3);

/// How long to wait for the group to go after SIGKILL before giving up on
/// watching it (a process in uninterruptible sleep).
const AFTER_KILL: Duration = Duration::from_secs(2);

const POLL: Duration = Duration::from_millis(20);

/// How a check ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ended {
    /// Exit status 0; the detail says how long it took.
    Passed(String),
    /// A non-zero exit, a timeout, a failure to start: why.
    Failed(String),
    /// A handled signal reached verbatim: which.
    Interrupted(libc::c_int),
}

/// A shell command to run as a check or a deploy hook.
pub struct Job<'a> {
    /// The command, given to `sh -c` as it is.
    pub cmd: &'a str,
    /// What it is, for messages: `canary check`, `pre_activate hook`.
    pub label: &'a str,
    /// Where it runs [default: verbatim's own working directory].
    pub cwd: Option<&'a Path>,
    /// Variables set for it on top of the environment it inherits
    /// (`VERBATIM_ENV`, `VERBATIM_MANIFEST`, …).
    pub vars: &'a [(&'a str, &'a str)],
    /// How long it may run before its group is ended (TERM, [`GRACE`], KILL)
    /// and it has failed.
    pub timeout: Duration,
    /// Where its output goes instead of verbatim's stderr (created or
    /// truncated), so its last lines can be told.
    pub log: Option<&'a Path>,
}

/// Runs `sh -c cmd` with `vars` set, stdin closed and stdout sent to stderr
/// (stdout carries results only), for at most `timeout`, in a process group
/// of its own that is ended when the job ends, however it ends.
pub fn run(job: &Job<'_>, progress: &dyn Progress) -> Ended {
    run_with_code(job, progress).0
}

/// [`run`], with the command's exit code when it exited on its own.
pub fn run_with_code(job: &Job<'_>, progress: &dyn Progress) -> (Ended, Option<i32>) {
    let Job {
        cmd,
        label,
        timeout,
        ..
    } = *job;
    if let Some(sig) = caught() {
        return (Ended::Interrupted(sig), None);
    }
    progress.note(format!(
        "running {label} (up to {}s): {cmd}",
        timeout.as_secs_f64().ceil()
    ));
    let spawned = {
        use std::os::unix::process::CommandExt;
        let mut command = Command::new("sh");
        if let Some(dir) = job.cwd {
            command.current_dir(dir);
        }
        let (out, err) = match job.log.map(std::fs::File::create).transpose() {
            Ok(Some(f)) => match f.try_clone() {
                Ok(g) => (Stdio::from(f), Stdio::from(g)),
                Err(e) => return (Ended::Failed(format!("cannot start `{cmd}`: {e}")), None),
            },
            Ok(None) => (Stdio::from(io::stderr()), Stdio::inherit()),
            Err(e) => return (Ended::Failed(format!("cannot start `{cmd}`: {e}")), None),
        };
        command
            .arg("-c")
            .arg(cmd)
            .envs(job.vars.iter().copied())
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .process_group(0)
            .spawn()
    };
    let mut child = match spawned {
        Ok(c) => c,
        Err(e) => return (Ended::Failed(format!("cannot start `{cmd}`: {e}")), None),
    };
    let Ok(pgid) = libc::pid_t::try_from(child.id()) else {
        let _ = child.kill();
        let _ = child.wait();
        let why = format!("`{cmd}`: process id {} out of range", child.id());
        return (Ended::Failed(why), None);
    };
    let started = Instant::now();
    let ended = loop {
        if let Some(sig) = caught() {
            progress.warn(format!("{}: stopping the {label}", signal_name(sig)));
            break Ended::Interrupted(sig);
        }
        // Watch for the exit without reaping: the leader's pid is the
        // group's id, and must stay taken until the group has been signalled.
        match has_exited(pgid) {
            Ok(true) => break Ended::Passed(String::new()), // status read below
            Ok(false) if started.elapsed() >= timeout => {
                break Ended::Failed(format!(
                    "`{cmd}` timed out after {}s",
                    timeout.as_secs_f64().ceil()
                ))
            }
            Ok(false) => std::thread::sleep(POLL),
            Err(e) => break Ended::Failed(format!("waiting for `{cmd}`: {e}")),
        }
    };
    let took = started.elapsed().as_secs_f64();
    let status = end_group(&mut child, pgid, label, progress);
    let code = status.and_then(|s| s.code());
    let ended = match (ended, status) {
        (Ended::Passed(_), Some(s)) if s.success() => {
            Ended::Passed(format!("`{cmd}` exited 0 after {took:.1}s"))
        }
        (Ended::Passed(_), Some(s)) => Ended::Failed(format!("`{cmd}` exited with {s}")),
        (Ended::Passed(_), None) => Ended::Failed(format!("`{cmd}`: its exit status was lost")),
        (other, _) => return (other, None),
    };
    (ended, code)
}

/// Whether child `pid` has exited, leaving it unreaped.
fn has_exited(pid: libc::pid_t) -> io::Result<bool> {
    let id = libc::id_t::try_from(pid).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: zeroed is a valid siginfo_t; with WNOHANG, si_pid stays 0
    // unless the child has changed state (POSIX's portable test).
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: info is valid for writes; WNOWAIT leaves the child waitable.
        let r = unsafe {
            libc::waitid(
                libc::P_PID,
                id,
                &mut info,
                libc::WEXITED | libc::WNOHANG | libc::WNOWAIT,
            )
        };
        if r == 0 {
            // SAFETY: waitid filled (or left zeroed) the record.
            return Ok(unsafe { info.si_pid() } != 0);
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// Ends process group `pgid`, led by `leader`: SIGTERM, up to [`GRACE`],
/// SIGKILL. Returns the leader's exit status once the group is empty and the
/// leader reaped, or after [`AFTER_KILL`] more, saying so.
fn end_group(
    leader: &mut Child,
    pgid: libc::pid_t,
    label: &str,
    progress: &dyn Progress,
) -> Option<std::process::ExitStatus> {
    // The leader is not reaped yet (see `run`), so its pid, the group's id,
    // cannot have been reused: this signal reaches the check's group only.
    signal_group(pgid, libc::SIGTERM);
    let start = Instant::now();
    let mut killed = false;
    loop {
        let status = leader.try_wait().ok().flatten();
        if status.is_some() && group_is_empty(pgid) {
            return status;
        }
        if !killed && start.elapsed() >= GRACE {
            progress.warn(format!(
                "the {label}'s processes outlived SIGTERM by {}s; sending SIGKILL",
                GRACE.as_secs()
            ));
            signal_group(pgid, libc::SIGKILL);
            killed = true;
        }
        if killed && start.elapsed() >= GRACE + AFTER_KILL {
            let status = match status {
                Some(s) => Some(s),
                None => {
                    let _ = leader.kill();
                    leader.wait().ok()
                }
            };
            progress.warn(format!(
                "process group {pgid} of the {label} still has processes after SIGKILL (in uninterruptible sleep?); not waiting for them"
            ));
            return status;
        }
        std::thread::sleep(POLL);
    }
}

fn signal_group(pgid: libc::pid_t, sig: libc::c_int) {
    // SAFETY: kill(2) with a negative pid signals that process group only;
    // pgid > 0 is the id of a group our child leads (or led).
    if pgid > 0 {
        unsafe { libc::kill(-pgid, sig) };
    }
}

/// True when no live process is left in group `pgid`: none at all (ESRCH),
/// or, on Linux, only zombies (orphans whose new parent does not reap them,
/// as in some containers, stay in the group as zombies but run no more).
fn group_is_empty(pgid: libc::pid_t) -> bool {
    // SAFETY: signal 0 only checks whether the group exists.
    let r = unsafe { libc::kill(-pgid, 0) };
    if r == -1 && io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH) {
        return true;
    }
    only_zombies_in(pgid)
}

#[cfg(target_os = "linux")]
fn only_zombies_in(pgid: libc::pid_t) -> bool {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return false;
    };
    for entry in dir.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .filter(|n| n.bytes().all(|b| b.is_ascii_digit()))
        else {
            continue;
        };
        // `pid (comm) state ppid pgrp …`; comm may hold spaces and parentheses.
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue; // gone meanwhile
        };
        let Some((_, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        let mut fields = rest.split_ascii_whitespace();
        let (state, pgrp) = (fields.next(), fields.nth(1));
        if pgrp.and_then(|g| g.parse::<libc::pid_t>().ok()) == Some(pgid) && state != Some("Z") {
            return false;
        }
    }
    true
}

#[cfg(not(target_os = "linux"))]
fn only_zombies_in(_pgid: libc::pid_t) -> bool {
    false
}
