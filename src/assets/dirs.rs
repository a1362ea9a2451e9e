//! The module that tells page code where each hashed directory
//! (`assets.hash_dirs`) went: `verbatim-dirs.js`, made by the build and
//! fingerprinted like any file. Code that builds URLs from a directory at
//! run time (Monaco's `paths.vs`, sql.js's `locateFile`) reads the
//! directory's URL from it:
//!
//! ```js
//! const { dirs } = await import('/static/verbatim-dirs.js');
//! require.config({ paths: { vs: dirs['vendor/monaco/vs'] } });
//! ```
//!
//! Its text names one file of each directory by a `new URL(…,
//! import.meta.url)` the rewriter brings up to date (the directory's
//! segment becomes its hashed name); the module cuts the file off at run
//! time, so it holds no name the build must know in advance. Pure.

/// The module's logical path in the assets tree.
pub const MODULE: &str = "verbatim-dirs.js";

/// The module's text for the hashed directories `dirs` (logical paths,
/// no trailing `/`), naming for each the first of `paths` (the tree's
/// logical paths) inside it whose path there needs no percent-encoding.
pub fn module<'a>(dirs: &[String], paths: impl Iterator<Item = &'a str> + Clone) -> String {
    let mut out = String::from(
        "// Made by verbatim (assets.hash_dirs): each hashed directory's logical path\n\
         // to its URL as published, ending with `/`.\n\
         const at = (url, file) => url.slice(0, url.length - file.length);\n\
         export const dirs = {\n",
    );
    for dir in dirs {
        let plain = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '~' | '-' | '/');
        let file = paths.clone().find_map(|p| {
            let rest = p.strip_prefix(dir.as_str())?.strip_prefix('/')?;
            (dir.chars().all(plain) && rest.chars().all(plain)).then_some(rest)
        });
        let Some(file) = file else { continue };
        out.push_str(&format!(
            "  {dir:?}: at(new URL(\"./{dir}/{file}\", import.meta.url).href, {file:?}),\n"
        ));
    }
    out.push_str("};\nexport default dirs;\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_per_directory_naming_a_plain_file() {
        let dirs = ["vendor/monaco/vs".to_owned(), "vendor/sqljs".to_owned()];
        let paths = [
            "index.html",
            "vendor/monaco/vs/a b.js",
            "vendor/monaco/vs/loader.js",
            "vendor/sqljs/sql-wasm.wasm",
            "vendor/sqljs2/x.js",
        ];
        let text = module(&dirs, paths.iter().copied());
        assert!(text.contains(
            "  \"vendor/monaco/vs\": at(new URL(\"./vendor/monaco/vs/loader.js\", import.meta.url).href, \"loader.js\"),\n"
        ), "{text}");
        assert!(text.contains(
            "  \"vendor/sqljs\": at(new URL(\"./vendor/sqljs/sql-wasm.wasm\", import.meta.url).href, \"sql-wasm.wasm\"),\n"
        ), "{text}");
        // What the scanner reads in it: one reference per directory.
        let refs = crate::assets::js::js_references(&text);
        assert_eq!(refs.len(), 2, "{refs:?}");
    }
}
