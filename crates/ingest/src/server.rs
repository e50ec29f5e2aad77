//! The local server: the app's router over HTTP/1.1, with the limits a server facing careless or
//! hostile clients needs.
//!
//! - **Header timeout**: a request's headers must arrive whole within it; the same clock runs
//!   while a kept-alive connection waits for its next request, so it is the idle timeout too.
//! - **Body timeout**: the app's (see [`crate::app::Limits::body_timeout`]), answered with `408`.
//! - **Stall timeout**: a connection that moves no byte in either direction for this long is
//!   closed, whatever it was doing (a body that stops half-way, a client that stops reading).
//! - **A bounded number of connections.** At the bound, and whenever the process runs out of
//!   file descriptors, the connection idle the longest (one with no request being handled: slow
//!   headers count as idle) is closed to make room. A connection with a request being handled is
//!   never closed for room, and `/healthz` gets through while slow clients hold the rest.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio::time::{Instant, Sleep};
use tower::ServiceExt;

/// The server's connection limits.
#[derive(Debug, Clone)]
pub struct ServerLimits {
    pub header_timeout: Duration,
    pub stall_timeout: Duration,
    pub max_connections: usize,
}

impl Default for ServerLimits {
    fn default() -> Self {
        Self {
            header_timeout: Duration::from_secs(10),
            stall_timeout: Duration::from_secs(30),
            max_connections: 512,
        }
    }
}

/// One open connection, as the accept loop sees it.
struct Conn {
    /// Requests being handled on it right now.
    busy: AtomicUsize,
    /// Told to close (for room).
    close: Notify,
}

#[derive(Default)]
struct Registry {
    next_id: AtomicU64,
    /// By id, so the first entry is the oldest.
    conns: Mutex<BTreeMap<u64, Arc<Conn>>>,
}

impl Registry {
    fn len(&self) -> usize {
        self.conns.lock().expect("registry lock").len()
    }

    fn add(&self) -> (u64, Arc<Conn>) {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let conn = Arc::new(Conn {
            busy: AtomicUsize::new(0),
            close: Notify::new(),
        });
        self.conns
            .lock()
            .expect("registry lock")
            .insert(id, conn.clone());
        (id, conn)
    }

    fn remove(&self, id: u64) {
        self.conns.lock().expect("registry lock").remove(&id);
    }

    /// Closes the oldest connection with no request being handled; false when every one is busy.
    fn evict_idle(&self) -> bool {
        let mut conns = self.conns.lock().expect("registry lock");
        let victim = conns
            .iter()
            .find(|(_, c)| c.busy.load(Ordering::Acquire) == 0)
            .map(|(id, _)| *id);
        match victim.and_then(|id| conns.remove(&id)) {
            Some(c) => {
                c.close.notify_one();
                true
            }
            None => false,
        }
    }

    fn close_all(&self) {
        for c in self.conns.lock().expect("registry lock").values() {
            c.close.notify_one();
        }
    }
}

/// Serves `app` on `listener` until `shutdown` completes, then lets requests in flight finish
/// (for at most 10 s).
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ServerLimits,
    shutdown: impl Future<Output = ()>,
) {
    let registry = Arc::new(Registry::default());
    let mut tasks = tokio::task::JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            r = listener.accept() => r,
            () = &mut shutdown => break,
        };
        while tasks.try_join_next().is_some() {}
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Out of descriptors (or another transient failure): make room, breathe, go on.
                tracing::warn!(error = %e, "accept failed");
                registry.evict_idle();
                tokio::time::sleep(Duration::from_millis(5)).await;
                continue;
            }
        };
        if registry.len() >= limits.max_connections && !registry.evict_idle() {
            tracing::warn!(
                max = limits.max_connections,
                "every connection is handling a request; refusing one"
            );
            drop(stream);
            continue;
        }
        let (id, conn) = registry.add();
        let registry = registry.clone();
        let app = app.clone();
        let limits = limits.clone();
        tasks.spawn(async move {
            serve_connection(stream, app, &limits, conn).await;
            registry.remove(id);
        });
    }
    registry.close_all();
    let _ = tokio::time::timeout(Duration::from_secs(10), async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
}

/// Marks its connection busy for as long as a request is being handled.
struct Busy(Arc<Conn>);

impl Busy {
    fn new(conn: &Arc<Conn>) -> Self {
        conn.busy.fetch_add(1, Ordering::AcqRel);
        Self(conn.clone())
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.busy.fetch_sub(1, Ordering::AcqRel);
    }
}

async fn serve_connection(stream: TcpStream, app: Router, limits: &ServerLimits, conn: Arc<Conn>) {
    let _ = stream.set_nodelay(true);
    let tracked = conn.clone();
    let service = tower::service_fn(move |req: hyper::Request<Incoming>| {
        let busy = Busy::new(&tracked);
        let app = app.clone();
        async move {
            let resp = app.oneshot(req.map(axum::body::Body::new)).await;
            drop(busy);
            resp
        }
    });
    let io = TokioIo::new(StallTimeout::new(stream, limits.stall_timeout));
    let connection = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .keep_alive(true)
        .serve_connection(io, TowerToHyperService::new(service));
    tokio::pin!(connection);
    tokio::select! {
        r = connection.as_mut() => {
            if let Err(e) = r {
                tracing::debug!(error = %e, "connection closed");
            }
        }
        () = conn.close.notified() => {
            if conn.busy.load(Ordering::Acquire) > 0 {
                // Shutting down: the request in flight finishes, then the connection closes.
                connection.as_mut().graceful_shutdown();
                let _ = connection.await;
            }
            // Otherwise dropping the connection closes it at once.
        }
    }
}

/// A stream that fails with `TimedOut` once no byte has moved in either direction for `limit`.
struct StallTimeout<S> {
    inner: S,
    limit: Duration,
    timer: Pin<Box<Sleep>>,
}

impl<S> StallTimeout<S> {
    fn new(inner: S, limit: Duration) -> Self {
        Self {
            inner,
            limit,
            timer: Box::pin(tokio::time::sleep(limit)),
        }
    }

    fn moved(&mut self) {
        self.timer.as_mut().reset(Instant::now() + self.limit);
    }

    fn check(&mut self, cx: &mut Context<'_>) -> std::io::Result<()> {
        match self.timer.as_mut().poll(cx) {
            Poll::Ready(()) => Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("no byte moved for {:?}", self.limit),
            )),
            Poll::Pending => Ok(()),
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for StallTimeout<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        match Pin::new(&mut self.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if buf.filled().len() > before {
                    self.moved();
                }
                Poll::Ready(Ok(()))
            }
            Poll::Pending => match self.check(cx) {
                Ok(()) => Poll::Pending,
                Err(e) => Poll::Ready(Err(e)),
            },
            other => other,
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for StallTimeout<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match Pin::new(&mut self.inner).poll_write(cx, buf) {
            Poll::Ready(Ok(n)) => {
                if n > 0 {
                    self.moved();
                }
                Poll::Ready(Ok(n))
            }
            Poll::Pending => match self.check(cx) {
                Ok(()) => Poll::Pending,
                Err(e) => Poll::Ready(Err(e)),
            },
            other => other,
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
