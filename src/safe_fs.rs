//! Filesystem access that never follows a symlink verbatim did not create.
//!
//! A repository, a store directory or a host root may contain symlinks put
//! there by someone else: `.verbatim/build/assets -> /home/me`, a store
//! object linked to `/dev/zero`, a fifo. Everything verbatim writes (build
//! output, the local store, releases) goes through here: directories are
//! created one component at a time below a trusted anchor, each existing
//! component must be a real directory (not a link to one), and files are
//! opened with `O_NOFOLLOW | O_NONBLOCK` and refused unless they are regular.
//! Errors name the offending path and say what to do; [`denied_hint`]
//! says whose a path is when a permission was refused on it.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

const DIR: &str = "directory";
const FILE: &str = "regular file";

/// Why a path was refused: it is a symlink, or not a directory / regular file.
fn refused(path: &Path, verb: &str, kind: &str) -> io::Error {
    let detail = match fs::read_link(path) {
        Ok(target) => format!(
            "{} is a symlink (to {}); verbatim never {verb} through a symlink it did not create: remove the link",
            path.display(),
            target.display()
        ),
        Err(_) => format!("{} is not a {kind}; remove or rename it", path.display()),
    };
    io::Error::new(io::ErrorKind::InvalidInput, detail)
}

/// The plain components of `rel`; anything else (`..`, absolute) is refused.
fn plain(rel: &Path) -> io::Result<Vec<&std::ffi::OsStr>> {
    rel.components()
        .filter(|c| !matches!(c, Component::CurDir))
        .map(|c| match c {
            Component::Normal(n) => Ok(n),
            _ => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{}: expected a relative path without `..`", rel.display()),
            )),
        })
        .collect()
}

/// `anchor/rel`, creating each missing directory of `rel` one at a time.
/// `anchor` is trusted as it is; every component of `rel` must be a real
/// directory (a symlink to one is refused).
pub fn create_dirs(anchor: &Path, rel: &Path) -> io::Result<PathBuf> {
    create_dirs_impl(anchor, rel, None)
}

/// Like [`create_dirs`], giving the directories it creates `mode` whatever
/// the umask (a store others must read).
pub fn create_dirs_with_mode(anchor: &Path, rel: &Path, mode: u32) -> io::Result<PathBuf> {
    create_dirs_impl(anchor, rel, Some(mode))
}

fn create_dirs_impl(anchor: &Path, rel: &Path, mode: Option<u32>) -> io::Result<PathBuf> {
    let mut path = anchor.to_owned();
    for part in plain(rel)? {
        path.push(part);
        match fs::symlink_metadata(&path) {
            Ok(m) if m.is_dir() => continue,
            Ok(_) => return Err(refused(&path, "writes", DIR)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        match fs::create_dir(&path) {
            Ok(()) => {
                if let Some(mode) = mode {
                    fs::set_permissions(&path, fs::Permissions::from_mode(mode))?;
                }
            }
            // Someone else created it meanwhile: judge what is there now.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                if !fs::symlink_metadata(&path)?.is_dir() {
                    return Err(refused(&path, "writes", DIR));
                }
            }
            Err(e) => {
                return Err(io::Error::new(
                    e.kind(),
                    format!("creating directory {}: {e}", path.display()),
                ))
            }
        }
    }
    Ok(path)
}

/// `anchor/rel` if every existing component of `rel` is a real directory;
/// `Ok(None)` when one is missing. Nothing is created.
pub fn existing_dirs(anchor: &Path, rel: &Path) -> io::Result<Option<PathBuf>> {
    let mut path = anchor.to_owned();
    for part in plain(rel)? {
        path.push(part);
        match fs::symlink_metadata(&path) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => return Err(refused(&path, "reads", DIR)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        }
    }
    Ok(Some(path))
}

/// Opens a regular file for reading without following a symlink and without
/// blocking on a fifo; a device, fifo, socket or link is refused.
pub fn open_regular(path: &Path) -> io::Result<File> {
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| match e.raw_os_error() {
            Some(libc::ELOOP) => refused(path, "reads", FILE),
            _ => e,
        })?;
    if !file.metadata()?.is_file() {
        return Err(refused(path, "reads", FILE));
    }
    Ok(file)
}

/// Reads a whole regular file, refusing links, fifos and devices.
pub fn read_regular(path: &Path) -> io::Result<Vec<u8>> {
    read_regular_limited(path, u64::MAX)
}

/// Like [`read_regular`], refusing a file of more than `limit` bytes
/// before reading any of it (a file that grows while it is read is cut at
/// `limit + 1` bytes and refused too).
pub fn read_regular_limited(path: &Path, limit: u64) -> io::Result<Vec<u8>> {
    let file = open_regular(path)?;
    let size = file.metadata()?.len();
    let too_large = |size: u64| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "{} holds {size} bytes, more than the {limit} such a file may have; move it away",
                path.display()
            ),
        )
    };
    if size > limit {
        return Err(too_large(size));
    }
    let mut bytes = Vec::with_capacity(size as usize);
    file.take(limit.saturating_add(1)).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Err(too_large(bytes.len() as u64));
    }
    Ok(bytes)
}

/// Opens (creating if needed) a file for writing without following a symlink
/// and without truncating it: lock files.
pub fn open_lock(path: &Path) -> io::Result<File> {
    let file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| match e.raw_os_error() {
            Some(libc::ELOOP) => refused(path, "writes", FILE),
            _ => e,
        })?;
    if !file.metadata()?.is_file() {
        return Err(refused(path, "writes", FILE));
    }
    Ok(file)
}

