//! Serde types for the subset of Gateway API v1.6.1 (`gateway.networking.k8s.io/v1`)
//! and of realip's own policies (`realip.dev/v1alpha1`) that realip reads.
//!
//! Hand-written rather than generated: the `gateway-api` crate pins kube 3 /
//! k8s-openapi 0.27 (we use kube 5 / 0.29), and kopium output for the full
//! CRDs is several thousand lines of which we read a few hundred. Every
//! field name and enum value follows the CRDs in
//! `../shared/gateway-api/v1.6.1/crd-standard/` (and ours in
//! `deploy/helm/realip/crds/`). To regenerate after a Gateway API upgrade:
//! diff the new CRDs' `openAPIV3Schema` against the old ones
//! (`yq '.spec.versions[].schema' gateways.yaml`), add the fields here, and
//! run `cargo nextest run -p realip-kube gateway` — the example table test
//! reads the upstream examples of the new version, so a field we do not
//! know shows up as `UnsupportedValue` there instead of passing silently.
//!
//! Invariant: nothing the user wrote is dropped. Objects that may carry
//! features realip does not implement keep every field they do not model in
//! an `other` map (`#[serde(flatten)]`), and the translation reports each
//! such field as unsupported instead of ignoring it.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, LabelSelector, ObjectMeta};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Fields realip does not model, kept so they can be reported.
pub type Other = BTreeMap<String, Value>;

/// Implements `kube::Resource` for a static namespaced or cluster type.
macro_rules! resource {
    ($t:ty, $group:literal, $version:literal, $kind:literal, $plural:literal, $scope:ty) => {
        impl kube::Resource for $t {
            type DynamicType = ();
            type Scope = $scope;
            fn kind((): &()) -> std::borrow::Cow<'_, str> {
                $kind.into()
            }
            fn group((): &()) -> std::borrow::Cow<'_, str> {
                $group.into()
            }
            fn version((): &()) -> std::borrow::Cow<'_, str> {
                $version.into()
            }
            fn plural((): &()) -> std::borrow::Cow<'_, str> {
                $plural.into()
            }
            fn meta(&self) -> &ObjectMeta {
                &self.metadata
            }
            fn meta_mut(&mut self) -> &mut ObjectMeta {
                &mut self.metadata
            }
        }
    };
}

/// The Gateway API group.
pub const GATEWAY_GROUP: &str = "gateway.networking.k8s.io";
/// realip's policy group.
pub const REALIP_GROUP: &str = "realip.dev";

type Ns = k8s_openapi::NamespaceResourceScope;
type Cluster = k8s_openapi::ClusterResourceScope;

/// `GatewayClass` (cluster scoped).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct GatewayClass {
    /// Object metadata.
    #[serde(default)]
    pub metadata: ObjectMeta,
    /// Spec.
    #[serde(default)]
    pub spec: GatewayClassSpec,
    /// Status as last written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<Value>,
}
resource!(GatewayClass, "gateway.networking.k8s.io", "v1", "GatewayClass", "gatewayclasses", Cluster);

/// `GatewayClass.spec`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GatewayClassSpec {
    /// Which controller implements the class.
    #[serde(default)]
    pub controller_name: String,
    /// Implementation-specific parameters (realip takes none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameters_ref: Option<Value>,
    /// Everything else.
    #[serde(flatten)]
    pub other: Other,
}

/// A reference to a parent (Gateway or ListenerSet) from a route.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ParentReference {
    /// API group; default `gateway.networking.k8s.io`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// Kind; default `Gateway`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Namespace; default the route's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Name.
    pub name: String,
    /// Listener name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub section_name: Option<String>,
    /// Listener port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<i32>,
}

/// `Gateway`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Gateway {
    /// Object metadata.
    #[serde(default)]
    pub metadata: ObjectMeta,
    /// Spec.
    #[serde(default)]
    pub spec: GatewaySpec,
    /// Status as last written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<Value>,
}
resource!(Gateway, "gateway.networking.k8s.io", "v1", "Gateway", "gateways", Ns);

/// `Gateway.spec`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GatewaySpec {
    /// The class.
    #[serde(default)]
    pub gateway_class_name: String,
    /// Listeners.
    #[serde(default)]
    pub listeners: Vec<Listener>,
    /// Requested addresses (realip takes its address from its Service).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub addresses: Vec<Value>,
    /// Which ListenerSets may attach.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_listeners: Option<AllowedListeners>,
    /// Everything else (infrastructure, tls options, …).
    #[serde(flatten)]
    pub other: Other,
}

