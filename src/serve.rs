//! `skywatch serve`: a small static web server for the page, its wasm packages and its data.
//!
//! It serves a root folder (`www/` by default) at `/`, plus mounts that map a URL prefix to
//! another folder (by default `/vendor/uplot/` to `node_modules/uplot/dist`, when that exists).
//! A mount answers only for the files it has; anything else under its prefix falls through to
//! the root. Directory URLs serve their `index.html` (there are no listings), a directory URL
//! without its final `/` is redirected to it, and only `GET` and `HEAD` are answered.
//!
//! Every response carries:
//!
//! * `Cross-Origin-Opener-Policy: same-origin` and `Cross-Origin-Embedder-Policy: require-corp`,
//!   which make the page *cross-origin isolated*. Only such a page may create a
//!   `SharedArrayBuffer`, the shared wasm memory the threaded package (rayon workers through
//!   wasm-bindgen-rayon) runs on; without it the page falls back to the single-threaded package.
//!   See <https://web.dev/articles/coop-coep>. `--no-isolation` leaves these two out, to try
//!   that fallback.
//! * `Cross-Origin-Resource-Policy: cross-origin`, so that a page on another origin (a blog
//!   embedding the trainer), isolated itself or not, may load our scripts, wasm and data.
//!   With `--cors` also `Access-Control-Allow-Origin: *`, for the assets such a page `fetch`es.
//! * `X-Content-Type-Options: nosniff`: browsers use the declared type, so the types must be
//!   right (`application/wasm` is required by `WebAssembly.instantiateStreaming`).
//!
//! Caching: data record files named by their content hash (`train-<16 hex>.bin`,
//! `test-<16 hex>.bin`) are `immutable` for a year; everything else is `no-cache`, revalidated
//! through its `ETag` (a `304` when unchanged), so a rebuilt package is picked up on reload.
//!
//! Only files inside the roots are served: the request path is percent-decoded once (strictly;
//! malformed escapes are a `400`), then any segment that is empty is skipped and any that is
//! `.`, `..`, hidden (`.name`) or holds a backslash or NUL is refused; the file found is
//! canonicalized (resolving symbolic links) and must still lie inside its root. Refusals are
//! `404`s, which do not reveal whether anything exists.
//!
//! Files are streamed from disk with a `Content-Length`; requests are answered by a small pool
//! of threads, as the page loads its wasm, data and worker scripts in parallel.

use crate::error::{Error, Result};
use std::fs::{self, File, Metadata};
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, ToSocketAddrs};
use std::path::{Component, Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Instant, UNIX_EPOCH};
use tiny_http::{Header, Method, Request, Response, StatusCode};

/// The uPlot build mounted by default at [`UPLOT_PREFIX`] (relative to the working directory).
pub const UPLOT_DIR: &str = "node_modules/uplot/dist";
/// Where [`UPLOT_DIR`] is mounted by default.
pub const UPLOT_PREFIX: &str = "/vendor/uplot/";

/// Threads answering requests (each streams one response at a time).
const DEFAULT_THREADS: usize = 32;

/// Command-line arguments of `skywatch serve`.
#[derive(clap::Args, Clone, Debug)]
pub struct ServeArgs {
    /// Port to listen on (0: any free port; the one chosen is printed).
    #[arg(long, default_value_t = 8080)]
    pub port: u16,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// Folder served at `/`.
    #[arg(long, default_value = "www")]
    pub root: PathBuf,
    /// Also serve DIR under URLPREFIX (repeatable), e.g. `/vendor/uplot/=node_modules/uplot/dist`
    /// (mounted by default when that folder exists).
    #[arg(long = "mount", value_name = "URLPREFIX=DIR")]
    pub mounts: Vec<Mount>,
    /// Leave out COOP and COEP: the page is not cross-origin isolated and runs single-threaded.
    #[arg(long)]
    pub no_isolation: bool,
    /// Add `Access-Control-Allow-Origin: *`, for pages on other origins that fetch our assets.
    #[arg(long)]
    pub cors: bool,
    /// Log one line per request to stderr.
    #[arg(long, short)]
    pub verbose: bool,
}

