//! SIGINT, SIGTERM and SIGHUP, noted rather than obeyed.
//!
//! While verbatim does something that must not stop half way (a canary
//! check and the rollback after it, a deploy, a build's temp files), these
//! signals only set a flag ([`Signals`], an async-signal-safe atomic store);
//! the work polls it ([`caught`]) and ends cleanly: a check is ended and
//! rolled back, a download or unpack abandoned and its temp files removed
//! ([`Interruptible`]). Installing the handlers is the command's choice
//! (a process-wide act); the library only reads the flag. This is the only
//! module that handles signals.

use std::io::{self, Read};
use std::sync::atomic::{AtomicI32, Ordering};

/// The signals that stop a check (and trigger a rollback).
const HANDLED: [libc::c_int; 3] = [libc::SIGINT, libc::SIGTERM, libc::SIGHUP];

/// The first handled signal since [`Signals::install`], or 0.
static CAUGHT: AtomicI32 = AtomicI32::new(0);

extern "C" fn on_signal(sig: libc::c_int) {
    // An atomic store is async-signal-safe; nothing else happens here.
    let _ = CAUGHT.compare_exchange(0, sig, Ordering::SeqCst, Ordering::SeqCst);
}

/// SIGINT, SIGTERM and SIGHUP handlers that only record the signal, for as
/// long as the value lives; the previous dispositions come back on drop. A
/// signal ignored when verbatim started (a background job's SIGINT) stays
/// ignored.
pub struct Signals {
    previous: Vec<(libc::c_int, libc::sigaction)>,
}

impl Signals {
    /// Installs the handlers and forgets any signal caught before; the error
    /// is the OS's, when one cannot be installed (those already installed are
    /// put back).
    pub fn install() -> io::Result<Signals> {
        CAUGHT.store(0, Ordering::SeqCst);
        let mut signals = Signals {
            previous: Vec::new(),
        };
        for sig in HANDLED {
            // SAFETY: an all-zero sigaction is a valid value; the mask is
            // then initialised by sigemptyset.
            let mut action: libc::sigaction = unsafe { std::mem::zeroed() };
            action.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
            // Interrupted system calls restart: a signal must not make a
            // store write fail half way.
            action.sa_flags = libc::SA_RESTART;
            // SAFETY: as above.
            let mut previous: libc::sigaction = unsafe { std::mem::zeroed() };
            // SAFETY: both pointers are valid for the call; the handler only
            // does an atomic store.
            let installed = unsafe {
                libc::sigemptyset(&mut action.sa_mask);
                libc::sigaction(sig, &action, &mut previous)
            };
            if installed != 0 {
                return Err(io::Error::last_os_error()); // drop restores the others
            }
            if previous.sa_sigaction == libc::SIG_IGN {
                // SAFETY: restores exactly what was there.
                unsafe { libc::sigaction(sig, &previous, std::ptr::null_mut()) };
            } else {
                signals.previous.push((sig, previous));
            }
        }
        Ok(signals)
    }
}

impl Drop for Signals {
    fn drop(&mut self) {
        for (sig, previous) in self.previous.iter().rev() {
            // SAFETY: restores a disposition sigaction gave us.
            unsafe { libc::sigaction(*sig, previous, std::ptr::null_mut()) };
        }
    }
}

/// The first SIGINT, SIGTERM or SIGHUP caught since [`Signals::install`].
pub fn caught() -> Option<libc::c_int> {
    match CAUGHT.load(Ordering::SeqCst) {
        0 => None,
        sig => Some(sig),
    }
}

/// `SIGINT`, `SIGTERM`, `SIGHUP`, else `signal N`.
pub fn signal_name(sig: libc::c_int) -> String {
    match sig {
        libc::SIGINT => "SIGINT".into(),
        libc::SIGTERM => "SIGTERM".into(),
        libc::SIGHUP => "SIGHUP".into(),
        n => format!("signal {n}"),
    }
}

/// A reader or writer that fails once SIGINT, SIGTERM or SIGHUP was caught
/// (while a command has its handlers installed), so a long download,
/// unpack or pack is abandoned, its temp files removed, rather than
/// finished.
pub struct Interruptible<T>(pub T);

/// An error once a handled signal was caught: what long work checks
/// between steps.
pub fn stopped() -> io::Result<()> {
    match caught() {
        Some(sig) => Err(io::Error::other(format!("stopped by {}", signal_name(sig)))),
        None => Ok(()),
    }
}

impl<R: Read> Read for Interruptible<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        stopped()?;
        self.0.read(buf)
    }
}

impl<W: io::Write> io::Write for Interruptible<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        stopped()?;
        self.0.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}
