//! The request side of the server: the layer before `ServeDir` ([`guard`]) that answers only
//! `GET` and `HEAD`, decodes the path once, strictly, and refuses `.`, `..`, hidden segments,
//! backslashes and NUL; on the answer it sets our content types, the cache policy (a year,
//! `immutable`, for data record files named by their hash; `no-cache` for the rest) and holds the
//! body to its length ([`super::files::ExactLength`]). Also the `--verbose` log and the plain-text
//! error pages.

use super::files::ExactLength;
use axum::body::Body;
use axum::extract::{ConnectInfo, Request};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::net::SocketAddr;
use std::path::{Component, Path};
use std::time::Instant;

/// What comes before `ServeDir`: only `GET` and `HEAD`; the path decoded once, strictly, and
/// refused if a segment is `.`, `..`, hidden, or holds a backslash or NUL. Then, on the answer,
/// our content types (with `charset`, which `ServeDir` leaves out), the cache policy, a `301`
/// for the redirect to a directory's `/` (`ServeDir` answers `307`; the move is permanent), and
/// a body held to its length.
pub(super) async fn guard(req: Request, next: Next) -> Response {
    if !matches!(*req.method(), Method::GET | Method::HEAD) {
        let mut r = error(StatusCode::METHOD_NOT_ALLOWED);
        r.headers_mut().insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
        return r;
    }
    let path = req.uri().path();
    // Origin form `/a/b` (an absolute-form target `http://host/a/b` has its path too); not `*`.
    let Some(decoded) = path.starts_with('/').then(|| percent_decode(path)).flatten() else {
        return error(StatusCode::BAD_REQUEST);
    };
    let Ok(decoded) = String::from_utf8(decoded) else {
        return error(StatusCode::BAD_REQUEST);
    };
    let Some(segments) = segments(&decoded) else {
        return error(StatusCode::NOT_FOUND);
    };
    let name = match segments.last() {
        Some(last) if !decoded.ends_with('/') => last.to_string(),
        _ => "index.html".to_string(),
    };
    let head = req.method() == Method::HEAD;

    let mut res = next.run(req).await;
    let status = res.status();
    if status == StatusCode::TEMPORARY_REDIRECT {
        *res.status_mut() = StatusCode::MOVED_PERMANENTLY;
    }
    let h = res.headers_mut();
    if status.is_success() || status == StatusCode::NOT_MODIFIED {
        let cache = if is_hashed_record(&name) { "public, max-age=31536000, immutable" } else { "no-cache" };
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
        if h.contains_key(header::CONTENT_TYPE) {
            h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type(&name)));
        }
    } else {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    let len = h.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse().ok());
    match len {
        Some(len) if !head && matches!(status, StatusCode::OK | StatusCode::PARTIAL_CONTENT) => {
            res.map(|body| Body::new(ExactLength { inner: body, remaining: len }))
        }
        _ => res,
    }
}

/// `--verbose`: one line per response on stderr, when its head is ready.
pub(super) async fn log(ConnectInfo(peer): ConnectInfo<SocketAddr>, req: Request, next: Next) -> Response {
    let (method, target, started) = (req.method().clone(), req.uri().to_string(), Instant::now());
    let res = next.run(req).await;
    let len = res.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).unwrap_or("-");
    let ms = started.elapsed().as_secs_f64() * 1e3;
    eprintln!("{peer} {method} {} {} {len} {ms:.1}ms", target.escape_debug(), res.status().as_u16());
    res
}

/// An error page: `404 Not Found` and the like, as plain text.
pub(super) fn error(status: StatusCode) -> Response {
    let text = format!("{} {}\n", status.as_u16(), status.canonical_reason().unwrap_or(""));
    (status, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], text).into_response()
}

/// Decodes `%XX` escapes once; `None` when an escape is malformed.
fn percent_decode(s: &str) -> Option<Vec<u8>> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            let hex = std::str::from_utf8(hex).ok()?;
            if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                return None;
            }
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    Some(out)
}

/// The segments of a decoded path, empty ones skipped; `None` when one is `.`, `..`, hidden,
/// holds a backslash or NUL, or is anything but a plain file name on this system.
pub(super) fn segments(path: &str) -> Option<Vec<&str>> {
    let mut out = Vec::new();
    for s in path.split('/').filter(|s| !s.is_empty()) {
        if s.starts_with('.') || s.contains(['\\', '\0']) {
            return None;
        }
        let mut c = Path::new(s).components();
        match (c.next(), c.next()) {
            (Some(Component::Normal(n)), None) if n == s => out.push(s),
            _ => return None,
        }
    }
    Some(out)
}

/// `train-<16 hex>.bin` or `test-<16 hex>.bin`: a data record file named by its content hash.
fn is_hashed_record(name: &str) -> bool {
    ["train-", "test-"].iter().any(|p| {
        name.strip_prefix(p)
            .and_then(|n| n.strip_suffix(".bin").or_else(|| n.strip_suffix(".deflate")))
            .is_some_and(|h| h.len() == 16 && h.bytes().all(|b| b.is_ascii_hexdigit()))
    })
}

/// The `Content-Type` of a file name.
pub fn content_type(name: &str) -> &'static str {
    let ext = name.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase()).unwrap_or_default();
    match ext.as_str() {
        "html" | "htm" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "wasm" => "application/wasm",
        "json" | "map" => "application/json",
        "css" => "text/css; charset=utf-8",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "ico" => "image/x-icon",
        "woff2" => "font/woff2",
        "ts" => "text/plain", // .d.ts type declarations, for reading
        "txt" => "text/plain; charset=utf-8",
        _ => "application/octet-stream", // .bin, .safetensors, anything else
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decoding_is_strict_and_single() {
        assert_eq!(percent_decode("/a%2e%2E/b").unwrap(), b"/a../b");
        assert_eq!(percent_decode("/%252e").unwrap(), b"/%2e");
        assert!(percent_decode("/%2").is_none());
        assert!(percent_decode("/%zz").is_none());
    }

    #[test]
    fn segments_refuse_parents_and_hidden_names() {
        assert_eq!(segments("//a/b/").unwrap(), ["a", "b"]);
        for bad in ["/../x", "/a/./b", "/.git/config", "/a\\..\\b", "/a\0b"] {
            assert!(segments(bad).is_none(), "{bad:?}");
        }
        assert_eq!(segments("/%2e%2e").unwrap(), ["%2e%2e"]);
    }

    #[test]
    fn hashed_records() {
        assert!(is_hashed_record("train-a1b9d9592b3a5dab.bin"));
        assert!(is_hashed_record("test-d300fbfe1437fa8b.bin"));
        assert!(is_hashed_record("train-a1b9d9592b3a5dab.deflate"));
        assert!(!is_hashed_record("train-a1b9d9592b3a5da.bin"));
        assert!(!is_hashed_record("train-a1b9d9592b3a5dag.bin"));
        assert!(!is_hashed_record("manifest.json"));
    }
}
