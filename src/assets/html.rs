//! Finds URL references in HTML (and in SVG, read with the same tokenizer)
//! with a small tag/attribute tokenizer: `src`/`href`/`xlink:href`/`poster`
//! attributes, `<object data>`, `srcset` candidates, import-map JSON
//! values, `style` attributes and the contents of inline `<style>` and
//! `<script type="module">` (delegated to the CSS and JS scanners; an
//! import map to the JSON scanner, `assets/json.rs`). Comments and other raw text are
//! skipped so that commented-out markup is never rewritten. It also finds
//! the `integrity` attribute of a `<script src>` or `<link href>`, which
//! holds a digest of the file the reference names, the `integrity` map
//! of an import map (its keys are references, its values digests), and an
//! import map's prefix entries (`"lib/": "./lib/"`), which name every file
//! under a directory.

use crate::assets::css::css_references;
use crate::assets::js::js_references;
use crate::assets::json::import_map_scan;
use crate::assets::refs::{fill_positions, offset_refs, reference, RefKind, Reference};
use std::ops::Range;

// The JSON scanners were found here first: their paths stay valid.
pub use crate::assets::json::{
    source_map_sources, web_manifest_references, ImportMapPrefix, SourceMapScan,
};
pub use crate::assets::refs::Integrity;

/// All references in an HTML document, in source order.
pub fn html_references(src: &str) -> Vec<Reference> {
    html_scan(src).refs
}

/// What [`html_scan`] finds.
#[derive(Debug, Default)]
pub struct HtmlScan {
    /// Every reference, in source order.
    pub refs: Vec<Reference>,
    /// Every `integrity` attribute that covers a reference, in source order.
    pub integrity: Vec<Integrity>,
    /// The range of each reference made by a `<link rel=manifest href>`:
    /// it names a web app manifest, whatever its file name.
    pub manifests: Vec<Range<usize>>,
    /// Every prefix entry of an import map (`imports` or a scope: key and
    /// value both end with `/`), in source order.
    pub import_map_prefixes: Vec<ImportMapPrefix>,
    /// The keys of each import map specifier map (`imports`, a scope)
    /// holding a prefix entry, sorted: [`ImportMapPrefix::keys`] indexes it.
    pub import_map_keys: Vec<Vec<String>>,
    /// The page's `<base href>` (the first one): every relative URL of the
    /// page resolves against it. Not a reference: it is left as written.
    pub base: Option<Reference>,
}

