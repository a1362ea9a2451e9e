//! The I/O edge of asset fingerprinting, shared by `build` and `publish`.
//!
//! `build` reads the assets directory into memory, hands it to the pure
//! [`crate::assets::fingerprint`], and writes what comes back into
//! `.verbatim/build/assets.tar` (one member per final name) plus the
//! manifest's `assets` map.
//! `publish` asks [`upload_waves`] for a leaves-first order, so that an asset
//! is stored only after everything it references.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs;
use std::io::Read as _;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use crate::assets::graph::Opaque;
use crate::assets::keep::{KeepRules, ViteOutput};
use crate::assets::{self, url::UrlOptions, Input};
use crate::config::{Config, ConfigError};
use crate::manifest::Asset;
use crate::pack::{self, PackError};
use crate::progress::{Level, Progress};
use crate::safe_fs;
use crate::text::Lines;

/// The key prefix of fingerprinted assets in the store.
pub const ASSETS_DIR: &str = "assets";
/// The build's fingerprinted assets, in one tar: see [`write()`].
pub const PACK_FILE: &str = "assets.tar";
/// Temp files of [`write()`] in the build directory.
pub const PACK_TEMP_PREFIX: &str = ".assets-";
/// Every asset is immutable under its hashed name: cache it for a year.
pub const CACHE_CONTROL: &str = "public, max-age=31536000, immutable";
/// Problems listed when fingerprinting fails; the rest are counted, so a
/// tree with a million broken references does not print a million lines.
const MAX_LISTED: usize = 200;

/// The assets directory fingerprinted: what [`write()`] packs.
pub struct Fingerprinted {
    /// The assets directory, where the opaque files are read again.
    dir: PathBuf,
    /// The files the scanners read, and the others' digests.
    input: Input,
    /// Every file's final name, digest and edits, and each hashed directory's
    /// name.
    pub output: assets::Output,
    /// What the build says about the tree (a Vite manifest found, the
    /// fingerprint's warnings): for the caller to report.
    pub notes: Vec<(Level, String)>,
}

/// One entry file with its final bytes, as the manifest records it.
pub struct EntryFile {
    /// Its path, in the assets directory and from the site's root.
    pub path: String,
    /// Its final bytes.
    pub bytes: Vec<u8>,
    /// Its manifest record.
    pub entry: crate::manifest::Entry,
}

/// The entry files of `f` with their final bytes (few and small: pages, a
/// service worker, fragments). A file read again from the tree must hold
/// the bytes it was fingerprinted with.
pub fn entry_files(f: &Fingerprinted) -> Result<Vec<EntryFile>> {
    let mut out = Vec::new();
    for (path, file) in f.output.files.iter().filter(|(_, o)| o.entry) {
        let bytes = match f.output.bytes(&f.input, path) {
            Some(b) => b.into_owned(),
            None => {
                let source = f.dir.join(path);
                let bytes = safe_fs::read_regular(&source)
                    .with_context(|| format!("reading entry file {}", source.display()))?;
                if crate::digest::Digest::of(&bytes) != file.sha256 {
                    bail!(
                        "entry file {} changed during the build; build again once nothing writes to it",
                        source.display()
                    );
                }
                bytes
            }
        };
        let entry = crate::manifest::Entry {
            content_type: assets::mime::content_type(path).to_owned(),
            integrity: assets::sri::integrity(&bytes),
            references: file.references.clone(),
            sha256: file.sha256.hex(),
            size: bytes.len() as u64,
        };
        out.push(EntryFile {
            path: path.clone(),
            bytes,
            entry,
        });
    }
    Ok(out)
}

