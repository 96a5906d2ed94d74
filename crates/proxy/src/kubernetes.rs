//! The proxy's Kubernetes mode: the neutral route set
//! ([`realip_kube::routes::RouteSet`], Ingresses and Gateway API merged by
//! the watcher's consumer in [`crate::server`]) is turned into routes and
//! upstream pools, added to those of the configuration file, and the whole
//! is validated and swapped in like any reload — so a change never drops a
//! request in flight, and a bad result never replaces a good running
//! configuration. Upstream pools target ready pod IPs directly (no
//! ClusterIP hop).
//!
//! Gateway API specifics served here: filters and weighted backends
//! (compiled by [`crate::gateway`]), per-route IPv6 keying of rate limits,
//! and per-listener client-IP chains: a file `[[listener]]` serving
//! Gateway listeners (`gateway_ports`) whose `ClientIPPolicy` is the same
//! takes that policy's PROXY settings, trusted proxies, sources, strategy,
//! `failClosed` and forwarding headers instead of `[client_ip]` /
//! `[forward]` — only while it serves no Ingress or file route: those
//! are always resolved with the file's chain.
//!
//! Invariants:
//! - the conversion is typed end to end (no detour through JSON): every
//!   route of the set is either served or reported as an [`Unserved`]
//!   with the reason, never dropped in silence; a route whose access
//!   policy cannot be applied is reported and holds its place answering
//!   500 ([`fail_closed`]), so its requests never fall through to another
//!   rule or route without its allow list; a part of a route that is
//!   not applied (a header edit of a client-IP header) is reported as a
//!   [`Warning`];
//! - a route is never served with another client-IP chain than its
//!   listener's policy: when Gateway listeners with different chains (or
//!   one with a policy and one without) share a file listener, the file
//!   listener keeps the file's chain and the routes of the listeners
//!   whose policy it cannot apply are [`Unserved::ClientIpConflict`];
//! - a ClientIPPolicy never changes how the client of an Ingress or file
//!   route is resolved: while the proxy serves any (Ingress routes on
//!   every `[[listener]]` with `ingress = true`, file routes on every
//!   one), the file's chain counts as the oldest listener of each bind
//!   serving them, and a Gateway listener whose policy differs
//!   from it is [`Unserved::FileChainConflict`] on that bind (a tenant's
//!   own Gateway and policy must not make a forged X-Forwarded-For or
//!   PROXY header pass an Ingress allow list) — and only there: on a bind
//!   serving neither (`ingress = false`, no file route) it stays served
//!   with its policy;
//! - route names are the set's stable [`Route::name`]s, so metrics and
//!   logs keep their names when other objects come and go;
//! - a reload converts only the routes that changed ([`Conversions`]):
//!   a route that is the same shared value as at the previous reload
//!   reuses its conversion while the listeners, pools and file settings
//!   it was converted with are the same; the result is the same as a
//!   conversion from scratch.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use realip_kube::routes::{ClientIp, Filter, HeaderEdit, ListenerSpec, PathMatch, Protocol, Route, RouteSet};
use serde_json::json;

use crate::config::{
    CertConfig, ClientIpConfig, Config, ForwardConfig, GatewayMatch, ListenerChain, ProxyProtocolIn, RateConfig,
    RouteConfig, UpstreamConfig,
};
use crate::gateway::{PROTECTED_REQUEST, PROTECTED_RESPONSE};

/// Why a route of the set is not served by this proxy: reported in the
/// `kubernetes_route_unserved` event, never dropped silently.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Unserved {
    /// Attached to a Gateway listener no `[[listener]]` serves
    /// (`gateway_ports`), or one an HTTPS listener needs TLS for.
    GatewayListener(String),
    /// Its Gateway listener's ClientIPPolicy cannot be applied: the file
    /// listener serving it also serves a Gateway listener with another
    /// client-IP chain (one port is one stream of connections).
    ClientIpConflict {
        /// The Gateway listener of the route.
        listener: String,
        /// The file `[[listener]]` both are served on.
        file: String,
        /// A Gateway listener on it with a different chain.
        other: String,
    },
    /// Its Gateway listener's ClientIPPolicy differs from the file's
    /// chain, and the file listener serving it also serves Ingress or
    /// file routes, which are always resolved with the file's chain.
    FileChainConflict {
        /// The Gateway listener of the route.
        listener: String,
        /// The ClientIPPolicy (`NS/NAME`).
        policy: String,
        /// The file `[[listener]]` it would be served on.
        file: String,
    },
    /// A `scope: Global` rate limit while the file has no
    /// `[rate_limit_store]`: served locally it would be N× too loose. The
    /// route is not served, but holds its place answering 500, so its
    /// requests never fall through to another rule or route (one without
    /// its allow list).
    NoRateLimitStore,
    /// A second route for the same host and path: the first one serves.
    Shadowed(String),
    /// An Ingress route for a host an older HTTPRoute served by this proxy
    /// serves (naming it, or by wildcard or no hostname): the Gateway side
    /// owns that host, a newer Ingress cannot add paths to it.
    HostOwned {
        /// The host.
        host: String,
        /// [`Route::origin`] of the oldest HTTPRoute serving it.
        by: String,
    },
    /// An HTTPRoute route for a host an older Ingress names: the Ingress
    /// side owns that host, a newer HTTPRoute cannot take it.
    HostOwnedByIngress {
        /// The host.
        host: String,
        /// [`Route::origin`] of the oldest Ingress naming it.
        by: String,
    },
    /// An Ingress route while every `[[listener]]` has `ingress = false`.
    NoIngressListener,
    /// A route the proxy cannot serve as written (a path that is not in
    /// normalized form, a bad host, list or rate): left out alone, so it
    /// never fails the configuration of every other route.
    Invalid(String),
}

impl fmt::Display for Unserved {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Unserved::GatewayListener(why) => f.write_str(why),
            Unserved::ClientIpConflict { listener, file, other } => write!(
                f,
                "Gateway listener {listener} has a ClientIPPolicy, but [[listener]] `{file}` also serves {other}, \
                 whose client-IP chain differs: give them different gateway_ports binds, or the same policy"
            ),
            Unserved::FileChainConflict { listener, policy, file } => write!(
                f,
                "Gateway listener {listener} has ClientIPPolicy {policy}, whose client-IP chain differs from the \
                 file's [client_ip]/[forward], but [[listener]] `{file}` also serves Ingress or file routes, which \
                 are always resolved with the file's chain (a ClientIPPolicy never changes their clients): serve \
                 this Gateway listener from a proxy without Ingress or file routes, or use the file's chain"
            ),
            Unserved::NoRateLimitStore => {
                f.write_str("scope Global needs [rate_limit_store] in the file: its requests are answered 500")
            }
            Unserved::Shadowed(by) => write!(f, "same host and path as `{by}`, which serves"),
            Unserved::HostOwned { host, by } => write!(
                f,
                "host {host} owned by {} (older): a newer Ingress cannot add paths to a host an HTTPRoute serves \
                 on this proxy",
                by.strip_prefix("httproute/").map_or_else(|| by.clone(), |r| format!("HTTPRoute {r}"))
            ),
            Unserved::HostOwnedByIngress { host, by } => write!(
                f,
                "host {host} owned by {} (older): a newer HTTPRoute cannot take a host an Ingress serves on this \
                 proxy",
                by.strip_prefix("ingress/").map_or_else(|| by.clone(), |r| format!("Ingress {r}"))
            ),
            Unserved::NoIngressListener => {
                f.write_str("every [[listener]] has ingress = false: no bind serves Ingress routes")
            }
            Unserved::Invalid(why) => write!(f, "cannot be served as written: {why}"),
        }
    }
}

/// A route of the set that is not served, and why.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Problem {
    /// [`Route::name`].
    pub route: String,
    /// [`Route::origin`].
    pub origin: String,
    /// Why.
    pub reason: Unserved,
}

/// A route that is served, with a part of it left out, and why.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Warning {
    /// [`Route::name`].
    pub route: String,
    /// [`Route::origin`].
    pub origin: String,
    /// What was left out.
    pub message: String,
    /// Why it is not served on some of its binds, when that is what was
    /// left out (for status: the route is served, but not everywhere).
    pub narrowed: Option<Unserved>,
}

/// What older Ingresses' hosts take from a wildcard or host-less Gateway
/// route: its longer list of hosts left out (when longer), the (bind,
/// host) pairs left out on some binds only, and the warning.
type LeftOut = (Option<Arc<[String]>>, Vec<(String, String)>, Option<Arc<str>>);

/// The upstream pool of a Kubernetes backend.
fn upstream(b: &realip_kube::ingress::Backend) -> UpstreamConfig {
    let endpoints = b.endpoints.iter().map(ToString::to_string).collect();
    UpstreamConfig {
        tls: if b.https { crate::config::UpstreamTls::Insecure } else { crate::config::UpstreamTls::Off },
        from_kubernetes: true,
        ..UpstreamConfig::plain(format!("k8s:{}", b.name), endpoints)
    }
}

/// A chain without the name of the policy it came from: two policies
/// saying the same thing do not conflict.
fn chain_key(c: &ClientIp) -> ClientIp {
    ClientIp { policy: String::new(), ..c.clone() }
}

/// Which file listeners take a Gateway listener's ClientIPPolicy, and
/// on which file listeners a Gateway listener's policy cannot be applied
/// (per bind: a listener whose chain the file's overrules on a bind that
/// serves Ingress or file routes stays served, with its policy, on a bind
/// that serves neither, `ingress = false`).
#[derive(Debug, Default)]
struct Plan<'a> {
    /// File listener name → the chain it serves with.
    chains: HashMap<String, &'a ClientIp>,
    /// Gateway listener name → the file listeners on which its policy
    /// cannot be applied (file order), each with why: it is not served
    /// there, and still served on the others.
    conflicts: Conflicts,
}

/// Gateway listener name → `[[listener]]` name → why the Gateway
/// listener's ClientIPPolicy cannot be applied there (see [`Plan`]).
type Conflicts = HashMap<String, Vec<(String, Unserved)>>;

/// Records that Gateway listener `s` is not served on `[[listener]]` `file`
/// (the first reason found there stays).
fn add_conflict(out: &mut Conflicts, s: &str, file: &str, why: impl FnOnce() -> Unserved) {
    let on = out.entry(s.to_owned()).or_default();
    if !on.iter().any(|(f, _)| f == file) {
        on.push((file.to_owned(), why()));
    }
}

fn plan<'a>(set: &'a RouteSet, config: &Config) -> Plan<'a> {
    let mut out = Plan::default();
    // File routes are served on every `[[listener]]`, Ingress routes
    // (attached to no Gateway listener) on those with `ingress = true`.
    let ingress = set.routes.iter().any(|r| r.listeners.is_empty());
    for l in &config.listeners {
        let mut served: Vec<&ListenerSpec> = set
            .listeners
            .iter()
            .filter(|s| {
                l.gateway_ports.contains(&s.port) && admits(&l.gateways, &s.gateway) && !s.not_on.contains(&l.name)
            })
            .collect();
        if !config.routes.is_empty() || (ingress && l.ingress) {
            // The file's chain is the oldest listener of this bind: a
            // policy that would change it is not applied, and the routes
            // of its Gateway listener are not served (fail closed).
            let file = file_settings(l, config);
            served.retain(|s| {
                let Some(c) = &s.client_ip else { return true };
                let (mode, from, chain) = listener_chain(c, config);
                if (mode, from, ListenerChain { policy: String::new(), ..chain }) == file {
                    return true;
                }
                add_conflict(&mut out.conflicts, &s.name, &l.name, || Unserved::FileChainConflict {
                    listener: s.name.clone(),
                    policy: c.policy.clone(),
                    file: l.name.clone(),
                });
                false
            });
        }
        let mut distinct: Vec<(Option<ClientIp>, &ListenerSpec)> = Vec::new();
        for s in &served {
            let key = s.client_ip.as_ref().map(chain_key);
            if !distinct.iter().any(|(k, _)| *k == key) {
                distinct.push((key, s));
            }
        }
        match distinct.as_slice() {
            [(Some(_), s)] => {
                if let Some(c) = &s.client_ip {
                    out.chains.insert(l.name.clone(), c);
                }
            }
            [] | [(None, _)] => {}
            many => {
                for s in served.iter().filter(|s| s.client_ip.is_some()) {
                    let mine = s.client_ip.as_ref().map(chain_key);
                    let other = many.iter().find(|(k, _)| *k != mine).map(|(_, o)| o.name.clone()).unwrap_or_default();
                    add_conflict(&mut out.conflicts, &s.name, &l.name, || Unserved::ClientIpConflict {
                        listener: s.name.clone(),
                        file: l.name.clone(),
                        other,
                    });
                }
            }
        }
    }
    out
}

/// The `[[listener]]`s serving Gateway listener `spec` (as
/// [`file_listeners`] finds them): those with its port whose `gateways`
/// admit its Gateway, where no older listener takes its place
/// ([`ListenerSpec::not_on`]) and its ClientIPPolicy can be applied
/// (`conflicts`), with `tls.kubernetes` when it is HTTPS.
fn serving(spec: &ListenerSpec, file: &[crate::config::ListenerConfig], conflicts: &Conflicts) -> Vec<String> {
    let conflicted = conflicts.get(&spec.name);
    file.iter()
        .filter(|l| {
            l.gateway_ports.contains(&spec.port)
                && admits(&l.gateways, &spec.gateway)
                && !spec.not_on.contains(&l.name)
                && !conflicted.is_some_and(|on| on.iter().any(|(f, _)| *f == l.name))
                && (spec.protocol != Protocol::Https || l.tls.as_ref().is_some_and(|t| t.kubernetes))
        })
        .map(|l| l.name.clone())
        .collect()
}

/// Whether a `[[listener]]` with `gateways` admits Gateway `gateway`
/// (`NS/NAME`), as [`realip_kube::routes::Bind::admits`].
fn admits(gateways: &[String], gateway: &str) -> bool {
    realip_kube::routes::Bind { gateways: gateways.to_vec(), ..realip_kube::routes::Bind::default() }.admits(gateway)
}

/// A file listener's PROXY mode, PROXY senders and chain.
type ListenerSettings = (ProxyProtocolIn, Vec<String>, ListenerChain);

/// The settings file listener `l` has from the file alone, as a chain
/// (no policy name, not fail-closed), to compare with a policy's.
fn file_settings(l: &crate::config::ListenerConfig, file: &Config) -> ListenerSettings {
    let chain = ListenerChain {
        policy: String::new(),
        client_ip: file.client_ip.clone(),
        forward: file.forward.clone(),
        fail_closed: false,
    };
    (l.proxy_protocol, l.proxy_protocol_from.clone(), chain)
}

/// The file listener settings of a ClientIPPolicy chain.
fn listener_chain(c: &ClientIp, file: &Config) -> ListenerSettings {
    use realip_kube::routes::{ProxyMode, XffMode};
    let mode = match c.proxy_protocol {
        ProxyMode::Off => ProxyProtocolIn::Off,
        ProxyMode::Optional => ProxyProtocolIn::Optional,
        ProxyMode::Required => ProxyProtocolIn::Required,
    };
    // The policy's stripUntrusted adds to the file's list: the vendor
    // client-IP headers the file removes stay removed.
    let mut strip = file.forward.strip_untrusted.clone();
    for h in &c.forward.strip_untrusted {
        if !strip.iter().any(|s| s.eq_ignore_ascii_case(h)) {
            strip.push(h.clone());
        }
    }
    let chain = ListenerChain {
        policy: c.policy.clone(),
        client_ip: ClientIpConfig {
            trusted: c.trusted.clone(),
            sources: c.sources.clone(),
            strategy: c.strategy.clone(),
        },
        forward: ForwardConfig {
            x_forwarded_for: match c.forward.x_forwarded_for {
                XffMode::Append => crate::config::XffMode::Append,
                XffMode::Replace => crate::config::XffMode::Replace,
            },
            x_real_ip: c.forward.x_real_ip,
            forwarded: c.forward.forwarded,
            strip_untrusted: strip,
            ..file.forward.clone()
        },
        fail_closed: c.fail_closed,
    };
    (mode, c.proxy_protocol_from.clone(), chain)
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
    /// Gateway listeners whose policy cannot be applied, per file listener.
    conflicts: &'a Conflicts,
    /// The file listeners serving Ingress routes (`ingress = true`), or
    /// `None` when every one does.
    ingress: Option<Vec<String>>,
    /// Request headers no filter may edit, lower case: the fixed ones and
    /// the file's (a route's own listeners' ClientIPPolicy headers are
    /// added per route, [`Ctx::protected_for`]).
    protected: Vec<String>,
    /// Filters converted so far, by the address and length of the set's
    /// list (held by the set while this runs) and the headers protected
    /// beyond `protected`: see [`convert_filters`].
    filters: std::cell::RefCell<HashMap<FiltersKey, FilterConversion>>,
    /// Access policies' allow and deny lists converted so far, by the
    /// address of the set's `Access` (held by the set while this runs).
    lists: std::cell::RefCell<HashMap<usize, AccessLists>>,
    /// Hosts left out (`Route::except_hosts`) converted so far, by the
    /// address and length of the set's list (held by the set while this runs).
    excepted: std::cell::RefCell<HashMap<(usize, usize), Hosts>>,
}

/// A shared list of hosts.
type Hosts = Arc<[String]>;

/// `hosts` (a route's `except_hosts`) as the proxy matches them (lower
/// case, no trailing dot), once per list: the routes of every match of an
/// HTTPRoute on a listener share it.
fn excepted(hosts: &Arc<[String]>, ctx: &Ctx<'_>) -> Arc<[String]> {
    let key = (Arc::as_ptr(hosts).cast::<()>().addr(), hosts.len());
    let known = ctx.excepted.borrow().get(&key).cloned();
    known.unwrap_or_else(|| {
        let converted: Arc<[String]> = hosts.iter().map(|h| h.trim_end_matches('.').to_ascii_lowercase()).collect();
        ctx.excepted.borrow_mut().insert(key, Arc::clone(&converted));
        converted
    })
}

/// A rule's filter list (its address and length) and the headers
/// protected for it beyond [`Ctx::protected`].
type FiltersKey = (usize, usize, Vec<String>);

impl Ctx<'_> {
    /// The headers `r`'s filters may not edit beyond [`Ctx::protected`]:
    /// the `stripUntrusted` and `{header: NAME}` source headers of the
    /// ClientIPPolicies of the listeners `r` is attached to (sorted, lower
    /// case) — never another Gateway's, whose chain does not apply to `r`.
    fn protected_for(&self, r: &Route) -> Vec<String> {
        let mut extra = Vec::new();
        for c in self.gateway.iter().filter(|l| r.listeners.contains(&l.name)).filter_map(|l| l.client_ip.as_ref()) {
            let sources = c.sources.iter().filter_map(|s| s.strip_prefix("header:"));
            for h in c.forward.strip_untrusted.iter().map(String::as_str).chain(sources) {
                let h = realip_kube::routes::protected_form(h);
                if !self.protected.contains(&h) {
                    extra.push(h);
                }
            }
        }
        extra.sort_unstable();
        extra.dedup();
        extra
    }

    /// `r`'s filters as served ([`convert_filters`]), once per rule and
    /// set of listener policies: the routes an HTTPRoute rule expands to
    /// share its filters (see `Route::headers`).
    fn filters_of(&self, r: &Route) -> FilterConversion {
        let extra = if r.filters.is_empty() { Vec::new() } else { self.protected_for(r) };
        let key = (Arc::as_ptr(&r.filters).cast::<()>().addr(), r.filters.len(), extra);
        let known = self.filters.borrow().get(&key).cloned();
        known.unwrap_or_else(|| {
            let protected: Vec<String> = self.protected.iter().chain(&key.2).cloned().collect();
            let converted = convert_filters(&r.filters, &protected);
            self.filters.borrow_mut().insert(key, converted.clone());
            converted
        })
    }
}

/// An access policy's allow list (if any) and deny list.
type AccessLists = (Option<Arc<[String]>>, Arc<[String]>);

/// A route's filters as served, what of them is left out, and whether
/// they cannot be applied.
type FilterConversion = (Arc<[Filter]>, Vec<String>, bool);

