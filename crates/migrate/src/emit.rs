//! Plans to objects: the Gateway (an `http` listener and one HTTPS listener
//! per TLS host), ReferenceGrants for certificates in other namespaces,
//! HTTPRoutes (one per Ingress and host), and the client-IP and access
//! policies of the chosen data plane.
//!
//! Invariants: names are derived from the Ingress's name and host only, so
//! the same input always gives the same objects; canary Ingresses are
//! folded into their main Ingress's rules; access policies target every
//! serving route of their Ingress (not the HTTPS redirects, which
//! ingress-nginx answers before its limits and lists run) and key on the
//! client the Gateway's client-IP policy resolved.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{json, Value};

use crate::ingress::{Backend, Denied, PathKind, PathRule, Plan, Rewrite};
use crate::report::{Entry, Report, Status};
use crate::setup::ClientIp;
use crate::Target;

const GW_GROUP: &str = "gateway.networking.k8s.io";
/// Gateway API limits (v1.6.1 CRDs).
const MAX_RULES: usize = 16;
const MAX_TARGETS: usize = 16;
const MAX_LISTENERS: usize = 64;
const MAX_HOSTNAMES: usize = 16;

/// The Gateway the output attaches to.
#[derive(Clone, Debug)]
pub struct Gateway {
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// gatewayClassName.
    pub class: String,
}

/// A DNS-label-safe slug of a host (`*.example.com` → `wildcard-example-com`).
pub fn slug(host: &str) -> String {
    let s: String = host
        .replace("*.", "wildcard.")
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '-' })
        .collect();
    let s = s.trim_matches('-').to_owned();
    // Listener names are at most 253; keep room for a prefix.
    s.chars().take(200).collect()
}

/// [`slug`] of `host`, made unique among `hosts`: hosts that collapse to the
/// same slug (`a-b.example`, `a.b.example`) each get a suffix of a stable
/// hash (FNV-1a) of the host itself, so names stay deterministic and never
/// collide (a duplicate listener name makes the Gateway invalid; a
/// duplicate route name makes one route replace the other).
fn unique_slug<'h>(host: &str, hosts: impl IntoIterator<Item = &'h str>) -> String {
    let s = slug(host);
    if hosts.into_iter().any(|o| o != host && slug(o) == s) {
        format!("{s}-{:08x}", fnv(host))
    } else {
        s
    }
}

/// FNV-1a of `s`: a short, stable suffix for names that would collide.
pub(crate) fn fnv(s: &str) -> u32 {
    s.bytes().fold(0x811c_9dc5_u32, |h, b| (h ^ u32::from(b)).wrapping_mul(0x0100_0193))
}

/// Longest object name (a DNS-1123 subdomain: metadata.name of every kind
/// emitted).
pub const MAX_NAME: usize = 253;

/// `name`, cut to [`MAX_NAME`] when longer: the head, then `-` and a stable
/// hash (FNV-1a) of the whole name, so long names stay distinct and the
/// same on every run.
pub fn fit(name: &str) -> String {
    if name.len() <= MAX_NAME {
        return name.to_owned();
    }
    // Generated names are ASCII (Ingress names, host slugs, digits, `-`).
    let head: String = name.chars().take(MAX_NAME - 9).collect();
    format!("{}-{:08x}", head.trim_end_matches(['-', '.']), fnv(name))
}

/// HTTPRoute names already given, per namespace: names built from an
/// Ingress's name and a host slug can still meet across Ingresses (`a` +
/// `b-c.x` and `a-b` + `c.x` both give `a-b-c-x`); the later one (in the
/// sorted order of the plans, so deterministically) gets a hash of what it
/// routes (`identity`) appended instead of replacing the other.
#[derive(Default)]
struct Names(std::collections::BTreeSet<(String, String)>);

impl Names {
    fn claim(&mut self, ns: &str, name: &str, identity: &str) -> String {
        let mut candidate = fit(name);
        let mut salt = 0u32;
        while !self.0.insert((ns.to_owned(), candidate.clone())) {
            candidate = fit(&format!("{name}-{:08x}", fnv(&format!("{identity}#{salt}"))));
            salt += 1;
        }
        candidate
    }
}

fn meta(name: &str, ns: &str) -> Value {
    json!({"name": name, "namespace": ns, "labels": {"app.kubernetes.io/managed-by": "realip-migrate"}})
}

fn backend_ref(b: &Backend, weight: Option<u32>) -> Value {
    let mut v = json!({"group": "", "kind": "Service", "name": b.service, "port": b.port});
    if let Some(w) = weight {
        v["weight"] = json!(w);
    }
    v
}

fn path_match(p: &PathRule) -> Value {
    kind_match(p.kind, &p.value)
}

fn kind_match(kind: PathKind, value: &str) -> Value {
    let ty = match kind {
        PathKind::Exact => "Exact",
        PathKind::Prefix => "PathPrefix",
        PathKind::Regex => "RegularExpression",
    };
    json!({"type": ty, "value": value})
}

fn rewrite_filter(r: &Rewrite) -> Value {
    let path = match r {
        Rewrite::Full(p) => json!({"type": "ReplaceFullPath", "replaceFullPath": p}),
        Rewrite::Prefix(p) => json!({"type": "ReplacePrefixMatch", "replacePrefixMatch": p}),
    };
    json!({"type": "URLRewrite", "urlRewrite": {"path": path}})
}

/// The canary of one (namespace, host, path): backend and settings.
/// Keyed as ingress-nginx's mergeAlternativeBackends matches a canary to its
/// main location: host, path as written and pathType.
type Canaries<'p> = BTreeMap<(String, Option<String>, String, String), (Backend, &'p crate::ingress::Canary)>;

/// The app-root redirect rule: `/` exactly → 302 to the root.
fn app_root_rule(root: &str) -> Value {
    json!({"matches": [{"path": {"type": "Exact", "value": "/"}}], "filters": [{"type": "RequestRedirect",
        "requestRedirect": {"statusCode": 302, "path": {"type": "ReplaceFullPath", "replaceFullPath": root}}}]})
}

/// HTTPRoute rules for one host of one Ingress (the app-root redirect
/// among them when `app_root_here`).
fn rules(
    plan: &Plan<'_>,
    host: Option<&String>,
    paths: &[PathRule],
    canaries: &Canaries<'_>,
    app_root_here: bool,
) -> Vec<Value> {
    let mut out = Vec::new();
    if let Some(r) = &plan.redirect {
        let mut rr = json!({"statusCode": r.code, "path": {"type": "ReplaceFullPath", "replaceFullPath": r.path}});
        if let Some(s) = &r.scheme {
            rr["scheme"] = json!(s);
        }
        if let Some(h) = &r.hostname {
            rr["hostname"] = json!(h);
        }
        if let Some(p) = r.port {
            rr["port"] = json!(p);
        }
        for p in paths {
            out.push(json!({"matches": [{"path": path_match(p)}], "filters": [{"type": "RequestRedirect", "requestRedirect": rr}]}));
        }
        return out;
    }
    if let Some(root) = plan.app_root.as_deref().filter(|_| app_root_here) {
        out.push(app_root_rule(root));
    }
    for p in paths {
        let filters: Vec<Value> = p.rewrite.iter().map(rewrite_filter).collect();
        let with_filters = |mut rule: Value| {
            if !filters.is_empty() {
                rule["filters"] = json!(filters);
            }
            rule
        };
        let key = (plan.obj.namespace.clone(), host.cloned(), p.raw.clone(), p.path_type.clone());
        if let Some((cb, c)) = canaries.get(&key) {
            if let Some(h) = &c.header {
                let header_rule = |value: Value, be: &Backend| {
                    with_filters(
                        json!({"matches": [{"path": path_match(p), "headers": [value]}], "backendRefs": [backend_ref(be, None)]}),
                    )
                };
                if let Some(v) = &c.header_value {
                    out.push(header_rule(json!({"type": "Exact", "name": h, "value": v}), cb));
                } else if let Some(pat) = &c.header_pattern {
                    out.push(header_rule(json!({"type": "RegularExpression", "name": h, "value": pat}), cb));
                } else {
                    out.push(header_rule(json!({"type": "Exact", "name": h, "value": "always"}), cb));
                    out.push(header_rule(json!({"type": "Exact", "name": h, "value": "never"}), &p.backend));
                }
            }
            let refs = match c.weight {
                Some(w) => {
                    let (main, canary) = weights(w, c.total);
                    vec![backend_ref(&p.backend, Some(main)), backend_ref(cb, Some(canary))]
                }
                None => vec![backend_ref(&p.backend, None)],
            };
            out.push(with_filters(json!({"matches": [{"path": path_match(p)}], "backendRefs": refs})));
        } else {
            out.push(with_filters(
                json!({"matches": [{"path": path_match(p)}], "backendRefs": [backend_ref(&p.backend, None)]}),
            ));
        }
    }
    out
}

