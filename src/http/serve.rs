//! The HTTP server loop: hyper, serving the poem endpoint, with the connection-level defences
//! poem's own `Server` lacks. A client that sends its request head too slowly (slowloris) is
//! cut off after `server.header_read_timeout_secs`; a connection without any traffic after
//! `server.idle_timeout_secs`; and one client address may hold at most
//! `server.max_connections_per_ip` connections (trusted proxies excepted: they carry many
//! clients). The body keeps the request deadline of the `Timeout` middleware.
//!
//! With TLS, the handshake runs in the connection's own task under the same defences: it must
//! finish within the header-read timeout, and the connection counts against the cap meanwhile.
use std::{
    collections::HashMap,
    convert::Infallible,
    future::Future,
    io,
    net::{IpAddr, SocketAddr},
    pin::Pin,
    sync::{Arc, Mutex},
    task::{Context, Poll},
    time::Duration,
};

use hyper::body::Incoming;
use hyper_util::{
    rt::{TokioExecutor, TokioIo, TokioTimer},
    server::{
        conn::auto,
        graceful::{GracefulShutdown, Watcher},
    },
};
use poem::{
    Endpoint, EndpointExt, Response,
    http::uri::Scheme,
    web::{LocalAddr, RemoteAddr},
};
use tokio::{
    io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf},
    net::{TcpListener, TcpStream},
    time::{Instant, Sleep},
};

use super::{
    TrustedProxies,
    tls::{self, TlsAcceptor},
};

/// Connection limits, from `server.*`.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// From the first byte a connection may send (or the end of the previous response) to the
    /// end of the request head.
    pub header_read_timeout: Duration,
    /// Longest stretch without a byte read or written.
    pub idle_timeout: Duration,
    pub max_connections_per_ip: u32,
    /// Peers exempt from the per-address cap.
    pub proxies: TrustedProxies,
    /// Also serve HTTP/2 over plain TCP (prior knowledge). Off by default: hyper's request-head
    /// deadline covers HTTP/1 only, so an h2c client dripping a HEADERS frame is bounded by the
    /// idle timeout alone.
    pub http2_cleartext: bool,
    /// How long in-flight requests may finish after the shutdown signal.
    pub grace: Duration,
}

/// Serves `ep` on `listener` until `shutdown` resolves, then lets in-flight requests finish.
/// With `tls`, every connection is HTTPS.
pub async fn serve<E>(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    ep: E,
    options: ServeOptions,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()>
where
    E: Endpoint + 'static,
{
    let ep = Arc::new(ep.map_to_response());
    let local = listener.local_addr()?;
    let connections = Connections::new(options.max_connections_per_ip);
    let builders = Arc::new(Builders::new(&options));
    let graceful = GracefulShutdown::new();
    let mut tasks = tokio::task::JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            // Reap finished connections as we go.
            Some(_) = tasks.join_next(), if !tasks.is_empty() => continue,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    // Out of file descriptors and the like: pause rather than spin.
                    tracing::warn!(error = %err, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let permit = if options.proxies.is_trusted(peer.ip()) {
            None
        } else {
            match connections.acquire(peer.ip()) {
                Some(permit) => Some(permit),
                // A plain 429 means nothing to a TLS client: it is simply closed.
                None if tls.is_some() => {
                    tracing::warn!(%peer, "too many connections from one address: closed");
                    continue;
                }
                None => {
                    tokio::spawn(refuse(stream, peer));
                    continue;
                }
            }
        };
        let io = Guarded::new(stream, permit, &options);
        let addrs = (local, peer);
        let (ep, builders, watcher) = (ep.clone(), builders.clone(), graceful.watcher());
        match &tls {
            None => tasks.spawn(async move {
                serve_connection(&builders.plain, io, ep, addrs, Scheme::HTTP, watcher).await;
            }),
            Some(tls) => {
                let (tls, handshake_within) = (tls.clone(), options.header_read_timeout);
                tasks.spawn(async move {
                    let stream = match tokio::time::timeout(handshake_within, tls.accept(io)).await
                    {
                        Ok(Ok(Some(stream))) => stream,
                        // An ACME validation: the handshake was all it needed.
                        Ok(Ok(None)) => return,
                        Ok(Err(err)) => {
                            tracing::debug!(error = %err, %peer, "TLS handshake failed");
                            return;
                        }
                        Err(_) => {
                            tracing::debug!(%peer, "TLS handshake too slow: closed");
                            return;
                        }
                    };
                    let builder = if tls::negotiated_h2(stream.get_ref().1) {
                        &builders.h2
                    } else {
                        &builders.http1
                    };
                    serve_connection(builder, stream, ep, addrs, Scheme::HTTPS, watcher).await;
                })
            }
        };
    }
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(options.grace) => {
            tracing::warn!("shutdown grace period over: closing the remaining connections");
        }
    }
    tasks.abort_all();
    Ok(())
}

