//! Tests of the whole pipeline, [`fingerprint`] run on small trees; each
//! concern's own tests are in the files beside this one. The helpers here
//! are shared by all of them.

use super::edit::new_url;
use super::*;
use crate::assets::sri;
use crate::assets::url::UrlOptions;
use crate::digest::Digest;
use globset::GlobSet;
use sha2::Digest as _;
use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};

mod cycles;
mod hash_dirs;
mod import_maps;
mod integrity;
mod naming;
mod sites;

fn input(files: &[(&str, &str)]) -> Input {
    Input {
        files: files
            .iter()
            .map(|(p, c)| (p.to_string(), c.as_bytes().to_vec()))
            .collect(),
        url: UrlOptions {
            public_prefix: "/static/".into(),
            cdn_base: Some("https://cdn.example.com/static/".into()),
        },
        ..Input::default()
    }
}

/// An [`Output`] with the final bytes of every file of
/// [`Input::files`], by final name.
#[derive(Debug, PartialEq)]
struct Run {
    out: Output,
    bytes: BTreeMap<String, Vec<u8>>,
}

impl std::ops::Deref for Run {
    type Target = Output;
    fn deref(&self) -> &Output {
        &self.out
    }
}

impl Run {
    fn bytes_of(&self, f: &OutFile) -> &[u8] {
        &self.bytes[&f.name]
    }
}

fn run(inp: &Input) -> Run {
    let out = match fingerprint(inp) {
        Ok(o) => o,
        Err(e) => panic!("{}", e.iter().map(|e| format!("{e}\n")).collect::<String>()),
    };
    let bytes = out
        .files
        .iter()
        .filter_map(|(p, f)| Some((f.name.clone(), out.bytes(inp, p)?.into_owned())))
        .collect();
    Run { out, bytes }
}

fn text(out: &Run, path: &str) -> String {
    String::from_utf8(out.bytes_of(&out.files[path]).to_vec()).expect("utf8")
}

#[test]
fn a_base_href_is_what_the_page_resolves_against() {
    let files = [
        ("css/site.css", "body { color: red }"),
        ("sub/css/site.css", "p { color: blue }"),
    ];
    let page = |base: &str| {
        format!(
            "<base href=\"{base}\"><link rel=stylesheet href=\"css/site.css\">\
                 <img src=\"https://cdn.example.com/static/sub/css/site.css\">"
        )
    };
    let name = |out: &Run, p: &str| out.files[p].name.clone();
    for (base, target) in [
        ("/static/", "css/site.css"),
        ("/static/index.html?x=1", "css/site.css"),
        ("../", "css/site.css"),
        ("", "sub/css/site.css"),
        ("https://cdn.example.com/static/sub/", "sub/css/site.css"),
    ] {
        let mut all = files.to_vec();
        let html = page(base);
        all.push(("sub/page.html", &html));
        let out = run(&input(&all));
        let text = text(&out, "sub/page.html");
        let written = name(&out, target);
        let relative = written.rsplit('/').take(2).collect::<Vec<_>>();
        assert!(
            text.contains(&format!("href=\"css/{}\"", relative[0])),
            "base {base:?} names {target}: {text}"
        );
        let want: BTreeSet<&str> = [target, "sub/css/site.css"].into();
        let refs = &out.files["sub/page.html"].references;
        assert_eq!(
            refs.iter().map(String::as_str).collect::<BTreeSet<_>>(),
            want
        );
        assert!(
            text.contains(&format!("<base href=\"{base}\">")),
            "left as written"
        );
    }
    // A base outside the tree: relative URLs point there, whatever the
    // tree holds; absolute ones still name the tree's files.
    let html = page("https://elsewhere.example/app/");
    let mut all = files.to_vec();
    all.push(("sub/page.html", &html));
    let out = run(&input(&all));
    let text = text(&out, "sub/page.html");
    assert!(text.contains("href=\"css/site.css\""), "{text}");
    assert!(text.contains(&name(&out, "sub/css/site.css")), "{text}");
    // One that climbs out of the tree is an error at its position.
    let html = page("../../../");
    all.pop();
    all.push(("sub/page.html", &html));
    let errs = errors(&input(&all));
    assert!(
        errs.iter()
            .any(|e| e.contains("<base href>") && e.contains(":1:")),
        "{errs:?}"
    );
}

