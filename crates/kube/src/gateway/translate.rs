//! Gateway API objects and realip policies → [`RouteSet`] + status.
//!
//! Pure: [`translate`] reads borrowed objects and returns everything; the
//! watcher owns I/O. The rules, from the Gateway API v1.6.1 specification:
//! - a GatewayClass is ours when `controllerName` is
//!   [`CONTROLLER_NAME`] and its name is `--gateway-class` (another class
//!   of realip's controller is another proxy's; it gets no status from this
//!   one); it is Accepted unless it has `parametersRef`
//!   (realip takes no parameters: `InvalidParameters`); a Gateway is served
//!   when its class is the one configured (`--gateway-class`) and Accepted;
//! - listeners: HTTP and HTTPS (TLS terminated with `certificateRefs` →
//!   `kubernetes.io/tls` Secrets; another namespace needs a ReferenceGrant);
//!   other protocols get `Accepted: False, UnsupportedProtocol`; a listener
//!   on a port already used with another protocol, or the same port,
//!   protocol and hostname as an earlier listener, is `Conflicted` (one
//!   Gateway's own indistinct listeners on a port all are, none served:
//!   the spec picks no winner among them) — across
//!   every Gateway and ListenerSet of the class (the proxy merges them on a
//!   port; with the binds known, on a bind: listeners conflict only on a
//!   `[[listener]]` that has both ports and admits both Gateways, and one
//!   conflicting on some binds is served on the others, its status
//!   `Programmed` with `Conflicted` naming where it is not served); so is
//!   one whose hostname overlaps an earlier listener's of another Gateway
//!   (equal, a wildcard covering the other, or either without hostname:
//!   `HostnameConflict`), since listener isolation holds within a Gateway
//!   only; earlier = older (`creationTimestamp`, then `namespace/name`): a
//!   Gateway's own listeners date from the Gateway, a ListenerSet's from
//!   the later of the set and its Gateway, and within one Gateway its own
//!   listeners come before its ListenerSets';
//!   with the binds known, a listener on a port whose binds admit only
//!   other Gateways (`[[listener]] gateways`) is `Accepted: False,
//!   PortUnavailable` and not served, whatever its age;
//!   ListenerSets attach when the Gateway's `allowedListeners` admits
//!   their namespace (default: none);
//! - an HTTPRoute attaches to a parent's listeners that match its
//!   `sectionName` / `port`, admit its kind and namespace (`allowedRoutes`,
//!   default `Same`), and share a hostname (intersection, wildcards as
//!   the spec defines them); otherwise the parent entry says
//!   `NoMatchingParent`, `NotAllowedByListeners` or
//!   `NoMatchingListenerHostname`;
//! - a route using a feature realip does not implement (regex matches,
//!   RequestMirror, CORS, ExtensionRef, timeouts, retry, session
//!   persistence, backend filters…) is not served: `Accepted: False,
//!   UnsupportedValue` naming the field; so is one with a hostname the
//!   CRD refuses (`*`, empty, not lower-case DNS labels), and a Gateway
//!   with no listeners is `Accepted: False, Invalid`;
//! - `backendRefs` to Services (port required); another namespace needs a
//!   ReferenceGrant (`RefNotPermitted`); a missing Service or port is
//!   `BackendNotFound`, another kind `InvalidKind`. Unresolved backends
//!   keep their weight and that share of requests gets 500;
//! - precedence (ties broken in this order): more specific hostname
//!   (exact, then longer wildcard, then none), Exact path, longer prefix,
//!   method, more header matches, more query matches, older route
//!   (`creationTimestamp`), `namespace/name` alphabetical, rule order,
//!   match order;
//! - a ClientIPPolicy on a ListenerSet applies only when it narrows its
//!   Gateway's whole-Gateway policy (see [`widens`]), else that target is
//!   `Invalid` and the set's listeners take the Gateway's chain;
//! - policies (GEP-713 direct attachment): a policy whose target is missing
//!   is `Accepted: False, TargetNotFound`; two policies on the same target
//!   (same kind, name and sectionName): the older wins, the other is
//!   `Accepted: False, Conflicted`; a more specific target wins over a
//!   broader one (listener over Gateway; rule over route over Gateway);
//! - a listener that shares its port — or, with the proxy's binds known
//!   ([`Inputs::binds`]), a `[[listener]]` (per bind, as above) — with an earlier served
//!   listener of another client-IP chain is `Conflicted` and not served
//!   (one bind is one stream of connections; the older keeps it), and its
//!   ClientIPPolicy is `Conflicted` for that target; with the binds known, a
//!   listener no bind serves is `Programmed: False` (and its Gateway); one edited into an invalid one keeps its
//!   last valid version in force ([`Inputs::last_good_ip`]) and says so;
//!   one invalid with no last valid version fails closed: the listeners it
//!   would apply to are not served (`Programmed: False`), and a
//!   ClientAccessPolicy in that state lets nobody in on its targets;
//! - an HTTPS listener with no certificate loaded is `Programmed: False`
//!   (one bad reference among good ones: `ResolvedRefs: False`, served
//!   with the others); a Gateway or ListenerSet with an accepted listener
//!   that is not programmed is `Programmed: False`; a route attached only
//!   to such listeners is `Accepted: False, Pending` (counted in
//!   `attachedRoutes`; on a listener no bind serves it is named to the
//!   proxy in [`RouteSet::pending`], once per route and listener, which
//!   the proxy logs unserved, and none of its routes is handed over
//!   there: an HTTPRoute expands to a route per parent, hostname and
//!   match, and those would serve nothing);
//!   so does a ClientAccessPolicy ([`Inputs::last_good_access`]); a
//!   ClientAccessPolicy target that is a Gateway with `sectionName` is
//!   `Invalid` (that target only, the policy's others attach);
//! - `ReplacePrefixMatch` needs `PathPrefix` matches (else
//!   `UnsupportedValue`); route names are unique (`/HOST` when a rule is
//!   served for several hosts, `#N` for further parents).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use k8s_openapi::api::core::v1::{Namespace, Secret, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};

use super::status::{Cond, ListenerStatus, ObjectKey, ObjectStatus, RefStatus, Status};
use super::types::{
    ClientAccessPolicy, ClientIpPolicy, Gateway, GatewayClass, HttpBackendRef, HttpRoute, HttpRouteFilter,
    HttpRouteRule, Listener, ListenerSet, ParentReference, PathModifier, ReferenceGrant, RouteNamespaces, SourceSpec,
    StrategySpec, GATEWAY_GROUP,
};
use super::CONTROLLER_NAME;
use crate::ingress::{service_backend, tls_secret, Backend, BackendError, Cert, PortRef, Positions, ServiceIndex};
use crate::routes::{
    Access, Bind, ClientIp, Filter, Forward, HeaderEdit, ListenerSpec, PathMatch, PathRewrite, Protocol, ProxyMode,
    RateLimit, Route, RouteSet, ValueMatch, WeightedBackend, XffMode,
};

mod ancestors;
mod unserved;

/// Everything the translation reads, borrowed from the watcher's stores.
#[derive(Clone, Debug, Default)]
pub struct Inputs<'a> {
    /// The GatewayClass name served (`--gateway-class`).
    pub class: &'a str,
    /// Addresses of the publish Service's load balancer (Gateway status).
    pub addresses: Vec<String>,
    /// GatewayClasses.
    pub classes: Vec<&'a GatewayClass>,
    /// Gateways.
    pub gateways: Vec<&'a Gateway>,
    /// ListenerSets.
    pub listener_sets: Vec<&'a ListenerSet>,
    /// HTTPRoutes.
    pub routes: Vec<&'a HttpRoute>,
    /// Routes of kinds realip does not serve, with their kind (one of
    /// [`super::types::UNSERVED_ROUTE_KINDS`]): they only get status.
    pub unserved_routes: Vec<(&'static str, &'a super::types::UnservedRoute)>,
    /// ReferenceGrants.
    pub grants: Vec<&'a ReferenceGrant>,
    /// [`Inputs::grants`] indexed by what they allow, built on the first
    /// look-up ([`Inputs::granted`]).
    pub grant_index: std::sync::OnceLock<GrantIndex>,
    /// ClientIPPolicies.
    pub ip_policies: Vec<&'a ClientIpPolicy>,
    /// ClientAccessPolicies.
    pub access_policies: Vec<&'a ClientAccessPolicy>,
    /// Namespaces (labels, for `from: Selector`).
    pub namespaces: Vec<&'a Namespace>,
    /// Services.
    pub services: Vec<&'a Service>,
    /// EndpointSlices.
    pub slices: Vec<&'a EndpointSlice>,
    /// TLS Secrets.
    pub secrets: Vec<&'a Secret>,
    /// The proxy's `[[listener]]`s (which Gateway listener ports each
    /// serves); `None` when not known (tooling, tests without a proxy): then
    /// every valid listener is taken as served. With them, a Gateway
    /// listener no bind serves is `Programmed: False` (and its Gateway or
    /// ListenerSet too), and ClientIPPolicies on listeners that one bind
    /// serves together must agree.
    pub binds: Option<Vec<Bind>>,
    /// The ClientIPPolicies in force after the previous translation
    /// ([`Translation::ip_in_force`], by `NS/NAME`): a policy edited into
    /// an invalid one keeps its last valid version in force (and says so
    /// in its status), so a bad edit never weakens a running chain.
    pub last_good_ip: BTreeMap<String, ClientIp>,
    /// The ClientAccessPolicies in force after the previous translation
    /// ([`Translation::access_in_force`], by `NS/NAME`): an invalid edit
    /// keeps the last valid allow/deny lists and rate limit (never fails
    /// open by dropping the lists).
    pub last_good_access: BTreeMap<String, Access>,
    /// The most routes the HTTPRoutes of one namespace may expand to
    /// together (`realip proxy --kubernetes-max-routes-per-namespace`);
    /// `None`: [`MAX_ROUTES_PER_NAMESPACE`].
    pub max_routes_per_namespace: Option<usize>,
    /// What this proxy last decided for each object's status (the watch's
    /// settled statuses): an entry it wrote that the object's status does
    /// not show yet (the watch has not seen that write come back) is still
    /// its own to drop when it writes it no more.
    pub previous: Option<&'a foldhash::HashMap<ObjectKey, Arc<ObjectStatus>>>,
}

/// The result: what to serve and what to write into status.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Translation {
    /// Listeners, routes, backends and certificates to serve.
    pub routes: RouteSet,
    /// Status of every object realip owns, sorted by object. (Shared: an
    /// HTTPRoute's is kept from one translation to the next while it does
    /// not change, see [`RouteCache`].)
    pub statuses: Vec<Arc<ObjectStatus>>,
    /// Each existing ClientIPPolicy's chain in force (`NS/NAME`): its own
    /// when valid, else its last valid one; feed it back as
    /// [`Inputs::last_good_ip`].
    pub ip_in_force: BTreeMap<String, ClientIp>,
    /// Each existing ClientAccessPolicy in force (`NS/NAME`), as
    /// [`Translation::ip_in_force`]; feed it back as
    /// [`Inputs::last_good_access`].
    pub access_in_force: BTreeMap<String, Access>,
}

/// A False `Accepted` / `ResolvedRefs` / `Programmed` condition, typed, for
/// logs (no string matching on messages).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// The object.
    pub object: ObjectKey,
    /// The condition type.
    pub condition: &'static str,
    /// The spec's reason.
    pub reason: &'static str,
    /// Detail.
    pub message: String,
}

impl Translation {
    /// Every False Accepted / ResolvedRefs condition and every True
    /// Conflicted one.
    pub fn problems(&self) -> Vec<Problem> {
        self.statuses.iter().flat_map(|s| problems_of(s)).collect()
    }
}

/// The problems ([`Translation::problems`]) of one status.
pub fn problems_of(s: &ObjectStatus) -> impl Iterator<Item = Problem> + '_ {
    let conditions: Box<dyn Iterator<Item = &Cond>> = match &s.status {
        Status::Class { conditions } => Box::new(conditions.iter()),
        Status::Gateway { conditions, listeners, .. } => {
            Box::new(conditions.iter().chain(listeners.iter().flat_map(|l| &l.conditions)))
        }
        Status::Route { parents: refs, .. } | Status::Policy { ancestors: refs, .. } => {
            Box::new(refs.iter().flat_map(|r| &r.conditions))
        }
    };
    conditions
        .filter(|c| {
            let bad = if c.kind == "Conflicted" { c.status } else { !c.status };
            bad && matches!(c.kind, "Accepted" | "ResolvedRefs" | "Conflicted")
        })
        .map(|c| Problem { object: s.key.clone(), condition: c.kind, reason: c.reason, message: c.message.clone() })
}

fn ns_of(m: &ObjectMeta) -> String {
    m.namespace.clone().unwrap_or_else(|| "default".into())
}

fn name_of(m: &ObjectMeta) -> String {
    m.name.clone().unwrap_or_default()
}

/// Creation time as sortable text (RFC 3339 UTC sorts as time); missing
/// sorts last.
fn created(m: &ObjectMeta) -> String {
    m.creation_timestamp.as_ref().map_or_else(|| "~".into(), |t| t.0.to_string())
}

fn group_is(g: Option<&str>, want: &str) -> bool {
    g.unwrap_or(GATEWAY_GROUP) == want
}

/// What one ReferenceGrant entry pair allows: (namespace of the grant and
/// of the target, `from` kind, `from` namespace, `to` group, `to` kind).
type GrantKey = (String, String, String, String, String);

/// The ReferenceGrants by [`GrantKey`]: the names they allow (`None`:
/// every name). Built once per translation, so a check is one look-up, not
/// a scan of every grant's `from` × `to` lists per reference (review 20
/// HIGH-1: a thousand grants and routes of many cross-namespace
/// backendRefs cost seconds per translation).
#[derive(Clone, Debug, Default)]
pub struct GrantIndex(foldhash::HashMap<GrantKey, Option<foldhash::HashSet<String>>>);

impl GrantIndex {
    fn new(grants: &[&ReferenceGrant]) -> GrantIndex {
        let mut index: foldhash::HashMap<GrantKey, Option<foldhash::HashSet<String>>> = foldhash::HashMap::default();
        for g in grants {
            let ns = g.metadata.namespace.clone().unwrap_or_default();
            for f in g.spec.from.iter().filter(|f| f.group == GATEWAY_GROUP) {
                for t in &g.spec.to {
                    let key = (ns.clone(), f.kind.clone(), f.namespace.clone(), t.group.clone(), t.kind.clone());
                    let names = index.entry(key).or_insert_with(|| Some(foldhash::HashSet::default()));
                    match (&t.name, names) {
                        (None, names) => *names = None,
                        (Some(n), Some(set)) => {
                            set.insert(n.clone());
                        }
                        (Some(_), None) => {}
                    }
                }
            }
        }
        GrantIndex(index)
    }
}

impl Inputs<'_> {
    /// Whether a ReferenceGrant in `to_ns` lets `from_kind` objects of
    /// `from_ns` refer to `to_group`/`to_kind` `to_name`.
    pub(crate) fn granted(
        &self,
        from_kind: &str,
        from_ns: &str,
        to_group: &str,
        to_kind: &str,
        to_ns: &str,
        to_name: &str,
    ) -> bool {
        let index = self.grant_index.get_or_init(|| GrantIndex::new(&self.grants));
        let key = (to_ns.to_owned(), from_kind.to_owned(), from_ns.to_owned(), to_group.to_owned(), to_kind.to_owned());
        index.0.get(&key).is_some_and(|names| names.as_ref().is_none_or(|n| n.contains(to_name)))
    }
}

fn selector_matches(sel: &LabelSelector, labels: &BTreeMap<String, String>) -> bool {
    let exprs_ok = sel.match_expressions.iter().flatten().all(|e| {
        let v = labels.get(&e.key);
        let values = e.values.clone().unwrap_or_default();
        match e.operator.as_str() {
            "In" => v.is_some_and(|v| values.contains(v)),
            "NotIn" => v.is_none_or(|v| !values.contains(v)),
            "Exists" => v.is_some(),
            "DoesNotExist" => v.is_none(),
            _ => false,
        }
    });
    exprs_ok && sel.match_labels.iter().flatten().all(|(k, v)| labels.get(k) == Some(v))
}

/// `from: All | Same | Selector` for an object in `ns` against a parent in
/// `parent_ns`; `default_from` when unset.
fn namespace_allowed(
    rn: Option<&RouteNamespaces>,
    default_from: &str,
    ns: &str,
    parent_ns: &str,
    namespaces: &[&Namespace],
) -> bool {
    match rn.and_then(|r| r.from.as_deref()).unwrap_or(default_from) {
        "All" => true,
        "Same" => ns == parent_ns,
        "Selector" => {
            let Some(sel) = rn.and_then(|r| r.selector.as_ref()) else { return false };
            let mut labels = namespaces
                .iter()
                .find(|n| n.metadata.name.as_deref() == Some(ns))
                .and_then(|n| n.metadata.labels.clone())
                .unwrap_or_default();
            // Every API server since 1.22 sets this label on every
            // namespace (and it cannot be changed), so it holds even for a
            // namespace not in the store (examples, tooling).
            labels.insert("kubernetes.io/metadata.name".to_owned(), ns.to_owned());
            selector_matches(sel, &labels)
        }
        _ => false, // "None"
    }
}

/// Does `host` (exact) fall under `pattern` (exact or `*.` wildcard)?
fn host_under(host: &str, pattern: &str) -> bool {
    match pattern.strip_prefix('*') {
        Some(suffix) => host.len() > suffix.len() && host.ends_with(suffix),
        None => host == pattern,
    }
}

/// Why `h` is not a hostname the CRD schema admits (an API server with the
/// schema refuses it; without it, realip refuses it the same way): 1 to
/// 253 characters, an optional `*.` then lower-case DNS labels (`*` alone
/// and the empty string are not hostnames).
fn hostname_problem(h: &str) -> Option<&'static str> {
    let labels = h.strip_prefix("*.").unwrap_or(h);
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    if h.is_empty() {
        Some("empty")
    } else if h.len() > 253 {
        Some("longer than 253 characters")
    } else if !labels.split('.').all(label_ok) {
        Some("not a hostname: an optional `*.` then lower-case DNS labels (letters, digits, `-`)")
    } else {
        None
    }
}

/// The hostnames a route serves on a listener (Gateway API hostname
/// intersection); `Some(vec![])` means "any host", `None` no intersection.
fn intersect_hosts(listener: Option<&str>, route: &[String]) -> Option<Vec<Option<String>>> {
    let Some(l) = listener else {
        return Some(if route.is_empty() { vec![None] } else { route.iter().cloned().map(Some).collect() });
    };
    if route.is_empty() {
        return Some(vec![Some(l.to_owned())]);
    }
    let mut out = Vec::new();
    for h in route {
        let got = if h == l || host_under(h, l) {
            Some(h.clone()) // route as specific or more
        } else if host_under(l, h) {
            Some(l.to_owned()) // listener more specific
        } else if let (Some(hs), Some(ls)) = (h.strip_prefix('*'), l.strip_prefix('*')) {
            // both wildcards: the longer one, if one is under the other
            if hs.ends_with(ls) {
                Some(h.clone())
            } else if ls.ends_with(hs) {
                Some(l.to_owned())
            } else {
                None
            }
        } else {
            None
        };
        if let Some(g) = got {
            if !out.contains(&Some(g.clone())) {
                out.push(Some(g));
            }
        }
    }
    (!out.is_empty()).then_some(out)
}

/// Whether listener hostname `s` is more specific than `l` (`None`: any
/// host): an exact host under a wildcard, a longer wildcard under a
/// shorter one, anything than none.
fn more_specific(s: &str, l: Option<&str>) -> bool {
    let Some(l) = l else { return true };
    let Some(ls) = l.strip_prefix('*') else { return false };
    match s.strip_prefix('*') {
        Some(ss) => ss.len() > ls.len() && ss.ends_with(ls),
        None => host_under(s, l),
    }
}

/// Whether two listener hostnames (`None`: any host) can match one
/// request host: equal, one within the other (wildcard), or either none.
pub(crate) fn overlap(a: Option<&str>, b: Option<&str>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => a == b || more_specific(a, Some(b)) || more_specific(b, Some(a)),
        _ => true,
    }
}

/// The hostnames of listener `i`'s more specific siblings: listeners of
/// the same Gateway (its ListenerSets included), valid or not — a listener
/// that is not programmed (a conflict, a ClientIPPolicy conflict) still
/// owns its hostname, so its requests are answered 404 rather than handed
/// to a wildcard sibling's routes under another chain — on one of its streams of
/// connections ([`streams`]): the same port, or another port a bind serves
/// together with it (one `[[listener]]` merging `gateway_ports` is one
/// stream, as for conflicts). A sibling sharing only some of its binds
/// still counts on all of them: its hosts are left out rather than handed
/// to the less specific listener's routes.
/// `gateway` is the indexes of every listener of `i`'s Gateway (see
/// [`Layout`]): only those are looked at, and none for a listener with an
/// exact hostname (nothing is more specific than it).
fn siblings(listeners: &[Lst<'_>], gateway: &[usize], i: usize) -> Vec<String> {
    let l = &listeners[i];
    let own = l.spec.hostname.as_deref();
    if own.is_some_and(|h| !h.starts_with('*')) {
        return Vec::new();
    }
    gateway
        .iter()
        .map(|&j| (j, &listeners[j]))
        .filter(|&(j, s)| j != i && s.gateway == l.gateway)
        .filter(|(_, s)| s.spec.port == l.spec.port || s.streams.iter().any(|x| l.streams.contains(x)))
        .filter_map(|(_, s)| s.spec.hostname.clone())
        .filter(|h| more_specific(h, own))
        .collect()
}

/// Gateway API listener isolation (`GatewayHTTPListenerIsolation`): a
/// request is handled only by the routes of the most specific listener on
/// its port that matches its host. The hosts `hosts` a route serves on a
/// listener whose more specific siblings ([`siblings`]) have hostnames
/// `siblings`, each with the hosts within it those siblings own; a host
/// wholly within a sibling's hostname is left out. So a route on
/// `*.example.com` does not serve `a.example.com` when another listener
/// on the port has hostname `a.example.com`.
fn isolated(siblings: &[String], hosts: &[Option<String>]) -> Vec<(Option<String>, Vec<String>)> {
    if siblings.is_empty() {
        return hosts.iter().map(|h| (h.clone(), Vec::new())).collect();
    }
    let mut out = Vec::new();
    for h in hosts {
        let Some(h) = h else {
            let mut except = siblings.to_vec();
            except.sort();
            except.dedup();
            out.push((None, except));
            continue;
        };
        // Wholly within a sibling's hostname: every request for it goes there.
        if siblings.iter().any(|s| h == s || more_specific(h, Some(s))) {
            continue;
        }
        let mut except: Vec<String> = siblings.iter().filter(|s| more_specific(s, Some(h))).cloned().collect();
        except.sort();
        except.dedup();
        out.push((Some(h.clone()), except));
    }
    out
}

/// One listener being validated, with where it came from.
#[derive(Debug)]
struct Lst<'a> {
    /// `Gateway` or `ListenerSet`.
    parent_kind: &'static str,
    parent_ns: String,
    parent_name: String,
    /// The Gateway it ends up on.
    gateway: (String, String),
    spec: &'a Listener,
    full_name: String,
    ok: bool,
    kinds: Vec<String>,
    /// HTTPRoutes attached.
    attached: u32,
    conds: Vec<Cond>,
    certs: Vec<String>,
    /// Why it is not served although accepted: the ClientIPPolicy in force
    /// on it is invalid with no last valid version (fail closed).
    closed: Option<String>,
    /// The streams of connections it would be served on ([`streams`]).
    streams: Vec<Stream>,
    /// The proxy's binds are known and none serves it (its port is in
    /// no `gateway_ports`, or HTTPS without `tls.kubernetes`): it is
    /// handed over (`emitted`) but routes attached to it are only named
    /// ([`RoutePart::pending`]).
    unbound: bool,
    /// The streams where it conflicts with an older listener, with the
    /// reason and message: it is not served there. Lost on all of them,
    /// it is `Conflicted` and not served at all; on some, it is served on
    /// the others.
    lost: BTreeMap<Stream, (&'static str, String)>,
}

/// One stream of connections of the proxy: a `[[listener]]` (by index in
/// [`Inputs::binds`]), or a port when the binds are not known or none has
/// it (then every listener on the port is taken as one stream).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Stream {
    Bind(usize),
    Port(i32),
}

