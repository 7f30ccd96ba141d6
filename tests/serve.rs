//! `skywatch serve` (`skywatch::serve`), started in-process on a free port over a temporary
//! folder: types and headers, index pages, methods, caching, mounts, and the refusal of
//! anything outside the roots. Requests whose path a client would normalise are sent raw.
#![cfg(all(feature = "cli", not(target_arch = "wasm32")))]

use skywatch::error::Error;
use skywatch::serve::{Mount, ServeOptions, Server, start};
use std::fs;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

const SECRET: &str = "TOP-SECRET-CONTENTS";
const DATA_BYTES: usize = 100_000; // large enough to be sent in several writes

/// `tmp/www` (the root), `tmp/vendor` (a mount), and `tmp/secret` outside both.
struct Site {
    tmp: tempfile::TempDir,
}

impl Site {
    fn new() -> Site {
        let tmp = tempfile::tempdir().unwrap();
        let www = tmp.path().join("www");
        let files: &[(&str, &[u8])] = &[
            ("index.html", b"<!doctype html><title>root</title>"),
            ("app.js", b"export const app = 1;"),
            ("mod.mjs", b"export {};"),
            ("style.css", b"body {}"),
            ("logo.svg", b"<svg xmlns='http://www.w3.org/2000/svg'/>"),
            ("logo.png", b"\x89PNG"),
            ("photo.jpg", b"\xff\xd8"),
            ("photo.jpeg", b"\xff\xd8"),
            ("model.safetensors", b"\x08\0\0\0\0\0\0\0{}      "),
            ("notes.xyz", b"?"),
            (".hidden", SECRET.as_bytes()),
            ("sub/index.html", b"<!doctype html><title>sub</title>"),
            ("a/b/c.txt", b"c"),
            ("pkg/skywatch_bg.wasm", b"\0asm\x01\0\0\0"),
            ("pkg/skywatch.js", b"export default 1;"),
            ("pkg/skywatch.d.ts", b"export {};"),
            ("data/manifest.json", b"{}"),
            ("data/other.bin", b"x"),
            ("empty/.keep", b""),
        ];
        for (name, bytes) in files {
            write(&www.join(name), bytes);
        }
        write(&www.join("data/train-0123456789abcdef.bin"), &data_bytes(DATA_BYTES));
        write(&www.join("data/test-fedcba9876543210.bin"), b"test");
        write(&tmp.path().join("secret"), SECRET.as_bytes());
        write(&tmp.path().join("outside/secret.txt"), SECRET.as_bytes());
        write(&tmp.path().join("vendor/uPlot.esm.js"), b"export default 'uplot';");
        Site { tmp }
    }

    fn www(&self) -> PathBuf {
        self.tmp.path().join("www")
    }

    fn options(&self) -> ServeOptions {
        ServeOptions {
            port: 0,
            root: self.www(),
            mounts: vec![Mount::new("/vendor/uplot/", self.tmp.path().join("vendor")).unwrap()],
            threads: 4,
            ..ServeOptions::default()
        }
    }

    fn start(&self) -> Server {
        start(self.options()).unwrap()
    }
}

fn write(path: &Path, bytes: &[u8]) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, bytes).unwrap();
}

fn data_bytes(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 7 % 251) as u8).collect()
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder().http_status_as_error(false).max_redirects(0).build().new_agent()
}

struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

fn get(server: &Server, path: &str) -> Reply {
    let mut r = agent().get(format!("{}{path}", server.url())).call().unwrap();
    let headers = r.headers().iter().map(|(n, v)| (n.to_string(), v.to_str().unwrap().to_string())).collect();
    let body = r.body_mut().with_config().limit(1 << 30).read_to_vec().unwrap();
    Reply { status: r.status().as_u16(), headers, body }
}