/// [`html_references`], plus the `integrity` attributes that cover them.
/// As a browser does, only the first `src`/`href` and the first
/// `integrity` of a tag count.
pub fn html_scan(src: &str) -> HtmlScan {
    let mut refs = Vec::new();
    let mut integrity = Vec::new();
    let mut manifests = Vec::new();
    let mut import_map_prefixes = Vec::new();
    let mut import_map_keys = Vec::new();
    let mut base = Vec::new();
    let b = src.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'<' {
            i += 1;
            continue;
        }
        let rest = &src[i..];
        if let Some(comment) = rest.strip_prefix("<!--") {
            i = comment.find("-->").map_or(src.len(), |j| i + 4 + j + 3);
        } else if rest.starts_with("<!") || rest.starts_with("<?") || rest.starts_with("</") {
            i = rest.find('>').map_or(src.len(), |j| i + j + 1);
        } else if b.get(i + 1).is_some_and(u8::is_ascii_alphabetic) {
            // For `script` and `link`: the first `integrity` attribute, and
            // the reference made by the first `src` (script) or `href` (link).
            let mut sri: Option<Range<usize>> = None;
            let mut covered: Option<Option<Range<usize>>> = None;
            let mut rel_manifest = false;
            let tag = parse_tag(src, i + 1, |tag, attr| {
                if tag == "base"
                    && base.is_empty()
                    && src[attr.name.clone()].eq_ignore_ascii_case("href")
                {
                    base.push(Reference {
                        range: attr.value.clone(),
                        value: decode_entities(&src[attr.value.clone()])
                            .trim_matches(|c: char| c.is_ascii() && is_space(c as u8))
                            .to_string(),
                        line: 0,
                        column: 0,
                        kind: RefKind::HtmlAttr,
                        quote: attr.quote,
                    });
                }
                let before = refs.len();
                attr_references(src, tag, attr, &mut refs);
                let url_attr = match tag {
                    "script" => "src",
                    "link" => "href",
                    _ => return,
                };
                let name = &src[attr.name.clone()];
                if tag == "link" && name.eq_ignore_ascii_case("rel") {
                    rel_manifest |= decode_entities(&src[attr.value.clone()])
                        .split(|c: char| c.is_ascii() && is_space(c as u8))
                        .any(|t| t.eq_ignore_ascii_case("manifest"));
                }
                if sri.is_none() && name.eq_ignore_ascii_case("integrity") {
                    sri = Some(attr.value.clone());
                } else if covered.is_none() && name.eq_ignore_ascii_case(url_attr) {
                    covered = Some(refs.get(before).map(|r| r.range.clone()));
                }
            });
            if let (true, Some(Some(of))) = (rel_manifest, &covered) {
                manifests.push(of.clone());
            }
            if let (Some(range), Some(Some(of))) = (sri, covered) {
                integrity.push(Integrity {
                    value: decode_entities(&src[range.clone()]),
                    range,
                    of,
                });
            }
            i = tag.end;
            if let Some(raw_end) = raw_text_end(src, &tag) {
                raw_text_references(
                    src,
                    &tag,
                    i..raw_end,
                    &mut refs,
                    &mut integrity,
                    &mut import_map_prefixes,
                    &mut import_map_keys,
                );
                i = raw_end;
            }
        } else {
            i += 1;
        }
    }
    refs.sort_by_key(|r| r.range.start);
    fill_positions(src, &mut refs);
    fill_positions(src, &mut base);
    HtmlScan {
        refs,
        integrity,
        manifests,
        import_map_prefixes,
        import_map_keys,
        base: base.pop(),
    }
}

/// One attribute of a start tag, as ranges of the source.
struct Attr {
    name: Range<usize>,
    /// Raw value range (inside the quotes).
    value: Range<usize>,
    quote: Option<char>,
}

struct Tag {
    /// Lower-cased.
    name: String,
    /// Raw value range of the first `type` attribute.
    type_attr: Option<Range<usize>>,
    /// Byte offset just past the `>`.
    end: usize,
}

fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r' | b'\x0c')
}

/// Parses a start tag whose name begins at `start`, handing each attribute
/// to `on_attr` with the lower-cased tag name as it is found: nothing per
/// attribute is kept, however many a tag has.
fn parse_tag(src: &str, start: usize, mut on_attr: impl FnMut(&str, &Attr)) -> Tag {
    let b = src.as_bytes();
    let mut i = start;
    while i < b.len() && !is_space(b[i]) && b[i] != b'/' && b[i] != b'>' {
        i += 1;
    }
    let name = src[start..i].to_ascii_lowercase();
    let mut type_attr = None;
    loop {
        while i < b.len() && (is_space(b[i]) || b[i] == b'/') {
            i += 1;
        }
        if i >= b.len() {
            break;
        }
        if b[i] == b'>' {
            i += 1;
            break;
        }
        let name_start = i;
        i += 1; // a leading `=` belongs to the name
        while i < b.len() && !is_space(b[i]) && !matches!(b[i], b'/' | b'>' | b'=') {
            i += 1;
        }
        let attr_name = name_start..i;
        let mut j = i;
        while j < b.len() && is_space(b[j]) {
            j += 1;
        }
        let (value, quote) = if b.get(j) != Some(&b'=') {
            (i..i, None)
        } else {
            j += 1;
            while j < b.len() && is_space(b[j]) {
                j += 1;
            }
            match b.get(j) {
                Some(&q @ (b'"' | b'\'')) => {
                    let vstart = j + 1;
                    let vend = src[vstart..]
                        .find(q as char)
                        .map_or(src.len(), |k| vstart + k);
                    i = (vend + 1).min(src.len());
                    (vstart..vend, Some(q as char))
                }
                _ => {
                    let vstart = j;
                    while j < b.len() && !is_space(b[j]) && b[j] != b'>' {
                        j += 1;
                    }
                    i = j;
                    (vstart..j, None)
                }
            }
        };
        let attr = Attr {
            name: attr_name,
            value,
            quote,
        };
        if type_attr.is_none() && src[attr.name.clone()].eq_ignore_ascii_case("type") {
            type_attr = Some(attr.value.clone());
        }
        on_attr(&name, &attr);
    }
    Tag {
        name,
        type_attr,
        end: i,
    }
}