/// Fingerprints `cfg.assets_dir` in memory (files no scanner reads only by
/// their digests). Every problem in the tree is reported in one error;
/// nothing is written.
pub fn fingerprint(cfg: &Config, dir: &Path) -> Result<Fingerprinted> {
    let globs = |key: &str, patterns: &[String]| {
        pack::glob_set(patterns).map_err(|e| {
            ConfigError::new(format!(
                "invalid glob `{}` in `assets.{key}` ({}): {}",
                e.glob,
                cfg.config_path.display(),
                e.message
            ))
        })
    };
    let allow_missing = globs("allow_missing", &cfg.allow_missing)?;
    let keep_names = globs("keep_names", &cfg.keep_names)?;
    let exclude = globs("exclude", &cfg.assets_exclude)?;
    let (mut files, opaque) = read_tree(dir, &exclude)?;
    let mut notes = Vec::new();
    let vite_manifest = match &cfg.vite_manifest {
        Some(m) => Some(m.clone()),
        None => detect_vite(cfg, dir, &mut notes)?,
    };
    let vite = match &vite_manifest {
        Some(m) => Some(vite_output(m, dir, &|p| {
            files.contains_key(p) || opaque.contains_key(p)
        })?),
        None => None,
    };
    let hash_dirs = hash_dirs(cfg, dir)?;
    if !hash_dirs.is_empty() {
        let all = files.keys().chain(opaque.keys()).map(String::as_str);
        let module = assets::dirs::module(&hash_dirs, all);
        if files.contains_key(assets::dirs::MODULE) || opaque.contains_key(assets::dirs::MODULE) {
            bail!(
                "{} is in the assets directory, but with `assets.hash_dirs` set verbatim \
                 makes that file (each hashed directory's URL); rename yours",
                dir.join(assets::dirs::MODULE).display()
            );
        }
        files.insert(assets::dirs::MODULE.to_owned(), module.into_bytes());
    }
    let paths = files.keys().chain(opaque.keys()).map(String::as_str);
    let entries = site_entries(cfg, paths.clone(), vite.as_ref(), &mut notes)?;
    let rules = KeepRules {
        globs: keep_names,
        vite,
    };
    let keep: BTreeSet<String> = assets::keep::kept(paths, &rules)
        .into_iter()
        .filter(|p| !entries.contains(p))
        .collect();
    let input = Input {
        entries,
        site: cfg.site.is_some(),
        files,
        opaque,
        url: UrlOptions {
            public_prefix: cfg.public_prefix.clone(),
            cdn_base: cfg.cdn_base.clone(),
        },
        allow_missing,
        keep,
        hash_dirs,
        ..Input::default()
    };
    let output = assets::fingerprint(&input).map_err(|errors| {
        let head = format!(
            "{} problem{} in the assets under {}; fix them (or list deliberate misses in `assets.allow_missing`):",
            errors.len(),
            if errors.len() == 1 { "" } else { "s" },
            dir.display()
        );
        let mut items = Vec::new();
        for e in errors.iter().take(MAX_LISTED) {
            let file = dir.join(&e.file);
            items.push(format!(
                "{}:{}:{}: {} (reference {:?})",
                file.display(),
                e.line,
                e.column,
                e.message,
                e.reference
            ));
        }
        if errors.len() > MAX_LISTED {
            items.push(format!("… and {} more", errors.len() - MAX_LISTED));
        }
        anyhow::Error::new(Lines { head, items })
    })?;
    for w in &output.warnings {
        let at = match w.line {
            0 => dir.join(&w.file).display().to_string(),
            _ => format!("{}:{}:{}", dir.join(&w.file).display(), w.line, w.column),
        };
        notes.push((Level::Warn, format!("{at}: {}", w.message)));
    }
    Ok(Fingerprinted {
        dir: dir.to_owned(),
        input,
        output,
        notes,
    })
}

/// The Vite manifest of the assets directory `dir` when `assets.vite_manifest`
/// is unset: `dir/.vite/manifest.json`, or `dir/<sub>/.vite/manifest.json`
/// for one directory `<sub>` (Vite 5 and later write it there). Found, it
/// is used (said in `notes`): without it every file Vite named would be
/// renamed again, and its chunks, which name each other by Vite's names,
/// would fail in the browser. Two found are an error that asks which.
fn detect_vite(
    cfg: &Config,
    dir: &Path,
    notes: &mut Vec<(Level, String)>,
) -> Result<Option<PathBuf>> {
    let mut found = Vec::new();
    let at = |d: &Path| d.join(".vite").join("manifest.json");
    if at(dir).is_file() {
        found.push(at(dir));
    }
    if let Ok(subs) = fs::read_dir(dir) {
        for sub in subs.flatten() {
            let is_dir = sub.file_type().is_ok_and(|t| t.is_dir());
            let name = sub.file_name();
            if is_dir && !name.to_string_lossy().starts_with('.') && at(&sub.path()).is_file() {
                found.push(at(&sub.path()));
            }
        }
    }
    found.sort();
    match &found[..] {
        [] => Ok(None),
        [one] => {
            notes.push((
                Level::Note,
                format!(
                    "using the Vite manifest {} (found in the assets directory; set \
                     `assets.vite_manifest` in {} to name it)",
                    one.display(),
                    cfg.config_path.display()
                ),
            ));
            Ok(Some(one.clone()))
        }
        many => Err(ConfigError::new(format!(
            "the assets directory {} holds {} Vite manifests ({}); name the one to use \
             with `assets.vite_manifest` in {}",
            dir.display(),
            many.len(),
            many.iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", "),
            cfg.config_path.display()
        ))
        .into()),
    }
}