/// The main and canary backendRef weights of a canary weight `w` of
/// `total`: `total − w` and `w` (w at most total), scaled down to the
/// HTTPRoute CRD's largest weight (1,000,000) keeping the canary's share
/// to a millionth (review 28: a larger canary-weight-total made the API
/// server refuse the whole route). A share strictly between none and all
/// stays so: it never rounds to 0 or to 1,000,000.
pub fn weights(w: u64, total: u64) -> (u32, u32) {
    const MAX: u128 = 1_000_000;
    let w = w.min(total);
    let canary = if u128::from(total) <= MAX {
        u128::from(w)
    } else {
        let scaled = (u128::from(w) * MAX + u128::from(total) / 2) / u128::from(total);
        if w == 0 || w == total {
            scaled
        } else {
            scaled.clamp(1, MAX - 1)
        }
    };
    let main = if u128::from(total) <= MAX { u128::from(total - w) } else { MAX - canary };
    (u32::try_from(main).unwrap_or(u32::MAX), u32::try_from(canary).unwrap_or(u32::MAX))
}

/// Everything emitted, before sorting.
#[derive(Debug, Default)]
pub struct Emitted {
    /// The objects.
    pub objects: Vec<Value>,
}

/// Builds the output objects from the plans.
#[allow(clippy::too_many_lines)] // the Gateway, routes and both policy families, in output order
pub fn emit(gw: &Gateway, ci: &ClientIp, plans: &[Plan<'_>], target: Target, report: &mut Report) -> Emitted {
    let mut out = Emitted::default();
    let parent = |section: Option<&str>| {
        let mut p = json!({"group": GW_GROUP, "kind": "Gateway", "namespace": gw.namespace, "name": gw.name});
        if let Some(s) = section {
            p["sectionName"] = json!(s);
        }
        p
    };
    // Canaries, keyed by the main Ingress's namespace, host and path.
    let mut canaries: Canaries<'_> = BTreeMap::new();
    for plan in plans {
        let Some(c) = &plan.canary else { continue };
        let mut folded = false;
        let mut redirected = false;
        for (host, paths) in &plan.hosts {
            for p in paths {
                let key = (plan.obj.namespace.clone(), host.clone(), p.raw.clone(), p.path_type.clone());
                let main = plans.iter().find(|m| {
                    m.canary.is_none()
                        && m.obj.namespace == plan.obj.namespace
                        && m.hosts
                            .get(host)
                            .is_some_and(|ps| ps.iter().any(|q| q.raw == p.raw && q.path_type == p.path_type))
                });
                // A main Ingress answering every request with its redirect
                // (nginx's rewrite phase) never reaches the balancer that
                // picks the canary (review 31 M-2).
                if main.is_some_and(|m| m.redirect.is_some()) {
                    redirected = true;
                    continue;
                }
                if main.is_some() {
                    canaries.insert(key, (p.backend.clone(), c));
                    folded = true;
                } else {
                    report.entries.push(Entry {
                        object: plan.obj.id(),
                        file: plan.obj.source.file.clone(),
                        line: plan.obj.source.line,
                        key: format!("canary path {}{}", host.as_deref().unwrap_or("*"), p.raw),
                        value: String::new(),
                        status: Status::NotConverted,
                        to: String::new(),
                        why: if plans.iter().any(|m| {
                            m.canary.is_none()
                                && m.obj.namespace == plan.obj.namespace
                                && m.denied.get(host).is_some_and(|ds| ds.iter().any(|d| d.raw == p.raw && d.path_type == p.path_type))
                        }) {
                            "its main Ingress's location is emitted deny-all (left out, see its entries): the canary's share of it is refused with it".into()
                        } else {
                            "no main (non-canary) Ingress in the namespace serves this host, path and pathType (ingress-nginx matches all three)".into()
                        },
                    });
                }
            }
        }
        if redirected && !folded {
            for e in report.entries.iter_mut().filter(|e| e.object == plan.obj.id() && e.key.starts_with("canary")) {
                if matches!(e.status, Status::Converted | Status::Changed) {
                    e.to = String::new();
                    e.status = Status::Ignored;
                    e.why = "its main Ingress answers every request with its redirect (permanent-redirect / temporal-redirect) in nginx's rewrite phase, before the balancer picks a canary: ingress-nginx sent nothing to the canary, nor does the output".into();
                }
            }
        } else if !folded {
            // Its weights and header matches are in no route: say so, not "converted -> HTTPRoute …".
            for e in report.entries.iter_mut().filter(|e| e.object == plan.obj.id()) {
                let names_route = e.to.starts_with("HTTPRoute ") || e.to.starts_with("the main Ingress's");
                if names_route && matches!(e.status, Status::Converted | Status::Changed) {
                    e.to = String::new();
                    e.status = Status::Changed;
                    e.why = format!("not in the output: no path of this canary is folded into an open route of its main Ingress (see its canary path entries); in ingress-nginx: {}", e.why);
                }
            }
        }
    }
    // TLS listeners: first Ingress (in name order) to claim a host wins.
    let mut tls_hosts: BTreeMap<String, (String, String, String)> = BTreeMap::new(); // host -> (ns, secret, ingress)
    let mut default_cert: Option<(String, String)> = None;
    for plan in plans.iter().filter(|p| p.canary.is_none()) {
        for (hosts, secret) in &plan.tls {
            let Some(secret) = secret else {
                report.entries.push(Entry {
                    object: plan.obj.id(),
                    file: plan.obj.source.file.clone(),
                    line: plan.obj.line_of(&["spec", "tls"]),
                    key: "spec.tls".into(),
                    value: hosts.join(","),
                    status: Status::NotConverted,
                    to: String::new(),
                    why: "no secretName: ingress-nginx serves its default certificate; give the HTTPS listener a certificateRef by hand".into(),
                });
                continue;
            };
            if hosts.is_empty() {
                default_cert.get_or_insert((plan.obj.namespace.clone(), secret.clone()));
            }
            for h in hosts {
                let claim = (plan.obj.namespace.clone(), secret.clone(), plan.obj.id());
                match tls_hosts.get(h) {
                    Some((ns, s, by)) if (ns, s) != (&claim.0, &claim.1) => report.entries.push(Entry {
                        object: plan.obj.id(),
                        file: plan.obj.source.file.clone(),
                        line: plan.obj.line_of(&["spec", "tls"]),
                        key: format!("spec.tls {h}"),
                        value: secret.clone(),
                        status: Status::Changed,
                        to: format!("Gateway listener https-{}", slug(h)),
                        why: format!("{by} already gives {h} the certificate {ns}/{s}: one HTTPS listener per host, so that one is used"),
                    }),
                    Some(_) => {}
                    None => {
                        tls_hosts.insert(h.clone(), claim);
                    }
                }
            }
        }
    }
    let mut listeners =
        vec![json!({"name": "http", "protocol": "HTTP", "port": 80, "allowedRoutes": {"namespaces": {"from": "All"}}})];
    let mut grants: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut cert_ref = |ns: &str, secret: &str| {
        if ns != gw.namespace {
            grants.entry(ns.to_owned()).or_default().push(secret.to_owned());
        }
        json!({"group": "", "kind": "Secret", "name": secret, "namespace": ns})
    };
    if let Some((ns, s)) = &default_cert {
        listeners.push(json!({"name": "https", "protocol": "HTTPS", "port": 443,
            "tls": {"mode": "Terminate", "certificateRefs": [cert_ref(ns, s)]}, "allowedRoutes": {"namespaces": {"from": "All"}}}));
    }
    let mut https_listener: BTreeMap<String, String> = BTreeMap::new();
    for (h, (ns, s, by)) in &tls_hosts {
        if listeners.len() >= MAX_LISTENERS {
            report.entries.push(Entry {
                object: by.clone(),
                file: String::new(),
                line: 0,
                key: format!("spec.tls {h}"),
                value: s.clone(),
                status: Status::NotConverted,
                to: String::new(),
                why: format!("a Gateway holds at most {MAX_LISTENERS} listeners: split the hosts over several Gateways (or a ListenerSet)"),
            });
            continue;
        }
        let name = format!("https-{}", unique_slug(h, tls_hosts.keys().map(String::as_str)));
        listeners.push(json!({"name": name, "protocol": "HTTPS", "port": 443, "hostname": h,
            "tls": {"mode": "Terminate", "certificateRefs": [cert_ref(ns, s)]}, "allowedRoutes": {"namespaces": {"from": "All"}}}));
        https_listener.insert(h.clone(), name);
    }
    out.objects.push(
        json!({"apiVersion": format!("{GW_GROUP}/v1"), "kind": "Gateway", "metadata": meta(&gw.name, &gw.namespace),
        "spec": {"gatewayClassName": gw.class, "listeners": listeners}}),
    );
    for (ns, mut secrets) in grants {
        secrets.sort();
        secrets.dedup();
        // The CRD's `to` holds at most 16 (review 33 H1: 17 TLS Ingresses
        // in a namespace made a grant the API server refuses).
        for (i, chunk) in secrets.chunks(16).enumerate() {
            let to: Vec<Value> = chunk.iter().map(|s| json!({"group": "", "kind": "Secret", "name": s})).collect();
            let base = format!("{}-{}-certificates", gw.namespace, gw.name);
            let name = if i == 0 { base } else { format!("{base}-{}", i + 1) };
            out.objects.push(json!({"apiVersion": format!("{GW_GROUP}/v1beta1"), "kind": "ReferenceGrant",
                "metadata": meta(&name, &ns),
                "spec": {"from": [{"group": GW_GROUP, "kind": "Gateway", "namespace": gw.namespace}], "to": to}}));
        }
    }
    // Every Exact path of a host, of every Ingress.
    let exact_paths: BTreeSet<(Option<String>, String)> = plans
        .iter()
        .filter(|p| p.canary.is_none())
        .flat_map(|p| p.hosts.iter().flat_map(|(h, ps)| ps.iter().map(move |r| (h, r))))
        .filter(|(_, r)| r.kind == PathKind::Exact)
        .map(|(h, r)| (h.clone(), r.raw.clone()))
        .collect();
    // Routes, per Ingress and host.
    let mut names = Names::default();
    // Policy names, claimed like route names: a chunk `api-2` of Ingress
    // `api` and Ingress `api-2` must not replace each other's policy.
    let mut policy_names = Names::default();
    for plan in plans.iter().filter(|p| p.canary.is_none()) {
        let o = plan.obj;
        let mut route_names = Vec::new();
        let mut redirect_names = Vec::new();
        let single = plan.hosts.len() <= 1;
        let mut groups: Vec<(Option<String>, String, Vec<PathRule>)> = plan
            .hosts
            .iter()
            .map(|(h, ps)| {
                let name = if single {
                    o.name.clone()
                } else {
                    let all = plan.hosts.keys().filter_map(Option::as_deref);
                    format!("{}-{}", o.name, h.as_deref().map_or("any-host".into(), |h| unique_slug(h, all)))
                };
                (h.clone(), name, ps.clone())
            })
            .collect();
        if let Some(b) = &plan.default_backend {
            let p = PathRule {
                kind: PathKind::Prefix,
                value: "/".into(),
                backend: b.clone(),
                rewrite: None,
                raw: "/".into(),
                path_type: "Prefix".into(),
                slash_location: false,
            };
            groups.push((None, format!("{}-default-backend", o.name), vec![p]));
        }
        let limited = plan.allow.is_some() || !plan.deny.is_empty() || !plan.rates.is_empty();
        // nginx answers app-root's `if ($uri = /) { return 302 … }` in the
        // server's rewrite phase, before allow/deny and limit_req: under an
        // access list or a limit, the redirect is a route of its own that
        // no policy targets (review 29 H2).
        let app_root_apart = limited && plan.redirect.is_none();
        // permanent-/temporal-redirect is nginx's `return` in the location's
        // rewrite phase, before the HTTPS redirect (rewrite_by_lua): plain
        // HTTP gets it directly, so there is no HTTPS redirect to emit
        // (review 35 L-4).
        let own_redirect = plan.redirect.is_some();
        let mut serving: Vec<Serving> = Vec::new();
        for (host, name, paths) in groups {
            let tls = host.as_ref().is_some_and(|h| tls_listener(&https_listener, h).is_some());
            // force-ssl-redirect needs no certificate: with TLS ended at the
            // load balancer and X-Forwarded-Proto read, ingress-nginx
            // redirected what that header says is HTTP (review 30 M-2).
            let force = plan.force_ssl_redirect.unwrap_or(ci.force_ssl_redirect);
            let forced_by_header =
                force && host.is_some() && ci.tls_at_lb == Some(crate::setup::TlsAtLb::ForwardedProto);
            // Without a Service showing TLS ended at the load balancer,
            // use-forwarded-headers still made X-Forwarded-Proto the scheme
            // (review 33 H2: behind a CDN ending TLS, every request looped).
            let header_scheme = ci.forwarded_proto.then_some(crate::setup::TlsAtLb::ForwardedHeader);
            let redirect =
                ((tls && (plan.ssl_redirect.unwrap_or(ci.ssl_redirect) || force)) || forced_by_header) && !own_redirect;
            if force && !tls && !forced_by_header {
                report.entries.push(Entry {
                    object: o.id(),
                    file: o.source.file.clone(),
                    line: o.source.line,
                    key: format!("force-ssl-redirect {}", host.as_deref().unwrap_or("(any host)")),
                    value: "true".into(),
                    status: Status::NotConverted,
                    to: String::new(),
                    why: "the host has no TLS on the Gateway (TLS ends before it): an HTTPRoute cannot see the original scheme; add a rule matching X-Forwarded-Proto: http by hand if your load balancer sets it".into(),
                });
            }
            // The load balancer ends TLS and sends HTTPS to the http port
            // (review 29 H1): HTTPS arrives on the http listener, where the
            // redirect must not take it.
            // Envoy replaces X-Forwarded-Proto from a downstream it does not
            // trust (xff_num_trusted_hops 0, what Envoy Gateway's trusted
            // CIDRs leave) before routing, so no route of it can tell (review
            // 30 M-3): as with PROXY, no redirect there.
            let at_lb = ci.tls_at_lb.or(header_scheme).filter(|_| redirect).map(|how| match how {
                crate::setup::TlsAtLb::ForwardedProto if target == Target::EnvoyGateway => {
                    crate::setup::TlsAtLb::EnvoyForwardedProto
                }
                crate::setup::TlsAtLb::ForwardedHeader if target == Target::EnvoyGateway => {
                    crate::setup::TlsAtLb::EnvoyForwardedHeader
                }
                how => how,
            });
            if let Some(how) = at_lb {
                tls_at_lb_entry(plan, host.as_deref().unwrap_or_default(), how, report);
            }
            let tls_at = host.as_ref().and_then(|h| tls_listener(&https_listener, h));
            // ingress-nginx served what X-Forwarded-Proto says is HTTPS on its
            // http port: on the http listener those rules, with the header
            // match (outranking the redirect's), are a route of their own;
            // the HTTPS listener keeps the rules as they are, for clients
            // another Service sends there with TLS (review 31 H-1).
            let by_header =
                matches!(at_lb, Some(crate::setup::TlsAtLb::ForwardedProto | crate::setup::TlsAtLb::ForwardedHeader));
            // Envoy Gateway cannot tell the header's `https` apart: the
            // redirect stays (what plain HTTP needs), reported (review 35 H-2).
            let redirect = redirect
                && (at_lb.is_none() || by_header || at_lb == Some(crate::setup::TlsAtLb::EnvoyForwardedHeader));
            // nginx answers app-root's `if ($uri = /)` at server level,
            // before the HTTPS redirect too: with a redirect the app-root
            // rule is a route of its own on the http listener as well, the
            // scheme kept (`$scheme://$http_host`; review 35 H-1, L-4).
            let app_root_apart = app_root_apart || redirect;
            let all_rules = rules(plan, host.as_ref(), &paths, &canaries, !app_root_apart);
            let forwarded = by_header.then(|| with_forwarded_https(&all_rules)).filter(|r| !r.is_empty());
            let parents = match (tls_at, &forwarded) {
                (Some(l), _) if redirect => vec![parent(Some(l))],
                _ => vec![parent(None)],
            };
            // Without an HTTPS listener for the host (force-ssl-redirect),
            // the header-matched rules are its only rules.
            let (all_rules, forwarded) = match forwarded {
                Some(f) if tls_at.is_none() => (f, None),
                f => (all_rules, f),
            };
            // Routes of `rules` in chunks of MAX_RULES, named `route`, on `parents`.
            let chunked = |serving: &mut Vec<Serving>, route: String, parents: Value, rules: &[Value]| {
                for (i, chunk) in rules.chunks(MAX_RULES).enumerate() {
                    serving.push(Serving {
                        hosts: host.iter().cloned().collect(),
                        name: route.clone(),
                        i,
                        parents: parents.clone(),
                        rules: chunk.to_vec(),
                    });
                }
            };
            if let Some(f) = &forwarded {
                chunked(&mut serving, format!("{name}-forwarded-https"), json!([parent(Some("http"))]), f);
            }
            if let Some(root) = plan.app_root.as_deref().filter(|_| app_root_apart) {
                let n =
                    names.claim(&o.namespace, &format!("{name}-app-root"), &format!("{}/{host:?}/app-root", o.name));
                let mut on = parents.clone();
                if redirect && tls_at.is_some() {
                    on.push(parent(Some("http")));
                }
                let mut spec = json!({"parentRefs": on, "rules": [app_root_rule(root)]});
                if let Some(h) = &host {
                    spec["hostnames"] = json!([h]);
                }
                out.objects.push(json!({"apiVersion": format!("{GW_GROUP}/v1"), "kind": "HTTPRoute", "metadata": meta(&n, &o.namespace), "spec": spec}));
            }
            chunked(&mut serving, name.clone(), json!(parents), &all_rules);
            // no-tls-redirect-locations (ACME HTTP-01 by default): never
            // redirected; their rules are served on the http listener too
            // (review 34 MED-1).
            // ingress-nginx compares each location's path: `RAW/` for a
            // Prefix path it serves as `RAW/` plus `= RAW` (review 35 M-3),
            // whose `= RAW` alone is then redirected.
            let kept_plain = |p: &PathRule| {
                let slash = p.slash_location.then(|| format!("{}/", p.raw));
                ci.no_redirect
                    .iter()
                    .any(|i| p.raw.starts_with(i.as_str()) || slash.as_ref().is_some_and(|s| s.starts_with(i.as_str())))
            };
            // (An Exact location of that path of another Ingress leaves
            // ingress-nginx no `= RAW` to add: it is that one's; review 36
            // M-3.)
            let bare_redirected = |p: &PathRule| {
                p.slash_location
                    && !ci.no_redirect.iter().any(|i| p.raw.starts_with(i.as_str()))
                    && !exact_paths.contains(&(host.clone(), p.raw.clone()))
            };
            let plain: Vec<PathRule> = paths.iter().filter(|p| redirect && kept_plain(p)).cloned().collect();
            if !plain.is_empty() {
                let rules = rules(plan, host.as_ref(), &plain, &canaries, false);
                chunked(&mut serving, format!("{name}-no-tls-redirect"), json!([parent(Some("http"))]), &rules);
            }
            if redirect {
                let rname = format!("{name}-https-redirect");
                let to_https = json!([{"type": "RequestRedirect", "requestRedirect": {"scheme": "https", "statusCode": ci.redirect_code}}]);
                let rules: Vec<Value> = paths
                    .iter()
                    .filter_map(|p| {
                        let m = if !kept_plain(p) {
                            path_match(p)
                        } else if bare_redirected(p) {
                            kind_match(PathKind::Exact, &p.raw)
                        } else {
                            return None;
                        };
                        Some(json!({"matches": [{"path": m}], "filters": to_https}))
                    })
                    .collect();
                for (i, chunk) in rules.chunks(MAX_RULES).enumerate() {
                    let n = if i == 0 { rname.clone() } else { format!("{rname}-{}", i + 1) };
                    let n = names.claim(&o.namespace, &n, &format!("{}/{host:?}/redirect/{i}", o.name));
                    redirect_names.push(n.clone());
                    out.objects.push(json!({"apiVersion": format!("{GW_GROUP}/v1"), "kind": "HTTPRoute", "metadata": meta(&n, &o.namespace),
                        "spec": {"parentRefs": [parent(Some("http"))], "hostnames": [host.clone()], "rules": chunk}}));
                    // Not a policy target: ingress-nginx redirects in nginx's rewrite
                    // phase, before limit_req and allow/deny run.
                }
            }
        }
        if target == Target::Realip && limited && serving.len() > MAX_TARGETS {
            // One ClientAccessPolicy holds at most 16 targets, and each policy is its own
            // rate-limit bucket: hosts whose routes are the same share one route.
            serving = merge_hosts(serving);
            if serving.len() > MAX_TARGETS && !plan.rates.is_empty() {
                report.entries.push(Entry {
                    object: o.id(),
                    file: o.source.file.clone(),
                    line: o.source.line,
                    key: "rate limit buckets".into(),
                    value: String::new(),
                    status: Status::Changed,
                    to: format!("{} ClientAccessPolicies", serving.len().div_ceil(MAX_TARGETS)),
                    why: format!("ingress-nginx keeps one limit_req zone per Ingress (one bucket per client for all its paths); its {} routes (hosts with different paths, or more than 16 rules) need {} ClientAccessPolicies of at most {MAX_TARGETS} targets, and each is its own bucket: a client gets the rate once per policy", serving.len(), serving.len().div_ceil(MAX_TARGETS)),
                });
            }
        }
        for sv in serving {
            let rname = if sv.i == 0 { sv.name.clone() } else { format!("{}-{}", sv.name, sv.i + 1) };
            let rname = names.claim(&o.namespace, &rname, &format!("{}/{:?}/{}", o.name, sv.hosts, sv.i));
            let mut spec = json!({"parentRefs": sv.parents, "rules": sv.rules});
            if !sv.hosts.is_empty() {
                spec["hostnames"] = json!(sv.hosts);
            }
            out.objects.push(json!({"apiVersion": format!("{GW_GROUP}/v1"), "kind": "HTTPRoute", "metadata": meta(&rname, &o.namespace), "spec": spec}));
            route_names.push(rname);
        }
        point_at_redirects(plan, &redirect_names, report);
        if route_names.is_empty() && redirect_names.is_empty() {
            no_open_route(plan, report);
        }
        if plan.redirect.is_some() {
            redirected_before_access(plan, target, report);
        } else {
            let policies = access_policies(plan, &route_names, target, &mut policy_names, &mut out.objects);
            point_at_policies(plan, target, &policies, report);
        }
        let denied = denied_routes(plan, &mut names, &parent(None), &mut out.objects);
        deny_all_policies(plan, &denied, target, &mut policy_names, &mut out.objects);
    }
    app_root_first(plans, &mut out.objects, report);
    client_ip_policy(gw, ci, target, &mut out.objects);
    out
}

/// nginx answers app-root's `if ($uri = /)` at server level, before any
/// location is chosen: every request for `/` of the host is redirected. In
/// the Gateway API another `Exact /` rule for the host outranks the
/// redirect's (header matches: a canary's, `X-Forwarded-Proto: https`) or
/// ties with it (the Ingress's own `/`, the HTTPS redirect, another
/// Ingress's), so those `Exact /` matches are taken out of every other
/// rule of the host, as nginx never reaches them (review 37 H-1, H-2;
/// review 31 M-1). A rule left without matches is dropped, a route left
/// without rules too, and so are policy targets naming it. Hosts with two
/// different app-roots, and routes shared with hosts without one, are
/// reported and left as they are.
#[allow(clippy::too_many_lines)] // one pass: roots, routes, policy targets
fn app_root_first(plans: &[Plan<'_>], objects: &mut Vec<Value>, report: &mut Report) {
    let mut roots: BTreeMap<Option<String>, BTreeSet<String>> = BTreeMap::new();
    for plan in plans.iter().filter(|p| p.redirect.is_none() && p.canary.is_none()) {
        let Some(root) = plan.app_root.as_ref() else { continue };
        for host in plan.hosts.keys() {
            roots.entry(host.clone()).or_default().insert(root.clone());
        }
    }
    if roots.is_empty() {
        return;
    }
    let exact_root = json!({"type": "Exact", "value": "/"});
    let mut dropped: BTreeSet<(String, String)> = BTreeSet::new();
    for o in objects.iter_mut().filter(|o| o["kind"] == "HTTPRoute") {
        let hosts: Vec<Option<String>> = match o["spec"]["hostnames"].as_array() {
            Some(hs) => hs.iter().map(|h| h.as_str().map(str::to_owned)).collect(),
            None => vec![None],
        };
        let found: Vec<Option<&BTreeSet<String>>> = hosts.iter().map(|h| roots.get(h)).collect();
        if found.iter().all(Option::is_none) {
            continue;
        }
        let ns = o["metadata"]["namespace"].as_str().unwrap_or_default().to_owned();
        let name = o["metadata"]["name"].as_str().unwrap_or_default().to_owned();
        let root = match found.first().copied().flatten() {
            Some(r) if r.len() == 1 && found.iter().all(|f| *f == Some(r)) => r.iter().next().cloned(),
            _ => None,
        };
        let Some(root) = root else {
            report.entries.push(Entry {
                object: format!("HTTPRoute/{ns}/{name}"),
                file: String::new(),
                line: 0,
                key: "app-root".into(),
                value: String::new(),
                status: Status::NotConverted,
                to: String::new(),
                why: "ingress-nginx redirects `/` of a host with app-root before any location, but this route's hosts have different app-roots (or some have none): its `Exact /` rules may answer `/` instead; check it".into(),
            });
            continue;
        };
        let keep = app_root_rule(&root);
        let Some(rules) = o.pointer_mut("/spec/rules").and_then(Value::as_array_mut) else { continue };
        let before = rules.len();
        let mut taken = 0;
        rules.retain_mut(|rule| {
            if *rule == keep {
                return true;
            }
            let Some(ms) = rule.get_mut("matches").and_then(Value::as_array_mut) else { return true };
            let n = ms.len();
            ms.retain(|m| m["path"] != exact_root);
            taken += n - ms.len();
            !ms.is_empty()
        });
        if taken == 0 {
            continue;
        }
        let to = if rules.is_empty() {
            dropped.insert((ns.clone(), name.clone()));
            String::new()
        } else {
            format!("HTTPRoute {ns}/{name}: {} of {before} rules kept", rules.len())
        };
        report.entries.push(Entry {
            object: format!("HTTPRoute/{ns}/{name}"),
            file: String::new(),
            line: 0,
            key: "app-root precedence".into(),
            value: root.clone(),
            status: Status::Converted,
            to,
            why: format!("ingress-nginx redirects every request for `/` of the host to {root} before any location; {taken} `Exact /` match(es) of this route would outrank or tie with the redirect's rule, so they are taken out (nginx never reached them){}", if rules.is_empty() { "; the route is left with no rule and is not emitted" } else { "" }),
        });
    }
    if dropped.is_empty() {
        return;
    }
    objects.retain(|o| {
        !(o["kind"] == "HTTPRoute"
            && dropped.contains(&(
                o["metadata"]["namespace"].as_str().unwrap_or_default().to_owned(),
                o["metadata"]["name"].as_str().unwrap_or_default().to_owned(),
            )))
    });
    objects.retain_mut(|o| {
        let ns = o["metadata"]["namespace"].as_str().unwrap_or_default().to_owned();
        let Some(refs) = o.pointer_mut("/spec/targetRefs").and_then(Value::as_array_mut) else { return true };
        let n = refs.len();
        refs.retain(|r| {
            !(r["kind"] == "HTTPRoute"
                && dropped.contains(&(ns.clone(), r["name"].as_str().unwrap_or_default().to_owned())))
        });
        n == refs.len() || !refs.is_empty()
    });
}

/// The report entry of a TLS host of `plan` whose TLS the load balancer
/// ends ([`crate::setup::tls_at_lb`]): what became of ssl-redirect there.
fn tls_at_lb_entry(plan: &Plan<'_>, host: &str, how: crate::setup::TlsAtLb, report: &mut Report) {
    use crate::setup::TlsAtLb;
    let o = plan.obj;
    let (status, to, why) = match how {
        TlsAtLb::ForwardedProto => (
            Status::Changed,
            "",
            "the load balancer ends TLS and sends HTTPS to the controller's http port; with use-forwarded-headers ingress-nginx took X-Forwarded-Proto as the scheme and redirected only `http` (or no header): the routes serve requests with X-Forwarded-Proto: https on every listener and the redirect takes the others (a value other than http or https, which ingress-nginx served, is redirected)",
        ),
        TlsAtLb::ProxyPort => (
            Status::NotConverted,
            "",
            "the load balancer ends TLS and sends HTTPS to the controller's http port; ingress-nginx told HTTPS from HTTP by the PROXY header's destination port (443), which no HTTPRoute can match: no redirect is emitted (a redirect there would loop for every HTTPS request), so plain HTTP is served, not redirected",
        ),
        TlsAtLb::ForwardedHeader => (
            Status::Changed,
            "",
            "with use-forwarded-headers ingress-nginx took X-Forwarded-Proto as the scheme: a request on port 80 carrying `https` (a CDN or proxy ending TLS in front) was served, not redirected, and so it is here (the route NAME-forwarded-https on the http listener matches X-Forwarded-Proto: https, the NAME-https-redirect route takes the rest; a value other than http or https, which ingress-nginx also served, is redirected)",
        ),
        TlsAtLb::EnvoyForwardedProto => (
            Status::NotConverted,
            "",
            "the load balancer ends TLS and sends HTTPS to the controller's http port; with use-forwarded-headers ingress-nginx took X-Forwarded-Proto as the scheme, but Envoy replaces that header from a downstream it does not trust (Envoy Gateway's trusted CIDRs leave xff_num_trusted_hops at 0) before routing: no redirect is emitted (one would loop for every HTTPS request), so plain HTTP is served, not redirected",
        ),
        TlsAtLb::EnvoyForwardedHeader => (
            Status::NotConverted,
            "",
            "with use-forwarded-headers ingress-nginx took X-Forwarded-Proto as the scheme: a request on port 80 carrying `https` (a CDN or proxy ending TLS in front) was served, not redirected; Envoy replaces that header from a downstream it does not trust (Envoy Gateway's trusted CIDRs leave xff_num_trusted_hops at 0) before routing, so no route can tell those requests apart: the redirect takes every request on port 80, those too (behind such a front end they loop; `--to realip` keeps them apart)",
        ),
        TlsAtLb::Blind => (
            Status::NotConverted,
            "",
            "the load balancer ends TLS and sends HTTPS to the controller's http port, and neither use-forwarded-headers nor use-proxy-protocol is on: ingress-nginx saw every request as HTTP and redirected HTTPS ones too (a loop); no redirect is emitted, so plain HTTP is served, not redirected",
        ),
    };
    report.entries.push(Entry {
        object: o.id(),
        file: o.source.file.clone(),
        line: o.source.line,
        key: format!("ssl-redirect {host}"),
        value: String::new(),
        status,
        to: to.into(),
        why: why.into(),
    });
}

/// `rules` with each match also requiring `X-Forwarded-Proto: https`. A
/// match that already names that header (a canary-by-header on it) keeps
/// its own condition when it asks for `https`, and is dropped when it asks
/// for another value, which cannot hold with it (the CRD refuses a header
/// name twice in one match: review 34 H-2); a rule left without matches is
/// dropped (no matches would match every request).
fn with_forwarded_https(rules: &[Value]) -> Vec<Value> {
    let xfp = json!({"type": "Exact", "name": "X-Forwarded-Proto", "value": "https"});
    let mut out = Vec::new();
    for rule in rules {
        let mut rule = rule.clone();
        let Some(matches) = rule["matches"].as_array() else { continue };
        let kept: Vec<Value> = matches
            .iter()
            .filter_map(|m| {
                let mut m = m.clone();
                let headers = m["headers"].as_array().cloned().unwrap_or_default();
                match headers
                    .iter()
                    .find(|h| h["name"].as_str().is_some_and(|n| n.eq_ignore_ascii_case("X-Forwarded-Proto")))
                {
                    Some(h) if h["type"] == "Exact" && h["value"] == "https" => Some(m),
                    Some(_) => None,
                    None => {
                        let mut headers = headers;
                        headers.push(xfp.clone());
                        m["headers"] = json!(headers);
                        Some(m)
                    }
                }
            })
            .collect();
        if kept.is_empty() {
            continue;
        }
        rule["matches"] = json!(kept);
        out.push(rule);
    }
    out
}

/// One serving HTTPRoute before naming: its hostnames (none: any host),
/// base name, chunk index, parentRefs and rules.
struct Serving {
    hosts: Vec<String>,
    name: String,
    i: usize,
    parents: Value,
    rules: Vec<Value>,
}

/// Routes of one Ingress that differ only by host, as one route with up to
/// 16 hostnames (the Gateway API maximum): fewer policy targets, so fewer
/// ClientAccessPolicies (buckets) for one Ingress.
fn merge_hosts(serving: Vec<Serving>) -> Vec<Serving> {
    let mut out: Vec<Serving> = Vec::new();
    for sv in serving {
        let same = out.iter_mut().find(|m| {
            !m.hosts.is_empty()
                && !sv.hosts.is_empty()
                && m.hosts.len() < MAX_HOSTNAMES
                && m.i == sv.i
                && m.parents == sv.parents
                && m.rules == sv.rules
        });
        match same {
            Some(m) => m.hosts.extend(sv.hosts),
            None => out.push(sv),
        }
    }
    out
}

/// The HTTPS listener serving `host`: its own, else that of a wildcard
/// TLS host covering it by one label (`*.example.com` for
/// `shop.example.com`), as ingress-nginx matches a certificate's hosts
/// (one label, like x509) to decide that a server has TLS and redirects.
fn tls_listener<'l>(listeners: &'l BTreeMap<String, String>, host: &str) -> Option<&'l String> {
    listeners.get(host).or_else(|| {
        let (_, rest) = host.split_once('.')?;
        listeners.get(&format!("*.{rest}"))
    })
}

