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
#[derive(Debug)]
pub struct ListenerRuntime {
    /// PROXY protocol in.
    pub proxy: ProxyProtocolConfig,
    /// TLS, if terminated here.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// `http` or `tcp`.
    pub mode: ListenerMode,
    /// `tcp` mode: where bytes go.
    pub upstream: Option<Arc<Pool>>,
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
    pub pools: HashMap<String, Arc<Pool>>,
    /// Header rewriting rules.
    pub forward: ForwardRules,
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

/// What a limiter limits: its scope (a route name, or `[policy]` for the
/// shared one), its rate, where it is kept (local or global) and its IPv6
/// keying. Equal keys share buckets (or, global, the store client and the
/// cache of limited clients) across reloads.
fn limiter_key(scope: &str, rate: RateConfig, ipv6_prefix: u8) -> String {
    format!("{scope}\u{0}{}\u{0}{:?}\u{0}{:?}\u{0}{ipv6_prefix}", rate.per_second, rate.burst, rate.scope)
}

impl Snapshot {
    /// Validates and compiles `config`.
    pub fn build(config: Config) -> Result<Snapshot, Error> {
        Snapshot::build_reusing(config, None)
    }

    /// As [`Snapshot::build`], keeping the pools of `previous` whose
    /// upstream configuration did not change: their idle keep-alive
    /// connections, in-flight counts and ejections survive a reload (and
    /// every Kubernetes endpoint change that does not touch them).
    #[allow(clippy::too_many_lines)] // one pass over the config, in file order
    pub fn build_reusing(config: Config, previous: Option<&Snapshot>) -> Result<Snapshot, Error> {
        let mut errs = config.validate();
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
        let pools: HashMap<String, Arc<Pool>> = config
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
        let mut limiters = HashMap::new();
        let mut limiter = |scope: &str, rate: RateConfig| {
            let key = limiter_key(scope, rate, ipv6_prefix);
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
        let global_rate = config.policy.rate.map(|r| limiter("[policy]", r));
        let global_allow =
            (!config.policy.allow.is_empty()).then(|| cidrs(&config.policy.allow, "policy.allow", &mut errs));
        let mut routes = Vec::new();
        for (i, r) in config.routes.iter().enumerate() {
            let Some(upstream) = pools.get(&r.upstream) else {
                errs.push(format!("route[{i}].upstream: no [[upstream]] named `{}`", r.upstream));
                continue;
            };
            let name = route_name(r);
            let mut deny = config.policy.deny.clone();
            deny.extend(r.deny.iter().cloned());
            let policy = Policy {
                allow: match r.allow.as_deref() {
                    Some(a) => Some(cidrs(a, &format!("route[{i}].allow"), &mut errs)),
                    None => global_allow.clone(),
                },
                deny: cidrs(&deny, &format!("route[{i}].deny"), &mut errs),
                rate: match r.rate {
                    Some(rate) => Some(limiter(&name, rate)),
                    None => global_rate.clone(),
                },
            };
            routes.push(Route {
                name: name.into(),
                host: HostMatch::new(r.host.as_deref()),
                prefix: r.path_prefix.clone(),
                upstream: Arc::clone(upstream),
                policy: Arc::new(policy),
                max_body_bytes: r.max_body_bytes.unwrap_or(config.limits.max_body_bytes),
                https_redirect: r.https_redirect,
                gateway: r.gateway.clone(),
            });
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
            listeners.insert(l.name.clone(), ListenerRuntime { proxy, tls, mode: l.mode, upstream });
        }
        let (sources, strategy, forward) = match (sources, strategy, forward) {
            (Ok(s), Ok(st), Ok(f)) if errs.is_empty() => (s, st, f),
            (s, st, f) => {
                errs.extend([s.err(), st.err(), f.err()].into_iter().flatten());
                return Err(Error::Config(errs));
            }
        };
        let resolver = Resolver::new(trusted, sources, strategy);
        Ok(Snapshot { resolver, routes: Routes::new(routes), listeners, config, pools, forward, limiters, store })
    }
}
