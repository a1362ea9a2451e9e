//! Sites: entry files (served from the site's root, never renamed),
//! `importScripts()`, a missing source map (a warning), and the warning
//! for files only code could reach.

use super::*;

fn warnings(inp: &Input) -> Vec<String> {
    run(inp).warnings.iter().map(|w| w.to_string()).collect()
}

#[test]
fn entries_keep_their_names_and_are_named_from_the_site_root() {
    let mut inp = input(&[
        (
            "index.html",
            "<link rel=stylesheet href=\"css/site.css\">\
             <script>navigator.serviceWorker.register('/static/sw.js')</script>\
             <a href=\"/static/robots.txt\">r</a><img src=\"/static/img/a.png\">",
        ),
        ("css/site.css", "body{background:url(../img/a.png)}"),
        ("img/a.png", "png"),
        ("sw.js", "importScripts('sw-lib.js');"),
        ("sw-lib.js", "self.x = 1;"),
        ("robots.txt", "User-agent: *"),
        // An asset naming an entry: the entry's URL is the site's.
        (
            "js/app.js",
            "fetch(new URL('../robots.txt', import.meta.url));",
        ),
    ]);
    inp.entries = ["index.html", "sw.js", "robots.txt"]
        .map(String::from)
        .into();
    let out = run(&inp);
    let m = out.manifest();
    for e in ["index.html", "sw.js", "robots.txt"] {
        assert_eq!(m[e], e, "an entry keeps its name");
        assert!(out.files[e].entry && out.files[e].kept);
    }
    assert!(!out.files["css/site.css"].entry);
    // Relative references of an entry name their target from the root;
    // one already from the root is rewritten in place; references to an
    // entry name it at the site's root.
    assert_eq!(
        text(&out, "index.html"),
        format!(
            "<link rel=stylesheet href=\"/static/{}\">\
             <script>navigator.serviceWorker.register('/sw.js')</script>\
             <a href=\"/robots.txt\">r</a><img src=\"/static/{}\">",
            m["css/site.css"], m["img/a.png"]
        )
    );
    assert_eq!(
        text(&out, "sw.js"),
        format!("importScripts('/static/{}');", m["sw-lib.js"])
    );
    assert_eq!(
        text(&out, "js/app.js"),
        "fetch(new URL('/robots.txt', import.meta.url));"
    );
    // Not an entry: the service worker may not be renamed.
    inp.entries.remove("sw.js");
    let errs = errors(&inp);
    assert!(
        errs.iter()
            .any(|e| e.contains("list it in `[site] entries`")),
        "{errs:#?}"
    );
}

#[test]
fn import_scripts_are_references() {
    let inp = input(&[
        ("w/worker.js", "importScripts('lib.js', '../vendor/x.js');"),
        ("w/lib.js", "self.lib = 1;"),
        ("vendor/x.js", "self.x = 1;"),
    ]);
    let out = run(&inp);
    let m = out.manifest();
    let file = |p: &str| m[p].rsplit('/').next().unwrap().to_owned();
    assert_eq!(
        text(&out, "w/worker.js"),
        format!(
            "importScripts('{}', '../vendor/{}');",
            file("w/lib.js"),
            file("vendor/x.js")
        )
    );
    let missing = input(&[("w/worker.js", "importScripts('gone.js');")]);
    assert!(errors(&missing)[0].contains("\"w/gone.js\" does not exist"));
}

#[test]
fn a_missing_source_map_is_a_warning() {
    let inp = input(&[
        ("vs/loader.js", "x();\n//# sourceMappingURL=loader.js.map"),
        ("css/a.css", "a{}\n/*# sourceMappingURL=a.css.map */"),
    ]);
    let out = run(&inp);
    assert_eq!(
        text(&out, "vs/loader.js"),
        "x();\n//# sourceMappingURL=loader.js.map",
        "left as written"
    );
    let w = warnings(&inp);
    assert_eq!(w.len(), 2, "{w:#?}");
    assert!(
        w[1].starts_with("vs/loader.js:2:22: source map \"vs/loader.js.map\" does not exist"),
        "{w:#?}"
    );
}

#[test]
fn files_only_code_reaches_give_one_warning_per_directory() {
    // TinyMCE and sql.js as their documentation has them: a page loads
    // the loader; the loader fetches the rest by URLs it builds.
    let files = [
        (
            "index.html",
            "<script src=\"vendor/tinymce/tinymce.min.js\"></script>\
                        <script src=\"vendor/sqljs/sql-wasm.js\"></script>",
        ),
        ("vendor/tinymce/tinymce.min.js", "tinymce();"),
        ("vendor/tinymce/plugins/link/plugin.min.js", "p();"),
        ("vendor/tinymce/plugins/lists/plugin.min.js", "p();"),
        ("vendor/tinymce/skins/ui/oxide/skin.min.css", "a{}"),
        ("vendor/tinymce/README.md", "readme"),
        ("vendor/sqljs/sql-wasm.js", "initSqlJs();"),
        ("vendor/sqljs/sql-wasm.wasm", "wasm"),
        ("openapi.json", "{}"),
        ("fragments/a.html", "<p>a</p>"),
        ("data/x.csv", "1"),
        ("data/y.csv", "2"),
        ("js/app.js.map", "{}"),
    ];
    let w = warnings(&input(&files));
    assert_eq!(w.len(), 4, "{w:#?}");
    assert!(
        w[0].starts_with("data:0:0: 2 files (e.g. \"data/x.csv\")"),
        "{w:#?}"
    );
    assert!(
        w[0].contains("`entries = [\"data/**\"]` in [site]"),
        "{w:#?}"
    );
    assert!(
        w[1].starts_with("openapi.json:0:0: \"openapi.json\" is"),
        "{w:#?}"
    );
    assert!(w[1].contains("`entries = [\"openapi.json\"]`"), "{w:#?}");
    assert!(
        w[2].starts_with("vendor/sqljs:0:0: \"vendor/sqljs/sql-wasm.wasm\""),
        "{w:#?}"
    );
    assert!(
        w[2].contains("`hash_dirs = [\"vendor/sqljs\"]` in [assets]"),
        "{w:#?}"
    );
    assert!(w[3].starts_with("vendor/tinymce:0:0: 4 files"), "{w:#?}");

    // Configured as the warnings say: quiet.
    let mut inp = input(&files);
    inp.hash_dirs = vec!["vendor/sqljs".into(), "vendor/tinymce".into()];
    inp.entries = ["openapi.json", "data/x.csv", "data/y.csv"]
        .map(String::from)
        .into();
    assert_eq!(warnings(&inp), Vec::<String>::new());

    // A Django tree: no pages, no [site]: quiet.
    let django = input(&[
        ("admin/js/core.js", "x();"),
        ("admin/img/icon.svg", "<svg/>"),
    ]);
    assert!(warnings(&django).is_empty());
    let mut site = django.clone();
    site.site = true;
    assert_eq!(warnings(&site).len(), 1, "{:#?}", warnings(&site));
}