/// The streams Gateway `gateway`'s (`NS/NAME`) listener on `port` is served
/// on: the binds that have the port in their `gateway_ports` and admit the
/// Gateway (`gateways`); the port itself when the binds are not known or
/// none has it. Two listeners conflict only on a stream they share: on
/// binds that never serve both, they are as apart as on two addresses.
fn streams(binds: Option<&[Bind]>, port: i32, gateway: &str) -> Vec<Stream> {
    let Some((binds, p)) = binds.zip(u16::try_from(port).ok()) else { return vec![Stream::Port(port)] };
    let having: Vec<(usize, &Bind)> = binds.iter().enumerate().filter(|(_, b)| b.gateway_ports.contains(&p)).collect();
    if having.is_empty() {
        return vec![Stream::Port(port)];
    }
    having.into_iter().filter(|(_, b)| b.admits(gateway)).map(|(i, _)| Stream::Bind(i)).collect()
}

/// Where on `stream` an older listener on port `old` meets one on `port`,
/// for messages.
fn stream_at(stream: Stream, old: i32, port: i32, binds: Option<&[Bind]>) -> String {
    let bind = match stream {
        Stream::Bind(i) => binds.and_then(|b| b.get(i)),
        Stream::Port(_) => None,
    };
    match bind {
        None => format!("port {port}"),
        Some(b) if old == port => format!("port {port} of the proxy's [[listener]] `{}`", b.name),
        Some(b) => format!(
            "port {old} (the proxy's [[listener]] `{}` (gateway_ports {:?}) serves ports {old} and {port})",
            b.name, b.gateway_ports
        ),
    }
}

impl Lst<'_> {
    /// Whether it is served on `s` (as far as conflicts go).
    fn on(&self, s: Stream) -> bool {
        self.streams.contains(&s) && !self.lost.contains_key(&s)
    }

    /// The names of the binds it conflicts on, for the proxy
    /// ([`ListenerSpec::not_on`]).
    fn not_on(&self, binds: Option<&[Bind]>) -> Vec<String> {
        let Some(binds) = binds else { return Vec::new() };
        self.lost
            .keys()
            .filter_map(|s| match s {
                Stream::Bind(i) => binds.get(*i).map(|b| b.name.clone()),
                Stream::Port(_) => None,
            })
            .collect()
    }

    /// Records that it conflicts on `s`. Returns whether it has lost every
    /// stream it would be served on (then it is not served at all).
    fn lose(&mut self, s: Stream, reason: &'static str, why: String) -> bool {
        self.lost.entry(s).or_insert((reason, why));
        self.streams.iter().all(|s| self.lost.contains_key(s))
    }

    /// Accepted and programmed: its routes are served.
    fn served(&self) -> bool {
        self.ok && self.conds.iter().any(|c| c.kind == "Programmed" && c.status)
    }

    /// Handed to the proxy: accepted, and with a certificate when HTTPS.
    /// (One no bind serves is handed over too: the proxy logs its routes
    /// as unserved, naming the `gateway_ports` to add.)
    fn emitted(&self) -> bool {
        self.ok
            && self.closed.is_none()
            && !self.kinds.is_empty()
            && (self.spec.protocol != "HTTPS" || !self.certs.is_empty())
    }

    /// Why an accepted listener is not programmed (its Programmed message).
    fn unprogrammed(&self) -> Option<&str> {
        let c = self.conds.iter().find(|c| c.kind == "Programmed")?;
        (self.ok && !c.status).then_some(c.message.as_str())
    }
}

/// Why listener `l` conflicts with the older listener `e` on `stream`
/// (`e` served there): another protocol, the same hostname, or (another
/// Gateway's) an overlapping one; `None` when they do not.
fn conflict_with(e: &Lst<'_>, l: &Lst<'_>, stream: Stream, binds: Option<&[Bind]>) -> Option<(&'static str, String)> {
    #[cfg(test)]
    CONFLICT_CHECKS.with(|c| c.set(c.get() + 1));
    let spec = l.spec;
    let at = || stream_at(stream, e.spec.port, spec.port, binds);
    if e.spec.protocol != spec.protocol {
        Some(("ProtocolConflict", format!("{} is used by the older {} with {}", at(), e.full_name, e.spec.protocol)))
    } else if e.spec.hostname == spec.hostname {
        Some(("HostnameConflict", format!("the older {} on {} has the same protocol and hostname", e.full_name, at())))
    } else if e.gateway != l.gateway && overlap(e.spec.hostname.as_deref(), spec.hostname.as_deref()) {
        // Merged on one bind, Gateways must stay as apart as on
        // distinct addresses: listener isolation holds within one
        // Gateway only, so another Gateway's overlapping listener
        // would take hosts (or paths of them) from this one.
        let name = |h: Option<&str>| h.map_or_else(|| "no hostname (any host)".to_owned(), |h| format!("hostname {h}"));
        Some((
            "HostnameConflict",
            format!(
                "the older {} of Gateway {}/{} on {} has {}, which overlaps this listener's {}: listeners of \
                 different Gateways on one bind must not share hosts",
                e.full_name,
                e.gateway.0,
                e.gateway.1,
                at(),
                name(e.spec.hostname.as_deref()),
                name(spec.hostname.as_deref())
            ),
        ))
    } else {
        None
    }
}

