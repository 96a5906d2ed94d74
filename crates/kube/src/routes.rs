//! The neutral route set: what the proxy serves, whatever produced it
//! (Ingresses through [`crate::ingress`], Gateway API objects through
//! [`crate::gateway`]). No Kubernetes types appear here, so the proxy (and
//! later a `realip-config` crate) can own these types without kube-rs.
//!
//! Invariants:
//! - every [`Route`] has a stable [`Route::name`] derived from the object
//!   that declared it (`httproute/NS/NAME/RULE/MATCH`,
//!   `ingress/NS/NAME/HOST/PATH`; an HTTPRoute rule served for several
//!   hosts gets `/HOST` appended, one attached to several parents `#2`,
//!   `#3`…, so names are unique), never from its position among other
//!   objects, so metrics and logs keep their names when objects come and go;
//! - [`RouteSet::routes`] is in match precedence order: the proxy serves a
//!   request with the first route whose listener, host and match apply
//!   (Gateway API HTTPRoute precedence, see [`crate::gateway`]);
//! - every value was validated when the set was built (CIDRs parse,
//!   sources and strategy are realip-core names), so the proxy can turn
//!   them into its configuration without failing for one route.

use std::sync::Arc;

use crate::ingress::{Backend, Cert, Desired};

/// Everything the proxy serves from Kubernetes.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RouteSet {
    /// Gateway listeners (Gateway and ListenerSet). Empty for Ingress-only
    /// sets: Ingress routes run on the listeners of the configuration file.
    pub listeners: Vec<ListenerSpec>,
    /// Routes, in precedence order. Shared: a set passes from the watcher
    /// to the proxy's reloader and is compared with the previous one at
    /// each step, and a change of one route of 10,000 copies and compares
    /// 10,000 pointers, not 10,000 routes.
    pub routes: Vec<Arc<Route>>,
    /// Backends the routes name (sorted by name).
    pub backends: Vec<Backend>,
    /// Certificates the listeners (or Ingress `tls`, [`Cert::ingress`])
    /// name.
    pub certs: Vec<Cert>,
    /// HTTPRoutes attached to Gateway listeners no `[[listener]]` of the
    /// proxy serves (by the binds the controller was told): their routes
    /// are not in [`RouteSet::routes`] (they would serve nothing, and an
    /// HTTPRoute expands to a route per parent, hostname and match), only
    /// this, once per route and listener, so the proxy can say why they
    /// are not served. Sorted.
    pub pending: Vec<PendingRoute>,
}

/// An HTTPRoute attached to a Gateway listener no bind of the proxy serves
/// (see [`RouteSet::pending`]).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PendingRoute {
    /// `httproute/NS/NAME` (as [`Route::origin`]).
    pub origin: String,
    /// The Gateway listener ([`ListenerSpec::name`]).
    pub listener: String,
}

/// A `[[listener]]` of the proxy's configuration file as the controller
/// needs to know it: which Gateway listener ports it serves
/// (`gateway_ports`), whether it terminates TLS with Kubernetes
/// Secrets (`tls.kubernetes`, which an HTTPS Gateway listener needs),
/// whether it serves Ingress routes and which Gateways may program it. The
/// proxy hands the list to the controller at start and after every reload,
/// so a Gateway listener's `Programmed` says whether a bind serves it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bind {
    /// The `[[listener]]`'s name.
    pub name: String,
    /// Its `gateway_ports`.
    pub gateway_ports: Vec<u16>,
    /// Whether it has `tls = { kubernetes = true }`.
    pub tls_kubernetes: bool,
    /// Its `ingress` (whether Ingress routes are served on it).
    pub ingress: bool,
    /// Its `gateways` (`NS/NAME` or `NS/*`; empty: any Gateway).
    pub gateways: Vec<String>,
}

impl Default for Bind {
    fn default() -> Bind {
        Bind {
            name: String::new(),
            gateway_ports: Vec::new(),
            tls_kubernetes: false,
            ingress: true,
            gateways: Vec::new(),
        }
    }
}