/// hyper's connection settings: as configured for plain TCP, and one per protocol that ALPN
/// picked for TLS (the client has told which, so nothing is sniffed).
struct Builders {
    plain: auto::Builder<TokioExecutor>,
    http1: auto::Builder<TokioExecutor>,
    h2: auto::Builder<TokioExecutor>,
}

impl Builders {
    fn new(options: &ServeOptions) -> Self {
        let mut base = auto::Builder::new(TokioExecutor::new());
        base.http1()
            .timer(TokioTimer::new())
            .header_read_timeout(options.header_read_timeout);
        base.http2().timer(TokioTimer::new());
        let plain = if options.http2_cleartext {
            base.clone()
        } else {
            base.clone().http1_only()
        };
        Self {
            plain,
            http1: base.clone().http1_only(),
            h2: base.http2_only(),
        }
    }
}

/// Serves one connection (plain, or after its TLS handshake) until it closes: each request
/// handed to `ep` as a poem request that knows its addresses and scheme.
async fn serve_connection<I, E>(
    builder: &auto::Builder<TokioExecutor>,
    io: I,
    ep: Arc<E>,
    (local, peer): (SocketAddr, SocketAddr),
    scheme: Scheme,
    watcher: Watcher,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    E: Endpoint<Output = Response> + 'static,
{
    let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
        let (ep, scheme) = (ep.clone(), scheme.clone());
        async move {
            let req = poem::Request::from((
                req,
                LocalAddr(local.into()),
                RemoteAddr(peer.into()),
                scheme,
            ));
            let resp: Response = ep.get_response(req).await;
            Ok::<_, Infallible>(hyper::Response::from(resp))
        }
    });
    let conn = builder.serve_connection(TokioIo::new(io), service);
    if let Err(err) = watcher.watch(conn).await {
        tracing::debug!(error = %err, %peer, "connection closed with an error");
    }
}

/// Over its connection cap, a client gets a short 429 and the connection is closed.
async fn refuse(mut stream: TcpStream, peer: SocketAddr) {
    tracing::warn!(%peer, "too many connections from one address: refused");
    const BODY: &str = r#"{"type":"about:blank","title":"Too Many Requests","status":429,"detail":"too many connections from this address"}"#;
    let response = format!(
        "HTTP/1.1 429 Too Many Requests\r\ncontent-type: application/problem+json\r\n\
         retry-after: 1\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{BODY}",
        BODY.len()
    );
    let write = async {
        stream.write_all(response.as_bytes()).await?;
        stream.shutdown().await?;
        // Read what the client already sent, so the close is not a reset that loses the 429.
        let mut sink = [0u8; 1024];
        while stream.read(&mut sink).await? > 0 {}
        io::Result::Ok(())
    };
    let _ = tokio::time::timeout(Duration::from_secs(1), write).await;
}

/// Open connections per client address.
struct Connections {
    max: u32,
    open: Mutex<HashMap<IpAddr, u32>>,
}

impl Connections {
    fn new(max: u32) -> Arc<Self> {
        Arc::new(Self {
            max,
            open: Mutex::new(HashMap::new()),
        })
    }