/// The targetRefs of an Ingress's policies: realip's ClientAccessPolicy
/// takes at most 16 (chunks, one policy each); Envoy Gateway's policies
/// have no maximum, so one policy targets every route (its global rules
/// `shared` across them).
fn targets(routes: &[String], target: Target) -> Vec<Vec<Value>> {
    let max = if target == Target::Realip { MAX_TARGETS } else { routes.len().max(1) };
    routes
        .chunks(max)
        .map(|c| c.iter().map(|r| json!({"group": GW_GROUP, "kind": "HTTPRoute", "name": r})).collect())
        .collect()
}

/// HTTPRoutes for the [`Denied`] locations of `plan` (one per host,
/// `…-denied`): its matches, no backend, on every listener. Returns their
/// names.
fn denied_routes(plan: &Plan<'_>, names: &mut Names, parent: &Value, out: &mut Vec<Value>) -> Vec<String> {
    let o = plan.obj;
    let mut routes = Vec::new();
    let single = plan.denied.len() <= 1 && plan.hosts.len() <= 1;
    for (host, paths) in &plan.denied {
        let base = if single {
            o.name.clone()
        } else {
            let all = plan.hosts.keys().chain(plan.denied.keys()).filter_map(Option::as_deref);
            format!("{}-{}", o.name, host.as_deref().map_or("any-host".into(), |h| unique_slug(h, all)))
        };
        let mut seen = std::collections::BTreeSet::new();
        let rules: Vec<Value> = paths
            .iter()
            .filter(|d| seen.insert((d.kind == PathKind::Exact, d.kind == PathKind::Regex, d.value.clone())))
            .map(|d: &Denied| json!({"matches": [{"path": kind_match(d.kind, &d.value)}]}))
            .collect();
        for (i, chunk) in rules.chunks(MAX_RULES).enumerate() {
            let n = if i == 0 { format!("{base}-denied") } else { format!("{base}-denied-{}", i + 1) };
            let n = names.claim(&o.namespace, &n, &format!("{}/{host:?}/denied/{i}", o.name));
            let mut spec = json!({"parentRefs": [parent], "rules": chunk});
            if let Some(h) = host {
                spec["hostnames"] = json!([h]);
            }
            out.push(json!({"apiVersion": format!("{GW_GROUP}/v1"), "kind": "HTTPRoute", "metadata": meta(&n, &o.namespace), "spec": spec}));
            routes.push(n);
        }
    }
    routes
}

