//! One HTTP request through the proxy, as a chain of small steps that
//! each either pass the request on or stop it with a typed [`Reject`]:
//!
//! 1. [`resolve`]: who the client is (realip-core), counted by source,
//!    warnings counted and logged (bounded);
//! 2. [`crate::target`]: host and normalized path, the form both routing
//!    and the upstream see (400 on anything ambiguous);
//! 3. route ([`crate::route`]), then [`admit`]: header count, https
//!    redirect, allow/deny and rate limit on the resolved client, declared
//!    body size;
//! 4. [`forward`]: headers rewritten ([`crate::forward`]), the body bounded
//!    in size and time ([`crate::body`]), the upstream called
//!    ([`crate::upstream`]), connect failures retried on another endpoint;
//!    a WebSocket handshake ([`crate::websocket`]) becomes a tunnel;
//! 5. respond: every outcome, success or [`Reject`], is counted and logged
//!    exactly once — also when the client goes away first (status 499).

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use arc_swap::ArcSwap;
use bytes::Bytes;
use http::header::{HeaderValue, CONTENT_LENGTH, HOST, RETRY_AFTER};
use http::{Request, Response, StatusCode, Version};
use http_body::{Frame, SizeHint};
use http_body_util::{BodyExt as _, Full};
use hyper_util::rt::TokioIo;
use realip_core::{unmap, Proxied, Resolution, Resolver, Source, Warnings};
use realip_tower::ProxyInfo;

use crate::body::RequestBody;
use crate::forward::{self, Hop};
use crate::log::{AccessLog, Entry};
use crate::metrics::{Metrics, Rejected, RouteMetrics, WarningKind};
use crate::policy::Decision;
use crate::route::Route;
use crate::snapshot::{Chain, Snapshot};
use crate::target::{Target, TargetError};
use crate::upstream::{Body, BoxError, ProxyAddrs, UpstreamError};

/// `X-Request-Id`, read and written on every request.
static X_REQUEST_ID: http::HeaderName = http::HeaderName::from_static("x-request-id");

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
    /// Whether the routes are in as they will be served: false in
    /// Kubernetes mode until the watcher's first complete composition
    /// (`/readyz` answers 503 until then, as controllers that report ready
    /// only after their first sync).
    pub synced: AtomicBool,
    request_ids: AtomicU64,
    id_seed: u64,
    warned_at: AtomicU64,
}

impl Shared {
    /// Shared state for a first snapshot.
    pub fn new(snapshot: Snapshot, log: AccessLog) -> Shared {
        use std::hash::{BuildHasher as _, RandomState};
        let metrics = Metrics::default();
        metrics.bind(&snapshot);
        Shared {
            snapshot: ArcSwap::from_pointee(snapshot),
            metrics,
            log: ArcSwap::from_pointee(log),
            draining: AtomicBool::new(false),
            synced: AtomicBool::new(true),
            request_ids: AtomicU64::new(0),
            id_seed: RandomState::new().hash_one(std::process::id()),
            warned_at: AtomicU64::new(0),
        }
    }

    fn request_id(&self) -> String {
        use std::fmt::Write as _;
        let n = self.request_ids.fetch_add(1, Ordering::Relaxed);
        // Sized once: 16 + 8 hex digits (more once n passes 2^32).
        let mut id = String::with_capacity(32);
        let _ = write!(id, "{:016x}{n:08x}", self.id_seed);
        id
    }
}

/// What is known of the connection a request came on.
#[derive(Clone, Debug)]
pub struct ConnCtx {
    /// Listener name.
    pub listener: Arc<str>,
    /// Our address.
    pub local: SocketAddr,
    /// TCP peer (IPv4-mapped addresses unmapped).
    pub peer: SocketAddr,
    /// PROXY header accepted by the listener.
    pub proxy: Option<Arc<ProxyInfo>>,
    /// TLS terminated here.
    pub tls: bool,
    /// The hop that connected to us: the PROXY source, else the TCP peer.
    hop: SocketAddr,
}

/// `addr` with an IPv4-mapped IPv6 address written as IPv4.
pub fn unmap_socket(addr: SocketAddr) -> SocketAddr {
    SocketAddr::new(unmap(addr.ip()), addr.port())
}

impl ConnCtx {
    /// A connection from `peer` to `local`, with the PROXY header the
    /// listener accepted, if any.
    pub fn new(
        listener: Arc<str>,
        local: SocketAddr,
        peer: SocketAddr,
        proxy: Option<Arc<ProxyInfo>>,
        tls: bool,
    ) -> ConnCtx {
        let peer = unmap_socket(peer);
        let local = unmap_socket(local);
        let hop = match proxy.as_deref() {
            Some(ProxyInfo { proxied: Proxied::Client(ip), src, .. }) => {
                let port = src.as_ref().and_then(realip_tower::Endpoint::inet).map_or(0, |s| s.port());
                SocketAddr::new(unmap(*ip), port)
            }
            _ => peer,
        };
        ConnCtx { listener, local, peer, proxy, tls, hop }
    }