/// The file listeners serving the Gateway listeners `names` (with the
/// Gateway port each one serves the route for), or why not. A Gateway
/// listener that cannot serve the route (no `[[listener]]` binds its port,
/// an HTTPS one without `tls.kubernetes`, a ClientIPPolicy that cannot be
/// applied there) is left out on that bind with a warning while other
/// binds or listeners serve it, and is the reason when none does: one
/// unbound listener of a Gateway never takes the route off the others.
fn file_listeners(names: &[String], ctx: &Ctx<'_>, warnings: &mut Vec<String>) -> Result<Vec<(String, u16)>, Unserved> {
    let mut out: Vec<(String, u16)> = Vec::new();
    let mut left_out: Vec<Unserved> = Vec::new();
    for n in names {
        let Some(spec) = ctx.gateway.iter().find(|l| &l.name == n) else {
            left_out.push(Unserved::GatewayListener(format!("Gateway listener {n} is not in the route set")));
            continue;
        };
        let https = spec.protocol == Protocol::Https;
        let mut any = false;
        for l in ctx.file.iter().filter(|l| l.gateway_ports.contains(&spec.port)) {
            any = true;
            if !admits(&l.gateways, &spec.gateway) {
                left_out.push(Unserved::GatewayListener(format!(
                    "[[listener]] `{}` serves only the listeners of Gateways {} (gateways), not Gateway {}'s {n}",
                    l.name,
                    l.gateways.join(", "),
                    spec.gateway
                )));
                continue;
            }
            if spec.not_on.contains(&l.name) {
                left_out.push(Unserved::GatewayListener(format!(
                    "Gateway listener {n} conflicts with an older Gateway listener on [[listener]] `{}` (see its \
                     Conflicted condition)",
                    l.name
                )));
                continue;
            }
            if let Some((_, c)) = ctx.conflicts.get(n).and_then(|on| on.iter().find(|(f, _)| *f == l.name)) {
                left_out.push(c.clone());
                continue;
            }
            if https && !l.tls.as_ref().is_some_and(|t| t.kubernetes) {
                left_out.push(Unserved::GatewayListener(format!(
                    "Gateway listener {n} is HTTPS but [[listener]] `{}` has no tls.kubernetes",
                    l.name
                )));
                continue;
            }
            if !out.iter().any(|(f, _)| *f == l.name) {
                out.push((l.name.clone(), spec.port));
            }
        }
        if !any {
            left_out.push(Unserved::GatewayListener(format!(
                "no [[listener]] has gateway_ports = [{}] for Gateway listener {n}",
                spec.port
            )));
        }
    }
    if out.is_empty() {
        if let Some(first) = left_out.into_iter().next() {
            return Err(first);
        }
        return Ok(out);
    }
    for why in left_out {
        warnings.push(format!("not served on that Gateway listener: {why}"));
    }
    Ok(out)
}

/// Whether `edit` names a header of `protected` (then [`unprotected`]
/// leaves some of it out).
fn touches(edit: &HeaderEdit, protected: &[String]) -> bool {
    let hit = |name: &str| protected.contains(&realip_kube::routes::protected_form(name));
    edit.set.iter().chain(&edit.add).any(|(n, _)| hit(n)) || edit.remove.iter().any(|n| hit(n))
}

/// `edit` without the headers in `protected`, and a warning per header
/// left out.
fn unprotected(edit: &HeaderEdit, protected: &[String], what: &str, warnings: &mut Vec<String>) -> HeaderEdit {
    let mut ok = |name: &str, verb: &str| {
        let lower = name.trim().to_ascii_lowercase();
        if protected.contains(&realip_kube::routes::protected_form(name)) {
            warnings.push(format!(
                "{what} {verb} `{lower}`: ignored, the proxy writes this header itself (client IP, forwarding or framing; `_` reads as `-` to many apps)"
            ));
            false
        } else {
            true
        }
    };
    HeaderEdit {
        set: edit.set.iter().filter(|(n, _)| ok(n, "sets")).cloned().collect(),
        add: edit.add.iter().filter(|(n, _)| ok(n, "adds")).cloned().collect(),
        remove: edit.remove.iter().filter(|n| ok(n, "removes")).cloned().collect(),
    }
}

/// The file listeners Ingress route `r` is served on when some have
/// `ingress = false` (empty: every one, or `r` is a Gateway route), or
/// why none serves it.
fn ingress_only(r: &Route, ctx: &Ctx<'_>) -> Result<Vec<String>, Unserved> {
    match &ctx.ingress {
        Some(on) if r.listeners.is_empty() && on.is_empty() => Err(Unserved::NoIngressListener),
        Some(on) if r.listeners.is_empty() => Ok(on.clone()),
        _ => Ok(Vec::new()),
    }
}

/// Why a route is not served, and the stand-in holding its place when it
/// has one ([`fail_closed`]; boxed: the error stays small).
type NotServed = (Unserved, Option<Box<RouteConfig>>);

/// `r` as a file route and what of it is left out, or why it cannot be
/// one — with, for a route whose access policy cannot be applied, the
/// stand-in that holds its place answering 500 ([`fail_closed`]). (Its
/// precedence is its position: routes keep the set's order.)
fn route(r: &Route, ctx: &Ctx<'_>) -> Result<(RouteConfig, Vec<String>), NotServed> {
    let (prefix, exact) = match &r.path {
        PathMatch::Prefix(p) => (p.clone(), None),
        PathMatch::Exact(p) => (p.clone(), Some(true)),
        PathMatch::SegmentPrefix(p) => (p.clone(), Some(false)),
    };
    let single = matches!(&*r.backends, [b] if b.backend.is_some() && b.weight > 0);
    let plain = exact.is_none()
        && r.method.is_none()
        && r.headers.is_empty()
        && r.query.is_empty()
        && r.filters.is_empty()
        && single;
    let mut listener_ports = Vec::new();
    let mut warnings = Vec::new();
    let only_listeners = ingress_only(r, ctx).map_err(|why| (why, None))?;
    let access = r.access.as_deref();
    let limits = access.into_iter().flat_map(|a| a.rate_limit.iter().chain(&a.gateway_rate_limit));
    let no_store = limits.clone().any(|rl| rl.global) && !ctx.store;
    let gateway = if r.listeners.is_empty() && plain {
        None
    } else {
        let listeners = if r.listeners.is_empty() {
            ctx.ingress.clone().unwrap_or_else(|| ctx.file.iter().map(|l| l.name.clone()).collect())
        } else {
            listener_ports = file_listeners(&r.listeners, ctx, &mut warnings).map_err(|why| (why, None))?;
            listener_ports.iter().map(|(l, _)| l.clone()).collect()
        };
        // Shared with the set's route (and the other routes of its rule).
        Some(GatewayMatch {
            listeners,
            exact: exact == Some(true),
            method: r.method.clone(),
            headers: Arc::clone(&r.headers),
            query: Arc::clone(&r.query),
            except_hosts: excepted(&r.except_hosts, ctx),
            excepted_on: Vec::new(),
        })
    };
    let (filters, left_out, broken) = ctx.filters_of(r);
    warnings.extend(left_out);
    let redirect = filters.iter().any(|f| matches!(f, Filter::Redirect { .. }));
    let k8s = |b: &String| format!("k8s:{b}");
    let (upstream, backends) = if broken {
        (String::new(), vec![(None, 1)])
    } else if single {
        (r.backends[0].backend.as_ref().map(k8s).unwrap_or_default(), Vec::new())
    } else if r.backends.is_empty() {
        // No backend: a redirect answers by itself; anything else is the
        // spec's 500.
        (String::new(), if redirect { Vec::new() } else { vec![(None, 1)] })
    } else {
        let first = r.backends.iter().find(|b| b.weight > 0).and_then(|b| b.backend.as_ref()).map(k8s);
        (first.unwrap_or_default(), r.backends.iter().map(|b| (b.backend.as_ref().map(k8s), b.weight)).collect())
    };
    // The lists once per policy (shared by the routes it covers).
    let (allow, deny) = match &r.access {
        None => (None, Arc::default()),
        Some(a) => {
            let at = Arc::as_ptr(a).addr();
            let known = ctx.lists.borrow().get(&at).cloned();
            known.unwrap_or_else(|| {
                let lists: AccessLists = (a.allow.as_deref().map(Arc::from), Arc::from(a.deny.as_slice()));
                ctx.lists.borrow_mut().insert(at, lists.clone());
                lists
            })
        }
    };
    let rate = |rl: &realip_kube::routes::RateLimit| RateConfig {
        per_second: rl.per_second,
        burst: Some(rl.burst),
        scope: if rl.global { crate::config::RateScope::Global } else { crate::config::RateScope::Local },
        // Ingress annotations have no IPv6 keying of their own: the file's.
        ipv6_prefix: (!r.listeners.is_empty() && rl.ipv6_prefix_length != ctx.ipv6_prefix)
            .then_some(rl.ipv6_prefix_length),
    };
    let also_rate = access.and_then(|a| a.gateway_rate_limit.as_ref()).map(|rl| (rate(rl), rl.scope.clone()));
    let rate = access.and_then(|a| a.rate_limit.as_ref()).map(rate);
    let config = RouteConfig {
        name: Some(r.name.clone()),
        host: r.host.clone(),
        path_prefix: prefix,
        upstream,
        allow,
        deny,
        rate,
        rate_scope: access.and_then(|a| a.rate_limit.as_ref()).map(|rl| rl.scope.clone()),
        also_rate,
        max_body_bytes: r.max_body,
        https_redirect: r.ssl_redirect,
        gateway,
        backends,
        filters,
        listener_ports,
        only_listeners,
    };
    if no_store {
        return Err((Unserved::NoRateLimitStore, Some(Box::new(fail_closed(config)))));
    }
    Ok((config, warnings))
}

/// `c`, a route whose access policy (or another part that decides who
/// may reach its backends) cannot be applied, as a stand-in that answers
/// 500 to every request it matches: left out, its requests would fall
/// through to another rule or route — one without its allow list. It
/// keeps its host, path, matches and listeners, and nothing else (it
/// names no upstream and applies no list, rate or filter: it lets nobody
/// through). An Ingress route stays one (no Gateway match): its weighted
/// backend that did not resolve is what answers 500.
fn fail_closed(c: RouteConfig) -> RouteConfig {
    RouteConfig {
        upstream: String::new(),
        backends: vec![(None, 1)],
        filters: Arc::default(),
        allow: None,
        deny: Arc::default(),
        rate: None,
        rate_scope: None,
        also_rate: None,
        max_body_bytes: None,
        https_redirect: false,
        ..c
    }
}

/// A route's filters as the proxy serves them: without the header edits
/// of `protected` (shared with the set's route when none is left out),
/// what was left out, and whether they cannot be applied (then empty: the
/// rule answers 500).
fn convert_filters(source: &Arc<[Filter]>, protected: &[String]) -> FilterConversion {
    let mut warnings = Vec::new();
    let protected_response: Vec<String> = PROTECTED_RESPONSE.iter().map(|&h| h.to_owned()).collect();
    let edited = source.iter().any(|f| match f {
        Filter::RequestHeaders(e) => touches(e, protected),
        Filter::ResponseHeaders(e) => touches(e, &protected_response),
        _ => false,
    });
    // Shared with the set's route unless a header edit is left out.
    let mut filters: Arc<[Filter]> = if edited {
        source
            .iter()
            .map(|f| match f {
                Filter::RequestHeaders(e) => {
                    Filter::RequestHeaders(unprotected(e, protected, "RequestHeaderModifier", &mut warnings))
                }
                Filter::ResponseHeaders(e) => Filter::ResponseHeaders(unprotected(
                    e,
                    &protected_response,
                    "ResponseHeaderModifier",
                    &mut warnings,
                )),
                other => other.clone(),
            })
            .collect()
    } else {
        Arc::clone(source)
    };
    // A filter the proxy cannot apply as written answers 500: left out,
    // its requests would fall through to another route (one without the
    // header edit or redirect the rule asked for).
    let broken = crate::gateway::Filters::compile(&filters).err();
    if let Some(why) = &broken {
        warnings.push(format!("{why}: the rule's requests are answered 500"));
        filters = Arc::default();
    }
    (filters, warnings, broken.is_some())
}

/// Request headers no filter may edit with this file: the fixed ones
/// ([`PROTECTED_REQUEST`]), the file's `strip_untrusted` and `header:NAME`
/// sources (a route's listeners' ClientIPPolicies add theirs for that
/// route only: [`Ctx::protected_for`]).
fn protected_headers(config: &Config) -> Vec<String> {
    let mut out: Vec<String> = PROTECTED_REQUEST.iter().map(|&h| h.to_owned()).collect();
    let mut add = |h: &str| {
        let h = realip_kube::routes::protected_form(h);
        if !out.contains(&h) {
            out.push(h);
        }
    };
    let header_source = |s: &String| s.strip_prefix("header:").map(str::to_owned);
    for h in &config.forward.strip_untrusted {
        add(h);
    }
    for h in config.client_ip.sources.iter().filter_map(header_source) {
        add(&h);
    }
    out
}

/// What [`routes`] made of a route set.
#[derive(Debug, Default)]
pub struct Converted {
    /// Routes served.
    pub routes: Vec<Arc<RouteConfig>>,
    /// What the per-route checks of `Config::validate` say of each of
    /// `routes` (same order), with the set's pools.
    pub errors: Vec<Vec<(String, String)>>,
    /// Upstream pools of the set's backends.
    pub upstreams: Vec<UpstreamConfig>,
    /// Routes not served, and why.
    pub problems: Vec<Problem>,
    /// Routes served with a part left out, and why.
    pub warnings: Vec<Warning>,
}

/// Routes and upstreams for `set` on the listeners of `config`, the
/// routes that are not served, and what of the served ones is left out.
pub fn routes(set: &RouteSet, config: &Config) -> Converted {
    routes_with(set, config, &mut Conversions::default())
}

/// Everything a route of a set is converted (and checked) with besides
/// itself: while it stays the same, one route converts to the same thing.
#[derive(Debug, PartialEq)]
struct ConvertKey {
    ipv6_prefix: u8,
    /// The Gateway listeners as a route's conversion reads them
    /// ([`converts_with`]).
    gateway: Vec<(ListenerSpec, Vec<String>)>,
    file: Vec<realip_kube::routes::Bind>,
    store: bool,
    conflicts: Vec<(String, Vec<(String, Unserved)>)>,
    protected: Vec<String>,
    pools: Vec<String>,
    allow_backslash: bool,
}

/// What of Gateway listener `l` a route's conversion reads: all of it but
/// its client-IP chain, of which only the headers it protects from a
/// route's filters ([`Ctx::protected_for`]). A ClientIPPolicy edit that
/// changes trusted proxies or PROXY settings (applied per bind, not per
/// route) then converts no route again.
fn converts_with(l: &ListenerSpec) -> (ListenerSpec, Vec<String>) {
    let mut protects: Vec<String> = l
        .client_ip
        .iter()
        .flat_map(|c| {
            let sources = c.sources.iter().filter_map(|s| s.strip_prefix("header:"));
            c.forward.strip_untrusted.iter().map(String::as_str).chain(sources).map(realip_kube::routes::protected_form)
        })
        .collect();
    protects.sort_unstable();
    protects.dedup();
    (ListenerSpec { client_ip: None, ..l.clone() }, protects)
}

/// A route converted: the file route and its warnings (or why it cannot
/// be one, and the stand-in answering 500 in its place when it must fail
/// closed: [`fail_closed`]), and what the per-route checks of
/// `Config::validate` say of the one served.
type Conversion =
    (Result<(Arc<RouteConfig>, Vec<String>), (Unserved, Option<Arc<RouteConfig>>)>, Vec<(String, String)>);

/// The conversions of the previous composition, kept by the reloader
/// ([`compose_with`]): a route of the new set that is the very value
/// (the same `Arc`) of the previous one is not converted and checked
/// again while what routes are converted with is unchanged. A
/// Kubernetes change of one route of 10,000 then converts one.
#[derive(Debug, Default)]
pub struct Conversions {
    key: Option<ConvertKey>,
    /// The previous set's routes in its order, each with its conversion.
    /// A new set is the previous one with a few routes added or removed
    /// (its order is the precedence order, which a change does not
    /// reshuffle), so each route is looked for a few places ahead of the
    /// last one found rather than in a map.
    last: Vec<Option<(Arc<Route>, Arc<Conversion>)>>,
}

/// How far ahead [`Conversions`] looks for a route (removed routes are
/// skipped over); one not found is converted again.
const LOOK_AHEAD: usize = 8;

/// [`routes`], reusing and refilling `memo`.
fn routes_with(set: &RouteSet, config: &Config, memo: &mut Conversions) -> Converted {
    let plan = plan(set, config);
    let ctx = Ctx {
        ipv6_prefix: config.policy.ipv6_prefix.unwrap_or(64),
        gateway: &set.listeners,
        file: &config.listeners,
        store: config.rate_limit_store.is_some(),
        conflicts: &plan.conflicts,
        ingress: ingress_listeners(config),
        protected: protected_headers(config),
        filters: std::cell::RefCell::default(),
        lists: std::cell::RefCell::default(),
        excepted: std::cell::RefCell::default(),
    };
    let mut out = Converted { upstreams: set.backends.iter().map(upstream).collect(), ..Converted::default() };
    let mut pools: Vec<String> = config.upstreams.iter().chain(&out.upstreams).map(|u| u.name.clone()).collect();
    pools.sort_unstable();
    pools.dedup();
    let mut conflicts: Vec<(String, Vec<(String, Unserved)>)> =
        plan.conflicts.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    conflicts.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    let key = ConvertKey {
        ipv6_prefix: ctx.ipv6_prefix,
        gateway: set.listeners.iter().map(converts_with).collect(),
        file: binds(config),
        store: ctx.store,
        conflicts,
        protected: ctx.protected.clone(),
        pools,
        allow_backslash: config.http.allow_backslash,
    };
    let mut kept = if memo.key.as_ref() == Some(&key) { std::mem::take(&mut memo.last) } else { Vec::new() };
    let mut next = 0;
    memo.last = Vec::with_capacity(set.routes.len());
    let pool_names: foldhash::HashSet<&str> = key.pools.iter().map(String::as_str).collect();
    let mut lists_checked = HashMap::new();
    for r in &set.routes {
        let ahead = next..kept.len().min(next + LOOK_AHEAD);
        let found = ahead.into_iter().find(|&k| kept[k].as_ref().is_some_and(|(old, _)| Arc::ptr_eq(old, r)));
        let (route, conversion) = if let Some((old, c)) = found.and_then(|k| {
            next = k + 1;
            kept[k].take()
        }) {
            (old, c)
        } else {
            let converted =
                route(r, &ctx).map(|(c, w)| (Arc::new(c), w)).map_err(|(why, c)| (why, c.map(|c| Arc::new(*c))));
            let errs = match &converted {
                Ok((c, _)) | Err((_, Some(c))) => {
                    crate::config::route_errors(c, &pool_names, config.http.allow_backslash, &mut lists_checked)
                }
                Err((_, None)) => Vec::new(),
            };
            (Arc::clone(r), Arc::new((converted, errs)))
        };
        match &conversion.0 {
            Ok((c, warnings)) => {
                out.routes.push(Arc::clone(c));
                out.errors.push(conversion.1.clone());
                out.warnings.extend(warnings.iter().map(|message| Warning {
                    route: r.name.clone(),
                    origin: r.origin.clone(),
                    message: message.clone(),
                    narrowed: None,
                }));
            }
            Err((reason, closed)) => {
                out.problems.push(Problem { route: r.name.clone(), origin: r.origin.clone(), reason: reason.clone() });
                // Not served, but its place is held: it answers 500.
                if let Some(c) = closed {
                    out.routes.push(Arc::clone(c));
                    out.errors.push(conversion.1.clone());
                }
            }
        }
        memo.last.push(Some((route, conversion)));
    }
    // HTTPRoutes on Gateway listeners no bind serves: not in the set's
    // routes, one problem per route and listener (see `RouteSet::pending`).
    for p in &set.pending {
        let reason = match file_listeners(std::slice::from_ref(&p.listener), &ctx, &mut Vec::new()) {
            Err(why) => why,
            Ok(_) => Unserved::GatewayListener(format!(
                "Gateway listener {} is not served yet: the controller has not seen the [[listener]] that serves it \
                 (a reload being applied)",
                p.listener
            )),
        };
        out.problems.push(Problem {
            route: format!("{} on {}", p.origin, p.listener),
            origin: p.origin.clone(),
            reason,
        });
    }
    drop(pool_names);
    memo.key = Some(key);
    out
}

/// The file listeners with `ingress = true`, or `None` when every one is.
fn ingress_listeners(config: &Config) -> Option<Vec<String>> {
    let on: Vec<String> = config.listeners.iter().filter(|l| l.ingress).map(|l| l.name.clone()).collect();
    (on.len() < config.listeners.len()).then_some(on)
}

/// The upstream pools to replace when `new` differs from `old` (the set
/// the running snapshot was composed from) only in the endpoints of its
/// backends — an EndpointSlice change: the pools of those backends, as
/// [`compose`] would write them. `None` when anything else differs
/// (routes, listeners, certificates, which backends there are): then the
/// whole composition runs.
pub fn endpoint_changes(old: &RouteSet, new: &RouteSet) -> Option<Vec<UpstreamConfig>> {
    let same_backends = old.backends.len() == new.backends.len()
        && old.backends.iter().zip(&new.backends).all(|(a, b)| a.name == b.name && a.https == b.https);
    if !same_backends
        || old.listeners != new.listeners
        || old.certs != new.certs
        || old.routes != new.routes
        || old.pending != new.pending
    {
        return None;
    }
    Some(
        old.backends
            .iter()
            .zip(&new.backends)
            .filter(|(a, b)| a.endpoints != b.endpoints)
            .map(|(_, b)| upstream(b))
            .collect(),
    )
}