/// `Gateway.spec.allowedListeners`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct AllowedListeners {
    /// Namespaces ListenerSets may come from.
    #[serde(default)]
    pub namespaces: Option<RouteNamespaces>,
}

/// One listener (of a Gateway or a ListenerSet).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Listener {
    /// Name, unique in its parent.
    pub name: String,
    /// Host name (exact or `*.` wildcard); none = any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    /// Port.
    pub port: i32,
    /// `HTTP`, `HTTPS`, `TLS`, `TCP`, `UDP`.
    pub protocol: String,
    /// TLS settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<ListenerTls>,
    /// Which routes may attach.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_routes: Option<AllowedRoutes>,
    /// Everything else.
    #[serde(flatten)]
    pub other: Other,
}

/// `listener.tls`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListenerTls {
    /// `Terminate` (default) or `Passthrough`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    /// Certificates (Secrets).
    #[serde(default)]
    pub certificate_refs: Vec<ObjectReference>,
    /// Everything else (options, frontendValidation…).
    #[serde(flatten)]
    pub other: Other,
}

/// A reference to an object by group, kind, namespace and name.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectReference {
    /// Group (`""` = core).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// Kind.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Name.
    pub name: String,
    /// Namespace; default the referrer's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

/// `listener.allowedRoutes`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct AllowedRoutes {
    /// Namespaces routes may come from (default: `Same`).
    #[serde(default)]
    pub namespaces: Option<RouteNamespaces>,
    /// Route kinds allowed (default: by protocol).
    #[serde(default)]
    pub kinds: Option<Vec<RouteGroupKind>>,
}

/// `from: All | Same | Selector` (+ selector).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RouteNamespaces {
    /// `All`, `Same` (default) or `Selector`.
    #[serde(default)]
    pub from: Option<String>,
    /// Namespace label selector for `Selector`.
    #[serde(default)]
    pub selector: Option<LabelSelector>,
}

/// A route kind.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteGroupKind {
    /// Group; default `gateway.networking.k8s.io`.
    #[serde(default)]
    pub group: Option<String>,
    /// Kind.
    pub kind: String,
}

/// `ListenerSet` (`gateway.networking.k8s.io/v1`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ListenerSet {
    /// Object metadata.
    #[serde(default)]
    pub metadata: ObjectMeta,
    /// Spec.
    #[serde(default)]
    pub spec: ListenerSetSpec,
    /// Status as last written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<Value>,
}
resource!(ListenerSet, "gateway.networking.k8s.io", "v1", "ListenerSet", "listenersets", Ns);

/// `ListenerSet.spec`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListenerSetSpec {
    /// The Gateway it extends.
    #[serde(default)]
    pub parent_ref: ParentReference,
    /// Its listeners.
    #[serde(default)]
    pub listeners: Vec<Listener>,
}

/// `HTTPRoute`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct HttpRoute {
    /// Object metadata.
    #[serde(default)]
    pub metadata: ObjectMeta,
    /// Spec.
    #[serde(default)]
    pub spec: HttpRouteSpec,
    /// Status as last written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<Value>,
}
resource!(HttpRoute, "gateway.networking.k8s.io", "v1", "HTTPRoute", "httproutes", Ns);

/// `HTTPRoute.spec`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HttpRouteSpec {
    /// Parents.
    #[serde(default)]
    pub parent_refs: Vec<ParentReference>,
    /// Host names.
    #[serde(default)]
    pub hostnames: Vec<String>,
    /// Rules (default: one rule matching `/` with no backend).
    #[serde(default)]
    pub rules: Vec<HttpRouteRule>,
}

/// A route of a kind realip does not serve (GRPCRoute, TLSRoute,
/// TCPRoute, UDPRoute): only its parents are read, so that each parent
/// that is realip's gets a `parents[]` entry saying the route is not
/// accepted (the spec's `NotAllowedByListeners`), never silence.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct UnservedRoute {
    /// Object metadata.
    #[serde(default)]
    pub metadata: ObjectMeta,
    /// Spec (parents only).
    #[serde(default)]
    pub spec: UnservedRouteSpec,
    /// Status as last written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<Value>,
}

/// The part of an unserved route's spec realip reads.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UnservedRouteSpec {
    /// Parents.
    #[serde(default)]
    pub parent_refs: Vec<ParentReference>,
}

