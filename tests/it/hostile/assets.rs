//! Hostile assets: huge single-line files, pathological nesting, broken
//! encodings, exponential globs and symlinks out of the tree. Each build
//! ends within its deadline and memory bound, with the exit code and a
//! message naming the culprit; a refused tree writes nothing.

use std::os::unix::fs::symlink;
use std::path::Path;

use super::assets_project;
use crate::util::{bounded, Project};

/// Runs `verbatim build` with a one-minute hang guard, asserting the exit
/// code and the peak RSS; returns stderr.
fn build(p: &Project, code: i32, max_rss_mib: u64) -> String {
    build_within(p, 60, code, max_rss_mib)
}

/// [`build`] for tens of megabytes, which take a while in a debug build.
fn build_within(p: &Project, secs: u64, code: i32, max_rss_mib: u64) -> String {
    bounded(p.cmd(&["build"]).arg("--no-progress"), secs).exits(code, max_rss_mib)
}

/// The memory bound for an input of `mib` MiB: a few copies, and the
/// binary's own baseline.
fn within(mib: u64) -> u64 {
    5 * mib + 64
}

fn assert_nothing_built(p: &Project) {
    let out = p.path().join(".verbatim/build");
    assert!(
        !out.exists(),
        "a refused build wrote {:?}",
        Project::files_under(&out)
    );
}

/// The one file of the build's assets pack whose name starts with `stem.`.
fn built(p: &Project, stem: &str) -> Vec<u8> {
    let mut files = p.built_assets();
    let names: Vec<String> = files.keys().cloned().collect();
    let name = names
        .iter()
        .find(|n| n.starts_with(&format!("{stem}.")))
        .unwrap_or_else(|| panic!("no {stem}.* in {names:?}"));
    files.remove(name).unwrap()
}

// ---------------------------------------------------------------- big files

#[test]
fn a_13_mb_single_line_stylesheet_with_400000_urls() {
    let p = assets_project();
    let rule = |i: usize| format!(".c{i:07}{{background:url(i.png)}} ");
    let css: String = (0..400_000).map(rule).collect();
    assert!(css.len() > 13_000_000 && !css.contains('\n'));
    p.write("static/site.css", &css);
    p.write("static/i.png", "PNG");
    build_within(&p, 180, 0, within(13));
    let out = String::from_utf8(built(&p, "site")).unwrap();
    assert_eq!(out.matches("url(i.").count(), 400_000);
    assert!(!out.contains("url(i.png)"), "every url() is rewritten");

    // The 400,000th reference, missing, is reported at its column.
    p.write("static/site.css", format!("{css}x{{y:url(gone.png)}}"));
    let err = build_within(&p, 180, 1, within(13));
    let at = format!("site.css:1:{}: ", css.len() + 9);
    assert!(err.contains(&at) && err.contains("\"gone.png\""), "{err}");
}

#[test]
fn a_50_mb_single_line_script_in_bounded_memory() {
    let p = assets_project();
    let unit = "var a=function(b,c){return b+c*2},d=[1,2,3].map(function(e){return e>1?\"x\":'y'});if(a(d)){f(/re+/g)}";
    let js = format!(
        "import{{g}}from\"./m.js\";{}",
        unit.repeat(50_000_000 / unit.len())
    );
    assert!(js.len() > 49_000_000 && !js.contains('\n'));
    p.write("static/big.js", &js);
    p.write("static/m.js", "export const g=1;");
    // Input once, output once, and a constant: not a token list of the file.
    build_within(&p, 180, 0, within(50));
    let out = built(&p, "big");
    assert_eq!(out.len(), js.len() + 13, "./m.js became ./m.<hash12>.js");
}

#[test]
fn a_13_mb_css_of_nested_parentheses() {
    let p = assets_project();
    let css = format!("a{{b:{}url(gone.png)", "f(".repeat(6_500_000));
    p.write("static/deep.css", &css);
    let err = build_within(&p, 180, 1, within(13));
    let at = format!("deep.css:1:{}: ", 13_000_009);
    assert!(err.contains(&at) && err.contains("\"gone.png\""), "{err}");
    assert_nothing_built(&p);
}

#[test]
fn a_hundred_thousand_broken_references_are_counted_not_all_listed() {
    let p = assets_project();
    p.write("static/site.css", "a{b:url(x)}".repeat(100_000));
    let err = build(&p, 1, 128);
    assert!(err.contains("100000 problems"), "{}", &err[..500]);
    assert!(err.contains("site.css:1:9: ") && err.contains("(reference \"x\")"));
    assert!(
        err.contains("… and 99800 more"),
        "{}",
        &err[err.len() - 500..]
    );
    assert!(err.len() < 100_000, "{} bytes of errors", err.len());
    assert_nothing_built(&p);
}

