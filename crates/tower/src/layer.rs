//! [`RealIpLayer`]: resolve the client once per request, store the answer.
//!
//! The service reads the peer from the request extensions (see the crate
//! docs), runs [`Resolver::resolve_proxied`] over the request headers and
//! inserts a [`RealIp`] extension before calling the inner service. It
//! answers on its own only when it must:
//! - 500 when no peer address is available (the app was not served with
//!   connect info: a deployment bug, never silently "unknown");
//! - 400 when the connection's PROXY header came from an untrusted sender;
//! - 400, if enabled with [`Builder::reject_untrusted_forwarding`], when an
//!   untrusted peer sends forwarding headers (for apps that must never be
//!   reached directly).

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

#[cfg(feature = "axum")]
use axum::extract::ConnectInfo;
use http::{HeaderMap, Request, Response, StatusCode};
use realip_core::headers::Field;
use realip_core::{Headers as _, Proxied, Resolver, Sources, Strategy, TrustedProxies};

use crate::{ConnectionInfo, Error, RealIp};

/// Builds a [`RealIpLayer`].
///
/// ```
/// use realip_tower::RealIpLayer;
/// let layer = RealIpLayer::builder()
///     .trust(["10.0.0.0/8", "loopback"])?
///     .sources(["proxy-protocol", "xff"])?
///     .strategy("rightmost-untrusted")?
///     .reject_untrusted_forwarding(true)
///     .build();
/// # Ok::<(), realip_tower::Error>(())
/// ```
#[derive(Clone, Debug, Default)]
pub struct Builder {
    resolver: Resolver,
    reject_untrusted_forwarding: bool,
}

impl Builder {
    /// Trusted proxies: CIDRs, addresses, `loopback`, `private`.
    pub fn trust<I: IntoIterator<Item = S>, S: AsRef<str>>(mut self, cidrs: I) -> Result<Builder, Error> {
        self.resolver.trusted = TrustedProxies::parse(cidrs)?;
        Ok(self)
    }

    /// Sources in order: `peer`, `proxy-protocol`, `xff`, `forwarded`,
    /// `x-real-ip`, `header:NAME` (one custom header, e.g. `header:cf-connecting-ip`).
    pub fn sources<I: IntoIterator<Item = S>, S: AsRef<str>>(mut self, names: I) -> Result<Builder, Error> {
        self.resolver.sources = Sources::parse(names)?;
        Ok(self)
    }

    /// `rightmost-untrusted` (default), `trusted-hops:N` or `leftmost`.
    pub fn strategy(mut self, strategy: &str) -> Result<Builder, Error> {
        self.resolver.strategy = strategy.parse::<Strategy>()?;
        Ok(self)
    }

    /// Uses a ready-made resolver.
    #[must_use]
    pub fn resolver(mut self, resolver: Resolver) -> Builder {
        self.resolver = resolver;
        self
    }

    /// Answer 400 when a peer that is not trusted sends X-Forwarded-For,
    /// Forwarded, X-Real-IP or the `header:NAME` source. Off by default.
    #[must_use]
    pub fn reject_untrusted_forwarding(mut self, on: bool) -> Builder {
        self.reject_untrusted_forwarding = on;
        self
    }

    /// The layer.
    pub fn build(self) -> RealIpLayer {
        RealIpLayer { shared: Arc::new(self) }
    }
}

/// Tower layer resolving the real client IP of each request.
#[derive(Clone, Debug)]
pub struct RealIpLayer {
    shared: Arc<Builder>,
}

impl RealIpLayer {
    /// Starts a builder. Nothing is trusted until [`Builder::trust`].
    pub fn builder() -> Builder {
        Builder::default()
    }

    /// The resolver this layer uses.
    pub fn resolver(&self) -> &Resolver {
        &self.shared.resolver
    }
}

impl<S> tower_layer::Layer<S> for RealIpLayer {
    type Service = RealIpService<S>;
    fn layer(&self, inner: S) -> RealIpService<S> {
        RealIpService { inner, shared: Arc::clone(&self.shared) }
    }
}

/// The service made by [`RealIpLayer`].
#[derive(Clone, Debug)]
pub struct RealIpService<S> {
    inner: S,
    shared: Arc<Builder>,
}

