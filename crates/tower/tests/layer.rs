//! RealIpLayer and the extractors, in process: what an axum or hyper app
//! sees for honest, forged and misconfigured requests.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::routing::get;
use axum::Router;
use http::{Request, StatusCode};
use http_body_util::BodyExt as _;
use realip_core::proxy_protocol::{decode_complete, V2Builder};
use realip_tower::{ClientIp, ConnectionInfo, ProxyInfo, RealIp, RealIpLayer};
use tower::ServiceExt as _;

fn app(layer: RealIpLayer) -> Router {
    Router::new()
        .route("/ip", get(|ClientIp(ip): ClientIp| async move { ip.to_string() }))
        .route(
            "/full",
            get(|RealIp(r): RealIp| async move {
                format!("{} {} {} {}", r.ip, r.source, r.hop, r.warnings.iter().count())
            }),
        )
        .layer(layer)
}

fn layer() -> RealIpLayer {
    RealIpLayer::builder().trust(["10.0.0.0/8"]).unwrap().sources(["proxy-protocol", "xff"]).unwrap().build()
}

async fn call(app: Router, req: Request<Body>) -> (StatusCode, String) {
    let resp = app.oneshot(req).await.unwrap();
    let status = resp.status();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

fn req(path: &str, peer: &str, headers: &[(&str, &str)]) -> Request<Body> {
    let mut b = Request::get(path);
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    let mut r = b.body(Body::empty()).unwrap();
    r.extensions_mut().insert(ConnectInfo(peer.parse::<SocketAddr>().unwrap()));
    r
}

#[tokio::test]
async fn trusted_peer_chain_is_walked() {
    let (s, body) =
        call(app(layer()), req("/ip", "10.0.0.2:5000", &[("x-forwarded-for", "1.2.3.4, 203.0.113.7")])).await;
    assert_eq!((s, body.as_str()), (StatusCode::OK, "203.0.113.7"));
    let (_, body) = call(app(layer()), req("/full", "10.0.0.2:5000", &[("x-forwarded-for", "203.0.113.7")])).await;
    assert_eq!(body, "203.0.113.7 xff 1 0");
}

#[tokio::test]
async fn forged_headers_from_untrusted_peer_are_ignored() {
    let forged = [("x-forwarded-for", "1.2.3.4"), ("x-real-ip", "1.2.3.4"), ("forwarded", "for=1.2.3.4")];
    let (_, body) = call(app(layer()), req("/full", "198.51.100.9:5000", &forged)).await;
    assert_eq!(body, "198.51.100.9 peer 0 0");
}

#[tokio::test]
async fn reject_untrusted_forwarding_answers_400() {
    let strict = RealIpLayer::builder().trust(["10.0.0.0/8"]).unwrap().reject_untrusted_forwarding(true).build();
    let (s, body) = call(app(strict.clone()), req("/ip", "198.51.100.9:5000", &[("x-forwarded-for", "1.2.3.4")])).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(body.contains("198.51.100.9") && body.contains("not a trusted proxy"), "{body}");
    // Direct access without forwarding headers is still fine.
    let (s, _) = call(app(strict.clone()), req("/ip", "198.51.100.9:5000", &[])).await;
    assert_eq!(s, StatusCode::OK);
    // A trusted proxy may forward.
    let (s, _) = call(app(strict), req("/ip", "10.0.0.2:5000", &[("x-forwarded-for", "1.2.3.4")])).await;
    assert_eq!(s, StatusCode::OK);
}

#[tokio::test]
async fn custom_header_source_resolves_and_counts_as_forwarding() {
    let cf = RealIpLayer::builder()
        .trust(["10.0.0.0/8"])
        .unwrap()
        .sources(["header:CF-Connecting-IP", "xff"])
        .unwrap()
        .reject_untrusted_forwarding(true)
        .build();
    let (s, body) = call(app(cf.clone()), req("/full", "10.0.0.2:5000", &[("cf-connecting-ip", "203.0.113.7")])).await;
    assert_eq!((s, body.as_str()), (StatusCode::OK, "203.0.113.7 header:cf-connecting-ip 1 0"));
    // The same header from an untrusted peer is forwarding it may not do.
    let (s, body) = call(app(cf), req("/ip", "198.51.100.9:5000", &[("cf-connecting-ip", "1.2.3.4")])).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{body}");
    assert!(body.contains("not a trusted proxy"), "{body}");
}

#[tokio::test]
async fn missing_connect_info_is_a_named_500() {
    let r = Request::get("/ip").body(Body::empty()).unwrap();
    let (s, body) = call(app(layer()), r).await;
    assert_eq!(s, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(body.contains("into_make_service_with_connect_info"), "{body}");
}

#[tokio::test]
async fn extractor_without_layer_is_a_named_500() {
    let bare = Router::new().route("/ip", get(|ClientIp(ip): ClientIp| async move { ip.to_string() }));
    let (s, body) = call(bare, req("/ip", "10.0.0.2:1", &[])).await;
    assert_eq!(s, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(body.contains("RealIpLayer is not installed"), "{body}");
}

fn with_proxy(peer: &str, src: &str) -> ConnectionInfo {
    let bytes = V2Builder::proxy(src.parse().unwrap(), "10.0.0.1:443".parse().unwrap()).encode().unwrap();
    let h = decode_complete(&bytes).unwrap().0;
    ConnectionInfo { peer: peer.parse().unwrap(), proxy: Some(Arc::new(ProxyInfo::from(&h))) }
}

#[tokio::test]
async fn proxy_header_from_the_connection_is_used() {
    let mut r = req("/full", "10.0.0.2:5000", &[("x-forwarded-for", "1.2.3.4")]);
    r.extensions_mut().insert(with_proxy("10.0.0.2:5000", "203.0.113.7:40000"));
    let (_, body) = call(app(layer()), r).await;
    assert_eq!(body, "203.0.113.7 proxy-protocol 0 0");

    // ConnectInfo<ConnectionInfo>, as axum::serve with ProxyProtocolListener provides.
    let mut r = Request::get("/full").body(Body::empty()).unwrap();
    r.extensions_mut().insert(ConnectInfo(with_proxy("10.0.0.2:5000", "198.51.100.3:1")));
    let (_, body) = call(app(layer()), r).await;
    assert_eq!(body, "198.51.100.3 proxy-protocol 0 0");

    // From an untrusted sender the PROXY header is refused.
    let mut r = Request::get("/ip").body(Body::empty()).unwrap();
    r.extensions_mut().insert(with_proxy("198.51.100.9:5000", "203.0.113.7:40000"));
    let (s, body) = call(app(layer()), r).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(body.contains("not a trusted sender"), "{body}");
}

/// The layer on a plain hyper service (no axum routing): the resolution is
/// in the request extensions.
#[tokio::test]
async fn works_with_plain_hyper_services() {
    use http_body_util::Full;
    use hyper::body::Bytes;
    let svc = tower::service_fn(|req: Request<Body>| async move {
        let ip = req.extensions().get::<RealIp>().map(|r| r.0.ip.to_string()).unwrap_or_default();
        Ok::<_, std::convert::Infallible>(http::Response::new(Full::new(Bytes::from(ip))))
    });
    let svc = tower::Layer::layer(&layer(), svc);
    let mut r = Request::get("/").header("x-forwarded-for", "203.0.113.9").body(Body::empty()).unwrap();
    r.extensions_mut().insert(ConnectionInfo::new("10.0.0.2:1".parse().unwrap()));
    let resp = svc.oneshot(r).await.unwrap();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(&body[..], b"203.0.113.9");
}

/// The layer in front of a service served by hyper itself over a real
/// socket, the peer taken from the accepted connection.
#[tokio::test]
async fn served_by_hyper_over_loopback() {
    use http_body_util::Full;
    use hyper::body::{Bytes, Incoming};
    use hyper_util::rt::TokioIo;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (stream, peer) = listener.accept().await.unwrap();
        let inner = tower::service_fn(|req: Request<Incoming>| async move {
            let r = req.extensions().get::<RealIp>().map(|r| format!("{} {}", r.0.ip, r.0.source)).unwrap_or_default();
            Ok::<_, std::convert::Infallible>(http::Response::new(Full::new(Bytes::from(r))))
        });
        let svc = tower::Layer::layer(&RealIpLayer::builder().trust(["127.0.0.1"]).unwrap().build(), inner);
        let svc = hyper::service::service_fn(move |mut req: Request<Incoming>| {
            req.extensions_mut().insert(ConnectionInfo::new(peer));
            svc.clone().oneshot(req)
        });
        hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), svc).await.unwrap();
    });
    let mut c = tokio::net::TcpStream::connect(addr).await.unwrap();
    c.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 203.0.113.50\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut resp = String::new();
    c.read_to_string(&mut resp).await.unwrap();
    assert!(resp.ends_with("203.0.113.50 xff"), "{resp}");
}