/// A typed wrapper of [`UnservedRoute`] per kind, for the watcher (one
/// `kube::Resource` per API path).
macro_rules! unserved_route {
    ($t:ident, $kind:literal, $version:literal, $plural:literal) => {
        #[doc = concat!("`", $kind, "` (`gateway.networking.k8s.io/", $version, "`), not served: see [`UnservedRoute`].")]
        #[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $t(pub UnservedRoute);
        impl kube::Resource for $t {
            type DynamicType = ();
            type Scope = Ns;
            fn kind((): &()) -> std::borrow::Cow<'_, str> {
                $kind.into()
            }
            fn group((): &()) -> std::borrow::Cow<'_, str> {
                GATEWAY_GROUP.into()
            }
            fn version((): &()) -> std::borrow::Cow<'_, str> {
                $version.into()
            }
            fn plural((): &()) -> std::borrow::Cow<'_, str> {
                $plural.into()
            }
            fn meta(&self) -> &ObjectMeta {
                &self.0.metadata
            }
            fn meta_mut(&mut self) -> &mut ObjectMeta {
                &mut self.0.metadata
            }
        }
    };
}
unserved_route!(GrpcRoute, "GRPCRoute", "v1", "grpcroutes");
unserved_route!(TlsRoute, "TLSRoute", "v1", "tlsroutes");
unserved_route!(TcpRoute, "TCPRoute", "v1", "tcproutes");
// UDPRoute has no v1 yet (experimental channel, v1alpha2).
unserved_route!(UdpRoute, "UDPRoute", "v1alpha2", "udproutes");

/// The route kinds realip does not serve but writes status on, as
/// `ObjectKey::kind` names them.
pub const UNSERVED_ROUTE_KINDS: [&str; 4] = ["GRPCRoute", "TLSRoute", "TCPRoute", "UDPRoute"];

/// One rule.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HttpRouteRule {
    /// Optional rule name (`sectionName` of policies).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Matches (default: prefix `/`).
    #[serde(default)]
    pub matches: Vec<HttpRouteMatch>,
    /// Filters.
    #[serde(default)]
    pub filters: Vec<HttpRouteFilter>,
    /// Backends.
    #[serde(default)]
    pub backend_refs: Vec<HttpBackendRef>,
    /// Everything else (timeouts, retry, sessionPersistence…).
    #[serde(flatten)]
    pub other: Other,
}

/// One match.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HttpRouteMatch {
    /// Path (default: PathPrefix `/`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<HttpPathMatch>,
    /// Header matches (ANDed).
    #[serde(default)]
    pub headers: Vec<NameValueMatch>,
    /// Query parameter matches (ANDed).
    #[serde(default)]
    pub query_params: Vec<NameValueMatch>,
    /// Method.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
}

/// Path match.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HttpPathMatch {
    /// `Exact`, `PathPrefix` (default) or `RegularExpression`.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Value (default `/`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

/// Header or query parameter match.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NameValueMatch {
    /// `Exact` (default) or `RegularExpression`.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Name.
    pub name: String,
    /// Value.
    pub value: String,
}

/// A filter: `type` plus the member of that name.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HttpRouteFilter {
    /// Filter type.
    #[serde(rename = "type")]
    pub kind: String,
    /// `RequestHeaderModifier`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_header_modifier: Option<HeaderModifier>,
    /// `ResponseHeaderModifier`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_header_modifier: Option<HeaderModifier>,
    /// `RequestRedirect`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_redirect: Option<RequestRedirect>,
    /// `URLRewrite`.
    #[serde(default, rename = "urlRewrite", skip_serializing_if = "Option::is_none")]
    pub url_rewrite: Option<UrlRewrite>,
    /// Everything else (requestMirror, cors, extensionRef…).
    #[serde(flatten)]
    pub other: Other,
}

/// Header modifier: set, add, remove.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeaderModifier {
    /// Replace or add.
    #[serde(default)]
    pub set: Vec<HeaderValue>,
    /// Append.
    #[serde(default)]
    pub add: Vec<HeaderValue>,
    /// Remove.
    #[serde(default)]
    pub remove: Vec<String>,
}

/// One header and its value.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeaderValue {
    /// Name.
    pub name: String,
    /// Value.
    pub value: String,
}

