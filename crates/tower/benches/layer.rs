//! Cost of RealIpLayer per request: the same axum app with and without it,
//! called in process (no sockets), so the difference is the layer alone.
//! The loopback cost of a whole request is measured in docs/benchmarks.md
//! with wrk for scale.
//!
//! Run: `cargo bench -p realip-tower --bench layer`.

use std::net::SocketAddr;
use std::time::Duration;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::routing::get;
use axum::Router;
use criterion::{criterion_group, criterion_main, Criterion};
use http::Request;
use realip_tower::{ClientIp, RealIpLayer};
use tower::ServiceExt as _;

fn request() -> Request<Body> {
    let mut r = Request::get("/")
        .header("host", "app.example.com")
        .header("x-forwarded-for", "198.51.100.7, 203.0.113.9")
        .body(Body::empty())
        .unwrap();
    r.extensions_mut().insert(ConnectInfo("10.0.0.2:40000".parse::<SocketAddr>().unwrap()));
    r
}

fn layer_overhead(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    let plain = Router::new().route("/", get(|| async { "ok" }));
    let layer = RealIpLayer::builder().trust(["10.0.0.0/8"]).unwrap().sources(["xff"]).unwrap().build();
    let with = Router::new().route("/", get(|ClientIp(_ip): ClientIp| async { "ok" })).layer(layer);
    let mut g = c.benchmark_group("axum_request");
    g.bench_function("without_layer", |b| b.to_async(&rt).iter(|| plain.clone().oneshot(request())));
    g.bench_function("with_realip_layer", |b| b.to_async(&rt).iter(|| with.clone().oneshot(request())));
    g.finish();
}

fn config() -> Criterion {
    Criterion::default().warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(3))
}

criterion_group! { name = benches; config = config(); targets = layer_overhead }
criterion_main!(benches);