    /// The hop that connected to us: the PROXY source, else the TCP peer.
    pub fn hop(&self) -> SocketAddr {
        self.hop
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

/// Why a request is answered by the proxy itself.
#[derive(Debug, thiserror::Error)]
pub enum Reject {
    /// Occurs when the host or path is ambiguous or invalid (400; 405 for CONNECT).
    #[error("bad request target: {0}")]
    Target(#[from] TargetError),
    /// Occurs when an h2 request has more than `max_headers` headers (431).
    #[error("too many request headers")]
    TooManyHeaders,
    /// Occurs when no route matches host and path (404).
    #[error("no route for this host and path")]
    NoRoute,
    /// Occurs on plain HTTP to a route with `https_redirect` (308).
    #[error("redirect to https")]
    Redirect(HeaderValue),
    /// Occurs on a Gateway API route with a `RequestRedirect` filter
    /// (its status code and `Location`).
    #[error("redirect")]
    GatewayRedirect(StatusCode, HeaderValue),
    /// Occurs when a Gateway API route's weighted choice falls on a
    /// backend that did not resolve, or it has none (500, as the spec says).
    #[error("no valid backend for this request")]
    NoBackend,
    /// Occurs when the listener's ClientIPPolicy has `failClosed` and no
    /// listed source gave a clean answer (403).
    #[error("client address could not be established")]
    Untrustworthy,
    /// Occurs when allow/deny lists refuse the client (403).
    #[error("client not allowed")]
    Denied,
    /// Occurs when the client is over its rate (429, retry after N s).
    #[error("rate limited")]
    Limited(u64),
    /// Occurs when `Content-Length` is over `max_body_bytes` (413).
    #[error("declared request body too large")]
    BodyTooLarge,
    /// Occurs when the upstream could not answer (502/503/504, or 408/413
    /// when the request body was at fault).
    #[error(transparent)]
    Upstream(#[from] UpstreamError),
}

impl Reject {
    /// The status the client gets.
    pub fn status(&self) -> StatusCode {
        match self {
            Reject::Target(TargetError::Connect) => StatusCode::METHOD_NOT_ALLOWED,
            Reject::Target(_) | Reject::Upstream(UpstreamError::BadBody) => StatusCode::BAD_REQUEST,
            Reject::TooManyHeaders => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            Reject::NoRoute => StatusCode::NOT_FOUND,
            Reject::Redirect(_) => StatusCode::PERMANENT_REDIRECT,
            Reject::GatewayRedirect(status, _) => *status,
            Reject::NoBackend => StatusCode::INTERNAL_SERVER_ERROR,
            Reject::Denied | Reject::Untrustworthy => StatusCode::FORBIDDEN,
            Reject::Limited(_) => StatusCode::TOO_MANY_REQUESTS,
            Reject::BodyTooLarge | Reject::Upstream(UpstreamError::BodyTooLarge(_)) => StatusCode::PAYLOAD_TOO_LARGE,
            Reject::Upstream(UpstreamError::BodyTimeout(_)) => StatusCode::REQUEST_TIMEOUT,
            Reject::Upstream(UpstreamError::ClientGone) => client_closed(),
            Reject::Upstream(UpstreamError::NoEndpoint) => StatusCode::SERVICE_UNAVAILABLE,
            Reject::Upstream(UpstreamError::Timeout(_)) => StatusCode::GATEWAY_TIMEOUT,
            Reject::Upstream(_) => StatusCode::BAD_GATEWAY,
        }
    }

    fn body(&self) -> &'static str {
        match self {
            Reject::Target(TargetError::Connect) => "CONNECT is not supported\n",
            Reject::Target(_) => "bad request\n",
            Reject::TooManyHeaders => "too many request headers\n",
            Reject::NoRoute => "no route for this host and path\n",
            Reject::Redirect(_) => "redirecting to https\n",
            Reject::GatewayRedirect(..) => "redirecting\n",
            Reject::NoBackend => "no valid backend for this request\n",
            Reject::Untrustworthy => "client address could not be established\n",
            Reject::Denied => "forbidden\n",
            Reject::Limited(_) => "too many requests\n",
            Reject::BodyTooLarge | Reject::Upstream(UpstreamError::BodyTooLarge(_)) => "request body too large\n",
            Reject::Upstream(UpstreamError::BodyTimeout(_)) => "request body timed out\n",
            Reject::Upstream(UpstreamError::BadBody) => "malformed request body\n",
            Reject::Upstream(UpstreamError::ClientGone) => "client closed the request\n",
            Reject::Upstream(UpstreamError::NoEndpoint) => "no endpoints available\n",
            Reject::Upstream(UpstreamError::Timeout(_)) => "upstream timed out\n",
            Reject::Upstream(UpstreamError::Connect(_)) => "no upstream reachable\n",
            Reject::Upstream(_) => "upstream failed\n",
        }
    }

    /// Counts the rejection in its metric.
    fn count(&self, metrics: &Metrics, route: Option<&Route>, pool: Option<&crate::upstream::Pool>) {
        let route_metrics = || route.map_or(metrics.no_route(), |r| r.metrics(metrics));
        match self {
            Reject::Target(_) => metrics.rejected.inc(Rejected::BadRequest),
            Reject::TooManyHeaders => metrics.rejected.inc(Rejected::TooManyHeaders),
            Reject::BodyTooLarge => metrics.rejected.inc(Rejected::BodyTooLarge),
            Reject::Denied => route_metrics().denied(),
            Reject::Limited(_) => route_metrics().rate_limited(),
            Reject::NoBackend => metrics.rejected.inc(Rejected::NoBackend),
            Reject::Untrustworthy => metrics.rejected.inc(Rejected::FailClosed),
            Reject::Upstream(e) => {
                // An upstream error always follows a route, hence a pool.
                if let Some(p) = pool.or(route.map(|r| &*r.upstream)) {
                    p.metrics(metrics).error(e.kind());
                }
            }
            Reject::NoRoute | Reject::Redirect(_) | Reject::GatewayRedirect(..) => {}
        }
    }

    /// The response for the client.
    pub fn response(&self) -> Response<Body> {
        let mut r = text(self.status(), self.body());
        match self {
            Reject::Redirect(location) | Reject::GatewayRedirect(_, location) => {
                r.headers_mut().insert(http::header::LOCATION, location.clone());
            }
            Reject::Limited(secs) => {
                r.headers_mut().insert(RETRY_AFTER, HeaderValue::from(*secs));
            }
            Reject::Upstream(UpstreamError::BadUpgrade(_) | UpstreamError::BadBody) | Reject::Target(_) => {
                r.headers_mut().insert(http::header::CONNECTION, HeaderValue::from_static("close"));
            }
            _ => {}
        }
        r
    }
}

/// nginx's "client closed request": logged, never sent.
fn client_closed() -> StatusCode {
    StatusCode::from_u16(499).unwrap_or(StatusCode::BAD_REQUEST)
}

fn text(status: StatusCode, msg: &'static str) -> Response<Body> {
    let mut r = Response::new(Full::new(Bytes::from_static(msg.as_bytes())).map_err(|e| match e {}).boxed_unsync());
    *r.status_mut() = status;
    r.headers_mut().insert(http::header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    r
}

/// Serves one request; never fails (errors become responses).
pub async fn handle<B>(shared: Arc<Shared>, conn: ConnCtx, req: Request<B>) -> Result<Response<LoggedBody>, Infallible>
where
    B: http_body::Body<Data = Bytes> + Send + Unpin + 'static,
    B::Error: Into<BoxError>,
{
    let snap = shared.snapshot.load_full();
    let chain = Arc::clone(snap.chain(&conn.listener));
    let client = resolve(&shared, &chain.resolver, &conn, req.headers());
    let trusted_hop = chain.resolver.trusted.contains(conn.hop().ip());
    let mut pending = Pending::new(&shared, &conn, &client, trusted_hop, &req);
    let mut route = None;
    let mut pool = None;
    let ctx = Ctx { snap: &snap, chain: &chain, metrics: &shared.metrics, conn: &conn, client: &client, trusted_hop };
    let outcome = serve(&ctx, &mut pending, &mut route, &mut pool, req).await;
    let resp = match outcome {
        Ok(resp) => resp,
        Err(reject) => {
            reject.count(&shared.metrics, route, pool.as_deref());
            if let (Reject::Upstream(e), Some(entry)) = (&reject, pending.entry()) {
                entry.upstream_error = Some(e.to_string());
            }
            reject.response()
        }
    };
    Ok(pending.finish(resp))
}

/// What one request is served with: the snapshot, the listener's
/// client-IP chain, and who the client is.
struct Ctx<'a> {
    snap: &'a Snapshot,
    chain: &'a Chain,
    metrics: &'a Metrics,
    conn: &'a ConnCtx,
    client: &'a Resolution,
    trusted_hop: bool,
}

/// Steps 2–4; `route` is set as soon as one matched, `pool` as soon as a
/// backend was chosen (for metrics).
async fn serve<'s, B>(
    ctx: &Ctx<'s>,
    pending: &mut Pending,
    route_out: &mut Option<&'s Route>,
    pool_out: &mut Option<Arc<crate::upstream::Pool>>,
    req: Request<B>,
) -> Result<Response<Body>, Reject>
where
    B: http_body::Body<Data = Bytes> + Send + Unpin + 'static,
    B::Error: Into<BoxError>,
{
    let Ctx { snap, chain, metrics, conn, client, trusted_hop } = *ctx;
    let http_cfg = &snap.config.http;
    let target = crate::target::target(&req, http_cfg.allow_backslash)?;
    pending.set_target(&target);
    if chain.fail_closed && !chain.trustworthy(client) {
        return Err(Reject::Untrustworthy);
    }
    if req.headers().len() > snap.config.limits.max_headers {
        // HTTP/1.1 heads are bounded by hyper; h2 header lists are not counted.
        return Err(Reject::TooManyHeaders);
    }
    let facts = crate::route::Request {
        method: req.method(),
        headers: req.headers(),
        query: target.path_and_query.split_once('?').map(|(_, q)| q),
    };
    let route = snap.routes.find_request(&conn.listener, &target.host, &target.path, &facts).ok_or(Reject::NoRoute)?;
    *route_out = Some(route);
    if let Some(l) = pending.pending.as_mut() {
        l.entry.route = Some(Arc::clone(&route.name));
        l.route = Some(Arc::clone(route.metrics(metrics)));
    }
    admit(route, &req, conn, client.ip, trusted_hop, &target, metrics).await?;
    if let Some(redirect) = &route.filters.redirect {
        let location = redirect.location(&crate::gateway::RequestFacts {
            scheme: if conn.tls { "https" } else { "http" },
            host: &target.host,
            listener_port: route.listener_port(&conn.listener),
            path: &target.path,
            query: facts.query,
            matched: &route.prefix,
        });
        let location = HeaderValue::from_str(&location).map_err(|_| Reject::Target(TargetError::BadHost))?;
        return Err(Reject::GatewayRedirect(redirect.status, location));
    }
    let pool = Arc::clone(route.pick_pool().ok_or(Reject::NoBackend)?);
    *pool_out = Some(Arc::clone(&pool));
    forward(ctx, route, &pool, pending, &target, req).await
}

/// Step 1: the client, from the listener's PROXY header and the headers
/// of trusted hops. A resolution that fails (a PROXY header from an
/// untrusted sender, which the listener already refuses) is the peer,
/// logged; warnings are counted by kind and logged at most once a second.
pub fn resolve(shared: &Shared, resolver: &Resolver, conn: &ConnCtx, headers: &http::HeaderMap) -> Resolution {
    let r = match resolver.resolve_proxied(conn.peer.ip(), conn.proxied(), headers) {
        Ok(r) => r,
        Err(e) => {
            shared.metrics.warnings.inc(WarningKind::ResolutionFailed);
            warn_bounded(shared, conn, &e.to_string());
            Resolution { ip: conn.peer.ip(), source: Source::Peer, hop: 0, warnings: Warnings::default() }
        }
    };
    shared.metrics.client_ip_source(r.source.as_str());
    for w in r.warnings.iter() {
        shared.metrics.warnings.inc(WarningKind::from(&w));
        warn_bounded(shared, conn, &w.to_string());
    }
    r
}

/// One `client_ip_warning` event per second at most: a client that sends
/// garbage on every request cannot flood the log.
fn warn_bounded(shared: &Shared, conn: &ConnCtx, what: &str) {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let last = shared.warned_at.load(Ordering::Relaxed);
    if last != now && shared.warned_at.compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed).is_ok() {
        crate::log::event(&serde_json::json!({
            "event": "client_ip_warning", "listener": &*conn.listener, "peer": conn.peer.to_string(), "warning": what,
        }));
    }
}

/// Step 3: what the route and its policy say before anything is sent
/// (a global rate limit may wait for its store, within its `timeout`).
pub async fn admit<B>(
    route: &Route,
    req: &Request<B>,
    conn: &ConnCtx,
    client: IpAddr,
    trusted_hop: bool,
    target: &Target,
    metrics: &Metrics,
) -> Result<(), Reject> {
    if route.https_redirect && !conn.tls {
        let proto_https = trusted_hop
            && req.headers().get("x-forwarded-proto").is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"https"));
        if !proto_https {
            let location = format!("https://{}{}", target.authority, target.path_and_query);
            if let Ok(v) = HeaderValue::from_str(&location) {
                return Err(Reject::Redirect(v));
            }
        }
    }
    match route.policy.check(client, Instant::now(), metrics).await {
        Decision::Allow => {}
        Decision::Deny => return Err(Reject::Denied),
        Decision::Limited(secs) => return Err(Reject::Limited(secs)),
    }
    let declared = req.headers().get(CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > route.max_body_bytes) {
        return Err(Reject::BodyTooLarge);
    }
    Ok(())
}

