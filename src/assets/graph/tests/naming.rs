//! Names: a file's hashed name, the URLs rewritten to it, and the files
//! that keep their own.

use super::*;

#[test]
fn a_rewritten_name_with_a_colon_never_reads_as_a_scheme() {
    // Found by `cargo xtask fuzz`: `%6Fa-.:x` is a local file `oa-.:x`;
    // written back plainly it would be a URL with scheme `oa-.:`.
    assert_eq!(new_url("%6Fa-.:x", "oa-.:x.0123", 1), "./oa-.:x.0123");
    assert_eq!(
        new_url("img/a:b.png", "img/a:b.0123.png", 1),
        "img/a:b.0123.png"
    );
    assert_eq!(new_url("a.png?v=1", "a.0123.png", 1), "a.0123.png?v=1");
}

#[test]
fn names() {
    let h = "0123456789abcdef0123456789abcdef";
    for (p, expected) in [
        ("css/site.css", "css/site.0123456789ab.css"),
        ("app.min.js", "app.min.0123456789ab.js"),
        ("site.css.map", "site.css.0123456789ab.map"),
        ("LICENSE", "LICENSE.0123456789ab"),
        ("d.v1/.htaccess", "d.v1/.htaccess.0123456789ab"),
    ] {
        assert_eq!(hashed_name(p, h, 12), expected);
    }
    assert_eq!(hashed_name("a.js", h, 16), "a.0123456789abcdef.js");
}

#[test]
fn content_named() {
    let sha = Digest::of(b"x").hex();
    let named = hashed_name("css/site.css", &sha, 12);
    assert!(is_content_named("css/site.css", &named, &sha));
    assert!(is_content_named(
        "css/site.css",
        &hashed_name("css/site.css", &sha, 20),
        &sha
    ));
    assert!(is_content_named(
        "LICENSE",
        &hashed_name("LICENSE", &sha, 12),
        &sha
    ));
    let other = Digest::of(b"y").hex();
    for (logical, name) in [
        // Kept names.
        ("css/site.css", "css/site.css".to_owned()),
        (named.as_str(), named.clone()),
        // Another digest, a shorter hash, another file.
        ("css/site.css", hashed_name("css/site.css", &other, 12)),
        ("css/site.css", hashed_name("css/site.css", &sha, 8)),
        ("css/other.css", named.clone()),
        ("", String::new()),
    ] {
        assert!(!is_content_named(logical, &name, &sha), "{logical} {name}");
    }
}

#[test]
fn a_name_is_never_taken_for_a_hash() {
    // Names from real packages that look like bundler hashes: Font
    // Awesome's v4-compatibility font and jQuery UI's icon sprites,
    // referenced as their stylesheets do; and a stylesheet whose own
    // name looks hashed, which must still be scanned.
    let out = run(&input(&[
        (
            "fontawesome/css/v4-font-face.css",
            "@font-face{font-family:\"FontAwesome\";font-display:block;\
                 src:url(\"../webfonts/fa-v4compatibility.woff2\") format(\"woff2\")}",
        ),
        ("fontawesome/webfonts/fa-v4compatibility.woff2", "wOF2"),
        (
            "jquery-ui/themes/base/jquery-ui.css",
            ".ui-icon{background-image:url(\"images/ui-icons_444444_256x240.png\")}",
        ),
        (
            "jquery-ui/themes/base/images/ui-icons_444444_256x240.png",
            "PNG",
        ),
        (
            "css/theme-v2compact.css",
            "a{background:url(../img/bg.png)}",
        ),
        ("img/bg.png", "PNG"),
        ("assets/index-BxK3a9Zq.js", "export {};"),
    ]));
    for (path, f) in &out.files {
        assert!(!f.kept, "{path}");
        assert_eq!(f.name, hashed_name(path, &f.sha256.hex(), 12), "{path}");
    }
    let name = |p: &str| {
        let n = &out.files[p].name;
        n.rsplit('/').next().unwrap_or(n).to_owned()
    };
    assert!(
        text(&out, "fontawesome/css/v4-font-face.css").contains(&format!(
            "url(\"../webfonts/{}\")",
            name("fontawesome/webfonts/fa-v4compatibility.woff2")
        ))
    );
    assert!(
        text(&out, "jquery-ui/themes/base/jquery-ui.css").contains(&format!(
            "url(\"images/{}\")",
            name("jquery-ui/themes/base/images/ui-icons_444444_256x240.png")
        ))
    );
    assert_eq!(
        text(&out, "css/theme-v2compact.css"),
        format!("a{{background:url(../img/{})}}", name("img/bg.png"))
    );
}

