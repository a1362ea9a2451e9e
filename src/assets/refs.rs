//! The common currency of the scanners: a [`Reference`] is one URL found in a
//! CSS, JS or HTML source, with the exact byte range to replace and enough
//! context ([`RefKind`], quote) for [`encode_for`] to produce replacement text
//! that is valid in that same syntactic position. An [`Integrity`] is a
//! digest covering one of them.

use std::fmt::Write as _;
use std::ops::Range;

/// One URL reference found in a source file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    /// Byte range in the source of the raw URL text to replace (quotes excluded).
    pub range: Range<usize>,
    /// Decoded URL (CSS escapes, JS escapes, HTML entities, JSON escapes resolved).
    pub value: String,
    /// 1-based line of `range.start`.
    pub line: u32,
    /// 1-based column of `range.start`, counted in chars.
    pub column: u32,
    /// Where it was found, which decides how a new URL is encoded there.
    pub kind: RefKind,
    /// The quote character around the raw text, if any.
    pub quote: Option<char>,
}

/// The `integrity` attribute of a `<script src>` or `<link href>`, or an
/// entry of an import map's `integrity`: a digest of the file a reference
/// names, which the browser checks. The HTML and the JSON scanners both
/// find them, so the type lives here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Integrity {
    /// Raw value range (inside the quotes).
    pub range: Range<usize>,
    /// The value, character references decoded.
    pub value: String,
    /// The range of the reference it covers (`src` of a script, `href` of
    /// a link, the key of an import map entry), as in
    /// [`HtmlScan::refs`](crate::assets::html::HtmlScan::refs).
    pub of: Range<usize>,
}

/// A reference at `range` whose line and column are not known yet
/// ([`fill_positions`] fills them).
pub(crate) fn reference(
    range: Range<usize>,
    value: String,
    kind: RefKind,
    quote: Option<char>,
) -> Reference {
    Reference {
        range,
        value,
        line: 0,
        column: 0,
        kind,
        quote,
    }
}

/// Where a reference was found; decides how a replacement must be encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RefKind {
    /// `url(...)` (quoted or not) or a bare string inside `image-set()`.
    CssUrl,
    /// The URL of an `@import` rule (string or `url()` form).
    CssImport,
    /// A `sourceMappingURL` comment (CSS `/*# */` or JS `//#`).
    SourceMap,
    /// Static `import`/`export ... from` specifier.
    JsImport,
    /// `import("...")` with a single string literal.
    JsDynamicImport,
    /// `new URL("...", import.meta.url)`.
    JsNewUrl,
    /// `new Worker("...")` or `new SharedWorker("...")` with a string
    /// literal: a URL resolved against the page's base URL, not the
    /// script's.
    JsWorker,
    /// `serviceWorker.register("...")` with a string literal: as
    /// [`RefKind::JsWorker`], and its URL must not change between releases.
    JsServiceWorker,
    /// A string literal argument of `importScripts(…)` in a classic
    /// worker: a URL resolved against the worker script's own URL.
    JsImportScripts,
    /// A CSS `url()` inside an HTML `style` attribute, whose text is
    /// the attribute value with character references decoded: encoded
    /// for CSS (in a form valid in any CSS context), then for the
    /// attribute. `quote` is the attribute's.
    StyleAttrUrl,
    /// An HTML attribute holding one URL (`src`, `href`, `poster`).
    HtmlAttr,
    /// One candidate URL of an HTML `srcset`/`imagesrcset` attribute.
    HtmlSrcset,
    /// A value in a `<script type="importmap">` JSON document.
    ImportMap,
    /// An image `src` in a web app manifest (JSON).
    WebManifest,
    /// An entry of a source map's `sources` (JSON).
    SourceMapSource,
}

impl RefKind {
    /// Whether this reference is a JavaScript module specifier (bare
    /// specifiers such as `"react"` are resolved by import maps, not by path).
    pub fn is_js_specifier(self) -> bool {
        matches!(self, RefKind::JsImport | RefKind::JsDynamicImport)
    }
}

/// Char-at-a-time reading of source text, shared by the CSS and JS lexers:
/// they only say where the text and their position are.
pub(crate) trait Cursor {
    fn text(&self) -> &str;
    fn pos(&self) -> usize;
    fn set_pos(&mut self, pos: usize);

    fn peek_at(&self, n: usize) -> Option<char> {
        self.text()[self.pos()..].chars().nth(n)
    }