/// Sends the request line `METHOD TARGET HTTP/1.1` byte for byte; reads the whole response.
fn raw(server: &Server, method: &str, target: &[u8], extra: &str) -> Reply {
    let mut s = TcpStream::connect(server.addr()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut request = Vec::new();
    request.extend_from_slice(method.as_bytes());
    request.push(b' ');
    request.extend_from_slice(target);
    request.extend_from_slice(b" HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n");
    request.extend_from_slice(extra.as_bytes());
    request.extend_from_slice(b"\r\n");
    s.write_all(&request).unwrap();
    let mut bytes = Vec::new();
    s.read_to_end(&mut bytes).unwrap();
    let end = bytes
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no header end in {:?}", String::from_utf8_lossy(&bytes)));
    let head = String::from_utf8(bytes[..end].to_vec()).unwrap();
    let mut lines = head.split("\r\n");
    let status = lines.next().unwrap().split(' ').nth(1).unwrap().parse().unwrap();
    let headers = lines
        .map(|l| {
            let (n, v) = l.split_once(':').unwrap();
            (n.trim().to_string(), v.trim().to_string())
        })
        .collect();
    Reply { status, headers, body: bytes[end + 4..].to_vec() }
}

fn assert_isolated(r: &Reply, isolated: bool) {
    let (coop, coep) = if isolated { (Some("same-origin"), Some("require-corp")) } else { (None, None) };
    assert_eq!(r.header("Cross-Origin-Opener-Policy"), coop);
    assert_eq!(r.header("Cross-Origin-Embedder-Policy"), coep);
    assert_eq!(r.header("Cross-Origin-Resource-Policy"), Some("cross-origin"));
    assert_eq!(r.header("X-Content-Type-Options"), Some("nosniff"));
}

const TYPES: [(&str, &str); 16] = [
    ("index.html", "text/html; charset=utf-8"),
    ("app.js", "text/javascript; charset=utf-8"),
    ("mod.mjs", "text/javascript; charset=utf-8"),
    ("pkg/skywatch.js", "text/javascript; charset=utf-8"),
    ("pkg/skywatch_bg.wasm", "application/wasm"),
    ("pkg/skywatch.d.ts", "text/plain"),
    ("data/manifest.json", "application/json"),
    ("style.css", "text/css; charset=utf-8"),
    ("logo.svg", "image/svg+xml"),
    ("logo.png", "image/png"),
    ("photo.jpg", "image/jpeg"),
    ("photo.jpeg", "image/jpeg"),
    ("data/train-0123456789abcdef.bin", "application/octet-stream"),
    ("data/other.bin", "application/octet-stream"),
    ("model.safetensors", "application/octet-stream"),
    ("notes.xyz", "application/octet-stream"),
];

#[test]
fn types_and_isolation_headers() {
    let site = Site::new();
    let server = site.start();
    assert!(server.is_isolated());
    assert!(server.addr().port() != 0);
    for (path, ty) in TYPES {
        let r = get(&server, path);
        assert_eq!(r.status, 200, "{path}");
        assert_eq!(r.header("Content-Type"), Some(ty), "{path}");
        assert_eq!(r.body, fs::read(site.www().join(path)).unwrap(), "{path}");
        assert_eq!(r.header("Content-Length"), Some(r.body.len().to_string().as_str()), "{path}");
        assert_isolated(&r, true);
        assert_eq!(r.header("Access-Control-Allow-Origin"), None);
    }
    // Error responses carry them too.
    assert_isolated(&get(&server, "missing.js"), true);
}

#[test]
fn no_isolation_keeps_corp_and_cors_adds_allow_origin() {
    let site = Site::new();
    let server = start(ServeOptions { isolation: false, ..site.options() }).unwrap();
    assert!(!server.is_isolated());
    for path in ["", "app.js", "pkg/skywatch_bg.wasm", "missing"] {
        let r = get(&server, path);
        assert_isolated(&r, false);
        assert_eq!(r.header("Access-Control-Allow-Origin"), None);
    }
    drop(server);

    let server = start(ServeOptions { cors: true, ..site.options() }).unwrap();
    for path in ["app.js", "data/train-0123456789abcdef.bin", "missing"] {
        let r = get(&server, path);
        assert_isolated(&r, true);
        assert_eq!(r.header("Access-Control-Allow-Origin"), Some("*"), "{path}");
    }
}

/// The policy the page is written for (no inline script or style, no eval, workers from our
/// origin or `blob:`); a change to it should be a deliberate change of this test too.
const EXPECTED_CSP: &str = "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; worker-src 'self' blob:; \
    style-src 'self'; img-src 'self' blob: data:; connect-src 'self'; object-src 'none'; base-uri 'none'; \
    form-action 'none'";

#[test]
fn every_response_carries_the_content_security_policy() {
    assert_eq!(skywatch::serve::CSP, EXPECTED_CSP);
    for bad in ["'unsafe-inline'", "'unsafe-eval'", "*", "http:", "https:"] {
        assert!(!EXPECTED_CSP.split([' ', ';']).any(|t| t == bad), "{bad} in the policy");
    }
    let site = Site::new();
    let server = site.start();
    let csp = |r: &Reply| r.header("Content-Security-Policy").map(str::to_string);
    // Files of every type, an index page, a mount, a 404; then a redirect, a 400 and a refusal.
    let paths = ["", "index.html", "app.js", "pkg/skywatch_bg.wasm", "style.css", "data/manifest.json"];
    for path in paths.into_iter().chain(["vendor/uplot/uPlot.esm.js", "missing"]) {
        assert_eq!(csp(&get(&server, path)).as_deref(), Some(EXPECTED_CSP), "{path}");
    }
    for (target, status) in [(&b"/sub"[..], 301), (b"/%zz", 400), (b"/.hidden", 404)] {
        let r = raw(&server, "GET", target, "");
        assert_eq!(r.status, status);
        assert_eq!(csp(&r).as_deref(), Some(EXPECTED_CSP), "{}", String::from_utf8_lossy(target));
    }
    // A 304 and a HEAD, and a 405.
    let etag = get(&server, "app.js").header("ETag").unwrap().to_string();
    let r = raw(&server, "GET", b"/app.js", &format!("If-None-Match: {etag}\r\n"));
    assert_eq!(r.status, 304);
    assert_eq!(csp(&r).as_deref(), Some(EXPECTED_CSP));
    assert_eq!(csp(&raw(&server, "HEAD", b"/index.html", "")).as_deref(), Some(EXPECTED_CSP));
    assert_eq!(csp(&raw(&server, "POST", b"/app.js", "Content-Length: 0\r\n")).as_deref(), Some(EXPECTED_CSP));
    // Exactly one policy header (two would both apply, the stricter winning).
    let r = get(&server, "index.html");
    assert_eq!(r.headers.iter().filter(|(n, _)| n.eq_ignore_ascii_case("Content-Security-Policy")).count(), 1);
    drop(server);

    // --no-csp (a folder of pages that are not ours) leaves it out, and only it.
    let server = start(ServeOptions { csp: false, ..site.options() }).unwrap();
    for path in ["", "app.js", "missing"] {
        let r = get(&server, path);
        assert_eq!(csp(&r), None, "{path}");
        assert_isolated(&r, true);
    }
}

#[test]
fn directories_serve_their_index() {
    let site = Site::new();
    let server = site.start();
    for (path, title) in [("", "root"), ("index.html", "root"), ("sub/", "sub")] {
        let r = get(&server, path);
        assert_eq!(r.status, 200, "{path}");
        assert_eq!(r.header("Content-Type"), Some("text/html; charset=utf-8"));
        let body = String::from_utf8(r.body).unwrap();
        assert!(body.contains(&format!("<title>{title}</title>")), "{body}");
    }
    // Without its final slash, to the slash (relative URLs resolve against it), query kept.
    let r = raw(&server, "GET", b"/sub?x=1", "");
    assert_eq!(r.status, 301);
    assert_eq!(r.header("Location"), Some("/sub/?x=1"));
    // No listings: a folder without index.html, and a file asked for as a folder.
    for path in ["a/", "a", "a/b/", "empty/", "app.js/"] {
        assert_eq!(get(&server, path).status, 404, "{path}");
    }
    assert_eq!(get(&server, "a/b/c.txt").body, b"c");
}

#[test]
fn missing_is_404_and_other_methods_405() {
    let site = Site::new();
    let server = site.start();
    let r = get(&server, "nope.js");
    assert_eq!(r.status, 404);
    assert_eq!(r.body, b"404 Not Found\n");
    for method in ["POST", "PUT", "DELETE", "OPTIONS"] {
        let r = raw(&server, method, b"/app.js", "Content-Length: 0\r\n");
        assert_eq!(r.status, 405, "{method}");
        assert_eq!(r.header("Allow"), Some("GET, HEAD"));
        assert_isolated(&r, true);
    }
    let r = agent().post(format!("{}app.js", server.url())).send("x=1").unwrap();
    assert_eq!(r.status().as_u16(), 405);
}

#[test]
fn head_has_headers_but_no_body() {
    let site = Site::new();
    let server = site.start();
    for (path, len) in [("/app.js", "21"), ("/data/train-0123456789abcdef.bin", "100000")] {
        let r = raw(&server, "HEAD", path.as_bytes(), "");
        assert_eq!(r.status, 200);
        assert_eq!(r.header("Content-Length"), Some(len), "{path}");
        assert!(r.body.is_empty(), "{path}: {} body bytes", r.body.len());
        assert_isolated(&r, true);
    }
    let r = agent().head(format!("{}app.js", server.url())).call().unwrap();
    assert_eq!(r.status().as_u16(), 200);
}

#[test]
fn data_files_stream_with_length_and_cache_policy() {
    let site = Site::new();
    let server = site.start();
    let r = get(&server, "data/train-0123456789abcdef.bin");
    assert_eq!(r.header("Content-Length"), Some("100000"));
    assert_eq!(r.header("Transfer-Encoding"), None);
    assert_eq!(r.body, data_bytes(DATA_BYTES));
    let immutable = Some("public, max-age=31536000, immutable");
    assert_eq!(r.header("Cache-Control"), immutable);
    let r = get(&server, "data/test-fedcba9876543210.bin");
    assert_eq!(r.header("Cache-Control"), immutable);
    for path in ["index.html", "app.js", "pkg/skywatch_bg.wasm", "data/manifest.json", "data/other.bin"] {
        assert_eq!(get(&server, path).header("Cache-Control"), Some("no-cache"));
    }
}

#[test]
fn etag_revalidation_gives_304() {
    let site = Site::new();
    let server = site.start();
    let r = get(&server, "pkg/skywatch.js");
    let etag = r.header("ETag").expect("an ETag").to_string();
    let r = raw(&server, "GET", b"/pkg/skywatch.js", &format!("If-None-Match: {etag}\r\n"));
    assert_eq!(r.status, 304);
    assert!(r.body.is_empty());
    assert_eq!(r.header("ETag"), Some(etag.as_str()));
    assert_isolated(&r, true);
    // A rebuilt file has another tag.
    std::thread::sleep(Duration::from_millis(20));
    write(&site.www().join("pkg/skywatch.js"), b"export default 22;");
    let r = raw(&server, "GET", b"/pkg/skywatch.js", &format!("If-None-Match: {etag}\r\n"));
    assert_eq!(r.status, 200);
    assert_eq!(r.body, b"export default 22;");
}

#[test]
fn traversal_and_hidden_files_are_refused() {
    let site = Site::new();
    let server = site.start();
    let targets: &[&[u8]] = &[
        b"/../secret",
        b"/../../secret",
        b"/%2e%2e/secret",
        b"/%2E%2E/secret",
        b"/%2e%2e%2fsecret",
        b"/..%2fsecret",
        b"/..%5csecret",
        b"/..\\secret",
        b"/a/%2e%2e/%2e%2e/secret",
        b"/a/b/../../../secret",
        b"/%252e%252e/secret",
        b"/%252e%252e%252fsecret",
        b"/sub/..%2f..%2fsecret",
        b"/vendor/uplot/../../secret",
        b"/vendor/uplot/%2e%2e/%2e%2e/secret",
        b"/app.js%00",
        b"/app.js%00.html",
        b"/app.js\0",
        b"/%00",
        b"/.hidden",
        b"/%2ehidden",
        b"/sub/../.hidden",
        b"/./app.js",
        b"/%2e/app.js",
        b"/%",
        b"/%2",
        b"/%zz",
        b"/%c0%ae%c0%ae/secret",
        b"//etc/passwd",
        b"/etc/passwd",
        b"*",
        b"secret",
    ];
    for target in targets {
        let shown = String::from_utf8_lossy(target);
        let r = raw(&server, "GET", target, "");
        assert!(r.status == 404 || r.status == 400, "{shown}: status {}", r.status);
        let body = String::from_utf8_lossy(&r.body);
        assert!(!body.contains(SECRET), "{shown} leaked the secret");
    }
    // Escapes that are malformed are a 400; escapes of dot segments simply do not resolve.
    assert_eq!(raw(&server, "GET", b"/%zz", "").status, 400);
    assert_eq!(raw(&server, "GET", b"/%2e%2e/secret", "").status, 404);
    // Harmless escapes still work.
    assert_eq!(raw(&server, "GET", b"/%61pp.js", "").status, 200);
    assert_eq!(raw(&server, "GET", b"/app.js?v=../../secret", "").status, 200);
    assert_eq!(raw(&server, "GET", b"//a//b/c.txt", "").body, b"c");
}

#[cfg(unix)]
#[test]
fn symlinks_must_stay_inside_the_root() {
    use std::os::unix::fs::symlink;
    let site = Site::new();
    let www = site.www();
    let outside = site.tmp.path();
    symlink(outside.join("secret"), www.join("out.txt")).unwrap();
    symlink("../secret", www.join("out-relative.txt")).unwrap();
    symlink(outside.join("outside"), www.join("outdir")).unwrap();
    symlink(www.join("app.js"), www.join("in.js")).unwrap();
    symlink("sub", www.join("insub")).unwrap();
    symlink(".hidden", www.join("to-hidden")).unwrap();
    let server = site.start();
    for path in ["out.txt", "out-relative.txt", "outdir/secret.txt", "outdir/", "to-hidden"] {
        let r = get(&server, path);
        assert_eq!(r.status, 404, "{path}");
        assert!(!String::from_utf8_lossy(&r.body).contains(SECRET));
    }
    let r = get(&server, "in.js");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("Content-Type"), Some("text/javascript; charset=utf-8"));
    assert_eq!(r.body, b"export const app = 1;");
    assert_eq!(get(&server, "insub/").status, 200);
}

