//! Finds module references in JavaScript with a real lexer (strings, template
//! literals with nested `${}`, comments, regex literals told apart from
//! division by the previous significant token), so that specifiers are only
//! rewritten where they are actual `import`/`export`/`import()`/`new URL()`
//! syntax, never inside strings, comments or identifiers that merely contain
//! the word `import`.

use crate::assets::refs::{fill_positions, impl_cursor, Cursor, RefKind, Reference};
use std::borrow::Cow;
use std::collections::VecDeque;
use std::ops::Range;

/// Tokens the matcher sees past the current one: `new URL("m",
/// import.meta.url,)` is the longest pattern, `new` and eleven more.
const LOOKAHEAD: usize = 11;

/// All references in a JS module: static `import`/`export ... from`, bare
/// `import "m"`, `import("m")` with one string literal, `new URL("m",
/// import.meta.url)` and a trailing `//# sourceMappingURL=` comment.
///
/// One pass over a stream of tokens: only the current token and the few
/// after it are held, so memory does not grow with the file.
pub fn js_references(src: &str) -> Vec<Reference> {
    js_scan(src).refs
}

/// What [`js_scan`] finds in a script.
#[derive(Debug, Default)]
pub struct JsScan {
    /// Every reference, as [`js_references`] returns them.
    pub refs: Vec<Reference>,
    /// Whether the script uses syntax only a module may (a static `import`
    /// or `export`, `import.meta`): a classic script has none, so advice
    /// for it must not use them.
    pub module: bool,
}

/// [`js_references`], and whether the script is written as a module.
pub fn js_scan(src: &str) -> JsScan {
    let mut lx = Lexer::new(src);
    let mut module = false;
    let mut after_dot = false;
    let mut clause = Clause::default();
    let mut refs = Vec::new();
    loop {
        while lx.toks.len() <= LOOKAHEAD && lx.step() {}
        // The lexer's queue is the window: the current token and the few
        // after it.
        let win = &lx.toks;
        let Some(t) = win.front() else {
            break;
        };
        let next = win.get(1);
        if clause.step(t, next) {
            if let Some(s) = next {
                refs.push(s.reference(RefKind::JsImport));
                module = true;
            }
        }
        // `importScripts("a.js", "b.js")` in a classic worker: URLs
        // resolved against the worker script's own URL.
        if t.kind == Kind::Ident && t.value == "importScripts" {
            refs.extend(string_arguments(win, 1).map(|s| s.reference(RefKind::JsImportScripts)));
        }
        // `obj.import(...)` and `a?.new` are property names, not syntax.
        if t.kind == Kind::Ident && !after_dot {
            match &*t.value {
                "import" => match next {
                    Some(n) if n.is_punct("(") => {
                        if let (Some(s), Some(close)) = (win.get(2), win.get(3)) {
                            if s.kind == Kind::Str && (close.is_punct(")") || close.is_punct(",")) {
                                refs.push(s.reference(RefKind::JsDynamicImport));
                            }
                        }
                    }
                    Some(n) if n.kind == Kind::Str => {
                        refs.push(n.reference(RefKind::JsImport));
                        module = true;
                    }
                    Some(n) if n.is_punct(".") => module = true, // import.meta
                    Some(_) => clause.start(),
                    None => {}
                },
                "export" if next.is_some_and(|n| n.is_punct("*") || n.is_punct("{")) => {
                    clause.start();
                    module = true;
                }
                "export" => module = true,
                "new" => {
                    if let Some(s) = new_url(win) {
                        refs.push(s.reference(RefKind::JsNewUrl));
                    } else if let Some(s) = new_worker(win) {
                        refs.push(s.reference(RefKind::JsWorker));
                    }
                }
                _ => {}
            }
        }
        // `navigator.serviceWorker.register("…")`, or the same on any
        // other object: `serviceWorker` is a property name either way.
        if t.kind == Kind::Ident && t.value == "serviceWorker" {
            if let Some(s) = call_with_string(win, 1, "register") {
                refs.push(s.reference(RefKind::JsServiceWorker));
            }
        }
        after_dot = t.is_punct(".") || t.is_punct("?.");
        lx.toks.pop_front();
    }
    refs.extend(lx.source_map);
    refs.sort_by_key(|r| r.range.start);
    fill_positions(src, &mut refs);
    JsScan { refs, module }
}