#[cfg(test)]
thread_local! {
    /// Listener pairs compared for conflicts ([`conflict_with`]) on this
    /// thread.
    pub(super) static CONFLICT_CHECKS: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
    /// Compare every pair instead (the index taken out), on this thread.
    pub(super) static FORCE_LINEAR: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// The first listener, and the first of another Gateway than that one's
/// (indexes).
type FirstTwo = (usize, Option<usize>);

fn first_two(ft: &mut Option<FirstTwo>, listeners: &[Lst<'_>], i: usize) {
    match ft {
        None => *ft = Some((i, None)),
        Some((first, other @ None)) if listeners[*first].gateway != listeners[i].gateway => *other = Some(i),
        Some(_) => {}
    }
}

/// Of `ft`, the first listener not of `gateway`.
fn not_of(ft: Option<&FirstTwo>, listeners: &[Lst<'_>], gateway: &(String, String)) -> Option<usize> {
    let &(first, other) = ft?;
    if listeners[first].gateway == *gateway {
        other
    } else {
        Some(first)
    }
}

/// The listeners that claim each stream of connections (accepted, with a
/// route kind, and served there), indexed so a new listener finds the
/// older one it conflicts with among a few ([`Claims::candidates`]), not
/// by comparing itself with every listener of the class (review 18 L6:
/// quadratic in listeners per port).
#[derive(Default)]
struct Claims {
    streams: BTreeMap<Stream, StreamClaims>,
}

#[derive(Default)]
struct StreamClaims {
    /// Every claiming listener, in order.
    members: Vec<usize>,
    /// The first two (see [`FirstTwo`]) of all.
    all: Option<FirstTwo>,
    /// By hostname.
    by_host: foldhash::HashMap<Option<String>, FirstTwo>,
    /// By suffix `.S` of their hostname (without a leading `*`, and
    /// shorter than it): those more specific than `*.S`.
    under: foldhash::HashMap<String, FirstTwo>,
    /// One has a hostname starting with `*` but not `*.` (the CRDs refuse
    /// it; realip does not check): candidates are every member.
    odd: bool,
}

/// `h` without its `*` when it starts with `*.`, `h` when it has no `*`
/// there; `None` for another wildcard.
fn wildcard_base(h: &str) -> Option<&str> {
    match h.strip_prefix('*') {
        Some(rest) => rest.starts_with('.').then_some(rest),
        None => Some(h),
    }
}

/// The suffixes of `base` that start with a `.` and are shorter than it.
fn dot_suffixes(base: &str) -> impl Iterator<Item = &str> {
    base.char_indices().filter(|&(k, c)| k > 0 && c == '.').map(move |(k, _)| &base[k..])
}

impl Claims {
    /// Records that listener `i` (checked) claims the streams it is served on.
    fn add(&mut self, listeners: &[Lst<'_>], i: usize) {
        let l = &listeners[i];
        if !l.ok || l.kinds.is_empty() {
            return;
        }
        for &stream in l.streams.iter().filter(|&&s| l.on(s)) {
            let c = self.streams.entry(stream).or_default();
            c.members.push(i);
            first_two(&mut c.all, listeners, i);
            let mut slot = c.by_host.get(&l.spec.hostname).copied();
            first_two(&mut slot, listeners, i);
            if let Some(slot) = slot {
                c.by_host.insert(l.spec.hostname.clone(), slot);
            }
            let Some(h) = l.spec.hostname.as_deref() else { continue };
            let Some(base) = wildcard_base(h) else {
                c.odd = true;
                continue;
            };
            for suffix in dot_suffixes(base) {
                let mut slot = c.under.get(suffix).copied();
                first_two(&mut slot, listeners, i);
                if let Some(slot) = slot {
                    c.under.insert(suffix.to_owned(), slot);
                }
            }
        }
    }

    /// The listeners among which is the first one `l` conflicts with on
    /// `stream`, if it conflicts there ([`conflict_with`]): the first
    /// (another protocol), the one with its hostname, and those of another
    /// Gateway whose hostname may overlap its: none, a wildcard covering
    /// it, the first more specific than it. `None`: look at every member.
    fn candidates(&self, stream: Stream, l: &Lst<'_>, listeners: &[Lst<'_>]) -> Option<Vec<usize>> {
        let Some(c) = self.streams.get(&stream) else { return Some(Vec::new()) };
        #[cfg(test)]
        if FORCE_LINEAR.with(std::cell::Cell::get) {
            return None;
        }
        if c.odd {
            return None;
        }
        let g = &l.gateway;
        let mut out: Vec<usize> = c.all.iter().map(|ft| ft.0).collect();
        out.extend(c.by_host.get(&l.spec.hostname).map(|ft| ft.0));
        let Some(h) = l.spec.hostname.as_deref() else {
            out.extend(not_of(c.all.as_ref(), listeners, g));
            return Some(out);
        };
        out.extend(not_of(c.by_host.get(&None), listeners, g));
        let base = wildcard_base(h)?;
        for suffix in dot_suffixes(base) {
            out.extend(not_of(c.by_host.get(&Some(format!("*{suffix}"))), listeners, g));
        }
        if base.len() < h.len() {
            out.extend(not_of(c.under.get(base), listeners, g));
        }
        Some(out)
    }
}

#[allow(clippy::too_many_lines)] // one check per spec rule, in order
fn check_listener<'a>(
    l: &mut Lst<'a>,
    earlier: &[Lst<'a>],
    claims: &Claims,
    inp: &Inputs<'_>,
    certs: &mut BTreeMap<String, Cert>,
) {
    let spec = l.spec;
    let mut accepted: Option<(&'static str, String)> = None;
    let mut resolved: Option<(&'static str, String)> = None;
    let mut conflicted: Option<(&'static str, String)> = None;
    if !matches!(spec.protocol.as_str(), "HTTP" | "HTTPS") {
        accepted = Some(("UnsupportedProtocol", format!("protocol {} is not supported (HTTP, HTTPS)", spec.protocol)));
    } else if !(1..=65535).contains(&spec.port) {
        accepted = Some(("PortUnavailable", format!("port {} is not a TCP port", spec.port)));
    } else if let Some(k) = spec.other.keys().next() {
        accepted = Some(("UnsupportedValue", format!("listener field `{k}` is not supported")));
    }
    // Route kinds.
    let mut kinds = Vec::new();
    match spec.allowed_routes.as_ref().and_then(|a| a.kinds.as_ref()) {
        None => kinds.push("HTTPRoute".to_owned()),
        Some(list) => {
            for k in list {
                if group_is(k.group.as_deref(), GATEWAY_GROUP) && k.kind == "HTTPRoute" {
                    kinds.push(k.kind.clone());
                } else {
                    resolved =
                        Some(("InvalidRouteKinds", format!("route kind {} is not supported (HTTPRoute)", k.kind)));
                }
            }
        }
    }
    // TLS.
    if accepted.is_none() && spec.protocol == "HTTPS" {
        match &spec.tls {
            None => accepted = Some(("Invalid", "an HTTPS listener needs tls.certificateRefs".into())),
            Some(tls) if tls.mode.as_deref().unwrap_or("Terminate") != "Terminate" => {
                accepted = Some(("UnsupportedValue", "tls.mode Passthrough is not supported on HTTPS".into()));
            }
            Some(tls) if !tls.other.is_empty() => {
                let k = tls.other.keys().next().cloned().unwrap_or_default();
                accepted = Some(("UnsupportedValue", format!("tls.{k} is not supported")));
            }
            Some(tls) => {
                for r in &tls.certificate_refs {
                    let ns = r.namespace.clone().unwrap_or_else(|| l.parent_ns.clone());
                    if !r.group.as_deref().unwrap_or("").is_empty() || r.kind.as_deref().unwrap_or("Secret") != "Secret"
                    {
                        resolved =
                            Some(("InvalidCertificateRef", format!("certificateRef {} is not a Secret", r.name)));
                        continue;
                    }
                    if ns != l.parent_ns && !inp.granted(l.parent_kind, &l.parent_ns, "", "Secret", &ns, &r.name) {
                        resolved = Some((
                            "RefNotPermitted",
                            format!("Secret {ns}/{} is in another namespace and no ReferenceGrant allows it", r.name),
                        ));
                        continue;
                    }
                    // A Secret named again (by any listener) is read once per translation.
                    let id = format!("{ns}/{}", r.name);
                    if certs.contains_key(&id) {
                        l.certs.push(id);
                        continue;
                    }
                    match tls_secret(&ns, &r.name, &inp.secrets) {
                        Ok(c) => {
                            l.certs.push(c.name.clone());
                            certs.insert(c.name.clone(), c);
                        }
                        Err(m) => resolved = Some(("InvalidCertificateRef", m)),
                    }
                }
                if tls.certificate_refs.is_empty() {
                    resolved = Some(("InvalidCertificateRef", "tls.certificateRefs is empty".into()));
                }
            }
        }
    }
    // A port whose binds admit only other Gateways (`[[listener]]
    // gateways`) is not this Gateway's to use: the operator's decision,
    // which no age order overrides.
    if accepted.is_none() {
        let gateway = format!("{}/{}", l.gateway.0, l.gateway.1);
        if let Some(why) = inp.binds.as_deref().and_then(|b| not_admitted(b, spec.port, &gateway)) {
            accepted = Some(("PortUnavailable", why));
        }
    }
    // Every earlier (older) listener of the class served on a stream of
    // connections (a `[[listener]]` of the proxy, see [`streams`]) this one
    // would be served on: the proxy merges them into one stream, so they
    // must be distinct whatever Gateway or ListenerSet they are on. Counted
    // per stream: a listener conflicting on one bind is still served on the
    // binds where it does not.
    if accepted.is_none() {
        let binds = inp.binds.as_deref();
        for stream in l.streams.clone() {
            let conflict = |e: &Lst<'_>| conflict_with(e, l, stream, binds);
            // The first (oldest) listener it conflicts with on the stream.
            let found = if let Some(list) = claims.candidates(stream, l, earlier) {
                list.into_iter().filter_map(|j| Some((j, conflict(&earlier[j])?))).min_by_key(|x| x.0)
            } else {
                let on = claims.streams.get(&stream).map_or(&[][..], |c| c.members.as_slice());
                on.iter().find_map(|&j| Some((j, conflict(&earlier[j])?)))
            };
            if let Some((_, (reason, why))) = found {
                if l.lose(stream, reason, why.clone()) {
                    conflicted = Some((reason, lost_message(l, &why)));
                }
            }
        }
    }
    // A listener whose allowedRoutes.kinds are all unsupported is still
    // accepted (the spec reports unsupported kinds with ResolvedRefs:
    // False, InvalidRouteKinds, not on Accepted), but no route can attach
    // to it: like an HTTPS listener with no certificate, it is not
    // programmed, and so neither is its Gateway.
    l.ok = accepted.is_none() && conflicted.is_none();
    if kinds.is_empty() && resolved.is_none() {
        resolved = Some(("InvalidRouteKinds", "no supported route kind".into()));
    }
    l.kinds = kinds;
    let (a_ok, a_reason, a_msg) = match &accepted {
        Some((r, m)) => (false, *r, m.clone()),
        None => (true, "Accepted", "listener accepted".into()),
    };
    let (r_ok, r_reason, r_msg) = match &resolved {
        Some((r, m)) => (false, *r, m.clone()),
        None => (true, "ResolvedRefs", "all references resolved".into()),
    };
    let (c_on, c_reason, c_msg) = match &conflicted {
        Some((r, m)) => (true, *r, m.clone()),
        None => (false, "NoConflicts", "no conflicts".into()),
    };
    // Served when accepted and, for HTTPS, with at least one certificate
    // loaded: a bad reference among good ones says ResolvedRefs False but
    // the listener serves with the others (as the spec allows); with none,
    // it serves nothing.
    let no_cert = spec.protocol == "HTTPS" && l.certs.is_empty();
    let programmed = if !l.ok {
        Cond::new("Programmed", false, "Invalid", "listener not served")
    } else if l.kinds.is_empty() {
        Cond::new("Programmed", false, "Invalid", "no supported route kind (see ResolvedRefs): nothing can attach")
    } else if no_cert {
        Cond::new("Programmed", false, "Invalid", "no certificate could be loaded (see ResolvedRefs): not served")
    } else {
        Cond::new("Programmed", true, "Programmed", "listener programmed")
    };
    l.conds = vec![
        Cond::new("Accepted", a_ok, a_reason, a_msg),
        Cond::new("ResolvedRefs", r_ok, r_reason, r_msg),
        Cond::new("Conflicted", c_on, c_reason, c_msg),
        programmed,
    ];
}

/// One Gateway's own listeners on one port that are not distinct (the
/// same hostname, or another protocol) are all refused: the spec picks no
/// winner among them (review 29 F3: the older one was served). Listeners
/// of other Gateways and of ListenerSets keep the age order (realip merges
/// Gateways on a bind; ListenerSets have the spec's precedence); two ports
/// one bind merges are distinct listeners, the older kept too. Returns,
/// by index, why each is refused.
fn indistinct(listeners: &[Lst<'_>]) -> BTreeMap<usize, (&'static str, String)> {
    let accepted = |l: &Lst<'_>| l.conds.iter().any(|c| c.kind == "Accepted" && c.status);
    let mut groups: BTreeMap<(&(String, String), i32), Vec<usize>> = BTreeMap::new();
    for (i, l) in listeners.iter().enumerate() {
        // (One with no supported route kind serves nothing and claims nothing.)
        if l.parent_kind == "Gateway" && accepted(l) && !l.kinds.is_empty() {
            groups.entry((&l.gateway, l.spec.port)).or_default().push(i);
        }
    }
    let mut refused = BTreeMap::new();
    for ((_, port), members) in &groups {
        for (a, &i) in members.iter().enumerate() {
            for &j in &members[a + 1..] {
                let (x, y) = (&listeners[i], &listeners[j]);
                let reason = if x.spec.protocol != y.spec.protocol {
                    "ProtocolConflict"
                } else if x.spec.hostname == y.spec.hostname {
                    "HostnameConflict"
                } else {
                    continue;
                };
                for (me, other) in [(i, j), (j, i)] {
                    refused.entry(me).or_insert_with(|| {
                        (
                            reason,
                            format!(
                                "{} on port {port} is not distinct from it (the same hostname, or another protocol): the Gateway API picks no winner among indistinct listeners of one Gateway, so none is served",
                                listeners[other].full_name
                            ),
                        )
                    });
                }
            }
        }
    }
    refused
}

/// Refuses listener `l` as [`indistinct`] (before it claims anything).
fn refuse_indistinct(l: &mut Lst<'_>, reason: &'static str, why: &str) {
    for stream in l.streams.clone() {
        l.lose(stream, reason, why.to_owned());
    }
    let why = lost_message(l, why);
    l.ok = false;
    for c in &mut l.conds {
        match c.kind {
            "Conflicted" => *c = Cond::new("Conflicted", true, reason, why.clone()),
            "Programmed" => *c = Cond::new("Programmed", false, "Invalid", "listener not served (see Conflicted)"),
            _ => {}
        }
    }
}

/// A validated match: path, method, headers, query.
type MatchOut = (PathMatch, Option<String>, Arc<[ValueMatch]>, Arc<[ValueMatch]>);
/// A reason and a message.
type Why = (&'static str, String);
/// Validated rules and the first unresolved reference, or why the route is unsupported.
type Rules = Result<(Vec<RuleOut>, Option<Why>), Why>;
/// (parent kind, parent ns, parent name, gateway, listener name).
type ListenerIndex = (&'static str, String, String, (String, String), String);

/// A validated rule, ready to be flattened into routes.
#[derive(Debug, Default)]
struct RuleOut {
    index: usize,
    id: String,
    name: Option<String>,
    matches: Vec<MatchOut>,
    /// (Shared by every route the rule expands to, as the matches' headers
    /// and query: see `Route::headers`.)
    filters: Arc<[Filter]>,
    backends: Arc<[WeightedBackend]>,
    /// A filter the proxy cannot apply as written (the field and why):
    /// the rule is served as 500 (filters dropped, one unresolved
    /// backend), so its requests never fall through to another route.
    invalid: Option<String>,
}

fn header_edit(m: &super::types::HeaderModifier) -> HeaderEdit {
    HeaderEdit {
        set: m.set.iter().map(|h| (h.name.to_ascii_lowercase(), h.value.clone())).collect(),
        add: m.add.iter().map(|h| (h.name.to_ascii_lowercase(), h.value.clone())).collect(),
        remove: m.remove.iter().map(|h| h.to_ascii_lowercase()).collect(),
    }
}

fn path_rewrite(p: &PathModifier, at: &str) -> Result<PathRewrite, String> {
    match (p.kind.as_str(), &p.replace_full_path, &p.replace_prefix_match) {
        ("ReplaceFullPath", Some(v), _) => Ok(PathRewrite::Full(v.clone())),
        ("ReplacePrefixMatch", _, Some(v)) => Ok(PathRewrite::Prefix(v.clone())),
        (k, _, _) => Err(format!("{at}.path: type {k} without its value")),
    }
}

fn filter(f: &HttpRouteFilter, at: &str) -> Result<Filter, String> {
    let known = ["RequestHeaderModifier", "ResponseHeaderModifier", "RequestRedirect", "URLRewrite"];
    if !known.contains(&f.kind.as_str()) {
        return Err(format!("{at}: filter type {} is not supported", f.kind));
    }
    if let Some(k) = f.other.keys().next() {
        return Err(format!("{at}.{k} is not supported"));
    }
    let missing = || format!("{at}: type {} without its settings", f.kind);
    Ok(match f.kind.as_str() {
        "RequestHeaderModifier" => {
            Filter::RequestHeaders(header_edit(f.request_header_modifier.as_ref().ok_or_else(missing)?))
        }
        "ResponseHeaderModifier" => {
            Filter::ResponseHeaders(header_edit(f.response_header_modifier.as_ref().ok_or_else(missing)?))
        }
        "RequestRedirect" => {
            let r = f.request_redirect.as_ref().ok_or_else(missing)?;
            let status = r.status_code.unwrap_or(302);
            if ![301, 302, 303, 307, 308].contains(&status) {
                return Err(format!("{at}.requestRedirect.statusCode {status} is not supported"));
            }
            Filter::Redirect {
                scheme: r.scheme.clone(),
                hostname: r.hostname.clone(),
                path: r.path.as_ref().map(|p| path_rewrite(p, &format!("{at}.requestRedirect"))).transpose()?,
                port: r
                    .port
                    .map(|p| u16::try_from(p).map_err(|_| format!("{at}.requestRedirect.port {p}")))
                    .transpose()?,
                status: u16::try_from(status).unwrap_or(302),
            }
        }
        "URLRewrite" => {
            let r = f.url_rewrite.as_ref().ok_or_else(missing)?;
            Filter::Rewrite {
                hostname: r.hostname.clone(),
                path: r.path.as_ref().map(|p| path_rewrite(p, &format!("{at}.urlRewrite"))).transpose()?,
            }
        }
        other => return Err(format!("{at}: filter type {other} is not supported")),
    })
}

/// Request headers the proxy writes itself, whatever a filter says (the
/// proxy also protects the `strip_untrusted` and `header:NAME` source
/// headers of its configuration, which the controller does not see).
use crate::routes::PROTECTED_REQUEST as PROXY_HEADERS;

/// The `Accepted` message of an attached route: says which
/// RequestHeaderModifier edits the proxy leaves out (the route is served;
/// its client-IP headers are the proxy's).
fn accepted_message(route: &HttpRoute) -> String {
    let mut ignored: Vec<String> = Vec::new();
    for m in route.spec.rules.iter().flat_map(|r| &r.filters).filter_map(|f| f.request_header_modifier.as_ref()) {
        let names = m.set.iter().chain(&m.add).map(|h| &h.name).chain(&m.remove);
        for n in names.map(|n| crate::routes::protected_form(n)) {
            if PROXY_HEADERS.contains(&n.as_str()) && !ignored.contains(&n) {
                ignored.push(n);
            }
        }
    }
    if ignored.is_empty() {
        "route attached".to_owned()
    } else {
        format!(
            "route attached; RequestHeaderModifier edits of {} are ignored: the proxy writes these headers \
             from the resolved client",
            ignored.join(", ")
        )
    }
}

/// Why a path match value can never match a request: the proxy matches
/// normalized request paths (escapes of unreserved characters decoded,
/// other escapes in upper case, no `//` or dot segments, never `%00`, an
/// encoded `/` or a backslash), so a value in another form is refused here
/// (`UnsupportedValue`) rather than served as a route that never matches.
fn path_problem(value: &str) -> Option<String> {
    if !value.starts_with('/') {
        return Some("must start with /".into());
    }
    if value.contains('\\') {
        return Some("a backslash is never in a normalized request path".into());
    }
    if value.contains("//") || value.split('/').any(|seg| seg == "." || seg == "..") {
        return Some("`//`, `.` and `..` segments are never in a normalized request path".into());
    }
    let bytes = value.as_bytes();
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b != b'%' {
            i += 1;
            continue;
        }
        let hex = bytes.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok());
        let Some(v) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) else {
            return Some("`%` is not followed by two hex digits".into());
        };
        if v == 0 || v == b'/' || v == b'\\' {
            return Some(format!("%{v:02X} is refused in request paths"));
        }
        if v.is_ascii_alphanumeric() || b"-._~".contains(&v) {
            return Some(format!("%{:02X} is `{}` once decoded: write it as is", v, char::from(v)));
        }
        if hex.is_some_and(|h| h.bytes().any(|c| c.is_ascii_lowercase())) {
            return Some(format!("write escapes in upper case (%{v:02X})"));
        }
        i += 3;
    }
    None
}

/// Validates a route's rules. `Err` = unsupported (reason, message);
/// otherwise the rules and the first unresolved reference (reason, message).
#[allow(clippy::too_many_lines)] // one pass over the rules, each check in spec order
fn rules(route: &HttpRoute, inp: &Inputs<'_>, index: &ServiceIndex<'_>, backends: &mut Vec<BackendRef>) -> Rules {
    let ns = ns_of(&route.metadata);
    let default_rule = [HttpRouteRule::default()];
    let list: &[HttpRouteRule] = if route.spec.rules.is_empty() { &default_rule } else { &route.spec.rules };
    let mut out = Vec::new();
    let mut unresolved = None;
    let unsupported = |m: String| ("UnsupportedValue", m);
    for (i, rule) in list.iter().enumerate() {
        let at = format!("rules[{i}]");
        if let Some(k) = rule.other.keys().next() {
            return Err(unsupported(format!("{at}.{k} is not supported")));
        }
        let mut r = RuleOut {
            index: i,
            id: rule.name.clone().unwrap_or_else(|| i.to_string()),
            name: rule.name.clone(),
            ..RuleOut::default()
        };
        let default_match = [super::types::HttpRouteMatch::default()];
        let matches: &[_] = if rule.matches.is_empty() { &default_match } else { &rule.matches };
        for (j, m) in matches.iter().enumerate() {
            let at = format!("{at}.matches[{j}]");
            let value = m.path.as_ref().and_then(|p| p.value.clone()).unwrap_or_else(|| "/".into());
            if let Some(why) = path_problem(&value) {
                return Err(unsupported(format!("{at}.path.value `{value}`: {why}")));
            }
            let path = match m.path.as_ref().and_then(|p| p.kind.as_deref()).unwrap_or("PathPrefix") {
                "Exact" => PathMatch::Exact(value),
                "PathPrefix" => PathMatch::SegmentPrefix(value),
                other => {
                    return Err(unsupported(format!("{at}.path.type {other} is not supported (Exact, PathPrefix)")))
                }
            };
            // The spec: of entries with equivalent names, only the first
            // counts (header names compare case-insensitively).
            let exact = |list: &[super::types::NameValueMatch], what: &str, lower: bool| {
                let mut out: Vec<ValueMatch> = Vec::new();
                for h in list {
                    match h.kind.as_deref().unwrap_or("Exact") {
                        "Exact" => {
                            let name = if lower { h.name.to_ascii_lowercase() } else { h.name.clone() };
                            if !out.iter().any(|m| m.name == name) {
                                out.push(ValueMatch { name, value: h.value.clone() });
                            }
                        }
                        other => return Err(unsupported(format!("{at}.{what}.type {other} is not supported (Exact)"))),
                    }
                }
                Ok(out)
            };
            let headers = exact(&m.headers, "headers", true)?;
            let query = exact(&m.query_params, "queryParams", false)?;
            r.matches.push((path, m.method.as_ref().map(|s| s.to_ascii_uppercase()), headers.into(), query.into()));
        }
        let mut filters = Vec::with_capacity(rule.filters.len());
        for (k, f) in rule.filters.iter().enumerate() {
            filters.push(filter(f, &format!("{at}.filters[{k}]")).map_err(unsupported)?);
        }
        let prefix_rewrite = filters.iter().any(|f| {
            matches!(
                f,
                Filter::Redirect { path: Some(PathRewrite::Prefix(_)), .. }
                    | Filter::Rewrite { path: Some(PathRewrite::Prefix(_)), .. }
            )
        });
        if prefix_rewrite && r.matches.iter().any(|m| !matches!(m.0, PathMatch::SegmentPrefix(_))) {
            return Err(unsupported(format!(
                "{at}: ReplacePrefixMatch is only compatible with PathPrefix matches (the spec's rule)"
            )));
        }
        // Checked after the combinations above (an unsupported one takes
        // the whole route off); a value the proxy cannot apply takes only
        // this rule, which answers 500 (below).
        if let Some((k, why)) = crate::routes::filters_problem(&filters) {
            r.invalid = Some(format!("{at}.filters[{k}].{why}"));
        }
        let mut weighted = Vec::with_capacity(rule.backend_refs.len());
        for (k, b) in rule.backend_refs.iter().enumerate() {
            if !b.filters.is_empty() {
                return Err(unsupported(format!("{at}.backendRefs[{k}].filters is not supported")));
            }
            // The spec's range; outside it the route is refused, never
            // served with a weight silently taken as 0.
            let w = b.weight.unwrap_or(1);
            let Some(weight) = u32::try_from(w).ok().filter(|w| *w <= 1_000_000) else {
                return Err(unsupported(format!("{at}.backendRefs[{k}].weight {w} is not from 0 to 1000000")));
            };
            match backend(&ns, b, inp, index) {
                Ok(be) => {
                    weighted.push(WeightedBackend { backend: Some(be.name), weight });
                    if let Some(port) = b.port {
                        backends.push((b.namespace.clone().unwrap_or_else(|| ns.clone()), b.name.clone(), port));
                    }
                }
                Err(e) => {
                    unresolved.get_or_insert(e);
                    weighted.push(WeightedBackend { backend: None, weight });
                }
            }
        }
        if r.invalid.is_some() {
            filters.clear();
            weighted = vec![WeightedBackend { backend: None, weight: 1 }];
        }
        r.filters = filters.into();
        r.backends = weighted.into();
        out.push(r);
    }
    Ok((out, unresolved))
}

/// The `Accepted: False, UnsupportedValue` message of a route whose rules
/// have filters the proxy cannot apply (see [`RuleOut::invalid`]), and
/// whether some rules are valid (`PartiallyInvalid`); `None` when none.
fn invalid_rules(rules: &[RuleOut]) -> Option<(String, bool)> {
    let bad: Vec<&str> = rules.iter().filter_map(|r| r.invalid.as_deref()).collect();
    if bad.is_empty() {
        return None;
    }
    let some_valid = bad.len() < rules.len();
    let rest = if some_valid { "; the route's other rules are served" } else { "" };
    Some((
        format!(
            "{}: the proxy cannot apply this filter as written, so the requests this rule matches are answered \
             500 until it is fixed{rest}",
            bad.join("; ")
        ),
        some_valid,
    ))
}

fn backend(
    route_ns: &str,
    b: &HttpBackendRef,
    inp: &Inputs<'_>,
    index: &ServiceIndex<'_>,
) -> Result<Backend, (&'static str, String)> {
    if !b.group.as_deref().unwrap_or("").is_empty() || b.kind.as_deref().unwrap_or("Service") != "Service" {
        let kind = b.kind.as_deref().unwrap_or("Service");
        return Err(("InvalidKind", format!("backend {kind} {} is not a Service", b.name)));
    }
    let ns = b.namespace.clone().unwrap_or_else(|| route_ns.to_owned());
    if ns != route_ns && !inp.granted("HTTPRoute", route_ns, "", "Service", &ns, &b.name) {
        return Err((
            "RefNotPermitted",
            format!("Service {ns}/{} is in another namespace and no ReferenceGrant allows it", b.name),
        ));
    }
    let port = b.port.ok_or(("BackendNotFound", format!("backendRef {} has no port", b.name)))?;
    // The spec leaves ExternalName to implementations: realip sends only to
    // endpoints (review 28 L1: it was Accepted and resolved, then 503 for good).
    let kind = index.service(&ns, &b.name).and_then(|s| s.spec.as_ref()).and_then(|s| s.type_.as_deref());
    if kind == Some("ExternalName") {
        return Err((
            "BackendNotFound",
            format!("Service {ns}/{} is of type ExternalName, which realip does not support: it sends only to a Service's endpoints", b.name),
        ));
    }
    service_backend(&ns, &b.name, &PortRef::Number(port), index, false).map_err(|e| match e {
        BackendError::ServiceNotFound(m) | BackendError::NoSuchPort(m) => ("BackendNotFound", m),
    })
}

/// A validated ClientIPPolicy.
fn client_ip(p: &ClientIpPolicy) -> Result<ClientIp, String> {
    let s = &p.spec;
    if let Some(e) = &s.undecodable {
        return Err(format!("the object does not decode: {e}"));
    }
    let cidrs = |list: &[String], what: &str| {
        realip_core::TrustedProxies::parse(list).map(|_| list.to_vec()).map_err(|e| format!("{what}: {e}"))
    };
    let pp = s.proxy_protocol.clone().unwrap_or_default();
    let mode = match pp.mode.as_deref().unwrap_or("Off") {
        "Off" => ProxyMode::Off,
        "Optional" => ProxyMode::Optional,
        "Required" => ProxyMode::Required,
        other => return Err(format!("proxyProtocol.mode: `{other}` is not Off, Optional or Required")),
    };
    let proxy_protocol_from = cidrs(&pp.trusted_senders, "proxyProtocol.trustedSenders")?;
    if mode != ProxyMode::Off && proxy_protocol_from.is_empty() {
        return Err("proxyProtocol.trustedSenders: empty, so no PROXY header could be accepted".into());
    }
    let trusted = cidrs(&s.trusted_proxies, "trustedProxies")?;
    let mut sources = Vec::new();
    for src in &s.sources {
        sources.push(match src {
            SourceSpec::Named(n) => match n.as_str() {
                "ProxyProtocol" => "proxy-protocol".to_owned(),
                "XForwardedFor" => "xff".to_owned(),
                "Forwarded" => "forwarded".to_owned(),
                "XRealIP" => "x-real-ip".to_owned(),
                other => {
                    return Err(format!(
                        "sources: `{other}` is not ProxyProtocol, XForwardedFor, Forwarded, XRealIP or {{header: NAME}}"
                    ))
                }
            },
            SourceSpec::Header { header } => format!("header:{header}"),
            SourceSpec::Other(v) => return Err(format!("sources: `{v}` is not a source name or {{header: NAME}}")),
        });
    }
    if sources.is_empty() {
        if mode != ProxyMode::Off {
            sources.push("proxy-protocol".into());
        }
        sources.push("xff".into());
    }
    realip_core::Sources::parse(&sources).map_err(|e| format!("sources: {e}"))?;
    let strategy = match &s.strategy {
        None => "rightmost-untrusted".to_owned(),
        Some(StrategySpec::Named(n)) if n == "RightmostUntrusted" => "rightmost-untrusted".to_owned(),
        Some(StrategySpec::Named(n)) => {
            return Err(format!("strategy: `{n}` is not RightmostUntrusted or {{trustedHops: N}}"))
        }
        // The CRD's range (0 to 64): realip refuses what the API server
        // would, so a policy never means one thing here and another there.
        Some(StrategySpec::Hops { trusted_hops }) if *trusted_hops <= 64 => format!("trusted-hops:{trusted_hops}"),
        Some(StrategySpec::Hops { trusted_hops }) => {
            return Err(format!("strategy: trustedHops {trusted_hops} is not from 0 to 64"))
        }
        Some(StrategySpec::Other(v)) => {
            return Err(format!("strategy: `{v}` is not RightmostUntrusted or {{trustedHops: N}} (N from 0 to 64)"))
        }
    };
    let f = s.forward.clone().unwrap_or_default();
    for h in &f.strip_untrusted {
        let token = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
        if h.is_empty() || h.len() > 64 || !h.bytes().all(token) {
            return Err(format!("forward.stripUntrusted: `{h}` is not a header name"));
        }
        // Removing one of these from untrusted hops would change how the
        // request is framed or routed, not who sent it.
        if realip_core::headers::is_framing_header(h) {
            return Err(format!(
                "forward.stripUntrusted: `{h}` frames or routes the request (Host, Content-Length, \
                 Transfer-Encoding, Connection, Upgrade, TE, Trailer, Keep-Alive, Proxy-Connection); it cannot be stripped"
            ));
        }
    }
    let forward = Forward {
        x_forwarded_for: match f.x_forwarded_for.as_deref().unwrap_or("Append") {
            "Append" => XffMode::Append,
            "Replace" => XffMode::Replace,
            other => return Err(format!("forward.xForwardedFor: `{other}` is not Append or Replace")),
        },
        x_real_ip: f.x_real_ip.unwrap_or(true),
        forwarded: f.forwarded.unwrap_or(false),
        strip_untrusted: f.strip_untrusted.iter().map(|h| h.to_ascii_lowercase()).collect(),
    };
    Ok(ClientIp {
        policy: format!("{}/{}", ns_of(&p.metadata), name_of(&p.metadata)),
        proxy_protocol: mode,
        proxy_protocol_from,
        trusted,
        sources,
        strategy,
        fail_closed: s.fail_closed,
        forward,
    })
}

/// A validated ClientAccessPolicy.
fn access(p: &ClientAccessPolicy) -> Result<Access, String> {
    let s = &p.spec;
    if let Some(e) = &s.undecodable {
        return Err(format!("the object does not decode: {e}"));
    }
    let cidrs = |list: &[String], what: &str| {
        realip_core::TrustedProxies::parse(list).map(|_| list.to_vec()).map_err(|e| format!("{what}: {e}"))
    };
    // `allow: []` reads as "nobody" to whoever wrote it, but an empty
    // list has meant "no allow list" (everyone): refused, so it never
    // opens what its author meant to close. Invalid with no last valid
    // version fails closed (403), which is what was meant.
    let allow = match &s.allow {
        Some(list) if list.is_empty() => {
            return Err("allow: the list is empty; leave allow out to let every client in, or list the clients to let \
                        in (an empty list is not read as \"nobody\": to refuse everyone, deny 0.0.0.0/0 and ::/0)"
                .into())
        }
        Some(list) => cidrs(list, "allow")?,
        None => Vec::new(),
    };
    let deny = cidrs(&s.deny, "deny")?;
    let rate_limit = match &s.rate_limit {
        None => None,
        Some(r) => {
            if !(r.per_second.is_finite() && r.per_second > 0.0) {
                return Err(format!("rateLimit.perSecond: {} is not a positive number", r.per_second));
            }
            // Without a burst, one second's worth, and at least one
            // request (a burst below 1 would refuse every request).
            let burst = r.burst.unwrap_or(r.per_second.max(1.0));
            if !(burst.is_finite() && burst >= 1.0) {
                return Err(format!("rateLimit.burst: {burst} is not at least 1"));
            }
            let len = r.ipv6_prefix_length.unwrap_or(64);
            if !(1..=128).contains(&len) {
                return Err(format!("rateLimit.ipv6PrefixLength: {len} is not 1 to 128"));
            }
            let global = match r.scope.as_deref().unwrap_or("Local") {
                "Local" => false,
                "Global" => true,
                other => return Err(format!("rateLimit.scope: `{other}` is not Local or Global")),
            };
            let scope = format!("clientaccesspolicy:{}/{}", ns_of(&p.metadata), name_of(&p.metadata));
            Some(RateLimit { per_second: r.per_second, burst, ipv6_prefix_length: len, global, scope })
        }
    };
    Ok(Access {
        policy: format!("{}/{}", ns_of(&p.metadata), name_of(&p.metadata)),
        allow: (!allow.is_empty()).then_some(allow),
        deny,
        rate_limit,
        gateway_rate_limit: None,
    })
}

/// The access rules of routes, kept across translations. A route with
/// both a Gateway ClientAccessPolicy and its own is served their
/// [`floor`], which depends on the two policies' lists only (not on the
/// rule, route or Gateway): it is computed once per pair of lists and kept
/// while both stay in force unchanged and some route is served it, rather
/// than once per (rule, route, Gateway) at every translation (review 16
/// M2). Each policy's lists are one allocation while they do not change,
/// so routes share them, and a route's access rules as last served are
/// checked by address.
#[derive(Debug, Default)]
struct AccessCache {
    /// Each policy's lists in force, by `NS/NAME`, as at the last
    /// translation.
    policies: foldhash::HashMap<String, Arc<Access>>,
    /// By the addresses of the (Gateway's, route's) lists in `policies`
    /// (held here too, so an address is never another list's while here):
    /// both, their floor, and the translation that last served it.
    floors: foldhash::HashMap<(usize, usize), Floor>,
    /// Translations so far.
    round: u64,
    /// Floors computed so far (tests count them).
    computed: u64,
}

/// A floor and what it was computed from ([`AccessCache::floors`]).
#[derive(Debug)]
struct Floor {
    gateway: Arc<Access>,
    own: Arc<Access>,
    /// The floor.
    access: Arc<Access>,
    /// The translation that last served it ([`AccessCache::round`]).
    round: u64,
}

impl AccessCache {
    /// The policies won by target, each policy's lists the allocation of
    /// the last translation when they are equal to it; floors of lists no
    /// longer in force are dropped.
    fn intern(&mut self, won: BTreeMap<TargetKey, Access>) -> BTreeMap<TargetKey, Arc<Access>> {
        self.round += 1;
        let mut now: foldhash::HashMap<String, Arc<Access>> = foldhash::HashMap::default();
        let won = won
            .into_iter()
            .map(|(k, a)| {
                let a = match now.get(&a.policy) {
                    Some(x) if **x == a => Arc::clone(x),
                    // (Not two values under one name: a policy in force is
                    // its lists, or nobody when invalid, never both.)
                    Some(_) => Arc::new(a),
                    None => {
                        let x = match self.policies.get(&a.policy) {
                            Some(x) if **x == a => Arc::clone(x),
                            _ => Arc::new(a),
                        };
                        now.insert(x.policy.clone(), Arc::clone(&x));
                        x
                    }
                };
                (k, a)
            })
            .collect();
        self.policies = now;
        let live = &self.policies;
        let live = |a: &Arc<Access>| live.get(&a.policy).is_some_and(|x| Arc::ptr_eq(x, a));
        self.floors.retain(|_, f| live(&f.gateway) && live(&f.own));
        won
    }

    /// The access rules of `e`: its own policy's (rule, else route), with
    /// the Gateway owner's lists as a floor (see [`floor`]).
    fn access_for(&mut self, won: &BTreeMap<TargetKey, Arc<Access>>, e: &PartEntry) -> Option<Arc<Access>> {
        if won.is_empty() {
            return None;
        }
        let own = e.on_rule.as_ref().and_then(|k| won.get(&**k)).or_else(|| won.get(&*e.on_route));
        match (won.get(&*e.on_gateway), own) {
            (Some(g), Some(own)) => {
                let (round, computed) = (self.round, &mut self.computed);
                let f = self.floors.entry((Arc::as_ptr(g).addr(), Arc::as_ptr(own).addr())).or_insert_with(|| {
                    *computed += 1;
                    Floor { gateway: Arc::clone(g), own: Arc::clone(own), access: Arc::new(floor(g, own)), round }
                });
                f.round = round;
                Some(Arc::clone(&f.access))
            }
            (g, own) => own.or(g).cloned(),
        }
    }

    /// Drops the floors no route was served at this translation.
    fn sweep(&mut self) {
        let round = self.round;
        self.floors.retain(|_, f| f.round == round);
    }
}

/// A route's own ClientAccessPolicy (`own`, on its rule or the route)
/// under its Gateway's (`gateway`): a tenant's route policy must not cancel
/// the Gateway owner's lists. Deny lists add up; when both have an allow
/// list the client must be in both (their intersection: two CIDRs overlap
/// only when one contains the other, so the intersection is the narrower
/// of each overlapping pair; none overlapping leaves an empty list, which
/// lets nobody in). Rate limits: when both have one, both are counted
/// (`rate_limit` the route's, `gateway_rate_limit` the Gateway's, each in
/// its own policy's bucket): the Gateway's bucket is one per client for
/// the whole Gateway, so N route policies do not give a client N times
/// the Gateway's budget (review 13c C13), and a route policy can tighten
/// the Gateway's limit but never lift it; else the one there is. `policy`
/// names the route's own policy.
fn floor(gateway: &Access, own: &Access) -> Access {
    // (The Gateway's in a set: not each of one list looked for in the
    // other, review 16 L11.)
    let in_gateway: foldhash::HashSet<&str> = gateway.deny.iter().map(String::as_str).collect();
    let mut deny = gateway.deny.clone();
    deny.extend(own.deny.iter().filter(|d| !in_gateway.contains(d.as_str())).cloned());
    let allow = match (&gateway.allow, &own.allow) {
        (Some(g), Some(o)) => Some(intersect(g, o)),
        (g, o) => o.clone().or_else(|| g.clone()),
    };
    let (rate_limit, gateway_rate_limit) = match (&gateway.rate_limit, &own.rate_limit) {
        (Some(g), Some(o)) => (Some(o.clone()), Some(g.clone())),
        (g, o) => (o.clone().or_else(|| g.clone()), None),
    };
    Access { policy: own.policy.clone(), allow, deny, rate_limit, gateway_rate_limit }
}

/// The CIDRs in both lists (already validated by [`access`]; presets
/// expanded, IPv4-mapped networks unmapped): for each CIDR `x` of `a` in
/// order, and each `y` of `b` in order, the narrower of the two when one
/// contains the other, each once, in the order first found. Two CIDRs
/// overlap only when one contains the other, so a row `x` yields `x` (at
/// the first `y` containing it) and the `y` strictly within `x`: found by
/// looking `x` up at each prefix length `b` has, and by a range of `b`
/// sorted by first address — not by comparing every pair (review 16 M2).
fn intersect(a: &[String], b: &[String]) -> Vec<String> {
    use std::collections::hash_map::Entry;
    let parse = |l: &[String]| realip_core::TrustedProxies::parse(l).map(|t| t.cidrs().to_vec()).unwrap_or_default();
    let (a, b) = (parse(a), parse(b));
    // `b` by (family, network, prefix): the first index of each; the
    // prefix lengths it has per family; and its networks sorted by
    // (family, first address, prefix, index).
    let mut first: foldhash::HashMap<(bool, u128, u8), usize> = foldhash::HashMap::default();
    let mut lengths: [Vec<u8>; 2] = [Vec::new(), Vec::new()];
    let mut sorted: Vec<(bool, u128, u8, usize)> = Vec::with_capacity(b.len());
    for (j, y) in b.iter().enumerate() {
        let (v6, start, _) = span(y);
        if let Entry::Vacant(v) = first.entry((v6, start, y.prefix())) {
            v.insert(j);
            lengths[usize::from(v6)].push(y.prefix());
        }
        sorted.push((v6, start, y.prefix(), j));
    }
    for l in &mut lengths {
        l.sort_unstable();
        l.dedup();
    }
    sorted.sort_unstable();
    let mut rows: foldhash::HashSet<realip_core::Cidr> = foldhash::HashSet::default();
    let mut seen: foldhash::HashSet<realip_core::Cidr> = foldhash::HashSet::default();
    let mut out: Vec<String> = Vec::new();
    let mut row: Vec<(usize, realip_core::Cidr)> = Vec::new();
    for x in &a {
        // A CIDR written twice in `a` yields nothing new the second time.
        if !rows.insert(*x) {
            continue;
        }
        let (v6, start, end) = span(x);
        row.clear();
        // The first `y` containing `x` (or equal to it): `x`.
        let containing = lengths[usize::from(v6)]
            .iter()
            .take_while(|&&p| p <= x.prefix())
            .filter_map(|&p| first.get(&(v6, start & !host_bits(v6, p), p)))
            .min();
        if let Some(&j) = containing {
            row.push((j, *x));
        }
        // Each `y` strictly within `x`: itself.
        let from = sorted.partition_point(|e| (e.0, e.1) < (v6, start));
        for &(_, _, p, j) in sorted[from..].iter().take_while(|e| e.0 == v6 && e.1 <= end) {
            if p > x.prefix() {
                row.push((j, b[j]));
            }
        }
        row.sort_unstable_by_key(|r| r.0);
        for &(_, c) in &row {
            if seen.insert(c) {
                out.push(c.to_string());
            }
        }
    }
    out
}

/// A network as (IPv6, first address, last address), IPv4 in the low 32
/// bits.
fn span(c: &realip_core::Cidr) -> (bool, u128, u128) {
    match c.addr() {
        std::net::IpAddr::V4(a) => {
            let start = u128::from(u32::from(a));
            (false, start, start | host_bits(false, c.prefix()))
        }
        std::net::IpAddr::V6(a) => {
            let start = u128::from(a);
            (true, start, start | host_bits(true, c.prefix()))
        }
    }
}

/// The host bits of a prefix length (IPv4 in the low 32 bits).
fn host_bits(v6: bool, prefix: u8) -> u128 {
    if v6 {
        u128::MAX.checked_shr(u32::from(prefix)).unwrap_or(0)
    } else {
        u128::from(u32::MAX.checked_shr(u32::from(prefix)).unwrap_or(0))
    }
}

/// Key of a policy target: (kind, namespace, name, sectionName).
type TargetKey = (String, String, String, Option<String>);

/// A policy to attach: its metadata, targets, validated value (or why
/// not), and the last valid value to keep in force when it is invalid.
type Attach<'p, T> = (&'p ObjectMeta, &'p [super::types::PolicyTargetReference], Result<T, String>, Option<T>);

/// A target's policy in force: its value, or (`Err`: the policy's
/// `NS/NAME` and why) an invalid policy with no last valid version, whose
/// targets fail closed rather than open.
type InForce<T> = Result<T, (String, String)>;

/// Decides, for policies of one kind, which are Accepted, and writes their
/// ancestors. `exists` says whether a target exists. An invalid policy
/// with no last valid version still claims its targets (as `Err`): they
/// fail closed (`closed` says how, in its status), never open, and a newer
/// policy on the same target is Conflicted as usual.
fn attach_policies<'p, T>(
    policies: &[Attach<'p, T>],
    kind: &'static str,
    inp: &Inputs<'_>,
    exists: &dyn Fn(&TargetKey) -> bool,
    unsupported: &dyn Fn(&TargetKey) -> Option<String>,
    closed: &str,
    statuses: &mut Vec<Arc<ObjectStatus>>,
) -> BTreeMap<TargetKey, InForce<T>>
where
    T: Clone,
{
    let mut order: Vec<usize> = (0..policies.len()).collect();
    order.sort_by_key(|&i| (created(policies[i].0), ns_of(policies[i].0), name_of(policies[i].0)));
    let mut won: BTreeMap<TargetKey, (String, InForce<T>)> = BTreeMap::new();
    let mut out_status = Vec::new();
    for i in order {
        let (meta, targets, value, fallback) = &policies[i];
        let ns = ns_of(meta);
        let me = format!("{ns}/{}", name_of(meta));
        let mut ancestors = Vec::new();
        for t in *targets {
            // Another realip's target (its own GatewayClass): that proxy
            // attaches it and writes its ancestor entry (review 13c: each
            // wrote TargetNotFound for the other's).
            if group_is(Some(&t.group), GATEWAY_GROUP) && foreign(inp, &t.kind, &ns, &t.name) {
                continue;
            }
            let key: TargetKey = (t.kind.clone(), ns.clone(), t.name.clone(), t.section_name.clone());
            let reference = ParentReference {
                group: Some(if t.group.is_empty() { GATEWAY_GROUP.to_owned() } else { t.group.clone() }),
                kind: Some(t.kind.clone()),
                namespace: Some(ns.clone()),
                name: t.name.clone(),
                section_name: t.section_name.clone(),
                port: None,
            };
            // A kind the policy cannot target says so before whether it exists.
            let cond = if let Some(why) = unsupported(&key).filter(|_| t.group == GATEWAY_GROUP) {
                // Only this target is refused: the policy's others attach.
                Cond::new("Accepted", false, "Invalid", why)
            } else if t.group != GATEWAY_GROUP || !exists(&key) {
                // A Gateway there, of another controller's class: said so
                // (review 13f LOW-6), not "not found".
                let theirs = (t.group == GATEWAY_GROUP && t.kind == "Gateway")
                    .then(|| inp.gateways.iter().find(|g| ns_of(&g.metadata) == ns && name_of(&g.metadata) == t.name))
                    .flatten();
                let why = match theirs {
                    Some(g) => format!(
                        "Gateway {ns}/{} is of GatewayClass {}, which is not served by this realip: the policy acts nowhere there",
                        t.name, g.spec.gateway_class_name
                    ),
                    None => format!("{} {}/{} not found", t.kind, ns, t.name),
                };
                Cond::new("Accepted", false, "TargetNotFound", why)
            } else if let Some((winner, _)) = won.get(&key) {
                match (value, fallback) {
                    (Err(e), None) => Cond::new("Accepted", false, "Invalid", e.clone()),
                    _ => Cond::new(
                        "Accepted",
                        false,
                        "Conflicted",
                        format!("the older policy {winner} targets the same object"),
                    ),
                }
            } else {
                match (value, fallback) {
                    (Ok(v), _) => {
                        won.insert(key, (me.clone(), Ok(v.clone())));
                        Cond::new("Accepted", true, "Accepted", "policy attached")
                    }
                    (Err(e), Some(last)) => {
                        won.insert(key, (me.clone(), Ok(last.clone())));
                        Cond::new(
                            "Accepted",
                            false,
                            "Invalid",
                            format!("{e}; its last valid version stays in force until this is fixed or it is deleted"),
                        )
                    }
                    (Err(e), None) => {
                        won.insert(key, (me.clone(), Err((me.clone(), format!("{kind} {me} is invalid ({e})")))));
                        Cond::new(
                            "Accepted",
                            false,
                            "Invalid",
                            format!("{e}; it has no last valid version, so {closed} until it is fixed or deleted"),
                        )
                    }
                }
            };
            ancestors.push(RefStatus { reference, conditions: vec![cond] });
        }
        out_status.push(ObjectStatus {
            key: ObjectKey { kind, namespace: Some(ns), name: name_of(meta) },
            generation: meta.generation,
            status: Status::Policy { ancestors, drop: Vec::new() },
        });
    }
    statuses.extend(out_status.into_iter().map(Arc::new));
    won.into_iter().map(|(k, (_, v))| (k, v)).collect()
}

/// Whether every CIDR of `inner` lies within a CIDR of `outer` (both
/// already validated; presets expanded).
fn cidrs_within(inner: &[String], outer: &[String]) -> bool {
    let parse = |l: &[String]| realip_core::TrustedProxies::parse(l).map(|t| t.cidrs().to_vec()).unwrap_or_default();
    let outer = parse(outer);
    parse(inner).iter().all(|x| outer.iter().any(|y| y.prefix() <= x.prefix() && y.contains(x.addr())))
}

/// Why a ListenerSet's chain `set` is not a narrowing of its Gateway's
/// chain `gw` (`None` when it is): a ListenerSet is a tenant's, and must
/// not make the Gateway owner's listeners on the same address trust more.
/// It may trust a subset of the proxies and PROXY senders, read a subset
/// of the sources in the Gateway's order, with the same strategy; not drop a required PROXY
/// header nor `failClosed`. (`forward` is free: it is what the tenant's own
/// upstreams receive.)
fn widens(set: &ClientIp, gw: &ClientIp) -> Option<String> {
    let gp = &gw.policy;
    if !cidrs_within(&set.trusted, &gw.trusted) {
        return Some(format!("trustedProxies {:?} are not all within {gp}'s {:?}", set.trusted, gw.trusted));
    }
    match (gw.proxy_protocol, set.proxy_protocol) {
        (ProxyMode::Off, m) if m != ProxyMode::Off => {
            return Some(format!("proxyProtocol is {m:?}, and {gp} accepts no PROXY header"));
        }
        (ProxyMode::Required, m) if m != ProxyMode::Required => {
            return Some(format!("proxyProtocol is {m:?}, and {gp} requires a PROXY header"));
        }
        _ => {}
    }
    if set.proxy_protocol != ProxyMode::Off && !cidrs_within(&set.proxy_protocol_from, &gw.proxy_protocol_from) {
        return Some(format!(
            "proxyProtocol.trustedSenders {:?} are not all within {gp}'s {:?}",
            set.proxy_protocol_from, gw.proxy_protocol_from
        ));
    }
    if let Some(s) = set.sources.iter().find(|s| !gw.sources.contains(s)) {
        return Some(format!("source {s} is not one of {gp}'s {:?}", gw.sources));
    }
    // The first source present wins: the set's must keep the Gateway's
    // order (a subsequence), or a source the owner reads second would win
    // on the set's listeners (review 16 L12).
    let mut in_gw = gw.sources.iter();
    if !set.sources.iter().all(|s| in_gw.any(|g| g == s)) {
        return Some(format!(
            "sources {:?} are not in the order of {gp}'s {:?} (the first source present wins)",
            set.sources, gw.sources
        ));
    }
    if set.strategy != gw.strategy {
        return Some(format!("strategy {} is not {gp}'s {}", set.strategy, gw.strategy));
    }
    if gw.fail_closed && !set.fail_closed {
        return Some(format!("failClosed is false, and {gp}'s is true"));
    }
    None
}

/// A ClientIPPolicy on a ListenerSet (or one of its listeners) applies
/// only when it narrows the whole-Gateway policy of the set's Gateway (see
/// [`widens`]); otherwise that target is `Accepted: False, Invalid` and
/// the set's listeners take the Gateway's chain. With no valid Gateway
/// policy to compare with, nothing tells what the owner trusts (the file's
/// chain is the proxy's), so it is refused too.
fn narrow_set_policies(
    ip_won: &mut BTreeMap<TargetKey, InForce<ClientIp>>,
    listeners: &[Lst<'_>],
    statuses: &mut [Arc<ObjectStatus>],
) {
    let on_sets: Vec<TargetKey> = ip_won.keys().filter(|k| k.0 == "ListenerSet").cloned().collect();
    for key in on_sets {
        let Some(Ok(set)) = ip_won.get(&key) else { continue }; // invalid: already fails closed
        let Some(gw) = listeners
            .iter()
            .find(|l| l.parent_kind == "ListenerSet" && l.parent_ns == key.1 && l.parent_name == key.2)
            .map(|l| l.gateway.clone())
        else {
            continue;
        };
        let why = match ip_won.get(&("Gateway".to_owned(), gw.0.clone(), gw.1.clone(), None)) {
            Some(Ok(g)) => {
                widens(set, g).map(|w| format!("it would widen the chain of its Gateway {}/{}: {w}", gw.0, gw.1))
            }
            _ => Some(format!(
                "its Gateway {}/{} has no valid whole-Gateway ClientIPPolicy, so nothing says what the Gateway's owner \
                 trusts: attach one there first",
                gw.0, gw.1
            )),
        };
        let Some(why) = why else { continue };
        let policy = set.policy.clone();
        ip_won.remove(&key);
        let Some((pns, pname)) = policy.split_once('/') else { continue };
        for s in statuses.iter_mut() {
            if !(s.key.kind == "ClientIPPolicy" && s.key.namespace.as_deref() == Some(pns) && s.key.name == pname) {
                continue;
            }
            let Status::Policy { ancestors, .. } = &mut Arc::make_mut(s).status else { continue };
            for a in ancestors.iter_mut() {
                let r = &a.reference;
                if r.kind.as_deref() != Some("ListenerSet") || r.name != key.2 || r.section_name != key.3 {
                    continue;
                }
                for c in a.conditions.iter_mut().filter(|c| c.kind == "Accepted") {
                    *c = Cond::new(
                        "Accepted",
                        false,
                        "Invalid",
                        format!(
                            "a ListenerSet's ClientIPPolicy may only narrow its Gateway's, and {why}; the \
                             ListenerSet's listeners take the Gateway's chain"
                        ),
                    );
                }
            }
        }
    }
}

/// The ClientIPPolicy in force on a listener: one on the listener itself,
/// else on its parent (a ListenerSet listener: its set's, else its
/// Gateway's whole-Gateway one).
fn chain_of<'w>(l: &Lst<'_>, ip_won: &'w BTreeMap<TargetKey, InForce<ClientIp>>) -> Option<&'w InForce<ClientIp>> {
    let pick = |kind: &str, ns: &str, name: &str| {
        let k = |s: Option<String>| (kind.to_owned(), ns.to_owned(), name.to_owned(), s);
        ip_won.get(&k(Some(l.spec.name.clone()))).or_else(|| ip_won.get(&k(None)))
    };
    if l.parent_kind == "ListenerSet" {
        pick("ListenerSet", &l.parent_ns, &l.parent_name)
            .or_else(|| ip_won.get(&("Gateway".to_owned(), l.gateway.0.clone(), l.gateway.1.clone(), None)))
    } else {
        pick("Gateway", &l.gateway.0, &l.gateway.1)
    }
}

/// Listeners on one port, or on ports one `[[listener]]` of the proxy
/// serves together (`gateway_ports`), are one stream of connections, so
/// they can only have one client-IP chain. Settled by age like every
/// Gateway API conflict: `listeners` are in precedence order (a Gateway's
/// own before ListenerSets', older first), and a served listener whose
/// chain differs from an earlier served one's on its stream is
/// `Conflicted` and not served (the older keeps the bind); its policy, if
/// it has one, is `Accepted: False, Conflicted` for the targets covering
/// that listener. The messages name the port or bind and the other
/// listener and chain.
#[allow(clippy::too_many_lines)] // one pass over the listeners, then those that lost some streams
fn chain_conflicts(
    listeners: &mut [Lst<'_>],
    ip_won: &BTreeMap<TargetKey, InForce<ClientIp>>,
    binds: Option<&[Bind]>,
    statuses: &mut [Arc<ObjectStatus>],
) {
    let chain = |l: &Lst<'_>| {
        chain_of(l, ip_won).and_then(|c| c.as_ref().ok()).map(|c| ClientIp { policy: String::new(), ..c.clone() })
    };
    let chain_name = |l: &Lst<'_>| match chain_of(l, ip_won) {
        Some(Ok(c)) => format!("ClientIPPolicy {}'s", c.policy),
        _ => "the proxy file's (no ClientIPPolicy)".to_owned(),
    };
    // The first served listener on each stream, and its chain. Every
    // listener served on a stream after it has its chain (one with
    // another loses the stream here), so the first earlier listener on the
    // stream whose chain differs from a newer one's is this one when
    // their chains differ, and there is none when they do not: each
    // listener is compared with one, not with every earlier one (review
    // 18 L10: 6,400 listeners on a port took seconds per translation).
    let mut first: BTreeMap<Stream, (usize, Option<ClientIp>)> = BTreeMap::new();
    for i in 0..listeners.len() {
        if !listeners[i].emitted() {
            continue;
        }
        let mine = chain(&listeners[i]);
        let (port, name) = (listeners[i].spec.port, listeners[i].full_name.clone());
        let mut whole: Option<String> = None;
        for stream in listeners[i].streams.clone() {
            if !listeners[i].on(stream) {
                continue;
            }
            #[cfg(test)]
            CONFLICT_CHECKS.with(|c| c.set(c.get() + 1));
            let other = match first.get(&stream) {
                Some((o, theirs)) if *theirs != mine => Some(*o),
                _ => None,
            };
            #[cfg(test)]
            let other = if FORCE_LINEAR.with(std::cell::Cell::get) {
                (0..i).find(|&o| listeners[o].emitted() && listeners[o].on(stream) && chain(&listeners[o]) != mine)
            } else {
                other
            };
            let Some(other) = other else { continue };
            let other = &listeners[other];
            let at = stream_at(stream, other.spec.port, port, binds);
            let why = format!(
                "{at} is already served by the older listener {}, whose client-IP chain differs ({}); one bind is \
                 one stream of connections with one chain, so this newer listener is not served there",
                other.full_name,
                chain_name(other)
            );
            if listeners[i].lose(stream, "ClientIPPolicyConflict", why.clone()) {
                whole = Some(why);
            }
        }
        if whole.is_none() {
            for &stream in &listeners[i].streams {
                if listeners[i].on(stream) {
                    first.entry(stream).or_insert_with(|| (i, mine.clone()));
                }
            }
        }
        let Some(why) = whole else { continue };
        let why = lost_message(&listeners[i], &why);
        let policy = match chain_of(&listeners[i], ip_won) {
            Some(Ok(c)) => Some(c.policy.clone()),
            _ => None,
        };
        let l = &mut listeners[i];
        l.ok = false;
        for c in &mut l.conds {
            match c.kind {
                "Conflicted" => *c = Cond::new("Conflicted", true, "ClientIPPolicyConflict", why.clone()),
                "Programmed" => *c = Cond::new("Programmed", false, "Invalid", "listener not served (see Conflicted)"),
                _ => {}
            }
        }
        if let Some(policy) = policy {
            mark_policy_conflicted(&policy, &name, &why, statuses);
        }
    }
    // Listeners that lost some of their streams only: served on the others,
    // and their status says where they are not.
    for l in listeners.iter_mut().filter(|l| l.ok && !l.lost.is_empty()) {
        let Some((reason, _)) = l.lost.values().next().cloned() else { continue };
        let served: Vec<String> = l
            .streams
            .iter()
            .filter(|s| !l.lost.contains_key(s))
            .map(|s| match s {
                Stream::Bind(i) => binds.and_then(|b| b.get(*i)).map_or_else(String::new, |b| format!("`{}`", b.name)),
                Stream::Port(p) => format!("port {p}"),
            })
            .collect();
        let why = format!(
            "{}; still served on the proxy's [[listener]] {}",
            l.lost.values().map(|(_, m)| m.as_str()).collect::<Vec<_>>().join("; "),
            served.join(", ")
        );
        for c in &mut l.conds {
            match c.kind {
                "Conflicted" => *c = Cond::new("Conflicted", true, reason, why.clone()),
                "Programmed" if c.status => {
                    *c = Cond::new(
                        "Programmed",
                        true,
                        "Programmed",
                        format!("listener programmed on [[listener]] {} only (see Conflicted)", served.join(", ")),
                    );
                }
                _ => {}
            }
        }
    }
}

/// The message of a listener that lost every stream: `last` (the last
/// one's), with the others' before it when there were several.
fn lost_message(l: &Lst<'_>, last: &str) -> String {
    let mut all: Vec<&str> = l.lost.values().map(|(_, m)| m.as_str()).filter(|m| *m != last).collect();
    all.push(last);
    all.join("; ")
}

/// Marks the targets of ClientIPPolicy `policy` (`NS/NAME`) that cover
/// listener `listener` (its full name) `Accepted: False, Conflicted`.
fn mark_policy_conflicted(policy: &str, listener: &str, why: &str, statuses: &mut [Arc<ObjectStatus>]) {
    let Some((pns, pname)) = policy.split_once('/') else { return };
    for s in statuses.iter_mut() {
        let ours = s.key.kind == "ClientIPPolicy" && s.key.namespace.as_deref() == Some(pns) && s.key.name == pname;
        if !ours {
            continue;
        }
        if let Status::Policy { ancestors, .. } = &mut Arc::make_mut(s).status {
            mark_conflicted(ancestors, pns, listener, why);
        }
    }
}

/// Marks the `ancestors` (of a ClientIPPolicy in namespace `pns`) that
/// cover listener `listener` (its full name) `Accepted: False,
/// Conflicted`, saying `why`.
pub(super) fn mark_conflicted(ancestors: &mut [super::status::RefStatus], pns: &str, listener: &str, why: &str) {
    for a in ancestors.iter_mut() {
        if !covers(a, pns, listener) {
            continue;
        }
        for c in a.conditions.iter_mut().filter(|c| c.kind == "Accepted" && c.status) {
            *c = Cond::new(
                "Accepted",
                false,
                "Conflicted",
                format!("{why}: this policy is not applied on listener {listener}"),
            );
        }
    }
}

/// Whether ancestor `a` of a policy in namespace `pns` covers listener
/// `listener` (its full name): its Gateway or ListenerSet, and its
/// section when it names one.
pub(super) fn covers(a: &super::status::RefStatus, pns: &str, listener: &str) -> bool {
    let r = &a.reference;
    let parent = format!(
        "{}/{}/{}/",
        r.kind.as_deref().unwrap_or("Gateway").to_ascii_lowercase(),
        r.namespace.as_deref().unwrap_or(pns),
        r.name
    );
    listener.strip_prefix(&parent).is_some_and(|lname| r.section_name.as_deref().is_none_or(|sec| sec == lname))
}

/// Why Gateway `gateway` (`NS/NAME`) may not use `port`: the binds that
/// serve it admit only other Gateways (`gateways`). `None` when one admits
/// it, or none serves the port (that is [`unbound`]'s to say).
fn not_admitted(binds: &[Bind], port: i32, gateway: &str) -> Option<String> {
    let port = u16::try_from(port).ok()?;
    let serving: Vec<&Bind> = binds.iter().filter(|b| b.gateway_ports.contains(&port)).collect();
    if serving.is_empty() || serving.iter().any(|b| b.admits(gateway)) {
        return None;
    }
    let whom: Vec<String> =
        serving.iter().map(|b| format!("[[listener]] `{}` (gateways {})", b.name, b.gateways.join(", "))).collect();
    Some(format!(
        "port {port} is reserved by the proxy's operator for other Gateways: {} does not admit Gateway {gateway}; \
         this listener is not served",
        whom.join(", ")
    ))
}

/// Why no `[[listener]]` of the proxy serves a Gateway listener on `port`
/// (an HTTPS one needs a bind with `tls.kubernetes`), as the proxy decides
/// it; `None` when one does.
fn unbound(binds: &[Bind], port: u16, https: bool) -> Option<String> {
    let serving: Vec<&Bind> = binds.iter().filter(|b| b.gateway_ports.contains(&port)).collect();
    if serving.is_empty() {
        return Some(format!(
            "no [[listener]] of the proxy has {port} in its gateway_ports, so nothing serves port {port}: add it to \
             the gateway_ports of the bind the Service's port {port} reaches"
        ));
    }
    if https && !serving.iter().any(|b| b.tls_kubernetes) {
        let names: Vec<&str> = serving.iter().map(|b| b.name.as_str()).collect();
        return Some(format!(
            "port {port} is served by [[listener]] {} without tls.kubernetes, which an HTTPS listener needs",
            names.join(", ")
        ));
    }
    None
}

/// Sort key of a route entry (see the module documentation).
type Precedence = (
    u8,
    std::cmp::Reverse<usize>,
    u8,
    std::cmp::Reverse<usize>,
    u8,
    std::cmp::Reverse<usize>,
    std::cmp::Reverse<usize>,
    Arc<str>,
    Arc<str>,
    usize,
    usize,
);

/// What the translation of one HTTPRoute reads besides the route:
/// everything decided before the routes (listeners, Gateways,
/// ListenerSets) and the inputs.
struct RouteCtx<'c, 'i, 'a> {
    inp: &'i Inputs<'a>,
    listeners: &'c [Lst<'a>],
    gateways: &'c [&'a Gateway],
    set_ok: &'c BTreeMap<(String, String), Result<(), String>>,
    /// Built on first use: only a route translated anew needs it.
    services: &'c std::cell::OnceCell<ServiceIndex<'i>>,
    /// Each listener's more specific siblings ([`isolated`]), each built
    /// on first use (one entry per listener).
    siblings: &'c [std::cell::OnceCell<Vec<String>>],
    /// Built on first use.
    layout: &'c std::cell::OnceCell<Layout>,
    /// Where the Services and EndpointSlices are, kept from the previous
    /// translation when the lists are the same ([`RouteCache::index`]).
    positions: Option<Arc<Positions>>,
}

/// Where the listeners are: each parent's (so a parentRef finds its
/// listeners without looking at every listener of the class: review 18
/// B1r), each Gateway's, and what a route attached nowhere read of them
/// ([`RouteCtx::view`]).
struct Layout {
    /// `[Gateway, ListenerSet]` → namespace → name → the parent's
    /// listeners (indexes, in order); every Gateway and ListenerSet of the
    /// class is there (one with no listeners too).
    parents: [foldhash::HashMap<String, foldhash::HashMap<String, Vec<usize>>>; 2],
    /// Each listener's Gateway (an index into `gateways`).
    gateway_of: Vec<usize>,
    /// Each Gateway's listeners (its ListenerSets' included), in order.
    gateways: Vec<Vec<usize>>,
    /// A fingerprint of each Gateway's listeners as translated, built on
    /// first use.
    gateway_fp: Vec<std::cell::OnceCell<u64>>,
    /// A fingerprint of the ReferenceGrants of each namespace (by the
    /// namespace they are in, which is the namespace they grant into).
    grants: foldhash::HashMap<String, u64>,
    /// A fingerprint of each Namespace's labels (what `from: Selector`
    /// reads of a route's namespace).
    namespaces: foldhash::HashMap<String, u64>,
}

impl Layout {
    fn new(ctx: &RouteCtx<'_, '_, '_>) -> Layout {
        use std::hash::BuildHasher as _;
        let mut parents: [foldhash::HashMap<String, foldhash::HashMap<String, Vec<usize>>>; 2] = Default::default();
        for g in ctx.gateways {
            parents[0].entry(ns_of(&g.metadata)).or_default().entry(name_of(&g.metadata)).or_default();
        }
        for (ns, name) in ctx.set_ok.keys() {
            parents[1].entry(ns.clone()).or_default().entry(name.clone()).or_default();
        }
        let mut by_gateway: foldhash::HashMap<&(String, String), usize> = foldhash::HashMap::default();
        let mut gateways: Vec<Vec<usize>> = Vec::new();
        let mut gateway_of = Vec::with_capacity(ctx.listeners.len());
        for (i, l) in ctx.listeners.iter().enumerate() {
            let kind = usize::from(l.parent_kind != "Gateway");
            parents[kind].entry(l.parent_ns.clone()).or_default().entry(l.parent_name.clone()).or_default().push(i);
            let g = *by_gateway.entry(&l.gateway).or_insert_with(|| {
                gateways.push(Vec::new());
                gateways.len() - 1
            });
            gateways[g].push(i);
            gateway_of.push(g);
        }
        let mut grants: foldhash::HashMap<String, u64> = foldhash::HashMap::default();
        for g in &ctx.inp.grants {
            let fp = grants.entry(ns_of(&g.metadata)).or_default();
            *fp = FINGERPRINT.hash_one((&g.metadata.uid, &g.metadata.resource_version, *fp));
        }
        let namespaces = ctx
            .inp
            .namespaces
            .iter()
            .filter_map(|n| Some((n.metadata.name.clone()?, FINGERPRINT.hash_one(&n.metadata.labels))))
            .collect();
        Layout {
            parents,
            gateway_of,
            gateway_fp: gateways.iter().map(|_| std::cell::OnceCell::new()).collect(),
            gateways,
            grants,
            namespaces,
        }
    }

    /// The listeners of parent `kind` `ns`/`name`; `None` when it is not
    /// one of the class's Gateways or ListenerSets (not ours).
    fn parent(&self, kind: &str, ns: &str, name: &str) -> Option<&[usize]> {
        let kind = usize::from(kind != "Gateway");
        self.parents[kind].get(ns)?.get(name).map(Vec::as_slice)
    }
}

impl<'i> RouteCtx<'_, 'i, '_> {
    fn services(&self) -> &ServiceIndex<'i> {
        let inp = self.inp;
        self.services.get_or_init(|| ServiceIndex::kept(&inp.services, &inp.slices, self.positions.clone()))
    }

    fn layout(&self) -> &Layout {
        self.layout.get_or_init(|| Layout::new(self))
    }

    fn siblings(&self, i: usize) -> &[String] {
        self.siblings[i].get_or_init(|| {
            let layout = self.layout();
            siblings(self.listeners, &layout.gateways[layout.gateway_of[i]], i)
        })
    }

    /// A fingerprint of everything the translation of `route` read besides
    /// the route and the Services it names (which [`RouteCache`] watches
    /// apart): each parent it names, whether it is the class's, and every
    /// listener of that parent's Gateway as translated (the listeners a
    /// parentRef may select, their siblings, which decide the hosts it
    /// leaves out and how many routes it expands to, whether each is
    /// served, conflicted or closed by its ClientIPPolicy); its own
    /// namespace's labels; the ReferenceGrants of the other namespaces its
    /// backends are in. While it is the same, the route's part (entries,
    /// count and status) is the same however the rest of the context
    /// changed, so [`translate_with`] keeps it (review 18 B1r: a route
    /// refused for its namespace's budget is not counted again at every
    /// Gateway change of another tenant; a ReferenceGrant, a Namespace's
    /// labels or another Gateway's listeners changed re-translate only the
    /// routes that read them).
    fn view(&self, route: &HttpRoute) -> u64 {
        use std::hash::{BuildHasher as _, Hash as _, Hasher as _};
        let layout = self.layout();
        let mut h = FINGERPRINT.build_hasher();
        let rns = ns_of(&route.metadata);
        // Its namespace's labels (`from: Selector`), and the grants of the
        // other namespaces its backends are in: a ReferenceGrant elsewhere
        // or another namespace's labels change nothing of this route.
        layout.namespaces.get(&rns).hash(&mut h);
        let mut elsewhere: Vec<&str> = route
            .spec
            .rules
            .iter()
            .flat_map(|r| &r.backend_refs)
            .filter_map(|b| b.namespace.as_deref())
            .filter(|n| *n != rns)
            .collect();
        elsewhere.sort_unstable();
        elsewhere.dedup();
        for n in elsewhere {
            (n, layout.grants.get(n)).hash(&mut h);
        }
        for pref in &route.spec.parent_refs {
            let kind = pref.kind.as_deref().unwrap_or("Gateway");
            let pns = pref.namespace.as_deref().unwrap_or(&rns);
            (kind, pns, &pref.name).hash(&mut h);
            match layout.parent(kind, pns, &pref.name) {
                None => 0u8.hash(&mut h),
                Some([]) => 1u8.hash(&mut h),
                Some(&[first, ..]) => {
                    let g = layout.gateway_of[first];
                    let fp = layout.gateway_fp[g].get_or_init(|| {
                        let mut h = FINGERPRINT.build_hasher();
                        for &i in &layout.gateways[g] {
                            // Everything decided about the listener (its
                            // `attached` is not counted yet), and where it
                            // is: a part names its listeners by index.
                            (i, format!("{:?}", self.listeners[i])).hash(&mut h);
                        }
                        h.finish()
                    });
                    (2u8, fp).hash(&mut h);
                }
            }
        }
        h.finish()
    }
}

/// A route of an HTTPRoute before access policies apply, with its
/// precedence and the policy targets that cover it.
#[derive(Debug)]
struct PartEntry {
    precedence: Precedence,
    /// (Served as is when no access policy applies to it.)
    route: Arc<Route>,
    /// The rule, when it has a name (a policy can target it).
    on_rule: Option<Arc<TargetKey>>,
    on_route: Arc<TargetKey>,
    /// The Gateway it is served on.
    on_gateway: Arc<TargetKey>,
}

/// A host a route serves on some listeners and the hosts within it left
/// to more specific listeners ([`isolated`]).
type HostExcept = (Option<String>, Arc<[String]>);

/// A Service port a route's rules resolved: (namespace, name, port).
type BackendRef = (String, String, i32);

/// What one HTTPRoute contributes to a translation. It depends only on
/// the route and on the objects a [`RouteCtx`] is made of (never on other
/// HTTPRoutes, policies or endpoints), so [`RouteCache`] keeps it while
/// neither changes.
#[derive(Debug)]
struct RoutePart {
    /// The route's [`version`].
    version: Option<RouteVersion>,
    /// The route's uid.
    uid: Option<String>,
    /// (namespace, name).
    name: (String, String),
    /// Its status, when a parent is ours.
    status: Option<Arc<ObjectStatus>>,
    /// Its routes, in its own precedence order.
    entries: Vec<Arc<PartEntry>>,
    /// The Service ports its rules resolved (their endpoints are looked
    /// up at each translation: they change without the route changing).
    backends: Vec<BackendRef>,
    /// Its named rules (policy targets).
    rule_names: Vec<String>,
    /// Listeners it is attached to (indexes, sorted, once each).
    attached: Vec<usize>,
    /// Listeners it is attached to that no bind of the proxy serves
    /// ([`Lst::unbound`]): it has no entries there (see
    /// [`RouteSet::pending`]). Full names, sorted, once each.
    pending: Vec<String>,
    /// `entries` as last served, with their access rules: reused while
    /// those rules stay the same.
    served: std::sync::Mutex<Vec<Arc<Route>>>,
    /// Every Service its rules name (namespace, name), found or not: the
    /// part is translated again when one of them changes.
    services: Vec<(String, String)>,
    /// Refused for its namespace's budget ([`over_budget`]): how many
    /// routes it expands to and its status as translated (its entries are
    /// dropped: a refused route costs nothing but this).
    over: Option<(usize, Option<Arc<ObjectStatus>>)>,
    /// Its [`RouteCtx::view`], with which it stays valid across changes
    /// of the rest of the context (its entries, count and status depend
    /// on nothing else).
    view: Option<u64>,
    /// Why [`over_budget`] refused it (its status says so).
    refused: Option<String>,
}

impl RoutePart {
    /// How many routes it expands to (refused or not).
    fn count(&self) -> usize {
        self.over.as_ref().map_or(self.entries.len(), |(n, _)| *n)
    }
}

/// Per-HTTPRoute results kept from one translation to the next
/// ([`translate_with`]): a route whose [`version`] is unchanged is
/// not translated again while nothing it depends on changed — the
/// GatewayClasses, Gateways, ListenerSets, ReferenceGrants, Namespaces and
/// TLS Secrets (by uid and `resourceVersion`), the class and the proxy's
/// binds, and the Services it names (a change of any other Service keeps
/// it: review 14 L5). A change of one HTTPRoute among 10,000 then
/// translates one route. A route is kept across a change of those objects
/// too while what it read of them is the same ([`RouteCtx::view`]: its
/// parents' Gateways' listeners as translated, its namespace's labels, the
/// ReferenceGrants of the namespaces its backends are in): an edit of a
/// ClientIPPolicy that leaves the listeners as they were, another tenant's
/// Gateway or a ReferenceGrant elsewhere translates no route again.
/// Objects without a `resourceVersion` (tooling, tests) turn the cache off.
#[derive(Debug, Default)]
pub struct RouteCache {
    context: Option<u64>,
    /// The Services' fingerprint, and each Service's uid and
    /// `resourceVersion` by (namespace, name), as last translated.
    services: Option<u64>,
    service_versions: foldhash::HashMap<(String, String), (Option<String>, String)>,
    /// The Services and EndpointSlices `backends` were resolved with.
    endpoints: Option<u64>,
    /// Where each Service and EndpointSlice is in the lists of the
    /// translation `endpoints` fingerprints (built on the first look-up).
    index: Option<Arc<Positions>>,
    /// Service ports as last resolved (`None`: they did not resolve).
    backends: foldhash::HashMap<BackendRef, Option<Backend>>,
    /// By uid (parts of deleted routes are dropped when they outnumber
    /// the others).
    parts: foldhash::HashMap<String, Arc<RoutePart>>,
    /// The previous translation's parts in the order of its input, each
    /// with the address of the HTTPRoute object it was found for. The
    /// store hands the same objects (the same `Arc`s) in the same order
    /// while they do not change, so a route is looked for a few places
    /// ahead of the last one found before the map is asked.
    order: Vec<(usize, Arc<RoutePart>)>,
    /// The previous translation's parts, its route entries in precedence
    /// order and its HTTPRoute statuses in key order: the next one, when
    /// few parts changed, patches these instead of sorting 10,000 again.
    sorted: Sorted,
    /// ClientAccessPolicy lists and floors as last served.
    access: AccessCache,
    /// Routes built by [`route_part`] in the translations so far (not
    /// counting those [`over_budget`] builds again in full).
    built: usize,
    /// HTTPRoutes translated ([`route_part`]) so far, those
    /// [`over_budget`] translates again included.
    translated: usize,
    /// Parts kept across a change of the context ([`RouteCtx::view`]).
    carried: usize,
}

impl RouteCache {
    /// Routes built so far ([`RouteCache::built`]).
    #[cfg(test)]
    pub(crate) fn built(&self) -> usize {
        self.built
    }

    /// HTTPRoutes translated so far ([`RouteCache::translated`]).
    #[cfg(test)]
    pub(crate) fn translated(&self) -> usize {
        self.translated
    }

    /// Parts kept across a change of the context so far
    /// ([`RouteCache::carried`]).
    #[cfg(test)]
    pub(crate) fn carried(&self) -> usize {
        self.carried
    }

    /// Floors computed so far, and floors kept ([`AccessCache`]).
    #[cfg(test)]
    pub(crate) fn floors(&self) -> (u64, usize) {
        (self.access.computed, self.access.floors.len())
    }
}

/// Parts in precedence (entries) and key (statuses) order, and what
/// their backends are made of; see [`Sorted::update`].
#[derive(Debug, Default)]
struct Sorted {
    /// By the address of each part's allocation (held here, so an address
    /// is never another part's while here).
    parts: foldhash::HashMap<usize, Arc<RoutePart>>,
    /// (part, index of the entry in it), in precedence order.
    entries: Vec<(Arc<RoutePart>, usize)>,
    /// The parts' statuses, by key.
    statuses: Vec<Arc<ObjectStatus>>,
    /// How many times the parts list each Service port.
    refs: foldhash::HashMap<BackendRef, usize>,
    /// How many times the parts' routes name each backend.
    names: foldhash::HashMap<String, usize>,
}

fn addr(p: &Arc<RoutePart>) -> usize {
    Arc::as_ptr(p).addr()
}

impl Sorted {
    /// Brings the order up to `parts`: entries and statuses of parts that
    /// are gone are removed, those of new parts inserted where a stable
    /// sort would put them. Entries of different parts never tie (their
    /// precedence ends with the route's namespace/name, rule and match),
    /// and a part's entries are inserted in their own order after any
    /// equal one, so the result is what sorting everything again gives
    /// (a test holds it to that). When many parts changed, it sorts.
    fn update(&mut self, parts: &[Arc<RoutePart>]) {
        let now: foldhash::HashSet<usize> = parts.iter().map(addr).collect();
        let added: Vec<&Arc<RoutePart>> = parts.iter().filter(|p| !self.parts.contains_key(&addr(p))).collect();
        let removed = self.parts.len() + added.len() - now.len();
        // Entries inserted one by one cost a move of the list each: many
        // (a few routes of thousands of entries each, translated again at
        // a change of their Gateways) are sorted with the rest instead.
        let entries_added: usize = added.iter().map(|p| p.entries.len()).sum();
        let entries_removed: usize = if removed == 0 {
            0
        } else {
            self.parts.values().filter(|p| !now.contains(&addr(p))).map(|p| p.entries.len()).sum()
        };
        if added.len() + removed > 16 + parts.len() / 8 || entries_added + entries_removed > 64 + self.entries.len() / 8
        {
            *self = Sorted::default();
            self.entries = parts.iter().flat_map(|p| (0..p.entries.len()).map(move |i| (Arc::clone(p), i))).collect();
            self.entries.sort_by(|(a, i), (b, j)| a.entries[*i].precedence.cmp(&b.entries[*j].precedence));
            self.statuses = parts.iter().filter_map(|p| p.status.clone()).collect();
            self.statuses.sort_by(|a, b| a.key.cmp(&b.key));
            for p in parts {
                self.count(p, true);
                self.parts.insert(addr(p), Arc::clone(p));
            }
            return;
        }
        if removed > 0 {
            let gone: Vec<Arc<RoutePart>> =
                self.parts.values().filter(|p| !now.contains(&addr(p))).map(Arc::clone).collect();
            for p in &gone {
                self.count(p, false);
                self.parts.remove(&addr(p));
            }
            self.entries.retain(|(p, _)| now.contains(&addr(p)));
            let statuses_of: foldhash::HashSet<usize> =
                parts.iter().filter_map(|p| p.status.as_ref()).map(|s| Arc::as_ptr(s).addr()).collect();
            self.statuses.retain(|s| statuses_of.contains(&Arc::as_ptr(s).addr()));
        }
        for p in added {
            for (i, e) in p.entries.iter().enumerate() {
                let at = self.entries.partition_point(|(q, j)| q.entries[*j].precedence <= e.precedence);
                self.entries.insert(at, (Arc::clone(p), i));
            }
            if let Some(s) = &p.status {
                let at = self.statuses.partition_point(|x| x.key <= s.key);
                self.statuses.insert(at, Arc::clone(s));
            }
            self.count(p, true);
            self.parts.insert(addr(p), Arc::clone(p));
        }
    }

    /// Counts `p`'s Service ports and backend names in (`add`) or out.
    fn count(&mut self, p: &RoutePart, add: bool) {
        fn step<K: std::hash::Hash + Eq>(map: &mut foldhash::HashMap<K, usize>, k: K, add: bool) {
            if add {
                *map.entry(k).or_default() += 1;
            } else if let Some(n) = map.get_mut(&k) {
                *n -= 1;
                if *n == 0 {
                    map.remove(&k);
                }
            }
        }
        for r in &p.backends {
            step(&mut self.refs, r.clone(), add);
        }
        for name in p.entries.iter().flat_map(|e| e.route.backends.iter().filter_map(|b| b.backend.as_deref())) {
            step(&mut self.names, name.to_owned(), add);
        }
    }
}

/// Which version of an HTTPRoute a [`RoutePart`] was made from: its
/// `metadata.generation`, which the API server moves on every change of
/// its spec and never for a status update (so realip's own status patch
/// does not make the route look changed), else its `resourceVersion`.
#[derive(Clone, Debug, PartialEq, Eq)]
enum RouteVersion {
    Generation(i64),
    Resource(String),
}

fn version(m: &ObjectMeta) -> Option<RouteVersion> {
    m.generation.map(RouteVersion::Generation).or_else(|| m.resource_version.clone().map(RouteVersion::Resource))
}

/// The hasher of the fingerprints below: seeded once per process, so a
/// fingerprint is comparable with the previous one of the same process.
static FINGERPRINT: std::sync::LazyLock<foldhash::fast::RandomState> =
    std::sync::LazyLock::new(foldhash::fast::RandomState::default);

/// A fingerprint of what [`RoutePart`]s depend on, or `None` when some
/// object has no `resourceVersion`.
///
/// Only what can change a route's outcome counts (review 19 MED-3: a
/// tenant's unrelated write must not rebuild every route): the Secrets a
/// listener names (their contents decide whether it is programmed), and
/// the Namespaces' names and labels (`from: Selector`; an annotation
/// written on a Namespace changes its `resourceVersion`, not a route).
fn context_fingerprint(inp: &Inputs<'_>) -> Option<u64> {
    use std::hash::{BuildHasher as _, Hash as _, Hasher as _};
    let mut h = FINGERPRINT.build_hasher();
    let named: BTreeSet<(String, &str)> = inp
        .gateways
        .iter()
        .map(|g| (&g.metadata, &g.spec.listeners))
        .chain(inp.listener_sets.iter().map(|s| (&s.metadata, &s.spec.listeners)))
        .flat_map(|(m, ls)| {
            let ns = ns_of(m);
            ls.iter().filter_map(|l| l.tls.as_ref()).flat_map(move |t| {
                let ns = ns.clone();
                t.certificate_refs
                    .iter()
                    .map(move |r| (r.namespace.clone().unwrap_or_else(|| ns.clone()), r.name.as_str()))
            })
        })
        .collect();
    let secrets: Vec<&ObjectMeta> = inp
        .secrets
        .iter()
        .map(|o| &o.metadata)
        .filter(|m| m.name.as_deref().is_some_and(|n| named.contains(&(ns_of(m), n))))
        .collect();
    let metas = inp
        .classes
        .iter()
        .map(|o| &o.metadata)
        .chain(inp.gateways.iter().map(|o| &o.metadata))
        .chain(inp.listener_sets.iter().map(|o| &o.metadata))
        .chain(inp.grants.iter().map(|o| &o.metadata))
        .chain(secrets.iter().copied())
        // ClientIPPolicies decide which listeners are served (fail closed,
        // chain conflicts, ListenerSet narrowing), hence routes' status.
        .chain(inp.ip_policies.iter().map(|o| &o.metadata));
    for m in metas {
        m.uid.hash(&mut h);
        m.resource_version.as_deref()?.hash(&mut h);
    }
    for n in &inp.namespaces {
        n.metadata.name.hash(&mut h);
        n.metadata.labels.hash(&mut h);
    }
    inp.class.hash(&mut h);
    format!("{:?}", inp.binds).hash(&mut h);
    // The lists' lengths tell a removal from a change elsewhere.
    [inp.classes.len(), inp.gateways.len(), inp.listener_sets.len(), inp.grants.len()].hash(&mut h);
    [inp.namespaces.len(), secrets.len(), inp.ip_policies.len()].hash(&mut h);
    format!("{:?}", inp.last_good_ip).hash(&mut h);
    Some(h.finish())
}

/// A fingerprint of objects by uid and `resourceVersion` (and how many),
/// or `None` when one has no `resourceVersion`.
fn versions_fingerprint<'m>(metas: impl Iterator<Item = &'m ObjectMeta>) -> Option<u64> {
    use std::hash::{BuildHasher as _, Hash as _, Hasher as _};
    let mut h = FINGERPRINT.build_hasher();
    let mut n = 0usize;
    for m in metas {
        m.uid.hash(&mut h);
        m.resource_version.as_deref()?.hash(&mut h);
        n += 1;
    }
    n.hash(&mut h);
    Some(h.finish())
}

/// The Services' [`versions_fingerprint`].
fn services_fingerprint(inp: &Inputs<'_>) -> Option<u64> {
    versions_fingerprint(inp.services.iter().map(|o| &o.metadata))
}

/// The Services (namespace, name) that are new, gone or changed since the
/// last translation (`cache.service_versions`, updated here); none when the
/// fingerprint `now` is the last one.
fn changed_services(inp: &Inputs<'_>, cache: &mut RouteCache, now: Option<u64>) -> BTreeSet<(String, String)> {
    if now.is_some() && cache.services == now {
        return BTreeSet::new();
    }
    cache.services = now;
    let mut current: foldhash::HashMap<(String, String), (Option<String>, String)> =
        foldhash::HashMap::with_capacity_and_hasher(inp.services.len(), foldhash::fast::RandomState::default());
    for m in inp.services.iter().map(|o| &o.metadata) {
        let v = (m.uid.clone(), m.resource_version.clone().unwrap_or_default());
        current.insert((ns_of(m), name_of(m)), v);
    }
    let mut changed: BTreeSet<(String, String)> =
        current.iter().filter(|(k, v)| cache.service_versions.get(*k) != Some(*v)).map(|(k, _)| k.clone()).collect();
    changed.extend(cache.service_versions.keys().filter(|k| !current.contains_key(*k)).cloned());
    cache.service_versions = current;
    changed
}

/// The EndpointSlices' [`versions_fingerprint`].
fn endpoints_fingerprint(inp: &Inputs<'_>) -> Option<u64> {
    versions_fingerprint(inp.slices.iter().map(|o| &o.metadata))
}

/// The most routes one HTTPRoute may expand to (its parents' served
/// listener hostnames × its matches): twice what one listener can take
/// within the CRD's limits (16 hostnames × 128 matches). One over it is
/// `Accepted: False, UnsupportedValue` and not served (review 15 N4: 32
/// Gateways of 64 listeners each turned a 14 KB route into 262,144 routes
/// and a GB of proxy memory).
pub const MAX_ROUTE_ENTRIES: usize = 4096;

/// The default of [`Inputs::max_routes_per_namespace`]: the most routes
/// (parents × listener hostnames × matches, summed over its HTTPRoutes)
/// one namespace may have served. Oldest HTTPRoute first; one that would
/// pass it is `Accepted: False, UnsupportedValue` and not served, the
/// others keep serving (review 16 M1: [`MAX_ROUTE_ENTRIES`] bounds one
/// object, not a tenant — 48 HTTPRoutes at that cap cost the shared proxy
/// 0.7 GB). Four times the per-object cap; the scale benchmark's 500
/// routes per namespace stay far within it.
pub const MAX_ROUTES_PER_NAMESPACE: usize = 4 * MAX_ROUTE_ENTRIES;

/// A parentRef as the translation tells parents apart: kind, namespace
/// (defaulted), name, sectionName, port.
type ParentKey<'a> = (&'a str, String, &'a str, Option<&'a str>, Option<i32>);

