//! realip-core: decide who the client is, and say why.
//!
//! No I/O and no allocation on the resolution path. The pieces:
//! - [`trust`]: trusted-proxy CIDR sets with numeric membership;
//! - [`headers`], [`forwarded`], [`node`]: zero-copy parsers of
//!   X-Forwarded-For, RFC 7239 `Forwarded`, X-Real-IP and their entries;
//! - [`proxy_protocol`]: PROXY v1/v2 incremental decoder and encoder;
//! - [`resolve`]: sources, strategies and the [`Resolution`] with its
//!   provenance, the one engine every other realip component uses.
//!
//! ```
//! use realip_core::{Resolver, Sources, Strategy, TrustedProxies};
//! let resolver = Resolver::new(
//!     TrustedProxies::parse(["10.0.0.0/8"]).unwrap(),
//!     Sources::parse(["xff"]).unwrap(),
//!     Strategy::RightmostUntrusted,
//! );
//! let headers = [("X-Forwarded-For", "198.51.100.9, 203.0.113.7, 10.0.0.3")];
//! let r = resolver.resolve("10.0.0.2".parse().unwrap(), None, &headers[..]).unwrap();
//! assert_eq!(r.ip.to_string(), "203.0.113.7");
//! assert_eq!((r.source.as_str(), r.hop), ("xff", 2));
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod error;
pub mod forwarded;
pub mod headers;
pub mod node;
pub mod proxy_protocol;
pub mod resolve;
#[cfg(feature = "serde")]
mod serde_impls;
pub mod trust;

pub use error::Error;
pub use headers::{Headers, NamedHeader};
pub use resolve::{Proxied, Resolution, Resolver, Source, Sources, Strategy, Warning, Warnings};
pub use trust::{unmap, Cidr, TrustedProxies};