impl Bind {
    /// Whether the listeners of Gateway `gateway` (`NS/NAME`; with the
    /// ListenerSets attached to it) may be served on this bind.
    pub fn admits(&self, gateway: &str) -> bool {
        self.gateways.is_empty()
            || self.gateways.iter().any(|g| {
                g == gateway
                    || g.strip_suffix("/*").is_some_and(|ns| gateway.split_once('/').is_some_and(|(n, _)| n == ns))
            })
    }
}

/// What the proxy does not serve of the Gateway side, found when it
/// composed its configuration (which only it can know: the file's chain
/// and the Ingresses meet the Gateway listeners there). The proxy hands
/// it to the controller after every composition that changes it, and the
/// controller puts it into status (see `crate::gateway::feedback`). It
/// changes statuses only, never the route set, so it converges: the next
/// translation hands the proxy the same set.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Feedback {
    /// Gateway listeners ([`ListenerSpec::name`]) the proxy does not serve
    /// on some or every bind for a cause only it sees, and why.
    pub listeners: std::collections::BTreeMap<String, UnservedListener>,
    /// HTTPRoutes (`NS/NAME`) with routes the proxy does not serve →
    /// parent (`gateway/NS/NAME` or `listenerset/NS/NAME`) → what of it.
    pub routes: std::collections::BTreeMap<String, std::collections::BTreeMap<String, RouteLoss>>,
    /// ClientAccessPolicies (`NS/NAME`) the proxy cannot apply → Gateway
    /// (`NS/NAME`, the ancestor in their status) → why (a `scope: Global`
    /// rate limit while the file has no `[rate_limit_store]`: the routes
    /// it covers there are not served).
    pub access_policies: std::collections::BTreeMap<String, std::collections::BTreeMap<String, String>>,
    /// HTTPS Gateway listeners ([`ListenerSpec::name`]) whose hostname an
    /// Ingress serves on every bind serving them, none of their routes
    /// serving it there — so their certificates are never offered for it
    /// (review 16 L9) → why, naming the Ingress.
    pub hostnames: std::collections::BTreeMap<String, String>,
}

impl Feedback {
    /// Nothing to report.
    pub fn is_empty(&self) -> bool {
        self.listeners.is_empty()
            && self.routes.is_empty()
            && self.access_policies.is_empty()
            && self.hostnames.is_empty()
    }
}

/// A Gateway listener the proxy does not serve, on some or every bind.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UnservedListener {
    /// The ClientIPPolicy (`NS/NAME`) that is not applied, if that is why.
    pub policy: Option<String>,
    /// Why, naming the cause and the `[[listener]]`s where.
    pub message: String,
    /// The `[[listener]]`s that still serve it (with its policy), in file
    /// order; empty when none does (the listener is not served).
    pub served_on: Vec<String>,
}

/// What the proxy does not serve of one HTTPRoute on one parent.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RouteLoss {
    /// Routes of it (rule matches, per host) served there.
    pub served: usize,
    /// Routes of it not served there.
    pub unserved: usize,
    /// Routes of it served there, but not on every bind (counted in
    /// `served` too).
    pub narrowed: usize,
    /// Whether a host an Ingress keeps is a cause.
    pub host_owned: bool,
    /// Whether a route the proxy cannot serve as written is a cause (else
    /// its listener, or something the proxy lacks, such as a
    /// `[rate_limit_store]`).
    pub invalid: bool,
    /// The distinct reasons, in order.
    pub reasons: Vec<String>,
}

/// Application protocol of a listener.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// Plain HTTP.
    Http,
    /// HTTP over TLS, terminated by realip.
    Https,
}