/// Whether `kind` `ns`/`name` (a Gateway, a ListenerSet, or an HTTPRoute
/// all of whose parents are) belongs to another GatewayClass realip's
/// controller runs: another realip's (`--gateway-class`), whose statuses
/// under the same controllerName this proxy leaves alone (review 31 MED-1,
/// review 13c). Unknown objects are not foreign.
fn foreign(inp: &Inputs<'_>, kind: &str, ns: &str, name: &str) -> bool {
    match kind {
        "Gateway" => {
            let class = inp
                .gateways
                .iter()
                .find(|g| ns_of(&g.metadata) == ns && name_of(&g.metadata) == name)
                .map(|g| g.spec.gateway_class_name.as_str());
            class.is_some_and(|c| {
                c != inp.class
                    && inp
                        .classes
                        .iter()
                        .any(|k| k.metadata.name.as_deref() == Some(c) && k.spec.controller_name == CONTROLLER_NAME)
            })
        }
        "ListenerSet" => {
            inp.listener_sets.iter().find(|s| ns_of(&s.metadata) == ns && name_of(&s.metadata) == name).is_some_and(
                |s| {
                    let p = &s.spec.parent_ref;
                    foreign(inp, "Gateway", p.namespace.as_deref().unwrap_or(ns), &p.name)
                },
            )
        }
        // A route none of whose parents is of this proxy's class, and one
        // of them another realip's (review 13d MED-1: a parent of a third
        // controller made it "ours", and TargetNotFound was written).
        "HTTPRoute" => {
            inp.routes.iter().find(|r| ns_of(&r.metadata) == ns && name_of(&r.metadata) == name).is_some_and(|r| {
                let parents = || {
                    r.spec.parent_refs.iter().map(|p| {
                        (p.kind.as_deref().unwrap_or("Gateway"), p.namespace.as_deref().unwrap_or(ns), p.name.as_str())
                    })
                };
                parents().any(|(k, n, m)| foreign(inp, k, n, m)) && !parents().any(|(k, n, m)| of_class(inp, k, n, m))
            })
        }
        _ => false,
    }
}