/// Step 4: rewrite, send (retrying connect failures of requests that can
/// be sent again on another endpoint), and splice WebSocket tunnels.
async fn forward<B>(
    ctx: &Ctx<'_>,
    route: &Route,
    pool: &crate::upstream::Pool,
    pending: &mut Pending,
    target: &Target,
    mut req: Request<B>,
) -> Result<Response<Body>, Reject>
where
    B: http_body::Body<Data = Bytes> + Send + Unpin + 'static,
    B::Error: Into<BoxError>,
{
    let Ctx { snap, chain, conn, client, trusted_hop, .. } = *ctx;
    let ws_key = crate::websocket::request_key(&req);
    let client_upgrade = ws_key.is_some().then(|| hyper::upgrade::on(&mut req));
    let hop = conn.hop();
    if !snap.config.http.underscores_in_headers {
        forward::drop_underscored(req.headers_mut());
    }
    forward::rewrite(
        req.headers_mut(),
        &Hop {
            hop: hop.ip(),
            hop_trusted: trusted_hop,
            client: client.ip,
            proto: if conn.tls { "https" } else { "http" },
            host: (!target.authority.is_empty()).then_some(target.authority.as_str()),
            port: conn.local.port(),
            upgrade: ws_key.is_some(),
        },
        &chain.forward,
    );
    set_id_and_host(req.headers_mut(), pending, target);
    // Gateway API filters, after the forwarding headers were written:
    // they cannot name those (see crate::gateway), nor feed a chain.
    for ops in &route.filters.request {
        ops.apply(req.headers_mut());
    }
    let rewrite = route.filters.rewrite.as_ref();
    if let Some(host) = rewrite.and_then(|r| r.hostname.clone()) {
        req.headers_mut().insert(HOST, host);
    }
    let upstream_target = match rewrite.and_then(|r| r.path.as_ref()) {
        Some(edit) => {
            let path = crate::gateway::rewrite_path(edit, &route.prefix, &target.path);
            match target.path_and_query.split_once('?') {
                Some((_, q)) => format!("{path}?{q}"),
                None => path,
            }
        }
        None => target.path_and_query.clone(),
    };
    let (mut parts, body) = req.into_parts();
    parts.version = Version::HTTP_11;
    parts.uri = upstream_target.parse().unwrap_or_else(|_| http::Uri::from_static("/"));
    parts.extensions = http::Extensions::new();
    let empty_body = body.is_end_stream();
    // A body-less request (most are) needs no limits, no timer and no end
    // signal: an empty body (a zero-sized box, no allocation), sent already.
    let no_body = crate::body::Sent::finished();
    let (body, sent_signal) = if empty_body {
        (empty(), None)
    } else {
        let (b, s) = RequestBody::new(body, route.max_body_bytes, snap.config.limits.body_timeout.0);
        (b.boxed_unsync(), Some(s))
    };
    let sent = sent_signal.as_deref().unwrap_or(&no_body);
    let mut body: Option<Body> = Some(body);
    let pp = ProxyAddrs { src: client_socket(conn, client.ip), dst: conn.local };

    let attempts =
        if empty_body && crate::upstream::idempotent(&parts.method) { pool.endpoints.len().max(1) } else { 1 };
    let mut tried = None;
    let mut outcome = Err(UpstreamError::NoEndpoint);
    let mut parts = Some(parts);
    for n in 0..attempts {
        let Some(i) = pool.pick(tried) else { break };
        tried = Some(i);
        let b = body.take().unwrap_or_else(empty);
        // Clone the head only when another attempt may need it.
        let Some(head) = (if n + 1 == attempts { parts.take() } else { parts.clone() }) else { break };
        if let Some(e) = pending.entry() {
            e.upstream = pool.endpoints.get(i).map(|e| e.addr);
        }
        outcome = pool.send(i, Request::from_parts(head, b), Some(pp), sent).await;
        match &outcome {
            Err(e @ UpstreamError::Connect(_)) if n + 1 < attempts => {
                pool_error(pending, pool, e);
            }
            _ => break,
        }
    }
    let mut resp = outcome?;
    if let Some(e) = pending.entry() {
        e.upstream_status = Some(resp.status().as_u16());
    }
    if resp.status() == StatusCode::SWITCHING_PROTOCOLS {
        crate::websocket::check_response(ws_key.as_ref(), &resp).map_err(UpstreamError::BadUpgrade)?;
        if let Some(client_side) = client_upgrade {
            let server_side = hyper::upgrade::on(&mut resp);
            if let Some(tunnel) = pending.take_for_tunnel() {
                tokio::spawn(splice(client_side, server_side, tunnel));
            }
        }
    } else {
        // RFC 9112 §6.3: with Transfer-Encoding, a Content-Length is wrong;
        // passing both on would tell the client a length the body lacks.
        if resp.headers().contains_key(http::header::TRANSFER_ENCODING) {
            resp.headers_mut().remove(CONTENT_LENGTH);
        }
        forward::remove_hop_by_hop(resp.headers_mut());
        for ops in &route.filters.response {
            ops.apply(resp.headers_mut());
        }
    }
    Ok(resp)
}