#[test]
fn opaque_files_go_by_their_digests_and_unchanged_bytes_are_not_copied() {
    let png = b"\x89PNG not read by the graph";
    let digests = sri::Digests::of(png);
    let sha512 = crate::digest::base64(&digests.sha512);
    let page = |sha512: &str| {
        format!("<link rel=preload as=image href=i.png integrity=sha512-{sha512}><p>")
    };
    let mut inp = input(&[
        ("a.css", "body { background: url(i.png) }"),
        ("b.css", "p { color: red }"),
        ("page.html", &page(&sha512)),
    ]);
    inp.opaque.insert(
        "i.png".into(),
        Opaque {
            size: png.len() as u64,
            digests: digests.clone(),
        },
    );
    let out = fingerprint(&inp).unwrap();
    let i = &out.files["i.png"];
    let sha256 = Digest::from_bytes(digests.sha256);
    assert_eq!(i.name, hashed_name("i.png", &sha256.hex(), MIN_HASH_LEN));
    assert_eq!(
        (i.edits.is_empty(), i.sha256, i.size, &i.integrity),
        (true, sha256, png.len() as u64, &Some(digests.integrity()))
    );
    assert_eq!(out.bytes(&inp, "i.png"), None);
    let b = &out.files["b.css"];
    assert_eq!(b.edits, [], "unchanged bytes: nothing to do");
    assert!(matches!(
        out.bytes(&inp, "b.css"),
        Some(Cow::Borrowed(b"p { color: red }"))
    ));
    assert_eq!(b.integrity, None, "left to the writer");
    let a = out.bytes(&inp, "a.css").unwrap();
    assert_eq!(
        a,
        format!("body {{ background: url({}) }}", i.name).as_bytes()
    );
    assert_eq!(out.files["a.css"].size, a.len() as u64);

    // The integrity attribute was checked against the digests.
    inp.files
        .insert("page.html".into(), page(&"A".repeat(86)).into_bytes());
    let errors = fingerprint(&inp).unwrap_err();
    assert!(errors[0].message.contains("does not match"), "{errors:?}");
}

fn errors(inp: &Input) -> Vec<String> {
    match fingerprint(inp) {
        Ok(_) => panic!("expected errors"),
        Err(e) => e.iter().map(ToString::to_string).collect(),
    }
}

fn site() -> Input {
    input(&[
            ("img/a.png", "PNG-A"),
            ("img/b.png", "PNG-B"),
            ("fonts/f.woff2", "WOFF"),
            (
                "css/site.css",
                "@import 'base.css';\n.a{background:url(../img/a.png)}\n/* url(../img/b.png) */\n\
                 @font-face{src:url(\"/static/fonts/f.woff2?#iefix\")}",
            ),
            ("css/base.css", "body{color:red}"),
            ("css/other.css", ".b{background:url(https://cdn.example.com/static/img/b.png)}"),
            ("js/app.js", "import {x} from './util.js';\nimport 'react';\nconst s = \"./util.js\";"),
            ("js/util.js", "export const x = new URL('../img/b.png', import.meta.url);"),
            (
                "index.html",
                "<link rel=stylesheet href=\"/static/css/site.css\">\n<script type=module src=\"js/app.js\"></script>\n\
                 <img srcset=\"img/a.png 1x, img/b.png 2x\" src='data:,x'>",
            ),
        ])
}

