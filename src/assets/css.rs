//! Finds URL references in CSS with a real tokenizer (CSS Syntax Level 3
//! style: comments, strings, escapes, url tokens) instead of regexes, so
//! that commented-out rules and look-alike strings are never rewritten and
//! escaped URLs are decoded exactly the way a browser would decode them.

use crate::assets::refs::{fill_positions, impl_cursor, reference, Cursor, RefKind, Reference};
use std::borrow::Cow;
use std::ops::Range;

/// All references in a stylesheet: `url()` (quoted, unquoted, escaped),
/// bare strings in `image-set()`, `@import` URLs (kind [`RefKind::CssImport`])
/// and `/*# sourceMappingURL=... */` comments.
pub fn css_references(src: &str) -> Vec<Reference> {
    let mut refs = scan(src);
    fill_positions(src, &mut refs);
    refs
}

/// Only the `@import` references of a stylesheet.
pub fn css_imports(src: &str) -> Vec<Reference> {
    let mut refs = css_references(src);
    refs.retain(|r| r.kind == RefKind::CssImport);
    refs
}

#[derive(Debug)]
enum Tok {
    Ws,
    Comment(Range<usize>),
    Str {
        value: String,
        range: Range<usize>,
        quote: char,
        bad: bool,
    },
    Url {
        value: String,
        range: Range<usize>,
    },
    BadUrl,
    /// A function token; the `(` is consumed.
    Function(Func),
    /// An at-keyword; whether it is `@import`.
    AtKeyword {
        import: bool,
    },
    OpenParen,
    CloseParen,
    /// `;`, `{` or `}`: ends any pending function context.
    Boundary,
    Other,
}

/// The functions whose strings are URLs; every other one is `Other`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Func {
    Url,
    ImageSet,
    Other,
}

impl Func {
    fn of(name: &str) -> Func {
        let is = |n: &str| name.eq_ignore_ascii_case(n);
        if is("url") {
            Func::Url
        } else if is("image-set") || is("-webkit-image-set") {
            Func::ImageSet
        } else {
            Func::Other
        }
    }
}

/// One open parenthesis: a function's (`func`) or a plain one. Two bytes,
/// so that deeply nested input costs little.
struct Frame {
    func: Option<Func>,
    import: bool,
}

fn scan(src: &str) -> Vec<Reference> {
    let mut refs = Vec::new();
    let mut lx = Lexer { src, pos: 0 };
    let mut stack: Vec<Frame> = Vec::new();
    let mut in_import = false;
    while let Some(tok) = lx.next_token() {
        match tok {
            Tok::Ws => continue,
            Tok::Comment(range) => {
                if let Some(r) = source_map_comment(src, range) {
                    refs.push(r);
                }
                continue;
            }
            Tok::Str {
                value,
                range,
                quote,
                bad,
            } => {
                let kind = if in_import && stack.is_empty() {
                    Some(RefKind::CssImport)
                } else {
                    match stack.last() {
                        Some(Frame {
                            func: Some(Func::Url),
                            import: true,
                        }) => Some(RefKind::CssImport),
                        Some(Frame {
                            func: Some(Func::Url | Func::ImageSet),
                            ..
                        }) => Some(RefKind::CssUrl),
                        _ => None,
                    }
                };
                if let (Some(kind), false) = (kind, bad) {
                    refs.push(reference(range, value, kind, Some(quote)));
                }
            }
            Tok::Url { value, range } => {
                let kind = if in_import && stack.is_empty() {
                    RefKind::CssImport
                } else {
                    RefKind::CssUrl
                };
                if !range.is_empty() {
                    refs.push(reference(range, value, kind, None));
                }
            }
            Tok::Function(func) => {
                let import = in_import && stack.is_empty() && func == Func::Url;
                stack.push(Frame {
                    func: Some(func),
                    import,
                });
            }
            Tok::OpenParen => stack.push(Frame {
                func: None,
                import: false,
            }),
            Tok::CloseParen => {
                stack.pop();
            }
            Tok::AtKeyword { import } => {
                in_import = import && stack.is_empty();
                continue;
            }
            Tok::Boundary => stack.clear(),
            Tok::BadUrl | Tok::Other => {}
        }
        in_import = false;
    }
    refs
}