/// The entry files of the tree (`[site] entries`): the files its globs
/// match, or, unset, for Vite's output its pages and, when the public
/// prefix is `/` (Vite's `base`), the copies of `public/` (the files of
/// Vite's output directory its manifest does not name, source maps aside;
/// under another prefix they stay assets under their own names, where
/// Vite's bundle names them). None without `[site]`.
fn site_entries<'a>(
    cfg: &Config,
    paths: impl Iterator<Item = &'a str>,
    vite: Option<&ViteOutput>,
    notes: &mut Vec<(Level, String)>,
) -> Result<BTreeSet<String>> {
    let Some(site) = &cfg.site else {
        return Ok(BTreeSet::new());
    };
    let is_entry: Box<dyn Fn(&str) -> bool> = match (&site.entries, vite) {
        (Some(globs), _) => {
            let set = pack::glob_set(globs).map_err(|e| {
                ConfigError::new(format!(
                    "invalid glob `{}` in `site.entries` ({}): {}",
                    e.glob,
                    cfg.config_path.display(),
                    e.message
                ))
            })?;
            Box::new(move |p: &str| set.is_match(p))
        }
        (None, Some(v)) => {
            // Vite names its public/ copies by plain URLs under its base:
            // at the site's root they are where it names them only when
            // that base is the root.
            let public_too = cfg.public_prefix.trim_end_matches('/').is_empty();
            Box::new(move |p: &str| {
                let unlisted = v.contains(p) && !v.listed.contains(p) && !p.ends_with(".map");
                let page = p.ends_with(".html") || p.ends_with(".htm");
                unlisted && (page || public_too)
            })
        }
        (None, None) => {
            return Err(ConfigError::new(format!(
                "`[site]` in {} has no `entries`, and the assets are not Vite's output (whose \
                 pages and public/ copies would be the default): list the entry files, like \
                 `entries = [\"index.html\", \"sw.js\"]`",
                cfg.config_path.display()
            ))
            .into())
        }
    };
    let entries: BTreeSet<String> = paths.filter(|p| is_entry(p)).map(String::from).collect();
    if entries.is_empty() {
        notes.push((
            Level::Warn,
            format!(
                "`[site]` in {}: no file of the assets directory is an entry file",
                cfg.config_path.display()
            ),
        ));
    }
    Ok(entries)
}

/// `assets.hash_dirs`, checked: each a plain relative path (`/`-separated
/// names, no `.`, `..` or empty ones) of a directory under the assets
/// directory `dir`, none inside another; returned without a trailing `/`.
fn hash_dirs(cfg: &Config, dir: &Path) -> Result<Vec<String>, ConfigError> {
    let bad = |d: &str, why: String| {
        ConfigError::new(format!(
            "`assets.hash_dirs` entry {d:?} in {}: {why}",
            cfg.config_path.display()
        ))
    };
    let mut out: Vec<String> = Vec::new();
    for d in &cfg.hash_dirs {
        let plain = d.trim_end_matches('/');
        if plain.is_empty()
            || plain
                .split('/')
                .any(|s| s.is_empty() || s == "." || s == ".." || s.contains('\\'))
        {
            return Err(bad(
                d,
                "write a path relative to `assets.dir`, like \"vendor/pdfjs/cmaps\" \
                 (no leading `/`, `.` or `..`)"
                    .into(),
            ));
        }
        let path = dir.join(plain);
        let is_dir = fs::symlink_metadata(&path).is_ok_and(|m| m.is_dir());
        if !is_dir {
            return Err(bad(d, format!("{} is not a directory", path.display())));
        }
        for other in &out {
            let inside = |a: &str, b: &str| a == b || a.starts_with(&format!("{b}/"));
            if inside(plain, other) || inside(other, plain) {
                return Err(bad(
                    d,
                    format!(
                        "it overlaps {other:?}; list a directory once, and none inside another"
                    ),
                ));
            }
        }
        out.push(plain.to_owned());
    }
    Ok(out)
}