#[test]
fn mounts_serve_their_folder_under_the_prefix() {
    let site = Site::new();
    // A file the root also has under the prefix: the mount wins where it has the file, and the
    // root answers for the rest.
    write(&site.www().join("vendor/uplot/uPlot.esm.js"), b"shadowed");
    write(&site.www().join("vendor/uplot/uPlot.min.css"), b"from root");
    let server = site.start();
    let r = get(&server, "vendor/uplot/uPlot.esm.js");
    assert_eq!(r.status, 200);
    assert_eq!(r.body, b"export default 'uplot';");
    assert_eq!(r.header("Content-Type"), Some("text/javascript; charset=utf-8"));
    assert_isolated(&r, true);
    assert_eq!(get(&server, "vendor/uplot/uPlot.min.css").body, b"from root");
    assert_eq!(get(&server, "vendor/uplot/missing.js").status, 404);
    assert_eq!(get(&server, "vendor/uPlot.esm.js").status, 404);

    // Parsed from the command line's form.
    let m: Mount = "/lib=/tmp".parse().unwrap();
    assert_eq!(m.prefix, "/lib/");
    assert!("lib=/tmp".parse::<Mount>().is_err());
    assert!("/lib".parse::<Mount>().is_err());
    assert!("/../lib=/tmp".parse::<Mount>().is_err());
}

