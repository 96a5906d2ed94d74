//! The admin listener: `/metrics` (Prometheus), `/healthz` (alive) and
//! `/readyz` (configuration loaded, in Kubernetes mode the first sync
//! composed, and not draining). Plain HTTP/1.1,
//! never behind PROXY or TLS, so kubelet probes always work.
//!
//! It gets the data listeners' bounds: `limits.header_read_timeout` (408),
//! `limits.idle_timeout`, `max_header_bytes` / `max_headers`, accept
//! back-off ([`crate::accept`]), and its own connection cap
//! ([`ADMIN_MAX_CONNECTIONS`]), so a flood of admin connections can take
//! neither file descriptors nor CPU from the data listeners.

use std::convert::Infallible;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::sync::Semaphore;

use crate::accept::Acceptor;
use crate::http::Shared;
use crate::timeouts::{Activity, Guarded};

/// Concurrent admin connections (probes and scrapers need a handful);
/// beyond it: 503, then close.
pub const ADMIN_MAX_CONNECTIONS: usize = 64;

fn answer(shared: &Shared, req: &Request<Incoming>) -> Response<Full<Bytes>> {
    let (status, body, ctype) = match req.uri().path() {
        "/metrics" => {
            let accept = req.headers().get(http::header::ACCEPT).and_then(|v| v.to_str().ok());
            let (body, ctype) = shared.metrics.render_for(accept);
            (StatusCode::OK, body, ctype)
        }
        "/healthz" => (StatusCode::OK, "ok\n".to_owned(), "text/plain"),
        "/readyz" if shared.draining.load(Ordering::SeqCst) => {
            (StatusCode::SERVICE_UNAVAILABLE, "draining\n".to_owned(), "text/plain")
        }
        "/readyz" if !shared.synced.load(Ordering::SeqCst) => {
            (StatusCode::SERVICE_UNAVAILABLE, "waiting for the first Kubernetes sync\n".to_owned(), "text/plain")
        }
        "/readyz" => (StatusCode::OK, "ready\n".to_owned(), "text/plain"),
        _ => (StatusCode::NOT_FOUND, "not found\n".to_owned(), "text/plain"),
    };
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    if let Ok(v) = http::HeaderValue::from_str(ctype) {
        r.headers_mut().insert(http::header::CONTENT_TYPE, v);
    }
    r
}

/// Serves the admin endpoints for the life of the process (through the
/// drain, so `/readyz` can answer 503).
pub async fn serve(mut acceptor: Acceptor, shared: Arc<Shared>) {
    let slots = Arc::new(Semaphore::new(ADMIN_MAX_CONNECTIONS));
    loop {
        let (stream, _) = acceptor.accept(&shared.metrics).await;
        let Ok(permit) = Arc::clone(&slots).try_acquire_owned() else {
            shared.metrics.rejected.inc(crate::metrics::Rejected::AdminMaxConnections);
            tokio::spawn(crate::listener::refuse(stream));
            continue;
        };
        let limits = shared.snapshot.load().config.limits.clone();
        let shared = Arc::clone(&shared);
        tokio::spawn(async move {
            let activity = Activity::new();
            let io =
                Guarded::new(stream, Arc::clone(&activity), limits.header_read_timeout.0, limits.idle_timeout.0, false);
            let svc = service_fn(move |req| {
                let _request = activity.begin(); // the head arrived: Guarded stops its header timer
                let r = answer(&shared, &req);
                async move { Ok::<_, Infallible>(r) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(None) // Guarded answers 408 instead
                .max_buf_size(limits.max_header_bytes.max(8192))
                .max_headers(limits.max_headers)
                .serve_connection(TokioIo::new(io), svc)
                .await;
            drop(permit);
        });
    }
}