/// Whether `kind` `ns`/`name` is a Gateway of this proxy's class, or a
/// ListenerSet of one.
fn of_class(inp: &Inputs<'_>, kind: &str, ns: &str, name: &str) -> bool {
    match kind {
        "Gateway" => inp.gateways.iter().any(|g| {
            ns_of(&g.metadata) == ns && name_of(&g.metadata) == name && g.spec.gateway_class_name == inp.class
        }),
        "ListenerSet" => {
            inp.listener_sets.iter().find(|s| ns_of(&s.metadata) == ns && name_of(&s.metadata) == name).is_some_and(
                |s| {
                    let p = &s.spec.parent_ref;
                    of_class(inp, "Gateway", p.namespace.as_deref().unwrap_or(ns), &p.name)
                },
            )
        }
        _ => false,
    }
}

/// Whether a status entry's reference (`parentRef` / `ancestorRef`,
/// namespace defaulting to `ns`) names something this proxy owns: not
/// [`foreign`].
fn ref_is_ours(inp: &Inputs<'_>, ns: &str, r: &serde_json::Value) -> bool {
    let (kind, ns, name) = (
        r["kind"].as_str().unwrap_or("Gateway"),
        r["namespace"].as_str().unwrap_or(ns),
        r["name"].as_str().unwrap_or_default(),
    );
    if kind == "HTTPRoute" {
        // A policy's route-kind ancestor (the route attached nowhere for a
        // proxy) of a route with a parent of another realip's may be that
        // realip's: left alone (review 13e: two realips dropped each
        // other's in turn).
        return !inp.routes.iter().find(|x| ns_of(&x.metadata) == ns && name_of(&x.metadata) == name).is_some_and(
            |x| {
                x.spec.parent_refs.iter().any(|p| {
                    foreign(inp, p.kind.as_deref().unwrap_or("Gateway"), p.namespace.as_deref().unwrap_or(ns), &p.name)
                })
            },
        );
    }
    !foreign(inp, kind, ns, name)
}

