//! The proxy's Kubernetes mode: the neutral route set
//! ([`realip_kube::routes::RouteSet`], Ingresses and Gateway API merged by
//! the watcher's consumer in [`crate::server`]) is turned into routes and
//! upstream pools, added to those of the configuration file, and the whole
//! is validated and swapped in like any reload — so a change never drops a
//! request in flight, and a bad result never replaces a good running
//! configuration. Upstream pools target ready pod IPs directly (no
//! ClusterIP hop).
//!
//! Invariants:
//! - the conversion is typed end to end (no detour through JSON): every
//!   route of the set is either served or reported as an [`Unserved`]
//!   with the reason, never dropped in silence;
//! - route names are the set's stable [`Route::name`]s, so metrics and
//!   logs keep their names when other objects come and go.

use std::fmt;

use realip_kube::routes::{ListenerSpec, PathMatch, Protocol, Route, RouteSet};
use serde_json::json;

use crate::config::{CertConfig, Config, GatewayMatch, RateConfig, RouteConfig, UpstreamConfig};

/// Why a route of the set is not served by this proxy (yet): reported in
/// the `kubernetes_route_unserved` event, never dropped silently.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Unserved {
    /// Attached to a Gateway listener no `[[listener]]` serves
    /// (`gateway_ports`), or one an HTTPS listener needs TLS for.
    GatewayListener(String),
    /// Attached to a Gateway listener with a ClientIPPolicy, which the
    /// proxy does not apply per listener yet: serving it with the file's
    /// chain could resolve a client the policy would not.
    ClientIpPolicy(String),
    /// A filter (header modifiers, redirect, rewrite).
    Filter,
    /// No backend, or one that did not resolve: the spec's 500.
    NoBackend,
    /// More than one weighted backend.
    WeightedBackends(usize),
    /// A rate limit whose IPv6 keying differs from the file's
    /// `[policy] ipv6_prefix` (the only one the proxy keys on so far).
    Ipv6Prefix(u8),
    /// A `scope: Global` rate limit while the file has no
    /// `[rate_limit_store]`: served locally it would be N× too loose.
    NoRateLimitStore,
    /// A second route for the same host and path: the first one serves.
    Shadowed(String),
}

impl fmt::Display for Unserved {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Unserved::GatewayListener(why) => f.write_str(why),
            Unserved::ClientIpPolicy(l) => {
                write!(f, "Gateway listener {l} has a ClientIPPolicy, not applied per listener yet")
            }
            Unserved::Filter => f.write_str("filters are not served yet"),
            Unserved::NoBackend => f.write_str("no resolved backend"),
            Unserved::WeightedBackends(n) => write!(f, "{n} weighted backends are not served yet"),
            Unserved::Ipv6Prefix(n) => write!(f, "rate limit ipv6PrefixLength {n} differs from [policy] ipv6_prefix"),
            Unserved::NoRateLimitStore => f.write_str("scope Global needs [rate_limit_store] in the file"),
            Unserved::Shadowed(by) => write!(f, "same host and path as `{by}`, which serves"),
        }
    }
}

/// A route of the set that is not served, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// [`Route::name`].
    pub route: String,
    /// [`Route::origin`].
    pub origin: String,
    /// Why.
    pub reason: Unserved,
}

/// The upstream pool of a Kubernetes backend.
fn upstream(b: &realip_kube::ingress::Backend) -> UpstreamConfig {
    UpstreamConfig {
        name: format!("k8s:{}", b.name),
        endpoints: b.endpoints.iter().map(ToString::to_string).collect(),
        proxy_protocol: crate::config::ProxyProtocolOut::Off,
        balance: crate::config::Balance::default(),
        connect_timeout: None,
        response_timeout: None,
        idle_timeout: None,
        max_fails: None,
        fail_timeout: None,
        tls: if b.https { crate::config::UpstreamTls::Insecure } else { crate::config::UpstreamTls::default() },
        tls_server_name: None,
        from_kubernetes: true,
    }
}

/// What a route is converted with.
struct Ctx<'a> {
    /// The file's `[policy] ipv6_prefix` (default 64).
    ipv6_prefix: u8,
    /// The set's Gateway listeners.
    gateway: &'a [ListenerSpec],
    /// The file's listeners.
    file: &'a [crate::config::ListenerConfig],
    /// Whether the file has a `[rate_limit_store]` (for `scope: Global`).
    store: bool,
}