/// Writes every final file into `<out>/assets.tar` ([`PACK_FILE`]; temp
/// file, then rename) and returns the manifest's `assets` map. One file
/// instead of one per asset: creating ten thousand inodes costs more than
/// all the rest of a build, many times more on an ext4 that just deleted as
/// many (a CI runner's normal day). An opaque file is read again and must
/// still hold the bytes it was fingerprinted with.
pub fn write(
    out: &Path,
    fingerprinted: Fingerprinted,
    progress: &dyn Progress,
) -> Result<BTreeMap<String, Asset>> {
    let Fingerprinted {
        dir,
        input,
        mut output,
        ..
    } = fingerprinted;
    // Entry files are not assets: the build writes them apart.
    output.files.retain(|_, f| !f.entry);
    let total: u64 = output.files.values().map(|f| f.size).sum();
    let bar = progress.bytes_bar(total, "assets");
    let path = out.join(PACK_FILE);
    let what = || format!("writing {}", path.display());
    let tmp = tempfile::Builder::new()
        .prefix(PACK_TEMP_PREFIX)
        .permissions(fs::Permissions::from_mode(0o644))
        .tempfile_in(out)
        .with_context(|| format!("creating a temp file in {}", out.display()))?;
    // Every member's place is known from the sizes alone, so the members
    // are made ready and written in parallel, a group at a time, each group
    // with one write at its offset; the padding and the archive's end are
    // the zeros of a file set to its length first.
    let mut groups: Vec<Vec<Member>> = Vec::new();
    let (mut offset, mut group_bytes) = (0, 0);
    for (logical, f) in &output.files {
        let member = Member {
            logical,
            f,
            text: input.files.get(logical).map(Vec::as_slice),
            offset,
        };
        match groups.last_mut() {
            Some(group) if group_bytes < GROUP_BYTES => group.push(member),
            _ => {
                groups.push(vec![member]);
                group_bytes = 0;
            }
        }
        let len = member_header_len(&f.name) + f.size.next_multiple_of(512);
        offset += len;
        group_bytes += len;
    }
    tmp.as_file().set_len(offset + 1024).with_context(what)?;
    let assets = crate::par::map(&groups, crate::par::threads(), |group| {
        write_group(tmp.as_file(), &path, &dir, group, &bar)
    })
    .into_iter()
    .collect::<Result<Vec<_>>>()?;
    let mut map = BTreeMap::new();
    for ((logical, f), mut asset) in output.files.into_iter().zip(assets.into_iter().flatten()) {
        asset.references = f.references;
        map.insert(logical, asset);
    }
    tmp.persist(&path).with_context(what)?;
    bar.finish();
    // Builds before the pack wrote one file per asset here.
    let legacy = out.join(ASSETS_DIR);
    match fs::symlink_metadata(&legacy) {
        Ok(m) if m.is_dir() => fs::remove_dir_all(&legacy),
        Ok(_) => fs::remove_file(&legacy),
        Err(_) => Ok(()),
    }
    .with_context(|| format!("removing {}, left by an older build", legacy.display()))?;
    Ok(map)
}

/// Bytes of the pack a group of members makes ready and writes at once:
/// small enough that the sixteen groups a thread takes at a time
/// ([`crate::par::map`]) leave the threads evenly loaded.
const GROUP_BYTES: u64 = 64 << 10;

/// One file of the assets pack, at `offset`.
struct Member<'a> {
    logical: &'a String,
    f: &'a assets::OutFile,
    /// The file's bytes in the tree, if a scanner read them.
    text: Option<&'a [u8]>,
    offset: u64,
}

/// Bytes of a member's header: one block, or with a name over 100 bytes
/// the GNU long-name entry before it (as `tar::Builder` writes them).
fn member_header_len(name: &str) -> u64 {
    match name.len() {
        ..=100 => 512,
        n => 1024 + (n as u64 + 1).next_multiple_of(512),
    }
}

