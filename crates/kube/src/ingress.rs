//! Ingresses of one IngressClass, their Services and EndpointSlices, turned
//! into routes and backends for the proxy's Kubernetes mode.
//!
//! Pure functions over the API objects (no I/O), so every rule is unit
//! tested. Rules:
//! - an Ingress is ours when `spec.ingressClassName` (or the legacy
//!   `kubernetes.io/ingress.class` annotation) names our class;
//! - each rule × path becomes a route: host exact or `*.` wildcard, path
//!   as a prefix (`Exact` and `ImplementationSpecific` are served as
//!   prefixes too); `spec.defaultBackend` becomes a catch-all route;
//! - a backend is a Service port: its EndpointSlices
//!   (`kubernetes.io/service-name`) give pod IP:targetPort directly (no
//!   ClusterIP hop); ready endpoints are used, terminating-but-serving ones
//!   only when no ready one is left (KEP-1669), none → the route answers 503;
//! - ingress-nginx annotations honoured: `whitelist-source-range` /
//!   `allowlist-source-range`, `denylist-source-range`, `limit-rps`,
//!   `limit-burst-multiplier` (default 5, as ingress-nginx; a bucket of
//!   rps × multiplier + 1 requests, as many as nginx's `burst=` lets through
//!   at once with the first),
//!   `global-rate-limit` + `global-rate-limit-window` (both required
//!   together: `N` requests per window, served as a global-scope rate of
//!   `N / window` per second with a burst of `N`, shared by every replica
//!   through the proxy's `[rate_limit_store]`; `global-rate-limit-key`
//!   other than the client address is rejected, since realip keys limits on
//!   the resolved client only; one Ingress cannot have both `limit-rps` and
//!   a global limit, as a route holds one rate),
//!   `proxy-body-size` (`0` = no limit), `ssl-redirect` (default: on for
//!   hosts in the Ingress's `tls`), `backend-protocol` `HTTP`/`HTTPS`
//!   (other protocols reject the Ingress); `use-regex: "true"` rejects the
//!   Ingress (regex paths are not supported) and the reason is reported.
//!   Annotations are read with the `nginx.ingress.kubernetes.io/` prefix and
//!   with realip's own `realip.dev/`.

use std::borrow::Borrow;
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};

use k8s_openapi::api::core::v1::{Secret, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::networking::v1::{Ingress, IngressBackend};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

/// A pool of pod addresses behind one Service port.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Backend {
    /// `namespace/service:port` (`+https` when spoken to over TLS).
    pub name: String,
    /// Usable pod endpoints.
    pub endpoints: Vec<SocketAddr>,
    /// TLS towards the pods (`backend-protocol: HTTPS`), certificate not
    /// verified, as ingress-nginx does by default.
    pub https: bool,
}

/// One routing rule.
#[derive(Clone, Debug, PartialEq)]
pub struct Route {
    /// `namespace/name` of the Ingress.
    pub ingress: String,
    /// Host (exact or `*.` wildcard); `None` matches any.
    pub host: Option<String>,
    /// Path prefix.
    pub path: String,
    /// Backend name.
    pub backend: String,
    /// Only these client CIDRs (allowlist-source-range).
    pub allow: Option<Vec<String>>,
    /// Never these (denylist-source-range).
    pub deny: Vec<String>,
    /// Requests per second per client IP (limit-rps).
    pub rps: Option<f64>,
    /// Burst (limit-rps × limit-burst-multiplier + 1, or global-rate-limit).
    pub burst: Option<f64>,
    /// The rate is shared by every replica (global-rate-limit), not kept
    /// per replica (limit-rps).
    pub rate_global: bool,
    /// Largest body (proxy-body-size); `Some(u64::MAX)` for "0".
    pub max_body: Option<u64>,
    /// Redirect plain HTTP to https (ssl-redirect; by default when the
    /// Ingress has a `tls` section for the host, as ingress-nginx does).
    pub ssl_redirect: bool,
}

/// What kind of problem an Ingress has (typed, so status codes never
/// depend on the wording of a message).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProblemKind {
    /// An annotation or feature realip does not implement.
    Unsupported,
    /// An annotation value that does not parse, or a malformed Ingress.
    Invalid,
    /// A Service or Service port that does not exist.
    BackendNotFound,
    /// A TLS Secret missing or unusable (a warning: the Ingress is served).
    TlsSecret,
}

/// An Ingress that could not be served, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// `namespace/name`.
    pub ingress: String,
    /// The kind of problem.
    pub kind: ProblemKind,
    /// The reason.
    pub message: String,
}

/// A certificate from an Ingress's TLS Secret (`kubernetes.io/tls`).
#[derive(Clone, PartialEq, Eq)]
pub struct Cert {
    /// `namespace/secret`.
    pub name: String,
    /// PEM chain (`tls.crt`).
    pub cert_pem: Vec<u8>,
    /// PEM key (`tls.key`).
    pub key_pem: Vec<u8>,
    /// Named by an Ingress's `spec.tls` (set by
    /// [`crate::routes::RouteSet::from_ingress`]): the proxy offers it on
    /// binds serving Ingresses only. A Gateway listener's certificates are
    /// offered for that listener's hostname only (see
    /// [`crate::routes::ListenerSpec::certs`]).
    pub ingress: bool,
    /// The hosts (exact or `*.` wildcard, lower case, no trailing dot) of
    /// the Ingresses naming it in `spec.tls` — their rules' hosts and
    /// `tls.hosts`: it is offered for those names only, as ingress-nginx
    /// picks a server's certificate among its own Ingresses' Secrets, so a
    /// tenant's Secret carrying another tenant's name is never offered for
    /// it.
    pub hosts: Vec<String>,
}

impl std::fmt::Debug for Cert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cert").field("name", &self.name).finish_non_exhaustive()
        // never the key
    }
}

/// What the proxy should serve.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Desired {
    /// Certificates named by the served Ingresses' `spec.tls`.
    pub certs: Vec<Cert>,
    /// Problems that do not stop an Ingress from being served (a missing
    /// TLS Secret: its hosts get the listener's other certificates).
    pub warnings: Vec<Problem>,
    /// Routes, in Ingress order.
    pub routes: Vec<Route>,
    /// Backends the routes name.
    pub backends: Vec<Backend>,
    /// Ingresses (namespace, name) of our class that were served.
    pub served: Vec<(String, String)>,
    /// Ingresses of our class that were rejected.
    pub problems: Vec<Problem>,
    /// Creation time of each Ingress of our class (`namespace/name` →
    /// `creationTimestamp` as RFC 3339 text, `~` when unknown).
    pub created: std::collections::BTreeMap<String, String>,
}

/// An Ingress's hosts: its rules' and its `tls.hosts` (lower case, no
/// trailing dot), for [`Cert::hosts`].
fn hosts_of(ing: &Ingress) -> Vec<String> {
    let norm = |h: &String| h.trim_end_matches('.').to_ascii_lowercase();
    let rules = ing.spec.iter().flat_map(|s| s.rules.iter().flatten()).filter_map(|r| r.host.as_ref());
    let tls = ing.spec.iter().flat_map(|s| s.tls.iter().flatten()).flat_map(|t| t.hosts.iter().flatten());
    rules.chain(tls).map(norm).collect()
}