#[test]
fn rewrites_and_names() {
    let out = run(&site());
    let m = out.manifest();
    for (path, name) in &m {
        let f = &out.files[path];
        assert_eq!(f.sha256, Digest::of(out.bytes_of(f)));
        assert!(!f.kept);
        // Names are derived from the final bytes for acyclic files.
        let expected = hashed_name(path, &f.sha256.hex(), 12);
        assert_eq!(name, &expected);
    }
    assert!(m["css/site.css"].starts_with("css/site.") && m["css/site.css"].ends_with(".css"));
    assert_eq!(m["css/site.css"].len(), "css/site.css".len() + 13);
    let a = m["img/a.png"]
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .to_string();
    let b = m["img/b.png"]
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .to_string();
    let f = m["fonts/f.woff2"]
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .to_string();
    let base = m["css/base.css"]
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .to_string();
    assert_eq!(
        text(&out, "css/site.css"),
        format!(
            "@import '{base}';\n.a{{background:url(../img/{a})}}\n/* url(../img/b.png) */\n\
                 @font-face{{src:url(\"/static/fonts/{f}?#iefix\")}}"
        )
    );
    assert_eq!(
        text(&out, "css/other.css"),
        format!(".b{{background:url(https://cdn.example.com/static/img/{b})}}")
    );
    let util = m["js/util.js"]
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .to_string();
    assert_eq!(
        text(&out, "js/app.js"),
        format!("import {{x}} from './{util}';\nimport 'react';\nconst s = \"./util.js\";")
    );
    assert_eq!(
        text(&out, "index.html"),
        format!(
            "<link rel=stylesheet href=\"/static/{}\">\n<script type=module src=\"{}\"></script>\n\
                 <img srcset=\"img/{a} 1x, img/{b} 2x\" src='data:,x'>",
            m["css/site.css"], m["js/app.js"]
        )
    );
    assert_eq!(
        out.files["css/site.css"].references,
        vec!["css/base.css", "fonts/f.woff2", "img/a.png"]
    );
    assert_eq!(out, run(&site()), "deterministic");
}

#[test]
fn output_does_not_depend_on_the_thread_count() {
    // Many small directories with every kind of edge and a JS cycle,
    // enough for several scan chunks per thread.
    let mut files = Vec::new();
    for d in 0..60 {
        let dir = |p: &str| format!("d{d}/{p}");
        files.extend([
            (dir("img/a.png"), format!("PNG-A{d}")),
            (dir("img/b.png"), format!("PNG-B{d}")),
            (
                dir("css/site.css"),
                "@import 'base.css'; a{b:url(../img/a.png)}".into(),
            ),
            (dir("css/base.css"), format!("body{{order:{d}}}")),
            (dir("js/app.js"), "import {x} from './util.js';".into()),
            (
                dir("js/util.js"),
                "new URL('../img/b.png', import.meta.url);".into(),
            ),
            (
                dir("js/a.js"),
                "import './b.js'; import '../../d0/img/a.png';".into(),
            ),
            (dir("js/b.js"), "import './a.js';".into()),
            (
                dir("index.html"),
                "<link href=css/site.css><script src=js/app.js></script>".into(),
            ),
        ]);
    }
    let files: Vec<(&str, &str)> = files.iter().map(|(p, c)| (&p[..], &c[..])).collect();
    let good = input(&files);
    let mut bad = good.clone();
    for d in [3, 17, 42] {
        bad.files.insert(
            format!("d{d}/css/broken.css"),
            b"a{b:url(nope.png)} @import 'broken.css';".to_vec(),
        );
    }
    for inp in [&good, &bad] {
        let one = fingerprint_with(inp, 1);
        for threads in [2, 3, 8] {
            assert_eq!(fingerprint_with(inp, threads), one, "{threads} threads");
        }
    }
    assert!(fingerprint_with(&good, 1).is_ok());
    assert_eq!(fingerprint_with(&bad, 4).map(|_| ()).unwrap_err().len(), 6);
}

#[test]
fn leaf_change_propagates_to_referrers_only() {
    let before = run(&site()).manifest();
    let mut changed = site();
    changed.files.insert("img/a.png".into(), b"PNG-A2".to_vec());
    let after = run(&changed).manifest();
    let differ: Vec<&str> = before
        .keys()
        .filter(|k| before[*k] != after[*k])
        .map(String::as_str)
        .collect();
    assert_eq!(differ, vec!["css/site.css", "img/a.png", "index.html"]);
}