    fn peek(&self) -> Option<char> {
        self.peek_at(0)
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.set_pos(self.pos() + c.len_utf8());
        Some(c)
    }
}

/// Implements [`Cursor`] for a lexer with `src: &str` and `pos: usize` fields.
macro_rules! impl_cursor {
    ($lexer:ident) => {
        impl $crate::assets::refs::Cursor for $lexer<'_> {
            fn text(&self) -> &str {
                self.src
            }

            fn pos(&self) -> usize {
                self.pos
            }

            fn set_pos(&mut self, pos: usize) {
                self.pos = pos;
            }
        }
    };
}
pub(crate) use impl_cursor;

/// Returns text that can replace `r.range` so that it decodes to `new_url`
/// in the same syntactic context as the original reference.
pub fn encode_for(r: &Reference, new_url: &str) -> String {
    match (r.kind, r.quote) {
        (RefKind::CssUrl | RefKind::CssImport, None) => css_unquoted_url(new_url),
        (RefKind::CssUrl | RefKind::CssImport, Some(q)) => css_string(new_url, q),
        (RefKind::SourceMap, _) => comment_url(new_url),
        (
            RefKind::JsImport
            | RefKind::JsDynamicImport
            | RefKind::JsNewUrl
            | RefKind::JsWorker
            | RefKind::JsServiceWorker
            | RefKind::JsImportScripts,
            q,
        ) => js_string(new_url, q.unwrap_or('"')),
        (RefKind::HtmlAttr, q) => html_attr(new_url, q),
        // An unquoted CSS URL escapes every quote, parenthesis and space,
        // so it reads the same quoted or not.
        (RefKind::StyleAttrUrl, q) => html_attr(&css_unquoted_url(new_url), q),
        (RefKind::HtmlSrcset, q) => {
            // Whitespace separates descriptors and a trailing comma separates
            // candidates, so neither may appear raw in a srcset URL.
            let mut s = String::with_capacity(new_url.len());
            for c in new_url.chars() {
                match c {
                    ',' => s.push_str("%2C"),
                    c if is_html_space(c) => {
                        let _ = write!(s, "%{:02X}", c as u32);
                    }
                    c => s.push(c),
                }
            }
            html_attr(&s, q)
        }
        (RefKind::ImportMap | RefKind::WebManifest | RefKind::SourceMapSource, _) => {
            json_string(new_url)
        }
    }
}

fn css_hex_escape(out: &mut String, c: char) {
    // A trailing space always terminates the hex escape, so the next char can
    // never be swallowed into it.
    let _ = write!(out, "\\{:x} ", c as u32);
}

fn css_unquoted_url(url: &str) -> String {
    let mut s = String::with_capacity(url.len());
    for c in url.chars() {
        match c {
            '(' | ')' | '"' | '\'' | '\\' => {
                s.push('\\');
                s.push(c);
            }
            c if c.is_whitespace() || c.is_control() => css_hex_escape(&mut s, c),
            c => s.push(c),
        }
    }
    s
}

fn css_string(url: &str, quote: char) -> String {
    let mut s = String::with_capacity(url.len());
    for c in url.chars() {
        match c {
            '\\' => s.push_str("\\\\"),
            c if c == quote => {
                s.push('\\');
                s.push(c);
            }
            '\n' | '\r' | '\x0c' => css_hex_escape(&mut s, c),
            c if c.is_control() => css_hex_escape(&mut s, c),
            c => s.push(c),
        }
    }
    s
}

fn comment_url(url: &str) -> String {
    // Inside a comment there are no escapes: percent-encode anything that
    // could end the comment or the URL.
    let mut s = String::with_capacity(url.len());
    for c in url.chars() {
        if c.is_whitespace() || c.is_control() || c == '*' {
            let mut buf = [0u8; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                let _ = write!(s, "%{b:02X}");
            }
        } else {
            s.push(c);
        }
    }
    s
}

fn js_string(url: &str, quote: char) -> String {
    let mut s = String::with_capacity(url.len());
    for c in url.chars() {
        match c {
            '\\' => s.push_str("\\\\"),
            '\n' => s.push_str("\\n"),
            '\r' => s.push_str("\\r"),
            '\u{2028}' => s.push_str("\\u2028"),
            '\u{2029}' => s.push_str("\\u2029"),
            // A template literal: `${` would start a substitution.
            '$' if quote == '`' => s.push_str("\\$"),
            c if c == quote => {
                s.push('\\');
                s.push(c);
            }
            c if c.is_control() => {
                let _ = write!(s, "\\u{:04x}", c as u32);
            }
            c => s.push(c),
        }
    }
    s
}