fn annotation<'a>(ing: &'a Ingress, key: &str) -> Option<&'a str> {
    let a = ing.metadata.annotations.as_ref()?;
    a.get(&format!("realip.dev/{key}"))
        .or_else(|| a.get(&format!("nginx.ingress.kubernetes.io/{key}")))
        .map(|s| s.trim())
}

/// True when the Ingress belongs to `class`.
pub fn is_ours(ing: &Ingress, class: &str) -> bool {
    let spec_class = ing.spec.as_ref().and_then(|s| s.ingress_class_name.as_deref());
    let legacy =
        ing.metadata.annotations.as_ref().and_then(|a| a.get("kubernetes.io/ingress.class")).map(String::as_str);
    spec_class.or(legacy) == Some(class)
}

/// A comma-separated CIDR list as ingress-nginx annotations and ConfigMap
/// keys write it (bare addresses become /32 or /128).
///
/// # Errors
/// The first entry that is not an address or CIDR, named.
pub fn cidr_list(v: &str) -> Result<Vec<String>, String> {
    v.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            let (ip, len) = s.split_once('/').unwrap_or((s, if s.contains(':') { "128" } else { "32" }));
            // Digits only, as Go's ParseCIDR reads the length (`/+24`,
            // which `u8::from_str` takes, is an error to ingress-nginx).
            let ok = ip.parse::<IpAddr>().is_ok_and(|a| {
                !len.is_empty()
                    && len.bytes().all(|b| b.is_ascii_digit())
                    && len.parse::<u8>().is_ok_and(|l| l <= if a.is_ipv4() { 32 } else { 128 })
            });
            if ok {
                Ok(format!("{ip}/{len}"))
            } else {
                Err(format!("`{s}` is not a CIDR"))
            }
        })
        .collect()
}

/// nginx sizes: `8m`, `512k`, `1g`, plain bytes; `0` means no limit.
pub fn parse_size(v: &str) -> Result<u64, String> {
    let v = v.trim();
    let (num, mult) = match v.chars().last().map(|c| c.to_ascii_lowercase()) {
        Some('k') => (&v[..v.len() - 1], 1024),
        Some('m') => (&v[..v.len() - 1], 1024 * 1024),
        Some('g') => (&v[..v.len() - 1], 1024 * 1024 * 1024),
        _ => (v, 1),
    };
    let n: u64 = num.parse().map_err(|_| format!("`{v}` is not a size like 8m"))?;
    Ok(if n == 0 { u64::MAX } else { n.saturating_mul(mult) })
}

struct Policy {
    https_backend: bool,
    ssl_redirect: Option<bool>,
    allow: Option<Vec<String>>,
    deny: Vec<String>,
    rps: Option<f64>,
    burst: Option<f64>,
    rate_global: bool,
    max_body: Option<u64>,
}

/// A Go-style duration as ingress-nginx reads `global-rate-limit-window`:
/// one or more `<number><unit>` parts (`1m`, `90s`, `1h30m`, `1.5s`), units
/// `ms`, `s`, `m`, `h`; in seconds, positive and at most a day.
pub fn parse_window(v: &str) -> Result<f64, String> {
    let bad = || format!("`{v}` is not a duration like 1m, 30s or 1h30m");
    let mut rest = v.trim();
    if rest.is_empty() {
        return Err(bad());
    }
    let mut secs = 0.0;
    while !rest.is_empty() {
        let num_end = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).ok_or_else(bad)?;
        let (num, tail) = rest.split_at(num_end);
        let n: f64 = num.parse().map_err(|_| bad())?;
        let unit_end = tail.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(tail.len());
        let (unit, next) = tail.split_at(unit_end);
        secs += n * match unit {
            "ms" => 0.001,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return Err(bad()),
        };
        rest = next;
    }
    if !(secs > 0.0 && secs <= 86_400.0) {
        return Err(format!("`{v}` must be more than 0s and at most 24h"));
    }
    Ok(secs)
}

/// `global-rate-limit` / `global-rate-limit-window` as (per second, burst).
fn global_rate(ing: &Ingress) -> Result<Option<(f64, f64)>, (ProblemKind, String)> {
    let invalid = |m: String| (ProblemKind::Invalid, m);
    let limit = annotation(ing, "global-rate-limit");
    let window = annotation(ing, "global-rate-limit-window");
    if let Some(key) = annotation(ing, "global-rate-limit-key") {
        if !matches!(key, "$remote_addr" | "$binary_remote_addr") {
            return Err((
                ProblemKind::Unsupported,
                format!("global-rate-limit-key: `{key}` is not supported: realip keys limits on the resolved client"),
            ));
        }
    }
    let (limit, window) = match (limit, window) {
        (None, None) => return Ok(None),
        (Some(l), Some(w)) => (l, w),
        (Some(_), None) => return Err(invalid("global-rate-limit needs global-rate-limit-window".into())),
        (None, Some(_)) => return Err(invalid("global-rate-limit-window needs global-rate-limit".into())),
    };
    let n = limit
        .parse::<u64>()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| invalid(format!("global-rate-limit: `{limit}` is not a positive whole number")))?;
    let secs = parse_window(window).map_err(|e| invalid(format!("global-rate-limit-window: {e}")))?;
    #[allow(clippy::cast_precision_loss)] // request counts far below 2^52
    let n = n as f64;
    Ok(Some((n / secs, n)))
}

fn policy(ing: &Ingress) -> Result<Policy, (ProblemKind, String)> {
    let invalid = |m: String| (ProblemKind::Invalid, m);
    if annotation(ing, "use-regex") == Some("true") {
        return Err((ProblemKind::Unsupported, "use-regex is not supported: realip routes by path prefix only".into()));
    }
    let allow = annotation(ing, "allowlist-source-range")
        .or_else(|| annotation(ing, "whitelist-source-range"))
        .map(|v| cidr_list(v).map_err(|e| invalid(format!("allowlist-source-range: {e}"))))
        .transpose()?;
    let deny = annotation(ing, "denylist-source-range")
        .map(|v| cidr_list(v).map_err(|e| invalid(format!("denylist-source-range: {e}"))))
        .transpose()?
        .unwrap_or_default();
    let rps = annotation(ing, "limit-rps")
        .map(|v| {
            v.parse::<f64>()
                .ok()
                .filter(|r| *r > 0.0)
                .ok_or_else(|| invalid(format!("limit-rps: `{v}` is not a positive number")))
        })
        .transpose()?;
    let mult = annotation(ing, "limit-burst-multiplier")
        .map(|v| {
            v.parse::<f64>()
                .ok()
                .filter(|m| *m >= 1.0)
                .ok_or_else(|| invalid(format!("limit-burst-multiplier: `{v}` is not ≥ 1")))
        })
        .transpose()?
        .unwrap_or(5.0);
    let global = global_rate(ing)?;
    if global.is_some() && rps.is_some() {
        return Err((
            ProblemKind::Unsupported,
            "limit-rps and global-rate-limit together: a realip route has one rate limit".into(),
        ));
    }
    let max_body = annotation(ing, "proxy-body-size")
        .map(|v| parse_size(v).map_err(|e| invalid(format!("proxy-body-size: {e}"))))
        .transpose()?;
    let ssl_redirect = annotation(ing, "ssl-redirect")
        .map(|v| match v {
            "true" => Ok(true),
            "false" => Ok(false),
            other => Err(invalid(format!("ssl-redirect: `{other}` is not true or false"))),
        })
        .transpose()?;
    let https_backend = match annotation(ing, "backend-protocol").map(str::to_ascii_uppercase).as_deref() {
        None | Some("HTTP") => false,
        Some("HTTPS") => true,
        Some(other) => {
            return Err((
                ProblemKind::Unsupported,
                format!("backend-protocol: `{other}` is not supported (HTTP or HTTPS)"),
            ))
        }
    };
    let (rps, burst, rate_global) = match global {
        Some((per_second, burst)) => (Some(per_second), Some(burst), true),
        // nginx's `limit_req … burst=B nodelay` lets B requests through on
        // top of the first at once: a bucket of B + 1.
        None => (rps, rps.map(|r| r * mult + 1.0), false),
    };
    Ok(Policy { https_backend, ssl_redirect, allow, deny, rps, burst, rate_global, max_body })
}

