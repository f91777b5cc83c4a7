//! The HTTP server loop: hyper, serving the poem endpoint, with the connection-level defences
//! poem's own `Server` lacks. A client that sends its request head too slowly (slowloris) is
//! cut off after `server.header_read_timeout_secs`; a connection without any traffic after
//! `server.idle_timeout_secs`; and one client address may hold at most
//! `server.max_connections_per_ip` connections (trusted proxies excepted: they carry many
//! clients). The body keeps the request deadline of the `Timeout` middleware. HTTP/2, whose
//! frames hyper's request-head deadline does not cover, is closed when no request has been in
//! flight for the header-read timeout (so PINGs alone do not hold it), and carries at most
//! [`H2_MAX_CONCURRENT_STREAMS`] requests at once.
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
    server::conn::auto,
};
use poem::{
    Endpoint, EndpointExt, Response,
    http::uri::Scheme,
    web::{LocalAddr, RemoteAddr},
};
use tokio::{
    io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf},
    net::{TcpListener, TcpStream},
    sync::watch,
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
    /// Also serve HTTP/2 over plain TCP (prior knowledge). Off by default: browsers speak h2
    /// over TLS only, and h2c is for a proxy in front that does.
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
    // Tells every connection to finish (graceful), then waits until all have dropped their
    // receiver.
    let (graceful, _) = watch::channel(());
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
        // The cap is per listener: the HTTPS, redirect and metrics listeners count apart.
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
        let conn = Conn {
            addrs: (local, peer),
            shutdown: graceful.subscribe(),
            idle_limit: options.header_read_timeout,
        };
        let (ep, builders) = (ep.clone(), builders.clone());
        match &tls {
            None => tasks.spawn(async move {
                let (builder, may_be_h2) = (&builders.plain, builders.plain_may_be_h2);
                serve_connection(builder, may_be_h2, io, ep, conn, Scheme::HTTP).await;
            }),
            Some(tls) => {
                let tls = tls.clone();
                tasks
                    .spawn(async move { serve_tls_connection(&tls, &builders, io, ep, conn).await })
            }
        };
    }
    drop(listener);
    let _ = graceful.send(());
    tokio::select! {
        () = graceful.closed() => {}
        () = tokio::time::sleep(options.grace) => {
            tracing::warn!("shutdown grace period over: closing the remaining connections");
        }
    }
    tasks.abort_all();
    Ok(())
}

/// At most this many requests in flight at once on one HTTP/2 connection. hyper's default
/// (200), times the per-address connection cap, would let one address hold thousands of
/// requests; a browser rarely needs more than a few dozen at once.
const H2_MAX_CONCURRENT_STREAMS: u32 = 32;

/// How often an HTTP/2 connection with requests in flight is PINGed, and how long the answer
/// may take: a peer that vanished without closing is noticed, not waited for.
const H2_KEEP_ALIVE_INTERVAL: Duration = Duration::from_secs(20);
const H2_KEEP_ALIVE_TIMEOUT: Duration = Duration::from_secs(20);

/// hyper's connection settings: as configured for plain TCP, and one per protocol that ALPN
/// picked for TLS (the client has told which, so nothing is sniffed).
struct Builders {
    plain: auto::Builder<TokioExecutor>,
    /// Whether `plain` serves HTTP/2 (`server.http2_cleartext`).
    plain_may_be_h2: bool,
    http1: auto::Builder<TokioExecutor>,
    h2: auto::Builder<TokioExecutor>,
}

impl Builders {
    fn new(options: &ServeOptions) -> Self {
        let mut base = auto::Builder::new(TokioExecutor::new());
        base.http1()
            .timer(TokioTimer::new())
            .header_read_timeout(options.header_read_timeout);
        base.http2()
            .timer(TokioTimer::new())
            .max_concurrent_streams(H2_MAX_CONCURRENT_STREAMS)
            .keep_alive_interval(H2_KEEP_ALIVE_INTERVAL)
            .keep_alive_timeout(H2_KEEP_ALIVE_TIMEOUT);
        let plain = if options.http2_cleartext {
            base.clone()
        } else {
            base.clone().http1_only()
        };
        Self {
            plain,
            plain_may_be_h2: options.http2_cleartext,
            http1: base.clone().http1_only(),
            h2: base.http2_only(),
        }
    }
}

