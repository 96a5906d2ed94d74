//! A validated configuration compiled for serving: resolver, routes,
//! upstream pools, policies, TLS configs. Immutable; a reload builds a new
//! one and swaps it in whole, so a request always sees one consistent
//! configuration and a bad file never replaces a good one.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use realip_core::{Resolver, Sources, TrustedProxies};
use realip_tower::{ProxyProtocolConfig, ProxyProtocolMode};

use crate::config::{Config, ListenerMode, ProxyProtocolIn};
use crate::policy::{Policy, RateLimiter};
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
}

fn cidrs(list: &[String]) -> TrustedProxies {
    // Validated before: parse errors cannot happen here.
    TrustedProxies::parse(list).unwrap_or_default()
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
    pub fn build_reusing(config: Config, previous: Option<&Snapshot>) -> Result<Snapshot, Error> {
        let errors = config.validate();
        if !errors.is_empty() {
            return Err(Error::Config(errors));
        }
        let resolver = Resolver::new(
            cidrs(&config.client_ip.trusted),
            Sources::parse(&config.client_ip.sources).map_err(|e| Error::Config(vec![e.to_string()]))?,
            config.client_ip.strategy.parse().map_err(|e: realip_core::Error| Error::Config(vec![e.to_string()]))?,
        );
        let pools: HashMap<String, Arc<Pool>> = config
            .upstreams
            .iter()
            .map(|u| {
                let old = previous.and_then(|p| p.pools.get(&u.name)).filter(|p| p.config() == u);
                (u.name.clone(), old.map_or_else(|| Arc::new(Pool::new(u)), Arc::clone))
            })
            .collect();
        let ipv6_prefix = config.policy.ipv6_prefix.unwrap_or(64);
        let global_rate = config.policy.rate.map(|r| Arc::new(RateLimiter::new(r, ipv6_prefix)));
        let global_allow = (!config.policy.allow.is_empty()).then(|| cidrs(&config.policy.allow));
        let mut routes = Vec::new();
        for (i, r) in config.routes.iter().enumerate() {
            let Some(upstream) = pools.get(&r.upstream) else { continue };
            let mut deny = config.policy.deny.clone();
            deny.extend(r.deny.iter().cloned());
            let policy = Policy {
                allow: r.allow.as_deref().map(cidrs).or_else(|| global_allow.clone()),
                deny: cidrs(&deny),
                rate: match r.rate {
                    Some(rate) => Some(Arc::new(RateLimiter::new(rate, ipv6_prefix))),
                    None => global_rate.clone(),
                },
            };
            routes.push(Route {
                name: format!("route{i}").into(),
                host: HostMatch::new(r.host.as_deref()),
                prefix: r.path_prefix.clone(),
                upstream: Arc::clone(upstream),
                policy: Arc::new(policy),
                max_body_bytes: r.max_body_bytes.unwrap_or(config.limits.max_body_bytes),
                https_redirect: r.https_redirect,
            });
        }
        let mut listeners = HashMap::new();
        for l in &config.listeners {
            let tls = match &l.tls {
                Some(t) => Some(crate::tls::server_config(&l.name, t)?),
                None => None,
            };
            let mode = match l.proxy_protocol {
                ProxyProtocolIn::Off => ProxyProtocolMode::Off,
                ProxyProtocolIn::Optional => ProxyProtocolMode::Optional,
                ProxyProtocolIn::Required => ProxyProtocolMode::Required,
            };
            let proxy = ProxyProtocolConfig {
                mode,
                allowed_from: cidrs(&l.proxy_protocol_from),
                header_timeout: l.header_timeout.map_or(Duration::from_secs(5), |d| d.0),
            };
            let upstream = l.upstream.as_ref().and_then(|u| pools.get(u)).map(Arc::clone);
            listeners.insert(l.name.clone(), ListenerRuntime { proxy, tls, mode: l.mode, upstream });
        }
        Ok(Snapshot { resolver, routes: Routes(routes), listeners, config, pools })
    }
}
