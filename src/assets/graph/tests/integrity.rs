//! Integrity values: checked against the tree, and brought up to date with
//! the published bytes.

use super::*;

#[test]
fn stale_integrity_attributes_get_the_published_digest() {
    // Self-hosted Bootstrap as its documentation shows it: the
    // stylesheet ends with a sourceMappingURL, which is rewritten, so
    // the integrity attribute copied from the docs (the digest of the
    // file as shipped) would block it.
    let css = "body{margin:0}\n/*# sourceMappingURL=bootstrap.min.css.map */";
    let js = "export const x = 1;";
    let cdn = "<script src=\"https://cdn.jsdelivr.net/npm/bootstrap@5.3.3/dist/js/bootstrap.bundle.min.js\" \
                   integrity=\"sha384-YvpcrYf0tY3lHB60NNkmXc5s9fDVZLESaAA55NDzOxhy9GkcIdslK1eN7N6jIeHz\" \
                   crossorigin=\"anonymous\"></script>";
    let page = format!(
            "<link href=\"css/bootstrap.min.css\" rel=\"stylesheet\" integrity=\"{}\" crossorigin=\"anonymous\">\n\
             <script type=module src=js/app.js integrity='sha384-bogus {}'></script>\n{cdn}",
            sri::integrity(css.as_bytes()),
            format_args!("sha512-{}", crate::digest::base64(&sha2::Sha512::digest(js))),
        );
    for kept in [false, true] {
        let mut inp = input(&[
            ("css/bootstrap.min.css", css),
            ("css/bootstrap.min.css.map", "{}"),
            ("js/app.js", js),
            ("index.html", &page),
        ]);
        if kept {
            inp.keep.insert("index.html".into());
        }
        let out = run(&inp);
        let css_out = &out.files["css/bootstrap.min.css"];
        assert_ne!(out.bytes_of(css_out), css.as_bytes());
        let html = text(&out, "index.html");
        // The changed stylesheet's attribute holds the manifest's value;
        // the unchanged script's and the CDN's are left as written.
        let want = format!(
                "<link href=\"css/{}\" rel=\"stylesheet\" integrity=\"{}\" crossorigin=\"anonymous\">\n\
                 <script type=module src=js/{} integrity='sha384-bogus {}'></script>\n{cdn}",
                css_out.name.replace("css/", ""),
                sri::integrity(out.bytes_of(css_out)),
                out.files["js/app.js"].name.replace("js/", ""),
                format_args!("sha512-{}", crate::digest::base64(&sha2::Sha512::digest(js))),
            );
        assert_eq!(html, want, "kept: {kept}");
        assert_eq!(out.files["index.html"].kept, kept);
    }
}

#[test]
fn integrity_must_match_the_file_in_the_tree() {
    let inp = input(&[
            ("a.js", "1"),
            (
                "page.html",
                "<script src=a.js integrity=\"sha256-AAAAL3z2vDgxUt0W3dWQOrprscmda2Y5pLsLg4GF+pI=\"></script>\n\
                 <script src=a.js integrity=\"md5-whatever\"></script>",
            ),
        ]);
    assert_eq!(
        errors(&inp),
        [
            "page.html:1:13: integrity \"sha256-AAAAL3z2vDgxUt0W3dWQOrprscmda2Y5pLsLg4GF+pI=\" \
              does not match \"a.js\" as it is in the tree; fix or remove it \
              (it is kept up to date with the published bytes) (reference \"a.js\")"
        ]
    );
    // So must an import map's, at its key.
    let inp = input(&[
        ("a.js", "1"),
        (
            "page.html",
            "<script type=importmap>{\"integrity\": {\n  \"./a.js\": \"sha384-AAAA\", \
                 \"https://x.org/a.js\": \"sha384-AAAA\", \"a.js\": 3}}</script>",
        ),
    ]);
    assert_eq!(
        errors(&inp),
        [
            "page.html:2:4: integrity \"sha384-AAAA\" does not match \"a.js\" as it is in \
              the tree; fix or remove it (it is kept up to date with the published bytes) \
              (reference \"./a.js\")"
        ]
    );
}

#[test]
fn integrity_inside_a_reference_cycle() {
    // A page whose script refers back to it: the script's bytes are
    // known once the group is named, then the page's attribute.
    let js = "new URL('./page.html', import.meta.url);";
    let page = format!(
        "<script src=a.js integrity={}></script>",
        sri::integrity(js.as_bytes())
    );
    let out = run(&input(&[("a.js", js), ("page.html", &page)]));
    let a = &out.files["a.js"];
    assert_ne!(out.bytes_of(a), js.as_bytes());
    assert!(text(&out, "page.html").contains(&sri::integrity(out.bytes_of(a))));
}