/// A URL prefix served from a folder.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mount {
    /// Starts and ends with `/`, e.g. `/vendor/uplot/` (`/` is the root).
    pub prefix: String,
    pub dir: PathBuf,
}

impl Mount {
    /// `prefix` is a decoded URL path such as `/vendor/uplot` (the final `/` is added); its
    /// segments may not be `.`, `..` or hidden.
    pub fn new(prefix: &str, dir: impl Into<PathBuf>) -> Result<Mount> {
        let bad = |why: &str| Error::Config(format!("mount prefix '{prefix}': {why}"));
        if !prefix.starts_with('/') {
            return Err(bad("must start with '/'"));
        }
        let segments =
            segments(prefix).ok_or_else(|| bad("segments may not be '.', '..', hidden, or hold a backslash or NUL"))?;
        let dir = dir.into();
        if dir.as_os_str().is_empty() {
            return Err(bad("the folder is empty"));
        }
        let prefix = if segments.is_empty() { "/".to_string() } else { format!("/{}/", segments.join("/")) };
        Ok(Mount { prefix, dir })
    }
}

impl FromStr for Mount {
    type Err = String;

    /// `URLPREFIX=DIR`.
    fn from_str(s: &str) -> std::result::Result<Mount, String> {
        let (prefix, dir) = s.split_once('=').ok_or_else(|| format!("'{s}' is not URLPREFIX=DIR"))?;
        Mount::new(prefix, dir).map_err(|e| e.to_string())
    }
}

/// What [`start`] serves and how.
#[derive(Clone, Debug)]
pub struct ServeOptions {
    pub host: String,
    /// 0 picks a free port ([`Server::addr`] tells which).
    pub port: u16,
    /// Served at `/`.
    pub root: PathBuf,
    /// Further prefixes; a later mount replaces an earlier one with the same prefix.
    pub mounts: Vec<Mount>,
    /// Send COOP and COEP (cross-origin isolation).
    pub isolation: bool,
    /// Send `Access-Control-Allow-Origin: *`.
    pub cors: bool,
    /// One line per request on stderr.
    pub verbose: bool,
    /// Threads answering requests.
    pub threads: usize,
}

impl Default for ServeOptions {
    /// The command line's defaults, without the uPlot mount: `127.0.0.1:8080`, `www`, isolated.
    fn default() -> Self {
        ServeOptions {
            host: "127.0.0.1".into(),
            port: 8080,
            root: "www".into(),
            mounts: Vec::new(),
            isolation: true,
            cors: false,
            verbose: false,
            threads: DEFAULT_THREADS,
        }
    }
}

impl ServeOptions {
    /// The options of the command line, with the default uPlot mount when [`UPLOT_DIR`] exists.
    pub fn from_args(a: &ServeArgs) -> ServeOptions {
        let mut mounts = Vec::new();
        if Path::new(UPLOT_DIR).is_dir() {
            mounts.push(Mount { prefix: UPLOT_PREFIX.into(), dir: UPLOT_DIR.into() });
        }
        mounts.extend(a.mounts.iter().cloned());
        ServeOptions {
            host: a.host.clone(),
            port: a.port,
            root: a.root.clone(),
            mounts,
            isolation: !a.no_isolation,
            cors: a.cors,
            verbose: a.verbose,
            threads: DEFAULT_THREADS,
        }
    }
}

/// `skywatch serve`: serves until the process is stopped.
pub fn run(args: &ServeArgs) -> Result<()> {
    let server = start(ServeOptions::from_args(args))?;
    let mut out = io::stdout().lock();
    writeln!(
        out,
        "Serving {} (cross-origin isolated: {})",
        server.url(),
        if server.is_isolated() { "yes" } else { "no" }
    )
    .and_then(|()| out.flush())
    .map_err(|e| Error::io("stdout", e))?;
    drop(out);
    server.wait();
    Ok(())
}