/// What a connection's task knows besides its stream.
struct Conn {
    /// (local, peer)
    addrs: (SocketAddr, SocketAddr),
    /// Changes when the server shuts down; dropped when the connection is done.
    shutdown: watch::Receiver<()>,
    /// An HTTP/2 connection without a request in flight this long is closed.
    idle_limit: Duration,
}

/// Completes the TLS handshake within the header-read timeout, then serves the protocol ALPN
/// picked.
async fn serve_tls_connection<E>(
    tls: &TlsAcceptor,
    builders: &Builders,
    io: Guarded,
    ep: Arc<E>,
    conn: Conn,
) where
    E: Endpoint<Output = Response> + 'static,
{
    let peer = conn.addrs.1;
    let stream = match tokio::time::timeout(conn.idle_limit, tls.accept(io)).await {
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
    if tls::negotiated_h2(stream.get_ref().1) {
        serve_connection(&builders.h2, true, stream, ep, conn, Scheme::HTTPS).await;
    } else {
        serve_connection(&builders.http1, false, stream, ep, conn, Scheme::HTTPS).await;
    }
}

/// Serves one connection (plain, or after its TLS handshake) until it closes: each request
/// handed to `ep` as a poem request that knows its addresses and scheme.
///
/// A connection that `may_be_h2` is watched: hyper's request-head deadline covers HTTP/1 only,
/// and any HTTP/2 frame (a PING) counts as traffic for the idle timeout. So when no request
/// has been in flight for the header-read timeout, the connection is asked to close (GOAWAY),
/// and dropped if it is still idle that long afterwards (a client that never answers the
/// GOAWAY's PING). Requests in flight are never cut: a response body still streaming after its
/// handler returned does finish, as GOAWAY lets open streams complete.
async fn serve_connection<I, E>(
    builder: &auto::Builder<TokioExecutor>,
    may_be_h2: bool,
    io: I,
    ep: Arc<E>,
    mut conn: Conn,
    scheme: Scheme,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    E: Endpoint<Output = Response> + 'static,
{
    let (local, peer) = conn.addrs;
    let (in_flight, _) = watch::channel(0usize);
    let in_flight = Arc::new(in_flight);
    let counter = in_flight.clone();
    let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
        let (ep, scheme) = (ep.clone(), scheme.clone());
        let request = InFlight::start(&counter);
        async move {
            let req = poem::Request::from((
                req,
                LocalAddr(local.into()),
                RemoteAddr(peer.into()),
                scheme,
            ));
            let resp: Response = ep.get_response(req).await;
            drop(request);
            Ok::<_, Infallible>(hyper::Response::from(resp))
        }
    });
    let served = builder.serve_connection(TokioIo::new(io), service);
    tokio::pin!(served);
    let mut closing = false;
    let result = loop {
        tokio::select! {
            result = served.as_mut() => break result,
            Ok(()) = conn.shutdown.changed(), if !closing => {
                closing = true;
                served.as_mut().graceful_shutdown();
            }
            () = idle_for(in_flight.subscribe(), conn.idle_limit), if may_be_h2 => {
                if closing {
                    tracing::debug!(%peer, "idle HTTP/2 connection did not close: dropped");
                    return;
                }
                tracing::debug!(%peer, "no request on an HTTP/2 connection: closing it");
                closing = true;
                served.as_mut().graceful_shutdown();
            }
        }
    };
    if let Err(err) = result {
        tracing::debug!(error = %err, %peer, "connection closed with an error");
    }
}

/// One request in flight on a connection; counted until dropped.
struct InFlight(Arc<watch::Sender<usize>>);

impl InFlight {
    fn start(counter: &Arc<watch::Sender<usize>>) -> Self {
        counter.send_modify(|n| *n += 1);
        Self(counter.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.send_modify(|n| *n = n.saturating_sub(1));
    }
}

/// Resolves once no request has been in flight for `limit` (since the last one finished, or
/// since now when none is in flight).
async fn idle_for(mut in_flight: watch::Receiver<usize>, limit: Duration) {
    loop {
        if in_flight.wait_for(|n| *n == 0).await.is_err() {
            return std::future::pending().await;
        }
        // A request starting (or finishing) within the limit starts the wait again.
        if tokio::time::timeout(limit, in_flight.changed())
            .await
            .is_err()
        {
            return;
        }
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