/// The policy that refuses every client on `routes` (the denied locations
/// of `plan`): realip's ClientAccessPolicy `deny: [0.0.0.0/0, ::/0]`, or
/// Envoy Gateway's SecurityPolicy authorization `defaultAction: Deny`
/// without rules.
fn deny_all_policies(plan: &Plan<'_>, routes: &[String], target: Target, names: &mut Names, out: &mut Vec<Value>) {
    let o = plan.obj;
    for (i, refs) in targets(routes, target).into_iter().enumerate() {
        let base = if i == 0 { format!("{}-denied", o.name) } else { format!("{}-denied-{}", o.name, i + 1) };
        let name = names.claim(&o.namespace, &base, &format!("{}/denied/{i}", o.name));
        out.push(match target {
            Target::Realip => json!({"apiVersion": "realip.dev/v1alpha1", "kind": "ClientAccessPolicy", "metadata": meta(&name, &o.namespace),
                "spec": {"targetRefs": refs, "deny": ["0.0.0.0/0", "::/0"]}}),
            Target::EnvoyGateway => json!({"apiVersion": "gateway.envoyproxy.io/v1alpha1", "kind": "SecurityPolicy", "metadata": meta(&name, &o.namespace),
                "spec": {"targetRefs": refs, "authorization": {"defaultAction": "Deny"}}}),
        });
    }
}