/// The file listeners serving the Gateway listeners `names`, or why not.
fn file_listeners(names: &[String], ctx: &Ctx<'_>) -> Result<Vec<String>, Unserved> {
    let mut out = Vec::new();
    for n in names {
        let Some(spec) = ctx.gateway.iter().find(|l| &l.name == n) else {
            return Err(Unserved::GatewayListener(format!("Gateway listener {n} is not in the route set")));
        };
        if spec.client_ip.is_some() {
            return Err(Unserved::ClientIpPolicy(n.clone()));
        }
        let https = spec.protocol == Protocol::Https;
        let before = out.len();
        for l in ctx.file.iter().filter(|l| l.gateway_ports.contains(&spec.port)) {
            if https && !l.tls.as_ref().is_some_and(|t| t.kubernetes) {
                return Err(Unserved::GatewayListener(format!(
                    "Gateway listener {n} is HTTPS but [[listener]] `{}` has no tls.kubernetes",
                    l.name
                )));
            }
            if !out.contains(&l.name) {
                out.push(l.name.clone());
            }
        }
        if out.len() == before && !ctx.file.iter().any(|l| l.gateway_ports.contains(&spec.port)) {
            return Err(Unserved::GatewayListener(format!(
                "no [[listener]] has gateway_ports = [{}] for Gateway listener {n}",
                spec.port
            )));
        }
    }
    Ok(out)
}

/// `r` (at `order` in the set) as a file route, or why it cannot be one.
fn route(r: &Route, order: usize, ctx: &Ctx<'_>) -> Result<RouteConfig, Unserved> {
    let (prefix, exact) = match &r.path {
        PathMatch::Prefix(p) => (p.clone(), None),
        PathMatch::Exact(p) => (p.clone(), Some(true)),
        PathMatch::SegmentPrefix(p) => (p.clone(), Some(false)),
    };
    let plain = exact.is_none() && r.method.is_none() && r.headers.is_empty() && r.query.is_empty();
    let gateway = if r.listeners.is_empty() && plain {
        None
    } else {
        let listeners = if r.listeners.is_empty() {
            ctx.file.iter().map(|l| l.name.clone()).collect()
        } else {
            file_listeners(&r.listeners, ctx)?
        };
        let pairs =
            |v: &[realip_kube::routes::ValueMatch]| v.iter().map(|m| (m.name.clone(), m.value.clone())).collect();
        Some(GatewayMatch {
            listeners,
            exact: exact == Some(true),
            order,
            method: r.method.clone(),
            headers: pairs(&r.headers),
            query: pairs(&r.query),
        })
    };
    if !r.filters.is_empty() {
        return Err(Unserved::Filter);
    }
    let backend = match r.backends.as_slice() {
        [] => return Err(Unserved::NoBackend),
        [one] => one.backend.clone().ok_or(Unserved::NoBackend)?,
        more => return Err(Unserved::WeightedBackends(more.len())),
    };
    let access = r.access.as_ref();
    let rate = match access.and_then(|a| a.rate_limit.as_ref()) {
        Some(rl) if rl.ipv6_prefix_length != ctx.ipv6_prefix => {
            return Err(Unserved::Ipv6Prefix(rl.ipv6_prefix_length))
        }
        Some(rl) if rl.global && !ctx.store => return Err(Unserved::NoRateLimitStore),
        Some(rl) => Some(RateConfig {
            per_second: rl.per_second,
            burst: Some(rl.burst),
            scope: if rl.global { crate::config::RateScope::Global } else { crate::config::RateScope::Local },
        }),
        None => None,
    };
    Ok(RouteConfig {
        name: Some(r.name.clone()),
        host: r.host.clone(),
        path_prefix: prefix,
        upstream: format!("k8s:{backend}"),
        allow: access.and_then(|a| a.allow.clone()),
        deny: access.map(|a| a.deny.clone()).unwrap_or_default(),
        rate,
        max_body_bytes: r.max_body,
        https_redirect: r.ssl_redirect,
        gateway,
    })
}

/// Routes and upstreams for `set` on the listeners of `config`, and the
/// routes that are not served.
pub fn routes(set: &RouteSet, config: &Config) -> (Vec<RouteConfig>, Vec<UpstreamConfig>, Vec<Problem>) {
    let ctx = Ctx {
        ipv6_prefix: config.policy.ipv6_prefix.unwrap_or(64),
        gateway: &set.listeners,
        file: &config.listeners,
        store: config.rate_limit_store.is_some(),
    };
    let upstreams = set.backends.iter().map(upstream).collect();
    let mut problems = Vec::new();
    let mut routes = Vec::new();
    for (order, r) in set.routes.iter().enumerate() {
        match route(r, order, &ctx) {
            Ok(c) => routes.push(c),
            Err(reason) => problems.push(Problem { route: r.name.clone(), origin: r.origin.clone(), reason }),
        }
    }
    (routes, upstreams, problems)
}