/// An empty body (zero-sized: boxing it allocates nothing).
fn empty() -> Body {
    http_body_util::Empty::new().map_err(|e| match e {}).boxed_unsync()
}

/// `X-Request-Id` and `Host` for the upstream, copied only when they
/// differ from what the client sent.
fn set_id_and_host(h: &mut http::HeaderMap, pending: &mut Pending, target: &Target) {
    if let Some(e) = pending.entry() {
        // A request id passed on from a trusted hop is already the only
        // value: nothing to copy.
        let mut ids = h.get_all(&X_REQUEST_ID).iter();
        let passed = matches!((ids.next(), ids.next()), (Some(v), None) if v.as_bytes() == e.request_id.as_bytes());
        if !passed {
            if let Ok(v) = HeaderValue::from_str(&e.request_id) {
                h.insert(X_REQUEST_ID.clone(), v);
            }
        }
    }
    // Host as normalized; the client's own line when it is that already.
    if h.get(HOST).is_none_or(|v| v.as_bytes() != target.authority.as_bytes()) {
        if let Ok(v) = HeaderValue::from_str(&target.authority) {
            h.insert(HOST, v);
        }
    }
}

/// A connect failure that another endpoint will retry: counted here,
/// since only the last outcome reaches the response.
fn pool_error(pending: &mut Pending, pool: &crate::upstream::Pool, e: &UpstreamError) {
    if let Some(p) = pending.pending.as_ref() {
        pool.metrics(&p.shared.metrics).error(e.kind());
    }
}