/// The `to` of an Ingress's ssl-redirect / force-ssl-redirect entries,
/// written before the routes were.
pub(crate) const REDIRECT_TO: &str =
    "HTTPRoute …-https-redirect (RequestRedirect scheme https, http-redirect-code) on the http listener";

/// Makes the ssl-redirect / force-ssl-redirect entries of `plan` name the
/// redirect route emitted (`redirects`), or none: the annotation is false,
/// or no host of the Ingress has TLS on the Gateway (ingress-nginx
/// redirects only a server with a certificate too; a forced redirect
/// without one has its own not-converted entry).
fn point_at_redirects(plan: &Plan<'_>, redirects: &[String], report: &mut Report) {
    let o = plan.obj;
    for e in report.entries.iter_mut().filter(|e| e.object == o.id() && e.to == REDIRECT_TO) {
        if plan.redirect.is_some() && redirects.is_empty() {
            e.to = String::new();
            e.why = "no HTTPS redirect route: this Ingress's permanent-redirect / temporal-redirect answers every request first (nginx's `return` runs before the HTTPS redirect), and its redirect route is on the http listener as well".into();
        } else if let Some(first) = redirects.first() {
            let more = if redirects.len() > 1 { format!(" and {} more", redirects.len() - 1) } else { String::new() };
            e.to = format!(
                "HTTPRoute {}/{first} (RequestRedirect scheme https, http-redirect-code) on the http listener{more}",
                o.namespace
            );
        } else {
            e.to = String::new();
            if e.value.trim() != "false" && e.key == "force-ssl-redirect" {
                e.why = "no redirect route: no host of this Ingress has TLS on the Gateway (see the not-converted entry of each host)".into();
            } else if e.value.trim() != "false" {
                e.why = "no redirect route: no host of this Ingress has TLS on the Gateway, and ingress-nginx redirects only a server that has a certificate".into();
            }
        }
    }
}