/// One Gateway API listener, as the proxy should open it.
#[derive(Clone, Debug, PartialEq)]
pub struct ListenerSpec {
    /// Stable name: `gateway/NS/GATEWAY/LISTENER` or
    /// `listenerset/NS/SET/LISTENER`.
    pub name: String,
    /// The Gateway (`NS/NAME`) the listener is on, or the ListenerSet is
    /// attached to (a `[[listener]]`'s `gateways` admits it or not).
    pub gateway: String,
    /// Port clients connect to (the Service port).
    pub port: u16,
    /// HTTP or HTTPS.
    pub protocol: Protocol,
    /// Host name the listener is restricted to (exact or `*.` wildcard).
    pub hostname: Option<String>,
    /// Certificates ([`Cert::name`]) for HTTPS: the proxy offers them only
    /// on the binds serving this listener, and only for a TLS server name
    /// this listener's hostname is the most specific match of there.
    pub certs: Vec<String>,
    /// The client-IP chain of this listener (from a ClientIPPolicy);
    /// `None`: the configuration file's `[client_ip]`.
    pub client_ip: Option<ClientIp>,
    /// The proxy's `[[listener]]`s (by name) that admit this listener but
    /// do not serve it: there it conflicts with an older Gateway listener
    /// (hostname, protocol or client-IP chain), which keeps that bind.
    /// Empty: served on every bind that has its port and admits its
    /// Gateway.
    pub not_on: Vec<String>,
}

/// PROXY protocol on a listener.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ProxyMode {
    /// No PROXY header expected.
    #[default]
    Off,
    /// A PROXY header from a trusted sender is used when present.
    Optional,
    /// Every connection must begin with one.
    Required,
}

/// How X-Forwarded-For is sent upstream.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum XffMode {
    /// Append the hop that connected to us.
    #[default]
    Append,
    /// Only the resolved client.
    Replace,
}

/// A listener's client-IP chain (ClientIPPolicy), validated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientIp {
    /// `NS/NAME` of the policy.
    pub policy: String,
    /// PROXY protocol mode.
    pub proxy_protocol: ProxyMode,
    /// Who may send a PROXY header (CIDRs).
    pub proxy_protocol_from: Vec<String>,
    /// Trusted proxies (CIDRs), as `[client_ip] trusted`.
    pub trusted: Vec<String>,
    /// realip-core source names in order (`proxy-protocol`, `xff`,
    /// `forwarded`, `x-real-ip`, `header:NAME`); parse with
    /// `realip_core::Sources::parse`.
    pub sources: Vec<String>,
    /// realip-core strategy (`rightmost-untrusted`, `trusted-hops:N`).
    pub strategy: String,
    /// Answer 403 when no trustworthy client address was found.
    pub fail_closed: bool,
    /// What the upstream receives.
    pub forward: Forward,
}

/// Forwarding headers sent upstream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Forward {
    /// X-Forwarded-For handling.
    pub x_forwarded_for: XffMode,
    /// Send X-Real-IP (the resolved client).
    pub x_real_ip: bool,
    /// Send RFC 7239 Forwarded.
    pub forwarded: bool,
    /// Request headers removed when the hop that sent them is not trusted.
    pub strip_untrusted: Vec<String>,
}

impl Default for Forward {
    fn default() -> Forward {
        Forward { x_forwarded_for: XffMode::Append, x_real_ip: true, forwarded: false, strip_untrusted: Vec::new() }
    }
}

/// How a request path is matched.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PathMatch {
    /// The whole path, exactly.
    Exact(String),
    /// Path prefix on `/`-separated segments (`/foo` matches `/foo` and
    /// `/foo/bar`, not `/foobar`), as the Gateway API defines it.
    SegmentPrefix(String),
    /// Plain byte prefix (Ingress paths, served as prefixes).
    Prefix(String),
}

/// A header or query parameter that must have a value (exact, header
/// names case-insensitive).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ValueMatch {
    /// Header name (lower-case) or query parameter name (as written).
    pub name: String,
    /// Required value.
    pub value: String,
}

/// A request or response header change.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HeaderEdit {
    /// Replace (or add) these.
    pub set: Vec<(String, String)>,
    /// Append these.
    pub add: Vec<(String, String)>,
    /// Remove these (lower-case names).
    pub remove: Vec<String>,
}

