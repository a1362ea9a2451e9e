//! Decides what a reference points at: a file of the asset tree (resolved to
//! its normalised logical path, with any `?query#fragment` kept verbatim) or
//! something external that must be left alone (`data:`, other schemes,
//! protocol-relative hosts, fragments, paths outside the public prefix).

/// How the tree is served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UrlOptions {
    /// URL path under which the tree is served, e.g. `"/static/"`.
    pub public_prefix: String,
    /// Absolute URL under which the tree is also served, e.g.
    /// `"https://cdn.example.com/static/"`.
    pub cdn_base: Option<String>,
}

impl Default for UrlOptions {
    fn default() -> Self {
        UrlOptions {
            public_prefix: "/".to_string(),
            cdn_base: None,
        }
    }
}

/// What a reference resolves to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A file of the tree (which may not exist).
    Local {
        /// Logical path in the tree: `/`-separated, normalised, percent-decoded,
        /// no leading `/`.
        path: String,
        /// `?query#fragment` exactly as written (e.g. `?#iefix`), or empty.
        suffix: String,
    },
    /// Not a file of the tree: another host or scheme (`data:`, …), a
    /// path outside the public prefix, an empty or fragment-only URL.
    External,
}

/// Resolves `value` as written in the file at logical path `from`.
///
/// Errors: a path escaping the tree root with `..`, or a path that does not
/// percent-decode to UTF-8.
pub fn resolve(value: &str, from: &str, opts: &UrlOptions) -> Result<Target, String> {
    let value = value.trim_matches(|c: char| c.is_ascii_whitespace());
    if value.is_empty()
        || value.starts_with('#')
        || value
            .get(..3)
            .is_some_and(|p| p.eq_ignore_ascii_case("%23"))
    {
        return Ok(Target::External);
    }
    let (path_part, suffix) = split_suffix(value);
    let tree_relative = if let Some(rest) = strip_cdn(path_part, opts) {
        rest.to_string()
    } else if path_part.starts_with("//") || path_part.starts_with("\\\\") || has_scheme(value) {
        return Ok(Target::External);
    } else if let Some(rest) = path_part.strip_prefix('/') {
        let prefix = opts.public_prefix.trim_matches('/');
        if prefix.is_empty() {
            rest.to_string()
        } else {
            match rest.strip_prefix(prefix) {
                Some(r) if r.starts_with('/') => r[1..].to_string(),
                _ => return Ok(Target::External),
            }
        }
    } else {
        match from.rfind('/') {
            Some(i) => format!("{}{}", &from[..=i], path_part),
            None => path_part.to_string(),
        }
    };
    // A rewrite replaces the file name as written, so a name that encodes
    // a `/` would be rewritten to point at another file.
    let file = tree_relative.rsplit('/').next().unwrap_or_default();
    if percent_decode(file).is_some_and(|f| f.contains('/')) {
        return Err(format!(
            "file name {file:?} encodes a `/` (%2F); write the `/` itself"
        ));
    }
    let decoded = percent_decode(&tree_relative).ok_or_else(|| {
        format!("path {tree_relative:?} is not valid UTF-8 after percent-decoding")
    })?;
    let Some(path) = normalize(&decoded)? else {
        return Ok(Target::External); // a directory, not a file
    };
    Ok(Target::Local {
        path,
        suffix: suffix.to_string(),
    })
}

/// Resolves a URL prefix (`value` ends with `/`), as an import map's
/// prefix entry holds, written in the file at logical path `from`: the
/// logical directory it names in the tree (`""` for the root, else ending
/// with `/`), or `None` if it is outside the tree.
///
/// Errors: those of [`resolve`], and a prefix with a `?query` or
/// `#fragment` (what follows the prefix would land after it).
pub fn resolve_dir(value: &str, from: &str, opts: &UrlOptions) -> Result<Option<String>, String> {
    let value = value.trim_matches(|c: char| c.is_ascii_whitespace());
    if !split_suffix(value).1.is_empty() {
        return Err(format!(
            "URL prefix {value:?} has a query or fragment, so the files under it cannot be \
             named; remove it"
        ));
    }
    // A file name in that directory resolves to the directory plus that
    // name; `_` needs no encoding and is never `.` or `..`.
    let file = resolve(&format!("{value}_"), from, opts)
        .map_err(|e| resolve(value, from, opts).err().unwrap_or(e))?;
    match file {
        Target::External => Ok(None),
        Target::Local { path, .. } => Ok(path.strip_suffix('_').map(str::to_string)),
    }
}

