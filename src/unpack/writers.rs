//! The writer threads of an unpack. Creating a file costs the kernel far
//! more than writing a few KiB into it (0.3–1 ms a file on a large ext4),
//! so directories and small files are created on every core at once, each
//! file written and hashed in one pass. Directories need no order: a file
//! makes its parent directory if no entry did yet.

use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::PathBuf;
use std::sync::{mpsc, Arc, Mutex};
use std::thread;

use super::{entry_error, refused, Entry, EntryKind, UnpackError};
use crate::digest::HashingWriter;

/// Files up to this size are read whole and handed to a writer thread;
/// larger ones are streamed to disk by the reading thread.
pub(super) const SMALL_FILE: u64 = 1 << 20;

/// Jobs waiting for a writer: at most this many small files are held.
const QUEUE: usize = 8;

/// Where an entry goes.
pub(super) struct Target {
    /// Its path under the destination.
    pub path: PathBuf,
    /// Its name as the archive gives it, for errors.
    pub name: String,
    /// Its place among the archive's files and directories.
    pub index: u64,
}

/// A regular file to create.
pub(super) struct File {
    /// `/`-separated, relative to the release.
    pub rel: String,
    /// Its size as its header gives it.
    pub size: u64,
    /// Whether it is written 0755 (else 0644).
    pub exec: bool,
    /// All its bytes, for a writer thread; empty when streamed instead.
    pub bytes: Vec<u8>,
}

/// What a writer thread does with one entry.
pub(super) enum Job {
    /// A directory, and its relative path.
    Dir(Target, String),
    /// A small file with its bytes.
    File(Target, File),
}

type Done = (u64, Result<Entry, UnpackError>);

/// A pool of writer threads, stopped and joined on drop.
pub(super) struct Writers {
    jobs: Option<mpsc::SyncSender<Job>>,
    done: mpsc::Receiver<Done>,
    threads: Vec<thread::JoinHandle<()>>,
    finished: Vec<(u64, Entry)>,
}

impl Writers {
    pub fn start(threads: usize) -> Self {
        let (jobs_tx, jobs_rx) = mpsc::sync_channel::<Job>(QUEUE);
        let (done_tx, done_rx) = mpsc::channel();
        let jobs_rx = Arc::new(Mutex::new(jobs_rx));
        let threads = (0..threads.max(1))
            .map(|_| {
                let (jobs, done) = (jobs_rx.clone(), done_tx.clone());
                thread::spawn(move || {
                    let mut creator = Creator::new();
                    loop {
                        let job = match jobs.lock() {
                            Ok(rx) => rx.recv(),
                            Err(_) => return,
                        };
                        let Ok(job) = job else { return };
                        if done.send(creator.run(job)).is_err() {
                            return;
                        }
                    }
                })
            })
            .collect();
        Writers {
            jobs: Some(jobs_tx),
            done: done_rx,
            threads,
            finished: Vec::new(),
        }
    }

    /// Hands `job` to a writer, first returning the error of any job
    /// that already failed.
    pub fn send(&mut self, job: Job) -> Result<(), UnpackError> {
        while let Ok((index, done)) = self.done.try_recv() {
            self.finished.push((index, done?));
        }
        match self.jobs.as_ref().map(|tx| tx.send(job)) {
            Some(Ok(())) => Ok(()),
            _ => Err(io::Error::other("the unpack's writer threads stopped").into()),
        }
    }

    /// Records an entry made on the reading thread.
    pub fn record(
        &mut self,
        index: u64,
        done: Result<Entry, UnpackError>,
    ) -> Result<(), UnpackError> {
        self.finished.push((index, done?));
        Ok(())
    }