/// Makes the members of `group` (consecutive in the pack) and writes them
/// with one write at the first one's offset, returning their manifest
/// entries but for their references.
fn write_group(
    pack: &fs::File,
    pack_path: &Path,
    dir: &Path,
    group: &[Member],
    bar: &crate::progress::Bar,
) -> Result<Vec<Asset>> {
    use std::os::unix::fs::FileExt as _;
    crate::signals::stopped()?;
    let (Some(first), Some(last)) = (group.first(), group.last()) else {
        return Ok(Vec::new());
    };
    let end = last.offset + member_header_len(&last.f.name) + last.f.size;
    // With room for the archive end `into_inner` adds after each header.
    let mut bytes = Vec::with_capacity((end - first.offset) as usize + 1024);
    let mut assets = Vec::with_capacity(group.len());
    for m in group {
        let start = (m.offset - first.offset) as usize;
        bytes.resize(start, 0); // the padding of the member before
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Regular);
        header.set_size(m.f.size);
        header.set_mode(0o644);
        header.set_mtime(0);
        let mut builder = tar::Builder::new(&mut bytes);
        let header_len = builder
            .append_data(&mut header, &m.f.name, std::io::empty())
            .and_then(|()| builder.into_inner())
            // Less the 1024 zeros of an archive's end `into_inner` added.
            .map(|b| b.len() - 1024 - start)
            .with_context(|| format!("writing the header of {}", m.f.name))?;
        if header_len as u64 != member_header_len(&m.f.name) {
            bail!(
                "internal error: the pack header of {} is {header_len} bytes",
                m.f.name
            );
        }
        bytes.truncate(start + header_len);
        assets.push(push_final_bytes(&mut bytes, dir, m.logical, m.f, m.text)?);
    }
    pack.write_all_at(&bytes, first.offset)
        .with_context(|| format!("writing {}", pack_path.display()))?;
    bar.inc(group.iter().map(|m| m.f.size).sum());
    Ok(assets)
}

/// Appends the final bytes of the asset at `logical` to `out` and returns
/// its manifest entry but for its references: `text` (its bytes in the
/// tree, if a scanner read them) edited, or else the file read again from
/// `dir`, which must hold the bytes it was fingerprinted with.
fn push_final_bytes(
    out: &mut Vec<u8>,
    dir: &Path,
    logical: &str,
    f: &assets::OutFile,
    text: Option<&[u8]>,
) -> Result<Asset> {
    let start = out.len();
    match text {
        Some(text) => assets::graph::apply_to(out, text, &f.edits),
        None => {
            let source = dir.join(logical);
            safe_fs::open_regular(&source)
                .and_then(|file| file.take(f.size + 1).read_to_end(out))
                .with_context(|| format!("reading asset {}", source.display()))?;
            if crate::digest::Digest::of(&out[start..]) != f.sha256 {
                bail!(
                    "asset {} changed during the build; build again once nothing writes to it",
                    source.display()
                );
            }
        }
    }
    let integrity = match &f.integrity {
        Some(known) => known.clone(),
        None => assets::sri::integrity(&out[start..]),
    };
    Ok(Asset {
        key: format!("{ASSETS_DIR}/{}", f.name),
        sha256: f.sha256.hex(),
        size: f.size,
        content_type: assets::mime::content_type(logical).to_owned(),
        cache_control: CACHE_CONTROL.to_owned(),
        integrity,
        references: Vec::new(),
    })
}

/// The build's entry files, in one tar (member names are their paths):
/// see [`write_site`].
pub const SITE_FILE: &str = "site.tar";

/// Writes `entries` into `<out>/site.tar` ([`SITE_FILE`]; temp file, then
/// rename), or removes an older build's when there are none.
pub fn write_site(out: &Path, entries: &[EntryFile]) -> Result<()> {
    let path = out.join(SITE_FILE);
    if entries.is_empty() {
        return match fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(e).with_context(|| format!("removing {}", path.display()))
            }
            _ => Ok(()),
        };
    }
    let what = || format!("writing {}", path.display());
    let tmp = tempfile::Builder::new()
        .prefix(".site-")
        .permissions(fs::Permissions::from_mode(0o644))
        .tempfile_in(out)
        .with_context(|| format!("creating a temp file in {}", out.display()))?;
    let mut builder = tar::Builder::new(std::io::BufWriter::new(tmp.as_file()));
    for e in entries {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Regular);
        header.set_size(e.bytes.len() as u64);
        header.set_mode(0o644);
        header.set_mtime(0);
        builder
            .append_data(&mut header, &e.path, &e.bytes[..])
            .with_context(what)?;
    }
    builder
        .into_inner()
        .and_then(|w| w.into_inner().map_err(|e| e.into_error()))
        .with_context(what)?;
    tmp.persist(&path).with_context(what)?;
    Ok(())
}

/// Where each file of the assets pack `<out>/assets.tar` is: its name (the
/// asset's key without `assets/`) to the offset and size of its bytes.
/// Publish reads them from there; the store checks every byte against
/// the manifest's digest, so a pack changed since the build is refused.
pub fn pack_members(out: &Path) -> Result<HashMap<String, (u64, u64)>> {
    tar_members(&out.join(PACK_FILE))
}

/// [`pack_members`] of `<out>/site.tar`: each entry file's path to the
/// offset and size of its bytes.
pub fn site_members(out: &Path) -> Result<HashMap<String, (u64, u64)>> {
    tar_members(&out.join(SITE_FILE))
}