#[test]
fn kept_files_keep_their_names_and_are_still_rewritten() {
    // The shape of a Vite build (tests/fixtures/vite): chunks that
    // import each other, a stylesheet naming a copy of `public/` by
    // its plain URL, and one import of a file verbatim renames.
    let mut inp = input(&[
        (
            "dist/assets/index-9GimqxIf.js",
            "import '../../vendor/x.js';\nimport(`./lazy-B2qQgaqo.js`);\n\
                 //# sourceMappingURL=index-9GimqxIf.js.map",
        ),
        ("dist/assets/index-9GimqxIf.js.map", "{}"),
        (
            "dist/assets/lazy-B2qQgaqo.js",
            "import{t as e}from\"./index-9GimqxIf.js\";",
        ),
        (
            "dist/assets/index-gGNJdlJx.css",
            "body{background:url(/static/dist/logo.svg)}",
        ),
        ("dist/logo.svg", "<svg/>"),
        ("vendor/x.js", "export {};"),
    ]);
    inp.keep = [
        "dist/assets/index-9GimqxIf.js",
        "dist/assets/index-9GimqxIf.js.map",
        "dist/assets/lazy-B2qQgaqo.js",
        "dist/assets/index-gGNJdlJx.css",
        "dist/logo.svg",
    ]
    .map(String::from)
    .into();
    let out = run(&inp);
    for p in &inp.keep {
        let f = &out.files[p];
        assert!(f.kept, "{p}");
        assert_eq!(&f.name, p);
        assert_eq!(f.sha256, Digest::of(out.bytes_of(f)));
    }
    // Only references to renamed files are rewritten.
    let x = out.files["vendor/x.js"].name.replace("vendor/", "");
    assert!(!out.files["vendor/x.js"].kept);
    assert_ne!(x, "x.js");
    assert_eq!(
        text(&out, "dist/assets/index-9GimqxIf.js"),
        format!(
            "import '../../vendor/{x}';\nimport(`./lazy-B2qQgaqo.js`);\n\
                 //# sourceMappingURL=index-9GimqxIf.js.map"
        )
    );
    for p in [
        "dist/assets/lazy-B2qQgaqo.js",
        "dist/assets/index-gGNJdlJx.css",
    ] {
        assert_eq!(out.bytes_of(&out.files[p]), inp.files[p], "{p} untouched");
    }
    // Kept files are scanned: their references are known.
    assert_eq!(
        out.files["dist/assets/index-gGNJdlJx.css"].references,
        ["dist/logo.svg"]
    );
    assert_eq!(
        out.files["dist/assets/index-9GimqxIf.js"].references,
        [
            "dist/assets/index-9GimqxIf.js.map",
            "dist/assets/lazy-B2qQgaqo.js",
            "vendor/x.js"
        ]
    );
    assert_eq!(out, run(&inp), "deterministic");

    // And checked: a kept file naming a missing file fails the build.
    inp.files.insert(
        "dist/assets/index-gGNJdlJx.css".into(),
        b"body{background:url(/static/dist/gone.svg)}".to_vec(),
    );
    assert_eq!(
            errors(&inp),
            ["dist/assets/index-gGNJdlJx.css:1:21: referenced file \"dist/gone.svg\" does not exist (reference \"/static/dist/gone.svg\")"]
        );
}