/// The file's configuration plus the Kubernetes routes (file routes
/// first), the set's TLS Secrets on the listeners with `tls.kubernetes`
/// that serve them (see `add_certificates`) and
/// the ClientIPPolicy chains on the listeners serving them; every route
/// of the set that is not served, with the reason; and what of the served
/// ones is left out.
pub fn compose_checked(config: Config, set: Option<&RouteSet>) -> (Config, Vec<Problem>, Vec<Warning>) {
    compose_with(config, set, &mut Conversions::default())
}

/// [`compose_checked`], reusing what `memo` kept of the previous
/// composition (see [`Conversions`]).
#[allow(clippy::too_many_lines)] // one pass over the routes: each way a route can be left out, in order
pub fn compose_with(
    mut config: Config,
    set: Option<&RouteSet>,
    memo: &mut Conversions,
) -> (Config, Vec<Problem>, Vec<Warning>) {
    let Some(set) = set else { return (config, Vec::new(), Vec::new()) };
    let Converted { routes, errors, upstreams, mut problems, warnings } = routes_with(set, &config, memo);
    let Plan { chains, conflicts } = plan(set, &config);
    let chains: Vec<(String, ListenerSettings)> =
        chains.into_iter().map(|(l, c)| (l, listener_chain(c, &config))).collect();
    for (name, (mode, from, chain)) in chains {
        if let Some(l) = config.listeners.iter_mut().find(|l| l.name == name) {
            l.proxy_protocol = mode;
            l.proxy_protocol_from = from;
            l.chain = Some(chain);
        }
    }
    // Two routes for one host and path would fail validation and with
    // it every Kubernetes change: the first one (file routes, then the
    // set in order) serves, the later one is reported.
    let key = |r: &RouteConfig| {
        (r.host.as_deref().map(|h| h.trim_end_matches('.').to_ascii_lowercase()), r.path_prefix.clone())
    };
    let mut seen: HashMap<_, String> = config.routes.iter().map(|r| (key(r), crate::config::route_name(r))).collect();
    config.routes.reserve(routes.len());
    let origin_of =
        |name: &str| set.routes.iter().find(|x| x.name == name).map(|x| x.origin.clone()).unwrap_or_default();
    // Only when there are Ingress routes can a host be both sides', and
    // only on a bind serving both (`ingress = true`).
    let ingress_on = ingress_listeners(&config);
    let shared = |g: &GatewayMatch| ingress_on.as_ref().is_none_or(|on| g.listeners.iter().any(|l| on.contains(l)));
    // The binds serving Ingress routes, in file order.
    let ingress_binds: Vec<String> =
        ingress_on.clone().unwrap_or_else(|| config.listeners.iter().map(|l| l.name.clone()).collect());
    let owners = if routes.iter().any(|r| r.gateway.is_none()) {
        host_owners(&routes, &errors, set, &ingress_binds)
    } else {
        HostOwners::default()
    };
    let mut warnings = warnings;
    // Hosts older Ingresses keep, left out of wildcard and host-less
    // Gateway routes: per (host, hosts left out before, binds).
    let mut left_out_memo: HashMap<(Option<String>, usize, Vec<String>), LeftOut> = HashMap::new();
    let mut warned: std::collections::HashSet<(String, usize)> = std::collections::HashSet::new();
    let mut interned: std::collections::HashSet<Arc<[String]>> = std::collections::HashSet::new();
    let mut canonical: HashMap<usize, Arc<[String]>> = HashMap::new();
    // The checks `Config::validate` makes of one route, made per route (in
    // `routes_with`): one the proxy cannot serve is left out and reported,
    // never failing the whole configuration.
    for (mut r, errs) in routes.into_iter().zip(errors) {
        if !errs.is_empty() {
            let name = crate::config::route_name(&r);
            let why = errs.iter().map(|(k, m)| format!("{}: {m}", k.trim_start_matches('.'))).collect::<Vec<_>>();
            problems.push(Problem { origin: origin_of(&name), route: name, reason: Unserved::Invalid(why.join("; ")) });
            // One with an access policy still holds its place, answering
            // 500, when it can be placed (its host and path are fine):
            // left out, its requests would fall through to another rule
            // or route, one without its allow list.
            let placed = errs.iter().all(|(k, _)| k != ".path_prefix" && k != ".host");
            let guarded = r.allow.is_some() || !r.deny.is_empty() || r.rate.is_some() || r.also_rate.is_some();
            if !(placed && guarded) {
                continue;
            }
            r = Arc::new(fail_closed(Arc::unwrap_or_clone(r)));
        }
        if r.gateway.as_ref().is_some_and(|g| owners.to_ingress.is_empty() || !shared(g)) {
            config.routes.push(r);
            continue;
        }
        let name = crate::config::route_name(&r);
        let host = r.host.as_deref().map(|h| h.trim_end_matches('.').to_ascii_lowercase());
        if let Some(g) = r.gateway.as_ref() {
            let kept_by_ingress = host
                .as_deref()
                .and_then(|h| owners.to_ingress.get_key_value(h))
                .filter(|(_, (_, on))| g.listeners.iter().any(|l| on.contains(l)));
            if let Some((host, (by, on))) = kept_by_ingress {
                let reason = Unserved::HostOwnedByIngress { host: host.clone(), by: by.clone() };
                match off_ingress_binds(&mut r, reason, on) {
                    Ok((message, narrowed)) => {
                        let origin = origin_of(&name);
                        warnings.push(Warning { route: name, origin, message, narrowed: Some(narrowed) });
                        config.routes.push(r);
                    }
                    Err(reason) => problems.push(Problem { origin: origin_of(&name), route: name, reason }),
                }
                continue;
            }
            // A wildcard or host-less route leaves out the hosts older
            // Ingresses name (as a more specific listener's, see
            // `GatewayMatch::excludes`).
            // Each only on the binds of the route where the Ingress keeps
            // it; everywhere when those are all the route's binds.
            // Computed once per (host, hosts already left out, binds),
            // which the routes of one HTTPRoute rule and of many HTTPRoutes
            // share: the longer list is then one `Arc` for all of them (so
            // a request tests it once, `route::Exclusion`), and a route
            // origin gets one warning for all its hosts (review 28 F1/F2:
            // a list and a warning per route and host cost 427 MB and
            // 616,448 log lines for 2,048 routes and 301 Ingress hosts).
            // Lists equal in content are one (each HTTPRoute has its own
            // `Arc`: review 28 round 3), looked up once per `Arc`.
            let canon = canonical.entry(Arc::as_ptr(&g.except_hosts).addr()).or_insert_with(|| {
                if let Some(k) = interned.get(&*g.except_hosts) {
                    Arc::clone(k)
                } else {
                    interned.insert(Arc::clone(&g.except_hosts));
                    Arc::clone(&g.except_hosts)
                }
            });
            let key = (host.clone(), Arc::as_ptr(canon).addr(), g.listeners.clone());
            let left = left_out_memo.entry(key).or_insert_with(|| {
                let mut hosts = Vec::new();
                let mut only_on = Vec::new();
                let mut said = Vec::new();
                for (h, (by, on)) in owners
                    .to_ingress
                    .iter()
                    .filter(|(h, _)| host.is_none() || host.as_deref().is_some_and(|p| wildcard_covers(p, h)))
                    .filter(|(h, _)| !g.excludes(h))
                {
                    let (gone, kept): (Vec<String>, Vec<String>) =
                        g.listeners.iter().cloned().partition(|l| on.contains(l));
                    if gone.is_empty() {
                        continue;
                    }
                    if said.len() < 5 {
                        let place = if kept.is_empty() {
                            String::new()
                        } else {
                            format!(
                                " on [[listener]] {} (the older Ingress keeps it there); still served on [[listener]] {}",
                                gone.join(", "),
                                kept.join(", ")
                            )
                        };
                        let by = by.strip_prefix("ingress/").map_or_else(|| by.clone(), |r| format!("Ingress {r}"));
                        said.push(format!("host {h} left out{place}: the older {by} names it"));
                    }
                    if kept.is_empty() {
                        hosts.push(h.clone());
                    } else {
                        only_on.extend(gone.into_iter().map(|l| (l, h.clone())));
                    }
                }
                let count = hosts.len() + only_on.len();
                let message = (count > 0).then(|| {
                    let more = if count > said.len() {
                        format!("; and {} more hosts older Ingresses name", count - said.len())
                    } else {
                        String::new()
                    };
                    Arc::<str>::from(format!("{}{more}", said.join("; ")))
                });
                let except: Option<Arc<[String]>> =
                    (!hosts.is_empty()).then(|| g.except_hosts.iter().cloned().chain(hosts).collect());
                (except, only_on, message)
            });
            let (except, only_on) = (left.0.clone(), left.1.clone());
            // One warning per route origin and message (the message is one `Arc` per memo entry).
            if let Some(message) = &left.2 {
                let origin = origin_of(&name);
                if warned.insert((origin.clone(), Arc::as_ptr(message).addr())) {
                    warnings.push(Warning {
                        route: name.clone(),
                        origin,
                        message: message.to_string(),
                        narrowed: None,
                    });
                }
            }
            if except.is_some() || !only_on.is_empty() {
                if let Some(g) = Arc::make_mut(&mut r).gateway.as_mut() {
                    if let Some(except) = except {
                        g.except_hosts = except;
                    }
                    g.excepted_on.extend(only_on);
                }
            }
            config.routes.push(r);
            continue;
        }
        if let Some((host, on)) = host.as_deref().and_then(|h| owners.to_gateway.get_key_value(h)) {
            let by = on.first().map(|(_, by)| by.clone()).unwrap_or_default();
            let reason = Unserved::HostOwned { host: host.clone(), by };
            match off_gateway_binds(&mut r, reason, on, &ingress_binds) {
                Ok((message, narrowed)) => {
                    let origin = origin_of(&name);
                    warnings.push(Warning { route: name.clone(), origin, message, narrowed: Some(narrowed) });
                }
                Err(reason) => {
                    problems.push(Problem { origin: origin_of(&name), route: name, reason });
                    continue;
                }
            }
        }
        match seen.entry(key(&r)) {
            std::collections::hash_map::Entry::Occupied(first) => {
                problems.push(Problem {
                    origin: origin_of(&name),
                    route: name,
                    reason: Unserved::Shadowed(first.get().clone()),
                });
            }
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(name);
                config.routes.push(r);
            }
        }
    }
    config.upstreams.extend(upstreams);
    add_certificates(&mut config, set, &conflicts);
    (config, problems, warnings)
}

/// Gives each `[[listener]]` with `tls.kubernetes` the certificates of
/// what it serves, never another's (listener isolation): the Ingresses'
/// TLS Secrets where it serves Ingresses (`ingress = true`), and the
/// `certificateRefs` of the HTTPS Gateway listeners on its `gateway_ports`
/// of the Gateways its `gateways` admits (but not of one that conflicts
/// there, [`ListenerSpec::not_on`], nor of one whose ClientIPPolicy cannot
/// be applied there, `conflicts`: neither is served there), by listener
/// hostname (see [`crate::tls`] for how a server name picks among them).
fn add_certificates(config: &mut Config, set: &RouteSet, conflicts: &Conflicts) {
    let by_name: HashMap<&str, &realip_kube::ingress::Cert> = set.certs.iter().map(|c| (c.name.as_str(), c)).collect();
    let secret = |c: &realip_kube::ingress::Cert| CertConfig {
        cert: format!("secret {}", c.name).into(),
        key: format!("secret {}", c.name).into(),
        pem: Some(std::sync::Arc::new((c.cert_pem.clone(), c.key_pem.clone()))),
        hosts: c.hosts.clone(),
    };
    for l in &mut config.listeners {
        let Some(tls) = l.tls.as_mut().filter(|t| t.kubernetes) else { continue };
        if l.ingress {
            tls.certificates.extend(set.certs.iter().filter(|c| c.ingress).map(secret));
        }
        // (Not a listener that conflicts here with an older one: that one
        // serves its hosts on this bind, so must its certificates.)
        let served = set.listeners.iter().filter(|s| {
            s.protocol == Protocol::Https
                && l.gateway_ports.contains(&s.port)
                && admits(&l.gateways, &s.gateway)
                && !s.not_on.contains(&l.name)
                && !conflicts.get(&s.name).is_some_and(|on| on.iter().any(|(f, _)| *f == l.name))
        });
        let ingress_hosts = ingress_served(&config.routes, set, &l.name);
        for s in served {
            let hostname = s.hostname.as_deref().map(|h| h.trim_end_matches('.').to_ascii_lowercase());
            let certs = s.certs.iter().filter_map(|n| by_name.get(n.as_str()).copied()).map(secret).collect();
            // Whichever side is the wildcard (review 16 N1w: an Ingress
            // `*.example.com` serves shop.example.com).
            let ingress_hosts: Vec<String> = hostname
                .as_deref()
                .map(|p| {
                    ingress_hosts
                        .iter()
                        .filter(|h| *h == p || wildcard_covers(p, h) || wildcard_covers(h, p))
                        .cloned()
                        .collect()
                })
                .unwrap_or_default();
            // A listener with a hostname keeps the names its routes serve
            // (only needed where Ingresses name some of its names).
            let routed = if hostname.is_none() || !ingress_hosts.is_empty() {
                routed_hosts(&config.routes, set, &l.name, &s.name)
            } else {
                Vec::new()
            };
            tls.gateway.push(crate::config::HostCerts { hostname, certs, routed, ingress_hosts });
        }
    }
}

/// The names (exact or `*.` wildcard, lower case, no trailing dot) the
/// Ingresses serve on file listener `bind` (after composition: a host an
/// older Gateway route keeps is not among them): their rules' hosts, and
/// for an Ingress with a host-less rule (it serves every name no other
/// route takes) the hosts its namespace's Ingress TLS Secrets are for
/// (their Ingresses' rule hosts and `tls.hosts`; review 16 N1w).
fn ingress_served(routes: &[Arc<RouteConfig>], set: &RouteSet, bind: &str) -> Vec<String> {
    ingress_served_by(routes, set, bind).into_iter().map(|(h, _)| h).collect()
}

/// [`ingress_served`], each name with the Ingress (`NS/NAME`) serving it
/// (the first in route order).
fn ingress_served_by<'a>(routes: &'a [Arc<RouteConfig>], set: &RouteSet, bind: &str) -> Vec<(String, &'a str)> {
    let mut out: Vec<(String, &str)> = Vec::new();
    let mut hostless: Vec<(&str, &str)> = Vec::new();
    for r in routes {
        let Some(name) = r.name.as_deref().filter(|n| r.gateway.is_none() && n.starts_with("ingress/")) else {
            continue;
        };
        if !(r.only_listeners.is_empty() || r.only_listeners.iter().any(|l| l == bind)) {
            continue;
        }
        // `ingress/NS/NAME/HOST/PATH` (`*` for any host).
        let rest = name.strip_prefix("ingress/").unwrap_or(name);
        let mut parts = rest.splitn(3, '/');
        let (ns, ingress) = (parts.next().unwrap_or_default(), parts.next().unwrap_or_default());
        let by = rest.get(..ns.len() + 1 + ingress.len()).unwrap_or(rest);
        match r.host.as_deref() {
            Some(h) => out.push((h.trim_end_matches('.').to_ascii_lowercase(), by)),
            None => hostless.push((ns, by)),
        }
    }
    for c in set.certs.iter().filter(|c| c.ingress) {
        let Some((ns, _)) = c.name.split_once('/') else { continue };
        if let Some((_, by)) = hostless.iter().find(|(n, _)| *n == ns) {
            out.extend(c.hosts.iter().map(|h| (h.trim_end_matches('.').to_ascii_lowercase(), *by)));
        }
    }
    // Stable: the first Ingress naming a host is kept.
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out.dedup_by(|a, b| a.0 == b.0);
    out
}

/// The hosts (exact or `*.` wildcard, lower case, no trailing dot) that
/// the served Gateway routes of listener `gateway_listener` serve on file
/// listener `bind`, each with the hosts within it they
/// leave out there (a more specific listener's, an older Ingress's). Such a
/// listener's certificate is its routes' hosts': an Ingress TLS Secret
/// naming one of them must not be offered for it (review 14 F6).
fn routed_hosts(
    routes: &[Arc<RouteConfig>],
    set: &RouteSet,
    bind: &str,
    gateway_listener: &str,
) -> Vec<(String, Vec<String>)> {
    let mut by_name: HashMap<&str, &Route> = HashMap::new();
    for r in set.routes.iter().filter(|r| r.listeners.iter().any(|l| l == gateway_listener)) {
        by_name.insert(r.name.as_str(), r);
    }
    let mut out: Vec<(String, Vec<String>)> = Vec::new();
    if by_name.is_empty() {
        return out;
    }
    for r in routes {
        let (Some(name), Some(host), Some(g)) = (r.name.as_deref(), r.host.as_deref(), r.gateway.as_ref()) else {
            continue;
        };
        if !by_name.contains_key(name) || !g.listeners.iter().any(|l| l == bind) {
            continue;
        }
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        if host.starts_with('*') {
            let mut except = g.except_hosts.to_vec();
            except.extend(g.excepted_on.iter().filter(|(l, _)| l == bind).map(|(_, h)| h.clone()));
            if let Some((_, have)) = out.iter_mut().find(|(p, _)| *p == host) {
                // Left out by one route, served by another: served.
                have.retain(|h| except.contains(h));
            } else {
                out.push((host, except));
            }
        } else if !g.excludes_on(bind, &host) {
            match out.iter_mut().find(|(p, _)| *p == host) {
                Some((_, have)) => have.clear(),
                None => out.push((host, Vec::new())),
            }
        }
    }
    out
}

/// Gateway route `r`, whose host an older Ingress keeps (`reason`) on the
/// binds `on` (those serving Ingresses where no older Gateway route serves
/// the host), kept only on its other binds: the Ingress owns the host
/// only where it is served and older. The warning's message and `reason`
/// when some are left, else `reason` (the route is not served).
fn off_ingress_binds(
    r: &mut Arc<RouteConfig>,
    reason: Unserved,
    on: &[String],
) -> Result<(String, Unserved), Unserved> {
    let Some(g) = r.gateway.as_ref() else { return Err(reason) };
    let (gone, kept): (Vec<String>, Vec<String>) = g.listeners.iter().cloned().partition(|l| on.contains(l));
    if kept.is_empty() {
        return Err(reason);
    }
    let m = Arc::make_mut(r);
    m.listener_ports.retain(|(l, _)| kept.contains(l));
    if let Some(g) = m.gateway.as_mut() {
        g.listeners.clone_from(&kept);
    }
    let message = format!(
        "not served on [[listener]] {} (the older Ingress keeps the host there): {reason}; still served on \
         [[listener]] {}",
        gone.join(", "),
        kept.join(", ")
    );
    Ok((message, reason))
}

/// Ingress route `r`, whose host an older HTTPRoute keeps (`reason`) on
/// the binds of `on` (bind, HTTPRoute origin), kept only on its other
/// binds (of `ingress_binds`, those serving Ingresses): the Gateway side
/// owns the host only where one of its routes serves it. The warning's
/// message and `reason` when some are left, else `reason` (the route is
/// not served).
fn off_gateway_binds(
    r: &mut Arc<RouteConfig>,
    reason: Unserved,
    on: &[(String, String)],
    ingress_binds: &[String],
) -> Result<(String, Unserved), Unserved> {
    let binds = if r.only_listeners.is_empty() { ingress_binds } else { r.only_listeners.as_slice() };
    let (gone, kept): (Vec<String>, Vec<String>) = binds.iter().cloned().partition(|l| on.iter().any(|(b, _)| b == l));
    if kept.is_empty() {
        return Err(reason);
    }
    let m = Arc::make_mut(r);
    m.only_listeners.clone_from(&kept);
    if let Some(g) = m.gateway.as_mut() {
        g.listeners.clone_from(&kept);
    }
    let message = format!(
        "not served on [[listener]] {} (the older HTTPRoute serves the host there): {reason}; still served on \
         [[listener]] {}",
        gone.join(", "),
        kept.join(", ")
    );
    Ok((message, reason))
}

/// Who keeps each exact host an Ingress route names when a Gateway route
/// serves it too (naming it, or by a wildcard or no hostname that does not
/// leave it out): ingress-nginx never shared a host with a Gateway, and
/// here either side could otherwise take paths of the other's host from
/// under its allow or deny list (a request one side's rules do not match
/// would fall to the other). The older object keeps the host
/// (`creationTimestamp`, then `namespace/name`, from
/// [`RouteSet::created`]; Gateway side on a full tie) — per bind: on each
/// `[[listener]]` serving Ingresses, the oldest Ingress naming the host
/// against the oldest Gateway route served there for it (a bind where no
/// Gateway route serves the host is the Ingress's, whatever the Gateway
/// side does elsewhere). File routes are the operator's and not part of
/// this.
#[derive(Debug, Default)]
struct HostOwners {
    /// Hosts the Gateway side keeps on some binds → (bind, origin of its
    /// oldest HTTPRoute there), in file order: Ingress routes naming them
    /// are not served on those binds.
    to_gateway: HashMap<String, Vec<(String, String)>>,
    /// Hosts the Ingress side keeps on some binds where Gateway routes
    /// serve them → (origin of its oldest Ingress, those binds): Gateway
    /// routes naming them are not served there, wildcard and host-less
    /// ones leave them out there.
    to_ingress: std::collections::BTreeMap<String, (String, Vec<String>)>,
}

