//! Content types for the files of a fingerprinted tree, so the server (or the
//! object-store uploader) sends each asset with the right `Content-Type`.

/// The `Content-Type` for a logical path, chosen by its (case-insensitive)
/// extension; text types carry `; charset=utf-8`.
pub fn content_type(path: &str) -> &'static str {
    let name = path.rsplit('/').next().unwrap_or(path);
    let ext = match name.rfind('.') {
        Some(i) => &name[i + 1..],
        None => return "application/octet-stream",
    };
    match ext.to_ascii_lowercase().as_str() {
        // What a browser checks: a module script, a worker and a script
        // under `nosniff` need a JavaScript MIME type, a stylesheet
        // `text/css`, a JSON module a JSON MIME type, a `<track>`
        // `text/vtt`, `WebAssembly.instantiateStreaming` `application/wasm`,
        // and an SVG renders as an image only as `image/svg+xml`.
        "css" => "text/css; charset=utf-8",
        "js" | "mjs" | "cjs" => "text/javascript; charset=utf-8",
        "html" | "htm" => "text/html; charset=utf-8",
        "xhtml" => "application/xhtml+xml; charset=utf-8",
        "json" | "map" => "application/json; charset=utf-8",
        "jsonld" => "application/ld+json; charset=utf-8",
        "webmanifest" => "application/manifest+json; charset=utf-8",
        "gltf" => "model/gltf+json; charset=utf-8",
        "svg" => "image/svg+xml; charset=utf-8",
        "vtt" => "text/vtt; charset=utf-8",
        "txt" => "text/plain; charset=utf-8",
        // Fluent translations (pdf.js's viewer reads them as text).
        "ftl" => "text/plain; charset=utf-8",
        "xml" => "application/xml; charset=utf-8",
        "rss" => "application/rss+xml; charset=utf-8",
        "atom" => "application/atom+xml; charset=utf-8",
        "csv" => "text/csv; charset=utf-8",
        "md" => "text/markdown; charset=utf-8",
        "ics" => "text/calendar; charset=utf-8",
        "wgsl" => "text/wgsl; charset=utf-8",
        "png" => "image/png",
        "apng" => "image/apng",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "avif" => "image/avif",
        "jxl" => "image/jxl",
        "ico" | "cur" => "image/x-icon",
        "bmp" => "image/bmp",
        "tif" | "tiff" => "image/tiff",
        "woff" => "font/woff",
        "woff2" => "font/woff2",
        "ttf" => "font/ttf",
        "otf" => "font/otf",
        "eot" => "application/vnd.ms-fontobject",
        "wasm" => "application/wasm",
        "glb" => "model/gltf-binary",
        "mp4" | "m4v" => "video/mp4",
        "webm" => "video/webm",
        "ogv" => "video/ogg",
        "mov" => "video/quicktime",
        "m3u8" => "application/vnd.apple.mpegurl",
        "mpd" => "application/dash+xml",
        "mp3" => "audio/mpeg",
        "ogg" | "oga" | "opus" => "audio/ogg",
        "weba" => "audio/webm",
        "wav" => "audio/wav",
        "flac" => "audio/flac",
        "aac" => "audio/aac",
        "m4a" => "audio/mp4",
        "pdf" => "application/pdf",
        "epub" => "application/epub+zip",
        "zip" => "application/zip",
        // pdf.js: ICC colour profiles; its CMaps (`.bcmap`) and Type 1
        // standard fonts (`.pfb`) are plain binary data it fetches.
        "icc" => "application/vnd.iccprofile",
        "bcmap" | "pfb" => "application/octet-stream",
        _ => "application/octet-stream",
    }
}

