//! The walk of a tree to pack: what [`scan`] keeps and leaves out, and
//! the rule for its symlinks.

use std::fs;
use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};

use globset::{Glob, GlobSet, GlobSetBuilder};
use ignore::gitignore::{Gitignore, GitignoreBuilder};

use super::{io_err, Entry, EntryKind, PackError, Stamp};

/// Which paths [`scan`] leaves out.
pub struct Filter {
    globs: GlobSet,
    /// The device and inode of each directory never packed: compared with
    /// what the walk's `lstat` gives, no path is resolved per directory.
    skip_dirs: Vec<(u64, u64)>,
    /// Leave out [`DEFAULT_EXCLUDES`] (`app.default_excludes`).
    pub default_excludes: bool,
    /// Honour `.gitignore` and `.ignore` files (`app.respect_gitignore`).
    pub ignore_files: bool,
}

/// Names left out wherever they appear, unless `app.default_excludes =
/// false`: version control, verbatim's own directory, OS litter, caches.
pub const DEFAULT_EXCLUDES: &[&str] = &[
    ".git",
    ".hg",
    ".svn",
    ".verbatim",
    ".DS_Store",
    "__pycache__",
    "node_modules",
];

/// The ignore files honoured, in each directory of the tree (and of its
/// ancestors up to the git repository's root).
const IGNORE_FILES: [&str; 2] = [".gitignore", ".ignore"];

impl Filter {
    /// `globs` match `/`-separated paths relative to the app dir (`**/__pycache__`);
    /// `skip_dirs` are directories never packed (the store and build output).
    /// Default excludes and ignore files are off; set the fields to use them.
    pub fn new(globs: &[String], skip_dirs: Vec<PathBuf>) -> Result<Filter, PackError> {
        let globs = glob_set(globs).map_err(|e| PackError::BadGlob {
            glob: e.glob,
            message: e.message,
        })?;
        let skip_dirs = skip_dirs
            .into_iter()
            .filter_map(|d| fs::metadata(d).ok())
            .map(|m| (m.dev(), m.ino()))
            .collect();
        Ok(Filter {
            globs,
            skip_dirs,
            default_excludes: false,
            ignore_files: false,
        })
    }
}

/// The ignore files of `dir` (absolute), as one matcher rooted there.
fn ignore_matcher(dir: &Path) -> Result<Option<Gitignore>, PackError> {
    let present: Vec<PathBuf> = IGNORE_FILES
        .iter()
        .map(|f| dir.join(f))
        .filter(|p| p.is_file())
        .collect();
    if present.is_empty() {
        return Ok(None);
    }
    let mut b = GitignoreBuilder::new(dir);
    for p in &present {
        if let Some(e) = b.add(p) {
            return Err(PackError::BadIgnoreFile {
                path: p.clone(),
                message: e.to_string(),
            });
        }
    }
    b.build().map(Some).map_err(|e| PackError::BadIgnoreFile {
        path: present[0].clone(),
        message: e.to_string(),
    })
}

/// The matchers of the ancestors of `root` (canonical) up to the git
/// repository's root, outermost first; none outside a repository.
fn ancestor_matchers(root: &Path) -> Result<Vec<Gitignore>, PackError> {
    let Some(repo) = root.ancestors().find(|d| d.join(".git").exists()) else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for dir in root.ancestors().skip(1) {
        if !dir.starts_with(repo) {
            break;
        }
        out.extend(ignore_matcher(dir)?);
    }
    out.reverse();
    Ok(out)
}

/// Why the ignore files leave `root/rel` out, if they do: the deepest
/// matcher with an opinion decides (a `!pattern` there keeps it).
fn ignored_by(matchers: &[Gitignore], root: &Path, rel: &str, is_dir: bool) -> Option<String> {
    if matchers.is_empty() {
        return None;
    }
    let path = root.join(rel);
    for m in matchers.iter().rev() {
        match m.matched(&path, is_dir) {
            ignore::Match::Ignore(glob) => {
                return Some(format!(
                    "{} ({})",
                    glob.from().map_or_else(
                        || m.path().display().to_string(),
                        |f| f.display().to_string()
                    ),
                    glob.original()
                ))
            }
            ignore::Match::Whitelist(_) => return None,
            ignore::Match::None => {}
        }
    }
    None
}