fn attr_references(src: &str, tag: &str, a: &Attr, refs: &mut Vec<Reference>) {
    if tag == "base" {
        return; // <base href> changes resolution of everything else; not followed.
    }
    let raw = &src[a.value.clone()];
    let name = &src[a.name.clone()];
    let is = |n: &str| name.eq_ignore_ascii_case(n);
    // SVG's `<use>`/`<image>`/`<a>` also say `xlink:href`; `<object>`
    // names its resource with `data` (on other tags `data` is not a URL).
    if is("src")
        || is("href")
        || is("poster")
        || is("xlink:href")
        || (tag == "object" && is("data"))
    {
        // Leading/trailing HTML whitespace is not part of the URL.
        let lead = raw.len()
            - raw
                .trim_start_matches(|c: char| c.is_ascii() && is_space(c as u8))
                .len();
        let trimmed = raw.trim_matches(|c: char| c.is_ascii() && is_space(c as u8));
        if trimmed.is_empty() {
            return;
        }
        let start = a.value.start + lead;
        refs.push(reference(
            start..start + trimmed.len(),
            decode_entities(trimmed),
            RefKind::HtmlAttr,
            a.quote,
        ));
    } else if is("style") {
        style_references(raw, a, refs);
    } else if is("srcset") || is("imagesrcset") {
        for r in srcset_urls(raw) {
            let range = a.value.start + r.start..a.value.start + r.end;
            refs.push(reference(
                range,
                decode_entities(&raw[r]),
                RefKind::HtmlSrcset,
                a.quote,
            ));
        }
    }
}

/// The `url()`s of a `style` attribute: its value is decoded (character
/// references), scanned as CSS, and each URL's range mapped back to the
/// raw value. An entity decodes to one char, so a URL starts and ends
/// either side of each, never inside one.
fn style_references(raw: &str, a: &Attr, refs: &mut Vec<Reference>) {
    let (text, map) = decode_entities_mapped(raw);
    let raw_offset = |decoded: usize| -> usize {
        // `map` holds (decoded offset, raw offset) after each entity.
        match map.binary_search_by_key(&decoded, |&(d, _)| d) {
            Ok(i) => map[i].1,
            Err(0) => decoded,
            Err(i) => map[i - 1].1 + (decoded - map[i - 1].0),
        }
    };
    for r in css_references(&text) {
        if r.kind != RefKind::CssUrl {
            continue; // no `@import` or comment in a declaration list
        }
        let range = raw_offset(r.range.start)..raw_offset(r.range.end);
        let start = a.value.start + range.start;
        refs.push(reference(
            start..start + range.len(),
            r.value,
            RefKind::StyleAttrUrl,
            a.quote,
        ));
    }
}

/// For raw-text elements, the byte offset of the matching end tag.
fn raw_text_end(src: &str, tag: &Tag) -> Option<usize> {
    if !matches!(
        tag.name.as_str(),
        "script" | "style" | "textarea" | "title" | "xmp" | "noembed" | "noframes" | "iframe"
    ) {
        return None;
    }
    // `</name` in any case, followed by a space, `>`, `/` or the end.
    let b = src.as_bytes();
    let name = tag.name.as_bytes();
    let mut from = tag.end;
    while let Some(k) = src[from..].find("</") {
        let at = from + k;
        let name_end = at + 2 + name.len();
        let named = b
            .get(at + 2..name_end)
            .is_some_and(|n| n.eq_ignore_ascii_case(name));
        if named
            && b.get(name_end)
                .is_none_or(|&c| is_space(c) || c == b'>' || c == b'/')
        {
            return Some(at);
        }
        from = at + 2;
    }
    Some(src.len())
}

