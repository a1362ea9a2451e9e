//! What the command line says: config errors drawn on real lines, help
//! under the right headings, one duration syntax, arguments that are not
//! UTF-8, permission errors that say whose the path is, man pages.

use crate::util::Project;

/// A TOML syntax error shows the line and a caret on lines of their own,
/// not a literal `\n`; `--json` carries the same lines exactly.
#[test]
fn a_toml_error_is_drawn_on_real_lines() {
    let p = Project::with_config("[app]\ndir = \"app\"\nexclud = [\"x\"]\n");
    let err = p.fails(&["build"], 2);
    assert!(!err.contains("\\n"), "a literal \\n:\n{err}");
    let lines: Vec<&str> = err.lines().collect();
    assert!(
        lines[0].starts_with("error: invalid config verbatim.toml: TOML parse error at line 3"),
        "{err}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.trim_start() == "3 | exclud = [\"x\"]"),
        "{err}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.trim_start().starts_with("unknown field `exclud`")),
        "{err}"
    );
    let out = p.run(&["build", "--json"]);
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let message = doc["error"]["message"].as_str().unwrap();
    assert!(message.contains("\n  3 | exclud"), "{message:?}");
}