fn tar_members(path: &Path) -> Result<HashMap<String, (u64, u64)>> {
    let path = path.to_owned();
    let what = || format!("reading the build's assets in {}", path.display());
    let file = safe_fs::open_regular(&path).with_context(|| {
        format!(
            "{} is missing or unreadable; run `verbatim build` again",
            path.display()
        )
    })?;
    let mut archive = tar::Archive::new(std::io::BufReader::new(file));
    let mut members = HashMap::new();
    for entry in archive.entries_with_seek().with_context(what)? {
        let entry = entry.with_context(what)?;
        let name = entry
            .path()
            .with_context(what)?
            .to_string_lossy()
            .into_owned();
        members.insert(name, (entry.raw_file_position(), entry.size()));
    }
    Ok(members)
}

/// The assets in upload waves: everything an asset references (outside its
/// own reference cycle) is in an earlier wave, so each wave can go up in
/// parallel once the waves before it are stored.
pub fn upload_waves(assets: &BTreeMap<String, Asset>) -> Vec<Vec<&str>> {
    let mut wave_of: BTreeMap<&str, usize> = BTreeMap::new();
    let mut waves: Vec<Vec<&str>> = Vec::new();
    for logical in upload_order(assets) {
        let refs = assets.get(logical).map_or(&[][..], |a| &a.references[..]);
        let wave = refs
            .iter()
            .filter_map(|r| wave_of.get(r.as_str()))
            .map(|w| w + 1)
            .max()
            .unwrap_or(0);
        wave_of.insert(logical, wave);
        if waves.len() <= wave {
            waves.resize_with(wave + 1, Vec::new);
        }
        waves[wave].push(logical);
    }
    waves
}

/// Logical paths ordered so that each comes after everything it references
/// (depth-first post-order; inside a reference cycle the order is arbitrary
/// but stable).
pub fn upload_order(assets: &BTreeMap<String, Asset>) -> Vec<&str> {
    let mut order = Vec::with_capacity(assets.len());
    let mut seen = BTreeSet::new();
    for root in assets.keys() {
        if !seen.insert(root.as_str()) {
            continue;
        }
        // Iterative DFS: (node, next reference index).
        let mut stack: Vec<(&str, usize)> = vec![(root.as_str(), 0)];
        while let Some((node, i)) = stack.pop() {
            let refs = assets.get(node).map_or(&[][..], |a| &a.references[..]);
            if let Some(next) = refs.get(i) {
                stack.push((node, i + 1));
                if assets.contains_key(next) && seen.insert(next.as_str()) {
                    stack.push((next.as_str(), 0));
                }
            } else {
                order.push(node);
            }
        }
    }
    order
}

/// Text files' bytes by logical path.
type Texts = BTreeMap<String, Vec<u8>>;

/// Reads every regular file under `root` (dotfiles and dot-directories are
/// skipped, and paths `exclude` matches, a directory with all below it),
/// keyed by its `/`-separated path relative to `root`: the bytes of those
/// the scanners read, the digests of the others. The files are read on one
/// thread per CPU.
fn read_tree(root: &Path, exclude: &globset::GlobSet) -> Result<(Texts, BTreeMap<String, Opaque>)> {
    let paths = list_tree(root, exclude)?;
    let contents = crate::par::map(
        &paths,
        crate::par::threads(),
        |(logical, path)| -> Result<_> {
            let bytes =
                fs::read(path).with_context(|| format!("reading asset {}", path.display()))?;
            if assets::graph::reads_text(logical) {
                return Ok((Some(bytes), None));
            }
            let digests = assets::sri::Digests::of(&bytes);
            let size = bytes.len() as u64;
            Ok((None, Some(Opaque { size, digests })))
        },
    );
    let (mut files, mut opaque) = (BTreeMap::new(), BTreeMap::new());
    for ((logical, _), content) in paths.into_iter().zip(contents) {
        match content? {
            (Some(bytes), _) => files.insert(logical, bytes).map(drop),
            (_, Some(o)) => opaque.insert(logical, o).map(drop),
            (None, None) => None,
        };
    }
    Ok((files, opaque))
}

