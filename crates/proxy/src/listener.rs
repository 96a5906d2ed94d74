//! Accepting connections: connection limit, PROXY header (bounded wait,
//! allowed senders only), TLS, then HTTP/1.1 + HTTP/2 (ALPN or prior
//! knowledge) with hyper, or raw TCP to an upstream in `tcp` mode.
//!
//! Each connection reads the listener's settings from the snapshot in
//! force when it was accepted, so a reload changes PROXY, TLS and limits
//! for new connections without touching established ones.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use realip_tower::acceptor::{read_header, ProxiedStream};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Semaphore};

use crate::config::ListenerMode;
use crate::http::{handle, ConnCtx, Shared};
use crate::log::TcpEntry;
use crate::timeouts::{Guarded, HeadCounter};
use crate::upstream::{proxy_header, ProxyAddrs};

/// Metric label for a PROXY error.
fn reason(e: &realip_tower::Error) -> &'static str {
    match e {
        realip_tower::Error::ProxyHeader { .. } => "malformed",
        realip_tower::Error::ProxyHeaderMissing(_) => "missing",
        realip_tower::Error::UntrustedProxySender(_) => "untrusted_sender",
        realip_tower::Error::ProxyHeaderTimeout(..) => "timeout",
        _ => "io",
    }
}

fn log_event(v: &serde_json::Value) {
    use std::io::Write as _;
    let _ = writeln!(std::io::stderr().lock(), "{v}");
}

/// Accepts on `tcp` until `stop` turns true; connections are watched by
/// `graceful` so shutdown can wait for them.
pub async fn serve(
    name: Arc<str>,
    tcp: TcpListener,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
    graceful: Arc<GracefulShutdown>,
) {
    let local = tcp.local_addr().unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)));
    let max = shared.snapshot.load().config.limits.max_connections;
    let slots = Arc::new(Semaphore::new(max));
    loop {
        let (stream, peer) = tokio::select! {
            _ = stop.changed() => return,
            r = tcp.accept() => match r {
                Ok(c) => c,
                Err(e) => {
                    log_event(&serde_json::json!({"event": "accept_error", "listener": &*name, "error": e.to_string()}));
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        shared.metrics.inc("realip_connections_total", &[("listener", &name)]);
        let Ok(permit) = Arc::clone(&slots).try_acquire_owned() else {
            shared.metrics.inc("realip_rejected_total", &[("reason", "max_connections")]);
            tokio::spawn(refuse(stream));
            continue;
        };
        let (shared, name) = (Arc::clone(&shared), Arc::clone(&name));
        let graceful = Arc::clone(&graceful);
        tokio::spawn(async move {
            shared.metrics.active_connections.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            connection(stream, peer, local, name, Arc::clone(&shared), &graceful).await;
            shared.metrics.active_connections.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
            drop(permit);
        });
    }
}

/// Over the connection limit: a short 503, then close.
async fn refuse(mut s: TcpStream) {
    let _ = s
        .write_all(
            b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 20\r\nconnection: close\r\n\r\ntoo many connections",
        )
        .await;
    let _ = s.shutdown().await;
}

async fn connection(
    mut stream: TcpStream,
    peer: SocketAddr,
    local: SocketAddr,
    name: Arc<str>,
    shared: Arc<Shared>,
    graceful: &GracefulShutdown,
) {
    let snap = shared.snapshot.load_full();
    let Some(rt) = snap.listeners.get(&*name) else { return };
    let (proxy, rest) = match read_header(&mut stream, peer, &rt.proxy).await {
        Ok(r) => r,
        Err(e) => {
            shared.metrics.inc("realip_proxy_protocol_errors_total", &[("listener", &name), ("reason", reason(&e))]);
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
            tcp_forward(io, ctx, &pool, &shared).await;
        }
        return;
    }
    let limits = &snap.config.limits;
    match &rt.tls {
        Some(tls) => {
            let acceptor = tokio_rustls::TlsAcceptor::from(Arc::clone(tls));
            let hs = tokio::time::timeout(limits.header_read_timeout.0, acceptor.accept(io)).await;
            match hs {
                Ok(Ok(tls)) => {
                    let h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2");
                    serve_http(tls, h2, ctx, shared, graceful).await;
                }
                Ok(Err(e)) => log_event(
                    &serde_json::json!({"event": "tls_error", "listener": &*name, "peer": peer.to_string(), "error": e.to_string()}),
                ),
                Err(_) => log_event(
                    &serde_json::json!({"event": "tls_timeout", "listener": &*name, "peer": peer.to_string()}),
                ),
            }
        }
        None => serve_http(io, false, ctx, shared, graceful).await,
    }
}

async fn serve_http<IO>(io: IO, alpn_h2: bool, ctx: ConnCtx, shared: Arc<Shared>, graceful: &GracefulShutdown)
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let limits = shared.snapshot.load().config.limits.clone();
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
    let heads = HeadCounter::default();
    let io = Guarded::new(
        io,
        Arc::clone(&heads),
        limits.header_read_timeout.0,
        limits.idle_timeout.0,
        alpn_h2.then_some(true),
    );
    let svc = service_fn(move |req| {
        heads.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        handle(Arc::clone(&shared), ctx.clone(), req)
    });
    let conn = b.serve_connection_with_upgrades(TokioIo::new(io), svc);
    let conn = graceful.watch(conn.into_owned());
    let _ = conn.await;
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
                shared.metrics.inc("realip_upstream_errors_total", &[("upstream", &pool.name), ("kind", e.kind())]);
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