#[test]
fn missing_references_are_all_reported() {
    let inp = input(&[
        (
            "css/a.css",
            ".x{}\n.y { background: url(\"../img/nope.png\") }\n.z{background:url(gone.png)}",
        ),
        ("js/m.js", "\n\n  import x from './missing.js';"),
        ("page.html", "<img src=\"../../escape.png\">"),
    ]);
    assert_eq!(
            errors(&inp),
            vec![
                "css/a.css:2:23: referenced file \"img/nope.png\" does not exist (reference \"../img/nope.png\")",
                "css/a.css:3:19: referenced file \"css/gone.png\" does not exist (reference \"gone.png\")",
                "js/m.js:3:18: referenced file \"js/missing.js\" does not exist (reference \"./missing.js\")",
                "page.html:1:11: path \"../../escape.png\" escapes the asset root (reference \"../../escape.png\")",
            ]
        );
}

#[test]
fn workers_are_rewritten_where_their_url_is_certain() {
    let files = [
            ("js/w.js", "postMessage(1);"),
            ("js/s.js", "onconnect = () => {};"),
            ("sw.js", "self.onfetch = null;"),
            (
                "js/app.js",
                "new Worker('/static/js/w.js'); new SharedWorker(\"https://cdn.example.com/static/js/s.js\");\n\
                 new Worker('/elsewhere/x.js'); new Worker('not-an-asset.js');\n\
                 navigator.serviceWorker.register('/static/sw.js');",
            ),
            (
                "index.html",
                "<script type=module>new Worker('js/w.js')</script>",
            ),
        ];
    let mut inp = input(&files);
    inp.keep.insert("sw.js".into());
    let out = run(&inp);
    let m = out.manifest();
    let file = |p: &str| m[p].rsplit('/').next().unwrap_or_default().to_string();
    assert_eq!(
            text(&out, "js/app.js"),
            format!(
                "new Worker('/static/js/{}'); new SharedWorker(\"https://cdn.example.com/static/js/{}\");\n\
                 new Worker('/elsewhere/x.js'); new Worker('not-an-asset.js');\n\
                 navigator.serviceWorker.register('/static/sw.js');",
                file("js/w.js"),
                file("js/s.js")
            )
        );
    assert_eq!(
        text(&out, "index.html"),
        format!(
            "<script type=module>new Worker('{}')</script>",
            m["js/w.js"]
        )
    );

    // A relative URL in a script file that names an asset relative to
    // the script, and a service worker that would be renamed.
    inp.keep.clear();
    inp.files.insert(
        "js/b.js".into(),
        b"new Worker('./w.js');\nnavigator.serviceWorker.register(`../sw.js`);".to_vec(),
    );
    // In a module, `new URL(…, import.meta.url)` is the advice; in a
    // classic script, where it is a syntax error, a path from the root.
    inp.files.insert(
        "js/m.js".into(),
        b"export {};\nnew Worker('./w.js');".to_vec(),
    );
    let errs = errors(&inp);
    assert_eq!(errs.len(), 4, "{errs:#?}");
    assert!(
        errs[0].starts_with("js/app.js:3:35: a service worker's URL must stay the same"),
        "{}",
        errs[0]
    );
    assert!(errs[0].contains("`[site] entries`"), "{}", errs[0]);
    assert!(
        errs[1].starts_with("js/b.js:1:13: a worker's URL is resolved against the page's URL"),
        "{}",
        errs[1]
    );
    assert!(
        errs[1].contains("classic script") && errs[1].contains("\"/static/js/w.js\""),
        "{}",
        errs[1]
    );
    assert!(!errs[1].contains("import.meta.url)`"), "{}", errs[1]);
    assert!(
        errs[2].starts_with("js/b.js:2:35: a worker's URL"),
        "{}",
        errs[2]
    );
    assert!(
        errs[2].contains("list \"sw.js\" in `[site] entries` and register it from the site's root, `register('/sw.js')`"),
        "{}",
        errs[2]
    );
    assert!(
        errs[3].starts_with("js/m.js:2:13: a worker's URL")
            && errs[3].contains("write `new URL(\"./w.js\", import.meta.url)`"),
        "{}",
        errs[3]
    );
}