/// A glob the project's glob dialect cannot compile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GlobError {
    /// The pattern (all of them when only the set as a whole failed).
    pub glob: String,
    /// What globset said is wrong with it.
    pub message: String,
}

/// The one glob dialect of the configuration (`app.exclude`,
/// `assets.allow_missing`): globset's defaults, so `*` and `?` also match
/// `/`, `**` any number of directories, `{a,b}` either and `[ab]` a class.
/// Matching is linear in the name (no backtracking).
pub fn glob_set(patterns: &[String]) -> Result<GlobSet, GlobError> {
    let mut b = GlobSetBuilder::new();
    for g in patterns {
        let glob = Glob::new(g).map_err(|e| GlobError {
            glob: g.clone(),
            message: e.kind().to_string(),
        })?;
        b.add(glob);
    }
    b.build().map_err(|e| GlobError {
        glob: patterns.join(", "),
        message: e.to_string(),
    })
}

/// Walks `root` and returns its entries sorted bytewise by path.
pub fn scan(root: &Path, filter: &Filter) -> Result<Vec<Entry>, PackError> {
    scan_explained(root, filter, &mut |_, _| {})
}

/// Why [`scan_explained`] left a path out; its `Display` says so in words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Excluded<'a> {
    /// A glob of `app.exclude`.
    Glob,
    /// A default exclude (`.git`, `node_modules`, …).
    Default,
    /// A line of an ignore file (`.gitignore`, `.ignore`): `by` names the
    /// file and the line; `dir` says whether the path is a directory.
    Ignored {
        /// `path/to/.gitignore (dist/)`.
        by: &'a str,
        /// Whether the path left out is a directory.
        dir: bool,
    },
    /// verbatim's own build output or local store.
    Own,
}

impl std::fmt::Display for Excluded<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Excluded::Glob => f.write_str("app.exclude"),
            Excluded::Default => f.write_str("a default exclude (app.default_excludes)"),
            Excluded::Ignored { by, .. } => write!(f, "ignored by {by}"),
            Excluded::Own => f.write_str("verbatim's own output or store"),
        }
    }
}

