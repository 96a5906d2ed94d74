//! A validated configuration compiled for serving: resolver, routes,
//! upstream pools, policies, TLS configs. Immutable; a reload builds a new
//! one and swaps it in whole, so a request always sees one consistent
//! configuration and a bad file never replaces a good one.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use realip_core::{Resolver, Sources, TrustedProxies};
use realip_tower::{ProxyProtocolConfig, ProxyProtocolMode};

use crate::config::{route_name, Config, ListenerMode, ProxyProtocolIn, RateConfig, RateScope};
use crate::forward::ForwardRules;
use crate::policy::{Limit, Policy, RateLimiter};
use crate::ratestore::{GlobalLimiter, Store};
use crate::route::{HostMatch, Route, Routes};
use crate::upstream::Pool;
use crate::Error;

/// Per-listener settings that may change on reload.
#[derive(Clone, Debug)]
pub struct ListenerRuntime {
    /// PROXY protocol in.
    pub proxy: ProxyProtocolConfig,
    /// TLS, if terminated here.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// `http` or `tcp`.
    pub mode: ListenerMode,
    /// `tcp` mode: where bytes go.
    pub upstream: Option<Arc<Pool>>,
    /// The listener's own client-IP chain (a Gateway API
    /// `ClientIPPolicy`); `None`: the snapshot's `[client_ip]` and
    /// `[forward]`.
    pub chain: Option<Arc<Chain>>,
}

/// A compiled client-IP chain: whom to trust and what to read
/// ([`Resolver`]), what the upstream receives ([`ForwardRules`]), and
/// whether a request without a trustworthy answer is refused.
#[derive(Debug)]
pub struct Chain {
    /// Trusted proxies, sources, strategy.
    pub resolver: Resolver,
    /// Forwarding headers.
    pub forward: ForwardRules,
    /// 403 when no listed source gave a clean answer.
    pub fail_closed: bool,
}

impl Chain {
    /// Whether `r` is a trustworthy answer under this chain: it came
    /// from a source the chain lists (the PROXY source counts only when
    /// `proxy-protocol` is listed, the TCP peer only when `peer` is),
    /// nothing odd was met on the way (no invalid entry, no missing hops),
    /// and, walking from the right past trusted proxies, it is not itself
    /// one: a request whose every hop is a trusted proxy (the CDN's own
    /// address in the PROXY header, an all-trusted X-Forwarded-For) named
    /// no client (review 13g LOW-2).
    pub fn trustworthy(&self, r: &realip_core::Resolution) -> bool {
        let past_trusted = match self.resolver.strategy {
            realip_core::Strategy::RightmostUntrusted => !self.resolver.trusted.contains(r.ip),
            _ => true,
        };
        self.resolver.sources.contains(r.source) && r.warnings.is_empty() && past_trusted
    }
}

/// Everything a request needs, built from one config.
#[derive(Debug)]
pub struct Snapshot {
    /// The source.
    pub config: Config,
    /// Client-IP policy.
    pub resolver: Resolver,
    /// Routes.
    pub routes: Routes,
    /// Listeners by name.
    pub listeners: HashMap<String, ListenerRuntime>,
    /// Upstream pools by name.
    pub pools: foldhash::HashMap<String, Arc<Pool>>,
    /// Header rewriting rules.
    pub forward: ForwardRules,
    /// `resolver` and `forward` as the chain of listeners without their own.
    default_chain: Arc<Chain>,
    /// Rate limiters by what they limit (see [`limiter_key`]), so a reload
    /// keeps the buckets of limits that did not change.
    limiters: HashMap<String, Limit>,
    /// The rate-limit store, kept across reloads while its settings stay.
    store: Option<Arc<Store>>,
}

/// Parses `list`, or records why not under `key`.
fn cidrs(list: &[String], key: &str, errs: &mut Vec<String>) -> TrustedProxies {
    TrustedProxies::parse(list).unwrap_or_else(|e| {
        errs.push(format!("{key}: {e}"));
        TrustedProxies::none()
    })
}

/// Where a compiled route of the previous snapshot is looked up (a
/// route's name, host and prefix; its whole configuration is compared).
fn route_key(r: &crate::config::RouteConfig) -> (Option<&str>, Option<&str>, &str) {
    (r.name.as_deref(), r.host.as_deref(), r.path_prefix.as_str())
}

