//! Accepting connections: connection limit, PROXY header (bounded wait,
//! allowed senders only), TLS, then HTTP/1.1 + HTTP/2 (ALPN or prior
//! knowledge) with hyper, or raw TCP to an upstream in `tcp` mode.
//!
//! Each connection reads its settings (PROXY, TLS, limits) from the
//! snapshot in force when it was accepted, and only from that one, so a
//! reload changes them for new connections without touching established
//! ones. `limits.max_connections` is one cap shared by every data listener
//! (the semaphore comes from the server).
//!
//! Each HTTP connection is driven here until it ends: the drain signal
//! ([`crate::drain`]) and, on HTTP/2, the idle timer (no open stream for
//! `idle_timeout`) both call hyper's graceful shutdown (HTTP/2: GOAWAY,
//! then close when the streams end); a client that does not let an idle
//! connection close within `header_read_timeout` after the GOAWAY is cut.
//! Open streams are counted by wrapping the service: a request is open
//! from the service call until its response body ends or is dropped.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use http::Request;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use realip_tower::acceptor::{read_header, ProxiedStream};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;

use crate::accept::Acceptor;
use crate::config::{LimitsConfig, ListenerMode};
use crate::drain::Watch;
use crate::http::{handle, ConnCtx, Shared};
use crate::log::TcpEntry;
use crate::timeouts::{Activity, Counted, Guarded};
use crate::upstream::{proxy_header, ProxyAddrs};

/// Metric label for a PROXY error.
fn reason(e: &realip_tower::Error) -> ProxyProtocolReason {
    match e {
        realip_tower::Error::ProxyHeader { .. } => ProxyProtocolReason::Malformed,
        realip_tower::Error::ProxyHeaderMissing(_) => ProxyProtocolReason::Missing,
        realip_tower::Error::UntrustedProxySender(_) => ProxyProtocolReason::UntrustedSender,
        realip_tower::Error::ProxyHeaderTimeout(..) => ProxyProtocolReason::Timeout,
        _ => ProxyProtocolReason::Io,
    }
}

use crate::metrics::{ListenerMetrics, ProxyProtocolReason, Rejected};

use crate::log::event as log_event;

/// Accepts on `acceptor` until the drain starts, counting connections
/// for `worker` ([`crate::workers`]). `slots` is the global connection
/// cap; each connection holds `drain` so the server can wait for it.
pub async fn serve(
    name: Arc<str>,
    mut acceptor: Acceptor,
    shared: Arc<Shared>,
    slots: Arc<Semaphore>,
    mut drain: Watch,
    worker: usize,
) {
    let local = acceptor.local_addr();
    let counters = shared.metrics.listener(&name);
    let accepted = shared.metrics.worker(worker);
    loop {
        let (stream, peer) = tokio::select! {
            () = drain.signaled() => return,
            c = acceptor.accept(&shared.metrics) => c,
        };
        let _ = stream.set_nodelay(true);
        counters.connection();
        accepted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let Ok(permit) = Arc::clone(&slots).try_acquire_owned() else {
            shared.metrics.rejected.inc(Rejected::MaxConnections);
            tokio::spawn(refuse(stream));
            continue;
        };
        let (shared, name, drain, counters) =
            (Arc::clone(&shared), Arc::clone(&name), drain.clone(), Arc::clone(&counters));
        tokio::spawn(async move {
            shared.metrics.active_connections.inc();
            connection(stream, peer, local, name, Arc::clone(&shared), drain, &counters).await;
            // The slot is free by the time the gauge says the connection is gone.
            drop(permit);
            shared.metrics.active_connections.dec();
        });
    }
}

/// Over a connection limit: a short 503, then close.
pub(crate) async fn refuse(mut s: TcpStream) {
    let _ = s
        .write_all(
            b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 20\r\nconnection: close\r\n\r\ntoo many connections",
        )
        .await;
    let _ = s.shutdown().await;
}

/// `f`, unless the drain starts first (then `None`).
async fn unless_draining<F: Future>(drain: &mut Watch, f: F) -> Option<F::Output> {
    tokio::select! {
        r = f => Some(r),
        () = drain.signaled() => None,
    }
}