/// The endpoints of `namespace/service` port `port` (number or name).
fn backend(
    namespace: &str,
    b: &IngressBackend,
    index: &ServiceIndex<'_>,
    https: bool,
) -> Result<Backend, (ProblemKind, String)> {
    let missing_port = || (ProblemKind::Invalid, "backend service port is missing".to_owned());
    let svc_ref = b
        .service
        .as_ref()
        .ok_or_else(|| (ProblemKind::Unsupported, "only Service backends are supported".to_owned()))?;
    let port_ref = svc_ref.port.as_ref().ok_or_else(missing_port)?;
    let port = match (port_ref.number, &port_ref.name) {
        (Some(n), _) => PortRef::Number(n),
        (None, Some(name)) => PortRef::Name(name),
        (None, None) => return Err(missing_port()),
    };
    service_backend(namespace, &svc_ref.name, &port, index, https)
        .map_err(|e| (ProblemKind::BackendNotFound, e.to_string()))
}

/// A Service port, by number or by name.
#[derive(Clone, Copy, Debug)]
pub(crate) enum PortRef<'a> {
    /// `port: 80`.
    Number(i32),
    /// `port: http` (Ingress only).
    Name(&'a str),
}

/// Why a Service backend did not resolve.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum BackendError {
    /// No such Service.
    ServiceNotFound(String),
    /// The Service has no such port.
    NoSuchPort(String),
}

impl std::fmt::Display for BackendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BackendError::ServiceNotFound(m) | BackendError::NoSuchPort(m) => f.write_str(m),
        }
    }
}

/// Services by namespace and name, and EndpointSlices by namespace and
/// the Service they belong to (`kubernetes.io/service-name`), for one
/// computation.
///
/// Adaptive: the first [`SCANS`] look-ups scan the lists (a change of one
/// HTTPRoute of 10,000 looks up its few backends, and indexing 2,000
/// Services and 5,000 EndpointSlices for them cost more than the rest of
/// its translation); the next one builds the maps, so a computation that
/// looks up thousands (every route anew) costs the same with 5 Services
/// or 5,000 (a scan per route made 10,000 routes quadratic). Both ways
/// give the same answer: for a name given twice (which an API server never
/// does) the first wins, and slices keep their order.
pub(crate) struct ServiceIndex<'a> {
    all_services: &'a [&'a Service],
    all_slices: &'a [&'a EndpointSlice],
    lookups: std::cell::Cell<usize>,
    services: std::cell::OnceCell<foldhash::HashMap<(&'a str, &'a str), &'a Service>>,
    slices: std::cell::OnceCell<foldhash::HashMap<(&'a str, &'a str), Vec<&'a EndpointSlice>>>,
    /// Backends already resolved, by (namespace, service, port, https):
    /// thousands of routes name the same few Services.
    resolved: std::cell::RefCell<std::collections::HashMap<BackendKey, Result<Backend, BackendError>>>,
    /// Set by [`ServiceIndex::kept`]: look-ups go through these positions
    /// (built on first use when not handed in), never a scan.
    positions: Option<std::cell::OnceCell<std::sync::Arc<Positions>>>,
}

/// Where each Service and each Service's EndpointSlices are in the lists
/// a [`ServiceIndex`] is made over. Valid for lists holding the same
/// objects in the same order: a caller keeps it from one computation to
/// the next while the lists' uids and `resourceVersion`s are the same
/// (the Gateway translation: an HTTPRoute change among 10,000 then looks
/// its backends up without scanning 2,000 Services and 5,000 slices or
/// indexing them again). An object found at a position is checked to be
/// the one asked for (a mismatch scans the lists instead).
#[derive(Debug, Default)]
pub(crate) struct Positions {
    /// `namespace/name` → index in the Services (the first of a name).
    services: foldhash::HashMap<String, usize>,
    /// `namespace/service` → indexes in the EndpointSlices, in order.
    slices: foldhash::HashMap<String, Vec<usize>>,
}

impl Positions {
    fn new(services: &[&Service], slices: &[&EndpointSlice]) -> Positions {
        let mut p = Positions::default();
        for (i, s) in services.iter().enumerate() {
            if let (Some(ns), Some(name)) = (s.metadata.namespace.as_deref(), s.metadata.name.as_deref()) {
                p.services.entry(format!("{ns}/{name}")).or_insert(i);
            }
        }
        for (i, e) in slices.iter().enumerate() {
            if let Some((ns, svc)) = slice_service(e) {
                p.slices.entry(format!("{ns}/{svc}")).or_default().push(i);
            }
        }
        p
    }
}

/// Look-ups a [`ServiceIndex`] answers by scanning before it builds maps.
const SCANS: usize = 16;

/// What a resolved backend is cached under.
type BackendKey = (String, String, String, bool);

/// The Service an EndpointSlice belongs to.
fn slice_service(e: &EndpointSlice) -> Option<(&str, &str)> {
    let svc = e.metadata.labels.as_ref().and_then(|l| l.get("kubernetes.io/service-name"))?;
    Some((e.metadata.namespace.as_deref()?, svc.as_str()))
}