/// `/*# sourceMappingURL=url */` (or the legacy `/*@ ... */`).
fn source_map_comment(src: &str, range: Range<usize>) -> Option<Reference> {
    let text = &src[range.clone()];
    let body_start = range.start + 2;
    let body = text.get(2..)?;
    let body = body.strip_suffix("*/").unwrap_or(body);
    let rest = body.strip_prefix(['#', '@'])?;
    let trimmed = rest.trim_start();
    let url_part = trimmed.strip_prefix("sourceMappingURL=")?;
    let url_len = url_part
        .find(|c: char| c.is_whitespace())
        .unwrap_or(url_part.len());
    if url_len == 0 {
        return None;
    }
    let start = body_start + 1 + (rest.len() - trimmed.len()) + "sourceMappingURL=".len();
    let url = &url_part[..url_len];
    Some(reference(
        start..start + url_len,
        url.to_string(),
        RefKind::SourceMap,
        None,
    ))
}

/// Browsers read U+0000 as U+FFFD (CSS Syntax 3.3), as they read the
/// `\0 ` escape a rewrite writes for it.
fn nul_to_fffd(c: char) -> char {
    if c == '\0' {
        '\u{fffd}'
    } else {
        c
    }
}

fn is_newline(c: char) -> bool {
    matches!(c, '\n' | '\r' | '\x0c')
}

fn is_ws(c: char) -> bool {
    matches!(c, ' ' | '\t') || is_newline(c)
}

fn is_name_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_' || !c.is_ascii()
}

fn is_name(c: char) -> bool {
    is_name_start(c) || c.is_ascii_digit() || c == '-'
}

fn is_non_printable(c: char) -> bool {
    matches!(c, '\0'..='\x08' | '\x0b' | '\x0e'..='\x1f' | '\x7f')
}

fn valid_escape(c1: Option<char>, c2: Option<char>) -> bool {
    c1 == Some('\\') && !c2.is_some_and(is_newline)
}

fn starts_ident(c1: Option<char>, c2: Option<char>, c3: Option<char>) -> bool {
    match c1 {
        Some('-') => c2.is_some_and(|c| is_name_start(c) || c == '-') || valid_escape(c2, c3),
        Some('\\') => valid_escape(c1, c2),
        Some(c) => is_name_start(c),
        None => false,
    }
}

fn starts_number(c1: Option<char>, c2: Option<char>, c3: Option<char>) -> bool {
    let digit = |c: Option<char>| c.is_some_and(|c| c.is_ascii_digit());
    match c1 {
        Some('+' | '-') => digit(c2) || (c2 == Some('.') && digit(c3)),
        Some('.') => digit(c2),
        c => digit(c),
    }
}

struct Lexer<'a> {
    src: &'a str,
    pos: usize,
}

impl_cursor!(Lexer);

impl<'a> Lexer<'a> {
    fn bump_newline(&mut self) {
        if self.bump() == Some('\r') && self.peek() == Some('\n') {
            self.bump();
        }
    }

    fn next_token(&mut self) -> Option<Tok> {
        let c = self.peek()?;
        let (c1, c2) = (self.peek_at(1), self.peek_at(2));
        let tok = match c {
            '/' if c1 == Some('*') => {
                let start = self.pos;
                let end = self.src[start + 2..]
                    .find("*/")
                    .map_or(self.src.len(), |i| start + 2 + i + 2);
                self.pos = end;
                Tok::Comment(start..end)
            }
            c if is_ws(c) => {
                while self.peek().is_some_and(is_ws) {
                    self.bump();
                }
                Tok::Ws
            }
            '"' | '\'' => {
                self.bump();
                self.string(c)
            }
            '#' => {
                self.bump();
                if c1.is_some_and(is_name) || valid_escape(c1, c2) {
                    self.name();
                }
                Tok::Other
            }
            '(' => {
                self.bump();
                Tok::OpenParen
            }
            ')' => {
                self.bump();
                Tok::CloseParen
            }
            ';' | '{' | '}' => {
                self.bump();
                Tok::Boundary
            }
            '+' | '.' if starts_number(Some(c), c1, c2) => self.numeric(),
            '-' if starts_number(Some(c), c1, c2) => self.numeric(),
            '-' if c1 == Some('-') && c2 == Some('>') => {
                self.pos += 3;
                Tok::Other
            }
            '-' if starts_ident(Some(c), c1, c2) => self.ident_like(),
            '<' if self.src[self.pos..].starts_with("<!--") => {
                self.pos += 4;
                Tok::Other
            }
            '@' if starts_ident(c1, c2, self.peek_at(3)) => {
                self.bump();
                Tok::AtKeyword {
                    import: self.name().eq_ignore_ascii_case("import"),
                }
            }
            '\\' if valid_escape(Some(c), c1) => self.ident_like(),
            c if c.is_ascii_digit() => self.numeric(),
            c if is_name_start(c) => self.ident_like(),
            _ => {
                self.bump();
                Tok::Other
            }
        };
        Some(tok)
    }

