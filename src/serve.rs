//! `skywatch serve`: a static web server for the page, its wasm packages and its data, on axum
//! and tower-http.
//!
//! It serves a root folder (`www/` by default) at `/`, plus mounts that map a URL prefix to
//! another folder (the command line mounts `/vendor/uplot/` on `node_modules/uplot/dist` when that
//! exists). A mount answers only for the files it has; anything else under its prefix falls
//! through to the root. Directory URLs serve their `index.html` (there are no listings), a
//! directory URL without its final `/` is redirected to it, and only `GET` and `HEAD` are
//! answered.
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
//! * `Content-Security-Policy: `[`CSP`]: our pages, their workers (which take the policy of their
//!   own script's response) and the rayon workers (`blob:` workers, which inherit it) run only
//!   our own scripts, no inline script or style, no `eval`; see [`CSP`] for each directive.
//!   `--no-csp` leaves it out, for a folder of pages that are not ours (the e2e tests' blog host
//!   page, with its inline `<style>`, embedding the widget from another origin).
//!
//! Caching: data record files named by their content hash (`train-<16 hex>.bin`,
//! `test-<16 hex>.bin`) are `immutable` for a year; everything else is `no-cache`, revalidated
//! through its `ETag` (a `304` when unchanged), so a rebuilt package is picked up on reload.
//!
//! Only files inside the roots are served. tower-http's `ServeDir` refuses `..`, but it follows
//! symbolic links anywhere and serves hidden files, so two checks of ours come around it:
//! `guard` decodes the path once, strictly (a malformed escape is a `400`), and refuses any
//! segment that is `.`, `..`, hidden (`.name`) or holds a backslash or NUL; and the backend that
//! `ServeDir` reads files through (`Files`) resolves symbolic links and serves a file only if
//! its real path still lies inside its root and is not hidden. Refusals are `404`s, which do not
//! reveal whether anything exists.
//!
//! A response body never differs from its `Content-Length`: a file that shrinks while it is sent
//! (a rebuild rewriting it) ends the body with an error, and the connection is closed, so the
//! client sees a failed request, never one waiting for bytes that do not come (`ExactLength`).
//!
//! The layers, outermost first: the `--verbose` log, CORS, the header layers, `guard`, then
//! `ServeDir`; all on a small multi-threaded tokio runtime of the server's own thread.

use crate::error::{Error, Result};
use axum::Router;
use axum::body::{Body, Bytes, HttpBody};
use axum::extract::{ConnectInfo, Request};
use axum::handler::HandlerWithoutStateExt;
use axum::http::{HeaderName, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::serve::ListenerExt;
use http_body::{Frame, SizeHint};
use std::fs::{self, Metadata};
use std::io;
use std::net::{SocketAddr, TcpListener, ToSocketAddrs};
use std::path::{Component, Path, PathBuf};
use std::pin::Pin;
use std::str::FromStr;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tower_http::cors::CorsLayer;
use tower_http::services::ServeDir;
use tower_http::services::fs::{Backend, TokioBackend, TokioFile};
use tower_http::set_header::SetResponseHeaderLayer;

/// The uPlot build the command line mounts at [`UPLOT_PREFIX`] (relative to the working
/// directory), when it exists.
pub const UPLOT_DIR: &str = "node_modules/uplot/dist";
/// Where [`UPLOT_DIR`] is mounted.
pub const UPLOT_PREFIX: &str = "/vendor/uplot/";

/// Worker threads of the runtime answering requests. Each serves any number of connections;
/// the disk work runs on the runtime's blocking pool ([`BLOCKING_THREADS`]).
const DEFAULT_THREADS: usize = 2;

/// At most this many threads read files and resolve paths at once.
const BLOCKING_THREADS: usize = 16;

/// How long [`Server::stop`] lets responses being sent finish before it closes their
/// connections.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// The `Content-Security-Policy` of every response (unless `--no-csp`). Directive by directive:
///
/// * `default-src 'self'`: anything not named below comes from our origin only (fonts, media,
///   manifests, frames).
/// * `script-src 'self' 'wasm-unsafe-eval'`: our own script files only, no inline scripts, no
///   `eval` or `new Function`; `'wasm-unsafe-eval'` allows compiling WebAssembly (the training
///   package), and nothing else.
/// * `worker-src 'self' blob:`: the training worker (`worker.js`) and the rayon pool's workers,
///   which wasm-bindgen-rayon starts from a `blob:` copy of its own helper script.
/// * `style-src 'self'`: our stylesheets only; no `<style>` and no `style="..."` attributes
///   (scripts set styles through the CSSOM, `el.style.width = ...`, which is allowed).
/// * `img-src 'self' blob: data:`: `blob:` for pictures the user chooses (an SVG is drawn
///   through an `<img>` from a `blob:` URL), `data:` for the empty favicon (`href="data:,"`).
/// * `connect-src 'self'`: `fetch` of the data bundle, the wasm and the rayon helper script.
/// * `object-src 'none'; base-uri 'none'; form-action 'none'`: no plugins, no `<base>` that
///   would move relative URLs, no form submissions anywhere (the form is handled by script).
pub const CSP: &str = "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; worker-src 'self' blob:; \
    style-src 'self'; img-src 'self' blob: data:; connect-src 'self'; object-src 'none'; base-uri 'none'; \
    form-action 'none'";

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
    /// Send `Content-Security-Policy: `[`CSP`].
    pub csp: bool,
    /// One line per request on stderr.
    pub verbose: bool,
    /// Worker threads of the runtime answering requests (file reads run on its blocking pool).
    pub threads: usize,
}