/// Whether a JS module specifier is bare (`"react"`, `"lit/html.js"`):
/// such specifiers go through import maps, not path resolution.
pub fn is_bare_specifier(value: &str) -> bool {
    !(value.starts_with("./")
        || value.starts_with("../")
        || value.starts_with('/')
        || value == "."
        || value == ".."
        || has_scheme(value))
}

/// Whether `value` names its origin (`https://…`, `//cdn…`): it means the
/// same whatever the base URL.
pub fn is_absolute(value: &str) -> bool {
    let value = value.trim_matches(|c: char| c.is_ascii_whitespace());
    value.starts_with("//") || value.starts_with("\\\\") || has_scheme(value)
}

/// Splits `a/b.png?x#y` into `("a/b.png", "?x#y")`.
pub fn split_suffix(value: &str) -> (&str, &str) {
    let i = value.find(['?', '#']).unwrap_or(value.len());
    value.split_at(i)
}

/// Whether `value` is a relative URL with a path (`w.js`, `./w.js`,
/// `../w.js`): resolved against whatever base URL applies, unlike a path
/// from the root, a scheme-relative or an absolute URL, or a fragment.
pub fn is_path_relative(value: &str) -> bool {
    let value = value.trim_matches(|c: char| c.is_ascii_whitespace());
    !(value.is_empty() || value.starts_with(['/', '\\', '#', '?']) || has_scheme(value))
}

fn has_scheme(value: &str) -> bool {
    let Some(colon) = value.find(':') else {
        return false;
    };
    let scheme = &value[..colon];
    let mut chars = scheme.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
}

fn strip_cdn<'a>(path_part: &'a str, opts: &UrlOptions) -> Option<&'a str> {
    let base = opts.cdn_base.as_deref()?.trim_end_matches('/');
    if base.is_empty() {
        return None;
    }
    let strip = |b: &str| {
        let n = b.len();
        (path_part.len() > n
            && path_part.is_char_boundary(n)
            && path_part[..n].eq_ignore_ascii_case(b)
            && path_part[n..].starts_with('/'))
        .then(|| &path_part[n + 1..])
    };
    strip(base).or_else(|| {
        // The protocol-relative spelling of the same CDN.
        let i = base.find("://")?;
        strip(&base[i + 1..])
    })
}

/// Decodes `%XX` escapes; malformed escapes are kept literally.
pub fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok());
            if let Some(v) = hex {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8(out).ok()
}

/// Percent-encodes the characters that cannot appear raw in a URL path
/// segment (space, `%`, `?`, `#`, quotes, controls, ...). Non-ASCII is kept.
pub fn percent_encode_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c.is_ascii_control()
            || matches!(
                c,
                ' ' | '"'
                    | '#'
                    | '%'
                    | '\''
                    | '<'
                    | '>'
                    | '?'
                    | '\\'
                    | '^'
                    | '`'
                    | '{'
                    | '|'
                    | '}'
                    | '/'
            )
        {
            out.push_str(&format!("%{:02X}", c as u32));
        } else {
            out.push(c);
        }
    }
    out
}

