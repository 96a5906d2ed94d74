//! One HTTP request through the proxy:
//! resolve the client → route → policy → limits → rewrite headers →
//! upstream (retrying connect failures of body-less idempotent requests on
//! another endpoint) → stream the response back, logging it when its body
//! ends. Upgrades (WebSocket) are spliced after the 101.

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use arc_swap::ArcSwap;
use bytes::Bytes;
use http::header::{HeaderValue, CONNECTION, CONTENT_LENGTH, HOST, RETRY_AFTER, UPGRADE};
use http::{Method, Request, Response, StatusCode, Version};
use http_body::{Body as _, Frame, SizeHint};
use http_body_util::{BodyExt as _, Full, Limited};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use realip_core::{Proxied, Resolution, Source, Warnings};
use realip_tower::ProxyInfo;

use crate::forward::{self, Hop};
use crate::log::{AccessLog, Entry};
use crate::metrics::Metrics;
use crate::policy::Decision;
use crate::snapshot::Snapshot;
use crate::upstream::{Body, BoxError, ProxyAddrs, UpstreamError};

/// State shared by every connection, kept across reloads.
#[derive(Debug)]
pub struct Shared {
    /// The configuration in force.
    pub snapshot: ArcSwap<Snapshot>,
    /// Metrics.
    pub metrics: Metrics,
    /// Access log (replaced on reload).
    pub log: ArcSwap<AccessLog>,
    /// Set on SIGTERM: `/readyz` answers 503.
    pub draining: AtomicBool,
    request_ids: AtomicU64,
    id_seed: u64,
}

impl Shared {
    /// Shared state for a first snapshot.
    pub fn new(snapshot: Snapshot, log: AccessLog) -> Shared {
        use std::hash::{BuildHasher as _, RandomState};
        Shared {
            snapshot: ArcSwap::from_pointee(snapshot),
            metrics: Metrics::default(),
            log: ArcSwap::from_pointee(log),
            draining: AtomicBool::new(false),
            request_ids: AtomicU64::new(0),
            id_seed: RandomState::new().hash_one(std::process::id()),
        }
    }

    fn request_id(&self) -> String {
        let n = self.request_ids.fetch_add(1, Ordering::Relaxed);
        format!("{:016x}{n:08x}", self.id_seed)
    }
}

/// What is known of the connection a request came on.
#[derive(Clone, Debug)]
pub struct ConnCtx {
    /// Listener name.
    pub listener: Arc<str>,
    /// Our address.
    pub local: SocketAddr,
    /// TCP peer.
    pub peer: SocketAddr,
    /// PROXY header accepted by the listener.
    pub proxy: Option<Arc<ProxyInfo>>,
    /// TLS terminated here.
    pub tls: bool,
}

impl ConnCtx {
    /// The hop that connected to us: the PROXY source, else the TCP peer.
    pub fn hop(&self) -> SocketAddr {
        match self.proxy.as_deref().map(|p| (p.proxied, p.src.as_deref())) {
            Some((Proxied::Client(_), Some(src))) => src.parse().unwrap_or(self.peer),
            _ => self.peer,
        }
    }

    /// The PROXY header as resolution should see it: already vetted.
    fn proxied(&self) -> Proxied {
        match self.proxy.as_deref().map(|p| p.proxied) {
            Some(Proxied::Client(ip)) => Proxied::Accepted(ip),
            Some(other) => other,
            None => Proxied::No,
        }
    }
}

