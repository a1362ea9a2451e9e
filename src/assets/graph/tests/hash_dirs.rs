//! Hashed directories: named as a whole after their files' paths and
//! digests, and the references into them rewritten from the directory on.

use super::*;

#[test]
fn a_reference_into_a_hashed_dir_is_rewritten_from_the_dir_on() {
    for (value, name, tail, want) in [
        (
            "../v/cmaps/a%20b/x.bcmap?q",
            "v/cmaps.0123/a b/x.bcmap",
            3,
            "../v/cmaps.0123/a%20b/x.bcmap?q",
        ),
        ("cmaps/x", "cmaps.0123/x", 2, "cmaps.0123/x"),
        (
            "https://cdn.example.com/s/cmaps/x",
            "cmaps.0123/x",
            2,
            "https://cdn.example.com/s/cmaps.0123/x",
        ),
    ] {
        assert_eq!(new_url(value, name, tail), want);
    }
}

fn pdfjs(extra: &[(&str, &str)]) -> Input {
    let mut files = vec![
        ("vendor/pdfjs/cmaps/UniJIS-UCS2-H.bcmap", "CMAP-1"),
        ("vendor/pdfjs/cmaps/Adobe-Japan1-0.bcmap", "CMAP-2"),
        ("vendor/pdfjs/cmaps/sub/deep.bcmap", "CMAP-3"),
        ("vendor/pdfjs/standard_fonts/FoxitSans.pfb", "PFB"),
        (
            "css/viewer.css",
            "a{b:url(../vendor/pdfjs/cmaps/UniJIS-UCS2-H.bcmap)} \
                 c{d:url(/static/vendor/pdfjs/cmaps/sub/deep.bcmap?x#y)}",
        ),
        (
            "js/viewer.js",
            "const f = new URL('../vendor/pdfjs/standard_fonts/FoxitSans.pfb', import.meta.url);",
        ),
    ];
    files.extend_from_slice(extra);
    let mut inp = input(&files);
    inp.hash_dirs = vec![
        "vendor/pdfjs/cmaps".into(),
        "vendor/pdfjs/standard_fonts".into(),
    ];
    inp
}

#[test]
fn hashed_dirs_are_named_as_a_whole() {
    let inp = pdfjs(&[]);
    let out = run(&inp);
    let cmaps = out.dirs["vendor/pdfjs/cmaps"].clone();
    let fonts = out.dirs["vendor/pdfjs/standard_fonts"].clone();
    // The hash of the tree: each file's path in the directory and the
    // digest of its final bytes.
    let files = [
        "UniJIS-UCS2-H.bcmap",
        "Adobe-Japan1-0.bcmap",
        "sub/deep.bcmap",
    ];
    let digests: Vec<Digest> = files
        .iter()
        .map(|f| Digest::of(&inp.files[&format!("vendor/pdfjs/cmaps/{f}")]))
        .collect();
    let hash = dir_hash(files.iter().copied().zip(&digests));
    assert_eq!(
        cmaps,
        hashed_dir_name("vendor/pdfjs/cmaps", &hash.hex(), 12)
    );
    assert_eq!(cmaps.len(), "vendor/pdfjs/cmaps.".len() + 12);
    // Files keep their names inside it.
    for f in files {
        let out_file = &out.files[&format!("vendor/pdfjs/cmaps/{f}")];
        assert_eq!(out_file.name, format!("{cmaps}/{f}"));
        assert!(!out_file.kept);
    }
    assert_eq!(
        out.files["vendor/pdfjs/standard_fonts/FoxitSans.pfb"].name,
        format!("{fonts}/FoxitSans.pfb")
    );
    // References into it are rewritten from the directory's name on.
    let c = cmaps.rsplit('/').next().unwrap();
    assert_eq!(
        text(&out, "css/viewer.css"),
        format!(
            "a{{b:url(../vendor/pdfjs/{c}/UniJIS-UCS2-H.bcmap)}} \
                 c{{d:url(/static/vendor/pdfjs/{c}/sub/deep.bcmap?x#y)}}"
        )
    );
    let f = fonts.rsplit('/').next().unwrap();
    assert!(text(&out, "js/viewer.js").contains(&format!("'../vendor/pdfjs/{f}/FoxitSans.pfb'")));
    assert_eq!(out, run(&inp), "deterministic");
}

