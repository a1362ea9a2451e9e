//! Finds URL references in HTML with a small tag/attribute tokenizer:
//! `src`/`href`/`poster` attributes, `srcset` candidates, import-map JSON
//! values, `style` attributes and the contents of inline `<style>` and
//! `<script type="module">` (delegated to the CSS and JS scanners). Comments and other raw text are
//! skipped so that commented-out markup is never rewritten.

use crate::assets::css::css_references;
use crate::assets::js::js_references;
use crate::assets::refs::{fill_positions, offset_refs, RefKind, Reference};
use std::ops::Range;

/// All references in an HTML document, in source order.
pub fn html_references(src: &str) -> Vec<Reference> {
    let mut refs = Vec::new();
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
            let tag = parse_tag(src, i + 1);
            i = tag.end;
            tag_references(src, &tag, &mut refs);
            if let Some(raw_end) = raw_text_end(src, &tag) {
                raw_text_references(src, &tag, i..raw_end, &mut refs);
                i = raw_end;
            }
        } else {
            i += 1;
        }
    }
    refs.sort_by_key(|r| r.range.start);
    fill_positions(src, &mut refs);
    refs
}

struct Attr {
    name: String,
    /// Raw value range (inside the quotes).
    value: Range<usize>,
    quote: Option<char>,
}

struct Tag {
    name: String,
    attrs: Vec<Attr>,
    /// Byte offset just past the `>`.
    end: usize,
}

impl Tag {
    fn attr(&self, src: &str, name: &str) -> Option<String> {
        let a = self.attrs.iter().find(|a| a.name == name)?;
        src.get(a.value.clone()).map(decode_entities)
    }
}

fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r' | b'\x0c')
}

/// Parses a start tag whose name begins at `start`.
fn parse_tag(src: &str, start: usize) -> Tag {
    let b = src.as_bytes();
    let mut i = start;
    while i < b.len() && !is_space(b[i]) && b[i] != b'/' && b[i] != b'>' {
        i += 1;
    }
    let name = src[start..i].to_ascii_lowercase();
    let mut attrs = Vec::new();
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
        let attr_name = src[name_start..i].to_ascii_lowercase();
        let mut j = i;
        while j < b.len() && is_space(b[j]) {
            j += 1;
        }
        if b.get(j) != Some(&b'=') {
            attrs.push(Attr {
                name: attr_name,
                value: i..i,
                quote: None,
            });
            continue;
        }
        j += 1;
        while j < b.len() && is_space(b[j]) {
            j += 1;
        }
        let (value, quote) = match b.get(j) {
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
        };
        attrs.push(Attr {
            name: attr_name,
            value,
            quote,
        });
    }
    Tag {
        name,
        attrs,
        end: i,
    }
}

