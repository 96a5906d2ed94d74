//! The admin listener: `/metrics` (Prometheus), `/healthz` (alive) and
//! `/readyz` (configuration loaded and not draining). Plain HTTP/1.1,
//! never behind PROXY or TLS, so kubelet probes always work.

use std::convert::Infallible;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

use crate::http::Shared;

fn answer(shared: &Shared, req: &Request<Incoming>) -> Response<Full<Bytes>> {
    let (status, body, ctype) = match req.uri().path() {
        "/metrics" => (StatusCode::OK, shared.metrics.render(), "text/plain; version=0.0.4"),
        "/healthz" => (StatusCode::OK, "ok\n".to_owned(), "text/plain"),
        "/readyz" if shared.draining.load(Ordering::SeqCst) => {
            (StatusCode::SERVICE_UNAVAILABLE, "draining\n".to_owned(), "text/plain")
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
pub async fn serve(tcp: TcpListener, shared: Arc<Shared>) {
    loop {
        let Ok((stream, _)) = tcp.accept().await else { continue };
        let shared = Arc::clone(&shared);
        tokio::spawn(async move {
            let svc = service_fn(move |req| {
                let r = answer(&shared, &req);
                async move { Ok::<_, Infallible>(r) }
            });
            let _ = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), svc).await;
        });
    }
}