/// A running server; dropping it (or [`Server::stop`]) stops it.
pub struct Server {
    addr: SocketAddr,
    isolated: bool,
    http: Arc<tiny_http::Server>,
    stopping: Arc<AtomicBool>,
    workers: Vec<JoinHandle<()>>,
}

impl Server {
    /// The address listened on, with the actual port.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://ADDR/`.
    pub fn url(&self) -> String {
        format!("http://{}/", self.addr)
    }

    /// Whether responses carry COOP and COEP.
    pub fn is_isolated(&self) -> bool {
        self.isolated
    }

    /// Stops accepting requests, lets the ones being answered finish, and returns.
    pub fn stop(mut self) {
        self.shutdown();
    }

    /// Blocks while the server runs (until another thread stops the process).
    pub fn wait(mut self) {
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
    }

    fn shutdown(&mut self) {
        if self.workers.is_empty() {
            return;
        }
        self.stopping.store(true, Ordering::SeqCst);
        // Each unblock wakes one worker waiting in `recv`; a worker returning with a request
        // answers it first, then sees the flag.
        for _ in &self.workers {
            self.http.unblock();
        }
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Checks the folders, binds the address and starts answering requests on a thread pool.
pub fn start(opts: ServeOptions) -> Result<Server> {
    let mut mounts = vec![Mount { prefix: "/".into(), dir: opts.root.clone() }];
    for m in &opts.mounts {
        mounts.retain(|old| old.prefix != m.prefix);
        mounts.push(m.clone());
    }
    let mut roots = Vec::with_capacity(mounts.len());
    for m in &mounts {
        roots.push(Root::open(m)?);
    }
    // Longest prefix first; the root ("/", no segments) last.
    roots.sort_by_key(|r| std::cmp::Reverse(r.prefix.len()));

    let listen = format!("{}:{}", opts.host, opts.port);
    let listen_error = |e: io::Error| {
        let hint = if e.kind() == io::ErrorKind::AddrInUse {
            "; another server is using this port: stop it or choose another with --port"
        } else {
            ""
        };
        Error::io(&listen, io::Error::new(e.kind(), format!("cannot listen: {e}{hint}")))
    };
    let addrs: Vec<SocketAddr> = (opts.host.as_str(), opts.port).to_socket_addrs().map_err(listen_error)?.collect();
    let listener = TcpListener::bind(&addrs[..]).map_err(listen_error)?;
    let addr = listener.local_addr().map_err(listen_error)?;
    let http = tiny_http::Server::from_listener(listener, None).map_err(|e| {
        let e = match e.downcast::<io::Error>() {
            Ok(e) => *e,
            Err(e) => io::Error::other(e.to_string()),
        };
        listen_error(e)
    })?;
    let http = Arc::new(http);
    let site = Arc::new(Site { roots, isolation: opts.isolation, cors: opts.cors, verbose: opts.verbose });
    let mut server = Server {
        addr,
        isolated: opts.isolation,
        http,
        stopping: Arc::new(AtomicBool::new(false)),
        workers: Vec::new(),
    };
    for i in 0..opts.threads.max(1) {
        let (http, site) = (server.http.clone(), site.clone());
        let stopping = server.stopping.clone();
        let worker = std::thread::Builder::new()
            .name(format!("serve-{i}"))
            .spawn(move || {
                while !stopping.load(Ordering::SeqCst) {
                    match http.recv() {
                        Ok(rq) => site.answer(rq),
                        Err(e) if site.verbose && !stopping.load(Ordering::SeqCst) => {
                            eprintln!("serve: {e}")
                        }
                        Err(_) => {}
                    }
                }
            })
            .map_err(|e| Error::io("serve thread", e))?; // dropping `server` stops the others
        server.workers.push(worker);
    }
    Ok(server)
}

/// A mount with its folder canonicalized.
struct Root {
    prefix: Vec<String>,
    dir: PathBuf,
}

impl Root {
    fn open(m: &Mount) -> Result<Root> {
        let problem = |e: io::Error| {
            let why = match (m.prefix.as_str(), e.kind()) {
                ("/", io::ErrorKind::NotFound) => "the --root folder does not exist (run from the \
                    repository root, or pass --root DIR)"
                    .to_string(),
                ("/", _) => format!("cannot serve this --root folder: {e}"),
                (p, io::ErrorKind::NotFound) => format!("the folder of mount {p} does not exist"),
                (p, _) => format!("cannot serve this folder at {p}: {e}"),
            };
            Error::io(&m.dir, io::Error::new(e.kind(), why))
        };
        let dir = fs::canonicalize(&m.dir).map_err(problem)?;
        if !dir.is_dir() {
            return Err(problem(io::Error::new(io::ErrorKind::NotADirectory, "not a directory")));
        }
        let prefix = segments(&m.prefix)
            .expect("mount prefixes are validated by Mount::new")
            .into_iter()
            .map(String::from)
            .collect();
        Ok(Root { prefix, dir })
    }

    /// The segments after this root's prefix, if they start with it.
    fn strip<'a, 'b>(&self, segments: &'a [&'b str]) -> Option<&'a [&'b str]> {
        let n = self.prefix.len();
        let same = segments.len() >= n && self.prefix.iter().zip(segments).all(|(p, s)| p == s);
        same.then(|| &segments[n..])
    }

