//! The resolution stored by [`RealIpLayer`](crate::RealIpLayer) and, with
//! the `axum` feature, axum extractors for it.

use std::net::IpAddr;

#[cfg(feature = "axum")]
use axum::extract::FromRequestParts;
#[cfg(feature = "axum")]
use axum::response::{IntoResponse, Response};
#[cfg(feature = "axum")]
use http::request::Parts;
#[cfg(feature = "axum")]
use http::StatusCode;
use realip_core::Resolution;

/// The full resolution: client address, source, hop and warnings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RealIp(pub Resolution);

/// Just the client address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientIp(pub IpAddr);

/// Rejection when the route is not behind a [`RealIpLayer`](crate::RealIpLayer):
/// a 500 that names the fix, never a silent guess.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MissingLayer;

#[cfg(feature = "axum")]
impl IntoResponse for MissingLayer {
    fn into_response(self) -> Response {
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            "realip: RealIpLayer is not installed on this route; add `.layer(RealIpLayer::builder()...build())`\n",
        )
            .into_response()
    }
}

#[cfg(feature = "axum")]
impl<S: Send + Sync> FromRequestParts<S> for RealIp {
    type Rejection = MissingLayer;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<RealIp, MissingLayer> {
        parts.extensions.get::<RealIp>().copied().ok_or(MissingLayer)
    }
}

#[cfg(feature = "axum")]
impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = MissingLayer;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<ClientIp, MissingLayer> {
        parts.extensions.get::<RealIp>().map(|r| ClientIp(r.0.ip)).ok_or(MissingLayer)
    }
}