fn text(status: StatusCode, msg: &'static str) -> Response<Body> {
    let mut r = Response::new(Full::new(Bytes::from_static(msg.as_bytes())).map_err(|e| match e {}).boxed_unsync());
    *r.status_mut() = status;
    r.headers_mut().insert(http::header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    r
}

fn is_upgrade(req: &Request<Incoming>) -> bool {
    req.version() == Version::HTTP_11
        && req.headers().contains_key(UPGRADE)
        && req
            .headers()
            .get_all(CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .any(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case("upgrade")))
}

fn idempotent(m: &Method) -> bool {
    matches!(*m, Method::GET | Method::HEAD | Method::OPTIONS | Method::PUT | Method::DELETE | Method::TRACE)
}

/// Serves one request; never fails (errors become responses).
#[allow(clippy::too_many_lines)] // the request's path, step by step
pub async fn handle(
    shared: Arc<Shared>,
    conn: ConnCtx,
    mut req: Request<Incoming>,
) -> Result<Response<Body>, Infallible> {
    let start = Instant::now();
    let snap = shared.snapshot.load_full();
    let host = req
        .uri()
        .authority()
        .map(|a| a.as_str().to_owned())
        .or_else(|| req.headers().get(HOST).and_then(|h| h.to_str().ok()).map(str::to_owned))
        .unwrap_or_default();
    let resolution = match snap.resolver.resolve_proxied(conn.peer.ip(), conn.proxied(), req.headers()) {
        Ok(r) => r,
        Err(_) => Resolution { ip: conn.peer.ip(), source: Source::Peer, hop: 0, warnings: Warnings::default() },
    };
    shared.metrics.inc("realip_client_ip_source_total", &[("source", resolution.source.as_str())]);
    let trusted_hop = snap.resolver.trusted.contains(conn.hop().ip());
    let request_id = req
        .headers()
        .get("x-request-id")
        .filter(|_| trusted_hop)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 200)
        .map_or_else(|| shared.request_id(), str::to_owned);
    let mut log = Entry {
        time: std::time::SystemTime::now(),
        listener: Arc::clone(&conn.listener),
        peer: conn.peer,
        client_ip: resolution.ip,
        client_ip_source: resolution.source.as_str(),
        client_ip_hop: resolution.hop,
        proxy: conn.proxy.clone(),
        method: req.method().clone(),
        host: host.clone(),
        path: req.uri().path_and_query().map_or("/", |p| p.as_str()).to_owned(),
        version: req.version(),
        status: 0,
        bytes: 0,
        duration: 0.0,
        route: None,
        upstream: None,
        upstream_status: None,
        upstream_error: None,
        request_id: request_id.clone(),
        referer: req.headers().get("referer").cloned(),
        user_agent: req.headers().get("user-agent").cloned(),
    };

    let Some(route) = snap.routes.find(&host, req.uri().path()) else {
        return Ok(finish(&shared, log, start, text(StatusCode::NOT_FOUND, "no route for this host and path\n")));
    };
    log.route = Some(Arc::clone(&route.name));
    if route.https_redirect && !conn.tls {
        let proto_https = trusted_hop
            && req.headers().get("x-forwarded-proto").is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"https"));
        if !proto_https {
            let target = format!("https://{host}{}", req.uri().path_and_query().map_or("/", |p| p.as_str()));
            if let Ok(location) = HeaderValue::from_str(&target) {
                let mut r = text(StatusCode::PERMANENT_REDIRECT, "redirecting to https\n");
                r.headers_mut().insert(http::header::LOCATION, location);
                return Ok(finish(&shared, log, start, r));
            }
        }
    }
    match route.policy.check(resolution.ip, Instant::now()) {
        Decision::Allow => {}
        Decision::Deny => {
            shared.metrics.inc("realip_denied_total", &[("route", &route.name)]);
            return Ok(finish(&shared, log, start, text(StatusCode::FORBIDDEN, "forbidden\n")));
        }
        Decision::Limited(secs) => {
            shared.metrics.inc("realip_rate_limited_total", &[("route", &route.name)]);
            let mut r = text(StatusCode::TOO_MANY_REQUESTS, "too many requests\n");
            r.headers_mut().insert(RETRY_AFTER, HeaderValue::from(secs));
            return Ok(finish(&shared, log, start, r));
        }
    }
    let declared = req.headers().get(CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > route.max_body_bytes) {
        shared.metrics.inc("realip_rejected_total", &[("reason", "body_too_large")]);
        return Ok(finish(&shared, log, start, text(StatusCode::PAYLOAD_TOO_LARGE, "request body too large\n")));
    }

    let upgrade = is_upgrade(&req);
    let client_upgrade = upgrade.then(|| hyper::upgrade::on(&mut req));
    let hop = conn.hop();
    forward::rewrite(
        req.headers_mut(),
        &Hop {
            hop: hop.ip(),
            hop_trusted: trusted_hop,
            client: resolution.ip,
            proto: if conn.tls { "https" } else { "http" },
            host: (!host.is_empty()).then_some(host.as_str()),
            port: conn.local.port(),
            upgrade,
        },
        &snap.config.forward,
    );
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        req.headers_mut().insert("x-request-id", v);
    }
    let (mut parts, body) = req.into_parts();
    parts.version = Version::HTTP_11;
    let empty_body = body.is_end_stream();
    let limit = usize::try_from(route.max_body_bytes).unwrap_or(usize::MAX);
    let mut body: Option<Body> = Some(Limited::new(body, limit).boxed_unsync());
    let pp = ProxyAddrs { src: client_socket(&conn, resolution.ip), dst: conn.local };

    let pool = &route.upstream;
    let attempts = if empty_body && idempotent(&parts.method) { pool.endpoints.len().max(1) } else { 1 };
    let mut tried = None;
    let mut outcome = Err(UpstreamError::Connect("no endpoint".into()));
    let mut parts = Some(parts);
    for n in 0..attempts {
        let Some(i) = pool.pick(tried) else { break };
        tried = Some(i);
        let b = body.take().unwrap_or_else(|| http_body_util::Empty::new().map_err(|e| match e {}).boxed_unsync());
        // Clone the head only when another attempt may need it.
        let Some(mut head) = (if n + 1 == attempts { parts.take() } else { parts.clone() }) else { break };
        head.extensions = http::Extensions::new();
        let up = Request::from_parts(head, b);
        log.upstream = pool.endpoints.get(i).map(|e| e.addr);
        outcome = pool.send(i, up, Some(pp)).await;
        match &outcome {
            Err(UpstreamError::Connect(_)) => {
                shared.metrics.inc("realip_upstream_errors_total", &[("upstream", &pool.name), ("kind", "connect")]);
            }
            _ => break,
        }
    }
    let resp = match outcome {
        Ok(mut resp) => {
            log.upstream_status = Some(resp.status().as_u16());
            if resp.status() == StatusCode::SWITCHING_PROTOCOLS {
                if let Some(client_side) = client_upgrade {
                    let server_side = hyper::upgrade::on(&mut resp);
                    tokio::spawn(splice(client_side, server_side));
                }
            } else {
                forward::remove_hop_by_hop(resp.headers_mut());
            }
            resp
        }
        Err(UpstreamError::Timeout) => {
            shared.metrics.inc("realip_upstream_errors_total", &[("upstream", &pool.name), ("kind", "timeout")]);
            log.upstream_error = Some("no response head within response_timeout".into());
            text(StatusCode::GATEWAY_TIMEOUT, "upstream timed out\n")
        }
        Err(UpstreamError::Failed(e)) => {
            shared.metrics.inc("realip_upstream_errors_total", &[("upstream", &pool.name), ("kind", "failed")]);
            log.upstream_error = Some(e.clone());
            if e.contains("length limit exceeded") {
                text(StatusCode::PAYLOAD_TOO_LARGE, "request body too large\n")
            } else {
                text(StatusCode::BAD_GATEWAY, "upstream failed\n")
            }
        }
        Err(UpstreamError::Connect(e)) if pool.endpoints.is_empty() => {
            // A Kubernetes Service with no serving endpoint: 503, as nginx does.
            log.upstream_error = Some(e);
            text(StatusCode::SERVICE_UNAVAILABLE, "no endpoints available\n")
        }
        Err(UpstreamError::Connect(e)) => {
            log.upstream_error = Some(e);
            text(StatusCode::BAD_GATEWAY, "no upstream reachable\n")
        }
    };
    Ok(finish(&shared, log, start, resp))
}

