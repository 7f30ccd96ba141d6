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
//! * `Content-Security-Policy: `[`CSP`]: our pages, their workers (which take the policy of their
//!   own script's response) and the rayon workers (`blob:` workers, which inherit it) run only
//!   our own scripts, no inline script or style, no `eval`; see [`CSP`] for each directive.
//!   `--no-csp` leaves it out, for a folder of pages that are not ours (the e2e tests' blog host
//!   page, with its inline `<style>`, embedding the widget from another origin). The policy of a
//!   host page embedding the widget is the host's: this header on our scripts does not apply to
//!   it.
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
//! Every response has a `Content-Length`. Small files are read whole before their response
//! starts; larger ones (the data records) are streamed from disk, and if such a file shrinks
//! while it is sent (a rebuild rewriting it), the response ends with an error that closes the
//! connection: the client sees a failed request, never one waiting for bytes that do not come.
//!
//! HTTP/1.1 (with keep-alive and pipelining) is [`hyper`]'s, on a small multi-threaded [`tokio`]
//! runtime of its own thread; path resolution and file reads run on the runtime's blocking
//! pool, so a slow disk never holds up the connections. The page loads its wasm, data and worker
//! scripts over several connections in parallel.

use crate::error::{Error, Result};
use hyper::body::{Body, Bytes, Frame, Incoming, SizeHint};
use hyper::header::{self, HeaderMap, HeaderName, HeaderValue};
use hyper::http::request::Parts;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use std::convert::Infallible;
use std::fs::{self, File, Metadata};
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, ToSocketAddrs};
use std::path::{Component, Path, PathBuf};
use std::pin::Pin;
use std::str::FromStr;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, UNIX_EPOCH};
use tokio::io::{AsyncRead, ReadBuf};
use tokio::sync::oneshot;

/// The uPlot build mounted by default at [`UPLOT_PREFIX`] (relative to the working directory).
pub const UPLOT_DIR: &str = "node_modules/uplot/dist";
/// Where [`UPLOT_DIR`] is mounted by default.
pub const UPLOT_PREFIX: &str = "/vendor/uplot/";

/// Worker threads of the runtime answering requests. Each serves any number of connections;
/// the disk work runs on the runtime's blocking pool ([`BLOCKING_THREADS`]).
const DEFAULT_THREADS: usize = 2;

/// At most this many threads read files and resolve paths at once.
const BLOCKING_THREADS: usize = 16;

/// How long [`Server::stop`] lets responses being sent finish before it closes their
/// connections.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// A connection that does not send a whole request head within this time (an idle keep-alive
/// connection included) is closed.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);

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
    /// Leave out the Content-Security-Policy header (for serving pages that are not ours, such as
    /// a test blog page with inline styles).
    #[arg(long)]
    pub no_csp: bool,
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
            csp: !a.no_csp,
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
    /// Tells the accept loop to stop (dropping it does too); `None` once used.
    stop: Option<oneshot::Sender<()>>,
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
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
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
    let site =
        Arc::new(Site { roots, isolation: opts.isolation, cors: opts.cors, csp: opts.csp, verbose: opts.verbose });
    let (stop, stopped) = oneshot::channel();
    let thread = std::thread::Builder::new()
        .name("serve".into())
        .spawn(move || {
            runtime.block_on(accept(listener, site, stopped));
            // Reads still running on the blocking pool are of connections already closed.
            runtime.shutdown_timeout(Duration::from_secs(1));
        })
        .map_err(|e| Error::io("serve thread", e))?;
    Ok(Server { addr, isolated: opts.isolation, stop: Some(stop), thread: Some(thread) })
}