    /// The file under this root for the path segments after the prefix.
    fn find(&self, rest: &[&str], dir_url: bool) -> Found {
        let mut path = self.dir.clone();
        path.extend(rest);
        let Some((path, meta)) = self.inside(&path) else {
            return Found::Nothing;
        };
        if meta.is_file() {
            // `/app.js/` names a directory: serving the file would break its relative URLs.
            return if dir_url { Found::Nothing } else { Found::File(path, meta) };
        }
        if !meta.is_dir() {
            return Found::Nothing; // sockets, fifos, devices
        }
        match self.inside(&path.join("index.html")) {
            Some((index, meta)) if meta.is_file() => {
                if dir_url {
                    Found::File(index, meta)
                } else {
                    Found::Directory
                }
            }
            _ => Found::Nothing,
        }
    }

    /// `path` with links resolved, if that lies inside the root and is not hidden.
    fn inside(&self, path: &Path) -> Option<(PathBuf, Metadata)> {
        let real = fs::canonicalize(path).ok()?;
        let rel = real.strip_prefix(&self.dir).ok()?;
        let hidden =
            rel.components().any(|c| !matches!(c, Component::Normal(n) if !n.as_encoded_bytes().starts_with(b".")));
        if hidden {
            return None;
        }
        let meta = fs::metadata(&real).ok()?;
        Some((real, meta))
    }
}

enum Found {
    File(PathBuf, Metadata),
    /// A directory with an `index.html`, asked for without its final `/`.
    Directory,
    Nothing,
}

/// What the worker threads share.
struct Site {
    /// Longest prefix first.
    roots: Vec<Root>,
    isolation: bool,
    cors: bool,
    verbose: bool,
}

type Reply = Response<Box<dyn Read + Send>>;

impl Site {
    fn answer(&self, rq: Request) {
        let started = Instant::now();
        let method = rq.method().clone();
        let url = rq.url().to_string();
        let remote = rq.remote_addr().copied();
        let reply = self.reply(&rq);
        let status = reply.status_code().0;
        let len = reply.data_length().unwrap_or(0);
        let result = rq.respond(reply);
        if self.verbose {
            let peer = remote.map(|a| a.to_string()).unwrap_or_default();
            let error = result.err().map(|e| format!(" ({e})")).unwrap_or_default();
            eprintln!(
                "{peer} {method} {} {status} {len} {:.1}ms{error}",
                url.escape_debug(),
                started.elapsed().as_secs_f64() * 1e3
            );
        }
    }