/// An Ingress none of whose routes is emitted open (every location left
/// out, refused deny-all or served by the route ingress-nginx preferred):
/// its entries that name a part of its routes (`HTTPRoute backendRefs`, a
/// redirect or rewrite rule) name nothing emitted, so they say so instead.
/// Its policy entries are [`point_at_policies`]'s, its path entries the
/// deny-all and path steps' own.
fn no_open_route(plan: &Plan<'_>, report: &mut Report) {
    let o = plan.obj;
    for e in report.entries.iter_mut().filter(|e| e.object == o.id()) {
        let names_route = e.to.starts_with("HTTPRoute ") || e.to.starts_with("RequestRedirect");
        let own =
            e.key.starts_with("path ") || e.key.starts_with("deny-all ") || e.key.starts_with("spec.defaultBackend");
        if names_route
            && !own
            && e.to != "HTTPRoute parentRefs"
            && matches!(e.status, Status::Converted | Status::Changed)
        {
            e.to = String::new();
            e.status = Status::Changed;
            e.why = format!("not in the output: no route of this Ingress is emitted open (see its path entries), so every location it applied to is refused by a deny-all route or served by the route ingress-nginx preferred there; in ingress-nginx: {}", e.why);
        }
    }
}

/// The kinds of the access and rate policies `target` is given.
fn access_kinds(target: Target) -> &'static [&'static str] {
    if target == Target::EnvoyGateway {
        &["SecurityPolicy", "BackendTrafficPolicy"]
    } else {
        &["ClientAccessPolicy"]
    }
}