/// The scope of a route's own limit: the policy's that set it (shared by
/// the routes it applies to), else the route's escaped name.
fn rate_scope<'a>(r: &'a crate::config::RouteConfig, name: &'a str) -> std::borrow::Cow<'a, str> {
    match &r.rate_scope {
        Some(s) => s.as_str().into(),
        None => crate::ratestore::route_scope(name),
    }
}

/// What a limiter limits: its scope (a route name, or `[policy]` for the
/// shared one), its rate, where it is kept (local or global) and its IPv6
/// keying. Equal keys share buckets (or, global, the store client and the
/// cache of limited clients) across reloads.
fn limiter_key(scope: &str, rate: RateConfig, ipv6_prefix: u8) -> String {
    format!("{scope}\u{0}{}\u{0}{:?}\u{0}{:?}\u{0}{ipv6_prefix}", rate.per_second, rate.burst, rate.scope)
}

impl Snapshot {
    /// The client-IP chain of listener `name`: its own (Gateway API
    /// `ClientIPPolicy`), else the file's `[client_ip]` and `[forward]`.
    pub fn chain(&self, listener: &str) -> &Arc<Chain> {
        self.listeners.get(listener).and_then(|l| l.chain.as_ref()).unwrap_or(&self.default_chain)
    }

    /// Validates and compiles `config`.
    pub fn build(config: Config) -> Result<Snapshot, Error> {
        Snapshot::build_reusing(config, None)
    }

    /// This snapshot with the upstreams `changed` (matched by name)
    /// replaced: what an EndpointSlice change does, without validating
    /// and compiling the whole configuration again. Only the pools whose
    /// configuration differs are new; the routes and listeners using them
    /// are copied with the new pools, everything else (the other routes,
    /// pools, limiters, chains, TLS) is shared with this snapshot. The
    /// result equals [`Snapshot::build_reusing`] of the configuration
    /// with those upstreams replaced (a test holds it to that).
    ///
    /// An upstream this snapshot does not have, or one that fails the
    /// checks `Config::validate` makes of an upstream, is an error and
    /// this snapshot stays in force.
    pub fn with_upstreams(&self, changed: &[crate::config::UpstreamConfig]) -> Result<Snapshot, Error> {
        let mut errs = Vec::new();
        let mut config = self.config.clone();
        let mut pools = self.pools.clone();
        let mut replaced: HashMap<*const Pool, Arc<Pool>> = HashMap::new();
        for u in changed {
            let slot = config.upstreams.iter().position(|x| x.name == u.name);
            let (Some(i), Some(old)) = (slot, self.pools.get(&u.name)) else {
                errs.push(format!("upstream `{}`: not in the running configuration", u.name));
                continue;
            };
            for (what, msg) in crate::config::upstream_errors(u) {
                errs.push(format!("upstream[{i}] `{}`{what}: {msg}", u.name));
            }
            if old.config() == u {
                continue;
            }
            config.upstreams[i] = u.clone();
            let new = Arc::new(Pool::new(u));
            pools.insert(u.name.clone(), Arc::clone(&new));
            replaced.insert(Arc::as_ptr(old), new);
        }
        if !errs.is_empty() {
            return Err(Error::Config(errs));
        }
        let swap = |p: &Arc<Pool>| replaced.get(&Arc::as_ptr(p)).map_or_else(|| Arc::clone(p), Arc::clone);
        // Only the routes using a replaced pool are copied.
        let routes = self.routes.replacing(|r| {
            let upstream = replaced.get(&Arc::as_ptr(&r.upstream));
            let backends = r.backends.as_ref().and_then(|w| w.replacing(&replaced));
            if upstream.is_none() && backends.is_none() {
                return None;
            }
            let mut r = r.clone();
            if let Some(p) = upstream {
                r.upstream = Arc::clone(p);
            }
            if backends.is_some() {
                r.backends = backends;
            }
            Some(r)
        });
        let listeners = self
            .listeners
            .iter()
            .map(|(name, l)| {
                let mut l = l.clone();
                l.upstream = l.upstream.as_ref().map(swap);
                (name.clone(), l)
            })
            .collect();
        Ok(Snapshot {
            config,
            resolver: self.resolver.clone(),
            routes,
            listeners,
            pools,
            forward: self.forward.clone(),
            default_chain: Arc::clone(&self.default_chain),
            limiters: self.limiters.clone(),
            store: self.store.clone(),
        })
    }