/// `pattern` (`*.` wildcard) covers exact `host`.
fn wildcard_covers(pattern: &str, host: &str) -> bool {
    pattern.strip_prefix('*').is_some_and(|suffix| host.len() > suffix.len() && host.ends_with(suffix))
}

/// The oldest object seen so far: ((creation time, `namespace/name`),
/// origin).
type Oldest = Option<((String, String), String)>;

/// The oldest Gateway route serving a host, per bind.
type PerBind<'a> = HashMap<&'a str, Oldest>;

/// Settles the hosts both sides serve; see [`HostOwners`]. `routes` are
/// the set's converted routes and `errors` their per-route errors (a route
/// with errors is not served, so it claims nothing); `ingress_binds` the
/// `[[listener]]`s serving Ingress routes, in file order.
fn host_owners(
    routes: &[Arc<RouteConfig>],
    errors: &[Vec<(String, String)>],
    set: &RouteSet,
    ingress_binds: &[String],
) -> HostOwners {
    let origins: HashMap<&str, &Route> = set.routes.iter().map(|r| (r.name.as_str(), &**r)).collect();
    // The oldest object so far by (creation time, `namespace/name`).
    let oldest = |slot: &mut Oldest, r: Option<&Route>| {
        let Some(r) = r else { return };
        let a = (r.created.clone(), r.origin.split_once('/').map_or(r.origin.as_str(), |(_, rest)| rest).to_owned());
        if slot.as_ref().is_none_or(|(b, _)| a < *b) {
            *slot = Some((a, r.origin.clone()));
        }
    };
    let mut ingress: HashMap<String, Oldest> = HashMap::new();
    // Gateway routes naming an Ingress host: host → bind → oldest.
    let mut exact: HashMap<String, PerBind<'_>> = HashMap::new();
    // Wildcard or host-less Gateway routes, by (host, hosts left out) →
    // bind → oldest.
    let mut wild: HashMap<(Option<String>, Arc<[String]>), PerBind<'_>> = HashMap::new();
    let origin = |r: &RouteConfig| origins.get(crate::config::route_name(r).as_str()).copied();
    let served = || routes.iter().zip(errors).filter(|(_, e)| e.is_empty()).map(|(r, _)| r);
    let host = |r: &RouteConfig| r.host.as_deref().map(|h| h.trim_end_matches('.').to_ascii_lowercase());
    for r in served().filter(|r| r.gateway.is_none()) {
        if let Some(h) = host(r).filter(|h| !h.starts_with('*')) {
            oldest(ingress.entry(h).or_default(), origin(r));
        }
    }
    if ingress.is_empty() {
        return HostOwners::default();
    }
    // Gateway routes: only those that can serve an Ingress host are named
    // (thousands of exact-host routes usually name none), on the binds
    // they share with Ingresses.
    for r in served() {
        let Some(g) = r.gateway.as_ref() else { continue };
        let on = || ingress_binds.iter().map(String::as_str).filter(|b| g.listeners.iter().any(|l| l == b));
        // (A Gateway route on binds without Ingress routes shares no host.)
        if on().next().is_none() {
            continue;
        }
        let slots = match host(r) {
            Some(h) if !h.starts_with('*') => {
                if !ingress.contains_key(&h) {
                    continue;
                }
                exact.entry(h).or_default()
            }
            h => wild.entry((h, g.except_hosts.clone())).or_default(),
        };
        for b in on() {
            oldest(slots.entry(b).or_default(), origin(r));
        }
    }
    let mut out = HostOwners::default();
    for (host, ing) in ingress {
        let Some((ing_age, ing_origin)) = ing else { continue };
        let here = exact.get(&host);
        // As `GatewayMatch::excludes`: a more specific listener's host.
        let covering: Vec<&PerBind<'_>> = wild
            .iter()
            .filter(|((pattern, except), _)| {
                pattern.as_deref().is_none_or(|p| wildcard_covers(p, &host))
                    && !except.iter().any(|e| e == &host || wildcard_covers(e, &host))
            })
            .map(|(_, on)| on)
            .collect();
        let mut to_gateway = Vec::new();
        let mut to_ingress = Vec::new();
        for b in ingress_binds {
            let mut gw: Oldest = here.and_then(|on| on.get(b.as_str())).cloned().flatten();
            for w in covering.iter().filter_map(|on| on.get(b.as_str())).flatten() {
                if gw.as_ref().is_none_or(|(a, _)| w.0 < *a) {
                    gw = Some(w.clone());
                }
            }
            let Some((gw_age, gw_origin)) = gw else { continue };
            if gw_age <= ing_age {
                to_gateway.push((b.clone(), gw_origin));
            } else {
                to_ingress.push(b.clone());
            }
        }
        if !to_gateway.is_empty() {
            out.to_gateway.insert(host.clone(), to_gateway);
        }
        if !to_ingress.is_empty() {
            out.to_ingress.insert(host, (ing_origin, to_ingress));
        }
    }
    out
}

/// The file's `[[listener]]`s as the controller needs them (which
/// Gateway listener ports each serves, whether it has `tls.kubernetes`).
pub fn binds(config: &Config) -> Vec<realip_kube::routes::Bind> {
    config
        .listeners
        .iter()
        .map(|l| realip_kube::routes::Bind {
            name: l.name.clone(),
            gateway_ports: l.gateway_ports.clone(),
            tls_kubernetes: l.tls.as_ref().is_some_and(|t| t.kubernetes),
            ingress: l.ingress,
            gateways: l.gateways.clone(),
        })
        .collect()
}

/// What has been logged about the routes of the set: a reload logs only
/// what changed since (a route that became unserved or shadowed, or
/// whose reason or warning changed; one served again), not the same
/// state on every reload — with thousands of routes and a reload per
/// EndpointSlice change, repeating it buried everything else in the log.
#[derive(Debug, Default)]
pub struct Reported {
    problems: std::collections::HashSet<Problem>,
    warnings: std::collections::HashSet<Warning>,
    feedback: realip_kube::routes::Feedback,
}

impl Reported {
    /// The events for the change from the last state to `problems` /
    /// `warnings` (which becomes the state): `kubernetes_route_shadowed`
    /// or `kubernetes_route_unserved` for each new problem,
    /// `kubernetes_route_warning` for each new warning, and
    /// `kubernetes_route_served` for each route no longer unserved.
    pub fn update(&mut self, problems: Vec<Problem>, warnings: Vec<Warning>) -> Vec<serde_json::Value> {
        let mut events = Vec::new();
        for p in problems.iter().filter(|p| !self.problems.contains(*p)) {
            events.push(match &p.reason {
                Unserved::Shadowed(by) => json!({
                    "event": "kubernetes_route_shadowed", "route": p.route, "served_by": by,
                }),
                reason => json!({
                    "event": "kubernetes_route_unserved", "route": p.route, "origin": p.origin,
                    "reason": reason.to_string(),
                }),
            });
        }
        let now: std::collections::HashSet<&str> = problems.iter().map(|p| p.route.as_str()).collect();
        let mut recovered: Vec<&Problem> = self.problems.iter().filter(|p| !now.contains(p.route.as_str())).collect();
        recovered.sort_by(|a, b| a.route.cmp(&b.route));
        recovered.dedup_by(|a, b| a.route == b.route);
        for p in recovered {
            events.push(json!({"event": "kubernetes_route_served", "route": p.route, "origin": p.origin}));
        }
        for w in warnings.iter().filter(|w| !self.warnings.contains(*w)) {
            events.push(json!({
                "event": "kubernetes_route_warning", "route": w.route, "origin": w.origin, "warning": w.message,
            }));
        }
        self.problems = problems.into_iter().collect();
        self.warnings = warnings.into_iter().collect();
        events
    }

    /// What the last composition did not serve of the Gateway side, for
    /// the controller's status ([`feedback`]).
    pub fn feedback(&self) -> &realip_kube::routes::Feedback {
        &self.feedback
    }
}

/// What the controller cannot know of what this proxy serves, for status:
/// the Gateway listeners whose ClientIPPolicy the file's chain overrules
/// on a bind that also serves Ingress or file routes (`conflicts`, from
/// [`plan`]); per HTTPRoute and parent, its routes left unserved for any
/// reason ([`Unserved`]: the file's chain, a host an older Ingress keeps,
/// a route the proxy cannot serve as written, a `scope: Global` rate
/// limit without `[rate_limit_store]`…); and the ClientAccessPolicies
/// whose Global rate limit left routes unserved, per Gateway. (Causes the
/// controller finds itself — a port no bind serves, a bind that does not
/// admit the Gateway — are already in its status; repeating them changes
/// nothing there, since only conditions still `True` are turned.)
/// Cheap when nothing is lost: the route set is walked only for the
/// HTTPRoutes that lost something.
fn feedback(
    set: &RouteSet,
    config: &Config,
    conflicts: &Conflicts,
    problems: &[Problem],
    warnings: &[Warning],
) -> realip_kube::routes::Feedback {
    use realip_kube::routes::{RouteLoss, UnservedListener};
    let file = &config.listeners;
    let mut fb = realip_kube::routes::Feedback {
        hostnames: lost_hostnames(set, config, conflicts),
        ..realip_kube::routes::Feedback::default()
    };
    for (listener, on) in conflicts {
        let chain: Vec<&Unserved> =
            on.iter().map(|(_, why)| why).filter(|why| matches!(why, Unserved::FileChainConflict { .. })).collect();
        let Some(Unserved::FileChainConflict { policy, .. }) = chain.first() else { continue };
        let served_on =
            set.listeners.iter().find(|s| s.name == *listener).map(|s| serving(s, file, conflicts)).unwrap_or_default();
        let message = chain.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ");
        fb.listeners.insert(listener.clone(), UnservedListener { policy: Some(policy.clone()), message, served_on });
    }
    let lost: HashMap<&str, &Unserved> =
        problems.iter().filter(|p| p.origin.starts_with("httproute/")).map(|p| (p.route.as_str(), &p.reason)).collect();
    let narrowed: HashMap<&str, (&Unserved, &str)> = warnings
        .iter()
        .filter(|w| w.origin.starts_with("httproute/"))
        .filter_map(|w| Some((w.route.as_str(), (w.narrowed.as_ref()?, w.message.as_str()))))
        .collect();
    if lost.is_empty() && narrowed.is_empty() {
        return fb;
    }
    let origins: std::collections::HashSet<&str> = problems
        .iter()
        .filter(|p| lost.contains_key(p.route.as_str()))
        .map(|p| p.origin.as_str())
        .chain(warnings.iter().filter(|w| narrowed.contains_key(w.route.as_str())).map(|w| w.origin.as_str()))
        .collect();
    for r in set.routes.iter().filter(|r| origins.contains(r.origin.as_str())) {
        let Some(route) = r.origin.strip_prefix("httproute/") else { continue };
        // Each parent once, however its listeners interleave.
        let parents: std::collections::BTreeSet<&str> =
            r.listeners.iter().filter_map(|l| l.rsplit_once('/').map(|(p, _)| p)).collect();
        let why = lost.get(r.name.as_str());
        for parent in parents {
            let e: &mut RouteLoss =
                fb.routes.entry(route.to_owned()).or_default().entry(parent.to_owned()).or_default();
            if let Some(why) = why {
                e.unserved += 1;
                e.host_owned |= matches!(why, Unserved::HostOwnedByIngress { .. });
                e.invalid |= matches!(why, Unserved::Invalid(_));
                let why = why.to_string();
                if !e.reasons.contains(&why) {
                    e.reasons.push(why);
                }
            } else {
                e.served += 1;
                if let Some((why, message)) = narrowed.get(r.name.as_str()) {
                    e.narrowed += 1;
                    e.host_owned |= matches!(why, Unserved::HostOwnedByIngress { .. });
                    let why = (*message).to_owned();
                    if !e.reasons.contains(&why) {
                        e.reasons.push(why);
                    }
                }
            }
        }
        // A Global rate limit the proxy cannot apply: its policy says so
        // on the route's Gateways.
        if matches!(why, Some(Unserved::NoRateLimitStore)) {
            let limits = r.access.iter().flat_map(|a| a.rate_limit.iter().chain(&a.gateway_rate_limit));
            let gateways: std::collections::BTreeSet<&str> = r
                .listeners
                .iter()
                .filter_map(|l| set.listeners.iter().find(|s| s.name == *l))
                .map(|s| s.gateway.as_str())
                .collect();
            for rl in limits.filter(|rl| rl.global) {
                let Some(policy) = rl.scope.strip_prefix("clientaccesspolicy:") else { continue };
                for g in &gateways {
                    fb.access_policies.entry(policy.to_owned()).or_default().entry((*g).to_owned()).or_insert_with(
                        || {
                            format!(
                                "{}: the routes of HTTPRoute {route} it covers on Gateway {g} are not served",
                                Unserved::NoRateLimitStore
                            )
                        },
                    );
                }
            }
        }
    }
    fb.routes.retain(|_, parents| {
        parents.retain(|_, e| e.unserved > 0 || e.narrowed > 0);
        !parents.is_empty()
    });
    fb
}

/// The HTTPS Gateway listeners with a hostname and certificates whose
/// whole hostname an Ingress serves on every bind serving them (the
/// composed `config`), none of their routes serving a name of it there:
/// their certificates are never offered for it ([`crate::tls`], review 16
/// L9) → why, naming the Ingress.
fn lost_hostnames(
    set: &RouteSet,
    config: &Config,
    conflicts: &Conflicts,
) -> std::collections::BTreeMap<String, String> {
    let mut out = std::collections::BTreeMap::new();
    let candidates: Vec<(&ListenerSpec, String)> = set
        .listeners
        .iter()
        .filter(|s| s.protocol == Protocol::Https && !s.certs.is_empty())
        .filter_map(|s| Some((s, s.hostname.as_deref()?.trim_end_matches('.').to_ascii_lowercase())))
        .collect();
    if candidates.is_empty() || !config.routes.iter().any(|r| r.gateway.is_none()) {
        return out;
    }
    // Per bind: Ingress name → Ingress, looked up by the listener hostname
    // and the wildcards that would cover it (`*` + each `.`-suffix), not by
    // a walk of every name per listener.
    let mut by_bind: HashMap<String, HashMap<String, &str>> = HashMap::new();
    'listener: for (s, p) in candidates {
        let binds = serving(s, &config.listeners, conflicts);
        if binds.is_empty() {
            continue;
        }
        let base = p.strip_prefix("*.").unwrap_or(&p);
        let mut who = Vec::new();
        for b in &binds {
            let served = by_bind
                .entry(b.clone())
                .or_insert_with(|| ingress_served_by(&config.routes, set, b).into_iter().collect());
            let covering = std::iter::once(p.clone())
                .chain(base.match_indices('.').map(|(i, _)| format!("*{}", &base[i..])))
                .find_map(|e| served.get(&e).copied());
            let Some(by) = covering else {
                continue 'listener;
            };
            debug_assert!(served.keys().any(|e| *e == p || wildcard_covers(e, &p)));
            if !routed_hosts(&config.routes, set, b, &s.name).is_empty() {
                continue 'listener;
            }
            if !who.contains(&by) {
                who.push(by);
            }
        }
        let message = format!(
            "hostname {p}: Ingress {} serves it on [[listener]] {} (and no route of this listener there), so this \
             listener's certificates are not offered for it",
            who.join(", Ingress "),
            binds.iter().map(|b| format!("`{b}`")).collect::<Vec<_>>().join(", ")
        );
        out.insert(s.name.clone(), message);
    }
    out
}

/// [`compose_checked`], logging what changed since `reported` (see
/// [`Reported::update`]).
pub fn compose(config: Config, set: Option<&RouteSet>, reported: &mut Reported) -> Config {
    compose_logged(config, set, reported, &mut Conversions::default())
}

/// [`compose`], reusing what `memo` kept of the previous composition.
pub fn compose_logged(
    config: Config,
    set: Option<&RouteSet>,
    reported: &mut Reported,
    memo: &mut Conversions,
) -> Config {
    let conflicts = set.map(|s| plan(s, &config).conflicts).unwrap_or_default();
    let (config, problems, warnings) = compose_with(config, set, memo);
    reported.feedback = set.map(|s| feedback(s, &config, &conflicts, &problems, &warnings)).unwrap_or_default();
    for e in reported.update(problems, warnings) {
        crate::log::event(&e);
    }
    config
}

#[cfg(test)]
mod tests {
    use super::*;
    use realip_kube::ingress::{Backend, Desired, Route as IngressRoute};
    use realip_kube::routes::{
        Access, ClientIp, Filter, Forward, HeaderEdit, ProxyMode, RateLimit, ValueMatch, WeightedBackend,
    };

    /// An Ingress route with no list, limit or redirect: tests set what they need.
    fn open_route(
        ingress: impl Into<String>,
        host: Option<String>,
        path: impl Into<String>,
        backend: impl Into<String>,
    ) -> IngressRoute {
        IngressRoute {
            ingress: ingress.into(),
            host,
            path: path.into(),
            backend: backend.into(),
            allow: None,
            deny: vec![],
            rps: None,
            burst: None,
            rate_global: false,
            max_body: None,
            ssl_redirect: false,
        }
    }

    /// The conversions kept by the reloader change nothing but speed: a
    /// composition reusing them equals one from scratch through changes
    /// of a route, of the backends (a route's pool gone) and of the file;
    /// a route that is the same value as before is not converted again.
    #[test]
    fn a_composition_reusing_conversions_equals_one_from_scratch() {
        let ingress = |path: &str, backend: &str| IngressRoute {
            allow: Some(vec!["203.0.113.0/24".into()]),
            ..open_route("web/site", Some("app.example.com".into()), path, backend)
        };
        let backend = |name: &str| Backend { name: name.into(), endpoints: vec![], https: false };
        let d = Desired {
            routes: vec![ingress("/a", "web/a:80"), ingress("/b", "web/b:80"), ingress("/c", "web/a:80")],
            backends: vec![backend("web/a:80"), backend("web/b:80")],
            ..Desired::default()
        };
        let file = |extra: &str| -> Config {
            toml::from_str(&format!("[[listener]]\nname = \"web\"\nbind = \"127.0.0.1:0\"\n{extra}")).unwrap()
        };
        let mut memo = Conversions::default();
        let mut check = |set: &RouteSet, config: Config| {
            let (a, pa, wa) = compose_with(config.clone(), Some(set), &mut memo);
            let (b, pb, wb) = compose_checked(config, Some(set));
            assert_eq!((a.routes, a.upstreams, pa, wa), (b.routes, b.upstreams, pb, wb));
            memo.last.iter().flatten().map(|(r, c)| (r.name.clone(), Arc::clone(c))).collect::<HashMap<_, _>>()
        };
        let reused = |before: &HashMap<String, Arc<Conversion>>,
                      after: &HashMap<String, Arc<Conversion>>,
                      name: &str| { Arc::ptr_eq(&before[name], &after[name]) };
        let mut set = RouteSet::from_ingress(&d);
        let c = "ingress/web/site/app.example.com/c";
        let first = check(&set, file(""));
        let again = check(&set, file(""));
        assert!(reused(&first, &again, c));
        // One route changed: only it is converted again.
        let mut b = Route::clone(&set.routes[1]);
        b.max_body = Some(10);
        set.routes[1] = Arc::new(b);
        let changed = check(&set, file(""));
        assert!(reused(&again, &changed, c));
        assert!(!reused(&again, &changed, "ingress/web/site/app.example.com/b"));
        // A pool gone: every route is checked again (b's is now unserved).
        set.backends.retain(|x| x.name != "web/b:80");
        let pools = check(&set, file(""));
        assert!(!reused(&changed, &pools, c));
        // The file changed what routes are converted with.
        let filed = check(&set, file("[rate_limit_store]\nredis = \"redis://127.0.0.1:1/0\"\n"));
        assert!(!reused(&pools, &filed, c));
    }