#[test]
fn parallel_requests() {
    let site = Site::new();
    let server = site.start();
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..16)
            .map(|i| {
                let server = &server;
                s.spawn(move || {
                    let path = if i % 2 == 0 { "data/train-0123456789abcdef.bin" } else { "pkg/skywatch_bg.wasm" };
                    get(server, path).body.len()
                })
            })
            .collect();
        for (i, h) in handles.into_iter().enumerate() {
            let expected = if i % 2 == 0 { DATA_BYTES } else { 8 };
            assert_eq!(h.join().unwrap(), expected);
        }
    });
}

#[test]
fn startup_errors_name_the_problem() {
    let site = Site::new();
    let server = site.start();
    let e = start(ServeOptions { port: server.addr().port(), ..site.options() }).err().expect("the port is taken");
    assert!(matches!(&e, Error::Io { source, .. } if source.kind() == std::io::ErrorKind::AddrInUse), "{e:?}");
    let msg = e.to_string();
    assert!(msg.contains(&server.addr().port().to_string()), "{msg}");
    assert!(msg.contains("--port"), "{msg}");

    let e =
        start(ServeOptions { root: site.tmp.path().join("no-such-folder"), ..site.options() }).err().expect("no root");
    let msg = e.to_string();
    assert!(msg.contains("no-such-folder") && msg.contains("--root"), "{msg}");

    let e = start(ServeOptions { root: site.www().join("app.js"), ..site.options() }).err().expect("root is a file");
    assert!(e.to_string().contains("not a directory"), "{e}");

    let e = start(ServeOptions {
        mounts: vec![Mount::new("/x/", site.tmp.path().join("nope")).unwrap()],
        ..site.options()
    })
    .err()
    .expect("no mount folder");
    assert!(e.to_string().contains("/x/"), "{e}");
}

