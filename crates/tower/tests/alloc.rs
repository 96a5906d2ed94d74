//! The layer allocates nothing per request beyond the `RealIp` extension.

use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::ConnectInfo;
use http::Request;
use realip_tower::RealIpLayer;
use std::future::Future as _;

use tower::{Layer as _, Service as _};

fn request() -> Request<Body> {
    let mut r = Request::get("/").header("x-forwarded-for", "198.51.100.7, 203.0.113.9").body(Body::empty()).unwrap();
    r.extensions_mut().insert(ConnectInfo("10.0.0.2:40000".parse::<SocketAddr>().unwrap()));
    r
}

#[test]
fn one_allocation_for_the_extension_and_none_else() {
    let layer = RealIpLayer::builder().trust(["10.0.0.0/8"]).unwrap().build();
    // An inner service that allocates nothing itself.
    let inner =
        tower::service_fn(|_req: Request<Body>| std::future::ready(Ok::<_, ()>(http::Response::new(String::new()))));
    let mut svc = layer.layer(inner);
    let mut req = Some(request());
    let info = allocation_counter::measure(|| {
        let fut = svc.call(req.take().unwrap());
        // The inner future is ready at once; poll it without a runtime.
        let waker = std::task::Waker::noop();
        let mut cx = std::task::Context::from_waker(waker);
        let mut fut = std::pin::pin!(fut);
        let resp = fut.as_mut().poll(&mut cx);
        assert!(matches!(resp, std::task::Poll::Ready(Ok(_))));
    });
    assert_eq!(info.count_total, 1, "{info:?}");
}