/// How a path is rewritten by a redirect or rewrite.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PathRewrite {
    /// Replace the whole path.
    Full(String),
    /// Replace the part the route's prefix matched.
    Prefix(String),
}

/// Request headers only the proxy writes: the client-IP and forwarding
/// headers, framing, hop-by-hop headers, `Host` and `X-Request-Id` (the
/// id the access log and the upstream share: a filter must not forge it).
pub const PROTECTED_REQUEST: [&str; 17] = [
    "x-forwarded-for",
    "forwarded",
    "x-real-ip",
    "x-forwarded-proto",
    "x-forwarded-host",
    "x-forwarded-port",
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "upgrade",
    "proxy-authorization",
    "x-request-id",
];

/// The form a header name is compared in against [`PROTECTED_REQUEST`] and
/// the other protected lists: trimmed, lower case, `_` read as `-`. WSGI and
/// CGI apps (and others) read `X_Real_IP` as `X-Real-IP`
/// (`HTTP_X_REAL_IP`), so a filter that may not write `X-Real-IP` may not
/// write `X_Real_IP` either (review 20 MED-1).
pub fn protected_form(name: &str) -> String {
    name.trim().to_ascii_lowercase().replace('_', "-")
}

/// A Gateway API filter realip implements.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Filter {
    /// `RequestHeaderModifier`.
    RequestHeaders(HeaderEdit),
    /// `ResponseHeaderModifier`.
    ResponseHeaders(HeaderEdit),
    /// `RequestRedirect`: answered by the proxy, no backend involved.
    Redirect {
        /// New scheme.
        scheme: Option<String>,
        /// New host.
        hostname: Option<String>,
        /// New path.
        path: Option<PathRewrite>,
        /// New port.
        port: Option<u16>,
        /// 301, 302, 303, 307 or 308.
        status: u16,
    },
    /// `URLRewrite` before the request goes upstream.
    Rewrite {
        /// New Host header.
        hostname: Option<String>,
        /// New path.
        path: Option<PathRewrite>,
    },
}

/// Why the proxy cannot apply one rule's `filters` as written: the index
/// of the first such filter and a message naming its field (in the
/// HTTPRoute's spelling: `requestHeaderModifier.set[0]`, …) and value.
/// `None` when every filter can be applied.
///
/// The controller refuses such a rule (`Accepted: False, UnsupportedValue`)
/// and the proxy answers its requests with 500; both call this one
/// function, so they never disagree on what is valid. Checked: header
/// names and values are valid HTTP (no CR, LF or other control
/// characters), redirect schemes are `http` / `https`, host names are DNS
/// names, status codes are 301, 302, 303, 307 or 308, paths start with
/// `/` and hold no control character, space, `?` or `#`, and a rule has
/// at most one `RequestRedirect` or `URLRewrite`.
pub fn filters_problem(filters: &[Filter]) -> Option<(usize, String)> {
    let mut redirect_or_rewrite = false;
    for (i, f) in filters.iter().enumerate() {
        let why = match f {
            Filter::RequestHeaders(e) => header_edit_problem(e).map(|m| format!("requestHeaderModifier.{m}")),
            Filter::ResponseHeaders(e) => header_edit_problem(e).map(|m| format!("responseHeaderModifier.{m}")),
            Filter::Redirect { scheme, hostname, path, status, .. } => {
                let field = "requestRedirect";
                if redirect_or_rewrite {
                    Some(format!("{field}: a rule can have one RequestRedirect or URLRewrite, not two"))
                } else if let Some(s) = scheme.as_deref().filter(|s| !matches!(*s, "http" | "https")) {
                    Some(format!("{field}.scheme: \"{}\" is not http or https", s.escape_debug()))
                } else if !matches!(status, 301 | 302 | 303 | 307 | 308) {
                    Some(format!("{field}.statusCode: {status} is not 301, 302, 303, 307 or 308"))
                } else {
                    host_problem(hostname.as_deref(), field).or_else(|| path_problem(path.as_ref(), field))
                }
            }
            Filter::Rewrite { hostname, path } => {
                let field = "urlRewrite";
                if redirect_or_rewrite {
                    Some(format!("{field}: a rule can have one RequestRedirect or URLRewrite, not two"))
                } else {
                    host_problem(hostname.as_deref(), field).or_else(|| path_problem(path.as_ref(), field))
                }
            }
        };
        if let Some(why) = why {
            return Some((i, why));
        }
        redirect_or_rewrite |= matches!(f, Filter::Redirect { .. } | Filter::Rewrite { .. });
    }
    None
}