/// `RequestRedirect`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestRedirect {
    /// `http` or `https`.
    #[serde(default)]
    pub scheme: Option<String>,
    /// New host name.
    #[serde(default)]
    pub hostname: Option<String>,
    /// New path.
    #[serde(default)]
    pub path: Option<PathModifier>,
    /// New port.
    #[serde(default)]
    pub port: Option<i32>,
    /// 301 (default), 302, 303, 307, 308.
    #[serde(default)]
    pub status_code: Option<i32>,
}

/// `URLRewrite`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UrlRewrite {
    /// New host name.
    #[serde(default)]
    pub hostname: Option<String>,
    /// New path.
    #[serde(default)]
    pub path: Option<PathModifier>,
}

/// Path modifier.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PathModifier {
    /// `ReplaceFullPath` or `ReplacePrefixMatch`.
    #[serde(rename = "type")]
    pub kind: String,
    /// For `ReplaceFullPath`.
    #[serde(default)]
    pub replace_full_path: Option<String>,
    /// For `ReplacePrefixMatch`.
    #[serde(default)]
    pub replace_prefix_match: Option<String>,
}

/// A backend reference with weight and filters.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HttpBackendRef {
    /// Group (`""` = core).
    #[serde(default)]
    pub group: Option<String>,
    /// Kind (default `Service`).
    #[serde(default)]
    pub kind: Option<String>,
    /// Name.
    pub name: String,
    /// Namespace (default the route's; other ones need a ReferenceGrant).
    #[serde(default)]
    pub namespace: Option<String>,
    /// Service port.
    #[serde(default)]
    pub port: Option<i32>,
    /// Weight (default 1).
    #[serde(default)]
    pub weight: Option<i32>,
    /// Per-backend filters (not supported).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub filters: Vec<Value>,
}

/// `ReferenceGrant` (`v1beta1`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ReferenceGrant {
    /// Object metadata.
    #[serde(default)]
    pub metadata: ObjectMeta,
    /// Spec.
    #[serde(default)]
    pub spec: ReferenceGrantSpec,
}
resource!(ReferenceGrant, "gateway.networking.k8s.io", "v1beta1", "ReferenceGrant", "referencegrants", Ns);

/// `ReferenceGrant.spec`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReferenceGrantSpec {
    /// Who may refer.
    #[serde(default)]
    pub from: Vec<GrantFrom>,
    /// To what (in the grant's namespace).
    #[serde(default)]
    pub to: Vec<GrantTo>,
}

/// `from` entry.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GrantFrom {
    /// Group of the referrer.
    #[serde(default)]
    pub group: String,
    /// Kind of the referrer.
    pub kind: String,
    /// Namespace of the referrer.
    pub namespace: String,
}

/// `to` entry.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GrantTo {
    /// Group of the target (`""` = core).
    #[serde(default)]
    pub group: String,
    /// Kind of the target.
    pub kind: String,
    /// Only this name; none = any.
    #[serde(default)]
    pub name: Option<String>,
}

/// A policy's target (Gateway API policy attachment).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PolicyTargetReference {
    /// Group of the target.
    #[serde(default)]
    pub group: String,
    /// Kind of the target.
    pub kind: String,
    /// Name (same namespace as the policy).
    pub name: String,
    /// Listener (Gateway) or rule (HTTPRoute) name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub section_name: Option<String>,
}

/// `ClientIPPolicy` (`realip.dev/v1alpha1`): the whole client-IP chain of
/// a Gateway, one of its listeners, or a ListenerSet.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ClientIpPolicy {
    /// Object metadata.
    #[serde(default)]
    pub metadata: ObjectMeta,
    /// Spec.
    #[serde(default)]
    pub spec: ClientIpPolicySpec,
    /// Status as last written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<Value>,
}
resource!(ClientIpPolicy, "realip.dev", "v1alpha1", "ClientIPPolicy", "clientippolicies", Ns);