impl<'a> ServiceIndex<'a> {
    /// An index over `services` and `slices` (nothing is built yet).
    pub(crate) fn new(services: &'a [&'a Service], slices: &'a [&'a EndpointSlice]) -> ServiceIndex<'a> {
        ServiceIndex {
            all_services: services,
            all_slices: slices,
            lookups: std::cell::Cell::new(0),
            services: std::cell::OnceCell::new(),
            slices: std::cell::OnceCell::new(),
            resolved: std::cell::RefCell::default(),
            positions: None,
        }
    }

    /// An index that answers from [`Positions`]: `kept` when the caller
    /// has them for these very lists, else built on first use (see
    /// [`ServiceIndex::positions`] to keep them).
    pub(crate) fn kept(
        services: &'a [&'a Service],
        slices: &'a [&'a EndpointSlice],
        kept: Option<std::sync::Arc<Positions>>,
    ) -> ServiceIndex<'a> {
        let cell = std::cell::OnceCell::new();
        if let Some(p) = kept {
            let _ = cell.set(p);
        }
        ServiceIndex { positions: Some(cell), ..ServiceIndex::new(services, slices) }
    }

    /// The positions a [`ServiceIndex::kept`] index answered from, if it
    /// needed any.
    pub(crate) fn positions(&self) -> Option<std::sync::Arc<Positions>> {
        self.positions.as_ref()?.get().cloned()
    }

    fn at(&self) -> Option<&Positions> {
        let cell = self.positions.as_ref()?;
        Some(cell.get_or_init(|| std::sync::Arc::new(Positions::new(self.all_services, self.all_slices))))
    }

    /// Whether this look-up should build the maps (see [`SCANS`]).
    fn indexed(&self) -> bool {
        let n = self.lookups.get() + 1;
        self.lookups.set(n);
        n > SCANS
    }

    /// The Service `namespace/name`.
    pub(crate) fn service(&self, namespace: &str, name: &str) -> Option<&'a Service> {
        let key = (namespace, name);
        let named = |s: &&Service| {
            (s.metadata.namespace.as_deref(), s.metadata.name.as_deref()) == (Some(namespace), Some(name))
        };
        if let Some(p) = self.at() {
            return match p
                .services
                .get(&format!("{namespace}/{name}"))
                .map(|&i| self.all_services.get(i).filter(|s| named(s)))
            {
                Some(Some(s)) => Some(*s),
                None => None,
                Some(None) => self.all_services.iter().find(|s| named(s)).copied(),
            };
        }
        if self.services.get().is_none() && !self.indexed() {
            let named = |s: &&&Service| {
                (s.metadata.namespace.as_deref(), s.metadata.name.as_deref()) == (Some(namespace), Some(name))
            };
            return self.all_services.iter().find(named).copied();
        }
        let map = self.services.get_or_init(|| {
            let mut by_name = foldhash::HashMap::default();
            for s in self.all_services {
                if let (Some(ns), Some(name)) = (s.metadata.namespace.as_deref(), s.metadata.name.as_deref()) {
                    by_name.entry((ns, name)).or_insert(*s);
                }
            }
            by_name
        });
        map.get(&key).copied()
    }

    /// The EndpointSlices of Service `namespace/name`, in input order.
    fn slices(&self, namespace: &str, name: &str) -> Vec<&'a EndpointSlice> {
        if let Some(p) = self.at() {
            let at = p.slices.get(&format!("{namespace}/{name}")).map(Vec::as_slice).unwrap_or_default();
            let found: Vec<&'a EndpointSlice> = at.iter().filter_map(|&i| self.all_slices.get(i).copied()).collect();
            let exact = found.len() == at.len() && found.iter().all(|e| slice_service(e) == Some((namespace, name)));
            if exact {
                return found;
            }
            return self.all_slices.iter().copied().filter(|e| slice_service(e) == Some((namespace, name))).collect();
        }
        if self.slices.get().is_none() && !self.indexed() {
            return self.all_slices.iter().copied().filter(|e| slice_service(e) == Some((namespace, name))).collect();
        }
        let map = self.slices.get_or_init(|| {
            let mut by_service: foldhash::HashMap<(&str, &str), Vec<&EndpointSlice>> = foldhash::HashMap::default();
            for e in self.all_slices {
                if let Some(key) = slice_service(e) {
                    by_service.entry(key).or_default().push(*e);
                }
            }
            by_service
        });
        map.get(&(namespace, name)).cloned().unwrap_or_default()
    }
}

/// The ready endpoints of a Service port, from its EndpointSlices
/// (computed once per Service port and computation, see [`ServiceIndex`]).
pub(crate) fn service_backend(
    namespace: &str,
    service: &str,
    port_ref: &PortRef<'_>,
    index: &ServiceIndex<'_>,
    https: bool,
) -> Result<Backend, BackendError> {
    let port = match port_ref {
        PortRef::Number(n) => n.to_string(),
        PortRef::Name(n) => format!("name:{n}"),
    };
    let key = (namespace.to_owned(), service.to_owned(), port, https);
    if let Some(r) = index.resolved.borrow().get(&key) {
        return r.clone();
    }
    let r = resolve_backend(namespace, service, port_ref, index, https);
    index.resolved.borrow_mut().insert(key, r.clone());
    r
}

fn resolve_backend(
    namespace: &str,
    service: &str,
    port_ref: &PortRef<'_>,
    index: &ServiceIndex<'_>,
    https: bool,
) -> Result<Backend, BackendError> {
    let svc = index
        .service(namespace, service)
        .ok_or_else(|| BackendError::ServiceNotFound(format!("Service {namespace}/{service} not found")))?;
    let ports = svc.spec.as_ref().and_then(|s| s.ports.as_ref()).cloned().unwrap_or_default();
    let sp = ports
        .iter()
        .find(|p| match port_ref {
            PortRef::Number(n) => p.port == *n,
            PortRef::Name(n) => p.name.as_deref() == Some(*n),
        })
        .ok_or_else(|| {
            let shown = match port_ref {
                PortRef::Number(n) => n.to_string(),
                PortRef::Name(n) => (*n).to_owned(),
            };
            BackendError::NoSuchPort(format!("Service {namespace}/{service} has no port {shown}"))
        })?;
    let name = format!("{namespace}/{}:{}{}", service, sp.port, if https { "+https" } else { "" });
    let mut ready = Vec::new();
    let mut terminating = Vec::new();
    for slice in index.slices(namespace, service) {
        let Some(port) = slice
            .ports
            .iter()
            .flatten()
            .find(|p| p.name.as_deref().unwrap_or("") == sp.name.as_deref().unwrap_or(""))
            .and_then(|p| p.port)
        else {
            continue;
        };
        for ep in slice.endpoints.iter().flatten() {
            let c = ep.conditions.as_ref();
            let is_ready = c.and_then(|c| c.ready).unwrap_or(true);
            let serving = c.and_then(|c| c.serving).unwrap_or(is_ready);
            let term = c.and_then(|c| c.terminating).unwrap_or(false);
            for a in &ep.addresses {
                let Ok(ip) = a.parse::<IpAddr>() else { continue };
                let addr = SocketAddr::new(ip, u16::try_from(port).unwrap_or(0));
                if is_ready && !term {
                    ready.push(addr);
                } else if serving && term {
                    terminating.push(addr);
                }
            }
        }
    }
    let mut endpoints = if ready.is_empty() { terminating } else { ready };
    endpoints.sort();
    endpoints.dedup();
    Ok(Backend { name, endpoints, https })
}

/// The Services an EndpointSlice change touches: `(namespace, service)`.
pub type Touched = std::collections::BTreeSet<(String, String)>;