    #[test]
    fn desired_routes_become_validated_config() {
        let d = Desired {
            routes: vec![IngressRoute {
                allow: Some(vec!["203.0.113.0/24".into()]),
                rps: Some(10.0),
                burst: Some(50.0),
                max_body: Some(1024),
                ssl_redirect: true,
                ..open_route("web/site", Some("app.example.com".into()), "/api", "web/app:80")
            }],
            backends: vec![Backend { name: "web/app:80".into(), endpoints: vec![], https: true }],
            ..Desired::default()
        };
        let base: Config = toml::from_str("[[listener]]\nname = \"web\"\nbind = \"127.0.0.1:0\"\n").unwrap();
        let c = compose_checked(base, Some(&RouteSet::from_ingress(&d))).0;
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
        let (c, problems, _) = compose_checked(base, Some(&RouteSet::from_ingress(&twice)));
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
            routes: vec![IngressRoute { rps: Some(5.0), ..open_route("web/site", None, "/", "web/app:80") }],
            backends: vec![Backend { name: "web/app:80".into(), endpoints: vec![], https: false }],
            ..Desired::default()
        };
        let ok = Arc::unwrap_or_clone(RouteSet::from_ingress(&d).routes.remove(0));
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
                // The set has Ingress routes: the file's chain keeps the
                // bind (ClientIpConflict between Gateway listeners alone:
                // `a_listener_takes_the_policy_of_the_gateway_listeners_it_serves`).
                variant("policy", &|r| r.listeners = vec!["gateway/web/gw/pp".into()]),
                Unserved::FileChainConflict {
                    listener: "gateway/web/gw/pp".into(),
                    policy: "web/pp".into(),
                    file: "web".into(),
                },
            ),
            (
                variant("global", &|r| {
                    if let Some(rl) = r.access.as_mut().and_then(|a| Arc::make_mut(a).rate_limit.as_mut()) {
                        rl.global = true;
                    }
                }),
                Unserved::NoRateLimitStore,
            ),
            (
                // The Gateway's limit, counted with the route's own.
                variant("global-gateway", &|r| {
                    if let Some(a) = r.access.as_mut().map(Arc::make_mut) {
                        a.gateway_rate_limit = a.rate_limit.clone().map(|rl| realip_kube::routes::RateLimit {
                            global: true,
                            scope: "clientaccesspolicy:web/gw".into(),
                            ..rl
                        });
                    }
                }),
                Unserved::NoRateLimitStore,
            ),
        ];
        // Served since the proxy applies them: no backend or an
        // unresolved one (500), weights, per-route IPv6 keying, filters.
        let now_served = [
            variant("none", &|r| r.backends = Arc::default()),
            variant("unresolved", &|r| r.backends = Arc::new([WeightedBackend { backend: None, weight: 1 }])),
            variant("weights", &|r| {
                let more = [WeightedBackend { backend: Some("web/app:80".into()), weight: 3 }];
                r.backends = r.backends.iter().cloned().chain(more).collect();
            }),
            variant("ipv6", &|r| {
                r.listeners = vec!["gateway/web/gw/http".into()];
                if let Some(rl) = r.access.as_mut().and_then(|a| Arc::make_mut(a).rate_limit.as_mut()) {
                    rl.ipv6_prefix_length = 56;
                }
            }),
            variant("header-edit", &|r| {
                r.filters = Arc::new([Filter::RequestHeaders(HeaderEdit {
                    set: vec![("x-a".into(), "1".into()), ("X-Forwarded-For".into(), "203.0.113.9".into())],
                    ..HeaderEdit::default()
                })]);
            }),
            // A filter the proxy cannot apply: answered 500, never left
            // out (its requests would go to another route).
            variant("filter", &|r| {
                let edit = HeaderEdit { set: vec![("x-a".into(), "a\r\nb".into())], ..HeaderEdit::default() };
                r.filters = Arc::new([Filter::RequestHeaders(edit)]);
            }),
        ];
        let spec = |name: &str, port: u16, client_ip: Option<ClientIp>| ListenerSpec {
            name: format!("gateway/web/gw/{name}"),
            gateway: "web/gw".into(),
            port,
            protocol: Protocol::Http,
            hostname: None,
            certs: vec![],
            client_ip,
            not_on: Vec::new(),
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
            r.headers = Arc::new([ValueMatch { name: "x-env".into(), value: "canary".into() }]);
        });
        let set = RouteSet {
            listeners: vec![spec("http", 80, None), spec("alt", 8080, None), spec("pp", 80, Some(chain))],
            routes: [ok.clone(), served_gw.clone()]
                .into_iter()
                .chain(now_served.iter().cloned())
                .chain(cases.iter().map(|(r, _)| r.clone()))
                .map(Arc::new)
                .collect(),
            backends: d.backends.clone(),
            ..RouteSet::default()
        };
        let config: Config = toml::from_str(
            "[[listener]]\nname = \"web\"\nbind = \"127.0.0.1:0\"\ngateway_ports = [80]\n\n[[listener]]\nname = \"admin-ish\"\nbind = \"127.0.0.1:0\"\n",
        )
        .unwrap();
        let Converted { routes: served, problems, warnings, .. } = routes(&set, &config);
        // A Global limit without a store is not served, but holds its
        // place answering 500 (review 19 HIGH-1): the set's order, after
        // the served ones.
        let closed = cases.iter().filter(|(_, u)| *u == Unserved::NoRateLimitStore).count();
        assert_eq!(closed, 2);
        assert_eq!(served.len(), 2 + now_served.len() + closed);
        for r in &served[2 + now_served.len()..] {
            assert!(r.upstream.is_empty() && r.backends == [(None, 1)] && r.rate.is_none(), "{r:?}");
            assert!(r.also_rate.is_none() && r.allow.is_none(), "{r:?}");
        }
        assert_eq!(served[0].name.as_deref(), Some(ok.name.as_str()));
        assert_eq!(
            served[0].rate,
            Some(RateConfig {
                per_second: 5.0,
                burst: Some(5.0),
                scope: crate::config::RateScope::Local,
                ipv6_prefix: None
            })
        );
        assert!(served[0].gateway.is_none(), "Ingress routes keep the file's matching");
        assert_eq!(served[1].name.as_deref(), Some(served_gw.name.as_str()));
        let want = GatewayMatch {
            listeners: vec!["web".into()],
            exact: false,
            method: Some("GET".into()),
            headers: Arc::new([ValueMatch { name: "x-env".into(), value: "canary".into() }]),
            query: Arc::default(),
            except_hosts: Arc::default(),
            excepted_on: vec![],
        };
        assert_eq!(served[1].gateway, Some(want));
        let by_name =
            |n: &str| served.iter().find(|r| r.name.as_deref() == Some(&format!("httproute/web/r/{n}"))).unwrap();
        assert_eq!((by_name("none").upstream.as_str(), by_name("none").backends.clone()), ("", vec![(None, 1)]));
        assert_eq!(by_name("unresolved").backends, vec![(None, 1)]);
        assert_eq!(
            by_name("weights").backends,
            vec![(Some("k8s:web/app:80".into()), 1), (Some("k8s:web/app:80".into()), 3)]
        );
        assert_eq!(by_name("ipv6").rate.and_then(|r| r.ipv6_prefix), Some(56));
        assert_eq!(by_name("ipv6").listener_ports, vec![("web".to_owned(), 80)]);
        // The client-IP header edit is left out and reported; the other stays.
        let Filter::RequestHeaders(e) = &by_name("header-edit").filters[0] else { panic!() };
        assert_eq!(e.set, vec![("x-a".to_owned(), "1".to_owned())]);
        assert_eq!(warnings.len(), 2, "{warnings:?}");
        assert!(warnings[0].message.contains("x-forwarded-for"), "{warnings:?}");
        let broken = by_name("filter");
        assert!(broken.filters.is_empty() && broken.upstream.is_empty(), "{broken:?}");
        assert_eq!(broken.backends, vec![(None, 1)], "500 for every request");
        assert!(broken.gateway.is_some(), "matched like any Gateway route");
        assert_eq!(warnings[1].route, "httproute/web/r/filter");
        assert!(warnings[1].message.contains("set[0].value") && warnings[1].message.contains("500"), "{warnings:?}");
        let got: Vec<(String, Unserved)> = problems.into_iter().map(|p| (p.route, p.reason)).collect();
        let want: Vec<(String, Unserved)> = cases.into_iter().map(|(r, u)| (r.name, u)).collect();
        assert_eq!(got, want);
    }

    /// A route the proxy cannot serve as written (a path not in normalized
    /// form, a bad allow list from an annotation) is reported alone, and
    /// left out (the path) or answering 500 (the list): the composed configuration stays valid, so every other
    /// route keeps being served and updated.
    #[test]
    fn a_route_that_cannot_be_served_never_fails_the_others() {
        let ingress = |name: &str, path: &str, allow: Option<Vec<String>>| IngressRoute {
            allow,
            ..open_route(format!("web/{name}"), None, path, "web/app:80")
        };
        let d = Desired {
            routes: vec![ingress("good", "/", None), ingress("bad-allow", "/b", Some(vec!["10.0.0.0/33".into()]))],
            backends: vec![Backend { name: "web/app:80".into(), endpoints: vec![], https: false }],
            ..Desired::default()
        };
        let mut set = RouteSet::from_ingress(&d);
        let template = Route::clone(&set.routes[0]);
        for (i, path) in ["/%7Ex", "/a%00b", "/caf%c3%a9", "/a/%2e%2e/b", "/ok"].into_iter().enumerate() {
            let mut r = template.clone();
            r.name = format!("httproute/web/r/{i}/0");
            r.origin = "httproute/web/r".into();
            r.listeners = vec!["gateway/web/gw/http".into()];
            r.path = PathMatch::SegmentPrefix(path.into());
            set.routes.push(Arc::new(r));
        }
        set.listeners = vec![ListenerSpec {
            name: "gateway/web/gw/http".into(),
            gateway: "web/gw".into(),
            port: 80,
            protocol: Protocol::Http,
            hostname: None,
            certs: vec![],
            client_ip: None,
            not_on: Vec::new(),
        }];
        let base: Config =
            toml::from_str("[[listener]]\nname = \"web\"\nbind = \"127.0.0.1:0\"\ngateway_ports = [80]\n").unwrap();
        let (c, problems, _) = compose_checked(base, Some(&set));
        assert!(c.validate().is_empty(), "{:?}", c.validate());
        let served: Vec<&str> = c.routes.iter().filter_map(|r| r.name.as_deref()).collect();
        // The bad allow list holds its place answering 500 (review 19
        // HIGH-1: left out, its requests would fall to another route).
        assert_eq!(served, ["ingress/web/good/*/", "ingress/web/bad-allow/*/b", "httproute/web/r/4/0"]);
        assert!(c.routes[1].allow.is_none() && c.routes[1].backends == [(None, 1)], "{:?}", c.routes[1]);
        let got: Vec<(&str, &Unserved)> = problems.iter().map(|p| (p.route.as_str(), &p.reason)).collect();
        assert_eq!(got.len(), 5, "{got:?}");
        for (route, reason) in &got {
            let Unserved::Invalid(why) = reason else { panic!("{route}: {reason:?}") };
            assert!(why.contains("path_prefix") || why.contains("allow"), "{route}: {why}");
        }
        assert!(problems.iter().any(|p| p.origin == "httproute/web/r"), "{problems:?}");
        assert!(got[1].1.to_string().contains("`/%7Ex`"), "{:?}", got[1]);
    }

    /// A RequestHeaderModifier may not set the request id the access log
    /// and the upstream share.
    #[test]
    fn a_filter_cannot_forge_the_request_id() {
        let protected: Vec<String> = PROTECTED_REQUEST.iter().map(|&h| h.to_owned()).collect();
        let edit = HeaderEdit {
            set: vec![("X-Request-Id".into(), "forged".into()), ("x-a".into(), "1".into())],
            ..HeaderEdit::default()
        };
        let mut warnings = Vec::new();
        let kept = unprotected(&edit, &protected, "RequestHeaderModifier", &mut warnings);
        assert_eq!(kept.set, vec![("x-a".to_owned(), "1".to_owned())]);
        assert!(warnings.len() == 1 && warnings[0].contains("x-request-id"), "{warnings:?}");
    }

    /// A route attached to a whole Gateway is served on the Gateway
    /// listeners a `[[listener]]` binds, with a warning for the others: one
    /// unbound listener never takes it off every listener.
    #[test]
    fn a_route_is_served_on_the_bound_listeners_of_its_gateway() {
        let d = Desired {
            routes: vec![],
            backends: vec![Backend { name: "web/app:80".into(), endpoints: vec![], https: false }],
            ..Desired::default()
        };
        let mut set = RouteSet::from_ingress(&d);
        let spec = |name: &str, port: u16, protocol: Protocol| ListenerSpec {
            name: format!("gateway/web/gw/{name}"),
            gateway: "web/gw".into(),
            port,
            protocol,
            hostname: None,
            certs: vec![],
            client_ip: None,
            not_on: Vec::new(),
        };
        set.listeners = vec![
            spec("http", 80, Protocol::Http),
            spec("alt", 8080, Protocol::Http),
            spec("tls", 443, Protocol::Https),
        ];
        set.routes = vec![Arc::new(Route {
            name: "httproute/web/r/0/0".into(),
            origin: "httproute/web/r".into(),
            created: "~".into(),
            listeners: set.listeners.iter().map(|l| l.name.clone()).collect(),
            host: None,
            path: PathMatch::SegmentPrefix("/".into()),
            method: None,
            headers: Arc::default(),
            query: Arc::default(),
            filters: Arc::default(),
            backends: vec![WeightedBackend { backend: Some("web/app:80".into()), weight: 1 }].into(),
            access: None,
            max_body: None,
            ssl_redirect: false,
            except_hosts: Arc::default(),
        })];
        let base: Config =
            toml::from_str("[[listener]]\nname = \"web\"\nbind = \"127.0.0.1:0\"\ngateway_ports = [80, 443]\n")
                .unwrap();
        let (c, problems, warnings) = compose_checked(base, Some(&set));
        assert!(problems.is_empty(), "{problems:?}");
        assert!(c.validate().is_empty(), "{:?}", c.validate());
        assert_eq!(c.routes[0].listener_ports, vec![("web".to_owned(), 80)]);
        let messages: Vec<&str> = warnings.iter().map(|w| w.message.as_str()).collect();
        assert_eq!(messages.len(), 2, "{messages:?}");
        assert!(messages.iter().any(|m| m.contains("gateway/web/gw/alt")), "{messages:?}");
        assert!(
            messages.iter().any(|m| m.contains("gateway/web/gw/tls") && m.contains("tls.kubernetes")),
            "{messages:?}"
        );
    }

    /// Review 14 F4: the routes one HTTPRoute rule expands to keep sharing
    /// its match data, filters and access lists through the conversion (one
    /// filter list and one compiled filter set per rule, one parsed allow
    /// and deny list per policy, not per route); a route named
    /// `pending` on a listener no bind serves is one problem per route and
    /// listener, and once the proxy serves the port it says it waits for
    /// the controller (which has not yet handed its routes over).
    #[test]
    fn routes_of_one_rule_share_their_match_data_and_pending_routes_are_reported_once() {
        let d = Desired {
            backends: vec![Backend { name: "web/app:80".into(), endpoints: vec![], https: false }],
            ..Desired::default()
        };
        let mut set = RouteSet::from_ingress(&d);
        set.listeners = vec![ListenerSpec {
            name: "gateway/web/gw/http".into(),
            gateway: "web/gw".into(),
            port: 80,
            protocol: Protocol::Http,
            hostname: None,
            certs: vec![],
            client_ip: None,
            not_on: Vec::new(),
        }];
        set.listeners.push(ListenerSpec { name: "gateway/web/gw/alt".into(), port: 8080, ..set.listeners[0].clone() });
        let headers: Arc<[ValueMatch]> = Arc::new([ValueMatch { name: "x-pad".into(), value: "v".repeat(4096) }]);
        let edit = HeaderEdit { set: vec![("x-set".into(), "s".repeat(4096))], ..HeaderEdit::default() };
        let filters: Arc<[Filter]> = Arc::new([Filter::RequestHeaders(edit)]);
        let except: Arc<[String]> = (0..64).map(|i| format!("s{i}.Example.com.")).collect();
        let entry = |host: &str| {
            Arc::new(Route {
                name: format!("httproute/web/r/0/0/{host}"),
                origin: "httproute/web/r".into(),
                created: "~".into(),
                listeners: vec!["gateway/web/gw/http".into()],
                host: Some(host.into()),
                path: PathMatch::SegmentPrefix("/".into()),
                method: None,
                headers: Arc::clone(&headers),
                query: Arc::default(),
                filters: Arc::clone(&filters),
                backends: vec![WeightedBackend { backend: Some("web/app:80".into()), weight: 1 }].into(),
                access: None,
                max_body: None,
                ssl_redirect: false,
                except_hosts: Arc::clone(&except),
            })
        };
        set.routes = vec![entry("a.example.com"), entry("b.example.com")];
        // One access policy for both, its lists converted and parsed once.
        let access = Arc::new(Access {
            policy: "web/lists".into(),
            allow: Some((0..1024).map(|i| format!("10.{}.{}.0/24", i / 256, i % 256)).collect()),
            deny: vec!["10.0.0.1/32".into()],
            rate_limit: None,
            gateway_rate_limit: None,
        });
        for r in &mut set.routes {
            Arc::make_mut(r).access = Some(Arc::clone(&access));
        }
        set.pending = vec![realip_kube::routes::PendingRoute {
            origin: "httproute/web/r".into(),
            listener: "gateway/web/gw/alt".into(),
        }];
        let file = |ports: &str| -> Config {
            toml::from_str(&format!(
                "[[listener]]\nname = \"web\"\nbind = \"127.0.0.1:0\"\ngateway_ports = [{ports}]\n"
            ))
            .unwrap()
        };
        let (c, problems, warnings) = compose_checked(file("80"), Some(&set));
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(c.routes.len(), 2);
        assert!(Arc::ptr_eq(c.routes[0].allow.as_ref().unwrap(), c.routes[1].allow.as_ref().unwrap()));
        assert!(Arc::ptr_eq(&c.routes[0].deny, &c.routes[1].deny));
        let (g0, g1) = (c.routes[0].gateway.as_ref().unwrap(), c.routes[1].gateway.as_ref().unwrap());
        assert!(Arc::ptr_eq(&g0.except_hosts, &g1.except_hosts));
        assert_eq!(g0.except_hosts[3], "s3.example.com", "lower case, no trailing dot");
        assert_eq!(c.routes[0].allow.as_ref().unwrap().len(), 1024);
        for r in &c.routes {
            assert!(Arc::ptr_eq(&r.filters, &filters), "the set's filters, not a copy");
            assert!(Arc::ptr_eq(&r.gateway.as_ref().unwrap().headers, &headers), "the set's headers, not a copy");
        }
        let got: Vec<(&str, &str)> = problems.iter().map(|p| (p.route.as_str(), p.origin.as_str())).collect();
        assert_eq!(got, [("httproute/web/r on gateway/web/gw/alt", "httproute/web/r")]);
        assert_eq!(
            problems[0].reason,
            Unserved::GatewayListener(
                "no [[listener]] has gateway_ports = [8080] for Gateway listener gateway/web/gw/alt".into()
            )
        );
        // Compiled once for both routes.
        let snapshot = crate::snapshot::Snapshot::build(c).unwrap();
        let compiled: Vec<&Arc<crate::gateway::Filters>> =
            snapshot.routes.all().iter().filter(|r| r.gateway.is_some()).map(|r| &r.filters).collect();
        assert_eq!(compiled.len(), 2);
        assert!(Arc::ptr_eq(compiled[0], compiled[1]));
        let policies: Vec<&Arc<crate::policy::Policy>> =
            snapshot.routes.all().iter().filter(|r| r.gateway.is_some()).map(|r| &r.policy).collect();
        assert!(Arc::ptr_eq(&policies[0].allow[0], &policies[1].allow[0]));
        assert!(Arc::ptr_eq(&policies[0].deny, &policies[1].deny));
        // The proxy serves 8080 before the controller knows: still not
        // served (no route of it was handed over), and said so.
        let (_, problems, _) = compose_checked(file("80, 8080"), Some(&set));
        assert_eq!(problems.len(), 1);
        assert!(problems[0].reason.to_string().contains("not served yet"), "{problems:?}");
    }

    /// Each bind gets the certificates of what it serves only (review 13d
    /// X12): a Gateway listener's on the binds serving its port and
    /// admitting its Gateway, grouped by its hostname; the Ingresses' on
    /// binds with `ingress = true`; never another Gateway's.
    #[test]
    fn a_bind_gets_only_the_certificates_of_what_it_serves() {
        let cert = |name: &str| realip_kube::ingress::Cert {
            name: name.into(),
            cert_pem: name.as_bytes().to_vec(),
            key_pem: vec![],
            ingress: false,
            hosts: Vec::new(),
        };
        let d = Desired { certs: vec![cert("evil/ing-tls")], ..Desired::default() };
        let spec = |gw: &str, port: u16, host: Option<&str>, secret: &str| ListenerSpec {
            name: format!("gateway/{gw}/https"),
            gateway: gw.into(),
            port,
            protocol: Protocol::Https,
            hostname: host.map(Into::into),
            certs: vec![secret.into()],
            client_ip: None,
            not_on: Vec::new(),
        };
        let gw = RouteSet {
            listeners: vec![
                spec("web/gw", 443, Some("A.example.com."), "web/a-tls"),
                spec("evil/tgw", 443, Some("t.example.com"), "evil/a-tls"),
                spec("evil/other", 8443, None, "evil/any-tls"),
            ],
            certs: vec![cert("evil/a-tls"), cert("evil/any-tls"), cert("web/a-tls")],
            ..RouteSet::default()
        };
        let set = gw.merge(RouteSet::from_ingress(&d));
        let c_base = || -> Config {
            toml::from_str(
                "[[listener]]\nname = \"victim\"\nbind = \"127.0.0.1:0\"\ngateway_ports = [443]\ningress = false\n\
                 gateways = [\"web/gw\"]\ntls = { kubernetes = true }\n\n\
                 [[listener]]\nname = \"shared\"\nbind = \"127.0.0.1:0\"\ngateway_ports = [443, 8443]\n\
                 tls = { kubernetes = true }\n",
            )
            .unwrap()
        };
        let (c, _, _) = compose_checked(c_base(), Some(&set));
        let names = |l: usize| {
            let tls = c.listeners[l].tls.as_ref().unwrap();
            let file: Vec<String> = tls.certificates.iter().map(|c| c.cert.display().to_string()).collect();
            let gateway: Vec<(Option<String>, Vec<String>)> = tls
                .gateway
                .iter()
                .map(|h| (h.hostname.clone(), h.certs.iter().map(|c| c.cert.display().to_string()).collect()))
                .collect();
            (file, gateway)
        };
        let host = |h: Option<&str>, s: &str| (h.map(Into::into), vec![format!("secret {s}")]);
        assert_eq!(names(0), (vec![], vec![host(Some("a.example.com"), "web/a-tls")]));
        assert_eq!(
            names(1),
            (
                vec!["secret evil/ing-tls".to_owned()],
                vec![
                    host(Some("a.example.com"), "web/a-tls"),
                    host(Some("t.example.com"), "evil/a-tls"),
                    host(None, "evil/any-tls")
                ]
            )
        );
        // A listener that conflicts on a bind with an older one (review 13d
        // X1c: `not_on`) brings no certificate there.
        let mut set = set;
        set.listeners[0].not_on = vec!["shared".into()];
        let (c, _, _) = compose_checked(c_base(), Some(&set));
        let gateway = &c.listeners[1].tls.as_ref().unwrap().gateway;
        assert!(gateway.iter().all(|h| h.hostname.as_deref() != Some("a.example.com")), "{gateway:?}");
        assert_eq!(c.listeners[0].tls.as_ref().unwrap().gateway.len(), 1, "still on the bind where it is served");
        // Nor one whose ClientIPPolicy the file's chain overrules there
        // (an Ingress is served on `shared`; review 14 L2).
        set.listeners[0].not_on = Vec::new();
        set.listeners[0].client_ip = Some(ClientIp {
            policy: "web/lb".into(),
            proxy_protocol: ProxyMode::Off,
            proxy_protocol_from: vec![],
            trusted: vec!["127.0.0.0/8".into()],
            sources: vec!["xff".into()],
            strategy: "rightmost-untrusted".into(),
            fail_closed: false,
            forward: Forward::default(),
        });
        let ingress = Route {
            path: PathMatch::Prefix("/".into()),
            ..app_route("ingress/evil/i/i.example.com/", "ingress/evil/i", vec![], Some("i.example.com"))
        };
        set.routes.push(Arc::new(ingress));
        let (c, _, _) = compose_checked(c_base(), Some(&set));
        let gateway = &c.listeners[1].tls.as_ref().unwrap().gateway;
        assert!(gateway.iter().all(|h| h.hostname.as_deref() != Some("a.example.com")), "{gateway:?}");
        assert_eq!(gateway.len(), 2, "the others stay: {gateway:?}");
        assert_eq!(c.listeners[0].tls.as_ref().unwrap().gateway.len(), 1, "still on the bind where it is served");
    }

    /// An Ingress cannot add paths under a host an HTTPRoute serves (it
    /// would escape the Gateway's access policy): it is reported, not
    /// served; its routes for other hosts are served.
    #[test]
    fn an_ingress_does_not_take_paths_on_a_gateway_host() {
        let ing = |host: &str, path: &str| open_route("evil/grab", Some(host.into()), path, "web/app:80");
        let d = Desired {
            routes: vec![ing("A.example.com", "/login"), ing("b.example.com", "/login")],
            backends: vec![Backend { name: "web/app:80".into(), endpoints: vec![], https: false }],
            ..Desired::default()
        };
        let mut set = RouteSet::from_ingress(&d);
        set.listeners = vec![ListenerSpec {
            name: "gateway/web/gw/http".into(),
            gateway: "web/gw".into(),
            port: 80,
            protocol: Protocol::Http,
            hostname: None,
            certs: vec![],
            client_ip: None,
            not_on: Vec::new(),
        }];
        set.routes.push(Arc::new(Route {
            name: "httproute/web/site/0/0".into(),
            origin: "httproute/web/site".into(),
            created: "~".into(),
            listeners: vec!["gateway/web/gw/http".into()],
            host: Some("a.example.com".into()),
            path: PathMatch::SegmentPrefix("/app".into()),
            method: None,
            headers: Arc::default(),
            query: Arc::default(),
            filters: Arc::default(),
            backends: vec![WeightedBackend { backend: Some("web/app:80".into()), weight: 1 }].into(),
            access: None,
            max_body: None,
            ssl_redirect: false,
            except_hosts: Arc::default(),
        }));
        // The HTTPRoute is the older (see a_host_both_sides_serve_is_the_older_objects).
        born(&mut set, "httproute/web/site", "2026-01-01T00:00:00Z");
        born(&mut set, "ingress/evil/grab", "2026-01-02T00:00:00Z");
        let base: Config =
            toml::from_str("[[listener]]\nname = \"web\"\nbind = \"127.0.0.1:0\"\ngateway_ports = [80]\n").unwrap();
        let (c, problems, _) = compose_checked(base, Some(&set));
        assert!(c.validate().is_empty(), "{:?}", c.validate());
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(problems[0].origin, "ingress/evil/grab");
        assert_eq!(
            problems[0].reason,
            Unserved::HostOwned { host: "a.example.com".into(), by: "httproute/web/site".into() }
        );
        assert!(problems[0].reason.to_string().contains("host a.example.com owned by HTTPRoute web/site"));
        let served: Vec<(Option<&str>, &str)> =
            c.routes.iter().map(|r| (r.host.as_deref(), r.path_prefix.as_str())).collect();
        assert_eq!(served, [(Some("b.example.com"), "/login"), (Some("a.example.com"), "/app")]);
    }

    /// A Gateway-style route `name` from `origin` on `listeners` for
    /// `host`: path prefix `/` to `web/app:80`, nothing else set, creation
    /// time unknown. Tests change what they need with `..app_route(…)`.
    fn app_route(name: &str, origin: &str, listeners: Vec<String>, host: Option<&str>) -> Route {
        Route {
            name: name.into(),
            origin: origin.into(),
            created: "~".into(),
            listeners,
            host: host.map(Into::into),
            path: PathMatch::SegmentPrefix("/".into()),
            method: None,
            headers: Arc::default(),
            query: Arc::default(),
            filters: Arc::default(),
            backends: vec![WeightedBackend { backend: Some("web/app:80".into()), weight: 1 }].into(),
            access: None,
            max_body: None,
            ssl_redirect: false,
            except_hosts: Arc::default(),
        }
    }

    /// Sets the creation time of every route of `set` from `origin`.
    fn born(set: &mut RouteSet, origin: &str, time: &str) {
        for r in set.routes.iter_mut().filter(|r| r.origin == origin) {
            Arc::make_mut(r).created = time.into();
        }
    }

    /// Review 13b N2 / N5: who keeps a host an Ingress and an HTTPRoute
    /// both serve is decided by age (`creationTimestamp`, then
    /// `namespace/name`): the newer side's routes for it are not served, a
    /// wildcard or host-less route of the newer Gateway side leaves the host
    /// out (with a warning), and a full tie goes to the Gateway side.
    #[test]
    fn a_host_both_sides_serve_is_the_older_objects() {
        let ing = open_route("evil/grab", Some("a.example.com".into()), "/login", "web/app:80");
        let d = Desired {
            routes: vec![ing],
            backends: vec![Backend { name: "web/app:80".into(), endpoints: vec![], https: false }],
            ..Desired::default()
        };
        let world = |host: Option<&str>, route_created: &str, ingress_created: &str| {
            let mut set = RouteSet::from_ingress(&d);
            set.routes.push(Arc::new(Route {
                name: "httproute/web/site/0/0".into(),
                origin: "httproute/web/site".into(),
                created: "~".into(),
                listeners: vec!["gateway/web/gw/http".into()],
                host: host.map(Into::into),
                path: PathMatch::SegmentPrefix("/".into()),
                method: None,
                headers: Arc::default(),
                query: Arc::default(),
                filters: Arc::default(),
                backends: vec![WeightedBackend { backend: Some("web/app:80".into()), weight: 1 }].into(),
                access: None,
                max_body: None,
                ssl_redirect: false,
                except_hosts: Arc::default(),
            }));
            set.listeners = vec![ListenerSpec {
                name: "gateway/web/gw/http".into(),
                gateway: "web/gw".into(),
                port: 80,
                protocol: Protocol::Http,
                hostname: None,
                certs: vec![],
                client_ip: None,
                not_on: Vec::new(),
            }];
            born(&mut set, "httproute/web/site", route_created);
            born(&mut set, "ingress/evil/grab", ingress_created);
            let base: Config =
                toml::from_str("[[listener]]\nname = \"web\"\nbind = \"127.0.0.1:0\"\ngateway_ports = [80]\n").unwrap();
            let (c, problems, warnings) = compose_checked(base, Some(&set));
            assert!(c.validate().is_empty(), "{:?}", c.validate());
            (c, problems, warnings)
        };
        let (old, new) = ("2026-01-01T00:00:00Z", "2026-01-02T00:00:00Z");
        for host in [Some("a.example.com"), Some("*.example.com"), None] {
            // The route older: the Ingress path is not served.
            let (c, problems, _) = world(host, old, new);
            assert_eq!(problems.len(), 1, "{host:?} {problems:?}");
            let by = "httproute/web/site".to_owned();
            assert_eq!(problems[0].reason, Unserved::HostOwned { host: "a.example.com".into(), by });
            assert!(c.routes.iter().all(|r| r.gateway.as_ref().is_some_and(|g| g.except_hosts.is_empty())));
            // The Ingress older: it keeps the host.
            let (c, problems, warnings) = world(host, new, old);
            let by = "ingress/evil/grab".to_owned();
            if host == Some("a.example.com") {
                assert_eq!(problems.len(), 1, "{problems:?}");
                assert_eq!(problems[0].origin, "httproute/web/site");
                assert_eq!(problems[0].reason, Unserved::HostOwnedByIngress { host: "a.example.com".into(), by });
                assert!(problems[0].reason.to_string().contains("owned by Ingress evil/grab (older)"));
                assert_eq!(c.routes.len(), 1, "{:?}", c.routes);
            } else {
                assert!(problems.is_empty(), "{host:?} {problems:?}");
                assert_eq!(c.routes.len(), 2);
                let g = c.routes.iter().find_map(|r| r.gateway.as_ref()).unwrap();
                assert_eq!(*g.except_hosts, ["a.example.com"], "{host:?}");
                assert!(g.excludes("a.example.com") && !g.excludes("b.example.com"));
                assert_eq!(warnings.len(), 1, "{warnings:?}");
                assert!(warnings[0].message.contains("host a.example.com left out: the older Ingress evil/grab"));
            }
        }
        // Same time: namespace/name decides (evil/grab before web/site).
        let (_, problems, _) = world(Some("a.example.com"), old, old);
        assert_eq!(problems[0].origin, "httproute/web/site", "{problems:?}");
    }

    /// Review 28 F1/F2 (and round 3): the hosts older Ingresses keep are
    /// left out of many host-less routes of many HTTPRoutes once: one
    /// shared list (a request then tests it once) and one short warning
    /// per route origin, not a list and a warning per route and host.
    #[test]
    fn hosts_older_ingresses_keep_are_left_out_once_for_all_routes() {
        let ing =
            |i: usize| open_route(format!("t{}/i{i}", i % 7), Some(format!("h{i}.example.org")), "/", "web/app:80");
        let d = Desired {
            routes: (0..50).map(ing).collect(),
            backends: vec![Backend { name: "web/app:80".into(), endpoints: vec![], https: false }],
            ..Desired::default()
        };
        let mut set = RouteSet::from_ingress(&d);
        for o in 0..20 {
            // Each HTTPRoute its own list (as the translator makes them), equal in content.
            let own: Arc<[String]> = Arc::from(vec!["iso.example.net".to_owned()]);
            for m in 0..10 {
                set.routes.push(Arc::new(Route {
                    name: format!("httproute/evil/r{o}/0/{m}"),
                    origin: format!("httproute/evil/r{o}"),
                    created: "2026-01-02T00:00:00Z".into(),
                    listeners: vec!["gateway/web/gw/http".into()],
                    host: None,
                    path: PathMatch::Exact(format!("/e{o}/{m}")),
                    method: None,
                    headers: Arc::default(),
                    query: Arc::default(),
                    filters: Arc::default(),
                    backends: vec![WeightedBackend { backend: Some("web/app:80".into()), weight: 1 }].into(),
                    access: None,
                    max_body: None,
                    ssl_redirect: false,
                    except_hosts: Arc::clone(&own),
                }));
            }
        }
        set.listeners = vec![ListenerSpec {
            name: "gateway/web/gw/http".into(),
            gateway: "web/gw".into(),
            port: 80,
            protocol: Protocol::Http,
            hostname: None,
            certs: vec![],
            client_ip: None,
            not_on: Vec::new(),
        }];
        for i in 0..50 {
            born(&mut set, &format!("ingress/t{}/i{i}", i % 7), "2026-01-01T00:00:00Z");
        }
        let base: Config =
            toml::from_str("[[listener]]\nname = \"web\"\nbind = \"127.0.0.1:0\"\ngateway_ports = [80]\n").unwrap();
        let (c, problems, warnings) = compose_checked(base, Some(&set));
        assert!(problems.is_empty(), "{problems:?}");
        let lists: Vec<&Arc<[String]>> =
            c.routes.iter().filter_map(|r| r.gateway.as_ref()).map(|g| &g.except_hosts).collect();
        assert_eq!(lists.len(), 200);
        assert_eq!(lists[0].len(), 51, "every older Ingress host left out");
        assert!(lists.iter().all(|l| Arc::ptr_eq(l, lists[0])), "one list for all the routes of all the HTTPRoutes");
        assert_eq!(warnings.len(), 20, "one per route origin");
        assert!(warnings.iter().all(|w| w.message.len() < 1000 && w.message.contains("and 45 more")), "{warnings:?}");
    }

    /// An Ingress `global-rate-limit` is served as a global rate when the
    /// file has a `[rate_limit_store]`, and reported (never served per
    /// replica, N× too loose) when it has none.
    #[test]
    fn ingress_global_rate_limits_need_a_store() {
        let d = Desired {
            routes: vec![IngressRoute {
                rps: Some(2.0),
                burst: Some(120.0),
                rate_global: true,
                ..open_route("web/site", None, "/", "web/app:80")
            }],
            backends: vec![Backend { name: "web/app:80".into(), endpoints: vec![], https: false }],
            ..Desired::default()
        };
        let set = RouteSet::from_ingress(&d);
        let listener = "[[listener]]\nname = \"web\"\nbind = \"127.0.0.1:0\"\n";
        let with_store: Config =
            toml::from_str(&format!("{listener}[rate_limit_store]\nredis = \"redis://127.0.0.1:6379/0\"\n")).unwrap();
        let (c, problems, _) = compose_checked(with_store, Some(&set));
        assert!(problems.is_empty() && c.validate().is_empty(), "{problems:?} {:?}", c.validate());
        let want = RateConfig {
            per_second: 2.0,
            burst: Some(120.0),
            scope: crate::config::RateScope::Global,
            ipv6_prefix: None,
        };
        assert_eq!(c.routes[0].rate, Some(want));
        let (c, problems, _) = compose_checked(toml::from_str(listener).unwrap(), Some(&set));
        assert!(c.validate().is_empty(), "{:?}", c.validate());
        assert_eq!(problems[0].reason, Unserved::NoRateLimitStore);
        assert_eq!(
            problems[0].reason.to_string(),
            "scope Global needs [rate_limit_store] in the file: its requests are answered 500"
        );
        // Not served, but its place is held by a route answering 500
        // (review 19 HIGH-1): its requests never fall to another route.
        assert_answers_500(&c, "/");
    }

    /// `c` has exactly one route, at `path`, that answers 500 to everyone:
    /// no upstream, one backend that did not resolve, no list, rate or
    /// filter.
    fn assert_answers_500(c: &Config, path: &str) {
        assert_eq!(c.routes.len(), 1, "{:?}", c.routes);
        let r = &c.routes[0];
        assert_eq!(r.path_prefix, path);
        assert!(r.upstream.is_empty() && r.backends == [(None, 1)], "{r:?}");
        assert!(r.allow.is_none() && r.deny.is_empty() && r.rate.is_none() && r.also_rate.is_none(), "{r:?}");
        assert!(r.filters.is_empty() && !r.https_redirect, "{r:?}");
        // Compiled, it picks no pool: the request is answered 500.
        let snap = crate::snapshot::Snapshot::build(c.clone()).unwrap();
        assert!(snap.routes.all()[0].pick_pool().is_none());
    }

    /// Review 19 HIGH-1: a route with an access list or rate the proxy
    /// cannot apply as written (the controller checks them too, so this
    /// is the proxy's own guard) is reported `Invalid` and holds its place
    /// answering 500; one whose path cannot be placed is left out.
    #[test]
    fn a_route_whose_access_lists_cannot_be_applied_fails_closed() {
        let ingress = |path: &str, allow: Option<Vec<String>>| Desired {
            routes: vec![IngressRoute {
                allow,
                ..open_route("web/site", Some("a.example.com".into()), path, "web/app:80")
            }],
            backends: vec![Backend { name: "web/app:80".into(), endpoints: vec![], https: false }],
            ..Desired::default()
        };
        let listener = "[[listener]]\nname = \"web\"\nbind = \"127.0.0.1:0\"\n";
        let d = ingress("/admin", Some(vec!["not-a-cidr".into()]));
        let (c, problems, _) = compose_checked(toml::from_str(listener).unwrap(), Some(&RouteSet::from_ingress(&d)));
        assert!(c.validate().is_empty(), "{:?}", c.validate());
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(matches!(&problems[0].reason, Unserved::Invalid(why) if why.contains("allow")), "{problems:?}");
        assert_answers_500(&c, "/admin");
        // A path that is not in normalized form never matches a request:
        // nothing to hold, left out.
        let d = ingress("/a/../admin", Some(vec!["not-a-cidr".into()]));
        let (c, problems, _) = compose_checked(toml::from_str(listener).unwrap(), Some(&RouteSet::from_ingress(&d)));
        assert!(c.routes.is_empty() && problems.len() == 1, "{:?} {problems:?}", c.routes);
        // Without an access part, an invalid route is left out as before.
        let d = ingress("/a/../admin", None);
        let (c, _, _) = compose_checked(toml::from_str(listener).unwrap(), Some(&RouteSet::from_ingress(&d)));
        assert!(c.routes.is_empty());
    }

    /// A ClientIPPolicy edit of what a route's conversion does not read
    /// (trusted proxies, PROXY senders) converts no route again, and the
    /// composition still equals one from scratch (the bind takes the new
    /// chain); an edit of the headers it protects from filters converts
    /// them again.
    #[test]
    fn a_chain_edit_converts_no_route_unless_its_protected_headers_change() {
        let chain = |trusted: &str, strip: &str| ClientIp {
            policy: "web/chain".into(),
            proxy_protocol: ProxyMode::Off,
            proxy_protocol_from: vec![],
            trusted: vec![trusted.into()],
            sources: vec!["x-forwarded-for".into()],
            strategy: "rightmost-untrusted".into(),
            fail_closed: false,
            forward: Forward { strip_untrusted: vec![strip.into()], ..Forward::default() },
        };
        let set_with = |c: ClientIp| RouteSet {
            listeners: vec![ListenerSpec {
                name: "gateway/web/gw/a".into(),
                gateway: "web/gw".into(),
                port: 80,
                protocol: Protocol::Http,
                hostname: None,
                certs: vec![],
                client_ip: Some(c),
                not_on: Vec::new(),
            }],
            routes: vec![Arc::new(app_route(
                "httproute/web/r/0/0",
                "httproute/web/r",
                vec!["gateway/web/gw/a".into()],
                None,
            ))],
            backends: vec![Backend { name: "web/app:80".into(), endpoints: vec![], https: false }],
            ..RouteSet::default()
        };
        let base: Config =
            toml::from_str("[[listener]]\nname = \"pp\"\nbind = \"127.0.0.1:0\"\ngateway_ports = [80]\n").unwrap();
        let mut memo = Conversions::default();
        let mut check = |set: &RouteSet| {
            let (a, pa, wa) = compose_with(base.clone(), Some(set), &mut memo);
            let (b, pb, wb) = compose_checked(base.clone(), Some(set));
            assert_eq!((&a.routes, &pa, &wa), (&b.routes, &pb, &wb));
            assert_eq!(format!("{:?}", a.listeners), format!("{:?}", b.listeners));
            let c = memo.last.iter().flatten().map(|(_, c)| Arc::clone(c)).next().unwrap();
            (a, c)
        };
        let mut set = set_with(chain("198.51.100.0/24", "x-a"));
        let (_, first) = check(&set);
        set.listeners[0].client_ip = Some(chain("203.0.113.0/24", "x-a"));
        let (c, trusted) = check(&set);
        assert!(Arc::ptr_eq(&first, &trusted), "a trusted-proxies edit converts no route");
        assert_eq!(c.listeners[0].chain.as_ref().unwrap().client_ip.trusted, ["203.0.113.0/24"]);
        set.listeners[0].client_ip = Some(chain("203.0.113.0/24", "x-b"));
        let (_, stripped) = check(&set);
        assert!(!Arc::ptr_eq(&trusted, &stripped), "a protected header edit converts again");
    }

    /// A file listener serving Gateway listeners with one ClientIPPolicy
    /// takes its chain; with two different chains it keeps the file's and
    /// the policy's routes are reported, never served with the wrong one.
    #[test]
    fn a_listener_takes_the_policy_of_the_gateway_listeners_it_serves() {
        let chain = |policy: &str, trusted: &str| ClientIp {
            policy: policy.into(),
            proxy_protocol: ProxyMode::Required,
            proxy_protocol_from: vec!["192.0.2.0/24".into()],
            trusted: vec![trusted.into()],
            sources: vec!["proxy-protocol".into(), "header:cf-connecting-ip".into()],
            strategy: "rightmost-untrusted".into(),
            fail_closed: true,
            forward: Forward { strip_untrusted: vec!["x-custom-ip".into()], ..Forward::default() },
        };
        let spec = |name: &str, port: u16, client_ip: Option<ClientIp>| ListenerSpec {
            name: format!("gateway/web/gw/{name}"),
            gateway: "web/gw".into(),
            port,
            protocol: Protocol::Http,
            hostname: None,
            certs: vec![],
            client_ip,
            not_on: Vec::new(),
        };
        let route = |name: &str, listener: &str| {
            let (name, origin) = (format!("httproute/web/{name}/0/0"), format!("httproute/web/{name}"));
            app_route(&name, &origin, vec![format!("gateway/web/gw/{listener}")], None)
        };
        let set = RouteSet {
            listeners: vec![
                spec("a", 80, Some(chain("web/one", "198.51.100.0/24"))),
                // Same chain under another name: no conflict.
                spec("a2", 80, Some(chain("web/two", "198.51.100.0/24"))),
                spec("b", 81, Some(chain("web/three", "203.0.113.0/24"))),
                spec("c", 81, None),
            ],
            routes: [route("ra", "a"), route("rb", "b"), route("rc", "c")].map(Arc::new).to_vec(),
            backends: vec![Backend { name: "web/app:80".into(), endpoints: vec![], https: false }],
            ..RouteSet::default()
        };
        let base: Config = toml::from_str(
            "[[listener]]\nname = \"pp\"\nbind = \"127.0.0.1:0\"\ngateway_ports = [80]\n\n\
             [[listener]]\nname = \"mixed\"\nbind = \"127.0.0.1:0\"\ngateway_ports = [81]\n",
        )
        .unwrap();
        let (c, problems, _) = compose_checked(base, Some(&set));
        assert!(c.validate().is_empty(), "{:?}", c.validate());
        let pp = &c.listeners[0];
        assert_eq!(pp.proxy_protocol, ProxyProtocolIn::Required);
        assert_eq!(pp.proxy_protocol_from, ["192.0.2.0/24"]);
        let ch = pp.chain.as_ref().unwrap();
        assert_eq!(ch.client_ip.trusted, ["198.51.100.0/24"]);
        assert_eq!(ch.client_ip.sources, ["proxy-protocol", "header:cf-connecting-ip"]);
        assert!(ch.fail_closed);
        assert!(ch.forward.strip_untrusted.iter().any(|h| h == "x-custom-ip"), "the policy's");
        assert!(ch.forward.strip_untrusted.iter().any(|h| h == "true-client-ip"), "the file's stay");
        let mixed = &c.listeners[1];
        assert!(mixed.chain.is_none() && mixed.proxy_protocol == ProxyProtocolIn::Off, "conflict: the file's chain");
        let names: Vec<&str> = c.routes.iter().filter_map(|r| r.name.as_deref()).collect();
        assert_eq!(names, ["httproute/web/ra/0/0", "httproute/web/rc/0/0"]);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(
            problems[0].reason,
            Unserved::ClientIpConflict {
                listener: "gateway/web/gw/b".into(),
                file: "mixed".into(),
                other: "gateway/web/gw/c".into()
            }
        );
        // And it compiles: the listener's chain is the one requests see.
        let snap = crate::snapshot::Snapshot::build(c).unwrap();
        assert!(snap.chain("pp").fail_closed && !snap.chain("mixed").fail_closed);
    }

    /// Review 13b N9: a tenant's own Gateway and ClientIPPolicy on a bind
    /// that also serves an Ingress never change how the Ingress's clients
    /// are resolved: the file's chain stays, the policy's listener is not
    /// served, and a policy saying what the file says is no conflict.
    #[test]
    fn a_policy_never_changes_the_chain_of_ingress_or_file_routes() {
        let trust_all = ClientIp {
            policy: "evil/trustall".into(),
            proxy_protocol: ProxyMode::Optional,
            proxy_protocol_from: vec!["0.0.0.0/0".into()],
            trusted: vec!["0.0.0.0/0".into()],
            sources: vec!["x-forwarded-for".into()],
            strategy: "rightmost-untrusted".into(),
            fail_closed: false,
            forward: Forward::default(),
        };
        let route = |name: &str, listeners: Vec<String>, host: &str| {
            app_route(name, name.rsplit_once('/').map_or(name, |(o, _)| o), listeners, Some(host))
        };
        let gw = route("httproute/evil/r/0", vec!["gateway/evil/mine/http".into()], "evil.example.com");
        let ingress = route("ingress/web/site/a.example.com/", vec![], "a.example.com");
        let set = |policy: Option<ClientIp>, routes: Vec<Route>| RouteSet {
            listeners: vec![ListenerSpec {
                name: "gateway/evil/mine/http".into(),
                gateway: "evil/mine".into(),
                port: 80,
                protocol: Protocol::Http,
                hostname: None,
                certs: vec![],
                client_ip: policy,
                not_on: Vec::new(),
            }],
            routes: routes.into_iter().map(Arc::new).collect(),
            backends: vec![Backend { name: "web/app:80".into(), endpoints: vec![], https: false }],
            ..RouteSet::default()
        };
        let file = "[[listener]]\nname = \"web\"\nbind = \"127.0.0.1:0\"\ngateway_ports = [80]\n\n\
                    [client_ip]\ntrusted = [\"192.0.2.0/24\"]\n";
        let base: Config = toml::from_str(file).unwrap();

        // With the Ingress: the file's chain and PROXY settings stay, the
        // tenant's listener is not served, and the log says why.
        let (c, problems, _) =
            compose_checked(base.clone(), Some(&set(Some(trust_all.clone()), vec![gw.clone(), ingress.clone()])));
        let web = &c.listeners[0];
        assert!(web.chain.is_none(), "{:?}", web.chain);
        assert_eq!((web.proxy_protocol, web.proxy_protocol_from.len()), (ProxyProtocolIn::Off, 0));
        let names: Vec<&str> = c.routes.iter().filter_map(|r| r.name.as_deref()).collect();
        assert_eq!(names, ["ingress/web/site/a.example.com/"]);
        let want = Unserved::FileChainConflict {
            listener: "gateway/evil/mine/http".into(),
            policy: "evil/trustall".into(),
            file: "web".into(),
        };
        assert_eq!(problems.iter().map(|p| &p.reason).collect::<Vec<_>>(), [&want]);
        let why = want.to_string();
        assert!(why.contains("evil/trustall") && why.contains("Ingress or file routes"), "{why}");
        let snap = crate::snapshot::Snapshot::build(c).unwrap();
        assert_eq!(snap.chain("web").resolver.trusted, snap.chain("no-such-listener").resolver.trusted);

        // A file route counts as an Ingress does.
        let mut with_file_route = base.clone();
        with_file_route.upstreams.push(UpstreamConfig::plain("app".into(), vec!["127.0.0.1:9".into()]));
        with_file_route.routes.push(toml::from_str("upstream = \"app\"\nhost = \"f.example.com\"\n").unwrap());
        let (c, problems, _) = compose_checked(with_file_route, Some(&set(Some(trust_all.clone()), vec![gw.clone()])));
        assert!(c.listeners[0].chain.is_none());
        assert_eq!(problems.iter().map(|p| &p.reason).collect::<Vec<_>>(), [&want]);

        // Gateway routes alone: the bind takes the policy's chain.
        let (c, problems, _) = compose_checked(base.clone(), Some(&set(Some(trust_all), vec![gw.clone()])));
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(c.listeners[0].chain.as_ref().map(|ch| ch.policy.as_str()), Some("evil/trustall"));

        // A policy that says what the file says changes nothing: served.
        let same = ClientIp {
            policy: "web/same".into(),
            proxy_protocol: ProxyMode::Off,
            proxy_protocol_from: vec![],
            trusted: base.client_ip.trusted.clone(),
            sources: base.client_ip.sources.clone(),
            strategy: base.client_ip.strategy.clone(),
            fail_closed: false,
            forward: Forward {
                x_forwarded_for: realip_kube::routes::XffMode::Append,
                x_real_ip: base.forward.x_real_ip,
                forwarded: base.forward.forwarded,
                strip_untrusted: vec![],
            },
        };
        let (c, problems, _) = compose_checked(base, Some(&set(Some(same), vec![gw, ingress])));
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(c.routes.len(), 2);
    }

    /// A reload logs what changed about the routes, not the same state
    /// again: an unchanged unserved route is logged once, a changed
    /// reason again, a route served again once.
    #[test]
    fn unserved_routes_are_logged_once_per_change() {
        let problem = |route: &str, why: &str| Problem {
            route: route.into(),
            origin: "httproute/web/r".into(),
            reason: Unserved::GatewayListener(why.into()),
        };
        let warning =
            Warning { route: "w".into(), origin: "httproute/web/w".into(), message: "left out".into(), narrowed: None };
        let events = |e: Vec<serde_json::Value>| {
            e.iter()
                .map(|v| format!("{} {}", v["event"].as_str().unwrap(), v["route"].as_str().unwrap()))
                .collect::<Vec<_>>()
        };
        let mut r = Reported::default();
        let first = r.update(vec![problem("a", "x"), problem("b", "x")], vec![warning.clone()]);
        assert_eq!(
            events(first),
            ["kubernetes_route_unserved a", "kubernetes_route_unserved b", "kubernetes_route_warning w"]
        );
        for _ in 0..3 {
            let again = r.update(vec![problem("a", "x"), problem("b", "x")], vec![warning.clone()]);
            assert!(again.is_empty(), "{again:?}");
        }
        let changed = r.update(vec![problem("a", "y")], vec![warning.clone()]);
        assert_eq!(events(changed), ["kubernetes_route_unserved a", "kubernetes_route_served b"]);
        assert!(r.update(vec![problem("a", "y")], vec![]).is_empty(), "a warning gone is not an event");
        assert_eq!(events(r.update(vec![], vec![])), ["kubernetes_route_served a"]);
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
        let first =
            Snapshot::build(compose_checked(base(), Some(&RouteSet::from_ingress(&d("10.0.0.1:80")))).0).unwrap();
        let second = Snapshot::build_reusing(
            compose_checked(base(), Some(&RouteSet::from_ingress(&d("10.0.0.2:80")))).0,
            Some(&first),
        )
        .unwrap();
        let same = |n: &str| std::sync::Arc::ptr_eq(&first.pools[n], &second.pools[n]);
        assert!(!same("k8s:web/a:80"), "its endpoints changed");
        assert!(same("k8s:web/b:80"), "untouched: idle connections and ejections survive");
    }

    /// What a snapshot serves, written out: the configuration, each
    /// route with the configuration of its pools, each pool, each
    /// listener's `tcp` pool.
    fn served(s: &crate::snapshot::Snapshot) -> String {
        use std::fmt::Write as _;
        let mut out = format!("{:?}\n", s.config);
        for r in s.routes.all() {
            let weighted =
                r.backends.as_ref().map(|w| w.choices().map(|(p, w)| (p.map(|p| p.config()), w)).collect::<Vec<_>>());
            let _ = writeln!(
                out,
                "{} {:?} {} {:?} {weighted:?} {:?} {} {} {:?} {:?} {:?}",
                r.name,
                r.host,
                r.prefix,
                r.upstream.config(),
                r.policy,
                r.max_body_bytes,
                r.https_redirect,
                r.gateway,
                r.filters,
                r.listener_ports
            );
        }
        let mut pools: Vec<_> = s.pools.iter().map(|(n, p)| format!("{n} {:?}", p.config())).collect();
        pools.sort();
        let mut listeners: Vec<_> = s
            .listeners
            .iter()
            .map(|(n, l)| format!("{n} {:?} {:?}", l.upstream.as_ref().map(|p| p.config()), l.chain))
            .collect();
        listeners.sort();
        out + &pools.join("\n") + &listeners.join("\n")
    }

    /// An EndpointSlice change applied alone (`endpoint_changes` +
    /// `Snapshot::with_upstreams`, what the reloader does) serves exactly
    /// what composing and compiling everything serves, through a sequence
    /// of changes; any other change is refused (`None`: the full path).
    #[test]
    #[allow(clippy::too_many_lines)] // one world, then the sequence
    fn endpoint_changes_applied_alone_equal_a_full_rebuild() {
        use crate::snapshot::Snapshot;
        let backend = |name: &str, eps: &[&str]| Backend {
            name: name.into(),
            endpoints: eps.iter().map(|e| e.parse().unwrap()).collect(),
            https: false,
        };
        let base = || -> Config {
            toml::from_str(
                "[[listener]]\nname = \"web\"\nbind = \"127.0.0.1:0\"\ngateway_ports = [80]\n\n\
                 [[upstream]]\nname = \"file\"\nendpoints = [\"127.0.0.1:9\"]\n\n\
                 [[route]]\npath_prefix = \"/file\"\nupstream = \"file\"\n",
            )
            .unwrap()
        };
        // Ingress routes to a and c, Gateway routes to a, and to a and b
        // by weight; `extra` adds a Gateway route.
        let set = |a: &[&str], b: &[&str], c: &[&str], extra: bool| {
            let ing = |name: &str, backend: &str| IngressRoute {
                allow: Some(vec!["192.0.2.0/24".into()]),
                ..open_route(format!("web/{name}"), Some(format!("{name}.example.com")), "/", backend)
            };
            let d = Desired {
                routes: vec![ing("i-a", "web/a:80"), ing("i-c", "web/c:80")],
                backends: vec![backend("web/a:80", a), backend("web/c:80", c)],
                ..Desired::default()
            };
            let gw = |name: &str, backends: &[(&str, u32)]| Route {
                name: format!("httproute/web/{name}/0/0"),
                origin: format!("httproute/web/{name}"),
                created: "~".into(),
                listeners: vec!["gateway/web/gw/http".into()],
                host: Some(format!("{name}.example.com")),
                path: PathMatch::SegmentPrefix("/".into()),
                method: None,
                headers: Arc::default(),
                query: Arc::default(),
                filters: Arc::default(),
                backends: backends
                    .iter()
                    .map(|(b, w)| WeightedBackend { backend: Some((*b).into()), weight: *w })
                    .collect(),
                access: None,
                max_body: None,
                ssl_redirect: false,
                except_hosts: Arc::default(),
            };
            let mut routes = vec![gw("r-a", &[("web/a:80", 1)]), gw("r-split", &[("web/a:80", 1), ("web/b:80", 3)])];
            if extra {
                routes.push(gw("r-extra", &[("web/b:80", 1)]));
            }
            let g = RouteSet {
                listeners: vec![ListenerSpec {
                    name: "gateway/web/gw/http".into(),
                    gateway: "web/gw".into(),
                    port: 80,
                    protocol: Protocol::Http,
                    hostname: None,
                    certs: vec![],
                    client_ip: None,
                    not_on: Vec::new(),
                }],
                routes: routes.into_iter().map(Arc::new).collect(),
                backends: vec![backend("web/a:80", a), backend("web/b:80", b)],
                ..RouteSet::default()
            };
            g.merge(RouteSet::from_ingress(&d))
        };
        let (a1, a2, b1, c1) = (["10.0.0.1:80"], ["10.0.0.2:80", "10.0.0.3:80"], ["10.0.1.1:80"], ["10.0.2.1:80"]);
        let steps: Vec<(&str, RouteSet, bool)> = vec![
            ("a's endpoints changed", set(&a2, &b1, &c1, false), true),
            ("b emptied", set(&a2, &[], &c1, false), true),
            ("a and c changed at once", set(&a1, &[], &a2, false), true),
            ("nothing changed", set(&a1, &[], &a2, false), true),
            ("a route added", set(&a1, &b1, &a2, true), false),
            ("b changed under the new route", set(&a1, &a2, &a2, true), true),
            ("a route removed", set(&a1, &a2, &a2, false), false),
        ];
        let mut held = set(&a1, &b1, &c1, false);
        let mut running = Snapshot::build(compose(base(), Some(&held), &mut Reported::default())).unwrap();
        for (what, next, endpoints_only) in steps {
            let full = Snapshot::build_reusing(compose(base(), Some(&next), &mut Reported::default()), Some(&running))
                .unwrap();
            let changes = endpoint_changes(&held, &next);
            assert_eq!(changes.is_some(), endpoints_only, "{what}");
            let new = match changes {
                Some(c) => {
                    let fast = running.with_upstreams(&c).unwrap();
                    assert_eq!(served(&fast), served(&full), "{what}");
                    for (name, pool) in &fast.pools {
                        let touched = c.iter().any(|u| &u.name == name);
                        assert_eq!(std::sync::Arc::ptr_eq(pool, &running.pools[name]), !touched, "{what}: {name}");
                    }
                    fast
                }
                None => full,
            };
            running = new;
            held = next;
        }
        // An endpoint the proxy cannot connect to is refused, as a full
        // validation refuses it; the running snapshot stays.
        let mut bad = upstream(&backend("web/a:80", &["10.0.0.1:80"]));
        bad.endpoints = vec!["10.0.0.1:0".into()];
        let e = running.with_upstreams(&[bad]).unwrap_err().to_string();
        assert!(e.contains("web/a:80") && e.contains("port 0"), "{e}");
    }
    /// Review 13c C1/C2/C8/C14/C3 and C7: a bind with `ingress = false` is
    /// the Gateways' alone (no Ingress route is served there, no Ingress
    /// makes the file's chain apply or takes a host there), and `gateways`
    /// keeps the listeners of other Gateways off a bind.
    #[test]
    fn ingress_false_and_gateways_keep_tenants_apart() {
        let policy = ClientIp {
            policy: "web/lb".into(),
            proxy_protocol: ProxyMode::Off,
            proxy_protocol_from: vec![],
            trusted: vec!["127.0.0.0/8".into()],
            sources: vec!["xff".into()],
            strategy: "rightmost-untrusted".into(),
            fail_closed: false,
            forward: Forward::default(),
        };
        let route = |name: &str, listeners: Vec<String>, host: Option<&str>, created: &str| {
            let origin = name.splitn(4, '/').take(3).collect::<Vec<_>>().join("/");
            let path = if name.starts_with("ingress/") {
                PathMatch::Prefix("/".into())
            } else {
                PathMatch::SegmentPrefix("/".into())
            };
            Route { created: created.into(), path, ..app_route(name, &origin, listeners, host) }
        };
        let listener = |gateway: &str, client_ip: Option<ClientIp>| ListenerSpec {
            name: format!("gateway/{gateway}/http"),
            gateway: gateway.into(),
            port: 80,
            protocol: Protocol::Http,
            hostname: None,
            certs: vec![],
            client_ip,
            not_on: Vec::new(),
        };
        // The victim's route (newer) and policy; an older host-less tenant
        // route on another Gateway; an older Ingress naming the host.
        let site =
            route("httproute/web/site/0/0", vec!["gateway/web/gw/http".into()], Some("a.example.com"), "2026-02");
        let catchall = route("httproute/evil/catchall/0/0", vec!["gateway/evil/gw2/http".into()], None, "2025-01");
        let grab = route("ingress/evil/grab/a.example.com/", vec![], Some("a.example.com"), "2025-06");
        let new = route("ingress/web/new/new.example.com/", vec![], Some("new.example.com"), "2026-03");
        let set = RouteSet {
            // (The same chain on both, or the older listener's would win.)
            listeners: vec![
                listener("web/gw", Some(policy.clone())),
                listener("evil/gw2", Some(ClientIp { policy: "evil/same".into(), ..policy })),
            ],
            routes: [site, catchall, grab, new].into_iter().map(Arc::new).collect(),
            backends: vec![Backend { name: "web/app:80".into(), endpoints: vec![], https: false }],
            ..RouteSet::default()
        };
        let file = |gw_extra: &str| {
            toml::from_str::<Config>(&format!(
                "[[listener]]\nname = \"gw\"\nbind = \"127.0.0.1:0\"\ngateway_ports = [80]\n{gw_extra}\n\
                 [[listener]]\nname = \"ing\"\nbind = \"127.0.0.1:0\"\n\n\
                 [client_ip]\ntrusted = [\"192.0.2.0/24\"]\n"
            ))
            .unwrap()
        };
        let reasons = |problems: &[Problem]| {
            let mut v: Vec<String> = problems.iter().map(|p| format!("{} {:?}", p.route, p.reason)).collect();
            v.sort();
            v
        };

        // Default (`ingress = true`): the documented sharing rules apply.
        let (_, problems, _) = compose_checked(file(""), Some(&set));
        let got = reasons(&problems);
        assert!(got.iter().any(|p| p.starts_with("httproute/web/site/0/0 FileChainConflict")), "{got:?}");

        // `ingress = false`: the Gateway bind takes the policy's chain
        // whatever Ingresses exist, no Ingress route runs there and no
        // host changes hands; the Ingresses are served on `ing`.
        let (c, problems, _) = compose_checked(file("ingress = false\n"), Some(&set));
        assert!(problems.is_empty(), "{:?}", reasons(&problems));
        assert_eq!(c.listeners[0].chain.as_ref().map(|ch| ch.policy.as_str()), Some("web/lb"));
        assert!(c.listeners[1].chain.is_none());
        let snap = crate::snapshot::Snapshot::build(c).unwrap();
        let at = |l: &str, host: &str| snap.routes.find(l, host, "/login").map(|r| r.name.to_string());
        assert_eq!(at("gw", "a.example.com").as_deref(), Some("httproute/web/site/0/0"));
        assert_eq!(at("gw", "new.example.com").as_deref(), Some("httproute/evil/catchall/0/0"));
        assert_eq!(at("ing", "a.example.com").as_deref(), Some("ingress/evil/grab/a.example.com/"));
        assert_eq!(at("ing", "new.example.com").as_deref(), Some("ingress/web/new/new.example.com/"));

        // `gateways = ["web/gw"]`: the other Gateway's listener is not
        // served on that bind, and the reason names both.
        let (c, problems, _) = compose_checked(file("ingress = false\ngateways = [\"web/gw\"]\n"), Some(&set));
        let got = reasons(&problems);
        assert_eq!(got.len(), 1, "{got:?}");
        assert!(got[0].starts_with("httproute/evil/catchall/0/0 GatewayListener"), "{got:?}");
        assert!(problems[0].reason.to_string().contains("not Gateway evil/gw2's"), "{}", problems[0].reason);
        let snap = crate::snapshot::Snapshot::build(c).unwrap();
        assert!(snap.routes.find("gw", "new.example.com", "/").is_none());
        let b = &binds(&file("ingress = false\ngateways = [\"web/*\"]\n"))[0];
        assert!(b.admits("web/gw") && b.admits("web/other") && !b.admits("evil/gw2") && !b.ingress);

        // Every bind `ingress = false`: Ingress routes are reported, not
        // served anywhere.
        let mut none = file("ingress = false\n");
        none.listeners[1].ingress = false;
        let (_, problems, _) = compose_checked(none, Some(&set));
        let got = reasons(&problems);
        assert_eq!(got.iter().filter(|p| p.ends_with("NoIngressListener")).count(), 2, "{got:?}");

        // A bad `gateways` entry is a configuration error naming it.
        let mut bad = file("gateways = [\"gw\"]\n");
        bad.listeners[1].gateways = vec!["Web/gw".into()];
        let errs = bad.validate();
        assert!(errs.iter().any(|e| e.contains("listener[0] `gw`.gateways[0]") && e.contains("`gw`")), "{errs:?}");
        assert!(errs.iter().any(|e| e.contains("listener[1] `ing`.gateways[0]")), "{errs:?}");
    }
    /// The feedback for status: a Gateway listener whose policy the file's
    /// chain overrules (with the policy), and per HTTPRoute and parent how
    /// many of its routes are served and why the others are not; nothing
    /// once the cause is gone, and nothing for what the controller knows.
    #[test]
    fn feedback_names_what_is_not_served_and_why() {
        let policy = ClientIp {
            policy: "web/lb".into(),
            proxy_protocol: ProxyMode::Off,
            proxy_protocol_from: vec![],
            trusted: vec!["127.0.0.0/8".into()],
            sources: vec!["xff".into()],
            strategy: "rightmost-untrusted".into(),
            fail_closed: false,
            forward: Forward::default(),
        };
        let route = |name: &str, origin: &str, listeners: Vec<String>, host: &str, created: &str| Route {
            created: created.into(),
            ..app_route(name, origin, listeners, Some(host))
        };
        let listener = |gw: &str, client_ip: Option<ClientIp>| ListenerSpec {
            name: format!("gateway/{gw}/http"),
            gateway: gw.into(),
            port: 80,
            protocol: Protocol::Http,
            hostname: None,
            certs: vec![],
            client_ip,
            not_on: Vec::new(),
        };
        let on = |gw: &str| vec![format!("gateway/{gw}/http")];
        let set = |policy: Option<ClientIp>, with_ingress: bool| {
            let mut routes = vec![
                route("httproute/web/site/0/0", "httproute/web/site", on("web/gw"), "a.example.com", "2026-02"),
                route(
                    "httproute/evil/grab/0/0/b.example.com",
                    "httproute/evil/grab",
                    on("infra/gw"),
                    "b.example.com",
                    "2026-03",
                ),
                route(
                    "httproute/evil/grab/0/0/c.example.com",
                    "httproute/evil/grab",
                    on("infra/gw"),
                    "c.example.com",
                    "2026-03",
                ),
            ];
            if with_ingress {
                let mut i = route("ingress/web/b/b.example.com/", "ingress/web/b", vec![], "b.example.com", "2026-01");
                i.path = PathMatch::Prefix("/".into());
                routes.push(i);
            }
            RouteSet {
                listeners: vec![listener("web/gw", policy), listener("infra/gw", None)],
                routes: routes.into_iter().map(Arc::new).collect(),
                backends: vec![Backend { name: "web/app:80".into(), endpoints: vec![], https: false }],
                ..RouteSet::default()
            }
        };
        // Two Gateways on one bind, each on a port of its own.
        let file: Config = toml::from_str(
            "[[listener]]\nname = \"a\"\nbind = \"127.0.0.1:0\"\ngateway_ports = [80]\n\n\
             [client_ip]\ntrusted = [\"192.0.2.0/24\"]\n",
        )
        .unwrap();
        let mut reported = Reported::default();
        let s = set(Some(policy.clone()), true);
        compose_logged(file.clone(), Some(&s), &mut reported, &mut Conversions::default());
        let fb = reported.feedback().clone();
        let l = &fb.listeners["gateway/web/gw/http"];
        assert_eq!(l.policy.as_deref(), Some("web/lb"));
        assert!(l.message.contains("ClientIPPolicy web/lb"), "{}", l.message);
        assert!(!fb.listeners.contains_key("gateway/infra/gw/http"));
        let site = &fb.routes["web/site"]["gateway/web/gw"];
        assert_eq!((site.served, site.unserved, site.host_owned), (0, 1, false));
        let grab = &fb.routes["evil/grab"]["gateway/infra/gw"];
        assert_eq!((grab.served, grab.unserved, grab.host_owned), (1, 1, true));
        assert!(grab.reasons[0].contains("owned by Ingress web/b"), "{:?}", grab.reasons);
        // No Ingress and no policy: nothing to say.
        compose_logged(file, Some(&set(None, false)), &mut reported, &mut Conversions::default());
        assert!(reported.feedback().is_empty(), "{:?}", reported.feedback());
    }

    /// Review 13d M1: every reason reaches the feedback, each parent is
    /// counted once however the route's listeners interleave, and a
    /// `scope: Global` rate limit without `[rate_limit_store]` names its
    /// ClientAccessPolicy on each Gateway of the route.
    #[test]
    fn feedback_counts_each_parent_once_and_names_a_global_rate_limit() {
        let listener = |gw: &str, name: &str| ListenerSpec {
            name: format!("gateway/{gw}/{name}"),
            gateway: gw.into(),
            port: 80,
            protocol: Protocol::Http,
            hostname: None,
            certs: vec![],
            client_ip: None,
            not_on: Vec::new(),
        };
        let interleaved =
            vec!["gateway/web/gw/a".to_owned(), "gateway/web/gw2/http".to_owned(), "gateway/web/gw/b".to_owned()];
        let mut route = app_route("httproute/web/glob/0/0", "httproute/web/glob", interleaved, Some("g.example.com"));
        route.access = Some(Arc::new(Access {
            policy: "web/glob".into(),
            allow: None,
            deny: vec![],
            rate_limit: Some(RateLimit {
                per_second: 10.0,
                burst: 10.0,
                ipv6_prefix_length: 64,
                global: true,
                scope: "clientaccesspolicy:web/glob".into(),
            }),
            gateway_rate_limit: None,
        }));
        let set = RouteSet {
            listeners: vec![listener("web/gw", "a"), listener("web/gw2", "http"), listener("web/gw", "b")],
            routes: vec![Arc::new(route)],
            backends: vec![Backend { name: "web/app:80".into(), endpoints: vec![], https: false }],
            ..RouteSet::default()
        };
        let file: Config =
            toml::from_str("[[listener]]\nname = \"a\"\nbind = \"127.0.0.1:0\"\ngateway_ports = [80]\n").unwrap();
        let mut reported = Reported::default();
        compose_logged(file, Some(&set), &mut reported, &mut Conversions::default());
        let fb = reported.feedback();
        let gw = &fb.routes["web/glob"]["gateway/web/gw"];
        assert_eq!((gw.served, gw.unserved, gw.host_owned, gw.invalid), (0, 1, false, false), "{fb:?}");
        assert!(gw.reasons[0].contains("rate_limit_store"), "{:?}", gw.reasons);
        assert_eq!(fb.routes["web/glob"]["gateway/web/gw2"].unserved, 1);
        let on: Vec<&String> = fb.access_policies["web/glob"].keys().collect();
        assert_eq!(on, ["web/gw", "web/gw2"]);
        assert!(fb.access_policies["web/glob"]["web/gw"].contains("HTTPRoute web/glob"), "{fb:?}");
    }

    /// Review 14 F1: a Gateway listener whose ClientIPPolicy the file's
    /// chain overrules is taken off the binds that serve Ingress or file
    /// routes only: on a bind reserved for its Gateway (`ingress = false`)
    /// it stays served, with its policy, and the feedback says where it is
    /// served; served nowhere, it is unserved as before.
    #[test]
    fn a_file_chain_conflict_takes_a_listener_off_only_the_binds_serving_ingresses() {
        let policy = ClientIp {
            policy: "web/lb".into(),
            proxy_protocol: ProxyMode::Off,
            proxy_protocol_from: vec![],
            trusted: vec!["127.0.0.0/8".into()],
            sources: vec!["xff".into()],
            strategy: "rightmost-untrusted".into(),
            fail_closed: false,
            forward: Forward::default(),
        };
        let site = app_route(
            "httproute/web/site/0/0",
            "httproute/web/site",
            vec!["gateway/web/gw/http".into()],
            Some("a.example.com"),
        );
        let mine = Route {
            path: PathMatch::Prefix("/".into()),
            ..app_route("ingress/evil/mine/evil.example.com/", "ingress/evil/mine", vec![], Some("evil.example.com"))
        };
        let set = RouteSet {
            listeners: vec![ListenerSpec {
                name: "gateway/web/gw/http".into(),
                gateway: "web/gw".into(),
                port: 80,
                protocol: Protocol::Http,
                hostname: None,
                certs: vec![],
                client_ip: Some(policy),
                not_on: Vec::new(),
            }],
            routes: [site, mine].into_iter().map(Arc::new).collect(),
            backends: vec![Backend { name: "web/app:80".into(), endpoints: vec![], https: false }],
            ..RouteSet::default()
        };
        let file = |pub_extra: &str| {
            toml::from_str::<Config>(&format!(
                "[[listener]]\nname = \"pub\"\nbind = \"127.0.0.1:0\"\ngateway_ports = [80]\n{pub_extra}\n\
                 [[listener]]\nname = \"shared\"\nbind = \"127.0.0.1:0\"\ngateway_ports = [80]\n\n\
                 [client_ip]\ntrusted = [\"192.0.2.0/24\"]\n"
            ))
            .unwrap()
        };
        let reserved = file("ingress = false\ngateways = [\"web/gw\"]\n");
        let (c, problems, warnings) = compose_checked(reserved.clone(), Some(&set));
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert_eq!(warnings[0].route, "httproute/web/site/0/0");
        assert!(warnings[0].message.contains("`shared` also serves Ingress"), "{}", warnings[0].message);
        assert_eq!(c.listeners[0].chain.as_ref().map(|ch| ch.policy.as_str()), Some("web/lb"));
        assert!(c.listeners[1].chain.is_none(), "the file's chain stays where the Ingress is");
        let snap = crate::snapshot::Snapshot::build(c).unwrap();
        let at = |l: &str, host: &str| snap.routes.find(l, host, "/").map(|r| r.name.to_string());
        assert_eq!(at("pub", "a.example.com").as_deref(), Some("httproute/web/site/0/0"));
        assert_eq!(at("shared", "a.example.com"), None);
        assert_eq!(at("shared", "evil.example.com").as_deref(), Some("ingress/evil/mine/evil.example.com/"));
        assert_eq!(at("pub", "evil.example.com"), None);
        assert_ne!(snap.chain("pub").resolver.trusted, snap.chain("shared").resolver.trusted);
        assert_eq!(snap.chain("shared").resolver.trusted, snap.chain("no-such-listener").resolver.trusted);
        let mut reported = Reported::default();
        compose_logged(reserved, Some(&set), &mut reported, &mut Conversions::default());
        let l = &reported.feedback().listeners["gateway/web/gw/http"];
        assert_eq!(l.served_on, ["pub"]);
        assert_eq!(l.policy.as_deref(), Some("web/lb"));
        assert!(l.message.contains("`shared`") && !l.message.contains("`pub`"), "{}", l.message);
        assert!(reported.feedback().routes.is_empty(), "{:?}", reported.feedback().routes);

        // Both binds serve Ingresses: served nowhere, as before.
        let (c, problems, _) = compose_checked(file(""), Some(&set));
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(
            matches!(&problems[0].reason, Unserved::FileChainConflict { file, .. } if file == "pub"),
            "{problems:?}"
        );
        assert!(c.listeners.iter().all(|l| l.chain.is_none()));
        let mut reported = Reported::default();
        compose_logged(file(""), Some(&set), &mut reported, &mut Conversions::default());
        let l = &reported.feedback().listeners["gateway/web/gw/http"];
        assert!(l.served_on.is_empty());
        assert!(l.message.contains("`pub`") && l.message.contains("`shared`"), "{}", l.message);
    }

    /// Review 14 F3: an HTTPRoute older than an Ingress naming its host
    /// takes the host from the Ingress only on the binds where it is
    /// served; on a bind where no Gateway route serves the host the Ingress
    /// keeps it — and where a newer Gateway route serves it there, the
    /// Ingress is the older one and keeps it against that route.
    #[test]
    fn an_httproute_owns_a_host_only_on_the_binds_it_is_served_on() {
        let route = |name: &str, origin: &str, listener: Option<&str>, created: &str| {
            let path =
                if listener.is_none() { PathMatch::Prefix("/".into()) } else { PathMatch::SegmentPrefix("/".into()) };
            let listeners = listener.map(|l| vec![format!("gateway/evil/gw/{l}")]).unwrap_or_default();
            Route { created: created.into(), path, ..app_route(name, origin, listeners, Some("shop.example.com")) }
        };
        let listener = |name: &str, port: u16| ListenerSpec {
            name: format!("gateway/evil/gw/{name}"),
            gateway: "evil/gw".into(),
            port,
            protocol: Protocol::Http,
            hostname: None,
            certs: vec![],
            client_ip: None,
            not_on: Vec::new(),
        };
        let grab = route("httproute/evil/grab/0/0", "httproute/evil/grab", Some("http"), "2025-01");
        let shop = route("ingress/web/shop/shop.example.com/", "ingress/web/shop", None, "2026-01");
        let late = route("httproute/evil/late/0/0", "httproute/evil/late", Some("alt"), "2027-01");
        let set = |routes: Vec<Route>| RouteSet {
            listeners: vec![listener("http", 80), listener("alt", 8080)],
            routes: routes.into_iter().map(Arc::new).collect(),
            backends: vec![Backend { name: "web/app:80".into(), endpoints: vec![], https: false }],
            ..RouteSet::default()
        };
        let file = |ing_ports: &str| {
            toml::from_str::<Config>(&format!(
                "[[listener]]\nname = \"http\"\nbind = \"127.0.0.1:0\"\ngateway_ports = [80]\n\n\
                 [[listener]]\nname = \"ing\"\nbind = \"127.0.0.1:0\"\n{ing_ports}\n"
            ))
            .unwrap()
        };
        let grab_name = "httproute/evil/grab/0/0";
        let shop_name = "ingress/web/shop/shop.example.com/";
        // The HTTPRoute is served on `http` only: the Ingress keeps `ing`.
        let (c, problems, warnings) = compose_checked(file(""), Some(&set(vec![grab.clone(), shop.clone()])));
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        let w = &warnings[0];
        assert_eq!(w.route, shop_name);
        assert!(
            w.message.starts_with("not served on [[listener]] http ")
                && w.message.contains("owned by HTTPRoute evil/grab (older)")
                && w.message.ends_with("still served on [[listener]] ing"),
            "{}",
            w.message
        );
        let snap = crate::snapshot::Snapshot::build(c).unwrap();
        let at = |snap: &crate::snapshot::Snapshot, l: &str| {
            snap.routes.find(l, "shop.example.com", "/x").map(|r| r.name.to_string())
        };
        assert_eq!(at(&snap, "http").as_deref(), Some(grab_name));
        assert_eq!(at(&snap, "ing").as_deref(), Some(shop_name));

        // A newer HTTPRoute on `ing` (port 8080): the Ingress is older
        // there, so it keeps the host there and that route is not served.
        let (c, problems, _) =
            compose_checked(file("gateway_ports = [8080]\n"), Some(&set(vec![grab, shop.clone(), late])));
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(problems[0].route, "httproute/evil/late/0/0");
        assert_eq!(
            problems[0].reason,
            Unserved::HostOwnedByIngress { host: "shop.example.com".into(), by: "ingress/web/shop".into() }
        );
        let snap = crate::snapshot::Snapshot::build(c).unwrap();
        assert_eq!(at(&snap, "http").as_deref(), Some(grab_name));
        assert_eq!(at(&snap, "ing").as_deref(), Some(shop_name));

        // The same with host-less routes: the older one takes the host on
        // `http`, the newer one leaves it out on `ing` (its only bind) and
        // keeps its other hosts.
        let hostless = |name: &str, listener: &str, created: &str| Route {
            created: created.into(),
            ..app_route(name, name.trim_end_matches("/0/0"), vec![format!("gateway/evil/gw/{listener}")], None)
        };
        let all = hostless("httproute/evil/all/0/0", "http", "2025-01");
        let rest = hostless("httproute/evil/rest/0/0", "alt", "2027-01");
        let (c, problems, warnings) =
            compose_checked(file("gateway_ports = [8080]\n"), Some(&set(vec![all, shop, rest])));
        assert!(problems.is_empty(), "{problems:?}");
        let mut said: Vec<(&str, &str)> = warnings.iter().map(|w| (w.route.as_str(), w.message.as_str())).collect();
        said.sort_unstable();
        assert_eq!(said.len(), 2, "{said:?}");
        assert!(said[0].0 == "httproute/evil/rest/0/0" && said[0].1.starts_with("host shop.example.com left out: "));
        assert!(said[1].0 == shop_name && said[1].1.contains("owned by HTTPRoute evil/all"), "{said:?}");
        let snap = crate::snapshot::Snapshot::build(c).unwrap();
        assert_eq!(at(&snap, "http").as_deref(), Some("httproute/evil/all/0/0"));
        assert_eq!(at(&snap, "ing").as_deref(), Some(shop_name));
        let other = snap.routes.find("ing", "other.example.com", "/").map(|r| r.name.to_string());
        assert_eq!(other.as_deref(), Some("httproute/evil/rest/0/0"));
    }
}