    /// After the backslash: one escaped code point.
    fn escape(&mut self) -> char {
        let Some(c) = self.bump() else {
            return '\u{fffd}';
        };
        if !c.is_ascii_hexdigit() {
            return nul_to_fffd(c);
        }
        let mut value = c.to_digit(16).unwrap_or(0);
        for _ in 0..5 {
            match self.peek().and_then(|c| c.to_digit(16)) {
                Some(d) => {
                    value = value * 16 + d;
                    self.bump();
                }
                None => break,
            }
        }
        if self.peek().is_some_and(is_ws) {
            self.bump_newline();
        }
        match char::from_u32(value) {
            Some(c) if value != 0 => c,
            _ => '\u{fffd}',
        }
    }

    /// Borrowed from the source unless it holds an escape.
    fn name(&mut self) -> Cow<'a, str> {
        let start = self.pos;
        while self.peek().is_some_and(is_name) {
            self.bump();
        }
        if !(self.peek() == Some('\\') && valid_escape(Some('\\'), self.peek_at(1))) {
            return Cow::Borrowed(&self.src[start..self.pos]);
        }
        let mut s = self.src[start..self.pos].to_string();
        loop {
            match self.peek() {
                Some(c) if is_name(c) => {
                    s.push(c);
                    self.bump();
                }
                Some('\\') if valid_escape(Some('\\'), self.peek_at(1)) => {
                    self.bump();
                    s.push(self.escape());
                }
                _ => return Cow::Owned(s),
            }
        }
    }

    fn numeric(&mut self) -> Tok {
        if matches!(self.peek(), Some('+' | '-')) {
            self.bump();
        }
        let digits = |lx: &mut Self| {
            while lx.peek().is_some_and(|c| c.is_ascii_digit()) {
                lx.bump();
            }
        };
        digits(self);
        let is_digit = |c: Option<char>| c.is_some_and(|c| c.is_ascii_digit());
        if self.peek() == Some('.') && is_digit(self.peek_at(1)) {
            self.bump();
            digits(self);
        }
        if matches!(self.peek(), Some('e' | 'E'))
            && (is_digit(self.peek_at(1))
                || (matches!(self.peek_at(1), Some('+' | '-')) && is_digit(self.peek_at(2))))
        {
            self.bump();
            self.bump();
            digits(self);
        }
        if starts_ident(self.peek(), self.peek_at(1), self.peek_at(2)) {
            self.name();
        } else if self.peek() == Some('%') {
            self.bump();
        }
        Tok::Other
    }

    fn ident_like(&mut self) -> Tok {
        let name = self.name();
        if self.peek() != Some('(') {
            return Tok::Other;
        }
        self.bump();
        let func = Func::of(&name);
        if func != Func::Url {
            return Tok::Function(func);
        }
        while self.peek().is_some_and(is_ws) && self.peek_at(1).is_some_and(is_ws) {
            self.bump();
        }
        let quote_next = |c: Option<char>| matches!(c, Some('"' | '\''));
        if quote_next(self.peek())
            || (self.peek().is_some_and(is_ws) && quote_next(self.peek_at(1)))
        {
            return Tok::Function(Func::Url);
        }
        self.url()
    }

    fn string(&mut self, quote: char) -> Tok {
        let start = self.pos;
        let mut value = String::new();
        loop {
            match self.peek() {
                None => {
                    return Tok::Str {
                        value,
                        range: start..self.pos,
                        quote,
                        bad: false,
                    }
                }
                Some(c) if c == quote => {
                    let end = self.pos;
                    self.bump();
                    return Tok::Str {
                        value,
                        range: start..end,
                        quote,
                        bad: false,
                    };
                }
                Some(c) if is_newline(c) => {
                    return Tok::Str {
                        value,
                        range: start..self.pos,
                        quote,
                        bad: true,
                    }
                }
                Some('\\') => {
                    self.bump();
                    match self.peek() {
                        None => {}
                        Some(c) if is_newline(c) => self.bump_newline(),
                        Some(_) => value.push(self.escape()),
                    }
                }
                Some(c) => {
                    value.push(nul_to_fffd(c));
                    self.bump();
                }
            }
        }
    }

    /// After `url(` and its leading whitespace.
    fn url(&mut self) -> Tok {
        while self.peek().is_some_and(is_ws) {
            self.bump();
        }
        let start = self.pos;
        let mut end = start;
        let mut value = String::new();
        loop {
            match self.peek() {
                None => break,
                Some(')') => {
                    self.bump();
                    break;
                }
                Some(c) if is_ws(c) => {
                    while self.peek().is_some_and(is_ws) {
                        self.bump();
                    }
                    match self.peek() {
                        None => break,
                        Some(')') => {
                            self.bump();
                            break;
                        }
                        Some(_) => return self.bad_url(),
                    }
                }
                Some('"' | '\'' | '(') => return self.bad_url(),
                Some(c) if is_non_printable(c) => return self.bad_url(),
                Some('\\') => {
                    if !valid_escape(Some('\\'), self.peek_at(1)) {
                        return self.bad_url();
                    }
                    self.bump();
                    value.push(self.escape());
                    end = self.pos;
                }
                Some(c) => {
                    value.push(c);
                    self.bump();
                    end = self.pos;
                }
            }
        }
        Tok::Url {
            value,
            range: start..end,
        }
    }

    fn bad_url(&mut self) -> Tok {
        loop {
            match self.peek() {
                None => break,
                Some(')') => {
                    self.bump();
                    break;
                }
                Some('\\') if valid_escape(Some('\\'), self.peek_at(1)) => {
                    self.bump();
                    self.escape();
                }
                Some(_) => {
                    self.bump();
                }
            }
        }
        Tok::BadUrl
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::assets::refs::assert_refs;

    fn check(src: &str, expected: &str) {
        assert_refs(src, &css_references(src), expected);
    }

    #[test]
    fn url_forms() {
        check(
            r#"a { background: url(img/a.png) }"#,
            "CssUrl@1:21 img/a.png = img/a.png",
        );
        check(
            r#"a { background: url( "b.png" ) url('c d.png') URL(  e.png  ) }"#,
            r#"
            CssUrl@1:23 "b.png" = b.png
            CssUrl@1:37 'c d.png' = c d.png
            CssUrl@1:53 e.png = e.png
            "#,
        );
        check(
            r"a { b: url(a\(1\)\ b.png) c: url(\31 23.png) d: url('x\'y\
z.png') }",
            r"
            CssUrl@1:12 a\(1\)\ b.png = a(1) b.png
            CssUrl@1:34 \31 23.png = 123.png
            CssUrl@1:54 'x\'y\
            z.png' = x'yz.png
            ",
        );
    }

    #[test]
    fn font_face_and_image_set() {
        check(
            r#"@font-face { font-family: X; src: url(f.eot?#iefix) format("embedded-opentype"),
  url("f.woff2") format("woff2"); }
.h { background: image-set("a.png" 1x, url(b.png) 2x, 'c.avif' type("image/avif"));
     background: -webkit-image-set("d.png" 1x); content: "e.png"; }"#,
            r#"
            CssUrl@1:39 f.eot?#iefix = f.eot?#iefix
            CssUrl@2:8 "f.woff2" = f.woff2
            CssUrl@3:29 "a.png" = a.png
            CssUrl@3:44 b.png = b.png
            CssUrl@3:56 'c.avif' = c.avif
            CssUrl@4:37 "d.png" = d.png
            "#,
        );
    }

    #[test]
    fn imports() {
        let src = r#"@import "a.css";
@import url(b.css) screen;
@IMPORT url( "c.css" ) layer(base);
@import /* c */ 'd.css';
.x { background: url(e.png) }"#;
        check(
            src,
            r#"
            CssImport@1:10 "a.css" = a.css
            CssImport@2:13 b.css = b.css
            CssImport@3:15 "c.css" = c.css
            CssImport@4:18 'd.css' = d.css
            CssUrl@5:22 e.png = e.png
            "#,
        );
        assert_eq!(css_imports(src).len(), 4);
    }

    #[test]
    fn source_map() {
        check(
            "a{}\n/*# sourceMappingURL=site.css.map */\n",
            "SourceMap@2:22 site.css.map = site.css.map",
        );
        check(
            "a{}\n/*@sourceMappingURL=x.map*/",
            "SourceMap@2:21 x.map = x.map",
        );
    }

    #[test]
    fn left_alone() {
        check(
            r#"/* url(a.png) @import "b.css"; */
a::before { content: "url(c.png)"; }
b { background: url(data:image/png;base64,iVBO=) }
/* unterminated url( */ c { x: url(bad url.png); y: url("bad
d { grid-area: 1 / 2; --x: "e.png"; z: format("f.woff") }
@import-not "x.css";
@media print { .y { } }
/* unterminated"#,
            r#"
            CssUrl@3:21 data:image/png;base64,iVBO= = data:image/png;base64,iVBO=
            "#,
        );
        check("", "");
        check("url(", "");
        check("a { b: url() }", "");
    }

    #[test]
    fn nul_reads_as_replacement_character() {
        // Found by `cargo xtask fuzz`: a raw NUL, an escaped one and the
        // escape `\0 ` (what a rewrite writes) decoded differently.
        check(
            "a { b: url('x\0.png') c: url('y\\0 .png') d: url('z\\\0.png') }",
            "CssUrl@1:13 'x\0.png' = x\u{fffd}.png\nCssUrl@1:30 'y\\0 .png' = y\u{fffd}.png\n\
             CssUrl@1:49 'z\\\0.png' = z\u{fffd}.png",
        );
    }

    #[test]
    fn non_ascii_columns() {
        check(".é { b: url(ü.png) }", "CssUrl@1:13 ü.png = ü.png");
    }

    #[test]
    fn hostile() {
        // Unterminated constructs at the end of the file.
        check("a{b:url(a.png", "CssUrl@1:9 a.png = a.png");
        check("a{b:url('a.png", "CssUrl@1:10 'a.png' = a.png");
        check("@import 'a.css", "CssImport@1:10 'a.css' = a.css");
        check("a{b:url(a\\", "CssUrl@1:9 a\\ = a\u{fffd}");
        check("/* url(a.png)", "");
        check("a{b:'url(a.png)", "");
        // A NUL inside url() makes it a bad url; elsewhere it is one char.
        check("a{b:url(a\0.png)}", "");
        check("\0a{b:url(c.png)}", "CssUrl@1:10 c.png = c.png");
        // CR, CRLF and LF all end lines.
        check(
            "a{}\r\nb{c:url(a.png)}\rd{e:url(b.png)}\nf{g:url(c.png)}",
            r"
            CssUrl@2:9 a.png = a.png
            CssUrl@3:9 b.png = b.png
            CssUrl@4:9 c.png = c.png
            ",
        );
        // Deep nesting: a url() inside is still found, a string inside an
        // unknown function still is not.
        let deep = format!("a{{b:{}url(d.png) 'e.png'", "f(".repeat(100_000));
        let refs = css_references(&deep);
        assert_eq!(refs.len(), 1);
        assert_eq!((refs[0].value.as_str(), refs[0].column), ("d.png", 200_009));
    }

    #[test]
    fn many_urls_on_one_line() {
        let src = ".a{b:url(i.png)}".repeat(20_000);
        let refs = css_references(&src);
        assert_eq!(refs.len(), 20_000);
        for (i, r) in refs.iter().enumerate() {
            assert_eq!((r.line, r.column), (1, i as u32 * 16 + 10));
        }
    }
}