impl Default for ServeOptions {
    /// The command line's defaults, without the uPlot mount: `127.0.0.1:8080`, `www`, isolated,
    /// with the content security policy.
    fn default() -> Self {
        ServeOptions {
            host: "127.0.0.1".into(),
            port: 8080,
            root: "www".into(),
            mounts: Vec::new(),
            isolation: true,
            cors: false,
            csp: true,
            verbose: false,
            threads: DEFAULT_THREADS,
        }
    }
}

/// A running server; dropping it (or [`Server::stop`]) stops it.
pub struct Server {
    addr: SocketAddr,
    isolated: bool,
    /// Tells the server to stop (dropping it does too); `None` once used.
    stop: Option<watch::Sender<()>>,
    /// The thread running the runtime; `None` once joined.
    thread: Option<JoinHandle<()>>,
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

    /// Stops accepting requests, lets the responses being sent finish (for up to a few seconds),
    /// closes the connections, and returns.
    pub fn stop(mut self) {
        self.shutdown();
    }

    /// Blocks while the server runs (until another thread stops the process).
    pub fn wait(mut self) {
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }

    fn shutdown(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Checks the folders, binds the address and starts answering requests on a thread of its own.
pub fn start(opts: ServeOptions) -> Result<Server> {
    let app = router(&opts)?;
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
    listener.set_nonblocking(true).map_err(listen_error)?;

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(opts.threads.max(1))
        .max_blocking_threads(BLOCKING_THREADS)
        .thread_name("serve")
        .enable_io()
        .enable_time()
        .build()
        .map_err(|e| Error::io("serve runtime", e))?;
    let listener = {
        let _in_runtime = runtime.enter();
        tokio::net::TcpListener::from_std(listener).map_err(listen_error)?
    };
    let (stop, mut stopped) = watch::channel(());
    let mut grace = stopped.clone();
    let thread = std::thread::Builder::new()
        .name("serve".into())
        .spawn(move || {
            runtime.block_on(async move {
                // The small responses (module scripts) go out at once, not after a delayed ACK.
                let listener = listener.tap_io(|tcp| {
                    let _ = tcp.set_nodelay(true);
                });
                let app = app.into_make_service_with_connect_info::<SocketAddr>();
                // On stop: no new connections, then the responses being sent may finish.
                let serve = axum::serve(listener, app).with_graceful_shutdown(async move {
                    let _ = stopped.changed().await;
                });
                tokio::select! {
                    _ = serve => {}
                    () = async {
                        let _ = grace.changed().await;
                        tokio::time::sleep(STOP_GRACE).await;
                    } => {}
                }
            });
            // Reads still running on the blocking pool are of connections already closed.
            runtime.shutdown_timeout(Duration::from_secs(1));
        })
        .map_err(|e| Error::io("serve thread", e))?;
    Ok(Server { addr, isolated: opts.isolation, stop: Some(stop), thread: Some(thread) })
}

/// The whole server as one axum service: `ServeDir` over [`Files`], inside the layers.
fn router(opts: &ServeOptions) -> Result<Router> {
    let mut mounts = vec![Mount { prefix: "/".into(), dir: opts.root.clone() }];
    for m in &opts.mounts {
        mounts.retain(|old| old.prefix != m.prefix);
        mounts.push(m.clone());
    }
    let mut roots = mounts.iter().map(Root::open).collect::<Result<Vec<_>>>()?;
    // Longest prefix first; the root ("/", no segments) last.
    roots.sort_by_key(|r| std::cmp::Reverse(r.prefix.len()));

    let not_found = (|| async { error(StatusCode::NOT_FOUND) }).into_service();
    // A precompressed sibling (`NAME.br`, `NAME.gz`: `skywatch build` writes them) is sent with
    // `Content-Encoding` and `Vary: Accept-Encoding` when the request accepts it.
    let files = ServeDir::with_backend("", Files { roots: roots.into() })
        .precompressed_br()
        .precompressed_gzip()
        .fallback(not_found);
    let mut app = Router::new().fallback_service(files).layer(middleware::from_fn(guard));
    let mut headers = vec![("cross-origin-resource-policy", "cross-origin"), ("x-content-type-options", "nosniff")];
    if opts.isolation {
        headers
            .extend([("cross-origin-opener-policy", "same-origin"), ("cross-origin-embedder-policy", "require-corp")]);
    }
    if opts.csp {
        headers.push(("content-security-policy", CSP));
    }
    for (name, value) in headers {
        let (name, value) = (HeaderName::from_static(name), HeaderValue::from_static(value));
        app = app.layer(SetResponseHeaderLayer::overriding(name, value));
    }
    if opts.cors {
        app = app.layer(CorsLayer::new().allow_origin(tower_http::cors::Any));
    }
    if opts.verbose {
        app = app.layer(middleware::from_fn(log));
    }
    Ok(app)
}

/// What comes before `ServeDir`: only `GET` and `HEAD`; the path decoded once, strictly, and
/// refused if a segment is `.`, `..`, hidden, or holds a backslash or NUL. Then, on the answer,
/// our content types (with `charset`, which `ServeDir` leaves out), the cache policy, a `301`
/// for the redirect to a directory's `/` (`ServeDir` answers `307`; the move is permanent), and
/// a body held to its length.
async fn guard(req: Request, next: Next) -> Response {
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
async fn log(ConnectInfo(peer): ConnectInfo<SocketAddr>, req: Request, next: Next) -> Response {
    let (method, target, started) = (req.method().clone(), req.uri().to_string(), Instant::now());
    let res = next.run(req).await;
    let len = res.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).unwrap_or("-");
    let ms = started.elapsed().as_secs_f64() * 1e3;
    eprintln!("{peer} {method} {} {} {len} {ms:.1}ms", target.escape_debug(), res.status().as_u16());
    res
}

/// An error page: `404 Not Found` and the like, as plain text.
fn error(status: StatusCode) -> Response {
    let text = format!("{} {}\n", status.as_u16(), status.canonical_reason().unwrap_or(""));
    (status, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], text).into_response()
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

    /// What this root holds at the path `rest`: a file, or a directory with an `index.html` (a
    /// directory without one is not served, not even as a redirect).
    fn find(&self, rest: &[&str]) -> Option<(PathBuf, Metadata)> {
        let mut path = self.dir.clone();
        path.extend(rest);
        let (real, meta) = self.inside(&path)?;
        let servable = meta.is_file() || meta.is_dir() && self.inside(&real.join("index.html"))?.1.is_file();
        servable.then_some((real, meta))
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

/// The file system as `ServeDir` sees it: the paths it builds from URLs, looked up in the first
/// root whose prefix they start with and that has them (see [`Root::find`]); anything else, a
/// link out of its root included, does not exist.
#[derive(Clone)]
struct Files {
    /// Longest prefix first.
    roots: Arc<[Root]>,
}

impl Files {
    async fn find(&self, path: PathBuf) -> io::Result<(PathBuf, Metadata)> {
        let roots = Arc::clone(&self.roots);
        // Canonicalizing touches the disk: on the blocking pool, like tokio's own file calls.
        let found = tokio::task::spawn_blocking(move || {
            let segments: Vec<&str> = path
                .components()
                .filter_map(|c| match c {
                    Component::Normal(s) => Some(s.to_str()),
                    _ => None, // the `.` that ServeDir starts its paths with
                })
                .collect::<Option<_>>()?;
            roots.iter().find_map(|r| r.find(r.strip(&segments)?))
        });
        found.await.ok().flatten().ok_or_else(|| io::ErrorKind::NotFound.into())
    }
}

impl Backend for Files {
    type File = TokioFile;
    type Metadata = Metadata;
    type OpenFuture = <TokioBackend as Backend>::OpenFuture;
    type MetadataFuture = <TokioBackend as Backend>::MetadataFuture;

    fn open(&self, path: PathBuf) -> Self::OpenFuture {
        let files = self.clone();
        Box::pin(async move {
            match files.find(path).await? {
                (real, meta) if meta.is_file() => TokioBackend.open(real).await,
                _ => Err(io::ErrorKind::NotFound.into()),
            }
        })
    }

    fn metadata(&self, path: PathBuf) -> Self::MetadataFuture {
        let files = self.clone();
        Box::pin(async move { files.find(path).await.map(|(_, meta)| meta) })
    }
}

/// A response body held to its `Content-Length`: never more bytes (a file that grew since its
/// length was taken), and an error rather than a normal end when its source gives fewer (a file
/// that shrank), so that the connection is closed instead of leaving the client waiting.
struct ExactLength {
    inner: Body,
    /// Bytes still to send.
    remaining: u64,
}

impl HttpBody for ExactLength {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<io::Result<Frame<Bytes>>>> {
        let this = &mut *self;
        if this.remaining == 0 {
            return Poll::Ready(None);
        }
        Poll::Ready(Some(match ready!(Pin::new(&mut this.inner).poll_frame(cx)) {
            Some(Ok(frame)) => match frame.into_data() {
                Ok(mut data) => {
                    data.truncate(usize::try_from(this.remaining).unwrap_or(usize::MAX));
                    this.remaining -= data.len() as u64;
                    Ok(Frame::data(data))
                }
                Err(frame) => Ok(frame),
            },
            Some(Err(e)) => Err(io::Error::other(e)),
            None => Err(io::Error::new(io::ErrorKind::UnexpectedEof, "file shrank while being sent")),
        }))
    }

    fn is_end_stream(&self) -> bool {
        self.remaining == 0
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.remaining)
    }
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
    use std::fs::File;
    use std::io::{Read, Write};
    use tower::ServiceExt;

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

    /// A folder with `a/b` (text "ab") and a large `big.bin`, and a runtime to ask the router
    /// for them without a socket.
    struct Fixture {
        dir: tempfile::TempDir,
        rt: tokio::runtime::Runtime,
    }

    impl Fixture {
        fn new(big: usize) -> Fixture {
            let dir = tempfile::tempdir().unwrap();
            fs::create_dir(dir.path().join("a")).unwrap();
            fs::write(dir.path().join("a/b"), b"ab").unwrap();
            fs::write(dir.path().join("index.html"), b"<title>root</title>").unwrap();
            fs::write(dir.path().join("big.bin"), vec![7u8; big]).unwrap();
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            Fixture { dir, rt }
        }

        /// The response to `GET target` (with `headers`), body not read yet.
        fn get(&self, target: &str, headers: &[(&str, &str)]) -> Response {
            let app = router(&ServeOptions { root: self.dir.path().into(), ..ServeOptions::default() }).unwrap();
            let mut req = Request::get(target);
            for (n, v) in headers {
                req = req.header(*n, *v);
            }
            self.rt.block_on(app.oneshot(req.body(Body::empty()).unwrap())).unwrap()
        }

        /// Polls a body to its end: the bytes it gave, the error that ended it, if any, and
        /// whether the body then says it has ended.
        fn drain(&self, res: Response) -> (u64, Option<io::Error>, bool) {
            let mut body = res.into_body();
            let (got, error) = self.rt.block_on(async {
                let mut got = 0;
                loop {
                    match std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await {
                        None => return (got, None),
                        Some(Ok(frame)) => got += frame.into_data().unwrap().len() as u64,
                        Some(Err(e)) => {
                            let e = e.into_inner().downcast::<io::Error>().map(|e| *e);
                            return (got, Some(e.unwrap_or_else(io::Error::other)));
                        }
                    }
                }
            });
            (got, error, body.is_end_stream())
        }
    }

    /// Request targets in origin form (the query is not part of the path) and absolute form are
    /// served; `*` is not a path.
    #[test]
    fn request_targets() {
        let f = Fixture::new(0);
        for target in ["/a/b?x=/../", "http://h:1/a/b", "/a/b"] {
            let res = f.get(target, &[]);
            assert_eq!(res.status(), StatusCode::OK, "{target}");
            assert_eq!(f.drain(res).0, 2, "{target}");
        }
        assert_eq!(f.get("http://h:1", &[]).status(), StatusCode::OK);
        assert_eq!(f.get("*", &[]).status(), StatusCode::BAD_REQUEST);
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

    #[test]
    fn mounts_parse() {
        let m: Mount = "/vendor/uplot=node_modules/uplot/dist".parse().unwrap();
        assert_eq!(m.prefix, "/vendor/uplot/");
        assert!("vendor=x".parse::<Mount>().is_err());
        assert!("/a/../b=x".parse::<Mount>().is_err());
        assert!("/a".parse::<Mount>().is_err());
    }

    #[test]
    fn a_streamed_file_gives_exactly_its_length_or_an_error() {
        const CHUNK: u64 = 256 << 10;
        let len = 3 * CHUNK + 5;
        let f = Fixture::new(len as usize);
        let path = f.dir.path().join("big.bin");

        let res = f.get("/big.bin", &[]);
        assert_eq!(res.body().size_hint().exact(), Some(len));
        let (got, error, ended) = f.drain(res);
        assert_eq!(got, len);
        assert!(error.is_none(), "{error:?}");
        assert!(ended);

        // Grown since the length was taken: only that length.
        let res = f.get("/big.bin", &[]);
        File::options().append(true).open(&path).unwrap().write_all(&[1; 10]).unwrap();
        assert_eq!(f.drain(res).0, len);

        // Shrunk while being sent: an error, never a short body that ends normally.
        let res = f.get("/big.bin", &[]);
        File::options().write(true).open(&path).unwrap().set_len(CHUNK + 1).unwrap();
        let (got, error, ended) = f.drain(res);
        assert_eq!(got, CHUNK + 1);
        assert_eq!(error.map(|e| e.kind()), Some(io::ErrorKind::UnexpectedEof));
        assert!(!ended);
    }

    /// Through a real connection: the client reading a large file that is cut short sees the
    /// connection end (with fewer bytes than the Content-Length), rather than waiting.
    #[test]
    fn a_file_shrinking_mid_response_closes_the_connection() {
        use std::net::TcpStream;
        let dir = tempfile::tempdir().unwrap();
        let len = 48usize << 20; // more than the socket buffers hold
        fs::write(dir.path().join("big.bin"), vec![1u8; len]).unwrap();
        let server = start(ServeOptions { port: 0, root: dir.path().into(), ..ServeOptions::default() }).unwrap();
        let mut s = TcpStream::connect(server.addr()).unwrap();
        s.set_read_timeout(Some(std::time::Duration::from_secs(20))).unwrap();
        s.write_all(b"GET /big.bin HTTP/1.1\r\nHost: localhost\r\n\r\n").unwrap();
        let mut head = [0u8; 4096];
        let n = s.read(&mut head).unwrap();
        assert!(String::from_utf8_lossy(&head[..n]).contains(&format!("content-length: {len}")));
        std::thread::sleep(std::time::Duration::from_millis(300)); // the server fills the buffers
        File::options().write(true).open(dir.path().join("big.bin")).unwrap().set_len(1 << 20).unwrap();
        let started = Instant::now();
        let mut rest = Vec::new();
        let end = s.read_to_end(&mut rest);
        assert!(
            !matches!(&end, Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut)),
            "the client was left waiting: {end:?}"
        );
        assert!(n + rest.len() < len, "all {len} bytes arrived");
        assert!(started.elapsed() < std::time::Duration::from_secs(10));
    }

    /// `If-None-Match` names the current tag (weak comparison, as RFC 9110 asks for GET, in a
    /// list, or `*`): a `304`; another tag: the file.
    #[test]
    fn etags() {
        let f = Fixture::new(0);
        let etag = f.get("/a/b", &[]).headers()[header::ETAG].to_str().unwrap().to_string();
        for tag in [etag.clone(), format!("W/{etag}, \"3\""), "*".to_string()] {
            assert_eq!(f.get("/a/b", &[("if-none-match", &tag)]).status(), StatusCode::NOT_MODIFIED, "{tag}");
        }
        assert_eq!(f.get("/a/b", &[("if-none-match", "\"1-3\"")]).status(), StatusCode::OK);
    }
}