/// The client as a socket address for an outgoing PROXY header: its port
/// is known only when the client is the hop that connected to us.
fn client_socket(conn: &ConnCtx, client: IpAddr) -> SocketAddr {
    let hop = conn.hop();
    if hop.ip() == unmap(client) {
        hop
    } else {
        SocketAddr::new(unmap(client), 0)
    }
}

/// Carries bytes both ways after a completed WebSocket handshake; the
/// request's log line is written when the tunnel closes, with the bytes
/// sent to the client.
async fn splice(client: hyper::upgrade::OnUpgrade, server: hyper::upgrade::OnUpgrade, mut log: Logged) {
    if let (Ok(c), Ok(s)) = tokio::join!(client, server) {
        let (mut c, mut s) = (TokioIo::new(c), TokioIo::new(s));
        if let Ok((_, to_client)) = tokio::io::copy_bidirectional(&mut c, &mut s).await {
            log.entry.bytes = to_client;
        }
    }
    log.write();
}

/// The access-log line of one request until it is written: exactly once,
/// when the response body ends, when the tunnel closes, or — if the
/// client goes away before a response — on drop, with status 499.
struct Pending {
    pending: Option<Logged>,
}

struct Logged {
    shared: Arc<Shared>,
    entry: Entry,
    start: Instant,
    counted: bool,
    /// The matched route's counters (`None`: no route, `route="-"`).
    route: Option<Arc<RouteMetrics>>,
}