/// `ClientIPPolicy.spec`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClientIpPolicySpec {
    /// Gateway (optionally `sectionName` = listener) or ListenerSet.
    #[serde(default)]
    pub target_refs: Vec<PolicyTargetReference>,
    /// PROXY protocol on the listener.
    #[serde(default)]
    pub proxy_protocol: Option<ProxyProtocolSpec>,
    /// Proxies whose forwarding headers are believed (CIDRs).
    #[serde(default)]
    pub trusted_proxies: Vec<String>,
    /// Sources, in order.
    #[serde(default)]
    pub sources: Vec<SourceSpec>,
    /// How a header list is read.
    #[serde(default)]
    pub strategy: Option<StrategySpec>,
    /// 403 when no trustworthy answer.
    #[serde(default)]
    pub fail_closed: bool,
    /// What the upstream receives.
    #[serde(default)]
    pub forward: Option<ForwardSpec>,
    /// Set by `crate::decode`, never read from the API: the object did not
    /// decode (the error, naming the field). It stands in with the
    /// `targetRefs` read from the raw object and is reported `Invalid`:
    /// its last valid version stays in force, else its targets fail
    /// closed, as for any invalid policy.
    #[serde(skip)]
    pub undecodable: Option<String>,
}

/// `proxyProtocol`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProxyProtocolSpec {
    /// `Off` (default), `Optional`, `Required`.
    #[serde(default)]
    pub mode: Option<String>,
    /// Who may send a PROXY header (CIDRs).
    #[serde(default)]
    pub trusted_senders: Vec<String>,
}

/// One source: a name, or `{header: NAME}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum SourceSpec {
    /// `ProxyProtocol`, `XForwardedFor`, `Forwarded`, `XRealIP`.
    Named(String),
    /// A custom header holding one address.
    Header {
        /// Its name.
        header: String,
    },
    /// Anything else: kept so the policy is reported `Invalid` instead of
    /// failing the whole watch list.
    Other(Value),
}

/// `RightmostUntrusted` or `{trustedHops: N}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum StrategySpec {
    /// `RightmostUntrusted`.
    Named(String),
    /// The Nth address from the right.
    Hops {
        /// N.
        #[serde(rename = "trustedHops")]
        trusted_hops: u16,
    },
    /// Anything else, reported `Invalid`.
    Other(Value),
}

/// `forward`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ForwardSpec {
    /// `Append` (default) or `Replace`.
    #[serde(default)]
    pub x_forwarded_for: Option<String>,
    /// Send X-Real-IP (default true).
    #[serde(default, rename = "xRealIP")]
    pub x_real_ip: Option<bool>,
    /// Send RFC 7239 Forwarded (default false).
    #[serde(default)]
    pub forwarded: Option<bool>,
    /// Headers removed from requests of untrusted hops.
    #[serde(default)]
    pub strip_untrusted: Vec<String>,
}

/// `ClientAccessPolicy` (`realip.dev/v1alpha1`): allow / deny / rate limit
/// keyed on the resolved client, on an HTTPRoute (or one rule) or a Gateway.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ClientAccessPolicy {
    /// Object metadata.
    #[serde(default)]
    pub metadata: ObjectMeta,
    /// Spec.
    #[serde(default)]
    pub spec: ClientAccessPolicySpec,
    /// Status as last written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<Value>,
}
resource!(ClientAccessPolicy, "realip.dev", "v1alpha1", "ClientAccessPolicy", "clientaccesspolicies", Ns);

/// `ClientAccessPolicy.spec`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClientAccessPolicySpec {
    /// HTTPRoute (optionally `sectionName` = rule name) or Gateway.
    #[serde(default)]
    pub target_refs: Vec<PolicyTargetReference>,
    /// Only these client CIDRs (absent: everyone; an empty list is
    /// refused as Invalid, see `translate::access`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow: Option<Vec<String>>,
    /// Never these.
    #[serde(default)]
    pub deny: Vec<String>,
    /// Per-client rate limit.
    #[serde(default)]
    pub rate_limit: Option<RateLimitSpec>,
    /// Set by `crate::decode`, never read from the API: the object did not
    /// decode (the error, naming the field). It stands in with the
    /// `targetRefs` read from the raw object and is reported `Invalid`:
    /// its last valid version stays in force, else its targets fail
    /// closed, as for any invalid policy.
    #[serde(skip)]
    pub undecodable: Option<String>,
}

/// `rateLimit`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RateLimitSpec {
    /// Sustained requests per second.
    pub per_second: f64,
    /// Bucket size (default: `perSecond`).
    #[serde(default)]
    pub burst: Option<f64>,
    /// IPv6 clients are counted per prefix of this length (default 64).
    #[serde(default, rename = "ipv6PrefixLength")]
    pub ipv6_prefix_length: Option<u8>,
    /// `Local` (default, per proxy replica) or `Global` (shared store).
    #[serde(default)]
    pub scope: Option<String>,
}

/// A status condition, as every kind here writes it.
pub type StatusCondition = Condition;
