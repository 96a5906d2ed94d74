//! Upstream pools: endpoint choice (round-robin or least-requests),
//! passive ejection of failing endpoints, pooled keep-alive connections,
//! and PROXY v1/v2 towards the backend when asked.
//!
//! Connections are kept per endpoint and driven by the request that uses
//! them, in its own task (no task switch or channel hop per request); one
//! is spawned only while a large body streams or after an upgrade, and
//! then not reused. A PROXY header names one client, so a connection that
//! carries one is never kept: with `proxy_protocol = "v1"|"v2"` every
//! request gets its own upstream connection.
//!
//! Stale keep-alive connections (the upstream closed them while idle, as
//! uvicorn, Node and gunicorn do after a few seconds) are the normal case,
//! not an error:
//! - an idle connection is polled once before reuse (no syscall unless the
//!   socket became readable), and dropped if the upstream closed it or it
//!   is older than `idle_timeout` (default 4 s, below the usual upstream
//!   keep-alives); each worker also closes its connections idle past
//!   `idle_timeout` every second ([`Pool::prune_idle`]), so those a burst
//!   opened do not stay open (and in memory) until the next request;
//! - a request the connection never sent (hyper hands it back) is sent on
//!   a fresh connection; one that was sent on a *reused* connection and
//!   failed before any response is sent again once when that is safe
//!   (idempotent method, no body), like nginx `proxy_next_upstream error`,
//!   if the connection had idled for [`REUSE_UNRETRYABLE_WITHIN`] or more
//!   (reused sooner, it is well inside every upstream keep-alive, as every
//!   other request already assumes; the copy of the head kept for the
//!   resend is made only then);
//! - a connection that ends while a request waits is dropped at once, so
//!   the request fails (and may be retried) instead of waiting for
//!   `response_timeout`.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, Response};
use http_body::Body as _;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use realip_core::proxy_protocol::{encode_v1, V2Builder};
use rustls_pki_types::ServerName;
use tokio::io::AsyncWriteExt as _;
use tokio::net::TcpStream;

use crate::body::Sent;
use crate::config::{Balance, ProxyProtocolOut, UpstreamConfig};
use crate::metrics::UpstreamKind;

/// Request and response bodies inside the proxy.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
/// A streaming body of either side.
pub type Body = UnsyncBoxBody<Bytes, BoxError>;

/// One backend.
#[derive(Debug)]
pub struct Endpoint {
    /// Its address.
    pub addr: SocketAddr,
    in_flight: AtomicUsize,
    fails: AtomicU32,
    /// Milliseconds since the pool's epoch until which it rests.
    ejected_until: AtomicU64,
    /// Idle keep-alive connections, most recent last: one list per worker
    /// ([`crate::workers`]), since a connection is served by the runtime
    /// that opened it.
    idle: Box<[Mutex<std::collections::VecDeque<Idle>>]>,
}

impl Endpoint {
    fn new(addr: SocketAddr) -> Endpoint {
        Endpoint {
            addr,
            in_flight: AtomicUsize::new(0),
            fails: AtomicU32::new(0),
            ejected_until: AtomicU64::new(0),
            idle: (0..crate::workers::count()).map(|_| Mutex::default()).collect(),
        }
    }

    /// The calling worker's idle connections.
    fn idle(&self) -> std::sync::MutexGuard<'_, std::collections::VecDeque<Idle>> {
        self.idle[crate::workers::shard(self.idle.len())].lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// A keep-alive upstream connection that nobody is using. Its connection
/// future is not spawned: whoever checks it out drives it, in the request's
/// own task, so a proxied request costs no task switch and no channel hop.
struct Idle {
    sender: http1::SendRequest<Body>,
    conn: UpConn,
    since: Instant,
}

/// hyper's side of an upstream connection, boxed once when it is made:
/// it moves between the pool and the request futures that drive it as a
/// pointer (unboxed, each of those futures would hold copies of it, and
/// every request would pay for copying them: see docs/benchmarks.md).
type UpConn = Box<http1::Connection<TokioIo<UpStream>, Body>>;

impl std::fmt::Debug for Idle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Idle")
    }
}

/// The rustls connector of a TLS upstream.
#[derive(Clone)]
pub struct UpstreamTlsConnector(tokio_rustls::TlsConnector);

impl std::fmt::Debug for UpstreamTlsConnector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("UpstreamTlsConnector")
    }
}