impl Logged {
    fn write(&mut self) {
        self.entry.duration = self.start.elapsed().as_secs_f64();
        if !self.counted {
            self.counted = true;
            let status = StatusCode::from_u16(self.entry.status).unwrap_or(StatusCode::BAD_GATEWAY);
            let route = self.route.as_ref().unwrap_or(self.shared.metrics.no_route());
            route.request(&self.entry.listener, status.as_u16(), self.start.elapsed());
        }
        self.shared.log.load().write(&self.entry);
    }
}

impl Pending {
    fn new<B>(
        shared: &Arc<Shared>,
        conn: &ConnCtx,
        client: &Resolution,
        trusted_hop: bool,
        req: &Request<B>,
    ) -> Pending {
        let request_id = req
            .headers()
            .get(&X_REQUEST_ID)
            .filter(|_| trusted_hop)
            .and_then(|v| v.to_str().ok())
            .filter(|v| !v.is_empty() && v.len() <= 200 && v.bytes().all(|b| b.is_ascii_graphic()))
            .map_or_else(|| shared.request_id(), str::to_owned);
        let host = req
            .uri()
            .authority()
            .map(|a| a.as_str().to_owned())
            .or_else(|| req.headers().get(HOST).and_then(|h| h.to_str().ok()).map(str::to_owned))
            .unwrap_or_default();
        let entry = Entry {
            time: std::time::SystemTime::now(),
            listener: Arc::clone(&conn.listener),
            peer: conn.peer,
            client_ip: unmap(client.ip),
            client_ip_source: client.source.as_str(),
            client_ip_hop: client.hop,
            proxy: conn.proxy.clone(),
            method: req.method().clone(),
            host,
            path: req.uri().path_and_query().map_or("/", |p| p.as_str()).to_owned(),
            version: req.version(),
            status: 0,
            bytes: 0,
            duration: 0.0,
            route: None,
            upstream: None,
            upstream_status: None,
            upstream_error: None,
            request_id,
            referer: req.headers().get(http::header::REFERER).cloned(),
            user_agent: req.headers().get(http::header::USER_AGENT).cloned(),
        };
        Pending {
            pending: Some(Logged {
                shared: Arc::clone(shared),
                entry,
                start: Instant::now(),
                counted: false,
                route: None,
            }),
        }
    }