    /// Waits for every job; returns the entries in archive order, or the
    /// error of the first entry that failed.
    pub fn finish(mut self) -> Result<Vec<Entry>, UnpackError> {
        self.stop();
        let mut failed: Option<(u64, UnpackError)> = None;
        while let Ok((index, done)) = self.done.try_recv() {
            match done {
                Ok(entry) => self.finished.push((index, entry)),
                Err(e) if failed.as_ref().is_none_or(|(first, _)| index < *first) => {
                    failed = Some((index, e));
                }
                Err(_) => {}
            }
        }
        if let Some((_, e)) = failed {
            return Err(e);
        }
        let mut finished = std::mem::take(&mut self.finished);
        finished.sort_unstable_by_key(|(index, _)| *index);
        Ok(finished.into_iter().map(|(_, entry)| entry).collect())
    }

    /// Lets the writers finish the jobs queued, and joins them.
    fn stop(&mut self) {
        self.jobs = None;
        for t in self.threads.drain(..) {
            if let Err(panic) = t.join() {
                std::panic::resume_unwind(panic);
            }
        }
    }
}

impl Drop for Writers {
    fn drop(&mut self) {
        // After an error, nothing may still be writing into the directory
        // the caller is about to remove.
        self.jobs = None;
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// Creates entries, remembering the last directory it made.
pub(super) struct Creator {
    made: PathBuf,
    /// The process's umask, when known: a mode it would not change needs
    /// no `fchmod` after the file is created.
    umask: Option<u32>,
}

impl Creator {
    pub fn new() -> Self {
        Creator {
            made: PathBuf::new(),
            umask: umask(),
        }
    }

    fn run(&mut self, job: Job) -> Done {
        match job {
            Job::Dir(target, rel) => {
                let made = fs::create_dir_all(&target.path)
                    .map_err(|e| entry_error(&target.name, "creating the directory", e));
                self.made = target.path;
                (
                    target.index,
                    made.map(|()| Entry {
                        path: rel,
                        kind: EntryKind::Dir,
                    }),
                )
            }
            Job::File(target, mut file) => {
                let bytes = std::mem::take(&mut file.bytes);
                let done = self.file(&target, file, |w| w.write_all(&bytes));
                (target.index, done)
            }
        }
    }

    /// Creates `file` at `target`, never over an existing one, `fill`
    /// writing its bytes, which are hashed on their way; returns its entry.
    pub fn file(
        &mut self,
        target: &Target,
        file: File,
        fill: impl FnOnce(&mut HashingWriter<&mut fs::File>) -> io::Result<()>,
    ) -> Result<Entry, UnpackError> {
        let at = |op| move |source| entry_error(&target.name, op, source);
        if let Some(parent) = target.path.parent().filter(|p| *p != self.made) {
            fs::create_dir_all(parent).map_err(at("creating its directory"))?;
            self.made = parent.to_owned();
        }
        let mode = if file.exec { 0o755 } else { 0o644 };
        let mut f = fs::File::options()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&target.path)
            .map_err(|e| match e.kind() {
                io::ErrorKind::AlreadyExists => refused(&target.name, "duplicate entry"),
                _ => at("creating the file")(e),
            })?;
        let mut w = HashingWriter::new(&mut f);
        fill(&mut w).map_err(at("writing"))?;
        let (_, sha256, written) = w.finish();
        if written != file.size {
            return Err(refused(
                &target.name,
                format!("holds {written} bytes, its header says {}", file.size),
            ));
        }
        if self.umask.is_none_or(|umask| mode & umask != 0) {
            f.set_permissions(fs::Permissions::from_mode(mode))
                .map_err(at("setting its mode"))?;
        }
        Ok(Entry {
            path: file.rel,
            kind: EntryKind::File {
                sha256: sha256.hex(),
                size: file.size,
                exec: file.exec,
            },
        })
    }
}

/// The umask, read from `/proc/self/status`: `umask(2)` can only read it
/// by setting it, which other threads would see for a moment.
fn umask() -> Option<u32> {
    let status = fs::read_to_string("/proc/self/status").ok()?;
    let value = status.lines().find_map(|l| l.strip_prefix("Umask:"))?;
    u32::from_str_radix(value.trim(), 8).ok()
}