/// The scans for the module specifier after an import/export clause, e.g.
/// the string in `import a, {b as c} from "m"` or `export * as ns from
/// "m"`, each started at the token after `import`/`export`. A scan is in
/// one of three states, and two scans in the same state at the same token
/// go the same way from there on: a set of states stands for all of them,
/// so the work stays linear however many scans overlap (`import,import,…`).
#[derive(Default)]
struct Clause {
    /// At the top level, nothing of the clause seen yet.
    fresh: bool,
    /// At the top level, after a name, `*`, `,` or `{…}`.
    seen: bool,
    /// Inside `{…}`.
    braces: bool,
}

impl Clause {
    /// Starts a scan at the next token.
    fn start(&mut self) {
        self.fresh = true;
    }

    /// Moves every scan past `t`; true when one ends on `from` followed by
    /// the specifier `next`.
    fn step(&mut self, t: &Tok, next: Option<&Tok>) -> bool {
        let mut after = Clause::default();
        let mut found = false;
        for (active, seen) in [(self.fresh, false), (self.seen, true)] {
            if !active {
                continue;
            }
            match t.kind {
                Kind::Ident
                    if seen && t.value == "from" && next.is_some_and(|s| s.kind == Kind::Str) =>
                {
                    found = true;
                }
                Kind::Ident => after.seen = true,
                Kind::Punct if t.value == "*" || t.value == "," => after.seen = true,
                Kind::Punct if t.value == "{" => after.braces = true,
                _ => {} // not a clause: the scan ends
            }
        }
        if self.braces {
            match t.kind {
                Kind::Punct if t.value == "}" => after.seen = true,
                Kind::Punct if t.value == "," => after.braces = true,
                Kind::Ident | Kind::Str => after.braces = true,
                _ => {}
            }
        }
        *self = after;
        found
    }
}

/// `URL ( "m" , import . meta . url [,] )` following `new` (`win[0]`).
fn new_url<'t, 'a>(win: &'t VecDeque<Tok<'a>>) -> Option<&'t Tok<'a>> {
    let is_ident = |i: usize, v: &str| {
        win.get(i)
            .is_some_and(|t| t.kind == Kind::Ident && t.value == v)
    };
    let is_punct = |i: usize, v: &str| win.get(i).is_some_and(|t| t.is_punct(v));
    let ok = is_ident(1, "URL")
        && is_punct(2, "(")
        && win.get(3).is_some_and(|t| t.kind == Kind::Str)
        && is_punct(4, ",")
        && is_ident(5, "import")
        && is_punct(6, ".")
        && is_ident(7, "meta")
        && is_punct(8, ".")
        && is_ident(9, "url")
        && (is_punct(10, ")") || (is_punct(10, ",") && is_punct(11, ")")));
    if ok {
        win.get(3)
    } else {
        None
    }
}

/// `Worker ( "m" )` or `SharedWorker ( "m" , …` following `new`
/// (`win[0]`): the string names the worker's script.
fn new_worker<'t, 'a>(win: &'t VecDeque<Tok<'a>>) -> Option<&'t Tok<'a>> {
    let ctor = win.get(1)?;
    if ctor.kind != Kind::Ident || !matches!(&*ctor.value, "Worker" | "SharedWorker") {
        return None;
    }
    string_argument(win, 2)
}

/// `. name ( "m" )` or `. name ( "m" , …` starting at `win[at]`.
fn call_with_string<'t, 'a>(
    win: &'t VecDeque<Tok<'a>>,
    at: usize,
    name: &str,
) -> Option<&'t Tok<'a>> {
    let dot = win.get(at)?.is_punct(".") || win.get(at)?.is_punct("?.");
    let method = win.get(at + 1)?;
    if !dot || method.kind != Kind::Ident || method.value != name {
        return None;
    }
    string_argument(win, at + 2)
}