async fn connection(
    mut stream: TcpStream,
    peer: SocketAddr,
    local: SocketAddr,
    name: Arc<str>,
    shared: Arc<Shared>,
    mut drain: Watch,
    counters: &ListenerMetrics,
) {
    // What the connection needs of the configuration, copied: holding the
    // snapshot for the connection's life would keep every configuration a
    // reload replaced alive as long as some idle keep-alive connection
    // began under it (each request reads the current one anyway).
    let (rt, limits) = {
        let snap = shared.snapshot.load();
        let Some(rt) = snap.listeners.get(&*name) else { return };
        (rt.clone(), snap.config.limits.clone())
    };
    // Before HTTP nothing of the client's was read: a drain closes at once.
    let Some(header) = unless_draining(&mut drain, read_header(&mut stream, peer, &rt.proxy)).await else { return };
    let (proxy, rest) = match header {
        Ok(r) => r,
        Err(e) => {
            counters.proxy_protocol_error(reason(&e));
            log_event(
                &serde_json::json!({"event": "connection_rejected", "listener": &*name, "peer": peer.to_string(), "reason": e.to_string()}),
            );
            return;
        }
    };
    let io = ProxiedStream::new(stream, rest);
    let ctx = ConnCtx::new(Arc::clone(&name), local, peer, proxy.map(Arc::new), rt.tls.is_some());
    if rt.mode == ListenerMode::Tcp {
        if let Some(pool) = rt.upstream.clone() {
            // L4 connections do not hold up the drain (as before: they
            // cannot be closed gracefully); the process exit cuts them.
            drop(drain);
            Box::pin(tcp_forward(io, ctx, &pool, &shared)).await;
        }
        return;
    }
    let limits = &limits;
    // What this task keeps for the connection's whole life is sized by the
    // largest state below: TLS and hyper's state are boxed so that an idle
    // plain HTTP/1.1 connection (parked) stays small.
    match &rt.tls {
        Some(tls) => Box::pin(serve_tls(io, Arc::clone(tls), ctx, shared, limits, drain)).await,
        None => serve_plain(io, ctx, shared, limits, drain).await,
    }
}

/// TLS handshake (bounded by `header_read_timeout`), then HTTP.
async fn serve_tls(
    io: ProxiedStream<TcpStream>,
    tls: Arc<rustls::ServerConfig>,
    ctx: ConnCtx,
    shared: Arc<Shared>,
    limits: &LimitsConfig,
    mut drain: Watch,
) {
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    let hs = tokio::time::timeout(limits.header_read_timeout.0, acceptor.accept(io));
    let Some(hs) = unless_draining(&mut drain, hs).await else { return };
    let (name, peer) = (Arc::clone(&ctx.listener), ctx.peer);
    match hs {
        Ok(Ok(tls)) => {
            let h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2");
            let activity = Activity::new();
            let limits_t = (limits.header_read_timeout.0, limits.idle_timeout.0);
            let io = Guarded::new(tls, Arc::clone(&activity), limits_t.0, limits_t.1, h2);
            serve_http(io, activity, ctx, shared, limits, drain).await;
        }
        Ok(Err(e)) => log_event(
            &serde_json::json!({"event": "tls_error", "listener": &*name, "peer": peer.to_string(), "error": e.to_string()}),
        ),
        Err(_) => log_event(&serde_json::json!({"event": "tls_timeout", "listener": &*name, "peer": peer.to_string()})),
    }
}

/// Plain TCP: HTTP/1.x in bursts, parked while idle ([`crate::park`]);
/// HTTP/2 prior knowledge (or first bytes too few to tell) through hyper's
/// version detection, unparked.
async fn serve_plain(
    io: ProxiedStream<TcpStream>,
    ctx: ConnCtx,
    shared: Arc<Shared>,
    limits: &LimitsConfig,
    mut drain: Watch,
) {
    use crate::park::{burst, wait_for_bytes, Burst, FirstBytes};
    let activity = Activity::new();
    let mut io = Guarded::new(io, Arc::clone(&activity), limits.header_read_timeout.0, limits.idle_timeout.0, false);
    let mut pending = bytes::Bytes::new();
    let mut first = true;
    loop {
        match wait_for_bytes(&io, &pending, &mut drain).await {
            FirstBytes::Closed => return,
            FirstBytes::Other if first => {
                Box::pin(serve_http(io, activity, ctx, shared, limits, drain)).await;
                return;
            }
            FirstBytes::Http1 | FirstBytes::Other => {}
        }
        first = false;
        let served =
            Box::pin(burst(io, pending, Arc::clone(&activity), ctx.clone(), Arc::clone(&shared), limits, &mut drain))
                .await;
        match served {
            Burst::Closed => return,
            Burst::Parked(back, rest) => (io, pending) = (back, rest),
        }
    }
}

/// The per-request service of a connection: counts the request open in
/// `activity` until its response body ends, and boxes the request's future
/// (hyper keeps the slot for it for the connection's life; boxed, the slot
/// is a pointer and the future's memory exists only while it runs).
pub(crate) fn service(
    activity: Arc<Activity>,
    ctx: ConnCtx,
    shared: Arc<Shared>,
) -> impl hyper::service::Service<
    Request<Incoming>,
    Response = http::Response<Counted<crate::http::LoggedBody>>,
    Error = std::convert::Infallible,
    Future = impl Future<Output = Result<http::Response<Counted<crate::http::LoggedBody>>, std::convert::Infallible>> + Send,