fn raw_text_references(
    src: &str,
    tag: &Tag,
    body: Range<usize>,
    refs: &mut Vec<Reference>,
    integrity: &mut Vec<Integrity>,
    prefixes: &mut Vec<ImportMapPrefix>,
    keys: &mut Vec<Vec<String>>,
) {
    let text = &src[body.clone()];
    let mut found = match tag.name.as_str() {
        "style" => css_references(text),
        "script" => {
            let ty = tag
                .type_attr
                .clone()
                .and_then(|r| src.get(r))
                .map(decode_entities)
                .unwrap_or_default();
            match ty.trim().to_ascii_lowercase().as_str() {
                "module" => js_references(text),
                "importmap" => {
                    let map = import_map_scan(text);
                    let at = |r: Range<usize>| body.start + r.start..body.start + r.end;
                    integrity.extend(map.integrity.into_iter().map(|i| Integrity {
                        range: at(i.range),
                        value: i.value,
                        of: at(i.of),
                    }));
                    let first = keys.len();
                    prefixes.extend(map.prefixes.into_iter().map(|p| ImportMapPrefix {
                        entry: at(p.entry),
                        key: p.key,
                        value: at(p.value),
                        keys: first + p.keys,
                    }));
                    keys.extend(map.keys);
                    map.refs
                }
                // A classic script: no static imports nor `import.meta`,
                // but `import()` and workers work the same.
                t if is_classic_script_type(t) => {
                    let mut found = js_references(text);
                    found.retain(|r| {
                        matches!(
                            r.kind,
                            RefKind::JsDynamicImport | RefKind::JsWorker | RefKind::JsServiceWorker
                        )
                    });
                    found
                }
                _ => Vec::new(),
            }
        }
        _ => Vec::new(),
    };
    offset_refs(&mut found, body.start);
    refs.extend(found);
}

/// Whether a `<script type>` (trimmed, lower-cased) makes a classic
/// script: no type, or one of the JavaScript MIME type essences of the
/// HTML standard.
fn is_classic_script_type(ty: &str) -> bool {
    ty.is_empty() || super::mime::is_javascript(ty)
}

/// Splits a srcset into candidate URL ranges (relative to `raw`), following
/// the HTML "parse a srcset attribute" algorithm closely enough.
fn srcset_urls(raw: &str) -> Vec<Range<usize>> {
    let b = raw.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    loop {
        while i < b.len() && (is_space(b[i]) || b[i] == b',') {
            i += 1;
        }
        if i >= b.len() {
            return out;
        }
        let start = i;
        while i < b.len() && !is_space(b[i]) {
            i += 1;
        }
        let mut end = i;
        let mut had_comma = false;
        while end > start && b[end - 1] == b',' {
            end -= 1;
            had_comma = true;
        }
        if end > start {
            out.push(start..end);
        }
        if had_comma {
            continue;
        }
        // Descriptors: up to the next comma outside parentheses.
        let mut depth = 0usize;
        while i < b.len() {
            match b[i] {
                b'(' => depth += 1,
                b')' => depth = depth.saturating_sub(1),
                b',' if depth == 0 => break,
                _ => {}
            }
            i += 1;
        }
    }
}

/// Decodes the common HTML character references; unknown ones stay literal.
fn decode_entities(s: &str) -> String {
    decode_entities_mapped(s).0
}