fn tag_references(src: &str, tag: &Tag, refs: &mut Vec<Reference>) {
    if tag.name == "base" {
        return; // <base href> changes resolution of everything else; not followed.
    }
    for a in &tag.attrs {
        let raw = &src[a.value.clone()];
        match a.name.as_str() {
            "src" | "href" | "poster" => {
                // Leading/trailing HTML whitespace is not part of the URL.
                let lead = raw.len()
                    - raw
                        .trim_start_matches(|c: char| is_space(c as u8) && c.is_ascii())
                        .len();
                let trimmed = raw.trim_matches(|c: char| c.is_ascii() && is_space(c as u8));
                if trimmed.is_empty() {
                    continue;
                }
                let start = a.value.start + lead;
                refs.push(reference(
                    start..start + trimmed.len(),
                    decode_entities(trimmed),
                    RefKind::HtmlAttr,
                    a.quote,
                ));
            }
            // Inline CSS. A value with character references would need
            // decoding first, which moves offsets: left alone (rare). A
            // rewrite encodes for CSS only, so it could end an unquoted
            // attribute (with the space after a CSS escape, or a `>`), or a
            // quoted one if the URL holds its quote: those are left alone
            // too (found by `cargo xtask fuzz`).
            "style" if !raw.contains('&') => {
                let Some(q) = a.quote else { continue };
                let mut found = css_references(raw);
                found.retain(|r| !r.value.contains([q, '&']));
                offset_refs(&mut found, a.value.start);
                refs.extend(found);
            }
            "srcset" | "imagesrcset" => {
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
            _ => {}
        }
    }
}

fn reference(range: Range<usize>, value: String, kind: RefKind, quote: Option<char>) -> Reference {
    Reference {
        range,
        value,
        line: 0,
        column: 0,
        kind,
        quote,
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
    // Compared in place: lower-casing the rest of the document for every
    // raw-text element made a page of `<title></title>` quadratic.
    let rest = &src[tag.end..];
    let name = tag.name.as_bytes();
    let mut from = 0;
    while let Some(k) = rest[from..].find("</") {
        let at = from + k;
        let after_name = at + 2 + name.len();
        let b = rest.as_bytes();
        if b.get(at + 2..after_name)
            .is_some_and(|n| n.eq_ignore_ascii_case(name))
            && b.get(after_name)
                .is_none_or(|&c| is_space(c) || c == b'>' || c == b'/')
        {
            return Some(tag.end + at);
        }
        from = at + 2;
    }
    Some(src.len())
}

fn raw_text_references(src: &str, tag: &Tag, body: Range<usize>, refs: &mut Vec<Reference>) {
    let text = &src[body.clone()];
    let mut found = match tag.name.as_str() {
        "style" => css_references(text),
        "script" => {
            let ty = tag.attr(src, "type").unwrap_or_default();
            match ty.trim().to_ascii_lowercase().as_str() {
                "module" => js_references(text),
                "importmap" => import_map_references(text),
                _ => Vec::new(),
            }
        }
        _ => Vec::new(),
    };
    offset_refs(&mut found, body.start);
    refs.extend(found);
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
    if !s.contains('&') {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(k) = rest.find('&') {
        out.push_str(&rest[..k]);
        rest = &rest[k..];
        // Look no further than the longest reference: an unbounded search
        // made an attribute full of `&` quadratic.
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
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// String values of `imports` and of each `scopes` entry in an import map.
/// Malformed JSON yields no references.
fn import_map_references(text: &str) -> Vec<Reference> {
    let mut p = Json { s: text, pos: 0 };
    let Some(root) = p.value() else {
        return Vec::new();
    };
    let mut refs = Vec::new();
    let mut add_values = |obj: &JsonValue| {
        if let JsonValue::Object(entries) = obj {
            for (_, v) in entries {
                if let JsonValue::Str(value, range) = v {
                    refs.push(reference(
                        range.clone(),
                        value.clone(),
                        RefKind::ImportMap,
                        Some('"'),
                    ));
                }
            }
        }
    };
    if let JsonValue::Object(top) = &root {
        for (key, v) in top {
            match key.as_str() {
                "imports" => add_values(v),
                "scopes" => {
                    if let JsonValue::Object(scopes) = v {
                        for (_, scope) in scopes {
                            add_values(scope);
                        }
                    }
                }
                _ => {}
            }
        }
    }
    refs
}

enum JsonValue {
    /// Decoded value and raw range inside the quotes.
    Str(String, Range<usize>),
    Object(Vec<(String, JsonValue)>),
    Other,
}

struct Json<'a> {
    s: &'a str,
    pos: usize,
}

impl Json<'_> {
    fn ws(&mut self) {
        let b = self.s.as_bytes();
        while self.pos < b.len() && matches!(b[self.pos], b' ' | b'\t' | b'\n' | b'\r') {
            self.pos += 1;
        }
    }

    fn eat(&mut self, c: u8) -> bool {
        self.ws();
        if self.s.as_bytes().get(self.pos) == Some(&c) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn value(&mut self) -> Option<JsonValue> {
        self.ws();
        match self.s.as_bytes().get(self.pos)? {
            b'"' => self.string().map(|(v, r)| JsonValue::Str(v, r)),
            b'{' => {
                self.pos += 1;
                let mut entries = Vec::new();
                if self.eat(b'}') {
                    return Some(JsonValue::Object(entries));
                }
                loop {
                    self.ws();
                    let (key, _) = self.string()?;
                    if !self.eat(b':') {
                        return None;
                    }
                    let v = self.value()?;
                    entries.push((key, v));
                    if self.eat(b',') {
                        continue;
                    }
                    return self.eat(b'}').then_some(JsonValue::Object(entries));
                }
            }
            b'[' => {
                self.pos += 1;
                if self.eat(b']') {
                    return Some(JsonValue::Other);
                }
                loop {
                    self.value()?;
                    if self.eat(b',') {
                        continue;
                    }
                    return self.eat(b']').then_some(JsonValue::Other);
                }
            }
            _ => {
                let b = self.s.as_bytes();
                let start = self.pos;
                while self.pos < b.len()
                    && (b[self.pos].is_ascii_alphanumeric()
                        || matches!(b[self.pos], b'-' | b'+' | b'.'))
                {
                    self.pos += 1;
                }
                (self.pos > start).then_some(JsonValue::Other)
            }
        }
    }

    fn string(&mut self) -> Option<(String, Range<usize>)> {
        if self.s.as_bytes().get(self.pos) != Some(&b'"') {
            return None;
        }
        self.pos += 1;
        let start = self.pos;
        let mut out = String::new();
        let mut chars = self.s[start..].char_indices();
        while let Some((k, c)) = chars.next() {
            match c {
                '"' => {
                    self.pos = start + k + 1;
                    return Some((out, start..start + k));
                }
                '\\' => {
                    let (_, e) = chars.next()?;
                    match e {
                        'b' => out.push('\u{8}'),
                        'f' => out.push('\u{c}'),
                        'n' => out.push('\n'),
                        'r' => out.push('\r'),
                        't' => out.push('\t'),
                        'u' => {
                            let hex = |chars: &mut std::str::CharIndices| -> Option<u32> {
                                let h: String = chars.by_ref().take(4).map(|(_, c)| c).collect();
                                u32::from_str_radix(&h, 16).ok()
                            };
                            let hi = hex(&mut chars)?;
                            let code = if (0xd800..0xdc00).contains(&hi) {
                                let rest = chars.as_str();
                                if rest.starts_with("\\u") {
                                    chars.next();
                                    chars.next();
                                    let lo = hex(&mut chars)?;
                                    0x10000
                                        + ((hi - 0xd800) << 10)
                                        + (lo.wrapping_sub(0xdc00) & 0x3ff)
                                } else {
                                    0xfffd
                                }
                            } else {
                                hi
                            };
                            out.push(char::from_u32(code).unwrap_or('\u{fffd}'));
                        }
                        other => out.push(other),
                    }
                }
                c => out.push(c),
            }
        }
        None
    }
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
        check(
            "<div style=\"background: url('img/hero.jpg') no-repeat\"></div>\n\
             <p style='color: red'></p><i style=\"background: url(&quot;x.png&quot;)\"></i>",
            r#"
            CssUrl@1:30 'img/hero.jpg' = img/hero.jpg
            "#,
        );
        check(
            "<p style=background:url(a.png)></p>\n\
             <p style=\"background:url('b\\22 c.png') url('d\\26 lt;.png')\"></p>\n\
             <p style='background:url(\"e\\e9 .png\")'></p>",
            r#"CssUrl@3:27 "e\e9 .png" = eé.png"#,
        );
    }

    #[test]
    fn inline_style_and_module_script() {
        check(
            "<style>\n.a { background: url(a.png) } /* url(no.png) */\n</style>\n\
             <script type=\"module\">\nimport x from './x.js'; const s = '<img src=no.png>';\n</script>\n\
             <script>import('./classic-not-scanned.js')</script>",
            r#"
            CssUrl@2:22 a.png = a.png
            JsImport@5:16 './x.js' = ./x.js
            "#,
        );
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
            "#,
        );
        check("<script type=importmap>{ not json </script>", "");
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

    #[test]
    fn entities_need_their_semicolon_nearby() {
        assert_eq!(decode_entities("&amp;&#x26;&#0000000038;&&lt"), "&&&&&lt");
        assert_eq!(decode_entities("&#00000000038;"), "&#00000000038;");
        assert_eq!(decode_entities(&"&".repeat(5)), "&&&&&");
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
}