/// The file's configuration plus the Kubernetes routes (file routes
/// first) and the set's TLS Secrets on listeners with `tls.kubernetes`,
/// and every route of the set that is not served, with the reason.
pub fn compose_checked(mut config: Config, set: Option<&RouteSet>) -> (Config, Vec<Problem>) {
    let Some(set) = set else { return (config, Vec::new()) };
    let (routes, upstreams, mut problems) = routes(set, &config);
    // Two routes for one host and path would fail validation and with
    // it every Kubernetes change: the first one (file routes, then the
    // set in order) serves, the later one is reported.
    let key = |r: &RouteConfig| {
        (r.host.as_deref().map(|h| h.trim_end_matches('.').to_ascii_lowercase()), r.path_prefix.clone())
    };
    let mut seen: std::collections::HashMap<_, String> =
        config.routes.iter().map(|r| (key(r), crate::config::route_name(r))).collect();
    for r in routes {
        let name = crate::config::route_name(&r);
        if r.gateway.is_some() {
            config.routes.push(r);
            continue;
        }
        match seen.entry(key(&r)) {
            std::collections::hash_map::Entry::Occupied(first) => {
                let origin = set.routes.iter().find(|x| x.name == name).map(|x| x.origin.clone()).unwrap_or_default();
                problems.push(Problem { route: name, origin, reason: Unserved::Shadowed(first.get().clone()) });
            }
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(name);
                config.routes.push(r);
            }
        }
    }
    config.upstreams.extend(upstreams);
    for l in &mut config.listeners {
        let Some(tls) = l.tls.as_mut().filter(|t| t.kubernetes) else { continue };
        tls.certificates.extend(set.certs.iter().map(|c| CertConfig {
            cert: format!("secret {}", c.name).into(),
            key: format!("secret {}", c.name).into(),
            pem: Some(std::sync::Arc::new((c.cert_pem.clone(), c.key_pem.clone()))),
        }));
    }
    (config, problems)
}

/// [`compose_checked`], each unserved route logged: a shadowed one as
/// `kubernetes_route_shadowed` (as before), any other as
/// `kubernetes_route_unserved` with the reason.
pub fn compose(config: Config, set: Option<&RouteSet>) -> Config {
    let (config, problems) = compose_checked(config, set);
    for p in &problems {
        match &p.reason {
            Unserved::Shadowed(by) => crate::log::event(&json!({
                "event": "kubernetes_route_shadowed", "route": p.route, "served_by": by,
            })),
            reason => crate::log::event(&json!({
                "event": "kubernetes_route_unserved", "route": p.route, "origin": p.origin,
                "reason": reason.to_string(),
            })),
        }
    }
    config
}

#[cfg(test)]
mod tests {
    use super::*;
    use realip_kube::ingress::{Backend, Desired, Route as IngressRoute};
    use realip_kube::routes::{ClientIp, Filter, Forward, HeaderEdit, ProxyMode, ValueMatch, WeightedBackend};

    #[test]
    fn desired_routes_become_validated_config() {
        let d = Desired {
            routes: vec![IngressRoute {
                ingress: "web/site".into(),
                host: Some("app.example.com".into()),
                path: "/api".into(),
                backend: "web/app:80".into(),
                allow: Some(vec!["203.0.113.0/24".into()]),
                deny: vec![],
                rps: Some(10.0),
                burst: Some(50.0),
                rate_global: false,
                max_body: Some(1024),
                ssl_redirect: true,
            }],
            backends: vec![Backend { name: "web/app:80".into(), endpoints: vec![], https: true }],
            ..Desired::default()
        };
        let base: Config = toml::from_str("[[listener]]\nname = \"web\"\nbind = \"127.0.0.1:0\"\n").unwrap();
        let c = compose(base, Some(&RouteSet::from_ingress(&d)));
        assert!(c.validate().is_empty(), "{:?}", c.validate());
        assert_eq!(c.routes[0].upstream, "k8s:web/app:80");
        assert_eq!(c.routes[0].max_body_bytes, Some(1024));
        assert!(c.routes[0].https_redirect);
        assert!(c.upstreams[0].from_kubernetes && c.upstreams[0].endpoints.is_empty());
        assert_eq!(c.upstreams[0].tls, crate::config::UpstreamTls::Insecure);
        assert_eq!(crate::config::route_name(&c.routes[0]), "ingress/web/site/app.example.com/api");
        // A second Ingress claiming the same host and path is shadowed, not fatal.
        let mut twice = d.clone();
        let mut other = twice.routes[0].clone();
        other.ingress = "web/other".into();
        twice.routes.push(other);
        let base: Config = toml::from_str("[[listener]]\nname = \"web\"\nbind = \"127.0.0.1:0\"\n").unwrap();
        let (c, problems) = compose_checked(base, Some(&RouteSet::from_ingress(&twice)));
        assert!(c.validate().is_empty(), "{:?}", c.validate());
        assert_eq!(c.routes.len(), 1);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(problems[0].route, "ingress/web/other/app.example.com/api");
        assert_eq!(problems[0].reason, Unserved::Shadowed("ingress/web/site/app.example.com/api".into()));
    }

