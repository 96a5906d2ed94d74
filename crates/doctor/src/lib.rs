//! realip-doctor: rules over Kubernetes objects and Helm values that find
//! what loses the client IP (SNAT with `externalTrafficPolicy: Cluster`),
//! what lets it be forged (forwarded headers trusted from everyone), and
//! what makes `Local` fragile (one replica, no spread, no drain).
//!
//! - [`finding`]: a finding: rule, severity, place, message, why, fix;
//! - [`rules`]: the manifest rules;
//! - [`helm`]: the same checks on ingress-nginx chart values;
//! - [`probe`]: forged-header checks against a live echo endpoint;
//! - [`report`]: text, JSON and SARIF 2.1.0 output.
#![forbid(unsafe_code)]

pub mod finding;
pub mod helm;
pub mod probe;
pub mod report;
pub mod rules;

pub use finding::{Finding, Severity};
