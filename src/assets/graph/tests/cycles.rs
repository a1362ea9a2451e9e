//! Reference cycles: named as a group, except CSS `@import` cycles, which
//! are errors.

use super::*;

#[test]
fn js_cycle() {
    let files = [
        ("a.js", "import {b} from './b.js'; export const a = 1;"),
        (
            "b.js",
            "import {a} from './a.js'; import './leaf.js'; export const b = 2;",
        ),
        ("c.js", "import {a} from './a.js';"),
        ("leaf.js", "export {};"),
        ("self.js", "import('./self.js');"),
    ];
    let out = run(&input(&files));
    let m = out.manifest();
    let name = |p: &str| m[p].clone();
    assert_eq!(
        text(&out, "a.js"),
        format!(
            "import {{b}} from './{}'; export const a = 1;",
            name("b.js")
        )
    );
    assert_eq!(
        text(&out, "b.js"),
        format!(
            "import {{a}} from './{}'; import './{}'; export const b = 2;",
            name("a.js"),
            name("leaf.js")
        )
    );
    assert_eq!(
        text(&out, "self.js"),
        format!("import('./{}');", name("self.js"))
    );
    for f in out.files.values() {
        assert_eq!(f.sha256, Digest::of(out.bytes_of(f)));
    }
    assert_eq!(out, run(&input(&files)), "deterministic");

    // A change below the cycle renames the whole cycle and its referrers.
    let mut changed = input(&files);
    changed
        .files
        .insert("leaf.js".into(), b"export const z = 0;".to_vec());
    let m2 = run(&changed).manifest();
    for p in ["a.js", "b.js", "c.js", "leaf.js"] {
        assert_ne!(m[p], m2[p], "{p}");
    }
    assert_eq!(m["self.js"], m2["self.js"]);
}

#[test]
fn css_import_cycle_is_an_error() {
    let inp = input(&[
        ("a.css", "@import 'b.css';"),
        ("b.css", "@import url(c.css);"),
        ("c.css", "x{}\n  @import \"a.css\";"),
        ("d.css", "@import 'd.css';"),
    ]);
    assert_eq!(
        errors(&inp),
        vec![
            "a.css:1:10: CSS @import cycle: a.css -> b.css -> c.css -> a.css (reference \"b.css\")",
            "d.css:1:10: CSS @import cycle: d.css -> d.css (reference \"d.css\")",
        ]
    );
}

#[test]
fn a_cycle_of_kept_and_renamed_files() {
    let files = [
        ("kept.js", "import './renamed.js';"),
        ("renamed.js", "import './kept.js'; import './leaf.js';"),
        ("leaf.js", "export {};"),
    ];
    let mut inp = input(&files);
    inp.keep.insert("kept.js".into());
    let out = run(&inp);
    let renamed = out.files["renamed.js"].name.clone();
    assert_ne!(renamed, "renamed.js");
    assert_eq!(out.files["kept.js"].name, "kept.js");
    assert_eq!(text(&out, "kept.js"), format!("import './{renamed}';"));
    assert_eq!(
        text(&out, "renamed.js"),
        format!(
            "import './kept.js'; import './{}';",
            out.files["leaf.js"].name
        )
    );
    assert_eq!(out, run(&inp), "deterministic");
    // A change in the kept member renames the renamed one.
    inp.files
        .insert("kept.js".into(), b"import './renamed.js'; 1;".to_vec());
    assert_ne!(run(&inp).files["renamed.js"].name, renamed);
    // A cycle of kept files only is left as it is.
    let mut inp = input(&files);
    inp.keep = ["kept.js", "renamed.js", "leaf.js"]
        .map(String::from)
        .into();
    let out = run(&inp);
    for (p, f) in &out.files {
        assert_eq!((&f.name, out.bytes_of(f)), (p, &inp.files[p][..]));
    }
}