/// Normalises `.`/`..`/empty segments. `Ok(None)` for directory paths
/// (empty or ending in `/`, `.` or `..`).
fn normalize(path: &str) -> Result<Option<String>, String> {
    let mut segs: Vec<&str> = Vec::new();
    let mut last_is_dir = true;
    for seg in path.split('/') {
        last_is_dir = true;
        match seg {
            "" | "." => {}
            ".." => {
                if segs.pop().is_none() {
                    return Err(format!("path {path:?} escapes the asset root"));
                }
            }
            s => {
                segs.push(s);
                last_is_dir = false;
            }
        }
    }
    if last_is_dir || segs.is_empty() {
        return Ok(None);
    }
    Ok(Some(segs.join("/")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts() -> UrlOptions {
        UrlOptions {
            public_prefix: "/static/".to_string(),
            cdn_base: Some("https://cdn.example.com/static/".to_string()),
        }
    }

    fn check(value: &str, from: &str, expected: &str) {
        let got = match resolve(value, from, &opts()) {
            Ok(Target::Local { path, suffix }) => format!("{path} {suffix}").trim().to_string(),
            Ok(Target::External) => "external".to_string(),
            Err(e) => format!("error: {e}"),
        };
        assert_eq!(got, expected, "{value:?} from {from:?}");
    }

    #[test]
    fn dirs() {
        let o = opts();
        let dir = |v: &str, from: &str| resolve_dir(v, from, &o);
        assert_eq!(
            dir("./vendor/jsm/", "index.html"),
            Ok(Some("vendor/jsm/".into()))
        );
        assert_eq!(dir("../lib/", "pages/a.html"), Ok(Some("lib/".into())));
        assert_eq!(dir("/static/lib/", "pages/a.html"), Ok(Some("lib/".into())));
        assert_eq!(dir("./", "index.html"), Ok(Some(String::new())));
        assert_eq!(dir("/static/", "a/index.html"), Ok(Some(String::new())));
        assert_eq!(
            dir("https://cdn.example.com/static/l%20b/", "x.html"),
            Ok(Some("l b/".into()))
        );
        assert_eq!(dir("https://unpkg.com/three/", "index.html"), Ok(None));
        assert_eq!(dir("/other/", "index.html"), Ok(None));
        assert!(dir("../", "index.html").is_err());
        assert!(dir("./lib/?v=1/", "index.html").is_err());
    }

    #[test]
    fn local() {
        check("a.png", "css/site.css", "css/a.png");
        check("./a.png", "css/site.css", "css/a.png");
        check("../img/a.png", "css/site.css", "img/a.png");
        check("../img/./x/../a.png", "css/site.css", "img/a.png");
        check("img//a.png", "site.css", "img/a.png");
        check("a.png", "site.css", "a.png");
        check("/static/img/a.png", "css/site.css", "img/a.png");
        check(
            "https://cdn.example.com/static/img/a.png",
            "x.css",
            "img/a.png",
        );
        check("HTTPS://CDN.EXAMPLE.COM/static/a.png", "x.css", "a.png");
        check("//cdn.example.com/static/a.png", "x.css", "a.png");
        check("a%20b.png", "x.css", "a b.png");
        check("f.eot?#iefix", "fonts/f.css", "fonts/f.eot ?#iefix");
        check("a.js?v=1#x", "a.js", "a.js ?v=1#x");
        check("  a.png  ", "x.css", "a.png");
        check("bad%zz.png", "x.css", "bad%zz.png");
    }

    #[test]
    fn external() {
        for v in [
            "data:image/png;base64,AAAA",
            "blob:https://x/1",
            "https://other.example.com/a.png",
            "https://cdn.example.com/other/a.png",
            "mailto:a@b.c",
            "javascript:void(0)",
            "//host/a.png",
            "#frag",
            "%23filter",
            "",
            "   ",
            "/other/a.png",
            "/static",
            "/static/",
            "./",
            "dir/",
            "..",
        ] {
            check(v, "css/site.css", "external");
        }
    }

    #[test]
    fn errors() {
        check(
            "../../a.png",
            "css/site.css",
            "error: path \"css/../../a.png\" escapes the asset root",
        );
        check(
            "/static/../a.png",
            "x.css",
            "error: path \"../a.png\" escapes the asset root",
        );
        check(
            "%ff.png",
            "x.css",
            "error: path \"%ff.png\" is not valid UTF-8 after percent-decoding",
        );
        // Found by `cargo xtask fuzz`: rewritten to `b.<hash>.png`, another file.
        check(
            "a%2Fb.png",
            "x.css",
            "error: file name \"a%2Fb.png\" encodes a `/` (%2F); write the `/` itself",
        );
        check("a%2fb/c.png", "x.css", "a/b/c.png");
    }

    #[test]
    fn root_prefix() {
        let o = UrlOptions::default();
        assert_eq!(
            resolve("/a/b.png", "x/y.css", &o),
            Ok(Target::Local {
                path: "a/b.png".into(),
                suffix: String::new()
            })
        );
    }

    #[test]
    fn bare_specifiers() {
        assert!(is_bare_specifier("react"));
        assert!(is_bare_specifier("lit/html.js"));
        assert!(!is_bare_specifier("./a.js"));
        assert!(!is_bare_specifier("../a.js"));
        assert!(!is_bare_specifier("/static/a.js"));
        assert!(!is_bare_specifier("https://x/a.js"));
    }

    #[test]
    fn encode_segment() {
        assert_eq!(percent_encode_segment("a b#?%.png"), "a%20b%23%3F%25.png");
        assert_eq!(percent_encode_segment("é.png"), "é.png");
    }
}