/// [`scan`], telling `excluded` every path left out and why, in path
/// order.
///
/// Directories are listed on every core at once (a warm build's check is
/// this walk and nothing else); the entries are sorted at the end, so the
/// result does not depend on the order they were found in.
pub fn scan_explained(
    root: &Path,
    filter: &Filter,
    excluded: &mut dyn FnMut(&str, Excluded<'_>),
) -> Result<Vec<Entry>, PackError> {
    let meta = fs::metadata(root).map_err(|_| PackError::MissingRoot(root.to_owned()))?;
    if !meta.is_dir() {
        return Err(PackError::MissingRoot(root.to_owned()));
    }
    let canonical_root = fs::canonicalize(root).map_err(io_err(root))?;
    let outer = if filter.ignore_files {
        ancestor_matchers(&canonical_root)?
    } else {
        Vec::new()
    };
    let queue = Queue {
        state: Mutex::new(Waiting {
            dirs: vec![Dir {
                path: root.to_owned(),
                rel: String::new(),
                matchers: Arc::new(outer),
            }],
            listing: 0,
            failed: false,
        }),
        changed: Condvar::new(),
    };
    let walker = || -> Result<(Vec<Entry>, Vec<Left>), PackError> {
        let (mut entries, mut left) = (Vec::new(), Vec::new());
        while let Some(dir) = queue.next() {
            let mut found = Vec::new();
            let listed = list(
                &dir,
                filter,
                &canonical_root,
                &mut entries,
                &mut left,
                &mut found,
            );
            queue.done(found, listed.is_err());
            listed?;
        }
        Ok((entries, left))
    };
    let walked: Vec<_> = std::thread::scope(|s| {
        let walkers: Vec<_> = (0..crate::par::threads())
            .map(|_| s.spawn(walker))
            .collect();
        walkers
            .into_iter()
            .map(|w| w.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
            .collect()
    });
    let (mut entries, mut left) = (Vec::new(), Vec::new());
    for w in walked {
        let (e, l) = w?;
        entries.extend(e);
        left.extend(l);
    }
    left.sort_by(|a, b| a.rel.as_bytes().cmp(b.rel.as_bytes()));
    for l in &left {
        excluded(&l.rel, l.why.as_excluded());
    }
    entries.sort_by(|a, b| a.path.as_bytes().cmp(b.path.as_bytes()));
    Ok(entries)
}

/// A directory for the walk to list, with the ignore matchers in force
/// there.
struct Dir {
    path: PathBuf,
    rel: String,
    matchers: Arc<Vec<Gitignore>>,
}

/// A path left out, and why, as a walker found it.
struct Left {
    rel: String,
    why: Why,
}

/// [`Excluded`], owned.
enum Why {
    Glob,
    Default,
    Ignored { by: String, dir: bool },
    Own,
}

impl Why {
    fn as_excluded(&self) -> Excluded<'_> {
        match self {
            Why::Glob => Excluded::Glob,
            Why::Default => Excluded::Default,
            Why::Ignored { by, dir } => Excluded::Ignored { by, dir: *dir },
            Why::Own => Excluded::Own,
        }
    }
}

/// The directories waiting to be listed, shared by the walkers.
struct Queue {
    state: Mutex<Waiting>,
    changed: Condvar,
}

struct Waiting {
    dirs: Vec<Dir>,
    /// Directories taken and not yet listed: while there are any, more may
    /// come.
    listing: usize,
    failed: bool,
}

impl Queue {
    fn lock(&self) -> std::sync::MutexGuard<'_, Waiting> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The next directory to list; `None` once all are listed or one failed.
    fn next(&self) -> Option<Dir> {
        let mut w = self.lock();
        loop {
            if w.failed {
                return None;
            }
            if let Some(dir) = w.dirs.pop() {
                w.listing += 1;
                return Some(dir);
            }
            if w.listing == 0 {
                return None;
            }
            w = self.changed.wait(w).unwrap_or_else(|e| e.into_inner());
        }
    }

    /// A directory listed: the directories `found` in it wait their turn.
    fn done(&self, found: Vec<Dir>, failed: bool) {
        let mut w = self.lock();
        w.listing -= 1;
        // A walker waits only for more directories or for the end: most
        // directories found none, and a wake-up is a syscall.
        let wake = !found.is_empty() || failed || w.listing == 0;
        w.dirs.extend(found);
        w.failed |= failed;
        if wake {
            self.changed.notify_all();
        }
    }
}

/// Lists `dir`: its entries go to `entries`, what is left out to `left`,
/// its subdirectories to `found`.
fn list(
    dir: &Dir,
    filter: &Filter,
    canonical_root: &Path,
    entries: &mut Vec<Entry>,
    left: &mut Vec<Left>,
    found: &mut Vec<Dir>,
) -> Result<(), PackError> {
    let dirents = fs::read_dir(&dir.path)
        .and_then(|d| d.collect::<Result<Vec<_>, _>>())
        .map_err(io_err(&dir.path))?;
    // Ignore files are looked for in the listing: most directories have
    // none, and asking for each would cost two lookups apiece.
    let has_ignore_file = || {
        dirents
            .iter()
            .any(|d| IGNORE_FILES.iter().any(|f| d.file_name() == *f))
    };
    let mut matchers = dir.matchers.clone();
    if filter.ignore_files && has_ignore_file() {
        if let Some(m) = ignore_matcher(&canonical_root.join(&dir.rel))? {
            let mut v = (*matchers).clone();
            v.push(m);
            matchers = Arc::new(v);
        }
    }
    for dirent in dirents {
        let path = dirent.path();
        let name = dirent
            .file_name()
            .into_string()
            .map_err(|_| PackError::NonUtf8(path.clone()))?;
        let rel = if dir.rel.is_empty() {
            name
        } else {
            format!("{}/{name}", dir.rel)
        };
        let mut leave = |why| {
            left.push(Left {
                rel: rel.clone(),
                why,
            })
        };
        if filter.globs.is_match(&rel) {
            leave(Why::Glob);
            continue;
        }
        if filter.default_excludes
            && DEFAULT_EXCLUDES.contains(&rel.rsplit('/').next().unwrap_or(""))
        {
            leave(Why::Default);
            continue;
        }
        // An lstat relative to the open directory (`statx(dirfd, name)`):
        // the kernel does not walk the path from the root again.
        let meta = dirent.metadata().map_err(io_err(&path))?;
        let ft = meta.file_type();
        if let Some(by) = ignored_by(&matchers, canonical_root, &rel, ft.is_dir()) {
            leave(Why::Ignored {
                by,
                dir: ft.is_dir(),
            });
            continue;
        }
        let kind = if ft.is_dir() {
            if filter.skip_dirs.contains(&(meta.dev(), meta.ino())) {
                leave(Why::Own);
                continue;
            }
            found.push(Dir {
                path,
                rel: rel.clone(),
                matchers: matchers.clone(),
            });
            EntryKind::Dir
        } else if ft.is_file() {
            EntryKind::File {
                size: meta.len(),
                executable: meta.permissions().mode() & 0o100 != 0,
                stamp: Stamp::of(&meta),
            }
        } else if ft.is_symlink() {
            let target = check_link(&path, canonical_root)?;
            EntryKind::Symlink { target }
        } else {
            let what = if ft.is_fifo() {
                "a fifo"
            } else if ft.is_socket() {
                "a socket"
            } else if ft.is_block_device() {
                "a block device"
            } else if ft.is_char_device() {
                "a character device"
            } else {
                "a special file"
            };
            return Err(PackError::Unsupported { path, what });
        };
        entries.push(Entry { path: rel, kind });
    }
    Ok(())
}

/// The rule for a symlink in a tree we publish (the app, and the assets
/// directory): it is kept only if its target is relative and stays inside
/// the tree both lexically and fully resolved; a dangling link is refused.
/// Returns the target. `canonical_root` is the tree's canonical path.
pub fn check_link(path: &Path, canonical_root: &Path) -> Result<String, PackError> {
    let target = fs::read_link(path).map_err(io_err(path))?;
    let text = target
        .to_str()
        .ok_or_else(|| PackError::NonUtf8(path.to_owned()))?
        .to_owned();
    let escaping = || PackError::EscapingLink {
        path: path.to_owned(),
        target: text.clone(),
    };
    if target.is_absolute() {
        return Err(escaping());
    }
    // Lexically first (a link to `../../x` escapes even if `x` does not exist),
    // then for real (`self/../x`, where `self -> .`, escapes only when resolved).
    let link_dir = path.parent().unwrap_or(Path::new(""));
    let rel_dir = fs::canonicalize(link_dir)
        .ok()
        .and_then(|d| d.strip_prefix(canonical_root).ok().map(Path::to_owned))
        .unwrap_or_default();
    let mut depth = rel_dir.components().count() as i64;
    for c in target.components() {
        match c {
            Component::ParentDir => depth -= 1,
            Component::Normal(_) => depth += 1,
            _ => {}
        }
        if depth < 0 {
            return Err(escaping());
        }
    }
    match fs::canonicalize(path) {
        Ok(resolved) if resolved.starts_with(canonical_root) => Ok(text),
        Ok(_) => Err(escaping()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Err(PackError::DanglingLink {
            path: path.to_owned(),
            target: text,
        }),
        Err(e) => Err(PackError::Io {
            path: path.to_owned(),
            source: e,
        }),
    }
}