> + Clone {
    service_fn(move |req: Request<Incoming>| {
        activity.note_body(http_body::Body::is_end_stream(req.body()));
        let open = activity.begin();
        let response = Box::pin(handle(Arc::clone(&shared), ctx.clone(), req));
        async move { response.await.map(|r| r.map(|body| Counted::new(body, open))) }
    })
}

/// Serves HTTP on `io` with `limits` (from the connection's snapshot)
/// until the connection ends, the drain closes it, or (HTTP/2) it idles.
async fn serve_http<IO>(
    io: Guarded<IO>,
    activity: Arc<Activity>,
    ctx: ConnCtx,
    shared: Arc<Shared>,
    limits: &LimitsConfig,
    mut drain: Watch,
) where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let mut b = auto::Builder::new(TokioExecutor::new());
    b.http1()
        .timer(TokioTimer::new())
        .header_read_timeout(None) // crate::timeouts answers 408 instead of closing
        .max_buf_size(limits.max_header_bytes.max(8192))
        .max_headers(limits.max_headers)
        .keep_alive(true);
    b.http2()
        .timer(TokioTimer::new())
        .max_header_list_size(u32::try_from(limits.max_header_bytes).unwrap_or(u32::MAX))
        .keep_alive_interval(Some(limits.idle_timeout.0))
        .keep_alive_timeout(Duration::from_secs(20));
    let (header_timeout, idle) = (limits.header_read_timeout.0, limits.idle_timeout.0);
    let svc = service(Arc::clone(&activity), ctx, shared);
    let conn = b.serve_connection_with_upgrades(TokioIo::new(io), svc);
    tokio::pin!(conn);
    let timer = tokio::time::sleep(idle);
    tokio::pin!(timer);
    let (mut draining, mut going_away) = (false, false);
    loop {
        tokio::select! {
            _ = conn.as_mut() => return,
            () = drain.signaled(), if !draining => {
                draining = true;
                conn.as_mut().graceful_shutdown();
            }
            () = timer.as_mut() => {
                let now = tokio::time::Instant::now();
                if going_away {
                    if activity.idle_deadline(Duration::ZERO).is_some() {
                        return; // the GOAWAY was not followed by a close in time: cut
                    }
                    timer.as_mut().reset(now + header_timeout); // streams still open
                    continue;
                }
                match activity.idle_deadline(idle).filter(|_| activity.is_h2()) {
                    Some(at) if at <= now => {
                        going_away = true;
                        conn.as_mut().graceful_shutdown();
                        timer.as_mut().reset(now + header_timeout);
                    }
                    Some(at) => timer.as_mut().reset(at),
                    None => timer.as_mut().reset(now + idle),
                }
            }
        }
    }
}

/// L4 mode: bytes both ways to one upstream endpoint, with a PROXY header
/// first when the upstream asks for one (what `send-proxy-v2` does). One
/// access-log line per connection, when it closes.
async fn tcp_forward<IO: AsyncRead + AsyncWrite + Unpin>(
    mut io: IO,
    ctx: ConnCtx,
    pool: &crate::upstream::Pool,
    shared: &Shared,
) {
    let start = Instant::now();
    let mut entry = TcpEntry {
        time: SystemTime::now(),
        listener: Arc::clone(&ctx.listener),
        peer: ctx.peer,
        client: ctx.hop(),
        upstream: None,
        bytes_in: 0,
        bytes_out: 0,
        duration: 0.0,
        error: Some("no upstream endpoint answered".into()),
    };
    let header = proxy_header(pool.proxy_out, ProxyAddrs { src: ctx.hop(), dst: ctx.local });
    let mut tried = None;
    for _ in 0..pool.endpoints.len().max(1) {
        let Some(i) = pool.pick(tried) else { break };
        tried = Some(i);
        // The pool's one connect path: TLS when configured, the PROXY
        // header first, counted in flight for least-requests.
        let mut up = match pool.connect_raw(i, &header).await {
            Ok(up) => up,
            Err(e) => {
                pool.metrics(&shared.metrics).error(e.kind());
                entry.error = Some(e.to_string());
                continue;
            }
        };
        entry.upstream = Some(up.addr());
        entry.error = match tokio::io::copy_bidirectional(&mut io, &mut up.stream).await {
            Ok((a, b)) => {
                (entry.bytes_in, entry.bytes_out) = (a, b);
                None
            }
            Err(e) => Some(e.to_string()),
        };
        break;
    }
    entry.duration = start.elapsed().as_secs_f64();
    shared.log.load().write_tcp(&entry);
}