    /// As [`Snapshot::build`], keeping the pools of `previous` whose
    /// upstream configuration did not change: their idle keep-alive
    /// connections, in-flight counts and ejections survive a reload (and
    /// every Kubernetes endpoint change that does not touch them).
    #[allow(clippy::too_many_lines)] // one pass over the config, in file order
    pub fn build_reusing(config: Config, previous: Option<&Snapshot>) -> Result<Snapshot, Error> {
        // The routes of `previous` by the address of their configuration
        // (held by `previous`, so no other route can have it).
        let previous_routes: foldhash::HashMap<usize, usize> = previous
            .map(|p| p.config.routes.iter().enumerate().map(|(i, r)| (Arc::as_ptr(r).addr(), i)).collect())
            .unwrap_or_default();
        // A route of `previous` passed the checks of one route with the
        // upstream names and path rules it had; with the same ones it
        // passes them again.
        let same_checks = previous.is_some_and(|p| {
            p.config.http.allow_backslash == config.http.allow_backslash
                && p.config.upstreams.len() == config.upstreams.len()
                && p.config.upstreams.iter().zip(&config.upstreams).all(|(a, b)| a.name == b.name)
        });
        let mut errs = config.validate_with(&|r| same_checks && previous_routes.contains_key(&Arc::as_ptr(r).addr()));
        // Certificates are loaded even when the rest is wrong, so one run
        // reports every problem.
        let mut tls_configs: HashMap<String, Option<Arc<rustls::ServerConfig>>> = HashMap::new();
        for l in &config.listeners {
            let tls = l
                .tls
                .as_ref()
                .and_then(|t| crate::tls::server_config(&l.name, t).map_err(|e| errs.push(e.to_string())).ok());
            tls_configs.insert(l.name.clone(), tls);
        }
        if !errs.is_empty() {
            return Err(Error::Config(errs));
        }
        let ci = &config.client_ip;
        let trusted = cidrs(&ci.trusted, "client_ip.trusted", &mut errs);
        let sources = Sources::parse(&ci.sources).map_err(|e| format!("client_ip.sources: {e}"));
        let strategy = ci.strategy.parse().map_err(|e: realip_core::Error| format!("client_ip.strategy: {e}"));
        let forward = ForwardRules::new(&config.forward);
        let pools: foldhash::HashMap<String, Arc<Pool>> = config
            .upstreams
            .iter()
            .map(|u| {
                let old = previous.and_then(|p| p.pools.get(&u.name)).filter(|p| p.config() == u);
                (u.name.clone(), old.map_or_else(|| Arc::new(Pool::new(u)), Arc::clone))
            })
            .collect();
        let ipv6_prefix = config.policy.ipv6_prefix.unwrap_or(64);
        let store = match &config.rate_limit_store {
            Some(s) => match Store::new(s, previous.and_then(|p| p.store.as_ref())) {
                Ok(s) => Some(s),
                Err(e) => {
                    errs.push(e);
                    None
                }
            },
            None => None,
        };
        let mut limiters: HashMap<String, Limit> = HashMap::new();
        let mut limiter = |scope: &str, rate: RateConfig, ipv6_prefix: u8| {
            let key = limiter_key(scope, rate, ipv6_prefix);
            // Routes of one scope (a Kubernetes policy's) share one limiter.
            if let Some(l) = limiters.get(&key) {
                return l.clone();
            }
            let old = previous.and_then(|p| p.limiters.get(&key)).filter(|l| match (l, &store) {
                // A global limiter is reused only with the store it uses.
                (Limit::Global(g), Some(s)) => Arc::ptr_eq(g.store(), s),
                (Limit::Global(_), None) => false,
                (Limit::Local(_), _) => true,
            });
            let l = match (old, rate.scope, &store) {
                (Some(l), _, _) => l.clone(),
                (None, RateScope::Global, Some(s)) => {
                    Limit::Global(Arc::new(GlobalLimiter::new(Arc::clone(s), scope, rate, ipv6_prefix)))
                }
                // Global without a store was reported by `validate`.
                (None, _, _) => Limit::Local(Arc::new(RateLimiter::new(rate, ipv6_prefix))),
            };
            limiters.insert(key, l.clone());
            l
        };
        let global_rate = config.policy.rate.map(|r| limiter(crate::ratestore::POLICY_SCOPE, r, ipv6_prefix));
        let global_allow =
            (!config.policy.allow.is_empty()).then(|| Arc::new(cidrs(&config.policy.allow, "policy.allow", &mut errs)));
        // Parsed once per list: the Kubernetes routes one policy covers
        // share its lists (by their address and length, held by `config`
        // while this runs).
        let mut parsed_allow: HashMap<(usize, usize), Arc<realip_core::TrustedProxies>> = HashMap::new();
        let mut parsed_deny: HashMap<(usize, usize), Arc<realip_core::TrustedProxies>> = HashMap::new();
        let mut routes = Vec::with_capacity(config.routes.len());
        // The pool of a Gateway route that answers by itself (a redirect,
        // or backends that all failed to resolve): never connected to.
        let answers_itself = Arc::new(Pool::new(&crate::config::UpstreamConfig {
            from_kubernetes: true,
            ..crate::config::UpstreamConfig::plain("-".into(), Vec::new())
        }));
        // A route of `previous` whose configuration is unchanged is reused
        // compiled when everything it was compiled with is too: the
        // file-wide policy and body limit, the rate-limit store, and the
        // very pools it holds (reused above when their upstream did not
        // change). A Kubernetes change of one route of 10,000 then compiles
        // one route, not all.
        // A route is found there by its configuration's address (a
        // Kubernetes route kept since the last reload), else by its name,
        // host and path among the routes not found so (a file reload parses
        // every route anew).
        let reusable = previous.filter(|p| {
            p.config.policy == config.policy
                && p.config.limits.max_body_bytes == config.limits.max_body_bytes
                && match (&p.store, &store) {
                    (Some(a), Some(b)) => Arc::ptr_eq(a, b),
                    (None, None) => true,
                    _ => false,
                }
        });
        let mut compiled: Vec<Option<&Arc<Route>>> = vec![None; config.routes.len()];
        if let Some(p) = reusable {
            let mut found = vec![false; p.config.routes.len()];
            let mut missed = false;
            for (slot, r) in compiled.iter_mut().zip(&config.routes) {
                if let Some(&j) = previous_routes.get(&Arc::as_ptr(r).addr()) {
                    *slot = p.routes.all().get(j);
                    found[j] = true;
                } else {
                    missed = true;
                }
            }
            if missed {
                let by_key: foldhash::HashMap<_, (&crate::config::RouteConfig, &Arc<Route>)> = p
                    .config
                    .routes
                    .iter()
                    .zip(p.routes.all())
                    .zip(&found)
                    .filter(|(_, found)| !**found)
                    .map(|((c, r), _)| (route_key(c), (&**c, r)))
                    .collect();
                for (slot, r) in compiled.iter_mut().zip(&config.routes).filter(|(slot, _)| slot.is_none()) {
                    *slot = by_key.get(&route_key(r)).filter(|(c, _)| *c == &**r).map(|(_, old)| *old);
                }
            }
        }
        let same_pool = |held: &Arc<Pool>, name: &str| pools.get(name).is_some_and(|p| Arc::ptr_eq(p, held));
        // When every pool of `previous` is kept as it was (the same `Arc`,
        // none added under an old name, none removed), a reused route's
        // pools are all current: checking them route by route (10,000
        // routes, a hash of each pool name) is needed only otherwise.
        let pools_kept = reusable.is_some_and(|p| {
            p.pools.len() == pools.len()
                && p.pools.iter().all(|(n, old)| pools.get(n).is_some_and(|new| Arc::ptr_eq(old, new)))
        });
        // By the address and length of a route's filters (held by
        // `config` while this runs, so never another list's).
        let mut compiled_filters: HashMap<(usize, usize), Arc<crate::gateway::Filters>> = HashMap::new();
        for (i, r) in config.routes.iter().enumerate() {
            let old = compiled[i].filter(|old| {
                pools_kept
                    || ((r.upstream.is_empty() || same_pool(&old.upstream, &r.upstream))
                        && old.backends.as_ref().is_none_or(|w| w.holds_only(|name, held| same_pool(held, name))))
            });
            if let Some(old) = old {
                // Its limiter is kept for the next reload too.
                if let Some(rate) = r.rate {
                    let _ = limiter(&rate_scope(r, &route_name(r)), rate, rate.ipv6_prefix.unwrap_or(ipv6_prefix));
                }
                if let Some((rate, scope)) = &r.also_rate {
                    let _ = limiter(scope, *rate, rate.ipv6_prefix.unwrap_or(ipv6_prefix));
                }
                routes.push(Arc::clone(old));
                continue;
            }
            let upstream = if (r.gateway.is_some() || !r.backends.is_empty()) && r.upstream.is_empty() {
                Some(&answers_itself)
            } else {
                pools.get(&r.upstream)
            };
            let Some(upstream) = upstream else {
                errs.push(format!("route[{i}].upstream: no [[upstream]] named `{}`", r.upstream));
                continue;
            };
            let name = route_name(r);
            // A file route's own allow list and rate replace `[policy]`'s
            // (and so do an Ingress's annotations, as in ingress-nginx,
            // whose annotations replace its ConfigMap's lists); a Gateway
            // API route's, written by a tenant, are counted under it: the
            // operator's `[policy]` is a floor no tenant's object lifts.
            let floor = r.gateway.is_some();
            let own_rate =
                r.rate.map(|rate| limiter(&rate_scope(r, &name), rate, rate.ipv6_prefix.unwrap_or(ipv6_prefix)));
            let file_rate = global_rate.clone().filter(|_| own_rate.is_none() || floor);
            let also = r
                .also_rate
                .as_ref()
                .map(|(rate, scope)| limiter(scope, *rate, rate.ipv6_prefix.unwrap_or(ipv6_prefix)));
            // Local limits are asked first: they can hand their token back
            // when a later one refuses (see `crate::policy`).
            let mut limits: Vec<Limit> = own_rate.into_iter().chain(also).chain(file_rate).collect();
            limits.sort_by_key(|l| !l.is_local());
            let list_key = |l: &Arc<[String]>| (Arc::as_ptr(l).cast::<()>().addr(), l.len());
            let own_allow = r.allow.as_ref().map(|a| {
                if let Some(p) = parsed_allow.get(&list_key(a)) {
                    Arc::clone(p)
                } else {
                    let p = Arc::new(cidrs(a, &format!("route[{i}].allow"), &mut errs));
                    parsed_allow.insert(list_key(a), Arc::clone(&p));
                    p
                }
            });
            let file_allow = global_allow.clone().filter(|_| own_allow.is_none() || floor);
            let allow: Vec<Arc<TrustedProxies>> = own_allow.into_iter().chain(file_allow).collect();
            let deny = if let Some(p) = parsed_deny.get(&list_key(&r.deny)) {
                Arc::clone(p)
            } else {
                let mut deny = config.policy.deny.clone();
                deny.extend(r.deny.iter().cloned());
                let p = Arc::new(cidrs(&deny, &format!("route[{i}].deny"), &mut errs));
                parsed_deny.insert(list_key(&r.deny), Arc::clone(&p));
                p
            };
            let policy = Policy { allow, deny, limits };
            let backends = (!r.backends.is_empty()).then(|| {
                crate::gateway::Weighted::new(
                    r.backends
                        .iter()
                        .map(|(b, w)| (b.as_ref().and_then(|b| pools.get(b)).map(Arc::clone), *w))
                        .collect(),
                )
            });
            // Compiled once per rule: the routes one HTTPRoute rule expands
            // to share its filters (see `RouteConfig::filters`).
            let key = (Arc::as_ptr(&r.filters).cast::<()>().addr(), r.filters.len());
            let filters = if let Some(f) = compiled_filters.get(&key) {
                Arc::clone(f)
            } else {
                match crate::gateway::Filters::compile(&r.filters) {
                    Ok(f) => {
                        let f = Arc::new(f);
                        compiled_filters.insert(key, Arc::clone(&f));
                        f
                    }
                    Err(e) => {
                        errs.push(format!("route[{i}] `{name}`.filters: {e}"));
                        continue;
                    }
                }
            };
            routes.push(Arc::new(Route {
                name: name.into(),
                host: HostMatch::new(r.host.as_deref()),
                prefix: r.path_prefix.clone(),
                upstream: Arc::clone(upstream),
                backends,
                filters,
                listener_ports: r.listener_ports.clone(),
                only_listeners: r.only_listeners.clone(),
                policy: Arc::new(policy),
                max_body_bytes: r.max_body_bytes.unwrap_or(config.limits.max_body_bytes),
                https_redirect: r.https_redirect,
                gateway: r.gateway.clone(),
                metrics: std::sync::OnceLock::new(),
            }));
        }
        let mut listeners = HashMap::new();
        for l in &config.listeners {
            let tls = tls_configs.remove(&l.name).flatten();
            let mode = match l.proxy_protocol {
                ProxyProtocolIn::Off => ProxyProtocolMode::Off,
                ProxyProtocolIn::Optional => ProxyProtocolMode::Optional,
                ProxyProtocolIn::Required => ProxyProtocolMode::Required,
            };
            let proxy = ProxyProtocolConfig {
                mode,
                allowed_from: cidrs(
                    &l.proxy_protocol_from,
                    &format!("listener `{}`.proxy_protocol_from", l.name),
                    &mut errs,
                ),
                header_timeout: l.header_timeout.map_or(Duration::from_secs(5), |d| d.0),
            };
            let upstream = l.upstream.as_ref().and_then(|u| pools.get(u)).map(Arc::clone);
            let chain = l.chain.as_ref().and_then(|c| {
                let key = format!("listener `{}`.chain (ClientIPPolicy {})", l.name, c.policy);
                let trusted = cidrs(&c.client_ip.trusted, &format!("{key}.trustedProxies"), &mut errs);
                let built = (|| {
                    let sources = Sources::parse(&c.client_ip.sources).map_err(|e| format!("{key}.sources: {e}"))?;
                    let strategy =
                        c.client_ip.strategy.parse().map_err(|e: realip_core::Error| format!("{key}.strategy: {e}"))?;
                    let forward = ForwardRules::new(&c.forward).map_err(|e| format!("{key}: {e}"))?;
                    Ok::<_, String>(Chain {
                        resolver: Resolver::new(trusted, sources, strategy),
                        forward,
                        fail_closed: c.fail_closed,
                    })
                })();
                built.map_err(|e| errs.push(e)).ok().map(Arc::new)
            });
            listeners.insert(l.name.clone(), ListenerRuntime { proxy, tls, mode: l.mode, upstream, chain });
        }
        let (sources, strategy, forward) = match (sources, strategy, forward) {
            (Ok(s), Ok(st), Ok(f)) if errs.is_empty() => (s, st, f),
            (s, st, f) => {
                errs.extend([s.err(), st.err(), f.err()].into_iter().flatten());
                return Err(Error::Config(errs));
            }
        };
        let resolver = Resolver::new(trusted, sources, strategy);
        let default_chain =
            Arc::new(Chain { resolver: resolver.clone(), forward: forward.clone(), fail_closed: false });
        Ok(Snapshot {
            default_chain,
            resolver,
            routes: Routes::from_shared(routes),
            listeners,
            config,
            pools,
            forward,
            limiters,
            store,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::Snapshot;
    use crate::config::Config;

    /// Review 13g LOW-2: with `failClosed`, an answer that is itself a
    /// trusted proxy (every hop trusted: the CDN's own address, no client
    /// named) is not trustworthy under RightmostUntrusted.
    #[test]
    fn an_answer_that_is_a_trusted_proxy_is_not_trustworthy() {
        use realip_core::{Resolution, Resolver, Source, Sources, Strategy, TrustedProxies, Warnings};
        let trusted = TrustedProxies::parse(&["198.51.100.0/24".to_owned()]).unwrap();
        let sources = Sources::new(&[Source::ProxyProtocol, Source::Xff]).unwrap();
        let chain = |strategy| super::Chain {
            resolver: Resolver::new(trusted.clone(), sources, strategy),
            forward: crate::forward::ForwardRules::new(&crate::config::ForwardConfig::default()).unwrap(),
            fail_closed: true,
        };
        let answer = |ip: &str| Resolution {
            ip: ip.parse().unwrap(),
            source: Source::ProxyProtocol,
            hop: 0,
            warnings: Warnings::default(),
        };
        let c = chain(Strategy::RightmostUntrusted);
        assert!(c.trustworthy(&answer("203.0.113.5")));
        assert!(!c.trustworthy(&answer("198.51.100.5")), "the CDN itself is no client");
        assert!(chain(Strategy::TrustedHops(1)).trustworthy(&answer("198.51.100.5")), "hops are counted, not matched");
    }

    const FILE: &str = r#"
[[listener]]
name = "web"
bind = "127.0.0.1:0"

[[upstream]]
name = "a"
endpoints = ["127.0.0.1:9001"]

[[upstream]]
name = "b"
endpoints = ["127.0.0.1:9002"]

[[route]]
host = "a.example.com"
upstream = "a"
rate = { per_second = 5.0, burst = 5 }

[[route]]
host = "b.example.com"
upstream = "b"

[[route]]
host = "c.example.com"
upstream = "b"
"#;

    fn build(text: &str, previous: Option<&Snapshot>) -> Snapshot {
        Snapshot::build_reusing(Config::parse(text).unwrap(), previous).unwrap()
    }

    fn shared(a: &Snapshot, b: &Snapshot) -> Vec<bool> {
        a.routes.all().iter().zip(b.routes.all()).map(|(x, y)| Arc::ptr_eq(x, y)).collect()
    }

    /// A reload keeps the compiled routes whose configuration, pools,
    /// file-wide policy and limits are unchanged (the same `Arc`), and
    /// compiles the others; what it serves equals a build from scratch.
    #[test]
    fn a_reload_reuses_the_routes_it_did_not_change() {
        let first = build(FILE, None);
        assert_eq!(shared(&first, &build(FILE, Some(&first))), [true, true, true]);
        // One route changed: only it is compiled again.
        let one =
            FILE.replace("host = \"c.example.com\"\nupstream = \"b\"", "host = \"c.example.com\"\nupstream = \"a\"");
        let next = build(&one, Some(&first));
        assert_eq!(shared(&first, &next), [true, true, false]);
        assert_eq!(next.routes.all()[2].upstream.config().name, "a");
        // A route added before the others: they are kept.
        let added = FILE.replace(
            "[[route]]\nhost = \"a.example.com\"",
            "[[route]]\nhost = \"new.example.com\"\nupstream = \"b\"\n\n[[route]]\nhost = \"a.example.com\"",
        );
        let next = build(&added, Some(&first));
        assert_eq!(next.routes.all().len(), 4);
        let kept: Vec<bool> =
            first.routes.all().iter().zip(&next.routes.all()[1..]).map(|(x, y)| Arc::ptr_eq(x, y)).collect();
        assert_eq!(kept, [true, true, true]);
        // A changed pool: the routes holding it are compiled again.
        let pool = FILE.replace("127.0.0.1:9002", "127.0.0.1:9003");
        assert_eq!(shared(&first, &build(&pool, Some(&first))), [true, false, false]);
        // The file-wide policy or body limit: every route.
        let policy = FILE.to_owned() + "\n[policy]\ndeny = [\"192.0.2.0/24\"]\n";
        assert_eq!(shared(&first, &build(&policy, Some(&first))), [false, false, false]);
        let limits = FILE.to_owned() + "\n[limits]\nmax_body_bytes = 1024\n";
        let limited = build(&limits, Some(&first));
        assert_eq!(shared(&first, &limited), [false, false, false]);
        assert_eq!(limited.routes.all()[0].max_body_bytes, 1024);
        // The reused rate-limited route keeps its limiter for the next reload.
        let again = build(FILE, Some(&build(FILE, Some(&first))));
        assert_eq!(shared(&first, &again), [true, true, true]);
        assert_eq!(again.limiters.len(), first.limiters.len());
    }
}
