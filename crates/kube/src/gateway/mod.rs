//! Gateway API mode: GatewayClass, Gateway, ListenerSet, HTTPRoute and
//! ReferenceGrant (Gateway API v1.6.1), plus realip's ClientIPPolicy and
//! ClientAccessPolicy (`realip.dev/v1alpha1`), translated into the neutral
//! [`crate::routes::RouteSet`] and into the status every object must get
//! (route kinds realip does not serve — GRPCRoute, TLSRoute, TCPRoute,
//! UDPRoute — get status only: not accepted).
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

pub mod feedback;
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

/// The Gateway API v1.6.1 conformance features realip implements, written
/// into every realip GatewayClass's `status.supportedFeatures` (the names
/// of `pkg/features` at v1.6.1). Only features implemented and tested:
/// - `Gateway`, `HTTPRoute`, `ReferenceGrant`, `ListenerSet`: the kinds
///   (`gateway::tests`, `crates/cli/tests/gateway.rs`, the examples table);
/// - `GatewayHTTPListenerIsolation`: `routes_keep_to_the_most_specific_listener_on_their_port`,
///   `a_request_is_handled_by_the_routes_of_its_most_specific_listener`;
/// - `HTTPRouteQueryParamMatching`, `HTTPRouteMethodMatching`:
///   `gateway_routes_are_served_on_the_mapped_listener`;
/// - `HTTPRouteResponseHeaderModification`, `HTTPRouteHostRewrite`,
///   `HTTPRoutePathRewrite`, `HTTPRouteSchemeRedirect`,
///   `HTTPRoutePathRedirect`, `HTTPRoutePortRedirect`,
///   `HTTPRoute307RedirectStatusCode`: `gateway_filters_are_applied`;
/// - `HTTPRoute303RedirectStatusCode`, `HTTPRoute308RedirectStatusCode`:
///   `the_gateway_class_lists_its_supported_features`;
/// - `HTTPRouteNamedRouteRule`: `access_policies_prefer_the_most_specific_target`;
/// - `HTTPRouteParentRefPort`: `a_parent_ref_port_selects_the_listeners_on_that_port`.
///
/// Not listed: everything reported `UnsupportedValue` (mirrors, timeouts, retry, CORS,
/// backend filters, H2C / WebSocket backend protocols…), static or empty
/// Gateway addresses, infrastructure propagation, port 8080 (a listener
/// port is served only where a proxy `[[listener]]` maps it), TLS, GRPC,
/// TCP, UDP routes and mesh features.
pub const SUPPORTED_FEATURES: [&str; 18] = [
    "Gateway",
    "GatewayHTTPListenerIsolation",
    "HTTPRoute",
    "HTTPRoute303RedirectStatusCode",
    "HTTPRoute307RedirectStatusCode",
    "HTTPRoute308RedirectStatusCode",
    "HTTPRouteHostRewrite",
    "HTTPRouteMethodMatching",
    "HTTPRouteNamedRouteRule",
    "HTTPRouteParentRefPort",
    "HTTPRoutePathRedirect",
    "HTTPRoutePathRewrite",
    "HTTPRoutePortRedirect",
    "HTTPRouteQueryParamMatching",
    "HTTPRouteResponseHeaderModification",
    "HTTPRouteSchemeRedirect",
    "ListenerSet",
    "ReferenceGrant",
];
