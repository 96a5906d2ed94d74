//! realip-doctor: finds what loses the client IP (SNAT, a load balancer
//! that does not carry it), what lets it be forged (forwarded headers or
//! PROXY headers believed from everyone, hop counts that reach entries the
//! client wrote), and what makes the path fragile (one replica, no spread,
//! no drain), in manifests, chart values and live clusters.
//!
//! - [`catalog`]: every rule: id, severity, why, generic fix, docs anchor;
//! - [`finding`]: a finding: rule, severity, place, message, why, fix;
//! - [`model`]: the client-IP facts controller modules report;
//! - [`controllers`]: one module per controller (ingress-nginx, Traefik,
//!   Envoy Gateway, NGINX Gateway Fabric, Istio, Cilium, realip);
//! - [`cloud`]: per cloud, what the load balancer does (annotations table);
//! - [`rules`]: the generic rules judging the facts, and single-object rules;
//! - [`apps`]: uvicorn/gunicorn trust of forwarded headers;
//! - [`helm`]: chart values turned into the same facts;
//! - [`probe`]: forged-header checks against a live echo endpoint;
//! - [`report`]: text, JSON and SARIF 2.1.0 output.
#![forbid(unsafe_code)]

pub mod apps;
pub mod catalog;
pub mod cloud;
pub mod controllers;
pub mod finding;
pub mod helm;
pub mod model;
pub mod probe;
pub mod report;
pub mod rules;

pub use finding::{Finding, Place, Severity};