    /// The entry, until `finish` or `take_for_tunnel` took it.
    fn entry(&mut self) -> Option<&mut Entry> {
        self.pending.as_mut().map(|l| &mut l.entry)
    }

    fn set_target(&mut self, t: &Target) {
        if let Some(e) = self.entry() {
            e.host.clone_from(&t.authority);
        }
    }

    /// The log line moves into the tunnel task, written when it closes.
    fn take_for_tunnel(&mut self) -> Option<Logged> {
        let mut l = self.pending.take()?;
        l.entry.status = 101;
        Some(l)
    }

    /// Counts the status and wraps the body so the line is written when
    /// the body ends (or is dropped), with the bytes actually sent.
    fn finish(mut self, resp: Response<Body>) -> Response<LoggedBody> {
        let mut pending = self.pending.take();
        if let Some(logged) = pending.as_mut() {
            logged.entry.status = resp.status().as_u16();
        }
        if resp.status() == StatusCode::SWITCHING_PROTOCOLS {
            // Written by the tunnel; nothing pending here.
            pending = None;
        }
        resp.map(|b| LoggedBody { inner: b, pending })
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        if let Some(mut l) = self.pending.take() {
            // The client went away (or reset its h2 stream) before the
            // response: nginx's 499, with what the upstream said if known.
            l.entry.status = 499;
            l.write();
        }
    }
}

/// A response body that writes the request's log line when it ends or
/// is dropped (not boxed again: hyper holds it by value).
pub struct LoggedBody {
    inner: Body,
    pending: Option<Logged>,
}

impl std::fmt::Debug for LoggedBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoggedBody").field("pending", &self.pending.is_some()).finish_non_exhaustive()
    }
}

impl Drop for LoggedBody {
    fn drop(&mut self) {
        if let Some(mut l) = self.pending.take() {
            l.write();
        }
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
                if let (Some(d), Some(l)) = (f.data_ref(), this.pending.as_mut()) {
                    l.entry.bytes += d.len() as u64;
                }
            }
            Poll::Ready(None | Some(Err(_))) => {
                if let Some(mut l) = this.pending.take() {
                    l.write();
                }
            }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::Policy;
    use crate::route::HostMatch;
    use realip_core::TrustedProxies;

    fn route(policy: Policy, https_redirect: bool) -> Route {
        Route {
            name: "r".into(),
            host: HostMatch::new(None),
            prefix: "/".into(),
            upstream: Arc::new(crate::upstream::Pool::for_tests("up")),
            policy: Arc::new(policy),
            max_body_bytes: 10,
            https_redirect,
            gateway: None,
            backends: None,
            filters: std::sync::Arc::default(),
            listener_ports: vec![],
            only_listeners: vec![],
            metrics: std::sync::OnceLock::new(),
        }
    }

    fn conn(tls: bool) -> ConnCtx {
        ConnCtx::new(
            "web".into(),
            "127.0.0.1:80".parse().unwrap(),
            "[::ffff:198.51.100.9]:5000".parse().unwrap(),
            None,
            tls,
        )
    }