/// [`decode_entities`], with the (decoded, raw) offsets just past each
/// decoded reference, in order.
fn decode_entities_mapped(s: &str) -> (String, Vec<(usize, usize)>) {
    let mut map = Vec::new();
    if !s.contains('&') {
        return (s.to_string(), map);
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(k) = rest.find('&') {
        out.push_str(&rest[..k]);
        rest = &rest[k..];
        // A reference is short: look for its `;` nearby only, so a run of
        // `&` is not a scan to the end of the text for each of them.
        let semi = rest.as_bytes()[1..]
            .iter()
            .take(12)
            .position(|&c| c == b';')
            .map(|j| j + 1);
        let decoded = semi.and_then(|j| {
            let name = &rest[1..j];
            let c = match name {
                "amp" => Some('&'),
                "lt" => Some('<'),
                "gt" => Some('>'),
                "quot" => Some('"'),
                "apos" => Some('\''),
                "nbsp" => Some('\u{a0}'),
                n if n.starts_with("#x") || n.starts_with("#X") => u32::from_str_radix(&n[2..], 16)
                    .ok()
                    .and_then(char::from_u32),
                n if n.starts_with('#') => n[1..].parse().ok().and_then(char::from_u32),
                _ => None,
            };
            c.map(|c| (c, j + 1))
        });
        match decoded {
            Some((c, len)) => {
                out.push(c);
                rest = &rest[len..];
                map.push((out.len(), s.len() - rest.len()));
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    (out, map)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::assets::refs::assert_refs;

    fn check(src: &str, expected: &str) {
        assert_refs(src, &html_references(src), expected);
    }

    #[test]
    fn attributes() {
        check(
            r#"<!doctype html>
<link rel="stylesheet" href="css/site.css">
<link rel=modulepreload href='js/app.js'>
<link rel="icon" href=favicon.ico>
<IMG SRC = "a.png?x=1&amp;y=2" alt="a.png">
<video poster="p.jpg" src="v.mp4"></video>
<a href=" page.html ">x</a><iframe src="f.html"></iframe>
<source src="s.webm" type="video/webm"><base href="/static/">"#,
            r#"
            HtmlAttr@2:30 "css/site.css" = css/site.css
            HtmlAttr@3:31 'js/app.js' = js/app.js
            HtmlAttr@4:23 favicon.ico = favicon.ico
            HtmlAttr@5:13 "a.png?x=1&amp;y=2" = a.png?x=1&y=2
            HtmlAttr@6:16 "p.jpg" = p.jpg
            HtmlAttr@6:28 "v.mp4" = v.mp4
            HtmlAttr@7:11 "page.html" = page.html
            HtmlAttr@7:41 "f.html" = f.html
            HtmlAttr@8:14 "s.webm" = s.webm
            "#,
        );
    }

    #[test]
    fn srcset() {
        check(
            r#"<img srcset="a.png 1x, b%20c.png 2x,d.png, e.png 100w" src=a.png>
<link rel=preload as=image imagesrcset="f.png 1x,g.png 2x">"#,
            r#"
            HtmlSrcset@1:14 "a.png" = a.png
            HtmlSrcset@1:24 "b%20c.png" = b%20c.png
            HtmlSrcset@1:37 "d.png" = d.png
            HtmlSrcset@1:44 "e.png" = e.png
            HtmlAttr@1:60 a.png = a.png
            HtmlSrcset@2:41 "f.png" = f.png
            HtmlSrcset@2:50 "g.png" = g.png
            "#,
        );
    }

    #[test]
    fn style_attributes() {
        // The raw text of each URL, inside the attribute's quotes.
        check(
            "<div style=\"background: url('img/hero.jpg') no-repeat\"></div>\n\
             <p style='color: red'></p><i style=\"background: url(&quot;x.png&quot;)\"></i>",
            r#"
            StyleAttrUrl@1:30 "img/hero.jpg" = img/hero.jpg
            StyleAttrUrl@2:59 "x.png" = x.png
            "#,
        );
        // Unquoted attributes, CSS escapes, entities inside the URL and
        // around it, a quote of the attribute's kind inside the CSS.
        check(
            "<p style=background:url(a.png)></p>\n\
             <p style=\"background:url('b\\22 c.png') url('d\\26 lt;.png')\"></p>\n\
             <p style='background:url(\"e\\e9 .png\")'></p>\n\
             <p style=\"a:url(&#39;f&amp;g.png&#x27;);b:url( h&#x2e;png )\"></p>",
            r#"
            StyleAttrUrl@1:25 a.png = a.png
            StyleAttrUrl@2:27 "b\22 c.png" = b"c.png
            StyleAttrUrl@2:45 "d\26 lt;.png" = d&lt;.png
            StyleAttrUrl@3:27 'e\e9 .png' = eé.png
            StyleAttrUrl@4:22 "f&amp;g.png" = f&g.png
            StyleAttrUrl@4:48 "h&#x2e;png" = h.png
            "#,
        );
        // A rewrite reads back as the URL it was given, whatever the quotes.
        for src in [
            "<p style=\"a:url(&quot;x.png&quot;)\">",
            "<p style='a:url(x.png)'>",
            "<p style=a:url(x.png)>",
        ] {
            for url in ["a b.png", "a\"b'c&d.png", "a(b).png", "a>b=.png"] {
                let r = html_references(src).remove(0);
                let out = format!(
                    "{}{}{}",
                    &src[..r.range.start],
                    crate::assets::refs::encode_for(&r, url),
                    &src[r.range.end..]
                );
                let back = html_references(&out);
                assert_eq!(back.len(), 1, "{out}");
                assert_eq!(back[0].value, url, "{out}");
            }
        }
    }

    #[test]
    fn inline_style_and_module_script() {
        check(
            "<style>\n.a { background: url(a.png) } /* url(no.png) */\n</style>\n\
             <script type=\"module\">\nimport x from './x.js'; const s = '<img src=no.png>';\n</script>\n\
             <script>import('./classic.js'); import x from './no.js'; new URL('no.png', import.meta.url)</script>\n\
             <script type=text/template>import('./no2.js')</script>",
            r#"
            CssUrl@2:22 a.png = a.png
            JsImport@5:16 './x.js' = ./x.js
            JsDynamicImport@7:17 './classic.js' = ./classic.js
            "#,
        );
        // Positions inside an inline script are positions in the page.
        check(
            "<p>\n<script type=' Text/JavaScript '>\n  f();\r\n  new Worker('w.js'); import(\"./é.js\")\n</script>\n\
             <script type=module>\nnavigator.serviceWorker.register('/sw.js')</script>",
            r#"
            JsWorker@4:15 'w.js' = w.js
            JsDynamicImport@4:31 "./é.js" = ./é.js
            JsServiceWorker@7:35 '/sw.js' = /sw.js
            "#,
        );
    }

    #[test]
    fn manifest_links() {
        let src = "<link rel=manifest href=app.json><link rel='icon MANIFEST' href=b.json>\n\
                   <link rel=stylesheet href=c.json><a rel=manifest href=d.json></a>\n\
                   <link rel=&#109;anifest href=e.json><!-- <link rel=manifest href=f.json> -->";
        let scan = html_scan(src);
        let got: Vec<&str> = scan.manifests.iter().map(|r| &src[r.clone()]).collect();
        assert_eq!(got, ["app.json", "b.json", "e.json"]);
    }

    #[test]
    fn import_map() {
        check(
            r#"<script type="importmap">
{ "imports": { "app": "/static/js/app.js", "lib/": "/static/lib/", "esc": "/static/a\"b\u0063.js" },
  "scopes": { "/static/x/": { "dep": "./dep.js" } }, "integrity": { "/static/js/app.js": "sha384-x" } }
</script>"#,
            r#"
            ImportMap@2:24 "/static/js/app.js" = /static/js/app.js
            ImportMap@2:53 "/static/lib/" = /static/lib/
            ImportMap@2:76 "/static/a\"b\u0063.js" = /static/a"bc.js
            ImportMap@3:39 "./dep.js" = ./dep.js
            ImportMap@3:70 "/static/js/app.js" = /static/js/app.js
            "#,
        );
        check("<script type=importmap>{ not json </script>", "");
    }

    #[test]
    fn import_map_prefixes_and_integrity() {
        let src = r#"<p><script type=importmap>{
  "imports": { "three": "./three.js", "three/addons/": "./jsm/", "x/": "./x.js", "y": "./y/",
    "cdn/": "https://unpkg.com/lib/" },
  "scopes": { "/s/": { "\u006c/": "./l/" }, "./m.js": {} },
  "integrity": { "./three.js": "sha384-A", "./jsm/a.js": ["no"], "j\u0073.js": "sha256-B" },
  "other": { "q/": "./q/" }
}</script>"#;
        let scan = html_scan(src);
        let prefixes: Vec<(&str, &str, &str)> = scan
            .import_map_prefixes
            .iter()
            .map(|p| (p.key.as_str(), &src[p.entry.clone()], &src[p.value.clone()]))
            .collect();
        assert_eq!(
            prefixes,
            [
                ("three/addons/", r#"three/addons/": "./jsm/"#, "./jsm/"),
                (
                    "cdn/",
                    r#"cdn/": "https://unpkg.com/lib/"#,
                    "https://unpkg.com/lib/"
                ),
                ("l/", r#"\u006c/": "./l/"#, "./l/"),
            ]
        );
        let keys: Vec<Vec<&str>> = scan
            .import_map_prefixes
            .iter()
            .map(|p| {
                scan.import_map_keys[p.keys]
                    .iter()
                    .map(String::as_str)
                    .collect()
            })
            .collect();
        let imports = vec!["cdn/", "three", "three/addons/", "x/", "y"];
        assert_eq!(keys, [imports.clone(), imports, vec!["l/"]]);
        // Every prefix value is one of the references.
        for p in &scan.import_map_prefixes {
            assert!(scan.refs.iter().any(|r| r.range == p.value));
        }
        let integrity: Vec<(&str, &str, &str)> = scan
            .integrity
            .iter()
            .map(|i| (&src[i.of.clone()], i.value.as_str(), &src[i.range.clone()]))
            .collect();
        assert_eq!(
            integrity,
            [
                ("./three.js", "sha384-A", "sha384-A"),
                (r"j\u0073.js", "sha256-B", "sha256-B")
            ]
        );
        let keys: Vec<&str> = scan
            .refs
            .iter()
            .filter(|r| scan.integrity.iter().any(|i| i.of == r.range))
            .map(|r| r.value.as_str())
            .collect();
        assert_eq!(keys, ["./three.js", "js.js"]);
        assert!(scan.refs.iter().any(|r| r.value == "./m.js"));
        assert!(!scan.refs.iter().any(|r| r.value == "/s/"));
        // Many entries: one pass, keys kept once per map.
        let n = 50_000;
        let entries: Vec<String> = (0..n).map(|i| format!("\"k{i}/\": \"./d{i}/\"")).collect();
        let sris: Vec<String> = (0..n)
            .map(|i| format!("\"f{i}.js\": \"sha384-x\""))
            .collect();
        let big = format!(
            "<script type=importmap>{{\"imports\": {{{}}}, \"integrity\": {{{}}}}}</script>",
            entries.join(","),
            sris.join(",")
        );
        let scan = html_scan(&big);
        assert_eq!(scan.import_map_prefixes.len(), n);
        assert_eq!(scan.integrity.len(), n);
        assert_eq!(scan.import_map_keys.len(), 1);
        assert_eq!(scan.import_map_keys[0].len(), n);
        // Malformed: nothing at all.
        let bad = html_scan(
            r#"<script type=importmap>{"imports": {"a/": "./a/"}, "integrity": {"b.js": "x"</script>"#,
        );
        assert!(
            bad.refs.is_empty() && bad.integrity.is_empty() && bad.import_map_prefixes.is_empty()
        );
    }

    #[test]
    fn raw_text_ends_at_its_own_end_tag_in_any_case() {
        check(
            "<title>a</b></titlex></TiTlE ><img src=a.png><style></style><img src=b.png>",
            r#"
            HtmlAttr@1:40 a.png = a.png
            HtmlAttr@1:70 b.png = b.png
            "#,
        );
        check("<script></scrip", "");
    }

    /// `integrity` attributes as `<value> of <covered reference>`, one a line.
    fn check_integrity(src: &str, expected: &[&str]) {
        let scan = html_scan(src);
        let got: Vec<String> = scan
            .integrity
            .iter()
            .map(|i| {
                assert_eq!(&src[i.range.clone()], i.value.replace('&', "&amp;"));
                format!("{} of {}", i.value, &src[i.of.clone()])
            })
            .collect();
        assert_eq!(got, expected, "{src}");
    }

    #[test]
    fn integrity_covers_the_script_src_or_link_href() {
        // The pattern of Bootstrap's self-hosting instructions, and of
        // bundler SRI plugins.
        check_integrity(
            r#"<link href="css/bootstrap.min.css" rel="stylesheet" integrity="sha384-AAA" crossorigin="anonymous">
<script integrity='sha384-BBB sha512-CCC' src=js/bootstrap.bundle.min.js crossorigin></script>
<link rel=modulepreload href=js/chunk.js integrity=sha384-DDD>
<script type=module crossorigin src="/static/assets/index-9GimqxIf.js" integrity="sha384-E&amp;E"></script>"#,
            &[
                "sha384-AAA of css/bootstrap.min.css",
                "sha384-BBB sha512-CCC of js/bootstrap.bundle.min.js",
                "sha384-DDD of js/chunk.js",
                "sha384-E&E of /static/assets/index-9GimqxIf.js",
            ],
        );
        check_integrity(
            r#"<img src=a.png integrity=sha384-A>
<script integrity=sha384-B>inline</script>
<link rel=stylesheet integrity=sha384-C>
<script src="" integrity=sha384-D></script>
<!-- <script src=x.js integrity=sha384-E></script> -->
<script src=first.js src=second.js integrity=sha384-F integrity=sha384-G></script>
<link href=a.css><link integrity=sha384-H>"#,
            &["sha384-F of first.js"],
        );
    }

    #[test]
    fn entities_need_their_semicolon_nearby() {
        assert_eq!(decode_entities("&amp;&#x26;&#0000000038;&&lt"), "&&&&&lt");
        assert_eq!(decode_entities("&#00000000038;"), "&#00000000038;");
        assert_eq!(decode_entities(&"&".repeat(5)), "&&&&&");
    }

    #[test]
    fn svg_and_object_attributes() {
        // A fragment-only `href` is found here; `url::resolve` calls it
        // external, so it is never rewritten.
        check(
            r##"<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink">
<use xlink:href="sprite.svg#icon"/><use href='#local'/>
<image href="a.png" XLINK:HREF=b.png width="10"/>
<a xlink:href="page.html"><text>x</text></a></svg>
<object data="doc.pdf" type="application/pdf"></object><div data="no.png"></div>"##,
            r##"
            HtmlAttr@2:18 "sprite.svg#icon" = sprite.svg#icon
            HtmlAttr@2:47 '#local' = #local
            HtmlAttr@3:14 "a.png" = a.png
            HtmlAttr@3:32 b.png = b.png
            HtmlAttr@4:16 "page.html" = page.html
            HtmlAttr@5:15 "doc.pdf" = doc.pdf
            "##,
        );
    }

    #[test]
    fn left_alone() {
        check(
            r#"<!-- <img src="no1.png"> -->
<p>src="no2.png" href=no3</p>
<textarea><img src="no4.png"></textarea>
<script>var s = "<img src='no5.png'>";</script>
<title><link href=no6.css></title>
<img alt="x" data-src="no7.png" src="">
<img src="yes.png""#,
            r#"HtmlAttr@7:11 "yes.png" = yes.png"#,
        );
    }

    #[test]
    fn hostile() {
        // Unterminated constructs at the end of the file.
        check("<img src='a.png", "HtmlAttr@1:11 'a.png' = a.png");
        check("<!-- <img src=a.png>", "");
        check(
            "<script type=module>import './a.js'",
            "JsImport@1:29 './a.js' = ./a.js",
        );
        check("<style>a{b:url(c.png", "CssUrl@1:16 c.png = c.png");
        check("<script type=importmap>{\"imports\": {\"a\": \"b.js\"", "");
        // CR, CRLF and LF all end lines; a NUL is one char.
        check(
            "<p>\r\n<img src=a.png>\r\0<img src=b.png>\n<img\rsrc=c.png>",
            r"
            HtmlAttr@2:10 a.png = a.png
            HtmlAttr@3:11 b.png = b.png
            HtmlAttr@5:5 c.png = c.png
            ",
        );
        // Thousands of raw-text elements, attributes and ampersands.
        let src = format!(
            "{}<img {}src=d.png alt=\"{}\">",
            "<title>T</TITLE >".repeat(20_000),
            "a ".repeat(100_000),
            "&".repeat(100_000)
        );
        let refs = html_references(&src);
        assert_eq!(refs.len(), 1);
        assert_eq!(refs[0].column, 20_000 * 17 + 5 + 200_000 + 5);
        assert_eq!(decode_entities(&"&".repeat(1000)), "&".repeat(1000));
        assert_eq!(
            decode_entities("&&amp;&#x41;&#1234567890123;"),
            "&&A&#1234567890123;"
        );
        // An import map nested deeper than any real one is not one (and
        // does not overflow the stack).
        let deep = format!(
            "<script type=importmap>{{\"imports\": {{\"a\": \"b.js\"}}, \"x\": {}</script>",
            "[".repeat(100_000)
        );
        check(&deep, "");
    }
}