// ------------------------------------------------------------- allow_missing

#[test]
fn an_exponential_allow_missing_pattern_is_matched_in_linear_time() {
    let p = assets_project();
    let config = std::fs::read_to_string(p.path().join("verbatim.toml")).unwrap();
    let name = "a".repeat(200);
    p.write("static/s.css", format!("x{{y:url({name})}}"));
    // A backtracking matcher tries every way of placing six `**`.
    let nasty = "**a**a**a**a**a**a**b";
    p.write(
        "verbatim.toml",
        format!("{config}allow_missing = [\"{nasty}\"]\n"),
    );
    let err = build(&p, 1, 64);
    assert!(err.contains(&format!("(reference \"{name}\")")), "{err}");
    assert_nothing_built(&p);

    // The same dialect as `app.exclude`, braces included.
    p.write(
        "verbatim.toml",
        format!("{config}allow_missing = [\"{nasty}\", \"{{x,aaa*}}\"]\n"),
    );
    build(&p, 0, 64);
}

#[test]
fn an_invalid_allow_missing_pattern_is_a_config_error() {
    let p = assets_project();
    let config = std::fs::read_to_string(p.path().join("verbatim.toml")).unwrap();
    p.write("static/s.css", "x{y:url(gone.png)}");
    p.write(
        "verbatim.toml",
        format!("{config}allow_missing = [\"*.png\", \"a[b\"]\n"),
    );
    let err = build(&p, 2, 64);
    assert!(
        err.contains("`assets.allow_missing`") && err.contains("`a[b`"),
        "{err}"
    );
    assert_nothing_built(&p);
}

// ------------------------------------------------------------------ symlinks

/// A project with an asset, a secret beside the assets directory, a
/// directory outside it, and one asset symlink `static/<link> -> target`.
fn linked(link: &str, target: impl AsRef<Path>) -> Project {
    let p = assets_project();
    p.write("static/site.css", "a{}");
    p.write("secret.txt", "secret");
    p.write("outside/x.css", "x{}");
    let link = p.path().join("static").join(link);
    std::fs::create_dir_all(link.parent().unwrap()).unwrap();
    symlink(target, link).unwrap();
    p
}

/// The build fails (exit 1) naming the link and its target, writing nothing.
fn assert_link_refused(p: &Project, link: &str, target: &str) {
    let err = build(p, 1, 64);
    assert!(err.contains(&format!("static/{link}")), "{err}");
    assert!(err.contains(&format!("{target:?}")), "{err}");
    assert_nothing_built(p);
}

#[test]
fn an_asset_symlink_to_etc_passwd_is_refused() {
    let p = linked("p.txt", "/etc/passwd");
    assert_link_refused(&p, "p.txt", "/etc/passwd");
}

#[test]
fn asset_symlinks_out_of_the_tree_are_refused() {
    let p = linked("sub/q.txt", "../../secret.txt");
    assert_link_refused(&p, "sub/q.txt", "../../secret.txt");

    let outside = tempfile::tempdir().unwrap();
    let abs = outside.path().join("secret.txt");
    std::fs::write(&abs, "secret").unwrap();
    let p = linked("a.txt", &abs);
    assert_link_refused(&p, "a.txt", abs.to_str().unwrap());

    let p = linked("d", "../outside");
    assert_link_refused(&p, "d", "../outside");

    // Lexically inside, out once resolved: through a link to /etc in a
    // dot-directory (which itself is never listed).
    let p = linked("sneaky.txt", ".hidden/passwd");
    symlink("/etc", p.path().join("static/.hidden")).unwrap();
    assert_link_refused(&p, "sneaky.txt", ".hidden/passwd");

    let p = linked("gone.txt", "nowhere.txt");
    assert_link_refused(&p, "gone.txt", "nowhere.txt");
}

#[test]
fn an_asset_symlink_inside_the_tree_is_published_under_its_name() {
    let p = linked("css/alias.css", "../site.css");
    build(&p, 0, 64);
    assert_eq!(built(&p, "css/alias"), b"a{}");
    assert_eq!(built(&p, "site"), b"a{}");

    // A link to a directory stays refused, even inside.
    let p = linked("css2", "css");
    std::fs::create_dir_all(p.path().join("static/css")).unwrap();
    let err = build(&p, 1, 64);
    assert!(
        err.contains("static/css2") && err.contains("symlink"),
        "{err}"
    );
    assert_nothing_built(&p);
}

// ----------------------------------------------------------------- scanners

