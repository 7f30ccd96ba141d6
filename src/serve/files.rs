//! The file side of the server: the file system as `ServeDir` sees it ([`Files`]), which looks a
//! path up in the first mount ([`Root`]) that has it and serves a file only if its real path,
//! symbolic links resolved, lies inside that mount's folder and is not hidden; and the response
//! body held to its `Content-Length` ([`ExactLength`]), so that a file that shrinks while it is
//! sent ends in an error (the connection is closed) instead of a client waiting for bytes.

use super::Mount;
use super::guard::segments;
use crate::error::{Error, Result};
use axum::body::{Body, Bytes, HttpBody};
use http_body::{Frame, SizeHint};
use std::fs::{self, Metadata};
use std::io;
use std::path::{Component, Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use tower_http::services::fs::{Backend, TokioBackend, TokioFile};

/// A mount with its folder canonicalized.
pub(super) struct Root {
    pub(super) prefix: Vec<String>,
    dir: PathBuf,
}

impl Root {
    pub(super) fn open(m: &Mount) -> Result<Root> {
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
pub(super) struct Files {
    /// Longest prefix first.
    pub(super) roots: Arc<[Root]>,
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
pub(super) struct ExactLength {
    pub(super) inner: Body,
    /// Bytes still to send.
    pub(super) remaining: u64,
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
