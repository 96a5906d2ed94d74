//! realip-proxy: the edge/ingress proxy of DESIGN.md, built from small
//! layers with one job each:
//!
//! - [`config`]: the TOML file, validated with every error named;
//! - [`snapshot`]: a config compiled for serving, swapped whole on reload;
//! - [`listener`]: accept, connection limit, PROXY in, TLS ([`tls`]),
//!   HTTP/1.1 + h2, or raw TCP (`mode = "tcp"`);
//! - [`http`]: per request: resolve the client (realip-core), decide the
//!   target ([`target`], [`path`]), route ([`route`]), enforce [`policy`],
//!   rewrite headers ([`forward`]), bound the body ([`body`]), call the
//!   upstream ([`upstream`]), tunnel WebSockets ([`websocket`]), log
//!   ([`log`]) and count ([`metrics`]);
//! - [`ratestore`]: global rate limits shared by replicas, on Redis;
//! - [`accept`]: accept with back-off on errors (EMFILE does not spin);
//! - [`timeouts`]: 408 for slow request heads, idle keep-alive close,
//!   HTTP/2 preface / first-request and idle timeouts;
//! - [`park`]: idle HTTP/1.1 connections give hyper's state back;
//! - [`drain`]: the shutdown signal every connection holds;
//! - [`admin`]: `/metrics`, `/healthz`, `/readyz`;
//! - [`server`]: start, reload (SIGHUP / file change), drain (SIGTERM);
//! - [`workers`]: one single-threaded runtime per core, `SO_REUSEPORT`.
#![forbid(unsafe_code)]

pub mod accept;
pub mod admin;
pub mod body;
pub mod config;
pub mod drain;
mod error;
pub mod forward;
pub mod gateway;
pub mod http;
pub mod kubernetes;
pub mod listener;
pub mod log;
pub mod metrics;
pub mod park;
pub mod path;
pub mod policy;
pub mod ratestore;
pub mod route;
pub mod server;
pub mod snapshot;
pub mod target;
pub mod timeouts;
pub mod tls;
pub mod upstream;
pub mod websocket;
pub mod workers;

pub use config::Config;
pub use error::Error;