    fn reply(&self, rq: &Request) -> Reply {
        if !matches!(rq.method(), Method::Get | Method::Head) {
            return self.error(405, "Method Not Allowed").with_header(header("Allow", "GET, HEAD"));
        }
        let Some(target) = request_path(rq.url()) else {
            return self.error(400, "Bad Request");
        };
        let Some(decoded) = percent_decode(target).and_then(|b| String::from_utf8(b).ok()) else {
            return self.error(400, "Bad Request");
        };
        let Some(segments) = segments(&decoded) else {
            return self.error(404, "Not Found");
        };
        let dir_url = decoded.ends_with('/');
        for root in &self.roots {
            let Some(rest) = root.strip(&segments) else {
                continue;
            };
            match root.find(rest, dir_url) {
                Found::File(path, meta) => return self.file(rq, &path, meta),
                Found::Directory => {
                    let mut location = String::new();
                    for s in &segments {
                        location.push('/');
                        location.push_str(&percent_encode(s));
                    }
                    location.push('/');
                    if let Some((_, query)) = rq.url().split_once('?') {
                        location.push('?');
                        location.push_str(query);
                    }
                    return self.error(301, "Moved Permanently").with_header(header("Location", &location));
                }
                Found::Nothing => {}
            }
        }
        self.error(404, "Not Found")
    }

    fn file(&self, rq: &Request, path: &Path, meta: Metadata) -> Reply {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        let cache = if is_hashed_record(name) { "public, max-age=31536000, immutable" } else { "no-cache" };
        let file = match File::open(path) {
            Ok(f) => f,
            Err(_) => return self.error(404, "Not Found"),
        };
        // The opened file's own size and time, in case it was replaced since the lookup.
        let meta = file.metadata().unwrap_or(meta);
        let mut len = meta.len() as usize;
        let etag = etag(&meta);
        let mut headers = self.common_headers();
        headers.push(header("Content-Type", content_type(name)));
        headers.push(header("Cache-Control", cache));
        headers.push(header("ETag", &etag));
        let unchanged = rq
            .headers()
            .iter()
            .find(|h| h.field.equiv("If-None-Match"))
            .is_some_and(|h| etag_matches(h.value.as_str(), &etag));
        let (status, body): (u16, Box<dyn Read + Send>) = if unchanged {
            (304, Box::new(io::empty()))
        } else if len <= WHOLE_FILE_LIMIT {
            // Read first, then send: the Content-Length is then exactly what is sent even if a
            // rebuild rewrites the file meanwhile. tiny_http keeps a connection open after a body
            // that ends early, and the client would wait forever for the missing bytes.
            let mut bytes = Vec::with_capacity(len);
            if file.take(WHOLE_FILE_LIMIT as u64).read_to_end(&mut bytes).is_err() {
                return self.error(404, "Not Found");
            }
            len = bytes.len();
            (200, Box::new(io::Cursor::new(bytes)))
        } else {
            (200, Box::new(ExactLen { file, remaining: len as u64 }))
        };
        // A 304 (or HEAD) has no body, but its Content-Length is the file's, as RFC 9110 wants.
        Response::new(StatusCode(status), headers, body, Some(len), None).with_chunked_threshold(usize::MAX)
    }

    fn error(&self, status: u16, text: &'static str) -> Reply {
        let body = format!("{status} {text}\n").into_bytes();
        let len = body.len();
        let mut headers = self.common_headers();
        headers.push(header("Content-Type", "text/plain; charset=utf-8"));
        headers.push(header("Cache-Control", "no-store"));
        let body: Box<dyn Read + Send> = Box::new(io::Cursor::new(body));
        Response::new(StatusCode(status), headers, body, Some(len), None).with_chunked_threshold(usize::MAX)
    }

    fn common_headers(&self) -> Vec<Header> {
        let mut h = Vec::with_capacity(10);
        if self.isolation {
            h.push(header("Cross-Origin-Opener-Policy", "same-origin"));
            h.push(header("Cross-Origin-Embedder-Policy", "require-corp"));
        }
        h.push(header("Cross-Origin-Resource-Policy", "cross-origin"));
        if self.cors {
            h.push(header("Access-Control-Allow-Origin", "*"));
        }
        h.push(header("X-Content-Type-Options", "nosniff"));
        h
    }
}

fn header(name: &str, value: &str) -> Header {
    Header::from_bytes(name.as_bytes(), value.as_bytes()).expect("ASCII header")
}

