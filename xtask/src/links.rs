//! The link checker of `cargo xtask docs`: every relative link of the
//! book's pages, README.md and ARCHITECTURE.md names a file that exists,
//! and every `#anchor` a heading of the page it points into (ids made as
//! mdBook and GitHub make them). Links to other sites are not followed:
//! CI reaches no network but package registries.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::Result;

/// Checks the links of `docs/src/**/*.md`, README.md and ARCHITECTURE.md.
pub fn check(root: &Path) -> Result {
    let mut pages = markdown_files(&root.join("docs/src"));
    pages.push(root.join("README.md"));
    pages.push(root.join("ARCHITECTURE.md"));
    let mut anchors: HashMap<PathBuf, Vec<String>> = HashMap::new();
    let mut problems = Vec::new();
    for page in &pages {
        let text = std::fs::read_to_string(page)
            .map_err(|e| format!("reading {}: {e}", page.display()))?;
        let shown = page
            .strip_prefix(root)
            .unwrap_or(page)
            .display()
            .to_string();
        for (line, target) in targets(&text) {
            if let Err(e) = check_one(page, &target, &mut anchors) {
                problems.push(format!("{shown}:{line}: `{target}`: {e}"));
            }
        }
    }
    if problems.is_empty() {
        eprintln!(
            "links: {} pages, every relative link and anchor resolves",
            pages.len()
        );
        Ok(())
    } else {
        Err(format!("broken links:\n{}", problems.join("\n")))
    }
}

fn check_one(page: &Path, target: &str, anchors: &mut HashMap<PathBuf, Vec<String>>) -> Result {
    let (path, anchor) = target.split_once('#').unwrap_or((target, ""));
    let file = if path.is_empty() {
        page.to_owned()
    } else {
        page.parent().unwrap_or(Path::new(".")).join(path)
    };
    if !file.exists() {
        return Err("no such file".into());
    }
    if anchor.is_empty() {
        return Ok(());
    }
    if file.extension().is_none_or(|e| e != "md") {
        return Err("an anchor into a file that is not Markdown".into());
    }
    let key = file.canonicalize().map_err(|e| e.to_string())?;
    if !anchors.contains_key(&key) {
        let text = std::fs::read_to_string(&file).map_err(|e| e.to_string())?;
        anchors.insert(key.clone(), heading_ids(&text));
    }
    if anchors[&key].iter().any(|a| a == anchor) {
        Ok(())
    } else {
        Err(format!(
            "no heading of {} has the id `{anchor}`",
            file.display()
        ))
    }
}

/// Every `.md` file under `dir`, sorted.
pub fn markdown_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut dirs = vec![dir.to_owned()];
    while let Some(d) = dirs.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                dirs.push(p);
            } else if p.extension().is_some_and(|x| x == "md") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// The relative link targets of a Markdown text, with their line numbers:
/// inline links `[text](target)` and definitions `[label]: target`, outside
/// code blocks and code spans; absolute URLs and `mailto:` left out.
pub fn targets(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut fence: Option<&str> = None;
    for (n, line) in text.lines().enumerate() {
        let trimmed = line.trim_start();
        if let Some(f) = fence {
            if trimmed.starts_with(f) {
                fence = None;
            }
            continue;
        }
        if trimmed.starts_with("```") || trimmed.starts_with("~~~") {
            fence = Some(&trimmed[..3]);
            continue;
        }
        let line = without_code_spans(line);
        let mut found = Vec::new();
        if let Some(rest) = line.trim_start().strip_prefix('[') {
            if let Some((_, def)) = rest.split_once("]: ") {
                found.push(def.split_whitespace().next().unwrap_or("").to_owned());
            }
        }
        let mut rest = line.as_str();
        while let Some(i) = rest.find("](") {
            let after = &rest[i + 2..];
            let end = after.find([')', ' ']).unwrap_or(after.len());
            found.push(after[..end].trim_matches(['<', '>']).to_owned());
            rest = &after[end..];
        }
        for t in found {
            if !t.is_empty() && !t.contains("://") && !t.starts_with("mailto:") {
                out.push((n + 1, t));
            }
        }
    }
    out
}

fn without_code_spans(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut code = false;
    for c in line.chars() {
        if c == '`' {
            code = !code;
        } else if !code {
            out.push(c);
        }
    }
    out
}

/// The ids of a page's headings, as mdBook and GitHub make them: the
/// heading's text lowercased, spaces to `-`, other punctuation but `-` and
/// `_` dropped; a repeated id gets `-1`, `-2` ….
pub fn heading_ids(text: &str) -> Vec<String> {
    let mut ids: Vec<String> = Vec::new();
    let mut fenced = false;
    for line in text.lines() {
        let t = line.trim_start();
        if t.starts_with("```") || t.starts_with("~~~") {
            fenced = !fenced;
            continue;
        }
        if fenced || !t.starts_with('#') {
            continue;
        }
        let title = t.trim_start_matches('#');
        if !title.starts_with(' ') {
            continue;
        }
        let id = slug(title.trim());
        let mut unique = id.clone();
        let mut n = 0;
        while ids.contains(&unique) {
            n += 1;
            unique = format!("{id}-{n}");
        }
        ids.push(unique);
    }
    ids
}

fn slug(title: &str) -> String {
    // Link text stands for the link: `[Hosts](hosts.md)` → `Hosts`.
    let mut plain = String::new();
    let mut rest = title;
    while let Some(i) = rest.find("](") {
        plain.push_str(&rest[..i]);
        rest = rest[i..].split_once(')').map_or("", |(_, r)| r);
    }
    plain.push_str(rest);
    plain
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c.to_ascii_lowercase()),
            _ => None,
        })
        .flat_map(char::to_lowercase)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_as_mdbook_makes_them() {
        let ids = heading_ids(
            "# Static sites and SPAs\n## `verbatim key generate`\n```\n# not a heading\n```\n## Exit codes\n## Exit codes\n### Django: `staticfiles.json` in the artifact\n",
        );
        assert_eq!(
            ids,
            [
                "static-sites-and-spas",
                "verbatim-key-generate",
                "exit-codes",
                "exit-codes-1",
                "django-staticfilesjson-in-the-artifact"
            ]
        );
    }

    #[test]
    fn targets_skip_code_and_urls() {
        let t = targets(
            "See [a](a.md#x) and `[b](b.md)`, [c](https://x.org).\n```\n[d](d.md)\n```\n[e]: e.md\n",
        );
        assert_eq!(t, [(1, "a.md#x".to_owned()), (5, "e.md".to_owned())]);
    }
}