/// `( "m" )` or `( "m" , …` starting at `win[at]`: the first argument,
/// when it is one string literal.
fn string_argument<'t, 'a>(win: &'t VecDeque<Tok<'a>>, at: usize) -> Option<&'t Tok<'a>> {
    let s = win.get(at + 1)?;
    let close = win.get(at + 2)?;
    let ok = win.get(at)?.is_punct("(")
        && s.kind == Kind::Str
        && (close.is_punct(")") || close.is_punct(","));
    ok.then_some(s)
}

/// `( "a" , "b" … )` starting at `win[at]`: every argument, while each is
/// one string literal (as far as the window reaches).
fn string_arguments<'t, 'a>(
    win: &'t VecDeque<Tok<'a>>,
    at: usize,
) -> impl Iterator<Item = &'t Tok<'a>> {
    let open = win.get(at).is_some_and(|t| t.is_punct("("));
    let mut i = at + 1;
    let mut done = !open;
    std::iter::from_fn(move || {
        if done {
            return None;
        }
        let (s, after) = (win.get(i)?, win.get(i + 1)?);
        if s.kind != Kind::Str || !(after.is_punct(",") || after.is_punct(")")) {
            done = true;
            return None;
        }
        done = after.is_punct(")");
        i += 2;
        Some(s)
    })
}

/// `//# sourceMappingURL=url` or the legacy `//@ sourceMappingURL=url`.
fn source_map_comment(src: &str, range: Range<usize>) -> Option<Reference> {
    let text = src.get(range.clone())?;
    let rest = text.strip_prefix("//")?.strip_prefix(['#', '@'])?;
    let trimmed = rest.trim_start_matches([' ', '\t']);
    let url_part = trimmed.strip_prefix("sourceMappingURL=")?;
    let len = url_part
        .find(|c: char| c.is_whitespace())
        .unwrap_or(url_part.len());
    if len == 0 {
        return None;
    }
    let start = range.end - url_part.len();
    Some(Reference {
        range: start..start + len,
        value: url_part[..len].to_string(),
        line: 0,
        column: 0,
        kind: RefKind::SourceMap,
        quote: None,
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Ident,
    Punct,
    /// String literal; `range` excludes the quotes, `value` is decoded.
    Str,
    /// A template literal chunk (up to a `${` or the closing backtick).
    Template,
    Number,
    Regex,
}

#[derive(Debug)]
struct Tok<'a> {
    kind: Kind,
    range: Range<usize>,
    /// Borrowed from the source except for decoded string literals.
    value: Cow<'a, str>,
    quote: Option<char>,
}

impl Tok<'_> {
    fn is_punct(&self, p: &str) -> bool {
        self.kind == Kind::Punct && self.value == p
    }

    fn reference(&self, kind: RefKind) -> Reference {
        Reference {
            range: self.range.clone(),
            value: self.value.to_string(),
            line: 0,
            column: 0,
            kind,
            quote: self.quote,
        }
    }
}

fn is_line_terminator(c: char) -> bool {
    matches!(c, '\n' | '\r' | '\u{2028}' | '\u{2029}')
}

fn is_ident_start(c: char) -> bool {
    c.is_ascii_alphabetic()
        || c == '$'
        || c == '_'
        || c == '\\'
        || (!c.is_ascii() && !c.is_whitespace())
}

fn is_ident_part(c: char) -> bool {
    is_ident_start(c) || c.is_ascii_digit() || c == '\u{200c}' || c == '\u{200d}'
}

/// Keywords after which a `/` starts a regular expression.
const REGEX_AFTER: &[&str] = &[
    "return",
    "typeof",
    "instanceof",
    "in",
    "of",
    "new",
    "delete",
    "void",
    "throw",
    "case",
    "do",
    "else",
    "yield",
    "await",
    "extends",
];

struct Lexer<'a> {
    src: &'a str,
    pos: usize,
    /// One entry per open `{`: `true` if it is a template `${`.
    braces: Vec<bool>,
    /// One entry per open `(`: `true` if it holds the condition of `if`,
    /// `while`, `for` or `with`, after which `/` starts a regex.
    parens: Vec<bool>,
    regex_ok: bool,
    /// The last token is `if`, `while`, `for` or `with`.
    after_control: bool,
    /// Tokens lexed and not yet taken by the caller.
    toks: VecDeque<Tok<'a>>,
    /// The last `sourceMappingURL` comment after the last token.
    source_map: Option<Reference>,
}