/// The path of a request target (origin form `/a/b?q`, or absolute form `http://host/a/b`),
/// still percent-encoded and without the query.
fn request_path(target: &str) -> Option<&str> {
    let target = target.split(['?', '#']).next().unwrap_or("");
    if target.starts_with('/') {
        return Some(target);
    }
    let (scheme, rest) = target.split_once("://")?;
    if !scheme.eq_ignore_ascii_case("http") && !scheme.eq_ignore_ascii_case("https") {
        return None;
    }
    Some(rest.find('/').map_or("/", |i| &rest[i..]))
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

/// Escapes what may not appear raw in a path segment (RFC 3986 `pchar`).
fn percent_encode(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for b in segment.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The segments of a decoded path, empty ones skipped; `None` when one is `.`, `..`, hidden,
/// holds a backslash or NUL, or is anything but a plain file name on this system.
fn segments(path: &str) -> Option<Vec<&str>> {
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
            .and_then(|n| n.strip_suffix(".bin"))
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

/// A strong validator from size and modification time.
fn etag(meta: &Metadata) -> String {
    let mtime = meta.modified().ok().and_then(|t| t.duration_since(UNIX_EPOCH).ok()).map_or(0, |d| d.as_nanos());
    format!("\"{:x}-{mtime:x}\"", meta.len())
}

/// Whether an `If-None-Match` value names `etag` (weak comparison, as RFC 9110 asks for GET).
fn etag_matches(value: &str, etag: &str) -> bool {
    value
        .split(',')
        .map(str::trim)
        .any(|v| v == "*" || v.strip_prefix("W/").unwrap_or(v) == etag.strip_prefix("W/").unwrap_or(etag))
}

/// Files up to this size are read whole before their response starts (see `file`).
const WHOLE_FILE_LIMIT: usize = 128 << 20;

/// A file body (above [`WHOLE_FILE_LIMIT`]) that must deliver exactly the `Content-Length` already sent. A file that shrinks
/// while it is sent (a rebuild rewriting it) ends the response with an error, which closes the
/// connection, instead of leaving the client waiting for bytes that never come.
struct ExactLen {
    file: File,
    remaining: u64,
}

impl Read for ExactLen {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.remaining == 0 {
            return Ok(0);
        }
        let max = buf.len().min(self.remaining.min(usize::MAX as u64) as usize);
        let n = self.file.read(&mut buf[..max])?;
        if n == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "file shrank while being sent"));
        }
        self.remaining -= n as u64;
        Ok(n)
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
    fn request_targets() {
        assert_eq!(request_path("/a/b?x=/../"), Some("/a/b"));
        assert_eq!(request_path("http://h:1/a"), Some("/a"));
        assert_eq!(request_path("http://h:1"), Some("/"));
        assert_eq!(request_path("*"), None);
    }

    #[test]
    fn hashed_records() {
        assert!(is_hashed_record("train-a1b9d9592b3a5dab.bin"));
        assert!(is_hashed_record("test-d300fbfe1437fa8b.bin"));
        assert!(!is_hashed_record("train-a1b9d9592b3a5da.bin"));
        assert!(!is_hashed_record("train-a1b9d9592b3a5dag.bin"));
        assert!(!is_hashed_record("manifest.json"));
    }

    #[test]
    fn mounts_parse() {
        let m: Mount = "/vendor/uplot=node_modules/uplot/dist".parse().unwrap();
        assert_eq!(m.prefix, "/vendor/uplot/");
        assert!("vendor=x".parse::<Mount>().is_err());
        assert!("/a/../b=x".parse::<Mount>().is_err());
        assert!("/a".parse::<Mount>().is_err());
    }

    #[test]
    fn etags() {
        assert!(etag_matches("\"1-2\"", "\"1-2\""));
        assert!(etag_matches("W/\"1-2\", \"3\"", "\"1-2\""));
        assert!(etag_matches("*", "\"1-2\""));
        assert!(!etag_matches("\"1-3\"", "\"1-2\""));
    }
}