/// Whether `h` is a DNS host name (no wildcard, no port; a final dot
/// allowed).
pub fn valid_host(h: &str) -> bool {
    let h = h.strip_suffix('.').unwrap_or(h);
    !h.is_empty()
        && h.len() <= 253
        && h.split('.')
            .all(|l| !l.is_empty() && l.len() <= 63 && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
}

fn header_edit_problem(e: &HeaderEdit) -> Option<String> {
    let bad_name = |n: &str| http::HeaderName::from_bytes(n.trim().to_ascii_lowercase().as_bytes()).is_err();
    for (list, entries) in [("set", &e.set), ("add", &e.add)] {
        for (i, (n, v)) in entries.iter().enumerate() {
            if bad_name(n) {
                return Some(format!("{list}[{i}].name: \"{}\" is not a header name", n.escape_debug()));
            }
            if http::HeaderValue::from_str(v).is_err() {
                return Some(format!(
                    "{list}[{i}].value: \"{}\" (header {n}) is not a valid header value: CR, LF and other control \
                     characters are not allowed",
                    v.escape_debug()
                ));
            }
        }
    }
    let i = e.remove.iter().position(|n| bad_name(n))?;
    Some(format!("remove[{i}]: \"{}\" is not a header name", e.remove[i].escape_debug()))
}

fn host_problem(hostname: Option<&str>, field: &str) -> Option<String> {
    let h = hostname.filter(|h| !valid_host(h))?;
    Some(format!("{field}.hostname: \"{}\" is not a DNS host name", h.escape_debug()))
}

fn path_problem(path: Option<&PathRewrite>, field: &str) -> Option<String> {
    let (v, prefix, what) = match path? {
        PathRewrite::Full(v) => (v, false, "replaceFullPath"),
        PathRewrite::Prefix(v) => (v, true, "replacePrefixMatch"),
    };
    let at = format!("{field}.path.{what}: \"{}\"", v.escape_debug());
    if !(v.starts_with('/') || (v.is_empty() && prefix)) {
        return Some(format!("{at} does not start with /"));
    }
    if v.bytes().any(|b| b.is_ascii_control() || b == b' ' || b == b'?' || b == b'#') {
        return Some(format!("{at} holds a character a path cannot (control character, space, ? or #)"));
    }
    None
}

/// One backend of a route and its share of requests.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WeightedBackend {
    /// [`Backend::name`], or `None` for a reference that did not resolve:
    /// that share of requests is answered with 500, as the spec requires.
    pub backend: Option<String>,
    /// Relative weight (0 = never chosen).
    pub weight: u32,
}

/// Per-client token bucket. `Eq`: its rates are validated finite
/// numbers, never NaN.
#[derive(Clone, Debug, PartialEq)]
pub struct RateLimit {
    /// Sustained requests per second.
    pub per_second: f64,
    /// Bucket size.
    pub burst: f64,
    /// IPv6 clients share a bucket per prefix of this length.
    pub ipv6_prefix_length: u8,
    /// Shared across replicas (`rate_limit_store`) or per replica.
    pub global: bool,
    /// Whose bucket it is: `clientaccesspolicy:NS/NAME` or
    /// `ingress:NS/NAME`. Every route the policy (or the Ingress's
    /// annotations) applies to shares one bucket per client, as
    /// ingress-nginx's one zone per Ingress does: a client does not get a
    /// fresh budget per rule, match or host. (`:` never appears in an
    /// escaped route name, so no route's own scope is one of these.)
    pub scope: String,
}

