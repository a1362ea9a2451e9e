//! Import maps: prefix entries expanded into one entry per file, unless a
//! key of their own takes a file.

use super::*;

#[test]
fn import_map_prefixes_are_expanded_and_integrity_rewritten() {
    // three.js as its manual shows it: a module name and a prefix for
    // the addons, whose modules import each other relatively and
    // `three` through the map.
    let orbit = "import {V} from 'three';\nimport {u} from '../utils/u.js';";
    let page = format!(
        r#"<script type="importmap">
{{ "imports": {{ "three": "./vendor/three/build/three.module.js",
    "three/addons/": "./vendor/three/examples/jsm/",
    "cdn/": "https://unpkg.com/lib/", "/static/x/": "/static/vendor/three/examples/jsm/" }},
  "integrity": {{ "./vendor/three/examples/jsm/controls/Orbit.js": "{}" }} }}
</script>
<script type=module>import 'three/addons/controls/Orbit.js';</script>"#,
        sri::integrity(orbit.as_bytes())
    );
    for kept in [false, true] {
        let mut inp = input(&[
            ("vendor/three/build/three.module.js", "export const V = 1;"),
            ("vendor/three/examples/jsm/controls/Orbit.js", orbit),
            (
                "vendor/three/examples/jsm/utils/u a.js",
                "export const w = 1;",
            ),
            (
                "vendor/three/examples/jsm/utils/u.js",
                "export const u = 1;",
            ),
            ("index.html", &page),
        ]);
        if kept {
            inp.keep
                .insert("vendor/three/examples/jsm/utils/u.js".into());
        }
        let out = run(&inp);
        let m = out.manifest();
        let rest = |p: &str| {
            m[p].strip_prefix("vendor/three/examples/jsm/")
                .unwrap()
                .to_string()
        };
        let orbit_out = &out.files["vendor/three/examples/jsm/controls/Orbit.js"];
        // Its relative import is rewritten unless it names a kept file.
        assert_eq!(out.bytes_of(orbit_out) != orbit.as_bytes(), !kept);
        let want = format!(
            r#"<script type="importmap">
{{ "imports": {{ "three": "./vendor/three/build/{three}",
    "three/addons/controls/Orbit.js": "./vendor/three/examples/jsm/{o}", "three/addons/utils/u a.js": "./vendor/three/examples/jsm/{ua}", "three/addons/utils/u.js": "./vendor/three/examples/jsm/{u}",
    "cdn/": "https://unpkg.com/lib/", "/static/x/controls/Orbit.js": "/static/vendor/three/examples/jsm/{o}", "/static/x/utils/u%20a.js": "/static/vendor/three/examples/jsm/{ua}", "/static/x/utils/u.js": "/static/vendor/three/examples/jsm/{u}" }},
  "integrity": {{ "./vendor/three/examples/jsm/{o}": "{sri}" }} }}
</script>
<script type=module>import 'three/addons/controls/Orbit.js';</script>"#,
            three = m["vendor/three/build/three.module.js"]
                .rsplit('/')
                .next()
                .unwrap(),
            o = rest("vendor/three/examples/jsm/controls/Orbit.js"),
            ua = rest("vendor/three/examples/jsm/utils/u a.js").replace(' ', "%20"),
            u = rest("vendor/three/examples/jsm/utils/u.js"),
            sri = sri::integrity(out.bytes_of(orbit_out)),
        );
        let html = text(&out, "index.html");
        assert_eq!(html, want, "kept: {kept}");
        assert_eq!(
            kept,
            m["vendor/three/examples/jsm/utils/u.js"] == "vendor/three/examples/jsm/utils/u.js"
        );
        // Still JSON, and the page depends on every file under the prefix.
        let json = &html[html.find('{').unwrap()..html.find("</script>").unwrap()];
        let map: serde_json::Value = serde_json::from_str(json).expect("valid JSON");
        assert_eq!(map["imports"].as_object().unwrap().len(), 8);
        assert_eq!(out.files["index.html"].references.len(), 4);
    }
}