    /// Every route of the set is served or reported with its reason:
    /// nothing a translation produced disappears silently.
    #[test]
    #[allow(clippy::too_many_lines)] // one table of every reason
    fn routes_that_cannot_be_served_are_reported_not_dropped() {
        let d = Desired {
            routes: vec![IngressRoute {
                ingress: "web/site".into(),
                host: None,
                path: "/".into(),
                backend: "web/app:80".into(),
                allow: None,
                deny: vec![],
                rps: Some(5.0),
                burst: None,
                rate_global: false,
                max_body: None,
                ssl_redirect: false,
            }],
            backends: vec![Backend { name: "web/app:80".into(), endpoints: vec![], https: false }],
            ..Desired::default()
        };
        let ok = RouteSet::from_ingress(&d).routes.remove(0);
        let variant = |name: &str, f: &dyn Fn(&mut Route)| {
            let mut r = ok.clone();
            r.name = format!("httproute/web/r/{name}");
            f(&mut r);
            r
        };
        let cases: Vec<(Route, Unserved)> = vec![
            (
                variant("unknown-listener", &|r| r.listeners = vec!["gateway/web/gw/gone".into()]),
                Unserved::GatewayListener("Gateway listener gateway/web/gw/gone is not in the route set".into()),
            ),
            (
                variant("no-bind", &|r| r.listeners = vec!["gateway/web/gw/alt".into()]),
                Unserved::GatewayListener(
                    "no [[listener]] has gateway_ports = [8080] for Gateway listener gateway/web/gw/alt".into(),
                ),
            ),
            (
                variant("policy", &|r| r.listeners = vec!["gateway/web/gw/pp".into()]),
                Unserved::ClientIpPolicy("gateway/web/gw/pp".into()),
            ),
            (variant("filter", &|r| r.filters = vec![Filter::RequestHeaders(HeaderEdit::default())]), Unserved::Filter),
            (variant("none", &|r| r.backends.clear()), Unserved::NoBackend),
            (
                variant("unresolved", &|r| r.backends = vec![WeightedBackend { backend: None, weight: 1 }]),
                Unserved::NoBackend,
            ),
            (
                variant("weights", &|r| {
                    r.backends.push(WeightedBackend { backend: Some("web/app:80".into()), weight: 3 });
                }),
                Unserved::WeightedBackends(2),
            ),
            (
                variant("ipv6", &|r| {
                    if let Some(rl) = r.access.as_mut().and_then(|a| a.rate_limit.as_mut()) {
                        rl.ipv6_prefix_length = 56;
                    }
                }),
                Unserved::Ipv6Prefix(56),
            ),
        ];
        let spec = |name: &str, port: u16, client_ip: Option<ClientIp>| ListenerSpec {
            name: format!("gateway/web/gw/{name}"),
            port,
            protocol: Protocol::Http,
            hostname: None,
            certs: vec![],
            client_ip,
        };
        let chain = ClientIp {
            policy: "web/pp".into(),
            proxy_protocol: ProxyMode::Required,
            proxy_protocol_from: vec!["192.0.2.0/24".into()],
            trusted: vec![],
            sources: vec!["proxy-protocol".into()],
            strategy: "rightmost-untrusted".into(),
            fail_closed: true,
            forward: Forward::default(),
        };
        let served_gw = variant("gateway", &|r| {
            r.listeners = vec!["gateway/web/gw/http".into()];
            r.path = PathMatch::SegmentPrefix("/api".into());
            r.method = Some("GET".into());
            r.headers = vec![ValueMatch { name: "x-env".into(), value: "canary".into() }];
        });
        let set = RouteSet {
            listeners: vec![spec("http", 80, None), spec("alt", 8080, None), spec("pp", 80, Some(chain))],
            routes: [ok.clone(), served_gw.clone()].into_iter().chain(cases.iter().map(|(r, _)| r.clone())).collect(),
            backends: d.backends.clone(),
            ..RouteSet::default()
        };
        let config: Config = toml::from_str(
            "[[listener]]\nname = \"web\"\nbind = \"127.0.0.1:0\"\ngateway_ports = [80]\n\n[[listener]]\nname = \"admin-ish\"\nbind = \"127.0.0.1:0\"\n",
        )
        .unwrap();
        let (served, _, problems) = routes(&set, &config);
        assert_eq!(served.len(), 2);
        assert_eq!(served[0].name.as_deref(), Some(ok.name.as_str()));
        assert_eq!(
            served[0].rate,
            Some(RateConfig { per_second: 5.0, burst: Some(5.0), scope: crate::config::RateScope::Local })
        );
        assert!(served[0].gateway.is_none(), "Ingress routes keep the file's matching");
        assert_eq!(served[1].name.as_deref(), Some(served_gw.name.as_str()));
        let want = GatewayMatch {
            listeners: vec!["web".into()],
            exact: false,
            order: 1,
            method: Some("GET".into()),
            headers: vec![("x-env".into(), "canary".into())],
            query: vec![],
        };
        assert_eq!(served[1].gateway, Some(want));
        let got: Vec<(String, Unserved)> = problems.into_iter().map(|p| (p.route, p.reason)).collect();
        let want: Vec<(String, Unserved)> = cases.into_iter().map(|(r, u)| (r.name, u)).collect();
        assert_eq!(got, want);
    }

