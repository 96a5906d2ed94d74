//! realip-tower: the real client IP for Rust services, resolved by the same
//! engine as every other realip component.
//!
//! - [`RealIpLayer`]: a tower layer that resolves the client once per
//!   request and stores the [`Resolution`](realip_core::Resolution) in the
//!   request extensions, with its provenance;
//! - [`ClientIp`] and [`RealIp`]: axum extractors for it;
//! - [`acceptor`]: reads and checks a PROXY header (v1/v2, trusted senders
//!   only, bounded wait) before a connection reaches hyper or axum;
//! - [`echo`]: the `/debug/ip` app every realip test, lab and probe talks to.
//!
//! The layer learns the TCP peer from, in order: a [`ConnectionInfo`]
//! extension (inserted by the acceptor integration or by hand with hyper),
//! axum's `ConnectInfo<ConnectionInfo>`, or axum's `ConnectInfo<SocketAddr>`.
//!
//! The axum parts (the extractors, [`echo`], the `axum::serve` listener
//! and the `ConnectInfo` fallbacks) are behind the default `axum` feature;
//! without it (as realip-proxy uses it) the crate does not pull axum in.
//!
//! ```no_run
//! # #[cfg(feature = "axum")]
//! # mod example {
//! use axum::{routing::get, Router};
//! use realip_tower::{ClientIp, RealIpLayer};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let layer = RealIpLayer::builder().trust(["10.0.0.0/8"])?.sources(["xff"])?.build();
//! let app = Router::new()
//!     .route("/", get(|ClientIp(ip): ClientIp| async move { ip.to_string() }))
//!     .layer(layer);
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8000").await?;
//! axum::serve(listener, app.into_make_service_with_connect_info::<std::net::SocketAddr>()).await?;
//! # Ok(()) }
//! # }
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod acceptor;
mod connection;
#[cfg(feature = "axum")]
pub mod echo;
mod error;
mod extract;
mod layer;

pub use acceptor::{ProxyProtocolConfig, ProxyProtocolListener, ProxyProtocolMode};
pub use connection::{ConnectionInfo, Endpoint, ProxyInfo, TlvInfo};
pub use error::Error;
pub use extract::{ClientIp, MissingLayer, RealIp};
pub use layer::{Builder, RealIpLayer, RealIpService};
