//! Gateway API mode: GatewayClass, Gateway, ListenerSet, HTTPRoute and
//! ReferenceGrant (Gateway API v1.6.1), plus realip's ClientIPPolicy and
//! ClientAccessPolicy (`realip.dev/v1alpha1`), translated into the neutral
//! [`crate::routes::RouteSet`] and into the status every object must get.
//!
//! - [`types`]: serde types for the subset realip reads;
//! - [`translate`]: pure functions from objects to routes and status
//!   (no I/O; table tests next to the code and over the upstream examples);
//! - [`status`]: status as typed conditions and the JSON written to the
//!   API server (lastTransitionTime kept while a condition does not change).
//!
//! Invariants: nothing is silently dropped — an object or field realip
//! cannot serve gets a condition saying so (`UnsupportedValue`,
//! `NotAllowedByListeners`, …); a route that attaches to no listener is not
//! served; everything in the produced route set has been validated.

pub mod objects;
pub mod status;
pub mod translate;
pub mod types;

#[cfg(test)]
mod tests;

/// The `controllerName` realip's GatewayClasses carry.
pub const CONTROLLER_NAME: &str = "realip.dev/gateway-controller";
/// The default GatewayClass name (`--gateway-class`).
pub const DEFAULT_CLASS: &str = "realip";