impl_cursor!(Lexer);

impl<'a> Lexer<'a> {
    fn new(src: &'a str) -> Self {
        let mut lx = Lexer {
            src,
            pos: 0,
            braces: Vec::new(),
            parens: Vec::new(),
            regex_ok: true,
            after_control: false,
            toks: VecDeque::with_capacity(LOOKAHEAD + 2),
            source_map: None,
        };
        if src.starts_with("#!") {
            lx.line_comment();
        }
        lx
    }

    fn push(
        &mut self,
        kind: Kind,
        start: usize,
        value: impl Into<Cow<'a, str>>,
        quote: Option<char>,
    ) {
        let value = value.into();
        self.regex_ok = match kind {
            Kind::Ident => REGEX_AFTER.contains(&&*value),
            Kind::Punct if value == "(" => {
                self.parens.push(self.after_control);
                true
            }
            Kind::Punct if value == ")" => self.parens.pop().unwrap_or(false),
            Kind::Punct => !matches!(&*value, "]" | "++" | "--"),
            Kind::Str | Kind::Number | Kind::Regex => false,
            Kind::Template => value == "${",
        };
        self.after_control =
            kind == Kind::Ident && matches!(&*value, "if" | "while" | "for" | "with");
        self.source_map = None;
        self.toks.push_back(Tok {
            kind,
            range: start..self.pos,
            value,
            quote,
        });
    }

    fn comment(&mut self, range: Range<usize>) {
        if let Some(r) = source_map_comment(self.src, range) {
            self.source_map = Some(r);
        }
    }

    fn line_comment(&mut self) {
        let start = self.pos;
        while self.peek().is_some_and(|c| !is_line_terminator(c)) {
            self.bump();
        }
        self.comment(start..self.pos);
    }

    /// Lexes one token (or comment / whitespace run); false at end of input.
    fn step(&mut self) -> bool {
        let Some(c) = self.peek() else {
            return false;
        };
        let start = self.pos;
        let c1 = self.peek_at(1);
        match c {
            c if c.is_whitespace() || c == '\u{feff}' => {
                let rest = &self.src[start..];
                let end = rest
                    .find(|c: char| !(c.is_whitespace() || c == '\u{feff}'))
                    .unwrap_or(rest.len());
                self.pos = start + end;
            }
            '/' if c1 == Some('/') => self.line_comment(),
            '/' if c1 == Some('*') => {
                self.pos = self.src[start + 2..]
                    .find("*/")
                    .map_or(self.src.len(), |i| start + 2 + i + 2);
                self.comment(start..self.pos);
            }
            '/' if self.regex_ok => self.regex(),
            '\'' | '"' => {
                self.bump();
                self.string(c);
            }
            '`' => {
                self.bump();
                self.template(start);
            }
            '{' => {
                self.bump();
                self.braces.push(false);
                self.push(Kind::Punct, start, "{", None);
            }
            '}' => {
                self.bump();
                if self.braces.pop() == Some(true) {
                    self.template(start);
                } else {
                    self.push(Kind::Punct, start, "}", None);
                }
            }
            c if c.is_ascii_digit() || (c == '.' && c1.is_some_and(|c| c.is_ascii_digit())) => {
                self.number()
            }
            c if is_ident_start(c) || c == '#' => {
                self.bump();
                while self.peek().is_some_and(is_ident_part) {
                    self.bump();
                }
                let value = &self.src[start..self.pos];
                self.push(Kind::Ident, start, value, None);
            }
            _ => {
                let rest = &self.src[self.pos..];
                let len = if rest.starts_with("...") {
                    3
                } else if rest.starts_with("?.")
                    && !rest[2..].starts_with(|c: char| c.is_ascii_digit())
                    || rest.starts_with("++")
                    || rest.starts_with("--")
                    || rest.starts_with("=>")
                {
                    2
                } else {
                    c.len_utf8()
                };
                self.pos += len;
                let value = &self.src[start..self.pos];
                self.push(Kind::Punct, start, value, None);
            }
        }
        true
    }