/// The peer and PROXY information of the request's connection.
fn connection_of<B>(req: &Request<B>) -> Option<(SocketAddr, Proxied)> {
    let ext = req.extensions();
    if let Some(c) = ext.get::<ConnectionInfo>() {
        return Some((c.peer, c.proxied()));
    }
    #[cfg(feature = "axum")]
    {
        if let Some(ConnectInfo(c)) = ext.get::<ConnectInfo<ConnectionInfo>>() {
            return Some((c.peer, c.proxied()));
        }
        ext.get::<ConnectInfo<SocketAddr>>().map(|ConnectInfo(a)| (*a, Proxied::No))
    }
    #[cfg(not(feature = "axum"))]
    None
}

/// Whether `h` carries a forwarding header: the three standard ones and
/// the resolver's own `header:NAME` source, if it has one.
fn has_forwarding_headers(h: &HeaderMap, sources: &Sources) -> bool {
    let custom = sources.as_slice().iter().filter_map(|s| match s {
        realip_core::Source::Header(named) => Some(Field::Named(*named)),
        _ => None,
    });
    [Field::XForwardedFor, Field::Forwarded, Field::XRealIp]
        .into_iter()
        .chain(custom)
        .any(|f| h.lines(f).next().is_some())
}

fn reply<B: From<String>>(status: StatusCode, msg: String) -> Response<B> {
    let mut r = Response::new(B::from(msg));
    *r.status_mut() = status;
    r.headers_mut().insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("text/plain; charset=utf-8"));
    r
}

impl<S, B, ResBody> tower_service::Service<Request<B>> for RealIpService<S>
where
    S: tower_service::Service<Request<B>, Response = Response<ResBody>>,
    ResBody: From<String>,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future, ResBody>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        let Some((peer, proxied)) = connection_of(&req) else {
            return ResponseFuture::early(reply(
                StatusCode::INTERNAL_SERVER_ERROR,
                "realip: no peer address: serve the app with connect info (axum \
                 `into_make_service_with_connect_info`) or insert a ConnectionInfo extension\n"
                    .into(),
            ));
        };
        let resolver = &self.shared.resolver;
        let resolution = match resolver.resolve_proxied(peer.ip(), proxied, req.headers()) {
            Ok(r) => r,
            Err(e) => return ResponseFuture::early(reply(StatusCode::BAD_REQUEST, format!("realip: {e}\n"))),
        };
        if self.shared.reject_untrusted_forwarding
            && resolution.hop == 0
            && !resolver.trusted.contains(resolution.ip)
            && has_forwarding_headers(req.headers(), &resolver.sources)
        {
            return ResponseFuture::early(reply(
                StatusCode::BAD_REQUEST,
                format!("realip: forwarding headers from {}, which is not a trusted proxy\n", resolution.ip),
            ));
        }
        req.extensions_mut().insert(RealIp(resolution));
        ResponseFuture::inner(self.inner.call(req))
    }
}

pin_project_lite::pin_project! {
    /// Future of [`RealIpService`]: the inner service's, or an early answer.
    pub struct ResponseFuture<F, B> {
        #[pin]
        kind: Kind<F, B>,
    }
}

pin_project_lite::pin_project! {
    #[project = KindProj]
    enum Kind<F, B> {
        Inner { #[pin] fut: F },
        Early { response: Option<Response<B>> },
    }
}

impl<F, B> ResponseFuture<F, B> {
    fn inner(fut: F) -> Self {
        ResponseFuture { kind: Kind::Inner { fut } }
    }
    fn early(response: Response<B>) -> Self {
        ResponseFuture { kind: Kind::Early { response: Some(response) } }
    }
}

impl<F, B, E> Future for ResponseFuture<F, B>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Output = Result<Response<B>, E>;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().kind.project() {
            KindProj::Inner { fut } => fut.poll(cx),
            KindProj::Early { response } => match response.take() {
                Some(r) => Poll::Ready(Ok(r)),
                None => Poll::Pending, // polled after completion
            },
        }
    }
}

impl<F, B> std::fmt::Debug for ResponseFuture<F, B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ResponseFuture")
    }
}