/// Every regular file under `root` as (logical path, path). A symlink to a
/// file is published under the link's name if it obeys the app's rule
/// ([`pack::check_link`]: relative, and inside `root` both as written and
/// resolved); any other symlink, and anything but files and directories,
/// is an error.
fn list_tree(root: &Path, exclude: &globset::GlobSet) -> Result<Vec<(String, PathBuf)>> {
    let canonical_root = fs::canonicalize(root)
        .with_context(|| format!("reading the assets directory {}", root.display()))?;
    let mut files = Vec::new();
    // Each directory with its logical path (`""` or ending with `/`).
    let mut dirs = vec![(root.to_owned(), String::new())];
    while let Some((dir, prefix)) = dirs.pop() {
        let entries =
            fs::read_dir(&dir).with_context(|| format!("reading directory {}", dir.display()))?;
        for entry in entries {
            let entry = entry.with_context(|| format!("reading directory {}", dir.display()))?;
            let path = entry.path();
            let name = entry.file_name();
            let Some(name) = name.to_str() else {
                bail!(
                    "asset {} has a name that is not UTF-8; rename it (asset names become URLs)",
                    path.display()
                );
            };
            if name.starts_with('.') {
                continue;
            }
            let logical = format!("{prefix}{name}");
            if exclude.is_match(&logical) {
                continue;
            }
            // The directory entry's type saves a stat for everything but links.
            let entry_type = entry
                .file_type()
                .with_context(|| format!("reading {}", path.display()))?;
            let file_type = if entry_type.is_symlink() {
                check_link(&path, &canonical_root)?;
                fs::metadata(&path)
                    .with_context(|| format!("reading {}", path.display()))?
                    .file_type()
            } else {
                entry_type
            };
            if file_type.is_dir() {
                if entry_type.is_symlink() {
                    bail!(
                        "asset directory {} is a symlink; copy it into the assets directory instead",
                        path.display()
                    );
                }
                dirs.push((path, logical + "/"));
            } else if file_type.is_file() {
                files.push((logical, path));
            } else {
                bail!(
                    "{} is not a regular file or directory; remove it from the assets directory",
                    path.display()
                );
            }
        }
    }
    Ok(files)
}

/// [`pack::check_link`] for a link among the assets, in the assets' words.
fn check_link(path: &Path, canonical_root: &Path) -> Result<()> {
    match pack::check_link(path, canonical_root) {
        Ok(_) => Ok(()),
        Err(PackError::EscapingLink { path, target }) => bail!(
            "asset {} is a symlink to {target:?}, outside the assets directory {}; \
             only links that stay inside it are published (replace it with a copy)",
            path.display(),
            canonical_root.display()
        ),
        Err(PackError::DanglingLink { path, target }) => bail!(
            "asset {} is a symlink to {target:?}, which does not exist; fix or remove it",
            path.display()
        ),
        Err(e) => Err(e.into()),
    }
}

