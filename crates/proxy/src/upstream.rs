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

use crate::config::{Balance, ProxyProtocolOut, UpstreamConfig};

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
    /// Idle keep-alive connections, most recent last.
    idle: Mutex<Vec<Idle>>,
}

/// A keep-alive upstream connection that nobody is using. Its connection
/// future is not spawned: whoever checks it out drives it, in the request's
/// own task, so a proxied request costs no task switch and no channel hop.
struct Idle {
    sender: http1::SendRequest<Body>,
    conn: http1::Connection<TokioIo<UpStream>, Body>,
    since: Instant,
}

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

/// Idle connections kept per endpoint.
pub const MAX_IDLE_PER_ENDPOINT: usize = 256;

/// Why an upstream request failed.
#[derive(Debug)]
pub enum UpstreamError {
    /// No connection could be made (safe to retry elsewhere).
    Connect(String),
    /// No response head within the response timeout.
    Timeout,
    /// The connection broke after the request was sent.
    Failed(String),
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
            endpoints: cfg
                .endpoints
                .iter()
                .filter_map(|e| e.parse().ok())
                .map(|addr| Endpoint {
                    addr,
                    in_flight: AtomicUsize::new(0),
                    fails: AtomicU32::new(0),
                    ejected_until: AtomicU64::new(0),
                    idle: Mutex::new(Vec::new()),
                })
                .collect(),
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
            idle_timeout: cfg.idle_timeout.map_or(Duration::from_secs(90), |d| d.0),
            max_fails: cfg.max_fails.unwrap_or(3).max(1),
            fail_timeout: cfg.fail_timeout.map_or(Duration::from_secs(10), |d| d.0),
            epoch: Instant::now(),
            config: cfg.clone(),
        }
    }

    #[cfg(test)]
    pub(crate) fn for_tests(name: &str) -> Pool {
        Pool::new(&UpstreamConfig {
            name: name.into(),
            endpoints: vec!["127.0.0.1:9".into()],
            proxy_protocol: ProxyProtocolOut::Off,
            balance: Balance::RoundRobin,
            connect_timeout: None,
            response_timeout: None,
            idle_timeout: None,
            max_fails: None,
            fail_timeout: None,
            tls: crate::config::UpstreamTls::Off,
            tls_server_name: None,
            from_kubernetes: false,
        })
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
        let healthy: Vec<usize> = order
            .clone()
            .filter(|&i| self.endpoints.get(i).is_some_and(|e| e.ejected_until.load(Ordering::Relaxed) <= now))
            .collect();
        let candidates = if healthy.is_empty() { order.collect() } else { healthy };
        match self.balance {
            Balance::RoundRobin => candidates.first().copied(),
            Balance::LeastRequests => candidates
                .iter()
                .copied()
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
    pub async fn send(
        &self,
        i: usize,
        mut req: Request<Body>,
        pp: Option<ProxyAddrs>,
    ) -> Result<Response<Body>, UpstreamError> {
        let Some(ep) = self.endpoints.get(i) else { return Err(UpstreamError::Connect("no endpoint".into())) };
        // Origin-form: we hold the connection, the Host header names the site.
        let pq = req.uri().path_and_query().map_or("/", |p| p.as_str()).to_owned();
        *req.uri_mut() = pq.parse().map_err(|e| UpstreamError::Failed(format!("{e}")))?;
        ep.in_flight.fetch_add(1, Ordering::Relaxed);
        let preface = match (self.proxy_out, pp) {
            (ProxyProtocolOut::Off, _) | (_, None) => Vec::new(),
            (version, Some(addrs)) => proxy_header(version, addrs),
        };
        let result = if req.headers().contains_key(http::header::UPGRADE) {
            // An upgraded connection becomes the tunnel: always a fresh one.
            match self.connect(ep.addr, &preface).await {
                Ok((sender, conn)) => self.exchange_upgrade(sender, conn, req).await,
                Err(e) => Err(e),
            }
        } else if preface.is_empty() {
            self.send_same_task(ep, req).await
        } else {
            // A PROXY header names one client: a fresh connection, never kept.
            match self.connect(ep.addr, &preface).await {
                Ok((sender, conn)) => self.exchange(ep, sender, conn, req, false).await.map_err(Exchange::into_error),
                Err(e) => Err(e),
            }
        };
        ep.in_flight.fetch_sub(1, Ordering::Relaxed);
        self.report(i, !matches!(result, Err(UpstreamError::Connect(_) | UpstreamError::Timeout)));
        result
    }

    fn checkout(&self, ep: &Endpoint) -> Option<Idle> {
        let mut idle = ep.idle.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        while let Some(c) = idle.pop() {
            if c.since.elapsed() < self.idle_timeout && !c.sender.is_closed() {
                return Some(c);
            }
        }
        None
    }

    fn checkin(ep: &Endpoint, c: Idle) {
        let mut idle = ep.idle.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if idle.len() < MAX_IDLE_PER_ENDPOINT {
            idle.push(c);
        }
    }

    /// A new connection to `addr`, with `preface` (a PROXY header, or
    /// nothing) written before HTTP starts.
    async fn connect(
        &self,
        addr: SocketAddr,
        preface: &[u8],
    ) -> Result<(http1::SendRequest<Body>, http1::Connection<TokioIo<UpStream>, Body>), UpstreamError> {
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
            Ok(Err(e)) => return Err(UpstreamError::Connect(format!("{addr}: {e}"))),
            Err(_) => return Err(UpstreamError::Connect(format!("connect to {addr} timed out"))),
        };
        let stream = match &self.tls {
            None => UpStream::Plain(stream),
            Some((connector, name)) => {
                let name = name.clone().unwrap_or_else(|| ServerName::IpAddress(addr.ip().into()));
                match tokio::time::timeout(self.connect_timeout, connector.0.connect(name, stream)).await {
                    Ok(Ok(s)) => UpStream::Tls(Box::new(s)),
                    Ok(Err(e)) => return Err(UpstreamError::Connect(format!("{addr}: TLS: {e}"))),
                    Err(_) => return Err(UpstreamError::Connect(format!("TLS handshake with {addr} timed out"))),
                }
            }
        };
        http1::Builder::new().handshake(TokioIo::new(stream)).await.map_err(|e| UpstreamError::Connect(e.to_string()))
    }

    /// An upgrade request (WebSocket): the connection is driven with
    /// upgrades enabled from the start, then spawned to carry the tunnel.
    async fn exchange_upgrade(
        &self,
        mut sender: http1::SendRequest<Body>,
        conn: http1::Connection<TokioIo<UpStream>, Body>,
        req: Request<Body>,
    ) -> Result<Response<Body>, UpstreamError> {
        let mut conn = conn.with_upgrades();
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
            .map_err(|_| UpstreamError::Timeout)?
        };
        let resp = resp.map_err(|e| UpstreamError::Failed(error_chain(&e)))?;
        if !conn_done {
            tokio::spawn(conn);
        }
        Ok(resp.map(box_incoming))
    }

    /// The request on a pooled connection driven in this task. A reused
    /// connection that turns out closed is replaced by a fresh one when the
    /// request can be sent again (no body).
    async fn send_same_task(&self, ep: &Endpoint, req: Request<Body>) -> Result<Response<Body>, UpstreamError> {
        if let Some(idle) = self.checkout(ep) {
            // Only a reused connection can turn out stale: keep a copy of a
            // body-less request to send again on a fresh one.
            let retry = req.body().is_end_stream().then(|| {
                let mut r = Request::new(http_body_util::Empty::new().map_err(|e| match e {}).boxed_unsync());
                *r.method_mut() = req.method().clone();
                *r.uri_mut() = req.uri().clone();
                *r.version_mut() = req.version();
                *r.headers_mut() = req.headers().clone();
                r
            });
            match self.exchange(ep, idle.sender, idle.conn, req, true).await {
                Err(Exchange::Stale) => {}
                Err(Exchange::Failed(e)) => return Err(e),
                Ok(r) => return Ok(r),
            }
            let Some(req) = retry else { return Err(UpstreamError::Failed("pooled connection closed".into())) };
            let (sender, conn) = self.connect(ep.addr, &[]).await?;
            return self.exchange(ep, sender, conn, req, true).await.map_err(Exchange::into_error);
        }
        let (sender, conn) = self.connect(ep.addr, &[]).await?;
        self.exchange(ep, sender, conn, req, true).await.map_err(Exchange::into_error)
    }

    async fn exchange(
        &self,
        ep: &Endpoint,
        mut sender: http1::SendRequest<Body>,
        mut conn: http1::Connection<TokioIo<UpStream>, Body>,
        req: Request<Body>,
        keep: bool,
    ) -> Result<Response<Body>, Exchange> {
        enum Got {
            Streaming(Response<Incoming>),
            Whole(http::response::Parts, Bytes),
        }
        let outcome = {
            let work = async {
                let resp = sender.send_request(req).await.map_err(|e| (true, e))?;
                if !is_small(&resp) {
                    return Ok(Got::Streaming(resp));
                }
                let (parts, body) = resp.into_parts();
                let bytes = body.collect().await.map_err(|e| (false, e))?.to_bytes();
                Ok(Got::Whole(parts, bytes))
            };
            let mut work = std::pin::pin!(work);
            tokio::time::timeout(self.response_timeout, async {
                let r = tokio::select! {
                    biased;
                    r = &mut work => r,
                    // The connection ended; a response it read first is still
                    // waiting in `work` (servers that close after answering).
                    _ = &mut conn => work.await,
                };
                r.map_err(|(before_response, e)| {
                    if before_response {
                        Exchange::Stale
                    } else {
                        Exchange::Failed(UpstreamError::Failed(error_chain(&e)))
                    }
                })
            })
            .await
        };
        match outcome {
            Err(_) => Err(Exchange::Failed(UpstreamError::Timeout)),
            Ok(Err(e)) => Err(e),
            Ok(Ok(Got::Streaming(resp))) => {
                // The body streams: the connection must keep being driven,
                // and is not reused.
                tokio::spawn(conn);
                Ok(resp.map(box_incoming))
            }
            Ok(Ok(Got::Whole(parts, bytes))) => {
                // Let the connection settle, then keep it for the next request.
                let ready = tokio::time::timeout(Duration::from_millis(200), async {
                    tokio::select! {
                        biased;
                        r = sender.ready() => r.is_ok(),
                        _ = &mut conn => false,
                    }
                });
                if keep && ready.await.unwrap_or(false) {
                    Self::checkin(ep, Idle { sender, conn, since: Instant::now() });
                }
                Ok(Response::from_parts(parts, Full::new(bytes).map_err(|e| match e {}).boxed_unsync()))
            }
        }
    }
}

/// How a request on one connection ended, when it did not succeed.
enum Exchange {
    /// The connection was closed before a response (a stale pooled one).
    Stale,
    /// Anything else.
    Failed(UpstreamError),
}

impl Exchange {
    fn into_error(self) -> UpstreamError {
        match self {
            Exchange::Stale => UpstreamError::Failed("upstream closed the connection before answering".into()),
            Exchange::Failed(e) => e,
        }
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

    fn pool(n: usize, balance: Balance) -> Pool {
        let mut p = Pool::for_tests("t");
        p.balance = balance;
        p.endpoints = (0..n)
            .map(|i| Endpoint {
                addr: format!("127.0.0.1:{}", 9000 + i).parse().unwrap(),
                in_flight: AtomicUsize::new(0),
                fails: AtomicU32::new(0),
                ejected_until: AtomicU64::new(0),
                idle: Mutex::new(Vec::new()),
            })
            .collect();
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
