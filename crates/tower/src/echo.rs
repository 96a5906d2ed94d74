//! `realip echo`: the `/debug/ip` app of the seed guide, done with realip.
//!
//! `GET /debug/ip` (and any path but the two below) answers JSON with the
//! TCP peer (`client_host`), the resolved client (`client_ip`, `source`,
//! `hop`, `warnings`), the raw forwarding headers, the PROXY header and the
//! pod identity from the downward API (`NODE_NAME`, `POD_NAME`, `POD_IP`).
//! `GET /debug/headers` lists the request headers; `GET /healthz` says ok.
//! One JSON line per request (and per rejected connection) goes to stdout.

use std::future::Future;
use std::io::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, Method, Uri};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};
use tokio::net::TcpListener;

use crate::acceptor::{OnReject, ProxyProtocolConfig, ProxyProtocolListener};
use crate::{ConnectionInfo, Error, RealIp, RealIpLayer};

/// Pod identity from the Kubernetes downward API, read once at start.
#[derive(Clone, Debug, Default)]
pub struct PodIdentity {
    /// `NODE_NAME`.
    pub node: Option<String>,
    /// `POD_NAME`.
    pub pod: Option<String>,
    /// `POD_IP`.
    pub pod_ip: Option<String>,
}

impl PodIdentity {
    /// Reads `NODE_NAME`, `POD_NAME` and `POD_IP`.
    pub fn from_env() -> PodIdentity {
        let var = |k| std::env::var(k).ok().filter(|v: &String| !v.is_empty());
        PodIdentity { node: var("NODE_NAME"), pod: var("POD_NAME"), pod_ip: var("POD_IP") }
    }
}

/// Everything the echo app needs.
#[derive(Clone, Debug)]
pub struct EchoConfig {
    /// Where to listen.
    pub listen: SocketAddr,
    /// Resolution policy (the same trust also decides who may send PROXY).
    pub layer: RealIpLayer,
    /// PROXY protocol on the listener.
    pub proxy: ProxyProtocolConfig,
    /// Pod identity to report.
    pub identity: PodIdentity,
}

/// The echo routes, behind `layer`.
pub fn router(layer: RealIpLayer, identity: PodIdentity) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/debug/headers", get(headers))
        .fallback(debug_ip)
        .with_state(Arc::new(identity))
        .layer(layer)
}

fn lines(h: &HeaderMap, name: &str) -> Value {
    let v: Vec<String> = h.get_all(name).iter().map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned()).collect();
    if v.is_empty() {
        Value::Null
    } else {
        Value::String(v.join(", "))
    }
}

fn log_line(v: &Value) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{v}");
}

async fn debug_ip(
    State(id): State<Arc<PodIdentity>>,
    ConnectInfo(conn): ConnectInfo<ConnectionInfo>,
    RealIp(r): RealIp,
    method: Method,
    uri: Uri,
    h: HeaderMap,
) -> Json<Value> {
    let body = json!({
        "client_host": conn.peer.ip().to_string(),
        "client_port": conn.peer.port(),
        "client_ip": r.ip.to_string(),
        "source": r.source,
        "hop": r.hop,
        "warnings": r.warnings,
        "x_forwarded_for": lines(&h, "x-forwarded-for"),
        "x_real_ip": lines(&h, "x-real-ip"),
        "forwarded": lines(&h, "forwarded"),
        "proxy_protocol": conn.proxy.as_deref(),
        "node": id.node,
        "pod": id.pod,
        "pod_ip": id.pod_ip,
        "method": method.as_str(),
        "path": uri.path(),
        "host": lines(&h, "host"),
    });
    log_line(&json!({
        "event": "request", "peer": conn.peer.to_string(), "client_ip": body["client_ip"],
        "source": body["source"], "hop": r.hop, "method": method.as_str(), "path": uri.path(), "status": 200,
    }));
    Json(body)
}

async fn headers(h: HeaderMap) -> Json<Value> {
    let list: Vec<Value> =
        h.iter().map(|(k, v)| json!({"name": k.as_str(), "value": String::from_utf8_lossy(v.as_bytes())})).collect();
    Json(Value::Array(list))
}

/// Serves the echo app until `shutdown` completes. Prints
/// `listening on ADDR` to stderr once bound.
pub async fn serve(cfg: EchoConfig, shutdown: impl Future<Output = ()> + Send + 'static) -> Result<(), Error> {
    let tcp = TcpListener::bind(cfg.listen).await?;
    let on_reject: OnReject = Arc::new(|e: &Error| {
        log_line(&json!({"event": "rejected", "reason": e.to_string()}));
    });
    let listener = ProxyProtocolListener::new(tcp, cfg.proxy, on_reject)?;
    eprintln!("listening on {}", listener.local_addr());
    let app = router(cfg.layer, cfg.identity).into_make_service_with_connect_info::<ConnectionInfo>();
    axum::serve(listener, app).with_graceful_shutdown(shutdown).await?;
    Ok(())
}