    fn number(&mut self) {
        let start = self.pos;
        let hex_like = self.src[start..].len() > 1
            && self.src[start..].starts_with('0')
            && matches!(self.peek_at(1), Some('x' | 'X' | 'b' | 'B' | 'o' | 'O'));
        let mut prev = '\0';
        while let Some(c) = self.peek() {
            let sign_ok = matches!(c, '+' | '-') && matches!(prev, 'e' | 'E') && !hex_like;
            if c.is_ascii_alphanumeric() || c == '_' || c == '.' || sign_ok {
                prev = c;
                self.bump();
            } else {
                break;
            }
        }
        let value = &self.src[start..self.pos];
        self.push(Kind::Number, start, value, None);
    }

    fn regex(&mut self) {
        let start = self.pos;
        self.bump();
        let mut in_class = false;
        while let Some(c) = self.peek() {
            if is_line_terminator(c) {
                break;
            }
            self.bump();
            match c {
                '\\' if self.peek().is_some_and(|c| !is_line_terminator(c)) => {
                    self.bump();
                }
                '[' => in_class = true,
                ']' => in_class = false,
                '/' if !in_class => break,
                _ => {}
            }
        }
        while self.peek().is_some_and(is_ident_part) {
            self.bump();
        }
        let value = &self.src[start..self.pos];
        self.push(Kind::Regex, start, value, None);
    }

    /// After an opening backtick or the `}` closing a substitution. A
    /// whole template without substitutions (`` `./lazy.js` ``, as
    /// bundlers write specifiers) is a string: a [`Kind::Str`] whose value
    /// is the template's cooked text.
    fn template(&mut self, start: usize) {
        let whole = self.src[start..].starts_with('`');
        let mut value = String::new();
        let end = loop {
            let at = self.pos;
            let Some(c) = self.bump() else {
                break None;
            };
            match c {
                '\\' => self.escape(&mut value),
                '`' => break Some(at),
                '$' if self.peek() == Some('{') => {
                    self.bump();
                    self.braces.push(true);
                    self.push(Kind::Template, start, "${", None);
                    return;
                }
                // A line break in a template is cooked to `\n`.
                '\r' => {
                    if self.peek() == Some('\n') {
                        self.bump();
                    }
                    value.push('\n');
                }
                c => value.push(c),
            }
        };
        match end {
            Some(end) if whole => {
                self.push(Kind::Str, start, value, Some('`'));
                if let Some(t) = self.toks.back_mut() {
                    t.range = start + 1..end;
                }
            }
            _ => self.push(Kind::Template, start, "`", None),
        }
    }

    fn string(&mut self, quote: char) {
        let start = self.pos;
        let mut value = String::new();
        let end = loop {
            let Some(c) = self.peek() else {
                break self.pos;
            };
            if c == quote {
                let end = self.pos;
                self.bump();
                break end;
            }
            if matches!(c, '\n' | '\r') {
                break self.pos; // unterminated
            }
            self.bump();
            if c == '\\' {
                self.escape(&mut value);
            } else {
                value.push(c);
            }
        };
        self.push(Kind::Str, start, value, Some(quote));
        if let Some(t) = self.toks.back_mut() {
            t.range = start..end;
        }
    }

    /// Decodes the escape sequence after a `\\` in a string or template.
    fn escape(&mut self, value: &mut String) {
        let Some(e) = self.bump() else {
            return;
        };
        match e {
            'n' => value.push('\n'),
            't' => value.push('\t'),
            'r' => value.push('\r'),
            'b' => value.push('\u{8}'),
            'f' => value.push('\u{c}'),
            'v' => value.push('\u{b}'),
            '0' if !self.peek().is_some_and(|c| c.is_ascii_digit()) => value.push('\0'),
            '\r' => {
                if self.peek() == Some('\n') {
                    self.bump();
                }
            }
            '\n' | '\u{2028}' | '\u{2029}' => {}
            'x' => {
                let hex = self.take_hex(2);
                push_code(value, hex, 'x');
            }
            'u' => {
                if self.peek() == Some('{') {
                    self.bump();
                    let hex = self.take_hex(6);
                    if self.peek() == Some('}') {
                        self.bump();
                    }
                    push_code(value, hex, 'u');
                } else {
                    let hex = self.take_hex(4);
                    push_code(value, hex, 'u');
                }
            }
            other => value.push(other),
        }
    }

