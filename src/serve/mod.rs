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
//!
//! This file holds the options, the router and the server's thread; `guard.rs` the request's
//! checks, content types and cache policy; `files.rs` the file lookup inside the roots and the
//! body held to its length.

mod files;
mod guard;

pub use guard::content_type;

use crate::error::{Error, Result};
use axum::Router;
use axum::handler::HandlerWithoutStateExt;
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::middleware;
use axum::serve::ListenerExt;
use files::{Files, Root};
use guard::{error, guard, log, segments};
use std::io;
use std::net::{SocketAddr, TcpListener, ToSocketAddrs};
use std::path::PathBuf;
use std::str::FromStr;
use std::thread::JoinHandle;
use std::time::Duration;
use tokio::sync::watch;
use tower_http::cors::CorsLayer;
use tower_http::services::ServeDir;
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

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::{Body, HttpBody};
    use axum::extract::Request;
    use axum::http::header;
    use axum::response::Response;
    use std::fs::{self, File};
    use std::io::{Read, Write};
    use std::pin::Pin;
    use std::time::Instant;
    use tower::ServiceExt;

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