#[test]
fn stop_closes_the_port() {
    let site = Site::new();
    let server = site.start();
    let addr = server.addr();
    assert_eq!(get(&server, "app.js").status, 200);
    server.stop();
    // The listener is closed once the accept thread notices; allow it a moment.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while TcpStream::connect(addr).is_ok() {
        assert!(std::time::Instant::now() < deadline, "still accepting");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn precompressed_siblings_are_sent_with_content_encoding_when_accepted() {
    let site = Site::new();
    // Stand-ins: the server picks a sibling by name and Accept-Encoding, not by content.
    write(&site.www().join("app.js.br"), b"BROTLI-BYTES");
    write(&site.www().join("app.js.gz"), b"GZIP-BYTES");
    let server = site.start();
    let r = raw(&server, "GET", b"/app.js", "Accept-Encoding: gzip, deflate, br\r\n");
    assert_eq!((r.status, r.header("content-encoding"), &r.body[..]), (200, Some("br"), &b"BROTLI-BYTES"[..]));
    assert_eq!(r.header("content-type"), Some("text/javascript; charset=utf-8"), "the type of the asset, not of .br");
    assert!(r.header("vary").is_some_and(|v| v.to_ascii_lowercase().contains("accept-encoding")), "{:?}", r.headers);
    let r = raw(&server, "GET", b"/app.js", "Accept-Encoding: gzip\r\n");
    assert_eq!((r.header("content-encoding"), &r.body[..]), (Some("gzip"), &b"GZIP-BYTES"[..]));
    let r = raw(&server, "GET", b"/app.js", "");
    assert_eq!((r.header("content-encoding"), &r.body[..]), (None, &b"export const app = 1;"[..]));
    // A file without siblings is sent as it is, whatever the request accepts.
    let r = raw(&server, "GET", b"/style.css", "Accept-Encoding: br\r\n");
    assert_eq!((r.header("content-encoding"), &r.body[..]), (None, &b"body {}"[..]));
}