/// Makes the report entries of `plan` that name its access or rate policy
/// (`Kind ns/NAME field`, written by [`crate::ingress::plan`] before any
/// route was known) name the policy really emitted (`policies`: kind and
/// name, the first of each kind): another name when the plain one was
/// taken, or none at all when no route of the Ingress is emitted open (its
/// locations left out, refused deny-all or served by the route ingress-nginx
/// preferred), where the entry must not claim a policy that is not there.
fn point_at_policies(plan: &Plan<'_>, target: Target, policies: &[(&'static str, String)], report: &mut Report) {
    let o = plan.obj;
    let kinds = access_kinds(target);
    for e in report.entries.iter_mut().filter(|e| e.object == o.id()) {
        for kind in kinds {
            let Some(field) = e.to.strip_prefix(&format!("{kind} {}/{} ", o.namespace, o.name)).map(str::to_owned)
            else {
                continue;
            };
            if let Some((_, name)) = policies.iter().find(|(k, _)| k == kind) {
                e.to = format!("{kind} {}/{name} {field}", o.namespace);
                continue;
            }
            e.to = String::new();
            if e.status != Status::NotConverted {
                e.status = Status::Changed;
            }
            e.why = "no policy carries it: no route of this Ingress is emitted open (see its path entries), so every location it restricted in ingress-nginx is refused by a deny-all route or served by the route ingress-nginx preferred there".into();
        }
    }
}

/// An Ingress whose every request is answered by its permanent- or
/// temporal-redirect: nginx returns it in the location's rewrite phase,
/// before allow/deny and limit_req run, so its access lists and limits
/// refused or limited nobody in ingress-nginx; no policy is emitted for it
/// and their entries say so (review 29 H2: the 301 was 403 outside the
/// allow list).
fn redirected_before_access(plan: &Plan<'_>, target: Target, report: &mut Report) {
    let o = plan.obj;
    let kinds = access_kinds(target);
    for e in report.entries.iter_mut().filter(|e| e.object == o.id()) {
        if kinds.iter().any(|kind| e.to.starts_with(&format!("{kind} {}/{} ", o.namespace, o.name))) {
            e.to = String::new();
            e.status = Status::Ignored;
            e.why = "every request of this Ingress is answered by its redirect (permanent-redirect / temporal-redirect), which nginx returns in its rewrite phase, before allow/deny and limit_req run: ingress-nginx refused or limited nobody here, nor does the output".into();
        }
    }
}