/// Recomputes, in place, the endpoints of the `backends` that belong to a
/// Service in `touched`, from `services` and `slices`: what a change of
/// EndpointSlices alone does to a computed set ([`desired`] or the Gateway
/// translation), without recomputing routes or status — which depend on
/// Services, never on endpoints. Only the touched Services' objects are
/// indexed.
///
/// `None` when a backend cannot be refreshed exactly (its name does not
/// parse, its Service is gone, or the Service has its port number twice,
/// so the port a name referred to is ambiguous): the caller recomputes
/// everything. `Some(changed)` otherwise.
pub fn refresh_endpoints<S, E>(
    backends: &mut [Backend],
    touched: &Touched,
    services: &[S],
    slices: &[E],
) -> Option<bool>
where
    S: Borrow<Service>,
    E: Borrow<EndpointSlice>,
{
    let is_touched = |ns: Option<&str>, name: Option<&str>| match (ns, name) {
        (Some(ns), Some(name)) => touched.contains(&(ns.to_owned(), name.to_owned())),
        _ => false,
    };
    let services: Vec<&Service> = services
        .iter()
        .map(Borrow::borrow)
        .filter(|s| is_touched(s.metadata.namespace.as_deref(), s.metadata.name.as_deref()))
        .collect();
    let slices: Vec<&EndpointSlice> = slices
        .iter()
        .map(Borrow::borrow)
        .filter(|e| {
            let svc = e.metadata.labels.as_ref().and_then(|l| l.get("kubernetes.io/service-name"));
            is_touched(e.metadata.namespace.as_deref(), svc.map(String::as_str))
        })
        .collect();
    let index = ServiceIndex::new(&services, &slices);
    let mut changed = false;
    for b in backends.iter_mut() {
        // `namespace/service:port`, then `+https` when spoken to over TLS.
        let (rest, https) = match b.name.strip_suffix("+https") {
            Some(r) => (r, true),
            None => (b.name.as_str(), false),
        };
        let (ns, rest) = rest.split_once('/')?;
        let (svc, port) = rest.rsplit_once(':')?;
        if !touched.contains(&(ns.to_owned(), svc.to_owned())) {
            continue;
        }
        let port: i32 = port.parse().ok()?;
        let s = index.service(ns, svc)?;
        let same_number = s.spec.as_ref().and_then(|s| s.ports.as_ref()).into_iter().flatten();
        if same_number.filter(|p| p.port == port).count() != 1 {
            return None;
        }
        let fresh = resolve_backend(ns, svc, &PortRef::Number(port), &index, https).ok()?;
        if fresh.name != b.name {
            return None;
        }
        if fresh.endpoints != b.endpoints {
            b.endpoints = fresh.endpoints;
            changed = true;
        }
    }
    Some(changed)
}

/// Everything the proxy should serve for `class` (in `namespace` only, if given).
/// Takes the objects owned or shared (`Arc`, as reflector stores hold
/// them), so the watcher passes its stores without copying.
pub fn desired<I, S, E, T>(
    class: &str,
    namespace: Option<&str>,
    ingresses: &[I],
    services: &[S],
    slices: &[E],
    secrets: &[T],
) -> Desired
where
    I: Borrow<Ingress>,
    S: Borrow<Service>,
    E: Borrow<EndpointSlice>,
    T: Borrow<Secret>,
{
    let services: Vec<&Service> = services.iter().map(Borrow::borrow).collect();
    let slices: Vec<&EndpointSlice> = slices.iter().map(Borrow::borrow).collect();
    let secrets: Vec<&Secret> = secrets.iter().map(Borrow::borrow).collect();
    let index = ServiceIndex::new(&services, &slices);
    let mut d = Desired::default();
    let mut certs: BTreeMap<String, Cert> = BTreeMap::new();
    let mut backends: BTreeMap<String, Backend> = BTreeMap::new();
    let mut sorted: Vec<&Ingress> = ingresses
        .iter()
        .map(Borrow::borrow)
        .filter(|i| is_ours(i, class))
        .filter(|i| namespace.is_none_or(|n| i.metadata.namespace.as_deref() == Some(n)))
        .collect();
    // Oldest first, as ingress-nginx orders them (the first Ingress to
    // claim a host and path keeps it; a newer one is shadowed), then by
    // namespace/name; one without a creation time counts as the newest.
    sorted.sort_by(|a, b| {
        let key = |i: &Ingress| {
            (
                i.metadata.creation_timestamp.as_ref().map(|t| t.0).is_none(),
                i.metadata.creation_timestamp.as_ref().map(|t| t.0),
            )
        };
        key(a).cmp(&key(b)).then_with(|| {
            (a.metadata.namespace.as_deref(), a.metadata.name.as_deref())
                .cmp(&(b.metadata.namespace.as_deref(), b.metadata.name.as_deref()))
        })
    });
    for ing in sorted {
        let ns = ing.metadata.namespace.clone().unwrap_or_else(|| "default".into());
        let name = ing.metadata.name.clone().unwrap_or_default();
        let id = format!("{ns}/{name}");
        d.created.insert(
            id.clone(),
            ing.metadata.creation_timestamp.as_ref().map_or_else(|| "~".into(), |t| t.0.to_string()),
        );
        let result = (|| -> Result<Vec<(Route, Backend)>, (ProblemKind, String)> {
            let p = policy(ing)?;
            let spec = ing.spec.as_ref().ok_or((ProblemKind::Invalid, "no spec".to_owned()))?;
            let mut out = Vec::new();
            let tls_hosts: Vec<&String> = spec.tls.iter().flatten().flat_map(|t| t.hosts.iter().flatten()).collect();
            let mut add =
                |host: Option<String>, path: String, b: &IngressBackend| -> Result<(), (ProblemKind, String)> {
                    let be = backend(&ns, b, &index, p.https_backend)?;
                    let has_tls = host.as_ref().is_some_and(|h| tls_hosts.contains(&h));
                    let route = Route {
                        ingress: id.clone(),
                        host,
                        path,
                        backend: be.name.clone(),
                        allow: p.allow.clone(),
                        deny: p.deny.clone(),
                        rps: p.rps,
                        burst: p.burst,
                        rate_global: p.rate_global,
                        max_body: p.max_body,
                        ssl_redirect: p.ssl_redirect.unwrap_or(has_tls),
                    };
                    out.push((route, be));
                    Ok(())
                };
            for rule in spec.rules.iter().flatten() {
                for path in rule.http.iter().flat_map(|h| &h.paths) {
                    let prefix = path.path.clone().unwrap_or_else(|| "/".into());
                    add(rule.host.clone(), prefix, &path.backend)?;
                }
            }
            if let Some(b) = &spec.default_backend {
                add(None, "/".into(), b)?;
            }
            Ok(out)
        })();
        match result {
            Ok(pairs) => {
                for (r, b) in pairs {
                    backends.insert(b.name.clone(), b);
                    d.routes.push(r);
                }
                tls_certs(ing, &ns, &id, &secrets, &mut certs, &mut d.warnings);
                d.served.push((ns, name));
            }
            Err((kind, message)) => d.problems.push(Problem { ingress: id, kind, message }),
        }
    }
    d.backends = backends.into_values().collect();
    d.certs = certs.into_values().collect();
    d
}

/// The certificates of an Ingress's `tls` entries, into `certs` (by
/// `ns/name`, with the Ingress's hosts): each Secret read once, one
/// warning per Secret that cannot be served.
fn tls_certs(
    ing: &Ingress,
    ns: &str,
    id: &str,
    secrets: &[&Secret],
    certs: &mut BTreeMap<String, Cert>,
    warnings: &mut Vec<Problem>,
) {
    let hosts = hosts_of(ing);
    let mut named = std::collections::BTreeSet::new();
    for t in ing.spec.iter().flat_map(|s| s.tls.iter().flatten()) {
        // Each Secret once per Ingress (one warning, one look-up).
        let Some(secret_name) = t.secret_name.as_ref().filter(|n| named.insert(n.as_str())) else {
            continue;
        };
        // A Secret named again (by this Ingress or another) is read once.
        let loaded = match certs.remove(&format!("{ns}/{secret_name}")) {
            Some(c) => Ok(c),
            None => tls_secret(ns, secret_name, secrets),
        };
        match loaded {
            Ok(c) => {
                let c = certs.entry(c.name.clone()).or_insert(c);
                c.hosts.extend(hosts.iter().cloned());
                c.hosts.sort_unstable();
                c.hosts.dedup();
            }
            Err(message) => {
                warnings.push(Problem { ingress: id.to_owned(), kind: ProblemKind::TlsSecret, message });
            }
        }
    }
}