/// Accepts connections until `stopped`, each served by a task of its own; then closes the
/// listener, lets the responses being sent finish (for up to [`STOP_GRACE`]) and returns.
async fn accept(listener: tokio::net::TcpListener, site: Arc<Site>, mut stopped: oneshot::Receiver<()>) {
    let graceful = GracefulShutdown::new();
    loop {
        let (stream, peer) = tokio::select! {
            _ = &mut stopped => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors, or a connection reset before it was accepted.
                    if site.verbose {
                        eprintln!("serve: accept: {e}");
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                }
            },
        };
        // The small responses (module scripts) go out at once, not after a delayed ACK.
        let _ = stream.set_nodelay(true);
        let answering = site.clone();
        let service = service_fn(move |rq: Request<Incoming>| {
            let site = answering.clone();
            async move { Ok::<_, Infallible>(site.answer(rq, peer).await) }
        });
        let connection = http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(HEADER_READ_TIMEOUT)
            .serve_connection(TokioIo::new(stream), service);
        let connection = graceful.watch(connection);
        let verbose = site.verbose;
        tokio::spawn(async move {
            // A client going away mid-response, a malformed request, a file that shrank.
            if let Err(e) = connection.await
                && verbose
            {
                eprintln!("{peer} connection closed: {e}");
            }
        });
    }
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(STOP_GRACE) => {}
    }
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

/// What the connections share.
struct Site {
    /// Longest prefix first.
    roots: Vec<Root>,
    isolation: bool,
    cors: bool,
    csp: bool,
    verbose: bool,
}

type Reply = Response<Payload>;

impl Site {
    /// Answers one request. The disk work (path resolution, opening and reading small files) runs
    /// on the blocking pool; a request body, if any, is not read (hyper discards it, or closes the
    /// connection).
    async fn answer(self: Arc<Site>, rq: Request<Incoming>, peer: SocketAddr) -> Reply {
        let started = Instant::now();
        let (rq, _body) = rq.into_parts();
        let (method, target) = (rq.method.clone(), rq.uri.to_string());
        let site = self.clone();
        let mut reply = match tokio::task::spawn_blocking(move || site.reply(&rq)).await {
            Ok(reply) => reply,
            Err(_) => self.error(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error"),
        };
        if method == Method::HEAD {
            // The headers of the GET, its Content-Length included, without its body.
            *reply.body_mut() = Payload::bytes(Bytes::new());
        }
        if self.verbose {
            let len = reply.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse().ok());
            let status = reply.status().as_u16();
            reply.body_mut().log = Some(Log { peer, method, target, status, len: len.unwrap_or(0), started });
        }
        reply
    }

    fn reply(&self, rq: &Parts) -> Reply {
        if !matches!(rq.method, Method::GET | Method::HEAD) {
            let allow = (header::ALLOW, HeaderValue::from_static("GET, HEAD"));
            return with_header(self.error(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed"), allow);
        }
        let url = rq.uri.to_string();
        let Some(target) = request_path(&url) else {
            return self.error(StatusCode::BAD_REQUEST, "Bad Request");
        };
        let Some(decoded) = percent_decode(target).and_then(|b| String::from_utf8(b).ok()) else {
            return self.error(StatusCode::BAD_REQUEST, "Bad Request");
        };
        let Some(segments) = segments(&decoded) else {
            return self.error(StatusCode::NOT_FOUND, "Not Found");
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
                    if let Some(query) = rq.uri.query() {
                        location.push('?');
                        location.push_str(query);
                    }
                    let Ok(location) = HeaderValue::from_str(&location) else {
                        return self.error(StatusCode::BAD_REQUEST, "Bad Request");
                    };
                    let moved = self.error(StatusCode::MOVED_PERMANENTLY, "Moved Permanently");
                    return with_header(moved, (header::LOCATION, location));
                }
                Found::Nothing => {}
            }
        }
        self.error(StatusCode::NOT_FOUND, "Not Found")
    }