fn globs(patterns: &[&str]) -> GlobSet {
    let patterns: Vec<String> = patterns.iter().map(|p| p.to_string()).collect();
    crate::pack::glob_set(&patterns).expect("valid globs")
}

#[test]
fn allow_missing() {
    let mut inp = input(&[(
        "css/a.css",
        "a{b:url(../fonts/x.woff)} c{d:url(/static/img/missing-1.png)} e{f:url(dyn.png)} \
             g{h:url(icons/a.svg)} i{j:url(icons/b.svg)}",
    )]);
    inp.allow_missing = globs(&[
        "**/*.woff",
        "img/missing-*.png",
        "dyn.png",
        "css/icons/{a,b}.svg",
    ]);
    let out = run(&inp);
    assert_eq!(
        text(&out, "css/a.css"),
        "a{b:url(../fonts/x.woff)} c{d:url(/static/img/missing-1.png)} e{f:url(dyn.png)} \
             g{h:url(icons/a.svg)} i{j:url(icons/b.svg)}"
    );
    inp.allow_missing = globs(&["img/missing-?.png", "css/icons/a.svg"]);
    assert_eq!(
            errors(&inp),
            vec![
                "css/a.css:1:9: referenced file \"fonts/x.woff\" does not exist (reference \"../fonts/x.woff\")",
                "css/a.css:1:71: referenced file \"css/dyn.png\" does not exist (reference \"dyn.png\")",
                "css/a.css:1:111: referenced file \"css/icons/b.svg\" does not exist (reference \"icons/b.svg\")",
            ]
        );
}

#[test]
fn allow_missing_is_the_exclude_dialect_and_linear() {
    for (pattern, name, expected) in [
        ("**/*.woff", "x.woff", true),
        ("**/*.woff", "a/b/x.woff", true),
        ("a/**/b", "a/x/y/b", true),
        ("a/?.png", "a/x.png", true),
        // As in `app.exclude`, `*` also crosses `/`.
        ("a/*.png", "a/x/y.png", true),
        ("*.{png,svg}", "i/x.svg", true),
        ("*.{png,svg}", "x.gif", false),
        ("[ab].js", "b.js", true),
        ("[ab].js", "c.js", false),
    ] {
        assert_eq!(
            globs(&[pattern]).is_match(name),
            expected,
            "{pattern} {name}"
        );
    }
    // Exponential for a backtracking matcher, linear here.
    let pattern = format!("{}b", "**a".repeat(20));
    assert!(!globs(&[&pattern]).is_match("a".repeat(1000)));
}

#[test]
fn special_names_are_encoded() {
    let out = run(&input(&[
        ("img/a b.png", "x"),
        ("a.css", "a{b:url(img/a%20b.png)} c{d:url('img/a b.png')}"),
        ("a.html", "<img src='img/a%20b.png?x=1&amp;y=2'>"),
    ]));
    let n = out.files["img/a b.png"]
        .name
        .replace("img/", "")
        .replace(' ', "%20");
    assert_eq!(
        text(&out, "a.css"),
        format!("a{{b:url(img/{n})}} c{{d:url('img/{n}')}}")
    );
    assert_eq!(
        text(&out, "a.html"),
        format!("<img src='img/{n}?x=1&amp;y=2'>")
    );
}

#[test]
fn bad_input() {
    let mut inp = input(&[("a.css", "")]);
    inp.hash_len = 8;
    assert_eq!(
        errors(&inp),
        vec![":0:0: hash_len must be between 12 and 64, got 8 (reference \"\")"]
    );
    let mut inp = input(&[]);
    inp.files.insert("b.css".into(), b"a{}\nb\xff".to_vec());
    inp.files.insert("c.png".into(), b"\xff\xfe".to_vec());
    assert_eq!(
        errors(&inp),
        vec!["b.css:2:2: file is not valid UTF-8 (reference \"\")"]
    );
}
