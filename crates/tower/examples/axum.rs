//! An axum app that knows its real clients, behind a proxy or an L4 load
//! balancer. Run it and ask it who you are:
//!
//! ```sh
//! cargo run -p realip-tower --example axum -- 127.0.0.1:3000
//! curl -H 'X-Forwarded-For: 1.2.3.4, 203.0.113.7' localhost:3000/   # -> 203.0.113.7 (from xff, hop 1)
//! curl --haproxy-protocol localhost:3000/                            # PROXY v1 is accepted too
//! ```
//!
//! Here loopback plays the trusted ingress; in a cluster trust the ingress
//! pods' CIDR (for example `10.0.0.0/8`) instead.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::routing::get;
use axum::Router;
use realip_tower::acceptor::OnReject;
use realip_tower::{
    ConnectionInfo, ProxyProtocolConfig, ProxyProtocolListener, ProxyProtocolMode, RealIp, RealIpLayer,
};

async fn whoami(RealIp(r): RealIp) -> String {
    format!("{} (from {}, hop {})\n", r.ip, r.source, r.hop)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr: SocketAddr = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:3000".into()).parse()?;
    let layer = RealIpLayer::builder().trust(["loopback"])?.sources(["proxy-protocol", "xff"])?.build();
    let app = Router::new().route("/", get(whoami)).layer(layer.clone());

    // PROXY headers are optional here and accepted only from trusted peers.
    let proxy = ProxyProtocolConfig {
        mode: ProxyProtocolMode::Optional,
        allowed_from: layer.resolver().trusted.clone(),
        header_timeout: Duration::from_secs(5),
    };
    let on_reject: OnReject = Arc::new(|e| eprintln!("closed: {e}"));
    let listener = ProxyProtocolListener::new(tokio::net::TcpListener::bind(addr).await?, proxy, on_reject)?;
    println!("listening on http://{}", listener.local_addr());
    axum::serve(listener, app.into_make_service_with_connect_info::<ConnectionInfo>()).await?;
    Ok(())
}