    fn take_hex(&mut self, max: usize) -> Option<u32> {
        let mut v: u32 = 0;
        let mut n = 0;
        while n < max {
            match self.peek().and_then(|c| c.to_digit(16)) {
                Some(d) => {
                    v = v * 16 + d;
                    n += 1;
                    self.bump();
                }
                None => break,
            }
        }
        (n > 0).then_some(v)
    }
}

fn push_code(value: &mut String, code: Option<u32>, escape: char) {
    match code.and_then(char::from_u32) {
        Some(c) => value.push(c),
        None => value.push(escape),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::assets::refs::assert_refs;

    fn check(src: &str, expected: &str) {
        assert_refs(src, &js_references(src), expected);
    }

    #[test]
    fn static_imports() {
        check(
            r#"import x from "./a.js";
import {a as b, c} from './b.js'
import * as ns from "./c.js";
import d, {e} from "./d.js";
import "./e.js";
import {from} from "./f.js";
import
  g
  from
  "./g.js";
import json from "./h.json" with { type: "json" };
"#,
            r#"
            JsImport@1:16 "./a.js" = ./a.js
            JsImport@2:26 './b.js' = ./b.js
            JsImport@3:22 "./c.js" = ./c.js
            JsImport@4:21 "./d.js" = ./d.js
            JsImport@5:9 "./e.js" = ./e.js
            JsImport@6:21 "./f.js" = ./f.js
            JsImport@10:4 "./g.js" = ./g.js
            JsImport@11:19 "./h.json" = ./h.json
            "#,
        );
    }

    #[test]
    fn exports() {
        check(
            r#"export {x} from "./a.js";
export * from './b.js';
export * as ns from "./c.js";
export { default as y, "z-z" as z } from "./d.js";
export {x};
export const from = "./no.js";
export default "./no2.js";
"#,
            r#"
            JsImport@1:18 "./a.js" = ./a.js
            JsImport@2:16 './b.js' = ./b.js
            JsImport@3:22 "./c.js" = ./c.js
            JsImport@4:43 "./d.js" = ./d.js
            "#,
        );
    }

    #[test]
    fn dynamic_and_new_url() {
        check(
            r#"const m = await import("./lazy.js");
import('./x.js', { with: { type: "json" } });
import(`./t-${name}.js`); import("./a" + b); import(name);
const u = new URL("./img/a.png", import.meta.url);
new Worker(new URL('./w.js', import.meta.url,), { type: "module" });
new URL("./no.png", location.href); new URL("./no2.png");
console.log(import.meta.url);
"#,
            r#"
            JsDynamicImport@1:25 "./lazy.js" = ./lazy.js
            JsDynamicImport@2:9 './x.js' = ./x.js
            JsNewUrl@4:20 "./img/a.png" = ./img/a.png
            JsNewUrl@5:21 './w.js' = ./w.js
            "#,
        );
    }

    #[test]
    fn workers_and_service_workers() {
        check(
            r#"const w = new Worker("/static/js/w.js", { type: "module" });
new SharedWorker('./shared.js'); new Worker(`./t.js`);
navigator.serviceWorker.register("/sw.js", { scope: "/" });
await navigator?.serviceWorker.register('./sw2.js');
new Worker(new URL("./u.js", import.meta.url));
new Worker(name); new Worker("./a" + b); new Worker(`./${x}.js`);
obj.new Worker("./no.js"); serviceWorker.register(url); serviceWorker.unregister("./no2.js");
const s = 'new Worker("./no3.js")'; // new Worker("./no4.js")
"#,
            r#"
            JsWorker@1:23 "/static/js/w.js" = /static/js/w.js
            JsWorker@2:19 './shared.js' = ./shared.js
            JsWorker@2:46 `./t.js` = ./t.js
            JsServiceWorker@3:35 "/sw.js" = /sw.js
            JsServiceWorker@4:42 './sw2.js' = ./sw2.js
            JsNewUrl@5:21 "./u.js" = ./u.js
            "#,
        );
    }

    #[test]
    fn import_scripts() {
        check(
            r#"importScripts('sw-lib.js');
self.importScripts("a.js", `b.js`, 'c.js');
importScripts(name); importScripts("d.js" + x); importScripts();
const s = "importScripts('no.js')";
"#,
            r#"
            JsImportScripts@1:16 'sw-lib.js' = sw-lib.js
            JsImportScripts@2:21 "a.js" = a.js
            JsImportScripts@2:29 `b.js` = b.js
            JsImportScripts@2:37 'c.js' = c.js
            "#,
        );
    }

    #[test]
    fn modules_are_told_from_classic_scripts() {
        for (src, module) in [
            ("navigator.serviceWorker.register('sw.js');", false),
            (
                "importScripts('a.js'); const x = { import: 1 }; x.export = 2;",
                false,
            ),
            ("import './a.js';", true),
            ("import { a } from './a.js';", true),
            ("export const a = 1;", true),
            ("export { a };", true),
            ("new URL('./a.png', import.meta.url);", true),
            ("const m = await import('./a.js');", false),
        ] {
            assert_eq!(js_scan(src).module, module, "{src}");
        }
    }

    #[test]
    fn template_literal_specifiers() {
        // Vite 8 (rolldown) writes every string as a template literal:
        // `f(()=>import(`./lazy-B2qQgaqo.js`).then(e=>e.run()),[])`.
        check(
            "f(()=>import(`./lazy-B2qQgaqo.js`).then(e=>e.run()),[]);\n\
             new URL(`./a\\u0062\\`\\${x}.svg`, import.meta.url);\n\
             import(`./t-${name}.js`); tag`./no.js`; import(`./no2.js` + x);\n\
             const s = `import(`;",
            r#"
            JsDynamicImport@1:15 `./lazy-B2qQgaqo.js` = ./lazy-B2qQgaqo.js
            JsNewUrl@2:10 `./a\u0062\`\${x}.svg` = ./ab`${x}.svg
            "#,
        );
        // A rewrite inside a template reads back as what was written.
        for url in [
            "./a.js",
            "./$.js",
            "./${x}.js",
            "./`.js",
            "./\\.js",
            "./a\nb.js",
        ] {
            let mut r = js_references("import(`./x.js`)").remove(0);
            let src = format!("import(`{}`)", crate::assets::refs::encode_for(&r, url));
            r = js_references(&src).remove(0);
            assert_eq!(
                (r.kind, r.quote, r.value.as_str()),
                (RefKind::JsDynamicImport, Some('`'), url),
                "{src}"
            );
        }
        // A line break in a template is cooked to `\n`, whichever it is.
        let refs = js_references("import(`./a\r\nb.js`); import(`./c\rd.js`)");
        let values: Vec<&str> = refs.iter().map(|r| r.value.as_str()).collect();
        assert_eq!(values, ["./a\nb.js", "./c\nd.js"]);
    }

    #[test]
    fn a_clause_ends_at_the_next_import_or_export() {
        // The first `import` used to scan on to the second one's `from`:
        // the same specifier was reported twice, and a file of `import
        // import …` took quadratic time.
        check(
            "import x\nimport y from './b.js'\nexport * export {a} from './c.js'",
            r#"
            JsImport@2:16 './b.js' = ./b.js
            JsImport@3:27 './c.js' = ./c.js
            "#,
        );
        check(&"import ".repeat(1000), "");
    }

    #[test]
    fn left_alone() {
        check(
            r#"const s = "import('x.js')"; const t = 'import "y.js"';
// import "z.js"
/* import x from "w.js" */
reimport("a.js"); obj.import("b.js"); obj?.import("c.js"); _import("d.js");
const o = { import: "e.js", from: "f.js" };
const tpl = `${ "}" + `import("g.js")` } import("h.js") ${ '`' }`;
const re = /"/g; const re2 = /import("i.js")/; const re3 = /[/"]/;
const d = a / 2 / "j.js";
if (x) { y(); } /'/.test(z); import("k.js");
if (x) /'/.test(z); while (f(a)) /"/.exec(b); const q = (a) / 2 / "l.js"; import("m.js");
"#,
            r#"
            JsDynamicImport@9:38 "k.js" = k.js
            JsDynamicImport@10:83 "m.js" = m.js
            "#,
        );
    }

    #[test]
    fn template_with_quotes_and_nesting() {
        check(
            "const a = `it's \"${ {b: `c${'}'}`}.b }\" ${x}`;\nimport y from './y.js';",
            "JsImport@2:16 './y.js' = ./y.js",
        );
    }

    #[test]
    fn string_escapes() {
        check(
            r#"import a from "./\x61\u0062\u{63}\'.js";"#,
            r#"JsImport@1:16 "./\x61\u0062\u{63}\'.js" = ./abc'.js"#,
        );
    }

    #[test]
    fn source_map() {
        check(
            "f();\n//# sourceMappingURL=app.js.map\n",
            "SourceMap@2:22 app.js.map = app.js.map",
        );
        check(
            "f();\n//@ sourceMappingURL=app.js.map",
            "SourceMap@2:22 app.js.map = app.js.map",
        );
        // Not trailing: code follows it.
        check("//# sourceMappingURL=a.map\nf();\n", "");
        // Inside a string, not a comment.
        check("f('\\n//# sourceMappingURL=a.map')", "");
        // Block comments are not the recognised form.
        check("f();\n/*# sourceMappingURL=a.map */", "");
    }

    #[test]
    fn hashbang_and_empty() {
        check(
            "#!/usr/bin/env node\nimport './a.js'",
            "JsImport@2:9 './a.js' = ./a.js",
        );
        check("", "");
        check(
            "'unterminated\nimport './b.js'",
            "JsImport@2:9 './b.js' = ./b.js",
        );
    }

    #[test]
    fn overlapping_clauses() {
        check(
            r#"import {import, export} from "./a.js"; export {from} from './b.js';
import a, import b from "./c.js"; import import from "./d.js";"#,
            r#"
            JsImport@1:31 "./a.js" = ./a.js
            JsImport@1:60 './b.js' = ./b.js
            JsImport@2:26 "./c.js" = ./c.js
            JsImport@2:55 "./d.js" = ./d.js
            "#,
        );
        // Every `import` starts a clause scan that runs to the end: one
        // reference, found in one pass.
        let src = format!("{}from './e.js'", "import,".repeat(100_000));
        let refs = js_references(&src);
        assert_eq!(refs.len(), 1, "{:?}", refs.first());
        assert_eq!(refs[0].column, 700_007);
    }

    #[test]
    fn hostile() {
        // Unterminated constructs at the end of the file.
        check("/* import './a.js'", "");
        check(
            "`${import('./a.js')",
            "JsDynamicImport@1:12 './a.js' = ./a.js",
        );
        check("x = /import('./a.js')", "");
        check("x = '", "");
        check("import './a.js", "JsImport@1:9 './a.js' = ./a.js");
        // NUL bytes are tokens like any other; CR, CRLF and LF all end lines.
        check(
            "\0import './a.js'\r\n\0import './b.js'\rimport \"./c.js\"\n",
            r#"
            JsImport@1:10 './a.js' = ./a.js
            JsImport@2:10 './b.js' = ./b.js
            JsImport@3:9 "./c.js" = ./c.js
            "#,
        );
        // Deep nesting of every kind of bracket.
        let deep = format!(
            "{}{}{}import('./d.js')",
            "(".repeat(100_000),
            "{".repeat(100_000),
            "`${".repeat(100_000)
        );
        let refs = js_references(&deep);
        assert_eq!(refs.len(), 1);
        assert_eq!(refs[0].column, 500_009);
        // The last source map comment after the last token wins, whatever
        // comments come between.
        check(
            &format!(
                "f();\n//# sourceMappingURL=a.map\n//# sourceMappingURL=b.map\n{}//",
                "/**/".repeat(10_000)
            ),
            "SourceMap@3:22 b.map = b.map",
        );
    }
}