/// Builds a tree with one `file` holding `contents`, which references a
/// missing file; the error must point at `line:column` and name `reference`.
fn missing_at(file: &str, contents: impl AsRef<[u8]>, at: &str, reference: &str) {
    let p = assets_project();
    p.write(&format!("static/{file}"), contents);
    let err = build(&p, 1, 128);
    let want = format!("{file}:{at}: ");
    assert!(err.contains(&want), "want {want}:\n{err}");
    assert!(
        err.contains(&format!("(reference \"{reference}\")")),
        "{err}"
    );
    assert_nothing_built(&p);
}

#[test]
fn unterminated_strings_and_comments_at_the_end_of_a_file() {
    missing_at("a.css", "a{b:url('gone.png", "1:10", "gone.png");
    missing_at("a.css", "a{b:url(gone.png", "1:9", "gone.png");
    missing_at("a.css", "@import 'gone.css", "1:10", "gone.css");
    missing_at("a.js", "import './gone.js", "1:9", "./gone.js");
    missing_at(
        "a.js",
        "x;import('./gone.js')/* never closed",
        "1:11",
        "./gone.js",
    );
    missing_at("a.html", "<img src='gone.png", "1:11", "gone.png");
    missing_at(
        "a.html",
        "<p><img src=gone.png><!-- <img src=no.png>",
        "1:13",
        "gone.png",
    );
    // Nothing else is found in what never ends.
    let p = assets_project();
    p.write("static/a.css", "/* url(gone.png)");
    p.write("static/b.js", "x = `import('./gone.js')");
    p.write("static/c.js", "x = '\\");
    build(&p, 0, 64);
}

#[test]
fn crlf_and_lone_cr_lines_are_counted_right() {
    missing_at("a.css", "a{}\r\nb{}\rc{d:url(gone.png)}", "3:9", "gone.png");
    missing_at("a.js", "f();\r\n\rimport './gone.js'", "3:9", "./gone.js");
    missing_at(
        "a.html",
        "<p>\r\n<p>\r<img src=gone.png>",
        "3:10",
        "gone.png",
    );
}

#[test]
fn nul_bytes_are_text_like_any_other() {
    missing_at("a.css", "\0a{b:url(gone.png)}", "1:10", "gone.png");
    missing_at("a.js", "\0;import './gone.js'", "1:11", "./gone.js");
    missing_at("a.html", "\0<img src=gone.png>", "1:11", "gone.png");
}

#[test]
fn invalid_utf8_is_reported_where_it_is() {
    let p = assets_project();
    p.write("static/a.css", b"a{}\nb{c:url(\xff)}");
    p.write("static/b.js", b"\xc3(");
    p.write("static/i.png", b"\xff\xfe");
    let err = build(&p, 1, 64);
    assert!(err.contains("a.css:2:9: file is not valid UTF-8"), "{err}");
    assert!(err.contains("b.js:1:1: file is not valid UTF-8"), "{err}");
    assert!(!err.contains("i.png"), "{err}");
    assert_nothing_built(&p);
}

#[test]
fn deep_nesting_is_linear_and_never_overflows_the_stack() {
    let n = 1_000_000;
    missing_at(
        "a.js",
        format!("{}{}import('./gone.js')", "(".repeat(n), "`${".repeat(n)),
        &format!("1:{}", 4 * n + 9),
        "./gone.js",
    );
    // An import map nested a million deep is not an import map.
    let p = assets_project();
    p.write(
        "static/a.html",
        format!(
            "<script type=importmap>{{\"imports\": {{\"a\": \"./gone.js\"}}, \"x\": {}</script>",
            "[".repeat(n)
        ),
    );
    build(&p, 0, 128);
}

#[test]
fn overlapping_patterns_are_scanned_once() {
    // Every `import` starts an import clause that runs to the end.
    let n = 1_000_000;
    missing_at(
        "a.js",
        format!("{}from './gone.js'", "import,".repeat(n)),
        &format!("1:{}", 7 * n + 7),
        "./gone.js",
    );
    // Raw-text elements and attributes by the million.
    missing_at(
        "a.html",
        format!(
            "{}<img {}src=gone.png>",
            "<title></TITLE>".repeat(n / 10),
            "a ".repeat(n)
        ),
        &format!("1:{}", 15 * n / 10 + 5 + 2 * n + 4 + 1),
        "gone.png",
    );
    // A million `&` that start no character reference.
    let p = assets_project();
    p.write("static/i.png", "PNG");
    p.write(
        "static/a.html",
        format!("<img src=\"i.png?{}\">", "&".repeat(n)),
    );
    build(&p, 0, 128);
    let out = String::from_utf8(built(&p, "a")).unwrap();
    assert!(out.starts_with("<img src=\"i."), "{}", &out[..40]);
    assert!(out.ends_with(&format!(".png?{}\">", "&amp;".repeat(n))));
}