    /// An Ingress `global-rate-limit` is served as a global rate when the
    /// file has a `[rate_limit_store]`, and reported (never served per
    /// replica, N× too loose) when it has none.
    #[test]
    fn ingress_global_rate_limits_need_a_store() {
        let d = Desired {
            routes: vec![IngressRoute {
                ingress: "web/site".into(),
                host: None,
                path: "/".into(),
                backend: "web/app:80".into(),
                allow: None,
                deny: vec![],
                rps: Some(2.0),
                burst: Some(120.0),
                rate_global: true,
                max_body: None,
                ssl_redirect: false,
            }],
            backends: vec![Backend { name: "web/app:80".into(), endpoints: vec![], https: false }],
            ..Desired::default()
        };
        let set = RouteSet::from_ingress(&d);
        let listener = "[[listener]]\nname = \"web\"\nbind = \"127.0.0.1:0\"\n";
        let with_store: Config =
            toml::from_str(&format!("{listener}[rate_limit_store]\nredis = \"redis://127.0.0.1:6379/0\"\n")).unwrap();
        let (c, problems) = compose_checked(with_store, Some(&set));
        assert!(problems.is_empty() && c.validate().is_empty(), "{problems:?} {:?}", c.validate());
        let want = RateConfig { per_second: 2.0, burst: Some(120.0), scope: crate::config::RateScope::Global };
        assert_eq!(c.routes[0].rate, Some(want));
        let (c, problems) = compose_checked(toml::from_str(listener).unwrap(), Some(&set));
        assert!(c.routes.is_empty() && c.validate().is_empty());
        assert_eq!(problems[0].reason, Unserved::NoRateLimitStore);
        assert_eq!(problems[0].reason.to_string(), "scope Global needs [rate_limit_store] in the file");
    }

    #[test]
    fn an_endpoint_change_rebuilds_only_the_pool_it_touches() {
        use crate::snapshot::Snapshot;
        let backend =
            |name: &str, ip: &str| Backend { name: name.into(), endpoints: vec![ip.parse().unwrap()], https: false };
        let d = |a: &str| Desired {
            backends: vec![backend("web/a:80", a), backend("web/b:80", "10.0.0.9:80")],
            ..Desired::default()
        };
        let base = || -> Config { toml::from_str("[[listener]]\nname = \"web\"\nbind = \"127.0.0.1:0\"\n").unwrap() };
        let first = Snapshot::build(compose(base(), Some(&RouteSet::from_ingress(&d("10.0.0.1:80"))))).unwrap();
        let second =
            Snapshot::build_reusing(compose(base(), Some(&RouteSet::from_ingress(&d("10.0.0.2:80")))), Some(&first))
                .unwrap();
        let same = |n: &str| std::sync::Arc::ptr_eq(&first.pools[n], &second.pools[n]);
        assert!(!same("k8s:web/a:80"), "its endpoints changed");
        assert!(same("k8s:web/b:80"), "untouched: idle connections and ejections survive");
    }
}