    fn file(&self, rq: &Parts, path: &Path, meta: Metadata) -> Reply {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        let cache = if is_hashed_record(name) { "public, max-age=31536000, immutable" } else { "no-cache" };
        let file = match File::open(path) {
            Ok(f) => f,
            Err(_) => return self.error(StatusCode::NOT_FOUND, "Not Found"),
        };
        // The opened file's own size and time, in case it was replaced since the lookup.
        let meta = file.metadata().unwrap_or(meta);
        let len = meta.len();
        let etag = etag(&meta);
        let mut headers = self.common_headers();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type(name)));
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
        headers.insert(header::ETAG, HeaderValue::from_str(&etag).expect("an ASCII tag"));
        let unchanged =
            rq.headers.get_all(header::IF_NONE_MATCH).iter().any(|v| v.to_str().is_ok_and(|v| etag_matches(v, &etag)));
        if unchanged {
            return respond(StatusCode::NOT_MODIFIED, headers, Payload::bytes(Bytes::new()));
        }
        let body = if len <= WHOLE_FILE_LIMIT {
            // Read first, then send: the Content-Length is then exactly what is sent even if a
            // rebuild rewrites the file meanwhile.
            let mut bytes = Vec::with_capacity(len as usize);
            if file.take(WHOLE_FILE_LIMIT).read_to_end(&mut bytes).is_err() {
                return self.error(StatusCode::NOT_FOUND, "Not Found");
            }
            Payload::bytes(bytes.into())
        } else {
            Payload::file(file, len)
        };
        respond(StatusCode::OK, headers, body)
    }

    fn error(&self, status: StatusCode, text: &'static str) -> Reply {
        let body = format!("{} {text}\n", status.as_u16());
        let mut headers = self.common_headers();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        respond(status, headers, Payload::bytes(body.into()))
    }

    fn common_headers(&self) -> HeaderMap {
        let mut h = HeaderMap::with_capacity(12);
        let mut add = |name: HeaderName, value: &'static str| h.insert(name, HeaderValue::from_static(value));
        if self.isolation {
            add(HeaderName::from_static("cross-origin-opener-policy"), "same-origin");
            add(HeaderName::from_static("cross-origin-embedder-policy"), "require-corp");
        }
        add(HeaderName::from_static("cross-origin-resource-policy"), "cross-origin");
        if self.cors {
            add(header::ACCESS_CONTROL_ALLOW_ORIGIN, "*");
        }
        add(header::X_CONTENT_TYPE_OPTIONS, "nosniff");
        if self.csp {
            add(header::CONTENT_SECURITY_POLICY, CSP);
        }
        h
    }
}

/// A response whose `Content-Length` is its body's. A `304` has no body and no length (hyper
/// leaves one out); a `HEAD` response keeps the length of its `GET` (see [`Site::answer`]).
fn respond(status: StatusCode, mut headers: HeaderMap, body: Payload) -> Reply {
    if status != StatusCode::NOT_MODIFIED {
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from(body.remaining));
    }
    let mut reply = Response::new(body);
    *reply.status_mut() = status;
    *reply.headers_mut() = headers;
    reply
}

fn with_header(mut reply: Reply, (name, value): (HeaderName, HeaderValue)) -> Reply {
    reply.headers_mut().insert(name, value);
    reply
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

/// Files up to this size are read whole before their response starts (see `Site::file`); larger
/// ones are streamed.
const WHOLE_FILE_LIMIT: u64 = 1 << 20;

/// A streamed file is read in chunks of this size.
const CHUNK: usize = 256 << 10;

/// The body of a response: exactly its `Content-Length` (`remaining` at the start), from memory
/// or streamed from a file. A file that shrinks while it is sent (a rebuild rewriting it) ends
/// the body with an error, and hyper closes the connection, instead of leaving the client
/// waiting for bytes that never come; a file that grows is sent up to its length at the start.
struct Payload {
    source: Source,
    /// Bytes still to send.
    remaining: u64,
    /// What ended the body early, for the log.
    failure: Option<String>,
    /// Written when the body ends or is dropped (`--verbose`).
    log: Option<Log>,
}

enum Source {
    Memory(Bytes),
    /// The file, and the buffer it is read into.
    File(tokio::fs::File, Box<[u8]>),
}

impl Payload {
    fn bytes(bytes: Bytes) -> Payload {
        Payload { remaining: bytes.len() as u64, source: Source::Memory(bytes), failure: None, log: None }
    }

    /// `len` bytes of `file`, from its current position.
    fn file(file: File, len: u64) -> Payload {
        let buf = vec![0; CHUNK.min(usize::try_from(len).unwrap_or(CHUNK))].into_boxed_slice();
        let source = Source::File(tokio::fs::File::from_std(file), buf);
        Payload { source, remaining: len, failure: None, log: None }
    }
}

impl Body for Payload {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<io::Result<Frame<Bytes>>>> {
        let this = &mut *self;
        if this.remaining == 0 {
            return Poll::Ready(None);
        }
        let chunk = match &mut this.source {
            Source::Memory(bytes) => Ok(std::mem::take(bytes)),
            Source::File(file, buf) => {
                let want = buf.len().min(usize::try_from(this.remaining).unwrap_or(usize::MAX));
                let mut read = ReadBuf::new(&mut buf[..want]);
                match ready!(Pin::new(file).poll_read(cx, &mut read)) {
                    Ok(()) if read.filled().is_empty() => {
                        Err(io::Error::new(io::ErrorKind::UnexpectedEof, "file shrank while being sent"))
                    }
                    Ok(()) => Ok(Bytes::copy_from_slice(read.filled())),
                    Err(e) => Err(e),
                }
            }
        };
        Poll::Ready(Some(match chunk {
            Ok(chunk) => {
                debug_assert!(chunk.len() as u64 <= this.remaining);
                this.remaining -= chunk.len() as u64;
                Ok(Frame::data(chunk))
            }
            Err(e) => {
                this.failure = Some(e.to_string());
                Err(e)
            }
        }))
    }

    fn is_end_stream(&self) -> bool {
        self.remaining == 0
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.remaining)
    }
}