/// Vite's output directory in the assets tree, and the files its
/// `manifest.json` names (every entry's `file`, `css` and `assets`, all
/// relative to Vite's `outDir`). `outDir` is the directory holding the
/// manifest (Vite 4: `outDir/manifest.json`) or its `.vite/` directory
/// (Vite 5 and later: `outDir/.vite/manifest.json`). A named file missing
/// from `files` means the manifest is not the tree's: an error.
fn vite_output(
    manifest: &Path,
    assets_dir: &Path,
    in_tree: &dyn Fn(&str) -> bool,
) -> Result<ViteOutput> {
    let what = || {
        format!(
            "reading the Vite manifest {} (from `assets.vite_manifest`)",
            manifest.display()
        )
    };
    let bytes = fs::read(manifest).with_context(what)?;
    let value: serde_json::Value = serde_json::from_slice(&bytes).with_context(|| {
        format!(
            "{} is not JSON; point `assets.vite_manifest` at Vite's manifest.json",
            manifest.display()
        )
    })?;
    let Some(entries) = value.as_object() else {
        bail!(
            "{} is not a Vite manifest (expected a JSON object of entries)",
            manifest.display()
        );
    };
    let mut out_dir = manifest.parent().unwrap_or(Path::new("."));
    if out_dir.file_name().is_some_and(|n| n == ".vite") {
        out_dir = out_dir.parent().unwrap_or(Path::new("."));
    }
    let canon =
        |p: &Path| fs::canonicalize(p).with_context(|| format!("resolving {}", p.display()));
    let (out_dir, assets_dir) = (canon(out_dir)?, canon(assets_dir)?);
    let Ok(rel) = out_dir.strip_prefix(&assets_dir) else {
        bail!(
            "the Vite output directory {} is not inside the assets directory {}; set `assets.dir` to include it",
            out_dir.display(),
            assets_dir.display()
        );
    };
    let dir: String = rel
        .components()
        .map(|c| format!("{}/", c.as_os_str().to_string_lossy()))
        .collect();
    let mut listed = BTreeSet::new();
    for entry in entries.values() {
        let named = entry.get("file").into_iter().chain(
            ["css", "assets"]
                .iter()
                .filter_map(|k| entry.get(*k).and_then(|v| v.as_array()))
                .flatten(),
        );
        for f in named.filter_map(|v| v.as_str()) {
            listed.insert(format!("{dir}{}", f.trim_start_matches('/')));
        }
    }
    let missing: Vec<&String> = listed.iter().filter(|f| !in_tree(f)).collect();
    if let Some(first) = missing.first() {
        bail!(
            "the Vite manifest {} names {} file{} the assets directory {} does not hold \
             (first: {first}); build the front end again, or point `assets.vite_manifest` at the \
             manifest of the build in `assets.dir`",
            manifest.display(),
            missing.len(),
            if missing.len() == 1 { "" } else { "s" },
            assets_dir.display()
        );
    }
    Ok(ViteOutput { dir, listed })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn asset(refs: &[&str]) -> Asset {
        Asset {
            key: "assets/x".into(),
            sha256: String::new(),
            size: 0,
            content_type: String::new(),
            cache_control: String::new(),
            integrity: String::new(),
            references: refs.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn an_opaque_file_changed_after_fingerprinting_is_refused_and_nothing_is_written() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        for d in ["app", "static/img", "out"] {
            fs::create_dir_all(root.join(d)).unwrap();
        }
        fs::write(root.join("static/site.css"), "a{background:url(img/a.png)}").unwrap();
        fs::write(root.join("static/img/a.png"), b"\x89PNG one").unwrap();
        let cfg = Config::from_toml(
            "[app]\ndir = \"app\"\n[assets]\ndir = \"static\"\n",
            Path::new("verbatim.toml"),
            root.to_owned(),
            &Default::default(),
        )
        .unwrap();
        let progress = crate::progress::Silent;
        let out = root.join("out");

        // Read only by its digest, then read again for the pack: the same
        // size with other bytes is caught, not published under the old name.
        let fingerprinted = fingerprint(&cfg, &root.join("static")).unwrap();
        fs::write(root.join("static/img/a.png"), b"\x89PNG two").unwrap();
        let err = write(&out, fingerprinted, &progress).unwrap_err();
        assert!(
            format!("{err:#}").contains("img/a.png changed during the build"),
            "{err:#}"
        );
        assert_eq!(fs::read_dir(&out).unwrap().count(), 0, "a pack was left");

        let fingerprinted = fingerprint(&cfg, &root.join("static")).unwrap();
        let assets = write(&out, fingerprinted, &progress).unwrap();
        assert_eq!(assets["img/a.png"].size, 8);
        assert!(out.join(PACK_FILE).is_file());
    }

    #[test]
    fn upload_waves_put_references_in_earlier_waves() {
        let mut m = BTreeMap::new();
        m.insert("a.png".to_owned(), asset(&[]));
        m.insert("b.css".to_owned(), asset(&["a.png"]));
        m.insert("c.html".to_owned(), asset(&["b.css", "a.png"]));
        m.insert("d.js".to_owned(), asset(&["e.js"]));
        m.insert("e.js".to_owned(), asset(&["d.js"]));
        let waves = upload_waves(&m);
        let wave = |p: &str| waves.iter().position(|w| w.contains(&p)).unwrap();
        assert_eq!(waves.iter().map(Vec::len).sum::<usize>(), m.len());
        assert!(wave("a.png") < wave("b.css") && wave("b.css") < wave("c.html"));
        assert!(
            wave("d.js") != wave("e.js"),
            "a cycle is split, in a stable order"
        );
    }

    #[test]
    fn upload_order_is_leaves_first() {
        let m: BTreeMap<String, Asset> = [
            ("a.html", asset(&["b.css", "c.js"])),
            ("b.css", asset(&["d.png", "e.css"])),
            ("c.js", asset(&["f.js"])),
            ("d.png", asset(&[])),
            ("e.css", asset(&["d.png"])),
            ("f.js", asset(&["c.js"])), // a cycle
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        let order = upload_order(&m);
        assert_eq!(order.len(), m.len());
        let pos = |p: &str| order.iter().position(|x| *x == p).unwrap();
        for (p, a) in &m {
            for r in &a.references {
                if !(p == "f.js" && r == "c.js") {
                    assert!(pos(r) < pos(p), "{r} before {p}: {order:?}");
                }
            }
        }
    }
}