/// `path` with `.` removed and `dir/..` folded, lexically. Leading `..`
/// stay. Safe only where no component is a symlink, which is what this
/// module enforces.
pub fn normalize(path: &Path) -> PathBuf {
    let mut out: Vec<Component> = Vec::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => match out.last() {
                Some(Component::Normal(_)) => {
                    out.pop();
                }
                Some(Component::RootDir) => {}
                _ => out.push(c),
            },
            c => out.push(c),
        }
    }
    out.iter().collect()
}

/// What to do about a permission refused on `path` (or, when it does not
/// exist, on the nearest directory above it that does): whose it is, who
/// verbatim runs as, and the two ways out (run as its owner, or give it to
/// this user); when it is this user's own, its mode. `None` when nothing
/// on the way up exists.
pub fn denied_hint(path: &Path) -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let (at, meta) = path
        .ancestors()
        .filter(|p| !p.as_os_str().is_empty())
        .find_map(|p| fs::symlink_metadata(p).ok().map(|m| (p, m)))?;
    // SAFETY: geteuid has no preconditions and cannot fail.
    let me = unsafe { libc::geteuid() };
    let dir = if meta.is_dir() {
        at
    } else {
        at.parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(at)
    };
    let (at, dir) = (normalize(at), normalize(dir));
    let shown = at.display();
    if meta.uid() == me {
        return Some(format!(
            "{shown} is {}'s own (mode {:o}), but that mode (or a read-only file system) keeps verbatim out: \
             `chmod u+rwX {shown}`, or check how it is mounted",
            user_name(me),
            meta.mode() & 0o7777
        ));
    }
    let (owner, user) = (user_name(meta.uid()), user_name(me));
    Some(format!(
        "{shown} belongs to {owner} (uid {}), and verbatim runs as {user} (uid {me}): \
         run it as {owner} (`sudo -u {owner} verbatim …`), or give {user} the directory \
         (`sudo chown -R {user} {}`)",
        meta.uid(),
        dir.display()
    ))
}

/// The name of user `uid` (`getpwuid_r`), else the number.
fn user_name(uid: libc::uid_t) -> String {
    let mut buf = vec![0 as libc::c_char; 4096];
    // SAFETY: a zeroed passwd is a valid out-parameter for getpwuid_r.
    let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
    let mut found: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: pwd, buf (with its length) and found are valid for writes for
    // the call; the strings it fills in point into buf.
    let r = unsafe { libc::getpwuid_r(uid, &mut pwd, buf.as_mut_ptr(), buf.len(), &mut found) };
    if r != 0 || found.is_null() || pwd.pw_name.is_null() {
        return uid.to_string();
    }
    // SAFETY: on success pw_name is a NUL-terminated string inside buf,
    // which outlives this borrow.
    unsafe { std::ffi::CStr::from_ptr(pwd.pw_name) }
        .to_string_lossy()
        .into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize_folds_lexically() {
        for (input, want) in [
            ("../sub/../store", "../store"),
            ("./a/./b", "a/b"),
            ("a/../..", ".."),
            ("/x/../../y", "/y"),
            (".verbatim/store", ".verbatim/store"),
        ] {
            assert_eq!(normalize(Path::new(input)), Path::new(want), "{input}");
        }
    }

    #[test]
    fn create_dirs_refuses_links_and_files() {
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::os::unix::fs::symlink(outside.path(), d.join("link")).unwrap();
        fs::write(d.join("file"), b"x").unwrap();
        let e = create_dirs(d, Path::new("link/x")).unwrap_err();
        assert!(e.to_string().contains("is a symlink"), "{e}");
        let e = create_dirs(d, Path::new("file/x")).unwrap_err();
        assert!(e.to_string().contains("not a directory"), "{e}");
        assert!(create_dirs(d, Path::new("../x")).is_err());
        assert_eq!(
            create_dirs(d, Path::new("a/b")).unwrap(),
            d.join("a/b"),
            "missing directories are created"
        );
        assert!(fs::read_dir(outside.path()).unwrap().next().is_none());
        assert_eq!(existing_dirs(d, Path::new("a/zz")).unwrap(), None);
        assert!(existing_dirs(d, Path::new("link")).is_err());
    }

    #[test]
    fn open_regular_refuses_links_and_fifos() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        fs::write(d.join("f"), b"x").unwrap();
        std::os::unix::fs::symlink(d.join("f"), d.join("l")).unwrap();
        assert!(open_regular(&d.join("f")).is_ok());
        assert!(open_regular(&d.join("l"))
            .unwrap_err()
            .to_string()
            .contains("symlink"));
        assert!(open_regular(Path::new("/dev/null")).is_err());
        assert!(open_regular(d).is_err(), "a directory");
        assert_eq!(read_regular_limited(&d.join("f"), 1).unwrap(), b"x");
        let e = read_regular_limited(&d.join("f"), 0).unwrap_err();
        assert!(e.to_string().contains("holds 1 bytes"), "{e}");
        let fifo = d.join("fifo");
        let c = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
        let e = read_regular_limited(&fifo, 10).unwrap_err();
        assert!(e.to_string().contains("not a regular file"), "{e}");
    }
}