/// The access and rate policies of `plan` on its open `routes`; returns
/// the kind and name of each emitted.
fn access_policies(
    plan: &Plan<'_>,
    routes: &[String],
    target: Target,
    names: &mut Names,
    out: &mut Vec<Value>,
) -> Vec<(&'static str, String)> {
    let o = plan.obj;
    let has_access = plan.allow.is_some() || !plan.deny.is_empty();
    let mut emitted = Vec::new();
    if routes.is_empty() || (!has_access && plan.rates.is_empty()) {
        return emitted;
    }
    for (i, refs) in targets(routes, target).into_iter().enumerate() {
        let base = if i == 0 { o.name.clone() } else { format!("{}-{}", o.name, i + 1) };
        let name = names.claim(&o.namespace, &base, &format!("{}/{i}", o.name));
        match target {
            Target::Realip => {
                let mut spec = json!({"targetRefs": refs});
                if let Some(a) = &plan.allow {
                    spec["allow"] = json!(a);
                }
                if !plan.deny.is_empty() {
                    spec["deny"] = json!(plan.deny);
                }
                if let Some(r) = plan.rates.first() {
                    let scope = if r.global { "Global" } else { "Local" };
                    // ipv6PrefixLength 128: nginx's zones key on the whole address
                    // ($binary_remote_addr), not realip's default /64.
                    spec["rateLimit"] =
                        json!({"perSecond": r.per_second, "burst": r.burst, "scope": scope, "ipv6PrefixLength": 128});
                }
                out.push(json!({"apiVersion": "realip.dev/v1alpha1", "kind": "ClientAccessPolicy", "metadata": meta(&name, &o.namespace), "spec": spec}));
                emitted.push(("ClientAccessPolicy", name));
            }
            Target::EnvoyGateway => {
                if has_access {
                    let mut rules = Vec::new();
                    if !plan.deny.is_empty() {
                        rules.push(json!({"name": "denylist-source-range", "action": "Deny", "principal": {"clientCIDRs": plan.deny}}));
                    }
                    if let Some(a) = &plan.allow {
                        rules.push(json!({"name": "allowlist-source-range", "action": "Allow", "principal": {"clientCIDRs": a}}));
                    }
                    let default = if plan.allow.is_some() { "Deny" } else { "Allow" };
                    out.push(json!({"apiVersion": "gateway.envoyproxy.io/v1alpha1", "kind": "SecurityPolicy", "metadata": meta(&name, &o.namespace),
                        "spec": {"targetRefs": refs, "authorization": {"defaultAction": default, "rules": rules}}}));
                    emitted.push(("SecurityPolicy", name.clone()));
                }
                if !plan.rates.is_empty() {
                    // One rule per family: Distinct gives each client address its own bucket.
                    let rules = |global: bool| -> Vec<Value> {
                        plan.rates
                            .iter()
                            .filter(|r| r.global == global)
                            .flat_map(|r| {
                                ["0.0.0.0/0", "::/0"].map(|cidr| {
                                    let mut rule = json!({"clientSelectors": [{"sourceCIDR": {"type": "Distinct", "value": cidr}}],
                                        "limit": {"requests": r.requests, "unit": r.unit}});
                                    if global {
                                        // One bucket per client for every route of the policy (the
                                        // Ingress), as ingress-nginx's one zone per Ingress; Envoy
                                        // Gateway honours `shared` on global rules only.
                                        rule["shared"] = json!(true);
                                    }
                                    rule
                                })
                            })
                            .collect()
                    };
                    let mut rate = json!({});
                    for (global, field) in [(false, "local"), (true, "global")] {
                        let r = rules(global);
                        if !r.is_empty() {
                            rate[field] = json!({"rules": r});
                        }
                    }
                    out.push(json!({"apiVersion": "gateway.envoyproxy.io/v1alpha1", "kind": "BackendTrafficPolicy", "metadata": meta(&name, &o.namespace),
                        "spec": {"targetRefs": refs, "rateLimit": rate}}));
                    emitted.push(("BackendTrafficPolicy", name.clone()));
                }
            }
        }
    }
    emitted
}

/// The name of the Gateway's client-IP policy.
pub fn client_ip_name(gw: &Gateway) -> String {
    format!("{}-client-ip", gw.name)
}

fn client_ip_policy(gw: &Gateway, ci: &ClientIp, target: Target, out: &mut Vec<Value>) {
    let target_ref = json!([{"group": GW_GROUP, "kind": "Gateway", "name": gw.name}]);
    let name = client_ip_name(gw);
    match target {
        Target::Realip => {
            let mut spec = json!({"targetRefs": target_ref});
            let header_source = |h: &str| match h.to_ascii_lowercase().as_str() {
                "x-forwarded-for" => json!(["XForwardedFor"]),
                "x-real-ip" => json!(["XRealIP"]),
                _ => json!([{"header": h}]),
            };
            if let Some(h) = ci.pp_header.as_ref().filter(|_| ci.proxy_protocol && !ci.trusted.is_empty()) {
                // ingress-nginx v1.13+ with use-forwarded-headers: the header
                // from a PROXY source in proxy-real-ip-cidr (the accepted PROXY
                // source is the effective peer the header is read from). The
                // closest chain, reported not converted (setup::client_ip).
                spec["proxyProtocol"] = json!({"mode": "Required", "trustedSenders": ci.trusted});
                spec["trustedProxies"] = json!(ci.trusted);
                spec["sources"] = header_source(h);
            } else if ci.proxy_protocol && !ci.trusted.is_empty() {
                spec["proxyProtocol"] = json!({"mode": "Required", "trustedSenders": ci.trusted});
                spec["sources"] = json!(["ProxyProtocol"]);
            } else if let Some(h) = ci.header.as_ref().filter(|_| !ci.trusted.is_empty()) {
                spec["trustedProxies"] = json!(ci.trusted);
                spec["sources"] = header_source(h);
            } else {
                // Nothing trusted: no header is believed, the client is the TCP peer.
                // Said as such (the CRD has no peer-only source); no `sources`, as no
                // header is read (a user adding trustedProxies must choose one).
                spec["trustedProxies"] = json!([]);
            }
            spec["strategy"] = json!("RightmostUntrusted");
            spec["forward"] = json!({"xForwardedFor": if ci.full_xff { "Append" } else { "Replace" }, "xRealIP": true});
            out.push(json!({"apiVersion": "realip.dev/v1alpha1", "kind": "ClientIPPolicy", "metadata": meta(&name, &gw.namespace), "spec": spec}));
        }
        Target::EnvoyGateway => {
            let mut spec = json!({"targetRefs": target_ref});
            if ci.proxy_protocol {
                spec["proxyProtocol"] = json!({"optional": false});
            } else if let Some(h) = ci.header.as_ref().filter(|_| !ci.trusted.is_empty()) {
                spec["clientIPDetection"] = if h.eq_ignore_ascii_case("x-forwarded-for") {
                    json!({"xForwardedFor": {"trustedCIDRs": ci.trusted}})
                } else if ci.trusts_every_peer() {
                    json!({"customHeader": {"name": h, "failClosed": false}})
                } else {
                    // Envoy Gateway's customHeader believes every peer, native
                    // IPv6 ones too: never emitted where ingress-nginx believed
                    // only some, its 0.0.0.0/0 default included (report).
                    Value::Null
                };
                if spec["clientIPDetection"].is_null() {
                    spec.as_object_mut().map(|m| m.remove("clientIPDetection"));
                }
            }
            if spec.as_object().is_some_and(|m| m.len() > 1) {
                out.push(json!({"apiVersion": "gateway.envoyproxy.io/v1alpha1", "kind": "ClientTrafficPolicy", "metadata": meta(&name, &gw.namespace), "spec": spec}));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::weights;

    #[test]
    fn weights_keep_the_share_within_the_crd_maximum() {
        assert_eq!(weights(20, 100), (80, 20));
        assert_eq!(weights(200, 100), (0, 100), "a weight over the total is all");
        assert_eq!(weights(1, 4_000_000), (999_999, 1), "a tiny share is not rounded to none");
        assert_eq!(weights(3_999_999, 4_000_000), (1, 999_999), "nor a near-total share to all");
        assert_eq!(weights(0, 4_000_000), (1_000_000, 0));
        assert_eq!(weights(4_000_000, 4_000_000), (0, 1_000_000));
        // Beyond u32: Go's Atoi reads 64-bit values (was clamped to u32::MAX, so 50 % became 100 %).
        assert_eq!(weights(5_000_000_000, 10_000_000_000), (500_000, 500_000));
    }
}