#[test]
fn any_change_in_a_hashed_dir_renames_it() {
    let base = run(&pdfjs(&[]));
    let name = |out: &Output| out.dirs["vendor/pdfjs/cmaps"].clone();
    for change in [
        ("vendor/pdfjs/cmaps/Adobe-Japan1-0.bcmap", "CMAP-2!"),
        ("vendor/pdfjs/cmaps/sub/deep.bcmap", "CMAP-3!"),
        ("vendor/pdfjs/cmaps/new.bcmap", ""),
    ] {
        let out = run(&pdfjs(&[change]));
        assert_ne!(name(&out), name(&base), "{change:?}");
        // The other directory, and its referrer's name, stay.
        assert_eq!(
            out.dirs["vendor/pdfjs/standard_fonts"],
            base.dirs["vendor/pdfjs/standard_fonts"]
        );
        assert_eq!(
            out.files["js/viewer.js"].name,
            base.files["js/viewer.js"].name
        );
        // The stylesheet naming a file inside is renamed too.
        assert_ne!(
            out.files["css/viewer.css"].name,
            base.files["css/viewer.css"].name
        );
    }
    // A file renamed inside: same bytes, another path.
    let mut inp = pdfjs(&[]);
    let b = inp
        .files
        .remove("vendor/pdfjs/cmaps/sub/deep.bcmap")
        .unwrap();
    inp.files
        .insert("vendor/pdfjs/cmaps/sub/deeper.bcmap".into(), b);
    inp.files.insert("css/viewer.css".into(), b"a{}".to_vec());
    assert_ne!(name(&run(&inp)), name(&base));
    // Order independence: the hash sorts its files.
    let d = [Digest::of(b"1"), Digest::of(b"2")];
    assert_eq!(
        dir_hash([("a", &d[0]), ("b", &d[1])]),
        dir_hash([("b", &d[1]), ("a", &d[0])])
    );
    // The encoding is unambiguous: paths are length-prefixed.
    assert_ne!(dir_hash([("ab", &d[0])]), dir_hash([("a", &d[0])]),);
}

#[test]
fn files_in_a_hashed_dir_are_rewritten_and_hashed_as_stored() {
    // A stylesheet inside refers out (rewritten, and its rewritten
    // bytes are what the directory is named after) and in (left as
    // written: relative paths stay inside the renamed directory).
    let mut inp = input(&[
        ("img/x.png", "PNG"),
        ("vendor/leaflet/images/marker.png", "M"),
        (
            "vendor/leaflet/leaflet.css",
            "a{b:url(images/marker.png)} c{d:url(../../img/x.png)}",
        ),
    ]);
    inp.hash_dirs = vec!["vendor/leaflet".into()];
    let out = run(&inp);
    let dir = &out.dirs["vendor/leaflet"];
    let css = &out.files["vendor/leaflet/leaflet.css"];
    assert_eq!(css.name, format!("{dir}/leaflet.css"));
    assert_eq!(
        text(&out, "vendor/leaflet/leaflet.css"),
        format!(
            "a{{b:url(images/marker.png)}} c{{d:url(../../img/{})}}",
            out.files["img/x.png"].name.replace("img/", "")
        )
    );
    let hash = dir_hash([
        ("images/marker.png", &Digest::of(b"M")),
        ("leaflet.css", &css.sha256),
    ]);
    assert_eq!(*dir, hashed_dir_name("vendor/leaflet", &hash.hex(), 12));
    // A change outside that the directory refers to renames it.
    inp.files.insert("img/x.png".into(), b"PNG2".to_vec());
    assert_ne!(&run(&inp).dirs["vendor/leaflet"], dir);
}