/// The references of `status`'s realip-named entries (under `field`,
/// each's reference in `reference`) this proxy owns and no longer writes
/// (`writing`): removed at the next write, other ones kept.
fn stale_refs(
    inp: &Inputs<'_>,
    key: (&'static str, &str, &str),
    status: Option<&serde_json::Value>,
    (field, reference): (&str, &str),
    writing: &[serde_json::Value],
) -> Vec<serde_json::Value> {
    let (kind, ns, name) = key;
    let stored = status
        .and_then(|s| s[field].as_array())
        .into_iter()
        .flatten()
        .filter(|e| e["controllerName"] == CONTROLLER_NAME)
        .map(|e| e[reference].clone());
    // (Review 13f: a write of this proxy's not yet back through the watch
    // left its entry out of `status`, so it was never dropped.)
    let previous: Vec<serde_json::Value> = inp
        .previous
        .and_then(|p| p.get(&ObjectKey { kind, namespace: Some(ns.to_owned()), name: name.to_owned() }))
        .map(|s| match &s.status {
            Status::Route { parents, .. } | Status::Policy { ancestors: parents, .. } => {
                parents.iter().map(|p| super::status::reference_json(&p.reference, "Gateway")).collect()
            }
            _ => Vec::new(),
        })
        .unwrap_or_default();
    let mut out: Vec<serde_json::Value> = Vec::new();
    for r in stored.chain(previous) {
        if !writing.contains(&r) && !out.contains(&r) && ref_is_ours(inp, ns, &r) {
            out.push(r);
        }
    }
    out
}

/// Translates one HTTPRoute (see [`RoutePart`]), building at most `limit`
/// routes (at most [`MAX_ROUTE_ENTRIES`]): one that expands to more than
/// `limit` but not more than that cap is only counted — no routes built,
/// its status as translated kept in `over` for [`over_budget`] to decide
/// (its namespace's budget had less than that left, in the order the
/// routes came; in age order it may still fit, and is then translated
/// again in full). So routes past their namespace's budget cost their
/// counting, not their expansion (review 17 B1).
#[allow(clippy::too_many_lines)] // one pass over the parents, in spec order
fn route_part(route: &HttpRoute, ctx: &RouteCtx<'_, '_, '_>, limit: usize) -> RoutePart {
    let mut entries: Vec<PartEntry> = Vec::new();
    let mut backends: Vec<BackendRef> = Vec::new();
    // Its named rules (policy targets) are the route's whether or not it
    // is served: a policy on one of them then says why it acts nowhere,
    // the same whatever the order the routes came in (review 18 L1).
    let rule_names: Vec<String> = route.spec.rules.iter().filter_map(|r| r.name.clone()).collect();
    let mut attached: Vec<usize> = Vec::new();
    let mut pending: Vec<String> = Vec::new();
    let (rns, rname) = (ns_of(&route.metadata), name_of(&route.metadata));
    let on_route: Arc<TargetKey> = Arc::new(("HTTPRoute".to_owned(), rns.clone(), rname.clone(), None));
    let route_key: Arc<str> = format!("{rns}/{rname}").into();
    let mut parents = Vec::new();
    let mut validated: Option<Rules> = None;
    // The same parent written twice (`{name: gw}` and `{name: gw,
    // namespace: NS}` are distinct to the CRD) is one parent: attaching it
    // twice would double its routes (review 15 N4).
    let mut seen_parents: Vec<ParentKey<'_>> = Vec::new();
    // Routes it expands to would pass MAX_ROUTE_ENTRIES: none is served.
    let mut oversize: Option<usize> = None;
    for pref in &route.spec.parent_refs {
        let kind = pref.kind.as_deref().unwrap_or("Gateway");
        let pns = pref.namespace.clone().unwrap_or_else(|| rns.clone());
        if !group_is(pref.group.as_deref(), GATEWAY_GROUP) || !matches!(kind, "Gateway" | "ListenerSet") {
            continue;
        }
        let parent = (kind, pns.clone(), pref.name.as_str(), pref.section_name.as_deref(), pref.port);
        if seen_parents.contains(&parent) {
            continue;
        }
        seen_parents.push(parent);
        let Some(on_parent) = ctx.layout().parent(kind, &pns, &pref.name) else {
            continue; // not ours: another controller writes this entry
        };
        let mut reference = pref.clone();
        reference.namespace.get_or_insert(pns.clone());
        let candidates: Vec<usize> = on_parent
            .iter()
            .copied()
            .filter(|&i| {
                let l = &ctx.listeners[i];
                pref.section_name.as_ref().is_none_or(|s| *s == l.spec.name)
                    && pref.port.is_none_or(|p| p == l.spec.port)
            })
            .collect();
        let v = validated.get_or_insert_with(|| rules(route, ctx.inp, ctx.services(), &mut backends));
        let invalid = v.as_ref().ok().and_then(|(rules, _)| invalid_rules(rules));
        let invalid = invalid.as_ref();
        let mut conds = Vec::new();
        let mut hosts_by_listener: Vec<(usize, Vec<Option<String>>)> = Vec::new();
        // As the CRD would: `*`, `` and the like are refused, never
        // intersected with a listener's hostname.
        let bad_hostname = route.spec.hostnames.iter().enumerate().find_map(|(i, h)| {
            hostname_problem(h).map(|why| format!("hostnames[{i}] `{h}`: {why}; the route is not served"))
        });
        let accepted = if candidates.is_empty() {
            Cond::new("Accepted", false, "NoMatchingParent", "no listener matches sectionName / port")
        } else if let Some(m) = bad_hostname {
            Cond::new("Accepted", false, "UnsupportedValue", m)
        } else {
            let allowed: Vec<usize> = candidates
                .iter()
                .copied()
                .filter(|&i| {
                    let l = &ctx.listeners[i];
                    l.ok && l.kinds.iter().any(|k| k == "HTTPRoute")
                        && namespace_allowed(
                            l.spec.allowed_routes.as_ref().and_then(|a| a.namespaces.as_ref()),
                            "Same",
                            &rns,
                            &l.parent_ns,
                            &ctx.inp.namespaces,
                        )
                })
                .collect();
            for &i in &allowed {
                if let Some(h) = intersect_hosts(ctx.listeners[i].spec.hostname.as_deref(), &route.spec.hostnames) {
                    hosts_by_listener.push((i, h));
                }
            }
            if allowed.is_empty() {
                Cond::new(
                    "Accepted",
                    false,
                    "NotAllowedByListeners",
                    "no listener of this parent admits the route (namespace, kind, or listener not accepted)",
                )
            } else if hosts_by_listener.is_empty() {
                Cond::new(
                    "Accepted",
                    false,
                    "NoMatchingListenerHostname",
                    "no listener hostname intersects the route's hostnames",
                )
            } else if let Err((reason, m)) = v {
                Cond::new("Accepted", false, reason, m.clone())
            } else if let Some((m, _)) = invalid {
                // Not accepted as written, yet attached: its invalid
                // rules answer 500 rather than let their requests
                // fall through to another route.
                Cond::new("Accepted", false, "UnsupportedValue", m.clone())
            } else if !hosts_by_listener.iter().any(|(i, _)| ctx.listeners[*i].served()) {
                // Attached, but every listener it attaches to is
                // unprogrammed: nothing serves it until one is.
                let why: Vec<String> = hosts_by_listener
                    .iter()
                    .filter_map(|(i, _)| {
                        let l = &ctx.listeners[*i];
                        l.unprogrammed().map(|m| format!("listener {}: {m}", l.spec.name))
                    })
                    .collect();
                Cond::new("Accepted", false, "Pending", format!("not served yet: {}", why.join("; ")))
            } else {
                Cond::new("Accepted", true, "Accepted", accepted_message(route))
            }
        };
        // Attached (served) when accepted, or refused only for rules
        // that answer 500 (`invalid`: v is Ok, so this reason is its).
        // Pending routes are named to the proxy (which logs them
        // unserved) on the listeners no bind serves.
        let ok = accepted.status
            || (invalid.is_some() && accepted.reason == "UnsupportedValue")
            || accepted.reason == "Pending";
        conds.push(accepted);
        conds.push(match v {
            Ok((_, Some((reason, m)))) => Cond::new("ResolvedRefs", false, reason, m.clone()),
            _ => Cond::new("ResolvedRefs", true, "ResolvedRefs", "all references resolved"),
        });
        if let Some((m, true)) = invalid.filter(|_| ok) {
            conds.push(Cond::new("PartiallyInvalid", true, "UnsupportedValue", m.clone()));
        }
        parents.push(RefStatus { reference, conditions: conds });
        let (Ok((rule_outs, _)), true) = (&*v, ok) else { continue };
        for &(i, _) in &hosts_by_listener {
            attached.push(i);
        }
        // Handed over on the ctx.listeners that can serve it; on those no
        // bind serves, only named (`pending`): a route per hostname and
        // match there would serve nothing, yet cost the proxy as much as
        // served ones (review 14, F4).
        hosts_by_listener.retain(|(i, _)| {
            let l = &ctx.listeners[*i];
            if l.emitted() && l.unbound {
                pending.push(l.full_name.clone());
            }
            l.emitted() && !l.unbound
        });
        let Some(&(first, _)) = hosts_by_listener.first() else { continue };
        let gateway = ctx.listeners[first].gateway.clone();
        let on_gateway: Arc<TargetKey> = Arc::new(("Gateway".to_owned(), gateway.0.clone(), gateway.1.clone(), None));
        // (host, hosts left to more specific listeners) → listeners
        // (The hosts left out shared by the routes of every match there.)
        let mut by_host: BTreeMap<HostExcept, Vec<String>> = BTreeMap::new();
        for (i, hs) in &hosts_by_listener {
            for h in isolated(ctx.siblings(*i), hs) {
                by_host.entry((h.0, h.1.into())).or_default().push(ctx.listeners[*i].full_name.clone());
            }
        }
        let born = created(&route.metadata);
        let born_key: Arc<str> = born.as_str().into();
        let more = rule_outs.iter().map(|r| r.matches.len()).sum::<usize>() * by_host.len();
        if oversize.is_some() || entries.len() + more > limit.min(MAX_ROUTE_ENTRIES) {
            oversize = Some(oversize.unwrap_or(entries.len()) + more);
            continue;
        }
        for rule in rule_outs {
            let on_rule: Option<Arc<TargetKey>> =
                rule.name.clone().map(|n| Arc::new(("HTTPRoute".to_owned(), rns.clone(), rname.clone(), Some(n))));
            for (mi, (path, method, headers, query)) in rule.matches.iter().enumerate() {
                for ((host, except), ls) in &by_host {
                    let host_rank = match host {
                        Some(h) if !h.starts_with('*') => 0,
                        Some(_) => 1,
                        None => 2,
                    };
                    let (path_rank, path_len) = match path {
                        PathMatch::Exact(p) => (0, p.len()),
                        // `/api/` matches what `/api` matches: a trailing `/`
                        // the matcher ignores does not rank it higher (review 20 LOW-1).
                        PathMatch::SegmentPrefix(p) => (1, p.trim_end_matches('/').len()),
                        PathMatch::Prefix(p) => (1, p.len()),
                    };
                    let rule_index = rule.index;
                    let key: Precedence = (
                        host_rank,
                        std::cmp::Reverse(host.as_ref().map_or(0, String::len)),
                        path_rank,
                        std::cmp::Reverse(path_len),
                        u8::from(method.is_none()),
                        std::cmp::Reverse(headers.len()),
                        std::cmp::Reverse(query.len()),
                        Arc::clone(&born_key),
                        Arc::clone(&route_key),
                        rule_index,
                        mi,
                    );
                    // One entry per host: with several, the host is part
                    // of the name so names stay unique and stable.
                    let mut host_part = match host {
                        Some(h) if by_host.len() > 1 => format!("/{h}"),
                        None if by_host.len() > 1 => "/*".to_owned(),
                        _ => String::new(),
                    };
                    if by_host.keys().filter(|(h, _)| h == host).count() > 1 {
                        // The same host on listeners whose siblings
                        // differ (each listener in one entry only): the
                        // first listener keeps names unique, bounded and
                        // stable (review 28 F2: the joined exception list
                        // let a tenant's ListenerSet rename others' routes
                        // and blow up their log lines and metrics).
                        host_part = format!("{host_part}/on:{}", ls.first().map_or("", String::as_str));
                    }
                    let r = Route {
                        name: format!("httproute/{rns}/{rname}/{}/{mi}{host_part}", rule.id),
                        origin: format!("httproute/{rns}/{rname}"),
                        created: born.clone(),
                        listeners: ls.clone(),
                        host: host.clone(),
                        path: path.clone(),
                        method: method.clone(),
                        headers: Arc::clone(headers),
                        query: Arc::clone(query),
                        filters: Arc::clone(&rule.filters),
                        backends: Arc::clone(&rule.backends),
                        access: None,
                        max_body: None,
                        ssl_redirect: false,
                        except_hosts: Arc::clone(except),
                    };
                    entries.push(PartEntry {
                        precedence: key,
                        route: Arc::new(r),
                        on_rule: on_rule.clone(),
                        on_route: Arc::clone(&on_route),
                        on_gateway: Arc::clone(&on_gateway),
                    });
                }
            }
        }
    }
    // Over `limit` only: counted, not built (see above).
    let deferred = oversize.filter(|n| *n <= MAX_ROUTE_ENTRIES);
    if deferred.is_some() {
        entries.clear();
        attached.clear();
        pending.clear();
    }
    if let Some(n) = oversize.filter(|_| deferred.is_none()) {
        // Bounded cost per object: one small HTTPRoute must not become
        // hundreds of thousands of routes (parents × listener hostnames ×
        // matches). Refused as a whole, as written.
        entries.clear();
        attached.clear();
        pending.clear();
        let why = format!(
            "expands to {n} routes (parents × hostnames × matches), over the {MAX_ROUTE_ENTRIES} one HTTPRoute may \
             have in realip: split it into several routes; not served"
        );
        for p in &mut parents {
            p.conditions.retain(|c| c.kind != "PartiallyInvalid");
            for c in &mut p.conditions {
                if c.kind == "Accepted" {
                    *c = Cond::new("Accepted", false, "UnsupportedValue", why.clone());
                }
            }
        }
    }
    // With no parent of realip's left, a status is still written while the
    // route holds entries this proxy wrote before (another parent now, a
    // Gateway gone or moved to another class): it removes them, keeping
    // other controllers' (review 29 F1: a stale `Accepted: True` stayed).
    let named: Vec<serde_json::Value> =
        parents.iter().map(|p| super::status::reference_json(&p.reference, "Gateway")).collect();
    let drop =
        stale_refs(ctx.inp, ("HTTPRoute", &rns, &rname), route.status.as_ref(), ("parents", "parentRef"), &named);
    let status = (!parents.is_empty() || !drop.is_empty()).then(|| {
        Arc::new(ObjectStatus {
            key: ObjectKey { kind: "HTTPRoute", namespace: Some(rns.clone()), name: rname.clone() },
            generation: route.metadata.generation,
            status: Status::Route { parents, drop },
        })
    });
    // Its entries in precedence order. One attached to several parents has an
    // entry per parent: the later ones get `#2`, `#3`… so every name is unique
    // (the proxy refuses a configuration with a name twice). Names carry the
    // route's namespace and name, so only its own entries can collide.
    entries.sort_by(|a, b| a.precedence.cmp(&b.precedence));
    let mut seen_names: BTreeMap<String, u32> = BTreeMap::new();
    for e in &mut entries {
        let n = seen_names.entry(e.route.name.clone()).or_insert(0);
        *n += 1;
        if *n > 1 {
            // (Not shared yet: no copy.)
            let r = Arc::make_mut(&mut e.route);
            r.name = format!("{}#{n}", r.name);
        }
    }
    attached.sort_unstable();
    attached.dedup();
    pending.sort_unstable();
    pending.dedup();
    let view = Some(ctx.view(route));
    RoutePart {
        version: version(&route.metadata),
        uid: route.metadata.uid.clone(),
        name: (rns, rname),
        entries: entries.into_iter().map(Arc::new).collect(),
        backends,
        rule_names,
        attached,
        pending,
        served: std::sync::Mutex::new(Vec::new()),
        services: services_named(route),
        over: deferred.map(|n| (n, status.clone())),
        view,
        refused: None,
        status,
    }
}

/// Bounded cost per tenant: the HTTPRoutes of one namespace (`parts`, one
/// per route of `routes`, in the same order) may expand to `budget` routes
/// together. Oldest first (creation time, then name, as precedence), each
/// route's routes are counted; one that would pass the budget is replaced
/// by a refused part — no routes, attached nowhere, `Accepted: False,
/// UnsupportedValue` naming the budget and the count where it was
/// accepted — and the later ones are still counted (a smaller one may
/// fit). The refused part replaces the translated one in `cache` too (its
/// entries are freed); one that fits again is translated again
/// (`translate_one`, by index).
fn over_budget(
    parts: &mut [Arc<RoutePart>],
    routes: &[&HttpRoute],
    budget: usize,
    cache: &mut RouteCache,
    translate_one: &dyn Fn(usize) -> RoutePart,
    view: &dyn Fn(usize) -> u64,
) {
    let mut total: foldhash::HashMap<&str, usize> = foldhash::HashMap::default();
    let mut refused_before = false;
    for p in parts.iter() {
        *total.entry(p.name.0.as_str()).or_default() += p.count();
        refused_before |= p.over.is_some();
    }
    let over: BTreeSet<String> = total.into_iter().filter(|(_, n)| *n > budget).map(|(ns, _)| ns.to_owned()).collect();
    if over.is_empty() && !refused_before {
        return;
    }
    let mut order: Vec<(String, &str, &str, usize)> = parts
        .iter()
        .zip(routes)
        .enumerate()
        .filter(|(_, (p, _))| over.contains(&p.name.0) || p.over.is_some())
        .map(|(i, (p, r))| (created(&r.metadata), p.name.0.as_str(), p.name.1.as_str(), i))
        .collect();
    order.sort_unstable();
    let mut used: foldhash::HashMap<&str, usize> = foldhash::HashMap::default();
    let mut replace: Vec<(usize, Arc<RoutePart>)> = Vec::new();
    for (_, ns, _, i) in &order {
        let p = &parts[*i];
        let n = p.count();
        let have = used.entry(*ns).or_default();
        if !over.contains(*ns) || *have + n <= budget {
            *have += n;
            if p.over.is_some() {
                replace.push((*i, Arc::new(translate_one(*i))));
            }
            continue;
        }
        let why = format!(
            "with the HTTPRoutes of namespace {ns} before it (oldest first), expands to {} routes (parents × \
             hostnames × matches; this one {n}), over the {budget} one namespace may have in realip \
             (--kubernetes-max-routes-per-namespace); not served",
            *have + n
        );
        if p.refused.as_deref() == Some(why.as_str()) {
            continue; // refused as it was: nothing to copy or compare
        }
        let status = match &p.over {
            Some((_, status)) => status.clone(),
            None => p.status.clone(),
        };
        let mut refused = refuse(p, n, status, &why);
        refused.view = refused.view.or_else(|| Some(view(*i)));
        if p.over.is_none() || refused.status != p.status {
            replace.push((*i, Arc::new(refused)));
        }
    }
    for (i, part) in replace {
        let old = std::mem::replace(&mut parts[i], Arc::clone(&part));
        if let Some(uid) = part.uid.as_ref().filter(|u| cache.parts.get(*u).is_some_and(|c| Arc::ptr_eq(c, &old))) {
            cache.parts.insert(uid.clone(), Arc::clone(&part));
        }
        if let Some(o) = cache.order.iter_mut().find(|(_, c)| Arc::ptr_eq(c, &old)) {
            o.1 = part;
        }
    }
}

/// `p` refused: no routes, attached nowhere; `status` (as translated)
/// with each parent where it was accepted `Accepted: False,
/// UnsupportedValue` with `why`.
fn refuse(p: &RoutePart, count: usize, status: Option<Arc<ObjectStatus>>, why: &str) -> RoutePart {
    let shown = status.as_ref().map(|st| {
        let mut st = (**st).clone();
        if let Status::Route { parents, .. } = &mut st.status {
            for r in parents.iter_mut().filter(|r| r.conditions.iter().any(|c| c.kind == "Accepted" && c.status)) {
                r.conditions.retain(|c| c.kind != "PartiallyInvalid");
                for c in r.conditions.iter_mut().filter(|c| c.kind == "Accepted") {
                    *c = Cond::new("Accepted", false, "UnsupportedValue", why.to_owned());
                }
            }
        }
        Arc::new(st)
    });
    RoutePart {
        version: p.version.clone(),
        uid: p.uid.clone(),
        name: p.name.clone(),
        status: shown,
        entries: Vec::new(),
        backends: Vec::new(),
        rule_names: p.rule_names.clone(),
        attached: Vec::new(),
        pending: Vec::new(),
        served: std::sync::Mutex::new(Vec::new()),
        services: p.services.clone(),
        over: Some((count, status)),
        view: p.view,
        refused: Some(why.to_owned()),
    }
}

/// The Services (namespace, name) `route`'s backendRefs name, sorted, once
/// each (a superset of those its translation looked up).
fn services_named(route: &HttpRoute) -> Vec<(String, String)> {
    let ns = ns_of(&route.metadata);
    let mut out: Vec<(String, String)> = route
        .spec
        .rules
        .iter()
        .flat_map(|r| &r.backend_refs)
        .filter(|b| b.group.as_deref().unwrap_or("").is_empty() && b.kind.as_deref().unwrap_or("Service") == "Service")
        .map(|b| (b.namespace.clone().unwrap_or_else(|| ns.clone()), b.name.clone()))
        .collect();
    out.sort_unstable();
    out.dedup();
    out
}

#[allow(clippy::too_many_lines)] // one pass per kind, in spec order
/// Translates everything; see the module documentation for the rules.
pub fn translate(inp: &Inputs<'_>) -> Translation {
    translate_with(inp, &mut RouteCache::default())
}

/// [`translate`], reusing what `cache` kept of the previous translation
/// (see [`RouteCache`]); the result is the same as without it.
#[allow(clippy::too_many_lines)] // one pass per kind, in spec order
pub fn translate_with(inp: &Inputs<'_>, cache: &mut RouteCache) -> Translation {
    let mut statuses = Vec::new();
    let mut certs: BTreeMap<String, Cert> = BTreeMap::new();
    // 1. Classes.
    let mut class_ok = false;
    // Only this proxy's class: another class naming realip's controller is
    // another realip's (`--gateway-class`) to accept, or nobody's (review 14
    // L4: every proxy said "handled by realip" for every such class).
    let ours =
        |c: &&&GatewayClass| c.spec.controller_name == CONTROLLER_NAME && c.metadata.name.as_deref() == Some(inp.class);
    for c in inp.classes.iter().filter(ours) {
        let cond = if c.spec.parameters_ref.is_some() {
            Cond::new("Accepted", false, "InvalidParameters", "realip takes no parametersRef")
        } else {
            Cond::new("Accepted", true, "Accepted", "handled by realip")
        };
        if c.metadata.name.as_deref() == Some(inp.class) && cond.status {
            class_ok = true;
        }
        statuses.push(Arc::new(ObjectStatus {
            key: ObjectKey { kind: "GatewayClass", namespace: None, name: name_of(&c.metadata) },
            generation: c.metadata.generation,
            status: Status::Class { conditions: vec![cond] },
        }));
    }
    // 2. Gateways and their listeners (own, then ListenerSets, oldest first).
    let mut gateways: Vec<&Gateway> =
        inp.gateways.iter().copied().filter(|g| class_ok && g.spec.gateway_class_name == inp.class).collect();
    // Oldest first: in a conflict the older listener wins (the spec's
    // order), across Gateways too, since the proxy merges them on a port.
    gateways.sort_by_key(|g| (created(&g.metadata), ns_of(&g.metadata), name_of(&g.metadata)));
    let mut sets: Vec<&ListenerSet> = inp.listener_sets.clone();
    sets.sort_by_key(|s| (created(&s.metadata), ns_of(&s.metadata), name_of(&s.metadata)));
    let mut listeners: Vec<Lst<'_>> = Vec::new();
    let mut gw_problem: BTreeMap<(String, String), (&'static str, String)> = BTreeMap::new();
    let mut set_ok: BTreeMap<(String, String), Result<(), String>> = BTreeMap::new();
    // The Gateway each admitted ListenerSet attaches to.
    let mut set_parent: BTreeMap<(String, String), (String, String)> = BTreeMap::new();
    // Oldest listener first: a Gateway's own listeners date from the
    // Gateway, a ListenerSet's from the later of the set and its Gateway
    // (a set made today on an old Gateway is today's). Within one Gateway
    // its own listeners come before any ListenerSet's (the ListenerSet
    // spec: the Gateway's listeners win conflicts), these by the sets'
    // age. Key: (age, Gateway rank, own 0 / set 1, set rank); the sort is
    // stable, so spec order within a Gateway or set.
    let mut ordered = Vec::new();
    for (g_rank, g) in gateways.iter().enumerate() {
        let (gns, gname) = (ns_of(&g.metadata), name_of(&g.metadata));
        let g_age = created(&g.metadata);
        if !g.spec.addresses.is_empty() {
            gw_problem.insert(
                (gns.clone(), gname.clone()),
                ("UnsupportedAddress", "spec.addresses is not supported: the address is the publish Service's".into()),
            );
        } else if let Some(k) = g.spec.other.keys().find(|k| k.as_str() != "infrastructure") {
            gw_problem.insert((gns.clone(), gname.clone()), ("UnsupportedValue", format!("spec.{k} is not supported")));
        } else if g.spec.listeners.is_empty() {
            // The CRD's minItems 1: a Gateway of nothing is not accepted
            // (never `Accepted`/`Programmed: True` for serving nothing).
            gw_problem.insert(
                (gns.clone(), gname.clone()),
                ("Invalid", "spec.listeners is empty: a Gateway needs at least one listener".into()),
            );
        }
        let own = g.spec.listeners.iter().map(|l| ("Gateway", gns.clone(), gname.clone(), l));
        let mut attached_sets = Vec::new();
        for (s_rank, s) in sets.iter().enumerate() {
            let p = &s.spec.parent_ref;
            let sns = ns_of(&s.metadata);
            let pns = p.namespace.clone().unwrap_or_else(|| sns.clone());
            if !(group_is(p.group.as_deref(), GATEWAY_GROUP)
                && p.kind.as_deref().unwrap_or("Gateway") == "Gateway"
                && pns == gns
                && p.name == gname)
            {
                continue;
            }
            let allowed = namespace_allowed(
                g.spec.allowed_listeners.as_ref().and_then(|a| a.namespaces.as_ref()),
                "None",
                &sns,
                &gns,
                &inp.namespaces,
            );
            let key = (sns.clone(), name_of(&s.metadata));
            if allowed {
                set_parent.insert(key.clone(), (gns.clone(), gname.clone()));
                set_ok.insert(key, Ok(()));
                let age = created(&s.metadata).max(g_age.clone());
                attached_sets.extend(s.spec.listeners.iter().map(move |l| {
                    ((age.clone(), g_rank, 1, s_rank), ("ListenerSet", sns.clone(), name_of(&s.metadata), l))
                }));
            } else {
                set_ok
                    .insert(key, Err(format!("Gateway {gns}/{gname} allowedListeners does not admit namespace {sns}")));
            }
        }
        let own = own.map(|x| ((g_age.clone(), g_rank, 0, 0), x));
        ordered.extend(
            own.chain(attached_sets)
                .map(|(key, (kind, pns, pname, l))| (key, (kind, pns, pname, l, (gns.clone(), gname.clone())))),
        );
    }
    ordered.sort_by(|a, b| a.0.cmp(&b.0));
    // The listeners, validated oldest first, each checked against the
    // older ones that claim its streams. Indistinct listeners of one
    // Gateway are known only once all are checked: then the pass runs
    // again with them refused before they claim anything, so they take no
    // host from another Gateway's listener (review 31: nobody served it).
    let mut refused: BTreeMap<usize, (&'static str, String)> = BTreeMap::new();
    for pass in 0..2 {
        if pass == 1 {
            refused = indistinct(&listeners);
            if refused.is_empty() {
                break;
            }
            listeners.clear();
        }
        let mut claims = Claims::default();
        for (index, (_, (kind, pns, pname, l, gw))) in ordered.iter().enumerate() {
            let (kind, l) = (*kind, *l);
            let streams = streams(inp.binds.as_deref(), l.port, &format!("{}/{}", gw.0, gw.1));
            let mut lst = Lst {
                parent_kind: kind,
                full_name: format!("{}/{pns}/{pname}/{}", kind.to_ascii_lowercase(), l.name),
                parent_ns: pns.clone(),
                parent_name: pname.clone(),
                gateway: gw.clone(),
                spec: l,
                ok: false,
                kinds: Vec::new(),
                attached: 0,
                conds: Vec::new(),
                certs: Vec::new(),
                closed: None,
                streams,
                unbound: false,
                lost: BTreeMap::new(),
            };
            check_listener(&mut lst, &listeners, &claims, inp, &mut certs);
            if let Some((reason, why)) = refused.get(&index) {
                refuse_indistinct(&mut lst, reason, why);
            }
            if gw_problem.contains_key(&lst.gateway) {
                lst.ok = false;
            }
            listeners.push(lst);
            claims.add(&listeners, listeners.len() - 1);
        }
    }
    // A listener no bind of the proxy serves is not programmed, whatever
    // the objects say; routes attached only there are not served either.
    for l in listeners.iter_mut().filter(|l| l.ok && !l.kinds.is_empty()) {
        let https = l.spec.protocol == "HTTPS";
        let port = u16::try_from(l.spec.port).unwrap_or(0);
        let Some(why) = inp.binds.as_deref().and_then(|b| unbound(b, port, https)) else { continue };
        l.unbound = true;
        for c in l.conds.iter_mut().filter(|c| c.kind == "Programmed") {
            *c = Cond::new("Programmed", false, "Invalid", why.clone());
        }
    }
    // 3. Policies that attach to Gateways / listeners.
    // (parent kind, parent ns, parent name, gateway, listener name)
    let index: Vec<ListenerIndex> = listeners
        .iter()
        .map(|l| (l.parent_kind, l.parent_ns.clone(), l.parent_name.clone(), l.gateway.clone(), l.spec.name.clone()))
        .collect();
    // A Gateway target names the Gateway's own listeners, a ListenerSet one
    // the set's; looked up, not scanned (review 23 HIGH-1: a tenant's
    // policies of 16 targetRefs each walked every listener per target).
    let mut parents: foldhash::HashSet<(&str, &str, &str)> = foldhash::HashSet::default();
    let mut sections: foldhash::HashSet<(&str, &str, &str, &str)> = foldhash::HashSet::default();
    for (kind, pns, pname, gw, lname) in &index {
        let (ns, name) =
            if *kind == "Gateway" { (gw.0.as_str(), gw.1.as_str()) } else { (pns.as_str(), pname.as_str()) };
        parents.insert((kind, ns, name));
        sections.insert((kind, ns, name, lname.as_str()));
    }
    let listener_exists = |k: &TargetKey| match k.0.as_str() {
        kind @ ("Gateway" | "ListenerSet") => match &k.3 {
            None => parents.contains(&(kind, k.1.as_str(), k.2.as_str())),
            Some(s) => sections.contains(&(kind, k.1.as_str(), k.2.as_str(), s.as_str())),
        },
        _ => false,
    };
    let ip: Vec<Attach<'_, ClientIp>> = inp
        .ip_policies
        .iter()
        .map(|p| {
            let key = format!("{}/{}", ns_of(&p.metadata), name_of(&p.metadata));
            (&p.metadata, p.spec.target_refs.as_slice(), client_ip(p), inp.last_good_ip.get(&key).cloned())
        })
        .collect();
    let ip_in_force: BTreeMap<String, ClientIp> = ip
        .iter()
        .filter_map(|(m, _, v, last)| {
            let c = v.as_ref().ok().or(last.as_ref())?;
            Some((format!("{}/{}", ns_of(m), name_of(m)), c.clone()))
        })
        .collect();
    let mut ip_won = attach_policies(
        &ip,
        "ClientIPPolicy",
        inp,
        &listener_exists,
        // (review 13e LOW-1: an HTTPRoute target was "not found".)
        &|k: &TargetKey| {
            (!matches!(k.0.as_str(), "Gateway" | "ListenerSet")).then(|| {
                format!(
                    "targetRefs: a ClientIPPolicy targets a Gateway (or one of its listeners) or a ListenerSet, not a {}",
                    k.0
                )
            })
        },
        "the listeners it targets are not served (fail closed)",
        &mut statuses,
    );
    narrow_set_policies(&mut ip_won, &listeners, &mut statuses);
    // A listener whose chain is an invalid policy with no last valid
    // version is not served at all (its routes are Pending): serving it
    // with the file's chain would trust what the policy meant to refuse.
    for l in listeners.iter_mut().filter(|l| l.ok) {
        let Some(Err((_, why))) = chain_of(l, &ip_won) else { continue };
        let why = format!("{why}: this listener is not served until it is fixed (fail closed)");
        for c in l.conds.iter_mut().filter(|c| c.kind == "Programmed") {
            *c = Cond::new("Programmed", false, "Invalid", why.clone());
        }
        l.closed = Some(why);
    }
    chain_conflicts(&mut listeners, &ip_won, inp.binds.as_deref(), &mut statuses);
    // 4. Routes: each HTTPRoute alone (see [`RoutePart`]), or as the cache
    // kept it when neither it nor anything it depends on changed.
    // In the store's order: what is made of the parts is sorted anyway
    // (routes by precedence, statuses by object; a route's own entries keep
    // their order), so their order does not matter.
    let http_routes: &[&HttpRoute] = &inp.routes;
    let services = std::cell::OnceCell::new();
    let siblings: Vec<std::cell::OnceCell<Vec<String>>> =
        listeners.iter().map(|_| std::cell::OnceCell::new()).collect();
    let layout = std::cell::OnceCell::new();
    let service_fp = services_fingerprint(inp);
    let context = context_fingerprint(inp).filter(|_| service_fp.is_some());
    // Parts outlive a change of the context while what they read of it
    // is the same ([`RouteCtx::view`]).
    let mut carried: foldhash::HashMap<String, Arc<RoutePart>> = foldhash::HashMap::default();
    if context.is_none() || cache.context != context {
        if context.is_some() && cache.context.is_some() {
            carried = std::mem::take(&mut cache.parts);
            carried.retain(|_, p| p.view.is_some());
        }
        cache.parts.clear();
        cache.order.clear();
    }
    cache.context = context;
    // Parts naming a Service that changed are translated again.
    let changed = changed_services(inp, cache, service_fp);
    let stale = |p: &RoutePart| !changed.is_empty() && p.services.iter().any(|s| changed.contains(s));
    // The same Services and EndpointSlices in the same order as last time
    // (context, Services and endpoints fingerprints): their positions
    // still hold.
    // (The context is not part of it: a Service port resolves from the
    // Services and EndpointSlices alone, so a ClientIPPolicy edit resolves
    // nothing again. Without a context fingerprint, nothing is cached.)
    let endpoints =
        context.and(service_fp).zip(endpoints_fingerprint(inp)).map(|(s, e)| s.rotate_left(2) ^ e.rotate_left(1));
    let positions = cache.index.take().filter(|_| endpoints.is_some() && cache.endpoints == endpoints);
    let mut parts: Vec<Arc<RoutePart>> = Vec::with_capacity(http_routes.len());
    {
        let ctx = RouteCtx {
            inp,
            listeners: &listeners,
            gateways: &gateways,
            set_ok: &set_ok,
            services: &services,
            siblings: &siblings,
            layout: &layout,
            positions: positions.clone(),
        };
        let order = std::mem::take(&mut cache.order);
        let mut next = 0;
        // Routes counted so far per namespace, in the order they come: a
        // route is built only within what its namespace has left.
        let budget = inp.max_routes_per_namespace.unwrap_or(MAX_ROUTES_PER_NAMESPACE);
        let mut used: foldhash::HashMap<&str, usize> = foldhash::HashMap::default();
        for route in http_routes {
            let at = std::ptr::from_ref::<HttpRoute>(route).addr();
            let uid = route.metadata.uid.as_deref().filter(|_| context.is_some());
            let version = version(&route.metadata);
            // The same object only if it is the same route and version (an
            // address can be reused by another object once one is freed).
            let current =
                |p: &RoutePart| version.is_some() && p.version == version && p.uid.as_deref() == uid && !stale(p);
            let ahead = next..order.len().min(next + 8);
            let found = ahead.into_iter().find(|&k| order[k].0 == at && current(&order[k].1));
            let ns = route.metadata.namespace.as_deref().unwrap_or("");
            let part = if let Some(k) = found.filter(|_| uid.is_some()) {
                next = k + 1;
                Arc::clone(&order[k].1)
            } else if let Some(p) = uid.and_then(|u| cache.parts.get(u)).filter(|p| current(p)) {
                Arc::clone(p)
            } else if let Some((u, p)) = uid
                .and_then(|u| Some((u, carried.get(u)?)))
                .filter(|(_, p)| current(p) && p.view == Some(ctx.view(route)))
            {
                cache.parts.insert(u.to_owned(), Arc::clone(p));
                cache.carried += 1;
                Arc::clone(p)
            } else {
                let left = budget.saturating_sub(used.get(ns).copied().unwrap_or(0));
                let p = Arc::new(route_part(route, &ctx, left));
                cache.built += p.entries.len();
                cache.translated += 1;
                if let Some(u) = uid {
                    cache.parts.insert(u.to_owned(), Arc::clone(&p));
                }
                p
            };
            if uid.is_some() {
                cache.order.push((at, Arc::clone(&part)));
            }
            *used.entry(ns).or_default() += part.count();
            parts.push(part);
        }
        let again = std::cell::Cell::new(0);
        let translate_one = |i: usize| {
            again.set(again.get() + 1);
            route_part(http_routes[i], &ctx, MAX_ROUTE_ENTRIES)
        };
        over_budget(&mut parts, http_routes, budget, cache, &translate_one, &|i| ctx.view(http_routes[i]));
        cache.translated += again.get();
        if cache.parts.len() > 16 + 2 * parts.len() {
            cache.parts = parts
                .iter()
                .filter_map(|p| Some((p.uid.clone()?, Arc::clone(p))))
                .filter(|_| context.is_some())
                .collect();
        }
    }
    for p in &parts {
        for &i in &p.attached {
            listeners[i].attached += 1;
        }
    }
    cache.sorted.update(&parts);
    statuses.extend(unserved::statuses(inp, &inp.unserved_routes, &listeners, &gateways, &set_ok));
    // 5. Access policies: rule, then route, then Gateway.
    let by_name: std::collections::HashMap<(&str, &str), &RoutePart> = if inp.access_policies.is_empty() {
        std::collections::HashMap::new()
    } else {
        parts.iter().map(|p| ((p.name.0.as_str(), p.name.1.as_str()), &**p)).collect()
    };
    let route_exists = |k: &TargetKey| match k.0.as_str() {
        "HTTPRoute" => by_name
            .get(&(k.1.as_str(), k.2.as_str()))
            .is_some_and(|p| k.3.as_ref().is_none_or(|s| p.rule_names.contains(s))),
        "Gateway" => listener_exists(k),
        _ => false,
    };
    let ap: Vec<Attach<'_, Access>> = inp
        .access_policies
        .iter()
        .map(|p| {
            let key = format!("{}/{}", ns_of(&p.metadata), name_of(&p.metadata));
            (&p.metadata, p.spec.target_refs.as_slice(), access(p), inp.last_good_access.get(&key).cloned())
        })
        .collect();
    // A route attached to a whole Gateway is served on several listeners
    // at once, and its access rules are per route: a Gateway target with
    // sectionName is refused (that target only).
    let gateway_section = |k: &TargetKey| {
        (k.0 == "Gateway" && k.3.is_some()).then(|| {
            format!(
                "targetRefs: Gateway {} with sectionName is not supported (access rules are per route, and a route \
                 may be served on several listeners): target the whole Gateway, an HTTPRoute or one of its rules",
                k.2
            )
        })
    };
    let access_in_force: BTreeMap<String, Access> = ap
        .iter()
        .filter_map(|(m, _, v, last)| {
            let a = v.as_ref().ok().or(last.as_ref())?;
            Some((format!("{}/{}", ns_of(m), name_of(m)), a.clone()))
        })
        .collect();
    let access_won = attach_policies(
        &ap,
        "ClientAccessPolicy",
        inp,
        &route_exists,
        &gateway_section,
        "every client is refused (403) on its targets (fail closed)",
        &mut statuses,
    );
    // A policy on a route reports on the route's Gateways (GEP-713).
    ancestors::access_policy_ancestors(&mut statuses, &|ns, name| {
        let Some(p) = by_name.get(&(ns, name)) else { return (Vec::new(), false) };
        let gateways: BTreeSet<(String, String)> = p.attached.iter().map(|&i| listeners[i].gateway.clone()).collect();
        // (After [`over_budget`], a part still `over` is one it refused.)
        (gateways.into_iter().collect(), p.over.is_some())
    });
    // An invalid policy with no last valid version lets nobody in (an
    // empty allow list), rather than dropping its lists (fail open).
    let access_won: BTreeMap<TargetKey, Access> = access_won
        .into_iter()
        .map(|(k, v)| {
            let a = v.unwrap_or_else(|(policy, _)| Access {
                policy,
                allow: Some(Vec::new()),
                deny: Vec::new(),
                rate_limit: None,
                gateway_rate_limit: None,
            });
            (k, a)
        })
        .collect();
    let access_won = cache.access.intern(access_won);
    // Every route with its access rules (reused as last served when they
    // are the same), then all in precedence order.
    for p in &parts {
        let mut served = p.served.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        // By the policy targets that cover an entry (shared by the entries
        // of a rule): its access rules are looked up once per rule and
        // allocation. They are the policies' own lists or a kept floor,
        // shared by every route served them (a policy's lists are not
        // copied per route: review 14 F4), so the rules as last served are
        // the same ones when they are the same allocation.
        let key = |e: &PartEntry| {
            let rule = e.on_rule.as_ref().map_or(0, |k| Arc::as_ptr(k).addr());
            (rule, Arc::as_ptr(&e.on_route).addr(), Arc::as_ptr(&e.on_gateway).addr())
        };
        let mut wanted: foldhash::HashMap<(usize, usize, usize), Option<Arc<Access>>> = foldhash::HashMap::default();
        let mut want =
            |e: &PartEntry| wanted.entry(key(e)).or_insert_with(|| cache.access.access_for(&access_won, e)).clone();
        let same = served.len() == p.entries.len()
            && served.iter().zip(&p.entries).all(|(r, e)| match (&r.access, want(e)) {
                (None, None) => true,
                (Some(a), Some(b)) => Arc::ptr_eq(a, &b),
                _ => false,
            });
        if !same {
            // An entry no policy applies to is served as it is (shared).
            *served = p
                .entries
                .iter()
                .map(|e| match want(e) {
                    None => Arc::clone(&e.route),
                    Some(a) => Arc::new(Route { access: Some(a), ..(*e.route).clone() }),
                })
                .collect();
        }
    }
    cache.access.sweep();
    let routes: Vec<Arc<Route>> = cache
        .sorted
        .entries
        .iter()
        .map(|(p, i)| Arc::clone(&p.served.lock().unwrap_or_else(std::sync::PoisonError::into_inner)[*i]))
        .collect();
    // 6. Listener and Gateway status, listener specs.
    let mut specs = Vec::new();
    for l in &listeners {
        if !l.emitted() {
            continue;
        }
        // (An `Err` chain never gets here: such a listener is not emitted.)
        let client_ip = chain_of(l, &ip_won).and_then(|c| c.as_ref().ok()).cloned();
        specs.push(ListenerSpec {
            name: l.full_name.clone(),
            gateway: format!("{}/{}", l.gateway.0, l.gateway.1),
            port: u16::try_from(l.spec.port).unwrap_or(0),
            protocol: if l.spec.protocol == "HTTPS" { Protocol::Https } else { Protocol::Http },
            hostname: l.spec.hostname.clone(),
            certs: l.certs.clone(),
            client_ip,
            not_on: l.not_on(inp.binds.as_deref()),
        });
    }
    // A Gateway or ListenerSet with an accepted listener that is not
    // programmed (no bind serves its port, no certificate) is not
    // programmed as a whole.
    let mut unprogrammed_on: BTreeMap<(&'static str, String, String), Vec<String>> = BTreeMap::new();
    for l in &listeners {
        if l.unprogrammed().is_some() {
            unprogrammed_on
                .entry((l.parent_kind, l.parent_ns.clone(), l.parent_name.clone()))
                .or_default()
                .push(format!("{} (port {})", l.spec.name, l.spec.port));
        }
    }
    let not_programmed = |kind: &'static str, ns: &str, name: &str| {
        unprogrammed_on.get(&(kind, ns.to_owned(), name.to_owned())).map(|ls| {
            Cond::new(
                "Programmed",
                false,
                "Invalid",
                format!(
                    "not every listener is programmed: {} (see each listener's Programmed condition)",
                    ls.join(", ")
                ),
            )
        })
    };
    let listener_status = |l: &Lst<'_>| ListenerStatus {
        name: l.spec.name.clone(),
        attached_routes: l.attached,
        supported_kinds: l.kinds.clone(),
        conditions: l.conds.clone(),
    };
    // Each set's listeners and generation looked up, not scanned per set
    // (review 23 MED-2: thousands of ListenerSets made this quadratic).
    let mut set_listeners: foldhash::HashMap<(&str, &str), Vec<&Lst<'_>>> = foldhash::HashMap::default();
    for l in listeners.iter().filter(|l| l.parent_kind == "ListenerSet") {
        set_listeners.entry((l.parent_ns.as_str(), l.parent_name.as_str())).or_default().push(l);
    }
    // A ListenerSet is accepted unless every listener it has is invalid.
    let set_accepted = |ns: &str, name: &str| {
        set_listeners.get(&(ns, name)).is_none_or(|own| own.is_empty() || own.iter().any(|l| l.ok))
    };
    let mut attached_sets: BTreeMap<&(String, String), u32> = BTreeMap::new();
    for ((sns, sname), parent) in &set_parent {
        if set_accepted(sns, sname) {
            *attached_sets.entry(parent).or_default() += 1;
        }
    }
    for g in &gateways {
        let key = (ns_of(&g.metadata), name_of(&g.metadata));
        let own: Vec<&Lst<'_>> = listeners.iter().filter(|l| l.parent_kind == "Gateway" && l.gateway == key).collect();
        let valid = own.iter().filter(|l| l.ok).count();
        // The Gateway's listeners are its own and its ListenerSets' merged
        // (the ListenerSet spec): one valid among them keeps it accepted,
        // and with none it serves nothing (review 31 MED-3).
        let valid_merged = listeners.iter().any(|l| l.gateway == key && l.ok);
        let accepted = match gw_problem.get(&key) {
            Some((reason, m)) => Cond::new("Accepted", false, reason, m.clone()),
            None if valid == own.len() => Cond::new("Accepted", true, "Accepted", "gateway accepted"),
            None if valid_merged => {
                // Which are not valid and which are, as the spec asks (names
                // bounded: a Gateway may have 64 listeners).
                // (Accepted ones of its ListenerSets named too, `NS/SET/NAME`.)
                let names = |ok: bool| {
                    let all: Vec<String> = listeners
                        .iter()
                        .filter(|l| l.gateway == key && l.ok == ok && (l.parent_kind == "Gateway" || ok))
                        .map(|l| {
                            if l.parent_kind == "Gateway" {
                                l.spec.name.clone()
                            } else {
                                format!("{}/{}/{}", l.parent_ns, l.parent_name, l.spec.name)
                            }
                        })
                        .collect();
                    let more = all.len().saturating_sub(16);
                    let shown = all[..all.len().min(16)].join(", ");
                    if more > 0 {
                        format!("{shown} and {more} more")
                    } else {
                        shown
                    }
                };
                Cond::new(
                    "Accepted",
                    true,
                    "ListenersNotValid",
                    format!("listeners not valid (see their conditions): {}; accepted: {}", names(false), names(true)),
                )
            }
            None => Cond::new("Accepted", false, "ListenersNotValid", "no listener is valid"),
        };
        let programmed = if !accepted.status {
            Cond::new("Programmed", false, "Invalid", "gateway not accepted")
        } else if inp.addresses.is_empty() {
            Cond::new("Programmed", false, "AddressNotAssigned", "the publish Service has no load-balancer address yet")
        } else if let Some(c) = not_programmed("Gateway", &key.0, &key.1) {
            c
        } else if !listeners.iter().any(|l| l.gateway == key && l.served()) {
            // Its own listeners refused and its ListenerSets' not served
            // (review 13c finding 5: it said served while serving nothing).
            Cond::new("Programmed", false, "Invalid", "no listener of the Gateway or its ListenerSets is served")
        } else {
            Cond::new("Programmed", true, "Programmed", "served by realip")
        };
        statuses.push(Arc::new(ObjectStatus {
            key: ObjectKey { kind: "Gateway", namespace: Some(key.0.clone()), name: key.1.clone() },
            generation: g.metadata.generation,
            status: Status::Gateway {
                conditions: vec![accepted, programmed],
                addresses: inp.addresses.clone(),
                listeners: own.iter().map(|l| listener_status(l)).collect(),
                attached_sets: Some(attached_sets.get(&key).copied().unwrap_or(0)),
            },
        }));
    }
    let set_generation: foldhash::HashMap<(String, String), Option<i64>> =
        sets.iter().map(|s| ((ns_of(&s.metadata), name_of(&s.metadata)), s.metadata.generation)).collect();
    for ((sns, sname), res) in &set_ok {
        let own: Vec<&Lst<'_>> = set_listeners.get(&(sns.as_str(), sname.as_str())).cloned().unwrap_or_default();
        let meta_gen = set_generation.get(&(sns.clone(), sname.clone())).copied().flatten();
        let accepted = match res {
            Err(m) => Cond::new("Accepted", false, "NotAllowed", m.clone()),
            Ok(()) if own.iter().all(|l| l.ok) => Cond::new("Accepted", true, "Accepted", "listeners attached"),
            Ok(()) if own.iter().any(|l| l.ok) => {
                Cond::new("Accepted", true, "ListenersNotValid", "some listeners are not valid")
            }
            Ok(()) => Cond::new("Accepted", false, "ListenersNotValid", "no listener is valid"),
        };
        let programmed = match not_programmed("ListenerSet", sns, sname) {
            Some(c) if accepted.status => c,
            _ => Cond::new(
                "Programmed",
                accepted.status,
                if accepted.status { "Programmed" } else { "Invalid" },
                if accepted.status { "served by realip" } else { "not served" },
            ),
        };
        statuses.push(Arc::new(ObjectStatus {
            key: ObjectKey { kind: "ListenerSet", namespace: Some(sns.clone()), name: sname.clone() },
            generation: meta_gen,
            status: Status::Gateway {
                conditions: vec![accepted, programmed],
                addresses: Vec::new(),
                listeners: own.iter().map(|l| listener_status(l)).collect(),
                attached_sets: None,
            },
        }));
    }
    // Policy ancestors this proxy wrote before and writes no more are
    // dropped at the next write; another realip's are kept.
    let written: foldhash::HashMap<(&str, String, String), &serde_json::Value> = inp
        .ip_policies
        .iter()
        .filter_map(|p| Some((("ClientIPPolicy", ns_of(&p.metadata), name_of(&p.metadata)), p.status.as_ref()?)))
        .chain(inp.access_policies.iter().filter_map(|p| {
            Some((("ClientAccessPolicy", ns_of(&p.metadata), name_of(&p.metadata)), p.status.as_ref()?))
        }))
        .collect();
    for st in &mut statuses {
        let ns = st.key.namespace.clone().unwrap_or_default();
        let Some(status) = written.get(&(st.key.kind, ns.clone(), st.key.name.clone())).copied() else { continue };
        let status = Some(status);
        let Status::Policy { ancestors, .. } = &st.status else { continue };
        let writing: Vec<serde_json::Value> =
            ancestors.iter().map(|a| super::status::reference_json(&a.reference, "Gateway")).collect();
        let stale = stale_refs(inp, (st.key.kind, &ns, &st.key.name), status, ("ancestors", "ancestorRef"), &writing);
        if !stale.is_empty() {
            if let Status::Policy { drop, .. } = &mut Arc::make_mut(st).status {
                *drop = stale;
            }
        }
    }
    // A policy whose every target is another realip's, with nothing of
    // this proxy's to drop, gets no status from it (review 13f LOW-5: an
    // empty `ancestors` was written on another realip's policy).
    statuses.retain(
        |s| !matches!(&s.status, Status::Policy { ancestors, drop } if ancestors.is_empty() && drop.is_empty()),
    );
    // The HTTPRoutes' statuses, already in order, go between the kinds
    // sorting before `HTTPRoute` and those after it.
    statuses.sort_by(|a, b| a.key.cmp(&b.key));
    debug_assert!(statuses.iter().all(|s| s.key.kind != "HTTPRoute"));
    let after = statuses.partition_point(|s| s.key.kind < "HTTPRoute");
    statuses.splice(after..after, cache.sorted.statuses.iter().cloned());
    // Only backends a served route names, with their endpoints as they are
    // now (looked up for each Service port once).
    // A Service port resolved by the previous translation is taken as it
    // was while no Service or EndpointSlice changed.
    let mut resolved = if endpoints.is_some() && cache.endpoints == endpoints {
        std::mem::take(&mut cache.backends)
    } else {
        foldhash::HashMap::default()
    };
    let (refs, used) = (&cache.sorted.refs, &cache.sorted.names);
    if !used.is_empty() {
        let missing: Vec<&BackendRef> = refs.keys().filter(|r| !resolved.contains_key(*r)).collect();
        for r in missing {
            let index = services.get_or_init(|| ServiceIndex::kept(&inp.services, &inp.slices, positions.clone()));
            let b = service_backend(&r.0, &r.1, &PortRef::Number(r.2), index, false).ok();
            resolved.insert(r.clone(), b);
        }
    }
    let backends: BTreeMap<&str, &Backend> = refs
        .keys()
        .filter_map(|r| resolved.get(r)?.as_ref())
        .filter(|b| used.contains_key(b.name.as_str()))
        .map(|b| (b.name.as_str(), b))
        .collect();
    let backends: Vec<Backend> = backends.into_values().cloned().collect();
    cache.backends = resolved;
    cache.endpoints = endpoints;
    cache.index = endpoints.and(services.get().and_then(ServiceIndex::positions).or(positions));
    let used_certs: BTreeSet<&String> = specs.iter().flat_map(|l| &l.certs).collect();
    let mut pending: Vec<crate::routes::PendingRoute> = parts
        .iter()
        .flat_map(|p| {
            let origin = format!("httproute/{}/{}", p.name.0, p.name.1);
            p.pending.iter().map(move |l| crate::routes::PendingRoute { origin: origin.clone(), listener: l.clone() })
        })
        .collect();
    pending.sort();
    let route_set = RouteSet {
        backends,
        certs: certs.values().filter(|c| used_certs.contains(&c.name)).cloned().collect(),
        listeners: specs,
        routes,
        pending,
    };
    Translation { routes: route_set, statuses, ip_in_force, access_in_force }
}

#[cfg(test)]
mod access_tests {
    use super::{floor, intersect, Access};

    /// [`intersect`] as first written: every pair compared.
    fn every_pair(a: &[String], b: &[String]) -> Vec<String> {
        let parse =
            |l: &[String]| realip_core::TrustedProxies::parse(l).map(|t| t.cidrs().to_vec()).unwrap_or_default();
        let (a, b) = (parse(a), parse(b));
        let mut out: Vec<String> = Vec::new();
        for x in &a {
            for y in &b {
                let narrower = if x.prefix() >= y.prefix() && y.contains(x.addr()) {
                    Some(x)
                } else if y.prefix() >= x.prefix() && x.contains(y.addr()) {
                    Some(y)
                } else {
                    None
                };
                if let Some(n) = narrower.map(ToString::to_string) {
                    if !out.contains(&n) {
                        out.push(n);
                    }
                }
            }
        }
        out
    }

    /// The deny lists add up (the Gateway's, then the route's not in
    /// it, as written: duplicates within the route's kept), as comparing
    /// each with the Gateway's list did.
    #[test]
    fn floor_deny_lists_add_up() {
        let access = |deny: &str| Access {
            policy: "ns/p".into(),
            allow: None,
            deny: list(deny),
            rate_limit: None,
            gateway_rate_limit: None,
        };
        for (g, o) in [
            ("", ""),
            ("192.0.2.9", ""),
            ("", "192.0.2.9 192.0.2.9"),
            ("192.0.2.9 10.0.0.0/8", "10.0.0.0/8 192.0.2.10 2001:db8::/32 192.0.2.10 192.0.2.9"),
            ("2001:db8::/32 2001:db8::/32", "2001:db8::/32 ::/0"),
        ] {
            let (g, o) = (access(g), access(o));
            let mut want = g.deny.clone();
            for d in &o.deny {
                if !g.deny.contains(d) {
                    want.push(d.clone());
                }
            }
            assert_eq!(floor(&g, &o).deny, want, "{g:?} {o:?}");
        }
    }

    fn list(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_owned).collect()
    }

    /// Edge cases, both ways round: the same list, in the same order, as
    /// comparing every pair.
    #[test]
    fn intersect_is_every_pair_compared() {
        let cases = [
            ("", "10.0.0.0/8"),
            ("0.0.0.0/0", "10.0.0.0/8 192.0.2.0/24 2001:db8::/32"),
            ("0.0.0.0/0 ::/0", "2001:db8::/32 198.51.100.7 10.0.0.0/8"),
            ("10.0.0.0/8 10.1.0.0/16 10.1.2.0/24", "10.1.0.0/16 10.0.0.0/8 10.1.2.3"),
            ("10.1.2.0/24 10.0.0.0/8", "10.1.2.128/25 10.1.0.0/16 10.1.2.0/24"),
            ("192.0.2.0/24 192.0.2.0/24 192.0.2.0/25", "192.0.2.0/24 192.0.2.0/24 192.0.2.128/25"),
            ("::ffff:10.0.0.0/104 ::ffff:0:0/96", "10.1.0.0/16 ::ffff:192.0.2.1 0.0.0.0/0"),
            ("10.0.0.0/8 ::/0", "::ffff:10.1.2.3/128 2001:db8::/32 2001:db8:1::/48 10.0.0.0/9"),
            ("private", "loopback 10.2.0.0/16 fe80::1 172.15.0.0/16"),
            ("2001:db8::/32 2001:db8:0:1::/64", "2001:db8::/48 2001:db8::/16 ::/0 2001:db8:0:1::1"),
            ("198.51.100.0/24", "203.0.113.0/24 2001:db8::/32"),
            ("10.0.0.0/9 10.128.0.0/9", "10.0.0.0/8"),
        ];
        for (a, b) in cases {
            let (a, b) = (list(a), list(b));
            assert_eq!(intersect(&a, &b), every_pair(&a, &b), "{a:?} ∩ {b:?}");
            assert_eq!(intersect(&b, &a), every_pair(&b, &a), "{b:?} ∩ {a:?}");
        }
    }

    /// Many generated lists (nested prefixes of a few networks, both
    /// families, duplicates, /0): the same as comparing every pair.
    #[test]
    fn intersect_is_every_pair_compared_on_generated_lists() {
        let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = move |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        let bases =
            ["10.0.0.0", "10.1.2.3", "192.0.2.200", "0.0.0.0", "2001:db8::1", "2001:db8:0:1::", "::ffff:10.1.2.3"];
        for _ in 0..400 {
            let mut gen = || {
                (0..next(12))
                    .map(|_| {
                        let base = bases[usize::try_from(next(u64::try_from(bases.len()).unwrap())).unwrap()];
                        let max = if base.contains(':') { 129 } else { 33 };
                        format!("{base}/{}", next(max))
                    })
                    .collect::<Vec<_>>()
            };
            let (a, b) = (gen(), gen());
            assert_eq!(intersect(&a, &b), every_pair(&a, &b), "{a:?} ∩ {b:?}");
        }
    }
}