impl Eq for RateLimit {}

/// Access rules keyed on the resolved client.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Access {
    /// `NS/NAME` of the ClientAccessPolicy, or `ingress/NS/NAME` for
    /// annotations.
    pub policy: String,
    /// Only these CIDRs (`None`: everyone).
    pub allow: Option<Vec<String>>,
    /// Never these CIDRs.
    pub deny: Vec<String>,
    /// Rate limit: the route's own policy's, else its Gateway's.
    pub rate_limit: Option<RateLimit>,
    /// The Gateway ClientAccessPolicy's rate limit when the route's own
    /// policy has one too (`rate_limit`): a request takes a token from
    /// both buckets and is refused when either is empty. The Gateway's
    /// bucket (its policy's scope) is shared by every route of the
    /// Gateway, so route policies can only tighten the Gateway owner's
    /// per-client budget, never add to it.
    pub gateway_rate_limit: Option<RateLimit>,
}

/// One routing rule, ready to serve. (`Eq`, so comparing two shared
/// routes that are the same allocation is a pointer comparison.)
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Route {
    /// Stable name (see the module invariants).
    pub name: String,
    /// `kind/NS/NAME` of the object that declared it.
    pub origin: String,
    /// Creation time of that object (`creationTimestamp` as RFC 3339 text,
    /// `~` when unknown): the proxy settles a host an Ingress and an
    /// HTTPRoute both name by age. Carried by each route (not kept as a
    /// map of every object in the set) so a change of one route costs
    /// nothing for the others.
    pub created: String,
    /// Listeners ([`ListenerSpec::name`]) it is attached to; empty: every
    /// listener of the configuration file (Ingress).
    pub listeners: Vec<String>,
    /// Host (exact or `*.` wildcard); `None` matches any.
    pub host: Option<String>,
    /// Path.
    pub path: PathMatch,
    /// Method, upper-case.
    pub method: Option<String>,
    /// Headers that must be present with these values. (This and the
    /// rule's query, filters and backends are shared, not copied, by every
    /// route one match of a rule expands to: an HTTPRoute is served as one
    /// route per parent, hostname and match, so a copy each would multiply
    /// a large rule by thousands.)
    pub headers: Arc<[ValueMatch]>,
    /// Query parameters that must be present with these values.
    pub query: Arc<[ValueMatch]>,
    /// Filters, in order.
    pub filters: Arc<[Filter]>,
    /// Backends and weights. Empty with no redirect: 500.
    pub backends: Arc<[WeightedBackend]>,
    /// Client access rules (shared, like the match data, by the routes one
    /// policy covers the same way: a policy's allow and deny lists are
    /// not copied per route).
    pub access: Option<Arc<Access>>,
    /// Largest request body (Ingress `proxy-body-size`).
    pub max_body: Option<u64>,
    /// Redirect plain HTTP to https (Ingress `ssl-redirect`).
    pub ssl_redirect: bool,
    /// Hosts (exact, or `*.` wildcards) within [`Route::host`] that this
    /// route does not serve: a more specific listener of its Gateway on the
    /// same port owns them (Gateway API listener isolation). Empty for
    /// Ingress routes.
    pub except_hosts: Arc<[String]>,
}