fn is_html_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\x0c' | '\r')
}

fn html_attr(url: &str, quote: Option<char>) -> String {
    let mut s = String::with_capacity(url.len());
    for c in url.chars() {
        match c {
            '&' => s.push_str("&amp;"),
            '"' if quote != Some('\'') => s.push_str("&quot;"),
            '\'' if quote != Some('"') => s.push_str("&#39;"),
            c if quote.is_none() && (is_html_space(c) || matches!(c, '=' | '<' | '>' | '`')) => {
                let _ = write!(s, "&#{};", c as u32);
            }
            c => s.push(c),
        }
    }
    s
}

pub(crate) fn json_string(url: &str) -> String {
    let mut s = String::with_capacity(url.len());
    for c in url.chars() {
        match c {
            '"' => s.push_str("\\\""),
            '\\' => s.push_str("\\\\"),
            // `<` is escaped so the result can never form `</script`.
            '<' => s.push_str("\\u003c"),
            c if (c as u32) < 0x20 => {
                let _ = write!(s, "\\u{:04x}", c as u32);
            }
            c => s.push(c),
        }
    }
    s
}

/// Fills `line` and `column` of every reference from its `range.start`.
/// Line breaks are `\n`, `\r\n` and a lone `\r`. One forward walk over the
/// text, visiting references in offset order: linear in the text whatever
/// the number of references on a line (a minified file is one long line).
pub(crate) fn fill_positions(src: &str, refs: &mut [Reference]) {
    let mut order: Vec<usize> = (0..refs.len()).collect();
    order.sort_by_key(|&i| refs[i].range.start);
    let bytes = src.as_bytes();
    let (mut pos, mut line, mut column) = (0usize, 1u32, 1u32);
    for i in order {
        let off = refs[i].range.start.min(bytes.len());
        for (k, &b) in bytes[pos.min(off)..off].iter().enumerate() {
            let at = pos + k;
            if b == b'\n' || (b == b'\r' && bytes.get(at + 1) != Some(&b'\n')) {
                line = line.saturating_add(1);
                column = 1;
            } else if b & 0xc0 != 0x80 {
                // The first byte of a char (not a UTF-8 continuation byte).
                column = column.saturating_add(1);
            }
        }
        pos = pos.max(off);
        refs[i].line = line;
        refs[i].column = column;
    }
}

/// Shifts ranges of references found in a sub-slice starting at `base`.
pub(crate) fn offset_refs(refs: &mut [Reference], base: usize) {
    for r in refs {
        r.range = r.range.start + base..r.range.end + base;
    }
}

/// Test helper: one line per reference, `Kind@line:col <raw> = <value>`, with
/// the raw text wrapped in its quotes.
#[cfg(test)]
pub(crate) fn render(src: &str, refs: &[Reference]) -> String {
    let mut out = String::new();
    for r in refs {
        let q = r.quote.map(String::from).unwrap_or_default();
        let raw = &src[r.range.clone()];
        let _ = writeln!(
            out,
            "{:?}@{}:{} {q}{raw}{q} = {}",
            r.kind, r.line, r.column, r.value
        );
    }
    out
}