    fn req(headers: &[(&str, &str)]) -> (Request<()>, Target) {
        let mut b = Request::builder().uri("/a?b=1").header(HOST, "app.example.com");
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        let r = b.body(()).unwrap();
        let t = crate::target::target(&r, false).unwrap();
        (r, t)
    }

    #[tokio::test]
    async fn admit_redirects_denies_and_bounds_in_order() {
        let m = Metrics::default();
        let client: IpAddr = "203.0.113.7".parse().unwrap();
        let (r, t) = req(&[]);
        assert!(admit(&route(Policy::open(), false), &r, &conn(false), client, false, &t, &m).await.is_ok());
        match admit(&route(Policy::open(), true), &r, &conn(false), client, false, &t, &m).await {
            Err(Reject::Redirect(v)) => assert_eq!(v, "https://app.example.com/a?b=1"),
            other => panic!("{other:?}"),
        }
        // A trusted proxy that terminated TLS says so: no redirect loop.
        let (r2, t2) = req(&[("x-forwarded-proto", "https")]);
        assert!(admit(&route(Policy::open(), true), &r2, &conn(false), client, true, &t2, &m).await.is_ok());
        assert!(
            admit(&route(Policy::open(), true), &r2, &conn(false), client, false, &t2, &m).await.is_err(),
            "untrusted hop"
        );
        let deny = Policy { deny: TrustedProxies::parse(["203.0.113.0/24"]).unwrap().into(), ..Policy::open() };
        assert!(matches!(
            admit(&route(deny, false), &r, &conn(false), client, false, &t, &m).await,
            Err(Reject::Denied)
        ));
        let (big, tb) = req(&[("content-length", "11")]);
        assert!(matches!(
            admit(&route(Policy::open(), false), &big, &conn(false), client, false, &tb, &m).await,
            Err(Reject::BodyTooLarge)
        ));
    }

    #[test]
    fn every_rejection_has_its_status() {
        use std::time::Duration;
        let table: Vec<(Reject, u16)> = vec![
            (Reject::Target(TargetError::MissingHost), 400),
            (Reject::Target(TargetError::Connect), 405),
            (Reject::TooManyHeaders, 431),
            (Reject::NoRoute, 404),
            (Reject::Redirect(HeaderValue::from_static("https://x/")), 308),
            (Reject::Denied, 403),
            (Reject::Untrustworthy, 403),
            (Reject::NoBackend, 500),
            (Reject::GatewayRedirect(StatusCode::SEE_OTHER, HeaderValue::from_static("https://x/")), 303),
            (Reject::Limited(3), 429),
            (Reject::BodyTooLarge, 413),
            (Reject::Upstream(UpstreamError::BodyTooLarge(10)), 413),
            (Reject::Upstream(UpstreamError::BodyTimeout(Duration::from_secs(1))), 408),
            (Reject::Upstream(UpstreamError::NoEndpoint), 503),
            (Reject::Upstream(UpstreamError::Timeout(Duration::from_secs(1))), 504),
            (Reject::Upstream(UpstreamError::Closed), 502),
            (Reject::Upstream(UpstreamError::BadUpgrade("x")), 502),
            (Reject::Upstream(UpstreamError::ClientGone), 499),
            (Reject::Upstream(UpstreamError::BadBody), 400),
        ];
        for (r, want) in table {
            assert_eq!(r.status().as_u16(), want, "{r:?}");
            assert_eq!(r.response().status().as_u16(), want, "{r:?}");
        }
        let limited = Reject::Limited(3).response();
        assert_eq!(limited.headers()[RETRY_AFTER], "3");
        assert_eq!(Reject::Upstream(UpstreamError::BadUpgrade("x")).response().headers()["connection"], "close");
    }

    /// Every request builds this future and moves it into its box (hyper
    /// keeps the box's slot for the connection's life): its size is copied
    /// per request, so the rare, large states are boxed where they occur
    /// (a new upstream connection, an upgrade, a PROXY header towards the
    /// upstream) and an upstream connection moves as a pointer. It was
    /// 12.8 KiB before (docs/benchmarks.md, "issue 16, eleventh session").
    #[test]
    fn the_request_future_stays_small() {
        fn future_size<A, B, C, R>(_: impl FnOnce(A, B, C) -> R) -> usize {
            std::mem::size_of::<R>()
        }
        let size = future_size(handle::<hyper::body::Incoming>);
        assert!(size <= 7 * 1024, "the request future takes {size} bytes");
    }

    #[test]
    fn connection_addresses_are_unmapped() {
        assert_eq!(conn(false).peer, "198.51.100.9:5000".parse::<SocketAddr>().unwrap());
        assert_eq!(conn(false).hop(), conn(false).peer);
    }
}