impl RouteSet {
    /// The Ingress result as a route set, with stable names
    /// `ingress/NS/NAME/HOST/PATH` (`*` for any host; a repeated host and
    /// path in one Ingress gets `#2`, `#3`…). Order is kept.
    pub fn from_ingress(d: &Desired) -> RouteSet {
        let mut seen: std::collections::BTreeMap<String, u32> = std::collections::BTreeMap::new();
        let routes = d
            .routes
            .iter()
            .map(|r| {
                let base = format!("ingress/{}/{}{}", r.ingress, r.host.as_deref().unwrap_or("*"), r.path);
                let n = seen.entry(base.clone()).or_insert(0);
                *n += 1;
                let name = if *n == 1 { base } else { format!("{base}#{n}") };
                let access = (r.allow.is_some() || !r.deny.is_empty() || r.rps.is_some()).then(|| {
                    Arc::new(Access {
                        policy: format!("ingress/{}", r.ingress),
                        allow: r.allow.clone(),
                        deny: r.deny.clone(),
                        rate_limit: r.rps.map(|rps| RateLimit {
                            per_second: rps,
                            burst: r.burst.unwrap_or(rps),
                            ipv6_prefix_length: 64,
                            global: r.rate_global,
                            scope: format!("ingress:{}", r.ingress),
                        }),
                        gateway_rate_limit: None,
                    })
                });
                Arc::new(Route {
                    name,
                    origin: format!("ingress/{}", r.ingress),
                    created: d.created.get(&r.ingress).cloned().unwrap_or_else(|| "~".into()),
                    listeners: Vec::new(),
                    host: r.host.clone(),
                    path: PathMatch::Prefix(r.path.clone()),
                    method: None,
                    headers: Arc::default(),
                    query: Arc::default(),
                    filters: Arc::default(),
                    backends: Arc::new([WeightedBackend { backend: Some(r.backend.clone()), weight: 1 }]),
                    access,
                    max_body: r.max_body,
                    ssl_redirect: r.ssl_redirect,
                    except_hosts: Arc::default(),
                })
            })
            .collect();
        let certs = d.certs.iter().map(|c| Cert { ingress: true, ..c.clone() }).collect();
        RouteSet { listeners: Vec::new(), routes, backends: d.backends.clone(), certs, pending: Vec::new() }
    }