#[test]
fn import_map_keys_of_their_own_win_over_an_expansion() {
    // A browser maps a specifier by its own key, else by the longest
    // prefix: an expansion never writes a second entry for it, and a
    // prefix all of whose files have their own is left as written.
    let page = r#"<script type=importmap>{"imports": {
"lib/a.js": "./other/a.js", "lib/": "./lib/", "lib/sub/": "./other/",
"all/a.js": "./lib/a.js", "all/b.js": "./lib/b.js", "all/sub/c.js": "./lib/sub/c.js", "all/": "./lib/"},
"scopes": {"/s/": {"lib/": "./lib/"}}}</script>"#;
    let with_page = |page| {
        run(&input(&[
            ("lib/a.js", "export {}"),
            ("lib/b.js", "export {}"),
            ("lib/sub/c.js", "export {}"),
            ("other/a.js", "export {}"),
            ("index.html", page),
        ]))
    };
    let out = with_page(page);
    let m = out.manifest();
    let html = text(&out, "index.html");
    let (a, b, c, o) = (
        &m["lib/a.js"],
        &m["lib/b.js"],
        &m["lib/sub/c.js"],
        &m["other/a.js"],
    );
    assert_eq!(
        html,
        format!(
            r#"<script type=importmap>{{"imports": {{
"lib/a.js": "./{o}", "lib/b.js": "./{b}", "lib/sub/a.js": "./{o}",
"all/a.js": "./{a}", "all/b.js": "./{b}", "all/sub/c.js": "./{c}", "all/": "./lib/"}},
"scopes": {{"/s/": {{"lib/a.js": "./{a}", "lib/b.js": "./{b}", "lib/sub/c.js": "./{c}"}}}}}}</script>"#
        )
    );
    let json = &html[html.find('{').unwrap()..html.find("</script>").unwrap()];
    serde_json::from_str::<serde_json::Value>(json).expect("valid JSON");

    // URL-like keys are compared by the URL they name, however spelt
    // (the page is at /static/index.html, the CDN serves /static/): an
    // expansion written after `/static/lib/a.js` would otherwise take
    // its specifier, and `lib/sub/` is the CDN key's, the longer prefix.
    let page = r#"<script type=importmap>{"imports": {
"/static/lib/a.js": "./other/a.js", "https://cdn.example.com/static/lib/sub/": "./other/",
"./lib/": "./lib/"}}</script>"#;
    let out = with_page(page);
    let m = out.manifest();
    assert_eq!(
        text(&out, "index.html"),
        format!(
            r#"<script type=importmap>{{"imports": {{
"/static/lib/a.js": "./{o}", "https://cdn.example.com/static/lib/sub/a.js": "./{o}",
"./lib/b.js": "./{b}"}}}}</script>"#,
            o = m["other/a.js"],
            b = m["lib/b.js"],
        )
    );
}

#[test]
fn an_import_map_prefix_naming_the_pages_own_directory() {
    // The page is under the prefix too: it names itself, a cycle named
    // as a group like any other.
    let page = "<script type=importmap>{\"imports\": {\"app/\": \"./\"}}</script>";
    let out = run(&input(&[("a.js", "export {}"), ("index.html", page)]));
    let m = out.manifest();
    assert_ne!(m["index.html"], "index.html");
    assert_eq!(
        text(&out, "index.html"),
        format!(
            "<script type=importmap>{{\"imports\": {{\"app/a.js\": \"./{}\", \
                 \"app/index.html\": \"./{}\"}}}}</script>",
            m["a.js"], m["index.html"]
        )
    );
    assert_eq!(
        out,
        run(&input(&[("a.js", "export {}"), ("index.html", page)]))
    );
}

#[test]
fn an_import_map_scope_naming_a_module_follows_it() {
    let page = "<script type=importmap>{\"scopes\": {\"./js/app.js\": {\"x\": \"./js/x.js\"}, \
                    \"./js/\": {}, \"https://x.org/a.js\": {}}}</script>";
    let out = run(&input(&[
        ("js/app.js", "import 'x';"),
        ("js/x.js", "export {}"),
        ("index.html", page),
    ]));
    let m = out.manifest();
    assert_eq!(
        text(&out, "index.html"),
        format!(
            "<script type=importmap>{{\"scopes\": {{\"./{}\": {{\"x\": \"./{}\"}}, \
                 \"./js/\": {{}}, \"https://x.org/a.js\": {{}}}}}}</script>",
            m["js/app.js"], m["js/x.js"]
        )
    );
}

#[test]
fn import_map_prefixes_that_cannot_be_expanded() {
    let page = "<script type=importmap>{\"imports\": {\n\
                    \"none/\": \"./none/\",\n\
                    \"q/\": \"./lib/?v=1/\", \"up/\": \"../\",\n\
                    \"ok/\": \"./lib/\", \"gone/\": \"./gone/\", \"far/\": \"//cdn.example.org/x/\"}}</script>";
    let mut inp = input(&[("lib/a.js", "export {}"), ("index.html", page)]);
    let errs = errors(&inp);
    assert_eq!(errs.len(), 4, "{errs:#?}");
    assert!(errs[0].starts_with("index.html:2:11: import map prefix \"none/\" names \"none/\", under which the tree has no file"), "{errs:#?}");
    assert!(errs[1].starts_with("index.html:3:8: import map prefix \"q/\" cannot be expanded: URL prefix \"./lib/?v=1/\" has a query"), "{errs:#?}");
    assert!(
        errs[2].starts_with(
            "index.html:3:30: import map prefix \"up/\" cannot be expanded: path \"../\" escapes"
        ),
        "{errs:#?}"
    );
    assert!(
        errs[3].starts_with("index.html:4:28: import map prefix \"gone/\" names"),
        "{errs:#?}"
    );
    // A prefix allowed to be missing is left as written.
    inp.allow_missing = globs(&["none/", "gone/"]);
    assert_eq!(errors(&inp).len(), 2);
}