pub(crate) fn tls_secret(ns: &str, name: &str, secrets: &[&Secret]) -> Result<Cert, String> {
    let s = secrets
        .iter()
        .find(|s| s.metadata.namespace.as_deref() == Some(ns) && s.metadata.name.as_deref() == Some(name))
        .ok_or(format!("TLS Secret {ns}/{name} not found"))?;
    let data = s.data.as_ref().ok_or(format!("TLS Secret {ns}/{name} has no data"))?;
    let get = |k: &str| data.get(k).map(|b| b.0.as_slice()).ok_or(format!("TLS Secret {ns}/{name} has no {k}"));
    let (cert_pem, key_pem) = (get("tls.crt")?, get("tls.key")?);
    // Refused here, as the proxy would refuse it, so a listener never
    // reports a certificate it cannot serve.
    servable(&s.metadata, ns, name, cert_pem, key_pem)?;
    Ok(Cert {
        name: format!("{ns}/{name}"),
        cert_pem: cert_pem.to_vec(),
        key_pem: key_pem.to_vec(),
        ingress: false,
        hosts: Vec::new(),
    })
}

/// Whether the proxy can serve a Secret's pair ([`crate::tls::certified_key`]),
/// remembered by the Secret's uid and `resourceVersion`: loading a key
/// costs up to milliseconds (an RSA-4096 key, a 1 MiB chain), and every
/// translation asks again for every reference (64 listeners × 64
/// `certificateRefs` naming one Secret, tens of thousands of Ingress
/// `tls` entries): a tenant must not buy seconds of the controller's time
/// per change with CRD-valid objects (review 20 HIGH-1). An object without
/// both (a manifest, not the API) is checked each time.
fn servable(meta: &ObjectMeta, ns: &str, name: &str, cert_pem: &[u8], key_pem: &[u8]) -> Result<(), String> {
    type Seen = std::collections::HashMap<(String, String), Result<(), String>>;
    /// Past this many Secret versions, the memory starts over.
    const MAX_SEEN: usize = 4096;
    static SEEN: std::sync::LazyLock<std::sync::Mutex<Seen>> = std::sync::LazyLock::new(Default::default);
    let id = meta.uid.clone().zip(meta.resource_version.clone());
    if let Some(id) = &id {
        if let Some(known) = SEEN.lock().unwrap_or_else(std::sync::PoisonError::into_inner).get(id) {
            return known.clone();
        }
    }
    let verdict = crate::tls::certified_key(
        cert_pem,
        key_pem,
        &format!("TLS Secret {ns}/{name} tls.crt"),
        &format!("TLS Secret {ns}/{name} tls.key"),
    )
    .map(|_| ());
    if let Some(id) = id {
        let mut seen = SEEN.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if seen.len() >= MAX_SEEN {
            seen.clear();
        }
        seen.insert(id, verdict.clone());
    }
    verdict
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::routes::RouteSet;
    use serde_json::json;

    const NO_SECRETS: &[Secret] = &[];

    /// Lengths as Go's ParseCIDR reads them (migrate review 16 R16-9: `/+0`
    /// was read as /0, an allow-everyone where ingress-nginx answers 503).
    #[test]
    fn cidr_lengths_are_digits_only() {
        assert_eq!(
            cidr_list(" 203.0.113.0/24, 198.51.100.7,2001:db8::/032").unwrap(),
            ["203.0.113.0/24", "198.51.100.7/32", "2001:db8::/032"]
        );
        for bad in
            ["203.0.113.0/+0", "203.0.113.0/+24", "203.0.113.0/", "203.0.113.0/-1", "203.0.113.0/33", "2001:db8::/+64"]
        {
            let e = cidr_list(&format!("198.51.100.0/24,{bad}")).unwrap_err();
            assert!(e.contains(bad), "{bad}: {e}");
        }
    }

    fn obj<T: serde::de::DeserializeOwned>(v: serde_json::Value) -> T {
        serde_json::from_value(v).unwrap()
    }

    fn fixtures() -> (Vec<Service>, Vec<EndpointSlice>) {
        let svc = obj(
            json!({"metadata": {"name": "app", "namespace": "web"}, "spec": {"ports": [{"name": "http", "port": 80, "targetPort": 8000}]}}),
        );
        let slice = obj(
            json!({"metadata": {"name": "app-x", "namespace": "web", "labels": {"kubernetes.io/service-name": "app"}},
            "addressType": "IPv4", "ports": [{"name": "http", "port": 8000}],
            "endpoints": [
                {"addresses": ["10.1.0.5"], "conditions": {"ready": true}},
                {"addresses": ["10.1.0.6"], "conditions": {"ready": false, "serving": true, "terminating": true}},
                {"addresses": ["10.1.0.7"], "conditions": {"ready": false, "serving": false}}
            ]}),
        );
        (vec![svc], vec![slice])
    }

    /// The index answers the same while it scans (the first [`SCANS`]
    /// look-ups) as once it has built its maps: the first of two
    /// Services of one name, and every slice of a Service in input order.
    #[test]
    fn the_service_index_answers_the_same_scanning_and_indexed() {
        let svc = |ns: &str, name: &str, port: i32| -> Service {
            obj(json!({"metadata": {"namespace": ns, "name": name}, "spec": {"ports": [{"port": port}]}}))
        };
        let slice = |ns: &str, name: &str, svc: &str, ip: &str| -> EndpointSlice {
            obj(json!({
                "metadata": {"namespace": ns, "name": name, "labels": {"kubernetes.io/service-name": svc}},
                "addressType": "IPv4", "ports": [{"port": 8080}], "endpoints": [{"addresses": [ip]}]
            }))
        };
        let services = [svc("a", "web", 80), svc("a", "web", 81), svc("b", "web", 80), svc("a", "api", 80)];
        let slices = [
            slice("a", "w1", "web", "192.0.2.1"),
            slice("b", "w2", "web", "192.0.2.2"),
            slice("a", "w3", "web", "192.0.2.3"),
            slice("a", "x", "api", "192.0.2.4"),
        ];
        let services: Vec<&Service> = services.iter().collect();
        let slices: Vec<&EndpointSlice> = slices.iter().collect();
        let index = ServiceIndex::new(&services, &slices);
        let ask = |index: &ServiceIndex<'_>| {
            let port = |s: Option<&Service>| s.map(|s| s.spec.as_ref().unwrap().ports.as_ref().unwrap()[0].port);
            let names = |v: Vec<&EndpointSlice>| v.iter().map(|e| e.metadata.name.clone().unwrap()).collect::<Vec<_>>();
            (
                port(index.service("a", "web")),
                port(index.service("b", "web")),
                index.service("c", "web").is_none(),
                names(index.slices("a", "web")),
                names(index.slices("b", "web")),
                names(index.slices("c", "web")),
            )
        };
        let scanned = ask(&index);
        assert!(index.services.get().is_none() && index.slices.get().is_none(), "built too early");
        for _ in 0..SCANS {
            ask(&index);
        }
        assert!(index.services.get().is_some() && index.slices.get().is_some(), "never built");
        assert_eq!(ask(&index), scanned);
        assert_eq!(
            scanned,
            (Some(80), Some(80), true, vec!["w1".to_owned(), "w3".to_owned()], vec!["w2".to_owned()], vec![])
        );
        // From positions, built on first use and handed to the next index
        // over the same lists: the same answers.
        let first = ServiceIndex::kept(&services, &slices, None);
        assert_eq!(ask(&first), scanned);
        let positions = first.positions().expect("built on first use");
        let next = ServiceIndex::kept(&services, &slices, Some(std::sync::Arc::clone(&positions)));
        assert_eq!(ask(&next), scanned);
        assert!(std::sync::Arc::ptr_eq(&next.positions().unwrap(), &positions), "kept, not rebuilt");
        // Positions of other lists (the first Service and slice gone): an
        // object found at a position that is not the one asked for scans.
        let (fewer_services, fewer_slices) = (&services[1..], &slices[1..]);
        let stale = ServiceIndex::kept(fewer_services, fewer_slices, Some(positions));
        assert_eq!(ask(&stale), ask(&ServiceIndex::new(fewer_services, fewer_slices)));
    }

    #[allow(clippy::needless_pass_by_value)] // json! literals at every call
    fn ingress(annotations: serde_json::Value, class: &str) -> Ingress {
        obj(json!({"metadata": {"name": "site", "namespace": "web", "annotations": annotations},
            "spec": {"ingressClassName": class, "rules": [{"host": "app.example.com", "http": {"paths": [
                {"path": "/api", "pathType": "Prefix", "backend": {"service": {"name": "app", "port": {"number": 80}}}}]}}]}}))
    }

    #[test]
    fn routes_target_ready_pods_and_fall_back_to_terminating_ones() {
        let (svcs, mut slices) = fixtures();
        let d = desired(
            "realip",
            None,
            &[ingress(json!({}), "realip"), ingress(json!({}), "nginx")],
            &svcs,
            &slices,
            NO_SECRETS,
        );
        assert_eq!(d.routes.len(), 1, "the nginx-class Ingress is not ours");
        assert_eq!((d.routes[0].host.as_deref(), d.routes[0].path.as_str()), (Some("app.example.com"), "/api"));
        assert_eq!(
            d.backends,
            [Backend { name: "web/app:80".into(), endpoints: vec!["10.1.0.5:8000".parse().unwrap()], https: false }]
        );
        // The ready pod goes: only the terminating-but-serving one is left.
        slices[0].endpoints.as_mut().unwrap().remove(0);
        let d = desired("realip", None, &[ingress(json!({}), "realip")], &svcs, &slices, NO_SECRETS);
        assert_eq!(d.backends[0].endpoints, ["10.1.0.6:8000".parse::<SocketAddr>().unwrap()]);
        slices[0].endpoints.as_mut().unwrap().remove(0);
        let d = desired("realip", None, &[ingress(json!({}), "realip")], &svcs, &slices, NO_SECRETS);
        assert!(d.backends[0].endpoints.is_empty(), "not serving: nothing");
    }

    /// Review 14 F12: Ingresses come oldest first (as ingress-nginx orders
    /// them), so a newer Ingress in a namespace that sorts earlier does not
    /// take an older one's host and path; on equal times, namespace/name;
    /// one without a creation time comes last.
    #[test]
    fn ingresses_are_ordered_oldest_first() {
        let (svcs, slices) = fixtures();
        let at = |name: &str, created: Option<&str>| {
            let mut i = ingress(json!({}), "realip");
            i.metadata.name = Some(name.into());
            i.metadata.creation_timestamp =
                created.map(|t| k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(t.parse().unwrap()));
            i
        };
        let order = |ings: &[Ingress]| {
            let d = desired("realip", None, ings, &svcs, &slices, NO_SECRETS);
            d.routes.into_iter().map(|r| r.ingress).collect::<Vec<_>>()
        };
        let site = at("site", Some("2026-01-01T00:00:00Z"));
        let grab = at("a-grab", Some("2026-06-01T00:00:00Z"));
        assert_eq!(order(&[grab, site.clone()]), ["web/site", "web/a-grab"], "the older first, whatever the names");
        let tie = at("a-tie", Some("2026-01-01T00:00:00Z"));
        assert_eq!(order(&[site.clone(), tie]), ["web/a-tie", "web/site"], "equal times: by namespace/name");
        assert_eq!(order(&[at("a-new", None), site]), ["web/site", "web/a-new"], "no creation time: the newest");
    }

    #[test]
    fn annotations_become_policy_and_bad_ones_reject_the_ingress() {
        let (svcs, slices) = fixtures();
        let a = json!({"nginx.ingress.kubernetes.io/whitelist-source-range": "203.0.113.0/24, 198.51.100.7",
            "nginx.ingress.kubernetes.io/denylist-source-range": "203.0.113.66/32",
            "nginx.ingress.kubernetes.io/limit-rps": "10", "nginx.ingress.kubernetes.io/limit-burst-multiplier": "3",
            "nginx.ingress.kubernetes.io/proxy-body-size": "8m"});
        let d = desired("realip", None, &[ingress(a, "realip")], &svcs, &slices, NO_SECRETS);
        let r = &d.routes[0];
        assert_eq!(r.allow.as_deref(), Some(&["203.0.113.0/24".to_owned(), "198.51.100.7/32".to_owned()][..]));
        assert_eq!(r.deny, ["203.0.113.66/32"]);
        assert_eq!((r.rps, r.burst, r.max_body), (Some(10.0), Some(31.0), Some(8 * 1024 * 1024)));
        assert!(!r.ssl_redirect, "no tls section, no annotation");
        let d = desired(
            "realip",
            None,
            &[ingress(json!({"nginx.ingress.kubernetes.io/ssl-redirect": "true"}), "realip")],
            &svcs,
            &slices,
            NO_SECRETS,
        );
        assert!(d.routes[0].ssl_redirect);
        let https = json!({"nginx.ingress.kubernetes.io/backend-protocol": "HTTPS"});
        let d = desired("realip", None, &[ingress(https, "realip")], &svcs, &slices, NO_SECRETS);
        assert!(d.backends[0].https && d.backends[0].name == "web/app:80+https");
        let grpc = json!({"nginx.ingress.kubernetes.io/backend-protocol": "GRPC"});
        let d = desired("realip", None, &[ingress(grpc, "realip")], &svcs, &slices, NO_SECRETS);
        assert!(d.problems[0].message.contains("backend-protocol: `GRPC` is not supported"));
        let d = desired(
            "realip",
            None,
            &[ingress(json!({"nginx.ingress.kubernetes.io/use-regex": "true"}), "realip")],
            &svcs,
            &slices,
            NO_SECRETS,
        );
        assert!(d.routes.is_empty());
        assert!(d.problems[0].message.contains("use-regex is not supported"), "{:?}", d.problems);
        let d = desired(
            "realip",
            None,
            &[ingress(json!({"realip.dev/limit-rps": "lots"}), "realip")],
            &svcs,
            &slices,
            NO_SECRETS,
        );
        assert!(d.problems[0].message.contains("limit-rps: `lots`"), "{:?}", d.problems);
        let d = desired("realip", Some("other"), &[ingress(json!({}), "realip")], &svcs, &slices, NO_SECRETS);
        assert!(d.routes.is_empty() && d.problems.is_empty(), "outside the watched namespace");
    }

    /// ingress-nginx's `global-rate-limit` (N per window) becomes a
    /// global-scope rate of N / window per second with a burst of N.
    #[test]
    fn global_rate_limit_annotations_become_a_global_rate() {
        let (svcs, slices) = fixtures();
        let run = |a: serde_json::Value| desired("realip", None, &[ingress(a, "realip")], &svcs, &slices, NO_SECRETS);
        for prefix in ["nginx.ingress.kubernetes.io", "realip.dev"] {
            let d = run(
                json!({format!("{prefix}/global-rate-limit"): "120", format!("{prefix}/global-rate-limit-window"): "1m"}),
            );
            assert!(d.problems.is_empty(), "{:?}", d.problems);
            let r = &d.routes[0];
            assert_eq!((r.rps, r.burst, r.rate_global), (Some(2.0), Some(120.0), true), "{prefix}");
            let rl = RouteSet::from_ingress(&d).routes[0].access.clone().unwrap().rate_limit.clone().unwrap();
            assert_eq!((rl.per_second, rl.burst, rl.global), (2.0, 120.0, true));
            // One bucket for the whole Ingress, as ingress-nginx's zone.
            assert_eq!(rl.scope, format!("ingress:{}", d.routes[0].ingress));
        }
        let d = run(json!({"nginx.ingress.kubernetes.io/limit-rps": "4"}));
        assert!(!d.routes[0].rate_global, "limit-rps stays per replica");
        let d = run(json!({"nginx.ingress.kubernetes.io/global-rate-limit": "10",
            "nginx.ingress.kubernetes.io/global-rate-limit-window": "1h30m",
            "nginx.ingress.kubernetes.io/global-rate-limit-key": "$remote_addr"}));
        assert_eq!(d.routes[0].rps, Some(10.0 / 5400.0));
        let rejected = [
            (
                json!({"nginx.ingress.kubernetes.io/global-rate-limit": "10"}),
                "global-rate-limit needs global-rate-limit-window",
            ),
            (
                json!({"nginx.ingress.kubernetes.io/global-rate-limit-window": "1m"}),
                "global-rate-limit-window needs global-rate-limit",
            ),
            (
                json!({"nginx.ingress.kubernetes.io/global-rate-limit": "ten", "nginx.ingress.kubernetes.io/global-rate-limit-window": "1m"}),
                "global-rate-limit: `ten` is not a positive whole number",
            ),
            (
                json!({"nginx.ingress.kubernetes.io/global-rate-limit": "0", "nginx.ingress.kubernetes.io/global-rate-limit-window": "1m"}),
                "global-rate-limit: `0` is not a positive whole number",
            ),
            (
                json!({"nginx.ingress.kubernetes.io/global-rate-limit": "10", "nginx.ingress.kubernetes.io/global-rate-limit-window": "1 minute"}),
                "global-rate-limit-window: `1 minute` is not a duration",
            ),
            (
                json!({"nginx.ingress.kubernetes.io/global-rate-limit": "10", "nginx.ingress.kubernetes.io/global-rate-limit-window": "0s"}),
                "global-rate-limit-window: `0s` must be more than 0s",
            ),
            (
                json!({"nginx.ingress.kubernetes.io/global-rate-limit": "10", "nginx.ingress.kubernetes.io/global-rate-limit-window": "1m",
                "nginx.ingress.kubernetes.io/global-rate-limit-key": "$http_x_api_client"}),
                "global-rate-limit-key: `$http_x_api_client` is not supported",
            ),
            (
                json!({"nginx.ingress.kubernetes.io/global-rate-limit": "10", "nginx.ingress.kubernetes.io/global-rate-limit-window": "1m",
                "nginx.ingress.kubernetes.io/limit-rps": "5"}),
                "limit-rps and global-rate-limit together",
            ),
        ];
        for (a, want) in rejected {
            let d = run(a.clone());
            assert!(d.routes.is_empty(), "{a}");
            assert!(d.problems[0].message.contains(want), "{a}: {:?}", d.problems);
        }
        assert_eq!(parse_window("1.5s"), Ok(1.5));
        assert_eq!(parse_window("250ms"), Ok(0.25));
        assert!(parse_window("25h").is_err() && parse_window("m").is_err() && parse_window("").is_err());
    }

    #[test]
    fn missing_services_and_ports_are_named() {
        let (svcs, slices) = fixtures();
        let mut ing = ingress(json!({}), "realip");
        ing.spec.as_mut().unwrap().rules.as_mut().unwrap()[0].http.as_mut().unwrap().paths[0].backend =
            obj(json!({"service": {"name": "app", "port": {"number": 81}}}));
        let d = desired("realip", None, &[ing], &svcs, &slices, NO_SECRETS);
        assert_eq!(d.problems[0].message, "Service web/app has no port 81");
        assert_eq!(parse_size("0").unwrap(), u64::MAX);
        // TLS: the Secret's PEM is handed over; a missing one is a warning, not a rejection.
        let mut ing = ingress(json!({}), "realip");
        ing.spec.as_mut().unwrap().tls =
            Some(vec![obj(json!({"hosts": ["app.example.com"], "secretName": "site-tls"}))]);
        let d = desired("realip", None, std::slice::from_ref(&ing), &svcs, &slices, NO_SECRETS);
        assert_eq!((d.routes.len(), d.warnings[0].message.as_str()), (1, "TLS Secret web/site-tls not found"));
        assert!(d.routes[0].ssl_redirect, "TLS for the host turns ssl-redirect on by default");
        let secret: Secret =
            obj(json!({"metadata": {"name": "site-tls", "namespace": "web"}, "type": "kubernetes.io/tls",
            "data": {"tls.crt": crate::tls::testdata::CRT_B64, "tls.key": crate::tls::testdata::KEY_B64}}));
        let d = desired("realip", None, std::slice::from_ref(&ing), &svcs, &slices, &[secret]);
        let (crt, key) = (&include_bytes!("../testdata/tls.crt")[..], &include_bytes!("../testdata/tls.key")[..]);
        assert_eq!((d.certs[0].cert_pem.as_slice(), d.certs[0].key_pem.as_slice()), (crt, key));
        assert!(!format!("{:?}", d.certs[0]).contains("KEY"), "the key is never printed");
        // A Secret the proxy could not serve is a warning naming what is wrong.
        let garbage: Secret =
            obj(json!({"metadata": {"name": "site-tls", "namespace": "web"}, "type": "kubernetes.io/tls",
            "data": {"tls.crt": "Q0VSVA==", "tls.key": crate::tls::testdata::KEY_B64}}));
        let d = desired("realip", None, std::slice::from_ref(&ing), &svcs, &slices, &[garbage]);
        assert!(d.certs.is_empty());
        assert_eq!(d.warnings[0].message, "TLS Secret web/site-tls tls.crt: no certificate in it");
        assert!(parse_size("8x").is_err());
    }
}