    /// A slot for `ip`'s network: the address, or its /64 for IPv6 (one host usually holds a
    /// whole /64, as the rate limits assume too).
    fn acquire(self: &Arc<Self>, ip: IpAddr) -> Option<Permit> {
        let ip = match ip.to_canonical() {
            IpAddr::V6(v6) => IpAddr::V6(super::ipv6_network(v6, 64).network()),
            v4 => v4,
        };
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let count = open.entry(ip).or_insert(0);
        if *count >= self.max {
            return None;
        }
        *count += 1;
        Some(Permit {
            connections: self.clone(),
            ip,
        })
    }
}

/// One open connection of `ip`; closing it gives the slot back.
struct Permit {
    connections: Arc<Connections>,
    ip: IpAddr,
}

impl Drop for Permit {
    fn drop(&mut self) {
        let mut open = self
            .connections
            .open
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if let Some(count) = open.get_mut(&self.ip) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                open.remove(&self.ip);
            }
        }
    }
}

/// Bytes it takes to tell HTTP/1 from HTTP/2 (the HTTP/2 preface); until they have arrived
/// the header deadline is ours, since hyper's starts only once it knows the protocol.
const PREFACE_BYTES: usize = 24;

/// A connection with deadlines: the first bytes within the header timeout, then never longer
/// than the idle timeout without traffic while a read or write waits.
struct Guarded {
    inner: TcpStream,
    _permit: Option<Permit>,
    idle: Duration,
    /// Set until the preface bytes have arrived: an absolute deadline, not extended by reads.
    head_due: Option<Instant>,
    read: usize,
    last_activity: Instant,
    /// Never later than the deadline due; re-armed lazily, not on every read.
    timer: Pin<Box<Sleep>>,
}

impl Guarded {
    fn new(inner: TcpStream, permit: Option<Permit>, options: &ServeOptions) -> Self {
        let now = Instant::now();
        let head_due = now + options.header_read_timeout;
        Self {
            inner,
            _permit: permit,
            idle: options.idle_timeout,
            head_due: Some(head_due),
            read: 0,
            last_activity: now,
            timer: Box::pin(tokio::time::sleep_until(
                head_due.min(now + options.idle_timeout),
            )),
        }
    }

    fn due(&self) -> Instant {
        let idle = self.last_activity + self.idle;
        self.head_due.map_or(idle, |head| head.min(idle))
    }

    fn activity(&mut self, read: usize, wrote: bool) {
        self.last_activity = Instant::now();
        self.read = self.read.saturating_add(read);
        if wrote || self.read >= PREFACE_BYTES {
            self.head_due = None;
        }
    }

    /// Whether the connection is past its deadline (registers the waker otherwise).
    fn expired(&mut self, cx: &mut Context<'_>) -> bool {
        loop {
            if self.timer.as_mut().poll(cx).is_pending() {
                return false;
            }
            let due = self.due();
            if due <= Instant::now() {
                return true;
            }
            self.timer.as_mut().reset(due);
        }
    }

    /// After a write was polled: bytes written are activity; a write that waits past the
    /// deadline fails (a client that does not read its response holds the connection no
    /// longer).
    fn wrote(
        &mut self,
        cx: &mut Context<'_>,
        polled: Poll<io::Result<usize>>,
    ) -> Poll<io::Result<usize>> {
        match polled {
            Poll::Ready(Ok(n)) => {
                self.activity(0, n > 0);
                Poll::Ready(Ok(n))
            }
            Poll::Pending if self.expired(cx) => Poll::Ready(Err(Self::timed_out())),
            other => other,
        }
    }

    fn timed_out() -> io::Error {
        io::Error::new(io::ErrorKind::TimedOut, "connection deadline passed")
    }
}

impl AsyncRead for Guarded {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                this.activity(buf.filled().len() - before, false);
                Poll::Ready(Ok(()))
            }
            Poll::Pending if this.expired(cx) => Poll::Ready(Err(Self::timed_out())),
            other => other,
        }
    }
}

impl AsyncWrite for Guarded {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_write(cx, buf);
        this.wrote(cx, polled)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        this.wrote(cx, polled)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}