/// A `--verbose` line: one per response, written when its body has been handed to the
/// connection whole, or has failed.
struct Log {
    peer: SocketAddr,
    method: Method,
    target: String,
    status: u16,
    len: u64,
    started: Instant,
}

impl Drop for Payload {
    fn drop(&mut self) {
        let Some(Log { peer, method, target, status, len, started }) = self.log.take() else {
            return;
        };
        let outcome = match (&self.failure, self.remaining) {
            (_, 0) => String::new(),
            (Some(e), n) => format!(" ({e}; {n} bytes not sent)"),
            (None, n) => format!(" (connection closed; {n} bytes not sent)"),
        };
        eprintln!(
            "{peer} {method} {} {status} {len} {:.1}ms{outcome}",
            target.escape_debug(),
            started.elapsed().as_secs_f64() * 1e3
        );
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

    /// Polls `body` to its end: the bytes it gave, and the error that ended it, if any.
    fn drain(body: &mut Payload) -> (u64, Option<io::Error>) {
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        rt.block_on(async {
            let mut got = 0;
            loop {
                match std::future::poll_fn(|cx| Pin::new(&mut *body).poll_frame(cx)).await {
                    None => return (got, None),
                    Some(Ok(frame)) => got += frame.into_data().unwrap().len() as u64,
                    Some(Err(e)) => return (got, Some(e)),
                }
            }
        })
    }

    #[test]
    fn a_streamed_file_gives_exactly_its_length_or_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big.bin");
        let len = 3 * CHUNK as u64 + 5;
        fs::write(&path, vec![7u8; len as usize]).unwrap();

        let mut body = Payload::file(File::open(&path).unwrap(), len);
        assert_eq!(body.size_hint().exact(), Some(len));
        let (got, error) = drain(&mut body);
        assert_eq!(got, len);
        assert!(error.is_none(), "{error:?}");
        assert!(body.is_end_stream());

        // Grown since the length was taken: only that length.
        let mut body = Payload::file(File::open(&path).unwrap(), len - 10);
        assert_eq!(drain(&mut body).0, len - 10);

        // Shrunk while being sent: an error, never a short body that ends normally.
        let mut body = Payload::file(File::open(&path).unwrap(), len);
        File::options().write(true).open(&path).unwrap().set_len(CHUNK as u64 + 1).unwrap();
        let (got, error) = drain(&mut body);
        assert_eq!(got, CHUNK as u64 + 1);
        assert_eq!(error.map(|e| e.kind()), Some(io::ErrorKind::UnexpectedEof));
        assert!(!body.is_end_stream());
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

    #[test]
    fn etags() {
        assert!(etag_matches("\"1-2\"", "\"1-2\""));
        assert!(etag_matches("W/\"1-2\", \"3\"", "\"1-2\""));
        assert!(etag_matches("*", "\"1-2\""));
        assert!(!etag_matches("\"1-3\"", "\"1-2\""));
    }
}