#[test]
fn integrity_inside_a_hashed_dir_is_brought_up_to_date() {
    let js = "import '../x.js';";
    let page = format!(
        "<script type=module src=z.js integrity={}></script>",
        sri::integrity(js.as_bytes())
    );
    let mut inp = input(&[("d/page.html", &page), ("d/z.js", js), ("x.js", "1")]);
    inp.hash_dirs = vec!["d".into()];
    let out = run(&inp);
    let z = &out.files["d/z.js"];
    assert_ne!(out.bytes_of(z), js.as_bytes());
    assert_eq!(
        text(&out, "d/page.html"),
        format!(
            "<script type=module src=z.js integrity={}></script>",
            sri::integrity(out.bytes_of(z))
        )
    );
    let hash = dir_hash([
        ("z.js", &z.sha256),
        ("page.html", &out.files["d/page.html"].sha256),
    ]);
    assert_eq!(out.dirs["d"], hashed_dir_name("d", &hash.hex(), 12));
}

#[test]
fn hashed_dir_errors() {
    // A reference between its files that would not survive the rename.
    let mut inp = input(&[
        (
            "d/a.css",
            "a{b:url(/static/d/b.png)} c{d:url(../d/b.png)} e{f:url(./b.png)}",
        ),
        ("d/b.png", "B"),
        ("x.css", "a{b:url(d/./b.png)}"),
    ]);
    inp.hash_dirs = vec!["d".into()];
    let e = errors(&inp);
    assert_eq!(e.len(), 3, "{e:?}");
    assert!(
        e[0].starts_with("d/a.css:1:9: \"d/b.png\" is in the same hashed directory"),
        "{e:?}"
    );
    assert!(e[1].starts_with("d/a.css:1:35: "), "{e:?}");
    assert!(
        e[2].starts_with("x.css:1:9: \"d/b.png\" is in a hashed directory"),
        "{e:?}"
    );
    // A cycle through the directory.
    let mut inp = input(&[
        ("d/a.css", "a{b:url(../x.css)}"),
        ("x.css", "a{b:url(d/a.css)}"),
    ]);
    inp.hash_dirs = vec!["d".into()];
    let e = errors(&inp);
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(
        e[0].starts_with("d/a.css:1:9: reference cycle through the hashed directory \"d\""),
        "{e:?}"
    );
    // Kept and hashed at once.
    let mut inp = input(&[("d/a.js", "1")]);
    inp.hash_dirs = vec!["d".into()];
    inp.keep.insert("d/a.js".into());
    assert!(errors(&inp)[0].contains("also keeps its name"));
}

#[test]
fn hashed_dirs_are_recognised() {
    let h = "0123456789ab";
    assert_eq!(
        hashed_dir_of("v/cmaps/a/x.bcmap", &format!("v/cmaps.{h}/a/x.bcmap")),
        Some(("v/cmaps", format!("v/cmaps.{h}").as_str()))
    );
    assert_eq!(
        hashed_dir_of("cmaps/x", &format!("cmaps.{h}/x")),
        Some(("cmaps", format!("cmaps.{h}").as_str()))
    );
    for (logical, name) in [
        ("css/site.css", format!("css/site.{h}.css")),
        ("v/cmaps/x", format!("v/cmaps.{}/x", &h[..8])),
        ("v/cmaps/x", "v/cmaps.0123456789AB/x".to_owned()),
        ("v/cmaps/x", format!("v/cmaps.{h}/y")),
        ("v/cmaps/x", format!("w/cmaps.{h}/x")),
        ("v/cmaps/x", "v/cmaps/x".to_owned()),
    ] {
        assert_eq!(hashed_dir_of(logical, &name), None, "{name}");
    }
}
