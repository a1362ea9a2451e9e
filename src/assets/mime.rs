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
        "css" => "text/css; charset=utf-8",
        "js" | "mjs" | "cjs" => "text/javascript; charset=utf-8",
        "html" | "htm" => "text/html; charset=utf-8",
        "json" | "map" => "application/json; charset=utf-8",
        "webmanifest" => "application/manifest+json; charset=utf-8",
        "svg" => "image/svg+xml; charset=utf-8",
        "txt" => "text/plain; charset=utf-8",
        "xml" => "application/xml; charset=utf-8",
        "csv" => "text/csv; charset=utf-8",
        "md" => "text/markdown; charset=utf-8",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "avif" => "image/avif",
        "ico" => "image/x-icon",
        "bmp" => "image/bmp",
        "woff" => "font/woff",
        "woff2" => "font/woff2",
        "ttf" => "font/ttf",
        "otf" => "font/otf",
        "eot" => "application/vnd.ms-fontobject",
        "wasm" => "application/wasm",
        "mp4" => "video/mp4",
        "webm" => "video/webm",
        "ogv" => "video/ogg",
        "mp3" => "audio/mpeg",
        "ogg" | "oga" => "audio/ogg",
        "wav" => "audio/wav",
        "m4a" => "audio/mp4",
        "pdf" => "application/pdf",
        "zip" => "application/zip",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types() {
        let cases = [
            ("css/site.3fa9c1d2e4b5.css", "text/css; charset=utf-8"),
            ("a.MJS", "text/javascript; charset=utf-8"),
            ("index.html", "text/html; charset=utf-8"),
            ("site.css.map", "application/json; charset=utf-8"),
            ("i.svg", "image/svg+xml; charset=utf-8"),
            ("f.woff2", "font/woff2"),
            ("x.wasm", "application/wasm"),
            ("photo.JPEG", "image/jpeg"),
            ("LICENSE", "application/octet-stream"),
            ("dir.v1/LICENSE", "application/octet-stream"),
            ("a.unknown", "application/octet-stream"),
        ];
        for (path, expected) in cases {
            assert_eq!(content_type(path), expected, "{path}");
        }
    }
}