    /// Both sets as one: Gateway listeners, then Ingress routes (which have
    /// no listener restriction) after the Gateway routes, backends and
    /// certificates merged by name.
    #[must_use]
    pub fn merge(mut self, other: RouteSet) -> RouteSet {
        self.listeners.extend(other.listeners);
        self.routes.extend(other.routes);
        self.pending.extend(other.pending);
        self.pending.sort();
        // By name, in sets: thousands of backends on each side.
        let mut have: std::collections::HashSet<String> = self.backends.iter().map(|b| b.name.clone()).collect();
        self.backends.extend(other.backends.into_iter().filter(|b| have.insert(b.name.clone())));
        self.backends.sort_by(|a, b| a.name.cmp(&b.name));
        // A Secret both sides name is one certificate, offered as both
        // sides' (`Cert::ingress` from either).
        let mut have: std::collections::HashMap<String, usize> =
            self.certs.iter().enumerate().map(|(i, c)| (c.name.clone(), i)).collect();
        for c in other.certs {
            if let Some(&i) = have.get(&c.name) {
                self.certs[i].ingress |= c.ingress;
                self.certs[i].hosts.extend(c.hosts);
                self.certs[i].hosts.sort_unstable();
                self.certs[i].hosts.dedup();
            } else {
                have.insert(c.name.clone(), self.certs.len());
                self.certs.push(c);
            }
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingress::Route as IngressRoute;

    fn ing(ingress: &str, host: Option<&str>, path: &str) -> IngressRoute {
        IngressRoute {
            ingress: ingress.into(),
            host: host.map(Into::into),
            path: path.into(),
            backend: "web/app:80".into(),
            allow: None,
            deny: vec![],
            rps: Some(5.0),
            burst: Some(25.0),
            rate_global: false,
            max_body: None,
            ssl_redirect: false,
        }
    }

    /// What the proxy cannot apply is found, with the field named and the
    /// value escaped (a CR / LF never reaches a status message raw).
    #[test]
    fn filters_the_proxy_cannot_apply_are_named() {
        // (filters, the first problem's index and a part of its message)
        type Case = (Vec<Filter>, Option<(usize, &'static str)>);
        let headers = |set: &[(&str, &str)], remove: &[&str]| HeaderEdit {
            set: set.iter().map(|(n, v)| ((*n).to_owned(), (*v).to_owned())).collect(),
            add: vec![],
            remove: remove.iter().map(|n| (*n).to_owned()).collect(),
        };
        let redirect = |hostname: Option<&str>, status: u16, path: Option<PathRewrite>| Filter::Redirect {
            scheme: None,
            hostname: hostname.map(Into::into),
            path,
            port: None,
            status,
        };
        let rewrite = Filter::Rewrite { hostname: Some("ok.example.com".into()), path: None };
        let table: Vec<Case> = vec![
            (vec![Filter::RequestHeaders(headers(&[("x-a", "1"), ("x-b", "v\tw é")], &["x-c"]))], None),
            (vec![redirect(Some("new.example.com."), 301, Some(PathRewrite::Prefix(String::new())))], None),
            (
                vec![Filter::RequestHeaders(headers(&[("x-a", "1"), ("x-b", "a\r\nx-admin: 1")], &[]))],
                Some((0, r#"requestHeaderModifier.set[1].value: "a\r\nx-admin: 1" (header x-b)"#)),
            ),
            (
                vec![rewrite.clone(), Filter::ResponseHeaders(headers(&[], &["ok", "bad name"]))],
                Some((1, r#"responseHeaderModifier.remove[1]: "bad name" is not a header name"#)),
            ),
            (
                vec![redirect(Some("evil.example.com\r\nSet-Cookie: a=b"), 302, None)],
                Some((0, r#"requestRedirect.hostname: "evil.example.com\r\nSet-Cookie: a=b" is not a DNS host name"#)),
            ),
            (vec![redirect(Some("*.example.com"), 302, None)], Some((0, "requestRedirect.hostname"))),
            (vec![redirect(None, 304, None)], Some((0, "requestRedirect.statusCode: 304"))),
            (
                vec![redirect(None, 302, Some(PathRewrite::Full("/a b".into())))],
                Some((0, "requestRedirect.path.replaceFullPath: \"/a b\" holds a character")),
            ),
            (vec![rewrite.clone(), redirect(None, 302, None)], Some((1, "requestRedirect: a rule can have one"))),
            (
                vec![Filter::Rewrite { hostname: None, path: Some(PathRewrite::Full("x".into())) }],
                Some((0, "urlRewrite.path.replaceFullPath: \"x\" does not start with /")),
            ),
        ];
        for (filters, want) in table {
            let got = filters_problem(&filters);
            match (&got, want) {
                (None, None) => {}
                (Some((i, m)), Some((wi, wm))) if *i == wi && m.contains(wm) => {
                    assert!(!m.contains('\r') && !m.contains('\n'), "{m}");
                }
                _ => panic!("{filters:?}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn ingress_route_names_do_not_depend_on_other_ingresses() {
        let one = Desired { routes: vec![ing("web/b", Some("b.example.com"), "/")], ..Desired::default() };
        let two = Desired {
            routes: vec![
                ing("web/a", None, "/"),
                ing("web/b", Some("b.example.com"), "/"),
                ing("web/b", Some("b.example.com"), "/"),
            ],
            ..Desired::default()
        };
        let n1: Vec<String> = RouteSet::from_ingress(&one).routes.into_iter().map(|r| r.name.clone()).collect();
        let n2: Vec<String> = RouteSet::from_ingress(&two).routes.into_iter().map(|r| r.name.clone()).collect();
        assert_eq!(n1, ["ingress/web/b/b.example.com/"]);
        assert_eq!(n2, ["ingress/web/a/*/", "ingress/web/b/b.example.com/", "ingress/web/b/b.example.com/#2"]);
        let r = &RouteSet::from_ingress(&one).routes[0];
        let rl = r.access.as_ref().and_then(|a| a.rate_limit.clone()).unwrap();
        assert_eq!((rl.per_second, rl.burst, rl.ipv6_prefix_length), (5.0, 25.0, 64));
    }
}