/// Test helper: compares [`render`] output with an indented expectation.
#[cfg(test)]
pub(crate) fn assert_refs(src: &str, refs: &[Reference], expected: &str) {
    let expected: String = expected
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(|l| format!("{l}\n"))
        .collect();
    let got = render(src, refs);
    assert_eq!(got, expected, "\nsource:\n{src}\n---\ngot:\n{got}");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(kind: RefKind, quote: Option<char>) -> Reference {
        Reference {
            range: 0..0,
            value: String::new(),
            line: 1,
            column: 1,
            kind,
            quote,
        }
    }

    fn check(kind: RefKind, quote: Option<char>, url: &str, expected: &str) {
        assert_eq!(
            encode_for(&r(kind, quote), url),
            expected,
            "{kind:?} {quote:?} {url:?}"
        );
    }

    #[test]
    fn encodings() {
        use RefKind::*;
        check(CssUrl, None, "a.png", "a.png");
        check(CssUrl, None, "a b(1).png", "a\\20 b\\(1\\).png");
        check(CssUrl, None, "a'\"\\.png", "a\\'\\\"\\\\.png");
        check(CssImport, Some('"'), "a\"b'.css", "a\\\"b'.css");
        check(CssUrl, Some('\''), "a\"b'.css", "a\"b\\'.css");
        check(CssUrl, Some('"'), "a\nb", "a\\a b");
        check(SourceMap, None, "a b*/.map", "a%20b%2A/.map");
        check(JsImport, Some('\''), "./a'b\\.js", "./a\\'b\\\\.js");
        check(JsNewUrl, Some('"'), "./a\"b.js", "./a\\\"b.js");
        check(
            HtmlAttr,
            Some('"'),
            "a.png?x=1&y=\"'",
            "a.png?x=1&amp;y=&quot;'",
        );
        check(HtmlAttr, Some('\''), "a'\".png", "a&#39;\".png");
        check(HtmlAttr, None, "a b>.png", "a&#32;b&#62;.png");
        check(HtmlSrcset, Some('"'), "a b,c.png", "a%20b%2Cc.png");
        check(StyleAttrUrl, Some('"'), "a.png", "a.png");
        check(
            StyleAttrUrl,
            Some('"'),
            "a\"b&'.png",
            "a\\&quot;b&amp;\\'.png",
        );
        check(StyleAttrUrl, None, "a b.png", "a\\20&#32;b.png");
        check(
            ImportMap,
            None,
            "/a\"\\</script>.js",
            "/a\\\"\\\\\\u003c/script>.js",
        );
    }

    /// Line and column of each offset of `src`, as `fill_positions` reports them.
    fn positions_of(src: &str, offsets: &[usize]) -> Vec<(u32, u32)> {
        let mut refs = vec![r(RefKind::CssUrl, None); offsets.len()];
        for (r, &off) in refs.iter_mut().zip(offsets) {
            r.range = off..off;
        }
        fill_positions(src, &mut refs);
        refs.iter().map(|r| (r.line, r.column)).collect()
    }

    #[test]
    fn positions() {
        let src = "ab\r\ncd\re\néx";
        let got = positions_of(src, &[1, 5, 7, src.len() - 1]);
        assert_eq!(got, vec![(1, 2), (2, 2), (3, 1), (4, 2)]);
        // Given out of order, each still gets its own position.
        let got = positions_of(src, &[src.len() - 1, 1, 7, 5]);
        assert_eq!(got, vec![(4, 2), (1, 2), (3, 1), (2, 2)]);
        // Lone CRs, CRLF and LF mixed; empty lines; an offset past the end.
        let src = "\r\r\n\n\rx";
        assert_eq!(
            positions_of(src, &[0, 1, 3, 4, 5, 99]),
            vec![(1, 1), (2, 1), (3, 1), (4, 1), (5, 1), (5, 2)]
        );
        assert_eq!(positions_of("", &[0]), vec![(1, 1)]);
    }

    #[test]
    fn many_positions_on_one_line() {
        // A minified file: one line, a reference every few bytes.
        let src = "u(é);".repeat(50_000);
        let offsets: Vec<usize> = (0..50_000).map(|i| i * 6 + 2).collect();
        let got = positions_of(&src, &offsets);
        for (i, (line, column)) in got.into_iter().enumerate() {
            assert_eq!((line, column), (1, i as u32 * 5 + 3));
        }
    }

    #[test]
    fn positions_on_one_long_line_and_out_of_order() {
        // Found by `cargo xtask fuzz`: every reference used to recount its
        // column from the start of the line, quadratic on a minified file.
        let src = "é".repeat(1000) + "\n" + &"ab".repeat(1000);
        let offs = [2000, 0, 2, 1000, 1998, 2001, 2003, 2001, 4001];
        let mut refs = vec![r(RefKind::CssUrl, None); offs.len()];
        for (r, off) in refs.iter_mut().zip(offs) {
            r.range = off..off;
        }
        fill_positions(&src, &mut refs);
        let got: Vec<_> = refs.iter().map(|r| (r.line, r.column)).collect();
        assert_eq!(
            got,
            [
                (1, 1001),
                (1, 1),
                (1, 2),
                (1, 501),
                (1, 1000),
                (2, 1),
                (2, 3),
                (2, 1),
                (2, 2001)
            ]
        );
    }
}