/// WHATWG MIME Sniffing, "JavaScript MIME type": what a module script,
/// a worker or a `nosniff` script must be served as.
pub fn is_javascript(essence: &str) -> bool {
    matches!(
        essence,
        "application/ecmascript"
            | "application/javascript"
            | "application/x-ecmascript"
            | "application/x-javascript"
            | "text/ecmascript"
            | "text/javascript"
            | "text/javascript1.0"
            | "text/javascript1.1"
            | "text/javascript1.2"
            | "text/javascript1.3"
            | "text/javascript1.4"
            | "text/javascript1.5"
            | "text/jscript"
            | "text/livescript"
            | "text/x-ecmascript"
            | "text/x-javascript"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The MIME type's essence: type and subtype, lower-cased, no parameters.
    fn essence(content_type: &str) -> String {
        content_type
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase()
    }

    /// WHATWG MIME Sniffing, "JSON MIME type": what a JSON module must be.
    fn is_json(essence: &str) -> bool {
        essence == "application/json" || essence == "text/json" || essence.ends_with("+json")
    }

    /// What ORB (opaque-response blocking) lets through to an `<img>`,
    /// `<video>` or font from another origin: never HTML, JSON or XML.
    fn orb_safe_media(essence: &str) -> bool {
        ["image/", "video/", "audio/", "font/"]
            .iter()
            .any(|p| essence.starts_with(p))
            || essence == "application/octet-stream"
            || essence == "application/vnd.ms-fontobject"
    }

    #[test]
    fn what_browsers_enforce() {
        // pdf.js's layout (pdfjs-dist): ES modules, a worker, WebAssembly
        // decoders fetched with instantiateStreaming, CMaps and fonts.
        for p in [
            "pdfjs/build/pdf.mjs",
            "pdfjs/build/pdf.worker.min.mjs",
            "assets/index-9GimqxIf.js",
            "legacy/app.cjs",
            "A.JS",
        ] {
            assert!(is_javascript(&essence(content_type(p))), "{p}");
        }
        for p in ["pdfjs/wasm/openjpeg.wasm", "pkg/app_bg.wasm"] {
            assert_eq!(essence(content_type(p)), "application/wasm", "{p}");
        }
        assert_eq!(essence(content_type("css/site.CSS")), "text/css");
        assert_eq!(essence(content_type("subs/en.vtt")), "text/vtt");
        assert_eq!(essence(content_type("i.svg")), "image/svg+xml");
        for p in [
            "data.json",
            "assets/index-9GimqxIf.js.map",
            "site.webmanifest",
            "scene.gltf",
            "org.jsonld",
        ] {
            assert!(is_json(&essence(content_type(p))), "{p}");
        }
        for p in [
            "a.png",
            "a.apng",
            "a.jpg",
            "a.jpeg",
            "a.gif",
            "a.webp",
            "a.avif",
            "a.jxl",
            "a.ico",
            "a.cur",
            "a.bmp",
            "a.tiff",
            "f.woff",
            "f.woff2",
            "f.ttf",
            "f.otf",
            "f.eot",
            "v.mp4",
            "v.webm",
            "v.ogv",
            "v.mov",
            "a.mp3",
            "a.ogg",
            "a.opus",
            "a.weba",
            "a.wav",
            "a.flac",
            "a.aac",
            "a.m4a",
            "pdfjs/cmaps/UniJIS-UCS2-H.bcmap",
            "pdfjs/standard_fonts/FoxitSans.pfb",
        ] {
            assert!(orb_safe_media(&essence(content_type(p))), "{p}");
        }
    }

    #[test]
    fn types() {
        let cases = [
            ("css/site.3fa9c1d2e4b5.css", "text/css; charset=utf-8"),
            ("a.MJS", "text/javascript; charset=utf-8"),
            ("index.html", "text/html; charset=utf-8"),
            ("site.css.map", "application/json; charset=utf-8"),
            (
                "site.webmanifest",
                "application/manifest+json; charset=utf-8",
            ),
            ("i.svg", "image/svg+xml; charset=utf-8"),
            ("captions/en.vtt", "text/vtt; charset=utf-8"),
            ("f.woff2", "font/woff2"),
            ("f.woff", "font/woff"),
            ("f.ttf", "font/ttf"),
            ("f.otf", "font/otf"),
            ("x.wasm", "application/wasm"),
            ("photo.JPEG", "image/jpeg"),
            ("photo.avif", "image/avif"),
            ("pdfjs/iccs/profile.icc", "application/vnd.iccprofile"),
            ("pdfjs/cmaps/78-EUC-H.bcmap", "application/octet-stream"),
            ("LICENSE", "application/octet-stream"),
            ("dir.v1/LICENSE", "application/octet-stream"),
            ("a.unknown", "application/octet-stream"),
        ];
        for (path, expected) in cases {
            assert_eq!(content_type(path), expected, "{path}");
        }
        // Text types say their charset; binary ones never do.
        for ext in [
            "css", "js", "html", "json", "map", "svg", "vtt", "txt", "xml", "csv", "md",
        ] {
            assert!(
                content_type(&format!("a.{ext}")).ends_with("; charset=utf-8"),
                "{ext}"
            );
        }
        for ext in ["png", "woff2", "wasm", "pdf", "mp4", "bcmap"] {
            assert!(
                !content_type(&format!("a.{ext}")).contains("charset"),
                "{ext}"
            );
        }
    }
}