/// An upstream connection: plain TCP or TLS over it.
#[derive(Debug)]
pub enum UpStream {
    /// Plain.
    Plain(TcpStream),
    /// TLS (`tls = "verify"` or `"insecure"`).
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

impl tokio::io::AsyncRead for UpStream {
    fn poll_read(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        match self.get_mut() {
            UpStream::Plain(s) => std::pin::Pin::new(s).poll_read(cx, buf),
            UpStream::Tls(s) => std::pin::Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl tokio::io::AsyncWrite for UpStream {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        match self.get_mut() {
            UpStream::Plain(s) => std::pin::Pin::new(s).poll_write(cx, buf),
            UpStream::Tls(s) => std::pin::Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> std::task::Poll<std::io::Result<usize>> {
        match self.get_mut() {
            UpStream::Plain(s) => std::pin::Pin::new(s).poll_write_vectored(cx, bufs),
            UpStream::Tls(s) => std::pin::Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            UpStream::Plain(s) => s.is_write_vectored(),
            UpStream::Tls(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        match self.get_mut() {
            UpStream::Plain(s) => std::pin::Pin::new(s).poll_flush(cx),
            UpStream::Tls(s) => std::pin::Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        match self.get_mut() {
            UpStream::Plain(s) => std::pin::Pin::new(s).poll_shutdown(cx),
            UpStream::Tls(s) => std::pin::Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// Idle connections kept per endpoint and worker.
pub const MAX_IDLE_PER_ENDPOINT: usize = 256;

/// A request that cannot be sent again (a body, or a method that is not
/// idempotent) reuses only a connection idle for less than this; older
/// ones may be closing on the upstream's side as the request leaves.
pub const REUSE_UNRETRYABLE_WITHIN: Duration = Duration::from_millis(250);

/// Default `idle_timeout` of pooled upstream connections: below the 5 s
/// keep-alive of uvicorn and Node (nginx: 75 s), so we close first.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(4);

/// Why no connection to an endpoint could be made (safe to retry on
/// another endpoint: nothing was sent).
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// Occurs when the TCP connect fails (refused, unreachable, reset).
    #[error("connect to {0}: {1}")]
    Io(SocketAddr, #[source] std::io::Error),
    /// Occurs when the TCP connect or TLS handshake takes longer than
    /// `connect_timeout`.
    #[error("connect to {0}: no connection within {1:?}")]
    TimedOut(SocketAddr, Duration),
    /// Occurs when the TLS handshake fails (certificate, protocol).
    #[error("TLS with {0}: {1}")]
    Tls(SocketAddr, #[source] std::io::Error),
    /// Occurs when hyper cannot start HTTP/1.1 on the connection.
    #[error("HTTP/1.1 with {0}: {1}")]
    Handshake(SocketAddr, #[source] hyper::Error),
}

/// Why an upstream request failed; each maps to one response status and
/// one metric `kind`.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    /// Occurs when the upstream has no endpoint (a Kubernetes Service
    /// with none serving): 503.
    #[error("no endpoint available")]
    NoEndpoint,
    /// Occurs when no connection could be made: 502.
    #[error(transparent)]
    Connect(#[from] ConnectError),
    /// Occurs when no response head arrives within `response_timeout`
    /// of the request body's end: 504.
    #[error("no response head within {0:?}")]
    Timeout(Duration),
    /// Occurs when the request body is over `max_body_bytes`: 413.
    #[error("request body larger than {0} bytes")]
    BodyTooLarge(u64),
    /// Occurs when the client stops sending its body: 408.
    #[error("no request body data for {0:?}")]
    BodyTimeout(Duration),
    /// Occurs when the client's connection closes while its body is sent
    /// (logged as 499, never sent).
    #[error("client went away while sending the body")]
    ClientGone,
    /// Occurs when the client's body is malformed (bad chunk framing): 400.
    #[error("malformed request body")]
    BadBody,
    /// Occurs when the exchange fails after the request was (partly) sent,
    /// or the upstream answered something that is not HTTP/1.1: 502.
    #[error("{}", error_chain(.0))]
    Failed(#[source] hyper::Error),
    /// Occurs when the upstream closes a new connection before taking
    /// the request: 502.
    #[error("the upstream closed the connection before taking the request")]
    Closed,
    /// Occurs when an upgraded request is answered with a 101 that does
    /// not complete a valid WebSocket handshake: 502.
    #[error("upgrade refused: {0}")]
    BadUpgrade(&'static str),
}

impl UpstreamError {
    /// The `kind` label of `realip_upstream_errors_total`.
    pub fn kind(&self) -> UpstreamKind {
        match self {
            UpstreamError::NoEndpoint => UpstreamKind::NoEndpoint,
            UpstreamError::Connect(_) => UpstreamKind::Connect,
            UpstreamError::Timeout(_) => UpstreamKind::Timeout,
            UpstreamError::BodyTooLarge(_) => UpstreamKind::BodyTooLarge,
            UpstreamError::BodyTimeout(_) => UpstreamKind::BodyTimeout,
            UpstreamError::ClientGone => UpstreamKind::ClientGone,
            UpstreamError::BadBody => UpstreamKind::BadBody,
            UpstreamError::Failed(_) => UpstreamKind::Failed,
            UpstreamError::Closed => UpstreamKind::Closed,
            UpstreamError::BadUpgrade(_) => UpstreamKind::BadUpgrade,
        }
    }

    /// Sorts a hyper error: a request-body failure (found by downcast in
    /// its sources) is the client's, anything else the upstream's.
    fn from_hyper(e: hyper::Error) -> UpstreamError {
        match crate::body::BodyError::find(&e) {
            Some(crate::body::BodyError::TooLarge(n)) => UpstreamError::BodyTooLarge(*n),
            Some(crate::body::BodyError::Timeout(d)) => UpstreamError::BodyTimeout(*d),
            Some(crate::body::BodyError::Client(c)) if client_went_away(c.as_ref()) => UpstreamError::ClientGone,
            Some(crate::body::BodyError::Client(_)) => UpstreamError::BadBody,
            None => UpstreamError::Failed(e),
        }
    }
}

/// A pool of endpoints with its client.
#[derive(Debug)]
pub struct Pool {
    /// Name routes refer to.
    pub name: String,
    /// The backends.
    pub endpoints: Vec<Endpoint>,
    next: AtomicUsize,
    balance: Balance,
    /// PROXY protocol towards the backends.
    pub proxy_out: ProxyProtocolOut,
    connect_timeout: Duration,
    /// TLS towards the backends, with the name to present (None: the IP).
    tls: Option<(UpstreamTlsConnector, Option<ServerName<'static>>)>,
    response_timeout: Duration,
    idle_timeout: Duration,
    max_fails: u32,
    fail_timeout: Duration,
    epoch: Instant,
    /// What it was built from (a reload keeps the pool if this is unchanged).
    config: UpstreamConfig,
    /// Counters, resolved once ([`crate::metrics::Metrics::bind`]).
    pub(crate) metrics: std::sync::OnceLock<std::sync::Arc<crate::metrics::UpstreamMetrics>>,
}

/// Addresses for an outgoing PROXY header.
#[derive(Clone, Copy, Debug)]
pub struct ProxyAddrs {
    /// The client (source).
    pub src: SocketAddr,
    /// Where the client connected to (our listener).
    pub dst: SocketAddr,
}

/// The PROXY header bytes for `addrs`; v1 and v2 need one family, so a
/// mixed pair is sent as v4-mapped-free `UNKNOWN` / AF_UNSPEC.
pub fn proxy_header(version: ProxyProtocolOut, addrs: ProxyAddrs) -> Vec<u8> {
    let same_family = addrs.src.is_ipv4() == addrs.dst.is_ipv4();
    let pair = same_family.then_some((addrs.src, addrs.dst));
    let mut out = Vec::with_capacity(64);
    match version {
        ProxyProtocolOut::Off => {}
        ProxyProtocolOut::V1 => {
            let _ = encode_v1(pair, &mut out);
        }
        ProxyProtocolOut::V2 => {
            let b = match pair {
                Some((s, d)) => V2Builder::proxy(s, d),
                None => V2Builder::unspec(),
            };
            let _ = b.encode_into(&mut out);
        }
    }
    out
}

impl Pool {
    /// The configuration it was built from.
    pub fn config(&self) -> &UpstreamConfig {
        &self.config
    }

    /// How long a connect to one endpoint may take.
    pub fn connect_timeout(&self) -> Duration {
        self.connect_timeout
    }

    /// Builds a pool from validated config.
    pub fn new(cfg: &UpstreamConfig) -> Pool {
        let connect_timeout = cfg.connect_timeout.map_or(Duration::from_secs(2), |d| d.0);
        Pool {
            name: cfg.name.clone(),
            endpoints: cfg.endpoints.iter().filter_map(|e| e.parse().ok()).map(Endpoint::new).collect(),
            next: AtomicUsize::new(0),
            balance: cfg.balance,
            proxy_out: cfg.proxy_protocol,
            connect_timeout,
            tls: crate::tls::client(cfg.tls).map(|c| {
                (
                    UpstreamTlsConnector(c),
                    cfg.tls_server_name.as_deref().and_then(|n| ServerName::try_from(n.to_owned()).ok()),
                )
            }),
            response_timeout: cfg.response_timeout.map_or(Duration::from_secs(60), |d| d.0),
            idle_timeout: cfg.idle_timeout.map_or(DEFAULT_IDLE_TIMEOUT, |d| d.0),
            max_fails: cfg.max_fails.unwrap_or(3).max(1),
            fail_timeout: cfg.fail_timeout.map_or(Duration::from_secs(10), |d| d.0),
            epoch: Instant::now(),
            config: cfg.clone(),
            metrics: std::sync::OnceLock::new(),
        }
    }

    #[cfg(test)]
    pub(crate) fn for_tests(name: &str) -> Pool {
        Pool::new(&UpstreamConfig::plain(name.into(), vec!["127.0.0.1:9".into()]))
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Chooses an endpoint, skipping ejected ones unless all are ejected
    /// (then every endpoint is tried, as nginx does).
    pub fn pick(&self, skip: Option<usize>) -> Option<usize> {
        let n = self.endpoints.len();
        if n == 0 {
            return None;
        }
        let now = self.now_ms();
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        let order = (0..n).map(|i| (start + i) % n).filter(|&i| Some(i) != skip || n == 1);
        let healthy =
            |i: &usize| self.endpoints.get(*i).is_some_and(|e| e.ejected_until.load(Ordering::Relaxed) <= now);
        // The healthy endpoints, or all of them when none is: two passes
        // over the order instead of a list per request.
        let all = !order.clone().any(|i| healthy(&i));
        let mut candidates = order.filter(|i| all || healthy(i));
        match self.balance {
            Balance::RoundRobin => candidates.next(),
            Balance::LeastRequests => candidates
                .min_by_key(|&i| self.endpoints.get(i).map_or(usize::MAX, |e| e.in_flight.load(Ordering::Relaxed))),
        }
    }

    /// Records the outcome of a request to endpoint `i`.
    pub fn report(&self, i: usize, ok: bool) {
        let Some(e) = self.endpoints.get(i) else { return };
        if ok {
            e.fails.store(0, Ordering::Relaxed);
        } else if e.fails.fetch_add(1, Ordering::Relaxed) + 1 >= self.max_fails {
            e.fails.store(0, Ordering::Relaxed);
            let until = self.now_ms() + u64::try_from(self.fail_timeout.as_millis()).unwrap_or(u64::MAX / 2);
            e.ejected_until.store(until, Ordering::Relaxed);
        }
    }

    /// Sends `req` (origin-form URI) to endpoint `i`. Responses of known
    /// length up to [`BUFFER_RESPONSES_UP_TO`] come back whole, so head and
    /// body leave in one write (nginx `proxy_buffering`); others stream.
    /// `sent` fires when the request body has gone out: the response
    /// timeout counts from then.
    pub async fn send(
        &self,
        i: usize,
        mut req: Request<Body>,
        pp: Option<ProxyAddrs>,
        sent: &Sent,
    ) -> Result<Response<Body>, UpstreamError> {
        let Some(ep) = self.endpoints.get(i) else { return Err(UpstreamError::NoEndpoint) };
        // Origin-form: we hold the connection, the Host header names the site.
        if req.uri().scheme().is_some() || req.uri().authority().is_some() {
            let pq = req.uri().path_and_query().cloned();
            *req.uri_mut() = pq.map_or_else(|| http::Uri::from_static("/"), http::Uri::from);
        }
        ep.in_flight.fetch_add(1, Ordering::Relaxed);
        let preface = match (self.proxy_out, pp) {
            (ProxyProtocolOut::Off, _) | (_, None) => Vec::new(),
            (version, Some(addrs)) => proxy_header(version, addrs),
        };
        // The rare paths are boxed: the future of this call is part of every
        // request's, and it is sized by its largest state.
        let result = if req.headers().contains_key(http::header::UPGRADE) {
            // An upgraded connection becomes the tunnel: always a fresh one.
            Box::pin(async {
                match self.connect_http(ep.addr, &preface).await {
                    Ok((sender, conn)) => self.exchange_upgrade(sender, conn, req).await,
                    Err(e) => Err(e.into()),
                }
            })
            .await
        } else if preface.is_empty() {
            self.send_pooled(ep, req, sent).await
        } else {
            // A PROXY header names one client: a fresh connection, never kept.
            Box::pin(async {
                match self.connect_http(ep.addr, &preface).await {
                    Ok((sender, conn)) => {
                        self.exchange(ep, sender, conn, req, false, sent).await.map_err(Fail::into_error)
                    }
                    Err(e) => Err(e.into()),
                }
            })
            .await
        };
        ep.in_flight.fetch_sub(1, Ordering::Relaxed);
        self.report(i, !matches!(result, Err(UpstreamError::Connect(_) | UpstreamError::Timeout(_))));
        result
    }

    /// A raw connection to endpoint `i` (L4 mode), with the pool's TLS
    /// and `preface` written first; counted in flight until dropped, so
    /// least-requests balancing sees L4 connections too.
    pub async fn connect_raw(&self, i: usize, preface: &[u8]) -> Result<InFlight<'_>, UpstreamError> {
        let Some(ep) = self.endpoints.get(i) else { return Err(UpstreamError::NoEndpoint) };
        let stream = self.connect(ep.addr, preface).await;
        self.report(i, stream.is_ok());
        let stream = stream?;
        ep.in_flight.fetch_add(1, Ordering::Relaxed);
        Ok(InFlight { stream, ep })
    }

    /// An idle connection to `ep` that is still usable, if one is kept.
    /// Each candidate is polled once outside the lock: one the upstream
    /// closed (or wrote to unasked) completes, and is dropped.
    /// `max_idle` is shorter than `idle_timeout` for requests that could
    /// not be sent again: the most recent connection is taken only if it
    /// is younger, and otherwise left for a request that can be retried.
    fn checkout(&self, ep: &Endpoint, max_idle: Duration) -> Option<Idle> {
        loop {
            let mut c = {
                let mut idle = ep.idle();
                let age = idle.back()?.since.elapsed();
                if age >= self.idle_timeout {
                    idle.clear(); // the rest are older still
                    return None;
                }
                if age >= max_idle {
                    return None;
                }
                idle.pop_back()?
            };
            if !c.sender.is_closed() && poll_once(&mut c.conn).is_none() && c.sender.is_ready() {
                return Some(c);
            }
        }
    }

    /// Closes the calling worker's idle connections that are older than
    /// `idle_timeout` (they would never be reused: [`Pool::checkout`]
    /// drops them). Without this, the connections a burst opened stay
    /// until the next request to the endpoint. Returns how many were
    /// closed.
    pub fn prune_idle(&self) -> usize {
        let mut closed = 0;
        for ep in &self.endpoints {
            let mut idle = ep.idle();
            while idle.front().is_some_and(|o| o.since.elapsed() >= self.idle_timeout) {
                idle.pop_front();
                closed += 1;
            }
            if idle.is_empty() && idle.capacity() > 0 {
                idle.shrink_to_fit();
            }
        }
        closed
    }

    fn checkin(&self, ep: &Endpoint, c: Idle) {
        let mut idle = ep.idle();
        while idle.front().is_some_and(|o| o.since.elapsed() >= self.idle_timeout) {
            idle.pop_front();
        }
        if idle.len() < MAX_IDLE_PER_ENDPOINT {
            idle.push_back(c);
        }
    }

    /// A new connection to `addr`, with `preface` (a PROXY header, or
    /// nothing) written before anything else, and TLS when configured.
    async fn connect(&self, addr: SocketAddr, preface: &[u8]) -> Result<UpStream, ConnectError> {
        let connect = async {
            let mut s = TcpStream::connect(addr).await?;
            s.set_nodelay(true)?;
            if !preface.is_empty() {
                s.write_all(preface).await?;
            }
            Ok::<_, std::io::Error>(s)
        };
        let stream = match tokio::time::timeout(self.connect_timeout, connect).await {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => return Err(ConnectError::Io(addr, e)),
            Err(_) => return Err(ConnectError::TimedOut(addr, self.connect_timeout)),
        };
        match &self.tls {
            None => Ok(UpStream::Plain(stream)),
            Some((connector, name)) => {
                let name = name.clone().unwrap_or_else(|| ServerName::IpAddress(addr.ip().into()));
                match tokio::time::timeout(self.connect_timeout, connector.0.connect(name, stream)).await {
                    Ok(Ok(s)) => Ok(UpStream::Tls(Box::new(s))),
                    Ok(Err(e)) => Err(ConnectError::Tls(addr, e)),
                    Err(_) => Err(ConnectError::TimedOut(addr, self.connect_timeout)),
                }
            }
        }
    }

    async fn connect_http(
        &self,
        addr: SocketAddr,
        preface: &[u8],
    ) -> Result<(http1::SendRequest<Body>, UpConn), ConnectError> {
        let stream = self.connect(addr, preface).await?;
        let (sender, conn) = http1::Builder::new()
            .handshake(TokioIo::new(stream))
            .await
            .map_err(|e| ConnectError::Handshake(addr, e))?;
        Ok((sender, Box::new(conn)))
    }

    /// An upgrade request (WebSocket): the connection is driven with
    /// upgrades enabled from the start, then spawned to carry the tunnel.
    async fn exchange_upgrade(
        &self,
        mut sender: http1::SendRequest<Body>,
        conn: UpConn,
        req: Request<Body>,
    ) -> Result<Response<Body>, UpstreamError> {
        let mut conn = (*conn).with_upgrades();
        let (resp, conn_done) = {
            let mut send = std::pin::pin!(sender.send_request(req));
            tokio::time::timeout(self.response_timeout, async {
                tokio::select! {
                    biased;
                    r = &mut send => (r, false),
                    // After a 101 the connection future completes (the
                    // socket went to the upgrade); the response is waiting.
                    _ = &mut conn => (send.await, true),
                }
            })
            .await
            .map_err(|_| UpstreamError::Timeout(self.response_timeout))?
        };
        let resp = resp.map_err(UpstreamError::from_hyper)?;
        if !conn_done {
            tokio::spawn(conn);
        }
        Ok(resp.map(box_incoming))
    }

    /// The request on a pooled connection driven in this task (see the
    /// module docs for when a failed request is sent again).
    async fn send_pooled(
        &self,
        ep: &Endpoint,
        req: Request<Body>,
        sent: &Sent,
    ) -> Result<Response<Body>, UpstreamError> {
        // Sent and lost on a reused connection, only an idempotent body-less
        // request may go again. Any other request reuses only a connection
        // idle for less than REUSE_UNRETRYABLE_WITHIN, well inside every
        // upstream keep-alive, so it does not meet a close in flight (what
        // HAProxy's `http-reuse safe` guards against).
        let retryable = idempotent(req.method()) && req.body().is_end_stream();
        let max_idle = if retryable { self.idle_timeout } else { REUSE_UNRETRYABLE_WITHIN };
        let req = match self.checkout(ep, max_idle) {
            None => req,
            Some(idle) => {
                // Sent and lost on a reused connection: only an idempotent
                // body-less request may go again, from this copy. It is
                // made only when the connection idled long enough for the
                // upstream to be closing it: one reused within
                // REUSE_UNRETRYABLE_WITHIN does not meet a keep-alive close
                // (what every other request already relies on), and a busy
                // pool reuses its connections within milliseconds, so the
                // common case copies nothing.
                let stale = idle.since.elapsed() >= REUSE_UNRETRYABLE_WITHIN;
                let copy = (retryable && stale).then(|| head_copy(&req));
                match self.exchange(ep, idle.sender, idle.conn, req, true, sent).await {
                    Ok(r) => return Ok(r),
                    Err(Fail::NotSent(req)) => req,
                    Err(Fail::BeforeResponse(e)) => match copy {
                        Some(req) => req,
                        None => return Err(UpstreamError::from_hyper(e)),
                    },
                    Err(Fail::Other(e)) => return Err(e),
                }
            }
        };
        // A new connection: rare once the pool is warm, and boxed (its
        // state, the connect and TLS handshake, is large).
        let (sender, conn) = Box::pin(self.connect_http(ep.addr, &[])).await?;
        self.exchange(ep, sender, conn, req, true, sent).await.map_err(Fail::into_error)
    }

    async fn exchange(
        &self,
        ep: &Endpoint,
        mut sender: http1::SendRequest<Body>,
        mut conn: UpConn,
        req: Request<Body>,
        keep: bool,
        sent: &Sent,
    ) -> Result<Response<Body>, Fail> {
        enum Got {
            Streaming(Response<Incoming>),
            Whole(http::response::Parts, Bytes),
        }
        let response_timeout = self.response_timeout;
        let (outcome, conn) = {
            let work = async {
                let resp = sender.try_send_request(req).await.map_err(|mut e| match e.take_message() {
                    Some(req) => Fail::NotSent(req),
                    None => Fail::BeforeResponse(e.into_error()),
                })?;
                if !is_small(&resp) {
                    return Ok(Got::Streaming(resp));
                }
                let (parts, body) = resp.into_parts();
                let bytes = body.collect().await.map_err(|e| Fail::Other(UpstreamError::from_hyper(e)))?.to_bytes();
                Ok(Got::Whole(parts, bytes))
            };
            let mut work = std::pin::pin!(work);
            let mut deadline = std::pin::pin!(async {
                sent.wait().await;
                tokio::time::sleep(response_timeout).await;
            });
            let timeout = || Fail::Other(UpstreamError::Timeout(response_timeout));
            let first = tokio::select! {
                biased;
                r = &mut work => Some(r),
                _ = &mut conn => None,
                () = &mut deadline => return Err(timeout()),
            };
            if let Some(r) = first {
                (r, Some(conn))
            } else {
                // The connection ended. Dropping it fails a request it never
                // took (handing it back); a response it read before closing
                // is still delivered.
                drop(conn);
                tokio::select! {
                    biased;
                    r = &mut work => (r, None),
                    () = &mut deadline => return Err(timeout()),
                }
            }
        };
        match outcome? {
            Got::Streaming(resp) => {
                // The body streams: the connection must keep being driven,
                // and is not reused.
                if let Some(conn) = conn {
                    tokio::spawn(conn);
                }
                Ok(resp.map(box_incoming))
            }
            Got::Whole(parts, bytes) => {
                if let (true, Some(conn)) = (keep, conn) {
                    // Kept for the next request as it is: the checkout
                    // polls it once (hyper then finishes this exchange and
                    // asks for the next request) and drops it if it closed
                    // or is not ready. Not polled here: hyper would read
                    // into a new buffer while this response still holds
                    // parts of the current one, and waiting for readiness
                    // would cost a timer and a wake-up per request.
                    self.checkin(ep, Idle { sender, conn, since: Instant::now() });
                }
                Ok(Response::from_parts(parts, Full::new(bytes).map_err(|e| match e {}).boxed_unsync()))
            }
        }
    }
}

/// A raw upstream connection (L4 mode), counted in flight until dropped.
#[derive(Debug)]
pub struct InFlight<'a> {
    /// The connection.
    pub stream: UpStream,
    ep: &'a Endpoint,
}

impl InFlight<'_> {
    /// The endpoint's address.
    pub fn addr(&self) -> SocketAddr {
        self.ep.addr
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.ep.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// How a request on one connection ended, when it did not succeed.
enum Fail {
    /// The connection closed before it took the request: here it is back.
    NotSent(Request<Body>),
    /// The request was (partly) sent, then the connection failed before
    /// any response.
    BeforeResponse(hyper::Error),
    /// Anything else.
    Other(UpstreamError),
}

impl Fail {
    fn into_error(self) -> UpstreamError {
        match self {
            Fail::NotSent(_) => UpstreamError::Closed,
            Fail::BeforeResponse(e) => UpstreamError::from_hyper(e),
            Fail::Other(e) => e,
        }
    }
}

/// True when a client body error means the client's connection ended
/// (reset, closed early), not that it sent something malformed.
fn client_went_away(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur = Some(e);
    while let Some(err) = cur {
        if err.downcast_ref::<hyper::Error>().is_some_and(|h| h.is_incomplete_message() || h.is_canceled()) {
            return true;
        }
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            use std::io::ErrorKind::{BrokenPipe, ConnectionAborted, ConnectionReset, UnexpectedEof};
            if matches!(io.kind(), BrokenPipe | ConnectionAborted | ConnectionReset | UnexpectedEof) {
                return true;
            }
        }
        cur = err.source();
    }
    false
}

/// A copy of a body-less request's head, to send it again.
fn head_copy(req: &Request<Body>) -> Request<Body> {
    let mut r = Request::new(http_body_util::Empty::new().map_err(|e| match e {}).boxed_unsync());
    *r.method_mut() = req.method().clone();
    *r.uri_mut() = req.uri().clone();
    *r.version_mut() = req.version();
    *r.headers_mut() = req.headers().clone();
    r
}

/// Safe to send twice (RFC 9110 §9.2.2).
pub fn idempotent(m: &http::Method) -> bool {
    use http::Method;
    matches!(*m, Method::GET | Method::HEAD | Method::OPTIONS | Method::PUT | Method::DELETE | Method::TRACE)
}

/// Polls `f` once without a task to wake: `Some` if it is already done.
/// For tokio sockets this costs no syscall unless the reactor saw the
/// socket become readable.
fn poll_once<F: std::future::Future + Unpin>(f: &mut F) -> Option<F::Output> {
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    match std::pin::Pin::new(f).poll(&mut cx) {
        std::task::Poll::Ready(v) => Some(v),
        std::task::Poll::Pending => None,
    }
}

/// Responses up to this size are read whole before the head is sent.
pub const BUFFER_RESPONSES_UP_TO: u64 = 64 * 1024;

/// A response of known length up to [`BUFFER_RESPONSES_UP_TO`].
fn is_small(resp: &Response<Incoming>) -> bool {
    resp.body().size_hint().exact().is_some_and(|n| n <= BUFFER_RESPONSES_UP_TO)
}

fn box_incoming(b: Incoming) -> Body {
    b.map_err(|e| -> BoxError { Box::new(e) }).boxed_unsync()
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A connection kept idle past `idle_timeout` is closed by the reaper
    /// (the upstream sees EOF), not kept until the next request.
    #[tokio::test]
    async fn prune_idle_closes_connections_past_their_idle_timeout() {
        use tokio::io::AsyncReadExt as _;
        let up = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut cfg = UpstreamConfig::plain("t".into(), vec![up.local_addr().unwrap().to_string()]);
        cfg.idle_timeout = Some(crate::config::Dur(Duration::from_millis(50)));
        let pool = Pool::new(&cfg);
        let ep = &pool.endpoints[0];
        let (sender, conn) = pool.connect_http(ep.addr, &[]).await.unwrap();
        let (mut server_side, _) = up.accept().await.unwrap();
        pool.checkin(ep, Idle { sender, conn, since: Instant::now() });
        assert_eq!(pool.prune_idle(), 0, "younger than idle_timeout: kept");
        tokio::time::sleep(Duration::from_millis(80)).await;
        assert_eq!(pool.prune_idle(), 1);
        let mut buf = [0u8; 1];
        let n = tokio::time::timeout(Duration::from_secs(5), server_side.read(&mut buf)).await.unwrap().unwrap();
        assert_eq!(n, 0, "the upstream sees the close");
    }

    fn pool(n: usize, balance: Balance) -> Pool {
        let mut p = Pool::for_tests("t");
        p.balance = balance;
        p.endpoints = (0..n).map(|i| Endpoint::new(format!("127.0.0.1:{}", 9000 + i).parse().unwrap())).collect();
        p
    }

    #[test]
    fn round_robin_skips_ejected_endpoints() {
        let p = pool(3, Balance::RoundRobin);
        let picks: Vec<usize> = (0..6).filter_map(|_| p.pick(None)).collect();
        assert_eq!(picks, [0, 1, 2, 0, 1, 2]);
        for _ in 0..3 {
            p.report(1, false);
        }
        let picks: Vec<usize> = (0..4).filter_map(|_| p.pick(None)).collect();
        assert!(!picks.contains(&1), "{picks:?}");
        // All ejected: fail open.
        for i in [0, 2] {
            for _ in 0..3 {
                p.report(i, false);
            }
        }
        assert!(p.pick(None).is_some());
    }

    #[test]
    fn least_requests_prefers_idle_endpoints() {
        let p = pool(3, Balance::LeastRequests);
        p.endpoints[0].in_flight.store(5, Ordering::Relaxed);
        p.endpoints[2].in_flight.store(1, Ordering::Relaxed);
        assert_eq!(p.pick(None), Some(1));
        assert_ne!(p.pick(Some(1)), Some(1));
    }

    #[test]
    fn proxy_headers_out() {
        let a = ProxyAddrs { src: "203.0.113.7:5000".parse().unwrap(), dst: "10.0.0.1:80".parse().unwrap() };
        assert_eq!(proxy_header(ProxyProtocolOut::V1, a), b"PROXY TCP4 203.0.113.7 10.0.0.1 5000 80\r\n");
        let v2 = proxy_header(ProxyProtocolOut::V2, a);
        let (h, _) = realip_core::proxy_protocol::decode_complete(&v2).unwrap();
        assert_eq!(h.source(), Some(a.src));
        let mixed = ProxyAddrs { src: "[2001:db8::1]:1".parse().unwrap(), dst: a.dst };
        assert_eq!(proxy_header(ProxyProtocolOut::V1, mixed), b"PROXY UNKNOWN\r\n");
    }
}