/// The client as a socket address for an outgoing PROXY header: its port
/// is known only when the client is the hop that connected to us.
fn client_socket(conn: &ConnCtx, client: IpAddr) -> SocketAddr {
    let hop = conn.hop();
    if hop.ip() == client {
        hop
    } else {
        SocketAddr::new(client, 0)
    }
}

async fn splice(client: hyper::upgrade::OnUpgrade, server: hyper::upgrade::OnUpgrade) {
    if let (Ok(c), Ok(s)) = tokio::join!(client, server) {
        let (mut c, mut s) = (TokioIo::new(c), TokioIo::new(s));
        let _ = tokio::io::copy_bidirectional(&mut c, &mut s).await;
    }
}

/// Counts the status and wraps the body so the access log line is written
/// when the body ends (or is dropped), with the bytes actually sent.
fn finish(shared: &Arc<Shared>, mut log: Entry, start: Instant, resp: Response<Body>) -> Response<Body> {
    log.status = resp.status().as_u16();
    let route = log.route.as_deref().unwrap_or("-");
    let status = resp.status();
    shared
        .metrics
        .inc("realip_requests_total", &[("listener", &log.listener), ("route", route), ("status", status.as_str())]);
    shared.metrics.observe(route, start.elapsed());
    resp.map(|b| LoggedBody { inner: b, bytes: 0, pending: Some((Arc::clone(shared), log, start)) }.boxed_unsync())
}

struct LoggedBody {
    inner: Body,
    bytes: u64,
    pending: Option<(Arc<Shared>, Entry, Instant)>,
}

impl LoggedBody {
    fn write_log(&mut self) {
        if let Some((shared, mut e, start)) = self.pending.take() {
            e.bytes = self.bytes;
            e.duration = start.elapsed().as_secs_f64();
            shared.log.load().write(&e);
        }
    }
}

impl Drop for LoggedBody {
    fn drop(&mut self) {
        self.write_log();
    }
}

impl http_body::Body for LoggedBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        let r = Pin::new(&mut this.inner).poll_frame(cx);
        match &r {
            Poll::Ready(Some(Ok(f))) => {
                if let Some(d) = f.data_ref() {
                    this.bytes += d.len() as u64;
                }
            }
            Poll::Ready(None | Some(Err(_))) => this.write_log(),
            Poll::Pending => {}
        }
        r
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
